//! Running one step in process, outside the engine: a scratch project,
//! input datasets, connections, and the task log read back.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use nightjar::data::artifact::DatasetWriter;
use nightjar::data::{ArtifactStore, DatasetRef};
use nightjar::engine::log::TaskLog;
use nightjar::spec::project::Connection;
use nightjar::steps::{StepContext, StepKind, StepOutput};
use tokio_util::sync::CancellationToken;

pub struct StepRun {
    pub dir: tempfile::TempDir,
    pub cx: StepContext,
}

impl StepRun {
    pub fn new(task: &str, ds: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = TaskLog::open(&dir.path().join("task.log"), task, false).expect("task log");
        let cx = StepContext {
            dag: "test".into(),
            run_id: format!("test@{ds}"),
            task: task.into(),
            attempt: 1,
            ds: ds.into(),
            interval_start: format!("{ds}T00:00:00+00:00"),
            interval_end: format!("{ds}T00:00:00+00:00"),
            env: "test".into(),
            project_dir: dir.path().to_path_buf(),
            inputs: BTreeMap::new(),
            connections: Arc::new(BTreeMap::new()),
            artifacts: ArtifactStore::new(dir.path().join(".nightjar/artifacts")),
            log,
            cancel: CancellationToken::new(),
            pii: Arc::default(),
        };
        Self { dir, cx }
    }

    /// Adds connection `name` of `kind` with `settings` (TOML).
    pub fn connection(&mut self, name: &str, kind: &str, settings: &str) {
        let mut all = (*self.cx.connections).clone();
        all.insert(
            name.into(),
            Connection {
                name: name.into(),
                kind: kind.into(),
                settings: toml::from_str(settings).expect("settings are TOML"),
            },
        );
        self.cx.connections = Arc::new(all);
    }

    /// Sets the one input dataset to `batches`.
    pub fn input(&mut self, name: &str, batches: &[RecordBatch]) -> DatasetRef {
        let dir = self.dir.path().join("upstream").join(name);
        let mut w = DatasetWriter::create(&dir, name, "default", batches[0].schema()).expect("writer");
        for b in batches {
            w.write(b).expect("write");
        }
        let d = w.finish().expect("finish");
        self.cx.inputs.clear();
        self.cx.inputs.insert(name.into(), d.clone());
        d
    }

    /// Checks and runs `kind` with `config` (TOML without `kind`).
    pub async fn run(&self, kind: &StepKind, config: &str) -> anyhow::Result<StepOutput> {
        let value = toml::Value::Table(toml::from_str(config).expect("config is TOML"));
        let problems = kind
            .check(value.clone())
            .unwrap_or_else(|(p, m)| panic!("config does not parse at `{p}`: {m}"));
        assert!(problems.is_empty(), "config problems: {problems:?}");
        let step = kind
            .build(value)
            .unwrap_or_else(|(p, m)| panic!("cannot build at `{p}`: {m}"));
        let out = step.run(&self.cx).await?;
        let m = &out.metrics;
        assert_eq!(m.rows_in, m.rows_out + m.rows_quarantined + m.rows_filtered, "{m:?}");
        Ok(out)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.cx.log.path()).unwrap_or_default()
    }
}
