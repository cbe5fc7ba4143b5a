//! `extract.sql`: a query or a table of a PostgreSQL, MySQL/MariaDB or
//! SQLite database
//! into a dataset, streamed in batches, optionally incremental by a
//! watermark column.
//!
//! Parameters are bound, never spliced into the SQL: write `:name` in the
//! query and give `params = { name = "{{ ds }}" }`. With `incremental`,
//! `:last_watermark` is the largest value of the watermark column that the
//! last successful run extracted.
//!
//! ```toml
//! kind = "extract.sql"
//! connection = "shop"
//! query = "SELECT * FROM transactions WHERE updated_at > :last_watermark ORDER BY updated_at"
//! incremental = { column = "updated_at", initial = "1970-01-01" }
//! ```

mod columns;
mod mysql;
#[cfg(test)]
mod mysql_tests;
mod postgres;
mod sqlite;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use async_trait::async_trait;
use serde::Deserialize;

use self::columns::{ColType, Value, Watermark};
use crate::data::DatasetRef;
use crate::data::artifact::DatasetWriter;
use crate::steps::{ConfigProblem, Metrics, Step, StepConfig, StepContext, StepKind, StepOutput};

pub const KIND: StepKind = StepKind::of::<SqlExtract>(
    "extract.sql",
    "reads a query or a table from PostgreSQL, MySQL or SQLite, optionally incremental",
    EXAMPLE,
);

const EXAMPLE: &str = r#"kind = "extract.sql"
connection = "shop"
query = """
SELECT id, customer_id, amount, currency, updated_at
FROM transactions
WHERE updated_at > :last_watermark AND region = :region
ORDER BY updated_at
"""
params = { region = "{{ vars.region }}" }
incremental = { column = "updated_at", initial = "1970-01-01" }
batch_rows = 50000
"#;

/// The parameter holding the previous watermark.
const LAST_WATERMARK: &str = "last_watermark";

/// Reads a query's rows (or a whole table) from a database connection of
/// `nightjar.toml` (kind `postgres`, `mysql` or `sqlite`).
///
/// Column types map exactly: integers -> int64, real/double -> float64,
/// `numeric(p,s)` -> decimal(p,s) (`numeric` without a precision ->
/// decimal(38,10); a value that does not fit fails the task rather than
/// being rounded), `date` -> date, `timestamp` -> timestamp,
/// `timestamptz` -> timestamp in UTC, text/varchar/uuid/json/jsonb/time ->
/// string, arrays -> JSON text. Other types: cast them in the query.
/// MySQL's types are listed in docs/extract.md (`DECIMAL(p,s)` ->
/// decimal(p,s), `DATETIME` -> timestamp, `TIMESTAMP` -> timestamp UTC,
/// `TINYINT(1)` -> bool, `BIGINT UNSIGNED` -> decimal(20,0), `JSON` ->
/// string, `BLOB` -> binary).
///
/// A PostgreSQL connection (the same settings as a warehouse's, see
/// `crate::warehouse::postgres`) takes `url` or `url_env` (an environment
/// variable holding the URL), or `host`, `port`, `user`, `dbname` (or
/// `database`), and `password_env` (an environment variable holding the password), and
/// `tls`/`sslmode`/`root_cert` for TLS. A MySQL connection takes `url` or
/// `url_env`, or `host`, `port`, `user`, `dbname` and `password_env`. A
/// SQLite connection takes `path`. Credentials never appear in logs or
/// errors.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlExtract {
    /// The connection's name in `nightjar.toml`.
    pub connection: String,
    /// The query; `:name` placeholders are bound from `params`.
    pub query: Option<String>,
    /// Or a whole table (`schema.table`).
    pub table: Option<String>,
    /// Values for the query's `:name` placeholders; templates allowed.
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    /// Incremental extraction: `{ column = "updated_at", initial =
    /// "1970-01-01" }`. The query uses `:last_watermark` (with `table`, the
    /// filter and order are added). The new watermark (the column's largest
    /// value read) is recorded with the task's metrics and used by the next
    /// run once a run in which this task succeeded has succeeded as a
    /// whole, so a failed load downstream extracts the same rows again.
    pub incremental: Option<Incremental>,
    /// Rows fetched per round trip and per batch (default 10000).
    pub batch_rows: Option<usize>,
}

/// Incremental extraction settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incremental {
    /// The watermark column: increases when a row is added or changed
    /// (`updated_at`, an id).
    pub column: String,
    /// The watermark before the first run (required with `query`; with
    /// `table`, the first run reads the whole table when unset).
    pub initial: Option<String>,
}

impl StepConfig for SqlExtract {
    fn check(&self) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        match (&self.query, &self.table) {
            (None, None) => {
                p.push(ConfigProblem::new("query", "give `query` or `table`").hint("e.g. `table = \"public.orders\"`"))
            }
            (Some(_), Some(_)) => {
                p.push(ConfigProblem::new("table", "give `query` or `table`, not both").hint("remove one of them"))
            }
            _ => {}
        }
        if let Some(t) = &self.table
            && !is_identifier(t)
        {
            p.push(
                ConfigProblem::new("table", format!("`{t}` is not a plain table name"))
                    .hint("write `schema.table` (letters, digits, `_`); for anything else write a `query`"),
            );
        }
        if let Some(inc) = &self.incremental {
            if !is_identifier(&inc.column) {
                p.push(ConfigProblem::new(
                    "incremental.column",
                    format!("`{}` is not a column name", inc.column),
                ));
            }
            if let Some(q) = &self.query {
                if !placeholders(q).iter().any(|n| n == LAST_WATERMARK) {
                    p.push(
                        ConfigProblem::new("query", "an incremental query must use `:last_watermark`")
                            .hint(format!("e.g. `WHERE {} > :last_watermark`", inc.column)),
                    );
                }
                if inc.initial.is_none() {
                    p.push(
                        ConfigProblem::new("incremental.initial", "an incremental query needs `initial`")
                            .hint("the watermark before the first run, e.g. `initial = \"1970-01-01\"`"),
                    );
                }
            }
        }
        if let Some(q) = &self.query {
            for name in placeholders(q) {
                if name != LAST_WATERMARK && !self.params.contains_key(&name) {
                    p.push(
                        ConfigProblem::new(
                            "params",
                            format!("the query uses `:{name}` but `params` has no `{name}`"),
                        )
                        .hint(format!("add `params = {{ {name} = \"...\" }}`")),
                    );
                }
            }
        }
        if self.batch_rows == Some(0) {
            p.push(ConfigProblem::new("batch_rows", "`batch_rows` must be at least 1"));
        }
        p
    }

    fn build(self) -> Result<Box<dyn Step>> {
        Ok(Box::new(self))
    }
}

#[async_trait]
impl Step for SqlExtract {
    async fn run(&self, cx: &StepContext) -> Result<StepOutput> {
        let conn = cx
            .connections
            .get(&self.connection)
            .ok_or_else(|| {
                anyhow!(
                    "no connection named `{}` in env `{}` (it has: {}): add it to nightjar.toml",
                    self.connection,
                    cx.env,
                    cx.connections.keys().cloned().collect::<Vec<_>>().join(", ")
                )
            })?
            .clone();
        let previous = match &self.incremental {
            Some(_) => {
                let cx2 = cx.clone();
                tokio::task::spawn_blocking(move || previous_watermark(&cx2)).await??
            }
            None => None,
        };
        let from = previous.clone().or_else(|| self.incremental.as_ref()?.initial.clone());
        let sql = self.sql(from.is_some());
        let mut params: Vec<(String, Option<String>)> = self
            .params
            .iter()
            .map(|(k, v)| (k.clone(), Some(param_text(v))))
            .collect();
        if self.incremental.is_some() {
            params.push((LAST_WATERMARK.into(), from.clone()));
        }
        let batch_rows = self.batch_rows.unwrap_or(10_000);
        let mut sink = Sink::new(cx, self.incremental.as_ref().map(|i| i.column.clone()));
        cx.log.note(&format!("extracting from connection `{}`", conn.name));
        let sink = match conn.kind.as_str() {
            "postgres" | "redshift" => {
                let (numbered, order) = number_placeholders(&sql);
                let values = order
                    .iter()
                    .map(|n| {
                        params
                            .iter()
                            .find(|(k, _)| k == n)
                            .map(|(_, v)| v.clone())
                            .ok_or_else(|| anyhow!("the query uses `:{n}` but `params` has no `{n}`"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                postgres::extract(cx, &conn, &numbered, &values, batch_rows, &mut sink).await?;
                sink
            }
            "sqlite" => {
                cx.blocking(move |cx| {
                    sqlite::extract(&cx, &conn, &sql, &params, batch_rows, &mut sink)?;
                    Ok(sink)
                })
                .await?
            }
            "mysql" => {
                // MySQL's placeholders are positional `?`, one per use.
                let (positional, order) = scan(&sql, |_| "?");
                let values = order
                    .iter()
                    .map(|n| {
                        let v = params
                            .iter()
                            .find(|(k, _)| k == n)
                            .map(|(_, v)| v.as_deref())
                            .ok_or_else(|| anyhow!("the query uses `:{n}` but `params` has no `{n}`"))?;
                        Ok(if n == LAST_WATERMARK {
                            mysql::watermark_param(v)
                        } else {
                            mysql::text_param(v)
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                mysql::extract(cx, &conn, &positional, values, batch_rows, &mut sink).await?;
                sink
            }
            other => bail!(
                "connection `{}` is of kind `{other}`: extract.sql reads `postgres`, `mysql` or `sqlite` connections",
                conn.name
            ),
        };
        let (dataset, watermark) = sink.finish()?;
        let rows = dataset.rows.unwrap_or(0);
        let mut metrics = Metrics {
            rows_in: rows,
            rows_out: rows,
            ..Default::default()
        };
        if let Some(inc) = &self.incremental {
            // No new rows: the watermark stays where it was.
            let next = watermark.or(from.clone());
            metrics
                .extra
                .insert("watermark_column".into(), inc.column.clone().into());
            metrics.extra.insert("watermark_from".into(), from.clone().into());
            metrics.extra.insert("watermark".into(), next.clone().into());
            cx.log.note(&format!(
                "{rows} row(s) with {} > {}; watermark now {}",
                inc.column,
                from.as_deref().unwrap_or("(none)"),
                next.as_deref().unwrap_or("(none)")
            ));
        }
        Ok(StepOutput {
            datasets: vec![dataset],
            metrics,
        })
    }
}

impl SqlExtract {
    /// The SQL to run, with `:name` placeholders.
    fn sql(&self, has_watermark: bool) -> String {
        match (&self.query, &self.table) {
            (Some(q), _) => q.clone(),
            (None, Some(t)) => match &self.incremental {
                Some(inc) if has_watermark => {
                    format!(
                        "SELECT * FROM {t} WHERE {0} > :{LAST_WATERMARK} ORDER BY {0}",
                        inc.column
                    )
                }
                Some(inc) => format!("SELECT * FROM {t} ORDER BY {}", inc.column),
                None => format!("SELECT * FROM {t}"),
            },
            (None, None) => unreachable!("checked"),
        }
    }
}

fn param_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut c = part.chars();
            c.next().is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
                && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        })
}

/// The watermark recorded by this task in the latest run of this DAG that
/// succeeded as a whole (so its loads downstream succeeded too).
fn previous_watermark(cx: &StepContext) -> Result<Option<String>> {
    let db: PathBuf = cx.project_dir.join(crate::spec::project::STATE_DIR).join("state.db");
    if !db.exists() {
        return Ok(None);
    }
    let store = crate::store::Store::open(&db)?;
    for run in store.runs(Some(&cx.dag), 10_000)? {
        if run.run_id == cx.run_id || run.state.as_str() != "success" {
            continue;
        }
        let tasks = store.tasks(&run.run_id)?;
        let Some(t) = tasks.iter().find(|t| t.task_id == cx.task) else {
            continue;
        };
        if t.state.as_str() != "success" {
            continue;
        }
        if let Some(w) = t.metrics.as_ref().and_then(|m| m.extra.get("watermark")) {
            return Ok(w.as_str().map(str::to_string));
        }
    }
    Ok(None)
}

/// The `:name` placeholders of a query, in order of appearance (names
/// repeat). Quoted text, quoted identifiers (`"x"`, MySQL's `` `x` ``),
/// comments and `::` casts are skipped.
fn placeholders(sql: &str) -> Vec<String> {
    scan(sql, |_| "").1
}

/// The query with `:name` replaced by `$1`, `$2`, ... (one number per
/// name), and the names in number order.
fn number_placeholders(sql: &str) -> (String, Vec<String>) {
    let mut order: Vec<String> = Vec::new();
    let (out, _) = scan(sql, |name| {
        let n = match order.iter().position(|o| o == name) {
            Some(i) => i + 1,
            None => {
                order.push(name.to_string());
                order.len()
            }
        };
        format!("${n}")
    });
    (out, order)
}

/// Walks the SQL, replacing each placeholder with `replace(name)`.
fn scan<R: std::fmt::Display>(sql: &str, mut replace: impl FnMut(&str) -> R) -> (String, Vec<String>) {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut names = Vec::new();
    let mut i = 0;
    let copy_to = |out: &mut String, from: usize, to: usize| out.push_str(&sql[from..to]);
    while i < b.len() {
        let start = i;
        match b[i] {
            q @ (b'\'' | b'"' | b'`') => {
                i += 1;
                while i < b.len() {
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i = (i + 1).min(b.len());
                copy_to(&mut out, start, i);
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                copy_to(&mut out, start, i);
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i = (i + 2).min(b.len());
                copy_to(&mut out, start, i);
            }
            b':' if b.get(i + 1) == Some(&b':') => {
                i += 2;
                copy_to(&mut out, start, i);
            }
            b':' if b.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') => {
                i += 1;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let name = &sql[start + 1..i];
                out.push_str(&replace(name).to_string());
                names.push(name.to_string());
            }
            _ => {
                // Copy one whole character.
                let len = sql[i..].chars().next().map_or(1, char::len_utf8);
                i += len;
                copy_to(&mut out, start, i);
            }
        }
    }
    (out, names)
}

/// Where extracted batches go: the task's `default` dataset, plus the
/// watermark column's largest value.
pub struct Sink {
    dir: PathBuf,
    task: String,
    writer: Option<DatasetWriter>,
    types: Vec<ColType>,
    rows: u64,
    wm_column: Option<String>,
    wm_index: Option<usize>,
    wm: Watermark,
    progress: crate::data::progress::Progress,
}

impl Sink {
    fn new(cx: &StepContext, wm_column: Option<String>) -> Self {
        Self {
            dir: cx.artifact_dir(),
            task: cx.task.clone(),
            writer: None,
            types: Vec::new(),
            rows: 0,
            wm_column,
            wm_index: None,
            wm: Watermark::default(),
            progress: cx.progress("extract"),
        }
    }

    /// The result's columns are known.
    fn start(&mut self, names: &[String], types: &[ColType]) -> Result<()> {
        if let Some(c) = &self.wm_column {
            let i = names.iter().position(|n| n == c).ok_or_else(|| {
                anyhow!(
                    "the watermark column `{c}` is not among the query's columns ({}): select it",
                    names.join(", ")
                )
            })?;
            if matches!(types[i], ColType::Binary | ColType::Bool) {
                bail!(
                    "the watermark column `{c}` is {:?}: use a timestamp, date, number or text column",
                    types[i]
                );
            }
            self.wm_index = Some(i);
        }
        self.types = types.to_vec();
        let schema = columns::BatchBuilder::new(names, types).schema();
        self.writer = Some(DatasetWriter::create(&self.dir, &self.task, "default", schema)?);
        Ok(())
    }

    /// Appends value `v` of column `i` to `batch`, following the watermark.
    fn push(&mut self, batch: &mut columns::BatchBuilder, i: usize, v: Value) -> Result<()> {
        if self.wm_index == Some(i) {
            self.wm.see(&v);
        }
        batch.push(i, v)
    }

    fn rows(&self) -> u64 {
        self.rows
    }

    fn write(&mut self, batch: &arrow::record_batch::RecordBatch) -> Result<()> {
        self.rows += batch.num_rows() as u64;
        self.progress
            .add(batch.num_rows() as u64, batch.get_array_memory_size() as u64);
        self.writer.as_mut().expect("started").write(batch)
    }

    fn finish(self) -> Result<(DatasetRef, Option<String>)> {
        let writer = self.writer.ok_or_else(|| anyhow!("the query returned no result set"))?;
        let wm = self.wm_index.and_then(|i| self.wm.text(self.types[i]));
        Ok((writer.finish()?, wm))
    }
}
