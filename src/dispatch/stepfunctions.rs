//! Runs through AWS Step Functions (`[env.NAME] dispatch = "stepfunctions"`).
//!
//! The engine plans the run as usual (run record, resume, no-op when done);
//! then this deploys the DAG's state machine (a no-op when unchanged),
//! starts an execution named after the run (`<run id>-<n>`, n counting the
//! executions of the run), polls it, and mirrors every task's attempts,
//! errors, rows and outputs into the local run history, so `runs`, `show`
//! and `logs` work as for local runs. Tasks that already succeeded in this
//! run find their manifest in the artifact store and do not run again.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, anyhow, bail};

use super::remote_artifacts::RemoteArtifacts;
use crate::engine::{Engine, Event};
use crate::graph::DagGraph;
use crate::sfn::history::{AttemptEnd, attempts, events};
use crate::sfn::{self, deploy, names};
use crate::spec::{Dag, Environment};
use crate::store::{RunRecord, RunState, TaskState};

/// Runs `run` of `dag` as a Step Functions execution; returns its end state.
pub async fn execute(
    engine: &Engine,
    dag: &Dag,
    run: &RunRecord,
    env: &Environment,
    vars: &BTreeMap<String, String>,
) -> Result<RunState> {
    let Some(settings) = env.sfn.as_ref() else {
        bail!(
            "env `{}` dispatches through Step Functions but has no `sfn` settings",
            env.name
        )
    };
    let compiled = sfn::compile(dag, settings)?;
    let deployed = deploy::deploy(settings, &compiled).await?;
    let client = deploy::client(settings).await;
    let input = sfn::execution_input(&dag.name, &run.run_id, &run.logical_date, vars);
    engine.emit(Event::RunStarted {
        run,
        tasks: dag.tasks.len(),
        resumed: false,
    });

    let exec_arn = start(&client, &deployed.arn, &run.run_id, &input).await?;
    // (task, attempt index) already reported to the observers.
    let mut reported: BTreeSet<(String, usize)> = BTreeSet::new();
    eprintln!("  execution {exec_arn}");
    let status = loop {
        tokio::select! {
            _ = engine.cancel.cancelled() => {
                let _ = client.stop_execution().execution_arn(&exec_arn).cause("interrupted (Ctrl-C)").send().await;
                break None;
            }
            _ = tokio::time::sleep(settings.poll_interval()) => {}
        }
        let _ = engine.store.heartbeat(&run.run_id);
        let d = client
            .describe_execution()
            .execution_arn(&exec_arn)
            .send()
            .await
            .map_err(|e| anyhow!("polling {exec_arn}: {}", aws_sdk_sfn::error::DisplayErrorContext(e)))?;
        let s = d.status().as_str().to_string();
        if s != "RUNNING" {
            break Some(s);
        }
        if !engine.observers.is_empty() {
            // Live progress: attempts that ended since the last poll.
            if let Ok(h) = events(&client, &exec_arn).await {
                report_progress(engine, run, &compiled, &h, &mut reported);
            }
        }
    };

    let history = events(&client, &exec_arn).await?;
    let artifacts = RemoteArtifacts::for_env(&engine.project, env).await?;
    mirror(engine, dag, run, &compiled, &history, &artifacts, &reported).await?;
    let state = match status.as_deref() {
        None => RunState::Interrupted,
        Some("SUCCEEDED") => RunState::Success,
        Some(_) => RunState::Failed,
    };
    engine.store.finish_run(&run.run_id, state)?;
    Ok(state)
}

/// Starts the run's next execution: `<run id>-1`, `-2`, ... (names are
/// unique per state machine; an existing running execution of the same
/// name and input is returned as is, so a restarted `run` re-attaches).
async fn start(client: &aws_sdk_sfn::Client, machine: &str, run_id: &str, input: &str) -> Result<String> {
    let base: String = run_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    for n in 1..1000 {
        let name = names::fit(&format!("{base}-{n}"), names::MAX_NAME);
        match client
            .start_execution()
            .state_machine_arn(machine)
            .name(&name)
            .input(input)
            .send()
            .await
        {
            Ok(out) => return Ok(out.execution_arn().to_string()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_execution_already_exists()) => continue,
            Err(e) => bail!(
                "starting execution {name}: {} (on moto older than 5.2.5 a second execution fails with an \
                 internal error: getmoto/moto#10077)",
                aws_sdk_sfn::error::DisplayErrorContext(e)
            ),
        }
    }
    bail!("run {run_id} already has 999 executions")
}

/// Writes what the execution did into the run history.
async fn mirror(
    engine: &Engine,
    dag: &Dag,
    run: &RunRecord,
    compiled: &sfn::Compiled,
    history: &[aws_sdk_sfn::types::HistoryEvent],
    artifacts: &RemoteArtifacts,
    reported: &BTreeSet<(String, usize)>,
) -> Result<()> {
    let store = &engine.store;
    let by_state = attempts(history);
    let prior: BTreeMap<String, (TaskState, u32)> = store
        .tasks(&run.run_id)?
        .into_iter()
        .map(|t| (t.task_id, (t.state, t.attempt)))
        .collect();
    let graph = DagGraph::new(dag.tasks.iter().map(|t| (t.id.as_str(), t.needs.as_slice())));
    let mut failed: Vec<String> = Vec::new();
    let mut not_started: Vec<String> = Vec::new();
    for t in &dag.tasks {
        let (before, base) = prior.get(&t.id).copied().unwrap_or((TaskState::Pending, 0));
        if before.satisfies_downstream() {
            continue;
        }
        let state_name = &compiled.state_names[&t.id];
        let Some(list) = by_state.get(state_name) else {
            not_started.push(t.id.clone());
            continue;
        };
        let log_path = engine
            .project
            .state_dir()
            .join("logs")
            .join(&dag.name)
            .join(&run.run_id)
            .join(format!("{}.log", t.id));
        let _ = artifacts.fetch_log(&dag.name, &run.run_id, &t.id, &log_path).await;
        for (i, end) in list.iter().enumerate() {
            let n = base + i as u32 + 1;
            let last = i + 1 == list.len();
            store.task_started(&run.run_id, &t.id, n)?;
            match end {
                AttemptEnd::Running => store.task_attempt_ended(
                    &run.run_id,
                    &t.id,
                    n,
                    TaskState::Interrupted,
                    Some("the execution stopped while it ran"),
                    None,
                )?,
                AttemptEnd::Succeeded => {
                    let m = artifacts.manifest(&dag.name, &run.run_id, &t.id).await?;
                    let metrics = m.as_ref().map(|m| m.metrics.clone()).unwrap_or_default();
                    let rows_out = metrics.rows_out;
                    match m {
                        Some(m) if m.state == "skipped" => {
                            let reason = m.reason.clone().unwrap_or_default();
                            store.task_attempt_ended(&run.run_id, &t.id, n, TaskState::Skipped, Some(&reason), None)?;
                            engine.emit(Event::TaskSkipped {
                                run_id: &run.run_id,
                                task: &t.id,
                                reason: &reason,
                            });
                            continue;
                        }
                        Some(m) => store.task_attempt_ended(
                            &run.run_id,
                            &t.id,
                            n,
                            TaskState::Success,
                            None,
                            Some((&m.metrics, &m.outputs)),
                        )?,
                        None => {
                            // The resource said success but the step left no
                            // manifest: e.g. an ECS container whose
                            // `nightjar step` exited non-zero without failing
                            // the state. Its outputs do not exist: a failure.
                            let msg = "the task state succeeded but the step left no manifest in the artifact \
                                       store (did `nightjar step` fail inside the container or function?)";
                            let state = if last { TaskState::Failed } else { TaskState::UpForRetry };
                            store.task_attempt_ended(&run.run_id, &t.id, n, state, Some(msg), None)?;
                            if last {
                                failed.push(t.id.clone());
                            }
                            continue;
                        }
                    }
                    if !reported.contains(&(t.id.clone(), i)) {
                        engine.emit(Event::TaskSucceeded {
                            run_id: &run.run_id,
                            task: &t.id,
                            attempt: n,
                            elapsed: std::time::Duration::ZERO,
                            rows_out,
                            metrics: &metrics,
                        });
                    }
                }
                AttemptEnd::Failed(err) => {
                    let state = if last { TaskState::Failed } else { TaskState::UpForRetry };
                    store.task_attempt_ended(&run.run_id, &t.id, n, state, Some(err), None)?;
                    if last {
                        failed.push(t.id.clone());
                        engine.emit(Event::TaskFailed {
                            run_id: &run.run_id,
                            task: &t.id,
                            attempt: n,
                            error: err,
                        });
                    }
                }
            }
        }
    }
    for t in not_started {
        let up = graph.upstream_of(&t);
        let msg = match failed.iter().find(|f| up.contains(*f)) {
            Some(f) => format!("upstream task `{f}` failed"),
            None => "not run: the execution ended before it (a task it was grouped after failed)".to_string(),
        };
        store.set_task_state(&run.run_id, &t, TaskState::UpstreamFailed, Some(&msg))?;
    }
    Ok(())
}

/// Emits the attempts that ended since the last call: successes, and
/// failures followed by another attempt (a final failure is reported when
/// the execution is mirrored).
fn report_progress(
    engine: &Engine,
    run: &RunRecord,
    compiled: &sfn::Compiled,
    history: &[aws_sdk_sfn::types::HistoryEvent],
    reported: &mut BTreeSet<(String, usize)>,
) {
    let tasks = compiled.tasks_by_state();
    for (state, list) in attempts(history) {
        let Some(task) = tasks.get(&state) else { continue };
        for (i, end) in list.iter().enumerate() {
            if reported.contains(&(task.clone(), i)) {
                continue;
            }
            match end {
                AttemptEnd::Succeeded => engine.emit(Event::TaskSucceeded {
                    run_id: &run.run_id,
                    task,
                    attempt: i as u32 + 1,
                    elapsed: std::time::Duration::ZERO,
                    rows_out: 0,
                    metrics: &crate::steps::Metrics::default(),
                }),
                AttemptEnd::Failed(err) if i + 1 < list.len() => engine.emit(Event::TaskRetrying {
                    run_id: &run.run_id,
                    task,
                    attempt: i as u32 + 1,
                    error: err,
                    wait: std::time::Duration::ZERO,
                }),
                _ => continue,
            }
            reported.insert((task.clone(), i));
        }
    }
}
