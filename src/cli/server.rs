//! `clinicdesk server init|load|prune|user|audit`: the clinic's shared
//! PostgreSQL database, for its administrators. Errors become anyhow
//! messages here; URLs are only ever shown without their password (and clap
//! never shows the environment's value).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::sync::runtime;
use crate::sync::connect::{self, Target};
use crate::sync::{audit, server};

#[derive(Subcommand)]
pub enum ServerCmd {
    /// Create the shared schema in an empty database, or upgrade it.
    Init {
        /// postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=require]
        #[arg(long, env = "CLINICDESK_DATABASE_URL", hide_env_values = true)]
        database_url: String,
    },
    /// Copy every synced row of a replica into an empty clinic database
    /// (moving a clinic from one workstation to a shared server).
    Load {
        #[arg(long, env = "CLINICDESK_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// The replica file to load (e.g. a profile's replica.sqlite).
        #[arg(long)]
        replica: PathBuf,
    },
    /// Forget change-log entries older than the retention; workstations
    /// further behind take a fresh snapshot.
    Prune {
        #[arg(long, env = "CLINICDESK_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// Keep this many hours of log (default: the database's
        /// log_retention_days).
        #[arg(long)]
        keep_hours: Option<f64>,
    },
    /// Database logins of the clinic's users.
    User {
        #[command(subcommand)]
        action: UserCmd,
    },
    /// Who changed what and when (the server's change log): for the clinic
    /// head and the database administrators.
    Audit {
        #[arg(long, env = "CLINICDESK_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// Changes by this login (or a user whose full name contains it).
        #[arg(long)]
        user: Option<String>,
        /// Changes of this table (e.g. inquiries, deals, user_rights).
        #[arg(long)]
        table: Option<String>,
        /// A row id, or text anywhere in the changed values.
        #[arg(long)]
        search: Option<String>,
        /// From this moment: RFC 3339 (2025-03-01T09:00:00+03:00) or a local date (2025-03-01).
        #[arg(long)]
        since: Option<String>,
        /// Until this moment (exclusive), written like --since.
        #[arg(long)]
        until: Option<String>,
        /// At most this many entries, newest first.
        #[arg(long, default_value_t = 500)]
        limit: u32,
    },
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Create the PostgreSQL login of a clinic user (named like their ClinicDesk login), or give it a new
    /// password; the password is read from stdin (one line). What the login may see and change follows the
    /// user's rights in the clinic's tables.
    Add {
        /// An administrator's URL (a role that may create roles).
        #[arg(long, env = "CLINICDESK_DATABASE_URL", hide_env_values = true)]
        database_url: String,
        /// The user's ClinicDesk login (users.login).
        #[arg(long)]
        login: String,
    },
}

async fn open(target: &Target) -> anyhow::Result<connect::Connection> {
    let mut password = None;
    Ok(connect::connect_with_keyring(target, &mut password).await?)
}

pub fn run_server(action: ServerCmd) -> anyhow::Result<ExitCode> {
    let rt = runtime()?;
    match action {
        ServerCmd::Init { database_url } => {
            let target = connect::parse_url(&database_url)?;
            let report = rt.block_on(async {
                let mut conn = open(&target).await?;
                let client = conn.client_mut().context("the connection is busy")?;
                anyhow::Ok(server::init(client, target.display()).await?)
            })?;
            if report.from == report.to {
                println!("{}: schema version {} is current", target.display(), report.to);
            } else if report.from == 0 {
                println!("{}: created the clinic schema (version {})", target.display(), report.to);
            } else {
                println!("{}: upgraded the schema from version {} to {}", target.display(), report.from, report.to);
            }
        }
        ServerCmd::Load { database_url, replica } => {
            let target = connect::parse_url(&database_url)?;
            let started = std::time::Instant::now();
            let report = rt.block_on(async {
                let mut conn = open(&target).await?;
                server::check(&conn.client, target.display(), &[]).await?;
                let client = conn.client_mut().context("the connection is busy")?;
                anyhow::Ok(server::load_replica(client, &replica).await?)
            })?;
            println!(
                "{}: loaded {} rows of {} tables from {} in {:.1} s",
                target.display(),
                report.rows,
                report.tables,
                replica.display(),
                started.elapsed().as_secs_f64()
            );
        }
        ServerCmd::Prune { database_url, keep_hours } => {
            let target = connect::parse_url(&database_url)?;
            let n = rt.block_on(async {
                let conn = open(&target).await?;
                let info = server::check(&conn.client, target.display(), &[]).await?;
                let keep = match keep_hours {
                    Some(h) if h.is_finite() && h >= 0.0 => std::time::Duration::from_secs_f64(h * 3600.0),
                    Some(h) => anyhow::bail!("--keep-hours {h} is not a number of hours"),
                    None => info.retention,
                };
                anyhow::Ok(server::prune(&conn.client, keep).await?)
            })?;
            println!("{}: forgot {n} change-log entries", target.display());
        }
        ServerCmd::User { action: UserCmd::Add { database_url, login } } => {
            let target = connect::parse_url(&database_url)?;
            server::check_login_name(&login)?;
            let password = read_password_line()?;
            let report = rt.block_on(async {
                let mut conn = open(&target).await?;
                server::check(&conn.client, target.display(), &[]).await?;
                let client = conn.client_mut().context("the connection is busy")?;
                anyhow::Ok(server::add_login(client, &login, &password).await?)
            })?;
            let done = if report.updated { "has a new password" } else { "was created" };
            match report.user {
                Some((name, role)) => {
                    println!("{}: the login {login} ({name}, {role}) {done}", target.display());
                }
                None => {
                    println!("{}: the login {login} {done}", target.display());
                    eprintln!(
                        "warning: no ClinicDesk user has the login {login:?} yet, so it sees nothing; add the user \
                         (with this login) in the clinic's data"
                    );
                }
            }
        }
        ServerCmd::Audit { database_url, user, table, search, since, until, limit } => {
            let target = connect::parse_url(&database_url)?;
            let query = audit::AuditQuery {
                author: user,
                table,
                search,
                since: since.as_deref().map(|t| parse_moment("--since", t)).transpose()?,
                until: until.as_deref().map(|t| parse_moment("--until", t)).transpose()?,
                limit,
            };
            let entries = rt.block_on(async {
                let conn = open(&target).await?;
                server::check(&conn.client, target.display(), &[]).await?;
                anyhow::Ok(audit::query(&conn.client, &query).await?)
            })?;
            for e in &entries {
                let at = chrono::DateTime::from_timestamp_millis(e.changed_at).map_or_else(
                    || e.changed_at.to_string(),
                    |t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S").to_string(),
                );
                let who = match (&e.author, &e.full_name) {
                    (Some(a), Some(n)) => format!("{a} ({n})"),
                    (Some(a), None) => a.clone(),
                    (None, _) => "?".to_owned(),
                };
                println!(
                    "{at}\t{who}\t{}\t{}\t{}\t{}",
                    e.op.as_deref().unwrap_or("?"),
                    e.table,
                    e.row_id,
                    e.describe_changes()
                );
            }
            eprintln!("{}: {} entries", target.display(), entries.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of stdin, without its line end: a password (never echoed or
/// logged).
fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        anyhow::bail!(
            "no password on stdin: pipe it in, e.g. `printf '%s\\n' \"$PW\" | clinicdesk server user add ...`"
        );
    }
    Ok(password)
}

/// RFC 3339, or a date (local midnight), as Unix ms.
fn parse_moment(option: &str, text: &str) -> anyhow::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0).and_then(|t| t.and_local_timezone(chrono::Local).earliest())
    {
        return Ok(t.timestamp_millis());
    }
    anyhow::bail!("{option} {text:?} is not a moment: write 2025-03-01 or 2025-03-01T09:00:00+03:00")
}
