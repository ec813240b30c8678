//! The marketing report: spend prorated per day, revenue, ROMI.

use super::*;

#[test]
fn marketing_spend_revenue_and_romi() {
    let (_d, r) = clinic();
    // Now 03-11 12:00: Billboard (no end) has run 03-01..03-11, 11 days:
    // 10.00 a day. Dentistry 100.00 a day; Kids ended 03-05.
    let rep = report(&r, &period(Kind::Marketing));
    assert_eq!(keys(&rep), ["Maps / (none)", "Maps / Billboard", "Search / (none)", "Search / Dentistry"]);
    // Search / Dentistry: 200.00 for two days; i1 i3, won d1 (1,500.00):
    // 100.00 an inquiry, 200.00 a won deal, ROMI (1500 − 200) / 200.
    // Maps without a campaign: i2 i4 i5, won d3 (500.00), nothing spent.
    // Billboard: 20.00 spent, nothing came of it.
    // Columns: Search / Dentistry, Maps / (none), Maps / Billboard.
    check(
        [row(&rep, "Search / Dentistry"), row(&rep, "Maps / (none)"), row(&rep, "Maps / Billboard")],
        &[
            ("spend", [200.0, 0.0, 20.0]),
            ("inquiries", [2.0, 3.0, 0.0]),
            ("won", [1.0, 1.0, 0.0]),
            ("revenue", [1500.0, 500.0, 0.0]),
            ("cost_per_inquiry", [100.0, 0.0, NO_VALUE]),
            ("cost_per_won", [200.0, 0.0, NO_VALUE]),
            ("romi", [6.5, NO_VALUE, -1.0]),
        ],
    );
    // Search without a campaign: i6, whose won deal d4 is deleted.
    assert_eq!(row(&rep, "Search / (none)").get("won"), Some(Value::Count(0)));
    // Total: 220.00 spent, 6 inquiries, 2 won, 2,000.00.
    // Previous (03-08..03-09): the same 220.00; i8 (won d5, 1,200.00), i9.
    // Columns: total, previous.
    check(
        [&rep.total, &rep.previous],
        &[
            ("spend", [220.0, 220.0]),
            ("inquiries", [6.0, 2.0]),
            ("won", [2.0, 1.0]),
            ("revenue", [2000.0, 1200.0]),
            ("cost_per_inquiry", [220.0 / 6.0, 110.0]),
            ("cost_per_won", [110.0, 220.0]),
            ("romi", [1780.0 / 220.0, 980.0 / 220.0]),
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
    let c = super::super::marketing::Campaign {
        id: "x".into(),
        channel_id: "y".into(),
        budget_cents: 310_000,
        start: day("2026-03-01"),
        end: day("2026-03-31"),
    };
    assert_eq!(c.spend(day("2026-02-01"), day("2026-02-28")), 0.0);
    assert_eq!(c.spend(day("2026-03-31"), day("2026-04-30")), 10_000.0);
}
