//! `extract.file`: local files (or globs of them) into a dataset.
//!
//! See [`FilesConfig`] for every setting. A path relative to the project
//! folder, or an S3 URI (`s3://bucket/prefix/{{ ds }}.csv`, a prefix ending
//! in `/`, or a glob), read exactly as `extract.s3` reads it (through the
//! env's connection named `s3`, if any). So one job reads a local folder
//! or an S3 prefix, whichever its `path` (usually `{{ vars.input }}/...`)
//! names in the run's env. Templates allowed:
//!
//! ```toml
//! [[task]]
//! id = "orders"
//! kind = "extract.file"
//! path = "{{ vars.input }}/{{ ds }}.csv"
//! if_missing = "skip"
//! ```

use anyhow::{Context, Result, bail};
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
        let mut cfg = self.0.clone();
        let on_s3 = |v: &Option<String>| v.as_deref().is_some_and(|p| p.starts_with("s3://"));
        if let Some(a) = &cfg.archive
            && on_s3(&cfg.path) != on_s3(&cfg.archive)
        {
            bail!(
                "`archive = \"{a}\"` and `path` are not on the same side (S3 and local): archive S3 input under an s3:// prefix, local input under a folder"
            );
        }
        if on_s3(&cfg.path) {
            cfg.uri = cfg.path.take();
            return super::s3::S3Extract(cfg).run(cx).await;
        }
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
            if let Some(archive) = &cfg.archive {
                archive_files(&cx, &files, archive)?;
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

/// Copies each file, as received, into the `archive` folder: the folder
/// (and any it creates) owner-only, each copy owner-read/write only.
fn archive_files(cx: &StepContext, files: &[std::path::PathBuf], archive: &str) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = cx.resolve(archive);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating the archive folder {}", dir.display()))?;
    for f in files {
        let dest = dir.join(f.file_name().unwrap_or_default());
        // Written under a temporary name and renamed: an interrupted copy
        // never looks archived.
        let part = dest.with_extension("part");
        std::fs::copy(f, &part).with_context(|| format!("archiving {} into {}", f.display(), dir.display()))?;
        std::fs::set_permissions(&part, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&part, &dest)?;
        cx.log.note(&format!("archived {} to {}", f.display(), dest.display()));
    }
    Ok(())
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
    async fn archive_copies_each_file_as_received_owner_only_even_when_it_fails_to_parse() {
        use std::os::unix::fs::PermissionsExt;
        let h = Harness::new("orders");
        h.file("in/orders.csv", ORDERS);
        let config = TYPED.replace("max_bad_rows = 1", "max_bad_rows = 0\narchive = \"raw/2010-12-01/\"");
        assert!(h.run(&KIND, &config).await.is_err(), "one bad row, none allowed");
        let copy = h.path().join("raw/2010-12-01/orders.csv");
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), ORDERS);
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&copy), 0o600);
        assert_eq!(mode(&h.path().join("raw/2010-12-01")), 0o700);
        assert_eq!(mode(&h.path().join("raw")), 0o700);

        let wrong_side = TYPED.replace("max_bad_rows = 1", "max_bad_rows = 1\narchive = \"s3://raw/in/\"");
        let Err(err) = h.run(&KIND, &wrong_side).await else {
            panic!("a local path archived to S3 must be refused");
        };
        assert!(err.to_string().contains("not on the same side"), "{err}");
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

    /// Files after the first are read side by side: rows and quarantined
    /// rows still come out in file order, with their own files and lines,
    /// and the counts add up.
    #[tokio::test]
    async fn many_files_read_side_by_side_keep_file_order() {
        let h = Harness::new("orders");
        let mut want = Vec::new();
        let mut bad = Vec::new();
        for f in 0..40 {
            let mut text = String::from("n,q\n");
            for r in 0..(f * 37 % 200 + 1) {
                let n = f * 1000 + r;
                if n % 13 == 5 {
                    text.push_str(&format!("{n},oops\n"));
                    bad.push((format!("in/{f:03}.csv"), r + 2));
                } else if n % 29 == 3 {
                    text.push_str(&format!("{n}\n"));
                    bad.push((format!("in/{f:03}.csv"), r + 2));
                } else {
                    text.push_str(&format!("{n},{r}\n"));
                    want.push(n as i64);
                }
            }
            h.file(&format!("in/{f:03}.csv"), text);
        }
        let out = h
            .run(
                &KIND,
                "path = \"in/*.csv\"\nmax_bad_rows = \"50%\"\n[columns]\nn = \"int64\"\nq = \"int64\"\n",
            )
            .await
            .unwrap();
        let got = out.int64s("default", 0);
        assert_eq!(got, want);
        let quarantined: Vec<(String, u64)> = out
            .quarantine
            .iter()
            .map(|q| {
                let file = q["source"].as_str().unwrap();
                (
                    file[file.find("in/").unwrap()..].to_string(),
                    q["line"].as_u64().unwrap(),
                )
            })
            .collect();
        let bad: Vec<(String, u64)> = bad.into_iter().map(|(f, l)| (f, l as u64)).collect();
        assert_eq!(quarantined, bad);
        let m = &out.output.metrics;
        assert_eq!(m.rows_in, (want.len() + bad.len()) as u64);
        assert_eq!(m.rows_quarantined, bad.len() as u64);
        assert_eq!(m.extra["files"], 40);
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
        assert_eq!(out.int64s("default", 0), [1, 2, 3]);
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

    #[tokio::test]
    async fn csv_without_header_names_columns_in_the_order_declared_not_by_name() {
        // Declared out of alphabetical order: the names follow the job's
        // order (the file's columns), and each type lands on its column.
        let h = Harness::new("t");
        h.file(
            "in/x.csv",
            "2021-02-23 08:01:56,Leeds,4.9\n2021-02-23 09:00:00,York,12.5\n",
        );
        let out = h
            .run(
                &KIND,
                "path = \"in/x.csv\"\ncsv = { header = false }\n[columns]\n\
                 timestamp = { type = \"timestamp\", format = \"%Y-%m-%d %H:%M:%S\" }\n\
                 branch = \"string\"\ntotal = \"decimal(10,2)\"\n",
            )
            .await
            .unwrap();
        let b = &out.datasets["default"][0];
        let names: Vec<&str> = b.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["timestamp", "branch", "total"]);
        assert!(matches!(
            b.column(0).data_type(),
            arrow::datatypes::DataType::Timestamp(..)
        ));
        assert_eq!(b.column(1).as_string::<i32>().value(1), "York");
        assert_eq!(b.column(2).data_type(), &arrow::datatypes::DataType::Decimal128(10, 2));
    }
}

#[cfg(test)]
mod format_tests {
    //! JSON, NDJSON, spreadsheets and Parquet through `extract.file`.

    use std::io::Write;
    use std::sync::Arc;

    use super::*;
    use crate::steps::testing::Harness;
    use arrow::array::{Array, ArrayRef, AsArray, Float64Array, Int32Array, RecordBatch, StringArray};
    use arrow::datatypes::{
        DataType, Date32Type, Decimal128Type, Field, Float64Type, Int64Type, Schema, TimeUnit, TimestampMicrosecondType,
    };
    use serde_json::json;

    const XLSX: &[u8] = include_bytes!("../../../tests/fixtures/formats/orders.xlsx");
    const ODS: &[u8] = include_bytes!("../../../tests/fixtures/formats/orders.ods");

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn col<'a>(out: &'a crate::steps::testing::Outcome, name: &str) -> &'a ArrayRef {
        out.datasets["default"][0].column_by_name(name).unwrap()
    }

    fn strings(a: &ArrayRef) -> Vec<Option<&str>> {
        a.as_string::<i32>().iter().collect()
    }

    fn date_text(days: i32) -> String {
        (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(days.into())).to_string()
    }

    fn ts_text(us: i64) -> String {
        chrono::DateTime::from_timestamp_micros(us)
            .unwrap()
            .naive_utc()
            .to_string()
    }

    #[tokio::test]
    async fn json_array_nested_objects_flatten_to_dotted_columns() {
        let h = Harness::new("orders");
        let doc = json!([
            {"id": 1, "price": 2.55, "paid": true, "customer": {"name": "Ann", "address": {"city": "Leeds"}},
             "lines": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}]},
            {"id": 9007199254740993_i64, "price": 0.1, "paid": false, "customer": {"name": "Bo", "address": {"city": null}},
             "lines": []},
            {"id": 3, "price": 17850.0, "customer": {"address": {"city": "York"}}, "note": "late key is fine in a document"}
        ]);
        h.file("in/orders.json", serde_json::to_vec(&doc).unwrap());
        let out = h
            .run(
                &KIND,
                "path = \"in/orders.json\"\n[columns]\nprice = \"decimal(10,2)\"\n",
            )
            .await
            .unwrap();
        assert_eq!(out.rows("default"), 3);
        let b = &out.datasets["default"][0];
        let names: Vec<String> = b.schema().fields().iter().map(|f| f.name().clone()).collect();
        for n in [
            "id",
            "price",
            "paid",
            "customer.name",
            "customer.address.city",
            "lines",
            "note",
        ] {
            assert!(names.iter().any(|x| x == n), "{names:?}");
        }
        let ids = col(&out, "id").as_primitive::<Int64Type>();
        assert_eq!(ids.value(1), 9007199254740993, "integers stay exact");
        let prices = col(&out, "price").as_primitive::<Decimal128Type>();
        assert_eq!((prices.value(0), prices.value(1), prices.value(2)), (255, 10, 1785000));
        assert_eq!(
            strings(col(&out, "customer.address.city")),
            [Some("Leeds"), None, Some("York")]
        );
        assert_eq!(
            strings(col(&out, "lines"))[0],
            Some(r#"[{"qty":2,"sku":"A"},{"qty":1,"sku":"B"}]"#)
        );
        assert_eq!(strings(col(&out, "lines"))[1], Some("[]"));
        let paid = col(&out, "paid").as_boolean();
        assert!(paid.value(0) && !paid.value(1) && paid.is_null(2));
    }

    #[tokio::test]
    async fn json_gz_with_a_records_path() {
        let h = Harness::new("api");
        let doc = json!({"meta": {"page": 1}, "data": {"items": [{"a": 1, "b": "x"}, {"a": 2.5, "b": "y"}]}});
        h.file("in/page.json.gz", gz(&serde_json::to_vec(&doc).unwrap()));
        let out = h
            .run(&KIND, "path = \"in/page.json.gz\"\nrecords = \"$.data.items\"\n")
            .await
            .unwrap();
        assert_eq!(out.rows("default"), 2);
        let a = col(&out, "a").as_primitive::<Float64Type>();
        assert_eq!((a.value(0), a.value(1)), (1.0, 2.5));
        let err = h
            .run(&KIND, "path = \"in/page.json.gz\"\nrecords = \"$.data.rows\"\n")
            .await
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains("`$.data` has no key `rows` (it has: items)"),
            "{err:#}"
        );
    }

    #[tokio::test]
    async fn ndjson_bad_lines_are_quarantined_with_line_numbers() {
        let h = Harness::new("events");
        let mut text = String::new();
        for (i, v) in [json!({"id": 1, "user": {"id": 7}}), json!({"id": 2, "user": {"id": 8}})]
            .iter()
            .enumerate()
        {
            text += &serde_json::to_string(v).unwrap();
            text += "\n";
            if i == 0 {
                text += "{\"id\": 3, \"user\": \n\n";
            }
        }
        text += "[1, 2]\n{\"id\": \"four\"}\n";
        h.file("in/events.ndjson", &text);
        let out = h
            .run(
                &KIND,
                "path = \"in/events.ndjson\"\nmax_bad_rows = 3\n[columns]\nid = \"int64\"\n",
            )
            .await
            .unwrap();
        assert_eq!(out.output.metrics.rows_in, 5);
        assert_eq!(out.rows("default"), 2);
        let q: Vec<(u64, &str)> = out
            .quarantine
            .iter()
            .map(|q| (q["line"].as_u64().unwrap(), q["reason"].as_str().unwrap()))
            .collect();
        assert_eq!(q.iter().map(|q| q.0).collect::<Vec<_>>(), [2, 5, 6], "{q:?}");
        assert!(q[0].1.contains("not valid JSON"), "{q:?}");
        assert!(q[1].1.contains("an array, not a JSON object"), "{q:?}");
        assert!(q[2].1.contains("`four`"), "{q:?}");
        assert_eq!(
            col(&out, "user.id").as_primitive::<Int64Type>().values().to_vec(),
            [7, 8]
        );
    }

    #[tokio::test]
    async fn ndjson_gz_streams_and_late_keys_are_quarantined() {
        let h = Harness::new("events");
        let mut text = String::new();
        for i in 0..10_001 {
            text += &serde_json::to_string(&json!({"id": i})).unwrap();
            text += "\n";
        }
        text += "{\"id\": 10001, \"surprise\": \"x\"}\n";
        h.file("in/events.jsonl.gz", gz(text.as_bytes()));
        let out = h
            .run(&KIND, "path = \"in/events.jsonl.gz\"\nmax_bad_rows = 1\n")
            .await
            .unwrap();
        assert_eq!(out.output.metrics.rows_in, 10_002);
        assert_eq!(out.rows("default"), 10_001);
        let q = &out.quarantine[0];
        assert_eq!(q["line"], 10_002);
        assert!(
            q["reason"].as_str().unwrap().contains("`surprise` (kept as column_2)"),
            "{q}"
        );
        assert_eq!(q["row"]["column_2"], "x");
        // Reading further ahead takes the key as a column.
        let h = Harness::new("events");
        h.file("in/events.jsonl.gz", gz(text.as_bytes()));
        let out = h
            .run(&KIND, "path = \"in/events.jsonl.gz\"\ninfer_rows = 20000\n")
            .await
            .unwrap();
        assert_eq!(out.rows("default"), 10_002);
        assert!(out.datasets["default"][0].column_by_name("surprise").is_some());
    }

    #[tokio::test]
    async fn xlsx_cells_dates_and_error_rows() {
        let h = Harness::new("orders");
        h.file("in/orders.xlsx", XLSX);
        let out = h
            .run(&KIND, "path = \"in/orders.xlsx\"\nmax_bad_rows = 1\n")
            .await
            .unwrap();
        assert_eq!(out.output.metrics.rows_in, 4, "the blank row 5 is skipped");
        assert_eq!(out.rows("default"), 3);
        let q = &out.quarantine[0];
        assert_eq!(q["line"], 4);
        assert!(
            q["reason"]
                .as_str()
                .unwrap()
                .contains("B4 (column `Quantity`) holds the error #DIV/0!"),
            "{q}"
        );
        assert_eq!(q["row"]["Quantity"], "#DIV/0!");
        assert_eq!(
            strings(col(&out, "InvoiceNo")),
            [Some("536365"), Some("536366"), Some("C536379")]
        );
        let qty = col(&out, "Quantity").as_primitive::<Int64Type>();
        assert_eq!(qty.values().to_vec(), [6, 32, -1]);
        let price = col(&out, "UnitPrice").as_primitive::<Float64Type>();
        assert_eq!(price.values().to_vec(), [2.55, 1.69, 27.5]);
        assert_eq!(
            col(&out, "InvoiceDate").data_type(),
            &DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        let ts = col(&out, "InvoiceDate").as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts_text(ts.value(0)), "2010-12-01 08:26:00");
        assert_eq!(ts_text(ts.value(1)), "2010-12-01 09:01:30");
        assert_eq!(ts_text(ts.value(2)), "2010-12-02 00:00:00");
        let ship = col(&out, "ShipDate").as_primitive::<Date32Type>();
        assert_eq!(date_text(ship.value(0)), "2010-12-03");
        assert!(ship.is_null(2));
        let paid = col(&out, "Paid").as_boolean();
        assert!(paid.value(0) && !paid.value(1));
        assert_eq!(strings(col(&out, "Note")), [Some("first"), None, None]);
        let cust = col(&out, "CustomerID").as_primitive::<Int64Type>();
        assert_eq!((cust.value(0), cust.value(1)), (17850, 13047));
        assert!(cust.is_null(2));
    }

    #[tokio::test]
    async fn xlsx_sheets_by_name_or_index_and_headerless() {
        let h = Harness::new("returns");
        h.file("in/orders.xlsx", XLSX);
        for sheet in ["\"Returns\"", "1"] {
            let out = h
                .run(&KIND, &format!("path = \"in/orders.xlsx\"\nsheet = {sheet}\n"))
                .await
                .unwrap();
            assert_eq!(strings(col(&out, "Reason")), [Some("damaged"), Some("late")]);
        }
        let out = h
            .run(
                &KIND,
                "path = \"in/orders.xlsx\"\nsheet = \"Returns\"\ncsv = { header = false }\n",
            )
            .await
            .unwrap();
        assert_eq!(
            strings(col(&out, "column_2")),
            [Some("Reason"), Some("damaged"), Some("late")]
        );
        let err = h
            .run(&KIND, "path = \"in/orders.xlsx\"\nsheet = \"Refunds\"\n")
            .await
            .err()
            .unwrap();
        assert!(
            format!("{err:#}").contains("no sheet named `Refunds` (it has 0: `Orders`, 1: `Returns`)"),
            "{err:#}"
        );
        // An XLSX workbook named `.xls` is still read.
        h.file("in/legacy.xls", XLSX);
        let out = h
            .run(&KIND, "path = \"in/legacy.xls\"\nsheet = \"Returns\"\n")
            .await
            .unwrap();
        assert_eq!(out.rows("default"), 2);
        let err = h
            .run(&KIND, "path = \"in/orders.xlsx\"\nsheet = 2\n")
            .await
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("out of range"), "{err:#}");
    }

    #[tokio::test]
    async fn ods_sheets() {
        let h = Harness::new("orders");
        h.file("in/orders.ods", ODS);
        let out = h.run(&KIND, "path = \"in/orders.ods\"\n").await.unwrap();
        assert_eq!(out.rows("default"), 2);
        assert_eq!(
            col(&out, "Quantity").as_primitive::<Int64Type>().values().to_vec(),
            [6, 32]
        );
        let ts = col(&out, "InvoiceDate").as_primitive::<TimestampMicrosecondType>();
        assert_eq!(ts_text(ts.value(1)), "2010-12-01 09:01:30");
        assert!(col(&out, "Paid").as_boolean().value(0));
        assert_eq!(strings(col(&out, "Note")), [Some("first"), None]);
        let out = h
            .run(&KIND, "path = \"in/orders.ods\"\nsheet = \"Returns\"\n")
            .await
            .unwrap();
        assert_eq!(out.rows("default"), 1);
    }

    fn parquet_file(h: &Harness, rel: &str, batch: &RecordBatch, compress: bool) {
        let mut buf = Vec::new();
        let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
        w.write(batch).unwrap();
        w.close().unwrap();
        h.file(rel, if compress { gz(&buf) } else { buf });
    }

    fn orders_batch(ids: Vec<i32>, qty: Vec<Option<&str>>, price: Vec<f64>) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("qty", DataType::Utf8, true),
            Field::new("price", DataType::Float64, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(ids)),
                Arc::new(StringArray::from(qty)),
                Arc::new(Float64Array::from(price)),
            ],
        )
        .unwrap()
    }

    #[tokio::test]
    async fn parquet_declared_casts_quarantine_failing_rows() {
        let h = Harness::new("orders");
        let b = orders_batch(
            vec![1, 2, 3, 4],
            vec![Some("6"), Some("six"), None, Some("17850.0")],
            vec![2.55, 1.5, 3.0, 123456789.0],
        );
        parquet_file(&h, "in/orders.parquet", &b, false);
        let out = h
            .run(
                &KIND,
                "path = \"in/orders.parquet\"\nmax_bad_rows = 2\n[columns]\nqty = \"int64\"\nprice = \"decimal(6,2)\"\n",
            )
            .await
            .unwrap();
        assert_eq!(out.output.metrics.rows_in, 4);
        assert_eq!(out.rows("default"), 2);
        let q: Vec<(u64, &str, &str)> = out
            .quarantine
            .iter()
            .map(|q| {
                (
                    q["line"].as_u64().unwrap(),
                    q["column"].as_str().unwrap(),
                    q["reason"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!((q[0].0, q[0].1), (2, "qty"), "{q:?}");
        assert!(q[0].2.contains("`six`"), "{q:?}");
        assert_eq!((q[1].0, q[1].1), (4, "price"), "{q:?}");
        assert!(q[1].2.contains("123456789"), "{q:?}");
        assert_eq!(out.quarantine[0]["row"]["qty"], "six");
        // Undeclared int32 is widened to int64; the declared columns are cast.
        assert_eq!(col(&out, "id").as_primitive::<Int64Type>().values().to_vec(), [1, 3]);
        let qty = col(&out, "qty").as_primitive::<Int64Type>();
        assert_eq!(qty.value(0), 6);
        assert!(qty.is_null(1));
        assert_eq!(
            col(&out, "price").as_primitive::<Decimal128Type>().values().to_vec(),
            [255, 300]
        );
        let err = h
            .run(
                &KIND,
                "path = \"in/orders.parquet\"\n[columns]\nqty = \"int64\"\nprice = \"decimal(6,2)\"\n",
            )
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("2 of 4 rows were rejected"), "{err}");
    }

    #[tokio::test]
    async fn parquet_globs_need_compatible_schemas() {
        let h = Harness::new("orders");
        parquet_file(
            &h,
            "in/a.parquet",
            &orders_batch(vec![1], vec![Some("1")], vec![1.0]),
            false,
        );
        // A later file may lack an undeclared column; gzip is looked through.
        let b = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("price", DataType::Float64, true),
                Field::new("id", DataType::Int32, true),
            ])),
            vec![
                Arc::new(Float64Array::from(vec![2.0])),
                Arc::new(Int32Array::from(vec![2])),
            ],
        )
        .unwrap();
        parquet_file(&h, "in/b.parquet.gz", &b, true);
        let out = h
            .run(&KIND, "path = \"in/*.parquet*\"\nsource_column = \"file\"\n")
            .await
            .unwrap();
        assert_eq!(out.rows("default"), 2);
        assert_eq!(out.output.metrics.extra["files"], 2);
        let batches = &out.datasets["default"];
        let qty: Vec<Option<&str>> = batches
            .iter()
            .flat_map(|b| {
                b.column_by_name("qty")
                    .unwrap()
                    .as_string::<i32>()
                    .iter()
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(qty, [Some("1"), None]);
        assert!(
            batches[0]
                .column_by_name("file")
                .unwrap()
                .as_string::<i32>()
                .value(0)
                .ends_with("a.parquet")
        );
        // Another type for the same column is an error, unless declared.
        let c = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)])),
            vec![Arc::new(StringArray::from(vec!["3"]))],
        )
        .unwrap();
        parquet_file(&h, "in/c.parquet", &c, false);
        let err = h.run(&KIND, "path = \"in/*.parquet*\"\n").await.err().unwrap();
        assert!(format!("{err:#}").contains("column `id` is Utf8 in"), "{err:#}");
        let out = h
            .run(
                &KIND,
                "path = \"in/*.parquet*\"\ncolumns_only = true\n[columns]\nid = \"int64\"\n",
            )
            .await
            .unwrap();
        let ids = out.int64s("default", 0);
        assert_eq!(ids, [1, 2, 3]);
        // Parquet and text files do not mix.
        parquet_file(&h, "mix/a.parquet", &c, false);
        h.file("mix/b.csv", "id\n4\n");
        let err = h.run(&KIND, "path = \"mix/*\"\n").await.err().unwrap();
        assert!(
            format!("{err:#}").contains("cannot be read into one dataset"),
            "{err:#}"
        );
    }
}
