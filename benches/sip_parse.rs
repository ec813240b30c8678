//! SIP message parsing on a typical 940-byte INVITE with SDP (an Asterisk
//! style call through one proxy), reported as messages per second.
//!
//! `parse` is `Message::parse` (framing, start line, every header line, the
//! syntax of Via/From/To/Contact/CSeq/Call-ID/Max-Forwards/Content-Length/
//! Route/Record-Route, CSeq against the method, the body). `parse + fields`
//! also reads what a transaction and a dialog need. `datagram` is the full
//! path of an incoming UDP packet (`validate_datagram`: parse, the
//! mandatory-field checks and stamping received/rport). For reference,
//! measured on this machine class with the crates' own parsers: rsip 0.4
//! ~255k msgs/s, ezk-sip-types ~208k msgs/s, rsipstack ~672k msgs/s
//! (ISSUE 3).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use clinicdesk::sip::message::Message;
use clinicdesk::sip::validate::{Inbound, validate_datagram};

const INVITE: &str = "INVITE sip:100@192.0.2.10:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 198.51.100.5:5060;branch=z9hG4bK3f2a7c01;rport\r\n\
Via: SIP/2.0/UDP 203.0.113.7:5060;received=203.0.113.7;branch=z9hG4bK77ab12c9;rport=5060\r\n\
Record-Route: <sip:198.51.100.5;lr;ftag=as4b1d8c11>\r\n\
Max-Forwards: 69\r\n\
From: \"Ivanova Maria\" <sip:+79161234567@pbx.clinic.example>;tag=as4b1d8c11\r\n\
To: <sip:100@pbx.clinic.example>\r\n\
Contact: <sip:+79161234567@203.0.113.7:5060>\r\n\
Call-ID: 5d7e3a1c2b9f4e6a8c0d1e2f3a4b5c6d@203.0.113.7:5060\r\n\
CSeq: 102 INVITE\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, SUBSCRIBE, NOTIFY, INFO\r\n\
Supported: replaces, timer\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 292\r\n\
\r\n\
v=0\r\n\
o=root 1732 1732 IN IP4 203.0.113.7\r\n\
s=Asterisk\r\n\
c=IN IP4 203.0.113.7\r\n\
t=0 0\r\n\
m=audio 14562 RTP/AVP 8 0 111 101\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 useinbandfec=1\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-16\r\n\
a=ptime:20\r\n\
a=sendrecv\r\n";

fn bench(c: &mut Criterion) {
    let data = INVITE.as_bytes();
    // The benchmark is about a realistic message: keep it honest.
    assert!((900..=1000).contains(&data.len()), "the INVITE is {} bytes", data.len());
    assert!(matches!(Message::parse(data), Ok(Message::Request(ref r)) if r.body.len() == 292));
    let source = "203.0.113.7:5060".parse().expect("address");

    let mut group = c.benchmark_group("sip_parse_invite_940B");
    group.throughput(Throughput::Elements(1));
    group.bench_function("parse", |b| b.iter(|| Message::parse(black_box(data))));
    group.bench_function("parse + fields", |b| {
        b.iter(|| {
            let Ok(Message::Request(r)) = Message::parse(black_box(data)) else { unreachable!() };
            let h = &r.headers;
            black_box(&(
                h.top_via().ok(),
                h.from().ok(),
                h.to().ok(),
                h.call_id().ok(),
                h.cseq().ok(),
                h.contacts().ok(),
            ));
        })
    });
    group.bench_function("datagram", |b| {
        b.iter(|| match validate_datagram(black_box(data), source) {
            Inbound::Request(r) => black_box(r),
            other => unreachable!("{other:?}"),
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
