-- ClinicDesk local replica, schema version 1.
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
--   * Tables that are not synced (outbox, sync_state, drafts) are local to
--     this workstation.


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
