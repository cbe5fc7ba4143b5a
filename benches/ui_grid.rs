//! The web UI's run grid for a DAG with 365 runs x 10 tasks: server render
//! time (not a timed test; prints a table). Target: under 300 ms.
//!
//! The history is seeded through the store API (runs, attempts with
//! metrics, a few failures and retries); each measurement renders the whole
//! grid page (`/dags/big?limit=365`: the query, the cells, the template)
//! or builds the JSON grid (`/api/dags/big/grid?limit=365`), without HTTP.
//!
//! `cargo bench --bench ui_grid` (release), or `cargo test --release --bench
//! ui_grid`; a debug build (`cargo test --bench ui_grid`) is several times
//! slower, so say which in docs/benchmarks.md.

use std::sync::Arc;
use std::time::Instant;

use nightjar::spec::Project;
use nightjar::steps::Metrics;
use nightjar::store::{NewRun, RunState, Store, TaskState, Trigger};
use nightjar::ui::{UiOptions, state::AppState};
use tokio_util::sync::CancellationToken;

const DATES: usize = 365;
const TASKS: usize = 10;
const RENDERS: usize = 15;
const TARGET_MS: f64 = 300.0;

fn dag_text() -> String {
    let mut s = String::from("name = \"big\"\nschedule = \"0 2 * * *\"\ntimezone = \"Europe/London\"\n");
    for i in 0..TASKS {
        s += &format!("\n[[task]]\nid = \"task_{i:02}\"\nkind = \"noop\"\n");
        if i > 0 {
            // Two chains joined every few tasks: a graph with some width.
            let up = if i % 3 == 0 { i - 1 } else { i.saturating_sub(2) };
            s += &format!("needs = [\"task_{up:02}\"]\n");
        }
    }
    s
}

fn seed(store: &Store) {
    let start = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    for d in 0..DATES {
        let date = (start + chrono::Duration::days(d as i64)).to_string();
        let run = store
            .create_run(&NewRun {
                dag: "big",
                logical_date: &date,
                trigger: Trigger::Schedule,
                env: "local",
                interval_start: &format!("{date}T02:00:00+00:00"),
                interval_end: &format!("{date}T02:00:00+00:00"),
                params: serde_json::json!({}),
                after_seq: 0,
            })
            .unwrap();
        store.claim_run(&run.run_id).unwrap();
        let mut failed = false;
        for t in 0..TASKS {
            let task = format!("task_{t:02}");
            if failed {
                store
                    .set_task_state(&run.run_id, &task, TaskState::UpstreamFailed, Some("upstream failed"))
                    .unwrap();
                continue;
            }
            let mut attempt = 1;
            if (d + t) % 17 == 0 {
                store.task_started(&run.run_id, &task, 1).unwrap();
                store
                    .task_attempt_ended(&run.run_id, &task, 1, TaskState::UpForRetry, Some("flaky"), None)
                    .unwrap();
                attempt = 2;
            }
            store.task_started(&run.run_id, &task, attempt).unwrap();
            if d % 29 == 5 && t == 4 {
                store
                    .task_attempt_ended(&run.run_id, &task, attempt, TaskState::Failed, Some("boom"), None)
                    .unwrap();
                failed = true;
                continue;
            }
            let m = Metrics {
                rows_in: 1000 + d as u64,
                rows_out: 990 + d as u64,
                ..Default::default()
            };
            store
                .task_attempt_ended(&run.run_id, &task, attempt, TaskState::Success, None, Some((&m, &[])))
                .unwrap();
        }
        let state = if failed { RunState::Failed } else { RunState::Success };
        store.finish_run(&run.run_id, state).unwrap();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("dags")).unwrap();
    std::fs::write(root.join("dags/big.toml"), dag_text()).unwrap();
    let store = Arc::new(Store::open(&root.join(".nightjar/state.db")).unwrap());
    let t0 = Instant::now();
    seed(&store);
    eprintln!(
        "seeded {DATES} runs x {TASKS} tasks in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    let project = Project::load(root).unwrap();
    let opts = UiOptions {
        bind: "127.0.0.1:0".parse().unwrap(),
        dags_dir: root.join("dags"),
        token: None,
        env: None,
    };
    let st = AppState::new(project, store, opts, CancellationToken::new()).unwrap();

    let mut page_ms = Vec::new();
    let mut json_ms = Vec::new();
    let mut bytes = 0;
    for _ in 0..RENDERS {
        let t = Instant::now();
        let html = nightjar::ui::pages::grid_page(&st, "big", DATES, false).unwrap();
        page_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        bytes = html.0.len();
        assert_eq!(
            html.0.matches("class=\"cell ").count(),
            DATES * TASKS,
            "every cell rendered"
        );

        let t = Instant::now();
        let dag = st.dag("big").unwrap();
        let grid = nightjar::ui::views::grid(&st, &dag, DATES).unwrap();
        let json = serde_json::to_string(&grid).unwrap();
        json_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(json.len() > 1000);
    }
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!("\nweb UI grid, {DATES} runs x {TASKS} tasks ({profile} build, {RENDERS} renders each)\n");
    println!("{:<34} {:>10} {:>10} {:>10}", "WHAT", "MEDIAN ms", "MIN ms", "MAX ms");
    for (what, v) in [
        ("grid page (HTML, /dags/big)", &page_ms),
        ("grid JSON (/api/dags/big/grid)", &json_ms),
    ] {
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(0.0, f64::max);
        println!("{what:<34} {:>10.1} {min:>10.1} {max:>10.1}", median(v.clone()));
    }
    let m = median(page_ms);
    println!(
        "\npage size {:.0} KiB; target < {TARGET_MS} ms: {}",
        bytes as f64 / 1024.0,
        if m < TARGET_MS { "met" } else { "NOT met" }
    );
    // One-line figure for benches/all.sh.
    println!(
        "summary: run grid page, {DATES} runs x {TASKS} tasks, server time (ms) | {m:.1} | - | - | < {TARGET_MS} ms | {}",
        if m < TARGET_MS { "yes" } else { "NO" }
    );
}
