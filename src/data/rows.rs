//! Typed record batches built from rows of text, one row at a time; a row
//! with a bad value is rejected whole (for the quarantine), never half
//! appended.

use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float64Builder, Int64Builder,
    StringBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::types::{ColumnSpec, ColumnType, Parsed};

/// Rows per record batch unless a step says otherwise.
pub const DEFAULT_BATCH_ROWS: usize = 64 * 1024;

enum ColBuilder {
    Utf8(StringBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Bool(BooleanBuilder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder, Option<Arc<str>>),
    Dec(Decimal128Builder, u8, i8),
}

/// A parsed cell waiting for the rest of its row. Text is not copied: it is
/// fetched again from the row when the row is appended.
#[derive(Clone, Copy)]
enum Cell {
    Null,
    Text,
    I64(i64),
    F64(f64),
    Bool(bool),
    Date(i32),
    Ts(i64),
    Dec(i128),
}

/// Builds record batches of a fixed schema from text rows.
pub struct BatchBuilder {
    schema: SchemaRef,
    specs: Vec<ColumnSpec>,
    cols: Vec<ColBuilder>,
    cells: Vec<Cell>,
    rows: usize,
}

impl BatchBuilder {
    /// `columns`: output column names and their specs, in order.
    pub fn new(columns: &[(String, ColumnSpec)]) -> Self {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(n, s)| Field::new(n, s.arrow_type(), true))
            .collect();
        let mut b = Self {
            schema: Arc::new(Schema::new(fields)),
            specs: columns.iter().map(|(_, s)| s.clone()).collect(),
            cols: Vec::new(),
            cells: vec![Cell::Null; columns.len()],
            rows: 0,
        };
        b.cols = b.fresh_builders();
        b
    }

    fn fresh_builders(&self) -> Vec<ColBuilder> {
        let cap = 1024;
        self.specs
            .iter()
            .map(|s| match s.ty {
                ColumnType::String => ColBuilder::Utf8(StringBuilder::with_capacity(cap, cap * 16)),
                ColumnType::Int64 => ColBuilder::Int64(Int64Builder::with_capacity(cap)),
                ColumnType::Float64 => ColBuilder::Float64(Float64Builder::with_capacity(cap)),
                ColumnType::Bool => ColBuilder::Bool(BooleanBuilder::with_capacity(cap)),
                ColumnType::Date => ColBuilder::Date(Date32Builder::with_capacity(cap)),
                ColumnType::Timestamp => ColBuilder::Ts(
                    TimestampMicrosecondBuilder::with_capacity(cap),
                    s.timezone.map(|_| Arc::from("UTC")),
                ),
                ColumnType::Decimal { precision, scale } => {
                    ColBuilder::Dec(Decimal128Builder::with_capacity(cap), precision, scale)
                }
            })
            .collect()
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Rows waiting in the current batch.
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Appends one row; `field(i)` gives the text of output column `i`.
    /// On a bad value nothing is appended and the error names the column
    /// index and the reason.
    pub fn push<'r>(&mut self, field: impl Fn(usize) -> Option<&'r str>) -> Result<(), (usize, String)> {
        for (i, spec) in self.specs.iter().enumerate() {
            self.cells[i] = match spec.parse(field(i)).map_err(|e| (i, e))? {
                Parsed::Null => Cell::Null,
                Parsed::Str(_) => Cell::Text,
                Parsed::I64(v) => Cell::I64(v),
                Parsed::F64(v) => Cell::F64(v),
                Parsed::Bool(v) => Cell::Bool(v),
                Parsed::Date(v) => Cell::Date(v),
                Parsed::Ts(v) => Cell::Ts(v),
                Parsed::Dec(v) => Cell::Dec(v),
            };
        }
        for (i, col) in self.cols.iter_mut().enumerate() {
            match (col, self.cells[i]) {
                (ColBuilder::Utf8(b), Cell::Text) => b.append_value(field(i).unwrap_or_default()),
                (ColBuilder::Utf8(b), _) => b.append_null(),
                (ColBuilder::Int64(b), Cell::I64(v)) => b.append_value(v),
                (ColBuilder::Int64(b), _) => b.append_null(),
                (ColBuilder::Float64(b), Cell::F64(v)) => b.append_value(v),
                (ColBuilder::Float64(b), _) => b.append_null(),
                (ColBuilder::Bool(b), Cell::Bool(v)) => b.append_value(v),
                (ColBuilder::Bool(b), _) => b.append_null(),
                (ColBuilder::Date(b), Cell::Date(v)) => b.append_value(v),
                (ColBuilder::Date(b), _) => b.append_null(),
                (ColBuilder::Ts(b, _), Cell::Ts(v)) => b.append_value(v),
                (ColBuilder::Ts(b, _), _) => b.append_null(),
                (ColBuilder::Dec(b, _, _), Cell::Dec(v)) => b.append_value(v),
                (ColBuilder::Dec(b, _, _), _) => b.append_null(),
            }
        }
        self.rows += 1;
        Ok(())
    }

    /// Takes the rows so far as a batch (None when there are none).
    pub fn finish(&mut self) -> Option<RecordBatch> {
        if self.rows == 0 {
            return None;
        }
        let fresh = self.fresh_builders();
        let cols = std::mem::replace(&mut self.cols, fresh);
        let arrays: Vec<ArrayRef> = cols
            .into_iter()
            .map(|c| -> ArrayRef {
                match c {
                    ColBuilder::Utf8(mut b) => Arc::new(b.finish()),
                    ColBuilder::Int64(mut b) => Arc::new(b.finish()),
                    ColBuilder::Float64(mut b) => Arc::new(b.finish()),
                    ColBuilder::Bool(mut b) => Arc::new(b.finish()),
                    ColBuilder::Date(mut b) => Arc::new(b.finish()),
                    ColBuilder::Ts(mut b, tz) => Arc::new(b.finish().with_timezone_opt(tz)),
                    ColBuilder::Dec(mut b, p, s) => Arc::new(
                        b.finish()
                            .with_precision_and_scale(p, s)
                            .expect("precision and scale were validated"),
                    ),
                }
            })
            .collect();
        self.rows = 0;
        Some(RecordBatch::try_new(self.schema.clone(), arrays).expect("builders match the schema"))
    }

    /// Bytes held by the builders (for memory-bounded batching).
    pub fn buffered_bytes(&self) -> usize {
        self.cols
            .iter()
            .map(|c| match c {
                ColBuilder::Utf8(b) => b.values_slice().len() + b.len() * 4,
                ColBuilder::Bool(b) => b.len() / 8,
                ColBuilder::Date(b) => b.len() * 4,
                ColBuilder::Dec(b, ..) => b.len() * 16,
                ColBuilder::Int64(b) => b.len() * 8,
                ColBuilder::Float64(b) => b.len() * 8,
                ColBuilder::Ts(b, _) => b.len() * 8,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::types::ColumnType;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::Int64Type;

    #[test]
    fn bad_rows_are_rejected_whole() {
        let cols = vec![
            ("a".to_string(), ColumnSpec::of(ColumnType::String)),
            ("b".to_string(), ColumnSpec::of(ColumnType::Int64)),
        ];
        let mut b = BatchBuilder::new(&cols);
        let rows = [["x", "1"], ["y", "oops"], ["z", ""]];
        let mut errors = Vec::new();
        for r in &rows {
            if let Err(e) = b.push(|i| Some(r[i])) {
                errors.push(e);
            }
        }
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].0, 1);
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let ints = batch.column(1).as_primitive::<Int64Type>();
        assert_eq!(ints.value(0), 1);
        assert!(ints.is_null(1));
        assert!(b.finish().is_none());
    }
}
