-- ClinicDesk shared clinic database, schema version 4: no server function a
-- login may call gives it more than its rights.
--
-- Frozen once released, like server_v1.sql to server_v3.sql.
--
-- What version 3 left open, and how this closes it:
--   * clinicdesk_changes runs as the caller (so that the policies decide
--     which rows it returns) and read the change log through
--     clinicdesk_log_after, a SECURITY DEFINER function that every login
--     therefore had to be able to execute. Called directly, it gave any
--     login the table and id of every changed row, those its rights hide
--     included (other operators' calls, other people's tasks, every deal
--     for a login without deal.view), and clinicdesk_changes itself sent
--     them too, as rows that came back null. Now the change log has a
--     policy of its own: a login reads an entry only when it may see the
--     changed row (through that table's own policies) or could see it
--     before this change (a call or task that left its view). Logins read
--     sync_changes themselves, through that policy, and only its position
--     and row columns; clinicdesk_changes reads it as the caller, and
--     clinicdesk_log_after is the database administrator's only.
--   * clinicdesk_audit_refusal, executable by every login for the same
--     reason (clinicdesk_apply, which runs as the caller, records refused
--     uploads with it), wrote whatever refusal it was given into the
--     append-only audit trail. Now it records only when clinicdesk_apply,
--     the outermost function running, called it: the refusals of uploads
--     the server really refused (see "Refused uploads" below).

-- The change log, read through a policy -----------------------------------------

-- For a change that takes a row out of some logins' view -- a call given
-- to another operator, a task given to another responsible -- the entry
-- keeps the values that decided who saw the row before it: the workstations
-- that had it learn that it left them (they get the entry, the row comes
-- back null, and they drop their copy), and nobody else learns its id.
-- Only calls and tasks are seen or not by their values (server_v3.sql); the
-- other tables by the reader's rights alone, which one change of a row does
-- not move.
-- Entries written before this version have no `was`: a call or task moved
-- out of a login's view just before the upgrade stays on that login's
-- workstation until its next snapshot, as rows do whose table a change of
-- rights hides (no entry tells of that, in any version).
ALTER TABLE sync_changes ADD COLUMN was JSONB;

-- clinicdesk_log_change (server_v3.sql), and the trigger's arguments name
-- the columns to keep in `was` when an update changes any of them.
CREATE OR REPLACE FUNCTION clinicdesk_log_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    v_old     JSONB;
    v_new     JSONB;
    v_changes JSONB;
    v_op      TEXT := lower(TG_OP);
    v_id      TEXT;
    v_user    TEXT;
    v_was     JSONB;
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
        IF TG_NARGS > 0 AND EXISTS (SELECT 1 FROM unnest(TG_ARGV) AS k WHERE v_old -> k IS DISTINCT FROM v_new -> k) THEN
            SELECT jsonb_object_agg(k, v_old -> k) INTO v_was FROM unnest(TG_ARGV) AS k;
        END IF;
    END IF;
    v_user := clinicdesk_user_id(session_user);
    INSERT INTO sync_changes (table_name, row_id, op, author, user_id, was)
    VALUES (TG_TABLE_NAME, v_id, v_op, session_user, v_user, v_was);
    INSERT INTO clinicdesk_audit_log (author, user_id, table_name, row_id, op, changes)
    VALUES (session_user, v_user, TG_TABLE_NAME, v_id, v_op, v_changes);
    RETURN NULL;
END
$$;
DROP TRIGGER clinicdesk_log ON calls;
CREATE TRIGGER clinicdesk_log AFTER INSERT OR UPDATE OR DELETE ON calls
    FOR EACH ROW EXECUTE FUNCTION clinicdesk_log_change('operator_id', 'result');
DROP TRIGGER clinicdesk_log ON tasks;
CREATE TRIGGER clinicdesk_log AFTER INSERT OR UPDATE OR DELETE ON tasks
    FOR EACH ROW EXECUTE FUNCTION clinicdesk_log_change('responsible_id', 'created_by');

-- Who reads which entry: the database administrators (the owner,
-- superusers) every one, as before; a login an entry whose row it may see
-- now -- `EXISTS (SELECT 1 FROM <table> t WHERE t.id = row_id)`, run as the
-- reader, so the table's own read policy decides, whatever a later version
-- makes of it -- or, for calls and tasks, whose row it could see before the
-- change (`was`, by the rules of the read policies of calls and tasks in
-- server_v3.sql: a version that changes those changes this too).
-- Tombstones are rows (deleted_at set), so the entry of a deletion is seen
-- wherever the row was. A row an administrator DELETEs by hand is seen by
-- no login any more, nor is its entry: workstations keep their copy until
-- their next snapshot (logins never delete; the clinic's tools tombstone).
-- Each entry costs one probe of the row's primary key (the rights in the
-- policies are computed once per statement; OFFSET 0 keeps PostgreSQL from
-- hashing every id the reader may see of a table instead, for each
-- download), and the position test of clinicdesk_changes stays an index
-- condition (xid8 and bigint comparisons are leakproof), so a download
-- reads only the entries after its cursor: some 20,000 entries in 50 ms.
-- Logins read the position and the row of an entry, never its author or
-- `was` (column privileges).
ALTER TABLE sync_changes ENABLE ROW LEVEL SECURITY;
DO $$
DECLARE
    v_me   TEXT := '(SELECT clinicdesk_user_id(current_user))';
    v_was  TEXT := $was$
        WHEN 'calls' THEN EXISTS (SELECT 1 FROM calls t WHERE t.id = sync_changes.row_id OFFSET 0)
            OR (sync_changes.was IS NOT NULL
                AND ((SELECT clinicdesk_may(current_user, 'call.view_all'))
                     OR ((SELECT clinicdesk_may(current_user, 'call.log'))
                         AND (sync_changes.was ->> 'operator_id' IS NULL
                              OR sync_changes.was ->> 'operator_id' = %1$s
                              OR sync_changes.was ->> 'result' = 'missed'))))
        WHEN 'tasks' THEN EXISTS (SELECT 1 FROM tasks t WHERE t.id = sync_changes.row_id OFFSET 0)
            OR (sync_changes.was IS NOT NULL
                AND ((SELECT clinicdesk_may(current_user, 'task.view_all'))
                     OR (((SELECT clinicdesk_may(current_user, 'task.edit'))
                          OR (SELECT clinicdesk_may(current_user, 'task.work')))
                         AND (sync_changes.was ->> 'responsible_id' IS NULL
                              OR sync_changes.was ->> 'responsible_id' = %1$s
                              OR sync_changes.was ->> 'created_by' = %1$s))))$was$;
    v_each TEXT;
BEGIN
    SELECT string_agg(format(' WHEN %L THEN EXISTS (SELECT 1 FROM %I t WHERE t.id = sync_changes.row_id OFFSET 0)', name, name),
                      '' ORDER BY position)
    INTO v_each FROM sync_tables WHERE name NOT IN ('calls', 'tasks');
    EXECUTE format('CREATE POLICY read ON sync_changes FOR SELECT USING (CASE sync_changes.table_name %s %s ELSE false END)',
                   format(v_was, v_me), v_each);
END
$$;
GRANT SELECT (xid, seq, table_name, row_id) ON sync_changes TO clinicdesk_user;

-- The change feed: clinicdesk_changes (server_v2.sql) reading the log itself,
-- as the caller. What it returns for a login is what the login's policies
-- let it see: the entries of rows it may see (and of calls and tasks that
-- just left its view, which come back null), the rows asked for again
-- (refetch: null when hidden or missing, as before). Same arguments and
-- answer. The cursor now also moves over entries the caller may not see:
-- when fewer than p_limit entries come back, every entry below the horizon
-- (the snapshot's xmin) was looked at, so the cursor becomes (xmin, -1),
-- where a snapshot starts too (src/sync/protocol.rs); a workstation that
-- sees none of a day's changes does not look at them again.
-- No JIT: the planner prices the policy as if every one of its branches
-- ran for every entry, and compiling the query for that price took a
-- second of every download.
CREATE OR REPLACE FUNCTION clinicdesk_changes(p_xid TEXT, p_seq BIGINT, p_epoch TEXT, p_limit INTEGER, p_refetch JSONB)
RETURNS JSONB LANGUAGE plpgsql STABLE SET jit = off AS $$
DECLARE
    v_epoch   TEXT;
    v_horizon TEXT;
    v_xmin    XID8 := pg_snapshot_xmin(pg_current_snapshot());
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
    FROM (SELECT c.xid, c.seq, c.table_name, c.row_id FROM sync_changes c
          WHERE (c.xid, c.seq) > (p_xid::xid8, p_seq) AND c.xid < v_xmin
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
    IF v_count < p_limit AND (v_xmin, -1::bigint) > (p_xid::xid8, p_seq) THEN
        v_cursor := v_xmin::text || ':-1';
    ELSIF v_keep > 0 THEN
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

-- Refused uploads -------------------------------------------------------------------
--
-- clinicdesk_apply runs as the caller, so that the policies judge every
-- change: whatever it does, a login can do by hand, and a function it calls
-- a login can call. No SECURITY DEFINER function can judge an upload in its
-- place (it runs as the owner, whom the policies do not bind, and may not
-- SET ROLE), so none can tell from its arguments a refusal clinicdesk_apply
-- met from one a login makes up. What tells them apart is who called:
-- clinicdesk_audit_refusal now records only when the call stack
-- (PG_CONTEXT) ends in clinicdesk_apply's PERFORM of it, that is, when
-- clinicdesk_apply is the outermost function running and called it itself.
-- That line is written by PL/pgSQL from the function's signature, resolved
-- when it was compiled under its pinned search_path: our clinicdesk_apply
-- shows as "clinicdesk_apply(text,text,text,bigint,bigint,jsonb)", a
-- login's own function of that name (it can create functions only in
-- pg_temp) as "pg_temp_N.clinicdesk_apply(...)", and a name made up to hold
-- such a line needs quotes, which then end up in the last line. So a call
-- from anything of the login's -- a direct call, a function of its own, a
-- domain check or a WHERE clause of the statement that also calls
-- clinicdesk_apply -- is refused (insufficient_privilege), and nothing is
-- recorded. clinicdesk_apply itself records a refusal only of the upload
-- it was given, after its own attempt at it was refused, with the error it
-- got; what it calls is ours (policies, triggers, functions looked up
-- under a pinned search_path, never in pg_temp).
-- What remains, precisely: a login records refusals only of its own real
-- attempts through clinicdesk_apply, under its own login and user
-- (session_user), with the changes it sent and the error the server gave
-- them, once per call -- but it may make as many as it likes (each costs
-- it a refused upload and a record in sync_client_txs, as in version 3).
-- An attempt made outside clinicdesk_apply (an INSERT of its own in psql)
-- is refused by the policies without an entry, as before. The database
-- administrators are not asked (the audit trail is theirs). Should a
-- server setting add a line after the outermost function's to every stack
-- (none does by default; log_parameter_max_length_on_error, for instance,
-- is a client's), refusals are not recorded and the uploads they refuse
-- fail with this error instead of coming back rejected.
CREATE OR REPLACE FUNCTION clinicdesk_audit_refusal(p_mutations JSONB, p_error TEXT) RETURNS VOID
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    v_user    TEXT := clinicdesk_user_id(session_user);
    v_error   JSONB := jsonb_build_array(NULL, coalesce(p_error, ''));
    v_stack   TEXT;
    m         JSONB;
    v_current JSONB;
    v_payload JSONB;
    v_base    JSONB;
BEGIN
    GET DIAGNOSTICS v_stack = PG_CONTEXT;
    IF NOT clinicdesk_is_admin(session_user) AND coalesce(v_stack !~
           '\nPL/pgSQL function clinicdesk_apply\(text,text,text,bigint,bigint,jsonb\) line [0-9]+ at PERFORM$', true) THEN
        RAISE EXCEPTION 'only clinicdesk_apply records the uploads it refused'
            USING ERRCODE = 'insufficient_privilege', HINT = 'upload through clinicdesk_apply';
    END IF;
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

-- Who may call what -----------------------------------------------------------------
--
-- As in server_v3.sql, every clinicdesk_* function gets its fixed
-- search_path and is revoked from PUBLIC and clinicdesk_user, and then
-- clinicdesk_user gets back what a workstation calls and what runs as the
-- caller inside it:
--   clinicdesk_apply, clinicdesk_changes   a workstation's upload and download;
--   clinicdesk_prune                       pruning (never below log_retention_days);
--   clinicdesk_audit                       the audit trail (refused without audit.view);
--   clinicdesk_call_figures                analytics (refused without analytics.view);
--   clinicdesk_may, clinicdesk_user_id     run as the querying login inside every
--                                          policy and column guard;
--   clinicdesk_now_ms, clinicdesk_row_json called by clinicdesk_apply / _changes;
--   clinicdesk_audit_refusal               called by clinicdesk_apply; any other
--                                          caller is refused (above).
-- No longer granted: clinicdesk_log_after (clinicdesk_changes reads the log
-- through its policy; the function stays for the database administrator,
-- whom it shows every entry). Not granted, as before: clinicdesk_is_admin,
-- clinicdesk_audit_purge, clinicdesk_audit_retention_days and the trigger
-- functions. A function added by a later migration is executable by PUBLIC
-- until that migration revokes it: do the same there.
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
    clinicdesk_audit_refusal(JSONB, TEXT)
TO clinicdesk_user;
