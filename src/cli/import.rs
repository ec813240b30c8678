//! `clinicdesk import patients FILE.csv`: people from another system's
//! export into the profile's replica; refused rows are listed by line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use crate::settings::{LocalSettings, Profile};
use crate::store::Replica;

#[derive(Subcommand)]
pub enum ImportCmd {
    /// People from a CSV file: external_id, last_name, first_name,
    /// middle_name, birth_date, sex, phones, email, note.
    Patients {
        /// The CSV file (header row; `,` or `;`; UTF-8).
        file: PathBuf,
    },
}

pub fn run_import(profile: Option<&Path>, what: ImportCmd) -> anyhow::Result<ExitCode> {
    let ImportCmd::Patients { file } = what;
    let profile = Profile::resolve(profile, None)?;
    profile.ensure_writable()?;
    let settings = LocalSettings::load(&profile.settings_path())?;
    let mut replica = Replica::open(&profile.replica_path())?;
    let report = crate::store::import::import_patients(&mut replica, &file, settings.country)?;
    for bad in &report.bad {
        eprintln!("{}:{}: {}", file.display(), bad.line, bad.reason);
    }
    println!(
        "{}: {} new, {} updated, {} unchanged, {} rows refused",
        file.display(),
        report.created,
        report.updated,
        report.unchanged,
        report.bad.len()
    );
    // 2: imported, but some rows were refused (listed above).
    Ok(if report.bad.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(2) })
}
