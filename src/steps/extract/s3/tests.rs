//! `extract.s3` against the moto server (a real S3 API on loopback).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;

use super::KIND;
use super::objects::{self, S3Uri};
use crate::spec::project::Connection;
use crate::steps::Skipped;
use crate::steps::testing::Harness;

/// A bucket of its own for one test, emptied and dropped at the end.
struct Bucket {
    name: String,
    client: aws_sdk_s3::Client,
}

impl Bucket {
    async fn new(tag: &str) -> Self {
        let client = crate::aws::s3_client(&crate::testenv::aws_options()).await;
        let name = format!("nj-{tag}-{}-{}", std::process::id(), fastrand::u32(..));
        client
            .create_bucket()
            .bucket(&name)
            .send()
            .await
            .expect("create bucket on moto");
        Self { name, client }
    }

    async fn put(&self, key: &str, body: impl Into<Vec<u8>>) {
        self.client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .body(body.into().into())
            .send()
            .await
            .unwrap();
    }

    async fn keys(&self, prefix: &str) -> Vec<String> {
        let sel = objects::Selector::of(prefix).unwrap();
        objects::find(&self.client, &self.name, &sel, &mut Vec::new())
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            .collect()
    }

    async fn drop_all(self) {
        for k in self.keys("").await {
            let _ = self.client.delete_object().bucket(&self.name).key(k).send().await;
        }
        let _ = self.client.delete_bucket().bucket(&self.name).send().await;
    }
}

/// A harness whose env has an `s3` connection to moto.
fn harness(task: &str) -> Harness {
    let mut h = Harness::new(task);
    let mut settings = toml::Table::new();
    settings.insert("endpoint_url".into(), crate::testenv::aws_endpoint().into());
    settings.insert("region".into(), "us-east-1".into());
    settings.insert("emulator".into(), true.into());
    let conn = Connection {
        name: "s3".into(),
        kind: "s3".into(),
        settings,
    };
    h.cx.connections = Arc::new(BTreeMap::from([("s3".to_string(), conn)]));
    h
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn ints(out: &crate::steps::testing::Outcome, col: &str) -> Vec<i64> {
    out.datasets["default"]
        .iter()
        .flat_map(|b| {
            b.column_by_name(col)
                .unwrap()
                .as_primitive::<Int64Type>()
                .values()
                .to_vec()
        })
        .collect()
}

#[tokio::test]
async fn glob_over_dated_objects_with_gzip_and_archive() {
    let b = Bucket::new("glob").await;
    b.put("raw/2010-12-01/a.csv.gz", gz(b"id,qty\n1,6\n2,7\n")).await;
    b.put("raw/2010-12-01/b.csv", "id,qty\n3,8\n").await;
    b.put("raw/2010-12-01/sub/c.csv", "id,qty\n99,0\n").await;
    b.put("raw/2010-12-01/notes.txt.bak", "not data").await;
    b.put("raw/2010-12-02/a.csv", "id,qty\n4,9\n").await;
    let h = harness("orders");
    let cfg = format!(
        "uri = \"s3://{0}/raw/2010-12-01/*.csv*\"\nsource_column = \"file\"\narchive = \"s3://{0}/archive/2010-12-01\"\n",
        b.name
    );
    let out = h.run(&KIND, &cfg).await.unwrap();
    assert_eq!(ints(&out, "id"), [1, 2, 3], "only that day's folder, in key order");
    assert_eq!(out.output.metrics.extra["objects"], 2);
    let file = out.datasets["default"][0]
        .column_by_name("file")
        .unwrap()
        .as_string::<i32>()
        .value(0)
        .to_string();
    assert_eq!(file, format!("s3://{}/raw/2010-12-01/a.csv.gz", b.name));
    assert_eq!(
        b.keys("archive/").await,
        ["archive/2010-12-01/a.csv.gz", "archive/2010-12-01/b.csv"]
    );
    let copy = objects::read_all(
        &b.client,
        &S3Uri::parse(&format!("s3://{}/archive/2010-12-01/a.csv.gz", b.name)).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(copy, gz(b"id,qty\n1,6\n2,7\n"), "the raw bytes, not a re-encoding");
    // A prefix takes everything below it, sub-folders included.
    b.client
        .delete_object()
        .bucket(&b.name)
        .key("raw/2010-12-01/notes.txt.bak")
        .send()
        .await
        .unwrap();
    let out = h
        .run(&KIND, &format!("uri = \"s3://{}/raw/2010-12-01/\"\n", b.name))
        .await
        .unwrap();
    assert_eq!(ints(&out, "id"), [1, 2, 3, 99]);
    b.drop_all().await;
}

#[tokio::test]
async fn listing_follows_every_page() {
    let b = Bucket::new("pages").await;
    for i in 0..7 {
        b.put(&format!("in/part-{i}.csv"), format!("n\n{i}\n")).await;
    }
    b.put("in/other.txt", "x").await;
    let sel = objects::Selector::of("in/part-*.csv").unwrap();
    let found = objects::find_paged(&b.client, &b.name, &sel, &mut Vec::new(), 2)
        .await
        .unwrap();
    let keys: Vec<String> = found.iter().map(|o| o.key.clone()).collect();
    assert_eq!(
        keys,
        (0..7).map(|i| format!("in/part-{i}.csv")).collect::<Vec<_>>(),
        "4 pages of 2"
    );
    assert!(found.iter().all(|o| o.size == 4));
    b.drop_all().await;
}

#[tokio::test]
async fn a_missing_object_fails_clearly_or_skips() {
    let b = Bucket::new("missing").await;
    b.put("by-day/2010-12-02/a.csv", "a\n1\n").await;
    let h = harness("orders");
    let err = h
        .run(&KIND, &format!("uri = \"s3://{}/by-day/2010-12-01.csv\"\n", b.name))
        .await
        .err()
        .unwrap();
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&format!(
            "nothing in S3 matches `s3://{}/by-day/2010-12-01.csv`",
            b.name
        )),
        "{msg}"
    );
    assert!(msg.contains("if_missing"), "{msg}");
    // A folder named without its slash gets a hint.
    let err = h
        .run(&KIND, &format!("uri = \"s3://{}/by-day/2010-12-02\"\n", b.name))
        .await
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("is it a folder?"), "{err:#}");
    let err = h
        .run(
            &KIND,
            &format!(
                "uri = \"s3://{}/by-day/2010-12-01.csv\"\nif_missing = \"skip\"\n",
                b.name
            ),
        )
        .await
        .err()
        .unwrap();
    assert!(err.downcast_ref::<Skipped>().is_some());
    // A missing bucket is an error naming it, whatever `if_missing` says.
    let err = h
        .run(
            &KIND,
            &format!("uri = \"s3://{}-gone/x.csv\"\nif_missing = \"skip\"\n", b.name),
        )
        .await
        .err()
        .unwrap();
    assert!(
        format!("{err:#}").contains(&format!("listing s3://{}-gone/x.csv", b.name)),
        "{err:#}"
    );
    b.drop_all().await;
}

#[tokio::test]
async fn wait_for_succeeds_when_the_object_appears_mid_wait() {
    let b = Bucket::new("sensor").await;
    let h = harness("orders");
    let client = b.client.clone();
    let bucket = b.name.clone();
    let started = std::time::Instant::now();
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        client
            .put_object()
            .bucket(&bucket)
            .key("drop/2010-12-01.ndjson")
            .body(b"{\"id\": 1}\n{\"id\": 2}\n".to_vec().into())
            .send()
            .await
            .unwrap();
    });
    let out = h
        .run(
            &KIND,
            &format!("uri = \"s3://{}/drop/2010-12-01.ndjson\"\nwait_for = \"30s\"\n", b.name),
        )
        .await
        .unwrap();
    late.await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1500));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "found on a poll soon after it appeared"
    );
    assert_eq!(ints(&out, "id"), [1, 2]);
    assert!(out.log.contains("waiting up to 30s"), "{}", out.log);
    // The deadline passes: a clear failure.
    let err = h
        .run(
            &KIND,
            &format!("uri = \"s3://{}/drop/2010-12-02.ndjson\"\nwait_for = \"2s\"\n", b.name),
        )
        .await
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("after waiting 2s"), "{err:#}");
    b.drop_all().await;
}

#[tokio::test]
async fn cancellation_stops_the_sensor() {
    let b = Bucket::new("cancel").await;
    let h = harness("orders");
    let cancel = h.cx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let started = std::time::Instant::now();
    let err = h
        .run(&KIND, &format!("uri = \"s3://{}/x.csv\"\nwait_for = \"10m\"\n", b.name))
        .await
        .err()
        .unwrap();
    assert!(format!("{err:#}").contains("cancelled while waiting"), "{err:#}");
    assert!(started.elapsed() < Duration::from_secs(10));
    b.drop_all().await;
}

#[tokio::test]
async fn parquet_and_json_objects() {
    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    let b = Bucket::new("formats").await;
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![7, 8, 9]))],
    )
    .unwrap();
    let mut buf = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    b.put("p/x.parquet", buf).await;
    b.put(
        "j/x.json.gz",
        gz(br#"{"data": {"items": [{"id": 1, "c": {"city": "Leeds"}}]}}"#),
    )
    .await;
    let h = harness("t");
    let out = h
        .run(&KIND, &format!("uri = \"s3://{}/p/x.parquet\"\n", b.name))
        .await
        .unwrap();
    assert_eq!(ints(&out, "id"), [7, 8, 9]);
    let out = h
        .run(
            &KIND,
            &format!("uri = \"s3://{}/j/x.json.gz\"\nrecords = \"$.data.items\"\n", b.name),
        )
        .await
        .unwrap();
    assert_eq!(ints(&out, "id"), [1]);
    let city = out.datasets["default"][0]
        .column_by_name("c.city")
        .unwrap()
        .as_string::<i32>()
        .value(0)
        .to_string();
    assert_eq!(city, "Leeds");
    b.drop_all().await;
}

#[test]
fn config_checks() {
    use crate::steps::StepConfig;
    let cfg: super::S3Extract = toml::from_str("uri = \"/data/x.csv\"\narchive = \"raw/\"\n").unwrap();
    let p = cfg.check();
    assert!(p.iter().any(|p| p.path == "uri"), "{p:?}");
    assert!(p.iter().any(|p| p.path == "archive"), "{p:?}");
    let cfg: crate::steps::extract::file::FileExtract =
        toml::from_str("path = \"x.csv\"\nwait_for = \"1m\"\n").unwrap();
    assert!(cfg.check().iter().any(|p| p.path == "wait_for"));
}

/// `extract.file` with an `s3://` path reads it as `extract.s3` does: the
/// same job file reads a local folder or an S3 prefix (`{{ vars.input }}`).
#[tokio::test]
async fn extract_file_reads_an_s3_path() {
    let b = Bucket::new("filepath").await;
    b.put("in/2010-12-01.csv", "id,qty\n1,6\n2,7\n").await;
    let h = harness("orders");
    let file = crate::steps::extract::file::KIND;
    let out = h
        .run(&file, &format!("path = \"s3://{}/in/2010-12-01.csv\"\n", b.name))
        .await
        .unwrap();
    assert_eq!(ints(&out, "id"), [1, 2]);
    assert_eq!(out.output.metrics.extra["objects"], 1);
    // A missing day is skipped as for a local file.
    let err = h
        .run(
            &file,
            &format!("path = \"s3://{}/in/2010-12-02.csv\"\nif_missing = \"skip\"\n", b.name),
        )
        .await
        .err()
        .unwrap();
    assert!(err.downcast_ref::<Skipped>().is_some(), "{err:#}");
    b.drop_all().await;
}
