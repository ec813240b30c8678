//! Passwords go to the OS keyring: gnome-keyring on a private D-Bus session.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use super::harness::{DbusSession, binary};

fn password(bus: &str, verb: &str, typed: &str) -> Output {
    let mut child = Command::new(binary())
        .args(["password", verb, "--kind", "sip", "--account", "101@pbx.clinic.test"])
        .env("DBUS_SESSION_BUS_ADDRESS", bus)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{typed}\n").as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_sip_password_round_trips_through_gnome_keyring() {
    let bus = DbusSession::start();
    let home = tempfile::tempdir().unwrap();
    bus.start_keyring(home.path());

    let out = password(&bus.address, "set", "s3cret-101");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(password(&bus.address, "verify", "s3cret-101").status.success());
    let wrong = password(&bus.address, "verify", "guess");
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("different password"));
}

#[test]
fn without_a_keyring_the_message_says_what_to_do() {
    let bus = DbusSession::start();
    let out = password(&bus.address, "set", "s3cret");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no keyring is available"), "{err}");
    assert!(err.contains("gnome-keyring"), "{err}");
}
