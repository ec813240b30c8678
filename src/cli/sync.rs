//! `clinicdesk sync [--once]`: the sync engine without a window. Errors
//! become anyhow messages here; URLs are only ever shown without their
//! password (and clap never shows the environment's value).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use crate::settings::Profile;
use crate::sync::{SyncConfig, SyncStatus, connect};

#[derive(Args)]
pub struct SyncArgs {
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=require]. Without a
    /// password in it, the keyring's (`clinicdesk password set --kind database`) is used.
    #[arg(long, env = "CLINICDESK_DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
    /// Sync once (upload everything, download until caught up) and exit.
    #[arg(long)]
    pub once: bool,
}

pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

pub fn run_sync(profile: Option<&Path>, args: SyncArgs) -> anyhow::Result<ExitCode> {
    let profile = Profile::resolve(profile, None)?;
    profile.ensure_writable()?;
    let path = profile.replica_path();
    let config = SyncConfig::new(args.database_url);
    // Refuse a bad URL before anything else.
    let target = connect::parse_url(&config.database_url)?;
    if target.unencrypted_remote() {
        eprintln!(
            "warning: {} is another machine and the URL says sslmode=disable: patients' data crosses the network \
             unencrypted; use sslmode=require or verify-full",
            target.display()
        );
    }
    if args.once {
        let r = crate::sync::sync_once(&path, &config)?;
        if let Some(id) = &r.new_client_id {
            println!(
                "this replica is a copy of another workstation's or was restored from a backup: \
                 it has a new client id {id} and uploaded its pending changes under it"
            );
        }
        println!(
            "{}: uploaded {} changes in {} transactions ({} conflicts, {} rejected); downloaded {} rows{}; {} pending",
            target.display(),
            r.uploaded_changes,
            r.uploaded_transactions,
            r.conflicts,
            r.rejected,
            r.downloaded_rows,
            if r.snapshot { format!(" and a snapshot of {} rows", r.snapshot_rows) } else { String::new() },
            r.pending
        );
        return Ok(ExitCode::SUCCESS);
    }
    let rt = runtime()?;
    rt.block_on(async {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            let _ = stop.send(true);
        });
        let nudge = std::sync::Arc::new(tokio::sync::Notify::new());
        crate::sync::engine::run(&path, config, Box::new(print_status), stopped, nudge).await;
    });
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// One line on stderr per change of the status.
fn print_status(s: SyncStatus) {
    let last = s
        .last_sync
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map_or_else(|| "never".to_owned(), |t| t.with_timezone(&chrono::Local).format("%H:%M:%S").to_string());
    eprintln!(
        "sync: {}, {} pending, last sync {last}, {} conflicts, {} rejected{}",
        if s.online { "online" } else { "offline" },
        s.pending,
        s.conflicts,
        s.rejected,
        s.error.map(|e| format!(" ({e})")).unwrap_or_default()
    );
}
