//! `kill -9` of the real `clinicdesk sync` in the middle of an upload, of
//! an initial snapshot and of an incremental download; after a restart
//! nothing is lost and nothing doubled (counts, rejections, checksums).

use std::process::{Command, Stdio};

use clinicdesk::crm::{Country, PersonForm};
use clinicdesk::sync;

use super::super::harness::{Peer, wait_for};
use super::*;

fn start_sync(profile: &Path, url: &str) -> Peer {
    Peer::spawn(
        "clinicdesk sync",
        Command::new(binary())
            .arg("--profile")
            .arg(profile)
            .args(["sync", "--database-url", url, "--once"])
            .env("CLINICDESK_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

/// A read-only look at a replica another process is writing.
fn peek(profile: &Path, sql: &str) -> i64 {
    let path = replica_path(profile);
    if !path.exists() {
        return 0;
    }
    let conn = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap_or(0)
}

#[test]
fn killed_during_upload_loses_and_doubles_nothing() {
    let pg = Postgres::start();
    let (url, a) = loaded_clinic(&pg, "crash_upload", 50, 100);
    sync_once(a.path(), &url);
    let sql = Sql::connect(&url);
    let base = sql.i64("SELECT count(*) FROM people");
    const NEW: i64 = 3000;
    {
        let mut r = open(a.path());
        for i in 0..NEW {
            let form = PersonForm {
                last_name: format!("Новиков{i}"),
                first_name: "Пётр".into(),
                phones: vec![format!("+7926{i:07}")],
                ..Default::default()
            };
            r.save_person(&form.validate(Country::Ru).unwrap()).unwrap();
        }
    }
    let queued = peek(a.path(), "SELECT count(*) FROM outbox");
    assert_eq!(queued, 2 * NEW);
    let peer = start_sync(a.path(), &url);
    wait_for("the first uploaded transactions to commit", PATIENT, || sql.i64("SELECT count(*) FROM people") > base);
    drop(peer); // SIGKILL
    let uploaded = sql.i64("SELECT count(*) FROM people") - base;
    let pending = peek(a.path(), "SELECT count(*) FROM outbox");
    assert!(pending > 0, "killed after the upload was complete ({uploaded} on the server)");
    assert!(pending >= 2 * (NEW - uploaded), "the outbox lost entries the server does not have");

    sync_once(a.path(), &url);
    assert_eq!(sql.i64("SELECT count(*) FROM people") - base, NEW, "every person exactly once");
    assert_eq!(sql.i64("SELECT count(*) FROM people WHERE last_name ~ '^Новиков[0-9]+$'"), NEW);
    let r = open(a.path());
    assert!(sync::rejections(r.conn()).unwrap().is_empty(), "a replayed upload was applied twice");
    assert!(sync::conflicts(r.conn()).unwrap().is_empty());
    drop(r);
    let b = tempfile::tempdir().unwrap();
    sync_once(b.path(), &url);
    let sums = assert_converged(&url, &[a.path(), b.path()]);
    assert_eq!(sums["people"].rows as i64, base + NEW);
}

#[test]
fn killed_during_the_initial_snapshot_resumes_and_doubles_nothing() {
    let pg = Postgres::start();
    let (url, _a) = loaded_clinic(&pg, "crash_snapshot", 400, 30_000);
    let b = tempfile::tempdir().unwrap();
    let peer = start_sync(b.path(), &url);
    wait_for("the snapshot to reach the calls", PATIENT, || peek(b.path(), "SELECT count(*) FROM calls") > 0);
    drop(peer); // SIGKILL
    assert_eq!(
        peek(b.path(), "SELECT count(*) FROM sync_state WHERE key = 'snapshot.position'"),
        1,
        "killed after the snapshot was complete"
    );
    assert!(peek(b.path(), "SELECT count(*) FROM calls") < 30_000);
    let out = sync_once(b.path(), &url);
    assert!(out.contains("snapshot"), "{out}");
    let sums = assert_converged(&url, &[b.path()]);
    assert_eq!(sums["calls"].rows, 30_000);
    assert_eq!(sums["people"].rows, 400);
    assert_eq!(peek(b.path(), "SELECT count(*) FROM people_fts"), 400);
    // The indexes a snapshot drops while filling a table are all back.
    let fresh = tempfile::tempdir().unwrap();
    drop(open(fresh.path()));
    let schema = |p: &Path| -> Vec<String> {
        let r = open(p);
        let mut stmt = r.conn().prepare("SELECT name FROM sqlite_master WHERE type = 'index' ORDER BY name").unwrap();
        stmt.query_map([], |r| r.get(0)).unwrap().map(|x| x.unwrap()).collect()
    };
    assert_eq!(schema(b.path()), schema(fresh.path()));
    assert_eq!(peek(b.path(), "SELECT count(*) FROM sync_state WHERE key LIKE 'snapshot.%'"), 0);
}

#[test]
fn killed_during_an_incremental_download_resumes_and_doubles_nothing() {
    let pg = Postgres::start();
    let (url, _a) = loaded_clinic(&pg, "crash_download", 100, 30_000);
    let b = tempfile::tempdir().unwrap();
    sync_once(b.path(), &url);
    // An administrator's bulk change: 30,000 change-log entries.
    Sql::connect(&url).execute("UPDATE calls SET sip_call_id = 'crash-' || id");
    let changed = "SELECT count(*) FROM calls WHERE sip_call_id LIKE 'crash-%'";
    let peer = start_sync(b.path(), &url);
    wait_for("the first downloaded batch", PATIENT, || peek(b.path(), changed) > 0);
    drop(peer); // SIGKILL
    let got = peek(b.path(), changed);
    assert!(got < 30_000, "killed after the download was complete");
    sync_once(b.path(), &url);
    assert_eq!(peek(b.path(), changed), 30_000);
    assert_eq!(peek(b.path(), "SELECT count(*) FROM calls"), 30_000);
    assert_converged(&url, &[b.path()]);
}
