//! RFC 4733 telephone-event payloads, one by one and as a stream.
//!
//! The input is a sequence of 8-byte records: a 4-byte RTP timestamp and a
//! 4-byte payload. Checks: no panic; a payload round-trips through
//! `TelephoneEvent`; the receiver reports at most one digit per packet, and
//! only real digits.

#![no_main]

use clinicdesk::media::dtmf::{DtmfReceiver, TelephoneEvent, digit_of};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(ev) = TelephoneEvent::parse(data) {
        let bytes = ev.to_bytes();
        assert_eq!(TelephoneEvent::parse(&bytes), Some(ev));
        let _ = digit_of(ev.event);
    }
    let mut receiver = DtmfReceiver::new();
    for record in data.chunks(8) {
        let (ts, payload) = record.split_at(record.len().min(4));
        let mut t = [0u8; 4];
        t[..ts.len()].copy_from_slice(ts);
        if let Some(digit) = receiver.on_packet(u32::from_be_bytes(t), payload) {
            assert!(matches!(digit, '0'..='9' | '*' | '#' | 'A'..='D'), "digit {digit:?}");
        }
    }
});
