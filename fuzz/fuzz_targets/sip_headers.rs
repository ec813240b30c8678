//! One header field value, through every typed parser the user agent uses
//! (Via, From/To/Contact/Route as name-addr, CSeq, Content-Type, Event,
//! Subscription-State, Replaces, digest challenges and credentials).
//!
//! Checks: no panic; a value that parses prints to text that parses back to
//! the same value.

#![no_main]

use std::fmt::Display;

use clinicdesk::sip::auth::parse_auth_values;
use clinicdesk::sip::headers::{Event, Replaces, SubscriptionState};
use clinicdesk::sip::{CSeq, HeaderError, MediaType, NameAddr, Via};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Header values reach these parsers as &str (a message with non-UTF-8
    // header lines is refused before).
    let Ok(v) = std::str::from_utf8(data) else { return };
    round_trip("Via", v, Via::parse);
    round_trip("name-addr", v, NameAddr::parse);
    round_trip("CSeq", v, CSeq::parse);
    round_trip("media type", v, MediaType::parse);
    round_trip("Event", v, Event::parse);
    round_trip("Subscription-State", v, SubscriptionState::parse);
    round_trip("Replaces", v, Replaces::parse);
    if let Ok(values) = parse_auth_values(v) {
        for value in &values {
            let _ = value.param("realm");
            let _ = value.param("nonce");
            let _ = clinicdesk::sip::auth::DigestChallenge::from_value(value, false);
        }
    }
});

fn round_trip<T: Display + PartialEq + std::fmt::Debug>(
    what: &str,
    v: &str,
    parse: fn(&str) -> Result<T, HeaderError>,
) {
    let Ok(value) = parse(v) else { return };
    let text = value.to_string();
    match parse(&text) {
        Ok(again) => assert_eq!(again, value, "{what} {v:?} printed as {text:?} parses differently"),
        Err(e) => panic!("{what} {v:?} printed as {text:?} does not parse: {e}"),
    }
}
