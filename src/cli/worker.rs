//! `nightjar worker --queue URL`: run the steps Step Functions hands out.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::{Cli, locate};
use crate::dispatch::worker::{WorkerOptions, run};

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The SQS queue URL of the env's `sfn` settings.
    #[arg(long)]
    queue: String,
    #[arg(long, env = "NIGHTJAR_ENV")]
    env: Option<String>,
    /// Steps this worker runs at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Stop after this many tasks (default: run until killed).
    #[arg(long)]
    max_tasks: Option<usize>,
}

pub fn worker(cli: &Cli, args: &WorkerArgs) -> Result<ExitCode> {
    let project = locate::project(cli, None)?;
    let env = project.select_env(args.env.as_deref())?;
    let beat = env.sfn.as_ref().map_or(60, |s| s.heartbeat_seconds());
    let opts = WorkerOptions {
        queue: args.queue.clone(),
        env: args.env.clone(),
        concurrency: args.concurrency,
        heartbeat_every: Duration::from_secs_f64((beat as f64 / 3.0).max(1.0)),
        max_tasks: args.max_tasks,
    };
    eprintln!("worker: polling {} ({} at once)", args.queue, args.concurrency);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(run(Arc::new(project), opts))?;
    Ok(ExitCode::SUCCESS)
}
