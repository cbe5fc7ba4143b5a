//! `extract.sql` against the real MySQL-compatible test server (MariaDB,
//! a database per test). Incremental runs across the run history are
//! tested end to end in `tests/it/extract_sql.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use mysql_async::prelude::Queryable;

use super::KIND;
use crate::spec::project::Connection;
use crate::steps::testing::{Harness, Outcome};

/// A database of its own on the test server, dropped at the end.
pub(crate) struct Database {
    pub name: String,
    conn: mysql_async::Conn,
}

impl Database {
    pub async fn new(tag: &str) -> Self {
        let mut conn = mysql_async::Conn::from_url(crate::testenv::mysql_url())
            .await
            .expect("MySQL test server");
        let name = format!("nj_{tag}_{}_{}", std::process::id(), fastrand::u32(..));
        conn.query_drop(format!("CREATE DATABASE {name}")).await.unwrap();
        conn.query_drop(format!("USE {name}")).await.unwrap();
        conn.query_drop("SET time_zone = '+00:00'").await.unwrap();
        Self { name, conn }
    }

    pub async fn sql(&mut self, sql: &str) {
        self.conn.query_drop(sql).await.unwrap();
    }

    pub async fn drop(mut self) {
        self.conn
            .query_drop(format!("DROP DATABASE {}", self.name))
            .await
            .unwrap();
    }

    /// A harness whose connection `shop` is this database, given by parts
    /// with the password in `NJ_MYSQL_TEST_PW`.
    fn harness(&self, task: &str) -> Harness {
        let url = crate::testenv::mysql_url();
        let opts = mysql_async::Opts::from_url(&url).unwrap();
        // SAFETY: tests of this module set the same value.
        unsafe { std::env::set_var("NJ_MYSQL_TEST_PW", opts.pass().unwrap_or("")) };
        let settings: toml::Table = toml::from_str(&format!(
            "host = \"{}\"\nport = {}\nuser = \"{}\"\ndbname = \"{}\"\npassword_env = \"NJ_MYSQL_TEST_PW\"\n",
            opts.ip_or_hostname(),
            opts.tcp_port(),
            opts.user().unwrap_or("root"),
            self.name
        ))
        .unwrap();
        let mut h = Harness::new(task);
        let conn = Connection {
            name: "shop".into(),
            kind: "mysql".into(),
            settings,
        };
        h.cx.connections = Arc::new(BTreeMap::from([("shop".to_string(), conn)]));
        h
    }
}

fn col<'a>(out: &'a Outcome, name: &str) -> &'a arrow::array::ArrayRef {
    out.datasets["default"][0].column_by_name(name).unwrap()
}

#[tokio::test]
async fn mysql_types_map_exactly() {
    let mut db = Database::new("mytypes").await;
    db.sql(
        "CREATE TABLE t (
            ti TINYINT, si SMALLINT, mi MEDIUMINT, i INT, bi BIGINT, ubi BIGINT UNSIGNED, ui INT UNSIGNED,
            b BOOL, t1 TINYINT(1), f FLOAT, dbl DOUBLE, dec1 DECIMAL(12,3), udec DECIMAL(10,2) UNSIGNED, dec0 DECIMAL(20,0),
            d DATE, dt DATETIME(6), ts TIMESTAMP(6) NULL, y YEAR, tm TIME(3),
            c CHAR(3), v VARCHAR(10), tx TEXT, e ENUM('red','green'), st SET('a','b'), j JSON,
            bl BLOB, vb VARBINARY(8), bn BINARY(3), bt BIT(5)
        )",
    )
    .await;
    db.sql(
        "INSERT INTO t VALUES
          (-128, -32768, -8388608, -2147483648, 9007199254740993, 18446744073709551615, 4294967295,
           TRUE, 0, 1.5, 0.1, 123456789.123, 99999999.99, 12345678901234567890,
           '2010-12-01', '2010-12-01 08:26:00.5', '2010-12-01 08:26:00.000001', 2010, '-838:59:59.000',
           'ab', 'é', 'long text', 'green', 'a,b', '{\"a\": [1, 2]}',
           x'00ff10', x'cafe', 'xy', b'10101'),
          (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, -0.5, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    )
    .await;
    let h = db.harness("t");
    let out = h.run(&KIND, "connection = \"shop\"\ntable = \"t\"\n").await.unwrap();
    assert_eq!(out.rows("default"), 2);
    let b = &out.datasets["default"][0];
    let ty = |n: &str| b.schema().field_with_name(n).unwrap().data_type().clone();
    for n in ["ti", "si", "mi", "i", "bi", "ui", "y", "bt"] {
        assert_eq!(ty(n), DataType::Int64, "{n}");
    }
    for n in ["b", "t1"] {
        assert_eq!(ty(n), DataType::Boolean, "{n}");
    }
    assert_eq!(ty("ubi"), DataType::Decimal128(20, 0));
    assert_eq!(ty("f"), DataType::Float64);
    assert_eq!(ty("dbl"), DataType::Float64);
    assert_eq!(ty("dec1"), DataType::Decimal128(12, 3));
    assert_eq!(ty("udec"), DataType::Decimal128(10, 2));
    assert_eq!(ty("dec0"), DataType::Decimal128(20, 0));
    assert_eq!(ty("d"), DataType::Date32);
    assert_eq!(ty("dt"), DataType::Timestamp(TimeUnit::Microsecond, None));
    assert_eq!(ty("ts"), DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())));
    for n in ["tm", "c", "v", "tx", "e", "st", "j"] {
        assert_eq!(ty(n), DataType::Utf8, "{n}");
    }
    for n in ["bl", "vb", "bn"] {
        assert_eq!(ty(n), DataType::Binary, "{n}");
    }
    let int = |n: &str| col(&out, n).as_primitive::<Int64Type>().value(0);
    assert_eq!(
        ["ti", "si", "mi", "i", "bi", "ui", "y", "bt"].map(int),
        [
            -128,
            -32768,
            -8388608,
            -2147483648,
            9007199254740993,
            4294967295,
            2010,
            21
        ]
    );
    let dec = |n: &str| col(&out, n).as_primitive::<Decimal128Type>().value(0);
    assert_eq!(dec("ubi"), 18446744073709551615);
    assert_eq!(dec("dec1"), 123456789123);
    assert_eq!(dec("udec"), 9999999999);
    assert_eq!(dec("dec0"), 12345678901234567890);
    assert_eq!(col(&out, "dec1").as_primitive::<Decimal128Type>().value(1), -500);
    assert!(col(&out, "b").as_boolean().value(0));
    assert!(!col(&out, "t1").as_boolean().value(0));
    assert_eq!(col(&out, "f").as_primitive::<Float64Type>().value(0), 1.5);
    assert_eq!(col(&out, "dbl").as_primitive::<Float64Type>().value(0), 0.1);
    assert_eq!(col(&out, "d").as_primitive::<Date32Type>().value(0), 14944);
    let ts = |n: &str| col(&out, n).as_primitive::<TimestampMicrosecondType>().value(0);
    assert_eq!(ts("dt"), 1_291_191_960_500_000);
    assert_eq!(ts("ts"), 1_291_191_960_000_001, "read in UTC");
    let text = |n: &str| col(&out, n).as_string::<i32>().value(0).to_string();
    assert_eq!(text("tm"), "-838:59:59");
    assert_eq!(text("c"), "ab");
    assert_eq!(text("v"), "é");
    assert_eq!(text("tx"), "long text");
    assert_eq!(text("e"), "green");
    assert_eq!(text("st"), "a,b");
    assert_eq!(text("j"), "{\"a\": [1, 2]}");
    let bin = |n: &str| col(&out, n).as_binary::<i32>().value(0).to_vec();
    assert_eq!(bin("bl"), [0x00, 0xff, 0x10]);
    assert_eq!(bin("vb"), [0xca, 0xfe]);
    assert_eq!(bin("bn"), *b"xy\0");
    for c in 0..b.num_columns() {
        if b.schema().field(c).name() != "dec1" {
            assert!(b.column(c).is_null(1), "{} null in row 2", b.schema().field(c).name());
        }
    }
    db.drop().await;
}

#[tokio::test]
async fn mysql_params_are_bound_and_rows_stream_in_batches() {
    let mut db = Database::new("myparams").await;
    db.sql(
        "CREATE TABLE o (id INT, day DATE, note TEXT, amount DECIMAL(8,2));
         INSERT INTO o VALUES (1, '2010-12-01', 'a', 1.50), (2, '2010-12-02', 'it''s', 2.00), (3, '2010-12-01', 'c', 3.25);",
    )
    .await;
    let h = db.harness("o");
    let q = |extra: &str| {
        format!(
            "connection = \"shop\"\nquery = \"SELECT id, note, `amount` AS a FROM o WHERE day = :ds AND (note = :note OR :note = 'all') AND amount >= :min ORDER BY id -- :ignored\"\n{extra}"
        )
    };
    let out = h
        .run(
            &KIND,
            &q("params = { ds = \"2010-12-01\", note = \"all\", min = 1.5 }\n"),
        )
        .await
        .unwrap();
    assert_eq!(col(&out, "id").as_primitive::<Int64Type>().values().to_vec(), [1, 3]);
    assert_eq!(
        out.datasets["default"][0].schema().field(2).data_type(),
        &DataType::Decimal128(8, 2)
    );
    // A value that would break a spliced query is just a value.
    let out = h
        .run(
            &KIND,
            &q("params = { ds = \"2010-12-02\", note = \"it's' OR 1=1 --\", min = 0 }\n"),
        )
        .await
        .unwrap();
    assert_eq!(out.rows("default"), 0);
    let out = h
        .run(
            &KIND,
            &q("params = { ds = \"2010-12-02\", note = \"it's\", min = 0 }\n"),
        )
        .await
        .unwrap();
    assert_eq!(col(&out, "id").as_primitive::<Int64Type>().values().to_vec(), [2]);

    // 25,000 rows at 10,000 a batch: every row once, in order.
    db.sql(
        "SET SESSION max_recursive_iterations = 100000;
         CREATE TABLE big (id INT PRIMARY KEY, x DECIMAL(10,3));
         INSERT INTO big WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 25000)
           SELECT n, n * 0.001 FROM g;",
    )
    .await;
    let out = h
        .run(
            &KIND,
            "connection = \"shop\"\nquery = \"SELECT id, x FROM big ORDER BY id\"\nbatch_rows = 10000\n",
        )
        .await
        .unwrap();
    let ids = out.int64s("default", 0);
    assert_eq!(ids, (1..=25000).collect::<Vec<i64>>());
    let xs: Vec<i128> = out.datasets["default"]
        .iter()
        .flat_map(|b| b.column(1).as_primitive::<Decimal128Type>().values().to_vec())
        .collect();
    assert_eq!(xs[24999], 25_000, "25000 * 0.001 = 25.000 at scale 3");

    // Errors are the server's, naming the problem; zero dates are refused.
    let err = h
        .run(&KIND, "connection = \"shop\"\nquery = \"SELECT nope FROM o\"\n")
        .await
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("Unknown column 'nope'"), "{err:#}");
    db.sql("SET SESSION sql_mode = ''; CREATE TABLE z (d DATE); INSERT INTO z VALUES ('0000-00-00');")
        .await;
    let err = h
        .run(&KIND, "connection = \"shop\"\ntable = \"z\"\n")
        .await
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains("is not a date (a MySQL zero date)"),
        "{err:#}"
    );
    db.drop().await;
}

#[tokio::test]
async fn mysql_credentials_stay_out_of_errors_and_logs() {
    let db = Database::new("mycreds").await;
    let mut h = db.harness("t");
    let mut conn = h.cx.connections["shop"].clone();
    conn.settings.insert("password_env".into(), "NJ_MYSQL_WRONG_PW".into());
    // SAFETY: only this test uses this variable.
    unsafe { std::env::set_var("NJ_MYSQL_WRONG_PW", "hunter2-not-it") };
    h.cx.connections = Arc::new(BTreeMap::from([("shop".to_string(), conn)]));
    let err = h
        .run(&KIND, "connection = \"shop\"\ntable = \"t\"\n")
        .await
        .err()
        .unwrap();
    let text = format!("{err:#} {err:?}");
    assert!(text.contains("Access denied"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
    let log = std::fs::read_to_string(h.cx.log.path()).unwrap_or_default();
    assert!(!log.contains("hunter2"), "{log}");
    db.drop().await;
}
