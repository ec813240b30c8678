# Экраны: списки, воронка сделок, пациенты.
col-time = Время
col-direction = Напр.
col-number = Номер
col-person = Пациент
col-operator = Оператор
col-result = Результат
col-duration = Длит.
col-created = Создано
col-reason = Причина
col-channel = Канал
col-status = Статус
col-deadline = Срок
col-title = Задача
col-type = Тип
col-responsible = Ответственный

filter-all = Все
filter-missed = Пропущенные
filter-mine = Мои
filter-open = Открытые
filter-my-tasks = Мои и общая очередь
filter-all-open = Все открытые

task-overdue = Просрочена
task-shared-queue = Общая очередь

deals-stage-summary = { $count } · { $amount }
deals-more = …и ещё { $count }

people-search = Поиск
people-search-hint = ФИО или любая часть номера
people-hint = Найдите пациента по ФИО или номеру или откройте его из звонка.
people-nothing-found = Никого не нашлось. Проверьте написание или создайте нового пациента.

history-inquiries = Обращения ({ $count })
history-deals = Сделки ({ $count })
history-tasks = Задачи ({ $count })
history-visits = Визиты ({ $count })
history-calls = Звонки ({ $count })

nav-missed = Пропущенные
missed-none = Нет пропущенных звонков, ждущих обратного звонка.
col-first-missed = Пропущен
col-attempts = Попыток
action-call-back = Перезвонить

# Карточка звонящего.
card-title-incoming = Входящий звонок
card-title-dialing = Вызов
card-title-active = Разговор
card-channel = Канал набранного номера: { $channel }
card-new-caller = Новый клиент
card-shared-number = Этот номер у { $count ->
    [one] { $count } человека
   *[other] { $count } человек
}
card-this-is-the-caller = Звонит этот человек
card-why-match = Совпал { $kind } телефон
card-first-channel = Впервые пришёл через: { $channel }
card-open-inquiries = Открытые обращения ({ $count })
card-open-deals = Открытые сделки ({ $count })
card-open-tasks = Открытые задачи ({ $count })
card-next-visit = Следующий визит: { $visit }
card-last-visit = Последний визит: { $visit }
card-last-calls = Последние звонки ({ $count })
phone-kind-mobile = мобильный
phone-kind-home = домашний
phone-kind-work = рабочий
phone-kind-relative = родственника
phone-kind-other = другой
action-answer = Ответить
action-reject = Отклонить
action-hang-up = Завершить

nav-team = Команда
action-edit-rights = Права…
rights-pick-user = Выберите пользователя, чтобы увидеть и изменить его права.
rights-of = Права: { $name }
rights-reset = Как у роли
rights-from-role = по роли
status-mine = Мой статус:
operator-status-free = Свободен
operator-status-with-client = С клиентом
operator-status-break = Перерыв
operator-status-away = Отошёл
right-crm-all = Все права в CRM
right-settings-sip = Редактирование настроек SIP-аккаунта
right-settings-dictionaries = Редактирование справочников, типов и шаблонов задач, типов сделок и правил
right-inquiry-view = Просмотр обращений
right-inquiry-process = Обработка обращений
right-inquiry-delete = Удаление обращений
right-deal-view = Просмотр сделок
right-deal-edit = Создание и редактирование сделок
right-task-edit = Создание и редактирование задач
right-task-work = Работа с задачами
right-task-delete = Удаление задач
right-task-view-all = Задачи всех сотрудников
right-visit-edit = Создание и редактирование визитов
right-visit-delete = Удаление визитов
right-call-log = Журнал звонков
right-call-view-all = Звонки всех сотрудников
right-analytics-view = Аналитика
right-audit-view = Просмотр журнала изменений (кто, что и когда изменил)

# Журнал изменений (для руководителя клиники)
nav-audit = Аудит
audit-user = Пользователь
audit-text = Текст
audit-since = С
audit-until = По
audit-time-hint = 2025-03-01 или 2025-03-01 14:30
audit-table = Таблица
audit-any-table = любая
audit-search = Найти
audit-no-database = У этого рабочего места нет базы данных клиники (database_url в settings.toml), поэтому журнал изменений недоступен. Попросите администратора её настроить.
audit-loading = Читаем базу данных клиники…
audit-nothing = Нет изменений, подходящих под поиск.
audit-count = Изменений: { $count }, сначала новые
audit-bad-time = «{ $input }» — не время: напишите 2025-03-01 или 2025-03-01 14:30.
audit-refused = База данных клиники не показала журнал изменений: { $detail }
audit-failed = Не удалось прочитать журнал изменений: { $detail }
audit-unknown-author = неизвестно (до включения аудита)
audit-col-when = Когда
audit-col-who = Кто
audit-col-op = Изменение
audit-col-table = Таблица
audit-col-changes = Поля
audit-op-insert = создание
audit-op-update = изменение
audit-op-delete = удаление
audit-op-refused = отказ
audit-change = { $column }: { $new } (было: { $old })
audit-change-set = { $column }: { $new }
