//! From an INVITE leaving the caller to the `incoming` event with the
//! caller's card, end to end, on the big replica (200k people / 1M calls):
//! the real `clinicdesk phone` on loopback, 500 calls from different patients'
//! numbers, one after another; each is cancelled once it rang.
//!
//! `cargo bench --bench call_latency` prints p50/p99/max as seen by the
//! caller (send → the event line read from the phone's stdout) for calls
//! back to back (the next INVITE as soon as the last call ended: a call
//! center) and 0.6 s apart; the time to record one missed call (with its
//! inquiry and task) straight through the library; and the
//! phone's own figures (`--timings`: the card lookup and the whole handling
//! of the INVITE). The replica is the one `benches/store.rs` generates into
//! target/bench-data (made here with `clinicdesk demo-data` when missing), or
//! `CLINICDESK_REPLICA`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const CALLS: usize = 500;
const WARM_UP: usize = 20;
/// Calls of the second pass, each 0.6 s after the previous one ended.
const SPACED_CALLS: usize = 60;
/// Missed calls recorded straight through the library, timed one by one.
const RECORDED: usize = 1000;

fn main() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_clinicdesk"));
    let replica = big_replica(&exe);
    let profile = tempfile::tempdir().expect("temp dir");
    {
        // Whatever the WAL holds goes into the file copied.
        let conn = rusqlite::Connection::open(&replica).expect("open the replica");
        conn.pragma_update(None, "wal_checkpoint", "TRUNCATE").expect("checkpoint");
    }
    std::fs::copy(&replica, profile.path().join("replica.sqlite")).expect("copy the replica");
    std::fs::write(profile.path().join("settings.toml"), "language = \"en\"\nuser_login = \"operator\"\n")
        .expect("settings");
    let numbers = numbers(&replica, CALLS + WARM_UP + SPACED_CALLS + RECORDED);
    let (numbers, to_record) = numbers.split_at(CALLS + WARM_UP + SPACED_CALLS);
    let recording_baseline = record_missed_calls(&replica, to_record, false);
    let recording = record_missed_calls(&replica, to_record, true);

    let mut phone = Command::new(&exe)
        .args(["--profile"])
        .arg(profile.path())
        .args(["phone", "--listen", "127.0.0.1:0", "--timings"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start clinicdesk phone");
    let stdout = phone.stdout.take().expect("stdout");
    let (lines_tx, lines) = mpsc::channel::<(Instant, serde_json::Value)>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let at = Instant::now();
            if let Ok(v) = serde_json::from_str(&line)
                && lines_tx.send((at, v)).is_err()
            {
                return;
            }
        }
    });
    let started = next(&lines, "started", Duration::from_secs(30));
    let target: SocketAddr = started["listen"].as_str().and_then(|a| a.parse().ok()).expect("listen address");

    let socket = UdpSocket::bind("127.0.0.1:0").expect("caller socket");
    socket.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
    let me = socket.local_addr().expect("address");
    let mut seen = Vec::new();
    let mut spaced = Vec::new();
    let mut own = Vec::new();
    for (i, number) in numbers.iter().enumerate() {
        let call = Call { n: i, number, me, target };
        let back_to_back = i < CALLS + WARM_UP;
        if !back_to_back {
            // The second pass: a quiet line, as a small clinic has it.
            std::thread::sleep(Duration::from_millis(600));
        }
        let sent = Instant::now();
        socket.send_to(call.invite().as_bytes(), target).expect("send INVITE");
        let (at, event) = next_at(&lines, "incoming", Duration::from_secs(10));
        assert_eq!(event["call_id"], call.call_id(), "the incoming event of this call");
        assert!(event["card"]["people"].as_array().is_some_and(|p| !p.is_empty()), "{number}: a known caller");
        if !back_to_back {
            spaced.push(at.duration_since(sent));
        } else if i >= WARM_UP {
            seen.push(at.duration_since(sent));
            own.push((
                event["timing"]["card_us"].as_u64().unwrap_or(0),
                event["timing"]["handled_us"].as_u64().unwrap_or(0),
            ));
        }
        // Cancel it, and acknowledge the 487 so nothing is retransmitted.
        socket.send_to(call.cancel().as_bytes(), target).expect("send CANCEL");
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 4096];
        loop {
            assert!(Instant::now() < deadline, "no 487 for call {i}");
            let Ok((n, _)) = socket.recv_from(&mut buf) else { continue };
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.starts_with("SIP/2.0 487") {
                let tag = to_tag(&text).expect("487 with a To tag");
                socket.send_to(call.ack(&tag).as_bytes(), target).expect("send ACK");
                break;
            }
        }
        next(&lines, "ended", Duration::from_secs(10));
    }
    let _ = phone.stdin.take();
    let summary = next(&lines, "timings", Duration::from_secs(30));
    let _ = phone.wait();

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (what, mut v) in [("back to back", seen), ("0.6 s apart", spaced)] {
        v.sort();
        let pick = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
        println!(
            "INVITE sent -> incoming event with the card, {} calls {what}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            v.len(),
            ms(pick(0.5)),
            ms(pick(0.99)),
            ms(pick(1.0))
        );
    }
    println!("{recording_baseline}");
    println!("{recording}");
    let mut card: Vec<u64> = own.iter().map(|t| t.0).collect();
    card.sort_unstable();
    let us = |v: &[u64], q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    println!(
        "inside the phone: card lookup p50 {:.2} ms, p99 {:.2} ms; its own summary over all {} calls: {}",
        us(&card, 0.5),
        us(&card, 0.99),
        CALLS + WARM_UP,
        summary
    );
}

/// Records `numbers.len()` missed calls (each with its inquiry and call-back
/// task) into a copy of the replica through the library, one transaction
/// each as the phone does, and says how long one took.
///
/// `background`: checkpoints on their own thread (`Replica::checkpoint_in_background`,
/// as the phone and the window run); otherwise SQLite's automatic checkpoint
/// inside COMMIT (the baseline, measured in the same run).
fn record_missed_calls(replica: &Path, numbers: &[String], background: bool) -> String {
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("replica.sqlite");
    std::fs::copy(replica, &copy).expect("copy the replica");
    let mut db = clinicdesk::store::Replica::open(&copy).expect("open the copy");
    let _checkpointer = background.then(|| db.checkpoint_in_background().expect("start the checkpoint thread"));
    let mut took = Vec::new();
    for (i, number) in numbers.iter().enumerate() {
        let now = clinicdesk::crm::now_millis();
        let call = clinicdesk::store::calls::FinishedCall {
            id: None,
            direction: clinicdesk::crm::CallDirection::In,
            peer: number.clone(),
            did: None,
            person_id: None,
            operator_id: None,
            started_at: now - 20_000,
            answered_at: None,
            ended_at: now,
            result: clinicdesk::crm::CallResult::Missed,
            sip_call_id: Some(format!("recorded-{i}")),
        };
        let start = Instant::now();
        let recorded = db.record_call(&call).expect("record the call");
        took.push(start.elapsed());
        assert!(recorded.missed_inquiry_id.is_some(), "a missed call gets its inquiry");
    }
    took.sort();
    let pick = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    format!(
        "recording one missed call (call, inquiry, call-back task, outbox; one transaction), {} calls, {}: \
         p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        took.len(),
        if background { "checkpoints on their own thread" } else { "checkpoints inside COMMIT (baseline)" },
        pick(0.5),
        pick(0.99),
        pick(1.0)
    )
}

struct Call<'a> {
    n: usize,
    number: &'a str,
    me: SocketAddr,
    target: SocketAddr,
}

impl Call<'_> {
    fn call_id(&self) -> String {
        format!("latency-{}@127.0.0.1", self.n)
    }

    fn head(&self, method: &str, to_tag: Option<&str>) -> String {
        let tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "{method} sip:+74951234010@{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {me};branch=z9hG4bK-latency-{n}\r\n\
             Max-Forwards: 70\r\n\
             From: \"Caller\" <sip:{number}@{me}>;tag=caller-{n}\r\n\
             To: <sip:+74951234010@{target}>{tag}\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 {method}\r\n",
            target = self.target,
            me = self.me,
            n = self.n,
            number = self.number,
            call_id = self.call_id(),
        )
    }

    fn invite(&self) -> String {
        let sdp = format!(
            "v=0\r\no=caller {n} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
             a=fmtp:101 0-15\r\na=ptime:20\r\n",
            n = self.n,
            port = 40000 + (self.n % 1000) * 2
        );
        format!(
            "{}Contact: <sip:caller@{}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            self.head("INVITE", None),
            self.me,
            sdp.len()
        )
    }

    fn cancel(&self) -> String {
        format!("{}Content-Length: 0\r\n\r\n", self.head("CANCEL", None))
    }

    fn ack(&self, to_tag: &str) -> String {
        format!("{}Content-Length: 0\r\n\r\n", self.head("ACK", Some(to_tag)))
    }
}

fn to_tag(response: &str) -> Option<String> {
    let to = response.lines().find(|l| l.to_ascii_lowercase().starts_with("to:") || l.starts_with("t:"))?;
    let tag = to.split(";tag=").nth(1)?;
    Some(tag.split([';', '>', ' ', '\r']).next()?.to_owned())
}

fn next(lines: &mpsc::Receiver<(Instant, serde_json::Value)>, event: &str, timeout: Duration) -> serde_json::Value {
    next_at(lines, event, timeout).1
}

fn next_at(
    lines: &mpsc::Receiver<(Instant, serde_json::Value)>,
    event: &str,
    timeout: Duration,
) -> (Instant, serde_json::Value) {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok((at, v)) if v["event"] == event => return (at, v),
            Ok(_) => {}
            Err(_) => panic!("clinicdesk phone printed no {event} event within {timeout:?}"),
        }
    }
}

/// Different patients' numbers, each owned by somebody.
fn numbers(replica: &Path, n: usize) -> Vec<String> {
    let conn = rusqlite::Connection::open(replica).expect("open the replica");
    let mut stmt = conn
        .prepare("SELECT DISTINCT phone_e164 FROM person_phones WHERE rowid % 97 = 0 AND deleted_at IS NULL LIMIT ?")
        .expect("query");
    stmt.query_map([n as i64], |r| r.get(0)).expect("numbers").map(|r| r.expect("number")).collect()
}

fn big_replica(exe: &Path) -> PathBuf {
    if let Some(path) = std::env::var_os("CLINICDESK_REPLICA") {
        return PathBuf::from(path);
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    let path = dir.join("replica-200000-1000000.sqlite");
    if !path.exists() {
        std::fs::create_dir_all(&dir).expect("bench-data dir");
        eprintln!("generating the 200k/1M replica (once) …");
        let status = Command::new(exe)
            // The same clinic benches/store.rs generates (seed and moment).
            .args(["demo-data", "--patients", "200000", "--calls", "1000000", "--seed", "42"])
            .args(["--now", "2026-11-18T07:46:40Z", "--out"])
            .arg(&path)
            .status()
            .expect("run clinicdesk demo-data");
        assert!(status.success(), "demo-data failed");
    }
    path
}
