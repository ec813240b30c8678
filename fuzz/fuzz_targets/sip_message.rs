//! One SIP datagram from the network, and what the user agent does next with it.
//!
//! Checks: no panic; a parsed message serialises to bytes that parse back to
//! the same message (Content-Length rewritten last); a request that fails to parse but can be answered gets a
//! 4xx/5xx (400 naming the problem, or 505) which itself parses, except for
//! the Via/From/To/Call-ID/CSeq lines it must copy from the broken request
//! (RFC 3261 §8.2.6.2); what `uas_precheck` and a 200 to a good request send
//! back parses in full; every typed
//! header accessor the user agent calls survives; a 401/407 goes through the
//! digest client.

#![no_main]

use std::net::SocketAddr;

use clinicdesk::sip::auth::DigestClient;
use clinicdesk::sip::validate::{Inbound, UasPolicy, response_for_bad, uas_precheck, validate_datagram};
use clinicdesk::sip::{HeaderName, Headers, Message, Method, Problem, Request, Response, Uri};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match Message::parse(data) {
        Ok(message) => {
            let bytes = message.to_bytes();
            match Message::parse(&bytes) {
                Ok(again) => assert_eq!(
                    without_length(again),
                    without_length(message.clone()),
                    "round trip changed the message:\n{}",
                    String::from_utf8_lossy(&bytes)
                ),
                Err(e) => panic!("our own serialisation does not parse ({e}):\n{}", String::from_utf8_lossy(&bytes)),
            }
            typed_headers(message.headers());
            if let Message::Response(resp) = &message {
                challenge(resp);
            }
        }
        Err(err) => {
            if let Some(resp) = response_for_bad(&err) {
                assert!(matches!(resp.status, 400..=599), "a broken request got {}", resp.status);
                assert_sends(&resp, Copied::Maybe);
            }
        }
    }

    let source: SocketAddr = "192.0.2.7:5060".parse().expect("literal address");
    match validate_datagram(data, source) {
        Inbound::Reply(resp) => {
            assert!(matches!(resp.status, 400..=599), "a malformed datagram got {}", resp.status);
            assert_sends(&resp, Copied::Maybe);
        }
        Inbound::Request(req) => {
            typed_headers(&req.headers);
            if let Some(resp) = uas_precheck(&req, &UasPolicy::default()) {
                assert!(matches!(resp.status, 400..=699), "precheck refused with {}", resp.status);
                assert_sends(&resp, Copied::Valid);
            }
            let mut ok = Response::for_request(&req, 200);
            ok.set_to_tag("fuzz");
            assert_sends(&ok, Copied::Valid);
        }
        Inbound::Response(resp) => typed_headers(&resp.headers),
        Inbound::Drop(_) => {}
    }
});

/// The message without its Content-Length lines: serialising writes one,
/// last, from the body it has.
fn without_length(mut message: Message) -> Message {
    match &mut message {
        Message::Request(r) => r.headers.remove(&HeaderName::ContentLength),
        Message::Response(r) => r.headers.remove(&HeaderName::ContentLength),
    };
    message
}

/// Whether the header fields a response copies from its request were valid.
#[derive(PartialEq)]
enum Copied {
    /// The request parsed: so must the response, in full.
    Valid,
    /// A broken request: the copied fields may be what is broken.
    Maybe,
}

/// A response we would put on the wire must be one a peer (and we) can parse.
fn assert_sends(resp: &Response, copied: Copied) {
    let bytes = resp.to_bytes();
    match Message::parse(&bytes) {
        Ok(_) => {}
        Err(e) if copied == Copied::Maybe && matches!(e.problem, Problem::Header(_)) => {}
        Err(e) => panic!("a response we send does not parse ({e}):\n{}", String::from_utf8_lossy(&bytes)),
    }
}

/// The typed views the user agent reads; errors are fine, panics are not.
fn typed_headers(h: &Headers) {
    let _ = h.vias();
    let _ = h.top_via();
    let _ = h.from();
    let _ = h.to();
    let _ = h.call_id();
    let _ = h.cseq();
    let _ = h.max_forwards();
    let _ = h.expires();
    let _ = h.min_expires();
    let _ = h.content_length();
    let _ = h.content_type();
    let _ = h.contacts();
    let _ = h.routes();
    let _ = h.record_routes();
    let _ = h.p_asserted_identity();
    let _ = h.allow();
    let _ = h.option_tags(&HeaderName::Require).count();
    let _ = h.option_tags(&HeaderName::Supported).count();
    let _ = h.event();
    let _ = h.subscription_state();
    let _ = h.refer_to();
    let _ = h.referred_by();
    let _ = h.replaces();
    let _ = clinicdesk::sip::auth::challenges(h, &HeaderName::WwwAuthenticate);
    let _ = clinicdesk::sip::auth::challenges(h, &HeaderName::ProxyAuthenticate);
}

/// A challenge as the registration and call code answer it.
fn challenge(resp: &Response) {
    if !matches!(resp.status, 401 | 407) {
        return;
    }
    let Ok(uri) = Uri::parse("sip:registrar.example.com") else { return };
    let sent = Request::new(Method::Register, uri.clone());
    let mut client = DigestClient::new("alice", "secret");
    if client.on_challenge(&sent, resp).is_ok() {
        let lines = client.authorize(&Method::Register, &uri, b"");
        assert!(!lines.is_empty(), "an accepted challenge gave no Authorization");
    }
}
