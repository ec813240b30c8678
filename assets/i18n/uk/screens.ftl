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
