//! Outgoing calls: what the operator dialled as a SIP address, placing the
//! INVITE (digest challenges, early media, ringback), its answers, and the
//! ACK of a 2xx.

use std::net::SocketAddr;

use tokio::time::Instant;

use super::call::*;
use super::redirect::Redirects;
use super::{Pending, Ua, put_top_via};
use crate::crm::caller_number;
use crate::sip::dialog::Dialog;
use crate::sip::headers::{HeaderName, NameAddr};
use crate::sip::message::{Method, Request, Response};
use crate::sip::phone::{EndReason, PhoneEvent};
use crate::sip::sdp::{Direction, accept_answer, build_offer};
use crate::sip::transaction::TransactionId;
use crate::sip::transport::Peer;
use crate::sip::uri::{Host, SipUri, Uri};

impl Ua {
    /// What to dial: a SIP address as given, or a number (any national form,
    /// normalised) at the account's server. The URI and the number to show.
    pub(super) fn dial_target(&self, target: &str) -> Result<(Uri, String), String> {
        let t = target.trim();
        if t.is_empty() {
            return Err("nothing to dial".to_owned());
        }
        let lower = t.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") || (t.contains('@') && !lower.starts_with("tel:")) {
            let text = if t.contains(':') && (lower.starts_with("sip:") || lower.starts_with("sips:")) {
                t.to_owned()
            } else {
                format!("sip:{t}")
            };
            let uri = SipUri::parse(&text).map_err(|e| format!("{t:?} is not a SIP address: {e}"))?;
            let user = uri.user_decoded().map(|u| u.into_owned()).unwrap_or_default();
            let shown = if user.is_empty() { uri.host.to_string() } else { caller_number(&user, self.cfg.country) };
            return Ok((Uri::Sip(uri), shown));
        }
        let raw = t.strip_prefix("tel:").unwrap_or(t);
        let digits: String =
            raw.chars().filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.' | '/' | '\u{a0}')).collect();
        let valid = !digits.is_empty()
            && digits
                .chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_digit() || matches!(c, '*' | '#') || (c == '+' && i == 0));
        if !valid {
            return Err(format!("{t:?} is neither a phone number nor a SIP address"));
        }
        let number = crate::crm::Phone::parse(raw, self.cfg.country).map(|p| p.as_str().to_owned()).unwrap_or(digits);
        let Some(reg_host) = self.aor_host() else {
            return Err(format!("no SIP server is set up: dial a full address such as {number}@192.0.2.10:5060"));
        };
        let mut uri = SipUri::new(Some(&number), reg_host.0, reg_host.1);
        uri.params = Default::default();
        Ok((Uri::Sip(uri), number))
    }

    /// The host and port of the account's domain (the host part of numbers we dial).
    pub(super) fn aor_host(&self) -> Option<(Host, Option<u16>)> {
        let Some(account) = self.cfg.account.as_ref() else {
            let peer = self.cfg.direct_peer?;
            let host = match peer.ip() {
                std::net::IpAddr::V4(ip) => Host::Ipv4(ip),
                std::net::IpAddr::V6(ip) => Host::Ipv6(ip),
            };
            return Some((host, Some(peer.port())));
        };
        let uri = super::server_uri(&account.server).ok()?;
        Some((uri.host, uri.port))
    }

    pub(super) async fn dial(&mut self, target: &str) {
        if self.stopping {
            return;
        }
        match self.dial_target(target) {
            Ok((uri, number)) => {
                self.place_call(uri, number, Vec::new()).await;
            }
            Err(why) => {
                let call_id = crate::sip::new_call_id(&self.bound.ip().to_string());
                self.fail_to_place(&call_id, target.trim().to_owned(), &why);
            }
        }
    }

    /// Reports a call that could not even be placed.
    pub(super) fn fail_to_place(&mut self, call_id: &str, shown: String, why: &str) {
        tracing::warn!(target = shown, reason = why, "call not placed");
        self.emit(PhoneEvent::Dialing { call_id: call_id.to_owned(), to: shown, card: None });
        let ended = PhoneEvent::Ended { call_id: call_id.to_owned(), reason: EndReason::Failed, duration_s: 0 };
        self.emit_end(call_id, None, ended);
    }

    /// Places a call to `uri` (shown as `number`), with `extra` headers (Replaces,
    /// Referred-By); its id, unless it could not be placed.
    pub(super) async fn place_call(
        &mut self,
        uri: Uri,
        number: String,
        extra: Vec<(HeaderName, String)>,
    ) -> Option<String> {
        let call_id = crate::sip::new_call_id(&self.bound.ip().to_string());
        let peer = match self.peer_for(&uri, true).await {
            Ok(p) => p,
            Err(why) => {
                self.fail_to_place(&call_id, number, &why);
                return None;
            }
        };
        let (local, sockets) = match self.bind_media(peer.addr).await {
            Ok(m) => m,
            Err(e) => {
                self.fail_to_place(&call_id, number, &e.to_string());
                return None;
            }
        };
        let offer = build_offer(&local, &self.audio_config(Direction::SendRecv));
        let mut from = self.aor(&peer);
        from.set_tag(&crate::sip::new_tag());
        let mut req = Request::new(Method::Invite, uri.clone());
        req.headers.push_typed(HeaderName::Via, &self.via(&peer));
        req.headers.push(HeaderName::MaxForwards, "70");
        req.headers.push_typed(HeaderName::From, &from);
        req.headers.push_typed(HeaderName::To, &NameAddr::new(uri));
        req.headers.push(HeaderName::CallId, call_id.clone());
        req.headers.push(HeaderName::CSeq, "1 INVITE");
        req.headers.push_typed(HeaderName::Contact, &self.contact(&peer));
        req.headers.push(HeaderName::Allow, self.policy.allow_header());
        req.headers.push(HeaderName::UserAgent, self.cfg.user_agent.clone());
        for (name, value) in extra {
            req.headers.push(name, value);
        }
        req.set_body("application/sdp", offer.to_bytes());
        self.call_counter += 1;
        let mut call = Call::new(CallState::Calling, peer.clone(), req.clone(), self.call_counter);
        call.auth = self.credentials();
        call.local_media = Some(local);
        call.rtp = Some(sockets);
        call.our_offer = Some(offer.clone());
        call.last_local_sdp = Some(offer);
        self.calls.insert(call_id.clone(), call);
        let dialing = PhoneEvent::Dialing { call_id: call_id.clone(), to: number.clone(), card: None };
        self.announce(dialing, &number, None, None);
        let pending = |sent: &Request| Pending::Invite { call_id: call_id.clone(), sent: sent.clone() };
        if self.send(req, &peer, pending).await.is_none() {
            self.finish_call(&call_id, EndReason::Failed).await;
            return None;
        }
        Some(call_id)
    }

    pub(super) async fn on_invite_response(
        &mut self,
        id: TransactionId,
        call_id: String,
        sent: Request,
        resp: Response,
    ) {
        let status = resp.status;
        let Some(call) = self.calls.get_mut(&call_id) else {
            if resp.is_success() {
                // The call is forgotten but the peer answered: ACK and hang up at once.
                self.ack_and_bye(id, &sent, &resp).await;
            }
            return;
        };
        match status {
            100 => {
                call.provisional = true;
                self.pending.insert(id, Pending::Invite { call_id: call_id.clone(), sent });
                self.send_pending_cancel(&call_id).await;
            }
            101..=199 => {
                call.provisional = true;
                let first = !call.ringing_reported;
                call.ringing_reported = true;
                let cancelling = call.state == CallState::Cancelling;
                let offer = call.our_offer.clone();
                self.pending.insert(id, Pending::Invite { call_id: call_id.clone(), sent });
                if self.send_pending_cancel(&call_id).await || cancelling {
                    return;
                }
                if first {
                    self.emit(PhoneEvent::Ringing { call_id: call_id.clone() });
                }
                match (sdp_body(&resp.body), offer) {
                    (Some(Ok(answer)), Some(offer)) => match accept_answer(&offer, &answer) {
                        // Early media (183): the far end's ringback or announcement replaces ours.
                        Ok(neg) => self.apply_media(&call_id, &neg, &answer).await,
                        Err(e) => tracing::warn!(call_id, error = %e, "unusable early media"),
                    },
                    _ => self.start_ringback(&call_id).await,
                }
            }
            200..=299 => self.on_invite_accepted(id, &call_id, &sent, &resp).await,
            401 | 407 => {
                call.auth_rounds += 1;
                let retry = match (&mut call.auth, call.auth_rounds <= 2, call.state) {
                    (Some(auth), true, CallState::Calling) => match auth.on_challenge(&sent, &resp) {
                        Ok(_) => {
                            let mut again = sent.clone();
                            again.headers.remove(&HeaderName::Via);
                            let seq = sent.headers.cseq().map(|c| c.seq).unwrap_or(1).wrapping_add(1);
                            again.headers.set(HeaderName::CSeq, format!("{seq} INVITE"));
                            auth.authorize_request(&mut again);
                            Some(again)
                        }
                        Err(e) => {
                            tracing::warn!(call_id, error = %e, "the call was refused");
                            None
                        }
                    },
                    _ => None,
                };
                match retry {
                    Some(mut again) => {
                        let peer = call.peer.clone();
                        put_top_via(&mut again, &self.via(&peer));
                        if let Some(call) = self.calls.get_mut(&call_id) {
                            call.invite = again.clone();
                            call.provisional = false;
                        }
                        let pending = |sent: &Request| Pending::Invite { call_id: call_id.clone(), sent: sent.clone() };
                        if self.send(again, &peer, pending).await.is_none() {
                            self.finish_call(&call_id, EndReason::Failed).await;
                        }
                    }
                    None => self.on_invite_failed(&call_id, status).await,
                }
            }
            300..=399 => self.on_redirect(&call_id, &sent, &resp).await,
            _ => {
                if !self.try_next_target(&call_id, &sent, status).await {
                    self.on_invite_failed(&call_id, status).await;
                }
            }
        }
    }

    /// A 3xx: the call goes on at the redirect's best Contact not tried yet;
    /// a loop or too many redirects end it.
    async fn on_redirect(&mut self, call_id: &str, sent: &Request, resp: &Response) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        if call.state != CallState::Calling {
            self.on_invite_failed(call_id, resp.status).await;
            return;
        }
        let contacts = match resp.headers.contacts() {
            Ok(crate::sip::headers::Contacts::Addresses(a)) => a,
            Ok(crate::sip::headers::Contacts::Wildcard) | Err(_) => Vec::new(),
        };
        let redirects = call.redirects.get_or_insert_with(|| Redirects::new(&sent.uri));
        match redirects.on_redirect(&contacts) {
            Ok(target) => {
                tracing::info!(call_id, status = resp.status, %target, "redirected: calling the new target");
                self.call_target(call_id, sent, target).await;
            }
            Err(stop) => {
                let followed = redirects.followed();
                tracing::warn!(call_id, status = resp.status, ?stop, followed, "the redirect is not followed");
                self.report_referred(call_id, resp.status, &resp.reason).await;
                self.finish_call(call_id, EndReason::TooManyRedirects).await;
            }
        }
    }

    /// A redirected call failed at its target with `status`: the next target
    /// of its redirects is called, if there is one (not after a 6xx, which
    /// speaks for every target). Whether it was.
    pub(super) async fn try_next_target(&mut self, call_id: &str, sent: &Request, status: u16) -> bool {
        let Some(call) = self.calls.get_mut(call_id) else { return false };
        if call.state != CallState::Calling || status >= 600 {
            return false;
        }
        let Some(target) = call.redirects.as_mut().and_then(|r| r.next()) else { return false };
        tracing::info!(call_id, status, %target, "the redirected call failed: calling the next target");
        self.call_target(call_id, sent, target).await;
        true
    }

    /// Sends the call's INVITE again, to `target` (a redirect's Contact):
    /// the same Call-ID, From, To and offer, a new CSeq and branch, without
    /// the credentials of the old target.
    async fn call_target(&mut self, call_id: &str, sent: &Request, target: Uri) {
        let peer = match self.peer_for(&target, true).await {
            Ok(p) => p,
            Err(why) => {
                tracing::warn!(call_id, %target, reason = why, "the redirect's target cannot be reached");
                self.finish_call(call_id, EndReason::Failed).await;
                return;
            }
        };
        let mut again = sent.clone();
        again.uri = target;
        again.headers.remove(&HeaderName::Authorization);
        again.headers.remove(&HeaderName::ProxyAuthorization);
        let seq = sent.headers.cseq().map(|c| c.seq).unwrap_or(1).wrapping_add(1);
        again.headers.set(HeaderName::CSeq, format!("{seq} INVITE"));
        again.headers.remove(&HeaderName::Contact);
        again.headers.push_typed(HeaderName::Contact, &self.contact(&peer));
        put_top_via(&mut again, &self.via(&peer));
        let fresh = self.credentials();
        if let Some(call) = self.calls.get_mut(call_id) {
            call.invite = again.clone();
            call.peer = peer.clone();
            call.provisional = false;
            call.auth = fresh;
            call.auth_rounds = 0;
        }
        let pending = |sent: &Request| Pending::Invite { call_id: call_id.to_owned(), sent: sent.clone() };
        if self.send(again, &peer, pending).await.is_none() {
            self.finish_call(call_id, EndReason::Failed).await;
        }
    }

    /// The INVITE failed with `status` (or timed out: 408, or could not be sent: 503).
    pub(super) async fn on_invite_failed(&mut self, call_id: &str, status: u16) {
        self.report_referred(call_id, status, "").await;
        let Some(call) = self.calls.get(call_id) else { return };
        if call.state == CallState::Cancelling {
            self.calls.remove(call_id);
            return;
        }
        let reason = match status {
            486 | 600 => EndReason::Busy,
            603 => EndReason::Rejected,
            408 | 480 | 487 => EndReason::NotAnswered,
            _ => EndReason::Failed,
        };
        self.finish_call(call_id, reason).await;
    }

    pub(super) async fn on_invite_accepted(
        &mut self,
        id: TransactionId,
        call_id: &str,
        sent: &Request,
        resp: &Response,
    ) {
        let dialog = match Dialog::as_uac(sent, resp) {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(call_id, error = %e, "unusable 2xx: ending the call");
                self.ack_and_bye(id, sent, resp).await;
                self.finish_call(call_id, EndReason::Failed).await;
                return;
            }
        };
        let seq = sent.headers.cseq().map(|c| c.seq).unwrap_or(1);
        let fallback = self.calls.get(call_id).map(|c| c.peer.clone());
        let hop = self.hop_peer(dialog.next_hop(), fallback).await;
        let mut ack = dialog.ack(seq);
        put_top_via(&mut ack, &self.via(&hop));
        let bytes = ack.to_bytes();
        self.send_stateless(&hop, bytes.clone()).await;
        self.pending.insert(id, Pending::Accepted { ack: bytes, peer: hop, since: Instant::now() });
        let Some(call) = self.calls.get_mut(call_id) else { return };
        call.dialog = Some(dialog);
        if call.state == CallState::Cancelling {
            // Answered while our CANCEL was on its way: end it properly.
            self.send_bye(call_id).await;
            self.calls.remove(call_id);
            return;
        }
        call.state = CallState::Active;
        call.answered = Some(Instant::now());
        let offer = call.our_offer.take();
        self.report_referred(call_id, resp.status, &resp.reason).await;
        match (sdp_body(&resp.body), offer) {
            (Some(Ok(answer)), Some(offer)) => match accept_answer(&offer, &answer) {
                Ok(neg) => self.apply_media(call_id, &neg, &answer).await,
                Err(e) => {
                    tracing::warn!(call_id, error = %e, "the answer is unusable: ending the call");
                    self.send_bye(call_id).await;
                    self.finish_call(call_id, EndReason::Failed).await;
                    return;
                }
            },
            (_, None) => {} // the answer came in a 183 already, media runs
            (_, Some(_)) => tracing::warn!(call_id, "the 2xx carries no usable SDP answer"),
        }
        if let Some((player, mut source)) = self.calls.get_mut(call_id).and_then(|c| c.ringback.take()) {
            if let Some(mut sink) = player.stop().await {
                let _ = sink.finish();
            }
            let _ = source.finish();
        }
        // Media from early media (183) goes on: its watch starts with the answer.
        self.watch_media(call_id);
        self.emit(PhoneEvent::Answered { call_id: call_id.to_owned() });
    }

    /// Acknowledges a 2xx for a call we no longer want and sends BYE.
    pub(super) async fn ack_and_bye(&mut self, id: TransactionId, sent: &Request, resp: &Response) {
        let Ok(mut dialog) = Dialog::as_uac(sent, resp) else { return };
        let seq = sent.headers.cseq().map(|c| c.seq).unwrap_or(1);
        let Some(peer) = self.peer_for(dialog.next_hop(), false).await.ok() else { return };
        let mut ack = dialog.ack(seq);
        put_top_via(&mut ack, &self.via(&peer));
        let bytes = ack.to_bytes();
        self.send_stateless(&peer, bytes.clone()).await;
        self.pending.insert(id, Pending::Accepted { ack: bytes, peer: peer.clone(), since: Instant::now() });
        let bye = dialog.request(Method::Bye);
        self.send(bye, &peer, |_| Pending::Fire { since: Instant::now() }).await;
    }

    /// The peer for a dialog's next hop; when it cannot be resolved, `fallback`.
    pub(super) async fn hop_peer(&self, hop: &Uri, fallback: Option<Peer>) -> Peer {
        match self.peer_for(hop, false).await {
            Ok(p) => p,
            Err(e) => match fallback {
                Some(f) => f,
                None => {
                    tracing::warn!(error = e, "next hop unknown");
                    Peer::new(self.cfg.transport, SocketAddr::from(([127, 0, 0, 1], 5060)))
                }
            },
        }
    }
}
