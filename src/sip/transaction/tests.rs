//! The four machines on a simulated clock, and the layer's matching.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::*;
use crate::sip::headers::HeaderName;
use crate::sip::message::{Message, Method};
use crate::sip::transport::{Peer, Transport, TransportLayer};

fn t0() -> Instant {
    Instant::now()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn request(method: &str, branch: &str) -> Request {
    let text = format!(
        "{method} sip:100@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch={branch}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:200@192.0.2.9>;tag=f1\r\nTo: <sip:100@192.0.2.1>\r\nCall-ID: call-1\r\n\
         CSeq: 5 {method}\r\nRoute: <sip:proxy.example.com;lr>\r\nContent-Length: 0\r\n\r\n"
    );
    match Message::parse(text.as_bytes()).unwrap() {
        Message::Request(r) => r,
        Message::Response(_) => unreachable!(),
    }
}

fn response(req: &Request, status: u16) -> Response {
    let mut r = Response::for_request(req, status);
    if status > 100 {
        r.set_to_tag("t1");
    }
    r
}

fn sends(actions: &[Action]) -> usize {
    actions.iter().filter(|a| matches!(a, Action::Send(_))).count()
}

/// Steps the clock to each deadline in turn until `until`, collecting actions with their times.
fn run_client(tx: &mut ClientTransaction, until: Instant) -> Vec<(Instant, Action)> {
    let mut out = Vec::new();
    while let Some(d) = tx.next_deadline().filter(|d| *d <= until) {
        out.extend(tx.poll(d).into_iter().map(|a| (d, a)));
    }
    out
}

fn run_server(tx: &mut ServerTransaction, until: Instant) -> Vec<(Instant, Action)> {
    let mut out = Vec::new();
    while let Some(d) = tx.next_deadline().filter(|d| *d <= until) {
        out.extend(tx.poll(d).into_iter().map(|a| (d, a)));
    }
    out
}

fn send_times(start: Instant, log: &[(Instant, Action)]) -> Vec<u128> {
    log.iter().filter(|(_, a)| matches!(a, Action::Send(_))).map(|(t, _)| (*t - start).as_millis()).collect()
}

#[test]
fn invite_client_timer_a_doubles_and_timer_b_times_out() {
    let start = t0();
    let (mut tx, first) = ClientTransaction::new(request("INVITE", "z9hG4bKa"), false, Timers::default(), start);
    assert_eq!(sends(&first), 1);
    let log = run_client(&mut tx, start + Duration::from_secs(40));
    assert_eq!(send_times(start, &log), [500, 1500, 3500, 7500, 15500, 31500]);
    let (at, last) = log.last().unwrap();
    assert_eq!((*at - start, last), (Duration::from_secs(32), &Action::Terminated));
    assert!(log.iter().any(|(t, a)| *a == Action::Tu(TuEvent::Timeout) && *t - start == Duration::from_secs(32)));
    assert_eq!(tx.state(), ClientState::Terminated);
}

#[test]
fn invite_client_over_tcp_does_not_retransmit() {
    let start = t0();
    let (mut tx, _) = ClientTransaction::new(request("INVITE", "z9hG4bKa"), true, Timers::default(), start);
    let log = run_client(&mut tx, start + Duration::from_secs(40));
    assert_eq!(send_times(start, &log), Vec::<u128>::new());
    assert!(log.iter().any(|(_, a)| *a == Action::Tu(TuEvent::Timeout)));
}

#[test]
fn invite_client_acks_non_2xx_and_timer_d_absorbs_retransmissions() {
    let start = t0();
    let inv = request("INVITE", "z9hG4bKa");
    let (mut tx, _) = ClientTransaction::new(inv.clone(), false, Timers::default(), start);
    let a = tx.on_response(response(&inv, 180), start + ms(100));
    assert!(matches!(&a[..], [Action::Tu(TuEvent::Response(r))] if r.status == 180));
    assert_eq!(tx.state(), ClientState::Proceeding);
    // Proceeding: no Timer A, no Timer B.
    assert!(run_client(&mut tx, start + Duration::from_secs(60)).is_empty());
    let a = tx.on_response(response(&inv, 486), start + Duration::from_secs(61));
    assert_eq!(tx.state(), ClientState::Completed);
    let Action::Send(ack) = &a[0] else { panic!("no ACK: {a:?}") };
    let Ok(Message::Request(ack)) = Message::parse(ack) else { panic!("ACK does not parse") };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(ack.headers.cseq().unwrap().to_string(), "5 ACK");
    assert_eq!(ack.headers.top_via().unwrap().branch(), Some("z9hG4bKa"));
    assert_eq!(ack.headers.to().unwrap().tag(), Some("t1"));
    assert_eq!(ack.headers.routes().unwrap().len(), 1);
    assert_eq!(ack.uri, inv.uri);
    // A retransmitted 486 gets the ACK again and does not reach the TU.
    let again = tx.on_response(response(&inv, 486), start + Duration::from_secs(62));
    assert_eq!(again, vec![a[0].clone()]);
    let log = run_client(&mut tx, start + Duration::from_secs(200));
    assert_eq!(log, vec![(start + Duration::from_secs(61 + 32), Action::Terminated)]);
}

#[test]
fn invite_client_accepted_state_passes_2xx_retransmissions_until_timer_m() {
    let start = t0();
    let inv = request("INVITE", "z9hG4bKa");
    let (mut tx, _) = ClientTransaction::new(inv.clone(), false, Timers::default(), start);
    let ok = response(&inv, 200);
    let a = tx.on_response(ok.clone(), start + ms(700));
    assert_eq!(a, vec![Action::Tu(TuEvent::Response(ok.clone()))]);
    assert_eq!(tx.state(), ClientState::Accepted);
    // The 2xx retransmission reaches the TU (it resends its own ACK); no more INVITE retransmissions.
    assert_eq!(tx.on_response(ok.clone(), start + ms(1200)), vec![Action::Tu(TuEvent::Response(ok))]);
    let log = run_client(&mut tx, start + Duration::from_secs(100));
    assert_eq!(log, vec![(start + ms(700) + Duration::from_secs(32), Action::Terminated)]);
}

#[test]
fn non_invite_client_timer_e_caps_at_t2_and_timer_f_times_out() {
    let start = t0();
    let (mut tx, _) = ClientTransaction::new(request("OPTIONS", "z9hG4bKo"), false, Timers::default(), start);
    let log = run_client(&mut tx, start + Duration::from_secs(40));
    assert_eq!(send_times(start, &log), [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    assert!(log.iter().any(|(t, a)| *a == Action::Tu(TuEvent::Timeout) && *t - start == Duration::from_secs(32)));
}

#[test]
fn non_invite_client_proceeding_retransmits_every_t2_then_timer_k() {
    let start = t0();
    let req = request("REGISTER", "z9hG4bKr");
    let (mut tx, _) = ClientTransaction::new(req.clone(), false, Timers::default(), start);
    tx.on_response(response(&req, 100), start + ms(200));
    assert_eq!(tx.state(), ClientState::Proceeding);
    let log = run_client(&mut tx, start + ms(9000));
    assert_eq!(send_times(start, &log), [500, 4500, 8500]);
    let a = tx.on_response(response(&req, 401), start + ms(9000));
    assert!(matches!(&a[..], [Action::Tu(TuEvent::Response(r))] if r.status == 401));
    assert_eq!(tx.state(), ClientState::Completed);
    assert!(tx.on_response(response(&req, 401), start + ms(9100)).is_empty(), "absorbed in Completed");
    let log = run_client(&mut tx, start + Duration::from_secs(60));
    assert_eq!(log, vec![(start + ms(9000) + Duration::from_secs(5), Action::Terminated)]);
    // Over TCP, Timer K is zero: terminated with the final response.
    let (mut tcp, _) = ClientTransaction::new(req.clone(), true, Timers::default(), start);
    let a = tcp.on_response(response(&req, 200), start + ms(10));
    assert_eq!(a.last(), Some(&Action::Terminated));
}

#[test]
fn configurable_timers_scale_everything() {
    let start = t0();
    let fast = Timers { t1: ms(10), t2: ms(40), t4: ms(50), d: ms(320) };
    let (mut tx, _) = ClientTransaction::new(request("OPTIONS", "z9hG4bKo"), false, fast, start);
    let log = run_client(&mut tx, start + Duration::from_secs(1));
    assert_eq!(
        send_times(start, &log),
        [10, 30, 70, 110, 150, 190, 230, 270, 310, 350, 390, 430, 470, 510, 550, 590, 630]
    );
    assert_eq!(log.last().map(|(t, a)| (*t - start, a.clone())), Some((ms(640), Action::Terminated)));
}

#[test]
fn invite_server_sends_trying_resends_on_retransmission_and_timer_g_h() {
    let start = t0();
    let inv = request("INVITE", "z9hG4bKs");
    let (mut tx, first) = ServerTransaction::new(inv.clone(), false, Timers::default(), start);
    let Action::Send(trying) = &first[0] else { panic!("no 100") };
    assert!(trying.starts_with(b"SIP/2.0 100 Trying\r\n"));
    // A retransmitted INVITE gets the last provisional again.
    assert_eq!(tx.on_request(inv.clone(), start + ms(500)), vec![Action::Send(trying.clone())]);
    tx.respond(response(&inv, 180), start + ms(600));
    let a = tx.on_request(inv.clone(), start + ms(1000));
    assert!(matches!(&a[..], [Action::Send(b)] if b.starts_with(b"SIP/2.0 180")));
    let busy = tx.respond(response(&inv, 486), start + ms(2000));
    assert_eq!(sends(&busy), 1);
    assert_eq!(tx.state(), ServerState::Completed);
    // Timer G: 0.5, 1, 2, 4, 4, ... after the response; Timer H at 64*T1.
    let log = run_server(&mut tx, start + Duration::from_secs(60));
    let times = send_times(start + ms(2000), &log);
    assert_eq!(times, [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    assert!(log.iter().any(|(t, a)| *a == Action::Tu(TuEvent::Timeout) && *t - start == ms(34000)));
    assert_eq!(tx.state(), ServerState::Terminated);
}

#[test]
fn invite_server_ack_confirms_then_timer_i() {
    let start = t0();
    let inv = request("INVITE", "z9hG4bKs");
    let (mut tx, _) = ServerTransaction::new(inv.clone(), false, Timers::default(), start);
    let resp = response(&inv, 603);
    tx.respond(resp.clone(), start);
    let ack = build_ack(&inv, &resp);
    assert!(tx.on_request(ack.clone(), start + ms(100)).is_empty());
    assert_eq!(tx.state(), ServerState::Confirmed);
    assert!(tx.on_request(ack, start + ms(200)).is_empty(), "further ACKs absorbed");
    let log = run_server(&mut tx, start + Duration::from_secs(60));
    assert_eq!(log, vec![(start + ms(5100), Action::Terminated)]);
}

#[test]
fn invite_server_accepted_retransmits_2xx_until_ack_then_timer_l() {
    let start = t0();
    let inv = request("INVITE", "z9hG4bKs");
    let (mut tx, _) = ServerTransaction::new(inv.clone(), false, Timers::default(), start);
    tx.respond(response(&inv, 200), start);
    assert_eq!(tx.state(), ServerState::Accepted);
    assert!(tx.on_request(inv.clone(), start + ms(100)).is_empty(), "INVITE retransmissions absorbed");
    let log = run_server(&mut tx, start + ms(3600));
    assert_eq!(send_times(start, &log), [500, 1500, 3500]);
    let mut ack = build_ack(&inv, &response(&inv, 200));
    ack.headers.set_top_via(&crate::sip::headers::Via::parse("SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKnew").unwrap());
    let a = tx.on_request(ack.clone(), start + ms(3600));
    assert_eq!(a, vec![Action::Tu(TuEvent::Ack(ack))]);
    let log = run_server(&mut tx, start + Duration::from_secs(60));
    assert_eq!(log, vec![(start + Duration::from_secs(32), Action::Terminated)], "no retransmission after the ACK");
    // Without an ACK, Timer L tells the TU.
    let (mut tx, _) = ServerTransaction::new(inv.clone(), false, Timers::default(), start);
    tx.respond(response(&inv, 200), start);
    let log = run_server(&mut tx, start + Duration::from_secs(60));
    assert_eq!(send_times(start, &log).len(), 10);
    assert!(log.iter().any(|(t, a)| *a == Action::Tu(TuEvent::AckTimeout) && *t - start == Duration::from_secs(32)));
}

#[test]
fn non_invite_server_absorbs_then_resends_then_timer_j() {
    let start = t0();
    let req = request("OPTIONS", "z9hG4bKn");
    let (mut tx, first) = ServerTransaction::new(req.clone(), false, Timers::default(), start);
    assert!(first.is_empty(), "no automatic 100 for non-INVITE");
    assert!(tx.on_request(req.clone(), start + ms(500)).is_empty(), "Trying absorbs");
    let ok = tx.respond(response(&req, 200), start + ms(600));
    assert_eq!(sends(&ok), 1);
    assert_eq!(tx.on_request(req.clone(), start + ms(700)), vec![ok[0].clone()]);
    assert!(tx.respond(response(&req, 500), start + ms(800)).is_empty(), "only one final response");
    let log = run_server(&mut tx, start + Duration::from_secs(60));
    assert_eq!(log, vec![(start + ms(600) + Duration::from_secs(32), Action::Terminated)]);
    let (mut tcp, _) = ServerTransaction::new(req.clone(), true, Timers::default(), start);
    assert_eq!(tcp.respond(response(&req, 200), start).last(), Some(&Action::Terminated), "Timer J is 0 on TCP");
}

fn udp(addr: &str) -> Peer {
    Peer::new(Transport::Udp, addr.parse().unwrap())
}

fn events(out: &[Output]) -> Vec<&TuEvent> {
    out.iter().filter_map(|o| if let Output::Event { event, .. } = o { Some(event) } else { None }).collect()
}

#[test]
fn layer_matches_responses_by_branch_and_method() {
    let start = t0();
    let mut layer = TransactionLayer::new(Timers::default());
    let inv = request("INVITE", "z9hG4bKc1");
    let (id, out) = layer.send_request(inv.clone(), udp("192.0.2.1:5060"), start);
    assert!(matches!(&out[..], [Output::Send { .. }]));
    let ringing = response(&inv, 180).to_bytes();
    let out = layer.on_message(&ringing, udp("192.0.2.1:5060"), start + ms(10));
    assert!(matches!(&out[..], [Output::Event { id: i, event: TuEvent::Response(r) }] if *i == id && r.status == 180));
    // Same branch, other method (a CANCEL's 200): not this transaction.
    let mut cancel_ok = response(&inv, 200);
    cancel_ok.headers.set(HeaderName::CSeq, "5 CANCEL");
    let out = layer.on_message(&cancel_ok.to_bytes(), udp("192.0.2.1:5060"), start + ms(20));
    assert!(matches!(&out[..], [Output::StrayResponse { .. }]));
    assert_eq!(layer.client_state(id), Some(ClientState::Proceeding));
}

#[test]
fn layer_creates_server_transactions_and_absorbs_retransmissions() {
    let start = t0();
    let mut layer = TransactionLayer::new(Timers::default());
    let inv = request("INVITE", "z9hG4bKs1");
    let src = udp("192.0.2.9:5060");
    let out = layer.on_message(&inv.to_bytes(), src.clone(), start);
    let Output::Request { id, request: got, .. } = &out[0] else { panic!("{out:?}") };
    let id = *id;
    assert!(got.headers.top_via().unwrap().received().is_none(), "sent-by matches the source: no received");
    assert!(matches!(&out[1], Output::Send { bytes, .. } if bytes.starts_with(b"SIP/2.0 100")));
    // The retransmission only brings the 100 again.
    let out = layer.on_message(&inv.to_bytes(), src.clone(), start + ms(500));
    assert!(matches!(&out[..], [Output::Send { bytes, .. }] if bytes.starts_with(b"SIP/2.0 100")));
    // A CANCEL is its own transaction, pointing at the INVITE.
    let cancel = request("CANCEL", "z9hG4bKs1");
    let out = layer.on_message(&cancel.to_bytes(), src.clone(), start + ms(600));
    assert!(matches!(&out[0], Output::Request { cancels: Some(c), .. } if *c == id));
    // The 2xx, then the ACK with a new branch finds the INVITE by dialog.
    let out = layer.respond(id, response(&inv, 200), start + ms(700));
    assert!(matches!(&out[..], [Output::Send { .. }]));
    let mut ack = build_ack(&inv, &response(&inv, 200));
    ack.headers.set_top_via(&crate::sip::headers::Via::parse("SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKack").unwrap());
    let out = layer.on_message(&ack.to_bytes(), src, start + ms(800));
    assert!(matches!(&out[..], [Output::Ack { invite: Some(i), .. }] if *i == id), "{out:?}");
    // No more 2xx retransmissions: only Timer L ends it.
    let out = layer.poll(start + Duration::from_secs(10));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(layer.server_state(id), Some(ServerState::Accepted));
}

#[test]
fn layer_reports_a_2xx_ack_that_reuses_the_invite_branch_once() {
    let start = t0();
    let mut layer = TransactionLayer::new(Timers::default());
    let inv = request("INVITE", "z9hG4bKsame");
    let src = udp("192.0.2.9:5060");
    let out = layer.on_message(&inv.to_bytes(), src.clone(), start);
    let Output::Request { id, .. } = &out[0] else { panic!("{out:?}") };
    let id = *id;
    layer.respond(id, response(&inv, 200), start + ms(10));
    let ack = build_ack(&inv, &response(&inv, 200));
    let out = layer.on_message(&ack.to_bytes(), src.clone(), start + ms(20));
    assert!(matches!(&out[..], [Output::Ack { invite: Some(i), .. }] if *i == id), "{out:?}");
    assert!(layer.on_message(&ack.to_bytes(), src, start + ms(30)).is_empty(), "the repeated ACK is absorbed");
    // Sending an ACK never creates a client transaction.
    let (_, out) = layer.send_request(ack, udp("192.0.2.9:5060"), start);
    assert!(matches!(&out[..], [Output::Send { .. }]));
    assert_eq!(layer.len(), (0, 1));
}

#[test]
fn layer_falls_back_to_rfc2543_matching() {
    let start = t0();
    let mut layer = TransactionLayer::new(Timers::default());
    let src = udp("192.0.2.9:5060");
    // RFC 4475 §3.2.1: "z9hG4bK" alone is no RFC 3261 identifier.
    for branch in ["z9hG4bK", "1234-old-style"] {
        let req = request("OPTIONS", branch);
        let out = layer.on_message(&req.to_bytes(), src.clone(), start);
        let Output::Request { id, .. } = &out[0] else { panic!("{out:?}") };
        let id = *id;
        let out = layer.on_message(&req.to_bytes(), src.clone(), start + ms(100));
        assert!(out.is_empty(), "the retransmission matches by RFC 2543 rules: {out:?}");
        let mut other = req.clone();
        other.headers.set(HeaderName::CSeq, "6 OPTIONS");
        let out = layer.on_message(&other.to_bytes(), src.clone(), start + ms(100));
        assert!(matches!(&out[0], Output::Request { id: other_id, .. } if *other_id != id));
    }
    // RFC 4475 §3.4.1: an RFC 2543 INVITE (no branch); its ACK matches it.
    let inv = Message::parse(
        b"INVITE sip:UserB@example.com SIP/2.0\r\nVia: SIP/2.0/UDP iftgw.example.com\r\n\
From: <sip:+13035551111@ift.client.example.net;user=phone>\r\nTo: sip:+16505552222@ss1.example.net;user=phone\r\n\
Call-ID: inv2543.1717@ift.client.example.com\r\nCSeq: 56 INVITE\r\nContent-Length: 0\r\n\r\n",
    )
    .unwrap();
    let Message::Request(inv) = inv else { panic!("request") };
    let out = layer.on_message(&inv.to_bytes(), src.clone(), start);
    let Output::Request { id, request: got, .. } = &out[0] else { panic!("{out:?}") };
    let (id, stamped) = (*id, got.clone());
    assert_eq!(stamped.headers.top_via().unwrap().received(), Some("192.0.2.9".parse().unwrap()));
    let resp = response(&stamped, 404);
    layer.respond(id, resp.clone(), start + ms(10));
    let ack = build_ack(&inv, &resp);
    let out = layer.on_message(&ack.to_bytes(), src, start + ms(20));
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(layer.server_state(id), Some(ServerState::Confirmed));
}

async fn next_output(rx: &mut mpsc::UnboundedReceiver<Output>) -> Output {
    tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("no output in 10 s").expect("layer stopped")
}

#[tokio::test]
async fn driver_runs_transactions_over_udp() {
    use crate::sip::transport::TransportOptions;
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let opts = TransportOptions { udp: Some(any), ..Default::default() };
    let (ta, ra) = TransportLayer::start(opts.clone()).await.unwrap();
    let (tb, rb) = TransportLayer::start(opts).await.unwrap();
    let fast = Timers { t1: ms(20), t2: ms(80), t4: ms(100), d: ms(640) };
    let (ha, mut ea) = run(ta.clone(), ra, fast);
    let (hb, mut eb) = run(tb.clone(), rb, fast);
    let a = ta.udp_local_addr().unwrap();
    let b = tb.udp_local_addr().unwrap();
    let text = format!(
        "OPTIONS sip:100@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};rport;branch={}\r\nMax-Forwards: 70\r\n\
         From: <sip:200@{a}>;tag=f\r\nTo: <sip:100@{b}>\r\nCall-ID: {}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
        crate::sip::new_branch(),
        crate::sip::new_call_id("test"),
    );
    let Ok(Message::Request(req)) = Message::parse(text.as_bytes()) else { panic!("request") };
    let id = ha.send_request(req, Peer::new(Transport::Udp, b)).await.unwrap();
    let Output::Request { id: sid, request, peer, .. } = next_output(&mut eb).await else { panic!("no request") };
    assert_eq!(peer.addr, a);
    assert_eq!(request.headers.top_via().unwrap().rport(), Some(Some(a.port())));
    let mut ok = Response::for_request(&request, 200);
    ok.set_to_tag(&crate::sip::new_tag());
    hb.respond(sid, ok).await.unwrap();
    match next_output(&mut ea).await {
        Output::Event { id: got, event: TuEvent::Response(r) } => assert_eq!((got, r.status), (id, 200)),
        other => panic!("{other:?}"),
    }
    // Nobody listening: Timer F (64 x 20 ms) ends the transaction with a timeout.
    drop(hb);
    drop(eb);
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let Ok(Message::Request(mut lost)) = Message::parse(text.as_bytes()) else { panic!("request") };
    lost.headers.set_top_via(
        &crate::sip::headers::Via::parse(&format!("SIP/2.0/UDP {a};branch={}", crate::sip::new_branch())).unwrap(),
    );
    let id = ha.send_request(lost, Peer::new(Transport::Udp, silent.local_addr().unwrap())).await.unwrap();
    assert_eq!(next_output(&mut ea).await, Output::Event { id, event: TuEvent::Timeout });
}

#[test]
fn layer_answers_broken_requests_statelessly_and_times_out_clients() {
    let start = t0();
    let mut layer = TransactionLayer::new(Timers::default());
    let out = layer.on_message(
        b"OPTIONS sip:a@b SIP/7.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5070\r\nl: 0\r\n\r\n",
        udp("192.0.2.9:5070"),
        start,
    );
    assert!(
        matches!(&out[..], [Output::Send { peer, bytes }] if bytes.starts_with(b"SIP/2.0 505") && peer.addr.port() == 5070)
    );
    let (id, _) = layer.send_request(request("OPTIONS", "z9hG4bKt"), udp("192.0.2.1:5060"), start);
    let mut all = Vec::new();
    while let Some(d) = layer.next_deadline() {
        all.extend(layer.poll(d));
    }
    assert_eq!(events(&all), vec![&TuEvent::Timeout]);
    assert_eq!(all.iter().filter(|o| matches!(o, Output::Send { .. })).count(), 10);
    assert_eq!(layer.client_state(id), None);
    assert_eq!(layer.len(), (0, 0));
}
