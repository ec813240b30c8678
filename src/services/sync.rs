//! The clinic database as the window sees it: the sync engine started for
//! the window (its status becomes [`Event::SyncStatus`]) and the audit
//! trail read on a thread of its own (it waits for the network).

use crossbeam_channel::Receiver;

use super::message::Message;
use super::{Event, EventSink};
use crate::sync::audit::AuditQuery;

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
