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
