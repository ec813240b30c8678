//! Where a call's audio comes from and goes to: the sound card, a WAV file, a tone, or
//! nothing at all (headless tests and servers need no sound card).
//!
//! The media task pulls 20 ms from its `AudioSource` and pushes 20 ms into its `AudioSink`
//! on every tick, at whatever rate the source or sink runs at; the session resamples. Mono
//! `f32` in −1..1 throughout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::MediaError;

/// Which side of the sound card an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceDirection {
    Input,
    Output,
}

/// What happened to a sound device during a call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DeviceEvent {
    /// The device failed or disappeared and `to` took over; the call goes on.
    Changed { direction: DeviceDirection, from: String, to: String, reason: String },
    /// No device could be opened; the call goes on without sound on that side.
    Failed { direction: DeviceDirection, device: String, reason: String },
}

/// A producer of the audio we send (the microphone, a file, a tone).
pub trait AudioSource: Send {
    /// Samples per second; may change when a device is replaced.
    fn sample_rate(&self) -> u32;

    /// Fills `out` with the next samples; audio that is not there yet is silence.
    fn read(&mut self, out: &mut [f32]);

    /// A device event to pass on to the operator, if any.
    fn poll_event(&mut self) -> Option<DeviceEvent> {
        None
    }

    /// Called once when the call ends.
    fn finish(&mut self) -> Result<(), MediaError> {
        Ok(())
    }
}

/// A consumer of the audio we receive (the headset, a recording).
pub trait AudioSink: Send {
    fn sample_rate(&self) -> u32;

    fn write(&mut self, samples: &[f32]);

    fn poll_event(&mut self) -> Option<DeviceEvent> {
        None
    }

    /// Called once when the call ends (a recording is finalised here).
    fn finish(&mut self) -> Result<(), MediaError> {
        Ok(())
    }
}

/// Silence.
pub struct NullSource {
    pub rate: u32,
}

impl AudioSource for NullSource {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn read(&mut self, out: &mut [f32]) {
        out.fill(0.0);
    }
}

/// Discards everything.
pub struct NullSink {
    pub rate: u32,
}

impl AudioSink for NullSink {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn write(&mut self, _samples: &[f32]) {}
}

/// Keeps what it is given in memory, readable from elsewhere (tests, measurements).
#[derive(Clone)]
pub struct MemorySink {
    rate: u32,
    samples: Arc<Mutex<Vec<f32>>>,
}

impl MemorySink {
    pub fn new(rate: u32) -> MemorySink {
        MemorySink { rate, samples: Arc::new(Mutex::new(Vec::new())) }
    }

    /// A copy of everything written so far.
    pub fn samples(&self) -> Vec<f32> {
        self.samples.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn len(&self) -> usize {
        self.samples.lock().map(|s| s.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl AudioSink for MemorySink {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn write(&mut self, samples: &[f32]) {
        if let Ok(mut s) = self.samples.lock() {
            s.extend_from_slice(samples);
        }
    }
}

/// Plays samples held in memory, then silence.
pub struct MemorySource {
    rate: u32,
    samples: Vec<f32>,
    position: usize,
}

impl MemorySource {
    pub fn new(rate: u32, samples: Vec<f32>) -> MemorySource {
        MemorySource { rate, samples, position: 0 }
    }
}

impl AudioSource for MemorySource {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn read(&mut self, out: &mut [f32]) {
        let available = (self.samples.len() - self.position).min(out.len());
        out[..available].copy_from_slice(&self.samples[self.position..self.position + available]);
        out[available..].fill(0.0);
        self.position += available;
    }
}

/// A cadenced tone: the ringback the caller hears, the ringtone of an incoming call.
#[derive(Debug, Clone, PartialEq)]
pub struct TonePattern {
    /// Frequencies mixed together (Hz).
    pub frequencies: Vec<f32>,
    /// Alternating on and off periods, repeated.
    pub cadence: Vec<Duration>,
    /// Peak level, 0..1.
    pub level: f32,
}

impl TonePattern {
    /// The European ringback: 425 Hz, 1 s on, 4 s off.
    pub fn ringback() -> TonePattern {
        TonePattern {
            frequencies: vec![425.0],
            cadence: vec![Duration::from_secs(1), Duration::from_secs(4)],
            level: 0.25,
        }
    }

    /// A ringtone for incoming calls: a two-tone double ring, then a pause.
    pub fn ringtone() -> TonePattern {
        TonePattern {
            frequencies: vec![440.0, 480.0],
            cadence: vec![
                Duration::from_millis(400),
                Duration::from_millis(200),
                Duration::from_millis(400),
                Duration::from_millis(2000),
            ],
            level: 0.3,
        }
    }

    /// A continuous tone (tests, the figures).
    pub fn steady(frequency: f32, level: f32) -> TonePattern {
        TonePattern { frequencies: vec![frequency], cadence: vec![], level }
    }
}

/// Generates a `TonePattern`; on/off edges are ramped over 5 ms so they do not click.
pub struct ToneSource {
    rate: u32,
    pattern: TonePattern,
    n: u64,
    cycle: u64,
    edges: Vec<(u64, u64)>,
}

impl ToneSource {
    pub fn new(pattern: TonePattern, rate: u32) -> ToneSource {
        let mut edges = Vec::new();
        let mut t = 0u64;
        for (i, d) in pattern.cadence.iter().enumerate() {
            let len = (d.as_secs_f64() * rate as f64) as u64;
            if i % 2 == 0 {
                edges.push((t, t + len));
            }
            t += len;
        }
        ToneSource { rate, pattern, n: 0, cycle: t, edges }
    }

    fn envelope(&self, n: u64) -> f32 {
        if self.cycle == 0 {
            return 1.0;
        }
        let pos = n % self.cycle;
        let ramp = (self.rate / 200).max(1) as u64;
        for &(on, off) in &self.edges {
            if pos >= on && pos < off {
                let from_on = (pos - on) as f32 / ramp as f32;
                let to_off = (off - pos) as f32 / ramp as f32;
                return from_on.min(to_off).min(1.0);
            }
        }
        0.0
    }
}

impl AudioSource for ToneSource {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn read(&mut self, out: &mut [f32]) {
        let parts = self.pattern.frequencies.len().max(1) as f32;
        for s in out.iter_mut() {
            let env = self.envelope(self.n);
            let t = self.n as f64 / self.rate as f64;
            let mut v = 0.0f64;
            for &f in &self.pattern.frequencies {
                v += (2.0 * std::f64::consts::PI * f as f64 * t).sin();
            }
            *s = (v as f32 / parts) * self.pattern.level * env;
            self.n += 1;
        }
    }
}

/// A tone playing on a sink outside a call (ringtone, ringback before early media).
pub struct TonePlayer {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Box<dyn AudioSink>>,
}

/// Plays `pattern` on `sink` in 20 ms steps until stopped, on the current tokio runtime.
pub fn play_tone(pattern: TonePattern, mut sink: Box<dyn AudioSink>) -> Result<TonePlayer, MediaError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| MediaError::NoRuntime)?;
    let (stop, mut stopped) = tokio::sync::oneshot::channel();
    let task = runtime.spawn(async move {
        let mut rate = sink.sample_rate();
        let mut tone = ToneSource::new(pattern.clone(), rate);
        let mut frame = vec![0.0; rate as usize / 50];
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = tick.tick() => {
                    if sink.sample_rate() != rate {
                        // The device was replaced by one at another rate.
                        rate = sink.sample_rate();
                        tone = ToneSource::new(pattern.clone(), rate);
                        frame = vec![0.0; rate as usize / 50];
                    }
                    tone.read(&mut frame);
                    sink.write(&frame);
                }
            }
        }
        sink
    });
    Ok(TonePlayer { stop, task })
}

impl TonePlayer {
    /// Stops the tone and gives the sink back (for the call's media, once answered).
    pub async fn stop(self) -> Option<Box<dyn AudioSink>> {
        let _ = self.stop.send(());
        self.task.await.ok()
    }
}

/// Passes a source through while keeping a copy of it in a sink (recording what we send).
pub struct TeeSource {
    inner: Box<dyn AudioSource>,
    copy: Box<dyn AudioSink>,
}

impl TeeSource {
    pub fn new(inner: Box<dyn AudioSource>, copy: Box<dyn AudioSink>) -> TeeSource {
        TeeSource { inner, copy }
    }
}

impl AudioSource for TeeSource {
    fn sample_rate(&self) -> u32 {
        self.inner.sample_rate()
    }

    fn read(&mut self, out: &mut [f32]) {
        self.inner.read(out);
        self.copy.write(out);
    }

    fn poll_event(&mut self) -> Option<DeviceEvent> {
        self.inner.poll_event()
    }

    fn finish(&mut self) -> Result<(), MediaError> {
        let inner = self.inner.finish();
        self.copy.finish()?;
        inner
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ringback_cadence_and_smooth_edges() {
        let mut tone = ToneSource::new(TonePattern::ringback(), 8000);
        let mut out = vec![0.0; 8000 * 5];
        tone.read(&mut out);
        let rms = |s: &[f32]| (s.iter().map(|x| x * x).sum::<f32>() / s.len() as f32).sqrt();
        assert!(rms(&out[400..7600]) > 0.15, "on for the first second");
        assert!(rms(&out[8100..39_900]) == 0.0, "off for four");
        let max_step = out.windows(2).map(|w| (w[1] - w[0]).abs()).fold(0.0, f32::max);
        // A 425 Hz sine at 0.25 moves at most 2π·425/8000·0.25 ≈ 0.083 per sample.
        assert!(max_step < 0.09, "{max_step}");
    }

    #[tokio::test]
    async fn a_tone_plays_on_a_sink_until_stopped() {
        let sink = MemorySink::new(8000);
        let player = play_tone(TonePattern::ringtone(), Box::new(sink.clone())).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let back = player.stop().await;
        assert!(back.is_some());
        let samples = sink.samples();
        assert!(samples.len() >= 160 * 5, "{}", samples.len());
        assert!(samples.iter().any(|&s| s.abs() > 0.2));
        let len = sink.len();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(sink.len(), len, "nothing more after stop");
        assert!(play_tone(TonePattern::ringback(), Box::new(NullSink { rate: 8000 })).is_ok());
    }

    #[test]
    fn tee_records_what_passes() {
        let copy = MemorySink::new(8000);
        let mut tee =
            TeeSource::new(Box::new(ToneSource::new(TonePattern::steady(1000.0, 0.5), 8000)), Box::new(copy.clone()));
        let mut out = vec![0.0; 160];
        tee.read(&mut out);
        assert_eq!(copy.samples(), out);
        let mut mem = MemorySource::new(8000, vec![0.5; 100]);
        mem.read(&mut out);
        assert_eq!(out[99], 0.5);
        assert_eq!(out[100], 0.0);
    }
}
