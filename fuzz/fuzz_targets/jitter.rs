//! The adaptive jitter buffer fed arbitrary packets at arbitrary times.
//!
//! The input is a sequence of records: 2-byte sequence number, 4-byte
//! timestamp, 2-byte arrival step in ms (high bit: pop a frame first), 1-byte
//! payload length, then that many payload bytes (PCMU). Checks: no panic; each
//! pop appends exactly one frame; the buffer's delay figures stay finite.

#![no_main]

use std::time::{Duration, Instant};

use clinicdesk::media::codec::{G711, G711Law};
use clinicdesk::media::jitter::{JitterBuffer, JitterConfig};
use libfuzzer_sys::fuzz_target;

const FRAME: usize = 160;

fuzz_target!(|data: &[u8]| {
    let mut buffer = JitterBuffer::new(JitterConfig::new(8000, FRAME));
    let mut codec = G711::new(G711Law::Mu, FRAME);
    let start = Instant::now();
    let mut now = start;
    let mut out = Vec::new();
    let mut rest = data;
    while let [s0, s1, t0, t1, t2, t3, d0, d1, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        let step = u16::from_be_bytes([*d0, *d1]);
        now += Duration::from_millis(u64::from(step & 0x7fff));
        if step & 0x8000 != 0 {
            let before = out.len();
            let _ = buffer.pop(now, &mut codec, &mut out);
            assert_eq!(out.len() - before, FRAME, "a pop must give exactly one frame");
            out.clear();
        }
        buffer.push(u16::from_be_bytes([*s0, *s1]), u32::from_be_bytes([*t0, *t1, *t2, *t3]), payload, now);
    }
    for _ in 0..4 {
        now += Duration::from_millis(20);
        let before = out.len();
        let _ = buffer.pop(now, &mut codec, &mut out);
        assert_eq!(out.len() - before, FRAME, "a pop must give exactly one frame");
    }
    assert!(buffer.target_ms().is_finite());
    let _ = buffer.stats();
});
