//! Every report's figures on a small clinic made by hand, with the expected
//! numbers worked out in the comments. This file holds the clinic and the
//! helpers; each report's tests have a file of their own (`calls.rs`,
//! `missed.rs`, ...), the calendar's and the shared request checks too.
//!
//! The clinic: operators ann and bob, a doctor; channels Search (tracking
//! number D1, campaign Dentistry) and Maps (number D2); the report period
//! is 2026-03-10..2026-03-11 (UTC unless a test says otherwise), so the
//! previous period is 2026-03-08..2026-03-09.
//!
//! Calls of the period (times UTC; answer and end in seconds after start):
//!
//! | id  | dir | peer | did | op  | start            | answer | end | result   |
//! |-----|-----|------|-----|-----|------------------|--------|-----|----------|
//! | c1  | in  | P7   | D1  | ann | 03-10 09:00:00   | 10     | 130 | answered |
//! | c2  | in  | P8   | D2  | bob | 03-10 10:00:00   | 30     | 90  | answered |
//! | c3  | in  | P1   | D1  |     | 03-10 11:00:00   |        | 20  | missed   |
//! | c4  | in  | P1   | D1  |     | 03-10 11:05:00   |        | 20  | missed   |
//! | c5  | out | P1   |     | ann | 03-10 11:10:00   | 5      | 65  | answered |
//! | c6  | in  | P6   | D2  |     | 03-11 12:00:00   |        | 2   | busy     |
//! | c7  | in  | P2   | D2  |     | 03-11 13:00:00   |        | 20  | missed   |
//! | c14 | in  | P5   | D2  |     | 03-11 14:00:00   |        | 20  | missed   |
//! | c8  | in  | P2   | D2  | bob | 03-11 15:00:00   | 20     | 200 | answered |
//! | c11 | out | P9   |     | bob | 03-11 17:00:00   |        | 30  | missed   |
//! | c9  | in  | P3   | D1  |     | 03-11 23:59:00   |        | 20  | missed   |
//! | c10 | in  | P7   | D1  | ann | 03-11 16:00:00   | 5      | 65  | answered | deleted
//!
//! Previous period: p1 in D1 ann 03-09 09:00 (answer 40, end 100), p2 in
//! missed from P4 03-09 10:00, c13 out to P4 by ann 03-09 10:20 (answer 10,
//! end 40). After both periods: c15 out to P3 by ann 03-13 10:00.

use chrono::{NaiveDate, NaiveDateTime};
use chrono_tz::Tz;
use rusqlite::Connection;

use super::query::Quantile;
use super::*;
use crate::crm::RoleCode;
use crate::store::Replica;

const D1: &str = "+74950000001";
const D2: &str = "+74950000002";

type CallData = (
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
    Option<i64>,
    i64,
    &'static str,
);

const CALLS: &[CallData] = &[
    ("c1", "in", "+79990000007", Some(D1), Some("u-ann"), "2026-03-10 09:00:00", Some(10), 130, "answered"),
    ("c2", "in", "+79990000008", Some(D2), Some("u-bob"), "2026-03-10 10:00:00", Some(30), 90, "answered"),
    ("c3", "in", "+79990000001", Some(D1), None, "2026-03-10 11:00:00", None, 20, "missed"),
    ("c4", "in", "+79990000001", Some(D1), None, "2026-03-10 11:05:00", None, 20, "missed"),
    ("c5", "out", "+79990000001", None, Some("u-ann"), "2026-03-10 11:10:00", Some(5), 65, "answered"),
    ("c6", "in", "+79990000006", Some(D2), None, "2026-03-11 12:00:00", None, 2, "busy"),
    ("c7", "in", "+79990000002", Some(D2), None, "2026-03-11 13:00:00", None, 20, "missed"),
    ("c14", "in", "+79990000005", Some(D2), None, "2026-03-11 14:00:00", None, 20, "missed"),
    ("c8", "in", "+79990000002", Some(D2), Some("u-bob"), "2026-03-11 15:00:00", Some(20), 200, "answered"),
    ("c11", "out", "+79990000009", None, Some("u-bob"), "2026-03-11 17:00:00", None, 30, "missed"),
    ("c9", "in", "+79990000003", Some(D1), None, "2026-03-11 23:59:00", None, 20, "missed"),
    ("c10", "in", "+79990000007", Some(D1), Some("u-ann"), "2026-03-11 16:00:00", Some(5), 65, "answered"),
    ("p1", "in", "+79990000007", Some(D1), Some("u-ann"), "2026-03-09 09:00:00", Some(40), 100, "answered"),
    ("p2", "in", "+79990000004", Some(D1), None, "2026-03-09 10:00:00", None, 20, "missed"),
    ("c13", "out", "+79990000004", None, Some("u-ann"), "2026-03-09 10:20:00", Some(10), 40, "answered"),
    ("c15", "out", "+79990000003", None, Some("u-ann"), "2026-03-13 10:00:00", Some(5), 35, "answered"),
];

/// id, created, call, source, channel, campaign, reason, operator, status,
/// result, first response, closed.
type InquiryData = (
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Option<&'static str>,
);

// Inquiries of the period (i7 is deleted) and of the previous one (i8, i9).
// Times to the first response and to closing, in seconds (a response before
// the inquiry was written counts as 0):
//   i1 0 / 600, i2 1800 / 3600, i3 585 / 1200, i4 600 / open, i5 - / open,
//   i6 0 / 1800; i8 0 / 1200, i9 3600 / 3600.
const INQUIRIES: &[InquiryData] = &[
    (
        "i1",
        "2026-03-10 09:02:00",
        Some("c1"),
        "call",
        Some("ch-search"),
        Some("cp-dent"),
        Some("rs-book"),
        Some("u-ann"),
        "closed",
        Some("booked"),
        Some("2026-03-10 09:00:10"),
        Some("2026-03-10 09:12:00"),
    ),
    (
        "i2",
        "2026-03-10 10:00:00",
        None,
        "web",
        Some("ch-maps"),
        None,
        Some("rs-price"),
        Some("u-bob"),
        "closed",
        Some("consultation"),
        Some("2026-03-10 10:30:00"),
        Some("2026-03-10 11:00:00"),
    ),
    (
        "i3",
        "2026-03-10 11:00:20",
        Some("c3"),
        "missed_call",
        Some("ch-search"),
        Some("cp-dent"),
        None,
        Some("u-ann"),
        "closed",
        Some("booked"),
        Some("2026-03-10 11:10:05"),
        Some("2026-03-10 11:20:20"),
    ),
    (
        "i4",
        "2026-03-11 13:00:00",
        None,
        "messenger",
        Some("ch-maps"),
        None,
        Some("rs-book"),
        Some("u-bob"),
        "in_progress",
        None,
        Some("2026-03-11 13:10:00"),
        None,
    ),
    (
        "i5",
        "2026-03-11 14:00:00",
        Some("c14"),
        "missed_call",
        Some("ch-maps"),
        None,
        None,
        None,
        "new",
        None,
        None,
        None,
    ),
    (
        "i6",
        "2026-03-11 09:00:00",
        None,
        "walk_in",
        Some("ch-search"),
        None,
        Some("rs-book"),
        Some("u-ann"),
        "closed",
        Some("refused"),
        Some("2026-03-11 09:00:00"),
        Some("2026-03-11 09:30:00"),
    ),
    (
        "i7",
        "2026-03-10 12:00:00",
        None,
        "web",
        Some("ch-search"),
        Some("cp-dent"),
        Some("rs-book"),
        Some("u-ann"),
        "closed",
        Some("booked"),
        Some("2026-03-10 12:00:00"),
        Some("2026-03-10 12:10:00"),
    ),
    (
        "i8",
        "2026-03-09 09:02:00",
        Some("p1"),
        "call",
        Some("ch-search"),
        Some("cp-dent"),
        Some("rs-book"),
        Some("u-ann"),
        "closed",
        Some("booked"),
        Some("2026-03-09 09:02:00"),
        Some("2026-03-09 09:22:00"),
    ),
    (
        "i9",
        "2026-03-08 15:00:00",
        None,
        "web",
        Some("ch-maps"),
        None,
        Some("rs-price"),
        Some("u-bob"),
        "closed",
        Some("spam"),
        Some("2026-03-08 16:00:00"),
        Some("2026-03-08 16:00:00"),
    ),
];

// Deals: id, inquiry, type, stage, status, amount (cents). d4 is deleted;
// i1 also has a lost d6 (still one inquiry "with a deal").
const DEALS: &[(&str, &str, &str, &str, &str, i64)] = &[
    ("d1", "i1", "dt-primary", "st-p-won", "won", 150_000),
    ("d2", "i3", "dt-primary", "st-p-open", "open", 80_000),
    ("d3", "i2", "dt-diag", "st-d-won", "won", 50_000),
    ("d4", "i6", "dt-primary", "st-p-won", "won", 100_000),
    ("d5", "i8", "dt-primary", "st-p-won", "won", 120_000),
    ("d6", "i1", "dt-diag", "st-d-lost", "lost", 0),
];

// Visits: id, deal, status. v5 (deleted) would make d3 "visit arrived".
const VISITS: &[(&str, &str, &str)] =
    &[("v1", "d1", "arrived"), ("v2", "d2", "booked"), ("v4", "d5", "arrived"), ("v5", "d3", "arrived")];

fn utc(text: &str) -> Millis {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").expect("a test time").and_utc().timestamp_millis()
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a test day")
}

fn exec(conn: &Connection, sql: &str) {
    conn.execute_batch(sql).unwrap_or_else(|e| panic!("{e}: {sql}"));
}

/// A new replica with the clinic's dictionaries and no calls.
fn empty_clinic() -> (tempfile::TempDir, Replica) {
    let dir = tempfile::tempdir().unwrap();
    let r = Replica::open(&dir.path().join("r.sqlite")).unwrap();
    exec(
        r.conn(),
        "INSERT INTO roles (id, code, name, updated_at) VALUES
             ('r-op', 'operator', 'Operator', 0), ('r-doc', 'doctor', 'Doctor', 0);
         INSERT INTO users (id, login, full_name, role_id, updated_at) VALUES
             ('u-ann', 'ann', 'Ann A', 'r-op', 0), ('u-bob', 'bob', 'Bob B', 'r-op', 0),
             ('u-doc', 'doc', 'Doc D', 'r-doc', 0);
         INSERT INTO ad_channels (id, name, kind, updated_at) VALUES
             ('ch-search', 'Search', 'search', 0), ('ch-maps', 'Maps', 'maps', 0);
         -- Dentistry: 3,100.00 over the 31 days of March = 100.00 a day. Kids:
         -- 500.00 over 02-24..03-05 (10 days) = 50.00 a day. Billboard: 110.00
         -- from 03-01, no end (runs until the report's day). Old: deleted.
         INSERT INTO campaigns (id, channel_id, name, budget_cents, starts_on, ends_on, updated_at, deleted_at) VALUES
             ('cp-dent', 'ch-search', 'Dentistry', 310000, '2026-03-01', '2026-03-31', 0, NULL),
             ('cp-kids', 'ch-maps', 'Kids', 50000, '2026-02-24', '2026-03-05', 0, NULL),
             ('cp-bill', 'ch-maps', 'Billboard', 11000, '2026-03-01', NULL, 0, NULL),
             ('cp-old', 'ch-maps', 'Old', 99900, '2026-03-01', '2026-03-31', 0, 1);
         INSERT INTO tracking_numbers (id, did_e164, channel_id, campaign_id, updated_at) VALUES
             ('tn1', '+74950000001', 'ch-search', 'cp-dent', 0), ('tn2', '+74950000002', 'ch-maps', NULL, 0);
         INSERT INTO inquiry_reasons (id, name, updated_at) VALUES
             ('rs-book', 'Booking', 0), ('rs-price', 'Prices', 0);
         INSERT INTO deal_types (id, name, updated_at) VALUES
             ('dt-primary', 'Primary', 0), ('dt-diag', 'Diagnostics', 0);
         INSERT INTO deal_stages (id, deal_type_id, name, position, outcome, updated_at) VALUES
             ('st-p-open', 'dt-primary', 'Booked', 1, 'open', 0), ('st-p-won', 'dt-primary', 'Paid', 2, 'won', 0),
             ('st-d-won', 'dt-diag', 'Paid', 1, 'won', 0), ('st-d-lost', 'dt-diag', 'Lost', 2, 'lost', 0);
         INSERT INTO people (id, last_name, first_name, created_at, updated_at) VALUES ('p1', 'Patient', 'Pat', 0, 0);",
    );
    (dir, r)
}

fn insert_calls(conn: &Connection, calls: &[CallData]) {
    let mut stmt = conn
        .prepare(
            "INSERT INTO calls (id, direction, peer_e164, did_e164, operator_id, started_at, answered_at, ended_at,
                                result, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        )
        .unwrap();
    for (id, dir, peer, did, op, start, answer, end, result) in calls {
        let start = utc(start);
        stmt.execute(rusqlite::params![
            id,
            dir,
            peer,
            did,
            op,
            start,
            answer.map(|s| start + s * 1000),
            start + end * 1000,
            result
        ])
        .unwrap();
    }
}

/// The whole clinic of the module's comment.
fn clinic() -> (tempfile::TempDir, Replica) {
    let (dir, r) = empty_clinic();
    let conn = r.conn();
    insert_calls(conn, CALLS);
    exec(conn, "UPDATE calls SET deleted_at = 1 WHERE id = 'c10'");
    let mut stmt = conn
        .prepare(
            "INSERT INTO inquiries (id, created_at, call_id, source, channel_id, campaign_id, reason_id, operator_id,
                                    status, result, first_response_at, closed_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        )
        .unwrap();
    for (id, created, call, source, channel, campaign, reason, op, status, result, response, closed) in INQUIRIES {
        stmt.execute(rusqlite::params![
            id,
            utc(created),
            call,
            source,
            channel,
            campaign,
            reason,
            op,
            status,
            result,
            response.map(utc),
            closed.map(utc)
        ])
        .unwrap();
    }
    drop(stmt);
    exec(conn, "UPDATE inquiries SET deleted_at = 1 WHERE id = 'i7'");
    for (id, inquiry, deal_type, stage, status, amount) in DEALS {
        conn.execute(
            "INSERT INTO deals (id, deal_type_id, stage_id, person_id, inquiry_id, title, amount_cents, status,
                                created_at, updated_at)
             VALUES (?, ?, ?, 'p1', ?, 'Deal', ?, ?, 0, 0)",
            rusqlite::params![id, deal_type, stage, inquiry, amount, status],
        )
        .unwrap();
    }
    exec(conn, "UPDATE deals SET deleted_at = 1 WHERE id = 'd4'");
    for (id, deal, status) in VISITS {
        conn.execute(
            "INSERT INTO visits (id, person_id, doctor_id, deal_id, starts_at, status, updated_at)
             VALUES (?, 'p1', 'u-doc', ?, 0, ?, 0)",
            rusqlite::params![id, deal, status],
        )
        .unwrap();
    }
    exec(conn, "UPDATE visits SET deleted_at = 1 WHERE id = 'v5'");
    (dir, r)
}

fn request(kind: Kind, from: &str, to: &str) -> Request {
    Request {
        kind,
        from: day(from),
        to: day(to),
        by: None,
        filters: Filters::default(),
        zone: Tz::UTC,
        now: utc("2026-03-11 12:00:00"),
    }
}

fn period(kind: Kind) -> Request {
    request(kind, "2026-03-10", "2026-03-11")
}

fn report(r: &Replica, req: &Request) -> Report {
    run(r.conn(), req).unwrap_or_else(|e| panic!("{e}"))
}

fn row<'a>(report: &'a Report, key: &str) -> &'a Metrics {
    &report.rows.iter().find(|r| r.key == key).unwrap_or_else(|| panic!("no row {key} in {:?}", report.rows)).metrics
}

/// The keys of a report's rows, in order.
fn keys(rep: &Report) -> Vec<&str> {
    rep.rows.iter().map(|r| r.key.as_str()).collect()
}

/// Sets a global setting (`value` is its JSON text).
fn set_global(conn: &Connection, key: &str, value: &str) {
    conn.execute("INSERT INTO global_settings (id, key, value, updated_at) VALUES ('g1', ?, ?, 0)", [key, value])
        .unwrap();
}

/// An expected figure that must be absent (a ratio over nothing): the
/// report gives `None` for it, never NaN.
const NO_VALUE: f64 = f64::NAN;

/// Every metric of each of `columns` (a row, the total, the previous
/// period...), in order, against the expected figures: one line per metric,
/// one figure per column ([`NO_VALUE`]: none).
fn check<const K: usize>(columns: [&Metrics; K], expected: &[(&str, [f64; K])]) {
    let names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    for (column, m) in columns.iter().enumerate() {
        assert_eq!(m.names(), names, "column {column}: the metrics and their order");
        for (name, want) in expected {
            let want = want[column];
            let got = m.get(name).and_then(Value::number);
            match got {
                Some(g) if !want.is_nan() => assert!((g - want).abs() < 1e-9, "column {column}, {name}: {g} ≠ {want}"),
                None if want.is_nan() => {}
                _ => panic!("column {column}, {name}: {got:?} ≠ {want:?}"),
            }
        }
    }
}

mod calendar;
mod calls;
mod funnel;
mod inquiries;
mod marketing;
mod missed;
mod operators;
mod requests;
mod speed;
