//! The audit log (migration 3): every action taken on a DAG or a run
//! through the CLI or the web UI, with who asked and when.

use anyhow::Result;
use rusqlite::params;
use serde::Serialize;

use super::{Store, now};

/// One recorded action.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    /// When (UTC, RFC 3339).
    pub at: String,
    /// Who: `cli:<user>` or `ui:<client address>`.
    pub actor: String,
    /// What: `run`, `rerun_failed`, `clear`, `backfill`, `pause`, `unpause`.
    pub action: String,
    pub dag: String,
    /// The date, run or task acted on (empty for DAG-wide actions).
    pub target: String,
    /// The action's arguments.
    pub detail: serde_json::Value,
}

impl Store {
    /// Records an action (before it is carried out, so a crash mid-way
    /// still shows who started it).
    pub fn record_audit(
        &self,
        actor: &str,
        action: &str,
        dag: &str,
        target: &str,
        detail: &serde_json::Value,
    ) -> Result<i64> {
        self.with(|c| {
            c.execute(
                "INSERT INTO audit (at, actor, action, dag, target, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![now(), actor, action, dag, target, detail.to_string()],
            )?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Recorded actions, newest first, optionally of one DAG.
    pub fn audit(&self, dag: Option<&str>, limit: usize) -> Result<Vec<AuditRecord>> {
        self.with(|c| {
            let mut st = c.prepare(
                "SELECT id, at, actor, action, dag, target, detail FROM audit
                 WHERE (?1 IS NULL OR dag = ?1) ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![dag, limit as i64], |r| {
                let detail: String = r.get(6)?;
                Ok(AuditRecord {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    dag: r.get(4)?,
                    target: r.get(5)?,
                    detail: serde_json::from_str(&detail).unwrap_or_default(),
                })
            })?;
            rows.collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_recorded_newest_first() {
        let s = Store::in_memory().unwrap();
        s.record_audit("cli:ann", "pause", "d", "", &serde_json::json!({}))
            .unwrap();
        s.record_audit(
            "ui:127.0.0.1",
            "run",
            "d",
            "2026-01-01",
            &serde_json::json!({"date": "2026-01-01"}),
        )
        .unwrap();
        s.record_audit("cli:ann", "pause", "other", "", &serde_json::json!({}))
            .unwrap();
        let a = s.audit(Some("d"), 10).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].action.as_str(), a[0].actor.as_str()), ("run", "ui:127.0.0.1"));
        assert_eq!(a[0].detail["date"], "2026-01-01");
        assert_eq!(s.audit(None, 10).unwrap().len(), 3);
    }
}
