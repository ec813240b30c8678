//! The speed report: first response and closing times, medians and 90th percentiles, the deadline.

use super::*;

#[test]
fn speed_medians_and_the_deadline() {
    let (_d, r) = clinic();
    // Deadline 60 min; now 03-11 14:30: i4 (open since 13:00) is past it,
    // i5 (since 14:00) is not yet.
    set_global(r.conn(), "inquiry_deadline_min", "60");
    let mut req = period(Kind::Speed);
    req.now = utc("2026-03-11 14:30:00");
    let rep = report(&r, &req);
    // First response: 0 0 585 600 1800: median 585, p90 the 5th (⌈4.5⌉).
    // Closing: 600 1200 1800 3600: median (1200+1800)/2, p90 the 4th (⌈3.6⌉).
    // 03-10: i1 i2 i3: responses 0 585 1800, closings 600 1200 3600.
    // 03-11: i4 i5 i6: responses 0 600 (median 300, p90 the 2nd), closing
    // 1800.
    // Previous: i8 0 / 1200, i9 3600 / 3600.
    // Columns: total, 2026-03-10, 2026-03-11, previous.
    check(
        [&rep.total, row(&rep, "2026-03-10"), row(&rep, "2026-03-11"), &rep.previous],
        &[
            ("inquiries", [6.0, 3.0, 3.0, 2.0]),
            ("responded", [5.0, 3.0, 2.0, 2.0]),
            ("first_response_median_s", [585.0, 585.0, 300.0, 1800.0]),
            ("first_response_p90_s", [1800.0, 1800.0, 600.0, 3600.0]),
            ("closed", [4.0, 3.0, 1.0, 2.0]),
            ("closing_median_s", [1500.0, 1200.0, 1800.0, 2400.0]),
            ("closing_p90_s", [3600.0, 3600.0, 1800.0, 3600.0]),
            ("open_past_deadline", [1.0, 0.0, 1.0, 0.0]),
        ],
    );
    assert_eq!(rep.delta().get("closing_median_s"), Some(Value::Seconds(Some(-900.0))));
    // Later both are past it.
    req.now = utc("2026-03-12 12:00:00");
    assert_eq!(report(&r, &req).total.get("open_past_deadline"), Some(Value::Count(2)));
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
