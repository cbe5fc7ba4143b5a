//! Backfills through the real binary: the whole Online Retail year into
//! the SQLite warehouse, failures injected on some dates, `--only-failed`
//! to finish, and the warehouse compared with a single full load.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rusqlite::Connection;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn by_day() -> PathBuf {
    repo().join("../shared/data/online-retail/by-day")
}

fn nightjar(project: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .arg("--project")
        .arg(project)
        .args(args)
        .current_dir(project)
        .env_remove("NIGHTJAR_ENV")
        .env_remove("NIGHTJAR_LOG")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A project with the retail jobs and a copy of dags/retail_nightly.toml
/// (retries off, so injected failures fail at once), reading `data`.
fn project(dag_edit: impl Fn(String) -> String) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir_all(p.join("dags")).unwrap();
    std::fs::create_dir_all(p.join("jobs/retail")).unwrap();
    for e in std::fs::read_dir(repo().join("jobs/retail")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), p.join("jobs/retail").join(e.file_name())).unwrap();
    }
    // The views task's SQL.
    std::fs::create_dir_all(p.join("sql/retail")).unwrap();
    for e in std::fs::read_dir(repo().join("sql/retail")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), p.join("sql/retail").join(e.file_name())).unwrap();
    }
    let dag = std::fs::read_to_string(repo().join("dags/retail_nightly.toml")).unwrap();
    let dag = dag.replace("retries = 2", "retries = 0");
    std::fs::write(p.join("dags/retail_nightly.toml"), dag_edit(dag)).unwrap();
    // One PII key for every project of this test, so that CustomerID
    // pseudonyms agree between the backfilled and the fully loaded warehouse.
    std::fs::create_dir_all(p.join(".nightjar")).unwrap();
    std::fs::write(p.join(".nightjar/pii.key"), format!("hex:{}\n", "5a".repeat(32))).unwrap();
    dir
}

/// Every row of a table, as text, sorted.
fn rows(db: &Path, table: &str) -> Vec<String> {
    let c = Connection::open(db).unwrap();
    let mut st = c.prepare(&format!("SELECT * FROM {table}")).unwrap();
    let n = st.column_count();
    let mut out: Vec<String> = st
        .query_map([], |r| {
            let cells: Vec<String> = (0..n)
                .map(|i| {
                    let v: rusqlite::types::Value = r.get(i).unwrap();
                    format!("{v:?}")
                })
                .collect();
            Ok(cells.join("|"))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    out.sort();
    out
}

const BROKEN: [&str; 3] = ["2010-12-05", "2011-03-15", "2011-11-30"];

#[test]
fn retail_year_backfill_then_only_failed_equals_a_single_full_load() {
    // The data, copied so that some days can be broken and mended.
    let data = tempfile::tempdir().unwrap();
    let input = data.path().join("by-day");
    std::fs::create_dir_all(&input).unwrap();
    let mut files = 0;
    for e in std::fs::read_dir(by_day()).expect("the Online Retail data in ../shared/data") {
        let e = e.unwrap();
        std::fs::copy(e.path(), input.join(e.file_name())).unwrap();
        files += 1;
    }
    assert_eq!(files, 305);
    for d in BROKEN {
        let f = input.join(format!("{d}.csv"));
        let good = std::fs::read_to_string(&f).unwrap();
        // One row whose Quantity is not a number: the extract fails (max_bad_rows = 0).
        let mut lines: Vec<String> = good.lines().map(str::to_string).collect();
        lines.insert(2, format!("999999,X,BROKEN,lots,{d} 10:00:00,1.0,1.0,Nowhere"));
        std::fs::write(&f, lines.join("\n") + "\n").unwrap();
        std::fs::write(f.with_extension("good"), good).unwrap();
    }
    let var = format!("input={}", input.display());

    let p = project(|d| d);
    let args = [
        "backfill",
        "retail_nightly",
        "--from",
        "2010-12-01",
        "--to",
        "2011-12-09",
        "--var",
        &var,
        "--parallel",
        "2",
    ];
    let first = nightjar(p.path(), &args);
    let out = text(&first);
    assert_eq!(first.status.code(), Some(1), "{out}");
    assert!(out.contains("374 run(s): 371 succeeded, 3 failed"), "{out}");

    // The plan of --only-failed: exactly the broken dates, resumed.
    let mut only_failed: Vec<&str> = args.to_vec();
    only_failed.push("--only-failed");
    let mut dry = only_failed.clone();
    dry.push("--dry-run");
    let plan = text(&nightjar(p.path(), &dry));
    for d in BROKEN {
        assert!(
            plan.lines()
                .any(|l| l.starts_with(d) && l.contains("failed") && l.contains("resume")),
            "{plan}"
        );
    }
    assert!(
        plan.contains("374 date(s): 0 to run, 3 to resume, 0 to re-run, 371 skipped"),
        "{plan}"
    );

    // Mend the files; --only-failed finishes the year.
    for d in BROKEN {
        let f = input.join(format!("{d}.csv"));
        std::fs::rename(f.with_extension("good"), &f).unwrap();
    }
    let second = nightjar(p.path(), &only_failed);
    let out2 = text(&second);
    assert!(second.status.success(), "{out2}");
    assert!(out2.contains("3 run(s): 3 succeeded, 0 failed"), "{out2}");
    // Nothing left: the same command again is a no-op.
    let again = text(&nightjar(p.path(), &dry));
    assert!(again.contains("0 to resume"), "{again}");

    // A single full load of every file into another warehouse.
    let full = project(|d| {
        d.replace("name = \"retail_nightly\"", "name = \"retail_full\"")
            .replace("mode = \"replace_partition\"", "mode = \"replace\"")
            .replace("partition = { column = \"order_date\", value = \"{{ ds }}\" }\n", "")
            + "\n"
    });
    let dag = full.path().join("dags/retail_nightly.toml");
    let dag_text = std::fs::read_to_string(&dag).unwrap();
    std::fs::write(&dag, dag_text).unwrap();
    std::fs::write(
        full.path().join("jobs/retail/extract.toml"),
        std::fs::read_to_string(full.path().join("jobs/retail/extract.toml"))
            .unwrap()
            .replace("{{ ds }}.csv", "*.csv"),
    )
    .unwrap();
    let one = nightjar(
        full.path(),
        &["run", "retail_full", "--date", "2011-12-09", "--var", &var],
    );
    assert!(one.status.success(), "{}", text(&one));

    let wb = p.path().join(".nightjar/warehouse.db");
    let wf = full.path().join(".nightjar/warehouse.db");
    for table in ["orders", "cancelled_orders"] {
        let (b, f) = (rows(&wb, table), rows(&wf, table));
        assert!(b.len() > 1000, "{table}: {} rows", b.len());
        assert_eq!(b.len(), f.len(), "{table}: backfill vs full load row counts");
        assert!(b == f, "{table}: the backfilled warehouse differs from the full load");
    }
}

mod planning {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use chrono::NaiveDate;
    use nightjar::engine::Engine;
    use nightjar::schedule::backfill::{self, Action, BackfillOptions, NoProgress};
    use nightjar::spec::{Dag, Project, dag};
    use nightjar::steps::Registry;
    use nightjar::store::schedule::Decision;
    use nightjar::store::{RunState, Store, Trigger};

    fn setup() -> (tempfile::TempDir, Dag, Arc<Engine>) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("dags")).unwrap();
        let path = dir.path().join("dags/b.toml");
        std::fs::write(
            &path,
            "name = \"b\"\nschedule = \"0 2 * * *\"\ntimezone = \"Europe/London\"\n\n[[task]]\nid = \"t\"\nkind = \"noop\"\n",
        )
        .unwrap();
        let project = Project::load(dir.path()).unwrap();
        let (d, _) = dag::load(&path, &project, &Registry::builtin()).unwrap();
        let store = Arc::new(Store::open(&dir.path().join(".nightjar/state.db")).unwrap());
        (dir, d, Arc::new(Engine::new(project, store)))
    }

    fn opts(from: u32, to: u32) -> BackfillOptions {
        BackfillOptions {
            from: NaiveDate::from_ymd_opt(2026, 3, from).unwrap(),
            to: NaiveDate::from_ymd_opt(2026, 3, to).unwrap(),
            parallel: 2,
            only_failed: false,
            rerun_succeeded: false,
            reverse: false,
            env: None,
            vars: BTreeMap::new(),
        }
    }

    #[tokio::test]
    async fn plan_diffs_against_history_and_leaves_scheduler_dates_alone() {
        let (_dir, d, engine) = setup();
        let store = engine.store.clone();
        // The scheduler decided the 28th (its run is about to start).
        store
            .record_decision(
                &Decision {
                    dag: "b".into(),
                    logical_date: "2026-03-28".into(),
                    fire_at: "2026-03-29T01:00:00.000Z".into(),
                    interval_start: "2026-03-28T02:00:00+00:00".into(),
                    interval_end: "2026-03-29T02:00:00+01:00".into(),
                    reason: "schedule".into(),
                    state: "queued".into(),
                    run_id: None,
                    run_state: None,
                },
                "someone",
            )
            .unwrap();
        let o = opts(27, 30);
        let plan = backfill::plan(&d, &store, &o).unwrap();
        let actions: Vec<(&str, Action)> = plan.iter().map(|p| (p.slot.key.as_str(), p.action)).collect();
        assert_eq!(
            actions,
            [
                ("2026-03-27", Action::Run),
                ("2026-03-28", Action::Skip),
                ("2026-03-29", Action::Run),
                ("2026-03-30", Action::Run)
            ]
        );
        assert!(plan[1].why.contains("scheduler"));
        // The DST day's interval is 23 hours, as the scheduler sees it.
        assert_eq!(plan[2].slot.interval.start.to_rfc3339(), "2026-03-29T02:00:00+01:00");
        store
            .decision_done("b", "2026-03-28", "b@2026-03-28", "success")
            .unwrap();

        let runnable: Vec<_> = plan.into_iter().filter(|p| p.action != Action::Skip).collect();
        let out = backfill::run(engine.clone(), Arc::new(d.clone()), &o, runnable, Arc::new(NoProgress))
            .await
            .unwrap();
        assert_eq!(out.len(), 3);
        assert!(out.iter().all(|x| x.state == Some(RunState::Success)));
        let r = store.latest_run("b", "2026-03-29").unwrap().unwrap();
        assert_eq!(r.trigger, Trigger::Backfill);

        // Reverse order; everything done now but the 28th, whose decision
        // was closed without a run (so the backfill runs it).
        let again = backfill::plan(
            &d,
            &store,
            &BackfillOptions {
                reverse: true,
                ..o.clone()
            },
        )
        .unwrap();
        assert_eq!(again[0].slot.key, "2026-03-30");
        let left: Vec<&str> = again
            .iter()
            .filter(|p| p.action != Action::Skip)
            .map(|p| p.slot.key.as_str())
            .collect();
        assert_eq!(left, ["2026-03-28"]);
    }

    #[tokio::test]
    async fn rerun_succeeded_is_resumable() {
        let (_dir, d, engine) = setup();
        let store = engine.store.clone();
        let o = opts(1, 4);
        let plan = backfill::plan(&d, &store, &o).unwrap();
        backfill::run(engine.clone(), Arc::new(d.clone()), &o, plan, Arc::new(NoProgress))
            .await
            .unwrap();
        let rerun = BackfillOptions {
            rerun_succeeded: true,
            ..o.clone()
        };
        let plan = backfill::plan(&d, &store, &rerun).unwrap();
        assert!(plan.iter().all(|p| p.action == Action::Rerun));
        // The first invocation re-runs two dates, then is "interrupted".
        let first_two: Vec<_> = plan.into_iter().take(2).collect();
        backfill::run(
            engine.clone(),
            Arc::new(d.clone()),
            &rerun,
            first_two,
            Arc::new(NoProgress),
        )
        .await
        .unwrap();
        // The same command continues with the other two.
        let plan = backfill::plan(&d, &store, &rerun).unwrap();
        let actions: Vec<Action> = plan.iter().map(|p| p.action).collect();
        assert_eq!(actions, [Action::Skip, Action::Skip, Action::Rerun, Action::Rerun]);
        assert!(plan[0].why.contains("re-run by this backfill"));
        backfill::run(engine.clone(), Arc::new(d.clone()), &rerun, plan, Arc::new(NoProgress))
            .await
            .unwrap();
        for day in 1..=4 {
            let r = store.latest_run("b", &format!("2026-03-0{day}")).unwrap().unwrap();
            assert_eq!((r.seq, r.state), (2, RunState::Success), "{day}");
        }
    }
}
