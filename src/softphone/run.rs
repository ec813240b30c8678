//! The softphone of the window, started before it opens and stopped after:
//! the `[sip]` account of the settings, or in the demo clinic without one, a
//! phone on loopback that the demo caller rings (and that answers the numbers
//! the operator dials).

use std::path::Path;

use super::config::{SetupError, WithoutServer, ua_config};
use crate::demo::caller::{DemoAnswerer, DemoCaller, DemoCallerConfig};
use crate::settings::LocalSettings;
use crate::sip::phone::{self, PhoneLink};
use crate::sip::ua::{self, UaHandle};

/// How the softphone of this workstation runs.
#[derive(Debug)]
pub enum PhoneStatus {
    /// IP telephony is off on this workstation (nothing registered).
    Off,
    /// It could not start, and why.
    Problem(SetupError),
    /// Registering with the clinic's PBX as this account.
    Account(String),
    /// No PBX: calls come straight to this address (the demo).
    Direct(String),
}

/// The running softphone (or why there is none).
pub struct PhoneRun {
    pub link: Option<PhoneLink>,
    pub status: PhoneStatus,
    ua: Option<UaHandle>,
    demo: Option<DemoCaller>,
}

impl PhoneRun {
    /// No softphone.
    pub fn off() -> PhoneRun {
        PhoneRun { link: None, status: PhoneStatus::Off, ua: None, demo: None }
    }

    /// Hangs up, unregisters and stops the demo caller (on exit).
    pub fn stop(self) {
        if let Some(demo) = self.demo {
            demo.stop();
        }
        if let Some(ua) = self.ua {
            ua.shutdown();
        }
    }
}

/// Starts this workstation's softphone as its settings say: nothing when
/// telephony is off; the `[sip]` account with its password from the keyring
/// (or `CLINICDESK_SIP_PASSWORD`); in the demo without an account, a phone on
/// loopback that the demo caller rings. Cards come from `replica`. What goes
/// wrong is in the status, never fatal for the window.
pub fn start_phone(settings: &LocalSettings, replica: &Path, demo: bool) -> PhoneRun {
    let off = |status| PhoneRun { status, ..PhoneRun::off() };
    let without_server = if demo { WithoutServer::Direct } else { WithoutServer::Refuse };
    let mut config = match ua_config(settings, without_server) {
        Ok(c) => c,
        Err(SetupError::TelephonyOff) => return off(PhoneStatus::Off),
        Err(e) => return off(PhoneStatus::Problem(e)),
    };
    let mut answerer = None;
    if config.account.is_none() {
        // The demo clinic: its peer answers what the operator dials.
        let a = match DemoAnswerer::start() {
            Ok(a) => a,
            Err(e) => return off(PhoneStatus::Problem(e.into())),
        };
        config.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
        config.transport = crate::sip::transport::Transport::Udp;
        config.direct_peer = Some(a.local_addr());
        answerer = Some(a);
    }
    config.cards = super::cards::lookup(replica);
    let account = config.account.as_ref().map(|a| a.label());
    let (link, end) = phone::link();
    let handle = match ua::start(config, end) {
        Ok(h) => h,
        Err(e) => return off(PhoneStatus::Problem(e.into())),
    };
    let status = match account {
        Some(account) => PhoneStatus::Account(account),
        None => PhoneStatus::Direct(handle.local_addr().to_string()),
    };
    let demo = match answerer {
        Some(a) if replica.exists() => {
            Some(DemoCaller::start(a, handle.local_addr(), replica, DemoCallerConfig::default()))
        }
        _ => None,
    };
    PhoneRun { link: Some(link), status, ua: Some(handle), demo }
}
