//! A prepared INSERT for bulk loads that binds text without copying it.
//!
//! rusqlite binds every text as `SQLITE_TRANSIENT`: SQLite allocates and
//! copies each value before the statement runs, and frees it on the next
//! bind. A load binds millions of texts that sit in Arrow arrays for the
//! whole run of the statement; those copies were about a fifth of
//! `load.sqlite`'s time on the Online Retail year. [`Insert`] binds them
//! as `SQLITE_STATIC` (SQLite reads them in place) through rusqlite's FFI,
//! on the connection and transaction rusqlite manages.
//!
//! Soundness rests on two rules the type enforces, not on its callers:
//! - a borrowed text outlives the run it is bound for ([`Insert::run`]
//!   binds and steps inside one call, and the borrow spans the call);
//! - the statement never steps with a stale binding: a run must bind every
//!   parameter, else it fails before stepping.

use std::ffi::{CStr, c_char, c_int};
use std::marker::PhantomData;
use std::ptr::NonNull;

use anyhow::{Result, anyhow, bail};
use rusqlite::ffi;

/// One prepared statement of a connection.
pub(super) struct Insert<'conn> {
    db: *mut ffi::sqlite3,
    stmt: NonNull<ffi::sqlite3_stmt>,
    params: usize,
    _conn: PhantomData<&'conn rusqlite::Connection>,
}

/// Binds one run's parameters, in order from the first. `'v`: how long
/// the texts bound in place live, at least the run.
pub(super) struct Binder<'v> {
    db: *mut ffi::sqlite3,
    stmt: *mut ffi::sqlite3_stmt,
    params: usize,
    next: c_int,
    _values: PhantomData<&'v str>,
}

impl<'conn> Insert<'conn> {
    /// Prepares `sql` (one statement) on `conn`.
    pub(super) fn prepare(conn: &'conn rusqlite::Connection, sql: &str) -> Result<Self> {
        // SAFETY: the handle is used only while `conn` is borrowed ('conn),
        // on this thread (Connection is not Sync), through SQLite's API.
        let db = unsafe { conn.handle() };
        let mut stmt = std::ptr::null_mut();
        let len = c_int::try_from(sql.len()).map_err(|_| anyhow!("statement too long"))?;
        // SAFETY: `sql` is valid for `len` bytes; SQLite copies what it needs.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db,
                sql.as_ptr().cast::<c_char>(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT as _,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            bail!("{}", message(db));
        }
        let stmt = NonNull::new(stmt).ok_or_else(|| anyhow!("no statement in `{sql}`"))?;
        // SAFETY: a prepared statement.
        let params = unsafe { ffi::sqlite3_bind_parameter_count(stmt.as_ptr()) } as usize;
        Ok(Self {
            db,
            stmt,
            params,
            _conn: PhantomData,
        })
    }

    /// Binds the parameters with `bind`, then runs the statement once.
    /// Texts given to [`Binder::text`] are read in place: they live at
    /// least as long as this call.
    pub(super) fn run<'v>(&mut self, bind: impl FnOnce(&mut Binder<'v>) -> Result<()>) -> Result<()> {
        let (params, stmt) = (self.params, self.stmt.as_ptr());
        let mut b = Binder {
            db: self.db,
            stmt,
            params,
            next: 1,
            _values: PhantomData,
        };
        bind(&mut b)?;
        if b.next as usize != params + 1 {
            bail!("bound {} of the statement's {params} parameters", b.next - 1);
        }
        // SAFETY: every parameter was bound in this call, to values that
        // outlive it.
        let rc = unsafe { ffi::sqlite3_step(stmt) };
        let failed = (rc != ffi::SQLITE_DONE).then(|| message(self.db));
        // SAFETY: a prepared statement; reset keeps the bindings, which the
        // next run replaces before stepping.
        unsafe { ffi::sqlite3_reset(stmt) };
        match failed {
            Some(m) => bail!("{m}"),
            None => Ok(()),
        }
    }
}

impl Drop for Insert<'_> {
    fn drop(&mut self) {
        // SAFETY: finalized once, before the connection closes ('conn).
        unsafe { ffi::sqlite3_finalize(self.stmt.as_ptr()) };
    }
}

impl<'v> Binder<'v> {
    /// The next parameter's number, checked against the statement's count.
    fn slot(&mut self) -> Result<c_int> {
        let i = self.next;
        if i as usize > self.params {
            bail!("more values than the statement's {} parameters", self.params);
        }
        self.next += 1;
        Ok(i)
    }

    fn check(&self, rc: c_int) -> Result<()> {
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            bail!("{}", message(self.db))
        }
    }

    pub(super) fn null(&mut self) -> Result<()> {
        let i = self.slot()?;
        // SAFETY: `i` is a parameter of this prepared statement.
        self.check(unsafe { ffi::sqlite3_bind_null(self.stmt, i) })
    }

    pub(super) fn int(&mut self, v: i64) -> Result<()> {
        let i = self.slot()?;
        // SAFETY: as in `null`.
        self.check(unsafe { ffi::sqlite3_bind_int64(self.stmt, i, v) })
    }

    pub(super) fn real(&mut self, v: f64) -> Result<()> {
        let i = self.slot()?;
        // SAFETY: as in `null`.
        self.check(unsafe { ffi::sqlite3_bind_double(self.stmt, i, v) })
    }

    /// A text SQLite reads in place (no copy): it outlives the run.
    pub(super) fn text(&mut self, v: &'v str) -> Result<()> {
        self.bind_text(v, ffi::SQLITE_STATIC())
    }

    /// A text SQLite copies at once, for scratch buffers reused within a run.
    pub(super) fn text_copied(&mut self, v: &str) -> Result<()> {
        self.bind_text(v, ffi::SQLITE_TRANSIENT())
    }

    fn bind_text(&mut self, v: &str, destructor: ffi::sqlite3_destructor_type) -> Result<()> {
        let i = self.slot()?;
        // SAFETY: `v` is valid UTF-8 for `v.len()` bytes; with SQLITE_STATIC
        // it outlives the statement's step (`text`'s lifetime), with
        // SQLITE_TRANSIENT SQLite copies it before returning.
        let rc = unsafe {
            ffi::sqlite3_bind_text64(
                self.stmt,
                i,
                v.as_ptr().cast::<c_char>(),
                v.len() as u64,
                destructor,
                ffi::SQLITE_UTF8 as _,
            )
        };
        self.check(rc)
    }
}

/// The connection's last error message.
fn message(db: *mut ffi::sqlite3) -> String {
    // SAFETY: SQLite returns a NUL-terminated string it owns, valid until
    // the next call on the connection; copied at once.
    unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> rusqlite::Connection {
        let db = rusqlite::Connection::open_in_memory().unwrap();
        db.execute_batch("CREATE TABLE t (a TEXT, b INTEGER CHECK (b <> 13), c REAL, d)")
            .unwrap();
        db
    }

    #[test]
    fn texts_bound_in_place_are_stored() {
        let db = db();
        let mut ins = Insert::prepare(&db, "INSERT INTO t VALUES (?, ?, ?, ?), (?, ?, ?, ?)").unwrap();
        for round in 0..3 {
            // Fresh strings per run, dropped after it: nothing may point
            // at them once the run is over.
            let a = format!("first {round}");
            let b = format!("second {round} ünïcödé");
            let mut scratch = String::from("copied");
            ins.run(|p| {
                p.text(&a)?;
                p.int(round)?;
                p.real(0.5)?;
                p.null()?;
                p.text(&b)?;
                p.int(round + 100)?;
                scratch.push('!');
                p.text_copied(&scratch)?;
                scratch.clear();
                p.text_copied("")
            })
            .unwrap();
        }
        drop(ins);
        let rows: Vec<(String, i64, rusqlite::types::Value)> = db
            .prepare("SELECT a, b, c FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), 6);
        assert_eq!(rows[2].0, "first 1");
        assert_eq!(rows[3].0, "second 1 ünïcödé");
        assert_eq!(rows[3].2, rusqlite::types::Value::Text("copied!".into()));
        assert_eq!(rows[4].1, 2);
    }

    #[test]
    fn a_run_binds_every_parameter_or_fails_before_stepping() {
        let db = db();
        let mut ins = Insert::prepare(&db, "INSERT INTO t VALUES (?, ?, ?, ?)").unwrap();
        let err = ins.run(|p| p.text("x")).unwrap_err().to_string();
        assert!(err.contains("bound 1 of the statement's 4 parameters"), "{err}");
        let err = ins
            .run(|p| {
                for _ in 0..5 {
                    p.null()?;
                }
                Ok(())
            })
            .unwrap_err()
            .to_string();
        assert!(err.contains("more values than the statement's 4 parameters"), "{err}");
        let n: i64 = db.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0, "nothing was stepped");
    }

    #[test]
    fn errors_are_sqlites_messages_and_the_statement_runs_again() {
        let db = db();
        assert!(
            Insert::prepare(&db, "INSERT INTO nope VALUES (?)")
                .err()
                .unwrap()
                .to_string()
                .contains("no such table: nope")
        );
        let mut ins = Insert::prepare(&db, "INSERT INTO t (b) VALUES (?)").unwrap();
        let err = ins.run(|p| p.int(13)).unwrap_err().to_string();
        assert!(err.contains("CHECK constraint failed"), "{err}");
        ins.run(|p| p.int(14)).unwrap();
        let n: i64 = db.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
    }
}
