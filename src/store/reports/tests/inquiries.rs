//! The inquiries report: sources, results, reasons, channels.

use super::*;

#[test]
fn inquiries_by_source_result_reason_and_channel() {
    let (_d, r) = clinic();
    let rep = report(&r, &period(Kind::Inquiries));
    // i1..i6 (i7 deleted): call i1; missed call i3 i5; web i2; walk-in i6;
    // messenger i4; booked i1 i3, consultation i2, refused i6, no result i4
    // i5; open i4 i5.
    // Previous: i8 (call, booked), i9 (web, spam).
    // Columns: total, previous.
    check(
        [&rep.total, &rep.previous],
        &[
            ("inquiries", [6.0, 2.0]),
            ("source_call", [1.0, 1.0]),
            ("source_missed_call", [2.0, 0.0]),
            ("source_web", [1.0, 1.0]),
            ("source_walk_in", [1.0, 0.0]),
            ("source_messenger", [1.0, 0.0]),
            ("result_booked", [2.0, 1.0]),
            ("result_consultation", [1.0, 0.0]),
            ("result_callback", [0.0, 0.0]),
            ("result_refused", [1.0, 0.0]),
            ("result_spam", [0.0, 1.0]),
            ("result_none", [2.0, 0.0]),
            ("open", [2.0, 0.0]),
        ],
    );
    assert_eq!(rep.delta().get("inquiries"), Some(Value::Count(4)));
    assert_eq!(row(&rep, "2026-03-10").get("inquiries"), Some(Value::Count(3)));
    assert_eq!(row(&rep, "2026-03-11").get("inquiries"), Some(Value::Count(3)));

    let mut req = period(Kind::Inquiries);
    req.by = Some(Breakdown::Reason);
    let rep = report(&r, &req);
    // Booking i1 i4 i6, Prices i2, none i3 i5.
    assert_eq!(keys(&rep), ["Booking", "Prices", NONE_KEY]);
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
