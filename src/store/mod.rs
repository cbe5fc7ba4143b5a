//! Run history in SQLite (`.nightjar/state.db`).
//!
//! Every state transition is one short transaction, written before the
//! engine acts on it. The database runs in WAL mode with
//! `synchronous = NORMAL`: a committed transaction survives the process
//! being killed at any instant (kill -9), which is the crash nightjar
//! promises to survive; only an OS crash or power loss may lose the last
//! few commits, and never corrupts the file.

pub mod audit;
mod grid;
pub mod model;
pub mod schedule;
mod schema;

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OptionalExtension, Row, params};

pub use model::{AttemptRecord, RunRecord, RunState, TaskRecord, TaskState, Trigger};

use crate::data::DatasetRef;
use crate::steps::Metrics;

/// The run history.
pub struct Store {
    conn: Mutex<Connection>,
}

/// What a new run is for.
#[derive(Debug, Clone)]
pub struct NewRun<'a> {
    pub dag: &'a str,
    pub logical_date: &'a str,
    pub trigger: Trigger,
    pub env: &'a str,
    pub interval_start: &'a str,
    pub interval_end: &'a str,
    pub params: serde_json::Value,
    /// The sequence number of the latest run of this date the caller saw
    /// (0: none). Creating fails if another process created one since, so
    /// that two processes never both start the same date.
    pub after_seq: u32,
}

/// The time now, as stored: RFC 3339, UTC, milliseconds.
pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// How long without a heartbeat before a running run is presumed dead
/// (for runs held by another host, whose pid cannot be checked).
pub const HEARTBEAT_STALE_SECS: i64 = 60;

impl Store {
    /// Opens (creating and migrating) the history at `path`.
    pub fn open(path: &Path) -> Result<Store> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let conn = Connection::open(path).with_context(|| format!("cannot open run history {}", path.display()))?;
        Self::setup(conn).with_context(|| format!("run history {}", path.display()))
    }

    /// A private in-memory history (tests, previews).
    pub fn in_memory() -> Result<Store> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Store> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        schema::migrate(&mut conn)?;
        Ok(Store { conn: Mutex::new(conn) })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>) -> Result<T> {
        let mut conn = self
            .conn
            .lock()
            .map_err(|_| anyhow::anyhow!("run history lock poisoned"))?;
        Ok(f(&mut conn)?)
    }

    // ---- runs ----

    /// The latest run of (dag, logical date), if any.
    pub fn latest_run(&self, dag: &str, logical_date: &str) -> Result<Option<RunRecord>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {RUN_COLS} FROM runs WHERE dag = ?1 AND logical_date = ?2 ORDER BY seq DESC LIMIT 1"),
                params![dag, logical_date],
                run_from_row,
            )
            .optional()
        })
    }

    /// Records a new run (state `queued`); forced re-runs of a date get the
    /// next sequence number and an id ending in `.N`.
    pub fn create_run(&self, new: &NewRun<'_>) -> Result<RunRecord> {
        let created = self.with(|c| {
            // IMMEDIATE: two processes creating a run of the same date
            // serialize here, and the second sees the first's run.
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let seq: u32 = tx.query_row(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM runs WHERE dag = ?1 AND logical_date = ?2",
                params![new.dag, new.logical_date],
                |r| r.get(0),
            )?;
            if seq != new.after_seq + 1 {
                return Ok(Err(seq - 1));
            }
            let run_id = if seq == 1 {
                format!("{}@{}", new.dag, new.logical_date)
            } else {
                format!("{}@{}.{seq}", new.dag, new.logical_date)
            };
            tx.execute(
                "INSERT INTO runs (run_id, dag, logical_date, seq, state, trigger, env, interval_start, interval_end, params, created_at)
                 VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    run_id,
                    new.dag,
                    new.logical_date,
                    seq,
                    new.trigger.as_str(),
                    new.env,
                    new.interval_start,
                    new.interval_end,
                    new.params.to_string(),
                    now()
                ],
            )?;
            tx.commit()?;
            Ok(Ok(run_id))
        })?;
        let run_id = match created {
            Ok(id) => id,
            Err(latest) => bail!(
                "another process started a run of {} {} at the same moment (run {latest} of that date); run again to resume it once it stops",
                new.dag,
                new.logical_date
            ),
        };
        self.run(&run_id)?.context("run vanished after insert")
    }

    pub fn run(&self, run_id: &str) -> Result<Option<RunRecord>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {RUN_COLS} FROM runs WHERE run_id = ?1"),
                params![run_id],
                run_from_row,
            )
            .optional()
        })
    }

    /// Runs, newest first, optionally of one DAG.
    pub fn runs(&self, dag: Option<&str>, limit: usize) -> Result<Vec<RunRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {RUN_COLS} FROM runs WHERE (?1 IS NULL OR dag = ?1) ORDER BY created_at DESC, logical_date DESC LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![dag, limit as i64], run_from_row)?;
            rows.collect()
        })
    }

    /// Takes a run for this process: marks it running with our pid. Fails
    /// if another live process holds it.
    pub fn claim_run(&self, run_id: &str) -> Result<()> {
        let host = hostname();
        let pid = std::process::id();
        let holder = self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let (state, other_pid, other_host, heartbeat): (String, Option<u32>, Option<String>, Option<String>) = tx
                .query_row(
                "SELECT state, pid, host, heartbeat_at FROM runs WHERE run_id = ?1",
                params![run_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            if state == "running"
                && let Some(p) = other_pid
                && holder_alive(p, other_host.as_deref(), heartbeat.as_deref(), &host)
                && p != pid
            {
                return Ok(Some((p, other_host.unwrap_or_default())));
            }
            let t = now();
            tx.execute(
                "UPDATE runs SET state = 'running', pid = ?2, host = ?3, heartbeat_at = ?4,
                        started_at = COALESCE(started_at, ?4), ended_at = NULL
                 WHERE run_id = ?1",
                params![run_id, pid, host, t],
            )?;
            tx.commit()?;
            Ok(None)
        })?;
        if let Some((p, h)) = holder {
            bail!("run {run_id} is already running (pid {p} on {h}); wait for it to finish");
        }
        Ok(())
    }

    /// Is this run held by a live process (for reporting)?
    pub fn is_live(&self, run: &RunRecord) -> bool {
        run.state == RunState::Running
            && run
                .pid
                .is_some_and(|p| holder_alive(p, run.host.as_deref(), run.heartbeat_at.as_deref(), &hostname()))
    }

    pub fn heartbeat(&self, run_id: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET heartbeat_at = ?2 WHERE run_id = ?1",
                params![run_id, now()],
            )
        })?;
        Ok(())
    }

    pub fn finish_run(&self, run_id: &str, state: RunState) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE runs SET state = ?2, ended_at = ?3, pid = NULL WHERE run_id = ?1",
                params![run_id, state.as_str(), now()],
            )
        })?;
        Ok(())
    }

    // ---- task instances ----

    pub fn tasks(&self, run_id: &str) -> Result<Vec<TaskRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT run_id, task_id, state, attempt, started_at, ended_at, error, metrics, outputs
                 FROM task_instances WHERE run_id = ?1 ORDER BY started_at IS NULL, started_at, task_id",
            )?;
            let rows = stmt.query_map(params![run_id], task_from_row)?;
            rows.collect()
        })
    }

    /// An attempt begins: the task is running.
    pub fn task_started(&self, run_id: &str, task: &str, attempt: u32) -> Result<()> {
        let t = now();
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO task_instances (run_id, task_id, state, attempt, started_at, ended_at, error)
                 VALUES (?1, ?2, 'running', ?3, ?4, NULL, NULL)
                 ON CONFLICT (run_id, task_id) DO UPDATE SET state = 'running', attempt = ?3,
                     started_at = ?4, ended_at = NULL, error = NULL",
                params![run_id, task, attempt, t],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO attempts (run_id, task_id, attempt, state, started_at) VALUES (?1, ?2, ?3, 'running', ?4)",
                params![run_id, task, attempt, t],
            )?;
            tx.commit()
        })
    }

    /// An attempt ends. `state` is the task's new state (`up_for_retry`
    /// when another attempt follows).
    pub fn task_attempt_ended(
        &self,
        run_id: &str,
        task: &str,
        attempt: u32,
        state: TaskState,
        error: Option<&str>,
        output: Option<(&Metrics, &[DatasetRef])>,
    ) -> Result<()> {
        let t = now();
        let attempt_state = if state == TaskState::UpForRetry {
            TaskState::Failed
        } else {
            state
        };
        let (metrics, outputs) = match output {
            Some((m, o)) => (Some(serde_json::to_string(m)?), Some(serde_json::to_string(o)?)),
            None => (None, None),
        };
        let m = output.map(|(m, _)| m);
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE task_instances SET state = ?3, ended_at = ?4, error = ?5,
                     rows_in = ?6, rows_out = ?7, rows_quarantined = ?8, rows_filtered = ?9,
                     metrics = COALESCE(?10, metrics), outputs = COALESCE(?11, outputs)
                 WHERE run_id = ?1 AND task_id = ?2",
                params![
                    run_id,
                    task,
                    state.as_str(),
                    t,
                    error,
                    m.map(|m| m.rows_in as i64),
                    m.map(|m| m.rows_out as i64),
                    m.map(|m| m.rows_quarantined as i64),
                    m.map(|m| m.rows_filtered as i64),
                    metrics,
                    outputs
                ],
            )?;
            tx.execute(
                "UPDATE attempts SET state = ?4, ended_at = ?5, error = ?6 WHERE run_id = ?1 AND task_id = ?2 AND attempt = ?3",
                params![run_id, task, attempt, attempt_state.as_str(), t, error],
            )?;
            tx.commit()
        })
    }

    /// Sets a task's state without an attempt (upstream_failed, skipped,
    /// interrupted).
    pub fn set_task_state(&self, run_id: &str, task: &str, state: TaskState, error: Option<&str>) -> Result<()> {
        self.with(|c| {
            c.execute(
                "INSERT INTO task_instances (run_id, task_id, state, ended_at, error) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (run_id, task_id) DO UPDATE SET state = ?3, ended_at = ?4, error = ?5",
                params![run_id, task, state.as_str(), now(), error],
            )
        })?;
        Ok(())
    }

    /// Marks the running attempts of a run as interrupted (Ctrl-C, or a dead
    /// process found on resume).
    pub fn interrupt_running_tasks(&self, run_id: &str, reason: &str) -> Result<()> {
        let t = now();
        self.with(|c| {
            let tx = c.transaction()?;
            tx.execute(
                "UPDATE attempts SET state = 'interrupted', ended_at = ?2, error = ?3 WHERE run_id = ?1 AND state = 'running'",
                params![run_id, t, reason],
            )?;
            tx.execute(
                "UPDATE task_instances SET state = 'interrupted', ended_at = ?2, error = ?3
                 WHERE run_id = ?1 AND state IN ('running', 'up_for_retry')",
                params![run_id, t, reason],
            )?;
            tx.commit()
        })
    }

    /// Copies the successful task instances `tasks` of run `from` into run
    /// `to` (a forced re-run of some tasks keeps the others' results and
    /// outputs).
    pub fn carry_over(&self, from: &str, to: &str, tasks: &[String]) -> Result<()> {
        self.with(|c| {
            let tx = c.transaction()?;
            for t in tasks {
                tx.execute(
                    "INSERT OR REPLACE INTO task_instances
                       (run_id, task_id, state, attempt, started_at, ended_at, error, rows_in, rows_out, rows_quarantined, rows_filtered, metrics, outputs)
                     SELECT ?2, task_id, state, 0, started_at, ended_at, error, rows_in, rows_out, rows_quarantined, rows_filtered, metrics, outputs
                     FROM task_instances WHERE run_id = ?1 AND task_id = ?3 AND state IN ('success', 'skipped')",
                    params![from, to, t],
                )?;
            }
            tx.commit()
        })
    }

    pub fn attempts(&self, run_id: &str, task: &str) -> Result<Vec<AttemptRecord>> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT attempt, state, started_at, ended_at, error FROM attempts WHERE run_id = ?1 AND task_id = ?2 ORDER BY attempt",
            )?;
            let rows = stmt.query_map(params![run_id, task], |r| {
                Ok(AttemptRecord {
                    attempt: r.get(0)?,
                    state: parse_col(r, 1)?,
                    started_at: r.get(2)?,
                    ended_at: r.get(3)?,
                    error: r.get(4)?,
                })
            })?;
            rows.collect()
        })
    }
}

const RUN_COLS: &str = "run_id, dag, logical_date, seq, state, trigger, env, interval_start, interval_end, params, created_at, started_at, ended_at, pid, host, heartbeat_at";

fn parse_col<T: std::str::FromStr<Err = String>>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    s.parse()
        .map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, e.into()))
}

fn run_from_row(r: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let params: String = r.get(9)?;
    Ok(RunRecord {
        run_id: r.get(0)?,
        dag: r.get(1)?,
        logical_date: r.get(2)?,
        seq: r.get(3)?,
        state: parse_col(r, 4)?,
        trigger: parse_col(r, 5)?,
        env: r.get(6)?,
        interval_start: r.get(7)?,
        interval_end: r.get(8)?,
        params: serde_json::from_str(&params).unwrap_or_default(),
        created_at: r.get(10)?,
        started_at: r.get(11)?,
        ended_at: r.get(12)?,
        pid: r.get(13)?,
        host: r.get(14)?,
        heartbeat_at: r.get(15)?,
    })
}

fn task_from_row(r: &Row<'_>) -> rusqlite::Result<TaskRecord> {
    let metrics: Option<String> = r.get(7)?;
    let outputs: Option<String> = r.get(8)?;
    Ok(TaskRecord {
        run_id: r.get(0)?,
        task_id: r.get(1)?,
        state: parse_col(r, 2)?,
        attempt: r.get(3)?,
        started_at: r.get(4)?,
        ended_at: r.get(5)?,
        error: r.get(6)?,
        metrics: metrics.and_then(|m| serde_json::from_str(&m).ok()),
        outputs: outputs.and_then(|o| serde_json::from_str(&o).ok()).unwrap_or_default(),
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".into())
}

/// Does a process with this pid exist on this host?
fn pid_alive(pid: u32) -> bool {
    // SAFETY: kill(pid, 0) only checks that the process exists.
    (unsafe { libc::kill(pid as i32, 0) == 0 }) || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Is the process holding a run still alive? On this host: its pid exists.
/// Elsewhere: its heartbeat is fresh.
fn holder_alive(pid: u32, host: Option<&str>, heartbeat: Option<&str>, this_host: &str) -> bool {
    if host == Some(this_host) {
        // SAFETY: kill(pid, 0) only checks that the process exists.
        return unsafe { libc::kill(pid as i32, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    }
    heartbeat
        .and_then(|h| chrono::DateTime::parse_from_rfc3339(h).ok())
        .is_some_and(|h| (chrono::Utc::now() - h.with_timezone(&chrono::Utc)).num_seconds() < HEARTBEAT_STALE_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_run<'a>(dag: &'a str, date: &'a str) -> NewRun<'a> {
        NewRun {
            dag,
            logical_date: date,
            trigger: Trigger::Manual,
            env: "local",
            interval_start: "2010-12-01T00:00:00+00:00",
            interval_end: "2010-12-02T00:00:00+00:00",
            params: serde_json::json!({}),
            after_seq: 0,
        }
    }

    #[test]
    fn runs_get_sequenced_ids() {
        let s = Store::in_memory().unwrap();
        let a = s.create_run(&new_run("d", "2010-12-01")).unwrap();
        // A second creator that has not seen run 1 is refused.
        let err = s.create_run(&new_run("d", "2010-12-01")).unwrap_err();
        assert!(err.to_string().contains("at the same moment"), "{err}");
        let b = s
            .create_run(&NewRun {
                after_seq: 1,
                ..new_run("d", "2010-12-01")
            })
            .unwrap();
        assert_eq!(a.run_id, "d@2010-12-01");
        assert_eq!(b.run_id, "d@2010-12-01.2");
        assert_eq!(s.latest_run("d", "2010-12-01").unwrap().unwrap().seq, 2);
    }

    #[test]
    fn task_lifecycle_is_recorded() {
        let s = Store::in_memory().unwrap();
        let r = s.create_run(&new_run("d", "2010-12-01")).unwrap();
        s.claim_run(&r.run_id).unwrap();
        s.task_started(&r.run_id, "t", 1).unwrap();
        s.task_attempt_ended(&r.run_id, "t", 1, TaskState::UpForRetry, Some("boom"), None)
            .unwrap();
        s.task_started(&r.run_id, "t", 2).unwrap();
        let m = Metrics {
            rows_in: 3,
            rows_out: 2,
            rows_filtered: 1,
            ..Default::default()
        };
        s.task_attempt_ended(&r.run_id, "t", 2, TaskState::Success, None, Some((&m, &[])))
            .unwrap();
        let t = &s.tasks(&r.run_id).unwrap()[0];
        assert_eq!((t.state, t.attempt), (TaskState::Success, 2));
        assert_eq!(t.metrics.as_ref().unwrap().rows_out, 2);
        let a = s.attempts(&r.run_id, "t").unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].state, TaskState::Failed);
        assert_eq!(a[0].error.as_deref(), Some("boom"));
    }

    #[test]
    fn a_live_holder_blocks_a_second_claim_and_a_dead_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let s = Store::open(&path).unwrap();
        let r = s.create_run(&new_run("d", "2010-12-01")).unwrap();
        // Pretend pid 1 (always alive) on this host holds it.
        s.with(|c| {
            c.execute(
                "UPDATE runs SET state='running', pid=1, host=?2 WHERE run_id=?1",
                params![r.run_id, hostname()],
            )
        })
        .unwrap();
        assert!(
            s.claim_run(&r.run_id)
                .unwrap_err()
                .to_string()
                .contains("already running")
        );
        // A pid that cannot exist is a dead holder.
        s.with(|c| c.execute("UPDATE runs SET pid=?2 WHERE run_id=?1", params![r.run_id, i32::MAX]))
            .unwrap();
        s.claim_run(&r.run_id).unwrap();
    }

    #[test]
    fn migrations_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(Store::open(&path).unwrap());
        let s = Store::open(&path).unwrap();
        let v: i64 = s
            .with(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
            .unwrap();
        assert_eq!(v as usize, schema::version());
    }
}
