//! DAG files: a schedule, defaults, vars and tasks, each task running one job
//! (from a job file or written inline).
//!
//! Loading a DAG validates everything it can before anything runs, and
//! reports every problem in one pass: unknown keys (with a did-you-mean),
//! unknown step kinds, missing job files, duplicate task ids, `needs` naming
//! a missing task, cycles, bad cron, time zone or duration, template errors,
//! and each step kind's own checks of its config.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Deserialize;
use toml::{Table, Value};

use super::diagnostic::{Diagnostic, Diagnostics, did_you_mean, unknown_name_hint};
use super::doc::{Doc, hint_for_serde_message, join};
use super::duration::HumanDuration;
use super::fields::field_names;
use super::project::Project;
use super::schedule::{DstGap, DstOverlap, DstPolicy, Schedule, parse_tz};
use super::source::{Origin, SourceFile};
use super::template;
use crate::graph::DagGraph;
use crate::steps::Registry;

/// Missed intervals one catch-up runs at most, unless `max_catchup` says.
pub const DEFAULT_MAX_CATCHUP: u32 = 30;

/// A validated DAG, ready to run.
#[derive(Debug, Clone)]
pub struct Dag {
    pub name: String,
    pub description: Option<String>,
    pub file: PathBuf,
    pub schedule: Option<Schedule>,
    pub tz: Tz,
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
    pub catchup: bool,
    /// With `catchup`, at most this many missed intervals are run (the
    /// latest ones).
    pub max_catchup: u32,
    pub max_active_runs: u32,
    /// How the schedule treats DST gaps and overlaps (also in `schedule`).
    pub dst: DstPolicy,
    /// `[vars]`, unrendered (values may themselves be templates).
    pub vars: Table,
    /// Columns declared as PII (`pii = [...]`): their values never reach a
    /// quarantine file, a log line or an error message raw.
    pub pii: Vec<String>,
    /// Tasks in file order.
    pub tasks: Vec<Task>,
    /// `[alerts]`: whom to tell on failure, success, SLA miss.
    pub alerts: crate::report::alert::Alerts,
}

/// One task: a job plus how to run it.
#[derive(Debug, Clone)]
pub struct Task {
    pub id: String,
    /// The step kind (`shell`, `extract.file`, ...).
    pub kind: String,
    /// The job's settings (without `kind`), `with` overrides applied,
    /// templates not yet rendered.
    pub config: Table,
    pub needs: Vec<String>,
    /// The single upstream output this task reads, when it names one.
    pub input: Option<String>,
    /// Named inputs: local name -> `task` or `task.output`.
    pub inputs: BTreeMap<String, String>,
    pub policy: TaskPolicy,
    /// Where the task is declared.
    pub origin: Origin,
    /// The job file the task uses, if any.
    pub job_file: Option<PathBuf>,
}

/// Retries and timeout of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPolicy {
    /// Extra attempts after the first fails.
    pub retries: u32,
    /// Wait before the first retry.
    pub retry_delay: Duration,
    /// Each retry waits `retry_backoff` times longer than the one before.
    pub retry_backoff: f64,
    /// Random spread of each wait, as a fraction (0.1 = +/-10%), so that
    /// many failing tasks do not retry in lockstep.
    pub retry_jitter: f64,
    /// An attempt running longer than this is cancelled (None: no limit).
    pub timeout: Option<Duration>,
}

impl Default for TaskPolicy {
    fn default() -> Self {
        Self {
            retries: 0,
            retry_delay: Duration::from_secs(10),
            retry_backoff: 2.0,
            retry_jitter: 0.1,
            timeout: None,
        }
    }
}

/// The DAG file's top level.
// Unknown keys are reported by `Doc::check_keys`, all at once.
#[derive(Deserialize)]
struct DagHeader {
    /// The DAG's name; runs, artifacts and logs are keyed by it.
    // Defaulted so that a missing name is reported by the name check below
    // (with a hint) rather than failing the whole header.
    #[serde(default)]
    name: String,
    description: Option<String>,
    /// Cron (5 or 6 fields) or `@daily`, `@hourly`, ...
    schedule: Option<String>,
    /// IANA time zone of the schedule and the logical dates.
    timezone: Option<String>,
    /// The first logical date (a TOML date, or a string `YYYY-MM-DD`).
    start: Option<Value>,
    /// The last logical date (none: open-ended).
    end: Option<Value>,
    /// On scheduler start (and after a pause or a schedule edit), run every
    /// missed interval (`true`, oldest first, at most `max_catchup`) or only
    /// the latest one (`false`).
    #[serde(default)]
    catchup: bool,
    /// The most missed intervals one catch-up runs (default 30); older ones
    /// are left to `nightjar backfill`.
    max_catchup: Option<u32>,
    /// Runs of this DAG the scheduler runs at once.
    max_active_runs: Option<u32>,
    /// A fire time the clock skips in spring: `"run_at_next_valid"` (default:
    /// fire at the first instant after the gap) or `"skip"`.
    #[serde(default)]
    dst_gap: DstGap,
    /// A fire time that happens twice in autumn: `"run_once"` (default: at
    /// its first instant) or `"run_twice"`.
    #[serde(default)]
    dst_overlap: DstOverlap,
    #[serde(default)]
    defaults: PolicyFile,
    #[serde(default)]
    vars: Table,
    /// Columns that hold PII, in any task: quarantine files, logs and
    /// errors never show their values.
    #[serde(default)]
    pii: Vec<String>,
    #[serde(default)]
    task: Vec<Table>,
    /// Alerts on failure, success and SLA miss (`src/report/alert.rs`).
    #[serde(default)]
    alerts: crate::report::alert::Alerts,
}

impl DagHeader {
    /// A header to keep validating with when the real one does not parse.
    fn fallback(table: &Table) -> Self {
        let tasks = match table.get("task") {
            Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_table().cloned()).collect(),
            _ => Vec::new(),
        };
        let str_of = |k: &str| table.get(k).and_then(Value::as_str).map(str::to_string);
        DagHeader {
            name: str_of("name").unwrap_or_default(),
            description: None,
            schedule: None,
            timezone: None,
            start: None,
            end: None,
            catchup: false,
            max_catchup: None,
            max_active_runs: None,
            dst_gap: DstGap::default(),
            dst_overlap: DstOverlap::default(),
            defaults: PolicyFile::default(),
            vars: table.get("vars").and_then(Value::as_table).cloned().unwrap_or_default(),
            pii: Vec::new(),
            task: tasks,
            alerts: Default::default(),
        }
    }
}

/// Retry and timeout settings, in `[defaults]` or on a task.
// Unknown keys are reported by `Doc::check_keys` (`[defaults]`) or go to the
// job (tasks); `deny_unknown_fields` here reported `[defaults]` typos twice
// and, by failing the whole header, hid every other header problem.
#[derive(Deserialize, Default, Clone)]
struct PolicyFile {
    retries: Option<u32>,
    retry_delay: Option<HumanDuration>,
    retry_backoff: Option<f64>,
    retry_jitter: Option<f64>,
    timeout: Option<HumanDuration>,
}

impl PolicyFile {
    fn over(&self, base: &TaskPolicy) -> TaskPolicy {
        TaskPolicy {
            retries: self.retries.unwrap_or(base.retries),
            retry_delay: self.retry_delay.map_or(base.retry_delay, |d| d.0),
            retry_backoff: self.retry_backoff.unwrap_or(base.retry_backoff),
            retry_jitter: self.retry_jitter.unwrap_or(base.retry_jitter),
            timeout: self.timeout.map(|d| d.0).or(base.timeout),
        }
    }
}

/// The task-level keys of a `[[task]]` table (besides the policy keys and
/// the fields of an inline job).
#[derive(Deserialize)]
struct TaskFile {
    /// Unique within the DAG.
    id: String,
    /// A job file, relative to the project folder.
    job: Option<String>,
    /// Overrides of the job file's fields.
    #[serde(default)]
    with: Table,
    /// Upstream tasks.
    #[serde(default)]
    needs: Vec<String>,
    input: Option<String>,
    #[serde(default)]
    inputs: BTreeMap<String, String>,
}

/// Loads and validates one DAG file. Warnings come back with the DAG;
/// any error fails the load with every problem found.
pub fn load(path: &Path, project: &Project, registry: &Registry) -> Result<(Dag, Vec<Diagnostic>), Diagnostics> {
    let source = SourceFile::read(path).map_err(|e| {
        Diagnostics(vec![Diagnostic::error(
            Origin::file_only(path),
            format!("cannot read DAG file: {e}"),
        )])
    })?;
    let mut loader = Loader {
        project,
        registry,
        jobs: HashMap::new(),
        diags: Vec::new(),
    };
    let dag = loader.load(source);
    let diags = loader.diags;
    match dag {
        Some(d) if !diags.iter().any(Diagnostic::is_error) => Ok((d, diags)),
        _ => Err(Diagnostics(diags)),
    }
}

struct Loader<'a> {
    project: &'a Project,
    registry: &'a Registry,
    /// Job files already read, by path (several tasks may share one).
    jobs: HashMap<PathBuf, Option<Arc<Doc>>>,
    diags: Vec<Diagnostic>,
}

/// Where the keys of one task's merged config come from.
struct ConfigSources<'d> {
    dag: &'d Doc,
    task_path: String,
    job: Option<Arc<Doc>>,
    with_keys: HashSet<String>,
}

impl ConfigSources<'_> {
    fn origin(&self, config_path: &str) -> Origin {
        let top = config_path.split(['.', '[']).next().unwrap_or_default();
        if self.with_keys.contains(top) {
            return self
                .dag
                .value_origin(&join(&format!("{}.with", self.task_path), config_path));
        }
        match &self.job {
            Some(job) => job.value_origin(config_path),
            None => self.dag.value_origin(&join(&self.task_path, config_path)),
        }
    }
}

impl Loader<'_> {
    fn error(&mut self, origin: Origin, msg: impl Into<String>, hint: impl Into<String>) {
        self.diags.push(Diagnostic::error(origin, msg).with_hint(hint));
    }

    fn load(&mut self, source: SourceFile) -> Option<Dag> {
        let (doc, parse_errors) = Doc::parse(source);
        let syntax_errors = parse_errors.len();
        self.diags.extend(parse_errors);

        let mut top_keys: Vec<&str> = field_names::<DagHeader>().to_vec();
        top_keys.sort();
        doc.check_keys("", &doc.table, &top_keys, &mut self.diags);
        if let Some(Value::Table(d)) = doc.table.get("defaults") {
            doc.check_keys("defaults", d, field_names::<PolicyFile>(), &mut self.diags);
        }
        self.check_alert_keys(&doc);
        // Every bad value is reported; the header keeps the good ones.
        let header: DagHeader = doc
            .deserialize_all("", Value::Table(doc.table.clone()), &mut self.diags)
            // Keep going with the tasks, so that their problems are reported
            // in the same pass.
            .unwrap_or_else(|| DagHeader::fallback(&doc.table));
        match doc.table.get("name") {
            None => self.error(
                doc.source.start(),
                "the DAG has no `name`",
                "add `name = \"...\"` at the top: the name keys runs, artifacts and logs",
            ),
            Some(Value::String(name))
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                self.error(
                    doc.value_origin("name"),
                    format!("bad DAG name `{name}`"),
                    "use letters, digits, `_` and `-` only: the name keys runs, artifacts and logs",
                );
            }
            // Not a string: reported by `deserialize_all`.
            _ => {}
        }

        let tz = match header.timezone.as_deref().map(parse_tz) {
            None => Tz::UTC,
            Some(Ok(tz)) => tz,
            Some(Err(e)) => {
                let name = header.timezone.clone().unwrap_or_default();
                let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|t| t.name()).collect();
                let hint = match did_you_mean(&name, names.iter().copied()) {
                    Some(c) => format!("did you mean `{c}`?"),
                    None => "use an IANA name such as \"Europe/London\" or \"UTC\"".into(),
                };
                self.error(doc.value_origin("timezone"), e, hint);
                Tz::UTC
            }
        };
        let dst = DstPolicy {
            gap: header.dst_gap,
            overlap: header.dst_overlap,
        };
        let schedule = match &header.schedule {
            None => None,
            Some(expr) => match Schedule::parse(expr, tz) {
                Ok(s) => Some(s.with_dst(dst)),
                Err(e) => {
                    self.error(
                        doc.value_origin("schedule"),
                        e,
                        "5 fields (`min hour day month weekday`, e.g. \"0 2 * * *\"), 6 with seconds first, or @hourly/@daily/@weekly/@monthly",
                    );
                    None
                }
            },
        };
        let start = self.date_field(&doc, "start", header.start.as_ref());
        let end = self.date_field(&doc, "end", header.end.as_ref());
        if let (Some(s), Some(e)) = (start, end)
            && e < s
        {
            self.error(
                doc.value_origin("end"),
                format!("`end` ({e}) is before `start` ({s})"),
                "swap them or remove `end`",
            );
        }
        let max_active_runs = header.max_active_runs.unwrap_or(1);
        if max_active_runs == 0 {
            self.error(
                doc.value_origin("max_active_runs"),
                "`max_active_runs` must be at least 1",
                "use 1 to run one date at a time",
            );
        }
        let max_catchup = header.max_catchup.unwrap_or(DEFAULT_MAX_CATCHUP);
        if max_catchup == 0 {
            self.error(
                doc.value_origin("max_catchup"),
                "`max_catchup` must be at least 1",
                "use `catchup = false` to run only the latest missed interval",
            );
        }
        if header.schedule.is_none() {
            for key in ["catchup", "max_catchup", "max_active_runs", "dst_gap", "dst_overlap"] {
                if doc.table.contains_key(key) {
                    self.diags.push(
                        Diagnostic::warning(
                            doc.key_origin(key),
                            format!("`{key}` has no effect: the DAG has no `schedule`"),
                        )
                        .with_hint("add `schedule = \"0 2 * * *\"` (cron) or remove the key"),
                    );
                }
            }
        }
        for (path, msg, hint) in header.alerts.check() {
            self.error(doc.value_origin(&join("alerts", &path)), msg, hint);
        }
        let defaults = header.defaults.over(&TaskPolicy::default());
        self.check_policy(&doc, "defaults", &defaults);

        let declared_vars: HashSet<String> = header.vars.keys().cloned().collect();
        for (k, v) in &header.vars {
            self.check_templates(v, &format!("vars.{k}"), Some(&declared_vars), &|p| doc.value_origin(p));
        }

        let mut tasks = Vec::new();
        for (i, table) in header.task.iter().enumerate() {
            if let Some(t) = self.load_task(&doc, i, table, &defaults, &declared_vars) {
                tasks.push(t);
            }
        }
        if header.task.is_empty() {
            self.error(
                doc.source.start(),
                "the DAG has no tasks",
                "add a task: [[task]] id = \"hello\" kind = \"shell\" command = \"echo hi\"",
            );
        }
        self.check_graph(&doc, &header.task, &tasks);
        doc.drop_cascading(&mut self.diags, syntax_errors);

        Some(Dag {
            name: header.name,
            description: header.description,
            file: doc.source.path.to_path_buf(),
            schedule,
            tz,
            start,
            end,
            catchup: header.catchup,
            max_catchup,
            max_active_runs,
            dst,
            vars: header.vars,
            pii: header.pii,
            tasks,
            alerts: header.alerts,
        })
    }

    /// Unknown keys in `[alerts]` and in its target tables.
    fn check_alert_keys(&mut self, doc: &Doc) {
        if let Some(Value::Table(a)) = doc.table.get("alerts") {
            check_alert_keys(doc, "alerts", a, &mut self.diags);
        }
    }

    fn date_field(&mut self, doc: &Doc, key: &str, v: Option<&Value>) -> Option<NaiveDate> {
        let v = v?;
        let date = match v {
            Value::Datetime(d) if d.time.is_none() => d
                .date
                .and_then(|d| NaiveDate::from_ymd_opt(d.year.into(), d.month.into(), d.day.into())),
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").ok(),
            _ => None,
        };
        match date {
            Some(d) => Some(d),
            None => {
                self.error(
                    doc.value_origin(key),
                    format!("`{key}` must be a date, got `{v}`"),
                    format!("write a bare date: `{key} = 2010-12-01`"),
                );
                None
            }
        }
    }

    fn check_policy(&mut self, doc: &Doc, path: &str, p: &TaskPolicy) {
        if !(p.retry_backoff >= 1.0 && p.retry_backoff.is_finite()) {
            self.error(
                doc.value_origin(&join(path, "retry_backoff")),
                format!("`retry_backoff` = {} must be at least 1.0", p.retry_backoff),
                "1.0 waits the same each time, 2.0 doubles the wait",
            );
        }
        if !(0.0..=1.0).contains(&p.retry_jitter) {
            self.error(
                doc.value_origin(&join(path, "retry_jitter")),
                format!("`retry_jitter` = {} must be between 0 and 1", p.retry_jitter),
                "0.1 spreads each wait by +/-10%",
            );
        }
        if p.timeout == Some(Duration::ZERO) {
            self.error(
                doc.value_origin(&join(path, "timeout")),
                "`timeout` must be longer than zero",
                "remove it for no limit",
            );
        }
    }

    fn load_task(
        &mut self,
        doc: &Doc,
        i: usize,
        table: &Table,
        defaults: &TaskPolicy,
        vars: &HashSet<String>,
    ) -> Option<Task> {
        let path = format!("task[{i}]");
        let task_keys = field_names::<TaskFile>();
        let policy_keys = field_names::<PolicyFile>();
        let (mut own, mut policy_t, mut job_t) = (Table::new(), Table::new(), Table::new());
        for (k, v) in table {
            let dest = if task_keys.contains(&k.as_str()) {
                &mut own
            } else if policy_keys.contains(&k.as_str()) {
                &mut policy_t
            } else {
                &mut job_t
            };
            dest.insert(k.clone(), v.clone());
        }
        let tf: TaskFile = doc.deserialize_all(&path, Value::Table(own), &mut self.diags)?;
        let own_policy = doc.deserialize_all::<PolicyFile>(&path, Value::Table(policy_t), &mut self.diags);
        let policy = own_policy
            .as_ref()
            .map_or_else(|| defaults.clone(), |p| p.over(defaults));
        // Only the values this task sets: a bad `[defaults]` value is reported
        // once, in `[defaults]`, not again on every task (unset values take the
        // built-in defaults here, which are valid).
        if let Some(own) = &own_policy {
            self.check_policy(doc, &path, &own.over(&TaskPolicy::default()));
        }
        let origin = doc.key_origin(&format!("{path}.id"));

        // The job: from a file (plus `with`), or inline.
        let (job_doc, mut config) = match &tf.job {
            Some(job_path) => {
                for k in job_t.keys() {
                    self.error(
                        doc.key_origin(&format!("{path}.{k}")),
                        format!(
                            "`{k}` is not a task key, and task `{}` takes its job from `{job_path}`",
                            tf.id
                        ),
                        format!("to override the job's `{k}`, write `with = {{ {k} = ... }}`"),
                    );
                }
                let job_doc = self.job_file(doc, &format!("{path}.job"), job_path)?;
                (Some(job_doc.clone()), job_doc.table.clone())
            }
            None => {
                if !tf.with.is_empty() {
                    self.error(
                        doc.key_origin(&format!("{path}.with")),
                        "`with` overrides a job file, but this task has no `job`",
                        "write the settings directly in the task, or add `job = \"jobs/...\"`",
                    );
                }
                (None, job_t)
            }
        };
        let kind_origin = |p: &str| match &job_doc {
            Some(j) => j.value_origin(p),
            None => doc.value_origin(&format!("{path}.{p}")),
        };
        let kind = match config.remove("kind") {
            Some(Value::String(k)) => k,
            Some(_) => {
                self.error(
                    kind_origin("kind"),
                    "`kind` must be a string",
                    "e.g. `kind = \"shell\"`",
                );
                return None;
            }
            None => {
                let (at, hint) = match &job_doc {
                    Some(j) => (j.source.start(), "add `kind = \"...\"` to the job file".to_string()),
                    None => (
                        origin.clone(),
                        format!(
                            "add `kind = \"...\"` (one of {}) or `job = \"jobs/....toml\"`",
                            self.registry.names().join(", ")
                        ),
                    ),
                };
                self.error(at, format!("task `{}` has no step kind", tf.id), hint);
                return None;
            }
        };
        let Some(step_kind) = self.registry.get(&kind).copied() else {
            self.error(
                kind_origin("kind"),
                format!("unknown step kind `{kind}`"),
                unknown_name_hint(&kind, &self.registry.names()),
            );
            return None;
        };

        let with_keys: HashSet<String> = tf.with.keys().cloned().collect();
        let sources = ConfigSources {
            dag: doc,
            task_path: path.clone(),
            job: job_doc.clone(),
            with_keys,
        };
        // Unknown keys, each in the file where it is written.
        let fields = step_kind.fields();
        let mut unknown = false;
        let config_keys: Vec<String> = config.keys().cloned().collect();
        for k in config_keys.iter().chain(tf.with.keys()) {
            if !fields.contains(&k.as_str()) {
                unknown = true;
                let at = if tf.with.contains_key(k) {
                    doc.key_origin(&format!("{path}.with.{k}"))
                } else {
                    match &job_doc {
                        Some(j) => j.key_origin(k),
                        None => doc.key_origin(&format!("{path}.{k}")),
                    }
                };
                let mut known: Vec<&str> = fields.to_vec();
                if job_doc.is_none() {
                    known.extend(task_keys);
                    known.extend(policy_keys);
                }
                self.error(
                    at,
                    format!("unknown key `{k}` for step kind `{kind}`"),
                    unknown_name_hint(k, &known),
                );
            }
        }
        merge(&mut config, &tf.with);

        self.check_templates(&Value::Table(config.clone()), "", Some(vars), &|p| sources.origin(p));
        if !unknown {
            self.check_step(&step_kind, &config, &|p| sources.origin(p));
        }

        Some(Task {
            id: tf.id,
            kind,
            config,
            needs: tf.needs,
            input: tf.input,
            inputs: tf.inputs,
            policy,
            origin,
            job_file: job_doc.map(|j| j.source.path.to_path_buf()),
        })
    }

    /// Runs a step kind's own checks on a (merged) config.
    fn check_step(&mut self, kind: &crate::steps::StepKind, config: &Table, origin: &dyn Fn(&str) -> Origin) {
        match kind.check(Value::Table(config.clone())) {
            Err((p, msg)) => {
                let text = if p.is_empty() {
                    msg.clone()
                } else {
                    format!("`{p}`: {msg}")
                };
                let mut d = Diagnostic::error(origin(&p), text);
                if let Some(h) = hint_for_serde_message(&msg) {
                    d = d.with_hint(h);
                }
                self.diags.push(d);
            }
            Ok(problems) => {
                // The same DAG runs in every env: check it against each
                // env's connections too (`load.warehouse` on sqlite, ...).
                let with_envs = self.project.envs.values().flat_map(|env| {
                    kind.check_env(Value::Table(config.clone()), &env.connections)
                        .into_iter()
                        .map(|pr| (format!("in env `{}`: {}", env.name, pr.message), pr))
                        .collect::<Vec<_>>()
                });
                let all: Vec<(String, crate::steps::ConfigProblem)> = problems
                    .into_iter()
                    .map(|pr| (pr.message.clone(), pr))
                    .chain(with_envs)
                    .collect();
                for (message, pr) in all {
                    let mut d = Diagnostic::error(origin(&pr.path), message);
                    if let Some(h) = pr.hint {
                        d = d.with_hint(h);
                    }
                    self.diags.push(d);
                }
            }
        }
    }

    /// Reads a job file (once), resolving it against the project folder,
    /// then the DAG's folder.
    fn job_file(&mut self, dag: &Doc, key_path: &str, rel: &str) -> Option<Arc<Doc>> {
        let candidates = [
            self.project.root.join(rel),
            dag.source.path.parent().unwrap_or(Path::new(".")).join(rel),
        ];
        let Some(found) = candidates.iter().find(|p| p.is_file()) else {
            self.error(
                dag.value_origin(key_path),
                format!("job file `{rel}` not found"),
                format!(
                    "looked in {}; job paths are relative to the project folder",
                    candidates
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
            );
            return None;
        };
        if let Some(cached) = self.jobs.get(found) {
            return cached.clone();
        }
        let parsed = match SourceFile::read(found) {
            Ok(src) => {
                let (doc, errs) = Doc::parse(src);
                let ok = errs.is_empty();
                self.diags.extend(errs);
                ok.then(|| Arc::new(doc))
            }
            Err(e) => {
                self.error(
                    dag.value_origin(key_path),
                    format!("cannot read job file `{rel}`: {e}"),
                    "check the file's permissions",
                );
                None
            }
        };
        self.jobs.insert(found.clone(), parsed.clone());
        parsed
    }

    fn check_templates(
        &mut self,
        v: &Value,
        path: &str,
        vars: Option<&HashSet<String>>,
        origin: &dyn Fn(&str) -> Origin,
    ) {
        match v {
            Value::String(s) => {
                for (msg, hint) in template::check(s, vars) {
                    self.error(origin(path), msg, hint);
                }
            }
            Value::Array(items) => {
                for (i, it) in items.iter().enumerate() {
                    self.check_templates(it, &format!("{path}[{i}]"), vars, origin);
                }
            }
            Value::Table(t) => {
                for (k, it) in t {
                    self.check_templates(it, &join(path, k), vars, origin);
                }
            }
            _ => {}
        }
    }

    fn check_graph(&mut self, doc: &Doc, raw: &[Table], tasks: &[Task]) {
        // Duplicate ids, from the raw tables so that tasks that failed to
        // load are still counted.
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, t) in raw.iter().enumerate() {
            if let Some(Value::String(id)) = t.get("id")
                && let Some(first) = seen.insert(id, i)
            {
                let first_line = doc.key_origin(&format!("task[{first}].id")).line;
                self.error(
                    doc.value_origin(&format!("task[{i}].id")),
                    format!("duplicate task id `{id}` (first declared on line {first_line})"),
                    "give each task a unique id",
                );
                seen.insert(id, first);
            }
        }
        let ids: Vec<&str> = seen.keys().copied().collect();
        // The first declaration of each id (a map lookup: a scan per task
        // made validating 1,000 tasks quadratic).
        let index_of = |id: &str| seen.get(id).copied();
        for t in tasks {
            let ti = index_of(&t.id).unwrap_or(0);
            for (j, need) in t.needs.iter().enumerate() {
                if need == &t.id {
                    self.error(
                        doc.value_origin(&format!("task[{ti}].needs[{j}]")),
                        format!("task `{}` needs itself", t.id),
                        "remove it from `needs`",
                    );
                } else if !seen.contains_key(need.as_str()) {
                    self.error(
                        doc.value_origin(&format!("task[{ti}].needs[{j}]")),
                        format!("task `{}` needs `{need}`, which is not a task of this DAG", t.id),
                        unknown_name_hint(need, &ids),
                    );
                }
            }
            let upstream_names = |r: &str| r.split('.').next().unwrap_or(r).to_string();
            let refs = t
                .input
                .iter()
                .map(|r| ("input".to_string(), r.clone()))
                .chain(t.inputs.iter().map(|(k, r)| (format!("inputs.{k}"), r.clone())));
            for (key, r) in refs {
                let up = upstream_names(&r);
                if !t.needs.contains(&up) {
                    self.error(
                        doc.value_origin(&format!("task[{ti}].{key}")),
                        format!("`{key}` reads `{r}`, but `{up}` is not in this task's `needs`"),
                        format!("add \"{up}\" to `needs`"),
                    );
                }
            }
        }
        let graph = DagGraph::new(tasks.iter().map(|t| (t.id.as_str(), t.needs.as_slice())));
        for cycle in graph.cycles() {
            let first = cycle.iter().filter_map(|id| index_of(id)).min().unwrap_or(0);
            let mut shown = cycle.clone();
            shown.push(cycle[0].clone());
            self.error(
                doc.key_origin(&format!("task[{first}].needs")),
                format!("cycle: {}", shown.join(" -> ")),
                "a DAG cannot loop: remove one of these `needs`",
            );
        }
    }
}

/// Checks a job file on its own (not through a DAG): its kind, its keys,
/// the kind's own checks and its templates (`vars.*` unchecked, as the DAG
/// that declares them is not known here).
pub fn check_job_file(path: &Path, project: &Project, registry: &Registry) -> Vec<Diagnostic> {
    let source = match SourceFile::read(path) {
        Ok(s) => s,
        Err(e) => {
            return vec![Diagnostic::error(
                Origin::file_only(path),
                format!("cannot read job file: {e}"),
            )];
        }
    };
    let mut loader = Loader {
        project,
        registry,
        jobs: HashMap::new(),
        diags: Vec::new(),
    };
    let (doc, errs) = Doc::parse(source);
    loader.diags.extend(errs);
    let mut config = doc.table.clone();
    let kind = match config.remove("kind") {
        Some(Value::String(k)) => k,
        _ => {
            loader.error(
                doc.source.start(),
                "job file has no `kind`",
                format!("add `kind = \"...\"` (one of {})", registry.names().join(", ")),
            );
            return loader.diags;
        }
    };
    let Some(step_kind) = registry.get(&kind).copied() else {
        loader.error(
            doc.value_origin("kind"),
            format!("unknown step kind `{kind}`"),
            unknown_name_hint(&kind, &registry.names()),
        );
        return loader.diags;
    };
    let mut unknown = false;
    for k in config.keys() {
        if !step_kind.fields().contains(&k.as_str()) {
            unknown = true;
            loader.error(
                doc.key_origin(k),
                format!("unknown key `{k}` for step kind `{kind}`"),
                unknown_name_hint(k, step_kind.fields()),
            );
        }
    }
    loader.check_templates(&Value::Table(config.clone()), "", None, &|p| doc.value_origin(p));
    if !unknown {
        loader.check_step(&step_kind, &config, &|p| doc.value_origin(p));
    }
    loader.diags
}

/// Deep-merges `over` into `base`: tables merge key by key, anything else
/// is replaced.
fn merge(base: &mut Table, over: &Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Unknown keys in an alerts table at `base` (a DAG's `[alerts]`, an env's
/// `report.alerts`) and in its target tables.
pub(crate) fn check_alert_keys(doc: &Doc, base: &str, a: &toml::Table, diags: &mut Vec<Diagnostic>) {
    use crate::report::alert::{Alerts, TARGET_KEYS};
    doc.check_keys(base, a, field_names::<Alerts>(), diags);
    for (key, v) in a {
        match v {
            Value::Table(t) => doc.check_keys(&format!("{base}.{key}"), t, TARGET_KEYS, diags),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Table(t) = item {
                        doc.check_keys(&format!("{base}.{key}[{i}]"), t, TARGET_KEYS, diags);
                    }
                }
            }
            _ => {}
        }
    }
}
