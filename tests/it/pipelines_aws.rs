//! The example pipelines, unchanged, under `--env aws` against the
//! emulators: input read from moto's S3 (`[env.aws.vars] input =
//! "s3://..."`), the warehouse a `redshift` connection served by the Data
//! API test server over the real PostgreSQL (staging in moto's S3), events
//! to moto's SQS. Each DAG also runs with `--env local` (files, SQLite) on
//! the same input, and the two warehouses must hold the same row counts.

use crate::support;

use crate::support::api_server;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use crate::support::files_under as files;
use crate::support::project::{copy_dir, repo};
use crate::support::redshift_data_api::DataApiServer;
use crate::support::views;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_nightjar");
const TOKEN: &str = "pa-test-token-41c7";

/// The emulated AWS side of one test: a bucket (input, staging), a queue
/// (events), the Data API test server (the warehouse), and the shop's
/// tables in PostgreSQL for multi_source.
struct Aws {
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
    bucket: String,
    queue: String,
    /// The env's alert queue (`report.alerts`).
    alerts: String,
    server: DataApiServer,
    pg: tokio_postgres::Client,
    shop: String,
}

impl Aws {
    async fn start(tag: &str) -> Self {
        support::emulator_credentials();
        let opts = nightjar::testenv::aws_options();
        let (s3, bucket) = support::bucket(tag).await;
        let sqs = aws_sdk_sqs::Client::new(&nightjar::aws::sdk_config(&opts).await);
        let queue_named = |name: String| {
            let sqs = sqs.clone();
            async move {
                let made = sqs.create_queue().queue_name(name).send().await.unwrap();
                made.queue_url().unwrap().to_string()
            }
        };
        let queue = queue_named(format!("nj-{tag}-{}", std::process::id())).await;
        let alerts = queue_named(format!("nj-{tag}-alerts-{}", std::process::id())).await;
        let server = DataApiServer::start(tag).await;
        let url = nightjar::testenv::postgres_url();
        let (pg, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let shop = format!("nj_pa_{tag}_{}", std::process::id());
        pg.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {shop} CASCADE; CREATE SCHEMA {shop};
             CREATE TABLE {shop}.products (product_code text PRIMARY KEY, name text, category text, list_price numeric(10,2));
             INSERT INTO {shop}.products VALUES
               ('P-100', 'Widget', 'Electronics', 19.99), ('P-200', 'Chair', ' Home & Garden', 250.00),
               ('P-300', 'Cable', 'ELEC', 4.50), ('P-400', 'Pen', 'office', 1.00);
             CREATE TABLE {shop}.transactions (sale_id int, status text, method text, paid_at timestamptz);
             INSERT INTO {shop}.transactions VALUES
               (1001, 'paid', 'card', '2024-03-01 09:00+00'), (1002, 'paid', 'paypal', '2024-03-01 10:00+00'),
               (1003, 'refunded', 'card', '2024-03-01 11:00+00'), (2001, 'paid', 'card', '2024-03-02 09:00+00');"
        ))
        .await
        .unwrap();
        Aws {
            s3,
            sqs,
            bucket,
            queue,
            alerts,
            server,
            pg,
            shop,
        }
    }

    /// Uploads every file of `dir` under `prefix`, at its path below `dir`.
    async fn upload(&self, dir: &Path, prefix: &str) {
        for f in files(dir) {
            let key = format!("{prefix}{}", f.strip_prefix(dir).unwrap().to_string_lossy());
            self.s3
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .body(std::fs::read(&f).unwrap().into())
                .send()
                .await
                .unwrap();
        }
    }

    /// `nightjar.toml` with a `local` env (SQLite, files) and an `aws` env
    /// (Redshift over the Data API, S3 input and staging, SQS events),
    /// which `dispatch` (extra `[env.aws]` lines) may send through Step
    /// Functions.
    fn project_file(&self, dispatch: &str) -> String {
        let ep = nightjar::testenv::aws_endpoint();
        let b = &self.bucket;
        format!(
            r#"default_env = "local"

[env.local.connections.warehouse]
kind = "sqlite"
path = ".nightjar/warehouse.db"

[env.local.connections.shop]
kind = "postgres"
url_env = "MULTI_SOURCE_PG_URL"

[env.aws]
report = {{ sqs = "{queue}", region = "us-east-1", endpoint_url = "{ep}", alerts = {{ on_failure = {{ sqs = "{alerts}" }} }} }}
{dispatch}

# Every DAG's `input` is its own prefix of the bucket; retail's raw zone too.
[env.aws.vars]
input = "s3://{b}/input/{{{{ dag }}}}"
archive = "s3://{b}/archive/{{{{ dag }}}}"

[env.aws.connections.warehouse]
kind = "redshift"
workgroup = "analytics"
database = "dev"
iam_role = "arn:aws:iam::123456789012:role/redshift-copy"
staging = "s3://{b}/staging/"
region = "us-east-1"
endpoint_url = "{ep}"
data_api_endpoint_url = "{api}"

[env.aws.connections.s3]
kind = "s3"
region = "us-east-1"
endpoint_url = "{ep}"
emulator = true

[env.aws.connections.shop]
kind = "postgres"
url_env = "MULTI_SOURCE_PG_URL"
"#,
            queue = self.queue,
            alerts = self.alerts,
            api = self.server.endpoint,
        )
    }

    /// Row counts of `tables` in the Redshift (test server) warehouse.
    async fn counts(&self, tables: &[&str]) -> BTreeMap<String, i64> {
        let db = self.server.db().await;
        let mut out = BTreeMap::new();
        for t in tables {
            let n: i64 = db
                .query_one(&format!("SELECT COUNT(*) FROM {t}"), &[])
                .await
                .unwrap_or_else(|e| panic!("counting {t}: {e}"))
                .get(0);
            out.insert(t.to_string(), n);
        }
        out
    }

    /// Every event the runs sent to the events queue.
    async fn events(&self) -> Vec<serde_json::Value> {
        self.drain(&self.queue).await
    }

    /// Every message of `queue`, as JSON, received and deleted.
    async fn drain(&self, queue: &str) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        loop {
            let r = self
                .sqs
                .receive_message()
                .queue_url(queue)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            if r.messages().is_empty() {
                return out;
            }
            for m in r.messages() {
                out.push(serde_json::from_str(m.body().unwrap()).unwrap());
                self.sqs
                    .delete_message()
                    .queue_url(queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }

    async fn keys(&self, prefix: &str) -> Vec<String> {
        support::keys(&self.s3, &self.bucket, prefix).await
    }

    async fn clean_up(self) {
        for k in self.keys("").await {
            let _ = self.s3.delete_object().bucket(&self.bucket).key(k).send().await;
        }
        let _ = self.s3.delete_bucket().bucket(&self.bucket).send().await;
        for q in [&self.queue, &self.alerts] {
            let _ = self.sqs.delete_queue().queue_url(q).send().await;
        }
        let _ = self
            .pg
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.shop))
            .await;
        self.server.drop_schema().await;
    }
}

/// A scratch project: the repository's DAGs, jobs, SQL and sample data.
fn project(aws: &Aws, dispatch: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["dags", "jobs", "sql", "data/sample"] {
        copy_dir(&repo().join(sub), &dir.path().join(sub));
    }
    std::fs::write(dir.path().join("nightjar.toml"), aws.project_file(dispatch)).unwrap();
    dir
}

/// The environment of every nightjar process of these tests.
fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env("MULTI_SOURCE_PG_URL", nightjar::testenv::postgres_url())
        .env("MULTI_SOURCE_API_TOKEN", TOKEN)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("NIGHTJAR_ENV");
    cmd
}

/// Runs `nightjar run` in `dir` off the runtime (the test servers live on
/// it) and fails with the output unless it succeeds.
async fn run(dir: &Path, args: &[&str]) {
    let what = args.join(" ");
    let out = try_run(dir, args).await;
    if !out.status.success() {
        // The task errors, for the failure message.
        let dag = Path::new(args[0]).file_stem().unwrap().to_string_lossy().into_owned();
        let date = args.iter().skip_while(|a| **a != "--date").nth(1).unwrap();
        let show = command(dir).args(["show", &format!("{dag}@{date}")]).output().unwrap();
        panic!(
            "nightjar run {what}:\n{}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&show.stdout)
        );
    }
}

/// Runs `nightjar run` in `dir` off the runtime; its output, whatever the outcome.
async fn try_run(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = command(dir);
    cmd.arg("run").args(args);
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}

fn sqlite_counts(dir: &Path, tables: &[&str]) -> BTreeMap<String, i64> {
    sqlite_file_counts(&dir.join(".nightjar/warehouse.db"), tables)
}

fn sqlite_file_counts(file: &Path, tables: &[&str]) -> BTreeMap<String, i64> {
    assert!(file.exists(), "{}", file.display());
    let db = rusqlite::Connection::open(file).unwrap();
    tables
        .iter()
        .map(|t| {
            let n: i64 = db
                .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))
                .unwrap_or_else(|e| panic!("counting {t}: {e}"));
            (t.to_string(), n)
        })
        .collect()
}

/// The raw CustomerIDs of the retail sample (`17850.0` in the files).
fn raw_customer_ids() -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for f in files(&repo().join("data/sample/online-retail/by-day")) {
        let mut r = csv::Reader::from_path(&f).unwrap();
        let col = r.headers().unwrap().iter().position(|h| h == "CustomerID").unwrap();
        for rec in r.records() {
            let v = rec.unwrap()[col].trim_end_matches(".0").to_string();
            if !v.is_empty() {
                ids.insert(v);
            }
        }
    }
    ids
}

fn api(r: &api_server::Request) -> api_server::Response {
    use api_server::Response;
    if r.headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {TOKEN}")) {
        return Response::raw(401, "{\"error\": \"bad token\"}");
    }
    match r.path.as_str() {
        "/v1/customers" => {
            let all = [
                json!({"customer_id": 1, "name": "Ann", "segment": "retail", "address": {"city": "Leeds", "country": "UK"}}),
                json!({"customer_id": 2, "name": "Bruno", "segment": "wholesale", "address": {"city": "Lyon", "country": "FR"}}),
                json!({"customer_id": 3, "name": "Cleo", "segment": null, "address": {"city": null, "country": "US"}}),
            ];
            let page: usize = r.query["page"].parse().unwrap();
            let per: usize = r.query["per_page"].parse().unwrap();
            let rows: Vec<_> = all.iter().skip((page - 1) * per).take(per).cloned().collect();
            Response::json(json!({"data": rows, "page": page}))
        }
        "/v1/rates" => Response::json(json!({"base": "GBP", "date": r.query["date"], "rates": [
            {"currency": "GBP", "to_gbp": 1}, {"currency": "EUR", "to_gbp": 0.85}, {"currency": "USD", "to_gbp": 0.8}
        ]})),
        _ => Response::raw(404, "{}"),
    }
}

const RETAIL_TABLES: &[&str] = &[
    "orders",
    "cancelled_orders",
    "customers",
    "products",
    "invoices",
    "invoice_lines",
];
const RETAIL_DATES: &[&str] = &["2010-12-01", "2010-12-02", "2010-12-03"];

#[tokio::test(flavor = "multi_thread")]
async fn retail_and_multi_source_run_unchanged_under_env_aws() {
    let aws = Aws::start("pipelines").await;
    let api = api_server::Server::start(Arc::new(api)).await;
    aws.upload(
        &repo().join("data/sample/online-retail/by-day"),
        "input/retail_nightly/",
    )
    .await;
    aws.upload(&repo().join("data/sample/multi_source/sales"), "input/multi_source/")
        .await;
    let (local, remote) = (project(&aws, ""), project(&aws, ""));
    let api_var = format!("api={}/v1", api.base);
    let shop_var = format!("shop_schema={}", aws.shop);

    for date in RETAIL_DATES {
        for (dir, env) in [(&local, "local"), (&remote, "aws")] {
            run(dir.path(), &["dags/retail_nightly.toml", "--date", date, "--env", env]).await;
            // One pseudonymization key for both projects, as one team's
            // environments share it: the views' CustomerIDs then compare.
            let (key, theirs) = (".nightjar/pii.key", remote.path().join(".nightjar/pii.key"));
            if !theirs.exists() {
                std::fs::create_dir_all(theirs.parent().unwrap()).unwrap();
                std::fs::copy(local.path().join(key), theirs).unwrap();
            }
        }
    }
    // A re-run of a date replaces its partitions and merges its dimensions:
    // the counts do not change.
    run(
        remote.path(),
        &[
            "dags/retail_nightly.toml",
            "--date",
            "2010-12-01",
            "--env",
            "aws",
            "--force",
        ],
    )
    .await;
    let ms = [
        "dags/multi_source.toml",
        "--date",
        "2024-03-01",
        "--var",
        &api_var,
        "--var",
        &shop_var,
    ];
    for (dir, env) in [(&local, "local"), (&remote, "aws")] {
        let mut args = ms.to_vec();
        args.extend(["--env", env]);
        run(dir.path(), &args).await;
    }

    // The same rows in both warehouses.
    let want = sqlite_counts(local.path(), RETAIL_TABLES);
    eprintln!("retail rows per table: {want:?}");
    assert!(want.values().all(|n| *n > 0), "{want:?}");
    assert_eq!(aws.counts(RETAIL_TABLES).await, want, "retail: redshift vs sqlite");
    let want = sqlite_counts(local.path(), &["sales_unified"]);
    assert_eq!(want["sales_unified"], 5);
    assert_eq!(
        aws.counts(&["sales_unified"]).await,
        want,
        "multi_source: redshift vs sqlite"
    );

    // The aws run read S3 and wrote nothing of the warehouse locally.
    assert!(!remote.path().join(".nightjar/warehouse.db").exists());

    // The business views (views.redshift.sql, run through the Data API)
    // give the local views' rows, every row of every view ...
    let db = aws.server.db().await;
    let sqlite = rusqlite::Connection::open(local.path().join(".nightjar/warehouse.db")).unwrap();
    let mut compared = 0;
    for (view, order) in views::RETAIL {
        compared += views::compare(&sqlite, &db, view, order).await;
    }
    assert!(compared > 100, "{compared} view rows compared");
    // ... and the top rows computed from the raw files by
    // tests/fixtures/retail/expected.py (the sample's three days).
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("tests/fixtures/retail/expected.json")).unwrap())
            .unwrap();
    let top = db
        .query(
            "SELECT invoiceno::text, lines::bigint, units::bigint, revenue::float8 FROM highest_invoices \
             ORDER BY revenue DESC LIMIT 3",
            &[],
        )
        .await
        .unwrap();
    let want = expected["highest_invoices"].as_array().unwrap();
    assert_eq!(top.len(), 3);
    for (got, w) in top.iter().zip(want) {
        let row = (
            got.get::<_, String>(0),
            got.get::<_, i64>(1),
            got.get::<_, i64>(2),
            got.get::<_, f64>(3),
        );
        assert!(
            row.0 == w[0].as_str().unwrap()
                && row.1 == w[1].as_i64().unwrap()
                && row.2 == w[2].as_i64().unwrap()
                && (row.3 - w[3].as_f64().unwrap()).abs() < 0.006,
            "highest_invoices on Redshift: {row:?} vs {w}"
        );
    }
    let days = db
        .query(
            "SELECT sales_day::text, revenue::float8 FROM sales_per_day ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    let want = expected["sales_per_day"].as_array().unwrap();
    assert_eq!(days.len(), want.len());
    for (got, w) in days.iter().zip(want) {
        let (d, r) = (got.get::<_, String>(0), got.get::<_, f64>(1));
        assert!(
            d.starts_with(w[0].as_str().unwrap()) && (r - w[1].as_f64().unwrap()).abs() < 0.006,
            "sales_per_day on Redshift: {d} {r} vs {w}"
        );
    }

    // No raw CustomerID in the warehouse: 16-hex-digit pseudonyms only.
    let raw = raw_customer_ids();
    assert!(raw.contains("17850"), "the sample has the customers it is known for");
    // Nor under the aws runs' .nightjar/ (history, logs, local artifacts).
    let ids: Vec<String> = raw.iter().cloned().collect();
    support::project::assert_absent(
        &support::project::everything_stored(&remote.path().join(".nightjar")),
        &ids,
        true,
    );
    for table in ["orders", "customers", "invoices"] {
        let rows = db
            .query(&format!("SELECT DISTINCT customerid::text FROM {table}"), &[])
            .await
            .unwrap();
        assert!(!rows.is_empty());
        for r in rows {
            let Some(v) = r.get::<_, Option<String>>(0) else {
                continue;
            };
            assert!(
                v.len() == 16 && v.bytes().all(|b| b.is_ascii_hexdigit()) && !raw.contains(&v),
                "{table}.customerid holds `{v}`, not a pseudonym"
            );
        }
    }
    // The staged files were deleted after each load; the input is untouched.
    assert_eq!(aws.keys("staging/").await, Vec::<String>::new());
    assert_eq!(aws.keys("input/retail_nightly/").await.len(), 3);
    // The raw zone on S3: each date's export copied as received.
    let archived = aws.keys("archive/retail_nightly/").await;
    assert_eq!(
        archived,
        RETAIL_DATES
            .iter()
            .map(|d| format!("archive/retail_nightly/{d}/{d}.csv"))
            .collect::<Vec<_>>()
    );
    let copy = aws
        .s3
        .get_object()
        .bucket(&aws.bucket)
        .key(&archived[0])
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let raw = std::fs::read(repo().join(format!("data/sample/online-retail/by-day/{}.csv", RETAIL_DATES[0]))).unwrap();
    assert!(
        copy.as_ref() == raw.as_slice(),
        "the archived copy is the file as received"
    );

    // Events: every aws run's start and end went to SQS.
    let events = aws.events().await;
    let ends: Vec<(String, String)> = events
        .iter()
        .filter(|e| e["kind"] == "run_succeeded")
        .map(|e| {
            (
                e["dag"].as_str().unwrap().to_string(),
                e["logical_date"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(ends.len(), 5, "{ends:?}");
    assert!(ends.contains(&("multi_source".into(), "2024-03-01".into())), "{ends:?}");
    assert!(events.iter().all(|e| e["env"] == "aws"));
    let loads = events
        .iter()
        .filter(|e| e["kind"] == "task_succeeded" && e["task"] == "load_invoice_lines")
        .count();
    assert_eq!(loads, 4);

    drop(api);
    aws.clean_up().await;
}

/// Every value of every table of PostgreSQL `schema`, one per line.
async fn pg_schema_text(db: &tokio_postgres::Client, schema: &str) -> String {
    let tables = db
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1",
            &[&schema],
        )
        .await
        .unwrap();
    let mut text = String::new();
    for t in tables {
        let name: String = t.get(0);
        let rows = db
            .query(&format!("SELECT t::text FROM \"{schema}\".\"{name}\" t"), &[])
            .await
            .unwrap();
        for r in rows {
            text.push_str(&r.get::<_, String>(0));
            text.push('\n');
        }
    }
    text
}

/// The customer names and card numbers of the café sample (fields 3 and 7).
fn cafe_pii() -> Vec<String> {
    let mut out = BTreeSet::new();
    for f in files(&repo().join("data/sample/cafe")) {
        let mut r = csv::ReaderBuilder::new().has_headers(false).from_path(&f).unwrap();
        for rec in r.records() {
            let rec = rec.unwrap();
            out.insert(rec[2].to_string());
            if let Some((_, number)) = rec[6].split_once(',') {
                out.insert(number.to_string());
            }
        }
    }
    out.into_iter().collect()
}

const CAFE_TABLES: &[&str] = &["cafe_branches", "cafe_products", "cafe_orders", "cafe_order_items"];
const INGEST_DATE: &str = "2024-05-01";

/// cafe_branches and customer_ingest under `--env aws`: the same rows as
/// under `--env local`, customer_ingest's projects each in their own
/// Redshift schema, and a failed customer_ingest run alerting the env's SQS
/// queue (`report.alerts`, in place of the DAG's local command).
#[tokio::test(flavor = "multi_thread")]
async fn cafe_and_customer_ingest_run_unchanged_under_env_aws() {
    let aws = Aws::start("cafe").await;
    aws.upload(&repo().join("data/sample/cafe"), "input/cafe_branches/")
        .await;
    aws.upload(&repo().join("data/sample/customer_ingest"), "input/customer_ingest/")
        .await;
    // The projects' schemas live beside the server's own: start clean.
    let db = aws.server.db().await;
    db.batch_execute("DROP SCHEMA IF EXISTS acme CASCADE; DROP SCHEMA IF EXISTS globex CASCADE")
        .await
        .unwrap();
    let (local, remote) = (project(&aws, ""), project(&aws, ""));
    for (dir, env) in [(&local, "local"), (&remote, "aws")] {
        for date in ["2021-02-22", "2021-02-23"] {
            run(dir.path(), &["dags/cafe_branches.toml", "--date", date, "--env", env]).await;
        }
        run(
            dir.path(),
            &["dags/customer_ingest.toml", "--date", INGEST_DATE, "--env", env],
        )
        .await;
    }

    let want = sqlite_counts(local.path(), CAFE_TABLES);
    eprintln!("cafe rows per table: {want:?}");
    assert!(want.values().all(|n| *n > 0), "{want:?}");
    assert_eq!(aws.counts(CAFE_TABLES).await, want, "cafe: redshift vs sqlite");
    for project in ["acme", "globex"] {
        let file = local.path().join(format!(".nightjar/warehouse.{project}.db"));
        let want = sqlite_file_counts(&file, &["customers"]);
        assert_eq!(want["customers"], 4);
        let table = format!("{project}.customers");
        let got = aws.counts(&[table.as_str()]).await;
        assert_eq!(got[&table], want["customers"], "{project}: redshift vs sqlite");
    }
    // The café views give the local views' rows, every row of every view.
    let sqlite = rusqlite::Connection::open(local.path().join(".nightjar/warehouse.db")).unwrap();
    let mut compared = 0;
    for (view, order) in views::CAFE {
        compared += views::compare(&sqlite, &db, view, order).await;
    }
    assert!(compared > 20, "{compared} view rows compared");
    // Isolation: no project's table in the server's own schema.
    let stray = db
        .query(
            "SELECT 1 FROM information_schema.tables WHERE table_name = 'customers' AND table_schema = $1",
            &[&aws.server.schema],
        )
        .await
        .unwrap();
    assert!(stray.is_empty(), "a customers table in the server's own schema");
    // No card number in the warehouse: the sample's cards are masked.
    let cards = db
        .query_one("SELECT COUNT(*) FROM cafe_orders WHERE card_number ~ '[0-9]{8}'", &[])
        .await;
    match cards {
        Ok(r) => assert_eq!(r.get::<_, i64>(0), 0),
        Err(e) => panic!("reading cafe_orders.card_number: {e}"),
    }

    // No customer name or card number anywhere the aws runs stored: their
    // .nightjar/ (history, logs, artifacts) and the warehouse's schemas.
    let pii = cafe_pii();
    assert!(pii.len() > 100 && pii.iter().any(|v| v.len() >= 13), "{}", pii.len());
    let mut stored = support::project::everything_stored(&remote.path().join(".nightjar"));
    for schema in [aws.server.schema.as_str(), "acme", "globex"] {
        stored.push((schema.into(), pg_schema_text(&db, schema).await));
    }
    assert!(
        stored.iter().any(|(_, t)| t.contains("Chesterfield")),
        "the tables were read"
    );
    support::project::assert_absent(&stored, &pii, false);
    for raw in ["Ada Lovelace", "ada.lovelace@example.com", "Ada.Lovelace@Example.COM"] {
        assert!(!stored.iter().any(|(_, t)| t.contains(raw)), "`{raw}` stored");
    }

    // A file with a date written a third way: acme's standardize quarantines
    // it and fails; the env's alert queue gets the run_failed document.
    let bad = "customer_id,name,email,signup_date,country\nA-009,Zed Failing,zed@x.example,May 2nd,US\n";
    aws.s3
        .put_object()
        .bucket(&aws.bucket)
        .key("input/customer_ingest/acme/incoming/late-2024-05-02.csv")
        .body(bad.as_bytes().to_vec().into())
        .send()
        .await
        .unwrap();
    let out = try_run(
        remote.path(),
        &["dags/customer_ingest.toml", "--date", "2024-05-02", "--env", "aws"],
    )
    .await;
    assert!(!out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut alerts = Vec::new();
    for _ in 0..50 {
        alerts.extend(aws.drain(&aws.alerts).await);
        if !alerts.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0]["kind"], "run_failed");
    assert_eq!(alerts[0]["dag"], "customer_ingest");
    assert_eq!(alerts[0]["logical_date"], "2024-05-02");
    assert!(alerts[0].to_string().contains("acme_standardize"), "{}", alerts[0]);
    assert!(
        !alerts[0].to_string().contains("Zed Failing"),
        "no raw name in the alert"
    );
    // The DAG's own (local) target was replaced in this env, not added to.
    assert!(!remote.path().join(".nightjar/alerts").exists());

    db.batch_execute("DROP SCHEMA IF EXISTS acme CASCADE; DROP SCHEMA IF EXISTS globex CASCADE")
        .await
        .unwrap();
    aws.clean_up().await;
}

/// Rewrites a file of a scratch project.
fn edit(path: &Path, f: impl Fn(String) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    std::fs::write(path, f(text)).unwrap();
}

/// Rows of every `<task>/<name>.parquet` artifact of `task` under `dir`'s
/// artifact store, by output name.
fn artifact_rows(dir: &Path, task: &str) -> BTreeMap<String, i64> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    files(&dir.join(".nightjar/artifacts"))
        .into_iter()
        .filter(|f| {
            f.extension().is_some_and(|e| e == "parquet")
                && f.parent().and_then(Path::file_name).is_some_and(|n| n == task)
        })
        .map(|f| {
            let reader = SerializedFileReader::new(std::fs::File::open(&f).unwrap()).unwrap();
            let name = f.file_stem().unwrap().to_string_lossy().into_owned();
            (name, reader.metadata().file_metadata().num_rows())
        })
        .collect()
}

/// The Online Retail year (305 files, 541,909 rows), normalized and loaded
/// through the Data API test server in one run: every warehouse table
/// holds exactly the rows its upstream task wrote.
#[tokio::test(flavor = "multi_thread")]
async fn retail_year_normalized_loads_through_the_data_api_with_exact_counts() {
    let aws = Aws::start("year").await;
    let dir = project(&aws, "");
    // One run over every file: the extract reads the glob, the loads replace.
    edit(&dir.path().join("jobs/retail/extract.toml"), |s| {
        s.replace("{{ ds }}.csv", "*.csv")
    });
    edit(&dir.path().join("dags/retail_nightly.toml"), |s| {
        s.replace("mode = \"replace_partition\"", "mode = \"replace\"")
            .replace("partition = { column = \"order_date\", value = \"{{ ds }}\" }\n", "")
    });
    let data = repo().join("../shared/data/online-retail/by-day");
    assert!(data.is_dir(), "the Online Retail data in ../shared/data");
    let input = format!("input={}", data.display());
    run(
        dir.path(),
        &[
            "dags/retail_nightly.toml",
            "--date",
            "2011-12-09",
            "--env",
            "aws",
            "--var",
            &input,
            // Local input: a local raw zone (the archive is on the input's side).
            "--var",
            "archive=archive/retail_nightly",
        ],
    )
    .await;

    let normalized = artifact_rows(dir.path(), "normalize");
    let cleaned = artifact_rows(dir.path(), "clean");
    eprintln!("normalize wrote {normalized:?}; clean wrote {cleaned:?}");
    let mut want = BTreeMap::new();
    for t in ["customers", "products", "invoices", "invoice_lines"] {
        want.insert(t.to_string(), normalized[t]);
    }
    want.insert("orders".into(), cleaned["default"]);
    want.insert("cancelled_orders".into(), cleaned["cancelled"]);
    // The year as known from the data set: every kept line is an invoice line.
    assert_eq!(want["invoice_lines"], want["orders"]);
    assert!(want["orders"] > 500_000 && want["cancelled_orders"] > 9_000, "{want:?}");
    let tables: Vec<&str> = want.keys().map(String::as_str).collect();
    assert_eq!(aws.counts(&tables).await, want, "warehouse vs the upstream outputs");
    assert_eq!(aws.keys("staging/").await, Vec::<String>::new());
    aws.clean_up().await;
}

/// `POST {endpoint}/moto-api/config`: let moto run state machines.
fn enable_sfn_execution() {
    let endpoint = nightjar::testenv::aws_endpoint();
    let hostport = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let body = r#"{"stepfunctions": {"execute_state_machine": true}}"#;
    let mut s = std::net::TcpStream::connect(hostport).expect("connecting to moto");
    write!(
        s,
        "POST /moto-api/config HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 20") || resp.starts_with("HTTP/1.0 20"),
        "{resp}"
    );
}

/// A `nightjar worker` process, killed when dropped.
struct Worker(std::process::Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The CustomerID values (as text) of the Parquet file `bytes`, if it has
/// that column.
fn customer_ids_in_parquet(bytes: Vec<u8>) -> Vec<String> {
    use arrow::array::Array;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
        .unwrap()
        .build()
        .unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        let schema = batch.schema();
        for (i, f) in schema.fields().iter().enumerate() {
            if f.name().eq_ignore_ascii_case("customerid") {
                let text = arrow::compute::cast(batch.column(i), &arrow::datatypes::DataType::Utf8).unwrap();
                let text = text.as_any().downcast_ref::<arrow::array::StringArray>().unwrap();
                out.extend(text.iter().flatten().map(str::to_string));
            }
        }
    }
    out
}

/// The retail DAG, unchanged, through Step Functions on moto: every task a
/// `nightjar worker` takes from SQS, artifacts in S3, the warehouse the
/// Data API test server. Same row counts as a local run; no raw
/// CustomerID in any artifact in S3.
#[tokio::test(flavor = "multi_thread")]
async fn retail_runs_through_step_functions_with_artifacts_in_s3() {
    enable_sfn_execution();
    let aws = Aws::start("pipesfn").await;
    aws.upload(
        &repo().join("data/sample/online-retail/by-day"),
        "input/retail_nightly/",
    )
    .await;
    let tasks = aws
        .sqs
        .create_queue()
        .queue_name(format!("nj-pipesfn-tasks-{}", std::process::id()))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let prefix = format!("njpa{}-", std::process::id());
    let dispatch = format!(
        "dispatch = \"stepfunctions\"\nartifacts = \"s3://{}/artifacts/\"\n\
         sfn = {{ resource = \"sqs\", queue = \"{tasks}\", heartbeat = \"10s\", role_arn = \"arn:aws:iam::123456789012:role/nightjar\", \
         name_prefix = \"{prefix}\", region = \"us-east-1\", endpoint_url = \"{}\", poll = \"300ms\" }}",
        aws.bucket,
        nightjar::testenv::aws_endpoint()
    );
    let (local, remote) = (project(&aws, ""), project(&aws, &dispatch));
    let workers: Vec<Worker> = (0..2)
        .map(|_| {
            Worker(
                command(remote.path())
                    .args(["worker", "--queue", &tasks, "--env", "aws", "--concurrency", "4"])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .expect("spawning nightjar worker"),
            )
        })
        .collect();
    let started = std::time::Instant::now();
    run(
        remote.path(),
        &["dags/retail_nightly.toml", "--date", "2010-12-01", "--env", "aws"],
    )
    .await;
    eprintln!(
        "retail_nightly through Step Functions: {:.1}s",
        started.elapsed().as_secs_f64()
    );
    drop(workers);
    run(
        local.path(),
        &["dags/retail_nightly.toml", "--date", "2010-12-01", "--env", "local"],
    )
    .await;

    let want = sqlite_counts(local.path(), RETAIL_TABLES);
    assert!(want.values().all(|n| *n > 0), "{want:?}");
    assert_eq!(
        aws.counts(RETAIL_TABLES).await,
        want,
        "retail via Step Functions: redshift vs sqlite"
    );

    // Every task's artifacts went to S3; none holds a raw CustomerID.
    let keys = aws.keys("artifacts/").await;
    assert!(
        keys.iter().any(|k| k.ends_with("/normalize/customers.parquet")),
        "{keys:#?}"
    );
    // The pii task purged the raw output of `extract` it read, in S3 too.
    assert!(
        !keys.iter().any(|k| k.contains("/extract/") && k.ends_with(".parquet")),
        "{keys:#?}"
    );
    let raw = raw_customer_ids();
    let mut leaks = Vec::new();
    // Every artifact left must be free of raw CustomerIDs.
    for key in keys.iter().filter(|k| k.ends_with(".parquet")) {
        let body = aws
            .s3
            .get_object()
            .bucket(&aws.bucket)
            .key(key)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes()
            .to_vec();
        let leaked: Vec<String> = customer_ids_in_parquet(body)
            .into_iter()
            .filter(|v| raw.contains(v.trim_end_matches(".0")))
            .take(3)
            .collect();
        if !leaked.is_empty() {
            leaks.push(format!("s3://{}/{key}: {leaked:?}", aws.bucket));
        }
    }
    assert!(
        leaks.is_empty(),
        "raw CustomerIDs in S3 artifacts:\n{}",
        leaks.join("\n")
    );

    // Clean up the state machine this test deployed.
    let sfn = aws_sdk_sfn::Client::new(&nightjar::aws::sdk_config(&nightjar::testenv::aws_options()).await);
    if let Ok(l) = sfn.list_state_machines().send().await {
        for m in l.state_machines().iter().filter(|m| m.name().starts_with(&prefix)) {
            let _ = sfn
                .delete_state_machine()
                .state_machine_arn(m.state_machine_arn())
                .send()
                .await;
        }
    }
    let _ = aws.sqs.delete_queue().queue_url(&tasks).send().await;
    aws.clean_up().await;
}
