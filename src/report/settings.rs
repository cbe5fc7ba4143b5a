//! `report = { ... }` of an environment in `nightjar.toml`, and building
//! the reporter it describes.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail};
use serde::Deserialize;

use super::alert::Alerts;
use super::{DeliveryOptions, Reporter, Sink};
use crate::aws::AwsOptions;
use crate::spec::{Dag, Environment, Project};

/// Where an environment reports run and task events (`[env.NAME] report =
/// { ... }`). Every sink is optional; several may be set at once.
///
/// ```toml
/// [env.aws]
/// report = { sqs = "https://sqs.eu-west-2.amazonaws.com/123456789012/nightjar-events.fifo",
///            cloudwatch_namespace = "Nightjar" }
/// ```
///
/// The `local` env, when its `report` is empty, writes events to
/// `.nightjar/events.ndjson` (`enabled = false` turns that off).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReportSettings {
    /// SQS queue URL for every event. A `.fifo` queue keeps each DAG's
    /// events in order (group id = DAG) and deduplicates re-sends (dedup id
    /// = event id).
    pub sqs: Option<String>,
    /// CloudWatch metric namespace. When set, per-DAG and per-task metrics
    /// are published as Embedded Metric Format documents to CloudWatch Logs
    /// (CloudWatch turns them into metrics) and task logs are shipped there.
    pub cloudwatch_namespace: Option<String>,
    /// Log group of the metric documents (default `/nightjar/metrics`).
    pub metrics_log_group: Option<String>,
    /// Log group the task logs go to, one stream per run and task (default
    /// `/nightjar/tasks` when `cloudwatch_namespace` is set).
    pub task_log_group: Option<String>,
    /// A local NDJSON file (relative to the project folder), one event per
    /// line, appended.
    pub ndjson: Option<String>,
    /// Print every event as a JSON line on stdout.
    #[serde(default)]
    pub stdout: bool,
    /// AWS region of the queue and logs (default: the AWS environment).
    pub region: Option<String>,
    /// AWS endpoint override (an emulator or a VPC endpoint); default
    /// `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// Events kept in memory per sink before they are spooled to disk
    /// (default 1024).
    pub buffer: Option<usize>,
    /// `false` turns reporting off (including the local default).
    pub enabled: Option<bool>,
    /// Alert targets for every DAG run in this env, written like a DAG's
    /// `[alerts]` without `sla`: a trigger set here replaces the DAG's own
    /// targets for that trigger, the others stay the DAG's. A DAG that runs
    /// a command on failure locally alerts an SQS queue on AWS with
    /// `report = { alerts = { on_failure = { sqs = "https://sqs..." } } }`.
    pub alerts: Option<Alerts>,
}

impl ReportSettings {
    /// The settings of an env (the local env's default included).
    pub fn of_env(env: &Environment) -> Result<Self> {
        let mut s: ReportSettings = toml::Value::Table(env.report.clone())
            .try_into()
            .map_err(|e| anyhow::anyhow!("[env.{}] report: {e}", env.name))?;
        if env.name == "local" && env.report.is_empty() {
            s.ndjson = Some(format!("{}/events.ndjson", crate::spec::project::STATE_DIR));
        }
        Ok(s)
    }

    /// Reads a `--report` flag: `ndjson:PATH`, `stdout`, `sqs:URL` or `off`.
    pub fn from_flag(flag: &str) -> Result<Self> {
        let mut s = ReportSettings::default();
        match flag.split_once(':') {
            _ if flag == "stdout" => s.stdout = true,
            _ if flag == "off" || flag == "none" => s.enabled = Some(false),
            Some(("ndjson", path)) if !path.is_empty() => s.ndjson = Some(path.to_string()),
            Some(("sqs", url)) if !url.is_empty() => s.sqs = Some(url.to_string()),
            _ => bail!("--report {flag}: use ndjson:PATH, stdout, sqs:URL or off"),
        }
        Ok(s)
    }

    fn aws(&self) -> AwsOptions {
        AwsOptions {
            region: self.region.clone(),
            endpoint_url: self.endpoint_url.clone(),
            static_credentials: None,
        }
    }

    /// The sinks these settings describe (no alerts).
    pub async fn sinks(&self, project_root: &Path) -> Result<Vec<Arc<dyn Sink>>> {
        let mut sinks: Vec<Arc<dyn Sink>> = Vec::new();
        if self.enabled == Some(false) {
            return Ok(sinks);
        }
        if let Some(path) = &self.ndjson {
            sinks.push(Arc::new(super::ndjson::NdjsonSink::new(project_root.join(path))));
        }
        if self.stdout {
            sinks.push(Arc::new(super::stdout::StdoutSink));
        }
        if let Some(url) = &self.sqs {
            sinks.push(Arc::new(super::sqs::SqsSink::new(&self.aws(), url).await));
        }
        if let Some(ns) = &self.cloudwatch_namespace {
            let logs = super::cloudwatch::logs_client(&self.aws()).await;
            let group = self.metrics_log_group.as_deref().unwrap_or("/nightjar/metrics");
            sinks.push(Arc::new(super::cloudwatch::MetricsSink::new(logs.clone(), ns, group)));
            let group = self.task_log_group.as_deref().unwrap_or("/nightjar/tasks");
            let state = project_root.join(crate::spec::project::STATE_DIR);
            sinks.push(Arc::new(super::cloudwatch::TaskLogSink::new(logs, group, &state)));
        } else if let Some(group) = &self.task_log_group {
            let logs = super::cloudwatch::logs_client(&self.aws()).await;
            let state = project_root.join(crate::spec::project::STATE_DIR);
            sinks.push(Arc::new(super::cloudwatch::TaskLogSink::new(logs, group, &state)));
        }
        Ok(sinks)
    }
}

/// The reporter for one run of `dag` in `env`: the env's sinks (or the
/// `--report` flag's, which replace them) plus the DAG's alerts as the env
/// changes them ([`Alerts::in_env`]). `None`
/// when there is nothing to report to.
pub async fn reporter_for(
    project: &Project,
    env: &Environment,
    dag: &Dag,
    flag: Option<&str>,
) -> Result<Option<Arc<Reporter>>> {
    let of_env = ReportSettings::of_env(env)?;
    // The env's alerts hold whatever sinks `--report` picks.
    let alerts = dag.alerts.in_env(of_env.alerts.as_ref());
    let settings = match flag {
        Some(f) => ReportSettings::from_flag(f)?,
        None => of_env,
    };
    let mut sinks = settings.sinks(&project.root).await?;
    sinks.extend(super::alert::sinks(&dag.name, &alerts, &settings.aws(), &project.root).await);
    if sinks.is_empty() {
        return Ok(None);
    }
    let opts = DeliveryOptions {
        buffer: settings.buffer.unwrap_or(DeliveryOptions::default().buffer).max(1),
        ..Default::default()
    };
    Ok(Some(Reporter::start(sinks, &project.state_dir().join("spool"), opts)?))
}
