//! WAV files as the microphone and as the recorder (`clinicdesk phone --play/--record`).
//!
//! Headless runs and the tests against baresip need audio without a sound card: a file of
//! any rate and channel count plays as the microphone (mixed to mono; the session resamples),
//! and what we receive (or send) is written as 16-bit mono WAV.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::MediaError;
use super::audio::{AudioSink, AudioSource};

/// A WAV file played as the microphone: its samples, then silence (or again, when looped).
pub struct WavSource {
    rate: u32,
    samples: Vec<f32>,
    position: usize,
    looped: bool,
}

impl WavSource {
    /// Reads the whole file (calls are short; a minute of 48 kHz mono is 11 MB of f32).
    pub fn open(path: &Path) -> Result<WavSource, MediaError> {
        let wav_error = |source| MediaError::Wav { path: path.to_path_buf(), source };
        let mut reader = hound::WavReader::open(path).map_err(wav_error)?;
        let spec = reader.spec();
        if spec.channels == 0 || spec.sample_rate == 0 {
            return Err(MediaError::WavFormat {
                path: path.to_path_buf(),
                reason: format!("{} channels at {} Hz", spec.channels, spec.sample_rate),
            });
        }
        let interleaved: Vec<f32> = match spec.sample_format {
            hound::SampleFormat::Float => reader.samples::<f32>().collect::<Result<_, _>>().map_err(wav_error)?,
            hound::SampleFormat::Int => {
                let scale = 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f32;
                reader
                    .samples::<i32>()
                    .map(|s| s.map(|v| v as f32 * scale))
                    .collect::<Result<_, _>>()
                    .map_err(wav_error)?
            }
        };
        let channels = spec.channels as usize;
        let samples = interleaved.chunks(channels).map(|frame| frame.iter().sum::<f32>() / channels as f32).collect();
        Ok(WavSource { rate: spec.sample_rate, samples, position: 0, looped: false })
    }

    /// Plays the file again and again instead of falling silent at its end.
    pub fn looped(mut self, looped: bool) -> WavSource {
        self.looped = looped;
        self
    }

    /// Length of the file's audio.
    pub fn duration(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.samples.len() as f64 / self.rate as f64)
    }

    /// True once the whole file has been played (never when looped).
    pub fn is_finished(&self) -> bool {
        !self.looped && self.position >= self.samples.len()
    }
}

impl AudioSource for WavSource {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn read(&mut self, out: &mut [f32]) {
        let mut filled = 0;
        while filled < out.len() {
            if self.position >= self.samples.len() {
                if self.looped && !self.samples.is_empty() {
                    self.position = 0;
                } else {
                    out[filled..].fill(0.0);
                    return;
                }
            }
            let n = (self.samples.len() - self.position).min(out.len() - filled);
            out[filled..filled + n].copy_from_slice(&self.samples[self.position..self.position + n]);
            filled += n;
            self.position += n;
        }
    }
}

/// Records into a 16-bit mono WAV file, finalised by `finish` (or on drop, best effort).
pub struct WavSink {
    path: PathBuf,
    rate: u32,
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    error: Option<hound::Error>,
}

impl WavSink {
    pub fn create(path: &Path, rate: u32) -> Result<WavSink, MediaError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path, spec)
            .map_err(|source| MediaError::Wav { path: path.to_path_buf(), source })?;
        Ok(WavSink { path: path.to_path_buf(), rate, writer: Some(writer), error: None })
    }
}

impl AudioSink for WavSink {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn write(&mut self, samples: &[f32]) {
        let Some(writer) = &mut self.writer else { return };
        for &s in samples {
            if let Err(e) = writer.write_sample((s * 32767.0).clamp(-32768.0, 32767.0) as i16) {
                // Keep the first error for `finish`; stop writing (a full disk stays full).
                self.error = Some(e);
                self.writer = None;
                return;
            }
        }
    }

    fn finish(&mut self) -> Result<(), MediaError> {
        if let Some(source) = self.error.take() {
            return Err(MediaError::Wav { path: self.path.clone(), source });
        }
        match self.writer.take() {
            Some(writer) => writer.finalize().map_err(|source| MediaError::Wav { path: self.path.clone(), source }),
            None => Ok(()),
        }
    }
}

impl Drop for WavSink {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take()
            && let Err(e) = writer.finalize()
        {
            tracing::warn!("finishing the recording {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stereo_24_bit_file_plays_as_mono_then_silence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44100,
            bits_per_sample: 24,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for _ in 0..100 {
            w.write_sample(1 << 22).unwrap(); // 0.5
            w.write_sample(0).unwrap();
        }
        w.finalize().unwrap();
        let mut src = WavSource::open(&path).unwrap();
        assert_eq!(src.sample_rate(), 44100);
        let mut out = vec![1.0; 150];
        src.read(&mut out);
        assert!((out[0] - 0.25).abs() < 1e-6);
        assert!(out[100..].iter().all(|&s| s == 0.0));
        assert!(src.is_finished());
        let mut looped = WavSource::open(&path).unwrap().looped(true);
        looped.read(&mut out);
        assert!((out[120] - 0.25).abs() < 1e-6);
    }

    #[test]
    fn records_and_reports_bad_paths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.wav");
        let mut sink = WavSink::create(&path, 8000).unwrap();
        sink.write(&[0.5, -0.5, 2.0]);
        sink.finish().unwrap();
        let samples: Vec<i16> = hound::WavReader::open(&path).unwrap().samples().map(|s| s.unwrap()).collect();
        assert_eq!(samples, [16383, -16383, 32767]);

        let missing = dir.path().join("nope/out.wav");
        let err = WavSink::create(&missing, 8000).err().unwrap().to_string();
        assert!(err.contains("nope/out.wav"), "{err}");
        std::fs::write(dir.path().join("text.wav"), "not a wav").unwrap();
        let err = WavSource::open(&dir.path().join("text.wav")).err().unwrap().to_string();
        assert!(err.contains("text.wav"), "{err}");
    }
}
