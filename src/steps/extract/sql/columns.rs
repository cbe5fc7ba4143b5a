//! Arrow columns built from database values, shared by the drivers: each
//! driver maps its column types to a [`ColType`] and appends decoded values.

use std::sync::Arc;

use anyhow::{Result, bail};
use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;

/// The Arrow type a database column becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Bool,
    Int,
    Float,
    Decimal(u8, i8),
    Text,
    Binary,
    Date,
    /// Timestamp; `true` when the source is zoned (stored as UTC).
    Timestamp(bool),
}

impl ColType {
    pub fn data_type(self) -> DataType {
        match self {
            ColType::Bool => DataType::Boolean,
            ColType::Int => DataType::Int64,
            ColType::Float => DataType::Float64,
            ColType::Decimal(p, s) => DataType::Decimal128(p, s),
            ColType::Text => DataType::Utf8,
            ColType::Binary => DataType::Binary,
            ColType::Date => DataType::Date32,
            ColType::Timestamp(utc) => DataType::Timestamp(TimeUnit::Microsecond, utc.then(|| Arc::from("UTC"))),
        }
    }
}

/// A decoded value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Unscaled, at the column's scale.
    Decimal(i128),
    Text(String),
    Bytes(Vec<u8>),
    /// Days since 1970-01-01.
    Date(i32),
    /// Microseconds since 1970-01-01 00:00 (UTC for zoned columns).
    Timestamp(i64),
}

enum Builder {
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Decimal(Decimal128Builder),
    Text(StringBuilder),
    Binary(BinaryBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
}

/// Rows being gathered into one record batch.
pub struct BatchBuilder {
    schema: SchemaRef,
    types: Vec<ColType>,
    cols: Vec<Builder>,
    rows: usize,
}

impl BatchBuilder {
    pub fn new(names: &[String], types: &[ColType]) -> Self {
        let fields: Vec<Field> = names
            .iter()
            .zip(types)
            .map(|(n, t)| Field::new(n, t.data_type(), true))
            .collect();
        let mut b = Self {
            schema: Arc::new(Schema::new(fields)),
            types: types.to_vec(),
            cols: Vec::new(),
            rows: 0,
        };
        b.reset();
        b
    }

    fn reset(&mut self) {
        self.cols = self
            .types
            .iter()
            .map(|t| match *t {
                ColType::Bool => Builder::Bool(BooleanBuilder::new()),
                ColType::Int => Builder::Int(Int64Builder::new()),
                ColType::Float => Builder::Float(Float64Builder::new()),
                ColType::Decimal(p, s) => {
                    Builder::Decimal(Decimal128Builder::new().with_precision_and_scale(p, s).expect("valid"))
                }
                ColType::Text => Builder::Text(StringBuilder::new()),
                ColType::Binary => Builder::Binary(BinaryBuilder::new()),
                ColType::Date => Builder::Date(Date32Builder::new()),
                ColType::Timestamp(utc) => Builder::Timestamp(
                    TimestampMicrosecondBuilder::new().with_timezone_opt(utc.then(|| Arc::<str>::from("UTC"))),
                ),
            })
            .collect();
        self.rows = 0;
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    /// Appends the value of column `i`; every column once per row, then
    /// [`end_row`](Self::end_row).
    pub fn push(&mut self, i: usize, v: Value) -> Result<()> {
        match (&mut self.cols[i], v) {
            (Builder::Bool(b), Value::Null) => b.append_null(),
            (Builder::Int(b), Value::Null) => b.append_null(),
            (Builder::Float(b), Value::Null) => b.append_null(),
            (Builder::Decimal(b), Value::Null) => b.append_null(),
            (Builder::Text(b), Value::Null) => b.append_null(),
            (Builder::Binary(b), Value::Null) => b.append_null(),
            (Builder::Date(b), Value::Null) => b.append_null(),
            (Builder::Timestamp(b), Value::Null) => b.append_null(),
            (Builder::Bool(b), Value::Bool(v)) => b.append_value(v),
            (Builder::Int(b), Value::Int(v)) => b.append_value(v),
            (Builder::Float(b), Value::Float(v)) => b.append_value(v),
            (Builder::Float(b), Value::Int(v)) => b.append_value(v as f64),
            (Builder::Decimal(b), Value::Decimal(v)) => b.append_value(v),
            (Builder::Text(b), Value::Text(v)) => b.append_value(v),
            (Builder::Binary(b), Value::Bytes(v)) => b.append_value(v),
            (Builder::Date(b), Value::Date(v)) => b.append_value(v),
            (Builder::Timestamp(b), Value::Timestamp(v)) => b.append_value(v),
            (_, v) => bail!(
                "a {v:?} in column `{}` of type {:?}",
                self.schema.field(i).name(),
                self.types[i]
            ),
        }
        Ok(())
    }

    pub fn end_row(&mut self) {
        self.rows += 1;
    }

    /// The gathered rows as a batch; the builder starts empty again.
    pub fn finish(&mut self) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self
            .cols
            .iter_mut()
            .map(|c| -> ArrayRef {
                match c {
                    Builder::Bool(b) => Arc::new(b.finish()),
                    Builder::Int(b) => Arc::new(b.finish()),
                    Builder::Float(b) => Arc::new(b.finish()),
                    Builder::Decimal(b) => Arc::new(b.finish()),
                    Builder::Text(b) => Arc::new(b.finish()),
                    Builder::Binary(b) => Arc::new(b.finish()),
                    Builder::Date(b) => Arc::new(b.finish()),
                    Builder::Timestamp(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        self.reset();
        Ok(RecordBatch::try_new(self.schema.clone(), arrays)?)
    }
}

/// The largest value seen of the watermark column, kept in an order that
/// matches the database's for its type.
#[derive(Debug, Clone, Default)]
pub struct Watermark {
    max: Option<Value>,
}

impl Watermark {
    pub fn see(&mut self, v: &Value) {
        let bigger = match (&self.max, v) {
            (_, Value::Null) => false,
            (None, _) => true,
            (Some(Value::Int(a)), Value::Int(b)) => b > a,
            (Some(Value::Float(a)), Value::Float(b)) => b > a,
            (Some(Value::Decimal(a)), Value::Decimal(b)) => b > a,
            (Some(Value::Text(a)), Value::Text(b)) => b > a,
            (Some(Value::Date(a)), Value::Date(b)) => b > a,
            (Some(Value::Timestamp(a)), Value::Timestamp(b)) => b > a,
            _ => false,
        };
        if bigger {
            self.max = Some(v.clone());
        }
    }

    /// The watermark as text the database parses back into the column's
    /// type (bound as a parameter on the next run).
    pub fn text(&self, ty: ColType) -> Option<String> {
        Some(match self.max.as_ref()? {
            Value::Int(v) => v.to_string(),
            Value::Float(v) => v.to_string(),
            Value::Decimal(v) => match ty {
                ColType::Decimal(_, s) => arrow::array::types::Decimal128Type::format_decimal(*v, 38, s),
                _ => v.to_string(),
            },
            Value::Text(v) => v.clone(),
            // Not a watermark type (see `see`): never the maximum.
            Value::Bytes(_) => return None,
            Value::Date(d) => {
                (chrono::NaiveDate::from_ymd_opt(1970, 1, 1)? + chrono::Duration::days((*d).into())).to_string()
            }
            Value::Timestamp(us) => {
                let t = chrono::DateTime::from_timestamp_micros(*us)?.naive_utc();
                let text = t.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
                if matches!(ty, ColType::Timestamp(true)) {
                    text + "+00:00"
                } else {
                    text
                }
            }
            Value::Bool(b) => b.to_string(),
            Value::Null => return None,
        })
    }
}

use arrow::datatypes::DecimalType as _;
