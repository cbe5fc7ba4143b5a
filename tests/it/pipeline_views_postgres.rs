//! The PostgreSQL / Redshift views (`sql/*/views.postgres.sql`) give the
//! same rows as the SQLite ones: the retail and café pipelines run on the
//! local warehouse, their tables are copied into a schema of the test
//! PostgreSQL (with the column names and types its loads make: lower case,
//! TIMESTAMP, DATE, NUMERIC), the PostgreSQL views are created there, and
//! every view is compared row by row with its SQLite twin.

use crate::support::project::{Project, repo};
use crate::support::views;
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
    for (view, order) in views::RETAIL.iter().chain(views::CAFE) {
        compared += views::compare(&sqlite, &pg, view, order).await;
    }
    assert!(compared > 200, "{compared} rows compared");
    pg.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
