//! The calls report: inbound and outbound, missed, service level, answer and handling times.

use super::*;

#[test]
fn calls_figures_by_day_with_the_previous_period() {
    let (_d, r) = clinic();
    let rep = report(&r, &period(Kind::Calls));
    assert_eq!(keys(&rep), ["2026-03-10", "2026-03-11"]);
    // 03-10: in c1 c2 c3 c4, out c5; answered c1 (10 s) c2 (30 s): within
    // 20 s 1 of 2; answer (10+30)/2 = 20; talk (120+60)/2 = 90.
    // 03-11: in c6 c7 c14 c8 c9 (c10 deleted), out c11 (not answered);
    // answered c8 at exactly 20 s (within: ≤ T), talk 180.
    // Total: 9 in, 2 out, 3 answered, 5 missed: 5/9; within 20 s: c1, c8 of
    // 3; answer (10+30+20)/3 = 20; talk (120+60+180)/3 = 120.
    // Previous (03-08..03-09): p1 answered at 40 s, talk 60; p2 missed;
    // c13 out answered.
    // Columns: 2026-03-10, 2026-03-11, total, previous, delta.
    check(
        [row(&rep, "2026-03-10"), row(&rep, "2026-03-11"), &rep.total, &rep.previous, &rep.delta()],
        &[
            ("inbound", [4.0, 5.0, 9.0, 2.0, 7.0]),
            ("outbound", [1.0, 1.0, 2.0, 1.0, 1.0]),
            ("answered", [2.0, 1.0, 3.0, 1.0, 2.0]),
            ("missed", [2.0, 3.0, 5.0, 1.0, 4.0]),
            ("busy", [0.0, 1.0, 1.0, 0.0, 1.0]),
            ("failed", [0.0, 0.0, 0.0, 0.0, 0.0]),
            ("outbound_answered", [1.0, 0.0, 1.0, 1.0, 0.0]),
            ("missed_rate", [0.5, 0.6, 5.0 / 9.0, 0.5, 5.0 / 9.0 - 0.5]),
            ("service_level", [0.5, 1.0, 2.0 / 3.0, 0.0, 2.0 / 3.0]),
            ("avg_answer_s", [20.0, 20.0, 20.0, 40.0, -20.0]),
            ("avg_handle_s", [90.0, 180.0, 120.0, 60.0, 60.0]),
        ],
    );
    assert_eq!((rep.previous_from, rep.previous_to), (day("2026-03-08"), day("2026-03-09")));
}

#[test]
fn the_service_level_threshold_is_a_global_setting() {
    let (_d, r) = clinic();
    // T = 30 s: c2 (30 s) is now within too: 3 of 3.
    set_global(r.conn(), "service_level_s", "30");
    let rep = report(&r, &period(Kind::Calls));
    assert_eq!(rep.total.get("service_level"), Some(Value::Ratio(Some(1.0))));
}

#[test]
fn calls_by_operator_and_channel_and_filtered() {
    let (_d, r) = clinic();
    let mut req = period(Kind::Calls);
    req.by = Some(Breakdown::Operator);
    let rep = report(&r, &req);
    assert_eq!(keys(&rep), ["ann", "bob", NONE_KEY]);
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
    assert_eq!(keys(&rep), ["Maps", "Search", NONE_KEY]);
    assert_eq!(row(&rep, "Search").get("inbound"), Some(Value::Count(4)));
    assert_eq!(row(&rep, NONE_KEY).get("outbound"), Some(Value::Count(2)));

    // --channel Maps: in c2 c6 c7 c8 c14; answered c2 (30 s, talk 60) and c8
    // (20 s, talk 180): service level 1/2, answer 25, talk 120; missed 2/5.
    req.by = None;
    req.filters.channel = Some("maps".into());
    let rep = report(&r, &req);
    check(
        [&rep.total],
        &[
            ("inbound", [5.0]),
            ("outbound", [0.0]),
            ("answered", [2.0]),
            ("missed", [2.0]),
            ("busy", [1.0]),
            ("failed", [0.0]),
            ("outbound_answered", [0.0]),
            ("missed_rate", [0.4]),
            ("service_level", [0.5]),
            ("avg_answer_s", [25.0]),
            ("avg_handle_s", [120.0]),
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
            [m],
            &[
                ("inbound", [0.0]),
                ("outbound", [0.0]),
                ("answered", [0.0]),
                ("missed", [0.0]),
                ("busy", [0.0]),
                ("failed", [0.0]),
                ("outbound_answered", [0.0]),
                ("missed_rate", [NO_VALUE]),
                ("service_level", [NO_VALUE]),
                ("avg_answer_s", [NO_VALUE]),
                ("avg_handle_s", [NO_VALUE]),
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
