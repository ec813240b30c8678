//! The replica's side of sync, on the engine's own SQLite connection.
//!
//! Everything here is one short transaction: reading a batch of the outbox,
//! taking the server's answer to an upload (outbox entries removed,
//! conflicts and rejections recorded, the server's state of the touched rows
//! taken), applying a batch of downloaded rows with the new cursor, or one
//! chunk of the initial snapshot with its progress. So a crash at any point
//! leaves either the old state or the new one, and the window's writer
//! never waits long.
//!
//! Rules kept here:
//! * a row with pending local changes (outbox entries) is never overwritten
//!   by a download; the server's answer to the upload brings it up to date;
//! * a downloaded row the replica cannot take yet (a unique value still held
//!   by a local row) is remembered in `sync_refetch` and fetched again;
//! * the search index of people follows every change of people and phones.
//!
//! The connection has foreign keys off: rows arrive in the server's commit
//! order, already checked there, and a resumable snapshot goes table by table.
//!
//! The outbox and upload side (batches, acknowledgements) is in `upload.rs`;
//! this file keeps the state, downloads, the snapshot and the applier.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::tables::{CONTENDED, TableSpec, quote_ident};
use super::wire::{Cursor, RowState};
use super::{Result, SyncError};
use crate::crm::{Phone, new_id, now_millis};
use crate::store::Replica;
use crate::store::search::{index_person, names_key, phones_key};

mod upload;

/// What applying a batch of rows did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ApplyStats {
    pub applied: usize,
    /// Rows left alone because they have pending local changes.
    pub kept_local: usize,
    /// Rows the replica could not take yet (see `sync_refetch`).
    pub deferred: usize,
}

/// What taking the answers to an upload did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AckSummary {
    pub transactions: usize,
    pub mutations: usize,
    pub conflicts: usize,
    pub rejected: usize,
}

/// Progress of an initial snapshot (kept in sync_state, so it resumes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotState {
    /// Where incremental sync starts once the snapshot is complete.
    pub position: Cursor,
    pub epoch: String,
    /// Index of the table being copied (== specs.len(): all copied).
    pub table: usize,
    /// The last id copied of that table.
    pub after: String,
    /// Rebuilding the people search index: the last person rowid done.
    pub fts_after: i64,
}

/// The engine's connection to the replica.
pub struct Local {
    replica: Replica,
    specs: Vec<TableSpec>,
}

impl Local {
    pub fn open(path: &Path) -> Result<Local> {
        let replica = Replica::open(path)?;
        replica.conn().pragma_update(None, "foreign_keys", "OFF")?;
        // The engine mostly writes: a memory map of the file would only make
        // its resident size look like the replica's.
        replica.conn().pragma_update(None, "mmap_size", 0)?;
        let specs = super::tables::specs(replica.conn())?;
        Ok(Local { replica, specs })
    }

    pub fn specs(&self) -> &[TableSpec] {
        &self.specs
    }

    pub fn conn(&self) -> &Connection {
        self.replica.conn()
    }

    /// Changes whenever another connection commits (the window's writes).
    pub fn data_version(&self) -> Result<i64> {
        Ok(self.conn().pragma_query_value(None, "data_version", |r| r.get(0))?)
    }

    pub fn state(&self, key: &str) -> Result<Option<String>> {
        Ok(self.conn().query_row("SELECT value FROM sync_state WHERE key = ?", [key], |r| r.get(0)).optional()?)
    }

    /// This workstation's id on the server, created on first use.
    pub fn client_id(&mut self) -> Result<String> {
        if let Some(id) = self.state("client_id")? {
            return Ok(id);
        }
        let tx = self.replica.bulk_transaction()?;
        let id: String =
            match tx.query_row("SELECT value FROM sync_state WHERE key = 'client_id'", [], |r| r.get(0)).optional()? {
                Some(id) => id,
                None => {
                    let id = new_id();
                    set_state(&tx, "client_id", &id)?;
                    id
                }
            };
        tx.commit()?;
        Ok(id)
    }

    /// Takes a new client id in place of `old`, which the server found
    /// numbering another replica's transactions too (this replica is a copy
    /// of another workstation's, or was restored from a backup). The pending
    /// transactions keep their numbers and UUIDs: under the new id they are
    /// new to the server, except those it has already applied, which it
    /// knows by UUID. The old ids are kept in `former_client_ids`.
    pub fn renew_client_id(&mut self, old: &str) -> Result<String> {
        let tx = self.replica.bulk_transaction()?;
        let current: Option<String> =
            tx.query_row("SELECT value FROM sync_state WHERE key = 'client_id'", [], |r| r.get(0)).optional()?;
        if let Some(current) = current
            && current != old
        {
            // Renewed already (by another engine on this replica).
            return Ok(current);
        }
        let former: Option<String> = tx
            .query_row("SELECT value FROM sync_state WHERE key = 'former_client_ids'", [], |r| r.get(0))
            .optional()?;
        let former = match former {
            Some(list) if !list.is_empty() => format!("{list} {old}"),
            _ => old.to_owned(),
        };
        let id = new_id();
        set_state(&tx, "former_client_ids", &former)?;
        set_state(&tx, "client_id", &id)?;
        tx.commit()?;
        Ok(id)
    }

    /// Remembers which server this replica syncs with. A replica that
    /// synced with another database forgets its cursor and resyncs.
    pub fn bind_server(&mut self, database_id: &str) -> Result<bool> {
        let known = self.state("server_database_id")?;
        if known.as_deref() == Some(database_id) {
            return Ok(false);
        }
        let tx = self.replica.bulk_transaction()?;
        let changed = known.is_some();
        if changed {
            tracing::warn!("this replica synced with another clinic database before; taking a fresh snapshot");
            restore_indexes(&tx)?;
            tx.execute("DELETE FROM sync_state WHERE key IN ('cursor', 'epoch') OR key LIKE 'snapshot.%'", [])?;
        }
        set_state(&tx, "server_database_id", database_id)?;
        tx.commit()?;
        Ok(changed)
    }

    /// Where incremental sync continues, and the server epoch it belongs to.
    pub fn cursor(&self) -> Result<Option<(Cursor, String)>> {
        let cursor = self.state("cursor")?.and_then(|c| Cursor::parse(&c));
        let epoch = self.state("epoch")?;
        Ok(cursor.zip(epoch))
    }

    pub fn last_sync(&self) -> Result<Option<i64>> {
        Ok(self.state("last_sync")?.and_then(|v| v.parse().ok()))
    }

    pub fn set_last_sync(&mut self, at: i64) -> Result<()> {
        let tx = self.replica.bulk_transaction()?;
        set_state(&tx, "last_sync", &at.to_string())?;
        tx.commit()?;
        Ok(())
    }

    /// Outbox rows waiting.
    pub fn pending_count(&self) -> Result<usize> {
        let n: i64 = self.conn().query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        Ok(n as usize)
    }

    pub fn conflict_count(&self) -> Result<usize> {
        let n: i64 =
            self.conn().query_row("SELECT count(*) FROM sync_conflicts WHERE resolved_at IS NULL", [], |r| r.get(0))?;
        Ok(n as usize)
    }

    pub fn rejection_count(&self) -> Result<usize> {
        let n: i64 =
            self.conn()
                .query_row("SELECT count(*) FROM sync_rejections WHERE dismissed_at IS NULL", [], |r| r.get(0))?;
        Ok(n as usize)
    }

    /// Applies a batch of downloaded rows and moves the cursor, in one
    /// transaction.
    pub fn apply_download(&mut self, rows: &[RowState], cursor: Cursor) -> Result<ApplyStats> {
        let specs = self.specs.clone();
        let tx = self.replica.bulk_transaction()?;
        let pending = pending_rows(&tx)?;
        let mut applier = Applier::new(&tx, &specs, Some(pending), true)?;
        for row in rows {
            applier.apply(row.table, &row.id, row.values.as_deref())?;
        }
        let stats = applier.finish()?;
        drop(applier);
        set_state(&tx, "cursor", &cursor.to_string())?;
        set_state(&tx, "last_sync", &now_millis().to_string())?;
        tx.commit()?;
        Ok(stats)
    }

    /// Rows to fetch again (see `sync_refetch`), as (spec index, id).
    pub fn refetch_list(&self) -> Result<Vec<(usize, String)>> {
        let mut stmt = self.conn().prepare_cached("SELECT table_name, row_id FROM sync_refetch ORDER BY table_name")?;
        let rows: Vec<(String, String)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
        Ok(rows
            .into_iter()
            .filter_map(|(t, id)| self.specs.iter().position(|s| s.name == t).map(|i| (i, id)))
            .collect())
    }

    pub fn snapshot_state(&self) -> Result<Option<SnapshotState>> {
        let Some(position) = self.state("snapshot.position")?.and_then(|c| Cursor::parse(&c)) else {
            return Ok(None);
        };
        Ok(Some(SnapshotState {
            position,
            epoch: self.state("snapshot.epoch")?.unwrap_or_default(),
            table: self.state("snapshot.table")?.and_then(|v| v.parse().ok()).unwrap_or(0),
            after: self.state("snapshot.after")?.unwrap_or_default(),
            fts_after: self.state("snapshot.fts_after")?.and_then(|v| v.parse().ok()).unwrap_or(0),
        }))
    }

    /// Starts a snapshot taken at `position` of server epoch `epoch`; the
    /// old cursor is forgotten.
    pub fn begin_snapshot(&mut self, position: Cursor, epoch: &str) -> Result<SnapshotState> {
        let tx = self.replica.bulk_transaction()?;
        restore_indexes(&tx)?;
        tx.execute("DELETE FROM sync_state WHERE key IN ('cursor', 'epoch') OR key LIKE 'snapshot.%'", [])?;
        set_state(&tx, "snapshot.position", &position.to_string())?;
        set_state(&tx, "snapshot.epoch", epoch)?;
        set_state(&tx, "snapshot.table", "0")?;
        set_state(&tx, "snapshot.after", "")?;
        set_state(&tx, "snapshot.fts_after", "0")?;
        // Rows to refetch are covered by the snapshot.
        tx.execute("DELETE FROM sync_refetch", [])?;
        tx.commit()?;
        self.snapshot_state()?.ok_or_else(|| SyncError::Protocol("snapshot state not saved".into()))
    }

    /// Writes one chunk of a table's snapshot with the progress. `done`:
    /// the table is complete (the next chunk starts the next table).
    pub fn apply_snapshot_chunk(&mut self, table: usize, rows: &[Vec<Value>], done: bool) -> Result<ApplyStats> {
        let specs = self.specs.clone();
        let spec = &specs[table];
        let first = self.state("snapshot.after")?.unwrap_or_default().is_empty();
        let tx = self.replica.bulk_transaction()?;
        // Filling an empty table: its secondary indexes are dropped and built
        // once at the end (sorting beats a million random inserts). Their SQL
        // is kept with the progress, so a crash in between rebuilds them.
        if first && !rows.is_empty() {
            let empty: bool =
                tx.query_row(&format!("SELECT NOT EXISTS (SELECT 1 FROM {})", quote_ident(spec.name)), [], |r| {
                    r.get(0)
                })?;
            if empty {
                let indexes: Vec<(String, String)> = {
                    let mut stmt = tx.prepare(
                        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                    )?;
                    stmt.query_map([spec.name], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
                };
                if !indexes.is_empty() {
                    let mut saved: Vec<String> = match tx
                        .query_row("SELECT value FROM sync_state WHERE key = 'snapshot.indexes'", [], |r| {
                            r.get::<_, String>(0)
                        })
                        .optional()?
                    {
                        Some(json) => serde_json::from_str(&json).unwrap_or_default(),
                        None => Vec::new(),
                    };
                    for (name, sql) in indexes {
                        tx.execute_batch(&format!("DROP INDEX {}", quote_ident(&name)))?;
                        saved.push(sql);
                    }
                    set_state(&tx, "snapshot.indexes", &serde_json::Value::from(saved).to_string())?;
                }
            }
        }
        let pending = pending_rows(&tx)?;
        // The search index is rebuilt once at the end.
        let mut applier = Applier::new(&tx, &specs, Some(pending), false)?;
        let mut last_id = None;
        for values in rows {
            let id = match values.get(spec.id_index) {
                Some(Value::Text(id)) => id.clone(),
                _ => return Err(SyncError::Protocol(format!("a {} row without an id", spec.name))),
            };
            applier.apply(table, &id, Some(values))?;
            last_id = Some(id);
        }
        let stats = applier.finish()?;
        drop(applier);
        if done {
            restore_indexes(&tx)?;
            set_state(&tx, "snapshot.table", &(table + 1).to_string())?;
            set_state(&tx, "snapshot.after", "")?;
        } else if let Some(id) = last_id {
            set_state(&tx, "snapshot.after", &id)?;
        }
        tx.commit()?;
        Ok(stats)
    }

    /// Rebuilds the search index of up to `limit` people after the
    /// snapshot; when none are left, completes the snapshot (the cursor
    /// takes its position). Returns true when complete.
    pub fn snapshot_index_step(&mut self, limit: i64) -> Result<bool> {
        let Some(state) = self.snapshot_state()? else {
            return Ok(true);
        };
        let tx = self.replica.bulk_transaction()?;
        let people: Vec<(i64, String, String, String, Option<String>)> = {
            let mut stmt = tx.prepare_cached(
                "SELECT p.rowid, p.last_name, p.first_name, p.middle_name,
                        (SELECT group_concat(phone_e164, ' ') FROM person_phones
                         WHERE person_id = p.id AND deleted_at IS NULL)
                 FROM people p WHERE p.rowid > ? ORDER BY p.rowid LIMIT ?",
            )?;
            stmt.query_map(params![state.fts_after, limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        let complete = match people.last() {
            Some((rowid, ..)) => {
                for (rowid, last, first, middle, phones) in &people {
                    let mut phones: Vec<Phone> = phones
                        .as_deref()
                        .unwrap_or_default()
                        .split_whitespace()
                        .map(|p| Phone::from_e164_unchecked(p.to_owned()))
                        .collect();
                    // The order reindex_person uses, so replicas agree.
                    phones.sort_by(|a, b| a.as_str().cmp(b.as_str()));
                    index_person(&tx, *rowid, &names_key(last, first, middle), &phones_key(&phones))?;
                }
                set_state(&tx, "snapshot.fts_after", &rowid.to_string())?;
                false
            }
            None => {
                restore_indexes(&tx)?;
                tx.execute("DELETE FROM sync_state WHERE key LIKE 'snapshot.%'", [])?;
                set_state(&tx, "cursor", &state.position.to_string())?;
                set_state(&tx, "epoch", &state.epoch)?;
                true
            }
        };
        tx.commit()?;
        Ok(complete)
    }
}

/// Builds the indexes a snapshot dropped (see `apply_snapshot_chunk`).
fn restore_indexes(tx: &Transaction<'_>) -> Result<()> {
    let saved: Option<String> =
        tx.query_row("SELECT value FROM sync_state WHERE key = 'snapshot.indexes'", [], |r| r.get(0)).optional()?;
    let Some(saved) = saved else { return Ok(()) };
    let sqls: Vec<String> = serde_json::from_str(&saved)
        .map_err(|e| SyncError::Protocol(format!("the saved index definitions are damaged: {e}")))?;
    for sql in sqls {
        tx.execute_batch(&sql)?;
    }
    tx.execute("DELETE FROM sync_state WHERE key = 'snapshot.indexes'", [])?;
    Ok(())
}

fn set_state(tx: &Transaction<'_>, key: &str, value: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO sync_state (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        [key, value],
    )?;
    Ok(())
}

fn pending_rows(tx: &Transaction<'_>) -> Result<HashSet<(String, String)>> {
    let mut stmt = tx.prepare_cached("SELECT DISTINCT table_name, row_id FROM outbox")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

fn has_pending(tx: &Transaction<'_>, table: &str, id: &str) -> Result<bool> {
    let mut stmt = tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM outbox WHERE table_name = ? AND row_id = ?)")?;
    Ok(stmt.query_row([table, id], |r| r.get(0))?)
}

/// Applies server rows to the replica, keeping rows with pending changes.
struct Applier<'t> {
    tx: &'t Transaction<'t>,
    specs: &'t [TableSpec],
    /// Rows with pending changes, or None to ask the outbox each time.
    pending: Option<HashSet<(String, String)>>,
    refetch: HashSet<(String, String)>,
    /// Keep the search index of touched people up to date.
    index_people: bool,
    people: BTreeSet<String>,
    upserts: Vec<String>,
    /// The upsert of each table, prepared on first use (one lookup per
    /// chunk, not per row).
    prepared: Vec<Option<rusqlite::CachedStatement<'t>>>,
    stats: ApplyStats,
}

impl<'t> Applier<'t> {
    fn new(
        tx: &'t Transaction<'t>,
        specs: &'t [TableSpec],
        pending: Option<HashSet<(String, String)>>,
        index_people: bool,
    ) -> Result<Applier<'t>> {
        let refetch = {
            let mut stmt = tx.prepare_cached("SELECT table_name, row_id FROM sync_refetch")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
        };
        let upserts = specs
            .iter()
            .map(|s| {
                let placeholders = vec!["?"; s.columns.len()].join(", ");
                let sets: Vec<String> = s
                    .columns
                    .iter()
                    .filter(|(c, _)| c != "id")
                    .map(|(c, _)| format!("{q} = excluded.{q}", q = quote_ident(c)))
                    .collect();
                format!(
                    "INSERT INTO {} ({}) VALUES ({placeholders}) ON CONFLICT(id) DO UPDATE SET {}",
                    quote_ident(s.name),
                    s.column_list(),
                    sets.join(", ")
                )
            })
            .collect();
        Ok(Applier {
            tx,
            specs,
            pending,
            refetch,
            index_people,
            people: BTreeSet::new(),
            prepared: (0..specs.len()).map(|_| None).collect(),
            upserts,
            stats: ApplyStats::default(),
        })
    }

    fn is_pending(&self, table: &str, id: &str) -> Result<bool> {
        match &self.pending {
            Some(set) if set.is_empty() => Ok(false),
            Some(set) => Ok(set.contains(&(table.to_owned(), id.to_owned()))),
            None => has_pending(self.tx, table, id),
        }
    }

    /// Takes the server's state of one row (`None`: the server has none).
    fn apply(&mut self, table: usize, id: &str, values: Option<&[Value]>) -> Result<()> {
        let spec = &self.specs[table];
        let name = spec.name;
        if self.is_pending(name, id)? {
            self.stats.kept_local += 1;
            return Ok(());
        }
        if let Some(values) = values
            && values.len() != spec.columns.len()
        {
            return Err(SyncError::Protocol(format!("a {name} row with {} values", values.len())));
        }
        if self.index_people {
            match name {
                "people" => {
                    self.people.insert(id.to_owned());
                }
                "person_phones" => {
                    let old: Option<String> = self
                        .tx
                        .prepare_cached("SELECT person_id FROM person_phones WHERE id = ?")?
                        .query_row([id], |r| r.get(0))
                        .optional()?;
                    self.people.extend(old);
                    if let (Some(values), Some(i)) = (values, spec.index_of("person_id"))
                        && let Value::Text(p) = &values[i]
                    {
                        self.people.insert(p.clone());
                    }
                }
                _ => {}
            }
        }
        let result = match values {
            Some(values) => {
                if self.prepared[table].is_none() {
                    self.prepared[table] = Some(self.tx.prepare_cached(&self.upserts[table])?);
                }
                match &mut self.prepared[table] {
                    Some(stmt) => stmt.execute(rusqlite::params_from_iter(values.iter())),
                    None => Err(rusqlite::Error::InvalidQuery),
                }
            }
            None => {
                // The server never had it (a rejected insert) or it was
                // removed there by hand: so it goes here too.
                if name == "people" {
                    self.tx.execute(
                        "DELETE FROM people_fts WHERE rowid = (SELECT rowid FROM people WHERE id = ?)",
                        [id],
                    )?;
                }
                self.tx.execute(&format!("DELETE FROM {} WHERE id = ?", quote_ident(name)), [id])
            }
        };
        match result {
            Ok(_) => {
                self.stats.applied += 1;
                if !self.refetch.is_empty() && self.refetch.remove(&(name.to_owned(), id.to_owned())) {
                    self.tx
                        .prepare_cached("DELETE FROM sync_refetch WHERE table_name = ? AND row_id = ?")?
                        .execute([name, id])?;
                }
                if CONTENDED.iter().any(|(t, _)| *t == name) {
                    // The triggers noted the downloaded value as a starting value.
                    self.tx
                        .prepare_cached("DELETE FROM sync_base WHERE table_name = ? AND row_id = ?")?
                        .execute([name, id])?;
                }
                Ok(())
            }
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
                tracing::debug!("{name} {id} cannot be applied yet ({e}); will fetch it again");
                self.stats.deferred += 1;
                self.tx.execute("INSERT OR IGNORE INTO sync_refetch (table_name, row_id) VALUES (?, ?)", [name, id])?;
                self.refetch.insert((name.to_owned(), id.to_owned()));
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Reindexes the touched people; returns the counts.
    fn finish(&mut self) -> Result<ApplyStats> {
        for id in std::mem::take(&mut self.people) {
            reindex_person(self.tx, &id)?;
        }
        Ok(self.stats)
    }
}

/// Rewrites the search entry of one person from the replica's rows (all
/// people, deleted or not, are indexed, as the store does; the search
/// filters deleted ones). Phones in a fixed order, so replicas agree.
pub fn reindex_person(conn: &Connection, id: &str) -> Result<()> {
    let person: Option<(i64, String, String, String)> = conn
        .prepare_cached("SELECT rowid, last_name, first_name, middle_name FROM people WHERE id = ?")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((rowid, last, first, middle)) = person else {
        return Ok(());
    };
    let phones: Vec<Phone> = conn
        .prepare_cached(
            "SELECT phone_e164 FROM person_phones WHERE person_id = ? AND deleted_at IS NULL ORDER BY phone_e164",
        )?
        .query_map([id], |r| r.get::<_, String>(0))?
        .map(|p| p.map(Phone::from_e164_unchecked))
        .collect::<rusqlite::Result<_>>()?;
    index_person(conn, rowid, &names_key(&last, &first, &middle), &phones_key(&phones))?;
    Ok(())
}

/// Kinds of conflict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictKind {
    /// Another workstation changed the same contended field first.
    Field,
    /// Another workstation deleted the row this one edited.
    Deleted,
}

/// A change of this workstation that lost to another's, with both values.
#[derive(Clone, Debug, PartialEq)]
pub struct Conflict {
    pub id: i64,
    /// The local transaction the change belonged to.
    pub tx_id: String,
    pub table: String,
    pub row_id: String,
    pub kind: ConflictKind,
    /// The contended column (`Field` only).
    pub column: Option<String>,
    /// What this workstation wrote (`Deleted`: all the fields it edited).
    pub local_value: serde_json::Value,
    /// What the server kept (`Deleted`: when the row was deleted, Unix ms).
    pub server_value: serde_json::Value,
    pub detected_at: i64,
}

/// Unresolved conflicts, newest first.
pub fn conflicts(conn: &Connection) -> Result<Vec<Conflict>> {
    let mut stmt = conn.prepare(
        "SELECT id, tx_id, table_name, row_id, kind, column_name, local_value, server_value, detected_at
         FROM sync_conflicts WHERE resolved_at IS NULL ORDER BY detected_at DESC, id DESC",
    )?;
    let rows = stmt.query_map([], |r| {
        let kind: String = r.get(4)?;
        let column: String = r.get(5)?;
        let local: String = r.get(6)?;
        let server: String = r.get(7)?;
        Ok(Conflict {
            id: r.get(0)?,
            tx_id: r.get(1)?,
            table: r.get(2)?,
            row_id: r.get(3)?,
            kind: if kind == "deleted" { ConflictKind::Deleted } else { ConflictKind::Field },
            column: (!column.is_empty()).then_some(column),
            local_value: serde_json::from_str(&local).unwrap_or(serde_json::Value::String(local)),
            server_value: serde_json::from_str(&server).unwrap_or(serde_json::Value::String(server)),
            detected_at: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Marks a conflict seen and dealt with; false when there is no such
/// unresolved conflict.
pub fn resolve_conflict(conn: &Connection, id: i64) -> Result<bool> {
    let n = conn.execute(
        "UPDATE sync_conflicts SET resolved_at = ? WHERE id = ? AND resolved_at IS NULL",
        params![now_millis(), id],
    )?;
    Ok(n == 1)
}

/// A local transaction the server refused.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub id: i64,
    pub tx_id: String,
    /// The transaction's changes as uploaded (JSON array of {table, row_id,
    /// op, payload}).
    pub changes: serde_json::Value,
    /// The server's reason, e.g. `duplicate key value violates unique constraint ...`.
    pub error: String,
    pub detail: String,
    /// SQLSTATE (`23505`...), or `local` when the outbox entry was unreadable.
    pub code: String,
    pub rejected_at: i64,
}

/// Rejections not dismissed, newest first.
pub fn rejections(conn: &Connection) -> Result<Vec<Rejection>> {
    let mut stmt = conn.prepare(
        "SELECT id, tx_id, changes, error, detail, code, rejected_at FROM sync_rejections
         WHERE dismissed_at IS NULL ORDER BY rejected_at DESC, id DESC",
    )?;
    let rows = stmt.query_map([], |r| {
        let changes: String = r.get(2)?;
        Ok(Rejection {
            id: r.get(0)?,
            tx_id: r.get(1)?,
            changes: serde_json::from_str(&changes).unwrap_or(serde_json::Value::String(changes)),
            error: r.get(3)?,
            detail: r.get(4)?,
            code: r.get(5)?,
            rejected_at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Hides a rejection from the list; false when there is no such one.
pub fn dismiss_rejection(conn: &Connection, id: i64) -> Result<bool> {
    let n = conn.execute(
        "UPDATE sync_rejections SET dismissed_at = ? WHERE id = ? AND dismissed_at IS NULL",
        params![now_millis(), id],
    )?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{int, text};

    pub(super) fn replica() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        let mut r = Replica::open(&path).unwrap();
        r.write(|w| {
            w.insert("deal_types", "dt", &[("name", text("Primary"))])?;
            for (id, pos) in [("s1", 1), ("s2", 2), ("s3", 3)] {
                w.insert(
                    "deal_stages",
                    id,
                    &[("deal_type_id", text("dt")), ("name", text(id)), ("position", int(pos))],
                )?;
            }
            w.insert(
                "deals",
                "d1",
                &[("deal_type_id", text("dt")), ("stage_id", text("s1")), ("title", text("x")), ("created_at", int(1))],
            )?;
            Ok(())
        })
        .unwrap();
        (dir, path)
    }

    #[test]
    fn downloads_keep_rows_with_pending_changes() {
        let (_dir, path) = replica();
        let mut local = Local::open(&path).unwrap();
        let deals = local.specs().iter().position(|s| s.name == "deals").unwrap();
        let spec = local.specs()[deals].clone();
        let mut values: Vec<Value> = local
            .conn()
            .query_row(&format!("SELECT {} FROM deals WHERE id = 'd1'", spec.column_list()), [], |r| {
                (0..spec.columns.len()).map(|i| r.get(i)).collect()
            })
            .unwrap();
        values[spec.index_of("title").unwrap()] = Value::Text("from the server".into());
        let stats = local
            .apply_download(
                &[RowState { table: deals, id: "d1".into(), values: Some(values) }],
                Cursor { xid: 9, seq: 3 },
            )
            .unwrap();
        assert_eq!(stats.kept_local, 1);
        let title: String =
            local.conn().query_row("SELECT title FROM deals WHERE id = 'd1'", [], |r| r.get(0)).unwrap();
        assert_eq!(title, "x");
        assert_eq!(local.state("cursor").unwrap().as_deref(), Some("9:3"));
    }
}
