//! DTMF as RTP telephone-events (RFC 4733).
//!
//! IVRs and clinics' switchboards ask callers to "press 1": the digits must arrive exactly
//! once, whatever the network does. The sender keeps one timestamp per event, grows its
//! duration packet by packet, marks the first packet and ends with three end packets; the
//! receiver reports each digit once even when the start is lost or the end repeated.

use std::collections::VecDeque;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DtmfError {
    #[error("`{0}` is not a DTMF digit: use 0-9, *, # or A-D")]
    BadDigit(char),
}

/// The RFC 4733 event code of a digit.
pub fn event_code(digit: char) -> Result<u8, DtmfError> {
    match digit.to_ascii_uppercase() {
        d @ '0'..='9' => Ok(d as u8 - b'0'),
        '*' => Ok(10),
        '#' => Ok(11),
        d @ 'A'..='D' => Ok(d as u8 - b'A' + 12),
        other => Err(DtmfError::BadDigit(other)),
    }
}

/// The digit of an RFC 4733 event code (None for flash and other events).
pub fn digit_of(code: u8) -> Option<char> {
    match code {
        0..=9 => Some((b'0' + code) as char),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some((b'A' + code - 12) as char),
        _ => None,
    }
}

/// A telephone-event payload (4 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    /// Power level in −dBm0 (0–63).
    pub volume: u8,
    /// In timestamp units since the event's timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    pub fn parse(payload: &[u8]) -> Option<TelephoneEvent> {
        if payload.len() < 4 {
            return None;
        }
        Some(TelephoneEvent {
            event: payload[0],
            end: payload[1] & 0x80 != 0,
            volume: payload[1] & 0x3f,
            duration: u16::from_be_bytes([payload[2], payload[3]]),
        })
    }

    pub fn to_bytes(self) -> [u8; 4] {
        let d = self.duration.to_be_bytes();
        [self.event, ((self.end as u8) << 7) | (self.volume & 0x3f), d[0], d[1]]
    }
}

/// One packet to send: the session adds sequence number, SSRC and payload type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    pub marker: bool,
    pub timestamp: u32,
    pub event: TelephoneEvent,
}

struct Sending {
    event: u8,
    timestamp: u32,
    duration: u32,
    total: u32,
    ends_sent: u8,
}

/// Turns queued digits into telephone-event packets, one call per packetisation interval.
pub struct DtmfSender {
    queue: VecDeque<u8>,
    current: Option<Sending>,
    step: u32,
    digit_units: u32,
    gap_ticks: u32,
    gap_left: u32,
    volume: u8,
}

impl DtmfSender {
    /// `clock_rate` of the telephone-event payload, `ptime_ms` between packets.
    pub fn new(clock_rate: u32, ptime_ms: u32) -> DtmfSender {
        let step = clock_rate * ptime_ms / 1000;
        DtmfSender {
            queue: VecDeque::new(),
            current: None,
            step,
            // 100 ms tones with 60 ms pauses: what switchboards reliably detect.
            digit_units: clock_rate / 10,
            gap_ticks: 60u32.div_ceil(ptime_ms.max(1)),
            gap_left: 0,
            volume: 10,
        }
    }

    /// Queues digits; all are checked before any is queued.
    pub fn queue(&mut self, digits: &str) -> Result<(), DtmfError> {
        let codes = digits.chars().filter(|c| !c.is_whitespace()).map(event_code).collect::<Result<Vec<_>, _>>()?;
        self.queue.extend(codes);
        Ok(())
    }

    /// True while a digit is being sent (audio is suppressed meanwhile) or waits.
    pub fn is_busy(&self) -> bool {
        self.current.is_some() || !self.queue.is_empty()
    }

    /// The packet for this interval, if any; `audio_ts` is the stream's timestamp now.
    pub fn tick(&mut self, audio_ts: u32) -> Option<DtmfPacket> {
        if let Some(cur) = &mut self.current {
            if cur.duration >= cur.total {
                // The end packet, three times.
                cur.ends_sent += 1;
                let packet = DtmfPacket {
                    marker: false,
                    timestamp: cur.timestamp,
                    event: TelephoneEvent {
                        event: cur.event,
                        end: true,
                        volume: self.volume,
                        duration: cur.total.min(u16::MAX as u32) as u16,
                    },
                };
                if cur.ends_sent >= 3 {
                    self.current = None;
                    self.gap_left = self.gap_ticks;
                }
                return Some(packet);
            }
            cur.duration = (cur.duration + self.step).min(cur.total);
            if cur.duration >= cur.total {
                // The packet that reaches the full duration is the first end packet.
                cur.ends_sent = 1;
            }
            return Some(DtmfPacket {
                marker: false,
                timestamp: cur.timestamp,
                event: TelephoneEvent {
                    event: cur.event,
                    end: cur.ends_sent > 0,
                    volume: self.volume,
                    duration: cur.duration.min(u16::MAX as u32) as u16,
                },
            });
        }
        if self.gap_left > 0 {
            self.gap_left -= 1;
            return None;
        }
        let event = self.queue.pop_front()?;
        let total = self.digit_units.max(self.step);
        self.current = Some(Sending { event, timestamp: audio_ts, duration: self.step, total, ends_sent: 0 });
        Some(DtmfPacket {
            marker: true,
            timestamp: audio_ts,
            event: TelephoneEvent { event, end: false, volume: self.volume, duration: self.step as u16 },
        })
    }
}

/// Reports each received digit once.
#[derive(Default)]
pub struct DtmfReceiver {
    /// (timestamp, event) of recent events, to recognise their repeats.
    recent: VecDeque<(u32, u8)>,
    last: Option<(u32, u8, u16, bool)>,
}

impl DtmfReceiver {
    pub fn new() -> DtmfReceiver {
        DtmfReceiver::default()
    }

    /// Takes a telephone-event packet; returns the digit the first time its event is seen.
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let ev = TelephoneEvent::parse(payload)?;
        let key = (timestamp, ev.event);
        if self.recent.contains(&key) {
            if let Some(last) = &mut self.last
                && (last.0, last.1) == key
            {
                last.2 = last.2.max(ev.duration);
                last.3 |= ev.end;
            }
            return None;
        }
        // A long event continues under a new timestamp once its duration field would
        // overflow (RFC 4733 §2.5.1.3): the same key pressed on.
        let continues = matches!(self.last, Some((ts, event, duration, false))
            if event == ev.event && timestamp == ts.wrapping_add(duration as u32));
        self.recent.push_back(key);
        if self.recent.len() > 16 {
            self.recent.pop_front();
        }
        self.last = Some((timestamp, ev.event, ev.duration, ev.end));
        if continues {
            return None;
        }
        digit_of(ev.event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send_all(sender: &mut DtmfSender, ticks: usize) -> Vec<DtmfPacket> {
        let mut ts = 1000u32;
        let mut packets = Vec::new();
        for _ in 0..ticks {
            if let Some(p) = sender.tick(ts) {
                packets.push(p);
            }
            ts = ts.wrapping_add(160);
        }
        packets
    }

    #[test]
    fn codes_and_digits() {
        assert_eq!(event_code('5'), Ok(5));
        assert_eq!(event_code('*'), Ok(10));
        assert_eq!(event_code('#'), Ok(11));
        assert_eq!(event_code('d'), Ok(15));
        assert_eq!(event_code('x'), Err(DtmfError::BadDigit('X')));
        for code in 0..16 {
            assert_eq!(event_code(digit_of(code).unwrap()), Ok(code));
        }
        assert_eq!(digit_of(16), None);
    }

    #[test]
    fn payload_round_trip() {
        let ev = TelephoneEvent { event: 11, end: true, volume: 10, duration: 800 };
        assert_eq!(ev.to_bytes(), [11, 0x8a, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&ev.to_bytes()), Some(ev));
        assert_eq!(TelephoneEvent::parse(&[1, 2]), None);
    }

    #[test]
    fn sender_timestamps_durations_marker_and_three_ends() {
        let mut sender = DtmfSender::new(8000, 20);
        assert!(sender.queue("1x").is_err());
        assert!(!sender.is_busy(), "a bad string queues nothing");
        sender.queue("12").unwrap();
        let packets = send_all(&mut sender, 40);
        let first: Vec<_> = packets.iter().filter(|p| p.event.event == 1).collect();
        let ts = first[0].timestamp;
        assert!(first.iter().all(|p| p.timestamp == ts), "one timestamp for the whole event");
        assert!(first[0].marker && first[1..].iter().all(|p| !p.marker));
        let durations: Vec<u16> = first.iter().map(|p| p.event.duration).collect();
        assert_eq!(durations, [160, 320, 480, 640, 800, 800, 800]);
        let ends: Vec<bool> = first.iter().map(|p| p.event.end).collect();
        assert_eq!(ends, [false, false, false, false, true, true, true]);
        assert!(first.iter().all(|p| p.event.volume == 10));
        let second: Vec<_> = packets.iter().filter(|p| p.event.event == 2).collect();
        assert_eq!(second.len(), 7);
        assert!(second[0].marker);
        // The second digit starts after a pause, at the stream's timestamp of that moment.
        assert!(second[0].timestamp >= ts + 7 * 160 + 3 * 160, "{} vs {ts}", second[0].timestamp);
        assert!(!sender.is_busy());
    }

    #[test]
    fn receiver_reports_once_despite_repeats_and_losses() {
        let mut sender = DtmfSender::new(8000, 20);
        sender.queue("5#5").unwrap();
        let packets = send_all(&mut sender, 60);
        let mut rx = DtmfReceiver::new();
        let mut got = String::new();
        for (i, p) in packets.iter().enumerate() {
            // Lose the first packet of the first event; send every end packet twice.
            if i == 0 {
                continue;
            }
            for _ in 0..if p.event.end { 2 } else { 1 } {
                if let Some(d) = rx.on_packet(p.timestamp, &p.event.to_bytes()) {
                    got.push(d);
                }
            }
        }
        assert_eq!(got, "5#5");
        // Only the end packets of an event arrive: still reported, once.
        let mut rx = DtmfReceiver::new();
        let end = TelephoneEvent { event: 3, end: true, volume: 10, duration: 800 }.to_bytes();
        assert_eq!(rx.on_packet(99, &end), Some('3'));
        assert_eq!(rx.on_packet(99, &end), None);
        assert_eq!(rx.on_packet(99, &[1]), None, "a short payload is ignored");
    }

    #[test]
    fn long_event_continuation_is_not_a_new_digit() {
        let mut rx = DtmfReceiver::new();
        let seg1 = TelephoneEvent { event: 0, end: false, volume: 10, duration: 65535 }.to_bytes();
        let seg2 = TelephoneEvent { event: 0, end: true, volume: 10, duration: 800 }.to_bytes();
        assert_eq!(rx.on_packet(1000, &seg1), Some('0'));
        assert_eq!(rx.on_packet(1000 + 65535, &seg2), None);
    }
}
