//! The missed-calls report: caller-days and how soon they were called back.

use super::*;

#[test]
fn missed_calls_per_caller_day_and_call_backs() {
    let (_d, r) = clinic();
    let rep = report(&r, &period(Kind::Missed));
    // Caller-days: P1 on 03-10 (c3, c4 merged), first missed 11:00, called
    // back by c5 at 11:10: 10 min, ≤ 15 min. 03-11: P2 (c7 13:00, got
    // through on c8 at 15:00: 2 h, ≤ 24 h), P5 (c14: never), P3 (c9 23:59,
    // called back by c15 on 03-13 10:00: 34 h, later).
    // Previous: p2 from P4 at 10:00, called back by c13 at 10:20 (20 min).
    // Columns: 2026-03-10, 2026-03-11, total, previous.
    check(
        [row(&rep, "2026-03-10"), row(&rep, "2026-03-11"), &rep.total, &rep.previous],
        &[
            ("missed_calls", [2.0, 3.0, 5.0, 1.0]),
            ("missed_callers", [1.0, 3.0, 4.0, 1.0]),
            ("callback_15m", [1.0, 0.0, 1.0, 0.0]),
            ("callback_24h", [0.0, 1.0, 1.0, 1.0]),
            ("callback_later", [0.0, 1.0, 1.0, 0.0]),
            ("callback_never", [0.0, 1.0, 1.0, 0.0]),
            ("callback_rate", [1.0, 2.0 / 3.0, 0.75, 1.0]),
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
