//! The scheduler's part of the run history: fire decisions, pauses,
//! leases and backfills (migration 2).

use anyhow::Result;
use rusqlite::{OptionalExtension, Row, params};

use super::{Store, hostname, now, pid_alive};

/// A fire decision: the scheduler decided to run `logical_date` of `dag`.
/// Recorded before the run starts, so that a restart after a crash runs it
/// (once) instead of deciding again.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub dag: String,
    pub logical_date: String,
    /// When the interval's fire time was (UTC, RFC 3339).
    pub fire_at: String,
    pub interval_start: String,
    pub interval_end: String,
    /// Why: `schedule`, `catchup`, `catchup (latest only)`, ...
    pub reason: String,
    /// `queued` (not started), `started`, `done`.
    pub state: String,
    pub run_id: Option<String>,
    pub run_state: Option<String>,
}

/// How long a lease lasts without renewal when its holder's pid cannot be
/// checked (another host), or its holder is alive but stuck.
pub const LEASE_TTL_SECS: i64 = 60;

fn decision_from_row(r: &Row<'_>) -> rusqlite::Result<Decision> {
    Ok(Decision {
        dag: r.get(0)?,
        logical_date: r.get(1)?,
        fire_at: r.get(2)?,
        interval_start: r.get(3)?,
        interval_end: r.get(4)?,
        reason: r.get(5)?,
        state: r.get(6)?,
        run_id: r.get(7)?,
        run_state: r.get(8)?,
    })
}

const DECISION_COLS: &str =
    "dag, logical_date, fire_at, interval_start, interval_end, reason, state, run_id, run_state";

impl Store {
    /// Records a decision; false if this interval was already decided (by
    /// us before a restart, or by another scheduler).
    pub fn record_decision(&self, d: &Decision, holder: &str) -> Result<bool> {
        let n = self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO fire_decisions
                   (dag, logical_date, fire_at, interval_start, interval_end, reason, state, holder, decided_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?7, ?8)",
                params![
                    d.dag,
                    d.logical_date,
                    d.fire_at,
                    d.interval_start,
                    d.interval_end,
                    d.reason,
                    holder,
                    now()
                ],
            )
        })?;
        Ok(n == 1)
    }

    pub fn decision_started(&self, dag: &str, logical_date: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE fire_decisions SET state = 'started' WHERE dag = ?1 AND logical_date = ?2",
                params![dag, logical_date],
            )
        })?;
        Ok(())
    }

    pub fn decision_done(&self, dag: &str, logical_date: &str, run_id: &str, run_state: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE fire_decisions SET state = 'done', run_id = ?3, run_state = ?4, ended_at = ?5
                 WHERE dag = ?1 AND logical_date = ?2",
                params![dag, logical_date, run_id, run_state, now()],
            )
        })?;
        Ok(())
    }

    /// The decision with the latest fire time of a DAG: where catch-up
    /// counts missed intervals from.
    pub fn latest_decision(&self, dag: &str) -> Result<Option<Decision>> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {DECISION_COLS} FROM fire_decisions WHERE dag = ?1 ORDER BY fire_at DESC LIMIT 1"),
                params![dag],
                decision_from_row,
            )
            .optional()
        })
    }

    /// Decisions not done yet, oldest first.
    pub fn open_decisions(&self, dag: &str) -> Result<Vec<Decision>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {DECISION_COLS} FROM fire_decisions WHERE dag = ?1 AND state != 'done' ORDER BY fire_at"
            ))?;
            let rows = st.query_map(params![dag], decision_from_row)?;
            rows.collect()
        })
    }

    /// Every decision of a DAG, oldest first.
    pub fn decisions(&self, dag: &str) -> Result<Vec<Decision>> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {DECISION_COLS} FROM fire_decisions WHERE dag = ?1 ORDER BY fire_at"
            ))?;
            let rows = st.query_map(params![dag], decision_from_row)?;
            rows.collect()
        })
    }

    // ---- pauses ----

    /// Pauses a DAG's schedule; false if it already was.
    pub fn pause(&self, dag: &str) -> Result<bool> {
        let n = self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO schedule_pauses (dag, paused_at) VALUES (?1, ?2)",
                params![dag, now()],
            )
        })?;
        Ok(n == 1)
    }

    /// Unpauses a DAG's schedule; false if it was not paused.
    pub fn unpause(&self, dag: &str) -> Result<bool> {
        let n = self.with(|c| c.execute("DELETE FROM schedule_pauses WHERE dag = ?1", params![dag]))?;
        Ok(n == 1)
    }

    pub fn paused(&self) -> Result<std::collections::HashSet<String>> {
        self.with(|c| {
            let mut st = c.prepare("SELECT dag FROM schedule_pauses")?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect()
        })
    }

    // ---- leases ----

    /// Takes or renews the lease `name` for `holder`. Fails (false) while
    /// another holder has it: its process is alive (this host) and it
    /// renewed within [`LEASE_TTL_SECS`].
    pub fn acquire_lease(&self, name: &str, holder: &str) -> Result<bool> {
        let host = hostname();
        let pid = std::process::id();
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let cur: Option<(String, u32, String, String)> = tx
                .query_row(
                    "SELECT holder, pid, host, renewed_at FROM leases WHERE name = ?1",
                    params![name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            if let Some((other, other_pid, other_host, renewed)) = cur
                && other != holder
            {
                let fresh = chrono::DateTime::parse_from_rfc3339(&renewed)
                    .is_ok_and(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds() < LEASE_TTL_SECS);
                let alive = if other_host == host { pid_alive(other_pid) } else { true };
                if fresh && alive {
                    return Ok(false);
                }
            }
            tx.execute(
                "INSERT INTO leases (name, holder, pid, host, renewed_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (name) DO UPDATE SET holder = ?2, pid = ?3, host = ?4, renewed_at = ?5",
                params![name, holder, pid, host, now()],
            )?;
            tx.commit()?;
            Ok(true)
        })
    }

    pub fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "DELETE FROM leases WHERE name = ?1 AND holder = ?2",
                params![name, holder],
            )
        })?;
        Ok(())
    }

    /// The holder of a live lease, if any (for reporting).
    pub fn lease_holder(&self, name: &str) -> Result<Option<(String, u32)>> {
        self.with(|c| {
            c.query_row("SELECT holder, pid FROM leases WHERE name = ?1", params![name], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
        })
    }

    // ---- backfills ----

    /// Starts a backfill, or finds the unfinished one with the same id
    /// (same DAG, range and flags): returns its run floor (the row id of
    /// the newest run when it began) and whether it was found.
    pub fn begin_backfill(&self, id: &str, dag: &str, args: &str) -> Result<(i64, bool)> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let existing: Option<(Option<i64>, Option<String>)> = tx
                .query_row(
                    "SELECT run_floor, finished_at FROM backfills WHERE id = ?1",
                    params![id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let out = match existing {
                Some((floor, None)) => (floor.unwrap_or(0), true),
                _ => {
                    let floor: i64 = tx.query_row("SELECT COALESCE(MAX(rowid), 0) FROM runs", [], |r| r.get(0))?;
                    tx.execute(
                        "INSERT OR REPLACE INTO backfills (id, dag, args, created_at, run_floor) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![id, dag, args, now(), floor],
                    )?;
                    (floor, false)
                }
            };
            tx.commit()?;
            Ok(out)
        })
    }

    /// The run floor of the unfinished backfill `id`, if any: runs with a
    /// larger row id were created after it began.
    pub fn open_backfill(&self, id: &str) -> Result<Option<i64>> {
        self.with(|c| {
            c.query_row(
                "SELECT COALESCE(run_floor, 0) FROM backfills WHERE id = ?1 AND finished_at IS NULL",
                params![id],
                |r| r.get(0),
            )
            .optional()
        })
    }

    /// The row id of a run: its place in creation order.
    pub fn run_rowid(&self, run_id: &str) -> Result<i64> {
        self.with(|c| {
            c.query_row("SELECT rowid FROM runs WHERE run_id = ?1", params![run_id], |r| {
                r.get(0)
            })
        })
    }

    pub fn finish_backfill(&self, id: &str) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE backfills SET finished_at = ?2 WHERE id = ?1",
                params![id, now()],
            )
        })?;
        Ok(())
    }

    /// Runs of a DAG left `running` by a process that is gone.
    pub fn abandoned_runs(&self, dag: &str) -> Result<Vec<super::RunRecord>> {
        let runs = self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {} FROM runs WHERE dag = ?1 AND state = 'running'",
                super::RUN_COLS
            ))?;
            let rows = st.query_map(params![dag], super::run_from_row)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        Ok(runs.into_iter().filter(|r| !self.is_live(r)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(date: &str, fire: &str) -> Decision {
        Decision {
            dag: "d".into(),
            logical_date: date.into(),
            fire_at: fire.into(),
            interval_start: "s".into(),
            interval_end: "e".into(),
            reason: "schedule".into(),
            state: "queued".into(),
            run_id: None,
            run_state: None,
        }
    }

    #[test]
    fn an_interval_is_decided_once() {
        let s = Store::in_memory().unwrap();
        assert!(
            s.record_decision(&decision("2026-01-01", "2026-01-02T02:00:00.000Z"), "a")
                .unwrap()
        );
        assert!(
            !s.record_decision(&decision("2026-01-01", "2026-01-02T02:00:00.000Z"), "b")
                .unwrap()
        );
        assert!(
            s.record_decision(&decision("2026-01-02", "2026-01-03T02:00:00.000Z"), "a")
                .unwrap()
        );
        assert_eq!(s.latest_decision("d").unwrap().unwrap().logical_date, "2026-01-02");
        s.decision_done("d", "2026-01-01", "d@2026-01-01", "success").unwrap();
        let open: Vec<String> = s
            .open_decisions("d")
            .unwrap()
            .into_iter()
            .map(|d| d.logical_date)
            .collect();
        assert_eq!(open, ["2026-01-02"]);
    }

    #[test]
    fn a_lease_has_one_live_holder() {
        let s = Store::in_memory().unwrap();
        assert!(s.acquire_lease("dag:x", "one").unwrap());
        assert!(!s.acquire_lease("dag:x", "two").unwrap());
        assert!(s.acquire_lease("dag:x", "one").unwrap());
        // A holder whose pid is gone loses it at once.
        s.with(|c| c.execute("UPDATE leases SET pid = ?1", params![i32::MAX]))
            .unwrap();
        assert!(s.acquire_lease("dag:x", "two").unwrap());
        s.release_lease("dag:x", "two").unwrap();
        assert!(s.lease_holder("dag:x").unwrap().is_none());
    }

    #[test]
    fn pause_and_unpause() {
        let s = Store::in_memory().unwrap();
        assert!(s.pause("d").unwrap());
        assert!(!s.pause("d").unwrap());
        assert!(s.paused().unwrap().contains("d"));
        assert!(s.unpause("d").unwrap());
        assert!(!s.unpause("d").unwrap());
    }
}
