//! The funnel: inquiries to deals, won deals and arrived visits.

use super::*;

#[test]
fn the_funnel_from_inquiries_to_arrived_visits() {
    let (_d, r) = clinic();
    let rep = report(&r, &period(Kind::Funnel));
    // With a deal: i1 (d1 won, d6 lost), i2 (d3 won), i3 (d2 open); i6's d4
    // is deleted. Won: i1, i2. Visit arrived (of a won deal): i1 (v1); d3's
    // arrived visit v5 is deleted.
    // Previous: i8 with d5 won and v4 arrived; i9 nothing.
    // Columns: total, previous.
    check(
        [&rep.total, &rep.previous],
        &[
            ("inquiries", [6.0, 2.0]),
            ("with_deal", [3.0, 1.0]),
            ("won", [2.0, 1.0]),
            ("visit_arrived", [1.0, 1.0]),
            ("with_deal_conversion", [0.5, 0.5]),
            ("won_conversion", [2.0 / 3.0, 1.0]),
            ("visit_arrived_conversion", [0.5, 1.0]),
            ("conversion", [2.0 / 6.0, 0.5]),
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
