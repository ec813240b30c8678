//! `clinicdesk report KIND --from YYYY-MM-DD --to YYYY-MM-DD [--by ...]
//! [--format table|csv|json] [--tz ZONE] [--operator LOGIN] [--channel NAME]
//! [--campaign NAME] [--reason NAME] [--deal-type NAME]`: a report of
//! `store::reports` over the profile's replica, which is opened read-only.
//! Everything typed is checked before the replica is read, and nothing is
//! printed on stdout unless the whole report was computed.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use clap::{Args, ValueEnum};

use crate::settings::{LocalSettings, Profile};
use crate::store::reports::{self, Breakdown, Filters, Kind, Report, Request};
use crate::store::{Replica, queries};

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// inquiries, funnel, speed, calls, missed, operators or marketing.
    pub kind: String,
    /// The first day of the period (YYYY-MM-DD, in the clinic's time zone).
    #[arg(long)]
    pub from: String,
    /// The last day of the period (inclusive).
    #[arg(long)]
    pub to: String,
    /// One row per day, week, month, operator, channel, campaign or reason
    /// (default: day; operator for `operators`, campaign for `marketing`).
    #[arg(long)]
    pub by: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// The clinic's time zone (IANA, e.g. Europe/Kyiv); overrides the global
    /// setting `time_zone` (without either: UTC).
    #[arg(long)]
    pub tz: Option<String>,
    /// Only this operator's figures (their login).
    #[arg(long)]
    pub operator: Option<String>,
    /// Only this ad channel (its name).
    #[arg(long)]
    pub channel: Option<String>,
    /// Only this campaign (its name).
    #[arg(long)]
    pub campaign: Option<String>,
    /// Only inquiries with this reason (its name).
    #[arg(long)]
    pub reason: Option<String>,
    /// Only deals of this type (its name).
    #[arg(long)]
    pub deal_type: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

/// A day as typed after `option`.
fn parse_day(option: &str, text: &str) -> anyhow::Result<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| anyhow::anyhow!("{option} {text:?} is not a date: write it as YYYY-MM-DD, e.g. 2026-03-01"))
}

pub fn run_report(profile: Option<&Path>, args: ReportArgs) -> anyhow::Result<ExitCode> {
    let kind = Kind::from_name(&args.kind).ok_or_else(|| reports::ReportError::UnknownKind(args.kind.clone()))?;
    let by = match &args.by {
        Some(text) => {
            Some(Breakdown::from_name(text).ok_or_else(|| reports::ReportError::UnknownBreakdown(text.clone()))?)
        }
        None => None,
    };
    let from = parse_day("--from", &args.from)?;
    let to = parse_day("--to", &args.to)?;
    if to < from {
        return Err(reports::ReportError::Backwards { from, to }.into());
    }

    let profile = Profile::resolve(profile, None)?;
    let settings = LocalSettings::load(&profile.settings_path())?;
    let path = profile.replica_path();
    if !path.exists() {
        bail!(
            "there is no replica in {}: choose the profile with --profile (or CLINICDESK_PROFILE), \
             or open this one once with `clinicdesk` or `clinicdesk check`",
            profile.dir().display()
        );
    }
    let replica = Replica::open_read_only(&path)?;
    let conn = replica.conn();
    let zone = reports::clinic_zone(conn, args.tz.as_deref())?;
    let request = Request {
        kind,
        from,
        to,
        by,
        filters: Filters {
            operator: args.operator,
            channel: args.channel,
            campaign: args.campaign,
            reason: args.reason,
            deal_type: args.deal_type,
        },
        zone,
        now: crate::crm::now_millis(),
    };
    let report = reports::run(conn, &request)?;
    let partial = partial_view(conn, &settings, kind)?;

    let text = match args.format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&report.to_json(partial)).context("writing JSON")?;
            text.push('\n');
            text
        }
        Format::Csv => csv(&report)?,
        Format::Table => table(&report, partial),
    };
    if partial && args.format == Format::Csv {
        eprintln!("note: {}", PARTIAL_NOTE);
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).context("writing the report")?;
    Ok(ExitCode::SUCCESS)
}

const PARTIAL_NOTE: &str = "computed over a partial view: this workstation's user may not see every row the report \
                            reads (the clinic server sends only what they may see)";

/// Whether the profile's user (settings `user_login`) may not see every row
/// the report reads ([`reports::partial_view`]). A user the replica does not
/// know: partial. No user: partial when the replica syncs with a clinic
/// database (synced as someone unknown), whole when it does not (nobody's
/// rights narrowed it: a generated or stand-alone replica).
fn partial_view(conn: &rusqlite::Connection, settings: &LocalSettings, kind: Kind) -> anyhow::Result<bool> {
    let login = settings.user_login.as_deref().map(str::trim).filter(|l| !l.is_empty());
    Ok(match login {
        Some(login) => match queries::user_with_rights(conn, login)? {
            Some((_, rights)) => reports::partial_view(kind, &rights),
            None => true,
        },
        None => settings.database_url.is_some(),
    })
}

/// Key, then every metric; then the total, the previous period and the
/// change. Empty fields for figures that cannot be computed.
fn csv(report: &Report) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let columns = report.columns();
    let mut header = vec![report.by.name()];
    header.extend(columns.iter().copied());
    w.write_record(&header)?;
    let line = |key: &str, m: &reports::Metrics| -> Vec<String> {
        std::iter::once(key.to_owned())
            .chain(columns.iter().map(|c| m.get(c).map_or_else(String::new, |v| v.csv())))
            .collect()
    };
    for row in &report.rows {
        w.write_record(line(&row.key, &row.metrics))?;
    }
    w.write_record(line("total", &report.total))?;
    w.write_record(line("previous", &report.previous))?;
    w.write_record(line("delta", &report.delta()))?;
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("writing CSV: {e}"))?;
    Ok(String::from_utf8(bytes)?)
}

/// An aligned table: a heading line, the rows, the total, the previous
/// period and the change; "—" where a figure cannot be computed.
fn table(report: &Report, partial: bool) -> String {
    let columns = report.columns();
    let delta = report.delta();
    let mut lines: Vec<Vec<String>> = Vec::new();
    let mut header = vec![report.by.name().to_owned()];
    header.extend(columns.iter().map(|c| (*c).to_owned()));
    lines.push(header);
    let line = |key: &str, m: &reports::Metrics| -> Vec<String> {
        std::iter::once(key.to_owned())
            .chain(columns.iter().map(|c| m.get(c).map_or_else(|| "—".to_owned(), |v| v.display())))
            .collect()
    };
    for row in &report.rows {
        lines.push(line(&row.key, &row.metrics));
    }
    let first_total = lines.len();
    lines.push(line("total", &report.total));
    lines.push(line("previous", &report.previous));
    lines.push(line("delta", &delta));
    let widths: Vec<usize> =
        (0..lines[0].len()).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = format!(
        "{} report, {}..{} ({}), by {}; previous period {}..{}\n",
        report.kind,
        report.from,
        report.to,
        report.zone.name(),
        report.by,
        report.previous_from,
        report.previous_to
    );
    if partial {
        out += &format!("note: {PARTIAL_NOTE}\n");
    }
    for (n, l) in lines.iter().enumerate() {
        if n == first_total || n == 1 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out += &rule.join("  ");
            out.push('\n');
        }
        let cells: Vec<String> = l
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let pad = widths[i].saturating_sub(cell.chars().count());
                if i == 0 { format!("{cell}{}", " ".repeat(pad)) } else { format!("{}{cell}", " ".repeat(pad)) }
            })
            .collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    out
}
