//! The `sql` step on the real PostgreSQL and on Redshift through the Data
//! API test server (its SQLite backend is tested in src/steps/sql.rs).

use crate::support;

use crate::support::redshift_data_api::DataApiServer;
use crate::support::step::StepRun;
use arrow::array::AsArray;
use arrow::datatypes::{DataType, Int64Type};
use nightjar::data::artifact::read_all;
use nightjar::steps::sql::KIND;

const SETUP: &str = "CREATE TABLE sales (day DATE, store TEXT, amount NUMERIC(10,2), qty INT);\n\
                     INSERT INTO sales VALUES ('{{ ds }}', 'a', 2.50, 1), ('{{ ds }}', 'b', 1.25, 3);";

const REPORT: &str = "statements = [\"SELECT day, COUNT(*) AS n, SUM(qty) AS qty, SUM(amount) AS total FROM sales GROUP BY day\"]\noutput = true";

async fn check_report(run: &StepRun) {
    let out = run.run(&KIND, REPORT).await.unwrap();
    assert_eq!(out.datasets.len(), 1);
    let (schema, batches) = read_all(&out.datasets[0]).unwrap();
    let types: Vec<_> = schema.fields().iter().map(|f| f.data_type().clone()).collect();
    assert_eq!(
        types,
        [DataType::Date32, DataType::Int64, DataType::Int64, DataType::Utf8]
    );
    let b = &batches[0];
    assert_eq!(b.num_rows(), 1);
    assert_eq!(b.column(1).as_primitive::<Int64Type>().value(0), 2);
    assert_eq!(b.column(2).as_primitive::<Int64Type>().value(0), 4);
    assert_eq!(b.column(3).as_string::<i32>().value(0), "3.75");
}

#[tokio::test]
async fn postgres_files_templates_transactions_and_output() {
    let schema = format!("sqlstep_{}", std::process::id());
    let (db, conn) = tokio_postgres::connect(&nightjar::testenv::postgres_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    db.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ))
    .await
    .unwrap();
    let mut run = StepRun::new("report", "2010-12-01");
    run.connection(
        "warehouse",
        "postgres",
        &format!("url = \"{}\"\nschema = \"{schema}\"", nightjar::testenv::postgres_url()),
    );
    std::fs::create_dir_all(run.dir.path().join("sql")).unwrap();
    std::fs::write(run.dir.path().join("sql/setup.sql"), SETUP).unwrap();
    run.run(&KIND, "files = [\"sql/setup.sql\"]").await.unwrap();
    check_report(&run).await;
    let err = run
        .run(
            &KIND,
            "statements = [\"INSERT INTO sales VALUES ('2010-12-02', 'c', 1, 1)\", \"SELECT nope FROM sales\"]",
        )
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("statement 2") && format!("{err:#}").contains("nope"),
        "{err:#}"
    );
    let n: i64 = db
        .query_one(&format!("SELECT count(*) FROM {schema}.sales"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2, "the first insert was rolled back");
    db.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

#[tokio::test]
async fn redshift_through_the_data_api() {
    support::emulator_credentials();
    let server = DataApiServer::start("sqlstep").await;
    let mut run = StepRun::new("report", "2010-12-01");
    run.connection(
        "warehouse",
        "redshift",
        &format!(
            "workgroup = \"wg\"\ndatabase = \"dev\"\nregion = \"us-east-1\"\ndata_api_endpoint_url = \"{}\"",
            server.endpoint
        ),
    );
    std::fs::create_dir_all(run.dir.path().join("sql")).unwrap();
    std::fs::write(
        run.dir.path().join("sql/setup.sql"),
        SETUP.replace("qty INT)", "qty INT ENCODE az64) DISTSTYLE EVEN SORTKEY (day)"),
    )
    .unwrap();
    run.run(&KIND, "files = [\"sql/setup.sql\"]").await.unwrap();
    let batch = server
        .calls()
        .into_iter()
        .find(|(op, _)| op == "BatchExecuteStatement")
        .expect("two statements go as one batch");
    assert_eq!(batch.1["Sqls"].as_array().unwrap().len(), 2);
    server.page_rows(1);
    check_report(&run).await;
    let err = run
        .run(
            &KIND,
            "statements = [\"INSERT INTO sales VALUES ('2010-12-02', 'c', 1, 1)\", \"SELECT nope FROM sales\"]",
        )
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("statement 2 failed on Redshift"), "{err:#}");
    let n: i64 = server
        .db()
        .await
        .query_one("SELECT count(*) FROM sales", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    server.drop_schema().await;
}

/// SQL per dialect: the retail DDL named once (`sql/retail/normalize.sql`,
/// which does not exist) runs as `normalize.<kind>.sql` on each connection:
/// SQLite, PostgreSQL and Redshift (the Data API test server).
#[tokio::test]
async fn the_retail_ddl_named_once_runs_in_each_dialect() {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(!repo.join("sql/retail/normalize.sql").exists());
    let project = |run: &StepRun| {
        let to = run.dir.path().join("sql/retail");
        std::fs::create_dir_all(&to).unwrap();
        for d in ["sqlite", "postgres", "redshift"] {
            let name = format!("normalize.{d}.sql");
            std::fs::copy(repo.join("sql/retail").join(&name), to.join(&name)).unwrap();
        }
    };
    const DDL: &str = "files = [\"sql/retail/normalize.sql\"]";
    let tables = ["customers", "invoice_lines", "invoices", "products"];

    // SQLite.
    let mut run = StepRun::new("ddl", "2010-12-01");
    run.connection("warehouse", "sqlite", "path = \"wh.db\"");
    project(&run);
    run.run(&KIND, DDL).await.unwrap();
    let db = rusqlite::Connection::open(run.dir.path().join("wh.db")).unwrap();
    let mut st = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    let got: Vec<String> = st.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    assert_eq!(got, tables);

    // PostgreSQL.
    let schema = format!("sqlddl_{}", std::process::id());
    let (pg, conn) = tokio_postgres::connect(&nightjar::testenv::postgres_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    pg.batch_execute(&format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ))
    .await
    .unwrap();
    let mut run = StepRun::new("ddl", "2010-12-01");
    run.connection(
        "warehouse",
        "postgres",
        &format!("url = \"{}\"\nschema = \"{schema}\"", nightjar::testenv::postgres_url()),
    );
    project(&run);
    run.run(&KIND, DDL).await.unwrap();
    let list =
        format!("SELECT table_name::text FROM information_schema.tables WHERE table_schema = '{schema}' ORDER BY 1");
    let got: Vec<String> = pg.query(&list, &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    pg.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
    assert_eq!(got, tables);

    // Redshift: the redshift file (with its DISTSTYLE) is the one sent.
    support::emulator_credentials();
    let server = DataApiServer::start("sqlddl").await;
    let mut run = StepRun::new("ddl", "2010-12-01");
    run.connection(
        "warehouse",
        "redshift",
        &format!(
            "workgroup = \"wg\"\ndatabase = \"dev\"\nregion = \"us-east-1\"\ndata_api_endpoint_url = \"{}\"",
            server.endpoint
        ),
    );
    project(&run);
    run.run(&KIND, DDL).await.unwrap();
    let sent = server
        .calls()
        .into_iter()
        .find(|(op, _)| op == "BatchExecuteStatement")
        .unwrap()
        .1;
    assert!(sent["Sqls"].to_string().contains("DISTSTYLE ALL"), "{sent}");
    let got: Vec<String> = server
        .db()
        .await
        .query(&list.replace(&schema, &server.schema), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .filter(|t: &String| !t.starts_with("sys_") && !t.starts_with("stl_"))
        .collect();
    server.drop_schema().await;
    assert_eq!(got, tables);
}
