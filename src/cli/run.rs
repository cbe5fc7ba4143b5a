//! `nightjar run`: one logical date of a DAG, with a live console report.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use clap::Args;

use super::{Cli, locate};
use crate::engine::{Engine, Event, Observer, RunRequest, Selection, parse_logical_time};
use crate::store::RunState;

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A DAG file, or the name of a DAG in the project's dags/ folder.
    dag: String,
    /// The logical date (default: today in the DAG's time zone).
    #[arg(long)]
    date: Option<String>,
    /// The environment (default: NIGHTJAR_ENV, else nightjar.toml's
    /// default_env, else `local`).
    #[arg(long, env = "NIGHTJAR_ENV")]
    env: Option<String>,
    /// Override a DAG variable: --var input=data/by-day (repeatable).
    #[arg(long = "var", value_name = "K=V")]
    vars: Vec<String>,
    /// Run only this task (repeatable).
    #[arg(long = "task", value_name = "TASK", conflicts_with = "from")]
    tasks: Vec<String>,
    /// Run this task and everything downstream of it (repeatable).
    #[arg(long = "from", value_name = "TASK")]
    from: Vec<String>,
    /// Run again even if the date already succeeded (as a new run).
    #[arg(long)]
    force: bool,
    /// Tasks running at once (default: the number of CPUs).
    #[arg(long)]
    parallelism: Option<usize>,
    /// Print every task log line as it comes.
    #[arg(long, short)]
    verbose: bool,
    /// Where to report run and task events, instead of the env's `report`
    /// settings: ndjson:PATH, stdout, sqs:URL or off.
    #[arg(long, value_name = "SINK")]
    report: Option<String>,
}

pub fn run(cli: &Cli, args: &RunArgs) -> Result<ExitCode> {
    let (project, dag) = locate::load_dag(cli, &args.dag)?;
    let logical_time = logical_time(args.date.as_deref(), &dag)?;
    let vars = parse_vars(&args.vars)?;
    let selection = if !args.tasks.is_empty() {
        Selection::Only(args.tasks.clone())
    } else if !args.from.is_empty() {
        Selection::From(args.from.clone())
    } else {
        Selection::All
    };
    let store = locate::store(&project)?;
    let mut engine = Engine::new(project, store);
    if let Some(p) = args.parallelism {
        engine.parallelism = p.max(1);
    }
    engine.echo_logs = args.verbose;
    if !cli.json {
        engine.observers.push(Arc::new(Console));
    }
    let req = RunRequest {
        logical_time,
        env: args.env.clone(),
        vars,
        selection,
        force: args.force,
        trigger: crate::store::Trigger::Manual,
        slot: None,
    };

    let rt = tokio::runtime::Runtime::new()?;
    let (report, notes) = rt.block_on(async {
        let cancel = engine.cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupting: cancelling running tasks (Ctrl-C again to exit at once)");
                cancel.cancel();
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
        crate::control::run_date(engine, &dag, req, args.report.as_deref(), &crate::control::cli_actor()).await
    })?;
    for n in notes {
        eprintln!("note: {n}");
    }

    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(match report.state {
        RunState::Success | RunState::Partial => ExitCode::SUCCESS,
        RunState::Interrupted => ExitCode::from(130),
        _ => ExitCode::FAILURE,
    })
}

/// `--date`, or today in the DAG's time zone.
pub fn logical_time(date: Option<&str>, dag: &crate::spec::Dag) -> Result<chrono::NaiveDateTime> {
    match date {
        Some(d) => parse_logical_time(d),
        None => Ok(chrono::Utc::now()
            .with_timezone(&dag.tz)
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap()),
    }
}

/// `--var K=V` flags as a map.
pub fn parse_vars(flags: &[String]) -> Result<BTreeMap<String, String>> {
    let mut vars = BTreeMap::new();
    for kv in flags {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--var {kv}: write it as NAME=VALUE");
        };
        vars.insert(k.trim().to_string(), v.to_string());
    }
    Ok(vars)
}

/// Prints run progress to stderr and the summary to stdout.
struct Console;

impl Observer for Console {
    fn event(&self, e: &Event<'_>) {
        match e {
            Event::RunStarted { run, tasks, resumed } => {
                let what = if *resumed { "resuming" } else { "starting" };
                eprintln!("{what} {} (env {}, {tasks} task(s) to run)", run.run_id, run.env);
            }
            Event::AlreadySucceeded { run } => {
                println!(
                    "{} already succeeded; nothing to do (use --force to run it again)",
                    run.run_id
                );
            }
            Event::TaskStarted { task, attempt, .. } => {
                if *attempt > 1 {
                    eprintln!("  … {task} attempt {attempt}");
                }
            }
            Event::TaskRetrying {
                task,
                attempt,
                error,
                wait,
                ..
            } => {
                eprintln!(
                    "  ↻ {task} attempt {attempt} failed: {error}; retrying in {:.1}s",
                    wait.as_secs_f64()
                );
            }
            Event::TaskSucceeded {
                task,
                elapsed,
                rows_out,
                ..
            } => {
                let rows = if *rows_out > 0 {
                    format!(", {rows_out} rows")
                } else {
                    String::new()
                };
                eprintln!("  ✓ {task} ({:.2}s{rows})", elapsed.as_secs_f64());
            }
            Event::TaskFailed {
                task, attempt, error, ..
            } => {
                eprintln!("  ✗ {task} failed (attempt {attempt}): {error}");
            }
            Event::TaskSkipped { task, reason, .. } => {
                eprintln!("  ↷ {task} skipped: {reason}");
            }
            Event::TaskUpstreamFailed { task, upstream, .. } => {
                eprintln!("  ⊘ {task} not run: upstream task `{upstream}` failed");
            }
            Event::RunFinished { report } => {
                let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
                for t in &report.tasks {
                    *counts.entry(t.state.as_str()).or_default() += 1;
                }
                let counts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
                println!(
                    "{} {} in {:.2}s ({})",
                    report.run_id,
                    report.state,
                    report.seconds,
                    counts.join(", ")
                );
                if report.state == RunState::Failed {
                    println!(
                        "  see `nightjar show {}`; run the same command again to resume",
                        report.run_id
                    );
                }
            }
        }
    }
}
