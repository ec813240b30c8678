# Navigation, actions and words shared by every screen.
nav-calls = Calls
nav-inquiries = Inquiries
nav-deals = Deals
nav-tasks = Tasks
nav-people = People
nav-settings = Settings
nav-help = Keyboard shortcuts

action-save = Save
action-cancel = Cancel
action-ok = OK
action-quit = Quit
action-edit = Edit
action-new-person = New person
action-new-inquiry = New inquiry
action-new-task = New task
action-new-deal = New deal
action-new-visit = Book a visit
action-open-person = Open person
action-save-password = Save to keyring

choice-none = —
list-empty = Nothing here yet.
list-count = { $count ->
    [one] { $count } record
   *[other] { $count } records
}
no-right = You do not have the right to see this. Ask the clinic head.
person-unknown = Unknown number
phone-copy = Click to copy the number

status-no-user = No user set for this workstation (Settings)
status-offline-replica = Local replica
status-help-hint = F1 — keyboard shortcuts
status-person-saved = Person saved
status-inquiry-saved = Inquiry saved
status-task-saved = Task saved
status-deal-saved = Deal saved
status-visit-saved = Visit saved
status-settings-saved = Settings saved
status-password-saved = Password saved to the keyring

notice-title = Attention
fatal-title = ClinicDesk cannot open this workstation's data

help-title = Keyboard shortcuts
help-toggle = Show or hide this list
help-screens = Calls, Missed calls, Inquiries, Deals, Tasks, People, Settings, Team, Audit (those you may see)
help-search = Find a person
help-new-inquiry = New inquiry (for the open person)
help-new-task = New task (for the open person)
help-save = Save the open form
help-close = Close the form or this list
help-refresh = Read the lists again

role-head = Clinic head
role-admin = Setup admin
role-operator = Operator
role-supervisor = Call-center supervisor
role-doctor = Doctor
role-nurse = Nurse

country-RU = Russia (+7)
country-UA = Ukraine (+380)

call-direction-in = Incoming
call-direction-out = Outgoing
call-result-answered = Answered
call-result-missed = Missed
call-result-busy = Busy
call-result-failed = Failed

inquiry-source-call = Call
inquiry-source-missed-call = Missed call
inquiry-source-web = Web form
inquiry-source-walk-in = Walk-in
inquiry-source-messenger = Messenger
inquiry-status-new = New
inquiry-status-in-progress = In progress
inquiry-status-closed = Closed
inquiry-result-booked = Booked a visit
inquiry-result-consultation = Consulted
inquiry-result-callback = Call back
inquiry-result-refused = Refused
inquiry-result-spam = Spam

task-status-open = Open
task-status-in-progress = In progress
task-status-done = Done
task-status-cancelled = Cancelled

visit-status-booked = Booked
visit-status-confirmed = Confirmed
visit-status-arrived = Patient arrived
visit-status-cancelled = Cancelled
status-call-recorded = Call recorded
status-draft-saved = Draft kept
status-missed-recorded = Missed call: a call-back task was created
status-draft-restored = An unsaved inquiry was restored

# Deadline notifications.
notify-reminder = Reminder
notify-deadline = Deadline
notify-summary = Overdue tasks: { $count }
notify-open = Open
notify-snooze = Snooze 10 min
notify-done = Done
notify-in-window = { $title } ({ $detail }). This reminder is shown here because no desktop notification service answered: { $why }
notify-summary-in-window = Overdue tasks: { $count }. Shown here because no desktop notification service answered: { $why }

# Sync with the clinic database.
sync-online = Clinic database: online · { $pending } to send
sync-offline = Clinic database: offline, working locally · { $pending } to send
sync-last = Last synced { $time }
sync-conflicts = Conflicts: { $count }
sync-rejected = Refused by the server: { $count }
sync-unencrypted = Not encrypted
sync-unencrypted-hint = The clinic database is on another machine and its address says sslmode=disable: patients' data crosses the network in clear. Ask the administrator for a TLS address (sslmode=require or verify-full) and enter it in Settings.
conflicts-title = Sync conflicts
conflicts-none = No conflicts.
conflict-yours = You wrote: { $value }
conflict-server = The clinic database kept: { $value }
conflict-acknowledge = Understood
status-template-saved = Task template saved
