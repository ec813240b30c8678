//! Passwords (SIP account, clinic database) in the OS keyring (Secret
//! Service on Linux), never in settings.toml or a log. Every call here may
//! wait on D-Bus: call it from a service thread, never from the UI thread.

/// Which secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Secret {
    /// The SIP account's password, by `user@server`.
    Sip { account: String },
    /// The clinic database's password, by `user@host`.
    Database { account: String },
}

impl Secret {
    fn entry(&self) -> Result<keyring::Entry, SecretError> {
        let (service, account) = match self {
            Secret::Sip { account } => ("clinicdesk-sip", account),
            Secret::Database { account } => ("clinicdesk-database", account),
        };
        keyring::Entry::new(service, account).map_err(SecretError::from_keyring)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "no keyring is available to keep passwords (no Secret Service answered on D-Bus). \
         Start or unlock your desktop keyring (e.g. gnome-keyring) and try again."
    )]
    NoKeyring,
    #[error("the keyring refused: {0}")]
    Keyring(String),
}

impl SecretError {
    fn from_keyring(e: keyring::Error) -> SecretError {
        match e {
            keyring::Error::NoStorageAccess(_) | keyring::Error::PlatformFailure(_) => SecretError::NoKeyring,
            other => SecretError::Keyring(other.to_string()),
        }
    }
}

pub fn store(secret: &Secret, password: &str) -> Result<(), SecretError> {
    secret.entry()?.set_password(password).map_err(SecretError::from_keyring)
}

/// The SIP password of `account` (`user@server`): `CLINICDESK_SIP_PASSWORD`
/// when set, else the keyring's; `Ok(None)` when neither has one.
pub fn sip_password(account: &str) -> Result<Option<String>, SecretError> {
    if let Ok(p) = std::env::var("CLINICDESK_SIP_PASSWORD")
        && !p.is_empty()
    {
        return Ok(Some(p));
    }
    load(&Secret::Sip { account: account.to_owned() })
}

/// `Ok(None)` when the keyring works but holds no such password.
pub fn load(secret: &Secret) -> Result<Option<String>, SecretError> {
    match secret.entry()?.get_password() {
        Ok(p) => Ok(Some(p)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(e) => Err(SecretError::from_keyring(e)),
    }
}
