//! Parquet files: already typed, so they skip the text layer. Their record
//! batches go straight into the task's output dataset.
//!
//! - A column declared in `[columns]` is converted to the declared type.
//!   Text columns are parsed exactly as CSV text is (date formats, time
//!   zones, decimal rounding, `yes`/`no` booleans, whole floats as
//!   integers); other columns are cast with Arrow's safe cast (an integer
//!   column declared `float64`, a timestamp declared `date`, ...), and a
//!   float with a fraction is no `int64`. A value that cannot be converted
//!   (it was not null, it would become null), or a missing value in a
//!   column declared `nullable = false`, makes its row a bad row: it goes
//!   to the quarantine with its row number (1-based, in the file), the
//!   column and the reason, and is dropped from the output. A naive
//!   timestamp (or a date) declared with a `timezone` is read as local time
//!   there and stored as UTC, as for text.
//! - Undeclared columns keep their type, widened to the types every step
//!   knows: smaller integers to int64, float32 to float64, large or view
//!   strings and dictionary-encoded strings to string, timestamps to
//!   microseconds (in UTC when they carry a time zone). Nested types
//!   (lists, structs, maps) pass through unchanged.
//! - `columns_only` keeps only the declared columns; `source_column` adds
//!   the file name. `infer`, `infer_rows` and `null_values` do not apply:
//!   the file already says what its values are.
//! - Files read together (a glob) must agree: the first file fixes the
//!   output columns; a later file may lack an undeclared column (it is
//!   null there), but a column with another type, or a column the first
//!   file did not have, is an error naming both (declare the column in
//!   `[columns]` to convert every file to one type, or set `columns_only`).
//!
//! Parquet needs random access (its footer comes last) while sources are
//! streams (S3 bodies, gzip), so each file is spooled into the task's
//! artifact folder first and removed once read: memory stays bounded by a
//! batch, whatever the file size.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use anyhow::{Context, Result, bail};
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, StringArray, TimestampMicrosecondBuilder, new_empty_array, new_null_array,
};
use arrow::compute::{CastOptions, can_cast_types, cast, cast_with_options, filter_record_batch};
use arrow::datatypes::{DataType, Field, Float64Type, Schema, SchemaRef, TimeUnit, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::{DateTime, TimeZone};

use crate::data::DatasetRef;
use crate::data::artifact::DatasetWriter;
use crate::data::ingest::{Ingest, TypingOptions};
use crate::data::quarantine::Quarantine;
use crate::data::rows::{BatchBuilder, DEFAULT_BATCH_ROWS};
use crate::data::types::{ColumnSpec, ColumnType};

/// Where an output column comes from in the current file.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Origin {
    Field(usize),
    SourceName,
    Null,
}

#[derive(Debug, Clone)]
struct Plan {
    name: String,
    from: Origin,
    /// The declared type, if any.
    spec: Option<ColumnSpec>,
    ty: DataType,
}

/// Parquet files into one dataset: see the module docs.
pub struct ParquetIngest {
    dir: PathBuf,
    task: String,
    name: String,
    declared: BTreeMap<String, ColumnSpec>,
    declared_only: bool,
    source_column: Option<String>,
    /// The output columns, fixed by the first file, and that file's name.
    schema: Option<(SchemaRef, String)>,
    writer: Option<DatasetWriter>,
    spooled: u64,
}

/// Removes a spooled file however reading ends.
struct Spool(PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl ParquetIngest {
    /// Output `name` of `task`, written under `dir` (the quarantine,
    /// progress and row count are the [`Ingest`]'s, passed to each call).
    pub fn new(dir: &Path, task: &str, name: &str, opts: &TypingOptions) -> Self {
        Self {
            dir: dir.to_path_buf(),
            task: task.to_string(),
            name: name.to_string(),
            declared: opts.declared.clone(),
            declared_only: opts.declared_only,
            source_column: opts.source_column.clone(),
            schema: None,
            writer: None,
            spooled: 0,
        }
    }

    /// Reads one Parquet file: its rows count into `ingest.rows_in`, bad
    /// rows go to `ingest.quarantine`.
    pub fn add_source(&mut self, source: &str, mut input: Box<dyn Read + Send>, ingest: &mut Ingest) -> Result<()> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        self.spooled += 1;
        let spool = Spool(self.dir.join(format!(".{}-{}.parquet.spool", self.name, self.spooled)));
        {
            let mut f = File::create(&spool.0).with_context(|| format!("creating {}", spool.0.display()))?;
            std::io::copy(&mut input, &mut f).with_context(|| format!("copying {source} to {}", spool.0.display()))?;
        }
        let file = File::open(&spool.0).with_context(|| format!("opening {}", spool.0.display()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .with_context(|| format!("{source} is not a readable Parquet file"))?;
        let file_schema = builder.schema().clone();
        let reader = builder.with_batch_size(DEFAULT_BATCH_ROWS).build()?;
        let plan = self.plan(source, &file_schema)?;
        if self.writer.is_none() {
            let schema = self.schema.as_ref().expect("fixed by plan").0.clone();
            self.writer = Some(DatasetWriter::create(&self.dir, &self.task, &self.name, schema)?);
        }
        let schema = self.schema.as_ref().expect("fixed by plan").0.clone();
        let mut row0 = 0u64;
        for batch in reader {
            let batch = batch.with_context(|| format!("reading {source}"))?;
            let n = batch.num_rows();
            ingest.rows_in += n as u64;
            let (out, bad) = convert(&batch, &plan, &schema, source)?;
            if !bad.is_empty() {
                quarantine(&mut ingest.quarantine, source, &batch, row0, &plan, &bad)?;
            }
            ingest
                .progress
                .add(out.num_rows() as u64, out.get_array_memory_size() as u64);
            self.writer.as_mut().expect("created above").write(&out)?;
            row0 += n as u64;
        }
        Ok(())
    }

    /// Maps a file's columns to the output columns (fixing them on the
    /// first file).
    fn plan(&mut self, source: &str, file: &Schema) -> Result<Vec<Plan>> {
        let names = || {
            file.fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for name in self.declared.keys() {
            if file.column_with_name(name).is_none() {
                bail!(
                    "column `{name}` is declared in [columns] but {source} has no such column (it has: {})",
                    names()
                );
            }
        }
        let Some((schema, first)) = &self.schema else {
            let mut plan = Vec::new();
            for (i, f) in file.fields().iter().enumerate() {
                if Some(f.name()) == self.source_column.as_ref() {
                    continue;
                }
                match self.declared.get(f.name()) {
                    Some(spec) => plan.push(Plan {
                        name: f.name().clone(),
                        from: Origin::Field(i),
                        spec: Some(spec.clone()),
                        ty: spec.arrow_type(),
                    }),
                    None if self.declared_only => {}
                    None => plan.push(Plan {
                        name: f.name().clone(),
                        from: Origin::Field(i),
                        spec: None,
                        ty: widened(f.data_type()),
                    }),
                }
            }
            if let Some(sc) = &self.source_column {
                plan.push(Plan {
                    name: sc.clone(),
                    from: Origin::SourceName,
                    spec: None,
                    ty: DataType::Utf8,
                });
            }
            let fields: Vec<Field> = plan.iter().map(|p| Field::new(&p.name, p.ty.clone(), true)).collect();
            self.schema = Some((Arc::new(Schema::new(fields)), source.to_string()));
            return Ok(plan);
        };
        let mut plan = Vec::new();
        for out in schema.fields() {
            let name = out.name();
            let found = file.column_with_name(name);
            let from = if Some(name) == self.source_column.as_ref() {
                Origin::SourceName
            } else if let Some((i, f)) = found {
                if !self.declared.contains_key(name) && widened(f.data_type()) != *out.data_type() {
                    bail!(
                        "column `{name}` is {} in {source} but {} in {first}: files read together must agree (declare `{name}` in [columns] to convert every file to one type)",
                        f.data_type(),
                        out.data_type()
                    );
                }
                Origin::Field(i)
            } else {
                Origin::Null
            };
            plan.push(Plan {
                name: name.clone(),
                from,
                spec: self.declared.get(name).cloned(),
                ty: out.data_type().clone(),
            });
        }
        let extra: Vec<&str> = file
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .filter(|n| schema.column_with_name(n).is_none())
            .filter(|n| !self.declared_only || self.declared.contains_key(*n))
            .collect();
        if !extra.is_empty() {
            bail!(
                "{source} has column(s) {} that {first} does not have: files read together must have the same columns (set `columns_only = true` and declare the columns to keep)",
                extra.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
            );
        }
        Ok(plan)
    }

    /// Finishes the dataset, taking back the quarantine from `ingest`.
    pub fn finish(self, ingest: Ingest) -> Result<(DatasetRef, Quarantine)> {
        let writer = match self.writer {
            Some(w) => w,
            None => DatasetWriter::create(&self.dir, &self.task, &self.name, Arc::new(Schema::empty()))?,
        };
        ingest.progress.finish();
        Ok((writer.finish()?, ingest.quarantine))
    }
}

/// The type an undeclared column is stored as.
fn widened(t: &DataType) -> DataType {
    use DataType::*;
    match t {
        Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32 => Int64,
        Float16 | Float32 => Float64,
        LargeUtf8 | Utf8View => Utf8,
        Dictionary(_, v) if matches!(**v, Utf8 | LargeUtf8 | Utf8View) => Utf8,
        Timestamp(_, tz) => Timestamp(TimeUnit::Microsecond, tz.as_ref().map(|_| Arc::from("UTC"))),
        other => other.clone(),
    }
}

fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, v) => is_text(v),
        _ => false,
    }
}

/// A bad row: its index in the batch, the output column and the reason.
type Bad = (usize, usize, String);

/// Converts one batch to the output columns; returns it without its bad
/// rows, and the bad rows (first problem of each row, in row order).
fn convert(batch: &RecordBatch, plan: &[Plan], schema: &SchemaRef, source: &str) -> Result<(RecordBatch, Vec<Bad>)> {
    let n = batch.num_rows();
    let mut reasons: Vec<Option<(usize, String)>> = vec![None; n];
    let mut arrays = Vec::with_capacity(plan.len());
    for (j, p) in plan.iter().enumerate() {
        let mut report = |r: usize, why: String| {
            if reasons[r].is_none() {
                reasons[r] = Some((j, why));
            }
        };
        let a: ArrayRef = match p.from {
            Origin::SourceName => Arc::new(StringArray::from_iter_values(std::iter::repeat_n(source, n))),
            Origin::Null => new_null_array(&p.ty, n),
            Origin::Field(i) => {
                let col = batch.column(i);
                match &p.spec {
                    Some(spec) => {
                        declared(col, spec, &mut report).with_context(|| format!("column `{}` of {source}", p.name))?
                    }
                    None if col.data_type() == &p.ty => col.clone(),
                    None => checked_cast(col, &p.ty, &p.ty.to_string(), &mut report)
                        .with_context(|| format!("column `{}` of {source}", p.name))?,
                }
            }
        };
        arrays.push(a);
    }
    let out = RecordBatch::try_new(schema.clone(), arrays)?;
    if reasons.iter().all(Option::is_none) {
        return Ok((out, Vec::new()));
    }
    let keep: BooleanArray = reasons.iter().map(|r| Some(r.is_none())).collect();
    let bad = reasons
        .into_iter()
        .enumerate()
        .filter_map(|(r, x)| x.map(|(j, why)| (r, j, why)))
        .collect();
    Ok((filter_record_batch(&out, &keep)?, bad))
}

/// Casts with Arrow's safe cast; a value that turns null is reported.
fn checked_cast(col: &ArrayRef, to: &DataType, what: &str, report: &mut dyn FnMut(usize, String)) -> Result<ArrayRef> {
    if !can_cast_types(col.data_type(), to) {
        bail!("a {} column cannot be converted to {what}", col.data_type());
    }
    let out = cast_with_options(col, to, &CastOptions::default())?;
    if out.null_count() > col.null_count() {
        let fmt = ArrayFormatter::try_new(col.as_ref(), &FormatOptions::default())?;
        for r in 0..col.len() {
            if col.is_valid(r) && out.is_null(r) {
                report(
                    r,
                    format!(
                        "`{}` cannot be converted from {} to {what}",
                        fmt.value(r),
                        col.data_type()
                    ),
                );
            }
        }
    }
    Ok(out)
}

/// Converts a column to its declared type.
fn declared(col: &ArrayRef, spec: &ColumnSpec, report: &mut dyn FnMut(usize, String)) -> Result<ArrayRef> {
    let n = col.len();
    let target = spec.arrow_type();
    let from = col.data_type();
    let out: ArrayRef = if is_text(from) {
        // Parsed as text is: same formats, same reasons.
        let text = cast(col, &DataType::Utf8)?;
        let text = text.as_string::<i32>();
        let mut lenient = spec.clone();
        lenient.nullable = true;
        let mut b = BatchBuilder::new(&[("v".to_string(), lenient)]);
        for r in 0..n {
            let v = text.is_valid(r).then(|| text.value(r));
            if let Err((_, why)) = b.push(|_| v) {
                report(r, why);
                b.push(|_| None).expect("null fits a nullable column");
            }
        }
        match b.finish() {
            Some(batch) => batch.column(0).clone(),
            None => new_empty_array(&target),
        }
    } else if let (ColumnType::Timestamp, Some(tz), true) = (
        &spec.ty,
        spec.timezone,
        matches!(from, DataType::Timestamp(_, None) | DataType::Date32 | DataType::Date64),
    ) {
        // Wall-clock times in `tz`, stored as UTC.
        let naive = checked_cast(
            col,
            &DataType::Timestamp(TimeUnit::Microsecond, None),
            "timestamp",
            report,
        )?;
        let naive = naive.as_primitive::<TimestampMicrosecondType>();
        let mut b = TimestampMicrosecondBuilder::with_capacity(n);
        for r in 0..n {
            if naive.is_null(r) {
                b.append_null();
                continue;
            }
            let local = DateTime::from_timestamp_micros(naive.value(r)).map(|t| t.naive_utc());
            match local.and_then(|t| tz.from_local_datetime(&t).earliest()) {
                Some(t) => b.append_value(t.timestamp_micros()),
                None => {
                    let shown = local.map_or_else(|| naive.value(r).to_string(), |t| t.to_string());
                    report(
                        r,
                        format!("`{shown}` does not exist in {tz} (skipped by a daylight-saving change)"),
                    );
                    b.append_null();
                }
            }
        }
        Arc::new(b.finish().with_timezone("UTC"))
    } else {
        let out = checked_cast(col, &target, &spec.ty.to_string(), report)?;
        let fractional = matches!(
            from,
            DataType::Float16
                | DataType::Float32
                | DataType::Float64
                | DataType::Decimal32(..)
                | DataType::Decimal64(..)
                | DataType::Decimal128(..)
                | DataType::Decimal256(..)
        );
        if spec.ty == ColumnType::Int64 && fractional {
            let f = cast(col, &DataType::Float64)?;
            let f = f.as_primitive::<Float64Type>();
            for r in 0..n {
                if f.is_valid(r) && f.value(r).fract() != 0.0 {
                    report(r, format!("`{}` is not a whole number", f.value(r)));
                }
            }
        }
        out
    };
    if !spec.nullable && out.null_count() > 0 {
        for r in 0..n {
            if out.is_null(r) {
                report(r, "missing value in a column declared `nullable = false`".into());
            }
        }
    }
    Ok(out)
}

/// Writes a batch's bad rows to the quarantine, with the file's values.
fn quarantine(
    q: &mut Quarantine,
    source: &str,
    batch: &RecordBatch,
    row0: u64,
    plan: &[Plan],
    bad: &[Bad],
) -> Result<()> {
    let opts = FormatOptions::default().with_null("");
    let schema = batch.schema();
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts))
        .collect::<Result<Vec<_>, _>>()?;
    for (r, j, why) in bad {
        let values: Vec<(String, Option<String>)> = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .zip(&formatters)
            .map(|((f, c), fmt)| (f.name().clone(), c.is_valid(*r).then(|| fmt.value(*r).to_string())))
            .collect();
        q.add(
            source,
            row0 + *r as u64 + 1,
            Some(&plan[*j].name),
            why,
            values.iter().map(|(k, v)| (k.as_str(), v.as_deref())),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int32Array, TimestampMicrosecondArray};

    fn bads(col: ArrayRef, spec: &str) -> (ArrayRef, Vec<(usize, String)>) {
        let spec: ColumnSpec = toml::Value::String(spec.into()).try_into().unwrap();
        let mut out = Vec::new();
        let a = declared(&col, &spec, &mut |r, why| out.push((r, why))).unwrap();
        (a, out)
    }

    #[test]
    fn casts_report_values_that_do_not_convert() {
        let (a, bad) = bads(
            Arc::new(StringArray::from(vec![Some("1"), Some("x"), None, Some("2.0")])),
            "int64",
        );
        assert_eq!(a.data_type(), &DataType::Int64);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, 1);
        assert!(bad[0].1.contains("`x`"), "{bad:?}");
        let (_, bad) = bads(Arc::new(Float64Array::from(vec![1.0, 1.5, 1e300])), "int64");
        let mut rows: Vec<usize> = bad.iter().map(|b| b.0).collect();
        rows.sort();
        assert_eq!(rows, [1, 2], "{bad:?}");
        assert!(
            bad.iter().any(|b| b.1.contains("`1.5` is not a whole number")),
            "{bad:?}"
        );
        let (a, bad) = bads(Arc::new(Int32Array::from(vec![1, 2])), "float64");
        assert!(bad.is_empty());
        assert_eq!(a.data_type(), &DataType::Float64);
        let (_, bad) = bads(Arc::new(Int32Array::from(vec![1, 1000])), "decimal(4,2)");
        assert_eq!(bad.len(), 1, "{bad:?}");
    }

    #[test]
    fn naive_timestamps_declared_with_a_zone_become_utc() {
        let spec: ColumnSpec =
            toml::from_str::<toml::Table>("t = { type = \"timestamp\", timezone = \"Europe/London\" }").unwrap()["t"]
                .clone()
                .try_into()
                .unwrap();
        // 2011-06-01 08:00 (BST) and 2011-03-27 01:30 (does not exist).
        let col: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![
            1_306_915_200_000_000,
            1_301_189_400_000_000,
        ]));
        let mut bad = Vec::new();
        let a = declared(&col, &spec, &mut |r, why| bad.push((r, why))).unwrap();
        let a = a.as_primitive::<TimestampMicrosecondType>();
        assert_eq!(a.value(0), 1_306_915_200_000_000 - 3_600_000_000);
        assert_eq!(bad.len(), 1);
        assert!(bad[0].1.contains("does not exist"), "{bad:?}");
    }
}
