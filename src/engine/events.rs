//! What happens during a run, for whoever watches: the console now,
//! SQS and CloudWatch reporters later.

use std::time::Duration;

use crate::store::RunRecord;

use super::RunReport;

#[derive(Debug)]
pub enum Event<'a> {
    RunStarted {
        run: &'a RunRecord,
        tasks: usize,
        resumed: bool,
    },
    AlreadySucceeded {
        run: &'a RunRecord,
    },
    TaskStarted {
        run_id: &'a str,
        task: &'a str,
        attempt: u32,
    },
    TaskRetrying {
        run_id: &'a str,
        task: &'a str,
        attempt: u32,
        error: &'a str,
        wait: Duration,
    },
    TaskSucceeded {
        run_id: &'a str,
        task: &'a str,
        attempt: u32,
        elapsed: Duration,
        rows_out: u64,
        /// The step's full row accounting (rows in, quarantined, ...).
        metrics: &'a crate::steps::Metrics,
    },
    TaskFailed {
        run_id: &'a str,
        task: &'a str,
        attempt: u32,
        error: &'a str,
    },
    /// Nothing to do for this date (the task said so, or an upstream task
    /// was skipped).
    TaskSkipped {
        run_id: &'a str,
        task: &'a str,
        reason: &'a str,
    },
    TaskUpstreamFailed {
        run_id: &'a str,
        task: &'a str,
        upstream: &'a str,
    },
    RunFinished {
        report: &'a RunReport,
    },
}

/// Receives run events. Must not block: it is called on the engine's task.
pub trait Observer: Send + Sync {
    fn event(&self, e: &Event<'_>);
}
