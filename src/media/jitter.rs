//! The adaptive jitter buffer: packets in, one 20 ms frame of audio out per tick.
//!
//! Why adaptive: a fixed buffer is either too small for a jittery Wi-Fi link (drop-outs) or
//! adds 100–200 ms to every call on a clean one (operators talking over each other). We
//! measure each packet's transit time relative to the fastest packet seen lately; the target
//! delay is the 95th percentile of that spread plus a small margin, raised at once when
//! jitter grows (fast attack) and lowered gradually when it calms (slow decay).
//!
//! The playout clock is the caller's tick. The buffer grows by inserting one concealed frame
//! and shrinks by merging two frames into one with a cross-fade (preferably in quiet audio),
//! so neither clicks. A frame that is missing at its turn is recovered from the next packet's
//! FEC when the codec has it, or concealed.
//!
//! Two units meet here: packets are keyed and scheduled by RTP timestamp (ticks of the
//! stream's clock), audio is counted in PCM samples. They differ for G.722 (two samples a
//! tick), so every step from one to the other goes through [`MediaClock`].

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use super::codec::{Codec, MediaClock};
use super::rtp::{SequenceUnwrapper, TimestampUnwrapper};

/// Tunables; the defaults suit 20 ms speech frames.
#[derive(Debug, Clone)]
pub struct JitterConfig {
    /// RTP clock rate of the stream.
    pub clock_rate: u32,
    /// PCM rate of the decoded audio (the clock rate but for G.722).
    pub sample_rate: u32,
    /// PCM samples per output frame (20 ms at the sample rate).
    pub frame_samples: usize,
    /// How long transit observations count for the percentile.
    pub window: Duration,
    /// Added on top of the measured spread, for scheduling noise.
    pub margin_ms: f64,
    /// The target never goes above this.
    pub max_delay_ms: f64,
    /// How fast the target falls back once jitter calms, in ms per second.
    pub decay_ms_per_s: f64,
}

impl JitterConfig {
    /// A stream whose RTP clock is its sample rate.
    pub fn new(clock_rate: u32, frame_samples: usize) -> JitterConfig {
        JitterConfig::with_clock(MediaClock::same(clock_rate), frame_samples)
    }

    /// A stream of a codec with these clocks (see [`MediaClock`]).
    pub fn with_clock(clock: MediaClock, frame_samples: usize) -> JitterConfig {
        JitterConfig {
            clock_rate: clock.rtp_rate,
            sample_rate: clock.sample_rate,
            frame_samples,
            window: Duration::from_secs(3),
            margin_ms: 5.0,
            max_delay_ms: 400.0,
            decay_ms_per_s: 20.0,
        }
    }
}

/// What one `pop` produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playout {
    /// No packet yet: silence.
    Idle,
    /// Real audio decoded from the packets.
    Normal,
    /// A lost frame rebuilt from the next packet's FEC.
    Fec,
    /// A lost or late frame concealed.
    Concealed,
    /// The sender paused (Opus DTX: no packet is missing by sequence): comfort noise.
    Paused,
    /// Nothing buffered at the frame's turn: late, lost, or a pause not yet known as one.
    Underrun,
    /// A frame inserted to raise the delay.
    Stretched,
    /// Two frames merged into one to lower the delay.
    Shrunk,
}

/// Counters for the figures and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub frames_played: u64,
    pub frames_concealed: u64,
    pub frames_fec: u64,
    pub frames_paused: u64,
    pub frames_underrun: u64,
    pub frames_inserted: u64,
    pub frames_dropped: u64,
    pub packets_late: u64,
    pub packets_duplicate: u64,
    pub resets: u64,
    /// Longest run of consecutive concealed or underrun frames.
    pub longest_concealment: u64,
}

struct Stored {
    seq: i64,
    payload: Vec<u8>,
}

/// Jitter buffer plus playout of one received stream.
pub struct JitterBuffer {
    cfg: JitterConfig,
    packets: BTreeMap<i64, Stored>,
    unwrap: TimestampUnwrapper,
    seq_unwrap: SequenceUnwrapper,
    highest_seq: Option<i64>,
    last_played_seq: Option<i64>,
    /// Extended timestamp of the next sample to play.
    next_ts: Option<i64>,
    epoch: Option<Instant>,
    transits: VecDeque<(Instant, f64)>,
    scratch_sorted: Vec<f64>,
    min_transit: f64,
    raw_target_ms: f64,
    target_ms: f64,
    last_decay: Option<Instant>,
    delay_ms: f64,
    ready: VecDeque<i16>,
    decoded: Vec<i16>,
    second: Vec<i16>,
    started: bool,
    last_quiet: bool,
    frames_since_shrink: u32,
    /// When a packet was last missing at its turn (not late: lost).
    last_loss: Option<Instant>,
    /// The newest packets in sequence that came behind the playout point:
    /// the transit of the last one (ms) and how many in a row.
    behind: Option<(f64, u32)>,
    concealed_run: u64,
    stats: JitterStats,
}

/// Below this RMS a frame counts as quiet (about −40 dBFS): a good place to drop one.
const QUIET_RMS: f64 = 330.0;
/// Drop a frame of sound (not silence) at most this often, in frames.
const SHRINK_SPACING: u32 = 10;
/// How long after a loss the buffer keeps the extra frame for FEC.
const LOSSY_HOLD: Duration = Duration::from_secs(10);
/// A timestamp this far from the playout point means the source restarted.
const RESYNC_SECONDS: i64 = 2;

impl JitterBuffer {
    pub fn new(cfg: JitterConfig) -> JitterBuffer {
        let frame = cfg.frame_samples;
        JitterBuffer {
            target_ms: cfg.margin_ms,
            raw_target_ms: cfg.margin_ms,
            cfg,
            packets: BTreeMap::new(),
            unwrap: TimestampUnwrapper::default(),
            seq_unwrap: SequenceUnwrapper::default(),
            highest_seq: None,
            last_played_seq: None,
            next_ts: None,
            epoch: None,
            transits: VecDeque::new(),
            scratch_sorted: Vec::new(),
            min_transit: 0.0,
            last_decay: None,
            delay_ms: 0.0,
            ready: VecDeque::with_capacity(frame * 4),
            decoded: Vec::with_capacity(frame * 6),
            second: Vec::with_capacity(frame * 6),
            started: false,
            last_quiet: true,
            frames_since_shrink: 0,
            last_loss: None,
            behind: None,
            concealed_run: 0,
            stats: JitterStats::default(),
        }
    }

    /// The delay the buffer currently adds (ms): how long after the fastest packets'
    /// arrival their audio is played.
    pub fn delay_ms(&self) -> f64 {
        self.delay_ms
    }

    /// The delay the buffer is steering towards (ms).
    pub fn target_ms(&self) -> f64 {
        self.target_ms
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    fn frame_ms(&self) -> f64 {
        self.cfg.frame_samples as f64 * 1000.0 / self.cfg.sample_rate as f64
    }

    /// The RTP timestamp units that `samples` of PCM span.
    fn ticks(&self, samples: usize) -> i64 {
        MediaClock { sample_rate: self.cfg.sample_rate, rtp_rate: self.cfg.clock_rate }.ticks(samples)
    }

    fn ts_ms(&self, ts: i64) -> f64 {
        ts as f64 * 1000.0 / self.cfg.clock_rate as f64
    }

    /// Forgets the stream (new source, long hold): the next packet starts playout afresh.
    pub fn reset(&mut self) {
        self.packets.clear();
        self.unwrap.reset();
        self.seq_unwrap = SequenceUnwrapper::default();
        self.highest_seq = None;
        self.last_played_seq = None;
        self.next_ts = None;
        self.epoch = None;
        self.transits.clear();
        self.ready.clear();
        self.target_ms = self.cfg.margin_ms;
        self.raw_target_ms = self.cfg.margin_ms;
        self.behind = None;
        self.stats.resets += 1;
    }

    /// Takes an arriving packet's sequence number, timestamp and payload.
    pub fn push(&mut self, sequence: u16, timestamp: u32, payload: &[u8], arrival: Instant) {
        let mut ts = self.unwrap.unwrap(timestamp);
        if let Some(next) = self.next_ts {
            let far = RESYNC_SECONDS * self.cfg.clock_rate as i64;
            if ts > next + far || ts < next - far {
                self.reset();
                ts = self.unwrap.unwrap(timestamp);
            }
        }
        let seq = self.seq_unwrap.unwrap(sequence);
        let newest = self.highest_seq.is_some_and(|h| seq > h);
        match self.highest_seq {
            // A hole in the sequence: the network loses (or reorders) packets.
            Some(h) if seq > h + 1 => self.last_loss = Some(arrival),
            _ => {}
        }
        self.highest_seq = Some(self.highest_seq.map_or(seq, |h| h.max(seq)));
        let epoch = *self.epoch.get_or_insert(arrival);
        let transit = arrival.saturating_duration_since(epoch).as_secs_f64() * 1000.0 - self.ts_ms(ts);
        self.observe_transit(arrival, transit);

        match self.next_ts {
            Some(next) if ts < next => {
                self.stats.packets_late += 1;
                if newest && self.timestamps_jumped_back(transit) {
                    // The sender's clock stepped back (Asterisk does on a re-INVITE or a
                    // transfer, keeping its SSRC): every packet from now on would be
                    // "late" for the rest of the call. Start the playout afresh here.
                    self.reset();
                    self.push(sequence, timestamp, payload, arrival);
                }
                return;
            }
            None => self.next_ts = Some(ts),
            _ => self.behind = None,
        }
        if self.packets.contains_key(&ts) {
            self.stats.packets_duplicate += 1;
            return;
        }
        // A peer sending faster than we play: keep the buffer bounded, oldest go first.
        if self.packets.len() >= 200 {
            self.packets.pop_first();
        }
        self.packets.insert(ts, Stored { seq, payload: payload.to_vec() });
    }

    /// Whether the newest packets coming behind the playout point show a step
    /// back of the sender's timestamps rather than a late network: three in a
    /// row with the same transit (arrival − timestamp, within half a frame).
    /// After a step every packet is shifted alike; packets the network held
    /// back come in a burst whose transits fall a frame apart, or alone.
    fn timestamps_jumped_back(&mut self, transit: f64) -> bool {
        let tolerance = self.frame_ms() / 2.0;
        let run = match self.behind {
            Some((t, n)) if (t - transit).abs() <= tolerance => n + 1,
            _ => 1,
        };
        self.behind = Some((transit, run));
        run >= 3
    }

    fn observe_transit(&mut self, arrival: Instant, transit: f64) {
        self.transits.push_back((arrival, transit));
        while let Some(&(t, _)) = self.transits.front() {
            if arrival.saturating_duration_since(t) > self.cfg.window || self.transits.len() > 1000 {
                self.transits.pop_front();
            } else {
                break;
            }
        }
        self.min_transit = self.transits.iter().map(|&(_, t)| t).fold(f64::INFINITY, f64::min);
        self.scratch_sorted.clear();
        self.scratch_sorted.extend(self.transits.iter().map(|&(_, t)| t - self.min_transit));
        let n = self.scratch_sorted.len();
        let k = ((n as f64 * 0.95).ceil() as usize).clamp(1, n) - 1;
        let (_, p95, _) = self.scratch_sorted.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
        let raw = (*p95 + self.cfg.margin_ms).min(self.cfg.max_delay_ms);
        self.raw_target_ms = raw;
        // Fast attack.
        if raw > self.target_ms {
            self.target_ms = raw;
        }
    }

    fn decay_target(&mut self, now: Instant) {
        let dt = match self.last_decay {
            Some(t) => now.saturating_duration_since(t).as_secs_f64(),
            None => 0.0,
        };
        self.last_decay = Some(now);
        // The percentile as of the last arrival; between arrivals it cannot change.
        let raw = self.raw_target_ms;
        if self.target_ms > raw {
            self.target_ms = (self.target_ms - self.cfg.decay_ms_per_s * dt).max(raw);
        }
    }

    /// Appends exactly one frame of audio for the tick at `now`, decoding with `codec`.
    pub fn pop(&mut self, now: Instant, codec: &mut dyn Codec, out: &mut Vec<i16>) -> Playout {
        let frame = self.cfg.frame_samples;
        let Some(next) = self.next_ts else {
            out.resize(out.len() + frame, 0);
            return Playout::Idle;
        };
        self.decay_target(now);
        let epoch = self.epoch.unwrap_or(now);
        let now_ms = now.saturating_duration_since(epoch).as_secs_f64() * 1000.0;
        // Audio already decoded but not yet played counts as not yet played.
        let playing_ts = next - self.ticks(self.ready.len());
        self.delay_ms = now_ms - (self.ts_ms(playing_ts) + self.min_transit);
        self.frames_since_shrink = self.frames_since_shrink.saturating_add(1);

        // While the network loses packets, hold one frame more so that a loss can be rebuilt
        // from the FEC in the packet after it.
        let lossy = self.last_loss.is_some_and(|t| now.saturating_duration_since(t) < LOSSY_HOLD);
        let fec_extra = if lossy && codec.has_fec() { self.frame_ms() } else { 0.0 };
        let mut kind = Playout::Normal;
        if self.ready.len() < frame {
            kind = self.fill(codec, frame, fec_extra);
        }
        let start = out.len();
        out.extend(self.ready.drain(..frame.min(self.ready.len())));
        out.resize(start + frame, 0);
        let energy = out[start..].iter().map(|&s| (s as f64) * (s as f64)).sum::<f64>() / frame as f64;
        self.last_quiet = energy.sqrt() < QUIET_RMS;
        match kind {
            Playout::Concealed | Playout::Underrun => {
                self.concealed_run += 1;
                self.stats.longest_concealment = self.stats.longest_concealment.max(self.concealed_run);
            }
            Playout::Idle => {}
            _ => self.concealed_run = 0,
        }
        match kind {
            Playout::Normal => self.stats.frames_played += 1,
            Playout::Concealed => self.stats.frames_concealed += 1,
            Playout::Underrun => self.stats.frames_underrun += 1,
            Playout::Paused => self.stats.frames_paused += 1,
            Playout::Fec => self.stats.frames_fec += 1,
            Playout::Stretched => self.stats.frames_inserted += 1,
            Playout::Shrunk => self.stats.frames_dropped += 1,
            _ => {}
        }
        kind
    }

    fn fill(&mut self, codec: &mut dyn Codec, frame: usize, fec_extra: f64) -> Playout {
        let frame_ms = self.frame_ms();
        let Some(mut next) = self.next_ts else { return Playout::Idle };
        // The frame's length on the timestamp axis.
        let frame_ts = self.ticks(frame);
        if !self.packets.contains_key(&next)
            && let Some((&ahead, _)) = self.packets.range(next + 1..next + frame_ts).next()
        {
            // The sender's timestamps stepped forward by other than whole frames
            // (same SSRC): no packet would ever sit exactly at the playout point
            // again. Move the point onto the packets' grid.
            next = ahead;
            self.next_ts = Some(ahead);
            // The transits before the step are off by the step: forget them, or
            // the buffer would keep its length as delay for a whole window.
            self.transits.clear();
            self.target_ms = self.cfg.margin_ms;
            self.raw_target_ms = self.cfg.margin_ms;
        }
        let target = self.target_ms + fec_extra;
        // Too little delay: play a concealed frame and keep the packet for the next tick.
        if self.delay_ms < target {
            self.decoded.clear();
            if self.started
                && let Err(e) = codec.conceal(frame, &mut self.decoded)
            {
                tracing::debug!("concealment failed: {e}");
            }
            self.decoded.resize(frame, 0);
            self.ready.extend(self.decoded.iter().copied());
            return if self.started { Playout::Stretched } else { Playout::Idle };
        }
        // Too much delay: merge two frames into one, in quiet audio or now and then.
        if self.started
            && self.delay_ms - frame_ms >= target + 5.0
            && (self.last_quiet || self.frames_since_shrink >= SHRINK_SPACING)
            && self.packets.contains_key(&next)
            && self.packets.contains_key(&(next + frame_ts))
            && self.shrink(codec, next, frame)
        {
            self.frames_since_shrink = 0;
            return Playout::Shrunk;
        }
        self.decoded.clear();
        if let Some(stored) = self.packets.remove(&next) {
            match codec.decode(&stored.payload, &mut self.decoded) {
                Ok(n) if n > 0 => {
                    self.started = true;
                    self.last_played_seq = Some(stored.seq);
                    self.next_ts = Some(next + self.ticks(n));
                    self.ready.extend(self.decoded.iter().copied());
                    return Playout::Normal;
                }
                Ok(_) | Err(_) => {
                    // An undecodable packet is as good as lost.
                    self.decoded.clear();
                }
            }
        }
        self.next_ts = Some(next + frame_ts);
        if !self.started {
            self.ready.extend(std::iter::repeat_n(0, frame));
            return Playout::Idle;
        }
        let later_seq = self.packets.range(next + 1..).next().map(|(_, p)| p.seq);
        let paused = matches!((later_seq, self.last_played_seq), (Some(l), Some(p)) if l == p + 1);
        if !paused && let Some(following) = self.packets.get(&(next + frame_ts)) {
            if let Ok(true) = codec.decode_fec(&following.payload, frame, &mut self.decoded) {
                self.ready.extend(self.decoded.iter().copied());
                return Playout::Fec;
            }
            self.decoded.clear();
        }
        // Opus makes comfort noise from the same call during a pause; G.711 fades out.
        if let Err(e) = codec.conceal(frame, &mut self.decoded) {
            tracing::debug!("concealment failed: {e}");
        }
        self.decoded.resize(frame, 0);
        self.ready.extend(self.decoded.iter().copied());
        match later_seq {
            _ if paused => Playout::Paused,
            Some(_) => Playout::Concealed,
            None => Playout::Underrun,
        }
    }

    fn shrink(&mut self, codec: &mut dyn Codec, next: i64, frame: usize) -> bool {
        let frame_ts = self.ticks(frame);
        let (Some(a), Some(b)) = (self.packets.remove(&next), self.packets.remove(&(next + frame_ts))) else {
            return false;
        };
        self.decoded.clear();
        self.second.clear();
        let ok_a = matches!(codec.decode(&a.payload, &mut self.decoded), Ok(n) if n == frame);
        let ok_b = matches!(codec.decode(&b.payload, &mut self.second), Ok(n) if n == frame);
        if !(ok_a && ok_b) {
            // Odd packet sizes: fall back to playing what decoded, without merging.
            self.next_ts = Some(next + 2 * frame_ts);
            self.decoded.extend_from_slice(&self.second);
            self.ready.extend(self.decoded.iter().copied());
            return true;
        }
        self.last_played_seq = Some(b.seq);
        for (i, (x, y)) in self.decoded.iter().zip(&self.second).enumerate() {
            let w = (i as f32 + 0.5) / frame as f32;
            self.ready.push_back((*x as f32 * (1.0 - w) + *y as f32 * w) as i16);
        }
        self.next_ts = Some(next + 2 * frame_ts);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::CodecKind;

    /// A deterministic pseudo-random sequence in [0, 1).
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    struct Sim {
        codec: Box<dyn Codec>,
        jb: JitterBuffer,
        start: Instant,
        payloads: Vec<Vec<u8>>,
        out: Vec<i16>,
        kinds: Vec<Playout>,
        delays: Vec<f64>,
    }

    impl Sim {
        fn new(kind: CodecKind, seconds: usize) -> Sim {
            let mut encoder = kind.build(20).unwrap();
            let frame = encoder.frame_samples();
            let rate = kind.sample_rate() as f32;
            let frames = seconds * 50;
            let payloads = (0..frames)
                .map(|f| {
                    let pcm: Vec<i16> = (0..frame)
                        .map(|i| {
                            let t = (f * frame + i) as f32 / rate;
                            (8000.0 * (2.0 * std::f32::consts::PI * 440.0 * t).sin()) as i16
                        })
                        .collect();
                    let mut p = Vec::new();
                    encoder.encode(&pcm, &mut p).unwrap();
                    p
                })
                .collect();
            Sim {
                codec: kind.build(20).unwrap(),
                jb: JitterBuffer::new(JitterConfig::with_clock(kind.clock(), frame)),
                start: Instant::now(),
                payloads,
                out: Vec::new(),
                kinds: Vec::new(),
                delays: Vec::new(),
            }
        }

        /// Runs the schedule: packet `i` arrives at `arrival(i)` ms (None = lost); the
        /// playout ticks every 20 ms starting 7 ms after the first send.
        fn run(&mut self, arrival: impl Fn(usize) -> Option<f64>) {
            let frame = self.codec.frame_ticks();
            let mut events: Vec<(f64, usize)> =
                (0..self.payloads.len()).filter_map(|i| arrival(i).map(|t| (t, i))).collect();
            events.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut pending = events.into_iter().peekable();
            // Stop with the last packets: running on would only conceal the end of the stream.
            let ticks = self.payloads.len() - 3;
            for tick in 0..ticks {
                let now_ms = 7.0 + 20.0 * tick as f64;
                while let Some(&(t, i)) = pending.peek() {
                    if t > now_ms {
                        break;
                    }
                    let at = self.start + Duration::from_secs_f64(t / 1000.0);
                    self.jb.push(i as u16, 1000 + frame * i as u32, &self.payloads[i], at);
                    pending.next();
                }
                let now = self.start + Duration::from_secs_f64(now_ms / 1000.0);
                let kind = self.jb.pop(now, self.codec.as_mut(), &mut self.out);
                self.kinds.push(kind);
                self.delays.push(self.jb.delay_ms());
            }
        }

        fn mean_delay(&self, from_s: f64, to_s: f64) -> f64 {
            let (a, b) = ((from_s * 50.0) as usize, ((to_s * 50.0) as usize).min(self.delays.len()));
            self.delays[a..b].iter().sum::<f64>() / (b - a) as f64
        }

        /// The longest stretch (ms) of 5 ms windows below a small RMS, after playout starts.
        fn longest_silence_ms(&self, rate: usize) -> f64 {
            let win = rate / 200;
            let first = self.out.iter().position(|&s| s != 0).unwrap_or(0);
            let end = self.out.len();
            let mut longest = 0;
            let mut run = 0;
            for w in self.out[first..end].chunks(win) {
                let rms = (w.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
                if rms < 300.0 {
                    run += 1;
                    longest = longest.max(run);
                } else {
                    run = 0;
                }
            }
            longest as f64 * 5.0
        }
    }

    #[test]
    fn clean_stream_keeps_a_small_delay() {
        let mut sim = Sim::new(CodecKind::Pcmu, 10);
        sim.run(|i| Some(20.0 * i as f64 + 3.0));
        let delay = sim.mean_delay(2.0, 10.0);
        assert!(delay <= 40.0, "clean delay {delay} ms");
        let stats = sim.jb.stats();
        assert_eq!(stats.frames_concealed + stats.frames_underrun, 0, "{stats:?}");
        assert_eq!(stats.packets_late, 0);
        assert!(stats.frames_played >= 490, "{stats:?}");
    }

    #[test]
    fn delay_follows_jitter_up_and_back_down() {
        let mut sim = Sim::new(CodecKind::Pcmu, 40);
        let mut rng = Lcg(42);
        let jitter: Vec<f64> = (0..2000).map(|_| rng.next() * 40.0).collect();
        // 10 s clean, 15 s with 0–40 ms of extra delay, 15 s clean again.
        sim.run(|i| {
            let t = 20.0 * i as f64 + 3.0;
            Some(if (500..1250).contains(&i) { t + jitter[i] } else { t })
        });
        let clean = sim.mean_delay(5.0, 10.0);
        let jittery = sim.mean_delay(15.0, 25.0);
        let after = sim.mean_delay(35.0, 40.0);
        assert!(clean <= 40.0, "clean {clean}");
        assert!(jittery >= 38.0, "under 40 ms jitter the delay must cover it: {jittery}");
        assert!(jittery > clean + 15.0, "clean {clean} jittery {jittery}");
        assert!(after < jittery - 15.0 && after <= 40.0, "after {after} jittery {jittery}");
        // Once adapted, almost no packet comes too late.
        let stats = sim.jb.stats();
        assert!(stats.packets_late < 25, "{stats:?}");
        assert!(stats.frames_dropped > 0 && stats.frames_inserted > 0, "{stats:?}");
        assert!(sim.longest_silence_ms(8000) < 60.0, "{}", sim.longest_silence_ms(8000));
    }

    #[test]
    fn loss_and_reordering_never_leave_a_gap() {
        let mut sim = Sim::new(CodecKind::Pcma, 20);
        let mut rng = Lcg(7);
        let plan: Vec<(bool, f64)> = (0..1000).map(|_| (rng.next() < 0.05, rng.next())).collect();
        let dropped: Vec<usize> = (0..1000).filter(|&i| i > 0 && plan[i].0 && !plan[i - 1].0).collect();
        sim.run(|i| {
            let t = 20.0 * i as f64 + 3.0;
            if dropped.contains(&i) {
                return None;
            }
            // Every 7th packet arrives 25 ms late, after the next one.
            Some(if i % 7 == 3 { t + 25.0 } else { t + plan[i].1 * 2.0 })
        });
        let stats = sim.jb.stats();
        assert_eq!(stats.longest_concealment, 1, "{stats:?}");
        let missing = stats.frames_concealed + stats.frames_underrun;
        assert!(missing <= dropped.len() as u64 + 3, "{stats:?} dropped {}", dropped.len());
        assert!(sim.longest_silence_ms(8000) <= 20.0, "gap {} ms", sim.longest_silence_ms(8000));
    }

    /// G.722: packets 160 timestamp units apart carry 320 samples each. Counting one in the
    /// other's unit would play every packet as "late" or stretch a 20 ms gap after each.
    #[test]
    fn g722_timestamps_and_samples_are_kept_apart() {
        let mut sim = Sim::new(CodecKind::G722, 20);
        let mut rng = Lcg(11);
        let jitter: Vec<f64> = (0..1000).map(|_| rng.next() * 10.0).collect();
        sim.run(|i| if i % 50 == 25 { None } else { Some(20.0 * i as f64 + 3.0 + jitter[i]) });
        let stats = sim.jb.stats();
        assert_eq!(sim.out.len(), sim.kinds.len() * 320, "a frame is 320 samples");
        assert!(stats.packets_late < 10, "{stats:?}");
        assert_eq!(stats.longest_concealment, 1, "{stats:?}");
        assert!(stats.frames_played >= 900, "{stats:?}");
        assert!(sim.mean_delay(5.0, 19.0) <= 40.0, "delay {}", sim.mean_delay(5.0, 19.0));
        assert!(sim.longest_silence_ms(16000) <= 20.0, "gap {} ms", sim.longest_silence_ms(16000));
    }

    #[test]
    fn opus_loss_is_recovered_by_fec() {
        let mut sim = Sim::new(CodecKind::Opus { stereo: false }, 6);
        sim.run(|i| if i % 25 == 10 { None } else { Some(20.0 * i as f64 + 1.0) });
        let stats = sim.jb.stats();
        // The first loss is concealed; from then on the buffer holds a frame for FEC.
        assert!(stats.frames_fec >= 10, "{stats:?}");
        assert!(stats.frames_concealed <= 1, "{stats:?}");
        assert!(sim.longest_silence_ms(48000) <= 20.0);
    }

    #[test]
    fn an_opus_dtx_pause_is_not_a_loss() {
        let mut sim = Sim::new(CodecKind::Opus { stereo: false }, 6);
        // Frames 100..150 are never sent (DTX): sequence numbers stay contiguous.
        let sent: Vec<usize> = (0..300).filter(|i| !(100..150).contains(i)).collect();
        let payloads = std::mem::take(&mut sim.payloads);
        let frame = 960u32;
        let start = sim.start;
        let mut k = 0;
        for tick in 0..295usize {
            let now_ms = 7.0 + 20.0 * tick as f64;
            while k < sent.len() && 20.0 * sent[k] as f64 + 1.0 <= now_ms {
                let i = sent[k];
                let at = start + Duration::from_secs_f64((20.0 * i as f64 + 1.0) / 1000.0);
                sim.jb.push(k as u16, frame * i as u32, &payloads[i], at);
                k += 1;
            }
            let now = start + Duration::from_secs_f64(now_ms / 1000.0);
            sim.jb.pop(now, sim.codec.as_mut(), &mut sim.out);
        }
        let stats = sim.jb.stats();
        assert_eq!(stats.frames_concealed + stats.frames_fec, 0, "{stats:?}");
        assert!(stats.frames_paused + stats.frames_underrun >= 48, "{stats:?}");
        // No loss was seen, so no frame is held back for FEC: the delay stays small.
        assert!(sim.jb.delay_ms() <= 40.0, "{}", sim.jb.delay_ms());
    }

    /// 100 packets of a loud PCMU tone, one every 20 ms and played as they
    /// come, whose timestamps step by `step` samples from packet 50 on (same
    /// SSRC, sequence going on): what each frame played, and the resets.
    fn play_through_a_step(step: i64) -> (Vec<Playout>, u64) {
        let mut codec = CodecKind::Pcmu.build(20).unwrap();
        let mut jb = JitterBuffer::new(JitterConfig::new(8000, 160));
        let t0 = Instant::now();
        let mut loud = Vec::new();
        codec.encode(&[8000i16; 160], &mut loud).unwrap();
        let mut out = Vec::new();
        let mut kinds = Vec::new();
        for k in 0..100i64 {
            let now = t0 + Duration::from_millis(20 * k as u64);
            let ts = 160 * k + if k >= 50 { step } else { 0 };
            jb.push(k as u16, ts as u32, &loud, now);
            kinds.push(jb.pop(now, codec.as_mut(), &mut out));
        }
        (kinds, jb.stats().resets)
    }

    /// Sound from the packets (a shrunk frame is two merged into one).
    fn playing(k: &Playout) -> bool {
        matches!(k, Playout::Normal | Playout::Shrunk)
    }

    /// A step back of 1,234 samples: within three packets the playout
    /// realigns, and the tone plays on.
    #[test]
    fn a_step_back_of_the_senders_clock_realigns_within_three_packets() {
        let (kinds, resets) = play_through_a_step(-1234);
        assert_eq!(resets, 1);
        assert!(kinds[20..50].iter().all(playing), "{:?}", &kinds[20..50]);
        let glitch = kinds[50..].iter().filter(|k| !playing(k)).count();
        assert!(glitch <= 6, "{glitch} frames without the tone after the step: {:?}", &kinds[50..]);
        assert!(kinds[60..].iter().all(playing), "{:?}", &kinds[50..]);
    }

    /// A step forward of 1,234 samples (not whole frames): after concealing
    /// what was skipped the playout lands on the new grid.
    #[test]
    fn a_step_forward_by_a_part_of_a_frame_lands_on_the_new_grid() {
        let (kinds, _) = play_through_a_step(1234);
        let glitch = kinds[50..].iter().filter(|k| !playing(k)).count();
        // 1,234 samples are 7.7 frames the sender skipped.
        assert!(glitch <= 10, "{glitch} frames without the tone after the step: {:?}", &kinds[50..]);
        assert!(kinds[65..].iter().all(playing), "{:?}", &kinds[50..]);
    }

    /// Packets the network holds back come late, alone or in a burst after a
    /// stall: they are dropped as late, and the playout is not realigned.
    #[test]
    fn late_packets_of_a_stalling_network_do_not_realign() {
        let mut jb = JitterBuffer::new(JitterConfig::new(8000, 160));
        let mut codec = CodecKind::Pcmu.build(20).unwrap();
        let t0 = Instant::now();
        let payload = [0x55u8; 160];
        let mut out = Vec::new();
        // Arrival times (ms): on time, but every 25th packet 90 ms late, and
        // packets 100..110 held by a 300 ms stall that releases them at once.
        let mut arrivals: Vec<(u64, u32)> = (0..300u32)
            .map(|k| {
                let sent = 20 * k as u64;
                let at = match k {
                    100..110 => 20 * 110,
                    k if k % 25 == 7 => sent + 90,
                    _ => sent,
                };
                (at, k)
            })
            .collect();
        arrivals.sort();
        let mut next = arrivals.iter().peekable();
        for tick in 0..320u64 {
            let now_ms = 20 * tick + 10;
            while let Some(&&(at, k)) = next.peek() {
                if at > now_ms {
                    break;
                }
                jb.push(k as u16, 160 * k, &payload, t0 + Duration::from_millis(at));
                next.next();
            }
            jb.pop(t0 + Duration::from_millis(now_ms), codec.as_mut(), &mut out);
        }
        assert!(jb.stats().packets_late > 0, "{:?}", jb.stats());
        assert_eq!(jb.stats().resets, 0, "{:?}", jb.stats());
    }

    #[test]
    fn duplicates_and_late_packets_are_dropped_and_a_jump_resyncs() {
        let mut codec = CodecKind::Pcmu.build(20).unwrap();
        let mut jb = JitterBuffer::new(JitterConfig::new(8000, 160));
        let t0 = Instant::now();
        let payload = [0x55u8; 160];
        let mut out = Vec::new();
        jb.push(0, 0, &payload, t0);
        jb.push(0, 0, &payload, t0);
        assert_eq!(jb.stats().packets_duplicate, 1);
        for k in 1..5 {
            let now = t0 + Duration::from_millis(20 * k);
            jb.push(k as u16, 160 * k as u32, &payload, now);
            jb.pop(now, codec.as_mut(), &mut out);
        }
        jb.push(0, 0, &payload, t0 + Duration::from_millis(100));
        assert_eq!(jb.stats().packets_late, 1);
        // A timestamp 10 s ahead: the source restarted.
        jb.push(6, 80_000, &payload, t0 + Duration::from_millis(110));
        assert_eq!(jb.stats().resets, 1);
        assert_eq!(out.len(), 4 * 160);
        // Nothing received: silence, not a panic.
        let mut empty = JitterBuffer::new(JitterConfig::new(8000, 160));
        assert_eq!(empty.pop(t0, codec.as_mut(), &mut out), Playout::Idle);
        assert_eq!(out.len(), 5 * 160);
    }
}
