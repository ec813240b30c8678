# Навігація, дії та спільні слова.
nav-calls = Журнал дзвінків
nav-inquiries = Звернення
nav-deals = Угоди
nav-tasks = Завдання
nav-people = Пацієнти
nav-settings = Налаштування
nav-help = Гарячі клавіші

action-save = Зберегти
action-cancel = Скасувати
action-ok = Гаразд
action-quit = Вийти
action-edit = Змінити
action-new-person = Новий пацієнт
action-new-inquiry = Нове звернення
action-new-task = Нове завдання
action-new-deal = Нова угода
action-new-visit = Записати на візит
action-open-person = Відкрити картку
action-save-password = Зберегти у в'язці ключів

choice-none = —
list-empty = Поки що нічого немає.
list-count = { $count ->
    [one] { $count } запис
    [few] { $count } записи
   *[other] { $count } записів
}
no-right = У вас немає права це бачити. Зверніться до керівника клініки.
person-unknown = Невідомий номер
phone-copy = Натисніть, щоб скопіювати номер

status-no-user = Користувача робочого місця не задано (Налаштування)
status-offline-replica = Локальна копія бази
status-help-hint = F1 — гарячі клавіші
status-person-saved = Пацієнта збережено
status-inquiry-saved = Звернення збережено
status-task-saved = Завдання збережено
status-deal-saved = Угоду збережено
status-visit-saved = Візит збережено
status-settings-saved = Налаштування збережено
status-password-saved = Пароль збережено у в'язці ключів

notice-title = Увага
fatal-title = ClinicDesk не може відкрити дані цього робочого місця

help-title = Гарячі клавіші
help-toggle = Показати або сховати цей список
help-screens = Журнал дзвінків, Пропущені, Звернення, Угоди, Завдання, Пацієнти, Налаштування, Команда, Аудит (ті, що вам доступні)
help-search = Знайти пацієнта
help-new-inquiry = Нове звернення (для відкритого пацієнта)
help-new-task = Нове завдання (для відкритого пацієнта)
help-save = Зберегти відкриту форму
help-close = Закрити форму або цей список
help-refresh = Перечитати списки

role-head = Керівник клініки
role-admin = Адміністратор налаштувань
role-operator = Оператор
role-supervisor = Старший оператор кол-центру
role-doctor = Лікар
role-nurse = Медсестра

country-RU = Росія (+7)
country-UA = Україна (+380)

call-direction-in = Вхідний
call-direction-out = Вихідний
call-result-answered = Прийнято
call-result-missed = Пропущено
call-result-busy = Зайнято
call-result-failed = Не відбувся

inquiry-source-call = Дзвінок
inquiry-source-missed-call = Пропущений дзвінок
inquiry-source-web = Заявка з сайту
inquiry-source-walk-in = Візит до клініки
inquiry-source-messenger = Месенджер
inquiry-status-new = Нове
inquiry-status-in-progress = У роботі
inquiry-status-closed = Закрите
inquiry-result-booked = Записаний на прийом
inquiry-result-consultation = Консультація
inquiry-result-callback = Передзвонити
inquiry-result-refused = Відмова
inquiry-result-spam = Спам

task-status-open = Відкрите
task-status-in-progress = У роботі
task-status-done = Виконане
task-status-cancelled = Скасоване

visit-status-booked = Записаний
visit-status-confirmed = Підтверджений
visit-status-arrived = Пацієнт прийшов
visit-status-cancelled = Скасований
status-call-recorded = Дзвінок записано
status-draft-saved = Чернетку збережено
status-missed-recorded = Пропущений дзвінок: створено завдання передзвонити
status-draft-restored = Відновлено незбережене звернення

# Сповіщення про терміни.
notify-reminder = Нагадування
notify-deadline = Термін завдання
notify-summary = Прострочених завдань: { $count }
notify-open = Відкрити
notify-snooze = Відкласти на 10 хв
notify-done = Виконано
notify-in-window = { $title } ({ $detail }). Нагадування показано тут, бо служба сповіщень робочого столу не відповіла: { $why }
notify-summary-in-window = Прострочених завдань: { $count }. Показано тут, бо служба сповіщень робочого столу не відповіла: { $why }

# Синхронізація з базою клініки.
sync-online = База клініки: на зв'язку · до надсилання { $pending }
sync-offline = База клініки: немає зв'язку, робота локально · до надсилання { $pending }
sync-last = Остання синхронізація { $time }
sync-conflicts = Конфліктів: { $count }
sync-rejected = Відхилено сервером: { $count }
sync-unencrypted = Без шифрування
sync-unencrypted-hint = База клініки на іншому комп'ютері, а в її адресі вказано sslmode=disable: дані пацієнтів ідуть мережею відкритим текстом. Попросіть адміністратора адресу з TLS (sslmode=require або verify-full) і вкажіть її в налаштуваннях.
conflicts-title = Конфлікти синхронізації
conflicts-none = Конфліктів немає.
conflict-yours = Ви записали: { $value }
conflict-server = У базі клініки залишилося: { $value }
conflict-acknowledge = Зрозуміло
status-template-saved = Шаблон завдання збережено
