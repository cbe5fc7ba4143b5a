//! The scheduler daemon: fires each DAG on its cron in its time zone.
//!
//! Every turn of the loop, for each DAG this daemon holds the lease of and
//! that is not paused:
//! 1. the catch-up rule ([`super::catchup`]) says which intervals are due;
//! 2. each is recorded as a fire decision in the run history *before*
//!    anything runs (an interval is decided once: the decision is keyed by
//!    DAG and logical date);
//! 3. open decisions start, oldest first, while fewer than
//!    `max_active_runs` runs of the DAG are active.
//!
//! A restart finds the open decisions of the last process and runs them
//! (the engine resumes their runs), so every interval runs exactly once.
//! Runs left `running` by a dead process without a decision (a killed
//! `nightjar run`) are marked failed. The lease (`dag:<name>`, renewed each
//! poll) keeps a second daemon on the same history from firing the DAG.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Utc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::catchup;
use super::clock::Clock;
use super::reload::{Change, DagSet};
use crate::engine::{Engine, RunReport, RunRequest};
use crate::spec::Dag;
use crate::spec::schedule::{Interval, Slot};
use crate::store::schedule::Decision;
use crate::store::{RunState, Trigger};

/// How a daemon runs.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// The folder of DAG files.
    pub dags_dir: PathBuf,
    pub env: Option<String>,
    pub vars: BTreeMap<String, String>,
    /// How often DAG files, pauses and leases are looked at.
    pub poll: std::time::Duration,
}

/// A log line's sink (stderr in the binary; tests collect them).
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

pub struct Daemon {
    engine: Arc<Engine>,
    clock: Arc<dyn Clock>,
    opts: DaemonOptions,
    /// This daemon's identity in leases.
    holder: String,
    set: DagSet,
    dags: BTreeMap<String, Arc<Dag>>,
    leased: HashSet<String>,
    /// DAGs another daemon holds (logged once).
    standby: HashSet<String>,
    /// Keys of runs in flight, by DAG.
    active: HashMap<String, HashSet<String>>,
    /// Per DAG, when the catch-up rule next has something to decide (its
    /// next fire): until then a turn only starts open decisions.
    next_due: HashMap<String, DateTime<Utc>>,
    /// Decisions whose last start failed (held elsewhere): not before then.
    retry_at: HashMap<(String, String), DateTime<Utc>>,
    log: LogSink,
}

type Finished = (String, String, Result<RunReport>);

fn utc_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

impl Daemon {
    pub fn new(engine: Engine, clock: Arc<dyn Clock>, opts: DaemonOptions) -> Self {
        let holder = format!(
            "{}:{}:{}",
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap_or_default()
                .trim(),
            std::process::id(),
            fastrand::u64(..)
        );
        let set = DagSet::new(&opts.dags_dir);
        Self {
            engine: Arc::new(engine),
            clock,
            opts,
            holder,
            set,
            dags: BTreeMap::new(),
            leased: HashSet::new(),
            standby: HashSet::new(),
            active: HashMap::new(),
            next_due: HashMap::new(),
            retry_at: HashMap::new(),
            log: Arc::new(|l| eprintln!("{l}")),
        }
    }

    /// Sends log lines elsewhere (tests).
    pub fn with_log(mut self, log: LogSink) -> Self {
        self.log = log;
        self
    }

    fn log(&self, msg: &str) {
        (self.log)(&format!("{} {msg}", self.clock.now().format("%Y-%m-%dT%H:%M:%SZ")));
    }

    /// Runs until `shutdown` is cancelled; then interrupts the runs in
    /// flight (their decisions stay open: the next start resumes them) and
    /// releases the leases.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<()> {
        let mut runs: JoinSet<Finished> = JoinSet::new();
        let mut next_poll = self.clock.now();
        loop {
            let now = self.clock.now();
            if now >= next_poll {
                self.reload();
                self.maintain_leases();
                next_poll = now + chrono::Duration::from_std(self.opts.poll)?;
            }
            if let Err(e) = self.decide_and_start(now, &mut runs) {
                self.log(&format!("error: {e:#}"));
            }
            let wake = self.next_fire(now).map_or(next_poll, |f| f.min(next_poll));
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.clock.sleep_until(wake) => {}
                Some(done) = runs.join_next(), if !runs.is_empty() => {
                    if let Ok(done) = done {
                        self.finished(done);
                    }
                }
            }
        }
        self.log("stopping: interrupting runs in flight");
        self.engine.cancel.cancel();
        while let Some(done) = runs.join_next().await {
            if let Ok(done) = done {
                self.finished(done);
            }
        }
        for d in self.leased.clone() {
            let _ = self.engine.store.release_lease(&format!("dag:{d}"), &self.holder);
        }
        Ok(())
    }

    fn reload(&mut self) {
        let registry = crate::steps::Registry::builtin();
        for c in self.set.poll(&self.engine.project, &registry) {
            match c {
                Change::Added(n) => self.log(&format!("{n}: loaded")),
                Change::Changed(n) => {
                    self.next_due.remove(&n);
                    self.log(&format!("{n}: reloaded (changed file)"))
                }
                Change::Removed(n) => self.log(&format!("{n}: removed; runs in flight finish")),
                Change::Invalid { file, errors } => self.log(&format!(
                    "{}: invalid, keeping the last valid version:\n{errors}",
                    file.display()
                )),
            }
        }
        self.dags = self
            .set
            .dags()
            .into_iter()
            .filter(|(_, d)| d.schedule.is_some())
            .collect();
        for gone in self.leased.clone() {
            if !self.dags.contains_key(&gone) {
                let _ = self.engine.store.release_lease(&format!("dag:{gone}"), &self.holder);
                self.leased.remove(&gone);
            }
        }
    }

    fn maintain_leases(&mut self) {
        let store = self.engine.store.clone();
        for name in self.dags.keys().cloned().collect::<Vec<_>>() {
            match store.acquire_lease(&format!("dag:{name}"), &self.holder) {
                Ok(true) => {
                    if self.leased.insert(name.clone()) {
                        self.log(&format!("{name}: scheduling (lease taken)"));
                    }
                    if let Err(e) = self.recover(&name) {
                        self.log(&format!("{name}: recovering abandoned runs: {e:#}"));
                    }
                }
                Ok(false) => {
                    if self.leased.remove(&name) {
                        self.log(&format!("{name}: lease lost to another scheduler"));
                    } else if self.standby.insert(name.clone()) {
                        self.log(&format!("{name}: another scheduler holds it; standing by"));
                    }
                }
                Err(e) => self.log(&format!("{name}: lease: {e:#}")),
            }
        }
    }

    /// Runs left running by a dead process: those with an open decision are
    /// resumed when the decision starts; the others are marked failed.
    fn recover(&self, dag: &str) -> Result<()> {
        let store = &self.engine.store;
        let open: HashSet<String> = store.open_decisions(dag)?.into_iter().map(|d| d.logical_date).collect();
        for r in store.abandoned_runs(dag)? {
            if open.contains(&r.logical_date) {
                continue;
            }
            let pid = r.pid.map_or("?".to_string(), |p| p.to_string());
            store.interrupt_running_tasks(&r.run_id, "interrupted: the process running it died")?;
            store.finish_run(&r.run_id, RunState::Failed)?;
            self.log(&format!(
                "{dag}: run {} was left running by a dead process (pid {pid}); marked failed (`nightjar run` or `backfill --only-failed` resumes it)",
                r.run_id
            ));
        }
        Ok(())
    }

    /// The earliest next fire of the DAGs this daemon fires.
    fn next_fire(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.dags
            .iter()
            .filter(|(n, _)| self.leased.contains(*n))
            .filter_map(|(_, d)| d.schedule.as_ref()?.next_fire(now))
            .map(|f| f.at.with_timezone(&Utc))
            .min()
    }

    fn decide_and_start(&mut self, now: DateTime<Utc>, runs: &mut JoinSet<Finished>) -> Result<()> {
        let store = self.engine.store.clone();
        let paused = store.paused()?;
        let names: Vec<String> = self.leased.iter().cloned().collect();
        for name in names {
            let Some(dag) = self.dags.get(&name).cloned() else {
                continue;
            };
            if paused.contains(&name) {
                continue;
            }
            if self.next_due.get(&name).is_some_and(|t| now < *t) {
                self.start_open(&name, &dag, now, runs)?;
                continue;
            }
            if let Some(n) = dag.schedule.as_ref().and_then(|s| s.next_fire(now)) {
                self.next_due.insert(name.clone(), n.at.with_timezone(&Utc));
            }
            let after = match store.latest_decision(&name)? {
                Some(d) => DateTime::parse_from_rfc3339(&d.fire_at)
                    .ok()
                    .map(|t| t.with_timezone(&Utc)),
                None => catchup::start_bound(&dag),
            };
            let decided = catchup::due(&dag, after, now);
            if let Some((oldest, newest, n)) = &decided.left_out {
                let n = n.map_or("more than max_catchup".to_string(), |n| n.to_string());
                self.log(&format!(
                    "{name}: {n} missed interval(s) {oldest} .. {newest} not run by catch-up; `nightjar backfill {name} --from {} --to {}` runs them",
                    &oldest[..10],
                    &newest[..10]
                ));
            }
            for due in decided.due {
                let d = Decision {
                    dag: name.clone(),
                    logical_date: due.slot.key.clone(),
                    fire_at: utc_text(due.fire.at.with_timezone(&Utc)),
                    interval_start: due.slot.interval.start.to_rfc3339(),
                    interval_end: due.slot.interval.end.to_rfc3339(),
                    reason: due.reason.clone(),
                    state: "queued".into(),
                    run_id: None,
                    run_state: None,
                };
                if store.record_decision(&d, &self.holder)? {
                    self.log(&format!(
                        "{name}: fire at {} -> run {} (interval {} .. {}; {})",
                        due.fire.at.to_rfc3339(),
                        d.logical_date,
                        d.interval_start,
                        d.interval_end,
                        d.reason
                    ));
                }
            }
            self.start_open(&name, &dag, now, runs)?;
        }
        Ok(())
    }

    /// Starts open decisions, oldest first, within max_active_runs.
    fn start_open(
        &mut self,
        name: &str,
        dag: &Arc<Dag>,
        now: DateTime<Utc>,
        runs: &mut JoinSet<Finished>,
    ) -> Result<()> {
        let store = self.engine.store.clone();
        let name = name.to_string();
        for d in store.open_decisions(&name)? {
            let active = self.active.entry(name.clone()).or_default();
            if active.len() >= dag.max_active_runs as usize {
                break;
            }
            if active.contains(&d.logical_date)
                || self
                    .retry_at
                    .get(&(name.clone(), d.logical_date.clone()))
                    .is_some_and(|t| *t > now)
            {
                continue;
            }
            let Some(slot) = slot_of(&d, dag) else {
                self.log(&format!(
                    "{name}: decision {} has a bad interval; skipped",
                    d.logical_date
                ));
                continue;
            };
            active.insert(d.logical_date.clone());
            store.decision_started(&name, &d.logical_date)?;
            let req = RunRequest {
                logical_time: slot.interval.start.naive_local(),
                env: self.opts.env.clone(),
                vars: self.opts.vars.clone(),
                trigger: Trigger::Schedule,
                slot: Some(slot),
                ..RunRequest::new(d.interval_start_naive())
            };
            let engine = self.engine.clone();
            let dag = dag.clone();
            let key = d.logical_date.clone();
            let n = name.clone();
            runs.spawn(async move {
                let r = engine.run(&dag, req).await;
                (n, key, r)
            });
        }
        Ok(())
    }

    fn finished(&mut self, (dag, key, result): Finished) {
        if let Some(a) = self.active.get_mut(&dag) {
            a.remove(&key);
        }
        match result {
            Ok(report) => {
                if report.state == RunState::Interrupted {
                    // Stopping: the decision stays open for the next start.
                    self.log(&format!("{dag}: run {} interrupted", report.run_id));
                    return;
                }
                let _ = self
                    .engine
                    .store
                    .decision_done(&dag, &key, &report.run_id, report.state.as_str());
                let what = if report.already_succeeded {
                    "had already succeeded".to_string()
                } else {
                    format!("{} in {:.1}s", report.state, report.seconds)
                };
                self.log(&format!("{dag}: run {} {what}", report.run_id));
            }
            Err(e) => {
                let at = self.clock.now() + chrono::Duration::from_std(self.opts.poll).unwrap_or_default();
                self.retry_at.insert((dag.clone(), key.clone()), at);
                self.log(&format!(
                    "{dag}: run {key} could not start: {e:#}; trying again at the next poll"
                ));
            }
        }
    }
}

impl Decision {
    fn interval_start_naive(&self) -> chrono::NaiveDateTime {
        DateTime::parse_from_rfc3339(&self.interval_start)
            .map(|t| t.naive_local())
            .unwrap_or_default()
    }
}

fn slot_of(d: &Decision, dag: &Dag) -> Option<Slot> {
    let p = |s: &str| DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&dag.tz));
    Some(Slot {
        key: d.logical_date.clone(),
        interval: Interval {
            start: p(&d.interval_start)?,
            end: p(&d.interval_end)?,
        },
    })
}
