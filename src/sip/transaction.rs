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

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::headers::{HeaderName, NameAddr};
use super::message::{Method, Request, Response};
use super::transport::{Incoming, Peer, TransportLayer};
use super::validate::{Inbound, response_destination, validate_datagram};

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

/// An INVITE or non-INVITE client transaction.
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
        let top = super::syntax::split_list(via).next().unwrap_or(via);
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

/// Identifies a transaction to its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransactionId(pub u64);

/// RFC 3261 §17.2.3 server matching key (ACK folded into INVITE).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ServerKey {
    Rfc3261 {
        branch: String,
        sent_by: String,
        method: String,
    },
    /// RFC 2543: Request-URI, From tag, Call-ID, CSeq number, top Via (the To tag is left out
    /// so the ACK, which carries the tag of our response, matches its INVITE).
    Rfc2543 {
        uri: String,
        from_tag: String,
        call_id: String,
        cseq: u32,
        via: String,
        method: String,
    },
}

fn key_method(m: &Method) -> String {
    if *m == Method::Ack { Method::Invite.as_str().to_owned() } else { m.as_str().to_owned() }
}

fn server_key(req: &Request, method: &Method) -> Option<ServerKey> {
    let via = req.headers.top_via().ok()?;
    if via.has_rfc3261_branch() {
        let branch = via.branch()?.to_owned();
        let sent_by = format!("{}:{}", via.host, via.port_or_default()).to_ascii_lowercase();
        return Some(ServerKey::Rfc3261 { branch, sent_by, method: key_method(method) });
    }
    let mut top = via.clone();
    // Our own stamps would make a retransmission look different from the first copy.
    top.params.remove("received");
    top.params.remove("rport");
    Some(ServerKey::Rfc2543 {
        uri: req.uri.to_string(),
        from_tag: req.headers.from().ok()?.tag().unwrap_or("").to_owned(),
        call_id: req.headers.call_id().ok()?.to_owned(),
        cseq: req.headers.cseq().ok()?.seq,
        via: top.to_string(),
        method: key_method(method),
    })
}

/// RFC 3261 §17.1.3 client matching key: top Via branch and CSeq method.
fn client_key_of_response(resp: &Response) -> Option<(String, String)> {
    let via = resp.headers.top_via().ok()?;
    Some((via.branch()?.to_owned(), resp.headers.cseq().ok()?.method.as_str().to_owned()))
}

/// What the layer asks of the transport and the user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes to `peer`.
    Send { peer: Peer, bytes: Vec<u8> },
    /// A new request: a server transaction `id` now waits for the UA's
    /// response (run [`crate::sip::validate::uas_precheck`] first).
    /// `cancels` names the INVITE transaction a CANCEL is for.
    Request { id: TransactionId, request: Request, peer: Peer, cancels: Option<TransactionId> },
    /// An ACK with no transaction of its own (the ACK for a 2xx, RFC 3261
    /// §13.3.1.4); `invite` is the server transaction whose 2xx it
    /// acknowledges, if that still exists.
    Ack { request: Request, peer: Peer, invite: Option<TransactionId> },
    /// A transaction's event for the UA.
    Event { id: TransactionId, event: TuEvent },
    /// A response that matches no client transaction (for example a 2xx
    /// retransmitted after Timer M): the dialog layer may still want it.
    StrayResponse { response: Response, peer: Peer },
}

struct ClientEntry {
    id: TransactionId,
    peer: Peer,
    tx: ClientTransaction,
}

struct ServerEntry {
    id: TransactionId,
    peer: Peer,
    tx: ServerTransaction,
    /// (Call-ID, CSeq number, From tag) of an INVITE, to find it from the ACK for its 2xx.
    dialog: Option<(String, u32, String)>,
}

type ClientKey = (String, String);
type DialogKey = (String, u32, String);

/// Where a transaction lives in the layer's tables.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Slot {
    Client(ClientKey),
    Server(ServerKey),
}

/// All transactions of one user agent, and the routing between them, the
/// network and the transaction user. Pure: the caller passes the time and
/// carries out the [`Output`]s ([`run`] does this over real sockets).
///
/// A busy workstation (or a load test) keeps thousands of transactions
/// alive at once, most of them only waiting out Timer J or L; so every
/// lookup is by index (id, dialog) and timers are kept in a heap, never
/// found by walking all transactions.
pub struct TransactionLayer {
    timers: Timers,
    next_id: u64,
    clients: HashMap<ClientKey, ClientEntry>,
    servers: HashMap<ServerKey, ServerEntry>,
    by_id: HashMap<TransactionId, Slot>,
    invites_by_dialog: HashMap<DialogKey, ServerKey>,
    /// Each transaction's deadlines as they were set; an entry that no longer
    /// matches its transaction is dropped when it reaches the top.
    deadlines: std::collections::BinaryHeap<std::cmp::Reverse<(Instant, TransactionId)>>,
}

impl TransactionLayer {
    pub fn new(timers: Timers) -> TransactionLayer {
        TransactionLayer {
            timers,
            next_id: 1,
            clients: HashMap::new(),
            servers: HashMap::new(),
            by_id: HashMap::new(),
            invites_by_dialog: HashMap::new(),
            deadlines: std::collections::BinaryHeap::new(),
        }
    }

    fn new_id(&mut self) -> TransactionId {
        let id = TransactionId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    /// The deadline transaction `id` has now, if it is alive.
    fn deadline_of(&self, id: TransactionId) -> Option<Instant> {
        match self.by_id.get(&id)? {
            Slot::Client(k) => self.clients.get(k)?.tx.next_deadline(),
            Slot::Server(k) => self.servers.get(k)?.tx.next_deadline(),
        }
    }

    /// Records transaction `id`'s deadline after it changed.
    fn track(&mut self, id: TransactionId) {
        if let Some(at) = self.deadline_of(id) {
            self.deadlines.push(std::cmp::Reverse((at, id)));
        }
        self.tidy();
    }

    /// Drops heap entries that no longer match their transaction, so the top is the true next deadline.
    fn tidy(&mut self) {
        while let Some(std::cmp::Reverse((at, id))) = self.deadlines.peek().copied() {
            if self.deadline_of(id) == Some(at) {
                break;
            }
            self.deadlines.pop();
        }
    }

    fn insert_client(&mut self, key: ClientKey, entry: ClientEntry) {
        let id = entry.id;
        self.by_id.insert(id, Slot::Client(key.clone()));
        self.clients.insert(key, entry);
        self.track(id);
    }

    fn insert_server(&mut self, key: ServerKey, entry: ServerEntry) {
        let id = entry.id;
        if let Some(d) = &entry.dialog {
            self.invites_by_dialog.insert(d.clone(), key.clone());
        }
        self.by_id.insert(id, Slot::Server(key.clone()));
        self.servers.insert(key, entry);
        self.track(id);
    }

    fn remove_client(&mut self, key: &ClientKey) -> Option<ClientEntry> {
        let entry = self.clients.remove(key)?;
        self.by_id.remove(&entry.id);
        self.tidy();
        Some(entry)
    }

    fn remove_server(&mut self, key: &ServerKey) -> Option<ServerEntry> {
        let entry = self.servers.remove(key)?;
        self.by_id.remove(&entry.id);
        if let Some(d) = &entry.dialog
            && self.invites_by_dialog.get(d) == Some(key)
        {
            self.invites_by_dialog.remove(d);
        }
        self.tidy();
        Some(entry)
    }

    /// Starts a client transaction for `request` (its top Via must carry a
    /// fresh RFC 3261 branch, see [`crate::sip::new_branch`]). An ACK for a
    /// 2xx has no transaction: send it with [`TransactionLayer::send_stateless`].
    pub fn send_request(&mut self, request: Request, peer: Peer, now: Instant) -> (TransactionId, Vec<Output>) {
        let id = self.new_id();
        if request.method == Method::Ack {
            // An ACK never has a client transaction (RFC 3261 §17.1.1.3 builds the
            // non-2xx one here; the 2xx one is the UA's): just send it.
            return (id, vec![Output::Send { peer, bytes: request.to_bytes() }]);
        }
        let branch = request.headers.top_via().ok().and_then(|v| v.branch().map(str::to_owned)).unwrap_or_default();
        let key = (branch, request.method.as_str().to_owned());
        let (tx, actions) = ClientTransaction::new(request, peer.transport.is_reliable(), self.timers, now);
        let mut out = Vec::new();
        convert(id, &peer, actions, &mut out);
        if !tx_terminated_client(&tx) {
            self.insert_client(key, ClientEntry { id, peer, tx });
        }
        (id, out)
    }

    /// A message sent outside any transaction (the ACK for a 2xx, a stateless response).
    pub fn send_stateless(&self, bytes: Vec<u8>, peer: Peer) -> Output {
        Output::Send { peer, bytes }
    }

    /// A response from the UA for server transaction `id`.
    pub fn respond(&mut self, id: TransactionId, response: Response, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let key = match self.by_id.get(&id) {
            Some(Slot::Server(k)) => k.clone(),
            _ => {
                tracing::debug!(?id, status = response.status, "response for a finished server transaction dropped");
                return out;
            }
        };
        let Some(entry) = self.servers.get_mut(&key) else { return out };
        let actions = entry.tx.respond(response, now);
        if convert(id, &entry.peer, actions, &mut out) {
            self.remove_server(&key);
        } else {
            self.track(id);
        }
        out
    }

    /// One message from the network (a datagram, or a framed stream message).
    pub fn on_message(&mut self, data: &[u8], peer: Peer, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        match validate_datagram(data, peer.addr) {
            Inbound::Drop(why) => tracing::debug!(%why, from = %peer.addr, "message dropped"),
            Inbound::Reply(resp) => {
                let dest = reply_peer(&peer, &resp);
                out.push(Output::Send { peer: dest, bytes: resp.to_bytes() });
            }
            Inbound::Response(resp) => self.on_response(resp, peer, now, &mut out),
            Inbound::Request(req) => self.on_request(req, peer, now, &mut out),
        }
        out
    }

    fn on_response(&mut self, resp: Response, peer: Peer, now: Instant, out: &mut Vec<Output>) {
        let Some(key) = client_key_of_response(&resp) else {
            out.push(Output::StrayResponse { response: resp, peer });
            return;
        };
        let Some(entry) = self.clients.get_mut(&key) else {
            out.push(Output::StrayResponse { response: resp, peer });
            return;
        };
        let id = entry.id;
        let actions = entry.tx.on_response(resp, now);
        if convert(id, &entry.peer, actions, out) {
            self.remove_client(&key);
        } else {
            self.track(id);
        }
    }

    /// `req` comes from `validate_datagram`, with `received`/`rport` already stamped.
    fn on_request(&mut self, req: Request, peer: Peer, now: Instant, out: &mut Vec<Output>) {
        let Some(key) = server_key(&req, &req.method) else { return };
        if let Some(entry) = self.servers.get_mut(&key) {
            let id = entry.id;
            let mut actions = entry.tx.on_request(req, now);
            // An ACK for a 2xx that reused the INVITE's branch: report it like any 2xx ACK.
            actions.retain(|a| match a {
                Action::Tu(TuEvent::Ack(ack)) => {
                    out.push(Output::Ack { request: ack.clone(), peer: peer.clone(), invite: Some(id) });
                    false
                }
                _ => true,
            });
            if convert(id, &entry.peer, actions, out) {
                self.remove_server(&key);
            } else {
                self.track(id);
            }
            return;
        }
        let reply_to = reply_peer_for_request(&peer, &req);
        if req.method == Method::Ack {
            // The ACK for a 2xx: find its INVITE by dialog, not by branch.
            let found = dialog_of(&req).and_then(|d| self.invites_by_dialog.get(&d).cloned());
            let invite = match found.and_then(|k| self.servers.get_mut(&k).map(|e| (k, e))) {
                Some((k, e)) => {
                    let id = e.id;
                    let actions = e.tx.on_request(req.clone(), now);
                    // The TU hears about this ACK through Output::Ack below, not twice.
                    let actions = actions.into_iter().filter(|a| !matches!(a, Action::Tu(TuEvent::Ack(_)))).collect();
                    if convert(id, &e.peer, actions, out) {
                        self.remove_server(&k);
                    } else {
                        self.track(id);
                    }
                    Some(id)
                }
                None => None,
            };
            out.push(Output::Ack { request: req, peer, invite });
            return;
        }
        let id = self.new_id();
        let cancels = if req.method == Method::Cancel {
            server_key(&req, &Method::Invite).and_then(|k| self.servers.get(&k)).map(|e| e.id)
        } else {
            None
        };
        let (tx, actions) = ServerTransaction::new(req.clone(), peer.transport.is_reliable(), self.timers, now);
        let dialog = (req.method == Method::Invite).then(|| dialog_of(&req)).flatten();
        out.push(Output::Request { id, request: req, peer: peer.clone(), cancels });
        let done = convert(id, &reply_to, actions, out);
        if !done {
            self.insert_server(key, ServerEntry { id, peer: reply_to, tx, dialog });
        }
    }

    /// Fires the timers due at `now` in every transaction.
    pub fn poll(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        let mut due = Vec::new();
        while let Some(std::cmp::Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            if !due.contains(&id) {
                due.push(id);
            }
        }
        for id in due {
            match self.by_id.get(&id).cloned() {
                Some(Slot::Client(key)) => {
                    let Some(e) = self.clients.get_mut(&key) else { continue };
                    if e.tx.next_deadline().is_none_or(|d| d > now) {
                        continue;
                    }
                    let actions = e.tx.poll(now);
                    if convert(id, &e.peer, actions, &mut out) {
                        self.remove_client(&key);
                        continue;
                    }
                }
                Some(Slot::Server(key)) => {
                    let Some(e) = self.servers.get_mut(&key) else { continue };
                    if e.tx.next_deadline().is_none_or(|d| d > now) {
                        continue;
                    }
                    let actions = e.tx.poll(now);
                    if convert(id, &e.peer, actions, &mut out) {
                        self.remove_server(&key);
                        continue;
                    }
                }
                None => continue,
            }
            self.track(id);
        }
        self.tidy();
        // A burst of calls grows the tables; give the memory back once it has passed.
        shrink_when_idle(&mut self.clients);
        shrink_when_idle(&mut self.servers);
        shrink_when_idle(&mut self.by_id);
        shrink_when_idle(&mut self.invites_by_dialog);
        if self.deadlines.capacity() > 1024 && self.deadlines.len() < self.deadlines.capacity() / 16 {
            self.deadlines.shrink_to(self.deadlines.len() * 4);
        }
        out
    }

    /// The transport failed for transaction `id` (a send error, a dropped connection).
    pub fn on_transport_error(&mut self, id: TransactionId, why: String) -> Vec<Output> {
        let mut out = Vec::new();
        match self.by_id.get(&id).cloned() {
            Some(Slot::Client(key)) => {
                if let Some(mut e) = self.remove_client(&key) {
                    convert(id, &e.peer, e.tx.on_transport_error(why), &mut out);
                }
            }
            Some(Slot::Server(key)) => {
                if let Some(mut e) = self.remove_server(&key) {
                    convert(id, &e.peer, e.tx.on_transport_error(why), &mut out);
                }
            }
            None => {}
        }
        out
    }

    /// When [`TransactionLayer::poll`] must next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.peek().map(|std::cmp::Reverse((at, _))| *at)
    }

    /// How many transactions are alive (client, server).
    pub fn len(&self) -> (usize, usize) {
        (self.clients.len(), self.servers.len())
    }

    /// The state of server transaction `id`, if it is alive.
    pub fn server_state(&self, id: TransactionId) -> Option<ServerState> {
        match self.by_id.get(&id)? {
            Slot::Server(k) => self.servers.get(k).map(|e| e.tx.state()),
            Slot::Client(_) => None,
        }
    }

    /// The state of client transaction `id`, if it is alive.
    pub fn client_state(&self, id: TransactionId) -> Option<ClientState> {
        match self.by_id.get(&id)? {
            Slot::Client(k) => self.clients.get(k).map(|e| e.tx.state()),
            Slot::Server(_) => None,
        }
    }
}

/// Shrinks a table that holds far less than it has room for (after a burst;
/// the wide margin keeps a busy table from shrinking and growing in turn).
pub(crate) fn shrink_when_idle<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 1024 && map.len() < map.capacity() / 16 {
        map.shrink_to(map.len() * 4);
    }
}

fn tx_terminated_client(tx: &ClientTransaction) -> bool {
    tx.state() == ClientState::Terminated
}

fn dialog_of(req: &Request) -> Option<(String, u32, String)> {
    let from: NameAddr = req.headers.from().ok()?;
    Some((req.headers.call_id().ok()?.to_owned(), req.headers.cseq().ok()?.seq, from.tag()?.to_owned()))
}

/// Where responses to `req` go: back on the connection for streams, by Via for UDP.
fn reply_peer_for_request(peer: &Peer, req: &Request) -> Peer {
    if peer.transport.is_reliable() {
        return peer.clone();
    }
    match req.headers.top_via() {
        Ok(via) => Peer { addr: response_destination(&via, peer.addr), ..peer.clone() },
        Err(_) => peer.clone(),
    }
}

fn reply_peer(peer: &Peer, resp: &Response) -> Peer {
    if peer.transport.is_reliable() {
        return peer.clone();
    }
    match resp.headers.top_via() {
        // The stateless reply copies the request's Via; stamp-free, so rport means "the source port".
        Ok(via) if via.rport().is_some() => peer.clone(),
        Ok(via) => Peer { addr: SocketAddr::new(peer.addr.ip(), via.port_or_default()), ..peer.clone() },
        Err(_) => peer.clone(),
    }
}

/// Turns a transaction's actions into layer outputs; true when it terminated.
fn convert(id: TransactionId, peer: &Peer, actions: Vec<Action>, out: &mut Vec<Output>) -> bool {
    let mut terminated = false;
    for a in actions {
        match a {
            Action::Send(bytes) => out.push(Output::Send { peer: peer.clone(), bytes }),
            Action::Tu(event) => out.push(Output::Event { id, event }),
            Action::Terminated => terminated = true,
        }
    }
    terminated
}

/// What the UA asks of a running layer.
#[derive(Debug)]
pub enum Command {
    /// Start a client transaction; its id comes back on `reply`.
    SendRequest { request: Request, peer: Peer, reply: tokio::sync::oneshot::Sender<TransactionId> },
    /// Answer server transaction `id`.
    Respond { id: TransactionId, response: Response },
    /// Send bytes outside any transaction (the ACK for a 2xx).
    SendStateless { peer: Peer, bytes: Vec<u8> },
    /// How many transactions are alive, (client, server), for `clinicdesk phone`'s `stats`.
    Count { reply: tokio::sync::oneshot::Sender<(usize, usize)> },
}

/// The UA's side of a running transaction layer.
#[derive(Debug, Clone)]
pub struct LayerHandle {
    commands: mpsc::Sender<Command>,
}

/// The layer task has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the SIP transaction layer has stopped")]
pub struct LayerStopped;

impl LayerHandle {
    pub async fn send_request(&self, request: Request, peer: Peer) -> Result<TransactionId, LayerStopped> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.commands.send(Command::SendRequest { request, peer, reply }).await.map_err(|_| LayerStopped)?;
        rx.await.map_err(|_| LayerStopped)
    }

    pub async fn respond(&self, id: TransactionId, response: Response) -> Result<(), LayerStopped> {
        self.commands.send(Command::Respond { id, response }).await.map_err(|_| LayerStopped)
    }

    pub async fn send_stateless(&self, peer: Peer, bytes: Vec<u8>) -> Result<(), LayerStopped> {
        self.commands.send(Command::SendStateless { peer, bytes }).await.map_err(|_| LayerStopped)
    }

    /// How many transactions are alive now, (client, server) ([`TransactionLayer::len`]).
    pub async fn count(&self) -> Result<(usize, usize), LayerStopped> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.commands.send(Command::Count { reply }).await.map_err(|_| LayerStopped)?;
        rx.await.map_err(|_| LayerStopped)
    }
}

/// Runs a [`TransactionLayer`] on a tokio task: messages from `incoming`
/// (the transport's channel), commands from the returned handle, timers.
/// Everything for the UA (`Output::Request`, `Ack`, `Event`,
/// `StrayResponse`) arrives on the returned receiver; sends go through
/// `transport`, and a failed send becomes a `TransportError` event.
/// The task ends when the handle and the incoming channel are both gone.
///
/// The channel to the UA is unbounded on purpose: the UA awaits this task
/// (the id of a new client transaction) while it handles an output, so a
/// bounded channel that filled up under load would leave each waiting on
/// the other. What it holds is bounded by the traffic the UA has not yet read.
pub fn run(
    transport: Arc<TransportLayer>,
    mut incoming: mpsc::Receiver<Incoming>,
    timers: Timers,
) -> (LayerHandle, mpsc::UnboundedReceiver<Output>) {
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(64);
    let (ua_tx, ua_rx) = mpsc::unbounded_channel::<Output>();
    tokio::spawn(async move {
        let mut layer = TransactionLayer::new(timers);
        let mut incoming_open = true;
        let mut commands_open = true;
        while incoming_open || commands_open {
            let deadline = layer.next_deadline();
            let outputs: Vec<(Option<TransactionId>, Vec<Output>)> = tokio::select! {
                msg = incoming.recv(), if incoming_open => match msg {
                    Some(m) => {
                        tracing::trace!(from = %m.peer.addr, "received:\n{}", String::from_utf8_lossy(&m.data));
                        vec![(None, layer.on_message(&m.data, m.peer, Instant::now()))]
                    }
                    None => { incoming_open = false; Vec::new() }
                },
                cmd = cmd_rx.recv(), if commands_open => match cmd {
                    Some(Command::SendRequest { request, peer, reply }) => {
                        let (id, out) = layer.send_request(request, peer, Instant::now());
                        let _ = reply.send(id);
                        vec![(Some(id), out)]
                    }
                    Some(Command::Respond { id, response }) => vec![(Some(id), layer.respond(id, response, Instant::now()))],
                    Some(Command::SendStateless { peer, bytes }) => vec![(None, vec![Output::Send { peer, bytes }])],
                    Some(Command::Count { reply }) => {
                        let _ = reply.send(layer.len());
                        Vec::new()
                    }
                    None => { commands_open = false; Vec::new() }
                },
                () = sleep_until_opt(deadline) => vec![(None, layer.poll(Instant::now()))],
            };
            for (origin, batch) in outputs {
                let mut queue = batch;
                while !queue.is_empty() {
                    let mut next = Vec::new();
                    for o in queue {
                        match o {
                            Output::Send { peer, bytes } => {
                                tracing::trace!(to = %peer.addr, "sending:\n{}", String::from_utf8_lossy(&bytes));
                                if let Err(e) = transport.send(&peer, &bytes).await {
                                    tracing::warn!(error = %e, to = %peer.addr, "SIP send failed");
                                    if let Some(id) = origin {
                                        next.extend(layer.on_transport_error(id, e.to_string()));
                                    }
                                }
                            }
                            other => {
                                if ua_tx.send(other).is_err() {
                                    commands_open = false;
                                    incoming_open = false;
                                }
                            }
                        }
                    }
                    queue = next;
                }
            }
        }
    });
    (LayerHandle { commands: cmd_tx }, ua_rx)
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Message;
    use crate::sip::transport::Transport;

    fn t0() -> Instant {
        Instant::now()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn request(method: &str, branch: &str) -> Request {
        let text = format!(
            "{method} sip:100@192.0.2.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5060;branch={branch}\r\n\
             Max-Forwards: 70\r\nFrom: <sip:200@192.0.2.9>;tag=f1\r\nTo: <sip:100@192.0.2.1>\r\nCall-ID: call-1\r\n\
             CSeq: 5 {method}\r\nRoute: <sip:proxy.example.com;lr>\r\nContent-Length: 0\r\n\r\n"
        );
        match Message::parse(text.as_bytes()).unwrap() {
            Message::Request(r) => r,
            Message::Response(_) => unreachable!(),
        }
    }

    fn response(req: &Request, status: u16) -> Response {
        let mut r = Response::for_request(req, status);
        if status > 100 {
            r.set_to_tag("t1");
        }
        r
    }

    fn sends(actions: &[Action]) -> usize {
        actions.iter().filter(|a| matches!(a, Action::Send(_))).count()
    }

    /// Steps the clock to each deadline in turn until `until`, collecting actions with their times.
    fn run_client(tx: &mut ClientTransaction, until: Instant) -> Vec<(Instant, Action)> {
        let mut out = Vec::new();
        while let Some(d) = tx.next_deadline().filter(|d| *d <= until) {
            out.extend(tx.poll(d).into_iter().map(|a| (d, a)));
        }
        out
    }

    fn run_server(tx: &mut ServerTransaction, until: Instant) -> Vec<(Instant, Action)> {
        let mut out = Vec::new();
        while let Some(d) = tx.next_deadline().filter(|d| *d <= until) {
            out.extend(tx.poll(d).into_iter().map(|a| (d, a)));
        }
        out
    }

    fn send_times(start: Instant, log: &[(Instant, Action)]) -> Vec<u128> {
        log.iter().filter(|(_, a)| matches!(a, Action::Send(_))).map(|(t, _)| (*t - start).as_millis()).collect()
    }

    #[test]
    fn invite_client_timer_a_doubles_and_timer_b_times_out() {
        let start = t0();
        let (mut tx, first) = ClientTransaction::new(request("INVITE", "z9hG4bKa"), false, Timers::default(), start);
        assert_eq!(sends(&first), 1);
        let log = run_client(&mut tx, start + Duration::from_secs(40));
        assert_eq!(send_times(start, &log), [500, 1500, 3500, 7500, 15500, 31500]);
        let (at, last) = log.last().unwrap();
        assert_eq!((*at - start, last), (Duration::from_secs(32), &Action::Terminated));
        assert!(log.iter().any(|(t, a)| *a == Action::Tu(TuEvent::Timeout) && *t - start == Duration::from_secs(32)));
        assert_eq!(tx.state(), ClientState::Terminated);
    }

    #[test]
    fn invite_client_over_tcp_does_not_retransmit() {
        let start = t0();
        let (mut tx, _) = ClientTransaction::new(request("INVITE", "z9hG4bKa"), true, Timers::default(), start);
        let log = run_client(&mut tx, start + Duration::from_secs(40));
        assert_eq!(send_times(start, &log), Vec::<u128>::new());
        assert!(log.iter().any(|(_, a)| *a == Action::Tu(TuEvent::Timeout)));
    }

    #[test]
    fn invite_client_acks_non_2xx_and_timer_d_absorbs_retransmissions() {
        let start = t0();
        let inv = request("INVITE", "z9hG4bKa");
        let (mut tx, _) = ClientTransaction::new(inv.clone(), false, Timers::default(), start);
        let a = tx.on_response(response(&inv, 180), start + ms(100));
        assert!(matches!(&a[..], [Action::Tu(TuEvent::Response(r))] if r.status == 180));
        assert_eq!(tx.state(), ClientState::Proceeding);
        // Proceeding: no Timer A, no Timer B.
        assert!(run_client(&mut tx, start + Duration::from_secs(60)).is_empty());
        let a = tx.on_response(response(&inv, 486), start + Duration::from_secs(61));
        assert_eq!(tx.state(), ClientState::Completed);
        let Action::Send(ack) = &a[0] else { panic!("no ACK: {a:?}") };
        let Ok(Message::Request(ack)) = Message::parse(ack) else { panic!("ACK does not parse") };
        assert_eq!(ack.method, Method::Ack);
        assert_eq!(ack.headers.cseq().unwrap().to_string(), "5 ACK");
        assert_eq!(ack.headers.top_via().unwrap().branch(), Some("z9hG4bKa"));
        assert_eq!(ack.headers.to().unwrap().tag(), Some("t1"));
        assert_eq!(ack.headers.routes().unwrap().len(), 1);
        assert_eq!(ack.uri, inv.uri);
        // A retransmitted 486 gets the ACK again and does not reach the TU.
        let again = tx.on_response(response(&inv, 486), start + Duration::from_secs(62));
        assert_eq!(again, vec![a[0].clone()]);
        let log = run_client(&mut tx, start + Duration::from_secs(200));
        assert_eq!(log, vec![(start + Duration::from_secs(61 + 32), Action::Terminated)]);
    }

    #[test]
    fn invite_client_accepted_state_passes_2xx_retransmissions_until_timer_m() {
        let start = t0();
        let inv = request("INVITE", "z9hG4bKa");
        let (mut tx, _) = ClientTransaction::new(inv.clone(), false, Timers::default(), start);
        let ok = response(&inv, 200);
        let a = tx.on_response(ok.clone(), start + ms(700));
        assert_eq!(a, vec![Action::Tu(TuEvent::Response(ok.clone()))]);
        assert_eq!(tx.state(), ClientState::Accepted);
        // The 2xx retransmission reaches the TU (it resends its own ACK); no more INVITE retransmissions.
        assert_eq!(tx.on_response(ok.clone(), start + ms(1200)), vec![Action::Tu(TuEvent::Response(ok))]);
        let log = run_client(&mut tx, start + Duration::from_secs(100));
        assert_eq!(log, vec![(start + ms(700) + Duration::from_secs(32), Action::Terminated)]);
    }

    #[test]
    fn non_invite_client_timer_e_caps_at_t2_and_timer_f_times_out() {
        let start = t0();
        let (mut tx, _) = ClientTransaction::new(request("OPTIONS", "z9hG4bKo"), false, Timers::default(), start);
        let log = run_client(&mut tx, start + Duration::from_secs(40));
        assert_eq!(send_times(start, &log), [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
        assert!(log.iter().any(|(t, a)| *a == Action::Tu(TuEvent::Timeout) && *t - start == Duration::from_secs(32)));
    }

    #[test]
    fn non_invite_client_proceeding_retransmits_every_t2_then_timer_k() {
        let start = t0();
        let req = request("REGISTER", "z9hG4bKr");
        let (mut tx, _) = ClientTransaction::new(req.clone(), false, Timers::default(), start);
        tx.on_response(response(&req, 100), start + ms(200));
        assert_eq!(tx.state(), ClientState::Proceeding);
        let log = run_client(&mut tx, start + ms(9000));
        assert_eq!(send_times(start, &log), [500, 4500, 8500]);
        let a = tx.on_response(response(&req, 401), start + ms(9000));
        assert!(matches!(&a[..], [Action::Tu(TuEvent::Response(r))] if r.status == 401));
        assert_eq!(tx.state(), ClientState::Completed);
        assert!(tx.on_response(response(&req, 401), start + ms(9100)).is_empty(), "absorbed in Completed");
        let log = run_client(&mut tx, start + Duration::from_secs(60));
        assert_eq!(log, vec![(start + ms(9000) + Duration::from_secs(5), Action::Terminated)]);
        // Over TCP, Timer K is zero: terminated with the final response.
        let (mut tcp, _) = ClientTransaction::new(req.clone(), true, Timers::default(), start);
        let a = tcp.on_response(response(&req, 200), start + ms(10));
        assert_eq!(a.last(), Some(&Action::Terminated));
    }

    #[test]
    fn configurable_timers_scale_everything() {
        let start = t0();
        let fast = Timers { t1: ms(10), t2: ms(40), t4: ms(50), d: ms(320) };
        let (mut tx, _) = ClientTransaction::new(request("OPTIONS", "z9hG4bKo"), false, fast, start);
        let log = run_client(&mut tx, start + Duration::from_secs(1));
        assert_eq!(
            send_times(start, &log),
            [10, 30, 70, 110, 150, 190, 230, 270, 310, 350, 390, 430, 470, 510, 550, 590, 630]
        );
        assert_eq!(log.last().map(|(t, a)| (*t - start, a.clone())), Some((ms(640), Action::Terminated)));
    }

    #[test]
    fn invite_server_sends_trying_resends_on_retransmission_and_timer_g_h() {
        let start = t0();
        let inv = request("INVITE", "z9hG4bKs");
        let (mut tx, first) = ServerTransaction::new(inv.clone(), false, Timers::default(), start);
        let Action::Send(trying) = &first[0] else { panic!("no 100") };
        assert!(trying.starts_with(b"SIP/2.0 100 Trying\r\n"));
        // A retransmitted INVITE gets the last provisional again.
        assert_eq!(tx.on_request(inv.clone(), start + ms(500)), vec![Action::Send(trying.clone())]);
        tx.respond(response(&inv, 180), start + ms(600));
        let a = tx.on_request(inv.clone(), start + ms(1000));
        assert!(matches!(&a[..], [Action::Send(b)] if b.starts_with(b"SIP/2.0 180")));
        let busy = tx.respond(response(&inv, 486), start + ms(2000));
        assert_eq!(sends(&busy), 1);
        assert_eq!(tx.state(), ServerState::Completed);
        // Timer G: 0.5, 1, 2, 4, 4, ... after the response; Timer H at 64*T1.
        let log = run_server(&mut tx, start + Duration::from_secs(60));
        let times = send_times(start + ms(2000), &log);
        assert_eq!(times, [500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
        assert!(log.iter().any(|(t, a)| *a == Action::Tu(TuEvent::Timeout) && *t - start == ms(34000)));
        assert_eq!(tx.state(), ServerState::Terminated);
    }

    #[test]
    fn invite_server_ack_confirms_then_timer_i() {
        let start = t0();
        let inv = request("INVITE", "z9hG4bKs");
        let (mut tx, _) = ServerTransaction::new(inv.clone(), false, Timers::default(), start);
        let resp = response(&inv, 603);
        tx.respond(resp.clone(), start);
        let ack = build_ack(&inv, &resp);
        assert!(tx.on_request(ack.clone(), start + ms(100)).is_empty());
        assert_eq!(tx.state(), ServerState::Confirmed);
        assert!(tx.on_request(ack, start + ms(200)).is_empty(), "further ACKs absorbed");
        let log = run_server(&mut tx, start + Duration::from_secs(60));
        assert_eq!(log, vec![(start + ms(5100), Action::Terminated)]);
    }

    #[test]
    fn invite_server_accepted_retransmits_2xx_until_ack_then_timer_l() {
        let start = t0();
        let inv = request("INVITE", "z9hG4bKs");
        let (mut tx, _) = ServerTransaction::new(inv.clone(), false, Timers::default(), start);
        tx.respond(response(&inv, 200), start);
        assert_eq!(tx.state(), ServerState::Accepted);
        assert!(tx.on_request(inv.clone(), start + ms(100)).is_empty(), "INVITE retransmissions absorbed");
        let log = run_server(&mut tx, start + ms(3600));
        assert_eq!(send_times(start, &log), [500, 1500, 3500]);
        let mut ack = build_ack(&inv, &response(&inv, 200));
        ack.headers.set_top_via(&crate::sip::headers::Via::parse("SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKnew").unwrap());
        let a = tx.on_request(ack.clone(), start + ms(3600));
        assert_eq!(a, vec![Action::Tu(TuEvent::Ack(ack))]);
        let log = run_server(&mut tx, start + Duration::from_secs(60));
        assert_eq!(log, vec![(start + Duration::from_secs(32), Action::Terminated)], "no retransmission after the ACK");
        // Without an ACK, Timer L tells the TU.
        let (mut tx, _) = ServerTransaction::new(inv.clone(), false, Timers::default(), start);
        tx.respond(response(&inv, 200), start);
        let log = run_server(&mut tx, start + Duration::from_secs(60));
        assert_eq!(send_times(start, &log).len(), 10);
        assert!(
            log.iter().any(|(t, a)| *a == Action::Tu(TuEvent::AckTimeout) && *t - start == Duration::from_secs(32))
        );
    }

    #[test]
    fn non_invite_server_absorbs_then_resends_then_timer_j() {
        let start = t0();
        let req = request("OPTIONS", "z9hG4bKn");
        let (mut tx, first) = ServerTransaction::new(req.clone(), false, Timers::default(), start);
        assert!(first.is_empty(), "no automatic 100 for non-INVITE");
        assert!(tx.on_request(req.clone(), start + ms(500)).is_empty(), "Trying absorbs");
        let ok = tx.respond(response(&req, 200), start + ms(600));
        assert_eq!(sends(&ok), 1);
        assert_eq!(tx.on_request(req.clone(), start + ms(700)), vec![ok[0].clone()]);
        assert!(tx.respond(response(&req, 500), start + ms(800)).is_empty(), "only one final response");
        let log = run_server(&mut tx, start + Duration::from_secs(60));
        assert_eq!(log, vec![(start + ms(600) + Duration::from_secs(32), Action::Terminated)]);
        let (mut tcp, _) = ServerTransaction::new(req.clone(), true, Timers::default(), start);
        assert_eq!(tcp.respond(response(&req, 200), start).last(), Some(&Action::Terminated), "Timer J is 0 on TCP");
    }

    fn udp(addr: &str) -> Peer {
        Peer::new(Transport::Udp, addr.parse().unwrap())
    }

    fn events(out: &[Output]) -> Vec<&TuEvent> {
        out.iter().filter_map(|o| if let Output::Event { event, .. } = o { Some(event) } else { None }).collect()
    }

    #[test]
    fn layer_matches_responses_by_branch_and_method() {
        let start = t0();
        let mut layer = TransactionLayer::new(Timers::default());
        let inv = request("INVITE", "z9hG4bKc1");
        let (id, out) = layer.send_request(inv.clone(), udp("192.0.2.1:5060"), start);
        assert!(matches!(&out[..], [Output::Send { .. }]));
        let ringing = response(&inv, 180).to_bytes();
        let out = layer.on_message(&ringing, udp("192.0.2.1:5060"), start + ms(10));
        assert!(
            matches!(&out[..], [Output::Event { id: i, event: TuEvent::Response(r) }] if *i == id && r.status == 180)
        );
        // Same branch, other method (a CANCEL's 200): not this transaction.
        let mut cancel_ok = response(&inv, 200);
        cancel_ok.headers.set(HeaderName::CSeq, "5 CANCEL");
        let out = layer.on_message(&cancel_ok.to_bytes(), udp("192.0.2.1:5060"), start + ms(20));
        assert!(matches!(&out[..], [Output::StrayResponse { .. }]));
        assert_eq!(layer.client_state(id), Some(ClientState::Proceeding));
    }

    #[test]
    fn layer_creates_server_transactions_and_absorbs_retransmissions() {
        let start = t0();
        let mut layer = TransactionLayer::new(Timers::default());
        let inv = request("INVITE", "z9hG4bKs1");
        let src = udp("192.0.2.9:5060");
        let out = layer.on_message(&inv.to_bytes(), src.clone(), start);
        let Output::Request { id, request: got, .. } = &out[0] else { panic!("{out:?}") };
        let id = *id;
        assert!(got.headers.top_via().unwrap().received().is_none(), "sent-by matches the source: no received");
        assert!(matches!(&out[1], Output::Send { bytes, .. } if bytes.starts_with(b"SIP/2.0 100")));
        // The retransmission only brings the 100 again.
        let out = layer.on_message(&inv.to_bytes(), src.clone(), start + ms(500));
        assert!(matches!(&out[..], [Output::Send { bytes, .. }] if bytes.starts_with(b"SIP/2.0 100")));
        // A CANCEL is its own transaction, pointing at the INVITE.
        let cancel = request("CANCEL", "z9hG4bKs1");
        let out = layer.on_message(&cancel.to_bytes(), src.clone(), start + ms(600));
        assert!(matches!(&out[0], Output::Request { cancels: Some(c), .. } if *c == id));
        // The 2xx, then the ACK with a new branch finds the INVITE by dialog.
        let out = layer.respond(id, response(&inv, 200), start + ms(700));
        assert!(matches!(&out[..], [Output::Send { .. }]));
        let mut ack = build_ack(&inv, &response(&inv, 200));
        ack.headers
            .set_top_via(&crate::sip::headers::Via::parse("SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bKack").unwrap());
        let out = layer.on_message(&ack.to_bytes(), src, start + ms(800));
        assert!(matches!(&out[..], [Output::Ack { invite: Some(i), .. }] if *i == id), "{out:?}");
        // No more 2xx retransmissions: only Timer L ends it.
        let out = layer.poll(start + Duration::from_secs(10));
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(layer.server_state(id), Some(ServerState::Accepted));
    }

    #[test]
    fn layer_reports_a_2xx_ack_that_reuses_the_invite_branch_once() {
        let start = t0();
        let mut layer = TransactionLayer::new(Timers::default());
        let inv = request("INVITE", "z9hG4bKsame");
        let src = udp("192.0.2.9:5060");
        let out = layer.on_message(&inv.to_bytes(), src.clone(), start);
        let Output::Request { id, .. } = &out[0] else { panic!("{out:?}") };
        let id = *id;
        layer.respond(id, response(&inv, 200), start + ms(10));
        let ack = build_ack(&inv, &response(&inv, 200));
        let out = layer.on_message(&ack.to_bytes(), src.clone(), start + ms(20));
        assert!(matches!(&out[..], [Output::Ack { invite: Some(i), .. }] if *i == id), "{out:?}");
        assert!(layer.on_message(&ack.to_bytes(), src, start + ms(30)).is_empty(), "the repeated ACK is absorbed");
        // Sending an ACK never creates a client transaction.
        let (_, out) = layer.send_request(ack, udp("192.0.2.9:5060"), start);
        assert!(matches!(&out[..], [Output::Send { .. }]));
        assert_eq!(layer.len(), (0, 1));
    }

    #[test]
    fn layer_falls_back_to_rfc2543_matching() {
        let start = t0();
        let mut layer = TransactionLayer::new(Timers::default());
        let src = udp("192.0.2.9:5060");
        // RFC 4475 §3.2.1: "z9hG4bK" alone is no RFC 3261 identifier.
        for branch in ["z9hG4bK", "1234-old-style"] {
            let req = request("OPTIONS", branch);
            let out = layer.on_message(&req.to_bytes(), src.clone(), start);
            let Output::Request { id, .. } = &out[0] else { panic!("{out:?}") };
            let id = *id;
            let out = layer.on_message(&req.to_bytes(), src.clone(), start + ms(100));
            assert!(out.is_empty(), "the retransmission matches by RFC 2543 rules: {out:?}");
            let mut other = req.clone();
            other.headers.set(HeaderName::CSeq, "6 OPTIONS");
            let out = layer.on_message(&other.to_bytes(), src.clone(), start + ms(100));
            assert!(matches!(&out[0], Output::Request { id: other_id, .. } if *other_id != id));
        }
        // RFC 4475 §3.4.1: an RFC 2543 INVITE (no branch); its ACK matches it.
        let inv = Message::parse(
            b"INVITE sip:UserB@example.com SIP/2.0\r\nVia: SIP/2.0/UDP iftgw.example.com\r\n\
From: <sip:+13035551111@ift.client.example.net;user=phone>\r\nTo: sip:+16505552222@ss1.example.net;user=phone\r\n\
Call-ID: inv2543.1717@ift.client.example.com\r\nCSeq: 56 INVITE\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
        let Message::Request(inv) = inv else { panic!("request") };
        let out = layer.on_message(&inv.to_bytes(), src.clone(), start);
        let Output::Request { id, request: got, .. } = &out[0] else { panic!("{out:?}") };
        let (id, stamped) = (*id, got.clone());
        assert_eq!(stamped.headers.top_via().unwrap().received(), Some("192.0.2.9".parse().unwrap()));
        let resp = response(&stamped, 404);
        layer.respond(id, resp.clone(), start + ms(10));
        let ack = build_ack(&inv, &resp);
        let out = layer.on_message(&ack.to_bytes(), src, start + ms(20));
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(layer.server_state(id), Some(ServerState::Confirmed));
    }

    async fn next_output(rx: &mut mpsc::UnboundedReceiver<Output>) -> Output {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("no output in 10 s")
            .expect("layer stopped")
    }

    #[tokio::test]
    async fn driver_runs_transactions_over_udp() {
        use crate::sip::transport::TransportOptions;
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let opts = TransportOptions { udp: Some(any), ..Default::default() };
        let (ta, ra) = TransportLayer::start(opts.clone()).await.unwrap();
        let (tb, rb) = TransportLayer::start(opts).await.unwrap();
        let fast = Timers { t1: ms(20), t2: ms(80), t4: ms(100), d: ms(640) };
        let (ha, mut ea) = run(ta.clone(), ra, fast);
        let (hb, mut eb) = run(tb.clone(), rb, fast);
        let a = ta.udp_local_addr().unwrap();
        let b = tb.udp_local_addr().unwrap();
        let text = format!(
            "OPTIONS sip:100@{b} SIP/2.0\r\nVia: SIP/2.0/UDP {a};rport;branch={}\r\nMax-Forwards: 70\r\n\
             From: <sip:200@{a}>;tag=f\r\nTo: <sip:100@{b}>\r\nCall-ID: {}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            crate::sip::new_branch(),
            crate::sip::new_call_id("test"),
        );
        let Ok(Message::Request(req)) = Message::parse(text.as_bytes()) else { panic!("request") };
        let id = ha.send_request(req, Peer::new(Transport::Udp, b)).await.unwrap();
        let Output::Request { id: sid, request, peer, .. } = next_output(&mut eb).await else { panic!("no request") };
        assert_eq!(peer.addr, a);
        assert_eq!(request.headers.top_via().unwrap().rport(), Some(Some(a.port())));
        let mut ok = Response::for_request(&request, 200);
        ok.set_to_tag(&crate::sip::new_tag());
        hb.respond(sid, ok).await.unwrap();
        match next_output(&mut ea).await {
            Output::Event { id: got, event: TuEvent::Response(r) } => assert_eq!((got, r.status), (id, 200)),
            other => panic!("{other:?}"),
        }
        // Nobody listening: Timer F (64 x 20 ms) ends the transaction with a timeout.
        drop(hb);
        drop(eb);
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let Ok(Message::Request(mut lost)) = Message::parse(text.as_bytes()) else { panic!("request") };
        lost.headers.set_top_via(
            &crate::sip::headers::Via::parse(&format!("SIP/2.0/UDP {a};branch={}", crate::sip::new_branch())).unwrap(),
        );
        let id = ha.send_request(lost, Peer::new(Transport::Udp, silent.local_addr().unwrap())).await.unwrap();
        assert_eq!(next_output(&mut ea).await, Output::Event { id, event: TuEvent::Timeout });
    }

    #[test]
    fn layer_answers_broken_requests_statelessly_and_times_out_clients() {
        let start = t0();
        let mut layer = TransactionLayer::new(Timers::default());
        let out = layer.on_message(
            b"OPTIONS sip:a@b SIP/7.0\r\nVia: SIP/2.0/UDP 192.0.2.9:5070\r\nl: 0\r\n\r\n",
            udp("192.0.2.9:5070"),
            start,
        );
        assert!(
            matches!(&out[..], [Output::Send { peer, bytes }] if bytes.starts_with(b"SIP/2.0 505") && peer.addr.port() == 5070)
        );
        let (id, _) = layer.send_request(request("OPTIONS", "z9hG4bKt"), udp("192.0.2.1:5060"), start);
        let mut all = Vec::new();
        while let Some(d) = layer.next_deadline() {
            all.extend(layer.poll(d));
        }
        assert_eq!(events(&all), vec![&TuEvent::Timeout]);
        assert_eq!(all.iter().filter(|o| matches!(o, Output::Send { .. })).count(), 10);
        assert_eq!(layer.client_state(id), None);
        assert_eq!(layer.len(), (0, 0));
    }
}
