//! What the replica's side of sync ([`super::local`]) and the conversations
//! with the server ([`super::protocol`]) both speak: positions in the
//! server's change log, local transactions as uploaded, the server's answers
//! to them and rows as the server has them. Here so that neither of the two
//! needs the other.

use rusqlite::types::Value;
use serde::Deserialize;

use super::tables::{TableSpec, json_to_value};
use super::{Result, SyncError};

/// A position in the server's change log: entries after it are unread.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub xid: u64,
    pub seq: i64,
}

impl Cursor {
    pub fn parse(text: &str) -> Option<Cursor> {
        let (xid, seq) = text.split_once(':')?;
        Some(Cursor { xid: xid.parse().ok()?, seq: seq.parse().ok()? })
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.xid, self.seq)
    }
}

/// One outbox entry, ready to upload.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    pub mutation_id: i64,
    pub table: String,
    pub row_id: String,
    pub op: String,
    pub payload: serde_json::Map<String, serde_json::Value>,
    /// Starting values of contended columns this change sets.
    pub base: serde_json::Map<String, serde_json::Value>,
    pub at: i64,
}

/// One local transaction (the outbox rows sharing a tx_id).
#[derive(Clone, Debug, PartialEq)]
pub struct LocalTx {
    pub tx_id: String,
    pub first: i64,
    pub last: i64,
    pub mutations: Vec<Mutation>,
}

impl LocalTx {
    /// The argument of the server's `clinicdesk_apply`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            self.mutations
                .iter()
                .map(|m| {
                    serde_json::json!({
                        "table": m.table,
                        "row_id": m.row_id,
                        "op": m.op,
                        "payload": m.payload,
                        "base": m.base,
                        "at": m.at,
                    })
                })
                .collect(),
        )
    }
}

/// A row as the server has it (`None`: the server has no such row).
#[derive(Clone, Debug, PartialEq)]
pub struct RowState {
    /// Index into the specs.
    pub table: usize,
    pub id: String,
    pub values: Option<Vec<Value>>,
}

/// The server's answer to one uploaded local transaction.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct Outcome {
    /// "applied" or "rejected"; or [`CLONED`](super::protocol::CLONED) or
    /// [`OUT_OF_ORDER`](super::protocol::OUT_OF_ORDER), when
    /// nothing was applied.
    pub status: String,
    #[serde(default)]
    pub conflicts: Vec<ServerConflict>,
    #[serde(default)]
    pub rows: Vec<OutcomeRow>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub detail: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
}

/// A conflict as the server reports it.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct ServerConflict {
    pub table: String,
    pub row_id: String,
    /// "field" or "deleted".
    pub kind: String,
    #[serde(default)]
    pub column: String,
    pub local: serde_json::Value,
    pub server: serde_json::Value,
}

/// The server's state of a row a transaction touched.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct OutcomeRow {
    pub table: String,
    pub row_id: String,
    /// `None`: the server has no such row.
    pub row: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A row the server sent as JSON, in the replica's column order.
pub fn row_from_json(spec: &TableSpec, map: &serde_json::Map<String, serde_json::Value>) -> Result<Vec<Value>> {
    spec.columns
        .iter()
        .map(|(column, ty)| match map.get(column) {
            Some(v) => json_to_value(v, *ty, &format!("{}.{column}", spec.name)),
            None => Err(SyncError::Protocol(format!("the server's {} row has no {column}", spec.name))),
        })
        .collect()
}
