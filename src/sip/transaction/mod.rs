//! The RFC 3261 §17 transactions, with the RFC 6026 corrections for 2xx.
//!
//! The four state machines ([`ClientTransaction`] for INVITE and
//! non-INVITE, [`ServerTransaction`] likewise) are pure: they take an input
//! (a message, a response from the transaction user, or the time) and return
//! [`Action`]s (send these bytes, tell the TU this, terminated). They keep
//! their timers as deadlines; [`ClientTransaction::poll`] fires the ones due
//! at `now` and `next_deadline` says when to call it again. Tests drive
//! them with a simulated clock; [`TransactionLayer`] routes messages to them
//! (RFC 3261 §17.1.3 and §17.2.3 matching, with the RFC 2543 fallback for
//! branches without the magic cookie, RFC 4475 §3.2.1 and §3.4.1), and
//! [`run`] drives a layer from a tokio task over a
//! [`crate::sip::transport::TransportLayer`].
//!
//! | Machine | States | Timers (UDP; over TCP/TLS no retransmissions and D, I, J, K are 0) |
//! |---|---|---|
//! | INVITE client | Calling, Proceeding, Completed, Accepted | A retransmit (T1 doubling), B timeout 64·T1, D 32 s, M 64·T1 |
//! | non-INVITE client | Trying, Proceeding, Completed | E retransmit (T1 doubling to T2), F timeout 64·T1, K T4 |
//! | INVITE server | Proceeding, Completed, Confirmed, Accepted | G retransmit (T1 doubling to T2), H 64·T1, I T4, L 64·T1 |
//! | non-INVITE server | Trying, Proceeding, Completed | J 64·T1 |
//!
//! Decisions beyond the RFC text: an INVITE server transaction sends 100
//! Trying at once; the ACK for a non-2xx final response is built here from
//! the INVITE (§17.1.1.3); and the 2xx of an INVITE server transaction is
//! retransmitted from the Accepted state (T1 doubling to T2, UDP only) until
//! its ACK arrives — the UAS core's duty in §13.3.1.4, done here so the user
//! agent gets `TuEvent::AckTimeout` (send BYE) instead of writing that loop.
//! The ACK for a 2xx carries a new branch, so the layer finds its INVITE by
//! Call-ID, CSeq number and From tag.
//!
//! The machines live in `client.rs` and `server.rs`, the routing layer in
//! `layer.rs`, the tokio task that drives it in `task.rs`; the shared
//! vocabulary (timers, actions, states) is here.

mod client;
mod layer;
mod server;
mod task;
#[cfg(test)]
mod tests;

pub use client::{ClientTransaction, build_ack};
pub(crate) use layer::shrink_when_idle;
pub use layer::{Output, TransactionId, TransactionLayer};
pub use server::ServerTransaction;
pub use task::{Command, LayerHandle, LayerStopped, run};

use std::time::Duration;

use tokio::time::Instant;

use super::message::{Request, Response};

/// The base timers of RFC 3261 §17 (Table 4), configurable for tests and odd networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// RTT estimate (500 ms).
    pub t1: Duration,
    /// Longest retransmit interval for non-INVITE requests and INVITE responses (4 s).
    pub t2: Duration,
    /// Longest time a message stays in the network (5 s).
    pub t4: Duration,
    /// Timer D over UDP (at least 32 s).
    pub d: Duration,
}

impl Default for Timers {
    fn default() -> Timers {
        Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            d: Duration::from_secs(32),
        }
    }
}

impl Timers {
    /// 64·T1: Timers B, F, H, J (UDP), L and M.
    pub fn t64(&self) -> Duration {
        self.t1.saturating_mul(64)
    }
}

/// What a transaction asks of its surroundings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes to the transaction's peer.
    Send(Vec<u8>),
    /// Tell the transaction user.
    Tu(TuEvent),
    /// The transaction is over; forget it.
    Terminated,
}

/// What a transaction tells its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TuEvent {
    /// Client: a response (provisional, final, and in Accepted each 2xx retransmission so the TU re-ACKs).
    Response(Response),
    /// Client: no final response in time (Timer B or F). Server INVITE: no ACK for a non-2xx (Timer H).
    Timeout,
    /// The transport could not deliver: why (a refused connection, a certificate problem, ...).
    TransportError(String),
    /// Server INVITE: the ACK for its 2xx arrived (passed once; the layer
    /// reports it to the UA as [`Output::Ack`]).
    Ack(Request),
    /// Server INVITE: the 2xx was never ACKed (Timer L); the TU should end the dialog with BYE.
    AckTimeout,
}

/// States of client transactions (RFC 3261 Figures 5 and 6, RFC 6026 Figure 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientState {
    Calling,
    Trying,
    Proceeding,
    Completed,
    Accepted,
    Terminated,
}

/// States of server transactions (RFC 3261 Figures 7 and 8, RFC 6026 Figure 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    Trying,
    Proceeding,
    Completed,
    Confirmed,
    Accepted,
    Terminated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Retransmit {
    at: Instant,
    interval: Duration,
}

fn due(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|d| d <= now)
}

fn earliest(deadlines: [Option<Instant>; 3]) -> Option<Instant> {
    deadlines.into_iter().flatten().min()
}
