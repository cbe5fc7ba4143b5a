//! Task logs: every line a task prints, kept per run and task.
//!
//! Lines are appended to `.nightjar/logs/<dag>/<run>/<task>.log` as they
//! arrive (one write each, no buffering), so a crash loses nothing that was
//! printed before it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

enum Sink {
    Unopened,
    Open(File),
    /// Discarding: a log nobody reads, or one whose file cannot be created
    /// (a full disk must not fail the task).
    Discard,
}

fn open_append(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// A cheap-to-clone handle that appends lines to one task's log file.
#[derive(Clone)]
pub struct TaskLog {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    file: Mutex<Sink>,
    echo: bool,
    task: String,
}

impl TaskLog {
    /// Opens (appending) the log of one task. With `echo`, lines are also
    /// printed to stderr prefixed by the task id.
    ///
    /// The file is created on the first line, by the task itself: creating
    /// it here would put a folder and a file creation on the engine's
    /// scheduling loop for every task.
    pub fn open(path: &Path, task: &str, echo: bool) -> std::io::Result<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                file: Mutex::new(Sink::Unopened),
                echo,
                task: task.to_string(),
            }),
        })
    }

    /// A log that keeps nothing (for tests and previews).
    pub fn discard() -> Self {
        Self {
            inner: Arc::new(Inner {
                path: PathBuf::new(),
                file: Mutex::new(Sink::Discard),
                echo: false,
                task: String::new(),
            }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Appends one line, tagged with its stream (`stdout`, `stderr`, `nightjar`).
    pub fn line(&self, stream: &str, text: &str) {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ");
        let record = format!("{now} [{stream}] {text}\n");
        if let Ok(mut sink) = self.inner.file.lock() {
            if let Sink::Unopened = *sink {
                *sink = match open_append(&self.inner.path) {
                    Ok(f) => Sink::Open(f),
                    Err(e) => {
                        tracing::warn!("cannot write task log {}: {e}", self.inner.path.display());
                        Sink::Discard
                    }
                };
            }
            if let Sink::Open(f) = &mut *sink {
                // A full disk must not fail the task; the line is lost, the
                // task result is not.
                let _ = f.write_all(record.as_bytes());
            }
        }
        if self.inner.echo {
            eprintln!("  {} | {text}", self.inner.task);
        }
    }

    /// A line from nightjar itself (attempt boundaries, retries, errors).
    pub fn note(&self, text: &str) {
        self.line("nightjar", text);
    }
}
