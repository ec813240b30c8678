//! Calls the phone ends by itself or steers: the media timeout (a call whose
//! BYE was lost is hung up; a held call is not) and 3xx redirects followed
//! (to the new target; a loop or a chain past the limit ends the call).

use std::time::{Duration, Instant};

use super::*;

/// The media timeout the phones here run with, seconds: short, so the
/// tests take seconds, and long enough beside a loaded machine's delays.
const TIMEOUT_S: u64 = 3;

fn phone_with_timeout(dir: &Path) -> Phone {
    Phone::start(dir, &["--listen", "127.0.0.1:0", "--auto-answer", "--media-timeout", &TIMEOUT_S.to_string()])
}

/// sipp calls, the phone answers, sipp sends no RTP and never hangs up (its BYE "lost"): the
/// phone sends BYE once the timeout has run out (sipp's scenario waits for it and answers 200)
/// and the call ends as a media timeout.
#[test]
fn a_silent_call_is_hung_up_after_the_media_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = phone_with_timeout(dir.path());
    let port = free_port();
    let target = phone.addr.to_string();
    let file = scenario("uac_wait_bye.xml");
    let run = sipp(dir.path(), port, &["-sf", &file, &target, "-m", "1", "-key", "caller", "207"]);
    let id = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &id);
    let answered = Instant::now();
    let ended = phone.call_event("ended", &id);
    assert_eq!(ended["reason"], "media_timeout", "{ended}");
    // Not before the timeout (the phone's own count from its answer), and not much after:
    // the guard of `call_event` (30 s) is far above.
    assert!(ended["duration_s"].as_u64().unwrap() >= TIMEOUT_S, "{ended}");
    assert!(answered.elapsed() < Duration::from_secs(TIMEOUT_S + 10), "{:?}", answered.elapsed());
    assert_eq!(ended["media"]["packets_received"], 0, "{ended}");
    assert_sipp_passed(run, dir.path(), port);
    assert!(sipp_messages(dir.path(), port).contains("BYE sip:"), "sipp got the phone's BYE");
    assert!(phone.quit().success());
}

/// Held from sipp's side (a=sendonly) with no RTP either way: the call outlives the timeout
/// more than three times over; sipp hangs up after 10 s and the call ends as hung up.
#[test]
fn a_call_held_by_the_other_side_never_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = phone_with_timeout(dir.path());
    let port = free_port();
    let target = phone.addr.to_string();
    let file = scenario("uac_held_silent.xml");
    let run = sipp(dir.path(), port, &["-sf", &file, &target, "-m", "1", "-key", "caller", "208"]);
    let id = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &id);
    let ended = phone.call_event("ended", &id);
    let trace = sipp_messages(dir.path(), port);
    assert_eq!(ended["reason"], "hung_up", "{ended}\n{trace}");
    assert!(ended["duration_s"].as_u64().unwrap() >= 3 * TIMEOUT_S, "{ended}\n{trace}");
    // A BYE of the phone during sipp's pause would have failed the scenario.
    assert_sipp_passed(run, dir.path(), port);
    assert!(phone.quit().success());
}

/// Held from our side: the operator holds a silent call; it stays up well past the timeout
/// (no `ended` while the held call waits three timeouts), then the operator hangs up.
#[test]
fn a_call_we_hold_never_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = phone_with_timeout(dir.path());
    let port = free_port();
    let target = phone.addr.to_string();
    let file = scenario("uac_wait_hold_bye.xml");
    let run = sipp(dir.path(), port, &["-sf", &file, &target, "-m", "1", "-key", "caller", "209"]);
    let id = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &id);
    phone.send(&format!("hold {id}"));
    phone.call_event("held", &id);
    let held = Instant::now();
    // What must not happen can only be watched for a while: three timeouts.
    while held.elapsed() < Duration::from_secs(3 * TIMEOUT_S) {
        phone.pull(Duration::from_millis(200));
        let ended: Vec<Value> = phone.all().into_iter().filter(|e| e["event"] == "ended").collect();
        assert!(ended.is_empty(), "the held call ended: {ended:?}");
    }
    phone.send(&format!("hangup {id}"));
    let ended = phone.call_event("ended", &id);
    assert_eq!(ended["reason"], "hung_up", "{ended}");
    assert!(ended["duration_s"].as_u64().unwrap() >= 3 * TIMEOUT_S, "{ended}");
    assert_sipp_passed(run, dir.path(), port);
    assert!(phone.quit().success());
}

/// The phone calls a number that moved: sipp answers 302 with a Contact at a second sipp,
/// which answers 200. The call is established there (its INVITE reached it, to the
/// Contact's address), and goes on as any call.
#[test]
fn a_302_is_followed_to_the_new_target() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    let (second_port, second) = sipp_waiting(dir.path(), &["-sn", "uas", "-m", "1"]);
    let contact = format!("sip:second@127.0.0.1:{second_port}");
    let redirect = scenario("uas_redirect.xml");
    let (first_port, first) = sipp_waiting(dir.path(), &["-sf", &redirect, "-m", "1", "-key", "target", &contact]);
    let id = phone.dial(&format!("sip:first@127.0.0.1:{first_port}"));
    phone.call_event("answered", &id);
    phone.send(&format!("hangup {id}"));
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    assert_sipp_passed(first, dir.path(), first_port);
    assert_sipp_passed(second, dir.path(), second_port);
    let at_second = sipp_messages(dir.path(), second_port);
    assert!(at_second.contains(&format!("INVITE {contact} SIP/2.0")), "{at_second}");
    // The same call (Call-ID) moved on; the first target saw one INVITE only.
    assert!(at_second.contains(&id), "{at_second}");
    assert_eq!(sipp_messages(dir.path(), first_port).matches("INVITE sip:").count(), 1);
    assert!(phone.quit().success());
}

/// Redirects that go round (back to where the call started) or on for too long end the call
/// with its reason: the first after two INVITEs, the second after six (five followed).
#[test]
fn redirect_loops_and_long_chains_end_the_call() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    for (file, invites) in [("uas_redirect_loop.xml", 2), ("uas_redirect_chain.xml", 6)] {
        let (port, run) = sipp_waiting(dir.path(), &["-sf", &scenario(file), "-m", "1"]);
        let id = phone.dial(&format!("sip:loop@127.0.0.1:{port}"));
        let ended = phone.call_event("ended", &id);
        assert_eq!(ended["reason"], "too_many_redirects", "{file}: {ended}");
        assert_sipp_passed(run, dir.path(), port);
        let trace = sipp_messages(dir.path(), port);
        let received = trace.lines().filter(|l| l.starts_with("INVITE sip:")).count();
        assert_eq!(received, invites, "{file}: {trace}");
    }
    assert!(phone.quit().success());
}
