//! Executing a planned run: ready tasks run concurrently (up to the
//! engine's parallelism), each with its retries and timeout; a failure marks
//! its downstream `upstream_failed` while independent branches finish.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use tokio::task::JoinSet;

use super::plan::Planned;
use super::retry::backoff;
use super::{ConfigError, Engine, Event, Observer, inputs, log::TaskLog};
use crate::data::{ArtifactStore, DatasetRef};
use crate::dispatch::{Dispatcher, PreparedTask};
use crate::spec::template::render_value;
use crate::spec::{Dag, Task, TaskPolicy};
use crate::steps::{Skipped, StepContext, StepOutput};
use crate::store::{RunState, Store, TaskState};

/// How often a running run proves it is alive.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(10);

pub(super) async fn execute(engine: &Engine, dag: &Dag, p: &Planned) -> Result<RunState> {
    let run_id = p.run.run_id.as_str();
    engine.emit(Event::RunStarted {
        run: &p.run,
        tasks: p.to_run.len(),
        resumed: p.resumed,
    });

    let mut state: HashMap<&str, TaskState> = HashMap::new();
    let mut outputs: HashMap<String, Vec<DatasetRef>> = HashMap::new();
    let mut last_attempt: HashMap<&str, u32> = HashMap::new();
    for t in &dag.tasks {
        let (s, outs, attempt) = p
            .prior
            .get(&t.id)
            .cloned()
            .unwrap_or((TaskState::Pending, Vec::new(), 0));
        // Tasks to run start again from pending, whatever stopped them.
        let s = if p.to_run.contains(&t.id) {
            TaskState::Pending
        } else {
            s
        };
        state.insert(&t.id, s);
        outputs.insert(t.id.clone(), outs);
        last_attempt.insert(&t.id, attempt);
    }

    // Aborted on drop, so that an early return (an error from the run
    // history) does not leave it beating for a run nobody executes, which
    // would stop another host from ever resuming the run.
    let heartbeat = AbortOnDrop({
        let store = engine.store.clone();
        let run_id = run_id.to_string();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
            loop {
                tick.tick().await;
                let _ = store.heartbeat(&run_id);
            }
        })
    });

    let mut running: JoinSet<Outcome> = JoinSet::new();
    let mut interrupted = false;
    // Whether a task ended without success since the last settling pass
    // (each pass walks the whole DAG: only do it when it can change things).
    let mut unsettled = true;
    loop {
        if unsettled {
            propagate_failures(engine, run_id, dag, p, &mut state)?;
            unsettled = false;
        }
        // Start what is ready, in file order, up to the parallelism.
        for t in &dag.tasks {
            if running.len() >= engine.parallelism.max(1) {
                break;
            }
            if state[t.id.as_str()] != TaskState::Pending || !p.to_run.contains(&t.id) {
                continue;
            }
            let ready = t
                .needs
                .iter()
                .all(|n| !p.to_run.contains(n) || state[n.as_str()].satisfies_downstream());
            if !ready {
                continue;
            }
            state.insert(&t.id, TaskState::Running);
            let job = prepare(engine, dag, p, t, &outputs, last_attempt[t.id.as_str()] + 1)?;
            running.spawn(job.run());
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            _ = engine.cancel.cancelled() => {
                running.abort_all();
                while running.join_next().await.is_some() {}
                interrupted = true;
                break;
            }
            Some(done) = running.join_next() => {
                let o = done.map_err(|e| anyhow!("task runner crashed: {e}"))?;
                let id = dag.tasks.iter().find(|t| t.id == o.task).map(|t| t.id.as_str()).unwrap_or_default();
                state.insert(id, o.state);
                unsettled |= o.state != TaskState::Success;
                if let Some(out) = o.output {
                    outputs.insert(o.task.clone(), out.datasets);
                }
            }
        }
    }
    drop(heartbeat);

    let final_state = if interrupted {
        engine.store.interrupt_running_tasks(run_id, "interrupted (Ctrl-C)")?;
        RunState::Interrupted
    } else if state
        .values()
        .any(|s| matches!(s, TaskState::Failed | TaskState::UpstreamFailed))
    {
        RunState::Failed
    } else if state.values().all(|s| s.satisfies_downstream()) {
        RunState::Success
    } else {
        RunState::Partial
    };
    engine.store.finish_run(run_id, final_state)?;
    Ok(final_state)
}

/// Settles pending tasks whose upstream will never succeed: a need that
/// failed makes them `upstream_failed`; a need that was skipped (nothing to
/// do for this date) makes them `skipped` too. Loops until nothing changes,
/// so the effect reaches every task downstream.
fn propagate_failures<'a>(
    engine: &Engine,
    run_id: &str,
    dag: &'a Dag,
    p: &Planned,
    state: &mut HashMap<&'a str, TaskState>,
) -> Result<()> {
    loop {
        let mut changed = false;
        for t in &dag.tasks {
            if state[t.id.as_str()] != TaskState::Pending || !p.to_run.contains(&t.id) {
                continue;
            }
            let need_in = |states: &[TaskState]| {
                t.needs
                    .iter()
                    .find(|n| p.to_run.contains(*n) && states.contains(&state[n.as_str()]))
            };
            if let Some(up) = need_in(&[TaskState::Failed, TaskState::UpstreamFailed]) {
                let msg = format!("upstream task `{up}` failed");
                engine
                    .store
                    .set_task_state(run_id, &t.id, TaskState::UpstreamFailed, Some(&msg))?;
                engine.emit(Event::TaskUpstreamFailed {
                    run_id,
                    task: &t.id,
                    upstream: up,
                });
                state.insert(&t.id, TaskState::UpstreamFailed);
                changed = true;
            } else if let Some(up) = need_in(&[TaskState::Skipped]) {
                let msg = format!("upstream task `{up}` was skipped");
                engine
                    .store
                    .set_task_state(run_id, &t.id, TaskState::Skipped, Some(&msg))?;
                engine.emit(Event::TaskSkipped {
                    run_id,
                    task: &t.id,
                    reason: &msg,
                });
                state.insert(&t.id, TaskState::Skipped);
                changed = true;
            }
        }
        if !changed {
            return Ok(());
        }
    }
}

/// Everything one task needs to run on its own (a `'static` future).
struct TaskJob {
    store: Arc<Store>,
    dispatcher: Arc<dyn Dispatcher>,
    observers: Vec<Arc<dyn Observer>>,
    run_id: String,
    task: String,
    policy: TaskPolicy,
    first_attempt: u32,
    /// The rendered task, or why it could not be prepared.
    prepared: Result<PreparedTask, String>,
    cx: StepContext,
}

struct Outcome {
    task: String,
    state: TaskState,
    output: Option<StepOutput>,
}

fn prepare(
    engine: &Engine,
    dag: &Dag,
    p: &Planned,
    t: &Task,
    outputs: &HashMap<String, Vec<DatasetRef>>,
    first_attempt: u32,
) -> Result<TaskJob> {
    let run_id = p.run.run_id.clone();
    let state_dir = engine.project.state_dir();
    let log_path = state_dir
        .join("logs")
        .join(&dag.name)
        .join(&run_id)
        .join(format!("{}.log", t.id));
    let log = TaskLog::open(&log_path, &t.id, engine.echo_logs)?;

    let mut ctx = p.context.clone();
    ctx.task = t.id.clone();
    let kind = engine.registry.get(&t.kind).copied();
    let prepared = match (kind, render_value(&toml::Value::Table(t.config.clone()), &ctx)) {
        (None, _) => Err(format!("unknown step kind `{}`", t.kind)),
        (_, Err((path, e))) => Err(format!("cannot render `{path}`: {e}")),
        (Some(kind), Ok(config)) => Ok(PreparedTask { kind, config }),
    };
    let (prepared, inputs) = match (prepared, inputs::resolve(t, outputs)) {
        (Ok(pt), Ok(i)) => (Ok(pt), i),
        (Err(e), _) | (_, Err(e)) => (Err(e), Default::default()),
    };
    let cx = StepContext {
        dag: dag.name.clone(),
        run_id: run_id.clone(),
        task: t.id.clone(),
        attempt: first_attempt,
        ds: p.context.ds.clone(),
        interval_start: p.context.interval_start.clone(),
        interval_end: p.context.interval_end.clone(),
        env: p.env.name.clone(),
        project_dir: engine.project.root.clone(),
        inputs,
        connections: Arc::new(p.env.connections.clone()),
        artifacts: ArtifactStore::new(state_dir.join("artifacts")),
        log,
        cancel: engine.cancel.child_token(),
        pii: Arc::new(dag.pii.iter().cloned().collect()),
    };
    Ok(TaskJob {
        store: engine.store.clone(),
        dispatcher: engine.dispatcher.clone(),
        observers: engine.observers.clone(),
        run_id,
        task: t.id.clone(),
        policy: t.policy.clone(),
        first_attempt,
        prepared,
        cx,
    })
}

impl TaskJob {
    fn emit(&self, e: Event<'_>) {
        for o in &self.observers {
            o.event(&e);
        }
    }

    /// Runs attempts until one succeeds or the retries are spent.
    async fn run(mut self) -> Outcome {
        match self.attempts().await {
            Ok((state, output)) => Outcome {
                task: self.task,
                state,
                output,
            },
            Err(e) => {
                // The run history itself failed; say so in the log and fail
                // the task rather than pretend.
                self.cx.log.note(&format!("cannot record task state: {e:#}"));
                Outcome {
                    task: self.task,
                    state: TaskState::Failed,
                    output: None,
                }
            }
        }
    }

    async fn attempts(&mut self) -> Result<(TaskState, Option<StepOutput>)> {
        let last = self.first_attempt + self.policy.retries;
        let mut attempt = self.first_attempt;
        loop {
            self.cx.attempt = attempt;
            self.store.task_started(&self.run_id, &self.task, attempt)?;
            self.emit(Event::TaskStarted {
                run_id: &self.run_id,
                task: &self.task,
                attempt,
            });
            self.cx.log.note(&format!("attempt {attempt} started"));
            let began = Instant::now();
            let result = self.attempt().await;
            match result {
                Ok(out) => {
                    let elapsed = began.elapsed();
                    self.cx
                        .log
                        .note(&format!("attempt {attempt} succeeded in {:.3}s", elapsed.as_secs_f64()));
                    self.store.task_attempt_ended(
                        &self.run_id,
                        &self.task,
                        attempt,
                        TaskState::Success,
                        None,
                        Some((&out.metrics, &out.datasets)),
                    )?;
                    self.emit(Event::TaskSucceeded {
                        run_id: &self.run_id,
                        task: &self.task,
                        attempt,
                        elapsed,
                        rows_out: out.metrics.rows_out,
                        metrics: &out.metrics,
                    });
                    return Ok((TaskState::Success, Some(out)));
                }
                Err(e) if e.downcast_ref::<Skipped>().is_some() => {
                    // Nothing to do for this date (e.g. no input file): not
                    // a failure, and not worth a retry.
                    let reason = e.downcast_ref::<Skipped>().map(|s| s.0.clone()).unwrap_or_default();
                    self.cx.log.note(&format!("skipped: {reason}"));
                    self.store.task_attempt_ended(
                        &self.run_id,
                        &self.task,
                        attempt,
                        TaskState::Skipped,
                        Some(&reason),
                        None,
                    )?;
                    self.emit(Event::TaskSkipped {
                        run_id: &self.run_id,
                        task: &self.task,
                        reason: &reason,
                    });
                    return Ok((TaskState::Skipped, None));
                }
                Err(e) => {
                    let msg = format!("{e:#}");
                    let permanent =
                        e.downcast_ref::<ConfigError>().is_some() || e.downcast_ref::<StepPanicked>().is_some();
                    self.cx.log.note(&format!("attempt {attempt} failed: {msg}"));
                    if !permanent && attempt < last {
                        let wait = backoff(&self.policy, attempt + 1, fastrand::f64());
                        self.store.task_attempt_ended(
                            &self.run_id,
                            &self.task,
                            attempt,
                            TaskState::UpForRetry,
                            Some(&msg),
                            None,
                        )?;
                        self.emit(Event::TaskRetrying {
                            run_id: &self.run_id,
                            task: &self.task,
                            attempt,
                            error: &msg,
                            wait,
                        });
                        self.cx.log.note(&format!("retrying in {:.1}s", wait.as_secs_f64()));
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                        continue;
                    }
                    self.store.task_attempt_ended(
                        &self.run_id,
                        &self.task,
                        attempt,
                        TaskState::Failed,
                        Some(&msg),
                        None,
                    )?;
                    self.emit(Event::TaskFailed {
                        run_id: &self.run_id,
                        task: &self.task,
                        attempt,
                        error: &msg,
                    });
                    return Ok((TaskState::Failed, None));
                }
            }
        }
    }

    /// One attempt, bounded by the task's timeout (which drops, and so
    /// cancels, the step's future).
    async fn attempt(&self) -> Result<StepOutput> {
        let prepared = self
            .prepared
            .as_ref()
            .map_err(|e| anyhow::Error::new(ConfigError(e.clone())))?;
        // A panicking step fails its task like any error; uncaught, it
        // would abort the whole run and leave it recorded as running.
        let fut = async {
            // Each attempt gets its own cancellation token, cancelled when
            // this future is dropped (timeout, Ctrl-C): work a step moved to
            // a blocking thread cannot be dropped, but it watches the token
            // and stops at its next batch.
            let token = self.cx.cancel.child_token();
            let _cancel_on_drop = token.clone().drop_guard();
            let mut cx = self.cx.clone();
            cx.cancel = token;
            match CatchUnwind(self.dispatcher.run_attempt(prepared, &cx)).await {
                Ok(result) => result,
                Err(panic) => Err(anyhow::Error::new(StepPanicked(panic_message(&*panic)))),
            }
        };
        match self.policy.timeout {
            None => fut.await,
            Some(limit) => match tokio::time::timeout(limit, fut).await {
                Ok(r) => r,
                Err(_) => Err(anyhow!("timed out after {}", humantime::format_duration(limit))),
            },
        }
    }
}

/// A step panicked: a bug, which retrying will not fix, so the task fails at
/// once (the run goes on).
#[derive(Debug, thiserror::Error)]
#[error("the step panicked: {0}")]
struct StepPanicked(String);

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// Polls a future, turning a panic inside it into an `Err` (the futures
/// crate's `catch_unwind`, for the boxed futures `async_trait` returns).
struct CatchUnwind<F>(F);

impl<F: Future + Unpin> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
