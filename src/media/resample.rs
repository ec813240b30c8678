//! Sample-rate conversion between sound devices and codecs (rubato's FFT resampler).
//!
//! Headsets run at 44.1 or 48 kHz, G.711 at 8 kHz and Opus at 48 kHz; the media task moves
//! 20 ms frames, so the converter is streaming: any amount in, whatever is ready out, in
//! 10 ms chunks internally (small chunks keep the added delay to a few milliseconds).

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler as _};

#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    #[error("cannot convert {from} Hz to {to} Hz: {reason}")]
    Setup { from: u32, to: u32, reason: String },
    #[error("resampling {from} Hz to {to} Hz failed: {reason}")]
    Process { from: u32, to: u32, reason: String },
}

/// A streaming mono converter from one rate to another (a copy when the rates match).
pub struct Resampler {
    from: u32,
    to: u32,
    inner: Option<Fft<f32>>,
    chunk: usize,
    pending: Vec<f32>,
    out_buf: Vec<f32>,
}

impl Resampler {
    pub fn new(from: u32, to: u32) -> Result<Resampler, ResampleError> {
        if from == 0 || to == 0 {
            return Err(ResampleError::Setup { from, to, reason: "a rate of 0 Hz".into() });
        }
        let chunk = (from as usize / 100).max(1);
        let inner = if from == to {
            None
        } else {
            let fft = Fft::new(from as usize, to as usize, chunk, 1, FixedSync::Input)
                .map_err(|e| ResampleError::Setup { from, to, reason: e.to_string() })?;
            Some(fft)
        };
        let out_max = inner.as_ref().map_or(0, |r| r.output_frames_max());
        Ok(Resampler { from, to, inner, chunk, pending: Vec::with_capacity(chunk * 4), out_buf: vec![0.0; out_max] })
    }

    pub fn input_rate(&self) -> u32 {
        self.from
    }

    pub fn output_rate(&self) -> u32 {
        self.to
    }

    /// The converter's own delay, in output samples.
    pub fn delay(&self) -> usize {
        self.inner.as_ref().map_or(0, |r| r.output_delay())
    }

    /// Converts `input`, appending whatever output is ready to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), ResampleError> {
        let Some(inner) = &mut self.inner else {
            out.extend_from_slice(input);
            return Ok(());
        };
        self.pending.extend_from_slice(input);
        let mut used = 0;
        while self.pending.len() - used >= self.chunk {
            let err = |e: String| ResampleError::Process { from: self.from, to: self.to, reason: e };
            let input = InterleavedSlice::new(&self.pending[used..used + self.chunk], 1, self.chunk)
                .map_err(|e| err(e.to_string()))?;
            let frames = self.out_buf.len();
            let mut output =
                InterleavedSlice::new_mut(&mut self.out_buf[..], 1, frames).map_err(|e| err(e.to_string()))?;
            let (consumed, written) =
                inner.process_into_buffer(&input, &mut output, None).map_err(|e| err(e.to_string()))?;
            out.extend_from_slice(&self.out_buf[..written]);
            used += consumed.max(1);
        }
        self.pending.drain(..used);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, rate: u32, n: usize) -> Vec<f32> {
        (0..n).map(|i| (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 0.5).collect()
    }

    /// Frequency by counting rising zero crossings.
    fn frequency(samples: &[f32], rate: u32) -> f32 {
        let crossings = samples.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        crossings as f32 * rate as f32 / samples.len() as f32
    }

    #[test]
    fn converts_rates_keeping_tone_and_length() {
        for (from, to) in [(48000, 8000), (8000, 48000), (44100, 48000), (48000, 44100), (16000, 16000)] {
            let mut r = Resampler::new(from, to).unwrap();
            let input = sine(440.0, from, from as usize); // one second
            let mut out = Vec::new();
            // Fed in odd-sized pieces, as devices deliver.
            for piece in input.chunks(333) {
                r.process(piece, &mut out).unwrap();
            }
            let expected = to as usize;
            assert!(out.len() <= expected && out.len() + to as usize / 50 >= expected, "{from}->{to}: {}", out.len());
            let steady = &out[r.delay() + to as usize / 10..];
            let f = frequency(steady, to);
            assert!((f - 440.0).abs() < 5.0, "{from}->{to}: {f} Hz");
            let peak = steady.iter().fold(0f32, |m, &s| m.max(s.abs()));
            assert!((peak - 0.5).abs() < 0.05, "{from}->{to}: peak {peak}");
        }
        assert!(Resampler::new(0, 8000).is_err());
    }
}
