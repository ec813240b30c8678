//! The reports about inquiries: counts by source and result, the funnel to
//! won deals and arrived visits, and the speed of processing. An inquiry
//! belongs to the period its `created_at` falls in; its deals and visits are
//! counted whenever they happened (the inquiries of a period and what they
//! turned into).

use super::{Comps, Ctx, Metrics, Raw, ReportError, Sql, Value, additive, collect, ms_to_s, ratio};

pub(super) const COLS: super::Cols = super::Cols {
    time: "i.created_at",
    operator: "i.operator_id",
    channel: "i.channel_id",
    campaign: "i.campaign_id",
    reason: "i.reason_id",
};

pub(super) const SOURCES: [(&str, &str); 5] = [
    ("call", "source_call"),
    ("missed_call", "source_missed_call"),
    ("web", "source_web"),
    ("walk_in", "source_walk_in"),
    ("messenger", "source_messenger"),
];

pub(super) const RESULTS: [(&str, &str); 5] = [
    ("booked", "result_booked"),
    ("consultation", "result_consultation"),
    ("callback", "result_callback"),
    ("refused", "result_refused"),
    ("spam", "result_spam"),
];

/// `period, key` and the `WHERE` of the inquiries of both periods that
/// pass the filters.
pub(super) fn inquiry_scope(sql: &mut Sql, ctx: &Ctx<'_>) -> (String, String, String) {
    let period = super::period_expr(sql, ctx.cal, "i.created_at");
    let key = COLS.key(ctx.by);
    let mut filter = format!("i.deleted_at IS NULL AND {}", super::range_expr(sql, ctx.cal, "i.created_at"));
    filter += &sql.filter("i.operator_id", &ctx.scope.operator);
    filter += &sql.filter("i.channel_id", &ctx.scope.channel);
    filter += &sql.filter("i.campaign_id", &ctx.scope.campaign);
    filter += &sql.filter("i.reason_id", &ctx.scope.reason);
    (period, key, filter)
}

/// Columns: inquiries, one per source, one per result, no result yet, open.
pub(super) fn inquiries(ctx: &Ctx<'_>) -> Result<Raw, ReportError> {
    let mut sql = Sql::default();
    let (period, key, filter) = inquiry_scope(&mut sql, ctx);
    let mut cols = vec!["count(*) AS c0".to_owned()];
    for (code, _) in SOURCES {
        cols.push(format!("sum(i.source = '{code}') AS c{}", cols.len()));
    }
    for (code, _) in RESULTS {
        cols.push(format!("sum(i.result = '{code}') AS c{}", cols.len()));
    }
    cols.push(format!("sum(i.result IS NULL) AS c{}", cols.len()));
    cols.push(format!("sum(i.status <> 'closed') AS c{}", cols.len()));
    let n = cols.len();
    let inner = format!(
        "SELECT {period} AS period, {key} AS key, {} FROM inquiries i WHERE {filter} GROUP BY 1, 2",
        cols.join(", ")
    );
    collect(ctx.conn, &additive(&inner, n), &sql)
}

pub(super) fn inquiry_metrics(c: &Comps) -> Metrics {
    let mut m = Metrics::default();
    m.push("inquiries", Value::Count(c.int(0)));
    for (i, (_, name)) in SOURCES.iter().chain(RESULTS.iter()).enumerate() {
        m.push(name, Value::Count(c.int(1 + i)));
    }
    m.push("result_none", Value::Count(c.int(11)));
    m.push("open", Value::Count(c.int(12)));
    m
}

/// Columns: inquiries, with a deal, with a won deal, with a won deal one of
/// whose visits the patient came to. Deals and visits are joined through
/// the deal's `inquiry_id` and the visit's `deal_id` (neither indexed: each
/// is read once, grouped, not looked up per inquiry).
pub(super) fn funnel(ctx: &Ctx<'_>) -> Result<Raw, ReportError> {
    let mut sql = Sql::default();
    let deal_type = sql.filter("d.deal_type_id", &ctx.scope.deal_type);
    let (period, key, filter) = inquiry_scope(&mut sql, ctx);
    let inner = format!(
        "WITH va AS (SELECT DISTINCT v.deal_id FROM visits v
                     WHERE v.status = 'arrived' AND v.deleted_at IS NULL AND v.deal_id IS NOT NULL),
              d AS (SELECT d.inquiry_id AS iq, max(d.status = 'won') AS won,
                           max(d.status = 'won' AND va.deal_id IS NOT NULL) AS arrived
                    FROM deals d LEFT JOIN va ON va.deal_id = d.id
                    WHERE d.deleted_at IS NULL AND d.inquiry_id IS NOT NULL{deal_type}
                    GROUP BY d.inquiry_id)
         SELECT {period} AS period, {key} AS key, count(*) AS c0, count(d.iq) AS c1, sum(d.won) AS c2,
                sum(d.arrived) AS c3
         FROM inquiries i LEFT JOIN d ON d.iq = i.id WHERE {filter} GROUP BY 1, 2"
    );
    collect(ctx.conn, &additive(&inner, 4), &sql)
}

pub(super) fn funnel_metrics(c: &Comps) -> Metrics {
    let (inquiries, with_deal, won, arrived) = (c.int(0), c.int(1), c.int(2), c.int(3));
    let r = |a: i64, b: i64| Value::Ratio(ratio(Some(a as f64), Some(b as f64)));
    let mut m = Metrics::default();
    m.push("inquiries", Value::Count(inquiries));
    m.push("with_deal", Value::Count(with_deal));
    m.push("won", Value::Count(won));
    m.push("visit_arrived", Value::Count(arrived));
    m.push("with_deal_conversion", r(with_deal, inquiries));
    m.push("won_conversion", r(won, with_deal));
    m.push("visit_arrived_conversion", r(arrived, won));
    m.push("conversion", r(won, inquiries));
    m
}

/// Columns: inquiries; responded, median and p90 of the time to the first
/// response (ms); closed, median and p90 of the time to closing (ms); open
/// past the deadline. Medians do not add up, so each total is grouped by
/// the query itself (every inquiry once more, under a null key).
pub(super) fn speed(ctx: &Ctx<'_>, deadline_min: i64) -> Result<Raw, ReportError> {
    let mut sql = Sql::default();
    let (period, key, filter) = inquiry_scope(&mut sql, ctx);
    let late_before = sql.bind(ctx.now - deadline_min * 60_000);
    let text = format!(
        "WITH b AS (SELECT {period} AS period, {key} AS key,
                           max(i.first_response_at - i.created_at, 0) AS fr,
                           max(i.closed_at - i.created_at, 0) AS cl,
                           (i.status <> 'closed' AND i.created_at < {late_before}) AS late
                    FROM inquiries i WHERE {filter}),
              s AS (SELECT period, 0 AS tot, key, fr, cl, late FROM b WHERE period = 1
                    UNION ALL SELECT period, 1, NULL, fr, cl, late FROM b)
         SELECT period, tot, key, count(*), count(fr), report_median(fr), report_p90(fr),
                count(cl), report_median(cl), report_p90(cl), sum(late)
         FROM s GROUP BY period, tot, key"
    );
    collect(ctx.conn, &text, &sql)
}

pub(super) fn speed_metrics(c: &Comps) -> Metrics {
    let mut m = Metrics::default();
    m.push("inquiries", Value::Count(c.int(0)));
    m.push("responded", Value::Count(c.int(1)));
    m.push("first_response_median_s", Value::Seconds(ms_to_s(c.num(2))));
    m.push("first_response_p90_s", Value::Seconds(ms_to_s(c.num(3))));
    m.push("closed", Value::Count(c.int(4)));
    m.push("closing_median_s", Value::Seconds(ms_to_s(c.num(5))));
    m.push("closing_p90_s", Value::Seconds(ms_to_s(c.num(6))));
    m.push("open_past_deadline", Value::Count(c.int(7)));
    m
}
