//! The clinic database as the window sees it: the sync engine started for
//! the window (its status becomes [`Event::SyncStatus`]) and the audit
//! trail read on a thread of its own (it waits for the network).

//!
//! The engine keeps its own read-write connection to the replica: it is the
//! one writer besides the writer thread (downloaded rows, snapshots, outbox
//! acknowledgements; `crate::sync::local` does them in big transactions of
//! its own and must not wait behind the window's saves, nor they behind it).
//! SQLite serialises the two; the engine never writes what the operator
//! typed, and never applies a download over a row with pending local
//! changes.

use std::path::PathBuf;

use crossbeam_channel::Receiver;

use super::message::Message;
use super::{Event, EventSink};
use crate::sync::audit::AuditQuery;
use crate::sync::{SyncConfig, SyncHandle};

/// Starts the engine on its thread; each change of its status becomes an
/// [`Event::SyncStatus`] (a frame never waits for the sync thread).
pub(super) fn start(replica_path: PathBuf, database_url: String, events: EventSink) -> SyncHandle {
    crate::sync::spawn(replica_path, SyncConfig::new(database_url), move |status| {
        events.send(Event::SyncStatus(status))
    })
}

/// One read of the audit trail.
pub(super) struct AuditRequest {
    pub seq: u64,
    pub database_url: String,
    pub query: AuditQuery,
}

pub(super) fn audit_loop(requests: Receiver<AuditRequest>, events: EventSink) {
    while let Ok(first) = requests.recv() {
        // Only the newest question is worth the network.
        let request = requests.try_iter().last().unwrap_or(first);
        let result = crate::sync::audit::read(&request.database_url, &request.query).map_err(|e| match e {
            crate::sync::SyncError::NotAllowed(detail) => Message::new("audit-refused").with("detail", detail),
            other => Message::new("audit-failed").with("detail", other),
        });
        events.send(Event::Audit { seq: request.seq, result });
    }
}
