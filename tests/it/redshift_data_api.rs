//! The Redshift Data API test server itself, driven by the real AWS SDK:
//! status transitions, batches as one transaction, typed results with
//! paging, COPY of staged Parquet through a manifest (and the load error
//! row it records when a row is rejected), Redshift-only clauses, and
//! cancellation of a running statement.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use crate::support::redshift_data_api::DataApiServer;
use arrow::array::{ArrayRef, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use aws_sdk_redshiftdata::types::{Field, StatusString};

async fn client(server: &DataApiServer) -> aws_sdk_redshiftdata::Client {
    let mut opts = nightjar::testenv::aws_options();
    opts.endpoint_url = Some(server.endpoint.clone());
    aws_sdk_redshiftdata::Client::new(&nightjar::aws::sdk_config(&opts).await)
}

/// Polls until the statement is done; returns every status seen, in order.
async fn wait(
    api: &aws_sdk_redshiftdata::Client,
    id: &str,
) -> (
    Vec<String>,
    aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput,
) {
    let mut seen: Vec<String> = Vec::new();
    loop {
        let d = api.describe_statement().id(id).send().await.expect("describe");
        let s = d.status().expect("status").as_str().to_string();
        if seen.last() != Some(&s) {
            seen.push(s.clone());
        }
        if ["FINISHED", "FAILED", "ABORTED"].contains(&s.as_str()) {
            return (seen, d);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn batch(api: &aws_sdk_redshiftdata::Client, sqls: &[&str]) -> String {
    api.batch_execute_statement()
        .workgroup_name("wg")
        .database("dev")
        .set_sqls(Some(sqls.iter().map(|s| s.to_string()).collect()))
        .send()
        .await
        .expect("batch")
        .id()
        .expect("id")
        .to_string()
}

async fn one(api: &aws_sdk_redshiftdata::Client, sql: &str) -> String {
    api.execute_statement()
        .cluster_identifier("c1")
        .db_user("awsuser")
        .database("dev")
        .sql(sql)
        .send()
        .await
        .expect("execute")
        .id()
        .expect("id")
        .to_string()
}

#[tokio::test]
async fn statements_go_through_the_real_states_and_return_typed_rows() {
    let server = DataApiServer::start("states").await;
    let api = client(&server).await;
    let id = batch(
        &api,
        &[
            "CREATE TABLE t (id BIGINT ENCODE az64, name VARCHAR(20) ENCODE lzo, price DECIMAL(10,2), ok BOOLEAN, f DOUBLE PRECISION) DISTSTYLE KEY DISTKEY(id) COMPOUND SORTKEY(id)",
            "INSERT INTO t VALUES (1, 'a', 2.55, true, 0.5), (2, NULL, NULL, false, NULL), (3, 'c', 1, NULL, 1e10)",
        ],
    )
    .await;
    let (seen, d) = wait(&api, &id).await;
    assert_eq!(seen.first().map(String::as_str), Some("SUBMITTED"), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("FINISHED"), "{seen:?}");
    assert_eq!(d.sub_statements().len(), 2);
    assert_eq!(d.sub_statements()[1].result_rows(), 3);
    assert!(d.created_at().is_some() && d.updated_at().is_some());

    server.page_rows(2);
    let id = one(&api, "SELECT id, name, price, ok, f FROM t ORDER BY id").await;
    let (_, d) = wait(&api, &id).await;
    assert_eq!(d.status(), Some(&StatusString::Finished));
    assert_eq!(d.result_rows(), 3);
    assert!(d.has_result_set().unwrap_or(false));
    let first = api.get_statement_result().id(&id).send().await.unwrap();
    let types: Vec<_> = first
        .column_metadata()
        .iter()
        .map(|c| c.type_name().unwrap().to_string())
        .collect();
    assert_eq!(types, ["int8", "varchar", "numeric", "bool", "float8"]);
    let token = first.next_token().expect("a second page").to_string();
    let second = api
        .get_statement_result()
        .id(&id)
        .next_token(token)
        .send()
        .await
        .unwrap();
    assert!(second.next_token().is_none());
    let rows: Vec<_> = first.records().iter().chain(second.records()).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][0], Field::LongValue(1));
    assert_eq!(rows[0][1], Field::StringValue("a".into()));
    assert_eq!(rows[0][2], Field::StringValue("2.55".into()));
    assert_eq!(rows[0][3], Field::BooleanValue(true));
    assert_eq!(rows[0][4], Field::DoubleValue(0.5));
    assert_eq!(rows[1][1], Field::IsNull(true));
    server.drop_schema().await;
}

#[tokio::test]
async fn a_failing_statement_rolls_back_the_whole_batch() {
    let server = DataApiServer::start("rollback").await;
    let api = client(&server).await;
    let (seen, _) = wait(&api, &one(&api, "CREATE TABLE t (id INT)").await).await;
    assert_eq!(seen.last().unwrap(), "FINISHED");
    let id = batch(
        &api,
        &[
            "INSERT INTO t VALUES (1)",
            "INSERT INTO t VALUES ('x')",
            "INSERT INTO t VALUES (3)",
        ],
    )
    .await;
    let (_, d) = wait(&api, &id).await;
    assert_eq!(d.status(), Some(&StatusString::Failed));
    assert!(d.error().unwrap().contains("invalid input syntax"), "{:?}", d.error());
    let subs: Vec<_> = d
        .sub_statements()
        .iter()
        .map(|s| s.status().unwrap().as_str().to_string())
        .collect();
    assert_eq!(subs, ["FINISHED", "FAILED", "ABORTED"]);
    let n: i64 = server
        .db()
        .await
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "the first insert is rolled back");
    // Requests without a target are refused like on AWS.
    let err = api
        .execute_statement()
        .database("dev")
        .sql("SELECT 1")
        .send()
        .await
        .unwrap_err();
    assert!(format!("{}", aws_sdk_redshiftdata::error::DisplayErrorContext(err)).contains("WorkgroupName"));
    server.drop_schema().await;
}

fn parquet(batch: &RecordBatch) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
    out
}

/// Stages `files` and a manifest under `prefix`; returns the manifest URL.
async fn stage(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str, files: &[Vec<u8>], with_length: bool) -> String {
    let mut entries = Vec::new();
    for (i, body) in files.iter().enumerate() {
        let key = format!("{prefix}/part-{i}.parquet");
        s3.put_object()
            .bucket(bucket)
            .key(&key)
            .body(body.clone().into())
            .send()
            .await
            .unwrap();
        let mut e = serde_json::json!({"url": format!("s3://{bucket}/{key}"), "mandatory": true});
        if with_length {
            e["meta"] = serde_json::json!({"content_length": body.len()});
        }
        entries.push(e);
    }
    let key = format!("{prefix}/manifest");
    let manifest = serde_json::json!({ "entries": entries }).to_string();
    s3.put_object()
        .bucket(bucket)
        .key(&key)
        .body(manifest.into_bytes().into())
        .send()
        .await
        .unwrap();
    format!("s3://{bucket}/{key}")
}

fn rows(ids: &[i64], names: &[&str]) -> RecordBatch {
    RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(ids.to_vec())) as ArrayRef),
        ("name", Arc::new(StringArray::from(names.to_vec())) as ArrayRef),
    ])
    .unwrap()
}

#[tokio::test]
async fn copy_reads_the_manifest_and_records_rejected_rows() {
    let server = DataApiServer::start("copy").await;
    let api = client(&server).await;
    let (s3, bucket) = support::bucket("server-copy").await;
    wait(&api, &one(&api, "CREATE TABLE t (id INTEGER, name VARCHAR(5))").await).await;
    let good = stage(
        &s3,
        &bucket,
        "good",
        &[parquet(&rows(&[1, 2], &["a", "b"])), parquet(&rows(&[3], &["c\td"]))],
        true,
    )
    .await;
    let copy = |url: &str| format!("COPY t FROM '{url}' IAM_ROLE 'arn:aws:iam::1:role/r' FORMAT AS PARQUET MANIFEST");
    let (_, d) = wait(&api, &one(&api, &copy(&good)).await).await;
    assert_eq!(d.status(), Some(&StatusString::Finished), "{:?}", d.error());
    assert_eq!(d.result_rows(), 3);
    let db = server.db().await;
    let got: Vec<(i32, String)> = db
        .query("SELECT id, name FROM t ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(got, [(1, "a".into()), (2, "b".into()), (3, "c\td".into())]);

    // The second row of the second file is too long for VARCHAR(5).
    let bad = stage(
        &s3,
        &bucket,
        "bad",
        &[parquet(&rows(&[4], &["d"])), parquet(&rows(&[5, 6], &["e", "toolong"]))],
        true,
    )
    .await;
    let (_, d) = wait(&api, &one(&api, &copy(&bad)).await).await;
    assert_eq!(d.status(), Some(&StatusString::Failed));
    assert!(d.error().unwrap().contains("sys_load_error_detail"), "{:?}", d.error());
    let e = db
        .query_one("SELECT file_name, line_number, column_name, error_message, raw_field_value, query_id FROM sys_load_error_detail", &[])
        .await
        .unwrap();
    assert_eq!(e.get::<_, String>(0), format!("s3://{bucket}/bad/part-1.parquet"));
    assert_eq!(e.get::<_, i64>(1), 2);
    assert_eq!(e.get::<_, String>(2), "name");
    assert!(e.get::<_, String>(3).contains("too long"), "{}", e.get::<_, String>(3));
    assert_eq!(e.get::<_, String>(4), "toolong");
    assert_eq!(e.get::<_, i64>(5), d.redshift_query_id());
    let n: i64 = db.query_one("SELECT count(*) FROM t", &[]).await.unwrap().get(0);
    assert_eq!(n, 3, "the first file of the failed COPY is rolled back");

    // Parquet manifests need content_length.
    let no_len = stage(&s3, &bucket, "nolen", &[parquet(&rows(&[7], &["g"]))], false).await;
    let (_, d) = wait(&api, &one(&api, &copy(&no_len)).await).await;
    assert!(d.error().unwrap().contains("content_length"), "{:?}", d.error());
    server.drop_schema().await;
}

#[tokio::test]
async fn truncate_commits_like_on_redshift() {
    let server = DataApiServer::start("truncate").await;
    let api = client(&server).await;
    wait(&api, &one(&api, "CREATE TABLE t (id INT)").await).await;
    wait(&api, &one(&api, "INSERT INTO t VALUES (1)").await).await;
    let (_, d) = wait(&api, &batch(&api, &["TRUNCATE t", "INSERT INTO t VALUES ('x')"]).await).await;
    assert_eq!(d.status(), Some(&StatusString::Failed));
    let n: i64 = server
        .db()
        .await
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "TRUNCATE is not rolled back");
    server.drop_schema().await;
}

#[tokio::test]
async fn cancel_aborts_a_running_statement() {
    let server = DataApiServer::start("cancel").await;
    let api = client(&server).await;
    wait(&api, &one(&api, "CREATE TABLE t (id INT)").await).await;
    server.delay_batches(30.0);
    let id = batch(&api, &["INSERT INTO t VALUES (1)"]).await;
    loop {
        let d = api.describe_statement().id(&id).send().await.unwrap();
        if d.status() == Some(&StatusString::Started) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = std::time::Instant::now();
    api.cancel_statement().id(&id).send().await.unwrap();
    let (_, d) = wait(&api, &id).await;
    assert_eq!(d.status(), Some(&StatusString::Aborted));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the sleep in PostgreSQL was cancelled"
    );
    let n: i64 = server
        .db()
        .await
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    let again = api.cancel_statement().id(&id).send().await;
    assert!(again.is_err(), "a finished statement cannot be cancelled");
    server.drop_schema().await;
}
