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
        run(dir, codec);
    }
}

fn run(dir: &Path, codec: &str) {
    let work = dir.join(codec);
    std::fs::create_dir_all(&work).expect("work dir");
    let (mut baresip, port) = baresip(&work, codec);
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
    let packetisation = 2.0 * 20.0;
    println!(
        "{codec}: round trip through baresip (clean loopback, {} echoes): first {first:.1} ms, settled (last third) \
         median {median:.1} ms, min {:.1}; our jitter buffer {ours:.1} ms, packetisation {packetisation:.0} ms -> \
         baresip's receive and echo path {:.1} ms",
        trips.len(),
        settled[0],
        median - ours - packetisation
    );
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
