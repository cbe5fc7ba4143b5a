//! Planning a run: which run record, which tasks, with what variables.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Context, Result, bail};
use chrono::{NaiveDate, NaiveDateTime};

use super::Engine;
use crate::data::DatasetRef;
use crate::graph::DagGraph;
use crate::spec::diagnostic::unknown_name_hint;
use crate::spec::schedule::{interval_for, logical_key};
use crate::spec::template::{TemplateContext, render_value};
use crate::spec::{Dag, Environment};
use crate::store::{NewRun, RunRecord, RunState, TaskState};

/// Which tasks of the DAG to run.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Selection {
    #[default]
    All,
    /// `--task X`: these tasks alone.
    Only(Vec<String>),
    /// `--from X`: these tasks and everything downstream of them.
    From(Vec<String>),
}

/// `2010-12-01` or `2010-12-01T05:00` (also with a space, or seconds).
pub fn parse_logical_time(s: &str) -> Result<NaiveDateTime> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap());
    }
    for f in [
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%d %H:%M:%S",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t);
        }
    }
    bail!("bad date `{s}`: write it as YYYY-MM-DD (or YYYY-MM-DDTHH:MM for sub-daily DAGs)")
}

/// The outcome of planning.
pub(super) struct Planned {
    pub run: RunRecord,
    pub already_succeeded: bool,
    pub resumed: bool,
    pub env: Environment,
    /// The template context of the run (its `task` is set per task).
    pub context: TemplateContext,
    /// Tasks this invocation runs.
    pub to_run: BTreeSet<String>,
    /// Tasks already done in this run (from an earlier invocation): their
    /// state, outputs and last attempt.
    pub prior: HashMap<String, (TaskState, Vec<DatasetRef>, u32)>,
}

pub(super) fn plan(engine: &Engine, dag: &Dag, req: &super::RunRequest) -> Result<Planned> {
    let env = engine.project.select_env(req.env.as_deref())?.clone();

    // The data interval and the run's key.
    if let Some(start) = dag.start
        && req.logical_time.date() < start
    {
        tracing::warn!("{} is before the DAG's start ({start})", req.logical_time.date());
    }
    let (interval, logical_date) = match &req.slot {
        Some(slot) => (slot.interval.clone(), slot.key.clone()),
        None => {
            let interval = interval_for(req.logical_time, dag.schedule.as_ref(), dag.tz);
            let key = logical_key(&interval.start, dag.schedule.as_ref());
            (interval, key)
        }
    };

    // Variables: the DAG's, overridden by the env's, overridden by --var.
    let vars = env.run_vars(dag, &req.vars)?;

    // The run record: resume, no-op, or new.
    let latest = engine.store.latest_run(&dag.name, &logical_date)?;
    let (run, resumed) = match latest {
        Some(r) if r.state == RunState::Success && !req.force => {
            return Ok(Planned {
                run: r,
                already_succeeded: true,
                resumed: false,
                env,
                context: empty_context(),
                to_run: BTreeSet::new(),
                prior: HashMap::new(),
            });
        }
        Some(r) if !req.force => (r, true),
        previous => {
            let params = serde_json::json!({ "vars": req.vars, "selection": format!("{:?}", req.selection) });
            let run = engine.store.create_run(&NewRun {
                after_seq: previous.as_ref().map_or(0, |r| r.seq),
                dag: &dag.name,
                logical_date: &logical_date,
                trigger: req.trigger,
                env: &env.name,
                interval_start: &interval.start.to_rfc3339(),
                interval_end: &interval.end.to_rfc3339(),
                params,
            })?;
            // A forced re-run of some tasks keeps the others' results.
            if let (Some(prev), false) = (previous, req.selection == super::Selection::All) {
                let selected = selected(dag, &req.selection)?;
                let keep: Vec<String> = dag
                    .tasks
                    .iter()
                    .map(|t| t.id.clone())
                    .filter(|t| !selected.contains(t))
                    .collect();
                engine.store.carry_over(&prev.run_id, &run.run_id, &keep)?;
            }
            (run, false)
        }
    };
    engine.store.claim_run(&run.run_id)?;
    // Attempts left "running" belong to a process that is gone.
    engine
        .store
        .interrupt_running_tasks(&run.run_id, "interrupted: the process running it stopped")?;

    let prior: HashMap<String, (TaskState, Vec<DatasetRef>, u32)> = engine
        .store
        .tasks(&run.run_id)?
        .into_iter()
        .map(|t| (t.task_id, (t.state, t.outputs, t.attempt)))
        .collect();
    let selected = selected(dag, &req.selection)?;
    let to_run = selected
        .into_iter()
        .filter(|t| !prior.get(t).is_some_and(|(s, _, _)| s.satisfies_downstream()))
        .collect();

    let context = run_context(dag, &run.run_id, &interval, vars, TemplateContext::process_env())?;

    Ok(Planned {
        run,
        already_succeeded: false,
        resumed,
        env,
        context,
        to_run,
        prior,
    })
}

/// The template context of one run (its `task` left empty): dates of the
/// interval, ids, `env`, and the DAG's vars (`vars`, overrides applied)
/// rendered. Also used to show a task's config as rendered for a run.
pub fn run_context(
    dag: &Dag,
    run_id: &str,
    interval: &crate::spec::schedule::Interval,
    vars: toml::Table,
    env: BTreeMap<String, String>,
) -> Result<TemplateContext> {
    let ds = interval.start.date_naive();
    let mut context = TemplateContext {
        ds: ds.format("%Y-%m-%d").to_string(),
        ds_nodash: ds.format("%Y%m%d").to_string(),
        interval_start: interval.start.to_rfc3339(),
        interval_end: interval.end.to_rfc3339(),
        run_id: run_id.to_string(),
        dag: dag.name.clone(),
        task: String::new(),
        vars: BTreeMap::new(),
        env,
    };
    // Vars may be templates themselves (of everything but other vars).
    let rendered = render_value(&toml::Value::Table(vars), &context)
        .map_err(|(p, e)| anyhow::anyhow!("cannot render variable `{p}`: {e}"))
        .with_context(|| format!("DAG {}", dag.file.display()))?;
    if let toml::Value::Table(t) = rendered {
        context.vars = t.into_iter().collect();
    }
    Ok(context)
}

fn selected(dag: &Dag, selection: &Selection) -> Result<BTreeSet<String>> {
    let ids: Vec<&str> = dag.tasks.iter().map(|t| t.id.as_str()).collect();
    let check = |x: &String| -> Result<()> {
        if !ids.contains(&x.as_str()) {
            bail!("DAG {} has no task `{x}` ({})", dag.name, unknown_name_hint(x, &ids));
        }
        Ok(())
    };
    Ok(match selection {
        Selection::All => ids.iter().map(|s| s.to_string()).collect(),
        Selection::Only(xs) => {
            xs.iter().try_for_each(check)?;
            xs.iter().cloned().collect()
        }
        Selection::From(xs) => {
            xs.iter().try_for_each(check)?;
            let g = DagGraph::new(dag.tasks.iter().map(|t| (t.id.as_str(), t.needs.as_slice())));
            xs.iter().flat_map(|x| g.downstream_of(x)).collect()
        }
    })
}

fn empty_context() -> TemplateContext {
    TemplateContext {
        ds: String::new(),
        ds_nodash: String::new(),
        interval_start: String::new(),
        interval_end: String::new(),
        run_id: String::new(),
        dag: String::new(),
        task: String::new(),
        vars: BTreeMap::new(),
        env: BTreeMap::new(),
    }
}
