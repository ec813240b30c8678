//! kamailio as the clinic's PBX and baresip as the other phone: the peers, started here and stopped with their test.

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use serde_json::Value;

use crate::harness::require;

use super::*;

// ---------------------------------------------------------------------------------------------
// kamailio as the clinic's PBX, baresip as the other phone

/// PEERS.md's kamailio: registrar and proxy with digest auth, users 100, 200 and 300.
pub(super) const KAMAILIO_CFG: &str = r#"#!KAMAILIO
debug=2
log_stderror=yes
fork=yes
children=2
listen=udp:127.0.0.1:@PORT@
auto_aliases=no
alias="127.0.0.1:@PORT@"
@TLS_CORE@
loadpath "/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "htable.so"
loadmodule "ctl.so"
@TLS_MODULE@
modparam("usrloc", "db_mode", 0)
modparam("ctl", "binrpc", "unix:@DIR@/kamailio_ctl")
modparam("htable", "htable", "users=>size=4;")
event_route[htable:mod-init] { $sht(users=>100) = "secret100"; $sht(users=>200) = "secret200"; $sht(users=>300) = "secret300"; }
request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483","Too Many Hops"); exit; }
  if (has_totag()) {
    if (loose_route()) { t_relay(); exit; }
    if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
    sl_send_reply("404","Not here"); exit;
  }
  if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }
  if (is_method("REGISTER")) {
    if ($sht(users=>$fU) == $null || !pv_auth_check("$fd", "$sht(users=>$fU)", "0", "1")) { auth_challenge("$fd", "0"); exit; }
    consume_credentials(); if (!save("location")) sl_reply_error(); exit;
  }
  if (is_method("INVITE|MESSAGE|SUBSCRIBE")) {
    if ($sht(users=>$fU) == $null || !pv_auth_check("$fd", "$sht(users=>$fU)", "0", "1")) { auth_challenge("$fd", "1"); exit; }
    consume_credentials();
  }
  if (is_method("INVITE")) record_route();
  if (!lookup("location")) { sl_send_reply("404","Not Found"); exit; }
  t_relay();
}
"#;

/// A running kamailio, stopped with SIGTERM (which also stops its children).
pub(crate) struct Kamailio {
    port: u16,
    program: Option<Program>,
}

impl Kamailio {
    pub(crate) fn start(dir: &Path) -> Kamailio {
        Kamailio::start_with(dir, None)
    }

    /// Also listening for TLS on `tls_port`, with the certificate and key of `tls`.
    pub(super) fn start_with(dir: &Path, tls: Option<(u16, &Path, &Path)>) -> Kamailio {
        let bin = require("kamailio", "kamailio");
        let port = free_port();
        let cfg = dir.join("kamailio.cfg");
        let (tls_core, tls_module) = match tls {
            None => (String::new(), String::new()),
            Some((tls_port, cert, key)) => {
                let module = Path::new("/usr/lib/x86_64-linux-gnu/kamailio/modules/tls.so");
                assert!(
                    module.is_file(),
                    "kamailio has no TLS module: install the Debian package `kamailio-tls-modules`"
                );
                let tls_cfg = dir.join("tls.cfg");
                let text = format!(
                    "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n\
                     private_key = {}\ncertificate = {}\n\n[client:default]\nverify_certificate = no\n\
                     require_certificate = no\n",
                    key.display(),
                    cert.display()
                );
                std::fs::write(&tls_cfg, text).unwrap();
                (
                    format!("enable_tls=yes\nlisten=tls:127.0.0.1:{tls_port}\nalias=\"127.0.0.1:{tls_port}\""),
                    format!("loadmodule \"tls.so\"\nmodparam(\"tls\", \"config\", \"{}\")", tls_cfg.display()),
                )
            }
        };
        let text = KAMAILIO_CFG
            .replace("@PORT@", &port.to_string())
            .replace("@DIR@", &dir.display().to_string())
            .replace("@TLS_CORE@", &tls_core)
            .replace("@TLS_MODULE@", &tls_module);
        std::fs::write(&cfg, text).unwrap();
        let check = Command::new(&bin).arg("-c").arg("-f").arg(&cfg).output().unwrap();
        assert!(check.status.success(), "kamailio.cfg: {}", String::from_utf8_lossy(&check.stderr));
        let pid = dir.join("kamailio.pid");
        let mut cmd = Command::new(&bin);
        cmd.arg("-f").arg(&cfg).arg("-P").arg(&pid).args(["-DD", "-E"]);
        let program = Program::spawn("kamailio", dir, &mut cmd);
        // Up once it answers: an OPTIONS for nobody gets its 404.
        let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
        probe.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let me = probe.local_addr().unwrap();
        let start = Instant::now();
        let mut buf = [0u8; 2048];
        loop {
            let options = format!(
                "OPTIONS sip:nobody@127.0.0.1:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKup{}\r\n\
                 From: <sip:t@{me}>;tag=t\r\nTo: <sip:nobody@127.0.0.1>\r\nCall-ID: up-{port}\r\nCSeq: 1 OPTIONS\r\n\
                 Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                start.elapsed().as_millis()
            );
            let _ = probe.send_to(options.as_bytes(), ("127.0.0.1", port));
            if probe.recv_from(&mut buf).is_ok() {
                break;
            }
            assert!(start.elapsed() < WAIT, "kamailio did not start:\n{}", program.output());
        }
        Kamailio { port, program: Some(program) }
    }

    pub(crate) fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(super) fn log(&self) -> String {
        self.program.as_ref().map(Program::output).unwrap_or_default()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        if let Some(mut p) = self.program.take() {
            let _ = Command::new("kill").arg("-TERM").arg(p.child.id().to_string()).status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = p.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// A tone as a WAV file (mono 16 bit).
pub(crate) fn write_tone(path: &Path, freq: f32, rate: u32, seconds: f32) {
    let spec =
        hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(rate as f32 * seconds) as usize {
        let v = 0.5 * (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin();
        w.write_sample((v * 32767.0) as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// The first channel of a WAV file, and its rate.
pub(crate) fn read_wav(path: &Path) -> (Vec<f32>, u32) {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    let all: Vec<f32> = r.samples::<i16>().map(|s| s.unwrap() as f32 / 32768.0).collect();
    (all.into_iter().step_by(spec.channels as usize).collect(), spec.sample_rate)
}

/// The frequency of the loud part of a recording, by rising zero crossings,
/// and how many seconds of it there are.
pub(super) fn tone_of(path: &Path) -> (f32, f32) {
    let (s, rate) = read_wav(path);
    let loud: Vec<bool> =
        s.chunks(rate as usize / 50).map(|c| c.iter().map(|x| x * x).sum::<f32>() / c.len() as f32 > 0.005).collect();
    // The longest run of loud 20 ms frames, without its first and last 100 ms.
    let (mut best, mut run_start, mut best_start) = (0, 0, 0);
    for (i, l) in loud.iter().chain([false].iter()).enumerate() {
        if !*l {
            if i - run_start > best {
                best = i - run_start;
                best_start = run_start;
            }
            run_start = i + 1;
        }
    }
    if best < 10 {
        return (0.0, 0.0);
    }
    let frame = rate as usize / 50;
    let seg = &s[(best_start + 5) * frame..(best_start + best - 5) * frame];
    let crossings = seg.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
    let seconds = seg.len() as f32 / rate as f32;
    (crossings as f32 / seconds, seconds)
}

/// baresip as the other phone, driven through its ctrl_tcp socket.
pub(crate) struct Baresip {
    program: Program,
    ctrl: std::net::TcpStream,
    events: Receiver<Value>,
    log: Vec<(Value, bool)>,
    recordings: PathBuf,
    token: u32,
}

impl Baresip {
    /// Registers `user` (password `secret<user>`) at `server`; plays `tone` as its microphone.
    pub(crate) fn start(dir: &Path, server: &str, user: &str, tone: &Path, auto_answer: bool) -> Baresip {
        Baresip::start_with_sound(dir, server, user, tone, auto_answer, &[])
    }

    /// The same, playing what it receives on the sound server that `sound`
    /// (environment variables) points to (ALSA's pulse device); without it,
    /// on ALSA's null device.
    pub(crate) fn start_with_sound(
        dir: &Path,
        server: &str,
        user: &str,
        tone: &Path,
        auto_answer: bool,
        sound: &[(String, String)],
    ) -> Baresip {
        let narrowband = "ausrc_srate 8000\nauplay_srate 8000\nmodule g711.so\nmodule opus.so\n";
        Baresip::start_with_audio(dir, server, user, tone, auto_answer, sound, narrowband)
    }

    /// The same with `audio`: its sample rates and codec modules (config lines).
    pub(crate) fn start_with_audio(
        dir: &Path,
        server: &str,
        user: &str,
        tone: &Path,
        auto_answer: bool,
        sound: &[(String, String)],
        audio: &str,
    ) -> Baresip {
        let player = if sound.is_empty() { "null" } else { "pulse" };
        let bin = require("baresip", "baresip-core");
        let conf = dir.join(format!("baresip-{user}"));
        let recordings = conf.join("recordings");
        std::fs::create_dir_all(&recordings).unwrap();
        let sip_port = free_port();
        let ctrl_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // Its RTP ports below those free_port hands out (and below the ephemeral ones).
        let rtp = 2_000 + (free_port() - 12_000) / 10 % 180 * 50;
        let config = format!(
            "poll_method epoll\nsip_listen 127.0.0.1:{sip_port}\nnet_interface 127.0.0.1\nsip_trans_def udp\n\
             audio_source aufile,{}\naudio_player alsa,{player}\naudio_alert alsa,null\n\
             ausrc_channels 1\nauplay_channels 1\nmodule_path /usr/lib/baresip/modules\n{audio}\
             module aufile.so\nmodule alsa.so\nmodule sndfile.so\nsnd_path {}\n\
             module_app account.so\nmodule_app contact.so\nmodule_app menu.so\nmodule_app ctrl_tcp.so\n\
             ctrl_tcp_listen 127.0.0.1:{ctrl_port}\nrtp_ports {rtp}-{}\n",
            tone.display(),
            recordings.display(),
            rtp + 40
        );
        std::fs::write(conf.join("config"), config).unwrap();
        let answer = if auto_answer { ";answermode=auto" } else { "" };
        std::fs::write(
            conf.join("accounts"),
            format!("<sip:{user}@{server}>;auth_pass=secret{user};regint=60{answer}\n"),
        )
        .unwrap();
        std::fs::write(conf.join("contacts"), "").unwrap();
        let mut command = Command::new(bin);
        command.arg("-f").arg(&conf).envs(sound.iter().map(|(k, v)| (k, v)));
        let program = Program::spawn("baresip", &conf, &mut command);
        let start = Instant::now();
        let ctrl = loop {
            if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", ctrl_port)) {
                break s;
            }
            assert!(start.elapsed() < WAIT, "baresip did not start:\n{}", program.output());
            std::thread::sleep(Duration::from_millis(50));
        };
        let reader = ctrl.try_clone().unwrap();
        let (tx, events) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            // Netstrings: LEN ":" JSON ","
            let mut r = BufReader::new(reader);
            loop {
                let mut len = Vec::new();
                if r.read_until(b':', &mut len).unwrap_or(0) == 0 {
                    break;
                }
                let n: usize = String::from_utf8_lossy(&len[..len.len() - 1]).trim().parse().unwrap_or(0);
                let mut body = vec![0u8; n + 1];
                if std::io::Read::read_exact(&mut r, &mut body).is_err() {
                    break;
                }
                let v = serde_json::from_slice(&body[..n]).unwrap_or(Value::Null);
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        // It registers while starting, before the control socket listens: its log tells.
        let start = Instant::now();
        while !program.output().contains(&format!("{user}@127.0.0.1: {{0/UDP/v4}} 200 OK")) {
            assert!(start.elapsed() < WAIT, "baresip did not register:\n{}", program.output());
            std::thread::sleep(Duration::from_millis(50));
        }
        Baresip { program, ctrl, events, log: Vec::new(), recordings, token: 0 }
    }

    pub(crate) fn command(&mut self, command: &str, params: &str) {
        self.token += 1;
        let body = serde_json::json!({"command": command, "params": params, "token": format!("t{}", self.token)});
        let text = body.to_string();
        write!(self.ctrl, "{}:{},", text.len(), text).unwrap();
        self.ctrl.flush().unwrap();
    }

    fn wait(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        let mut checked = 0;
        loop {
            while checked < self.log.len() {
                let (event, taken) = &mut self.log[checked];
                checked += 1;
                if !*taken && pred(event) {
                    *taken = true;
                    return event.clone();
                }
            }
            if start.elapsed() > WAIT {
                let seen: Vec<String> = self.log.iter().map(|(e, _)| e.to_string()).collect();
                panic!(
                    "baresip: timed out waiting for {what}; events:\n{}\nlog:\n{}",
                    seen.join("\n"),
                    self.program.output()
                );
            }
            if let Ok(v) = self.events.recv_timeout(Duration::from_millis(100)) {
                self.log.push((v, false));
            }
        }
    }

    /// The next event of `kind` (CALL_ESTABLISHED, CALL_CLOSED, CALL_INCOMING, CALL_DTMF_START...).
    pub(crate) fn event(&mut self, kind: &str) -> Value {
        self.wait(kind, |e| e["type"] == kind)
    }

    /// The recording of what baresip received (`dump-*-dec.wav`), once its call ended.
    pub(crate) fn received_recording(&self) -> PathBuf {
        let found = std::fs::read_dir(&self.recordings)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
            .max();
        found.unwrap_or_else(|| panic!("no baresip recording in {}", self.recordings.display()))
    }
}

pub(crate) fn kamailio_phone(dir: &Path, kamailio: &Kamailio, extra: &[&str]) -> Phone {
    let server = kamailio.server();
    let mut args = vec!["--server", server.as_str(), "--user", "100", "--listen", "127.0.0.1:0", "--expires", "60"];
    args.extend_from_slice(extra);
    let mut phone = Phone::start_with(dir, &args, &[("CLINICDESK_SIP_PASSWORD", "secret100")]);
    assert_eq!(phone.event("registered")["account"], format!("100@{server}"));
    phone
}
