//! `extract.file`: local files (or globs of them) into a dataset.
//!
//! See [`FilesConfig`] for every setting. A path relative to the project
//! folder; templates allowed:
//!
//! ```toml
//! [[task]]
//! id = "orders"
//! kind = "extract.file"
//! path = "{{ vars.input }}/{{ ds }}.csv"
//! if_missing = "skip"
//! ```

use anyhow::{Result, bail};
use async_trait::async_trait;
use serde::Deserialize;

use super::files::{FilesConfig, IfMissing, Source, read_sources};
use crate::steps::{ConfigProblem, Skipped, Step, StepConfig, StepContext, StepKind, StepOutput};

pub const KIND: StepKind =
    StepKind::of::<FileExtract>("extract.file", "reads local CSV, JSON, XLSX or Parquet files", EXAMPLE);

const EXAMPLE: &str = r#"kind = "extract.file"
path = "data/by-day/{{ ds }}.csv"
format = "csv"
max_bad_rows = "0.1%"
if_missing = "skip"

[columns]
InvoiceNo = "string"
Quantity = "int64"
InvoiceDate = { type = "timestamp", format = "%Y-%m-%d %H:%M:%S" }
UnitPrice = "decimal(10,2)"
"#;

/// `extract.file`'s config: the shared [`FilesConfig`] with `path`.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct FileExtract(pub FilesConfig);

impl StepConfig for FileExtract {
    fn check(&self) -> Vec<ConfigProblem> {
        self.0.check_common("path")
    }

    fn build(self) -> Result<Box<dyn Step>> {
        Ok(Box::new(self))
    }
}

#[async_trait]
impl Step for FileExtract {
    async fn run(&self, cx: &StepContext) -> Result<StepOutput> {
        let cfg = self.0.clone();
        cx.blocking(move |cx| {
            let pattern = cfg.path.clone().unwrap_or_default();
            let files = matching_files(&cx, &pattern)?;
            if files.is_empty() {
                match cfg.if_missing {
                    IfMissing::Fail => {
                        bail!("no file matches `{pattern}` (set `if_missing = \"skip\"` if that can happen)")
                    }
                    IfMissing::Skip => return Err(Skipped(format!("no file matches `{pattern}`")).into()),
                    IfMissing::Empty => {}
                }
            }
            let sources = files
                .into_iter()
                .map(|p| Source {
                    name: p.display().to_string(),
                    open: Box::new(move || -> Result<Box<dyn std::io::Read + Send>> {
                        Ok(Box::new(std::fs::File::open(&p)?))
                    }),
                })
                .collect();
            read_sources(&cfg, sources, &cx)
        })
        .await
    }
}

/// The files a path or glob names, in name order.
fn matching_files(cx: &StepContext, pattern: &str) -> Result<Vec<std::path::PathBuf>> {
    let full = cx.resolve(pattern);
    let text = full.to_string_lossy();
    if !text.contains(['*', '?', '[']) {
        return Ok(if full.is_file() { vec![full] } else { Vec::new() });
    }
    let mut files: Vec<_> = glob::glob(&text)
        .map_err(|e| anyhow::anyhow!("bad glob `{pattern}`: {e}"))?
        .filter_map(|p| p.ok())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::testing::Harness;
    use arrow::array::AsArray;
    use arrow::datatypes::{Decimal128Type, Int64Type};

    const ORDERS: &str = "InvoiceNo,StockCode,Quantity,InvoiceDate,UnitPrice,CustomerID\n\
536365,85123A,6,2010-12-01 08:26:00,2.55,17850.0\n\
536366,22633,oops,2010-12-01 08:28:00,1.85,17850.0\n\
C536379,D,-1,2010-12-01 09:41:00,27.50,14527.0\n\
536367,84879,32,2010-12-01 08:34:00,1.69,\n";

    const TYPED: &str = r#"
path = "in/orders.csv"
max_bad_rows = 1
[columns]
InvoiceNo = "string"
Quantity = "int64"
InvoiceDate = { type = "timestamp", format = "%Y-%m-%d %H:%M:%S" }
UnitPrice = "decimal(10,2)"
"#;

    #[tokio::test]
    async fn typed_csv_with_a_bad_row_quarantined() {
        let h = Harness::new("orders");
        h.file("in/orders.csv", ORDERS);
        let out = h.run(&KIND, TYPED).await.unwrap();
        assert_eq!(out.output.metrics.rows_in, 4);
        assert_eq!(out.rows("default"), 3);
        let q = &out.quarantine[0];
        assert_eq!(q["line"], 3);
        assert_eq!(q["column"], "Quantity");
        assert!(q["reason"].as_str().unwrap().contains("oops"));
        let b = &out.datasets["default"][0];
        assert_eq!(
            b.column_by_name("Quantity")
                .unwrap()
                .as_primitive::<Int64Type>()
                .value(1),
            -1
        );
        assert_eq!(
            b.column_by_name("UnitPrice")
                .unwrap()
                .as_primitive::<Decimal128Type>()
                .value(0),
            255
        );
        // Undeclared CustomerID is inferred: whole floats read as integers.
        assert_eq!(
            b.column_by_name("CustomerID")
                .unwrap()
                .as_primitive::<Int64Type>()
                .value(0),
            17850
        );
    }

    #[tokio::test]
    async fn too_many_bad_rows_fail_the_task_after_reading_everything() {
        let h = Harness::new("orders");
        h.file("in/orders.csv", ORDERS);
        let err = h
            .run(&KIND, &TYPED.replace("max_bad_rows = 1", "max_bad_rows = 0"))
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("1 of 4 rows were rejected"), "{err}");
        assert!(h.cx.artifact_dir().join("quarantine.ndjson").exists());
    }

    #[tokio::test]
    async fn globs_and_gzip_in_name_order() {
        use std::io::Write;
        let h = Harness::new("orders");
        h.file("in/2010-12-02.csv", "a,b\n3,z\n");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"a,b\n1,x\n2,y\n").unwrap();
        h.file("in/2010-12-01.csv.gz", gz.finish().unwrap());
        let out = h
            .run(&KIND, "path = \"in/*.csv*\"\nsource_column = \"file\"\n")
            .await
            .unwrap();
        let b = &out.datasets["default"];
        let a: Vec<i64> = b
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(a, [1, 2, 3]);
        assert_eq!(out.output.metrics.extra["files"], 2);
        assert!(
            b[0].column_by_name("file")
                .unwrap()
                .as_string::<i32>()
                .value(0)
                .ends_with("2010-12-01.csv.gz")
        );
    }

    #[tokio::test]
    async fn missing_files_fail_skip_or_give_an_empty_dataset() {
        let h = Harness::new("orders");
        let err = h.run(&KIND, "path = \"in/{{ ds }}.csv\"").await.err().unwrap();
        assert!(err.to_string().contains("no file matches"), "{err}");
        let err = h
            .run(&KIND, "path = \"in/x.csv\"\nif_missing = \"skip\"")
            .await
            .err()
            .unwrap();
        assert!(err.downcast_ref::<Skipped>().is_some());
        let out = h
            .run(
                &KIND,
                "path = \"in/x.csv\"\nif_missing = \"empty\"\n[columns]\na = \"int64\"\n",
            )
            .await
            .unwrap();
        assert_eq!(out.rows("default"), 0);
    }

    #[tokio::test]
    async fn ragged_rows_and_bad_encoding_are_quarantined() {
        let h = Harness::new("orders");
        h.file("in/x.csv", b"a,b\n1,2\n3\n4,\xff\n5,6\n".as_slice());
        let out = h
            .run(&KIND, "path = \"in/x.csv\"\nmax_bad_rows = \"50%\"\n")
            .await
            .unwrap();
        assert_eq!(out.rows("default"), 2);
        let reasons: Vec<&str> = out.quarantine.iter().map(|q| q["reason"].as_str().unwrap()).collect();
        assert!(reasons[0].contains("1 fields"), "{reasons:?}");
        assert!(reasons[1].contains("UTF-8"), "{reasons:?}");
    }

    #[tokio::test]
    async fn tsv_without_header_names_columns_from_the_declaration() {
        let h = Harness::new("t");
        h.file("in/x.tsv", "1\tx\n2\ty\n");
        let out = h
            .run(
                &KIND,
                "path = \"in/x.tsv\"\ncsv = { header = false }\n[columns]\nid = \"int64\"\n",
            )
            .await
            .unwrap();
        let b = &out.datasets["default"][0];
        assert_eq!(b.schema().field(0).name(), "id");
        assert_eq!(b.num_rows(), 2);
    }
}
