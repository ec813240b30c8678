//! Speech codecs behind one trait: G.711 μ-law/A-law (our own tables), G.722 (the
//! `audio-codec` crate's pure-Rust port of the public-domain spandsp coder) and Opus (libopus
//! through the `opus` crate).
//!
//! The jitter buffer drives decoding, so each codec also owns its loss concealment: Opus has
//! PLC and in-band FEC built in; G.711 and G.722 have none, so we repeat the last pitch period
//! with a fade (the idea of ITU-T G.711 Appendix I) and overlap-add back into real audio so
//! that a lost packet never clicks.
//!
//! A codec has two clocks ([`MediaClock`]): the rate of its PCM and the rate its RTP
//! timestamps count at. They are the same for every codec but G.722, whose 16 kHz audio is
//! stamped at 8000 Hz (RFC 3551 §4.5.2). PCM lengths (frames, concealment) are counted in
//! samples, RTP timestamps in ticks; [`MediaClock::ticks`] converts between them.

use std::fmt;

/// Why a codec could not be set up or could not handle a frame.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("unsupported codec {name}/{rate}: offer opus/48000/2, G722/8000, PCMU/8000 or PCMA/8000")]
    Unsupported { name: String, rate: u32 },
    #[error("ptime {0} ms is not usable: use 10, 20, 40 or 60 ms")]
    BadPtime(u32),
    #[error("opus {what}: {source}")]
    Opus {
        what: &'static str,
        #[source]
        source: opus::Error,
    },
    #[error("a frame of {got} samples does not match the codec's {expected}")]
    FrameSize { got: usize, expected: usize },
    #[error("G.722 {what}: {source}")]
    G722 {
        what: &'static str,
        #[source]
        source: audio_codec::CodecError,
    },
}

/// The two clocks of a codec: the rate its PCM is sampled at, and the rate its RTP
/// timestamps advance at. Equal for all codecs but G.722 (16000 and 8000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaClock {
    /// PCM samples per second (what is encoded, decoded, resampled, concealed).
    pub sample_rate: u32,
    /// RTP timestamp units per second (what `a=rtpmap` says).
    pub rtp_rate: u32,
}

impl MediaClock {
    /// A codec whose RTP clock is its sample rate.
    pub const fn same(rate: u32) -> MediaClock {
        MediaClock { sample_rate: rate, rtp_rate: rate }
    }

    /// The RTP timestamp units that `samples` PCM samples span.
    pub fn ticks(self, samples: usize) -> i64 {
        samples as i64 * self.rtp_rate as i64 / self.sample_rate as i64
    }

    /// The PCM samples that `ticks` RTP timestamp units span.
    pub fn samples(self, ticks: i64) -> i64 {
        ticks * self.sample_rate as i64 / self.rtp_rate as i64
    }
}

/// A codec as negotiated in SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodecKind {
    Pcmu,
    Pcma,
    /// G.722 at 64 kbit/s: 16 kHz audio under an 8000 Hz RTP clock, static payload type 9.
    G722,
    /// `opus/48000/2`; `stereo` is the peer's `stereo=1` (it wants to receive stereo).
    Opus {
        stereo: bool,
    },
}

impl CodecKind {
    /// Maps an `a=rtpmap` encoding name and clock rate to a codec we implement.
    pub fn from_rtpmap(name: &str, clock_rate: u32) -> Result<CodecKind, CodecError> {
        match (name.to_ascii_lowercase().as_str(), clock_rate) {
            ("pcmu", 8000) => Ok(CodecKind::Pcmu),
            ("pcma", 8000) => Ok(CodecKind::Pcma),
            ("g722", 8000) => Ok(CodecKind::G722),
            ("opus", 48000) => Ok(CodecKind::Opus { stereo: false }),
            _ => Err(CodecError::Unsupported { name: name.to_string(), rate: clock_rate }),
        }
    }

    /// The codec's PCM rate and RTP clock.
    pub fn clock(self) -> MediaClock {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => MediaClock::same(8000),
            // RFC 3551 §4.5.2: an error of RFC 1890 kept for compatibility.
            CodecKind::G722 => MediaClock { sample_rate: 16000, rtp_rate: 8000 },
            CodecKind::Opus { .. } => MediaClock::same(48000),
        }
    }

    /// The RTP clock rate (timestamps, jitter figures, `a=rtpmap`).
    pub fn clock_rate(self) -> u32 {
        self.clock().rtp_rate
    }

    /// The PCM rate we encode and decode at (sound devices are resampled to it).
    pub fn sample_rate(self) -> u32 {
        self.clock().sample_rate
    }

    /// The static payload type, if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            CodecKind::Pcmu => Some(0),
            CodecKind::Pcma => Some(8),
            CodecKind::G722 => Some(9),
            CodecKind::Opus { .. } => None,
        }
    }

    /// Makes the encoder/decoder pair for frames of `ptime_ms`.
    pub fn build(self, ptime_ms: u32) -> Result<Box<dyn Codec>, CodecError> {
        if ![10, 20, 40, 60].contains(&ptime_ms) {
            return Err(CodecError::BadPtime(ptime_ms));
        }
        let frame = (self.sample_rate() * ptime_ms / 1000) as usize;
        Ok(match self {
            CodecKind::Pcmu => Box::new(G711::new(G711Law::Mu, frame)),
            CodecKind::Pcma => Box::new(G711::new(G711Law::A, frame)),
            CodecKind::G722 => Box::new(G722::new(frame)),
            CodecKind::Opus { stereo } => Box::new(Opus::new(frame, stereo)?),
        })
    }
}

impl fmt::Display for CodecKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecKind::Pcmu => f.write_str("PCMU/8000"),
            CodecKind::Pcma => f.write_str("PCMA/8000"),
            CodecKind::G722 => f.write_str("G722/8000"),
            CodecKind::Opus { .. } => f.write_str("opus/48000/2"),
        }
    }
}

/// One call's codec: an encoder for what we send and a decoder (with concealment) for what
/// we receive. PCM is mono 16-bit at `sample_rate()`; lengths of PCM are in samples, RTP
/// timestamps in ticks of `clock_rate()` (see [`MediaClock`]).
pub trait Codec: Send {
    fn kind(&self) -> CodecKind;

    fn clock(&self) -> MediaClock {
        self.kind().clock()
    }

    /// The RTP clock rate.
    fn clock_rate(&self) -> u32 {
        self.clock().rtp_rate
    }

    /// The PCM rate.
    fn sample_rate(&self) -> u32 {
        self.clock().sample_rate
    }

    /// PCM samples in one frame we send (ptime).
    fn frame_samples(&self) -> usize;

    /// RTP timestamp units one frame advances the stream by.
    fn frame_ticks(&self) -> u32 {
        self.clock().ticks(self.frame_samples()) as u32
    }

    /// Encodes exactly one frame, appending the payload to `out` (which the caller clears).
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError>;

    /// Decodes a payload, appending the samples to `out`; returns how many were appended.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError>;

    /// Appends `samples` of concealment for a frame that never came.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), CodecError>;

    /// Recovers a lost frame of `samples` from the redundancy in the packet that follows it.
    /// Returns false (appending nothing) where the codec has no FEC.
    fn decode_fec(&mut self, _next: &[u8], _samples: usize, _out: &mut Vec<i16>) -> Result<bool, CodecError> {
        Ok(false)
    }

    /// True when `decode_fec` can rebuild a lost frame.
    fn has_fec(&self) -> bool {
        false
    }

    /// Tells the encoder how much loss the far end reports, so it can add redundancy.
    fn set_expected_loss(&mut self, _percent: u8) {}
}

// ---------------------------------------------------------------------------------------------
// G.711

/// μ-law encoding of one 16-bit sample (ITU-T G.711, as in the classic Sun reference code).
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 8159;
    let mut pcm = (sample as i32) >> 2;
    let mask = if pcm < 0 {
        pcm = -pcm;
        0x7f
    } else {
        0xff
    };
    pcm = pcm.min(CLIP) + (BIAS >> 2);
    let seg = segment(pcm, &[0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff, 0x1fff]);
    if seg >= 8 {
        return (0x7f ^ mask) as u8;
    }
    let uval = (seg << 4) | ((pcm >> (seg + 1)) & 0x0f);
    (uval ^ mask) as u8
}

/// A-law encoding of one 16-bit sample.
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut pcm = (sample as i32) >> 3;
    let mask = if pcm >= 0 {
        0xd5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let seg = segment(pcm, &[0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff]);
    if seg >= 8 {
        return (0x7f ^ mask) as u8;
    }
    let mut aval = seg << 4;
    aval |= if seg < 2 { (pcm >> 1) & 0x0f } else { (pcm >> seg) & 0x0f };
    (aval ^ mask) as u8
}

fn segment(value: i32, ends: &[i32; 8]) -> i32 {
    ends.iter().position(|&end| value <= end).unwrap_or(8) as i32
}

const fn ulaw_to_linear(code: u8) -> i16 {
    let u = !code;
    let mut t = (((u & 0x0f) as i32) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

const fn alaw_to_linear(code: u8) -> i16 {
    let a = code ^ 0x55;
    let mut t = ((a & 0x0f) as i32) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

const fn table(mu_law: bool) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if mu_law { ulaw_to_linear(i as u8) } else { alaw_to_linear(i as u8) };
        i += 1;
    }
    t
}

static ULAW_TABLE: [i16; 256] = table(true);
static ALAW_TABLE: [i16; 256] = table(false);

/// μ-law decoding of one byte.
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_TABLE[code as usize]
}

/// A-law decoding of one byte.
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_TABLE[code as usize]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum G711Law {
    Mu,
    A,
}

/// PCMU or PCMA with pitch-repetition concealment.
pub struct G711 {
    law: G711Law,
    frame: usize,
    plc: PitchConcealer,
}

impl G711 {
    pub fn new(law: G711Law, frame: usize) -> G711 {
        G711 { law, frame, plc: PitchConcealer::new(8000) }
    }
}

impl Codec for G711 {
    fn kind(&self) -> CodecKind {
        match self.law {
            G711Law::Mu => CodecKind::Pcmu,
            G711Law::A => CodecKind::Pcma,
        }
    }

    fn frame_samples(&self) -> usize {
        self.frame
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        match self.law {
            G711Law::Mu => out.extend(pcm.iter().map(|&s| linear_to_ulaw(s))),
            G711Law::A => out.extend(pcm.iter().map(|&s| linear_to_alaw(s))),
        }
        Ok(())
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let start = out.len();
        let table = match self.law {
            G711Law::Mu => &ULAW_TABLE,
            G711Law::A => &ALAW_TABLE,
        };
        out.extend(payload.iter().map(|&b| table[b as usize]));
        self.plc.after_good(&mut out[start..]);
        Ok(payload.len())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), CodecError> {
        self.plc.conceal(samples, out);
        Ok(())
    }
}

/// Packet loss concealment for codecs without their own: repeats the last pitch period with a
/// gain that holds for 10 ms, then falls to silence at 60 ms; the audio after a loss is
/// overlap-added with the continued repetition so it does not click.
pub struct PitchConcealer {
    rate: usize,
    history: Vec<i16>,
    cycle: Vec<f32>,
    position: usize,
    lost_samples: usize,
}

impl PitchConcealer {
    pub fn new(rate: u32) -> PitchConcealer {
        let rate = rate as usize;
        PitchConcealer { rate, history: Vec::with_capacity(rate / 10), cycle: Vec::new(), position: 0, lost_samples: 0 }
    }

    fn ms(&self, ms: usize) -> usize {
        self.rate * ms / 1000
    }

    fn remember(&mut self, samples: &[i16]) {
        let keep = self.ms(50);
        self.history.extend_from_slice(samples);
        if self.history.len() > keep {
            let cut = self.history.len() - keep;
            self.history.drain(..cut);
        }
    }

    /// The gain of the concealment at `n` samples into the loss.
    fn gain(&self, n: usize) -> f32 {
        let hold = self.ms(10);
        let end = self.ms(60);
        if n < hold {
            1.0
        } else if n >= end {
            0.0
        } else {
            1.0 - (n - hold) as f32 / (end - hold) as f32
        }
    }

    fn next_synthetic(&mut self) -> f32 {
        if self.cycle.is_empty() {
            return 0.0;
        }
        let v = self.cycle[self.position] * self.gain(self.lost_samples);
        self.position = (self.position + 1) % self.cycle.len();
        self.lost_samples += 1;
        v
    }

    fn start_loss(&mut self) {
        let h = &self.history;
        let (min_p, max_p) = (self.ms(5), self.ms(15));
        // The search looks back max_p samples, the blend below a quarter period before that.
        let reach = max_p + (max_p / 4).max(1);
        let window = self.ms(10).min(h.len().saturating_sub(reach));
        self.cycle.clear();
        self.position = 0;
        if window == 0 {
            return; // Not enough history: conceal with silence.
        }
        let n = h.len();
        let tail = &h[n - window..];
        let mut best = (min_p, f32::MIN);
        for p in min_p..=max_p {
            let past = &h[n - window - p..n - p];
            let (mut xy, mut yy) = (0f32, 1e-3f32);
            for (&x, &y) in tail.iter().zip(past) {
                xy += x as f32 * y as f32;
                yy += y as f32 * y as f32;
            }
            let score = xy / yy.sqrt();
            if score > best.1 {
                best = (p, score);
            }
        }
        let p = best.0;
        // One period, its last quarter blended into what preceded its start so that the
        // repetition wraps smoothly.
        let overlap = (p / 4).max(1);
        self.cycle.extend(h[n - p..].iter().map(|&s| s as f32));
        for k in 0..overlap {
            let w = (k + 1) as f32 / (overlap + 1) as f32;
            let i = p - overlap + k;
            let before_start = h[n - p - overlap + k] as f32;
            self.cycle[i] = self.cycle[i] * (1.0 - w) + before_start * w;
        }
    }

    /// Appends `samples` of concealment.
    pub fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        if self.lost_samples == 0 {
            self.start_loss();
        }
        let start = out.len();
        for _ in 0..samples {
            let v = self.next_synthetic();
            out.push(v.clamp(-32768.0, 32767.0) as i16);
        }
        // Concealed audio becomes history too, so a long loss keeps the same period.
        self.remember(&out[start..]);
    }

    /// Smooths the first real frame after a loss into the concealment, then remembers it.
    pub fn after_good(&mut self, frame: &mut [i16]) {
        if self.lost_samples > 0 {
            let fade = (self.ms(4) + self.lost_samples / 8).min(self.ms(10)).min(frame.len());
            for (k, s) in frame.iter_mut().take(fade).enumerate() {
                let w = (k + 1) as f32 / (fade + 1) as f32;
                let synthetic = self.next_synthetic();
                *s = (synthetic * (1.0 - w) + *s as f32 * w).clamp(-32768.0, 32767.0) as i16;
            }
            self.lost_samples = 0;
        }
        self.remember(frame);
    }
}

// ---------------------------------------------------------------------------------------------
// G.722

/// G.722 at 64 kbit/s (mode 1: 6 bits of low band, 2 of high band per byte, one byte per two
/// 16 kHz samples), with pitch-repetition concealment at 16 kHz.
pub struct G722 {
    encoder: audio_codec::g722::G722Encoder,
    decoder: audio_codec::g722::G722Decoder,
    frame: usize,
    plc: PitchConcealer,
}

impl G722 {
    pub fn new(frame: usize) -> G722 {
        G722 {
            encoder: audio_codec::g722::G722Encoder::new(),
            decoder: audio_codec::g722::G722Decoder::new(),
            frame,
            plc: PitchConcealer::new(16000),
        }
    }
}

impl Codec for G722 {
    fn kind(&self) -> CodecKind {
        CodecKind::G722
    }

    fn frame_samples(&self) -> usize {
        self.frame
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        use audio_codec::Encoder as _;
        let start = out.len();
        out.resize(start + self.encoder.max_encode_bytes(pcm.len()), 0);
        let result = self.encoder.encode_into(pcm, &mut out[start..]);
        let n = result.map_err(|source| CodecError::G722 { what: "encoding", source });
        out.truncate(start + n.as_ref().copied().unwrap_or(0));
        n.map(|_| ())
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        use audio_codec::Decoder as _;
        let start = out.len();
        out.resize(start + self.decoder.max_decode_samples(payload.len()), 0);
        let n = match self.decoder.decode_into(payload, &mut out[start..]) {
            Ok(n) => n,
            Err(source) => {
                out.truncate(start);
                return Err(CodecError::G722 { what: "decoding", source });
            }
        };
        out.truncate(start + n);
        self.plc.after_good(&mut out[start..]);
        Ok(n)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), CodecError> {
        self.plc.conceal(samples, out);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Opus

/// Opus at 48 kHz, 20 ms, voice mode, in-band FEC and DTX on.
pub struct Opus {
    encoder: opus::Encoder,
    decoder: opus::Decoder,
    frame: usize,
    stereo: bool,
    stereo_scratch: Vec<i16>,
    scratch: Vec<i16>,
}

/// The most one Opus packet can hold: 120 ms at 48 kHz.
const OPUS_MAX_SAMPLES: usize = 5760;

impl Opus {
    pub fn new(frame: usize, stereo: bool) -> Result<Opus, CodecError> {
        let err = |what| move |source| CodecError::Opus { what, source };
        let channels = if stereo { opus::Channels::Stereo } else { opus::Channels::Mono };
        let mut encoder =
            opus::Encoder::new(48000, channels, opus::Application::Voip).map_err(err("creating the encoder"))?;
        encoder.set_inband_fec(true).map_err(err("turning on FEC"))?;
        encoder.set_dtx(true).map_err(err("turning on DTX"))?;
        // FEC is only produced when the encoder expects loss; start with a modest figure and
        // follow the peer's RTCP reports.
        encoder.set_packet_loss_perc(5).map_err(err("setting the loss hint"))?;
        encoder.set_bitrate(opus::Bitrate::Bits(32000)).map_err(err("setting the bitrate"))?;
        encoder.set_signal(opus::Signal::Voice).map_err(err("setting the signal type"))?;
        // The decoder is always mono: Opus downmixes a stereo stream itself.
        let decoder = opus::Decoder::new(48000, opus::Channels::Mono).map_err(err("creating the decoder"))?;
        Ok(Opus {
            encoder,
            decoder,
            frame,
            stereo,
            stereo_scratch: Vec::with_capacity(frame * 2),
            scratch: vec![0; OPUS_MAX_SAMPLES],
        })
    }
}

impl Codec for Opus {
    fn kind(&self) -> CodecKind {
        CodecKind::Opus { stereo: self.stereo }
    }

    fn frame_samples(&self) -> usize {
        self.frame
    }

    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError> {
        if pcm.len() != self.frame {
            return Err(CodecError::FrameSize { got: pcm.len(), expected: self.frame });
        }
        let start = out.len();
        out.resize(start + 1500, 0);
        let result = if self.stereo {
            self.stereo_scratch.clear();
            self.stereo_scratch.extend(pcm.iter().flat_map(|&s| [s, s]));
            self.encoder.encode(&self.stereo_scratch, &mut out[start..])
        } else {
            self.encoder.encode(pcm, &mut out[start..])
        };
        match result {
            Ok(n) => {
                out.truncate(start + n);
                Ok(())
            }
            Err(source) => {
                out.truncate(start);
                Err(CodecError::Opus { what: "encoding", source })
            }
        }
    }

    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<usize, CodecError> {
        let n = self
            .decoder
            .decode(payload, &mut self.scratch, false)
            .map_err(|source| CodecError::Opus { what: "decoding", source })?;
        out.extend_from_slice(&self.scratch[..n]);
        Ok(n)
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) -> Result<(), CodecError> {
        let samples = samples.min(OPUS_MAX_SAMPLES);
        let n = self
            .decoder
            .decode(&[], &mut self.scratch[..samples], false)
            .map_err(|source| CodecError::Opus { what: "concealing", source })?;
        out.extend_from_slice(&self.scratch[..n]);
        // libopus returns exactly what was asked for; keep the frame length whatever happens.
        out.resize(out.len() + samples.saturating_sub(n), 0);
        Ok(())
    }

    fn decode_fec(&mut self, next: &[u8], samples: usize, out: &mut Vec<i16>) -> Result<bool, CodecError> {
        let samples = samples.min(OPUS_MAX_SAMPLES);
        let n = self
            .decoder
            .decode(next, &mut self.scratch[..samples], true)
            .map_err(|source| CodecError::Opus { what: "decoding FEC", source })?;
        out.extend_from_slice(&self.scratch[..n]);
        out.resize(out.len() + samples.saturating_sub(n), 0);
        Ok(true)
    }

    fn has_fec(&self) -> bool {
        true
    }

    fn set_expected_loss(&mut self, percent: u8) {
        // A failure here only costs FEC efficiency; the call goes on.
        if let Err(e) = self.encoder.set_packet_loss_perc(percent.clamp(5, 30) as i32) {
            tracing::debug!("opus loss hint: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, rate: u32, samples: usize, amplitude: f32) -> Vec<i16> {
        (0..samples)
            .map(|i| (amplitude * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin()) as i16)
            .collect()
    }

    #[test]
    fn concealment_after_a_short_history_does_not_panic() {
        // Found by fuzz/jitter: 130 samples of history (more than the 15 ms pitch
        // search, less than it plus the quarter-period blend) whose best period is
        // the longest made start_loss index before the start of the history.
        let mut g711 = G711::new(G711Law::Mu, 160);
        let mut payload = vec![0x80u8; 10];
        payload.extend([0xffu8; 110]);
        payload.extend([0x80u8; 10]);
        let mut out = Vec::new();
        g711.decode(&payload, &mut out).unwrap();
        g711.conceal(160, &mut out).unwrap();
        assert_eq!(out.len(), 130 + 160);
    }

    #[test]
    fn ulaw_known_values() {
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_ulaw(32767), 0x80);
        assert_eq!(linear_to_ulaw(-32768), 0x00);
        assert_eq!(linear_to_ulaw(1000), 0xce);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0xff), 0);
        assert_eq!(ulaw_decode(0x7f), 0);
        assert_eq!(ulaw_decode(0xce), 988);
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(32767), 0xaa);
        assert_eq!(linear_to_alaw(-32768), 0x2a);
        assert_eq!(alaw_decode(0xd5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xaa), 32256);
        assert_eq!(alaw_decode(0x2a), -32256);
    }

    #[test]
    fn g711_round_trip_stays_within_quantisation() {
        for law in [G711Law::Mu, G711Law::A] {
            for s in (-32768i32..32768).step_by(7) {
                let s = s as i16;
                let back = match law {
                    G711Law::Mu => ulaw_decode(linear_to_ulaw(s)),
                    G711Law::A => alaw_decode(linear_to_alaw(s)),
                };
                // Logarithmic quantisation: the error grows with the magnitude (≤ 1/16 + 16).
                let err = (s as i32 - back as i32).abs();
                assert!(err <= (s as i32).abs() / 16 + 16, "{law:?} {s} -> {back}");
            }
            // Every code decodes and re-encodes to itself (except μ-law's two zeros).
            for code in 0..=255u8 {
                let (lin, again) = match law {
                    G711Law::Mu => (ulaw_decode(code), linear_to_ulaw(ulaw_decode(code))),
                    G711Law::A => (alaw_decode(code), linear_to_alaw(alaw_decode(code))),
                };
                if !(law == G711Law::Mu && code == 0x7f) {
                    assert_eq!(again, code, "{law:?} code {code:#x} = {lin}");
                }
            }
        }
    }

    #[test]
    fn kinds_from_sdp() {
        assert_eq!(CodecKind::from_rtpmap("PCMU", 8000).unwrap(), CodecKind::Pcmu);
        assert_eq!(CodecKind::from_rtpmap("pcma", 8000).unwrap(), CodecKind::Pcma);
        assert_eq!(CodecKind::from_rtpmap("opus", 48000).unwrap(), CodecKind::Opus { stereo: false });
        let err = CodecKind::from_rtpmap("G729", 8000).unwrap_err().to_string();
        assert!(err.contains("G729/8000"), "{err}");
        assert!(CodecKind::Pcmu.build(25).is_err());
    }

    /// Largest jump between neighbouring samples: a click shows up as a step far above what
    /// the waveform itself does.
    fn max_step(samples: &[i16]) -> i32 {
        samples.windows(2).map(|w| (w[1] as i32 - w[0] as i32).abs()).max().unwrap_or(0)
    }

    #[test]
    fn g711_concealment_continues_the_tone_without_clicks() {
        let mut codec = CodecKind::Pcmu.build(20).unwrap();
        let source = tone(440.0, 8000, 160 * 10, 8000.0);
        let mut out = Vec::new();
        let mut payload = Vec::new();
        for (i, frame) in source.chunks(160).enumerate() {
            payload.clear();
            codec.encode(frame, &mut payload).unwrap();
            if i == 5 || i == 6 {
                codec.conceal(160, &mut out).unwrap();
            } else {
                codec.decode(&payload, &mut out).unwrap();
            }
        }
        assert_eq!(out.len(), source.len());
        // The natural step of the tone: 2π·440/8000·8000 ≈ 2764; allow quantisation.
        let natural = max_step(&out[..800]);
        assert!(max_step(&out) <= natural + natural / 4, "{} vs {natural}", max_step(&out));
        // The first concealed frame is not silent: it carries the tone on.
        let rms = |s: &[i16]| (s.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / s.len() as f64).sqrt();
        assert!(rms(&out[800..880]) > 4000.0, "{}", rms(&out[800..880]));
        // And 60 ms of loss fades to silence.
        let mut long = CodecKind::Pcma.build(20).unwrap();
        let mut out = Vec::new();
        payload.clear();
        long.encode(&source[..160], &mut payload).unwrap();
        long.decode(&payload, &mut out).unwrap();
        long.decode(&payload, &mut out).unwrap();
        long.decode(&payload, &mut out).unwrap();
        for _ in 0..4 {
            long.conceal(160, &mut out).unwrap();
        }
        assert!(out[out.len() - 160..].iter().all(|&s| s == 0));
    }

    #[test]
    fn opus_encodes_decodes_conceals_and_recovers_with_fec() {
        let mut codec = CodecKind::Opus { stereo: false }.build(20).unwrap();
        assert_eq!(codec.frame_samples(), 960);
        codec.set_expected_loss(20);
        let source = tone(440.0, 48000, 960 * 50, 8000.0);
        let mut packets = Vec::new();
        for frame in source.chunks(960) {
            let mut p = Vec::new();
            codec.encode(frame, &mut p).unwrap();
            assert!(!p.is_empty() && p.len() < 400);
            packets.push(p);
        }
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            match i {
                20 => codec.conceal(960, &mut out).unwrap(),
                30 => assert!(codec.decode_fec(&packets[31], 960, &mut out).unwrap()),
                _ => {
                    codec.decode(p, &mut out).unwrap();
                }
            }
        }
        assert_eq!(out.len(), source.len());
        let rms = |s: &[i16]| (s.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / s.len() as f64).sqrt();
        let expected = 8000.0 / 2f64.sqrt();
        for frame in [10, 20, 30, 40] {
            let r = rms(&out[frame * 960..(frame + 1) * 960]);
            assert!(r > expected * 0.5 && r < expected * 1.5, "frame {frame}: rms {r}");
        }
        assert!(codec.encode(&source[..100], &mut Vec::new()).is_err());
        // Garbage from the network is an error, not a crash.
        let _ = codec.decode(&[0xff, 0xff, 0xff], &mut out);
    }

    /// The frequency of a tone from its zero crossings (interpolated), Hz.
    fn zero_crossing_frequency(s: &[i16], rate: u32) -> f64 {
        let mut crossings = Vec::new();
        for (i, w) in s.windows(2).enumerate() {
            let (a, b) = (w[0] as f64, w[1] as f64);
            if a < 0.0 && b >= 0.0 {
                crossings.push(i as f64 + -a / (b - a));
            }
        }
        let (Some(first), Some(last)) = (crossings.first(), crossings.last()) else { return 0.0 };
        (crossings.len() - 1) as f64 * rate as f64 / (last - first)
    }

    fn rms(s: &[i16]) -> f64 {
        (s.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / s.len() as f64).sqrt()
    }

    /// Encodes `source` frame by frame and decodes every payload.
    fn round_trip(codec: &mut dyn Codec, source: &[i16]) -> Vec<i16> {
        let frame = codec.frame_samples();
        let mut out = Vec::new();
        let mut payload = Vec::new();
        for chunk in source.chunks(frame) {
            payload.clear();
            codec.encode(chunk, &mut payload).unwrap();
            assert_eq!(payload.len(), frame / 2, "64 kbit/s: a byte per two samples");
            assert_eq!(codec.decode(&payload, &mut out).unwrap(), frame);
        }
        out
    }

    #[test]
    fn g722_counts_16_khz_samples_under_an_8_khz_rtp_clock() {
        assert_eq!(CodecKind::from_rtpmap("G722", 8000).unwrap(), CodecKind::G722);
        assert!(CodecKind::from_rtpmap("G722", 16000).is_err());
        assert_eq!(CodecKind::G722.static_payload_type(), Some(9));
        assert_eq!(CodecKind::G722.to_string(), "G722/8000");
        let codec = CodecKind::G722.build(20).unwrap();
        assert_eq!((codec.sample_rate(), codec.clock_rate()), (16000, 8000));
        assert_eq!(codec.frame_samples(), 320);
        assert_eq!(codec.frame_ticks(), 160, "20 ms of G.722 is 160 timestamp units");
        for kind in [CodecKind::Pcmu, CodecKind::Opus { stereo: false }] {
            let c = kind.build(20).unwrap();
            assert_eq!(c.frame_ticks() as usize, c.frame_samples(), "{kind}");
        }
        assert_eq!(CodecKind::G722.clock().samples(160), 320);
    }

    #[test]
    fn g722_keeps_a_tone_s_frequency_and_level() {
        // 1 kHz, and 5 and 6 kHz: tones no 8 kHz codec can carry.
        for freq in [1000.0, 5000.0, 6000.0] {
            let mut codec = CodecKind::G722.build(20).unwrap();
            let source = tone(freq, 16000, 320 * 25, 8000.0);
            let out = round_trip(codec.as_mut(), &source);
            // Skip the first 100 ms: the ADPCM predictors and QMF filters settle.
            let steady = &out[1600..];
            let f = zero_crossing_frequency(steady, 16000);
            assert!((f - freq as f64).abs() < freq as f64 * 0.01, "{freq} Hz came back at {f} Hz");
            let (got, want) = (rms(steady), rms(&source[1600..]));
            assert!(got > want * 0.8 && got < want * 1.2, "{freq} Hz: rms {got} for {want}");
        }
    }

    #[test]
    fn g722_concealment_continues_the_tone_and_fades() {
        let mut codec = CodecKind::G722.build(20).unwrap();
        let source = tone(440.0, 16000, 320 * 10, 8000.0);
        let mut out = Vec::new();
        let mut payload = Vec::new();
        for (i, frame) in source.chunks(320).enumerate() {
            payload.clear();
            codec.encode(frame, &mut payload).unwrap();
            if i == 5 {
                codec.conceal(320, &mut out).unwrap();
            } else {
                codec.decode(&payload, &mut out).unwrap();
            }
        }
        assert_eq!(out.len(), source.len());
        // The concealed frame carries the tone on at about its level.
        assert!(rms(&out[1600..1760]) > 4000.0, "{}", rms(&out[1600..1760]));
        for _ in 0..4 {
            codec.conceal(320, &mut out).unwrap();
        }
        assert!(out[out.len() - 320..].iter().all(|&s| s == 0), "60 ms of loss ends in silence");
        // An odd byte count from the network is decoded, not a crash.
        assert_eq!(codec.decode(&[0xff; 3], &mut out).unwrap(), 6);
    }

    #[test]
    fn opus_stereo_encoder_is_understood_by_a_mono_decoder() {
        let mut stereo = CodecKind::Opus { stereo: true }.build(20).unwrap();
        let mut mono = CodecKind::Opus { stereo: false }.build(20).unwrap();
        let source = tone(1000.0, 48000, 960 * 10, 8000.0);
        let mut out = Vec::new();
        for frame in source.chunks(960) {
            let mut p = Vec::new();
            stereo.encode(frame, &mut p).unwrap();
            assert_eq!(mono.decode(&p, &mut out).unwrap(), 960);
        }
    }
}
