# The screens: lists, the deal board, people.
col-time = Time
col-direction = Dir.
col-number = Number
col-person = Person
col-operator = Operator
col-result = Result
col-duration = Duration
col-created = Created
col-reason = Reason
col-channel = Channel
col-status = Status
col-deadline = Deadline
col-title = Task
col-type = Type
col-responsible = Responsible

filter-all = All
filter-missed = Missed
filter-mine = Mine
filter-open = Open
filter-my-tasks = Mine and shared queue
filter-all-open = All open

task-overdue = Overdue
task-shared-queue = Shared queue

deals-stage-summary = { $count } · { $amount }
deals-more = …and { $count } more

people-search = Search
people-search-hint = Name or any part of a number
people-hint = Find a person by name or number, or pick one from a call.
people-nothing-found = Nobody found. Check the spelling or create a new person.

history-inquiries = Inquiries ({ $count })
history-deals = Deals ({ $count })
history-tasks = Tasks ({ $count })
history-visits = Visits ({ $count })
history-calls = Calls ({ $count })

nav-missed = Missed calls
missed-none = No missed calls wait for a call back.
col-first-missed = Missed at
col-attempts = Attempts
action-call-back = Call back

# The caller card.
card-title-incoming = Incoming call
card-title-dialing = Calling
card-title-active = Call
card-channel = Channel of the dialled number: { $channel }
card-new-caller = New caller
card-shared-number = { $count } people share this number
card-this-is-the-caller = This is the caller
card-why-match = Matched by the { $kind } phone
card-first-channel = Came first through: { $channel }
card-open-inquiries = Open inquiries ({ $count })
card-open-deals = Open deals ({ $count })
card-open-tasks = Open tasks ({ $count })
card-next-visit = Next visit: { $visit }
card-last-visit = Last visit: { $visit }
card-last-calls = Last calls ({ $count })
phone-kind-mobile = mobile
phone-kind-home = home
phone-kind-work = work
phone-kind-relative = relative's
phone-kind-other = other
action-answer = Answer
action-reject = Decline
action-hang-up = Hang up

nav-team = Team
action-edit-rights = Rights…
rights-pick-user = Choose a user to see and change their rights.
rights-of = Rights of { $name }
rights-reset = As the role
rights-from-role = from the role
status-mine = My status:
operator-status-free = Free
operator-status-with-client = With a client
operator-status-break = Break
operator-status-away = Away
right-crm-all = All CRM rights
right-settings-sip = Edit SIP account settings
right-settings-dictionaries = Edit dictionaries, task types and templates, deal types and rules
right-inquiry-view = View inquiries
right-inquiry-process = Process inquiries
right-inquiry-delete = Delete inquiries
right-deal-view = View deals
right-deal-edit = Create and edit deals
right-task-edit = Create and edit tasks
right-task-work = Work with tasks
right-task-delete = Delete tasks
right-task-view-all = See everyone's tasks
right-visit-edit = Create and edit visits
right-visit-delete = Delete visits
right-call-log = Call log
right-call-view-all = See everyone's calls
right-analytics-view = Analytics
right-audit-view = Read the audit trail (who changed what and when)

# The audit trail (the clinic head's)
nav-audit = Audit
audit-user = User
audit-text = Text
audit-since = From
audit-until = Until
audit-time-hint = 2025-03-01 or 2025-03-01 14:30
audit-table = Table
audit-any-table = any
audit-search = Search
audit-no-database = This workstation has no clinic database (database_url in settings.toml), so there is no audit trail to read. Ask the administrator to set it up.
audit-loading = Reading the clinic database…
audit-nothing = No changes match the search.
audit-count = { $count } changes, newest first
audit-bad-time = “{ $input }” is not a time: write 2025-03-01 or 2025-03-01 14:30.
audit-refused = The clinic database refused to show the audit trail: { $detail }
audit-failed = The audit trail could not be read: { $detail }
audit-unknown-author = unknown (before audit)
audit-col-when = When
audit-col-who = Who
audit-col-op = Change
audit-col-table = Table
audit-col-changes = Fields
audit-op-insert = created
audit-op-update = changed
audit-op-delete = deleted
