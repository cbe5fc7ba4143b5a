//! Runs: plan, execute, retry, timeout, record.
//!
//! A run is keyed by (dag, logical date). Running a date that already
//! succeeded is a no-op unless forced; a run that failed, was interrupted,
//! or whose process died resumes from the tasks that did not succeed.

pub mod events;
mod execute;
pub mod inputs;
pub mod log;
mod plan;
pub mod retry;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use chrono::NaiveDateTime;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

pub use events::{Event, Observer};
pub use plan::{Selection, parse_logical_time, run_context};

use crate::dispatch::{Dispatcher, LocalDispatcher};
use crate::spec::{Dag, Project};
use crate::steps::Registry;
use crate::store::{RunState, Store, TaskState, Trigger};

/// A config problem found at run time (bad rendered value): retrying cannot
/// help, so the task fails at once.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The logical time (a date, or a date and time for sub-daily DAGs).
    pub logical_time: NaiveDateTime,
    /// `--env`; `None` uses `NIGHTJAR_ENV` or the project's default.
    pub env: Option<String>,
    /// `--var K=V` overrides of the DAG's `[vars]`.
    pub vars: BTreeMap<String, String>,
    pub selection: Selection,
    /// Run even if the date already succeeded (as a new run).
    pub force: bool,
    pub trigger: Trigger,
    /// The run's key and interval when the caller computed them (the
    /// scheduler and backfill, under the DAG's DST policy); `None` derives
    /// them from `logical_time`.
    pub slot: Option<crate::spec::schedule::Slot>,
}

impl RunRequest {
    pub fn new(logical_time: NaiveDateTime) -> Self {
        Self {
            logical_time,
            env: None,
            vars: BTreeMap::new(),
            selection: Selection::All,
            force: false,
            trigger: Trigger::Manual,
            slot: None,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub dag: String,
    pub logical_date: String,
    pub state: RunState,
    /// True when nothing ran because the date had already succeeded.
    pub already_succeeded: bool,
    pub tasks: Vec<TaskReport>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    pub task: String,
    pub state: TaskState,
    pub attempts: u32,
    pub error: Option<String>,
}

/// Executes runs of DAGs and records them.
pub struct Engine {
    pub project: Project,
    pub registry: Registry,
    pub store: Arc<Store>,
    pub dispatcher: Arc<dyn Dispatcher>,
    /// Tasks running at once, at most.
    pub parallelism: usize,
    /// Print task log lines to stderr as they come.
    pub echo_logs: bool,
    /// Cancelling it interrupts the run (Ctrl-C).
    pub cancel: CancellationToken,
    pub observers: Vec<Arc<dyn Observer>>,
}

impl Engine {
    pub fn new(project: Project, store: Arc<Store>) -> Self {
        Self {
            project,
            registry: Registry::builtin(),
            store,
            dispatcher: Arc::new(LocalDispatcher),
            parallelism: std::thread::available_parallelism().map_or(4, |n| n.get()),
            echo_logs: false,
            cancel: CancellationToken::new(),
            observers: Vec::new(),
        }
    }

    pub(crate) fn emit(&self, e: Event<'_>) {
        for o in &self.observers {
            o.event(&e);
        }
    }

    /// Runs (or resumes) one logical date of a DAG.
    pub async fn run(&self, dag: &Dag, req: RunRequest) -> Result<RunReport> {
        let started = std::time::Instant::now();
        // Secrets by reference are fetched before anything is recorded: a
        // run that cannot have its secrets never starts.
        let env = self.project.select_env(req.env.as_deref())?;
        crate::secrets::install(&env.secrets, &crate::aws::AwsOptions::default()).await?;
        let planned = plan::plan(self, dag, &req)?;
        let run_id = planned.run.run_id.clone();
        if planned.already_succeeded {
            self.emit(Event::AlreadySucceeded { run: &planned.run });
            return Ok(RunReport {
                run_id,
                dag: dag.name.clone(),
                logical_date: planned.run.logical_date.clone(),
                state: RunState::Success,
                already_succeeded: true,
                tasks: Vec::new(),
                seconds: started.elapsed().as_secs_f64(),
            });
        }
        let state = if planned.env.dispatch == crate::spec::project::DispatchMode::Stepfunctions {
            crate::dispatch::stepfunctions::execute(self, dag, &planned.run, &planned.env, &req.vars).await?
        } else {
            execute::execute(self, dag, &planned).await?
        };
        let tasks = self
            .store
            .tasks(&run_id)?
            .into_iter()
            .map(|t| TaskReport {
                task: t.task_id,
                state: t.state,
                attempts: t.attempt,
                error: t.error,
            })
            .collect();
        let report = RunReport {
            run_id,
            dag: dag.name.clone(),
            logical_date: planned.run.logical_date.clone(),
            state,
            already_succeeded: false,
            tasks,
            seconds: started.elapsed().as_secs_f64(),
        };
        self.emit(Event::RunFinished { report: &report });
        Ok(report)
    }
}
