//! The headless phone's call log: finished calls written into the replica
//! on a thread of its own, so the phone's events are never held up by the
//! disk (the window writes through its writer thread instead).

use crate::store::Replica;
use crate::store::calls::FinishedCall;
use crate::store::queries::user_with_rights;

/// The operator of this workstation (`user_login` in settings.toml) as the
/// replica knows them: their id goes with every call they take.
pub fn operator_id(replica: &Replica, login: Option<&str>) -> Option<String> {
    let login = login.map(str::trim).filter(|l| !l.is_empty())?;
    match user_with_rights(replica.conn(), login) {
        Ok(found) => found.map(|(user, _)| user.id),
        Err(e) => {
            tracing::warn!(error = %e, login, "the operator cannot be looked up: calls are logged without one");
            None
        }
    }
}

/// Writes finished calls to the replica on a thread of its own: recording a
/// call (the missed-call rules, an inquiry, a task) must never hold up the
/// next call's `incoming` line, which in a call center comes right after.
pub struct CallLog {
    calls: Option<crossbeam_channel::Sender<FinishedCall>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CallLog {
    pub fn start(mut replica: Replica) -> std::io::Result<CallLog> {
        let (tx, rx) = crossbeam_channel::unbounded::<FinishedCall>();
        let thread = std::thread::Builder::new().name("phone-call-log".into()).spawn(move || {
            // The log's checkpoints on a thread of their own: a COMMIT never
            // copies the WAL back while a call is being recorded.
            let _checkpointer = match replica.checkpoint_in_background() {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "checkpoints stay inside the call log's commits");
                    None
                }
            };
            for call in rx {
                if let Err(e) = replica.record_call(&call) {
                    tracing::warn!(error = %e, "the call could not be logged in the replica");
                }
            }
        })?;
        Ok(CallLog { calls: Some(tx), thread: Some(thread) })
    }

    pub fn record(&self, call: FinishedCall) {
        if let Some(tx) = &self.calls {
            let _ = tx.send(call);
        }
    }
}

impl Drop for CallLog {
    /// Every call handed over is written before the phone exits.
    fn drop(&mut self) {
        self.calls = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
