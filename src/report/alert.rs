//! Alerts: `[alerts]` of a DAG file says whom to tell when a run fails,
//! succeeds or misses its SLA.
//!
//! ```toml
//! [alerts]
//! sla = "06:00"                          # the run must succeed by 06:00 (DAG time zone)
//! on_failure = [{ webhook = "https://hooks.slack.com/services/..." },
//!               { sqs = "https://sqs.eu-west-2.amazonaws.com/123456789012/oncall" }]
//! on_success = { command = "scripts/notify-finance.sh" }
//! on_sla_miss = { webhook = "https://hooks.slack.com/services/..." }
//! ```
//!
//! Each target is one of `webhook` (POST of Slack-compatible JSON:
//! `{"text": ..., "event": {the event document}}`), `sqs` (the event
//! document as the message body) or `command` (run by `sh -c` in the
//! project folder, the event document on stdin and in `NIGHTJAR_EVENT`, the
//! text in `NIGHTJAR_ALERT`). Alerts go through the same buffered, spooled
//! delivery as events: a webhook that is down gets the alert when it is
//! back.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use async_trait::async_trait;
use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer};

use super::event::rfc3339;
use super::{EventDoc, EventKind, Reporter, Sink, short_hash};
use crate::aws::AwsOptions;
use crate::engine::{Event, Observer};
use crate::spec::Dag;

/// `[alerts]` of a DAG. Unknown keys are reported by the DAG loader.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Alerts {
    /// The SLA: the run of a logical date must have succeeded by this local
    /// time (`"HH:MM"`, in the DAG's time zone), on the first such time at or
    /// after the end of the date's data interval. A nightly `0 2 * * *` run
    /// for 2010-12-01 (interval ending 12-02 02:00) with `sla = "06:00"`
    /// must succeed by 2010-12-02 06:00.
    pub sla: Option<String>,
    /// Targets told when a run fails.
    #[serde(default, deserialize_with = "one_or_many")]
    pub on_failure: Vec<AlertTarget>,
    /// Targets told when a run succeeds.
    #[serde(default, deserialize_with = "one_or_many")]
    pub on_success: Vec<AlertTarget>,
    /// Targets told when a run has not succeeded by `sla`.
    #[serde(default, deserialize_with = "one_or_many")]
    pub on_sla_miss: Vec<AlertTarget>,
}

/// Where an alert goes: exactly one of the three.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq, Hash)]
pub struct AlertTarget {
    /// An HTTP(S) URL receiving a POST of Slack-compatible JSON.
    pub webhook: Option<String>,
    /// An SQS queue URL receiving the event document.
    pub sqs: Option<String>,
    /// A shell command (the event document on stdin).
    pub command: Option<String>,
}

/// A target table, or an array of them.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<AlertTarget>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(AlertTarget),
        Many(Vec<AlertTarget>),
    }
    match OneOrMany::deserialize(d).map_err(|_| {
        serde::de::Error::custom("expected a target table such as { webhook = \"https://...\" }, or an array of them")
    })? {
        OneOrMany::One(t) => Ok(vec![t]),
        OneOrMany::Many(v) => Ok(v),
    }
}

/// The keys of a target table (for the loader's unknown-key check).
pub const TARGET_KEYS: &[&str] = &["webhook", "sqs", "command"];

/// Which run outcome a target list answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Failure,
    Success,
    SlaMiss,
}

impl Trigger {
    fn key(self) -> &'static str {
        match self {
            Trigger::Failure => "on_failure",
            Trigger::Success => "on_success",
            Trigger::SlaMiss => "on_sla_miss",
        }
    }

    fn kind(self) -> EventKind {
        match self {
            Trigger::Failure => EventKind::RunFailed,
            Trigger::Success => EventKind::RunSucceeded,
            Trigger::SlaMiss => EventKind::SlaMissed,
        }
    }
}

/// A problem in `[alerts]`: key path (under `alerts`), message, hint.
pub type Problem = (String, String, String);

impl Alerts {
    pub fn is_empty(&self) -> bool {
        self == &Alerts::default()
    }

    /// The SLA time of day, if set and valid.
    pub fn sla_time(&self) -> Option<NaiveTime> {
        self.sla.as_deref().and_then(parse_sla)
    }

    fn lists(&self) -> [(Trigger, &Vec<AlertTarget>); 3] {
        [
            (Trigger::Failure, &self.on_failure),
            (Trigger::Success, &self.on_success),
            (Trigger::SlaMiss, &self.on_sla_miss),
        ]
    }

    /// Validate-time checks.
    pub fn check(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if let Some(s) = &self.sla
            && parse_sla(s).is_none()
        {
            out.push((
                "sla".into(),
                format!("bad SLA time `{s}`"),
                "write a local time of day as \"HH:MM\", e.g. sla = \"06:00\"".into(),
            ));
        }
        if self.sla.is_none() && !self.on_sla_miss.is_empty() {
            out.push((
                "on_sla_miss".into(),
                "`on_sla_miss` without an `sla`".into(),
                "add `sla = \"06:00\"` (the local time the run must have succeeded by)".into(),
            ));
        }
        out.extend(self.check_targets());
        out
    }

    /// Checks of an env's `report.alerts`: targets only (the SLA is the
    /// DAG's own).
    pub fn check_env(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        if self.sla.is_some() {
            out.push((
                "sla".into(),
                "an env's alerts cannot set an `sla`".into(),
                "set `sla` in the DAG's [alerts]; the env's `on_sla_miss` targets then receive its misses".into(),
            ));
        }
        out.extend(self.check_targets());
        out
    }

    /// This DAG's alerts in an env whose `report.alerts` is `env`: a trigger
    /// the env sets (`on_failure`, `on_success`, `on_sla_miss`) replaces
    /// the DAG's targets for it; the others, and the SLA, stay the DAG's.
    /// So a DAG can run a command on failure locally and send to an SQS
    /// queue on AWS.
    pub fn in_env(&self, env: Option<&Alerts>) -> Alerts {
        let mut out = self.clone();
        if let Some(env) = env {
            for (mine, theirs) in [
                (&mut out.on_failure, &env.on_failure),
                (&mut out.on_success, &env.on_success),
                (&mut out.on_sla_miss, &env.on_sla_miss),
            ] {
                if !theirs.is_empty() {
                    mine.clone_from(theirs);
                }
            }
        }
        out
    }

    fn check_targets(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for (trigger, list) in self.lists() {
            for (i, t) in list.iter().enumerate() {
                let path = format!("{}[{i}]", trigger.key());
                let set = [&t.webhook, &t.sqs, &t.command].iter().filter(|v| v.is_some()).count();
                if set != 1 {
                    out.push((
                        path.clone(),
                        format!("an alert target needs exactly one of webhook, sqs, command (found {set})"),
                        "write one target per table: { webhook = \"https://...\" }".into(),
                    ));
                }
                if let Some(url) = &t.webhook
                    && !(url.starts_with("https://") || url.starts_with("http://"))
                {
                    out.push((
                        format!("{path}.webhook"),
                        format!("webhook `{url}` is not an http(s) URL"),
                        "use the full URL, e.g. \"https://hooks.slack.com/services/...\"".into(),
                    ));
                }
                if let Some(url) = &t.sqs
                    && !url.starts_with("https://")
                    && !url.starts_with("http://")
                {
                    out.push((
                        format!("{path}.sqs"),
                        format!("`{url}` is not an SQS queue URL"),
                        "use the queue URL, e.g. \"https://sqs.eu-west-2.amazonaws.com/123456789012/oncall\"".into(),
                    ));
                }
            }
        }
        out
    }
}

fn parse_sla(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M").ok()
}

/// When the run whose data interval ends at `interval_end` must have
/// succeeded: the first `sla` local time (in `tz`) at or after the interval
/// end. A local time that does not exist that day (a DST gap) moves to the
/// first instant after it.
pub fn deadline(interval_end: DateTime<Utc>, tz: Tz, sla: NaiveTime) -> DateTime<Utc> {
    let local_end = interval_end.with_timezone(&tz);
    let mut day = local_end.date_naive();
    loop {
        let at = day.and_time(sla);
        let t = match tz.from_local_datetime(&at) {
            chrono::LocalResult::Single(t) => t,
            chrono::LocalResult::Ambiguous(first, _) => first,
            // DST gap: an hour later exists.
            chrono::LocalResult::None => tz
                .from_local_datetime(&(at + chrono::Duration::hours(1)))
                .earliest()
                .expect("an hour after a DST gap exists"),
        }
        .with_timezone(&Utc);
        if t >= interval_end {
            return t;
        }
        day = day.succ_opt().expect("dates do not run out");
    }
}

/// The clock SLA checks read (a fixed one in tests).
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(Utc::now)
}

struct Watched {
    base: EventDoc,
    deadline: DateTime<Utc>,
    missed: bool,
    timer: Option<tokio::task::AbortHandle>,
}

/// Watches the runs of one DAG against its SLA and publishes `sla_missed`
/// events (which `on_sla_miss` targets receive): when the deadline passes
/// while the run is still going, or when a run ends after the deadline
/// without having succeeded before it. A run that ends failed before the
/// deadline is reported by `on_failure`; whether a later retry of that date
/// makes the SLA is for the scheduler to watch.
pub struct SlaWatch {
    reporter: Arc<Reporter>,
    tz: Tz,
    sla: NaiveTime,
    clock: Clock,
    runs: Arc<Mutex<HashMap<String, Watched>>>,
}

impl SlaWatch {
    /// `None` when the DAG has no SLA.
    pub fn new(dag: &Dag, reporter: Arc<Reporter>, clock: Clock) -> Option<Self> {
        Some(Self {
            reporter,
            tz: dag.tz,
            sla: dag.alerts.sla_time()?,
            clock,
            runs: Default::default(),
        })
    }
}

fn miss_doc(w: &Watched, now: DateTime<Utc>, state: &str) -> EventDoc {
    let mut d = w.base.clone();
    d.id = format!("{:032x}", fastrand::u128(..));
    d.kind = EventKind::SlaMissed;
    d.time = rfc3339(now);
    d.state = state.to_string();
    d.deadline = Some(rfc3339(w.deadline));
    d
}

impl Observer for SlaWatch {
    fn event(&self, e: &Event<'_>) {
        let now = (self.clock)();
        match e {
            Event::RunStarted { run, .. } => {
                let Ok(end) = DateTime::parse_from_rfc3339(&run.interval_end) else {
                    return;
                };
                let deadline = deadline(end.with_timezone(&Utc), self.tz, self.sla);
                let mut base = EventDoc::blank(EventKind::SlaMissed);
                base.dag = run.dag.clone();
                base.run_id = run.run_id.clone();
                base.logical_date = run.logical_date.clone();
                base.env = run.env.clone();
                let mut w = Watched {
                    base,
                    deadline,
                    missed: false,
                    timer: None,
                };
                if now >= deadline {
                    self.reporter.publish(miss_doc(&w, now, "running"));
                    w.missed = true;
                } else if let Ok(rt) = tokio::runtime::Handle::try_current() {
                    let wait = (deadline - now).to_std().unwrap_or_default();
                    let (runs, reporter, clock, run_id) = (
                        self.runs.clone(),
                        self.reporter.clone(),
                        self.clock.clone(),
                        run.run_id.clone(),
                    );
                    let timer = rt.spawn(async move {
                        tokio::time::sleep(wait).await;
                        let mut runs = runs.lock().unwrap_or_else(|p| p.into_inner());
                        if let Some(w) = runs.get_mut(&run_id)
                            && !w.missed
                        {
                            w.missed = true;
                            reporter.publish(miss_doc(w, clock().max(w.deadline), "running"));
                        }
                    });
                    w.timer = Some(timer.abort_handle());
                }
                self.runs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(run.run_id.clone(), w);
            }
            Event::RunFinished { report } => {
                let Some(w) = self
                    .runs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&report.run_id)
                else {
                    return;
                };
                if let Some(t) = &w.timer {
                    t.abort();
                }
                if !w.missed && now >= w.deadline {
                    self.reporter.publish(miss_doc(&w, now, &report.state.to_string()));
                }
            }
            _ => {}
        }
    }
}

/// Delivers alerts of one trigger to one target.
pub struct AlertSink {
    dag: String,
    trigger: Trigger,
    target: AlertTarget,
    sqs: Option<super::sqs::SqsSink>,
    http: Option<reqwest::Client>,
    project_dir: PathBuf,
}

/// The sinks of a DAG's alerts (`alerts`: the DAG's, as its env changes
/// them, see [`Alerts::in_env`]).
pub async fn sinks(dag: &str, alerts: &Alerts, aws: &AwsOptions, project_dir: &std::path::Path) -> Vec<Arc<dyn Sink>> {
    let mut out: Vec<Arc<dyn Sink>> = Vec::new();
    for (trigger, list) in alerts.lists() {
        for target in list {
            let sqs = match &target.sqs {
                Some(url) => Some(super::sqs::SqsSink::new(aws, url).await),
                None => None,
            };
            let http = target.webhook.as_ref().map(|_| {
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(15))
                    .build()
                    .expect("an HTTP client with rustls builds")
            });
            out.push(Arc::new(AlertSink {
                dag: dag.to_string(),
                trigger,
                target: target.clone(),
                sqs,
                http,
                project_dir: project_dir.to_path_buf(),
            }));
        }
    }
    out
}

/// The one-line text of an alert (Slack's `text`).
pub fn alert_text(doc: &EventDoc) -> String {
    let what = match doc.kind {
        EventKind::RunFailed => "failed".to_string(),
        EventKind::RunSucceeded => format!("succeeded in {:.1}s", doc.duration_seconds.unwrap_or_default()),
        EventKind::SlaMissed => format!(
            "missed its SLA (must succeed by {}; now {})",
            doc.deadline.as_deref().unwrap_or("?"),
            doc.state
        ),
        k => k.as_str().to_string(),
    };
    let mut text = format!("nightjar: {} {what}", doc.run_id);
    if let Some(e) = &doc.error {
        text.push_str(&format!(": {e}"));
    }
    text
}

impl AlertSink {
    async fn alert(&self, doc: &EventDoc) -> Result<()> {
        let text = alert_text(doc);
        if let (Some(url), Some(http)) = (&self.target.webhook, &self.http) {
            let body = serde_json::json!({ "text": text, "event": doc });
            let resp = http
                .post(url)
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .map_err(|e| anyhow!("webhook: {e}"))?;
            if !resp.status().is_success() {
                bail!("webhook answered {}", resp.status());
            }
        } else if let Some(sqs) = &self.sqs {
            sqs.send(std::slice::from_ref(doc)).await?;
        } else if let Some(cmd) = &self.target.command {
            run_command(cmd, &text, doc, &self.project_dir).await?;
        }
        Ok(())
    }
}

async fn run_command(cmd: &str, text: &str, doc: &EventDoc, dir: &std::path::Path) -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let json = doc.to_json();
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .current_dir(dir)
        .env("NIGHTJAR_ALERT", text)
        .env("NIGHTJAR_EVENT", &json)
        .env("NIGHTJAR_DAG", &doc.dag)
        .env("NIGHTJAR_RUN_ID", &doc.run_id)
        .env("NIGHTJAR_STATE", &doc.state)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| anyhow!("alert command `{cmd}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read stdin closes it: not an error.
        let _ = stdin.write_all(json.as_bytes()).await;
    }
    let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
        .await
        .map_err(|_| anyhow!("alert command `{cmd}` ran over 120s"))??;
    if !status.success() {
        bail!("alert command `{cmd}` failed ({status})");
    }
    Ok(())
}

#[async_trait]
impl Sink for AlertSink {
    fn name(&self) -> String {
        format!(
            "alert-{}-{}-{}",
            self.dag,
            self.trigger.key(),
            short_hash(&format!("{:?}", self.target))
        )
    }

    fn batch_size(&self) -> usize {
        1
    }

    fn wants(&self, doc: &EventDoc) -> bool {
        doc.dag == self.dag && doc.kind == self.trigger.kind()
    }

    async fn send(&self, batch: &[EventDoc]) -> Result<()> {
        for doc in batch {
            self.alert(doc).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_env_replaces_the_triggers_it_sets() {
        let target = |c: &str| AlertTarget {
            command: Some(c.into()),
            ..Default::default()
        };
        let dag = Alerts {
            sla: Some("06:00".into()),
            on_failure: vec![target("local-failure")],
            on_success: vec![target("local-success")],
            on_sla_miss: vec![],
        };
        assert_eq!(dag.in_env(None), dag);
        let env = Alerts {
            on_failure: vec![target("queue-a"), target("queue-b")],
            ..Default::default()
        };
        let got = dag.in_env(Some(&env));
        assert_eq!(got.on_failure, env.on_failure);
        assert_eq!(got.on_success, dag.on_success, "not set by the env: the DAG's");
        assert_eq!(got.sla, dag.sla, "the SLA is the DAG's");
        assert!(env.check_env().is_empty());
        let with_sla = Alerts {
            sla: Some("06:00".into()),
            ..env
        };
        assert_eq!(with_sla.check_env()[0].0, "sla");
    }
}
