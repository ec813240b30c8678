//! Subcommands of `clinicdesk`: their arguments, validation and printing
//! (DESIGN.md: "cli/ every subcommand"), so that main.rs only parses the
//! command line and hands over. One file per subcommand or small group:
//! the window and `demo` ([`window`]), `demo-data`, `check`, `password`,
//! `phone` (the softphone without a window), `server`, `sync`, `import` and
//! `report`.

pub mod check;
pub mod demo_data;
pub mod import;
pub mod password;
pub mod phone;
pub mod report;
pub mod server;
pub mod sync;
pub mod window;
