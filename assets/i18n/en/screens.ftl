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
