-- ClinicDesk shared clinic database, schema version 2: who may see and
-- change what, enforced by the server itself, and the change log as an
-- audit trail.
--
-- Frozen once released, like server_v1.sql.
--
-- Who is who: every person who works in ClinicDesk signs in to PostgreSQL
-- with a login of their own whose name is their `users.login` (made by
-- `clinicdesk server user add`). Logins are members of the group
-- `clinicdesk_user` (which holds the table privileges) and of the group of
-- their CRM role (`clinicdesk_operator`, ...: an overview for the database
-- administrator). What a login may see and change is decided row by row by
-- the policies below, from the rights stored in the clinic's own tables
-- (role_rights plus the head's per-user user_rights, exactly as
-- src/crm/rights.rs computes them), so a change in the head's rights editor
-- takes effect on the server as soon as it is synced. A modified client
-- gets no more than its login's rights, whether it reads the tables, the
-- change feed or a snapshot.
--
-- The owner of the schema (whoever ran `server init`) and superusers are
-- not bound by the policies: loading, pruning and checksums work as before.

-- Groups --------------------------------------------------------------------

DO $$
DECLARE
    g TEXT;
BEGIN
    FOREACH g IN ARRAY ARRAY['clinicdesk_user', 'clinicdesk_head', 'clinicdesk_admin', 'clinicdesk_operator',
                             'clinicdesk_supervisor', 'clinicdesk_doctor', 'clinicdesk_nurse'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = g) THEN
            EXECUTE format('CREATE ROLE %I NOLOGIN', g);
        END IF;
        IF g <> 'clinicdesk_user' AND NOT pg_has_role(g, 'clinicdesk_user', 'MEMBER') THEN
            EXECUTE format('GRANT clinicdesk_user TO %I', g);
        END IF;
    END LOOP;
END
$$;

-- Who the caller is and what they may --------------------------------------

-- The clinic user signed in as `p_login` (active, not deleted), or NULL.
CREATE FUNCTION clinicdesk_user_id(p_login NAME) RETURNS TEXT
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT id FROM users WHERE login = p_login::text AND active = 1 AND deleted_at IS NULL
$$;

-- Whether `p_login` holds the right `p_right` (a code of src/crm/rights.rs):
-- the head's per-user grant or revocation if there is one, else the role's
-- default. Rights are not secret (every workstation syncs these tables);
-- the function only saves the policies a join through tables they filter.
CREATE FUNCTION clinicdesk_may(p_login NAME, p_right TEXT) RETURNS BOOLEAN
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT coalesce((
        SELECT coalesce(
            (SELECT ur.granted = 1 FROM user_rights ur
             WHERE ur.user_id = u.id AND ur.right_code = p_right AND ur.deleted_at IS NULL),
            EXISTS (SELECT 1 FROM role_rights rr
                    WHERE rr.role_id = u.role_id AND rr.right_code = p_right AND rr.deleted_at IS NULL))
        FROM users u WHERE u.login = p_login::text AND u.active = 1 AND u.deleted_at IS NULL), false)
$$;

-- Superusers and the schema's owner: the database administrators.
CREATE FUNCTION clinicdesk_is_admin(p_login NAME) RETURNS BOOLEAN
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT coalesce((SELECT r.rolsuper OR pg_has_role(p_login, c.relowner, 'MEMBER')
                     FROM pg_roles r, pg_class c
                     WHERE r.rolname = p_login AND c.oid = 'clinicdesk_meta'::regclass), false)
$$;

-- Privileges ------------------------------------------------------------------

-- Rows are never deleted (tombstones), so no DELETE; what may be inserted or
-- updated is up to the policies.
DO $$
DECLARE
    t TEXT;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO clinicdesk_user', current_schema());
    FOR t IN SELECT name FROM sync_tables ORDER BY position LOOP
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %I TO clinicdesk_user', t);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    END LOOP;
END
$$;
GRANT SELECT ON clinicdesk_meta, sync_tables, sync_contended TO clinicdesk_user;
-- sync_changes is read and written only through the functions below (it
-- names every row and, from now on, who changed what).
REVOKE ALL ON sync_changes FROM PUBLIC;

-- Each login sees only the outcomes of its own uploads.
ALTER TABLE sync_client_txs ADD COLUMN login TEXT NOT NULL DEFAULT current_user;
ALTER TABLE sync_client_txs ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON sync_client_txs USING (login = current_user) WITH CHECK (login = current_user);
GRANT SELECT, INSERT, DELETE ON sync_client_txs TO clinicdesk_user;

-- Policies ------------------------------------------------------------------
--
-- Expressions of the caller's rights are wrapped in (SELECT ...) so each is
-- computed once per statement, not once per row.

-- Tables every clinic user reads (the workstation needs them to work) and
-- that one right writes.
DO $$
DECLARE
    p RECORD;
BEGIN
    FOR p IN SELECT * FROM (VALUES
        ('org_units', 'settings.dictionaries'), ('roles', 'crm.all'), ('role_rights', 'crm.all'),
        ('user_rights', 'crm.all'), ('ad_channels', 'settings.dictionaries'),
        ('campaigns', 'settings.dictionaries'), ('tracking_numbers', 'settings.dictionaries'),
        ('inquiry_reasons', 'settings.dictionaries'), ('deal_types', 'settings.dictionaries'),
        ('deal_stages', 'settings.dictionaries'), ('auto_transition_rules', 'settings.dictionaries'),
        ('task_types', 'settings.dictionaries'), ('task_templates', 'settings.dictionaries'),
        ('global_settings', 'settings.dictionaries')) AS v(tbl, write_right)
    LOOP
        EXECUTE format('CREATE POLICY read ON %I FOR SELECT USING ((SELECT clinicdesk_user_id(current_user)) IS NOT NULL)',
                       p.tbl);
        EXECUTE format('CREATE POLICY add ON %I FOR INSERT WITH CHECK ((SELECT clinicdesk_may(current_user, %L)))',
                       p.tbl, p.write_right);
        EXECUTE format('CREATE POLICY change ON %I FOR UPDATE USING ((SELECT clinicdesk_may(current_user, %L)))
                        WITH CHECK ((SELECT clinicdesk_may(current_user, %L)))', p.tbl, p.write_right, p.write_right);
    END LOOP;
END
$$;

-- Users: everyone reads the staff list; the head manages it; whoever may edit
-- SIP account settings may change a user's SIP extension (and only that, see
-- clinicdesk_guard_columns below).
CREATE POLICY read ON users FOR SELECT USING ((SELECT clinicdesk_user_id(current_user)) IS NOT NULL);
CREATE POLICY add ON users FOR INSERT WITH CHECK ((SELECT clinicdesk_may(current_user, 'crm.all')));
CREATE POLICY change ON users FOR UPDATE
    USING ((SELECT clinicdesk_may(current_user, 'crm.all')) OR (SELECT clinicdesk_may(current_user, 'settings.sip')))
    WITH CHECK ((SELECT clinicdesk_may(current_user, 'crm.all')) OR (SELECT clinicdesk_may(current_user, 'settings.sip')));

-- An operator sets their own status; the head anyone's.
CREATE POLICY read ON operator_statuses FOR SELECT USING ((SELECT clinicdesk_user_id(current_user)) IS NOT NULL);
CREATE POLICY add ON operator_statuses FOR INSERT
    WITH CHECK (user_id = (SELECT clinicdesk_user_id(current_user)) OR (SELECT clinicdesk_may(current_user, 'crm.all')));
CREATE POLICY change ON operator_statuses FOR UPDATE
    USING (user_id = (SELECT clinicdesk_user_id(current_user)) OR (SELECT clinicdesk_may(current_user, 'crm.all')))
    WITH CHECK (user_id = (SELECT clinicdesk_user_id(current_user)) OR (SELECT clinicdesk_may(current_user, 'crm.all')));

-- People and their phones: everyone reads (the caller card); saving a person
-- is Saving::Person of src/crm/rights.rs.
DO $$
DECLARE
    t TEXT;
    v_write TEXT := '(SELECT clinicdesk_may(current_user, ''inquiry.process'')) OR (SELECT clinicdesk_may(current_user, ''visit.edit''))
                     OR (SELECT clinicdesk_may(current_user, ''deal.edit''))';
BEGIN
    FOREACH t IN ARRAY ARRAY['people', 'person_phones'] LOOP
        EXECUTE format('CREATE POLICY read ON %I FOR SELECT USING ((SELECT clinicdesk_user_id(current_user)) IS NOT NULL)', t);
        EXECUTE format('CREATE POLICY add ON %I FOR INSERT WITH CHECK (%s)', t, v_write);
        EXECUTE format('CREATE POLICY change ON %I FOR UPDATE USING (%s) WITH CHECK (%s)', t, v_write, v_write);
    END LOOP;
END
$$;

-- Calls: with the call log right, one's own calls, calls of nobody and the
-- missed-call queue; everyone's with call.view_all (Rights::may_see_call).
CREATE FUNCTION clinicdesk_may_see_call(p_operator TEXT, p_result TEXT) RETURNS BOOLEAN
LANGUAGE sql STABLE AS $$
    SELECT (SELECT clinicdesk_may(current_user, 'call.view_all'))
        OR ((SELECT clinicdesk_may(current_user, 'call.log'))
            AND (p_operator IS NULL OR p_operator = (SELECT clinicdesk_user_id(current_user)) OR p_result = 'missed'))
$$;
CREATE POLICY read ON calls FOR SELECT USING (clinicdesk_may_see_call(operator_id, result));
CREATE POLICY add ON calls FOR INSERT WITH CHECK (clinicdesk_may_see_call(operator_id, result));
CREATE POLICY change ON calls FOR UPDATE USING (clinicdesk_may_see_call(operator_id, result))
    WITH CHECK (clinicdesk_may_see_call(operator_id, result));

-- Inquiries: seen with inquiry.view, saved with inquiry.process, deleted
-- (tombstoned) with inquiry.delete.
CREATE POLICY read ON inquiries FOR SELECT USING ((SELECT clinicdesk_may(current_user, 'inquiry.view')));
CREATE POLICY add ON inquiries FOR INSERT WITH CHECK ((SELECT clinicdesk_may(current_user, 'inquiry.process'))
    AND (deleted_at IS NULL OR (SELECT clinicdesk_may(current_user, 'inquiry.delete'))));
CREATE POLICY change ON inquiries FOR UPDATE
    USING ((SELECT clinicdesk_may(current_user, 'inquiry.process')) OR (SELECT clinicdesk_may(current_user, 'inquiry.delete')))
    WITH CHECK (CASE WHEN deleted_at IS NULL THEN (SELECT clinicdesk_may(current_user, 'inquiry.process'))
                     ELSE (SELECT clinicdesk_may(current_user, 'inquiry.delete')) END);

-- Deals: seen with deal.view, saved and deleted with deal.edit. Whoever may
-- edit visits may also move a deal to the stage an automatic transition rule
-- names for the status of one of its visits (saving a visit does that, in
-- the same transaction) -- and change nothing else of it.
CREATE POLICY read ON deals FOR SELECT USING ((SELECT clinicdesk_may(current_user, 'deal.view')));
CREATE POLICY add ON deals FOR INSERT WITH CHECK ((SELECT clinicdesk_may(current_user, 'deal.edit')));
CREATE POLICY change ON deals FOR UPDATE
    USING ((SELECT clinicdesk_may(current_user, 'deal.edit')) OR (SELECT clinicdesk_may(current_user, 'visit.edit')))
    WITH CHECK ((SELECT clinicdesk_may(current_user, 'deal.edit'))
        OR ((SELECT clinicdesk_may(current_user, 'visit.edit')) AND EXISTS (
            SELECT 1 FROM auto_transition_rules r JOIN visits v ON v.status = r.visit_status
            WHERE v.deal_id = deals.id AND v.deleted_at IS NULL AND r.deal_type_id = deals.deal_type_id
              AND r.target_stage_id = deals.stage_id AND r.active = 1 AND r.deleted_at IS NULL)));

-- Tasks: everyone's with task.view_all; otherwise, for whoever works with
-- tasks, their own (responsible or author) and the shared queue (no
-- responsible) (Rights::may_see_task). New tasks need task.edit; changing one
-- task.edit or task.work (the latter only its status, see the guard);
-- deleting one task.delete.
CREATE FUNCTION clinicdesk_may_see_task(p_responsible TEXT, p_created_by TEXT) RETURNS BOOLEAN
LANGUAGE sql STABLE AS $$
    SELECT (SELECT clinicdesk_may(current_user, 'task.view_all'))
        OR (((SELECT clinicdesk_may(current_user, 'task.edit')) OR (SELECT clinicdesk_may(current_user, 'task.work')))
            AND (p_responsible IS NULL OR p_responsible = (SELECT clinicdesk_user_id(current_user))
                 OR p_created_by = (SELECT clinicdesk_user_id(current_user))))
$$;
CREATE POLICY read ON tasks FOR SELECT USING (clinicdesk_may_see_task(responsible_id, created_by));
CREATE POLICY add ON tasks FOR INSERT WITH CHECK (clinicdesk_may_see_task(responsible_id, created_by)
    AND (SELECT clinicdesk_may(current_user, 'task.edit'))
    AND (deleted_at IS NULL OR (SELECT clinicdesk_may(current_user, 'task.delete'))));
CREATE POLICY change ON tasks FOR UPDATE USING (clinicdesk_may_see_task(responsible_id, created_by))
    WITH CHECK (clinicdesk_may_see_task(responsible_id, created_by)
        AND (deleted_at IS NULL OR (SELECT clinicdesk_may(current_user, 'task.delete'))));

-- Visits: everyone reads (the caller card's next and last visit); saved
-- with visit.edit, deleted with visit.delete.
CREATE POLICY read ON visits FOR SELECT USING ((SELECT clinicdesk_user_id(current_user)) IS NOT NULL);
CREATE POLICY add ON visits FOR INSERT WITH CHECK ((SELECT clinicdesk_may(current_user, 'visit.edit'))
    AND (deleted_at IS NULL OR (SELECT clinicdesk_may(current_user, 'visit.delete'))));
CREATE POLICY change ON visits FOR UPDATE
    USING ((SELECT clinicdesk_may(current_user, 'visit.edit')) OR (SELECT clinicdesk_may(current_user, 'visit.delete')))
    WITH CHECK (CASE WHEN deleted_at IS NULL THEN (SELECT clinicdesk_may(current_user, 'visit.edit'))
                     ELSE (SELECT clinicdesk_may(current_user, 'visit.delete')) END);

-- Column guards: without `TG_ARGV[0]`, only the columns named after it may
-- change (policies see a row, not which of its fields changed).
CREATE FUNCTION clinicdesk_guard_columns() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_keep TEXT[] := TG_ARGV[1:] || ARRAY['row_version', 'updated_at'];
    v_col  TEXT;
BEGIN
    IF NOT row_security_active(TG_RELID::regclass) OR clinicdesk_may(current_user, TG_ARGV[0]) THEN
        RETURN NEW;
    END IF;
    SELECT n.key INTO v_col FROM jsonb_each(to_jsonb(NEW)) n
    WHERE NOT n.key = ANY (v_keep) AND n.value IS DISTINCT FROM to_jsonb(OLD) -> n.key LIMIT 1;
    IF v_col IS NOT NULL THEN
        RAISE EXCEPTION 'you may not change %.% without the right %', TG_TABLE_NAME, v_col, TG_ARGV[0]
            USING ERRCODE = 'insufficient_privilege', HINT = 'the clinic head can grant it';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER clinicdesk_guard BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION clinicdesk_guard_columns('crm.all', 'sip_extension');
CREATE TRIGGER clinicdesk_guard BEFORE UPDATE ON deals
    FOR EACH ROW EXECUTE FUNCTION clinicdesk_guard_columns('deal.edit', 'stage_id', 'status', 'closed_at');
CREATE TRIGGER clinicdesk_guard BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION clinicdesk_guard_columns('task.edit', 'status', 'completed_at', 'deleted_at');

-- Analytics across the clinic without its rows: calls per operator and
-- result in a time range (for whoever holds analytics.view).
CREATE FUNCTION clinicdesk_call_figures(p_since BIGINT, p_until BIGINT)
RETURNS TABLE (operator_id TEXT, result TEXT, calls BIGINT)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
BEGIN
    IF NOT (clinicdesk_is_admin(session_user) OR clinicdesk_may(session_user, 'analytics.view')) THEN
        RAISE EXCEPTION 'the clinic''s call figures need the analytics right' USING ERRCODE = 'insufficient_privilege',
            HINT = 'the clinic head can grant it';
    END IF;
    RETURN QUERY SELECT c.operator_id, c.result, count(*) FROM calls c
        WHERE c.deleted_at IS NULL AND c.started_at >= p_since AND c.started_at < p_until
        GROUP BY 1, 2 ORDER BY 1, 2;
END
$$;

-- The change log as an audit trail ---------------------------------------------

-- Who (the login, and the clinic user it maps to) did what (insert, update,
-- delete: a tombstone counts as one) and which fields went from what to what
-- ({"column": [old, new]}; an insert's old values are null).
ALTER TABLE sync_changes ADD COLUMN op TEXT, ADD COLUMN author TEXT, ADD COLUMN user_id TEXT, ADD COLUMN changes JSONB;

-- Runs as the schema's owner (writers hold no privilege on sync_changes, so
-- nobody can forge or read entries); the author is the login of the session.
CREATE OR REPLACE FUNCTION clinicdesk_log_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v_old JSONB;
    v_new JSONB;
    v_changes JSONB;
    v_op TEXT := lower(TG_OP);
BEGIN
    IF current_setting('clinicdesk.bulk_load', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO sync_changes (table_name, row_id, op, author, user_id)
        VALUES (TG_TABLE_NAME, OLD.id, v_op, session_user, clinicdesk_user_id(session_user));
        RETURN NULL;
    END IF;
    v_new := to_jsonb(NEW);
    IF TG_OP = 'INSERT' THEN
        SELECT jsonb_object_agg(n.key, jsonb_build_array(NULL, n.value)) INTO v_changes
        FROM jsonb_each(v_new) n WHERE n.key NOT IN ('id', 'row_version', 'updated_at') AND n.value <> 'null';
    ELSE
        v_old := to_jsonb(OLD);
        SELECT jsonb_object_agg(n.key, jsonb_build_array(v_old -> n.key, n.value)) INTO v_changes
        FROM jsonb_each(v_new) n WHERE n.key NOT IN ('row_version', 'updated_at') AND n.value IS DISTINCT FROM v_old -> n.key;
        IF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
            v_op := 'delete';
        END IF;
    END IF;
    INSERT INTO sync_changes (table_name, row_id, op, author, user_id, changes)
    VALUES (TG_TABLE_NAME, NEW.id, v_op, session_user, clinicdesk_user_id(session_user), v_changes);
    RETURN NULL;
END
$$;

CREATE INDEX sync_changes_by_row ON sync_changes (table_name, row_id);

-- The audit trail for the clinic head (audit.view) and the database
-- administrators, newest first: by author (login or part of the name), table,
-- text (a row id, or anything in the changed values) and time (Unix ms,
-- since inclusive, until exclusive). Only as far back as the log is kept
-- (log_retention_days).
CREATE FUNCTION clinicdesk_audit(p_author TEXT, p_table TEXT, p_search TEXT, p_since BIGINT, p_until BIGINT,
                                 p_limit INTEGER)
RETURNS TABLE (changed_at BIGINT, author TEXT, user_id TEXT, full_name TEXT, table_name TEXT, row_id TEXT, op TEXT,
               changes JSONB)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v_like TEXT := '%' || replace(replace(replace(p_search, '\', '\\'), '%', '\%'), '_', '\_') || '%';
    v_who  TEXT := '%' || replace(replace(replace(p_author, '\', '\\'), '%', '\%'), '_', '\_') || '%';
BEGIN
    IF NOT (clinicdesk_is_admin(session_user) OR clinicdesk_may(session_user, 'audit.view')) THEN
        RAISE EXCEPTION 'only the clinic head may read the change log' USING ERRCODE = 'insufficient_privilege',
            HINT = 'the right audit.view is needed';
    END IF;
    RETURN QUERY
        SELECT c.changed_at, c.author, c.user_id, u.full_name, c.table_name, c.row_id, c.op, c.changes
        FROM sync_changes c LEFT JOIN users u ON u.id = c.user_id
        WHERE (p_author IS NULL OR c.author = p_author OR u.full_name ILIKE v_who)
          AND (p_table IS NULL OR c.table_name = p_table)
          AND (p_search IS NULL OR c.row_id = p_search OR c.changes::text ILIKE v_like)
          AND (p_since IS NULL OR c.changed_at >= p_since)
          AND (p_until IS NULL OR c.changed_at < p_until)
        ORDER BY c.changed_at DESC, c.xid DESC, c.seq DESC
        LIMIT greatest(p_limit, 0);
END
$$;

-- The change feed --------------------------------------------------------------

-- The log entries after a cursor, below the snapshot's horizon: only which
-- rows changed. The rows themselves are read by clinicdesk_changes as the
-- caller, through the policies.
CREATE FUNCTION clinicdesk_log_after(p_xid XID8, p_seq BIGINT, p_limit INTEGER)
RETURNS TABLE (xid XID8, seq BIGINT, table_name TEXT, row_id TEXT)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
    SELECT c.xid, c.seq, c.table_name, c.row_id FROM sync_changes c
    WHERE (c.xid, c.seq) > (p_xid, p_seq) AND c.xid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY c.xid, c.seq LIMIT p_limit
$$;

-- How clinicdesk_changes turns a row `t` of `p_table` into JSON for a caller
-- bound by the policies: a reference to a row the caller may not see (an
-- inquiry's call taken by another operator, a task's deal for a nurse) is
-- sent as null, so the workstation's copy keeps its foreign keys and learns
-- no ids it may not see.
CREATE FUNCTION clinicdesk_row_json(p_table TEXT) RETURNS TEXT LANGUAGE sql STABLE AS $$
    SELECT 'to_jsonb(t)' || coalesce(' || jsonb_build_object(' || string_agg(
               format('%L, CASE WHEN t.%I IS NULL THEN NULL WHEN EXISTS (SELECT 1 FROM %I p WHERE p.id = t.%I) THEN t.%I END',
                      a.attname, a.attname, pc.relname, a.attname, a.attname), ', ' ORDER BY a.attname) || ')', '')
    FROM pg_constraint c
    JOIN pg_class pc ON pc.oid = c.confrelid
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
    WHERE c.contype = 'f' AND c.conrelid = to_regclass(quote_ident(p_table))
      AND pc.relname IN ('calls', 'inquiries', 'deals', 'tasks')
$$;

-- Pruning runs on whichever workstation comes first, as its login: it may
-- not cut the log (the audit trail) shorter than log_retention_days.
CREATE OR REPLACE FUNCTION clinicdesk_prune(p_keep_ms BIGINT) RETURNS BIGINT
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
    v_cutoff BIGINT;
    v_last   RECORD;
    v_count  BIGINT;
    v_days   DOUBLE PRECISION;
BEGIN
    IF NOT clinicdesk_is_admin(session_user) THEN
        SELECT coalesce(value::double precision, 30) INTO v_days FROM clinicdesk_meta WHERE key = 'log_retention_days';
        p_keep_ms := greatest(p_keep_ms, (coalesce(v_days, 30) * 86400000)::bigint);
    END IF;
    v_cutoff := clinicdesk_now_ms() - p_keep_ms;
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

-- The clinic head gets the new right audit.view (a role's defaults are rows
-- of role_rights; a database made before this version lacks it).
INSERT INTO role_rights (id, role_id, right_code, updated_at)
SELECT gen_random_uuid()::text, r.id, 'audit.view', clinicdesk_now_ms() FROM roles r
WHERE r.code = 'head' AND r.deleted_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM role_rights x WHERE x.role_id = r.id AND x.right_code = 'audit.view');

-- Uploads and downloads (server_v1.sql's, now run through the policies) -----

-- clinicdesk_apply runs as the caller, so the policies decide each change;
-- a refused one makes the whole local transaction rejected (recorded for
-- the workstation, as any other rejection). Changed here: an update of a
-- row the caller may see but not change says so.
CREATE OR REPLACE FUNCTION clinicdesk_apply(p_client TEXT, p_first BIGINT, p_last BIGINT, p_acked BIGINT, p_mutations JSONB)
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
    v_visible   BOOLEAN;
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

-- clinicdesk_changes: the log through clinicdesk_log_after, the rows as the caller sees them.
CREATE OR REPLACE FUNCTION clinicdesk_changes(p_xid TEXT, p_seq BIGINT, p_epoch TEXT, p_limit INTEGER, p_refetch JSONB)
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
    v_json    TEXT;
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
    FROM clinicdesk_log_after(p_xid::xid8, p_seq, p_limit) AS l;
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
        -- Through the policies: a row the caller may not see comes back null.
        v_json := CASE WHEN row_security_active(t.tbl) THEN clinicdesk_row_json(t.tbl) ELSE 'to_jsonb(t)' END;
        EXECUTE format('SELECT coalesce(jsonb_object_agg(t.id, %s), ''{}'') FROM %I t WHERE t.id = ANY($1)', v_json, t.tbl)
            INTO v_found USING t.ids;
        v_rows := v_rows || (SELECT jsonb_agg(jsonb_build_object('table', t.tbl, 'row_id', i, 'row', v_found -> i))
                             FROM unnest(t.ids) AS i);
    END LOOP;
    RETURN jsonb_build_object('cursor', v_cursor, 'more', v_count = p_limit, 'rows', v_rows);
END
$$;
