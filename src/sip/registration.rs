//! Registration with the clinic's PBX (RFC 3261 §10): the REGISTER requests
//! of one account and what their responses mean.
//!
//! The operator's phone rings only while the PBX knows where it is, so the
//! binding is refreshed before the interval the registrar granted runs out, a
//! binding is asked for again at once when the registrar says our address is
//! not what we think (rport and received, RFC 3581: we are behind NAT), digest
//! challenges are answered (MD5 or SHA-256, RFC 8760), a too-short interval is
//! raised to the registrar's Min-Expires for good (every later refresh asks for
//! it), a refusal or failure is retried later with growing waits ([`RetryPlan`]),
//! and the binding is removed on exit.
//!
//! [`Registration`] is pure: it builds requests (without Via, which the user
//! agent adds with the transport it sends on) and reads responses into an
//! [`Outcome`]; the user agent keeps the timers.

use std::net::SocketAddr;
use std::time::Duration;

use super::auth::{AuthError, DigestClient};
use super::headers::{Contacts, HeaderName, NameAddr};
use super::message::{Method, Request, Response};
use super::uri::Uri;

/// More challenges (or 423s) than this in a row for one registration means the
/// server keeps refusing what we send: stop instead of looping.
const MAX_IN_A_ROW: u8 = 3;

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
    /// The registrar refused or failed, or did not answer: register again
    /// after `retry_in`.
    Failed { code: u16, reason: String, retry_in: Duration },
    /// The registrar refused these credentials: trying again with them would
    /// only get the account locked by the PBX. Wait for new settings.
    Refused { code: u16, reason: String },
}

/// When to register again after failures in a row: waits that double from
/// `first` up to a ceiling, each taken at random between half and all of it
/// (RFC 5626 §4.5's shape), so that the phones of a clinic refused together
/// do not all come back in the same second.
///
/// A refusal (403, 404, any 4xx or 6xx but 408: about the account itself)
/// starts [`REFUSAL_SLOWER`] times slower than a failure (no answer, a 5xx:
/// the network or the server, which come back by themselves): somebody has to
/// change something, and a PBX that bans an address after a few refusals in
/// a few minutes (fail2ban) is not provoked. A Retry-After is obeyed (up to an hour).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPlan {
    /// The first wait after a failure.
    pub first: Duration,
}

/// A refusal's first wait, in failure's first waits (a minute with the default 5 s).
pub const REFUSAL_SLOWER: u32 = 12;
/// The longest wait after failures, in first waits (a minute with the default 5 s).
const FAILURE_LONGEST: u32 = 12;
/// The longest wait after refusals, in first waits (ten minutes with the default 5 s).
const REFUSAL_LONGEST: u32 = 120;
/// A Retry-After longer than this is not waited out in full.
const RETRY_AFTER_LONGEST: u32 = 3600;

impl Default for RetryPlan {
    fn default() -> RetryPlan {
        RetryPlan { first: Duration::from_secs(5) }
    }
}

impl RetryPlan {
    /// The wait after the `failures`-th failure in a row (1 for the first)
    /// answered `code`. `spread` (0 to 1) picks the wait between half and all
    /// of the plan's; `retry_after` is the server's Retry-After, in seconds.
    pub fn wait(&self, code: u16, failures: u32, retry_after: Option<u32>, spread: f64) -> Duration {
        let (start, longest) = if is_refusal(code) { (REFUSAL_SLOWER, REFUSAL_LONGEST) } else { (1, FAILURE_LONGEST) };
        let doubled = start.saturating_mul(1 << failures.saturating_sub(1).min(16));
        let planned = self.first.saturating_mul(doubled.min(longest));
        let spread = if spread.is_finite() { spread.clamp(0.0, 1.0) } else { 1.0 };
        let wait = planned.mul_f64(0.5 + 0.5 * spread);
        match retry_after {
            Some(s) => wait.max(Duration::from_secs(u64::from(s.min(RETRY_AFTER_LONGEST)))),
            None => wait,
        }
    }
}

/// A refusal concerns the account and will not pass by itself soon; a
/// failure (408: no answer, 5xx: the server in trouble) may.
pub fn is_refusal(code: u16) -> bool {
    matches!(code, 400..=499 | 600..=699) && code != 408
}

/// A number from 0 to 1, at random.
fn random_spread() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 1.0,
    }
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
    /// The interval we ask for, in seconds: the configured one, raised for
    /// good to the registrar's Min-Expires after a 423.
    pub expires: u32,
    /// When to try again after a failure.
    pub retry: RetryPlan,
    call_id: String,
    from_tag: String,
    cseq: u32,
    auth: DigestClient,
    challenges_in_a_row: u8,
    brief_in_a_row: u8,
    /// Failures since the last success.
    failures: u32,
    /// Where between half and all of a wait to retry (random; fixed in tests).
    spread: fn() -> f64,
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
            retry: RetryPlan::default(),
            call_id,
            from_tag: super::new_tag(),
            cseq: 0,
            auth,
            challenges_in_a_row: 0,
            brief_in_a_row: 0,
            failures: 0,
            spread: random_spread,
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

    /// The next REGISTER that asks for (or refreshes) the binding, for the
    /// interval this registrar accepts.
    pub fn refresh(&mut self) -> Request {
        self.request(self.expires)
    }

    /// Reads the response to `sent`.
    pub fn on_response(&mut self, sent: &Request, resp: &Response) -> Outcome {
        let asked = sent.headers.expires().ok().flatten().unwrap_or(self.expires);
        match resp.status {
            100..=199 => Outcome::Pending,
            200..=299 => {
                self.challenges_in_a_row = 0;
                self.brief_in_a_row = 0;
                self.auth.accepted();
                if asked == 0 {
                    return Outcome::Unregistered;
                }
                let expires = self.granted(resp).unwrap_or(asked);
                if expires == 0 {
                    return self.failed(
                        resp.status,
                        "the registrar accepted the REGISTER but kept no binding".into(),
                        None,
                    );
                }
                self.failures = 0;
                let reflexive = resp.headers.top_via().ok().and_then(|v| v.reflexive_addr());
                Outcome::Registered { expires, reflexive }
            }
            401 | 407 => {
                self.challenges_in_a_row = self.challenges_in_a_row.saturating_add(1);
                if self.challenges_in_a_row > MAX_IN_A_ROW {
                    return self.failed(resp.status, "the registrar keeps challenging the credentials".into(), None);
                }
                match self.auth.on_challenge(sent, resp) {
                    Ok(_) => Outcome::Retry,
                    Err(e @ AuthError::Rejected { .. }) => {
                        self.challenges_in_a_row = 0;
                        Outcome::Refused { code: 403, reason: e.to_string() }
                    }
                    Err(e) => self.failed(resp.status, e.to_string(), None),
                }
            }
            423 => {
                self.brief_in_a_row = self.brief_in_a_row.saturating_add(1);
                match resp.headers.min_expires() {
                    Ok(Some(min)) if min > asked && asked != 0 && self.brief_in_a_row <= MAX_IN_A_ROW => {
                        self.expires = self.expires.max(min);
                        Outcome::Retry
                    }
                    _ => self.failed(423, "interval too brief, without a usable Min-Expires".into(), None),
                }
            }
            code => {
                let retry_after = resp.headers.retry_after().ok().flatten();
                self.failed(code, resp.reason.clone(), retry_after)
            }
        }
    }

    /// Counts a failure (also one without a response: 408 for no answer, 503
    /// when the registrar cannot be reached) and says when to try again.
    pub fn failed(&mut self, code: u16, reason: String, retry_after: Option<u32>) -> Outcome {
        self.challenges_in_a_row = 0;
        self.brief_in_a_row = 0;
        self.failures = self.failures.saturating_add(1);
        let retry_in = self.retry.wait(code, self.failures, retry_after, (self.spread)());
        Outcome::Failed { code, reason, retry_in }
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

    /// Retries at the plan's full waits.
    fn steady() -> f64 {
        1.0
    }

    #[test]
    fn wrong_password_after_one_doubted_nonce_and_unregister() {
        let mut reg = registration();
        let first = reg.request(60);
        let www = |nonce: &str| format!("WWW-Authenticate: Digest realm=\"r\", nonce=\"{nonce}\", algorithm=MD5\r\n");
        assert_eq!(reg.on_response(&first, &response_to(&first, 401, &www("n1"))), Outcome::Retry);
        let second = reg.request(60);
        // A new nonce without stale=true: perhaps only a lapsed nonce, tried once more.
        assert_eq!(reg.on_response(&second, &response_to(&second, 401, &www("n2"))), Outcome::Retry);
        let third = reg.request(60);
        assert!(third.headers.get(&HeaderName::Authorization).unwrap().contains("nonce=\"n2\""));
        let refused = reg.on_response(&third, &response_to(&third, 401, &www("n3")));
        assert!(matches!(&refused, Outcome::Refused { code: 403, reason } if reason.contains("wrong")), "{refused:?}");

        let bye = reg.request(0);
        assert_eq!(bye.headers.expires().unwrap(), Some(0));
        assert_eq!(reg.on_response(&bye, &response_to(&bye, 200, "")), Outcome::Unregistered);
    }

    #[test]
    fn a_changed_nonce_on_refresh_is_taken_for_a_lapsed_one() {
        let mut reg = registration();
        let www = |nonce: &str| format!("WWW-Authenticate: Digest realm=\"r\", nonce=\"{nonce}\"\r\n");
        let first = reg.refresh();
        assert_eq!(reg.on_response(&first, &response_to(&first, 401, &www("n1"))), Outcome::Retry);
        let second = reg.refresh();
        assert_eq!(reg.on_response(&second, &response_to(&second, 401, &www("n2"))), Outcome::Retry);
        let third = reg.refresh();
        assert!(matches!(reg.on_response(&third, &response_to(&third, 200, "")), Outcome::Registered { .. }));
        // An hour later the registrar hands out a new nonce again, without stale=true.
        for nonce in ["n3", "n4"] {
            let refresh = reg.refresh();
            assert_eq!(reg.on_response(&refresh, &response_to(&refresh, 401, &www(nonce))), Outcome::Retry);
            let again = reg.refresh();
            assert!(again.headers.get(&HeaderName::Authorization).unwrap().contains(&format!("nonce=\"{nonce}\"")));
            assert!(matches!(reg.on_response(&again, &response_to(&again, 200, "")), Outcome::Registered { .. }));
        }
    }

    #[test]
    fn a_brief_interval_is_kept_for_every_refresh() {
        let mut reg = registration();
        let first = reg.refresh();
        assert_eq!(first.headers.expires().unwrap(), Some(60));
        assert_eq!(reg.on_response(&first, &response_to(&first, 423, "Min-Expires: 120\r\n")), Outcome::Retry);
        for _ in 0..3 {
            let refresh = reg.refresh();
            assert_eq!(refresh.headers.expires().unwrap(), Some(120));
            assert_eq!(refresh.headers.get(&HeaderName::Contact), Some("<sip:100@127.0.0.1:40000>;expires=120"));
            let ok = response_to(&refresh, 200, "Contact: <sip:100@127.0.0.1:40000>;expires=120\r\n");
            assert!(matches!(reg.on_response(&refresh, &ok), Outcome::Registered { expires: 120, .. }));
        }
        // The registrar raises its minimum later: the new one is kept from then on.
        let refresh = reg.refresh();
        assert_eq!(reg.on_response(&refresh, &response_to(&refresh, 423, "Min-Expires: 1800\r\n")), Outcome::Retry);
        let raised = reg.refresh();
        assert_eq!(raised.headers.expires().unwrap(), Some(1800));
        let ok = response_to(&raised, 200, "Expires: 1800\r\n");
        assert!(matches!(reg.on_response(&raised, &ok), Outcome::Registered { expires: 1800, .. }));
        assert_eq!(reg.refresh().headers.expires().unwrap(), Some(1800));

        // A 423 that does not ask for more than was asked, or none at all: a failure, retried later.
        reg.spread = steady;
        for extra in ["Min-Expires: 1800\r\n", "Min-Expires: 60\r\n", ""] {
            let sent = reg.refresh();
            let brief = reg.on_response(&sent, &response_to(&sent, 423, extra));
            assert!(matches!(brief, Outcome::Failed { code: 423, .. }), "{extra}: {brief:?}");
        }
        assert_eq!(reg.expires, 1800);
        // A registrar raising its minimum again and again is not followed for ever.
        let mut outcomes = Vec::new();
        for min in 1801..1806 {
            let sent = reg.refresh();
            outcomes.push(reg.on_response(&sent, &response_to(&sent, 423, &format!("Min-Expires: {min}\r\n"))));
        }
        assert_eq!(outcomes[..3], [Outcome::Retry, Outcome::Retry, Outcome::Retry]);
        assert!(matches!(outcomes[3], Outcome::Failed { code: 423, .. }), "{outcomes:?}");
    }

    #[test]
    fn the_granted_interval_comes_from_our_contact_or_the_expires_header() {
        let mut reg = registration();
        reg.spread = steady;
        let registered = |expires| Outcome::Registered { expires, reflexive: Some("127.0.0.1:40000".parse().unwrap()) };
        let sent = reg.refresh();
        let others = "Contact: <sip:100@192.0.2.1:5060>;expires=3000, <sip:100@127.0.0.1:40000>;expires=45\r\n";
        assert_eq!(reg.on_response(&sent, &response_to(&sent, 200, others)), registered(45));
        let sent = reg.refresh();
        let header = "Contact: <sip:100@127.0.0.1:40000>\r\nExpires: 30\r\n";
        assert_eq!(reg.on_response(&sent, &response_to(&sent, 200, header)), registered(30));
        // Granted more than asked: honoured as well.
        let sent = reg.refresh();
        assert_eq!(reg.on_response(&sent, &response_to(&sent, 200, "Expires: 3600\r\n")), registered(3600));
        let sent = reg.refresh();
        assert_eq!(reg.on_response(&sent, &response_to(&sent, 200, "")), registered(60));
        // Our binding at 0: not registered, tried again soon.
        let sent = reg.refresh();
        let gone = response_to(&sent, 200, "Contact: <sip:100@127.0.0.1:40000>;expires=0\r\n");
        assert!(
            matches!(reg.on_response(&sent, &gone), Outcome::Failed { code: 200, retry_in, .. } if retry_in.as_secs() == 5)
        );
    }

    #[test]
    fn failures_and_refusals_are_retried_later_and_later() {
        let mut reg = registration();
        reg.spread = steady;
        let mut waits = Vec::new();
        let mut fail = |reg: &mut Registration, status: u16, extra: &str| {
            let sent = reg.refresh();
            match reg.on_response(&sent, &response_to(&sent, status, extra)) {
                Outcome::Failed { code, retry_in, .. } if code == status => waits.push(retry_in.as_secs()),
                other => panic!("{status}: {other:?}"),
            }
        };
        fail(&mut reg, 503, "");
        fail(&mut reg, 500, "");
        fail(&mut reg, 503, "Retry-After: 120 (maintenance)\r\n");
        let timeout = reg.failed(408, "no answer".into(), None);
        assert!(matches!(timeout, Outcome::Failed { code: 408, retry_in, .. } if retry_in.as_secs() == 40));
        let sent = reg.refresh();
        assert!(matches!(reg.on_response(&sent, &response_to(&sent, 200, "")), Outcome::Registered { .. }));
        // Refusals start slower, after a success the count starts again.
        fail(&mut reg, 403, "");
        fail(&mut reg, 404, "");
        fail(&mut reg, 403, "");
        assert_eq!(waits, [5, 10, 120, 60, 120, 240]);
    }

    #[test]
    fn retry_plan_doubles_up_to_a_ceiling_between_half_and_all() {
        let plan = RetryPlan::default();
        let waits = |code: u16, spread: f64| -> Vec<u64> {
            (1..=8).map(|n| plan.wait(code, n, None, spread).as_secs()).collect()
        };
        assert_eq!(waits(503, 1.0), [5, 10, 20, 40, 60, 60, 60, 60]);
        assert_eq!(waits(408, 0.0), [2, 5, 10, 20, 30, 30, 30, 30]);
        assert_eq!(waits(403, 1.0), [60, 120, 240, 480, 600, 600, 600, 600]);
        assert_eq!(waits(404, 0.0), [30, 60, 120, 240, 300, 300, 300, 300]);
        assert_eq!(plan.wait(503, u32::MAX, None, f64::NAN), Duration::from_secs(60));
        assert_eq!(plan.wait(503, 1, Some(90), 1.0), Duration::from_secs(90));
        assert_eq!(plan.wait(503, 1, Some(u32::MAX), 1.0), Duration::from_secs(3600));
        assert_eq!(plan.wait(403, 1, Some(1), 1.0), Duration::from_secs(60));
        let quick = RetryPlan { first: Duration::from_millis(250) };
        assert_eq!(quick.wait(403, 2, None, 1.0), Duration::from_secs(6));
        for code in [400, 403, 404, 480, 489, 603] {
            assert!(is_refusal(code), "{code}");
        }
        for code in [408, 500, 503, 504, 200] {
            assert!(!is_refusal(code), "{code}");
        }
    }

    #[test]
    fn refresh_comes_well_before_expiry() {
        assert_eq!(Registration::refresh_after(60).as_secs(), 30);
        assert_eq!(Registration::refresh_after(3600).as_secs(), 3450);
        assert_eq!(Registration::refresh_after(0).as_secs(), 1);
        assert!(Registration::refresh_after(300).as_secs() < 300);
    }
}
