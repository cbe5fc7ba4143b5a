//! `nightjar step`: run one task of one run in this process, against the
//! env's artifact store (the entry point of containers and Lambda).

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use super::{Cli, locate, run::parse_vars};
use crate::dispatch::step::{StepOutcome, StepRequest, run_step};

#[derive(Args, Debug)]
pub struct StepArgs {
    /// A DAG file, or the name of a DAG in the project's dags/ folder.
    #[arg(long)]
    dag: String,
    #[arg(long)]
    task: String,
    /// The run id (`dag@date`), as the run's other tasks use it.
    #[arg(long = "run")]
    run_id: String,
    /// The run's logical date.
    #[arg(long)]
    date: String,
    /// Retries so far (Step Functions' `$$.State.RetryCount`): attempt = retry + 1.
    #[arg(long, default_value_t = 0)]
    retry: u32,
    #[arg(long, env = "NIGHTJAR_ENV")]
    env: Option<String>,
    /// The run's variable overrides (repeatable K=V).
    #[arg(long = "var", value_name = "K=V")]
    vars: Vec<String>,
    /// The run's variable overrides as a JSON object (from Step Functions).
    #[arg(long)]
    vars_json: Option<String>,
}

pub fn step(cli: &Cli, args: &StepArgs) -> Result<ExitCode> {
    let (project, dag) = locate::load_dag(cli, &args.dag)?;
    let mut vars: BTreeMap<String, String> = match &args.vars_json {
        Some(j) => serde_json::from_str(j).context("--vars-json must be a JSON object of strings")?,
        None => BTreeMap::new(),
    };
    vars.extend(parse_vars(&args.vars)?);
    let req = StepRequest {
        task: args.task.clone(),
        run_id: args.run_id.clone(),
        date: args.date.clone(),
        attempt: args.retry + 1,
        vars,
        env: args.env.clone(),
    };
    let rt = tokio::runtime::Runtime::new()?;
    match rt.block_on(run_step(&project, &dag, &req)) {
        Ok(outcome) => {
            let (what, m) = match &outcome {
                StepOutcome::Success(m) => ("succeeded", m),
                StepOutcome::Skipped(m) => ("skipped", m),
                StepOutcome::AlreadyDone(m) => ("already done", m),
            };
            if cli.json {
                println!("{}", serde_json::to_string(m)?);
            } else {
                println!("{} {what} ({} rows out)", args.task, m.metrics.rows_out);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(f) => {
            eprintln!(
                "error: {}{}",
                f.message,
                if f.permanent { " (not retryable)" } else { "" }
            );
            Ok(ExitCode::from(if f.permanent { 2 } else { 1 }))
        }
    }
}
