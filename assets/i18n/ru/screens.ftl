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
