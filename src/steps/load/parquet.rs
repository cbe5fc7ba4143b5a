//! `load.parquet`: the input dataset into a Parquet file (zstd).
//!
//! ```toml
//! [[task]]
//! id = "export_orders"
//! kind = "load.parquet"
//! path = "exports/{{ ds }}"
//! file = "orders.parquet"
//! needs = ["orders"]
//! ```
//!
//! The file is written under a temporary name and renamed into place when
//! complete: a re-run overwrites it, and a failed or cancelled load leaves
//! the previous file as it was.

use anyhow::Result;
use arrow::record_batch::RecordBatchReader;
use async_trait::async_trait;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Deserialize;

use super::{AtomicFile, blocking_load, check_file_target, for_each_batch, open_input, target_path};
use crate::steps::{ConfigProblem, Step, StepConfig, StepContext, StepKind, StepOutput};

pub const KIND: StepKind = StepKind::of::<ParquetLoad>(
    "load.parquet",
    "writes the input to a Parquet file (zstd), replacing it atomically",
    EXAMPLE,
);

const EXAMPLE: &str = r#"kind = "load.parquet"
path = "exports/{{ ds }}"
file = "orders.parquet"
"#;

/// Writes the task's input to a Parquet file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParquetLoad {
    /// The folder to write into, relative to the project folder (created
    /// if missing); templates allowed: `exports/{{ ds }}`.
    pub path: String,
    /// The file name inside `path` (default `<task id>.parquet`); templates
    /// allowed: `orders_{{ ds_nodash }}.parquet`. An existing file is
    /// replaced.
    pub file: Option<String>,
}

impl StepConfig for ParquetLoad {
    fn check(&self) -> Vec<ConfigProblem> {
        check_file_target(&self.path, self.file.as_deref())
    }

    fn build(self) -> Result<Box<dyn Step>> {
        Ok(Box::new(self))
    }
}

#[async_trait]
impl Step for ParquetLoad {
    async fn run(&self, cx: &StepContext) -> Result<StepOutput> {
        let cfg = self.clone();
        blocking_load(cx, move |cx| {
            let reader = open_input(&cx)?;
            let path = target_path(&cx, &cfg.path, cfg.file.as_deref(), "parquet");
            let (target, file) = AtomicFile::create(path.clone())?;
            let props = WriterProperties::builder()
                .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
                .build();
            let mut writer = ArrowWriter::try_new(file, reader.schema(), Some(props))?;
            let rows = for_each_batch(&cx, reader, &format!("writing {}", path.display()), |b| {
                Ok(writer.write(b)?)
            })?;
            target.commit(writer.into_inner()?)?;
            Ok(super::file_written(rows, &path))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::data::artifact::open_path;
    use crate::steps::testing::Harness;

    fn batch(ids: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(ids.to_vec())),
                Arc::new(StringArray::from(names)),
            ],
        )
        .unwrap()
    }

    fn read(path: &std::path::Path) -> Vec<RecordBatch> {
        open_path(path, 1024).unwrap().collect::<Result<Vec<_>, _>>().unwrap()
    }

    #[tokio::test]
    async fn writes_the_input_and_overwrites_on_a_rerun() {
        let mut h = Harness::new("export");
        h.input("orders", &[batch(&[1, 2]), batch(&[3])]);
        let out = h.run(&KIND, "path = \"exports/2010-12-01\"").await.unwrap();
        let path = h.path().join("exports/2010-12-01/export.parquet");
        assert_eq!(out.output.metrics.rows_in, 3);
        assert_eq!(out.output.metrics.rows_out, 3);
        assert_eq!(out.output.metrics.extra["path"], path.display().to_string());
        assert_eq!(read(&path), vec![batch(&[1, 2, 3])]);

        h.input("orders", &[batch(&[7])]);
        h.run(&KIND, "path = \"exports/2010-12-01\"").await.unwrap();
        assert_eq!(read(&path), vec![batch(&[7])]);
        let files = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        assert_eq!(files, 1, "no temporary file left behind");
    }

    #[tokio::test]
    async fn file_name_and_zstd() {
        let mut h = Harness::new("export");
        h.input("orders", &[batch(&[1])]);
        h.run(&KIND, "path = \"out\"\nfile = \"orders_20101201.parquet\"")
            .await
            .unwrap();
        let path = h.path().join("out/orders_20101201.parquet");
        let reader = parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        use parquet::file::reader::FileReader;
        let codec = reader.metadata().row_group(0).column(0).compression();
        assert!(matches!(codec, Compression::ZSTD(_)), "{codec:?}");
    }

    #[tokio::test]
    async fn a_cancelled_load_keeps_the_previous_file() {
        let mut h = Harness::new("export");
        h.input("orders", &[batch(&[1])]);
        h.run(&KIND, "path = \"out\"").await.unwrap();
        h.input("orders", &[batch(&[2, 3])]);
        h.cx.cancel.cancel();
        let err = h.run(&KIND, "path = \"out\"").await.err().unwrap();
        assert!(err.to_string().contains("cancelled"), "{err}");
        let dir = h.path().join("out");
        assert_eq!(read(&dir.join("export.parquet")), vec![batch(&[1])]);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[tokio::test]
    async fn empty_input_writes_an_empty_file_with_the_schema() {
        let mut h = Harness::new("export");
        h.input("orders", &[batch(&[])]);
        let out = h.run(&KIND, "path = \"out\"").await.unwrap();
        assert_eq!(out.output.metrics.rows_out, 0);
        let reader = open_path(&h.path().join("out/export.parquet"), 10).unwrap();
        assert_eq!(reader.schema(), batch(&[]).schema());
    }

    #[test]
    fn config_problems() {
        let check = |toml: &str| {
            let v: toml::Value = toml::from_str(toml).unwrap();
            KIND.check(v)
                .map(|ps| ps.into_iter().map(|p| p.path).collect::<Vec<_>>())
        };
        assert_eq!(check("path = \"\"").unwrap(), ["path"]);
        assert_eq!(check("path = \"x\"\nfile = \"../up.parquet\"").unwrap(), ["file"]);
        assert_eq!(check("path = \"x\"\nfile = \"/abs.parquet\"").unwrap(), ["file"]);
        assert!(
            check("path = \"x\"\nfile = \"sub/{{ ds }}.parquet\"")
                .unwrap()
                .is_empty()
        );
        let (key, msg) = check("file = \"a.parquet\"").unwrap_err();
        assert!(msg.contains("missing field `path`"), "{key}: {msg}");
        let (key, _) = check("path = \"x\"\nfiel = \"a\"").unwrap_err();
        assert_eq!(key, "fiel", "unknown keys are rejected");
    }
}
