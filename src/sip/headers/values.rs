//! Typed views of structured header values: Via, name-addr (From, To,
//! Contact, Route...), CSeq, media types, Event, Subscription-State, Replaces.

use std::fmt;

use super::name::{HeaderError, HeaderName, malformed};
use super::scalar::{check_call_id, parse_delta_seconds};
use crate::sip::method::Method;
use crate::sip::syntax::{
    Params, is_token, is_token_char, parse_decimal, parse_header_params, parse_quoted, take_while, trim_ws,
    trim_ws_start, write_quoted,
};
use crate::sip::uri::{Host, Uri};

/// One Via value (RFC 3261 §20.42, RFC 3581 rport).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport in upper case: UDP, TCP, TLS, SCTP, WS, WSS or an extension.
    pub transport: String,
    pub host: Host,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    /// A Via for a request this UA sends.
    pub fn new(transport: &str, host: Host, port: Option<u16>, branch: &str) -> Via {
        let mut params = Params::default();
        params.set("branch", Some(branch));
        Via { transport: transport.to_ascii_uppercase(), host, port, params }
    }

    pub fn parse(v: &str) -> Result<Via, HeaderError> {
        let name = &HeaderName::Via;
        let bad = |reason: &'static str| malformed(name, reason);
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport; SLASH = SWS "/" SWS
        let (proto, r) = take_while(trim_ws_start(v), is_token_char);
        let r = trim_ws_start(r).strip_prefix('/').ok_or(bad("expected SIP/2.0/transport"))?;
        let (version, r) = take_while(trim_ws_start(r), is_token_char);
        let r = trim_ws_start(r).strip_prefix('/').ok_or(bad("expected SIP/2.0/transport"))?;
        let (transport, r) = take_while(trim_ws_start(r), is_token_char);
        if !proto.eq_ignore_ascii_case("SIP") || version != "2.0" {
            return Err(bad("protocol is not SIP/2.0"));
        }
        if transport.is_empty() {
            return Err(bad("no transport"));
        }
        let r2 = trim_ws_start(r);
        if r2.len() == r.len() {
            return Err(bad("no white space before sent-by"));
        }
        // sent-by = host [ COLON port ]
        let (host, r) = if r2.starts_with('[') {
            let end = r2.find(']').ok_or(bad("unterminated IPv6 reference"))?;
            r2.split_at_checked(end + 1).unwrap_or((r2, ""))
        } else {
            take_while(r2, |b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        };
        let host = Host::parse(host).map_err(|e| malformed(name, e.0))?;
        let mut r = trim_ws_start(r);
        let mut port = None;
        if let Some(p) = r.strip_prefix(':') {
            let (digits, rest) = take_while(trim_ws_start(p), |b| b.is_ascii_digit());
            port = Some(parse_decimal(digits).and_then(|p| u16::try_from(p).ok()).ok_or(bad("invalid port"))?);
            r = rest;
        }
        let params = parse_header_params(r).map_err(|e| malformed(name, e))?;
        if params.get("branch").is_some_and(|b| b.is_none_or(str::is_empty)) {
            return Err(bad("branch without a value"));
        }
        Ok(Via { transport: transport.to_ascii_uppercase(), host, port, params })
    }

    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").flatten()
    }

    /// `received`: the address the previous hop saw this request come from.
    pub fn received(&self) -> Option<std::net::IpAddr> {
        self.params.get("received").flatten().and_then(|v| v.trim_matches(['[', ']']).parse().ok())
    }

    /// `rport`: `Some(None)` when asked for (no value), `Some(Some(port))` once filled in.
    pub fn rport(&self) -> Option<Option<u16>> {
        self.params.get("rport").map(|v| v.and_then(|p| p.parse().ok()))
    }

    pub fn maddr(&self) -> Option<&str> {
        self.params.get("maddr").flatten()
    }

    pub fn ttl(&self) -> Option<u8> {
        self.params.get("ttl").flatten().and_then(|t| t.parse().ok())
    }

    /// Whether the branch carries the RFC 3261 magic cookie with an identifier after it.
    pub fn has_rfc3261_branch(&self) -> bool {
        self.branch().is_some_and(|b| b.len() > 7 && b.get(..7).is_some_and(|p| p == "z9hG4bK"))
    }

    /// In a response to our request: the address the server saw it come
    /// from (`received` and `rport`, RFC 3581), i.e. our address outside the
    /// NAT, to put in Contact. `None` until the server reports both.
    pub fn reflexive_addr(&self) -> Option<std::net::SocketAddr> {
        Some(std::net::SocketAddr::new(self.received()?, self.rport()??))
    }

    /// The port to reply to when none is given.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.transport == "TLS" { 5061 } else { 5060 })
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// `[display-name] <URI> *(;param)` — From, To, Contact, Route, Record-Route,
/// Refer-To, Referred-By, P-Asserted-Identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted and unescaped.
    pub display: Option<String>,
    pub uri: Uri,
    /// Header parameters (tag, expires, q, ...), not those of the URI.
    pub params: Params,
}

impl NameAddr {
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr { display: None, uri, params: Params::default() }
    }

    pub fn with_display(mut self, display: &str) -> NameAddr {
        self.display = Some(display.to_owned());
        self
    }

    /// Parses one name-addr or addr-spec with its parameters.
    pub fn parse(v: &str) -> Result<NameAddr, HeaderError> {
        NameAddr::parse_header(&HeaderName::Other("name-addr".into()), v)
    }

    pub(super) fn parse_header(name: &HeaderName, v: &str) -> Result<NameAddr, HeaderError> {
        let bad = |reason: &'static str| malformed(name, reason);
        let s = trim_ws(v);
        if s.is_empty() {
            return Err(bad("empty value"));
        }
        let (display, bracketed) = if s.starts_with('"') {
            let (dn, rest) = parse_quoted(s).map_err(|e| malformed(name, e))?;
            let rest = trim_ws_start(rest);
            if !rest.starts_with('<') {
                return Err(bad("quoted display name not followed by <URI>"));
            }
            (Some(dn), Some(rest))
        } else {
            // display-name = *(token LWS): scan tokens; a '<' after them starts the URI.
            let mut words = Vec::new();
            let mut r = s;
            loop {
                let (word, after) = take_while(r, is_token_char);
                if word.is_empty() {
                    break;
                }
                words.push(word);
                r = trim_ws_start(after);
            }
            if r.starts_with('<') {
                (if words.is_empty() { None } else { Some(words.join(" ")) }, Some(r))
            } else {
                (None, None)
            }
        };
        let (uri_text, params_text) = match bracketed {
            Some(b) => {
                let inner = b.get(1..).unwrap_or("");
                let (uri, after) = inner.split_once('>').ok_or(bad("'<' without '>'"))?;
                if uri.bytes().any(|b| b.is_ascii_whitespace()) {
                    return Err(bad("white space inside <URI>"));
                }
                (uri, after)
            }
            None => {
                // addr-spec: the URI cannot hold ';' , or '?' (RFC 3261 §20.10), so it ends at ';'.
                let (uri, after) = take_while(s, |b| b != b';');
                let uri = trim_ws(uri);
                if uri.bytes().any(|b| b.is_ascii_whitespace()) {
                    return Err(if s.contains('<') {
                        bad("display name with characters outside a token must be quoted")
                    } else {
                        bad("white space inside the URI")
                    });
                }
                if uri.contains('?') {
                    return Err(bad("a URI with headers ('?') must be enclosed in <>"));
                }
                if uri.contains(',') || uri.contains('<') || uri.contains('>') || uri.contains('"') {
                    return Err(bad("display name with characters outside a token must be quoted"));
                }
                (uri, after)
            }
        };
        let uri = Uri::parse(uri_text).map_err(|e| malformed(name, e.0))?;
        let params = parse_header_params(params_text).map_err(|e| malformed(name, e))?;
        Ok(NameAddr { display, uri, params })
    }

    /// The `tag` parameter (From and To).
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").flatten()
    }

    pub fn set_tag(&mut self, tag: &str) {
        self.params.set("tag", Some(tag));
    }

    /// The `expires` parameter of a Contact, saturating like the Expires header.
    pub fn expires(&self) -> Option<u32> {
        let v = self.params.get("expires").flatten()?;
        parse_delta_seconds(&HeaderName::Contact, v).ok()
    }

    /// The `q` parameter of a Contact.
    pub fn q(&self) -> Option<f32> {
        self.params.get("q").flatten().and_then(|v| v.parse().ok())
    }
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(d) = &self.display {
            write_quoted(f, d)?;
            f.write_str(" ")?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

/// The Contact header(s) of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contacts {
    /// `Contact: *` (remove all bindings, with `Expires: 0`).
    Wildcard,
    Addresses(Vec<NameAddr>),
}

/// CSeq: sequence number (below 2³¹, RFC 3261 §8.1.1.5) and method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(v: &str) -> Result<CSeq, HeaderError> {
        let name = &HeaderName::CSeq;
        let (digits, r) = take_while(trim_ws(v), |b| b.is_ascii_digit());
        let seq = parse_decimal(digits)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n < 1 << 31)
            .ok_or_else(|| malformed(name, "sequence number is not a number below 2**31"))?;
        let method = trim_ws_start(r);
        if method.len() == r.len() || !is_token(method) {
            return Err(malformed(name, "expected 'number method'"));
        }
        Ok(CSeq { seq, method: Method::parse(method) })
    }
}

impl fmt::Display for CSeq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.seq, self.method)
    }
}

/// A media type (Content-Type, Accept element): `type/subtype;params`, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    pub kind: String,
    pub subtype: String,
    pub params: Params,
}

impl MediaType {
    pub fn parse(v: &str) -> Result<MediaType, HeaderError> {
        let name = &HeaderName::ContentType;
        let (kind, r) = take_while(trim_ws(v), is_token_char);
        let r = trim_ws_start(r).strip_prefix('/').ok_or_else(|| malformed(name, "expected type/subtype"))?;
        let (subtype, r) = take_while(trim_ws_start(r), is_token_char);
        if kind.is_empty() || subtype.is_empty() {
            return Err(malformed(name, "expected type/subtype"));
        }
        let params = parse_header_params(r).map_err(|e| malformed(name, e))?;
        Ok(MediaType { kind: kind.to_owned(), subtype: subtype.to_owned(), params })
    }

    /// `type/subtype` equality, ignoring case and parameters.
    pub fn is(&self, kind: &str, subtype: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind) && self.subtype.eq_ignore_ascii_case(subtype)
    }

    /// Whether this (possibly wildcard) Accept range covers `kind/subtype`.
    pub fn accepts(&self, kind: &str, subtype: &str) -> bool {
        (self.kind == "*" || self.kind.eq_ignore_ascii_case(kind))
            && (self.subtype == "*" || self.subtype.eq_ignore_ascii_case(subtype))
    }
}

impl fmt::Display for MediaType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}{}", self.kind, self.subtype, self.params)
    }
}

/// Event (RFC 6665): package (with template) and parameters (`id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub package: String,
    pub params: Params,
}

impl Event {
    pub fn parse(v: &str) -> Result<Event, HeaderError> {
        let (package, r) = take_while(trim_ws(v), is_token_char);
        if package.is_empty() {
            return Err(malformed(&HeaderName::Event, "no event package"));
        }
        let params = parse_header_params(r).map_err(|e| malformed(&HeaderName::Event, e))?;
        Ok(Event { package: package.to_owned(), params })
    }

    pub fn id(&self) -> Option<&str> {
        self.params.get("id").flatten()
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.package, self.params)
    }
}

/// Subscription-State (RFC 6665): active, pending, terminated (+ expires, reason, retry-after).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    pub state: String,
    pub params: Params,
}

impl SubscriptionState {
    pub fn parse(v: &str) -> Result<SubscriptionState, HeaderError> {
        let (state, r) = take_while(trim_ws(v), is_token_char);
        if state.is_empty() {
            return Err(malformed(&HeaderName::SubscriptionState, "no state"));
        }
        let params = parse_header_params(r).map_err(|e| malformed(&HeaderName::SubscriptionState, e))?;
        Ok(SubscriptionState { state: state.to_ascii_lowercase(), params })
    }

    pub fn expires(&self) -> Option<u32> {
        self.params.get("expires").flatten().and_then(|v| v.parse().ok())
    }

    pub fn reason(&self) -> Option<&str> {
        self.params.get("reason").flatten()
    }
}

impl fmt::Display for SubscriptionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.state, self.params)
    }
}

/// Replaces (RFC 3891): the dialog to replace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaces {
    pub call_id: String,
    pub to_tag: String,
    pub from_tag: String,
    pub early_only: bool,
}

impl Replaces {
    pub fn parse(v: &str) -> Result<Replaces, HeaderError> {
        let name = &HeaderName::Replaces;
        let (call_id, r) = take_while(trim_ws(v), |b| b != b';' && !b.is_ascii_whitespace());
        check_call_id(call_id).map_err(|_| malformed(name, "invalid Call-ID"))?;
        let params = parse_header_params(r).map_err(|e| malformed(name, e))?;
        let to_tag = params.get("to-tag").flatten().ok_or_else(|| malformed(name, "no to-tag"))?;
        let from_tag = params.get("from-tag").flatten().ok_or_else(|| malformed(name, "no from-tag"))?;
        Ok(Replaces {
            call_id: call_id.to_owned(),
            to_tag: to_tag.to_owned(),
            from_tag: from_tag.to_owned(),
            early_only: params.contains("early-only"),
        })
    }
}

impl fmt::Display for Replaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{};to-tag={};from-tag={}", self.call_id, self.to_tag, self.from_tag)?;
        if self.early_only {
            f.write_str(";early-only")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_with_white_space_everywhere() {
        let v = Via::parse("SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8").unwrap();
        assert_eq!(v.transport, "TCP");
        assert_eq!(v.host, Host::Domain("spindle.example.com".into()));
        assert_eq!(v.branch(), Some("z9hG4bK9ikj8"));
        let v = Via::parse("SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bKx;received=192.0.2.1;ttl=16").unwrap();
        assert_eq!(v.port, Some(5070));
        assert_eq!(v.rport(), Some(None));
        assert_eq!(v.received(), Some("192.0.2.1".parse().unwrap()));
        assert_eq!(v.ttl(), Some(16));
        assert_eq!(v.reflexive_addr(), None, "rport not filled in yet");
        let answered =
            Via::parse("SIP/2.0/UDP 10.0.0.1:5070;rport=40001;received=203.0.113.4;branch=z9hG4bKx").unwrap();
        assert_eq!(answered.reflexive_addr(), Some("203.0.113.4:40001".parse().unwrap()));
        assert_eq!(v.to_string(), "SIP/2.0/UDP 10.0.0.1:5070;rport;branch=z9hG4bKx;received=192.0.2.1;ttl=16");
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_err());
        assert!(Via::parse("SIP/7.0/UDP c.example.com").is_err());
        assert!(Via::parse("SIP/2.0/UDPhost").is_err());
    }

    #[test]
    fn name_addr_forms() {
        let a = NameAddr::parse("\"A \\\"B\\\"\" <sip:a@b.example;lr>;tag=1").unwrap();
        assert_eq!(a.display.as_deref(), Some("A \"B\""));
        assert_eq!(a.tag(), Some("1"));
        assert_eq!(a.uri.as_sip().unwrap().param("lr"), Some(None));
        let a = NameAddr::parse("sip:+19725552222@gw1.example.net;unknownparam").unwrap();
        assert_eq!(a.params.get("unknownparam"), Some(None));
        assert!(a.uri.as_sip().unwrap().params.is_empty());
        let a = NameAddr::parse("token1~` token2'+_ token3*%!.- <sip:mundane@example.com>").unwrap();
        assert_eq!(a.display.as_deref(), Some("token1~` token2'+_ token3*%!.-"));
        assert!(NameAddr::parse("\"Mr. J. User <sip:j.user@example.com>").is_err());
        assert!(NameAddr::parse("\"Watson, Thomas\" < sip:t.watson@example.org >").is_err());
        assert!(NameAddr::parse("Watson, Thomas <sip:t.watson@example.org>").is_err());
        assert!(NameAddr::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_err());
        assert!(NameAddr::parse("\"Joe\" <sip:joe@example.org>;;;;").is_err());
        let round = NameAddr::parse("Bob <sip:bob@example.com>;tag=x").unwrap();
        assert_eq!(round.to_string(), "\"Bob\" <sip:bob@example.com>;tag=x");
    }

    #[test]
    fn event_state_replaces() {
        let e = Event::parse("refer;id=93809824").unwrap();
        assert_eq!((e.package.as_str(), e.id()), ("refer", Some("93809824")));
        let s = SubscriptionState::parse("terminated;reason=noresource").unwrap();
        assert_eq!((s.state.as_str(), s.reason()), ("terminated", Some("noresource")));
        let r = Replaces::parse("425928@bobster.example.org;to-tag=7743;from-tag=6472;early-only").unwrap();
        assert_eq!(r.call_id, "425928@bobster.example.org");
        assert!(r.early_only);
        assert_eq!(r.to_string(), "425928@bobster.example.org;to-tag=7743;from-tag=6472;early-only");
        let m = MediaType::parse("application/SDP ; charset=utf-8").unwrap();
        assert!(m.is("application", "sdp"));
    }
}
