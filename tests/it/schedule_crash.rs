//! kill -9 of a real `nightjar schedule` process in the middle of a run,
//! then a restart: every interval due runs exactly once, the killed run is
//! resumed (not left "running", not run twice), and the intervals missed
//! while the daemon was down are caught up.
//!
//! The DAG fires every 2 seconds (a 6-field cron); task `b` appends the run
//! id to marker.txt, so the marker says which runs really happened.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rusqlite::Connection;

const DAG: &str = r#"
name = "tick"
schedule = "*/2 * * * * *"
catchup = true
max_catchup = 100

[[task]]
id = "a"
kind = "shell"
command = "sleep 0.6"

[[task]]
id = "b"
kind = "shell"
command = 'echo "{{ run_id }}" >> marker.txt'
needs = ["a"]
"#;

fn daemon(project: &Path, log: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .arg("--project")
        .arg(project)
        .args(["schedule", "--poll", "200ms"])
        .current_dir(project)
        .env_remove("NIGHTJAR_ENV")
        .env_remove("NIGHTJAR_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(project.join(log)).unwrap())
        .spawn()
        .unwrap()
}

fn db(project: &Path) -> Option<Connection> {
    let p = project.join(".nightjar/state.db");
    if !p.exists() {
        return None;
    }
    let c = Connection::open(p).ok()?;
    c.busy_timeout(Duration::from_secs(10)).ok()?;
    Some(c)
}

fn count(project: &Path, sql: &str) -> i64 {
    db(project)
        .and_then(|c| c.query_row(sql, [], |r| r.get(0)).ok())
        .unwrap_or(0)
}

fn wait_for(what: &str, timeout: Duration, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn kill_9_mid_run_then_restart_runs_every_interval_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(project.join("dags")).unwrap();
    std::fs::write(project.join("dags/tick.toml"), DAG).unwrap();

    // 1. Up until two runs succeeded and a third is inside task `a`.
    let mut first = daemon(&project, "daemon1.log");
    let successes = "SELECT COUNT(*) FROM runs WHERE state = 'success'";
    wait_for("two successful runs", Duration::from_secs(60), || {
        count(&project, successes) >= 2
    });
    wait_for("a run inside task a", Duration::from_secs(30), || {
        count(
            &project,
            "SELECT COUNT(*) FROM task_instances WHERE task_id = 'a' AND state = 'running'",
        ) == 1
    });
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let killed: String = db(&project)
        .unwrap()
        .query_row("SELECT run_id FROM runs WHERE state = 'running'", [], |r| r.get(0))
        .unwrap();

    // 2. Down for a few intervals, then up again.
    std::thread::sleep(Duration::from_secs(5));
    let mut second = daemon(&project, "daemon2.log");
    let resumed = format!("SELECT COUNT(*) FROM runs WHERE run_id = '{killed}' AND state = 'success'");
    wait_for("the killed run to be resumed", Duration::from_secs(60), || {
        count(&project, &resumed) == 1
    });
    let before = count(&project, successes);
    wait_for("three more runs", Duration::from_secs(60), || {
        count(&project, successes) >= before + 3
    });
    // SAFETY: SIGINT to our own child: a graceful stop.
    unsafe { libc::kill(second.id() as i32, libc::SIGINT) };
    second.wait().unwrap();
    let log = std::fs::read_to_string(project.join("daemon2.log")).unwrap();

    let c = db(&project).unwrap();
    // Every decided interval, in fire order.
    let mut st = c
        .prepare("SELECT logical_date, state, run_state FROM fire_decisions WHERE dag = 'tick' ORDER BY fire_at")
        .unwrap();
    let decisions: Vec<(String, String, Option<String>)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // No interval skipped: consecutive 2-second slots from the first to the last.
    let times: Vec<chrono::NaiveDateTime> = decisions
        .iter()
        .map(|d| chrono::NaiveDateTime::parse_from_str(&d.0, "%Y-%m-%dT%H:%M:%S").unwrap())
        .collect();
    for w in times.windows(2) {
        assert_eq!(
            (w[1] - w[0]).num_seconds(),
            2,
            "gap between {} and {}\n{log}",
            w[0],
            w[1]
        );
    }
    assert!(decisions.len() >= 6, "{decisions:?}\n{log}");
    // Each interval has one run (no forced second run), and each finished
    // run wrote the marker exactly once.
    let mut st = c
        .prepare("SELECT logical_date, COUNT(*), MAX(state) FROM runs GROUP BY logical_date")
        .unwrap();
    let runs: BTreeMap<String, (i64, String)> = st
        .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let marker = std::fs::read_to_string(project.join("marker.txt")).unwrap();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for l in marker.lines() {
        *seen.entry(l).or_default() += 1;
    }
    for (date, state, run_state) in &decisions {
        let (n, rs) = runs
            .get(date)
            .unwrap_or_else(|| panic!("no run of decided {date}\n{log}"));
        assert_eq!(*n, 1, "{date} has {n} runs");
        if state == "done" {
            assert_eq!(run_state.as_deref(), Some("success"), "{date}");
            assert_eq!(rs, "success");
            assert_eq!(
                seen.get(format!("tick@{date}").as_str()),
                Some(&1),
                "{date}: marker\n{marker}"
            );
        }
    }
    assert!(seen.values().all(|&n| n == 1), "a run wrote twice: {marker}");
    // The killed run: resumed by the second daemon, its task `a` attempted
    // again after the interrupted attempt.
    let attempts: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM attempts WHERE run_id = ?1 AND task_id = 'a'",
            [&killed],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(attempts, 2, "{killed}");
    // Catch-up after the outage: several intervals decided at the restart.
    assert!(log.matches("catchup").count() >= 2, "{log}");
}
