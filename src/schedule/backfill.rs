//! Backfills: one run per logical date of a range, planned against the run
//! history, resumable, and polite to the scheduler.
//!
//! - The plan says, for each date, what will run and why (never ran, failed
//!   and resumes, succeeded and is skipped or re-run, held elsewhere).
//! - Running the same command again continues: succeeded dates are skipped,
//!   failed or interrupted ones resume. With `--rerun-succeeded` the
//!   backfill is recorded (id = DAG, range and flags) so that a second
//!   invocation skips the dates the first one already re-ran.
//! - A date the scheduler has decided to run (an open fire decision) is
//!   left to it, and a date held by a live process is skipped: the engine's
//!   claim on the run makes running one date twice at once impossible.
//! - Before each new date starts, the backfill waits while the scheduler
//!   has an open decision for the DAG, so the nightly run never queues
//!   behind a long backfill.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::{NaiveDate, Utc};
use tokio::task::JoinSet;

use crate::engine::{Engine, RunReport, RunRequest};
use crate::spec::Dag;
use crate::spec::schedule::{Slot, interval_for, local_start_of, logical_key};
use crate::store::{RunState, Store, Trigger};

/// What a backfill covers and how.
#[derive(Debug, Clone)]
pub struct BackfillOptions {
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub parallel: usize,
    pub only_failed: bool,
    pub rerun_succeeded: bool,
    pub reverse: bool,
    pub env: Option<String>,
    pub vars: std::collections::BTreeMap<String, String>,
}

impl BackfillOptions {
    /// The backfill's identity: the same command continues the same one.
    pub fn id(&self, dag: &str) -> String {
        format!(
            "{dag}:{}:{}:{}{}",
            self.from,
            self.to,
            if self.only_failed { "f" } else { "" },
            if self.rerun_succeeded { "r" } else { "" }
        )
    }
}

/// What happens to one date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Run,
    Resume,
    Rerun,
    Skip,
}

impl Action {
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Run => "run",
            Action::Resume => "resume",
            Action::Rerun => "rerun",
            Action::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlannedDate {
    pub slot: Slot,
    /// The latest run of the date, if any: (run id, state).
    pub last: Option<(String, RunState)>,
    pub action: Action,
    pub why: String,
}

/// The run slots of the range, oldest first.
pub fn slots(dag: &Dag, from: NaiveDate, to: NaiveDate) -> Vec<Slot> {
    let mut out = Vec::new();
    match dag.schedule.as_ref() {
        Some(s) if !s.is_daily_or_coarser() => {
            let lo = local_start_of(from, dag.tz).with_timezone(&Utc);
            let hi = local_start_of(to + chrono::Duration::days(1), dag.tz).with_timezone(&Utc);
            for f in s.fires_between(
                lo - chrono::Duration::nanoseconds(1),
                hi - chrono::Duration::nanoseconds(1),
            ) {
                if let Some((slot, _)) = s.slot_starting_at(&f) {
                    out.push(slot);
                }
            }
        }
        sched => {
            let mut d = from;
            while d <= to {
                let interval = interval_for(d.and_hms_opt(0, 0, 0).unwrap(), sched, dag.tz);
                out.push(Slot {
                    key: logical_key(&interval.start, sched),
                    interval,
                });
                d += chrono::Duration::days(1);
            }
        }
    }
    out
}

/// Plans each date against the history.
pub fn plan(dag: &Dag, store: &Store, opts: &BackfillOptions) -> Result<Vec<PlannedDate>> {
    let floor = store.open_backfill(&opts.id(&dag.name))?;
    let scheduler_has: HashSet<String> = store
        .open_decisions(&dag.name)?
        .into_iter()
        .map(|d| d.logical_date)
        .collect();
    let mut out = Vec::new();
    for slot in slots(dag, opts.from, opts.to) {
        let latest = store.latest_run(&dag.name, &slot.key)?;
        let (action, why) = if scheduler_has.contains(&slot.key) {
            (Action::Skip, "the scheduler has decided to run it".to_string())
        } else {
            match &latest {
                None if opts.only_failed => (Action::Skip, "never ran (--only-failed)".into()),
                None => (Action::Run, "never ran".into()),
                Some(r) if r.state == RunState::Running && store.is_live(r) => (
                    Action::Skip,
                    format!("running now (pid {})", r.pid.map_or("?".into(), |p| p.to_string())),
                ),
                Some(r) if r.state == RunState::Running => {
                    (Action::Resume, "left running by a dead process: resumes".into())
                }
                Some(r) if r.state == RunState::Success => match (floor, opts.rerun_succeeded) {
                    (Some(f), true) if r.trigger == Trigger::Backfill && store.run_rowid(&r.run_id)? > f => {
                        (Action::Skip, "re-run by this backfill already".into())
                    }
                    (_, true) => (Action::Rerun, "succeeded; --rerun-succeeded runs it again".into()),
                    (_, false) => (Action::Skip, "already succeeded".into()),
                },
                Some(r) => (
                    Action::Resume,
                    format!("{}: resumes the tasks that did not succeed", r.state),
                ),
            }
        };
        out.push(PlannedDate {
            last: latest.map(|r| (r.run_id, r.state)),
            slot,
            action,
            why,
        });
    }
    if opts.reverse {
        out.reverse();
    }
    Ok(out)
}

/// The outcome of one date.
#[derive(Debug, Clone)]
pub struct DateOutcome {
    pub key: String,
    pub action: Action,
    pub state: Option<RunState>,
    pub run_id: Option<String>,
    pub seconds: f64,
    pub error: Option<String>,
}

/// Progress callbacks (the CLI draws a bar; tests need nothing).
pub trait Progress: Send + Sync {
    fn started(&self, _total: usize) {}
    fn finished(&self, _outcome: &DateOutcome) {}
}

pub struct NoProgress;
impl Progress for NoProgress {}

/// Runs the planned dates, `parallel` at a time.
pub async fn run(
    engine: Arc<Engine>,
    dag: Arc<Dag>,
    opts: &BackfillOptions,
    planned: Vec<PlannedDate>,
    progress: Arc<dyn Progress>,
) -> Result<Vec<DateOutcome>> {
    let id = opts.id(&dag.name);
    if opts.rerun_succeeded {
        engine.store.begin_backfill(&id, &dag.name, &format!("{opts:?}"))?;
    }
    let todo: Vec<PlannedDate> = planned.into_iter().filter(|p| p.action != Action::Skip).collect();
    progress.started(todo.len());
    let mut outcomes = Vec::new();
    let mut set: JoinSet<DateOutcome> = JoinSet::new();
    let mut queue = todo.into_iter();
    let parallel = opts.parallel.max(1);
    loop {
        while set.len() < parallel && !engine.cancel.is_cancelled() {
            // The scheduler first: wait while it has open decisions.
            while !engine.store.open_decisions(&dag.name)?.is_empty() && !engine.cancel.is_cancelled() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            let Some(p) = queue.next() else { break };
            let (engine, dag, opts) = (engine.clone(), dag.clone(), opts.clone());
            set.spawn(async move { run_one(&engine, &dag, &opts, p).await });
        }
        match set.join_next().await {
            Some(Ok(o)) => {
                progress.finished(&o);
                outcomes.push(o);
            }
            Some(Err(e)) => anyhow::bail!("backfill task panicked: {e}"),
            None => break,
        }
    }
    // Finished when nothing is left to do in the whole range (the dates
    // given may have been only part of it).
    if opts.rerun_succeeded
        && !engine.cancel.is_cancelled()
        && plan(&dag, &engine.store, opts)?
            .iter()
            .all(|p| p.action == Action::Skip)
    {
        engine.store.finish_backfill(&id)?;
    }
    Ok(outcomes)
}

async fn run_one(engine: &Engine, dag: &Dag, opts: &BackfillOptions, p: PlannedDate) -> DateOutcome {
    let started = Instant::now();
    let req = RunRequest {
        env: opts.env.clone(),
        vars: opts.vars.clone(),
        force: p.action == Action::Rerun,
        trigger: Trigger::Backfill,
        slot: Some(p.slot.clone()),
        ..RunRequest::new(p.slot.interval.start.naive_local())
    };
    let r: Result<RunReport> = engine.run(dag, req).await;
    match r {
        Ok(rep) => DateOutcome {
            key: p.slot.key,
            action: p.action,
            state: Some(rep.state),
            run_id: Some(rep.run_id),
            seconds: started.elapsed().as_secs_f64(),
            error: rep.tasks.iter().find_map(|t| t.error.clone()),
        },
        Err(e) => DateOutcome {
            key: p.slot.key,
            action: p.action,
            state: None,
            run_id: None,
            seconds: started.elapsed().as_secs_f64(),
            error: Some(format!("{e:#}")),
        },
    }
}
