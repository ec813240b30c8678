//! The workstation's phone as its settings describe it: the account of
//! `[sip]` (its password from the keyring or `CLINICDESK_SIP_PASSWORD`), the
//! sound cards of `[audio]`, numbers read as in `country`. Both faces start
//! the user agent from [`ua_config`]; nothing else checks `[sip]`.

use crate::settings::{LocalSettings, SipTransport, secrets};
use crate::sip::transport::Transport;
use crate::sip::ua::{AccountConfig, AudioChoice, UaConfig, UaError};

/// What a phone whose settings name no SIP server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithoutServer {
    /// It does not start ([`SetupError::NoServer`]).
    Refuse,
    /// It registers nowhere and takes calls straight to its own address
    /// (`clinicdesk phone --listen`, the demo clinic's phone).
    Direct,
}

/// Why this workstation's phone cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("IP telephony is disabled on this workstation (telephony_enabled = false in settings.toml)")]
    TelephonyOff,
    #[error("no SIP server: set [sip] server in settings.toml")]
    NoServer,
    #[error("no SIP user: set [sip] username in settings.toml or pass --user")]
    NoUser,
    #[error(
        "no SIP password for {account}: keep it with `clinicdesk password set --kind sip --account {account}` \
         or set CLINICDESK_SIP_PASSWORD"
    )]
    NoPassword { account: String },
    #[error(
        "no SIP password for {account}: the keyring cannot be read ({reason}); set CLINICDESK_SIP_PASSWORD, or keep \
         it with `clinicdesk password set --kind sip --account {account}`"
    )]
    Keyring { account: String, reason: String },
    #[error(
        "[sip] media_timeout_secs = {secs} cannot be used: give 0 (never hang up a silent call) or {min} to {max} \
         seconds (30 unless a PBX needs otherwise)"
    )]
    MediaTimeout { secs: u64, min: u64, max: u64 },
    #[error(transparent)]
    Ua(#[from] UaError),
}

/// The shortest media timeout taken: below it a peer that sends RTCP alone
/// during silence (voice activity detection) would be hung up on.
pub const MEDIA_TIMEOUT_MIN_SECS: u64 = 2;
/// The longest: an hour.
pub const MEDIA_TIMEOUT_MAX_SECS: u64 = 3600;

/// The media timeout of `[sip] media_timeout_secs`: `None` for 0 (off).
pub fn media_timeout(secs: u64) -> Result<Option<std::time::Duration>, SetupError> {
    match secs {
        0 => Ok(None),
        MEDIA_TIMEOUT_MIN_SECS..=MEDIA_TIMEOUT_MAX_SECS => Ok(Some(std::time::Duration::from_secs(secs))),
        _ => Err(SetupError::MediaTimeout { secs, min: MEDIA_TIMEOUT_MIN_SECS, max: MEDIA_TIMEOUT_MAX_SECS }),
    }
}

/// The SIP transport of `[sip] transport`.
pub fn transport(t: SipTransport) -> Transport {
    match t {
        SipTransport::Udp => Transport::Udp,
        SipTransport::Tcp => Transport::Tcp,
        SipTransport::Tls => Transport::Tls,
    }
}

/// The user agent's configuration from `settings`, the password read from
/// the keyring (or `CLINICDESK_SIP_PASSWORD`) only once the account is whole.
pub fn ua_config(settings: &LocalSettings, without_server: WithoutServer) -> Result<UaConfig, SetupError> {
    ua_config_with(settings, without_server, |account| secrets::sip_password(account).map_err(|e| e.to_string()))
}

/// [`ua_config`] with the password from `password` (given the account's
/// label, `user@server`): `Ok(None)` when there is none, `Err` why it cannot
/// be read.
pub fn ua_config_with(
    settings: &LocalSettings,
    without_server: WithoutServer,
    password: impl FnOnce(&str) -> Result<Option<String>, String>,
) -> Result<UaConfig, SetupError> {
    if !settings.telephony_enabled {
        return Err(SetupError::TelephonyOff);
    }
    let sip = &settings.sip;
    let mut config = UaConfig {
        media_timeout: media_timeout(sip.media_timeout_secs)?,
        transport: transport(sip.transport),
        tls_ca: sip.ca_file.clone(),
        country: settings.country,
        audio: AudioChoice::Devices {
            input: settings.audio.input_device.clone(),
            output: settings.audio.output_device.clone(),
        },
        local_user: settings.user_login.clone().filter(|u| !u.trim().is_empty()).unwrap_or_else(|| "operator".into()),
        ..UaConfig::default()
    };
    let server = sip.server.trim();
    if server.is_empty() {
        return match without_server {
            WithoutServer::Refuse => Err(SetupError::NoServer),
            WithoutServer::Direct => Ok(config),
        };
    }
    let username = sip.username.trim();
    if username.is_empty() {
        return Err(SetupError::NoUser);
    }
    let account = sip.label();
    let password = password(&account)
        .map_err(|reason| SetupError::Keyring { account: account.clone(), reason })?
        .filter(|p| !p.is_empty())
        .ok_or(SetupError::NoPassword { account })?;
    config.account = Some(AccountConfig {
        server: server.to_owned(),
        username: username.to_owned(),
        auth_username: sip.auth_username.trim().to_owned(),
        password,
        display_name: sip.display_name.trim().to_owned(),
    });
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(server: &str, user: &str) -> LocalSettings {
        let mut s = LocalSettings { telephony_enabled: true, ..LocalSettings::default() };
        s.sip.server = server.into();
        s.sip.username = user.into();
        s
    }

    fn no_keyring(_: &str) -> Result<Option<String>, String> {
        panic!("the keyring is not asked for an account that is not whole")
    }

    #[test]
    fn the_account_of_the_settings_is_checked_once_here() {
        let off = LocalSettings { telephony_enabled: false, ..settings("pbx", "101") };
        assert!(matches!(ua_config_with(&off, WithoutServer::Direct, no_keyring), Err(SetupError::TelephonyOff)));
        let none = settings(" ", "101");
        assert!(matches!(ua_config_with(&none, WithoutServer::Refuse, no_keyring), Err(SetupError::NoServer)));
        let direct = ua_config_with(&none, WithoutServer::Direct, no_keyring).unwrap();
        assert!(direct.account.is_none());
        assert!(matches!(
            ua_config_with(&settings("pbx", " "), WithoutServer::Refuse, no_keyring),
            Err(SetupError::NoUser)
        ));
        let whole = settings(" pbx.clinic:5060 ", "101");
        let missing = ua_config_with(&whole, WithoutServer::Refuse, |_| Ok(Some(String::new())));
        assert!(matches!(missing, Err(SetupError::NoPassword { account }) if account == "101@pbx.clinic:5060"));
        let broken = ua_config_with(&whole, WithoutServer::Refuse, |_| Err("no D-Bus".into()));
        assert!(matches!(broken, Err(SetupError::Keyring { .. })));
        let config = ua_config_with(&whole, WithoutServer::Refuse, |a| {
            assert_eq!(a, "101@pbx.clinic:5060");
            Ok(Some("secret".into()))
        })
        .unwrap();
        let account = config.account.unwrap();
        assert_eq!((account.server.as_str(), account.username.as_str()), ("pbx.clinic:5060", "101"));
        assert_eq!(account.password, "secret");
    }

    #[test]
    fn the_media_timeout_is_checked_here_too() {
        let mut s = settings(" ", "101");
        assert_eq!(LocalSettings::default().sip.media_timeout_secs, 30);
        let config = ua_config_with(&s, WithoutServer::Direct, no_keyring).unwrap();
        assert_eq!(config.media_timeout, Some(std::time::Duration::from_secs(30)));
        s.sip.media_timeout_secs = 0;
        assert_eq!(ua_config_with(&s, WithoutServer::Direct, no_keyring).unwrap().media_timeout, None);
        s.sip.media_timeout_secs = 3;
        let three = ua_config_with(&s, WithoutServer::Direct, no_keyring).unwrap().media_timeout;
        assert_eq!(three, Some(std::time::Duration::from_secs(3)));
        for bad in [1, 3601] {
            s.sip.media_timeout_secs = bad;
            let err = ua_config_with(&s, WithoutServer::Direct, no_keyring).unwrap_err();
            assert!(matches!(err, SetupError::MediaTimeout { secs, .. } if secs == bad), "{err}");
            assert!(err.to_string().contains("media_timeout_secs"), "{err}");
        }
    }
}
