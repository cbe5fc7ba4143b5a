//! Actions on DAGs and runs, shared by the command line and the web UI:
//! run a date, rerun the failed tasks of a run, clear tasks, backfill a
//! range, pause and unpause.
//!
//! Each action is recorded in the run history's audit log (who, what, when,
//! with its arguments) before it is carried out, whichever front end asked.
//! The CLI commands and the UI handlers only read their arguments and call
//! these functions, so both behave the same.

use std::sync::Arc;

use anyhow::{Result, bail};
use serde_json::json;

use crate::engine::{Engine, RunReport, RunRequest, Selection};
use crate::graph::DagGraph;
use crate::report::Reporter;
use crate::schedule::backfill::{self, BackfillOptions, DateOutcome, PlannedDate, Progress};
use crate::spec::Dag;
use crate::store::{RunRecord, RunState, Store};

/// Who asks for an action on the command line: `cli:<user>`.
pub fn cli_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// Runs (or resumes) one date of a DAG with the env's reporting (or
/// `report`, a `--report` sink), as `nightjar run` does. Returns the
/// report and notes about events that could not be delivered yet.
pub async fn run_date(
    engine: Engine,
    dag: &Dag,
    req: RunRequest,
    report: Option<&str>,
    actor: &str,
) -> Result<(RunReport, Vec<String>)> {
    let t = req.logical_time;
    let date = if t.time() == chrono::NaiveTime::MIN {
        t.format("%Y-%m-%d").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M").to_string()
    };
    engine.store.record_audit(
        actor,
        "run",
        &dag.name,
        &date,
        &json!({ "env": req.env, "vars": req.vars, "selection": format!("{:?}", req.selection), "force": req.force }),
    )?;
    execute(engine, dag, req, report).await
}

/// Runs a request with the env's reporting; the caller has recorded it.
async fn execute(
    mut engine: Engine,
    dag: &Dag,
    req: RunRequest,
    report: Option<&str>,
) -> Result<(RunReport, Vec<String>)> {
    let mut notes = Vec::new();
    let reporter = attach_reporter(&mut engine, dag, req.env.as_deref(), report, &mut notes).await;
    let report = engine.run(dag, req).await;
    if let Some(r) = reporter {
        // The run's result is settled; delivery only gets a bounded
        // moment, and what it cannot send waits in the spool.
        for s in r.close(std::time::Duration::from_secs(10)).await {
            if s.spooled > 0 {
                notes.push(format!(
                    "{} event(s) for {} could not be sent yet; they wait in .nightjar/spool and go with the next run",
                    s.spooled, s.name
                ));
            }
        }
    }
    Ok((report?, notes))
}

/// Builds the run's reporter (env settings or `report`, plus the DAG's
/// alerts) and registers it with the engine. Reporting problems never stop
/// a run: they become a note and the run goes on without it.
async fn attach_reporter(
    engine: &mut Engine,
    dag: &Dag,
    env: Option<&str>,
    report: Option<&str>,
    notes: &mut Vec<String>,
) -> Option<Arc<Reporter>> {
    use crate::report::alert::{SlaWatch, system_clock};
    let built = match engine.project.select_env(env) {
        Ok(env) => {
            let env = env.clone();
            crate::report::settings::reporter_for(&engine.project, &env, dag, report).await
        }
        Err(e) => Err(e),
    };
    match built {
        Ok(Some(r)) => {
            engine.observers.push(r.clone());
            if let Some(w) = SlaWatch::new(dag, r.clone(), system_clock()) {
                engine.observers.push(Arc::new(w));
            }
            Some(r)
        }
        Ok(None) => None,
        Err(e) => {
            notes.push(format!("reporting is off for this run: {e:#}"));
            None
        }
    }
}

/// The run `run_id` of `dag`, which must be the latest run of its date
/// (an older one cannot be resumed: its date has moved on).
fn latest_run_of(store: &Store, dag: &Dag, run_id: &str) -> Result<RunRecord> {
    let Some(run) = store.run(run_id)? else {
        bail!("no run `{run_id}` (list them with `nightjar runs {}`)", dag.name);
    };
    if run.dag != dag.name {
        bail!("run {run_id} is a run of DAG {}, not {}", run.dag, dag.name);
    }
    if let Some(latest) = store.latest_run(&run.dag, &run.logical_date)?
        && latest.run_id != run.run_id
    {
        bail!(
            "run {run_id} is not the latest run of {} (that is {}): act on the latest one",
            run.logical_date,
            latest.run_id
        );
    }
    Ok(run)
}

/// The request that resumes a run: its date, env and vars, every task that
/// did not succeed.
fn resume_request(run: &RunRecord, dag: &Dag) -> Result<RunRequest> {
    let slot = slot_of(run, dag)?;
    let mut req = RunRequest::new(slot.interval.start.naive_local());
    req.env = Some(run.env.clone());
    if let Some(vars) = run.params.get("vars").and_then(|v| v.as_object()) {
        req.vars = vars
            .iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
            .collect();
    }
    // The run's own key and interval, as it was created with.
    req.slot = Some(slot);
    Ok(req)
}

fn slot_of(run: &RunRecord, dag: &Dag) -> Result<crate::spec::schedule::Slot> {
    let parse = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|e| anyhow::anyhow!("run {}: bad interval time `{s}`: {e}", run.run_id))
    };
    let (start, end) = (parse(&run.interval_start)?, parse(&run.interval_end)?);
    let tz = dag.tz;
    Ok(crate::spec::schedule::Slot {
        key: run.logical_date.clone(),
        interval: crate::spec::schedule::Interval {
            start: start.with_timezone(&tz),
            end: end.with_timezone(&tz),
        },
    })
}

/// Reruns the tasks of a run that did not succeed (failed, upstream
/// failed, interrupted, cleared): the same as running its date again.
pub async fn rerun_failed(engine: Engine, dag: &Dag, run_id: &str, actor: &str) -> Result<(RunReport, Vec<String>)> {
    let run = check_rerun(&engine.store, dag, run_id)?;
    engine
        .store
        .record_audit(actor, "rerun_failed", &dag.name, run_id, &json!({}))?;
    let req = resume_request(&run, dag)?;
    execute(engine, dag, req, None).await
}

/// Checks that a rerun of `run_id` may start now (the checks
/// [`rerun_failed`] makes), so that a caller starting it in the background
/// can refuse at once.
pub fn check_rerun(store: &Store, dag: &Dag, run_id: &str) -> Result<RunRecord> {
    let run = latest_run_of(store, dag, run_id)?;
    if run.state == RunState::Success {
        bail!("run {run_id} succeeded: nothing failed to rerun (clear a task to run it again)");
    }
    if store.is_live(&run) {
        bail!("run {run_id} is running now; wait for it to finish");
    }
    Ok(run)
}

/// Clears `task` (and, with `downstream`, every task downstream of it) in
/// the latest run of a date, so that the next run of the date runs them
/// again. Returns the tasks cleared.
pub fn clear(store: &Store, dag: &Dag, run_id: &str, task: &str, downstream: bool, actor: &str) -> Result<Vec<String>> {
    let run = latest_run_of(store, dag, run_id)?;
    if !dag.tasks.iter().any(|t| t.id == task) {
        let ids: Vec<&str> = dag.tasks.iter().map(|t| t.id.as_str()).collect();
        bail!(
            "DAG {} has no task `{task}` ({})",
            dag.name,
            crate::spec::diagnostic::unknown_name_hint(task, &ids)
        );
    }
    if store.is_live(&run) {
        bail!("run {run_id} is running now; clear its tasks once it stops");
    }
    let tasks: Vec<String> = if downstream {
        let g = DagGraph::new(dag.tasks.iter().map(|t| (t.id.as_str(), t.needs.as_slice())));
        g.downstream_of(task).into_iter().collect()
    } else {
        vec![task.to_string()]
    };
    store.record_audit(
        actor,
        "clear",
        &dag.name,
        &format!("{run_id}/{task}"),
        &json!({ "downstream": downstream, "tasks": tasks }),
    )?;
    store.clear_tasks(&run.run_id, &tasks)
}

/// The run id of the latest run of `date` (for commands given a date).
pub fn latest_run_id(store: &Store, dag: &Dag, date: &str) -> Result<String> {
    let key = date.trim();
    match store.latest_run(&dag.name, key)? {
        Some(r) => Ok(r.run_id),
        None => bail!(
            "DAG {} has no run of {key} (list them with `nightjar runs {}`)",
            dag.name,
            dag.name
        ),
    }
}

/// Backfill options from their text form (`--from`, `--to`, flags), as
/// `nightjar backfill` and the UI's backfill form take them.
#[allow(clippy::too_many_arguments)]
pub fn backfill_options(
    from: &str,
    to: &str,
    parallel: usize,
    only_failed: bool,
    rerun_succeeded: bool,
    reverse: bool,
    env: Option<String>,
    vars: std::collections::BTreeMap<String, String>,
) -> Result<BackfillOptions> {
    let date = |flag: &str, s: &str| {
        chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map_err(|_| anyhow::anyhow!("--{flag} {s}: write the date as YYYY-MM-DD"))
    };
    let (from, to) = (date("from", from)?, date("to", to)?);
    if to < from {
        bail!("--to {to} is before --from {from}");
    }
    if only_failed && rerun_succeeded {
        bail!("--only-failed and --rerun-succeeded select different dates: use one");
    }
    Ok(BackfillOptions {
        from,
        to,
        parallel: parallel.max(1),
        only_failed,
        rerun_succeeded,
        reverse,
        env,
        vars,
    })
}

/// One date of a backfill plan, as `nightjar backfill --dry-run --json`
/// prints it and the UI shows it.
pub fn plan_json(p: &PlannedDate) -> serde_json::Value {
    json!({
        "date": p.slot.key,
        "last_run": p.last.as_ref().map(|l| &l.0),
        "last_state": p.last.as_ref().map(|l| l.1.as_str()),
        "action": p.action.as_str(),
        "why": p.why,
    })
}

/// Runs a planned backfill ([`backfill::plan`]), as `nightjar backfill`
/// does.
pub async fn backfill(
    engine: Arc<Engine>,
    dag: Arc<Dag>,
    opts: &BackfillOptions,
    planned: Vec<PlannedDate>,
    progress: Arc<dyn Progress>,
    actor: &str,
) -> Result<Vec<DateOutcome>> {
    engine.store.record_audit(
        actor,
        "backfill",
        &dag.name,
        &format!("{}..{}", opts.from, opts.to),
        &json!({
            "from": opts.from.to_string(), "to": opts.to.to_string(), "parallel": opts.parallel,
            "only_failed": opts.only_failed, "rerun_succeeded": opts.rerun_succeeded,
            "reverse": opts.reverse, "env": opts.env, "vars": opts.vars,
            "dates": planned.iter().filter(|p| p.action != backfill::Action::Skip).count(),
        }),
    )?;
    backfill::run(engine, dag, opts, planned, progress).await
}

/// Pauses (`paused`) or unpauses a DAG's schedule; false when it already
/// was.
pub fn set_paused(store: &Store, dag: &str, paused: bool, actor: &str) -> Result<bool> {
    let action = if paused { "pause" } else { "unpause" };
    store.record_audit(actor, action, dag, "", &json!({}))?;
    if paused { store.pause(dag) } else { store.unpause(dag) }
}

/// A request for one date with the given selection (the UI's "run now").
pub fn date_request(dag: &Dag, date: &str, env: Option<String>, force: bool) -> Result<RunRequest> {
    let t = if date.trim().is_empty() {
        chrono::Utc::now()
            .with_timezone(&dag.tz)
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
    } else {
        crate::engine::parse_logical_time(date)?
    };
    let mut req = RunRequest::new(t);
    req.env = env;
    req.force = force;
    req.selection = Selection::All;
    Ok(req)
}
