//! The outbox side of the replica: the oldest local transactions read whole
//! for upload, with the values contended fields started from, and the
//! server's answers taken (outbox entries removed, conflicts and rejections
//! recorded, the server's state of the touched rows applied).

use std::collections::HashMap;

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Transaction, params};

use super::{AckSummary, Applier, Local, has_pending};
use crate::crm::now_millis;
use crate::sync::tables::{CONTENDED, TableSpec, find, json_to_value, value_to_json};
use crate::sync::wire::{LocalTx, Mutation, Outcome, OutcomeRow, row_from_json};
use crate::sync::{Result, SyncError};

impl Local {
    /// The oldest local transactions, whole, up to about `max_mutations`
    /// outbox rows, with the starting values of contended fields.
    pub fn pending_batch(&mut self, max_mutations: usize) -> Result<Vec<LocalTx>> {
        let limit = max_mutations.max(1) as i64;
        let rows: Vec<(i64, String, String, String, String, String, i64)> = {
            let mut stmt = self.conn().prepare_cached(
                "SELECT mutation_id, tx_id, table_name, row_id, op, payload, created_at FROM outbox
                 ORDER BY mutation_id LIMIT ?",
            )?;
            stmt.query_map([limit], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let full = rows.len() as i64 == limit;
        let mut txs: Vec<LocalTx> = Vec::new();
        let mut unreadable: Vec<(String, String)> = Vec::new();
        for (mutation_id, tx_id, table, row_id, op, payload, at) in rows {
            let payload = match serde_json::from_str::<serde_json::Value>(&payload) {
                Ok(serde_json::Value::Object(map)) => map,
                Ok(_) | Err(_) => {
                    unreadable.push((tx_id.clone(), format!("outbox entry {mutation_id} is not a JSON object")));
                    serde_json::Map::new()
                }
            };
            let m = Mutation { mutation_id, table, row_id, op, payload, base: serde_json::Map::new(), at };
            match txs.last_mut() {
                Some(tx) if tx.tx_id == tx_id => {
                    tx.last = mutation_id;
                    tx.mutations.push(m);
                }
                _ => txs.push(LocalTx { tx_id, first: mutation_id, last: mutation_id, mutations: vec![m] }),
            }
        }
        // The limit may have cut the last transaction: drop it, or when it is
        // the only one, read it whole.
        if full && let Some(last) = txs.last() {
            let more: bool = self.conn().query_row(
                "SELECT EXISTS (SELECT 1 FROM outbox WHERE tx_id = ? AND mutation_id > ?)",
                params![last.tx_id, last.last],
                |r| r.get(0),
            )?;
            if more {
                if txs.len() > 1 {
                    txs.pop();
                } else {
                    let tx_id = last.tx_id.clone();
                    return self.whole_transaction(&tx_id);
                }
            }
        }
        if !unreadable.is_empty() {
            self.reject_unreadable(&unreadable)?;
            return self.pending_batch(max_mutations);
        }
        self.attach_bases(&mut txs)?;
        Ok(txs)
    }

    fn whole_transaction(&mut self, tx_id: &str) -> Result<Vec<LocalTx>> {
        let rows: Vec<(i64, String, String, String, String, i64)> = {
            let mut stmt = self.conn().prepare(
                "SELECT mutation_id, table_name, row_id, op, payload, created_at FROM outbox WHERE tx_id = ?
                 ORDER BY mutation_id",
            )?;
            stmt.query_map([tx_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        let mut tx = LocalTx { tx_id: tx_id.to_owned(), first: i64::MAX, last: 0, mutations: Vec::new() };
        for (mutation_id, table, row_id, op, payload, at) in rows {
            let payload = match serde_json::from_str::<serde_json::Value>(&payload) {
                Ok(serde_json::Value::Object(map)) => map,
                _ => {
                    self.reject_unreadable(&[(
                        tx_id.to_owned(),
                        format!("outbox entry {mutation_id} is not a JSON object"),
                    )])?;
                    return self.pending_batch(1);
                }
            };
            tx.first = tx.first.min(mutation_id);
            tx.last = tx.last.max(mutation_id);
            tx.mutations.push(Mutation { mutation_id, table, row_id, op, payload, base: serde_json::Map::new(), at });
        }
        let mut txs = vec![tx];
        self.attach_bases(&mut txs)?;
        Ok(txs)
    }

    /// An outbox entry that cannot be read would block the queue forever:
    /// its transaction is recorded as rejected and taken out.
    fn reject_unreadable(&mut self, bad: &[(String, String)]) -> Result<()> {
        let tx = self.replica.bulk_transaction()?;
        for (tx_id, why) in bad {
            let changes: String = tx.query_row(
                "SELECT json_group_array(json_object('table', table_name, 'row_id', row_id, 'op', op, 'payload', payload))
                 FROM outbox WHERE tx_id = ?",
                [tx_id],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO sync_rejections (tx_id, changes, error, detail, code, rejected_at)
                 VALUES (?, ?, ?, '', 'local', ?)",
                params![tx_id, changes, why, now_millis()],
            )?;
            tx.execute("DELETE FROM outbox WHERE tx_id = ?", [tx_id])?;
            tracing::warn!("a local change could not be read and was set aside: {why}");
        }
        tx.commit()?;
        Ok(())
    }

    /// Adds to each update of a contended column the value it started from:
    /// the previous pending change's value, else the one `sync_base` kept.
    fn attach_bases(&self, txs: &mut [LocalTx]) -> Result<()> {
        let mut believed: HashMap<(String, String, String), serde_json::Value> = HashMap::new();
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT value FROM sync_base WHERE table_name = ? AND row_id = ? AND column_name = ?")?;
        for tx in txs.iter_mut() {
            for m in &mut tx.mutations {
                for (table, column) in CONTENDED {
                    if m.table != table || !m.payload.contains_key(column) {
                        continue;
                    }
                    let key = (m.table.clone(), m.row_id.clone(), column.to_owned());
                    if m.op == "update" {
                        let base = match believed.get(&key) {
                            Some(v) => Some(v.clone()),
                            None => stmt
                                .query_row(params![m.table, m.row_id, column], |r| r.get::<_, Value>(0))
                                .optional()?
                                .map(|v| value_to_json(&v)),
                        };
                        if let Some(base) = base {
                            m.base.insert(column.to_owned(), base);
                        }
                    }
                    if let Some(v) = m.payload.get(column) {
                        believed.insert(key, v.clone());
                    }
                }
            }
        }
        Ok(())
    }

    /// Takes the server's answers to uploaded transactions (in upload
    /// order): outbox entries removed, conflicts and rejections recorded,
    /// the server's state of each touched row taken unless more local
    /// changes of it are pending. A transaction already acknowledged (by
    /// another engine on this replica) is skipped.
    pub fn ack(&mut self, answers: &[(LocalTx, Outcome)]) -> Result<AckSummary> {
        let specs = self.specs.clone();
        let tx = self.replica.bulk_transaction()?;
        let now = now_millis();
        let mut summary = AckSummary::default();
        let mut applier = Applier::new(&tx, &specs, None, true)?;
        for (local, outcome) in answers {
            let still: i64 = tx.query_row(
                "SELECT count(*) FROM outbox WHERE tx_id = ? AND mutation_id BETWEEN ? AND ?",
                params![local.tx_id, local.first, local.last],
                |r| r.get(0),
            )?;
            if still == 0 {
                continue;
            }
            tx.execute(
                "DELETE FROM outbox WHERE tx_id = ? AND mutation_id BETWEEN ? AND ?",
                params![local.tx_id, local.first, local.last],
            )?;
            summary.transactions += 1;
            summary.mutations += local.mutations.len();
            match outcome.status.as_str() {
                "applied" => {}
                "rejected" => {
                    summary.rejected += 1;
                    let error = outcome.error.clone().unwrap_or_default();
                    let code = outcome.code.clone().unwrap_or_default();
                    // The message, not the detail: the detail may hold patient data.
                    tracing::warn!(code = %code, "the server refused a local change: {error}");
                    tx.execute(
                        "INSERT OR IGNORE INTO sync_rejections (tx_id, changes, error, detail, code, rejected_at)
                         VALUES (?, ?, ?, ?, ?, ?)",
                        params![
                            local.tx_id,
                            local.to_json().to_string(),
                            error,
                            outcome.detail.clone().unwrap_or_default(),
                            code,
                            now
                        ],
                    )?;
                }
                other => return Err(SyncError::Protocol(format!("unknown upload outcome {other:?}"))),
            }
            for c in &outcome.conflicts {
                summary.conflicts += tx.execute(
                    "INSERT OR IGNORE INTO sync_conflicts
                     (tx_id, table_name, row_id, kind, column_name, local_value, server_value, detected_at)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    params![
                        local.tx_id,
                        c.table,
                        c.row_id,
                        c.kind,
                        c.column,
                        c.local.to_string(),
                        c.server.to_string(),
                        now
                    ],
                )?;
            }
            self::track_bases(&tx, &specs, local)?;
            for row in &outcome.rows {
                apply_outcome_row(&mut applier, &specs, row)?;
            }
        }
        applier.finish()?;
        drop(applier);
        tx.commit()?;
        Ok(summary)
    }
}

/// After an upload: a row with no more pending changes forgets its starting
/// values; otherwise the values just uploaded are what the next pending
/// change started from.
fn track_bases(tx: &Transaction<'_>, specs: &[TableSpec], local: &LocalTx) -> Result<()> {
    for m in &local.mutations {
        if !CONTENDED.iter().any(|(t, _)| *t == m.table) {
            continue;
        }
        if !has_pending(tx, &m.table, &m.row_id)? {
            tx.execute("DELETE FROM sync_base WHERE table_name = ? AND row_id = ?", [&m.table, &m.row_id])?;
            continue;
        }
        let Some(spec) = find(specs, &m.table) else { continue };
        for (table, column) in CONTENDED {
            if m.table != table {
                continue;
            }
            let (Some(v), Some(i)) = (m.payload.get(column), spec.index_of(column)) else { continue };
            let value = json_to_value(v, spec.columns[i].1, column)?;
            tx.execute(
                "INSERT OR REPLACE INTO sync_base (table_name, row_id, column_name, value) VALUES (?, ?, ?, ?)",
                params![m.table, m.row_id, column, value],
            )?;
        }
    }
    Ok(())
}

fn apply_outcome_row(applier: &mut Applier<'_>, specs: &[TableSpec], row: &OutcomeRow) -> Result<()> {
    let Some(table) = specs.iter().position(|s| s.name == row.table) else {
        return Err(SyncError::Protocol(format!("the server answered about table {:?}", row.table)));
    };
    let values = match &row.row {
        None => None,
        Some(map) => Some(row_from_json(&specs[table], map)?),
    };
    applier.apply(table, &row.row_id, values.as_deref())
}

#[cfg(test)]
mod tests {
    use super::super::tests::replica;
    use super::super::{dismiss_rejection, rejections};
    use super::*;
    use crate::store::{Replica, text};

    #[test]
    fn batches_are_whole_transactions_with_starting_values_of_contended_fields() {
        let (_dir, path) = replica();
        let mut r = Replica::open(&path).unwrap();
        r.write(|w| w.update("deals", "d1", &[("stage_id", text("s2")), ("title", text("y"))])).unwrap();
        r.write(|w| w.update("deals", "d1", &[("stage_id", text("s3"))])).unwrap();
        let mut local = Local::open(&path).unwrap();
        let txs = local.pending_batch(100).unwrap();
        assert_eq!(txs.len(), 3);
        assert_eq!(txs[0].mutations.len(), 5, "the first transaction is whole");
        // The second starts from the stage the deal had; the third from the second's.
        assert_eq!(txs[1].mutations[0].base.get("stage_id"), Some(&serde_json::json!("s1")));
        assert_eq!(txs[2].mutations[0].base.get("stage_id"), Some(&serde_json::json!("s2")));
        assert!(txs[1].mutations[0].base.get("title").is_none());
        // A limit inside the first transaction still gives it whole.
        let txs = local.pending_batch(2).unwrap();
        assert_eq!(txs.len(), 1);
        assert_eq!(txs[0].mutations.len(), 5);
        // A limit inside the second gives only the first.
        let txs = local.pending_batch(6).unwrap();
        assert_eq!(txs.len(), 2);
    }

    #[test]
    fn acknowledged_rejection_is_recorded_and_the_row_goes_back_to_the_server_state() {
        let (_dir, path) = replica();
        let mut local = Local::open(&path).unwrap();
        let txs = local.pending_batch(100).unwrap();
        let outcome = Outcome {
            status: "rejected".into(),
            error: Some("duplicate key".into()),
            detail: Some("Key (x)".into()),
            code: Some("23505".into()),
            conflicts: vec![],
            rows: txs[0]
                .mutations
                .iter()
                .map(|m| OutcomeRow { table: m.table.clone(), row_id: m.row_id.clone(), row: None })
                .collect(),
        };
        let summary = local.ack(&[(txs[0].clone(), outcome.clone())]).unwrap();
        assert_eq!(summary.rejected, 1);
        assert_eq!(local.pending_count().unwrap(), 0);
        let deals: i64 = local.conn().query_row("SELECT count(*) FROM deals", [], |r| r.get(0)).unwrap();
        assert_eq!(deals, 0, "a row the server never had is taken back");
        let list = rejections(local.conn()).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].code, "23505");
        assert_eq!(list[0].changes.as_array().unwrap().len(), 5);
        // The same answer again (another engine took it first) changes nothing.
        let again = local.ack(&[(txs[0].clone(), outcome)]).unwrap();
        assert_eq!(again, AckSummary::default());
        assert!(dismiss_rejection(local.conn(), list[0].id).unwrap());
        assert_eq!(local.rejection_count().unwrap(), 0);
    }
}
