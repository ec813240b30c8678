//! Writes the generated clinic into a fresh replica in one bulk transaction:
//! setup, people, then two years of calls in time order with the inquiries,
//! deals, visits and tasks each call leads to, then today's work.

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use rusqlite::{CachedStatement, Connection, params};

use super::calendar::{DAY, HOUR, MINUTE, Rhythm, SECOND, iso_date, local_day_start, visit_slot};
use super::names::{
    CANCEL_REASONS, EMAIL_DOMAINS_RU, EMAIL_DOMAINS_UA, Given, INQUIRY_NOTES, PERSON_NOTES, RU_FEMALE,
    RU_LANDLINE_CODES, RU_MALE, RU_SURNAMES, UA_FEMALE, UA_LANDLINE_CODES, UA_MALE, UA_MOBILE_CODES, UA_SURNAMES,
    feminine,
};
use super::reference::{
    self, CHANNEL_OFFLINE, CHANNEL_REFERRAL, CHANNEL_SITE, DEAL_TYPES, DIAGNOSTICS, INQUIRY_RESULTS, PRIMARY,
    REASON_BOOKING, REASON_DOCUMENTS, REASON_PRICES, REASON_RESULTS, REASONS, RESULT_BOOKED, RESULT_CALLBACK,
    RESULT_CONSULTATION, RESULT_REFUSED, Reference, SPECIALTIES, STAGE_BOOKED, STAGE_CAME, STAGE_LOST, STAGE_NEW,
    STAGE_WON, TASK_CALL_BACK, TASK_CONFIRM_VISIT, TASK_OTHER, TASK_SEND_RESULTS, TEMPLATE_AFTER_TREATMENT,
    TEMPLATE_CALL_BACK, TEMPLATE_CONFIRM_VISIT, TEMPLATE_DOCUMENTS, TEMPLATE_SEND_RESULTS, TREATMENT,
};
use super::rng::{Id, Rng};
use super::{DEMO_OPERATOR_LOGIN, DemoOptions, DemoSummary};
use crate::crm::{Millis, Phone};
use crate::store::{Replica, Result, StoreError, search};

/// How far before `now` the generated history starts.
const HISTORY_DAYS: i64 = 730;

/// Share of strangers who start a family sharing a phone (about 8% of all
/// people end up in one).
const FAMILY_START: f64 = 0.035;

const YEAR: Millis = 365 * DAY + DAY / 4;

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

    // People ---------------------------------------------------------------

    fn people(&mut self, n: usize, start: Millis) -> Result<()> {
        let now = self.now;
        // A third were imported from the clinic's previous system before the
        // period; the rest came one by one.
        let import_at = start - 20 * DAY;
        let mut created: Vec<Millis> = (0..n)
            .map(|_| {
                if self.rng.chance(0.3) {
                    import_at + self.rng.range(0, HOUR)
                } else {
                    self.rng.range(start, now - HOUR)
                }
            })
            .collect();
        created.sort_unstable();
        let ru_feminine: Vec<String> = RU_SURNAMES.iter().map(|s| feminine(s)).collect();
        let ua_feminine: Vec<String> = UA_SURNAMES.iter().map(|s| feminine(s)).collect();
        self.known_phones.reserve(n * 3 / 2);
        self.people.reserve(n);

        let mut family: Option<Family> = None;
        let mut imported = 0;
        for (i, &at) in created.iter().enumerate() {
            let mut phones: [(u64, &'static str); 4] = [(0, ""); 4];
            let mut n_phones = 0;
            let mut push = |phone: u64, kind: &'static str| {
                phones[n_phones] = (phone, kind);
                n_phones += 1;
            };
            let (ua, female, age, surname, first, father);
            if let Some(f) = family.as_mut() {
                ua = f.ua;
                surname = f.surname;
                let males = if ua { UA_MALE.len() } else { RU_MALE.len() };
                let females = if ua { UA_FEMALE.len() } else { RU_FEMALE.len() };
                if !f.spouse_done && self.rng.chance(0.6) {
                    f.spouse_done = true;
                    female = !f.head_female;
                    age = (f.head_age + self.rng.range(-6, 7)).max(18);
                    // A husband is the children's father.
                    first = if female { self.rng.index(females) } else { f.father };
                    father = self.rng.index(males);
                } else {
                    female = self.rng.chance(0.5);
                    age = self.rng.range(1, (f.head_age - 19).clamp(2, 40));
                    first = self.rng.index(if female { females } else { males });
                    father = f.father;
                }
                if age >= 12 && self.rng.chance(0.9) {
                    push(self.new_mobile(ua), "mobile");
                }
                push(f.shared, f.shared_kind);
                f.remaining -= 1;
                if f.remaining == 0 {
                    family = None;
                }
            } else {
                ua = self.rng.chance(0.3);
                female = self.rng.chance(0.56);
                age = sample_age(&mut self.rng);
                surname = self.rng.index(if ua { UA_SURNAMES.len() } else { RU_SURNAMES.len() });
                let (males, females) = if ua { (UA_MALE, UA_FEMALE) } else { (RU_MALE, RU_FEMALE) };
                first = self.rng.index(if female { females.len() } else { males.len() });
                father = self.rng.index(males.len());
                let own = self.new_mobile(ua);
                // Young children are reached through a parent's phone.
                push(own, if age >= 10 { "mobile" } else { "relative" });
                let head = age >= 22 && i + 1 < n && self.rng.chance(FAMILY_START);
                let mut home_shared = false;
                if head {
                    let (shared, shared_kind) = if self.rng.chance(0.6) {
                        (own, "relative")
                    } else {
                        home_shared = true;
                        let home = self.new_landline(ua);
                        push(home, "home");
                        (home, "home")
                    };
                    family = Some(Family {
                        ua,
                        surname,
                        head_female: female,
                        head_age: age,
                        father: if female { self.rng.index(males.len()) } else { first },
                        shared,
                        shared_kind,
                        spouse_done: false,
                        remaining: (1 + self.rng.index(3)).min(n - i - 1),
                    });
                }
                if !home_shared && self.rng.chance(0.18) {
                    let kind = if self.rng.chance(0.6) { "home" } else { "work" };
                    push(self.new_landline(ua), kind);
                }
                if self.rng.chance(0.04) {
                    push(self.new_landline(ua), "work");
                }
            }

            let (males, females, surnames, feminines): (&[Given], &[&str], &[&str], &[String]) = if ua {
                (UA_MALE, UA_FEMALE, UA_SURNAMES, &ua_feminine)
            } else {
                (RU_MALE, RU_FEMALE, RU_SURNAMES, &ru_feminine)
            };
            let last = if female { feminines[surname].as_str() } else { surnames[surname] };
            let first_name = if female { females[first] } else { males[first].0 };
            let middle = if female { males[father].2 } else { males[father].1 };

            let person_id = self.rng.id(at);
            let birth = (!self.rng.chance(0.07)).then(|| iso_date(now - age * YEAR - self.rng.range(0, YEAR)));
            let email = (age >= 18 && self.rng.chance(0.12)).then(|| self.email(first_name, last, ua));
            let note = if self.rng.chance(0.03) { *self.rng.pick(PERSON_NOTES) } else { "" };
            let external_id = (at < start).then(|| {
                imported += 1;
                format!("MIS-{imported:06}")
            });
            self.st.person.execute(params![
                person_id,
                last,
                first_name,
                middle,
                birth,
                if female { "f" } else { "m" },
                email,
                note,
                external_id,
                at,
                at
            ])?;
            let rowid = self.conn.last_insert_rowid();

            let mut person = Person { id: person_id, phones: [0; 4], n_phones };
            let mut indexed: Vec<Phone> = Vec::with_capacity(n_phones);
            for (k, &(phone, kind)) in phones[..n_phones].iter().enumerate() {
                person.phones[k] = phone;
                let text = PhoneText::new(phone);
                self.st.phone.execute(params![self.rng.id(at), person_id, text, kind, at])?;
                indexed.push(Phone::from_e164_unchecked(text.as_str().to_owned()));
            }
            self.st.fts.execute(params![
                rowid,
                search::names_key(last, first_name, middle),
                search::phones_key(&indexed)
            ])?;
            self.people.push(person);
        }
        self.created = created;
        self.summary.people = n;
        Ok(())
    }

    fn new_mobile(&mut self, ua: bool) -> u64 {
        loop {
            let phone = if ua {
                380_000_000_000 + self.rng.pick(UA_MOBILE_CODES) * 10_000_000 + self.rng.below(10_000_000)
            } else {
                79_000_000_000 + self.rng.below(1_000_000_000)
            };
            if self.known_phones.insert(phone) {
                return phone;
            }
        }
    }

    fn new_landline(&mut self, ua: bool) -> u64 {
        loop {
            let phone = if ua {
                380_000_000_000 + self.rng.pick(UA_LANDLINE_CODES) * 10_000_000 + self.rng.below(10_000_000)
            } else {
                70_000_000_000 + self.rng.pick(RU_LANDLINE_CODES) * 10_000_000 + self.rng.below(10_000_000)
            };
            if self.known_phones.insert(phone) {
                return phone;
            }
        }
    }

    fn email(&mut self, first: &str, last: &str, ua: bool) -> String {
        let domain = self.rng.pick(if ua { EMAIL_DOMAINS_UA } else { EMAIL_DOMAINS_RU });
        let first = search::translit(first);
        let last = search::translit(last);
        match self.rng.below(3) {
            0 => format!("{first}.{last}@{domain}"),
            1 => format!("{last}{}@{domain}", self.rng.range(1, 100)),
            _ => format!("{}.{last}{}@{domain}", first.chars().next().unwrap_or('x'), self.rng.range(60, 100)),
        }
    }

    /// Someone who is in the base at `t`: often a new patient, sometimes one
    /// of the regulars, usually anyone.
    fn pick_person(&mut self, t: Millis) -> Option<usize> {
        let known = self.created.partition_point(|&c| c <= t);
        if known == 0 {
            return None;
        }
        let roll = self.rng.unit();
        if roll < 0.25 {
            let newer = self.created.partition_point(|&c| c <= t - 30 * DAY);
            if newer < known {
                return Some(self.rng.range(newer as i64, known as i64) as usize);
            }
        } else if roll < 0.4 && known >= 20 {
            // Every twentieth person calls a lot.
            return Some(self.rng.index(known / 20) * 20);
        }
        Some(self.rng.index(known))
    }

    fn phone_of(&mut self, person: usize) -> u64 {
        let p = self.people[person];
        if p.n_phones == 1 || self.rng.chance(0.85) { p.phones[0] } else { p.phones[self.rng.index(p.n_phones)] }
    }

    fn operator(&mut self) -> Id {
        self.r.operators[self.rng.weighted(&[45, 32, 23])]
    }

    /// How long a conversation lasts.
    fn talk(&mut self) -> Millis {
        self.rng.range(25, 90) * self.rng.range(1, 5) * SECOND
    }

    // Calls ----------------------------------------------------------------

    fn history(&mut self, calls: usize, start: Millis, progress: &mut dyn FnMut(&str)) -> Result<()> {
        let rhythm = Rhythm::new(start, self.now);
        let mut times: Vec<Millis> = (0..calls).filter_map(|_| rhythm.sample(&mut self.rng)).collect();
        times.sort_unstable();
        // Web forms, walk-ins and messages: inquiries without a call.
        let mut contacts: Vec<Millis> = (0..calls / 30).filter_map(|_| rhythm.sample(&mut self.rng)).collect();
        contacts.sort_unstable();
        let pool = (calls / 20).max(10);
        while self.unknown.len() < pool {
            let ua = self.rng.chance(0.25);
            let phone = if self.rng.chance(0.1) {
                70_000_000_000 + self.rng.pick(RU_LANDLINE_CODES) * 10_000_000 + self.rng.below(10_000_000)
            } else if ua {
                380_000_000_000 + self.rng.pick(UA_MOBILE_CODES) * 10_000_000 + self.rng.below(10_000_000)
            } else {
                79_000_000_000 + self.rng.below(1_000_000_000)
            };
            if !self.known_phones.contains(&phone) {
                self.unknown.push(phone);
            }
        }

        let step = (times.len() / 10).max(1);
        let (mut i, mut j) = (0, 0);
        while i < times.len() || j < contacts.len() {
            if j < contacts.len() && (i == times.len() || contacts[j] < times[i]) {
                self.contact(contacts[j])?;
                j += 1;
            } else {
                self.call(times[i])?;
                i += 1;
                if i % step == 0 {
                    progress(&format!("calls: {i} of {}", times.len()));
                }
            }
        }
        // Missed calls nobody has called back yet.
        while let Some(missed) = self.pending.pop_front() {
            self.settle_missed(missed, Callback::NotYet)?;
        }
        Ok(())
    }

    fn call(&mut self, t: Millis) -> Result<()> {
        if self.rng.chance(0.25) {
            return self.outgoing(t);
        }
        let person = if self.rng.chance(0.85) { self.pick_person(t) } else { None };
        let peer = match person {
            Some(p) => self.phone_of(p),
            None => *self.rng.pick(&self.unknown),
        };
        let number = self.rng.weighted(&self.r.number_weights);
        let mut call = CallRow {
            id: self.rng.id(t),
            direction: "in",
            peer,
            did: Some(number),
            person,
            operator: None,
            started: t,
            answered: None,
            ended: t,
            result: "answered",
            inquiry: None,
        };
        match self.rng.weighted(&[855, 120, 15, 10]) {
            0 => {
                let operator = self.operator();
                let answered = t + self.rng.range(3, 25) * SECOND;
                call.operator = Some(operator);
                call.answered = Some(answered);
                call.ended = answered + self.talk();
                let p = if person.is_some() { 0.36 } else { 0.5 };
                if self.rng.chance(p) {
                    call.inquiry = Some(self.rng.id(call.ended.min(self.now)));
                }
                self.insert_call(&call)?;
                if let Some(inquiry) = call.inquiry {
                    self.answered_inquiry(inquiry, &call, number, operator)?;
                }
            }
            1 => {
                call.result = "missed";
                call.ended = t + self.rng.range(15, 45) * SECOND;
                let created = call.ended.min(self.now);
                if self.rng.chance(0.9) {
                    call.inquiry = Some(self.rng.id(created));
                }
                self.insert_call(&call)?;
                if let Some(inquiry) = call.inquiry {
                    self.pending.push_back(Missed {
                        inquiry,
                        call: call.id,
                        person,
                        peer,
                        number,
                        created,
                        attempts: 0,
                        first_attempt: None,
                        operator: None,
                    });
                }
            }
            k => {
                call.result = if k == 2 { "busy" } else { "failed" };
                call.ended = t + self.rng.range(0, 3) * SECOND;
                self.insert_call(&call)?;
            }
        }
        Ok(())
    }

    /// An operator's call: the oldest missed call waiting for a callback, or
    /// a patient (reminders, results, follow-ups).
    fn outgoing(&mut self, t: Millis) -> Result<()> {
        let operator = self.operator();
        let mut call = CallRow {
            id: self.rng.id(t),
            direction: "out",
            peer: 0,
            did: None,
            person: None,
            operator: Some(operator),
            started: t,
            answered: None,
            ended: t,
            result: "answered",
            inquiry: None,
        };
        match self.rng.weighted(&[70, 20, 7, 3]) {
            0 => {
                let answered = t + self.rng.range(5, 25) * SECOND;
                call.answered = Some(answered);
                call.ended = answered + self.talk();
            }
            1 => {
                call.result = "missed";
                call.ended = t + self.rng.range(30, 60) * SECOND;
            }
            k => {
                call.result = if k == 2 { "busy" } else { "failed" };
                call.ended = t + self.rng.range(1, 4) * SECOND;
            }
        }
        if self.pending.front().is_some_and(|m| m.created + MINUTE <= t)
            && let Some(mut missed) = self.pending.pop_front()
        {
            call.peer = missed.peer;
            call.person = missed.person;
            call.inquiry = Some(missed.inquiry);
            self.insert_call(&call)?;
            missed.attempts += 1;
            missed.first_attempt.get_or_insert(t);
            missed.operator = Some(operator);
            if call.answered.is_some() {
                self.settle_missed(missed, Callback::Reached(call.ended.min(self.now)))?;
            } else if missed.attempts >= 3 {
                self.settle_missed(missed, Callback::GaveUp(call.ended.min(self.now)))?;
            } else {
                self.pending.push_back(missed);
            }
            return Ok(());
        }
        call.person = self.pick_person(t);
        call.peer = match call.person {
            Some(p) => self.phone_of(p),
            None => *self.rng.pick(&self.unknown),
        };
        self.insert_call(&call)
    }

    fn insert_call(&mut self, c: &CallRow) -> Result<()> {
        let ended = c.ended.min(self.now).max(c.started);
        let answered = c.answered.map(|a| a.min(ended));
        self.sip_call_id.clear();
        let _ = write!(self.sip_call_id, "{:016x}@pbx.zdorovie.local", self.rng.next_u64());
        self.st.call.execute(params![
            c.id,
            c.direction,
            PhoneText::new(c.peer),
            c.did.map(|n| self.r.numbers[n].did.as_str()),
            c.person.map(|p| self.people[p].id),
            c.operator,
            c.started,
            answered,
            ended,
            c.result,
            c.inquiry,
            self.sip_call_id.as_str(),
            ended
        ])?;
        self.summary.calls += 1;
        Ok(())
    }

    // Inquiries ------------------------------------------------------------

    /// The channel of a dialled number, and its campaign (or, sometimes, one
    /// of the channel's campaigns the caller names).
    fn attribution(&mut self, number: usize) -> (usize, Option<usize>) {
        let channel = self.r.numbers[number].channel;
        let campaign = self.r.numbers[number].campaign.or_else(|| {
            let list = &self.channel_campaigns[channel];
            (!list.is_empty() && self.rng.chance(0.3)).then(|| list[self.rng.index(list.len())])
        });
        (channel, campaign)
    }

    fn result_for(&mut self, reason: usize, person: Option<usize>) -> usize {
        let result = self.rng.weighted(&REASONS[reason].2);
        match person {
            None if self.rng.chance(0.1) => 4,
            None if result == RESULT_BOOKED => RESULT_CONSULTATION,
            _ => result,
        }
    }

    fn note(&mut self) -> &'static str {
        if self.rng.chance(0.08) { INQUIRY_NOTES[self.rng.index(INQUIRY_NOTES.len())] } else { "" }
    }

    fn answered_inquiry(&mut self, inquiry: Id, call: &CallRow, number: usize, operator: Id) -> Result<()> {
        let now = self.now;
        let created = call.ended.min(now);
        let reason = self.rng.weighted(&self.r.reason_weights);
        let closed = self.rng.chance(if now - created < 3 * DAY { 0.8 } else { 0.995 });
        let closed_at = closed.then(|| (created + self.rng.range(0, 10) * MINUTE).min(now));
        let result = closed.then(|| self.result_for(reason, call.person));
        let (channel, campaign) = self.attribution(number);
        let note = self.note();
        self.insert_inquiry(&InquiryRow {
            id: inquiry,
            person: call.person,
            phone: Some(call.peer),
            call: Some(call.id),
            channel,
            campaign,
            reason: Some(reason),
            source: "call",
            status: if closed { "closed" } else { "in_progress" },
            result,
            operator: Some(operator),
            note,
            created,
            first_response: call.answered.map(|a| a.min(created)),
            closed: closed_at,
        })?;
        match (result, closed_at) {
            (Some(result), Some(at)) => self.follow_up(inquiry, call.person, reason, result, at, operator),
            _ => self.call_back_task(inquiry, call.person, created, operator),
        }
    }

    /// Writes a missed call's inquiry and its "call back" task once it is
    /// known how calling back went.
    fn settle_missed(&mut self, m: Missed, callback: Callback) -> Result<()> {
        let (channel, campaign) = self.attribution(m.number);
        let (status, reason, result, closed) = match callback {
            Callback::Reached(at) => {
                let reason = self.rng.weighted(&self.r.reason_weights);
                let closed = (at + self.rng.range(0, 5) * MINUTE).min(self.now);
                ("closed", Some(reason), Some(self.result_for(reason, m.person)), Some(closed))
            }
            Callback::GaveUp(at) => ("closed", None, Some(RESULT_REFUSED), Some(at)),
            Callback::NotYet if m.attempts > 0 => ("in_progress", None, None, None),
            Callback::NotYet => ("new", None, None, None),
        };
        let note = match callback {
            Callback::GaveUp(_) => "Не удалось дозвониться",
            _ => self.note(),
        };
        self.insert_inquiry(&InquiryRow {
            id: m.inquiry,
            person: m.person,
            phone: Some(m.peer),
            call: Some(m.call),
            channel,
            campaign,
            reason,
            source: "missed_call",
            status,
            result,
            operator: m.operator,
            note,
            created: m.created,
            first_response: m.first_attempt,
            closed,
        })?;

        let deadline = m.created + 15 * MINUTE;
        let responsible = match (closed, m.operator) {
            (Some(_), operator) => operator,
            (None, Some(operator)) => Some(operator),
            (None, None) if self.rng.chance(0.5) => None,
            (None, None) => Some(self.operator()),
        };
        let description =
            format!("Пропущенный звонок с {}", Phone::from_e164_unchecked(PhoneText::new(m.peer).as_str().to_owned()));
        self.insert_task(&TaskRow {
            task_type: TASK_CALL_BACK,
            template: Some(TEMPLATE_CALL_BACK),
            title: reference::TEMPLATES[TEMPLATE_CALL_BACK].1,
            description: &description,
            responsible,
            deadline,
            remind: Some(deadline - 5 * MINUTE),
            status: match (closed, m.attempts) {
                (Some(_), _) => "done",
                (None, 0) => "open",
                (None, _) => "in_progress",
            },
            person: m.person,
            inquiry: Some(m.inquiry),
            deal: None,
            created_by: None,
            created: m.created,
            completed: closed,
            updated: closed.or(m.first_attempt).unwrap_or(m.created),
        })?;
        if let (Some(reason), Some(result), Some(at), Some(operator)) = (reason, result, closed, m.operator) {
            self.follow_up(m.inquiry, m.person, reason, result, at, operator)?;
        }
        Ok(())
    }

    /// An inquiry from the web, a messenger or the reception desk.
    fn contact(&mut self, t: Millis) -> Result<()> {
        let now = self.now;
        let (source, channel) = match self.rng.weighted(&[60, 30, 10]) {
            0 => ("web", [CHANNEL_SITE, 0, 3, 4][self.rng.weighted(&[50, 20, 15, 15])]),
            1 => ("walk_in", if self.rng.chance(0.6) { CHANNEL_OFFLINE } else { CHANNEL_REFERRAL }),
            _ => ("messenger", [3, 4, CHANNEL_SITE][self.rng.index(3)]),
        };
        let walk_in = source == "walk_in";
        let person = if walk_in || self.rng.chance(0.8) { self.pick_person(t) } else { None };
        let phone = match person {
            Some(p) => Some(self.phone_of(p)),
            None if walk_in => None,
            None => Some(*self.rng.pick(&self.unknown)),
        };
        // The reception desk takes walk-ins.
        let operator = if walk_in { self.r.operators[2] } else { self.operator() };
        let reason = self.rng.weighted(&self.r.reason_weights);
        let response = if walk_in { t } else { t + self.rng.range(5, 120) * MINUTE };
        let answered = response <= now;
        let closed = answered && self.rng.chance(if now - t < 3 * DAY { 0.85 } else { 0.995 });
        let closed_at = closed.then(|| (response + self.rng.range(1, 10) * MINUTE).min(now));
        let result = closed.then(|| self.result_for(reason, person));
        let campaign = {
            let list = &self.channel_campaigns[channel];
            (!list.is_empty() && self.rng.chance(0.3)).then(|| list[self.rng.index(list.len())])
        };
        let inquiry = self.rng.id(t);
        let note = self.note();
        self.insert_inquiry(&InquiryRow {
            id: inquiry,
            person,
            phone,
            call: None,
            channel,
            campaign,
            reason: answered.then_some(reason),
            source,
            status: match (closed, answered) {
                (true, _) => "closed",
                (false, true) => "in_progress",
                (false, false) => "new",
            },
            result,
            operator: answered.then_some(operator),
            note,
            created: t,
            first_response: answered.then_some(response),
            closed: closed_at,
        })?;
        match (result, closed_at) {
            (Some(result), Some(at)) => self.follow_up(inquiry, person, reason, result, at, operator),
            _ if answered => self.call_back_task(inquiry, person, response, operator),
            _ => Ok(()),
        }
    }

    fn insert_inquiry(&mut self, q: &InquiryRow) -> Result<()> {
        let updated = q.closed.or(q.first_response).unwrap_or(q.created);
        self.st.inquiry.execute(params![
            q.id,
            q.person.map(|p| self.people[p].id),
            q.phone.map(PhoneText::new),
            q.call,
            self.r.channels[q.channel],
            q.campaign.map(|c| self.r.campaigns[c].0),
            q.reason.map(|r| self.r.reasons[r]),
            q.source,
            q.status,
            q.result.map(|r| INQUIRY_RESULTS[r]),
            q.operator,
            q.note,
            q.created,
            q.first_response,
            q.closed,
            updated
        ])?;
        self.summary.inquiries += 1;
        Ok(())
    }

    /// What a closed inquiry leads to: a booked visit (often with a deal),
    /// a deal still being considered, results to send, papers to prepare,
    /// a promised callback.
    fn follow_up(
        &mut self,
        inquiry: Id,
        person: Option<usize>,
        reason: usize,
        result: usize,
        at: Millis,
        operator: Id,
    ) -> Result<()> {
        let Some(person) = person else { return Ok(()) };
        match result {
            RESULT_BOOKED => {
                let deal_type = (reason == REASON_BOOKING || reason == REASON_PRICES) && self.rng.chance(0.75);
                let deal_type = deal_type.then(|| if self.rng.chance(0.8) { PRIMARY } else { DIAGNOSTICS });
                self.book(person, inquiry, deal_type, at, operator)?;
            }
            RESULT_CONSULTATION if reason == REASON_PRICES && self.rng.chance(0.3) => {
                self.considered_deal(person, inquiry, at, operator)?;
            }
            RESULT_CALLBACK => self.call_back_task(inquiry, Some(person), at, operator)?,
            _ => {}
        }
        if reason == REASON_RESULTS {
            let deadline = at + 4 * HOUR;
            let (status, completed) = self.settle(at, deadline);
            let responsible = if self.rng.chance(0.4) { self.r.nurse } else { operator };
            self.insert_task(&TaskRow {
                task_type: TASK_SEND_RESULTS,
                template: Some(TEMPLATE_SEND_RESULTS),
                title: reference::TEMPLATES[TEMPLATE_SEND_RESULTS].1,
                description: "",
                responsible: Some(responsible),
                deadline,
                remind: Some(deadline - 30 * MINUTE),
                status,
                person: Some(person),
                inquiry: Some(inquiry),
                deal: None,
                created_by: Some(operator),
                created: at,
                completed,
                updated: completed.unwrap_or(at),
            })?;
        } else if reason == REASON_DOCUMENTS {
            let deadline = at + 2 * DAY;
            let (status, completed) = self.settle(at, deadline);
            let responsible = if self.rng.chance(0.3) { self.r.supervisor } else { operator };
            self.insert_task(&TaskRow {
                task_type: TASK_OTHER,
                template: Some(TEMPLATE_DOCUMENTS),
                title: reference::TEMPLATES[TEMPLATE_DOCUMENTS].1,
                description: "Справка для бассейна / налогового вычета",
                responsible: Some(responsible),
                deadline,
                remind: Some(deadline - 4 * HOUR),
                status,
                person: Some(person),
                inquiry: Some(inquiry),
                deal: None,
                created_by: Some(operator),
                created: at,
                completed,
                updated: completed.unwrap_or(at),
            })?;
        }
        Ok(())
    }

    /// "Call the patient back": promised in a conversation or left by an
    /// inquiry still in progress.
    fn call_back_task(&mut self, inquiry: Id, person: Option<usize>, at: Millis, operator: Id) -> Result<()> {
        let deadline = at + self.rng.range(2, 30) * HOUR;
        let (status, completed) = self.settle(at, deadline);
        self.insert_task(&TaskRow {
            task_type: TASK_CALL_BACK,
            template: None,
            title: "Перезвонить пациенту",
            description: "",
            responsible: Some(operator),
            deadline,
            remind: Some(deadline - 15 * MINUTE),
            status,
            person,
            inquiry: Some(inquiry),
            deal: None,
            created_by: Some(operator),
            created: at,
            completed,
            updated: completed.unwrap_or(at),
        })
    }

    /// The status of a task created at `created` with `deadline`, as of now:
    /// old ones are done, recent ones sometimes still open (overdue), future
    /// ones open.
    fn settle(&mut self, created: Millis, deadline: Millis) -> (&'static str, Option<Millis>) {
        let now = self.now;
        let done_in_time = |rng: &mut Rng| rng.range(created + MINUTE, deadline.max(created + 2 * MINUTE)).min(now);
        if deadline < now - 2 * DAY {
            if self.rng.chance(0.04) {
                ("cancelled", None)
            } else if self.rng.chance(0.85) {
                ("done", Some(done_in_time(&mut self.rng)))
            } else {
                ("done", Some((deadline + self.rng.range(1, 24 * 60) * MINUTE).min(now)))
            }
        } else if deadline < now {
            if self.rng.chance(0.7) { ("done", Some(done_in_time(&mut self.rng))) } else { ("open", None) }
        } else if created < now - HOUR && self.rng.chance(0.15) {
            ("done", Some(self.rng.range(created + MINUTE, now)))
        } else if self.rng.chance(0.1) {
            ("in_progress", None)
        } else {
            ("open", None)
        }
    }

    // Deals and visits -----------------------------------------------------

    /// Books a visit for a closed inquiry, with a deal of `deal_type` if
    /// any; its stage follows the visit as the transition rules would move it.
    fn book(&mut self, person: usize, inquiry: Id, deal_type: Option<usize>, at: Millis, operator: Id) -> Result<()> {
        let now = self.now;
        let doctor = self.rng.weighted(&self.r.doctor_weights);
        let specialty = &SPECIALTIES[self.r.doctors[doctor].specialty];
        let start = visit_slot(&mut self.rng, at);
        let duration = *self.rng.pick(&[30, 30, 30, 20, 45, 60]);
        let plan = self.plan_visit(at, start, duration, 0.12);
        let service = if deal_type == Some(DIAGNOSTICS) { specialty.diagnostics } else { specialty.first_visit };
        let deal = match deal_type {
            Some(deal_type) => {
                let end = start + duration * MINUTE;
                let paid_at = end + self.rng.range(5, 30) * MINUTE;
                let (stage, closed, updated) = match plan.status {
                    "cancelled" => (STAGE_LOST, Some(plan.changed_at), plan.changed_at),
                    "arrived"
                        if paid_at <= now && (now - end > 2 * DAY && self.rng.chance(0.92) || self.rng.chance(0.5)) =>
                    {
                        (STAGE_WON, Some(paid_at), paid_at)
                    }
                    "arrived" => (STAGE_CAME, None, plan.changed_at),
                    _ => (STAGE_BOOKED, None, at),
                };
                let price =
                    if deal_type == DIAGNOSTICS { specialty.diagnostics_price } else { specialty.first_visit_price };
                let deal = self.rng.id(at);
                self.insert_deal(&DealRow {
                    id: deal,
                    deal_type,
                    stage,
                    person: Some(person),
                    inquiry: Some(inquiry),
                    title: service,
                    amount_cents: price * 100,
                    responsible: Some(operator),
                    created: at,
                    closed,
                    updated,
                })?;
                Some(deal)
            }
            None => None,
        };
        self.insert_visit(&plan, person, doctor, deal, Some(inquiry), service, at)?;
        let after_visit = start + (duration + 15) * MINUTE;
        if plan.status == "arrived" && deal_type == Some(PRIMARY) && after_visit < now && self.rng.chance(0.22) {
            self.treatment(person, inquiry, doctor, after_visit)?;
        }
        Ok(())
    }

    /// A visit booked at `booked` for `start`: what has happened to it by
    /// now, and its "confirm visit" task (due at 18:00 the day before).
    fn plan_visit(&mut self, booked: Millis, start: Millis, duration_min: i64, cancel_p: f64) -> VisitPlan {
        let now = self.now;
        let mut plan =
            VisitPlan { start, duration_min, status: "booked", cancel_reason: None, changed_at: booked, confirm: None };
        let cancelled = self.rng.chance(if start > now { cancel_p / 3.0 } else { cancel_p });
        let cancel_at = cancelled.then(|| self.rng.range(booked + MINUTE, start.min(now).max(booked + 2 * MINUTE)));
        if let Some(at) = cancel_at {
            plan.status = "cancelled";
            plan.cancel_reason = Some(*self.rng.pick(CANCEL_REASONS));
            plan.changed_at = at.min(now);
        } else if start <= now {
            plan.status = "arrived";
            plan.changed_at = (start - self.rng.range(0, 15) * MINUTE).max(booked);
        }
        let deadline = local_day_start(start) - 6 * HOUR;
        if deadline - booked >= 2 * HOUR {
            let (status, completed, updated) = match cancel_at {
                Some(at) if at < deadline => ("cancelled", None, at.min(now)),
                _ if deadline < now => {
                    if now - deadline < 3 * DAY && self.rng.chance(0.1) {
                        ("open", None, booked)
                    } else {
                        let done = self.rng.range((deadline - 8 * HOUR).max(booked + MINUTE), deadline + 1);
                        ("done", Some(done), done)
                    }
                }
                _ if self.rng.chance(0.1) => ("in_progress", None, booked),
                _ => ("open", None, booked),
            };
            if let (Some(done), "booked") = (completed, plan.status) {
                plan.status = "confirmed";
                plan.changed_at = done;
            }
            plan.confirm = Some((booked, deadline, status, completed, updated));
        }
        plan
    }

    #[allow(clippy::too_many_arguments)]
    fn insert_visit(
        &mut self,
        plan: &VisitPlan,
        person: usize,
        doctor: usize,
        deal: Option<Id>,
        inquiry: Option<Id>,
        service: &'static str,
        booked: Millis,
    ) -> Result<()> {
        self.st.visit.execute(params![
            self.rng.id(booked),
            self.people[person].id,
            self.r.doctors[doctor].id,
            deal,
            service,
            plan.start,
            plan.duration_min,
            plan.status,
            plan.cancel_reason,
            plan.changed_at
        ])?;
        self.summary.visits += 1;
        if let Some((created, deadline, status, completed, updated)) = plan.confirm {
            let responsible = if status == "open" && self.rng.chance(0.15) { None } else { Some(self.operator()) };
            self.insert_task(&TaskRow {
                task_type: TASK_CONFIRM_VISIT,
                template: Some(TEMPLATE_CONFIRM_VISIT),
                title: reference::TEMPLATES[TEMPLATE_CONFIRM_VISIT].1,
                description: service,
                responsible,
                deadline,
                remind: Some(deadline - HOUR),
                status,
                person: Some(person),
                inquiry,
                deal,
                created_by: None,
                created,
                completed,
                updated,
            })?;
        }
        Ok(())
    }

    /// A course of treatment the doctor proposes after a first visit: a deal
    /// of its own and a series of visits.
    fn treatment(&mut self, person: usize, inquiry: Id, doctor: usize, at: Millis) -> Result<()> {
        let now = self.now;
        let specialty = &SPECIALTIES[self.r.doctors[doctor].specialty];
        let doctor_id = self.r.doctors[doctor].id;
        let (lo, hi) = specialty.treatment_price;
        let amount_cents = self.rng.range(lo / 500, hi / 500 + 1) * 500 * 100;
        let deal = self.rng.id(at);
        let mut row = DealRow {
            id: deal,
            deal_type: TREATMENT,
            stage: STAGE_NEW,
            person: Some(person),
            inquiry: Some(inquiry),
            title: specialty.treatment,
            amount_cents,
            responsible: Some(doctor_id),
            created: at,
            closed: None,
            updated: at,
        };
        if at > now - 2 * DAY && self.rng.chance(0.5) {
            // Still thinking about the plan.
            return self.insert_deal(&row);
        }

        let sessions = self.rng.range(2, 7) as usize;
        let refuse_before = self.rng.chance(0.15).then(|| self.rng.range(1, sessions as i64) as usize);
        let mut plans = Vec::with_capacity(sessions);
        let mut refused_at: Option<Millis> = None;
        let mut after = at;
        for k in 0..sessions {
            let start = visit_slot(&mut self.rng, after + 4 * DAY);
            after = start;
            if refused_at.is_none() && refuse_before == Some(k) {
                let at_refusal = (start - self.rng.range(1, 48) * HOUR).max(at + MINUTE);
                if at_refusal <= now {
                    refused_at = Some(at_refusal);
                }
            }
            let plan = match refused_at {
                Some(refused) => VisitPlan {
                    start,
                    duration_min: 45,
                    status: "cancelled",
                    cancel_reason: Some("Пациент отказался от лечения"),
                    changed_at: refused,
                    confirm: None,
                },
                None => self.plan_visit(at, start, 45, 0.03),
            };
            plans.push(plan);
        }
        let last_end = after + 45 * MINUTE;
        (row.stage, row.closed, row.updated) = match refused_at {
            Some(refused) => (STAGE_LOST, Some(refused), refused),
            None if last_end + 10 * MINUTE <= now => (STAGE_WON, Some(last_end + 10 * MINUTE), last_end + 10 * MINUTE),
            None if plans[0].start <= now => (STAGE_CAME, None, plans[0].changed_at),
            None => (STAGE_BOOKED, None, at),
        };
        self.insert_deal(&row)?;
        for plan in &plans {
            self.insert_visit(plan, person, doctor, Some(deal), Some(inquiry), specialty.treatment, at)?;
        }
        if let (STAGE_WON, Some(closed)) = (row.stage, row.closed) {
            let deadline = closed + 7 * DAY;
            let (status, completed) = self.settle(closed, deadline);
            self.insert_task(&TaskRow {
                task_type: TASK_OTHER,
                template: Some(TEMPLATE_AFTER_TREATMENT),
                title: reference::TEMPLATES[TEMPLATE_AFTER_TREATMENT].1,
                description: "Узнать самочувствие, пригласить на контрольный приём",
                responsible: Some(doctor_id),
                deadline,
                remind: Some(deadline - DAY),
                status,
                person: Some(person),
                inquiry: None,
                deal: Some(deal),
                created_by: Some(doctor_id),
                created: closed,
                completed,
                updated: completed.unwrap_or(closed),
            })?;
        }
        Ok(())
    }

    /// A patient asked about prices and is still thinking (a fresh deal), or
    /// never came back (lost after a couple of weeks).
    fn considered_deal(&mut self, person: usize, inquiry: Id, at: Millis, operator: Id) -> Result<()> {
        let now = self.now;
        let deal_type = if self.rng.chance(0.8) { PRIMARY } else { DIAGNOSTICS };
        let specialty = &SPECIALTIES[self.r.doctors[self.rng.weighted(&self.r.doctor_weights)].specialty];
        let (title, price) = if deal_type == DIAGNOSTICS {
            (specialty.diagnostics, specialty.diagnostics_price)
        } else {
            (specialty.first_visit, specialty.first_visit_price)
        };
        let (stage, closed) = if at > now - 14 * DAY {
            (STAGE_NEW, None)
        } else {
            (STAGE_LOST, Some((at + self.rng.range(3, 15) * DAY).min(now)))
        };
        let deal = self.rng.id(at);
        self.insert_deal(&DealRow {
            id: deal,
            deal_type,
            stage,
            person: Some(person),
            inquiry: Some(inquiry),
            title,
            amount_cents: price * 100,
            responsible: Some(operator),
            created: at,
            closed,
            updated: closed.unwrap_or(at),
        })
    }

    fn insert_deal(&mut self, d: &DealRow) -> Result<()> {
        self.st.deal.execute(params![
            d.id,
            self.r.deal_types[d.deal_type],
            self.r.stages[d.deal_type][d.stage],
            d.person.map(|p| self.people[p].id),
            d.inquiry,
            d.title,
            d.amount_cents,
            DEAL_TYPES[d.deal_type].1[d.stage].1,
            d.responsible,
            d.created,
            d.closed,
            d.updated
        ])?;
        self.stage_counts[d.deal_type][d.stage] += 1;
        self.summary.deals += 1;
        Ok(())
    }

    fn insert_task(&mut self, t: &TaskRow<'_>) -> Result<()> {
        self.st.task.execute(params![
            self.rng.id(t.created),
            self.r.task_types[t.task_type],
            t.template.map(|k| self.r.templates[k]),
            t.title,
            t.description,
            t.responsible,
            t.deadline,
            t.remind,
            t.status,
            t.person.map(|p| self.people[p].id),
            t.inquiry,
            t.deal,
            t.created_by,
            t.created,
            t.completed,
            t.updated
        ])?;
        self.summary.tasks += 1;
        Ok(())
    }

    // Today ----------------------------------------------------------------

    /// Work waiting for the demo operator however small the clinic: tasks
    /// overdue, due later today, due in the coming days, and in the shared
    /// queue.
    fn todays_tasks(&mut self) -> Result<()> {
        let now = self.now;
        let me = Some(self.r.operators[0]);
        let left_today = local_day_start(now) + DAY - now;
        let tomorrow_10 = local_day_start(now) + DAY + 10 * HOUR;
        let tasks: [(usize, &str, Millis, Option<Id>); 14] = [
            (TASK_CALL_BACK, "Перезвонить по пропущенному звонку", now - 40 * MINUTE, me),
            (TASK_CONFIRM_VISIT, "Подтвердить визит", now - 3 * HOUR, me),
            (TASK_SEND_RESULTS, "Отправить результаты анализов", now - DAY - 2 * HOUR, me),
            (TASK_OTHER, "Уточнить данные полиса ДМС", now - 4 * DAY, me),
            (TASK_CALL_BACK, "Перезвонить пациенту", now + left_today / 5, me),
            (TASK_CONFIRM_VISIT, "Подтвердить визит на завтра", now + left_today * 2 / 5, me),
            (TASK_SEND_RESULTS, "Отправить результаты анализов", now + left_today * 3 / 5, me),
            (TASK_OTHER, "Напомнить о подготовке к УЗИ", now + left_today * 4 / 5, me),
            (TASK_CONFIRM_VISIT, "Подтвердить визит", tomorrow_10, me),
            (TASK_OTHER, "Согласовать время с врачом", now + 3 * DAY, me),
            (TASK_CALL_BACK, "Пригласить на контрольный приём", now + 7 * DAY, me),
            (TASK_CALL_BACK, "Перезвонить по пропущенному звонку", now - 20 * MINUTE, None),
            (TASK_CALL_BACK, "Перезвонить пациенту", now + left_today / 3, None),
            (TASK_CONFIRM_VISIT, "Подтвердить визит на завтра", now + left_today * 2 / 3, None),
        ];
        for (k, (task_type, title, deadline, responsible)) in tasks.into_iter().enumerate() {
            let created = deadline.min(now) - self.rng.range(HOUR, DAY);
            let person = self.pick_person(created);
            let template = match task_type {
                TASK_CALL_BACK if title.contains("пропущенн") => Some(TEMPLATE_CALL_BACK),
                TASK_CONFIRM_VISIT => Some(TEMPLATE_CONFIRM_VISIT),
                TASK_SEND_RESULTS => Some(TEMPLATE_SEND_RESULTS),
                _ => None,
            };
            self.insert_task(&TaskRow {
                task_type,
                template,
                title,
                description: "",
                responsible,
                deadline,
                remind: Some((deadline - 30 * MINUTE).max(created)),
                status: if k == 1 { "in_progress" } else { "open" },
                person,
                inquiry: None,
                deal: None,
                created_by: Some(self.r.supervisor),
                created,
                completed: None,
                updated: created,
            })?;
        }
        Ok(())
    }

    /// However few calls there were, every stage of every pipeline has a
    /// deal to show.
    fn every_stage(&mut self) -> Result<()> {
        let now = self.now;
        for deal_type in 0..DEAL_TYPES.len() {
            for stage in 0..5 {
                if self.stage_counts[deal_type][stage] > 0 {
                    continue;
                }
                let (created, closed) = if stage == STAGE_WON || stage == STAGE_LOST {
                    let created = now - self.rng.range(20, 200) * DAY;
                    (created, Some(created + self.rng.range(1, 15) * DAY))
                } else {
                    (now - self.rng.range(1, 10) * DAY - self.rng.range(0, DAY), None)
                };
                let doctor = self.rng.weighted(&self.r.doctor_weights);
                let specialty = &SPECIALTIES[self.r.doctors[doctor].specialty];
                let (title, amount) = match deal_type {
                    TREATMENT => (specialty.treatment, specialty.treatment_price.0),
                    DIAGNOSTICS => (specialty.diagnostics, specialty.diagnostics_price),
                    _ => (specialty.first_visit, specialty.first_visit_price),
                };
                let responsible = if deal_type == TREATMENT { self.r.doctors[doctor].id } else { self.operator() };
                let person = self.pick_person(created);
                let deal = self.rng.id(created);
                self.insert_deal(&DealRow {
                    id: deal,
                    deal_type,
                    stage,
                    person,
                    inquiry: None,
                    title,
                    amount_cents: amount * 100,
                    responsible: Some(responsible),
                    created,
                    closed,
                    updated: closed.unwrap_or(created),
                })?;
            }
        }
        Ok(())
    }
}

/// An age in years: children, and adults mostly of working age.
fn sample_age(rng: &mut Rng) -> i64 {
    match rng.weighted(&[15, 20, 35, 25, 15, 5]) {
        0 => rng.range(1, 18),
        1 => rng.range(18, 30),
        2 => rng.range(30, 45),
        3 => rng.range(45, 60),
        4 => rng.range(60, 75),
        _ => rng.range(75, 91),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Wednesday 2025-03-12, 12:00 in the clinic.
    const NOW: Millis = 1_741_770_000_000;

    fn generated(seed: u64) -> (tempfile::TempDir, Replica, DemoSummary) {
        let dir = tempfile::tempdir().unwrap();
        let mut replica = Replica::open(&dir.path().join("demo.db")).unwrap();
        let opts = DemoOptions { patients: 500, calls: 2000, seed, now: NOW };
        let mut phases = Vec::new();
        let summary = generate(&mut replica, &opts, &mut |p| phases.push(p.to_owned())).unwrap();
        assert!(phases.iter().any(|p| p == "people") && phases.iter().any(|p| p == "calls"), "{phases:?}");
        (dir, replica, summary)
    }

    const TABLES: &[&str] = &[
        "org_units",
        "roles",
        "role_rights",
        "users",
        "user_rights",
        "ad_channels",
        "campaigns",
        "tracking_numbers",
        "people",
        "person_phones",
        "people_fts",
        "inquiry_reasons",
        "deal_types",
        "deal_stages",
        "auto_transition_rules",
        "task_types",
        "task_templates",
        "calls",
        "inquiries",
        "deals",
        "tasks",
        "visits",
        "global_settings",
    ];

    /// Every row of every table, as text.
    fn dump(conn: &Connection) -> Vec<String> {
        let mut out = Vec::new();
        for table in TABLES {
            let mut stmt = conn.prepare(&format!("SELECT rowid, * FROM {table} ORDER BY rowid")).unwrap();
            let columns = stmt.column_count();
            let mut rows = stmt.query([]).unwrap();
            while let Some(row) = rows.next().unwrap() {
                let values: Vec<String> =
                    (0..columns).map(|i| format!("{:?}", row.get::<_, rusqlite::types::Value>(i).unwrap())).collect();
                out.push(format!("{table}: {}", values.join("|")));
            }
        }
        out
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn same_seed_same_clinic_other_seed_other_clinic() {
        let (_d1, a, summary_a) = generated(42);
        let (_d2, b, summary_b) = generated(42);
        let (_d3, c, _) = generated(43);
        assert_eq!(summary_a, summary_b);
        let dump_a = dump(a.conn());
        assert!(dump_a.len() > 5000, "{}", dump_a.len());
        assert!(dump_a == dump(b.conn()), "same seed, different data");
        assert!(dump_a != dump(c.conn()), "different seeds, same data");
    }

    #[test]
    fn the_clinic_is_consistent_and_complete() {
        let (_dir, replica, summary) = generated(7);
        let conn = replica.conn();
        assert_eq!(summary.people, 500);
        assert_eq!(summary.calls, 2000);
        assert_eq!(summary.operator_login, "operator");
        assert_eq!(count(conn, "SELECT count(*) FROM people"), 500);
        assert_eq!(count(conn, "SELECT count(*) FROM calls"), 2000);
        assert_eq!(count(conn, "SELECT count(*) FROM inquiries") as usize, summary.inquiries);
        assert_eq!(count(conn, "SELECT count(*) FROM deals") as usize, summary.deals);
        assert_eq!(count(conn, "SELECT count(*) FROM tasks") as usize, summary.tasks);
        assert_eq!(count(conn, "SELECT count(*) FROM visits") as usize, summary.visits);
        // About one inquiry per three calls.
        assert!((500..=1000).contains(&summary.inquiries), "{summary:?}");

        let mut fk = conn.prepare("PRAGMA foreign_key_check").unwrap();
        let problems: Vec<String> = fk.query_map([], |r| r.get::<_, String>(0)).unwrap().map(|r| r.unwrap()).collect();
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(count(conn, "SELECT count(*) FROM outbox"), 0);
        let journal: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(journal, "wal");
        assert_eq!(count(conn, "SELECT count(*) FROM people_fts"), count(conn, "SELECT count(*) FROM people"));
        assert_eq!(
            count(
                conn,
                "SELECT count(*) FROM people p LEFT JOIN people_fts f ON f.rowid = p.rowid WHERE f.rowid IS NULL"
            ),
            0
        );

        // Families share a number.
        assert!(
            count(
                conn,
                "SELECT count(*) FROM (SELECT phone_e164 FROM person_phones GROUP BY phone_e164 HAVING count(*) >= 2)"
            ) > 0
        );
        // Every person can be reached.
        assert_eq!(count(conn, "SELECT count(*) FROM people WHERE id NOT IN (SELECT person_id FROM person_phones)"), 0);

        // The demo operator has work overdue and due today.
        let operator = "(SELECT id FROM users WHERE login = 'operator')";
        let open = "status IN ('open', 'in_progress')";
        let overdue = count(
            conn,
            &format!("SELECT count(*) FROM tasks WHERE responsible_id = {operator} AND {open} AND deadline_at < {NOW}"),
        );
        let day_start = local_day_start(NOW);
        let due_today = count(
            conn,
            &format!(
                "SELECT count(*) FROM tasks WHERE responsible_id = {operator} AND {open}
                 AND deadline_at >= {NOW} AND deadline_at < {}",
                day_start + DAY
            ),
        );
        assert!(overdue >= 3 && due_today >= 3, "overdue {overdue}, due today {due_today}");
        assert!(count(conn, &format!("SELECT count(*) FROM tasks WHERE responsible_id IS NULL AND {open}")) > 0);
        assert!(count(conn, &format!("SELECT count(*) FROM tasks WHERE {open} AND deadline_at > {}", NOW + DAY)) > 0);

        // Deals in every stage of every type, their status the stage's outcome.
        assert_eq!(
            count(
                conn,
                "SELECT count(*) FROM deal_stages s WHERE NOT EXISTS (SELECT 1 FROM deals d WHERE d.stage_id = s.id)"
            ),
            0
        );
        assert_eq!(
            count(
                conn,
                "SELECT count(*) FROM deals d JOIN deal_stages s ON s.id = d.stage_id WHERE d.status <> s.outcome OR d.deal_type_id <> s.deal_type_id"
            ),
            0
        );

        // Users and dictionaries.
        for login in
            ["head", "admin", "supervisor", "operator", "operator2", "operator3", "doctor1", "doctor8", "nurse1"]
        {
            assert_eq!(count(conn, &format!("SELECT count(*) FROM users WHERE login = '{login}'")), 1, "{login}");
        }
        assert_eq!(count(conn, "SELECT count(*) FROM roles"), 6);
        assert_eq!(
            count(conn, "SELECT CAST(value AS INTEGER) FROM global_settings WHERE key = 'missed_call_deadline_min'"),
            15
        );

        // Times make sense.
        assert_eq!(
            count(
                conn,
                &format!("SELECT count(*) FROM calls WHERE started_at > {NOW} OR started_at < {NOW} - 731 * 86400000")
            ),
            0
        );
        assert_eq!(
            count(conn, "SELECT count(*) FROM calls WHERE answered_at < started_at OR ended_at < answered_at"),
            0
        );
        assert_eq!(count(conn, "SELECT count(*) FROM calls WHERE result = 'answered' AND answered_at IS NULL"), 0);
        assert_eq!(count(conn, "SELECT count(*) FROM calls WHERE direction = 'in' AND did_e164 IS NULL"), 0);
        assert!(count(conn, "SELECT count(*) FROM calls WHERE person_id IS NULL") > 100);
        assert_eq!(
            count(
                conn,
                "SELECT count(*) FROM inquiries WHERE closed_at < created_at OR first_response_at < created_at AND source <> 'call'"
            ),
            0
        );
        assert_eq!(count(conn, "SELECT count(*) FROM inquiries WHERE (status = 'closed') <> (result IS NOT NULL)"), 0);
        assert_eq!(
            count(
                conn,
                &format!(
                    "SELECT count(*) FROM visits WHERE starts_at > {NOW} AND status NOT IN ('booked', 'confirmed', 'cancelled')"
                )
            ),
            0
        );
        assert_eq!(
            count(
                conn,
                &format!(
                    "SELECT count(*) FROM visits WHERE starts_at <= {NOW} AND status NOT IN ('arrived', 'cancelled')"
                )
            ),
            0
        );
        assert!(count(conn, &format!("SELECT count(*) FROM visits WHERE starts_at > {NOW}")) > 0);
        for table in ["calls", "inquiries", "deals", "tasks", "visits", "people"] {
            assert_eq!(
                count(
                    conn,
                    &format!(
                        "SELECT count(*) FROM {table} WHERE updated_at > {NOW} OR row_version <> 1 OR deleted_at IS NOT NULL"
                    )
                ),
                0,
                "{table}"
            );
        }
        assert_eq!(count(conn, "SELECT count(*) FROM tasks WHERE status = 'done' AND completed_at IS NULL"), 0);

        // Russian and Ukrainian patients, the right phones for each.
        let ua = count(conn, "SELECT count(*) FROM person_phones WHERE phone_e164 LIKE '+380%' AND kind = 'mobile'");
        let ru = count(conn, "SELECT count(*) FROM person_phones WHERE phone_e164 LIKE '+79%' AND kind = 'mobile'");
        assert!(ua > 50 && ru > 2 * ua, "ua {ua}, ru {ru}");
        assert!(count(conn, "SELECT count(*) FROM people WHERE last_name = 'Иванова' AND sex = 'm'") == 0);
    }

    #[test]
    fn another_open_connection_only_slows_the_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo.db");
        let mut replica = Replica::open(&path).unwrap();
        let reader = Replica::open_read_only(&path).unwrap();
        assert_eq!(count(reader.conn(), "SELECT count(*) FROM people"), 0);
        let opts = DemoOptions { patients: 50, calls: 200, seed: 1, now: NOW };
        generate(&mut replica, &opts, &mut |_| {}).unwrap();
        assert_eq!(count(reader.conn(), "SELECT count(*) FROM people"), 50);
        let journal: String = replica.conn().pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(journal, "wal");
    }

    #[test]
    fn a_filled_replica_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut replica = Replica::open(&dir.path().join("demo.db")).unwrap();
        let opts = DemoOptions { patients: 20, calls: 50, seed: 1, now: NOW };
        generate(&mut replica, &opts, &mut |_| {}).unwrap();
        let err = generate(&mut replica, &opts, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("already has data"), "{err}");
        assert_eq!(count(replica.conn(), "SELECT count(*) FROM people"), 20);
    }
}
