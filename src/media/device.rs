//! Sound cards through cpal, on a thread of their own.
//!
//! cpal calls us from the audio driver's real-time thread: a callback that allocates or
//! locks can miss its deadline and the operator hears a crackle. So the callbacks only move
//! samples through lock-free SPSC ring buffers (`ringbuf`) to and from the media task, and
//! report failures by setting an atomic flag.
//!
//! The streams are built and owned by one device thread (a cpal stream need not be `Send`).
//! It watches the flags: when a headset is unplugged mid-call it opens the system default in
//! its place, hands the media task the new ring buffer, and says so with a `DeviceEvent`;
//! the call goes on. A device chosen in Settings that no longer exists is replaced by the
//! default (with a notice); one that exists but cannot be opened is an error naming it.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SampleFormat, SizedSample};
use crossbeam_channel::{Receiver, Sender};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

use super::audio::{AudioSink, AudioSource, DeviceDirection, DeviceEvent};

/// Why a sound device cannot be used.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DeviceError {
    #[error("cannot open the {direction} device \"{name}\": {reason}; choose another device in Settings")]
    Open { direction: &'static str, name: String, reason: String },
    #[error("there is no default {direction} device: connect a headset or choose a device in Settings")]
    NoDefault { direction: &'static str },
    #[error("cannot list the sound devices: {0}")]
    List(String),
    #[error("the sound device thread could not start: {0}")]
    Thread(String),
}

/// Names of the input and output devices, for the Settings screen.
pub fn list_devices() -> Result<(Vec<String>, Vec<String>), DeviceError> {
    let host = cpal::default_host();
    let inputs = host.input_devices().map_err(|e| DeviceError::List(e.to_string()))?;
    let outputs = host.output_devices().map_err(|e| DeviceError::List(e.to_string()))?;
    Ok((inputs.map(|d| device_name(&d)).collect(), outputs.map(|d| device_name(&d)).collect()))
}

fn device_name(device: &cpal::Device) -> String {
    device.description().map(|d| d.name().to_string()).unwrap_or_else(|_| "(unnamed device)".to_string())
}

/// How much audio the rings hold at most; more is dropped rather than delayed.
const RING_SECONDS: f64 = 0.5;

/// The microphone side, read by the media task.
pub struct DeviceSource {
    name: String,
    rate: u32,
    ring: Option<HeapCons<f32>>,
    swaps: Receiver<(HeapCons<f32>, u32, String)>,
    /// A replacement seen by `sample_rate` (which only has `&self`), taken by `read`.
    pending: RefCell<Option<(HeapCons<f32>, u32, String)>>,
    events: Receiver<DeviceEvent>,
    /// Input often arrives in bursts: wait for this many samples before reading again.
    cushion: usize,
    primed: bool,
    _alive: Arc<()>,
}

/// The headset side, written by the media task.
pub struct DeviceSink {
    name: String,
    rate: u32,
    ring: Option<HeapProd<f32>>,
    swaps: Receiver<(HeapProd<f32>, u32, String)>,
    pending: RefCell<Option<(HeapProd<f32>, u32, String)>>,
    events: Receiver<DeviceEvent>,
    _alive: Arc<()>,
}

impl DeviceSource {
    /// The device in use now.
    pub fn device_name(&self) -> &str {
        &self.name
    }
}

impl DeviceSink {
    pub fn device_name(&self) -> &str {
        &self.name
    }
}

impl AudioSource for DeviceSource {
    fn sample_rate(&self) -> u32 {
        let mut pending = self.pending.borrow_mut();
        if let Some(swap) = self.swaps.try_iter().last() {
            *pending = Some(swap);
        }
        pending.as_ref().map_or(self.rate, |s| s.1)
    }

    fn read(&mut self, out: &mut [f32]) {
        if let Some((ring, rate, name)) = self.pending.get_mut().take().or_else(|| self.swaps.try_iter().last()) {
            self.ring = Some(ring);
            self.rate = rate;
            self.name = name;
            self.primed = false;
        }
        let Some(ring) = &mut self.ring else {
            out.fill(0.0);
            return;
        };
        let step = out.len();
        if !self.primed {
            if ring.occupied_len() < step + self.cushion {
                out.fill(0.0);
                return;
            }
            self.primed = true;
        }
        // Too much waiting: the device runs fast or we were stalled; drop the oldest.
        let limit = step + self.cushion + self.rate as usize / 5;
        let backlog = ring.occupied_len();
        if backlog > limit {
            ring.skip(backlog - (step + self.cushion));
        }
        let got = ring.pop_slice(out);
        if got < step {
            out[got..].fill(0.0);
            // An underrun: the device delivers in bigger bursts than we allowed for.
            self.cushion = (self.cushion + step).min(self.rate as usize * 3 / 10);
            self.primed = false;
        }
    }

    fn poll_event(&mut self) -> Option<DeviceEvent> {
        self.events.try_recv().ok()
    }
}

impl AudioSink for DeviceSink {
    fn sample_rate(&self) -> u32 {
        let mut pending = self.pending.borrow_mut();
        if let Some(swap) = self.swaps.try_iter().last() {
            *pending = Some(swap);
        }
        pending.as_ref().map_or(self.rate, |s| s.1)
    }

    fn write(&mut self, samples: &[f32]) {
        if let Some((ring, rate, name)) = self.pending.get_mut().take().or_else(|| self.swaps.try_iter().last()) {
            self.ring = Some(ring);
            self.rate = rate;
            self.name = name;
        }
        let Some(ring) = &mut self.ring else { return };
        // What does not fit is dropped: late audio is worse than a missing bit.
        let _ = ring.push_slice(samples);
    }

    fn poll_event(&mut self) -> Option<DeviceEvent> {
        self.events.try_recv().ok()
    }
}

/// Opens the input and output devices by name (None: the system default) on a device
/// thread. A name that matches no device falls back to the default with a notice.
pub fn open_devices(input: Option<&str>, output: Option<&str>) -> Result<(DeviceSource, DeviceSink), DeviceError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (in_swap_tx, in_swap_rx) = crossbeam_channel::unbounded();
    let (out_swap_tx, out_swap_rx) = crossbeam_channel::unbounded();
    let (in_event_tx, in_event_rx) = crossbeam_channel::unbounded();
    let (out_event_tx, out_event_rx) = crossbeam_channel::unbounded();
    let alive = Arc::new(());
    let thread_alive = Arc::clone(&alive);
    let wanted = (input.map(str::to_string), output.map(str::to_string));
    thread::Builder::new()
        .name("audio-devices".into())
        .spawn(move || {
            device_thread(
                wanted,
                ready_tx,
                thread_alive,
                Side { swaps: in_swap_tx, events: in_event_tx },
                Side { swaps: out_swap_tx, events: out_event_tx },
            )
        })
        .map_err(|e| DeviceError::Thread(e.to_string()))?;
    let (in_name, out_name) = ready_rx.recv().map_err(|_| DeviceError::Thread("it stopped while opening".into()))??;
    let first_in = in_swap_rx.try_recv().ok();
    let first_out = out_swap_rx.try_recv().ok();
    let (in_rate, out_rate) = (first_in.as_ref().map_or(48000, |s| s.1), first_out.as_ref().map_or(48000, |s| s.1));
    let source = DeviceSource {
        name: in_name,
        rate: in_rate,
        ring: first_in.map(|s| s.0),
        swaps: in_swap_rx,
        pending: RefCell::new(None),
        events: in_event_rx,
        cushion: in_rate as usize / 50,
        primed: false,
        _alive: Arc::clone(&alive),
    };
    let sink = DeviceSink {
        name: out_name,
        rate: out_rate,
        ring: first_out.map(|s| s.0),
        swaps: out_swap_rx,
        pending: RefCell::new(None),
        events: out_event_rx,
        _alive: alive,
    };
    Ok((source, sink))
}

struct Side<R> {
    swaps: Sender<(R, u32, String)>,
    events: Sender<DeviceEvent>,
}

struct Running {
    _stream: cpal::Stream,
    failed: Arc<AtomicBool>,
    /// Callbacks so far: a device that vanishes sometimes just stops calling back.
    progress: Arc<AtomicU64>,
    last_progress: (u64, Instant),
    name: String,
}

/// A stream whose callbacks stop for this long has lost its device.
const STALL: Duration = Duration::from_secs(2);

impl Running {
    fn new(stream: cpal::Stream, failed: Arc<AtomicBool>, progress: Arc<AtomicU64>, name: String) -> Running {
        Running { _stream: stream, failed, progress, last_progress: (0, Instant::now()), name }
    }

    fn is_broken(&mut self) -> bool {
        let now = Instant::now();
        let count = self.progress.load(Ordering::Relaxed);
        if count != self.last_progress.0 {
            self.last_progress = (count, now);
        }
        self.failed.load(Ordering::Acquire) || now.duration_since(self.last_progress.1) > STALL
    }
}

fn find_device(host: &cpal::Host, direction: DeviceDirection, wanted: Option<&str>) -> (Option<cpal::Device>, bool) {
    if let Some(name) = wanted {
        let devices = match direction {
            DeviceDirection::Input => host.input_devices().map(|d| d.collect::<Vec<_>>()),
            DeviceDirection::Output => host.output_devices().map(|d| d.collect::<Vec<_>>()),
        };
        if let Some(d) = devices
            .unwrap_or_default()
            .into_iter()
            .find(|d| device_name(d) == name || d.id().map(|id| id.to_string() == name).unwrap_or(false))
        {
            return (Some(d), false);
        }
    }
    let default = match direction {
        DeviceDirection::Input => host.default_input_device(),
        DeviceDirection::Output => host.default_output_device(),
    };
    (default, wanted.is_some())
}

fn open_input(host: &cpal::Host, wanted: Option<&str>, side: &Side<HeapCons<f32>>) -> Result<Running, DeviceError> {
    let direction = "input";
    let (device, fell_back) = find_device(host, DeviceDirection::Input, wanted);
    let device = device.ok_or(DeviceError::NoDefault { direction })?;
    let name = device_name(&device);
    let open_error = |reason: String| DeviceError::Open { direction, name: name.clone(), reason };
    let config = device.default_input_config().map_err(|e| open_error(e.to_string()))?;
    let rate = config.sample_rate();
    let channels = config.channels().max(1) as usize;
    let ring = HeapRb::<f32>::new((rate as f64 * RING_SECONDS) as usize);
    let (producer, consumer) = ring.split();
    let failed = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let flags = (&failed, &progress);
    let stream = match config.sample_format() {
        SampleFormat::F32 => build_input::<f32>(&device, config.config(), channels, producer, flags),
        SampleFormat::I16 => build_input::<i16>(&device, config.config(), channels, producer, flags),
        SampleFormat::I32 => build_input::<i32>(&device, config.config(), channels, producer, flags),
        SampleFormat::U16 => build_input::<u16>(&device, config.config(), channels, producer, flags),
        SampleFormat::U8 => build_input::<u8>(&device, config.config(), channels, producer, flags),
        SampleFormat::I8 => build_input::<i8>(&device, config.config(), channels, producer, flags),
        SampleFormat::F64 => build_input::<f64>(&device, config.config(), channels, producer, flags),
        other => return Err(open_error(format!("its sample format {other:?} is not supported"))),
    }
    .map_err(|e| open_error(e.to_string()))?;
    stream.play().map_err(|e| open_error(e.to_string()))?;
    let _ = side.swaps.send((consumer, rate, name.clone()));
    if let (true, Some(wanted)) = (fell_back, wanted) {
        let _ = side.events.send(DeviceEvent::Changed {
            direction: DeviceDirection::Input,
            from: wanted.to_string(),
            to: name.clone(),
            reason: "not found".into(),
        });
    }
    Ok(Running::new(stream, failed, progress, name))
}

fn open_output(host: &cpal::Host, wanted: Option<&str>, side: &Side<HeapProd<f32>>) -> Result<Running, DeviceError> {
    let direction = "output";
    let (device, fell_back) = find_device(host, DeviceDirection::Output, wanted);
    let device = device.ok_or(DeviceError::NoDefault { direction })?;
    let name = device_name(&device);
    let open_error = |reason: String| DeviceError::Open { direction, name: name.clone(), reason };
    let config = device.default_output_config().map_err(|e| open_error(e.to_string()))?;
    let rate = config.sample_rate();
    let channels = config.channels().max(1) as usize;
    let ring = HeapRb::<f32>::new((rate as f64 * RING_SECONDS) as usize);
    let (mut producer, consumer) = ring.split();
    // A little silence first, so the first callbacks do not underrun while the call starts.
    let _ = producer.push_iter(std::iter::repeat_n(0.0, rate as usize * 40 / 1000));
    let failed = Arc::new(AtomicBool::new(false));
    let progress = Arc::new(AtomicU64::new(0));
    let flags = (&failed, &progress);
    let stream = match config.sample_format() {
        SampleFormat::F32 => build_output::<f32>(&device, config.config(), channels, consumer, flags),
        SampleFormat::I16 => build_output::<i16>(&device, config.config(), channels, consumer, flags),
        SampleFormat::I32 => build_output::<i32>(&device, config.config(), channels, consumer, flags),
        SampleFormat::U16 => build_output::<u16>(&device, config.config(), channels, consumer, flags),
        SampleFormat::U8 => build_output::<u8>(&device, config.config(), channels, consumer, flags),
        SampleFormat::I8 => build_output::<i8>(&device, config.config(), channels, consumer, flags),
        SampleFormat::F64 => build_output::<f64>(&device, config.config(), channels, consumer, flags),
        other => return Err(open_error(format!("its sample format {other:?} is not supported"))),
    }
    .map_err(|e| open_error(e.to_string()))?;
    stream.play().map_err(|e| open_error(e.to_string()))?;
    let _ = side.swaps.send((producer, rate, name.clone()));
    if let (true, Some(wanted)) = (fell_back, wanted) {
        let _ = side.events.send(DeviceEvent::Changed {
            direction: DeviceDirection::Output,
            from: wanted.to_string(),
            to: name.clone(),
            reason: "not found".into(),
        });
    }
    Ok(Running::new(stream, failed, progress, name))
}

type Flags<'a> = (&'a Arc<AtomicBool>, &'a Arc<AtomicU64>);

/// Marks a stream failed from cpal's error callback when the device is gone; other errors
/// (an underrun, a failed recovery) only count if the callbacks also stop (see `STALL`).
fn error_callback(failed: &Arc<AtomicBool>) -> impl FnMut(cpal::Error) + Send + 'static {
    let failed = Arc::clone(failed);
    move |e: cpal::Error| {
        if matches!(
            e.kind(),
            cpal::ErrorKind::DeviceNotAvailable | cpal::ErrorKind::StreamInvalidated | cpal::ErrorKind::HostUnavailable
        ) {
            failed.store(true, Ordering::Release);
        }
    }
}

fn build_input<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    channels: usize,
    mut producer: HeapProd<f32>,
    (failed, progress): Flags,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + Send + 'static,
    f32: FromSample<T>,
{
    let progress = Arc::clone(progress);
    device.build_input_stream::<T, _, _>(
        config,
        move |data: &[T], _| {
            progress.fetch_add(1, Ordering::Relaxed);
            // Real-time thread: a fixed stack buffer, lock-free pushes, no allocation.
            let mut mono = [0f32; 256];
            for block in data.chunks(channels * mono.len()) {
                let frames = block.len() / channels;
                for (m, frame) in mono.iter_mut().zip(block.chunks_exact(channels)) {
                    *m = f32::from_sample_(frame[0]);
                }
                producer.push_slice(&mono[..frames]);
            }
        },
        error_callback(failed),
        None,
    )
}

fn build_output<T>(
    device: &cpal::Device,
    config: cpal::StreamConfig,
    channels: usize,
    mut consumer: HeapCons<f32>,
    (failed, progress): Flags,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample + FromSample<f32> + Send + 'static,
{
    let progress = Arc::clone(progress);
    device.build_output_stream::<T, _, _>(
        config,
        move |data: &mut [T], _| {
            progress.fetch_add(1, Ordering::Relaxed);
            let mut mono = [0f32; 256];
            for block in data.chunks_mut(channels * mono.len()) {
                let frames = block.len() / channels;
                let got = consumer.pop_slice(&mut mono[..frames]);
                mono[got..frames].fill(0.0);
                for (frame, &m) in block.chunks_exact_mut(channels).zip(&mono[..frames]) {
                    frame.fill(T::from_sample_(m));
                }
            }
        },
        error_callback(failed),
        None,
    )
}

type Opened = Result<(String, String), DeviceError>;

/// Keeps one side running: reopens the default when the stream fails, retrying every second.
struct Keeper<R> {
    direction: DeviceDirection,
    side: Side<R>,
    running: Option<Running>,
    last_name: String,
    retry_at: Option<Instant>,
    failure_reported: bool,
}

impl<R> Keeper<R> {
    fn check(&mut self, open: impl Fn(&Side<R>) -> Result<Running, DeviceError>) {
        let failed = self.running.as_mut().is_some_and(Running::is_broken);
        if failed {
            if let Some(broken) = self.running.take() {
                // Closing a stream whose sound server died can block for good (seen with
                // ALSA's PulseAudio plugin): let a throwaway thread do it.
                let _ = thread::Builder::new().name("audio-device-close".into()).spawn(move || drop(broken));
            }
            self.retry_at = Some(Instant::now());
        }
        let Some(at) = self.retry_at else { return };
        if Instant::now() < at {
            return;
        }
        match open(&self.side) {
            Ok(running) => {
                let _ = self.side.events.send(DeviceEvent::Changed {
                    direction: self.direction,
                    from: self.last_name.clone(),
                    to: running.name.clone(),
                    reason: "the device failed or was disconnected".into(),
                });
                self.last_name = running.name.clone();
                self.running = Some(running);
                self.retry_at = None;
                self.failure_reported = false;
            }
            Err(e) => {
                if !self.failure_reported {
                    self.failure_reported = true;
                    let _ = self.side.events.send(DeviceEvent::Failed {
                        direction: self.direction,
                        device: self.last_name.clone(),
                        reason: e.to_string(),
                    });
                }
                self.retry_at = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }
}

fn device_thread(
    wanted: (Option<String>, Option<String>),
    ready: std::sync::mpsc::Sender<Opened>,
    alive: Arc<()>,
    input_side: Side<HeapCons<f32>>,
    output_side: Side<HeapProd<f32>>,
) {
    let host = cpal::default_host();
    let input = match open_input(&host, wanted.0.as_deref(), &input_side) {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let output = match open_output(&host, wanted.1.as_deref(), &output_side) {
        Ok(r) => r,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok((input.name.clone(), output.name.clone())));
    let mut keep_in = Keeper {
        direction: DeviceDirection::Input,
        side: input_side,
        last_name: input.name.clone(),
        running: Some(input),
        retry_at: None,
        failure_reported: false,
    };
    let mut keep_out = Keeper {
        direction: DeviceDirection::Output,
        side: output_side,
        last_name: output.name.clone(),
        running: Some(output),
        retry_at: None,
        failure_reported: false,
    };
    // Until both the source and the sink are dropped (the call ended).
    while Arc::strong_count(&alive) > 1 {
        keep_in.check(|side| open_input(&host, None, side));
        keep_out.check(|side| open_output(&host, None, side));
        thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opening_reports_the_device_by_name_or_falls_back() {
        // No sound server here, or one: either the default opens (and the unknown name is
        // reported as replaced), or the error names the device that failed.
        match open_devices(Some("No Such Headset"), None) {
            Ok((mut source, _sink)) => {
                let mut out = vec![0.0; 960];
                source.read(&mut out);
                let event = source.poll_event();
                assert!(
                    matches!(&event, Some(DeviceEvent::Changed { from, .. }) if from == "No Such Headset"),
                    "{event:?}"
                );
            }
            Err(e) => {
                let text = e.to_string();
                assert!(text.contains("device") && text.contains("Settings"), "{text}");
            }
        }
    }
}
