//! Following 3xx answers to our INVITE (RFC 3261 §8.1.3.4): the call is
//! tried at the Contacts of the redirect, best `q` first, the next one when a
//! target fails; never the same target twice and at most [`MAX_REDIRECTS`]
//! redirects, so a loop (or a chain too long) ends the call with
//! [`crate::sip::phone::EndReason::TooManyRedirects`] instead of going on.
//! [`Redirects`] is the pure bookkeeping; the flow is in `outgoing.rs`.

use crate::sip::headers::NameAddr;
use crate::sip::uri::Uri;

/// How many 3xx answers one call follows.
pub(super) const MAX_REDIRECTS: u8 = 5;

/// Why a redirect is not followed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// More 3xx than [`MAX_REDIRECTS`].
    Limit,
    /// Every Contact given was tried already (a loop) or none can be used.
    NoNewTarget,
}

/// The targets of one call: tried and still to try.
#[derive(Debug, Clone, Default)]
pub(super) struct Redirects {
    tried: Vec<String>,
    queue: Vec<Uri>,
    followed: u8,
}

/// A target as compared: scheme, user and host (case-folded) and port;
/// parameters and URI headers aside.
fn key(uri: &Uri) -> String {
    match uri {
        Uri::Sip(u) => format!(
            "{}:{}@{}:{}",
            if u.secure { "sips" } else { "sip" },
            u.user_decoded().unwrap_or_default(),
            u.host.to_string().to_ascii_lowercase(),
            u.port.unwrap_or(if u.secure { 5061 } else { 5060 }),
        ),
        other => other.to_string(),
    }
}

impl Redirects {
    /// A call first placed to `first`.
    pub(super) fn new(first: &Uri) -> Redirects {
        Redirects { tried: vec![key(first)], ..Redirects::default() }
    }

    /// How many redirects were followed.
    pub(super) fn followed(&self) -> u8 {
        self.followed
    }

    /// A 3xx came with `contacts`: the target to try now, or why not.
    /// Its Contacts go before what was left of earlier ones, best `q` first
    /// (in their order when equal).
    pub(super) fn on_redirect(&mut self, contacts: &[NameAddr]) -> Result<Uri, Stop> {
        self.followed += 1;
        if self.followed > MAX_REDIRECTS {
            return Err(Stop::Limit);
        }
        let mut fresh: Vec<(f32, Uri)> = contacts
            .iter()
            .filter(|c| matches!(c.uri, Uri::Sip(_)))
            .map(|c| (c.q().unwrap_or(1.0), c.uri.clone()))
            .collect();
        fresh.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut queue: Vec<Uri> = fresh.into_iter().map(|(_, u)| u).collect();
        queue.append(&mut self.queue);
        self.queue = queue;
        self.next().ok_or(Stop::NoNewTarget)
    }

    /// The next target not tried yet (after a redirected attempt failed).
    pub(super) fn next(&mut self) -> Option<Uri> {
        while !self.queue.is_empty() {
            let uri = self.queue.remove(0);
            let k = key(&uri);
            if !self.tried.contains(&k) {
                self.tried.push(k);
                return Some(uri);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Uri {
        Uri::parse(text).unwrap()
    }

    fn contact(text: &str) -> NameAddr {
        NameAddr::parse(text).unwrap()
    }

    #[test]
    fn the_best_contact_first_then_the_next_on_failure() {
        let mut r = Redirects::new(&uri("sip:100@pbx.clinic"));
        let got = r.on_redirect(&[
            contact("<sip:200@10.0.0.2>;q=0.5"),
            contact("<sip:300@10.0.0.3>;q=0.9"),
            contact("<tel:+74950000000>"),
            contact("<sip:400@10.0.0.4>;q=0.5"),
        ]);
        assert_eq!(got, Ok(uri("sip:300@10.0.0.3")));
        assert_eq!(r.next(), Some(uri("sip:200@10.0.0.2")));
        assert_eq!(r.next(), Some(uri("sip:400@10.0.0.4")));
        assert_eq!(r.next(), None);
        assert_eq!(r.followed(), 1);
    }

    #[test]
    fn never_the_same_target_twice() {
        let mut r = Redirects::new(&uri("sip:100@PBX.clinic"));
        // Back to where the call started (host case and default port aside): a loop.
        assert_eq!(r.on_redirect(&[contact("<sip:100@pbx.clinic:5060;transport=udp>")]), Err(Stop::NoNewTarget));
        assert_eq!(r.on_redirect(&[contact("<sip:200@pbx.clinic>")]), Ok(uri("sip:200@pbx.clinic")));
        assert_eq!(
            r.on_redirect(&[contact("<sip:200@pbx.clinic>"), contact("<sip:100@pbx.clinic>")]),
            Err(Stop::NoNewTarget)
        );
        assert_eq!(r.on_redirect(&[]), Err(Stop::NoNewTarget));
    }

    #[test]
    fn a_chain_longer_than_the_limit_stops() {
        let mut r = Redirects::new(&uri("sip:0@pbx"));
        for n in 1..=MAX_REDIRECTS {
            let target = format!("sip:{n}@pbx");
            assert_eq!(r.on_redirect(&[contact(&format!("<{target}>"))]), Ok(uri(&target)));
        }
        assert_eq!(r.on_redirect(&[contact("<sip:99@pbx>")]), Err(Stop::Limit));
    }
}
