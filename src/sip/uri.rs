//! SIP, SIPS and tel URIs (RFC 3261 §19.1, RFC 3966), and any other scheme
//! kept opaque so a request naming it can be answered with 416 instead of
//! being dropped.
//!
//! Components are stored as received, escapes included (`%6C%72` stays
//! `%6C%72`), so a URI re-serialises exactly and a `%00` never has to become
//! a string; the `*_decoded` accessors and [`SipUri::param`] decode when
//! comparing or showing.

use std::borrow::Cow;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::syntax::{Params, escapes_valid, parse_decimal, take_while, unescape, unescape_str};

/// What is wrong with a URI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed URI: {0}")]
pub struct UriError(pub &'static str);

/// A URI as it appears in a Request-Line or a header field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    Sip(SipUri),
    Tel(TelUri),
    /// Any other scheme (RFC 3261 `absoluteURI`): a user agent answers 416 to a request for one.
    Other(OtherUri),
}

/// `sip:` or `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips:` rather than `sip:`.
    pub secure: bool,
    /// The user part as received (escapes kept); RFC 3261 allows `;`, `?`, `/` and more in it.
    pub user: Option<String>,
    pub password: Option<String>,
    pub host: Host,
    pub port: Option<u16>,
    /// URI parameters (`;transport=tcp;lr`), names and values as received.
    pub params: Params,
    /// URI headers (`?Replaces=...&Require=replaces`), as received.
    pub headers: Vec<(String, String)>,
}

/// The host of a SIP URI or Via sent-by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Host {
    Domain(String),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
}

/// `tel:` URI (RFC 3966): the number as written (with visual separators) and its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelUri {
    pub number: String,
    pub params: Params,
}

/// A URI of a scheme this user agent does not interpret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherUri {
    pub scheme: String,
    /// Everything after the first `:`.
    pub rest: String,
}

impl Uri {
    /// Parses a URI (no surrounding `<>`, no white space).
    pub fn parse(s: &str) -> Result<Uri, UriError> {
        let Some((scheme, rest)) = s.split_once(':') else {
            return Err(UriError("no scheme"));
        };
        if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
            return SipUri::parse_parts(scheme.eq_ignore_ascii_case("sips"), rest).map(Uri::Sip);
        }
        if scheme.eq_ignore_ascii_case("tel") {
            return TelUri::parse_rest(rest).map(Uri::Tel);
        }
        let mut chars = scheme.bytes();
        let scheme_ok = chars.next().is_some_and(|b| b.is_ascii_alphabetic())
            && chars.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
        if !scheme_ok {
            return Err(UriError("invalid scheme"));
        }
        if rest.is_empty() {
            return Err(UriError("nothing after the scheme"));
        }
        if !rest.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"')) {
            return Err(UriError("character not allowed in a URI"));
        }
        Ok(Uri::Other(OtherUri { scheme: scheme.to_owned(), rest: rest.to_owned() }))
    }

    /// The scheme in lower case for sip/sips/tel, as received otherwise.
    pub fn scheme(&self) -> &str {
        match self {
            Uri::Sip(u) if u.secure => "sips",
            Uri::Sip(_) => "sip",
            Uri::Tel(_) => "tel",
            Uri::Other(o) => &o.scheme,
        }
    }

    pub fn as_sip(&self) -> Option<&SipUri> {
        match self {
            Uri::Sip(u) => Some(u),
            _ => None,
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip(u) => u.fmt(f),
            Uri::Tel(t) => t.fmt(f),
            Uri::Other(o) => write!(f, "{}:{}", o.scheme, o.rest),
        }
    }
}

impl std::str::FromStr for Uri {
    type Err = UriError;
    fn from_str(s: &str) -> Result<Self, UriError> {
        Uri::parse(s)
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')')
}

fn is_user_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'%' | b'&' | b'=' | b'+' | b'$' | b',' | b';' | b'?' | b'/')
}

fn is_password_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'%' | b'&' | b'=' | b'+' | b'$' | b',')
}

fn is_param_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'%' | b'[' | b']' | b'/' | b':' | b'&' | b'+' | b'$')
}

fn is_header_char(b: u8) -> bool {
    is_unreserved(b) || matches!(b, b'%' | b'[' | b']' | b'/' | b'?' | b':' | b'+' | b'$')
}

impl SipUri {
    /// A plain `sip:user@host[:port]` URI.
    pub fn new(user: Option<&str>, host: Host, port: Option<u16>) -> SipUri {
        SipUri {
            secure: false,
            user: user.map(str::to_owned),
            password: None,
            host,
            port,
            params: Params::default(),
            headers: Vec::new(),
        }
    }

    /// Parses a complete `sip:` / `sips:` URI.
    pub fn parse(s: &str) -> Result<SipUri, UriError> {
        match Uri::parse(s)? {
            Uri::Sip(u) => Ok(u),
            _ => Err(UriError("not a sip or sips URI")),
        }
    }

    fn parse_parts(secure: bool, rest: &str) -> Result<SipUri, UriError> {
        // '@' cannot appear unescaped in host, parameters or headers, so the
        // first one ends the userinfo even when the user holds ';' or '?'.
        let (userinfo, hostpart) = match rest.split_once('@') {
            Some((ui, hp)) => (Some(ui), hp),
            None => (None, rest),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (user, password) = match ui.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (ui, None),
                };
                if user.is_empty() {
                    return Err(UriError("empty user part before '@'"));
                }
                if !user.bytes().all(is_user_char) || !escapes_valid(user) {
                    return Err(UriError("character not allowed in the user part"));
                }
                if let Some(p) = password
                    && (!p.bytes().all(is_password_char) || !escapes_valid(p))
                {
                    return Err(UriError("character not allowed in the password"));
                }
                (Some(user.to_owned()), password.map(str::to_owned))
            }
        };
        let (host_str, after) = if hostpart.starts_with('[') {
            match hostpart.find(']') {
                Some(end) => hostpart.split_at_checked(end + 1).unwrap_or((hostpart, "")),
                None => return Err(UriError("unterminated IPv6 reference")),
            }
        } else {
            take_while(hostpart, |b| !matches!(b, b':' | b';' | b'?'))
        };
        let host = Host::parse(host_str)?;
        let mut rest = after;
        let mut port = None;
        if let Some(r) = rest.strip_prefix(':') {
            let (digits, r) = take_while(r, |b| b.is_ascii_digit());
            port = Some(parse_port(digits)?);
            rest = r;
        }
        let mut params = Params::default();
        while let Some(r) = rest.strip_prefix(';') {
            let (param, r) = take_while(r, |b| b != b';' && b != b'?');
            let (name, value) = match param.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (param, None),
            };
            if name.is_empty() || !name.bytes().all(is_param_char) || !escapes_valid(name) {
                return Err(UriError("empty or invalid URI parameter name"));
            }
            if let Some(v) = value
                && (v.is_empty() || !v.bytes().all(is_param_char) || !escapes_valid(v))
            {
                return Err(UriError("empty or invalid URI parameter value"));
            }
            params.0.push((name.to_owned(), value.map(str::to_owned)));
            rest = r;
        }
        let mut headers = Vec::new();
        if let Some(r) = rest.strip_prefix('?') {
            for header in r.split('&') {
                let Some((name, value)) = header.split_once('=') else {
                    return Err(UriError("URI header without '='"));
                };
                if name.is_empty() || !name.bytes().all(is_header_char) || !escapes_valid(name) {
                    return Err(UriError("empty or invalid URI header name"));
                }
                if !value.bytes().all(is_header_char) || !escapes_valid(value) {
                    return Err(UriError("invalid URI header value"));
                }
                headers.push((name.to_owned(), value.to_owned()));
            }
            rest = "";
        }
        if !rest.is_empty() {
            return Err(UriError("unexpected character after the host"));
        }
        Ok(SipUri { secure, user, password, host, port, params, headers })
    }

    /// The user part with `%HH` escapes decoded (lossy where they are not UTF-8).
    pub fn user_decoded(&self) -> Option<Cow<'_, str>> {
        self.user.as_deref().map(unescape_str)
    }

    /// The user part as octets (escapes decoded).
    pub fn user_bytes(&self) -> Option<Cow<'_, [u8]>> {
        self.user.as_deref().map(unescape)
    }

    /// A URI parameter by name (escapes decoded before comparing, names case-insensitive):
    /// `Some(None)` for a parameter without value, values decoded.
    pub fn param(&self, name: &str) -> Option<Option<Cow<'_, str>>> {
        self.params.iter().find(|(n, _)| unescape_str(n).eq_ignore_ascii_case(name)).map(|(_, v)| v.map(unescape_str))
    }

    /// A URI header by name (`?Replaces=...`), value decoded.
    pub fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        self.headers.iter().find(|(n, _)| unescape_str(n).eq_ignore_ascii_case(name)).map(|(_, v)| unescape_str(v))
    }

    /// The port to use when none is given: 5060, or 5061 for `sips:`.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(if self.secure { 5061 } else { 5060 })
    }

    /// A loose-routing next hop (`;lr`).
    pub fn is_loose_route(&self) -> bool {
        self.param("lr").is_some()
    }
}

fn parse_port(digits: &str) -> Result<u16, UriError> {
    parse_decimal(digits).and_then(|p| u16::try_from(p).ok()).ok_or(UriError("invalid port"))
}

impl fmt::Display for SipUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            f.write_str(user)?;
            if let Some(p) = &self.password {
                write!(f, ":{p}")?;
            }
            f.write_str("@")?;
        }
        write!(f, "{}", self.host)?;
        if let Some(port) = self.port {
            write!(f, ":{port}")?;
        }
        write!(f, "{}", self.params)?;
        for (i, (name, value)) in self.headers.iter().enumerate() {
            write!(f, "{}{name}={value}", if i == 0 { '?' } else { '&' })?;
        }
        Ok(())
    }
}

impl Host {
    /// Parses a host: `[IPv6]`, dotted IPv4, or a host name (letters, digits, `-`, `.`, `_`).
    pub fn parse(s: &str) -> Result<Host, UriError> {
        if let Some(inner) = s.strip_prefix('[') {
            let inner = inner.strip_suffix(']').ok_or(UriError("unterminated IPv6 reference"))?;
            return inner.parse().map(Host::Ipv6).map_err(|_| UriError("invalid IPv6 address"));
        }
        if let Ok(v4) = s.parse::<Ipv4Addr>() {
            return Ok(Host::Ipv4(v4));
        }
        if s.is_empty() {
            return Err(UriError("empty host"));
        }
        if !s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')) {
            return Err(UriError("character not allowed in a host name"));
        }
        if s.starts_with(['.', '-']) || s.contains("..") {
            return Err(UriError("invalid host name"));
        }
        // A top label starting with a digit would be a (bad) IPv4 address.
        let top = s.trim_end_matches('.').rsplit('.').next().unwrap_or("");
        if top.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
            return Err(UriError("invalid IPv4 address"));
        }
        Ok(Host::Domain(s.to_owned()))
    }

    /// The address when the host is an IP literal.
    pub fn ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Host::Ipv4(a) => Some((*a).into()),
            Host::Ipv6(a) => Some((*a).into()),
            Host::Domain(_) => None,
        }
    }

    /// Compares hosts the way RFC 3261 §19.1.4 does: names case-insensitively.
    pub fn same_as(&self, other: &Host) -> bool {
        match (self, other) {
            (Host::Domain(a), Host::Domain(b)) => a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.')),
            _ => self == other,
        }
    }
}

impl From<std::net::IpAddr> for Host {
    fn from(ip: std::net::IpAddr) -> Host {
        match ip {
            std::net::IpAddr::V4(a) => Host::Ipv4(a),
            std::net::IpAddr::V6(a) => Host::Ipv6(a),
        }
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Domain(d) => f.write_str(d),
            Host::Ipv4(a) => write!(f, "{a}"),
            Host::Ipv6(a) => write!(f, "[{a}]"),
        }
    }
}

impl TelUri {
    fn parse_rest(rest: &str) -> Result<TelUri, UriError> {
        let (number, mut r) = take_while(rest, |b| b != b';');
        let global = number.starts_with('+');
        let digits = number.strip_prefix('+').unwrap_or(number);
        let number_ok = digits.bytes().any(|b| b.is_ascii_hexdigit() || b == b'*' || b == b'#')
            && digits.bytes().all(|b| {
                b.is_ascii_digit()
                    || matches!(b, b'-' | b'.' | b'(' | b')')
                    || (!global && (b.is_ascii_hexdigit() || b == b'*' || b == b'#'))
            });
        if !number_ok {
            return Err(UriError("invalid telephone number"));
        }
        let mut params = Params::default();
        while let Some(p) = r.strip_prefix(';') {
            let (param, after) = take_while(p, |b| b != b';');
            let (name, value) = match param.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (param, None),
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(UriError("invalid tel URI parameter"));
            }
            if let Some(v) = value
                && (v.is_empty() || !v.bytes().all(|b| is_param_char(b) || b == b'@' || b == b'=' || b == b','))
            {
                return Err(UriError("invalid tel URI parameter value"));
            }
            params.0.push((name.to_owned(), value.map(str::to_owned)));
            r = after;
        }
        Ok(TelUri { number: number.to_owned(), params })
    }

    /// The digits of the number (and a leading `+`), visual separators removed.
    pub fn digits(&self) -> String {
        self.number.chars().filter(|c| !matches!(c, '-' | '.' | '(' | ')')).collect()
    }
}

impl fmt::Display for TelUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tel:{}{}", self.number, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sip(s: &str) -> SipUri {
        SipUri::parse(s).unwrap()
    }

    #[test]
    fn sip_uri_components() {
        let u = sip("sips:alice:pw@[2001:db8::1]:5061;transport=tls;lr?Subject=hi&Priority=urgent");
        assert!(u.secure);
        assert_eq!(u.user.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("pw"));
        assert_eq!(u.host, Host::Ipv6("2001:db8::1".parse().unwrap()));
        assert_eq!(u.port, Some(5061));
        assert_eq!(u.param("TRANSPORT").unwrap().as_deref(), Some("tls"));
        assert!(u.is_loose_route());
        assert_eq!(u.header("priority").as_deref(), Some("urgent"));
        assert_eq!(u.to_string(), "sips:alice:pw@[2001:db8::1]:5061;transport=tls;lr?Subject=hi&Priority=urgent");
    }

    #[test]
    fn unusual_user_parts_from_rfc4475() {
        // §3.1.1.2: the user holds ';', '?', ',' and '/', the password ',' and '='.
        let u = sip(
            "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com",
        );
        assert_eq!(u.user.as_deref(), Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"));
        assert_eq!(u.password.as_deref(), Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"));
        assert_eq!(u.host, Host::Domain("example.com".into()));
        // §3.1.1.9: a ';' inside the user part is not a URI parameter.
        let u = sip("sip:user;par=u%40example.net@example.com");
        assert_eq!(u.user_decoded().as_deref(), Some("user;par=u@example.net"));
        assert!(u.params.is_empty());
    }

    #[test]
    fn escaped_parameters_are_compared_decoded() {
        let u = sip("sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
        assert_eq!(u.user_decoded().as_deref(), Some("caller"));
        assert!(u.is_loose_route());
        assert_eq!(u.param("name").unwrap().as_deref(), Some("value%41"));
        assert_eq!(u.to_string(), "sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31");
    }

    #[test]
    fn bad_sip_uris_are_rejected() {
        for bad in [
            "sip:",
            "sip:@example.com",
            "sip:user@",
            "sip:user@exa mple.com",
            "sip:user@example.com:99999",
            "sip:user@example.com;;lr",
            "sip:user@example.com?Route",
            "sip:us%zzer@example.com",
            "sip:user@192.0.2.999",
            "sip:user@[::1",
            "sip:user@example.com>",
        ] {
            assert!(SipUri::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn tel_and_other_schemes() {
        let Uri::Tel(t) = Uri::parse("tel:+1-201-555-0123;phone-context=example.com").unwrap() else {
            panic!("not tel")
        };
        assert_eq!(t.digits(), "+12015550123");
        assert_eq!(t.params.get("phone-context"), Some(Some("example.com")));
        let Uri::Other(o) = Uri::parse("soap.beep://192.0.2.103:3002").unwrap() else { panic!("not other") };
        assert_eq!(o.scheme, "soap.beep");
        assert_eq!(Uri::parse("nobodyKnowsThisScheme:totallyopaquecontent").unwrap().scheme(), "nobodyKnowsThisScheme");
        assert!(Uri::parse("no-colon").is_err());
        assert!(Uri::parse("1x:abc").is_err());
        assert!(Uri::parse("tel:").is_err());
    }
}
