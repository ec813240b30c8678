//! ClinicDesk: a softphone and CRM in one window for the people who answer a
//! clinic's phones. See README.md ("Architecture") for what each module owns.

pub mod app;
pub mod cli;
pub mod crm;
pub mod demo;
pub mod i18n;
pub mod media;
pub mod notify;
pub mod services;
pub mod settings;
pub mod sip;
pub mod softphone;
pub mod store;
pub mod sync;
