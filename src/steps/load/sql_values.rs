//! Arrow columns bound as SQLite statement parameters, value by value.
//! Numbers are bound as numbers, texts in place (no copy); dates and
//! timestamps are formatted by hand for the whole batch (chrono's
//! formatting and Arrow's cast to text were the largest cost of
//! `load.sqlite` once it was measured), on the reader's thread.

use anyhow::Result;
use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, Float64Array, Int64Array, StringArray};
use arrow::compute::{CastOptions, cast, cast_with_options};
use arrow::datatypes::{DataType, Decimal128Type, DecimalType, Float64Type, Int64Type};

use super::sqlite_insert::Binder;
use super::text_column;

/// One batch's column, ready to bind row by row. Decimals that fit a
/// double exactly are bound as numbers (what SQLite's NUMERIC affinity
/// makes of their text anyway, see
/// `decimals_bound_as_numbers_store_like_their_text`).
pub(super) enum SqlValues {
    Int(Int64Array),
    Real(Float64Array),
    Bool(BooleanArray),
    /// Text, and dates and timestamps formatted as text for the whole
    /// batch (on the reader's thread, see `for_each_batch_with`).
    Text(StringArray),
    /// Unscaled values and 10^scale, for precisions up to 15 digits.
    Decimal(Decimal128Array, i128),
    /// The same text on every row.
    Value(String),
}

/// Decimals of at most this many digits are exact in a double.
const EXACT_DECIMAL_DIGITS: u8 = 15;

impl SqlValues {
    pub(super) fn of(col: &ArrayRef) -> Result<Self> {
        use DataType::*;
        Ok(match col.data_type() {
            Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 => {
                // Errors (rather than NULLs) on a UInt64 past i64::MAX.
                let strict = CastOptions {
                    safe: false,
                    ..Default::default()
                };
                Self::Int(
                    cast_with_options(col, &Int64, &strict)?
                        .as_primitive::<Int64Type>()
                        .clone(),
                )
            }
            Float16 | Float32 | Float64 => Self::Real(cast(col, &Float64)?.as_primitive::<Float64Type>().clone()),
            Boolean => Self::Bool(col.as_boolean().clone()),
            Utf8 => Self::Text(col.as_string::<i32>().clone()),
            Date32 | Timestamp(..) => Self::Text(text_column(col, false)?),
            Decimal128(p, s) if *p <= EXACT_DECIMAL_DIGITS && (0..=EXACT_DECIMAL_DIGITS as i8).contains(s) => {
                Self::Decimal(col.as_primitive::<Decimal128Type>().clone(), 10i128.pow(*s as u32))
            }
            _ => Self::Text(text_column(col, false)?),
        })
    }

    pub(super) fn is_null(&self, row: usize) -> bool {
        match self {
            Self::Int(a) => a.is_null(row),
            Self::Real(a) => a.is_null(row),
            Self::Bool(a) => a.is_null(row),
            Self::Text(a) => a.is_null(row),
            Self::Decimal(a, _) => a.is_null(row),
            Self::Value(_) => false,
        }
    }

    /// Binds row `row`'s value as the next parameter of `p`.
    pub(super) fn bind<'v>(&'v self, p: &mut Binder<'v>, row: usize) -> Result<()> {
        if self.is_null(row) {
            return p.null();
        }
        match self {
            Self::Int(a) => p.int(a.value(row)),
            Self::Real(a) => p.real(a.value(row)),
            Self::Bool(a) => p.int(a.value(row) as i64),
            Self::Text(a) => p.text(a.value(row)),
            Self::Decimal(a, per_unit) => {
                let v = a.value(row);
                if v.unsigned_abs() >= 1 << 53 {
                    // Past its declared precision: the exact digits.
                    let (prec, scale) = match a.data_type() {
                        DataType::Decimal128(p, s) => (*p, *s),
                        _ => unreachable!("a decimal column"),
                    };
                    p.text_copied(&<Decimal128Type as DecimalType>::format_decimal(v, prec, scale))
                } else {
                    // Both fit an i64 (and a double exactly): 128-bit
                    // division per value was measurable.
                    let (v, per_unit) = (v as i64, *per_unit as i64);
                    if v % per_unit == 0 {
                        p.int(v / per_unit)
                    } else {
                        // Both below 2^53, so the division is the double
                        // nearest the decimal, as SQLite's parse of its text
                        // gives.
                        p.real(v as f64 / per_unit as f64)
                    }
                }
            }
            Self::Value(v) => p.text(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Date32Array, TimestampMicrosecondArray};
    use rusqlite::types::Value;

    use super::*;
    use crate::steps::load::sqlite_insert::Insert;

    /// Binds `col` row by row into a NUMERIC (or TEXT) column and reads back
    /// what SQLite stored.
    fn stored(col: ArrayRef, sql_type: &str) -> Vec<Value> {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch(&format!("CREATE TABLE t (v {sql_type})")).unwrap();
        let values = SqlValues::of(&col).unwrap();
        let mut insert = Insert::prepare(&db, "INSERT INTO t VALUES (?1)").unwrap();
        for row in 0..col.len() {
            insert.run(|p| values.bind(p, row)).unwrap();
        }
        drop(insert);
        let mut q = db.prepare("SELECT v FROM t ORDER BY rowid").unwrap();
        q.query_map([], |r| r.get::<_, Value>(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn decimals_bound_as_numbers_store_like_their_text() {
        let mut rng = fastrand::Rng::with_seed(7);
        for (precision, scale) in [(10u8, 3i8), (15, 2), (15, 0), (12, 12), (15, 7)] {
            let max = 10i128.pow(precision as u32);
            let mut v: Vec<Option<i128>> = (0..3000)
                .map(|_| match rng.u8(0..10) {
                    0 => None,
                    1 => Some(rng.i128(-1000..1000) * 10i128.pow(scale as u32) % max),
                    2 => Some(max - 1),
                    3 => Some(-(max - 1)),
                    _ => Some(rng.i128(-(max - 1)..max)),
                })
                .collect();
            v.push(Some(0));
            let col: ArrayRef = Arc::new(
                Decimal128Array::from(v)
                    .with_precision_and_scale(precision, scale)
                    .unwrap(),
            );
            assert!(matches!(SqlValues::of(&col).unwrap(), SqlValues::Decimal(..)));
            // The text form, as loads bound decimals before.
            let as_text: ArrayRef = Arc::new(text_column(&col, false).unwrap());
            assert_eq!(
                stored(col, "NUMERIC"),
                stored(as_text, "NUMERIC"),
                "decimal({precision},{scale})"
            );
        }
        // Wider decimals still go as their exact text.
        let wide: ArrayRef = Arc::new(
            Decimal128Array::from(vec![123_456_789_012_345_678_901i128])
                .with_precision_and_scale(30, 2)
                .unwrap(),
        );
        assert_eq!(stored(wide, "TEXT"), [Value::Text("1234567890123456789.01".into())]);
    }

    #[test]
    fn timestamps_and_dates_are_written_as_chrono_writes_them() {
        let mut rng = fastrand::Rng::with_seed(11);
        let micros: Vec<i64> = (0..5000)
            .map(|i| match i % 4 {
                0 => rng.i64(-62_135_596_800_000_000..253_402_300_799_000_000),
                1 => rng.i64(-3_000_000_000_000_000..3_000_000_000_000_000) / 1_000_000 * 1_000_000,
                2 => rng.i64(-1_000_000..1_000_000),
                _ => rng.i64(1_200_000_000..1_400_000_000) * 1_000_000,
            })
            .collect();
        let col: ArrayRef = Arc::new(TimestampMicrosecondArray::from(micros.clone()));
        let want: Vec<Value> = micros
            .iter()
            .map(|&us| {
                let t = chrono::DateTime::from_timestamp_micros(us).unwrap().naive_utc();
                let fmt = if us.rem_euclid(1_000_000) == 0 {
                    "%Y-%m-%d %H:%M:%S"
                } else {
                    "%Y-%m-%d %H:%M:%S%.6f"
                };
                Value::Text(t.format(fmt).to_string())
            })
            .collect();
        assert_eq!(stored(col, "TEXT"), want);
        let days: ArrayRef = Arc::new(Date32Array::from(vec![Some(0), Some(-1), None, Some(2_932_896)]));
        assert_eq!(
            stored(days, "TEXT"),
            [
                Value::Text("1970-01-01".into()),
                Value::Text("1969-12-31".into()),
                Value::Null,
                Value::Text("9999-12-31".into())
            ]
        );
    }
}
