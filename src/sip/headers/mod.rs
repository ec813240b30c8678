//! Header fields: names (case-insensitive, compact forms folded to the full
//! name), the ordered header list of a message, and typed views of the
//! fields a user agent reads and writes (RFC 3261 §20 and the extensions
//! named in DESIGN.md).
//!
//! A message keeps each header line as text (folding undone). Typed values
//! are parsed when asked for, so a header the user agent never reads cannot
//! make it fail, and serialising a received message gives back what came in.
//! [`crate::sip::message`] checks the fields every message needs when it
//! parses, so on a parsed message those accessors do not fail in practice.
//!
//! `name.rs` has the names and the error, `scalar.rs` the plain numbers and
//! tokens (Call-ID, Max-Forwards, Expires, Content-Length, Date), `values.rs`
//! the structured values (Via, name-addr, CSeq, media types, Event,
//! Subscription-State, Replaces), `list.rs` a message's header list and the
//! check the message parser runs on each line. Each file uses only the ones
//! listed before it.

mod list;
mod name;
mod scalar;
mod values;

pub(crate) use list::check_core_header;
pub use list::{Header, Headers};
pub use name::{HeaderError, HeaderName};
pub(crate) use scalar::parse_content_length;
pub use values::{CSeq, Contacts, Event, MediaType, NameAddr, Replaces, SubscriptionState, Via};
