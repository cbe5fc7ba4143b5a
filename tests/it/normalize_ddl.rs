//! The generated DDL runs on real databases: PostgreSQL (the test server,
//! through psql) and SQLite (rusqlite), and its keys are enforced there.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use nightjar::normalize::ddl::{Dialect, TableInfo, generate, table_info};
use nightjar::normalize::model::{EntitySpec, Plan};
use nightjar::normalize::split::{SplitOptions, split};

const ENTITIES: &str = r#"
[customers]
key = ["CustomerID"]
attributes = ["Country"]
[products]
key = ["StockCode"]
attributes = ["Description"]
surrogate_key = "product_id"
[invoices]
key = ["InvoiceNo"]
attributes = ["CustomerID"]
[invoice_lines]
key = ["InvoiceNo", "line_no"]
line_number = "line_no"
attributes = ["StockCode", "UnitPrice"]
"#;

fn tables() -> (Plan, BTreeMap<String, TableInfo>) {
    let specs: BTreeMap<String, EntitySpec> = toml::from_str(ENTITIES).unwrap();
    let plan = Plan::new(&specs);
    let schema = Arc::new(Schema::new(vec![
        Field::new("InvoiceNo", DataType::Utf8, true),
        Field::new("CustomerID", DataType::Int64, true),
        Field::new("Country", DataType::Utf8, true),
        Field::new("StockCode", DataType::Utf8, true),
        Field::new("Description", DataType::Utf8, true),
        Field::new("UnitPrice", DataType::Float64, true),
    ]));
    let flat = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["1", "1", "2"])),
            Arc::new(Int64Array::from(vec![Some(10), Some(10), None])),
            Arc::new(StringArray::from(vec!["UK", "UK", "UK"])),
            Arc::new(StringArray::from(vec!["A", "B", "A"])),
            Arc::new(StringArray::from(vec!["mug", "pen", "mug"])),
            Arc::new(Float64Array::from(vec![1.5, 2.0, 1.5])),
        ],
    )
    .unwrap();
    let s = split(&plan, &flat, &SplitOptions::default()).unwrap();
    let t = s
        .entities
        .iter()
        .map(|e| {
            (
                e.name.clone(),
                table_info(std::slice::from_ref(&e.batch), &e.batch.schema()),
            )
        })
        .collect();
    (plan, t)
}

fn psql(url: &str, sql: &str) -> std::process::Output {
    Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql runs")
}

#[test]
fn postgres_ddl_runs_and_enforces_keys() {
    let url = nightjar::testenv::postgres_url();
    let (plan, t) = tables();
    let sql = generate(&plan, &t, Dialect::Postgres).unwrap();
    let schema = format!("ddl_{}_{}", std::process::id(), fastrand::u32(..));
    let script = format!("CREATE SCHEMA {schema}; SET search_path TO {schema};\n{sql}");
    let out = psql(&url, &script);
    assert!(out.status.success(), "{}\n{sql}", String::from_utf8_lossy(&out.stderr));
    let with = |q: &str| psql(&url, &format!("SET search_path TO {schema}; {q}"));
    let ok = with(
        "INSERT INTO products VALUES (7, 'A', 'mug'); INSERT INTO invoices VALUES ('1', NULL); \
         INSERT INTO invoice_lines VALUES ('1', 1, 7, 1.5);",
    );
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let orphan = with("INSERT INTO invoice_lines VALUES ('1', 2, 8, 1.5);");
    assert!(!orphan.status.success(), "an orphan product_id must be refused");
    let dup = with("INSERT INTO products VALUES (9, 'A', 'cup');");
    assert!(!dup.status.success(), "the natural key is unique");
    let _ = psql(&url, &format!("DROP SCHEMA {schema} CASCADE"));
}

#[test]
fn sqlite_ddl_runs_and_enforces_keys() {
    let (plan, t) = tables();
    let sql = generate(&plan, &t, Dialect::Sqlite).unwrap();
    let c = rusqlite::Connection::open_in_memory().unwrap();
    c.execute_batch("PRAGMA foreign_keys = ON;").unwrap();
    c.execute_batch(&sql).unwrap_or_else(|e| panic!("{e}\n{sql}"));
    c.execute_batch(
        "INSERT INTO customers VALUES (10, 'UK'); INSERT INTO invoices VALUES ('1', 10); \
         INSERT INTO products VALUES (7, 'A', 'mug'); INSERT INTO invoice_lines VALUES ('1', 1, 7, 1.5);",
    )
    .unwrap();
    assert!(c.execute_batch("INSERT INTO invoices VALUES ('2', 99);").is_err());
    assert!(c.execute_batch("INSERT INTO invoices VALUES ('1', 10);").is_err());
    // Again: IF NOT EXISTS makes the script re-runnable.
    c.execute_batch(&sql).unwrap();
}
