//! Amazon States Language out of a decomposed DAG.
//!
//! The state that flows through the machine stays tiny whatever the DAG:
//! tasks read the run id and logical date from the execution input
//! (`$$.Execution.Input`), discard their result (`ResultPath: null`), and a
//! parallel group hands its branches `{"failed": false}` and keeps only one
//! flag per branch (`ResultSelector`). Artifacts never travel through the
//! state: a step finds its inputs in the artifact store by dag/run/task.
//!
//! Failure: every task catches its error (after its retries) and jumps to
//! its branch's failure exit, which ends that branch with
//! `{"failed": true}`; the other branches of the group run to their end.
//! After a group, a `Choice` sends any failed branch to the enclosing
//! failure exit, up to the top, where a `Fail` state fails the execution.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::decompose::{Block, Ordered};
use super::settings::{ResourceKind, SfnSettings};
use crate::spec::{Dag, TaskPolicy};

/// The error a worker reports for a failure retrying cannot fix (a bad
/// config); it is not retried.
pub const PERMANENT_ERROR: &str = "nightjar.Permanent";
/// The error of a failed attempt.
pub const STEP_ERROR: &str = "nightjar.StepFailed";
/// The error the execution fails with when a task failed.
pub const TASKS_FAILED: &str = "nightjar.TasksFailed";

/// Longest wait between retries (a day, like local runs).
const MAX_DELAY_SECONDS: u64 = 86_400;

pub struct Builder<'a> {
    pub dag: &'a Dag,
    pub ordered: &'a Ordered,
    pub settings: &'a SfnSettings,
    /// State names by task id.
    pub names: &'a BTreeMap<String, String>,
    counter: usize,
}

/// Where the states of one list go on failure and when done.
struct Exits {
    fail: String,
    /// Only needed when a group ends the list (a `Choice` cannot end it).
    done: String,
    top: bool,
}

impl<'a> Builder<'a> {
    pub fn new(
        dag: &'a Dag,
        ordered: &'a Ordered,
        settings: &'a SfnSettings,
        names: &'a BTreeMap<String, String>,
    ) -> Self {
        Self {
            dag,
            ordered,
            settings,
            names,
            counter: 0,
        }
    }

    /// The whole definition.
    pub fn definition(&mut self, root: &Block, comment: String) -> Value {
        let items: Vec<Block> = match root {
            Block::Seq(xs) => xs.clone(),
            other => vec![other.clone()],
        };
        let exits = Exits {
            fail: "tasks failed #0".into(),
            done: "succeeded #0".into(),
            top: true,
        };
        let (start, states) = self.list(&items, &exits);
        json!({ "Comment": comment, "StartAt": start, "States": states })
    }

    fn next_id(&mut self) -> usize {
        self.counter += 1;
        self.counter
    }

    /// One state list (the top level or a branch): its start and states.
    fn list(&mut self, items: &[Block], exits: &Exits) -> (String, Map<String, Value>) {
        let mut states = Map::new();
        let mut needs_fail = false;
        let mut needs_done = false;
        // Built back to front, so that each element knows its successor.
        let mut next: Option<String> = None;
        for item in items.iter().rev() {
            let first = match item {
                Block::Task(t) => {
                    let name = self.names[&self.ordered.ids[*t]].clone();
                    let state = self.task_state(*t, next.as_deref(), &exits.fail);
                    states.insert(name.clone(), state);
                    needs_fail = true;
                    name
                }
                Block::Par(branches) => {
                    let n = self.next_id();
                    let par = format!("parallel #{n}");
                    let check = format!("check #{n}");
                    let mut built = Vec::new();
                    for b in branches {
                        built.push(self.branch(b));
                    }
                    let flags: Vec<Value> = (0..branches.len())
                        .map(|i| json!({ "Variable": format!("$.f[{i}]"), "BooleanEquals": true }))
                        .collect();
                    states.insert(
                        par.clone(),
                        json!({
                            "Type": "Parallel",
                            "Branches": built,
                            "Parameters": { "failed": false },
                            "ResultSelector": { "failed": false, "f.$": "$[*].failed" },
                            "Next": check,
                        }),
                    );
                    let default = next.clone().unwrap_or_else(|| {
                        needs_done = true;
                        exits.done.clone()
                    });
                    states.insert(
                        check,
                        json!({
                            "Type": "Choice",
                            "Choices": [{ "Or": flags, "Next": exits.fail }],
                            "Default": default,
                        }),
                    );
                    needs_fail = true;
                    par
                }
                Block::Seq(_) => unreachable!("sequences are flattened into their parent list"),
            };
            next = Some(first);
        }
        if needs_fail {
            let fail = if exits.top {
                json!({
                    "Type": "Fail",
                    "Error": TASKS_FAILED,
                    "Cause": format!(
                        "a task of DAG {} failed: see the execution history, or `nightjar show RUN`",
                        self.dag.name
                    ),
                })
            } else {
                json!({ "Type": "Pass", "Result": { "failed": true }, "End": true })
            };
            states.insert(exits.fail.clone(), fail);
        }
        if needs_done {
            states.insert(exits.done.clone(), json!({ "Type": "Succeed" }));
        }
        let start = next.unwrap_or_else(|| {
            states.insert(exits.done.clone(), json!({ "Type": "Succeed" }));
            exits.done.clone()
        });
        (start, states)
    }

    fn branch(&mut self, block: &Block) -> Value {
        let items: Vec<Block> = match block {
            Block::Seq(xs) => xs.clone(),
            other => vec![other.clone()],
        };
        let n = self.next_id();
        let exits = Exits {
            fail: format!("branch failed #{n}"),
            done: format!("branch done #{n}"),
            top: false,
        };
        let (start, states) = self.list(&items, &exits);
        json!({ "StartAt": start, "States": states })
    }

    fn task_state(&self, t: usize, next: Option<&str>, fail: &str) -> Value {
        let id = &self.ordered.ids[t];
        let task = self.dag.tasks.iter().find(|x| &x.id == id).expect("task of the DAG");
        let mut s = Map::new();
        s.insert("Type".into(), "Task".into());
        let (resource, params) = self.resource(id);
        s.insert("Resource".into(), resource.into());
        s.insert("Parameters".into(), params);
        // The result is not needed (outputs are in the artifact store):
        // keep the state as it came in.
        s.insert("ResultPath".into(), Value::Null);
        let timeout = task.policy.timeout.map(|d| d.as_secs().max(1));
        if let Some(secs) = timeout {
            s.insert("TimeoutSeconds".into(), secs.into());
        }
        if self.settings.resource == ResourceKind::Sqs {
            let beat = self.settings.heartbeat_seconds();
            if timeout.is_none_or(|t| beat < t) {
                s.insert("HeartbeatSeconds".into(), beat.into());
            }
        }
        if let Some(retry) = retry(&task.policy) {
            s.insert("Retry".into(), retry);
        }
        s.insert(
            "Catch".into(),
            json!([{ "ErrorEquals": ["States.ALL"], "ResultPath": null, "Next": fail }]),
        );
        match next {
            Some(n) => s.insert("Next".into(), n.into()),
            None => s.insert("End".into(), true.into()),
        };
        Value::Object(s)
    }

    /// The task's resource ARN and parameters: only ids travel.
    fn resource(&self, task: &str) -> (&'static str, Value) {
        let dag = &self.dag.name;
        let st = self.settings;
        match st.resource {
            ResourceKind::Sqs => (
                "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                json!({
                    "QueueUrl": st.queue.clone().unwrap_or_default(),
                    "MessageBody": {
                        "dag": dag,
                        "task": task,
                        "run_id.$": "$$.Execution.Input.run_id",
                        "date.$": "$$.Execution.Input.date",
                        "vars.$": "$$.Execution.Input.vars",
                        "retry.$": "$$.State.RetryCount",
                        "token.$": "$$.Task.Token",
                    },
                }),
            ),
            ResourceKind::Lambda => (
                "arn:aws:states:::lambda:invoke",
                json!({
                    "FunctionName": st.function.clone().unwrap_or_default(),
                    "Payload": {
                        "dag": dag,
                        "task": task,
                        "run_id.$": "$$.Execution.Input.run_id",
                        "date.$": "$$.Execution.Input.date",
                        "vars.$": "$$.Execution.Input.vars",
                        "retry.$": "$$.State.RetryCount",
                    },
                }),
            ),
            ResourceKind::Ecs => {
                // Intrinsic string literals: quote the ids.
                let lit = |s: &str| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"));
                let command = format!(
                    "States.Array('step', '--dag', {}, '--task', {}, '--run', $$.Execution.Input.run_id, '--date', $$.Execution.Input.date, '--retry', States.Format('{{}}', $$.State.RetryCount), '--vars-json', States.JsonToString($$.Execution.Input.vars))",
                    lit(dag),
                    lit(task)
                );
                let mut p = json!({
                    "Cluster": st.cluster.clone().unwrap_or_default(),
                    "TaskDefinition": st.task_definition.clone().unwrap_or_default(),
                    "LaunchType": st.launch_type.clone().unwrap_or_else(|| "FARGATE".into()),
                    "Overrides": { "ContainerOverrides": [{
                        "Name": st.container.clone().unwrap_or_else(|| "nightjar".into()),
                        "Command.$": command,
                    }]},
                });
                if !st.subnets.is_empty() {
                    p["NetworkConfiguration"] = json!({ "AwsvpcConfiguration": {
                        "Subnets": st.subnets,
                        "SecurityGroups": st.security_groups,
                    }});
                }
                ("arn:aws:states:::ecs:runTask.sync", p)
            }
        }
    }
}

/// The DAG's retry policy as `Retry`: a permanent error is never retried;
/// any other error waits `retry_delay * retry_backoff^(n-1)`, capped at a
/// day, with full jitter when the DAG asks for jitter.
fn retry(p: &TaskPolicy) -> Option<Value> {
    if p.retries == 0 {
        return None;
    }
    // Step Functions counts whole seconds, at least one.
    let interval = p.retry_delay.as_secs_f64().ceil().max(1.0) as u64;
    Some(json!([
        { "ErrorEquals": [PERMANENT_ERROR], "MaxAttempts": 0 },
        {
            "ErrorEquals": ["States.ALL"],
            "IntervalSeconds": interval.min(MAX_DELAY_SECONDS),
            "BackoffRate": p.retry_backoff.max(1.0),
            "MaxAttempts": p.retries,
            "MaxDelaySeconds": MAX_DELAY_SECONDS,
            "JitterStrategy": if p.retry_jitter > 0.0 { "FULL" } else { "NONE" },
        }
    ]))
}
