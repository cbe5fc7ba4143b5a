//! Operations on record batches that several steps share: casting with a
//! quarantine, filling missing values, removing duplicates, statistics.

pub mod cast;
pub mod dedupe;
pub mod fill;
pub mod spill;
pub mod stats;

use arrow::array::{Array, ArrayRef, BooleanArray};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// The values of row `i` as text, by column name (for quarantine records).
pub fn row_values(batch: &RecordBatch, i: usize) -> Vec<(String, Option<String>)> {
    let opts = FormatOptions::default();
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, c)| {
            let v = if c.is_null(i) {
                None
            } else {
                ArrayFormatter::try_new(c.as_ref(), &opts)
                    .ok()
                    .map(|fmt| fmt.value(i).to_string())
            };
            (f.name().clone(), v)
        })
        .collect()
}

/// Keeps the rows where `keep` is true.
pub fn filter(batch: &RecordBatch, keep: &BooleanArray) -> anyhow::Result<RecordBatch> {
    Ok(arrow::compute::filter_record_batch(batch, keep)?)
}

/// Replaces (or appends) a column by name.
pub fn with_column(batch: &RecordBatch, name: &str, array: ArrayRef) -> anyhow::Result<RecordBatch> {
    use arrow::datatypes::{Field, Schema};
    use std::sync::Arc;
    let schema = batch.schema();
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
    let field = Field::new(name, array.data_type().clone(), true);
    match schema.index_of(name) {
        Ok(i) => {
            fields[i] = field;
            cols[i] = array;
        }
        Err(_) => {
            fields.push(field);
            cols.push(array);
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}
