//! `clinicdesk password set|verify`: a password in the OS keyring, read
//! from standard input so it never shows in the process list or history.

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum PasswordAction {
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
pub enum SecretKind {
    Sip,
    Database,
}

pub fn run_password(action: PasswordAction) -> anyhow::Result<ExitCode> {
    use crate::settings::secrets::{self, Secret};
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
