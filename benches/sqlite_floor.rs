//! The SQLite floor of the data-plane benchmark (not a timed test; see
//! docs/benchmarks.md, "Data plane"): the least time SQLite itself needs to
//! store the year's `orders` table, whatever produces the rows.
//!
//! ```sh
//! cargo bench --bench sqlite_floor -- /path/to/by-day
//! ```
//!
//! Reads the by-day CSVs with the `csv` crate, keeps the rows
//! `benches/dags/retail_year.toml` loads into `orders` (not cancelled,
//! exact duplicates dropped), already typed and in memory. Only then the
//! clock starts: a fresh database file, `CREATE TABLE`, one transaction of
//! 64-row `INSERT`s from one prepared statement, `COMMIT` (with its WAL
//! checkpoint). Two settings:
//!
//! - `safe`: what `load.sqlite` uses (64 KiB pages, WAL,
//!   `synchronous = NORMAL`, 128 MiB cache): durable once committed;
//! - `unsafe`: no journal and no fsync at all, which no warehouse should
//!   run, as the lowest bound.
//!
//! Prints one line, medians of `NIGHTJAR_BENCH_REPS` runs (default 3):
//! `sqlite_floor rows=R safe_secs=S unsafe_secs=U`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rusqlite::types::Value;

const ROWS_PER_INSERT: usize = 64;

/// The `*.csv` files of a folder, in name order.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    v.sort();
    v
}

/// The orders rows as SQLite values: InvoiceNo, StockCode, Description,
/// Quantity, InvoiceDate (text, as load.sqlite writes timestamps),
/// UnitPrice, CustomerID, Country.
fn orders(files: &[PathBuf]) -> Vec<[Value; 8]> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for f in files {
        let mut r = csv::Reader::from_path(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for rec in r.records() {
            let rec = rec.expect("CSV error");
            let field = |i: usize| rec.get(i).unwrap_or_default();
            let key = rec.iter().collect::<Vec<_>>().join("\u{1f}");
            if field(0).starts_with('C') || !seen.insert(key) {
                continue;
            }
            let text = |i: usize| match field(i) {
                "" => Value::Null,
                t => Value::Text(t.to_string()),
            };
            let customer = match field(6) {
                "" => Value::Null,
                t => Value::Integer(t.parse::<f64>().expect("CustomerID") as i64),
            };
            out.push([
                text(0),
                text(1),
                text(2),
                Value::Integer(field(3).parse().expect("Quantity")),
                text(4),
                Value::Real(field(5).parse().expect("UnitPrice")),
                customer,
                text(7),
            ]);
        }
    }
    out
}

/// Stores `rows` in a fresh file with `pragmas`; seconds from the table's
/// creation through the commit.
fn store(rows: &[[Value; 8]], path: &Path, pragmas: &str) -> f64 {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    let mut db = rusqlite::Connection::open(path).expect("opening the database");
    db.execute_batch(pragmas).expect("pragmas");
    let start = Instant::now();
    db.execute_batch(
        "CREATE TABLE orders (InvoiceNo TEXT, StockCode TEXT, Description TEXT, Quantity INTEGER, \
         InvoiceDate TEXT, UnitPrice NUMERIC, CustomerID INTEGER, Country TEXT)",
    )
    .expect("create");
    let tx = db.transaction().expect("begin");
    {
        let one = format!("({})", ["?"; 8].join(","));
        let sql = |n: usize| format!("INSERT INTO orders VALUES {}", vec![one.as_str(); n].join(","));
        let mut multi = tx.prepare(&sql(ROWS_PER_INSERT)).expect("prepare");
        let mut chunks = rows.chunks_exact(ROWS_PER_INSERT);
        for chunk in &mut chunks {
            for (i, v) in chunk.iter().flatten().enumerate() {
                multi.raw_bind_parameter(i + 1, v).expect("bind");
            }
            multi.raw_execute().expect("insert");
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = tx.prepare(&sql(rest.len())).expect("prepare");
            for (i, v) in rest.iter().flatten().enumerate() {
                last.raw_bind_parameter(i + 1, v).expect("bind");
            }
            last.raw_execute().expect("insert");
        }
    }
    tx.commit().expect("commit");
    start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` appends `--bench`; anything starting with `--` is its.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let [dir] = args.as_slice() else {
        eprintln!("usage: cargo bench --bench sqlite_floor -- BY_DAY_FOLDER");
        std::process::exit(2);
    };
    let reps: usize = std::env::var("NIGHTJAR_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let rows = orders(&files(Path::new(dir)));
    let scratch = tempfile::tempdir().expect("a scratch folder");
    let db = scratch.path().join("floor.db");
    let safe = "PRAGMA page_size = 65536; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                PRAGMA cache_size = -131072;";
    let fast = "PRAGMA page_size = 65536; PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; \
                PRAGMA cache_size = -131072;";
    let (mut s, mut u) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        s.push(store(&rows, &db, safe));
        u.push(store(&rows, &db, fast));
    }
    println!(
        "sqlite_floor rows={} safe_secs={:.3} unsafe_secs={:.3}",
        rows.len(),
        median(s),
        median(u)
    );
}
