//! The `clinicdesk` command: parses the command line and hands over to the
//! window or to a subcommand of `cli/` (README.md, "Command line").

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use clinicdesk::cli::{check, demo_data, import, password, report, server, sync, window};
use clinicdesk::i18n::{I18n, Language};

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
    Demo(window::DemoArgs),
    /// Generate a realistic replica file.
    DemoData(demo_data::DemoDataArgs),
    /// Keep a password in the OS keyring (read from standard input).
    Password {
        #[command(subcommand)]
        action: password::PasswordAction,
    },
    /// Open the profile and its replica (applying migrations) and report
    /// what it holds; exits non-zero with the reason when it cannot.
    Check,
    /// The softphone without a window: JSON events on stdout, commands on stdin.
    Phone(Box<clinicdesk::cli::phone::PhoneArgs>),
    /// The clinic's shared PostgreSQL database.
    Server {
        #[command(subcommand)]
        action: server::ServerCmd,
    },
    /// The sync engine without a window.
    Sync(sync::SyncArgs),
    /// Import data from another system.
    Import {
        #[command(subcommand)]
        what: import::ImportCmd,
    },
    /// A report over the profile's replica: inquiries, funnel, speed, calls,
    /// missed, operators or marketing.
    Report(report::ReportArgs),
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
        None => window::run_window(cli.profile.as_deref(), None, cli.dial.as_deref()),
        Some(Cmd::Demo(args)) => {
            window::run_window(cli.profile.as_deref(), Some((args.patients, args.calls)), cli.dial.as_deref())
        }
        Some(_) if cli.dial.is_some() => {
            Err(anyhow::anyhow!("{}", I18n::new(Language::from_system()).tr("dial-with-subcommand")))
        }
        Some(Cmd::DemoData(args)) => demo_data::run_demo_data(args),
        Some(Cmd::Password { action }) => password::run_password(action),
        Some(Cmd::Check) => check::run_check(cli.profile.as_deref()),
        Some(Cmd::Phone(args)) => clinicdesk::cli::phone::run_phone(cli.profile.as_deref(), *args),
        Some(Cmd::Server { action }) => server::run_server(action),
        Some(Cmd::Sync(args)) => sync::run_sync(cli.profile.as_deref(), args),
        Some(Cmd::Import { what }) => import::run_import(cli.profile.as_deref(), what),
        Some(Cmd::Report(args)) => report::run_report(cli.profile.as_deref(), args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("clinicdesk: {e:#}");
            ExitCode::FAILURE
        }
    }
}
