//! The operators' report: load and share of the team's calls.

use super::*;

#[test]
fn operator_load_and_share() {
    let (_d, r) = clinic();
    let rep = report(&r, &period(Kind::Operators));
    assert_eq!(keys(&rep), ["ann", "bob"]);
    // ann: c1 answered (talk 120), c5 out (talk 60); inquiries i1 i3 i6, won
    // d1. bob: c2 (60) c8 (180) answered, c11 out unanswered; i2 i4, won d3.
    // The team answered 3.
    // Previous: ann p1 (talk 60) and c13 (talk 30), i8 won d5; bob i9.
    // Columns: ann, bob, total, previous.
    check(
        [row(&rep, "ann"), row(&rep, "bob"), &rep.total, &rep.previous],
        &[
            ("answered", [1.0, 2.0, 3.0, 1.0]),
            ("outbound", [1.0, 1.0, 2.0, 1.0]),
            ("talk_s", [180.0, 240.0, 420.0, 90.0]),
            ("share", [1.0 / 3.0, 2.0 / 3.0, 1.0, 1.0]),
            ("inquiries", [3.0, 2.0, 5.0, 2.0]),
            ("won", [1.0, 1.0, 2.0, 1.0]),
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
