//! Step kinds: one module per kind, and the registry that finds them by name.
//!
//! A step kind is a config struct (serde, `deny_unknown_fields`, whose doc
//! comments are the user docs) that implements [`StepConfig`]. Adding a kind
//! touches its own file and one line of [`Registry::builtin`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::data::{ArtifactStore, DatasetRef};
use crate::engine::log::TaskLog;
use crate::spec::doc::KeyError;
use crate::spec::fields::field_names;
use crate::spec::project::Connection;

pub mod extract;
pub mod load;
pub mod noop;
pub mod shell;
pub mod sql;
#[cfg(test)]
pub mod testing;
pub mod transform;

/// A configured step, ready to run.
#[async_trait]
pub trait Step: Send + Sync {
    /// Runs the step once (one attempt). Cancellation (timeout, Ctrl-C) drops
    /// the returned future, so resources must be released on drop (child
    /// processes are killed, transactions rolled back).
    async fn run(&self, cx: &StepContext) -> anyhow::Result<StepOutput>;
}

/// Everything a step may know about the run it is part of.
#[derive(Clone)]
pub struct StepContext {
    pub dag: String,
    pub run_id: String,
    pub task: String,
    pub attempt: u32,
    /// The logical date, `YYYY-MM-DD`.
    pub ds: String,
    pub interval_start: String,
    pub interval_end: String,
    /// The environment the run uses (`local`, `aws`, ...).
    pub env: String,
    /// The project folder; relative paths in configs are relative to it.
    pub project_dir: PathBuf,
    /// The datasets of upstream tasks, by input name.
    pub inputs: BTreeMap<String, DatasetRef>,
    /// The connections of the selected environment, by name.
    pub connections: Arc<BTreeMap<String, Connection>>,
    pub artifacts: ArtifactStore,
    pub log: TaskLog,
    /// Cancelled when the run is interrupted; long-running steps may watch it
    /// to stop early and cleanly.
    pub cancel: CancellationToken,
    /// Columns the DAG declares as PII (`pii = [...]`): never written raw to
    /// a quarantine file, a log line or an error message.
    pub pii: Arc<std::collections::BTreeSet<String>>,
}

impl StepContext {
    /// The folder where this task writes its artifacts.
    pub fn artifact_dir(&self) -> PathBuf {
        self.artifacts.task_dir(&self.dag, &self.run_id, &self.task)
    }

    /// The quarantine file of this task (created on the first bad row),
    /// withholding the values of the DAG's PII columns.
    pub fn quarantine(&self) -> crate::data::quarantine::Quarantine {
        crate::data::quarantine::Quarantine::new(self.artifact_dir().join("quarantine.ndjson"))
            .redacting(self.pii.iter().cloned())
    }

    /// A progress reporter for this task's reads and writes.
    pub fn progress(&self, label: &str) -> crate::data::progress::Progress {
        crate::data::progress::Progress::new(format!("{} {label}", self.task), self.log.clone())
    }

    /// The one input of a step that reads one dataset.
    pub fn single_input(&self) -> anyhow::Result<&DatasetRef> {
        match self.inputs.len() {
            1 => Ok(self.inputs.values().next().expect("one input")),
            0 => anyhow::bail!("task `{}` has no input: add the task it reads to `needs`", self.task),
            _ => anyhow::bail!(
                "task `{}` reads one dataset but has {} inputs ({}): choose one with `input = \"...\"`",
                self.task,
                self.inputs.len(),
                self.inputs.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// Fails when the run was cancelled (Ctrl-C, timeout): loops over
    /// batches call it so that blocking work stops promptly.
    pub fn check_cancelled(&self) -> anyhow::Result<()> {
        if self.cancel.is_cancelled() {
            anyhow::bail!("cancelled");
        }
        Ok(())
    }

    /// Runs CPU- or IO-heavy work on the blocking thread pool, with a copy
    /// of this context.
    pub async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(StepContext) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let cx = self.clone();
        tokio::task::spawn_blocking(move || work(cx)).await?
    }

    /// Resolves a path from a config against the project folder.
    pub fn resolve(&self, path: &str) -> PathBuf {
        let p = PathBuf::from(path);
        if p.is_absolute() { p } else { self.project_dir.join(p) }
    }
}

/// What a step produced.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StepOutput {
    pub datasets: Vec<DatasetRef>,
    pub metrics: Metrics,
}

/// Row accounting of one task: `rows_in = rows_out + rows_quarantined +
/// rows_filtered` for every step that transforms rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub rows_in: u64,
    pub rows_out: u64,
    pub rows_quarantined: u64,
    pub rows_filtered: u64,
    /// Kind-specific figures (bytes read, unmatched join rows, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// Returned (as the error) by a step that has nothing to do for this run,
/// e.g. no input file for the date with `if_missing = "skip"`. The task is
/// recorded as skipped, and so are the tasks downstream of it.
#[derive(Debug, thiserror::Error)]
#[error("skipped: {0}")]
pub struct Skipped(pub String);

/// A problem a step kind finds in its own config at validate time: the key
/// path inside the config, a message and a hint.
#[derive(Debug, Clone)]
pub struct ConfigProblem {
    pub path: String,
    pub message: String,
    pub hint: Option<String>,
}

impl ConfigProblem {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            hint: None,
        }
    }
    pub fn hint(mut self, h: impl Into<String>) -> Self {
        self.hint = Some(h.into());
        self
    }
}

/// The config of one step kind.
pub trait StepConfig: DeserializeOwned + Send + Sync + 'static {
    /// Semantic checks beyond what serde enforces, run by `validate` before
    /// anything runs. Template strings are not rendered yet here.
    fn check(&self) -> Vec<ConfigProblem> {
        Vec::new()
    }

    /// Checks that depend on an env's connections: `validate` runs them
    /// for every env of the project (e.g. an option the connection's kind
    /// does not support). Template strings are not rendered yet here.
    fn check_connections(&self, _connections: &BTreeMap<String, Connection>) -> Vec<ConfigProblem> {
        Vec::new()
    }

    /// Builds the runnable step from a rendered config.
    fn build(self) -> anyhow::Result<Box<dyn Step>>;
}

/// A registered step kind.
#[derive(Clone, Copy)]
pub struct StepKind {
    /// The name users write in `kind = "..."`.
    pub name: &'static str,
    /// One line for `--help` style listings.
    pub summary: &'static str,
    /// A complete, valid example job for the docs (checked by tests).
    pub example: &'static str,
    fields: fn() -> &'static [&'static str],
    check: fn(toml::Value) -> Result<Vec<ConfigProblem>, KeyError>,
    check_env: fn(toml::Value, &BTreeMap<String, Connection>) -> Vec<ConfigProblem>,
    build: fn(toml::Value) -> Result<Box<dyn Step>, KeyError>,
}

impl StepKind {
    /// Declares the kind `name` with config type `C`.
    pub const fn of<C: StepConfig>(name: &'static str, summary: &'static str, example: &'static str) -> Self {
        Self {
            name,
            summary,
            example,
            fields: field_names::<C>,
            check: check_config::<C>,
            check_env: check_env_config::<C>,
            build: build_config::<C>,
        }
    }

    /// The keys the config accepts (besides `kind`).
    pub fn fields(&self) -> &'static [&'static str] {
        (self.fields)()
    }

    /// Deserializes and checks a config. `Err` is a deserialization error:
    /// (key path, message).
    pub fn check(&self, config: toml::Value) -> Result<Vec<ConfigProblem>, KeyError> {
        (self.check)(config)
    }

    /// The problems of a config with an env's `connections` (none when the
    /// config does not deserialize: [`StepKind::check`] reports that).
    pub fn check_env(&self, config: toml::Value, connections: &BTreeMap<String, Connection>) -> Vec<ConfigProblem> {
        (self.check_env)(config, connections)
    }

    /// Builds the step from a rendered config.
    pub fn build(&self, config: toml::Value) -> Result<Box<dyn Step>, KeyError> {
        (self.build)(config)
    }
}

fn check_config<C: StepConfig>(v: toml::Value) -> Result<Vec<ConfigProblem>, KeyError> {
    let c: C = crate::spec::doc::deserialize_at(v)?;
    Ok(c.check())
}

fn check_env_config<C: StepConfig>(v: toml::Value, connections: &BTreeMap<String, Connection>) -> Vec<ConfigProblem> {
    crate::spec::doc::deserialize_at::<C>(v).map_or_else(|_| Vec::new(), |c| c.check_connections(connections))
}

fn build_config<C: StepConfig>(v: toml::Value) -> Result<Box<dyn Step>, KeyError> {
    let c: C = crate::spec::doc::deserialize_at(v)?;
    c.build().map_err(|e| (String::new(), format!("{e:#}")))
}

/// The step kinds nightjar knows, by name.
#[derive(Clone)]
pub struct Registry {
    kinds: BTreeMap<&'static str, StepKind>,
}

impl Registry {
    /// The kinds built into nightjar.
    pub fn builtin() -> Self {
        let mut r = Self { kinds: BTreeMap::new() };
        r.register(extract::file::KIND);
        r.register(extract::http::KIND);
        r.register(extract::s3::KIND);
        r.register(extract::sql::KIND);
        r.register(load::csv::KIND);
        r.register(load::parquet::KIND);
        r.register(load::sqlite::KIND);
        r.register(load::redshift::KIND);
        r.register(sql::KIND);
        r.register(load::postgres::KIND);
        r.register(load::warehouse::KIND);
        r.register(noop::KIND);
        r.register(shell::KIND);
        r.register(transform::clean::KIND);
        r.register(transform::explode::KIND);
        r.register(transform::join::KIND);
        r.register(transform::normalize::KIND);
        r.register(transform::pii::KIND);
        r
    }

    /// Adds (or replaces) a kind: for embedding nightjar with custom steps,
    /// and for tests.
    pub fn register(&mut self, kind: StepKind) {
        self.kinds.insert(kind.name, kind);
    }

    pub fn get(&self, name: &str) -> Option<&StepKind> {
        self.kinds.get(name)
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.kinds.keys().copied().collect()
    }

    pub fn kinds(&self) -> impl Iterator<Item = &StepKind> {
        self.kinds.values()
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

#[cfg(test)]
mod tests {
    use super::Registry;

    /// Every kind's documented example is a valid config.
    #[test]
    fn examples_validate() {
        for kind in Registry::builtin().kinds() {
            let mut table: toml::Table =
                toml::from_str(kind.example).unwrap_or_else(|e| panic!("example of `{}` is not TOML: {e}", kind.name));
            assert_eq!(
                table
                    .remove("kind")
                    .and_then(|k| k.as_str().map(str::to_string))
                    .as_deref(),
                Some(kind.name)
            );
            for key in table.keys() {
                assert!(
                    kind.fields().contains(&key.as_str()),
                    "example of `{}`: unknown key `{key}`",
                    kind.name
                );
            }
            let problems = kind
                .check(toml::Value::Table(table))
                .unwrap_or_else(|(p, m)| panic!("example of `{}` fails at `{p}`: {m}", kind.name));
            assert!(problems.is_empty(), "example of `{}`: {problems:?}", kind.name);
        }
    }
}
