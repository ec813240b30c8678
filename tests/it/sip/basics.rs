//! RFC 4475's torture messages sent to a running phone, and the basic calls with sipp as the other phone.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::binary;

use super::*;

// 1. RFC 4475 torture messages sent to a running phone

fn corpus_dir() -> PathBuf {
    match std::env::var_os("CLINICDESK_RFC4475_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/rfc4475")),
    }
}

/// What `clinicdesk phone` answers each message with (None: nothing, as the RFC says
/// for responses and for what cannot be answered). Requests that start a call ring (180).
const RFC4475_ANSWERS: &[(&str, Option<u16>)] = &[
    // 3.1.1 valid messages
    ("wsinv.dat", Some(481)), // an INVITE inside a dialog we do not know
    ("intmeth.dat", Some(501)),
    ("esc01.dat", Some(180)),
    ("escnull.dat", Some(405)),
    ("esc02.dat", Some(501)),
    ("lwsdisp.dat", Some(200)),
    ("longreq.dat", Some(180)),
    ("dblreq.dat", Some(405)),
    ("semiuri.dat", Some(200)),
    ("transports.dat", Some(200)),
    ("mpart01.dat", Some(405)),
    ("unreason.dat", None),
    ("noreason.dat", None),
    // 3.1.2 invalid messages
    ("badinv01.dat", Some(400)),
    ("clerr.dat", Some(400)),
    ("ncl.dat", Some(400)),
    ("scalar02.dat", Some(400)),
    ("scalarlg.dat", None),
    ("quotbal.dat", Some(400)),
    ("ltgtruri.dat", Some(400)),
    ("lwsruri.dat", Some(400)),
    ("lwsstart.dat", Some(400)),
    ("trws.dat", Some(400)),
    ("escruri.dat", Some(400)),
    ("baddate.dat", Some(400)),
    ("regbadct.dat", Some(400)),
    ("badaspec.dat", Some(400)),
    ("baddn.dat", Some(400)),
    ("badvers.dat", Some(505)),
    ("mismatch01.dat", Some(400)),
    ("mismatch02.dat", Some(400)),
    ("bigcode.dat", None),
    // 3.2 and 3.3 application layer, 3.4 backward compatibility
    ("badbranch.dat", Some(200)),
    ("insuf.dat", Some(400)),
    ("unkscm.dat", Some(416)),
    ("novelsc.dat", Some(416)),
    ("unksm2.dat", Some(405)),
    ("bext01.dat", Some(420)),
    ("invut.dat", Some(415)),
    ("regaut01.dat", Some(405)),
    ("multi01.dat", Some(400)),
    ("mcl01.dat", Some(400)),
    ("bcast.dat", None),
    ("zeromf.dat", Some(200)),
    ("cparam01.dat", Some(405)),
    ("cparam02.dat", Some(405)),
    ("regescrt.dat", Some(405)),
    ("sdp01.dat", Some(406)),
    ("inv2543.dat", Some(180)),
];

/// Reads the value of the first header line named like `names` (compact forms too).
fn raw_header(data: &[u8], names: &[&str]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.lines().skip(1).take_while(|l| !l.is_empty()).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        names.iter().any(|n| name.trim().eq_ignore_ascii_case(n)).then(|| value.trim().to_owned())
    })
}

/// Collects every datagram that reaches any of `sockets` into `got` (status, raw text).
fn drain(sockets: &[UdpSocket], got: &mut Vec<(u16, String)>) {
    let mut buf = vec![0u8; 65_535];
    for s in sockets {
        while let Ok((n, _)) = s.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            // Read the status line only: an answer to a broken request copies its broken lines.
            let status = text.strip_prefix("SIP/2.0 ").and_then(|r| r.get(..3)).and_then(|c| c.parse().ok());
            if let Some(status) = status {
                got.push((status, text));
            }
        }
    }
}

#[test]
fn rfc4475_messages_get_the_rfc_answers_and_the_phone_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    // Some messages share a Via branch, sent-by and method (novelsc/unkscm, cparam01/02):
    // to a UAS those are one transaction (RFC 3261 §17.2.3) and the second is answered as
    // a retransmission of the first. Each such message goes to a phone of its own.
    let mut phones: Vec<Phone> = vec![Phone::start(dir.path(), &["--listen", "127.0.0.1:0"])];
    let mut transactions: Vec<std::collections::HashSet<String>> = vec![Default::default()];
    // Answers go to the Via's port (5060 by default) at the address the request came from:
    // a loopback address of this test's own catches them without touching 127.0.0.1:5060.
    let pid = std::process::id();
    let ip = format!("127.44.{}.{}", pid % 250, 2 + (pid / 250) % 250);
    let mut listen = Vec::new();
    for port in [5060, 5061, 5050, 5070] {
        let s = UdpSocket::bind((ip.as_str(), port)).unwrap_or_else(|e| panic!("bind {ip}:{port}: {e}"));
        s.set_nonblocking(true).unwrap();
        listen.push(s);
    }
    let sender = UdpSocket::bind((ip.as_str(), 0)).unwrap();
    sender.set_nonblocking(true).unwrap();
    listen.push(sender.try_clone().unwrap());
    let manifest = std::fs::read_to_string(corpus_dir().join("MANIFEST.tsv")).expect("RFC 4475 corpus");
    let files: Vec<&str> = manifest.lines().skip(1).filter_map(|l| l.split('\t').next()).collect();
    let expected: HashMap<&str, Option<u16>> = RFC4475_ANSWERS.iter().copied().collect();
    assert_eq!(files.len(), expected.len(), "every corpus file has an expected answer");

    let mut got: Vec<(u16, String)> = Vec::new();
    let mut probe_seq = 0;
    for file in files {
        let want = *expected.get(file).unwrap_or_else(|| panic!("{file} has no expectation"));
        let data = std::fs::read(corpus_dir().join(file)).unwrap();
        let method = String::from_utf8_lossy(&data).split(' ').next().unwrap_or("").to_owned();
        let transaction = format!("{method} {}", raw_header(&data, &["Via", "v"]).unwrap_or_default());
        let slot = match transactions.iter().position(|seen| !seen.contains(&transaction)) {
            Some(i) => i,
            None => {
                phones.push(Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]));
                transactions.push(Default::default());
                phones.len() - 1
            }
        };
        transactions[slot].insert(transaction);
        let phone = &mut phones[slot];
        // What identifies the answer: the Call-ID, or the branch when there is none.
        let key = raw_header(&data, &["Call-ID", "i"])
            .or_else(|| raw_header(&data, &["Via", "v"]).and_then(|v| v.split("branch=").nth(1).map(str::to_owned)))
            .unwrap_or_default();
        let ours = |text: &str| !key.is_empty() && text.contains(key.as_str());
        sender.send_to(&data, phone.addr).unwrap();
        match want {
            Some(status) => {
                let start = Instant::now();
                loop {
                    drain(&listen, &mut got);
                    if got.iter().any(|(s, t)| *s == status && ours(t)) {
                        break;
                    }
                    assert!(
                        start.elapsed() < WAIT,
                        "{file}: no {status} answer; got {:?}\nstderr:\n{}",
                        got.iter().filter(|(_, t)| ours(t)).map(|(s, _)| s).collect::<Vec<_>>(),
                        phone.stderr_tail()
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                let wrong: Vec<u16> =
                    got.iter().filter(|(s, t)| ours(t) && *s >= 200 && *s != status).map(|(s, _)| *s).collect();
                assert!(wrong.is_empty(), "{file}: also answered {wrong:?}");
            }
            None => {
                // The phone handles datagrams in order: once a later probe is answered,
                // an answer to this one would have come.
                probe_seq += 1;
                let call_id = format!("probe-{probe_seq}-{pid}");
                let probe = format!(
                    "OPTIONS sip:probe@{0} SIP/2.0\r\nVia: SIP/2.0/UDP {ip};rport;branch=z9hG4bKprobe{probe_seq}\r\n\
                     From: <sip:t@{ip}>;tag=p\r\nTo: <sip:probe@{0}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n\
                     Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                    phone.addr
                );
                sender.send_to(probe.as_bytes(), phone.addr).unwrap();
                let start = Instant::now();
                while !got.iter().any(|(s, t)| *s == 200 && t.contains(&call_id)) {
                    assert!(start.elapsed() < WAIT, "{file}: the probe after it was not answered");
                    std::thread::sleep(Duration::from_millis(10));
                    drain(&listen, &mut got);
                }
                let answered: Vec<u16> = got.iter().filter(|(_, t)| ours(t)).map(|(s, _)| *s).collect();
                assert!(answered.is_empty(), "{file} must not be answered, got {answered:?}");
            }
        }
        assert!(phone.is_running(), "the phone died on {file}; stderr:\n{}", phone.stderr_tail());
    }
    assert_eq!(phones.len(), 2, "novelsc and cparam02 repeat an earlier transaction");
    // The INVITEs that started calls rang at the operator, with the caller read from From.
    // (The event follows the 180 the test saw: under load its line may still be on its way.)
    let start = Instant::now();
    let mut incoming: Vec<Value> = Vec::new();
    while incoming.len() < 3 && start.elapsed() < Duration::from_secs(10) {
        phones[0].pull(Duration::from_millis(100));
        incoming = phones[0].all().into_iter().filter(|e| e["event"] == "incoming").collect();
    }
    assert_eq!(incoming.len(), 3, "{incoming:?}");
    assert!(incoming.iter().any(|e| e["from"] == "+13035551111"), "inv2543's caller: {incoming:?}");
    for mut phone in phones {
        assert!(phone.quit().success());
    }
}

#[test]
fn telephony_off_means_no_phone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("settings.toml"), "telephony_enabled = false\n").unwrap();
    let out = Command::new(binary())
        .arg("--profile")
        .arg(dir.path())
        .args(["phone", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("telephony_enabled = false"), "{err}");
    assert!(out.stdout.is_empty(), "nothing started: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn bad_options_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(binary())
            .arg("--profile")
            .arg(dir.path())
            .arg("phone")
            .args(args)
            .stdin(Stdio::null())
            .env_remove("CLINICDESK_SIP_PASSWORD")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run(&[]).contains("no SIP server"));
    assert!(run(&["--server", "127.0.0.1:5062"]).contains("no SIP user"));
    assert!(run(&["--listen", "127.0.0.1:0", "--play", "/nonexistent.wav"]).contains("--play /nonexistent.wav"));
    assert!(run(&["--listen", "127.0.0.1:0", "--auto-answer=-1"]).contains("--auto-answer"));
    assert!(run(&["--listen", "127.0.0.1:0", "--devices", "--record", "x.wav"]).contains("cannot be used with"));
    assert!(run(&["--listen", "127.0.0.1:0", "--retry", "0"]).contains("--retry takes 0.1 to 600 seconds"));
}

// ---------------------------------------------------------------------------------------------
// 2. sipp as the other phone

/// The phone answers sipp's calls (`sipp -sn uac`), which sipp ends with BYE.
#[test]
fn sipp_calls_the_phone_which_answers() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0", "--auto-answer"]);
    let port = free_port();
    let target = phone.addr.to_string();
    let run = sipp(dir.path(), port, &["-sn", "uac", &target, "-m", "3", "-r", "3", "-d", "500"]);
    assert_sipp_passed(run, dir.path(), port);
    for _ in 0..3 {
        let incoming = phone.event("incoming");
        let id = incoming["call_id"].as_str().unwrap().to_owned();
        assert_eq!(incoming["from"], "sipp");
        phone.call_event("answered", &id);
        let ended = phone.call_event("ended", &id);
        assert_eq!(ended["reason"], "hung_up", "{ended}");
        let media = &ended["media"];
        assert_eq!(media["codec"], "PCMU/8000", "{ended}");
        assert!(media["packets_sent"].as_u64().unwrap() > 0, "{ended}");
    }
    assert!(phone.quit().success());
}

/// The phone calls sipp (`sipp -sn uas`) and hangs up itself.
#[test]
fn the_phone_calls_sipp_and_hangs_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    let (port, run) = sipp_waiting(dir.path(), &["-sn", "uas", "-m", "1"]);
    phone.send(&format!("dial sip:service@127.0.0.1:{port}"));
    let dialing = phone.event("dialing");
    let id = dialing["call_id"].as_str().unwrap().to_owned();
    phone.call_event("ringing", &id);
    phone.call_event("answered", &id);
    phone.send("hangup");
    let ended = phone.call_event("ended", &id);
    assert_eq!(ended["reason"], "hung_up");
    assert_sipp_passed(run, dir.path(), port);
    let trace = sipp_messages(dir.path(), port);
    assert!(trace.contains("BYE sip:"), "sipp saw our BYE:\n{trace}");
    assert!(phone.quit().success());
}

/// sipp answers the phone's call and ends it itself with BYE.
#[test]
fn the_callee_hangs_up_on_the_phone() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    let (port, run) = sipp_waiting(dir.path(), &["-sf", &scenario("uas_bye.xml"), "-m", "1"]);
    let id = phone.dial(&format!("service@127.0.0.1:{port}"));
    phone.call_event("answered", &id);
    let ended = phone.call_event("ended", &id);
    assert_eq!(ended["reason"], "hung_up");
    assert_sipp_passed(run, dir.path(), port);
    assert!(phone.quit().success());
}

/// The phone answers sipp's call and hangs up first.
#[test]
fn the_phone_hangs_up_on_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0", "--auto-answer"]);
    let port = free_port();
    let target = phone.addr.to_string();
    let file = scenario("uac_wait_bye.xml");
    let args = ["-sf", &file, &target, "-m", "1", "-key", "caller", "200"];
    let run = sipp(dir.path(), port, &args);
    let id = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &id);
    phone.send(&format!("hangup {id}"));
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    assert_sipp_passed(run, dir.path(), port);
    assert!(phone.quit().success());
}

/// Cancelled while ringing, both ways: the phone gives up on sipp, sipp gives up on the phone.
#[test]
fn calls_are_cancelled_while_ringing() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);

    let (port, run) = sipp_waiting(dir.path(), &["-sf", &scenario("uas_cancel.xml"), "-m", "1"]);
    let id = phone.dial(&format!("sip:service@127.0.0.1:{port}"));
    phone.call_event("ringing", &id);
    phone.send("hangup");
    assert_eq!(phone.call_event("ended", &id)["reason"], "not_answered");
    assert_sipp_passed(run, dir.path(), port);

    let port = free_port();
    let target = phone.addr.to_string();
    let file = scenario("uac_cancel.xml");
    let args = ["-sf", &file, &target, "-m", "1", "-key", "caller", "201"];
    let run = sipp(dir.path(), port, &args);
    let incoming = phone.event("incoming");
    assert_eq!((incoming["from"].as_str(), incoming["display_name"].as_str()), (Some("201"), Some("Anna Caller")));
    let id = incoming["call_id"].as_str().unwrap().to_owned();
    assert_eq!(phone.call_event("ended", &id)["reason"], "not_answered");
    assert_sipp_passed(run, dir.path(), port);
    assert!(phone.quit().success());
}
