//! Cron schedules in a time zone, their fire times under an explicit
//! daylight-saving policy, and the data interval of a logical date.
//!
//! A run for an interval starts when the interval ends: with `0 2 * * *`
//! the run that fires on the 2nd at 02:00 processes the interval
//! [1st 02:00, 2nd 02:00) and its `ds` is the 1st (the interval start).
//!
//! Fire times are computed here rather than by the cron library's own
//! time-zone arithmetic: the cron expression is matched against local
//! wall-clock times (as if in UTC, where nothing is skipped or repeated),
//! and each matching wall-clock time is then placed on the time line by
//! the DAG's DST policy:
//! - a wall-clock time that does not exist (spring forward) fires at the
//!   first instant after the gap (`dst_gap = "run_at_next_valid"`) or not
//!   at all (`"skip"`);
//! - a wall-clock time that happens twice (fall back) fires at its first
//!   instant only (`dst_overlap = "run_once"`) or at both (`"run_twice"`).
//!
//! Two matching times that land on the same instant (the gap's end) fire
//! once.

use std::str::FromStr;

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::Cron;
use serde::{Deserialize, Serialize};

/// What to do with a fire time that does not exist locally (the clock
/// jumps over it in spring).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DstGap {
    /// Fire at the first instant after the gap (02:30 in a 02:00-03:00
    /// gap fires at 03:00): no day is skipped.
    #[default]
    RunAtNextValid,
    /// Do not fire: that day has no run of this time.
    Skip,
}

/// What to do with a fire time that happens twice locally (the clock goes
/// back in autumn).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DstOverlap {
    /// Fire at the first of the two instants only: no day runs twice.
    #[default]
    RunOnce,
    /// Fire at both instants (each closes its own interval).
    RunTwice,
}

/// A DAG's daylight-saving policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DstPolicy {
    pub gap: DstGap,
    pub overlap: DstOverlap,
}

/// A parsed cron expression (5 or 6 fields, or `@daily`-style aliases),
/// the time zone it fires in and its DST policy.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub expr: String,
    pub tz: Tz,
    pub dst: DstPolicy,
    cron: Cron,
    grain: Grain,
}

/// How fine the schedule's fire times are: it decides how runs are keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grain {
    /// At most once a day: runs are keyed by date.
    Day,
    /// Keyed by date, hour and minute.
    Minute,
    /// Fires at seconds other than :00: keyed down to the second.
    Second,
}

/// One fire time of a schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Fire {
    /// The instant it fires, in the schedule's time zone.
    pub at: DateTime<Tz>,
    /// The local wall-clock time the cron expression matched (differs from
    /// `at` when it fell in a DST gap).
    pub nominal: NaiveDateTime,
    /// The second instant of a wall-clock time that happened twice
    /// (`run_twice` only).
    pub repeat: bool,
}

/// The data interval of one run, in the DAG's time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    pub start: DateTime<Tz>,
    pub end: DateTime<Tz>,
}

/// One scheduled run: its key (the logical date) and its interval. It runs
/// when the interval ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub key: String,
    pub interval: Interval,
}

pub fn parse_tz(name: &str) -> Result<Tz, String> {
    Tz::from_str(name).map_err(|_| format!("unknown time zone `{name}`"))
}

/// Local times are looked at this far either side of a window, so that a
/// wall-clock time whose instant moved by a DST shift (at most two hours
/// anywhere) is not missed.
const DST_MARGIN_HOURS: i64 = 3;

impl Schedule {
    pub fn parse(expr: &str, tz: Tz) -> Result<Self, String> {
        let cron = Cron::from_str(expr.trim()).map_err(|e| format!("bad cron expression `{expr}`: {e}"))?;
        let mut s = Self {
            expr: expr.to_string(),
            tz,
            dst: DstPolicy::default(),
            cron,
            grain: Grain::Minute,
        };
        s.grain = s.find_grain();
        Ok(s)
    }

    /// The same schedule under another DST policy.
    pub fn with_dst(mut self, dst: DstPolicy) -> Self {
        self.dst = dst;
        self
    }

    /// Human text for the expression ("At 02:00 every day").
    pub fn describe(&self) -> String {
        self.cron.describe()
    }

    /// The first matching wall-clock time strictly after `t`.
    fn nominal_after(&self, t: NaiveDateTime) -> Option<NaiveDateTime> {
        // Whole seconds in and out: cron has no finer unit, and croner
        // carries a fraction of the input into its answer.
        let t = t.with_nanosecond(0).unwrap_or(t);
        self.cron
            .find_next_occurrence(&Utc.from_utc_datetime(&t), false)
            .ok()
            .map(|d| d.naive_utc().with_nanosecond(0).unwrap_or(d.naive_utc()))
    }

    /// Places one matching wall-clock time on the time line (0, 1 or 2
    /// fires) by the DST policy.
    fn place(&self, nominal: NaiveDateTime) -> Vec<Fire> {
        match self.tz.from_local_datetime(&nominal) {
            LocalResult::Single(at) => vec![Fire {
                at,
                nominal,
                repeat: false,
            }],
            LocalResult::Ambiguous(first, second) => {
                let mut v = vec![Fire {
                    at: first,
                    nominal,
                    repeat: false,
                }];
                if self.dst.overlap == DstOverlap::RunTwice {
                    v.push(Fire {
                        at: second,
                        nominal,
                        repeat: true,
                    });
                }
                v
            }
            LocalResult::None => match self.dst.gap {
                DstGap::Skip => Vec::new(),
                DstGap::RunAtNextValid => vec![Fire {
                    at: after_gap(nominal, self.tz),
                    nominal,
                    repeat: false,
                }],
            },
        }
    }

    /// Fire times in `(after, until]`, in time order, each instant once.
    pub fn fires_between(&self, after: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Fire> {
        // The margin matters only near a change of UTC offset: without one
        // (the offsets either side of the widened window agree, and changes
        // are months apart), local times map one to one.
        let wide = Duration::hours(DST_MARGIN_HOURS);
        let offset = |t: DateTime<Utc>| t.with_timezone(&self.tz).offset().fix();
        let margin = if offset(after - wide) == offset(until + wide) {
            Duration::zero()
        } else {
            wide
        };
        let lo = after.with_timezone(&self.tz).naive_local() - margin;
        let hi = until.with_timezone(&self.tz).naive_local() + margin;
        let mut out: Vec<Fire> = Vec::new();
        let mut t = lo;
        while let Some(n) = self.nominal_after(t) {
            if n > hi {
                break;
            }
            out.extend(
                self.place(n)
                    .into_iter()
                    .filter(|f| f.at.with_timezone(&Utc) > after && f.at.with_timezone(&Utc) <= until),
            );
            t = n;
        }
        out.sort_by_key(|f| f.at);
        // Two wall-clock times that land on one instant (a gap's end) fire
        // once, as the one that really exists.
        out.dedup_by(|later, earlier| {
            if later.at == earlier.at {
                if self.tz.from_local_datetime(&later.nominal).single().is_some() {
                    earlier.nominal = later.nominal;
                }
                true
            } else {
                false
            }
        });
        out
    }

    /// The first fire strictly after `t`.
    pub fn next_fire(&self, t: DateTime<Utc>) -> Option<Fire> {
        for days in [0, 1, 8, 32, 367, 4 * 366 + 1, 29 * 366] {
            let span = if days == 0 {
                Duration::hours(2)
            } else {
                Duration::days(days)
            };
            if let Some(f) = self.fires_between(t, t + span).into_iter().next() {
                return Some(f);
            }
        }
        None
    }

    /// The last fire at or before `t`.
    pub fn prev_fire(&self, t: DateTime<Utc>) -> Option<Fire> {
        for days in [0, 1, 8, 32, 367, 4 * 366 + 1, 29 * 366] {
            let span = if days == 0 {
                Duration::hours(2)
            } else {
                Duration::days(days)
            };
            if let Some(f) = self.fires_between(t - span, t).pop() {
                return Some(f);
            }
        }
        None
    }

    /// The first fire strictly after `t` (a local time).
    pub fn next_after(&self, t: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        self.next_fire(t.with_timezone(&Utc)).map(|f| f.at)
    }

    /// The first fire at or after `t` (a local time).
    pub fn next_from(&self, t: &DateTime<Tz>) -> Option<DateTime<Tz>> {
        self.next_fire(t.with_timezone(&Utc) - Duration::nanoseconds(1))
            .map(|f| f.at)
    }

    /// Does this schedule fire at most once a day? Then runs are keyed by
    /// date; otherwise by date and time.
    pub fn is_daily_or_coarser(&self) -> bool {
        self.grain == Grain::Day
    }

    fn find_grain(&self) -> Grain {
        let mut t = NaiveDate::from_ymd_opt(2001, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let mut prev: Option<NaiveDateTime> = None;
        let mut grain = Grain::Day;
        for _ in 0..16 {
            let Some(n) = self.nominal_after(t) else { break };
            if n.second() != 0 {
                return Grain::Second;
            }
            if prev.is_some_and(|p| p.date() == n.date()) {
                grain = Grain::Minute;
            }
            prev = Some(n);
            t = n;
        }
        grain
    }

    /// The key (logical date) of the run whose interval opens with `fire`:
    /// its local date for daily DAGs, else its local date and time. The
    /// second instant of a repeated wall-clock time (`run_twice`) carries
    /// its UTC offset so that both runs have their own key.
    pub fn key_of(&self, fire: &Fire) -> String {
        if fire.repeat {
            return match self.grain {
                Grain::Second => fire.at.format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
                _ => fire.at.format("%Y-%m-%dT%H:%M%:z").to_string(),
            };
        }
        self.key_of_start(&fire.at)
    }

    /// The key of a run whose interval starts at `start`.
    pub fn key_of_start(&self, start: &DateTime<Tz>) -> String {
        match self.grain {
            Grain::Day => start.format("%Y-%m-%d").to_string(),
            Grain::Minute => start.format("%Y-%m-%dT%H:%M").to_string(),
            Grain::Second => start.format("%Y-%m-%dT%H:%M:%S").to_string(),
        }
    }

    /// The run a fire starts: the interval that ends at `fire` (from the
    /// fire before it).
    pub fn slot_ending_at(&self, fire: &Fire) -> Option<Slot> {
        let end_utc = fire.at.with_timezone(&Utc);
        let prev = self.prev_fire(end_utc - Duration::nanoseconds(1))?;
        Some(Slot {
            key: self.key_of(&prev),
            interval: Interval {
                start: prev.at,
                end: fire.at,
            },
        })
    }

    /// The run whose interval opens with `fire` (it runs at the next fire).
    pub fn slot_starting_at(&self, fire: &Fire) -> Option<(Slot, Fire)> {
        let next = self.next_fire(fire.at.with_timezone(&Utc))?;
        Some((
            Slot {
                key: self.key_of(fire),
                interval: Interval {
                    start: fire.at,
                    end: next.at,
                },
            },
            next,
        ))
    }
}

/// The first instant after a DST gap that swallowed `t` (minute steps: every
/// zone's offsets are whole minutes).
fn after_gap(t: NaiveDateTime, tz: Tz) -> DateTime<Tz> {
    let mut probe = t.with_second(0).unwrap_or(t);
    loop {
        probe += Duration::minutes(1);
        if let Some(dt) = tz.from_local_datetime(&probe).earliest() {
            return dt;
        }
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
    match tz.from_local_datetime(&t).earliest() {
        Some(dt) => dt,
        None => after_gap(t, tz),
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

/// The logical key of a run of `start` (see [`Schedule::key_of`]); a DAG
/// without a schedule is keyed by date.
pub fn logical_key(start: &DateTime<Tz>, schedule: Option<&Schedule>) -> String {
    match schedule {
        Some(s) => s.key_of_start(start),
        None => start.format("%Y-%m-%d").to_string(),
    }
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
