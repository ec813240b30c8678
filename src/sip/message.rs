//! SIP messages (RFC 3261 §7): parsing from bytes, serialising, and building
//! requests and responses.
//!
//! [`Message::parse`] reads one message from a datagram (or from the exact
//! bytes a stream framer cut out). It checks the start line, every header
//! line, the syntax of the fields every message depends on (Via, From, To,
//! Contact, Call-ID, CSeq, Max-Forwards, Content-Length, Route,
//! Record-Route, Expires, Date), that a request's CSeq names its method, and
//! that the body is as long as Content-Length says. On failure the
//! [`ParseError`] says what is wrong, which status a request gets for it
//! (400, or 505 for another SIP version), and carries the raw Via, From, To,
//! Call-ID and CSeq lines so [`crate::sip::validate::response_for_bad`] can
//! still answer; a broken response is never answered.
//!
//! Header values stay text; typed access is in [`crate::sip::headers`].
//! Serialising always writes a Content-Length computed from the body, so a
//! message this UA sends cannot carry a wrong one.
//!
//! The parser never panics: it slices only at ASCII delimiters it found and
//! uses checked arithmetic on numbers from the wire (the corpus tests feed it
//! every truncation and byte flip of the RFC 4475 messages).

use std::borrow::Cow;

use super::headers::{CSeq, HeaderError, HeaderName, Headers, NameAddr, check_core_header, parse_content_length};
pub use super::method::Method;
use super::syntax::{find_byte, is_token, is_token_char, is_ws};
use super::uri::Uri;

/// A SIP request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: Uri,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A SIP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A parsed message of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

/// What kind of message a broken one seemed to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A request (its method when the Request-Line was readable that far).
    Request(Option<Method>),
    Response,
    /// Neither: not answerable.
    Unknown,
}

/// The header lines a response must copy (RFC 3261 §8.2.6.2), as received:
/// enough to answer a request that failed to parse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Essentials {
    pub vias: Vec<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub call_id: Option<String>,
    pub cseq: Option<String>,
}

/// What is wrong with a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    #[error("empty message")]
    Empty,
    #[error("the start line is neither a Request-Line nor a Status-Line")]
    NotSip,
    #[error("{0} is not valid UTF-8")]
    NotUtf8(&'static str),
    #[error("malformed Request-Line: {0}")]
    RequestLine(&'static str),
    #[error("malformed Request-URI: {0}")]
    RequestUri(Cow<'static, str>),
    #[error("SIP version {0} is not supported")]
    Version(String),
    #[error("malformed Status-Line: {0}")]
    StatusLine(&'static str),
    #[error("malformed header line: {0}")]
    HeaderLine(&'static str),
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("CSeq method {cseq} does not match the request method {method}")]
    CSeqMismatch { cseq: String, method: String },
    #[error("no empty line after the header fields")]
    NoEmptyLine,
    #[error("Content-Length {declared} is larger than the {available} bytes of body received")]
    BodyShorterThanContentLength { declared: usize, available: usize },
}

impl Problem {
    /// The status a request with this problem is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Problem::Version(_) => 505,
            _ => 400,
        }
    }

    /// A reason phrase naming the problem (printable, one line, bounded).
    pub fn reason_phrase(&self) -> String {
        match self {
            Problem::Version(_) => "Version Not Supported".to_owned(),
            _ => sanitize_reason(&format!("Bad Request - {self}")),
        }
    }
}

/// A message that could not be parsed, with what is needed to answer it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct ParseError {
    pub problem: Problem,
    pub kind: Kind,
    /// The raw lines a response would copy; `None` unless the message is a
    /// request with at least one Via, i.e. unless it can be answered.
    pub essentials: Option<Box<Essentials>>,
}

impl ParseError {
    /// The status to answer with, or `None` when no response is possible
    /// (a response, something that is not SIP, or a request without Via).
    pub fn status(&self) -> Option<u16> {
        self.essentials.as_ref().map(|_| self.problem.status())
    }
}

/// Keeps a reason phrase to one printable line of reasonable length.
pub(crate) fn sanitize_reason(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).take(160).collect()
}

/// The reason phrase RFC 3261 (and extensions) give a status code.
pub fn default_reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        199 => "Early Dialog Terminated",
        200 => "OK",
        202 => "Accepted",
        204 => "No Notification",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        305 => "Use Proxy",
        380 => "Alternative Service",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        410 => "Gone",
        412 => "Conditional Request Failed",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        421 => "Extension Required",
        422 => "Session Interval Too Small",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        485 => "Ambiguous",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        493 => "Undecipherable",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        580 => "Precondition Failure",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match status / 100 {
            1 => "Progress",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// Splits `data` into lines (CRLF, or a bare LF from lenient peers):
/// each line without its terminator, and whether a terminator was found.
struct Lines<'a> {
    data: &'a [u8],
}

impl<'a> Lines<'a> {
    fn next_line(&mut self) -> Option<(&'a [u8], bool)> {
        if self.data.is_empty() {
            return None;
        }
        match find_byte(self.data, b'\n') {
            Some(i) => {
                let (line, rest) = self.data.split_at_checked(i).unwrap_or((self.data, &[]));
                self.data = rest.get(1..).unwrap_or(&[]);
                Some((line.strip_suffix(b"\r").unwrap_or(line), true))
            }
            None => {
                let line = self.data;
                self.data = &[];
                Some((line.strip_suffix(b"\r").unwrap_or(line), false))
            }
        }
    }

    fn rest(&self) -> &'a [u8] {
        self.data
    }
}

fn trim_ws_bytes(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if !is_ws(*first) {
            break;
        }
        b = rest;
    }
    while let [rest @ .., last] = b {
        if !is_ws(*last) {
            break;
        }
        b = rest;
    }
    b
}

enum StartLine {
    Request(Method, Uri),
    Response(u16, String),
}

/// Finds the end of the header section in a stream buffer: the offset just
/// past the empty line, or `None` if it has not arrived yet.
pub(crate) fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut lines = Lines { data: buf };
    let mut first = true;
    while let Some((line, terminated)) = lines.next_line() {
        if !terminated {
            return None;
        }
        if line.is_empty() && !first {
            return Some(buf.len() - lines.rest().len());
        }
        first = false;
    }
    None
}

impl Message {
    /// Parses one message. Bytes after the body that Content-Length declares
    /// are ignored (RFC 4475 §3.1.1.8); without Content-Length the body is
    /// the rest of the input (allowed on UDP, RFC 3261 §18.3).
    pub fn parse(data: &[u8]) -> Result<Message, ParseError> {
        parse_message(data)
    }

    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }

    pub fn body(&self) -> &[u8] {
        match self {
            Message::Request(r) => &r.body,
            Message::Response(r) => &r.body,
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Message::Request(r) => r.to_bytes(),
            Message::Response(r) => r.to_bytes(),
        }
    }
}

fn parse_message(data: &[u8]) -> Result<Message, ParseError> {
    // RFC 3261 §7.5: CRLFs before the start line are ignored.
    let mut start = data;
    while let [b'\r' | b'\n', rest @ ..] = start {
        start = rest;
    }
    let mut lines = Lines { data: start };
    let Some((first, _)) = lines.next_line() else {
        return Err(ParseError { problem: Problem::Empty, kind: Kind::Unknown, essentials: None });
    };

    let mut problem: Option<Problem> = None;
    let note = |p: &mut Option<Problem>, new: Problem| {
        if p.is_none() {
            *p = Some(new);
        }
    };

    let (kind, start_line) = match std::str::from_utf8(first) {
        Err(_) => {
            // Non-UTF-8 in the start line: a reason phrase may be anything, a request line may not.
            let kind = if first.len() >= 4 && first.get(..4).is_some_and(|p| p.eq_ignore_ascii_case(b"SIP/")) {
                Kind::Response
            } else {
                Kind::Request(None)
            };
            note(&mut problem, Problem::NotUtf8("the start line"));
            (kind, None)
        }
        Ok(line) => match parse_start_line(line) {
            Ok(sl) => {
                let kind = match &sl {
                    StartLine::Request(m, _) => Kind::Request(Some(m.clone())),
                    StartLine::Response(..) => Kind::Response,
                };
                (kind, Some(sl))
            }
            Err((kind, p)) => {
                note(&mut problem, p);
                (kind, None)
            }
        },
    };

    // Header lines, folding undone: a line starting with SP or HT continues the previous one.
    let mut headers = Headers::new();
    let mut bad_line = false;
    let mut body_start = None;
    while let Some((line, terminated)) = lines.next_line() {
        if line.is_empty() && terminated {
            body_start = Some(start.len() - lines.rest().len());
            break;
        }
        if let [b' ' | b'\t', ..] = line {
            let cont = trim_ws_bytes(line);
            match (headers.0.last_mut(), std::str::from_utf8(cont)) {
                (Some(h), Ok(text)) if !bad_line && !text.is_empty() => {
                    if !h.value.is_empty() {
                        h.value.push(' ');
                    }
                    h.value.push_str(text);
                }
                (None, _) => note(&mut problem, Problem::HeaderLine("continuation line before any header")),
                (_, Err(_)) => note(&mut problem, Problem::NotUtf8("a header line")),
                _ => {}
            }
            continue;
        }
        bad_line = false;
        let Some(colon) = find_byte(line, b':') else {
            note(&mut problem, Problem::HeaderLine("no ':' after the header name"));
            bad_line = true;
            continue;
        };
        let (name, value) = line.split_at_checked(colon).unwrap_or((line, &[]));
        let value = trim_ws_bytes(value.get(1..).unwrap_or(&[]));
        let name = trim_ws_bytes(name);
        let (Ok(name), Ok(value)) = (std::str::from_utf8(name), std::str::from_utf8(value)) else {
            note(&mut problem, Problem::NotUtf8("a header line"));
            bad_line = true;
            continue;
        };
        if !is_token(name) {
            note(&mut problem, Problem::HeaderLine("header name is not a token"));
            bad_line = true;
            continue;
        }
        headers.push(HeaderName::parse(name), value);
    }

    // Syntax of the fields every message relies on.
    for h in headers.iter() {
        if problem.is_some() {
            break;
        }
        if let Err(e) = check_core_header(&h.name, &h.value) {
            note(&mut problem, Problem::Header(e));
        }
    }
    if let Some(StartLine::Request(method, _)) = &start_line
        && let Some(Ok(cseq)) = headers.get(&HeaderName::CSeq).map(CSeq::parse)
        && cseq.method != *method
    {
        note(
            &mut problem,
            Problem::CSeqMismatch { cseq: cseq.method.as_str().to_owned(), method: method.as_str().to_owned() },
        );
    }

    let body = match body_start {
        None => {
            note(&mut problem, Problem::NoEmptyLine);
            &[][..]
        }
        Some(at) => {
            let available = start.get(at..).unwrap_or(&[]);
            match headers.get(&HeaderName::ContentLength).map(parse_content_length) {
                Some(Ok(declared)) if declared > available.len() => {
                    note(&mut problem, Problem::BodyShorterThanContentLength { declared, available: available.len() });
                    &[][..]
                }
                Some(Ok(declared)) => available.get(..declared).unwrap_or(&[]),
                // A malformed Content-Length has been noted above.
                Some(Err(_)) => &[][..],
                None => available,
            }
        }
    };

    match (problem, start_line) {
        (None, Some(StartLine::Request(method, uri))) => {
            Ok(Message::Request(Request { method, uri, headers, body: body.to_vec() }))
        }
        (None, Some(StartLine::Response(status, reason))) => {
            Ok(Message::Response(Response { status, reason, headers, body: body.to_vec() }))
        }
        (problem, _) => {
            let problem = problem.unwrap_or(Problem::NotSip);
            let essentials = match kind {
                Kind::Request(_) if headers.count(&HeaderName::Via) > 0 => Some(Box::new(Essentials {
                    vias: headers.get_all(&HeaderName::Via).map(str::to_owned).collect(),
                    from: headers.get(&HeaderName::From).map(str::to_owned),
                    to: headers.get(&HeaderName::To).map(str::to_owned),
                    call_id: headers.get(&HeaderName::CallId).map(str::to_owned),
                    cseq: headers.get(&HeaderName::CSeq).map(str::to_owned),
                })),
                _ => None,
            };
            Err(ParseError { problem, kind, essentials })
        }
    }
}

/// Checks `SIP/x.y`: `Ok(true)` for 2.0, `Ok(false)` for another version, `Err` if not a version.
fn check_version(v: &str) -> Result<bool, ()> {
    let rest = match v.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("SIP/") => v.get(4..).unwrap_or(""),
        _ => return Err(()),
    };
    let (major, minor) = rest.split_once('.').ok_or(())?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return Err(());
    }
    Ok(major.trim_start_matches('0') == "2" && minor.trim_start_matches('0').is_empty())
}

fn parse_start_line(line: &str) -> Result<StartLine, (Kind, Problem)> {
    if line.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("SIP/")) {
        return parse_status_line(line).map_err(|p| (Kind::Response, p));
    }
    // Request-Line = Method SP Request-URI SP SIP-Version: exactly two single spaces.
    let (method_text, _) = line.split_once(' ').unwrap_or((line, ""));
    if !is_token(method_text) {
        let kind = if line.is_empty() || !line.bytes().next().is_some_and(is_token_char) {
            Kind::Unknown
        } else {
            Kind::Request(None)
        };
        return Err((kind, Problem::NotSip));
    }
    let method = Method::parse(method_text);
    let kind = Kind::Request(Some(method.clone()));
    let parts: Vec<&str> = line.split(' ').collect();
    let [_, uri, version] = parts.as_slice() else {
        let why = if line.ends_with([' ', '\t']) {
            "white space after the SIP-Version"
        } else if line.contains("  ") || line.contains('\t') {
            "more than one SP between its elements"
        } else if parts.len() > 3 {
            "white space inside the Request-URI"
        } else {
            "expected 'Method SP Request-URI SP SIP-Version'"
        };
        return Err((kind, Problem::RequestLine(why)));
    };
    match check_version(version) {
        Ok(true) => {}
        Ok(false) => return Err((kind, Problem::Version((*version).to_owned()))),
        Err(()) => return Err((kind, Problem::RequestLine("malformed SIP-Version"))),
    }
    if uri.is_empty() {
        return Err((kind, Problem::RequestLine("empty Request-URI")));
    }
    if uri.starts_with('<') {
        return Err((kind, Problem::RequestUri("enclosed in <>".into())));
    }
    let uri = Uri::parse(uri).map_err(|e| (kind.clone(), Problem::RequestUri(e.0.into())))?;
    if let Uri::Sip(u) = &uri
        && !u.headers.is_empty()
    {
        // RFC 3261 §19.1.5: headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
        return Err((kind, Problem::RequestUri("contains escaped headers".into())));
    }
    Ok(StartLine::Request(method, uri))
}

fn parse_status_line(line: &str) -> Result<StartLine, Problem> {
    let (version, rest) = line.split_once(' ').ok_or(Problem::StatusLine("expected 'SIP/2.0 code reason'"))?;
    match check_version(version) {
        Ok(true) => {}
        Ok(false) => return Err(Problem::Version(version.to_owned())),
        Err(()) => return Err(Problem::StatusLine("malformed SIP-Version")),
    }
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let status = match code.as_bytes() {
        [a @ b'1'..=b'6', b, c] if b.is_ascii_digit() && c.is_ascii_digit() => {
            u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0')
        }
        _ => return Err(Problem::StatusLine("status code is not three digits from 100 to 699")),
    };
    Ok(StartLine::Response(status, reason.to_owned()))
}

fn write_headers(out: &mut Vec<u8>, headers: &Headers, body: &[u8]) {
    for h in headers.iter() {
        if h.name == HeaderName::ContentLength {
            continue;
        }
        out.extend_from_slice(h.name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(h.value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
}

impl Request {
    /// An empty request: the caller adds Via, Max-Forwards, From, To, Call-ID, CSeq, Contact.
    pub fn new(method: Method, uri: Uri) -> Request {
        Request { method, uri, headers: Headers::new(), body: Vec::new() }
    }

    /// Sets the body and its Content-Type.
    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        self.headers.set(HeaderName::ContentType, content_type);
        self.body = body;
    }

    /// The message as it goes on the wire (Content-Length from the body).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("{} {} SIP/2.0\r\n", self.method, self.uri).as_bytes());
        write_headers(&mut out, &self.headers, &self.body);
        out
    }
}

impl Response {
    /// A response with the status's usual reason phrase and no headers.
    pub fn new(status: u16) -> Response {
        Response { status, reason: default_reason(status).to_owned(), headers: Headers::new(), body: Vec::new() }
    }

    /// A response to `req` (RFC 3261 §8.2.6.2): Via (all, in order), From,
    /// To, Call-ID and CSeq copied, Timestamp copied on 100. Add the To tag
    /// with [`Response::set_to_tag`] and, for dialogs, Contact and Record-Route.
    pub fn for_request(req: &Request, status: u16) -> Response {
        let mut resp = Response::new(status);
        for h in req.headers.iter() {
            let copy = match h.name {
                HeaderName::Via | HeaderName::From | HeaderName::To | HeaderName::CallId | HeaderName::CSeq => true,
                HeaderName::Timestamp => status == 100,
                _ => false,
            };
            if copy {
                resp.headers.push(h.name.clone(), h.value.clone());
            }
        }
        resp
    }

    /// Adds a tag to To unless it already has one (every response but 100 needs one).
    pub fn set_to_tag(&mut self, tag: &str) {
        if let Some(Ok(mut to)) = self.headers.get(&HeaderName::To).map(NameAddr::parse)
            && to.tag().is_none()
        {
            to.set_tag(tag);
            self.headers.set(HeaderName::To, to.to_string());
        }
    }

    pub fn with_reason(mut self, reason: &str) -> Response {
        self.reason = sanitize_reason(reason);
        self
    }

    /// Sets the body and its Content-Type.
    pub fn set_body(&mut self, content_type: &str, body: Vec<u8>) {
        self.headers.set(HeaderName::ContentType, content_type);
        self.body = body;
    }

    /// 1xx.
    pub fn is_provisional(&self) -> bool {
        self.status < 200
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", self.status, self.reason).as_bytes());
        write_headers(&mut out, &self.headers, &self.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::headers::Via;
    use crate::sip::uri::{Host, SipUri};

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
Timestamp: 54\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    fn request(data: &[u8]) -> Request {
        match Message::parse(data).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => panic!("not a request"),
        }
    }

    #[test]
    fn parses_a_plain_invite() {
        let r = request(INVITE);
        assert_eq!(r.method, Method::Invite);
        assert_eq!(r.uri.to_string(), "sip:bob@biloxi.example.com");
        assert_eq!(r.headers.top_via().unwrap().branch(), Some("z9hG4bK776asdhds"));
        assert_eq!(r.headers.from().unwrap().tag(), Some("1928301774"));
        assert_eq!(r.headers.to().unwrap().display.as_deref(), Some("Bob"));
        assert_eq!(r.headers.cseq().unwrap(), CSeq { seq: 314159, method: Method::Invite });
        assert_eq!(r.headers.max_forwards().unwrap(), Some(70));
        assert_eq!(r.body, b"v=0\n");
    }

    #[test]
    fn serialising_round_trips_and_fixes_content_length() {
        let mut r = request(INVITE);
        let again = request(&r.to_bytes());
        assert_eq!(again, r);
        r.body = b"v=0\r\no=x\r\n".to_vec();
        let bytes = r.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("Content-Length: 10\r\n\r\nv=0"), "{text}");
        assert_eq!(text.matches("Content-Length").count(), 1);
        assert_eq!(request(&bytes).body, r.body);
    }

    #[test]
    fn response_for_request_copies_the_dialog_fields() {
        let req = request(INVITE);
        let mut resp = Response::for_request(&req, 180);
        resp.set_to_tag("as83kd9bs");
        assert_eq!(resp.reason, "Ringing");
        assert_eq!(resp.headers.top_via().unwrap(), req.headers.top_via().unwrap());
        assert_eq!(resp.headers.to().unwrap().tag(), Some("as83kd9bs"));
        assert_eq!(resp.headers.call_id().unwrap(), "a84b4c76e66710@pc33.atlanta.example.com");
        assert_eq!(resp.headers.get(&HeaderName::Timestamp), None);
        assert_eq!(Response::for_request(&req, 100).headers.get(&HeaderName::Timestamp), Some("54"));
        let bytes = resp.to_bytes();
        let Message::Response(back) = Message::parse(&bytes).unwrap() else { panic!("not a response") };
        assert_eq!(back.status, 180);
        assert_eq!(back.headers.cseq().unwrap().method, Method::Invite);
        resp.set_to_tag("other");
        assert_eq!(resp.headers.to().unwrap().tag(), Some("as83kd9bs"), "an existing tag is kept");
    }

    #[test]
    fn builds_a_request() {
        let uri = Uri::Sip(SipUri::new(Some("200"), Host::Ipv4("127.0.0.1".parse().unwrap()), Some(5062)));
        let mut req = Request::new(Method::Register, uri);
        req.headers.push_typed(
            HeaderName::Via,
            &Via::new("udp", Host::Ipv4("127.0.0.1".parse().unwrap()), Some(5070), "z9hG4bKabc"),
        );
        req.headers.push(HeaderName::MaxForwards, "70");
        req.headers.push(HeaderName::From, "<sip:200@127.0.0.1>;tag=x");
        req.headers.push(HeaderName::To, "<sip:200@127.0.0.1>");
        req.headers.push(HeaderName::CallId, "c1@host");
        req.headers.push(HeaderName::CSeq, "1 REGISTER");
        let text = String::from_utf8(req.to_bytes()).unwrap();
        assert!(text.starts_with(
            "REGISTER sip:200@127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKabc\r\n"
        ));
        assert!(text.ends_with("CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"));
        let mut back = request(text.as_bytes());
        assert_eq!(back.headers.remove(&HeaderName::ContentLength), 1);
        assert_eq!(back, req);
    }

    #[test]
    fn start_line_problems() {
        let bad = |line: &str| {
            let msg = format!("{line}\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nl: 0\r\n\r\n");
            Message::parse(msg.as_bytes()).unwrap_err()
        };
        assert_eq!(bad("OPTIONS sip:a@b SIP/3.0").status(), Some(505));
        assert_eq!(bad("OPTIONS sip:a@b SIP/2.0 ").problem, Problem::RequestLine("white space after the SIP-Version"));
        assert_eq!(
            bad("OPTIONS  sip:a@b SIP/2.0").problem,
            Problem::RequestLine("more than one SP between its elements")
        );
        assert_eq!(
            bad("OPTIONS sip:a@b; lr SIP/2.0").problem,
            Problem::RequestLine("white space inside the Request-URI")
        );
        assert_eq!(bad("OPTIONS <sip:a@b> SIP/2.0").problem, Problem::RequestUri("enclosed in <>".into()));
        assert_eq!(bad("SIP/2.0 2000 OK").status(), None);
        assert_eq!(bad("SIP/2.0 099 Hm").kind, Kind::Response);
        assert_eq!(bad("@@@").kind, Kind::Unknown);
        assert_eq!(Message::parse(b"\r\n\r\n").unwrap_err().problem, Problem::Empty);
    }

    #[test]
    fn head_end_is_found_across_chunks() {
        assert_eq!(find_head_end(b"OPTIONS sip:a SIP/2.0\r\nl: 0\r\n\r\nrest"), Some(31));
        assert_eq!(find_head_end(b"OPTIONS sip:a SIP/2.0\r\nl: 0\r\n\r"), None);
        assert_eq!(find_head_end(b"OPTIONS sip:a SIP/2.0\nl: 0\n\n"), Some(28));
    }
}
