//! The PostgreSQL driver of `extract.sql` (tokio-postgres): a server-side
//! portal read in batches inside a read-only transaction, parameters bound
//! in text format (the server parses them into each parameter's type), and
//! every value decoded from the binary protocol by type.

use anyhow::{Context, Result, anyhow, bail};
use fallible_iterator::FallibleIterator;
use postgres_protocol::types as pg;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

use super::Sink;
use super::columns::{BatchBuilder, ColType, Value};
use crate::spec::project::Connection;
use crate::steps::StepContext;

/// Microseconds and days between 1970-01-01 and PostgreSQL's 2000-01-01.
const PG_EPOCH_US: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS: i32 = 10_957;
/// The decimal type of `numeric` columns declared without precision.
pub const DEFAULT_NUMERIC: (u8, i8) = (38, 10);

/// Runs `sql` (with `$n` placeholders) bound to `params` and streams the
/// rows into `sink`, `batch_rows` at a time.
pub async fn extract(
    cx: &StepContext,
    conn: &Connection,
    sql: &str,
    params: &[Option<String>],
    batch_rows: usize,
    sink: &mut Sink,
) -> Result<()> {
    let (mut cfg, tls, shown) = crate::warehouse::postgres::config(conn)?;
    let (mut client, driver) = tls
        .connect(&mut cfg)
        .await
        .map_err(|e| anyhow!("connecting to {shown}: {}", e.describe(pg_error)))?;
    cx.log.note(&format!("connected to {shown}"));
    let result = async {
        let tx = client
            .build_transaction()
            .read_only(true)
            .start()
            .await
            .map_err(|e| anyhow!("{shown}: {}", pg_error(&e)))?;
        let stmt = tx
            .prepare(sql)
            .await
            .map_err(|e| anyhow!("preparing the query on {shown}: {}", pg_error(&e)))?;
        if stmt.params().len() != params.len() {
            bail!(
                "the query has {} parameter(s) but {} value(s) were given",
                stmt.params().len(),
                params.len()
            );
        }
        let mut types = Vec::new();
        let mut names = Vec::new();
        for c in stmt.columns() {
            names.push(c.name().to_string());
            types.push(col_type(c.type_(), c.type_modifier()).with_context(|| format!("column `{}`", c.name()))?);
        }
        sink.start(&names, &types)?;
        let text: Vec<TextParam> = params.iter().map(|p| TextParam(p.clone())).collect();
        let portal = tx
            .bind_raw(&stmt, text.iter())
            .await
            .map_err(|e| anyhow!("running the query on {shown}: {}", pg_error(&e)))?;
        let mut batch = BatchBuilder::new(&names, &types);
        loop {
            cx.check_cancelled()?;
            let rows = tx
                .query_portal(&portal, batch_rows as i32)
                .await
                .map_err(|e| anyhow!("reading rows from {shown}: {}", pg_error(&e)))?;
            let n = rows.len();
            for row in &rows {
                for (i, c) in stmt.columns().iter().enumerate() {
                    let raw: Raw = row.try_get(i)?;
                    let v = decode(c.type_(), types[i], raw.0).with_context(|| {
                        format!("column `{}` of row {}", c.name(), sink.rows() + batch.len() as u64 + 1)
                    })?;
                    sink.push(&mut batch, i, v)?;
                }
                batch.end_row();
            }
            if batch.len() > 0 {
                sink.write(&batch.finish()?)?;
            }
            if n < batch_rows {
                break;
            }
        }
        tx.commit().await.map_err(|e| anyhow!("{shown}: {}", pg_error(&e)))?;
        Ok(())
    }
    .await;
    drop(client);
    driver.abort();
    result
}

/// The server's message, detail and hint (tokio-postgres' own Display says
/// only "db error").
fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = db.message().to_string();
            if let Some(d) = db.detail() {
                s += &format!(" ({d})");
            }
            if let Some(h) = db.hint() {
                s += &format!("; hint: {h}");
            }
            s
        }
        None => e.to_string(),
    }
}

/// A column's Arrow type: integers widen to int64 and floats to float64
/// (the data plane's types); numeric keeps its precision and scale.
fn col_type(ty: &Type, typmod: i32) -> Result<ColType> {
    Ok(match *ty {
        Type::BOOL => ColType::Bool,
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => ColType::Int,
        Type::FLOAT4 | Type::FLOAT8 => ColType::Float,
        Type::NUMERIC => {
            if typmod < 4 {
                ColType::Decimal(DEFAULT_NUMERIC.0, DEFAULT_NUMERIC.1)
            } else {
                let m = typmod - 4;
                let (p, s) = (((m >> 16) & 0xffff) as u8, (m & 0xffff) as i8);
                ColType::Decimal(p.clamp(1, 38), s)
            }
        }
        Type::DATE => ColType::Date,
        Type::TIMESTAMP => ColType::Timestamp(false),
        Type::TIMESTAMPTZ => ColType::Timestamp(true),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::CHAR | Type::JSON | Type::JSONB | Type::UUID => {
            ColType::Text
        }
        Type::TIME => ColType::Text,
        _ if matches!(ty.kind(), tokio_postgres::types::Kind::Array(_)) => ColType::Text,
        _ => bail!(
            "type `{}` is not mapped to a column type: cast it in the query (e.g. `x::text`)",
            ty.name()
        ),
    })
}

/// Decodes one binary value of PostgreSQL type `ty` into column type `col`.
fn decode(ty: &Type, col: ColType, raw: Option<&[u8]>) -> Result<Value> {
    let Some(b) = raw else { return Ok(Value::Null) };
    let e = |e: Box<dyn std::error::Error + Sync + Send>| anyhow!("{e}");
    Ok(match *ty {
        Type::BOOL => Value::Bool(pg::bool_from_sql(b).map_err(e)?),
        Type::INT2 => Value::Int(pg::int2_from_sql(b).map_err(e)?.into()),
        Type::INT4 => Value::Int(pg::int4_from_sql(b).map_err(e)?.into()),
        Type::INT8 => Value::Int(pg::int8_from_sql(b).map_err(e)?),
        Type::OID => Value::Int(pg::oid_from_sql(b).map_err(e)?.into()),
        Type::FLOAT4 => Value::Float(pg::float4_from_sql(b).map_err(e)?.into()),
        Type::FLOAT8 => Value::Float(pg::float8_from_sql(b).map_err(e)?),
        Type::NUMERIC => match col {
            ColType::Decimal(p, s) => Value::Decimal(numeric(b, p, s)?),
            _ => unreachable!("numeric maps to decimal"),
        },
        Type::DATE => Value::Date(pg::date_from_sql(b).map_err(e)? + PG_EPOCH_DAYS),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => Value::Timestamp(pg::timestamp_from_sql(b).map_err(e)? + PG_EPOCH_US),
        Type::JSONB => {
            // Version byte 1, then the JSON text.
            Value::Text(std::str::from_utf8(b.get(1..).unwrap_or_default())?.to_string())
        }
        Type::UUID => Value::Text(uuid_text(&pg::uuid_from_sql(b).map_err(e)?)),
        Type::TIME => {
            let us = pg::time_from_sql(b).map_err(e)?;
            let t = chrono::NaiveTime::from_num_seconds_from_midnight_opt(
                (us / 1_000_000) as u32,
                (us % 1_000_000) as u32 * 1000,
            )
            .ok_or_else(|| anyhow!("bad time"))?;
            Value::Text(t.format("%H:%M:%S%.f").to_string())
        }
        _ if matches!(ty.kind(), tokio_postgres::types::Kind::Array(_)) => Value::Text(array_json(ty, b)?.to_string()),
        _ => Value::Text(pg::text_from_sql(b).map_err(e)?.to_string()),
    })
}

/// An array as JSON text (nested arrays for several dimensions).
fn array_json(ty: &Type, b: &[u8]) -> Result<serde_json::Value> {
    let tokio_postgres::types::Kind::Array(elem) = ty.kind() else {
        unreachable!()
    };
    let arr = pg::array_from_sql(b).map_err(|e| anyhow!("{e}"))?;
    let dims: Vec<usize> = arr
        .dimensions()
        .map(|d| Ok(d.len as usize))
        .collect()
        .map_err(|e| anyhow!("{e}"))?;
    let elem_col = col_type(elem, -1)
        .map_err(|_| anyhow!("arrays of `{}` are not mapped: cast the column to text[]", elem.name()))?;
    let values: Vec<serde_json::Value> = arr
        .values()
        .map_err(|e| anyhow!("{e}"))
        .map(|v| Ok(json_value(decode(elem, elem_col, v)?, elem_col)))
        .collect()?;
    fn nest(values: &mut std::vec::IntoIter<serde_json::Value>, dims: &[usize]) -> serde_json::Value {
        match dims {
            [] | [_] => serde_json::Value::Array(values.by_ref().take(dims.first().copied().unwrap_or(0)).collect()),
            [n, rest @ ..] => serde_json::Value::Array((0..*n).map(|_| nest(values, rest)).collect()),
        }
    }
    Ok(nest(&mut values.into_iter(), &dims))
}

fn json_value(v: Value, col: ColType) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(b),
        Value::Int(i) => i.into(),
        Value::Float(f) => serde_json::Number::from_f64(f).map_or(J::Null, J::Number),
        Value::Text(t) => J::String(t),
        other => {
            let mut w = super::columns::Watermark::default();
            w.see(&other);
            J::String(w.text(col).unwrap_or_default())
        }
    }
}

fn uuid_text(u: &[u8; 16]) -> String {
    let h: String = u.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// A binary `numeric` as an unscaled integer at `scale`; fails rather than
/// round when the value has more decimals than the scale or more digits
/// than the precision.
fn numeric(b: &[u8], precision: u8, scale: i8) -> Result<i128> {
    let word = |i: usize| -> Result<i16> {
        Ok(i16::from_be_bytes(
            b.get(i..i + 2)
                .ok_or_else(|| anyhow!("truncated numeric"))?
                .try_into()?,
        ))
    };
    let (ndigits, weight, sign) = (word(0)? as usize, word(2)? as i32, word(4)? as u16);
    match sign {
        0x0000 | 0x4000 => {}
        0xC000 => bail!("NaN does not fit a decimal column"),
        _ => bail!("infinity does not fit a decimal column"),
    }
    let mut acc: i128 = 0;
    let too_big = || {
        anyhow!("a numeric does not fit decimal({precision},{scale}): cast it in the query, e.g. `x::numeric(38,4)`")
    };
    for i in 0..ndigits {
        let d = word(8 + 2 * i)? as i128;
        let exp = 4 * (weight - i as i32) + scale as i32;
        if exp >= 0 {
            let p = 10i128.checked_pow(exp as u32).ok_or_else(too_big)?;
            acc = d.checked_mul(p).and_then(|v| acc.checked_add(v)).ok_or_else(too_big)?;
        } else {
            let p = 10i128.pow((-exp).min(4) as u32);
            if d % p != 0 {
                bail!("a numeric has more than {scale} decimals: cast it in the query, e.g. `round(x, {scale})`");
            }
            acc += d / p;
        }
    }
    if acc >= 10i128.pow(precision as u32) {
        return Err(too_big());
    }
    Ok(if sign == 0x4000 { -acc } else { acc })
}

/// Any value, raw (decoded by [`decode`]).
struct Raw<'a>(Option<&'a [u8]>);

impl<'a> FromSql<'a> for Raw<'a> {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(Some(raw)))
    }
    fn from_sql_null(_: &Type) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(None))
    }
    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A parameter sent as text: the server parses it into whatever type the
/// query gives the parameter (timestamps, numerics, dates, ...), exactly.
#[derive(Debug)]
struct TextParam(Option<String>);

impl ToSql for TextParam {
    fn to_sql(&self, _: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            None => Ok(IsNull::Yes),
            Some(s) => {
                out.extend_from_slice(s.as_bytes());
                Ok(IsNull::No)
            }
        }
    }
    fn accepts(_: &Type) -> bool {
        true
    }
    fn encode_format(&self, _: &Type) -> tokio_postgres::types::Format {
        tokio_postgres::types::Format::Text
    }
    to_sql_checked!();
}

#[cfg(test)]
mod unit {
    use super::*;

    fn enc(ndigits: &[i16], weight: i16, sign: u16, dscale: u16) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend((ndigits.len() as i16).to_be_bytes());
        b.extend(weight.to_be_bytes());
        b.extend(sign.to_be_bytes());
        b.extend(dscale.to_be_bytes());
        for d in ndigits {
            b.extend(d.to_be_bytes());
        }
        b
    }

    #[test]
    fn numerics_decode_exactly_or_fail() {
        // 12345.6789 = [1, 2345, 6789] weight 1
        let v = enc(&[1, 2345, 6789], 1, 0, 4);
        assert_eq!(numeric(&v, 10, 4).unwrap(), 123456789);
        assert_eq!(numeric(&v, 12, 6).unwrap(), 12345678900);
        assert!(
            numeric(&v, 10, 2)
                .unwrap_err()
                .to_string()
                .contains("more than 2 decimals")
        );
        assert!(numeric(&v, 6, 4).is_err(), "too many digits for the precision");
        // -0.05 = [500] weight -1
        assert_eq!(numeric(&enc(&[500], -1, 0x4000, 2), 5, 2).unwrap(), -5);
        assert_eq!(numeric(&enc(&[], 0, 0, 0), 5, 2).unwrap(), 0);
        assert!(numeric(&enc(&[], 0, 0xC000, 0), 5, 2).is_err());
    }

    #[test]
    fn typmods() {
        assert_eq!(
            col_type(&Type::NUMERIC, ((12 << 16) | 3) + 4).unwrap(),
            ColType::Decimal(12, 3)
        );
        assert_eq!(col_type(&Type::NUMERIC, -1).unwrap(), ColType::Decimal(38, 10));
        assert!(col_type(&Type::INTERVAL, -1).is_err());
    }
}
