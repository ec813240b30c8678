//! The clinic's clock for generated data: its time zone, its working days and
//! hours, and when patients call and come.

use super::rng::Rng;
use crate::crm::Millis;

pub const SECOND: Millis = 1_000;
pub const MINUTE: Millis = 60 * SECOND;
pub const HOUR: Millis = 60 * MINUTE;
pub const DAY: Millis = 24 * HOUR;

/// The clinic works on Moscow time (UTC+3, no daylight saving).
pub const CLINIC_UTC_OFFSET: Millis = 3 * HOUR;

/// The instant the clinic's local day containing `t` starts.
pub fn local_day_start(t: Millis) -> Millis {
    (t + CLINIC_UTC_OFFSET).div_euclid(DAY) * DAY - CLINIC_UTC_OFFSET
}

/// The local weekday of `t`, 0 = Monday … 6 = Sunday.
pub fn weekday(t: Millis) -> i64 {
    ((t + CLINIC_UTC_OFFSET).div_euclid(DAY) + 3).rem_euclid(7)
}

/// The local calendar date of `t`.
fn local_date(t: Millis) -> Option<chrono::NaiveDate> {
    chrono::DateTime::from_timestamp_millis(t + CLINIC_UTC_OFFSET).map(|d| d.date_naive())
}

/// The local date of `t` as stored (ISO, `YYYY-MM-DD`).
pub fn iso_date(t: Millis) -> String {
    local_date(t).map_or_else(String::new, |d| d.to_string())
}

/// Calls by weekday, Monday first: Monday is the busiest, Sunday nearly
/// silent (the call center is closed; a few calls reach the duty phone).
const WEEKDAY_WEIGHT: [f64; 7] = [1.15, 1.05, 1.0, 1.0, 0.95, 0.55, 0.05];

/// Calls by local hour from 8:00 to 19:00: peaks in the morning and after
/// work.
const FIRST_HOUR: i64 = 8;
const HOUR_WEIGHT: [f64; 12] = [0.5, 1.4, 1.6, 1.4, 1.0, 0.8, 0.9, 1.0, 1.3, 1.4, 1.1, 0.6];

/// Fewer calls in the New Year and May holidays and in summer.
fn season_weight(t: Millis) -> f64 {
    use chrono::Datelike;
    let Some(date) = local_date(t) else {
        return 1.0;
    };
    match (date.month(), date.day()) {
        (1, 1..=8) => 0.25,
        (5, 1..=10) => 0.7,
        (7 | 8, _) => 0.85,
        _ => 1.0,
    }
}

/// Working-hour slots over a period, weighted by how busy the phones are
/// then; samples the start of a call.
pub struct Rhythm {
    starts: Vec<Millis>,
    lens: Vec<Millis>,
    cumulative: Vec<f64>,
    total: f64,
}

impl Rhythm {
    /// The slots of every working hour in `from..now`. The clinic grew over
    /// the period: its last days are a third busier than its first.
    pub fn new(from: Millis, now: Millis) -> Rhythm {
        let mut rhythm = Rhythm { starts: Vec::new(), lens: Vec::new(), cumulative: Vec::new(), total: 0.0 };
        let span = (now - from).max(1) as f64;
        let mut day = local_day_start(from);
        while day < now {
            let wd = weekday(day) as usize;
            let day_weight = WEEKDAY_WEIGHT[wd] * season_weight(day) * (0.75 + 0.25 * (day - from) as f64 / span);
            for (h, hour_weight) in HOUR_WEIGHT.iter().enumerate() {
                let start = day + (FIRST_HOUR + h as i64) * HOUR;
                if start >= now {
                    break;
                }
                if start < from {
                    continue;
                }
                let len = HOUR.min(now - start);
                // Saturday afternoons are quiet.
                let saturday = if wd == 5 && h >= 7 { 0.3 } else { 1.0 };
                let weight = day_weight * hour_weight * saturday * len as f64 / HOUR as f64;
                rhythm.total += weight;
                rhythm.starts.push(start);
                rhythm.lens.push(len);
                rhythm.cumulative.push(rhythm.total);
            }
            day += DAY;
        }
        rhythm
    }

    /// A moment in one of the slots, busy slots more likely; `None` when the
    /// period has no working hour.
    pub fn sample(&self, rng: &mut Rng) -> Option<Millis> {
        if self.starts.is_empty() {
            return None;
        }
        let x = rng.unit() * self.total;
        let i = self.cumulative.partition_point(|&c| c <= x).min(self.starts.len() - 1);
        Some(self.starts[i] + rng.below(self.lens[i] as u64) as Millis)
    }
}

/// When a visit booked at `after` takes place: a half-hour slot between 9:00
/// and 18:30 on a working day, mostly within a week, never sooner than an
/// hour after booking.
pub fn visit_slot(rng: &mut Rng, after: Millis) -> Millis {
    let days = match rng.weighted(&[10, 25, 45, 20]) {
        0 => 0,
        1 => 1,
        2 => rng.range(2, 8),
        _ => rng.range(8, 22),
    };
    let mut day = local_day_start(after) + days * DAY;
    loop {
        if weekday(day) != 6 {
            let slot = day + rng.range(18, 38) * 30 * MINUTE;
            if slot >= after + HOUR {
                return slot;
            }
        }
        day += DAY;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-06-03 is a Monday; 12:00 UTC is 15:00 in the clinic.
    const MONDAY_NOON_UTC: Millis = 1_717_416_000_000;

    #[test]
    fn local_days_and_weekdays() {
        assert_eq!(weekday(MONDAY_NOON_UTC), 0);
        assert_eq!(weekday(MONDAY_NOON_UTC + 6 * DAY), 6);
        // 22:30 UTC Sunday is already Monday 01:30 in the clinic.
        assert_eq!(weekday(MONDAY_NOON_UTC - 13 * HOUR - 30 * MINUTE), 0);
        assert_eq!(local_day_start(MONDAY_NOON_UTC), MONDAY_NOON_UTC - 15 * HOUR);
        assert_eq!(iso_date(MONDAY_NOON_UTC), "2024-06-03");
    }

    #[test]
    fn calls_fall_in_working_hours() {
        let rhythm = Rhythm::new(MONDAY_NOON_UTC - 30 * DAY, MONDAY_NOON_UTC);
        let mut rng = Rng::new(3);
        let mut sundays = 0;
        for _ in 0..5000 {
            let t = rhythm.sample(&mut rng).unwrap();
            assert!((MONDAY_NOON_UTC - 30 * DAY..MONDAY_NOON_UTC).contains(&t));
            let hour = (t - local_day_start(t)) / HOUR;
            assert!((8..20).contains(&hour), "{hour}");
            sundays += usize::from(weekday(t) == 6);
        }
        assert!(sundays < 100, "{sundays}");
    }

    #[test]
    fn visits_on_working_days_after_booking() {
        let mut rng = Rng::new(5);
        for i in 0..2000 {
            let booked = MONDAY_NOON_UTC + i * 37 * MINUTE;
            let v = visit_slot(&mut rng, booked);
            assert!(v >= booked + HOUR);
            assert_ne!(weekday(v), 6);
            let minutes = (v - local_day_start(v)) / MINUTE;
            assert!((9 * 60..=18 * 60 + 30).contains(&minutes));
        }
    }
}
