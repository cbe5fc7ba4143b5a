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
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::DatasetRef;

/// Rows per Parquet row group: small enough that the writer's buffer stays
/// bounded (it holds one row group in memory), large enough for good
/// compression and fast scans.
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Streams batches into one Parquet artifact.
pub struct DatasetWriter {
    task: String,
    name: String,
    tmp: PathBuf,
    path: PathBuf,
    writer: ArrowWriter<File>,
    rows: u64,
}

impl DatasetWriter {
    /// Creates `<dir>/<name>.parquet` for `task`'s output `name`.
    pub fn create(dir: &Path, task: &str, name: &str, schema: SchemaRef) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{name}.parquet"));
        let tmp = dir.join(format!("{name}.parquet.tmp"));
        let file = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(file, schema, Some(props))?;
        Ok(Self {
            task: task.to_string(),
            name: name.to_string(),
            tmp,
            path,
            writer,
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() > 0 {
            self.writer.write(batch)?;
            self.rows += batch.num_rows() as u64;
        }
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Closes the file and makes it visible under its final name.
    pub fn finish(self) -> Result<DatasetRef> {
        self.writer.close()?;
        std::fs::rename(&self.tmp, &self.path).with_context(|| format!("renaming {}", self.tmp.display()))?;
        Ok(DatasetRef {
            task: self.task,
            name: self.name,
            uri: self.path.to_string_lossy().into_owned(),
            rows: Some(self.rows),
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    #[test]
    fn round_trip_and_atomic_name() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
        ]));
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
}
