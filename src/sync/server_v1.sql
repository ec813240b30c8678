-- ClinicDesk shared clinic database (PostgreSQL), schema version 1.
--
-- Applied by `clinicdesk server init` in one transaction. Frozen once
-- released: later changes add a new file (v2.sql, ...) to MIGRATIONS in
-- src/sync/server.rs.
--
-- The tables of the clinic mirror the workstation replica's (schema.sql):
-- the same names, columns, defaults and checks, with BIGINT where SQLite says
-- INTEGER. Every synced table has a UUIDv7 text `id`, `row_version`,
-- `updated_at` and `deleted_at` (tombstone); rows are never deleted.
--
-- On top of them, what sync needs (the `sync_` tables and `clinicdesk_`
-- functions):
--   * sync_changes: the change log, one entry per changed row, written by
--     triggers. Its cursor is (xid, seq); clients read it only below
--     pg_snapshot_xmin(pg_current_snapshot()), so a transaction that took a
--     low seq and commits late is never skipped. NOTIFY clinicdesk_changes
--     on commit wakes the clients (who also poll).
--   * sync_client_txs: the outcome of every uploaded local transaction by
--     (client id, first mutation id), so a retried upload is answered, not
--     applied twice.
--   * clinicdesk_apply(): applies one local transaction of one workstation
--     with field-level merge, version checks on contended fields, and
--     delete-wins tombstones; a change that breaks a constraint is rejected
--     and recorded instead of failing the upload.

-- Organisation -----------------------------------------------------------

CREATE TABLE org_units (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    parent_id   TEXT REFERENCES org_units(id),
    row_version BIGINT NOT NULL DEFAULT 1,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);

CREATE TABLE roles (
    id          TEXT PRIMARY KEY NOT NULL,
    code        TEXT NOT NULL UNIQUE,      -- head, admin, operator, supervisor, doctor, nurse
    name        TEXT NOT NULL,
    row_version BIGINT NOT NULL DEFAULT 1,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);

-- The rights a role has by default. A right is a code such as 'inquiry.view'
-- (the list lives in src/crm/rights.rs).
CREATE TABLE role_rights (
    id          TEXT PRIMARY KEY NOT NULL,
    role_id     TEXT NOT NULL REFERENCES roles(id),
    right_code  TEXT NOT NULL,
    row_version BIGINT NOT NULL DEFAULT 1,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT,
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
    active       BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    row_version  BIGINT NOT NULL DEFAULT 1,
    updated_at   BIGINT NOT NULL,
    deleted_at   BIGINT
);

-- A right granted to (granted = 1) or taken from (granted = 0) one user, on
-- top of the defaults of their role. The clinic head edits these.
CREATE TABLE user_rights (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL REFERENCES users(id),
    right_code  TEXT NOT NULL,
    granted     BIGINT NOT NULL CHECK (granted IN (0, 1)),
    row_version BIGINT NOT NULL DEFAULT 1,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT,
    UNIQUE (user_id, right_code)
);

-- What an operator is doing now, set in their window and seen by
-- supervisors: free, with a client (at the desk), on a break, away.
CREATE TABLE operator_statuses (
    id          TEXT PRIMARY KEY NOT NULL,
    user_id     TEXT NOT NULL UNIQUE REFERENCES users(id),
    status      TEXT NOT NULL CHECK (status IN ('free', 'with_client', 'break', 'away')),
    since       BIGINT NOT NULL,
    row_version BIGINT NOT NULL DEFAULT 1,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);

-- Marketing ----------------------------------------------------------------

CREATE TABLE ad_channels (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('search', 'social', 'maps', 'referral', 'offline', 'website', 'other')),
    active      BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    row_version BIGINT NOT NULL DEFAULT 1,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);

CREATE TABLE campaigns (
    id           TEXT PRIMARY KEY NOT NULL,
    channel_id   TEXT NOT NULL REFERENCES ad_channels(id),
    name         TEXT NOT NULL,
    budget_cents BIGINT NOT NULL DEFAULT 0 CHECK (budget_cents >= 0),
    starts_on    TEXT,                      -- ISO date
    ends_on      TEXT,
    row_version  BIGINT NOT NULL DEFAULT 1,
    updated_at   BIGINT NOT NULL,
    deleted_at   BIGINT
);

-- Call tracking: a dialled number (DID) that belongs to a channel or campaign.
CREATE TABLE tracking_numbers (
    id          TEXT PRIMARY KEY NOT NULL,
    did_e164    TEXT NOT NULL UNIQUE,
    channel_id  TEXT NOT NULL REFERENCES ad_channels(id),
    campaign_id TEXT REFERENCES campaigns(id),
    row_version BIGINT NOT NULL DEFAULT 1,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT
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
    created_at  BIGINT NOT NULL,
    row_version BIGINT NOT NULL DEFAULT 1,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);

-- A person has several phones; one number may belong to several people.
CREATE TABLE person_phones (
    id          TEXT PRIMARY KEY NOT NULL,
    person_id   TEXT NOT NULL REFERENCES people(id),
    phone_e164  TEXT NOT NULL,
    kind        TEXT NOT NULL DEFAULT 'mobile' CHECK (kind IN ('mobile', 'home', 'work', 'relative', 'other')),
    row_version BIGINT NOT NULL DEFAULT 1,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT,
    UNIQUE (person_id, phone_e164)
);

-- Dictionaries -------------------------------------------------------------

CREATE TABLE inquiry_reasons (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    row_version BIGINT NOT NULL DEFAULT 1,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);

CREATE TABLE deal_types (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    row_version BIGINT NOT NULL DEFAULT 1,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);

CREATE TABLE deal_stages (
    id           TEXT PRIMARY KEY NOT NULL,
    deal_type_id TEXT NOT NULL REFERENCES deal_types(id),
    name         TEXT NOT NULL,
    position     BIGINT NOT NULL,
    outcome      TEXT NOT NULL DEFAULT 'open' CHECK (outcome IN ('open', 'won', 'lost')),
    row_version  BIGINT NOT NULL DEFAULT 1,
    updated_at   BIGINT NOT NULL,
    deleted_at   BIGINT
);

-- "When a visit of a deal of this type gets this status, move the deal to
-- this stage." Stored here; run by the automatic-transitions engine.
CREATE TABLE auto_transition_rules (
    id              TEXT PRIMARY KEY NOT NULL,
    deal_type_id    TEXT NOT NULL REFERENCES deal_types(id),
    visit_status    TEXT NOT NULL CHECK (visit_status IN ('booked', 'confirmed', 'arrived', 'cancelled')),
    target_stage_id TEXT NOT NULL REFERENCES deal_stages(id),
    active          BIGINT NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    row_version     BIGINT NOT NULL DEFAULT 1,
    updated_at      BIGINT NOT NULL,
    deleted_at      BIGINT
);

CREATE TABLE task_types (
    id          TEXT PRIMARY KEY NOT NULL,
    code        TEXT NOT NULL UNIQUE,       -- call_back, confirm_visit, ...
    name        TEXT NOT NULL,
    row_version BIGINT NOT NULL DEFAULT 1,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);

CREATE TABLE task_templates (
    id                  TEXT PRIMARY KEY NOT NULL,
    task_type_id        TEXT NOT NULL REFERENCES task_types(id),
    title               TEXT NOT NULL,
    deadline_offset_min BIGINT NOT NULL CHECK (deadline_offset_min >= 0),
    reminder_offset_min BIGINT CHECK (reminder_offset_min >= 0), -- before the deadline
    responsible_role_id TEXT REFERENCES roles(id),
    row_version         BIGINT NOT NULL DEFAULT 1,
    updated_at          BIGINT NOT NULL,
    deleted_at          BIGINT
);

-- Work -------------------------------------------------------------------

CREATE TABLE calls (
    id           TEXT PRIMARY KEY NOT NULL,
    direction    TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    peer_e164    TEXT NOT NULL,             -- the other party, normalised when it could be
    did_e164     TEXT,                      -- the clinic's number that was dialled (incoming)
    person_id    TEXT REFERENCES people(id),
    operator_id  TEXT REFERENCES users(id),
    started_at   BIGINT NOT NULL,
    answered_at  BIGINT,
    ended_at     BIGINT,
    result       TEXT NOT NULL CHECK (result IN ('answered', 'missed', 'busy', 'failed')),
    inquiry_id   TEXT,                      -- REFERENCES inquiries(id); calls come first
    sip_call_id  TEXT,
    row_version  BIGINT NOT NULL DEFAULT 1,
    updated_at   BIGINT NOT NULL,
    deleted_at   BIGINT,
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);

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
    created_at        BIGINT NOT NULL,
    first_response_at BIGINT,
    closed_at         BIGINT,
    row_version       BIGINT NOT NULL DEFAULT 1,
    updated_at        BIGINT NOT NULL,
    deleted_at        BIGINT
);

CREATE TABLE deals (
    id             TEXT PRIMARY KEY NOT NULL,
    deal_type_id   TEXT NOT NULL REFERENCES deal_types(id),
    stage_id       TEXT NOT NULL REFERENCES deal_stages(id),
    person_id      TEXT REFERENCES people(id),
    inquiry_id     TEXT REFERENCES inquiries(id),
    title          TEXT NOT NULL,
    amount_cents   BIGINT NOT NULL DEFAULT 0 CHECK (amount_cents >= 0),
    status         TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'won', 'lost')),
    responsible_id TEXT REFERENCES users(id),
    created_at     BIGINT NOT NULL,
    closed_at      BIGINT,
    row_version    BIGINT NOT NULL DEFAULT 1,
    updated_at     BIGINT NOT NULL,
    deleted_at     BIGINT
);

CREATE TABLE tasks (
    id             TEXT PRIMARY KEY NOT NULL,
    task_type_id   TEXT NOT NULL REFERENCES task_types(id),
    template_id    TEXT REFERENCES task_templates(id),
    title          TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    responsible_id TEXT REFERENCES users(id),  -- NULL: the shared queue
    deadline_at    BIGINT NOT NULL,
    remind_at      BIGINT,
    status         TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'in_progress', 'done', 'cancelled')),
    person_id      TEXT REFERENCES people(id),
    inquiry_id     TEXT REFERENCES inquiries(id),
    deal_id        TEXT REFERENCES deals(id),
    created_by     TEXT REFERENCES users(id),
    created_at     BIGINT NOT NULL,
    completed_at   BIGINT,
    row_version    BIGINT NOT NULL DEFAULT 1,
    updated_at     BIGINT NOT NULL,
    deleted_at     BIGINT
);

CREATE TABLE visits (
    id            TEXT PRIMARY KEY NOT NULL,
    person_id     TEXT NOT NULL REFERENCES people(id),
    doctor_id     TEXT NOT NULL REFERENCES users(id),
    deal_id       TEXT REFERENCES deals(id),
    service       TEXT NOT NULL DEFAULT '',
    starts_at     BIGINT NOT NULL,
    duration_min  BIGINT NOT NULL DEFAULT 30 CHECK (duration_min > 0),
    status        TEXT NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'confirmed', 'arrived', 'cancelled')),
    cancel_reason TEXT,
    row_version   BIGINT NOT NULL DEFAULT 1,
    updated_at    BIGINT NOT NULL,
    deleted_at    BIGINT,
    CHECK (status <> 'cancelled' OR cancel_reason IS NOT NULL)
);

-- Settings of the whole clinic (the workstation's own live in settings.toml).
CREATE TABLE global_settings (
    id          TEXT PRIMARY KEY NOT NULL,
    key         TEXT NOT NULL UNIQUE,
    value       TEXT NOT NULL,              -- JSON
    row_version BIGINT NOT NULL DEFAULT 1,
    updated_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);


-- Sync ---------------------------------------------------------------------

-- The synced tables, in an order where every foreign key points backwards
-- (snapshots and bulk loads go in this order).
CREATE TABLE sync_tables (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL UNIQUE
);
INSERT INTO sync_tables (name, position) VALUES
    ('org_units', 1), ('roles', 2), ('role_rights', 3), ('users', 4), ('user_rights', 5),
    ('operator_statuses', 6), ('ad_channels', 7), ('campaigns', 8), ('tracking_numbers', 9), ('people', 10),
    ('person_phones', 11), ('inquiry_reasons', 12), ('deal_types', 13), ('deal_stages', 14),
    ('auto_transition_rules', 15), ('task_types', 16), ('task_templates', 17), ('calls', 18), ('inquiries', 19),
    ('deals', 20), ('tasks', 21), ('visits', 22), ('global_settings', 23);

-- Contended fields: an update of `key_column` carries the value its writer
-- started from; when the server holds another value by then, the update of
-- the whole group is not applied and the writer gets a conflict with both
-- values. The replica records those starting values (sync_base, schema.sql).
CREATE TABLE sync_contended (
    table_name    TEXT NOT NULL REFERENCES sync_tables(name),
    key_column    TEXT NOT NULL,
    group_columns TEXT[] NOT NULL,
    PRIMARY KEY (table_name, key_column)
);
INSERT INTO sync_contended (table_name, key_column, group_columns) VALUES
    ('deals', 'stage_id', '{stage_id,status,closed_at}'),
    ('visits', 'starts_at', '{starts_at,doctor_id,duration_min}'),
    ('visits', 'doctor_id', '{starts_at,doctor_id,duration_min}');

CREATE TABLE sync_changes (
    xid        XID8   NOT NULL DEFAULT pg_current_xact_id(),
    seq        BIGINT GENERATED ALWAYS AS IDENTITY,
    table_name TEXT   NOT NULL,
    row_id     TEXT   NOT NULL,
    changed_at BIGINT NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
    PRIMARY KEY (xid, seq)
);
-- Retention deletes by time; entries are appended in time order, so a BRIN
-- index costs almost nothing to keep.
CREATE INDEX sync_changes_by_time ON sync_changes USING brin (changed_at);

CREATE TABLE sync_client_txs (
    client_id         TEXT   NOT NULL,
    first_mutation_id BIGINT NOT NULL,
    last_mutation_id  BIGINT NOT NULL,
    outcome           JSONB  NOT NULL,
    applied_at        BIGINT NOT NULL,
    PRIMARY KEY (client_id, first_mutation_id)
);

CREATE FUNCTION clinicdesk_now_ms() RETURNS BIGINT LANGUAGE sql VOLATILE AS
$$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint $$;

-- Every change bumps the row's version; updated_at moves even when the
-- writer (e.g. an administrator in psql) did not set it.
CREATE FUNCTION clinicdesk_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.row_version := OLD.row_version + 1;
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := clinicdesk_now_ms();
    END IF;
    RETURN NEW;
END
$$;

-- One log entry per changed row. A bulk load (`clinicdesk server load`)
-- skips it and moves the epoch instead: every client then resyncs.
CREATE FUNCTION clinicdesk_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('clinicdesk.bulk_load', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO sync_changes (table_name, row_id) VALUES (TG_TABLE_NAME, OLD.id);
    ELSE
        INSERT INTO sync_changes (table_name, row_id) VALUES (TG_TABLE_NAME, NEW.id);
    END IF;
    RETURN NULL;
END
$$;

-- Delivered at commit, once per transaction (identical notifications fold).
CREATE FUNCTION clinicdesk_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('clinicdesk_changes', '');
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t TEXT;
BEGIN
    FOR t IN SELECT name FROM sync_tables ORDER BY position LOOP
        EXECUTE format('CREATE TRIGGER clinicdesk_version BEFORE UPDATE ON %I
                        FOR EACH ROW EXECUTE FUNCTION clinicdesk_bump_version()', t);
        EXECUTE format('CREATE TRIGGER clinicdesk_log AFTER INSERT OR UPDATE OR DELETE ON %I
                        FOR EACH ROW EXECUTE FUNCTION clinicdesk_log_change()', t);
        EXECUTE format('CREATE TRIGGER clinicdesk_notify AFTER INSERT OR UPDATE OR DELETE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION clinicdesk_notify()', t);
    END LOOP;
END
$$;

-- Applies one local transaction of workstation `p_client` (its outbox rows
-- `p_first`..`p_last`, as a JSON array of {table, row_id, op, payload, base,
-- at}) and returns its outcome:
--   {"status": "applied", "conflicts": [...], "rows": [...]}
--   {"status": "rejected", "error": "...", "detail": "...", "code": "23505", "rows": [...]}
-- `rows` holds the server's state of every row the transaction touched
-- (null: the server has no such row), so the workstation can take it.
-- A transaction already applied is answered from sync_client_txs. Outcomes
-- the client has acknowledged (up to `p_acked`) are forgotten.
CREATE FUNCTION clinicdesk_apply(p_client TEXT, p_first BIGINT, p_last BIGINT, p_acked BIGINT, p_mutations JSONB)
RETURNS JSONB LANGUAGE plpgsql AS $$
DECLARE
    v_outcome   JSONB;
    v_conflicts JSONB := '[]';
    v_rows      JSONB := '[]';
    v_row       JSONB;
    m           JSONB;
    v_table     TEXT;
    v_id        TEXT;
    v_op        TEXT;
    v_payload   JSONB;
    v_base      JSONB;
    v_at        BIGINT;
    v_current   JSONB;
    v_cols      TEXT;
    v_dropped   TEXT[];
    v_detail    TEXT;
    -- The state of each row after this transaction's changes, by "table/id"
    -- (from RETURNING), so the answer needs no second read.
    v_state     JSONB := '{}';
    g           RECORD;
    r           RECORD;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('clinicdesk client ' || p_client, 0));
    -- Transactions never overlap and p_acked is a boundary: a range of the key.
    DELETE FROM sync_client_txs WHERE client_id = p_client AND first_mutation_id <= p_acked;
    SELECT outcome INTO v_outcome FROM sync_client_txs WHERE client_id = p_client AND first_mutation_id = p_first;
    IF NOT FOUND THEN
        BEGIN
            IF jsonb_array_length(p_mutations) > 1
               AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(p_mutations) AS e WHERE e->>'op' IS DISTINCT FROM 'insert') THEN
                -- Only new rows (an import, a new record with its parts): one
                -- INSERT per table and column set, in foreign-key order, instead
                -- of one per row. (Mixed transactions keep their own order: an
                -- update may free a unique value a later insert takes.)
                FOR g IN
                    SELECT x.e->>'table' AS tbl, c.cols, min(s.position) AS pos, min(x.ord) AS first,
                           jsonb_agg(coalesce(x.e->'payload', '{}') - 'row_version'
                                     || jsonb_build_object('id', x.e->'row_id',
                                                           'updated_at', coalesce((x.e->>'at')::bigint, clinicdesk_now_ms()))
                                     ORDER BY x.ord) AS rows,
                           bool_or(x.e->>'row_id' IS NULL) AS without_id
                    FROM jsonb_array_elements(p_mutations) WITH ORDINALITY AS x(e, ord)
                    CROSS JOIN LATERAL (
                        SELECT string_agg(format('%I', k), ', ' ORDER BY k) AS cols
                        FROM jsonb_object_keys(coalesce(x.e->'payload', '{}')) AS k
                        WHERE k NOT IN ('id', 'row_version', 'updated_at')
                    ) AS c
                    LEFT JOIN sync_tables s ON s.name = x.e->>'table'
                    GROUP BY x.e->>'table', c.cols
                    ORDER BY pos NULLS FIRST, first
                LOOP
                    IF g.pos IS NULL THEN
                        RAISE EXCEPTION 'table "%" is not synced', g.tbl USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                    IF g.without_id THEN
                        RAISE EXCEPTION 'a change of % has no row id', g.tbl USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                    EXECUTE format('WITH ins AS (INSERT INTO %1$I AS t (id, row_version, updated_at%2$s)
                                                 SELECT id, 1, updated_at%2$s FROM jsonb_populate_recordset(NULL::%1$I, $1)
                                                 RETURNING to_jsonb(t) AS r)
                                    SELECT coalesce(jsonb_object_agg(%3$L || (r->>''id''), r), ''{}'') FROM ins',
                                   g.tbl, coalesce(', ' || g.cols, ''), g.tbl || '/')
                        INTO v_row USING g.rows;
                    v_state := v_state || v_row;
                END LOOP;
            ELSE
                FOR m IN SELECT value FROM jsonb_array_elements(p_mutations) LOOP
                    v_table := m->>'table';
                    v_id := m->>'row_id';
                    v_op := m->>'op';
                    v_payload := coalesce(m->'payload', '{}') - 'id' - 'row_version' - 'updated_at';
                    v_base := coalesce(m->'base', '{}');
                    v_at := coalesce((m->>'at')::bigint, clinicdesk_now_ms());
                    IF NOT EXISTS (SELECT 1 FROM sync_tables WHERE name = v_table) THEN
                        RAISE EXCEPTION 'table "%" is not synced', v_table USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                    IF v_id IS NULL THEN
                        RAISE EXCEPTION 'a change of % has no row id', v_table USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                    IF v_op = 'insert' THEN
                        SELECT string_agg(format('%I', key), ', ') INTO v_cols FROM jsonb_object_keys(v_payload) AS key;
                        IF v_cols IS NULL THEN
                            EXECUTE format('INSERT INTO %I AS t (id, row_version, updated_at) VALUES ($1, 1, $2)
                                            RETURNING to_jsonb(t)', v_table)
                                INTO v_row USING v_id, v_at;
                        ELSE
                            EXECUTE format('INSERT INTO %1$I AS t (id, row_version, updated_at, %2$s)
                                            SELECT $1, 1, $2, %2$s FROM jsonb_populate_record(NULL::%1$I, $3)
                                            RETURNING to_jsonb(t)',
                                           v_table, v_cols)
                                INTO v_row USING v_id, v_at, v_payload;
                        END IF;
                    ELSIF v_op IN ('update', 'delete') THEN
                        EXECUTE format('SELECT to_jsonb(t) FROM %I t WHERE id = $1 FOR UPDATE', v_table)
                            INTO v_current USING v_id;
                        IF v_current IS NULL THEN
                            RAISE EXCEPTION '% % does not exist on the server', v_table, v_id USING ERRCODE = 'foreign_key_violation';
                        END IF;
                        IF v_op = 'delete' AND (v_current->>'deleted_at') IS NOT NULL THEN
                            -- Already a tombstone: the first deletion stands.
                            v_payload := '{}';
                        ELSIF v_op = 'update' AND (v_current->>'deleted_at') IS NOT NULL AND NOT v_payload ? 'deleted_at' THEN
                            -- Delete wins: an edit of a row deleted elsewhere is not applied, and its
                            -- author is told, with what they wrote.
                            v_conflicts := v_conflicts || jsonb_build_object(
                                'table', v_table, 'row_id', v_id, 'kind', 'deleted', 'column', '',
                                'local', v_payload, 'server', v_current->'deleted_at');
                            v_payload := '{}';
                        ELSE
                            v_dropped := '{}';
                            FOR g IN SELECT key_column, group_columns FROM sync_contended WHERE table_name = v_table
                                     ORDER BY key_column LOOP
                                IF v_payload ? g.key_column AND v_base ? g.key_column
                                   AND (v_current->g.key_column) IS DISTINCT FROM (v_base->g.key_column)
                                   AND (v_current->g.key_column) IS DISTINCT FROM (v_payload->g.key_column) THEN
                                    v_conflicts := v_conflicts || jsonb_build_object(
                                        'table', v_table, 'row_id', v_id, 'kind', 'field', 'column', g.key_column,
                                        'local', v_payload->g.key_column, 'server', v_current->g.key_column);
                                    v_dropped := v_dropped || g.group_columns;
                                END IF;
                            END LOOP;
                            v_payload := v_payload - v_dropped;
                        END IF;
                        v_row := v_current;
                        IF v_payload <> '{}' THEN
                            SELECT string_agg(format('%I', key), ', ') INTO v_cols FROM jsonb_object_keys(v_payload) AS key;
                            EXECUTE format('UPDATE %1$I t SET (%2$s, updated_at) =
                                            (SELECT %2$s, $2 FROM jsonb_populate_record(NULL::%1$I, $3)) WHERE t.id = $1
                                            RETURNING to_jsonb(t)',
                                           v_table, v_cols)
                                INTO v_row USING v_id, v_at, v_payload;
                        END IF;
                    ELSE
                        RAISE EXCEPTION 'unknown change "%" of %', v_op, v_table USING ERRCODE = 'invalid_parameter_value';
                    END IF;
                    v_state := v_state || jsonb_build_object(v_table || '/' || v_id, v_row);
                END LOOP;
            END IF;
            v_outcome := jsonb_build_object('status', 'applied', 'conflicts', v_conflicts);
        EXCEPTION WHEN OTHERS THEN
            -- Passing troubles (locks, cancels, the server going down) fail the
            -- upload, which is retried; anything else is this change's fault.
            IF SQLSTATE IN ('40001', '40P01', '55P03', '57014') OR left(SQLSTATE, 2) IN ('08', '53', '57', '58', 'XX') THEN
                RAISE;
            END IF;
            GET STACKED DIAGNOSTICS v_detail = PG_EXCEPTION_DETAIL;
            v_state := '{}';
            v_outcome := jsonb_build_object('status', 'rejected', 'error', SQLERRM, 'detail', coalesce(v_detail, ''),
                                            'code', SQLSTATE);
        END;
        INSERT INTO sync_client_txs (client_id, first_mutation_id, last_mutation_id, outcome, applied_at)
        VALUES (p_client, p_first, p_last, v_outcome, clinicdesk_now_ms());
    END IF;
    IF v_state <> '{}' THEN
        -- Applied just now: every touched row's state came back from RETURNING.
        SELECT coalesce(jsonb_agg(jsonb_build_object('table', d.tbl, 'row_id', d.id, 'row', v_state -> (d.tbl || '/' || d.id))), '[]')
        INTO v_rows
        FROM (SELECT DISTINCT e->>'table' AS tbl, e->>'row_id' AS id FROM jsonb_array_elements(p_mutations) AS e
              JOIN sync_tables s ON s.name = e->>'table' WHERE e->>'row_id' IS NOT NULL) AS d;
    ELSE
        -- Rejected, or answered again: read what the server has now.
        FOR r IN SELECT DISTINCT e->>'table' AS tbl, e->>'row_id' AS id
                 FROM jsonb_array_elements(p_mutations) AS e
                 JOIN sync_tables s ON s.name = e->>'table'
                 WHERE e->>'row_id' IS NOT NULL LOOP
            EXECUTE format('SELECT to_jsonb(t) FROM %I t WHERE id = $1', r.tbl) INTO v_row USING r.id;
            v_rows := v_rows || jsonb_build_array(jsonb_build_object('table', r.tbl, 'row_id', r.id, 'row', v_row));
        END LOOP;
    END IF;
    RETURN v_outcome || jsonb_build_object('rows', v_rows);
END
$$;

-- What a workstation downloads, in one call (one statement: one snapshot
-- for the horizon, the log and the rows, as the function is STABLE):
-- up to `p_limit` log entries after the cursor (`p_xid`, `p_seq`) and below
-- pg_snapshot_xmin(pg_current_snapshot()), so a transaction still running
-- (which may have taken a lower seq) holds back everything after it instead
-- of being skipped; a full batch ends at a transaction boundary (unless one
-- transaction fills it), so a workstation never shows half of one. Returns
--   {"cursor": "xid:seq", "more": bool, "rows": [{"table", "row_id", "row"}]}
-- with the current state of every row named there or in `p_refetch`
-- ([[table, id], ...]; "row" null: no such row), tables in foreign-key
-- order; or {"resync": why} when the cursor is behind the pruned log or
-- from another epoch.
CREATE FUNCTION clinicdesk_changes(p_xid TEXT, p_seq BIGINT, p_epoch TEXT, p_limit INTEGER, p_refetch JSONB)
RETURNS JSONB LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_epoch   TEXT;
    v_horizon TEXT;
    v_xids    XID8[];
    v_seqs    BIGINT[];
    v_tables  TEXT[];
    v_ids     TEXT[];
    v_count   INTEGER;
    v_keep    INTEGER;
    v_cursor  TEXT := p_xid || ':' || p_seq;
    v_rows    JSONB := '[]';
    v_found   JSONB;
    t         RECORD;
BEGIN
    SELECT value INTO v_epoch FROM clinicdesk_meta WHERE key = 'epoch';
    IF coalesce(v_epoch, '1') <> p_epoch THEN
        RETURN jsonb_build_object('resync', 'the clinic database was reloaded');
    END IF;
    SELECT value INTO v_horizon FROM clinicdesk_meta WHERE key = 'horizon';
    IF (p_xid::xid8, p_seq) < (split_part(v_horizon, ':', 1)::xid8, split_part(v_horizon, ':', 2)::bigint) THEN
        RETURN jsonb_build_object('resync', 'this workstation was away longer than the change log is kept');
    END IF;
    SELECT array_agg(l.xid ORDER BY l.xid, l.seq), array_agg(l.seq ORDER BY l.xid, l.seq),
           array_agg(l.table_name ORDER BY l.xid, l.seq), array_agg(l.row_id ORDER BY l.xid, l.seq)
    INTO v_xids, v_seqs, v_tables, v_ids
    FROM (SELECT c.xid, c.seq, c.table_name, c.row_id FROM sync_changes c
          WHERE (c.xid, c.seq) > (p_xid::xid8, p_seq) AND c.xid < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY c.xid, c.seq LIMIT p_limit) AS l;
    v_count := coalesce(array_length(v_xids, 1), 0);
    v_keep := v_count;
    IF v_count = p_limit THEN
        WHILE v_keep > 0 AND v_xids[v_keep] = v_xids[v_count] LOOP
            v_keep := v_keep - 1;
        END LOOP;
        IF v_keep = 0 THEN
            v_keep := v_count;
        END IF;
    END IF;
    IF v_keep > 0 THEN
        v_cursor := v_xids[v_keep]::text || ':' || v_seqs[v_keep];
    END IF;
    FOR t IN
        SELECT w.tbl, array_agg(DISTINCT w.id) AS ids
        FROM (SELECT v_tables[i] AS tbl, v_ids[i] AS id FROM generate_series(1, v_keep) AS i
              UNION
              SELECT r->>0, r->>1 FROM jsonb_array_elements(coalesce(p_refetch, '[]')) AS r) AS w
        JOIN sync_tables s ON s.name = w.tbl
        WHERE w.id IS NOT NULL
        GROUP BY w.tbl, s.position
        ORDER BY s.position
    LOOP
        EXECUTE format('SELECT coalesce(jsonb_object_agg(t.id, to_jsonb(t)), ''{}'') FROM %I t WHERE t.id = ANY($1)', t.tbl)
            INTO v_found USING t.ids;
        v_rows := v_rows || (SELECT jsonb_agg(jsonb_build_object('table', t.tbl, 'row_id', i, 'row', v_found -> i))
                             FROM unnest(t.ids) AS i);
    END LOOP;
    RETURN jsonb_build_object('cursor', v_cursor, 'more', v_count = p_limit, 'rows', v_rows);
END
$$;

-- Forgets log entries older than `p_keep_ms` and outcomes nobody asked for
-- again; clients whose cursor falls behind the new horizon resync.
CREATE FUNCTION clinicdesk_prune(p_keep_ms BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    v_cutoff BIGINT := clinicdesk_now_ms() - p_keep_ms;
    v_last   RECORD;
    v_count  BIGINT;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('clinicdesk prune', 0));
    SELECT xid, seq INTO v_last FROM sync_changes WHERE changed_at < v_cutoff ORDER BY xid DESC, seq DESC LIMIT 1;
    DELETE FROM sync_changes WHERE changed_at < v_cutoff;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_last.xid IS NOT NULL THEN
        UPDATE clinicdesk_meta SET value = v_last.xid::text || ':' || v_last.seq::text
        WHERE key = 'horizon'
          AND (split_part(value, ':', 1)::xid8, split_part(value, ':', 2)::bigint) < (v_last.xid, v_last.seq);
    END IF;
    DELETE FROM sync_client_txs WHERE applied_at < v_cutoff;
    UPDATE clinicdesk_meta SET value = clinicdesk_now_ms()::text WHERE key = 'last_prune';
    RETURN v_count;
END
$$;

-- clinicdesk_meta is created by the migrator (it holds schema_version).
--   database_id         a replica that synced with another database resyncs
--   horizon             "xid:seq": the log was pruned up to here; a client
--                       whose cursor is behind it resyncs
--   epoch               bumped by a bulk load: every client resyncs
--   log_retention_days  how long the change log is kept
--   last_prune          Unix ms of the last pruning
INSERT INTO clinicdesk_meta (key, value) VALUES
    ('database_id', gen_random_uuid()::text),
    ('horizon', '0:0'),
    ('epoch', '1'),
    ('log_retention_days', '30'),
    ('last_prune', '0');
