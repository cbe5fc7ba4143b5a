//! `extract.sql` incremental extraction end to end through `nightjar run`
//! against the real PostgreSQL and MySQL-compatible (MariaDB) servers, one
//! scenario for both: the watermark moves with each successful run, rows
//! updated between runs are extracted again, and a run whose downstream
//! load fails leaves the watermark where it was.

use crate::support;

use std::path::Path;
use std::process::Command;

use mysql_async::prelude::Queryable;

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// (rows_out, watermark_from, watermark) of the extract task of the
/// latest run of `date`.
fn extract_record(dir: &Path, date: &str) -> (i64, String, String) {
    let db = rusqlite::Connection::open(dir.join(".nightjar/state.db")).unwrap();
    let metrics: String = db
        .query_row(
            "SELECT t.metrics FROM task_instances t JOIN runs r USING (run_id)
             WHERE t.task_id = 'extract' AND r.logical_date = ?1 ORDER BY r.seq DESC LIMIT 1",
            [date],
            |r| r.get(0),
        )
        .unwrap();
    let m: serde_json::Value = serde_json::from_str(&metrics).unwrap();
    let text = |k: &str| m["extra"][k].as_str().unwrap_or("").to_string();
    (
        m["rows_out"].as_i64().unwrap(),
        text("watermark_from"),
        text("watermark"),
    )
}

fn warehouse_ids(dir: &Path) -> Vec<i64> {
    let db = rusqlite::Connection::open(dir.join(".nightjar/warehouse.db")).unwrap();
    let mut s = db.prepare("SELECT id FROM tx ORDER BY rowid").unwrap();
    s.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect()
}

/// A source database for the scenario: a client to change its rows, the
/// connection kind, the URL nightjar gets (through an environment
/// variable) and the table's name.
enum Source {
    Postgres(tokio_postgres::Client),
    Mysql(mysql_async::Conn),
}

impl Source {
    async fn exec(&mut self, sql: &str) {
        match self {
            Source::Postgres(c) => c.batch_execute(sql).await.unwrap(),
            Source::Mysql(c) => c.query_drop(sql).await.unwrap(),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Source::Postgres(_) => "postgres",
            Source::Mysql(_) => "mysql",
        }
    }

    /// A UTC timestamp literal of the watermark column's type (PostgreSQL
    /// `timestamptz`; MySQL `TIMESTAMP` in the test session's UTC).
    fn ts(&self, t: &str) -> String {
        match self {
            Source::Postgres(_) => format!("'{t}+00'"),
            Source::Mysql(_) => format!("'{t}'"),
        }
    }
}

#[tokio::test]
async fn postgres_incremental_runs_move_the_watermark_only_after_downstream_success() {
    let url = nightjar::testenv::postgres_url();
    let (pg, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let schema = format!("nj_inc_{}_{}", std::process::id(), fastrand::u32(..));
    let mut src = Source::Postgres(pg);
    src.exec(&format!("CREATE SCHEMA {schema}; CREATE TABLE {schema}.tx (id int PRIMARY KEY, amount numeric(10,2), updated_at timestamptz NOT NULL)")).await;
    incremental_scenario(&mut src, &url, &format!("{schema}.tx")).await;
    src.exec(&format!("DROP SCHEMA {schema} CASCADE")).await;
}

#[tokio::test]
async fn mysql_incremental_runs_move_the_watermark_only_after_downstream_success() {
    let url = nightjar::testenv::mysql_url();
    let mut conn = mysql_async::Conn::from_url(&url).await.unwrap();
    let db = format!("nj_inc_{}_{}", std::process::id(), fastrand::u32(..));
    conn.query_drop("SET time_zone = '+00:00'").await.unwrap();
    let mut src = Source::Mysql(conn);
    src.exec(&format!("CREATE DATABASE {db}")).await;
    src.exec(&format!(
        "CREATE TABLE {db}.tx (id INT PRIMARY KEY, amount DECIMAL(10,2), updated_at TIMESTAMP(6) NOT NULL)"
    ))
    .await;
    incremental_scenario(&mut src, &url, &format!("{db}.tx")).await;
    src.exec(&format!("DROP DATABASE {db}")).await;
}

/// Five daily runs of extract (incremental on `updated_at`) -> load ->
/// check over `table` (id, amount, updated_at; empty), changing rows in
/// between; run 3's check fails.
async fn incremental_scenario(src: &mut Source, url: &str, table: &str) {
    src.exec(&format!(
        "INSERT INTO {table} VALUES (1, 10.00, {}), (2, 20.00, {}), (3, 30.00, {})",
        src.ts("2010-12-01 10:00:00"),
        src.ts("2010-12-01 11:00:00"),
        src.ts("2010-12-01 12:00:00")
    ))
    .await;

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "nightjar.toml",
        &format!(
            "default_env = \"local\"\n[env.local.connections.shop]\nkind = \"{}\"\nurl_env = \"NJ_INC_TEST_URL\"\n\
             [env.local.connections.warehouse]\nkind = \"sqlite\"\npath = \".nightjar/warehouse.db\"\n",
            src.kind()
        ),
    );
    write(
        d,
        "dags/inc.toml",
        &format!(
            r#"name = "inc"
schedule = "@daily"
start = 2010-12-01

[defaults]
retries = 0

[[task]]
id = "extract"
kind = "extract.sql"
connection = "shop"
table = "{table}"
incremental = {{ column = "updated_at" }}

[[task]]
id = "load"
kind = "load.sqlite"
connection = "warehouse"
table = "tx"
mode = "append"
needs = ["extract"]

[[task]]
id = "check"
kind = "shell"
command = "test ! -f fail.flag"
needs = ["load"]
"#
        ),
    );
    let nightjar = |date: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_nightjar"))
            .current_dir(d)
            .env("NJ_INC_TEST_URL", url)
            .args(["run", "dags/inc.toml", "--date", date])
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };

    // Run 1: the whole table (no watermark yet).
    let (ok, log) = nightjar("2010-12-01");
    assert!(ok, "{log}");
    assert_eq!(
        extract_record(d, "2010-12-01"),
        (3, String::new(), "2010-12-01 12:00:00.000000+00:00".into())
    );
    assert_eq!(warehouse_ids(d), [1, 2, 3]);

    // Row 2 changes, row 4 arrives: run 2 reads exactly those.
    src.exec(&format!(
        "UPDATE {table} SET amount = 21.00, updated_at = {} WHERE id = 2",
        src.ts("2010-12-02 09:00:00")
    ))
    .await;
    src.exec(&format!(
        "INSERT INTO {table} VALUES (4, 40.00, {})",
        src.ts("2010-12-02 10:00:00")
    ))
    .await;
    let (ok, log) = nightjar("2010-12-02");
    assert!(ok, "{log}");
    assert_eq!(
        extract_record(d, "2010-12-02"),
        (
            2,
            "2010-12-01 12:00:00.000000+00:00".into(),
            "2010-12-02 10:00:00.000000+00:00".into()
        )
    );
    assert_eq!(warehouse_ids(d), [1, 2, 3, 2, 4]);

    // Run 3 extracts row 5, but its downstream fails.
    src.exec(&format!(
        "INSERT INTO {table} VALUES (5, 50.00, {})",
        src.ts("2010-12-03 08:00:00")
    ))
    .await;
    std::fs::write(d.join("fail.flag"), "").unwrap();
    let (ok, log) = nightjar("2010-12-03");
    assert!(!ok, "the check task fails the run: {log}");
    assert_eq!(extract_record(d, "2010-12-03").2, "2010-12-03 08:00:00.000000+00:00");

    // Run 4 starts again from run 2's watermark: row 5 is read again.
    std::fs::remove_file(d.join("fail.flag")).unwrap();
    let (ok, log) = nightjar("2010-12-04");
    assert!(ok, "{log}");
    assert_eq!(
        extract_record(d, "2010-12-04"),
        (
            1,
            "2010-12-02 10:00:00.000000+00:00".into(),
            "2010-12-03 08:00:00.000000+00:00".into()
        )
    );
    // Nothing new: the watermark stays.
    let (ok, log) = nightjar("2010-12-05");
    assert!(ok, "{log}");
    assert_eq!(
        extract_record(d, "2010-12-05"),
        (
            0,
            "2010-12-03 08:00:00.000000+00:00".into(),
            "2010-12-03 08:00:00.000000+00:00".into()
        )
    );
    assert_eq!(warehouse_ids(d), [1, 2, 3, 2, 4, 5, 5]);
    // The URL (and so any password in it) is in no log or artifact, nor in
    // `nightjar show`.
    let password = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('@'))
        .and_then(|(cred, _)| cred.split_once(':'))
        .map(|(_, p)| p.to_string());
    let mut texts: Vec<(String, String)> = support::files_under(&d.join(".nightjar"))
        .into_iter()
        .filter_map(|e| Some((e.display().to_string(), std::fs::read_to_string(&e).ok()?)))
        .collect();
    for args in [&["show", "inc@2010-12-04"][..], &["logs", "inc@2010-12-04", "extract"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_nightjar"))
            .current_dir(d)
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && text.contains("extract"),
            "nightjar {args:?}: {text}"
        );
        texts.push((format!("nightjar {args:?}"), text));
    }
    for (place, text) in texts {
        assert!(!text.contains(url), "the connection URL is in {place}");
        if let Some(p) = &password {
            assert!(!text.contains(&format!(":{p}@")), "the password is in {place}");
        }
    }
}
