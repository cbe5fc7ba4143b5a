//! Records of the run history.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::data::DatasetRef;
use crate::steps::Metrics;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $variant),* }

        impl $name {
            pub fn as_str(&self) -> &'static str {
                match self { $(Self::$variant => $text),* }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s { $($text => Ok(Self::$variant),)* other => Err(format!("unknown {} `{other}`", stringify!($name))) }
            }
        }
    };
}

string_enum! {
    /// The state of a run.
    RunState {
        Queued = "queued",
        Running = "running",
        Success = "success",
        Failed = "failed",
        /// Stopped by Ctrl-C, or found abandoned by a dead process.
        Interrupted = "interrupted",
        /// Some tasks were left out (`--task`, `--from`); nothing failed.
        /// A later plain `run` of the date runs the rest.
        Partial = "partial",
    }
}

string_enum! {
    /// The state of a task within a run.
    TaskState {
        Pending = "pending",
        Running = "running",
        /// Failed, waiting for its next attempt.
        UpForRetry = "up_for_retry",
        Success = "success",
        Failed = "failed",
        /// Not run because a task it needs failed.
        UpstreamFailed = "upstream_failed",
        Skipped = "skipped",
        Interrupted = "interrupted",
    }
}

string_enum! {
    /// What started a run.
    Trigger {
        Manual = "manual",
        Schedule = "schedule",
        Backfill = "backfill",
    }
}

impl TaskState {
    /// Done for good in this run: success or skipped (downstream may go on).
    pub fn satisfies_downstream(self) -> bool {
        matches!(self, TaskState::Success | TaskState::Skipped)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub dag: String,
    pub logical_date: String,
    pub seq: u32,
    pub state: RunState,
    pub trigger: Trigger,
    pub env: String,
    pub interval_start: String,
    pub interval_end: String,
    pub params: serde_json::Value,
    pub created_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub pid: Option<u32>,
    pub host: Option<String>,
    pub heartbeat_at: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskRecord {
    pub run_id: String,
    pub task_id: String,
    pub state: TaskState,
    pub attempt: u32,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub error: Option<String>,
    pub metrics: Option<Metrics>,
    pub outputs: Vec<DatasetRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttemptRecord {
    pub attempt: u32,
    pub state: TaskState,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub error: Option<String>,
}
