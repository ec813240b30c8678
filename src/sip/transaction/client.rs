//! Client transactions (RFC 3261 §17.1, Figures 5 and 6; RFC 6026 Figure 3):
//! INVITE and non-INVITE, and the ACK for a non-2xx final response.

use std::time::Duration;

use tokio::time::Instant;

use super::{Action, ClientState, Retransmit, Timers, TuEvent, due, earliest};
use crate::sip::headers::HeaderName;
use crate::sip::message::{Method, Request, Response};

#[derive(Debug, Clone)]
pub struct ClientTransaction {
    invite: bool,
    state: ClientState,
    request: Request,
    wire: Vec<u8>,
    reliable: bool,
    timers: Timers,
    /// Timer A or E.
    retransmit: Option<Retransmit>,
    /// Timer B or F.
    timeout: Option<Instant>,
    /// Timer D, K or M.
    linger: Option<Instant>,
    /// The ACK for a non-2xx final response, resent for each retransmission of it.
    ack: Option<Vec<u8>>,
}

impl ClientTransaction {
    /// Starts the transaction: the request is sent at once.
    pub fn new(request: Request, reliable: bool, timers: Timers, now: Instant) -> (ClientTransaction, Vec<Action>) {
        let invite = request.method == Method::Invite;
        let wire = request.to_bytes();
        let t = ClientTransaction {
            invite,
            state: if invite { ClientState::Calling } else { ClientState::Trying },
            retransmit: (!reliable).then_some(Retransmit { at: now + timers.t1, interval: timers.t1 }),
            timeout: Some(now + timers.t64()),
            linger: None,
            ack: None,
            request,
            reliable,
            timers,
            wire: wire.clone(),
        };
        (t, vec![Action::Send(wire)])
    }

    pub fn state(&self) -> ClientState {
        self.state
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    /// When [`ClientTransaction::poll`] must next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        earliest([self.retransmit.map(|r| r.at), self.timeout, self.linger])
    }

    fn terminate(&mut self, out: &mut Vec<Action>) {
        self.state = ClientState::Terminated;
        self.retransmit = None;
        self.timeout = None;
        self.linger = None;
        out.push(Action::Terminated);
    }

    /// A response matched to this transaction.
    pub fn on_response(&mut self, resp: Response, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let status = resp.status;
        match (self.invite, self.state) {
            (true, ClientState::Calling | ClientState::Proceeding) => {
                self.retransmit = None;
                self.timeout = None;
                if status < 200 {
                    self.state = ClientState::Proceeding;
                } else if status < 300 {
                    // RFC 6026: wait in Accepted for 2xx retransmissions (Timer M); the TU ACKs them.
                    self.state = ClientState::Accepted;
                    self.linger = Some(now + self.timers.t64());
                } else {
                    self.state = ClientState::Completed;
                    let ack = build_ack(&self.request, &resp).to_bytes();
                    out.push(Action::Send(ack.clone()));
                    self.ack = Some(ack);
                    self.linger = Some(now + if self.reliable { Duration::ZERO } else { self.timers.d });
                }
                out.push(Action::Tu(TuEvent::Response(resp)));
            }
            (true, ClientState::Completed) if status >= 300 => {
                if let Some(ack) = &self.ack {
                    out.push(Action::Send(ack.clone()));
                }
            }
            (true, ClientState::Accepted) if (200..300).contains(&status) => {
                out.push(Action::Tu(TuEvent::Response(resp)));
            }
            (false, ClientState::Trying | ClientState::Proceeding) => {
                if status < 200 {
                    self.state = ClientState::Proceeding;
                } else {
                    self.state = ClientState::Completed;
                    self.retransmit = None;
                    self.timeout = None;
                    self.linger = Some(now + if self.reliable { Duration::ZERO } else { self.timers.t4 });
                }
                out.push(Action::Tu(TuEvent::Response(resp)));
            }
            _ => {} // absorbed (RFC 3261 §17.1.1.2, §17.1.2.2)
        }
        out.extend(self.poll(now));
        out
    }

    /// The transport failed to send the request.
    pub fn on_transport_error(&mut self, why: String) -> Vec<Action> {
        let mut out = vec![Action::Tu(TuEvent::TransportError(why))];
        self.terminate(&mut out);
        out
    }

    /// Fires every timer due at `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        while self.state != ClientState::Terminated {
            if due(self.timeout, now) {
                // Timer B (Calling) or F (Trying, Proceeding).
                out.push(Action::Tu(TuEvent::Timeout));
                self.terminate(&mut out);
            } else if due(self.linger, now) {
                // Timer D, K or M.
                self.terminate(&mut out);
            } else if let Some(r) = self.retransmit.filter(|r| r.at <= now) {
                out.push(Action::Send(self.wire.clone()));
                let interval = match (self.invite, self.state) {
                    (true, _) => r.interval.saturating_mul(2),                      // Timer A
                    (false, ClientState::Proceeding) => self.timers.t2,             // Timer E, Proceeding
                    (false, _) => r.interval.saturating_mul(2).min(self.timers.t2), // Timer E, Trying
                };
                self.retransmit = Some(Retransmit { at: r.at + interval, interval });
            } else {
                break;
            }
        }
        out
    }
}

/// RFC 3261 §17.1.1.3: the ACK for a non-2xx final response.
pub fn build_ack(invite: &Request, resp: &Response) -> Request {
    let mut ack = Request::new(Method::Ack, invite.uri.clone());
    if let Some(via) = invite.headers.get_all(&HeaderName::Via).next() {
        // Only the top Via value (the line may hold several).
        let top = crate::sip::syntax::split_list(via).next().unwrap_or(via);
        ack.headers.push(HeaderName::Via, top);
    }
    for h in invite.headers.iter() {
        match h.name {
            HeaderName::Route | HeaderName::From | HeaderName::CallId | HeaderName::MaxForwards => {
                ack.headers.push(h.name.clone(), h.value.clone());
            }
            _ => {}
        }
    }
    match resp.headers.get(&HeaderName::To) {
        Some(to) => ack.headers.push(HeaderName::To, to),
        None => {
            if let Some(to) = invite.headers.get(&HeaderName::To) {
                ack.headers.push(HeaderName::To, to);
            }
        }
    }
    let seq = invite.headers.cseq().map(|c| c.seq).unwrap_or(0);
    ack.headers.push(HeaderName::CSeq, format!("{seq} ACK"));
    ack
}
