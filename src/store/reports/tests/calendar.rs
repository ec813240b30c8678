//! Periods and breakdowns in time: weeks, months, the clinic's zone, daylight saving.

use super::*;

#[test]
fn weeks_start_on_monday_and_months_are_calendar_months() {
    let (_d, r) = clinic();
    // 2026-03-01 is a Sunday: the end of ISO week 9.
    let mut req = request(Kind::Calls, "2026-03-01", "2026-03-17");
    req.by = Some(Breakdown::Week);
    let rep = report(&r, &req);
    assert_eq!(keys(&rep), ["2026-W09", "2026-W10", "2026-W11", "2026-W12"]);
    // Week 11 (03-09..03-15): p1 p2 on 03-09 and the nine of 03-10..11.
    assert_eq!(row(&rep, "2026-W11").get("inbound"), Some(Value::Count(11)));
    assert_eq!(row(&rep, "2026-W10").get("inbound"), Some(Value::Count(0)));
    let mut req = request(Kind::Calls, "2026-02-20", "2026-03-11");
    req.by = Some(Breakdown::Month);
    let rep = report(&r, &req);
    assert_eq!(keys(&rep), ["2026-02", "2026-03"]);
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
    set_global(r.conn(), "time_zone", r#""Europe/Kyiv""#);
    assert_eq!(clinic_zone(r.conn(), None).unwrap().name(), "Europe/Kyiv");
    assert_eq!(clinic_zone(r.conn(), Some("Europe/Moscow")).unwrap().name(), "Europe/Moscow");
    let bad = clinic_zone(r.conn(), Some("Mars/Olympus")).unwrap_err().to_string();
    assert!(bad.contains("unknown time zone \"Mars/Olympus\"") && bad.contains("Europe/Kyiv"), "{bad}");
    exec(r.conn(), "UPDATE global_settings SET value = '\"Kyiv\"' WHERE key = 'time_zone'");
    let bad = clinic_zone(r.conn(), None).unwrap_err().to_string();
    assert!(bad.contains("global setting time_zone") && bad.contains("--tz"), "{bad}");
}
