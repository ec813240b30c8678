//! Subcommands of `clinicdesk`: their arguments, validation and printing
//! (DESIGN.md: "cli/ every subcommand"). The older ones still live beside
//! their modules (`sync::cli`) and in main.rs.

pub mod phone;
pub mod report;
