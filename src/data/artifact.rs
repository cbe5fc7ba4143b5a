//! Datasets on disk: Parquet (zstd) files in the artifact store.
//!
//! A writer streams record batches into `<dir>/<name>.parquet.tmp` and
//! renames it to `<name>.parquet` when finished, so an artifact that exists
//! is complete: a crash or a cancelled attempt leaves at most a `.tmp`.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::arrow_writer::{ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;

use super::DatasetRef;

/// Rows per Parquet row group: small enough that the writer's buffer stays
/// bounded (it holds one row group in memory), large enough for good
/// compression and fast scans.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Streams batches into one Parquet artifact.
///
/// Encoding and compressing (a sixth of a CSV extract) run on a thread of
/// the writer's own, so they overlap with the work producing the batches;
/// at most [`QUEUED_BATCHES`] batches wait for it. A write error shows at
/// the next `write` or at `finish`.
///
/// [`DatasetWriter::create_parallel`] encodes each row group's columns side
/// by side instead, a thread per column, for a caller that hands over a
/// whole table and waits for it (a normalize step's order lines, written
/// last, no longer wait on one core). Streaming producers keep the one
/// encoding thread: gathering row groups would stall them while a group
/// encodes (a CSV extract measured slower).
pub struct DatasetWriter {
    task: String,
    name: String,
    tmp: PathBuf,
    path: PathBuf,
    queue: Option<std::sync::mpsc::SyncSender<RecordBatch>>,
    thread: Option<std::thread::JoinHandle<Result<Encoder>>>,
    rows: u64,
}

/// Batches handed to the writer's thread and not yet written.
const QUEUED_BATCHES: usize = 2;

impl DatasetWriter {
    /// Creates `<dir>/<name>.parquet` for `task`'s output `name`.
    pub fn create(dir: &Path, task: &str, name: &str, schema: SchemaRef) -> Result<Self> {
        Self::start(dir, task, name, schema, false)
    }

    /// [`create`](Self::create), encoding a row group's columns side by
    /// side once the group is complete.
    pub fn create_parallel(dir: &Path, task: &str, name: &str, schema: SchemaRef) -> Result<Self> {
        Self::start(dir, task, name, schema, true)
    }

    fn start(dir: &Path, task: &str, name: &str, schema: SchemaRef, parallel: bool) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{name}.parquet"));
        let tmp = dir.join(format!("{name}.parquet.tmp"));
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            // No min/max statistics: artifacts are read whole by the next
            // task, never pruned, and the statistics cost string
            // comparisons on every value (a tenth of the encoding).
            .set_statistics_enabled(parquet::file::properties::EnabledStatistics::None)
            .build();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))?;
        let mut encoder = if parallel {
            // ArrowWriter set the file up (its schema, the Arrow schema in
            // the footer); its lower-level parts write column by column.
            let (file, columns) = writer.into_serialized_writer()?;
            Encoder::Parallel(RowGroups {
                file,
                columns,
                schema,
                pending: Vec::new(),
                pending_rows: 0,
                written: 0,
            })
        } else {
            Encoder::Streaming(writer)
        };
        let (queue, batches) = std::sync::mpsc::sync_channel::<RecordBatch>(QUEUED_BATCHES);
        let shown = tmp.display().to_string();
        let thread = std::thread::Builder::new()
            .name(format!("write {name}"))
            .spawn(move || {
                for b in batches {
                    encoder.push(b).with_context(|| format!("writing {shown}"))?;
                }
                Ok(encoder)
            })
            .context("starting the artifact writer thread")?;
        Ok(Self {
            task: task.to_string(),
            name: name.to_string(),
            tmp,
            path,
            queue: Some(queue),
            thread: Some(thread),
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() > 0 {
            let sent = self.queue.as_ref().map(|q| q.send(batch.clone()));
            if !matches!(sent, Some(Ok(()))) {
                // The thread stopped: its error says why.
                return Err(self
                    .join()
                    .err()
                    .unwrap_or_else(|| anyhow::anyhow!("the artifact writer stopped")));
            }
            self.rows += batch.num_rows() as u64;
        }
        Ok(())
    }

    fn join(&mut self) -> Result<Encoder> {
        self.queue = None; // ends the thread's loop
        let thread = self.thread.take().context("the artifact writer already stopped")?;
        thread
            .join()
            .map_err(|_| anyhow::anyhow!("the artifact writer thread panicked"))?
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Closes the file and makes it visible under its final name.
    pub fn finish(mut self) -> Result<DatasetRef> {
        self.join()?
            .close()
            .with_context(|| format!("writing {}", self.tmp.display()))?;
        std::fs::rename(&self.tmp, &self.path).with_context(|| format!("renaming {}", self.tmp.display()))?;
        Ok(DatasetRef {
            task: self.task.clone(),
            name: self.name.clone(),
            uri: self.path.to_string_lossy().into_owned(),
            rows: Some(self.rows),
        })
    }
}

/// The writer thread's side.
enum Encoder {
    Streaming(ArrowWriter<File>),
    Parallel(RowGroups),
}

impl Encoder {
    fn push(&mut self, batch: RecordBatch) -> Result<()> {
        match self {
            Self::Streaming(w) => Ok(w.write(&batch)?),
            Self::Parallel(g) => g.push(batch),
        }
    }

    fn close(self) -> Result<()> {
        match self {
            Self::Streaming(w) => w.close().map(drop).map_err(Into::into),
            Self::Parallel(g) => g.close(),
        }
    }
}

/// Batches gathered into row groups of
/// [`ROW_GROUP_ROWS`] rows, each encoded a column per thread.
struct RowGroups {
    file: SerializedFileWriter<File>,
    columns: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    written: usize,
}

impl RowGroups {
    fn push(&mut self, batch: RecordBatch) -> Result<()> {
        let mut batch = batch;
        while self.pending_rows + batch.num_rows() >= ROW_GROUP_ROWS {
            let fits = ROW_GROUP_ROWS - self.pending_rows;
            self.pending.push(batch.slice(0, fits));
            self.pending_rows += fits;
            self.write_group()?;
            batch = batch.slice(fits, batch.num_rows() - fits);
        }
        if batch.num_rows() > 0 {
            self.pending_rows += batch.num_rows();
            self.pending.push(batch);
        }
        Ok(())
    }

    /// Encodes the pending batches as one row group.
    fn write_group(&mut self) -> Result<()> {
        let batches = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        // Each field's writers: one per Parquet leaf column (several for a
        // nested field), leaves in field order.
        let mut fields: Vec<(usize, Vec<ArrowColumnWriter>)> =
            (0..self.schema.fields().len()).map(|i| (i, Vec::new())).collect();
        let leaves = self.file.schema_descr();
        for (leaf, writer) in self
            .columns
            .create_column_writers(self.written)?
            .into_iter()
            .enumerate()
        {
            fields[leaves.get_column_root_idx(leaf)].1.push(writer);
        }
        let chunks = std::thread::scope(|s| {
            let handles: Vec<_> = fields
                .into_iter()
                .map(|(i, mut writers)| {
                    let (batches, field) = (&batches, self.schema.field(i));
                    s.spawn(move || -> Result<Vec<ArrowColumnChunk>> {
                        for b in batches {
                            let leaves = parquet::arrow::arrow_writer::compute_leaves(field, b.column(i))?;
                            for (w, leaf) in writers.iter_mut().zip(&leaves) {
                                w.write(leaf)?;
                            }
                        }
                        writers.into_iter().map(|w| Ok(w.close()?)).collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a column encoder panicked"))
                .collect::<Result<Vec<_>>>()
        })?;
        let mut group = self.file.next_row_group()?;
        for chunk in chunks.into_iter().flatten() {
            chunk.append_to_row_group(&mut group)?;
        }
        group.close()?;
        self.written += 1;
        Ok(())
    }

    fn close(mut self) -> Result<()> {
        if self.pending_rows > 0 {
            self.write_group()?;
        }
        self.file.close()?;
        Ok(())
    }
}

/// Opens a dataset for reading, batch by batch.
pub fn open(dataset: &DatasetRef, batch_rows: usize) -> Result<ParquetRecordBatchReader> {
    open_path(Path::new(&dataset.uri), batch_rows)
        .with_context(|| format!("reading output `{}` of task `{}`", dataset.name, dataset.task))
}

/// Opens a Parquet file for reading, batch by batch.
pub fn open_path(path: &Path, batch_rows: usize) -> Result<ParquetRecordBatchReader> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(ParquetRecordBatchReaderBuilder::try_new(file)?
        .with_batch_size(batch_rows)
        .build()?)
}

/// The rows of a dataset: recorded when it was written, else read from
/// the Parquet footer.
pub fn row_count(dataset: &DatasetRef) -> Result<u64> {
    if let Some(n) = dataset.rows {
        return Ok(n);
    }
    let file = File::open(&dataset.uri).with_context(|| format!("opening {}", dataset.uri))?;
    let rows = ParquetRecordBatchReaderBuilder::try_new(file)?
        .metadata()
        .file_metadata()
        .num_rows();
    Ok(rows.max(0) as u64)
}

/// Reads a whole dataset into memory (for steps that need it all, such as
/// the build side of a join).
pub fn read_all(dataset: &DatasetRef) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    use arrow::record_batch::RecordBatchReader;
    let reader = open(dataset, super::rows::DEFAULT_BATCH_ROWS)?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>()?;
    Ok((schema, batches))
}

/// Reads a whole dataset as one batch, each column decoded on a thread of
/// its own (for steps that need every row at once, such as a normalize
/// split; decoding was a fifth of that step, one column after another).
pub fn read_whole(dataset: &DatasetRef) -> Result<RecordBatch> {
    read_whole_with(dataset, |_, _| Ok(())).map(|(batch, _)| batch)
}

/// [`read_whole`], also running `also` on each column on its reader's
/// thread as soon as it is decoded (a normalize step hashes its key
/// columns there); returns its results in column order.
pub fn read_whole_with<T: Send>(
    dataset: &DatasetRef,
    also: impl Fn(&arrow::datatypes::Field, &arrow::array::ArrayRef) -> Result<T> + Sync,
) -> Result<(RecordBatch, Vec<T>)> {
    use parquet::arrow::ProjectionMask;
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
    let context = || format!("reading output `{}` of task `{}`", dataset.name, dataset.task);
    let open = || File::open(&dataset.uri).with_context(|| format!("opening {}", dataset.uri));
    let meta = ArrowReaderMetadata::load(&open()?, ArrowReaderOptions::new()).with_context(context)?;
    let schema = meta.schema().clone();
    let rows = meta.metadata().file_metadata().num_rows().max(0) as usize;
    let columns = std::thread::scope(|s| {
        let handles: Vec<_> = (0..schema.fields().len())
            .map(|i| {
                let (meta, field, also) = (meta.clone(), schema.field(i), &also);
                s.spawn(move || -> Result<(arrow::array::ArrayRef, T)> {
                    let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(open()?, meta);
                    let mask = ProjectionMask::roots(builder.parquet_schema(), [i]);
                    let batches = builder
                        .with_projection(mask)
                        .with_batch_size(rows.max(1))
                        .build()?
                        .collect::<Result<Vec<_>, _>>()?;
                    let parts: Vec<&dyn arrow::array::Array> = batches.iter().map(|b| b.column(0).as_ref()).collect();
                    let column = match parts.len() {
                        1 => batches[0].column(0).clone(),
                        0 => arrow::array::new_empty_array(field.data_type()),
                        _ => arrow::compute::concat(&parts)?,
                    };
                    let extra = also(field, &column)?;
                    Ok((column, extra))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a column reader panicked"))
            .collect::<Result<Vec<_>>>()
    })
    .with_context(context)?;
    let (columns, extras): (Vec<_>, Vec<_>) = columns.into_iter().unzip();
    let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
    Ok((RecordBatch::try_new_with_options(schema, columns, &options)?, extras))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    /// The schema of these tests: `a` int64, `b` text.
    fn int_and_text() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ]))
    }

    #[test]
    fn round_trip_and_atomic_name() {
        let dir = tempfile::tempdir().unwrap();
        let schema = int_and_text();
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["x", "y"])),
            ],
        )
        .unwrap();
        let mut w = DatasetWriter::create(dir.path(), "t", "default", schema).unwrap();
        w.write(&batch).unwrap();
        assert!(!dir.path().join("default.parquet").exists());
        let d = w.finish().unwrap();
        assert_eq!(d.rows, Some(2));
        let (_, back) = read_all(&d).unwrap();
        assert_eq!(back, vec![batch]);
    }

    #[test]
    fn read_whole_gives_every_row_in_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let schema = int_and_text();
        // Three row groups' worth of rows, written in uneven batches.
        let n = ROW_GROUP_ROWS * 2 + 7;
        let mut w = DatasetWriter::create(dir.path(), "t", "default", schema.clone()).unwrap();
        for chunk in (0..n as i64).collect::<Vec<_>>().chunks(50_000) {
            let b = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(chunk.to_vec())),
                    Arc::new(StringArray::from(
                        chunk.iter().map(|v| Some(format!("r{v}"))).collect::<Vec<_>>(),
                    )),
                ],
            )
            .unwrap();
            w.write(&b).unwrap();
        }
        let d = w.finish().unwrap();
        let whole = read_whole(&d).unwrap();
        assert_eq!(whole.num_rows(), n);
        assert_eq!(whole.schema(), schema);
        let a = whole.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
        let b = whole.column(1).as_any().downcast_ref::<StringArray>().unwrap();
        assert!((0..n).all(|i| a.value(i) == i as i64 && b.value(i) == format!("r{i}")));

        let empty = DatasetWriter::create(dir.path(), "t", "empty", schema.clone())
            .unwrap()
            .finish()
            .unwrap();
        let none = read_whole(&empty).unwrap();
        assert_eq!((none.num_rows(), none.num_columns()), (0, 2));
    }

    #[test]
    fn both_encoders_write_the_same_rows_in_row_groups() {
        let dir = tempfile::tempdir().unwrap();
        let schema = int_and_text();
        let n = ROW_GROUP_ROWS + ROW_GROUP_ROWS / 2 + 3;
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(
                    (0..n as i64).map(|v| (v % 7 != 0).then_some(v)).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    (0..n).map(|v| format!("s{}", v % 1000)).collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap();
        let mut read = Vec::new();
        for (name, parallel) in [("streaming", false), ("parallel", true)] {
            let create = if parallel {
                DatasetWriter::create_parallel
            } else {
                DatasetWriter::create
            };
            let mut w = create(dir.path(), "t", name, schema.clone()).unwrap();
            // Uneven batches: groups are cut across them.
            w.write(&batch.slice(0, 1000)).unwrap();
            w.write(&batch.slice(1000, n - 1000)).unwrap();
            let d = w.finish().unwrap();
            let file = File::open(&d.uri).unwrap();
            let meta = ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .metadata()
                .clone();
            let groups: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
            assert_eq!(groups, [ROW_GROUP_ROWS as i64, (n - ROW_GROUP_ROWS) as i64], "{name}");
            read.push(read_whole(&d).unwrap());
        }
        assert_eq!(read[0], batch);
        assert_eq!(read[1], batch);
    }
}
