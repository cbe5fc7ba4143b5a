//! The compliance harness: every step kind's tests run through it, and it
//! checks what every step owes its users on every run:
//!
//! - the config passes the kind's own validation;
//! - no row vanishes: `rows_in = rows_out + rows_quarantined + rows_filtered`
//!   (for steps that map a row to at most one row; see `conserves_rows`);
//! - the quarantine file holds exactly `rows_quarantined` rows;
//! - each output dataset holds the rows its reference claims, and together
//!   they hold `rows_out` (steps with outputs);
//! - no value declared as PII appears in the task log, the quarantine or
//!   any artifact.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use tokio_util::sync::CancellationToken;

use super::{StepContext, StepKind, StepOutput};
use crate::data::artifact::{DatasetWriter, read_all};
use crate::data::{ArtifactStore, DatasetRef};
use crate::engine::log::TaskLog;

/// A scratch project and task context for one step run.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub cx: StepContext,
    /// Values that must never appear in logs, quarantine or artifacts.
    pub pii_values: Vec<String>,
    /// Whether the step maps each input row to at most one output row, so
    /// that `rows_in = rows_out + rows_quarantined + rows_filtered` must
    /// hold. Steps that fan out or fold rows (joins, normalize) set it
    /// false and document their own row accounting.
    pub conserves_rows: bool,
}

/// What a run produced, read back for assertions.
pub struct Outcome {
    pub output: StepOutput,
    /// Output datasets by name, read back whole.
    pub datasets: BTreeMap<String, Vec<RecordBatch>>,
    pub log: String,
    pub quarantine: Vec<serde_json::Value>,
}

impl Outcome {
    pub fn rows(&self, name: &str) -> usize {
        self.datasets
            .get(name)
            .map_or(0, |b| b.iter().map(|b| b.num_rows()).sum())
    }

    /// The values of int64 column `col` of output `name`, across its
    /// batches (NULLs read as their slot's value).
    pub fn int64s(&self, name: &str, col: usize) -> Vec<i64> {
        use arrow::array::AsArray;
        self.datasets[name]
            .iter()
            .flat_map(|b| {
                b.column(col)
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect()
    }
}

impl Harness {
    pub fn new(task: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = TaskLog::open(&dir.path().join("task.log"), task, false).expect("task log");
        let cx = StepContext {
            dag: "test".into(),
            run_id: "test@2010-12-01".into(),
            task: task.into(),
            attempt: 1,
            ds: "2010-12-01".into(),
            interval_start: "2010-12-01T00:00:00+00:00".into(),
            interval_end: "2010-12-02T00:00:00+00:00".into(),
            env: "local".into(),
            project_dir: dir.path().to_path_buf(),
            inputs: BTreeMap::new(),
            connections: Arc::new(BTreeMap::new()),
            artifacts: ArtifactStore::new(dir.path().join(".nightjar/artifacts")),
            log,
            cancel: CancellationToken::new(),
            pii: Default::default(),
        };
        Self {
            dir,
            cx,
            pii_values: Vec::new(),
            conserves_rows: true,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file into the scratch project.
    pub fn file(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Adds an input dataset made of `batches` (as an upstream task's
    /// artifact).
    pub fn input(&mut self, name: &str, batches: &[RecordBatch]) -> DatasetRef {
        let dir = self.dir.path().join("upstream").join(name);
        let mut w = DatasetWriter::create(&dir, name, "default", batches[0].schema()).unwrap();
        for b in batches {
            w.write(b).unwrap();
        }
        let d = w.finish().unwrap();
        self.cx.inputs.insert(name.into(), d.clone());
        d
    }

    /// Validates and runs `kind` with `config` (TOML, without `kind`),
    /// then checks the compliance rules. Panics on a violation; returns the
    /// step's error as `Err` so tests can assert on failures.
    pub async fn run(&self, kind: &StepKind, config: &str) -> anyhow::Result<Outcome> {
        let table: toml::Table = toml::from_str(config).expect("config is TOML");
        let value = toml::Value::Table(table);
        let problems = kind
            .check(value.clone())
            .unwrap_or_else(|(p, m)| panic!("config does not parse at `{p}`: {m}"));
        assert!(problems.is_empty(), "config problems: {problems:?}");
        let step = kind
            .build(value)
            .unwrap_or_else(|(p, m)| panic!("cannot build at `{p}`: {m}"));
        let result = step.run(&self.cx).await;
        let log = std::fs::read_to_string(self.cx.log.path()).unwrap_or_default();
        let qpath = self.cx.artifact_dir().join("quarantine.ndjson");
        let quarantine: Vec<serde_json::Value> = std::fs::read_to_string(&qpath)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("quarantine lines are JSON"))
            .collect();
        self.assert_no_pii(&log, "the task log");
        self.assert_no_pii(
            &quarantine.iter().map(|v| v.to_string()).collect::<String>(),
            "the quarantine",
        );
        let output = result?;
        let m = &output.metrics;
        if self.conserves_rows {
            assert_eq!(
                m.rows_in,
                m.rows_out + m.rows_quarantined + m.rows_filtered,
                "rows in must equal rows out + quarantined + filtered: {m:?}"
            );
        }
        assert_eq!(
            quarantine.len() as u64,
            m.rows_quarantined,
            "quarantine file vs metrics"
        );
        let mut datasets = BTreeMap::new();
        let mut total = 0u64;
        for d in &output.datasets {
            let (_, batches) = read_all(d).expect("output dataset readable");
            let n: usize = batches.iter().map(|b| b.num_rows()).sum();
            assert_eq!(Some(n as u64), d.rows, "dataset `{}` row count", d.name);
            for b in &batches {
                let text = format!("{:?}", b);
                self.assert_no_pii(&text, &format!("output `{}`", d.name));
            }
            total += n as u64;
            datasets.insert(d.name.clone(), batches);
        }
        if !output.datasets.is_empty() && self.conserves_rows {
            assert_eq!(total, m.rows_out, "outputs hold rows_out rows");
        }
        Ok(Outcome {
            output,
            datasets,
            log,
            quarantine,
        })
    }

    fn assert_no_pii(&self, text: &str, place: &str) {
        for v in &self.pii_values {
            assert!(!text.contains(v.as_str()), "PII value `{v}` found in {place}");
        }
    }
}
