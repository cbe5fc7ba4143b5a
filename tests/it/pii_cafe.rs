//! The café pipeline (`dags/cafe_branches.toml`) end to end: after a run,
//! no customer name and no card number is anywhere under `.nightjar/`
//! (artifacts, quarantine, logs, run history, key file, warehouse) nor in
//! the warehouse's tables; and a bad row quarantined by the extract, before
//! any redaction, does not hold them either.

use crate::support;

use std::path::{Path, PathBuf};

use crate::support::project::{Project, database_text, everything_stored};

/// A scratch project: the repository's DAGs, jobs, SQL and café sample.
fn project() -> Project {
    Project::new().with("data/sample/cafe")
}

fn nightjar(project: &Project, args: &[&str]) -> std::process::Output {
    project.nightjar(args)
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

fn assert_absent(haystacks: &[(PathBuf, String)], needles: &[String]) {
    support::project::assert_absent(haystacks, needles, false);
}

#[test]
fn no_customer_name_or_card_number_survives_the_pipeline() {
    let p = project();
    let date = "2021-02-23";
    let (names, cards, rows) = secrets(&p.path().join("data/sample/cafe"), date);
    assert!(names.len() > 10 && cards.len() > 10, "the sample has names and cards");
    let out = nightjar(&p, &["run", "cafe_branches", "--date", date]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = everything_stored(&p.path().join(".nightjar"));
    let needles: Vec<String> = names.iter().chain(&cards).cloned().collect();
    assert_absent(&stored, &needles);
    let db = p.path().join(".nightjar/warehouse.db");
    assert_absent(&[(db.clone(), database_text(&db))], &needles);
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
    let out = nightjar(&p, &["run", "cafe_branches", "--date", date, "--force"]);
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
    let out = nightjar(&p, &["run", "cafe_branches", "--date", date]);
    assert!(!out.status.success());
    let stored = everything_stored(&p.path().join(".nightjar"));
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
    let p = Project {
        dir: tempfile::tempdir().unwrap(),
    };
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
    let out = nightjar(&p, &["validate"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "a warning, not an error: {err}");
    assert!(
        err.contains("task `load` loads `customer_email` (email) with no transform.pii task upstream"),
        "{err}"
    );
    std::fs::write(p.path().join("dags/signups.toml"), dag(true)).unwrap();
    let out = nightjar(&p, &["validate"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("0 warning(s)"), "{text}");
}
