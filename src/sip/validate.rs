//! What happens to every incoming datagram before a transaction sees it, and
//! the checks a UAS makes before it looks at a request's meaning.
//!
//! [`validate_datagram`] turns bytes from the network into exactly one of:
//! a well-formed request (with `received`/`rport` stamped on its top Via, RFC
//! 3261 §18.2.1 and RFC 3581), a well-formed response, a response to send back
//! statelessly (400 naming the problem, 505 for another SIP version), or
//! nothing (keep-alives, broken responses, requests without a Via to answer
//! to, a broken ACK). It never panics and never sends anything itself.
//!
//! [`uas_precheck`] is RFC 3261 §8.2 in order: method (405/501 with Allow),
//! Request-URI scheme (416), Require (420 with Unsupported), body type and
//! encoding (415 with Accept), and an INVITE whose Accept excludes SDP (406,
//! RFC 4475 §3.3.15). Merged-request detection (482) needs dialog state and is
//! the user agent's.
//!
//! ```
//! use clinicdesk::sip::validate::{Inbound, UasPolicy, uas_precheck, validate_datagram};
//! let source = "192.0.2.7:5060".parse().unwrap();
//! let data = b"OPTIONS sip:100@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7;rport;branch=z9hG4bK1\r\n\
//!     From: <sip:a@192.0.2.7>;tag=1\r\nTo: <sip:100@192.0.2.1>\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\
//!     Require: 100rel\r\nContent-Length: 0\r\n\r\n";
//! match validate_datagram(data, source) {
//!     Inbound::Request(req) => {
//!         let reply = uas_precheck(&req, &UasPolicy::default()).unwrap();
//!         assert_eq!(reply.status, 420);
//!     }
//!     other => panic!("{other:?}"),
//! }
//! ```

use std::net::SocketAddr;

use super::headers::{HeaderError, HeaderName, MediaType, Via};
use super::message::{Message, Method, ParseError, Request, Response, sanitize_reason};
use super::syntax::split_list;
use super::uri::Uri;

/// The outcome for one incoming datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A well-formed request: give it to the transaction layer.
    Request(Request),
    /// A well-formed response: give it to the transaction layer.
    Response(Response),
    /// Send this response back to the source, statelessly; nothing else to do.
    Reply(Response),
    /// Nothing to send.
    Drop(Dropped),
}

/// Why a datagram produced nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Dropped {
    #[error("keep-alive")]
    KeepAlive,
    #[error("unanswerable message: {0}")]
    Unanswerable(ParseError),
    #[error("malformed ACK (never answered): {0}")]
    BadAck(String),
    #[error("request without a Via to answer to")]
    NoVia,
    #[error("malformed response: {0}")]
    BadResponse(String),
}

/// Classifies one datagram received from `source` (see the module docs).
pub fn validate_datagram(data: &[u8], source: SocketAddr) -> Inbound {
    if data.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t' | 0)) {
        return Inbound::Drop(Dropped::KeepAlive);
    }
    match Message::parse(data) {
        Err(e) => match response_for_bad(&e) {
            Some(resp) => Inbound::Reply(resp),
            None => Inbound::Drop(Dropped::Unanswerable(e)),
        },
        Ok(Message::Request(mut req)) => {
            stamp_received(&mut req, source);
            validate_request(req)
        }
        Ok(Message::Response(resp)) => match validate_response(&resp) {
            Ok(()) => Inbound::Response(resp),
            Err(e) => Inbound::Drop(Dropped::BadResponse(e.to_string())),
        },
    }
}

/// The response to a request that failed to parse (400 naming the problem,
/// or 505), built from its raw Via, From, To, Call-ID and CSeq; `None` when
/// the message cannot be answered (a response, not SIP, no Via, an ACK).
pub fn response_for_bad(err: &ParseError) -> Option<Response> {
    let essentials = err.essentials.as_ref()?;
    if matches!(err.kind, super::message::Kind::Request(Some(Method::Ack))) {
        return None;
    }
    let mut resp = Response::new(err.problem.status()).with_reason(&err.problem.reason_phrase());
    for via in &essentials.vias {
        resp.headers.push(HeaderName::Via, via.clone());
    }
    let fields = [
        (HeaderName::From, &essentials.from),
        (HeaderName::To, &essentials.to),
        (HeaderName::CallId, &essentials.call_id),
        (HeaderName::CSeq, &essentials.cseq),
    ];
    for (name, value) in fields {
        if let Some(v) = value {
            resp.headers.push(name, v.clone());
        }
    }
    let tag = stateless_tag(&essentials.vias, essentials.call_id.as_deref().unwrap_or(""));
    resp.set_to_tag(&tag);
    Some(resp)
}

/// Checks what every request needs beyond syntax (RFC 3261 §8.1.1, RFC 4475
/// §3.3.1, §3.3.8, §3.3.9): exactly one From, To, Call-ID and CSeq, at most
/// one Max-Forwards, Content-Length and Content-Type. A request that fails
/// is answered 400 (never an ACK).
pub fn validate_request(req: Request) -> Inbound {
    if req.headers.count(&HeaderName::Via) == 0 {
        return Inbound::Drop(Dropped::NoVia);
    }
    let mut missing = Vec::new();
    let mut repeated = Vec::new();
    for name in [HeaderName::From, HeaderName::To, HeaderName::CallId, HeaderName::CSeq] {
        match req.headers.count(&name) {
            0 => missing.push(name.as_str().to_owned()),
            1 => {}
            _ => repeated.push(name.as_str().to_owned()),
        }
    }
    for name in [HeaderName::MaxForwards, HeaderName::ContentLength, HeaderName::ContentType] {
        if req.headers.count(&name) > 1 {
            repeated.push(name.as_str().to_owned());
        }
    }
    let problem = if !missing.is_empty() {
        format!("missing {}", missing.join(", "))
    } else if !repeated.is_empty() {
        format!("more than one {}", repeated.join(", "))
    } else if !req.body.is_empty() && req.headers.get(&HeaderName::ContentType).is_none() {
        "a body without Content-Type".to_owned()
    } else {
        return Inbound::Request(req);
    };
    if req.method == Method::Ack {
        return Inbound::Drop(Dropped::BadAck(problem));
    }
    Inbound::Reply(stateless_response(&req, 400, &format!("Bad Request - {problem}")))
}

/// Checks what a response needs to be matched to a transaction: Via, and
/// exactly one From, To, Call-ID and CSeq.
pub fn validate_response(resp: &Response) -> Result<(), HeaderError> {
    resp.headers.top_via()?;
    resp.headers.from()?;
    resp.headers.to()?;
    resp.headers.call_id()?;
    resp.headers.cseq()?;
    Ok(())
}

/// RFC 3261 §18.2.1 and RFC 3581: records on the top Via where the request
/// really came from (`received` when the sent-by host differs or rport was
/// asked for, `rport=<port>` when asked for), so responses find their way
/// back through NAT.
pub fn stamp_received(req: &mut Request, source: SocketAddr) {
    let Ok(mut via) = req.headers.top_via() else { return };
    let wants_rport = matches!(via.rport(), Some(None));
    let host_differs = via.host.ip() != Some(source.ip());
    if !host_differs && !wants_rport {
        return;
    }
    via.params.set("received", Some(&source.ip().to_string()));
    if wants_rport {
        via.params.set("rport", Some(&source.port().to_string()));
    }
    req.headers.set_top_via(&via);
}

/// Where a response to a request that arrived over UDP goes (RFC 3261
/// §18.2.2 with RFC 3581): the `received` address (or the source) and the
/// `rport` port if filled in, else the sent-by port (default 5060); an IP
/// `maddr` overrides the address. Over TCP/TLS the response goes back on the
/// connection the request came on.
pub fn response_destination(top_via: &Via, source: SocketAddr) -> SocketAddr {
    if let Some(ip) = top_via.maddr().and_then(|m| m.parse().ok()) {
        return SocketAddr::new(ip, top_via.port_or_default());
    }
    let ip = top_via.received().unwrap_or(source.ip());
    match top_via.rport() {
        Some(Some(port)) => SocketAddr::new(ip, port),
        _ => SocketAddr::new(ip, top_via.port_or_default()),
    }
}

/// What this UAS accepts: the basis for 405/501, 420, 415 and 406.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UasPolicy {
    /// Methods handled (sent in Allow).
    pub allow: Vec<Method>,
    /// Option tags supported (a Require outside these gets 420).
    pub supported: Vec<String>,
    /// Body types understood, as `type/subtype`.
    pub accept: Vec<String>,
}

impl Default for UasPolicy {
    fn default() -> UasPolicy {
        UasPolicy {
            allow: vec![
                Method::Invite,
                Method::Ack,
                Method::Cancel,
                Method::Bye,
                Method::Options,
                Method::Info,
                Method::Notify,
                Method::Refer,
            ],
            supported: Vec::new(),
            accept: vec!["application/sdp".to_owned()],
        }
    }
}

impl UasPolicy {
    /// The Allow header value.
    pub fn allow_header(&self) -> String {
        self.allow.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")
    }
}

/// RFC 3261 §8.2 checks, in the RFC's order; `Some(response)` to send
/// instead of processing the request. ACK is never answered; CANCEL only
/// gets the method check skipped (the transaction layer answers it).
pub fn uas_precheck(req: &Request, policy: &UasPolicy) -> Option<Response> {
    if req.method == Method::Ack {
        return None;
    }
    // §8.2.1 method inspection.
    if req.method != Method::Cancel && !policy.allow.contains(&req.method) {
        let status = if matches!(req.method, Method::Extension(_)) { 501 } else { 405 };
        let mut resp = stateless_response(req, status, "");
        resp.headers.push(HeaderName::Allow, policy.allow_header());
        return Some(resp);
    }
    // §8.2.2.1 Request-URI scheme.
    if let Uri::Other(o) = &req.uri {
        let mut resp = stateless_response(req, 416, "");
        resp.reason = sanitize_reason(&format!("Unsupported URI Scheme ({})", o.scheme));
        return Some(resp);
    }
    if req.method == Method::Cancel {
        return None;
    }
    // §8.2.2.3 Require.
    let unsupported: Vec<&str> = req
        .headers
        .option_tags(&HeaderName::Require)
        .filter(|tag| !policy.supported.iter().any(|s| s.eq_ignore_ascii_case(tag)))
        .collect();
    if !unsupported.is_empty() {
        let mut resp = stateless_response(req, 420, "");
        resp.headers.push(HeaderName::Unsupported, unsupported.join(", "));
        return Some(resp);
    }
    // §8.2.3 content processing.
    if !req.body.is_empty() {
        let understood = match req.headers.content_type() {
            Ok(Some(ct)) => policy.accept.iter().any(|a| a.split_once('/').is_some_and(|(k, s)| ct.is(k, s))),
            _ => false,
        };
        let encoding_ok =
            req.headers.list(&HeaderName::ContentEncoding).all(|e| e.is_empty() || e.eq_ignore_ascii_case("identity"));
        if !understood || !encoding_ok {
            let mut resp = stateless_response(req, 415, "");
            resp.headers.push(HeaderName::Accept, policy.accept.join(", "));
            resp.headers.push(HeaderName::AcceptEncoding, "identity");
            return Some(resp);
        }
    }
    // The answer to an INVITE carries SDP: refuse if the caller will not accept it.
    if req.method == Method::Invite && req.headers.count(&HeaderName::Accept) > 0 {
        let sdp_ok = req
            .headers
            .list(&HeaderName::Accept)
            .filter_map(|a| MediaType::parse(a).ok())
            .any(|m| m.accepts("application", "sdp"));
        if !sdp_ok {
            let mut resp = stateless_response(req, 406, "");
            resp.headers.push(
                HeaderName::Warning,
                "399 clinicdesk \"the session description can only be sent as application/sdp\"",
            );
            return Some(resp);
        }
    }
    None
}

/// A response to `req` for a request answered without a transaction's
/// state: the To tag is derived from the request, so a retransmission gets
/// the same one (RFC 3261 §8.2.7).
pub fn stateless_response(req: &Request, status: u16, reason: &str) -> Response {
    let mut resp = Response::for_request(req, status);
    if !reason.is_empty() {
        resp.reason = sanitize_reason(reason);
    }
    if status > 100 {
        let vias: Vec<String> = req.headers.get_all(&HeaderName::Via).map(str::to_owned).collect();
        let tag = stateless_tag(&vias, req.headers.get(&HeaderName::CallId).unwrap_or(""));
        resp.set_to_tag(&tag);
    }
    resp
}

/// A To tag that is the same for every retransmission of one request.
fn stateless_tag(vias: &[String], call_id: &str) -> String {
    // FNV-1a: only needs to differ between requests, not to be secret.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let top = vias.first().and_then(|v| split_list(v).next()).unwrap_or("");
    for b in top.bytes().chain([0]).chain(call_id.bytes()) {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("sl{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src() -> SocketAddr {
        "203.0.113.9:40123".parse().unwrap()
    }

    const OPTIONS: &str = "OPTIONS sip:100@192.0.2.1 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.5:5070;rport;branch=z9hG4bKa1, SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp\r\n\
From: <sip:a@example.com>;tag=1\r\nTo: <sip:100@192.0.2.1>\r\nCall-ID: x@y\r\nCSeq: 7 OPTIONS\r\nMax-Forwards: 70\r\n\
Content-Length: 0\r\n\r\n";

    fn inbound_request(data: &str) -> Request {
        match validate_datagram(data.as_bytes(), src()) {
            Inbound::Request(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stamps_received_and_rport_and_routes_the_response_back() {
        let req = inbound_request(OPTIONS);
        let top = req.headers.top_via().unwrap();
        assert_eq!(top.received(), Some("203.0.113.9".parse().unwrap()));
        assert_eq!(top.rport(), Some(Some(40123)));
        assert_eq!(req.headers.vias().unwrap().len(), 2);
        assert_eq!(response_destination(&top, src()), src());
        let no_rport = Via::parse("SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bKa1;received=203.0.113.9").unwrap();
        assert_eq!(response_destination(&no_rport, src()), "203.0.113.9:5070".parse().unwrap());
    }

    #[test]
    fn keep_alives_and_garbage_are_dropped() {
        assert_eq!(validate_datagram(b"\r\n\r\n", src()), Inbound::Drop(Dropped::KeepAlive));
        assert!(matches!(validate_datagram(b"\x16\x03\x01garbage", src()), Inbound::Drop(Dropped::Unanswerable(_))));
        let no_via = OPTIONS.replace(
            "Via: SIP/2.0/UDP 10.0.0.5:5070;rport;branch=z9hG4bKa1, SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp\r\n",
            "",
        );
        assert_eq!(validate_datagram(no_via.as_bytes(), src()), Inbound::Drop(Dropped::NoVia));
    }

    #[test]
    fn missing_fields_get_400_naming_them_with_a_stable_tag() {
        let data = OPTIONS.replace("Call-ID: x@y\r\n", "").replace("To: <sip:100@192.0.2.1>\r\n", "");
        let Inbound::Reply(a) = validate_datagram(data.as_bytes(), src()) else { panic!("no reply") };
        assert_eq!(a.status, 400);
        assert_eq!(a.reason, "Bad Request - missing To, Call-ID");
        let data = OPTIONS.replace("CSeq: 7 OPTIONS", "CSeq: 7 OPTIONS\r\nCSeq: 8 OPTIONS");
        let Inbound::Reply(b) = validate_datagram(data.as_bytes(), src()) else { panic!("no reply") };
        assert_eq!(b.reason, "Bad Request - more than one CSeq");
        let Inbound::Reply(c) = validate_datagram(data.as_bytes(), src()) else { panic!("no reply") };
        assert_eq!(b.headers.to().unwrap().tag(), c.headers.to().unwrap().tag());
        assert!(b.headers.to().unwrap().tag().is_some());
    }

    #[test]
    fn precheck_follows_rfc3261_order() {
        let policy = UasPolicy::default();
        let req = inbound_request(OPTIONS);
        assert_eq!(uas_precheck(&req, &policy), None);
        let mut r = req.clone();
        r.method = Method::Register;
        r.headers.set(HeaderName::CSeq, "7 REGISTER");
        let resp = uas_precheck(&r, &policy).unwrap();
        assert_eq!(resp.status, 405);
        assert_eq!(
            resp.headers.get(&HeaderName::Allow),
            Some("INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER")
        );
        r.method = Method::Extension("FOO".into());
        assert_eq!(uas_precheck(&r, &policy).unwrap().status, 501);
        let mut r = req.clone();
        r.uri = Uri::parse("mailto:a@b").unwrap();
        assert_eq!(uas_precheck(&r, &policy).unwrap().status, 416);
        let mut r = req.clone();
        r.headers.push(HeaderName::Require, "100rel, timer");
        let resp = uas_precheck(&r, &policy).unwrap();
        assert_eq!((resp.status, resp.headers.get(&HeaderName::Unsupported)), (420, Some("100rel, timer")));
        let mut r = req.clone();
        r.set_body("text/html", b"<p>".to_vec());
        let resp = uas_precheck(&r, &policy).unwrap();
        assert_eq!((resp.status, resp.headers.get(&HeaderName::Accept)), (415, Some("application/sdp")));
        let mut r = req;
        r.method = Method::Invite;
        r.headers.push(HeaderName::Accept, "application/*");
        assert_eq!(uas_precheck(&r, &policy), None);
        r.headers.set(HeaderName::Accept, "text/plain");
        assert_eq!(uas_precheck(&r, &policy).unwrap().status, 406);
    }
}
