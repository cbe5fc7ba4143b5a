//! `nightjar worker --queue URL`: takes the tasks Step Functions hands out
//! through an SQS queue (`.waitForTaskToken`), runs each step in process and
//! answers with the task token.
//!
//! A message is deleted as soon as it is taken: Step Functions, not SQS,
//! owns retries. While a step runs the worker sends `SendTaskHeartbeat` at a
//! third of the heartbeat timeout; a worker that dies stops beating, the
//! attempt times out (`States.HeartbeatTimeout`) and the state's `Retry`
//! hands the task out again, to any worker. Any number of workers, on any
//! number of machines, can poll one queue.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde::Deserialize;
use tokio::task::JoinSet;

use super::step::{StepOutcome, StepRequest, run_step};
use crate::sfn::states::{PERMANENT_ERROR, STEP_ERROR};
use crate::spec::{Dag, Project};
use crate::steps::Registry;

/// The message a task state sends (see `sfn::states`).
#[derive(Debug, Clone, Deserialize)]
pub struct TaskMessage {
    pub dag: String,
    pub task: String,
    pub run_id: String,
    pub date: String,
    #[serde(default)]
    pub vars: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub retry: u32,
    pub token: String,
}

pub struct WorkerOptions {
    pub queue: String,
    pub env: Option<String>,
    /// Steps run at once by this worker.
    pub concurrency: usize,
    /// Seconds between heartbeats.
    pub heartbeat_every: Duration,
    /// Stop after this many tasks (tests, batch hosts); `None`: forever.
    pub max_tasks: Option<usize>,
}

/// Polls the queue until stopped (or `max_tasks` tasks are done).
pub async fn run(project: Arc<Project>, opts: WorkerOptions) -> Result<()> {
    let env = project.select_env(opts.env.as_deref())?.clone();
    let aws = env.sfn.as_ref().map(|s| s.aws_options()).unwrap_or_default();
    let conf = crate::aws::sdk_config(&aws).await;
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let sfn = aws_sdk_sfn::Client::new(&conf);
    let mut running: JoinSet<()> = JoinSet::new();
    let mut taken = 0usize;
    loop {
        if opts.max_tasks.is_some_and(|m| taken >= m) {
            break;
        }
        while running.len() >= opts.concurrency.max(1) {
            running.join_next().await;
        }
        let room = (opts.concurrency.max(1) - running.len()).min(10) as i32;
        let got = sqs
            .receive_message()
            .queue_url(&opts.queue)
            .wait_time_seconds(20)
            .max_number_of_messages(room)
            .send()
            .await;
        let got = match got {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!(
                    "receiving from {}: {}",
                    opts.queue,
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                );
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        for m in got.messages() {
            if let Some(handle) = m.receipt_handle() {
                // Step Functions retries through the token: the message
                // itself must not come back.
                let _ = sqs
                    .delete_message()
                    .queue_url(&opts.queue)
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
            let body = m.body().unwrap_or_default();
            let msg: TaskMessage = match serde_json::from_str(body) {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("ignoring a message that is not a nightjar task ({e}): {body}");
                    continue;
                }
            };
            taken += 1;
            let project = project.clone();
            let sfn = sfn.clone();
            let env = opts.env.clone();
            let every = opts.heartbeat_every;
            running.spawn(async move {
                if let Err(e) = handle(&project, &sfn, msg, env, every).await {
                    tracing::warn!("{e:#}");
                }
            });
        }
    }
    while running.join_next().await.is_some() {}
    Ok(())
}

async fn handle(
    project: &Project,
    sfn: &aws_sdk_sfn::Client,
    msg: TaskMessage,
    env: Option<String>,
    every: Duration,
) -> Result<()> {
    eprintln!("{} {} attempt {}: started", msg.run_id, msg.task, msg.retry + 1);
    let beat = {
        let sfn = sfn.clone();
        let token = msg.token.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = sfn.send_task_heartbeat().task_token(&token).send().await {
                    tracing::warn!("heartbeat: {}", aws_sdk_sfn::error::DisplayErrorContext(e));
                }
            }
        })
    };
    let result = match load_dag(project, &msg.dag) {
        Ok(dag) => {
            let req = StepRequest {
                task: msg.task.clone(),
                run_id: msg.run_id.clone(),
                date: msg.date.clone(),
                attempt: msg.retry + 1,
                vars: msg.vars.clone(),
                env,
            };
            run_step(project, &dag, &req).await
        }
        Err(e) => Err(super::step::StepFailure {
            message: format!("{e:#}"),
            permanent: true,
        }),
    };
    beat.abort();
    match result {
        Ok(outcome) => {
            let state = match &outcome {
                StepOutcome::Success(_) => "success",
                StepOutcome::Skipped(_) => "skipped",
                StepOutcome::AlreadyDone(_) => "already done",
            };
            eprintln!("{} {} attempt {}: {state}", msg.run_id, msg.task, msg.retry + 1);
            sfn.send_task_success()
                .task_token(&msg.token)
                .output(serde_json::json!({ "state": state }).to_string())
                .send()
                .await
                .map_err(|e| anyhow!("SendTaskSuccess: {}", aws_sdk_sfn::error::DisplayErrorContext(e)))?;
        }
        Err(f) => {
            eprintln!(
                "{} {} attempt {}: failed: {}",
                msg.run_id,
                msg.task,
                msg.retry + 1,
                f.message
            );
            let error = if f.permanent { PERMANENT_ERROR } else { STEP_ERROR };
            // Step Functions keeps at most 32768 characters of a cause.
            let cause: String = f.message.chars().take(32_000).collect();
            sfn.send_task_failure()
                .task_token(&msg.token)
                .error(error)
                .cause(cause)
                .send()
                .await
                .map_err(|e| anyhow!("SendTaskFailure: {}", aws_sdk_sfn::error::DisplayErrorContext(e)))?;
        }
    }
    Ok(())
}

fn load_dag(project: &Project, name: &str) -> Result<Dag> {
    let registry = Registry::builtin();
    let dags = project.root.join("dags");
    let load = |path: &std::path::Path| {
        crate::spec::dag::load(path, project, &registry)
            .map(|(d, _)| d)
            .map_err(|e| anyhow!("{e}"))
            .with_context(|| format!("loading DAG {name} ({})", path.display()))
    };
    let direct = dags.join(format!("{name}.toml"));
    if direct.is_file() {
        return load(&direct);
    }
    // A DAG whose file is named otherwise: the file that declares the name.
    for entry in std::fs::read_dir(&dags).with_context(|| format!("reading {}", dags.display()))? {
        let path = entry?.path();
        let declares = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.parse::<toml::Table>().ok())
            .is_some_and(|t| t.get("name").and_then(|v| v.as_str()) == Some(name));
        if declares {
            return load(&path);
        }
    }
    Err(anyhow!("no DAG named `{name}` in {}", dags.display()))
}
