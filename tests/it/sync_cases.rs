//! Convergence, conflicts, rejections, ordering, offline work, resync,
//! the server schema's versions, the CSV import and bad input.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use clinicdesk::crm::{Country, PersonForm};
use clinicdesk::store::{Replica, int, text};
use clinicdesk::sync::{self, ConflictKind, SyncConfig, SyncStatus};

use super::super::harness::{self, wait_for};
use super::*;

fn first_ids(profile: &Path, sql: &str) -> Vec<String> {
    let r = open(profile);
    let mut stmt = r.conn().prepare(sql).unwrap();
    stmt.query_map([], |r| r.get(0)).unwrap().map(|x| x.unwrap()).collect()
}

/// Another stage of the same deal type than the deal's current one.
fn other_stages(profile: &Path, deal: &str) -> Vec<String> {
    first_ids(
        profile,
        &format!(
            "SELECT s.id FROM deal_stages s JOIN deals d ON d.deal_type_id = s.deal_type_id
             WHERE d.id = '{deal}' AND s.id <> d.stage_id ORDER BY s.position"
        ),
    )
}

fn new_person(r: &mut Replica, last: &str, phone: &str) -> String {
    let form = PersonForm {
        last_name: last.into(),
        first_name: "Test".into(),
        phones: vec![phone.into()],
        ..Default::default()
    };
    r.save_person(&form.validate(Country::Ru).unwrap()).unwrap()
}

#[test]
fn two_workstations_converge_after_concurrent_edits() {
    let pg = Postgres::start();
    let (url, a) = loaded_clinic(&pg, "converge", 300, 1500);
    let b = tempfile::tempdir().unwrap();
    let first_a = sync_once(a.path(), &url);
    let first_b = sync_once(b.path(), &url);
    assert!(first_b.contains("snapshot"), "{first_b}");
    assert!(first_a.contains("snapshot"), "{first_a}");
    let before = assert_converged(&url, &[a.path(), b.path()]);
    assert_eq!(before["people"].rows, 300);

    let people = first_ids(a.path(), "SELECT id FROM people WHERE deleted_at IS NULL ORDER BY id LIMIT 4");
    let deals = first_ids(a.path(), "SELECT id FROM deals WHERE deleted_at IS NULL ORDER BY id LIMIT 2");
    let tasks = first_ids(a.path(), "SELECT id FROM tasks WHERE deleted_at IS NULL ORDER BY id LIMIT 2");
    // Concurrent work on both, neither syncing.
    {
        let mut ra = open(a.path());
        ra.write(|w| w.update_changed("people", &people[0], &[("note", text("allergic to penicillin (A)"))])).unwrap();
        ra.write(|w| w.update_changed("people", &people[1], &[("middle_name", text("Ивановна"))])).unwrap();
        let stage = other_stages(a.path(), &deals[0]).remove(0);
        ra.write(|w| w.update_changed("deals", &deals[0], &[("stage_id", text(&stage))])).unwrap();
        ra.write(|w| w.delete("tasks", &tasks[0])).unwrap();
        for i in 0..20 {
            new_person(&mut ra, &format!("Алексеев{i}"), &format!("+7916555{i:04}"));
        }
    }
    {
        let mut rb = open(b.path());
        rb.write(|w| w.update_changed("people", &people[0], &[("first_name", text("Мария-B"))])).unwrap();
        rb.write(|w| w.update_changed("people", &people[2], &[("note", text("prefers mornings"))])).unwrap();
        let stage = other_stages(b.path(), &deals[1]).remove(0);
        rb.write(|w| w.update_changed("deals", &deals[1], &[("stage_id", text(&stage))])).unwrap();
        rb.write(|w| w.update_changed("tasks", &tasks[1], &[("title", text("call back after 18:00"))])).unwrap();
        for i in 0..20 {
            new_person(&mut rb, &format!("Борисов{i}"), &format!("+7916777{i:04}"));
        }
    }
    sync_once(a.path(), &url);
    sync_once(b.path(), &url);
    sync_once(a.path(), &url);
    let after = assert_converged(&url, &[a.path(), b.path()]);
    assert_eq!(after["people"].rows, 340);
    assert_ne!(after["people"], before["people"]);
    // Different fields of one person: both kept.
    let p0 = format!("SELECT first_name || '|' || note FROM people WHERE id = '{}'", people[0]);
    assert_eq!(text_of(b.path(), &p0).unwrap(), "Мария-B|allergic to penicillin (A)");
    // The other workstation's new people are found by the search of each.
    for (profile, q) in [(a.path(), "borisov7"), (b.path(), "Алексеев19"), (b.path(), "9165550003")] {
        let r = open(profile);
        assert!(!clinicdesk::store::search::search_people(r.conn(), q, 5).unwrap().is_empty(), "{q}");
    }
    assert!(sync::conflicts(open(a.path()).conn()).unwrap().is_empty());
    assert!(sync::conflicts(open(b.path()).conn()).unwrap().is_empty());
}

#[test]
fn conflicts_deal_stage_person_fields_and_delete_against_edit() {
    let pg = Postgres::start();
    let (url, a) = loaded_clinic(&pg, "conflicts", 100, 600);
    let b = tempfile::tempdir().unwrap();
    sync_once(a.path(), &url);
    sync_once(b.path(), &url);

    let deal = first_ids(a.path(), "SELECT id FROM deals WHERE deleted_at IS NULL ORDER BY id LIMIT 1").remove(0);
    let stages = other_stages(a.path(), &deal);
    let person = first_ids(a.path(), "SELECT id FROM people WHERE deleted_at IS NULL ORDER BY id LIMIT 1").remove(0);
    let tasks = first_ids(a.path(), "SELECT id FROM tasks WHERE deleted_at IS NULL ORDER BY id LIMIT 2");
    let visit = first_ids(a.path(), "SELECT id FROM visits WHERE deleted_at IS NULL ORDER BY id LIMIT 1").remove(0);
    let slot: i64 = count(a.path(), &format!("SELECT starts_at FROM visits WHERE id = '{visit}'"));

    let mut ra = open(a.path());
    let mut rb = open(b.path());
    // Same deal's stage on both: A first.
    ra.write(|w| w.update_changed("deals", &deal, &[("stage_id", text(&stages[0]))])).unwrap();
    rb.write(|w| w.update_changed("deals", &deal, &[("stage_id", text(&stages[1])), ("title", text("B's title"))]))
        .unwrap();
    // Same visit moved to two different slots.
    ra.write(|w| w.update_changed("visits", &visit, &[("starts_at", int(slot + 3_600_000))])).unwrap();
    rb.write(|w| w.update_changed("visits", &visit, &[("starts_at", int(slot + 7_200_000))])).unwrap();
    // Different fields of one person.
    ra.write(|w| w.update_changed("people", &person, &[("email", text("a@clinic.example"))])).unwrap();
    rb.write(|w| w.update_changed("people", &person, &[("note", text("note from B"))])).unwrap();
    // Delete against edit, edit arriving last: the delete wins, the edit is a conflict.
    ra.write(|w| w.delete("tasks", &tasks[0])).unwrap();
    rb.write(|w| w.update_changed("tasks", &tasks[0], &[("title", text("edited on B"))])).unwrap();
    // Delete against edit, edit arriving first: applied, then deleted.
    rb.write(|w| w.update_changed("tasks", &tasks[1], &[("description", text("edited on B first"))])).unwrap();
    drop((ra, rb));
    // B uploads its edit of task 1 first: sync B once now would also send
    // the others, so send A's delete of task 1 only after B.
    sync_once(a.path(), &url);
    sync_once(b.path(), &url);
    open(a.path()).write(|w| w.delete("tasks", &tasks[1])).unwrap();
    sync_once(a.path(), &url);
    sync_once(b.path(), &url);
    assert_converged(&url, &[a.path(), b.path()]);

    assert!(sync::conflicts(open(a.path()).conn()).unwrap().is_empty(), "the first writer has no conflict");
    let list = sync::conflicts(open(b.path()).conn()).unwrap();
    let stage_conflicts: Vec<_> = list.iter().filter(|c| c.table == "deals").collect();
    assert_eq!(stage_conflicts.len(), 1, "{list:?}");
    let c = stage_conflicts[0];
    assert_eq!(
        (c.kind, c.column.as_deref(), c.row_id.as_str()),
        (ConflictKind::Field, Some("stage_id"), deal.as_str())
    );
    assert_eq!(c.local_value, serde_json::json!(stages[1]));
    assert_eq!(c.server_value, serde_json::json!(stages[0]));
    // A's stage stands everywhere; B's title (not contended) went through.
    let q = format!("SELECT stage_id || '|' || title FROM deals WHERE id = '{deal}'");
    assert_eq!(text_of(b.path(), &q).unwrap(), format!("{}|B's title", stages[0]));

    let visit_conflicts: Vec<_> = list.iter().filter(|c| c.table == "visits").collect();
    assert_eq!(visit_conflicts.len(), 1, "{list:?}");
    assert_eq!(visit_conflicts[0].server_value, serde_json::json!(slot + 3_600_000));
    assert_eq!(count(b.path(), &format!("SELECT starts_at FROM visits WHERE id = '{visit}'")), slot + 3_600_000);

    let q = format!("SELECT email || '|' || note FROM people WHERE id = '{person}'");
    assert_eq!(text_of(a.path(), &q).unwrap(), "a@clinic.example|note from B");

    let deleted: Vec<_> = list.iter().filter(|c| c.kind == ConflictKind::Deleted).collect();
    assert_eq!(deleted.len(), 1, "{list:?}");
    assert_eq!(deleted[0].row_id, tasks[0]);
    assert_eq!(deleted[0].local_value, serde_json::json!({"title": "edited on B"}));
    for t in &tasks {
        let q = format!("SELECT deleted_at IS NOT NULL FROM tasks WHERE id = '{t}'");
        assert_eq!(count(a.path(), &q), 1, "task {t} is deleted");
    }
    assert_eq!(
        text_of(a.path(), &format!("SELECT title FROM tasks WHERE id = '{}'", tasks[0])),
        text_of(b.path(), &format!("SELECT title FROM tasks WHERE id = '{}'", tasks[0]))
    );
    assert_eq!(
        text_of(a.path(), &format!("SELECT description FROM tasks WHERE id = '{}'", tasks[1])).unwrap(),
        "edited on B first"
    );
    assert_eq!(list.len(), 3);
    // The window can mark them dealt with.
    assert!(sync::resolve_conflict(open(b.path()).conn(), c.id).unwrap());
    assert_eq!(sync::conflicts(open(b.path()).conn()).unwrap().len(), 2);
}

#[test]
fn a_rejected_change_is_recorded_and_does_not_block_the_queue() {
    let pg = Postgres::start();
    let (url, a) = loaded_clinic(&pg, "rejections", 50, 100);
    let b = tempfile::tempdir().unwrap();
    sync_once(a.path(), &url);
    sync_once(b.path(), &url);
    let person = first_ids(a.path(), "SELECT id FROM people ORDER BY id LIMIT 1").remove(0);
    // Both add the same number to the same person: (person, phone) is unique.
    let add_phone = |profile: &Path| {
        open(profile)
            .write(|w| {
                w.insert(
                    "person_phones",
                    &clinicdesk::crm::new_id(),
                    &[("person_id", text(&person)), ("phone_e164", text("+79160001122")), ("kind", text("home"))],
                )
            })
            .unwrap();
    };
    add_phone(a.path());
    add_phone(b.path());
    // Both create a person with the same external id (unique), with a phone,
    // in one transaction each: B's whole transaction is refused.
    let add_person = |profile: &Path, phone: &str| {
        open(profile)
            .write(|w| {
                let id = clinicdesk::crm::new_id();
                w.insert(
                    "people",
                    &id,
                    &[
                        ("last_name", text("Дублев")),
                        ("first_name", text("Ext")),
                        ("external_id", text("EXT-1")),
                        ("created_at", int(w.now())),
                    ],
                )?;
                w.insert(
                    "person_phones",
                    &clinicdesk::crm::new_id(),
                    &[("person_id", text(&id)), ("phone_e164", text(phone))],
                )
            })
            .unwrap();
    };
    add_person(a.path(), "+79160002233");
    add_person(b.path(), "+79160003344");
    // B's later, unrelated change must still go through.
    open(b.path()).write(|w| w.update_changed("people", &person, &[("note", text("after the refused one"))])).unwrap();
    sync_once(a.path(), &url);
    let out = sync_once(b.path(), &url);
    assert!(out.contains("2 rejected"), "{out}");
    sync_once(a.path(), &url);
    assert_converged(&url, &[a.path(), b.path()]);
    let mut refused = sync::rejections(open(b.path()).conn()).unwrap();
    refused.sort_by_key(|r| r.id);
    assert_eq!(refused.len(), 2);
    assert!(refused.iter().all(|r| r.code == "23505" && r.error.contains("unique")), "{refused:?}");
    assert_eq!(refused[0].changes[0]["payload"]["phone_e164"], "+79160001122");
    assert_eq!(refused[1].changes.as_array().unwrap().len(), 2);
    assert_eq!(count(b.path(), "SELECT count(*) FROM people WHERE external_id = 'EXT-1'"), 1);
    assert_eq!(count(b.path(), "SELECT count(*) FROM person_phones WHERE phone_e164 = '+79160003344'"), 0);
    assert_eq!(
        text_of(a.path(), &format!("SELECT note FROM people WHERE id = '{person}'")).unwrap(),
        "after the refused one"
    );
    assert_eq!(count(b.path(), "SELECT count(*) FROM person_phones WHERE phone_e164 = '+79160001122'"), 1);
    assert_eq!(count(b.path(), "SELECT count(*) FROM sync_refetch"), 0);
}

#[test]
fn a_late_committing_transaction_is_not_skipped_unlike_a_naive_poller() {
    let pg = Postgres::start();
    let (url, a) = loaded_clinic(&pg, "ordering", 30, 50);
    let b = tempfile::tempdir().unwrap();
    sync_once(b.path(), &url);
    let people = first_ids(a.path(), "SELECT id FROM people ORDER BY id LIMIT 2");
    let slow = Sql::connect(&url);
    let fast = Sql::connect(&url);
    let naive = Sql::connect(&url);
    let mut naive_cursor = naive.i64("SELECT coalesce(max(seq), 0) FROM sync_changes");
    let mut naive_seen: Vec<String> = Vec::new();
    let mut naive_poll = |naive_cursor: &mut i64| {
        let rt = &naive.rt;
        let rows = rt
            .block_on(
                naive
                    .client
                    .query("SELECT seq, row_id FROM sync_changes WHERE seq > $1 ORDER BY seq", &[&*naive_cursor]),
            )
            .unwrap();
        for r in rows {
            *naive_cursor = r.get(0);
            naive_seen.push(r.get(1));
        }
    };
    // The slow transaction takes the lower sequence and stays open...
    slow.execute(&format!("BEGIN; UPDATE people SET note = 'slow' WHERE id = '{}'", people[0]));
    // ...while a fast one takes a higher one and commits.
    fast.execute(&format!("UPDATE people SET note = 'fast' WHERE id = '{}'", people[1]));
    naive_poll(&mut naive_cursor);
    sync_once(b.path(), &url);
    let note = |id: &str| text_of(b.path(), &format!("SELECT note FROM people WHERE id = '{id}'")).unwrap();
    // Nothing at or above the open transaction's xid is read yet: the fast
    // one waits for the slow one (delayed, never skipped).
    assert_ne!(note(&people[0]), "slow");
    assert_ne!(note(&people[1]), "fast");
    slow.execute("COMMIT");
    naive_poll(&mut naive_cursor);
    sync_once(b.path(), &url);
    assert_eq!(note(&people[0]), "slow");
    assert_eq!(note(&people[1]), "fast");
    // The naive `seq >` poller moved past the slow one's sequence before it
    // committed, and never saw it.
    assert_eq!(naive_seen, vec![people[1].clone()]);
    let slow_seq = naive.i64(&format!("SELECT seq FROM sync_changes WHERE row_id = '{}'", people[0]));
    let fast_seq = naive.i64(&format!("SELECT seq FROM sync_changes WHERE row_id = '{}'", people[1]));
    assert!(slow_seq < fast_seq);
    assert_converged(&url, &[b.path()]);
}

#[test]
fn offline_writes_reach_the_other_workstation_and_the_status_says_so() {
    let pg = Postgres::start();
    let (url, a) = loaded_clinic(&pg, "offline", 50, 100);
    let b = tempfile::tempdir().unwrap();
    sync_once(b.path(), &url);
    let (tx, rx) = mpsc::channel::<SyncStatus>();
    let mut config = SyncConfig::new(url.clone());
    config.poll_interval = Duration::from_millis(300);
    let engine = sync::spawn(replica_path(a.path()), config, move |s| {
        let _ = tx.send(s);
    });
    let statuses = std::cell::RefCell::new(Vec::new());
    let wait_status = |what: &str, ok: &dyn Fn(&SyncStatus) -> bool| {
        wait_for(what, PATIENT, || {
            statuses.borrow_mut().extend(rx.try_iter());
            statuses.borrow().last().is_some_and(ok)
        })
    };
    wait_status("A online and caught up", &|s| s.online && s.pending == 0 && s.last_sync.is_some());
    // One sync per profile: a second one is refused, saying why.
    let second = cli(Some(a.path()), &["sync", "--database-url", &url, "--once"]);
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already syncing"));
    pg.stop();
    wait_status("A offline", &|s| !s.online && s.error.is_some());
    let mut ra = open(a.path());
    let mut made = Vec::new();
    for i in 0..30 {
        made.push(new_person(&mut ra, &format!("Офлайн{i}"), &format!("+7903444{i:04}")));
    }
    wait_status("A counting its pending changes offline", &|s| !s.online && s.pending >= 60);
    pg.start_again();
    wait_status("A back online with nothing pending", &|s| s.online && s.pending == 0);
    engine.stop();
    sync_once(b.path(), &url);
    for id in &made {
        assert_eq!(count(b.path(), &format!("SELECT count(*) FROM people WHERE id = '{id}'")), 1);
    }
    sync_once(a.path(), &url);
    assert_converged(&url, &[a.path(), b.path()]);
}

#[test]
fn a_workstation_behind_the_pruned_log_takes_a_fresh_snapshot() {
    let pg = Postgres::start();
    let (url, a) = loaded_clinic(&pg, "resync", 40, 80);
    let b = tempfile::tempdir().unwrap();
    sync_once(a.path(), &url);
    sync_once(b.path(), &url);
    let person = first_ids(a.path(), "SELECT id FROM people ORDER BY id LIMIT 1").remove(0);
    open(a.path()).write(|w| w.update_changed("people", &person, &[("note", text("while B was away"))])).unwrap();
    sync_once(a.path(), &url);
    let out = cli(None, &["server", "prune", "--database-url", &url, "--keep-hours", "0"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("forgot"), "{}", String::from_utf8_lossy(&out.stdout));
    let second = sync_once(b.path(), &url);
    assert!(second.contains("snapshot"), "{second}");
    assert_eq!(
        text_of(b.path(), &format!("SELECT note FROM people WHERE id = '{person}'")).unwrap(),
        "while B was away"
    );
    // A's cursor is behind the horizon too; after both, a normal round.
    sync_once(a.path(), &url);
    let third = sync_once(b.path(), &url);
    assert!(!third.contains("snapshot"), "{third}");
    assert_converged(&url, &[a.path(), b.path()]);
}

#[test]
fn server_init_is_versioned_and_refuses_what_is_not_ours() {
    let pg = Postgres::start();
    let url = pg.clinic("versions");
    let again = cli(None, &["server", "init", "--database-url", &url]);
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("is current"));
    let sql = Sql::connect(&url);
    assert_eq!(
        sql.text("SELECT value FROM clinicdesk_meta WHERE key = 'schema_version'").unwrap(),
        clinicdesk::sync::server::SERVER_SCHEMA_VERSION.to_string()
    );
    // The server syncs the same tables, in the same order, as this build.
    let listed = sql.text("SELECT string_agg(name, ',' ORDER BY position) FROM sync_tables").unwrap();
    assert_eq!(listed, clinicdesk::sync::tables::SYNCED_TABLES.join(","));
    let contended =
        sql.text("SELECT string_agg(table_name || '.' || key_column, ',' ORDER BY table_name, key_column) FROM sync_contended").unwrap();
    let mut ours: Vec<String> = clinicdesk::sync::tables::CONTENDED.iter().map(|(t, c)| format!("{t}.{c}")).collect();
    ours.sort();
    assert_eq!(contended, ours.join(","));
    // Every synced table has its triggers.
    assert_eq!(
        sql.i64("SELECT count(*) FROM pg_trigger WHERE tgname = 'clinicdesk_log'"),
        clinicdesk::sync::tables::SYNCED_TABLES.len() as i64
    );

    sql.execute("UPDATE clinicdesk_meta SET value = '99' WHERE key = 'schema_version'");
    let newer = cli(None, &["server", "init", "--database-url", &url]);
    assert!(!newer.status.success());
    let err = String::from_utf8_lossy(&newer.stderr);
    assert!(err.contains("newer ClinicDesk") && err.contains("99"), "{err}");
    let p = tempfile::tempdir().unwrap();
    let sync = cli(Some(p.path()), &["sync", "--database-url", &url, "--once"]);
    assert!(!sync.status.success());
    assert!(String::from_utf8_lossy(&sync.stderr).contains("newer ClinicDesk"));
    assert_eq!(sql.text("SELECT value FROM clinicdesk_meta WHERE key = 'schema_version'").unwrap(), "99");

    // A database of another program with a table of our name.
    execute(&pg.url("postgres"), "CREATE DATABASE other");
    execute(&pg.url("other"), "CREATE TABLE people (name text)");
    let foreign = cli(None, &["server", "init", "--database-url", &pg.url("other")]);
    assert!(!foreign.status.success());
    assert!(String::from_utf8_lossy(&foreign.stderr).contains("did not create (people)"));
    assert_eq!(
        Sql::connect(&pg.url("other"))
            .i64("SELECT count(*) FROM information_schema.tables WHERE table_name = 'clinicdesk_meta'"),
        0
    );

    // An empty database that was never initialised: sync says what to do.
    execute(&pg.url("postgres"), "CREATE DATABASE bare");
    let bare = cli(Some(p.path()), &["sync", "--database-url", &pg.url("bare"), "--once"]);
    assert!(!bare.status.success());
    assert!(String::from_utf8_lossy(&bare.stderr).contains("server init"));
}

#[test]
fn import_reports_bad_rows_and_repeats_without_duplicates() {
    let pg = Postgres::start();
    let url = pg.clinic("import");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let csv = a.path().join("patients.csv");
    std::fs::write(
        &csv,
        "external_id;last_name;first_name;middle_name;birth_date;sex;phones;email;note\n\
         MIS-1;Иванова;Мария;Петровна;03.02.1980;ж;8 916 123-45-67;maria@example.com;\n\
         MIS-2;Петров;;;1975-13-01;m;;;bad month\n\
         MIS-3;Сидоров;Иван;;;m;+7 903 000 11 22, 8 (495) 123-45-67;;\n\
         ;Nobody;Without id;;;;;;\n\
         MIS-4;Коваль;Оксана;;;f;12-34;;\n",
    )
    .unwrap();
    std::fs::write(a.path().join("settings.toml"), "country = \"RU\"\n").unwrap();
    let run = || cli(Some(a.path()), &["import", "patients", csv.to_str().unwrap()]);
    let first = run();
    assert_eq!(first.status.code(), Some(2), "some rows refused");
    let err = String::from_utf8_lossy(&first.stderr);
    assert!(err.contains("patients.csv:3:") && err.contains("1975-13-01"), "{err}");
    assert!(err.contains("patients.csv:5:") && err.contains("external_id"), "{err}");
    assert!(err.contains("patients.csv:6:") && err.contains("12-34"), "{err}");
    assert!(String::from_utf8_lossy(&first.stdout).contains("2 new"), "{}", String::from_utf8_lossy(&first.stdout));
    sync_once(a.path(), &url);
    let second = run();
    assert!(String::from_utf8_lossy(&second.stdout).contains("0 new, 0 updated, 2 unchanged"));
    sync_once(a.path(), &url);
    sync_once(b.path(), &url);
    assert_converged(&url, &[a.path(), b.path()]);
    let sql = Sql::connect(&url);
    assert_eq!(sql.i64("SELECT count(*) FROM people WHERE external_id LIKE 'MIS-%'"), 2);
    assert_eq!(sql.i64("SELECT count(*) FROM person_phones"), 3);
    let hits = clinicdesk::store::search::search_people(open(b.path()).conn(), "4951234567", 5).unwrap();
    assert_eq!(hits.len(), 1);
}

#[test]
fn bad_urls_and_unreachable_servers_get_clear_messages_without_the_password() {
    let p = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("postgres://anna:Sup3rSecret@127.0.0.1:{port}/clinic");
    let down = cli(Some(p.path()), &["sync", "--database-url", &url, "--once"]);
    assert!(!down.status.success());
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(err.contains("cannot reach") && err.contains("anna@127.0.0.1"), "{err}");
    assert!(!err.contains("Sup3rSecret"), "{err}");
    for bad in
        ["postgres://anna:Sup3rSecret@host:port/db", "postgres://anna:Sup3rSecret@h/d?sslmode=sometimes", "nonsense"]
    {
        let out = cli(Some(p.path()), &["sync", "--database-url", bad, "--once"]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("database URL is not valid"), "{bad}: {err}");
        assert!(!err.contains("Sup3rSecret"), "{err}");
    }
    // clap never shows the environment's URL either.
    let help = Command::new(binary()).args(["sync", "--help"]).env("CLINICDESK_DATABASE_URL", &url).output().unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains("Sup3rSecret"));
}

#[test]
fn tls_when_the_url_asks_for_it() {
    harness::require("openssl", "openssl");
    let certs = tempfile::tempdir().unwrap();
    let d = certs.path();
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=ClinicDesk test CA"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(d.join("server.key"))
        .arg("-out")
        .arg(d.join("server.crt"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success(), "openssl req failed");
    let pg = Postgres::init(&["ssl=on", "ssl_cert_file=server.crt", "ssl_key_file=server.key"]);
    // The key must belong to the server's user and be private.
    for f in ["server.crt", "server.key"] {
        std::fs::copy(d.join(f), pg.dir().join("data").join(f)).unwrap();
    }
    let _ = Command::new("chown")
        .arg("postgres:")
        .arg(pg.dir().join("data/server.key"))
        .arg(pg.dir().join("data/server.crt"))
        .status();
    let _ = Command::new("chmod").arg("600").arg(pg.dir().join("data/server.key")).status();
    // Over TCP only TLS is let in: whatever succeeds below used it.
    std::fs::write(
        pg.dir().join("data/pg_hba.conf"),
        "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 127.0.0.1/32 reject\n",
    )
    .unwrap();
    pg.start_again();
    let created = pg
        .command("createdb")
        .arg("-h")
        .arg(pg.dir())
        .args(["-p", &pg.port.to_string(), "-U", "postgres", "tls"])
        .output()
        .unwrap();
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let ca = d.join("server.crt");
    let verified = format!("{}?sslmode=verify-full&sslrootcert={}", pg.url("tls"), ca.display());
    let init = cli(None, &["server", "init", "--database-url", &verified]);
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let p = tempfile::tempdir().unwrap();
    let out = sync_once(p.path(), &verified);
    assert!(out.contains("snapshot"), "{out}");
    // Without TLS the server refuses.
    let plain = cli(Some(p.path()), &["sync", "--database-url", &pg.url("tls"), "--once"]);
    assert!(!plain.status.success());
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("no encryption"),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    // Without the CA the self-signed certificate is not trusted.
    let untrusted =
        cli(Some(p.path()), &["sync", "--database-url", &format!("{}?sslmode=require", pg.url("tls")), "--once"]);
    assert!(!untrusted.status.success());
    let err = String::from_utf8_lossy(&untrusted.stderr);
    assert!(err.contains("TLS") || err.contains("certificate"), "{err}");
}

#[test]
fn the_database_password_comes_from_the_keyring_and_is_never_shown() {
    use std::io::Write;
    let pg = Postgres::init(&["password_encryption=scram-sha-256"]);
    std::fs::write(pg.dir().join("data/pg_hba.conf"), "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
        .unwrap();
    pg.start_again();
    let psql = pg
        .command("psql")
        .arg("-h")
        .arg(pg.dir())
        .args(["-p", &pg.port.to_string(), "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1"])
        .args(["-c", "ALTER USER postgres PASSWORD 'Db-s3cret-7'", "-c", "CREATE DATABASE keyed"])
        .output()
        .unwrap();
    assert!(psql.status.success(), "{}", String::from_utf8_lossy(&psql.stderr));
    let with_password = format!("postgres://postgres:Db-s3cret-7@127.0.0.1:{}/keyed", pg.port);
    let init = cli(None, &["server", "init", "--database-url", &with_password]);
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));

    let bus = harness::DbusSession::start();
    let home = tempfile::tempdir().unwrap();
    bus.start_keyring(home.path());

    let p = tempfile::tempdir().unwrap();
    let url = pg.url("keyed");
    let sync = || {
        Command::new(binary())
            .arg("--profile")
            .arg(p.path())
            .args(["sync", "--database-url", &url, "--once"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .env("CLINICDESK_LOG", "debug")
            .output()
            .unwrap()
    };
    let before = sync();
    assert!(!before.status.success());
    let err = String::from_utf8_lossy(&before.stderr);
    assert!(err.contains("asks for a password") && err.contains("password set --kind database"), "{err}");
    assert!(err.contains("--account postgres@127.0.0.1"), "{err}");

    let mut set = Command::new(binary())
        .args(["password", "set", "--kind", "database", "--account", "postgres@127.0.0.1"])
        .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    set.stdin.take().unwrap().write_all(b"Db-s3cret-7\n").unwrap();
    assert!(set.wait_with_output().unwrap().status.success());

    let after = sync();
    let (out, err) = (String::from_utf8_lossy(&after.stdout), String::from_utf8_lossy(&after.stderr));
    assert!(after.status.success(), "{out}\n{err}");
    assert!(out.contains("snapshot"), "{out}");
    for text in [&out, &err] {
        assert!(!text.contains("Db-s3cret-7"), "the password was shown: {text}");
    }
}
