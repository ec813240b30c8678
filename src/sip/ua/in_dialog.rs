//! Requests inside a call: re-INVITE and UPDATE offers, BYE, INFO, NOTIFY;
//! hold and resume by re-INVITE; hanging up from our side.

use std::time::Duration;

use tokio::time::Instant;

use super::call::*;
use super::{Pending, Timer, Ua, put_top_via};
use crate::sip::dialog::{DialogError, DialogId};
use crate::sip::headers::HeaderName;
use crate::sip::message::{Method, Request, Response};
use crate::sip::phone::{EndReason, PhoneEvent};
use crate::sip::sdp::{AudioConfig, Direction, accept_answer, answer_offer, build_offer};
use crate::sip::transaction::TransactionId;
use crate::sip::transport::Peer;
use crate::sip::validate::stateless_response;

impl Ua {
    /// A response to `req` that belongs to a call's dialog: our tag, Contact,
    /// the Record-Route copied (RFC 3261 §12.1.1), Allow.
    pub(super) fn dialog_response(&self, req: &Request, status: u16, tag: &str, peer: &Peer) -> Response {
        let mut resp = Response::for_request(req, status);
        resp.set_to_tag(tag);
        if status > 100 && status < 300 {
            for rr in req.headers.get_all(&HeaderName::RecordRoute) {
                resp.headers.push(HeaderName::RecordRoute, rr);
            }
            resp.headers.push_typed(HeaderName::Contact, &self.contact(peer));
            resp.headers.push(HeaderName::Allow, self.policy.allow_header());
        }
        resp
    }

    pub(super) async fn on_in_dialog(&mut self, id: TransactionId, req: Request, peer: Peer) {
        let did = DialogId::of_incoming(&req);
        let found = self
            .calls
            .iter()
            .find(|(_, c)| did.is_some() && c.dialog.as_ref().map(|d| &d.id) == did.as_ref())
            .map(|(k, _)| k.clone());
        let Some(call_id) = found else {
            if req.method == Method::Options {
                let resp = self.options_response(&req);
                self.respond(id, resp).await;
            } else {
                self.respond(id, stateless_response(&req, 481, "")).await;
            }
            return;
        };
        let checked = match self.calls.get_mut(&call_id).and_then(|c| c.dialog.as_mut()) {
            Some(d) => d.on_request(&req),
            None => Ok(()),
        };
        if let Err(e @ DialogError::OutOfOrder { .. }) = checked {
            self.respond(id, stateless_response(&req, 500, &format!("Server Internal Error - {e}"))).await;
            return;
        }
        let tag = did.map(|d| d.local_tag).unwrap_or_default();
        match req.method {
            Method::Bye => {
                let ok = self.dialog_response(&req, 200, &tag, &peer);
                self.respond(id, ok).await;
                let ringing = self.calls.get(&call_id).is_some_and(|c| c.state == CallState::Ringing);
                if ringing {
                    // A BYE in the early dialog ends the INVITE too.
                    if let Some(call) = self.calls.get(&call_id)
                        && let Some(tx) = call.invite_tx
                    {
                        let resp = self.dialog_response(&call.invite, 487, &tag, &peer);
                        self.respond(tx, resp).await;
                    }
                    self.finish_call(&call_id, EndReason::NotAnswered).await;
                } else {
                    let away = self.calls.get(&call_id).is_some_and(|c| c.transferred_away);
                    let reason = if away { EndReason::Transferred } else { EndReason::HungUp };
                    self.finish_call(&call_id, reason).await;
                }
            }
            Method::Invite | Method::Update => self.on_offer_in_dialog(id, &call_id, req, &tag, peer).await,
            Method::Info => {
                let ok = self.dialog_response(&req, 200, &tag, &peer);
                self.respond(id, ok).await;
                if let Some(digit) = info_digit(&req.body) {
                    self.emit(PhoneEvent::Dtmf { call_id, digit });
                }
            }
            Method::Notify => self.on_notify(id, &call_id, &req, &tag, &peer).await,
            Method::Refer => self.on_refer(id, &call_id, &req, &tag, &peer).await,
            Method::Options => {
                let mut resp = self.options_response(&req);
                resp.set_to_tag(&tag);
                self.respond(id, resp).await;
            }
            _ => {
                let mut resp = stateless_response(&req, 405, "");
                resp.headers.push(HeaderName::Allow, self.policy.allow_header());
                self.respond(id, resp).await;
            }
        }
    }

    /// A re-INVITE or UPDATE from the peer: answer its offer (hold, resume,
    /// a new address), or make one when it carries none.
    pub(super) async fn on_offer_in_dialog(
        &mut self,
        id: TransactionId,
        call_id: &str,
        req: Request,
        tag: &str,
        peer: Peer,
    ) {
        let Some(call) = self.calls.get(call_id) else { return };
        let invite = req.method == Method::Invite;
        if call.reinvite_out || (invite && call.reinvite_tx.is_some()) {
            self.respond(id, self.dialog_response(&req, 491, tag, &peer)).await;
            return;
        }
        let early = call.state != CallState::Active;
        let offer = match sdp_body(&req.body) {
            None => None,
            Some(Ok(o)) => Some(o),
            Some(Err(e)) => {
                self.respond(id, stateless_response(&req, 400, &format!("Bad Request - SDP: {e}"))).await;
                return;
            }
        };
        if early || call.local_media.is_none() {
            // Nothing agreed yet to change (an UPDATE while ringing): accept without SDP.
            if offer.is_some() {
                self.respond(id, self.dialog_response(&req, 488, tag, &peer)).await;
            } else {
                self.respond(id, self.dialog_response(&req, 200, tag, &peer)).await;
            }
            return;
        }
        let Some(mut local) = call.local_media.clone() else { return };
        local.session_version += 1;
        let wanted = if call.held { Direction::SendOnly } else { Direction::SendRecv };
        let in_use = call.codec_in_use.as_ref().map(|c| (c.encoding.clone(), c.clock_rate));
        let mut ok = self.dialog_response(&req, 200, tag, &peer);
        match offer {
            Some(offer) => {
                let cfg = AudioConfig { in_use, ..self.audio_config(wanted) };
                match answer_offer(&offer, &local, &cfg) {
                    Ok((answer, neg)) => {
                        ok.set_body("application/sdp", answer.to_bytes());
                        if offer_holds(&offer) {
                            tracing::info!(call_id, "the other side holds the call");
                        }
                        if let Some(call) = self.calls.get_mut(call_id) {
                            call.local_media = Some(local);
                            call.last_local_sdp = Some(answer);
                            if invite {
                                call.reinvite_tx = Some(id);
                            }
                        }
                        self.respond(id, ok).await;
                        self.apply_media(call_id, &neg, &offer).await;
                    }
                    Err(e) => {
                        let mut resp = self.dialog_response(&req, 488, tag, &peer);
                        resp.headers.push(HeaderName::Warning, format!("304 clinicdesk \"{e}\""));
                        self.respond(id, resp).await;
                    }
                }
            }
            None if invite => {
                // An offerless re-INVITE: our current session goes in the 2xx, the answer in the ACK.
                let base =
                    call.last_local_sdp.clone().unwrap_or_else(|| build_offer(&local, &self.audio_config(wanted)));
                let ours = with_direction(&base, wanted);
                ok.set_body("application/sdp", ours.to_bytes());
                if let Some(call) = self.calls.get_mut(call_id) {
                    call.reinvite_tx = Some(id);
                    call.our_offer = Some(ours.clone());
                    call.last_local_sdp = Some(ours);
                }
                self.respond(id, ok).await;
            }
            None => self.respond(id, ok).await,
        }
    }

    pub(super) async fn on_notify(&mut self, id: TransactionId, call_id: &str, req: &Request, tag: &str, peer: &Peer) {
        self.respond(id, self.dialog_response(req, 200, tag, peer)).await;
        let is_refer = req.headers.event().ok().flatten().is_some_and(|e| e.package.eq_ignore_ascii_case("refer"));
        let Some(status) = sipfrag_status(&req.body).filter(|_| is_refer) else { return };
        let Some(target) = self.calls.get(call_id).and_then(|c| c.transfer_target.clone()) else { return };
        match status {
            100..=199 => {}
            200..=299 => {
                // The transfer target answered: our part of the call is over (and, in an
                // attended transfer, of the call to the target, which the caller now has).
                let replaced = self.calls.get(call_id).and_then(|c| c.transfer_replaces.clone());
                self.send_bye(call_id).await;
                self.emit(PhoneEvent::Transferred { call_id: call_id.to_owned(), target });
                self.finish_call(call_id, EndReason::Transferred).await;
                if let Some(other) = replaced.filter(|o| self.calls.contains_key(o)) {
                    self.send_bye(&other).await;
                    self.finish_call(&other, EndReason::Transferred).await;
                }
            }
            _ => {
                tracing::warn!(call_id, target, status, "the transfer failed; the call goes on");
                if let Some(call) = self.calls.get_mut(call_id) {
                    call.transfer_target = None;
                    call.transfer_replaces = None;
                }
            }
        }
    }

    /// Sends the CANCEL asked for before the first provisional answer; true when sent.
    pub(super) async fn send_pending_cancel(&mut self, call_id: &str) -> bool {
        let Some(call) = self.calls.get_mut(call_id) else { return false };
        if !call.cancel_pending {
            return false;
        }
        call.cancel_pending = false;
        let cancel = cancel_for(&call.invite);
        let peer = call.peer.clone();
        self.send(cancel, &peer, |_| Pending::Fire { since: Instant::now() }).await;
        true
    }

    /// Ends a call from our side: decline if ringing, CANCEL if calling, BYE if talking.
    pub(super) async fn hangup(&mut self, call_id: &str) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        match call.state {
            CallState::Ringing => self.decline(call_id, 603).await,
            CallState::Calling => {
                call.state = CallState::Cancelling;
                if call.provisional {
                    let cancel = cancel_for(&call.invite);
                    let peer = call.peer.clone();
                    self.send(cancel, &peer, |_| Pending::Fire { since: Instant::now() }).await;
                } else {
                    // RFC 3261 §9.1: no CANCEL before a provisional answer; it goes with the first.
                    call.cancel_pending = true;
                }
                let give_up = self.cfg.timers.t64() + Duration::from_secs(5);
                self.schedule(give_up, Timer::CancelGiveUp { call_id: call_id.to_owned() });
                self.report_end(call_id, EndReason::NotAnswered).await;
            }
            CallState::Active => {
                self.send_bye(call_id).await;
                self.finish_call(call_id, EndReason::HungUp).await;
            }
            CallState::Cancelling => {}
        }
    }

    /// Sends BYE in the call's dialog (if it has one).
    pub(super) async fn send_bye(&mut self, call_id: &str) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        let fallback = call.peer.clone();
        let Some(dialog) = call.dialog.as_mut() else { return };
        let bye = dialog.request(Method::Bye);
        let hop = dialog.next_hop().clone();
        let peer = self.hop_peer(&hop, Some(fallback)).await;
        self.send(bye, &peer, |_| Pending::Fire { since: Instant::now() }).await;
    }

    /// Puts the call on hold (`hold`) or takes it off hold, by re-INVITE.
    pub(super) async fn hold(&mut self, call_id: &str, hold: bool) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        if call.state != CallState::Active {
            return;
        }
        if hold && let Some(media) = &call.media {
            // The microphone goes quiet now, not when the peer agrees: the held
            // party must not hear the operator's next conversation meanwhile.
            media.hold(true);
        }
        if call.reinvite_out || call.reinvite_tx.is_some() {
            // Another offer is under way: ask again once it is done.
            self.schedule(Duration::from_millis(500), Timer::ReInviteRetry { call_id: call_id.to_owned(), hold });
            return;
        }
        let Some(base) = call.last_local_sdp.clone() else { return };
        let direction = if hold { Direction::SendOnly } else { Direction::SendRecv };
        let mut offer = with_direction(&base, direction);
        if let Some(codec) = &call.codec_in_use {
            put_codec_first(&mut offer, codec);
        }
        let fallback = call.peer.clone();
        let Some(dialog) = call.dialog.as_mut() else { return };
        let mut req = dialog.request(Method::Invite);
        let hop = dialog.next_hop().clone();
        req.set_body("application/sdp", offer.to_bytes());
        call.reinvite_out = true;
        call.our_offer = Some(offer.clone());
        call.last_local_sdp = Some(offer);
        if let Some(local) = &mut call.local_media {
            local.session_version = local.session_version.wrapping_add(1);
        }
        let peer = self.hop_peer(&hop, Some(fallback)).await;
        let pending = |sent: &Request| Pending::ReInvite { call_id: call_id.to_owned(), sent: sent.clone(), hold };
        if self.send(req, &peer, pending).await.is_none()
            && let Some(call) = self.calls.get_mut(call_id)
        {
            call.reinvite_out = false;
        }
    }

    pub(super) async fn on_reinvite_response(
        &mut self,
        id: TransactionId,
        call_id: &str,
        sent: &Request,
        hold: bool,
        resp: Response,
    ) {
        let Some(call) = self.calls.get_mut(call_id) else { return };
        call.reinvite_out = false;
        let offer = call.our_offer.take();
        match resp.status {
            200..=299 => {
                let fallback = call.peer.clone();
                let Some(dialog) = call.dialog.as_mut() else { return };
                dialog.on_refresh_response(&resp);
                let seq = sent.headers.cseq().map(|c| c.seq).unwrap_or(1);
                let mut ack = dialog.ack(seq);
                let hop = dialog.next_hop().clone();
                let peer = self.hop_peer(&hop, Some(fallback)).await;
                put_top_via(&mut ack, &self.via(&peer));
                let bytes = ack.to_bytes();
                self.send_stateless(&peer, bytes.clone()).await;
                self.pending.insert(id, Pending::Accepted { ack: bytes, peer, since: Instant::now() });
                if let (Some(Ok(answer)), Some(offer)) = (sdp_body(&resp.body), offer) {
                    match accept_answer(&offer, &answer) {
                        Ok(neg) => self.apply_media(call_id, &neg, &answer).await,
                        Err(e) => tracing::warn!(call_id, error = %e, "unusable answer to our re-INVITE"),
                    }
                }
                if let Some(call) = self.calls.get_mut(call_id) {
                    call.held = hold;
                    if let Some(media) = &call.media {
                        media.hold(hold);
                    }
                }
                let call_id = call_id.to_owned();
                self.emit(if hold { PhoneEvent::Held { call_id } } else { PhoneEvent::Resumed { call_id } });
            }
            491 => {
                // RFC 3261 §14.1: glare; try again after a while.
                self.schedule(Duration::from_millis(2500), Timer::ReInviteRetry { call_id: call_id.to_owned(), hold });
            }
            408 | 481 => {
                tracing::warn!(call_id, status = resp.status, "the call is gone on the other side");
                self.send_bye(call_id).await;
                self.finish_call(call_id, EndReason::HungUp).await;
            }
            status => {
                tracing::warn!(call_id, status, "the other side refused the change; the call stays as it was");
                if let Some(call) = self.calls.get_mut(call_id)
                    && let Some(prev) = call.last_local_sdp.take()
                {
                    let back = if call.held { Direction::SendOnly } else { Direction::SendRecv };
                    call.last_local_sdp = Some(with_direction(&prev, back));
                }
                if hold && let Some(call) = self.calls.get_mut(call_id) {
                    // The peer would not hear of hold, but the operator asked for it: the
                    // microphone stays quiet and the call counts as held here.
                    call.held = true;
                    let call_id = call_id.to_owned();
                    self.emit(PhoneEvent::Held { call_id });
                }
            }
        }
    }
}
