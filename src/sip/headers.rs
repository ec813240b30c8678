//! Header fields: names (case-insensitive, compact forms folded to the full
//! name), the ordered header list of a message, and typed views of the
//! fields a user agent reads and writes (RFC 3261 §20 and the extensions
//! named in DESIGN.md).
//!
//! A message keeps each header line as text (folding undone). Typed values
//! are parsed when asked for, so a header the user agent never reads cannot
//! make it fail, and serialising a received message gives back what came in.
//! [`crate::sip::message`] checks the fields every message needs when it
//! parses, so on a parsed message those accessors do not fail in practice.

use std::borrow::Cow;
use std::fmt;

use super::message::Method;
use super::syntax::{
    Params, is_token, is_token_char, is_word_char, parse_decimal, parse_header_params, parse_quoted, split_list,
    take_while, trim_ws, trim_ws_start, write_quoted,
};
use super::uri::{Host, Uri};

/// What is wrong with a header field (or that a required one is missing or repeated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("malformed {name}: {reason}")]
    Malformed { name: &'static str, reason: Cow<'static, str> },
    #[error("missing {0}")]
    Missing(&'static str),
    #[error("{0} appears more than once")]
    Repeated(&'static str),
}

fn malformed(name: &HeaderName, reason: impl Into<Cow<'static, str>>) -> HeaderError {
    HeaderError::Malformed { name: name.static_name(), reason: reason.into() }
}

macro_rules! header_names {
    ($( $variant:ident => $canonical:literal, $lower:literal $(, $compact:literal)? ; )*) => {
        /// A header field name. Known names (and their compact forms) parse to
        /// their variant; anything else is kept as written in `Other`.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum HeaderName {
            $( $variant, )*
            Other(String),
        }

        impl HeaderName {
            /// The name from a header line: case-insensitive, compact forms accepted.
            pub fn parse(name: &str) -> HeaderName {
                let mut buf = [0u8; 24];
                let len = name.len();
                if let Some(lower) = buf.get_mut(..len) {
                    lower.copy_from_slice(name.as_bytes());
                    lower.make_ascii_lowercase();
                    match &*lower {
                        $( $lower $( | $compact )? => return HeaderName::$variant, )*
                        _ => {}
                    }
                }
                HeaderName::Other(name.to_owned())
            }

            /// The name as this user agent writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( HeaderName::$variant => $canonical, )*
                    HeaderName::Other(s) => s,
                }
            }

            fn static_name(&self) -> &'static str {
                match self {
                    $( HeaderName::$variant => $canonical, )*
                    HeaderName::Other(_) => "extension header",
                }
            }
        }
    };
}

header_names! {
    Accept => "Accept", b"accept";
    AcceptContact => "Accept-Contact", b"accept-contact", b"a";
    AcceptEncoding => "Accept-Encoding", b"accept-encoding";
    AcceptLanguage => "Accept-Language", b"accept-language";
    AlertInfo => "Alert-Info", b"alert-info";
    Allow => "Allow", b"allow";
    AllowEvents => "Allow-Events", b"allow-events", b"u";
    AuthenticationInfo => "Authentication-Info", b"authentication-info";
    Authorization => "Authorization", b"authorization";
    CallId => "Call-ID", b"call-id", b"i";
    CallInfo => "Call-Info", b"call-info";
    Contact => "Contact", b"contact", b"m";
    ContentDisposition => "Content-Disposition", b"content-disposition";
    ContentEncoding => "Content-Encoding", b"content-encoding", b"e";
    ContentLanguage => "Content-Language", b"content-language";
    ContentLength => "Content-Length", b"content-length", b"l";
    ContentType => "Content-Type", b"content-type", b"c";
    CSeq => "CSeq", b"cseq";
    Date => "Date", b"date";
    ErrorInfo => "Error-Info", b"error-info";
    Event => "Event", b"event", b"o";
    Expires => "Expires", b"expires";
    From => "From", b"from", b"f";
    Identity => "Identity", b"identity", b"y";
    InReplyTo => "In-Reply-To", b"in-reply-to";
    MaxForwards => "Max-Forwards", b"max-forwards";
    MinExpires => "Min-Expires", b"min-expires";
    MinSe => "Min-SE", b"min-se";
    MimeVersion => "MIME-Version", b"mime-version";
    Organization => "Organization", b"organization";
    PAssertedIdentity => "P-Asserted-Identity", b"p-asserted-identity";
    PPreferredIdentity => "P-Preferred-Identity", b"p-preferred-identity";
    Priority => "Priority", b"priority";
    ProxyAuthenticate => "Proxy-Authenticate", b"proxy-authenticate";
    ProxyAuthorization => "Proxy-Authorization", b"proxy-authorization";
    ProxyRequire => "Proxy-Require", b"proxy-require";
    RAck => "RAck", b"rack";
    Reason => "Reason", b"reason";
    RecordRoute => "Record-Route", b"record-route";
    ReferTo => "Refer-To", b"refer-to", b"r";
    ReferredBy => "Referred-By", b"referred-by", b"b";
    RejectContact => "Reject-Contact", b"reject-contact", b"j";
    Replaces => "Replaces", b"replaces";
    ReplyTo => "Reply-To", b"reply-to";
    RequestDisposition => "Request-Disposition", b"request-disposition", b"d";
    Require => "Require", b"require";
    RetryAfter => "Retry-After", b"retry-after";
    Route => "Route", b"route";
    RSeq => "RSeq", b"rseq";
    Server => "Server", b"server";
    SessionExpires => "Session-Expires", b"session-expires", b"x";
    Subject => "Subject", b"subject", b"s";
    SubscriptionState => "Subscription-State", b"subscription-state";
    Supported => "Supported", b"supported", b"k";
    Timestamp => "Timestamp", b"timestamp";
    To => "To", b"to", b"t";
    Unsupported => "Unsupported", b"unsupported";
    UserAgent => "User-Agent", b"user-agent";
    Via => "Via", b"via", b"v";
    Warning => "Warning", b"warning";
    WwwAuthenticate => "WWW-Authenticate", b"www-authenticate";
}

impl HeaderName {
    /// Compares with another name the way SIP does (case-insensitively).
    pub fn is(&self, other: &HeaderName) -> bool {
        match (self, other) {
            (HeaderName::Other(a), HeaderName::Other(b)) => a.eq_ignore_ascii_case(b),
            _ => self == other,
        }
    }
}

impl fmt::Display for HeaderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One header line: its name and its value with folding undone and the
/// surrounding white space trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: HeaderName,
    pub value: String,
}

/// The header fields of a message, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<Header>);

impl Headers {
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Header> {
        self.0.iter()
    }

    /// Appends a header line.
    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.0.push(Header { name, value: value.into() });
    }

    /// Appends a typed value (anything that displays as a header value).
    pub fn push_typed(&mut self, name: HeaderName, value: &impl fmt::Display) {
        self.push(name, value.to_string());
    }

    /// Inserts a header line before all others of the same name (a new top Via, a preloaded Route).
    pub fn push_front(&mut self, name: HeaderName, value: impl Into<String>) {
        let at = self.0.iter().position(|h| h.name.is(&name)).unwrap_or(self.0.len());
        self.0.insert(at, Header { name, value: value.into() });
    }

    /// Replaces every line of `name` with one line (appended if there was none).
    pub fn set(&mut self, name: HeaderName, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter().position(|h| h.name.is(&name)) {
            Some(first) => {
                if let Some(h) = self.0.get_mut(first) {
                    h.value = value;
                }
                let mut i = 0;
                self.0.retain(|h| {
                    i += 1;
                    i - 1 == first || !h.name.is(&name)
                });
            }
            None => self.push(name, value),
        }
    }

    /// Removes every line of `name`; returns how many there were.
    pub fn remove(&mut self, name: &HeaderName) -> usize {
        let before = self.0.len();
        self.0.retain(|h| !h.name.is(name));
        before - self.0.len()
    }

    /// The value of the first line of `name`.
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.0.iter().find(|h| h.name.is(name)).map(|h| h.value.as_str())
    }

    /// The values of every line of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a str> {
        self.0.iter().filter(move |h| h.name.is(name)).map(|h| h.value.as_str())
    }

    /// How many lines of `name` there are.
    pub fn count(&self, name: &HeaderName) -> usize {
        self.0.iter().filter(|h| h.name.is(name)).count()
    }

    /// The comma-separated elements of every line of `name`, in order
    /// (for list headers such as Via, Contact, Route, Allow, Supported).
    pub fn list<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a str> {
        self.get_all(name).flat_map(split_list)
    }

    /// The value of a header that must appear exactly once.
    pub fn single(&self, name: &HeaderName) -> Result<&str, HeaderError> {
        let mut all = self.get_all(name);
        let first = all.next().ok_or(HeaderError::Missing(name.static_name()))?;
        if all.next().is_some() {
            return Err(HeaderError::Repeated(name.static_name()));
        }
        Ok(first)
    }

    fn optional_single(&self, name: &HeaderName) -> Result<Option<&str>, HeaderError> {
        match self.single(name) {
            Ok(v) => Ok(Some(v)),
            Err(HeaderError::Missing(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> Result<Vec<Via>, HeaderError> {
        self.list(&HeaderName::Via).map(Via::parse).collect()
    }

    /// The topmost Via (the one naming the sender of a request, or this UA in a response).
    pub fn top_via(&self) -> Result<Via, HeaderError> {
        let first = self.list(&HeaderName::Via).next().ok_or(HeaderError::Missing("Via"))?;
        Via::parse(first)
    }

    /// Replaces the topmost Via value (splitting its line if it held several values).
    pub fn set_top_via(&mut self, via: &Via) {
        let Some(pos) = self.0.iter().position(|h| h.name.is(&HeaderName::Via)) else {
            self.push_typed(HeaderName::Via, via);
            return;
        };
        let rest: Vec<String> =
            self.0.get(pos).map(|h| split_list(&h.value).skip(1).map(str::to_owned).collect()).unwrap_or_default();
        if let Some(h) = self.0.get_mut(pos) {
            h.value = via.to_string();
        }
        if !rest.is_empty() {
            self.0.insert(pos + 1, Header { name: HeaderName::Via, value: rest.join(", ") });
        }
    }

    /// The From header (exactly one required).
    pub fn from(&self) -> Result<NameAddr, HeaderError> {
        NameAddr::parse_header(&HeaderName::From, self.single(&HeaderName::From)?)
    }

    /// The To header (exactly one required).
    pub fn to(&self) -> Result<NameAddr, HeaderError> {
        NameAddr::parse_header(&HeaderName::To, self.single(&HeaderName::To)?)
    }

    /// The Call-ID (exactly one required).
    pub fn call_id(&self) -> Result<&str, HeaderError> {
        let v = self.single(&HeaderName::CallId)?;
        check_call_id(v)?;
        Ok(v)
    }

    /// The CSeq (exactly one required).
    pub fn cseq(&self) -> Result<CSeq, HeaderError> {
        CSeq::parse(self.single(&HeaderName::CSeq)?)
    }

    /// Max-Forwards (0–255), if present.
    pub fn max_forwards(&self) -> Result<Option<u8>, HeaderError> {
        self.optional_single(&HeaderName::MaxForwards)?.map(parse_max_forwards).transpose()
    }

    /// Expires in seconds, if present; values beyond 2³²−1 read as 2³²−1.
    pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
        self.optional_single(&HeaderName::Expires)?.map(|v| parse_delta_seconds(&HeaderName::Expires, v)).transpose()
    }

    /// Min-Expires in seconds (in a 423 response), if present.
    pub fn min_expires(&self) -> Result<Option<u32>, HeaderError> {
        self.optional_single(&HeaderName::MinExpires)?
            .map(|v| parse_delta_seconds(&HeaderName::MinExpires, v))
            .transpose()
    }

    /// Content-Length, if present.
    pub fn content_length(&self) -> Result<Option<usize>, HeaderError> {
        self.optional_single(&HeaderName::ContentLength)?.map(parse_content_length).transpose()
    }

    /// Content-Type, if present.
    pub fn content_type(&self) -> Result<Option<MediaType>, HeaderError> {
        self.optional_single(&HeaderName::ContentType)?.map(MediaType::parse).transpose()
    }

    /// Contact: `*` or the listed addresses (empty when there is no Contact).
    pub fn contacts(&self) -> Result<Contacts, HeaderError> {
        let items: Vec<&str> = self.list(&HeaderName::Contact).collect();
        if items.contains(&"*") {
            if items.len() != 1 {
                return Err(malformed(&HeaderName::Contact, "'*' combined with other contacts"));
            }
            return Ok(Contacts::Wildcard);
        }
        items
            .into_iter()
            .map(|i| NameAddr::parse_header(&HeaderName::Contact, i))
            .collect::<Result<_, _>>()
            .map(Contacts::Addresses)
    }

    /// Route values, in order.
    pub fn routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.list(&HeaderName::Route).map(|v| NameAddr::parse_header(&HeaderName::Route, v)).collect()
    }

    /// Record-Route values, in order.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.list(&HeaderName::RecordRoute).map(|v| NameAddr::parse_header(&HeaderName::RecordRoute, v)).collect()
    }

    /// P-Asserted-Identity values (RFC 3325), in order.
    pub fn p_asserted_identity(&self) -> Result<Vec<NameAddr>, HeaderError> {
        self.list(&HeaderName::PAssertedIdentity)
            .map(|v| NameAddr::parse_header(&HeaderName::PAssertedIdentity, v))
            .collect()
    }

    /// The methods of Allow.
    pub fn allow(&self) -> Vec<Method> {
        self.list(&HeaderName::Allow).filter(|s| !s.is_empty()).map(Method::parse).collect()
    }

    /// The option tags of a Supported, Require, Unsupported or Proxy-Require header.
    pub fn option_tags<'a>(&'a self, name: &HeaderName) -> impl Iterator<Item = &'a str> {
        self.list(name).filter(|s| !s.is_empty())
    }

    /// Event (RFC 6665), if present.
    pub fn event(&self) -> Result<Option<Event>, HeaderError> {
        self.optional_single(&HeaderName::Event)?.map(Event::parse).transpose()
    }

    /// Subscription-State (RFC 6665), if present.
    pub fn subscription_state(&self) -> Result<Option<SubscriptionState>, HeaderError> {
        self.optional_single(&HeaderName::SubscriptionState)?.map(SubscriptionState::parse).transpose()
    }

    /// Refer-To (RFC 3515), if present.
    pub fn refer_to(&self) -> Result<Option<NameAddr>, HeaderError> {
        self.optional_single(&HeaderName::ReferTo)?.map(|v| NameAddr::parse_header(&HeaderName::ReferTo, v)).transpose()
    }

    /// Referred-By (RFC 3892), if present.
    pub fn referred_by(&self) -> Result<Option<NameAddr>, HeaderError> {
        self.optional_single(&HeaderName::ReferredBy)?
            .map(|v| NameAddr::parse_header(&HeaderName::ReferredBy, v))
            .transpose()
    }

    /// Replaces (RFC 3891), if present.
    pub fn replaces(&self) -> Result<Option<Replaces>, HeaderError> {
        self.optional_single(&HeaderName::Replaces)?.map(Replaces::parse).transpose()
    }
}

fn check_call_id(v: &str) -> Result<(), HeaderError> {
    // callid = word [ "@" word ]
    let mut parts = v.splitn(2, '@');
    let ok = parts.all(|w| !w.is_empty() && w.bytes().all(is_word_char));
    if ok { Ok(()) } else { Err(malformed(&HeaderName::CallId, "not word[@word]")) }
}

pub(crate) fn parse_max_forwards(v: &str) -> Result<u8, HeaderError> {
    parse_decimal(v)
        .and_then(|n| u8::try_from(n).ok())
        .ok_or_else(|| malformed(&HeaderName::MaxForwards, "not a number from 0 to 255"))
}

fn parse_delta_seconds(name: &HeaderName, v: &str) -> Result<u32, HeaderError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(name, "not a number of seconds"));
    }
    // RFC 3261 §20.19: larger values are taken as 2**32-1 (RFC 4475 §3.1.2.4).
    Ok(parse_decimal(v).and_then(|n| u32::try_from(n).ok()).unwrap_or(u32::MAX))
}

pub(crate) fn parse_content_length(v: &str) -> Result<usize, HeaderError> {
    parse_decimal(v)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| malformed(&HeaderName::ContentLength, "not a non-negative number"))
}

/// Checks a header value's syntax for the fields every message relies on;
/// the message parser calls this for each line so a malformed one is caught
/// with the message, not later in the user agent.
pub(crate) fn check_core_header(name: &HeaderName, value: &str) -> Result<(), HeaderError> {
    match name {
        HeaderName::Via => {
            for v in split_list(value) {
                Via::parse(v)?;
            }
        }
        HeaderName::From | HeaderName::To => {
            NameAddr::parse_header(name, value)?;
        }
        HeaderName::Contact if value != "*" => {
            for v in split_list(value) {
                NameAddr::parse_header(name, v)?;
            }
        }
        HeaderName::Route | HeaderName::RecordRoute => {
            for v in split_list(value) {
                NameAddr::parse_header(name, v)?;
            }
        }
        HeaderName::CallId => check_call_id(value)?,
        HeaderName::CSeq => {
            CSeq::parse(value)?;
        }
        HeaderName::MaxForwards => {
            parse_max_forwards(value)?;
        }
        HeaderName::ContentLength => {
            parse_content_length(value)?;
        }
        HeaderName::Expires => {
            parse_delta_seconds(name, value)?;
        }
        HeaderName::Date => check_rfc1123_date(value)?,
        _ => {}
    }
    Ok(())
}

/// RFC 3261 §20.17: `Date: Sat, 13 Nov 2010 23:29:00 GMT` (rfc1123-date, always GMT).
fn check_rfc1123_date(v: &str) -> Result<(), HeaderError> {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let bad = |reason: &'static str| Err(malformed(&HeaderName::Date, reason));
    let Some((wkday, rest)) = v.split_once(", ") else { return bad("expected 'Wkd, DD Mon YYYY HH:MM:SS GMT'") };
    let parts: Vec<&str> = rest.split(' ').collect();
    let [day, month, year, time, zone] = parts.as_slice() else {
        return bad("expected 'Wkd, DD Mon YYYY HH:MM:SS GMT'");
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let time_ok = {
        let t: Vec<&str> = time.split(':').collect();
        t.len() == 3 && t.iter().all(|p| digits(p, 2))
    };
    if !DAYS.contains(&wkday) || !MONTHS.contains(month) || !digits(day, 2) || !digits(year, 4) || !time_ok {
        return bad("expected 'Wkd, DD Mon YYYY HH:MM:SS GMT'");
    }
    if *zone != "GMT" {
        return bad("time zone must be GMT");
    }
    Ok(())
}

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

    fn parse_header(name: &HeaderName, v: &str) -> Result<NameAddr, HeaderError> {
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
    fn names_fold_case_and_compact_forms() {
        assert_eq!(HeaderName::parse("vIa"), HeaderName::Via);
        assert_eq!(HeaderName::parse("v"), HeaderName::Via);
        assert_eq!(HeaderName::parse("i"), HeaderName::CallId);
        assert_eq!(HeaderName::parse("K"), HeaderName::Supported);
        assert_eq!(HeaderName::parse("o"), HeaderName::Event);
        assert_eq!(HeaderName::parse("x"), HeaderName::SessionExpires);
        assert_eq!(HeaderName::parse("C%6Fntact"), HeaderName::Other("C%6Fntact".into()));
        assert_eq!(HeaderName::CallId.as_str(), "Call-ID");
        assert!(HeaderName::parse("X-Foo").is(&HeaderName::parse("x-foo")));
    }

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
    fn scalar_headers() {
        assert_eq!(CSeq::parse("0009 INVITE").unwrap(), CSeq { seq: 9, method: Method::Invite });
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_err());
        assert!(CSeq::parse("2147483648 INVITE").is_err());
        assert!(CSeq::parse("1INVITE").is_err());
        assert_eq!(parse_max_forwards("0068"), Ok(68));
        assert!(parse_max_forwards("300").is_err());
        assert_eq!(parse_delta_seconds(&HeaderName::Expires, "1".repeat(40).as_str()), Ok(u32::MAX));
        assert!(parse_content_length("-999").is_err());
        assert!(check_rfc1123_date("Sat, 13 Nov 2010 23:29:00 GMT").is_ok());
        assert!(check_rfc1123_date("Fri, 01 Jan 2010 16:00:00 EST").is_err());
    }

    #[test]
    fn headers_list_and_edit() {
        let mut h = Headers::new();
        h.push(HeaderName::Via, "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2");
        h.push(HeaderName::Via, "SIP/2.0/UDP c;branch=z9hG4bK3");
        h.push(HeaderName::Allow, "INVITE, ACK,BYE");
        assert_eq!(h.vias().unwrap().len(), 3);
        let mut top = h.top_via().unwrap();
        top.params.set("received", Some("192.0.2.9"));
        h.set_top_via(&top);
        assert_eq!(
            h.get_all(&HeaderName::Via).collect::<Vec<_>>(),
            vec![
                "SIP/2.0/UDP a;branch=z9hG4bK1;received=192.0.2.9",
                "SIP/2.0/UDP b;branch=z9hG4bK2",
                "SIP/2.0/UDP c;branch=z9hG4bK3"
            ]
        );
        assert_eq!(h.allow(), vec![Method::Invite, Method::Ack, Method::Bye]);
        h.push(HeaderName::Allow, "CANCEL");
        h.set(HeaderName::Allow, "OPTIONS");
        assert_eq!(h.get_all(&HeaderName::Allow).collect::<Vec<_>>(), vec!["OPTIONS"]);
        assert_eq!(h.remove(&HeaderName::Via), 3);
        assert_eq!(h.single(&HeaderName::CallId), Err(HeaderError::Missing("Call-ID")));
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
