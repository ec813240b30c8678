# Навигация, действия и общие слова.
nav-calls = Журнал звонков
nav-inquiries = Обращения
nav-deals = Сделки
nav-tasks = Задачи
nav-people = Пациенты
nav-settings = Настройки
nav-help = Горячие клавиши

action-save = Сохранить
action-cancel = Отмена
action-ok = ОК
action-quit = Выйти
action-edit = Изменить
action-new-person = Новый пациент
action-new-inquiry = Новое обращение
action-new-task = Новая задача
action-new-deal = Новая сделка
action-new-visit = Записать на визит
action-open-person = Открыть карточку
action-save-password = Сохранить в связке ключей

choice-none = —
list-empty = Пока ничего нет.
list-count = { $count ->
    [one] { $count } запись
    [few] { $count } записи
   *[other] { $count } записей
}
no-right = У вас нет права это видеть. Обратитесь к руководителю клиники.
person-unknown = Неизвестный номер
phone-copy = Нажмите, чтобы скопировать номер

status-no-user = Пользователь рабочего места не задан (Настройки)
status-offline-replica = Локальная копия базы
status-help-hint = F1 — горячие клавиши
status-person-saved = Пациент сохранён
status-inquiry-saved = Обращение сохранено
status-task-saved = Задача сохранена
status-deal-saved = Сделка сохранена
status-visit-saved = Визит сохранён
status-settings-saved = Настройки сохранены
status-password-saved = Пароль сохранён в связке ключей

notice-title = Внимание
fatal-title = ClinicDesk не может открыть данные этого рабочего места

help-title = Горячие клавиши
help-toggle = Показать или скрыть этот список
help-screens = Журнал звонков, Пропущенные, Обращения, Сделки, Задачи, Пациенты, Настройки, Команда, Аудит (те, что вам доступны)
help-search = Найти пациента
help-new-inquiry = Новое обращение (для открытого пациента)
help-new-task = Новая задача (для открытого пациента)
help-save = Сохранить открытую форму
help-close = Закрыть форму или этот список
help-refresh = Перечитать списки

role-head = Руководитель клиники
role-admin = Администратор настройки
role-operator = Оператор
role-supervisor = Старший оператор колл-центра
role-doctor = Врач
role-nurse = Медсестра

country-RU = Россия (+7)
country-UA = Украина (+380)

call-direction-in = Входящий
call-direction-out = Исходящий
call-result-answered = Принят
call-result-missed = Пропущен
call-result-busy = Занято
call-result-failed = Не состоялся

inquiry-source-call = Звонок
inquiry-source-missed-call = Пропущенный звонок
inquiry-source-web = Заявка с сайта
inquiry-source-walk-in = Визит в клинику
inquiry-source-messenger = Мессенджер
inquiry-status-new = Новое
inquiry-status-in-progress = В работе
inquiry-status-closed = Закрыто
inquiry-result-booked = Записан на приём
inquiry-result-consultation = Консультация
inquiry-result-callback = Перезвонить
inquiry-result-refused = Отказ
inquiry-result-spam = Спам

task-status-open = Открыта
task-status-in-progress = В работе
task-status-done = Выполнена
task-status-cancelled = Отменена

visit-status-booked = Записан
visit-status-confirmed = Подтверждён
visit-status-arrived = Пациент пришёл
visit-status-cancelled = Отменён
status-call-recorded = Звонок записан
status-draft-saved = Черновик сохранён
status-missed-recorded = Пропущенный звонок: создана задача перезвонить
status-draft-restored = Восстановлено несохранённое обращение

# Уведомления о сроках.
notify-reminder = Напоминание
notify-deadline = Срок задачи
notify-summary = Просроченных задач: { $count }
notify-open = Открыть
notify-snooze = Отложить на 10 мин
notify-done = Выполнено
notify-in-window = { $title } ({ $detail }). Напоминание показано здесь, потому что служба уведомлений рабочего стола не ответила: { $why }
notify-summary-in-window = Просроченных задач: { $count }. Показано здесь, потому что служба уведомлений рабочего стола не ответила: { $why }

# Синхронизация с базой клиники.
sync-online = База клиники: на связи · к отправке { $pending }
sync-offline = База клиники: нет связи, работа локально · к отправке { $pending }
sync-last = Последняя синхронизация { $time }
sync-conflicts = Конфликтов: { $count }
sync-rejected = Отклонено сервером: { $count }
sync-unencrypted = Без шифрования
sync-unencrypted-hint = База клиники на другом компьютере, а в её адресе указано sslmode=disable: данные пациентов идут по сети открытым текстом. Попросите администратора адрес с TLS (sslmode=require или verify-full) и укажите его в настройках.
conflicts-title = Конфликты синхронизации
conflicts-none = Конфликтов нет.
conflict-yours = Вы записали: { $value }
conflict-server = В базе клиники осталось: { $value }
conflict-acknowledge = Понятно
status-template-saved = Шаблон задачи сохранён
