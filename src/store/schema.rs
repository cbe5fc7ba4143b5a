//! The run history schema and its migrations.
//!
//! Each migration runs once, in order, inside a transaction; SQLite's
//! `user_version` records how many have run. Never edit a released
//! migration: add a new one.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: runs, task instances, attempts.
    r#"
    CREATE TABLE runs (
        run_id          TEXT PRIMARY KEY,
        dag             TEXT NOT NULL,
        logical_date    TEXT NOT NULL,
        seq             INTEGER NOT NULL,
        state           TEXT NOT NULL,
        trigger         TEXT NOT NULL,
        env             TEXT NOT NULL,
        interval_start  TEXT NOT NULL,
        interval_end    TEXT NOT NULL,
        params          TEXT NOT NULL DEFAULT '{}',
        created_at      TEXT NOT NULL,
        started_at      TEXT,
        ended_at        TEXT,
        pid             INTEGER,
        host            TEXT,
        heartbeat_at    TEXT,
        UNIQUE (dag, logical_date, seq)
    );
    CREATE INDEX runs_by_dag ON runs (dag, logical_date);

    CREATE TABLE task_instances (
        run_id            TEXT NOT NULL REFERENCES runs (run_id),
        task_id           TEXT NOT NULL,
        state             TEXT NOT NULL,
        attempt           INTEGER NOT NULL DEFAULT 0,
        started_at        TEXT,
        ended_at          TEXT,
        error             TEXT,
        rows_in           INTEGER,
        rows_out          INTEGER,
        rows_quarantined  INTEGER,
        rows_filtered     INTEGER,
        metrics           TEXT,
        outputs           TEXT,
        PRIMARY KEY (run_id, task_id)
    );

    CREATE TABLE attempts (
        run_id      TEXT NOT NULL,
        task_id     TEXT NOT NULL,
        attempt     INTEGER NOT NULL,
        state       TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        ended_at    TEXT,
        error       TEXT,
        PRIMARY KEY (run_id, task_id, attempt)
    );
    "#,
    // 2: the scheduler's state: fire decisions (recorded before a run
    // starts), paused DAGs, leases (one scheduler per DAG), backfills.
    r#"
    CREATE TABLE fire_decisions (
        dag             TEXT NOT NULL,
        logical_date    TEXT NOT NULL,
        fire_at         TEXT NOT NULL,
        interval_start  TEXT NOT NULL,
        interval_end    TEXT NOT NULL,
        reason          TEXT NOT NULL,
        state           TEXT NOT NULL,
        run_id          TEXT,
        run_state       TEXT,
        holder          TEXT NOT NULL,
        decided_at      TEXT NOT NULL,
        ended_at        TEXT,
        PRIMARY KEY (dag, logical_date)
    );
    CREATE INDEX fire_decisions_by_time ON fire_decisions (dag, fire_at);

    CREATE TABLE schedule_pauses (
        dag        TEXT PRIMARY KEY,
        paused_at  TEXT NOT NULL
    );

    CREATE TABLE leases (
        name        TEXT PRIMARY KEY,
        holder      TEXT NOT NULL,
        pid         INTEGER NOT NULL,
        host        TEXT NOT NULL,
        renewed_at  TEXT NOT NULL
    );

    CREATE TABLE backfills (
        id           TEXT PRIMARY KEY,
        dag          TEXT NOT NULL,
        args         TEXT NOT NULL,
        created_at   TEXT NOT NULL,
        finished_at  TEXT
    );
    "#,
    // 3: the audit log: who asked for what, when (CLI and web UI actions).
    r#"
    CREATE TABLE audit (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        at      TEXT NOT NULL,
        actor   TEXT NOT NULL,
        action  TEXT NOT NULL,
        dag     TEXT NOT NULL,
        target  TEXT NOT NULL,
        detail  TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_by_dag ON audit (dag, id);
    "#,
    // 4: a backfill remembers the last run that existed when it began, so
    // "re-run by this backfill" compares run row ids, not wall-clock
    // times (two runs can be created within one millisecond).
    r#"
    ALTER TABLE backfills ADD COLUMN run_floor INTEGER;
    UPDATE backfills SET run_floor =
        (SELECT COALESCE(MAX(rowid), 0) FROM runs WHERE runs.created_at < backfills.created_at);
    "#,
];

/// Brings a database up to the current schema.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: usize = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current > MIGRATIONS.len() {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_MISMATCH),
            Some(format!(
                "the run history is at schema version {current}, newer than this nightjar knows ({}); upgrade nightjar",
                MIGRATIONS.len()
            )),
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
pub fn version() -> usize {
    MIGRATIONS.len()
}
