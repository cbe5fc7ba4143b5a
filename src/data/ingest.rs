//! Text rows in, a typed dataset and a quarantine out.
//!
//! Shared by the extract steps: each source (a file, an object) is read as
//! rows of text; every row is typed by the declared `[columns]` (or by
//! types inferred from a sample), and either appended to the output or
//! quarantined with its source, line, column and reason.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow::record_batch::RecordBatch;

use super::DatasetRef;
use super::artifact::DatasetWriter;
use super::formats::{BadSourceRow, Next, OwnedRow, Row, RowSource};
use super::infer::infer;
use super::progress::Progress;
use super::quarantine::Quarantine;
use super::rows::{BatchBuilder, DEFAULT_BATCH_ROWS};
use super::types::{ColumnSpec, ColumnType};

/// How rows become typed columns.
#[derive(Debug, Clone)]
pub struct TypingOptions {
    /// Declared columns (`[columns]`).
    pub declared: BTreeMap<String, ColumnSpec>,
    /// Guess the types of undeclared columns from a sample (else strings).
    pub infer: bool,
    /// Rows sampled for inference.
    pub infer_rows: usize,
    /// Keep only the declared columns.
    pub declared_only: bool,
    /// Add a column with each row's source name.
    pub source_column: Option<String>,
    /// Extra texts that mean "missing" (besides the empty string).
    pub null_values: Vec<String>,
}

impl TypingOptions {
    /// Whether `v` is one of the extra texts that mean "missing".
    fn is_null_text(&self, v: &str) -> bool {
        self.null_values.iter().any(|n| n == v)
    }
}

impl Default for TypingOptions {
    fn default() -> Self {
        Self {
            declared: BTreeMap::new(),
            infer: true,
            infer_rows: 10_000,
            declared_only: false,
            source_column: None,
            null_values: Vec::new(),
        }
    }
}

/// Where an output column's value comes from in the current source.
#[derive(Clone, Copy)]
enum Pick {
    Field(usize),
    SourceName,
    Missing,
}

/// Typed output of the sources read so far.
pub struct Ingest {
    opts: Arc<TypingOptions>,
    /// Fixed by the first source with a header.
    typer: Option<Typer>,
    writer: Option<DatasetWriter>,
    dir: std::path::PathBuf,
    task: String,
    name: String,
    pub quarantine: Quarantine,
    pub progress: Progress,
    pub rows_in: u64,
}

/// Rows of text to typed batches, once the output columns are fixed. A
/// clone (with an empty builder) types another source on another thread.
struct Typer {
    columns: Vec<(String, ColumnSpec)>,
    /// Which columns were inferred (for the quarantine reason).
    inferred: Vec<bool>,
    opts: Arc<TypingOptions>,
    builder: BatchBuilder,
}

/// What typing a source produces, in source order.
enum Piece {
    Batch { batch: RecordBatch, bytes: u64 },
    Bad(BadRow),
}

/// A row for the quarantine, owned (it may cross threads).
struct BadRow {
    source: String,
    line: u64,
    column: Option<String>,
    reason: String,
    values: Vec<(String, Option<String>)>,
}

/// One more source for [`Ingest::add_sources_in_parallel`]: its name and
/// how to open its rows (called on the thread that reads it).
pub struct TextSource<'a> {
    pub name: String,
    pub open: Box<dyn FnOnce() -> Result<Box<dyn RowSource>> + Send + 'a>,
}

impl Ingest {
    /// Output `name` of `task`, written under `dir`.
    pub fn new(
        dir: &Path,
        task: &str,
        name: &str,
        opts: TypingOptions,
        quarantine: Quarantine,
        progress: Progress,
    ) -> Self {
        Self {
            opts: Arc::new(opts),
            typer: None,
            writer: None,
            dir: dir.to_path_buf(),
            task: task.to_string(),
            name: name.to_string(),
            quarantine,
            progress,
            rows_in: 0,
        }
    }

    /// Reads every row of one source.
    pub fn add_source(&mut self, source_name: &str, src: &mut dyn RowSource) -> Result<()> {
        let header: Vec<String> = src.columns().to_vec();
        if header.is_empty() {
            return Ok(()); // an empty file
        }
        // The first source fixes the columns; its first rows are the sample.
        // Bad source rows stay in the sample, in order, so that the
        // quarantine lists rows in file order.
        let mut sample: Vec<Result<OwnedRow, BadSourceRow>> = Vec::new();
        if self.typer.is_none() {
            while sample.len() < self.opts.infer_rows.max(1) && self.opts.infer {
                match src.next_row()? {
                    Next::Row(line, row) => sample.push(Ok(OwnedRow::of(line, &row))),
                    Next::Bad(b) => sample.push(Err(b)),
                    Next::End => break,
                }
            }
            let good: Vec<&OwnedRow> = sample.iter().filter_map(|r| r.as_ref().ok()).collect();
            self.fix_columns(source_name, &header, &good)?;
        }
        // Out of `self` while it reads, so that the output can borrow `self`.
        let mut typer = self.typer.take().expect("fixed above");
        let read = typer.read(source_name, &header, sample, src, &mut |piece| {
            self.output().take(piece)
        });
        self.typer = Some(typer);
        read
    }

    /// Whether a source fixed the output columns (the later sources can
    /// then be read in parallel).
    pub fn columns_fixed(&self) -> bool {
        self.typer.is_some()
    }

    /// Reads `sources` on up to `threads` threads, as [`add_source`](Self::add_source)
    /// one after the other would: their rows and quarantined rows come
    /// out in the order of `sources`. A thread reads a whole source; the
    /// output waits for the sources before it, at most a few batches per
    /// thread held meanwhile. The columns must be fixed.
    pub fn add_sources_in_parallel(&mut self, sources: Vec<TextSource<'_>>, threads: usize) -> Result<()> {
        use std::sync::Mutex;
        use std::sync::mpsc::{Receiver, sync_channel};
        let typer = self.typer.clone().context("the columns are not fixed yet")?;
        let n = sources.len();
        // A channel per source, taken in order by the workers.
        let (senders, receivers): (Vec<_>, Vec<Receiver<Result<Piece>>>) =
            (0..n).map(|_| sync_channel::<Result<Piece>>(QUEUED_PIECES)).unzip();
        let work = Mutex::new(sources.into_iter().zip(senders));
        std::thread::scope(|s| {
            for _ in 0..threads.clamp(1, n.max(1)) {
                let (work, mut typer) = (&work, typer.clone());
                s.spawn(move || {
                    loop {
                        let Some((source, tx)) = work.lock().expect("a reader panicked").next() else {
                            return;
                        };
                        let read = (source.open)().and_then(|mut rows| {
                            let header = rows.columns().to_vec();
                            if header.is_empty() {
                                return Ok(()); // an empty file
                            }
                            typer.read(&source.name, &header, Vec::new(), rows.as_mut(), &mut |piece| {
                                // The receiver only goes away on an error.
                                tx.send(Ok(piece)).map_err(|_| anyhow::anyhow!("stopped"))
                            })
                        });
                        if let Err(e) = read {
                            let _ = tx.send(Err(e.context(format!("reading {}", source.name))));
                        }
                    }
                });
            }
            for rx in receivers {
                for piece in rx {
                    if let Err(e) = piece.and_then(|p| self.output().take(p)) {
                        // No reader takes another source; the ones reading
                        // stop at their next send (the receivers are gone).
                        if let Ok(mut rest) = work.lock() {
                            rest.by_ref().for_each(drop);
                        }
                        return Err(e);
                    }
                }
            }
            Ok(())
        })
    }

    fn output(&mut self) -> Output<'_> {
        Output {
            writer: &mut self.writer,
            dir: &self.dir,
            task: &self.task,
            name: &self.name,
            quarantine: &mut self.quarantine,
            progress: &mut self.progress,
            rows_in: &mut self.rows_in,
        }
    }

    fn fix_columns(&mut self, source: &str, header: &[String], sample: &[&OwnedRow]) -> Result<()> {
        for name in self.opts.declared.keys() {
            if !header.contains(name) {
                bail!(
                    "column `{name}` is declared in [columns] but {source} has no such column (it has: {})",
                    header.join(", ")
                );
            }
        }
        let mut cols = Vec::new();
        let mut inferred = Vec::new();
        for (i, name) in header.iter().enumerate() {
            if let Some(spec) = self.opts.declared.get(name) {
                cols.push((name.clone(), spec.clone()));
                inferred.push(false);
            } else if !self.opts.declared_only {
                let spec = if self.opts.infer {
                    infer(sample.iter().map(|r| {
                        r.cells
                            .get(i)
                            .and_then(|v| v.as_deref())
                            .filter(|v| !self.opts.is_null_text(v))
                    }))
                } else {
                    ColumnSpec::of(ColumnType::String)
                };
                cols.push((name.clone(), spec));
                inferred.push(self.opts.infer);
            }
        }
        if let Some(sc) = &self.opts.source_column {
            cols.push((sc.clone(), ColumnSpec::of(ColumnType::String)));
            inferred.push(false);
        }
        self.typer = Some(Typer {
            builder: BatchBuilder::new(&cols),
            columns: cols,
            inferred,
            opts: self.opts.clone(),
        });
        Ok(())
    }

    /// Finishes the dataset. With no rows at all, the dataset still exists
    /// (with the columns known, possibly none).
    pub fn finish(mut self) -> Result<(DatasetRef, Quarantine)> {
        let writer = match self.writer.take() {
            Some(w) => w,
            None => {
                let cols = self
                    .typer
                    .as_ref()
                    .map(|t| t.columns.clone())
                    .unwrap_or_else(|| self.opts.declared.iter().map(|(n, s)| (n.clone(), s.clone())).collect());
                let schema = BatchBuilder::new(&cols).schema();
                DatasetWriter::create(&self.dir, &self.task, &self.name, schema)?
            }
        };
        self.progress.finish();
        Ok((writer.finish()?, self.quarantine))
    }
}

/// Batches handed from a reader thread to the output and not yet taken.
const QUEUED_PIECES: usize = 4;

/// Where typed pieces go: the dataset, the quarantine, the counts.
struct Output<'a> {
    writer: &'a mut Option<DatasetWriter>,
    dir: &'a Path,
    task: &'a str,
    name: &'a str,
    quarantine: &'a mut Quarantine,
    progress: &'a mut Progress,
    rows_in: &'a mut u64,
}

impl Output<'_> {
    fn take(&mut self, piece: Piece) -> Result<()> {
        match piece {
            Piece::Batch { batch, bytes } => {
                *self.rows_in += batch.num_rows() as u64;
                if self.writer.is_none() {
                    *self.writer = Some(DatasetWriter::create(self.dir, self.task, self.name, batch.schema())?);
                }
                self.progress.add(batch.num_rows() as u64, bytes);
                self.writer.as_mut().expect("created above").write(&batch)
            }
            Piece::Bad(b) => {
                *self.rows_in += 1;
                let values = b.values.iter().map(|(k, v)| (k.as_str(), v.as_deref()));
                self.quarantine
                    .add(&b.source, b.line, b.column.as_deref(), &b.reason, values)?;
                Ok(())
            }
        }
    }
}

impl Clone for Typer {
    fn clone(&self) -> Self {
        Self {
            columns: self.columns.clone(),
            inferred: self.inferred.clone(),
            opts: self.opts.clone(),
            builder: BatchBuilder::new(&self.columns),
        }
    }
}

impl Typer {
    /// Types the rows of one source (after `sample`, rows already read
    /// from it), handing batches and bad rows to `out` in source order.
    fn read(
        &mut self,
        source: &str,
        header: &[String],
        sample: Vec<Result<OwnedRow, BadSourceRow>>,
        src: &mut dyn RowSource,
        out: &mut dyn FnMut(Piece) -> Result<()>,
    ) -> Result<()> {
        let picks = self.picks(source, header)?;
        for entry in &sample {
            match entry {
                Ok(r) => self.push(source, header, &picks, r.line, &Row::Cells(&r.cells), out)?,
                Err(b) => out(Piece::Bad(raw_bad_row(source, header, b.line, &b.reason, &b.cells)))?,
            }
        }
        loop {
            match src.next_row()? {
                Next::Row(line, row) => self.push(source, header, &picks, line, &row, out)?,
                Next::Bad(b) => out(Piece::Bad(raw_bad_row(source, header, b.line, &b.reason, &b.cells)))?,
                Next::End => break,
            }
        }
        self.flush(out)
    }

    fn picks(&self, source: &str, header: &[String]) -> Result<Vec<Pick>> {
        let mut picks = Vec::with_capacity(self.columns.len());
        for (name, spec) in &self.columns {
            if Some(name) == self.opts.source_column.as_ref() {
                picks.push(Pick::SourceName);
            } else if let Some(i) = header.iter().position(|h| h == name) {
                picks.push(Pick::Field(i));
            } else if spec.nullable && !self.opts.declared.contains_key(name) {
                picks.push(Pick::Missing);
            } else {
                bail!("{source} has no column `{name}` (it has: {})", header.join(", "));
            }
        }
        Ok(picks)
    }

    fn push(
        &mut self,
        source: &str,
        header: &[String],
        picks: &[Pick],
        line: u64,
        row: &Row<'_>,
        out: &mut dyn FnMut(Piece) -> Result<()>,
    ) -> Result<()> {
        if row.len() != header.len() {
            let reason = format!("row has {} fields, the header has {}", row.len(), header.len());
            let cells: Vec<Option<String>> = (0..row.len()).map(|i| row.get(i).map(str::to_string)).collect();
            return out(Piece::Bad(raw_bad_row(source, header, line, &reason, &cells)));
        }
        let get = |j: usize| match picks[j] {
            Pick::Field(i) => row.get(i).filter(|v| !self.opts.is_null_text(v)),
            Pick::SourceName => Some(source),
            Pick::Missing => None,
        };
        if let Err((j, reason)) = self.builder.push(get) {
            let (col, spec) = &self.columns[j];
            let reason = if self.inferred[j] {
                format!(
                    "{reason} (column `{col}` was inferred as {} from the first {} rows; declare it in [columns], e.g. `{col} = \"string\"`)",
                    spec.ty, self.opts.infer_rows
                )
            } else {
                reason
            };
            let values = header
                .iter()
                .enumerate()
                .map(|(i, h)| (h.clone(), row.get(i).map(str::to_string)))
                .collect();
            return out(Piece::Bad(BadRow {
                source: source.to_string(),
                line,
                column: Some(col.clone()),
                reason,
                values,
            }));
        }
        let b = &self.builder;
        // The byte size is summed over the columns: checked every 1,024 rows.
        if b.len() >= DEFAULT_BATCH_ROWS || (b.len().is_multiple_of(1024) && b.buffered_bytes() >= 64 << 20) {
            self.flush(out)?;
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut dyn FnMut(Piece) -> Result<()>) -> Result<()> {
        let bytes = self.builder.buffered_bytes() as u64;
        match self.builder.finish() {
            Some(batch) => out(Piece::Batch { batch, bytes }),
            None => Ok(()),
        }
    }
}

/// A row that never reached typing (bad encoding, ragged, broken JSON):
/// its cells under the header's names (`column_N` past them).
fn raw_bad_row(source: &str, header: &[String], line: u64, reason: &str, cells: &[Option<String>]) -> BadRow {
    let names = header
        .iter()
        .cloned()
        .chain((header.len()..cells.len()).map(|i| format!("column_{}", i + 1)));
    BadRow {
        source: source.to_string(),
        line,
        column: None,
        reason: reason.to_string(),
        values: names.zip(cells.iter().cloned()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::formats::csv::{CsvOptions, CsvSource};
    use crate::engine::log::TaskLog;
    use arrow::array::AsArray;
    use arrow::datatypes::Int64Type;

    fn ingest(dir: &Path) -> Ingest {
        let mut opts = TypingOptions::default();
        opts.declared.insert("n".into(), ColumnSpec::of(ColumnType::Int64));
        Ingest::new(
            dir,
            "t",
            "default",
            opts,
            Quarantine::new(dir.join("quarantine.ndjson")),
            Progress::new("read", TaskLog::discard()),
        )
    }

    /// File `f`: rows `f * 100 + r`, every seventh one not a number.
    fn file(f: usize) -> String {
        let mut text = String::from("n\n");
        for r in 0..(f % 5) * 30 {
            let n = f * 100 + r;
            text.push_str(&if n.is_multiple_of(7) {
                format!("x{n}\n")
            } else {
                format!("{n}\n")
            });
        }
        text
    }

    fn source(f: usize) -> Box<dyn RowSource> {
        let input: Box<dyn std::io::Read + Send> = Box::new(std::io::Cursor::new(file(f)));
        Box::new(CsvSource::new(input, &CsvOptions::default(), false, &[]).unwrap())
    }

    fn read_back(d: &DatasetRef) -> Vec<i64> {
        crate::data::artifact::read_whole(d)
            .unwrap()
            .column(0)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec()
    }

    /// Read side by side on more threads than cores, the output (rows and
    /// quarantine, empty files included) equals reading one by one.
    #[test]
    fn sources_read_in_parallel_come_out_as_read_one_by_one() {
        let (one, many) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut a = ingest(one.path());
        for f in 0..30 {
            a.add_source(&format!("f{f}"), source(f).as_mut()).unwrap();
        }
        let mut b = ingest(many.path());
        b.add_source("f0", source(0).as_mut()).unwrap(); // a header and no rows: fixes the columns
        b.add_source("f1", source(1).as_mut()).unwrap();
        assert!(b.columns_fixed());
        let rest = (2..30)
            .map(|f| TextSource {
                name: format!("f{f}"),
                open: Box::new(move || Ok(source(f))),
            })
            .collect();
        b.add_sources_in_parallel(rest, 5).unwrap();
        assert_eq!(a.rows_in, b.rows_in);
        let (da, qa) = a.finish().unwrap();
        let (db, qb) = b.finish().unwrap();
        assert_eq!(read_back(&da), read_back(&db));
        assert!(qa.count() > 0);
        qa.finish().unwrap();
        qb.finish().unwrap();
        let q = |d: &tempfile::TempDir| std::fs::read_to_string(d.path().join("quarantine.ndjson")).unwrap();
        assert_eq!(q(&one), q(&many));
    }

    /// A source that fails to open fails the read with its name.
    #[test]
    fn a_source_that_fails_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let mut i = ingest(dir.path());
        i.add_source("f1", source(1).as_mut()).unwrap();
        let rest: Vec<TextSource> = (2..6)
            .map(|f| TextSource {
                name: format!("f{f}"),
                open: Box::new(move || if f == 4 { anyhow::bail!("gone") } else { Ok(source(f)) }),
            })
            .collect();
        let err = i.add_sources_in_parallel(rest, 2).unwrap_err();
        assert!(format!("{err:#}").contains("reading f4: gone"), "{err:#}");
    }
}
