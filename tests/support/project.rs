//! A scratch copy of the repository's project (`dags/`, `jobs/`, `sql/` and
//! any sample data a test names) in a temporary folder, the `nightjar`
//! binary run in it, and what the pipeline tests check afterwards: the
//! SQLite warehouse, and that no PII is stored anywhere under `.nightjar/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use arrow::util::display::{ArrayFormatter, FormatOptions};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap_or_else(|e| panic!("{}: {e}", from.display())) {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A temporary project: the repository's `dags/`, `jobs/` and `sql/`.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for d in ["dags", "jobs", "sql"] {
            copy_dir(&repo().join(d), &dir.path().join(d));
        }
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Copies the repository folder `rel` (e.g. `data/sample/cafe`) to the
    /// same place in the project.
    pub fn with(self, rel: &str) -> Self {
        copy_dir(&repo().join(rel), &self.path().join(rel));
        self
    }

    /// `nightjar ARGS` in the project folder.
    pub fn nightjar(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_nightjar"))
            .current_dir(self.path())
            .args(args)
            .output()
            .unwrap()
    }

    /// `nightjar ARGS`, which must succeed; returns stdout + stderr.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.nightjar(args);
        let text = printed(&out);
        assert!(out.status.success(), "nightjar {args:?} failed:\n{text}");
        text
    }

    /// The local warehouse (`.nightjar/warehouse.db`).
    pub fn warehouse(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path().join(".nightjar/warehouse.db")).unwrap()
    }
}

impl Default for Project {
    fn default() -> Self {
        Self::new()
    }
}

pub fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `SELECT COUNT(*) FROM table`.
pub fn count(db: &rusqlite::Connection, table: &str) -> usize {
    db.query_row(&format!("SELECT COUNT(*) FROM \"{table}\""), [], |r| r.get::<_, i64>(0))
        .unwrap_or_else(|e| panic!("count {table}: {e}")) as usize
}

/// The rows of `sql`, each value as text (NULL as `NULL`, reals as Rust
/// prints them), joined with `|`.
pub fn rows(db: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut st = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let n = st.column_count();
    st.query_map([], |r| {
        Ok((0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Null => "NULL".to_string(),
                rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                rusqlite::types::ValueRef::Real(v) => v.to_string(),
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                rusqlite::types::ValueRef::Blob(_) => "<blob>".into(),
            })
            .collect::<Vec<_>>()
            .join("|"))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// Every file under `dir` as text: its raw bytes, and Parquet files also
/// decoded (their pages are compressed, so bytes alone prove nothing), and
/// SQLite databases also as every value of every table (`.db` files).
pub fn everything_stored(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut all = Vec::new();
    files(dir, &mut all);
    assert!(!all.is_empty(), "nothing stored under {}", dir.display());
    all.into_iter()
        .map(|p| {
            let mut text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
            if p.extension().is_some_and(|e| e == "parquet") {
                let f = std::fs::File::open(&p).unwrap();
                let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
                    .unwrap()
                    .build()
                    .unwrap();
                for b in reader {
                    let b = b.unwrap();
                    for c in b.columns() {
                        let fmt = ArrayFormatter::try_new(c.as_ref(), &FormatOptions::default()).unwrap();
                        for i in 0..c.len() {
                            text.push('\n');
                            text.push_str(&fmt.value(i).to_string());
                        }
                    }
                }
            }
            if p.extension().is_some_and(|e| e == "db") {
                text.push('\n');
                text.push_str(&database_text(&p));
            }
            (p, text)
        })
        .collect()
}

/// Every value of every table of a SQLite database, one per line.
pub fn database_text(db: &Path) -> String {
    let c = rusqlite::Connection::open(db).unwrap();
    let tables: Vec<String> = c
        .prepare("select name from sqlite_master where type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut text = String::new();
    for t in tables {
        let mut st = c.prepare(&format!("select * from \"{t}\"")).unwrap();
        let n = st.column_count();
        let mut rows = st.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            for i in 0..n {
                match r.get_ref(i).unwrap() {
                    rusqlite::types::ValueRef::Text(t) => text.push_str(&String::from_utf8_lossy(t)),
                    rusqlite::types::ValueRef::Integer(v) => text.push_str(&v.to_string()),
                    rusqlite::types::ValueRef::Real(v) => text.push_str(&v.to_string()),
                    _ => {}
                }
                text.push('\n');
            }
        }
    }
    text
}

/// Fails naming the file when any needle occurs in any text. With
/// `whole_words`, a needle only matches a whole run of letters and digits
/// (a customer number `17850` is not found inside a hex pseudonym).
pub fn assert_absent(haystacks: &[(PathBuf, String)], needles: &[String], whole_words: bool) {
    for (p, text) in haystacks {
        if whole_words {
            let words: std::collections::HashSet<&str> = text.split(|c: char| !c.is_ascii_alphanumeric()).collect();
            for n in needles {
                assert!(!words.contains(n.as_str()), "`{n}` found in {}", p.display());
            }
        } else {
            for n in needles {
                assert!(!text.contains(n.as_str()), "`{n}` found in {}", p.display());
            }
        }
    }
}
