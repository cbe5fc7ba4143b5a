//! The DAG files a daemon runs, reloaded when they change.
//!
//! Each poll compares every DAG file's (and its job files') modification
//! time and size with the last load. A changed or added file is loaded and
//! validated; if it is invalid, the last valid version keeps running and the
//! errors are logged. A removed file stops its DAG (runs in flight finish).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use crate::spec::{Dag, Project, dag};
use crate::steps::Registry;

/// What changed in one poll, for the log.
#[derive(Debug, PartialEq)]
pub enum Change {
    Added(String),
    Changed(String),
    Removed(String),
    /// The file is invalid: the previous version (if any) is kept.
    Invalid {
        file: PathBuf,
        errors: String,
    },
}

type Stamp = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

struct Entry {
    stamp: Stamp,
    dag: Option<Arc<Dag>>,
    /// The problems of the file's current version, when it is invalid.
    errors: Option<String>,
}

/// The DAGs of a folder.
pub struct DagSet {
    dir: PathBuf,
    files: BTreeMap<PathBuf, Entry>,
}

fn stamp_of(p: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// `*.toml` files under a folder, sorted.
fn dag_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(dag_files(&p));
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
    out.sort();
    out
}

impl DagSet {
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            files: BTreeMap::new(),
        }
    }

    /// The valid DAGs, by name (the first file wins a duplicate name).
    pub fn dags(&self) -> BTreeMap<String, Arc<Dag>> {
        let mut out = BTreeMap::new();
        for e in self.files.values() {
            if let Some(d) = &e.dag {
                out.entry(d.name.clone()).or_insert_with(|| d.clone());
            }
        }
        out
    }

    /// The files whose current version is invalid, with their problems
    /// (the DAG's last valid version, if any, is still in [`Self::dags`]).
    pub fn invalid(&self) -> Vec<(PathBuf, String)> {
        self.files
            .iter()
            .filter_map(|(p, e)| e.errors.clone().map(|err| (p.clone(), err)))
            .collect()
    }

    /// Reloads what changed since the last call.
    pub fn poll(&mut self, project: &Project, registry: &Registry) -> Vec<Change> {
        let mut changes = Vec::new();
        let present = dag_files(&self.dir);
        let gone: Vec<PathBuf> = self.files.keys().filter(|p| !present.contains(p)).cloned().collect();
        for p in gone {
            if let Some(Entry { dag: Some(d), .. }) = self.files.remove(&p) {
                changes.push(Change::Removed(d.name.clone()));
            }
        }
        for p in present {
            let unchanged = self
                .files
                .get(&p)
                .is_some_and(|e| e.stamp.iter().all(|(f, s)| stamp_of(f) == *s));
            if unchanged {
                continue;
            }
            let file_stamp = vec![(p.clone(), stamp_of(&p))];
            match dag::load(&p, project, registry) {
                Ok((d, _warnings)) => {
                    let mut stamp = file_stamp;
                    for t in &d.tasks {
                        if let Some(j) = &t.job_file
                            && !stamp.iter().any(|(f, _)| f == j)
                        {
                            stamp.push((j.clone(), stamp_of(j)));
                        }
                    }
                    let old = self.files.insert(
                        p.clone(),
                        Entry {
                            stamp,
                            dag: Some(Arc::new(d.clone())),
                            errors: None,
                        },
                    );
                    changes.push(match old {
                        Some(Entry { dag: Some(_), .. }) => Change::Changed(d.name),
                        _ => Change::Added(d.name),
                    });
                }
                Err(diags) => {
                    // Keep the last valid version; remember this stamp so
                    // the same errors are logged once, not every poll.
                    let kept = self.files.remove(&p).and_then(|e| e.dag);
                    self.files.insert(
                        p.clone(),
                        Entry {
                            stamp: file_stamp,
                            dag: kept,
                            errors: Some(diags.to_string()),
                        },
                    );
                    changes.push(Change::Invalid {
                        file: p.clone(),
                        errors: diags.to_string(),
                    });
                }
            }
        }
        changes
    }
}
