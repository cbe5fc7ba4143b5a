//! Load steps: a task's one input dataset out to a warehouse table or a file.
//!
//! Every load reads its input batch by batch (bounded memory), stops at the
//! next batch when the run is cancelled or the attempt times out, and
//! leaves the previous target intact when it fails: SQLite loads run in one
//! transaction, file loads write a temporary file and rename it.

use std::fmt::Write as _;
use std::fs::File;
use std::path::{Path, PathBuf};

use ::parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use anyhow::{Context, Result};
use arrow::array::{Array, ArrayRef, ArrowPrimitiveType, AsArray, PrimitiveArray, StringArray, StringBuilder};
use arrow::datatypes::{DataType, Date32Type, Int64Type, TimeUnit};
use arrow::record_batch::RecordBatch;
use chrono::{Datelike, NaiveDate};

use crate::data::artifact::open;
use crate::data::rows::DEFAULT_BATCH_ROWS;
use crate::steps::StepContext;

pub mod csv;
pub mod parquet;
pub mod postgres;
pub mod redshift;
mod sql_values;
pub mod sqlite;
mod sqlite_insert;
pub mod table;
pub mod warehouse;

/// Runs `work` on the blocking pool with a cancellation token of its own,
/// cancelled when the returned future is dropped (task timeout, Ctrl-C):
/// the work then stops at its next `check_cancelled` and rolls back
/// instead of finishing unobserved after the attempt was given up.
async fn blocking_load<T: Send + 'static>(
    cx: &StepContext,
    work: impl FnOnce(StepContext) -> Result<T> + Send + 'static,
) -> Result<T> {
    let token = cx.cancel.child_token();
    let _cancel_on_drop = token.clone().drop_guard();
    let mut cx = cx.clone();
    cx.cancel = token;
    cx.blocking(work).await
}

/// Opens the task's one input for streaming.
fn open_input(cx: &StepContext) -> Result<ParquetRecordBatchReader> {
    open(cx.single_input()?, DEFAULT_BATCH_ROWS)
}

/// Feeds every batch of `reader` to `each`, checking for cancellation
/// before each batch and reporting progress as `label`. Returns the rows
/// read.
fn for_each_batch(
    cx: &StepContext,
    reader: ParquetRecordBatchReader,
    label: &str,
    mut each: impl FnMut(&RecordBatch) -> Result<()>,
) -> Result<u64> {
    for_each_batch_with(cx, reader, label, Ok, |b| each(&b))
}

/// [`for_each_batch`], with each batch first made ready by `prepare` on a
/// thread of its own, one batch ahead: the load's writing (SQLite's
/// inserts, a file's encoding) overlaps the decoding and preparing of the
/// next batch instead of waiting for it.
fn for_each_batch_with<T: Send>(
    cx: &StepContext,
    reader: ParquetRecordBatchReader,
    label: &str,
    mut prepare: impl FnMut(RecordBatch) -> Result<T> + Send,
    mut each: impl FnMut(T) -> Result<()>,
) -> Result<u64> {
    let mut progress = cx.progress(label);
    let result = std::thread::scope(|s| -> Result<u64> {
        let (ready, batches) = std::sync::mpsc::sync_channel::<Result<(T, u64, u64)>>(1);
        s.spawn(move || {
            for batch in reader {
                let item = batch.context("reading the input dataset").and_then(|b| {
                    let (rows, bytes) = (b.num_rows() as u64, b.get_array_memory_size() as u64);
                    Ok((prepare(b)?, rows, bytes))
                });
                let failed = item.is_err();
                // A closed channel: the load stopped (an error, cancelled).
                if ready.send(item).is_err() || failed {
                    break;
                }
            }
        });
        let mut rows = 0u64;
        // Returning early drops `batches`, which stops the reader thread.
        for item in batches {
            cx.check_cancelled()?;
            let (value, n, bytes) = item?;
            each(value)?;
            rows += n;
            progress.add(n, bytes);
        }
        cx.check_cancelled()?;
        Ok(rows)
    });
    progress.finish();
    result
}

/// A column as text, the way loads write values that have no native form
/// in the target: dates `YYYY-MM-DD`, timestamps `YYYY-MM-DD
/// HH:MM:SS[.ffffff]` (in UTC when the column has a time zone, then
/// followed by `Z` if `utc_suffix`), decimals as their exact digits, other
/// types as Arrow's cast to string writes them.
fn text_column(col: &ArrayRef, utc_suffix: bool) -> Result<StringArray> {
    match col.data_type() {
        DataType::Utf8 => Ok(col.as_string::<i32>().clone()),
        DataType::Date32 => each_as_text(col.as_primitive::<Date32Type>(), write_days),
        DataType::Timestamp(unit, tz) => {
            let suffix = if utc_suffix && tz.is_some() { "Z" } else { "" };
            let values = arrow::compute::cast(col, &DataType::Int64)?;
            each_as_text(values.as_primitive::<Int64Type>(), |out, v| {
                write_timestamp(out, v, *unit)?;
                out.push_str(suffix);
                Ok(())
            })
        }
        other => {
            let cast = arrow::compute::cast(col, &DataType::Utf8)
                .with_context(|| format!("cannot write values of type {other} as text"))?;
            Ok(cast.as_string::<i32>().clone())
        }
    }
}

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// A string column of `write`'s text of each value (nulls stay null).
fn each_as_text<T: ArrowPrimitiveType>(
    values: &PrimitiveArray<T>,
    mut write: impl FnMut(&mut String, T::Native) -> Result<()>,
) -> Result<StringArray> {
    let mut out = StringBuilder::with_capacity(values.len(), values.len() * 20);
    let mut text = String::with_capacity(32);
    for v in values.iter() {
        match v {
            None => out.append_null(),
            Some(v) => {
                text.clear();
                write(&mut text, v)?;
                out.append_value(&text);
            }
        }
    }
    Ok(out.finish())
}

/// Writes a Date32 (days since the epoch) as `YYYY-MM-DD`.
fn write_days(out: &mut String, days: i32) -> Result<()> {
    let date = days
        .checked_add(UNIX_EPOCH_DAYS_FROM_CE)
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .with_context(|| format!("date {days} is out of range"))?;
    write_date(out, date)
}

// Formatting by hand: chrono's `format` parses its pattern on every call,
// and even `write!` with `{:02}` was most of a load's time.
fn write_date(out: &mut String, d: NaiveDate) -> Result<()> {
    let year = d.year();
    if !(0..=9999).contains(&year) {
        return Ok(write!(out, "{:04}-{:02}-{:02}", year, d.month(), d.day())?);
    }
    push_digits(out, year as u32, 4);
    out.push('-');
    push_digits(out, d.month(), 2);
    out.push('-');
    push_digits(out, d.day(), 2);
    Ok(())
}

/// `v` as exactly `width` decimal digits (the lowest ones; callers pass
/// values that fit).
fn push_digits(out: &mut String, mut v: u32, width: usize) {
    let mut digits = [b'0'; 10];
    for d in digits[..width].iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    // Char by char: a UTF-8 check of the digits per call was a fortieth
    // of a load.
    for &d in &digits[..width] {
        out.push(char::from(d));
    }
}

/// Writes `v` (in `unit` since the epoch) as `YYYY-MM-DD HH:MM:SS`, with
/// 6 fraction digits when it has microseconds and 9 with nanoseconds.
fn write_timestamp(out: &mut String, v: i64, unit: TimeUnit) -> Result<()> {
    let per_sec: i64 = match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    let nanos = (v.rem_euclid(per_sec) * (1_000_000_000 / per_sec)) as u32;
    let secs = v.div_euclid(per_sec);
    let days = secs.div_euclid(86_400);
    let date = i32::try_from(days)
        .ok()
        .and_then(|d| d.checked_add(UNIX_EPOCH_DAYS_FROM_CE))
        .and_then(NaiveDate::from_num_days_from_ce_opt)
        .with_context(|| format!("timestamp {v} ({unit:?}) is out of range"))?;
    let in_day = secs.rem_euclid(86_400) as u32;
    write_date(out, date)?;
    out.push(' ');
    push_digits(out, in_day / 3600, 2);
    out.push(':');
    push_digits(out, in_day / 60 % 60, 2);
    out.push(':');
    push_digits(out, in_day % 60, 2);
    match nanos {
        0 => {}
        n if n % 1000 == 0 => {
            out.push('.');
            push_digits(out, n / 1000, 6);
        }
        n => {
            out.push('.');
            push_digits(out, n, 9);
        }
    }
    Ok(())
}

/// A file written under a temporary name next to its final one, renamed
/// into place by [`AtomicFile::commit`]: readers see the old file or the
/// complete new one, never half of it. Dropped uncommitted (error,
/// cancellation), the temporary file is removed.
struct AtomicFile {
    tmp: PathBuf,
    path: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Creates the temporary file for `path` (and its parent folders).
    fn create(path: PathBuf) -> Result<(Self, File)> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        // Hidden, so that globs such as `*.csv` never pick it up.
        let tmp = dir.join(format!(".{name}.nightjar-tmp"));
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let me = Self {
            tmp,
            path,
            committed: false,
        };
        Ok((me, file))
    }

    /// Flushes `file` to disk and renames it to the final name.
    fn commit(mut self, file: File) -> Result<()> {
        file.sync_all()
            .with_context(|| format!("writing {}", self.tmp.display()))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.path).with_context(|| format!("renaming to {}", self.path.display()))?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// The file a file load writes: `file` (default `<task>.<ext>`) inside the
/// folder `path`, relative to the project folder.
/// The output of a file load: no dataset, the rows written, and where.
fn file_written(rows: u64, path: &std::path::Path) -> crate::steps::StepOutput {
    let mut metrics = crate::steps::Metrics {
        rows_in: rows,
        rows_out: rows,
        ..Default::default()
    };
    metrics.extra.insert("path".into(), path.display().to_string().into());
    crate::steps::StepOutput {
        datasets: Vec::new(),
        metrics,
    }
}

fn target_path(cx: &StepContext, folder: &str, file: Option<&str>, ext: &str) -> PathBuf {
    let name = file.map_or_else(|| format!("{}.{ext}", cx.task), str::to_string);
    cx.resolve(folder).join(name)
}

/// Checks shared by the file loads: `path` and `file` are not empty, and
/// `file` stays inside `path`.
fn check_file_target(folder: &str, file: Option<&str>) -> Vec<crate::steps::ConfigProblem> {
    use crate::steps::ConfigProblem;
    let mut p = Vec::new();
    if folder.trim().is_empty() {
        p.push(
            ConfigProblem::new("path", "`path` is empty")
                .hint("name the folder to write to, e.g. `path = \"exports\"`"),
        );
    }
    if let Some(f) = file {
        let rel = Path::new(f);
        if f.trim().is_empty() || f.ends_with('/') {
            p.push(ConfigProblem::new("file", "`file` must name a file").hint("e.g. `file = \"orders_{{ ds }}.csv\"`"));
        } else if rel.is_absolute() || rel.components().any(|c| c == std::path::Component::ParentDir) {
            p.push(
                ConfigProblem::new("file", "`file` must stay inside the folder `path`")
                    .hint("put the folder in `path` and only the name (or a sub-folder) in `file`"),
            );
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Date32Array, Decimal128Array, Float64Array, TimestampMicrosecondArray};

    use super::*;

    fn texts(col: ArrayRef, utc_suffix: bool) -> Vec<Option<String>> {
        let s = text_column(&col, utc_suffix).unwrap();
        s.iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn text_forms_of_dates_timestamps_and_decimals() {
        let d: ArrayRef = Arc::new(Date32Array::from(vec![Some(14944), None]));
        assert_eq!(texts(d, false), [Some("2010-12-01".into()), None]);
        let ts = TimestampMicrosecondArray::from(vec![1_291_191_960_000_000, 1_291_191_960_123_456, -1]);
        assert_eq!(
            texts(Arc::new(ts.clone()), true),
            [
                "2010-12-01 08:26:00",
                "2010-12-01 08:26:00.123456",
                "1969-12-31 23:59:59.999999"
            ]
            .map(|s| Some(s.into()))
        );
        let utc: ArrayRef = Arc::new(ts.with_timezone("UTC"));
        assert_eq!(texts(utc.clone(), true)[0].as_deref(), Some("2010-12-01 08:26:00Z"));
        assert_eq!(texts(utc, false)[0].as_deref(), Some("2010-12-01 08:26:00"));
        let dec: ArrayRef = Arc::new(
            Decimal128Array::from(vec![255, -100, 1, 123_456_789_012_345_678_901_234_567])
                .with_precision_and_scale(38, 2)
                .unwrap(),
        );
        assert_eq!(
            texts(dec, false),
            ["2.55", "-1.00", "0.01", "1234567890123456789012345.67"].map(|s| Some(s.into()))
        );
        let f: ArrayRef = Arc::new(Float64Array::from(vec![1.5, 2.0]));
        assert_eq!(texts(f, false), ["1.5", "2.0"].map(|s| Some(s.into())));
    }

    #[tokio::test]
    async fn a_dropped_load_cancels_its_blocking_work() {
        let h = crate::steps::testing::Harness::new("load");
        let (tx, rx) = std::sync::mpsc::channel();
        let work = blocking_load(&h.cx, move |cx| {
            while cx.check_cancelled().is_ok() {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            tx.send(()).unwrap();
            Ok(())
        });
        // A task timeout drops the attempt's future.
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), work)
                .await
                .is_err()
        );
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("the blocking work saw the cancellation");
        assert!(!h.cx.cancel.is_cancelled(), "the run itself goes on");
    }

    #[test]
    fn atomic_file_replaces_or_leaves_the_old_file() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.txt");
        let (a, mut f) = AtomicFile::create(path.clone()).unwrap();
        f.write_all(b"one").unwrap();
        a.commit(f).unwrap();
        let (a, mut f) = AtomicFile::create(path.clone()).unwrap();
        f.write_all(b"half").unwrap();
        drop((a, f));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert_eq!(names.len(), 1, "the temporary file is removed");
    }
}
