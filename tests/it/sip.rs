//! The SIP user agent end to end: the real `clinicdesk phone` against real
//! peers started here on 127.0.0.1 (sipp, kamailio, baresip), each stopped
//! when its test ends. Events are read from the phone's JSON lines, commands
//! written to its stdin; what the peers saw is read from their own reports.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use serde_json::Value;

use super::harness::{binary, require};

/// How long any one step may take before the test gives up (a guard against
/// hanging, not a measurement).
const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// `clinicdesk phone` as a child process

/// A running `clinicdesk phone`, killed when dropped.
pub(crate) struct Phone {
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<Value>,
    /// Every event so far, and whether a `wait` has taken it.
    log: Vec<(Value, bool)>,
    stderr: Arc<Mutex<String>>,
    pub(crate) addr: SocketAddr,
}

impl Phone {
    pub(crate) fn start(profile: &Path, args: &[&str]) -> Phone {
        Phone::start_with(profile, args, &[])
    }

    fn start_with(profile: &Path, args: &[&str], env: &[(&str, &str)]) -> Phone {
        let mut child = Command::new(binary())
            .arg("--profile")
            .arg(profile)
            .arg("phone")
            .args(args)
            .env("CLINICDESK_LOG", "clinicdesk=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start clinicdesk phone: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let stderr_pipe = child.stderr.take().expect("stderr");
        let (tx, events) = crossbeam_channel::unbounded();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let stdin = child.stdin.take();
        let mut phone = Phone { child, stdin, events, log: Vec::new(), stderr, addr: "0.0.0.0:0".parse().unwrap() };
        let started = phone.wait("started", |e| e["event"] == "started");
        phone.addr = started["listen"].as_str().expect("listen address").parse().expect("socket address");
        phone
    }

    fn stderr_tail(&self) -> String {
        let s = self.stderr.lock().unwrap();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub(crate) fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to the phone");
        stdin.flush().expect("flush");
    }

    fn pull(&mut self, timeout: Duration) -> bool {
        match self.events.recv_timeout(timeout) {
            Ok(v) => {
                self.log.push((v, false));
                true
            }
            Err(_) => false,
        }
    }

    /// The first event not taken yet that matches, waiting for it if needed.
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
                panic!("timed out waiting for {what}; events:\n{}\nstderr:\n{}", seen.join("\n"), self.stderr_tail());
            }
            if !self.pull(Duration::from_millis(100)) && !self.is_running() {
                // Let the last lines arrive, then report.
                while self.pull(Duration::from_millis(200)) {}
                if checked == self.log.len() {
                    panic!("the phone exited while waiting for {what}; stderr:\n{}", self.stderr_tail());
                }
            }
        }
    }

    /// Dials `target` and returns the call id of its `dialing` event.
    fn dial(&mut self, target: &str) -> String {
        self.send(&format!("dial {target}"));
        self.event("dialing")["call_id"].as_str().expect("the call id").to_owned()
    }

    /// The next event named `name`.
    pub(crate) fn event(&mut self, name: &str) -> Value {
        self.wait(name, |e| e["event"] == name)
    }

    /// The next event named `name` for call `call_id`.
    pub(crate) fn call_event(&mut self, name: &str, call_id: &str) -> Value {
        self.wait(&format!("{name} of {call_id}"), |e| e["event"] == name && e["call_id"] == call_id)
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Every event so far (taken or not).
    fn all(&mut self) -> Vec<Value> {
        while self.pull(Duration::ZERO) {}
        self.log.iter().map(|(e, _)| e.clone()).collect()
    }

    /// `quit`, and the exit status.
    pub(crate) fn quit(&mut self) -> ExitStatus {
        self.send("quit");
        self.stdin = None;
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                while self.pull(Duration::from_millis(50)) {}
                return status;
            }
            assert!(start.elapsed() < WAIT, "the phone did not quit; stderr:\n{}", self.stderr_tail());
            self.pull(Duration::from_millis(50));
        }
    }
}

impl Drop for Phone {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Other programs

/// A peer program whose output goes to files, killed when dropped.
pub(super) struct Program {
    name: &'static str,
    child: Child,
    out: PathBuf,
}

impl Program {
    fn spawn(name: &'static str, dir: &Path, command: &mut Command) -> Program {
        let out = dir.join(format!("{name}-{}.out", std::process::id()));
        let file = std::fs::File::create(&out).expect("output file");
        let err = file.try_clone().expect("output file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Program { name, child, out }
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits for the program to end on its own.
    fn finish(mut self) -> (ExitStatus, String) {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return (status, self.output());
            }
            if start.elapsed() > WAIT {
                let _ = self.child.kill();
                panic!("{} did not finish; its output:\n{}", self.name, self.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A UDP port free right now on 127.0.0.1.
/// Taken below the kernel's ephemeral range (32768 and up): the sockets that
/// bind port 0 meanwhile (RTP of hundreds of calls in the load test, the
/// phones) can never grab it between this check and the peer binding it.
/// Each pick is free for UDP and TCP now, and not handed out twice.
pub(super) fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = (std::process::id() % 500) * 40;
    loop {
        // Ten apart: sipp binds a few ports above its media port (RTP, RTCP, video).
        let step = NEXT.fetch_add(10, Ordering::Relaxed);
        let port = (12_000 + (offset + step) % 20_000) as u16;
        let free = UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && UdpSocket::bind(("127.0.0.1", port + 1)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
        if free {
            return port;
        }
    }
}

/// The path of a scenario of ours under tests/it/sipp/.
pub(super) fn scenario(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/sipp").join(name);
    assert!(path.is_file(), "missing sipp scenario {}", path.display());
    path.display().to_string()
}

/// sipp with the options every run here needs; `args` add the scenario and addresses.
pub(crate) fn sipp(dir: &Path, port: u16, args: &[&str]) -> Program {
    let sipp = require("sipp", "sip-tester");
    let mut cmd = Command::new(sipp);
    cmd.current_dir(dir)
        .args(["-i", "127.0.0.1", "-p", &port.to_string(), "-nostdin", "-timeout", "40", "-trace_msg"])
        // Its media port on a free one: the default 6000 is shared by every sipp running in parallel.
        .args(["-mp", &free_port().to_string()])
        .args(["-message_file", &format!("sipp-{port}.msg"), "-trace_err", "-error_file", &format!("sipp-{port}.err")])
        .args(args);
    Program::spawn("sipp", dir, &mut cmd)
}

/// A sipp that waits for the phone (its call or REGISTER; the scenario in `args`), on a port of its
/// own, given time to listen before it is dialled.
fn sipp_waiting(dir: &Path, args: &[&str]) -> (u16, Program) {
    let port = free_port();
    let run = sipp(dir, port, args);
    std::thread::sleep(Duration::from_millis(300));
    (port, run)
}

/// sipp's message trace (what it sent and received).
fn sipp_messages(dir: &Path, port: u16) -> String {
    std::fs::read_to_string(dir.join(format!("sipp-{port}.msg"))).unwrap_or_default()
}

pub(super) fn assert_sipp_passed(run: Program, dir: &Path, port: u16) {
    let (status, out) = run.finish();
    let errors = std::fs::read_to_string(dir.join(format!("sipp-{port}.err"))).unwrap_or_default();
    assert!(
        status.success(),
        "sipp failed ({status}):\n{}\nerrors:\n{errors}\nmessages:\n{}",
        out.lines().filter(|l| l.contains("call") || l.contains("rror")).collect::<Vec<_>>().join("\n"),
        sipp_messages(dir, port)
    );
}

// ---------------------------------------------------------------------------------------------
// 1. RFC 4475 torture messages sent to a running phone

fn corpus_dir() -> PathBuf {
    match std::env::var_os("CLINICDESK_RFC4475_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/testdata/rfc4475")),
    }
}

/// What `clinicdesk phone` answers each message with (None: nothing, as the RFC says
/// for responses and for what cannot be answered). Requests that start a call ring (180).
const RFC4475_ANSWERS: &[(&str, Option<u16>)] = &[
    // 3.1.1 valid messages
    ("wsinv.dat", Some(481)), // an INVITE inside a dialog we do not know
    ("intmeth.dat", Some(501)),
    ("esc01.dat", Some(180)),
    ("escnull.dat", Some(405)),
    ("esc02.dat", Some(501)),
    ("lwsdisp.dat", Some(200)),
    ("longreq.dat", Some(180)),
    ("dblreq.dat", Some(405)),
    ("semiuri.dat", Some(200)),
    ("transports.dat", Some(200)),
    ("mpart01.dat", Some(405)),
    ("unreason.dat", None),
    ("noreason.dat", None),
    // 3.1.2 invalid messages
    ("badinv01.dat", Some(400)),
    ("clerr.dat", Some(400)),
    ("ncl.dat", Some(400)),
    ("scalar02.dat", Some(400)),
    ("scalarlg.dat", None),
    ("quotbal.dat", Some(400)),
    ("ltgtruri.dat", Some(400)),
    ("lwsruri.dat", Some(400)),
    ("lwsstart.dat", Some(400)),
    ("trws.dat", Some(400)),
    ("escruri.dat", Some(400)),
    ("baddate.dat", Some(400)),
    ("regbadct.dat", Some(400)),
    ("badaspec.dat", Some(400)),
    ("baddn.dat", Some(400)),
    ("badvers.dat", Some(505)),
    ("mismatch01.dat", Some(400)),
    ("mismatch02.dat", Some(400)),
    ("bigcode.dat", None),
    // 3.2 and 3.3 application layer, 3.4 backward compatibility
    ("badbranch.dat", Some(200)),
    ("insuf.dat", Some(400)),
    ("unkscm.dat", Some(416)),
    ("novelsc.dat", Some(416)),
    ("unksm2.dat", Some(405)),
    ("bext01.dat", Some(420)),
    ("invut.dat", Some(415)),
    ("regaut01.dat", Some(405)),
    ("multi01.dat", Some(400)),
    ("mcl01.dat", Some(400)),
    ("bcast.dat", None),
    ("zeromf.dat", Some(200)),
    ("cparam01.dat", Some(405)),
    ("cparam02.dat", Some(405)),
    ("regescrt.dat", Some(405)),
    ("sdp01.dat", Some(406)),
    ("inv2543.dat", Some(180)),
];

/// Reads the value of the first header line named like `names` (compact forms too).
fn raw_header(data: &[u8], names: &[&str]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.lines().skip(1).take_while(|l| !l.is_empty()).find_map(|l| {
        let (name, value) = l.split_once(':')?;
        names.iter().any(|n| name.trim().eq_ignore_ascii_case(n)).then(|| value.trim().to_owned())
    })
}

/// Collects every datagram that reaches any of `sockets` into `got` (status, raw text).
fn drain(sockets: &[UdpSocket], got: &mut Vec<(u16, String)>) {
    let mut buf = vec![0u8; 65_535];
    for s in sockets {
        while let Ok((n, _)) = s.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            // Read the status line only: an answer to a broken request copies its broken lines.
            let status = text.strip_prefix("SIP/2.0 ").and_then(|r| r.get(..3)).and_then(|c| c.parse().ok());
            if let Some(status) = status {
                got.push((status, text));
            }
        }
    }
}

#[test]
fn rfc4475_messages_get_the_rfc_answers_and_the_phone_lives_on() {
    let dir = tempfile::tempdir().unwrap();
    // Some messages share a Via branch, sent-by and method (novelsc/unkscm, cparam01/02):
    // to a UAS those are one transaction (RFC 3261 §17.2.3) and the second is answered as
    // a retransmission of the first. Each such message goes to a phone of its own.
    let mut phones: Vec<Phone> = vec![Phone::start(dir.path(), &["--listen", "127.0.0.1:0"])];
    let mut transactions: Vec<std::collections::HashSet<String>> = vec![Default::default()];
    // Answers go to the Via's port (5060 by default) at the address the request came from:
    // a loopback address of this test's own catches them without touching 127.0.0.1:5060.
    let pid = std::process::id();
    let ip = format!("127.44.{}.{}", pid % 250, 2 + (pid / 250) % 250);
    let mut listen = Vec::new();
    for port in [5060, 5061, 5050, 5070] {
        let s = UdpSocket::bind((ip.as_str(), port)).unwrap_or_else(|e| panic!("bind {ip}:{port}: {e}"));
        s.set_nonblocking(true).unwrap();
        listen.push(s);
    }
    let sender = UdpSocket::bind((ip.as_str(), 0)).unwrap();
    sender.set_nonblocking(true).unwrap();
    listen.push(sender.try_clone().unwrap());
    let manifest = std::fs::read_to_string(corpus_dir().join("MANIFEST.tsv")).expect("RFC 4475 corpus");
    let files: Vec<&str> = manifest.lines().skip(1).filter_map(|l| l.split('\t').next()).collect();
    let expected: HashMap<&str, Option<u16>> = RFC4475_ANSWERS.iter().copied().collect();
    assert_eq!(files.len(), expected.len(), "every corpus file has an expected answer");

    let mut got: Vec<(u16, String)> = Vec::new();
    let mut probe_seq = 0;
    for file in files {
        let want = *expected.get(file).unwrap_or_else(|| panic!("{file} has no expectation"));
        let data = std::fs::read(corpus_dir().join(file)).unwrap();
        let method = String::from_utf8_lossy(&data).split(' ').next().unwrap_or("").to_owned();
        let transaction = format!("{method} {}", raw_header(&data, &["Via", "v"]).unwrap_or_default());
        let slot = match transactions.iter().position(|seen| !seen.contains(&transaction)) {
            Some(i) => i,
            None => {
                phones.push(Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]));
                transactions.push(Default::default());
                phones.len() - 1
            }
        };
        transactions[slot].insert(transaction);
        let phone = &mut phones[slot];
        // What identifies the answer: the Call-ID, or the branch when there is none.
        let key = raw_header(&data, &["Call-ID", "i"])
            .or_else(|| raw_header(&data, &["Via", "v"]).and_then(|v| v.split("branch=").nth(1).map(str::to_owned)))
            .unwrap_or_default();
        let ours = |text: &str| !key.is_empty() && text.contains(key.as_str());
        sender.send_to(&data, phone.addr).unwrap();
        match want {
            Some(status) => {
                let start = Instant::now();
                loop {
                    drain(&listen, &mut got);
                    if got.iter().any(|(s, t)| *s == status && ours(t)) {
                        break;
                    }
                    assert!(
                        start.elapsed() < WAIT,
                        "{file}: no {status} answer; got {:?}\nstderr:\n{}",
                        got.iter().filter(|(_, t)| ours(t)).map(|(s, _)| s).collect::<Vec<_>>(),
                        phone.stderr_tail()
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
                let wrong: Vec<u16> =
                    got.iter().filter(|(s, t)| ours(t) && *s >= 200 && *s != status).map(|(s, _)| *s).collect();
                assert!(wrong.is_empty(), "{file}: also answered {wrong:?}");
            }
            None => {
                // The phone handles datagrams in order: once a later probe is answered,
                // an answer to this one would have come.
                probe_seq += 1;
                let call_id = format!("probe-{probe_seq}-{pid}");
                let probe = format!(
                    "OPTIONS sip:probe@{0} SIP/2.0\r\nVia: SIP/2.0/UDP {ip};rport;branch=z9hG4bKprobe{probe_seq}\r\n\
                     From: <sip:t@{ip}>;tag=p\r\nTo: <sip:probe@{0}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n\
                     Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
                    phone.addr
                );
                sender.send_to(probe.as_bytes(), phone.addr).unwrap();
                let start = Instant::now();
                while !got.iter().any(|(s, t)| *s == 200 && t.contains(&call_id)) {
                    assert!(start.elapsed() < WAIT, "{file}: the probe after it was not answered");
                    std::thread::sleep(Duration::from_millis(10));
                    drain(&listen, &mut got);
                }
                let answered: Vec<u16> = got.iter().filter(|(_, t)| ours(t)).map(|(s, _)| *s).collect();
                assert!(answered.is_empty(), "{file} must not be answered, got {answered:?}");
            }
        }
        assert!(phone.is_running(), "the phone died on {file}; stderr:\n{}", phone.stderr_tail());
    }
    assert_eq!(phones.len(), 2, "novelsc and cparam02 repeat an earlier transaction");
    // The INVITEs that started calls rang at the operator, with the caller read from From.
    // (The event follows the 180 the test saw: under load its line may still be on its way.)
    let start = Instant::now();
    let mut incoming: Vec<Value> = Vec::new();
    while incoming.len() < 3 && start.elapsed() < Duration::from_secs(10) {
        phones[0].pull(Duration::from_millis(100));
        incoming = phones[0].all().into_iter().filter(|e| e["event"] == "incoming").collect();
    }
    assert_eq!(incoming.len(), 3, "{incoming:?}");
    assert!(incoming.iter().any(|e| e["from"] == "+13035551111"), "inv2543's caller: {incoming:?}");
    for mut phone in phones {
        assert!(phone.quit().success());
    }
}

#[test]
fn telephony_off_means_no_phone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("settings.toml"), "telephony_enabled = false\n").unwrap();
    let out = Command::new(binary())
        .arg("--profile")
        .arg(dir.path())
        .args(["phone", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("telephony_enabled = false"), "{err}");
    assert!(out.stdout.is_empty(), "nothing started: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn bad_options_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(binary())
            .arg("--profile")
            .arg(dir.path())
            .arg("phone")
            .args(args)
            .stdin(Stdio::null())
            .env_remove("CLINICDESK_SIP_PASSWORD")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run(&[]).contains("no SIP server"));
    assert!(run(&["--server", "127.0.0.1:5062"]).contains("no SIP user"));
    assert!(run(&["--listen", "127.0.0.1:0", "--play", "/nonexistent.wav"]).contains("--play /nonexistent.wav"));
    assert!(run(&["--listen", "127.0.0.1:0", "--auto-answer=-1"]).contains("--auto-answer"));
    assert!(run(&["--listen", "127.0.0.1:0", "--devices", "--record", "x.wav"]).contains("cannot be used with"));
}

// ---------------------------------------------------------------------------------------------
// 2. sipp as the other phone

/// The phone answers sipp's calls (`sipp -sn uac`), which sipp ends with BYE.
#[test]
fn sipp_calls_the_phone_which_answers() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0", "--auto-answer"]);
    let port = free_port();
    let target = phone.addr.to_string();
    let run = sipp(dir.path(), port, &["-sn", "uac", &target, "-m", "3", "-r", "3", "-d", "500"]);
    assert_sipp_passed(run, dir.path(), port);
    for _ in 0..3 {
        let incoming = phone.event("incoming");
        let id = incoming["call_id"].as_str().unwrap().to_owned();
        assert_eq!(incoming["from"], "sipp");
        phone.call_event("answered", &id);
        let ended = phone.call_event("ended", &id);
        assert_eq!(ended["reason"], "hung_up", "{ended}");
        let media = &ended["media"];
        assert_eq!(media["codec"], "PCMU/8000", "{ended}");
        assert!(media["packets_sent"].as_u64().unwrap() > 0, "{ended}");
    }
    assert!(phone.quit().success());
}

/// The phone calls sipp (`sipp -sn uas`) and hangs up itself.
#[test]
fn the_phone_calls_sipp_and_hangs_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    let (port, run) = sipp_waiting(dir.path(), &["-sn", "uas", "-m", "1"]);
    phone.send(&format!("dial sip:service@127.0.0.1:{port}"));
    let dialing = phone.event("dialing");
    let id = dialing["call_id"].as_str().unwrap().to_owned();
    phone.call_event("ringing", &id);
    phone.call_event("answered", &id);
    phone.send("hangup");
    let ended = phone.call_event("ended", &id);
    assert_eq!(ended["reason"], "hung_up");
    assert_sipp_passed(run, dir.path(), port);
    let trace = sipp_messages(dir.path(), port);
    assert!(trace.contains("BYE sip:"), "sipp saw our BYE:\n{trace}");
    assert!(phone.quit().success());
}

/// sipp answers the phone's call and ends it itself with BYE.
#[test]
fn the_callee_hangs_up_on_the_phone() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    let (port, run) = sipp_waiting(dir.path(), &["-sf", &scenario("uas_bye.xml"), "-m", "1"]);
    let id = phone.dial(&format!("service@127.0.0.1:{port}"));
    phone.call_event("answered", &id);
    let ended = phone.call_event("ended", &id);
    assert_eq!(ended["reason"], "hung_up");
    assert_sipp_passed(run, dir.path(), port);
    assert!(phone.quit().success());
}

/// The phone answers sipp's call and hangs up first.
#[test]
fn the_phone_hangs_up_on_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0", "--auto-answer"]);
    let port = free_port();
    let target = phone.addr.to_string();
    let file = scenario("uac_wait_bye.xml");
    let args = ["-sf", &file, &target, "-m", "1", "-key", "caller", "200"];
    let run = sipp(dir.path(), port, &args);
    let id = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &id);
    phone.send(&format!("hangup {id}"));
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    assert_sipp_passed(run, dir.path(), port);
    assert!(phone.quit().success());
}

/// Cancelled while ringing, both ways: the phone gives up on sipp, sipp gives up on the phone.
#[test]
fn calls_are_cancelled_while_ringing() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);

    let (port, run) = sipp_waiting(dir.path(), &["-sf", &scenario("uas_cancel.xml"), "-m", "1"]);
    let id = phone.dial(&format!("sip:service@127.0.0.1:{port}"));
    phone.call_event("ringing", &id);
    phone.send("hangup");
    assert_eq!(phone.call_event("ended", &id)["reason"], "not_answered");
    assert_sipp_passed(run, dir.path(), port);

    let port = free_port();
    let target = phone.addr.to_string();
    let file = scenario("uac_cancel.xml");
    let args = ["-sf", &file, &target, "-m", "1", "-key", "caller", "201"];
    let run = sipp(dir.path(), port, &args);
    let incoming = phone.event("incoming");
    assert_eq!((incoming["from"].as_str(), incoming["display_name"].as_str()), (Some("201"), Some("Anna Caller")));
    let id = incoming["call_id"].as_str().unwrap().to_owned();
    assert_eq!(phone.call_event("ended", &id)["reason"], "not_answered");
    assert_sipp_passed(run, dir.path(), port);
    assert!(phone.quit().success());
}

// ---------------------------------------------------------------------------------------------
// kamailio as the clinic's PBX, baresip as the other phone

/// PEERS.md's kamailio: registrar and proxy with digest auth, users 100, 200 and 300.
const KAMAILIO_CFG: &str = r#"#!KAMAILIO
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
    fn start_with(dir: &Path, tls: Option<(u16, &Path, &Path)>) -> Kamailio {
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

    fn log(&self) -> String {
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
fn tone_of(path: &Path) -> (f32, f32) {
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

/// Both phones register with kamailio (MD5 digest); calls go each way and end from each side.
#[test]
fn calls_through_kamailio_with_baresip() {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    let mut phone = kamailio_phone(dir.path(), &kamailio, &[]);
    let tone = dir.path().join("tone440.wav");
    write_tone(&tone, 440.0, 8000, 60.0);
    let mut bare = Baresip::start(dir.path(), &kamailio.server(), "200", &tone, true);

    // We call; we hang up.
    phone.send("dial 200");
    let id = phone.event("dialing")["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &id);
    bare.event("CALL_ESTABLISHED");
    phone.send("hangup");
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    bare.event("CALL_CLOSED");

    // We call; they hang up.
    phone.send("dial 200");
    let id = phone.event("dialing")["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &id);
    bare.event("CALL_ESTABLISHED");
    bare.command("hangup", "");
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    bare.event("CALL_CLOSED");

    // They call; we answer and hang up.
    bare.command("dial", &format!("sip:100@{}", kamailio.server()));
    let incoming = phone.event("incoming");
    assert_eq!(incoming["from"], "200");
    let id = incoming["call_id"].as_str().unwrap().to_owned();
    phone.send("answer");
    phone.call_event("answered", &id);
    bare.event("CALL_ESTABLISHED");
    phone.send("hangup");
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    bare.event("CALL_CLOSED");

    // They call; we answer; they hang up.
    bare.command("dial", &format!("sip:100@{}", kamailio.server()));
    let id = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
    phone.send("answer");
    phone.call_event("answered", &id);
    bare.event("CALL_ESTABLISHED");
    bare.command("hangup", "");
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    bare.event("CALL_CLOSED");

    // On quit the phone removes its registration: kamailio no longer finds 100.
    assert!(phone.quit().success());
    bare.command("dial", &format!("sip:100@{}", kamailio.server()));
    let closed = bare.event("CALL_CLOSED");
    assert!(closed["param"].as_str().unwrap_or("").contains("404"), "{closed}\n{}", kamailio.log());
}

/// The `key="value"` parameters of a digest header.
fn digest_params(header: &str) -> HashMap<String, String> {
    let body = header.trim().strip_prefix("Digest").unwrap_or(header);
    body.split(',')
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().trim_matches('"').to_owned()))
        })
        .collect()
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A registrar challenging with MD5, then one with SHA-256 (sipp): the phone
/// answers each with the right digest, registers, and removes its binding on quit.
#[test]
fn registration_answers_md5_and_sha256_challenges() {
    for (file, algorithm) in [("registrar_md5.xml", "MD5"), ("registrar_sha256.xml", "SHA-256")] {
        let dir = tempfile::tempdir().unwrap();
        let (port, run) = sipp_waiting(dir.path(), &["-sf", &scenario(file), "-m", "1"]);
        let server = format!("127.0.0.1:{port}");
        let mut phone = Phone::start_with(
            dir.path(),
            &["--server", &server, "--user", "100", "--listen", "127.0.0.1:0", "--expires", "60"],
            &[("CLINICDESK_SIP_PASSWORD", "secret100")],
        );
        assert_eq!(phone.event("registered")["account"], format!("100@{server}"));
        assert!(phone.quit().success());
        assert_sipp_passed(run, dir.path(), port);

        let trace = sipp_messages(dir.path(), port);
        let authorization = trace
            .lines()
            .find_map(|l| l.strip_prefix("Authorization:"))
            .unwrap_or_else(|| panic!("no Authorization in:\n{trace}"));
        let p = digest_params(authorization);
        assert_eq!(p["algorithm"], algorithm);
        assert_eq!((p["username"].as_str(), p["realm"].as_str(), p["qop"].as_str()), ("100", "clinic.example", "auth"));
        let hash = |text: &str| if algorithm == "MD5" { md5_hex(text) } else { sha256_hex(text) };
        let ha1 = hash("100:clinic.example:secret100");
        let ha2 = hash(&format!("REGISTER:{}", p["uri"]));
        let expected = hash(&format!("{ha1}:{}:{}:{}:auth:{ha2}", p["nonce"], p["nc"], p["cnonce"]));
        assert_eq!(p["response"], expected, "{authorization}");
    }
}

fn md5_hex(text: &str) -> String {
    use md5::Digest;
    md5::Md5::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A call through kamailio with baresip: each side hears the other's tone, and DTMF
/// digits go both ways. `codec` is the only one the phone offers.
fn audio_and_dtmf_with_baresip(codec: &str, codec_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    let ours = dir.path().join("tone1000.wav");
    write_tone(&ours, 1000.0, 8000, 10.0);
    let theirs = dir.path().join("tone440.wav");
    write_tone(&theirs, 440.0, 8000, 60.0);
    let heard = dir.path().join("heard.wav");
    let (play, record) = (ours.display().to_string(), heard.display().to_string());
    let mut phone = kamailio_phone(dir.path(), &kamailio, &["--play", &play, "--record", &record, "--codecs", codec]);
    let mut bare = Baresip::start(dir.path(), &kamailio.server(), "200", &theirs, true);

    phone.send("dial 200");
    let id = phone.event("dialing")["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &id);
    bare.event("CALL_ESTABLISHED");

    phone.send("dtmf 159#");
    let digits: String = (0..4).map(|_| bare.event("CALL_DTMF_START")["param"].as_str().unwrap().to_owned()).collect();
    assert_eq!(digits, "159#");
    bare.command("sndcode", "7");
    assert_eq!(phone.call_event("dtmf", &id)["digit"], "7");

    // Let a few seconds of sound through, then hang up.
    std::thread::sleep(Duration::from_secs(3));
    phone.send("hangup");
    let ended = phone.call_event("ended", &id);
    assert_eq!(ended["media"]["codec"], codec_name, "{ended}");
    assert!(ended["media"]["packets_received"].as_u64().unwrap() > 50, "{ended}");
    bare.event("CALL_CLOSED");

    let (freq, seconds) = tone_of(&heard);
    assert!((freq - 440.0).abs() <= 10.0 && seconds >= 1.0, "we heard {freq} Hz for {seconds} s");
    let (freq, seconds) = tone_of(&bare.received_recording());
    assert!((freq - 1000.0).abs() <= 10.0 && seconds >= 1.0, "baresip heard {freq} Hz for {seconds} s");
    assert!(phone.quit().success());
}

#[test]
fn tones_and_dtmf_both_ways_with_pcmu() {
    audio_and_dtmf_with_baresip("pcmu", "PCMU/8000");
}

#[test]
fn tones_and_dtmf_both_ways_with_opus() {
    audio_and_dtmf_with_baresip("opus", "opus/48000/2");
}

// ---------------------------------------------------------------------------------------------
// 5. Hold, resume, transfer

/// The phone holds (re-INVITE sendonly) and resumes (sendrecv) a call; sipp checks the SDP.
#[test]
fn hold_and_resume_by_reinvite() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    let (port, run) = sipp_waiting(dir.path(), &["-sf", &scenario("uas_hold.xml"), "-m", "1"]);
    let id = phone.dial(&format!("sip:service@127.0.0.1:{port}"));
    phone.call_event("answered", &id);
    phone.send("hold");
    phone.call_event("held", &id);
    phone.send("resume");
    phone.call_event("resumed", &id);
    phone.send("hangup");
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    assert_sipp_passed(run, dir.path(), port);
    assert!(phone.quit().success());
}

/// The other side holds the phone by re-INVITE and resumes by UPDATE: the phone's
/// answers mirror them (recvonly, then sendrecv); sipp checks.
#[test]
fn the_peer_holds_by_reinvite_and_resumes_by_update() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0", "--auto-answer"]);
    let port = free_port();
    let target = phone.addr.to_string();
    let file = scenario("uac_reinvite.xml");
    let run = sipp(dir.path(), port, &["-sf", &file, &target, "-m", "1", "-key", "caller", "202"]);
    let id = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &id);
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    assert_sipp_passed(run, dir.path(), port);
    assert!(phone.quit().success());
}

/// Blind transfer: REFER to 201, the NOTIFY reports 200, the phone hangs up its part.
#[test]
fn blind_transfer_by_refer() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    let (port, run) = sipp_waiting(dir.path(), &["-sf", &scenario("uas_refer.xml"), "-m", "1"]);
    let id = phone.dial(&format!("sip:service@127.0.0.1:{port}"));
    phone.call_event("answered", &id);
    phone.send(&format!("transfer 201@127.0.0.1:{port}"));
    let transferred = phone.call_event("transferred", &id);
    assert_eq!(transferred["target"], "201");
    assert_eq!(phone.call_event("ended", &id)["reason"], "transferred");
    assert_sipp_passed(run, dir.path(), port);
    let trace = sipp_messages(dir.path(), port);
    assert!(trace.contains("Referred-By:"), "{trace}");
    assert!(phone.quit().success());
}

// ---------------------------------------------------------------------------------------------
// 6. The caller's card

/// A call from a known patient's number (in national form) rings with that patient's card,
/// and the finished call is logged in the replica against them.
#[test]
fn an_incoming_call_shows_the_callers_card_and_is_logged() {
    let profile = super::harness::demo_profile(300, 200);
    let replica = profile.path().join("replica.sqlite");
    let (e164, name, person_id): (String, String, String) = {
        let db = rusqlite::Connection::open(&replica).unwrap();
        db.query_row(
            "SELECT ph.phone_e164,
                    p.last_name || ' ' || p.first_name || CASE WHEN p.middle_name = '' THEN '' ELSE ' ' || p.middle_name END,
                    p.id
             FROM person_phones ph JOIN people p ON p.id = ph.person_id
             WHERE ph.deleted_at IS NULL AND p.deleted_at IS NULL AND ph.phone_e164 LIKE '+7%'
               AND (SELECT count(*) FROM person_phones x WHERE x.phone_e164 = ph.phone_e164 AND x.deleted_at IS NULL) = 1
             ORDER BY ph.phone_e164 LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    // As a Russian PBX sends it: 8 and the ten digits.
    let national = format!("8{}", &e164[2..]);

    let mut phone = Phone::start(profile.path(), &["--listen", "127.0.0.1:0", "--auto-answer"]);
    let port = free_port();
    let target = phone.addr.to_string();
    let file = scenario("uac_wait_bye.xml");
    let run = sipp(profile.path(), port, &["-sf", &file, &target, "-m", "1", "-key", "caller", &national]);
    let incoming = phone.event("incoming");
    assert_eq!(incoming["from"], e164.as_str());
    let card = &incoming["card"];
    assert_eq!(card["number"], e164.as_str(), "{incoming}");
    assert_eq!(card["people"][0]["full_name"], name.as_str(), "{incoming}");
    assert_eq!(card["people"][0]["id"], person_id.as_str());
    let id = incoming["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &id);
    phone.send("hangup");
    phone.call_event("ended", &id);
    assert_sipp_passed(run, profile.path(), port);
    assert!(phone.quit().success());

    let db = rusqlite::Connection::open(&replica).unwrap();
    let (peer, result, who, direction): (String, String, Option<String>, String) = db
        .query_row("SELECT peer_e164, result, person_id, direction FROM calls WHERE sip_call_id = ?", [&id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap();
    assert_eq!((peer.as_str(), result.as_str(), direction.as_str()), (e164.as_str(), "answered", "in"));
    assert_eq!(who.as_deref(), Some(person_id.as_str()));
}

// ---------------------------------------------------------------------------------------------
// Registration details against a registrar written here: refresh, keep-alive, recovery, NAT

/// How the registrar below answers.
#[derive(Clone, Default)]
struct RegistrarPolicy {
    /// Statuses for the first REGISTERs (then 200).
    first_failures: Vec<u16>,
    /// The interval granted by each successful REGISTER in turn (the last one repeats).
    granted: Vec<u32>,
    /// Pretend the phone is behind NAT: this address goes in the Via (received, rport).
    seen_from: Option<SocketAddr>,
}

/// A registrar and proxy on a UDP socket: answers REGISTER per its policy, INVITE with
/// 486, and keeps everything it receives (keep-alives included) for the test to read.
struct Registrar {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Registrar {
    fn start(policy: RegistrarPolicy) -> Registrar {
        use clinicdesk::sip::{Message, Response};
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let addr = socket.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (log, quit) = (received.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65_535];
            let (mut registers, mut successes) = (0usize, 0usize);
            while !quit.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else { continue };
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                log.lock().unwrap().push(text);
                let Ok(Message::Request(req)) = Message::parse(&buf[..n]) else { continue };
                let mut resp = match req.method.as_str() {
                    "REGISTER" => {
                        registers += 1;
                        match policy.first_failures.get(registers - 1) {
                            Some(status) => Response::for_request(&req, *status),
                            None => {
                                let granted = policy.granted.get(successes).or(policy.granted.last()).copied();
                                successes += 1;
                                let mut ok = Response::for_request(&req, 200);
                                if let Some(contact) = req.headers.get(&clinicdesk::sip::HeaderName::Contact) {
                                    let bare = contact.split(";expires").next().unwrap_or(contact);
                                    let expires = granted.unwrap_or(60);
                                    ok.headers.push(
                                        clinicdesk::sip::HeaderName::Contact,
                                        format!("{bare};expires={expires}"),
                                    );
                                }
                                ok
                            }
                        }
                    }
                    "ACK" => continue,
                    "INVITE" => Response::for_request(&req, 486),
                    _ => Response::for_request(&req, 200),
                };
                resp.set_to_tag("registrar");
                if let Some(public) = policy.seen_from {
                    let mut via = resp.headers.top_via().unwrap();
                    via.params.set("received", Some(&public.ip().to_string()));
                    via.params.set("rport", Some(&public.port().to_string()));
                    resp.headers.set_top_via(&via);
                }
                let _ = socket.send_to(&resp.to_bytes(), from);
            }
        });
        Registrar { addr, received, stop }
    }

    fn messages(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }

    /// The REGISTER requests received so far.
    fn registers(&self) -> Vec<String> {
        self.messages().into_iter().filter(|m| m.starts_with("REGISTER ")).collect()
    }

    fn wait_for(&self, what: &str, done: impl Fn(&[String]) -> bool) {
        let start = Instant::now();
        while !done(&self.messages()) {
            assert!(start.elapsed() < WAIT, "the registrar never saw {what}; it got:\n{}", self.messages().join("\n"));
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Registrar {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn header_of(message: &str, name: &str) -> Option<String> {
    message.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

/// The registrar is down at first (503): the phone says so and tries again until it
/// registers; it refreshes before the binding expires, sends CRLF keep-alives, and
/// removes the binding on quit.
#[test]
fn registration_recovers_refreshes_and_keeps_alive() {
    let dir = tempfile::tempdir().unwrap();
    let registrar =
        Registrar::start(RegistrarPolicy { first_failures: vec![503], granted: vec![2, 3600], seen_from: None });
    let server = registrar.addr.to_string();
    let mut phone = Phone::start_with(
        dir.path(),
        &["--server", &server, "--user", "100", "--listen", "127.0.0.1:0", "--keepalive", "1"],
        &[("CLINICDESK_SIP_PASSWORD", "secret100")],
    );
    let failed = phone.event("registration_failed");
    assert_eq!(failed["code"], 503, "{failed}");
    phone.event("registered");
    // Granted 2 s: refreshed before it lapses (then granted an hour).
    registrar.wait_for("the refresh", |m| m.iter().filter(|m| m.starts_with("REGISTER ")).count() >= 3);
    registrar.wait_for("a CRLF keep-alive", |m| m.iter().any(|m| m == "\r\n"));
    assert!(phone.quit().success());
    registrar
        .wait_for("the binding removed", |m| m.iter().any(|m| m.starts_with("REGISTER ") && m.contains("Expires: 0")));

    let registers = registrar.registers();
    let call_ids: Vec<Option<String>> = registers.iter().map(|r| header_of(r, "Call-ID")).collect();
    assert!(call_ids.windows(2).all(|w| w[0] == w[1]), "one Call-ID for the account: {call_ids:?}");
    let seqs: Vec<u32> = registers
        .iter()
        .filter_map(|r| header_of(r, "CSeq").and_then(|c| c.split(' ').next().and_then(|n| n.parse().ok())))
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "CSeq grows: {seqs:?}");
    assert!(phone.all().iter().filter(|e| e["event"] == "registered").count() == 1, "registered reported once");
}

/// A bare INVITE for the phone at `target`, sent from `socket`; the status of the
/// first final or ringing answer (100 Trying aside).
fn invite_status(socket: &UdpSocket, target: SocketAddr, n: u32) -> u16 {
    let me = socket.local_addr().unwrap();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
               m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
    let invite = format!(
        "INVITE sip:100@{target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKghost{n}\r\nMax-Forwards: 70\r\n\
         From: <sip:ghost@{me}>;tag=g{n}\r\nTo: <sip:100@{target}>\r\nCall-ID: ghost-{n}@{me}\r\n\
         CSeq: 1 INVITE\r\nContact: <sip:ghost@{me}>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    socket.send_to(invite.as_bytes(), target).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        assert!(start.elapsed() < WAIT, "no answer to the INVITE from {me}");
        let Ok((len, _)) = socket.recv_from(&mut buf) else { continue };
        let text = String::from_utf8_lossy(&buf[..len]);
        let status: u16 = text.get(8..11).and_then(|s| s.parse().ok()).unwrap_or(0);
        if status > 100 {
            return status;
        }
    }
}

/// While registered, a call from an address other than the registrar's (a SIP
/// scanner's "ghost call") is refused with 403 and never rings; one from the
/// registrar's host rings; `--calls-from-anywhere` lets the other one ring too.
#[test]
fn while_registered_calls_come_only_from_the_registrar() {
    for anywhere in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let registrar = Registrar::start(RegistrarPolicy { granted: vec![3600], ..Default::default() });
        let server = registrar.addr.to_string();
        let mut args = vec!["--server", &server, "--user", "100", "--listen", "127.0.0.1:0"];
        if anywhere {
            args.push("--calls-from-anywhere");
        }
        let mut phone = Phone::start_with(dir.path(), &args, &[("CLINICDESK_SIP_PASSWORD", "secret100")]);
        phone.event("registered");
        // Another host on the loopback network.
        let stranger = UdpSocket::bind("127.0.0.2:0").unwrap();
        let status = invite_status(&stranger, phone.addr, 1);
        if anywhere {
            assert_eq!(status, 180, "with --calls-from-anywhere the stranger's call rings");
            assert_eq!(phone.event("incoming")["from"], "ghost");
        } else {
            assert_eq!(status, 403, "the stranger's call");
            let registrars_host = UdpSocket::bind("127.0.0.1:0").unwrap();
            assert_eq!(invite_status(&registrars_host, phone.addr, 2), 180, "a call from the registrar's host");
            let incoming = phone.event("incoming");
            assert_eq!(incoming["call_id"], format!("ghost-2@{}", registrars_host.local_addr().unwrap()));
            let rang = phone.all().iter().filter(|e| e["event"] == "incoming").count();
            assert_eq!(rang, 1, "only the registrar's call rang");
        }
        assert!(phone.quit().success());
    }
}

/// Behind NAT (the registrar sees another address than ours, RFC 3581): the phone registers
/// the public address, and its calls carry it in Contact and SDP; a number typed in national
/// form is dialled in E.164.
#[test]
fn behind_nat_the_public_address_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let public: SocketAddr = "192.0.2.33:40000".parse().unwrap();
    let registrar =
        Registrar::start(RegistrarPolicy { seen_from: Some(public), granted: vec![3600], ..Default::default() });
    let server = registrar.addr.to_string();
    let mut phone = Phone::start_with(
        dir.path(),
        &["--server", &server, "--user", "100", "--listen", "127.0.0.1:0"],
        &[("CLINICDESK_SIP_PASSWORD", "secret100")],
    );
    phone.event("registered");
    let registers = registrar.registers();
    let last = registers.last().unwrap();
    assert_eq!(header_of(last, "Contact").as_deref(), Some("<sip:100@192.0.2.33:40000>;expires=600"), "{last}");

    phone.send("dial 8 (916) 123-45-67");
    let id = phone.event("dialing")["call_id"].as_str().unwrap().to_owned();
    assert_eq!(phone.call_event("ended", &id)["reason"], "busy");
    let invite = registrar.messages().into_iter().find(|m| m.starts_with("INVITE ")).unwrap();
    assert!(invite.starts_with(&format!("INVITE sip:+79161234567@{server} SIP/2.0\r\n")), "{invite}");
    assert_eq!(header_of(&invite, "Contact").as_deref(), Some("<sip:100@192.0.2.33:40000>"));
    assert!(invite.contains("\r\nc=IN IP4 192.0.2.33\r\n"), "{invite}");
    assert!(phone.quit().success());
}

// ---------------------------------------------------------------------------------------------
// More call situations

/// A second call during a call rings (call waiting); with --no-call-waiting it gets 486.
#[test]
fn a_second_call_waits_or_is_busy() {
    let dir = tempfile::tempdir().unwrap();
    for waiting in [true, false] {
        // The operator answers by command: taking the waiting call holds the first.
        let mut args = vec!["--listen", "127.0.0.1:0"];
        if !waiting {
            args.push("--no-call-waiting");
        }
        let mut phone = Phone::start(dir.path(), &args);
        let target = phone.addr.to_string();
        let first_port = free_port();
        // With call waiting the first call is put on hold when the second is answered.
        let file = scenario(if waiting { "uac_wait_hold_bye.xml" } else { "uac_wait_bye.xml" });
        let first = sipp(dir.path(), first_port, &["-sf", &file, &target, "-m", "1", "-key", "caller", "203"]);
        let one = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
        phone.send(&format!("answer {one}"));
        phone.call_event("answered", &one);
        let second_port = free_port();
        if waiting {
            let plain = scenario("uac_wait_bye.xml");
            let second = sipp(dir.path(), second_port, &["-sf", &plain, &target, "-m", "1", "-key", "caller", "204"]);
            let two = phone.event("incoming");
            assert_eq!(two["from"], "204");
            let two = two["call_id"].as_str().unwrap().to_owned();
            phone.send(&format!("answer {two}"));
            phone.call_event("answered", &two);
            // Answering the waiting call put the first on hold.
            phone.call_event("held", &one);
            phone.send(&format!("hangup {two}"));
            phone.call_event("ended", &two);
            assert_sipp_passed(second, dir.path(), second_port);
        } else {
            let busy = scenario("uac_busy.xml");
            let second = sipp(dir.path(), second_port, &["-sf", &busy, &target, "-m", "1", "-key", "caller", "204"]);
            assert_sipp_passed(second, dir.path(), second_port);
            assert_eq!(phone.all().iter().filter(|e| e["event"] == "incoming").count(), 1, "the second never rang");
        }
        phone.send(&format!("hangup {one}"));
        assert_eq!(phone.call_event("ended", &one)["reason"], "hung_up");
        assert_sipp_passed(first, dir.path(), first_port);
        assert!(phone.quit().success());
    }
}

/// Early media: a 183 with SDP starts the sound before the answer; the call then goes on.
#[test]
fn early_media_before_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    let (port, run) = sipp_waiting(dir.path(), &["-sf", &scenario("uas_early_media.xml"), "-m", "1"]);
    let id = phone.dial(&format!("sip:announcement@127.0.0.1:{port}"));
    phone.call_event("ringing", &id);
    phone.call_event("answered", &id);
    phone.send("hangup");
    let ended = phone.call_event("ended", &id);
    assert_eq!(ended["media"]["codec"], "PCMU/8000", "{ended}");
    // The media ran from the 183: at least the half second before the 200.
    assert!(ended["media"]["duration_ms"].as_u64().unwrap() >= 400, "{ended}");
    assert_sipp_passed(run, dir.path(), port);
    assert!(phone.quit().success());
}

/// While the operator is busy, calls are declined with 486 and never ring.
#[test]
fn a_busy_operator_declines_calls() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    phone.send("busy");
    // Commands reach the user agent in order: once it has refused this dial, it is busy.
    phone.send("dial not!a!number");
    assert_eq!(phone.event("ended")["reason"], "failed");
    let port = free_port();
    let target = phone.addr.to_string();
    let busy = scenario("uac_busy.xml");
    let run = sipp(dir.path(), port, &["-sf", &busy, &target, "-m", "1", "-key", "caller", "205"]);
    assert_sipp_passed(run, dir.path(), port);
    assert!(!phone.all().iter().any(|e| e["event"] == "incoming"));
    assert!(phone.quit().success());
}

/// The same calls over TCP: sipp calls the phone, the phone calls sipp.
#[test]
fn calls_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--transport", "tcp", "--listen", "127.0.0.1:0", "--auto-answer"]);
    assert_eq!(phone.all()[0]["transport"], "tcp");
    let target = phone.addr.to_string();
    let port = free_port();
    let run = sipp(dir.path(), port, &["-sn", "uac", "-t", "t1", &target, "-m", "1", "-d", "300"]);
    let id = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    assert_sipp_passed(run, dir.path(), port);

    let (port, run) = sipp_waiting(dir.path(), &["-sn", "uas", "-t", "t1", "-m", "1"]);
    let id = phone.dial(&format!("sip:service@127.0.0.1:{port};transport=tcp"));
    phone.call_event("answered", &id);
    phone.send("hangup");
    assert_eq!(phone.call_event("ended", &id)["reason"], "hung_up");
    assert_sipp_passed(run, dir.path(), port);
    assert!(sipp_messages(dir.path(), port).contains("Via: SIP/2.0/TCP"));
    assert!(phone.quit().success());
}

/// Attended transfer: the caller is held, the operator calls the target, then hands the caller
/// over (REFER with Replaces naming the call to the target); both calls of ours end.
#[test]
fn attended_transfer_with_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0"]);
    let caller_port = free_port();
    let caller = sipp(dir.path(), caller_port, &["-sf", &scenario("uas_refer_replaces.xml"), "-m", "1"]);
    let (target_port, target) = sipp_waiting(dir.path(), &["-sn", "uas", "-m", "1"]);

    let a = phone.dial(&format!("sip:caller@127.0.0.1:{caller_port}"));
    phone.call_event("answered", &a);
    phone.send("hold");
    phone.call_event("held", &a);
    let b = phone.dial(&format!("sip:target@127.0.0.1:{target_port}"));
    phone.call_event("answered", &b);
    phone.send(&format!("transfer {b}"));
    assert_eq!(phone.call_event("transferred", &a)["target"], "target");
    assert_eq!(phone.call_event("ended", &a)["reason"], "transferred");
    assert_eq!(phone.call_event("ended", &b)["reason"], "transferred");
    assert_sipp_passed(caller, dir.path(), caller_port);
    assert_sipp_passed(target, dir.path(), target_port);
    let trace = sipp_messages(dir.path(), caller_port);
    assert!(trace.contains(&format!("Replaces={}", b.replace('@', "%40"))), "{trace}");
    assert!(phone.quit().success());
}

/// A wrong password is reported as such (and the phone does not keep trying it).
#[test]
fn a_wrong_password_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let kamailio = Kamailio::start(dir.path());
    let server = kamailio.server();
    let mut phone = Phone::start_with(
        dir.path(),
        &["--server", &server, "--user", "100", "--listen", "127.0.0.1:0"],
        &[("CLINICDESK_SIP_PASSWORD", "not-the-password")],
    );
    let failed = phone.event("registration_failed");
    assert_eq!(failed["code"], 403, "{failed}");
    assert!(failed["reason"].as_str().unwrap().contains("wrong user name or password"), "{failed}");
    assert!(phone.quit().success());
    assert!(!phone.all().iter().any(|e| e["event"] == "registered"));
}

/// The other side transfers the phone: it accepts the REFER, calls the target, reports the
/// progress by NOTIFY, and its old call ends as a transfer when the transferor hangs up.
#[test]
fn the_phone_follows_a_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let mut phone = Phone::start(dir.path(), &["--listen", "127.0.0.1:0", "--auto-answer"]);
    let (target_port, target) = sipp_waiting(dir.path(), &["-sn", "uas", "-m", "1"]);
    let refer_to = format!("sip:nurse@127.0.0.1:{target_port}");
    let port = free_port();
    let addr = phone.addr.to_string();
    let file = scenario("uac_refers.xml");
    let run =
        sipp(dir.path(), port, &["-sf", &file, &addr, "-m", "1", "-key", "caller", "206", "-key", "target", &refer_to]);
    let old = phone.event("incoming")["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &old);
    let new = phone.event("dialing");
    assert_eq!(new["to"], "nurse");
    let new = new["call_id"].as_str().unwrap().to_owned();
    phone.call_event("answered", &new);
    assert_eq!(phone.call_event("ended", &old)["reason"], "transferred");
    assert_sipp_passed(run, dir.path(), port);
    phone.send(&format!("hangup {new}"));
    assert_eq!(phone.call_event("ended", &new)["reason"], "hung_up");
    assert_sipp_passed(target, dir.path(), target_port);
    assert!(phone.quit().success());
}

/// A test certificate authority and a certificate for 127.0.0.1 signed by it
/// (openssl): (CA file, server certificate, server key).
fn test_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = require("openssl", "openssl");
    let run = |args: &[&str]| {
        let out = Command::new(&openssl).current_dir(dir).args(args).output().unwrap();
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Test Clinic CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

/// Registration over TLS with kamailio: the clinic's CA file makes its
/// certificate trusted; without it the failure names the certificate problem.
#[test]
fn registration_over_tls_with_the_clinic_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_pki(dir.path());
    let tls_port = free_port();
    let kamailio = Kamailio::start_with(dir.path(), Some((tls_port, &cert, &key)));
    let server = format!("127.0.0.1:{tls_port}");
    let args = ["--server", server.as_str(), "--user", "100", "--transport", "tls", "--listen", "127.0.0.1:0"];
    let password = [("CLINICDESK_SIP_PASSWORD", "secret100")];

    let mut args_ca = args.to_vec();
    let ca_text = ca.display().to_string();
    args_ca.extend(["--ca-file", ca_text.as_str()]);
    let mut phone = Phone::start_with(dir.path(), &args_ca, &password);
    let registered =
        phone.wait("registered over TLS", |e| e["event"] == "registered" || e["event"] == "registration_failed");
    assert_eq!(
        registered["event"],
        "registered",
        "{registered}\n{}\nkamailio:\n{}",
        phone.stderr_tail(),
        kamailio.log()
    );
    assert!(phone.quit().success());

    let mut phone = Phone::start_with(dir.path(), &args, &password);
    let failed = phone.wait("refused", |e| e["event"] == "registration_failed");
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("unknown authority") || reason.contains("UnknownIssuer"), "{failed}");
    assert!(phone.quit().success());
}

/// An incoming call rings the operator's speaker (the ringtone through cpal
/// into a PulseAudio null sink) while it rings, and the speaker is quiet once
/// the caller gives up.
#[test]
fn an_incoming_call_rings_the_speaker() {
    let dir = tempfile::tempdir().unwrap();
    let pulse = super::media::Pulse::start(dir.path());
    let parec = require("parec", "pulseaudio-utils");
    let speaker = dir.path().join("speaker.raw");
    let recorder = super::harness::Peer::spawn(
        "parec",
        pulse
            .command(&parec)
            .args(["-d", "spk.monitor", "--raw", "--format=s16le", "--rate=48000", "--channels=1"])
            .arg("--latency-msec=20")
            .stdout(Stdio::from(std::fs::File::create(&speaker).unwrap()))
            .stderr(Stdio::null()),
    );
    let env = pulse.env_pairs();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut phone = Phone::start_with(dir.path(), &["--listen", "127.0.0.1:0", "--devices"], &env);
    let port = free_port();
    let target = phone.addr.to_string();
    let file = scenario("uac_ring_then_cancel.xml");
    let run = sipp(dir.path(), port, &["-sf", &file, &target, "-m", "1", "-d", "4000", "-key", "caller", "201"]);
    let incoming = phone.event("incoming");
    let id = incoming["call_id"].as_str().unwrap().to_owned();
    assert_eq!(phone.call_event("ended", &id)["reason"], "not_answered");
    assert_sipp_passed(run, dir.path(), port);
    // Longer than a whole ring cadence (3 s), so a ringtone still going would show.
    std::thread::sleep(Duration::from_millis(4500));
    drop(recorder);
    assert!(phone.quit().success());

    let raw = std::fs::read(&speaker).unwrap();
    let samples: Vec<f32> = raw.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0).collect();
    let win = 480;
    let loud: Vec<bool> = samples.chunks(win).map(|w| super::media::rms(w) > 0.05).collect();
    let first = loud.iter().position(|l| *l).unwrap_or_else(|| {
        panic!("the speaker stayed silent ({} s recorded):\n{}", samples.len() / 48000, phone.stderr_tail())
    });
    // Inside the first ring burst (400 ms): 440 + 480 Hz beat around 460 Hz.
    let burst = &samples[(first + 5) * win..((first + 30) * win).min(samples.len())];
    let f = super::media::frequency(burst, 48000);
    assert!((430.0..=490.0).contains(&f), "the ringtone is {f:.0} Hz, not the 440/480 Hz pair");
    let last_loud = loud.iter().rposition(|l| *l).unwrap();
    let quiet_tail = loud.len() - 1 - last_loud;
    assert!(
        quiet_tail * win >= 48000 * 32 / 10,
        "the speaker rang on after the caller gave up (only the last {} ms were quiet)",
        quiet_tail * 10
    );
}

// ---------------------------------------------------------------------------------------------
// Load

/// The phone's `stats` event: what its user agent holds, and its resident memory.
fn phone_stats(phone: &mut Phone) -> Value {
    phone.send("stats");
    phone.event("stats")
}

/// Whether a `stats` event shows nothing left of the calls: no call, dialog,
/// transaction, request waiting for an answer, nor call timer.
fn all_gone(stats: &Value) -> bool {
    ["transactions", "dialogs", "calls", "pending", "timers"].iter().all(|k| stats[*k] == 0)
}

/// CPU time (user + system) a process has used so far, from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // The command name (field 2) may hold spaces: count from the parenthesis that closes it.
    let fields: Vec<&str> = stat.rsplit_once(')').expect("stat line").1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on every Linux this runs on (sysconf(_SC_CLK_TCK)).
    Duration::from_millis(ticks * 10)
}

/// sipp's built-in uac calling `target`: `calls` calls at `rate` per second, each
/// `length_ms` long and ended by sipp's BYE, with its statistics (one line a second)
/// in a CSV file. No message trace: at this rate it would cost more than the calls.
fn sipp_load(dir: &Path, port: u16, target: &str, rate: u32, calls: u32, length_ms: u32) -> (Program, PathBuf) {
    let sipp = require("sipp", "sip-tester");
    let stats = dir.join(format!("sipp-load-{port}.csv"));
    let mut cmd = Command::new(sipp);
    cmd.current_dir(dir)
        .args(["-sn", "uac", target, "-i", "127.0.0.1", "-p", &port.to_string(), "-nostdin"])
        .args(["-r", &rate.to_string(), "-m", &calls.to_string(), "-d", &length_ms.to_string()])
        .args(["-timeout", "120", "-trace_err", "-error_file", &format!("sipp-load-{port}.err")])
        .args(["-trace_stat", "-fd", "1", "-stf"])
        .arg(&stats);
    (Program::spawn("sipp", dir, &mut cmd), stats)
}

/// The last line of sipp's -trace_stat CSV as counter name → value.
fn sipp_final_stats(csv: &Path) -> HashMap<String, String> {
    let text = std::fs::read_to_string(csv).unwrap_or_else(|e| panic!("sipp's statistics {}: {e}", csv.display()));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines.next().expect("sipp statistics header").split(';').collect();
    let last: Vec<&str> = lines.next_back().expect("sipp statistics line").split(';').collect();
    header.iter().zip(last).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Runs one sipp load to its end; fails unless every call succeeded. Returns the wall
/// time it took and the phone's CPU time over it.
fn run_load(dir: &Path, phone: &mut Phone, rate: u32, calls: u32, length_ms: u32) -> (Duration, Duration) {
    let port = free_port();
    let pid = phone.child.id();
    let (cpu0, start) = (cpu_time(pid), Instant::now());
    let (mut child, csv) = sipp_load(dir, port, &phone.addr.to_string(), rate, calls, length_ms);
    // The phone's events pile up meanwhile (3 a call): keep reading them.
    let limit = Duration::from_secs(u64::from(calls / rate) + 60);
    let status = loop {
        if let Ok(Some(status)) = child.child.try_wait() {
            break status;
        }
        assert!(start.elapsed() < limit, "sipp did not finish in {limit:?}:\n{}", child.output());
        assert!(phone.is_running(), "the phone died under load; stderr:\n{}", phone.stderr_tail());
        phone.pull(Duration::from_millis(100));
    };
    let (wall, cpu) = (start.elapsed(), cpu_time(pid).saturating_sub(cpu0));
    let errors = std::fs::read_to_string(dir.join(format!("sipp-load-{port}.err"))).unwrap_or_default();
    let errors: String = errors.lines().take(30).collect::<Vec<_>>().join("\n");
    let stats = sipp_final_stats(&csv);
    let counter = |name: &str| -> u64 {
        stats.get(name).and_then(|v| v.trim().parse().ok()).unwrap_or_else(|| panic!("{name} in {stats:?}"))
    };
    let (ok, failed) = (counter("SuccessfulCall(C)"), counter("FailedCall(C)"));
    assert!(
        status.success() && ok == u64::from(calls) && failed == 0,
        "sipp at {rate} calls/s: {ok} of {calls} calls succeeded, {failed} failed ({status}); errors:\n{errors}\n\
         sipp:\n{}\nphone:\n{}",
        child.output().lines().filter(|l| l.contains("--") || l.contains("call")).collect::<Vec<_>>().join("\n"),
        phone.stderr_tail()
    );
    (wall, cpu)
}

/// Issue 3's load requirement: sipp calls `clinicdesk phone --auto-answer` at 100
/// calls/s for 30 s (3000 calls of 1 s, so ~100 at a time, each with its RTP
/// session of silence). Every call succeeds, the phone lives on, and once the
/// transactions' last timers (J and L, 64·T1 = 32 s) have run out the user agent
/// holds no transaction, dialog or call, and its memory is back within 10 MiB of
/// where it was after a warm-up batch (the allocator's first growth, the runtime's
/// threads and buffers are in that level; a leak of 4 KiB a call is 12 MiB).
#[test]
fn a_hundred_calls_a_second_for_30_s_leave_nothing_behind() {
    const RATE: u32 = 100;
    const CALLS: u32 = 3000;
    const WARM_UP: u32 = 200;
    const TOLERANCE_KIB: u64 = 10 * 1024;
    let dir = tempfile::tempdir().unwrap();
    // Debug logging of 3000 calls would be most of the work; the load runs as deployed.
    let args = ["--listen", "127.0.0.1:0", "--auto-answer"];
    let mut phone = Phone::start_with(dir.path(), &args, &[("CLINICDESK_LOG", "info")]);

    run_load(dir.path(), &mut phone, RATE, WARM_UP, 1000);
    let warm = phone_stats(&mut phone);
    let base_kib = warm["rss_kib"].as_u64().expect("rss_kib");

    let (wall, cpu) = run_load(dir.path(), &mut phone, RATE, CALLS, 1000);
    // sipp paces the calls itself but holds back (at 3x the expected concurrent calls)
    // when the phone answers late: 3000 calls in much more than 30 s means it could not keep up.
    assert!(wall < Duration::from_secs(40), "3000 calls took {wall:?}: the phone did not keep up with {RATE}/s");
    let loaded = phone_stats(&mut phone);
    eprintln!(
        "load: {CALLS} calls at {RATE}/s in {:.1} s, phone CPU {:.1} s ({:.0}% of a core); after warm-up {warm}; \
         at the end {loaded}",
        wall.as_secs_f64(),
        cpu.as_secs_f64(),
        100.0 * cpu.as_secs_f64() / wall.as_secs_f64()
    );
    assert!(phone.is_running(), "the phone died; stderr:\n{}", phone.stderr_tail());

    // Every call rang, was answered and ended by sipp's BYE.
    let events = phone.all();
    let count = |name: &str| events.iter().filter(|e| e["event"] == name).count();
    let total = (WARM_UP + CALLS) as usize;
    assert_eq!((count("incoming"), count("answered")), (total, total));
    let ended: Vec<&Value> = events.iter().filter(|e| e["event"] == "ended").collect();
    assert_eq!(ended.len(), total);
    assert!(ended.iter().all(|e| e["reason"] == "hung_up"), "a call ended otherwise");

    // The transactions wait out Timer J (BYE) and L (INVITE 2xx), 32 s over UDP; then
    // nothing may be left, and the memory they took must have been given back.
    let start = Instant::now();
    let last = loop {
        let stats = phone_stats(&mut phone);
        let rss = stats["rss_kib"].as_u64().expect("rss_kib");
        if all_gone(&stats) && rss <= base_kib + TOLERANCE_KIB {
            break stats;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "60 s after the load the phone still holds {stats} (after warm-up: {warm}); stderr:\n{}",
            phone.stderr_tail()
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    eprintln!("load: {:.0} s after the load the phone holds {last}", start.elapsed().as_secs_f64());
    assert!(phone.quit().success());
}
