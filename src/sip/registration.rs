//! Registration with the clinic's PBX (RFC 3261 §10): the REGISTER requests
//! of one account and what their responses mean.
//!
//! The operator's phone rings only while the PBX knows where it is, so the
//! binding is refreshed before it expires, a binding is asked for again at
//! once when the registrar says our address is not what we think (rport and
//! received, RFC 3581: we are behind NAT), digest challenges are answered
//! (MD5 or SHA-256, RFC 8760), a too-short interval is raised to the
//! registrar's Min-Expires, and the binding is removed on exit.
//!
//! [`Registration`] is pure: it builds requests (without Via, which the user
//! agent adds with the transport it sends on) and reads responses into an
//! [`Outcome`]; the user agent keeps the timers.

use std::net::SocketAddr;

use super::auth::{AuthError, DigestClient};
use super::headers::{Contacts, HeaderName, NameAddr};
use super::message::{Method, Request, Response};
use super::uri::Uri;

/// More challenges than this in a row for one registration means the server
/// keeps refusing what we send: stop instead of looping.
const MAX_CHALLENGES: u8 = 3;

/// What a response to a REGISTER means for the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A provisional response: wait for the final one.
    Pending,
    /// The binding holds for `expires` seconds. `reflexive` is our address as
    /// the registrar saw it (Via received/rport), when it reported one.
    Registered { expires: u32, reflexive: Option<SocketAddr> },
    /// The binding was removed (the answer to an Expires: 0 REGISTER).
    Unregistered,
    /// Send the REGISTER again now (after a challenge, or with a longer interval).
    Retry,
    /// The registrar refused; try again later.
    Failed { code: u16, reason: String },
    /// The registrar refused these credentials: trying again with them would
    /// only get the account locked by the PBX. Wait for new settings.
    Refused { code: u16, reason: String },
}

/// One account's registration state.
#[derive(Debug, Clone)]
pub struct Registration {
    /// The address of record (`"Name" <sip:user@domain>`), From and To.
    pub aor: NameAddr,
    /// The registrar's URI (Request-URI of every REGISTER).
    pub registrar: Uri,
    /// Where we can be reached (Contact), updated when NAT is discovered.
    pub contact: NameAddr,
    /// The interval we ask for, in seconds.
    pub expires: u32,
    call_id: String,
    from_tag: String,
    cseq: u32,
    auth: DigestClient,
    challenges_in_a_row: u8,
}

impl Registration {
    pub fn new(
        aor: NameAddr,
        registrar: Uri,
        contact: NameAddr,
        expires: u32,
        auth: DigestClient,
        call_id: String,
    ) -> Registration {
        Registration {
            aor,
            registrar,
            contact,
            expires,
            call_id,
            from_tag: super::new_tag(),
            cseq: 0,
            auth,
            challenges_in_a_row: 0,
        }
    }

    /// The next REGISTER asking for `expires` seconds (0 removes the binding),
    /// with credentials for every challenge met so far. The Call-ID stays the
    /// same for the account's whole life and the CSeq grows (RFC 3261 §10.2.4).
    pub fn request(&mut self, expires: u32) -> Request {
        self.cseq = self.cseq.wrapping_add(1);
        let mut req = Request::new(Method::Register, self.registrar.clone());
        req.headers.push(HeaderName::MaxForwards, "70");
        let mut from = self.aor.clone();
        from.set_tag(&self.from_tag);
        req.headers.push_typed(HeaderName::From, &from);
        req.headers.push_typed(HeaderName::To, &self.aor);
        req.headers.push(HeaderName::CallId, self.call_id.clone());
        req.headers.push(HeaderName::CSeq, format!("{} REGISTER", self.cseq));
        let mut contact = self.contact.clone();
        contact.params.set("expires", Some(&expires.to_string()));
        req.headers.push_typed(HeaderName::Contact, &contact);
        req.headers.push(HeaderName::Expires, expires.to_string());
        self.auth.authorize_request(&mut req);
        req
    }

    /// Reads the response to `sent`.
    pub fn on_response(&mut self, sent: &Request, resp: &Response) -> Outcome {
        let asked = sent.headers.expires().ok().flatten().unwrap_or(self.expires);
        match resp.status {
            100..=199 => Outcome::Pending,
            200..=299 => {
                self.challenges_in_a_row = 0;
                if asked == 0 {
                    return Outcome::Unregistered;
                }
                let reflexive = resp.headers.top_via().ok().and_then(|v| v.reflexive_addr());
                Outcome::Registered { expires: self.granted(resp).unwrap_or(asked), reflexive }
            }
            401 | 407 => {
                self.challenges_in_a_row = self.challenges_in_a_row.saturating_add(1);
                if self.challenges_in_a_row > MAX_CHALLENGES {
                    self.challenges_in_a_row = 0;
                    return Outcome::Failed {
                        code: resp.status,
                        reason: "the registrar keeps challenging the credentials".to_owned(),
                    };
                }
                match self.auth.on_challenge(sent, resp) {
                    Ok(_) => Outcome::Retry,
                    Err(e @ AuthError::Rejected { .. }) => {
                        self.challenges_in_a_row = 0;
                        Outcome::Refused { code: 403, reason: e.to_string() }
                    }
                    Err(e) => {
                        self.challenges_in_a_row = 0;
                        Outcome::Failed { code: resp.status, reason: e.to_string() }
                    }
                }
            }
            423 => match resp.headers.min_expires() {
                Ok(Some(min)) if min > self.expires => {
                    self.expires = min;
                    Outcome::Retry
                }
                _ => Outcome::Failed { code: 423, reason: "interval too brief, without a usable Min-Expires".into() },
            },
            code => Outcome::Failed { code, reason: resp.reason.clone() },
        }
    }

    /// The interval the registrar granted our contact: its `expires`
    /// parameter in the 2xx's Contact list, else the Expires header.
    fn granted(&self, resp: &Response) -> Option<u32> {
        if let Ok(Contacts::Addresses(list)) = resp.headers.contacts() {
            let ours = list.iter().find(|c| same_contact(&c.uri, &self.contact.uri));
            if let Some(e) = ours.and_then(NameAddr::expires) {
                return Some(e);
            }
        }
        resp.headers.expires().ok().flatten()
    }

    /// How long to wait before refreshing a binding granted for `expires`
    /// seconds: well before it lapses, so one lost request can be retried.
    pub fn refresh_after(expires: u32) -> std::time::Duration {
        let secs = if expires <= 60 { expires / 2 } else { expires.saturating_sub(expires.min(600) / 4).max(30) };
        std::time::Duration::from_secs(u64::from(secs.max(1)))
    }
}

/// Registrars echo our Contact with their own parameter order and case; the
/// user, host and port identify it.
fn same_contact(a: &Uri, b: &Uri) -> bool {
    match (a.as_sip(), b.as_sip()) {
        (Some(a), Some(b)) => a.user == b.user && a.host.same_as(&b.host) && a.port_or_default() == b.port_or_default(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Message;

    fn registration() -> Registration {
        Registration::new(
            NameAddr::parse("\"Reception\" <sip:100@127.0.0.1:5062>").unwrap(),
            Uri::parse("sip:127.0.0.1:5062").unwrap(),
            NameAddr::parse("<sip:100@127.0.0.1:40000>").unwrap(),
            60,
            DigestClient::new("100", "secret100"),
            "reg-1@127.0.0.1".into(),
        )
    }

    fn response_to(req: &Request, status: u16, extra: &str) -> Response {
        let mut text = format!("SIP/2.0 {status} Whatever\r\n");
        text.push_str("Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bKx;rport=40000;received=127.0.0.1\r\n");
        for name in [HeaderName::From, HeaderName::To, HeaderName::CallId, HeaderName::CSeq] {
            text.push_str(&format!("{}: {}\r\n", name.as_str(), req.headers.get(&name).unwrap()));
        }
        text.push_str(extra);
        text.push_str("Content-Length: 0\r\n\r\n");
        match Message::parse(text.as_bytes()).unwrap() {
            Message::Response(r) => r,
            Message::Request(_) => unreachable!(),
        }
    }

    #[test]
    fn challenge_then_success_with_the_granted_interval() {
        let mut reg = registration();
        let first = reg.request(60);
        assert_eq!(first.headers.cseq().unwrap().seq, 1);
        assert_eq!(first.headers.get(&HeaderName::Contact), Some("<sip:100@127.0.0.1:40000>;expires=60"));
        assert_eq!(first.headers.get(&HeaderName::Authorization), None);
        let challenge = response_to(
            &first,
            401,
            "WWW-Authenticate: Digest realm=\"127.0.0.1\", nonce=\"abc\", qop=\"auth\", algorithm=SHA-256\r\n",
        );
        assert_eq!(reg.on_response(&first, &challenge), Outcome::Retry);
        let second = reg.request(60);
        assert_eq!(second.headers.cseq().unwrap().seq, 2);
        assert_eq!(second.headers.call_id().unwrap(), first.headers.call_id().unwrap());
        let auth = second.headers.get(&HeaderName::Authorization).unwrap();
        assert!(auth.contains("algorithm=SHA-256") && auth.contains("username=\"100\""), "{auth}");
        let ok = response_to(&second, 200, "Contact: <sip:100@127.0.0.1:40000>;expires=45\r\n");
        let expected = Outcome::Registered { expires: 45, reflexive: Some("127.0.0.1:40000".parse().unwrap()) };
        assert_eq!(reg.on_response(&second, &ok), expected);
        // The same nonce is reused on refresh, with the next count.
        let refresh = reg.request(60);
        assert!(refresh.headers.get(&HeaderName::Authorization).unwrap().contains("nc=00000002"));
    }

    #[test]
    fn wrong_password_and_brief_interval_and_unregister() {
        let mut reg = registration();
        let first = reg.request(60);
        let challenge =
            response_to(&first, 401, "WWW-Authenticate: Digest realm=\"r\", nonce=\"n1\", algorithm=MD5\r\n");
        assert_eq!(reg.on_response(&first, &challenge), Outcome::Retry);
        let second = reg.request(60);
        let again = response_to(&second, 401, "WWW-Authenticate: Digest realm=\"r\", nonce=\"n2\", algorithm=MD5\r\n");
        assert!(
            matches!(reg.on_response(&second, &again), Outcome::Refused { code: 403, reason } if reason.contains("wrong"))
        );

        let third = reg.request(60);
        let brief = response_to(&third, 423, "Min-Expires: 120\r\n");
        assert_eq!(reg.on_response(&third, &brief), Outcome::Retry);
        assert_eq!(reg.expires, 120);

        let bye = reg.request(0);
        assert_eq!(bye.headers.expires().unwrap(), Some(0));
        assert_eq!(reg.on_response(&bye, &response_to(&bye, 200, "")), Outcome::Unregistered);
        let busy = response_to(&bye, 503, "");
        assert!(matches!(reg.on_response(&bye, &busy), Outcome::Failed { code: 503, .. }));
    }

    #[test]
    fn refresh_comes_well_before_expiry() {
        assert_eq!(Registration::refresh_after(60).as_secs(), 30);
        assert_eq!(Registration::refresh_after(3600).as_secs(), 3450);
        assert_eq!(Registration::refresh_after(0).as_secs(), 1);
        assert!(Registration::refresh_after(300).as_secs() < 300);
    }
}
