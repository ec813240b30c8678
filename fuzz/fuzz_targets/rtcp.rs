//! One compound RTCP datagram (SR, RR, SDES, BYE, anything else).
//!
//! Checks: no panic; what we parse we can write, and what we write parses;
//! after that one normalisation (unknown types dropped, text made valid
//! UTF-8 and at most 255 bytes) writing and parsing again is the identity.

#![no_main]

use clinicdesk::media::rtp::{parse_rtcp, write_rtcp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(packets) = parse_rtcp(data) else { return };
    let mut out = Vec::new();
    write_rtcp(&packets, &mut out);
    let normal = match parse_rtcp(&out) {
        Ok(p) => p,
        Err(e) => panic!("our own RTCP does not parse: {e}\n{packets:?}"),
    };
    let mut again = Vec::new();
    write_rtcp(&normal, &mut again);
    assert_eq!(parse_rtcp(&again).as_ref(), Ok(&normal), "RTCP does not round-trip");
});
