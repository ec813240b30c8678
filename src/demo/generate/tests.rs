//! The generated clinic: repeatable for a seed, consistent, complete.

use super::*;
use crate::demo::calendar::local_day_start;

// Wednesday 2025-03-12, 12:00 in the clinic.
const NOW: Millis = 1_741_770_000_000;

fn generated(seed: u64) -> (tempfile::TempDir, Replica, DemoSummary) {
    let dir = tempfile::tempdir().unwrap();
    let mut replica = Replica::open(&dir.path().join("demo.db")).unwrap();
    let opts = DemoOptions { patients: 500, calls: 2000, seed, now: NOW };
    let mut phases = Vec::new();
    let summary = generate(&mut replica, &opts, &mut |p| phases.push(p.to_owned())).unwrap();
    assert!(phases.iter().any(|p| p == "people") && phases.iter().any(|p| p == "calls"), "{phases:?}");
    (dir, replica, summary)
}

const TABLES: &[&str] = &[
    "org_units",
    "roles",
    "role_rights",
    "users",
    "user_rights",
    "ad_channels",
    "campaigns",
    "tracking_numbers",
    "people",
    "person_phones",
    "people_fts",
    "inquiry_reasons",
    "deal_types",
    "deal_stages",
    "auto_transition_rules",
    "task_types",
    "task_templates",
    "calls",
    "inquiries",
    "deals",
    "tasks",
    "visits",
    "global_settings",
];

/// Every row of every table, as text.
fn dump(conn: &Connection) -> Vec<String> {
    let mut out = Vec::new();
    for table in TABLES {
        let mut stmt = conn.prepare(&format!("SELECT rowid, * FROM {table} ORDER BY rowid")).unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            let values: Vec<String> =
                (0..columns).map(|i| format!("{:?}", row.get::<_, rusqlite::types::Value>(i).unwrap())).collect();
            out.push(format!("{table}: {}", values.join("|")));
        }
    }
    out
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[test]
fn same_seed_same_clinic_other_seed_other_clinic() {
    let (_d1, a, summary_a) = generated(42);
    let (_d2, b, summary_b) = generated(42);
    let (_d3, c, _) = generated(43);
    assert_eq!(summary_a, summary_b);
    let dump_a = dump(a.conn());
    assert!(dump_a.len() > 5000, "{}", dump_a.len());
    assert!(dump_a == dump(b.conn()), "same seed, different data");
    assert!(dump_a != dump(c.conn()), "different seeds, same data");
}

#[test]
fn the_clinic_is_consistent_and_complete() {
    let (_dir, replica, summary) = generated(7);
    let conn = replica.conn();
    assert_eq!(summary.people, 500);
    assert_eq!(summary.calls, 2000);
    assert_eq!(summary.operator_login, "operator");
    assert_eq!(count(conn, "SELECT count(*) FROM people"), 500);
    assert_eq!(count(conn, "SELECT count(*) FROM calls"), 2000);
    assert_eq!(count(conn, "SELECT count(*) FROM inquiries") as usize, summary.inquiries);
    assert_eq!(count(conn, "SELECT count(*) FROM deals") as usize, summary.deals);
    assert_eq!(count(conn, "SELECT count(*) FROM tasks") as usize, summary.tasks);
    assert_eq!(count(conn, "SELECT count(*) FROM visits") as usize, summary.visits);
    // About one inquiry per three calls.
    assert!((500..=1000).contains(&summary.inquiries), "{summary:?}");

    let mut fk = conn.prepare("PRAGMA foreign_key_check").unwrap();
    let problems: Vec<String> = fk.query_map([], |r| r.get::<_, String>(0)).unwrap().map(|r| r.unwrap()).collect();
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(count(conn, "SELECT count(*) FROM outbox"), 0);
    let journal: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(journal, "wal");
    assert_eq!(count(conn, "SELECT count(*) FROM people_fts"), count(conn, "SELECT count(*) FROM people"));
    assert_eq!(
        count(conn, "SELECT count(*) FROM people p LEFT JOIN people_fts f ON f.rowid = p.rowid WHERE f.rowid IS NULL"),
        0
    );

    // Families share a number.
    assert!(
        count(
            conn,
            "SELECT count(*) FROM (SELECT phone_e164 FROM person_phones GROUP BY phone_e164 HAVING count(*) >= 2)"
        ) > 0
    );
    // Every person can be reached.
    assert_eq!(count(conn, "SELECT count(*) FROM people WHERE id NOT IN (SELECT person_id FROM person_phones)"), 0);

    // The demo operator has work overdue and due today.
    let operator = "(SELECT id FROM users WHERE login = 'operator')";
    let open = "status IN ('open', 'in_progress')";
    let overdue = count(
        conn,
        &format!("SELECT count(*) FROM tasks WHERE responsible_id = {operator} AND {open} AND deadline_at < {NOW}"),
    );
    let day_start = local_day_start(NOW);
    let due_today = count(
        conn,
        &format!(
            "SELECT count(*) FROM tasks WHERE responsible_id = {operator} AND {open}
             AND deadline_at >= {NOW} AND deadline_at < {}",
            day_start + DAY
        ),
    );
    assert!(overdue >= 3 && due_today >= 3, "overdue {overdue}, due today {due_today}");
    assert!(count(conn, &format!("SELECT count(*) FROM tasks WHERE responsible_id IS NULL AND {open}")) > 0);
    assert!(count(conn, &format!("SELECT count(*) FROM tasks WHERE {open} AND deadline_at > {}", NOW + DAY)) > 0);

    // Deals in every stage of every type, their status the stage's outcome.
    assert_eq!(
        count(
            conn,
            "SELECT count(*) FROM deal_stages s WHERE NOT EXISTS (SELECT 1 FROM deals d WHERE d.stage_id = s.id)"
        ),
        0
    );
    assert_eq!(
        count(
            conn,
            "SELECT count(*) FROM deals d JOIN deal_stages s ON s.id = d.stage_id WHERE d.status <> s.outcome OR d.deal_type_id <> s.deal_type_id"
        ),
        0
    );

    // Users and dictionaries.
    for login in ["head", "admin", "supervisor", "operator", "operator2", "operator3", "doctor1", "doctor8", "nurse1"] {
        assert_eq!(count(conn, &format!("SELECT count(*) FROM users WHERE login = '{login}'")), 1, "{login}");
    }
    assert_eq!(count(conn, "SELECT count(*) FROM roles"), 6);
    assert_eq!(
        count(conn, "SELECT CAST(value AS INTEGER) FROM global_settings WHERE key = 'missed_call_deadline_min'"),
        15
    );

    // Times make sense.
    assert_eq!(
        count(
            conn,
            &format!("SELECT count(*) FROM calls WHERE started_at > {NOW} OR started_at < {NOW} - 731 * 86400000")
        ),
        0
    );
    assert_eq!(count(conn, "SELECT count(*) FROM calls WHERE answered_at < started_at OR ended_at < answered_at"), 0);
    assert_eq!(count(conn, "SELECT count(*) FROM calls WHERE result = 'answered' AND answered_at IS NULL"), 0);
    assert_eq!(count(conn, "SELECT count(*) FROM calls WHERE direction = 'in' AND did_e164 IS NULL"), 0);
    assert!(count(conn, "SELECT count(*) FROM calls WHERE person_id IS NULL") > 100);
    assert_eq!(
        count(
            conn,
            "SELECT count(*) FROM inquiries WHERE closed_at < created_at OR first_response_at < created_at AND source <> 'call'"
        ),
        0
    );
    assert_eq!(count(conn, "SELECT count(*) FROM inquiries WHERE (status = 'closed') <> (result IS NOT NULL)"), 0);
    assert_eq!(
        count(
            conn,
            &format!(
                "SELECT count(*) FROM visits WHERE starts_at > {NOW} AND status NOT IN ('booked', 'confirmed', 'cancelled')"
            )
        ),
        0
    );
    assert_eq!(
        count(
            conn,
            &format!("SELECT count(*) FROM visits WHERE starts_at <= {NOW} AND status NOT IN ('arrived', 'cancelled')")
        ),
        0
    );
    assert!(count(conn, &format!("SELECT count(*) FROM visits WHERE starts_at > {NOW}")) > 0);
    for table in ["calls", "inquiries", "deals", "tasks", "visits", "people"] {
        assert_eq!(
            count(
                conn,
                &format!(
                    "SELECT count(*) FROM {table} WHERE updated_at > {NOW} OR row_version <> 1 OR deleted_at IS NOT NULL"
                )
            ),
            0,
            "{table}"
        );
    }
    assert_eq!(count(conn, "SELECT count(*) FROM tasks WHERE status = 'done' AND completed_at IS NULL"), 0);

    // Russian and Ukrainian patients, the right phones for each.
    let ua = count(conn, "SELECT count(*) FROM person_phones WHERE phone_e164 LIKE '+380%' AND kind = 'mobile'");
    let ru = count(conn, "SELECT count(*) FROM person_phones WHERE phone_e164 LIKE '+79%' AND kind = 'mobile'");
    assert!(ua > 50 && ru > 2 * ua, "ua {ua}, ru {ru}");
    assert!(count(conn, "SELECT count(*) FROM people WHERE last_name = 'Иванова' AND sex = 'm'") == 0);
}

#[test]
fn another_open_connection_only_slows_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("demo.db");
    let mut replica = Replica::open(&path).unwrap();
    let reader = Replica::open_read_only(&path).unwrap();
    assert_eq!(count(reader.conn(), "SELECT count(*) FROM people"), 0);
    let opts = DemoOptions { patients: 50, calls: 200, seed: 1, now: NOW };
    generate(&mut replica, &opts, &mut |_| {}).unwrap();
    assert_eq!(count(reader.conn(), "SELECT count(*) FROM people"), 50);
    let journal: String = replica.conn().pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(journal, "wal");
}

#[test]
fn a_filled_replica_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut replica = Replica::open(&dir.path().join("demo.db")).unwrap();
    let opts = DemoOptions { patients: 20, calls: 50, seed: 1, now: NOW };
    generate(&mut replica, &opts, &mut |_| {}).unwrap();
    let err = generate(&mut replica, &opts, &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("already has data"), "{err}");
    assert_eq!(count(replica.conn(), "SELECT count(*) FROM people"), 20);
}
