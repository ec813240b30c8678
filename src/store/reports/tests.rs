//! Every report's figures on a small clinic made by hand, with the expected
//! numbers worked out in the comments.
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

/// Every metric, in order, against the expected figures (none: `None`).
fn check(m: &Metrics, expected: &[(&str, Option<f64>)]) {
    let names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(m.names(), names, "the metrics and their order");
    for (name, want) in expected {
        let got = m.get(name).and_then(Value::number);
        match (got, want) {
            (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{name}: {g} ≠ {w}"),
            (None, None) => {}
            _ => panic!("{name}: {got:?} ≠ {want:?}"),
        }
    }
}

fn n(x: f64) -> Option<f64> {
    Some(x)
}

#[test]
fn calls_figures_by_day_with_the_previous_period() {
    let (_d, r) = clinic();
    let rep = report(&r, &period(Kind::Calls));
    assert_eq!(rep.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["2026-03-10", "2026-03-11"]);
    // 03-10: in c1 c2 c3 c4, out c5; answered c1 (10 s) c2 (30 s): within
    // 20 s 1 of 2; answer (10+30)/2 = 20; talk (120+60)/2 = 90.
    check(
        row(&rep, "2026-03-10"),
        &[
            ("inbound", n(4.0)),
            ("outbound", n(1.0)),
            ("answered", n(2.0)),
            ("missed", n(2.0)),
            ("busy", n(0.0)),
            ("failed", n(0.0)),
            ("outbound_answered", n(1.0)),
            ("missed_rate", n(0.5)),
            ("service_level", n(0.5)),
            ("avg_answer_s", n(20.0)),
            ("avg_handle_s", n(90.0)),
        ],
    );
    // 03-11: in c6 c7 c14 c8 c9 (c10 deleted), out c11 (not answered);
    // answered c8 at exactly 20 s (within: ≤ T), talk 180.
    check(
        row(&rep, "2026-03-11"),
        &[
            ("inbound", n(5.0)),
            ("outbound", n(1.0)),
            ("answered", n(1.0)),
            ("missed", n(3.0)),
            ("busy", n(1.0)),
            ("failed", n(0.0)),
            ("outbound_answered", n(0.0)),
            ("missed_rate", n(0.6)),
            ("service_level", n(1.0)),
            ("avg_answer_s", n(20.0)),
            ("avg_handle_s", n(180.0)),
        ],
    );
    // Total: 9 in, 2 out, 3 answered, 5 missed: 5/9; within 20 s: c1, c8 of
    // 3; answer (10+30+20)/3 = 20; talk (120+60+180)/3 = 120.
    check(
        &rep.total,
        &[
            ("inbound", n(9.0)),
            ("outbound", n(2.0)),
            ("answered", n(3.0)),
            ("missed", n(5.0)),
            ("busy", n(1.0)),
            ("failed", n(0.0)),
            ("outbound_answered", n(1.0)),
            ("missed_rate", n(5.0 / 9.0)),
            ("service_level", n(2.0 / 3.0)),
            ("avg_answer_s", n(20.0)),
            ("avg_handle_s", n(120.0)),
        ],
    );
    // Previous (03-08..03-09): p1 answered at 40 s, talk 60; p2 missed;
    // c13 out answered.
    check(
        &rep.previous,
        &[
            ("inbound", n(2.0)),
            ("outbound", n(1.0)),
            ("answered", n(1.0)),
            ("missed", n(1.0)),
            ("busy", n(0.0)),
            ("failed", n(0.0)),
            ("outbound_answered", n(1.0)),
            ("missed_rate", n(0.5)),
            ("service_level", n(0.0)),
            ("avg_answer_s", n(40.0)),
            ("avg_handle_s", n(60.0)),
        ],
    );
    check(
        &rep.delta(),
        &[
            ("inbound", n(7.0)),
            ("outbound", n(1.0)),
            ("answered", n(2.0)),
            ("missed", n(4.0)),
            ("busy", n(1.0)),
            ("failed", n(0.0)),
            ("outbound_answered", n(0.0)),
            ("missed_rate", n(5.0 / 9.0 - 0.5)),
            ("service_level", n(2.0 / 3.0)),
            ("avg_answer_s", n(-20.0)),
            ("avg_handle_s", n(60.0)),
        ],
    );
    assert_eq!((rep.previous_from, rep.previous_to), (day("2026-03-08"), day("2026-03-09")));
}

#[test]
fn the_service_level_threshold_is_a_global_setting() {
    let (_d, r) = clinic();
    // T = 30 s: c2 (30 s) is now within too: 3 of 3.
    exec(
        r.conn(),
        "INSERT INTO global_settings (id, key, value, updated_at) VALUES ('g1', 'service_level_s', '30', 0)",
    );
    let rep = report(&r, &period(Kind::Calls));
    assert_eq!(rep.total.get("service_level"), Some(Value::Ratio(Some(1.0))));
}

#[test]
fn calls_by_operator_and_channel_and_filtered() {
    let (_d, r) = clinic();
    let mut req = period(Kind::Calls);
    req.by = Some(Breakdown::Operator);
    let rep = report(&r, &req);
    assert_eq!(rep.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["ann", "bob", NONE_KEY]);
    // ann: c1 in answered, c5 out; bob: c2 c8 in answered, c11 out; nobody:
    // c3 c4 c6 c7 c9 c14 (5 missed, 1 busy).
    assert_eq!(row(&rep, "ann").get("inbound"), Some(Value::Count(1)));
    assert_eq!(row(&rep, "bob").get("answered"), Some(Value::Count(2)));
    assert_eq!(row(&rep, NONE_KEY).get("missed"), Some(Value::Count(5)));
    assert_eq!(row(&rep, NONE_KEY).get("service_level"), Some(Value::Ratio(None)), "nothing answered");

    // The channel of the number dialled: Maps (D2) c2 c6 c7 c8 c14, Search
    // (D1) c1 c3 c4 c9, none (outbound) c5 c11.
    req.by = Some(Breakdown::Channel);
    let rep = report(&r, &req);
    assert_eq!(rep.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["Maps", "Search", NONE_KEY]);
    assert_eq!(row(&rep, "Search").get("inbound"), Some(Value::Count(4)));
    assert_eq!(row(&rep, NONE_KEY).get("outbound"), Some(Value::Count(2)));

    // --channel Maps: in c2 c6 c7 c8 c14; answered c2 (30 s, talk 60) and c8
    // (20 s, talk 180): service level 1/2, answer 25, talk 120; missed 2/5.
    req.by = None;
    req.filters.channel = Some("maps".into());
    let rep = report(&r, &req);
    check(
        &rep.total,
        &[
            ("inbound", n(5.0)),
            ("outbound", n(0.0)),
            ("answered", n(2.0)),
            ("missed", n(2.0)),
            ("busy", n(1.0)),
            ("failed", n(0.0)),
            ("outbound_answered", n(0.0)),
            ("missed_rate", n(0.4)),
            ("service_level", n(0.5)),
            ("avg_answer_s", n(25.0)),
            ("avg_handle_s", n(120.0)),
        ],
    );
    // --operator ann: c1 and c5 now; p1 and c13 before.
    req.filters = Filters { operator: Some("ann".into()), ..Filters::default() };
    let rep = report(&r, &req);
    assert_eq!(rep.total.get("inbound"), Some(Value::Count(1)));
    assert_eq!(rep.total.get("outbound"), Some(Value::Count(1)));
    assert_eq!(rep.total.get("avg_answer_s"), Some(Value::Seconds(Some(10.0))));
    assert_eq!(rep.previous.get("avg_answer_s"), Some(Value::Seconds(Some(40.0))));
    assert_eq!(rep.delta().get("avg_answer_s"), Some(Value::Seconds(Some(-30.0))));
    // --campaign Dentistry: the calls to its number D1: c1 c3 c4 c9.
    req.filters = Filters { campaign: Some("Dentistry".into()), ..Filters::default() };
    assert_eq!(report(&r, &req).total.get("inbound"), Some(Value::Count(4)));
}

#[test]
fn a_period_without_calls_divides_by_nothing() {
    let (_d, r) = clinic();
    let rep = report(&r, &request(Kind::Calls, "2026-01-01", "2026-01-31"));
    assert_eq!(rep.rows.len(), 31, "every day, even empty");
    for m in rep.rows.iter().map(|r| &r.metrics).chain([&rep.total, &rep.previous]) {
        check(
            m,
            &[
                ("inbound", n(0.0)),
                ("outbound", n(0.0)),
                ("answered", n(0.0)),
                ("missed", n(0.0)),
                ("busy", n(0.0)),
                ("failed", n(0.0)),
                ("outbound_answered", n(0.0)),
                ("missed_rate", None),
                ("service_level", None),
                ("avg_answer_s", None),
                ("avg_handle_s", None),
            ],
        );
    }
    assert_eq!(rep.delta().get("missed_rate"), Some(Value::Ratio(None)));
    let json = rep.to_json(false);
    assert_eq!(json["total"]["missed_rate"], serde_json::Value::Null);
    assert_eq!(json["rows"][0]["service_level"], serde_json::Value::Null);
    assert_eq!(Value::Ratio(None).display(), "—");
    // Every other kind too.
    for kind in Kind::ALL {
        let rep = report(&r, &request(*kind, "2026-01-01", "2026-01-31"));
        for (name, v) in &rep.total.0 {
            if let Some(x) = v.number() {
                assert!(x.is_finite(), "{kind} {name} = {x}");
            }
        }
    }
    let rep = report(&r, &request(Kind::Speed, "2026-01-01", "2026-01-31"));
    assert_eq!(rep.total.get("first_response_median_s"), Some(Value::Seconds(None)));
    let rep = report(&r, &request(Kind::Marketing, "2026-01-01", "2026-01-31"));
    assert_eq!(rep.total.get("romi"), Some(Value::Ratio(None)), "no spend");
    assert_eq!(rep.total.get("cost_per_won"), Some(Value::Money(None)));
}

#[test]
fn missed_calls_per_caller_day_and_call_backs() {
    let (_d, r) = clinic();
    let rep = report(&r, &period(Kind::Missed));
    // Caller-days: P1 on 03-10 (c3, c4 merged), first missed 11:00, called
    // back by c5 at 11:10: 10 min, ≤ 15 min. 03-11: P2 (c7 13:00, got
    // through on c8 at 15:00: 2 h, ≤ 24 h), P5 (c14: never), P3 (c9 23:59,
    // called back by c15 on 03-13 10:00: 34 h, later).
    check(
        row(&rep, "2026-03-10"),
        &[
            ("missed_calls", n(2.0)),
            ("missed_callers", n(1.0)),
            ("callback_15m", n(1.0)),
            ("callback_24h", n(0.0)),
            ("callback_later", n(0.0)),
            ("callback_never", n(0.0)),
            ("callback_rate", n(1.0)),
        ],
    );
    check(
        row(&rep, "2026-03-11"),
        &[
            ("missed_calls", n(3.0)),
            ("missed_callers", n(3.0)),
            ("callback_15m", n(0.0)),
            ("callback_24h", n(1.0)),
            ("callback_later", n(1.0)),
            ("callback_never", n(1.0)),
            ("callback_rate", n(2.0 / 3.0)),
        ],
    );
    check(
        &rep.total,
        &[
            ("missed_calls", n(5.0)),
            ("missed_callers", n(4.0)),
            ("callback_15m", n(1.0)),
            ("callback_24h", n(1.0)),
            ("callback_later", n(1.0)),
            ("callback_never", n(1.0)),
            ("callback_rate", n(0.75)),
        ],
    );
    // Previous: p2 from P4 at 10:00, called back by c13 at 10:20 (20 min).
    check(
        &rep.previous,
        &[
            ("missed_calls", n(1.0)),
            ("missed_callers", n(1.0)),
            ("callback_15m", n(0.0)),
            ("callback_24h", n(1.0)),
            ("callback_later", n(0.0)),
            ("callback_never", n(0.0)),
            ("callback_rate", n(1.0)),
        ],
    );
    assert_eq!(rep.delta().get("missed_callers"), Some(Value::Count(3)));
    // By channel: Search (D1): P1's day and P3's; Maps (D2): P2 and P5.
    let mut req = period(Kind::Missed);
    req.by = Some(Breakdown::Channel);
    let rep = report(&r, &req);
    assert_eq!(row(&rep, "Search").get("missed_calls"), Some(Value::Count(3)));
    assert_eq!(row(&rep, "Search").get("missed_callers"), Some(Value::Count(2)));
    assert_eq!(row(&rep, "Maps").get("callback_never"), Some(Value::Count(1)));
    assert_eq!(rep.total.get("missed_callers"), Some(Value::Count(4)));
}

#[test]
fn inquiries_by_source_result_reason_and_channel() {
    let (_d, r) = clinic();
    let rep = report(&r, &period(Kind::Inquiries));
    // i1..i6 (i7 deleted): call i1; missed call i3 i5; web i2; walk-in i6;
    // messenger i4; booked i1 i3, consultation i2, refused i6, no result i4
    // i5; open i4 i5.
    check(
        &rep.total,
        &[
            ("inquiries", n(6.0)),
            ("source_call", n(1.0)),
            ("source_missed_call", n(2.0)),
            ("source_web", n(1.0)),
            ("source_walk_in", n(1.0)),
            ("source_messenger", n(1.0)),
            ("result_booked", n(2.0)),
            ("result_consultation", n(1.0)),
            ("result_callback", n(0.0)),
            ("result_refused", n(1.0)),
            ("result_spam", n(0.0)),
            ("result_none", n(2.0)),
            ("open", n(2.0)),
        ],
    );
    // Previous: i8 (call, booked), i9 (web, spam).
    check(
        &rep.previous,
        &[
            ("inquiries", n(2.0)),
            ("source_call", n(1.0)),
            ("source_missed_call", n(0.0)),
            ("source_web", n(1.0)),
            ("source_walk_in", n(0.0)),
            ("source_messenger", n(0.0)),
            ("result_booked", n(1.0)),
            ("result_consultation", n(0.0)),
            ("result_callback", n(0.0)),
            ("result_refused", n(0.0)),
            ("result_spam", n(1.0)),
            ("result_none", n(0.0)),
            ("open", n(0.0)),
        ],
    );
    assert_eq!(rep.delta().get("inquiries"), Some(Value::Count(4)));
    assert_eq!(row(&rep, "2026-03-10").get("inquiries"), Some(Value::Count(3)));
    assert_eq!(row(&rep, "2026-03-11").get("inquiries"), Some(Value::Count(3)));

    let mut req = period(Kind::Inquiries);
    req.by = Some(Breakdown::Reason);
    let rep = report(&r, &req);
    // Booking i1 i4 i6, Prices i2, none i3 i5.
    assert_eq!(rep.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["Booking", "Prices", NONE_KEY]);
    assert_eq!(row(&rep, "Booking").get("inquiries"), Some(Value::Count(3)));
    assert_eq!(row(&rep, NONE_KEY).get("source_missed_call"), Some(Value::Count(2)));
    req.by = Some(Breakdown::Channel);
    let rep = report(&r, &req);
    assert_eq!(row(&rep, "Maps").get("inquiries"), Some(Value::Count(3)));
    assert_eq!(row(&rep, "Search").get("result_booked"), Some(Value::Count(2)));
    req.by = Some(Breakdown::Campaign);
    let rep = report(&r, &req);
    assert_eq!(row(&rep, "Dentistry").get("inquiries"), Some(Value::Count(2)));
    // --reason Booking --operator ann: i1, i6.
    req.by = None;
    req.filters = Filters { reason: Some("booking".into()), operator: Some("ann".into()), ..Filters::default() };
    let rep = report(&r, &req);
    assert_eq!(rep.total.get("inquiries"), Some(Value::Count(2)));
    assert_eq!(rep.previous.get("inquiries"), Some(Value::Count(1)), "i8");
}

#[test]
fn the_funnel_from_inquiries_to_arrived_visits() {
    let (_d, r) = clinic();
    let rep = report(&r, &period(Kind::Funnel));
    // With a deal: i1 (d1 won, d6 lost), i2 (d3 won), i3 (d2 open); i6's d4
    // is deleted. Won: i1, i2. Visit arrived (of a won deal): i1 (v1); d3's
    // arrived visit v5 is deleted.
    check(
        &rep.total,
        &[
            ("inquiries", n(6.0)),
            ("with_deal", n(3.0)),
            ("won", n(2.0)),
            ("visit_arrived", n(1.0)),
            ("with_deal_conversion", n(0.5)),
            ("won_conversion", n(2.0 / 3.0)),
            ("visit_arrived_conversion", n(0.5)),
            ("conversion", n(2.0 / 6.0)),
        ],
    );
    // Previous: i8 with d5 won and v4 arrived; i9 nothing.
    check(
        &rep.previous,
        &[
            ("inquiries", n(2.0)),
            ("with_deal", n(1.0)),
            ("won", n(1.0)),
            ("visit_arrived", n(1.0)),
            ("with_deal_conversion", n(0.5)),
            ("won_conversion", n(1.0)),
            ("visit_arrived_conversion", n(1.0)),
            ("conversion", n(0.5)),
        ],
    );
    assert_eq!(rep.delta().get("conversion"), Some(Value::Ratio(Some(2.0 / 6.0 - 0.5))));
    // By operator: ann i1 i3 i6 (deals: i1, i3; won i1), bob i2 i4 (i2 won,
    // no visit), nobody i5.
    let mut req = period(Kind::Funnel);
    req.by = Some(Breakdown::Operator);
    let rep = report(&r, &req);
    let ann = row(&rep, "ann");
    assert_eq!((ann.get("with_deal"), ann.get("won")), (Some(Value::Count(2)), Some(Value::Count(1))));
    assert_eq!(row(&rep, "bob").get("visit_arrived_conversion"), Some(Value::Ratio(Some(0.0))));
    assert_eq!(row(&rep, NONE_KEY).get("won_conversion"), Some(Value::Ratio(None)), "no deal at all");
    // --deal-type Primary: deals d1 (i1, won) and d2 (i3).
    req.by = None;
    req.filters.deal_type = Some("Primary".into());
    let rep = report(&r, &req);
    assert_eq!(rep.total.get("with_deal"), Some(Value::Count(2)));
    assert_eq!(rep.total.get("won"), Some(Value::Count(1)));
    assert_eq!(rep.total.get("visit_arrived"), Some(Value::Count(1)));
}

#[test]
fn speed_medians_and_the_deadline() {
    let (_d, r) = clinic();
    // Deadline 60 min; now 03-11 14:30: i4 (open since 13:00) is past it,
    // i5 (since 14:00) is not yet.
    exec(
        r.conn(),
        "INSERT INTO global_settings (id, key, value, updated_at) VALUES ('g1', 'inquiry_deadline_min', '60', 0)",
    );
    let mut req = period(Kind::Speed);
    req.now = utc("2026-03-11 14:30:00");
    let rep = report(&r, &req);
    // First response: 0 0 585 600 1800: median 585, p90 the 5th (⌈4.5⌉).
    // Closing: 600 1200 1800 3600: median (1200+1800)/2, p90 the 4th (⌈3.6⌉).
    check(
        &rep.total,
        &[
            ("inquiries", n(6.0)),
            ("responded", n(5.0)),
            ("first_response_median_s", n(585.0)),
            ("first_response_p90_s", n(1800.0)),
            ("closed", n(4.0)),
            ("closing_median_s", n(1500.0)),
            ("closing_p90_s", n(3600.0)),
            ("open_past_deadline", n(1.0)),
        ],
    );
    // 03-10: i1 i2 i3: responses 0 585 1800, closings 600 1200 3600.
    check(
        row(&rep, "2026-03-10"),
        &[
            ("inquiries", n(3.0)),
            ("responded", n(3.0)),
            ("first_response_median_s", n(585.0)),
            ("first_response_p90_s", n(1800.0)),
            ("closed", n(3.0)),
            ("closing_median_s", n(1200.0)),
            ("closing_p90_s", n(3600.0)),
            ("open_past_deadline", n(0.0)),
        ],
    );
    // 03-11: i4 i5 i6: responses 0 600 (median 300, p90 the 2nd), closing
    // 1800.
    check(
        row(&rep, "2026-03-11"),
        &[
            ("inquiries", n(3.0)),
            ("responded", n(2.0)),
            ("first_response_median_s", n(300.0)),
            ("first_response_p90_s", n(600.0)),
            ("closed", n(1.0)),
            ("closing_median_s", n(1800.0)),
            ("closing_p90_s", n(1800.0)),
            ("open_past_deadline", n(1.0)),
        ],
    );
    // Previous: i8 0 / 1200, i9 3600 / 3600.
    check(
        &rep.previous,
        &[
            ("inquiries", n(2.0)),
            ("responded", n(2.0)),
            ("first_response_median_s", n(1800.0)),
            ("first_response_p90_s", n(3600.0)),
            ("closed", n(2.0)),
            ("closing_median_s", n(2400.0)),
            ("closing_p90_s", n(3600.0)),
            ("open_past_deadline", n(0.0)),
        ],
    );
    assert_eq!(rep.delta().get("closing_median_s"), Some(Value::Seconds(Some(-900.0))));
    // Later both are past it.
    req.now = utc("2026-03-12 12:00:00");
    assert_eq!(report(&r, &req).total.get("open_past_deadline"), Some(Value::Count(2)));
}

#[test]
fn operator_load_and_share() {
    let (_d, r) = clinic();
    let rep = report(&r, &period(Kind::Operators));
    assert_eq!(rep.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["ann", "bob"]);
    // ann: c1 answered (talk 120), c5 out (talk 60); inquiries i1 i3 i6, won
    // d1. bob: c2 (60) c8 (180) answered, c11 out unanswered; i2 i4, won d3.
    // The team answered 3.
    check(
        row(&rep, "ann"),
        &[
            ("answered", n(1.0)),
            ("outbound", n(1.0)),
            ("talk_s", n(180.0)),
            ("share", n(1.0 / 3.0)),
            ("inquiries", n(3.0)),
            ("won", n(1.0)),
        ],
    );
    check(
        row(&rep, "bob"),
        &[
            ("answered", n(2.0)),
            ("outbound", n(1.0)),
            ("talk_s", n(240.0)),
            ("share", n(2.0 / 3.0)),
            ("inquiries", n(2.0)),
            ("won", n(1.0)),
        ],
    );
    check(
        &rep.total,
        &[
            ("answered", n(3.0)),
            ("outbound", n(2.0)),
            ("talk_s", n(420.0)),
            ("share", n(1.0)),
            ("inquiries", n(5.0)),
            ("won", n(2.0)),
        ],
    );
    // Previous: ann p1 (talk 60) and c13 (talk 30), i8 won d5; bob i9.
    check(
        &rep.previous,
        &[
            ("answered", n(1.0)),
            ("outbound", n(1.0)),
            ("talk_s", n(90.0)),
            ("share", n(1.0)),
            ("inquiries", n(2.0)),
            ("won", n(1.0)),
        ],
    );
    // --operator bob: bob alone, his share still of the whole team's calls.
    let mut req = period(Kind::Operators);
    req.filters.operator = Some("bob".into());
    let rep = report(&r, &req);
    assert_eq!(rep.rows.len(), 1);
    assert_eq!(rep.total.get("share"), Some(Value::Ratio(Some(2.0 / 3.0))));
    assert_eq!(rep.total.get("talk_s"), Some(Value::Seconds(Some(240.0))));
}

#[test]
fn marketing_spend_revenue_and_romi() {
    let (_d, r) = clinic();
    // Now 03-11 12:00: Billboard (no end) has run 03-01..03-11, 11 days:
    // 10.00 a day. Dentistry 100.00 a day; Kids ended 03-05.
    let rep = report(&r, &period(Kind::Marketing));
    assert_eq!(
        rep.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ["Maps / (none)", "Maps / Billboard", "Search / (none)", "Search / Dentistry"]
    );
    // Search / Dentistry: 200.00 for two days; i1 i3, won d1 (1,500.00):
    // 100.00 an inquiry, 200.00 a won deal, ROMI (1500 − 200) / 200.
    check(
        row(&rep, "Search / Dentistry"),
        &[
            ("spend", n(200.0)),
            ("inquiries", n(2.0)),
            ("won", n(1.0)),
            ("revenue", n(1500.0)),
            ("cost_per_inquiry", n(100.0)),
            ("cost_per_won", n(200.0)),
            ("romi", n(6.5)),
        ],
    );
    // Maps without a campaign: i2 i4 i5, won d3 (500.00), nothing spent.
    check(
        row(&rep, "Maps / (none)"),
        &[
            ("spend", n(0.0)),
            ("inquiries", n(3.0)),
            ("won", n(1.0)),
            ("revenue", n(500.0)),
            ("cost_per_inquiry", n(0.0)),
            ("cost_per_won", n(0.0)),
            ("romi", None),
        ],
    );
    // Billboard: 20.00 spent, nothing came of it.
    check(
        row(&rep, "Maps / Billboard"),
        &[
            ("spend", n(20.0)),
            ("inquiries", n(0.0)),
            ("won", n(0.0)),
            ("revenue", n(0.0)),
            ("cost_per_inquiry", None),
            ("cost_per_won", None),
            ("romi", n(-1.0)),
        ],
    );
    // Search without a campaign: i6, whose won deal d4 is deleted.
    assert_eq!(row(&rep, "Search / (none)").get("won"), Some(Value::Count(0)));
    // Total: 220.00 spent, 6 inquiries, 2 won, 2,000.00.
    check(
        &rep.total,
        &[
            ("spend", n(220.0)),
            ("inquiries", n(6.0)),
            ("won", n(2.0)),
            ("revenue", n(2000.0)),
            ("cost_per_inquiry", n(220.0 / 6.0)),
            ("cost_per_won", n(110.0)),
            ("romi", n(1780.0 / 220.0)),
        ],
    );
    // Previous (03-08..03-09): the same 220.00; i8 (won d5, 1,200.00), i9.
    check(
        &rep.previous,
        &[
            ("spend", n(220.0)),
            ("inquiries", n(2.0)),
            ("won", n(1.0)),
            ("revenue", n(1200.0)),
            ("cost_per_inquiry", n(110.0)),
            ("cost_per_won", n(220.0)),
            ("romi", n(980.0 / 220.0)),
        ],
    );
    // By channel, with --campaign: Dentistry alone.
    let mut req = period(Kind::Marketing);
    req.by = Some(Breakdown::Channel);
    req.filters.campaign = Some("Dentistry".into());
    let rep = report(&r, &req);
    assert_eq!(rep.rows.len(), 1);
    assert_eq!(row(&rep, "Search").get("spend"), Some(Value::Money(Some(200.0))));
}

#[test]
fn marketing_spend_is_prorated_per_day() {
    let (_d, r) = clinic();
    // 03-04..03-06 by day, now 03-11: Dentistry 100.00 + Kids 50.00 (until
    // 03-05) + Billboard 10.00 a day: 160, 160, 110. Previous 03-01..03-03:
    // all three ran, 3 × 160.00 = 480.00. The deleted campaign Old counts
    // nothing.
    let mut req = request(Kind::Marketing, "2026-03-04", "2026-03-06");
    req.by = Some(Breakdown::Day);
    let rep = report(&r, &req);
    let spend: Vec<Option<f64>> = rep.rows.iter().map(|r| r.metrics.get("spend").and_then(Value::number)).collect();
    assert_eq!(spend, [Some(160.0), Some(160.0), Some(110.0)]);
    assert_eq!(rep.total.get("spend"), Some(Value::Money(Some(430.0))));
    assert_eq!(rep.previous.get("spend"), Some(Value::Money(Some(480.0))));
    let c = marketing::Campaign {
        id: "x".into(),
        channel_id: "y".into(),
        budget_cents: 310_000,
        start: day("2026-03-01"),
        end: day("2026-03-31"),
    };
    assert_eq!(c.spend(day("2026-02-01"), day("2026-02-28")), 0.0);
    assert_eq!(c.spend(day("2026-03-31"), day("2026-04-30")), 10_000.0);
}

#[test]
fn weeks_start_on_monday_and_months_are_calendar_months() {
    let (_d, r) = clinic();
    // 2026-03-01 is a Sunday: the end of ISO week 9.
    let mut req = request(Kind::Calls, "2026-03-01", "2026-03-17");
    req.by = Some(Breakdown::Week);
    let rep = report(&r, &req);
    assert_eq!(
        rep.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(),
        ["2026-W09", "2026-W10", "2026-W11", "2026-W12"]
    );
    // Week 11 (03-09..03-15): p1 p2 on 03-09 and the nine of 03-10..11.
    assert_eq!(row(&rep, "2026-W11").get("inbound"), Some(Value::Count(11)));
    assert_eq!(row(&rep, "2026-W10").get("inbound"), Some(Value::Count(0)));
    let mut req = request(Kind::Calls, "2026-02-20", "2026-03-11");
    req.by = Some(Breakdown::Month);
    let rep = report(&r, &req);
    assert_eq!(rep.rows.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["2026-02", "2026-03"]);
    assert_eq!(row(&rep, "2026-03").get("inbound"), Some(Value::Count(11)));
}

#[test]
fn days_follow_the_clinics_zone_across_midnight() {
    let (_d, r) = empty_clinic();
    // Kyiv in January is UTC+2. A call at 23:59:30 local answered after
    // midnight stays on the day it started; a caller missed at 23:50 and at
    // 00:10 local is two caller-days, though both are 01-14 in UTC.
    insert_calls(
        r.conn(),
        &[
            // 01-14 23:59:30 local, answered 00:00:10 (40 s), ended 00:02:10.
            ("k1", "in", "+79990000001", Some(D1), Some("u-ann"), "2026-01-14 21:59:30", Some(40), 160, "answered"),
            // 01-14 23:50 and 01-15 00:10 local.
            ("k2", "in", "+79990000002", Some(D1), None, "2026-01-14 21:50:00", None, 20, "missed"),
            ("k3", "in", "+79990000002", Some(D1), None, "2026-01-14 22:10:00", None, 20, "missed"),
            // 01-15 00:30 local: a call back, 40 min after the first miss.
            ("k4", "out", "+79990000002", None, Some("u-ann"), "2026-01-14 22:30:00", Some(5), 60, "answered"),
        ],
    );
    let kyiv: Tz = "Europe/Kyiv".parse().unwrap();
    let mut req = request(Kind::Calls, "2026-01-14", "2026-01-15");
    req.zone = kyiv;
    let rep = report(&r, &req);
    let inbound: Vec<i64> =
        rep.rows.iter().map(|r| r.metrics.get("inbound").and_then(Value::number).unwrap_or(-1.0) as i64).collect();
    assert_eq!(inbound, [2, 1]);
    assert_eq!(row(&rep, "2026-01-14").get("avg_answer_s"), Some(Value::Seconds(Some(40.0))));
    assert_eq!(row(&rep, "2026-01-14").get("avg_handle_s"), Some(Value::Seconds(Some(120.0))));
    req.kind = Kind::Missed;
    let rep = report(&r, &req);
    assert_eq!(rep.total.get("missed_callers"), Some(Value::Count(2)));
    // 01-14's wait: 21:50 → 22:30 (40 min); 01-15's: 22:10 → 22:30 (20 min).
    assert_eq!(rep.total.get("callback_24h"), Some(Value::Count(2)));
    // In UTC the two misses are one caller-day.
    req.zone = Tz::UTC;
    req.to = day("2026-01-14");
    assert_eq!(report(&r, &req).total.get("missed_callers"), Some(Value::Count(1)));
}

#[test]
fn daylight_saving_days_are_23_and_25_hours_long() {
    let kyiv: Tz = "Europe/Kyiv".parse().unwrap();
    let hours = |d: &str| {
        let d = day(d);
        (day_start(kyiv, d + chrono::Duration::days(1)) - day_start(kyiv, d)) as f64 / 3_600_000.0
    };
    assert_eq!(hours("2026-03-28"), 24.0);
    assert_eq!(hours("2026-03-29"), 23.0);
    assert_eq!(hours("2026-10-25"), 25.0);
    assert_eq!(hours("2026-10-26"), 24.0);
    assert_eq!(day_start(kyiv, day("2026-03-29")), utc("2026-03-28 22:00:00"));
    assert_eq!(day_start(kyiv, day("2026-03-30")), utc("2026-03-29 21:00:00"));

    let (_d, r) = empty_clinic();
    let call = |id: &'static str, at: &'static str| -> CallData {
        (id, "in", "+79990000001", Some(D1), None, at, None, 10, "missed")
    };
    insert_calls(
        r.conn(),
        &[
            call("a1", "2026-03-28 21:30:00"), // 03-28 23:30 local (UTC+2)
            call("a2", "2026-03-28 22:30:00"), // 03-29 00:30 local (UTC+2)
            call("a3", "2026-03-29 20:30:00"), // 03-29 23:30 local (UTC+3 since 03:00)
            call("a4", "2026-03-29 21:30:00"), // 03-30 00:30 local (UTC+3)
            call("b1", "2026-10-24 20:30:00"), // 10-24 23:30 local (UTC+3)
            call("b2", "2026-10-24 21:30:00"), // 10-25 00:30 local (UTC+3)
            call("b3", "2026-10-25 21:30:00"), // 10-25 23:30 local (UTC+2 since 04:00)
            call("b4", "2026-10-25 22:10:00"), // 10-26 00:10 local (UTC+2)
        ],
    );
    let per_day = |from: &str, to: &str| -> Vec<(String, i64)> {
        let mut req = request(Kind::Calls, from, to);
        req.zone = kyiv;
        report(&r, &req)
            .rows
            .into_iter()
            .map(|row| (row.key, row.metrics.get("inbound").and_then(Value::number).unwrap_or(-1.0) as i64))
            .collect()
    };
    let expected = |days: [(&str, i64); 3]| days.iter().map(|(d, n)| (d.to_string(), *n)).collect::<Vec<_>>();
    assert_eq!(
        per_day("2026-03-28", "2026-03-30"),
        expected([("2026-03-28", 1), ("2026-03-29", 2), ("2026-03-30", 1)])
    );
    assert_eq!(
        per_day("2026-10-24", "2026-10-26"),
        expected([("2026-10-24", 1), ("2026-10-25", 2), ("2026-10-26", 1)])
    );
}

#[test]
fn the_zone_comes_from_tz_then_the_global_setting_then_utc() {
    let (_d, r) = empty_clinic();
    assert_eq!(clinic_zone(r.conn(), None).unwrap(), Tz::UTC);
    exec(
        r.conn(),
        "INSERT INTO global_settings (id, key, value, updated_at) VALUES ('g1', 'time_zone', '\"Europe/Kyiv\"', 0)",
    );
    assert_eq!(clinic_zone(r.conn(), None).unwrap().name(), "Europe/Kyiv");
    assert_eq!(clinic_zone(r.conn(), Some("Europe/Moscow")).unwrap().name(), "Europe/Moscow");
    let bad = clinic_zone(r.conn(), Some("Mars/Olympus")).unwrap_err().to_string();
    assert!(bad.contains("unknown time zone \"Mars/Olympus\"") && bad.contains("Europe/Kyiv"), "{bad}");
    exec(r.conn(), "UPDATE global_settings SET value = '\"Kyiv\"' WHERE key = 'time_zone'");
    let bad = clinic_zone(r.conn(), None).unwrap_err().to_string();
    assert!(bad.contains("global setting time_zone") && bad.contains("--tz"), "{bad}");
}

#[test]
fn bad_requests_are_refused_with_what_to_do() {
    let (_d, r) = clinic();
    let err = |req: &Request| run(r.conn(), req).unwrap_err().to_string();
    let backwards = err(&request(Kind::Calls, "2026-03-11", "2026-03-10"));
    assert!(backwards.contains("--to 2026-03-10 is before --from 2026-03-11"), "{backwards}");
    let far = err(&request(Kind::Calls, "9999-12-01", "9999-12-31"));
    assert!(far.contains("9999-12-01 is outside the years"), "{far}");
    let long = err(&request(Kind::Calls, "2000-01-01", "2026-01-01"));
    assert!(long.contains("at most 3660 days"), "{long}");
    let mut req = period(Kind::Calls);
    req.by = Some(Breakdown::Reason);
    let unfit = err(&req);
    assert!(unfit.contains("calls report cannot be broken down by reason"), "{unfit}");
    assert!(unfit.contains("day, week, month, operator, channel, campaign"), "{unfit}");
    req.kind = Kind::Operators;
    req.by = Some(Breakdown::Day);
    assert!(err(&req).contains("use --by operator"));
    let mut req = period(Kind::Calls);
    req.filters.reason = Some("Booking".into());
    let filter = err(&req);
    assert!(filter.contains("has no --reason filter") && filter.contains("--operator, --channel"), "{filter}");
    let mut req = period(Kind::Calls);
    req.filters.operator = Some("zed".into());
    let who = err(&req);
    assert!(who.contains("no user \"zed\"") && who.contains("ann, bob, doc"), "{who}");
    let mut req = period(Kind::Marketing);
    req.filters.campaign = Some("Old".into());
    assert!(err(&req).contains("no campaign \"Old\""), "a deleted campaign is not there");
    assert!(Kind::from_name("sales").is_none());
    assert_eq!(Kind::from_name(" Calls "), Some(Kind::Calls));
    assert!(ReportError::UnknownKind("sales".into()).to_string().contains("inquiries, funnel, speed"));
}

#[test]
fn the_json_has_rows_a_total_the_previous_period_and_deltas() {
    let (_d, r) = clinic();
    let rep = report(&r, &period(Kind::Calls));
    let json = rep.to_json(true);
    assert_eq!(json["kind"], "calls");
    assert_eq!(json["from"], "2026-03-10");
    assert_eq!(json["to"], "2026-03-11");
    assert_eq!(json["tz"], "UTC");
    assert_eq!(json["partial_view"], true);
    assert_eq!(json["rows"][0]["key"], "2026-03-10");
    assert_eq!(json["rows"][0]["inbound"], 4);
    assert_eq!(json["total"]["missed_rate"], 0.5556);
    assert_eq!(json["total"]["previous"]["inbound"], 2);
    assert_eq!(json["total"]["delta"]["avg_answer_s"], -20.0);
    assert_eq!(json["previous_period"]["from"], "2026-03-08");
}

#[test]
fn medians_and_90th_percentiles() {
    let q = |k: Quantile, v: &[f64]| k.of(&mut v.to_vec());
    assert_eq!(q(Quantile::Median, &[]), None);
    assert_eq!(q(Quantile::Median, &[7.0]), Some(7.0));
    assert_eq!(q(Quantile::Median, &[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    assert_eq!(q(Quantile::P90, &[7.0]), Some(7.0));
    let ten: Vec<f64> = (1..=10).map(f64::from).collect();
    assert_eq!(q(Quantile::P90, &ten), Some(9.0));
    let eleven: Vec<f64> = (1..=11).map(f64::from).collect();
    assert_eq!(q(Quantile::P90, &eleven), Some(10.0));
}

#[test]
fn a_view_is_partial_without_the_rights_to_every_row() {
    let operator = RoleCode::Operator.default_rights();
    let supervisor = RoleCode::Supervisor.default_rights();
    let head = RoleCode::Head.default_rights();
    // Operators get their own calls and the missed-call queue only.
    assert!(partial_view(Kind::Calls, &operator));
    assert!(partial_view(Kind::Missed, &operator));
    assert!(partial_view(Kind::Operators, &operator));
    // They see every inquiry and deal.
    assert!(!partial_view(Kind::Inquiries, &operator));
    assert!(!partial_view(Kind::Funnel, &operator));
    for kind in Kind::ALL {
        assert!(!partial_view(*kind, &supervisor), "{kind}");
        assert!(!partial_view(*kind, &head), "{kind}");
    }
    // A nurse sees no inquiries.
    assert!(partial_view(Kind::Speed, &RoleCode::Nurse.default_rights()));
}
