//! Task logs: every line a task prints, kept per run and task.
//!
//! Lines are appended to `.nightjar/logs/<dag>/<run>/<task>.log` as they
//! arrive (one write each, no buffering), so a crash loses nothing that was
//! printed before it.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A cheap-to-clone handle that appends lines to one task's log file.
#[derive(Clone)]
pub struct TaskLog {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    file: Mutex<Option<File>>,
    echo: bool,
    task: String,
}

impl TaskLog {
    /// Opens (appending) the log of one task. With `echo`, lines are also
    /// printed to stderr prefixed by the task id.
    pub fn open(path: &Path, task: &str, echo: bool) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                file: Mutex::new(Some(file)),
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
                file: Mutex::new(None),
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
        if let Ok(mut guard) = self.inner.file.lock()
            && let Some(f) = guard.as_mut()
        {
            // A full disk must not fail the task; the line is lost, the
            // task result is not.
            let _ = f.write_all(record.as_bytes());
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
