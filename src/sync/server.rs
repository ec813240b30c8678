//! The shared clinic database: its schema and the administrative actions on
//! it (`clinicdesk server init|load|prune`).
//!
//! The schema is versioned like the replica's: `MIGRATIONS[n]` takes a
//! database from version `n` to `n + 1`, each in its own transaction under
//! an advisory lock (two workstations running `server init` at once do not
//! trip over each other). A database from a newer ClinicDesk is refused
//! before anything is changed, and so is a database holding tables of
//! another program under our names.

use std::path::Path;
use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::ToSql;

use super::tables::{ColType, SYNCED_TABLES, TableSpec, quote_ident, quote_literal};
use super::{Result, SyncError};
use crate::store::Replica;

/// Server schema migrations, in order.
const MIGRATIONS: &[&str] = &[
    include_str!("server_v1.sql"),
    include_str!("server_v2.sql"),
    include_str!("server_v3.sql"),
    include_str!("server_v4.sql"),
];

/// The server schema version this build creates and syncs with.
pub const SERVER_SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Serialises `server init` runs (the bytes of "CDSKINIT").
const INIT_LOCK: i64 = 0x4344_534B_494E_4954;

/// Tables of ours besides the synced ones: a database holding any of them
/// without our meta table belongs to someone else.
const OWN_TABLES: [&str; 6] =
    ["clinicdesk_meta", "sync_tables", "sync_contended", "sync_changes", "sync_client_txs", "clinicdesk_audit_log"];

/// What `init` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InitReport {
    pub from: i64,
    pub to: i64,
}

/// Creates the schema in an empty database or upgrades an older one.
pub async fn init(client: &mut Client, target: &str) -> Result<InitReport> {
    init_to(client, target, SERVER_SCHEMA_VERSION).await
}

/// [`init`] up to schema version `to` only (a database as an older
/// ClinicDesk left it: how the upgrade tests make one). A database at `to`
/// or beyond is left as it is.
#[doc(hidden)]
pub async fn init_to(client: &mut Client, target: &str, to: i64) -> Result<InitReport> {
    let to = to.min(SERVER_SCHEMA_VERSION);
    let mut from = None;
    loop {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&INIT_LOCK]).await?;
        let version = match schema_version(&tx).await? {
            Some(v) => v,
            None => {
                let mut ours: Vec<&str> = SYNCED_TABLES.to_vec();
                ours.extend(OWN_TABLES);
                let clash: Vec<String> = tx
                    .query(
                        "SELECT table_name::text FROM information_schema.tables
                         WHERE table_schema = current_schema() AND table_name = ANY($1) ORDER BY 1",
                        &[&ours],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                if !clash.is_empty() {
                    return Err(SyncError::ForeignDatabase { target: target.to_owned(), tables: clash.join(", ") });
                }
                tx.batch_execute(
                    "CREATE TABLE clinicdesk_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                     INSERT INTO clinicdesk_meta (key, value) VALUES ('schema_version', '0');",
                )
                .await?;
                0
            }
        };
        let from = *from.get_or_insert(version);
        if version > SERVER_SCHEMA_VERSION {
            return Err(SyncError::ServerFromTheFuture { found: version, supported: SERVER_SCHEMA_VERSION });
        }
        if version >= to {
            tx.commit().await?;
            return Ok(InitReport { from, to: version });
        }
        tx.batch_execute(MIGRATIONS[version as usize]).await?;
        tx.execute("UPDATE clinicdesk_meta SET value = $1 WHERE key = 'schema_version'", &[&(version + 1).to_string()])
            .await?;
        tx.commit().await?;
        tracing::info!(version = version + 1, "clinic database schema upgraded");
    }
}

/// The schema version, or `None` when the database has no ClinicDesk schema.
async fn schema_version(client: &impl tokio_postgres::GenericClient) -> Result<Option<i64>> {
    let exists: bool = client.query_one("SELECT to_regclass('clinicdesk_meta') IS NOT NULL", &[]).await?.get(0);
    if !exists {
        return Ok(None);
    }
    let text: Option<String> = client
        .query_opt("SELECT value FROM clinicdesk_meta WHERE key = 'schema_version'", &[])
        .await?
        .map(|r| r.get(0));
    let text = text.ok_or_else(|| SyncError::Protocol("clinicdesk_meta has no schema_version".into()))?;
    let v = text.parse().map_err(|_| SyncError::Protocol(format!("schema_version {text:?} is not a number")))?;
    Ok(Some(v))
}

/// What a workstation needs to know about the server before syncing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerInfo {
    pub database_id: String,
    pub epoch: String,
    pub last_prune: i64,
    pub retention: Duration,
}

/// Checks that the server has our schema, of our version, with every
/// column of the replica's synced tables, and reads its identity.
pub async fn check(client: &Client, target: &str, specs: &[TableSpec]) -> Result<ServerInfo> {
    let version =
        schema_version(client).await?.ok_or_else(|| SyncError::NotInitialised { target: target.to_owned() })?;
    if version > SERVER_SCHEMA_VERSION {
        return Err(SyncError::ServerFromTheFuture { found: version, supported: SERVER_SCHEMA_VERSION });
    }
    if version < SERVER_SCHEMA_VERSION {
        return Err(SyncError::ServerTooOld { found: version, supported: SERVER_SCHEMA_VERSION });
    }
    let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
    let columns = client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name = ANY($1)",
            &[&names],
        )
        .await?;
    for spec in specs {
        for (column, ty) in &spec.columns {
            let found = columns.iter().find(|r| r.get::<_, &str>(0) == spec.name && r.get::<_, &str>(1) == column);
            match found {
                None => {
                    return Err(SyncError::SchemaMismatch(format!("the server has no column {}.{column}", spec.name)));
                }
                Some(r) if r.get::<_, &str>(2) != ty.postgres_name() => {
                    return Err(SyncError::SchemaMismatch(format!(
                        "{}.{column} is {} on the server, {} here",
                        spec.name,
                        r.get::<_, &str>(2),
                        ty.postgres_name()
                    )));
                }
                Some(_) => {}
            }
        }
    }
    let meta = client.query("SELECT key, value FROM clinicdesk_meta", &[]).await?;
    let get = |key: &str| meta.iter().find(|r| r.get::<_, &str>(0) == key).map(|r| r.get::<_, String>(1));
    let database_id = get("database_id").ok_or_else(|| SyncError::Protocol("no database_id".into()))?;
    let epoch = get("epoch").unwrap_or_else(|| "1".into());
    let last_prune = get("last_prune").and_then(|v| v.parse().ok()).unwrap_or(0);
    let days: f64 = get("log_retention_days").and_then(|v| v.parse().ok()).unwrap_or(30.0);
    let retention = Duration::from_secs_f64((days.max(0.0) * 86_400.0).min(1e10));
    Ok(ServerInfo { database_id, epoch, last_prune, retention })
}

/// Forgets change-log entries older than `keep`; returns how many.
/// Workstations whose cursor is older resync from a snapshot.
pub async fn prune(client: &Client, keep: Duration) -> Result<i64> {
    let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
    let row = client.query_one("SELECT clinicdesk_prune($1)", &[&keep_ms]).await?;
    Ok(row.get(0))
}

/// What `load_replica` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadReport {
    pub rows: u64,
    pub tables: usize,
}

/// Copies every synced row of a replica into an empty clinic database in
/// one transaction (binary COPY): how a clinic moves from one workstation's
/// data to a shared server. The change log (and the audit trail) is skipped
/// and the epoch bumped, so every workstation takes a fresh snapshot. Only
/// a database administrator's (the schema owner's, a superuser's)
/// `clinicdesk.bulk_load` skips the log; anyone else's is ignored
/// (`server_v3.sql`).
pub async fn load_replica(client: &mut Client, replica: &Path) -> Result<LoadReport> {
    let replica = Replica::open_read_only(replica)?;
    let specs = super::tables::specs(replica.conn())?;
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL clinicdesk.bulk_load = 'on'").await?;
    let mut existing = 0i64;
    for spec in &specs {
        // Keeps workstations from writing while we check and load.
        tx.batch_execute(&format!("LOCK TABLE {} IN EXCLUSIVE MODE", quote_ident(spec.name))).await?;
        let n: i64 = tx.query_one(&format!("SELECT count(*) FROM {}", quote_ident(spec.name)), &[]).await?.get(0);
        existing += n;
    }
    if existing > 0 {
        return Err(SyncError::ServerNotEmpty { rows: existing });
    }
    let mut total = 0u64;
    for spec in &specs {
        let types: Vec<_> = spec.columns.iter().map(|(_, t)| t.postgres()).collect();
        let sql = format!("COPY {} ({}) FROM STDIN (FORMAT binary)", quote_ident(spec.name), spec.column_list());
        let sink = tx.copy_in(&sql).await?;
        let writer = BinaryCopyInWriter::new(sink, &types);
        futures_util::pin_mut!(writer);
        let mut stmt =
            replica.conn().prepare(&format!("SELECT {} FROM {}", spec.column_list(), quote_ident(spec.name)))?;
        let mut rows = stmt.query([])?;
        let n = spec.columns.len();
        let mut ints: Vec<Option<i64>> = vec![None; n];
        let mut texts: Vec<Option<String>> = vec![None; n];
        while let Some(row) = rows.next()? {
            for (i, (_, ty)) in spec.columns.iter().enumerate() {
                match ty {
                    ColType::Integer => ints[i] = row.get(i)?,
                    ColType::Text => texts[i] = row.get(i)?,
                }
            }
            let values: Vec<&(dyn ToSql + Sync)> = spec
                .columns
                .iter()
                .enumerate()
                .map(|(i, (_, ty))| match ty {
                    ColType::Integer => &ints[i] as &(dyn ToSql + Sync),
                    ColType::Text => &texts[i] as &(dyn ToSql + Sync),
                })
                .collect();
            writer.as_mut().write(&values).await?;
        }
        total += writer.as_mut().finish().await?;
    }
    tx.batch_execute("UPDATE clinicdesk_meta SET value = (value::bigint + 1)::text WHERE key = 'epoch'").await?;
    tx.commit().await?;
    Ok(LoadReport { rows: total, tables: specs.len() })
}

/// The group role every clinic login belongs to (it holds the table
/// privileges; the policies decide the rows).
pub const USER_GROUP: &str = "clinicdesk_user";

/// What `add_login` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginReport {
    /// The login existed and got a new password.
    pub updated: bool,
    /// The clinic user with this login: full name and role code, if any.
    pub user: Option<(String, String)>,
}

/// Whether `login` may name a clinic user's database login.
pub fn check_login_name(login: &str) -> Result<()> {
    let bad = |why: &str| Err(SyncError::BadLogin { login: login.to_owned(), why: why.to_owned() });
    if login.is_empty() || login.len() > 63 {
        return bad("it must be 1 to 63 bytes long");
    }
    if login.chars().any(|c| c.is_control()) {
        return bad("it holds control characters");
    }
    let lower = login.to_ascii_lowercase();
    if lower.starts_with("pg_") || lower.starts_with("clinicdesk_") || lower == "postgres" || lower == "public" {
        return bad("the name is reserved by PostgreSQL or ClinicDesk");
    }
    Ok(())
}

/// Creates the PostgreSQL login of a clinic user (named like their
/// `users.login`), or sets a new password of one made before, and puts it
/// in the group of the user's role. The password travels only as a SCRAM
/// verifier, so no server log can show it. A role that exists but is not a
/// ClinicDesk login (an administrator, another program's) is refused.
pub async fn add_login(client: &mut Client, login: &str, password: &str) -> Result<LoginReport> {
    check_login_name(login)?;
    if password.is_empty() {
        return Err(SyncError::BadLogin { login: login.to_owned(), why: "the password is empty".into() });
    }
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&INIT_LOCK]).await?;
    let existing = tx
        .query_opt(
            "SELECT r.rolsuper OR r.rolcreaterole OR r.rolbypassrls, pg_has_role(r.oid, $2::text, 'MEMBER')
             FROM pg_roles r WHERE r.rolname = $1",
            &[&login, &USER_GROUP],
        )
        .await?;
    let ident = quote_ident(login);
    let updated = match existing {
        Some(row) => {
            let (privileged, member): (bool, bool) = (row.get(0), row.get(1));
            if privileged || !member {
                return Err(SyncError::BadLogin {
                    login: login.to_owned(),
                    why: "a PostgreSQL role of that name exists and is not a ClinicDesk login; pick another login"
                        .into(),
                });
            }
            tx.batch_execute(&format!("ALTER ROLE {ident} LOGIN PASSWORD {}", quote_literal(&verifier))).await?;
            true
        }
        None => {
            tx.batch_execute(&format!(
                "CREATE ROLE {ident} LOGIN PASSWORD {} IN ROLE {}",
                quote_literal(&verifier),
                quote_ident(USER_GROUP)
            ))
            .await?;
            false
        }
    };
    let user = tx
        .query_opt(
            "SELECT u.full_name, r.code FROM users u JOIN roles r ON r.id = u.role_id
             WHERE u.login = $1 AND u.deleted_at IS NULL",
            &[&login],
        )
        .await?
        .map(|r| (r.get::<_, String>(0), r.get::<_, String>(1)));
    // The group of the role: an overview for the administrator (the rights
    // themselves come from the clinic's tables).
    for code in crate::crm::RoleCode::ALL.iter().map(|r| r.code()) {
        let group = quote_ident(&format!("clinicdesk_{code}"));
        if user.as_ref().is_some_and(|(_, c)| c == code) {
            tx.batch_execute(&format!("GRANT {group} TO {ident}")).await?;
        } else {
            tx.batch_execute(&format!("REVOKE {group} FROM {ident}")).await?;
        }
    }
    tx.commit().await?;
    Ok(LoginReport { updated, user })
}
