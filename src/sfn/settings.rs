//! `[env.NAME] sfn = { ... }` in `nightjar.toml`: how Step Functions runs
//! each task of a DAG, and where the state machine lives.
//!
//! ```toml
//! [env.aws]
//! dispatch = "stepfunctions"
//! artifacts = "s3://my-staging/artifacts/"
//! sfn = { resource = "sqs", queue = "https://sqs.eu-west-2.amazonaws.com/123456789012/nightjar", role_arn = "arn:aws:iam::123456789012:role/nightjar-sfn" }
//! ```

use serde::Deserialize;

use crate::aws::AwsOptions;
use crate::spec::duration::HumanDuration;

/// How Step Functions runs each task, and where the state machine lives.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SfnSettings {
    /// How a task runs: `"sqs"` (a message carrying a task token goes to
    /// `queue`; `nightjar worker --queue URL` processes anywhere take it,
    /// run the step and answer), `"ecs"` (an ECS task of `task_definition`
    /// on `cluster` runs `nightjar step ...`, waited for with `.sync`), or
    /// `"lambda"` (invokes `function` with the task's ids; the function runs
    /// `nightjar step`).
    pub resource: ResourceKind,
    /// sqs: the queue URL the workers poll.
    pub queue: Option<String>,
    /// sqs: how long a worker may go silent before its attempt counts as
    /// failed (timed out) and is retried: a killed worker's task is handed
    /// out again after this. Workers heartbeat at a third of it. Default 60s.
    pub heartbeat: Option<HumanDuration>,
    /// ecs: the cluster name or ARN.
    pub cluster: Option<String>,
    /// ecs: the task definition (family, family:revision or ARN); its
    /// container's entry point must be the `nightjar` binary.
    pub task_definition: Option<String>,
    /// ecs: the container to run `nightjar step` in. Default `nightjar`.
    pub container: Option<String>,
    /// ecs: `FARGATE` (default) or `EC2`.
    pub launch_type: Option<String>,
    /// ecs (Fargate): subnets of the task's network interface.
    #[serde(default)]
    pub subnets: Vec<String>,
    /// ecs (Fargate): security groups of the task's network interface.
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// lambda: the function name or ARN.
    pub function: Option<String>,
    /// The IAM role the state machine runs as (`nightjar sfn deploy`).
    pub role_arn: Option<String>,
    /// State machines are named `<name_prefix><dag>`. Default `nightjar-`.
    pub name_prefix: Option<String>,
    /// The AWS region (default: the standard AWS environment).
    pub region: Option<String>,
    /// An endpoint override for Step Functions, SQS and S3 (an emulator, a
    /// VPC endpoint). Default: `AWS_ENDPOINT_URL`, else AWS.
    pub endpoint_url: Option<String>,
    /// How often `run` polls a running execution. Default 2s.
    pub poll: Option<HumanDuration>,
}

/// Where a task's step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    Sqs,
    Ecs,
    Lambda,
}

/// A setting problem: the key it concerns (relative to `sfn`), what is wrong
/// and how to fix it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub key: Option<&'static str>,
    pub message: String,
    pub hint: String,
}

impl SfnSettings {
    /// Settings for a given resource, everything else unset (tests, examples).
    pub fn new(resource: ResourceKind) -> Self {
        Self {
            resource,
            queue: None,
            heartbeat: None,
            cluster: None,
            task_definition: None,
            container: None,
            launch_type: None,
            subnets: Vec::new(),
            security_groups: Vec::new(),
            function: None,
            role_arn: None,
            name_prefix: None,
            region: None,
            endpoint_url: None,
            poll: None,
        }
    }

    /// Keys the chosen resource needs and keys it cannot use.
    pub fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut need = |key: &'static str, v: &Option<String>, example: &str| {
            if v.as_deref().is_none_or(str::is_empty) {
                out.push(Problem {
                    key: None,
                    message: format!("`resource = \"{}\"` needs `{key}`", self.resource.as_str()),
                    hint: format!("add `{key} = \"{example}\"`"),
                });
            }
        };
        match self.resource {
            ResourceKind::Sqs => need(
                "queue",
                &self.queue,
                "https://sqs.REGION.amazonaws.com/ACCOUNT/nightjar",
            ),
            ResourceKind::Ecs => {
                need("cluster", &self.cluster, "nightjar");
                need("task_definition", &self.task_definition, "nightjar-step");
            }
            ResourceKind::Lambda => need("function", &self.function, "nightjar-step"),
        }
        if let Some(lt) = &self.launch_type
            && !matches!(lt.as_str(), "FARGATE" | "EC2")
        {
            out.push(Problem {
                key: Some("launch_type"),
                message: format!("unknown launch type `{lt}`"),
                hint: "use \"FARGATE\" or \"EC2\"".into(),
            });
        }
        if let Some(h) = self.heartbeat
            && h.0.as_secs() < 3
        {
            out.push(Problem {
                key: Some("heartbeat"),
                message: format!("heartbeat `{h}` is too short"),
                hint: "use at least \"3s\" (workers beat at a third of it)".into(),
            });
        }
        if let Some(p) = &self.name_prefix
            && !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            out.push(Problem {
                key: Some("name_prefix"),
                message: format!("bad state machine name prefix `{p}`"),
                hint: "use letters, digits, `_` and `-` only".into(),
            });
        }
        out
    }

    /// Seconds a worker may stay silent (SQS resource).
    pub fn heartbeat_seconds(&self) -> u64 {
        self.heartbeat.map_or(60, |h| h.0.as_secs().max(1))
    }

    /// The state machine name of a DAG.
    pub fn state_machine_name(&self, dag: &str) -> String {
        let name = format!("{}{dag}", self.name_prefix.as_deref().unwrap_or("nightjar-"));
        // Step Functions names are at most 80 characters.
        super::names::fit(&name, 80)
    }

    pub fn aws_options(&self) -> AwsOptions {
        AwsOptions {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            static_credentials: None,
        }
    }

    pub fn poll_interval(&self) -> std::time::Duration {
        self.poll.map_or(std::time::Duration::from_secs(2), |p| p.0)
    }
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::Sqs => "sqs",
            ResourceKind::Ecs => "ecs",
            ResourceKind::Lambda => "lambda",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_resource_names_what_it_needs() {
        let p = SfnSettings::new(ResourceKind::Ecs).problems();
        let text: Vec<String> = p.iter().map(|p| p.message.clone()).collect();
        assert_eq!(
            text,
            [
                "`resource = \"ecs\"` needs `cluster`",
                "`resource = \"ecs\"` needs `task_definition`"
            ]
        );
        let mut s = SfnSettings::new(ResourceKind::Sqs);
        s.queue = Some("https://q".into());
        assert!(s.problems().is_empty());
    }
}
