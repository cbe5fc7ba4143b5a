//! `extract.sql` against the real PostgreSQL server (a schema per test)
//! and SQLite files. Incremental runs across the run history are tested
//! end to end in `tests/it/extract_sql.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};

use super::{KIND, number_placeholders, placeholders};
use crate::spec::project::Connection;
use crate::steps::testing::{Harness, Outcome};

/// A schema of its own on the test server, dropped at the end.
pub(crate) struct Schema {
    pub name: String,
    client: tokio_postgres::Client,
}

impl Schema {
    pub async fn new(tag: &str) -> Self {
        let (client, conn) = tokio_postgres::connect(&crate::testenv::postgres_url(), tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL test server");
        tokio::spawn(conn);
        let name = format!("nj_{tag}_{}_{}", std::process::id(), fastrand::u32(..));
        client.batch_execute(&format!("CREATE SCHEMA {name}")).await.unwrap();
        Self { name, client }
    }

    pub async fn sql(&self, sql: &str) {
        self.client
            .batch_execute(&sql.replace("S.", &format!("{}.", self.name)))
            .await
            .unwrap();
    }

    pub async fn drop(self) {
        self.client
            .batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name))
            .await
            .unwrap();
    }
}

fn pg_harness(task: &str) -> Harness {
    let mut h = Harness::new(task);
    let mut settings = toml::Table::new();
    settings.insert("url".into(), crate::testenv::postgres_url().into());
    let conn = Connection {
        name: "shop".into(),
        kind: "postgres".into(),
        settings,
    };
    h.cx.connections = Arc::new(BTreeMap::from([("shop".to_string(), conn)]));
    h
}

fn col<'a>(out: &'a Outcome, name: &str) -> &'a arrow::array::ArrayRef {
    out.datasets["default"][0].column_by_name(name).unwrap()
}

#[tokio::test]
async fn postgres_types_map_exactly() {
    let s = Schema::new("types").await;
    s.sql(
        "CREATE TABLE S.t (
            i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision,
            n numeric(12,3), nfree numeric, b boolean, t text, v varchar(10), c char(3),
            d date, ts timestamp, tz timestamptz, j json, jb jsonb, u uuid, tm time,
            ai integer[], at text[]
        );
        SET TIME ZONE 'Europe/Paris';
        INSERT INTO S.t VALUES
          (1, 2, 9007199254740993, 1.5, 0.1, 123456789.123, 1.25, true, 'é', 'x', 'ab',
           '2010-12-01', '2010-12-01 08:26:00.5', '2010-12-01 09:26:00+01', '{\"a\": [1, 2]}', '{\"b\": {\"c\": null}}',
           'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '13:45:01.25', '{1,NULL,3}', '{\"x\",\"y z\"}'),
          (NULL, NULL, NULL, NULL, NULL, -0.5, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);",
    )
    .await;
    let h = pg_harness("t");
    let out = h
        .run(&KIND, &format!("connection = \"shop\"\ntable = \"{}.t\"\n", s.name))
        .await
        .unwrap();
    assert_eq!(out.rows("default"), 2);
    let b = &out.datasets["default"][0];
    let ty = |n: &str| b.schema().field_with_name(n).unwrap().data_type().clone();
    for n in ["i2", "i4", "i8"] {
        assert_eq!(ty(n), DataType::Int64, "{n}");
    }
    assert_eq!(ty("f4"), DataType::Float64);
    assert_eq!(ty("n"), DataType::Decimal128(12, 3));
    assert_eq!(ty("nfree"), DataType::Decimal128(38, 10));
    assert_eq!(ty("d"), DataType::Date32);
    assert_eq!(ty("ts"), DataType::Timestamp(TimeUnit::Microsecond, None));
    assert_eq!(ty("tz"), DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())));
    for n in ["t", "v", "c", "j", "jb", "u", "tm", "ai", "at"] {
        assert_eq!(ty(n), DataType::Utf8, "{n}");
    }
    assert_eq!(col(&out, "i8").as_primitive::<Int64Type>().value(0), 9007199254740993);
    assert_eq!(col(&out, "f4").as_primitive::<Float64Type>().value(0), 1.5);
    let n = col(&out, "n").as_primitive::<Decimal128Type>();
    assert_eq!((n.value(0), n.value(1)), (123456789123, -500));
    assert_eq!(
        col(&out, "nfree").as_primitive::<Decimal128Type>().value(0),
        12_500_000_000
    );
    assert!(col(&out, "b").as_boolean().value(0));
    let text = |n: &str| col(&out, n).as_string::<i32>().value(0).to_string();
    assert_eq!(text("t"), "é");
    assert_eq!(text("c"), "ab ");
    assert_eq!(text("j"), "{\"a\": [1, 2]}");
    assert_eq!(text("jb"), "{\"b\": {\"c\": null}}");
    assert_eq!(text("u"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    assert_eq!(text("tm"), "13:45:01.250");
    assert_eq!(text("ai"), "[1,null,3]");
    assert_eq!(text("at"), "[\"x\",\"y z\"]");
    assert_eq!(col(&out, "d").as_primitive::<Date32Type>().value(0), 14944);
    let ts = col(&out, "ts").as_primitive::<TimestampMicrosecondType>().value(0);
    assert_eq!(ts, 1_291_191_960_500_000, "naive timestamps are kept as written");
    let tz = col(&out, "tz").as_primitive::<TimestampMicrosecondType>().value(0);
    assert_eq!(tz, 1_291_191_960_000_000, "09:26+01 is 08:26 UTC");
    for c in 0..b.num_columns() {
        if b.schema().field(c).name() != "n" {
            assert!(b.column(c).is_null(1), "column {c} null in row 2");
        }
    }
    s.drop().await;
}

#[tokio::test]
async fn postgres_params_are_bound_not_spliced() {
    let s = Schema::new("params").await;
    s.sql(
        "CREATE TABLE S.o (id int, day date, note text, amount numeric(8,2));
         INSERT INTO S.o VALUES (1, '2010-12-01', 'a', 1.50), (2, '2010-12-02', 'it''s', 2.00), (3, '2010-12-01', 'c', 3.25);",
    )
    .await;
    let h = pg_harness("o");
    let q = |extra: &str| {
        format!(
            "connection = \"shop\"\nquery = \"SELECT id, note, amount::text AS a FROM {}.o WHERE day = :ds AND (note = :note OR :note = 'all') AND amount >= :min ORDER BY id -- :ignored\"\n{extra}",
            s.name
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
    // A bad value is the server's error, naming the problem.
    let err = h
        .run(
            &KIND,
            &q("params = { ds = \"yesterday-ish\", note = \"all\", min = 0 }\n"),
        )
        .await
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains("invalid input syntax for type date"),
        "{err:#}"
    );
    s.drop().await;
}

#[tokio::test]
async fn postgres_streams_in_batches_and_fails_on_inexact_numerics() {
    let s = Schema::new("batches").await;
    s.sql("CREATE TABLE S.big AS SELECT g AS id, (g * 0.001)::numeric AS x FROM generate_series(1, 25000) g;")
        .await;
    let h = pg_harness("big");
    let out = h
        .run(
            &KIND,
            &format!(
                "connection = \"shop\"\nquery = \"SELECT id FROM {}.big ORDER BY id\"\nbatch_rows = 10000\n",
                s.name
            ),
        )
        .await
        .unwrap();
    let sizes: Vec<usize> = out.datasets["default"].iter().map(|b| b.num_rows()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 25000);
    let ids = out.int64s("default", 0);
    assert_eq!(ids, (1..=25000).collect::<Vec<i64>>());
    let err = h
        .run(
            &KIND,
            &format!(
                "connection = \"shop\"\nquery = \"SELECT x::numeric(10,2) * 1.001 AS y FROM {}.big\"\n",
                s.name
            ),
        )
        .await;
    // numeric(10,2) * 1.001 has no typmod: decimal(38,10) holds it exactly.
    assert!(err.is_ok(), "{:?}", err.err());
    let err = h
        .run(&KIND, "connection = \"shop\"\nquery = \"SELECT 1.0 / 3 AS third\"\n")
        .await
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("more than 10 decimals"), "{err:#}");
    let err = h
        .run(
            &KIND,
            "connection = \"shop\"\nquery = \"SELECT interval '1 day' AS i\"\n",
        )
        .await
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("cast it in the query"), "{err:#}");
    s.drop().await;
}

#[tokio::test]
async fn credentials_never_show_in_errors_or_logs() {
    let mut h = Harness::new("secret");
    let mut settings = toml::Table::new();
    settings.insert("url".into(), "postgres://nightjar:hunter2-secret@127.0.0.1:1/db".into());
    let conn = Connection {
        name: "shop".into(),
        kind: "postgres".into(),
        settings,
    };
    let mut unset = toml::Table::new();
    unset.insert("host".into(), "127.0.0.1".into());
    unset.insert("password_env".into(), "NIGHTJAR_TEST_SURELY_UNSET_PW".into());
    let conn2 = Connection {
        name: "shop2".into(),
        kind: "postgres".into(),
        settings: unset,
    };
    h.cx.connections = Arc::new(BTreeMap::from([
        ("shop".to_string(), conn),
        ("shop2".to_string(), conn2),
    ]));
    h.pii_values = vec!["hunter2-secret".into()];
    let err = h
        .run(&KIND, "connection = \"shop\"\nquery = \"SELECT 1\"\n")
        .await
        .err()
        .unwrap();
    let msg = format!("{err:#} {err:?}");
    assert!(
        msg.contains("connecting to postgres 127.0.0.1:1/db as nightjar"),
        "{msg}"
    );
    assert!(!msg.contains("hunter2"), "{msg}");
    let err = h
        .run(&KIND, "connection = \"shop2\"\nquery = \"SELECT 1\"\n")
        .await
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains("`NIGHTJAR_TEST_SURELY_UNSET_PW` (password_env) is not set"),
        "{err:#}"
    );
}

#[tokio::test]
async fn sqlite_queries_with_named_params_and_declared_types() {
    let mut h = Harness::new("lite");
    let db = h.path().join("shop.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch(
        "CREATE TABLE p (id INTEGER, name TEXT, price DECIMAL(8,2), added DATE, seen TIMESTAMP, ok BOOLEAN, w REAL);
         INSERT INTO p VALUES (1, 'tea', '2.50', '2010-12-01', '2010-12-01 08:00:00', 1, 0.5),
                              (2, 'cake', 3.1, '2010-12-02', NULL, 0, 2),
                              (3, NULL, NULL, NULL, NULL, NULL, NULL);",
    )
    .unwrap();
    drop(c);
    let mut settings = toml::Table::new();
    settings.insert("path".into(), "shop.db".into());
    let conn = Connection {
        name: "lite".into(),
        kind: "sqlite".into(),
        settings,
    };
    h.cx.connections = Arc::new(BTreeMap::from([("lite".to_string(), conn)]));
    let out = h
        .run(
            &KIND,
            "connection = \"lite\"\nquery = \"SELECT *, id * 2 AS twice FROM p WHERE id >= :min ORDER BY id\"\nparams = { min = 1 }\nbatch_rows = 2\n",
        )
        .await
        .unwrap();
    assert_eq!(out.rows("default"), 3);
    let b = &out.datasets["default"][0];
    let ty = |n: &str| b.schema().field_with_name(n).unwrap().data_type().clone();
    assert_eq!(ty("price"), DataType::Decimal128(8, 2));
    assert_eq!(ty("added"), DataType::Date32);
    assert_eq!(ty("seen"), DataType::Timestamp(TimeUnit::Microsecond, None));
    assert_eq!(ty("ok"), DataType::Boolean);
    assert_eq!(ty("w"), DataType::Float64);
    assert_eq!(ty("twice"), DataType::Int64);
    let price = col(&out, "price").as_primitive::<Decimal128Type>();
    assert_eq!((price.value(0), price.value(1)), (250, 310));
    assert_eq!(col(&out, "w").as_primitive::<Float64Type>().value(1), 2.0);
    let err = h
        .run(&KIND, "connection = \"lite\"\ntable = \"nope\"\n")
        .await
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("no such table: nope"), "{err:#}");
}

#[test]
fn placeholders_skip_strings_comments_and_casts() {
    let sql = "SELECT ':no', \"a:b\", x::date, y /* :c */ FROM t -- :d\nWHERE a = :a AND b = :b_2 OR a = :a";
    assert_eq!(placeholders(sql), ["a", "b_2", "a"]);
    let (n, order) = number_placeholders(sql);
    assert!(n.ends_with("WHERE a = $1 AND b = $2 OR a = $1"), "{n}");
    assert!(n.contains("x::date") && n.contains("':no'"), "{n}");
    assert_eq!(order, ["a", "b_2"]);
}

#[test]
fn config_checks() {
    use crate::steps::StepConfig;
    let check = |t: &str| -> Vec<String> {
        let c: super::SqlExtract = toml::from_str(t).unwrap();
        c.check()
            .into_iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect()
    };
    assert!(check("connection = \"x\"\n")[0].contains("give `query` or `table`"));
    assert!(check("connection = \"x\"\ntable = \"t; DROP TABLE u\"\n")[0].contains("not a plain table name"));
    let p =
        check("connection = \"x\"\nquery = \"SELECT * FROM t WHERE a > :since\"\nincremental = { column = \"a\" }\n");
    assert!(p.iter().any(|p| p.contains("must use `:last_watermark`")), "{p:?}");
    assert!(p.iter().any(|p| p.contains("needs `initial`")), "{p:?}");
    assert!(p.iter().any(|p| p.contains("`params` has no `since`")), "{p:?}");
    assert!(check("connection = \"x\"\ntable = \"s.t\"\nincremental = { column = \"updated_at\" }\n").is_empty());
}

/// The test server takes TLS (scripts/services.sh gives it a certificate
/// for 127.0.0.1 signed by a private CA): verify-full against that CA
/// reads over TLS; another CA is refused, saying what to check.
#[tokio::test]
async fn postgres_tls_verify_full_against_a_private_ca() {
    let ca = crate::testenv::postgres_ca();
    let mut h = pg_harness("tls");
    let base = h.cx.connections["shop"].clone();
    let with = |extra: &[(&str, toml::Value)]| {
        let mut conn = base.clone();
        for (k, v) in extra {
            conn.settings.insert(k.to_string(), v.clone());
        }
        Arc::new(BTreeMap::from([("shop".to_string(), conn)]))
    };
    h.cx.connections = with(&[("sslmode", "verify-full".into()), ("root_cert", ca.clone().into())]);
    let query =
        "connection = \"shop\"\nquery = \"SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()\"\n";
    let out = h.run(&KIND, query).await.unwrap();
    assert!(col(&out, "ssl").as_boolean().value(0), "the session is encrypted");
    assert!(col(&out, "version").as_string::<i32>().value(0).starts_with("TLSv1."));
    assert!(out.log.contains("(TLS)"), "{}", out.log);

    // A CA that did not sign the server's certificate.
    let other = h.file(
        "other-ca.pem",
        std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=other",
            ])
            .args(["-keyout", "/dev/null"])
            .output()
            .expect("openssl")
            .stdout,
    );
    h.cx.connections = with(&[("tls", true.into()), ("root_cert", other.to_str().unwrap().into())]);
    let err = h.run(&KIND, query).await.err().expect("another CA is refused");
    let text = format!("{err:#}");
    assert!(text.contains("UnknownIssuer") && text.contains("root_cert"), "{text}");

    // `require` encrypts without checking; the plain default still works.
    h.cx.connections = with(&[("sslmode", "require".into())]);
    let out = h.run(&KIND, query).await.unwrap();
    assert!(col(&out, "ssl").as_boolean().value(0));
    h.cx.connections = with(&[]);
    let out = h.run(&KIND, query).await.unwrap();
    assert!(!col(&out, "ssl").as_boolean().value(0), "no TLS unless asked");
}
