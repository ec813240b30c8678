//! Days in the clinic's time zone: where each local day of a report's period
//! begins in UTC (a day around a daylight-saving change is 23 or 25 hours
//! long), and how the days group into the rows of a day, week or month
//! breakdown.

use chrono::{Datelike, NaiveDate, NaiveTime, TimeZone};
use chrono_tz::Tz;

use super::Breakdown;
use crate::crm::Millis;

/// The first moment of `day` in `zone`, as Unix milliseconds. Where the
/// zone skips local midnight (a daylight-saving change at 00:00), the day
/// begins at the first local time that exists.
pub fn day_start(zone: Tz, day: NaiveDate) -> Millis {
    let midnight = day.and_time(NaiveTime::MIN);
    for quarter in 0..(4 * 24) {
        let local = midnight + chrono::Duration::minutes(15 * quarter);
        if let Some(t) = zone.from_local_datetime(&local).earliest() {
            return t.timestamp_millis();
        }
    }
    // No zone skips a whole day at midnight; keep UTC midnight rather than fail.
    midnight.and_utc().timestamp_millis()
}

/// The local day `t` falls on in `zone`.
pub fn local_day(zone: Tz, t: Millis) -> Option<NaiveDate> {
    zone.timestamp_millis_opt(t).single().map(|t| t.date_naive())
}

/// A report's period and the previous period of the same length right
/// before it, as local days of the clinic's zone.
#[derive(Clone, Debug)]
pub struct Calendar {
    pub zone: Tz,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub previous_from: NaiveDate,
    pub previous_to: NaiveDate,
    /// Days in the period.
    days: usize,
    /// Where each day begins, from `previous_from` on: `2 * days + 1`
    /// entries, the last one the end of `to`.
    starts: Vec<Millis>,
}

/// One row of a day, week or month breakdown: the period's days from
/// `first` to `last`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub label: String,
    pub first: NaiveDate,
    pub last: NaiveDate,
}

impl Calendar {
    /// `from <= to` (checked by the caller).
    pub fn new(zone: Tz, from: NaiveDate, to: NaiveDate) -> Calendar {
        let days = (to - from).num_days().max(0) as usize + 1;
        let previous_from = from - chrono::Duration::days(days as i64);
        let previous_to = from - chrono::Duration::days(1);
        let starts =
            (0..=2 * days).map(|i| day_start(zone, previous_from + chrono::Duration::days(i as i64))).collect();
        Calendar { zone, from, to, previous_from, previous_to, days, starts }
    }

    pub fn days(&self) -> usize {
        self.days
    }

    /// The first moment of the previous period.
    pub fn previous_start(&self) -> Millis {
        self.starts[0]
    }

    /// The first moment of the period.
    pub fn start(&self) -> Millis {
        self.starts[self.days]
    }

    /// The first moment after the period.
    pub fn end(&self) -> Millis {
        self.starts[2 * self.days]
    }

    /// Where each day begins (see the field).
    pub fn starts(&self) -> &[Millis] {
        &self.starts
    }

    /// The date of day `index` (0 = `previous_from`).
    pub fn date(&self, index: usize) -> NaiveDate {
        self.previous_from + chrono::Duration::days(index as i64)
    }

    /// The rows of a day, week (ISO, from Monday) or month breakdown over
    /// the period; a week or month cut by the period's ends has only the
    /// period's days. Empty for the other breakdowns.
    pub fn buckets(&self, by: Breakdown) -> Vec<Bucket> {
        let label = |d: NaiveDate| match by {
            Breakdown::Day => Some(d.format("%Y-%m-%d").to_string()),
            Breakdown::Week => {
                let w = d.iso_week();
                Some(format!("{}-W{:02}", w.year(), w.week()))
            }
            Breakdown::Month => Some(d.format("%Y-%m").to_string()),
            _ => None,
        };
        let mut out: Vec<Bucket> = Vec::new();
        for i in 0..self.days {
            let day = self.from + chrono::Duration::days(i as i64);
            let Some(name) = label(day) else { return Vec::new() };
            match out.last_mut() {
                Some(last) if last.label == name => last.last = day,
                _ => out.push(Bucket { label: name, first: day, last: day }),
            }
        }
        out
    }

    /// For each day from `previous_from` (see [`Calendar::starts`]), the
    /// bucket of `buckets` it belongs to; -1 for the previous period's days.
    pub fn bucket_of_days(&self, buckets: &[Bucket]) -> Vec<i64> {
        let mut out = vec![-1; self.days];
        let mut b = 0;
        for i in 0..self.days {
            let day = self.from + chrono::Duration::days(i as i64);
            while b + 1 < buckets.len() && buckets[b].last < day {
                b += 1;
            }
            out.push(b as i64);
        }
        out
    }
}

/// The day (index into `starts`, see [`Calendar::starts`]) that `t` falls
/// on, or none outside the two periods.
pub fn day_index(starts: &[Millis], t: Millis) -> Option<usize> {
    let after = starts.partition_point(|&s| s <= t);
    (after > 0 && after < starts.len()).then(|| after - 1)
}
