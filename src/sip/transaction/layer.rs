//! The transaction layer: routes messages to their transactions (RFC 3261
//! §17.1.3 and §17.2.3 matching, with the RFC 2543 fallback) and keeps
//! their deadlines in a heap.

use std::collections::HashMap;
use std::net::SocketAddr;

use tokio::time::Instant;

use super::client::ClientTransaction;
use super::server::ServerTransaction;
use super::{Action, ClientState, ServerState, Timers, TuEvent};
use crate::sip::headers::NameAddr;
use crate::sip::message::{Method, Request, Response};
use crate::sip::transport::Peer;
use crate::sip::validate::{Inbound, response_destination, validate_datagram};

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
