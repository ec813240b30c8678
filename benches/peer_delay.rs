//! The delay a call adds, measured side by side with baresip in one run.
//!
//! `cargo bench --bench peer_delay` (needs `baresip` from baresip-core).
//!
//! 1. Round trip through baresip: `clinicdesk phone` calls baresip directly on
//!    loopback; baresip answers and sends back what it hears (its `aubridge`
//!    module joins its player to its microphone), with its default jitter
//!    buffer. Our phone plays a click every second and records what it sends
//!    and what comes back: click out → echo in = our send path + baresip's
//!    receive path (jitter buffer) + its send path + our receive path.
//! 2. The same round trip with two `clinicdesk phone`s is not possible (ours
//!    has no echo mode), so our share is taken from our own figures: the
//!    jitter-buffer delay the `ended` event reports, plus one 20 ms frame of
//!    packetisation each way. What is left is baresip's.
//!
//! Our jitter buffer under 0–40 ms of jitter is measured by `benches/media.rs`
//! (`jitter`), on loopback through an impairing relay.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SECONDS: u64 = 45;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    for codec in ["pcmu", "opus"] {
        for jitter_ms in [0, 40] {
            run(dir, codec, jitter_ms);
        }
    }
}

fn run(dir: &Path, codec: &str, jitter_ms: u64) {
    let work = dir.join(format!("{codec}-{jitter_ms}"));
    std::fs::create_dir_all(&work).expect("work dir");
    let (mut baresip, baresip_port) = baresip(&work, codec);
    // The call goes through a SIP relay of ours that points both sides' media
    // at an RTP relay adding 0..jitter_ms of delay to every packet.
    let port = media_relay(baresip_port, Duration::from_millis(jitter_ms));
    let clicks = work.join("clicks.wav");
    write_clicks(&clicks, 48000, SECONDS as f32 + 5.0);
    let (sent, heard) = (work.join("sent.wav"), work.join("heard.wav"));

    let exe = PathBuf::from(env!("CARGO_BIN_EXE_clinicdesk"));
    let mut phone = Command::new(exe)
        .arg("--profile")
        .arg(&work)
        .args(["phone", "--listen", "127.0.0.1:0", "--codecs", codec, "--play"])
        .arg(&clicks)
        .arg("--record")
        .arg(&heard)
        .arg("--record-sent")
        .arg(&sent)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start clinicdesk phone");
    let mut stdin = phone.stdin.take().expect("stdin");
    let events = lines(&mut phone);
    wait(&events, "started");
    writeln!(stdin, "dial sip:echo@127.0.0.1:{port}").expect("dial");
    wait(&events, "answered");
    std::thread::sleep(Duration::from_secs(SECONDS));
    writeln!(stdin, "hangup").expect("hangup");
    let ended = wait(&events, "ended");
    writeln!(stdin, "quit").expect("quit");
    let _ = phone.wait();
    let _ = baresip.kill();
    let _ = baresip.wait();

    let (tx, tx_rate) = read_wav(&sent);
    let (rx, rx_rate) = read_wav(&heard);
    let out = onsets(&tx, tx_rate);
    let back = onsets(&rx, rx_rate);
    let mut trips: Vec<f64> =
        out.iter().filter_map(|t| back.iter().find(|r| **r > *t && **r - *t < 0.8).map(|r| (r - t) * 1000.0)).collect();
    assert!(trips.len() >= 5, "{codec}: too few echoes: out {out:?}\nback {back:?}");
    if std::env::var_os("PEER_DELAY_TRACE").is_some() {
        eprintln!("{codec}: out {out:?}\nback {back:?}\ntrips {trips:?}");
    }
    // baresip starts with a backlog it drains a frame at a time: the settled
    // figure is the last third of the call.
    let mut settled = trips[trips.len() * 2 / 3..].to_vec();
    settled.sort_by(f64::total_cmp);
    let first = trips[0];
    trips.sort_by(f64::total_cmp);
    let median = settled[settled.len() / 2];
    let ours = ended["media"]["jitter_buffer_ms"].as_f64().unwrap_or(f64::NAN);
    // One 20 ms frame of packetisation each way, and the relay's mean delay
    // (half the jitter) each way.
    let fixed = 2.0 * 20.0 + jitter_ms as f64;
    println!(
        "{codec}, 0-{jitter_ms} ms jitter each way: round trip through baresip ({} echoes): first {first:.1} ms, settled (last third) \
         median {median:.1} ms, min {:.1}; our jitter buffer {ours:.1} ms, packetisation and relay {fixed:.0} ms -> \
         baresip's receive and echo path {:.1} ms",
        trips.len(),
        settled[0],
        median - ours - fixed
    );
}

/// A SIP relay on loopback between our phone and baresip (returned: its
/// port, to dial): it passes every datagram on, and in SDP bodies replaces each
/// side's RTP port by a port of an RTP relay (same number of digits, so
/// Content-Length holds) that forwards the media with 0..jitter of delay.
fn media_relay(baresip_sip: u16, jitter: Duration) -> u16 {
    let sip = std::net::UdpSocket::bind("127.0.0.1:0").expect("sip relay");
    let port = sip.local_addr().expect("addr").port();
    let baresip = std::net::SocketAddr::from(([127, 0, 0, 1], baresip_sip));
    // toward_baresip: advertised to baresip as our phone's media; toward_phone the reverse.
    let toward_baresip = std::net::UdpSocket::bind("127.0.0.1:0").expect("rtp relay");
    let toward_phone = std::net::UdpSocket::bind("127.0.0.1:0").expect("rtp relay");
    let (port_a, port_b) =
        (toward_baresip.local_addr().expect("addr").port(), toward_phone.local_addr().expect("addr").port());
    let real: std::sync::Arc<std::sync::Mutex<(Option<std::net::SocketAddr>, Option<std::net::SocketAddr>)>> =
        Default::default();
    let media = real.clone();
    std::thread::spawn(move || {
        let mut phone_sip: Option<std::net::SocketAddr> = None;
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = sip.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            let (text, to) = if from == baresip {
                let Some(phone) = phone_sip else { continue };
                (rewrite_media(&text, port_b, |p| media.lock().map(|mut m| m.1 = Some(p)).unwrap_or(())), phone)
            } else {
                phone_sip = Some(from);
                let text = rewrite_media(&text, port_a, |p| media.lock().map(|mut m| m.0 = Some(p)).unwrap_or(()));
                // The request line names the relay: it names baresip once passed on.
                (text.replacen(&format!("127.0.0.1:{port}"), &format!("127.0.0.1:{baresip_sip}"), 1), baresip)
            };
            let _ = sip.send_to(text.as_bytes(), to);
        }
    });
    let a = toward_baresip.try_clone().expect("clone");
    let b = toward_phone.try_clone().expect("clone");
    let (real_a, real_b) = (real.clone(), real);
    // baresip -> toward_baresip -> (delay) -> toward_phone -> our phone
    std::thread::spawn(move || forward(&a, &b, jitter, 1, move || real_a.lock().ok().and_then(|m| m.0)));
    // our phone -> toward_phone -> (delay) -> toward_baresip -> baresip
    std::thread::spawn(move || {
        forward(&toward_phone, &toward_baresip, jitter, 2, move || real_b.lock().ok().and_then(|m| m.1))
    });
    port
}

/// Replaces the RTP port of an SDP body (`m=audio PORT`) by `relay`, telling `seen` the real one.
fn rewrite_media(text: &str, relay: u16, seen: impl FnOnce(std::net::SocketAddr)) -> String {
    let Some(at) = text.find("m=audio ") else { return text.to_owned() };
    let start = at + "m=audio ".len();
    let end = start + text[start..].find(' ').unwrap_or(0);
    let Ok(real) = text[start..end].parse::<u16>() else { return text.to_owned() };
    assert_eq!(real.to_string().len(), relay.to_string().len(), "ports of different lengths");
    seen(std::net::SocketAddr::from(([127, 0, 0, 1], real)));
    format!("{}{relay}{}", &text[..start], &text[end..])
}

/// Receives on `from`, sends each packet out of `out` to `target()` after a
/// random delay in 0..jitter (packets may overtake each other, as on a
/// jittery network).
fn forward(
    from: &std::net::UdpSocket,
    out: &std::net::UdpSocket,
    jitter: Duration,
    seed: u64,
    target: impl Fn() -> Option<std::net::SocketAddr> + Send + 'static,
) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let out = out.try_clone().expect("clone");
    std::thread::spawn(move || {
        let mut queue: Vec<(Instant, Vec<u8>)> = Vec::new();
        loop {
            let next = queue.iter().map(|(at, _)| *at).min();
            let wait = next.map_or(Duration::from_millis(50), |at| at.saturating_duration_since(Instant::now()));
            match rx.recv_timeout(wait) {
                Ok(item) => queue.push(item),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
            let now = Instant::now();
            let (due, rest): (Vec<_>, Vec<_>) = queue.into_iter().partition(|(at, _)| *at <= now);
            queue = rest;
            if let Some(to) = target() {
                for (_, packet) in due {
                    let _ = out.send_to(&packet, to);
                }
            }
        }
    });
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut buf = vec![0u8; 2048];
    while let Ok((n, _)) = from.recv_from(&mut buf) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = jitter.mul_f64((state % 10_000) as f64 / 10_000.0);
        if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
            return;
        }
    }
}

/// baresip answering on its own and sending back what it hears.
fn baresip(dir: &Path, codec: &str) -> (Child, u16) {
    let port = free_port();
    let rtp = 30_000 + (free_port() % 10_000) / 2 * 2;
    let module = if codec == "opus" { "opus.so" } else { "g711.so" };
    let config = format!(
        "poll_method epoll\nsip_listen 127.0.0.1:{port}\nnet_interface 127.0.0.1\nsip_trans_def udp\n\
         audio_source aubridge,echo\naudio_player aubridge,echo\naudio_alert aubridge,alert\n\
         module_path /usr/lib/baresip/modules\nmodule {module}\nmodule aubridge.so\n\
         module_app account.so\nmodule_app menu.so\nrtp_ports {rtp}-{}\n",
        rtp + 20
    );
    std::fs::write(dir.join("config"), config).expect("baresip config");
    std::fs::write(dir.join("accounts"), "<sip:echo@127.0.0.1>;regint=0;answermode=auto\n").expect("accounts");
    std::fs::write(dir.join("contacts"), "").expect("contacts");
    let child = Command::new("baresip")
        .arg("-f")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start baresip (Debian package baresip-core)");
    std::thread::sleep(Duration::from_millis(800));
    (child, port)
}

fn free_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()).expect("a free port")
}

fn lines(child: &mut Child) -> mpsc::Receiver<serde_json::Value> {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line)
                && tx.send(v).is_err()
            {
                return;
            }
        }
    });
    rx
}

fn wait(events: &mpsc::Receiver<serde_json::Value>, name: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(v) if v["event"] == name => return v,
            Ok(_) => {}
            Err(_) => panic!("clinicdesk phone printed no {name} event"),
        }
    }
}

/// A 5 ms 1 kHz burst every second.
fn write_clicks(path: &Path, rate: u32, seconds: f32) {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).expect("clicks.wav");
    for i in 0..(rate as f32 * seconds) as usize {
        let t = (i % rate as usize) as f32 / rate as f32;
        let v = if t < 0.005 { 0.6 * (2.0 * std::f32::consts::PI * 1000.0 * t).sin() } else { 0.0 };
        w.write_sample((v * 32767.0) as i16).expect("sample");
    }
    w.finalize().expect("finish clicks.wav");
}

fn read_wav(path: &Path) -> (Vec<f32>, u32) {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    let all: Vec<f32> = r.samples::<i16>().map(|s| s.map_or(0.0, |v| v as f32 / 32768.0)).collect();
    (all.into_iter().step_by(spec.channels as usize).collect(), spec.sample_rate)
}

/// The times (s) where a click starts: loud after at least 300 ms of quiet.
fn onsets(samples: &[f32], rate: u32) -> Vec<f64> {
    let mut found = Vec::new();
    let mut quiet = rate as usize;
    for (i, s) in samples.iter().enumerate() {
        if s.abs() > 0.1 {
            if quiet >= rate as usize * 3 / 10 {
                found.push(i as f64 / rate as f64);
            }
            quiet = 0;
        } else {
            quiet += 1;
        }
    }
    found
}
