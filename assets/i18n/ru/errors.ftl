# Что пошло не так и что делать.
err-phone-empty = Введите номер телефона.
err-phone-characters = В «{ $input }» есть символы, которых не бывает в номере телефона.
err-phone-length = В «{ $input }» { $digits ->
    [one] { $digits } цифра
    [few] { $digits } цифры
   *[other] { $digits } цифр
}; в номере с кодом страны от 10 до 15 цифр.
err-name-required = Введите фамилию или имя.
err-date-format = «{ $input }» — не дата; пишите 2024-03-01 или 01.03.2024.
err-date-future = «{ $input }» ещё не наступило.
err-datetime-format = «{ $input }» — не дата и время; пишите 2024-03-01 14:30 или 01.03.2024 14:30.
err-inquiry-who = Выберите пациента или введите номер звонившего.
err-reason-required = Выберите причину обращения.
err-result-required = У закрытого обращения должен быть результат.
err-title-required = Введите название.
err-task-type-required = Выберите тип задачи.
err-stage-required = Выберите тип сделки и этап.
err-amount-format = «{ $input }» — не сумма; пишите 1500 или 1500,50.
err-person-required = Выберите пациента.
err-doctor-required = Выберите врача.
err-duration = «{ $input }» — не длительность; укажите минуты от 5 до 600.
err-cancel-reason = Для отменённого визита укажите причину.

err-replica-not-database = { $path } — не база ClinicDesk (и вообще не файл SQLite). Файл не тронут: уберите его или запустите с другим профилем (--profile).
err-replica-foreign = { $path } — база другой программы, а не копия ClinicDesk. Файл не тронут: запустите с другим профилем (--profile).
err-replica-future = { $path } записан более новой версией ClinicDesk (схема { $found }, эта версия знает до { $supported }). Файл не тронут: обновите ClinicDesk.
err-replica-outdated = { $path } имеет старую схему { $found } (эта версия ClinicDesk использует { $supported }) и открыт только для чтения, поэтому не обновлён: запустите ClinicDesk на нём один раз или выполните `clinicdesk check`.
err-replica-corrupt = { $path } повреждён ({ $detail }). Файл не тронут: восстановите его из резервной копии или уберите, и ClinicDesk загрузит свежую копию с сервера клиники.
err-profile-readonly = ClinicDesk не может писать в { $path } ({ $detail }). Исправьте права на каталог профиля или запустите с другим (--profile).
err-profile-nohome = Нет домашнего каталога для профиля. Запустите с --profile КАТАЛОГ.
err-settings-invalid = В файле настроек { $path } ошибка: { $detail }. Исправьте или удалите файл; пока что действуют настройки по умолчанию, а файл остаётся как есть.
err-settings-io = Не удаётся прочитать или записать файл настроек { $path }: { $detail }.
err-not-found = { $what } не найден(а); возможно, запись удалили на другом рабочем месте.
err-record-gone = Этой записи больше нет; возможно, её удалили на другом рабочем месте.
err-database = Ошибка локальной базы: { $detail }
err-replica-thread = Не удалось запустить фоновый поток локальной базы ({ $detail }): системе не хватает ресурсов. Закройте другие программы и запустите ClinicDesk снова.
err-unknown-user = В клинике нет пользователя с логином «{ $login }». Проверьте «Мой логин» в настройках.
err-no-keyring = Нет связки ключей для хранения пароля (Secret Service не ответил). Запустите или разблокируйте связку ключей (например, gnome-keyring) и сохраните снова.
err-keyring = Связка ключей не приняла пароль: { $detail }
err-no-right-to-save = У вас нет права это сохранять. Обратитесь к руководителю клиники.
err-remind-before = «{ $input }» — не число минут; введите от 0 до 10080 или оставьте пустым, если напоминание не нужно.
err-minutes = «{ $input }» — не число минут; введите целое число от 0 до 527040.
