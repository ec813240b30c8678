//! The SIP user agent: the softphone behind both faces of ClinicDesk (the
//! window and `clinicdesk phone`). It registers the workstation's account,
//! rings the operator with the caller's card, places and answers calls, holds,
//! transfers and hangs up, and reports all of it as [`PhoneEvent`]s.
//!
//! [`start`] runs it on a tokio runtime of its own thread, so neither face
//! waits on the network: commands come in through the [`PhoneEnd`] of
//! [`super::phone::link`], events go out through it (waking the window), and
//! the media figures of each finished call come out beside them on
//! [`UaHandle::figures`] just before its `Ended` event.
//!
//! One task owns all state — registration, calls, the client transactions
//! waiting for answers, timers — and reacts to one thing at a time: an output
//! of the transaction layer ([`crate::sip::transaction::run`]), a command, a
//! media event or a timer. Nothing is shared and nothing locks. The flows
//! are methods of `Ua`, a file each: `incoming.rs`, `outgoing.rs`,
//! `in_dialog.rs` (re-INVITE, UPDATE, BYE, hold), `transfer.rs` (REFER),
//! `media.rs` (a call's sound), `media_timeout.rs` (hanging up a call whose
//! peer went silent), `redirect.rs` (3xx targets), `register.rs`, and `dispatch.rs` (what
//! reaches the task, handed to its flow); `call.rs` is what one call
//! remembers, `config.rs` what the user agent is given. The REGISTER state
//! machine is [`crate::sip::registration`], dialogs [`crate::sip::dialog`].
//! The caller's card is looked up off the task (`Ua::announce`).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use self::call::Call;
use super::auth::DigestClient;
use super::headers::{HeaderName, NameAddr, Via};
use super::message::{Method, Request, Response};
use super::phone::{Availability, PhoneCommand, PhoneEnd, PhoneEvent};
use super::registration::{Registration, RetryPlan};
use super::transaction::{self, LayerHandle, Output, TransactionId};
use super::transport::{Peer, Transport, TransportError, TransportLayer, TransportOptions, local_addr_toward};
use super::uri::{Host, SipUri, Uri};
use super::validate::UasPolicy;
use crate::crm::card::CallerCard;
use crate::media::{CallStats, MediaEvent};

mod call;
mod config;
mod dispatch;
mod in_dialog;
mod incoming;
mod media;
mod media_timeout;
mod outgoing;
mod redirect;
mod register;
mod transfer;

pub use config::{AccountConfig, AudioChoice, CardLookup, DEFAULT_MEDIA_TIMEOUT_SECS, UaConfig, WhenInCall};

/// The methods this user agent handles (sent in Allow; others get 405/501).
pub(super) const ALLOW: &[Method] = &[
    Method::Invite,
    Method::Ack,
    Method::Cancel,
    Method::Bye,
    Method::Options,
    Method::Info,
    Method::Notify,
    Method::Refer,
    Method::Update,
];

/// The figures of a call's media, reported just before its `Ended` event.
#[derive(Debug, Clone, PartialEq)]
pub struct CallFigures {
    pub call_id: String,
    /// `None` when the call never had media.
    pub stats: Option<CallStats>,
}

/// How an incoming call was handled: from its INVITE reaching the user
/// agent to the `Incoming` event (the caller card looked up, 180 sent).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct IncomingTiming {
    pub call_id: String,
    /// The caller card lookup (on a blocking thread, off the user agent's task), µs.
    pub card_us: u64,
    /// The INVITE taken by the user agent to the `Incoming` event (the card
    /// looked up, 180 sent), µs.
    pub handled_us: u64,
}

/// What the user agent holds right now: after a burst of calls has ended and
/// the transactions' last timers (J, L: 64·T1 over UDP) have run out, every
/// count is back to zero — what `clinicdesk phone`'s `stats` shows and the
/// load test checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct UaStats {
    /// Client transactions alive in the transaction layer.
    pub client_transactions: usize,
    /// Server transactions alive in the transaction layer.
    pub server_transactions: usize,
    /// Calls known to the user agent (ringing, talking, or being cancelled).
    pub calls: usize,
    /// Dialogs: the calls that have one.
    pub dialogs: usize,
    /// Requests of ours waiting for their answer (or lingering for a retransmitted 2xx).
    pub pending: usize,
    /// Timers of calls (ring timeout, auto-answer, ...) set and not yet fired or cancelled.
    pub timers: usize,
    /// Whether new calls ring, as the last `SetAvailability` left it: the
    /// operator's status reaches the user agent through a channel, and this
    /// says it has arrived.
    pub availability: Availability,
    /// Whether the account's binding holds now (false without an account).
    pub registered: bool,
    /// The registration interval asked for now, in seconds (a registrar's
    /// Min-Expires raises it); none without an account.
    pub register_expires: Option<u32>,
}

impl UaStats {
    /// Client and server transactions together.
    pub fn transactions(&self) -> usize {
        self.client_transactions + self.server_transactions
    }
}

/// Why the user agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum UaError {
    #[error("cannot open the SIP transport: {0}")]
    Transport(#[from] TransportError),
    #[error("the SIP server {server:?} cannot be used: {reason}")]
    Server { server: String, reason: String },
    #[error("the SIP account has no user name")]
    NoUser,
    #[error("cannot start the user agent: {0}")]
    Start(String),
}

/// The running user agent.
pub struct UaHandle {
    local_addr: SocketAddr,
    figures: crossbeam_channel::Receiver<CallFigures>,
    timings: crossbeam_channel::Receiver<IncomingTiming>,
    internal: mpsc::UnboundedSender<Internal>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UaHandle {
    /// The bound SIP address (with the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The media figures of finished calls; each arrives before its `Ended`.
    pub fn figures(&self) -> &crossbeam_channel::Receiver<CallFigures> {
        &self.figures
    }

    /// How long incoming calls took to reach the operator, when
    /// [`UaConfig::timings`] asks for it; each arrives before its `Incoming`.
    pub fn timings(&self) -> &crossbeam_channel::Receiver<IncomingTiming> {
        &self.timings
    }

    /// What the user agent holds now (`None` when it has stopped or does
    /// not answer within `timeout`).
    pub fn stats(&self, timeout: Duration) -> Option<UaStats> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.internal.send(Internal::Stats(tx)).ok()?;
        rx.recv_timeout(timeout).ok()
    }

    /// Whether the user agent still runs.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Hangs up every call, removes the registration (waiting up to two
    /// seconds for the registrar) and stops.
    pub fn shutdown(mut self) {
        let _ = self.internal.send(Internal::Shutdown);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for UaHandle {
    fn drop(&mut self) {
        let _ = self.internal.send(Internal::Shutdown);
    }
}

/// What reaches the user agent's task besides the transaction layer.
pub(super) enum Internal {
    Command(PhoneCommand),
    Shutdown,
    Media {
        call_id: String,
        generation: u64,
        event: MediaEvent,
    },
    Stats(crossbeam_channel::Sender<UaStats>),
    /// A call's card, looked up off the task (`Ua::announce`): how long
    /// the lookup took, and when the call's INVITE was taken (incoming calls).
    Card {
        call_id: String,
        card: Option<Box<CallerCard>>,
        card_us: u64,
        taken: Option<std::time::Instant>,
    },
}

/// Starts the user agent on its own thread. Returns once the SIP socket is
/// bound (or with why it could not be).
pub fn start(config: UaConfig, phone: PhoneEnd) -> Result<UaHandle, UaError> {
    if config.account.as_ref().is_some_and(|a| a.username.trim().is_empty()) {
        return Err(UaError::NoUser);
    }
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<SocketAddr, UaError>>();
    let (internal_tx, internal_rx) = mpsc::unbounded_channel();
    let (figures_tx, figures_rx) = crossbeam_channel::unbounded();
    let (timings_tx, timings_rx) = crossbeam_channel::unbounded();
    let bridge_tx = internal_tx.clone();
    let thread_internal = internal_tx.clone();
    let commands = phone.commands.clone();
    let thread = std::thread::Builder::new()
        .name("sip-ua".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("sip-ua-worker")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(UaError::Start(format!("no tokio runtime: {e}"))));
                    return;
                }
            };
            runtime.block_on(async move {
                let ua = match Ua::new(config, phone, (figures_tx, timings_tx), thread_internal).await {
                    Ok(ua) => ua,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(ua.bound));
                ua.run(internal_rx).await;
            });
            runtime.shutdown_timeout(Duration::from_secs(1));
        })
        .map_err(|e| UaError::Start(e.to_string()))?;
    let local_addr = match ready_rx.recv() {
        Ok(Ok(addr)) => addr,
        Ok(Err(e)) => {
            let _ = thread.join();
            return Err(e);
        }
        Err(_) => return Err(UaError::Start("its thread stopped while starting".into())),
    };
    // The window's commands arrive on a crossbeam channel; this thread hands
    // them to the task, and asks it to stop when the window lets go of its end.
    let _ = std::thread::Builder::new().name("sip-ua-commands".into()).spawn(move || {
        loop {
            match commands.recv_timeout(Duration::from_millis(250)) {
                Ok(command) => {
                    if bridge_tx.send(Internal::Command(command)).is_err() {
                        break;
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    if bridge_tx.is_closed() {
                        break;
                    }
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    let _ = bridge_tx.send(Internal::Shutdown);
                    break;
                }
            }
        }
    });
    Ok(UaHandle { local_addr, figures: figures_rx, timings: timings_rx, internal: internal_tx, thread: Some(thread) })
}

/// What a client transaction of ours is for, so its answer reaches the right flow.
pub(super) enum Pending {
    Register {
        sent: Request,
    },
    Invite {
        call_id: String,
        sent: Request,
    },
    /// The 2xx of an INVITE was ACKed; retransmissions of it get the same ACK.
    Accepted {
        ack: Vec<u8>,
        peer: Peer,
        since: Instant,
    },
    ReInvite {
        call_id: String,
        sent: Request,
        hold: bool,
    },
    Refer {
        call_id: String,
        target: String,
    },
    /// BYE, CANCEL, NOTIFY: the answer changes nothing.
    Fire {
        since: Instant,
    },
}

/// Things that happen at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Timer {
    Register {
        generation: u64,
    },
    AutoAnswer {
        call_id: String,
    },
    RingTimeout {
        call_id: String,
    },
    ReInviteRetry {
        call_id: String,
        hold: bool,
    },
    CancelGiveUp {
        call_id: String,
    },
    /// Whether the peer of an answered call still sends media (`media_timeout.rs`).
    MediaCheck {
        call_id: String,
    },
    Sweep,
}

struct RegState {
    reg: Registration,
    server: Peer,
    server_name: String,
    registered: bool,
    /// Timers of an older registration cycle are ignored.
    generation: u64,
    /// The REGISTER with Expires: 0 is out (shutting down).
    removing: bool,
}

/// The user agent's state (see the module docs).
pub(super) struct Ua {
    pub(super) cfg: UaConfig,
    pub(super) layer: LayerHandle,
    outputs: Option<mpsc::UnboundedReceiver<Output>>,
    pub(super) transport: Arc<TransportLayer>,
    pub(super) bound: SocketAddr,
    /// Our address as the registrar sees it, when it differs from ours (NAT).
    pub(super) public: Option<SocketAddr>,
    pub(super) phone: PhoneEnd,
    figures: crossbeam_channel::Sender<CallFigures>,
    pub(super) timings: crossbeam_channel::Sender<IncomingTiming>,
    pub(super) internal: mpsc::UnboundedSender<Internal>,
    reg: Option<RegState>,
    keepalive: Option<tokio::task::JoinHandle<()>>,
    calls: HashMap<String, Call>,
    pub(super) pending: HashMap<TransactionId, Pending>,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_kinds: HashMap<u64, Timer>,
    timer_seq: u64,
    pub(super) availability: Availability,
    /// Events of calls whose card is being looked up, in order: sent once
    /// it is there (the first is the call's `Incoming` or `Dialing`).
    held: HashMap<String, Vec<PhoneEvent>>,
    pub(super) policy: UasPolicy,
    pub(super) call_counter: u32,
    pub(super) stopping: bool,
    /// Whether calls or transactions were seen since the freed memory was last given back.
    busy_since_trim: bool,
    /// `call_counter` at the last sweep (a burst over TCP can come and go between two).
    counter_at_sweep: u32,
}

/// Resolves `host[:port]` (an IP address or a name) to a socket address.
pub(super) async fn resolve(host: &Host, port: u16) -> Result<SocketAddr, String> {
    if let Some(ip) = host.ip() {
        return Ok(SocketAddr::new(ip, port));
    }
    let name = host.to_string();
    let found = tokio::net::lookup_host((name.as_str(), port)).await.map_err(|e| e.to_string())?;
    let all: Vec<SocketAddr> = found.collect();
    all.iter().find(|a| a.is_ipv4()).or(all.first()).copied().ok_or_else(|| format!("{name} has no address"))
}

/// Reads `host`, `host:port`, `[v6]:port` or `sip:host:port` into a URI.
pub(super) fn server_uri(server: &str) -> Result<SipUri, String> {
    let text = server.trim();
    let text = text.strip_prefix("sip:").unwrap_or(text);
    if text.is_empty() {
        return Err("no server given".to_owned());
    }
    if text.contains('@') {
        return Err("give the server as host or host:port, without a user".to_owned());
    }
    SipUri::parse(&format!("sip:{text}")).map_err(|e| e.to_string())
}

impl Ua {
    async fn new(
        cfg: UaConfig,
        phone: PhoneEnd,
        (figures, timings): (crossbeam_channel::Sender<CallFigures>, crossbeam_channel::Sender<IncomingTiming>),
        internal: mpsc::UnboundedSender<Internal>,
    ) -> Result<Ua, UaError> {
        let mut opts = TransportOptions { udp: Some(cfg.listen), ..Default::default() };
        match cfg.transport {
            Transport::Udp => {}
            Transport::Tcp => opts.tcp = Some(cfg.listen),
            Transport::Tls => {
                opts.tls = Some(super::transport::tls_client_config(cfg.tls_ca.as_deref())?);
            }
        }
        let (transport, incoming) = TransportLayer::start(opts).await?;
        let bound = transport.udp_local_addr().unwrap_or(cfg.listen);
        let (layer, outputs) = transaction::run(transport.clone(), incoming, cfg.timers);
        let reg = match &cfg.account {
            None => None,
            Some(account) => {
                let uri = server_uri(&account.server)
                    .map_err(|reason| UaError::Server { server: account.server.clone(), reason })?;
                let port = uri.port.unwrap_or(cfg.transport.default_port());
                let addr = resolve(&uri.host, port)
                    .await
                    .map_err(|reason| UaError::Server { server: account.server.clone(), reason })?;
                let mut server = Peer::new(cfg.transport, addr);
                if cfg.transport == Transport::Tls {
                    server.tls_name = uri.host.ip().is_none().then(|| uri.host.to_string());
                }
                let mut aor_uri = SipUri::new(Some(&account.username), uri.host.clone(), uri.port);
                aor_uri.params = Default::default();
                let mut aor = NameAddr::new(Uri::Sip(aor_uri));
                if !account.display_name.trim().is_empty() {
                    aor = aor.with_display(account.display_name.trim());
                }
                let mut registrar = SipUri::new(None, uri.host.clone(), uri.port);
                if cfg.transport != Transport::Udp {
                    registrar.params.set("transport", Some(&cfg.transport.as_str().to_ascii_lowercase()));
                }
                let auth_user =
                    if account.auth_username.trim().is_empty() { &account.username } else { &account.auth_username };
                let contact =
                    NameAddr::new(Uri::Sip(SipUri::new(Some(&account.username), Host::from(bound.ip()), None)));
                let mut reg = Registration::new(
                    aor,
                    Uri::Sip(registrar),
                    contact,
                    cfg.register_expires,
                    DigestClient::new(auth_user, &account.password),
                    super::new_call_id(&bound.ip().to_string()),
                );
                reg.retry = RetryPlan { first: cfg.register_retry };
                Some(RegState {
                    reg,
                    server,
                    server_name: account.label(),
                    registered: false,
                    generation: 0,
                    removing: false,
                })
            }
        };
        let policy = UasPolicy {
            allow: ALLOW.to_vec(),
            supported: Vec::new(),
            accept: vec![
                "application/sdp".to_owned(),
                "message/sipfrag".to_owned(),
                "application/dtmf-relay".to_owned(),
                "application/dtmf".to_owned(),
            ],
        };
        Ok(Ua {
            cfg,
            layer,
            outputs: Some(outputs),
            transport,
            bound,
            public: None,
            phone,
            figures,
            timings,
            internal,
            reg,
            keepalive: None,
            calls: HashMap::new(),
            pending: HashMap::new(),
            timers: BinaryHeap::new(),
            timer_kinds: HashMap::new(),
            timer_seq: 0,
            availability: Availability::Available,
            held: HashMap::new(),
            policy,
            call_counter: 0,
            stopping: false,
            busy_since_trim: false,
            counter_at_sweep: 0,
        })
    }

    async fn run(mut self, mut internal: mpsc::UnboundedReceiver<Internal>) {
        let Some(mut outputs) = self.outputs.take() else { return };
        if let Some(reg) = &self.reg {
            self.keepalive =
                Some(super::transport::spawn_keepalive(self.transport.clone(), reg.server.clone(), self.cfg.keepalive));
            self.register().await;
        }
        self.schedule(Duration::from_secs(10), Timer::Sweep);
        let mut stop_by: Option<Instant> = None;
        loop {
            if let Some(deadline) = stop_by
                && (Instant::now() >= deadline || self.quiet())
            {
                break;
            }
            let next_timer = self.timers.peek().map(|Reverse((at, _))| *at);
            let wake = match (next_timer, stop_by) {
                (Some(t), Some(s)) => Some(t.min(s)),
                (t, s) => t.or(s),
            };
            tokio::select! {
                out = outputs.recv() => match out {
                    Some(o) => self.on_output(o).await,
                    None => break,
                },
                msg = internal.recv() => match msg {
                    Some(Internal::Command(c)) => self.on_command(c).await,
                    Some(Internal::Media { call_id, generation, event }) => self.on_media(&call_id, generation, event),
                    Some(Internal::Card { call_id, card, card_us, taken }) => self.on_card(&call_id, card, card_us, taken),
                    Some(Internal::Stats(reply)) => {
                        let stats = self.stats().await;
                        let _ = reply.send(stats);
                    }
                    Some(Internal::Shutdown) | None => {
                        if stop_by.is_none() {
                            self.begin_shutdown().await;
                            stop_by = Some(Instant::now() + Duration::from_secs(2));
                        }
                    }
                },
                () = sleep_until_opt(wake) => self.fire_timers().await,
            }
        }
        if let Some(k) = self.keepalive.take() {
            k.abort();
        }
        let ids: Vec<String> = self.calls.keys().cloned().collect();
        for id in ids {
            self.finish_call(&id, super::phone::EndReason::HungUp).await;
        }
        // Cards still being looked up are not waited for.
        let held: Vec<String> = self.held.keys().cloned().collect();
        for id in held {
            self.on_card(&id, None, 0, None);
        }
    }

    async fn stats(&self) -> UaStats {
        let (client_transactions, server_transactions) = self.layer.count().await.unwrap_or_default();
        UaStats {
            client_transactions,
            server_transactions,
            calls: self.calls.len(),
            dialogs: self.calls.values().filter(|c| c.dialog.is_some()).count(),
            pending: self.pending.len(),
            timers: self.timer_kinds.values().filter(|t| !matches!(t, Timer::Sweep | Timer::Register { .. })).count(),
            availability: self.availability,
            registered: self.reg.as_ref().is_some_and(|r| r.registered),
            register_expires: self.reg.as_ref().map(|r| r.reg.expires),
        }
    }

    /// Nothing more to wait for before stopping: no REGISTER, BYE or CANCEL out.
    fn quiet(&self) -> bool {
        !self.pending.values().any(|p| matches!(p, Pending::Register { .. } | Pending::Fire { .. }))
    }

    async fn begin_shutdown(&mut self) {
        self.stopping = true;
        let ids: Vec<String> = self.calls.keys().cloned().collect();
        for id in ids {
            self.hangup(&id).await;
        }
        let registered = self.reg.as_ref().is_some_and(|r| r.registered);
        if registered {
            if let Some(r) = &mut self.reg {
                r.removing = true;
                r.generation += 1;
            }
            self.register().await;
        } else {
            // Not registered: forget a REGISTER still out, nothing to remove.
            self.pending.retain(|_, p| !matches!(p, Pending::Register { .. }));
        }
    }

    // ----- timers -----

    /// Sets a timer; the number cancels it.
    pub(super) fn schedule(&mut self, after: Duration, timer: Timer) -> u64 {
        self.timer_seq += 1;
        self.timers.push(Reverse((Instant::now() + after, self.timer_seq)));
        self.timer_kinds.insert(self.timer_seq, timer);
        self.timer_seq
    }

    /// Forgets a timer that no longer matters (its heap entry is skipped when due).
    pub(super) fn cancel_timer(&mut self, seq: u64) {
        self.timer_kinds.remove(&seq);
    }

    async fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, seq))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(timer) = self.timer_kinds.remove(&seq) else { continue };
            match timer {
                Timer::Register { generation } => {
                    if self.reg.as_ref().is_some_and(|r| r.generation == generation && !r.removing) {
                        self.register().await;
                    }
                }
                Timer::AutoAnswer { call_id } => self.answer(&call_id, false).await,
                Timer::RingTimeout { call_id } => self.ring_timeout(&call_id).await,
                Timer::ReInviteRetry { call_id, hold } => self.hold(&call_id, hold).await,
                Timer::CancelGiveUp { call_id } => {
                    if self.calls.get(&call_id).is_some_and(|c| c.is_cancelling()) {
                        self.calls.remove(&call_id);
                    }
                }
                Timer::MediaCheck { call_id } => self.check_media(&call_id).await,
                Timer::Sweep => {
                    self.sweep();
                    self.release_memory_when_idle().await;
                    self.schedule(Duration::from_secs(10), Timer::Sweep);
                }
            }
        }
    }

    /// Forgets client transactions whose answers can no longer come, and
    /// gives back the room a burst of calls took.
    fn sweep(&mut self) {
        super::transaction::shrink_when_idle(&mut self.pending);
        super::transaction::shrink_when_idle(&mut self.calls);
        super::transaction::shrink_when_idle(&mut self.timer_kinds);
        // Cancelled timers stay in the heap until due (a ring timeout: minutes): drop them now.
        let kinds = &self.timer_kinds;
        self.timers.retain(|Reverse((_, seq))| kinds.contains_key(seq));
        if self.timers.capacity() > 64 && self.timers.len() < self.timers.capacity() / 4 {
            self.timers.shrink_to(self.timers.len() * 2);
        }
        let linger = self.cfg.timers.t64() + Duration::from_secs(5);
        let now = Instant::now();
        self.pending.retain(|_, p| match p {
            Pending::Accepted { since, .. } | Pending::Fire { since } => now.duration_since(*since) < linger,
            _ => true,
        });
    }

    /// Once a burst of calls has passed (no call, no transaction left), gives
    /// the memory it took back to the operating system. The tables shrink
    /// ([`Ua::sweep`], the transaction layer's poll), but glibc's malloc keeps
    /// the pages it freed — in the arenas of the tokio workers too — so the
    /// resident size would stay at the burst's high-water mark for good.
    async fn release_memory_when_idle(&mut self) {
        if self.call_counter != self.counter_at_sweep || !self.calls.is_empty() {
            self.counter_at_sweep = self.call_counter;
            self.busy_since_trim = true;
            return;
        }
        let (clients, servers) = self.layer.count().await.unwrap_or_default();
        if clients + servers > 0 || !self.pending.is_empty() {
            self.busy_since_trim = true;
        } else if self.busy_since_trim {
            self.busy_since_trim = false;
            release_freed_memory();
        }
    }

    // ----- addresses -----

    /// The local IP packets to `peer` leave from.
    pub(super) fn local_ip_toward(&self, peer: SocketAddr) -> IpAddr {
        if !self.bound.ip().is_unspecified() {
            return self.bound.ip();
        }
        local_addr_toward(peer).unwrap_or(self.bound.ip())
    }

    /// The address the peer can reach us at: the public one learned from
    /// rport when we are behind NAT, else ours toward it.
    pub(super) fn reachable_addr(&self, peer: SocketAddr) -> SocketAddr {
        match self.public {
            Some(public) => public,
            None => SocketAddr::new(self.local_ip_toward(peer), self.bound.port()),
        }
    }

    /// The IP for the SDP `c=` line of a call with `peer`.
    pub(super) fn media_ip(&self, peer: SocketAddr) -> IpAddr {
        self.public.map_or_else(|| self.local_ip_toward(peer), |p| p.ip())
    }

    /// A new top Via for a request to `peer` (with rport, RFC 3581).
    pub(super) fn via(&self, peer: &Peer) -> Via {
        let ip = self.local_ip_toward(peer.addr);
        let mut via = Via::new(peer.transport.as_str(), Host::from(ip), Some(self.bound.port()), &super::new_branch());
        via.params.set("rport", None);
        via
    }

    /// Our Contact toward `peer`.
    pub(super) fn contact(&self, peer: &Peer) -> NameAddr {
        let addr = self.reachable_addr(peer.addr);
        let user = self.cfg.account.as_ref().map_or(self.cfg.local_user.as_str(), |a| a.username.as_str());
        let mut uri = SipUri::new(Some(user), Host::from(addr.ip()), Some(addr.port()));
        if peer.transport != Transport::Udp {
            uri.params.set("transport", Some(&peer.transport.as_str().to_ascii_lowercase()));
        }
        NameAddr::new(Uri::Sip(uri))
    }

    /// Our address of record (From of our calls).
    pub(super) fn aor(&self, peer: &Peer) -> NameAddr {
        match &self.reg {
            Some(r) => r.reg.aor.clone(),
            None => {
                let addr = self.reachable_addr(peer.addr);
                NameAddr::new(Uri::Sip(SipUri::new(
                    Some(&self.cfg.local_user),
                    Host::from(addr.ip()),
                    Some(addr.port()),
                )))
            }
        }
    }

    /// The registrar, which is also the outbound proxy of our calls.
    pub(super) fn server(&self) -> Option<&Peer> {
        self.reg.as_ref().map(|r| &r.server)
    }

    /// Whether a new call from `from` must be refused: registered, and
    /// calls are taken from the registrar alone, and `from` is another host.
    pub(super) fn call_from_outside(&self, from: SocketAddr) -> bool {
        self.cfg.calls_only_from_registrar
            && self.reg.as_ref().is_some_and(|r| r.registered && r.server.addr.ip() != from.ip())
    }

    /// The digest client for requests we send to the server (a fresh one per call).
    pub(super) fn credentials(&self) -> Option<DigestClient> {
        self.cfg.account.as_ref().map(|a| {
            let user = if a.auth_username.trim().is_empty() { &a.username } else { &a.auth_username };
            DigestClient::new(user, &a.password)
        })
    }

    /// Where a request for `uri` goes: the outbound proxy when registered
    /// with a server, else the URI's own host.
    pub(super) async fn peer_for(&self, uri: &Uri, via_proxy: bool) -> Result<Peer, String> {
        if via_proxy && let Some(server) = self.server() {
            return Ok(server.clone());
        }
        let sip = uri.as_sip().ok_or_else(|| format!("{uri} is not a SIP address"))?;
        let transport =
            sip.param("transport").and_then(|t| t.and_then(|t| Transport::parse(&t))).unwrap_or(self.cfg.transport);
        let port = sip.port.unwrap_or(if sip.secure { 5061 } else { transport.default_port() });
        let addr = resolve(&sip.host, port).await?;
        Ok(Peer::new(transport, addr))
    }

    // ----- sending -----

    /// Adds Via, Contact (for requests that need one) and User-Agent unless present.
    pub(super) fn complete(&self, req: &mut Request, peer: &Peer) {
        if req.headers.count(&HeaderName::Via) == 0 {
            put_top_via(req, &self.via(peer));
        }
        if matches!(req.method, Method::Invite | Method::Update | Method::Refer | Method::Notify | Method::Register)
            && req.headers.count(&HeaderName::Contact) == 0
        {
            req.headers.push_typed(HeaderName::Contact, &self.contact(peer));
        }
        if req.headers.count(&HeaderName::UserAgent) == 0 {
            req.headers.push(HeaderName::UserAgent, self.cfg.user_agent.clone());
        }
    }

    /// Completes `req` and starts a client transaction for it; `pending`
    /// makes what its answer is for from the request as sent.
    pub(super) async fn send(
        &mut self,
        mut req: Request,
        peer: &Peer,
        pending: impl FnOnce(&Request) -> Pending,
    ) -> Option<TransactionId> {
        self.complete(&mut req, peer);
        let pending = pending(&req);
        match self.layer.send_request(req, peer.clone()).await {
            Ok(id) => {
                self.pending.insert(id, pending);
                Some(id)
            }
            Err(e) => {
                tracing::error!(error = %e, "request not sent");
                None
            }
        }
    }

    pub(super) async fn respond(&self, id: TransactionId, mut resp: Response) {
        if resp.headers.count(&HeaderName::Server) == 0 {
            resp.headers.push(HeaderName::Server, self.cfg.user_agent.clone());
        }
        if let Err(e) = self.layer.respond(id, resp).await {
            tracing::error!(error = %e, "response not sent");
        }
    }

    pub(super) async fn send_stateless(&self, peer: &Peer, bytes: Vec<u8>) {
        if let Err(e) = self.layer.send_stateless(peer.clone(), bytes).await {
            tracing::error!(error = %e, "message not sent");
        }
    }

    pub(super) fn emit(&mut self, event: PhoneEvent) {
        if let Some(held) = event.call_id().and_then(|id| self.held.get_mut(id)) {
            held.push(event);
            return;
        }
        tracing::debug!(?event, "phone event");
        self.phone.send(event);
    }

    /// Announces a call (`event`: its `Incoming` or `Dialing`, without a
    /// card) with the card of `number`: at once when there are no cards;
    /// else the lookup runs on a blocking thread, never on this task, and
    /// the call's events wait until its card arrives ([`Ua::on_card`]).
    /// `taken`: when an incoming call's INVITE reached the user agent.
    pub(super) fn announce(
        &mut self,
        event: PhoneEvent,
        number: &str,
        did: Option<&str>,
        taken: Option<std::time::Instant>,
    ) {
        let Some(call_id) = event.call_id().map(str::to_owned) else { return };
        let Some(cards) = self.cards().cloned() else {
            self.held.insert(call_id.clone(), vec![event]);
            self.on_card(&call_id, None, 0, taken);
            return;
        };
        self.held.insert(call_id.clone(), vec![event]);
        let internal = self.internal.clone();
        let (number, did) = (number.to_owned(), did.map(str::to_owned));
        tokio::task::spawn_blocking(move || {
            let started = std::time::Instant::now();
            let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cards.card(&number, did.as_deref())));
            let card_us = started.elapsed().as_micros() as u64;
            let card = found.unwrap_or_else(|_| {
                tracing::error!("the caller card lookup panicked");
                None
            });
            let _ = internal.send(Internal::Card { call_id, card, card_us, taken });
        });
    }

    fn cards(&self) -> Option<&CardLookup> {
        self.cfg.cards.as_ref()
    }

    /// A call's card is there: the call is announced with it (the timing
    /// first, when asked for), then the events that waited for it.
    fn on_card(
        &mut self,
        call_id: &str,
        card: Option<Box<CallerCard>>,
        card_us: u64,
        taken: Option<std::time::Instant>,
    ) {
        let Some(mut events) = self.held.remove(call_id) else { return };
        if let Some(PhoneEvent::Incoming { card: slot, .. } | PhoneEvent::Dialing { card: slot, .. }) =
            events.first_mut()
        {
            *slot = card;
        }
        if self.cfg.timings
            && let Some(taken) = taken
        {
            let handled_us = taken.elapsed().as_micros() as u64;
            let _ = self.timings.send(IncomingTiming { call_id: call_id.to_owned(), card_us, handled_us });
        }
        for event in events {
            self.emit(event);
        }
    }

    /// Reports a finished call's figures, then its end.
    pub(super) fn emit_end(&mut self, call_id: &str, stats: Option<CallStats>, event: PhoneEvent) {
        let _ = self.figures.send(CallFigures { call_id: call_id.to_owned(), stats });
        self.emit(event);
    }

    // ----- the transaction layer's outputs -----

    // ----- registration -----

    // ----- commands -----
}

/// Whether `ip` is one of this machine's addresses as far as NAT goes (the
/// bound one, loopback, or one a socket can bind to).
fn is_local_address(ip: IpAddr, bound: SocketAddr) -> bool {
    if ip == bound.ip() || ip.is_loopback() {
        return true;
    }
    std::net::UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// Returns the heap's free pages to the operating system (glibc keeps them
/// mapped otherwise; other allocators and systems give them back themselves).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_freed_memory() {
    unsafe extern "C" {
        /// glibc ≥ 2.8: releases the free memory at the top of the heap and
        /// every whole free page inside all arenas; returns 1 when it released some.
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointer and works on glibc's own arenas under
    // their locks; it is safe to call from any thread at any time.
    let released = unsafe { malloc_trim(0) };
    tracing::debug!(released = released == 1, "freed memory given back after a burst");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_freed_memory() {}

fn ack_call_id_is(ack: &[u8], call_id: &str) -> bool {
    match super::message::Message::parse(ack) {
        Ok(m) => m.headers().call_id().is_ok_and(|c| c == call_id),
        Err(_) => false,
    }
}

/// Makes `via` the request's only Via, first among its headers (a request we
/// send starts its own Via path).
pub(super) fn put_top_via(req: &mut Request, via: &Via) {
    req.headers.remove(&HeaderName::Via);
    req.headers.0.insert(0, super::headers::Header { name: HeaderName::Via, value: via.to_string() });
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
