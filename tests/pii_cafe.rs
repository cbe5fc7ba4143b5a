//! The café pipeline (`dags/cafe_branches.toml`) end to end: after a run,
//! no customer name and no card number is anywhere under `.nightjar/`
//! (artifacts, quarantine, logs, run history, key file, warehouse) nor in
//! the warehouse's tables; and a bad row quarantined by the extract, before
//! any redaction, does not hold them either.

use std::path::{Path, PathBuf};
use std::process::Command;

use arrow::util::display::{ArrayFormatter, FormatOptions};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A scratch project: the repository's DAGs, jobs and café sample.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("dags"), &dir.path().join("dags"));
    copy_dir(&repo().join("jobs"), &dir.path().join("jobs"));
    copy_dir(&repo().join("sql"), &dir.path().join("sql"));
    copy_dir(&repo().join("data/sample/cafe"), &dir.path().join("data/sample/cafe"));
    dir
}

fn nightjar(project: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .current_dir(project)
        .args(args)
        .output()
        .unwrap()
}

/// (customer names, card numbers, rows) of one day's files.
fn secrets(dir: &Path, date: &str) -> (Vec<String>, Vec<String>, usize) {
    let (mut names, mut cards, mut rows) = (Vec::new(), Vec::new(), 0);
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if !p.file_name().unwrap().to_string_lossy().starts_with(date) {
            continue;
        }
        let mut r = csv::ReaderBuilder::new().has_headers(false).from_path(&p).unwrap();
        for rec in r.records() {
            let rec = rec.unwrap();
            rows += 1;
            names.push(rec[2].to_string());
            if let Some((_, number)) = rec[6].split_once(',') {
                cards.push(number.to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    (names, cards, rows)
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

/// Every file under `.nightjar/` as text: raw bytes, and Parquet files
/// also decoded (their pages are compressed, so bytes alone prove nothing).
fn everything_stored(project: &Path) -> Vec<(PathBuf, String)> {
    let mut all = Vec::new();
    files(&project.join(".nightjar"), &mut all);
    assert!(!all.is_empty());
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
                            text.push_str(&fmt.value(i).to_string());
                            text.push('\n');
                        }
                    }
                }
            }
            (p, text)
        })
        .collect()
}

/// Every text value of every table of the warehouse.
fn warehouse_text(db: &Path) -> String {
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
                let v: rusqlite::types::Value = r.get(i).unwrap();
                text.push_str(&format!("{v:?}\n"));
            }
        }
    }
    text
}

fn assert_absent(haystacks: &[(PathBuf, String)], needles: &[String]) {
    for (p, text) in haystacks {
        for n in needles {
            assert!(!text.contains(n.as_str()), "`{n}` found in {}", p.display());
        }
    }
}

#[test]
fn no_customer_name_or_card_number_survives_the_pipeline() {
    let p = project();
    let date = "2021-02-23";
    let (names, cards, rows) = secrets(&p.path().join("data/sample/cafe"), date);
    assert!(names.len() > 10 && cards.len() > 10, "the sample has names and cards");
    let out = nightjar(p.path(), &["run", "cafe_branches", "--date", date]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = everything_stored(p.path());
    let needles: Vec<String> = names.iter().chain(&cards).cloned().collect();
    assert_absent(&stored, &needles);
    let db = p.path().join(".nightjar/warehouse.db");
    assert_absent(&[(db.clone(), warehouse_text(&db))], &needles);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_absent(&[(PathBuf::from("console"), printed)], &needles);

    // What did land: every order, card type kept, number masked to its
    // last four digits, a distinct order id each, no name column.
    let c = rusqlite::Connection::open(&db).unwrap();
    let count = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as usize;
    assert_eq!(count("select count(*) from cafe_orders"), rows);
    assert_eq!(count("select count(distinct order_id) from cafe_orders"), rows);
    assert_eq!(
        count("select count(*) from cafe_orders where card_type is not null"),
        cards.len()
    );
    assert_eq!(
        count("select count(*) from cafe_orders where card_number like '%****%'"),
        cards.len()
    );
    let cols: Vec<String> = c
        .prepare("select name from pragma_table_info('cafe_orders')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!cols.contains(&"customer_name".to_string()), "{cols:?}");
    let last4: Vec<String> = c
        .prepare("select substr(card_number, -4) from cafe_orders where card_number is not null order by timestamp")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(last4.iter().all(|l| cards.iter().any(|c| c.ends_with(l.as_str()))));

    // Same date again, forced: the same order ids (keyed, deterministic).
    let ids = |c: &rusqlite::Connection| -> Vec<String> {
        c.prepare("select order_id from cafe_orders order by order_id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    let before = ids(&c);
    drop(c);
    let out = nightjar(p.path(), &["run", "cafe_branches", "--date", date, "--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let c = rusqlite::Connection::open(&db).unwrap();
    assert_eq!(ids(&c), before);
}

#[test]
fn a_row_quarantined_before_redaction_does_not_hold_the_pii() {
    let p = project();
    let date = "2021-02-23";
    // A row whose card was written without quotes: one field too many,
    // so the extract rejects it (before the pii task) and the run fails
    // on it (max_bad_rows = 0).
    let bad = "2021-02-23 18:00:00,Leeds,Zelda Quarantine,\",Espresso,1.5\",CARD,1.5,visa16,4539578763621486\n";
    let f = p.path().join("data/sample/cafe/2021-02-23-leeds.csv");
    let mut text = std::fs::read_to_string(&f).unwrap();
    text.push_str(bad);
    std::fs::write(&f, text).unwrap();
    let out = nightjar(p.path(), &["run", "cafe_branches", "--date", date]);
    assert!(!out.status.success());
    let stored = everything_stored(p.path());
    let q = stored
        .iter()
        .find(|(p, _)| p.ends_with("extract/quarantine.ndjson"))
        .expect("the extract quarantined the row");
    assert!(q.1.contains("<redacted>"), "{}", q.1);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut all = stored.clone();
    all.push((PathBuf::from("console"), printed));
    assert_absent(&all, &["Zelda Quarantine".to_string(), "4539578763621486".to_string()]);
}

#[test]
fn validate_warns_when_a_pii_looking_column_is_loaded_unprotected() {
    let p = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(p.path().join("dags")).unwrap();
    let dag = |with_pii: bool| {
        format!(
            r#"name = "signups"
[[task]]
id = "extract"
kind = "extract.file"
path = "in.csv"
[extract.columns]
[[task]]
id = "x"
kind = "noop"
{}
[[task]]
id = "load"
kind = "load.sqlite"
table = "signups"
needs = ["{}"]
"#,
            if with_pii {
                "[[task]]\nid = \"pii\"\nkind = \"transform.pii\"\nneeds = [\"extract\"]\ncolumns = { customer_email = \"drop\" }\n"
            } else {
                ""
            },
            if with_pii { "pii" } else { "extract" }
        )
        .replace("[extract.columns]\n", "columns = { customer_email = \"string\", plan = \"string\" }\n")
    };
    std::fs::write(p.path().join("dags/signups.toml"), dag(false)).unwrap();
    let out = nightjar(p.path(), &["validate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a warning, not an error: {err}");
    assert!(
        err.contains("task `load` loads `customer_email` (email) with no transform.pii task upstream"),
        "{err}"
    );
    std::fs::write(p.path().join("dags/signups.toml"), dag(true)).unwrap();
    let out = nightjar(p.path(), &["validate"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("0 warning(s)"), "{text}");
}
