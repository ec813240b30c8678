//! Figures of the media engine (not pass/fail: numbers for the README and the issue).
//!
//! `cargo bench --bench media --profile dev -- [jitter|cpu|latency|offline|codecs]`
//! (the dev profile builds dependencies — libopus, rubato — at opt-level 2 and reuses the
//! test build; our own code is unoptimised there, so the CPU figures are an upper bound).
//!
//! - `jitter`: the delay our jitter buffer adds on a clean stream and under 0–40 ms of
//!   jitter, simulated (deterministic) and on loopback through an impairing relay.
//! - `cpu`: CPU time of one Opus call (both directions) in real time, from /proc.
//! - `offline`: one endpoint's work for a 10 s Opus call (44.1 kHz device ↔ Opus both ways)
//!   as fast as possible: run it under `valgrind --tool=callgrind` for instruction counts.
//! - `latency`: send → play latency on loopback (source read to sink write, both sessions).
//! - `codecs`: encode + decode of one 20 ms frame of each codec (criterion): PCMU, G.722, Opus.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clinicdesk::media::jitter::{JitterBuffer, JitterConfig};
use clinicdesk::media::resample::Resampler;
use clinicdesk::media::rtp::{RtpHeader, RtpPacket};
use clinicdesk::media::{
    AudioSink, AudioSource, CodecKind, MediaConfig, MediaEvent, MediaSession, NullSink, NullSource, TonePattern,
    ToneSource, bind_rtp,
};
use tokio::net::UdpSocket;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let all = args.is_empty();
    let wants = |name: &str| all || args.iter().any(|a| a == name);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if wants("jitter") {
        jitter_simulated();
        runtime.block_on(jitter_loopback());
    }
    if wants("cpu") {
        runtime.block_on(cpu_real_time());
    }
    if wants("offline") {
        offline_call();
    }
    if wants("latency") {
        runtime.block_on(latency());
    }
    if wants("codecs") {
        codecs();
    }
}

/// Encode + decode of one 20 ms frame of a 440 Hz tone, per codec, by criterion.
fn codecs() {
    let mut c = criterion::Criterion::default();
    for (name, kind) in
        [("PCMU", CodecKind::Pcmu), ("G.722", CodecKind::G722), ("Opus", CodecKind::Opus { stereo: false })]
    {
        let mut codec = kind.build(20).unwrap();
        let rate = kind.sample_rate() as f32;
        let pcm: Vec<i16> = (0..codec.frame_samples())
            .map(|i| (8000.0 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate).sin()) as i16)
            .collect();
        let (mut payload, mut out) = (Vec::with_capacity(1500), Vec::with_capacity(pcm.len()));
        c.bench_function(&format!("{name} encode + decode 20 ms"), |b| {
            b.iter(|| {
                payload.clear();
                out.clear();
                codec.encode(std::hint::black_box(&pcm), &mut payload).unwrap();
                codec.decode(&payload, &mut out).unwrap();
                std::hint::black_box(&out);
            })
        });
    }
    c.final_summary();
}

// ---------------------------------------------------------------------------------------------

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn jitter_simulated() {
    for (label, jitter_ms) in [("clean", 0.0), ("0–40 ms jitter", 40.0)] {
        let mut codec = CodecKind::Pcmu.build(20).unwrap();
        let mut jb = JitterBuffer::new(JitterConfig::new(8000, 160));
        let start = Instant::now();
        let mut rng = Lcg(1);
        let payload = vec![0xd5u8; 160];
        let mut arrivals: Vec<(f64, u32)> =
            (0..1500u32).map(|i| (20.0 * i as f64 + 2.0 + rng.next() * jitter_ms, i)).collect();
        arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut pending = arrivals.into_iter().peekable();
        let mut delays = Vec::new();
        let mut out = Vec::new();
        for tick in 0..1500 {
            let now_ms = 7.0 + 20.0 * tick as f64;
            while let Some(&(t, i)) = pending.peek() {
                if t > now_ms {
                    break;
                }
                jb.push(i as u16, 160 * i, &payload, start + Duration::from_secs_f64(t / 1000.0));
                pending.next();
            }
            out.clear();
            jb.pop(start + Duration::from_secs_f64(now_ms / 1000.0), codec.as_mut(), &mut out);
            if tick >= 250 {
                delays.push(jb.delay_ms());
            }
        }
        let mean = delays.iter().sum::<f64>() / delays.len() as f64;
        let max = delays.iter().cloned().fold(0.0, f64::max);
        let stats = jb.stats();
        println!(
            "jitter buffer (simulated, {label}): mean delay {mean:.1} ms, max {max:.1} ms; \
             late packets {} of 1500, concealed {}, underruns {}",
            stats.packets_late, stats.frames_concealed, stats.frames_underrun
        );
    }
    println!(
        "  for comparison, baresip's default jitter buffer holds a fixed 100–200 ms (jitter_buffer_delay 5-10 frames)"
    );
}

/// Like the relay in tests/it/media.rs: 0–40 ms extra delay and 5 % loss while impaired.
async fn relay(socket: Arc<UdpSocket>, b: SocketAddr, impaired: Arc<AtomicBool>) {
    let mut a: Option<SocketAddr> = None;
    let mut buf = vec![0u8; 2048];
    let mut rng = Lcg(99);
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else { return };
        let data = buf[..n].to_vec();
        if from == b {
            if let Some(a) = a {
                let _ = socket.send_to(&data, a).await;
            }
            continue;
        }
        a = Some(from);
        if !impaired.load(Ordering::Relaxed) {
            let _ = socket.send_to(&data, b).await;
            continue;
        }
        if rng.next() < 0.05 {
            continue;
        }
        let delay = Duration::from_secs_f64(rng.next() * 0.040);
        let socket = Arc::clone(&socket);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = socket.send_to(&data, b).await;
        });
    }
}

async fn jitter_loopback() {
    let ip = "127.0.0.1".parse().unwrap();
    let (sa, sb) = (bind_rtp(ip).await.unwrap(), bind_rtp(ip).await.unwrap());
    let addr_b = sb.rtp.local_addr().unwrap();
    let relay_socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let relay_addr = relay_socket.local_addr().unwrap();
    let impaired = Arc::new(AtomicBool::new(false));
    let task = tokio::spawn(relay(Arc::clone(&relay_socket), addr_b, Arc::clone(&impaired)));
    let config = |remote| {
        let mut c = MediaConfig::new(remote, CodecKind::Opus { stereo: false }, 111);
        c.rtcp_mux = true;
        c.stats_interval = Duration::from_millis(100);
        c
    };
    let tone = Box::new(ToneSource::new(TonePattern::steady(440.0, 0.5), 48000));
    let (a, _a_events) = MediaSession::start(config(relay_addr), sa, tone, Box::new(NullSink { rate: 48000 })).unwrap();
    let (b, mut b_events) = MediaSession::start(
        config(relay_addr),
        sb,
        Box::new(NullSource { rate: 48000 }),
        Box::new(NullSink { rate: 48000 }),
    )
    .unwrap();
    for (label, impair, seconds) in [("clean", false, 6u64), ("0–40 ms jitter, 5 % loss", true, 10)] {
        impaired.store(impair, Ordering::Relaxed);
        let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
        let settle = tokio::time::Instant::now() + Duration::from_secs(seconds / 2);
        let mut delays = Vec::new();
        while let Ok(Some(event)) = tokio::time::timeout_at(until, b_events.recv()).await {
            if let (MediaEvent::Stats(s), true) = (event, tokio::time::Instant::now() >= settle) {
                delays.push(s.jitter_buffer_ms);
            }
        }
        let mean = delays.iter().sum::<f64>() / delays.len().max(1) as f64;
        println!("jitter buffer (loopback, Opus, {label}): mean delay {mean:.1} ms over the last {} s", seconds / 2);
    }
    let stats = b.stop().await.unwrap();
    a.stop().await.unwrap();
    task.abort();
    println!(
        "  receiver figures: loss {:.1} %, jitter {:.1} ms, concealed {}, FEC {}, underruns {}, late {}, MOS {:.2} ({:?})",
        stats.loss_percent,
        stats.jitter_ms,
        stats.frames_concealed,
        stats.frames_fec,
        stats.frames_underrun,
        stats.packets_late,
        stats.mos,
        stats.quality
    );
}

// ---------------------------------------------------------------------------------------------

/// User + system CPU time of this process, from /proc/self/stat.
fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
    // USER_HZ is 100 on Linux.
    Duration::from_millis(ticks * 10)
}

async fn cpu_real_time() {
    let ip = "127.0.0.1".parse().unwrap();
    let (sa, sb) = (bind_rtp(ip).await.unwrap(), bind_rtp(ip).await.unwrap());
    let (addr_a, addr_b) = (sa.rtp.local_addr().unwrap(), sb.rtp.local_addr().unwrap());
    let opus = CodecKind::Opus { stereo: false };
    let tone = |f| Box::new(ToneSource::new(TonePattern::steady(f, 0.4), 44100));
    let cpu0 = process_cpu();
    let wall0 = Instant::now();
    let (a, _ea) =
        MediaSession::start(MediaConfig::new(addr_b, opus, 111), sa, tone(440.0), Box::new(NullSink { rate: 44100 }))
            .unwrap();
    let (b, _eb) =
        MediaSession::start(MediaConfig::new(addr_a, opus, 111), sb, tone(1000.0), Box::new(NullSink { rate: 44100 }))
            .unwrap();
    tokio::time::sleep(Duration::from_secs(10)).await;
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    let cpu = process_cpu() - cpu0;
    let wall = wall0.elapsed();
    println!(
        "CPU, real time: two endpoints of an Opus call (44.1 kHz tone in, both ways) for {:.1} s used {:.2} s of CPU \
         = {:.1} % of one core per endpoint",
        wall.as_secs_f64(),
        cpu.as_secs_f64(),
        cpu.as_secs_f64() / wall.as_secs_f64() * 100.0 / 2.0
    );
}

/// One endpoint's per-call work for 10 s, without sockets or sleeping.
fn offline_call() {
    let opus = CodecKind::Opus { stereo: false };
    let mut near = opus.build(20).unwrap();
    let mut far = opus.build(20).unwrap();
    let mut mic = ToneSource::new(TonePattern::steady(440.0, 0.4), 44100);
    let mut far_voice = ToneSource::new(TonePattern::steady(1000.0, 0.4), 48000);
    let mut capture = Resampler::new(44100, 48000).unwrap();
    let mut playback = Resampler::new(48000, 44100).unwrap();
    let mut jb = JitterBuffer::new(JitterConfig::new(48000, 960));
    let (mut raw, mut fifo, mut pcm, mut payload, mut packet) =
        (vec![0f32; 882], Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut far_raw, mut far_pcm, mut decoded, mut played, mut played_f32) =
        (vec![0f32; 960], Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    let t0 = Instant::now();
    for i in 0..500u32 {
        // Send: device rate → 48 kHz → Opus → RTP.
        mic.read(&mut raw);
        capture.process(&raw, &mut fifo).unwrap();
        if fifo.len() < 960 {
            fifo.splice(0..0, std::iter::repeat_n(0.0, 960 - fifo.len()));
        }
        pcm.clear();
        pcm.extend(fifo.drain(..960).map(|x: f32| (x * 32767.0) as i16));
        payload.clear();
        near.encode(&pcm, &mut payload).unwrap();
        packet.clear();
        RtpHeader { payload_type: 111, sequence: i as u16, timestamp: 960 * i, ssrc: 1, ..Default::default() }
            .write(&payload, &mut packet);
        std::hint::black_box(&packet);
        // Receive: RTP → jitter buffer → Opus → 44.1 kHz (the far end's packet, encoded outside the count below).
        far_voice.read(&mut far_raw);
        far_pcm.clear();
        far_pcm.extend(far_raw.iter().map(|&x| (x * 32767.0) as i16));
        decoded.clear();
        far.encode(&far_pcm, &mut decoded).unwrap();
        let mut incoming = Vec::new();
        RtpHeader { payload_type: 111, sequence: i as u16, timestamp: 960 * i, ssrc: 2, ..Default::default() }
            .write(&decoded, &mut incoming);
        let now = t0 + Duration::from_millis(20 * i as u64);
        let parsed = RtpPacket::parse(&incoming).unwrap();
        jb.push(parsed.header.sequence, parsed.header.timestamp, parsed.payload, now);
        played.clear();
        jb.pop(now + Duration::from_millis(10), near.as_mut(), &mut played);
        played_f32.clear();
        let mut out = Vec::new();
        playback.process(&played.iter().map(|&s| s as f32 / 32768.0).collect::<Vec<_>>(), &mut out).unwrap();
        std::hint::black_box(&out);
        played_f32.extend(out);
    }
    let elapsed = start.elapsed();
    println!(
        "CPU, offline: 10 s of one endpoint of an Opus call (plus the far end's encoder) took {:.3} s = {:.2} % of a core \
         (for instruction counts: valgrind --tool=callgrind <this binary> offline)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() / 10.0 * 100.0
    );
}

// ---------------------------------------------------------------------------------------------

/// Bursts of tone; notes when each burst's first sample is handed to the session.
struct BurstSource {
    rate: u32,
    n: u64,
    onsets: Arc<Mutex<Vec<Instant>>>,
}

impl AudioSource for BurstSource {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn read(&mut self, out: &mut [f32]) {
        let now = Instant::now();
        let period = self.rate as u64; // one burst a second, 200 ms long
        for (k, s) in out.iter_mut().enumerate() {
            let pos = self.n % period;
            if pos == 0 && self.n > 0 {
                let offset = Duration::from_secs_f64(k as f64 / self.rate as f64);
                self.onsets.lock().unwrap().push(now + offset);
            }
            *s = if pos < period / 5 && self.n >= period {
                0.5 * (2.0 * std::f32::consts::PI * 1000.0 * pos as f32 / self.rate as f32).sin()
            } else {
                0.0
            };
            self.n += 1;
        }
    }
}

/// Notes when each burst's first loud sample is written by the session.
struct OnsetSink {
    rate: u32,
    quiet_for: u64,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl AudioSink for OnsetSink {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn write(&mut self, samples: &[f32]) {
        let now = Instant::now();
        for (k, &s) in samples.iter().enumerate() {
            if s.abs() > 0.05 {
                if self.quiet_for > self.rate as u64 / 2 {
                    let offset = Duration::from_secs_f64(k as f64 / self.rate as f64);
                    self.arrivals.lock().unwrap().push(now + offset);
                }
                self.quiet_for = 0;
            } else {
                self.quiet_for += 1;
            }
        }
    }
}

async fn latency() {
    for codec in [CodecKind::Pcmu, CodecKind::Opus { stereo: false }] {
        let ip = "127.0.0.1".parse().unwrap();
        let (sa, sb) = (bind_rtp(ip).await.unwrap(), bind_rtp(ip).await.unwrap());
        let (addr_a, addr_b) = (sa.rtp.local_addr().unwrap(), sb.rtp.local_addr().unwrap());
        let pt = codec.static_payload_type().unwrap_or(111);
        let onsets = Arc::new(Mutex::new(Vec::new()));
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let source = BurstSource { rate: 48000, n: 0, onsets: Arc::clone(&onsets) };
        let sink = OnsetSink { rate: 48000, quiet_for: 0, arrivals: Arc::clone(&arrivals) };
        let (a, _ea) = MediaSession::start(
            MediaConfig::new(addr_b, codec, pt),
            sa,
            Box::new(source),
            Box::new(NullSink { rate: 48000 }),
        )
        .unwrap();
        let (b, _eb) = MediaSession::start(
            MediaConfig::new(addr_a, codec, pt),
            sb,
            Box::new(NullSource { rate: 48000 }),
            Box::new(sink),
        )
        .unwrap();
        tokio::time::sleep(Duration::from_secs(11)).await;
        a.stop().await.unwrap();
        b.stop().await.unwrap();
        let onsets = onsets.lock().unwrap().clone();
        let arrivals = arrivals.lock().unwrap().clone();
        let latencies: Vec<f64> =
            onsets.iter().zip(&arrivals).map(|(s, r)| r.saturating_duration_since(*s).as_secs_f64() * 1000.0).collect();
        let mean = latencies.iter().sum::<f64>() / latencies.len().max(1) as f64;
        let (min, max) = latencies.iter().fold((f64::MAX, 0.0f64), |(lo, hi), &l| (lo.min(l), hi.max(l)));
        println!(
            "latency send → play on loopback ({codec}, 48 kHz source and sink): mean {mean:.1} ms, min {min:.1}, max {max:.1} \
             over {} bursts (device buffers not included)",
            latencies.len()
        );
    }
}
