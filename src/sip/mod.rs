//! The SIP user agent's foundation: everything between the network and the
//! dialogs, registration and calls built on top of it.
//!
//! Why it is ours: DESIGN.md measured the crates. rsip 0.4 rejects half of the
//! valid RFC 4475 messages; ezk-sip-types parses them but is lenient where
//! RFC 4475 wants a 400 (extra spaces in the Request-Line, out-of-range
//! status codes), cannot say which status a broken request deserves nor hand
//! back the lines needed to answer it, and its digest auth has the two bugs
//! noted there. A strict, panic-free parser that reports what is wrong is
//! small enough to own, and the transaction layer needs exactly that.
//!
//! | Module | Owns |
//! |---|---|
//! | [`message`] | requests and responses: parse (with the status a broken request gets), serialise, build; `Method` (from `method.rs`, below both `message` and `headers`) |
//! | [`headers`] | header names (compact forms), the header list, typed Via, From/To/Contact, CSeq, ... |
//! | [`uri`] | sip/sips/tel URIs, other schemes kept opaque (for 416) |
//! | [`validate`] | one datagram → request / response / reply to send / drop; the RFC 3261 §8.2 UAS checks |
//! | [`auth`] | digest authentication as a client (RFC 2617/7616/8760: MD5, SHA-256, SHA-512-256, -sess, qop) |
//! | [`sdp`] | SDP and RFC 3264 offer/answer for audio (Opus, PCMU, PCMA, telephone-event) |
//! | [`transaction`] | the four RFC 3261 §17 transaction state machines (pure: events + time → actions) and their driver |
//! | [`transport`] | UDP, TCP and TLS sockets, stream framing, keep-alives, the local address toward a peer |
//! | [`dialog`] | dialog state (RFC 3261 §12): ids, route sets, CSeq, in-dialog requests |
//! | [`registration`] | REGISTER with digest auth, refresh, recovery, rport learning, unregister |
//! | [`phone`] | the user agent's vocabulary: `PhoneCommand` in, `PhoneEvent` out, the link and its waker |
//! | [`ua`] | the user agent, a file per flow (incoming, outgoing, in-dialog, transfer, media, registration): the socket loop, transactions, registration and calls, `PhoneCommand` in, `PhoneEvent` out |
//!
//! The path of an incoming datagram, as the user agent wires it:
//!
//! ```text
//! transport (UDP socket) ──bytes, source──▶ validate::validate_datagram
//!     ├─ Reply(resp)      → send resp to the source, done (stateless 400/505)
//!     ├─ Drop(_)          → done (keep-alive, broken response, ...)
//!     ├─ Response(resp)   → the client transaction it matches → Output::Event to the UA
//!     └─ Request(req)     → the server transaction it matches
//!            ├─ retransmission → the transaction resends its last response
//!            ├─ ACK for a 2xx  → Output::Ack (found by dialog)
//!            └─ new            → Output::Request → the UA runs validate::uas_precheck:
//!                                Some(resp): respond with it; None: handle the request
//! ```
//!
//! `transaction::TransactionLayer::on_message` does all of this for one
//! message; `transaction::run` drives a layer over a `transport::TransportLayer`:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use clinicdesk::sip::transaction::{self, Output, Timers};
//! use clinicdesk::sip::transport::{TransportLayer, TransportOptions};
//! use clinicdesk::sip::validate::{UasPolicy, uas_precheck};
//! use clinicdesk::sip::Response;
//!
//! let opts = TransportOptions { udp: Some("0.0.0.0:5060".parse()?), ..Default::default() };
//! let (transport, incoming) = TransportLayer::start(opts).await?;
//! let (layer, mut outputs) = transaction::run(transport, incoming, Timers::default());
//! let policy = UasPolicy::default();
//! while let Some(out) = outputs.recv().await {
//!     match out {
//!         Output::Request { id, request, .. } => {
//!             let response = match uas_precheck(&request, &policy) {
//!                 Some(refusal) => refusal,
//!                 None => {
//!                     let mut ok = Response::for_request(&request, 200);
//!                     ok.set_to_tag(&clinicdesk::sip::new_tag());
//!                     ok
//!                 }
//!             };
//!             layer.respond(id, response).await?;
//!         }
//!         Output::Event { id, event } => println!("transaction {id:?}: {event:?}"),
//!         Output::Ack { .. } | Output::StrayResponse { .. } | Output::Send { .. } => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! This module enforces its own zero-panic rule: outside tests, indexing and
//! slicing with `[]`, `unwrap`, `expect` and `panic!` are compile errors.

#![cfg_attr(not(test), deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod auth;
pub mod dialog;
pub mod headers;
pub mod message;
mod method;
pub mod phone;
pub mod registration;
pub mod sdp;
mod syntax;
pub mod transaction;
pub mod transport;
pub mod ua;
pub mod uri;
pub mod validate;

#[cfg(test)]
mod rfc4475_tests;

/// Random letters and digits from the operating system's generator, for
/// branches, tags, Call-IDs and client nonces (falls back to a per-process
/// keyed hash of a counter and the clock if the OS generator fails, so it
/// never panics).
pub fn random_token(len: usize) -> String {
    const ALPHABET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    if getrandom::fill(&mut bytes).is_err() {
        use std::hash::{BuildHasher, Hasher};
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let state = std::collections::hash_map::RandomState::new();
        for (i, b) in bytes.iter_mut().enumerate() {
            let mut h = state.build_hasher();
            h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
            h.write_usize(i);
            h.write_u128(
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
            );
            let [low, ..] = h.finish().to_le_bytes();
            *b = low;
        }
    }
    // 256 = 4 * 62 + 8: the slight bias toward the first eight letters does not matter here.
    bytes.iter().map(|b| char::from(ALPHABET.get(usize::from(*b) % ALPHABET.len()).copied().unwrap_or(b'0'))).collect()
}

/// A new RFC 3261 branch: the magic cookie and 16 random characters.
pub fn new_branch() -> String {
    format!("z9hG4bK{}", random_token(16))
}

/// A new From/To tag.
pub fn new_tag() -> String {
    random_token(12)
}

/// A new Call-ID (`random@host`).
pub fn new_call_id(host: &str) -> String {
    format!("{}@{host}", random_token(20))
}

pub use headers::{CSeq, Contacts, Header, HeaderError, HeaderName, Headers, MediaType, NameAddr, Via};
pub use message::{Message, Method, ParseError, Problem, Request, Response};
pub use syntax::Params;
pub use uri::{Host, SipUri, TelUri, Uri};
