//! The SIP user agent end to end: the real `clinicdesk phone` against real
//! peers started here on 127.0.0.1 (sipp, kamailio, baresip), each stopped
//! when its test ends. Events are read from the phone's JSON lines, commands
//! written to its stdin; what the peers saw is read from their own reports.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use serde_json::Value;

use super::harness::{binary, port_bound, require, wait_for};

mod basics;
mod kamailio;
mod lasting;
mod load;
mod peers;
mod registrar;
mod situations;
mod timeouts;

pub(crate) use peers::{Baresip, Kamailio, kamailio_phone, write_tone};

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
/// own, listening before it is dialled.
pub(crate) fn sipp_waiting(dir: &Path, args: &[&str]) -> (u16, Program) {
    let port = free_port();
    let run = sipp(dir, port, args);
    wait_for(&format!("sipp listening on port {port}"), Duration::from_secs(30), || port_bound(port));
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
