//! The marketing report: per channel and campaign, what was spent, the
//! inquiries it brought, their won deals and revenue, and what each cost.
//!
//! Spend: the replica has no spend entries yet, only each campaign's
//! `budget_cents` over its `starts_on`..`ends_on`. The budget is spread
//! evenly over the campaign's days, and a period (or a row of a day, week or
//! month breakdown) is charged for the days of the campaign it overlaps:
//! a 3,100.00 budget over the 31 days of March charges 100.00 a day. A
//! campaign without an end date runs until the report's day (the budget so
//! far spread over the days it has run); one without a start date has no
//! known spend.

use chrono::NaiveDate;
use rusqlite::types::Value as SqlValue;

use super::{Breakdown, Comps, Ctx, Key, Metrics, Raw, ReportError, Sql, Value, additive, collect, ratio};

/// A campaign's budget spread over its days.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Campaign {
    pub id: String,
    pub channel_id: String,
    pub budget_cents: i64,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl Campaign {
    /// What the campaign spent on the days `first..=last`, in cents.
    pub fn spend(&self, first: NaiveDate, last: NaiveDate) -> f64 {
        let (a, b) = (first.max(self.start), last.min(self.end));
        if b < a || self.end < self.start {
            return 0.0;
        }
        let overlap = (b - a).num_days() + 1;
        let days = (self.end - self.start).num_days() + 1;
        self.budget_cents as f64 * overlap as f64 / days as f64
    }
}

/// Columns: inquiries, their won deals, the deals' amounts (cents), spend
/// (cents, added here from the campaigns).
pub(super) fn marketing(ctx: &Ctx<'_>) -> Result<Raw, ReportError> {
    let mut sql = Sql::default();
    let deal_type = sql.filter("d.deal_type_id", &ctx.scope.deal_type);
    let (period, key, filter) = super::inquiries::inquiry_scope(&mut sql, ctx);
    let key = match ctx.by {
        Breakdown::Campaign => "coalesce(i.channel_id, '') || '|' || coalesce(i.campaign_id, '')".to_owned(),
        _ => key,
    };
    let inner = format!(
        "WITH w AS (SELECT d.inquiry_id AS iq, count(*) AS won, sum(d.amount_cents) AS revenue FROM deals d
                    WHERE d.deleted_at IS NULL AND d.status = 'won' AND d.inquiry_id IS NOT NULL{deal_type}
                    GROUP BY d.inquiry_id)
         SELECT {period} AS period, {key} AS key, count(*) AS c0, coalesce(sum(w.won), 0) AS c1,
                coalesce(sum(w.revenue), 0) AS c2
         FROM inquiries i LEFT JOIN w ON w.iq = i.id WHERE {filter} GROUP BY 1, 2"
    );
    let mut raw = collect(ctx.conn, &additive(&inner, 3), &sql)?;
    let today = super::local_day(ctx.cal.zone, ctx.now).unwrap_or(ctx.cal.to);
    let campaigns = campaigns(ctx, today)?;
    let cal = ctx.cal;
    let buckets = cal.buckets(ctx.by);
    let add = |comps: &mut Comps, cents: f64| {
        let before = comps.num(3).unwrap_or(0.0);
        comps.set(3, SqlValue::Real(before + cents));
    };
    add(&mut raw.total, 0.0);
    add(&mut raw.previous, 0.0);
    for c in &campaigns {
        add(&mut raw.total, c.spend(cal.from, cal.to));
        add(&mut raw.previous, c.spend(cal.previous_from, cal.previous_to));
        let mut charge = |key: Key, cents: f64| {
            if cents > 0.0 || raw.rows.contains_key(&key) {
                add(raw.rows.entry(key).or_default(), cents);
            }
        };
        match ctx.by {
            Breakdown::Channel => charge(Key::Id(c.channel_id.clone()), c.spend(cal.from, cal.to)),
            Breakdown::Campaign => charge(Key::Id(format!("{}|{}", c.channel_id, c.id)), c.spend(cal.from, cal.to)),
            _ => {
                for (i, b) in buckets.iter().enumerate() {
                    charge(Key::Bucket(i as i64), c.spend(b.first, b.last));
                }
            }
        }
    }
    Ok(raw)
}

/// The campaigns the filters let through, with known dates.
fn campaigns(ctx: &Ctx<'_>, today: NaiveDate) -> Result<Vec<Campaign>, ReportError> {
    let mut sql = Sql::default();
    let mut filter = sql.filter("id", &ctx.scope.campaign);
    filter += &sql.filter("channel_id", &ctx.scope.channel);
    let mut stmt = ctx.conn.prepare(&format!(
        "SELECT id, channel_id, budget_cents, starts_on, ends_on FROM campaigns WHERE deleted_at IS NULL{filter}"
    ))?;
    let rows = stmt.query_map(rusqlite::params_from_iter(sql.params.iter()), |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    let date = |s: &Option<String>| s.as_deref().and_then(|s| NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok());
    let mut out = Vec::new();
    for row in rows {
        let (id, channel_id, budget_cents, starts_on, ends_on) = row?;
        let Some(start) = date(&starts_on) else { continue };
        let end = date(&ends_on).unwrap_or(today);
        out.push(Campaign { id, channel_id, budget_cents, start, end });
    }
    Ok(out)
}

pub(super) fn marketing_metrics(c: &Comps) -> Metrics {
    let inquiries = c.int(0);
    let won = c.int(1);
    let revenue = c.int(2) as f64 / 100.0;
    let spend = c.num(3).unwrap_or(0.0) / 100.0;
    let mut m = Metrics::default();
    m.push("spend", Value::Money(Some(spend)));
    m.push("inquiries", Value::Count(inquiries));
    m.push("won", Value::Count(won));
    m.push("revenue", Value::Money(Some(revenue)));
    m.push("cost_per_inquiry", Value::Money(ratio(Some(spend), Some(inquiries as f64))));
    m.push("cost_per_won", Value::Money(ratio(Some(spend), Some(won as f64))));
    m.push("romi", Value::Ratio(ratio(Some(revenue - spend), Some(spend))));
    m
}
