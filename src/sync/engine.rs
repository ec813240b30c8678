//! The sync loop: connect, upload the outbox, download (or snapshot), wait
//! for a reason to go again; offline, keep counting local changes and retry.
//!
//! Reasons to go again: a NOTIFY from the server (another workstation
//! committed), a local write (`PRAGMA data_version` moved, or the window
//! called [`SyncHandle::nudge`]), or the poll interval (NOTIFY is a hint: a
//! dropped one costs at most one interval).
//!
//! The engine runs on a thread of its own with its own tokio runtime and
//! its own SQLite connection, so neither the window nor its writer thread
//! ever waits for the network. That makes it the one writer of the replica
//! besides the window's writer thread (`services`): it writes what the
//! server sends (downloads, snapshots, conflicts) and its own bookkeeping
//! (outbox acknowledgements, the cursor), never what the operator typed;
//! SQLite serialises the two.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::types::Value;
use tokio::sync::{Notify, watch};

use super::connect::{self, Connection, Target};
use super::local::Local;
use super::protocol::{self, Download};
use super::server::{self, ServerInfo};
use super::{Result, SyncConfig, SyncError, SyncStatus};
use crate::crm::now_millis;

/// What a sync did (for `clinicdesk sync --once` and tests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Local transactions the server answered.
    pub uploaded_transactions: usize,
    /// Outbox rows they held.
    pub uploaded_changes: usize,
    /// New conflicts recorded.
    pub conflicts: usize,
    /// Local transactions the server refused.
    pub rejected: usize,
    /// Rows taken from the change log.
    pub downloaded_rows: usize,
    /// Rows taken from a snapshot.
    pub snapshot_rows: usize,
    /// A full snapshot was taken (first sync, or the cursor was too old).
    pub snapshot: bool,
    /// Outbox rows still waiting.
    pub pending: usize,
    /// The client id this replica took because the server had seen its old
    /// one with other transactions (a copied or restored replica).
    pub new_client_id: Option<String>,
}

/// The running engine of the window: stop it with [`SyncHandle::stop`].
pub struct SyncHandle {
    stop: watch::Sender<bool>,
    nudge: Arc<Notify>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SyncHandle {
    /// Asks for a round now (call after a local write: the change goes up
    /// without waiting for the next check).
    pub fn nudge(&self) {
        self.nudge.notify_one();
    }

    /// Stops the engine and waits for its thread (at most one server
    /// operation's timeout; usually at once).
    pub fn stop(mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Starts the engine on its own thread. `on_status` hears every change of
/// the status (from that thread).
pub fn spawn(replica_path: PathBuf, config: SyncConfig, on_status: impl Fn(SyncStatus) + Send + 'static) -> SyncHandle {
    let (stop, stopped) = watch::channel(false);
    let nudge = Arc::new(Notify::new());
    let wake = nudge.clone();
    let thread = std::thread::Builder::new().name("clinicdesk-sync".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                on_status(SyncStatus { error: Some(format!("cannot start sync: {e}")), ..SyncStatus::default() });
                return;
            }
        };
        runtime.block_on(run(&replica_path, config, Box::new(on_status), stopped, wake));
    });
    let thread = match thread {
        Ok(t) => Some(t),
        Err(e) => {
            tracing::error!("cannot start the sync thread: {e}");
            None
        }
    };
    SyncHandle { stop, nudge, thread }
}

/// One full sync without a window: upload everything pending, then
/// download until caught up (a snapshot first when needed). Fails when the
/// server cannot be reached.
pub fn sync_once(replica_path: &Path, config: &SyncConfig) -> Result<SyncReport> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| SyncError::Protocol(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let mut engine = Engine::new(replica_path, config.clone())?;
        let mut conn = engine.connect().await?;
        engine.round(&mut conn).await?;
        engine.report.pending = engine.local.pending_count()?;
        Ok(engine.report.clone())
    })
}

/// Runs until `stop` says so (or its sender is gone).
pub async fn run(
    replica_path: &Path,
    config: SyncConfig,
    on_status: Box<dyn Fn(SyncStatus) + Send>,
    mut stop: watch::Receiver<bool>,
    nudge: Arc<Notify>,
) {
    let mut engine = match Engine::new(replica_path, config) {
        Ok(e) => e,
        Err(e) => {
            // The replica cannot be opened (or the URL is bad): nothing to
            // sync; say why and stop.
            tracing::error!("sync cannot start: {e}");
            on_status(SyncStatus { error: Some(e.to_string()), ..SyncStatus::default() });
            return;
        }
    };
    engine.on_status = on_status;
    let mut backoff = Duration::from_millis(250);
    loop {
        if *stop.borrow() {
            break;
        }
        let error = match engine.connect().await {
            Ok(mut conn) => {
                backoff = Duration::from_millis(250);
                engine.online = true;
                engine.error = None;
                engine.publish();
                match engine.serve(&mut conn, &mut stop, &nudge).await {
                    Ok(()) => break,
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        tracing::warn!("sync offline: {error}");
        engine.online = false;
        engine.error = Some(error.to_string());
        engine.publish();
        // What a person must fix (a password, the server's schema) is not
        // retried as eagerly as a network that may come back any moment.
        let wait = if error.is_transient() { backoff } else { Duration::from_secs(30) };
        // Wait before reconnecting, counting local changes meanwhile.
        let until = Instant::now() + wait;
        let mut stopping = false;
        while Instant::now() < until && !stopping {
            tokio::select! {
                changed = stop.changed() => stopping = changed.is_err() || *stop.borrow(),
                _ = nudge.notified() => break,
                _ = tokio::time::sleep(engine.config.local_poll_interval.max(Duration::from_millis(100))) => {}
            }
            engine.publish();
        }
        if stopping {
            break;
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
    engine.online = false;
    engine.publish();
}

/// Resolves once a stop is asked for (or nobody can ask any more).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    while !*stop.borrow() {
        if stop.changed().await.is_err() {
            return;
        }
    }
}

/// Takes `<replica>.sync-lock` (released by the OS when the process ends,
/// however it ends).
fn lock_replica(replica_path: &Path) -> Result<std::fs::File> {
    let mut name = replica_path.as_os_str().to_owned();
    name.push(".sync-lock");
    let path = PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| SyncError::File { path: path.clone(), detail: e.to_string() })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(SyncError::AlreadySyncing { path: replica_path.to_owned() }),
        Err(std::fs::TryLockError::Error(e)) => Err(SyncError::File { path, detail: e.to_string() }),
    }
}

struct Engine {
    /// Held while the engine lives: one sync per replica (two would race
    /// on acknowledging the same outbox entries).
    _lock: std::fs::File,
    local: Local,
    target: Target,
    config: SyncConfig,
    password: Option<String>,
    client_id: String,
    server: Option<ServerInfo>,
    report: SyncReport,
    on_status: Box<dyn Fn(SyncStatus) + Send>,
    published: Option<SyncStatus>,
    online: bool,
    error: Option<String>,
    last_sync: Option<i64>,
}

impl Engine {
    fn new(replica_path: &Path, config: SyncConfig) -> Result<Engine> {
        let target = connect::parse_url(&config.database_url)?;
        let lock = lock_replica(replica_path)?;
        let mut local = Local::open(replica_path)?;
        let client_id = local.client_id()?;
        let last_sync = local.last_sync()?;
        Ok(Engine {
            _lock: lock,
            local,
            target,
            config,
            password: None,
            client_id,
            server: None,
            report: SyncReport::default(),
            on_status: Box::new(|_| {}),
            published: None,
            online: false,
            error: None,
            last_sync,
        })
    }

    /// Tells the window when anything it shows changed.
    fn publish(&mut self) {
        let count = |r: Result<usize>| r.unwrap_or(0);
        let status = SyncStatus {
            online: self.online,
            pending: count(self.local.pending_count()),
            last_sync: self.last_sync,
            error: self.error.clone(),
            conflicts: count(self.local.conflict_count()),
            rejected: count(self.local.rejection_count()),
            unencrypted: self.target.unencrypted_remote(),
        };
        if self.published.as_ref() != Some(&status) {
            (self.on_status)(status.clone());
            self.published = Some(status);
        }
    }

    async fn timed<T>(&self, what: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.config.timeout, what).await {
            Ok(r) => r,
            Err(_) => Err(SyncError::Timeout(self.config.timeout)),
        }
    }

    /// Connects, checks the server's schema and identity, and listens.
    async fn connect(&mut self) -> Result<Connection> {
        let target = self.target.clone();
        let mut password = self.password.take();
        let conn = self.timed(connect::connect_with_keyring(&target, &mut password)).await;
        self.password = password;
        let conn = conn?;
        let info = self.timed(server::check(&conn.client, target.display(), self.local.specs())).await?;
        self.local.bind_server(&info.database_id)?;
        self.server = Some(info);
        self.timed(conn.listen()).await?;
        tracing::info!(server = target.display(), "sync online");
        Ok(conn)
    }

    /// Rounds until stopped; returns the error that took the connection.
    async fn serve(&mut self, conn: &mut Connection, stop: &mut watch::Receiver<bool>, nudge: &Notify) -> Result<()> {
        let mut seen_version = self.local.data_version()?;
        let mut next_poll = Instant::now();
        let mut wake = true;
        // A server NOTIFY waiting for its round, which comes no sooner than
        // `notified_round_gap` after the last one ended.
        let mut notified = false;
        let mut last_round_end = Instant::now();
        loop {
            let notified_due = notified && Instant::now() >= last_round_end + self.config.notified_round_gap;
            if wake || notified_due || Instant::now() >= next_poll {
                wake = false;
                notified = false;
                next_poll = Instant::now() + self.config.poll_interval;
                // A stop does not wait for a long round (an initial snapshot):
                // every transaction is committed or not at an await point.
                tokio::select! {
                    done = self.round(conn) => done?,
                    _ = stopped(stop) => return Ok(()),
                }
                last_round_end = Instant::now();
                self.publish();
            }
            if conn.is_closed() {
                return Err(SyncError::ConnectionLost("the server closed the connection".into()));
            }
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return Ok(());
                    }
                }
                _ = conn.notified.notified() => notified = true,
                _ = tokio::time::sleep_until((last_round_end + self.config.notified_round_gap).into()), if notified => {}
                _ = nudge.notified() => wake = true,
                _ = tokio::time::sleep(self.config.local_poll_interval) => {
                    let v = self.local.data_version()?;
                    if v != seen_version {
                        seen_version = v;
                        wake = true;
                    }
                }
            }
        }
    }

    /// Upload everything pending, then download until caught up.
    async fn round(&mut self, conn: &mut Connection) -> Result<()> {
        self.upload_all(conn).await?;
        self.download_all(conn).await?;
        self.last_sync = Some(now_millis());
        self.maybe_prune(conn).await;
        Ok(())
    }

    /// Uploads every pending transaction, in order. A transaction answered
    /// [`protocol::CLONED`] means this replica is a copy of another
    /// workstation's (or a restored backup): it takes a new client id and
    /// uploads the rest again under it. One answered
    /// [`protocol::OUT_OF_ORDER`] (its predecessor did not commit) starts
    /// the next batch.
    async fn upload_all(&mut self, conn: &Connection) -> Result<()> {
        let mut renewals = 0;
        loop {
            let txs = self.local.pending_batch(self.config.upload_batch)?;
            if txs.is_empty() {
                return Ok(());
            }
            let started = Instant::now();
            let answers = self.timed(async { Ok(protocol::upload(&conn.client, &self.client_id, &txs).await) }).await?;
            let uploaded = started.elapsed();
            let mut answered = Vec::with_capacity(txs.len());
            let mut failure = None;
            let mut cloned = None;
            for (tx, answer) in txs.into_iter().zip(answers) {
                match answer {
                    Ok(outcome) if outcome.status == protocol::CLONED => {
                        cloned = Some(outcome.error.unwrap_or_default());
                        break;
                    }
                    Ok(outcome) if outcome.status == protocol::OUT_OF_ORDER => {
                        if answered.is_empty() {
                            failure = Some(SyncError::Protocol(
                                "the server answered the first upload of a batch out of order".into(),
                            ));
                        }
                        break;
                    }
                    Ok(outcome) => answered.push((tx, outcome)),
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            let summary = self.local.ack(&answered)?;
            tracing::debug!(
                transactions = summary.transactions,
                changes = summary.mutations,
                upload_ms = uploaded.as_millis() as u64,
                ack_ms = (started.elapsed() - uploaded).as_millis() as u64,
                "uploaded"
            );
            self.report.uploaded_transactions += summary.transactions;
            self.report.uploaded_changes += summary.mutations;
            self.report.conflicts += summary.conflicts;
            self.report.rejected += summary.rejected;
            if let Some(e) = failure {
                return Err(e);
            }
            if let Some(why) = cloned {
                renewals += 1;
                if renewals > 3 {
                    return Err(SyncError::Protocol(format!("the server keeps refusing this client id: {why}")));
                }
                let old = self.client_id.clone();
                self.client_id = self.local.renew_client_id(&old)?;
                tracing::warn!(
                    old = %old,
                    new = %self.client_id,
                    "this replica is a copy of another workstation's or was restored from a backup ({why}); \
                     it syncs under a new client id and uploads its pending changes again"
                );
                self.report.new_client_id = Some(self.client_id.clone());
            }
            self.publish();
        }
    }

    async fn download_all(&mut self, conn: &mut Connection) -> Result<()> {
        loop {
            if let Some(state) = self.local.snapshot_state()? {
                self.continue_snapshot(conn, state.table, state.after).await?;
                continue;
            }
            let Some((cursor, epoch)) = self.local.cursor()? else {
                self.begin_snapshot(conn, "this workstation has no copy of the clinic yet").await?;
                continue;
            };
            let refetch = self.local.refetch_list()?;
            let limit = self.config.download_batch;
            let specs = self.local.specs().to_vec();
            let answer = self.timed(protocol::download(&conn.client, cursor, &epoch, limit, &specs, &refetch)).await?;
            match answer {
                Download::Resync { why } => self.begin_snapshot(conn, &why).await?,
                Download::Batch { rows, cursor: next, more } => {
                    if !rows.is_empty() || next != cursor {
                        let started = Instant::now();
                        let stats = self.local.apply_download(&rows, next)?;
                        tracing::debug!(
                            rows = rows.len(),
                            apply_ms = started.elapsed().as_millis() as u64,
                            "downloaded"
                        );
                        self.report.downloaded_rows += stats.applied;
                    }
                    if !more {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn begin_snapshot(&mut self, conn: &mut Connection, why: &str) -> Result<()> {
        tracing::info!("taking a snapshot of the clinic database: {why}");
        let (position, epoch) = self.timed(protocol::snapshot_position(&conn.client)).await?;
        self.local.begin_snapshot(position, &epoch)?;
        self.report.snapshot = true;
        Ok(())
    }

    /// Copies the remaining tables chunk by chunk (each chunk committed with
    /// its progress, so a crash resumes here), then rebuilds the search
    /// index and takes the snapshot's position as the cursor. The next
    /// chunk streams in (a task of its own) while one is being written.
    async fn continue_snapshot(&mut self, conn: &Connection, mut table: usize, mut after: String) -> Result<()> {
        let specs = self.local.specs().to_vec();
        let chunk = self.config.snapshot_chunk.max(1);
        let fetch = |table: usize, after: String| {
            protocol::prefetch_chunk(conn.client.clone(), specs[table].clone(), after, chunk)
        };
        let mut next = (table < specs.len()).then(|| fetch(table, after.clone()));
        while let Some(pending) = next.take() {
            let started = Instant::now();
            let rows = match tokio::time::timeout(self.config.timeout, pending).await {
                Ok(Ok(rows)) => rows?,
                Ok(Err(e)) => return Err(SyncError::Protocol(format!("snapshot task failed: {e}"))),
                Err(_) => return Err(SyncError::Timeout(self.config.timeout)),
            };
            let fetched = started.elapsed();
            let done = (rows.len() as i64) < chunk;
            if done {
                table += 1;
                after.clear();
            } else if let Some(Value::Text(id)) = rows.last().map(|r| &r[specs[table].id_index]) {
                after = id.clone();
            }
            if table < specs.len() {
                next = Some(fetch(table, after.clone()));
            }
            let written = if done { table - 1 } else { table };
            let stats = self.local.apply_snapshot_chunk(written, &rows, done)?;
            self.report.snapshot_rows += stats.applied;
            tracing::debug!(
                table = specs[written].name,
                rows = rows.len(),
                wait_ms = fetched.as_millis() as u64,
                apply_ms = (started.elapsed() - fetched).as_millis() as u64,
                "snapshot chunk"
            );
        }
        let started = Instant::now();
        while !self.local.snapshot_index_step(5_000)? {}
        tracing::debug!(index_ms = started.elapsed().as_millis() as u64, "search index rebuilt");
        Ok(())
    }

    /// Prunes the server's change log when nobody has for a while. Failure
    /// only postpones it.
    async fn maybe_prune(&mut self, conn: &Connection) {
        let Some(info) = &mut self.server else { return };
        let due = info.last_prune + self.config.prune_every.as_millis() as i64;
        if now_millis() < due {
            return;
        }
        info.last_prune = now_millis();
        let keep = info.retention;
        match tokio::time::timeout(self.config.timeout, server::prune(&conn.client, keep)).await {
            Ok(Ok(n)) => tracing::debug!(entries = n, "pruned the change log"),
            Ok(Err(e)) => tracing::warn!("pruning the change log failed: {e}"),
            Err(_) => tracing::warn!("pruning the change log timed out"),
        }
    }
}
