# Екрани: списки, воронка угод, пацієнти.
col-time = Час
col-direction = Напр.
col-number = Номер
col-person = Пацієнт
col-operator = Оператор
col-result = Результат
col-duration = Трив.
col-created = Створено
col-reason = Причина
col-channel = Канал
col-status = Статус
col-deadline = Термін
col-title = Завдання
col-type = Тип
col-responsible = Відповідальний

filter-all = Усі
filter-missed = Пропущені
filter-mine = Мої
filter-open = Відкриті
filter-my-tasks = Мої та спільна черга
filter-all-open = Усі відкриті

task-overdue = Прострочене
task-shared-queue = Спільна черга

deals-stage-summary = { $count } · { $amount }
deals-more = …і ще { $count }

people-search = Пошук
people-search-hint = ПІБ або будь-яка частина номера
people-hint = Знайдіть пацієнта за ПІБ чи номером або відкрийте його з дзвінка.
people-nothing-found = Нікого не знайдено. Перевірте написання або створіть нового пацієнта.

history-inquiries = Звернення ({ $count })
history-deals = Угоди ({ $count })
history-tasks = Завдання ({ $count })
history-visits = Візити ({ $count })
history-calls = Дзвінки ({ $count })

nav-missed = Пропущені
missed-none = Немає пропущених дзвінків, що чекають на зворотний дзвінок.
col-first-missed = Пропущено
col-attempts = Спроб
action-call-back = Передзвонити

# Картка абонента.
card-title-incoming = Вхідний дзвінок
card-title-dialing = Виклик
card-title-active = Розмова
card-channel = Канал набраного номера: { $channel }
card-new-caller = Новий клієнт
card-shared-number = Цей номер має { $count ->
    [one] { $count } людина
    [few] { $count } людини
   *[other] { $count } людей
}
card-this-is-the-caller = Дзвонить ця людина
card-why-match = Збігся { $kind } телефон
card-first-channel = Уперше прийшов через: { $channel }
card-open-inquiries = Відкриті звернення ({ $count })
card-open-deals = Відкриті угоди ({ $count })
card-open-tasks = Відкриті завдання ({ $count })
card-next-visit = Наступний візит: { $visit }
card-last-visit = Останній візит: { $visit }
card-last-calls = Останні дзвінки ({ $count })
phone-kind-mobile = мобільний
phone-kind-home = домашній
phone-kind-work = робочий
phone-kind-relative = родича
phone-kind-other = інший
action-answer = Відповісти
action-reject = Відхилити
action-hang-up = Завершити

nav-team = Команда
action-edit-rights = Права…
rights-pick-user = Виберіть користувача, щоб побачити й змінити його права.
rights-of = Права: { $name }
rights-reset = Як у ролі
rights-from-role = за роллю
status-mine = Мій статус:
operator-status-free = Вільний
operator-status-with-client = З клієнтом
operator-status-break = Перерва
operator-status-away = Відійшов
right-crm-all = Усі права в CRM
right-settings-sip = Редагування налаштувань SIP-облікового запису
right-settings-dictionaries = Редагування довідників, типів і шаблонів завдань, типів угод і правил
right-inquiry-view = Перегляд звернень
right-inquiry-process = Обробка звернень
right-inquiry-delete = Видалення звернень
right-deal-view = Перегляд угод
right-deal-edit = Створення й редагування угод
right-task-edit = Створення й редагування завдань
right-task-work = Робота із завданнями
right-task-delete = Видалення завдань
right-task-view-all = Завдання всіх працівників
right-visit-edit = Створення й редагування візитів
right-visit-delete = Видалення візитів
right-call-log = Журнал дзвінків
right-call-view-all = Дзвінки всіх працівників
right-analytics-view = Аналітика
right-audit-view = Перегляд журналу змін (хто, що і коли змінив)

# Журнал змін (для керівника клініки)
nav-audit = Аудит
audit-user = Користувач
audit-text = Текст
audit-since = З
audit-until = По
audit-time-hint = 2025-03-01 або 2025-03-01 14:30
audit-table = Таблиця
audit-any-table = будь-яка
audit-search = Знайти
audit-no-database = Це робоче місце не має бази даних клініки (database_url у settings.toml), тому журнал змін недоступний. Попросіть адміністратора її налаштувати.
audit-loading = Читаємо базу даних клініки…
audit-nothing = Немає змін, що відповідають пошуку.
audit-count = Змін: { $count }, спочатку нові
audit-bad-time = «{ $input }» — не час: напишіть 2025-03-01 або 2025-03-01 14:30.
audit-refused = База даних клініки не показала журнал змін: { $detail }
audit-failed = Не вдалося прочитати журнал змін: { $detail }
audit-unknown-author = невідомо (до ввімкнення аудиту)
audit-col-when = Коли
audit-col-who = Хто
audit-col-op = Зміна
audit-col-table = Таблиця
audit-col-changes = Поля
audit-op-insert = створення
audit-op-update = зміна
audit-op-delete = видалення
audit-op-refused = відмова
audit-change = { $column }: { $new } (було: { $old })
audit-change-set = { $column }: { $new }
