//! Transfers (RFC 3515): REFER from the peer (we call the target and tell
//! the transferor by NOTIFY how it goes), blind and attended transfer of
//! ours (Replaces).

use tokio::time::Instant;

use super::call::*;
use super::{Pending, Ua};
use crate::crm::caller_number;
use crate::sip::headers::{HeaderName, NameAddr};
use crate::sip::message::{Method, Request};
use crate::sip::transaction::TransactionId;
use crate::sip::transport::Peer;
use crate::sip::uri::Uri;
use crate::sip::validate::stateless_response;

impl Ua {
    /// The other side transfers us (RFC 3515): accept, call the target, and
    /// tell the transferor how that call goes by NOTIFY.
    pub(super) async fn on_refer(&mut self, id: TransactionId, call_id: &str, req: &Request, tag: &str, peer: &Peer) {
        let refer_to = match req.headers.refer_to() {
            Ok(Some(r)) => r,
            _ => {
                self.respond(id, stateless_response(req, 400, "Bad Request - no usable Refer-To")).await;
                return;
            }
        };
        let Uri::Sip(mut target) = refer_to.uri else {
            self.respond(id, self.dialog_response(req, 603, tag, peer)).await;
            return;
        };
        if self.stopping
            || self.calls.get(call_id).is_none_or(|c| c.state != CallState::Active || c.referred_to.is_some())
        {
            self.respond(id, self.dialog_response(req, 603, tag, peer)).await;
            return;
        }
        self.respond(id, self.dialog_response(req, 202, tag, peer)).await;
        self.notify_refer(call_id, "SIP/2.0 100 Trying", false).await;
        // Headers in the Refer-To (Replaces for an attended transfer) go into the INVITE.
        let names: Vec<String> = target.headers.iter().map(|(name, _)| name.clone()).collect();
        let mut extra: Vec<(HeaderName, String)> = names
            .iter()
            .filter_map(|name| Some((HeaderName::parse(name), target.header(name)?.into_owned())))
            .collect();
        target.headers.clear();
        if let Some(by) = req.headers.get(&HeaderName::ReferredBy) {
            extra.push((HeaderName::ReferredBy, by.to_owned()));
        }
        let user = target.user_decoded().map(|u| u.into_owned()).unwrap_or_default();
        let shown = if user.is_empty() { target.host.to_string() } else { caller_number(&user, self.cfg.country) };
        match self.place_call(Uri::Sip(target), shown, extra).await {
            Some(new_call) => {
                if let Some(c) = self.calls.get_mut(&new_call) {
                    c.referred_from = Some(call_id.to_owned());
                }
                if let Some(c) = self.calls.get_mut(call_id) {
                    c.referred_to = Some(new_call);
                }
            }
            None => self.notify_refer(call_id, "SIP/2.0 503 Service Unavailable", true).await,
        }
    }

    /// Tells the transferor of `call_id` how the call it asked for goes (RFC 3515 §2.4.5).
    pub(super) async fn notify_refer(&mut self, call_id: &str, status_line: &str, last: bool) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        let fallback = call.peer.clone();
        let Some(dialog) = call.dialog.as_mut() else { return };
        let mut notify = dialog.request(Method::Notify);
        let hop = dialog.next_hop().clone();
        notify.headers.push(HeaderName::Event, "refer");
        let state = if last { "terminated;reason=noresource" } else { "active;expires=60" };
        notify.headers.push(HeaderName::SubscriptionState, state);
        notify.set_body("message/sipfrag;version=2.0", format!("{status_line}\r\n").into_bytes());
        if last {
            call.referred_to = None;
        }
        let peer = self.hop_peer(&hop, Some(fallback)).await;
        self.send(notify, &peer, |_| Pending::Fire { since: Instant::now() }).await;
    }

    /// A call placed on a REFER reached its outcome: report it to the transferor.
    pub(super) async fn report_referred(&mut self, new_call: &str, status: u16, reason: &str) {
        let Some(from) = self.calls.get(new_call).and_then(|c| c.referred_from.clone()) else { return };
        if self.calls.get(&from).and_then(|c| c.referred_to.as_deref()) != Some(new_call) {
            return;
        }
        let reason = if reason.is_empty() { crate::sip::message::default_reason(status) } else { reason };
        self.notify_refer(&from, &format!("SIP/2.0 {status} {reason}"), true).await;
        if (200..300).contains(&status)
            && let Some(c) = self.calls.get_mut(&from)
        {
            // The transferor ends our old call; however it ends, it was a transfer.
            c.transferred_away = true;
        }
    }

    /// Transfer (RFC 3515): asks the other side to call `target` — a number or
    /// address (blind), or the id of another call of ours (attended: the other
    /// side calls that call's party with Replaces, RFC 3891, taking our place).
    pub(super) async fn transfer(&mut self, call_id: &str, target: &str) {
        let attended = self
            .calls
            .get(target)
            .filter(|t| target != call_id && t.state == CallState::Active)
            .and_then(|t| t.dialog.as_ref())
            .map(|d| (replaces_uri(d), uri_user(&d.remote.uri)));
        let (uri, shown, replaces) = match attended {
            Some((uri, shown)) => (uri, shown, Some(target.to_owned())),
            None => match self.dial_target(target) {
                Ok((uri, shown)) => (uri, shown, None),
                Err(why) => {
                    tracing::warn!(call_id, target, reason = why, "transfer not started");
                    return;
                }
            },
        };
        let referred_by = match self.calls.get(call_id) {
            Some(c) => self.aor(&c.peer),
            None => return,
        };
        let Some(call) = self.calls.get_mut(call_id) else { return };
        if call.state != CallState::Active {
            return;
        }
        let fallback = call.peer.clone();
        let Some(dialog) = call.dialog.as_mut() else { return };
        let mut req = dialog.request(Method::Refer);
        let hop = dialog.next_hop().clone();
        req.headers.push_typed(HeaderName::ReferTo, &NameAddr::new(uri));
        req.headers.push_typed(HeaderName::ReferredBy, &referred_by);
        call.transfer_target = Some(shown.clone());
        call.transfer_replaces = replaces;
        let peer = self.hop_peer(&hop, Some(fallback)).await;
        self.send(req, &peer, |_| Pending::Refer { call_id: call_id.to_owned(), target: shown }).await;
    }
}
