//! Warehouse-load benchmark (not a timed test; docs/benchmarks.md,
//! "Warehouse loads"). Needs the test services (`bash scripts/services.sh`,
//! then `set -a; . target/services.env`) and `psql`.
//!
//! ```sh
//! cargo bench --bench load_postgres -- /path/to/online-retail/by-day
//! ```
//!
//! On the Online Retail year (the raw flat table: the by-day CSVs typed as
//! text, Quantity bigint, UnitPrice double), in one run:
//! 1. staging throughput: Parquet write + upload to the moto S3 server
//!    (`redshift::staging::stage`);
//! 2. `load.postgres` (binary COPY, replace mode, one transaction) vs
//!    `psql \copy` of the same rows from one CSV file into a table of the
//!    same types, side by side, median of `NIGHTJAR_BENCH_REPS` (default 3);
//! 3. the year through `load.redshift` and the Data API test server: the
//!    row count in the table must equal the input's.
//!
//! Prints one table.

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Float64Builder, Int64Builder, StringBuilder};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use nightjar::warehouse::ddl::{Dialect, columns_for};
use nightjar::warehouse::schema::map_columns;
use nightjar::warehouse::{TableName, modes};

fn csv_files(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    v.sort();
    v
}

fn schema() -> Arc<Schema> {
    let t = |n: &str| Field::new(n, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        t("InvoiceNo"),
        t("StockCode"),
        t("Description"),
        Field::new("Quantity", DataType::Int64, true),
        t("InvoiceDate"),
        Field::new("UnitPrice", DataType::Float64, true),
        t("CustomerID"),
        t("Country"),
    ]))
}

/// One batch per file, and every data line into `all_csv` (no header).
fn read_year(files: &[PathBuf], all_csv: &mut impl Write) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for f in files {
        let mut r = csv::ReaderBuilder::new().flexible(true).from_path(f).expect("open CSV");
        let mut w = csv::Writer::from_writer(&mut *all_csv);
        let mut text: Vec<StringBuilder> = (0..6).map(|_| StringBuilder::new()).collect();
        let mut qty = Int64Builder::new();
        let mut price = Float64Builder::new();
        for rec in r.records() {
            let rec = rec.expect("CSV record");
            let get = |i: usize| rec.get(i).filter(|s| !s.is_empty());
            for (b, i) in text.iter_mut().zip([0, 1, 2, 4, 6, 7]) {
                b.append_option(get(i));
            }
            qty.append_option(get(3).and_then(|s| s.parse().ok()));
            price.append_option(get(5).and_then(|s| s.parse().ok()));
            w.write_record(&rec).expect("write CSV");
        }
        w.flush().expect("flush");
        let mut t: Vec<ArrayRef> = text.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef).collect();
        let country = t.pop().unwrap();
        let customer = t.pop().unwrap();
        let date = t.pop().unwrap();
        let cols: Vec<ArrayRef> = vec![
            t[0].clone(),
            t[1].clone(),
            t[2].clone(),
            Arc::new(qty.finish()),
            date,
            Arc::new(price.finish()),
            customer,
            country,
        ];
        out.push(RecordBatch::try_new(schema(), cols).expect("batch"));
    }
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let dir = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| "/work/shared/data/online-retail/by-day".into());
    let reps: usize = std::env::var("NIGHTJAR_BENCH_REPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    support::emulator_credentials();
    let work = tempfile::tempdir().unwrap();
    let csv_path = work.path().join("year.csv");
    let mut csv_file = std::io::BufWriter::new(std::fs::File::create(&csv_path).unwrap());
    let batches = read_year(&csv_files(&dir), &mut csv_file);
    drop(csv_file);
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut run = support::step::StepRun::new("load_year", "2011-12-09");
    let input = run.input("year", &batches);
    let input_bytes = std::fs::metadata(&input.uri).unwrap().len();
    let mut table: Vec<[String; 3]> = Vec::new();

    // 1. Staging throughput.
    let (s3, bucket) = support::bucket("bench-stage").await;
    let target = columns_for(&schema(), Dialect::Redshift, None);
    let t = TableName::parse("year").unwrap();
    let mut secs = Vec::new();
    let mut staged_bytes = 0;
    let mut files = 0;
    for _ in 0..reps {
        let mapping = map_columns(&t, &target, &schema(), None).unwrap();
        let rules = modes::InputRules::new(modes::Mode::Append, &schema(), None, &[]).unwrap();
        let plan = nightjar::redshift::staging::plan(rows as u64, input_bytes, 4, 128 << 20);
        let start = Instant::now();
        let staged =
            nightjar::redshift::staging::stage(&run.cx, &s3, &format!("s3://{bucket}/bench/"), mapping, rules, plan)
                .await
                .expect("stage");
        secs.push(start.elapsed().as_secs_f64());
        staged_bytes = staged.bytes;
        files = staged.keys.len() - 1;
        nightjar::redshift::staging::clean(&s3, &staged).await.unwrap();
    }
    let s = median(secs);
    table.push([
        "staging: Parquet write + upload to moto".into(),
        format!("{s:.2} s"),
        format!(
            "{rows} rows, {files} files, {:.1} MB staged, {:.0} rows/s",
            staged_bytes as f64 / 1e6,
            rows as f64 / s
        ),
    ]);

    // 2. load.postgres vs psql \copy.
    let url = nightjar::testenv::postgres_url();
    let schema_name = format!("bench_lpg_{}", std::process::id());
    let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let ddl = "(invoiceno TEXT, stockcode TEXT, description TEXT, quantity BIGINT, invoicedate TEXT, \
               unitprice DOUBLE PRECISION, customerid TEXT, country TEXT)";
    db.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema_name} CASCADE; CREATE SCHEMA {schema_name}; \
         CREATE TABLE {schema_name}.year {ddl}; CREATE TABLE {schema_name}.year_psql {ddl};"
    ))
    .await
    .unwrap();
    run.connection(
        "warehouse",
        "postgres",
        &format!("url = \"{url}\"\nschema = \"{schema_name}\""),
    );
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let start = Instant::now();
        run.run(
            &nightjar::steps::load::postgres::KIND,
            "table = \"year\"\nmode = \"replace\"",
        )
        .await
        .expect("load.postgres");
        ours.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let copy = format!(
            "BEGIN; DELETE FROM {schema_name}.year_psql; \\copy {schema_name}.year_psql FROM '{}' CSV\nCOMMIT;",
            csv_path.display()
        );
        let status = std::process::Command::new("psql")
            .args([url.as_str(), "-q", "-v", "ON_ERROR_STOP=1"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(copy.as_bytes())?;
                c.wait()
            })
            .expect("run psql");
        assert!(status.success(), "psql \\copy failed");
        theirs.push(start.elapsed().as_secs_f64());
    }
    let count = |t: &'static str| {
        let db = &db;
        let schema_name = &schema_name;
        async move {
            db.query_one(&format!("SELECT count(*) FROM {schema_name}.{t}"), &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    let (n_ours, n_psql) = (count("year").await, count("year_psql").await);
    assert_eq!(n_ours, rows as i64);
    assert_eq!(n_psql, rows as i64);
    let (a, b) = (median(ours), median(theirs));
    table.push([
        "load.postgres (binary COPY, replace)".into(),
        format!("{a:.2} s"),
        format!("{n_ours} rows; {:.2}x psql \\copy", a / b),
    ]);
    // One-line figures for benches/all.sh.
    println!(
        "summary: load.postgres vs psql \\copy, Online Retail year (s) | {a:.2} | {b:.2} (psql) | {:.2}x | within 1.5x | {}",
        a / b,
        if a / b <= 1.5 { "yes" } else { "NO" }
    );
    table.push([
        "psql \\copy (CSV, same rows, same types)".into(),
        format!("{b:.2} s"),
        format!("{n_psql} rows"),
    ]);
    db.batch_execute(&format!("DROP SCHEMA {schema_name} CASCADE"))
        .await
        .unwrap();

    // 3. The year through load.redshift and the Data API test server.
    let server = support::redshift_data_api::DataApiServer::start("bench").await;
    run.connection(
        "warehouse",
        "redshift",
        &format!(
            "workgroup = \"wg\"\ndatabase = \"dev\"\niam_role = \"arn:aws:iam::1:role/copy\"\n\
             staging = \"s3://{bucket}/stage/\"\nregion = \"us-east-1\"\nendpoint_url = \"{}\"\n\
             data_api_endpoint_url = \"{}\"",
            nightjar::testenv::aws_endpoint(),
            server.endpoint
        ),
    );
    let start = Instant::now();
    let out = run
        .run(
            &nightjar::steps::load::redshift::KIND,
            "table = \"year\"\ncreate = true",
        )
        .await
        .expect("load.redshift");
    let s = start.elapsed().as_secs_f64();
    let n: i64 = server
        .db()
        .await
        .query_one("SELECT count(*) FROM year", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, rows as i64, "rows in the table = rows of the input");
    table.push([
        "load.redshift via the test server".into(),
        format!("{s:.2} s"),
        format!(
            "{n} rows in the table = {rows} input rows; {} files",
            out.metrics.extra["files_staged"]
        ),
    ]);
    server.drop_schema().await;

    println!("| what | time (median of {reps}) | notes |");
    println!("| --- | --- | --- |");
    for [a, b, c] in table {
        println!("| {a} | {b} | {c} |");
    }
}
