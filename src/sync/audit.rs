//! The audit trail: who changed what and when, read from the server's audit
//! log (since schema version 3: the login of every change and its fields' old and
//! new values, and every upload the server refused, kept apart from the
//! change log for as long as the clinic head sets; entries of version 2 came
//! from its change log). Only the clinic head (the right `audit.view`) and
//! the database administrators may read it; the server refuses everyone
//! else, whatever their client does.
//!
//! Used by `clinicdesk server audit` and by the window ([`read`]).

use tokio_postgres::Client;

use super::connect::{self, Target};
use super::{Result, SyncError};
use crate::crm::Millis;

/// What to look for; `None` fields do not filter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// A login, or part of a user's full name.
    pub author: Option<String>,
    /// A synced table's name.
    pub table: Option<String>,
    /// A row id, or text anywhere in the changed values.
    pub search: Option<String>,
    /// From this moment (Unix ms, inclusive).
    pub since: Option<Millis>,
    /// Until this moment (Unix ms, exclusive).
    pub until: Option<Millis>,
    /// At most this many entries, newest first (0: the default, 500).
    pub limit: u32,
}

/// One field's change.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldChange {
    pub column: String,
    /// `Null` for an insert.
    pub old: serde_json::Value,
    pub new: serde_json::Value,
}

/// One entry of the change log.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    pub changed_at: Millis,
    /// The PostgreSQL login that made the change (None: before version 2).
    pub author: Option<String>,
    /// The clinic user of that login, and their name.
    pub user_id: Option<String>,
    pub full_name: Option<String>,
    pub table: String,
    pub row_id: String,
    /// insert, update or delete (a tombstone counts as a delete), or
    /// refused: an upload the server rejected, whose changes hold what it
    /// tried (`tried`: the kind of change) and why it was refused (`error`).
    pub op: Option<String>,
    /// In column order of the name; empty when the log does not have them.
    pub changes: Vec<FieldChange>,
}

impl AuditEntry {
    /// `column: old → new; ...` (values as JSON).
    pub fn describe_changes(&self) -> String {
        self.changes
            .iter()
            .map(|c| match c.old {
                serde_json::Value::Null if matches!(self.op.as_deref(), Some("insert" | "refused")) => {
                    format!("{}: {}", c.column, c.new)
                }
                _ => format!("{}: {} → {}", c.column, c.old, c.new),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn changes_from_json(value: Option<serde_json::Value>) -> Vec<FieldChange> {
    let Some(serde_json::Value::Object(map)) = value else { return Vec::new() };
    map.into_iter()
        .map(|(column, pair)| {
            let (old, new) = match pair {
                serde_json::Value::Array(mut v) if v.len() == 2 => {
                    let new = v.pop().unwrap_or_default();
                    let old = v.pop().unwrap_or_default();
                    (old, new)
                }
                other => (serde_json::Value::Null, other),
            };
            FieldChange { column, old, new }
        })
        .collect()
}

/// Reads the audit trail on an open connection.
pub async fn query(client: &Client, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
    let limit = if q.limit == 0 { 500 } else { i32::try_from(q.limit).unwrap_or(i32::MAX) };
    let rows = client
        .query(
            "SELECT changed_at, author, user_id, full_name, table_name, row_id, op, changes
             FROM clinicdesk_audit($1, $2, $3, $4, $5, $6)",
            &[&q.author, &q.table, &q.search, &q.since, &q.until, &limit],
        )
        .await
        .map_err(|e| match e.as_db_error() {
            Some(db) if db.code() == &tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE => SyncError::NotAllowed(
                format!("{}: ask the clinic head (only the right to read the audit trail lets you)", db.message()),
            ),
            _ => SyncError::from(e),
        })?;
    rows.into_iter()
        .map(|r| {
            Ok(AuditEntry {
                changed_at: r.try_get(0)?,
                author: r.try_get(1)?,
                user_id: r.try_get(2)?,
                full_name: r.try_get(3)?,
                table: r.try_get(4)?,
                row_id: r.try_get(5)?,
                op: r.try_get(6)?,
                changes: changes_from_json(r.try_get(7)?),
            })
        })
        .collect()
}

/// Connects (password from the URL or the keyring) and reads the audit
/// trail: for the window's audit screen, on a thread of its own (it waits
/// for the network).
pub fn read(database_url: &str, q: &AuditQuery) -> Result<Vec<AuditEntry>> {
    let target: Target = connect::parse_url(database_url)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| SyncError::Protocol(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let mut password = None;
        let conn = connect::connect_with_keyring(&target, &mut password).await?;
        query(&conn.client, q).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_read_from_the_log_and_described() {
        let json = serde_json::json!({"status": ["new", "closed"], "note": [null, "called back"]});
        let entry = AuditEntry {
            changed_at: 0,
            author: Some("operator".into()),
            user_id: None,
            full_name: None,
            table: "inquiries".into(),
            row_id: "x".into(),
            op: Some("update".into()),
            changes: changes_from_json(Some(json)),
        };
        assert_eq!(entry.describe_changes(), "note: null → \"called back\"; status: \"new\" → \"closed\"");
        let refused = AuditEntry {
            op: Some("refused".into()),
            changes: changes_from_json(Some(serde_json::json!({
                "error": [null, "new row violates row-level security policy for table \"deals\" [42501]"],
                "title": [null, "forged"],
                "tried": [null, "insert"]
            }))),
            ..entry
        };
        let said = refused.describe_changes();
        assert!(said.contains("error: \"new row violates") && said.contains("tried: \"insert\""), "{said}");
        assert!(!said.contains("null →"), "{said}");
        assert!(changes_from_json(None).is_empty());
        assert!(changes_from_json(Some(serde_json::json!([1, 2]))).is_empty());
    }
}
