//! What reaches the user agent's task: the transaction layer's outputs
//! (requests, responses, timeouts, stray 2xx), the operator's commands and
//! the media's events, each handed to its flow.

use super::*;
use crate::media::MediaEvent;
use crate::sip::headers::HeaderName;
use crate::sip::message::{Method, Request, Response};
use crate::sip::phone::{PhoneCommand, PhoneEvent};
use crate::sip::transaction::{Output, TransactionId, TuEvent};
use crate::sip::transport::Peer;
use crate::sip::validate::uas_precheck;

impl Ua {
    pub(super) async fn on_output(&mut self, out: Output) {
        match out {
            Output::Request { id, request, peer, cancels } => self.on_request(id, request, peer, cancels).await,
            Output::Ack { request, peer: _, invite } => self.on_ack(request, invite).await,
            Output::Event { id, event } => self.on_event(id, event).await,
            Output::StrayResponse { response, peer } => self.on_stray(response, peer).await,
            Output::Send { .. } => {}
        }
    }

    pub(super) async fn on_request(
        &mut self,
        id: TransactionId,
        req: Request,
        peer: Peer,
        cancels: Option<TransactionId>,
    ) {
        if let Some(refusal) = uas_precheck(&req, &self.policy) {
            self.respond(id, refusal).await;
            return;
        }
        let in_dialog = req.headers.to().ok().and_then(|t| t.tag().map(str::to_owned)).is_some();
        match (&req.method, in_dialog) {
            (Method::Cancel, _) => self.on_cancel(id, &req, cancels).await,
            (Method::Invite, false) => self.on_new_invite(id, req, peer).await,
            (Method::Options, false) => {
                let resp = self.options_response(&req);
                self.respond(id, resp).await;
            }
            (_, true) => self.on_in_dialog(id, req, peer).await,
            (_, false) => {
                // BYE, NOTIFY, REFER, INFO, UPDATE outside a dialog name no call of ours.
                let resp = crate::sip::validate::stateless_response(&req, 481, "");
                self.respond(id, resp).await;
            }
        }
    }

    pub(super) fn options_response(&self, req: &Request) -> Response {
        let mut resp = crate::sip::validate::stateless_response(req, 200, "");
        resp.headers.push(HeaderName::Allow, self.policy.allow_header());
        resp.headers.push(HeaderName::Accept, self.policy.accept.join(", "));
        resp.headers.push(HeaderName::AcceptLanguage, "en, ru, uk");
        resp
    }

    pub(super) async fn on_event(&mut self, id: TransactionId, event: TuEvent) {
        match event {
            TuEvent::Response(resp) => self.on_response(id, resp).await,
            TuEvent::Timeout | TuEvent::TransportError(_) => {
                let failure = if event == TuEvent::Timeout { 408 } else { 503 };
                match self.pending.remove(&id) {
                    Some(Pending::Register { .. }) => {
                        let reason = match &event {
                            TuEvent::TransportError(why) => format!("the registrar cannot be reached: {why}"),
                            _ => "no answer from the registrar (is the network or the PBX down?)".to_owned(),
                        };
                        let Some(r) = &mut self.reg else { return };
                        let outcome = r.reg.failed(failure, reason, None);
                        self.on_register_outcome(outcome).await;
                    }
                    Some(Pending::Invite { call_id, sent }) => {
                        // A redirected call whose target is silent or unreachable goes on at the next.
                        if !self.try_next_target(&call_id, &sent, failure).await {
                            self.on_invite_failed(&call_id, failure).await;
                        }
                    }
                    Some(Pending::ReInvite { call_id, .. }) => {
                        tracing::warn!(call_id, "re-INVITE not answered: ending the call");
                        self.hangup(&call_id).await;
                    }
                    Some(Pending::Refer { call_id, target }) => {
                        tracing::warn!(call_id, target, "transfer not answered");
                    }
                    Some(_) | None => self.on_server_timeout(id, event).await,
                }
            }
            TuEvent::AckTimeout => self.on_ack_timeout(id).await,
            TuEvent::Ack(_) => {}
        }
    }

    pub(super) async fn on_response(&mut self, id: TransactionId, resp: Response) {
        let Some(pending) = self.pending.remove(&id) else { return };
        let provisional = resp.is_provisional();
        match pending {
            Pending::Register { sent } => {
                if provisional {
                    self.pending.insert(id, Pending::Register { sent });
                    return;
                }
                let Some(r) = &mut self.reg else { return };
                let outcome = r.reg.on_response(&sent, &resp);
                self.on_register_outcome(outcome).await;
            }
            Pending::Invite { call_id, sent } => self.on_invite_response(id, call_id, sent, resp).await,
            Pending::Accepted { ack, peer, since } => {
                // A retransmitted 2xx: our ACK was lost.
                if resp.is_success() {
                    self.send_stateless(&peer, ack.clone()).await;
                }
                self.pending.insert(id, Pending::Accepted { ack, peer, since });
            }
            Pending::ReInvite { call_id, sent, hold } => {
                if provisional {
                    self.pending.insert(id, Pending::ReInvite { call_id, sent, hold });
                    return;
                }
                self.on_reinvite_response(id, &call_id, &sent, hold, resp).await;
            }
            Pending::Refer { call_id, target } => {
                if provisional {
                    self.pending.insert(id, Pending::Refer { call_id, target });
                    return;
                }
                if !resp.is_success() {
                    tracing::warn!(call_id, target, status = resp.status, "the transfer was refused");
                }
            }
            Pending::Fire { since } => {
                if provisional {
                    self.pending.insert(id, Pending::Fire { since });
                }
            }
        }
    }

    pub(super) async fn on_stray(&mut self, resp: Response, _peer: Peer) {
        // A 2xx to an INVITE whose transaction is gone (retransmitted after Timer M):
        // acknowledge it if it is one of ours.
        if !resp.is_success() || resp.headers.cseq().map(|c| c.method != Method::Invite).unwrap_or(true) {
            return;
        }
        let Ok(call_id) = resp.headers.call_id() else { return };
        let found = self.pending.values().find_map(|p| match p {
            Pending::Accepted { ack, peer, .. } if ack_call_id_is(ack, call_id) => Some((peer.clone(), ack.clone())),
            _ => None,
        });
        if let Some((peer, ack)) = found {
            self.send_stateless(&peer, ack).await;
        }
    }

    pub(super) async fn on_command(&mut self, command: PhoneCommand) {
        match command {
            PhoneCommand::Dial { number } => self.dial(&number).await,
            PhoneCommand::Answer { call_id } => self.answer(&call_id, true).await,
            PhoneCommand::Reject { call_id } => self.reject(&call_id, 486).await,
            PhoneCommand::Hangup { call_id } => self.hangup(&call_id).await,
            PhoneCommand::Hold { call_id } => self.hold(&call_id, true).await,
            PhoneCommand::Resume { call_id } => self.hold(&call_id, false).await,
            PhoneCommand::Mute { call_id, on } => {
                if let Some(media) = self.calls.get(&call_id).and_then(|c| c.media.as_ref()) {
                    media.mute(on);
                }
            }
            PhoneCommand::Transfer { call_id, target } => self.transfer(&call_id, &target).await,
            PhoneCommand::Dtmf { call_id, digits } => match self.calls.get(&call_id).and_then(|c| c.media.as_ref()) {
                Some(media) => {
                    if let Err(e) = media.send_dtmf(&digits) {
                        tracing::warn!(error = %e, "DTMF not sent");
                    }
                }
                None => tracing::warn!(call_id, "DTMF for a call without media"),
            },
            PhoneCommand::SetAvailability(a) => self.availability = a,
        }
    }

    pub(super) fn on_media(&mut self, call_id: &str, generation: u64, event: MediaEvent) {
        let Some(call) = self.calls.get(call_id) else { return };
        if call.media_generation != generation {
            return;
        }
        match event {
            MediaEvent::Dtmf(digit) => self.emit(PhoneEvent::Dtmf { call_id: call_id.to_owned(), digit }),
            MediaEvent::Stats(stats) => self.emit(PhoneEvent::Quality {
                call_id: call_id.to_owned(),
                quality: stats.quality,
                mos: stats.mos,
                loss_percent: stats.loss_percent,
                jitter_ms: stats.jitter_ms,
                rtt_ms: stats.rtt_ms,
            }),
            MediaEvent::Latched(addr) => tracing::info!(call_id, %addr, "media latched to the peer's real address"),
            MediaEvent::Device(e) => {
                tracing::warn!(call_id, event = ?e, "sound device");
                self.emit(PhoneEvent::Device { call_id: call_id.to_owned(), device: e });
            }
            MediaEvent::Error(e) => tracing::warn!(call_id, error = e, "media"),
        }
    }
}
