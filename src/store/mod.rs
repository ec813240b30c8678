//! The workstation's local replica of the clinic database (SQLite).
//!
//! Owns the schema and its migrations, the checks that refuse a file that is
//! not ours or is newer than us, and every query the program runs. Writes go
//! through [`Replica::write`], one transaction that also records each change
//! in the outbox for sync: nothing is written outside a transaction.
//! People from another system's CSV export come in the same way ([`import`]).

pub mod calls;
pub mod card;
pub mod checkpoint;
pub mod forms;
pub mod history;
pub mod import;
mod migrate;
pub mod queries;
pub mod reports;
pub mod search;
pub mod writes;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, Transaction, types::Value};

pub use migrate::{APPLICATION_ID, SCHEMA_VERSION};

use crate::crm::{Millis, new_id, now_millis};

/// What can go wrong with the replica file, worded for the person who has to
/// act on it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{path} is not a ClinicDesk database (it is not an SQLite file at all). It was left untouched; \
         move it away or choose another profile with --profile."
    )]
    NotADatabase { path: PathBuf },
    #[error(
        "{path} is an SQLite database of another program, not a ClinicDesk replica. It was left untouched; \
         choose another profile with --profile."
    )]
    NotClinicDesk { path: PathBuf },
    #[error(
        "{path} was written by a newer ClinicDesk (schema version {found}; this one knows up to {supported}). \
         It was left untouched; update ClinicDesk to open it."
    )]
    FromTheFuture { path: PathBuf, found: i64, supported: i64 },
    #[error(
        "{path} has the older schema version {found} (this ClinicDesk uses {supported}) and was opened read-only, \
         so it was not upgraded. Open it once for writing (start ClinicDesk or run `clinicdesk check` on it)."
    )]
    Outdated { path: PathBuf, found: i64, supported: i64 },
    #[error(
        "{path} is damaged ({detail}). It was left untouched; restore it from a backup, or move it away and \
         let ClinicDesk download a fresh replica from the clinic server."
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "cannot write to {path}: {detail}. Check the permissions of the profile directory, or choose another with --profile."
    )]
    ReadOnly { path: PathBuf, detail: String },
    #[error("{what} was not found (it may have been deleted on another workstation)")]
    NotFound { what: String },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(
        "cannot start the replica's checkpoint thread ({0}); the system is short of resources, close other programs"
    )]
    Thread(std::io::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

impl StoreError {
    /// Gives a raw SQLite error the meaning it has for the file at `path`.
    fn about(path: &Path, err: rusqlite::Error) -> StoreError {
        use rusqlite::ErrorCode::*;
        match err.sqlite_error_code() {
            Some(NotADatabase) => StoreError::NotADatabase { path: path.to_owned() },
            Some(DatabaseCorrupt) => StoreError::Corrupt { path: path.to_owned(), detail: err.to_string() },
            Some(ReadOnly | CannotOpen | PermissionDenied) => {
                StoreError::ReadOnly { path: path.to_owned(), detail: err.to_string() }
            }
            _ => StoreError::Sqlite(err),
        }
    }
}

/// One connection to the replica file.
pub struct Replica {
    conn: Connection,
    path: PathBuf,
}

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

impl Replica {
    /// Opens the replica read-write, creating it if it does not exist and
    /// applying pending migrations in one transaction.
    pub fn open(path: &Path) -> Result<Replica> {
        check_header(path)?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| StoreError::about(path, e))?;
        let mut replica = Replica { conn, path: path.to_owned() };
        // Identify the file before anything (even journal_mode) writes to it.
        migrate::check_identity(&replica.conn, path)?;
        replica.configure(false)?;
        migrate::migrate(&mut replica.conn, path)?;
        Ok(replica)
    }

    /// Opens an existing replica for reading only (the UI's connections).
    pub fn open_read_only(path: &Path) -> Result<Replica> {
        check_header(path)?;
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(|e| StoreError::about(path, e))?;
        let replica = Replica { conn, path: path.to_owned() };
        migrate::check_identity(&replica.conn, path)?;
        let found = migrate::user_version(&replica.conn, path)?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::FromTheFuture { path: path.to_owned(), found, supported: SCHEMA_VERSION });
        }
        if found < SCHEMA_VERSION {
            return Err(StoreError::Outdated { path: path.to_owned(), found, supported: SCHEMA_VERSION });
        }
        replica.configure(true)?;
        Ok(replica)
    }

    fn configure(&self, read_only: bool) -> Result<()> {
        let c = &self.conn;
        let map = |e| StoreError::about(&self.path, e);
        c.busy_timeout(std::time::Duration::from_secs(5)).map_err(map)?;
        if !read_only {
            c.pragma_update(None, "journal_mode", "WAL").map_err(map)?;
            c.pragma_update(None, "synchronous", "NORMAL").map_err(map)?;
        }
        c.pragma_update(None, "foreign_keys", "ON").map_err(map)?;
        c.pragma_update(None, "cache_size", -32_000).map_err(map)?;
        c.pragma_update(None, "mmap_size", 256 * 1024 * 1024).map_err(map)?;
        c.pragma_update(None, "temp_store", "MEMORY").map_err(map)?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` in one write transaction whose changes are also queued in the
    /// outbox. On error nothing of it is kept.
    pub fn write<T>(&mut self, f: impl FnOnce(&mut Writer<'_>) -> Result<T>) -> Result<T> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| StoreError::about(&path, e))?;
        let mut writer = Writer { tx, tx_id: new_id(), now: now_millis(), acting: false };
        let value = f(&mut writer)?;
        if writer.acting {
            // The author is for this transaction's triggers only.
            writer.tx.execute("DELETE FROM write_author", []).map_err(|e| StoreError::about(&path, e))?;
        }
        writer.tx.commit().map_err(|e| StoreError::about(&path, e))?;
        Ok(value)
    }

    /// A raw transaction for bulk loads (demo data, snapshots) that bypass
    /// the outbox because the rows did not originate on this workstation.
    pub fn bulk_transaction(&mut self) -> Result<Transaction<'_>> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| StoreError::about(&path, e))
    }
}

/// Refuses a file that exists but is not SQLite, before SQLite sees it.
fn check_header(path: &Path) -> Result<()> {
    use std::io::Read;
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::ReadOnly { path: path.to_owned(), detail: e.to_string() }),
    };
    let mut header = [0u8; 16];
    match file.read(&mut header) {
        Ok(0) => Ok(()),
        Ok(16) if &header == SQLITE_MAGIC => Ok(()),
        Ok(_) => Err(StoreError::NotADatabase { path: path.to_owned() }),
        Err(e) => Err(StoreError::Corrupt { path: path.to_owned(), detail: e.to_string() }),
    }
}

/// One column's new value in a write.
pub type Column<'a> = (&'a str, Value);

/// A write transaction in progress. Each change is applied and recorded in
/// the outbox with the transaction's id, so sync uploads it as one unit.
pub struct Writer<'a> {
    tx: Transaction<'a>,
    tx_id: String,
    now: Millis,
    /// `write_author` holds a user for this transaction.
    acting: bool,
}

impl Writer<'_> {
    pub fn now(&self) -> Millis {
        self.now
    }

    /// Names the user this transaction writes for, so the triggers that
    /// keep local histories (a task's History) record who changed what.
    /// Changes that arrive by sync have no author here.
    pub fn act_as(&mut self, user_id: Option<&str>) -> Result<()> {
        self.tx.execute("INSERT OR REPLACE INTO write_author (id, user_id) VALUES (1, ?)", [user_id])?;
        self.acting = true;
        Ok(())
    }

    pub fn tx(&self) -> &Transaction<'_> {
        &self.tx
    }

    /// Inserts a new row of a synced table and queues it.
    pub fn insert(&mut self, table: &'static str, id: &str, columns: &[Column<'_>]) -> Result<()> {
        let mut names = vec!["id", "row_version", "updated_at"];
        names.extend(columns.iter().map(|(n, _)| *n));
        let placeholders = vec!["?"; names.len()].join(", ");
        let sql = format!("INSERT INTO {table} ({}) VALUES ({placeholders})", names.join(", "));
        let mut params: Vec<Value> = vec![Value::Text(id.to_owned()), Value::Integer(1), Value::Integer(self.now)];
        params.extend(columns.iter().map(|(_, v)| v.clone()));
        self.tx.execute(&sql, rusqlite::params_from_iter(params))?;
        self.queue_raw(table, id, "insert", columns)
    }

    /// Changes some columns of a row, bumping its version, and queues the
    /// changed columns only (sync merges field by field).
    pub fn update(&mut self, table: &'static str, id: &str, columns: &[Column<'_>]) -> Result<()> {
        if columns.is_empty() {
            return Ok(());
        }
        let sets: Vec<String> = columns.iter().map(|(n, _)| format!("{n} = ?")).collect();
        let sql = format!(
            "UPDATE {table} SET {}, row_version = row_version + 1, updated_at = ? WHERE id = ? AND deleted_at IS NULL",
            sets.join(", ")
        );
        let mut params: Vec<Value> = columns.iter().map(|(_, v)| v.clone()).collect();
        params.push(Value::Integer(self.now));
        params.push(Value::Text(id.to_owned()));
        let changed = self.tx.execute(&sql, rusqlite::params_from_iter(params))?;
        if changed == 0 {
            return Err(StoreError::NotFound { what: format!("{table} {id}") });
        }
        self.queue_raw(table, id, "update", columns)
    }

    /// Marks a row deleted (a tombstone that syncs like any change).
    pub fn delete(&mut self, table: &'static str, id: &str) -> Result<()> {
        let columns = [("deleted_at", Value::Integer(self.now))];
        self.update(table, id, &columns)?;
        // The update above queued an 'update'; make the intent explicit.
        self.tx.execute("UPDATE outbox SET op = 'delete' WHERE mutation_id = last_insert_rowid()", [])?;
        Ok(())
    }

    /// Records a change in the outbox (for changes applied by hand).
    pub fn queue_raw(&mut self, table: &str, id: &str, op: &str, columns: &[Column<'_>]) -> Result<()> {
        let payload: serde_json::Map<String, serde_json::Value> =
            columns.iter().map(|(n, v)| ((*n).to_owned(), value_to_json(v))).collect();
        self.tx.execute(
            "INSERT INTO outbox (tx_id, table_name, row_id, op, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            rusqlite::params![self.tx_id, table, id, op, serde_json::Value::Object(payload).to_string(), self.now],
        )?;
        Ok(())
    }
}

fn value_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Integer(i) => (*i).into(),
        Value::Real(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
        Value::Text(s) => s.clone().into(),
        Value::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect::<String>().into(),
    }
}

/// `Some(text)` → Text, `None` → Null.
pub fn opt_text(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, |s| Value::Text(s.clone()))
}

pub fn text(v: impl Into<String>) -> Value {
    Value::Text(v.into())
}

pub fn int(v: i64) -> Value {
    Value::Integer(v)
}

pub fn opt_int(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::Integer)
}
