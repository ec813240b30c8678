//! Registration details against a registrar written here: refresh, keep-alive, recovery, NAT.

use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;

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
