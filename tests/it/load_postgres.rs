//! `load.postgres` on the real PostgreSQL: every mode, idempotent re-runs,
//! rollback on failure, schema-mismatch refusal with a diff, `create`, and
//! the binary COPY of every supported type.

use std::sync::Arc;

use crate::support::step::StepRun;
use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMicrosecondArray,
};
use arrow::record_batch::RecordBatch;
use nightjar::steps::load::postgres::KIND;

struct Env {
    run: StepRun,
    db: tokio_postgres::Client,
    schema: String,
}

async fn env(name: &str) -> Env {
    let url = nightjar::testenv::postgres_url();
    let schema = format!("lpg_{name}_{}", std::process::id());
    let (db, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    db.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path TO {schema}"
    ))
    .await
    .unwrap();
    let mut run = StepRun::new("load_orders", "2010-12-01");
    run.connection(
        "warehouse",
        "postgres",
        &format!("url = \"{url}\"\nschema = \"{schema}\""),
    );
    Env { run, db, schema }
}

impl Env {
    async fn orders(&self) -> Vec<String> {
        self.db
            .query(
                "SELECT order_date::text, invoiceno, stockcode, quantity::int8 FROM orders ORDER BY 1, 2, 3",
                &[],
            )
            .await
            .unwrap()
            .iter()
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

    async fn done(self) {
        self.db
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .await
            .unwrap();
    }
}

const TABLE: &str = "CREATE TABLE orders (invoiceno VARCHAR(10) NOT NULL, stockcode VARCHAR(8) NOT NULL, \
                     quantity INTEGER, order_date DATE NOT NULL)";

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
async fn every_mode_and_idempotent_reruns() {
    let mut e = env("modes").await;
    e.db.batch_execute(TABLE).await.unwrap();
    e.run.input("orders", &[lines(DEC1, &[("1", "A", 6)])]);
    e.run.run(&KIND, "table = \"orders\"").await.unwrap();
    e.run.run(&KIND, "table = \"orders\"").await.unwrap();
    assert_eq!(
        e.orders().await,
        ["2010-12-01|1|A|6", "2010-12-01|1|A|6"],
        "append appends"
    );

    e.run.input("orders", &[lines(DEC2, &[("9", "Z", 1)])]);
    let out = e
        .run
        .run(&KIND, "table = \"orders\"\nmode = \"replace\"")
        .await
        .unwrap();
    assert_eq!(out.metrics.extra["rows_deleted"], 2);
    assert_eq!(e.orders().await, ["2010-12-02|9|Z|1"]);

    e.run.input("orders", &[lines(DEC1, &[("1", "A", 6), ("1", "B", 2)])]);
    e.run.run(&KIND, PARTITION).await.unwrap();
    let first = e.orders().await;
    e.run.run(&KIND, PARTITION).await.unwrap();
    assert_eq!(e.orders().await, first, "a second run of the date leaves the same rows");
    assert_eq!(first, ["2010-12-01|1|A|6", "2010-12-01|1|B|2", "2010-12-02|9|Z|1"]);

    let merge = "table = \"orders\"\nmode = \"merge\"\nkey = [\"InvoiceNo\", \"StockCode\"]";
    e.run.input("orders", &[lines(DEC2, &[("1", "B", 5), ("2", "A", 1)])]);
    let out = e.run.run(&KIND, merge).await.unwrap();
    assert_eq!(out.metrics.extra["rows_deleted"], 1);
    e.run.run(&KIND, merge).await.unwrap();
    assert_eq!(
        e.orders().await,
        [
            "2010-12-01|1|A|6",
            "2010-12-02|1|B|5",
            "2010-12-02|2|A|1",
            "2010-12-02|9|Z|1"
        ]
    );
    e.done().await;
}

#[tokio::test]
async fn a_failing_row_rolls_back_the_delete() {
    let mut e = env("rollback").await;
    e.db.batch_execute(TABLE).await.unwrap();
    e.run.input("orders", &[lines(DEC1, &[("1", "A", 6)])]);
    e.run.run(&KIND, PARTITION).await.unwrap();
    e.run
        .input("orders", &[lines(DEC1, &[("2", "B", 1), ("2", "TOOLONGCODE", 1)])]);
    let err = format!("{:#}", e.run.run(&KIND, PARTITION).await.unwrap_err());
    assert!(err.contains("too long"), "{err}");
    assert_eq!(e.orders().await, ["2010-12-01|1|A|6"]);
    e.done().await;
}

#[tokio::test]
async fn a_mismatched_table_is_refused_and_a_missing_one_created_on_request() {
    let mut e = env("schema").await;
    e.db.batch_execute("CREATE TABLE orders (invoiceno TEXT, quantity INTEGER, price NUMERIC(10,2) NOT NULL)")
        .await
        .unwrap();
    let batch = RecordBatch::try_from_iter([
        ("InvoiceNo", Arc::new(StringArray::from(vec!["1"])) as ArrayRef),
        ("Quantity", Arc::new(BooleanArray::from(vec![true]))),
        ("Country", Arc::new(StringArray::from(vec!["France"]))),
    ])
    .unwrap();
    e.run.input("orders", &[batch]);
    let err = e.run.run(&KIND, "table = \"orders\"").await.unwrap_err().to_string();
    assert!(
        err.contains("~ quantity") && err.contains("- price") && err.contains("+ Country"),
        "{err}"
    );

    e.run.input("orders", &[lines(DEC1, &[("1", "A", 6)])]);
    let err = e.run.run(&KIND, "table = \"lines\"").await.unwrap_err().to_string();
    assert!(err.contains("does not exist") && err.contains("create = true"), "{err}");
    let out = e.run.run(&KIND, "table = \"lines\"\ncreate = true").await.unwrap();
    assert_eq!(out.metrics.extra["table_created"], true);
    let n: i64 = e.db.query_one("SELECT count(*) FROM lines", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);

    // A table created for replace_partition is indexed on its partition column.
    let out = e
        .run
        .run(
            &KIND,
            &PARTITION
                .replace("\"orders\"", "\"daily\"")
                .replace("mode", "create = true\nmode"),
        )
        .await
        .unwrap();
    assert_eq!(out.metrics.extra["table_created"], true);
    let indexes: Vec<String> =
        e.db.query(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'daily'",
            &[&e.schema],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(indexes.iter().any(|d| d.contains("(order_date)")), "{indexes:?}");
    e.done().await;
}

#[tokio::test]
async fn every_type_goes_through_binary_copy() {
    let mut e = env("types").await;
    e.db.batch_execute(
        "CREATE TABLE typed (i BIGINT, small INTEGER, f DOUBLE PRECISION, s TEXT, b BOOLEAN, d DATE, \
         ts TIMESTAMP, tz TIMESTAMPTZ, dec NUMERIC(12,3), r REAL)",
    )
    .await
    .unwrap();
    let ts = vec![Some(1_291_191_960_123_456), None];
    let cols: Vec<(&str, ArrayRef)> = vec![
        ("i", Arc::new(Int64Array::from(vec![Some(i64::MAX), None]))),
        ("small", Arc::new(Int32Array::from(vec![Some(-7), None]))),
        ("f", Arc::new(Float64Array::from(vec![Some(2.5), None]))),
        ("s", Arc::new(StringArray::from(vec![Some("a'b\t\"c"), None]))),
        ("b", Arc::new(BooleanArray::from(vec![Some(true), None]))),
        ("d", Arc::new(Date32Array::from(vec![Some(14944), None]))),
        ("ts", Arc::new(TimestampMicrosecondArray::from(ts.clone()))),
        ("tz", Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("UTC"))),
        (
            "dec",
            Arc::new(
                Decimal128Array::from(vec![Some(-1_234_567_891), None])
                    .with_precision_and_scale(12, 3)
                    .unwrap(),
            ),
        ),
        ("r", Arc::new(Float64Array::from(vec![Some(0.25), None]))),
    ];
    e.run.input("typed", &[RecordBatch::try_from_iter(cols).unwrap()]);
    e.run.run(&KIND, "table = \"typed\"").await.unwrap();
    let row =
        e.db.query_one(
            "SELECT i::text, small::text, f::text, s, b::text, d::text, ts::text, \
             (tz AT TIME ZONE 'UTC')::text, dec::text, r::text FROM typed WHERE i IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<String> = (0..10).map(|i| row.get(i)).collect();
    assert_eq!(
        got,
        [
            "9223372036854775807",
            "-7",
            "2.5",
            "a'b\t\"c",
            "true",
            "2010-12-01",
            "2010-12-01 08:26:00.123456",
            "2010-12-01 08:26:00.123456",
            "-1234567.891",
            "0.25"
        ]
    );
    let nulls: i64 =
        e.db.query_one(
            "SELECT count(*) FROM typed WHERE i IS NULL AND s IS NULL AND dec IS NULL AND tz IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(nulls, 1);
    e.done().await;
}
