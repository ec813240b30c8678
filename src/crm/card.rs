//! The caller card's types: who is calling and what the clinic knows of
//! them. The softphone carries a card in its events; the replica fills it
//! (`store::card`), the window shows it.

use serde::Serialize;

use super::{CallDirection, CallResult, InquirySource, InquiryStatus, Millis, TaskStatus, VisitStatus};

/// Everything the card shows for one incoming (or outgoing) call.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CallerCard {
    /// The caller's number, normalised (E.164), or as received when it is
    /// not a phone number (an anonymous or SIP-name caller).
    pub number: String,
    /// People with this number: none is a new caller; several share it
    /// (a family).
    pub people: Vec<CardPerson>,
    /// The ad channel and campaign of the dialled number (call tracking).
    pub tracking: Option<Tracking>,
}

impl CallerCard {
    pub fn is_new_caller(&self) -> bool {
        self.people.is_empty()
    }
}

/// The marketing source of a dialled clinic number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Tracking {
    pub did: String,
    pub channel_id: String,
    pub channel: String,
    pub campaign_id: Option<String>,
    pub campaign: Option<String>,
}

/// One person with the caller's number, and their history.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CardPerson {
    pub id: String,
    pub full_name: String,
    pub birth_date: Option<String>,
    /// Why this person matched: the kind of the phone (mobile, home, work,
    /// relative, other).
    pub matched_phone_kind: String,
    /// The channel of their first inquiry: how they found the clinic.
    pub first_channel: Option<String>,
    pub open_inquiries: Vec<CardInquiry>,
    pub open_deals: Vec<CardDeal>,
    pub open_tasks: Vec<CardTask>,
    pub next_visit: Option<CardVisit>,
    pub last_visit: Option<CardVisit>,
    pub last_calls: Vec<CardCall>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CardInquiry {
    pub id: String,
    pub created_at: Millis,
    pub reason: Option<String>,
    pub status: InquiryStatus,
    pub source: InquirySource,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CardDeal {
    pub id: String,
    pub title: String,
    pub deal_type: String,
    pub stage: String,
    pub amount_cents: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CardTask {
    pub id: String,
    pub title: String,
    pub deadline_at: Millis,
    pub status: TaskStatus,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CardVisit {
    pub id: String,
    pub starts_at: Millis,
    pub doctor: String,
    pub service: String,
    pub status: VisitStatus,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CardCall {
    pub started_at: Millis,
    pub direction: CallDirection,
    pub result: CallResult,
    pub operator: Option<String>,
}
