//! Cron schedules in a time zone, and the data interval of a logical date.
//!
//! A run for an interval starts when the interval ends: with `0 2 * * *`
//! the run that fires on the 2nd at 02:00 processes the interval
//! [1st 02:00, 2nd 02:00) and its `ds` is the 1st (the interval start).

use std::str::FromStr;

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use croner::Cron;

/// A parsed cron expression (5 or 6 fields, or `@daily`-style aliases) and
/// the time zone it fires in.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub expr: String,
    pub tz: Tz,
    cron: Cron,
}

/// The data interval of one run, in the DAG's time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    pub start: DateTime<Tz>,
    pub end: DateTime<Tz>,
}

pub fn parse_tz(name: &str) -> Result<Tz, String> {
    Tz::from_str(name).map_err(|_| format!("unknown time zone `{name}`"))
}

impl Schedule {
    pub fn parse(expr: &str, tz: Tz) -> Result<Self, String> {
        let cron = Cron::from_str(expr.trim()).map_err(|e| format!("bad cron expression `{expr}`: {e}"))?;
        Ok(Self {
            expr: expr.to_string(),
            tz,
            cron,
        })
    }

    /// Human text for the expression ("At 02:00 every day").
    pub fn describe(&self) -> String {
        self.cron.describe()
    }

    /// The first fire time strictly after `t`.
    pub fn next_after(&self, t: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        self.cron.find_next_occurrence(t, false).ok()
    }

    /// The first fire time at or after `t`.
    pub fn next_from(&self, t: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        self.cron.find_next_occurrence(t, true).ok()
    }

    /// Does this schedule fire at most once a day? Then runs are keyed by
    /// date; otherwise by date and time.
    pub fn is_daily_or_coarser(&self) -> bool {
        let probe = self.tz.with_ymd_and_hms(2001, 1, 1, 0, 0, 0).unwrap();
        let mut t = probe;
        for _ in 0..8 {
            let Some(n) = self.next_after(&t) else { return true };
            if n.date_naive() == t.date_naive() && t != probe {
                return false;
            }
            t = n;
        }
        true
    }
}

/// Local midnight of `date` in `tz` (or the first instant after it when
/// midnight falls in a DST gap).
pub fn local_start_of(date: NaiveDate, tz: Tz) -> DateTime<Tz> {
    local(date.and_hms_opt(0, 0, 0).unwrap(), tz)
}

/// A local wall-clock time in `tz`; the earlier instant when it repeats, the
/// first valid instant after it when it is skipped.
pub fn local(t: NaiveDateTime, tz: Tz) -> DateTime<Tz> {
    let mut probe = t;
    loop {
        if let Some(dt) = tz.from_local_datetime(&probe).earliest() {
            return dt;
        }
        probe += Duration::minutes(1);
    }
}

/// The interval a run with logical time `at` processes.
///
/// With a schedule: from the first fire at or after `at` (when it falls on
/// the same day) to the next fire. Without one: one day from local midnight.
pub fn interval_for(at: NaiveDateTime, schedule: Option<&Schedule>, tz: Tz) -> Interval {
    let start_local = local(at, tz);
    let Some(s) = schedule else {
        let end = local_start_of(at.date() + Duration::days(1), tz);
        return Interval {
            start: start_local,
            end,
        };
    };
    let start = match s.next_from(&start_local) {
        Some(f) if f.date_naive() == at.date() => f,
        _ => start_local,
    };
    let end = s.next_after(&start).unwrap_or(start + Duration::days(1));
    Interval { start, end }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nightly_interval_starts_at_the_fire_time_of_its_date() {
        let tz: Tz = "Europe/London".parse().unwrap();
        let s = Schedule::parse("0 2 * * *", tz).unwrap();
        let d = NaiveDate::from_ymd_opt(2010, 12, 1).unwrap();
        let i = interval_for(d.and_hms_opt(0, 0, 0).unwrap(), Some(&s), tz);
        assert_eq!(i.start.to_rfc3339(), "2010-12-01T02:00:00+00:00");
        assert_eq!(i.end.to_rfc3339(), "2010-12-02T02:00:00+00:00");
        assert!(s.is_daily_or_coarser());
    }

    #[test]
    fn aliases_and_granularity() {
        let tz = Tz::UTC;
        assert!(Schedule::parse("@daily", tz).unwrap().is_daily_or_coarser());
        assert!(!Schedule::parse("@hourly", tz).unwrap().is_daily_or_coarser());
        assert!(Schedule::parse("0 25 * * *", tz).is_err());
        assert!(parse_tz("Europe/Londn").is_err());
    }

    #[test]
    fn unscheduled_interval_is_one_local_day() {
        let tz: Tz = "America/New_York".parse().unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap();
        let i = interval_for(d.and_hms_opt(0, 0, 0).unwrap(), None, tz);
        assert_eq!((i.end - i.start).num_hours(), 23);
    }
}
