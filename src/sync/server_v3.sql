-- ClinicDesk shared clinic database, schema version 3: the server's own
-- functions cannot be fooled by a login, and an audit trail of its own.
--
-- Frozen once released, like server_v1.sql and server_v2.sql.
--
-- What version 2 left open, and how this closes it:
--   * Its SECURITY DEFINER functions ran with `search_path FROM CURRENT`,
--     which does not name pg_temp, so PostgreSQL searched the session's
--     temporary schema first: a login could CREATE TEMP TABLE
--     clinicdesk_meta (or users, role_rights, user_rights, sync_changes)
--     and the function, running as the owner, read the login's copy --
--     making it an administrator, giving it every right inside the policies,
--     or sending its writes' log entries into its own table. Now every
--     clinicdesk_* function runs with `search_path = pg_catalog, <schema>,
--     pg_temp` (pg_temp last: never found before our tables; functions and
--     operators are never looked up there at all), and the policies that
--     decided calls and tasks through helper functions hold their
--     expressions themselves (a policy is stored with the functions and
--     tables it names resolved, so no search_path is ever consulted).
--   * Every login could execute every function. Now only what a workstation
--     calls, and what runs as the caller inside that, is granted to
--     clinicdesk_user (see "Who may call what" at the end).
--   * `SET clinicdesk.bulk_load = 'on'` made any login's writes unlogged:
--     now only the database administrators' (the owner's, superusers')
--     bulk loads skip the log.
--   * The audit trail was the change log, which pruning cuts. Now it is
--     clinicdesk_audit_log: append-only, never pruned with the change log,
--     kept as long as the clinic head says (global setting
--     audit_retention_days, 5 years by default), and it also records the
--     uploads the server refused.
--   * Calls, inquiries and people get column guards like users, deals and
--     tasks: what a login may not change of a row it may otherwise save.
--   * An upload was known by (client id, mutation id) only: a copied or
--     restored replica was answered with another transaction's outcome, or
--     had its old transactions applied again. Now by the transaction's own
--     UUID too, and one client's uploads commit in its order (see
--     "Uploads" below).

-- Nobody but the owner creates objects in the clinic's schema (PostgreSQL
-- before 15 lets PUBLIC create in `public`): a login's own functions or
-- operators there could stand in for ours. (A warning, not an error, when
-- the migrator does not own the schema.)
DO $$
BEGIN
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', current_schema());
    EXECUTE format('REVOKE CREATE ON SCHEMA %I FROM clinicdesk_user', current_schema());
END
$$;

-- The audit trail ---------------------------------------------------------------

-- One entry per accepted change of a synced row (written by the same
-- trigger as the change log, in the same transaction) and per change of an
-- upload the server refused:
--   author     the login (session_user) that made or tried it
--   user_id    the clinic user of that login, if any
--   op         insert, update, delete (a tombstone counts as one), or
--              refused (the upload was rejected; nothing was changed)
--   changes    {"column": [old, new]}; an insert's old values are null; a
--              refused change holds what it tried, with "tried": [null, op]
--              and "error": [null, why].
-- Entries from before this version are taken from the change log (which
-- held them in version 2; its v1 entries have no author).
CREATE TABLE clinicdesk_audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    changed_at BIGINT NOT NULL DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::bigint,
    xid        XID8   NOT NULL DEFAULT pg_current_xact_id(),
    author     TEXT,
    user_id    TEXT,
    table_name TEXT   NOT NULL,
    row_id     TEXT   NOT NULL,
    op         TEXT   CHECK (op IN ('insert', 'update', 'delete', 'refused')),
    changes    JSONB
);
CREATE INDEX clinicdesk_audit_log_by_time ON clinicdesk_audit_log (changed_at, id);
CREATE INDEX clinicdesk_audit_log_by_row ON clinicdesk_audit_log (row_id);
-- Read only through clinicdesk_audit(), written only by the functions below.
REVOKE ALL ON clinicdesk_audit_log FROM PUBLIC;

INSERT INTO clinicdesk_audit_log (changed_at, xid, author, user_id, table_name, row_id, op, changes)
SELECT changed_at, xid, author, user_id, table_name, row_id, op, changes
FROM sync_changes ORDER BY changed_at, xid, seq;

-- How long the audit trail is kept, in days: the global setting
-- `audit_retention_days` (a JSON number, set by the clinic head: see the
-- guard on global_settings below), five years when unset, never under one.
CREATE FUNCTION clinicdesk_audit_retention_days() RETURNS INTEGER LANGUAGE sql STABLE AS $$
    SELECT greatest(365, coalesce(
        (SELECT CASE WHEN btrim(value, '" ') ~ '^[0-9]{1,7}$' THEN btrim(value, '" ')::integer END
         FROM global_settings WHERE key = 'audit_retention_days' AND deleted_at IS NULL), 1825))
$$;

-- Append-only: no UPDATE, no TRUNCATE, and no DELETE of an entry younger
-- than the retention -- whoever runs it, the owner and any function of
-- theirs included (only ALTER TABLE by the owner could lift this). Logins
-- hold no privilege on the table at all.
CREATE FUNCTION clinicdesk_audit_log_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND TG_LEVEL = 'ROW' THEN
        IF OLD.changed_at < clinicdesk_now_ms() - clinicdesk_audit_retention_days()::bigint * 86400000 THEN
            RETURN OLD;
        END IF;
    END IF;
    RAISE EXCEPTION 'the audit trail is append-only: % of clinicdesk_audit_log is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'entries older than the retention (global setting audit_retention_days) go with clinicdesk_audit_purge()';
END
$$;
CREATE TRIGGER clinicdesk_append_only BEFORE UPDATE OR DELETE ON clinicdesk_audit_log
    FOR EACH ROW EXECUTE FUNCTION clinicdesk_audit_log_guard();
CREATE TRIGGER clinicdesk_append_only_truncate BEFORE TRUNCATE ON clinicdesk_audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION clinicdesk_audit_log_guard();

-- Forgets audit entries older than the retention; returns how many. For the
-- database administrator only (no login may execute it); clinicdesk_prune
-- never touches the audit trail.
CREATE FUNCTION clinicdesk_audit_purge() RETURNS BIGINT LANGUAGE plpgsql AS $$
DECLARE
    v_count BIGINT;
BEGIN
    DELETE FROM clinicdesk_audit_log
    WHERE changed_at < clinicdesk_now_ms() - clinicdesk_audit_retention_days()::bigint * 86400000;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RETURN v_count;
END
$$;

-- Only the clinic head (crm.all) sets how long the audit trail is kept
-- (other global settings stay with settings.dictionaries, as in version 2).
CREATE FUNCTION clinicdesk_guard_setting() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_keys TEXT[] := TG_ARGV[1:];
    v_touched BOOLEAN := NEW.key = ANY (v_keys);
BEGIN
    IF TG_OP = 'UPDATE' THEN
        v_touched := v_touched OR OLD.key = ANY (v_keys);
    END IF;
    IF v_touched AND row_security_active(TG_RELID::regclass) AND NOT clinicdesk_may(current_user, TG_ARGV[0]) THEN
        RAISE EXCEPTION 'you may not change the global setting % without the right %', coalesce(NEW.key, OLD.key),
            TG_ARGV[0] USING ERRCODE = 'insufficient_privilege', HINT = 'only the clinic head can';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER clinicdesk_guard_setting BEFORE INSERT OR UPDATE ON global_settings
    FOR EACH ROW EXECUTE FUNCTION clinicdesk_guard_setting('crm.all', 'audit_retention_days');

-- The change log and the audit trail, one trigger ------------------------------

-- One change-log entry (what workstations download) and one audit entry per
-- changed row, as the owner (no login holds a privilege on either table);
-- the author is the login of the session. The change log no longer keeps
-- the changed values (the audit trail does). A bulk load skips both -- only
-- when a database administrator runs it (`clinicdesk server load`); anyone
-- else's clinicdesk.bulk_load is ignored.
CREATE OR REPLACE FUNCTION clinicdesk_log_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    v_old     JSONB;
    v_new     JSONB;
    v_changes JSONB;
    v_op      TEXT := lower(TG_OP);
    v_id      TEXT;
    v_user    TEXT;
BEGIN
    -- clinicdesk_is_admin(session_user), written out: checked for every row
    -- of a load, and a call of that function costs twice the rest of this
    -- trigger. (pg_has_role counts a superuser as a member of every role.)
    IF current_setting('clinicdesk.bulk_load', true) = 'on'
       AND pg_has_role(session_user, (SELECT c.relowner FROM pg_class c WHERE c.oid = 'clinicdesk_meta'::regclass),
                       'MEMBER') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        v_id := OLD.id;
        SELECT jsonb_object_agg(o.key, jsonb_build_array(o.value, NULL)) INTO v_changes
        FROM jsonb_each(to_jsonb(OLD)) o WHERE o.key NOT IN ('id', 'row_version', 'updated_at') AND o.value <> 'null';
    ELSIF TG_OP = 'INSERT' THEN
        v_id := NEW.id;
        SELECT jsonb_object_agg(n.key, jsonb_build_array(NULL, n.value)) INTO v_changes
        FROM jsonb_each(to_jsonb(NEW)) n WHERE n.key NOT IN ('id', 'row_version', 'updated_at') AND n.value <> 'null';
    ELSE
        v_id := NEW.id;
        v_new := to_jsonb(NEW);
        v_old := to_jsonb(OLD);
        SELECT jsonb_object_agg(n.key, jsonb_build_array(v_old -> n.key, n.value)) INTO v_changes
        FROM jsonb_each(v_new) n WHERE n.key NOT IN ('row_version', 'updated_at') AND n.value IS DISTINCT FROM v_old -> n.key;
        IF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
            v_op := 'delete';
        END IF;
    END IF;
    v_user := clinicdesk_user_id(session_user);
    INSERT INTO sync_changes (table_name, row_id, op, author, user_id)
    VALUES (TG_TABLE_NAME, v_id, v_op, session_user, v_user);
    INSERT INTO clinicdesk_audit_log (author, user_id, table_name, row_id, op, changes)
    VALUES (session_user, v_user, TG_TABLE_NAME, v_id, v_op, v_changes);
    RETURN NULL;
END
$$;

-- Records an upload the server refused: one entry per change it held (the
-- first thousand), with what it tried and why it was refused. Called by
-- clinicdesk_apply, which runs as the caller, so every login may call it;
-- the author is always the caller's own login (session_user), so nobody can
-- put words in another's mouth, only own up to more attempts.
CREATE FUNCTION clinicdesk_audit_refusal(p_mutations JSONB, p_error TEXT) RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    v_user    TEXT := clinicdesk_user_id(session_user);
    v_error   JSONB := jsonb_build_array(NULL, coalesce(p_error, ''));
    m         JSONB;
    v_current JSONB;
    v_payload JSONB;
    v_base    JSONB;
BEGIN
    IF jsonb_typeof(p_mutations) IS DISTINCT FROM 'array' OR jsonb_array_length(p_mutations) = 0 THEN
        INSERT INTO clinicdesk_audit_log (author, user_id, table_name, row_id, op, changes)
        VALUES (session_user, v_user, '', '', 'refused', jsonb_build_object('error', v_error));
        RETURN;
    END IF;
    FOR m IN SELECT e FROM jsonb_array_elements(p_mutations) WITH ORDINALITY AS x(e, ord) WHERE ord <= 1000 ORDER BY ord LOOP
        v_payload := CASE WHEN jsonb_typeof(m -> 'payload') = 'object' THEN m -> 'payload' ELSE '{}' END
                     - 'id' - 'row_version' - 'updated_at';
        v_base := CASE WHEN jsonb_typeof(m -> 'base') = 'object' THEN m -> 'base' ELSE '{}' END;
        -- The old values: the server's row as it stands, for an existing row.
        v_current := NULL;
        IF m ->> 'op' IN ('update', 'delete') AND m ->> 'row_id' IS NOT NULL
           AND EXISTS (SELECT 1 FROM sync_tables WHERE name = m ->> 'table') THEN
            EXECUTE format('SELECT to_jsonb(t) FROM %I t WHERE id = $1', m ->> 'table') INTO v_current USING m ->> 'row_id';
        END IF;
        INSERT INTO clinicdesk_audit_log (author, user_id, table_name, row_id, op, changes)
        VALUES (session_user, v_user, coalesce(m ->> 'table', ''), coalesce(m ->> 'row_id', ''), 'refused',
                coalesce((SELECT jsonb_object_agg(p.key, jsonb_build_array(coalesce(v_current -> p.key, v_base -> p.key), p.value))
                          FROM jsonb_each(v_payload) p), '{}')
                || jsonb_build_object('tried', jsonb_build_array(NULL, m -> 'op'), 'error', v_error));
    END LOOP;
END
$$;

-- The audit trail for the clinic head (audit.view) and the database
-- administrators, newest first: by author (login or part of the name), table,
-- text (a row id, or anything in the changed values or a refusal's error)
-- and time (Unix ms, since inclusive, until exclusive). Same arguments and
-- columns as in version 2; now read from clinicdesk_audit_log, so as far
-- back as the audit retention, whatever the change log keeps.
CREATE OR REPLACE FUNCTION clinicdesk_audit(p_author TEXT, p_table TEXT, p_search TEXT, p_since BIGINT, p_until BIGINT,
                                            p_limit INTEGER)
RETURNS TABLE (changed_at BIGINT, author TEXT, user_id TEXT, full_name TEXT, table_name TEXT, row_id TEXT, op TEXT,
               changes JSONB)
LANGUAGE plpgsql STABLE SECURITY DEFINER AS $$
DECLARE
    v_like TEXT := '%' || replace(replace(replace(p_search, '\', '\\'), '%', '\%'), '_', '\_') || '%';
    v_who  TEXT := '%' || replace(replace(replace(p_author, '\', '\\'), '%', '\%'), '_', '\_') || '%';
BEGIN
    IF NOT (clinicdesk_is_admin(session_user) OR clinicdesk_may(session_user, 'audit.view')) THEN
        RAISE EXCEPTION 'only the clinic head may read the change log' USING ERRCODE = 'insufficient_privilege',
            HINT = 'the right audit.view is needed';
    END IF;
    RETURN QUERY
        SELECT a.changed_at, a.author, a.user_id, u.full_name, a.table_name, a.row_id, a.op, a.changes
        FROM clinicdesk_audit_log a LEFT JOIN users u ON u.id = a.user_id
        WHERE (p_author IS NULL OR a.author = p_author OR u.full_name ILIKE v_who)
          AND (p_table IS NULL OR a.table_name = p_table)
          AND (p_search IS NULL OR a.row_id = p_search OR a.changes::text ILIKE v_like)
          AND (p_since IS NULL OR a.changed_at >= p_since)
          AND (p_until IS NULL OR a.changed_at < p_until)
        ORDER BY a.changed_at DESC, a.id DESC
        LIMIT greatest(p_limit, 0);
END
$$;

-- Policies of calls and tasks without helper functions ---------------------------
--
-- Version 2's policies called clinicdesk_may_see_call / _task: SQL functions
-- that looked up what they call with the querying session's search_path,
-- and that PostgreSQL cannot inline (they hold subqueries), so they ran for
-- every row -- rights looked up several times per call or task: over a
-- minute for an operator to count 200,000 calls. The same rules
-- (Rights::may_see_call, Rights::may_see_task in src/crm/rights.rs) are now
-- written into the policies, which store what they name resolved, and the
-- rights are computed once per statement (under 0.1 s for the same count).
DROP POLICY read ON calls;
DROP POLICY add ON calls;
DROP POLICY change ON calls;
DROP POLICY read ON tasks;
DROP POLICY add ON tasks;
DROP POLICY change ON tasks;
DROP FUNCTION clinicdesk_may_see_call(TEXT, TEXT);
DROP FUNCTION clinicdesk_may_see_task(TEXT, TEXT);
DO $$
DECLARE
    v_call TEXT := '((SELECT clinicdesk_may(current_user, ''call.view_all''))
        OR ((SELECT clinicdesk_may(current_user, ''call.log''))
            AND (operator_id IS NULL OR operator_id = (SELECT clinicdesk_user_id(current_user)) OR result = ''missed'')))';
    v_task TEXT := '((SELECT clinicdesk_may(current_user, ''task.view_all''))
        OR (((SELECT clinicdesk_may(current_user, ''task.edit'')) OR (SELECT clinicdesk_may(current_user, ''task.work'')))
            AND (responsible_id IS NULL OR responsible_id = (SELECT clinicdesk_user_id(current_user))
                 OR created_by = (SELECT clinicdesk_user_id(current_user)))))';
BEGIN
    EXECUTE format('CREATE POLICY read ON calls FOR SELECT USING %s', v_call);
    EXECUTE format('CREATE POLICY add ON calls FOR INSERT WITH CHECK %s', v_call);
    EXECUTE format('CREATE POLICY change ON calls FOR UPDATE USING %s WITH CHECK %s', v_call, v_call);
    EXECUTE format('CREATE POLICY read ON tasks FOR SELECT USING %s', v_task);
    EXECUTE format('CREATE POLICY add ON tasks FOR INSERT WITH CHECK (%s
        AND (SELECT clinicdesk_may(current_user, ''task.edit''))
        AND (deleted_at IS NULL OR (SELECT clinicdesk_may(current_user, ''task.delete''))))', v_task);
    EXECUTE format('CREATE POLICY change ON tasks FOR UPDATE USING %s WITH CHECK (%s
        AND (deleted_at IS NULL OR (SELECT clinicdesk_may(current_user, ''task.delete''))))', v_task, v_task);
END
$$;

-- More column guards (clinicdesk_guard_columns, server_v2.sql) ------------------

-- Calls are recorded whole when they end; afterwards a workstation only
-- links them (to the person, to the inquiry they led to). Who took a call,
-- when, from which number, with which result -- and tombstoning a call --
-- are the clinic head's to correct (there is no right to delete calls).
CREATE TRIGGER clinicdesk_guard BEFORE UPDATE ON calls
    FOR EACH ROW EXECUTE FUNCTION clinicdesk_guard_columns('crm.all', 'person_id', 'inquiry_id');
-- An inquiry's operator (who took it) and creation time stay as recorded;
-- everything saving an inquiry changes (src/store/writes.rs, calls.rs) may
-- change, deleted_at included (the policy asks inquiry.delete for that).
CREATE TRIGGER clinicdesk_guard BEFORE UPDATE ON inquiries
    FOR EACH ROW EXECUTE FUNCTION clinicdesk_guard_columns('crm.all', 'person_id', 'phone_e164', 'call_id',
        'channel_id', 'campaign_id', 'reason_id', 'source', 'status', 'result', 'note', 'first_response_at',
        'closed_at', 'deleted_at');
-- A person's card may be edited by whoever saves people (the policy), but
-- deleting (tombstoning) or restoring a person takes the clinic head's
-- crm.all: there is no right to delete people (the client never deletes
-- one), and the closest rights, inquiry.delete and visit.delete, are about
-- one record, not a patient and everything that points to them.
CREATE TRIGGER clinicdesk_guard BEFORE UPDATE ON people
    FOR EACH ROW EXECUTE FUNCTION clinicdesk_guard_columns('crm.all', 'last_name', 'first_name', 'middle_name',
        'birth_date', 'sex', 'email', 'note', 'external_id');

-- Uploads --------------------------------------------------------------------------

-- An upload is known by the local transaction's own UUID, not only by
-- (client id, mutation id).
--
-- Version 2 answered an upload it had seen by (client id, first mutation
-- id) alone. A replica copied to a second PC (a disk image) has the same
-- client id and numbers its next transactions as the original does: the
-- copy's import of 200 people was answered with the original's outcome of
-- its own import ("applied"), the copy dropped it from its outbox, and the
-- server's state of those rows (none) took the people away from the copy
-- too. A replica restored from a backup re-sent transactions the server
-- had applied but whose records it had deleted when later uploads
-- acknowledged them (p_acked): they were applied again, over newer values.
--
-- Now each upload carries its transaction's UUID (the outbox's tx_id, a
-- fresh UUID for every local write transaction, src/store/mod.rs), and
-- sync_client_txs records it with the outcome:
--   * the same UUID again (a retry; a copy or a restored backup re-sending a
--     transaction made before the copy) is answered from the record, under
--     whatever client id it comes: nothing is applied twice;
--   * the same (client id, first mutation id) with another UUID is another
--     transaction: the replica is a copy of another workstation's, or was
--     restored from a backup. Nothing is applied and the answer is
--     {"status": "cloned"}; the workstation takes a new client id and
--     uploads its pending transactions again under it;
--   * p_prev, the UUID of the transaction uploaded just before this one in
--     the same pipeline (NULL for the first of a batch), must be recorded:
--     a transaction whose predecessor failed (a deadlock, a lock timeout, a
--     serialization failure, a "cloned" answer) is answered
--     {"status": "out_of_order"} and not applied, so one client's uploads
--     commit in its order whatever fails in the pipeline.
--
-- How long records are kept: no longer deleted when acknowledged, but by
-- clinicdesk_prune with the change log (server_v2.sql: applied_at older
-- than the log's cut-off, log_retention_days at least). That is exactly
-- as long as a replica can come back incrementally: a replica restored from
-- an older backup has a cursor behind the pruned log and takes a snapshot
-- anyway. One row per local transaction (the change log holds one per
-- changed row), so keeping them that long costs less than the log itself.
-- What stays open: the pending edits of a backup older than the retention
-- are no longer recognised and are applied as new ones.
-- Records from version 2 have no UUID (NULL): they answer their (client id,
-- first mutation id) as before.
ALTER TABLE sync_client_txs ADD COLUMN tx_uuid TEXT;
CREATE INDEX sync_client_txs_by_tx ON sync_client_txs (tx_uuid) WHERE tx_uuid IS NOT NULL;

-- Version 2's clinicdesk_apply, keyed as above, and a rejected upload is
-- recorded in the audit trail (after the block whose rollback undid its
-- changes, so the record stays). p_acked is gone: records are kept (above).
DROP FUNCTION clinicdesk_apply(TEXT, BIGINT, BIGINT, BIGINT, JSONB);
CREATE FUNCTION clinicdesk_apply(p_client TEXT, p_tx TEXT, p_prev TEXT, p_first BIGINT, p_last BIGINT,
                                 p_mutations JSONB)
RETURNS JSONB LANGUAGE plpgsql AS $$
DECLARE
    v_outcome   JSONB;
    v_seen      RECORD;
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
    v_visible   BOOLEAN;
    -- The state of each row after this transaction's changes, by "table/id"
    -- (from RETURNING), so the answer needs no second read.
    v_state     JSONB := '{}';
    g           RECORD;
    r           RECORD;
BEGIN
    IF p_tx IS NULL OR p_tx = '' THEN
        RAISE EXCEPTION 'an upload without its transaction''s UUID' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One client's uploads one at a time, and one transaction's wherever it
    -- comes from (a copy re-sending it under a new client id).
    PERFORM pg_advisory_xact_lock(hashtextextended('clinicdesk client ' || p_client, 0));
    PERFORM pg_advisory_xact_lock(hashtextextended('clinicdesk tx ' || p_tx, 0));
    SELECT outcome INTO v_outcome FROM sync_client_txs WHERE tx_uuid = p_tx ORDER BY applied_at LIMIT 1;
    IF NOT FOUND THEN
        SELECT tx_uuid, outcome INTO v_seen FROM sync_client_txs
        WHERE client_id = p_client AND first_mutation_id = p_first;
        IF FOUND AND v_seen.tx_uuid IS NOT NULL THEN
            -- Another transaction of "this client" had this number: a copy.
            RETURN jsonb_build_object('status', 'cloned', 'rows', '[]'::jsonb,
                'error', format('client id %s has already uploaded another transaction numbered %s: this replica '
                                'is a copy of another workstation''s, or was restored from a backup', p_client, p_first));
        ELSIF FOUND THEN
            v_outcome := v_seen.outcome;
        ELSIF p_prev IS NOT NULL AND NOT EXISTS (SELECT 1 FROM sync_client_txs WHERE tx_uuid = p_prev) THEN
            -- The one before did not commit: this one waits for its retry.
            RETURN jsonb_build_object('status', 'out_of_order', 'rows', '[]'::jsonb,
                'error', 'the transaction uploaded before this one was not applied');
        END IF;
    END IF;
    IF v_outcome IS NULL THEN
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
                            -- FOR UPDATE sees only rows the caller may change.
                            EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I t WHERE id = $1)', v_table)
                                INTO v_visible USING v_id;
                            IF v_visible THEN
                                RAISE EXCEPTION 'you may not change % %', v_table, v_id
                                    USING ERRCODE = 'insufficient_privilege', HINT = 'the clinic head can grant the right';
                            END IF;
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
                            IF v_row IS NULL THEN
                                RAISE EXCEPTION 'you may not change % %', v_table, v_id
                                    USING ERRCODE = 'insufficient_privilege', HINT = 'the clinic head can grant the right';
                            END IF;
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
        INSERT INTO sync_client_txs (client_id, first_mutation_id, last_mutation_id, tx_uuid, outcome, applied_at)
        VALUES (p_client, p_first, p_last, p_tx, v_outcome, clinicdesk_now_ms());
        IF v_outcome->>'status' = 'rejected' THEN
            PERFORM clinicdesk_audit_refusal(p_mutations,
                concat_ws(' ', v_outcome->>'error', '(' || nullif(v_outcome->>'detail', '') || ')',
                          '[' || (v_outcome->>'code') || ']'));
        END IF;
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

-- Who may call what -----------------------------------------------------------------
--
-- Every clinicdesk_* function runs with a fixed search_path: PostgreSQL's
-- catalog, then the clinic's schema, then -- last, so nothing of the
-- session's can stand in for ours -- the session's temporary schema.
-- Nobody may execute any of them unless granted here. clinicdesk_user gets:
--   clinicdesk_apply, clinicdesk_changes   a workstation's upload and download;
--   clinicdesk_prune                       the workstations prune the change log
--                                          (never below log_retention_days);
--   clinicdesk_audit                       `server audit`, the Audit screen
--                                          (refused without audit.view);
--   clinicdesk_call_figures                analytics (refused without analytics.view);
--   clinicdesk_may, clinicdesk_user_id     run as the querying login inside every
--                                          policy and column guard;
--   clinicdesk_now_ms, clinicdesk_row_json,
--   clinicdesk_log_after,
--   clinicdesk_audit_refusal               called by clinicdesk_apply / _changes,
--                                          which run as the caller (so that the
--                                          policies decide what they read and
--                                          write) and therefore need the caller's
--                                          EXECUTE. clinicdesk_log_after returns
--                                          what clinicdesk_changes itself returns
--                                          (cursor positions and the ids of
--                                          changed rows, whose contents are read
--                                          through the policies), never authors
--                                          or values.
-- Not granted: clinicdesk_is_admin (only definer functions ask it),
-- clinicdesk_audit_purge and clinicdesk_audit_retention_days (the database
-- administrator's), and the trigger functions (a trigger runs its function
-- whatever the privileges of whoever fired it). A function added by a later
-- migration is executable by PUBLIC until that migration revokes it: do the
-- same there.
DO $$
DECLARE
    f REGPROCEDURE;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
             WHERE n.nspname = current_schema() AND p.proname LIKE 'clinicdesk\_%' LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp', f, current_schema());
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, clinicdesk_user', f);
    END LOOP;
END
$$;
GRANT EXECUTE ON FUNCTION
    clinicdesk_apply(TEXT, TEXT, TEXT, BIGINT, BIGINT, JSONB),
    clinicdesk_changes(TEXT, BIGINT, TEXT, INTEGER, JSONB),
    clinicdesk_prune(BIGINT),
    clinicdesk_audit(TEXT, TEXT, TEXT, BIGINT, BIGINT, INTEGER),
    clinicdesk_call_figures(BIGINT, BIGINT),
    clinicdesk_may(NAME, TEXT),
    clinicdesk_user_id(NAME),
    clinicdesk_now_ms(),
    clinicdesk_row_json(TEXT),
    clinicdesk_log_after(XID8, BIGINT, INTEGER),
    clinicdesk_audit_refusal(JSONB, TEXT)
TO clinicdesk_user;
