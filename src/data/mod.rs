//! Datasets: what steps hand to each other.
//!
//! A step's outputs are named datasets. Between tasks they travel as
//! artifacts (files in the artifact store, keyed by dag/run/task/name), so a
//! resumed run, another process or another machine can read them. The data
//! plane fills these with Arrow record batches written as Parquet.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A named output of a task, stored as an artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRef {
    /// The producing task.
    pub task: String,
    /// The output's name within the task (`"default"` for a single output).
    pub name: String,
    /// Where the artifact lives (a local path or an `s3://` URI).
    pub uri: String,
    /// Rows in the dataset, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
}

/// Where a run's artifacts live: `<root>/<dag>/<run>/<task>/`.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    pub root: PathBuf,
}

impl ArtifactStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder of one task's artifacts in one run.
    pub fn task_dir(&self, dag: &str, run_id: &str, task: &str) -> PathBuf {
        self.root.join(dag).join(run_id).join(task)
    }
}

pub mod artifact;
pub mod expr;
pub mod formats;
pub mod infer;
pub mod ingest;
pub mod ops;
pub mod progress;
pub mod quarantine;
pub mod rows;
pub mod types;
