//! The conversations with the server, one function each.
//!
//! * Upload: each local transaction is one call of `clinicdesk_apply` (one
//!   server transaction), pipelined on the connection; the answer says
//!   applied (with any conflicts) or rejected, and brings the server's state
//!   of the touched rows. Retrying is safe: the server answers a transaction
//!   it has seen from its record, by the transaction's own UUID (its
//!   `tx_id`). Two more answers apply nothing: [`CLONED`] (this client id
//!   numbered another transaction the same: the replica is a copy, or a
//!   restored backup) and [`OUT_OF_ORDER`] (the transaction before it in the
//!   pipeline did not commit).
//! * Download: one call of `clinicdesk_changes` (one statement, so one
//!   snapshot): the change log after the cursor and *below*
//!   `pg_snapshot_xmin(pg_current_snapshot())` (every transaction that could
//!   still add entries there has finished, so a late committer with a low
//!   sequence is never skipped), and the current state of those rows. A
//!   cursor behind the pruning horizon, or from before a bulk load (epoch),
//!   gets `Resync` instead.
//! * Snapshot: the position is the snapshot's xmin; then each table in id
//!   order, in chunks, by binary COPY. Changes made while the chunks are
//!   read are in the log after that position and replayed afterwards
//!   (taking a row's current state twice is harmless).

use futures_util::StreamExt;
use rusqlite::types::Value;
use serde::Deserialize;
use tokio_postgres::Client;
use tokio_postgres::binary_copy::BinaryCopyOutStream;

use super::tables::{ColType, TableSpec, quote_ident, quote_literal};
use super::wire::{Cursor, LocalTx, Outcome, OutcomeRow, RowState, row_from_json};
use super::{Result, SyncError};

/// The answer to an upload whose (client id, first mutation id) the server
/// has recorded for another transaction: nothing was applied, the replica
/// must take a new client id and upload again.
pub const CLONED: &str = "cloned";

/// The answer to an upload whose predecessor in the pipeline did not commit:
/// nothing was applied; upload it again after that one.
pub const OUT_OF_ORDER: &str = "out_of_order";

/// Uploads local transactions in order, pipelined. Each answer is either
/// the outcome or the error that stopped it; after the first error the rest
/// are worth retrying later (the server may or may not have seen them). Each
/// call names the transaction before it, so the server applies none whose
/// predecessor did not commit ([`OUT_OF_ORDER`]).
pub async fn upload(client: &Client, client_id: &str, txs: &[LocalTx]) -> Vec<Result<Outcome>> {
    let stmt = match client.prepare("SELECT clinicdesk_apply($1, $2, $3, $4, $5, $6)").await {
        Ok(s) => s,
        Err(e) => return vec![Err(e.into())],
    };
    let calls = txs.iter().enumerate().map(|(i, tx)| {
        let stmt = &stmt;
        let prev: Option<&str> = i.checked_sub(1).map(|p| txs[p].tx_id.as_str());
        async move {
            let json = tx.to_json();
            let row = client.query_one(stmt, &[&client_id, &tx.tx_id, &prev, &tx.first, &tx.last, &json]).await?;
            let answer: serde_json::Value = row.try_get(0)?;
            serde_json::from_value::<Outcome>(answer).map_err(|e| SyncError::Protocol(format!("upload answer: {e}")))
        }
    });
    futures_util::future::join_all(calls).await
}

/// What a download found.
#[derive(Debug, PartialEq)]
pub enum Download {
    /// The cursor is behind the pruned log or from another epoch: take a
    /// new snapshot.
    Resync { why: String },
    /// Rows to apply (in log order), the cursor after them, and whether
    /// more entries are waiting.
    Batch { rows: Vec<RowState>, cursor: Cursor, more: bool },
}

/// The answer of `clinicdesk_changes`.
#[derive(Debug, Deserialize)]
struct ChangesAnswer {
    #[serde(default)]
    resync: Option<String>,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    more: bool,
    #[serde(default)]
    rows: Vec<OutcomeRow>,
}

/// Reads up to `limit` log entries after `cursor`, and the current state of
/// their rows and of the `refetch` rows: one call of the server's
/// `clinicdesk_changes` (one statement, so one snapshot for all of it).
pub async fn download(
    client: &Client,
    cursor: Cursor,
    epoch: &str,
    limit: i64,
    specs: &[TableSpec],
    refetch: &[(usize, String)],
) -> Result<Download> {
    let refetch_json: serde_json::Value =
        refetch.iter().map(|(t, id)| serde_json::json!([specs[*t].name, id])).collect::<Vec<_>>().into();
    let limit = i32::try_from(limit.clamp(1, 1_000_000)).unwrap_or(1_000_000);
    let row = client
        .query_one(
            "SELECT clinicdesk_changes($1, $2, $3, $4, $5)",
            &[&cursor.xid.to_string(), &cursor.seq, &epoch, &limit, &refetch_json],
        )
        .await?;
    let answer: serde_json::Value = row.try_get(0)?;
    let answer: ChangesAnswer =
        serde_json::from_value(answer).map_err(|e| SyncError::Protocol(format!("download answer: {e}")))?;
    if let Some(why) = answer.resync {
        return Ok(Download::Resync { why });
    }
    let next = answer
        .cursor
        .as_deref()
        .and_then(Cursor::parse)
        .ok_or_else(|| SyncError::Protocol(format!("download cursor {:?}", answer.cursor)))?;
    let mut rows = Vec::with_capacity(answer.rows.len());
    for r in answer.rows {
        let Some(t) = specs.iter().position(|s| s.name == r.table) else {
            tracing::warn!("the change log names a table this ClinicDesk does not sync: {}", r.table);
            continue;
        };
        let values = match &r.row {
            Some(map) => Some(row_from_json(&specs[t], map)?),
            None => None,
        };
        rows.push(RowState { table: t, id: r.row_id, values });
    }
    Ok(Download::Batch { rows, cursor: next, more: answer.more })
}

/// Where a snapshot starts: every transaction below the returned position
/// has finished, so its rows are in whatever the chunks read from now on.
pub async fn snapshot_position(client: &Client) -> Result<(Cursor, String)> {
    let row = client
        .query_one(
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text,
                    coalesce((SELECT value FROM clinicdesk_meta WHERE key = 'epoch'), '1')",
            &[],
        )
        .await?;
    let xmin: String = row.get(0);
    let xid = xmin.parse().map_err(|_| SyncError::Protocol(format!("xmin {xmin:?}")))?;
    // seq -1: entries of the xmin transaction itself are still to be read.
    Ok((Cursor { xid, seq: -1 }, row.get(1)))
}

/// [`snapshot_chunk`] in a task of its own, so the next chunk streams in
/// while the current one is written to the replica.
pub fn prefetch_chunk(
    client: std::sync::Arc<Client>,
    spec: TableSpec,
    after: String,
    limit: i64,
) -> tokio::task::JoinHandle<Result<Vec<Vec<Value>>>> {
    tokio::spawn(async move { snapshot_chunk(&client, &spec, &after, limit).await })
}

/// Up to `limit` rows of a table after id `after`, in id order, by binary
/// COPY: the rows this login may see, references to rows it may not see
/// as null (as the change feed sends them).
pub async fn snapshot_chunk(client: &Client, spec: &TableSpec, after: &str, limit: i64) -> Result<Vec<Vec<Value>>> {
    // COPY takes no parameters: the id is quoted as a literal.
    let sql = format!(
        "COPY (SELECT {} FROM {} t WHERE id > {} ORDER BY id LIMIT {limit}) TO STDOUT (FORMAT binary)",
        spec.visible_column_list(),
        quote_ident(spec.name),
        quote_literal(after),
    );
    let types: Vec<_> = spec.columns.iter().map(|(_, t)| t.postgres()).collect();
    let stream = client.copy_out(&sql).await?;
    let rows = BinaryCopyOutStream::new(stream, &types);
    futures_util::pin_mut!(rows);
    let mut out = Vec::with_capacity(limit.clamp(0, 100_000) as usize);
    while let Some(row) = rows.next().await {
        let row = row?;
        let values = spec
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, ty))| {
                Ok(match ty {
                    ColType::Integer => row.try_get::<Option<i64>>(i)?.map_or(Value::Null, Value::Integer),
                    ColType::Text => row.try_get::<Option<String>>(i)?.map_or(Value::Null, Value::Text),
                })
            })
            .collect::<Result<Vec<Value>>>()?;
        out.push(values);
    }
    Ok(out)
}
