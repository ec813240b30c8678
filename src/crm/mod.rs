//! The clinic's domain: the words of DESIGN.md as types, their validation and
//! the rights of each role, the caller card's types. Nothing here does I/O; the store persists these
//! types and the UI shows them.

pub mod card;
pub mod entities;
pub mod phone;
pub mod rights;

pub use entities::*;
pub use phone::{Country, Phone, PhoneError, caller_number};
pub use rights::{Right, Rights, RoleCode, Saving};
