//! The phone as the application uses it. `sip` is a protocol library that
//! knows nothing of this workstation; here the user agent gets what it needs
//! from the rest of ClinicDesk, in one place for both faces (the window and
//! the headless `clinicdesk phone`):
//!
//! | Module | Owns |
//! |---|---|
//! | [`config`] | the user agent's configuration from `settings.toml` and the keyring: the one place that checks `[sip]` |
//! | [`cards`] | the caller-card lookup over the replica, handed to the user agent as a function |
//! | [`tracker`] | the one call tracker: events per call in, the call-log entry of a finished call out |
//! | [`call_log`] | the headless phone's writer of finished calls, and the operator they are logged against |
//! | [`run`] | the window's phone: started from the settings, the demo clinic's caller beside it |

pub mod call_log;
pub mod cards;
pub mod config;
pub mod run;
pub mod tracker;
