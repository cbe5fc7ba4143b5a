//! One task of one run, on its own: the body of `nightjar step` (the entry
//! point of containers and Lambda functions) and of each job a
//! `nightjar worker` takes.
//!
//! Inputs come from the artifact store through the manifests of the
//! task's needs; outputs go back to it, then the task's manifest. A task
//! whose manifest already exists is not run again (a message delivered
//! twice, a resumed run); a need that was skipped skips this task too.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use tokio_util::sync::CancellationToken;

use super::remote_artifacts::{Manifest, RemoteArtifacts};
use super::{Dispatcher, LocalDispatcher, PreparedTask};
use crate::data::DatasetRef;
use crate::engine::{ConfigError, log::TaskLog, parse_logical_time};
use crate::spec::schedule::interval_for;
use crate::spec::template::{TemplateContext, render_value};
use crate::spec::{Dag, Environment, Project};
use crate::steps::{Registry, Skipped, StepContext};

/// Which task of which run.
#[derive(Debug, Clone)]
pub struct StepRequest {
    pub task: String,
    pub run_id: String,
    /// The run's logical date, as in its run id (`2010-12-01`).
    pub date: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// `--var` overrides of the run.
    pub vars: BTreeMap<String, String>,
    /// `None`: NIGHTJAR_ENV, else the project's default.
    pub env: Option<String>,
}

/// How the step ended.
#[derive(Debug)]
pub enum StepOutcome {
    Success(Manifest),
    Skipped(Manifest),
    /// The task had already finished in this run: nothing ran.
    AlreadyDone(Manifest),
}

/// Why a step failed; `permanent` when retrying cannot help (a bad config).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StepFailure {
    pub message: String,
    pub permanent: bool,
}

/// Runs one task in this process, with the task's timeout.
pub async fn run_step(project: &Project, dag: &Dag, req: &StepRequest) -> Result<StepOutcome, StepFailure> {
    let fail = |e: anyhow::Error| StepFailure {
        permanent: e.downcast_ref::<ConfigError>().is_some(),
        message: format!("{e:#}"),
    };
    let task = dag.tasks.iter().find(|t| t.id == req.task).ok_or_else(|| StepFailure {
        message: format!("DAG {} has no task `{}`", dag.name, req.task),
        permanent: true,
    })?;
    let env = project.select_env(req.env.as_deref()).map_err(|e| StepFailure {
        message: format!("{e:#}"),
        permanent: true,
    })?;
    crate::secrets::install(&env.secrets, &crate::aws::AwsOptions::default())
        .await
        .map_err(fail)?;
    let store = RemoteArtifacts::for_env(project, env).await.map_err(fail)?;
    if let Some(done) = store.manifest(&dag.name, &req.run_id, &task.id).await.map_err(fail)? {
        return Ok(StepOutcome::AlreadyDone(done));
    }

    // The outputs of the needs, through their manifests.
    let mut outputs: HashMap<String, Vec<DatasetRef>> = HashMap::new();
    for need in &task.needs {
        let m = store
            .manifest(&dag.name, &req.run_id, need)
            .await
            .map_err(fail)?
            .ok_or_else(|| StepFailure {
                message: format!("upstream task `{need}` has not finished in run {}", req.run_id),
                permanent: false,
            })?;
        if m.state == "skipped" {
            let reason = format!("upstream task `{need}` was skipped");
            let manifest = skipped(&task.id, req.attempt, &reason);
            let m = store
                .publish(&dag.name, &req.run_id, manifest, None)
                .await
                .map_err(fail)?;
            return Ok(StepOutcome::Skipped(m));
        }
        outputs.insert(need.clone(), m.outputs);
    }

    let ctx = template_context(dag, env, req).map_err(|e| StepFailure {
        message: format!("{e:#}"),
        permanent: true,
    })?;
    let registry = Registry::builtin();
    let kind = registry.get(&task.kind).copied().ok_or_else(|| StepFailure {
        message: format!("unknown step kind `{}`", task.kind),
        permanent: true,
    })?;
    let mut tctx = ctx.clone();
    tctx.task = task.id.clone();
    let config = render_value(&toml::Value::Table(task.config.clone()), &tctx).map_err(|(p, e)| StepFailure {
        message: format!("cannot render `{p}`: {e}"),
        permanent: true,
    })?;
    let published = crate::engine::inputs::resolve(task, &outputs).map_err(|e| StepFailure {
        message: e,
        permanent: true,
    })?;
    // Only the datasets the task reads are downloaded: another output of
    // the same upstream may already be purged by the task reading it.
    let mut inputs = BTreeMap::new();
    // (as published, local copy) of every input, to mirror purges.
    let mut fetched: Vec<(DatasetRef, DatasetRef)> = Vec::new();
    for (name, d) in published {
        let local = store.fetch(std::slice::from_ref(&d)).await.map_err(fail)?.remove(0);
        fetched.push((d, local.clone()));
        inputs.insert(name, local);
    }
    let log_path = project
        .state_dir()
        .join("logs")
        .join(&dag.name)
        .join(&req.run_id)
        .join(format!("{}.log", task.id));
    let log = TaskLog::open(&log_path, &task.id, false).map_err(|e| fail(e.into()))?;
    let cx = StepContext {
        dag: dag.name.clone(),
        run_id: req.run_id.clone(),
        task: task.id.clone(),
        attempt: req.attempt,
        ds: ctx.ds.clone(),
        interval_start: ctx.interval_start.clone(),
        interval_end: ctx.interval_end.clone(),
        env: env.name.clone(),
        project_dir: project.root.clone(),
        inputs,
        connections: Arc::new(env.connections.clone()),
        artifacts: store.local_store(),
        log: log.clone(),
        cancel: CancellationToken::new(),
        pii: Arc::new(dag.pii.iter().cloned().collect()),
    };
    log.note(&format!("attempt {} started", req.attempt));
    let prepared = PreparedTask { kind, config };
    let token = cx.cancel.clone();
    let _cancel_on_drop = token.drop_guard();
    let attempt = LocalDispatcher.run_attempt(&prepared, &cx);
    let result = match task.policy.timeout {
        None => attempt.await,
        Some(limit) => match tokio::time::timeout(limit, attempt).await {
            Ok(r) => r,
            Err(_) => Err(anyhow!("timed out after {}", humantime::format_duration(limit))),
        },
    };
    match result {
        Ok(out) => {
            log.note(&format!("attempt {} succeeded", req.attempt));
            for uri in store.purge_consumed(&fetched).await.map_err(fail)? {
                log.note(&format!(
                    "purged {uri} from the artifact store, as the step purged its copy"
                ));
            }
            let manifest = Manifest {
                task: task.id.clone(),
                attempt: req.attempt,
                state: "success".into(),
                reason: None,
                metrics: out.metrics,
                outputs: out.datasets,
            };
            let m = store
                .publish(&dag.name, &req.run_id, manifest, Some(&log_path))
                .await
                .map_err(fail)?;
            Ok(StepOutcome::Success(m))
        }
        Err(e) if e.downcast_ref::<Skipped>().is_some() => {
            let reason = e.downcast_ref::<Skipped>().map(|s| s.0.clone()).unwrap_or_default();
            log.note(&format!("skipped: {reason}"));
            let manifest = skipped(&task.id, req.attempt, &reason);
            let m = store
                .publish(&dag.name, &req.run_id, manifest, Some(&log_path))
                .await
                .map_err(fail)?;
            Ok(StepOutcome::Skipped(m))
        }
        Err(e) => {
            log.note(&format!("attempt {} failed: {e:#}", req.attempt));
            // The log travels even when the attempt failed.
            let _ = store.publish_log(&dag.name, &req.run_id, &task.id, &log_path).await;
            Err(fail(e))
        }
    }
}

fn skipped(task: &str, attempt: u32, reason: &str) -> Manifest {
    Manifest {
        task: task.to_string(),
        attempt,
        state: "skipped".into(),
        reason: Some(reason.to_string()),
        metrics: Default::default(),
        outputs: Vec::new(),
    }
}

/// The run's template variables, as the engine computes them for a run of
/// this date (the interval from the DAG's schedule, the variables of
/// [`Environment::run_vars`], rendered).
pub fn template_context(dag: &Dag, env: &Environment, req: &StepRequest) -> Result<TemplateContext> {
    let at = parse_logical_time(&req.date)?;
    let interval = interval_for(at, dag.schedule.as_ref(), dag.tz);
    let ds = interval.start.date_naive();
    let vars = env.run_vars(dag, &req.vars)?;
    let mut context = TemplateContext {
        ds: ds.format("%Y-%m-%d").to_string(),
        ds_nodash: ds.format("%Y%m%d").to_string(),
        interval_start: interval.start.to_rfc3339(),
        interval_end: interval.end.to_rfc3339(),
        run_id: req.run_id.clone(),
        dag: dag.name.clone(),
        task: String::new(),
        vars: BTreeMap::new(),
        env: TemplateContext::process_env(),
    };
    let rendered = render_value(&toml::Value::Table(vars), &context)
        .map_err(|(p, e)| anyhow!("cannot render variable `{p}`: {e}"))
        .with_context(|| format!("DAG {}", dag.file.display()))?;
    if let toml::Value::Table(t) = rendered {
        context.vars = t.into_iter().collect();
    }
    Ok(context)
}
