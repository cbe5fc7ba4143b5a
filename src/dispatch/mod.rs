//! Where a task's attempt runs.
//!
//! The engine decides *when* a task runs; a dispatcher decides *where*. The
//! local dispatcher runs the step in this process. (Step Functions dispatch
//! compiles the whole DAG instead; see the `sfn` commands.)

pub mod local;
pub mod remote_artifacts;
pub mod step;
pub mod stepfunctions;
pub mod worker;

use async_trait::async_trait;

use crate::steps::{StepContext, StepKind, StepOutput};

/// A task ready to run: its kind and its config with templates rendered.
#[derive(Clone)]
pub struct PreparedTask {
    pub kind: StepKind,
    pub config: toml::Value,
}

#[async_trait]
pub trait Dispatcher: Send + Sync {
    /// Runs one attempt of a task. Dropping the future cancels the attempt.
    async fn run_attempt(&self, task: &PreparedTask, cx: &StepContext) -> anyhow::Result<StepOutput>;
}

pub use local::LocalDispatcher;
