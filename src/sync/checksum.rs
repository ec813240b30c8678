//! Digests of every synced table, equal when two copies hold the same rows
//! with the same values, whatever their order: how tests (and a suspicious
//! administrator) prove that workstations and server have converged.
//!
//! Each row is hashed (SHA-256 of its typed values in column order) and the
//! first 128 bits of the hashes are added up, so the digest of a table does
//! not depend on row order, and rowids (which differ between replicas) play
//! no part. The replica's people search index is digested too, per person
//! id, with phone keys sorted.

use std::collections::BTreeMap;

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use super::Result;
use super::tables::{ColType, TableSpec, quote_ident};

/// Rows and digest of one table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TableSum {
    pub rows: u64,
    pub digest: u128,
}

impl std::fmt::Display for TableSum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} rows, {:032x}", self.rows, self.digest)
    }
}

/// Table name → sum.
pub type Checksums = BTreeMap<String, TableSum>;

/// The name under which the replica's search index is digested.
pub const SEARCH_INDEX: &str = "people_fts";

#[derive(Default)]
struct Summer {
    rows: u64,
    digest: u128,
}

impl Summer {
    fn add(&mut self, hasher: Sha256) {
        let hash = hasher.finalize();
        let mut first = [0u8; 16];
        first.copy_from_slice(&hash[..16]);
        self.digest = self.digest.wrapping_add(u128::from_le_bytes(first));
        self.rows += 1;
    }

    fn sum(&self) -> TableSum {
        TableSum { rows: self.rows, digest: self.digest }
    }
}

fn feed_int(h: &mut Sha256, v: Option<i64>) {
    match v {
        None => h.update([0u8]),
        Some(i) => {
            h.update([1u8]);
            h.update(i.to_le_bytes());
        }
    }
}

fn feed_text(h: &mut Sha256, v: Option<&str>) {
    match v {
        None => h.update([0u8]),
        Some(s) => {
            h.update([2u8]);
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
    }
}

/// Digests of the synced tables (and the search index) of a replica.
pub fn replica(conn: &Connection, specs: &[TableSpec]) -> Result<Checksums> {
    let mut out = Checksums::new();
    for spec in specs {
        let mut stmt = conn.prepare(&format!("SELECT {} FROM {}", spec.column_list(), quote_ident(spec.name)))?;
        let mut rows = stmt.query([])?;
        let mut summer = Summer::default();
        while let Some(row) = rows.next()? {
            let mut h = Sha256::new();
            for i in 0..spec.columns.len() {
                match row.get_ref(i)? {
                    ValueRef::Null => h.update([0u8]),
                    ValueRef::Integer(v) => feed_int(&mut h, Some(v)),
                    ValueRef::Text(t) => feed_text(&mut h, Some(&String::from_utf8_lossy(t))),
                    ValueRef::Real(f) => {
                        h.update([3u8]);
                        h.update(f.to_le_bytes());
                    }
                    ValueRef::Blob(b) => {
                        h.update([4u8]);
                        h.update(b);
                    }
                }
            }
            summer.add(h);
        }
        out.insert(spec.name.to_owned(), summer.sum());
    }
    let mut stmt =
        conn.prepare("SELECT p.id, f.names, f.phones FROM people p LEFT JOIN people_fts f ON f.rowid = p.rowid")?;
    let mut rows = stmt.query([])?;
    let mut summer = Summer::default();
    while let Some(row) = rows.next()? {
        let mut h = Sha256::new();
        let id: String = row.get(0)?;
        let names: Option<String> = row.get(1)?;
        let phones: Option<String> = row.get(2)?;
        let mut keys: Vec<&str> = phones.as_deref().unwrap_or_default().split_whitespace().collect();
        keys.sort_unstable();
        feed_text(&mut h, Some(&id));
        feed_text(&mut h, names.as_deref());
        feed_text(&mut h, phones.as_ref().map(|_| keys.join(" ")).as_deref());
        summer.add(h);
    }
    out.insert(SEARCH_INDEX.to_owned(), summer.sum());
    Ok(out)
}

/// Digests of the synced tables on the server (same values, same digest
/// as a replica's).
pub async fn server(client: &Client, specs: &[TableSpec]) -> Result<Checksums> {
    let mut out = Checksums::new();
    for spec in specs {
        let rows = client.query(&format!("SELECT {} FROM {}", spec.column_list(), quote_ident(spec.name)), &[]).await?;
        let mut summer = Summer::default();
        for row in rows {
            let mut h = Sha256::new();
            for (i, (_, ty)) in spec.columns.iter().enumerate() {
                match ty {
                    ColType::Integer => feed_int(&mut h, row.try_get::<_, Option<i64>>(i)?),
                    ColType::Text => feed_text(&mut h, row.try_get::<_, Option<&str>>(i)?),
                }
            }
            summer.add(h);
        }
        out.insert(spec.name.to_owned(), summer.sum());
    }
    Ok(out)
}

/// [`server`] for callers without a runtime (tests, scripts).
pub fn server_blocking(database_url: &str, specs: &[TableSpec]) -> Result<Checksums> {
    let target = super::connect::parse_url(database_url)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| super::SyncError::Protocol(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let mut password = None;
        let conn = super::connect::connect_with_keyring(&target, &mut password).await?;
        server(&conn.client, specs).await
    })
}
