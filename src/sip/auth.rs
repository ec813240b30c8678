//! Digest authentication as a client (UAC): RFC 2617, RFC 7616 and their
//! SIP profile RFC 8760 — MD5, SHA-256 and SHA-512-256, each also as
//! `-sess`, qop `auth` / `auth-int` / none, nonce counting, stale nonces,
//! opaque, userhash, and several challenges (per realm, per proxy).
//!
//! [`DigestClient`] keeps one session per (WWW/Proxy, realm): the chosen
//! challenge, the client nonce and the nonce count. The user agent:
//!
//! 1. sends a request; on 401/407 calls [`DigestClient::on_challenge`] with
//!    the request it sent and the response. `Ok(Retry { stale })` means
//!    "send it again with a new CSeq"; `Err(AuthError::Rejected { .. })`
//!    means the server refused these credentials (stop and tell the user).
//!    A new nonce without `stale=true` in answer to our credentials is taken
//!    for a lapsed nonce once (servers that never send `stale` do this; PJSIP
//!    reads it so too): the retry carries the same credentials on the new
//!    nonce, and only a second refusal is a wrong password. Once a request
//!    passes, [`DigestClient::accepted`] gives that benefit of the doubt back;
//! 2. before sending any request (the retry and later ones, such as a
//!    re-REGISTER), adds [`DigestClient::authorize`]'s header lines. Each call
//!    counts one use of the nonce (`nc`), so a re-REGISTER on the same nonce
//!    goes out without another challenge round.
//!
//! Two bugs DESIGN.md found in ezk-sip-auth are covered by tests here: the
//! `-sess` HA1 is `H(H(user:realm:password):nonce:cnonce)`, and every request
//! (auth-int included) gets the next nonce count.

use std::fmt;

use md5::Md5;
use sha2::{Digest, Sha256, Sha512_256};

use super::headers::{HeaderName, Headers};
use super::message::{Method, Request, Response};
use super::random_token;
use super::syntax::{is_token_char, parse_quoted, split_list, take_while, trim_ws, trim_ws_start, write_quoted};
use super::uri::Uri;

/// What went wrong with authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("malformed {header}: {reason}")]
    Malformed { header: &'static str, reason: &'static str },
    #[error("the server offers no digest challenge this client supports (offered: {offered})")]
    NoSupportedChallenge { offered: String },
    #[error("the server rejected the credentials for realm \"{realm}\" (wrong user name or password)")]
    Rejected { realm: String },
    #[error("a {status} response without a challenge")]
    NoChallenge { status: u16 },
}

/// One challenge or credentials value: an auth scheme and its parameters
/// (names lower-cased, values unquoted), or a token68.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthValue {
    pub scheme: String,
    pub params: Vec<(String, String)>,
    pub token68: Option<String>,
}

impl AuthValue {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Parses a WWW-Authenticate, Proxy-Authenticate, Authorization or
/// Proxy-Authorization value, which may hold several challenges
/// (`Digest realm="a", nonce="1", Digest realm="a", nonce="2", algorithm=SHA-256`).
pub fn parse_auth_values(value: &str) -> Result<Vec<AuthValue>, &'static str> {
    let mut out: Vec<AuthValue> = Vec::new();
    for item in split_list(value) {
        if item.is_empty() {
            continue; // RFC 7235 allows empty list elements
        }
        let (first, rest) = take_while(item, is_token_char);
        if first.is_empty() {
            return Err("expected an auth scheme or parameter");
        }
        let after = trim_ws_start(rest);
        if after.starts_with('=') {
            let current = out.last_mut().ok_or("parameter before any auth scheme")?;
            current.params.push(parse_auth_param(item)?);
            continue;
        }
        if after.len() == rest.len() && !after.is_empty() {
            return Err("expected white space after the auth scheme");
        }
        let mut value = AuthValue { scheme: first.to_owned(), params: Vec::new(), token68: None };
        if !after.is_empty() {
            let (name, r) = take_while(after, is_token_char);
            if trim_ws_start(r).starts_with('=')
                && !name.is_empty()
                && !trim_ws_start(r).trim_start_matches('=').is_empty()
            {
                value.params.push(parse_auth_param(after)?);
            } else if after.bytes().all(|b| is_token_char(b) || b == b'/' || b == b'=') {
                value.token68 = Some(after.to_owned());
            } else {
                return Err("malformed auth parameter");
            }
        }
        out.push(value);
    }
    Ok(out)
}

fn parse_auth_param(s: &str) -> Result<(String, String), &'static str> {
    let (name, r) = take_while(trim_ws(s), is_token_char);
    let r = trim_ws_start(r).strip_prefix('=').ok_or("expected name=value")?;
    let r = trim_ws_start(r);
    let value = if r.starts_with('"') {
        let (v, rest) = parse_quoted(r)?;
        if !trim_ws(rest).is_empty() {
            return Err("text after a quoted parameter value");
        }
        v
    } else {
        let (v, rest) = take_while(r, |b| is_token_char(b) || b == b'/' || b == b':');
        if v.is_empty() || !trim_ws(rest).is_empty() {
            return Err("malformed parameter value");
        }
        v.to_owned()
    };
    Ok((name.to_ascii_lowercase(), value))
}

/// The challenges in every line of `name` (WWW-Authenticate or Proxy-Authenticate).
pub fn challenges(headers: &Headers, name: &HeaderName) -> Result<Vec<AuthValue>, AuthError> {
    let mut out = Vec::new();
    for line in headers.get_all(name) {
        let header = if *name == HeaderName::ProxyAuthenticate { "Proxy-Authenticate" } else { "WWW-Authenticate" };
        out.extend(parse_auth_values(line).map_err(|reason| AuthError::Malformed { header, reason })?);
    }
    Ok(out)
}

/// Digest hash algorithms (RFC 7616 §6.1; RFC 8760 for SIP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
    Sha512_256,
    Sha512_256Sess,
}

impl Algorithm {
    /// The algorithm named in a challenge (case-insensitive); absent means MD5.
    pub fn parse(name: &str) -> Option<Algorithm> {
        const ALL: [(Algorithm, &str); 6] = [
            (Algorithm::Md5, "MD5"),
            (Algorithm::Md5Sess, "MD5-sess"),
            (Algorithm::Sha256, "SHA-256"),
            (Algorithm::Sha256Sess, "SHA-256-sess"),
            (Algorithm::Sha512_256, "SHA-512-256"),
            (Algorithm::Sha512_256Sess, "SHA-512-256-sess"),
        ];
        ALL.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)).map(|(a, _)| *a)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
            Algorithm::Sha512_256 => "SHA-512-256",
            Algorithm::Sha512_256Sess => "SHA-512-256-sess",
        }
    }

    /// Preference: the stronger hash wins (RFC 8760 §2.4 lets local policy choose).
    fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => 1,
            Algorithm::Sha256 | Algorithm::Sha256Sess => 2,
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => 3,
        }
    }

    pub fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess | Algorithm::Sha512_256Sess)
    }

    /// The hash of `data` in lower-case hex.
    pub fn hash(self, data: &[u8]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(data)),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(data)),
            Algorithm::Sha512_256 | Algorithm::Sha512_256Sess => hex(&Sha512_256::digest(data)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Quality of protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qop {
    Auth,
    AuthInt,
}

impl Qop {
    pub fn as_str(self) -> &'static str {
        match self {
            Qop::Auth => "auth",
            Qop::AuthInt => "auth-int",
        }
    }
}

/// A Digest challenge this client can answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    /// From Proxy-Authenticate (answered with Proxy-Authorization).
    pub proxy: bool,
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The qop values offered; empty for an RFC 2069 challenge.
    pub qop: Vec<Qop>,
    pub stale: bool,
    pub userhash: bool,
}

impl DigestChallenge {
    /// Reads a Digest challenge; `None` when it is another scheme or uses an
    /// algorithm or qop this client does not implement.
    pub fn from_value(v: &AuthValue, proxy: bool) -> Result<Option<DigestChallenge>, AuthError> {
        let header = if proxy { "Proxy-Authenticate" } else { "WWW-Authenticate" };
        if !v.scheme.eq_ignore_ascii_case("Digest") {
            return Ok(None);
        }
        let realm =
            v.param("realm").ok_or(AuthError::Malformed { header, reason: "Digest challenge without realm" })?;
        let nonce =
            v.param("nonce").ok_or(AuthError::Malformed { header, reason: "Digest challenge without nonce" })?;
        let Some(algorithm) = Algorithm::parse(v.param("algorithm").unwrap_or("MD5")) else { return Ok(None) };
        let mut qop = Vec::new();
        if let Some(list) = v.param("qop") {
            for q in list.split(',').map(trim_ws) {
                match q.to_ascii_lowercase().as_str() {
                    "auth" => qop.push(Qop::Auth),
                    "auth-int" => qop.push(Qop::AuthInt),
                    _ => {}
                }
            }
            if qop.is_empty() {
                return Ok(None);
            }
        }
        let flag = |name: &str| v.param(name).is_some_and(|s| s.eq_ignore_ascii_case("true"));
        Ok(Some(DigestChallenge {
            proxy,
            realm: realm.to_owned(),
            nonce: nonce.to_owned(),
            opaque: v.param("opaque").map(str::to_owned),
            algorithm,
            qop,
            stale: flag("stale"),
            userhash: flag("userhash"),
        }))
    }
}

/// The inputs of one digest response, exposed so the RFC test vectors can be checked.
#[derive(Debug, Clone)]
pub struct DigestInput<'a> {
    pub algorithm: Algorithm,
    pub username: &'a str,
    pub password: &'a str,
    pub realm: &'a str,
    pub nonce: &'a str,
    pub cnonce: &'a str,
    pub nc: u32,
    pub qop: Option<Qop>,
    pub method: &'a str,
    pub uri: &'a str,
    pub body: &'a [u8],
}

/// RFC 7616 §3.4.1: the `response` value.
pub fn digest_response(i: &DigestInput<'_>) -> String {
    let h = |s: &str| i.algorithm.hash(s.as_bytes());
    let mut ha1 = h(&format!("{}:{}:{}", i.username, i.realm, i.password));
    if i.algorithm.is_sess() {
        // RFC 7616 §3.4.2: A1 = H(user:realm:pass):nonce:cnonce, and HA1 = H(A1).
        ha1 = h(&format!("{ha1}:{}:{}", i.nonce, i.cnonce));
    }
    let ha2 = match i.qop {
        Some(Qop::AuthInt) => h(&format!("{}:{}:{}", i.method, i.uri, i.algorithm.hash(i.body))),
        _ => h(&format!("{}:{}", i.method, i.uri)),
    };
    match i.qop {
        Some(q) => h(&format!("{ha1}:{}:{:08x}:{}:{}:{ha2}", i.nonce, i.nc, i.cnonce, q.as_str())),
        None => h(&format!("{ha1}:{}:{ha2}", i.nonce)),
    }
}

#[derive(Debug, Clone)]
struct Session {
    challenge: DigestChallenge,
    cnonce: String,
    /// Uses of the current nonce so far.
    nc: u32,
    /// A new nonce without `stale=true` was already taken for a lapsed one
    /// since the last accepted request: the next refusal is believed.
    doubted_refusal: bool,
}

/// What [`DigestClient::on_challenge`] tells the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// The server only said the nonce had expired (stale=true), or gave a
    /// new nonce that is taken for that once: a retry with the new nonce is
    /// expected to pass.
    pub stale: bool,
}

/// Digest credentials and the state of their use with one server (see module docs).
#[derive(Clone)]
pub struct DigestClient {
    username: String,
    password: String,
    sessions: Vec<Session>,
}

impl fmt::Debug for DigestClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        f.debug_struct("DigestClient").field("username", &self.username).field("realms", &self.sessions.len()).finish()
    }
}

impl DigestClient {
    pub fn new(username: &str, password: &str) -> DigestClient {
        DigestClient { username: username.to_owned(), password: password.to_owned(), sessions: Vec::new() }
    }

    /// Takes the challenges of a 401/407 response to `sent` (the request as
    /// it was sent, so we know which credentials it already carried).
    pub fn on_challenge(&mut self, sent: &Request, resp: &Response) -> Result<Retry, AuthError> {
        let mut offered = Vec::new();
        let mut chosen: Vec<DigestChallenge> = Vec::new();
        for (name, proxy) in [(HeaderName::WwwAuthenticate, false), (HeaderName::ProxyAuthenticate, true)] {
            for value in challenges(&resp.headers, &name)? {
                offered.push(match value.param("algorithm") {
                    Some(a) => format!("{} {a}", value.scheme),
                    None => value.scheme.clone(),
                });
                let Some(c) = DigestChallenge::from_value(&value, proxy)? else { continue };
                match chosen.iter_mut().find(|k| k.proxy == c.proxy && k.realm == c.realm) {
                    Some(k) if c.algorithm.strength() > k.algorithm.strength() => *k = c,
                    Some(_) => {}
                    None => chosen.push(c),
                }
            }
        }
        if chosen.is_empty() {
            if offered.is_empty() {
                return Err(AuthError::NoChallenge { status: resp.status });
            }
            return Err(AuthError::NoSupportedChallenge { offered: offered.join(", ") });
        }
        let mut stale = false;
        for c in chosen {
            let known = self.sessions.iter_mut().find(|s| s.challenge.proxy == c.proxy && s.challenge.realm == c.realm);
            let doubted = known.as_ref().is_some_and(|s| s.doubted_refusal);
            let mut doubting = false;
            if let Some(answered_nonce) = answered_nonce(sent, c.proxy, &c.realm)
                && !c.stale
            {
                // The same nonce again, or a second new one: the credentials are wrong.
                if answered_nonce == c.nonce || doubted {
                    return Err(AuthError::Rejected { realm: c.realm });
                }
                doubting = true;
            }
            stale |= c.stale || doubting;
            let session = |c: DigestChallenge| Session {
                cnonce: random_token(16),
                nc: 0,
                challenge: c,
                doubted_refusal: doubted || doubting,
            };
            match known {
                // The same nonce again: its count goes on (a repeated nc looks like a replay).
                Some(s) if s.challenge.nonce == c.nonce && s.challenge.algorithm == c.algorithm => s.challenge = c,
                // A new nonce: a new client nonce and the count starts again.
                Some(s) => *s = session(c),
                None => self.sessions.push(session(c)),
            }
        }
        Ok(Retry { stale })
    }

    /// The Authorization / Proxy-Authorization lines for a request, one per
    /// known realm; each call uses the next nonce count.
    pub fn authorize(&mut self, method: &Method, uri: &Uri, body: &[u8]) -> Vec<(HeaderName, String)> {
        let uri = uri.to_string();
        let mut out = Vec::with_capacity(self.sessions.len());
        for s in &mut self.sessions {
            s.nc = s.nc.wrapping_add(1);
            let c = &s.challenge;
            // auth is preferred; auth-int (body hashed) when it is the only qop offered.
            let qop = if c.qop.contains(&Qop::Auth) { Some(Qop::Auth) } else { c.qop.first().copied() };
            let response = digest_response(&DigestInput {
                algorithm: c.algorithm,
                username: &self.username,
                password: &self.password,
                realm: &c.realm,
                nonce: &c.nonce,
                cnonce: &s.cnonce,
                nc: s.nc,
                qop,
                method: method.as_str(),
                uri: &uri,
                body,
            });
            let username = if c.userhash {
                c.algorithm.hash(format!("{}:{}", self.username, c.realm).as_bytes())
            } else {
                self.username.clone()
            };
            let mut v = String::from("Digest username=");
            let _ = write_quoted(&mut v, &username);
            v.push_str(", realm=");
            let _ = write_quoted(&mut v, &c.realm);
            v.push_str(", nonce=");
            let _ = write_quoted(&mut v, &c.nonce);
            v.push_str(", uri=");
            let _ = write_quoted(&mut v, &uri);
            v.push_str(&format!(", response=\"{response}\", algorithm={}", c.algorithm.as_str()));
            if qop.is_some() || c.algorithm.is_sess() {
                v.push_str(&format!(", cnonce=\"{}\"", s.cnonce));
            }
            if let Some(opaque) = &c.opaque {
                v.push_str(", opaque=");
                let _ = write_quoted(&mut v, opaque);
            }
            if let Some(q) = qop {
                v.push_str(&format!(", qop={}, nc={:08x}", q.as_str(), s.nc));
            }
            if c.userhash {
                v.push_str(", userhash=true");
            }
            let name = if c.proxy { HeaderName::ProxyAuthorization } else { HeaderName::Authorization };
            out.push((name, v));
        }
        out
    }

    /// Adds [`DigestClient::authorize`]'s lines to `req` (replacing any it carried).
    pub fn authorize_request(&mut self, req: &mut Request) {
        req.headers.remove(&HeaderName::Authorization);
        req.headers.remove(&HeaderName::ProxyAuthorization);
        for (name, value) in self.authorize(&req.method, &req.uri, &req.body) {
            req.headers.push(name, value);
        }
    }

    /// The server took a request with these credentials: a later new nonce
    /// without `stale=true` is again taken for a lapsed one first.
    pub fn accepted(&mut self) {
        for s in &mut self.sessions {
            s.doubted_refusal = false;
        }
    }

    /// Forgets all challenges (for example when the account changes server).
    pub fn clear(&mut self) {
        self.sessions.clear();
    }
}

/// The nonce of the digest credentials `sent` carried for `realm`, if it carried any.
fn answered_nonce(sent: &Request, proxy: bool, realm: &str) -> Option<String> {
    let name = if proxy { HeaderName::ProxyAuthorization } else { HeaderName::Authorization };
    sent.headers
        .get_all(&name)
        .filter_map(|line| parse_auth_values(line).ok())
        .flatten()
        .filter(|v| v.scheme.eq_ignore_ascii_case("Digest") && v.param("realm") == Some(realm))
        .map(|v| v.param("nonce").unwrap_or_default().to_owned())
        .next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Message;

    /// RFC 2617 §3.5.
    #[test]
    fn rfc2617_md5_vector() {
        let r = digest_response(&DigestInput {
            algorithm: Algorithm::Md5,
            username: "Mufasa",
            password: "Circle Of Life",
            realm: "testrealm@host.com",
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            cnonce: "0a4f113b",
            nc: 1,
            qop: Some(Qop::Auth),
            method: "GET",
            uri: "/dir/index.html",
            body: b"",
        });
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
    }

    /// RFC 7616 §3.9.1, both the MD5 and the SHA-256 response.
    #[test]
    fn rfc7616_vectors() {
        let mut input = DigestInput {
            algorithm: Algorithm::Md5,
            username: "Mufasa",
            password: "Circle of Life",
            realm: "http-auth@example.org",
            nonce: "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            nc: 1,
            qop: Some(Qop::Auth),
            method: "GET",
            uri: "/dir/index.html",
            body: b"",
        };
        assert_eq!(digest_response(&input), "8ca523f5e9506fed4657c9700eebdbec");
        input.algorithm = Algorithm::Sha256;
        assert_eq!(digest_response(&input), "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
    }

    /// -sess: HA1 = H(H(user:realm:pass):nonce:cnonce) — re-hashed, which ezk-sip-auth does not do.
    #[test]
    fn sess_variants_rehash_ha1() {
        let input = DigestInput {
            algorithm: Algorithm::Sha256Sess,
            username: "u",
            password: "p",
            realm: "r",
            nonce: "n",
            cnonce: "c",
            nc: 1,
            qop: Some(Qop::Auth),
            method: "REGISTER",
            uri: "sip:r",
            body: b"",
        };
        let h = |s: &str| Algorithm::Sha256.hash(s.as_bytes());
        let ha1 = h(&format!("{}:n:c", h("u:r:p")));
        let expected = h(&format!("{ha1}:n:00000001:c:auth:{}", h("REGISTER:sip:r")));
        assert_eq!(digest_response(&input), expected);
        let not_rehashed = h(&format!("{}:n:c:n:00000001:c:auth:{}", h("u:r:p"), h("REGISTER:sip:r")));
        assert_ne!(digest_response(&input), not_rehashed);
        // auth-int hashes the body into HA2.
        let int = DigestInput { algorithm: Algorithm::Md5, qop: Some(Qop::AuthInt), body: b"v=0\r\n", ..input };
        let m = |s: &str| Algorithm::Md5.hash(s.as_bytes());
        let ha2 = m(&format!("REGISTER:sip:r:{}", m("v=0\r\n")));
        assert_eq!(digest_response(&int), m(&format!("{}:n:00000001:c:auth-int:{ha2}", m("u:r:p"))));
        // RFC 2069 (no qop): H(HA1:nonce:HA2).
        let old = DigestInput { algorithm: Algorithm::Md5, qop: None, ..input };
        assert_eq!(digest_response(&old), m(&format!("{}:n:{}", m("u:r:p"), m("REGISTER:sip:r"))));
    }

    #[test]
    fn parses_several_challenges_in_one_header() {
        let v = parse_auth_values(
            "Digest realm=\"atlanta.com\", qop=\"auth,auth-int\", nonce=\"a\", algorithm=SHA-256, \
             Digest realm=\"atlanta.com\",nonce=\"b\" , opaque=\"x,y\", Basic realm=\"z\", Negotiate abc123==",
        )
        .unwrap();
        assert_eq!(v.len(), 4);
        assert_eq!(v[0].param("qop"), Some("auth,auth-int"));
        assert_eq!(v[0].param("ALGORITHM"), Some("SHA-256"));
        assert_eq!(v[1].param("opaque"), Some("x,y"));
        assert_eq!(v[2].scheme, "Basic");
        assert_eq!(v[3].token68.as_deref(), Some("abc123=="));
        assert!(parse_auth_values("realm=\"x\"").is_err());
        assert!(parse_auth_values("Digest realm=\"x").is_err());
        // RFC 4475 §3.3.7: an unknown scheme still parses.
        let v = parse_auth_values("NoOneKnowsThisScheme opaque-data=here").unwrap();
        assert_eq!((v[0].scheme.as_str(), v[0].param("opaque-data")), ("NoOneKnowsThisScheme", Some("here")));
    }

    fn register() -> Request {
        let text = "REGISTER sip:127.0.0.1:5062 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
            From: <sip:100@127.0.0.1>;tag=a\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n\
            Content-Length: 0\r\n\r\n";
        match Message::parse(text.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn challenge(lines: &[(&str, &str)]) -> Response {
        let mut r = Response::new(401);
        for (name, value) in lines {
            r.headers.push(HeaderName::parse(name), *value);
        }
        r
    }

    fn params(line: &str) -> AuthValue {
        parse_auth_values(line).unwrap().remove(0)
    }

    #[test]
    fn client_prefers_sha256_and_counts_nonces() {
        let mut client = DigestClient::new("100", "secret100");
        let sent = register();
        let resp = challenge(&[
            ("WWW-Authenticate", "Digest realm=\"pbx\", nonce=\"n1\", qop=\"auth-int,auth\", algorithm=MD5"),
            (
                "WWW-Authenticate",
                "Digest realm=\"pbx\", nonce=\"n1\", qop=\"auth-int,auth\", algorithm=SHA-256, opaque=\"op\"",
            ),
        ]);
        assert_eq!(client.on_challenge(&sent, &resp), Ok(Retry { stale: false }));
        let mut retry = sent.clone();
        client.authorize_request(&mut retry);
        let a = params(retry.headers.get(&HeaderName::Authorization).unwrap());
        assert_eq!(a.param("algorithm"), Some("SHA-256"));
        assert_eq!((a.param("qop"), a.param("nc"), a.param("opaque")), (Some("auth"), Some("00000001"), Some("op")));
        assert_eq!(a.param("uri"), Some("sip:127.0.0.1:5062"));
        let expected = digest_response(&DigestInput {
            algorithm: Algorithm::Sha256,
            username: "100",
            password: "secret100",
            realm: "pbx",
            nonce: "n1",
            cnonce: a.param("cnonce").unwrap(),
            nc: 1,
            qop: Some(Qop::Auth),
            method: "REGISTER",
            uri: "sip:127.0.0.1:5062",
            body: b"",
        });
        assert_eq!(a.param("response"), Some(expected.as_str()));
        // The next request on the same nonce counts up.
        client.authorize_request(&mut retry);
        let b = params(retry.headers.get(&HeaderName::Authorization).unwrap());
        assert_eq!(b.param("nc"), Some("00000002"));
        assert_eq!(retry.headers.count(&HeaderName::Authorization), 1);

        // The same nonce challenged again (stale): its count goes on, same client nonce.
        let same_nonce = challenge(&[(
            "WWW-Authenticate",
            "Digest realm=\"pbx\", nonce=\"n1\", qop=\"auth\", algorithm=SHA-256, stale=true",
        )]);
        client.on_challenge(&sent, &same_nonce).unwrap();
        client.authorize_request(&mut retry);
        let same = params(retry.headers.get(&HeaderName::Authorization).unwrap());
        assert_eq!((same.param("nc"), same.param("cnonce")), (Some("00000003"), a.param("cnonce")));

        // A new nonce without stale=true: taken for a lapsed one, once.
        let changed = challenge(&[("WWW-Authenticate", "Digest realm=\"pbx\", nonce=\"n2\", qop=\"auth\"")]);
        assert_eq!(client.on_challenge(&retry, &changed), Ok(Retry { stale: true }));
        client.authorize_request(&mut retry);
        // Refused again with yet another nonce: the credentials are wrong.
        let again = challenge(&[("WWW-Authenticate", "Digest realm=\"pbx\", nonce=\"n4\", qop=\"auth\"")]);
        assert_eq!(client.on_challenge(&retry, &again), Err(AuthError::Rejected { realm: "pbx".into() }));
        // The nonce expired: stale=true, retry with count reset on the new nonce.
        let stale = challenge(&[("WWW-Authenticate", "Digest realm=\"pbx\", nonce=\"n3\", qop=\"auth\", stale=TRUE")]);
        assert_eq!(client.on_challenge(&retry, &stale), Ok(Retry { stale: true }));
        client.authorize_request(&mut retry);
        let c = params(retry.headers.get(&HeaderName::Authorization).unwrap());
        assert_eq!(
            (c.param("nonce"), c.param("nc"), c.param("algorithm")),
            (Some("n3"), Some("00000001"), Some("MD5"))
        );
    }

    /// The nonce a request's credentials carried.
    fn nonce_of(req: &Request, name: &HeaderName) -> String {
        params(req.headers.get(name).unwrap()).param("nonce").unwrap().to_owned()
    }

    #[test]
    fn a_new_nonce_without_stale_is_doubted_once_until_a_request_passes() {
        let rejected = Err(AuthError::Rejected { realm: "pbx".into() });
        let www = |nonce: &str| challenge(&[("WWW-Authenticate", &format!("Digest realm=\"pbx\", nonce=\"{nonce}\""))]);
        // The same nonce refused again is a plain refusal.
        let mut client = DigestClient::new("100", "wrong");
        let mut sent = register();
        assert_eq!(client.on_challenge(&sent, &www("a")), Ok(Retry { stale: false }));
        client.authorize_request(&mut sent);
        assert_eq!(client.on_challenge(&sent, &www("a")), rejected);

        let mut client = DigestClient::new("100", "secret100");
        let mut sent = register();
        assert_eq!(client.on_challenge(&sent, &www("a")), Ok(Retry { stale: false }));
        client.authorize_request(&mut sent);
        // Answered with a new nonce: retried once with the same credentials on it...
        assert_eq!(client.on_challenge(&sent, &www("b")), Ok(Retry { stale: true }));
        client.authorize_request(&mut sent);
        assert_eq!(nonce_of(&sent, &HeaderName::Authorization), "b");
        // ...and a second new nonce in a row is a wrong password.
        let mut doubted = client.clone();
        let mut again = sent.clone();
        assert_eq!(doubted.on_challenge(&again, &www("c")), rejected);
        // Once a request passed, a later new nonce is doubted again (a lapsed nonce on refresh).
        client.accepted();
        assert_eq!(client.on_challenge(&sent, &www("c")), Ok(Retry { stale: true }));
        client.authorize_request(&mut again);
        assert_eq!(nonce_of(&again, &HeaderName::Authorization), "c");
        assert_eq!(client.on_challenge(&again, &www("d")), rejected);

        // Proxy challenges are doubted the same way, apart from the registrar's.
        let mut client = DigestClient::new("100", "secret100");
        let mut sent = register();
        let proxy = |nonce: &str| {
            let mut r = challenge(&[("Proxy-Authenticate", &format!("Digest realm=\"edge\", nonce=\"{nonce}\""))]);
            r.status = 407;
            r
        };
        client.on_challenge(&sent, &proxy("p1")).unwrap();
        client.authorize_request(&mut sent);
        assert_eq!(client.on_challenge(&sent, &proxy("p2")), Ok(Retry { stale: true }));
        client.authorize_request(&mut sent);
        assert_eq!(nonce_of(&sent, &HeaderName::ProxyAuthorization), "p2");
        assert_eq!(client.on_challenge(&sent, &proxy("p3")), Err(AuthError::Rejected { realm: "edge".into() }));
    }

    #[test]
    fn auth_int_only_and_proxy_challenges() {
        let mut client = DigestClient::new("200", "pw");
        let mut sent = register();
        let mut resp = challenge(&[
            ("Proxy-Authenticate", "Digest realm=\"proxy\", nonce=\"p\", qop=\"auth-int\", algorithm=SHA-512-256-sess"),
            ("WWW-Authenticate", "Digest realm=\"pbx\", nonce=\"w\", algorithm=MD5-sess"),
        ]);
        resp.status = 407;
        client.on_challenge(&sent, &resp).unwrap();
        sent.body = b"hello".to_vec();
        client.authorize_request(&mut sent);
        let p = params(sent.headers.get(&HeaderName::ProxyAuthorization).unwrap());
        assert_eq!((p.param("qop"), p.param("algorithm")), (Some("auth-int"), Some("SHA-512-256-sess")));
        let expected = digest_response(&DigestInput {
            algorithm: Algorithm::Sha512_256Sess,
            username: "200",
            password: "pw",
            realm: "proxy",
            nonce: "p",
            cnonce: p.param("cnonce").unwrap(),
            nc: 1,
            qop: Some(Qop::AuthInt),
            method: "REGISTER",
            uri: "sip:127.0.0.1:5062",
            body: b"hello",
        });
        assert_eq!(p.param("response"), Some(expected.as_str()));
        // auth-int requests count nonces too.
        client.authorize_request(&mut sent);
        let p2 = params(sent.headers.get(&HeaderName::ProxyAuthorization).unwrap());
        assert_eq!(p2.param("nc"), Some("00000002"));
        // RFC 2069 challenge with -sess: no qop, but a cnonce for HA1.
        let w = params(sent.headers.get(&HeaderName::Authorization).unwrap());
        assert_eq!((w.param("qop"), w.param("nc")), (None, None));
        assert!(w.param("cnonce").is_some());
    }

    #[test]
    fn unsupported_and_missing_challenges_are_named() {
        let mut client = DigestClient::new("u", "p");
        let sent = register();
        let resp = challenge(&[("WWW-Authenticate", "Digest realm=\"r\", nonce=\"n\", algorithm=AKAv1-MD5")]);
        assert_eq!(
            client.on_challenge(&sent, &resp),
            Err(AuthError::NoSupportedChallenge { offered: "Digest AKAv1-MD5".into() })
        );
        assert_eq!(client.on_challenge(&sent, &challenge(&[])), Err(AuthError::NoChallenge { status: 401 }));
        let userhash = challenge(&[("WWW-Authenticate", "Digest realm=\"r\", nonce=\"n\", qop=auth, userhash=true")]);
        client.on_challenge(&sent, &userhash).unwrap();
        let (_, line) = client.authorize(&Method::Register, &sent.uri, b"").remove(0);
        let v = params(&line);
        assert_eq!(v.param("username"), Some(Algorithm::Md5.hash(b"u:r").as_str()));
        assert_eq!(v.param("userhash"), Some("true"));
        let shown = format!("{client:?}");
        assert!(shown.contains("\"u\"") && !shown.contains("\"p\""), "{shown}");
    }
}
