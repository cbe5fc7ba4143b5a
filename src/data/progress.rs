//! Progress of long reads and writes: a bar (indicatif) on a terminal,
//! a log line every few seconds otherwise.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::log::TaskLog;

/// How long a task must run before progress is shown at all.
const QUIET_FOR: Duration = Duration::from_secs(3);
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Counts rows (and bytes) of one task's work.
pub struct Progress {
    label: String,
    log: TaskLog,
    started: Instant,
    last_log: Instant,
    rows: u64,
    bytes: u64,
    bar: Option<ProgressBar>,
    terminal: bool,
}

impl Progress {
    pub fn new(label: impl Into<String>, log: TaskLog) -> Self {
        let now = Instant::now();
        Self {
            label: label.into(),
            log,
            started: now,
            last_log: now,
            rows: 0,
            bytes: 0,
            bar: None,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    /// Adds rows and bytes done. Cheap: the clock is read once per call,
    /// and callers call it per batch, not per row.
    pub fn add(&mut self, rows: u64, bytes: u64) {
        self.rows += rows;
        self.bytes += bytes;
        let elapsed = self.started.elapsed();
        if elapsed < QUIET_FOR {
            return;
        }
        if self.terminal {
            let msg = self.summary(elapsed);
            let bar = self.bar.get_or_insert_with(|| {
                let b = ProgressBar::new_spinner();
                b.set_style(
                    ProgressStyle::with_template("  {spinner} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                b
            });
            bar.set_message(msg);
            bar.tick();
        } else if self.last_log.elapsed() >= LOG_EVERY {
            self.last_log = Instant::now();
            self.log.note(&self.summary(elapsed));
        }
    }

    fn summary(&self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64().max(1e-9);
        format!(
            "{}: {} rows ({:.0} rows/s), {:.1} MB ({:.1} MB/s)",
            self.label,
            self.rows,
            self.rows as f64 / secs,
            self.bytes as f64 / 1e6,
            self.bytes as f64 / 1e6 / secs
        )
    }

    pub fn finish(self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        if self.started.elapsed() >= QUIET_FOR {
            self.log.note(&self.summary(self.started.elapsed()));
        }
    }
}
