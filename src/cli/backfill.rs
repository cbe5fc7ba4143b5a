//! `nightjar backfill DAG --from D --to D`: a plan diffed against history,
//! then one run per date, with a progress bar and a summary table.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::{Cli, locate, table};
use crate::engine::Engine;
use crate::schedule::backfill::{self, Action, DateOutcome, Progress};
use crate::store::RunState;

#[derive(Args, Debug)]
pub struct BackfillArgs {
    /// A DAG file, or the name of a DAG in the project's dags/ folder.
    dag: String,
    /// The first logical date (YYYY-MM-DD).
    #[arg(long)]
    from: String,
    /// The last logical date, included.
    #[arg(long)]
    to: String,
    /// Dates running at once.
    #[arg(long, default_value_t = 1)]
    parallel: usize,
    /// Only dates whose latest run failed (or was interrupted).
    #[arg(long)]
    only_failed: bool,
    /// Run dates that already succeeded again (as new runs).
    #[arg(long)]
    rerun_succeeded: bool,
    /// Newest date first.
    #[arg(long)]
    reverse: bool,
    /// Print the plan (each date, what will run and why) and stop.
    #[arg(long)]
    dry_run: bool,
    /// The environment (default: NIGHTJAR_ENV, else nightjar.toml's
    /// default_env, else `local`).
    #[arg(long, env = "NIGHTJAR_ENV")]
    env: Option<String>,
    /// Override a DAG variable: --var input=data/by-day (repeatable).
    #[arg(long = "var", value_name = "K=V")]
    vars: Vec<String>,
    /// Tasks running at once within one date (default: the number of CPUs).
    #[arg(long)]
    parallelism: Option<usize>,
}

pub fn backfill(cli: &Cli, args: &BackfillArgs) -> Result<ExitCode> {
    let (project, dag) = locate::load_dag(cli, &args.dag)?;
    let opts = crate::control::backfill_options(
        &args.from,
        &args.to,
        args.parallel,
        args.only_failed,
        args.rerun_succeeded,
        args.reverse,
        args.env.clone(),
        super::run::parse_vars(&args.vars)?,
    )?;
    let (from, to) = (opts.from, opts.to);
    let store = locate::store(&project)?;
    let planned = backfill::plan(&dag, &store, &opts)?;
    let count = |a: Action| planned.iter().filter(|p| p.action == a).count();
    let counts = format!(
        "{} date(s): {} to run, {} to resume, {} to re-run, {} skipped",
        planned.len(),
        count(Action::Run),
        count(Action::Resume),
        count(Action::Rerun),
        count(Action::Skip)
    );
    if args.dry_run {
        if cli.json {
            let v: Vec<serde_json::Value> = planned.iter().map(crate::control::plan_json).collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            let rows: Vec<Vec<String>> = planned
                .iter()
                .map(|p| {
                    vec![
                        p.slot.key.clone(),
                        p.last.as_ref().map_or("-".into(), |l| l.1.to_string()),
                        p.action.as_str().to_string(),
                        p.why.clone(),
                    ]
                })
                .collect();
            table::print(&["DATE", "LAST RUN", "ACTION", "WHY"], &rows);
            println!("{counts} (dry run: nothing ran)");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let name = dag.name.clone();
    eprintln!("backfill {name} {from} .. {to}: {counts}");
    let mut engine = Engine::new(project, store);
    if let Some(p) = args.parallelism {
        engine.parallelism = p.max(1);
    }
    let engine = Arc::new(engine);
    let bar = Arc::new(Bar::new());
    let rt = tokio::runtime::Runtime::new()?;
    let outcomes = rt.block_on(async {
        let cancel = engine.cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupting: the same command continues the backfill");
                cancel.cancel();
            }
        });
        crate::control::backfill(
            engine.clone(),
            Arc::new(dag),
            &opts,
            planned,
            bar.clone(),
            &crate::control::cli_actor(),
        )
        .await
    })?;
    bar.bar.finish_and_clear();

    let failed = outcomes.iter().filter(|o| o.state != Some(RunState::Success)).count();
    if cli.json {
        let v: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|o| {
                serde_json::json!({ "date": o.key, "action": o.action.as_str(), "state": o.state.map(|s| s.as_str()),
                    "run_id": o.run_id, "seconds": o.seconds, "error": o.error })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let mut sorted = outcomes.clone();
        sorted.sort_by(|a, b| a.key.cmp(&b.key));
        let rows: Vec<Vec<String>> = sorted
            .iter()
            .map(|o| {
                vec![
                    o.key.clone(),
                    o.action.as_str().to_string(),
                    o.state.map_or("not started".into(), |s| s.to_string()),
                    format!("{:.2}s", o.seconds),
                    o.run_id.clone().unwrap_or_else(|| "-".into()),
                    o.error
                        .as_deref()
                        .unwrap_or_default()
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                ]
            })
            .collect();
        table::print(&["DATE", "ACTION", "STATE", "TIME", "RUN", "NOTE"], &rows);
        println!(
            "{} run(s): {} succeeded, {failed} failed or not finished",
            outcomes.len(),
            outcomes.len() - failed
        );
        if failed > 0 {
            println!("run `nightjar backfill {name} --from {from} --to {to} --only-failed` to resume them");
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The progress bar: dates done / failed / left, and an ETA.
struct Bar {
    bar: ProgressBar,
    failed: std::sync::atomic::AtomicUsize,
}

impl Bar {
    fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} dates  {msg}  elapsed {elapsed}  eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self {
            bar,
            failed: Default::default(),
        }
    }
}

impl Progress for Bar {
    fn started(&self, total: usize) {
        self.bar.set_length(total as u64);
        self.bar.set_message(format!("0 failed, {total} left"));
    }
    fn finished(&self, o: &DateOutcome) {
        use std::sync::atomic::Ordering;
        if o.state != Some(RunState::Success) {
            self.failed.fetch_add(1, Ordering::Relaxed);
            self.bar.println(format!(
                "  ✗ {} {}: {}",
                o.key,
                o.state.map_or("not started".into(), |s| s.to_string()),
                o.error.as_deref().unwrap_or("").lines().next().unwrap_or("")
            ));
        }
        self.bar.inc(1);
        let left = self.bar.length().unwrap_or(0).saturating_sub(self.bar.position());
        self.bar
            .set_message(format!("{} failed, {left} left", self.failed.load(Ordering::Relaxed)));
    }
}
