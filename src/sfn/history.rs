//! An execution's history, task by task: which attempts each task state
//! made and how each ended, read from `GetExecutionHistory`.
//!
//! Events of parallel branches interleave; each event names the event before
//! it in its own state (`previousEventId`), so following that chain back to
//! a `TaskStateEntered` gives every event its state.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Result, anyhow};
use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};

/// How one attempt ended (`None` while it runs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptEnd {
    Running,
    Succeeded,
    Failed(String),
}

/// Attempts by state name, in order.
pub type Attempts = BTreeMap<String, Vec<AttemptEnd>>;

/// Every event of an execution.
pub async fn events(client: &aws_sdk_sfn::Client, execution_arn: &str) -> Result<Vec<HistoryEvent>> {
    let mut out = Vec::new();
    let mut pages = client
        .get_execution_history()
        .execution_arn(execution_arn)
        .max_results(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            anyhow!(
                "reading the history of {execution_arn}: {}",
                aws_sdk_sfn::error::DisplayErrorContext(e)
            )
        })?;
        out.extend(page.events().iter().cloned());
    }
    Ok(out)
}

/// The attempts of every task state that started.
pub fn attempts(events: &[HistoryEvent]) -> Attempts {
    let mut owner: HashMap<i64, String> = HashMap::new();
    let mut out: Attempts = BTreeMap::new();
    for e in events {
        let state = match e.r#type() {
            HistoryEventType::TaskStateEntered => e.state_entered_event_details().map(|d| d.name().to_string()),
            _ => owner.get(&e.previous_event_id()).cloned(),
        };
        let Some(state) = state else { continue };
        owner.insert(e.id(), state.clone());
        let list = out.entry(state).or_default();
        match e.r#type() {
            HistoryEventType::TaskScheduled => list.push(AttemptEnd::Running),
            HistoryEventType::TaskSucceeded => set_last(list, AttemptEnd::Succeeded),
            HistoryEventType::TaskFailed => {
                let d = e.task_failed_event_details();
                let msg = describe(d.and_then(|d| d.error()), d.and_then(|d| d.cause()));
                set_last(list, AttemptEnd::Failed(msg));
            }
            HistoryEventType::TaskTimedOut => {
                let d = e.task_timed_out_event_details();
                let msg = describe(
                    d.and_then(|d| d.error()).or(Some("States.Timeout")),
                    d.and_then(|d| d.cause()),
                );
                set_last(list, AttemptEnd::Failed(msg));
            }
            HistoryEventType::TaskStartFailed | HistoryEventType::TaskSubmitFailed => {
                set_last(
                    list,
                    AttemptEnd::Failed(format!("could not start the task ({:?})", e.r#type())),
                );
            }
            _ => {}
        }
    }
    out.retain(|_, v| !v.is_empty());
    out
}

fn set_last(list: &mut [AttemptEnd], end: AttemptEnd) {
    if let Some(last) = list.last_mut() {
        *last = end;
    }
}

fn describe(error: Option<&str>, cause: Option<&str>) -> String {
    match (error, cause) {
        (Some(e), Some(c)) if !c.is_empty() => format!("{c} ({e})"),
        (Some(e), _) => e.to_string(),
        (None, Some(c)) => c.to_string(),
        (None, None) => "failed".into(),
    }
}
