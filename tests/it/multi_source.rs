//! The `multi_source` DAG end to end: sales CSVs, products and payments in
//! the real PostgreSQL server, customers and exchange rates from a real
//! HTTP API on loopback (bearer token, paged), into one table of the SQLite
//! warehouse, with one row of quality metrics per date; customer names only
//! as tokens.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::json;

use crate::support;
use crate::support::api_server;

use crate::support::project::{copy_dir, repo};
use api_server::{Request, Response, Server};

const TOKEN: &str = "ms-test-token-7f3a9c";

fn api(r: &Request) -> Response {
    if r.headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {TOKEN}")) {
        return Response::raw(401, "{\"error\": \"bad token\"}");
    }
    match r.path.as_str() {
        "/v1/customers" => {
            let all = [
                json!({"customer_id": 1, "name": "Ann", "segment": "retail", "address": {"city": "Leeds", "country": "UK"}}),
                json!({"customer_id": 2, "name": "Bruno", "segment": "wholesale", "address": {"city": "Lyon", "country": "FR"}}),
                json!({"customer_id": 3, "name": "Cleo", "segment": null, "address": {"city": null, "country": "US"}}),
                json!({"customer_id": 4, "name": "Dev", "segment": "retail", "address": {"city": "York", "country": "UK"}}),
            ];
            let page: usize = r.query["page"].parse().unwrap();
            let per: usize = r.query["per_page"].parse().unwrap();
            let rows: Vec<_> = all.iter().skip((page - 1) * per).take(per).cloned().collect();
            Response::json(json!({"data": rows, "page": page}))
        }
        "/v1/rates" => {
            assert!(r.query.contains_key("date"));
            Response::json(json!({"base": "GBP", "date": r.query["date"], "rates": [
                {"currency": "GBP", "to_gbp": 1},
                {"currency": "EUR", "to_gbp": 0.85},
                {"currency": "USD", "to_gbp": 0.8}
            ]}))
        }
        _ => Response::raw(404, "{}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn three_kinds_of_source_into_one_table() {
    let url = nightjar::testenv::postgres_url();
    let (pg, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let schema = format!("nj_ms_{}_{}", std::process::id(), fastrand::u32(..));
    pg.batch_execute(&format!(
        "CREATE SCHEMA {schema};
         CREATE TABLE {schema}.products (product_code text PRIMARY KEY, name text, category text, list_price numeric(10,2));
         INSERT INTO {schema}.products VALUES
           ('P-100', 'Widget', 'Electronics', 19.99), ('P-200', 'Chair', ' Home & Garden', 250.00),
           ('P-300', 'Cable', 'ELEC', 4.50), ('P-400', 'Pen', 'office', 1.00);
         CREATE TABLE {schema}.transactions (sale_id int, status text, method text, paid_at timestamptz);
         INSERT INTO {schema}.transactions VALUES
           (1001, 'paid', 'card', '2024-03-01 09:00+00'), (1002, 'paid', 'paypal', '2024-03-01 10:00+00'),
           (1003, 'refunded', 'card', '2024-03-01 11:00+00'), (2001, 'paid', 'card', '2024-03-02 09:00+00');"
    ))
    .await
    .unwrap();
    let server = Server::start(Arc::new(api)).await;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_dir(&repo().join("dags"), &d.join("dags"));
    copy_dir(&repo().join("jobs"), &d.join("jobs"));
    copy_dir(
        &repo().join("data/sample/multi_source"),
        &d.join("data/sample/multi_source"),
    );
    std::fs::write(
        d.join("nightjar.toml"),
        "default_env = \"local\"\n\
         [env.local.connections.shop]\nkind = \"postgres\"\nurl_env = \"MULTI_SOURCE_PG_URL\"\n\
         [env.local.connections.warehouse]\nkind = \"sqlite\"\npath = \".nightjar/warehouse.db\"\n",
    )
    .unwrap();
    let api_var = format!("api={}/v1", server.base);
    let schema_var = format!("shop_schema={schema}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nightjar"));
    cmd.current_dir(d)
        .env("MULTI_SOURCE_PG_URL", &url)
        .env("MULTI_SOURCE_API_TOKEN", TOKEN)
        .args([
            "run",
            "dags/multi_source.toml",
            "--date",
            "2024-03-01",
            "--var",
            &api_var,
            "--var",
            &schema_var,
        ]);
    // Waiting for the child blocks: off the runtime that serves the API.
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");

    let db = rusqlite::Connection::open(d.join(".nightjar/warehouse.db")).unwrap();
    let mut stmt = db
        .prepare(
            "SELECT sale_id, CAST(sale_date AS TEXT), category,
                    CASE WHEN customer_name LIKE 'tok\\_%' ESCAPE '\\' THEN 'tok' ELSE coalesce(customer_name, '-') END,
                    segment, city,
                    CAST(amount_gbp AS TEXT), payment_status, customer_name_missing
             FROM sales_unified ORDER BY sale_id",
        )
        .unwrap();
    let rows: Vec<String> = stmt
        .query_map([], |r| {
            let v: Vec<String> = (0..9)
                .map(|i| match r.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Null => "NULL".to_string(),
                    rusqlite::types::ValueRef::Integer(n) => n.to_string(),
                    rusqlite::types::ValueRef::Real(f) => f.to_string(),
                    rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).to_string(),
                    rusqlite::types::ValueRef::Blob(_) => "blob".into(),
                })
                .collect();
            Ok(v.join("|"))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    eprintln!("{rows:#?}");
    // 7 lines: one duplicate export removed, one absurd quantity (5000)
    // removed by bounds; one date format; amounts in GBP at the day's rate;
    // categories unified; missing customer flagged and filled.
    assert_eq!(rows.len(), 5, "{rows:#?}");
    assert!(
        rows[0].starts_with("1001|2024-03-01|electronics|tok|retail|Leeds|39.98|paid|"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].starts_with("1002|2024-03-01|home|tok|wholesale|Lyon|212.5|paid|"),
        "{}",
        rows[1]
    );
    assert!(
        rows[2].starts_with("1003|2024-03-01|electronics|tok|unknown|unknown|18|refunded|"),
        "{}",
        rows[2]
    );
    assert!(
        rows[3].starts_with("1004|2024-03-01|electronics|-|unknown|unknown|19.99|unpaid|1"),
        "{}",
        rows[3]
    );
    assert!(
        rows[4].starts_with("1006|2024-03-01|uncategorized|-|unknown|unknown|28.8|unpaid|"),
        "{}",
        rows[4]
    );

    // Quality metrics of the date, worked out from the sample by hand: 7
    // lines received, one duplicate export (1002) and one quantity out of
    // bounds (1005) removed; of the 5 kept, two without a known customer
    // (1004 has none, 99 is unknown to the API), one product not in the
    // catalogue (P-500), two without a payment; 39.98 + 212.50 + 18.00 +
    // 19.99 + 28.80 GBP.
    let quality = support::project::rows(&db, "SELECT * FROM sales_quality");
    assert_eq!(quality, ["2024-03-01|7|1|1|5|2|0|1|2|319.27"]);

    // No customer name in the warehouse or under .nightjar/ (the API's raw
    // page was deleted once tokenized).
    let names = ["Ann", "Bruno", "Cleo"].map(String::from);
    support::project::assert_absent(&support::project::everything_stored(&d.join(".nightjar")), &names, true);

    // The token and the database URL are nowhere under .nightjar/.
    for f in walk(&d.join(".nightjar")) {
        let bytes = std::fs::read(&f).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(TOKEN), "the API token is in {}", f.display());
        assert!(!text.contains(&url), "the PostgreSQL URL is in {}", f.display());
    }
    pg.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
