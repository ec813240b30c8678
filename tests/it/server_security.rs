//! The clinic database against a login that attacks it over SQL (schema
//! version 3): temporary tables and functions standing in for ours gain
//! nothing from the functions that run as the owner; a login's bulk-load
//! switch is ignored; the server's internals are not the logins' to call;
//! what an operator may not change of calls, inquiries and people stays as
//! it is; and the audit trail is append-only, outlives the pruned change
//! log and records what the server refused.
//!
//! A child of `rights`, whose clinic (a loaded demo clinic and a login per
//! role) and connections it uses.

use std::collections::BTreeSet;

use clinicdesk::crm::{RoleCode, new_id};
use clinicdesk::sync::audit::{self, AuditQuery};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::FromSql;

use super::{Clinic, Db};
use crate::sync::{count, sync_once};

/// Runs statements on the login's session (temporary tables stay).
fn run(db: &Db, sql: &str) {
    db.rt.block_on(db.client.batch_execute(sql)).unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The first column of the only row, or the SQLSTATE the server refused with.
fn value<T: for<'a> FromSql<'a>>(db: &Db, sql: &str) -> Result<T, SqlState> {
    db.rt
        .block_on(db.client.query_one(sql, &[]))
        .map(|row| row.get(0))
        .map_err(|e| e.code().cloned().unwrap_or_else(|| panic!("{sql}: {e}")))
}

/// `clinicdesk_apply` as a workstation calls it; the outcome without its rows.
/// (`_acked`: version 3 keeps the records of acknowledged uploads.)
fn apply(db: &Db, client: &str, first: i64, _acked: i64, mutations: serde_json::Value) -> serde_json::Value {
    let row = db
        .rt
        .block_on(db.client.query_one(
            "SELECT clinicdesk_apply($1, $2, NULL, $3, $3, $4) - 'rows'",
            &[&client, &new_id(), &first, &mutations],
        ))
        .unwrap_or_else(|e| panic!("clinicdesk_apply: {e}"));
    row.get(0)
}

const READ_AUDIT: &str = "SELECT count(*) FROM clinicdesk_audit(NULL, NULL, NULL, NULL, NULL, 1000)";
const READ_FIGURES: &str = "SELECT count(*) FROM clinicdesk_call_figures(0, 9000000000000000)";

#[test]
fn an_operator_login_cannot_shadow_its_way_past_the_definer_functions() {
    let clinic = Clinic::start();
    let owner = Db::connect(&clinic.admin_url).unwrap();
    let (op_login, op_id) = clinic.login_of(RoleCode::Operator);
    let (_, head_id) = clinic.login_of(RoleCode::Head);
    let head_role = owner.one(&format!("SELECT role_id FROM users WHERE id = '{head_id}'"));
    let op = Db::connect(&clinic.url_of(op_login)).unwrap();
    let calls_seen = op.one("SELECT count(*)::text FROM calls");
    assert_ne!(calls_seen, owner.one("SELECT count(*)::text FROM calls"), "an operator does not see every call");
    let log = || owner.one("SELECT count(*)::text FROM sync_changes");
    let log_before = log();

    // A meta table of the operator's own, of which the operator is the
    // owner: version 2 took that for the database administrator.
    run(
        &op,
        "CREATE TEMP TABLE clinicdesk_meta (key TEXT PRIMARY KEY, value TEXT);
         INSERT INTO clinicdesk_meta VALUES ('log_retention_days', '0'), ('epoch', '1'), ('horizon', '0:0')",
    );
    assert_eq!(
        value::<bool>(&op, "SELECT clinicdesk_is_admin(current_user)"),
        Err(SqlState::INSUFFICIENT_PRIVILEGE),
        "asked only by the server's own functions"
    );
    assert_eq!(value::<i64>(&op, READ_AUDIT), Err(SqlState::INSUFFICIENT_PRIVILEGE), "the audit trail");
    assert_eq!(value::<i64>(&op, READ_FIGURES), Err(SqlState::INSUFFICIENT_PRIVILEGE), "the call figures");
    assert_eq!(value::<i64>(&op, "SELECT clinicdesk_prune(0)"), Ok(0), "no pruning below the retention");
    assert_eq!(log(), log_before, "the change log is whole");

    // Users, role rights and user rights of the operator's own: the head's
    // identity, every right.
    run(
        &op,
        &format!(
            "CREATE TEMP TABLE users (id TEXT, login TEXT, full_name TEXT, role_id TEXT, org_unit_id TEXT,
                 specialty TEXT, sip_extension TEXT, active BIGINT, row_version BIGINT, updated_at BIGINT,
                 deleted_at BIGINT);
             INSERT INTO users (id, login, full_name, role_id, active)
                 VALUES ('{head_id}', current_user, 'me, the head', '{head_role}', 1);
             CREATE TEMP TABLE role_rights (id TEXT, role_id TEXT, right_code TEXT, row_version BIGINT,
                 updated_at BIGINT, deleted_at BIGINT);
             INSERT INTO role_rights (role_id, right_code)
                 SELECT '{head_role}', r FROM unnest(ARRAY['crm.all', 'audit.view', 'analytics.view',
                     'call.view_all', 'task.view_all', 'deal.edit', 'inquiry.process']) AS r;
             CREATE TEMP TABLE user_rights (id TEXT, user_id TEXT, right_code TEXT, granted BIGINT,
                 row_version BIGINT, updated_at BIGINT, deleted_at BIGINT);
             INSERT INTO user_rights (user_id, right_code, granted) VALUES ('{head_id}', 'visit.delete', 1),
                 ('{op_id}', 'call.view_all', 1)"
        ),
    );
    assert_eq!(value::<Option<String>>(&op, "SELECT clinicdesk_user_id(current_user)"), Ok(Some(op_id.to_owned())));
    for right in ["crm.all", "audit.view", "analytics.view", "call.view_all", "task.view_all", "visit.delete"] {
        assert_eq!(
            value::<bool>(&op, &format!("SELECT clinicdesk_may(current_user, '{right}')")),
            Ok(false),
            "{right}"
        );
    }
    assert_eq!(op.one("SELECT count(*)::text FROM calls"), calls_seen, "the policies see the real rights");
    assert_eq!(value::<i64>(&op, READ_AUDIT), Err(SqlState::INSUFFICIENT_PRIVILEGE));
    assert_eq!(value::<i64>(&op, READ_FIGURES), Err(SqlState::INSUFFICIENT_PRIVILEGE));
    let grant = apply(
        &op,
        "attacker",
        1,
        0,
        serde_json::json!([{"table": "user_rights", "row_id": new_id(), "op": "insert",
                            "payload": {"user_id": op_id, "right_code": "call.view_all", "granted": 1}}]),
    );
    assert_eq!(grant["status"], "rejected", "{grant}");
    // The download: every call asked for by id, those the operator may not
    // see come back null.
    let epoch = owner.one("SELECT value FROM clinicdesk_meta WHERE key = 'epoch'");
    let refetch: serde_json::Value =
        owner.ids("SELECT id FROM calls").iter().map(|id| serde_json::json!(["calls", id])).collect::<Vec<_>>().into();
    let feed: serde_json::Value = op
        .rt
        .block_on(op.client.query_one("SELECT clinicdesk_changes('0', 0, $1, 10, $2)", &[&epoch, &refetch]))
        .unwrap()
        .get(0);
    let rows = feed["rows"].as_array().unwrap_or_else(|| panic!("{feed}"));
    let visible = rows.iter().filter(|r| r["table"] == "calls" && !r["row"].is_null()).count();
    assert_eq!(visible.to_string(), calls_seen, "the feed shows what the policies let the operator see");

    // A change log of the operator's own: the operator's writes still go to
    // the real one (and to the audit trail), so every workstation gets them.
    run(
        &op,
        "CREATE TEMP TABLE sync_changes (xid XID8 NOT NULL DEFAULT pg_current_xact_id(),
             seq BIGINT GENERATED ALWAYS AS IDENTITY, table_name TEXT, row_id TEXT, changed_at BIGINT DEFAULT 0,
             op TEXT, author TEXT, user_id TEXT, changes JSONB)",
    );
    let inquiry = new_id();
    run(
        &op,
        &format!(
            "INSERT INTO inquiries (id, source, status, operator_id, note, created_at, updated_at)
             VALUES ('{inquiry}', 'walk_in', 'new', '{op_id}', 'under a shadow log', 0, 0)"
        ),
    );
    assert_eq!(op.one("SELECT count(*)::text FROM pg_temp.sync_changes"), "0");
    assert_eq!(owner.one(&format!("SELECT count(*)::text FROM sync_changes WHERE row_id = '{inquiry}'")), "1");
    assert_eq!(
        owner.one(&format!(
            "SELECT string_agg(author || ' ' || op, ',') FROM clinicdesk_audit_log WHERE row_id = '{inquiry}'"
        )),
        format!("{op_login} insert")
    );

    // Functions are never looked up in pg_temp.
    run(&op, "CREATE FUNCTION pg_temp.clinicdesk_may(NAME, TEXT) RETURNS BOOLEAN LANGUAGE sql AS 'SELECT true'");
    assert_eq!(value::<bool>(&op, "SELECT clinicdesk_may(current_user, 'crm.all')"), Ok(false));
    assert_eq!(op.one("SELECT count(*)::text FROM calls"), calls_seen);
}

#[test]
fn a_logins_bulk_load_switch_is_ignored_and_its_write_delivered() {
    let clinic = Clinic::start();
    let owner = Db::connect(&clinic.admin_url).unwrap();
    // The administrator's own bulk load (`server load`) still skips the log.
    assert_eq!(owner.one("SELECT count(*)::text FROM sync_changes"), "0", "the load was not logged");
    let (op_login, op_id) = clinic.login_of(RoleCode::Operator);
    let (head_login, _) = clinic.login_of(RoleCode::Head);
    // The head's workstation has its copy (a snapshot) and then takes
    // changes from the log only.
    let a = clinic.head_profile.path();
    let head_url = clinic.url_of(head_login);
    sync_once(a, &head_url);
    let op = Db::connect(&clinic.url_of(op_login)).unwrap();
    let inquiry = new_id();
    run(
        &op,
        &format!(
            "SET clinicdesk.bulk_load = 'on';
             INSERT INTO inquiries (id, source, status, operator_id, note, created_at, updated_at)
             VALUES ('{inquiry}', 'walk_in', 'new', '{op_id}', 'written with bulk_load on', 0, 0);
             RESET clinicdesk.bulk_load"
        ),
    );
    assert_eq!(owner.one(&format!("SELECT count(*)::text FROM sync_changes WHERE row_id = '{inquiry}'")), "1");
    assert_eq!(
        owner.one(&format!(
            "SELECT string_agg(author || ' ' || op, ',') FROM clinicdesk_audit_log WHERE row_id = '{inquiry}'"
        )),
        format!("{op_login} insert")
    );
    // Delivered: the head's workstation gets it with the other changes.
    let said = sync_once(a, &head_url);
    assert!(!said.contains("snapshot"), "{said}");
    assert_eq!(count(a, &format!("SELECT count(*) FROM inquiries WHERE id = '{inquiry}'")), 1);
}

#[test]
fn the_servers_internals_are_not_callable_by_a_login() {
    let clinic = Clinic::start();
    for role in [RoleCode::Operator, RoleCode::Head] {
        let (login, _) = clinic.login_of(role);
        let mut db = Db::connect(&clinic.url_of(login)).unwrap();
        for sql in [
            "SELECT clinicdesk_is_admin(current_user)",
            "SELECT clinicdesk_log_change()",
            "SELECT clinicdesk_guard_columns()",
            "SELECT clinicdesk_bump_version()",
            "SELECT clinicdesk_audit_purge()",
            "SELECT clinicdesk_audit_retention_days()",
            "SELECT clinicdesk_audit_log_guard()",
        ] {
            assert_eq!(db.attempt(sql), Err(SqlState::INSUFFICIENT_PRIVILEGE), "{login}: {sql}");
        }
        // The whole change log, every changed row's table and id, those the
        // login may not see included: version 3 let every login call it
        // (clinicdesk_changes, which runs as the caller, read the log with it).
        assert_eq!(
            db.attempt("SELECT count(*) FROM clinicdesk_log_after('0', 0, 1000)"),
            Err(SqlState::INSUFFICIENT_PRIVILEGE),
            "{login}: clinicdesk_log_after"
        );
        // The log itself only through its policy, and only where and which
        // row changed, never who changed it.
        assert!(db.attempt("SELECT count(*) FROM (SELECT xid, seq, table_name, row_id FROM sync_changes) l").is_ok());
        for column in ["author", "user_id", "op", "changes", "was", "changed_at"] {
            assert_eq!(
                db.attempt(&format!("SELECT {column} FROM sync_changes")),
                Err(SqlState::INSUFFICIENT_PRIVILEGE),
                "{login}: sync_changes.{column}"
            );
        }
        // Nor read or write the audit trail but through clinicdesk_audit.
        assert_eq!(
            db.attempt("SELECT count(*) FROM clinicdesk_audit_log"),
            Err(SqlState::INSUFFICIENT_PRIVILEGE),
            "{login}"
        );
        assert_eq!(
            db.attempt(
                "INSERT INTO clinicdesk_audit_log (table_name, row_id, op) VALUES ('deals', 'x', 'insert') RETURNING 1"
            ),
            Err(SqlState::INSUFFICIENT_PRIVILEGE),
            "{login}"
        );
    }
}

#[test]
fn a_login_cannot_write_a_refusal_into_the_audit_trail() {
    let clinic = Clinic::start();
    let owner = Db::connect(&clinic.admin_url).unwrap();
    let audit_count = || owner.one("SELECT count(*)::text FROM clinicdesk_audit_log");
    let audited = audit_count();
    for role in [RoleCode::Operator, RoleCode::Head] {
        let (login, _) = clinic.login_of(role);
        let mut db = Db::connect(&clinic.url_of(login)).unwrap();
        // Refusals go into the audit trail only from clinicdesk_apply's own
        // attempt: not called directly, nor from a function, a DO block, a
        // WHERE clause or a domain check of the login's. (Version 3 recorded
        // whatever any login gave it.)
        let forged = r#"'[{"table": "deals", "row_id": "x", "op": "delete"}]', 'the head told me to'"#;
        run(
            &db,
            &format!(
                "CREATE FUNCTION pg_temp.clinicdesk_apply(a TEXT, b TEXT, c TEXT, d BIGINT, e BIGINT, f JSONB)
                 RETURNS JSONB LANGUAGE plpgsql AS $$
                 BEGIN PERFORM clinicdesk_audit_refusal({forged}); RETURN '{{}}'; END $$;
                 CREATE FUNCTION pg_temp.forge() RETURNS BOOLEAN LANGUAGE plpgsql AS $$
                 BEGIN PERFORM clinicdesk_audit_refusal({forged}); RETURN true; END $$;
                 CREATE DOMAIN pg_temp.checked AS TEXT CHECK (pg_temp.forge());"
            ),
        );
        for sql in [
            format!("SELECT clinicdesk_audit_refusal({forged})"),
            "SELECT pg_temp.clinicdesk_apply('c', 't', NULL, 1, 1, '[]')".to_owned(),
            format!("DO $$ BEGIN PERFORM clinicdesk_audit_refusal({forged}); END $$"),
            "SELECT clinicdesk_apply('c', 't', NULL, 1, 1, '[]') WHERE pg_temp.forge()".to_owned(),
            "SELECT clinicdesk_apply('c'::pg_temp.checked, 't', NULL, 1, 1, '[]')".to_owned(),
        ] {
            assert_eq!(db.attempt(&sql), Err(SqlState::INSUFFICIENT_PRIVILEGE), "{login}: {sql}");
        }
        assert_eq!(audit_count(), audited, "{login}: nothing was added to the audit trail");
    }
}

#[test]
fn the_audit_log_is_append_only_outlives_pruning_and_records_refused_writes() {
    let clinic = Clinic::start();
    let mut owner = Db::connect(&clinic.admin_url).unwrap();
    let (op_login, op_id) = clinic.login_of(RoleCode::Operator);
    let (head_login, _) = clinic.login_of(RoleCode::Head);
    let (setup_login, _) = clinic.login_of(RoleCode::Admin);
    let mut op = Db::connect(&clinic.url_of(op_login)).unwrap();
    let mut head = Db::connect(&clinic.url_of(head_login)).unwrap();
    let mut setup_admin = Db::connect(&clinic.url_of(setup_login)).unwrap();

    // An upload the server takes, and one it refuses (the operator may not
    // make deals), as a workstation sends them.
    let inquiry = new_id();
    let accepted = apply(
        &op,
        "op-workstation",
        1,
        0,
        serde_json::json!([{"table": "inquiries", "row_id": inquiry, "op": "insert",
                            "payload": {"source": "walk_in", "status": "new", "operator_id": op_id,
                                        "note": "accepted", "created_at": 0}}]),
    );
    assert_eq!(accepted["status"], "applied", "{accepted}");
    let (deal_type, stage): (String, String) = (
        owner.one("SELECT deal_type_id FROM deal_stages ORDER BY id LIMIT 1"),
        owner.one("SELECT id FROM deal_stages ORDER BY id LIMIT 1"),
    );
    let deal = new_id();
    let refused = apply(
        &op,
        "op-workstation",
        2,
        1,
        serde_json::json!([{"table": "deals", "row_id": deal, "op": "insert",
                            "payload": {"deal_type_id": deal_type, "stage_id": stage, "title": "forged",
                                        "created_at": 0}}]),
    );
    assert_eq!(refused["status"], "rejected", "{refused}");

    // The head reads both, the refusal with what was tried and why.
    let head_url = clinic.url_of(head_login);
    let q = AuditQuery { author: Some(op_login.into()), ..Default::default() };
    let entries = audit::read(&head_url, &q).unwrap();
    assert!(entries.iter().any(|e| e.row_id == inquiry && e.op.as_deref() == Some("insert")));
    let e = entries.iter().find(|e| e.row_id == deal).unwrap_or_else(|| panic!("no refusal: {entries:?}"));
    assert_eq!((e.op.as_deref(), e.table.as_str(), e.user_id.as_deref()), (Some("refused"), "deals", Some(op_id)));
    let field = |name: &str| e.changes.iter().find(|c| c.column == name).map(|c| c.new.clone());
    assert_eq!(field("tried"), Some(serde_json::json!("insert")));
    assert_eq!(field("title"), Some(serde_json::json!("forged")));
    let why = field("error").unwrap_or_default();
    assert!(why.as_str().is_some_and(|w| w.contains("row-level security") && w.contains("deals")), "{why}");
    let described = e.describe_changes();
    assert!(described.contains("tried: \"insert\"") && !described.contains("null →"), "{described}");
    let found = audit::read(&head_url, &AuditQuery { search: Some("row-level security".into()), ..Default::default() })
        .unwrap();
    assert!(found.iter().any(|e| e.row_id == deal), "a refusal is found by its error");

    // Nobody changes it: the logins hold no privilege on it, and the owner
    // (and every function of the owner's) meets the append-only trigger.
    let audit_count = |owner: &Db| owner.one("SELECT count(*)::text FROM clinicdesk_audit_log");
    let before = audit_count(&owner);
    for (who, db) in [("operator", &mut op), ("head", &mut head)] {
        for sql in [
            "UPDATE clinicdesk_audit_log SET author = 'nobody' RETURNING 1",
            "DELETE FROM clinicdesk_audit_log RETURNING 1",
            "TRUNCATE clinicdesk_audit_log",
        ] {
            assert_eq!(db.attempt(sql), Err(SqlState::INSUFFICIENT_PRIVILEGE), "{who}: {sql}");
        }
    }
    for sql in [
        "UPDATE clinicdesk_audit_log SET author = 'nobody' RETURNING 1",
        "DELETE FROM clinicdesk_audit_log RETURNING 1",
        "TRUNCATE clinicdesk_audit_log",
    ] {
        assert_eq!(owner.attempt(sql), Err(SqlState::INSUFFICIENT_PRIVILEGE), "owner: {sql}");
    }
    assert_eq!(owner.one("SELECT clinicdesk_audit_purge()::text"), "0", "nothing is older than the retention");

    // Pruning the change log, even all of it, leaves the audit trail whole.
    assert_eq!(value::<i64>(&head, "SELECT clinicdesk_prune(0)"), Ok(0), "a login prunes only what is old");
    let pruned: i64 = value(&owner, "SELECT clinicdesk_prune(0)").unwrap();
    assert!(pruned > 0);
    assert_eq!(owner.one("SELECT count(*)::text FROM sync_changes"), "0");
    assert_eq!(audit_count(&owner), before);
    let q = AuditQuery { search: Some(inquiry.clone()), ..Default::default() };
    assert_eq!(audit::read(&head_url, &q).unwrap().len(), 1, "still in the audit trail");

    // How long it is kept is the head's to say: not the operator's, not the
    // setup administrator's (who edits the other global settings).
    let set_retention = |days: &str| {
        format!(
            "INSERT INTO global_settings (id, key, value, updated_at)
             VALUES (gen_random_uuid()::text, 'audit_retention_days', '{days}', 0) RETURNING 1"
        )
    };
    assert_eq!(op.attempt(&set_retention("1")), Err(SqlState::INSUFFICIENT_PRIVILEGE));
    assert_eq!(setup_admin.attempt(&set_retention("1")), Err(SqlState::INSUFFICIENT_PRIVILEGE));
    assert_eq!(
        setup_admin.attempt(
            "INSERT INTO global_settings (id, key, value, updated_at)
             VALUES (gen_random_uuid()::text, 'security_probe', '1', 0) RETURNING 1"
        ),
        Ok(1),
        "other global settings stay the setup administrator's"
    );
    assert_eq!(head.attempt(&set_retention("3650")), Ok(1));
}

#[test]
fn an_operator_cannot_rewrite_calls_or_inquiries_nor_delete_people() {
    let clinic = Clinic::start();
    let owner = Db::connect(&clinic.admin_url).unwrap();
    let (op_login, op_id) = clinic.login_of(RoleCode::Operator);
    let (sup_login, _) = clinic.login_of(RoleCode::Supervisor);
    let (head_login, head_id) = clinic.login_of(RoleCode::Head);
    let mut op = Db::connect(&clinic.url_of(op_login)).unwrap();
    let mut sup = Db::connect(&clinic.url_of(sup_login)).unwrap();
    let mut head = Db::connect(&clinic.url_of(head_login)).unwrap();
    let (own_call, others_missed, inquiry) = (new_id(), new_id(), new_id());
    run(
        &owner,
        &format!(
            "INSERT INTO calls (id, direction, peer_e164, operator_id, started_at, answered_at, ended_at, result,
                                updated_at)
             VALUES ('{own_call}', 'in', '+79990000001', '{op_id}', 1000, 1100, 2000, 'answered', 0),
                    ('{others_missed}', 'in', '+79990000002', '{head_id}', 1000, NULL, 1500, 'missed', 0);
             INSERT INTO inquiries (id, phone_e164, source, status, operator_id, created_at, updated_at)
             VALUES ('{inquiry}', '+79990000002', 'missed_call', 'new', '{head_id}', 1000, 0)"
        ),
    );
    let person = owner.one("SELECT id FROM people WHERE deleted_at IS NULL ORDER BY id LIMIT 1");
    let refused = Err(SqlState::INSUFFICIENT_PRIVILEGE);

    // Calls: linked to a person and an inquiry, nothing else.
    assert_eq!(
        op.attempt(&format!(
            "UPDATE calls SET person_id = '{person}', inquiry_id = '{inquiry}' WHERE id = '{own_call}' RETURNING 1"
        )),
        Ok(1)
    );
    for set in [
        "started_at = 1",
        "answered_at = NULL",
        "ended_at = 99999",
        "direction = 'out'",
        "peer_e164 = '+70000000000'",
        "result = 'missed'",
        "deleted_at = 1",
    ] {
        let sql = format!("UPDATE calls SET {set} WHERE id = '{own_call}' RETURNING 1");
        assert_eq!(op.attempt(&sql), refused, "{set}");
    }
    // Someone else's missed call is in the operator's queue, not theirs to take.
    assert_eq!(
        op.attempt(&format!("UPDATE calls SET operator_id = '{op_id}' WHERE id = '{others_missed}' RETURNING 1")),
        refused
    );
    assert_eq!(
        sup.attempt(&format!("UPDATE calls SET operator_id = NULL WHERE id = '{others_missed}' RETURNING 1")),
        refused
    );
    assert_eq!(
        head.attempt(&format!("UPDATE calls SET operator_id = '{op_id}' WHERE id = '{others_missed}' RETURNING 1")),
        Ok(1),
        "the clinic head corrects it"
    );

    // Inquiries: saved as the window does; who took one and when stay.
    assert_eq!(
        op.attempt(&format!(
            "UPDATE inquiries SET note = 'called back', status = 'closed', closed_at = 2000, first_response_at = 2000
             WHERE id = '{inquiry}' RETURNING 1"
        )),
        Ok(1)
    );
    for set in [format!("operator_id = '{op_id}'"), "created_at = 1".to_owned()] {
        let sql = format!("UPDATE inquiries SET {set} WHERE id = '{inquiry}' RETURNING 1");
        assert_eq!(op.attempt(&sql), refused, "{set}");
    }
    assert_eq!(
        sup.attempt(&format!("UPDATE inquiries SET deleted_at = 1 WHERE id = '{inquiry}' RETURNING 1")),
        Ok(1),
        "inquiry.delete still tombstones"
    );

    // People: edited by whoever saves them, deleted by the head alone.
    assert_eq!(op.attempt(&format!("UPDATE people SET note = 'allergy' WHERE id = '{person}' RETURNING 1")), Ok(1));
    assert_eq!(op.attempt(&format!("UPDATE people SET deleted_at = 1 WHERE id = '{person}' RETURNING 1")), refused);
    assert_eq!(sup.attempt(&format!("UPDATE people SET deleted_at = 1 WHERE id = '{person}' RETURNING 1")), refused);
    assert_eq!(head.attempt(&format!("UPDATE people SET deleted_at = 1 WHERE id = '{person}' RETURNING 1")), Ok(1));
}

/// The change feed as `login` gets it from the start of the log: the ids of
/// the rows of `table` it returns, and those of them that came back null.
fn feed(db: &Db, epoch: &str, table: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let feed: serde_json::Value = db
        .rt
        .block_on(db.client.query_one("SELECT clinicdesk_changes('0', 0, $1, 100000, '[]')", &[&epoch]))
        .unwrap_or_else(|e| panic!("clinicdesk_changes: {e}"))
        .get(0);
    let rows = feed["rows"].as_array().unwrap_or_else(|| panic!("{feed}"));
    let of_table = rows.iter().filter(|r| r["table"] == table);
    let id = |r: &serde_json::Value| r["row_id"].as_str().unwrap_or_default().to_owned();
    (of_table.clone().map(id).collect(), of_table.filter(|r| r["row"].is_null()).map(id).collect())
}

#[test]
fn an_operators_download_names_its_own_calls_and_never_another_operators() {
    let clinic = Clinic::start();
    let owner = Db::connect(&clinic.admin_url).unwrap();
    let (op_login, op_id) = clinic.login_of(RoleCode::Operator);
    let (_, head_id) = clinic.login_of(RoleCode::Head);
    let op = Db::connect(&clinic.url_of(op_login)).unwrap();
    let epoch = owner.one("SELECT value FROM clinicdesk_meta WHERE key = 'epoch'");
    // The operator's answered call, the head's answered call (the operator
    // may not see it), a missed call of the head's (the shared queue).
    let (own, others, queue) = (new_id(), new_id(), new_id());
    run(
        &owner,
        &format!(
            "INSERT INTO calls (id, direction, peer_e164, operator_id, started_at, answered_at, ended_at, result,
                                updated_at)
             VALUES ('{own}', 'in', '+79990000011', '{op_id}', 1000, 1100, 2000, 'answered', 0),
                    ('{others}', 'in', '+79990000012', '{head_id}', 1000, 1100, 2000, 'answered', 0),
                    ('{queue}', 'in', '+79990000013', '{head_id}', 1000, NULL, 1500, 'missed', 0)"
        ),
    );
    assert_eq!(op.one(&format!("SELECT count(*)::text FROM calls WHERE id = '{others}'")), "0");

    // Through clinicdesk_changes: its own and the queue's, whole; the
    // head's call not even by its id (version 3 sent it, as a null row).
    let (ids, nulls) = feed(&op, &epoch, "calls");
    assert!(ids.contains(&own) && ids.contains(&queue), "{ids:?}");
    assert!(!ids.contains(&others), "another operator's call is named to the operator");
    assert!(nulls.is_empty(), "{nulls:?}");
    // Through the change log itself, which the login reads by its policy.
    let logged = op.ids("SELECT row_id FROM sync_changes WHERE table_name = 'calls'");
    assert!(logged.contains(&own) && logged.contains(&queue), "{logged:?}");
    assert!(!logged.contains(&others));
    // The head sees all three.
    let (head_login, _) = clinic.login_of(RoleCode::Head);
    let head = Db::connect(&clinic.url_of(head_login)).unwrap();
    let (ids, _) = feed(&head, &epoch, "calls");
    assert!([&own, &others, &queue].iter().all(|id| ids.contains(*id)), "{ids:?}");

    // The head gives the operator's call to themselves: the operator's
    // workstation learns that it left (its id, the row null, so the copy
    // goes), and nothing of what happens to it afterwards.
    run(&owner, &format!("UPDATE calls SET operator_id = '{head_id}' WHERE id = '{own}'"));
    run(&owner, &format!("UPDATE calls SET inquiry_id = NULL, updated_at = 5 WHERE id = '{own}'"));
    let (ids, nulls) = feed(&op, &epoch, "calls");
    assert!(ids.contains(&own) && nulls.contains(&own), "{ids:?} {nulls:?}");
    assert_eq!(
        op.one(&format!("SELECT count(*)::text FROM sync_changes WHERE row_id = '{own}'")),
        "1",
        "the move only: not the insert of a call no longer the operator's, not the edit after the move"
    );
    assert!(!feed(&op, &epoch, "calls").0.contains(&others));
}

#[test]
fn a_version_3_server_with_data_upgrades_and_its_logins_lose_the_internals() {
    use clinicdesk::sync::server;

    use crate::sync::{Postgres, cli, execute, replica_path};

    // A clinic database as version 3 left it: loaded, with a login per
    // operator, and changes in its log.
    let pg = Postgres::start();
    execute(&pg.url("postgres"), "CREATE DATABASE upgraded");
    let url = pg.url("upgraded");
    let loaded = crate::harness::demo_profile(40, 300);
    let mut owner = Db::connect(&url).unwrap();
    owner.rt.block_on(server::init_to(&mut owner.client, "upgraded", 3)).unwrap();
    owner.rt.block_on(server::load_replica(&mut owner.client, &replica_path(loaded.path()))).unwrap();
    assert_eq!(owner.one("SELECT value FROM clinicdesk_meta WHERE key = 'schema_version'"), "3");
    let operators: Vec<(String, String)> = owner
        .rt
        .block_on(owner.client.query(
            "SELECT u.login, u.id FROM users u JOIN roles r ON r.id = u.role_id
             WHERE r.code = 'operator' AND u.active = 1 AND u.deleted_at IS NULL ORDER BY u.login LIMIT 2",
            &[],
        ))
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let [(op_login, op_id), (_, other_id)] = &operators[..] else { panic!("two operators: {operators:?}") };
    run(&owner, &format!("CREATE ROLE \"{op_login}\" LOGIN IN ROLE clinicdesk_user"));
    let op_url = format!("postgres://{op_login}@127.0.0.1:{}/upgraded", pg.port);
    let (own, others) = (new_id(), new_id());
    run(
        &owner,
        &format!(
            "INSERT INTO calls (id, direction, peer_e164, operator_id, started_at, answered_at, ended_at, result,
                                updated_at)
             VALUES ('{own}', 'in', '+79990000021', '{op_id}', 1000, 1100, 2000, 'answered', 0),
                    ('{others}', 'in', '+79990000022', '{other_id}', 1000, 1100, 2000, 'answered', 0)"
        ),
    );
    let op = Db::connect(&op_url).unwrap();
    assert!(value::<i64>(&op, "SELECT count(*) FROM clinicdesk_log_after('0', 0, 1000)").is_ok(), "version 3");
    drop(op);

    let out = cli(None, &["server", "init", "--database-url", &url]);
    assert!(out.status.success(), "server init: {}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("from version 3 to {}", server::SERVER_SCHEMA_VERSION)), "{said}");

    let mut op = Db::connect(&op_url).unwrap();
    assert_eq!(
        op.attempt("SELECT count(*) FROM clinicdesk_log_after('0', 0, 1000)"),
        Err(SqlState::INSUFFICIENT_PRIVILEGE)
    );
    // The entries written by version 3 are read by the new policy.
    let epoch = owner.one("SELECT value FROM clinicdesk_meta WHERE key = 'epoch'");
    let (ids, nulls) = feed(&op, &epoch, "calls");
    assert!(ids.contains(&own) && !ids.contains(&others) && nulls.is_empty(), "{ids:?} {nulls:?}");
    let logged = op.ids("SELECT row_id FROM sync_changes");
    assert!(logged.contains(&own) && !logged.contains(&others), "{logged:?}");

    // A workstation of the operator's syncs with it, and keeps up: a call
    // given to the other operator leaves it, the other's never arrives.
    let b = tempfile::tempdir().unwrap();
    sync_once(b.path(), &op_url);
    let on_b = |id: &str| count(b.path(), &format!("SELECT count(*) FROM calls WHERE id = '{id}'"));
    assert_eq!((on_b(&own), on_b(&others)), (1, 0));
    let server_count = op.one("SELECT count(*)::text FROM calls");
    assert_eq!(count(b.path(), "SELECT count(*) FROM calls").to_string(), server_count);
    run(&owner, &format!("UPDATE calls SET operator_id = '{other_id}' WHERE id = '{own}'"));
    let said = sync_once(b.path(), &op_url);
    assert!(!said.contains("snapshot"), "{said}");
    assert_eq!((on_b(&own), on_b(&others)), (0, 0));
    // A refused upload of the workstation is still recorded.
    let deal = new_id();
    let refused = apply(
        &op,
        "op-workstation",
        1,
        0,
        serde_json::json!([{"table": "deals", "row_id": deal, "op": "insert", "payload": {"title": "forged"}}]),
    );
    assert_eq!(refused["status"], "rejected", "{refused}");
    assert_eq!(
        owner.one(&format!(
            "SELECT string_agg(author || ' ' || op, ',') FROM clinicdesk_audit_log WHERE row_id = '{deal}'"
        )),
        format!("{op_login} refused")
    );
}
