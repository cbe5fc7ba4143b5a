//! `sql`: run SQL files (from `sql/`) or inline statements against a
//! connection: `sqlite` (the embedded warehouse), `postgres`, or `redshift`
//! (through the Data API).
//!
//! ```toml
//! [[task]]
//! id = "daily_revenue"
//! kind = "sql"
//! connection = "warehouse"
//! files = ["sql/views/daily_revenue.sql"]
//! output = true          # the last statement's rows become this task's dataset
//! ```
//!
//! All statements of a task run in one transaction (a Data API batch on
//! Redshift): a failure leaves nothing half done. SQL files are rendered
//! as templates first (`{{ ds }}`, `{{ interval_start }}`, `{{ run_id }}`,
//! ... but not `vars`, which only inline statements see).
//!
//! SQL per dialect: a file `sql/retail/views.sql` is run as
//! `sql/retail/views.<kind>.sql` when that file exists, where `<kind>` is
//! the connection's kind (`sqlite`, `postgres`, `redshift`); otherwise as
//! written. So one DAG names `views.sql` and each env runs its dialect's
//! file, with `views.sql` (if any) as the portable fallback.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use serde::Deserialize;

use crate::data::artifact::DatasetWriter;
use crate::redshift::RedshiftConnection;
use crate::redshift::data_api::DataApi;
use crate::spec::duration::HumanDuration;
use crate::spec::template::{TemplateContext, render_str};
use crate::steps::{ConfigProblem, Metrics, Step, StepConfig, StepContext, StepKind, StepOutput};
use crate::warehouse::sql_text::{ColumnKind, split_statements, text_rows_to_batch};

pub const KIND: StepKind = StepKind::of::<SqlStep>(
    "sql",
    "runs SQL files or statements against a connection (sqlite, postgres, redshift) in one transaction",
    EXAMPLE,
);

const EXAMPLE: &str = r#"kind = "sql"
connection = "warehouse"
files = ["sql/views/daily_revenue.sql"]
statements = ["DELETE FROM audit WHERE day = '{{ ds }}'"]
"#;

/// Runs SQL against a connection: the `files` (in order), then the inline
/// `statements`, all in one transaction. With `output = true` the rows of
/// the last statement (a SELECT) become the task's dataset, which
/// downstream tasks read like any other.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlStep {
    /// A connection of kind `sqlite`, `postgres` or `redshift` (default
    /// `warehouse`).
    #[serde(default = "default_connection")]
    pub connection: String,
    /// SQL files, relative to the project folder (usually under `sql/`),
    /// split into statements at `;`. They are rendered as templates. For
    /// `dir/name.sql`, `dir/name.<kind>.sql` is run instead when it exists
    /// (`<kind>` = the connection's kind: sqlite, postgres, redshift).
    #[serde(default)]
    pub files: Vec<String>,
    /// Statements written in the job, run after the files.
    #[serde(default)]
    pub statements: Vec<String>,
    /// Make the last statement's result the task's output dataset.
    #[serde(default)]
    pub output: bool,
    /// How long Redshift statements may run before they are cancelled
    /// (default 1h).
    #[serde(default = "default_timeout")]
    pub statement_timeout: HumanDuration,
}

fn default_connection() -> String {
    "warehouse".into()
}

fn default_timeout() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(3600))
}

impl StepConfig for SqlStep {
    fn check(&self) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        if self.files.is_empty() && self.statements.is_empty() {
            p.push(
                ConfigProblem::new("files", "nothing to run: give `files` or `statements`")
                    .hint("e.g. `files = [\"sql/views/daily_revenue.sql\"]`"),
            );
        }
        for (i, f) in self.files.iter().enumerate() {
            if f.trim().is_empty() {
                p.push(ConfigProblem::new(format!("files[{i}]"), "empty file name"));
            }
        }
        for (i, s) in self.statements.iter().enumerate() {
            if split_statements(s).is_empty() {
                p.push(ConfigProblem::new(format!("statements[{i}]"), "empty statement"));
            }
        }
        p
    }

    fn build(self) -> Result<Box<dyn Step>> {
        Ok(Box::new(self))
    }
}

#[async_trait]
impl Step for SqlStep {
    async fn run(&self, cx: &StepContext) -> Result<StepOutput> {
        let Some(conn) = cx.connections.get(&self.connection) else {
            // The shared lookup gives the error listing what exists.
            crate::warehouse::connection(cx, &self.connection, "sqlite", "sql")?;
            unreachable!("the lookup failed");
        };
        let statements = self.statements(cx, &conn.kind)?;
        if statements.is_empty() {
            bail!("the SQL files hold no statements");
        }
        let result = match conn.kind.as_str() {
            "sqlite" => {
                let path = cx.resolve(
                    conn.settings
                        .get("path")
                        .and_then(|v| v.as_str())
                        .unwrap_or(".nightjar/warehouse.db"),
                );
                let output = self.output;
                let stmts = statements.clone();
                cx.blocking(move |_| run_sqlite(&path, &stmts, output)).await?
            }
            "postgres" => {
                let client = crate::warehouse::postgres::connect(conn).await?;
                run_postgres(&client, &statements, self.output).await?
            }
            "redshift" => {
                let rc = Arc::new(RedshiftConnection::from_connection(conn)?);
                let api = DataApi::new(rc).await;
                run_redshift(&api, &statements, self.output, self.statement_timeout.0, cx).await?
            }
            other => bail!(
                "connection `{}` is a {other} connection; the sql step runs on sqlite, postgres and redshift connections",
                self.connection
            ),
        };
        cx.log.note(&format!(
            "ran {} statements on `{}` ({})",
            statements.len(),
            self.connection,
            conn.kind
        ));
        let mut metrics = Metrics::default();
        metrics.extra.insert("statements".into(), statements.len().into());
        metrics.extra.insert("rows_affected".into(), result.affected.into());
        let mut datasets = Vec::new();
        if let Some(batch) = result.rows {
            let dir = cx.artifact_dir();
            let mut w = DatasetWriter::create(&dir, &cx.task, "default", batch.schema())?;
            w.write(&batch)?;
            let d = w.finish()?;
            metrics.rows_out = batch.num_rows() as u64;
            metrics.rows_in = batch.num_rows() as u64;
            datasets.push(d);
        }
        Ok(StepOutput { datasets, metrics })
    }
}

impl SqlStep {
    /// Every statement to run on a `dialect` connection, files (rendered)
    /// first.
    fn statements(&self, cx: &StepContext, dialect: &str) -> Result<Vec<String>> {
        let ctx = TemplateContext {
            ds: cx.ds.clone(),
            ds_nodash: cx.ds.replace('-', ""),
            interval_start: cx.interval_start.clone(),
            interval_end: cx.interval_end.clone(),
            run_id: cx.run_id.clone(),
            dag: cx.dag.clone(),
            task: cx.task.clone(),
            vars: BTreeMap::new(),
            env: TemplateContext::process_env(),
        };
        let mut out = Vec::new();
        for f in &self.files {
            let path = dialect_file(&cx.resolve(f), dialect)?;
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading SQL file {} (from `files`)", path.display()))?;
            let text = render_str(&text, &ctx).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            out.extend(split_statements(&text));
        }
        for s in &self.statements {
            out.extend(split_statements(s));
        }
        Ok(out)
    }
}

/// The file to run for `path` on a `dialect` connection: `name.<dialect>.sql`
/// next to `name.sql` when it exists, else `path` itself.
fn dialect_file(path: &std::path::Path, dialect: &str) -> Result<std::path::PathBuf> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let Some(stem) = name.strip_suffix(".sql") else {
        return Ok(path.to_path_buf());
    };
    let specific = path.with_file_name(format!("{stem}.{dialect}.sql"));
    if specific.is_file() {
        return Ok(specific);
    }
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    // Neither: say which dialects the file exists for.
    let others: Vec<String> = ["sqlite", "postgres", "redshift"]
        .iter()
        .map(|d| path.with_file_name(format!("{stem}.{d}.sql")))
        .filter(|p| p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if others.is_empty() {
        bail!(
            "SQL file {} (from `files`) does not exist, nor {}",
            path.display(),
            specific.display()
        );
    }
    bail!(
        "no SQL for a {dialect} connection: neither {} nor {} exists (there is {}); add the {dialect} version",
        specific.display(),
        path.display(),
        others.join(", ")
    )
}

/// What the statements did.
struct Ran {
    affected: u64,
    rows: Option<RecordBatch>,
}

fn run_sqlite(path: &std::path::Path, statements: &[String], output: bool) -> Result<Ran> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut db = rusqlite::Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    db.busy_timeout(std::time::Duration::from_secs(30))?;
    let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut affected = 0u64;
    let mut rows = None;
    for (i, sql) in statements.iter().enumerate() {
        let last = i + 1 == statements.len();
        let mut stmt = tx.prepare(sql).with_context(|| format!("statement {}: {sql}", i + 1))?;
        if last && output {
            let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
            let mut kinds = vec![None::<ColumnKind>; names.len()];
            let mut cells: Vec<Vec<Option<String>>> = Vec::new();
            let mut q = stmt.query([])?;
            while let Some(r) = q.next()? {
                let mut row = Vec::with_capacity(names.len());
                for (c, kind) in kinds.iter_mut().enumerate() {
                    use rusqlite::types::ValueRef;
                    let (k, v) = match r.get_ref(c)? {
                        ValueRef::Null => (None, None),
                        ValueRef::Integer(n) => (Some(ColumnKind::Int), Some(n.to_string())),
                        ValueRef::Real(f) => (Some(ColumnKind::Float), Some(f.to_string())),
                        ValueRef::Text(t) => (Some(ColumnKind::Text), Some(String::from_utf8_lossy(t).into_owned())),
                        ValueRef::Blob(_) => (Some(ColumnKind::Text), None),
                    };
                    // A column holding several storage classes is text;
                    // integers and reals together are floats.
                    *kind = match (*kind, k) {
                        (None, k) | (k, None) => k,
                        (Some(a), Some(b)) if a == b => Some(a),
                        (Some(ColumnKind::Int | ColumnKind::Float), Some(ColumnKind::Int | ColumnKind::Float)) => {
                            Some(ColumnKind::Float)
                        }
                        _ => Some(ColumnKind::Text),
                    };
                    row.push(v);
                }
                cells.push(row);
            }
            let cols: Vec<(String, ColumnKind)> = names
                .into_iter()
                .zip(kinds)
                .map(|(n, k)| (n, k.unwrap_or(ColumnKind::Text)))
                .collect();
            rows = Some(text_rows_to_batch(&cols, &cells)?);
        } else {
            affected += stmt
                .raw_execute()
                .with_context(|| format!("statement {}: {sql}", i + 1))? as u64;
        }
    }
    tx.commit()?;
    Ok(Ran { affected, rows })
}

async fn run_postgres(db: &tokio_postgres::Client, statements: &[String], output: bool) -> Result<Ran> {
    use crate::warehouse::postgres::describe;
    db.batch_execute("BEGIN").await?;
    let mut affected = 0u64;
    let mut rows = None;
    let result: Result<()> = async {
        for (i, sql) in statements.iter().enumerate() {
            let last = i + 1 == statements.len();
            let fail = |e: tokio_postgres::Error| anyhow::anyhow!("statement {}: {} ({sql})", i + 1, describe(&e));
            if last && output {
                let prepared = db.prepare(sql).await.map_err(fail)?;
                let cols: Vec<(String, ColumnKind)> = prepared
                    .columns()
                    .iter()
                    .map(|c| (c.name().to_string(), ColumnKind::of_type_name(c.type_().name())))
                    .collect();
                let messages = db.simple_query(sql).await.map_err(fail)?;
                let cells: Vec<Vec<Option<String>>> = messages
                    .into_iter()
                    .filter_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => {
                            Some((0..r.len()).map(|c| r.get(c).map(str::to_string)).collect())
                        }
                        _ => None,
                    })
                    .collect();
                rows = Some(text_rows_to_batch(&cols, &cells)?);
            } else {
                affected += db.execute(sql.as_str(), &[]).await.map_err(fail)?;
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => db.batch_execute("COMMIT").await?,
        Err(e) => {
            let _ = db.batch_execute("ROLLBACK").await;
            return Err(e);
        }
    }
    Ok(Ran { affected, rows })
}

async fn run_redshift(
    api: &DataApi,
    statements: &[String],
    output: bool,
    timeout: std::time::Duration,
    cx: &StepContext,
) -> Result<Ran> {
    let (id, result_id) = if statements.len() == 1 {
        let id = api.submit(&statements[0]).await?;
        (id.clone(), id)
    } else {
        let id = api.submit_batch(statements).await?;
        (id.clone(), format!("{id}:{}", statements.len()))
    };
    let done = api.wait(&id, timeout, &cx.cancel).await.map_err(|e| {
        match e.downcast_ref::<crate::redshift::data_api::Failed>() {
            Some(f) => {
                let n = f.sub.map_or(1, |s| s + 1);
                anyhow::anyhow!(
                    "statement {n} failed on Redshift ({}), nothing was changed: {} ({})",
                    f.id,
                    f.message,
                    statements.get(n - 1).map_or("", String::as_str)
                )
            }
            None => e,
        }
    })?;
    let affected = done.rows.iter().map(|r| (*r).max(0) as u64).sum();
    let rows = if output {
        Some(api.result(&result_id).await?)
    } else {
        None
    };
    Ok(Ran { affected, rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::testing::Harness;

    #[test]
    fn dialect_files_are_picked_by_connection_kind() {
        let dir = tempfile::tempdir().unwrap();
        let views = dir.path().join("views.sql");
        std::fs::write(dir.path().join("views.sqlite.sql"), "SELECT 1").unwrap();
        std::fs::write(dir.path().join("views.postgres.sql"), "SELECT 1").unwrap();
        let picked = |d: &str| dialect_file(&views, d).map(|p| p.file_name().unwrap().to_string_lossy().into_owned());
        assert_eq!(picked("sqlite").unwrap(), "views.sqlite.sql");
        assert_eq!(picked("postgres").unwrap(), "views.postgres.sql");
        let err = picked("redshift").unwrap_err().to_string();
        assert!(
            err.contains("no SQL for a redshift connection") && err.contains("views.sqlite.sql"),
            "{err}"
        );
        // The portable file is the fallback; an explicit dialect file is run as named.
        std::fs::write(&views, "SELECT 1").unwrap();
        assert_eq!(picked("redshift").unwrap(), "views.sql");
        let explicit = dir.path().join("views.sqlite.sql");
        assert_eq!(dialect_file(&explicit, "postgres").unwrap(), explicit);
        assert!(
            dialect_file(&dir.path().join("none.sql"), "sqlite")
                .unwrap_err()
                .to_string()
                .contains("does not exist")
        );
    }

    #[tokio::test]
    async fn sqlite_files_and_statements_in_one_transaction() {
        let mut h = Harness::new("report");
        h.conserves_rows = true;
        h.file(
            "sql/setup.sql",
            "CREATE TABLE IF NOT EXISTS sales (day TEXT, amount REAL);\n\
             INSERT INTO sales VALUES ('{{ ds }}', 2.5), ('{{ ds }}', 1);",
        );
        let mut settings = toml::Table::new();
        settings.insert("path".into(), "wh.db".into());
        h.cx.connections = Arc::new(BTreeMap::from([(
            "warehouse".to_string(),
            crate::spec::project::Connection {
                name: "warehouse".into(),
                kind: "sqlite".into(),
                settings,
            },
        )]));
        let out = h
            .run(
                &KIND,
                "files = [\"sql/setup.sql\"]\nstatements = [\"SELECT day, SUM(amount) AS total, COUNT(*) AS n FROM sales GROUP BY day\"]\noutput = true",
            )
            .await
            .unwrap();
        let b = &out.datasets["default"][0];
        assert_eq!(b.num_rows(), 1);
        let schema = b.schema();
        let types: Vec<_> = schema.fields().iter().map(|f| f.data_type().to_string()).collect();
        assert_eq!(types, ["Utf8", "Float64", "Int64"]);
        // A failing statement rolls back the ones before it.
        let err = h
            .run(
                &KIND,
                "statements = [\"INSERT INTO sales VALUES ('x', 1)\", \"INSERT INTO nope VALUES (1)\"]",
            )
            .await
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("statement 2"), "{err:#}");
        let out = h
            .run(
                &KIND,
                "statements = [\"SELECT COUNT(*) AS n FROM sales\"]\noutput = true",
            )
            .await
            .unwrap();
        let n =
            arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(out.datasets["default"][0].column(0))
                .value(0);
        assert_eq!(n, 2);
    }

    #[test]
    fn config_validation() {
        let v: toml::Value = toml::from_str("connection = \"w\"").unwrap();
        let p = KIND.check(v).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].path, "files");
    }
}
