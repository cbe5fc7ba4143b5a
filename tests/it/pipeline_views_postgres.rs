//! The PostgreSQL / Redshift views (`sql/*/views.postgres.sql`) give the
//! same rows as the SQLite ones: the retail and café pipelines run on the
//! local warehouse, their tables are copied into a schema of the test
//! PostgreSQL (with the column names and types its loads make: lower case,
//! TIMESTAMP, DATE, NUMERIC), the PostgreSQL views are created there, and
//! every view is compared row by row with its SQLite twin.

use crate::support::project::{Project, repo};
use tokio_postgres::types::ToSql;

/// The PostgreSQL type of a column as `load.postgres` would create it.
fn pg_type(column: &str, sqlite_type: &str) -> &'static str {
    match (column, sqlite_type.to_ascii_uppercase().as_str()) {
        ("invoicedate" | "timestamp", _) => "TIMESTAMP",
        ("order_date", _) => "DATE",
        (_, "INTEGER") => "BIGINT",
        (_, "REAL") => "DOUBLE PRECISION",
        (_, "NUMERIC") => "NUMERIC",
        _ => "TEXT",
    }
}

async fn copy_table(sqlite: &rusqlite::Connection, pg: &tokio_postgres::Client, table: &str) {
    let cols: Vec<(String, String)> = sqlite
        .prepare(&format!("SELECT name, type FROM pragma_table_info('{table}')"))
        .unwrap()
        .query_map([], |r| Ok((r.get::<_, String>(0)?.to_lowercase(), r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!cols.is_empty(), "no table {table}");
    let ddl: Vec<String> = cols.iter().map(|(c, t)| format!("\"{c}\" {}", pg_type(c, t))).collect();
    pg.batch_execute(&format!("CREATE TABLE {table} ({})", ddl.join(", ")))
        .await
        .unwrap();
    let params: Vec<String> = cols
        .iter()
        .enumerate()
        .map(|(i, (c, t))| format!("CAST(${}::text AS {})", i + 1, pg_type(c, t)))
        .collect();
    let insert = pg
        .prepare(&format!("INSERT INTO {table} VALUES ({})", params.join(", ")))
        .await
        .unwrap();
    let select = format!(
        "SELECT {} FROM {table}",
        cols.iter()
            .map(|(c, _)| format!("CAST(\"{c}\" AS TEXT)"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut st = sqlite.prepare(&select).unwrap();
    let rows: Vec<Vec<Option<String>>> = st
        .query_map([], |r| (0..cols.len()).map(|i| r.get::<_, Option<String>>(i)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for row in &rows {
        let args: Vec<&(dyn ToSql + Sync)> = row.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        pg.execute(&insert, &args).await.unwrap();
    }
}

/// Values equal as text, or as numbers to the cent.
fn same(a: &str, b: &str) -> bool {
    a == b
        || match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => (x - y).abs() < 0.0051,
            _ => false,
        }
}

async fn compare(sqlite: &rusqlite::Connection, pg: &tokio_postgres::Client, view: &str, order: &str) -> usize {
    let cols: Vec<String> = sqlite
        .prepare(&format!("SELECT name FROM pragma_table_info('{view}')"))
        .unwrap()
        .query_map([], |r| r.get::<_, String>(0))
        .unwrap()
        .map(|c| c.unwrap().to_lowercase())
        .collect();
    // Aliased, so that ORDER BY names the view's columns, not their text
    // (PostgreSQL names a cast after its column).
    let list = cols
        .iter()
        .enumerate()
        .map(|(i, c)| format!("CAST({c} AS TEXT) AS c{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let query = format!("SELECT {list} FROM {view} ORDER BY {order}");
    let mut st = sqlite.prepare(&query).unwrap_or_else(|e| panic!("{query}: {e}"));
    let lite: Vec<Vec<Option<String>>> = st
        .query_map([], |r| (0..cols.len()).map(|i| r.get::<_, Option<String>>(i)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let theirs: Vec<Vec<Option<String>>> = pg
        .query(&query, &[])
        .await
        .unwrap_or_else(|e| panic!("{query}: {e}"))
        .iter()
        .map(|r| (0..cols.len()).map(|i| r.get::<_, Option<String>>(i)).collect())
        .collect();
    assert_eq!(lite.len(), theirs.len(), "{view}: row counts");
    for (a, b) in lite.iter().zip(&theirs) {
        let equal = a.iter().zip(b).all(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => same(x, y),
            (None, None) => true,
            _ => false,
        });
        assert!(equal, "{view}: SQLite {a:?} vs PostgreSQL {b:?}");
    }
    assert!(!lite.is_empty(), "{view} is empty");
    lite.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_views_give_the_sqlite_views_rows() {
    let p = Project::new()
        .with("data/sample/online-retail")
        .with("tests/fixtures/cafe");
    // The runs block this test's thread: nothing else runs on the runtime yet.
    for date in ["2010-12-01", "2010-12-02", "2010-12-03"] {
        p.ok(&["run", "retail_nightly", "--date", date]);
    }
    for date in ["2021-02-23", "2021-02-24"] {
        p.ok(&[
            "run",
            "cafe_branches",
            "--date",
            date,
            "--var",
            "input=tests/fixtures/cafe",
        ]);
    }
    let sqlite = p.warehouse();

    let url = nightjar::testenv::postgres_url();
    let (pg, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let schema = format!("nj_views_{}_{}", std::process::id(), fastrand::u32(..));
    pg.batch_execute(&format!("CREATE SCHEMA {schema}; SET search_path TO {schema}"))
        .await
        .unwrap();
    for t in [
        "customers",
        "products",
        "invoices",
        "invoice_lines",
        "cafe_branches",
        "cafe_products",
        "cafe_orders",
        "cafe_order_items",
    ] {
        copy_table(&sqlite, &pg, t).await;
    }
    for f in ["sql/retail/views.postgres.sql", "sql/cafe/views.postgres.sql"] {
        let sql = std::fs::read_to_string(repo().join(f)).unwrap();
        pg.batch_execute(&sql).await.unwrap_or_else(|e| panic!("{f}: {e:?}"));
        // Twice: a refresh replaces the views.
        pg.batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{f} again: {e:?}"));
    }
    let mut compared = 0;
    for (view, order) in [
        ("sales_per_hour", "1"),
        ("sales_per_day", "1"),
        ("sales_per_month", "1"),
        ("top_products_per_month", "sales_month, product_rank, stockcode"),
        ("invoice_totals", "invoiceno"),
        ("highest_invoices", "revenue DESC, invoiceno"),
        ("customer_purchase_history", "customerid, invoiceno"),
        ("customer_lifetime_value", "customerid"),
        ("cafe_revenue_per_branch_day", "branch, order_date"),
        ("cafe_product_sales", "product, size"),
        ("cafe_best_selling_products", "sales_rank, product, size"),
        ("cafe_worst_selling_products", "sales_rank, product, size"),
        ("cafe_spend_per_payment_type", "payment_type"),
        ("cafe_busiest_hours", "hour"),
    ] {
        compared += compare(&sqlite, &pg, view, order).await;
    }
    assert!(compared > 200, "{compared} rows compared");
    pg.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
