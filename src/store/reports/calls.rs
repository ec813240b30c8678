//! The reports about calls: the call figures (service level and the rest),
//! missed calls and how soon they were called back, and operator load. A
//! call belongs to the period its `started_at` falls in; its channel and
//! campaign are those of the tracking number dialled (`did_e164`).

use super::{
    Breakdown, Comps, Ctx, Metrics, Raw, ReportError, Sql, Value, additive, collect, ms_to_s, period_expr, range_expr,
    ratio,
};

const COLS: super::Cols = super::Cols {
    time: "c.started_at",
    operator: "c.operator_id",
    channel: "tn.channel_id",
    campaign: "tn.campaign_id",
    reason: "NULL",
};

/// A call back within this long is "≤ 15 min".
pub(super) const CALLBACK_SOON_MS: i64 = 15 * 60_000;
/// ... and within this long "≤ 24 h".
pub(super) const CALLBACK_DAY_MS: i64 = 24 * 3_600_000;

/// `period, key`, the joins and the `WHERE` of the calls of both periods
/// that pass the filters.
fn call_scope(sql: &mut Sql, ctx: &Ctx<'_>) -> (String, String, String, String) {
    let period = period_expr(sql, ctx.cal, "c.started_at");
    let key = COLS.key(ctx.by);
    let tracked = matches!(ctx.by, Breakdown::Channel | Breakdown::Campaign)
        || ctx.scope.channel.is_some()
        || ctx.scope.campaign.is_some();
    let join = if tracked {
        "LEFT JOIN tracking_numbers tn ON tn.did_e164 = c.did_e164 AND tn.deleted_at IS NULL"
    } else {
        ""
    };
    let mut filter = format!("c.deleted_at IS NULL AND {}", range_expr(sql, ctx.cal, "c.started_at"));
    filter += &sql.filter("c.operator_id", &ctx.scope.operator);
    filter += &sql.filter("tn.channel_id", &ctx.scope.channel);
    filter += &sql.filter("tn.campaign_id", &ctx.scope.campaign);
    (period, key, join.to_owned(), filter)
}

/// Columns: inbound, outbound; inbound answered, missed, busy, failed;
/// outbound answered; inbound answered within T; inbound answered with an
/// answer time, the sum of their times to answer (ms); of those with an
/// end, the count and sum of their talk times (ms).
pub(super) fn calls(ctx: &Ctx<'_>, service_level_s: i64) -> Result<Raw, ReportError> {
    let mut sql = Sql::default();
    let (period, key, join, filter) = call_scope(&mut sql, ctx);
    let threshold = sql.bind(service_level_s * 1000);
    let answered_in = "c.direction = 'in' AND c.result = 'answered' AND c.answered_at IS NOT NULL";
    let inner = format!(
        "SELECT {period} AS period, {key} AS key,
                sum(c.direction = 'in') AS c0, sum(c.direction = 'out') AS c1,
                sum(c.direction = 'in' AND c.result = 'answered') AS c2,
                sum(c.direction = 'in' AND c.result = 'missed') AS c3,
                sum(c.direction = 'in' AND c.result = 'busy') AS c4,
                sum(c.direction = 'in' AND c.result = 'failed') AS c5,
                sum(c.direction = 'out' AND c.result = 'answered') AS c6,
                sum({answered_in} AND c.answered_at - c.started_at <= {threshold}) AS c7,
                sum({answered_in}) AS c8,
                sum(CASE WHEN {answered_in} THEN max(c.answered_at - c.started_at, 0) END) AS c9,
                sum({answered_in} AND c.ended_at IS NOT NULL) AS c10,
                sum(CASE WHEN {answered_in} AND c.ended_at IS NOT NULL THEN max(c.ended_at - c.answered_at, 0) END) AS c11
         FROM calls c {join} WHERE {filter} GROUP BY 1, 2"
    );
    collect(ctx.conn, &additive(&inner, 12), &sql)
}

pub(super) fn call_metrics(c: &Comps) -> Metrics {
    let inbound = c.int(0);
    let answered = c.int(2);
    let missed = c.int(3);
    let mut m = Metrics::default();
    m.push("inbound", Value::Count(inbound));
    m.push("outbound", Value::Count(c.int(1)));
    m.push("answered", Value::Count(answered));
    m.push("missed", Value::Count(missed));
    m.push("busy", Value::Count(c.int(4)));
    m.push("failed", Value::Count(c.int(5)));
    m.push("outbound_answered", Value::Count(c.int(6)));
    m.push("missed_rate", Value::Ratio(ratio(Some(missed as f64), Some(inbound as f64))));
    m.push("service_level", Value::Ratio(ratio(Some(c.int(7) as f64), Some(answered as f64))));
    m.push("avg_answer_s", Value::Seconds(ms_to_s(ratio(c.num(9), Some(c.int(8) as f64)))));
    m.push("avg_handle_s", Value::Seconds(ms_to_s(ratio(c.num(11), Some(c.int(10) as f64)))));
    m
}

/// Columns: missed calls; missed caller-days (one caller's missed calls of
/// one local day merged); of those, called back within 15 min, within
/// 24 h, later, never (so far). The wait of a caller-day runs from its first
/// missed call to the first call back: an outbound call to the number (any
/// result: an attempt counts) or an answered inbound call from it, after
/// that missed call. Looked up per caller-day through `calls_by_peer`.
pub(super) fn missed(ctx: &Ctx<'_>) -> Result<Raw, ReportError> {
    let mut sql = Sql::default();
    let (period, key, join, filter) = call_scope(&mut sql, ctx);
    let soon = sql.bind(CALLBACK_SOON_MS);
    let day = sql.bind(CALLBACK_DAY_MS);
    let text = format!(
        "WITH m AS (SELECT {period} AS period, {key} AS key, c.peer_e164 AS peer, report_day(c.started_at) AS day,
                           c.started_at AS t
                    FROM calls c {join}
                    WHERE {filter} AND c.direction = 'in' AND c.result = 'missed'),
              s AS (SELECT period, 0 AS tot, key, peer, day, t FROM m WHERE period = 1
                    UNION ALL SELECT period, 1, NULL, peer, day, t FROM m),
              g AS (SELECT period, tot, key, peer, count(*) AS n, min(t) AS first
                    FROM s GROUP BY period, tot, key, peer, day),
              w AS (SELECT period, tot, key, n,
                           (SELECT min(b.started_at) FROM calls b
                            WHERE b.peer_e164 = g.peer AND b.started_at > g.first AND b.deleted_at IS NULL
                              AND (b.direction = 'out' OR b.result = 'answered')) - first AS wait
                    FROM g)
         SELECT period, tot, key, sum(n), count(*), sum(wait <= {soon}), sum(wait > {soon} AND wait <= {day}),
                sum(wait > {day}), sum(wait IS NULL)
         FROM w GROUP BY period, tot, key"
    );
    collect(ctx.conn, &text, &sql)
}

pub(super) fn missed_metrics(c: &Comps) -> Metrics {
    let callers = c.int(1);
    let never = c.int(5);
    let mut m = Metrics::default();
    m.push("missed_calls", Value::Count(c.int(0)));
    m.push("missed_callers", Value::Count(callers));
    m.push("callback_15m", Value::Count(c.int(2)));
    m.push("callback_24h", Value::Count(c.int(3)));
    m.push("callback_later", Value::Count(c.int(4)));
    m.push("callback_never", Value::Count(never));
    m.push("callback_rate", Value::Ratio(ratio(Some((callers - never) as f64), Some(callers as f64))));
    m
}

/// Per operator: inbound calls answered, outbound calls, talk time of their
/// answered calls both ways (ms); inquiries they created in the period; won
/// deals of those inquiries; and, in every row, the inbound calls answered
/// by the whole team in the period (for the share; not narrowed by
/// `--operator`).
pub(super) fn operators(ctx: &Ctx<'_>) -> Result<Raw, ReportError> {
    let mut sql = Sql::default();
    let call_period = period_expr(&mut sql, ctx.cal, "c.started_at");
    let call_range = range_expr(&mut sql, ctx.cal, "c.started_at");
    let inquiry_period = period_expr(&mut sql, ctx.cal, "i.created_at");
    let inquiry_range = range_expr(&mut sql, ctx.cal, "i.created_at");
    let deal_type = sql.filter("d.deal_type_id", &ctx.scope.deal_type);
    let operator = sql.filter("op", &ctx.scope.operator);
    let text = format!(
        "WITH x AS (
             SELECT {call_period} AS period, c.operator_id AS op,
                    sum(c.direction = 'in' AND c.result = 'answered') AS answered, sum(c.direction = 'out') AS outbound,
                    sum(CASE WHEN c.result = 'answered' AND c.answered_at IS NOT NULL AND c.ended_at IS NOT NULL
                             THEN max(c.ended_at - c.answered_at, 0) END) AS talk,
                    0 AS inquiries, 0 AS won
             FROM calls c WHERE c.deleted_at IS NULL AND {call_range} AND c.operator_id IS NOT NULL GROUP BY 1, 2
             UNION ALL
             SELECT {inquiry_period}, i.operator_id, 0, 0, NULL, count(*), 0
             FROM inquiries i WHERE i.deleted_at IS NULL AND {inquiry_range} AND i.operator_id IS NOT NULL GROUP BY 1, 2
             UNION ALL
             SELECT {inquiry_period}, i.operator_id, 0, 0, NULL, 0, count(*)
             FROM deals d JOIN inquiries i ON i.id = d.inquiry_id
             WHERE d.deleted_at IS NULL AND d.status = 'won'{deal_type} AND i.deleted_at IS NULL AND {inquiry_range}
               AND i.operator_id IS NOT NULL
             GROUP BY 1, 2),
         g AS (SELECT period, op, sum(answered) AS a, sum(outbound) AS o, sum(talk) AS t, sum(inquiries) AS i,
                      sum(won) AS w
               FROM x GROUP BY period, op),
         team AS (SELECT period, sum(a) AS a FROM g GROUP BY period)
         SELECT g.period, 0, op, g.a, o, t, i, w, team.a FROM g JOIN team ON team.period = g.period
         WHERE g.period = 1{operator}
         UNION ALL
         SELECT g.period, 1, NULL, sum(g.a), sum(o), sum(t), sum(i), sum(w), team.a FROM g JOIN team ON team.period = g.period
         WHERE 1{operator} GROUP BY g.period"
    );
    collect(ctx.conn, &text, &sql)
}

pub(super) fn operator_metrics(c: &Comps) -> Metrics {
    let answered = c.int(0);
    let mut m = Metrics::default();
    m.push("answered", Value::Count(answered));
    m.push("outbound", Value::Count(c.int(1)));
    m.push("talk_s", Value::Seconds(Some(ms_to_s(c.num(2)).unwrap_or(0.0))));
    m.push("share", Value::Ratio(ratio(Some(answered as f64), Some(c.int(5) as f64))));
    m.push("inquiries", Value::Count(c.int(3)));
    m.push("won", Value::Count(c.int(4)));
    m
}
