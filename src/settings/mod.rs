//! Where a workstation keeps its state (the profile directory) and its local
//! settings (settings.toml). Global settings of the clinic live in the
//! replica's `global_settings` table instead.

mod profile;
pub mod secrets;

pub use profile::{Profile, ProfileError};

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::crm::Country;

/// The settings of this workstation, as stored in `settings.toml`.
/// Unknown keys are refused, so a typo is reported instead of ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalSettings {
    /// "Enable IP telephony on this workstation".
    pub telephony_enabled: bool,
    /// "Show inquiry history during a call".
    pub show_history_during_call: bool,
    /// "Show task deadline notifications".
    pub deadline_notifications: bool,
    /// "Enable CRM call-center mode".
    pub call_center_mode: bool,
    /// UI language ("en", "ru", "uk"); none means the system's.
    pub language: Option<String>,
    /// Country whose national number forms operators type.
    pub country: Country,
    /// Login of the user who works at this workstation.
    pub user_login: Option<String>,
    /// How calls are declined while the operator is "with a client" or on a
    /// break.
    pub when_unavailable: UnavailableAnswer,
    /// The clinic's shared database (postgres://user@host/db); none keeps
    /// this workstation on its local replica alone. The password is not here:
    /// it is in the OS keyring (`user@host`).
    pub database_url: Option<String>,
    pub audio: AudioSettings,
    pub sip: SipAccount,
}

impl Default for LocalSettings {
    fn default() -> LocalSettings {
        LocalSettings {
            telephony_enabled: true,
            show_history_during_call: true,
            deadline_notifications: true,
            call_center_mode: false,
            language: None,
            country: Country::Ru,
            user_login: None,
            when_unavailable: UnavailableAnswer::Busy,
            database_url: None,
            audio: AudioSettings::default(),
            sip: SipAccount::default(),
        }
    }
}

/// How a workstation declines calls while its operator is busy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnavailableAnswer {
    /// "Busy here" (486): the caller hears busy, the PBX may try another.
    Busy,
    /// "Do not disturb" (480): the call is declined as unavailable.
    DoNotDisturb,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioSettings {
    /// Capture device name; none means the system default.
    pub input_device: Option<String>,
    /// Playback device name; none means the system default.
    pub output_device: Option<String>,
}

/// The SIP account. The password is not here: it lives in the OS keyring.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipAccount {
    /// Registrar / proxy, e.g. "pbx.clinic.local:5060".
    pub server: String,
    pub username: String,
    pub auth_username: String,
    pub display_name: String,
    pub transport: SipTransport,
    /// With TLS: a PEM file of the clinic's own certificate authority,
    /// trusted beside the system's roots (for a PBX with its own certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    /// An answered call that is not on hold is hung up when no RTP or RTCP
    /// has come for this many seconds (its BYE was lost); 0: never.
    pub media_timeout_secs: u64,
}

impl Default for SipAccount {
    fn default() -> SipAccount {
        SipAccount {
            server: String::new(),
            username: String::new(),
            auth_username: String::new(),
            display_name: String::new(),
            transport: SipTransport::Udp,
            ca_file: None,
            media_timeout_secs: 30,
        }
    }
}

impl SipAccount {
    /// `user@server` (trimmed): how the account is named in events and
    /// which keyring entry holds its password.
    pub fn label(&self) -> String {
        format!("{}@{}", self.username.trim(), self.server.trim())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SipTransport {
    Udp,
    Tcp,
    Tls,
}

/// Why settings.toml could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(
        "{path}: {message}Fix or delete the file; until then ClinicDesk uses the default settings and leaves the file as it is."
    )]
    Invalid { path: PathBuf, message: String },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot save {path}: {source}. Check the permissions of the profile directory.")]
    Write { path: PathBuf, source: std::io::Error },
}

impl LocalSettings {
    /// Reads settings.toml; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<LocalSettings, SettingsError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LocalSettings::default()),
            Err(source) => return Err(SettingsError::Read { path: path.to_owned(), source }),
        };
        toml::from_str(&text).map_err(|e| SettingsError::Invalid { path: path.to_owned(), message: e.to_string() })
    }

    /// Writes settings.toml atomically: a crash leaves the old or the new
    /// file, never half of one.
    pub fn save(&self, path: &Path) -> Result<(), SettingsError> {
        let write_err = |source| SettingsError::Write { path: path.to_owned(), source };
        let text = toml::to_string_pretty(self).map_err(|e| write_err(std::io::Error::other(e)))?;
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, text).map_err(write_err)?;
        std::fs::rename(&tmp, path).map_err(write_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_typo() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.toml");
        assert_eq!(LocalSettings::load(&path).unwrap(), LocalSettings::default());
        let mut s = LocalSettings { call_center_mode: true, language: Some("uk".into()), ..Default::default() };
        s.sip.username = "101".into();
        s.save(&path).unwrap();
        assert_eq!(LocalSettings::load(&path).unwrap(), s);

        std::fs::write(&path, "telephony_enabeld = true\n").unwrap();
        let err = LocalSettings::load(&path).unwrap_err().to_string();
        assert!(err.contains("unknown field `telephony_enabeld`"), "{err}");
        assert!(err.contains("line 1"), "{err}");
        // The bad file is left as it was.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "telephony_enabeld = true\n");
    }

    #[test]
    fn password_never_in_the_file() {
        let text = toml::to_string_pretty(&LocalSettings::default()).unwrap();
        assert!(!text.contains("password"));
    }
}
