//! `nightjar ui`: serve the web UI, and `nightjar clear`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;
use tokio_util::sync::CancellationToken;

use super::{Cli, locate};
use crate::ui::{DEFAULT_BIND, TOKEN_VAR, UiOptions};

#[derive(Args, Debug)]
pub struct UiArgs {
    /// The address to listen on. Off loopback, NIGHTJAR_UI_TOKEN must be set.
    #[arg(long, default_value = DEFAULT_BIND, value_name = "ADDR")]
    bind: String,
    /// The folder of DAG files (default: the project's dags/).
    #[arg(long, value_name = "DIR")]
    dags: Option<PathBuf>,
    /// The environment runs started from the UI use (default: NIGHTJAR_ENV,
    /// else nightjar.toml's default_env, else `local`).
    #[arg(long, env = "NIGHTJAR_ENV")]
    env: Option<String>,
}

/// The UI's options from `--bind`, `--dags` and the environment.
pub fn options(bind: &str, dags_dir: PathBuf, env: Option<String>) -> Result<UiOptions> {
    let bind: SocketAddr = bind
        .parse()
        .with_context(|| format!("--bind {bind}: write it as IP:PORT, e.g. 127.0.0.1:8080"))?;
    let token = std::env::var(TOKEN_VAR).ok().filter(|t| !t.is_empty());
    crate::ui::check_access(&bind, token.as_deref())?;
    Ok(UiOptions {
        bind,
        dags_dir,
        token,
        env,
    })
}

pub fn ui(cli: &Cli, args: &UiArgs) -> Result<ExitCode> {
    let project = locate::project(cli, args.dags.as_deref())?;
    let dags_dir = args.dags.clone().unwrap_or_else(|| project.root.join("dags"));
    if !dags_dir.is_dir() {
        bail!("no DAG folder {} (give one with --dags DIR)", dags_dir.display());
    }
    let opts = options(&args.bind, dags_dir, args.env.clone())?;
    let store = locate::store(&project)?;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let stop = CancellationToken::new();
        let running = crate::ui::start(project, store, opts, stop.clone()).await?;
        eprintln!(
            "nightjar UI on http://{} (Ctrl-C stops; runs started here are interrupted and resume on their next run)",
            running.addr
        );
        tokio::select! {
            _ = tokio::signal::ctrl_c() => stop.cancel(),
            r = stop.cancelled() => r,
        }
        running.done.await?
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Args, Debug)]
pub struct ClearArgs {
    /// A DAG file, or the name of a DAG in the project's dags/ folder.
    dag: String,
    /// The logical date whose latest run to clear in.
    #[arg(long)]
    date: String,
    /// The task to clear.
    task: String,
    /// Clear every task downstream of it too.
    #[arg(long)]
    downstream: bool,
}

/// `nightjar clear DAG --date D TASK [--downstream]`.
pub fn clear(cli: &Cli, args: &ClearArgs) -> Result<ExitCode> {
    let (project, dag) = locate::load_dag(cli, &args.dag)?;
    let store = locate::store(&project)?;
    let run_id = crate::control::latest_run_id(&store, &dag, &args.date)?;
    let cleared = crate::control::clear(
        &store,
        &dag,
        &run_id,
        &args.task,
        args.downstream,
        &crate::control::cli_actor(),
    )?;
    if cli.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "run_id": run_id, "cleared": cleared }))?
        );
    } else if cleared.is_empty() {
        println!("nothing to clear: {run_id} has no record of {}", args.task);
    } else {
        println!("cleared in {run_id}: {}", cleared.join(", "));
        println!("run `nightjar run {} --date {}` to run them again", dag.name, args.date);
    }
    Ok(ExitCode::SUCCESS)
}
