//! `load.csv`: the input dataset into a CSV file (optionally gzipped).
//!
//! ```toml
//! [[task]]
//! id = "export_orders"
//! kind = "load.csv"
//! path = "exports"
//! file = "orders_{{ ds }}.csv.gz"
//! needs = ["orders"]
//! ```
//!
//! Values are written as text: dates `YYYY-MM-DD`, timestamps `YYYY-MM-DD
//! HH:MM:SS[.ffffff]` (in UTC followed by `Z` when the column has a time
//! zone), decimals with their exact digits, booleans `true`/`false`,
//! missing values as empty fields. The file is written under a temporary
//! name and renamed into place when complete: a re-run overwrites it, and
//! a failed or cancelled load leaves the previous file as it was.

use std::fs::File;
use std::io::{BufWriter, Write};

use anyhow::{Context, Result};
use arrow::array::Array;
use arrow::record_batch::RecordBatchReader;
use async_trait::async_trait;
use flate2::write::GzEncoder;
use serde::Deserialize;

use super::{AtomicFile, blocking_load, check_file_target, for_each_batch, open_input, target_path, text_column};
use crate::steps::{ConfigProblem, Step, StepConfig, StepContext, StepKind, StepOutput};

pub const KIND: StepKind = StepKind::of::<CsvLoad>(
    "load.csv",
    "writes the input to a CSV file (optionally gzipped), replacing it atomically",
    EXAMPLE,
);

const EXAMPLE: &str = r#"kind = "load.csv"
path = "exports"
file = "orders_{{ ds }}.csv.gz"
delimiter = ","
header = true
"#;

/// Writes the task's input to a CSV file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvLoad {
    /// The folder to write into, relative to the project folder (created
    /// if missing); templates allowed: `exports/{{ ds }}`.
    pub path: String,
    /// The file name inside `path` (default `<task id>.csv`, or
    /// `<task id>.csv.gz` with `gzip = true`); templates allowed:
    /// `orders_{{ ds_nodash }}.csv`. An existing file is replaced.
    pub file: Option<String>,
    /// The field separator, one ASCII character (default `","`; `"\t"`
    /// for TSV).
    #[serde(default = "comma")]
    pub delimiter: String,
    /// Write the column names as the first line (default true).
    #[serde(default = "yes")]
    pub header: bool,
    /// Gzip the file (default: when `file` ends in `.gz`).
    pub gzip: Option<bool>,
}

fn comma() -> String {
    ",".into()
}

fn yes() -> bool {
    true
}

impl StepConfig for CsvLoad {
    fn check(&self) -> Vec<ConfigProblem> {
        let mut p = check_file_target(&self.path, self.file.as_deref());
        if !(self.delimiter.len() == 1 && self.delimiter.is_ascii()) {
            p.push(
                ConfigProblem::new("delimiter", format!("`{}` is not one ASCII character", self.delimiter))
                    .hint("e.g. `delimiter = \",\"`, `\";\"` or `\"\\t\"`"),
            );
        }
        p
    }

    fn build(self) -> Result<Box<dyn Step>> {
        Ok(Box::new(self))
    }
}

#[async_trait]
impl Step for CsvLoad {
    async fn run(&self, cx: &StepContext) -> Result<StepOutput> {
        let cfg = self.clone();
        blocking_load(cx, move |cx| cfg.write(&cx)).await
    }
}

impl CsvLoad {
    fn write(&self, cx: &StepContext) -> Result<StepOutput> {
        let gzip = self
            .gzip
            .unwrap_or_else(|| self.file.as_deref().is_some_and(|f| f.ends_with(".gz")));
        let ext = if gzip { "csv.gz" } else { "csv" };
        let path = target_path(cx, &self.path, self.file.as_deref(), ext);
        let reader = open_input(cx)?;
        let schema = reader.schema();
        let (target, file) = AtomicFile::create(path.clone())?;
        let sink = if gzip {
            Sink::Gzip(Box::new(GzEncoder::new(
                BufWriter::new(file),
                flate2::Compression::default(),
            )))
        } else {
            Sink::Plain(BufWriter::new(file))
        };
        let mut out = csv::WriterBuilder::new()
            .delimiter(self.delimiter.as_bytes()[0])
            .from_writer(sink);
        if self.header {
            out.write_record(schema.fields().iter().map(|f| f.name()))?;
        }
        let rows = for_each_batch(cx, reader, &format!("writing {}", path.display()), |batch| {
            let columns = batch
                .columns()
                .iter()
                .map(|c| text_column(c, true))
                .collect::<Result<Vec<_>>>()?;
            for row in 0..batch.num_rows() {
                out.write_record(columns.iter().map(|c| if c.is_null(row) { "" } else { c.value(row) }))?;
            }
            Ok(())
        })?;
        let sink = out
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("writing {}", path.display()))?;
        target.commit(sink.finish()?)?;
        Ok(super::file_written(rows, &path))
    }
}

/// The file, buffered, gzipped or not.
enum Sink {
    Plain(BufWriter<File>),
    Gzip(Box<GzEncoder<BufWriter<File>>>),
}

impl Sink {
    /// Flushes everything (and the gzip trailer) and returns the file.
    fn finish(self) -> Result<File> {
        let buffered = match self {
            Sink::Plain(w) => w,
            Sink::Gzip(gz) => gz.finish()?,
        };
        Ok(buffered.into_inner().map_err(|e| e.into_error())?)
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(w) => w.write(buf),
            Sink::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
        TimestampMicrosecondArray,
    };

    use super::*;
    use crate::steps::testing::Harness;

    fn typed() -> RecordBatch {
        let cols: Vec<(&str, ArrayRef)> = vec![
            ("id", Arc::new(Int64Array::from(vec![Some(1), None]))),
            ("price", Arc::new(Float64Array::from(vec![Some(2.5), Some(-0.125)]))),
            ("name", Arc::new(StringArray::from(vec![Some("a, \"quoted\""), None]))),
            ("ok", Arc::new(BooleanArray::from(vec![Some(true), Some(false)]))),
            ("day", Arc::new(Date32Array::from(vec![Some(14944), None]))),
            (
                "at",
                Arc::new(TimestampMicrosecondArray::from(vec![
                    Some(1_291_191_960_000_000),
                    Some(1_291_191_960_500_000),
                ])),
            ),
            (
                "at_utc",
                Arc::new(TimestampMicrosecondArray::from(vec![Some(1_291_191_960_000_000), None]).with_timezone("UTC")),
            ),
            (
                "amount",
                Arc::new(
                    Decimal128Array::from(vec![Some(255), Some(-1000)])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
            ),
        ];
        RecordBatch::try_from_iter(cols).unwrap()
    }

    #[tokio::test]
    async fn values_are_written_as_iso_and_exact_text() {
        let mut h = Harness::new("export");
        h.input("orders", &[typed()]);
        let out = h.run(&KIND, "path = \"exports\"").await.unwrap();
        assert_eq!(out.output.metrics.rows_out, 2);
        let path = h.path().join("exports/export.csv");
        assert_eq!(out.output.metrics.extra["path"], path.display().to_string());
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "id,price,name,ok,day,at,at_utc,amount\n\
             1,2.5,\"a, \"\"quoted\"\"\",true,2010-12-01,2010-12-01 08:26:00,2010-12-01 08:26:00Z,2.55\n\
             ,-0.125,,false,,2010-12-01 08:26:00.500000,,-10.00\n"
        );
    }

    #[tokio::test]
    async fn what_is_written_reads_back_with_extract_file() {
        let mut h = Harness::new("export");
        h.input("orders", &[typed()]);
        h.run(&KIND, "path = \"exports\"").await.unwrap();
        let back = h
            .run(
                &crate::steps::extract::file::KIND,
                "path = \"exports/export.csv\"\n[columns]\nat_utc = { type = \"timestamp\", timezone = \"UTC\" }\namount = \"decimal(10,2)\"\n",
            )
            .await
            .unwrap();
        let b = &back.datasets["default"][0];
        let original = typed();
        for name in ["id", "price", "name", "day", "at_utc", "amount"] {
            assert_eq!(
                b.column_by_name(name).unwrap().as_ref(),
                original.column_by_name(name).unwrap().as_ref(),
                "column {name}"
            );
        }
    }

    #[tokio::test]
    async fn delimiter_header_and_gzip() {
        let mut h = Harness::new("export");
        let batch = RecordBatch::try_from_iter([
            ("a", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
            ("b", Arc::new(StringArray::from(vec!["x", "y;z"]))),
        ])
        .unwrap();
        h.input("orders", &[batch]);
        h.run(&KIND, "path = \"out\"\ndelimiter = \"\\t\"\nheader = false")
            .await
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(h.path().join("out/export.csv")).unwrap(),
            "1\tx\n2\ty;z\n"
        );
        let gunzip = |p: &str| {
            let mut s = String::new();
            flate2::read::GzDecoder::new(File::open(h.path().join(p)).unwrap())
                .read_to_string(&mut s)
                .unwrap();
            s
        };
        h.run(&KIND, "path = \"out\"\nfile = \"2010-12-01.csv.gz\"\ndelimiter = \";\"")
            .await
            .unwrap();
        assert_eq!(gunzip("out/2010-12-01.csv.gz"), "a;b\n1;x\n2;\"y;z\"\n");
        h.run(&KIND, "path = \"out\"\ngzip = true").await.unwrap();
        assert_eq!(gunzip("out/export.csv.gz"), "a,b\n1,x\n2,y;z\n");
    }

    #[tokio::test]
    async fn a_failed_load_keeps_the_previous_file() {
        let mut h = Harness::new("export");
        h.input("orders", &[typed()]);
        h.run(&KIND, "path = \"out\"").await.unwrap();
        let before = std::fs::read_to_string(h.path().join("out/export.csv")).unwrap();
        h.cx.cancel.cancel();
        let err = h.run(&KIND, "path = \"out\"\nheader = false").await.err().unwrap();
        assert!(err.to_string().contains("cancelled"), "{err}");
        assert_eq!(
            std::fs::read_to_string(h.path().join("out/export.csv")).unwrap(),
            before
        );
        assert_eq!(std::fs::read_dir(h.path().join("out")).unwrap().count(), 1);
    }

    #[test]
    fn config_problems() {
        let check = |toml: &str| {
            let v: toml::Value = toml::from_str(toml).unwrap();
            KIND.check(v).unwrap().into_iter().map(|p| p.path).collect::<Vec<_>>()
        };
        assert_eq!(check("path = \"x\"\ndelimiter = \";;\""), ["delimiter"]);
        assert_eq!(check("path = \"x\"\ndelimiter = \"\""), ["delimiter"]);
        assert_eq!(check("path = \"x\"\ndelimiter = \"é\""), ["delimiter"]);
        assert_eq!(check("path = \"\"\nfile = \"../x.csv\""), ["path", "file"]);
        assert!(check("path = \"x\"\ndelimiter = \"|\"\ngzip = true").is_empty());
    }
}
