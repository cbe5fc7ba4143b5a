//! `load.postgres`: the input dataset into a PostgreSQL table with binary
//! `COPY FROM STDIN`, in one transaction.
//!
//! ```toml
//! [[task]]
//! id = "load_orders"
//! kind = "load.postgres"
//! connection = "warehouse"
//! table = "analytics.orders"
//! mode = "replace_partition"
//! partition = { column = "order_date", value = "{{ ds }}" }
//! needs = ["orders"]
//! ```
//!
//! The same modes and config as `load.sqlite` and `load.redshift`, so a job
//! loads any warehouse by switching `--env`. Within one transaction: a
//! temporary staging table `LIKE` the target receives the rows by binary
//! COPY (one message per batch) (converted to the target's column types first), then the mode's
//! statements move them into the target. A failed, cancelled or dropped
//! load leaves the table as it was (dropping the connection aborts the
//! transaction).

use anyhow::{Context, Result, bail};
use arrow::record_batch::RecordBatchReader;
use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, pin_mut};
use serde::Deserialize;
use tokio_postgres::types::Type;

use super::table::TableLoad;
use crate::data::rows::DEFAULT_BATCH_ROWS;
use crate::steps::{ConfigProblem, Metrics, Step, StepConfig, StepContext, StepKind, StepOutput};
use crate::warehouse::ddl::{self, Dialect};
use crate::warehouse::modes::{self, InputRules, Role};
use crate::warehouse::pg_values::{COPY_HEADER, COPY_TRAILER, PgColumn, encode_rows};
use crate::warehouse::postgres::describe;
use crate::warehouse::schema::{self, TargetColumn};
use crate::warehouse::{TableName, ident};

pub const KIND: StepKind = StepKind::of::<PostgresLoad>(
    "load.postgres",
    "loads the input into a PostgreSQL table by binary COPY in one transaction: append, replace, merge or replace a partition",
    EXAMPLE,
);

const EXAMPLE: &str = r#"kind = "load.postgres"
connection = "warehouse"
table = "analytics.orders"
mode = "merge"
key = ["InvoiceNo", "StockCode"]
"#;

const STAGE: &str = "nightjar_stage";

/// Loads the task's input into a table of a `postgres` connection (binary
/// COPY into a staging table, then the mode's statements, all in one
/// transaction).
///
/// The target's columns must match the input's: every input column must
/// be a table column of a type it converts to without losing meaning, and
/// table columns the input lacks must be nullable (or the partition
/// column). Otherwise the load is refused, before anything is written,
/// with a diff of the two.
///
/// Takes the keys every table load takes (see [`TableLoad`]); the
/// connection is of kind `postgres` (default `warehouse`). A missing table
/// fails the load unless `create = true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct PostgresLoad(pub TableLoad);

impl std::ops::Deref for PostgresLoad {
    type Target = TableLoad;
    fn deref(&self) -> &TableLoad {
        &self.0
    }
}

impl StepConfig for PostgresLoad {
    fn check(&self) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        if let Err((msg, hint)) = TableName::parse(&self.qualified_table()) {
            p.push(ConfigProblem::new("table", msg).hint(hint));
        }
        p.extend(self.0.check());
        p.extend(unfit_options(&self.0));
        p
    }

    fn build(self) -> Result<Box<dyn Step>> {
        Ok(Box::new(self))
    }
}

#[async_trait]
impl Step for PostgresLoad {
    async fn run(&self, cx: &StepContext) -> Result<StepOutput> {
        let conn = crate::warehouse::connection(cx, &self.connection, "postgres", "load.postgres")?;
        let table = TableName::parse(&self.qualified_table()).map_err(|(m, h)| anyhow::anyhow!("{m}; {h}"))?;
        let mut db = crate::warehouse::postgres::connect(conn).await?;
        let input = cx.single_input()?.clone();
        let reader = crate::data::artifact::open(&input, DEFAULT_BATCH_ROWS)?;
        let input_schema = reader.schema();
        let partition = self.replaced_partition();

        let mut target = target_columns(&db, &table).await?;
        let mut create_sql = None;
        if target.is_empty() {
            if !self.creates() {
                bail!(
                    "table `{table}` does not exist (connection `{}`); create it first (a `sql` task running the DDL from `normalize ddl`), or set `create = true` to create it from the input's columns",
                    self.connection
                );
            }
            target = ddl::columns_for(&input_schema, Dialect::Postgres, partition);
            let mut stmts = ddl::create_statements(&table, &target);
            // A table made for replace_partition gets an index on the
            // partition column: each run's DELETE of its date then does not
            // scan the table (quadratic over a backfill). Tables the user
            // creates keep the indexes the user chose.
            if let Some(p) = partition {
                stmts.push(format!(
                    "CREATE INDEX ON {} ({})",
                    table.sql(),
                    crate::warehouse::ident(&p.column)
                ));
            }
            create_sql = Some(stmts.join(";\n"));
        }
        let part = partition.map(|p| (p.column.as_str(), p.value.as_str()));
        let mapping = schema::map_columns(&table, &target, &input_schema, part)?;
        let mut rules = InputRules::new(self.mode, &input_schema, self.partition.as_ref(), &self.key)?;

        let tx = db.transaction().await?;
        if let Some(sql) = &create_sql {
            tx.batch_execute(sql)
                .await
                .map_err(|e| anyhow::anyhow!("creating `{table}`: {}", describe(&e)))?;
        }
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE {STAGE} (LIKE {}) ON COMMIT DROP",
            table.sql()
        ))
        .await
        .map_err(|e| anyhow::anyhow!("creating the staging table: {}", describe(&e)))?;
        let types: Vec<Type> = tx
            .prepare(&format!("SELECT * FROM {STAGE}"))
            .await?
            .columns()
            .iter()
            .map(|c| c.type_().clone())
            .collect();
        let names: Vec<String> = target.iter().map(|c| ident(&c.name)).collect();
        let sink = tx
            .copy_in::<_, Bytes>(&format!("COPY {STAGE} ({}) FROM STDIN BINARY", names.join(", ")))
            .await?;
        pin_mut!(sink);
        let copy_error = |e: tokio_postgres::Error| anyhow::anyhow!("COPY into `{table}`: {}", describe(&e));
        sink.send(Bytes::from_static(COPY_HEADER)).await.map_err(copy_error)?;
        let mut progress = cx.progress(&format!("loading into {table}"));
        let mut offset = 0u64;
        let mut buf = BytesMut::new();
        for batch in reader {
            cx.check_cancelled()?;
            let batch = batch.context("reading the input dataset")?;
            rules.check(&batch)?;
            let converted = mapping.convert(&batch, offset)?;
            let cols = converted
                .columns()
                .iter()
                .map(|c| PgColumn::of(c.as_ref()))
                .collect::<Result<Vec<_>>>()?;
            encode_rows(&cols, &types, converted.num_rows(), &mut buf)?;
            sink.send(buf.split().freeze()).await.map_err(copy_error)?;
            offset += batch.num_rows() as u64;
            progress.add(batch.num_rows() as u64, batch.get_array_memory_size() as u64);
        }
        progress.finish();
        sink.send(Bytes::from_static(COPY_TRAILER)).await.map_err(copy_error)?;
        sink.finish().await.map_err(copy_error)?;

        let (mut deleted, mut inserted) = (0u64, 0u64);
        for (sql, role) in modes::statements(self.mode, &table, STAGE, &self.key, self.partition.as_ref()) {
            let n = tx
                .execute(sql.as_str(), &[])
                .await
                .map_err(|e| anyhow::anyhow!("loading `{table}` ({sql}): {}", describe(&e)))?;
            match role {
                Role::Deleted => deleted += n,
                Role::Inserted => inserted += n,
            }
        }
        cx.check_cancelled()?;
        tx.commit()
            .await
            .map_err(|e| anyhow::anyhow!("committing the load into `{table}`: {}", describe(&e)))?;

        let mut metrics = Metrics {
            rows_in: offset,
            rows_out: inserted,
            ..Default::default()
        };
        let extra = &mut metrics.extra;
        extra.insert("table".into(), table.to_string().into());
        extra.insert("mode".into(), modes::mode_name(self.mode).into());
        extra.insert("rows_deleted".into(), deleted.into());
        if create_sql.is_some() {
            extra.insert("table_created".into(), true.into());
        }
        Ok(StepOutput {
            datasets: Vec::new(),
            metrics,
        })
    }
}

/// What PostgreSQL refuses of the options every table load takes (beyond
/// the table name rules it shares with Redshift): the Redshift-only ones.
pub(super) fn unfit_options(t: &TableLoad) -> Vec<ConfigProblem> {
    t.refuse_redshift_only("PostgreSQL")
}

/// The target's columns (empty when the table does not exist).
async fn target_columns(db: &tokio_postgres::Client, table: &TableName) -> Result<Vec<TargetColumn>> {
    let rows = db
        .query(schema::columns_query(table).as_str(), &[])
        .await
        .map_err(|e| anyhow::anyhow!("reading the columns of `{table}`: {}", describe(&e)))?;
    Ok(rows
        .iter()
        .map(|r| TargetColumn {
            name: r.get(0),
            data_type: r.get(1),
            nullable: r.get::<_, String>(2) == "YES",
            char_len: r.get(3),
            precision: r.get(4),
            scale: r.get(5),
        })
        .collect())
}
