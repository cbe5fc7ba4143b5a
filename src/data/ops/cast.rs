//! Casting columns to declared types; values that do not convert are
//! reported per row (for the quarantine), and their rows dropped.

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::data::rows::BatchBuilder;
use crate::data::types::{ColumnSpec, ColumnType};

/// A value that did not convert: its row (in the batch), column, reason.
#[derive(Debug, Clone, PartialEq)]
pub struct CastFailure {
    pub row: usize,
    pub column: String,
    pub reason: String,
}

/// Casts the named columns. Returns the batch with the rows that converted
/// fully, and one failure per rejected row (its first bad column).
pub fn cast_columns(
    batch: &RecordBatch,
    specs: &[(String, ColumnSpec)],
) -> anyhow::Result<(RecordBatch, Vec<CastFailure>)> {
    let mut out = batch.clone();
    let mut failed: Vec<Option<CastFailure>> = vec![None; batch.num_rows()];
    for (name, spec) in specs {
        let idx = batch.schema().index_of(name).map_err(|_| {
            let names: Vec<String> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            anyhow::anyhow!(
                "cannot cast `{name}`: no such column ({})",
                crate::spec::diagnostic::unknown_name_hint(name, &names)
            )
        })?;
        let col = batch.column(idx);
        let (array, bad) = cast_one(col, spec)?;
        for (row, reason) in bad {
            failed[row].get_or_insert(CastFailure {
                row,
                column: name.clone(),
                reason,
            });
        }
        out = super::with_column(&out, name, array)?;
    }
    let failures: Vec<CastFailure> = failed.into_iter().flatten().collect();
    if failures.is_empty() {
        return Ok((out, failures));
    }
    let mut keep = vec![true; batch.num_rows()];
    for f in &failures {
        keep[f.row] = false;
    }
    let kept = super::filter(&out, &BooleanArray::from(keep))?;
    Ok((kept, failures))
}

fn cast_one(col: &ArrayRef, spec: &ColumnSpec) -> anyhow::Result<(ArrayRef, Vec<(usize, String)>)> {
    let target = spec.arrow_type();
    let mut bad = Vec::new();
    if matches!(
        col.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) && spec.ty != ColumnType::String
    {
        // Text is parsed with the same rules (formats, time zones, decimal
        // rounding) as extract's [columns].
        let text = cast_with_options(col, &DataType::Utf8, &CastOptions::default())?;
        let text = text.as_string::<i32>();
        let mut lenient = spec.clone();
        lenient.nullable = true;
        let mut b = BatchBuilder::new(&[("v".to_string(), lenient)]);
        for i in 0..text.len() {
            let v = (!text.is_null(i)).then(|| text.value(i));
            if v.is_none() && !spec.nullable {
                bad.push((i, "missing value in a column declared `nullable = false`".to_string()));
            }
            if let Err((_, reason)) = b.push(|_| v) {
                bad.push((i, reason));
                b.push(|_| None).expect("null fits a nullable column");
            }
        }
        let batch = b.finish();
        let array = match batch {
            Some(b) => b.column(0).clone(),
            None => arrow::array::new_empty_array(&target),
        };
        return Ok((array, bad));
    }
    let array = cast_with_options(
        col,
        &target,
        &CastOptions {
            safe: true,
            ..Default::default()
        },
    )?;
    let opts = FormatOptions::default();
    let fmt = ArrayFormatter::try_new(col.as_ref(), &opts)?;
    for i in 0..col.len() {
        if array.is_null(i) && !col.is_null(i) {
            bad.push((
                i,
                format!(
                    "`{}` cannot be cast from {} to {}",
                    fmt.value(i),
                    col.data_type(),
                    spec.ty
                ),
            ));
        } else if array.is_null(i) && !spec.nullable {
            bad.push((i, "missing value in a column declared `nullable = false`".to_string()));
        }
    }
    Ok((array, bad))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray};
    use arrow::datatypes::{Field, Int64Type, Schema};
    use std::sync::Arc;

    #[test]
    fn text_and_typed_casts_report_bad_rows() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("q", DataType::Utf8, true),
            Field::new("p", DataType::Float64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![Some("1"), Some("x"), None, Some("4")])),
                Arc::new(Float64Array::from(vec![1.0, 2.0, 3.0, 1e300])),
            ],
        )
        .unwrap();
        let specs = vec![
            ("q".to_string(), ColumnSpec::of(ColumnType::Int64)),
            (
                "p".to_string(),
                ColumnSpec::of(ColumnType::Decimal {
                    precision: 10,
                    scale: 2,
                }),
            ),
        ];
        let (out, bad) = cast_columns(&batch, &specs).unwrap();
        assert_eq!(out.num_rows(), 2);
        assert_eq!(bad.len(), 2);
        assert_eq!((bad[0].row, bad[0].column.as_str()), (1, "q"));
        assert_eq!((bad[1].row, bad[1].column.as_str()), (3, "p"));
        assert_eq!(out.column(0).as_primitive::<Int64Type>().value(0), 1);
        assert!(out.column(0).is_null(1));
    }
}
