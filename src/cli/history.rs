//! `runs`, `show` and `logs`: reading the run history.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::{Cli, locate, table};

pub fn runs(cli: &Cli, dag: Option<&str>, limit: usize) -> Result<ExitCode> {
    let (_, store) = locate::history(cli)?;
    let runs = store.runs(dag, limit)?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            let tasks = store.tasks(&r.run_id).unwrap_or_default();
            let ok = tasks.iter().filter(|t| t.state.satisfies_downstream()).count();
            let state = if r.state == crate::store::RunState::Running && !store.is_live(r) {
                "running (process gone; run again to resume)".to_string()
            } else {
                r.state.to_string()
            };
            vec![
                r.run_id.clone(),
                r.logical_date.clone(),
                state,
                r.trigger.to_string(),
                r.env.clone(),
                r.started_at.clone().unwrap_or_else(|| "-".into()),
                table::duration(r.started_at.as_deref(), r.ended_at.as_deref()),
                format!("{ok}/{}", tasks.len()),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!("no runs");
    } else {
        table::print(
            &[
                "RUN", "DATE", "STATE", "TRIGGER", "ENV", "STARTED", "DURATION", "TASKS OK",
            ],
            &rows,
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn show(cli: &Cli, run_id: &str) -> Result<ExitCode> {
    let (_, store) = locate::history(cli)?;
    let Some(run) = store.run(run_id)? else {
        bail!("no run `{run_id}` (list them with `nightjar runs`)");
    };
    let tasks = store.tasks(run_id)?;
    if cli.json {
        let tasks: Vec<serde_json::Value> = tasks
            .iter()
            .map(|t| {
                let attempts = store.attempts(run_id, &t.task_id).unwrap_or_default();
                serde_json::json!({ "task": t, "attempts": attempts })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ "run": run, "tasks": tasks }))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("run       {}", run.run_id);
    println!("dag       {}", run.dag);
    println!(
        "date      {}  (interval {} .. {})",
        run.logical_date, run.interval_start, run.interval_end
    );
    println!("state     {}", run.state);
    println!("trigger   {}   env {}", run.trigger, run.env);
    println!(
        "time      {} .. {} ({})",
        run.started_at.as_deref().unwrap_or("-"),
        run.ended_at.as_deref().unwrap_or("-"),
        table::duration(run.started_at.as_deref(), run.ended_at.as_deref())
    );
    println!();
    let num = |v: Option<u64>| v.map_or("-".to_string(), |n| n.to_string());
    let rows: Vec<Vec<String>> = tasks
        .iter()
        .map(|t| {
            let m = t.metrics.as_ref();
            vec![
                t.task_id.clone(),
                t.state.to_string(),
                t.attempt.to_string(),
                table::duration(t.started_at.as_deref(), t.ended_at.as_deref()),
                num(m.map(|m| m.rows_in)),
                num(m.map(|m| m.rows_out)),
                num(m.map(|m| m.rows_quarantined)),
                num(m.map(|m| m.rows_filtered)),
                t.error
                    .clone()
                    .unwrap_or_default()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            ]
        })
        .collect();
    table::print(
        &[
            "TASK",
            "STATE",
            "ATTEMPT",
            "DURATION",
            "ROWS IN",
            "ROWS OUT",
            "QUARANTINED",
            "FILTERED",
            "ERROR",
        ],
        &rows,
    );
    // Kind-specific findings (normalize: dependency violations, orphans).
    for t in &tasks {
        if let Some(m) = t.metrics.as_ref() {
            crate::normalize::report::show_lines(&t.task_id, m)
                .iter()
                .for_each(|l| println!("{l}"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn logs(cli: &Cli, run_id: &str, task: &str) -> Result<ExitCode> {
    let (project, store) = locate::history(cli)?;
    let Some(run) = store.run(run_id)? else {
        bail!("no run `{run_id}` (list them with `nightjar runs`)");
    };
    let path = project
        .state_dir()
        .join("logs")
        .join(&run.dag)
        .join(run_id)
        .join(format!("{task}.log"));
    if !path.exists() {
        let tasks: Vec<String> = store.tasks(run_id)?.into_iter().map(|t| t.task_id).collect();
        bail!(
            "no log for task `{task}` in run {run_id} (tasks with state: {})",
            tasks.join(", ")
        );
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
