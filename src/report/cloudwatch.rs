//! CloudWatch: metrics as Embedded Metric Format (EMF) documents written to
//! CloudWatch Logs, and task logs shipped to CloudWatch Logs.
//!
//! Why EMF rather than `PutMetricData`: recent `aws-sdk-cloudwatch`
//! releases speak a protocol (Smithy RPC v2 CBOR) the moto emulator does
//! not, so PutMetricData could not be tested here without pinning an old
//! SDK line. An EMF document is a JSON log event that CloudWatch turns into
//! metrics on ingestion (the `x-amzn-logs-format: json/emf` header marks
//! it), so one client (CloudWatch Logs) serves metrics and task logs, the
//! documents can be read back from moto, and on AWS the metrics appear in
//! the namespace with the same names and dimensions.
//!
//! Metrics (namespace from `cloudwatch_namespace`):
//!
//! | metric | unit | dimensions | from |
//! | --- | --- | --- | --- |
//! | `Duration` | Seconds | Dag, Task | every task attempt that ended (success or failure) |
//! | `RowsOut` | Count | Dag, Task | a task that succeeded |
//! | `RowsQuarantined` | Count | Dag, Task | a task that succeeded |
//! | `Failures` | Count | Dag, Task | 1 for a failed task, 0 for a success |
//! | `Retries` | Count | Dag, Task | 1 per failed attempt that is retried |
//! | `Duration`, `Failures` | Seconds, Count | Dag | the end of a run |

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Result, anyhow};
use async_trait::async_trait;
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use serde_json::{Value, json};

use super::{EventDoc, EventKind, Sink, short_hash};
use crate::aws::AwsOptions;

/// PutLogEvents limits: 10,000 events and 1 MiB (each event counting 26
/// bytes more than its message) per call; 256 KiB per event.
const MAX_EVENTS: usize = 10_000;
const MAX_BYTES: usize = 1_048_576;
const MAX_EVENT_BYTES: usize = 256 * 1024 - 26;

/// A CloudWatch Logs client that fails fast (the reporter retries).
pub async fn logs_client(opts: &AwsOptions) -> Client {
    let conf = crate::aws::sdk_config(opts).await;
    Client::from_conf(
        aws_sdk_cloudwatchlogs::config::Builder::from(&conf)
            .retry_config(aws_sdk_cloudwatchlogs::config::retry::RetryConfig::standard().with_max_attempts(2))
            .timeout_config(
                aws_sdk_cloudwatchlogs::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(3))
                    .operation_timeout(Duration::from_secs(30))
                    .build(),
            )
            .build(),
    )
}

/// A log stream name from a run id and task: CloudWatch forbids `:` and `*`.
pub fn stream_name(parts: &[&str]) -> String {
    parts.join("/").replace([':', '*'], "-")
}

fn millis(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp_millis())
        .unwrap_or_else(|_| chrono::Utc::now().timestamp_millis())
}

/// Creates a log group and stream when missing (remembering which exist).
async fn ensure_stream(client: &Client, known: &Mutex<HashSet<String>>, group: &str, stream: &str) -> Result<()> {
    let key = format!("{group}\n{stream}");
    if known.lock().unwrap().contains(&key) {
        return Ok(());
    }
    if let Err(e) = client.create_log_group().log_group_name(group).send().await
        && e.code() != Some("ResourceAlreadyExistsException")
    {
        return Err(anyhow!("CreateLogGroup {group}: {}", DisplayErrorContext(e)));
    }
    if let Err(e) = client
        .create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        && e.code() != Some("ResourceAlreadyExistsException")
    {
        return Err(anyhow!("CreateLogStream {group}/{stream}: {}", DisplayErrorContext(e)));
    }
    known.lock().unwrap().insert(key);
    Ok(())
}

/// Puts events (timestamp ms, message) in chunks within the API limits.
async fn put_events(client: &Client, group: &str, stream: &str, events: Vec<(i64, String)>, emf: bool) -> Result<()> {
    let mut chunk: Vec<InputLogEvent> = Vec::new();
    let mut bytes = 0;
    let mut events = events.into_iter().peekable();
    while let Some((ts, mut msg)) = events.next() {
        if msg.len() > MAX_EVENT_BYTES {
            let mut cut = MAX_EVENT_BYTES;
            while !msg.is_char_boundary(cut) {
                cut -= 1;
            }
            msg.truncate(cut);
        }
        let size = msg.len() + 26;
        if !chunk.is_empty() && (chunk.len() >= MAX_EVENTS || bytes + size > MAX_BYTES) {
            put_chunk(client, group, stream, std::mem::take(&mut chunk), emf).await?;
            bytes = 0;
        }
        bytes += size;
        chunk.push(InputLogEvent::builder().timestamp(ts).message(msg).build()?);
        if events.peek().is_none() {
            put_chunk(client, group, stream, std::mem::take(&mut chunk), emf).await?;
        }
    }
    Ok(())
}

async fn put_chunk(client: &Client, group: &str, stream: &str, events: Vec<InputLogEvent>, emf: bool) -> Result<()> {
    let req = client
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events));
    let result = if emf {
        req.customize()
            .mutate_request(|r| {
                r.headers_mut().insert("x-amzn-logs-format", "json/emf");
            })
            .send()
            .await
    } else {
        req.send().await
    };
    result.map_err(|e| anyhow!("PutLogEvents {group}/{stream}: {}", DisplayErrorContext(e)))?;
    Ok(())
}

/// Per-DAG and per-task metrics as EMF documents, one log stream per run.
pub struct MetricsSink {
    client: Client,
    namespace: String,
    group: String,
    known: Mutex<HashSet<String>>,
}

impl MetricsSink {
    pub fn new(client: Client, namespace: &str, group: &str) -> Self {
        Self {
            client,
            namespace: namespace.to_string(),
            group: group.to_string(),
            known: Mutex::new(HashSet::new()),
        }
    }

    /// The EMF document for an event, if it carries metrics.
    pub fn emf(&self, doc: &EventDoc) -> Option<Value> {
        let mut values: Vec<(&str, &str, Value)> = Vec::new();
        let duration = doc.duration_seconds.map(Value::from);
        match doc.kind {
            EventKind::TaskSucceeded => {
                let rows = doc.rows.unwrap_or_default();
                if let Some(d) = duration {
                    values.push(("Duration", "Seconds", d));
                }
                values.push(("RowsOut", "Count", rows.rows_out.into()));
                values.push(("RowsQuarantined", "Count", rows.quarantined.into()));
                values.push(("Failures", "Count", 0.into()));
            }
            EventKind::TaskFailed => {
                if let Some(d) = duration {
                    values.push(("Duration", "Seconds", d));
                }
                values.push(("Failures", "Count", 1.into()));
            }
            EventKind::TaskRetrying => values.push(("Retries", "Count", 1.into())),
            EventKind::RunSucceeded | EventKind::RunFailed | EventKind::RunPartial | EventKind::RunInterrupted => {
                if let Some(d) = duration {
                    values.push(("Duration", "Seconds", d));
                }
                let failed = (doc.kind == EventKind::RunFailed) as u32;
                values.push(("Failures", "Count", failed.into()));
            }
            _ => return None,
        }
        let dims: Vec<&str> = if doc.kind.is_task() {
            vec!["Dag", "Task"]
        } else {
            vec!["Dag"]
        };
        let metrics: Vec<Value> = values.iter().map(|(n, u, _)| json!({"Name": n, "Unit": u})).collect();
        let mut out = json!({
            "_aws": {
                "Timestamp": millis(&doc.time),
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dims],
                    "Metrics": metrics,
                }],
            },
            "Dag": doc.dag,
            // Properties (not dimensions): searchable in Logs Insights.
            "RunId": doc.run_id,
            "LogicalDate": doc.logical_date,
            "Event": doc.kind.as_str(),
            "EventId": doc.id,
        });
        if let Some(t) = &doc.task {
            out["Task"] = t.clone().into();
        }
        for (name, _, v) in values {
            out[name] = v;
        }
        Some(out)
    }
}

#[async_trait]
impl Sink for MetricsSink {
    fn name(&self) -> String {
        format!(
            "cloudwatch-metrics-{}",
            short_hash(&format!("{}\n{}", self.namespace, self.group))
        )
    }

    fn batch_size(&self) -> usize {
        100
    }

    fn wants(&self, doc: &EventDoc) -> bool {
        self.emf(doc).is_some()
    }

    async fn send(&self, batch: &[EventDoc]) -> Result<()> {
        let mut by_stream: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
        for doc in batch {
            if let Some(v) = self.emf(doc) {
                by_stream
                    .entry(stream_name(&[&doc.run_id]))
                    .or_default()
                    .push((millis(&doc.time), v.to_string()));
            }
        }
        for (stream, events) in by_stream {
            ensure_stream(&self.client, &self.known, &self.group, &stream).await?;
            put_events(&self.client, &self.group, &stream, events, true).await?;
        }
        Ok(())
    }
}

/// Ships a task's log file to CloudWatch Logs when the task ends: one
/// stream `<run id>/<task>` per run and task. The stream is replaced as a
/// whole each time (a resumed run's task log holds every attempt), so a
/// re-send never duplicates lines.
pub struct TaskLogSink {
    client: Client,
    group: String,
    state_dir: PathBuf,
}

impl TaskLogSink {
    pub fn new(client: Client, group: &str, state_dir: &Path) -> Self {
        Self {
            client,
            group: group.to_string(),
            state_dir: state_dir.to_path_buf(),
        }
    }

    async fn ship(&self, doc: &EventDoc) -> Result<()> {
        let Some(task) = &doc.task else { return Ok(()) };
        let path = self
            .state_dir
            .join("logs")
            .join(&doc.dag)
            .join(&doc.run_id)
            .join(format!("{task}.log"));
        let text = match tokio::fs::read_to_string(&path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(anyhow!("cannot read task log {}: {e}", path.display())),
        };
        let fallback = millis(&doc.time);
        let mut last = 0;
        let events: Vec<(i64, String)> = text
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                // Lines start with their UTC time (engine/log.rs).
                let ts = l
                    .get(..24)
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map_or(fallback, |t| t.timestamp_millis());
                // PutLogEvents wants them in order.
                last = ts.max(last);
                (last, l.to_string())
            })
            .collect();
        let stream = stream_name(&[&doc.run_id, task]);
        let _ = self.client.create_log_group().log_group_name(&self.group).send().await;
        match self
            .client
            .create_log_stream()
            .log_group_name(&self.group)
            .log_stream_name(&stream)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceAlreadyExistsException") => {
                self.client
                    .delete_log_stream()
                    .log_group_name(&self.group)
                    .log_stream_name(&stream)
                    .send()
                    .await
                    .map_err(|e| anyhow!("DeleteLogStream {}/{stream}: {}", self.group, DisplayErrorContext(e)))?;
                self.client
                    .create_log_stream()
                    .log_group_name(&self.group)
                    .log_stream_name(&stream)
                    .send()
                    .await
                    .map_err(|e| anyhow!("CreateLogStream {}/{stream}: {}", self.group, DisplayErrorContext(e)))?;
            }
            Err(e) => {
                return Err(anyhow!(
                    "CreateLogStream {}/{stream}: {}",
                    self.group,
                    DisplayErrorContext(e)
                ));
            }
        }
        put_events(&self.client, &self.group, &stream, events, false).await
    }
}

#[async_trait]
impl Sink for TaskLogSink {
    fn name(&self) -> String {
        format!("cloudwatch-logs-{}", short_hash(&self.group))
    }

    fn batch_size(&self) -> usize {
        1
    }

    fn wants(&self, doc: &EventDoc) -> bool {
        matches!(
            doc.kind,
            EventKind::TaskSucceeded | EventKind::TaskFailed | EventKind::TaskSkipped
        )
    }

    async fn send(&self, batch: &[EventDoc]) -> Result<()> {
        for doc in batch {
            self.ship(doc).await?;
        }
        Ok(())
    }
}
