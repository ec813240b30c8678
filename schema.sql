-- ClinicDesk local replica, schema version 3.
--
-- This file is the whole current schema of a workstation's SQLite replica of
-- the clinic database. `src/store/migrate.rs` applies it to a new file and
-- runs later migrations on older files, each in one transaction.
--
-- Conventions
--   * Every synced table has a UUIDv7 text primary key `id`, `row_version`
--     (bumped on each change), `updated_at` and `deleted_at` (tombstone), both
--     Unix milliseconds UTC. Rows are never deleted, only tombstoned.
--   * All times are INTEGER Unix milliseconds UTC.
--   * Phones are stored normalised to E.164 ('+79161234567') and indexed: the
--     caller card finds a person by an exact index lookup.
--   * Enumerations are short lowercase TEXT codes checked by CHECK constraints;
--     the UI translates them.
--   * Tables that are not synced (outbox, sync_state, sync_*, drafts,
--     task_history, write_author) are local to this workstation.


-- Organisation -----------------------------------------------------------

CREATE TABLE org_units (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    parent_id   TEXT REFERENCES org_units(id),
    row_version INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);

CREATE TABLE roles (
    id          TEXT PRIMARY KEY NOT NULL,
    code        TEXT NOT NULL UNIQUE,      -- head, admin, operator, supervisor, doctor, nurse
    name        TEXT NOT NULL,
    row_version INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);

-- The rights a role has by default. A right is a code such as 'inquiry.view'
-- (the list lives in src/crm/rights.rs).
CREATE TABLE role_rights (
    id          TEXT PRIMARY KEY NOT NULL,
    role_id     TEXT NOT NULL REFERENCES roles(id),
    right_code  TEXT NOT NULL,
    row_version INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER,
    UNIQUE (role_id, right_code)
);

CREATE TABLE users (
    id           TEXT PRIMARY KEY NOT NULL,
    login        TEXT NOT NULL UNIQUE,
    full_name    TEXT NOT NULL,
    role_id      TEXT NOT NULL REFERENCES roles(id),
    org_unit_id  TEXT REFERENCES org_units(id),
    specialty    TEXT,                      -- doctors: what they see patients for
    sip_extension TEXT,
    active       INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    row_version  INTEGER NOT NULL DEFAULT 1,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER
);

-- A right granted to (granted = 1) or taken from (granted = 0) one user, on
-- top of the defaults of their role. The clinic head edits these.
CREATE TABLE user_rights (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id),
    right_code  TEXT NOT NULL,
    granted     INTEGER NOT NULL CHECK (granted IN (0, 1)),
    row_version INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER,
    UNIQUE (user_id, right_code)
);

-- What an operator is doing now, set in their window and seen by
-- supervisors: free, with a client (at the desk), on a break, away.
CREATE TABLE operator_statuses (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL UNIQUE REFERENCES users(id),
    status      TEXT NOT NULL CHECK (status IN ('free', 'with_client', 'break', 'away')),
    since       INTEGER NOT NULL,
    row_version INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);

-- Marketing ----------------------------------------------------------------

CREATE TABLE ad_channels (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('search', 'social', 'maps', 'referral', 'offline', 'website', 'other')),
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    row_version INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);

CREATE TABLE campaigns (
    id           TEXT PRIMARY KEY NOT NULL,
    channel_id   TEXT NOT NULL REFERENCES ad_channels(id),
    name         TEXT NOT NULL,
    budget_cents INTEGER NOT NULL DEFAULT 0 CHECK (budget_cents >= 0),
    starts_on    TEXT,                      -- ISO date
    ends_on      TEXT,
    row_version  INTEGER NOT NULL DEFAULT 1,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER
);

-- Call tracking: a dialled number (DID) that belongs to a channel or campaign.
CREATE TABLE tracking_numbers (
    id          TEXT PRIMARY KEY NOT NULL,
    did_e164    TEXT NOT NULL UNIQUE,
    channel_id  TEXT NOT NULL REFERENCES ad_channels(id),
    campaign_id TEXT REFERENCES campaigns(id),
    row_version INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);

-- People -----------------------------------------------------------------

CREATE TABLE people (
    id          TEXT PRIMARY KEY NOT NULL,
    last_name   TEXT NOT NULL,
    first_name  TEXT NOT NULL,
    middle_name TEXT NOT NULL DEFAULT '',
    birth_date  TEXT,                       -- ISO date
    sex         TEXT CHECK (sex IN ('f', 'm')),
    email       TEXT,
    note        TEXT NOT NULL DEFAULT '',
    external_id TEXT UNIQUE,                -- id in the system people were imported from
    created_at  INTEGER NOT NULL,
    row_version INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);

-- A person has several phones; one number may belong to several people.
CREATE TABLE person_phones (
    id          TEXT PRIMARY KEY NOT NULL,
    person_id   TEXT NOT NULL REFERENCES people(id),
    phone_e164  TEXT NOT NULL,
    kind        TEXT NOT NULL DEFAULT 'mobile' CHECK (kind IN ('mobile', 'home', 'work', 'relative', 'other')),
    row_version INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER,
    UNIQUE (person_id, phone_e164)
);
CREATE INDEX person_phones_by_phone ON person_phones(phone_e164) WHERE deleted_at IS NULL;

-- Search over people: names as written and transliterated to the other
-- script, and the digits of every phone. Trigrams make any part of a name or
-- number searchable and give the candidates for typo-tolerant matching.
-- Maintained by the store in the same transaction as the person.
-- Its rowid is the person's rowid in `people`.
CREATE VIRTUAL TABLE people_fts USING fts5(
    names,
    phones,
    tokenize = 'trigram'
);

-- Dictionaries -------------------------------------------------------------

CREATE TABLE inquiry_reasons (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    row_version INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);

CREATE TABLE deal_types (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    row_version INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);

CREATE TABLE deal_stages (
    id           TEXT PRIMARY KEY NOT NULL,
    deal_type_id TEXT NOT NULL REFERENCES deal_types(id),
    name         TEXT NOT NULL,
    position     INTEGER NOT NULL,
    outcome      TEXT NOT NULL DEFAULT 'open' CHECK (outcome IN ('open', 'won', 'lost')),
    row_version  INTEGER NOT NULL DEFAULT 1,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER
);
CREATE INDEX deal_stages_by_type ON deal_stages(deal_type_id, position);

-- "When a visit of a deal of this type gets this status, move the deal to
-- this stage." Stored here; run by the automatic-transitions engine.
CREATE TABLE auto_transition_rules (
    id              TEXT PRIMARY KEY NOT NULL,
    deal_type_id    TEXT NOT NULL REFERENCES deal_types(id),
    visit_status    TEXT NOT NULL CHECK (visit_status IN ('booked', 'confirmed', 'arrived', 'cancelled')),
    target_stage_id TEXT NOT NULL REFERENCES deal_stages(id),
    active          INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    row_version     INTEGER NOT NULL DEFAULT 1,
    updated_at      INTEGER NOT NULL,
    deleted_at      INTEGER
);

CREATE TABLE task_types (
    id          TEXT PRIMARY KEY NOT NULL,
    code        TEXT NOT NULL UNIQUE,       -- call_back, confirm_visit, ...
    name        TEXT NOT NULL,
    row_version INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);

CREATE TABLE task_templates (
    id                  TEXT PRIMARY KEY NOT NULL,
    task_type_id        TEXT NOT NULL REFERENCES task_types(id),
    title               TEXT NOT NULL,
    deadline_offset_min INTEGER NOT NULL CHECK (deadline_offset_min >= 0),
    reminder_offset_min INTEGER CHECK (reminder_offset_min >= 0), -- before the deadline
    responsible_role_id TEXT REFERENCES roles(id),
    row_version         INTEGER NOT NULL DEFAULT 1,
    updated_at          INTEGER NOT NULL,
    deleted_at          INTEGER
);

-- Work -------------------------------------------------------------------

CREATE TABLE calls (
    id           TEXT PRIMARY KEY NOT NULL,
    direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    peer_e164    TEXT NOT NULL,             -- the other party, normalised when it could be
    did_e164     TEXT,                      -- the clinic's number that was dialled (incoming)
    person_id    TEXT REFERENCES people(id),
    operator_id  TEXT REFERENCES users(id),
    started_at   INTEGER NOT NULL,
    answered_at  INTEGER,
    ended_at     INTEGER,
    result       TEXT NOT NULL CHECK (result IN ('answered', 'missed', 'busy', 'failed')),
    inquiry_id   TEXT,                      -- REFERENCES inquiries(id); calls come first
    sip_call_id  TEXT,
    row_version  INTEGER NOT NULL DEFAULT 1,
    updated_at   INTEGER NOT NULL,
    deleted_at   INTEGER,
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
-- The call log pages through these by OFFSET; partial indexes on exactly
-- its filters keep that an index-only walk.
CREATE INDEX calls_by_time ON calls(started_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX calls_missed_by_time ON calls(started_at DESC) WHERE deleted_at IS NULL AND result = 'missed';
CREATE INDEX calls_by_operator ON calls(operator_id, started_at DESC) WHERE deleted_at IS NULL;
CREATE INDEX calls_by_peer ON calls(peer_e164, started_at DESC);
CREATE INDEX calls_by_person ON calls(person_id, started_at DESC) WHERE person_id IS NOT NULL;

CREATE TABLE inquiries (
    id                TEXT PRIMARY KEY NOT NULL,
    person_id         TEXT REFERENCES people(id),
    phone_e164        TEXT,
    call_id           TEXT REFERENCES calls(id),
    channel_id        TEXT REFERENCES ad_channels(id),
    campaign_id       TEXT REFERENCES campaigns(id),
    reason_id         TEXT REFERENCES inquiry_reasons(id),
    source            TEXT NOT NULL DEFAULT 'call' CHECK (source IN ('call', 'missed_call', 'web', 'walk_in', 'messenger')),
    status            TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'in_progress', 'closed')),
    result            TEXT CHECK (result IN ('booked', 'consultation', 'callback', 'refused', 'spam')),
    operator_id       TEXT REFERENCES users(id),
    note              TEXT NOT NULL DEFAULT '',
    created_at        INTEGER NOT NULL,
    first_response_at INTEGER,
    closed_at         INTEGER,
    row_version       INTEGER NOT NULL DEFAULT 1,
    updated_at        INTEGER NOT NULL,
    deleted_at        INTEGER
);
CREATE INDEX inquiries_by_time ON inquiries(created_at DESC);
CREATE INDEX inquiries_by_person ON inquiries(person_id, created_at DESC) WHERE person_id IS NOT NULL;
CREATE INDEX inquiries_open ON inquiries(status, created_at DESC) WHERE status <> 'closed';
-- The missed-call rules: a caller's open missed-call inquiries (upgrade 0004).
CREATE INDEX inquiries_missed_open_by_phone ON inquiries(phone_e164, created_at)
    WHERE source = 'missed_call' AND status <> 'closed' AND deleted_at IS NULL;

CREATE TABLE deals (
    id             TEXT PRIMARY KEY NOT NULL,
    deal_type_id   TEXT NOT NULL REFERENCES deal_types(id),
    stage_id       TEXT NOT NULL REFERENCES deal_stages(id),
    person_id      TEXT REFERENCES people(id),
    inquiry_id     TEXT REFERENCES inquiries(id),
    title          TEXT NOT NULL,
    amount_cents   INTEGER NOT NULL DEFAULT 0 CHECK (amount_cents >= 0),
    status         TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'won', 'lost')),
    responsible_id TEXT REFERENCES users(id),
    created_at     INTEGER NOT NULL,
    closed_at      INTEGER,
    row_version    INTEGER NOT NULL DEFAULT 1,
    updated_at     INTEGER NOT NULL,
    deleted_at     INTEGER
);
CREATE INDEX deals_by_stage ON deals(stage_id, created_at DESC);
CREATE INDEX deals_by_person ON deals(person_id) WHERE person_id IS NOT NULL;

CREATE TABLE tasks (
    id             TEXT PRIMARY KEY NOT NULL,
    task_type_id   TEXT NOT NULL REFERENCES task_types(id),
    template_id    TEXT REFERENCES task_templates(id),
    title          TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    responsible_id TEXT REFERENCES users(id),  -- NULL: the shared queue
    deadline_at    INTEGER NOT NULL,
    remind_at      INTEGER,
    status         TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'done', 'cancelled')),
    person_id      TEXT REFERENCES people(id),
    inquiry_id     TEXT REFERENCES inquiries(id),
    deal_id        TEXT REFERENCES deals(id),
    created_by     TEXT REFERENCES users(id),
    created_at     INTEGER NOT NULL,
    completed_at   INTEGER,
    row_version    INTEGER NOT NULL DEFAULT 1,
    updated_at     INTEGER NOT NULL,
    deleted_at     INTEGER
);
CREATE INDEX tasks_open_by_deadline ON tasks(deadline_at) WHERE status IN ('open', 'in_progress');
CREATE INDEX tasks_by_responsible ON tasks(responsible_id, deadline_at);
CREATE INDEX tasks_by_person ON tasks(person_id) WHERE person_id IS NOT NULL;
CREATE INDEX tasks_by_inquiry ON tasks(inquiry_id) WHERE inquiry_id IS NOT NULL;

CREATE TABLE visits (
    id            TEXT PRIMARY KEY NOT NULL,
    person_id     TEXT NOT NULL REFERENCES people(id),
    doctor_id     TEXT NOT NULL REFERENCES users(id),
    deal_id       TEXT REFERENCES deals(id),
    service       TEXT NOT NULL DEFAULT '',
    starts_at     INTEGER NOT NULL,
    duration_min  INTEGER NOT NULL DEFAULT 30 CHECK (duration_min > 0),
    status        TEXT NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'confirmed', 'arrived', 'cancelled')),
    cancel_reason TEXT,
    row_version   INTEGER NOT NULL DEFAULT 1,
    updated_at    INTEGER NOT NULL,
    deleted_at    INTEGER,
    CHECK (status <> 'cancelled' OR cancel_reason IS NOT NULL)
);
CREATE INDEX visits_by_person ON visits(person_id, starts_at);
CREATE INDEX visits_by_doctor ON visits(doctor_id, starts_at);

-- Settings of the whole clinic (the workstation's own live in settings.toml).
CREATE TABLE global_settings (
    id          TEXT PRIMARY KEY NOT NULL,
    key         TEXT NOT NULL UNIQUE,
    value       TEXT NOT NULL,              -- JSON
    row_version INTEGER NOT NULL DEFAULT 1,
    updated_at  INTEGER NOT NULL,
    deleted_at  INTEGER
);

-- Local to this workstation --------------------------------------------------

-- Every local change, written in the same transaction as the change itself,
-- waiting to be uploaded. mutation_id is this workstation's sequence.
CREATE TABLE outbox (
    mutation_id INTEGER PRIMARY KEY AUTOINCREMENT,
    tx_id       TEXT NOT NULL,              -- groups the rows of one local transaction
    table_name  TEXT NOT NULL,
    row_id      TEXT NOT NULL,
    op          TEXT NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    payload     TEXT NOT NULL,              -- JSON of the changed columns
    created_at  INTEGER NOT NULL
);
CREATE INDEX outbox_by_row ON outbox(table_name, row_id);

CREATE TABLE sync_state (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- Deadline notifications already given on this workstation: each reminder
-- and deadline once, whatever restarts or syncs happen. A moved deadline is
-- a new one.
CREATE TABLE notified (
    task_id TEXT NOT NULL,
    kind    TEXT NOT NULL CHECK (kind IN ('reminder', 'deadline', 'snooze')),
    due_at  INTEGER NOT NULL,
    via     TEXT NOT NULL CHECK (via IN ('desktop', 'window', 'summary')),
    at      INTEGER NOT NULL,
    PRIMARY KEY (task_id, kind, due_at)
);

-- "Snooze 10 min": when to remind of the task again.
CREATE TABLE snoozes (
    task_id TEXT PRIMARY KEY NOT NULL,
    until   INTEGER NOT NULL
);

-- What the operator is typing (e.g. the inquiry during a call), saved as
-- they type so a crash or a dropped call loses nothing.
CREATE TABLE drafts (
    key        TEXT PRIMARY KEY NOT NULL,   -- e.g. 'inquiry:<sip call id>'
    form       TEXT NOT NULL,               -- JSON
    updated_at INTEGER NOT NULL
);

-- Sync bookkeeping (src/sync/) -----------------------------------------------

-- The value a contended field (a deal's stage, a visit's slot) had before
-- this workstation changed it: uploaded with the change, so the server can
-- tell whether another workstation changed it meanwhile (then the change is
-- a conflict, never a silent overwrite). Recorded by the triggers below on
-- the first local change; forgotten once the change is uploaded. `value` is
-- BLOB (no affinity) so it keeps the column's own type.
CREATE TABLE sync_base (
    table_name  TEXT NOT NULL,
    row_id      TEXT NOT NULL,
    column_name TEXT NOT NULL,
    value       BLOB,
    PRIMARY KEY (table_name, row_id, column_name)
) WITHOUT ROWID;

CREATE TRIGGER sync_base_deal_stage AFTER UPDATE OF stage_id ON deals
WHEN OLD.stage_id IS NOT NEW.stage_id
BEGIN
    INSERT OR IGNORE INTO sync_base (table_name, row_id, column_name, value)
    VALUES ('deals', OLD.id, 'stage_id', OLD.stage_id);
END;

CREATE TRIGGER sync_base_visit_start AFTER UPDATE OF starts_at ON visits
WHEN OLD.starts_at IS NOT NEW.starts_at
BEGIN
    INSERT OR IGNORE INTO sync_base (table_name, row_id, column_name, value)
    VALUES ('visits', OLD.id, 'starts_at', OLD.starts_at);
END;

CREATE TRIGGER sync_base_visit_doctor AFTER UPDATE OF doctor_id ON visits
WHEN OLD.doctor_id IS NOT NEW.doctor_id
BEGIN
    INSERT OR IGNORE INTO sync_base (table_name, row_id, column_name, value)
    VALUES ('visits', OLD.id, 'doctor_id', OLD.doctor_id);
END;

-- A change of this workstation that the server did not apply because another
-- workstation got there first: it changed the same contended field ('field':
-- column_name, both values), or deleted the row ('deleted': local_value holds
-- the edited fields). Listed in the window until the operator resolves it.
CREATE TABLE sync_conflicts (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tx_id        TEXT NOT NULL,
    table_name   TEXT NOT NULL,
    row_id       TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('field', 'deleted')),
    column_name  TEXT NOT NULL DEFAULT '',
    local_value  TEXT NOT NULL,             -- JSON: what this workstation wrote
    server_value TEXT NOT NULL,             -- JSON: what the server kept
    detected_at  INTEGER NOT NULL,
    resolved_at  INTEGER,
    UNIQUE (tx_id, table_name, row_id, column_name)
);

-- A local transaction the server refused as a whole (e.g. it broke a
-- constraint). Its rows were put back to the server's state; what was
-- attempted is kept here for the operator.
CREATE TABLE sync_rejections (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    tx_id        TEXT NOT NULL UNIQUE,
    changes      TEXT NOT NULL,             -- JSON array of the transaction's changes
    error        TEXT NOT NULL,
    detail       TEXT NOT NULL DEFAULT '',
    code         TEXT NOT NULL DEFAULT '',  -- SQLSTATE
    rejected_at  INTEGER NOT NULL,
    dismissed_at INTEGER
);

-- Downloaded rows that could not be applied yet (a local row still holds a
-- unique value the server has since given to another row); fetched again on
-- every round until they apply.
CREATE TABLE sync_refetch (
    table_name TEXT NOT NULL,
    row_id     TEXT NOT NULL,
    PRIMARY KEY (table_name, row_id)
) WITHOUT ROWID;

-- A task's history (local, never synced) -------------------------------------

-- Every change of a task's tracked fields (created, status, deadline,
-- responsible, title), for the History of the task editor. Filled by the
-- triggers below, so changes that arrive by sync are recorded as well as
-- this workstation's own. Local to this workstation: no row_version, never
-- in the outbox. `author_id` is the user the writer acted for
-- (`write_author`), or on creation the task's `created_by`; NULL when the
-- change came from another workstation by sync (the clinic head's audit
-- trail on the server says who). Values are BLOB (no affinity) so they keep
-- the column's own type.
CREATE TABLE task_history (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id    TEXT NOT NULL,
    changed_at INTEGER NOT NULL,
    author_id  TEXT,
    field      TEXT NOT NULL CHECK (field IN ('created', 'status', 'deadline_at', 'responsible_id', 'title')),
    old_value  BLOB,
    new_value  BLOB
);

CREATE INDEX task_history_of_task ON task_history (task_id, changed_at);

-- The user a local write transaction acts for: set by the writer inside the
-- transaction and removed before it commits, so only the triggers of that
-- transaction see it (downloads from sync never set it).
CREATE TABLE write_author (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    user_id TEXT
);

CREATE TRIGGER task_history_created AFTER INSERT ON tasks
WHEN NOT EXISTS (SELECT 1 FROM task_history WHERE task_id = NEW.id AND field = 'created')
BEGIN
    INSERT INTO task_history (task_id, changed_at, author_id, field, old_value, new_value)
    VALUES (NEW.id, NEW.created_at, coalesce((SELECT user_id FROM write_author WHERE id = 1), NEW.created_by),
            'created', NULL, NEW.title);
END;

CREATE TRIGGER task_history_status AFTER UPDATE OF status ON tasks
WHEN OLD.status IS NOT NEW.status
BEGIN
    INSERT INTO task_history (task_id, changed_at, author_id, field, old_value, new_value)
    VALUES (NEW.id, NEW.updated_at, (SELECT user_id FROM write_author WHERE id = 1), 'status', OLD.status, NEW.status);
END;

CREATE TRIGGER task_history_deadline AFTER UPDATE OF deadline_at ON tasks
WHEN OLD.deadline_at IS NOT NEW.deadline_at
BEGIN
    INSERT INTO task_history (task_id, changed_at, author_id, field, old_value, new_value)
    VALUES (NEW.id, NEW.updated_at, (SELECT user_id FROM write_author WHERE id = 1), 'deadline_at',
            OLD.deadline_at, NEW.deadline_at);
END;

CREATE TRIGGER task_history_responsible AFTER UPDATE OF responsible_id ON tasks
WHEN OLD.responsible_id IS NOT NEW.responsible_id
BEGIN
    INSERT INTO task_history (task_id, changed_at, author_id, field, old_value, new_value)
    VALUES (NEW.id, NEW.updated_at, (SELECT user_id FROM write_author WHERE id = 1), 'responsible_id',
            OLD.responsible_id, NEW.responsible_id);
END;

CREATE TRIGGER task_history_title AFTER UPDATE OF title ON tasks
WHEN OLD.title IS NOT NEW.title
BEGIN
    INSERT INTO task_history (task_id, changed_at, author_id, field, old_value, new_value)
    VALUES (NEW.id, NEW.updated_at, (SELECT user_id FROM write_author WHERE id = 1), 'title', OLD.title, NEW.title);
END;

-- A task removed from the replica (a refused insert undone) takes its
-- history with it.
CREATE TRIGGER task_history_forget AFTER DELETE ON tasks
BEGIN
    DELETE FROM task_history WHERE task_id = OLD.id;
END;
