//! Core overhead benchmark (not a timed test): 1,000 `noop` tasks.
//!
//! Targets (see docs/benchmarks.md, "Core overhead"):
//! - parse + validate a 1,000-task DAG file in under 50 ms;
//! - validate + run in under 1 ms of overhead per task, state writes
//!   included (a real on-disk `.nightjar/state.db`).
//!
//! Run with `cargo bench --bench core`. `NIGHTJAR_BENCH_REPS=N` changes the
//! number of repetitions (default 7), `NIGHTJAR_BENCH_TASKS=N` the DAG size
//! (default 1000; `mixed` is built in layers of 100, the last one possibly short).
//!
//! Plain `harness = false` main: no criterion, to keep the dependencies lean.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Days, NaiveDate};
use nightjar::engine::{Engine, RunRequest};
use nightjar::spec::{Dag, Project, dag};
use nightjar::steps::Registry;
use nightjar::store::{NewRun, RunState, Store, TaskState, Trigger};

const PARSE_TARGET_MS: f64 = 50.0;
const PER_TASK_TARGET_US: f64 = 1000.0;

#[derive(Clone, Copy)]
enum Shape {
    /// One root fanning out to all the others.
    Wide,
    /// A chain: each task needs the one before.
    Deep,
    /// Layers of 100, each task needing 2 or 3 tasks of the layer above.
    Mixed,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Wide => "wide",
            Shape::Deep => "deep",
            Shape::Mixed => "mixed",
        }
    }
}

fn id(i: usize) -> String {
    format!("t{i:04}")
}

/// The DAG file text of `n` noop tasks in the given shape.
fn dag_text(shape: Shape, n: usize) -> String {
    let mut s = String::new();
    writeln!(s, "name = \"bench_{}\"", shape.name()).unwrap();
    writeln!(s, "description = \"{n} noop tasks, {} shape\"\n", shape.name()).unwrap();
    const LAYER: usize = 100;
    for i in 0..n {
        let needs: Vec<usize> = match shape {
            Shape::Wide => {
                if i == 0 {
                    vec![]
                } else {
                    vec![0]
                }
            }
            Shape::Deep => {
                if i == 0 {
                    vec![]
                } else {
                    vec![i - 1]
                }
            }
            Shape::Mixed => {
                let (layer, pos) = (i / LAYER, i % LAYER);
                if layer == 0 {
                    vec![]
                } else {
                    let above = (layer - 1) * LAYER;
                    let mut v = vec![above + pos, above + (pos + 37) % LAYER];
                    if pos % 2 == 0 {
                        v.push(above + (pos + 71) % LAYER);
                    }
                    v
                }
            }
        };
        writeln!(s, "[[task]]\nid = \"{}\"\nkind = \"noop\"", id(i)).unwrap();
        if !needs.is_empty() {
            let list: Vec<String> = needs.iter().map(|&j| format!("\"{}\"", id(j))).collect();
            writeln!(s, "needs = [{}]", list.join(", ")).unwrap();
        }
        s.push('\n');
    }
    s
}

/// CPU time (user + system) of this process so far, all threads.
fn cpu_time() -> Duration {
    let (user, sys) = cpu_times();
    user + sys
}

/// (user, system) CPU time of this process so far, all threads.
fn cpu_times() -> (Duration, Duration) {
    // SAFETY: getrusage only writes the struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// (median, min) of some durations.
fn stats(xs: &[Duration]) -> (Duration, Duration) {
    let mut v = xs.to_vec();
    v.sort();
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    };
    (median, v[0])
}

/// Project load + registry + DAG load, as `nightjar validate` does.
fn parse_validate(root: &Path, file: &Path) -> (Dag, Duration) {
    let t = Instant::now();
    let project = Project::load(root).unwrap_or_else(|d| panic!("project: {d}"));
    let registry = Registry::builtin();
    let (dag, warnings) = dag::load(file, &project, &registry).unwrap_or_else(|d| panic!("{}: {d}", file.display()));
    let took = t.elapsed();
    assert!(warnings.is_empty(), "unexpected warnings: {warnings:?}");
    (dag, took)
}

struct Row {
    variant: &'static str,
    tasks: usize,
    parse: (Duration, Duration),
    run: (Duration, Duration),
    /// CPU time of a run (median), all threads.
    run_cpu: Duration,
    /// The system (kernel) part of it (median).
    run_sys: Duration,
    run_mem: Duration,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // special but should not spend minutes here.
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        eprintln!("core bench: run it with `cargo bench --bench core`");
        return;
    }
    let reps = env_usize("NIGHTJAR_BENCH_REPS", 7).max(1);
    let n = env_usize("NIGHTJAR_BENCH_TASKS", 1000).max(2);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");

    let dir = tempfile::tempdir().expect("temp dir");
    let root: PathBuf = dir.path().to_path_buf();
    std::fs::create_dir_all(root.join("dags")).unwrap();

    let project = Project::load(&root).unwrap_or_else(|d| panic!("project: {d}"));
    let t = Instant::now();
    let store = Arc::new(Store::open(&project.state_dir().join("state.db")).expect("state.db"));
    let store_open = t.elapsed();
    let parallelism = Engine::new(project.clone(), store.clone()).parallelism;

    println!(
        "nightjar core overhead: {n} noop tasks, {reps} repetitions, parallelism {parallelism}, state at {}",
        project.state_dir().join("state.db").display()
    );

    let base = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap();
    let mut rows = Vec::new();
    for shape in [Shape::Wide, Shape::Deep, Shape::Mixed] {
        let file = root.join("dags").join(format!("{}.toml", shape.name()));
        let text = dag_text(shape, n);
        std::fs::write(&file, &text).unwrap();

        // Parse + validate (one warm-up, then `reps`).
        let (dag, _) = parse_validate(&root, &file);
        let tasks = dag.tasks.len();
        let parse: Vec<Duration> = (0..reps).map(|_| parse_validate(&root, &file).1).collect();

        // Full runs on the on-disk store, one fresh logical date each, after
        // one warm-up run (date 0).
        let engine = Engine::new(project.clone(), store.clone());
        let mut runs = Vec::new();
        let mut cpus = Vec::new();
        let mut syss = Vec::new();
        for rep in 0..=reps {
            let date = base.checked_add_days(Days::new(rep as u64)).unwrap();
            let req = RunRequest::new(date.and_hms_opt(0, 0, 0).unwrap());
            let (t, (u0, s0)) = (Instant::now(), cpu_times());
            let report = rt.block_on(engine.run(&dag, req)).expect("run");
            let (u1, s1) = cpu_times();
            let (took, cpu, sys) = (t.elapsed(), (u1 + s1) - (u0 + s0), s1 - s0);
            assert!(!report.already_succeeded, "rep {rep} was a no-op");
            assert_eq!(report.state, RunState::Success, "{}: {:?}", shape.name(), report.state);
            assert_eq!(report.tasks.len(), tasks);
            assert!(report.tasks.iter().all(|t| t.state == TaskState::Success));
            if rep > 0 {
                runs.push(took);
                cpus.push(cpu);
                syss.push(sys);
            }
        }

        // The same run against an in-memory store: the difference is the
        // cost of writing state to disk. Dates of their own, so that these
        // runs create fresh task log files too (as the on-disk runs did).
        let mem_engine = Engine::new(project.clone(), Arc::new(Store::in_memory().unwrap()));
        let mut mem_runs = Vec::new();
        for rep in 0..=reps {
            let date = base.checked_add_days(Days::new(10_000 + rep as u64)).unwrap();
            let req = RunRequest::new(date.and_hms_opt(0, 0, 0).unwrap());
            let t = Instant::now();
            let report = rt.block_on(mem_engine.run(&dag, req)).expect("run");
            assert_eq!(report.state, RunState::Success);
            if rep > 0 {
                mem_runs.push(t.elapsed());
            }
        }

        rows.push(Row {
            variant: shape.name(),
            tasks,
            parse: stats(&parse),
            run: stats(&runs),
            run_cpu: stats(&cpus).0,
            run_sys: stats(&syss).0,
            run_mem: stats(&mem_runs).0,
        });
    }

    // Where the time goes: the two state transactions of a task (started,
    // ended) alone, and a task log file being created, per task.
    let store_us = {
        let run = store
            .create_run(&NewRun {
                dag: "bench_store_only",
                logical_date: "2000-01-01",
                trigger: Trigger::Manual,
                env: "local",
                interval_start: "2000-01-01T00:00:00+00:00",
                interval_end: "2000-01-02T00:00:00+00:00",
                params: serde_json::json!({}),
                after_seq: 0,
            })
            .unwrap();
        store.claim_run(&run.run_id).unwrap();
        let t = Instant::now();
        for i in 0..n {
            let task = id(i);
            store.task_started(&run.run_id, &task, 1).unwrap();
            store
                .task_attempt_ended(
                    &run.run_id,
                    &task,
                    1,
                    TaskState::Success,
                    None,
                    Some((&Default::default(), &[])),
                )
                .unwrap();
        }
        store.finish_run(&run.run_id, RunState::Success).unwrap();
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    };
    let log_us = {
        let logs = root.join(".nightjar/logs/bench_logs_only/run");
        let t = Instant::now();
        for i in 0..n {
            let path = logs.join(format!("{}.log", id(i)));
            let log = nightjar::engine::log::TaskLog::open(&path, &id(i), false).unwrap();
            log.note("attempt 1 started");
            log.note("attempt 1 succeeded in 0.000s");
        }
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    };

    // Does the per-task cost grow with the DAG's size? (It should not: a
    // per-task cost that grows with n means work quadratic in n.) Runs of
    // the `mixed` shape at n/4 and n tasks, in-memory store, no log reuse.
    let scaling: Vec<(usize, f64, f64)> = [n / 4, n]
        .into_iter()
        .map(|size| {
            let file = root.join("dags").join(format!("scaling_{size}.toml"));
            std::fs::write(
                &file,
                dag_text(Shape::Mixed, size).replace("bench_mixed", &format!("scaling_{size}")),
            )
            .unwrap();
            let (dag, _) = parse_validate(&root, &file);
            let engine = Engine::new(project.clone(), Arc::new(Store::in_memory().unwrap()));
            let (mut walls, mut cpus) = (Vec::new(), Vec::new());
            for rep in 0..=reps.min(5) {
                let date = base.checked_add_days(Days::new(rep as u64)).unwrap();
                let (t, c) = (Instant::now(), cpu_time());
                let report = rt
                    .block_on(engine.run(&dag, RunRequest::new(date.and_hms_opt(0, 0, 0).unwrap())))
                    .expect("run");
                assert_eq!(report.state, RunState::Success);
                if rep > 0 {
                    walls.push(t.elapsed());
                    cpus.push(cpu_time() - c);
                }
            }
            let per = |d: Duration| d.as_secs_f64() * 1e6 / dag.tasks.len() as f64;
            (dag.tasks.len(), per(stats(&walls).0), per(stats(&cpus).0))
        })
        .collect();

    // The table.
    let header = [
        "variant",
        "tasks",
        "parse+validate ms (median / min)",
        "run ms (median / min)",
        "run µs/task",
        "run CPU µs/task",
        "(validate+run) µs/task",
        "target met?",
    ];
    let mut lines = Vec::new();
    let mut all_met = true;
    for r in &rows {
        let (pm, pmin) = r.parse;
        let (rm, rmin) = r.run;
        let per_task_run = rm.as_secs_f64() * 1e6 / r.tasks as f64;
        let per_task_total = (pm + rm).as_secs_f64() * 1e6 / r.tasks as f64;
        let parse_ok = ms(pm) < PARSE_TARGET_MS * r.tasks as f64 / 1000.0;
        let run_ok = per_task_total < PER_TASK_TARGET_US;
        all_met &= parse_ok && run_ok;
        let verdict = match (parse_ok, run_ok) {
            (true, true) => "yes".to_string(),
            (false, true) => "no (parse+validate)".to_string(),
            (true, false) => "no (per task)".to_string(),
            (false, false) => "no (both)".to_string(),
        };
        lines.push([
            r.variant.to_string(),
            r.tasks.to_string(),
            format!("{:.1} / {:.1}", ms(pm), ms(pmin)),
            format!("{:.1} / {:.1}", ms(rm), ms(rmin)),
            format!("{per_task_run:.0}"),
            format!("{:.0}", r.run_cpu.as_secs_f64() * 1e6 / r.tasks as f64),
            format!("{per_task_total:.0}"),
            verdict,
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .chain([header[c].chars().count()])
                .max()
                .unwrap()
        })
        .collect();
    let fmt_row = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        format!("| {} |", padded.join(" | "))
    };
    println!();
    println!("{}", fmt_row(header.to_vec()));
    println!(
        "|{}|",
        widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|")
    );
    for l in &lines {
        println!("{}", fmt_row(l.iter().map(String::as_str).collect()));
    }
    println!();
    println!(
        "targets: parse+validate of 1,000 tasks < {PARSE_TARGET_MS} ms; validate + run < {PER_TASK_TARGET_US} µs per task (median run + median parse+validate, divided by tasks)"
    );
    println!("overall: {}", if all_met { "all targets met" } else { "TARGET MISSED" });
    // One-line figures for benches/all.sh.
    for l in &lines {
        println!(
            "summary: {} tasks ({}), (validate + run) µs per task | {} | - | - | < {PER_TASK_TARGET_US} µs | {}",
            l[1], l[0], l[6], l[7]
        );
    }
    println!();
    println!("where the time goes (per task, {n} tasks):");
    for r in &rows {
        let disk = r.run.0.as_secs_f64() * 1e6 / r.tasks as f64;
        let mem = r.run_mem.as_secs_f64() * 1e6 / r.tasks as f64;
        let per = |d: Duration| d.as_secs_f64() * 1e6 / r.tasks as f64;
        println!(
            "  {:<5}  run on disk store {disk:>6.0} µs, on in-memory store {mem:>6.0} µs (disk state writes ~{:.0} µs); run CPU {:.0} µs of which kernel {:.0} µs",
            r.variant,
            disk - mem,
            per(r.run_cpu),
            per(r.run_sys),
        );
    }
    for (size, wall, cpu) in &scaling {
        println!("  mixed, {size} tasks, in-memory store: {wall:.0} µs/task wall, {cpu:.0} µs/task CPU");
    }
    println!("  store alone: task_started + task_attempt_ended (2 transactions) {store_us:.0} µs");
    println!("  task log alone: create dir + open + 2 lines {log_us:.0} µs");
    println!(
        "  Store::open (create + migrate state.db, once per process) {:.1} ms",
        ms(store_open)
    );
}
