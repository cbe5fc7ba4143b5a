//! The MySQL/MariaDB driver of `extract.sql` (mysql_async): the query
//! prepared with `?` placeholders and executed with bound values in a
//! read-only transaction; rows are read off the socket one at a time (the
//! binary protocol, no client-side result buffering) into batches.
//!
//! Types map exactly: integers -> int64 (`BIGINT UNSIGNED` ->
//! decimal(20,0), as it may exceed int64), `TINYINT(1)`/`BOOL` -> bool,
//! `DECIMAL(p,s)` -> decimal(p,s), `FLOAT`/`DOUBLE` -> float64, `DATE` ->
//! date, `DATETIME` -> timestamp, `TIMESTAMP` -> timestamp UTC, `YEAR` and
//! `BIT` -> int64, text types, `ENUM`, `SET`, `JSON` and `TIME` -> string,
//! binary types (`BLOB`, `BINARY`, `VARBINARY`) -> binary.

use anyhow::{Context, Result, anyhow, bail};
use futures_util::TryStreamExt;
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use mysql_async::{Column, Row, TxOpts, Value as My};

use super::Sink;
use super::columns::{BatchBuilder, ColType, Value};
use crate::spec::project::Connection;
use crate::steps::StepContext;

/// MySQL's character set number for binary (non-text) data.
const BINARY_CHARSET: u16 = 63;
/// Decimal128's largest precision: wider DECIMALs (MySQL allows 65) are
/// read at 38 digits and a value that does not fit fails the task.
const MAX_PRECISION: u8 = 38;

/// Runs `sql` (with `?` placeholders) bound to `params` (one per
/// placeholder, in order) and streams the rows into `sink`.
pub async fn extract(
    cx: &StepContext,
    conn: &Connection,
    sql: &str,
    params: Vec<My>,
    batch_rows: usize,
    sink: &mut Sink,
) -> Result<()> {
    let (mut c, shown) = crate::warehouse::mysql::connect(conn).await?;
    cx.log.note(&format!("connected to {shown}"));
    let result = async {
        let my = |what: &str| {
            let shown = shown.clone();
            let what = what.to_string();
            move |e: mysql_async::Error| anyhow!("{what} on {shown}: {}", crate::warehouse::mysql::describe(&e))
        };
        let mut opts = TxOpts::default();
        opts.with_readonly(Some(true)).with_consistent_snapshot(true);
        let mut tx = c.start_transaction(opts).await.map_err(my("starting a transaction"))?;
        let stmt = tx.prep(sql).await.map_err(my("preparing the query"))?;
        if stmt.num_params() as usize != params.len() {
            bail!(
                "the query has {} parameter(s) but {} value(s) were given",
                stmt.num_params(),
                params.len()
            );
        }
        let mut result = tx.exec_iter(&stmt, params).await.map_err(my("running the query"))?;
        let mut stream = result
            .stream::<Row>()
            .await
            .map_err(my("running the query"))?
            .ok_or_else(|| anyhow!("the query returned no result set (is it a SELECT?)"))?;
        let columns = stream.columns();
        let names: Vec<String> = columns.iter().map(|c| c.name_str().into_owned()).collect();
        let types = columns
            .iter()
            .map(|c| col_type(c).with_context(|| format!("column `{}`", c.name_str())))
            .collect::<Result<Vec<_>>>()?;
        sink.start(&names, &types)?;
        let mut batch = BatchBuilder::new(&names, &types);
        while let Some(row) = stream.try_next().await.map_err(my("reading rows"))? {
            for (i, v) in row.unwrap_raw().into_iter().enumerate() {
                let v = decode(&columns[i], types[i], v.unwrap_or(My::NULL)).with_context(|| {
                    format!("column `{}` of row {}", names[i], sink.rows() + batch.len() as u64 + 1)
                })?;
                sink.push(&mut batch, i, v)?;
            }
            batch.end_row();
            if batch.len() >= batch_rows {
                cx.check_cancelled()?;
                sink.write(&batch.finish()?)?;
            }
        }
        if batch.len() > 0 {
            sink.write(&batch.finish()?)?;
        }
        drop(stream);
        drop(result);
        tx.commit().await.map_err(my("committing"))?;
        Ok(())
    }
    .await;
    // Best effort: the server closes the session when the socket goes.
    let _ = c.disconnect().await;
    result
}

/// The value bound for `:last_watermark`: a recorded UTC timestamp
/// (`... +00:00`, from a `TIMESTAMP` column) becomes a DATETIME in the
/// session's UTC and an integer an integer, so the server compares them
/// exactly (a string compared with a number is compared as a double);
/// anything else is bound as text and converted by the server.
pub fn watermark_param(text: Option<&str>) -> My {
    let Some(t) = text else { return My::NULL };
    if let Ok(i) = t.parse::<i64>() {
        return My::Int(i);
    }
    if let Ok(u) = t.parse::<u64>() {
        return My::UInt(u);
    }
    if let Some(naive) = t.strip_suffix("+00:00")
        && let Ok(ts) = chrono::NaiveDateTime::parse_from_str(naive, "%Y-%m-%d %H:%M:%S%.f")
    {
        use chrono::{Datelike, Timelike};
        return My::Date(
            ts.year() as u16,
            ts.month() as u8,
            ts.day() as u8,
            ts.hour() as u8,
            ts.minute() as u8,
            ts.second() as u8,
            ts.nanosecond() / 1000,
        );
    }
    text_param(Some(t))
}

/// A parameter bound as text (the server converts it to the type the
/// query compares it with).
pub fn text_param(text: Option<&str>) -> My {
    text.map_or(My::NULL, |t| My::Bytes(t.as_bytes().to_vec()))
}

/// A column's Arrow type from its result-set metadata.
fn col_type(c: &Column) -> Result<ColType> {
    let unsigned = c.flags().contains(ColumnFlags::UNSIGNED_FLAG);
    Ok(match c.column_type() {
        // TINYINT(1) is how MySQL spells BOOL.
        ColumnType::MYSQL_TYPE_TINY if c.column_length() == 1 => ColType::Bool,
        ColumnType::MYSQL_TYPE_TINY
        | ColumnType::MYSQL_TYPE_SHORT
        | ColumnType::MYSQL_TYPE_INT24
        | ColumnType::MYSQL_TYPE_LONG
        | ColumnType::MYSQL_TYPE_YEAR => ColType::Int,
        ColumnType::MYSQL_TYPE_LONGLONG if unsigned => ColType::Decimal(20, 0),
        ColumnType::MYSQL_TYPE_LONGLONG => ColType::Int,
        ColumnType::MYSQL_TYPE_BIT if c.column_length() <= 63 => ColType::Int,
        ColumnType::MYSQL_TYPE_BIT => ColType::Decimal(20, 0),
        ColumnType::MYSQL_TYPE_FLOAT | ColumnType::MYSQL_TYPE_DOUBLE => ColType::Float,
        ColumnType::MYSQL_TYPE_NEWDECIMAL | ColumnType::MYSQL_TYPE_DECIMAL => {
            // The display length counts the sign (signed columns) and the
            // point (when there are decimals).
            let scale = c.decimals();
            let precision = c.column_length() as i64 - i64::from(scale > 0) - i64::from(!unsigned);
            ColType::Decimal((precision.max(1) as u8).min(MAX_PRECISION), scale as i8)
        }
        ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE => ColType::Date,
        ColumnType::MYSQL_TYPE_DATETIME | ColumnType::MYSQL_TYPE_DATETIME2 => ColType::Timestamp(false),
        ColumnType::MYSQL_TYPE_TIMESTAMP | ColumnType::MYSQL_TYPE_TIMESTAMP2 => ColType::Timestamp(true),
        ColumnType::MYSQL_TYPE_TIME | ColumnType::MYSQL_TYPE_TIME2 => ColType::Text,
        // MySQL's JSON comes with the binary character set; it is text.
        ColumnType::MYSQL_TYPE_JSON | ColumnType::MYSQL_TYPE_NULL => ColType::Text,
        ColumnType::MYSQL_TYPE_VARCHAR
        | ColumnType::MYSQL_TYPE_VAR_STRING
        | ColumnType::MYSQL_TYPE_STRING
        | ColumnType::MYSQL_TYPE_ENUM
        | ColumnType::MYSQL_TYPE_SET
        | ColumnType::MYSQL_TYPE_TINY_BLOB
        | ColumnType::MYSQL_TYPE_MEDIUM_BLOB
        | ColumnType::MYSQL_TYPE_LONG_BLOB
        | ColumnType::MYSQL_TYPE_BLOB => {
            if c.character_set() == BINARY_CHARSET {
                ColType::Binary
            } else {
                ColType::Text
            }
        }
        other => bail!(
            "MySQL type {other:?} is not mapped to a column type: convert it in the query (e.g. `ST_AsText(x)`, `CAST(x AS CHAR)`)"
        ),
    })
}

/// One binary-protocol value of column `c` as a value of type `col`.
fn decode(c: &Column, col: ColType, v: My) -> Result<Value> {
    let text = |b: Vec<u8>| String::from_utf8(b).map_err(|_| anyhow!("not UTF-8 text: cast it to BINARY in the query"));
    Ok(match (col, v) {
        (_, My::NULL) => Value::Null,
        (ColType::Bool, My::Int(0)) => Value::Bool(false),
        (ColType::Bool, My::Int(1)) => Value::Bool(true),
        (ColType::Bool, My::Int(n)) => {
            bail!("{n} in a TINYINT(1) column is not a boolean: cast it in the query (`CAST(x AS SIGNED)`)")
        }
        (ColType::Int, My::Int(i)) => Value::Int(i),
        (ColType::Int, My::UInt(u)) => Value::Int(i64::try_from(u)?),
        (ColType::Int, My::Bytes(b)) if c.column_type() == ColumnType::MYSQL_TYPE_BIT => Value::Int(bits(&b) as i64),
        (ColType::Decimal(..), My::Bytes(b)) if c.column_type() == ColumnType::MYSQL_TYPE_BIT => {
            Value::Decimal(bits(&b).into())
        }
        (ColType::Decimal(..), My::UInt(u)) => Value::Decimal(u.into()),
        (ColType::Decimal(..), My::Int(i)) => Value::Decimal(i.into()),
        (ColType::Decimal(p, s), My::Bytes(b)) => Value::Decimal(decimal(&text(b)?, p, s)?),
        (ColType::Float, My::Float(f)) => Value::Float(f.into()),
        (ColType::Float, My::Double(f)) => Value::Float(f),
        (ColType::Date, My::Date(y, m, d, ..)) => Value::Date(
            (date(y, m, d)? - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32,
        ),
        (ColType::Timestamp(_), My::Date(y, mo, d, h, mi, s, us)) => {
            let t = date(y, mo, d)?
                .and_hms_micro_opt(h.into(), mi.into(), s.into(), us)
                .ok_or_else(|| anyhow!("{h}:{mi}:{s}.{us} is not a time of day"))?;
            Value::Timestamp(t.and_utc().timestamp_micros())
        }
        (ColType::Text, My::Time(neg, days, h, m, s, us)) => {
            let hours = days * 24 + u32::from(h);
            let sign = if neg { "-" } else { "" };
            let frac = if us > 0 { format!(".{us:06}") } else { String::new() };
            Value::Text(format!("{sign}{hours:02}:{m:02}:{s:02}{frac}"))
        }
        (ColType::Text, My::Bytes(b)) => Value::Text(text(b)?),
        // Expressions typed as text by the server may still carry numbers.
        (ColType::Text, My::Int(i)) => Value::Text(i.to_string()),
        (ColType::Text, My::UInt(u)) => Value::Text(u.to_string()),
        (ColType::Text, My::Double(f)) => Value::Text(f.to_string()),
        (ColType::Binary, My::Bytes(b)) => Value::Bytes(b),
        (col, v) => bail!("a {v:?} where a {col:?} was expected"),
    })
}

/// A calendar date; MySQL's zero dates (`0000-00-00`, `2024-00-10`) are
/// not dates and fail with the fix.
fn date(y: u16, m: u8, d: u8) -> Result<chrono::NaiveDate> {
    chrono::NaiveDate::from_ymd_opt(y.into(), m.into(), d.into()).ok_or_else(|| {
        anyhow!(
            "{y:04}-{m:02}-{d:02} is not a date (a MySQL zero date): turn it into NULL in the query, e.g. `NULLIF(x, '0000-00-00')`"
        )
    })
}

/// A BIT(n) value: big-endian bytes.
fn bits(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x))
}

/// A DECIMAL's text as an unscaled integer at `scale`; fails rather than
/// round when the text has more decimals or digits than the column type.
fn decimal(t: &str, precision: u8, scale: i8) -> Result<i128> {
    let decimals = t.split_once('.').map_or(0, |(_, f)| f.len());
    if decimals > scale.max(0) as usize {
        bail!("{t} has more than {scale} decimals: cast it in the query, e.g. `CAST(x AS DECIMAL(38,{decimals}))`");
    }
    crate::data::types::parse_decimal(t, precision, scale).map_err(|e| {
        anyhow!("{e}: it does not fit decimal({precision},{scale}); cast it in the query, e.g. `CAST(x AS DECIMAL(38,{scale}))`")
    })
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn decimals_are_exact_or_fail() {
        assert_eq!(decimal("12345.6789", 10, 4).unwrap(), 123456789);
        assert_eq!(decimal("-0.05", 5, 2).unwrap(), -5);
        assert_eq!(decimal("7", 5, 2).unwrap(), 700);
        assert!(
            decimal("1.234", 10, 2)
                .unwrap_err()
                .to_string()
                .contains("more than 2 decimals")
        );
        assert!(decimal("123456", 5, 0).is_err());
    }

    #[test]
    fn watermark_params_keep_their_type() {
        assert_eq!(watermark_param(Some("42")), My::Int(42));
        assert_eq!(watermark_param(Some("18446744073709551615")), My::UInt(u64::MAX));
        assert_eq!(
            watermark_param(Some("2010-12-01 12:00:00.000250+00:00")),
            My::Date(2010, 12, 1, 12, 0, 0, 250)
        );
        assert_eq!(
            watermark_param(Some("2010-12-01 12:00:00.000000")),
            My::Bytes(b"2010-12-01 12:00:00.000000".to_vec())
        );
        assert_eq!(watermark_param(None), My::NULL);
    }
}
