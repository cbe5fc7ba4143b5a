//! Scheduler and backfill overhead (not a timed test; prints a table).
//!
//! 1. The daemon with 100 DAGs firing every minute (one noop task each):
//!    CPU time and memory of the process over `NIGHTJAR_BENCH_SECS`
//!    (default 65 s, so every DAG fires at least once), on the real clock.
//! 2. A backfill of 1,000 dates of a 5-task noop DAG (`--parallel 4`): the
//!    whole time is overhead (planning, run records, task state writes);
//!    target under 5 s in total.
//!
//! `cargo bench --bench schedule` (release), or `cargo test --bench
//! schedule` for a debug build (slower; say which in docs/benchmarks.md).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use nightjar::engine::Engine;
use nightjar::schedule::backfill::{self, BackfillOptions, NoProgress};
use nightjar::schedule::{Daemon, DaemonOptions, SystemClock};
use nightjar::spec::{Project, dag};
use nightjar::steps::Registry;
use nightjar::store::{RunState, Store};
use tokio_util::sync::CancellationToken;

const BACKFILL_TARGET_S: f64 = 5.0;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// (VmRSS, VmHWM) in MiB.
fn memory_mib() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (get("VmRSS:"), get("VmHWM:"))
}

fn daemon_bench(rt: &tokio::runtime::Runtime, secs: u64) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dags")).unwrap();
    for i in 0..100 {
        std::fs::write(
            dir.path().join(format!("dags/d{i:03}.toml")),
            format!("name = \"d{i:03}\"\nschedule = \"* * * * *\"\n\n[[task]]\nid = \"t\"\nkind = \"noop\"\n"),
        )
        .unwrap();
    }
    let project = Project::load(dir.path()).unwrap();
    let store = Arc::new(Store::open(&dir.path().join(".nightjar/state.db")).unwrap());
    let engine = Engine::new(project, store.clone());
    let daemon = Daemon::new(
        engine,
        Arc::new(SystemClock),
        DaemonOptions {
            dags_dir: dir.path().join("dags"),
            env: None,
            vars: BTreeMap::new(),
            poll: Duration::from_secs(2),
        },
    )
    .with_log(Arc::new(|_| {}));
    let (rss0, _) = memory_mib();
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    rt.block_on(async {
        let stop = CancellationToken::new();
        let h = tokio::spawn(daemon.run(stop.clone()));
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.cancel();
        h.await.unwrap().unwrap();
    });
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let (rss, hwm) = memory_mib();
    let runs = store.runs(None, 1_000_000).unwrap();
    let ok = runs.iter().filter(|r| r.state == RunState::Success).count();
    vec![
        vec!["daemon: DAGs (every minute)".into(), "100".into()],
        vec!["daemon: wall time".into(), format!("{wall:.1} s")],
        vec!["daemon: runs done".into(), format!("{ok} of {}", runs.len())],
        vec![
            "daemon: CPU time (whole process)".into(),
            format!("{cpu:.2} s = {:.2}% of one core", 100.0 * cpu / wall),
        ],
        vec![
            "daemon: CPU per run".into(),
            format!("{:.1} ms", 1000.0 * cpu / ok.max(1) as f64),
        ],
        vec![
            "daemon: RSS before / after / peak".into(),
            format!("{rss0:.1} / {rss:.1} / {hwm:.1} MiB"),
        ],
    ]
}

fn backfill_bench(rt: &tokio::runtime::Runtime, dates: i64) -> Vec<Vec<String>> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dags")).unwrap();
    let mut text = String::from("name = \"bf\"\nschedule = \"0 2 * * *\"\n");
    for i in 0..5 {
        text += &format!("\n[[task]]\nid = \"t{i}\"\nkind = \"noop\"\n");
        if i > 0 {
            text += &format!("needs = [\"t{}\"]\n", i - 1);
        }
    }
    let path = dir.path().join("dags/bf.toml");
    std::fs::write(&path, text).unwrap();
    let project = Project::load(dir.path()).unwrap();
    let (d, _) = dag::load(&path, &project, &Registry::builtin()).unwrap();
    let store = Arc::new(Store::open(&dir.path().join(".nightjar/state.db")).unwrap());
    let engine = Arc::new(Engine::new(project, store.clone()));
    let from = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    let opts = BackfillOptions {
        from,
        to: from + chrono::Duration::days(dates - 1),
        parallel: 4,
        only_failed: false,
        rerun_succeeded: false,
        reverse: false,
        env: None,
        vars: BTreeMap::new(),
    };
    let t0 = Instant::now();
    let planned = backfill::plan(&d, &store, &opts).unwrap();
    let plan_s = t0.elapsed().as_secs_f64();
    let outcomes = rt
        .block_on(backfill::run(
            engine,
            Arc::new(d.clone()),
            &opts,
            planned,
            Arc::new(NoProgress),
        ))
        .unwrap();
    let total = t0.elapsed().as_secs_f64();
    let ok = outcomes.iter().filter(|o| o.state == Some(RunState::Success)).count();
    // Planning again over a full history: what `--dry-run` and a resumed
    // backfill cost.
    let t1 = Instant::now();
    let again = backfill::plan(&d, &store, &opts).unwrap();
    let replan = t1.elapsed().as_secs_f64();
    assert!(again.iter().all(|p| p.action == backfill::Action::Skip));
    // One-line figure for benches/all.sh.
    println!(
        "summary: backfill {dates} dates x 5 noop tasks, total overhead (s) | {total:.2} | - | {:.2} ms per date | < {BACKFILL_TARGET_S} s | {}",
        1000.0 * total / dates as f64,
        if total < BACKFILL_TARGET_S { "yes" } else { "NO" }
    );
    vec![
        vec![
            "backfill: dates x tasks".into(),
            format!("{dates} x 5 noop, --parallel 4"),
        ],
        vec!["backfill: runs succeeded".into(), ok.to_string()],
        vec![
            "backfill: plan (empty history)".into(),
            format!("{:.0} ms", plan_s * 1000.0),
        ],
        vec![
            "backfill: total overhead".into(),
            format!(
                "{total:.2} s ({:.2} ms per date; target < {BACKFILL_TARGET_S} s: {})",
                1000.0 * total / dates as f64,
                if total < BACKFILL_TARGET_S { "met" } else { "NOT met" }
            ),
        ],
        vec![
            "backfill: re-plan (all done)".into(),
            format!("{:.0} ms", replan * 1000.0),
        ],
    ]
}

fn main() {
    let secs: u64 = std::env::var("NIGHTJAR_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(65);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rows = backfill_bench(&rt, 1000);
    rows.extend(daemon_bench(&rt, secs));
    let w = rows.iter().map(|r| r[0].len()).max().unwrap_or(0);
    println!("{:<w$}  RESULT", "MEASURE");
    for r in rows {
        println!("{:<w$}  {}", r[0], r[1]);
    }
}
