//! `nightjar schedule` (the daemon), `schedule preview`, `pause`, `unpause`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use chrono::{Duration, Utc};
use clap::{Args, Subcommand};
use tokio_util::sync::CancellationToken;

use super::{Cli, locate, table};
use crate::engine::{Engine, parse_logical_time};
use crate::schedule::{Daemon, DaemonOptions, SystemClock};
use crate::spec::schedule::local;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ScheduleArgs {
    #[command(subcommand)]
    command: Option<ScheduleCommand>,
    /// The folder of DAG files (default: the project's dags/).
    #[arg(long, value_name = "DIR")]
    dags: Option<PathBuf>,
    /// The environment (default: NIGHTJAR_ENV, else nightjar.toml's
    /// default_env, else `local`).
    #[arg(long, env = "NIGHTJAR_ENV")]
    env: Option<String>,
    /// Override a variable of every DAG that declares it: --var K=V.
    #[arg(long = "var", value_name = "K=V")]
    vars: Vec<String>,
    /// How often DAG files, pauses and leases are looked at.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    poll: std::time::Duration,
    /// Serve the web UI in the same process (default address
    /// 127.0.0.1:8080; off loopback NIGHTJAR_UI_TOKEN must be set).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = crate::ui::DEFAULT_BIND)]
    ui: Option<String>,
}

#[derive(Subcommand, Debug)]
enum ScheduleCommand {
    /// Print a DAG's next fire times (local time with UTC offset) and the
    /// logical date each one runs.
    Preview {
        /// A DAG file, or the name of a DAG in the project's dags/ folder.
        dag: String,
        /// From this date or time, local to the DAG (default: now).
        #[arg(long)]
        from: Option<String>,
        /// How many fire times.
        #[arg(long, default_value_t = 10)]
        count: usize,
    },
}

pub fn schedule(cli: &Cli, args: &ScheduleArgs) -> Result<ExitCode> {
    if let Some(ScheduleCommand::Preview { dag, from, count }) = &args.command {
        return preview(cli, dag, from.as_deref(), *count);
    }
    let project = locate::project(cli, args.dags.as_deref())?;
    let dags_dir = args.dags.clone().unwrap_or_else(|| project.root.join("dags"));
    if !dags_dir.is_dir() {
        bail!("no DAG folder {} (give one with --dags DIR)", dags_dir.display());
    }
    let store = locate::store(&project)?;
    let ui = match &args.ui {
        Some(bind) => Some((
            super::ui::options(bind, dags_dir.clone(), args.env.clone())?,
            project.clone(),
            store.clone(),
        )),
        None => None,
    };
    let engine = Engine::new(project, store);
    let opts = DaemonOptions {
        dags_dir: dags_dir.clone(),
        env: args.env.clone(),
        vars: super::run::parse_vars(&args.vars)?,
        poll: args.poll,
    };
    let daemon = Daemon::new(engine, Arc::new(SystemClock), opts);
    eprintln!(
        "nightjar scheduler: DAGs in {} (Ctrl-C stops; runs in flight resume on the next start)",
        dags_dir.display()
    );
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            s.cancel();
        });
        let ui = match ui {
            Some((opts, project, store)) => {
                let running = crate::ui::start(project, store, opts, stop.clone()).await?;
                eprintln!("nightjar UI on http://{}", running.addr);
                Some(running)
            }
            None => None,
        };
        daemon.run(stop).await?;
        if let Some(r) = ui {
            r.done.await??;
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

fn preview(cli: &Cli, dag: &str, from: Option<&str>, count: usize) -> Result<ExitCode> {
    let (_, dag) = locate::load_dag(cli, dag)?;
    let Some(s) = dag.schedule.as_ref() else {
        bail!("DAG {} has no `schedule`: it runs only when asked", dag.name);
    };
    let from = match from {
        Some(f) => local(parse_logical_time(f)?, dag.tz).with_timezone(&Utc),
        None => Utc::now(),
    };
    let mut rows = Vec::new();
    let mut t = from - Duration::nanoseconds(1);
    for _ in 0..count {
        let Some(fire) = s.next_fire(t) else { break };
        t = fire.at.with_timezone(&Utc);
        let Some(slot) = s.slot_ending_at(&fire) else { break };
        let mut note = Vec::new();
        if fire.at.naive_local() != fire.nominal {
            note.push(format!(
                "{} does not exist (DST gap): first instant after it",
                fire.nominal.format("%H:%M")
            ));
        }
        if fire.repeat {
            note.push(format!(
                "{} again (DST overlap, run_twice)",
                fire.nominal.format("%H:%M")
            ));
        }
        rows.push(vec![
            fire.at.to_rfc3339(),
            slot.key,
            format!(
                "{} .. {}",
                slot.interval.start.to_rfc3339(),
                slot.interval.end.to_rfc3339()
            ),
            note.join("; "),
        ]);
    }
    if cli.json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| serde_json::json!({ "fire": r[0], "logical_date": r[1], "interval": r[2], "note": r[3] }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let gap = serde_json::to_value(s.dst.gap)?;
        let overlap = serde_json::to_value(s.dst.overlap)?;
        println!(
            "{} `{}` in {} (dst_gap = {gap}, dst_overlap = {overlap})",
            dag.name, s.expr, dag.tz
        );
        table::print(&["FIRES AT", "RUNS DATE", "INTERVAL", "NOTE"], &rows);
    }
    Ok(ExitCode::SUCCESS)
}

/// `nightjar pause DAG` / `unpause DAG`.
pub fn pause(cli: &Cli, dag: &str, pause: bool) -> Result<ExitCode> {
    let (project, dag) = locate::load_dag(cli, dag)?;
    let store = locate::store(&project)?;
    let changed = crate::control::set_paused(&store, &dag.name, pause, &crate::control::cli_actor())?;
    let what = if pause { "paused" } else { "unpaused" };
    if changed {
        println!("{} {what}", dag.name);
        if !pause {
            println!(
                "the scheduler runs what it missed by the DAG's catch-up rule (catchup = {})",
                dag.catchup
            );
        }
    } else {
        println!("{} was already {what}", dag.name);
    }
    Ok(ExitCode::SUCCESS)
}
