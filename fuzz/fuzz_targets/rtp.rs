//! One RTP datagram.
//!
//! Checks: no panic; the parsed header and payload written back out parse to
//! the same header and payload; the multiplexing test (`is_rtcp`) and the
//! receive statistics take any header.

#![no_main]

use std::time::Duration;

use clinicdesk::media::rtp::{ReceiveStatistics, RtpPacket, is_rtcp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = is_rtcp(data);
    let Ok(packet) = RtpPacket::parse(data) else { return };
    let mut out = Vec::new();
    packet.header.write(packet.payload, &mut out);
    match RtpPacket::parse(&out) {
        Ok(again) => assert_eq!(again, packet, "round trip changed the packet"),
        Err(e) => panic!("our own RTP packet does not parse: {e}"),
    }
    let mut stats = ReceiveStatistics::new(8000);
    let _ = stats.on_packet(packet.header.sequence, packet.header.timestamp, Duration::from_millis(20));
    let _ = stats.report_block(packet.header.ssrc, Duration::from_millis(40));
});
