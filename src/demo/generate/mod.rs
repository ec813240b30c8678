//! Writes the generated clinic into a fresh replica in one bulk transaction:
//! setup, people, then two years of calls in time order with the inquiries,
//! deals, visits and tasks each call leads to, then today's work.
//!
//! This file holds the rows, the prepared statements and the `Generator`'s
//! state; its methods are split by what they generate: `people.rs`,
//! `calls.rs`, `inquiries.rs`, `visits.rs` (deals and visits), `today.rs`.

use std::collections::{HashSet, VecDeque};

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, Connection};

use super::calendar::DAY;
use super::reference::{self, Reference};
use super::rng::{Id, Rng};
use super::{DEMO_OPERATOR_LOGIN, DemoOptions, DemoSummary};
use crate::crm::Millis;
use crate::store::{Replica, Result, StoreError};

/// How far before `now` the generated history starts.
const HISTORY_DAYS: i64 = 730;

/// Fills a replica (must be freshly created, i.e. empty tables) with a
/// generated clinic. `progress` hears the name of each phase as it starts.
///
/// The load runs with a rollback journal instead of WAL when no other
/// connection has the file open: its pages are then written once, straight
/// into the file, where WAL would write them twice (to the log, then to the
/// file). The replica's journal mode is put back afterwards, also on error.
pub fn generate(replica: &mut Replica, opts: &DemoOptions, progress: &mut dyn FnMut(&str)) -> Result<DemoSummary> {
    let conn = replica.conn();
    let journal_mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    let switched = match conn.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0)) {
        Ok(mode) => mode != journal_mode,
        // Another connection has the file open: stay in WAL, slower but as correct.
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => false,
        Err(e) => return Err(e.into()),
    };
    let filled = fill_and_commit(replica, opts, progress);
    let restored = if switched {
        replica.conn().pragma_update_and_check(None, "journal_mode", &journal_mode, |_| Ok(()))
    } else {
        Ok(())
    };
    let summary = filled?;
    restored?;
    Ok(summary)
}

fn fill_and_commit(replica: &mut Replica, opts: &DemoOptions, progress: &mut dyn FnMut(&str)) -> Result<DemoSummary> {
    let tx = replica.bulk_transaction()?;
    refuse_filled(&tx)?;
    let summary = fill(&tx, opts, progress)?;
    progress("saving");
    tx.commit()?;
    Ok(summary)
}

/// Generated rows would mix with real ones and collide with existing logins.
fn refuse_filled(conn: &Connection) -> Result<()> {
    let rows: i64 = conn.query_row(
        "SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM people) + (SELECT count(*) FROM calls)",
        [],
        |r| r.get(0),
    )?;
    if rows > 0 {
        return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            Some("the replica already has data; demo data is generated only into a new, empty file".into()),
        )));
    }
    Ok(())
}

fn fill(conn: &Connection, opts: &DemoOptions, progress: &mut dyn FnMut(&str)) -> Result<DemoSummary> {
    let now = opts.now;
    let start = now - HISTORY_DAYS * DAY;
    let mut rng = Rng::new(opts.seed);
    progress("clinic setup");
    let reference = reference::write(conn, &mut rng, start - 30 * DAY, start)?;
    let mut g = Generator::new(conn, rng, reference, now)?;
    progress("people");
    g.people(opts.patients, start)?;
    progress("calls");
    g.history(opts.calls, start, progress)?;
    progress("today's tasks");
    g.todays_tasks()?;
    g.every_stage()?;
    g.summary.operator_login = DEMO_OPERATOR_LOGIN.to_owned();
    Ok(g.summary)
}

/// A phone number kept as the digits of its E.164 form, formatted on the
/// stack for binding.
struct PhoneText {
    buf: [u8; 16],
    len: usize,
}

impl PhoneText {
    fn new(mut digits: u64) -> PhoneText {
        let mut reversed = [0u8; 16];
        let mut n = 0;
        while digits > 0 && n < 15 {
            reversed[n] = b'0' + (digits % 10) as u8;
            digits /= 10;
            n += 1;
        }
        let mut buf = [0u8; 16];
        buf[0] = b'+';
        for i in 0..n {
            buf[1 + i] = reversed[n - 1 - i];
        }
        PhoneText { buf, len: n + 1 }
    }

    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl ToSql for PhoneText {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(ValueRef::Text(&self.buf[..self.len])))
    }
}

/// What the generator remembers of a person: the id and the phones they call
/// from (E.164 digits), the first one the usual.
#[derive(Clone, Copy)]
struct Person {
    id: Id,
    phones: [u64; 4],
    n_phones: usize,
}

/// A family being generated: its members share a surname and one number.
struct Family {
    ua: bool,
    surname: usize,
    head_female: bool,
    head_age: i64,
    /// The children's father, an index into the male names.
    father: usize,
    shared: u64,
    shared_kind: &'static str,
    spouse_done: bool,
    remaining: usize,
}

/// A missed call waiting to be called back, with its inquiry (written once
/// the callback settles it).
struct Missed {
    inquiry: Id,
    call: Id,
    person: Option<usize>,
    peer: u64,
    number: usize,
    created: Millis,
    attempts: u8,
    first_attempt: Option<Millis>,
    operator: Option<Id>,
}

/// How calling back a missed call ended.
enum Callback {
    Reached(Millis),
    GaveUp(Millis),
    NotYet,
}

struct CallRow {
    id: Id,
    direction: &'static str,
    peer: u64,
    did: Option<usize>,
    person: Option<usize>,
    operator: Option<Id>,
    started: Millis,
    answered: Option<Millis>,
    ended: Millis,
    result: &'static str,
    inquiry: Option<Id>,
}

struct InquiryRow {
    id: Id,
    person: Option<usize>,
    phone: Option<u64>,
    call: Option<Id>,
    channel: usize,
    campaign: Option<usize>,
    reason: Option<usize>,
    source: &'static str,
    status: &'static str,
    result: Option<usize>,
    operator: Option<Id>,
    note: &'static str,
    created: Millis,
    first_response: Option<Millis>,
    closed: Option<Millis>,
}

struct DealRow {
    id: Id,
    deal_type: usize,
    stage: usize,
    person: Option<usize>,
    inquiry: Option<Id>,
    title: &'static str,
    amount_cents: i64,
    responsible: Option<Id>,
    created: Millis,
    closed: Option<Millis>,
    updated: Millis,
}

struct TaskRow<'a> {
    task_type: usize,
    template: Option<usize>,
    title: &'a str,
    description: &'a str,
    responsible: Option<Id>,
    deadline: Millis,
    remind: Option<Millis>,
    status: &'static str,
    person: Option<usize>,
    inquiry: Option<Id>,
    deal: Option<Id>,
    created_by: Option<Id>,
    created: Millis,
    completed: Option<Millis>,
    updated: Millis,
}

/// A visit decided before it is written (a deal's stage follows from it).
struct VisitPlan {
    start: Millis,
    duration_min: i64,
    status: &'static str,
    cancel_reason: Option<&'static str>,
    changed_at: Millis,
    /// The "confirm visit" task: created, deadline, status, completed, updated.
    confirm: Option<(Millis, Millis, &'static str, Option<Millis>, Millis)>,
}

struct Statements<'c> {
    person: CachedStatement<'c>,
    phone: CachedStatement<'c>,
    fts: CachedStatement<'c>,
    call: CachedStatement<'c>,
    inquiry: CachedStatement<'c>,
    deal: CachedStatement<'c>,
    visit: CachedStatement<'c>,
    task: CachedStatement<'c>,
}

impl<'c> Statements<'c> {
    fn prepare(conn: &'c Connection) -> Result<Statements<'c>> {
        Ok(Statements {
            person: conn.prepare_cached(
                "INSERT INTO people (id, last_name, first_name, middle_name, birth_date, sex, email, note,
                                     external_id, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?,
            phone: conn.prepare_cached(
                "INSERT INTO person_phones (id, person_id, phone_e164, kind, updated_at) VALUES (?, ?, ?, ?, ?)",
            )?,
            fts: conn.prepare_cached("INSERT INTO people_fts (rowid, names, phones) VALUES (?, ?, ?)")?,
            call: conn.prepare_cached(
                "INSERT INTO calls (id, direction, peer_e164, did_e164, person_id, operator_id, started_at,
                                    answered_at, ended_at, result, inquiry_id, sip_call_id, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?,
            inquiry: conn.prepare_cached(
                "INSERT INTO inquiries (id, person_id, phone_e164, call_id, channel_id, campaign_id, reason_id,
                                        source, status, result, operator_id, note, created_at, first_response_at,
                                        closed_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?,
            deal: conn.prepare_cached(
                "INSERT INTO deals (id, deal_type_id, stage_id, person_id, inquiry_id, title, amount_cents, status,
                                    responsible_id, created_at, closed_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?,
            visit: conn.prepare_cached(
                "INSERT INTO visits (id, person_id, doctor_id, deal_id, service, starts_at, duration_min, status,
                                     cancel_reason, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?,
            task: conn.prepare_cached(
                "INSERT INTO tasks (id, task_type_id, template_id, title, description, responsible_id, deadline_at,
                                    remind_at, status, person_id, inquiry_id, deal_id, created_by, created_at,
                                    completed_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?,
        })
    }
}

struct Generator<'c> {
    conn: &'c Connection,
    st: Statements<'c>,
    rng: Rng,
    now: Millis,
    r: Reference,
    /// The campaigns of each channel.
    channel_campaigns: Vec<Vec<usize>>,
    people: Vec<Person>,
    /// When each person was created, ascending (people are written in
    /// this order).
    created: Vec<Millis>,
    /// Every phone of a person, so unknown callers are really unknown.
    known_phones: HashSet<u64>,
    /// Numbers of callers who are not in the base, some calling repeatedly.
    unknown: Vec<u64>,
    pending: VecDeque<Missed>,
    stage_counts: [[usize; 5]; 3],
    summary: DemoSummary,
    sip_call_id: String,
}

impl<'c> Generator<'c> {
    fn new(conn: &'c Connection, rng: Rng, r: Reference, now: Millis) -> Result<Generator<'c>> {
        let channel_campaigns = (0..r.channels.len()).map(|c| r.campaigns_of(c).collect()).collect();
        Ok(Generator {
            conn,
            st: Statements::prepare(conn)?,
            rng,
            now,
            r,
            channel_campaigns,
            people: Vec::new(),
            created: Vec::new(),
            known_phones: HashSet::new(),
            unknown: Vec::new(),
            pending: VecDeque::new(),
            stage_counts: [[0; 5]; 3],
            summary: DemoSummary::default(),
            sip_call_id: String::with_capacity(64),
        })
    }
}

mod calls;
mod inquiries;
mod people;
#[cfg(test)]
mod tests;
mod today;
mod visits;
