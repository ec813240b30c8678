//! The caller card as the user agent gets it: a function over a read-only
//! connection to the replica ([`crate::store::card`] does the lookup). The
//! user agent runs it on a blocking thread, never on its own task.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use crate::crm::now_millis;
use crate::sip::ua::CardLookup;
use crate::store::Replica;
use crate::store::card::caller_card;

/// The lookup over the replica at `path`, on a connection of its own (read
/// only). `None` when there is no replica yet or it cannot be read: calls
/// then ring without a card.
pub fn lookup(path: &Path) -> Option<CardLookup> {
    if !path.exists() {
        return None;
    }
    let replica = match Replica::open_read_only(path) {
        Ok(r) => Mutex::new(r),
        Err(e) => {
            tracing::warn!(error = %e, "no caller cards: the replica cannot be read");
            return None;
        }
    };
    Some(CardLookup::new(move |number, did| {
        let replica = replica.lock().unwrap_or_else(PoisonError::into_inner);
        match caller_card(replica.conn(), number, did, now_millis()) {
            Ok(card) => Some(Box::new(card)),
            Err(e) => {
                tracing::warn!(error = %e, "caller card lookup failed");
                None
            }
        }
    }))
}
