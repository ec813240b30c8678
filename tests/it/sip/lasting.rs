//! Registration that lasts, against sipp registrars: the interval of a 423's Min-Expires kept
//! for every refresh and each granted interval honoured, refusals retried later and later
//! without a restart, a new nonce without stale=true tried once more before the password is
//! called wrong.

use std::path::Path;

use super::kamailio::{digest_params, md5_hex};
use super::*;

/// One message in sipp's trace.
struct Traced {
    /// Seconds since the first message of the trace.
    at: f64,
    /// sipp received it (else sipp sent it).
    received: bool,
    text: String,
}

impl Traced {
    fn is_register(&self) -> bool {
        self.received && self.text.starts_with("REGISTER ")
    }

    fn status(&self) -> Option<u16> {
        self.text.strip_prefix("SIP/2.0 ")?.get(..3)?.parse().ok()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.text.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    }

    /// The interval a REGISTER asks for (its Expires header).
    fn asked(&self) -> u32 {
        let expires = self.header("Expires").unwrap_or_else(|| panic!("no Expires in\n{}", self.text));
        expires.parse().unwrap_or_else(|_| panic!("Expires {expires:?} in\n{}", self.text))
    }

    /// The interval a 200 grants: the Contact's expires, else the Expires header.
    fn granted(&self) -> f64 {
        let contact = self.header("Contact").unwrap_or_default();
        let from_contact = contact.split(";expires=").nth(1).map(str::to_owned);
        let value =
            from_contact.or_else(|| self.header("Expires")).unwrap_or_else(|| panic!("no grant in\n{}", self.text));
        value.trim().parse().unwrap_or_else(|_| panic!("grant {value:?} in\n{}", self.text))
    }
}

/// sipp's message trace, message by message (sipp writes it as it goes).
fn sipp_trace(dir: &Path, port: u16) -> Vec<Traced> {
    let text = sipp_messages(dir, port);
    let mut out = Vec::new();
    let mut first = None;
    for block in text.split("----------------------------------------------- ").skip(1) {
        let Some((stamp, rest)) = block.split_once('\n') else { continue };
        let Ok(when) = chrono::NaiveDateTime::parse_from_str(stamp.trim(), "%Y-%m-%d %H:%M:%S%.f") else { continue };
        let Some((kind, message)) = rest.split_once('\n') else { continue };
        let micros = when.and_utc().timestamp_micros();
        let start = *first.get_or_insert(micros);
        out.push(Traced {
            at: (micros - start) as f64 / 1e6,
            received: kind.contains("received"),
            text: message.trim_start().replace("\r\n", "\n"),
        });
    }
    out
}

/// Waits until sipp's trace shows `what`.
fn wait_for_trace(dir: &Path, port: u16, what: &str, done: impl Fn(&[Traced]) -> bool) -> Vec<Traced> {
    let start = Instant::now();
    loop {
        let trace = sipp_trace(dir, port);
        if done(&trace) {
            return trace;
        }
        assert!(start.elapsed() < WAIT, "sipp never saw {what}; its trace:\n{}", sipp_messages(dir, port));
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sent_ok(trace: &[Traced]) -> usize {
    trace.iter().filter(|m| !m.received && m.status() == Some(200)).count()
}

fn phone_for(dir: &Path, port: u16, extra: &[&str]) -> Phone {
    let server = format!("127.0.0.1:{port}");
    let mut args = vec!["--server", server.as_str(), "--user", "100", "--listen", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Phone::start_with(dir, &args, &[("CLINICDESK_SIP_PASSWORD", "secret100")])
}

/// The phone asks for 2 s; the registrar answers 423 with Min-Expires: 8, then grants 8 s (in
/// the Contact), 6 s (in an Expires header), 8 s. Every REGISTER after the 423, the three
/// refreshes included, asks for 8 s (sipp checks each), each refresh comes after half the
/// interval granted last and before it runs out, and the phone is still registered after them.
#[test]
fn a_min_expires_is_kept_for_every_refresh_and_each_grant_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let (port, run) = sipp_waiting(dir.path(), &["-sf", &scenario("registrar_brief_interval.xml"), "-m", "1"]);
    let mut phone = phone_for(dir.path(), port, &["--expires", "2"]);
    phone.event("registered");
    // The 200 after the 423, then three refreshes answered.
    wait_for_trace(dir.path(), port, "three refreshes", |t| sent_ok(t) >= 4);
    phone.send("stats");
    let stats = phone.event("stats");
    assert!(phone.quit().success());
    // sipp first: it checked the interval each REGISTER asked for.
    assert_sipp_passed(run, dir.path(), port);
    assert_eq!((stats["registered"].as_bool(), stats["register_expires"].as_u64()), (Some(true), Some(8)), "{stats}");
    let events = phone.all();
    assert!(!events.iter().any(|e| e["event"] == "registration_failed"), "{events:?}");

    let trace = sipp_trace(dir.path(), port);
    let asked: Vec<u32> = trace.iter().filter(|m| m.is_register()).map(Traced::asked).collect();
    assert!(asked.len() >= 6 && asked[..5] == [2, 8, 8, 8, 8], "intervals asked: {asked:?}");
    assert_eq!(asked.last(), Some(&0), "the binding removed on quit: {asked:?}");
    // Each grant and the refresh that followed it.
    let mut refreshes = Vec::new();
    for (i, ok) in trace.iter().enumerate().filter(|(_, m)| !m.received && m.status() == Some(200)) {
        let next = trace[i..].iter().find(|m| m.is_register());
        if let Some(next) = next.filter(|n| n.asked() != 0) {
            refreshes.push((ok.granted(), next.at - ok.at));
        }
    }
    assert!(refreshes.len() >= 3, "{refreshes:?}");
    assert_eq!(refreshes.iter().take(3).map(|r| r.0).collect::<Vec<_>>(), [8.0, 6.0, 8.0]);
    for (granted, after) in refreshes {
        // Half the grant (the phone's plan), never later than the grant itself.
        assert!(
            after >= granted / 2.0 - 0.01 && after < granted,
            "refreshed {after:.2} s after a grant of {granted} s"
        );
    }
}

/// The registrar refuses twice with 403, then accepts: the phone says each time that it will try
/// again and when, waits at least that long (longer the second time), and registers without a
/// restart.
#[test]
fn a_refused_registration_is_tried_again_later_and_later() {
    let dir = tempfile::tempdir().unwrap();
    let (port, run) = sipp_waiting(dir.path(), &["-sf", &scenario("registrar_refuses_twice.xml"), "-m", "1"]);
    // Refusals start at 12 times --retry: 1.5 to 3 s, then 3 to 6 s.
    let mut phone = phone_for(dir.path(), port, &["--retry", "0.25"]);
    let mut waits = Vec::new();
    for _ in 0..2 {
        let failed = phone.event("registration_failed");
        assert_eq!(failed["code"], 403, "{failed}");
        assert_eq!(failed["reason"], "Forbidden", "{failed}");
        waits.push(failed["retry_in_ms"].as_u64().unwrap_or_else(|| panic!("no retry announced: {failed}")));
    }
    phone.event("registered");
    phone.send("stats");
    assert_eq!(phone.event("stats")["registered"], true);
    assert!(phone.quit().success());
    assert_sipp_passed(run, dir.path(), port);
    assert!((1490..=3000).contains(&waits[0]) && (2990..=6000).contains(&waits[1]), "announced waits: {waits:?} ms");

    let trace = sipp_trace(dir.path(), port);
    let refusals: Vec<&Traced> = trace.iter().filter(|m| !m.received && m.status() == Some(403)).collect();
    let registers: Vec<&Traced> = trace.iter().filter(|m| m.is_register()).collect();
    assert_eq!((refusals.len(), registers.len()), (2, 4), "two refusals, three tries and the removal");
    for (n, (refusal, wait)) in refusals.iter().zip(&waits).enumerate() {
        let waited = registers[n + 1].at - refusal.at;
        assert!(
            waited >= *wait as f64 / 1000.0 - 0.01,
            "tried again {waited:.3} s after refusal {n}, announced {wait} ms"
        );
    }
}

/// The registrar answers the credentials with a new nonce but without stale=true: the phone
/// answers the new nonce with the same credentials and registers. (A really wrong password is
/// still reported after the second new nonce: `a_wrong_password_is_reported`, with kamailio,
/// which hands out a new nonce with every challenge.)
#[test]
fn a_new_nonce_without_stale_is_answered_once_more() {
    let dir = tempfile::tempdir().unwrap();
    let (port, run) = sipp_waiting(dir.path(), &["-sf", &scenario("registrar_new_nonce.xml"), "-m", "1"]);
    let mut phone = phone_for(dir.path(), port, &[]);
    phone.event("registered");
    assert!(phone.quit().success());
    assert_sipp_passed(run, dir.path(), port);
    let events = phone.all();
    assert!(!events.iter().any(|e| e["event"] == "registration_failed"), "{events:?}");

    let trace = sipp_trace(dir.path(), port);
    let registers: Vec<&Traced> = trace.iter().filter(|m| m.is_register()).collect();
    let third =
        registers.get(2).unwrap_or_else(|| panic!("three REGISTERs expected:\n{}", sipp_messages(dir.path(), port)));
    let authorization = third.header("Authorization").expect("credentials on the new nonce");
    let p = digest_params(&authorization);
    assert!(p["nonce"].starts_with("second-"), "{authorization}");
    assert_eq!((p["username"].as_str(), p["realm"].as_str(), p["qop"].as_str()), ("100", "clinic.example", "auth"));
    let ha1 = md5_hex("100:clinic.example:secret100");
    let ha2 = md5_hex(&format!("REGISTER:{}", p["uri"]));
    let expected = md5_hex(&format!("{ha1}:{}:{}:{}:auth:{ha2}", p["nonce"], p["nc"], p["cnonce"]));
    assert_eq!(p["response"], expected, "{authorization}");
    assert_eq!(p["nc"], "00000001", "a new nonce starts its count again");
}
