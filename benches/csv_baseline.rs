//! Parse-throughput baseline of the data-plane benchmark (not a timed
//! test; see docs/benchmarks.md, "Data plane"): the `csv` crate reading the
//! same bytes as nightjar's extract, record by record into one reused
//! `ByteRecord`, with no typing, no UTF-8 check and no output.
//!
//! ```sh
//! cargo bench --bench csv_baseline -- /path/to/by-day [more folders or files]
//! ```
//!
//! A folder stands for its `*.csv` files, read in name order. Reads the
//! files `NIGHTJAR_BENCH_REPS` times (default 5; the first also warms the
//! page cache, as nightjar's runs find it warm) and prints one line with
//! the median: `csv_baseline files=N bytes=B rows=R secs=S mb_per_s=M`.
//!
//! The reader is configured as nightjar's `CsvSource` configures it
//! (`src/data/formats/csv.rs`): flexible, 256 KiB buffer.

use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use csv::{ByteRecord, ReaderBuilder};

fn files(args: &[String]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for a in args {
        let p = PathBuf::from(a);
        if p.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&p)
                .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "csv"))
                .collect();
            v.sort();
            out.extend(v);
        } else {
            out.push(p);
        }
    }
    out
}

/// One pass: (bytes, records, fields).
fn read_all(files: &[PathBuf]) -> (u64, u64, u64) {
    let (mut bytes, mut rows, mut fields) = (0u64, 0u64, 0u64);
    let mut record = ByteRecord::new();
    for f in files {
        let file = File::open(f).unwrap_or_else(|e| panic!("opening {}: {e}", f.display()));
        let mut r = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_reader(file);
        while r.read_byte_record(&mut record).expect("CSV error") {
            rows += 1;
            fields += record.len() as u64;
        }
        bytes += r.position().byte();
    }
    (bytes, rows, fields)
}

fn main() {
    // `cargo bench` appends `--bench`; anything starting with `--` is its.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if args.is_empty() {
        eprintln!("usage: cargo bench --bench csv_baseline -- FOLDER_OR_FILE...");
        std::process::exit(2);
    }
    let files = files(&args);
    assert!(!files.is_empty(), "no CSV file in {args:?}");
    let reps: usize = std::env::var("NIGHTJAR_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    let mut times = Vec::with_capacity(reps);
    let mut last = (0, 0, 0);
    for _ in 0..reps {
        let t = Instant::now();
        last = std::hint::black_box(read_all(&files));
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let secs = times[times.len() / 2];
    let (bytes, rows, fields) = last;
    println!(
        "csv_baseline files={} bytes={bytes} rows={rows} fields={fields} secs={secs:.4} mb_per_s={:.1}",
        files.len(),
        bytes as f64 / 1e6 / secs
    );
}
