//! Incoming calls: a new INVITE rings the operator (the caller's card
//! looked up off the task), answering, declining, ring timeout, CANCEL, the
//! ACK of our 2xx and the transactions that time out.

use std::net::SocketAddr;

use tokio::time::Instant;

use super::call::*;
use super::{Timer, Ua};
use crate::sip::dialog::{Dialog, DialogId};
use crate::sip::headers::HeaderName;
use crate::sip::message::{Request, Response};
use crate::sip::phone::{Availability, EndReason, PhoneEvent};
use crate::sip::sdp::{Direction, LocalMedia, SessionDescription, accept_answer, answer_offer, build_offer};
use crate::sip::transaction::{TransactionId, TuEvent};
use crate::sip::transport::Peer;
use crate::sip::validate::stateless_response;

impl Ua {
    pub(super) async fn on_new_invite(&mut self, id: TransactionId, req: Request, peer: Peer) {
        let taken = std::time::Instant::now();
        let refuse = |status: u16, reason: &str| stateless_response(&req, status, reason);
        if self.stopping {
            self.respond(id, refuse(503, "Service Unavailable - shutting down")).await;
            return;
        }
        if self.call_from_outside(peer.addr) {
            tracing::warn!(from = %peer.addr, "a call from outside the clinic's PBX refused");
            self.respond(id, refuse(403, "Forbidden - calls come through the clinic's PBX")).await;
            return;
        }
        let Ok(call_id) = req.headers.call_id().map(str::to_owned) else { return };
        if self.calls.contains_key(&call_id) {
            // The same call again by another path (RFC 3261 §8.2.2.2 merged request).
            self.respond(id, refuse(482, "Loop Detected")).await;
            return;
        }
        match self.availability {
            Availability::Available => {}
            Availability::Busy => {
                self.respond(id, refuse(486, "")).await;
                return;
            }
            Availability::DoNotDisturb => {
                self.respond(id, refuse(480, "")).await;
                return;
            }
        }
        let busy = self.calls.values().any(|c| c.state != CallState::Cancelling);
        if busy && self.cfg.when_in_call == super::WhenInCall::Busy {
            self.respond(id, refuse(486, "")).await;
            return;
        }
        let offer = match sdp_body(&req.body) {
            None => None,
            Some(Ok(o)) => Some(o),
            Some(Err(e)) => {
                self.respond(id, refuse(400, &format!("Bad Request - SDP: {e}"))).await;
                return;
            }
        };
        if let Some(o) = &offer {
            // Refuse at once what we could never answer, before ringing the operator.
            let probe = LocalMedia { rtp: SocketAddr::from(([127, 0, 0, 1], 9)), session_id: 1, session_version: 1 };
            if let Err(e) = answer_offer(o, &probe, &self.audio_config(Direction::SendRecv)) {
                let mut resp = refuse(488, "");
                resp.headers.push(HeaderName::Warning, format!("304 clinicdesk \"{e}\""));
                self.respond(id, resp).await;
                return;
            }
        }
        let tag = crate::sip::new_tag();
        let dialog = match Dialog::as_uas(&req, &tag) {
            Ok(d) => d,
            Err(e) => {
                self.respond(id, refuse(400, &format!("Bad Request - {e}"))).await;
                return;
            }
        };
        let (number, display_name) = caller_identity(&req, self.cfg.country);
        let did = req.headers.to().ok().map(|t| uri_user(&t.uri)).filter(|d| !d.is_empty());
        let ringing = self.dialog_response(&req, 180, &tag, &peer);
        self.call_counter += 1;
        let mut call = Call::new(CallState::Ringing, peer, req, self.call_counter);
        call.invite_tx = Some(id);
        call.remote_offer = offer;
        call.dialog = Some(dialog);
        self.calls.insert(call_id.clone(), call);
        self.respond(id, ringing).await;
        let incoming = PhoneEvent::Incoming {
            call_id: call_id.clone(),
            from: number.clone(),
            display_name,
            did: did.clone(),
            card: None,
        };
        self.announce(incoming, &number, did.as_deref(), Some(taken));
        self.start_ringtone(&call_id).await;
        let mut timers = vec![self.schedule(self.cfg.ring_timeout, Timer::RingTimeout { call_id: call_id.clone() })];
        if let Some(after) = self.cfg.auto_answer {
            timers.push(self.schedule(after, Timer::AutoAnswer { call_id: call_id.clone() }));
        }
        if let Some(call) = self.calls.get_mut(&call_id) {
            call.ring_timers = timers;
        }
    }

    /// Answers a ringing call. `hold_others`: the operator took a waiting
    /// call, so the one they were talking on goes on hold first (not so for
    /// auto-answer, which takes every call as it comes).
    pub(super) async fn answer(&mut self, call_id: &str, hold_others: bool) {
        let Some(call) = self.calls.get(call_id) else { return };
        if call.state != CallState::Ringing {
            return;
        }
        let talking: Vec<String> = if !hold_others {
            Vec::new()
        } else {
            self.calls
                .iter()
                .filter(|(id, c)| id.as_str() != call_id && c.state == CallState::Active && !c.held)
                .map(|(id, _)| id.clone())
                .collect()
        };
        for other in talking {
            self.hold(&other, true).await;
        }
        let Some(call) = self.calls.get(call_id) else { return };
        let (Some(tx), peer) = (call.invite_tx, call.peer.clone()) else { return };
        let (local, sockets) = match self.bind_media(peer.addr).await {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(call_id, error = %e, "cannot answer: no RTP socket");
                if let Some(call) = self.calls.get(call_id) {
                    let resp = stateless_response(&call.invite, 500, "Server Internal Error - no media");
                    self.respond(tx, resp).await;
                }
                self.finish_call(call_id, EndReason::Failed).await;
                return;
            }
        };
        let Some(call) = self.calls.get(call_id) else { return };
        let tag = call.dialog.as_ref().map(|d| d.id.local_tag.clone()).unwrap_or_default();
        let cfg = self.audio_config(Direction::SendRecv);
        let (body, negotiated) = match &call.remote_offer {
            Some(offer) => match answer_offer(offer, &local, &cfg) {
                Ok((answer, neg)) => (answer, Some(neg)),
                Err(e) => {
                    let mut resp = self.dialog_response(&call.invite, 488, &tag, &peer);
                    resp.headers.push(HeaderName::Warning, format!("304 clinicdesk \"{e}\""));
                    self.respond(tx, resp).await;
                    self.finish_call(call_id, EndReason::Failed).await;
                    return;
                }
            },
            // No offer in the INVITE: ours goes in the 2xx, the answer comes in the ACK.
            None => (build_offer(&local, &cfg), None),
        };
        let mut ok = self.dialog_response(&call.invite, 200, &tag, &peer);
        ok.set_body("application/sdp", body.to_bytes());
        let remote = call.remote_offer.clone();
        let ring_timers = self.calls.get_mut(call_id).map(|c| std::mem::take(&mut c.ring_timers)).unwrap_or_default();
        for t in ring_timers {
            self.cancel_timer(t);
        }
        if let Some(call) = self.calls.get_mut(call_id) {
            call.state = CallState::Active;
            call.answered = Some(Instant::now());
            call.rtp = Some(sockets);
            call.local_media = Some(local);
            call.last_local_sdp = Some(body.clone());
            if negotiated.is_none() {
                call.our_offer = Some(body);
            }
        }
        self.respond(tx, ok).await;
        if let (Some(neg), Some(remote)) = (negotiated, remote) {
            self.apply_media(call_id, &neg, &remote).await;
        }
        self.emit(PhoneEvent::Answered { call_id: call_id.to_owned() });
    }

    /// The operator's "reject": a ringing call is declined with `status`
    /// (486 busy); any other is hung up.
    pub(super) async fn reject(&mut self, call_id: &str, status: u16) {
        match self.calls.get(call_id) {
            Some(call) if call.state == CallState::Ringing => self.decline(call_id, status).await,
            Some(_) => self.hangup(call_id).await,
            None => {}
        }
    }

    /// Declines a ringing call with `status` (486 busy, 603 decline, 480 unavailable).
    pub(super) async fn decline(&mut self, call_id: &str, status: u16) {
        let Some(call) = self.calls.get(call_id) else { return };
        if call.state != CallState::Ringing {
            return;
        }
        let Some(tx) = call.invite_tx else { return };
        let tag = call.dialog.as_ref().map(|d| d.id.local_tag.clone()).unwrap_or_default();
        let resp = self.dialog_response(&call.invite, status, &tag, &call.peer.clone());
        self.respond(tx, resp).await;
        let reason = if status == 480 { EndReason::NotAnswered } else { EndReason::Rejected };
        self.finish_call(call_id, reason).await;
    }

    pub(super) async fn ring_timeout(&mut self, call_id: &str) {
        if self.calls.get(call_id).is_some_and(|c| c.state == CallState::Ringing) {
            self.decline(call_id, 480).await;
        }
    }

    pub(super) async fn on_cancel(&mut self, id: TransactionId, req: &Request, cancels: Option<TransactionId>) {
        let Some(invite_tx) = cancels else {
            self.respond(id, stateless_response(req, 481, "")).await;
            return;
        };
        let found = self.calls.iter().find(|(_, c)| c.invite_tx == Some(invite_tx)).map(|(k, _)| k.clone());
        let mut ok = Response::for_request(req, 200);
        if let Some(tag) = found.as_ref().and_then(|k| self.calls.get(k)).and_then(|c| c.dialog.as_ref()) {
            ok.set_to_tag(&tag.id.local_tag);
        } else {
            ok = stateless_response(req, 200, "");
        }
        self.respond(id, ok).await;
        let Some(call_id) = found else { return };
        let Some(call) = self.calls.get(&call_id) else { return };
        if call.state != CallState::Ringing {
            return; // answered already: the CANCEL changes nothing (RFC 3261 §9.2)
        }
        let tag = call.dialog.as_ref().map(|d| d.id.local_tag.clone()).unwrap_or_default();
        let terminated = self.dialog_response(&call.invite, 487, &tag, &call.peer.clone());
        self.respond(invite_tx, terminated).await;
        self.finish_call(&call_id, EndReason::NotAnswered).await;
    }

    pub(super) async fn on_ack(&mut self, req: Request, invite: Option<TransactionId>) {
        let did = DialogId::of_incoming(&req);
        let found = self
            .calls
            .iter()
            .find(|(_, c)| {
                (invite.is_some() && (c.invite_tx == invite || c.reinvite_tx == invite))
                    || (did.is_some() && c.dialog.as_ref().map(|d| &d.id) == did.as_ref())
            })
            .map(|(k, _)| k.clone());
        let Some(call_id) = found else { return };
        let Some(call) = self.calls.get_mut(&call_id) else { return };
        call.reinvite_tx = None;
        let Some(offer) = call.our_offer.clone() else { return };
        if req.body.is_empty() {
            return;
        }
        call.our_offer = None;
        match SessionDescription::parse(&req.body).and_then(|answer| Ok((accept_answer(&offer, &answer)?, answer))) {
            Ok((neg, answer)) => self.apply_media(&call_id, &neg, &answer).await,
            Err(e) => {
                tracing::warn!(call_id, error = %e, "the answer in the ACK is unusable: ending the call");
                self.hangup(&call_id).await;
            }
        }
    }

    pub(super) async fn on_ack_timeout(&mut self, id: TransactionId) {
        let found = self
            .calls
            .iter()
            .find(|(_, c)| c.invite_tx == Some(id) || c.reinvite_tx == Some(id))
            .map(|(k, _)| k.clone());
        if let Some(call_id) = found {
            tracing::warn!(call_id, "our 2xx was never acknowledged: ending the call");
            self.send_bye(&call_id).await;
            self.finish_call(&call_id, EndReason::Failed).await;
        }
    }

    /// A server transaction could not deliver our answer, or a client one of ours got none.
    pub(super) async fn on_server_timeout(&mut self, id: TransactionId, event: TuEvent) {
        if !matches!(event, TuEvent::TransportError(_)) {
            return;
        }
        let found = self
            .calls
            .iter()
            .find(|(_, c)| c.invite_tx == Some(id) && c.state == CallState::Ringing)
            .map(|(k, _)| k.clone());
        if let Some(call_id) = found {
            tracing::warn!(call_id, "the caller cannot be reached");
            self.finish_call(&call_id, EndReason::Failed).await;
        }
    }
}
