//! Calls, digest, tones, DTMF, hold and transfer through kamailio with baresip; the caller's card.

use std::collections::HashMap;
use std::time::Duration;

use super::peers::*;
use super::*;

/// Both phones register with kamailio (MD5 digest); calls go each way and end from each side.
#[test]
fn calls_through_kamailio_with_baresip() {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    let mut phone = kamailio_phone(dir.path(), &kamailio, &[]);
    let tone = dir.path().join("tone440.wav");
    write_tone(&tone, 440.0, 8000, 60.0);
    let mut bare = Baresip::start(dir.path(), &kamailio.server(), "200", &tone, true);

    // We call; we hang up.
    phone.send("dial 200");
    let id = phone.event("dialing")["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &id);
    bare.event("CALL_ESTABLISHED");
    phone.send("hangup");
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    bare.event("CALL_CLOSED");

    // We call; they hang up.
    phone.send("dial 200");
    let id = phone.event("dialing")["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &id);
    bare.event("CALL_ESTABLISHED");
    bare.command("hangup", "");
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    bare.event("CALL_CLOSED");

    // They call; we answer and hang up.
    bare.command("dial", &format!("sip:100@{}", kamailio.server()));
    let incoming = phone.event("incoming");
    assert_eq!(incoming["from"], "200");
    let id = incoming["call_id"].as_str().unwrap().to_owned();
    phone.send("answer");
    phone.call_event("answered", &id);
    bare.event("CALL_ESTABLISHED");
    phone.send("hangup");
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    bare.event("CALL_CLOSED");

    // They call; we answer; they hang up.
    bare.command("dial", &format!("sip:100@{}", kamailio.server()));
    let id = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
    phone.send("answer");
    phone.call_event("answered", &id);
    bare.event("CALL_ESTABLISHED");
    bare.command("hangup", "");
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    bare.event("CALL_CLOSED");

    // On quit the phone removes its registration: kamailio no longer finds 100.
    assert!(phone.quit().success());
    bare.command("dial", &format!("sip:100@{}", kamailio.server()));
    let closed = bare.event("CALL_CLOSED");
    assert!(closed["param"].as_str().unwrap_or("").contains("404"), "{closed}\n{}", kamailio.log());
}

/// The `key="value"` parameters of a digest header.
pub(super) fn digest_params(header: &str) -> HashMap<String, String> {
    let body = header.trim().strip_prefix("Digest").unwrap_or(header);
    body.split(',')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_owned()))
        })
        .collect()
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A registrar challenging with MD5, then one with SHA-256 (sipp): the phone
/// answers each with the right digest, registers, and removes its binding on quit.
#[test]
fn registration_answers_md5_and_sha256_challenges() {
    for (file, algorithm) in [("registrar_md5.xml", "MD5"), ("registrar_sha256.xml", "SHA-256")] {
        let dir = tempfile::tempdir().unwrap();
        let (port, run) = sipp_waiting(dir.path(), &["-sf", &scenario(file), "-m", "1"]);
        let server = format!("127.0.0.1:{port}");
        let mut phone = Phone::start_with(
            dir.path(),
            &["--server", &server, "--user", "100", "--listen", "127.0.0.1:0", "--expires", "60"],
            &[("CLINICDESK_SIP_PASSWORD", "secret100")],
        );
        assert_eq!(phone.event("registered")["account"], format!("100@{server}"));
        assert!(phone.quit().success());
        assert_sipp_passed(run, dir.path(), port);

        let trace = sipp_messages(dir.path(), port);
        let authorization = trace
            .lines()
            .find_map(|l| l.strip_prefix("Authorization:"))
            .unwrap_or_else(|| panic!("no Authorization in:\n{trace}"));
        let p = digest_params(authorization);
        assert_eq!(p["algorithm"], algorithm);
        assert_eq!((p["username"].as_str(), p["realm"].as_str(), p["qop"].as_str()), ("100", "clinic.example", "auth"));
        let hash = |text: &str| if algorithm == "MD5" { md5_hex(text) } else { sha256_hex(text) };
        let ha1 = hash("100:clinic.example:secret100");
        let ha2 = hash(&format!("REGISTER:{}", p["uri"]));
        let expected = hash(&format!("{ha1}:{}:{}:{}:auth:{ha2}", p["nonce"], p["nc"], p["cnonce"]));
        assert_eq!(p["response"], expected, "{authorization}");
    }
}

pub(super) fn md5_hex(text: &str) -> String {
    use md5::Digest;
    md5::Md5::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A call through kamailio with baresip: each side hears the other's tone, and DTMF
/// digits go both ways. `codec` is the only one the phone offers.
fn audio_and_dtmf_with_baresip(codec: &str, codec_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    let ours = dir.path().join("tone1000.wav");
    write_tone(&ours, 1000.0, 8000, 10.0);
    let theirs = dir.path().join("tone440.wav");
    write_tone(&theirs, 440.0, 8000, 60.0);
    let heard = dir.path().join("heard.wav");
    let (play, record) = (ours.display().to_string(), heard.display().to_string());
    let mut phone = kamailio_phone(dir.path(), &kamailio, &["--play", &play, "--record", &record, "--codecs", codec]);
    let mut bare = Baresip::start(dir.path(), &kamailio.server(), "200", &theirs, true);

    phone.send("dial 200");
    let id = phone.event("dialing")["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &id);
    bare.event("CALL_ESTABLISHED");

    phone.send("dtmf 159#");
    let digits: String = (0..4).map(|_| bare.event("CALL_DTMF_START")["param"].as_str().unwrap().to_owned()).collect();
    assert_eq!(digits, "159#");
    bare.command("sndcode", "7");
    assert_eq!(phone.call_event("dtmf", &id)["digit"], "7");

    // Let a few seconds of sound through, then hang up.
    std::thread::sleep(Duration::from_secs(3));
    phone.send("hangup");
    let ended = phone.call_event("ended", &id);
    assert_eq!(ended["media"]["codec"], codec_name, "{ended}");
    assert!(ended["media"]["packets_received"].as_u64().unwrap() > 50, "{ended}");
    bare.event("CALL_CLOSED");

    let (freq, seconds) = tone_of(&heard);
    assert!((freq - 440.0).abs() <= 10.0 && seconds >= 1.0, "we heard {freq} Hz for {seconds} s");
    let (freq, seconds) = tone_of(&bare.received_recording());
    assert!((freq - 1000.0).abs() <= 10.0 && seconds >= 1.0, "baresip heard {freq} Hz for {seconds} s");
    assert!(phone.quit().success());
}

#[test]
fn tones_and_dtmf_both_ways_with_pcmu() {
    audio_and_dtmf_with_baresip("pcmu", "PCMU/8000");
}

#[test]
fn tones_and_dtmf_both_ways_with_opus() {
    audio_and_dtmf_with_baresip("opus", "opus/48000/2");
}

// ---------------------------------------------------------------------------------------------
// 5. Hold, resume, transfer

/// The phone holds (re-INVITE sendonly) and resumes (sendrecv) a call; sipp checks the SDP.
#[test]
fn hold_and_resume_by_reinvite() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    let (port, run) = sipp_waiting(dir.path(), &["-sf", &scenario("uas_hold.xml"), "-m", "1"]);
    let id = phone.dial(&format!("sip:service@127.0.0.1:{port}"));
    phone.call_event("answered", &id);
    phone.send("hold");
    phone.call_event("held", &id);
    phone.send("resume");
    phone.call_event("resumed", &id);
    phone.send("hangup");
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    assert_sipp_passed(run, dir.path(), port);
    assert!(phone.quit().success());
}

/// The other side holds the phone by re-INVITE and resumes by UPDATE: the phone's
/// answers mirror them (recvonly, then sendrecv); sipp checks.
#[test]
fn the_peer_holds_by_reinvite_and_resumes_by_update() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0", "--auto-answer"]);
    let port = free_port();
    let target = phone.addr.to_string();
    let file = scenario("uac_reinvite.xml");
    let run = sipp(dir.path(), port, &["-sf", &file, &target, "-m", "1", "-key", "caller", "202"]);
    let id = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &id);
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    assert_sipp_passed(run, dir.path(), port);
    assert!(phone.quit().success());
}

/// Blind transfer: REFER to 201, the NOTIFY reports 200, the phone hangs up its part.
#[test]
fn blind_transfer_by_refer() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    let (port, run) = sipp_waiting(dir.path(), &["-sf", &scenario("uas_refer.xml"), "-m", "1"]);
    let id = phone.dial(&format!("sip:service@127.0.0.1:{port}"));
    phone.call_event("answered", &id);
    phone.send(&format!("transfer 201@127.0.0.1:{port}"));
    let transferred = phone.call_event("transferred", &id);
    assert_eq!(transferred["target"], "201");
    assert_eq!(phone.call_event("ended", &id)["reason"], "transferred");
    assert_sipp_passed(run, dir.path(), port);
    let trace = sipp_messages(dir.path(), port);
    assert!(trace.contains("Referred-By:"), "{trace}");
    assert!(phone.quit().success());
}

// ---------------------------------------------------------------------------------------------
// 6. The caller's card

/// A call from a known patient's number (in national form) rings with that patient's card,
/// and the finished call is logged in the replica against them.
#[test]
fn an_incoming_call_shows_the_callers_card_and_is_logged() {
    let profile = crate::harness::demo_profile(300, 200);
    let replica = profile.path().join("replica.sqlite");
    let (e164, name, person_id): (String, String, String) = {
        let db = rusqlite::Connection::open(&replica).unwrap();
        db.query_row(
            "SELECT ph.phone_e164,
                    p.last_name || ' ' || p.first_name || CASE WHEN p.middle_name = '' THEN '' ELSE ' ' || p.middle_name END,
                    p.id
             FROM person_phones ph JOIN people p ON p.id = ph.person_id
             WHERE ph.deleted_at IS NULL AND p.deleted_at IS NULL AND ph.phone_e164 LIKE '+7%'
               AND (SELECT count(*) FROM person_phones x WHERE x.phone_e164 = ph.phone_e164 AND x.deleted_at IS NULL) = 1
             ORDER BY ph.phone_e164 LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    // As a Russian PBX sends it: 8 and the ten digits.
    let national = format!("8{}", &e164[2..]);

    let mut phone = Phone::start(profile.path(), &["--listen", "127.0.0.1:0", "--auto-answer"]);
    let port = free_port();
    let target = phone.addr.to_string();
    let file = scenario("uac_wait_bye.xml");
    let run = sipp(profile.path(), port, &["-sf", &file, &target, "-m", "1", "-key", "caller", &national]);
    let incoming = phone.event("incoming");
    assert_eq!(incoming["from"], e164.as_str());
    let card = &incoming["card"];
    assert_eq!(card["number"], e164.as_str(), "{incoming}");
    assert_eq!(card["people"][0]["full_name"], name.as_str(), "{incoming}");
    assert_eq!(card["people"][0]["id"], person_id.as_str());
    let id = incoming["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &id);
    phone.send("hangup");
    phone.call_event("ended", &id);
    assert_sipp_passed(run, profile.path(), port);
    assert!(phone.quit().success());

    let db = rusqlite::Connection::open(&replica).unwrap();
    let (peer, result, who, direction): (String, String, Option<String>, String) = db
        .query_row("SELECT peer_e164, result, person_id, direction FROM calls WHERE sip_call_id = ?", [&id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!((peer.as_str(), result.as_str(), direction.as_str()), (e164.as_str(), "answered", "in"));
    assert_eq!(who.as_deref(), Some(person_id.as_str()));
}
