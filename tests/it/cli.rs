//! Bad input on the command line: each case gets a message that says what is
//! wrong and a non-zero exit, and nothing on disk changes.

use std::path::Path;
use std::process::{Command, Output};

use super::harness::{binary, demo_profile, file_digest};

fn run(profile: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .arg("--profile")
        .arg(profile)
        .args(args)
        .env("CLINICDESK_LOG", "warn")
        .output()
        .expect("run clinicdesk")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_reports_a_healthy_replica() {
    let profile = demo_profile(50, 200);
    let out = run(profile.path(), &["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("people: "), "{text}");
    let people_line = text.lines().find(|l| l.starts_with("people: ")).unwrap();
    let n: usize = people_line["people: ".len()..].trim().parse().unwrap();
    assert!(n >= 50, "{text}");
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let replica = dir.path().join("replica.sqlite");
    std::fs::write(&replica, b"this is a spreadsheet, not a database\n".repeat(100)).unwrap();
    let before = file_digest(&replica);
    let out = run(dir.path(), &["check"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("is not a ClinicDesk database"), "{}", stderr(&out));
    assert_eq!(file_digest(&replica), before);
}

#[test]
fn a_damaged_replica_is_refused_untouched() {
    let profile = demo_profile(20, 50);
    let replica = profile.path().join("replica.sqlite");
    // Keep the SQLite header, overwrite the schema page behind it.
    let mut bytes = std::fs::read(&replica).unwrap();
    for b in bytes.iter_mut().take(4096).skip(100) {
        *b = 0xA5;
    }
    std::fs::write(&replica, &bytes).unwrap();
    let out = run(profile.path(), &["check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("is damaged") || err.contains("not a ClinicDesk database"), "{err}");
    assert_eq!(file_digest(&replica), bytes);
}

#[test]
fn a_replica_from_the_future_is_refused_untouched() {
    let profile = demo_profile(20, 50);
    let replica = profile.path().join("replica.sqlite");
    {
        let conn = rusqlite::Connection::open(&replica).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    }
    let before = file_digest(&replica);
    let out = run(profile.path(), &["check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("newer ClinicDesk (schema version 99"), "{err}");
    assert_eq!(file_digest(&replica), before);
}

#[test]
fn another_programs_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let replica = dir.path().join("replica.sqlite");
    {
        let conn = rusqlite::Connection::open(&replica).unwrap();
        conn.execute_batch(
            "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices VALUES (1, 9.5);",
        )
        .unwrap();
    }
    let before = file_digest(&replica);
    let out = run(dir.path(), &["check"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("of another program"), "{}", stderr(&out));
    assert_eq!(file_digest(&replica), before);
}

#[test]
fn a_typo_in_settings_is_named_and_the_file_kept() {
    let profile = demo_profile(20, 50);
    let settings = profile.path().join("settings.toml");
    std::fs::write(&settings, "telephony_enabled = true\ncall_centre_mode = true\n").unwrap();
    let out = run(profile.path(), &["check"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unknown field `call_centre_mode`"), "{err}");
    assert!(err.contains("line 2"), "{err}");
    assert_eq!(std::fs::read_to_string(&settings).unwrap(), "telephony_enabled = true\ncall_centre_mode = true\n");
}

/// Root may write anywhere, so the read-only profile is tried as `nobody`.
#[test]
fn a_read_only_profile_is_named() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile");
    std::fs::create_dir(&profile).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&profile, std::fs::Permissions::from_mode(0o555)).unwrap();
    let is_root = unsafe_free_uid() == 0;
    let mut command = if is_root {
        let setpriv = super::harness::require("setpriv", "util-linux");
        let mut c = Command::new(setpriv);
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(binary());
        c
    } else {
        Command::new(binary())
    };
    let out = command.arg("--profile").arg(&profile).arg("check").env("CLINICDESK_LOG", "warn").output().unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("cannot use") && err.contains("Choose a writable directory"), "{err}");
    assert_eq!(std::fs::read_dir(&profile).unwrap().count(), 0, "nothing was written");
}

fn unsafe_free_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of a file this process just created is its user id.
    let f = tempfile::NamedTempFile::new().unwrap();
    f.as_file().metadata().unwrap().uid()
}

#[test]
fn demo_data_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("clinic.sqlite");
    std::fs::write(&out_file, b"precious").unwrap();
    let out = Command::new(binary())
        .args(["demo-data", "--patients", "10", "--calls", "10", "--out"])
        .arg(&out_file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&out_file).unwrap(), b"precious");
}

#[test]
fn demo_data_is_deterministic_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let dump = |name: &str, seed: &str| {
        let path = dir.path().join(name);
        let out = Command::new(binary())
            .args(["demo-data", "--patients", "300", "--calls", "1000", "--seed", seed])
            .args(["--now", "2026-11-20T10:00:00+03:00", "--out"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let conn = rusqlite::Connection::open(&path).unwrap();
        let people: String = conn
            .query_row(
                "SELECT group_concat(id || last_name || first_name, ',') FROM (SELECT * FROM people ORDER BY id)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let calls: String = conn
            .query_row("SELECT group_concat(id || peer_e164 || started_at || result, ',') FROM (SELECT * FROM calls ORDER BY id)", [], |r| {
                r.get(0)
            })
            .unwrap();
        (people, calls)
    };
    let a = dump("a.sqlite", "5");
    let b = dump("b.sqlite", "5");
    let c = dump("c.sqlite", "6");
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn report_prints_json_over_the_replica_and_refuses_bad_input_untouched() {
    let profile = demo_profile(60, 600);
    let replica = profile.path().join("replica.sqlite");
    let to = chrono::Utc::now().date_naive();
    let from = to - chrono::Duration::days(364);
    let (from_text, to_text) = (from.to_string(), to.to_string());
    let before = file_digest(&replica);
    let out = run(
        profile.path(),
        &[
            "report", "calls", "--from", &from_text, "--to", &to_text, "--by", "month", "--format", "json", "--tz",
            "UTC",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(json["kind"], "calls");
    assert_eq!(json["from"], from_text.as_str());
    assert_eq!(json["to"], to_text.as_str());
    assert_eq!(json["tz"], "UTC");
    assert_eq!(json["partial_view"], false, "a generated replica, no user: nothing held back");
    let rows = json["rows"].as_array().expect("rows");
    assert!(rows.len() >= 12, "one row a month: {rows:?}");
    for row in rows {
        assert!(row["key"].is_string(), "{row}");
        for metric in
            ["inbound", "outbound", "answered", "missed", "busy", "missed_rate", "service_level", "avg_answer_s"]
        {
            assert!(row.get(metric).is_some(), "{metric} in {row}");
        }
    }
    let total = &json["total"];
    assert!(total["previous"]["inbound"].is_i64() && total["delta"]["inbound"].is_i64(), "{total}");
    // The total is what one plain query counts; the months add up to it.
    let conn = rusqlite::Connection::open(&replica).unwrap();
    let start = from.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis();
    let end = (to + chrono::Duration::days(1)).and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis();
    let inbound: i64 = conn
        .query_row(
            "SELECT count(*) FROM calls WHERE direction = 'in' AND deleted_at IS NULL AND started_at >= ? AND started_at < ?",
            [start, end],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    assert!(inbound > 0);
    assert_eq!(total["inbound"], inbound);
    assert_eq!(rows.iter().map(|r| r["inbound"].as_i64().unwrap()).sum::<i64>(), inbound);

    // Bad input: a message saying what is wrong and what to do, no output.
    let cases: [(&[&str], &str); 5] = [
        (
            &["report", "calls", "--from", "2026-02-30", "--to", "2026-03-01"],
            "--from \"2026-02-30\" is not a date: write it as YYYY-MM-DD",
        ),
        (
            &["report", "calls", "--from", "2026-03-10", "--to", "2026-03-01"],
            "--to 2026-03-01 is before --from 2026-03-10",
        ),
        (
            &["report", "sales", "--from", "2026-03-01", "--to", "2026-03-02"],
            "unknown report \"sales\": choose one of inquiries",
        ),
        (
            &["report", "calls", "--from", "2026-03-01", "--to", "2026-03-02", "--by", "reason"],
            "cannot be broken down by reason",
        ),
        (
            &["report", "calls", "--from", "2026-03-01", "--to", "2026-03-02", "--operator", "nobody"],
            "no user \"nobody\"",
        ),
    ];
    for (args, message) in cases {
        let out = run(profile.path(), args);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out =
        run(profile.path(), &["report", "calls", "--from", "2026-03-01", "--to", "2026-03-02", "--tz", "Mars/Base"]);
    assert!(!out.status.success() && stderr(&out).contains("unknown time zone \"Mars/Base\""), "{}", stderr(&out));

    // The demo operator may not see everyone's calls: a partial view, said
    // in the table too.
    std::fs::write(profile.path().join("settings.toml"), "user_login = \"operator\"\n").unwrap();
    let out = run(profile.path(), &["report", "calls", "--from", &from_text, "--to", &to_text, "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["partial_view"], true);
    let out = run(profile.path(), &["report", "operators", "--from", &from_text, "--to", &to_text]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("partial view") && table.contains("share") && table.contains("total"), "{table}");
    assert_eq!(file_digest(&replica), before, "a report writes nothing");
}
