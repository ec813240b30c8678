//! The `clinicdesk` command: the window by default, and the subcommands of
//! README.md ("Command line") for headless use, scripts and tests.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use clinicdesk::app::handover::{self, Claim, Request};
use clinicdesk::app::{ClinicApp, Message, Startup};
use clinicdesk::demo::{self, DemoOptions};
use clinicdesk::i18n::{I18n, Language};
use clinicdesk::settings::{LocalSettings, Profile};
use clinicdesk::store::{Replica, queries};

#[derive(Parser)]
#[command(name = "clinicdesk", version, about = "Softphone and CRM for the operators of medical clinics")]
struct Cli {
    /// Profile directory holding all state of this workstation
    /// (default: the platform's data directory).
    #[arg(long, global = true, env = "CLINICDESK_PROFILE")]
    profile: Option<PathBuf>,

    /// Call a number or a tel:, sip: or callto: link: in the window of this
    /// profile that is already open, else in a new one once its phone is
    /// ready. Without a value: open the window, or bring the open one to the front.
    #[arg(long, value_name = "NUMBER_OR_URI", num_args = 0..=1, default_missing_value = "")]
    dial: Option<String>,

    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// The window on a demo profile with a generated clinic.
    Demo {
        /// Patients in the generated clinic (first start only).
        #[arg(long, default_value_t = 5_000)]
        patients: usize,
        /// Calls in the generated clinic (first start only).
        #[arg(long, default_value_t = 30_000)]
        calls: usize,
    },
    /// Generate a realistic replica file.
    DemoData {
        #[arg(long)]
        patients: usize,
        #[arg(long)]
        calls: usize,
        /// The file to create; it must not exist.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The moment the data is generated around (RFC 3339, default now):
        /// with the same seed and moment the file is the same.
        #[arg(long)]
        now: Option<chrono::DateTime<chrono::FixedOffset>>,
    },
    /// Keep a password in the OS keyring (read from standard input).
    Password {
        #[command(subcommand)]
        action: PasswordAction,
    },
    /// Open the profile and its replica (applying migrations) and report
    /// what it holds; exits non-zero with the reason when it cannot.
    Check,
    /// The softphone without a window: JSON events on stdout, commands on stdin.
    Phone(Box<clinicdesk::cli::phone::PhoneArgs>),
    /// The clinic's shared PostgreSQL database.
    Server {
        #[command(subcommand)]
        action: clinicdesk::sync::cli::ServerCmd,
    },
    /// The sync engine without a window.
    Sync(clinicdesk::sync::cli::SyncArgs),
    /// Import data from another system.
    Import {
        #[command(subcommand)]
        what: clinicdesk::sync::cli::ImportCmd,
    },
    /// A report over the profile's replica: inquiries, funnel, speed, calls,
    /// missed, operators or marketing.
    Report(clinicdesk::cli::report::ReportArgs),
}

#[derive(Subcommand)]
enum PasswordAction {
    /// Store the password given on standard input.
    Set {
        #[arg(long, value_enum)]
        kind: SecretKind,
        /// user@server (SIP) or user@host (database).
        #[arg(long)]
        account: String,
    },
    /// Exit 0 when the password on standard input is the stored one.
    Verify {
        #[arg(long, value_enum)]
        kind: SecretKind,
        #[arg(long)]
        account: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SecretKind {
    Sip,
    Database,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLINICDESK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let result = match cli.command {
        None => run_window(cli.profile.as_deref(), None, cli.dial.as_deref()),
        Some(Cmd::Demo { patients, calls }) => {
            run_window(cli.profile.as_deref(), Some((patients, calls)), cli.dial.as_deref())
        }
        Some(_) if cli.dial.is_some() => {
            Err(anyhow::anyhow!("{}", I18n::new(Language::from_system()).tr("dial-with-subcommand")))
        }
        Some(Cmd::DemoData { patients, calls, out, seed, now }) => {
            let now = now.map_or_else(clinicdesk::crm::now_millis, |t| t.timestamp_millis());
            demo_data(patients, calls, &out, seed, now)
        }
        Some(Cmd::Password { action }) => password(action),
        Some(Cmd::Check) => check(cli.profile.as_deref()),
        Some(Cmd::Phone(args)) => clinicdesk::cli::phone::run_phone(cli.profile.as_deref(), *args),
        Some(Cmd::Server { action }) => clinicdesk::sync::cli::run_server(action),
        Some(Cmd::Sync(args)) => clinicdesk::sync::cli::run_sync(cli.profile.as_deref(), args),
        Some(Cmd::Import { what }) => clinicdesk::sync::cli::run_import(cli.profile.as_deref(), what),
        Some(Cmd::Report(args)) => clinicdesk::cli::report::run_report(cli.profile.as_deref(), args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("clinicdesk: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Generates into `FILE.partial` and renames, so an interrupted run never
/// leaves a half-written replica under the real name.
fn generate_replica(out: &Path, opts: &DemoOptions) -> anyhow::Result<demo::DemoSummary> {
    if out.exists() {
        bail!("{} already exists; remove it or choose another --out (it was left untouched)", out.display());
    }
    let partial = out.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let mut replica = Replica::open(&partial)?;
    let summary = demo::generate(&mut replica, opts, &mut |phase| eprintln!("  {phase}…"))?;
    replica.conn().pragma_update(None, "wal_checkpoint", "TRUNCATE").context("checkpoint")?;
    drop(replica);
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", partial.display()));
    }
    std::fs::rename(&partial, out).with_context(|| format!("renaming {} to {}", partial.display(), out.display()))?;
    Ok(summary)
}

fn demo_data(patients: usize, calls: usize, out: &Path, seed: u64, now: i64) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let opts = DemoOptions { patients, calls, seed, now };
    let s = generate_replica(out, &opts)?;
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    println!(
        "{}: {} people, {} calls, {} inquiries, {} deals, {} tasks, {} visits in {:.1} s, {:.1} MiB",
        out.display(),
        s.people,
        s.calls,
        s.inquiries,
        s.deals,
        s.tasks,
        s.visits,
        started.elapsed().as_secs_f64(),
        size as f64 / (1024.0 * 1024.0)
    );
    Ok(ExitCode::SUCCESS)
}

fn password(action: PasswordAction) -> anyhow::Result<ExitCode> {
    use clinicdesk::settings::secrets::{self, Secret};
    let secret = |kind, account: String| match kind {
        SecretKind::Sip => Secret::Sip { account },
        SecretKind::Database => Secret::Database { account },
    };
    let mut input = String::new();
    std::io::stdin().read_line(&mut input).context("reading the password from standard input")?;
    let typed = input.trim_end_matches(['\n', '\r']);
    if typed.is_empty() {
        bail!("no password on standard input");
    }
    match action {
        PasswordAction::Set { kind, account } => {
            secrets::store(&secret(kind, account), typed)?;
            eprintln!("password saved to the keyring");
            Ok(ExitCode::SUCCESS)
        }
        PasswordAction::Verify { kind, account } => match secrets::load(&secret(kind, account))? {
            Some(stored) if stored == typed => Ok(ExitCode::SUCCESS),
            Some(_) => {
                eprintln!("the keyring holds a different password");
                Ok(ExitCode::FAILURE)
            }
            None => {
                eprintln!("the keyring holds no such password");
                Ok(ExitCode::FAILURE)
            }
        },
    }
}

fn check(profile: Option<&Path>) -> anyhow::Result<ExitCode> {
    let profile = Profile::resolve(profile, None)?;
    profile.ensure_writable()?;
    let settings = LocalSettings::load(&profile.settings_path())?;
    let replica = Replica::open(&profile.replica_path())?;
    println!("profile: {}", profile.dir().display());
    println!("user: {}", settings.user_login.as_deref().unwrap_or("-"));
    for (table, n) in queries::table_counts(replica.conn())? {
        println!("{table}: {n}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Gives `request` to the window of the profile if one is open: the exit
/// code then, else None (this process opens the window).
fn hand_over(
    profile: &Profile,
    request: &Request,
    i18n: &I18n,
    country: clinicdesk::crm::Country,
) -> anyhow::Result<Option<ExitCode>> {
    match handover::hand_over(profile.dir(), request) {
        Ok(None) => Ok(None),
        Ok(Some(Ok(()))) => {
            let key = if matches!(request, Request::Dial(_)) { "dial-handed-over" } else { "dial-shown" };
            let number = match request {
                Request::Dial(target) => target.shown(country),
                Request::Show => String::new(),
            };
            eprintln!("{}", Message::new(key).with("number", number).text(i18n));
            Ok(Some(ExitCode::SUCCESS))
        }
        Ok(Some(Err(reason))) => {
            eprintln!("clinicdesk: {}", Message::new("dial-window-refused").with("reason", reason).text(i18n));
            Ok(Some(ExitCode::FAILURE))
        }
        Err(e) => Err(anyhow::anyhow!("{}", Message::new("dial-socket-failed").with("detail", e).text(i18n))),
    }
}

/// Opens the window. With `demo`, on the demo profile, generating its
/// clinic (patients, calls) on first start. With `dial` (`--dial`), the
/// number goes to the window of the profile that is already open, if any;
/// else this window calls it once its phone is ready.
fn run_window(profile: Option<&Path>, demo: Option<(usize, usize)>, dial: Option<&str>) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let profile = Profile::resolve(profile, demo.map(|_| "demo"))?;
    let saved = LocalSettings::load(&profile.settings_path()).unwrap_or_default();
    let i18n = I18n::new(Language::from_setting(saved.language.as_deref()));
    let request = match dial.map(str::trim) {
        None => None,
        Some("") => Some(Request::Show),
        Some(input) => match handover::parse_dial(input) {
            Ok(target) => Some(Request::Dial(target)),
            Err(m) => {
                eprintln!("clinicdesk: {}", m.text(&i18n));
                return Ok(ExitCode::from(2));
            }
        },
    };
    if let Some(request) = &request
        && let Some(code) = hand_over(&profile, request, &i18n, saved.country)?
    {
        return Ok(code);
    }
    let mut problems: Vec<String> = Vec::new();

    let writable = profile.ensure_writable();
    if let Err(e) = &writable {
        problems.push(e.to_string());
    }
    let (mut settings, settings_problem) = match LocalSettings::load(&profile.settings_path()) {
        Ok(s) => (s, None),
        Err(e) => {
            problems.push(e.to_string());
            (LocalSettings::default(), Some(Message::from(&e)))
        }
    };
    if let Some((patients, calls)) = demo
        && writable.is_ok()
        && !profile.replica_path().exists()
    {
        eprintln!("Generating the demo clinic in {} …", profile.dir().display());
        let opts = DemoOptions { patients, calls, seed: 1, now: clinicdesk::crm::now_millis() };
        let summary = generate_replica(&profile.replica_path(), &opts)?;
        if settings.user_login.is_none() && settings_problem.is_none() {
            settings.user_login = Some(summary.operator_login);
            settings.save(&profile.settings_path())?;
        }
    }
    let replica = match writable {
        Err(e) => Err(Message::from(&e)),
        Ok(()) => Replica::open(&profile.replica_path()).map_err(|e| {
            problems.push(e.to_string());
            Message::from(&e)
        }),
    };
    let fatal = replica.is_err();
    for p in &problems {
        eprintln!("clinicdesk: {p}");
    }
    // The profile's socket: links clicked while this window is open come here.
    let language = Language::from_setting(settings.language.as_deref());
    let inbox = match replica.is_ok().then(|| handover::listen(profile.dir(), language)) {
        None => None,
        Some(Ok(Claim::Listening(inbox))) => Some(inbox),
        Some(Ok(Claim::Taken)) => {
            // Another window of this profile opened meanwhile: it takes the number.
            if let Some(request) = &request
                && let Some(code) = hand_over(&profile, request, &i18n, saved.country)?
            {
                return Ok(code);
            }
            tracing::info!("another window of this profile is open: it takes the numbers handed over");
            None
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "numbers cannot be handed to this window");
            None
        }
    };
    let frame_stats = std::env::var_os("CLINICDESK_FRAME_STATS").is_some();
    // The softphone runs beside the window's data: none when the replica cannot be opened.
    let mut phone = match &replica {
        Ok(_) => clinicdesk::softphone::run::start_phone(&settings, &profile.replica_path(), demo.is_some()),
        Err(_) => clinicdesk::softphone::run::PhoneRun::off(),
    };
    let startup = Startup {
        profile,
        settings,
        settings_problem,
        replica,
        started,
        frame_stats,
        phone: phone.link.take(),
        phone_mode: clinicdesk::app::calls::PhoneMode::of(&phone.status),
    };
    tracing::info!(elapsed_ms = started.elapsed().as_millis() as u64, "opening the window");

    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("ClinicDesk")
            .with_app_id("clinicdesk")
            .with_inner_size([1200.0, 760.0])
            .with_min_inner_size([800.0, 500.0]),
        ..Default::default()
    };
    let result = eframe::run_native(
        "ClinicDesk",
        options,
        Box::new(move |_cc| {
            let mut app = ClinicApp::new(startup);
            if let Some(inbox) = inbox {
                app.take_numbers(inbox);
            }
            if let Some(Request::Dial(target)) = request {
                app.dial_when_ready(target);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"));
    phone.stop();
    result?;
    Ok(if fatal { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
