//! `nightjar preview DAG TASK`: the schema and first rows of a task's
//! output, so users see their data while writing a DAG.
//!
//! When the task has not succeeded yet for the date, it runs it (and the
//! upstream tasks it needs) first, as a normal run limited to those tasks:
//! a later `nightjar run` of the date reuses their results.

use std::process::ExitCode;

use anyhow::{Result, bail};
use arrow::record_batch::RecordBatchReader;
use clap::Args;

use super::{Cli, locate};
use crate::data::artifact::open;
use crate::engine::{Engine, RunRequest, Selection};
use crate::graph::DagGraph;
use crate::store::{RunState, TaskState};

#[derive(Args, Debug)]
pub struct PreviewArgs {
    /// A DAG file, or the name of a DAG in the project's dags/ folder.
    pub(super) dag: String,
    /// The task whose output to show.
    pub(super) task: String,
    /// The logical date (default: today in the DAG's time zone).
    #[arg(long)]
    pub(super) date: Option<String>,
    /// Rows to show.
    #[arg(long, default_value_t = 10)]
    pub(super) rows: usize,
    /// Override a DAG variable: --var input=data/by-day (repeatable).
    #[arg(long = "var", value_name = "K=V")]
    pub(super) vars: Vec<String>,
    /// The environment.
    #[arg(long, env = "NIGHTJAR_ENV")]
    pub(super) env: Option<String>,
}

pub fn preview(cli: &Cli, args: &PreviewArgs) -> Result<ExitCode> {
    let Some((_, run_id, outputs)) = task_outputs(cli, args)? else {
        return Ok(ExitCode::SUCCESS);
    };
    for d in &outputs {
        let reader = open(d, args.rows.max(1))?;
        let schema = reader.schema();
        println!(
            "output `{}` of {} ({} rows)",
            d.name,
            run_id,
            d.rows.map_or("?".into(), |r| r.to_string())
        );
        for f in schema.fields() {
            println!("  {:<24} {}", f.name(), f.data_type());
        }
        let batches: Vec<_> = reader.take(1).collect::<Result<_, _>>()?;
        let first: Vec<_> = batches
            .iter()
            .map(|b| b.slice(0, b.num_rows().min(args.rows)))
            .collect();
        println!("{}", arrow::util::pretty::pretty_format_batches(&first)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs a task (and what it needs) for the date when it has not succeeded
/// yet, and returns its outputs (None, after saying so, when it has none).
/// Shared with `nightjar pii scan DAG TASK`.
pub(super) fn task_outputs(
    cli: &Cli,
    args: &PreviewArgs,
) -> Result<Option<(crate::spec::Dag, String, Vec<crate::data::DatasetRef>)>> {
    let (project, dag) = locate::load_dag(cli, &args.dag)?;
    if !dag.tasks.iter().any(|t| t.id == args.task) {
        let ids: Vec<&str> = dag.tasks.iter().map(|t| t.id.as_str()).collect();
        bail!(
            "DAG {} has no task `{}` ({})",
            dag.name,
            args.task,
            crate::spec::diagnostic::unknown_name_hint(&args.task, &ids)
        );
    }
    let logical_time = super::run::logical_time(args.date.as_deref(), &dag)?;
    let store = locate::store(&project)?;
    let engine = Engine::new(project, store.clone());
    let upstream: Vec<String> = DagGraph::new(dag.tasks.iter().map(|t| (t.id.as_str(), t.needs.as_slice())))
        .upstream_of(&args.task)
        .into_iter()
        .collect();
    let req = RunRequest {
        selection: Selection::Only(upstream),
        env: args.env.clone(),
        vars: super::run::parse_vars(&args.vars)?,
        ..RunRequest::new(logical_time)
    };
    let rt = tokio::runtime::Runtime::new()?;
    let report = rt.block_on(engine.run(&dag, req))?;
    if matches!(report.state, RunState::Failed | RunState::Interrupted) {
        bail!(
            "the run for the preview {}; see `nightjar show {}`",
            report.state,
            report.run_id
        );
    }
    let tasks = store.tasks(&report.run_id)?;
    let Some(t) = tasks
        .iter()
        .find(|t| t.task_id == args.task && t.state == TaskState::Success)
    else {
        bail!("task `{}` did not succeed in {}", args.task, report.run_id);
    };
    if t.outputs.is_empty() {
        println!(
            "task `{}` has no output dataset (it is a {} step)",
            args.task,
            dag.tasks
                .iter()
                .find(|x| x.id == args.task)
                .map_or("", |x| x.kind.as_str())
        );
        return Ok(None);
    }
    let outputs = t.outputs.clone();
    Ok(Some((dag, report.run_id, outputs)))
}
