//! One real day of the Online Retail data set through the retail DAG into
//! the SQLite warehouse, checked against the source file itself.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::support::project::{Project, repo};

fn shared_by_day() -> PathBuf {
    let p = repo().join("../shared/data/online-retail/by-day");
    assert!(p.is_dir(), "the Online Retail data set is expected at {}", p.display());
    p.canonicalize().unwrap()
}

/// A scratch copy of the project's DAGs, jobs and SQL.
fn project() -> Project {
    Project::new()
}

fn nightjar(project: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .current_dir(project)
        .args(args)
        .output()
        .unwrap()
}

/// What a day file holds, counted independently of nightjar.
struct Expected {
    all: usize,
    cancelled: usize,
    /// Distinct non-cancelled rows.
    distinct: usize,
    invoices: usize,
    products: usize,
    customers: usize,
}

fn expected(file: &Path) -> Expected {
    let mut r = csv::Reader::from_path(file).unwrap();
    let (mut all, mut cancelled) = (0, 0);
    let mut distinct = HashSet::new();
    let (mut invoices, mut products, mut customers) = (HashSet::new(), HashSet::new(), HashSet::new());
    for rec in r.records() {
        let rec = rec.unwrap();
        all += 1;
        if rec[0].starts_with('C') {
            cancelled += 1;
        } else {
            distinct.insert(rec.iter().map(str::to_string).collect::<Vec<_>>());
            invoices.insert(rec[0].to_string());
            products.insert(rec[1].to_string());
            if !rec[6].is_empty() {
                customers.insert(rec[6].to_string());
            }
        }
    }
    Expected {
        all,
        cancelled,
        distinct: distinct.len(),
        invoices: invoices.len(),
        products: products.len(),
        customers: customers.len(),
    }
}

/// StockCode -> product_id as loaded.
fn product_ids(db: &Path) -> Vec<(String, i64)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare("SELECT StockCode, product_id FROM products ORDER BY StockCode")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn count(db: &Path, sql: &str) -> usize {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as usize
}

#[test]
fn one_day_of_online_retail_lands_in_the_warehouse() {
    let data = shared_by_day();
    let p = project();
    let input = format!("input={}", data.display());
    let date = "2010-12-01";
    let out = nightjar(p.path(), &["run", "retail_nightly", "--date", date, "--var", &input]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let e = expected(&data.join(format!("{date}.csv")));
    let (all, cancelled, distinct) = (e.all, e.cancelled, e.distinct);
    let db = p.path().join(".nightjar/warehouse.db");
    assert_eq!(count(&db, "SELECT COUNT(*) FROM orders"), distinct);
    assert_eq!(count(&db, "SELECT COUNT(*) FROM cancelled_orders"), cancelled);
    assert_eq!(
        count(&db, &format!("SELECT COUNT(*) FROM orders WHERE order_date = '{date}'")),
        distinct
    );

    // The run's metrics account for every row of the file.
    let show = nightjar(p.path(), &["show", "retail_nightly@2010-12-01", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let task = |id: &str| {
        v["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["task"]["task_id"] == id)
            .unwrap()["task"]
            .clone()
    };
    assert_eq!(task("extract")["metrics"]["rows_in"], all);
    assert_eq!(task("extract")["metrics"]["rows_out"], all);
    assert_eq!(task("clean")["metrics"]["rows_filtered"], all - cancelled - distinct);

    // The normalized tables: one row per key, references intact.
    let normalized = |db: &Path| {
        [
            count(db, "SELECT COUNT(*) FROM invoice_lines"),
            count(db, "SELECT COUNT(*) FROM invoices"),
            count(db, "SELECT COUNT(*) FROM products"),
            count(db, "SELECT COUNT(*) FROM customers"),
        ]
    };
    assert_eq!(normalized(&db), [distinct, e.invoices, e.products, e.customers]);
    let orphans = "SELECT COUNT(*) FROM invoice_lines l \
                   WHERE l.product_id NOT IN (SELECT product_id FROM products) \
                   OR l.InvoiceNo NOT IN (SELECT InvoiceNo FROM invoices)";
    assert_eq!(count(&db, orphans), 0);
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM invoices WHERE CustomerID IS NOT NULL AND CustomerID NOT IN (SELECT CustomerID FROM customers)"
        ),
        0
    );
    let n = &task("normalize")["metrics"];
    assert_eq!(n["rows_in"], distinct);
    // StockCode -> Description does not hold on this day; it is reported.
    assert!(
        n["extra"]["violations"]["products"]["keys"].as_u64().unwrap() > 0,
        "{n}"
    );
    let ids = product_ids(&db);
    let text = nightjar(p.path(), &["show", "retail_nightly@2010-12-01"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("normalize: entity `products`:") && text.contains("\"StockCode\""),
        "{text}"
    );

    // DDL from the run's outputs, by the job file alone; it runs on SQLite.
    let ddl = nightjar(
        p.path(),
        &[
            "normalize",
            "ddl",
            "jobs/retail/normalize.toml",
            "--dialect",
            "sqlite",
            "--out",
            "-",
        ],
    );
    assert!(ddl.status.success(), "{}", String::from_utf8_lossy(&ddl.stderr));
    let sql = String::from_utf8_lossy(&ddl.stdout);
    assert!(sql.contains("CREATE TABLE IF NOT EXISTS \"invoice_lines\""), "{sql}");
    rusqlite::Connection::open_in_memory()
        .unwrap()
        .execute_batch(&sql)
        .unwrap();

    // Running the date again with --force replaces its rows, never doubles them.
    let out = nightjar(
        p.path(),
        &["run", "retail_nightly", "--date", date, "--var", &input, "--force"],
    );
    assert!(out.status.success());
    assert_eq!(count(&db, "SELECT COUNT(*) FROM orders"), distinct);
    // Merged dimensions and replaced facts: the same tables again, and the
    // other process computed the same surrogate keys.
    assert_eq!(normalized(&db), [distinct, e.invoices, e.products, e.customers]);
    assert_eq!(product_ids(&db), ids);
}

#[test]
fn a_day_without_an_export_is_skipped_not_failed() {
    let data = shared_by_day();
    let p = project();
    let input = format!("input={}", data.display());
    // 2010-12-04 was a Saturday: the retailer exported nothing.
    assert!(!data.join("2010-12-04.csv").exists());
    let out = nightjar(
        p.path(),
        &["run", "retail_nightly", "--date", "2010-12-04", "--var", &input],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let show = nightjar(p.path(), &["show", "retail_nightly@2010-12-04", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(v["run"]["state"], "success");
    let tasks = v["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 12);
    for t in tasks {
        // `archive` (the raw zone's retention) needs no upstream: it runs.
        let want = if t["task"]["task_id"] == "archive" {
            "success"
        } else {
            "skipped"
        };
        assert_eq!(t["task"]["state"], want, "{t}");
        // Skipping is not retried.
        assert!(t["task"]["attempt"].as_u64().unwrap() <= 1, "{t}");
    }
}
