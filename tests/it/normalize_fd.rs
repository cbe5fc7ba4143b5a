//! Functional dependency discovery and 3NF synthesis on known data.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use nightjar::normalize::fd::proposal::propose;
use nightjar::normalize::fd::synthesis::synthesize;
use nightjar::normalize::fd::table::Encoded;
use nightjar::normalize::fd::tane::{Options, discover};
use nightjar::normalize::fd::{Fd, members};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// FDs as text: "a,b->c".
fn as_text(t: &Encoded, fds: &[Fd]) -> BTreeSet<String> {
    fds.iter()
        .map(|f| {
            let l: Vec<&str> = members(f.lhs).map(|c| t.names[c].as_str()).collect();
            format!("{}->{}", l.join(","), t.names[f.rhs])
        })
        .collect()
}

#[test]
fn iris_has_exactly_its_four_minimal_fds() {
    let t = Encoded::from_csv(&fixture("iris.csv")).unwrap();
    assert_eq!((t.rows, t.width()), (150, 5));
    let fds = discover(&t, Options::default());
    let expected: BTreeSet<String> = [
        "sepal_width,petal_length,petal_width->class",
        "sepal_length,petal_length,petal_width->class",
        "sepal_length,sepal_width,petal_width->class",
        "sepal_length,sepal_width,petal_length->class",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(as_text(&t, &fds), expected);
    assert!(fds.iter().all(|f| f.lhs != 0 && f.is_exact()), "no empty left side");
}

/// Runs desbordante's default FD algorithm (HyFD) on a CSV.
fn desbordante(csv: &Path) -> BTreeSet<String> {
    let script = r#"
import csv, sys, desbordante
names = next(csv.reader(open(sys.argv[1])))
a = desbordante.fd.algorithms.Default()
a.load_data(table=(sys.argv[1], ',', True))
a.execute()
for f in a.get_fds():
    print(','.join(names[i] for i in sorted(f.lhs_indices)) + '->' + names[f.rhs_index])
"#;
    let out = Command::new(std::env::var("PYTHON").unwrap_or_else(|_| "python3".into()))
        .args(["-c", script, &csv.to_string_lossy()])
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "desbordante failed (install it with `python3 -m pip install desbordante`; scripts/test does): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

#[test]
fn same_fds_as_the_reference_implementation() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(11);
    let mut files = vec![fixture("iris.csv")];
    for i in 0..4 {
        let p = dir.path().join(format!("t{i}.csv"));
        let mut s = String::from("a,b,c,d,e,f\n");
        for _ in 0..rng.usize(5..200) {
            let a = rng.u32(0..30);
            // b depends on a; c is noise; d on (b, c) mostly; e and f small.
            let row = [
                a.to_string(),
                (a % 7).to_string(),
                rng.u32(0..4).to_string(),
                rng.u32(0..3).to_string(),
                if rng.bool() {
                    String::new()
                } else {
                    rng.u32(0..2).to_string()
                },
                rng.u32(0..5).to_string(),
            ];
            s.push_str(&row.join(","));
            s.push('\n');
        }
        std::fs::write(&p, s).unwrap();
        files.push(p);
    }
    for f in files {
        let t = Encoded::from_csv(&f).unwrap();
        let ours = as_text(&t, &discover(&t, Options::default()));
        assert_eq!(ours, desbordante(&f), "{}", f.display());
    }
}

type Row = BTreeMap<usize, u32>;

/// Natural join of two sets of rows (column -> value).
fn join(a: &[Row], b: &[Row]) -> Vec<Row> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            if y.iter().all(|(c, v)| x.get(c).is_none_or(|w| w == v)) {
                let mut r = x.clone();
                r.extend(y.iter().map(|(c, v)| (*c, *v)));
                out.push(r);
            }
        }
    }
    let set: BTreeSet<Row> = out.into_iter().collect();
    set.into_iter().collect()
}

fn check_synthesis(t: &Encoded, fds: &[Fd]) {
    let (cover, rels, _) = synthesize(t.width(), fds);
    // Dependency preserving: each FD of the cover lies in one relation.
    for (l, r) in &cover {
        let need = l | (1 << r);
        assert!(
            rels.iter().any(|x| x.columns & need == need),
            "FD {l:b}->{r} is not preserved"
        );
    }
    // Lossless: projecting on each relation and joining back gives the rows.
    let rows: Vec<Row> = (0..t.rows)
        .map(|r| (0..t.width()).map(|c| (c, t.codes[c][r])).collect())
        .collect();
    let mut joined: Option<Vec<Row>> = None;
    for rel in &rels {
        let proj: BTreeSet<Row> = rows
            .iter()
            .map(|r| {
                r.iter()
                    .filter(|(c, _)| rel.columns & (1 << **c) != 0)
                    .map(|(c, v)| (*c, *v))
                    .collect()
            })
            .collect();
        let proj: Vec<Row> = proj.into_iter().collect();
        joined = Some(match joined {
            None => proj,
            Some(j) => join(&j, &proj),
        });
    }
    let distinct: HashSet<Row> = rows.into_iter().collect();
    let back: HashSet<Row> = joined.unwrap().into_iter().collect();
    assert_eq!(back, distinct, "the join of the relations is not the table");
}

#[test]
fn synthesis_is_lossless_and_dependency_preserving() {
    // An order export: order -> customer -> country, product -> description.
    let mut rng = fastrand::Rng::with_seed(3);
    let country = |c: u32| c % 3;
    let desc = |p: u32| p * 10;
    let mut rows = Vec::new();
    for order in 0..40u32 {
        let customer = rng.u32(0..12);
        for _ in 0..rng.usize(1..4) {
            let p = rng.u32(0..15);
            rows.push(vec![order, customer, country(customer), p, desc(p), rng.u32(1..5)]);
        }
    }
    let t = Encoded::from_rows(
        &["order", "customer", "country", "product", "description", "qty"],
        &rows,
    );
    let fds = discover(&t, Options::default());
    check_synthesis(&t, &fds);
    let p = propose(&t, &fds);
    let keys: Vec<String> = p.entities.iter().map(|e| e.key.join(",")).collect();
    assert!(
        keys.contains(&"order".to_string()) && keys.contains(&"customer".to_string()),
        "{keys:?}"
    );
    // And on iris (which has a duplicate row).
    let iris = Encoded::from_csv(&fixture("iris.csv")).unwrap();
    check_synthesis(&iris, &discover(&iris, Options::default()));
}

#[test]
fn approximate_fds_say_how_many_rows_break_them() {
    // a -> b except for one row in 20.
    let rows: Vec<Vec<u32>> = (0..20u32)
        .map(|i| vec![i % 4, if i == 7 { 9 } else { i % 4 }, i])
        .collect();
    let t = Encoded::from_rows(&["a", "b", "c"], &rows);
    assert!(!as_text(&t, &discover(&t, Options::default())).contains("a->b"));
    let fds = discover(
        &t,
        Options {
            max_error: 0.05,
            max_lhs: None,
        },
    );
    let ab = fds
        .iter()
        .find(|f| f.lhs == 1 && f.rhs == 1)
        .expect("a -> b approximately");
    assert_eq!(ab.violating_rows, 1);
    let p = propose(&t, &fds);
    let job = p.job();
    assert!(job.contains("# approximate: a -> b (1 rows break it)"), "{job}");
    assert!(p.text().contains("approximate: 1 rows break it"));
}

#[test]
fn the_infer_command_prints_fds_entities_and_a_job_that_validates() {
    let out = Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .args(["normalize", "infer", &fixture("iris.csv").to_string_lossy(), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["fds"].as_array().unwrap().len(), 4);
    assert_eq!(v["rows"], 150);
    // The proposed job is a valid transform.normalize job.
    let t = Encoded::from_csv(&fixture("iris.csv")).unwrap();
    let job = propose(&t, &discover(&t, Options::default())).job();
    let mut table: toml::Table = toml::from_str(&job).unwrap();
    table.remove("kind");
    let kind = nightjar::steps::Registry::builtin();
    let problems = kind
        .get("transform.normalize")
        .unwrap()
        .check(toml::Value::Table(table))
        .unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let bad = Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .args(["normalize", "infer", "no/such.csv"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("no such file"));
}
