//! `load.redshift`: the input dataset into an Amazon Redshift table, staged
//! as Parquet in S3 and loaded by COPY through the Data API, as one
//! transaction.
//!
//! ```toml
//! [[task]]
//! id = "load_orders"
//! kind = "load.redshift"
//! table = "analytics.orders"
//! mode = "replace_partition"
//! partition = { column = "order_date", value = "{{ ds }}" }
//! needs = ["orders"]
//! ```
//!
//! A load:
//! 1. reads the target's columns and refuses, before staging anything, an
//!    input whose columns do not match them (with a diff of the two);
//!    a missing table is created from the input's columns with
//!    `create = true`, refused otherwise;
//! 2. stages the input, converted to the table's column order and types,
//!    as Parquet files and a manifest under the connection's `staging`
//!    prefix (see `redshift::staging` for the file sizing);
//! 3. runs one BatchExecuteStatement, which Redshift runs as one
//!    transaction: `CREATE TEMP TABLE` stage `(LIKE` target`)`, `COPY` stage
//!    `FROM` manifest `IAM_ROLE ... FORMAT AS PARQUET MANIFEST`, the mode's
//!    statements (see `warehouse::modes`), `DROP TABLE` stage;
//! 4. polls until the batch ends (backoff, `timeout`), cancelling it when
//!    the task is cancelled or times out;
//! 5. on success deletes the staged files (unless `keep_staged`); on
//!    failure keeps them and reports the rejected rows from
//!    SYS_LOAD_ERROR_DETAIL (or STL_LOAD_ERRORS): file, line, column, reason.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use async_trait::async_trait;
use serde::Deserialize;

use super::table::TableLoad;
use crate::redshift::RedshiftConnection;
use crate::redshift::data_api::{DataApi, Failed};
use crate::redshift::{load_errors, staging};
use crate::steps::{ConfigProblem, Metrics, Step, StepConfig, StepContext, StepKind, StepOutput};
use crate::warehouse::ddl::{self, Dialect};
use crate::warehouse::modes::{self, InputRules, Role};
use crate::warehouse::schema::{self, TargetColumn};
use crate::warehouse::{TableName, literal};

pub const KIND: StepKind = StepKind::of::<RedshiftLoad>(
    "load.redshift",
    "stages the input as Parquet in S3 and COPYs it into Redshift in one transaction: append, replace, merge or replace a partition",
    EXAMPLE,
);

const EXAMPLE: &str = r#"kind = "load.redshift"
connection = "warehouse"
table = "analytics.orders"
mode = "replace_partition"
partition = { column = "order_date", value = "{{ ds }}" }
"#;

/// The temporary staging table (one per Data API session).
const STAGE: &str = "nightjar_stage";

/// Loads the task's input into a Redshift table: Parquet files staged in
/// S3, then one Data API batch (a transaction) that COPYs them into a
/// staging table and moves the rows into the target by `mode`. A failed,
/// cancelled or timed-out load leaves the table as it was.
///
/// The connection (kind `redshift` in `nightjar.toml`) gives the workgroup
/// or cluster, the database, the IAM role COPY reads S3 with and the
/// `staging` prefix.
///
/// Takes the keys every table load takes (see [`TableLoad`]), the
/// Redshift-only ones included; the connection is of kind `redshift`
/// (default `warehouse`). A missing table fails the load unless `create =
/// true`. A `merge` deletes the rows whose key is in the input, then
/// inserts.
#[derive(Debug, Clone, Deserialize)]
#[serde(transparent)]
pub struct RedshiftLoad(pub TableLoad);

impl std::ops::Deref for RedshiftLoad {
    type Target = TableLoad;
    fn deref(&self) -> &TableLoad {
        &self.0
    }
}

impl StepConfig for RedshiftLoad {
    fn check(&self) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        if let Err((msg, hint)) = TableName::parse(&self.qualified_table()) {
            p.push(ConfigProblem::new("table", msg).hint(hint));
        }
        p.extend(self.0.check());
        p
    }

    fn build(self) -> Result<Box<dyn Step>> {
        Ok(Box::new(self))
    }
}

#[async_trait]
impl Step for RedshiftLoad {
    async fn run(&self, cx: &StepContext) -> Result<StepOutput> {
        let conn = crate::warehouse::connection(cx, &self.connection, "redshift", "load.redshift")?;
        let conn = Arc::new(RedshiftConnection::from_connection(conn)?);
        let staging_base = conn.staging.clone().with_context(|| {
            format!(
                "connection `{}` has no `staging` prefix; add e.g. `staging = \"s3://my-staging/nightjar/\"`",
                conn.name
            )
        })?;
        let iam_role = conn.iam_role.clone().with_context(|| {
            format!(
                "connection `{}` has no `iam_role` for COPY to read the staged files; add `iam_role = \"arn:aws:iam::...:role/...\"`",
                conn.name
            )
        })?;
        let table = TableName::parse(&self.qualified_table()).map_err(|(m, h)| anyhow::anyhow!("{m}; {h}"))?;
        let api = DataApi::new(conn.clone()).await;
        let timeout = self.statement_timeout();
        let input = cx.single_input()?.clone();
        let input_schema = arrow::record_batch::RecordBatchReader::schema(&crate::data::artifact::open(&input, 1)?);

        // 1. The target's columns, compared with the input's.
        let listed = api.run(&schema::columns_query(&table), timeout, &cx.cancel).await?;
        let mut target = target_columns(&api, &listed.id).await?;
        let mut create_sql = None;
        if target.is_empty() {
            if !self.creates() {
                bail!(
                    "table `{table}` does not exist in {}; create it first (a `sql` task running the DDL from `normalize ddl`), or set `create = true` to create it from the input's columns",
                    conn.describe()
                );
            }
            target = ddl::columns_for(&input_schema, Dialect::Redshift, self.replaced_partition());
            create_sql = Some(ddl::create_statements(&table, &target));
        }
        let part = self.replaced_partition().map(|p| (p.column.as_str(), p.value.as_str()));
        let mapping = schema::map_columns(&table, &target, &input_schema, part)?;
        let rules = InputRules::new(self.mode, &input_schema, self.partition.as_ref(), &self.key)?;

        // 2. Stage.
        let s3 = staging::s3(&conn).await;
        let prefix = staging::attempt_prefix(cx, &with_slash(&staging_base));
        let input_bytes = std::fs::metadata(&input.uri).map(|m| m.len()).unwrap_or(0);
        let rows_hint = input.rows.unwrap_or(0);
        let slices = self.slices.or(conn.slices).unwrap_or(4);
        let plan = staging::plan(rows_hint, input_bytes, slices, self.file_size_mb() * 1024 * 1024);
        let staged = staging::stage(cx, &s3, &prefix, mapping, rules, plan).await?;
        cx.log.note(&format!(
            "staged {} rows in {} files ({} bytes) under {}",
            staged.rows,
            staged.keys.len() - 1,
            staged.bytes,
            staged.url()
        ));

        // 3. One batch: one transaction.
        let mut sqls = Vec::new();
        sqls.extend(create_sql.iter().flatten().cloned());
        sqls.push(format!("CREATE TEMP TABLE {STAGE} (LIKE {})", table.sql()));
        let copy_index = sqls.len();
        sqls.push(format!(
            "COPY {STAGE} FROM {} IAM_ROLE {} FORMAT AS PARQUET MANIFEST",
            literal(&staged.manifest_url),
            literal(&iam_role)
        ));
        let first_mode = sqls.len();
        let mode_sql = modes::statements(self.mode, &table, STAGE, &self.key, self.partition.as_ref());
        sqls.extend(mode_sql.iter().map(|(s, _)| s.clone()));
        sqls.push(format!("DROP TABLE {STAGE}"));

        // 4. Wait.
        let id = api.submit_batch(&sqls).await?;
        cx.log.note(&format!("Redshift batch {id}: {} statements", sqls.len()));
        let done = match api.wait(&id, timeout, &cx.cancel).await {
            Ok(done) => done,
            Err(e) => return Err(self.explain(e, &api, &conn, &staged, copy_index).await),
        };

        // 5. Clean up.
        let count = |role: Role| -> u64 {
            mode_sql
                .iter()
                .enumerate()
                .filter(|(_, (_, r))| *r == role)
                .map(|(i, _)| done.rows.get(first_mode + i).copied().unwrap_or(0).max(0) as u64)
                .sum()
        };
        let (deleted, inserted) = (count(Role::Deleted), count(Role::Inserted));
        if !self.keep_staged.unwrap_or(false)
            && let Err(e) = staging::clean(&s3, &staged).await
        {
            cx.log.note(&format!(
                "could not delete the staged files (the load succeeded): {e:#}"
            ));
        }
        let mut metrics = Metrics {
            rows_in: staged.rows,
            rows_out: inserted,
            ..Default::default()
        };
        let extra = &mut metrics.extra;
        extra.insert("table".into(), table.to_string().into());
        extra.insert("mode".into(), modes::mode_name(self.mode).into());
        extra.insert("rows_deleted".into(), deleted.into());
        extra.insert("files_staged".into(), (staged.keys.len() as u64 - 1).into());
        extra.insert("bytes_staged".into(), staged.bytes.into());
        extra.insert("statement_id".into(), id.into());
        if create_sql.is_some() {
            extra.insert("table_created".into(), true.into());
        }
        Ok(StepOutput {
            datasets: Vec::new(),
            metrics,
        })
    }
}

impl RedshiftLoad {
    /// The task error for a failed batch: the statement and Redshift's
    /// message, and for a failed COPY the rejected rows.
    async fn explain(
        &self,
        e: anyhow::Error,
        api: &DataApi,
        conn: &RedshiftConnection,
        staged: &staging::Staged,
        copy_index: usize,
    ) -> anyhow::Error {
        let Some(failed) = e.downcast_ref::<Failed>() else {
            return e.context(format!(
                "loading `{}`; the staged files are kept under {}",
                self.table,
                staged.url()
            ));
        };
        let mut msg = format!(
            "load into `{}` {} ({}), nothing was changed: {}",
            self.table,
            failed.status.to_lowercase(),
            failed.id,
            failed.message
        );
        if failed.sub == Some(copy_index) {
            match load_errors::find(api, conn.provisioned(), failed.query_id, &staged.url()).await {
                Ok(rows) if !rows.is_empty() => {
                    msg.push_str("\nrejected rows:");
                    for r in rows {
                        msg.push_str(&format!("\n  {r}"));
                    }
                }
                Ok(_) => msg.push_str("\n(no rows in SYS_LOAD_ERROR_DETAIL for this COPY)"),
                Err(err) => msg.push_str(&format!("\n(could not read SYS_LOAD_ERROR_DETAIL: {err:#})")),
            }
        }
        msg.push_str(&format!("\nthe staged files are kept under {}", staged.url()));
        anyhow::anyhow!(msg)
    }
}

fn with_slash(s: &str) -> String {
    if s.ends_with('/') {
        s.to_string()
    } else {
        format!("{s}/")
    }
}

/// The columns listed by [`schema::columns_query`].
async fn target_columns(api: &DataApi, id: &str) -> Result<Vec<TargetColumn>> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Int64Type};
    let batch = api.result(id).await?;
    if batch.num_columns() < 6 {
        return Ok(Vec::new());
    }
    let text = |i: usize| arrow::compute::cast(batch.column(i), &DataType::Utf8);
    let int = |i: usize| arrow::compute::cast(batch.column(i), &DataType::Int64);
    let (name, ty, nullable) = (text(0)?, text(1)?, text(2)?);
    let (len, prec, scale) = (int(3)?, int(4)?, int(5)?);
    let opt = |a: &arrow::array::ArrayRef, r: usize| {
        let a = a.as_primitive::<Int64Type>();
        (!a.is_null(r)).then(|| a.value(r))
    };
    Ok((0..batch.num_rows())
        .map(|r| TargetColumn {
            name: name.as_string::<i32>().value(r).to_string(),
            data_type: ty.as_string::<i32>().value(r).to_string(),
            nullable: nullable.as_string::<i32>().value(r) == "YES",
            char_len: opt(&len, r),
            precision: opt(&prec, r),
            scale: opt(&scale, r),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(config: &str) -> Vec<String> {
        let v: toml::Value = toml::from_str(config).unwrap();
        KIND.check(v)
            .unwrap()
            .into_iter()
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect()
    }

    #[test]
    fn config_validation() {
        assert!(problems("table = \"dw.orders\"").is_empty());
        let p = problems("table = \"a.b.c\"\nmode = \"merge\"\nfile_size_mb = 0");
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].starts_with("table:") && p[1].starts_with("key:") && p[2].starts_with("file_size_mb"));
    }
}
