//! `load.redshift` end to end: Parquet staged in the moto S3 server, COPY
//! and the mode's statements run by the Data API test server on the real
//! PostgreSQL (tests/support/redshift_data_api).

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use crate::support::redshift_data_api::DataApiServer;
use crate::support::step::StepRun;
use arrow::array::{ArrayRef, Date32Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use nightjar::steps::load::redshift::KIND;

struct Env {
    server: DataApiServer,
    run: StepRun,
    s3: aws_sdk_s3::Client,
    bucket: String,
}

async fn env(name: &str) -> Env {
    support::emulator_credentials();
    let server = DataApiServer::start(name).await;
    let (s3, bucket) = support::bucket(&format!("load-{name}")).await;
    let mut run = StepRun::new("load_orders", "2010-12-01");
    run.connection(
        "warehouse",
        "redshift",
        &format!(
            r#"workgroup = "wg"
database = "dev"
iam_role = "arn:aws:iam::123456789012:role/copy"
staging = "s3://{bucket}/stage"
region = "us-east-1"
endpoint_url = "{}"
data_api_endpoint_url = "{}"
"#,
            nightjar::testenv::aws_endpoint(),
            server.endpoint
        ),
    );
    Env {
        server,
        run,
        s3,
        bucket,
    }
}

impl Env {
    async fn sql(&self, sql: &str) {
        self.server.db().await.batch_execute(sql).await.expect("setup SQL");
    }

    /// `orders` as `date|invoice|stock|qty` lines, sorted.
    async fn orders(&self) -> Vec<String> {
        let rows = self
            .server
            .db()
            .await
            .query(
                "SELECT order_date::text, invoiceno, stockcode, quantity::int8 FROM orders ORDER BY 1, 2, 3",
                &[],
            )
            .await
            .expect("read orders");
        rows.iter()
            .map(|r| {
                format!(
                    "{}|{}|{}|{}",
                    r.get::<_, String>(0),
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                    r.get::<_, i64>(3)
                )
            })
            .collect()
    }

    async fn staged(&self) -> Vec<String> {
        support::keys(&self.s3, &self.bucket, "stage/").await
    }

    fn batches(&self) -> usize {
        self.server
            .calls()
            .iter()
            .filter(|(op, _)| op == "BatchExecuteStatement")
            .count()
    }

    async fn done(self) {
        self.server.drop_schema().await;
    }
}

const TABLE: &str = "CREATE TABLE orders (invoiceno VARCHAR(10) NOT NULL, stockcode VARCHAR(8) NOT NULL, \
                     quantity INTEGER, order_date DATE NOT NULL)";

/// Order lines of `day` (days since the epoch: 14944 = 2010-12-01).
fn lines(day: i32, rows: &[(&str, &str, i64)]) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "InvoiceNo",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
        ),
        (
            "StockCode",
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
        ),
        (
            "Quantity",
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ),
        (
            "order_date",
            Arc::new(Date32Array::from_iter_values(rows.iter().map(|_| day))),
        ),
    ])
    .unwrap()
}

const DEC1: i32 = 14944;
const DEC2: i32 = 14945;

const PARTITION: &str = "table = \"orders\"\nmode = \"replace_partition\"\n\
                         partition = { column = \"order_date\", value = \"2010-12-01\" }";

#[tokio::test]
async fn append_stages_copies_and_cleans_up() {
    let mut e = env("append").await;
    e.sql(TABLE).await;
    e.run.input("orders", &[lines(DEC1, &[("1", "A", 6), ("1", "B", 2)])]);
    let out = e.run.run(&KIND, "table = \"orders\"").await.unwrap();
    assert_eq!(out.metrics.rows_out, 2);
    assert_eq!(out.metrics.extra["files_staged"], 1);
    e.run.run(&KIND, "table = \"orders\"").await.unwrap();
    assert_eq!(
        e.orders().await,
        [
            "2010-12-01|1|A|6",
            "2010-12-01|1|A|6",
            "2010-12-01|1|B|2",
            "2010-12-01|1|B|2"
        ]
    );
    assert_eq!(e.batches(), 2, "one BatchExecuteStatement per load");
    assert!(e.staged().await.is_empty(), "staged files are deleted after success");
    let batch = e
        .server
        .calls()
        .into_iter()
        .find(|(op, _)| op == "BatchExecuteStatement")
        .unwrap()
        .1;
    let sqls: Vec<String> = serde_json::from_value(batch["Sqls"].clone()).unwrap();
    assert!(
        sqls[0].starts_with("CREATE TEMP TABLE nightjar_stage (LIKE \"orders\")"),
        "{sqls:?}"
    );
    assert!(
        sqls[1].contains("IAM_ROLE 'arn:aws:iam::123456789012:role/copy' FORMAT AS PARQUET MANIFEST"),
        "{sqls:?}"
    );
    assert_eq!(batch["WorkgroupName"], "wg");
    e.done().await;
}

#[tokio::test]
async fn kept_staged_files_have_a_manifest_with_content_lengths() {
    let mut e = env("manifest").await;
    e.sql(TABLE).await;
    e.run.input("orders", &[lines(DEC1, &[("1", "A", 6)])]);
    e.run
        .run(&KIND, "table = \"orders\"\nkeep_staged = true")
        .await
        .unwrap();
    let keys = e.staged().await;
    let manifest = keys.iter().find(|k| k.ends_with("manifest.json")).expect("a manifest");
    let obj = e.s3.get_object().bucket(&e.bucket).key(manifest).send().await.unwrap();
    let m: serde_json::Value = serde_json::from_slice(&obj.body.collect().await.unwrap().into_bytes()).unwrap();
    let entries = m["entries"].as_array().unwrap();
    assert_eq!(entries.len(), keys.len() - 1);
    for entry in entries {
        let url = entry["url"].as_str().unwrap();
        let key = url.strip_prefix(&format!("s3://{}/", e.bucket)).unwrap();
        let head = e.s3.head_object().bucket(&e.bucket).key(key).send().await.unwrap();
        assert_eq!(entry["meta"]["content_length"].as_i64(), head.content_length());
        assert_eq!(entry["mandatory"], true);
    }
    e.done().await;
}

#[tokio::test]
async fn replace_partition_twice_leaves_the_same_rows() {
    let mut e = env("partition").await;
    e.sql(TABLE).await;
    e.run.input("orders", &[lines(DEC2, &[("9", "Z", 1)])]);
    e.run
        .run(&KIND, &PARTITION.replace("2010-12-01", "2010-12-02"))
        .await
        .unwrap();
    e.run.input("orders", &[lines(DEC1, &[("1", "A", 6), ("1", "B", 2)])]);
    e.run.run(&KIND, PARTITION).await.unwrap();
    let first = e.orders().await;
    let out = e.run.run(&KIND, PARTITION).await.unwrap();
    assert_eq!(out.metrics.extra["rows_deleted"], 2);
    assert_eq!(e.orders().await, first, "a second run of the date leaves the same rows");
    assert_eq!(first, ["2010-12-01|1|A|6", "2010-12-01|1|B|2", "2010-12-02|9|Z|1"]);
    // A corrected day replaces that day only.
    e.run.input("orders", &[lines(DEC1, &[("1", "A", 7)])]);
    e.run.run(&KIND, PARTITION).await.unwrap();
    assert_eq!(e.orders().await, ["2010-12-01|1|A|7", "2010-12-02|9|Z|1"]);
    // Rows of another date are refused before anything is staged.
    e.run.input("orders", &[lines(DEC2, &[("1", "A", 7)])]);
    let err = e.run.run(&KIND, PARTITION).await.unwrap_err().to_string();
    assert!(
        err.contains("row 1 has `order_date` = `2010-12-02`, but this run replaces partition `2010-12-01`"),
        "{err}"
    );
    e.done().await;
}

#[tokio::test]
async fn replace_partition_fills_a_missing_partition_column() {
    let mut e = env("fill").await;
    e.sql(TABLE).await;
    let batch = lines(DEC1, &[("1", "A", 6)]).project(&[0, 1, 2]).unwrap();
    e.run.input("orders", &[batch]);
    e.run.run(&KIND, PARTITION).await.unwrap();
    e.run.run(&KIND, PARTITION).await.unwrap();
    assert_eq!(e.orders().await, ["2010-12-01|1|A|6"]);
    e.done().await;
}

#[tokio::test]
async fn replace_and_merge() {
    let mut e = env("merge").await;
    e.sql(TABLE).await;
    e.run.input("orders", &[lines(DEC1, &[("1", "A", 6), ("1", "B", 2)])]);
    e.run
        .run(&KIND, "table = \"orders\"\nmode = \"replace\"")
        .await
        .unwrap();
    e.run.input("orders", &[lines(DEC2, &[("2", "A", 1)])]);
    let out = e
        .run
        .run(&KIND, "table = \"orders\"\nmode = \"replace\"")
        .await
        .unwrap();
    assert_eq!(out.metrics.extra["rows_deleted"], 2);
    assert_eq!(e.orders().await, ["2010-12-02|2|A|1"]);

    let merge = "table = \"orders\"\nmode = \"merge\"\nkey = [\"InvoiceNo\", \"StockCode\"]";
    e.run.input("orders", &[lines(DEC1, &[("2", "A", 5), ("3", "C", 1)])]);
    let out = e.run.run(&KIND, merge).await.unwrap();
    assert_eq!(out.metrics.extra["rows_deleted"], 1, "one key was already there");
    e.run.run(&KIND, merge).await.unwrap();
    assert_eq!(e.orders().await, ["2010-12-01|2|A|5", "2010-12-01|3|C|1"]);
    e.done().await;
}

#[tokio::test]
async fn a_rejected_row_rolls_back_the_batch_and_is_reported() {
    let mut e = env("reject").await;
    e.sql(TABLE).await;
    e.run.input("orders", &[lines(DEC1, &[("1", "A", 6)])]);
    e.run.run(&KIND, PARTITION).await.unwrap();
    // The third row's stock code is longer than VARCHAR(8).
    e.run.input(
        "orders",
        &[lines(DEC1, &[("2", "B", 1), ("2", "C", 1), ("2", "TOOLONGCODE", 1)])],
    );
    let err = format!("{:#}", e.run.run(&KIND, PARTITION).await.unwrap_err());
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(
        err.contains("part-00000.parquet, line 3, column `stockcode` (character varying(8))")
            && err.contains("too long")
            && err.contains("TOOLONGCODE"),
        "{err}"
    );
    assert_eq!(e.orders().await, ["2010-12-01|1|A|6"], "the DELETE was rolled back");
    let kept = e.staged().await;
    assert!(kept.iter().any(|k| k.ends_with("part-00000.parquet")), "{kept:?}");
    assert!(err.contains("the staged files are kept under s3://"), "{err}");
    e.done().await;
}

#[tokio::test]
async fn a_schema_mismatch_is_refused_before_staging() {
    let mut e = env("mismatch").await;
    e.sql("CREATE TABLE orders (invoiceno VARCHAR(10), quantity INTEGER, price NUMERIC(10,2) NOT NULL)")
        .await;
    let batch = RecordBatch::try_from_iter([
        ("InvoiceNo", Arc::new(StringArray::from(vec!["1"])) as ArrayRef),
        ("Quantity", Arc::new(StringArray::from(vec!["6"]))),
        ("Country", Arc::new(StringArray::from(vec!["France"]))),
    ])
    .unwrap();
    e.run.input("orders", &[batch]);
    let err = e.run.run(&KIND, "table = \"orders\"").await.unwrap_err().to_string();
    assert!(err.contains("do not match the input"), "{err}");
    assert!(
        err.contains("~ quantity") && err.contains("integer") && err.contains("Utf8"),
        "{err}"
    );
    assert!(err.contains("- price") && err.contains("+ Country"), "{err}");
    assert!(e.staged().await.is_empty(), "nothing staged");
    assert_eq!(e.batches(), 0, "nothing submitted");
    e.done().await;
}

#[tokio::test]
async fn a_missing_table_is_created_only_when_asked() {
    let mut e = env("create").await;
    e.run.input("orders", &[lines(DEC1, &[("1", "A", 6)])]);
    let err = e.run.run(&KIND, "table = \"orders\"").await.unwrap_err().to_string();
    assert!(err.contains("does not exist") && err.contains("create = true"), "{err}");
    let out = e.run.run(&KIND, "table = \"orders\"\ncreate = true").await.unwrap();
    assert_eq!(out.metrics.extra["table_created"], true);
    assert_eq!(e.orders().await, ["2010-12-01|1|A|6"]);
    let ty: String = e
        .server
        .db()
        .await
        .query_one(
            "SELECT data_type::text FROM information_schema.columns WHERE table_schema = current_schema() \
             AND table_name = 'orders' AND column_name = 'order_date'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(ty, "date");
    e.run.run(&KIND, "table = \"orders\"\ncreate = true").await.unwrap();
    assert_eq!(e.orders().await.len(), 2, "the second run appends to the created table");
    e.done().await;
}

async fn wait_started(server: &DataApiServer) {
    for _ in 0..2000 {
        if server.batch_statuses().iter().any(|s| s == "STARTED") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no statement started: {:?}", server.statuses());
}

#[tokio::test]
async fn cancelling_the_task_cancels_the_statement() {
    let mut e = env("cancel").await;
    e.sql(TABLE).await;
    e.run.input("orders", &[lines(DEC1, &[("1", "A", 6)])]);
    e.run.run(&KIND, PARTITION).await.unwrap();
    e.server.delay_batches(60.0);
    let cancel = e.run.cx.cancel.clone();
    let started = std::time::Instant::now();
    let (result, ()) = tokio::join!(e.run.run(&KIND, PARTITION), async {
        wait_started(&e.server).await;
        cancel.cancel();
    });
    let err = format!("{:#}", result.unwrap_err());
    assert!(err.contains("cancelled"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(e.server.calls().iter().any(|(op, _)| op == "CancelStatement"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(e.server.batch_statuses().last().map(String::as_str), Some("ABORTED"));
    assert_eq!(e.orders().await, ["2010-12-01|1|A|6"]);
    e.done().await;
}

#[tokio::test]
async fn a_dropped_attempt_cancels_the_statement() {
    // The engine ends a timed-out attempt by dropping its future.
    let mut e = env("dropped").await;
    e.sql(TABLE).await;
    e.run.input("orders", &[lines(DEC1, &[("1", "A", 6)])]);
    e.server.delay_batches(60.0);
    let step = KIND
        .build(toml::Value::Table(toml::from_str(PARTITION).unwrap()))
        .unwrap_or_else(|(p, m)| panic!("{p}: {m}"));
    let cx = e.run.cx.clone();
    let attempt = tokio::spawn(async move { step.run(&cx).await });
    wait_started(&e.server).await;
    attempt.abort();
    let _ = attempt.await;
    let mut aborted = false;
    for _ in 0..500 {
        if e.server.batch_statuses().last().map(String::as_str) == Some("ABORTED") {
            aborted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        aborted,
        "a dropped attempt cancels its statement: {:?}",
        e.server.batch_statuses()
    );
    assert!(e.server.calls().iter().any(|(op, _)| op == "CancelStatement"));
    assert!(e.orders().await.is_empty());
    e.done().await;
}
