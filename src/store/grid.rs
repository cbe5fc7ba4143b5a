//! Reads for the run grid and the web UI: the latest run of each logical
//! date, their task instances in one query, and clearing tasks of a run.

use std::collections::HashMap;

use anyhow::Result;
use rusqlite::params;

use super::{RUN_COLS, RunRecord, RunState, Store, TaskRecord, run_from_row, task_from_row};

impl Store {
    /// The latest run of each of the `limit` newest logical dates of a DAG,
    /// newest date first.
    pub fn latest_runs_by_date(&self, dag: &str, limit: usize) -> Result<Vec<RunRecord>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {RUN_COLS} FROM runs r WHERE dag = ?1
                   AND seq = (SELECT MAX(seq) FROM runs r2 WHERE r2.dag = r.dag AND r2.logical_date = r.logical_date)
                 ORDER BY logical_date DESC LIMIT ?2"
            ))?;
            let rows = st.query_map(params![dag, limit as i64], run_from_row)?;
            rows.collect()
        })
    }

    /// The task instances of the latest run of each of the `limit` newest
    /// logical dates of a DAG, by run id (one query for the whole grid).
    pub fn grid_tasks(&self, dag: &str, limit: usize) -> Result<HashMap<String, Vec<TaskRecord>>> {
        let rows: Vec<TaskRecord> = self.with(|c| {
            let mut st = c.prepare(
                "SELECT run_id, task_id, state, attempt, started_at, ended_at, error, metrics, outputs
                 FROM task_instances WHERE run_id IN (
                   SELECT run_id FROM runs r WHERE dag = ?1
                     AND seq = (SELECT MAX(seq) FROM runs r2 WHERE r2.dag = r.dag AND r2.logical_date = r.logical_date)
                   ORDER BY logical_date DESC LIMIT ?2)",
            )?;
            let rows = st.query_map(params![dag, limit as i64], task_from_row)?;
            rows.collect()
        })?;
        let mut out: HashMap<String, Vec<TaskRecord>> = HashMap::new();
        for t in rows {
            out.entry(t.run_id.clone()).or_default().push(t);
        }
        Ok(out)
    }

    /// Clears tasks of a run so that the next plain run of its date runs
    /// them again: each goes back to `pending` (its attempt count kept, so
    /// attempts go on numbering), and a finished run becomes `partial`.
    /// Returns the tasks cleared (those the run had a record of).
    pub fn clear_tasks(&self, run_id: &str, tasks: &[String]) -> Result<Vec<String>> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let mut cleared = Vec::new();
            for t in tasks {
                let n = tx.execute(
                    "UPDATE task_instances SET state = 'pending', started_at = NULL, ended_at = NULL, error = NULL,
                         rows_in = NULL, rows_out = NULL, rows_quarantined = NULL, rows_filtered = NULL,
                         metrics = NULL, outputs = NULL
                     WHERE run_id = ?1 AND task_id = ?2",
                    params![run_id, t],
                )?;
                if n == 1 {
                    cleared.push(t.clone());
                }
            }
            if !cleared.is_empty() {
                tx.execute(
                    "UPDATE runs SET state = ?2 WHERE run_id = ?1 AND state IN ('success', 'failed', 'interrupted')",
                    params![run_id, RunState::Partial.as_str()],
                )?;
            }
            tx.commit()?;
            Ok(cleared)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{NewRun, TaskState, Trigger};
    use super::*;

    fn run(s: &Store, date: &str, after: u32) -> RunRecord {
        s.create_run(&NewRun {
            dag: "d",
            logical_date: date,
            trigger: Trigger::Manual,
            env: "local",
            interval_start: "s",
            interval_end: "e",
            params: serde_json::json!({}),
            after_seq: after,
        })
        .unwrap()
    }

    #[test]
    fn the_grid_takes_the_latest_run_of_each_date() {
        let s = Store::in_memory().unwrap();
        let a = run(&s, "2026-01-01", 0);
        let b = run(&s, "2026-01-01", 1);
        let c = run(&s, "2026-01-02", 0);
        for r in [&a, &b, &c] {
            s.set_task_state(&r.run_id, "t", TaskState::Success, None).unwrap();
        }
        let runs: Vec<String> = s
            .latest_runs_by_date("d", 10)
            .unwrap()
            .into_iter()
            .map(|r| r.run_id)
            .collect();
        assert_eq!(runs, [c.run_id.clone(), b.run_id.clone()]);
        let tasks = s.grid_tasks("d", 1).unwrap();
        assert_eq!(tasks.keys().collect::<Vec<_>>(), [&c.run_id]);
    }

    #[test]
    fn clearing_makes_a_finished_run_partial() {
        let s = Store::in_memory().unwrap();
        let r = run(&s, "2026-01-01", 0);
        s.claim_run(&r.run_id).unwrap();
        s.task_started(&r.run_id, "a", 1).unwrap();
        s.task_attempt_ended(&r.run_id, "a", 1, TaskState::Success, None, None)
            .unwrap();
        s.finish_run(&r.run_id, RunState::Success).unwrap();
        let cleared = s.clear_tasks(&r.run_id, &["a".into(), "nope".into()]).unwrap();
        assert_eq!(cleared, ["a"]);
        assert_eq!(s.run(&r.run_id).unwrap().unwrap().state, RunState::Partial);
        let t = &s.tasks(&r.run_id).unwrap()[0];
        assert_eq!((t.state, t.attempt), (TaskState::Pending, 1));
    }
}
