//! Calendar arithmetic for dates and timestamps: literal parsing and
//! `date_trunc`, as tight integer loops (there is no Arrow kernel for
//! truncation).

use std::cell::Cell;
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Date32Type, TimeUnit, TimestampMicrosecondType};
use arrow::error::ArrowError;
use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, Offset, TimeZone};

pub(crate) const US_PER_SECOND: i64 = 1_000_000;
pub(crate) const US_PER_MINUTE: i64 = 60 * US_PER_SECOND;
pub(crate) const US_PER_HOUR: i64 = 60 * US_PER_MINUTE;
pub(crate) const US_PER_DAY: i64 = 24 * US_PER_HOUR;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses `YYYY-MM-DD` into days since the epoch.
pub(crate) fn parse_date(s: &str) -> Option<i32> {
    let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok()?;
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    i32::try_from((d - epoch).num_days()).ok()
}

/// Parses `YYYY-MM-DD[ HH:MM[:SS[.ffffff]]]` (or with a `T`) into
/// microseconds since the epoch, with no time zone.
pub(crate) fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    const FORMATS: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ];
    for f in FORMATS {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(t.and_utc().timestamp_micros());
        }
    }
    let days = parse_date(s)?;
    Some(days as i64 * US_PER_DAY)
}

/// A `date_trunc` unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TruncUnit {
    Year,
    Quarter,
    Month,
    Week,
    Day,
    Hour,
    Minute,
    Second,
}

impl TruncUnit {
    pub const NAMES: [&'static str; 8] = ["year", "quarter", "month", "week", "day", "hour", "minute", "second"];

    pub fn parse(s: &str) -> Option<TruncUnit> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "year" | "years" => TruncUnit::Year,
            "quarter" | "quarters" => TruncUnit::Quarter,
            "month" | "months" => TruncUnit::Month,
            "week" | "weeks" => TruncUnit::Week,
            "day" | "days" => TruncUnit::Day,
            "hour" | "hours" => TruncUnit::Hour,
            "minute" | "minutes" => TruncUnit::Minute,
            "second" | "seconds" => TruncUnit::Second,
            _ => return None,
        })
    }

    /// Whether the unit is finer than a day (makes no sense for dates).
    pub fn is_time_of_day(self) -> bool {
        matches!(self, TruncUnit::Hour | TruncUnit::Minute | TruncUnit::Second)
    }
}

/// Truncates a day count to the start of its year, quarter, month or ISO
/// week (Monday). Finer units leave it unchanged.
#[inline]
pub(crate) fn trunc_days(days: i64, unit: TruncUnit) -> i64 {
    match unit {
        TruncUnit::Year => {
            let (y, _, _) = civil_from_days(days);
            days_from_civil(y, 1, 1)
        }
        TruncUnit::Quarter => {
            let (y, m, _) = civil_from_days(days);
            days_from_civil(y, (m - 1) / 3 * 3 + 1, 1)
        }
        TruncUnit::Month => {
            let (y, m, _) = civil_from_days(days);
            days_from_civil(y, m, 1)
        }
        // 1970-01-01 was a Thursday: (days + 3) mod 7 is 0 on Mondays.
        TruncUnit::Week => days - (days + 3).rem_euclid(7),
        TruncUnit::Day | TruncUnit::Hour | TruncUnit::Minute | TruncUnit::Second => days,
    }
}

/// Truncates a wall-clock reading in microseconds.
#[inline]
pub(crate) fn trunc_micros(us: i64, unit: TruncUnit) -> i64 {
    match unit {
        TruncUnit::Hour => us - us.rem_euclid(US_PER_HOUR),
        TruncUnit::Minute => us - us.rem_euclid(US_PER_MINUTE),
        TruncUnit::Second => us - us.rem_euclid(US_PER_SECOND),
        _ => trunc_days(us.div_euclid(US_PER_DAY), unit) * US_PER_DAY,
    }
}

/// `date_trunc` over a `Date32` or `Timestamp(Microsecond, tz)` array; the
/// result has the input's type. With a time zone the truncation happens on
/// the local wall clock (midnight in Europe/London, not in UTC).
pub(crate) fn date_trunc(array: &dyn Array, unit: TruncUnit) -> Result<ArrayRef, ArrowError> {
    let t = Truncator::new(unit);
    match array.data_type() {
        DataType::Date32 => {
            let a = array.as_primitive::<Date32Type>();
            let out = a.unary_opt::<_, Date32Type>(|d| i32::try_from(t.days(d as i64)).ok());
            Ok(Arc::new(out))
        }
        DataType::Timestamp(TimeUnit::Microsecond, None) => {
            let a = array.as_primitive::<TimestampMicrosecondType>();
            let out = a.unary::<_, TimestampMicrosecondType>(|us| t.micros(us));
            Ok(Arc::new(out))
        }
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz_name)) => {
            let zone = Zone::new(tz_name.parse()?);
            let a = array.as_primitive::<TimestampMicrosecondType>();
            let out = a
                .unary_opt::<_, TimestampMicrosecondType>(|us| zone.truncate(us, &t))
                .with_timezone(tz_name.clone());
            Ok(Arc::new(out))
        }
        other => Err(ArrowError::InvalidArgumentError(format!(
            "date_trunc does not support {other}"
        ))),
    }
}

/// Truncation with a one-entry cache of the last calendar computation:
/// rows of a batch tend to share a day, so the civil conversion runs once
/// per distinct day rather than once per row.
struct Truncator {
    unit: TruncUnit,
    last: Cell<(i64, i64)>,
}

impl Truncator {
    fn new(unit: TruncUnit) -> Self {
        Truncator {
            unit,
            last: Cell::new((i64::MIN, 0)),
        }
    }

    #[inline]
    fn days(&self, days: i64) -> i64 {
        match self.unit {
            TruncUnit::Year | TruncUnit::Quarter | TruncUnit::Month => {
                let (d, t) = self.last.get();
                if d == days {
                    return t;
                }
                let t = trunc_days(days, self.unit);
                self.last.set((days, t));
                t
            }
            _ => trunc_days(days, self.unit),
        }
    }

    #[inline]
    fn micros(&self, us: i64) -> i64 {
        if self.unit.is_time_of_day() {
            trunc_micros(us, self.unit)
        } else {
            self.days(us.div_euclid(US_PER_DAY)) * US_PER_DAY
        }
    }
}

/// A time zone with caches for the two offset look-ups truncation needs.
struct Zone {
    tz: Tz,
    /// UTC day -> its offset, or `None` on a day with a transition.
    day_offset: Cell<(i64, Option<i64>)>,
    /// Last (truncated local reading, offset) -> its UTC instant.
    last_local: Cell<(i64, i64, i64)>,
}

impl Zone {
    fn new(tz: Tz) -> Self {
        Zone {
            tz,
            day_offset: Cell::new((i64::MIN, None)),
            last_local: Cell::new((i64::MIN, 0, 0)),
        }
    }

    fn lookup(&self, us: i64) -> Option<i64> {
        let utc = DateTime::from_timestamp_micros(us)?.naive_utc();
        Some(self.tz.offset_from_utc_datetime(&utc).fix().local_minus_utc() as i64 * US_PER_SECOND)
    }

    /// The zone's offset from UTC at instant `us`, in microseconds. A day
    /// whose first and last instants share an offset has no transition
    /// (zones never change twice and back within one day), so its offset is
    /// cached for the whole day.
    fn offset(&self, us: i64) -> Option<i64> {
        let day = us.div_euclid(US_PER_DAY);
        let (d, cached) = self.day_offset.get();
        if d == day {
            return match cached {
                Some(o) => Some(o),
                None => self.lookup(us),
            };
        }
        let start = day.checked_mul(US_PER_DAY)?;
        let first = self.lookup(start)?;
        let last = self.lookup(start + US_PER_DAY - 1)?;
        let whole_day = (first == last).then_some(first);
        self.day_offset.set((day, whole_day));
        match whole_day {
            Some(o) => Some(o),
            None => self.lookup(us),
        }
    }

    fn truncate(&self, us: i64, t: &Truncator) -> Option<i64> {
        let offset = self.offset(us)?;
        let local = t.micros(us.checked_add(offset)?);
        let (l, o, cached) = self.last_local.get();
        if l == local && o == offset {
            return Some(cached);
        }
        let naive = DateTime::from_timestamp_micros(local)?.naive_utc();
        let utc = match self.tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => t.timestamp_micros(),
            // A reading that occurs twice (the hour DST ends): prefer the
            // one on the original instant's side of the change.
            LocalResult::Ambiguous(earliest, latest) => {
                if latest.offset().fix().local_minus_utc() as i64 * US_PER_SECOND == offset {
                    latest.timestamp_micros()
                } else {
                    earliest.timestamp_micros()
                }
            }
            // The truncated reading falls in a DST gap (midnight skipped):
            // the period starts at the first reading that exists, which is
            // the transition itself (gaps end on a quarter hour).
            LocalResult::None => (1..=16)
                .find_map(|k| {
                    let later = naive + chrono::Duration::minutes(15 * k);
                    self.tz.from_local_datetime(&later).earliest()
                })
                .map_or(local - offset, |t| t.timestamp_micros()),
        };
        self.last_local.set((local, offset, utc));
        Some(utc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Date32Array, TimestampMicrosecondArray};

    #[test]
    fn civil_round_trip() {
        for days in [-800_000i64, -1, 0, 1, 59, 365, 14_944, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2010, 12, 1), 14_944);
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
    }

    #[test]
    fn literals() {
        assert_eq!(parse_date("2010-12-01"), Some(14_944));
        assert_eq!(parse_date("2010-13-01"), None);
        assert_eq!(parse_date("12/01/2010"), None);
        let ts = parse_timestamp("2010-12-01 08:26:00").unwrap();
        assert_eq!(ts, 14_944 * US_PER_DAY + 8 * US_PER_HOUR + 26 * US_PER_MINUTE);
        assert_eq!(parse_timestamp("2010-12-01T08:26:00"), Some(ts));
        assert_eq!(parse_timestamp("2010-12-01 08:26"), Some(ts));
        assert_eq!(parse_timestamp("2010-12-01 08:26:00.5"), Some(ts + 500_000));
        assert_eq!(parse_timestamp("2010-12-01"), Some(14_944 * US_PER_DAY));
        assert_eq!(parse_timestamp("2010-12-01 25:00:00"), None);
    }

    #[test]
    fn truncation_units() {
        // 2010-12-01 was a Wednesday.
        let d = days_from_civil(2010, 12, 1);
        assert_eq!(trunc_days(d, TruncUnit::Year), days_from_civil(2010, 1, 1));
        assert_eq!(trunc_days(d, TruncUnit::Quarter), days_from_civil(2010, 10, 1));
        assert_eq!(trunc_days(d, TruncUnit::Month), d);
        assert_eq!(trunc_days(d, TruncUnit::Week), days_from_civil(2010, 11, 29));
        assert_eq!(trunc_days(d + 5, TruncUnit::Week), days_from_civil(2010, 12, 6));
        assert_eq!(trunc_days(-1, TruncUnit::Week), days_from_civil(1969, 12, 29));
        let us = d * US_PER_DAY + 8 * US_PER_HOUR + 26 * US_PER_MINUTE + 7 * US_PER_SECOND + 9;
        assert_eq!(trunc_micros(us, TruncUnit::Hour), d * US_PER_DAY + 8 * US_PER_HOUR);
        assert_eq!(
            trunc_micros(us, TruncUnit::Minute),
            d * US_PER_DAY + 8 * US_PER_HOUR + 26 * US_PER_MINUTE
        );
        assert_eq!(trunc_micros(us, TruncUnit::Second), us - 9);
        assert_eq!(trunc_micros(us, TruncUnit::Day), d * US_PER_DAY);
        assert_eq!(trunc_micros(-1, TruncUnit::Day), -US_PER_DAY);
    }

    #[test]
    fn truncation_in_a_zone() {
        // 2010-07-15 00:30 in London (BST, +01:00) is 2010-07-14 23:30 UTC.
        let local_midnight_utc = days_from_civil(2010, 7, 15) * US_PER_DAY - US_PER_HOUR;
        let t = local_midnight_utc + 30 * US_PER_MINUTE;
        let a = TimestampMicrosecondArray::from(vec![Some(t), None]).with_timezone("Europe/London");
        let out = date_trunc(&a, TruncUnit::Day).unwrap();
        let out = out.as_primitive::<TimestampMicrosecondType>();
        assert_eq!(out.value(0), local_midnight_utc);
        assert!(out.is_null(1));
        assert_eq!(out.data_type(), a.data_type());
        // Month start in London: 2010-07-01 00:00 BST.
        let out = date_trunc(&a, TruncUnit::Month).unwrap();
        let out = out.as_primitive::<TimestampMicrosecondType>();
        assert_eq!(out.value(0), days_from_civil(2010, 7, 1) * US_PER_DAY - US_PER_HOUR);
        // Fixed offsets work too.
        let a = TimestampMicrosecondArray::from(vec![t]).with_timezone("+05:30");
        let out = date_trunc(&a, TruncUnit::Hour).unwrap();
        let v = out.as_primitive::<TimestampMicrosecondType>().value(0);
        assert_eq!((v + 330 * US_PER_MINUTE).rem_euclid(US_PER_HOUR), 0);
    }

    #[test]
    fn truncation_across_dst_changes() {
        // London left BST on 2010-10-31 at 01:00 UTC. Every hour of that
        // day and its neighbours truncates to its local midnight.
        let start = days_from_civil(2010, 10, 30) * US_PER_DAY;
        let hours: Vec<i64> = (0..72).map(|h| start + h * US_PER_HOUR + 17 * US_PER_MINUTE).collect();
        let a = TimestampMicrosecondArray::from(hours.clone()).with_timezone("Europe/London");
        let out = date_trunc(&a, TruncUnit::Day).unwrap();
        let out = out.as_primitive::<TimestampMicrosecondType>();
        let tz: Tz = "Europe/London".parse().unwrap();
        for (i, us) in hours.iter().enumerate() {
            let local = DateTime::from_timestamp_micros(*us).unwrap().with_timezone(&tz);
            let midnight = tz
                .from_local_datetime(&local.date_naive().and_hms_opt(0, 0, 0).unwrap())
                .earliest()
                .unwrap()
                .timestamp_micros();
            assert_eq!(out.value(i), midnight, "hour {i}");
        }
        // Hour truncation keeps the ambiguous hour's two instants apart.
        let out = date_trunc(&a, TruncUnit::Hour).unwrap();
        let out = out.as_primitive::<TimestampMicrosecondType>();
        for (i, us) in hours.iter().enumerate() {
            assert_eq!(out.value(i), us - 17 * US_PER_MINUTE, "hour {i}");
        }
    }

    #[test]
    fn truncation_into_a_dst_gap() {
        // Sao Paulo skipped 2018-11-04 00:00-01:00 local (03:00 UTC): that
        // day starts at 01:00 -02:00, the transition instant.
        let transition = days_from_civil(2018, 11, 4) * US_PER_DAY + 3 * US_PER_HOUR;
        let noon = transition + 11 * US_PER_HOUR;
        let a = TimestampMicrosecondArray::from(vec![noon]).with_timezone("America/Sao_Paulo");
        let out = date_trunc(&a, TruncUnit::Day).unwrap();
        assert_eq!(out.as_primitive::<TimestampMicrosecondType>().value(0), transition);
    }

    #[test]
    fn truncating_dates() {
        let a = Date32Array::from(vec![Some(days_from_civil(2011, 5, 17) as i32), None]);
        let out = date_trunc(&a, TruncUnit::Year).unwrap();
        let out = out.as_primitive::<Date32Type>();
        assert_eq!(out.value(0) as i64, days_from_civil(2011, 1, 1));
        assert!(out.is_null(1));
    }
}
