//! Arrow columns as PostgreSQL binary COPY values: each column of a batch
//! (already converted to the target's types by `schema::Mapping`) becomes
//! a vector of typed values that `BinaryCopyInWriter` encodes.

use std::error::Error;

use anyhow::{Result, bail};
use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
    Time64MicrosecondType, TimeUnit, TimestampMicrosecondType,
};
use bytes::{BufMut, BytesMut};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// One column's values, typed for binary COPY.
pub enum PgColumn<'a> {
    I16(Vec<Option<i16>>),
    I32(Vec<Option<i32>>),
    I64(Vec<Option<i64>>),
    F32(Vec<Option<f32>>),
    F64(Vec<Option<f64>>),
    Bool(Vec<Option<bool>>),
    Text(Vec<Option<&'a str>>),
    Date(Vec<Option<NaiveDate>>),
    Timestamp(Vec<Option<NaiveDateTime>>),
    TimestampTz(Vec<Option<DateTime<Utc>>>),
    Time(Vec<Option<NaiveTime>>),
    Numeric(Vec<Option<PgNumeric>>),
}

fn collect<T: arrow::datatypes::ArrowPrimitiveType, U>(a: &dyn Array, f: impl Fn(T::Native) -> U) -> Vec<Option<U>> {
    a.as_primitive::<T>().iter().map(|v| v.map(&f)).collect()
}

impl<'a> PgColumn<'a> {
    pub fn of(a: &'a dyn Array) -> Result<Self> {
        let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid");
        Ok(match a.data_type() {
            DataType::Int16 => PgColumn::I16(collect::<Int16Type, _>(a, |v| v)),
            DataType::Int32 => PgColumn::I32(collect::<Int32Type, _>(a, |v| v)),
            DataType::Int64 => PgColumn::I64(collect::<Int64Type, _>(a, |v| v)),
            DataType::Float32 => PgColumn::F32(collect::<Float32Type, _>(a, |v| v)),
            DataType::Float64 => PgColumn::F64(collect::<Float64Type, _>(a, |v| v)),
            DataType::Boolean => PgColumn::Bool(a.as_boolean().iter().collect()),
            DataType::Utf8 => PgColumn::Text(a.as_string::<i32>().iter().collect()),
            DataType::Date32 => PgColumn::Date(collect::<Date32Type, _>(a, |d| {
                epoch + chrono::Duration::days(i64::from(d))
            })),
            DataType::Timestamp(TimeUnit::Microsecond, None) => {
                PgColumn::Timestamp(collect::<TimestampMicrosecondType, _>(a, |v| {
                    DateTime::from_timestamp_micros(v).unwrap_or_default().naive_utc()
                }))
            }
            DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => {
                PgColumn::TimestampTz(collect::<TimestampMicrosecondType, _>(a, |v| {
                    DateTime::from_timestamp_micros(v).unwrap_or_default()
                }))
            }
            DataType::Time64(TimeUnit::Microsecond) => PgColumn::Time(collect::<Time64MicrosecondType, _>(a, |v| {
                NaiveTime::from_num_seconds_from_midnight_opt((v / 1_000_000) as u32, ((v % 1_000_000) * 1000) as u32)
                    .unwrap_or_default()
            })),
            DataType::Decimal128(_, scale) => {
                let scale = *scale;
                PgColumn::Numeric(collect::<Decimal128Type, _>(a, |v| PgNumeric { value: v, scale }))
            }
            other => bail!("no binary COPY form for {other}"),
        })
    }

    /// The value at `row`, for the writer.
    pub fn get(&self, row: usize) -> &(dyn ToSql + Sync) {
        match self {
            PgColumn::I16(v) => &v[row],
            PgColumn::I32(v) => &v[row],
            PgColumn::I64(v) => &v[row],
            PgColumn::F32(v) => &v[row],
            PgColumn::F64(v) => &v[row],
            PgColumn::Bool(v) => &v[row],
            PgColumn::Text(v) => &v[row],
            PgColumn::Date(v) => &v[row],
            PgColumn::Timestamp(v) => &v[row],
            PgColumn::TimestampTz(v) => &v[row],
            PgColumn::Time(v) => &v[row],
            PgColumn::Numeric(v) => &v[row],
        }
    }
}

/// The header of a binary COPY stream: signature, flags, extension length.
pub const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The trailer of a binary COPY stream (a field count of -1).
pub const COPY_TRAILER: &[u8] = b"\xff\xff";

/// Appends `rows` rows of `cols` (of PostgreSQL `types`) to `out` in the
/// binary COPY format. Encoding a whole batch into one buffer sends it in
/// one message rather than a write (and an await) per row.
pub fn encode_rows(cols: &[PgColumn<'_>], types: &[Type], rows: usize, out: &mut BytesMut) -> Result<()> {
    for r in 0..rows {
        out.put_i16(cols.len() as i16);
        for (c, ty) in cols.iter().zip(types) {
            let at = out.len();
            out.put_i32(0);
            let len = match c
                .get(r)
                .to_sql_checked(ty, out)
                .map_err(|e| anyhow::anyhow!("encoding a {ty} value: {e}"))?
            {
                IsNull::Yes => -1,
                IsNull::No => (out.len() - at - 4) as i32,
            };
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }
    Ok(())
}

/// A decimal (`value` × 10^-`scale`) in PostgreSQL's binary NUMERIC form.
#[derive(Debug, Clone, Copy)]
pub struct PgNumeric {
    pub value: i128,
    pub scale: i8,
}

impl PgNumeric {
    /// (weight, base-10000 digits) of the absolute value.
    fn groups(&self) -> (i16, Vec<i16>) {
        let scale = self.scale.max(0) as u32;
        let abs = self.value.unsigned_abs();
        let int = abs / 10u128.pow(scale);
        let frac = abs % 10u128.pow(scale);
        let mut int_groups = Vec::new();
        let mut n = int;
        while n > 0 {
            int_groups.push((n % 10_000) as i16);
            n /= 10_000;
        }
        int_groups.reverse();
        // Fraction digits, padded on the right to whole groups of 4.
        let frac_len = scale.div_ceil(4) * 4;
        let mut f = frac * 10u128.pow(frac_len - scale);
        let mut frac_groups = vec![0i16; (frac_len / 4) as usize];
        for g in frac_groups.iter_mut().rev() {
            *g = (f % 10_000) as i16;
            f /= 10_000;
        }
        let mut weight = int_groups.len() as i16 - 1;
        let mut digits = int_groups;
        digits.extend(frac_groups);
        while digits.first() == Some(&0) {
            digits.remove(0);
            weight -= 1;
        }
        while digits.last() == Some(&0) {
            digits.pop();
        }
        if digits.is_empty() {
            weight = 0;
        }
        (weight, digits)
    }
}

impl ToSql for PgNumeric {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        let (weight, digits) = self.groups();
        out.put_i16(digits.len() as i16);
        out.put_i16(weight);
        out.put_u16(if self.value < 0 && !digits.is_empty() {
            0x4000
        } else {
            0
        });
        out.put_i16(i16::from(self.scale.max(0)));
        for d in digits {
            out.put_i16(d);
        }
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_groups() {
        let g = |value, scale| PgNumeric { value, scale }.groups();
        assert_eq!(g(255, 2), (0, vec![2, 5500]));
        assert_eq!(g(123_456_789, 2), (1, vec![123, 4567, 8900]));
        assert_eq!(g(-1, 3), (-1, vec![10]));
        assert_eq!(g(0, 2), (0, vec![]));
        assert_eq!(g(10_000, 0), (1, vec![1]));
    }
}
