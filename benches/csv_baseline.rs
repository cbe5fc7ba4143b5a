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
//!
//! A second line, `nightjar_typed ...`, times nightjar's own parse of the
//! same files in the same process, on one thread like the baseline:
//! `CsvSource` rows (UTF-8 checked) typed by `BatchBuilder` into Arrow
//! batches of `DEFAULT_BATCH_ROWS`, with the `[columns]` read from
//! `benches/jobs/retail_year/extract.toml`, and no output (the extract
//! task also writes its Parquet artifact and reads files side by side;
//! that is the data-plane benchmark's other parse figure). A column the
//! job does not declare is typed as a string.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

use csv::{ByteRecord, ReaderBuilder};
use nightjar::data::formats::csv::{CsvOptions, CsvSource};
use nightjar::data::formats::{Next, RowSource};
use nightjar::data::rows::{BatchBuilder, DEFAULT_BATCH_ROWS};
use nightjar::data::types::{ColumnSpec, ColumnType};

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

/// The `[columns]` of the data-plane benchmark's extract job, read from
/// the job file itself so the two cannot drift apart.
fn declared_columns() -> BTreeMap<String, ColumnSpec> {
    #[derive(serde::Deserialize)]
    struct Job {
        columns: BTreeMap<String, ColumnSpec>,
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/jobs/retail_year/extract.toml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let job: Job = toml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    job.columns
}

/// One pass of nightjar's parse and typing: (bytes, rows, rows that failed
/// to type).
fn read_typed(files: &[PathBuf], declared: &BTreeMap<String, ColumnSpec>) -> (u64, u64, u64) {
    let (mut bytes, mut rows, mut bad) = (0u64, 0u64, 0u64);
    for f in files {
        bytes += std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        let file = File::open(f).unwrap_or_else(|e| panic!("opening {}: {e}", f.display()));
        let mut src = CsvSource::new(Box::new(file), &CsvOptions::default(), false, &[]).expect("a CSV source");
        let columns: Vec<(String, ColumnSpec)> = src
            .columns()
            .iter()
            .map(|c| {
                let spec = declared
                    .get(c)
                    .cloned()
                    .unwrap_or_else(|| ColumnSpec::of(ColumnType::String));
                (c.clone(), spec)
            })
            .collect();
        let mut builder = BatchBuilder::new(&columns);
        loop {
            match src.next_row().expect("reading") {
                Next::Row(_, row) => {
                    rows += 1;
                    if builder.push(|i| row.get(i)).is_err() {
                        bad += 1;
                    }
                    if builder.len() >= DEFAULT_BATCH_ROWS {
                        std::hint::black_box(builder.finish());
                    }
                }
                Next::Bad(_) => bad += 1,
                Next::End => break,
            }
        }
        std::hint::black_box(builder.finish());
    }
    (bytes, rows, bad)
}

/// Median seconds of `reps` runs of `pass`, and its last result.
fn timed<T>(reps: usize, mut pass: impl FnMut() -> T) -> (f64, T) {
    let mut times = Vec::with_capacity(reps);
    let mut last = None;
    for _ in 0..reps {
        let t = Instant::now();
        last = Some(std::hint::black_box(pass()));
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], last.expect("at least one run"))
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
    let (secs, (bytes, rows, fields)) = timed(reps, || read_all(&files));
    println!(
        "csv_baseline files={} bytes={bytes} rows={rows} fields={fields} secs={secs:.4} mb_per_s={:.1}",
        files.len(),
        bytes as f64 / 1e6 / secs
    );
    let declared = declared_columns();
    let (typed_secs, (bytes, rows, bad)) = timed(reps, || read_typed(&files, &declared));
    println!(
        "nightjar_typed files={} bytes={bytes} rows={rows} bad_rows={bad} secs={typed_secs:.4} mb_per_s={:.1} vs_csv={:.2}x",
        files.len(),
        bytes as f64 / 1e6 / typed_secs,
        typed_secs / secs
    );
}
