//! The SQLite driver of `extract.sql` (rusqlite): named parameters bound
//! natively (`:name`), rows stepped one at a time into batches. SQLite's
//! values are dynamically typed, so a column's type comes from its declared
//! type (`INTEGER`, `REAL`, `DECIMAL(10,2)`, `DATE`, `TIMESTAMP`, ...) and,
//! for expressions, from the first row's value.

use anyhow::{Context, Result, anyhow, bail};
use rusqlite::types::ValueRef;

use super::Sink;
use super::columns::{BatchBuilder, ColType, Value};
use crate::data::types::{ColumnSpec, ColumnType, Parsed};
use crate::spec::project::Connection;
use crate::steps::StepContext;

/// Runs `sql` bound to the named `params` and writes the rows to `sink`.
pub fn extract(
    cx: &StepContext,
    conn: &Connection,
    sql: &str,
    params: &[(String, Option<String>)],
    batch_rows: usize,
    sink: &mut Sink,
) -> Result<()> {
    let path = conn
        .settings
        .get("path")
        .and_then(|v| v.as_str())
        .ok_or_else(|| anyhow!("connection `{}` (sqlite) has no `path`", conn.name))?;
    let path = cx.resolve(path);
    let db = rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", path.display()))?;
    let mut stmt = db
        .prepare(sql)
        .with_context(|| format!("preparing the query on {}", path.display()))?;
    for (name, value) in params {
        let Some(i) = stmt.parameter_index(&format!(":{name}"))? else {
            continue;
        };
        stmt.raw_bind_parameter(i, value.as_deref())?;
    }
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    let declared: Vec<Option<ColType>> = stmt
        .columns()
        .iter()
        .map(|c| c.decl_type().map(declared_type))
        .collect();
    let mut rows = stmt.raw_query();
    let mut types: Option<Vec<ColType>> = None;
    let mut batch: Option<BatchBuilder> = None;
    let mut n = 0u64;
    while let Some(row) = rows.next()? {
        n += 1;
        let types = types.get_or_insert_with(|| {
            declared
                .iter()
                .enumerate()
                .map(|(i, d)| d.unwrap_or_else(|| dynamic_type(row.get_ref(i).ok())))
                .collect()
        });
        let b = match &mut batch {
            Some(b) => b,
            None => {
                sink.start(&names, types)?;
                batch.insert(BatchBuilder::new(&names, types))
            }
        };
        for (i, t) in types.iter().enumerate() {
            let v = convert(row.get_ref(i)?, *t).with_context(|| format!("column `{}` of row {n}", names[i]))?;
            sink.push(b, i, v)?;
        }
        b.end_row();
        if b.len() >= batch_rows {
            cx.check_cancelled()?;
            sink.write(&b.finish()?)?;
        }
    }
    match &mut batch {
        Some(b) if b.len() > 0 => sink.write(&b.finish()?)?,
        Some(_) => {}
        // No rows: the declared types (text for expressions).
        None => sink.start(
            &names,
            &declared.iter().map(|d| d.unwrap_or(ColType::Text)).collect::<Vec<_>>(),
        )?,
    }
    Ok(())
}

/// A declared column type, by SQLite's affinity rules plus the names
/// people use for dates, timestamps and decimals.
fn declared_type(decl: &str) -> ColType {
    let d = decl.to_ascii_uppercase();
    if let Ok(ColumnType::Decimal { precision, scale }) = ColumnType::parse(decl) {
        return ColType::Decimal(precision, scale);
    }
    if d.contains("INT") {
        ColType::Int
    } else if d.contains("BOOL") {
        ColType::Bool
    } else if d.contains("REAL") || d.contains("FLOA") || d.contains("DOUB") {
        ColType::Float
    } else if d.contains("TIMESTAMP") || d.contains("DATETIME") {
        ColType::Timestamp(false)
    } else if d == "DATE" {
        ColType::Date
    } else {
        ColType::Text
    }
}

fn dynamic_type(v: Option<ValueRef<'_>>) -> ColType {
    match v {
        Some(ValueRef::Integer(_)) => ColType::Int,
        Some(ValueRef::Real(_)) => ColType::Float,
        _ => ColType::Text,
    }
}

/// One SQLite value as a value of column type `t`.
fn convert(v: ValueRef<'_>, t: ColType) -> Result<Value> {
    let text = |v: ValueRef<'_>| -> Result<String> {
        Ok(match v {
            ValueRef::Integer(i) => i.to_string(),
            ValueRef::Real(f) => f.to_string(),
            ValueRef::Text(t) => std::str::from_utf8(t)?.to_string(),
            ValueRef::Blob(_) => bail!("a blob: cast it in the query (hex(x))"),
            ValueRef::Null => unreachable!(),
        })
    };
    Ok(match (v, t) {
        (ValueRef::Null, _) => Value::Null,
        (ValueRef::Integer(i), ColType::Int) => Value::Int(i),
        (ValueRef::Integer(i), ColType::Float) => Value::Float(i as f64),
        (ValueRef::Real(f), ColType::Float) => Value::Float(f),
        (ValueRef::Integer(i), ColType::Bool) => Value::Bool(i != 0),
        (_, ColType::Text) => Value::Text(text(v)?),
        (v, t) => {
            let s = text(v)?;
            let spec = ColumnSpec::of(match t {
                ColType::Int => ColumnType::Int64,
                ColType::Float => ColumnType::Float64,
                ColType::Bool => ColumnType::Bool,
                ColType::Date => ColumnType::Date,
                ColType::Timestamp(_) => ColumnType::Timestamp,
                ColType::Decimal(precision, scale) => ColumnType::Decimal { precision, scale },
                ColType::Text | ColType::Binary => {
                    unreachable!("text is handled above; SQLite columns are never typed binary")
                }
            });
            match spec.parse(Some(&s)).map_err(|e| anyhow!(e))? {
                Parsed::Null => Value::Null,
                Parsed::I64(i) => Value::Int(i),
                Parsed::F64(f) => Value::Float(f),
                Parsed::Bool(b) => Value::Bool(b),
                Parsed::Date(d) => Value::Date(d),
                Parsed::Ts(t) => Value::Timestamp(t),
                Parsed::Dec(d) => Value::Decimal(d),
                Parsed::Str(t) => Value::Text(t.to_string()),
            }
        }
    })
}
