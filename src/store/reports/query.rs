//! The machinery the kinds' queries share: filters resolved to ids, SQL
//! text with numbered parameters, the rows a query gives (`period,
//! is_total, key, figures...`), the names of the keys, and the SQL
//! functions bound to a report's calendar.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::functions::{Aggregate, Context, FunctionFlags};
use rusqlite::types::Value as SqlValue;

use super::calendar::{self, Bucket, Calendar};
use super::{Breakdown, Filters, Metrics, NONE_KEY, ReportError, Row};
use crate::crm::Millis;

/// What the kinds' queries need.
pub(super) struct Ctx<'a> {
    pub(super) conn: &'a Connection,
    pub(super) cal: &'a Calendar,
    pub(super) by: Breakdown,
    pub(super) scope: &'a Scope,
    pub(super) now: Millis,
}

/// The filters as ids (every non-deleted row with the name typed).
#[derive(Debug, Default)]
pub(super) struct Scope {
    pub(super) operator: Option<Vec<String>>,
    pub(super) channel: Option<Vec<String>>,
    pub(super) campaign: Option<Vec<String>>,
    pub(super) reason: Option<Vec<String>>,
    pub(super) deal_type: Option<Vec<String>>,
}

impl Scope {
    pub(super) fn resolve(conn: &Connection, f: &Filters) -> Result<Scope, ReportError> {
        Ok(Scope {
            operator: ids(conn, "user", "users", "login", f.operator.as_deref())?,
            channel: ids(conn, "channel", "ad_channels", "name", f.channel.as_deref())?,
            campaign: ids(conn, "campaign", "campaigns", "name", f.campaign.as_deref())?,
            reason: ids(conn, "inquiry reason", "inquiry_reasons", "name", f.reason.as_deref())?,
            deal_type: ids(conn, "deal type", "deal_types", "name", f.deal_type.as_deref())?,
        })
    }
}

/// The ids of the non-deleted rows of `table` whose `column` is `name`
/// (ignoring case, Cyrillic too: compared here, not by SQLite's ASCII
/// `lower`); an error naming the known ones when there is none.
fn ids(
    conn: &Connection,
    what: &'static str,
    table: &str,
    column: &str,
    name: Option<&str>,
) -> Result<Option<Vec<String>>, ReportError> {
    let Some(name) = name else { return Ok(None) };
    let wanted = name.trim().to_lowercase();
    let rows: Vec<(String, String)> = conn
        .prepare(&format!("SELECT id, {column} FROM {table} WHERE deleted_at IS NULL ORDER BY {column}"))?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let found: Vec<String> =
        rows.iter().filter(|(_, n)| n.trim().to_lowercase() == wanted).map(|(id, _)| id.clone()).collect();
    if !found.is_empty() {
        return Ok(Some(found));
    }
    let mut known = rows.iter().take(20).map(|(_, n)| n.as_str()).collect::<Vec<_>>().join(", ");
    if rows.len() > 20 {
        known.push_str(", ...");
    }
    if rows.is_empty() {
        known = "none".into();
    }
    Err(ReportError::Unknown { what, name: name.to_owned(), known })
}

/// An SQL text's parameters, numbered as they are bound.
#[derive(Default)]
pub(super) struct Sql {
    pub(super) params: Vec<SqlValue>,
}

impl Sql {
    /// `?N` for a new parameter.
    pub(super) fn bind(&mut self, v: impl Into<SqlValue>) -> String {
        self.params.push(v.into());
        format!("?{}", self.params.len())
    }

    /// ` AND column IN (?, ...)` for a filter given, nothing otherwise.
    pub(super) fn filter(&mut self, column: &str, ids: &Option<Vec<String>>) -> String {
        let Some(ids) = ids else { return String::new() };
        let list: Vec<String> = ids.iter().map(|id| self.bind(id.clone())).collect();
        format!(" AND {column} IN ({})", list.join(", "))
    }
}

/// The columns a kind groups its rows by.
pub(super) struct Cols {
    pub(super) time: &'static str,
    pub(super) operator: &'static str,
    pub(super) channel: &'static str,
    pub(super) campaign: &'static str,
    pub(super) reason: &'static str,
}

impl Cols {
    /// The key of a row: the bucket of a time breakdown, else an id.
    pub(super) fn key(&self, by: Breakdown) -> String {
        match by {
            Breakdown::Day | Breakdown::Week | Breakdown::Month => format!("report_bucket({})", self.time),
            Breakdown::Operator => self.operator.to_owned(),
            Breakdown::Channel => self.channel.to_owned(),
            Breakdown::Campaign => self.campaign.to_owned(),
            Breakdown::Reason => self.reason.to_owned(),
        }
    }
}

/// A query's figures of one row, before they become metrics.
#[derive(Clone, Debug, Default)]
pub(super) struct Comps(pub(super) Vec<SqlValue>);

impl Comps {
    pub(super) fn int(&self, i: usize) -> i64 {
        match self.0.get(i) {
            Some(SqlValue::Integer(n)) => *n,
            Some(SqlValue::Real(x)) => *x as i64,
            _ => 0,
        }
    }

    pub(super) fn num(&self, i: usize) -> Option<f64> {
        match self.0.get(i) {
            Some(SqlValue::Integer(n)) => Some(*n as f64),
            Some(SqlValue::Real(x)) => Some(*x),
            _ => None,
        }
    }

    pub(super) fn set(&mut self, i: usize, v: SqlValue) {
        if self.0.len() <= i {
            self.0.resize(i + 1, SqlValue::Null);
        }
        self.0[i] = v;
    }
}

/// `a ÷ b`, none when `b` is zero (or either is unknown).
pub(super) fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

pub(super) fn ms_to_s(ms: Option<f64>) -> Option<f64> {
    ms.map(|ms| ms / 1000.0)
}

/// A row's key as the query gave it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Key {
    Bucket(i64),
    Id(String),
    None,
}

impl From<SqlValue> for Key {
    fn from(v: SqlValue) -> Key {
        match v {
            SqlValue::Integer(n) => Key::Bucket(n),
            SqlValue::Text(s) => Key::Id(s),
            _ => Key::None,
        }
    }
}

/// What a kind's query gave: the period's rows, its total, the previous
/// period's total.
#[derive(Debug, Default)]
pub(super) struct Raw {
    pub(super) rows: BTreeMap<Key, Comps>,
    pub(super) total: Comps,
    pub(super) previous: Comps,
}

/// Runs a kind's query, whose rows are `(period, is_total, key, c0, c1,
/// ...)`: period 1 is the report's, 0 the previous one (only its total is
/// kept).
pub(super) fn collect(conn: &Connection, text: &str, sql: &Sql) -> Result<Raw, ReportError> {
    let mut stmt = conn.prepare(text)?;
    let n = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(sql.params.iter()))?;
    let mut raw = Raw::default();
    while let Some(r) = rows.next()? {
        let period: i64 = r.get(0)?;
        let is_total: i64 = r.get(1)?;
        let key: SqlValue = r.get(2)?;
        let comps = Comps((3..n).map(|i| r.get::<_, SqlValue>(i)).collect::<rusqlite::Result<_>>()?);
        match (period, is_total) {
            (1, 0) => {
                raw.rows.insert(Key::from(key), comps);
            }
            (1, _) => raw.total = comps,
            (0, 1) => raw.previous = comps,
            _ => {}
        }
    }
    Ok(raw)
}

/// Wraps a query grouped by `(period, key)` with columns `period, key, c0
/// .. c{n-1}` whose figures add up: the period's rows, and each period's
/// total as the sum of its rows.
pub(super) fn additive(inner: &str, n: usize) -> String {
    let cols: Vec<String> = (0..n).map(|i| format!("c{i}")).collect();
    let sums: Vec<String> = (0..n).map(|i| format!("sum(c{i})")).collect();
    format!(
        "WITH g AS ({inner})
         SELECT period, 0, key, {} FROM g WHERE period = 1
         UNION ALL
         SELECT period, 1, NULL, {} FROM g GROUP BY period",
        cols.join(", "),
        sums.join(", ")
    )
}

/// `CASE` giving a moment's period: 1 from the report's start, else 0.
pub(super) fn period_expr(sql: &mut Sql, cal: &Calendar, column: &str) -> String {
    format!("CASE WHEN {column} >= {} THEN 1 ELSE 0 END", sql.bind(cal.start()))
}

/// `column` within the two periods.
pub(super) fn range_expr(sql: &mut Sql, cal: &Calendar, column: &str) -> String {
    format!("{column} >= {} AND {column} < {}", sql.bind(cal.previous_start()), sql.bind(cal.end()))
}

/// Names for the keys: users' logins, channels', campaigns' and reasons'
/// names (deleted ones too: their rows may still be counted).
pub(super) struct Labels {
    users: HashMap<String, String>,
    channels: HashMap<String, String>,
    campaigns: HashMap<String, String>,
    reasons: HashMap<String, String>,
}

impl Labels {
    pub(super) fn load(conn: &Connection) -> Result<Labels, ReportError> {
        let map = |sql: &str| -> Result<HashMap<String, String>, ReportError> {
            let mut stmt = conn.prepare(sql)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        };
        Ok(Labels {
            users: map("SELECT id, login FROM users")?,
            channels: map("SELECT id, name FROM ad_channels")?,
            campaigns: map("SELECT id, name FROM campaigns")?,
            reasons: map("SELECT id, name FROM inquiry_reasons")?,
        })
    }

    fn name(map: &HashMap<String, String>, id: &str) -> String {
        if id.is_empty() {
            return NONE_KEY.to_owned();
        }
        map.get(id).cloned().unwrap_or_else(|| id.to_owned())
    }

    fn label(&self, by: Breakdown, key: &Key, buckets: &[Bucket]) -> String {
        match (key, by) {
            (Key::Bucket(i), _) => usize::try_from(*i)
                .ok()
                .and_then(|i| buckets.get(i))
                .map_or_else(|| NONE_KEY.to_owned(), |b| b.label.clone()),
            (Key::None, _) => NONE_KEY.to_owned(),
            (Key::Id(id), Breakdown::Operator) => Labels::name(&self.users, id),
            (Key::Id(id), Breakdown::Channel) => Labels::name(&self.channels, id),
            (Key::Id(id), Breakdown::Reason) => Labels::name(&self.reasons, id),
            (Key::Id(id), Breakdown::Campaign) => match id.split_once('|') {
                // Marketing: "channel id|campaign id".
                Some((channel, campaign)) => {
                    let campaign =
                        if campaign.is_empty() { NONE_KEY.to_owned() } else { Labels::name(&self.campaigns, campaign) };
                    format!("{} / {campaign}", Labels::name(&self.channels, channel))
                }
                None => Labels::name(&self.campaigns, id),
            },
            (Key::Id(id), _) => id.clone(),
        }
    }
}

/// The report's rows: every bucket of a time breakdown in order (empty ones
/// too), else the keys found, by name, "(none)" last.
pub(super) fn assemble(
    raw: &Raw,
    by: Breakdown,
    buckets: &[Bucket],
    labels: &Labels,
    metrics: &dyn Fn(&Comps) -> Metrics,
) -> Vec<Row> {
    if by.is_time() {
        let empty = Comps::default();
        return buckets
            .iter()
            .enumerate()
            .map(|(i, b)| Row {
                key: b.label.clone(),
                metrics: metrics(raw.rows.get(&Key::Bucket(i as i64)).unwrap_or(&empty)),
            })
            .collect();
    }
    let mut rows: Vec<Row> =
        raw.rows.iter().map(|(k, c)| Row { key: labels.label(by, k, buckets), metrics: metrics(c) }).collect();
    rows.sort_by_cached_key(|r| (r.key == NONE_KEY, r.key.to_lowercase()));
    rows
}

/// The SQL functions the queries use, bound to this report's calendar:
/// `report_day(t)` the day index of a moment (see [`Calendar::starts`]),
/// `report_bucket(t)` its bucket of a time breakdown (-1 in the previous
/// period), and the aggregates `report_median(x)` and `report_p90(x)`.
pub(super) fn register_functions(conn: &Connection, cal: &Calendar, buckets: &[Bucket]) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    let starts: Arc<Vec<Millis>> = Arc::new(cal.starts().to_vec());
    let of_day: Arc<Vec<i64>> = Arc::new(cal.bucket_of_days(buckets));
    let day_starts = Arc::clone(&starts);
    conn.create_scalar_function("report_day", 1, flags, move |ctx| {
        let t: Option<i64> = ctx.get(0)?;
        Ok(t.and_then(|t| calendar::day_index(&day_starts, t)).map(|d| d as i64))
    })?;
    conn.create_scalar_function("report_bucket", 1, flags, move |ctx| {
        let t: Option<i64> = ctx.get(0)?;
        Ok(t.and_then(|t| calendar::day_index(&starts, t)).and_then(|d| of_day.get(d).copied()))
    })?;
    conn.create_aggregate_function("report_median", 1, flags, Quantile::Median)?;
    conn.create_aggregate_function("report_p90", 1, flags, Quantile::P90)?;
    Ok(())
}

/// The median (the mean of the two middle values of an even count) or the
/// 90th percentile (nearest rank: the ⌈0.9·n⌉-th smallest) of a group's
/// non-null values; null for none.
#[derive(Clone, Copy)]
pub(super) enum Quantile {
    Median,
    P90,
}

impl Quantile {
    pub(super) fn of(self, values: &mut [f64]) -> Option<f64> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        Some(match self {
            Quantile::Median if n % 2 == 1 => values[n / 2],
            Quantile::Median => (values[n / 2 - 1] + values[n / 2]) / 2.0,
            Quantile::P90 => values[(n * 9).div_ceil(10).max(1) - 1],
        })
    }
}

impl Aggregate<Vec<f64>, Option<f64>> for Quantile {
    fn init(&self, _: &mut Context<'_>) -> rusqlite::Result<Vec<f64>> {
        Ok(Vec::new())
    }

    fn step(&self, ctx: &mut Context<'_>, values: &mut Vec<f64>) -> rusqlite::Result<()> {
        if let Some(x) = ctx.get::<Option<f64>>(0)? {
            values.push(x);
        }
        Ok(())
    }

    fn finalize(&self, _: &mut Context<'_>, values: Option<Vec<f64>>) -> rusqlite::Result<Option<f64>> {
        Ok(values.and_then(|mut v| self.of(&mut v)))
    }
}
