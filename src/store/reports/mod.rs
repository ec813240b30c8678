//! Reports over the local replica (analytics and marketing): inquiries,
//! the funnel, speed of processing, calls, missed calls and call-backs,
//! operator load, and marketing. Each is computed for a period of local days
//! of the clinic's time zone, with a breakdown (day, ISO week, month,
//! operator, channel, campaign, reason) and the previous period of the same
//! length beside it, by one grouped SQL query that reads the calls or
//! inquiries of the two periods through the replica's time indexes (deals
//! and visits, indexed by neither inquiry nor deal, are read once, grouped).
//! Deleted rows (tombstones) are left out everywhere. A ratio whose divisor is zero is `None`, never NaN.
//!
//! README.md ("Reports") gives every metric's formula; this module's
//! constants hold the global settings it reads.

mod calendar;
mod calls;
mod inquiries;
mod marketing;
mod query;
#[cfg(test)]
mod tests;

pub use calendar::{Bucket, Calendar, day_start, local_day};

use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use rusqlite::Connection;

use super::StoreError;
use super::queries::global_setting;
use crate::crm::{Millis, Right, Rights};
use query::{
    Cols, Comps, Ctx, Key, Labels, Raw, Scope, Sql, additive, assemble, collect, ms_to_s, period_expr, range_expr,
    ratio, register_functions,
};

/// The global setting with the clinic's time zone (an IANA name as a JSON
/// string, e.g. `"Europe/Kyiv"`); without it reports use UTC unless `--tz`
/// names a zone.
pub const TIME_ZONE_KEY: &str = "time_zone";
/// The global setting with the service level's threshold T in seconds.
pub const SERVICE_LEVEL_KEY: &str = "service_level_s";
pub const DEFAULT_SERVICE_LEVEL_S: i64 = 20;
/// The global setting with the deadline for processing an inquiry, in
/// minutes; without it, the call-back deadline of missed calls
/// (`missed_call_deadline_min`, 15 by default) is the clinic's deadline.
pub const INQUIRY_DEADLINE_KEY: &str = "inquiry_deadline_min";
/// The longest period a report covers (ten years of days).
pub const MAX_DAYS: i64 = 3660;

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name on the command line and in JSON.
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn from_name(text: &str) -> Option<$name> {
                match text.trim().to_ascii_lowercase().as_str() { $($text => Some($name::$variant),)+ _ => None }
            }

            /// Every name, for messages ("a, b, c").
            pub fn names() -> String {
                $name::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

named_enum! {
    /// What a report is about.
    Kind {
        Inquiries = "inquiries",
        Funnel = "funnel",
        Speed = "speed",
        Calls = "calls",
        Missed = "missed",
        Operators = "operators",
        Marketing = "marketing",
    }
}

named_enum! {
    /// What one row of a report stands for.
    Breakdown {
        Day = "day",
        Week = "week",
        Month = "month",
        Operator = "operator",
        Channel = "channel",
        Campaign = "campaign",
        Reason = "reason",
    }
}

named_enum! {
    /// A filter of a report (its option on the command line is `--NAME`).
    FilterKind {
        Operator = "operator",
        Channel = "channel",
        Campaign = "campaign",
        Reason = "reason",
        DealType = "deal-type",
    }
}

impl Breakdown {
    pub fn is_time(self) -> bool {
        matches!(self, Breakdown::Day | Breakdown::Week | Breakdown::Month)
    }
}

impl Kind {
    /// The breakdowns that mean something for this report.
    pub fn breakdowns(self) -> &'static [Breakdown] {
        use Breakdown::*;
        match self {
            Kind::Inquiries | Kind::Funnel | Kind::Speed => &[Day, Week, Month, Operator, Channel, Campaign, Reason],
            // Calls carry no inquiry reason; their channel and campaign are
            // those of the tracking number dialled.
            Kind::Calls | Kind::Missed => &[Day, Week, Month, Operator, Channel, Campaign],
            Kind::Operators => &[Operator],
            // Spend is known per campaign and day, not per operator or reason.
            Kind::Marketing => &[Day, Week, Month, Channel, Campaign],
        }
    }

    /// The breakdown without `--by`.
    pub fn default_breakdown(self) -> Breakdown {
        match self {
            Kind::Operators => Breakdown::Operator,
            Kind::Marketing => Breakdown::Campaign,
            _ => Breakdown::Day,
        }
    }

    /// The filters that mean something for this report.
    pub fn filters(self) -> &'static [FilterKind] {
        use FilterKind::*;
        match self {
            Kind::Inquiries | Kind::Speed => &[Operator, Channel, Campaign, Reason],
            Kind::Funnel => &[Operator, Channel, Campaign, Reason, DealType],
            Kind::Calls | Kind::Missed => &[Operator, Channel, Campaign],
            Kind::Operators => &[Operator, DealType],
            Kind::Marketing => &[Channel, Campaign, DealType],
        }
    }

    /// What the report counts, for messages.
    fn about(self) -> &'static str {
        match self {
            Kind::Inquiries | Kind::Funnel | Kind::Speed => "inquiries",
            Kind::Calls | Kind::Missed => "calls",
            Kind::Operators => "operators",
            Kind::Marketing => "channels and campaigns",
        }
    }
}

/// Filters as typed: a user's login, names of a channel, campaign, inquiry
/// reason, deal type (case does not matter).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    pub operator: Option<String>,
    pub channel: Option<String>,
    pub campaign: Option<String>,
    pub reason: Option<String>,
    pub deal_type: Option<String>,
}

impl Filters {
    fn given(&self) -> Vec<(FilterKind, &str)> {
        [
            (FilterKind::Operator, &self.operator),
            (FilterKind::Channel, &self.channel),
            (FilterKind::Campaign, &self.campaign),
            (FilterKind::Reason, &self.reason),
            (FilterKind::DealType, &self.deal_type),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
        .collect()
    }
}

/// What to compute.
#[derive(Clone, Debug)]
pub struct Request {
    pub kind: Kind,
    /// First and last day of the period (inclusive), in `zone`.
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// None: the kind's default ([`Kind::default_breakdown`]).
    pub by: Option<Breakdown>,
    pub filters: Filters,
    pub zone: Tz,
    /// The moment the report is made: inquiries open past the deadline are
    /// counted as of it, calls not called back by it are "never", and a
    /// campaign without an end date runs until its day.
    pub now: Millis,
}

/// Bad input, worded for the person who typed it.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("--to {to} is before --from {from}: give the first day of the period with --from and the last with --to")]
    Backwards { from: NaiveDate, to: NaiveDate },
    #[error(
        "the period {from}..{to} is {days} days long; a report covers at most {MAX_DAYS} days: choose a shorter period"
    )]
    TooLong { from: NaiveDate, to: NaiveDate, days: i64 },
    #[error("{0} is outside the years a report can cover (1000 to 9998): check the date")]
    OutOfRange(NaiveDate),
    #[error("unknown report {0:?}: choose one of {kinds}", kinds = Kind::names())]
    UnknownKind(String),
    #[error("unknown breakdown --by {0:?}: choose one of {all}", all = Breakdown::names())]
    UnknownBreakdown(String),
    #[error("the {kind} report cannot be broken down by {by}: use --by {choices}")]
    Unfit { kind: Kind, by: Breakdown, choices: String },
    #[error("the {kind} report has no --{filter} filter (it is about {about}): it takes {choices}")]
    FilterUnfit { kind: Kind, filter: FilterKind, about: &'static str, choices: String },
    #[error("no {what} {name:?} in this replica: check the spelling (known: {known})")]
    Unknown { what: &'static str, name: String, known: String },
    #[error("unknown time zone {0:?}: give an IANA name such as Europe/Kyiv, Europe/Moscow or UTC")]
    UnknownZone(String),
    #[error(
        "the clinic's time zone (global setting {TIME_ZONE_KEY}) is {0:?}, which is not a time zone: \
         correct the setting, or pass --tz ZONE (an IANA name such as Europe/Kyiv)"
    )]
    BadZoneSetting(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for ReportError {
    fn from(e: rusqlite::Error) -> ReportError {
        ReportError::Store(StoreError::Sqlite(e))
    }
}

/// One figure of a report. A figure that cannot be computed (a division by
/// zero, a median of nothing) is `None`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    Count(i64),
    Seconds(Option<f64>),
    /// A share: 0.25 is 25 %.
    Ratio(Option<f64>),
    /// An amount of money in the clinic's currency (not cents).
    Money(Option<f64>),
}

impl Value {
    pub fn number(self) -> Option<f64> {
        match self {
            Value::Count(n) => Some(n as f64),
            Value::Seconds(x) | Value::Ratio(x) | Value::Money(x) => x,
        }
    }

    /// `self − earlier`, of the same kind.
    pub fn minus(self, earlier: Value) -> Value {
        let diff = |a: Option<f64>, b: Option<f64>| Some(a? - b?);
        match (self, earlier) {
            (Value::Count(a), Value::Count(b)) => Value::Count(a - b),
            (Value::Seconds(a), b) => Value::Seconds(diff(a, b.number())),
            (Value::Ratio(a), b) => Value::Ratio(diff(a, b.number())),
            (Value::Money(a), b) => Value::Money(diff(a, b.number())),
            (Value::Count(a), b) => Value::Count(a - b.number().unwrap_or(0.0) as i64),
        }
    }

    /// For JSON: counts as integers, seconds to 0.1, ratios to 0.0001,
    /// money to cents; `null` for none.
    pub fn to_json(self) -> serde_json::Value {
        let rounded = |x: Option<f64>, scale: f64| {
            x.and_then(|x| serde_json::Number::from_f64((x * scale).round() / scale))
                .map_or(serde_json::Value::Null, serde_json::Value::Number)
        };
        match self {
            Value::Count(n) => n.into(),
            Value::Seconds(x) => rounded(x, 10.0),
            Value::Ratio(x) => rounded(x, 10_000.0),
            Value::Money(x) => rounded(x, 100.0),
        }
    }

    /// For a table: "—" for none, ratios in percent.
    pub fn display(self) -> String {
        match self {
            Value::Count(n) => n.to_string(),
            Value::Seconds(Some(x)) => format!("{x:.1}"),
            Value::Ratio(Some(x)) => format!("{:.1}%", x * 100.0),
            Value::Money(Some(x)) => format!("{x:.2}"),
            _ => "—".to_owned(),
        }
    }

    /// For CSV: plain numbers, an empty field for none.
    pub fn csv(self) -> String {
        match self {
            Value::Count(n) => n.to_string(),
            Value::Seconds(Some(x)) => format!("{x:.1}"),
            Value::Ratio(Some(x)) => format!("{x:.4}"),
            Value::Money(Some(x)) => format!("{x:.2}"),
            _ => String::new(),
        }
    }
}

/// The figures of one row (or of the total), in the report's column order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics(pub Vec<(&'static str, Value)>);

impl Metrics {
    pub fn get(&self, name: &str) -> Option<Value> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.0.iter().map(|(n, _)| *n).collect()
    }

    /// Each figure minus the same figure of `earlier`.
    pub fn minus(&self, earlier: &Metrics) -> Metrics {
        Metrics(self.0.iter().map(|(n, v)| (*n, earlier.get(n).map_or(*v, |e| v.minus(e)))).collect())
    }

    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.0.iter().map(|(n, v)| ((*n).to_owned(), v.to_json())).collect()
    }

    fn push(&mut self, name: &'static str, value: Value) {
        self.0.push((name, value));
    }
}

/// One row of a report: a day, week, month, operator, channel, ...
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The day (`2026-03-29`), week (`2026-W13`), month (`2026-03`), login,
    /// channel, campaign (`Channel / Campaign` in marketing) or reason;
    /// `(none)` for rows without one.
    pub key: String,
    pub metrics: Metrics,
}

/// A computed report.
#[derive(Clone, Debug)]
pub struct Report {
    pub kind: Kind,
    pub by: Breakdown,
    pub zone: Tz,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub previous_from: NaiveDate,
    pub previous_to: NaiveDate,
    pub rows: Vec<Row>,
    pub total: Metrics,
    /// The same figures over the previous period.
    pub previous: Metrics,
}

/// The key of rows without an operator, channel, ...
pub const NONE_KEY: &str = "(none)";

impl Report {
    /// The metrics' names, in column order.
    pub fn columns(&self) -> Vec<&'static str> {
        self.total.names()
    }

    /// The total minus the previous period's total.
    pub fn delta(&self) -> Metrics {
        self.total.minus(&self.previous)
    }

    /// `{"kind", "from", "to", "tz", "by", "rows": [{"key", metrics...}], "total": {metrics...,
    /// "previous": {...}, "delta": {...}}, "previous_period": {"from", "to"}, "partial_view"}`.
    pub fn to_json(&self, partial_view: bool) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                let mut m = serde_json::Map::new();
                m.insert("key".into(), r.key.clone().into());
                m.extend(r.metrics.to_json());
                serde_json::Value::Object(m)
            })
            .collect();
        let mut total = self.total.to_json();
        total.insert("previous".into(), serde_json::Value::Object(self.previous.to_json()));
        total.insert("delta".into(), serde_json::Value::Object(self.delta().to_json()));
        serde_json::json!({
            "kind": self.kind.name(),
            "from": self.from.to_string(),
            "to": self.to.to_string(),
            "tz": self.zone.name(),
            "by": self.by.name(),
            "previous_period": {"from": self.previous_from.to_string(), "to": self.previous_to.to_string()},
            "rows": rows,
            "total": total,
            "partial_view": partial_view,
        })
    }
}

/// The clinic's time zone: `--tz` when given, else the global setting
/// [`TIME_ZONE_KEY`], else UTC.
pub fn clinic_zone(conn: &Connection, tz: Option<&str>) -> Result<Tz, ReportError> {
    if let Some(name) = tz {
        return name.trim().parse::<Tz>().map_err(|_| ReportError::UnknownZone(name.to_owned()));
    }
    match global_setting(conn, TIME_ZONE_KEY)? {
        None => Ok(Tz::UTC),
        Some(serde_json::Value::String(name)) => {
            name.trim().parse::<Tz>().map_err(|_| ReportError::BadZoneSetting(name.clone()))
        }
        Some(other) => Err(ReportError::BadZoneSetting(other.to_string())),
    }
}

/// A positive whole number from a global setting (JSON number or string).
fn setting_int(conn: &Connection, key: &str) -> Result<Option<i64>, ReportError> {
    Ok(global_setting(conn, key)?
        .and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())))
        .filter(|n| *n > 0))
}

/// T of the service level, in seconds ([`SERVICE_LEVEL_KEY`], default 20).
pub fn service_level_s(conn: &Connection) -> Result<i64, ReportError> {
    Ok(setting_int(conn, SERVICE_LEVEL_KEY)?.unwrap_or(DEFAULT_SERVICE_LEVEL_S))
}

/// The deadline of an inquiry, in minutes ([`INQUIRY_DEADLINE_KEY`], else
/// the missed-call deadline, else 15).
pub fn inquiry_deadline_min(conn: &Connection) -> Result<i64, ReportError> {
    Ok(match setting_int(conn, INQUIRY_DEADLINE_KEY)? {
        Some(m) => m,
        None => setting_int(conn, super::calls::MISSED_CALL_DEADLINE_KEY)?.unwrap_or(15),
    })
}

/// Whether a replica synced for a user with these rights holds only part of
/// what the report reads: the server sends every call only with
/// `call.view_all` (operators get their own and the missed-call queue),
/// inquiries only with `inquiry.view`, deals only with `deal.view`
/// (`server_v2.sql`'s row-level security, [`Rights::may_see_call`]).
pub fn partial_view(kind: Kind, rights: &Rights) -> bool {
    let needs: &[Right] = match kind {
        Kind::Calls | Kind::Missed => &[Right::ViewAllCalls],
        Kind::Inquiries | Kind::Speed => &[Right::ViewInquiries],
        Kind::Funnel | Kind::Marketing => &[Right::ViewInquiries, Right::ViewDeals],
        Kind::Operators => &[Right::ViewAllCalls, Right::ViewInquiries, Right::ViewDeals],
    };
    !needs.iter().all(|r| rights.has(*r))
}

/// Computes a report. Only reads.
pub fn run(conn: &Connection, req: &Request) -> Result<Report, ReportError> {
    if req.to < req.from {
        return Err(ReportError::Backwards { from: req.from, to: req.to });
    }
    for date in [req.from, req.to] {
        if !(1000..=9998).contains(&date.year()) {
            return Err(ReportError::OutOfRange(date));
        }
    }
    let days = (req.to - req.from).num_days() + 1;
    if days > MAX_DAYS {
        return Err(ReportError::TooLong { from: req.from, to: req.to, days });
    }
    let by = req.by.unwrap_or(req.kind.default_breakdown());
    if !req.kind.breakdowns().contains(&by) {
        let choices = req.kind.breakdowns().iter().map(|b| b.name()).collect::<Vec<_>>().join(", ");
        return Err(ReportError::Unfit { kind: req.kind, by, choices });
    }
    for (filter, _) in req.filters.given() {
        if !req.kind.filters().contains(&filter) {
            let choices = req.kind.filters().iter().map(|f| format!("--{}", f.name())).collect::<Vec<_>>().join(", ");
            return Err(ReportError::FilterUnfit { kind: req.kind, filter, about: req.kind.about(), choices });
        }
    }
    let scope = Scope::resolve(conn, &req.filters)?;
    let cal = Calendar::new(req.zone, req.from, req.to);
    let buckets = cal.buckets(by);
    register_functions(conn, &cal, &buckets)?;
    let ctx = Ctx { conn, cal: &cal, by, scope: &scope, now: req.now };
    let labels = Labels::load(conn)?;
    let (raw, metrics): (Raw, &dyn Fn(&Comps) -> Metrics) = match req.kind {
        Kind::Inquiries => (inquiries::inquiries(&ctx)?, &inquiries::inquiry_metrics),
        Kind::Funnel => (inquiries::funnel(&ctx)?, &inquiries::funnel_metrics),
        Kind::Speed => (inquiries::speed(&ctx, inquiry_deadline_min(conn)?)?, &inquiries::speed_metrics),
        Kind::Calls => (calls::calls(&ctx, service_level_s(conn)?)?, &calls::call_metrics),
        Kind::Missed => (calls::missed(&ctx)?, &calls::missed_metrics),
        Kind::Operators => (calls::operators(&ctx)?, &calls::operator_metrics),
        Kind::Marketing => (marketing::marketing(&ctx)?, &marketing::marketing_metrics),
    };
    let rows = assemble(&raw, by, &buckets, &labels, metrics);
    Ok(Report {
        kind: req.kind,
        by,
        zone: req.zone,
        from: req.from,
        to: req.to,
        previous_from: cal.previous_from,
        previous_to: cal.previous_to,
        rows,
        total: metrics(&raw.total),
        previous: metrics(&raw.previous),
    })
}
