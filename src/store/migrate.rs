//! Schema versions of the replica. `schema.sql` is always the whole current
//! schema: a new replica is created from it. An existing replica of an older
//! version is brought up to date by the upgrades in `upgrades/`, applied in
//! order in one transaction; a test proves both paths give the same schema.
//! A file is identified by SQLite's `application_id` before anything writes
//! to it.

use std::path::Path;

use rusqlite::Connection;

use super::{Result, StoreError};

/// "CDSK": marks a file as a ClinicDesk replica.
pub const APPLICATION_ID: i64 = 0x4344_534B;

/// The current schema, for new replicas.
const SCHEMA: &str = include_str!("../../schema.sql");

/// Upgrades in order: entry `n` takes a replica from version `n + 1` to
/// `n + 2`. Each change to schema.sql adds its upgrade here.
const UPGRADES: &[&str] = &[
    include_str!("upgrades/0002_sync.sql"),
    include_str!("upgrades/0003_task_history.sql"),
    include_str!("upgrades/0004_call_rule_indexes.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 1 + UPGRADES.len() as i64;

fn pragma_int(conn: &Connection, path: &Path, name: &str) -> Result<i64> {
    conn.pragma_query_value(None, name, |row| row.get(0)).map_err(|e| StoreError::about(path, e))
}

pub(super) fn user_version(conn: &Connection, path: &Path) -> Result<i64> {
    pragma_int(conn, path, "user_version")
}

/// Refuses files of other programs and of newer ClinicDesk versions.
pub(super) fn check_identity(conn: &Connection, path: &Path) -> Result<()> {
    let app_id = pragma_int(conn, path, "application_id")?;
    // Reading the schema also catches a damaged first page.
    let objects: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(|e| StoreError::about(path, e))?;
    if app_id != APPLICATION_ID && (app_id != 0 || objects > 0) {
        return Err(StoreError::NotClinicDesk { path: path.to_owned() });
    }
    let found = user_version(conn, path)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::FromTheFuture { path: path.to_owned(), found, supported: SCHEMA_VERSION });
    }
    Ok(())
}

/// Applies every pending migration in one transaction.
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let current = user_version(conn, path)?;
    if current == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .map_err(|e| StoreError::about(path, e))?;
    if current == 0 {
        tx.execute_batch(SCHEMA).map_err(|e| StoreError::about(path, e))?;
        tracing::info!(version = SCHEMA_VERSION, "replica created");
    } else {
        for (i, sql) in UPGRADES.iter().enumerate().skip(current as usize - 1) {
            tx.execute_batch(sql).map_err(|e| StoreError::about(path, e))?;
            tracing::info!(version = i + 2, "replica upgraded");
        }
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.commit().map_err(|e| StoreError::about(path, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema of a database, normalised for comparison.
    fn schema_of(conn: &Connection) -> Vec<(String, String)> {
        let mut stmt = conn
            .prepare("SELECT name, coalesce(sql, '') FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, String>(1)?.split_whitespace().collect::<Vec<_>>().join(" "))))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    }

    #[test]
    fn upgrading_the_first_version_gives_the_current_schema() {
        let dir = tempfile::tempdir().unwrap();
        let fresh_path = dir.path().join("fresh.sqlite");
        let mut fresh = Connection::open(&fresh_path).unwrap();
        migrate(&mut fresh, &fresh_path).unwrap();

        let old_path = dir.path().join("old.sqlite");
        let mut old = Connection::open(&old_path).unwrap();
        old.execute_batch(include_str!("upgrades/v1.sql")).unwrap();
        old.pragma_update(None, "user_version", 1).unwrap();
        old.pragma_update(None, "application_id", APPLICATION_ID).unwrap();
        migrate(&mut old, &old_path).unwrap();

        assert_eq!(user_version(&old, &old_path).unwrap(), SCHEMA_VERSION);
        assert_eq!(schema_of(&old), schema_of(&fresh));
    }
}
