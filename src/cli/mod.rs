//! Subcommands of `clinicdesk`: their arguments, validation and printing
//! (DESIGN.md: "cli/ every subcommand"). The older ones still live beside
//! their modules (`sip::cli`, `sync::cli`) and in main.rs.

pub mod report;
