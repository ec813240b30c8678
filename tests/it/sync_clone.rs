//! Replicas that are not the only copy of themselves: a profile copied to
//! a second PC (a disk image of the first workstation) and a replica
//! restored from a backup. The server knows each uploaded transaction by
//! its own UUID, not only by (client id, mutation id): nothing of either
//! copy is answered with the other's outcome, lost or applied twice, and a
//! restored replica's old edits are not applied again over newer values.
//! The real binary against a throwaway cluster (see `sync.rs`).

use std::path::Path;

use clinicdesk::crm::{Country, PersonForm};
use clinicdesk::store::text;

use super::sync::{Postgres, Sql, assert_converged, count, open, replica_path, sync_once, text_of};

/// Copies a profile directory as a disk image would: everything, the
/// replica after its WAL is checkpointed into the main file.
fn copy_profile(from: &Path, to: &Path) {
    checkpoint(from);
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_profile(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Moves everything of the replica's WAL into its main file.
fn checkpoint(profile: &Path) {
    let path = replica_path(profile);
    if !path.exists() {
        return;
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0)).unwrap();
    assert_eq!(busy, 0, "the checkpoint of {} was blocked", path.display());
}

/// A CSV of `n` people `{prefix}-0..` with a phone each.
fn people_csv(path: &Path, prefix: &str, phone_block: u32, range: std::ops::Range<u32>) {
    let mut csv = String::from("external_id;last_name;first_name;phones\n");
    for i in range {
        csv.push_str(&format!("{prefix}-{i};{prefix}ов{i};Тест;+7 916 {phone_block:03} {i:04}\n"));
    }
    std::fs::write(path, csv).unwrap();
}

fn import(profile: &Path, csv: &Path) {
    let out = super::sync::cli(Some(profile), &["import", "patients", csv.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "import on {}: {}{}",
        profile.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn client_id(profile: &Path) -> String {
    text_of(profile, "SELECT value FROM sync_state WHERE key = 'client_id'").unwrap()
}

#[test]
fn a_replica_copied_to_a_second_pc_loses_no_edit_of_either() {
    let pg = Postgres::start();
    let url = pg.clinic("cloned");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    std::fs::write(a.path().join("settings.toml"), "country = \"RU\"\n").unwrap();
    sync_once(a.path(), &url);
    // A change still pending when the disk image is taken: both copies hold
    // the same transaction, which must arrive once.
    let shared = PersonForm {
        last_name: "Общий".into(),
        first_name: "До копии".into(),
        phones: vec!["+79161230000".into()],
        ..Default::default()
    };
    open(a.path()).save_person(&shared.validate(Country::Ru).unwrap()).unwrap();
    copy_profile(a.path(), b.path());
    assert_eq!(client_id(a.path()), client_id(b.path()));

    // Each imports 200 other people offline: A in one transaction, B in two
    // (50 and 150), so B's second upload is numbered where A has none.
    let files = tempfile::tempdir().unwrap();
    let (csv_a, csv_b1, csv_b2) =
        (files.path().join("a.csv"), files.path().join("b1.csv"), files.path().join("b2.csv"));
    people_csv(&csv_a, "A", 100, 0..200);
    people_csv(&csv_b1, "B", 200, 0..50);
    people_csv(&csv_b2, "B", 200, 50..200);
    import(a.path(), &csv_a);
    import(b.path(), &csv_b1);
    import(b.path(), &csv_b2);

    let mut outputs = Vec::new();
    for profile in [a.path(), b.path(), a.path(), b.path()] {
        outputs.push(sync_once(profile, &url));
    }

    let sql = Sql::connect(&url);
    for prefix in ["A", "B"] {
        let all = sql.i64(&format!("SELECT count(*) FROM people WHERE external_id LIKE '{prefix}-%'"));
        let distinct =
            sql.i64(&format!("SELECT count(DISTINCT external_id) FROM people WHERE external_id LIKE '{prefix}-%'"));
        assert_eq!((all, distinct), (200, 200), "{prefix}'s people on the server");
    }
    assert_eq!(sql.i64("SELECT count(*) FROM people WHERE last_name = 'Общий'"), 1, "the shared change once");
    assert_eq!(sql.i64("SELECT count(*) FROM people"), 401);
    assert_eq!(sql.i64("SELECT count(*) FROM person_phones"), 401);
    for profile in [a.path(), b.path()] {
        assert_eq!(count(profile, "SELECT count(*) FROM people WHERE external_id LIKE 'A-%'"), 200);
        assert_eq!(count(profile, "SELECT count(*) FROM people WHERE external_id LIKE 'B-%'"), 200);
        assert_eq!(count(profile, "SELECT count(*) FROM people WHERE last_name = 'Общий'"), 1);
        assert_eq!(count(profile, "SELECT count(*) FROM sync_rejections"), 0, "{}", profile.display());
    }
    assert_converged(&url, &[a.path(), b.path()]);
    let said = |o: &str| o.contains("new client id");
    assert!(!said(&outputs[0]) && !said(&outputs[2]), "A keeps its client id: {outputs:?}");
    assert!(said(&outputs[1]), "B says it took a new client id: {}", outputs[1]);
    assert!(!said(&outputs[3]), "once is enough: {}", outputs[3]);
    assert_ne!(client_id(a.path()), client_id(b.path()));
    // Both keep working under their own ids.
    open(b.path()).write(|w| w.update_changed("people", &person_id(b.path(), "B-7"), &[("note", text("B"))])).unwrap();
    open(a.path()).write(|w| w.update_changed("people", &person_id(a.path(), "B-8"), &[("note", text("A"))])).unwrap();
    for profile in [b.path(), a.path(), b.path()] {
        let out = sync_once(profile, &url);
        assert!(!said(&out), "{out}");
    }
    assert_converged(&url, &[a.path(), b.path()]);
    assert_eq!(sql.i64("SELECT count(*) FROM people WHERE note IN ('A', 'B')"), 2);
}

fn person_id(profile: &Path, external_id: &str) -> String {
    text_of(profile, &format!("SELECT id FROM people WHERE external_id = '{external_id}'")).unwrap()
}

#[test]
fn a_replica_restored_from_a_backup_does_not_reapply_old_edits() {
    let pg = Postgres::start();
    let url = pg.clinic("restored");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let form = PersonForm {
        last_name: "Бэкапова".into(),
        first_name: "Анна".into(),
        phones: vec!["+79163210000".into()],
        ..Default::default()
    };
    let person = open(a.path()).save_person(&form.validate(Country::Ru).unwrap()).unwrap();
    let other = PersonForm { last_name: "Другой".into(), first_name: "Пётр".into(), ..Default::default() };
    let other = open(a.path()).save_person(&other.validate(Country::Ru).unwrap()).unwrap();
    sync_once(a.path(), &url);
    sync_once(b.path(), &url);
    let edit = |profile: &Path, n: &str| {
        open(profile)
            .write(|w| {
                w.update_changed(
                    "people",
                    &person,
                    &[("note", text(format!("note {n}"))), ("email", text(format!("{n}@clinic.example")))],
                )
            })
            .unwrap();
    };
    // The backup holds the first of 20 edits, not yet uploaded.
    edit(a.path(), "1");
    checkpoint(a.path());
    let backup = tempfile::tempdir().unwrap();
    std::fs::copy(replica_path(a.path()), backup.path().join("replica.sqlite")).unwrap();
    sync_once(a.path(), &url);
    for n in 2..=20 {
        edit(a.path(), &n.to_string());
        sync_once(a.path(), &url);
    }
    // Newer values from another workstation.
    sync_once(b.path(), &url);
    edit(b.path(), "B");
    sync_once(b.path(), &url);

    // A is restored from the backup: its edit 1 is pending again.
    checkpoint(a.path());
    for suffix in ["-wal", "-shm"] {
        let mut name = replica_path(a.path()).into_os_string();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
    std::fs::copy(backup.path().join("replica.sqlite"), replica_path(a.path())).unwrap();
    assert_eq!(
        count(a.path(), "SELECT count(*) FROM outbox WHERE table_name = 'people'"),
        1,
        "edit 1 is pending again"
    );
    let old_id = client_id(a.path());
    sync_once(a.path(), &url);

    let sql = Sql::connect(&url);
    let server = |column: &str| sql.text(&format!("SELECT {column} FROM people WHERE id = '{person}'")).unwrap();
    assert_eq!(server("note"), "note B", "edit 1 is not applied again over B's");
    assert_eq!(server("email"), "B@clinic.example");
    let q = format!("SELECT note || '|' || email FROM people WHERE id = '{person}'");
    assert_eq!(text_of(a.path(), &q).unwrap(), "note B|B@clinic.example", "the restored replica converges");
    assert_converged(&url, &[a.path(), b.path()]);
    assert_eq!(count(a.path(), "SELECT count(*) FROM sync_rejections"), 0);

    // It keeps working: its next change is numbered like one it uploaded
    // before the restore, so it takes a new client id; nothing is lost.
    open(a.path()).write(|w| w.update_changed("people", &other, &[("note", text("after the restore"))])).unwrap();
    let out = sync_once(a.path(), &url);
    assert!(out.contains("new client id"), "{out}");
    assert_ne!(client_id(a.path()), old_id);
    sync_once(b.path(), &url);
    assert_converged(&url, &[a.path(), b.path()]);
    assert_eq!(sql.text(&format!("SELECT note FROM people WHERE id = '{other}'")).unwrap(), "after the restore");
    assert_eq!(server("note"), "note B");
}

#[test]
fn a_lock_timeout_in_the_third_of_ten_pipelined_uploads_lets_none_after_it_commit_first() {
    let pg = Postgres::start();
    let url = pg.clinic("ordered");
    let a = tempfile::tempdir().unwrap();
    let mut people = Vec::new();
    for i in 0..10 {
        let form = PersonForm {
            last_name: format!("Порядков{i}"), first_name: "Тест".into(), ..Default::default()
        };
        people.push(open(a.path()).save_person(&form.validate(Country::Ru).unwrap()).unwrap());
    }
    sync_once(a.path(), &url);
    // Ten local transactions, one person each, uploaded in one pipeline.
    for (i, id) in people.iter().enumerate() {
        open(a.path()).write(|w| w.update_changed("people", id, &[("note", text(format!("edit {i}")))])).unwrap();
    }
    // The third waits for a row lock held here, and gives up after 300 ms.
    let sql = Sql::connect(&url);
    sql.execute("ALTER DATABASE ordered SET lock_timeout = '300ms'");
    let holder = Sql::connect(&url);
    holder.execute(&format!("BEGIN; SELECT 1 FROM people WHERE id = '{}' FOR UPDATE", people[2]));
    let out = super::sync::cli(Some(a.path()), &["sync", "--database-url", &url, "--once"]);
    assert!(!out.status.success(), "the lock timeout fails this sync");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("lock"), "{err}");
    let edited = |i: usize| sql.i64(&format!("SELECT count(*) FROM people WHERE id = '{}' AND note <> ''", people[i]));
    assert_eq!((0..10).map(edited).collect::<Vec<_>>(), [1, 1, 0, 0, 0, 0, 0, 0, 0, 0], "none after the third");
    assert_eq!(count(a.path(), "SELECT count(DISTINCT tx_id) FROM outbox"), 8);
    holder.execute("ROLLBACK");
    sync_once(a.path(), &url);
    // Committed in the order they were made: their change-log entries' xids.
    let order: Vec<i64> = people
        .iter()
        .map(|id| {
            sql.i64(&format!(
                "SELECT max(xid::text::bigint) FROM sync_changes WHERE table_name = 'people' AND row_id = '{id}'"
            ))
        })
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
    assert_eq!(sql.i64("SELECT count(*) FROM people WHERE note LIKE 'edit %'"), 10);
    assert_converged(&url, &[a.path()]);
}
