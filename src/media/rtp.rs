//! RTP and RTCP wire formats (RFC 3550) and the per-stream figures that RTCP carries.
//!
//! Everything from the network is parsed here into checked values before the rest of the
//! engine sees it: a malformed datagram is an `RtpError`, never a panic. The statistics
//! follow the RFC's appendices literally (A.1 sequence validation, A.3 loss, A.8 jitter) so
//! that our reports agree with what the peer's phone computes about the same stream.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Why a datagram is not a usable RTP or RTCP packet.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RtpError {
    #[error("packet too short: {len} bytes where at least {needed} are needed")]
    TooShort { len: usize, needed: usize },
    #[error("RTP/RTCP version {0} is not 2: the sender does not speak RFC 3550 (or the datagram is not RTP)")]
    BadVersion(u8),
    #[error("padding of {padding} bytes is longer than the {len}-byte packet")]
    BadPadding { padding: usize, len: usize },
    #[error("RTCP packet type {pt} declares {declared} bytes but only {available} remain")]
    BadRtcpLength { pt: u8, declared: usize, available: usize },
    #[error("RTCP compound packet does not start with a sender or receiver report (type {0})")]
    BadCompoundStart(u8),
}

/// The fixed header of an RTP packet plus its optional CSRC list and header extension.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub csrc: Vec<u32>,
    /// Profile-defined id and the extension body (a multiple of 4 bytes).
    pub extension: Option<(u16, Vec<u8>)>,
}

/// A parsed RTP packet; the payload borrows from the datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket<'a> {
    pub header: RtpHeader,
    pub payload: &'a [u8],
}

impl<'a> RtpPacket<'a> {
    /// Parses one RTP datagram, stripping padding.
    pub fn parse(buf: &'a [u8]) -> Result<RtpPacket<'a>, RtpError> {
        if buf.len() < 12 {
            return Err(RtpError::TooShort { len: buf.len(), needed: 12 });
        }
        let version = buf[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let has_padding = buf[0] & 0x20 != 0;
        let has_extension = buf[0] & 0x10 != 0;
        let csrc_count = (buf[0] & 0x0f) as usize;
        let marker = buf[1] & 0x80 != 0;
        let payload_type = buf[1] & 0x7f;
        let sequence = u16::from_be_bytes([buf[2], buf[3]]);
        let timestamp = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let mut pos = 12;
        let needed = pos + 4 * csrc_count;
        if buf.len() < needed {
            return Err(RtpError::TooShort { len: buf.len(), needed });
        }
        let csrc = (0..csrc_count).map(|i| read_u32(buf, pos + 4 * i)).collect();
        pos = needed;
        let mut extension = None;
        if has_extension {
            if buf.len() < pos + 4 {
                return Err(RtpError::TooShort { len: buf.len(), needed: pos + 4 });
            }
            let id = u16::from_be_bytes([buf[pos], buf[pos + 1]]);
            let words = u16::from_be_bytes([buf[pos + 2], buf[pos + 3]]) as usize;
            let end = pos + 4 + 4 * words;
            if buf.len() < end {
                return Err(RtpError::TooShort { len: buf.len(), needed: end });
            }
            extension = Some((id, buf[pos + 4..end].to_vec()));
            pos = end;
        }
        let mut end = buf.len();
        if has_padding {
            let padding = buf[buf.len() - 1] as usize;
            if padding == 0 || padding > end - pos {
                return Err(RtpError::BadPadding { padding, len: buf.len() });
            }
            end -= padding;
        }
        Ok(RtpPacket {
            header: RtpHeader { marker, payload_type, sequence, timestamp, ssrc, csrc, extension },
            payload: &buf[pos..end],
        })
    }
}

impl RtpHeader {
    /// Appends the header and `payload` to `out` (no padding: we never need it without SRTP).
    pub fn write(&self, payload: &[u8], out: &mut Vec<u8>) {
        let csrc_count = self.csrc.len().min(15);
        let mut b0 = 0x80 | csrc_count as u8;
        if self.extension.is_some() {
            b0 |= 0x10;
        }
        out.push(b0);
        out.push(((self.marker as u8) << 7) | (self.payload_type & 0x7f));
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in &self.csrc[..csrc_count] {
            out.extend_from_slice(&c.to_be_bytes());
        }
        if let Some((id, body)) = &self.extension {
            let words = body.len().div_ceil(4);
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&(words as u16).to_be_bytes());
            out.extend_from_slice(body);
            out.resize(out.len() + words * 4 - body.len(), 0);
        }
        out.extend_from_slice(payload);
    }
}

/// True when a datagram on a multiplexed port is RTCP rather than RTP (RFC 5761 §4).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 2 && (192..=223).contains(&buf[1])
}

fn read_u32(buf: &[u8], pos: usize) -> u32 {
    u32::from_be_bytes([buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]])
}

/// Extends 16-bit sequence numbers to a monotonic 64-bit count across wraps.
#[derive(Debug, Clone, Default)]
pub struct SequenceUnwrapper {
    last: Option<i64>,
}

impl SequenceUnwrapper {
    pub fn unwrap(&mut self, seq: u16) -> i64 {
        let ext = match self.last {
            None => seq as i64,
            Some(last) => last + (seq.wrapping_sub(last as u16) as i16) as i64,
        };
        // Keep the newest so that a reordered old packet does not pull the reference back.
        if self.last.is_none_or(|l| ext > l) {
            self.last = Some(ext);
        }
        ext
    }
}

/// Extends 32-bit RTP timestamps the same way (half the range either side of the newest).
#[derive(Debug, Clone, Default)]
pub struct TimestampUnwrapper {
    last: Option<i64>,
}

impl TimestampUnwrapper {
    pub fn unwrap(&mut self, ts: u32) -> i64 {
        let ext = match self.last {
            None => ts as i64,
            Some(last) => last + (ts.wrapping_sub(last as u32) as i32) as i64,
        };
        if self.last.is_none_or(|l| ext > l) {
            self.last = Some(ext);
        }
        ext
    }

    pub fn reset(&mut self) {
        self.last = None;
    }
}

// ---------------------------------------------------------------------------------------------
// RTCP

pub const RTCP_SR: u8 = 200;
pub const RTCP_RR: u8 = 201;
pub const RTCP_SDES: u8 = 202;
pub const RTCP_BYE: u8 = 203;

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Fraction of packets lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed on the wire).
    pub cumulative_lost: i32,
    pub highest_sequence: u32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received from this source.
    pub last_sr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub delay_since_last_sr: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderReport {
    pub ssrc: u32,
    pub ntp_timestamp: u64,
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
    pub reports: Vec<ReportBlock>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverReport {
    pub ssrc: u32,
    pub reports: Vec<ReportBlock>,
}

/// One SDES chunk: a source and its items as (type, text); type 1 is CNAME.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesChunk {
    pub ssrc: u32,
    pub items: Vec<(u8, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    SenderReport(SenderReport),
    ReceiverReport(ReceiverReport),
    SourceDescription(Vec<SdesChunk>),
    Bye {
        sources: Vec<u32>,
        reason: Option<String>,
    },
    /// A type we do not use (APP, feedback…), kept so a compound packet still parses.
    Other {
        packet_type: u8,
    },
}

impl ReportBlock {
    fn parse(b: &[u8]) -> ReportBlock {
        let lost = u32::from_be_bytes([0, b[5], b[6], b[7]]);
        // Sign-extend the 24-bit field.
        let cumulative_lost = ((lost << 8) as i32) >> 8;
        ReportBlock {
            ssrc: read_u32(b, 0),
            fraction_lost: b[4],
            cumulative_lost,
            highest_sequence: read_u32(b, 8),
            jitter: read_u32(b, 12),
            last_sr: read_u32(b, 16),
            delay_since_last_sr: read_u32(b, 20),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
        out.push(self.fraction_lost);
        out.extend_from_slice(&lost.to_be_bytes()[1..]);
        out.extend_from_slice(&self.highest_sequence.to_be_bytes());
        out.extend_from_slice(&self.jitter.to_be_bytes());
        out.extend_from_slice(&self.last_sr.to_be_bytes());
        out.extend_from_slice(&self.delay_since_last_sr.to_be_bytes());
    }
}

/// Parses a compound RTCP packet (one datagram) into its parts.
pub fn parse_rtcp(buf: &[u8]) -> Result<Vec<RtcpPacket>, RtpError> {
    let mut packets = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        if rest.len() < 4 {
            return Err(RtpError::TooShort { len: rest.len(), needed: 4 });
        }
        let version = rest[0] >> 6;
        if version != 2 {
            return Err(RtpError::BadVersion(version));
        }
        let count = (rest[0] & 0x1f) as usize;
        let pt = rest[1];
        let len = (u16::from_be_bytes([rest[2], rest[3]]) as usize + 1) * 4;
        if rest.len() < len {
            return Err(RtpError::BadRtcpLength { pt, declared: len, available: rest.len() });
        }
        if packets.is_empty() && pt != RTCP_SR && pt != RTCP_RR {
            return Err(RtpError::BadCompoundStart(pt));
        }
        let mut body = &rest[4..len];
        if rest[0] & 0x20 != 0 {
            let padding = rest[len - 1] as usize;
            if padding > body.len() {
                return Err(RtpError::BadPadding { padding, len });
            }
            body = &body[..body.len() - padding];
        }
        packets.push(parse_one(pt, count, body)?);
        pos += len;
    }
    Ok(packets)
}

fn parse_blocks(body: &[u8], count: usize, pt: u8) -> Result<Vec<ReportBlock>, RtpError> {
    if body.len() < count * 24 {
        return Err(RtpError::BadRtcpLength { pt, declared: count * 24, available: body.len() });
    }
    Ok((0..count).map(|i| ReportBlock::parse(&body[i * 24..i * 24 + 24])).collect())
}

fn parse_one(pt: u8, count: usize, body: &[u8]) -> Result<RtcpPacket, RtpError> {
    match pt {
        RTCP_SR => {
            if body.len() < 24 {
                return Err(RtpError::TooShort { len: body.len() + 4, needed: 28 });
            }
            let ntp = ((read_u32(body, 4) as u64) << 32) | read_u32(body, 8) as u64;
            Ok(RtcpPacket::SenderReport(SenderReport {
                ssrc: read_u32(body, 0),
                ntp_timestamp: ntp,
                rtp_timestamp: read_u32(body, 12),
                packet_count: read_u32(body, 16),
                octet_count: read_u32(body, 20),
                reports: parse_blocks(&body[24..], count, pt)?,
            }))
        }
        RTCP_RR => {
            if body.len() < 4 {
                return Err(RtpError::TooShort { len: body.len() + 4, needed: 8 });
            }
            Ok(RtcpPacket::ReceiverReport(ReceiverReport {
                ssrc: read_u32(body, 0),
                reports: parse_blocks(&body[4..], count, pt)?,
            }))
        }
        RTCP_SDES => {
            let mut chunks = Vec::new();
            let mut pos = 0;
            for _ in 0..count {
                if body.len() < pos + 4 {
                    return Err(RtpError::TooShort { len: body.len(), needed: pos + 4 });
                }
                let ssrc = read_u32(body, pos);
                pos += 4;
                let mut items = Vec::new();
                loop {
                    let Some(&kind) = body.get(pos) else {
                        return Err(RtpError::TooShort { len: body.len(), needed: pos + 1 });
                    };
                    if kind == 0 {
                        // The list ends with a zero octet, then padding to the next 32-bit word.
                        pos = (pos + 4) & !3;
                        break;
                    }
                    let Some(&len) = body.get(pos + 1) else {
                        return Err(RtpError::TooShort { len: body.len(), needed: pos + 2 });
                    };
                    let end = pos + 2 + len as usize;
                    if body.len() < end {
                        return Err(RtpError::TooShort { len: body.len(), needed: end });
                    }
                    items.push((kind, String::from_utf8_lossy(&body[pos + 2..end]).into_owned()));
                    pos = end;
                }
                chunks.push(SdesChunk { ssrc, items });
            }
            Ok(RtcpPacket::SourceDescription(chunks))
        }
        RTCP_BYE => {
            if body.len() < count * 4 {
                return Err(RtpError::TooShort { len: body.len(), needed: count * 4 });
            }
            let sources = (0..count).map(|i| read_u32(body, i * 4)).collect();
            let rest = &body[count * 4..];
            let reason = match rest.first() {
                Some(&len) if rest.len() > len as usize => {
                    Some(String::from_utf8_lossy(&rest[1..1 + len as usize]).into_owned())
                }
                _ => None,
            };
            Ok(RtcpPacket::Bye { sources, reason })
        }
        other => Ok(RtcpPacket::Other { packet_type: other }),
    }
}

/// Appends a compound RTCP packet made of `packets` to `out`.
pub fn write_rtcp(packets: &[RtcpPacket], out: &mut Vec<u8>) {
    for packet in packets {
        let start = out.len();
        out.extend_from_slice(&[0x80, 0, 0, 0]);
        let (count, pt) = match packet {
            RtcpPacket::SenderReport(sr) => {
                out.extend_from_slice(&sr.ssrc.to_be_bytes());
                out.extend_from_slice(&sr.ntp_timestamp.to_be_bytes());
                out.extend_from_slice(&sr.rtp_timestamp.to_be_bytes());
                out.extend_from_slice(&sr.packet_count.to_be_bytes());
                out.extend_from_slice(&sr.octet_count.to_be_bytes());
                let n = sr.reports.len().min(31);
                sr.reports[..n].iter().for_each(|b| b.write(out));
                (n, RTCP_SR)
            }
            RtcpPacket::ReceiverReport(rr) => {
                out.extend_from_slice(&rr.ssrc.to_be_bytes());
                let n = rr.reports.len().min(31);
                rr.reports[..n].iter().for_each(|b| b.write(out));
                (n, RTCP_RR)
            }
            RtcpPacket::SourceDescription(chunks) => {
                let n = chunks.len().min(31);
                for chunk in &chunks[..n] {
                    out.extend_from_slice(&chunk.ssrc.to_be_bytes());
                    for (kind, text) in &chunk.items {
                        let bytes = &text.as_bytes()[..text.len().min(255)];
                        out.push(*kind);
                        out.push(bytes.len() as u8);
                        out.extend_from_slice(bytes);
                    }
                    // Terminating zero, then pad the chunk to a 32-bit boundary.
                    out.push(0);
                    while !(out.len() - start).is_multiple_of(4) {
                        out.push(0);
                    }
                }
                (n, RTCP_SDES)
            }
            RtcpPacket::Bye { sources, reason } => {
                let n = sources.len().min(31);
                sources[..n].iter().for_each(|s| out.extend_from_slice(&s.to_be_bytes()));
                if let Some(reason) = reason {
                    let bytes = &reason.as_bytes()[..reason.len().min(255)];
                    out.push(bytes.len() as u8);
                    out.extend_from_slice(bytes);
                    while !(out.len() - start).is_multiple_of(4) {
                        out.push(0);
                    }
                }
                (n, RTCP_BYE)
            }
            RtcpPacket::Other { .. } => {
                // We never send types we do not understand.
                out.truncate(start);
                continue;
            }
        };
        let words = (out.len() - start) / 4 - 1;
        out[start] = 0x80 | count as u8;
        out[start + 1] = pt;
        out[start + 2..start + 4].copy_from_slice(&(words as u16).to_be_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// Statistics

/// The NTP timestamp (RFC 3550 §4) of a wall-clock moment.
pub fn ntp_timestamp(at: SystemTime) -> u64 {
    const NTP_UNIX_OFFSET: u64 = 2_208_988_800;
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() + NTP_UNIX_OFFSET;
    let frac = ((since.subsec_nanos() as u64) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp, the unit of LSR and DLSR.
pub fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// Round-trip time from a report block about our stream, received at `arrival_ntp`
/// (RFC 3550 §6.4.1: A - LSR - DLSR). None when the peer has not yet seen an SR of ours.
pub fn round_trip(block: &ReportBlock, arrival_ntp: u64) -> Option<Duration> {
    if block.last_sr == 0 {
        return None;
    }
    let a = ntp_middle(arrival_ntp);
    let rtt = a.wrapping_sub(block.last_sr).wrapping_sub(block.delay_since_last_sr);
    // A negative result (clock trouble on the peer) wraps to a huge value: ignore it.
    if rtt > 0x8000_0000 {
        return None;
    }
    Some(Duration::from_micros((rtt as u64 * 1_000_000) >> 16))
}

const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
const MIN_SEQUENTIAL: u32 = 2;
const RTP_SEQ_MOD: u32 = 1 << 16;

/// What RFC 3550 A.1 decided about an arriving packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// In sequence (or acceptably reordered): use it.
    Valid,
    /// Still probing a new source, or a wild jump: do not play it yet.
    Probation,
}

/// Receiver-side statistics of one source: RFC 3550 A.1 (validation), A.3 (loss), A.8 (jitter).
#[derive(Debug, Clone)]
pub struct ReceiveStatistics {
    clock_rate: u32,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u32,
    expected_prior: u32,
    received_prior: u32,
    transit: Option<i64>,
    jitter: f64,
    started: bool,
    /// Middle bits of the last SR's NTP time and when it arrived (for LSR/DLSR).
    last_sr: Option<(u32, Duration)>,
    fraction_lost: u8,
}

impl ReceiveStatistics {
    pub fn new(clock_rate: u32) -> ReceiveStatistics {
        ReceiveStatistics {
            clock_rate,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter: 0.0,
            started: false,
            last_sr: None,
            fraction_lost: 0,
        }
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = seq as u32;
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// Records a packet that arrived `arrival` after the session's epoch.
    pub fn on_packet(&mut self, seq: u16, timestamp: u32, arrival: Duration) -> SequenceCheck {
        if !self.started {
            self.started = true;
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        let check = if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    SequenceCheck::Valid
                } else {
                    SequenceCheck::Probation
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
                SequenceCheck::Probation
            }
        } else if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += RTP_SEQ_MOD;
            }
            self.max_seq = seq;
            self.received += 1;
            SequenceCheck::Valid
        } else if udelta as u32 <= RTP_SEQ_MOD - MAX_MISORDER as u32 {
            if seq as u32 == self.bad_seq {
                // Two sequential packets after a jump: the source restarted.
                self.init_seq(seq);
                self.received += 1;
                SequenceCheck::Valid
            } else {
                self.bad_seq = (seq as u32 + 1) & (RTP_SEQ_MOD - 1);
                return SequenceCheck::Probation;
            }
        } else {
            // Duplicate or reordered.
            self.received += 1;
            SequenceCheck::Valid
        };
        if check == SequenceCheck::Valid {
            let arrival_units = (arrival.as_secs_f64() * self.clock_rate as f64) as i64;
            let transit = arrival_units - timestamp as i64;
            if let Some(prev) = self.transit {
                // Timestamps wrap: the difference of transits is small, so fold it.
                let d = ((transit - prev) as i32).unsigned_abs() as f64;
                self.jitter += (d - self.jitter) / 16.0;
            }
            self.transit = Some(transit);
        }
        check
    }

    /// Records the arrival of a sender report from this source.
    pub fn on_sender_report(&mut self, ntp: u64, arrival: Duration) {
        self.last_sr = Some((ntp_middle(ntp), arrival));
    }

    pub fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(self.max_seq as u32)
    }

    pub fn expected(&self) -> u32 {
        if self.received == 0 {
            return 0;
        }
        self.extended_max().wrapping_sub(self.base_seq).wrapping_add(1)
    }

    pub fn received(&self) -> u32 {
        self.received
    }

    /// Packets lost so far (may be negative with duplicates, per the RFC).
    pub fn cumulative_lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Jitter in timestamp units.
    pub fn jitter_units(&self) -> u32 {
        self.jitter as u32
    }

    pub fn jitter_ms(&self) -> f64 {
        self.jitter * 1000.0 / self.clock_rate as f64
    }

    /// The fraction lost reported in the last report block, in 1/256.
    pub fn fraction_lost(&self) -> u8 {
        self.fraction_lost
    }

    /// Makes the report block about this source and starts a new reporting interval.
    pub fn report_block(&mut self, ssrc: u32, now: Duration) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        self.expected_prior = expected;
        let received_interval = self.received.wrapping_sub(self.received_prior);
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        self.fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        let (last_sr, delay_since_last_sr) = match self.last_sr {
            Some((lsr, at)) => {
                let delay = now.saturating_sub(at);
                (lsr, ((delay.as_micros() << 16) / 1_000_000) as u32)
            }
            None => (0, 0),
        };
        ReportBlock {
            ssrc,
            fraction_lost: self.fraction_lost,
            cumulative_lost: self.cumulative_lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            highest_sequence: self.extended_max(),
            jitter: self.jitter_units(),
            last_sr,
            delay_since_last_sr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_round_trip_with_csrc_and_extension() {
        let header = RtpHeader {
            marker: true,
            payload_type: 111,
            sequence: 65535,
            timestamp: 0xdead_beef,
            ssrc: 0x1234_5678,
            csrc: vec![1, 2],
            extension: Some((0xbede, vec![1, 2, 3, 4])),
        };
        let mut buf = Vec::new();
        header.write(b"hello", &mut buf);
        assert_eq!(buf.len(), 12 + 8 + 8 + 5);
        let packet = RtpPacket::parse(&buf).unwrap();
        assert_eq!(packet.header, header);
        assert_eq!(packet.payload, b"hello");
    }

    #[test]
    fn rtp_known_bytes_and_padding() {
        // V=2 P=1 X=0 CC=0, M=0 PT=0, seq 1, ts 160, ssrc 1, payload 2 bytes + 2 padding.
        let buf = [0xa0, 0x00, 0, 1, 0, 0, 0, 160, 0, 0, 0, 1, 0xaa, 0xbb, 0x00, 0x02];
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(p.header.payload_type, 0);
        assert_eq!(p.header.sequence, 1);
        assert_eq!(p.header.timestamp, 160);
        assert_eq!(p.payload, &[0xaa, 0xbb]);
    }

    #[test]
    fn rtp_rejects_garbage() {
        assert!(matches!(RtpPacket::parse(&[0x80; 5]), Err(RtpError::TooShort { .. })));
        assert_eq!(RtpPacket::parse(&[0x40; 12]), Err(RtpError::BadVersion(1)));
        // CSRC count 15 but no room for them.
        assert!(matches!(RtpPacket::parse(&[0x8f; 12]), Err(RtpError::TooShort { .. })));
        // Padding longer than the payload.
        let mut buf = vec![0xa0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9];
        assert!(matches!(RtpPacket::parse(&buf), Err(RtpError::BadPadding { .. })));
        buf[12] = 0;
        assert!(matches!(RtpPacket::parse(&buf), Err(RtpError::BadPadding { .. })));
        // Extension header cut short.
        assert!(matches!(
            RtpPacket::parse(&[0x90, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Err(RtpError::TooShort { .. })
        ));
    }

    #[test]
    fn sequence_and_timestamp_unwrap_across_wrap() {
        let mut u = SequenceUnwrapper::default();
        assert_eq!(u.unwrap(65534), 65534);
        assert_eq!(u.unwrap(65535), 65535);
        assert_eq!(u.unwrap(0), 65536);
        assert_eq!(u.unwrap(65535), 65535, "a late packet from before the wrap");
        assert_eq!(u.unwrap(2), 65538);
        let mut t = TimestampUnwrapper::default();
        assert_eq!(t.unwrap(u32::MAX - 159), u32::MAX as i64 - 159);
        assert_eq!(t.unwrap(0), u32::MAX as i64 + 1);
        assert_eq!(t.unwrap(160), u32::MAX as i64 + 161);
    }

    #[test]
    fn rtcp_compound_round_trip() {
        let block = ReportBlock {
            ssrc: 7,
            fraction_lost: 12,
            cumulative_lost: -3,
            highest_sequence: 70_000,
            jitter: 44,
            last_sr: 0x1234_5678,
            delay_since_last_sr: 65536,
        };
        let packets = vec![
            RtcpPacket::SenderReport(SenderReport {
                ssrc: 1,
                ntp_timestamp: 0x0102_0304_0506_0708,
                rtp_timestamp: 99,
                packet_count: 10,
                octet_count: 1600,
                reports: vec![block],
            }),
            RtcpPacket::SourceDescription(vec![SdesChunk { ssrc: 1, items: vec![(1, "op@clinic".into())] }]),
            RtcpPacket::Bye { sources: vec![1], reason: Some("hang up".into()) },
        ];
        let mut buf = Vec::new();
        write_rtcp(&packets, &mut buf);
        assert_eq!(buf.len() % 4, 0);
        assert!(is_rtcp(&buf));
        assert_eq!(parse_rtcp(&buf).unwrap(), packets);

        let rr = vec![RtcpPacket::ReceiverReport(ReceiverReport { ssrc: 5, reports: vec![] })];
        buf.clear();
        write_rtcp(&rr, &mut buf);
        assert_eq!(buf, [0x80, 201, 0, 1, 0, 0, 0, 5]);
        assert_eq!(parse_rtcp(&buf).unwrap(), rr);
    }

    #[test]
    fn rtcp_rejects_garbage() {
        assert!(parse_rtcp(&[0x80, 201, 0, 9, 0, 0, 0, 5]).is_err(), "length beyond the datagram");
        assert!(parse_rtcp(&[0x80, 202, 0, 0]).is_err(), "compound must start with SR/RR");
        assert!(parse_rtcp(&[0x81, 201, 0, 1, 0, 0, 0, 5]).is_err(), "report count without blocks");
        // SDES item running past the end.
        let mut buf = Vec::new();
        write_rtcp(&[RtcpPacket::ReceiverReport(ReceiverReport { ssrc: 5, reports: vec![] })], &mut buf);
        buf.extend_from_slice(&[0x81, 202, 0, 2, 0, 0, 0, 1, 1, 200, 0, 0]);
        assert!(parse_rtcp(&buf).is_err());
    }

    #[test]
    fn statistics_count_loss_and_jitter() {
        let mut stats = ReceiveStatistics::new(8000);
        let mut lost = 0;
        for i in 0u32..100 {
            let seq = (65500u32 + i) as u16; // crosses the wrap
            if i % 10 == 5 {
                lost += 1;
                continue;
            }
            // Arrival alternates 0 and +5 ms around the nominal 20 ms spacing: |D| = 40 units.
            let arrival = Duration::from_millis(20 * i as u64 + if i % 2 == 0 { 0 } else { 5 });
            stats.on_packet(seq, 160 * i, arrival);
        }
        assert_eq!(stats.cumulative_lost(), lost);
        assert_eq!(stats.expected(), 100 - 1, "the first packet is spent on probation");
        let block = stats.report_block(9, Duration::from_secs(3));
        assert_eq!(block.cumulative_lost, 10);
        assert_eq!(block.fraction_lost, (10 * 256 / 99) as u8);
        assert_eq!(block.highest_sequence, 65536 + ((65500u32 + 99) as u16) as u32);
        // Jitter converges towards |D| = 40 units (5 ms at 8 kHz).
        assert!(stats.jitter_units() > 30 && stats.jitter_units() <= 40, "{}", stats.jitter_units());
        // A second interval without loss reports fraction 0.
        for i in 100u32..150 {
            stats.on_packet((65500u32 + i) as u16, 160 * i, Duration::from_millis(20 * i as u64));
        }
        assert_eq!(stats.report_block(9, Duration::from_secs(4)).fraction_lost, 0);
    }

    #[test]
    fn round_trip_from_lsr_and_dlsr() {
        let sent = ntp_timestamp(UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        let arrival = ntp_timestamp(UNIX_EPOCH + Duration::from_millis(1_700_000_000_250));
        // The peer held our SR for 200 ms before answering: RTT is 50 ms.
        let block =
            ReportBlock { last_sr: ntp_middle(sent), delay_since_last_sr: 200 * 65536 / 1000, ..Default::default() };
        let rtt = round_trip(&block, arrival).unwrap();
        assert!((rtt.as_secs_f64() * 1000.0 - 50.0).abs() < 0.1, "{rtt:?}");
        assert_eq!(round_trip(&ReportBlock::default(), arrival), None);
    }

    #[test]
    fn sender_report_feeds_lsr_dlsr() {
        let mut stats = ReceiveStatistics::new(8000);
        stats.on_packet(1, 0, Duration::ZERO);
        stats.on_packet(2, 160, Duration::from_millis(20));
        stats.on_sender_report(0x0000_1234_5678_0000, Duration::from_secs(1));
        let block = stats.report_block(1, Duration::from_millis(1500));
        assert_eq!(block.last_sr, 0x1234_5678);
        assert_eq!(block.delay_since_last_sr, 32768);
    }
}
