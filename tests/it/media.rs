//! The media engine end to end, without SIP: two `MediaSession`s on 127.0.0.1 talk to each
//! other (directly, or through an impairing UDP relay), and one talks through PulseAudio
//! null devices via cpal. What they record is measured: frequency, loudness, gaps.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clinicdesk::media::{
    AudioSink, AudioSource, CallStats, CodecKind, DeviceDirection, DeviceEvent, MediaConfig, MediaEvent, MediaHandle,
    MediaSession, NullSource, RtpSockets, TonePattern, ToneSource, WavSink, WavSource, bind_rtp,
};
use tokio::net::UdpSocket;
use tokio::sync::mpsc::UnboundedReceiver;

use super::harness::{Peer, require, wait_for};

// ---------------------------------------------------------------------------------------------
// Measuring recordings

fn write_tone(path: &Path, freq: f32, rate: u32, seconds: f32, level: f32) {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(rate as f32 * seconds) as usize {
        let v = level * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin();
        w.write_sample((v * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

pub(super) fn read_wav(path: &Path) -> (Vec<f32>, u32) {
    let mut r = hound::WavReader::open(path).unwrap();
    let rate = r.spec().sample_rate;
    (r.samples::<i16>().map(|s| s.unwrap() as f32 / 32768.0).collect(), rate)
}

pub(super) fn rms(s: &[f32]) -> f32 {
    (s.iter().map(|x| x * x).sum::<f32>() / s.len().max(1) as f32).sqrt()
}

/// Frequency by rising zero crossings (interpolated), over a whole segment.
pub(super) fn frequency(s: &[f32], rate: u32) -> f32 {
    let mut first = None;
    let mut last = 0.0;
    let mut count = 0;
    for (i, w) in s.windows(2).enumerate() {
        if w[0] < 0.0 && w[1] >= 0.0 {
            let t = i as f32 + w[0] / (w[0] - w[1]);
            if first.is_none() {
                first = Some(t);
            } else {
                count += 1;
            }
            last = t;
        }
    }
    match first {
        Some(f) if count > 0 => count as f32 * rate as f32 / (last - f),
        _ => 0.0,
    }
}

/// The frequency of a tone where it plays: the median of the frequencies of its
/// loud 100 ms windows. A dropout of the sound server on a loaded machine
/// leaves silent stretches, which would lower a whole-segment count of zero
/// crossings without the tone being any different where it sounds.
pub(super) fn tone_frequency(s: &[f32], rate: u32) -> f32 {
    let mut each: Vec<f32> =
        s.chunks_exact(rate as usize / 10).filter(|w| rms(w) > 0.02).map(|w| frequency(w, rate)).collect();
    if each.is_empty() {
        return 0.0;
    }
    each.sort_by(f32::total_cmp);
    each[each.len() / 2]
}

/// The RMS of the loud 10 ms windows only (the level of the tone where it plays).
fn tone_rms(s: &[f32], rate: u32) -> f32 {
    let loud: Vec<f32> = s.chunks(rate as usize / 100).filter(|w| rms(w) > 0.02).flatten().copied().collect();
    rms(&loud)
}

/// The part of a recording where the tone plays: from 0.5 s after it starts to 0.3 s
/// before it ends (start-up and hang-up are not what is measured).
pub(super) fn active(s: &[f32], rate: u32) -> &[f32] {
    let win = rate as usize / 100;
    let loud = |w: &[f32]| rms(w) > 0.02;
    let first = s.chunks(win).position(loud).expect("the recording is silent");
    let last = s.chunks(win).rposition(loud).unwrap();
    let (a, b) = ((first * win) + rate as usize / 2, (last * win).saturating_sub(rate as usize * 3 / 10));
    assert!(b > a + rate as usize, "less than a second of sound: {}..{}", a, b);
    &s[a..b]
}

/// The longest run of 5 ms windows that are nearly silent, in ms.
pub(super) fn longest_gap_ms(s: &[f32], rate: u32) -> f32 {
    let win = rate as usize / 200;
    let mut longest = 0;
    let mut run = 0;
    for w in s.chunks(win) {
        if rms(w) < 0.01 {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest as f32 * 5.0
}

fn assert_tone(path: &Path, freq: f32, level: f32, what: &str) {
    let (samples, rate) = read_wav(path);
    let tone = active(&samples, rate);
    let f = tone_frequency(tone, rate);
    assert!((f - freq).abs() <= 10.0, "{what}: {f} Hz where {freq} Hz was sent");
    let expected = level / 2f32.sqrt();
    let got = tone_rms(tone, rate);
    eprintln!("{what}: {f:.1} Hz, RMS {got:.3} (sent {expected:.3})");
    // Within ±2 dB of what was sent.
    assert!(got > expected * 0.79 && got < expected * 1.26, "{what}: RMS {got}, sent {expected}");
}

// ---------------------------------------------------------------------------------------------
// Two sessions back to back

struct Side {
    handle: MediaHandle,
    events: UnboundedReceiver<MediaEvent>,
}

fn config(remote: SocketAddr, codec: CodecKind) -> MediaConfig {
    let pt = codec.static_payload_type().unwrap_or(111);
    let mut c = MediaConfig::new(remote, codec, pt);
    c.telephone_event = Some((101, if pt == 111 { 48000 } else { 8000 }));
    c.stats_interval = Duration::from_millis(200);
    c
}

fn start(c: MediaConfig, sockets: RtpSockets, source: Box<dyn AudioSource>, sink: Box<dyn AudioSink>) -> Side {
    let (handle, events) = MediaSession::start(c, sockets, source, sink).unwrap();
    Side { handle, events }
}

async fn pair() -> (RtpSockets, RtpSockets) {
    let ip = "127.0.0.1".parse().unwrap();
    (bind_rtp(ip).await.unwrap(), bind_rtp(ip).await.unwrap())
}

fn addr(s: &RtpSockets) -> SocketAddr {
    s.rtp.local_addr().unwrap()
}

async fn tone_both_ways(codec: CodecKind) {
    let dir = tempfile::tempdir().unwrap();
    let a_in = dir.path().join("a-440.wav");
    let b_in = dir.path().join("b-1000.wav");
    // Different rates from the codecs' on purpose: the sessions resample.
    write_tone(&a_in, 440.0, 16000, 3.0, 0.5);
    write_tone(&b_in, 1000.0, 44100, 3.0, 0.4);
    let (sa, sb) = pair().await;
    let (addr_a, addr_b) = (addr(&sa), addr(&sb));
    let a = start(
        config(addr_b, codec),
        sa,
        Box::new(WavSource::open(&a_in).unwrap()),
        Box::new(WavSink::create(&dir.path().join("a-heard.wav"), 48000).unwrap()),
    );
    let b = start(
        config(addr_a, codec),
        sb,
        Box::new(WavSource::open(&b_in).unwrap()),
        Box::new(WavSink::create(&dir.path().join("b-heard.wav"), 8000).unwrap()),
    );
    tokio::time::sleep(Duration::from_millis(3400)).await;
    let stats_a = a.handle.stop().await.unwrap();
    let stats_b = b.handle.stop().await.unwrap();
    assert!(stats_a.packets_sent >= 140, "{stats_a:?}");
    assert!(stats_b.packets_received >= 100, "{stats_b:?}");
    assert_eq!(stats_b.codec, codec.to_string());
    assert_tone(&dir.path().join("b-heard.wav"), 440.0, 0.5, &format!("{codec} A→B"));
    assert_tone(&dir.path().join("a-heard.wav"), 1000.0, 0.4, &format!("{codec} B→A"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tone_crosses_both_ways_with_pcmu() {
    tone_both_ways(CodecKind::Pcmu).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tone_crosses_both_ways_with_pcma() {
    tone_both_ways(CodecKind::Pcma).await;
}

/// G.722: 16 kHz audio under an 8000 Hz RTP clock, resampled from and to other rates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tone_crosses_both_ways_with_g722() {
    tone_both_ways(CodecKind::G722).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tone_crosses_both_ways_with_opus() {
    tone_both_ways(CodecKind::Opus { stereo: false }).await;
}

async fn next_digits(events: &mut UnboundedReceiver<MediaEvent>, count: usize) -> String {
    let mut digits = String::new();
    let collect = async {
        while digits.len() < count {
            match events.recv().await {
                Some(MediaEvent::Dtmf(d)) => digits.push(d),
                Some(_) => {}
                None => break,
            }
        }
    };
    // A safety net only: the digits take about a second.
    let _ = tokio::time::timeout(Duration::from_secs(20), collect).await;
    digits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dtmf_digits_arrive_once_each_in_order_both_ways() {
    // telephone-event/8000 beside G.722 runs at its RTP clock, beside Opus at another one.
    for codec in [CodecKind::Pcmu, CodecKind::G722, CodecKind::Opus { stereo: false }] {
        let (sa, sb) = pair().await;
        let (addr_a, addr_b) = (addr(&sa), addr(&sb));
        let tone = |f| Box::new(ToneSource::new(TonePattern::steady(f, 0.3), 48000));
        let mut a = start(config(addr_b, codec), sa, tone(440.0), Box::new(clinicdesk::media::NullSink { rate: 8000 }));
        let mut b = start(config(addr_a, codec), sb, tone(800.0), Box::new(clinicdesk::media::NullSink { rate: 8000 }));
        a.handle.send_dtmf("159#*0").unwrap();
        b.handle.send_dtmf("A7D").unwrap();
        assert!(a.handle.send_dtmf("12x").is_err(), "a bad digit is refused at once");
        assert_eq!(next_digits(&mut b.events, 6).await, "159#*0", "{codec}");
        assert_eq!(next_digits(&mut a.events, 3).await, "A7D", "{codec}");
        // Nothing more arrives: each digit was reported once.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let stats_b = b.handle.stop().await.unwrap();
        let stats_a = a.handle.stop().await.unwrap();
        while let Ok(e) = b.events.try_recv() {
            assert!(!matches!(e, MediaEvent::Dtmf(_)), "{codec}: a digit twice: {e:?}");
        }
        while let Ok(e) = a.events.try_recv() {
            assert!(!matches!(e, MediaEvent::Dtmf(_)), "{codec}: a digit twice: {e:?}");
        }
        assert!(stats_a.packets_received > 0 && stats_b.packets_received > 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_stops_sending_and_resume_brings_the_sound_back() {
    let (sa, sb) = pair().await;
    let (addr_a, addr_b) = (addr(&sa), addr(&sb));
    let heard = clinicdesk::media::MemorySink::new(8000);
    let a = start(
        config(addr_b, CodecKind::Pcmu),
        sa,
        Box::new(ToneSource::new(TonePattern::steady(440.0, 0.5), 8000)),
        Box::new(clinicdesk::media::NullSink { rate: 8000 }),
    );
    let b = start(config(addr_a, CodecKind::Pcmu), sb, Box::new(NullSource { rate: 8000 }), Box::new(heard.clone()));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    a.handle.set_direction(clinicdesk::media::Direction::Inactive);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent_on_hold = a.handle.stats().packets_sent;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let held = heard.len();
    let sent_after_hold = a.handle.stats().packets_sent;
    assert!(sent_after_hold <= sent_on_hold + 1, "still sending on hold: {sent_on_hold} → {sent_after_hold}");
    a.handle.set_direction(clinicdesk::media::Direction::SendRecv);
    a.handle.mute(true);
    tokio::time::sleep(Duration::from_millis(800)).await;
    a.handle.mute(false);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let stats_a = a.handle.stop().await.unwrap();
    b.handle.stop().await.unwrap();
    assert!(stats_a.packets_sent > sent_after_hold + 50, "{stats_a:?}");
    let s = heard.samples();
    let rate = 8000;
    // The last second before hold, the hold itself, the mute and the end after resuming.
    let at = |t: f32| &s[(t * rate as f32) as usize..((t + 0.2) * rate as f32) as usize];
    assert!(rms(at(0.7)) > 0.2, "tone before hold: {}", rms(at(0.7)));
    assert!(rms(&s[held - 4000..held]) < 0.01, "silence while held");
    let end = s.len() as f32 / rate as f32;
    assert!(rms(at(end - 0.6)) > 0.2, "tone after resume: {}", rms(at(end - 0.6)));
    assert!(rms(at(end - 1.6)) < 0.01, "silence while muted");
}

// ---------------------------------------------------------------------------------------------
// Through an impairing relay

/// Forwards UDP between A and B; while `impaired`, drops 5 % of A→B packets and delays the
/// rest by 0–40 ms (which reorders some, at 20 ms spacing).
async fn relay(socket: Arc<UdpSocket>, b: SocketAddr, impaired: Arc<AtomicBool>) {
    let mut a: Option<SocketAddr> = None;
    let mut buf = vec![0u8; 2048];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
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
        if random() < 0.05 {
            continue;
        }
        let delay = Duration::from_secs_f64(random() * 0.040);
        let socket = Arc::clone(&socket);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = socket.send_to(&data, b).await;
        });
    }
}

/// A (a 440 Hz tone) and B (recording to `recording`) in PCMU with RTCP mux,
/// each sending to `relay`, which forwards between them.
fn tone_through_relay(relay: SocketAddr, sa: RtpSockets, sb: RtpSockets, recording: &Path) -> (Side, Side) {
    let mut ca = config(relay, CodecKind::Pcmu);
    ca.rtcp_mux = true;
    let mut cb = config(relay, CodecKind::Pcmu);
    cb.rtcp_mux = true;
    let a = start(
        ca,
        sa,
        Box::new(ToneSource::new(TonePattern::steady(440.0, 0.5), 8000)),
        Box::new(clinicdesk::media::NullSink { rate: 8000 }),
    );
    let b = start(cb, sb, Box::new(NullSource { rate: 8000 }), Box::new(WavSink::create(recording, 8000).unwrap()));
    (a, b)
}

/// Forwards UDP between A and B, adding `shift` (samples, wrapping) to the RTP
/// timestamp of every A→B packet: a sender whose clock steps, same SSRC.
async fn stepping_relay(socket: Arc<UdpSocket>, b: SocketAddr, shift: Arc<std::sync::atomic::AtomicU32>) {
    let mut a: Option<SocketAddr> = None;
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((n, from)) = socket.recv_from(&mut buf).await else { return };
        if from == b {
            if let Some(a) = a {
                let _ = socket.send_to(&buf[..n], a).await;
            }
            continue;
        }
        a = Some(from);
        // RTP (not RTCP, whose second byte is 200..=204): the timestamp is bytes 4..8.
        if n >= 12 && !(200..=204).contains(&buf[1]) {
            let ts = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
            let stepped = ts.wrapping_add(shift.load(Ordering::Relaxed));
            buf[4..8].copy_from_slice(&stepped.to_be_bytes());
        }
        let _ = socket.send_to(&buf[..n], b).await;
    }
}

/// The sender's timestamps step back by 1,234 samples mid-call (same SSRC, as
/// Asterisk does), later forward again: the tone keeps arriving, with no
/// more than a short glitch at each step — not silence for the rest of the call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_of_the_senders_timestamps_leaves_no_lasting_silence() {
    let dir = tempfile::tempdir().unwrap();
    let (sa, sb) = pair().await;
    let relay_socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let relay_addr = relay_socket.local_addr().unwrap();
    let shift = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let relay_task = tokio::spawn(stepping_relay(Arc::clone(&relay_socket), addr(&sb), Arc::clone(&shift)));
    let recording = dir.path().join("b-heard.wav");
    let (a, b) = tone_through_relay(relay_addr, sa, sb, &recording);
    tokio::time::sleep(Duration::from_secs(2)).await;
    shift.store(1234u32.wrapping_neg(), Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    shift.store(0, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let stats_b = b.handle.stop().await.unwrap();
    a.handle.stop().await.unwrap();
    relay_task.abort();

    let (samples, rate) = read_wav(&recording);
    let tone = active(&samples, rate);
    let gap = longest_gap_ms(tone, rate);
    let seconds = tone.len() as f32 / rate as f32;
    eprintln!("after two steps of 1,234 samples: {seconds:.1} s of tone, longest gap {gap} ms, {stats_b:?}");
    // The step forward leaves 154 ms (1,234 samples) the sender never sent,
    // concealed; the step back three packets and the buffer's margin. Without
    // realignment the sound stops at the step back for good.
    assert!(gap <= 250.0, "a silent gap of {gap} ms in the received tone");
    assert!(seconds >= 4.5, "only {seconds} s of tone: the sound stopped after a step");
    let f = tone_frequency(tone, rate);
    assert!((f - 440.0).abs() <= 10.0, "{f} Hz");
}

/// Mid-call, a stranger sends a stream of its own (silence, another SSRC) to
/// B's port: B neither plays it nor answers it; A's tone plays on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strangers_stream_is_neither_played_nor_answered() {
    let dir = tempfile::tempdir().unwrap();
    let (sa, sb) = pair().await;
    let (addr_a, addr_b) = (addr(&sa), addr(&sb));
    let recording = dir.path().join("b-heard.wav");
    let a = start(
        config(addr_b, CodecKind::Pcmu),
        sa,
        Box::new(ToneSource::new(TonePattern::steady(440.0, 0.5), 8000)),
        Box::new(clinicdesk::media::NullSink { rate: 8000 }),
    );
    let b = start(
        config(addr_a, CodecKind::Pcmu),
        sb,
        Box::new(ToneSource::new(TonePattern::steady(1000.0, 0.5), 8000)),
        Box::new(WavSink::create(&recording, 8000).unwrap()),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let silence = [0xffu8; 160];
    for k in 0..100u16 {
        let header = clinicdesk::media::rtp::RtpHeader {
            marker: k == 0,
            payload_type: 0,
            sequence: k,
            timestamp: 160 * k as u32,
            ssrc: 0x5ca9_9e55,
            csrc: Vec::new(),
            extension: None,
        };
        let mut packet = Vec::new();
        header.write(&silence, &mut packet);
        stranger.send_to(&packet, addr_b).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stats_b = b.handle.stop().await.unwrap();
    a.handle.stop().await.unwrap();

    // Nothing came back to the stranger (B did not latch onto it).
    let mut buf = [0u8; 2048];
    let answered = tokio::time::timeout(Duration::from_millis(100), stranger.recv_from(&mut buf)).await.is_ok();
    assert!(!answered, "B sent media to the stranger");
    assert!(stats_b.foreign_packets >= 90, "{stats_b:?}");
    let (samples, rate) = read_wav(&recording);
    let tone = active(&samples, rate);
    let gap = longest_gap_ms(tone, rate);
    assert!(gap <= 60.0, "a silent gap of {gap} ms: the stranger's silence was played");
    assert!(tone.len() as f32 / rate as f32 >= 2.5, "the tone stopped");
}

/// The jitter buffer delays of a session's stats events, for at least `least`
/// seconds and then until `done` holds of them (at most `most` seconds).
async fn buffer_delays(
    events: &mut UnboundedReceiver<MediaEvent>,
    least: u64,
    most: u64,
    done: impl Fn(&[f64]) -> bool,
) -> Vec<f64> {
    let start = tokio::time::Instant::now();
    let (least, most) = (start + Duration::from_secs(least), start + Duration::from_secs(most));
    let mut seen = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout_at(most, events.recv()).await {
        if let MediaEvent::Stats(s) = event {
            seen.push(s.jitter_buffer_ms);
        }
        if tokio::time::Instant::now() >= least && done(&seen) {
            break;
        }
    }
    seen
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_loss_and_jitter_the_tone_has_no_gap_and_the_buffer_adapts() {
    let dir = tempfile::tempdir().unwrap();
    let (sa, sb) = pair().await;
    let addr_b = addr(&sb);
    let relay_socket = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let relay_addr = relay_socket.local_addr().unwrap();
    let impaired = Arc::new(AtomicBool::new(false));
    let relay_task = tokio::spawn(relay(Arc::clone(&relay_socket), addr_b, Arc::clone(&impaired)));

    let recording = dir.path().join("b-heard.wav");
    let (a, mut b) = tone_through_relay(relay_addr, sa, sb, &recording);

    // B's jitter buffer delay, sampled from its events (every 200 ms). Each phase
    // runs for its least time, then until what it shows is true (or a guard
    // against hanging runs out): a loaded machine adds jitter of its own, so
    // the clean delay is the floor the buffer reaches, not its mean.
    let events = &mut b.events;
    // 4 s clean (the first second skipped: the buffer settles then).
    let clean_phase = buffer_delays(events, 4, 4, |_| true).await;
    let clean = clean_phase[5.min(clean_phase.len())..].iter().copied().fold(f64::INFINITY, f64::min);
    // Impaired: at least 6 s, until the last second's delay is 15 ms over the clean floor.
    let last_second = |s: &[f64]| mean(&s[s.len().saturating_sub(5)..]);
    impaired.store(true, Ordering::Relaxed);
    let jittery_phase = buffer_delays(events, 6, 30, |s| last_second(s) > clean + 15.0).await;
    let jittery = last_second(&jittery_phase);
    // Clean again: until the last second's delay is 15 ms under the impaired one.
    impaired.store(false, Ordering::Relaxed);
    let after_phase = buffer_delays(events, 2, 40, |s| last_second(s) < jittery - 15.0).await;
    let after = last_second(&after_phase);
    let stats_b: CallStats = b.handle.stop().await.unwrap();
    a.handle.stop().await.unwrap();
    relay_task.abort();

    eprintln!(
        "jitter buffer delay: clean floor {clean:.1} ms, under 40 ms jitter {jittery:.1} ms ({:.1} s), after {after:.1} ms ({:.1} s)",
        jittery_phase.len() as f64 / 5.0,
        after_phase.len() as f64 / 5.0
    );
    assert!(jittery > clean + 15.0, "the delay must grow under jitter: clean {clean}, jittery {jittery}");
    assert!(after < jittery - 15.0, "and shrink back after: jittery {jittery}, after {after}");
    assert!(stats_b.packets_lost > 0, "the relay dropped packets: {stats_b:?}");

    let (samples, rate) = read_wav(&recording);
    let tone = active(&samples, rate);
    let gap = longest_gap_ms(tone, rate);
    assert!(gap <= 60.0, "a silent gap of {gap} ms in the received tone");
    let f = tone_frequency(tone, rate);
    assert!((f - 440.0).abs() <= 10.0, "{f} Hz");
}

// ---------------------------------------------------------------------------------------------
// Sound devices through PulseAudio null devices

/// A private PulseAudio with a virtual microphone (`micsrc` → `mic`) and speaker (`spk`),
/// its sockets and script under `dir`; killed when dropped.
pub(super) struct Pulse {
    dir: PathBuf,
    daemon: std::process::Child,
}

impl Pulse {
    pub(super) fn start(dir: &Path) -> Pulse {
        let pulseaudio = require("pulseaudio", "pulseaudio");
        let runtime = dir.join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        std::fs::set_permissions(&runtime, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        let script = dir.join("pa.pa");
        std::fs::write(
            &script,
            "load-module module-native-protocol-unix\n\
             load-module module-null-sink sink_name=spk\n\
             load-module module-null-sink sink_name=micsrc\n\
             load-module module-remap-source source_name=mic master=micsrc.monitor\n\
             set-default-sink spk\n\
             set-default-source mic\n",
        )
        .unwrap();
        // A socket left by a killed server would look like a live one.
        let socket = runtime.join("pulse/native");
        let _ = std::fs::remove_file(&socket);
        let mut cmd = Command::new(pulseaudio);
        cmd.args(["-n", "-F"])
            .arg(&script)
            .args(["--exit-idle-time=-1", "--disallow-exit", "--daemonize=no", "--use-pid-file=no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Pulse::env(&mut cmd, dir);
        let daemon = cmd.spawn().unwrap_or_else(|e| panic!("cannot start pulseaudio: {e}"));
        let pulse = Pulse { dir: dir.to_path_buf(), daemon };
        wait_for("the PulseAudio socket", Duration::from_secs(15), || socket.exists());
        pulse
    }

    fn env(cmd: &mut Command, dir: &Path) {
        cmd.env("XDG_RUNTIME_DIR", dir.join("run"))
            .env("HOME", dir)
            .env("PULSE_SERVER", format!("unix:{}", dir.join("run/pulse/native").display()));
    }

    /// The environment that points a program at this sound server.
    pub(super) fn env_pairs(&self) -> Vec<(String, String)> {
        vec![
            ("XDG_RUNTIME_DIR".into(), self.dir.join("run").display().to_string()),
            ("HOME".into(), self.dir.display().to_string()),
            ("PULSE_SERVER".into(), format!("unix:{}", self.dir.join("run/pulse/native").display())),
        ]
    }

    pub(super) fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        Pulse::env(&mut cmd, &self.dir);
        cmd
    }

    /// paplay of `wav` into the virtual microphone.
    fn feed_microphone(&self, wav: &Path) -> Peer {
        let paplay = require("paplay", "pulseaudio-utils");
        Peer::spawn(
            "paplay",
            self.command(&paplay).args(["-d", "micsrc"]).arg(wav).stdout(Stdio::null()).stderr(Stdio::null()),
        )
    }
}

impl Drop for Pulse {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

const PULSE_CHILD: &str = "CLINICDESK_MEDIA_PULSE_CHILD";
const PULSE_PID: &str = "CLINICDESK_MEDIA_PULSE_PID";

/// Runs with the cpal devices of the private PulseAudio: this test binary again, as a child
/// process with the PulseAudio environment (changing the environment of a running test
/// binary would race with the other tests' threads).
#[test]
fn sound_devices_carry_a_call_through_pulseaudio() {
    let work_dir = tempfile::tempdir().unwrap();
    let work = work_dir.path();
    let pulse = Pulse::start(work);
    let parec = require("parec", "pulseaudio-utils");
    let mic_feed = work.join("mic-440.wav");
    write_tone(&mic_feed, 440.0, 48000, 30.0, 0.5);
    let _player = pulse.feed_microphone(&mic_feed);
    let speaker = work.join("speaker.raw");
    let recorder = Peer::spawn(
        "parec",
        pulse
            .command(&parec)
            .args(["-d", "spk.monitor", "--raw", "--format=s16le", "--rate=48000", "--channels=1"])
            .stdout(Stdio::from(std::fs::File::create(&speaker).unwrap()))
            .stderr(Stdio::null()),
    );
    let far_recording = work.join("far-heard.wav");
    let child = pulse
        .command(&std::env::current_exe().unwrap())
        .args(["media::pulse_call_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env(PULSE_CHILD, &far_recording)
        .env(PULSE_PID, pulse.daemon.id().to_string())
        .output()
        .unwrap();
    let log = format!("{}{}", String::from_utf8_lossy(&child.stdout), String::from_utf8_lossy(&child.stderr));
    assert!(child.status.success(), "the call through the sound devices failed:\n{log}");
    assert!(log.contains("1 passed"), "the child test did not run:\n{log}");
    eprintln!("{log}");
    // What the far side sent was played on the virtual speaker (recorded until the server was
    // killed mid-call by the child).
    drop(recorder);
    let raw = std::fs::read(&speaker).unwrap();
    let samples: Vec<f32> = raw.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect();
    let tone = active(&samples, 48000);
    let f = tone_frequency(tone, 48000);
    let level = tone_rms(tone, 48000);
    eprintln!("far side → virtual speaker: {f:.1} Hz, RMS {level:.3}");
    assert!((f - 1000.0).abs() <= 10.0, "the speaker played {f} Hz where the far side sent 1000 Hz");
    assert!(level > 0.1, "the speaker is too quiet: {level}");
}

/// Waits for device events until `done` says enough, or `seconds` pass.
async fn device_events(
    events: &mut UnboundedReceiver<MediaEvent>,
    seconds: u64,
    mut done: impl FnMut(&[DeviceEvent]) -> bool,
) -> Vec<DeviceEvent> {
    let mut seen = Vec::new();
    let until = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while let Ok(Some(event)) = tokio::time::timeout_at(until, events.recv()).await {
        if let MediaEvent::Device(e) = event {
            seen.push(e);
            if done(&seen) {
                break;
            }
        }
    }
    seen
}

#[test]
#[ignore = "run by sound_devices_carry_a_call_through_pulseaudio in its own PulseAudio environment"]
fn pulse_call_child() {
    let far_recording = PathBuf::from(std::env::var_os(PULSE_CHILD).expect("run by the PulseAudio test"));
    let work = far_recording.parent().unwrap().to_path_buf();
    let server_pid = std::env::var(PULSE_PID).expect("the server's pid");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        // A name that does not exist: the default is used, with a notice.
        let (source, sink) = clinicdesk::media::open_devices(Some("Headset That Was Unplugged"), None).unwrap();
        let (sa, sb) = pair().await;
        let (addr_a, addr_b) = (addr(&sa), addr(&sb));
        let mut near = start(config(addr_b, CodecKind::Opus { stereo: false }), sa, Box::new(source), Box::new(sink));
        let far = start(
            config(addr_a, CodecKind::Opus { stereo: false }),
            sb,
            Box::new(ToneSource::new(TonePattern::steady(1000.0, 0.4), 48000)),
            Box::new(WavSink::create(&far_recording, 48000).unwrap()),
        );
        // Long enough for PulseAudio to start its streams even on a loaded
        // machine (it took ~2 s here), so the speaker hears a good stretch.
        let notices = device_events(&mut near.events, 8, |_| false).await;
        assert!(
            notices
                .iter()
                .any(|e| matches!(e, DeviceEvent::Changed { from, .. } if from == "Headset That Was Unplugged")),
            "{notices:?}"
        );

        // The sound server dies mid-call (as a USB headset vanishes): the devices fail, the
        // call goes on, and once a default device is back the sound is too.
        let killed_at = far.handle.stats().duration_ms;
        Command::new("kill").args(["-9", &server_pid]).status().unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let restarted = Pulse::start(&work);
        let restarted_at = far.handle.stats().duration_ms;
        let _player = restarted.feed_microphone(&work.join("mic-440.wav"));
        let replaced = device_events(&mut near.events, 20, |seen| {
            let changed =
                |d| seen.iter().any(|e| matches!(e, DeviceEvent::Changed { direction, .. } if *direction == d));
            changed(DeviceDirection::Input) && changed(DeviceDirection::Output)
        })
        .await;
        eprintln!("device events after the server died: {replaced:?}");
        tokio::time::sleep(Duration::from_secs(4)).await;
        let stopped_at = far.handle.stats().duration_ms;
        far.handle.stop().await.unwrap();
        near.handle.stop().await.unwrap();
        for direction in [DeviceDirection::Input, DeviceDirection::Output] {
            assert!(
                replaced.iter().any(|e| matches!(e, DeviceEvent::Changed { direction: d, .. } if *d == direction)),
                "no replacement {direction:?} device: {replaced:?}"
            );
        }

        // The far side heard the virtual microphone before the failure and again after it.
        let (samples, rate) = read_wav(&far_recording);
        let at = |ms: u64| (ms as usize * rate as usize / 1000).min(samples.len());
        let (before, after) = (&samples[..at(killed_at)], &samples[at(restarted_at)..at(stopped_at)]);
        for (what, part) in [("before", before), ("after", after)] {
            // PulseAudio takes a while to start a capture: measure where the sound is.
            let win = rate as usize / 100;
            let first = part.chunks(win).position(|w| rms(w) > 0.02).unwrap_or_else(|| panic!("{what}: silent"));
            let last = part.chunks(win).rposition(|w| rms(w) > 0.02).unwrap();
            let part = &part[(first + 20) * win..(last.saturating_sub(20) * win).max((first + 20) * win)];
            assert!(part.len() > rate as usize / 2, "{what}: only {} samples of sound", part.len());
            let f = tone_frequency(part, rate);
            let level = tone_rms(part, rate);
            eprintln!("virtual microphone → far side, {what} the server died: {f:.1} Hz, RMS {level:.3}");
            assert!((f - 440.0).abs() <= 10.0, "{what}: {f} Hz");
            let expected = 0.5 / 2f32.sqrt();
            assert!(level > expected * 0.79 && level < expected * 1.26, "{what}: RMS {level}");
        }
    });
}
