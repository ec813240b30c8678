//! `clinicdesk check`: open the profile and its replica (applying
//! migrations) and report what it holds; the reason when it cannot.

use std::path::Path;
use std::process::ExitCode;

use crate::settings::{LocalSettings, Profile};
use crate::store::{Replica, queries};

pub fn run_check(profile: Option<&Path>) -> anyhow::Result<ExitCode> {
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
