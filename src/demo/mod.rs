//! A generated clinic, so ClinicDesk can be shown, tried and measured without
//! real patients.
//!
//! `clinicdesk demo-data` and `clinicdesk demo` fill a fresh replica with two
//! years of a plausible clinic's life: staff and dictionaries, Russian and
//! Ukrainian patients (families sharing a phone), a million calls with a
//! working-day rhythm, and the inquiries, deals, visits and tasks they lead
//! to, including work that is overdue or due today. The same seed always
//! gives the same clinic, so benchmarks and screenshots are repeatable.

mod calendar;
pub mod caller;
mod generate;
mod names;
mod reference;
mod rng;

pub use generate::generate;

use crate::crm::Millis;

/// The login of the operator the demo workstation signs in as. Open tasks
/// overdue and due today are always generated for this user.
pub const DEMO_OPERATOR_LOGIN: &str = "operator";

/// What to generate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoOptions {
    /// How many people (patients and their relatives).
    pub patients: usize,
    /// How many calls, spread over the two years before `now`.
    pub calls: usize,
    /// The same seed gives the same clinic.
    pub seed: u64,
    /// "Today" the data is relative to, Unix milliseconds UTC.
    pub now: Millis,
}

/// How many rows of each kind were generated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DemoSummary {
    pub people: usize,
    pub calls: usize,
    pub inquiries: usize,
    pub deals: usize,
    pub tasks: usize,
    pub visits: usize,
    /// The login the demo workstation should sign in as ([`DEMO_OPERATOR_LOGIN`]).
    pub operator_login: String,
}
