//! The profile directory: all state of one workstation. Two profiles side by
//! side are two workstations.

use std::path::{Path, PathBuf};

/// The files of one workstation.
#[derive(Clone, Debug)]
pub struct Profile {
    dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("no profile directory: the system has no home directory; pass --profile DIR or set CLINICDESK_PROFILE")]
    NoHome,
    #[error("cannot use {path} as the profile directory: {source}. Choose a writable directory with --profile DIR.")]
    NotWritable { path: PathBuf, source: std::io::Error },
}

impl Profile {
    /// `explicit` from --profile / CLINICDESK_PROFILE, else the platform's
    /// data directory (with `sub`, e.g. "demo", below it).
    pub fn resolve(explicit: Option<&Path>, sub: Option<&str>) -> Result<Profile, ProfileError> {
        let dir = match explicit {
            Some(dir) => dir.to_owned(),
            None => {
                let dirs = directories::ProjectDirs::from("", "", "clinicdesk").ok_or(ProfileError::NoHome)?;
                let base = dirs.data_dir().to_owned();
                match sub {
                    Some(sub) => base.join(sub),
                    None => base,
                }
            }
        };
        Ok(Profile { dir })
    }

    /// Creates the directory if needed and proves it is writable, so a
    /// read-only profile is reported before anything else is tried.
    pub fn ensure_writable(&self) -> Result<(), ProfileError> {
        let err = |source| ProfileError::NotWritable { path: self.dir.clone(), source };
        std::fs::create_dir_all(&self.dir).map_err(err)?;
        let probe = self.dir.join(".clinicdesk-write-test");
        std::fs::write(&probe, b"").map_err(err)?;
        std::fs::remove_file(&probe).map_err(err)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn settings_path(&self) -> PathBuf {
        self.dir.join("settings.toml")
    }

    pub fn replica_path(&self) -> PathBuf {
        self.dir.join("replica.sqlite")
    }

    pub fn log_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }
}
