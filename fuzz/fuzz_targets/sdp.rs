//! One SDP body from an INVITE, a re-INVITE, an UPDATE or their answers.
//!
//! Checks: no panic; a session description that parses prints to bytes that
//! parse back to the same value (but for the order of the other lines, which
//! printing puts in RFC 4566 order) and print the same again; RFC 3264
//! offer/answer runs on it both ways (we answer it as an offer, and read it as
//! the answer to our offer), and an answer we produce parses.

#![no_main]

use clinicdesk::sip::sdp::{AudioConfig, LocalMedia, SessionDescription, accept_answer, answer_offer, build_offer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = SessionDescription::parse(data) else { return };
    let bytes = sdp.to_bytes();
    match SessionDescription::parse(&bytes) {
        Ok(again) => {
            let printed = again.to_bytes();
            assert_eq!(in_print_order(again), in_print_order(sdp.clone()), "round trip changed the SDP");
            assert!(printed == bytes, "printing is not stable:\n{}", String::from_utf8_lossy(&bytes));
        }
        Err(e) => panic!("our own SDP does not parse ({e}):\n{}", String::from_utf8_lossy(&bytes)),
    }
    for m in &sdp.media {
        let _ = m.payload_formats();
        let _ = m.direction(&sdp);
        let _ = m.connection_in(&sdp).map(|c| c.ip());
    }
    let _ = sdp.audio();

    let local =
        LocalMedia { rtp: "192.0.2.10:40000".parse().expect("literal address"), session_id: 1, session_version: 1 };
    let cfg = AudioConfig::default();
    // It as an offer we answer.
    if let Ok((answer, _agreed)) = answer_offer(&sdp, &local, &cfg) {
        let bytes = answer.to_bytes();
        match SessionDescription::parse(&bytes) {
            Ok(parsed) => assert_eq!(parsed, answer),
            Err(e) => panic!("our answer does not parse ({e}):\n{}", String::from_utf8_lossy(&bytes)),
        }
        let _ = accept_answer(&sdp, &answer);
    }
    // It as the answer to our offer.
    let offer = build_offer(&local, &cfg);
    let _ = accept_answer(&offer, &sdp);
});

/// The other lines in the order Display prints them (RFC 4566: i u e p before
/// c, the rest after; i before a media section's c).
fn in_print_order(mut sdp: SessionDescription) -> SessionDescription {
    sdp.other.sort_by_key(|(k, _)| !"iuep".contains(*k));
    for m in &mut sdp.media {
        m.other.sort_by_key(|(k, _)| *k != 'i');
    }
    sdp
}
