//! Schema versions of the replica. `schema.sql` is version 1; each later
//! version appends a migration here. A file is identified by SQLite's
//! `application_id` before anything writes to it.

use std::path::Path;

use rusqlite::Connection;

use super::{Result, StoreError};

/// "CDSK": marks a file as a ClinicDesk replica.
pub const APPLICATION_ID: i64 = 0x4344_534B;

/// Migrations in order; entry `n` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[include_str!("../../schema.sql")];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

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
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql).map_err(|e| StoreError::about(path, e))?;
        tracing::info!(version = i + 1, "replica migrated");
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.commit().map_err(|e| StoreError::about(path, e))?;
    Ok(())
}
