//! Text rows in, a typed dataset and a quarantine out.
//!
//! Shared by the extract steps: each source (a file, an object) is read as
//! rows of text; every row is typed by the declared `[columns]` (or by
//! types inferred from a sample), and either appended to the output or
//! quarantined with its source, line, column and reason.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};

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
    opts: TypingOptions,
    /// Output columns, fixed by the first source with a header.
    columns: Option<Vec<(String, ColumnSpec)>>,
    /// Which columns were inferred (for the quarantine reason).
    inferred: Vec<bool>,
    builder: Option<BatchBuilder>,
    writer: Option<DatasetWriter>,
    dir: std::path::PathBuf,
    task: String,
    name: String,
    pub quarantine: Quarantine,
    pub progress: Progress,
    pub rows_in: u64,
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
            opts,
            columns: None,
            inferred: Vec::new(),
            builder: None,
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
        if self.columns.is_none() {
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
        let columns = self.columns.clone().expect("fixed above");
        let picks = self.picks(source_name, &header, &columns)?;
        for entry in &sample {
            match entry {
                Ok(r) => self.push(source_name, &header, &columns, &picks, r.line, &Row::Cells(&r.cells))?,
                Err(b) => {
                    self.rows_in += 1;
                    self.quarantine_raw(source_name, &header, b.line, &b.reason, &b.cells)?
                }
            }
        }
        loop {
            match src.next_row()? {
                Next::Row(line, row) => self.push(source_name, &header, &columns, &picks, line, &row)?,
                Next::Bad(b) => {
                    self.rows_in += 1;
                    self.quarantine_raw(source_name, &header, b.line, &b.reason, &b.cells)?
                }
                Next::End => break,
            }
        }
        self.flush()
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
                            .filter(|v| !self.is_null_text(v))
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
        self.builder = Some(BatchBuilder::new(&cols));
        self.columns = Some(cols);
        self.inferred = inferred;
        Ok(())
    }

    fn picks(&self, source: &str, header: &[String], columns: &[(String, ColumnSpec)]) -> Result<Vec<Pick>> {
        let mut picks = Vec::with_capacity(columns.len());
        for (name, spec) in columns {
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

    fn is_null_text(&self, v: &str) -> bool {
        self.opts.null_values.iter().any(|n| n == v)
    }

    fn push(
        &mut self,
        source: &str,
        header: &[String],
        columns: &[(String, ColumnSpec)],
        picks: &[Pick],
        line: u64,
        row: &Row<'_>,
    ) -> Result<()> {
        self.rows_in += 1;
        if row.len() != header.len() {
            let reason = format!("row has {} fields, the header has {}", row.len(), header.len());
            let cells: Vec<Option<String>> = (0..row.len()).map(|i| row.get(i).map(str::to_string)).collect();
            return self.quarantine_raw(source, header, line, &reason, &cells);
        }
        let nulls = &self.opts.null_values;
        let builder = self.builder.as_mut().expect("columns fixed");
        let get = |j: usize| match picks[j] {
            Pick::Field(i) => row.get(i).filter(|v| nulls.is_empty() || !nulls.iter().any(|n| n == v)),
            Pick::SourceName => Some(source),
            Pick::Missing => None,
        };
        if let Err((j, reason)) = builder.push(get) {
            let (col, _) = &columns[j];
            let reason = if self.inferred[j] {
                format!(
                    "{reason} (column `{col}` was inferred as {} from the first {} rows; declare it in [columns], e.g. `{col} = \"string\"`)",
                    columns[j].1.ty, self.opts.infer_rows
                )
            } else {
                reason
            };
            let values = header.iter().enumerate().map(|(i, h)| (h.as_str(), row.get(i)));
            self.quarantine.add(source, line, Some(col), &reason, values)?;
            return Ok(());
        }
        let b = self.builder.as_ref().expect("columns fixed");
        // The byte size is summed over the columns: checked every 1,024 rows.
        if b.len() >= DEFAULT_BATCH_ROWS || (b.len().is_multiple_of(1024) && b.buffered_bytes() >= 64 << 20) {
            self.flush()?;
        }
        Ok(())
    }

    /// Quarantines a row that never reached typing (bad encoding, ragged,
    /// broken JSON): its cells under the header's names (`column_N` past
    /// them). The caller counts it in `rows_in`.
    fn quarantine_raw(
        &mut self,
        source: &str,
        header: &[String],
        line: u64,
        reason: &str,
        cells: &[Option<String>],
    ) -> Result<()> {
        let extra: Vec<String> = (header.len()..cells.len())
            .map(|i| format!("column_{}", i + 1))
            .collect();
        let names = header.iter().chain(extra.iter());
        let values = names.zip(cells.iter()).map(|(h, v)| (h.as_str(), v.as_deref()));
        self.quarantine.add(source, line, None, reason, values)?;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let Some(builder) = self.builder.as_mut() else {
            return Ok(());
        };
        let bytes = builder.buffered_bytes() as u64;
        let Some(batch) = builder.finish() else { return Ok(()) };
        if self.writer.is_none() {
            self.writer = Some(DatasetWriter::create(
                &self.dir,
                &self.task,
                &self.name,
                batch.schema(),
            )?);
        }
        self.progress.add(batch.num_rows() as u64, bytes);
        self.writer.as_mut().expect("created above").write(&batch)
    }

    /// Finishes the dataset. With no rows at all, the dataset still exists
    /// (with the columns known, possibly none).
    pub fn finish(mut self) -> Result<(DatasetRef, Quarantine)> {
        self.flush()?;
        let writer = match self.writer.take() {
            Some(w) => w,
            None => {
                let cols = self
                    .columns
                    .clone()
                    .unwrap_or_else(|| self.opts.declared.iter().map(|(n, s)| (n.clone(), s.clone())).collect());
                let schema = BatchBuilder::new(&cols).schema();
                DatasetWriter::create(&self.dir, &self.task, &self.name, schema)?
            }
        };
        self.progress.finish();
        Ok((writer.finish()?, self.quarantine))
    }
}
