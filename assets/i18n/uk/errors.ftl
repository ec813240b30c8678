# Що пішло не так і що робити.
err-phone-empty = Введіть номер телефону.
err-phone-characters = У «{ $input }» є символи, яких не буває в номері телефону.
err-phone-length = У «{ $input }» { $digits ->
    [one] { $digits } цифра
    [few] { $digits } цифри
   *[other] { $digits } цифр
}; у номері з кодом країни від 10 до 15 цифр.
err-name-required = Введіть прізвище або ім'я.
err-date-format = «{ $input }» — не дата; пишіть 2024-03-01 або 01.03.2024.
err-date-future = «{ $input }» ще не настало.
err-datetime-format = «{ $input }» — не дата й час; пишіть 2024-03-01 14:30 або 01.03.2024 14:30.
err-inquiry-who = Виберіть пацієнта або введіть номер того, хто дзвонив.
err-reason-required = Виберіть причину звернення.
err-result-required = Закрите звернення повинно мати результат.
err-title-required = Введіть назву.
err-task-type-required = Виберіть тип завдання.
err-stage-required = Виберіть тип угоди та етап.
err-amount-format = «{ $input }» — не сума; пишіть 1500 або 1500,50.
err-person-required = Виберіть пацієнта.
err-doctor-required = Виберіть лікаря.
err-duration = «{ $input }» — не тривалість; вкажіть хвилини від 5 до 600.
err-cancel-reason = Для скасованого візиту вкажіть причину.

err-replica-not-database = { $path } — не база ClinicDesk (і взагалі не файл SQLite). Файл не змінено: приберіть його або запустіть з іншим профілем (--profile).
err-replica-foreign = { $path } — база іншої програми, а не копія ClinicDesk. Файл не змінено: запустіть з іншим профілем (--profile).
err-replica-future = { $path } записано новішою версією ClinicDesk (схема { $found }, ця версія знає до { $supported }). Файл не змінено: оновіть ClinicDesk.
err-replica-outdated = { $path } має стару схему { $found } (ця версія ClinicDesk використовує { $supported }) і відкрито лише для читання, тож не оновлено: запустіть ClinicDesk на ньому один раз або виконайте `clinicdesk check`.
err-replica-corrupt = { $path } пошкоджено ({ $detail }). Файл не змінено: відновіть його з резервної копії або приберіть, і ClinicDesk завантажить свіжу копію з сервера клініки.
err-profile-readonly = ClinicDesk не може писати в { $path } ({ $detail }). Виправте права на каталог профілю або запустіть з іншим (--profile).
err-profile-nohome = Немає домашнього каталогу для профілю. Запустіть з --profile КАТАЛОГ.
err-settings-invalid = У файлі налаштувань { $path } помилка: { $detail }. Виправте або видаліть файл; поки що діють типові налаштування, а файл лишається як є.
err-settings-io = Не вдається прочитати або записати файл налаштувань { $path }: { $detail }.
err-not-found = { $what } не знайдено; можливо, запис видалили на іншому робочому місці.
err-record-gone = Цього запису більше немає; можливо, його видалили на іншому робочому місці.
err-database = Помилка локальної бази: { $detail }
err-unknown-user = У клініці немає користувача з логіном «{ $login }». Перевірте «Мій логін» у налаштуваннях.
err-no-keyring = Немає в'язки ключів для зберігання пароля (Secret Service не відповів). Запустіть або розблокуйте в'язку ключів (наприклад, gnome-keyring) і збережіть знову.
err-keyring = В'язка ключів не прийняла пароль: { $detail }
err-no-right-to-save = У вас немає права це зберігати. Зверніться до керівника клініки.
err-remind-before = «{ $input }» — не кількість хвилин; введіть від 0 до 10080 або залиште порожнім, якщо нагадування не потрібне.
err-minutes = «{ $input }» — не кількість хвилин; введіть ціле число від 0 до 527040.
