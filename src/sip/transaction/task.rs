//! The tokio task that drives a [`TransactionLayer`] over a
//! [`TransportLayer`], and the handle the UA talks to it through.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Timers;
use super::layer::{Output, TransactionId, TransactionLayer};
use crate::sip::message::{Request, Response};
use crate::sip::transport::{Incoming, Peer, TransportLayer};

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
