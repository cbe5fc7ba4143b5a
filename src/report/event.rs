//! The event document: what nightjar tells other systems about runs and
//! tasks, as versioned JSON (schema: `docs/events.schema.json`).
//!
//! A document carries names, states, counts, timings and the error message
//! of a failed attempt; never row values, configs, variables or connection
//! settings, so it holds no PII and no secrets beyond what an error message
//! itself says.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::engine::Event;
use crate::store::RunState;

/// The value of every document's `schema` field. A new major version is a
/// breaking change of the document; added optional fields are not.
pub const SCHEMA: &str = "nightjar.event/1";

/// Error messages are cut to this many characters (SQS and log lines have
/// size limits, and a message is a summary, not a log).
const MAX_ERROR_CHARS: usize = 2000;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    RunStarted,
    RunSucceeded,
    RunFailed,
    RunInterrupted,
    /// The run ended with some tasks left out (`--task`), none failed.
    RunPartial,
    TaskStarted,
    TaskRetrying,
    TaskSucceeded,
    TaskFailed,
    TaskSkipped,
    TaskUpstreamFailed,
    /// The run had not succeeded by its DAG's SLA (`[alerts] sla`).
    SlaMissed,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::RunStarted => "run_started",
            EventKind::RunSucceeded => "run_succeeded",
            EventKind::RunFailed => "run_failed",
            EventKind::RunInterrupted => "run_interrupted",
            EventKind::RunPartial => "run_partial",
            EventKind::TaskStarted => "task_started",
            EventKind::TaskRetrying => "task_retrying",
            EventKind::TaskSucceeded => "task_succeeded",
            EventKind::TaskFailed => "task_failed",
            EventKind::TaskSkipped => "task_skipped",
            EventKind::TaskUpstreamFailed => "task_upstream_failed",
            EventKind::SlaMissed => "sla_missed",
        }
    }

    pub fn is_task(self) -> bool {
        self.as_str().starts_with("task_")
    }

    /// A run's last event.
    pub fn ends_run(self) -> bool {
        matches!(
            self,
            EventKind::RunSucceeded | EventKind::RunFailed | EventKind::RunInterrupted | EventKind::RunPartial
        )
    }
}

/// Row accounting of a task that succeeded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rows {
    #[serde(rename = "in")]
    pub rows_in: u64,
    #[serde(rename = "out")]
    pub rows_out: u64,
    pub quarantined: u64,
    pub filtered: u64,
}

/// One event, as sent to every sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDoc {
    /// `nightjar.event/1`.
    pub schema: String,
    /// Unique per event, kept through retries and the spool: consumers
    /// deduplicate on it (and it is the SQS FIFO deduplication id).
    pub id: String,
    pub kind: EventKind,
    /// When it happened (RFC 3339, UTC).
    pub time: String,
    pub dag: String,
    pub run_id: String,
    pub logical_date: String,
    pub env: String,
    /// `running`, `success`, `failed`, `interrupted`, `partial`,
    /// `up_for_retry`, `skipped`, `upstream_failed`.
    pub state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// When the run or the task attempt started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<Rows>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `task_retrying`: the wait before the next attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_in_seconds: Option<f64>,
    /// `task_upstream_failed`: the upstream task that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// Run end events: how many tasks ended in each state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<std::collections::BTreeMap<String, u32>>,
    /// `sla_missed`: the time the run had to succeed by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
}

impl EventDoc {
    fn new(kind: EventKind, run: &RunInfo, now: DateTime<Utc>) -> Self {
        let mut d = Self::blank(kind);
        d.time = rfc3339(now);
        d.dag = run.dag.clone();
        d.run_id = run.run_id.clone();
        d.logical_date = run.logical_date.clone();
        d.env = run.env.clone();
        d
    }

    /// A document with a fresh id and every run field empty.
    pub fn blank(kind: EventKind) -> Self {
        Self {
            schema: SCHEMA.into(),
            id: new_id(),
            kind,
            time: rfc3339(Utc::now()),
            dag: String::new(),
            run_id: String::new(),
            logical_date: String::new(),
            env: String::new(),
            state: String::new(),
            task: None,
            attempt: None,
            started_at: None,
            ended_at: None,
            duration_seconds: None,
            rows: None,
            error: None,
            retry_in_seconds: None,
            upstream: None,
            tasks: None,
            deadline: None,
        }
    }

    /// The document as one JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an event document always serializes")
    }
}

/// 128 random bits as 32 hex digits.
fn new_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn cut(error: &str) -> String {
    match error.char_indices().nth(MAX_ERROR_CHARS) {
        Some((i, _)) => format!("{}…", &error[..i]),
        None => error.to_string(),
    }
}

#[derive(Debug, Clone)]
struct RunInfo {
    run_id: String,
    dag: String,
    logical_date: String,
    env: String,
    started: DateTime<Utc>,
    /// When each task's current attempt started.
    task_started: HashMap<String, DateTime<Utc>>,
}

impl RunInfo {
    /// For an event about a run this reporter did not see start (it cannot
    /// happen through the engine, but a document must still say something).
    fn guess(run_id: &str, now: DateTime<Utc>) -> Self {
        let (dag, date) = run_id.split_once('@').unwrap_or((run_id, ""));
        let date = date.split_once('.').map_or(date, |(d, _)| d);
        Self {
            run_id: run_id.to_string(),
            dag: dag.to_string(),
            logical_date: date.to_string(),
            env: String::new(),
            started: now,
            task_started: HashMap::new(),
        }
    }
}

/// Turns engine events into documents, remembering what task events need
/// from their run (dag, logical date, env, start times).
#[derive(Debug, Default)]
pub struct Documenter {
    runs: HashMap<String, RunInfo>,
}

impl Documenter {
    pub fn document(&mut self, e: &Event<'_>, now: DateTime<Utc>) -> Option<EventDoc> {
        match e {
            Event::RunStarted { run, .. } => {
                let info = RunInfo {
                    run_id: run.run_id.clone(),
                    dag: run.dag.clone(),
                    logical_date: run.logical_date.clone(),
                    env: run.env.clone(),
                    started: now,
                    task_started: HashMap::new(),
                };
                let mut d = EventDoc::new(EventKind::RunStarted, &info, now);
                d.state = "running".into();
                d.started_at = Some(rfc3339(now));
                self.runs.insert(run.run_id.clone(), info);
                Some(d)
            }
            // Nothing happened: no event.
            Event::AlreadySucceeded { .. } => None,
            Event::TaskStarted { run_id, task, attempt } => {
                let run = self.run(run_id, now);
                run.task_started.insert(task.to_string(), now);
                let mut d = EventDoc::new(EventKind::TaskStarted, run, now);
                d.state = "running".into();
                d.task = Some(task.to_string());
                d.attempt = Some(*attempt);
                d.started_at = Some(rfc3339(now));
                Some(d)
            }
            Event::TaskRetrying {
                run_id,
                task,
                attempt,
                error,
                wait,
            } => {
                let mut d = self.task_end(EventKind::TaskRetrying, run_id, task, now, None);
                d.state = "up_for_retry".into();
                d.attempt = Some(*attempt);
                d.error = Some(cut(error));
                d.retry_in_seconds = Some(round3(*wait));
                Some(d)
            }
            Event::TaskSucceeded {
                run_id,
                task,
                attempt,
                elapsed,
                metrics,
                ..
            } => {
                let mut d = self.task_end(EventKind::TaskSucceeded, run_id, task, now, Some(*elapsed));
                d.state = "success".into();
                d.attempt = Some(*attempt);
                d.rows = Some(Rows {
                    rows_in: metrics.rows_in,
                    rows_out: metrics.rows_out,
                    quarantined: metrics.rows_quarantined,
                    filtered: metrics.rows_filtered,
                });
                Some(d)
            }
            Event::TaskFailed {
                run_id,
                task,
                attempt,
                error,
            } => {
                let mut d = self.task_end(EventKind::TaskFailed, run_id, task, now, None);
                d.state = "failed".into();
                d.attempt = Some(*attempt);
                d.error = Some(cut(error));
                Some(d)
            }
            Event::TaskSkipped { run_id, task, reason } => {
                let run = self.run(run_id, now);
                let mut d = EventDoc::new(EventKind::TaskSkipped, run, now);
                d.state = "skipped".into();
                d.task = Some(task.to_string());
                d.error = Some(cut(reason));
                Some(d)
            }
            Event::TaskUpstreamFailed { run_id, task, upstream } => {
                let run = self.run(run_id, now);
                let mut d = EventDoc::new(EventKind::TaskUpstreamFailed, run, now);
                d.state = "upstream_failed".into();
                d.task = Some(task.to_string());
                d.upstream = Some(upstream.to_string());
                Some(d)
            }
            Event::RunFinished { report } => {
                let kind = match report.state {
                    RunState::Success => EventKind::RunSucceeded,
                    RunState::Interrupted => EventKind::RunInterrupted,
                    RunState::Partial => EventKind::RunPartial,
                    _ => EventKind::RunFailed,
                };
                let info = self
                    .runs
                    .remove(&report.run_id)
                    .unwrap_or_else(|| RunInfo::guess(&report.run_id, now));
                let mut d = EventDoc::new(kind, &info, now);
                d.state = report.state.to_string();
                d.started_at = Some(rfc3339(info.started));
                d.ended_at = Some(rfc3339(now));
                d.duration_seconds = Some((report.seconds * 1000.0).round() / 1000.0);
                let mut counts = std::collections::BTreeMap::new();
                for t in &report.tasks {
                    *counts.entry(t.state.as_str().to_string()).or_insert(0) += 1;
                }
                d.tasks = Some(counts);
                if let Some(t) = report.tasks.iter().find(|t| t.state.as_str() == "failed") {
                    d.task = None;
                    d.error = t
                        .error
                        .as_deref()
                        .map(|e| cut(&format!("task `{}` failed: {e}", t.task)));
                }
                Some(d)
            }
        }
    }

    fn run(&mut self, run_id: &str, now: DateTime<Utc>) -> &mut RunInfo {
        self.runs
            .entry(run_id.to_string())
            .or_insert_with(|| RunInfo::guess(run_id, now))
    }

    /// A document for the end of a task attempt, with its timings.
    fn task_end(
        &mut self,
        kind: EventKind,
        run_id: &str,
        task: &str,
        now: DateTime<Utc>,
        elapsed: Option<Duration>,
    ) -> EventDoc {
        let run = self.run(run_id, now);
        let started = run.task_started.get(task).copied();
        let mut d = EventDoc::new(kind, run, now);
        d.task = Some(task.to_string());
        d.started_at = started.map(rfc3339);
        d.ended_at = Some(rfc3339(now));
        let secs = elapsed
            .map(|e| e.as_secs_f64())
            .or_else(|| started.map(|s| (now - s).num_milliseconds().max(0) as f64 / 1000.0));
        d.duration_seconds = secs.map(|s| (s * 1000.0).round() / 1000.0);
        d
    }
}

fn round3(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}
