//! Any login may NOTIFY the channel the workstations listen on: a flood of
//! notifications must not keep a workstation syncing without pause.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::super::harness::{Peer, wait_for};
use super::*;

/// How many times the server ran `clinicdesk_changes` (one per download
/// batch: every sync round asks at least once), from the function statistics.
fn rounds(sql: &Sql) -> i64 {
    // The statistics reach the view when a backend flushes them (at most
    // every second or so), hence the waits around what is measured.
    sql.i64("SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_user_functions WHERE funcname = 'clinicdesk_changes'")
}

#[test]
fn a_flood_of_notifications_does_not_make_a_workstation_sync_without_pause() {
    let pg = Postgres::init(&["track_functions=all"]);
    pg.start_again();
    let (url, a) = loaded_clinic(&pg, "flood", 30, 60);
    sync_once(a.path(), &url);
    let _engine = Peer::spawn(
        "clinicdesk sync",
        Command::new(binary())
            .arg("--profile")
            .arg(a.path())
            .args(["sync", "--database-url", &url])
            .env("CLINICDESK_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let sql = Sql::connect(&url);
    wait_for("the engine's first rounds", Duration::from_secs(30), || rounds(&sql) > 2);

    // A second apart the counter has moved: the polls (one a second) go on.
    let before = rounds(&sql);
    let flood = Instant::now();
    let mut sent = 0;
    // One NOTIFY per transaction (within one they are merged), for 3 s.
    while flood.elapsed() < Duration::from_secs(3) && sent < 20_000 {
        sql.execute("NOTIFY clinicdesk_changes");
        sent += 1;
    }
    let flooded_for = flood.elapsed();
    // Let the last rounds end and their statistics arrive.
    std::thread::sleep(Duration::from_millis(2500));
    let during = rounds(&sql) - before;
    let seconds = flood.elapsed().as_secs_f64();
    eprintln!("{sent} notifications in {flooded_for:?}: {during} download calls in {seconds:.1} s");
    assert!(sent > 200, "the flood sent only {sent} notifications");
    // At most one round a notification gap (250 ms) and one poll a second,
    // over the flood and the wait after it, with room for rounds that ask twice.
    let bound = (seconds * (4.0 + 1.0) * 1.5).ceil() as i64;
    assert!(during <= bound, "{during} rounds in {seconds:.1} s under a flood of {sent} notifications (bound {bound})");
    assert!(during >= 2, "the engine stopped syncing under the flood: {during} rounds");
}
