//! Sync of this workstation's SQLite replica with the clinic's shared
//! PostgreSQL database.
//!
//! Operators must keep working when the server or the network is down, see
//! each other's changes within a second, and never lose or double a record.
//! So every local change is written with its outbox entry in one SQLite
//! transaction (`store::Replica::write`), and this module moves those entries
//! to the server and the server's changes back:
//!
//! * [`server`]: the shared schema (versioned migrations), its change log and
//!   the function that applies one uploaded local transaction.
//! * [`local`]: the replica's side: outbox batches, acknowledgements,
//!   applying downloaded rows (never over rows with pending local changes),
//!   the search index of people, conflicts and rejections (the outbox and
//!   upload side in `local/upload.rs`).
//! * [`wire`]: what `local` and `protocol` both speak: log cursors, local
//!   transactions, the server's answers, rows as the server has them.
//! * [`protocol`]: the conversations with the server: upload, download below
//!   the snapshot horizon, the initial snapshot in binary COPY.
//! * [`engine`]: the loop that runs them, online or offline, woken by NOTIFY
//!   and by local writes, and polling anyway.
//! * [`connect`]: database URLs, passwords from the keyring, TLS.
//! * [`checksum`]: order-independent digests of every synced table, to prove
//!   that workstations and server hold the same rows.
//!
//! How the pieces fit, and the rules (field-level merge, contended fields,
//! delete wins), are in `server_v1.sql`'s header and in [`protocol`].

pub mod audit;
pub mod checksum;
pub mod connect;
pub mod engine;
pub mod local;
pub mod protocol;
pub mod server;
pub mod tables;
pub mod wire;

use std::path::PathBuf;
use std::time::Duration;

use crate::settings::secrets::SecretError;
use crate::store::StoreError;

pub use engine::{SyncHandle, SyncReport, spawn, sync_once};
pub use local::{Conflict, ConflictKind, Rejection, conflicts, dismiss_rejection, rejections, resolve_conflict};

/// What can go wrong with sync, worded for the person who has to act on it.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(
        "the database URL is not valid ({0}). Write it as postgres://USER@HOST:PORT/DATABASE, \
         with ?sslmode=require (or verify-full) for TLS."
    )]
    BadUrl(String),
    #[error(
        "cannot reach the clinic database at {target}: {detail}. Check the address and that the server is \
         running; this workstation keeps working offline and syncs when it is back."
    )]
    Unreachable { target: String, detail: String },
    #[error(
        "the clinic database at {target} asks for a password{why}: add it to the URL, or keep it in the \
         keyring with `clinicdesk password set --kind database --account {account}`"
    )]
    PasswordNeeded { target: String, account: String, why: String },
    #[error("the clinic database at {target} refused the login: {detail}")]
    LoginRefused { target: String, detail: String },
    #[error("TLS to the clinic database at {target} failed: {detail}")]
    Tls { target: String, detail: String },
    #[error(
        "the database at {target} has no ClinicDesk schema yet: run `clinicdesk server init --database-url URL` \
         once (on any workstation)"
    )]
    NotInitialised { target: String },
    #[error(
        "the clinic database was set up by a newer ClinicDesk (schema version {found}; this one knows up to \
         {supported}). Nothing was changed; update ClinicDesk on this workstation."
    )]
    ServerFromTheFuture { found: i64, supported: i64 },
    #[error(
        "the clinic database has schema version {found} but this ClinicDesk needs {supported}: upgrade it with \
         `clinicdesk server init --database-url URL`"
    )]
    ServerTooOld { found: i64, supported: i64 },
    #[error(
        "the database at {target} already has tables ClinicDesk did not create ({tables}). Nothing was changed; \
         give ClinicDesk a database of its own."
    )]
    ForeignDatabase { target: String, tables: String },
    #[error(
        "the clinic database's tables do not match this replica: {0}. Run `clinicdesk server init` or update ClinicDesk."
    )]
    SchemaMismatch(String),
    #[error("the clinic database already holds {rows} rows; a replica can only be loaded into an empty one")]
    ServerNotEmpty { rows: i64 },
    #[error(
        "another ClinicDesk is already syncing {path} (the window or `clinicdesk sync`); only one sync runs per \
         profile at a time"
    )]
    AlreadySyncing { path: PathBuf },
    #[error("the login {login:?} cannot be used: {why}")]
    BadLogin { login: String, why: String },
    #[error("{0}")]
    NotAllowed(String),
    #[error("the clinic database answered with an error: {0}")]
    Server(String),
    #[error("the connection to the clinic database was lost: {0}")]
    ConnectionLost(String),
    #[error("the clinic database did not answer within {0:?}; will retry")]
    Timeout(Duration),
    #[error("the server sent something this ClinicDesk does not understand: {0}")]
    Protocol(String),
    #[error("cannot read {path}: {detail}")]
    File { path: PathBuf, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
}

impl From<rusqlite::Error> for SyncError {
    fn from(e: rusqlite::Error) -> SyncError {
        SyncError::Store(StoreError::Sqlite(e))
    }
}

impl From<tokio_postgres::Error> for SyncError {
    fn from(e: tokio_postgres::Error) -> SyncError {
        if let Some(db) = e.as_db_error() {
            let mut text = db.message().to_owned();
            if let Some(detail) = db.detail() {
                text.push_str(" (");
                text.push_str(detail);
                text.push(')');
            }
            return SyncError::Server(text);
        }
        if e.is_closed() {
            return SyncError::ConnectionLost(e.to_string());
        }
        SyncError::ConnectionLost(e.to_string())
    }
}

impl SyncError {
    /// Errors that another attempt later may cure (the server or network is
    /// down); the engine goes offline and retries instead of giving up.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SyncError::Unreachable { .. }
                | SyncError::ConnectionLost(_)
                | SyncError::Timeout(_)
                | SyncError::Server(_)
                | SyncError::Tls { .. }
        )
    }
}

pub type Result<T, E = SyncError> = std::result::Result<T, E>;

/// How the engine runs. [`SyncConfig::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct SyncConfig {
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=...]
    pub database_url: String,
    /// How often the server is asked for changes even without a NOTIFY
    /// (LISTEN is a hint, not a guarantee).
    pub poll_interval: Duration,
    /// How often the replica is checked for local writes of other
    /// connections (a `PRAGMA data_version`, microseconds). The window can
    /// also call [`SyncHandle::nudge`] after a write.
    pub local_poll_interval: Duration,
    /// Outbox rows uploaded per round trip batch (several transactions are
    /// pipelined on one connection).
    pub upload_batch: usize,
    /// Change-log entries read per download transaction.
    pub download_batch: i64,
    /// Rows per snapshot chunk (one SQLite transaction each, so an
    /// interrupted initial sync resumes where it stopped).
    pub snapshot_chunk: i64,
    /// Change-log retention applied when this workstation prunes (at most
    /// hourly, whichever workstation comes first).
    pub prune_every: Duration,
    /// Longest wait for one server operation before the connection is
    /// considered lost.
    pub timeout: Duration,
    /// Least time between the end of a round and one woken by a server
    /// NOTIFY: any login may NOTIFY the channel, and a flood of them must not
    /// keep every workstation syncing without pause. Local writes are not
    /// held back.
    pub notified_round_gap: Duration,
}

impl SyncConfig {
    pub fn new(database_url: impl Into<String>) -> SyncConfig {
        SyncConfig {
            database_url: database_url.into(),
            poll_interval: Duration::from_secs(1),
            local_poll_interval: Duration::from_millis(50),
            upload_batch: 2000,
            download_batch: 5000,
            snapshot_chunk: 20_000,
            prune_every: Duration::from_secs(3600),
            timeout: Duration::from_secs(60),
            notified_round_gap: Duration::from_millis(250),
        }
    }
}

/// What the window's status indicator shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// Connected to the clinic database.
    pub online: bool,
    /// Local changes (outbox rows) not yet uploaded.
    pub pending: usize,
    /// When the replica last caught up with the server (Unix ms).
    pub last_sync: Option<i64>,
    /// Why the engine is offline or stopped, for the operator.
    pub error: Option<String>,
    /// Unresolved conflicts ([`conflicts`]).
    pub conflicts: usize,
    /// Local transactions the server refused, not dismissed ([`rejections`]).
    pub rejected: usize,
    /// The clinic database is on another machine and reached without TLS
    /// (the URL says `sslmode=disable`): patient data crosses the network in clear.
    pub unencrypted: bool,
}
