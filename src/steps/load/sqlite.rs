//! `load.sqlite`: the input dataset into a SQLite table, in one transaction.
//!
//! ```toml
//! [[task]]
//! id = "load_orders"
//! kind = "load.sqlite"
//! table = "orders"
//! mode = "replace_partition"
//! partition = { column = "order_date", value = "{{ ds }}" }
//! needs = ["orders"]
//! ```
//!
//! Everything a load does (creating or widening the table, deleting the
//! rows it replaces, inserting) happens in one `BEGIN IMMEDIATE`
//! transaction: a failed, cancelled or killed load leaves the table as it
//! was, and readers never see half a load. Re-running a date with
//! `replace_partition` (or `replace`, or `merge`) gives the same table,
//! never duplicated rows.
//!
//! Tables are created from the input's columns when missing:
//!
//! | input (Arrow) type | SQLite column | stored value |
//! | --- | --- | --- |
//! | integers | INTEGER | the number |
//! | floats | REAL | the number |
//! | string | TEXT | the text |
//! | bool | INTEGER | 1 or 0 |
//! | date | TEXT | `YYYY-MM-DD` |
//! | timestamp | TEXT | `YYYY-MM-DD HH:MM:SS[.ffffff]`, in UTC when the column has a time zone |
//! | decimal | NUMERIC | its exact digits (`2.55`), which SQLite stores as INTEGER or REAL (15 significant digits) |
//! | anything else | TEXT | Arrow's text form of the value |
//!
//! Input columns the table lacks are added (`ALTER TABLE ... ADD COLUMN`,
//! noted in the task log); table columns the input lacks get NULL. An
//! existing table keeps its definition (types, indexes) in every mode.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use arrow::array::Array;
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::{RecordBatch, RecordBatchReader};
use async_trait::async_trait;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use rusqlite::{Transaction, TransactionBehavior};
use serde::Deserialize;

use super::sql_values::SqlValues;
use super::sqlite_insert::Insert;
use super::table::TableLoad;
use super::{blocking_load, for_each_batch_with, open_input, text_column};
use crate::data::DatasetRef;
use crate::data::rows::DEFAULT_BATCH_ROWS;
use crate::steps::{ConfigProblem, Metrics, Step, StepConfig, StepContext, StepKind, StepOutput};

pub const KIND: StepKind = StepKind::of::<SqliteLoad>(
    "load.sqlite",
    "loads the input into a SQLite table: append, replace, merge or replace a partition",
    EXAMPLE,
);

const EXAMPLE: &str = r#"kind = "load.sqlite"
connection = "warehouse"
table = "orders"
mode = "replace_partition"
partition = { column = "order_date", value = "{{ ds }}" }
"#;

pub use super::table::{Mode, Partition};

/// Loads the task's input into a table of a SQLite connection, in one
/// transaction: a failed or cancelled load changes nothing.
///
/// A missing table is created from the input's columns: integers and
/// booleans (1/0) as INTEGER, floats as REAL, decimals as NUMERIC, dates as
/// `YYYY-MM-DD` text, timestamps as `YYYY-MM-DD HH:MM:SS[.ffffff]` text (in
/// UTC when the column has a time zone), everything else as TEXT. Input
/// columns the table lacks are added to it; table columns the input lacks
/// get NULL.
///
/// ```toml
/// kind = "load.sqlite"
/// table = "order_lines"
/// mode = "merge"
/// key = ["InvoiceNo", "StockCode"]
/// ```
///
/// Takes the keys every table load takes (see [`TableLoad`]). The
/// connection is of kind `sqlite` (default `warehouse`, which is
/// `.nightjar/warehouse.db` in the `local` env); its `path` is relative to
/// the project folder, and missing folders are created. With `create =
/// false` a missing table fails the load instead of being created. A
/// `merge` creates a unique index on `key` if the table has none, and
/// updates the rows whose key is there in place.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct SqliteLoad(pub TableLoad);

impl std::ops::Deref for SqliteLoad {
    type Target = TableLoad;
    fn deref(&self) -> &TableLoad {
        &self.0
    }
}

impl StepConfig for SqliteLoad {
    fn check(&self) -> Vec<ConfigProblem> {
        let mut p = self.0.check();
        p.extend(unfit_options(&self.0));
        p
    }

    fn build(self) -> Result<Box<dyn Step>> {
        Ok(Box::new(self))
    }
}

/// Why `schema` is not a usable schema name for SQLite (None when it is).
pub fn schema_problem(schema: &str) -> Option<String> {
    let mut chars = schema.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid {
        Some(format!(
            "`{schema}` is not a valid schema name: use lower-case letters, digits and `_`, starting with a letter (e.g. `acme`)"
        ))
    } else if matches!(schema, "main" | "temp") {
        Some(format!("`{schema}` is SQLite's own schema name: choose another"))
    } else {
        None
    }
}

/// What SQLite refuses of the options every table load takes: a table name
/// with a schema (or otherwise invalid here), the Redshift-only options.
pub(super) fn unfit_options(t: &TableLoad) -> Vec<ConfigProblem> {
    let mut p = Vec::new();
    if let Err((msg, hint)) = check_table_name(&t.table) {
        p.push(ConfigProblem::new("table", msg).hint(hint));
    }
    if let Some(schema) = t.schema.as_deref().filter(|s| !s.contains("{{"))
        && let Some(problem) = schema_problem(schema)
    {
        p.push(ConfigProblem::new("schema", problem));
    }
    p.extend(t.refuse_redshift_only("SQLite"));
    p
}

/// Why `table` is not a usable table name: (message, hint).
fn check_table_name(table: &str) -> Result<(), (String, String)> {
    if table.contains('.') {
        return Err((
            format!("`{table}`: SQLite has no schemas, so a table name has no `.`"),
            "write the table name alone (`orders`); for a separate database, declare another sqlite connection in nightjar.toml".into(),
        ));
    }
    let mut chars = table.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err((
            format!("`{table}` is not a valid table name"),
            "use letters, digits and `_`, starting with a letter or `_`, e.g. `order_lines`".into(),
        ));
    }
    if table.to_ascii_lowercase().starts_with("sqlite_") {
        return Err((
            format!("`{table}`: names starting with `sqlite_` are reserved by SQLite"),
            "choose another name".into(),
        ));
    }
    Ok(())
}

#[async_trait]
impl Step for SqliteLoad {
    async fn run(&self, cx: &StepContext) -> Result<StepOutput> {
        let cfg = self.clone();
        blocking_load(cx, move |cx| cfg.load(&cx)).await
    }
}

/// Where a column's values come from.
enum Source {
    /// The input column at this index.
    Input(usize),
    /// The same text on every row (a partition column the input lacks).
    Value(String),
}

/// A column of the insert, in statement parameter order.
struct Column {
    name: String,
    ty: DataType,
    source: Source,
}

impl SqliteLoad {
    fn load(&self, cx: &StepContext) -> Result<StepOutput> {
        let db = self.database(cx)?;
        let input = cx.single_input()?.clone();
        let reader = open_input(cx)?;
        let schema = reader.schema();
        let columns = self.columns(&schema)?;
        let key_positions = self
            .key
            .iter()
            .map(|k| {
                columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(k))
                    .expect("keys are input columns")
            })
            .collect::<Vec<_>>();
        if let Some(part) = self.partition.as_ref().filter(|_| self.mode == Mode::ReplacePartition)
            && let Some(i) = find_column(&schema, &part.column)
        {
            check_partition_values(cx, &input, i, part)?;
        }

        let mut conn = open_db(&db)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let added = prepare_table(&tx, cx, &self.table, &columns, self.create.unwrap_or(true))?;
        let table = quote(&self.table);
        let mut before = 0;
        if self.mode == Mode::Merge {
            ensure_unique_key(&tx, &self.table, &self.key)?;
            before = count_rows(&tx, &table)?;
        }
        let deleted = match (self.mode, &self.partition) {
            (Mode::Replace, _) => tx.execute(&format!("DELETE FROM {table}"), [])?,
            (Mode::ReplacePartition, Some(part)) => {
                // An index on the partition column: without it each date's
                // DELETE scans the whole table, and a backfill of a year
                // grows quadratically (the Online Retail year: 0.1 s per
                // load by the end).
                tx.execute_batch(&format!(
                    "CREATE INDEX IF NOT EXISTS {} ON {table} ({})",
                    quote(&format!("{}__{}__partition", self.table, part.column)),
                    quote(&part.column)
                ))?;
                tx.execute(
                    &format!("DELETE FROM {table} WHERE {} = ?1", quote(&part.column)),
                    [&part.value],
                )?
            }
            _ => 0,
        } as u64;

        // Several rows per INSERT (fewer statement runs), except for merge,
        // whose upsert reports the row it fails on. A multi-row insert that
        // fails is undone by SQLite (the statement only) and its rows are
        // run one by one to name the failing one.
        let per_insert = if self.mode == Mode::Merge {
            1
        } else {
            ROWS_PER_INSERT.min(MAX_PARAMS / columns.len()).max(1)
        };
        let mut multi = Insert::prepare(&tx, &self.insert_sql(&columns, per_insert))?;
        let mut single = Insert::prepare(&tx, &self.insert_sql(&columns, 1))?;
        let mut offset = 0u64;
        // Made ready on the reader's thread: the values, dates and
        // timestamps formatted. This thread only binds and inserts.
        let prepare = |batch: RecordBatch| -> Result<(usize, Vec<SqlValues>)> {
            let values = columns
                .iter()
                .map(|c| match &c.source {
                    Source::Input(i) => SqlValues::of(batch.column(*i)),
                    Source::Value(v) => Ok(SqlValues::Value(v.clone())),
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((batch.num_rows(), values))
        };
        let label = format!("loading into {}", self.table);
        let written = for_each_batch_with(cx, reader, &label, prepare, |(n, values)| {
            for row in 0..n {
                for &k in &key_positions {
                    if values[k].is_null(row) {
                        bail!(
                            "row {}: key column `{}` is NULL; merge needs a key on every row",
                            offset + row as u64 + 1,
                            columns[k].name
                        );
                    }
                }
            }
            let mut insert_one = |row: usize| -> Result<()> {
                single
                    .run(|p| values.iter().try_for_each(|v| v.bind(p, row)))
                    .with_context(|| format!("inserting row {} into `{}`", offset + row as u64 + 1, self.table))
            };
            let mut row = 0;
            if per_insert > 1 {
                while row + per_insert <= n {
                    let rows = row..row + per_insert;
                    let ran = multi.run(|p| {
                        rows.clone()
                            .try_for_each(|r| values.iter().try_for_each(|v| v.bind(p, r)))
                    });
                    if ran.is_err() {
                        for r in rows {
                            insert_one(r)?;
                        }
                    }
                    row += per_insert;
                }
            }
            for r in row..n {
                insert_one(r)?;
            }
            offset += n as u64;
            Ok(())
        })?;
        drop((multi, single));

        let mut metrics = Metrics {
            rows_in: written,
            rows_out: written,
            ..Default::default()
        };
        let extra = &mut metrics.extra;
        extra.insert("table".into(), self.table.clone().into());
        extra.insert("mode".into(), self.mode.name().into());
        if self.mode == Mode::Merge {
            // A row whose key was already there replaces the old row.
            let updated = written.saturating_sub(count_rows(&tx, &table)? - before);
            extra.insert("rows_updated".into(), updated.into());
            extra.insert("rows_deleted".into(), updated.into());
        } else {
            extra.insert("rows_deleted".into(), deleted.into());
        }
        if !added.is_empty() {
            extra.insert("columns_added".into(), added.into());
        }
        cx.check_cancelled()?;
        tx.commit()
            .with_context(|| format!("committing the load into `{}`", self.table))?;
        Ok(StepOutput {
            datasets: Vec::new(),
            metrics,
        })
    }

    /// The database file of `connection`, with its folder created.
    fn database(&self, cx: &StepContext) -> Result<PathBuf> {
        let conn = crate::warehouse::connection(cx, &self.connection, "sqlite", "load.sqlite")?;
        let Some(path) = conn.settings.get("path").and_then(|p| p.as_str()) else {
            bail!(
                "sqlite connection `{}` has no `path`: add e.g. `path = \".nightjar/warehouse.db\"`",
                conn.name
            );
        };
        let mut db = cx.resolve(path);
        if let Some(schema) = &self.schema {
            if let Some(problem) = schema_problem(schema) {
                bail!("load.sqlite `schema`: {problem}");
            }
            let stem = db
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            db.set_file_name(format!("{stem}.{schema}.db"));
        }
        if let Some(dir) = db.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(db)
    }

    /// The columns to insert: the input's, plus the partition column when
    /// the input lacks it. Checks that the merge key is in the input.
    fn columns(&self, schema: &Schema) -> Result<Vec<Column>> {
        if schema.fields().is_empty() {
            bail!("the input has no columns");
        }
        let mut columns: Vec<Column> = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| Column {
                name: f.name().clone(),
                ty: f.data_type().clone(),
                source: Source::Input(i),
            })
            .collect();
        if self.mode == Mode::ReplacePartition
            && let Some(part) = &self.partition
            && find_column(schema, &part.column).is_none()
        {
            columns.push(Column {
                name: part.column.clone(),
                ty: DataType::Utf8,
                source: Source::Value(part.value.clone()),
            });
        }
        for k in &self.key {
            if find_column(schema, k).is_none() {
                bail!(
                    "key column `{k}` is not in the input (its columns: {})",
                    column_list(schema)
                );
            }
        }
        Ok(columns)
    }

    /// `INSERT INTO t (...) VALUES (?1, ...), ...` for `rows` rows, with the
    /// upsert clause for merge.
    fn insert_sql(&self, columns: &[Column], rows: usize) -> String {
        let names: Vec<String> = columns.iter().map(|c| quote(&c.name)).collect();
        let tuples: Vec<String> = (0..rows)
            .map(|r| {
                let params: Vec<String> = (1..=columns.len())
                    .map(|i| format!("?{}", r * columns.len() + i))
                    .collect();
                format!("({})", params.join(", "))
            })
            .collect();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            quote(&self.table),
            names.join(", "),
            tuples.join(", ")
        );
        if self.mode == Mode::Merge {
            let keys: Vec<String> = self.key.iter().map(|k| quote(k)).collect();
            let updates: Vec<String> = columns
                .iter()
                .filter(|c| !self.key.iter().any(|k| k.eq_ignore_ascii_case(&c.name)))
                .map(|c| format!("{0} = excluded.{0}", quote(&c.name)))
                .collect();
            sql += &format!(" ON CONFLICT ({}) DO ", keys.join(", "));
            sql += &if updates.is_empty() {
                "NOTHING".to_string()
            } else {
                format!("UPDATE SET {}", updates.join(", "))
            };
        }
        sql
    }
}

/// The input column named `name`: exactly, else ignoring ASCII case (as
/// SQLite matches column names).
fn find_column(schema: &Schema, name: &str) -> Option<usize> {
    let fields = schema.fields();
    fields
        .iter()
        .position(|f| f.name() == name)
        .or_else(|| fields.iter().position(|f| f.name().eq_ignore_ascii_case(name)))
}

fn column_list(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("`{}`", f.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fails, before the table is touched, when input rows hold a partition
/// value other than this run's (NULL included): deleting this run's
/// partition would not remove them on a re-run, so they would pile up.
/// Reads only the partition column.
fn check_partition_values(cx: &StepContext, input: &DatasetRef, col: usize, part: &Partition) -> Result<()> {
    let file = File::open(&input.uri).with_context(|| format!("opening {}", input.uri))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), [col]);
    let reader = builder
        .with_projection(mask)
        .with_batch_size(DEFAULT_BATCH_ROWS)
        .build()?;
    let (mut rows, mut bad, mut first) = (0u64, 0u64, None);
    for batch in reader {
        cx.check_cancelled()?;
        let values = text_column(batch?.column(0), false)?;
        for (i, v) in values.iter().enumerate() {
            if v != Some(part.value.as_str()) {
                bad += 1;
                first.get_or_insert_with(|| (rows + i as u64 + 1, v.map_or("NULL".into(), |v| format!("`{v}`"))));
            }
        }
        rows += values.len() as u64;
    }
    if let Some((row, v)) = first {
        bail!(
            "{bad} of {rows} input rows have `{}` other than `{}` (first: row {row} has {v}); \
             replace_partition replaces only the rows of `{}`, so loading these would duplicate them on a re-run: \
             filter them out upstream, or fix `partition`",
            part.column,
            part.value,
            part.value
        );
    }
    Ok(())
}

/// Opens the database for a bulk load.
fn open_db(path: &std::path::Path) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    // Another load into the same file waits for this one, then runs.
    conn.busy_timeout(Duration::from_secs(60))?;
    // Switching a fresh file to WAL can fail at once with "database is
    // locked" when another connection switches it at the same moment:
    // SQLite skips the busy handler there (it could deadlock). Retry.
    // 64 KiB pages for a new file (SQLite ignores this on a file that has
    // pages already): a bulk load handles 16 times fewer pages, mallocs and
    // WAL frames than with the 4 KiB default, and the Online Retail year's
    // load took a fifth less time (docs/benchmarks.md, "Data plane"). An
    // analytical warehouse scans far more than it looks up single rows.
    conn.pragma_update(None, "page_size", WAREHOUSE_PAGE_SIZE)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0)) {
            Ok(_) => break,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(20 + fastrand::u64(0..30)));
            }
            Err(e) => return Err(e).with_context(|| format!("setting WAL mode on {}", path.display())),
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -128 * 1024)?; // in KiB: 128 MiB
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(conn)
}

/// Creates the table, or adds the columns it lacks. Returns the columns
/// added to an existing table.
fn prepare_table(
    tx: &Transaction,
    cx: &StepContext,
    table: &str,
    columns: &[Column],
    create: bool,
) -> Result<Vec<String>> {
    let existing: BTreeSet<String> = tx
        .prepare("SELECT name FROM pragma_table_info(?1)")?
        .query_map([table], |r| r.get::<_, String>(0))?
        .map(|n| n.map(|n| n.to_lowercase()))
        .collect::<rusqlite::Result<_>>()?;
    if existing.is_empty() {
        if !create {
            bail!(
                "table `{table}` does not exist and `create = false`; create it first (a `sql` task running its DDL), or remove `create = false`"
            );
        }
        let defs: Vec<String> = columns
            .iter()
            .map(|c| format!("{} {}", quote(&c.name), sql_type(&c.ty)))
            .collect();
        tx.execute_batch(&format!("CREATE TABLE {} ({})", quote(table), defs.join(", ")))
            .with_context(|| format!("creating table `{table}`"))?;
        cx.log
            .note(&format!("created table {table} ({} columns)", columns.len()));
        return Ok(Vec::new());
    }
    let mut added = Vec::new();
    for c in columns.iter().filter(|c| !existing.contains(&c.name.to_lowercase())) {
        tx.execute_batch(&format!(
            "ALTER TABLE {} ADD COLUMN {} {}",
            quote(table),
            quote(&c.name),
            sql_type(&c.ty)
        ))
        .with_context(|| format!("adding column `{}` to `{table}`", c.name))?;
        cx.log.note(&format!(
            "added column {} ({}) to table {table}: earlier rows hold NULL in it",
            c.name,
            sql_type(&c.ty)
        ));
        added.push(c.name.clone());
    }
    Ok(added)
}

/// Makes sure `key` is the table's primary key or has a unique index (what
/// `ON CONFLICT` needs), creating the index if not.
fn ensure_unique_key(tx: &Transaction, table: &str, key: &[String]) -> Result<()> {
    let want: BTreeSet<String> = key.iter().map(|k| k.to_lowercase()).collect();
    let names = |sql: &str, arg: &str| -> rusqlite::Result<BTreeSet<String>> {
        tx.prepare(sql)?
            .query_map([arg], |r| r.get::<_, Option<String>>(0))?
            .map(|n| n.map(|n| n.unwrap_or_default().to_lowercase()))
            .collect()
    };
    if names("SELECT name FROM pragma_table_info(?1) WHERE pk > 0", table)? == want {
        return Ok(());
    }
    let indexes = names(
        "SELECT name FROM pragma_index_list(?1) WHERE \"unique\" = 1 AND partial = 0",
        table,
    )?;
    for index in &indexes {
        if names("SELECT name FROM pragma_index_info(?1)", index)? == want {
            return Ok(());
        }
    }
    let cols: Vec<String> = key.iter().map(|k| quote(k)).collect();
    let index = format!("nightjar_{table}_key_{}", key.join("_"));
    tx.execute_batch(&format!(
        "CREATE UNIQUE INDEX {} ON {} ({})",
        quote(&index),
        quote(table),
        cols.join(", ")
    ))
    .with_context(|| {
        format!(
            "cannot add a unique index on ({}) to `{table}` for merge: rows already in the table share a key; remove the duplicates first",
            key.join(", ")
        )
    })?;
    Ok(())
}

fn count_rows(tx: &Transaction, quoted_table: &str) -> Result<u64> {
    Ok(tx.query_row(&format!("SELECT COUNT(*) FROM {quoted_table}"), [], |r| {
        r.get::<_, i64>(0)
    })? as u64)
}

/// An identifier quoted for SQLite.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The SQLite column type of an Arrow type (see the module docs).
fn sql_type(ty: &DataType) -> &'static str {
    use DataType::*;
    match ty {
        Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Boolean => "INTEGER",
        Float16 | Float32 | Float64 => "REAL",
        Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => "NUMERIC",
        _ => "TEXT",
    }
}

/// Rows per multi-row INSERT.
/// Page size of a warehouse file this step creates (see `open_db`).
const WAREHOUSE_PAGE_SIZE: i64 = 64 * 1024;

const ROWS_PER_INSERT: usize = 64;
/// SQLite's default limit on a statement's parameters.
const MAX_PARAMS: usize = 32_766;

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array, Int64Array, RecordBatch,
        StringArray, Time64MicrosecondArray, TimestampMicrosecondArray,
    };
    use rusqlite::types::Value;

    use super::*;
    use crate::spec::project::Connection;
    use crate::steps::testing::Harness;

    /// A harness with the embedded `warehouse` connection, and a
    /// `postgres` one to pick wrongly.
    fn harness() -> Harness {
        let mut h = Harness::new("load");
        let conn = |name: &str, kind: &str, path: Option<&str>| {
            let mut settings = toml::Table::new();
            if let Some(p) = path {
                settings.insert("path".into(), p.into());
            }
            let c = Connection {
                name: name.into(),
                kind: kind.into(),
                settings,
            };
            (name.to_string(), c)
        };
        h.cx.connections = Arc::new(BTreeMap::from([
            conn("warehouse", "sqlite", Some(".nightjar/warehouse.db")),
            conn("dw", "postgres", None),
        ]));
        h
    }

    /// Order lines of `day`: (invoice, stock code, quantity).
    fn lines(day: &str, rows: &[(&str, &str, i64)]) -> RecordBatch {
        RecordBatch::try_from_iter([
            (
                "InvoiceNo",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))) as ArrayRef,
            ),
            (
                "StockCode",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            ),
            (
                "Quantity",
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.2))),
            ),
            (
                "order_date",
                Arc::new(StringArray::from_iter_values(rows.iter().map(|_| day))),
            ),
        ])
        .unwrap()
    }

    fn query(h: &Harness, sql: &str) -> Vec<Vec<Value>> {
        let conn = rusqlite::Connection::open(h.path().join(".nightjar/warehouse.db")).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// The table as `order_date|InvoiceNo|StockCode|Quantity` lines, sorted.
    fn orders(h: &Harness) -> Vec<String> {
        query(
            h,
            "SELECT order_date || '|' || InvoiceNo || '|' || StockCode || '|' || Quantity FROM orders ORDER BY 1",
        )
        .into_iter()
        .map(|r| match &r[0] {
            Value::Text(t) => t.clone(),
            v => panic!("{v:?}"),
        })
        .collect()
    }

    const PARTITION: &str = "table = \"orders\"\nmode = \"replace_partition\"\n\
                             partition = { column = \"order_date\", value = \"2010-12-01\" }";

    #[tokio::test]
    async fn append_creates_the_table_then_adds_rows() {
        let mut h = harness();
        h.input("orders", &[lines("2010-12-01", &[("1", "A", 6), ("1", "B", 2)])]);
        let out = h.run(&KIND, "table = \"orders\"").await.unwrap();
        assert!(
            h.path().join(".nightjar/warehouse.db").is_file(),
            "default connection, folder created"
        );
        let m = &out.output.metrics;
        assert_eq!((m.rows_in, m.rows_out), (2, 2));
        assert_eq!(m.extra["table"], "orders");
        assert_eq!(m.extra["mode"], "append");
        assert_eq!(m.extra["rows_deleted"], 0);
        assert!(out.log.contains("created table orders"), "{}", out.log);
        h.run(&KIND, "table = \"orders\"\nmode = \"append\"").await.unwrap();
        assert_eq!(orders(&h).len(), 4);
        let journal = query(&h, "PRAGMA journal_mode");
        assert_eq!(journal[0][0], Value::Text("wal".into()));
        let page = query(&h, "PRAGMA page_size");
        assert_eq!(
            page[0][0],
            Value::Integer(WAREHOUSE_PAGE_SIZE),
            "a new warehouse file gets large pages"
        );
    }

    #[tokio::test]
    async fn an_existing_warehouse_keeps_its_page_size() {
        let mut h = harness();
        std::fs::create_dir_all(h.path().join(".nightjar")).unwrap();
        let db = rusqlite::Connection::open(h.path().join(".nightjar/warehouse.db")).unwrap();
        db.execute_batch("CREATE TABLE orders (InvoiceNo TEXT, StockCode TEXT, Quantity INTEGER, order_date TEXT)")
            .unwrap();
        drop(db);
        h.input("orders", &[lines("2010-12-01", &[("1", "A", 6)])]);
        h.run(&KIND, "table = \"orders\"\nmode = \"append\"").await.unwrap();
        assert_eq!(orders(&h), ["2010-12-01|1|A|6"]);
        assert_eq!(query(&h, "PRAGMA page_size")[0][0], Value::Integer(4096));
    }

    #[tokio::test]
    async fn a_schema_is_a_database_file_of_its_own_and_the_load_touches_no_other() {
        let mut h = harness();
        h.input("orders", &[lines("2010-12-01", &[("1", "A", 6)])]);
        h.run(&KIND, "table = \"orders\"\nschema = \"acme\"").await.unwrap();
        h.input("orders", &[lines("2010-12-01", &[("2", "B", 1), ("3", "C", 1)])]);
        h.run(&KIND, "table = \"orders\"\nschema = \"globex\"").await.unwrap();
        let count = |file: &str| {
            let c = rusqlite::Connection::open(h.path().join(".nightjar").join(file)).unwrap();
            c.query_row("SELECT COUNT(*) FROM orders", [], |r| r.get::<_, i64>(0))
                .unwrap()
        };
        assert_eq!((count("warehouse.acme.db"), count("warehouse.globex.db")), (1, 2));
        assert!(
            !h.path().join(".nightjar/warehouse.db").exists(),
            "the main file is not written"
        );

        // A schema is a name, never a path or another database; a table
        // cannot name another schema either.
        for bad in ["../globex", "Acme", "main", "a.b", "1x", ""] {
            let value = toml::Value::Table(toml::from_str(&format!("table = \"orders\"\nschema = \"{bad}\"")).unwrap());
            let problems = KIND.check(value).unwrap();
            assert!(problems.iter().any(|p| p.path == "schema"), "{bad}: {problems:?}");
        }
        let value = toml::Value::Table(toml::from_str("table = \"globex.orders\"\nschema = \"acme\"").unwrap());
        assert!(KIND.check(value).unwrap().iter().any(|p| p.path == "table"));
        // A template is checked once rendered, at run time.
        let step = SqliteLoad(TableLoad {
            schema: Some("../globex".into()),
            ..toml::from_str("table = \"orders\"").unwrap()
        });
        let err = step.database(&h.cx).unwrap_err().to_string();
        assert!(err.contains("not a valid schema name"), "{err}");
    }

    #[tokio::test]
    async fn replace_swaps_the_whole_table() {
        let mut h = harness();
        h.input("orders", &[lines("2010-12-01", &[("1", "A", 6), ("1", "B", 2)])]);
        h.run(&KIND, "table = \"orders\"").await.unwrap();
        h.input("orders", &[lines("2010-12-02", &[("2", "C", 1)])]);
        let out = h.run(&KIND, "table = \"orders\"\nmode = \"replace\"").await.unwrap();
        assert_eq!(out.output.metrics.extra["rows_deleted"], 2);
        assert_eq!(orders(&h), ["2010-12-02|2|C|1"]);
    }

    #[tokio::test]
    async fn replace_partition_run_twice_leaves_the_rows_once() {
        let mut h = harness();
        h.input("orders", &[lines("2010-12-01", &[("1", "A", 6), ("1", "B", 2)])]);
        let first = h.run(&KIND, PARTITION).await.unwrap();
        assert_eq!(first.output.metrics.extra["rows_deleted"], 0);
        let second = h.run(&KIND, PARTITION).await.unwrap();
        assert_eq!(second.output.metrics.extra["rows_deleted"], 2);
        assert_eq!(second.output.metrics.extra["mode"], "replace_partition");
        assert_eq!(orders(&h), ["2010-12-01|1|A|6", "2010-12-01|1|B|2"]);
        // A date's DELETE finds its rows by index, not by scanning the table.
        let conn = rusqlite::Connection::open(h.path().join(".nightjar/warehouse.db")).unwrap();
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN DELETE FROM orders WHERE order_date = '2010-12-01'",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(
            plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX"),
            "{plan}"
        );
    }

    #[tokio::test]
    async fn replace_partition_of_another_day_keeps_both() {
        let mut h = harness();
        h.input("orders", &[lines("2010-12-01", &[("1", "A", 6), ("1", "B", 2)])]);
        h.run(&KIND, PARTITION).await.unwrap();
        h.input("orders", &[lines("2010-12-02", &[("2", "C", 1)])]);
        h.run(&KIND, &PARTITION.replace("2010-12-01", "2010-12-02"))
            .await
            .unwrap();
        // Day A again, with fewer rows: only day A's rows change.
        h.input("orders", &[lines("2010-12-01", &[("1", "A", 7)])]);
        h.run(&KIND, PARTITION).await.unwrap();
        assert_eq!(orders(&h), ["2010-12-01|1|A|7", "2010-12-02|2|C|1"]);
    }

    #[tokio::test]
    async fn replace_partition_fills_a_missing_partition_column() {
        let mut h = harness();
        let batch = lines("x", &[("1", "A", 6)]).project(&[0, 1, 2]).unwrap();
        h.input("orders", &[batch]);
        h.run(&KIND, PARTITION).await.unwrap();
        h.run(&KIND, PARTITION).await.unwrap();
        assert_eq!(orders(&h), ["2010-12-01|1|A|6"]);
        let types = query(
            &h,
            "SELECT type FROM pragma_table_info('orders') WHERE name = 'order_date'",
        );
        assert_eq!(types[0][0], Value::Text("TEXT".into()));
    }

    #[tokio::test]
    async fn rows_of_another_partition_fail_the_load_before_it_starts() {
        let mut h = harness();
        h.input("orders", &[lines("2010-12-01", &[("1", "A", 6)])]);
        h.run(&KIND, PARTITION).await.unwrap();
        let bad = RecordBatch::try_from_iter([
            (
                "InvoiceNo",
                Arc::new(StringArray::from(vec!["2", "3", "4"])) as ArrayRef,
            ),
            (
                "order_date",
                Arc::new(StringArray::from(vec![Some("2010-12-01"), Some("2010-12-02"), None])),
            ),
        ])
        .unwrap();
        h.input("orders", &[bad]);
        let err = h.run(&KIND, PARTITION).await.err().unwrap().to_string();
        assert!(
            err.contains("2 of 3 input rows have `order_date` other than `2010-12-01`")
                && err.contains("row 2 has `2010-12-02`"),
            "{err}"
        );
        assert_eq!(orders(&h), ["2010-12-01|1|A|6"]);
    }

    #[tokio::test]
    async fn dates_partition_a_date_column() {
        let mut h = harness();
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef),
            ("order_date", Arc::new(Date32Array::from(vec![14944, 14944]))),
        ])
        .unwrap();
        h.input("orders", &[batch]);
        h.run(&KIND, PARTITION).await.unwrap();
        let out = h.run(&KIND, PARTITION).await.unwrap();
        assert_eq!(out.output.metrics.extra["rows_deleted"], 2);
        assert_eq!(query(&h, "SELECT COUNT(*) FROM orders")[0][0], Value::Integer(2));
    }

    const MERGE: &str = "table = \"orders\"\nmode = \"merge\"\nkey = [\"InvoiceNo\", \"StockCode\"]";

    #[tokio::test]
    async fn merge_updates_existing_keys_and_inserts_new_ones() {
        let mut h = harness();
        // A table made by append has no unique index yet: merge adds one.
        h.input("orders", &[lines("2010-12-01", &[("1", "A", 6), ("1", "B", 2)])]);
        h.run(&KIND, "table = \"orders\"").await.unwrap();
        h.input("orders", &[lines("2010-12-02", &[("1", "B", 5), ("2", "A", 1)])]);
        let out = h.run(&KIND, MERGE).await.unwrap();
        assert_eq!(out.output.metrics.extra["rows_updated"], 1);
        assert_eq!(out.output.metrics.extra["rows_deleted"], 1);
        h.run(&KIND, MERGE).await.unwrap();
        assert_eq!(orders(&h), ["2010-12-01|1|A|6", "2010-12-02|1|B|5", "2010-12-02|2|A|1"]);
        let unique = query(
            &h,
            "SELECT COUNT(*) FROM pragma_index_list('orders') WHERE \"unique\" = 1",
        );
        assert_eq!(unique[0][0], Value::Integer(1), "one index, created once");
    }

    #[tokio::test]
    async fn merge_into_a_table_with_duplicate_keys_says_so() {
        let mut h = harness();
        h.input("orders", &[lines("2010-12-01", &[("1", "A", 6)])]);
        h.run(&KIND, "table = \"orders\"").await.unwrap();
        h.run(&KIND, "table = \"orders\"").await.unwrap();
        let err = format!("{:#}", h.run(&KIND, MERGE).await.err().unwrap());
        assert!(err.contains("rows already in the table share a key"), "{err}");
        assert_eq!(orders(&h).len(), 2);
    }

    #[tokio::test]
    async fn merge_key_must_be_in_the_input() {
        let mut h = harness();
        h.input("orders", &[lines("2010-12-01", &[("1", "A", 6)])]);
        let err = h
            .run(&KIND, "table = \"orders\"\nmode = \"merge\"\nkey = [\"Invoice\"]")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("key column `Invoice` is not in the input (its columns: `InvoiceNo`"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn new_input_columns_are_added_and_missing_ones_get_null() {
        let mut h = harness();
        h.input("orders", &[lines("2010-12-01", &[("1", "A", 6)])]);
        h.run(&KIND, "table = \"orders\"").await.unwrap();
        let wider = RecordBatch::try_from_iter([
            ("InvoiceNo", Arc::new(StringArray::from(vec!["2"])) as ArrayRef),
            ("UnitPrice", Arc::new(Float64Array::from(vec![2.55]))),
        ])
        .unwrap();
        h.input("orders", &[wider]);
        let out = h.run(&KIND, "table = \"orders\"").await.unwrap();
        assert_eq!(
            out.output.metrics.extra["columns_added"],
            serde_json::json!(["UnitPrice"])
        );
        assert!(
            out.log.contains("added column UnitPrice (REAL) to table orders"),
            "{}",
            out.log
        );
        let rows = query(
            &h,
            "SELECT InvoiceNo, Quantity, UnitPrice FROM orders ORDER BY InvoiceNo",
        );
        assert_eq!(
            rows,
            [
                vec![Value::Text("1".into()), Value::Integer(6), Value::Null],
                vec![Value::Text("2".into()), Value::Null, Value::Real(2.55)],
            ]
        );
    }

    #[tokio::test]
    async fn a_failing_row_inside_a_multi_row_insert_is_named_and_nothing_stays() {
        let h = harness();
        let db = h.path().join(".nightjar/warehouse.db");
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch("CREATE TABLE orders (n INTEGER CHECK (n <> 150)); INSERT INTO orders VALUES (-1)")
            .unwrap();
        let mut h = h;
        let batch =
            RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from_iter_values(1..=300)) as ArrayRef)]).unwrap();
        h.input("orders", &[batch]);
        let err = format!("{:#}", h.run(&KIND, "table = \"orders\"").await.err().unwrap());
        assert!(err.contains("inserting row 150 into `orders`"), "{err}");
        assert_eq!(query(&h, "SELECT n FROM orders"), [[Value::Integer(-1)]]);
        // Without the bad row, every row goes in, in order (multi-row
        // inserts plus the rows past the last full one).
        let batch = RecordBatch::try_from_iter([(
            "n",
            Arc::new(Int64Array::from_iter_values((1..=300).filter(|n| *n != 150))) as ArrayRef,
        )])
        .unwrap();
        h.input("orders", &[batch]);
        h.run(&KIND, "table = \"orders\"").await.unwrap();
        let got: Vec<i64> = query(&h, "SELECT n FROM orders ORDER BY rowid")
            .into_iter()
            .map(|r| match r[0] {
                Value::Integer(n) => n,
                _ => panic!(),
            })
            .collect();
        let want: Vec<i64> = std::iter::once(-1).chain((1..=300).filter(|n| *n != 150)).collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_failure_mid_way_rolls_back_the_delete_and_the_inserts() {
        let mut h = harness();
        h.input("orders", &[lines("2010-12-01", &[("1", "A", 6)])]);
        h.run(&KIND, MERGE).await.unwrap();
        // More rows than one batch, the last one without a key: the load
        // fails after inserting a whole batch.
        let n = DEFAULT_BATCH_ROWS + 10;
        let mut invoices: Vec<Option<String>> = (0..n).map(|i| Some(format!("9{i}"))).collect();
        invoices[n - 1] = None;
        let batch = RecordBatch::try_from_iter([
            ("InvoiceNo", Arc::new(StringArray::from(invoices)) as ArrayRef),
            (
                "StockCode",
                Arc::new(StringArray::from_iter_values((0..n).map(|_| "A"))),
            ),
            (
                "Quantity",
                Arc::new(Int64Array::from_iter_values((0..n).map(|i| i as i64))),
            ),
            (
                "order_date",
                Arc::new(StringArray::from_iter_values((0..n).map(|_| "2010-12-02"))),
            ),
            (
                "extra",
                Arc::new(Int64Array::from_iter_values((0..n).map(|i| i as i64))),
            ),
        ])
        .unwrap();
        h.input("orders", &[batch]);
        let err = h.run(&KIND, MERGE).await.err().unwrap().to_string();
        assert!(
            err.contains(&format!("row {n}: key column `InvoiceNo` is NULL")),
            "{err}"
        );
        assert_eq!(orders(&h), ["2010-12-01|1|A|6"]);
        let columns = query(&h, "SELECT COUNT(*) FROM pragma_table_info('orders')");
        assert_eq!(columns[0][0], Value::Integer(4), "the added column is rolled back too");
    }

    #[tokio::test]
    async fn a_cancelled_replace_keeps_the_previous_rows() {
        let mut h = harness();
        h.input("orders", &[lines("2010-12-01", &[("1", "A", 6)])]);
        h.run(&KIND, "table = \"orders\"").await.unwrap();
        h.input("orders", &[lines("2010-12-02", &[("2", "B", 1)])]);
        h.cx.cancel.cancel();
        let err = h
            .run(&KIND, "table = \"orders\"\nmode = \"replace\"")
            .await
            .err()
            .unwrap();
        assert!(err.to_string().contains("cancelled"), "{err}");
        assert_eq!(orders(&h), ["2010-12-01|1|A|6"]);
    }

    #[tokio::test]
    async fn types_round_trip() {
        let mut h = harness();
        let ts = vec![Some(1_291_191_960_000_000), Some(1_291_191_960_123_456), None];
        let cols: Vec<(&str, ArrayRef)> = vec![
            ("i", Arc::new(Int64Array::from(vec![Some(i64::MAX), Some(-1), None]))),
            ("small", Arc::new(Int32Array::from(vec![Some(7), Some(-7), None]))),
            ("f", Arc::new(Float64Array::from(vec![Some(2.5), Some(-1e-3), None]))),
            ("s", Arc::new(StringArray::from(vec![Some("a'b\"c"), Some(""), None]))),
            ("b", Arc::new(BooleanArray::from(vec![Some(true), Some(false), None]))),
            ("d", Arc::new(Date32Array::from(vec![Some(14944), Some(-1), None]))),
            ("ts", Arc::new(TimestampMicrosecondArray::from(ts.clone()))),
            (
                "ts_utc",
                Arc::new(TimestampMicrosecondArray::from(ts).with_timezone("Asia/Tokyo")),
            ),
            (
                "dec",
                Arc::new(
                    Decimal128Array::from(vec![Some(255), Some(-100), None])
                        .with_precision_and_scale(10, 2)
                        .unwrap(),
                ),
            ),
            (
                "t",
                Arc::new(Time64MicrosecondArray::from(vec![Some(30_360_000_000), None, None])),
            ),
        ];
        h.input("typed", &[RecordBatch::try_from_iter(cols).unwrap()]);
        h.run(&KIND, "table = \"typed\"").await.unwrap();
        let types: Vec<Value> = query(&h, "SELECT type FROM pragma_table_info('typed')")
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        let text = |s: &str| Value::Text(s.into());
        assert_eq!(
            types,
            [
                "INTEGER", "INTEGER", "REAL", "TEXT", "INTEGER", "TEXT", "TEXT", "TEXT", "NUMERIC", "TEXT"
            ]
            .map(text)
        );
        let rows = query(&h, "SELECT * FROM typed ORDER BY rowid");
        assert_eq!(
            rows[0],
            [
                Value::Integer(i64::MAX),
                Value::Integer(7),
                Value::Real(2.5),
                text("a'b\"c"),
                Value::Integer(1),
                text("2010-12-01"),
                text("2010-12-01 08:26:00"),
                text("2010-12-01 08:26:00"),
                Value::Real(2.55),
                text("08:26:00"),
            ]
        );
        assert_eq!(
            rows[1],
            [
                Value::Integer(-1),
                Value::Integer(-7),
                Value::Real(-1e-3),
                text(""),
                Value::Integer(0),
                text("1969-12-31"),
                text("2010-12-01 08:26:00.123456"),
                text("2010-12-01 08:26:00.123456"),
                Value::Integer(-1),
                Value::Null,
            ]
        );
        assert!(rows[2].iter().all(|v| *v == Value::Null), "{:?}", rows[2]);
        // SQLite's date functions read the text forms.
        let d = query(&h, "SELECT date(ts, '+1 day'), typeof(dec) FROM typed LIMIT 1");
        assert_eq!(d[0], [text("2010-12-02"), text("real")]);
    }

    #[tokio::test]
    async fn connection_errors_list_the_available_ones() {
        let mut h = harness();
        h.input("orders", &[lines("2010-12-01", &[("1", "A", 6)])]);
        let err = h
            .run(&KIND, "table = \"orders\"\nconnection = \"warehous\"")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("no connection `warehous` in env `local` (available: `dw` (postgres), `warehouse` (sqlite))"),
            "{err}"
        );
        let err = h
            .run(&KIND, "table = \"orders\"\nconnection = \"dw\"")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("`dw` is a postgres connection")
                && err.contains("sqlite connections in env `local`: `warehouse`"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn connection_path_is_relative_to_the_project() {
        let mut h = harness();
        let mut settings = toml::Table::new();
        settings.insert("path".into(), "db/nested/mart.sqlite".into());
        let mart = Connection {
            name: "mart".into(),
            kind: "sqlite".into(),
            settings,
        };
        h.cx.connections = Arc::new(BTreeMap::from([("mart".to_string(), mart)]));
        h.input("orders", &[lines("2010-12-01", &[("1", "A", 6)])]);
        h.run(&KIND, "table = \"orders\"\nconnection = \"mart\"").await.unwrap();
        assert!(h.path().join("db/nested/mart.sqlite").is_file());
    }

    fn problems(config: &str) -> Vec<String> {
        let v: toml::Value = toml::from_str(config).unwrap();
        KIND.check(v)
            .unwrap()
            .into_iter()
            .map(|p| format!("{}: {} ({})", p.path, p.message, p.hint.unwrap_or_default()))
            .collect()
    }

    #[test]
    fn config_validation() {
        let p = problems("table = \"orders\"\nmode = \"replace_partition\"");
        assert!(
            p.len() == 1 && p[0].starts_with("partition: mode `replace_partition` needs `partition`"),
            "{p:?}"
        );
        let p = problems("table = \"orders\"\nmode = \"merge\"");
        assert!(
            p.len() == 1 && p[0].starts_with("key: mode `merge` needs `key`"),
            "{p:?}"
        );
        let p = problems("table = \"main.orders\"");
        assert!(p.len() == 1 && p[0].contains("SQLite has no schemas"), "{p:?}");
        for bad in ["", "1orders", "order lines", "orders;drop", "sqlite_master"] {
            let p = problems(&format!("table = \"{bad}\""));
            assert!(p.len() == 1 && p[0].starts_with("table: "), "{bad}: {p:?}");
        }
        let p = problems("table = \"orders\"\nkey = [\"a\"]\npartition = { column = \"d\", value = \"x\" }");
        assert_eq!(p.len(), 2, "{p:?}");
        let p = problems("table = \"orders\"\nmode = \"merge\"\nkey = [\"a\", \"A\"]");
        assert!(p.len() == 1 && p[0].starts_with("key[1]"), "{p:?}");
        assert!(problems(PARTITION).is_empty());
        assert!(problems(MERGE).is_empty());
        let v: toml::Value = toml::from_str("table = \"orders\"\nmode = \"upsert\"").unwrap();
        let (path, msg) = KIND.check(v).err().unwrap();
        assert_eq!(path, "mode");
        assert!(msg.contains("replace_partition"), "{msg}");
    }

    #[test]
    fn two_loads_opening_a_fresh_warehouse_at_once_both_succeed() {
        for _ in 0..40 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("w.db");
            let handles: Vec<_> = (0..2)
                .map(|_| {
                    let p = path.clone();
                    std::thread::spawn(move || open_db(&p).map(|_| ()))
                })
                .collect();
            for h in handles {
                h.join().unwrap().unwrap();
            }
        }
    }
}
