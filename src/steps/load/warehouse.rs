//! `load.warehouse`: the input into a table of whatever warehouse the
//! run's env names, so one DAG file loads SQLite with `--env local` and
//! Redshift with `--env aws`.
//!
//! ```toml
//! [[task]]
//! id = "load_orders"
//! kind = "load.warehouse"
//! table = "orders"
//! mode = "replace_partition"
//! partition = { column = "order_date", value = "{{ ds }}" }
//! create = true
//! needs = ["orders"]
//! ```
//!
//! The connection (default `warehouse`) is looked up in the env of the
//! run; its kind picks the load: `sqlite` runs `load.sqlite`, `postgres`
//! runs `load.postgres`, `redshift` runs `load.redshift`, each with the
//! same keys and modes. An option that does not apply to the
//! connection's kind (the Redshift staging options on SQLite or
//! PostgreSQL, a `schema.table` on SQLite) fails the task at once,
//! without retries, naming the option, the connection and its kind.

use std::collections::BTreeMap;

use anyhow::Result;
use async_trait::async_trait;
use serde::Deserialize;

use super::postgres::PostgresLoad;
use super::redshift::RedshiftLoad;
use super::sqlite::SqliteLoad;
use super::table::TableLoad;
use crate::engine::ConfigError;
use crate::spec::project::Connection;
use crate::steps::{ConfigProblem, Step, StepConfig, StepContext, StepKind, StepOutput};

pub const KIND: StepKind = StepKind::of::<WarehouseLoad>(
    "load.warehouse",
    "loads the input into a table of the env's warehouse connection (sqlite, postgres or redshift): one DAG for every env",
    EXAMPLE,
);

const EXAMPLE: &str = r#"kind = "load.warehouse"
connection = "warehouse"
table = "orders"
mode = "replace_partition"
partition = { column = "order_date", value = "{{ ds }}" }
create = true
"#;

/// Loads the task's input into a table of the connection named by
/// `connection` in the run's env, with the load of the connection's kind:
/// `sqlite` (`load.sqlite`), `postgres` (`load.postgres`) or `redshift`
/// (`load.redshift`). Each runs in one transaction: a failed or cancelled
/// load changes nothing. The keys are those of every table load (see
/// [`TableLoad`]).
///
/// For a DAG that runs in every env: bare table names (SQLite has no
/// schemas; give the PostgreSQL or Redshift connection a `schema` or
/// search path instead), `create = true` unless the tables come from DDL,
/// and no Redshift-only option.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct WarehouseLoad(pub TableLoad);

impl StepConfig for WarehouseLoad {
    fn check(&self) -> Vec<ConfigProblem> {
        // The kind-independent checks (with PostgreSQL's and Redshift's
        // table names); what depends on the connection's kind is checked
        // when the env is known (see `pick`).
        RedshiftLoad(self.0.clone()).check()
    }

    /// An option the env's connection does not support, for `validate`
    /// (which checks every env of the project).
    fn check_connections(&self, connections: &BTreeMap<String, Connection>) -> Vec<ConfigProblem> {
        connections
            .get(&self.0.connection)
            .map_or_else(Vec::new, |c| unfit_options(&self.0, &c.kind))
    }

    fn build(self) -> Result<Box<dyn Step>> {
        Ok(Box::new(self))
    }
}

/// The options of `t` a connection of `kind` does not support (on top of
/// the checks of every table load).
fn unfit_options(t: &TableLoad, kind: &str) -> Vec<ConfigProblem> {
    match kind {
        "sqlite" => super::sqlite::unfit_options(t),
        "postgres" => super::postgres::unfit_options(t),
        "redshift" => Vec::new(),
        other => vec![
            ConfigProblem::new(
                "connection",
                format!(
                    "connection `{}` is a {other} connection; tables load into sqlite, postgres or redshift connections",
                    t.connection
                ),
            )
            .hint("name a warehouse connection in `connection`"),
        ],
    }
}

#[async_trait]
impl Step for WarehouseLoad {
    async fn run(&self, cx: &StepContext) -> Result<StepOutput> {
        let (kind, step) = self.pick(cx)?;
        cx.log.note(&format!(
            "connection `{}` is {}: loading as {kind}",
            self.0.connection, cx.connections[&self.0.connection].kind,
        ));
        step.run(cx).await
    }
}

impl WarehouseLoad {
    /// The load for the connection's kind, or why the config does not fit
    /// it (a [`ConfigError`]: retrying cannot help).
    fn pick(&self, cx: &StepContext) -> Result<(&'static str, Box<dyn Step>)> {
        let name = &self.0.connection;
        let Some(conn) = cx.connections.get(name) else {
            // The shared lookup gives the error listing what exists.
            crate::warehouse::connection(cx, name, "sqlite", "load.warehouse")?;
            unreachable!("the lookup failed");
        };
        if let Some(p) = unfit_options(&self.0, &conn.kind).into_iter().next() {
            return Err(ConfigError(format!(
                "load.warehouse: `{}`: {} (connection `{name}` in env `{}` is a {} connection){}",
                p.path,
                p.message,
                cx.env,
                conn.kind,
                p.hint.map(|h| format!("; {h}")).unwrap_or_default()
            ))
            .into());
        }
        let target = self.0.clone();
        Ok(match conn.kind.as_str() {
            "sqlite" => ("load.sqlite", Box::new(SqliteLoad(target))),
            "postgres" => ("load.postgres", Box::new(PostgresLoad(target))),
            _ => ("load.redshift", Box::new(RedshiftLoad(target))),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};

    use super::*;
    use crate::spec::project::Connection;
    use crate::steps::testing::Harness;

    /// A connection: (name, kind, settings).
    type Conn<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);

    fn harness(conns: &[Conn]) -> Harness {
        let mut h = Harness::new("load");
        h.cx.connections = Arc::new(
            conns
                .iter()
                .map(|(name, kind, settings)| {
                    let settings = settings.iter().map(|(k, v)| (k.to_string(), (*v).into())).collect();
                    let c = Connection {
                        name: name.to_string(),
                        kind: kind.to_string(),
                        settings,
                    };
                    (name.to_string(), c)
                })
                .collect::<BTreeMap<_, _>>(),
        );
        let batch = RecordBatch::try_from_iter([
            (
                "InvoiceNo",
                Arc::new(StringArray::from(vec!["536365", "536366"])) as ArrayRef,
            ),
            ("Quantity", Arc::new(Int64Array::from(vec![6, 2]))),
        ])
        .unwrap();
        h.input("orders", &[batch]);
        h
    }

    const CONFIG: &str = "table = \"orders\"\nmode = \"replace_partition\"\npartition = { column = \"order_date\", value = \"{{ ds }}\" }\ncreate = true\n";

    #[tokio::test]
    async fn a_sqlite_connection_loads_with_load_sqlite() {
        let h = harness(&[("warehouse", "sqlite", &[("path", "wh.db")])]);
        let config = CONFIG.replace("{{ ds }}", "2010-12-01");
        let out = h.run(&KIND, &config).await.unwrap();
        assert_eq!(out.output.metrics.rows_out, 2);
        assert!(out.log.contains("loading as load.sqlite"), "{}", out.log);
        let db = rusqlite::Connection::open(h.path().join("wh.db")).unwrap();
        let n: i64 = db
            .query_row("SELECT COUNT(*) FROM orders WHERE order_date = '2010-12-01'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 2);
    }

    #[tokio::test]
    async fn a_postgres_connection_loads_with_load_postgres() {
        let url = crate::testenv::postgres_url();
        let schema = format!("nj_wh_{}_{}", std::process::id(), fastrand::u32(..));
        let (pg, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        pg.batch_execute(&format!("CREATE SCHEMA {schema}")).await.unwrap();
        let h = harness(&[("warehouse", "postgres", &[("url", &url), ("schema", &schema)])]);
        let out = h.run(&KIND, &CONFIG.replace("{{ ds }}", "2010-12-01")).await;
        let count = pg
            .query_one(&format!("SELECT COUNT(*) FROM {schema}.orders"), &[])
            .await
            .map(|r| r.get::<_, i64>(0));
        pg.batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
            .await
            .unwrap();
        let out = out.unwrap();
        assert!(out.log.contains("loading as load.postgres"), "{}", out.log);
        assert_eq!(count.unwrap(), 2);
    }

    #[tokio::test]
    async fn options_that_do_not_fit_the_connection_fail_without_retry() {
        let h = harness(&[("warehouse", "sqlite", &[("path", "wh.db")]), ("files", "s3", &[])]);
        let err = |config: &str| {
            let h = &h;
            let config = config.to_string();
            async move {
                let e = h.run(&KIND, &config).await.err().expect("the load fails");
                assert!(e.downcast_ref::<ConfigError>().is_some(), "not a config error: {e:#}");
                e.to_string()
            }
        };
        let e = err("table = \"orders\"\nkeep_staged = true").await;
        assert!(
            e.contains("`keep_staged` only applies to Redshift")
                && e.contains("connection `warehouse` in env `local` is a sqlite connection"),
            "{e}"
        );
        let e = err("table = \"dw.orders\"").await;
        assert!(e.contains("SQLite has no schemas"), "{e}");
        let e = err("table = \"orders\"\nconnection = \"files\"").await;
        assert!(e.contains("is a s3 connection"), "{e}");
        let e = h
            .run(&KIND, "table = \"orders\"\nconnection = \"nope\"")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no connection `nope` in env `local`"), "{e}");
    }

    #[test]
    fn validation_without_an_env() {
        let problems = |config: &str| -> Vec<String> {
            KIND.check(toml::from_str(config).unwrap())
                .unwrap()
                .into_iter()
                .map(|p| p.path)
                .collect()
        };
        assert!(problems(CONFIG).is_empty());
        assert_eq!(
            problems("table = \"a.b.c\"\nmode = \"merge\"\nslices = 0"),
            ["table", "key", "slices"]
        );
        let (path, msg) = KIND
            .check(toml::from_str("table = \"t\"\nmode = \"upsert\"").unwrap())
            .unwrap_err();
        assert_eq!(path, "mode");
        assert!(msg.contains("replace_partition"), "{msg}");
        let (path, _) = KIND
            .check(toml::from_str("table = \"t\"\nstagin = 1").unwrap())
            .unwrap_err();
        assert_eq!(path, "stagin");
    }
}

#[cfg(test)]
mod validate_tests {
    /// `validate` checks a load against every env's connection: an option
    /// one env's warehouse does not support is an error, naming the env.
    #[test]
    fn validate_names_the_env_whose_connection_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("nightjar.toml"),
            "[env.aws.connections.warehouse]\nkind = \"redshift\"\nworkgroup = \"wg\"\ndatabase = \"dev\"\n",
        )
        .unwrap();
        let dag = dir.path().join("d.toml");
        std::fs::write(
            &dag,
            "name = \"d\"\n[[task]]\nid = \"load\"\nkind = \"load.warehouse\"\ntable = \"orders\"\nkeep_staged = true\n",
        )
        .unwrap();
        let project = crate::spec::Project::load(dir.path()).unwrap();
        let errs = crate::spec::dag::load(&dag, &project, &crate::steps::Registry::builtin())
            .expect_err("keep_staged does not fit the local sqlite warehouse")
            .to_string();
        assert!(
            errs.contains("d.toml:6:") && errs.contains("in env `local`: `keep_staged` only applies to Redshift"),
            "{errs}"
        );
        assert!(!errs.contains("in env `aws`"), "{errs}");
        // Without it, both envs accept the task.
        std::fs::write(
            &dag,
            "name = \"d\"\n[[task]]\nid = \"load\"\nkind = \"load.warehouse\"\ntable = \"orders\"\n",
        )
        .unwrap();
        crate::spec::dag::load(&dag, &project, &crate::steps::Registry::builtin()).unwrap();
    }
}
