//! More call situations: a second call, early media, busy, TCP, attended transfer, TLS, the speaker.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::require;

use super::peers::*;
use super::*;

// More call situations

/// A second call during a call rings (call waiting); with --no-call-waiting it gets 486.
#[test]
fn a_second_call_waits_or_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    for waiting in [true, false] {
        // The operator answers by command: taking the waiting call holds the first.
        let mut args = vec!["--listen", "127.0.0.1:0"];
        if !waiting {
            args.push("--no-call-waiting");
        }
        let mut phone = Phone::start(dir.path(), &args);
        let target = phone.addr.to_string();
        let first_port = free_port();
        // With call waiting the first call is put on hold when the second is answered.
        let file = scenario(if waiting { "uac_wait_hold_bye.xml" } else { "uac_wait_bye.xml" });
        let first = sipp(dir.path(), first_port, &["-sf", &file, &target, "-m", "1", "-key", "caller", "203"]);
        let one = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
        phone.send(&format!("answer {one}"));
        phone.call_event("answered", &one);
        let second_port = free_port();
        if waiting {
            let plain = scenario("uac_wait_bye.xml");
            let second = sipp(dir.path(), second_port, &["-sf", &plain, &target, "-m", "1", "-key", "caller", "204"]);
            let two = phone.event("incoming");
            assert_eq!(two["from"], "204");
            let two = two["call_id"].as_str().unwrap().to_owned();
            phone.send(&format!("answer {two}"));
            phone.call_event("answered", &two);
            // Answering the waiting call put the first on hold.
            phone.call_event("held", &one);
            phone.send(&format!("hangup {two}"));
            phone.call_event("ended", &two);
            assert_sipp_passed(second, dir.path(), second_port);
        } else {
            let busy = scenario("uac_busy.xml");
            let second = sipp(dir.path(), second_port, &["-sf", &busy, &target, "-m", "1", "-key", "caller", "204"]);
            assert_sipp_passed(second, dir.path(), second_port);
            assert_eq!(phone.all().iter().filter(|e| e["event"] == "incoming").count(), 1, "the second never rang");
        }
        phone.send(&format!("hangup {one}"));
        assert_eq!(phone.call_event("ended", &one)["reason"], "hung_up");
        assert_sipp_passed(first, dir.path(), first_port);
        assert!(phone.quit().success());
    }
}

/// Early media: a 183 with SDP starts the sound before the answer; the call then goes on.
#[test]
fn early_media_before_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    let (port, run) = sipp_waiting(dir.path(), &["-sf", &scenario("uas_early_media.xml"), "-m", "1"]);
    let id = phone.dial(&format!("sip:announcement@127.0.0.1:{port}"));
    phone.call_event("ringing", &id);
    phone.call_event("answered", &id);
    phone.send("hangup");
    let ended = phone.call_event("ended", &id);
    assert_eq!(ended["media"]["codec"], "PCMU/8000", "{ended}");
    // The media ran from the 183: at least the half second before the 200.
    assert!(ended["media"]["duration_ms"].as_u64().unwrap() >= 400, "{ended}");
    assert_sipp_passed(run, dir.path(), port);
    assert!(phone.quit().success());
}

/// While the operator is busy, calls are declined with 486 and never ring.
#[test]
fn a_busy_operator_declines_calls() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    phone.send("busy");
    // Commands reach the user agent in order: once it has refused this dial, it is busy.
    phone.send("dial not!a!number");
    assert_eq!(phone.event("ended")["reason"], "failed");
    let port = free_port();
    let target = phone.addr.to_string();
    let busy = scenario("uac_busy.xml");
    let run = sipp(dir.path(), port, &["-sf", &busy, &target, "-m", "1", "-key", "caller", "205"]);
    assert_sipp_passed(run, dir.path(), port);
    assert!(!phone.all().iter().any(|e| e["event"] == "incoming"));
    assert!(phone.quit().success());
}

/// The same calls over TCP: sipp calls the phone, the phone calls sipp.
#[test]
fn calls_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--transport", "tcp", "--listen", "127.0.0.1:0", "--auto-answer"]);
    assert_eq!(phone.all()[0]["transport"], "tcp");
    let target = phone.addr.to_string();
    let port = free_port();
    let run = sipp(dir.path(), port, &["-sn", "uac", "-t", "t1", &target, "-m", "1", "-d", "300"]);
    let id = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    assert_sipp_passed(run, dir.path(), port);

    let (port, run) = sipp_waiting(dir.path(), &["-sn", "uas", "-t", "t1", "-m", "1"]);
    let id = phone.dial(&format!("sip:service@127.0.0.1:{port};transport=tcp"));
    phone.call_event("answered", &id);
    phone.send("hangup");
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    assert_sipp_passed(run, dir.path(), port);
    assert!(sipp_messages(dir.path(), port).contains("Via: SIP/2.0/TCP"));
    assert!(phone.quit().success());
}

/// Attended transfer: the caller is held, the operator calls the target, then hands the caller
/// over (REFER with Replaces naming the call to the target); both calls of ours end.
#[test]
fn attended_transfer_with_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    let caller_port = free_port();
    let caller = sipp(dir.path(), caller_port, &["-sf", &scenario("uas_refer_replaces.xml"), "-m", "1"]);
    let (target_port, target) = sipp_waiting(dir.path(), &["-sn", "uas", "-m", "1"]);

    let a = phone.dial(&format!("sip:caller@127.0.0.1:{caller_port}"));
    phone.call_event("answered", &a);
    phone.send("hold");
    phone.call_event("held", &a);
    let b = phone.dial(&format!("sip:target@127.0.0.1:{target_port}"));
    phone.call_event("answered", &b);
    phone.send(&format!("transfer {b}"));
    assert_eq!(phone.call_event("transferred", &a)["target"], "target");
    assert_eq!(phone.call_event("ended", &a)["reason"], "transferred");
    assert_eq!(phone.call_event("ended", &b)["reason"], "transferred");
    assert_sipp_passed(caller, dir.path(), caller_port);
    assert_sipp_passed(target, dir.path(), target_port);
    let trace = sipp_messages(dir.path(), caller_port);
    assert!(trace.contains(&format!("Replaces={}", b.replace('@', "%40"))), "{trace}");
    assert!(phone.quit().success());
}

/// A wrong password is reported as such (and the phone does not keep trying it).
#[test]
fn a_wrong_password_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    let server = kamailio.server();
    let mut phone = Phone::start_with(
        dir.path(),
        &["--server", &server, "--user", "100", "--listen", "127.0.0.1:0"],
        &[("CLINICDESK_SIP_PASSWORD", "not-the-password")],
    );
    let failed = phone.event("registration_failed");
    assert_eq!(failed["code"], 403, "{failed}");
    assert!(failed["reason"].as_str().unwrap().contains("wrong user name or password"), "{failed}");
    assert!(failed["retry_in_ms"].is_null(), "a wrong password is not tried again by itself: {failed}");
    assert!(phone.quit().success());
    assert!(!phone.all().iter().any(|e| e["event"] == "registered"));
}

/// The other side transfers the phone: it accepts the REFER, calls the target, reports the
/// progress by NOTIFY, and its old call ends as a transfer when the transferor hangs up.
#[test]
fn the_phone_follows_a_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0", "--auto-answer"]);
    let (target_port, target) = sipp_waiting(dir.path(), &["-sn", "uas", "-m", "1"]);
    let refer_to = format!("sip:nurse@127.0.0.1:{target_port}");
    let port = free_port();
    let addr = phone.addr.to_string();
    let file = scenario("uac_refers.xml");
    let run =
        sipp(dir.path(), port, &["-sf", &file, &addr, "-m", "1", "-key", "caller", "206", "-key", "target", &refer_to]);
    let old = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &old);
    let new = phone.event("dialing");
    assert_eq!(new["to"], "nurse");
    let new = new["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &new);
    assert_eq!(phone.call_event("ended", &old)["reason"], "transferred");
    assert_sipp_passed(run, dir.path(), port);
    phone.send(&format!("hangup {new}"));
    assert_eq!(phone.call_event("ended", &new)["reason"], "hung_up");
    assert_sipp_passed(target, dir.path(), target_port);
    assert!(phone.quit().success());
}

/// A test certificate authority and a certificate for 127.0.0.1 signed by it
/// (openssl): (CA file, server certificate, server key).
fn test_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = require("openssl", "openssl");
    let run = |args: &[&str]| {
        let out = Command::new(&openssl).current_dir(dir).args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Test Clinic CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

/// Registration over TLS with kamailio: the clinic's CA file makes its
/// certificate trusted; without it the failure names the certificate problem.
#[test]
fn registration_over_tls_with_the_clinic_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_pki(dir.path());
    let tls_port = free_port();
    let kamailio = Kamailio::start_with(dir.path(), Some((tls_port, &cert, &key)));
    let server = format!("127.0.0.1:{tls_port}");
    let args = ["--server", server.as_str(), "--user", "100", "--transport", "tls", "--listen", "127.0.0.1:0"];
    let password = [("CLINICDESK_SIP_PASSWORD", "secret100")];

    let mut args_ca = args.to_vec();
    let ca_text = ca.display().to_string();
    args_ca.extend(["--ca-file", ca_text.as_str()]);
    let mut phone = Phone::start_with(dir.path(), &args_ca, &password);
    let registered =
        phone.wait("registered over TLS", |e| e["event"] == "registered" || e["event"] == "registration_failed");
    assert_eq!(
        registered["event"],
        "registered",
        "{registered}\n{}\nkamailio:\n{}",
        phone.stderr_tail(),
        kamailio.log()
    );
    assert!(phone.quit().success());

    let mut phone = Phone::start_with(dir.path(), &args, &password);
    let failed = phone.wait("refused", |e| e["event"] == "registration_failed");
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("unknown authority") || reason.contains("UnknownIssuer"), "{failed}");
    assert!(phone.quit().success());
}

/// An incoming call rings the operator's speaker (the ringtone through cpal
/// into a PulseAudio null sink) while it rings, and the speaker is quiet once
/// the caller gives up.
#[test]
fn an_incoming_call_rings_the_speaker() {
    let dir = tempfile::tempdir().unwrap();
    let pulse = crate::media::Pulse::start(dir.path());
    let parec = require("parec", "pulseaudio-utils");
    let speaker = dir.path().join("speaker.raw");
    let recorder = crate::harness::Peer::spawn(
        "parec",
        pulse
            .command(&parec)
            .args(["-d", "spk.monitor", "--raw", "--format=s16le", "--rate=48000", "--channels=1"])
            .arg("--latency-msec=20")
            .stdout(Stdio::from(std::fs::File::create(&speaker).unwrap()))
            .stderr(Stdio::null()),
    );
    let env = pulse.env_pairs();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut phone = Phone::start_with(dir.path(), &["--listen", "127.0.0.1:0", "--devices"], &env);
    let port = free_port();
    let target = phone.addr.to_string();
    let file = scenario("uac_ring_then_cancel.xml");
    let run = sipp(dir.path(), port, &["-sf", &file, &target, "-m", "1", "-d", "4000", "-key", "caller", "201"]);
    let incoming = phone.event("incoming");
    let id = incoming["call_id"].as_str().unwrap().to_owned();
    assert_eq!(phone.call_event("ended", &id)["reason"], "not_answered");
    assert_sipp_passed(run, dir.path(), port);
    // Longer than a whole ring cadence (3 s), so a ringtone still going would show.
    std::thread::sleep(Duration::from_millis(4500));
    drop(recorder);
    assert!(phone.quit().success());

    let raw = std::fs::read(&speaker).unwrap();
    let samples: Vec<f32> = raw.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect();
    let win = 480;
    let loud: Vec<bool> = samples.chunks(win).map(|w| crate::media::rms(w) > 0.05).collect();
    let first = loud.iter().position(|l| *l).unwrap_or_else(|| {
        panic!("the speaker stayed silent ({} s recorded):\n{}", samples.len() / 48000, phone.stderr_tail())
    });
    // Inside the first ring burst (400 ms): 440 + 480 Hz beat around 460 Hz.
    let burst = &samples[(first + 5) * win..((first + 30) * win).min(samples.len())];
    let f = crate::media::frequency(burst, 48000);
    assert!((430.0..=490.0).contains(&f), "the ringtone is {f:.0} Hz, not the 440/480 Hz pair");
    let last_loud = loud.iter().rposition(|l| *l).unwrap();
    let quiet_tail = loud.len() - 1 - last_loud;
    assert!(
        quiet_tail * win >= 48000 * 32 / 10,
        "the speaker rang on after the caller gave up (only the last {} ms were quiet)",
        quiet_tail * 10
    );
}

// ---------------------------------------------------------------------------------------------
