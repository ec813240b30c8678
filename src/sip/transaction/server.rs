//! Server transactions (RFC 3261 §17.2, Figures 7 and 8; RFC 6026 Figure 5):
//! INVITE and non-INVITE.

use std::time::Duration;

use tokio::time::Instant;

use super::{Action, Retransmit, ServerState, Timers, TuEvent, due, earliest};
use crate::sip::message::{Method, Request, Response};

/// An INVITE or non-INVITE server transaction.
#[derive(Debug, Clone)]
pub struct ServerTransaction {
    invite: bool,
    state: ServerState,
    request: Request,
    reliable: bool,
    timers: Timers,
    last_response: Option<Vec<u8>>,
    /// Timer G, or the 2xx retransmission in Accepted.
    retransmit: Option<Retransmit>,
    /// Timer H or L.
    timeout: Option<Instant>,
    /// Timer I or J.
    linger: Option<Instant>,
    acked: bool,
}

impl ServerTransaction {
    /// Starts the transaction for a new request (already given to the TU by
    /// the caller). An INVITE is answered 100 Trying at once.
    pub fn new(request: Request, reliable: bool, timers: Timers, now: Instant) -> (ServerTransaction, Vec<Action>) {
        let _ = now;
        let invite = request.method == Method::Invite;
        let mut t = ServerTransaction {
            invite,
            state: if invite { ServerState::Proceeding } else { ServerState::Trying },
            request,
            reliable,
            timers,
            last_response: None,
            retransmit: None,
            timeout: None,
            linger: None,
            acked: false,
        };
        let mut out = Vec::new();
        if invite {
            let trying = Response::for_request(&t.request, 100).to_bytes();
            out.push(Action::Send(trying.clone()));
            t.last_response = Some(trying);
        }
        (t, out)
    }

    pub fn state(&self) -> ServerState {
        self.state
    }

    pub fn request(&self) -> &Request {
        &self.request
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        earliest([self.retransmit.map(|r| r.at), self.timeout, self.linger])
    }

    fn terminate(&mut self, out: &mut Vec<Action>) {
        self.state = ServerState::Terminated;
        self.retransmit = None;
        self.timeout = None;
        self.linger = None;
        out.push(Action::Terminated);
    }

    /// A retransmission of the request, or (INVITE) an ACK, matched to this transaction.
    pub fn on_request(&mut self, req: Request, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let resend = |out: &mut Vec<Action>, last: &Option<Vec<u8>>| {
            if let Some(bytes) = last {
                out.push(Action::Send(bytes.clone()));
            }
        };
        if req.method == Method::Ack {
            match self.state {
                ServerState::Completed if self.invite => {
                    self.state = ServerState::Confirmed;
                    self.retransmit = None;
                    self.timeout = None;
                    self.linger = Some(now + if self.reliable { Duration::ZERO } else { self.timers.t4 });
                }
                ServerState::Accepted if !self.acked => {
                    self.acked = true;
                    self.retransmit = None;
                    out.push(Action::Tu(TuEvent::Ack(req)));
                }
                _ => {}
            }
        } else {
            match self.state {
                ServerState::Proceeding | ServerState::Completed => resend(&mut out, &self.last_response),
                _ => {} // Trying, Confirmed, Accepted: absorbed
            }
        }
        out.extend(self.poll(now));
        out
    }

    /// A response from the transaction user.
    pub fn respond(&mut self, resp: Response, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        let status = resp.status;
        let bytes = resp.to_bytes();
        match (self.invite, self.state) {
            (true, ServerState::Proceeding) => {
                out.push(Action::Send(bytes.clone()));
                self.last_response = Some(bytes);
                if (200..300).contains(&status) {
                    self.state = ServerState::Accepted;
                    self.timeout = Some(now + self.timers.t64()); // Timer L
                    self.retransmit =
                        (!self.reliable).then_some(Retransmit { at: now + self.timers.t1, interval: self.timers.t1 });
                } else if status >= 300 {
                    self.state = ServerState::Completed;
                    self.timeout = Some(now + self.timers.t64()); // Timer H
                    self.retransmit =
                        (!self.reliable).then_some(Retransmit { at: now + self.timers.t1, interval: self.timers.t1 });
                }
            }
            (true, ServerState::Accepted) if (200..300).contains(&status) => {
                out.push(Action::Send(bytes.clone()));
                self.last_response = Some(bytes);
            }
            (false, ServerState::Trying | ServerState::Proceeding) => {
                out.push(Action::Send(bytes.clone()));
                self.last_response = Some(bytes);
                if status < 200 {
                    self.state = ServerState::Proceeding;
                } else {
                    self.state = ServerState::Completed;
                    self.linger = Some(now + if self.reliable { Duration::ZERO } else { self.timers.t64() }); // Timer J
                }
            }
            _ => tracing::debug!(status, state = ?self.state, "response from the TU ignored in this state"),
        }
        out.extend(self.poll(now));
        out
    }

    /// The transport failed to send a response.
    pub fn on_transport_error(&mut self, why: String) -> Vec<Action> {
        let mut out = vec![Action::Tu(TuEvent::TransportError(why))];
        self.terminate(&mut out);
        out
    }

    /// Fires every timer due at `now`.
    pub fn poll(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        while self.state != ServerState::Terminated {
            if due(self.timeout, now) {
                match self.state {
                    ServerState::Completed => out.push(Action::Tu(TuEvent::Timeout)), // Timer H
                    ServerState::Accepted if !self.acked => out.push(Action::Tu(TuEvent::AckTimeout)), // Timer L
                    _ => {}
                }
                self.terminate(&mut out);
            } else if due(self.linger, now) {
                self.terminate(&mut out); // Timer I or J
            } else if let Some(r) = self.retransmit.filter(|r| r.at <= now) {
                // Timer G, or the 2xx retransmission of §13.3.1.4.
                if let Some(bytes) = &self.last_response {
                    out.push(Action::Send(bytes.clone()));
                }
                let interval = r.interval.saturating_mul(2).min(self.timers.t2);
                self.retransmit = Some(Retransmit { at: r.at + interval, interval });
            } else {
                break;
            }
        }
        out
    }
}
