//! Statements through the Redshift Data API: submit, poll
//! DescribeStatement with backoff until FINISHED / FAILED / ABORTED (or the
//! timeout), cancel on cancellation (also when the waiting future is
//! dropped, which is how a task timeout ends an attempt), and read results
//! into Arrow.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arrow::record_batch::RecordBatch;
use aws_sdk_redshiftdata::error::DisplayErrorContext;
use aws_sdk_redshiftdata::operation::describe_statement::DescribeStatementOutput;
use aws_sdk_redshiftdata::types::{Field as Value, StatusString};
use tokio_util::sync::CancellationToken;

use super::RedshiftConnection;
use crate::warehouse::sql_text::{ColumnKind, text_rows_to_batch};

/// Poll intervals: start short (most statements take well under a
/// second), grow by half each time, never wait more than the cap.
const FIRST_POLL: Duration = Duration::from_millis(50);
const MAX_POLL: Duration = Duration::from_secs(5);

/// A Data API client bound to one connection's cluster or workgroup.
#[derive(Clone)]
pub struct DataApi {
    client: aws_sdk_redshiftdata::Client,
    conn: Arc<RedshiftConnection>,
}

/// A finished statement (or batch).
#[derive(Debug, Clone)]
pub struct Finished {
    pub id: String,
    /// Rows affected or returned, per sub-statement (one for a single
    /// statement).
    pub rows: Vec<i64>,
    pub has_result: bool,
}

/// A statement that failed or was aborted.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Failed {
    pub id: String,
    pub status: String,
    pub message: String,
    /// The failing sub-statement (0-based) of a batch, and its query id.
    pub sub: Option<usize>,
    pub query_id: Option<i64>,
}

impl DataApi {
    pub async fn new(conn: Arc<RedshiftConnection>) -> Self {
        let conf = crate::aws::sdk_config(&conn.aws).await;
        let mut b = aws_sdk_redshiftdata::config::Builder::from(&conf);
        if let Some(url) = &conn.data_api_endpoint_url {
            b = b.endpoint_url(url);
        }
        Self {
            client: aws_sdk_redshiftdata::Client::from_conf(b.build()),
            conn,
        }
    }

    /// Submits one statement; returns its id.
    pub async fn submit(&self, sql: &str) -> Result<String> {
        let c = &self.conn;
        let out = self
            .client
            .execute_statement()
            .sql(sql)
            .database(&c.database)
            .set_workgroup_name(c.workgroup.clone())
            .set_cluster_identifier(c.cluster.clone())
            .set_db_user(c.db_user.clone())
            .set_secret_arn(c.secret_arn.clone())
            .statement_name("nightjar")
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(e)))
            .with_context(|| format!("ExecuteStatement on {}", c.describe()))?;
        out.id.context("ExecuteStatement returned no Id")
    }

    /// Submits statements to run as one transaction; returns the batch id.
    pub async fn submit_batch(&self, sqls: &[String]) -> Result<String> {
        let c = &self.conn;
        let out = self
            .client
            .batch_execute_statement()
            .set_sqls(Some(sqls.to_vec()))
            .database(&c.database)
            .set_workgroup_name(c.workgroup.clone())
            .set_cluster_identifier(c.cluster.clone())
            .set_db_user(c.db_user.clone())
            .set_secret_arn(c.secret_arn.clone())
            .statement_name("nightjar")
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(e)))
            .with_context(|| format!("BatchExecuteStatement on {}", c.describe()))?;
        out.id.context("BatchExecuteStatement returned no Id")
    }

    /// Asks Redshift to cancel a statement.
    pub async fn cancel(&self, id: &str) -> Result<()> {
        self.client
            .cancel_statement()
            .id(id)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(e)))
            .with_context(|| format!("CancelStatement {id}"))?;
        Ok(())
    }

    async fn describe(&self, id: &str) -> Result<DescribeStatementOutput> {
        self.client
            .describe_statement()
            .id(id)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(e)))
            .with_context(|| format!("DescribeStatement {id}"))
    }

    /// Waits for statement `id` to end. Past `timeout`, or when `cancel`
    /// fires, or when this future is dropped, the statement is cancelled.
    /// `Err` holds a [`Failed`] when the statement failed or was aborted.
    pub async fn wait(&self, id: &str, timeout: Duration, cancel: &CancellationToken) -> Result<Finished> {
        let mut guard = CancelOnDrop {
            api: Some(self.clone()),
            id: id.to_string(),
        };
        let deadline = Instant::now() + timeout;
        let mut pause = FIRST_POLL;
        loop {
            let d = self.describe(id).await?;
            match d.status() {
                Some(StatusString::Finished) => {
                    guard.api = None;
                    let subs = d.sub_statements();
                    let rows = if subs.is_empty() {
                        vec![d.result_rows()]
                    } else {
                        subs.iter().map(|s| s.result_rows()).collect()
                    };
                    return Ok(Finished {
                        id: id.to_string(),
                        rows,
                        has_result: d.has_result_set().unwrap_or(false),
                    });
                }
                Some(s @ (StatusString::Failed | StatusString::Aborted)) => {
                    guard.api = None;
                    let failed = d.sub_statements().iter().position(
                        |s| matches!(s.status(), Some(x) if x.as_str() == "FAILED" || x.as_str() == "ABORTED"),
                    );
                    let query_id = match failed {
                        Some(i) => Some(d.sub_statements()[i].redshift_query_id()),
                        None => Some(d.redshift_query_id()),
                    };
                    return Err(Failed {
                        id: id.to_string(),
                        status: s.as_str().to_string(),
                        message: d.error().unwrap_or("no error message").to_string(),
                        sub: failed,
                        query_id,
                    }
                    .into());
                }
                _ => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                guard.api = None;
                let _ = self.cancel(id).await;
                bail!(
                    "statement {id} did not finish within {} (it was cancelled); raise `timeout`",
                    humantime::format_duration(timeout)
                );
            }
            tokio::select! {
                _ = tokio::time::sleep(pause.min(left)) => {}
                _ = cancel.cancelled() => {
                    guard.api = None;
                    let _ = self.cancel(id).await;
                    bail!("cancelled (Redshift statement {id} was cancelled)");
                }
            }
            pause = (pause * 3 / 2).min(MAX_POLL);
        }
    }

    /// Runs one statement and waits for it.
    pub async fn run(&self, sql: &str, timeout: Duration, cancel: &CancellationToken) -> Result<Finished> {
        let id = self.submit(sql).await?;
        self.wait(&id, timeout, cancel).await
    }

    /// The result of a finished statement (`ID`, or `ID:N` for a batch's
    /// N-th statement), all pages, as one Arrow batch: integers as Int64,
    /// floats as Float64, booleans, everything else as text (as the Data
    /// API returns it; see [`to_batch`]).
    pub async fn result(&self, id: &str) -> Result<RecordBatch> {
        let mut token: Option<String> = None;
        let mut columns: Vec<(String, String)> = Vec::new();
        let mut rows: Vec<Vec<Value>> = Vec::new();
        loop {
            let page = self
                .client
                .get_statement_result()
                .id(id)
                .set_next_token(token.clone())
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("{}", DisplayErrorContext(e)))
                .with_context(|| format!("GetStatementResult {id}"))?;
            if columns.is_empty() {
                columns = page
                    .column_metadata()
                    .iter()
                    .map(|c| {
                        (
                            c.name().unwrap_or_default().to_string(),
                            c.type_name().unwrap_or_default().to_string(),
                        )
                    })
                    .collect();
            }
            rows.extend(page.records().iter().cloned());
            token = page.next_token().map(str::to_string);
            if token.is_none() {
                break;
            }
        }
        to_batch(&columns, &rows)
    }
}

/// The rows as Arrow columns typed by the Redshift type names (integers,
/// floats, booleans, dates; the rest as text, as the Data API returns it).
fn to_batch(columns: &[(String, String)], rows: &[Vec<Value>]) -> Result<RecordBatch> {
    let cols: Vec<(String, ColumnKind)> = columns
        .iter()
        .map(|(n, t)| (n.clone(), ColumnKind::of_type_name(t)))
        .collect();
    let cells: Vec<Vec<Option<String>>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| match v {
                    Value::StringValue(s) => Some(s.clone()),
                    Value::LongValue(n) => Some(n.to_string()),
                    Value::DoubleValue(f) => Some(f.to_string()),
                    Value::BooleanValue(b) => Some(b.to_string()),
                    _ => None,
                })
                .collect()
        })
        .collect();
    text_rows_to_batch(&cols, &cells)
}

/// Cancels the statement when the waiting future is dropped before it saw
/// the statement end (a task timeout drops the attempt's future).
struct CancelOnDrop {
    api: Option<DataApi>,
    id: String,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(api) = self.api.take()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            let id = std::mem::take(&mut self.id);
            rt.spawn(async move {
                if let Err(e) = api.cancel(&id).await {
                    tracing::warn!("cancelling Redshift statement {id}: {e:#}");
                }
            });
        }
    }
}
