//! `clinicdesk phone`: the softphone without a window.
//!
//! Only the command-line surface exists so far, so that `main.rs` compiles
//! with the `wip-sip` feature; the user agent (registration, calls, JSON
//! events) is built on `sip::message`, `sip::transaction` and
//! `sip::transport` in the next step, which replaces this file.

use std::path::Path;
use std::process::ExitCode;

/// Options of `clinicdesk phone` (none yet: the user agent is not built).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PhoneArgs {}

/// Runs the softphone; refuses with a clear error until the user agent exists.
pub fn run_phone(_profile: Option<&Path>, _args: PhoneArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the softphone is not built yet: `clinicdesk phone` arrives with the SIP user agent")
}
