//! kill -9 at any moment: the real binary runs a DAG of shell tasks, is
//! killed with SIGKILL partway through, and the same command run again
//! resumes it to success, with the run history consistent in between. The
//! same with Ctrl-C (SIGINT), which must also stop every task process and
//! record the run as interrupted.
//!
//! Every task appends `<task> <attempt>` to `marker.txt` when it finishes
//! its work, so the marker file says exactly which attempt of which task ran
//! in which process: a task that had succeeded before the kill must have run
//! once in all; every other task must run exactly once in the resumed run,
//! as the attempt after the last one the killed process recorded.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};

const DATE: &str = "2024-01-01";
const RUN_ID: &str = "crash@2024-01-01";

/// A chain (a -> b -> c -> d) and a fan-out (a -> f1, f2, f3), joined by z.
const DAG: &str = r#"
name = "crash"

[[task]]
id = "a"
kind = "shell"
command = 'sleep 0.2 && echo "$NIGHTJAR_TASK $NIGHTJAR_ATTEMPT" >> marker.txt'

[[task]]
id = "b"
kind = "shell"
command = 'sleep 0.2 && echo "$NIGHTJAR_TASK $NIGHTJAR_ATTEMPT" >> marker.txt'
needs = ["a"]

[[task]]
id = "c"
kind = "shell"
command = 'sleep 0.2 && echo "$NIGHTJAR_TASK $NIGHTJAR_ATTEMPT" >> marker.txt'
needs = ["b"]

[[task]]
id = "d"
kind = "shell"
command = 'echo "$NIGHTJAR_TASK $NIGHTJAR_ATTEMPT" >> marker.txt'
needs = ["c"]

[[task]]
id = "f1"
kind = "shell"
command = 'sleep 0.3 && echo "$NIGHTJAR_TASK $NIGHTJAR_ATTEMPT" >> marker.txt'
needs = ["a"]

[[task]]
id = "f2"
kind = "shell"
command = 'sleep 0.3 && echo "$NIGHTJAR_TASK $NIGHTJAR_ATTEMPT" >> marker.txt'
needs = ["a"]

[[task]]
id = "f3"
kind = "shell"
command = 'sleep 0.3 && echo "$NIGHTJAR_TASK $NIGHTJAR_ATTEMPT" >> marker.txt'
needs = ["a"]

[[task]]
id = "z"
kind = "shell"
command = 'echo "$NIGHTJAR_TASK $NIGHTJAR_ATTEMPT" >> marker.txt'
needs = ["d", "f1", "f2", "f3"]
"#;

const TASKS: [&str; 8] = ["a", "b", "c", "d", "f1", "f2", "f3", "z"];

/// When to kill the first process.
#[derive(Debug, Clone, Copy)]
enum Moment {
    /// As soon as the run is recorded as running.
    RunStarted,
    /// At least `successes` tasks succeeded and one is running.
    Progress { successes: usize },
    /// This long after the process started, whatever it is doing.
    After(Duration),
}

/// How the first process is stopped.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Stop {
    /// SIGKILL: nothing runs, not even destructors.
    Kill,
    /// SIGINT, as Ctrl-C sends: nightjar cancels its tasks, records the run
    /// as interrupted and exits with 130.
    CtrlC,
}

/// What the history says at one instant.
#[derive(Debug, Default)]
struct Seen {
    run_running: bool,
    successes: usize,
    running: usize,
}

fn nightjar(project: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nightjar"));
    cmd.arg("--project")
        .arg(project)
        .args(["run", "dags/crash.toml", "--date", DATE, "--parallelism", "2"])
        // Every process of the run has the project as its working folder:
        // that is how orphaned task processes are found below.
        .current_dir(project)
        .env_remove("NIGHTJAR_ENV")
        .env_remove("NIGHTJAR_LOG");
    cmd
}

fn db_path(project: &Path) -> PathBuf {
    project.join(".nightjar/state.db")
}

fn open(project: &Path) -> Connection {
    let c = Connection::open(db_path(project)).unwrap();
    c.busy_timeout(Duration::from_secs(10)).unwrap();
    c
}

/// Reads the history while the writer runs (WAL: readers do not block it).
/// `None` until the database and its schema exist.
fn seen(project: &Path) -> Option<Seen> {
    if !db_path(project).exists() {
        return None;
    }
    let c = open(project);
    let state: Option<String> = c
        .query_row("SELECT state FROM runs WHERE run_id = ?1", [RUN_ID], |r| r.get(0))
        .optional()
        .ok()?;
    let count = |s: &str| -> Option<usize> {
        c.query_row(
            "SELECT COUNT(*) FROM task_instances WHERE run_id = ?1 AND state = ?2",
            [RUN_ID, s],
            |r| r.get::<_, i64>(0),
        )
        .ok()
        .map(|n| n as usize)
    };
    Some(Seen {
        run_running: state.as_deref() == Some("running"),
        successes: count("success")?,
        running: count("running")?,
    })
}

/// Waits for `moment`, then stops the process.
fn stop_at(child: &mut Child, project: &Path, moment: Moment, stop: Stop) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("nightjar ended ({status}) before {moment:?}: the DAG is too quick for this test");
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{moment:?} never came");
        let now = seen(project).unwrap_or_default();
        let due = match moment {
            Moment::RunStarted => now.run_running,
            Moment::Progress { successes } => now.run_running && now.successes >= successes && now.running >= 1,
            Moment::After(d) => started.elapsed() >= d,
        };
        if due {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    match stop {
        Stop::Kill => {
            // `Child::kill` is SIGKILL on unix: no destructor, no handler runs.
            child.kill().unwrap();
            child.wait().unwrap()
        }
        Stop::CtrlC => {
            // SAFETY: sends SIGINT to our own child.
            assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    return status;
                }
                if Instant::now() > deadline {
                    child.kill().unwrap();
                    panic!("nightjar did not stop on Ctrl-C");
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

fn pid_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// Live processes whose working folder is `dir` (zombies have none).
fn processes_in(dir: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if std::fs::read_link(e.path().join("cwd")).is_ok_and(|cwd| cwd == dir) {
            pids.push(pid);
        }
    }
    pids
}

/// `(task, attempt)` per line of the marker file.
fn marker_lines(project: &Path) -> Vec<(String, u32)> {
    let text = std::fs::read_to_string(project.join("marker.txt")).unwrap_or_default();
    text.lines()
        .map(|l| {
            let (t, a) = l.split_once(' ').unwrap_or_else(|| panic!("bad marker line `{l}`"));
            (t.to_string(), a.parse().unwrap())
        })
        .collect()
}

fn crash_and_resume(moment: Moment, stop: Stop) {
    let dir = tempfile::tempdir().unwrap();
    let project = dir.path().canonicalize().unwrap();
    std::fs::create_dir_all(project.join("dags")).unwrap();
    std::fs::write(project.join("dags/crash.toml"), DAG).unwrap();

    // 1. Start a run and stop it.
    let mut child = nightjar(&project)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let status = stop_at(&mut child, &project, moment, stop);
    match stop {
        Stop::Kill => assert_eq!(status.signal(), Some(libc::SIGKILL)),
        Stop::CtrlC => assert_eq!(status.code(), Some(130), "{status}"),
    }

    // 2. The history is consistent. After kill -9 it says a dead process
    // holds the run; after Ctrl-C, that the run was interrupted.
    assert!(!pid_alive(pid));
    if !db_path(&project).exists() {
        // Killed before it opened the history: only a time-based kill can
        // be that early, and then there is nothing to resume.
        assert!(matches!(moment, Moment::After(_)), "{moment:?} {stop:?}: no history");
    }
    let c = open(&project);
    let check: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let run: Option<(String, Option<i32>)> = c
        .query_row("SELECT state, pid FROM runs WHERE run_id = ?1", [RUN_ID], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .unwrap_or(None);
    match &run {
        Some((state, holder)) if stop == Stop::Kill => {
            assert_eq!(state, "running", "{moment:?}");
            assert_eq!(*holder, Some(pid));
        }
        Some((state, holder)) => {
            assert_eq!(state, "interrupted", "{moment:?}");
            assert_eq!(*holder, None);
        }
        None => assert!(
            matches!(moment, Moment::After(_)),
            "{moment:?} {stop:?}: no run recorded"
        ),
    }
    let at_kill: BTreeMap<String, (String, u32)> = c
        .prepare("SELECT task_id, state, attempt FROM task_instances WHERE run_id = ?1")
        .unwrap()
        .query_map([RUN_ID], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    eprintln!("{moment:?} {stop:?}: at the stop: {at_kill:?}");
    let stopped_state = match stop {
        Stop::Kill => "running",
        Stop::CtrlC => "interrupted",
    };
    for (t, (s, a)) in &at_kill {
        assert!(
            s == "success" || s == stopped_state,
            "{moment:?} {stop:?}: task {t} is {s} at attempt {a}"
        );
        assert_eq!(*a, 1, "{moment:?} {stop:?}: task {t}");
    }
    drop(c);

    // Task processes outlive a SIGKILLed nightjar (each leads its own
    // process group); let them finish before counting what they wrote.
    // Ctrl-C kills them (SIGKILL to each group, delivered a moment later).
    let patience = match stop {
        Stop::Kill => Duration::from_secs(10),
        Stop::CtrlC => Duration::from_secs(2),
    };
    let deadline = Instant::now() + patience;
    while !processes_in(&project).is_empty() {
        assert!(
            Instant::now() < deadline,
            "orphans still running: {:?}",
            processes_in(&project)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let before = marker_lines(&project);

    // 3. The same command resumes the run to success.
    let out = nightjar(&project).output().unwrap();
    assert!(
        out.status.success(),
        "{moment:?} {stop:?}: resume exited with {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    if run.is_some() {
        assert!(stderr.contains("resuming crash@2024-01-01"), "{stderr}");
    }

    let c = open(&project);
    let runs: Vec<(String, String)> = c
        .prepare("SELECT run_id, state FROM runs")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(runs, [(RUN_ID.to_string(), "success".to_string())], "one run, resumed");

    let after = marker_lines(&project);
    assert_eq!(after[..before.len()], before[..], "the marker file is append-only");
    let resumed = &after[before.len()..];
    for t in TASKS {
        let pre: Vec<u32> = before.iter().filter(|(x, _)| x == t).map(|(_, a)| *a).collect();
        let post: Vec<u32> = resumed.iter().filter(|(x, _)| x == t).map(|(_, a)| *a).collect();
        let (final_state, final_attempt): (String, u32) = c
            .query_row(
                "SELECT state, attempt FROM task_instances WHERE run_id = ?1 AND task_id = ?2",
                [RUN_ID, t],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(final_state, "success", "{moment:?} {stop:?}: task {t}");
        match at_kill.get(t).map(|(s, a)| (s.as_str(), *a)) {
            Some(("success", a)) => {
                assert_eq!(pre, [a], "{moment:?} {stop:?}: {t} succeeded before the kill, once");
                assert!(
                    post.is_empty(),
                    "{moment:?} {stop:?}: {t} succeeded before the kill but ran again"
                );
                assert_eq!(final_attempt, a);
            }
            Some((_, a)) => {
                // Running at the kill: it may have finished its work in the
                // first process (at most once), and runs again once.
                assert!(
                    pre.len() <= 1 && pre.iter().all(|x| *x == a),
                    "{moment:?} {stop:?}: {t} before: {pre:?}"
                );
                assert_eq!(post, [a + 1], "{moment:?} {stop:?}: {t} in the resumed run");
                assert_eq!(final_attempt, a + 1);
                let states: Vec<String> = c
                    .prepare("SELECT state FROM attempts WHERE run_id = ?1 AND task_id = ?2 ORDER BY attempt")
                    .unwrap()
                    .query_map([RUN_ID, t], |r| r.get(0))
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                assert_eq!(
                    states,
                    ["interrupted", "success"],
                    "{moment:?} {stop:?}: attempts of {t}"
                );
            }
            None => {
                assert!(
                    pre.is_empty(),
                    "{moment:?} {stop:?}: {t} never started, yet wrote {pre:?}"
                );
                assert_eq!(post, [1], "{moment:?} {stop:?}: {t} in the resumed run");
                assert_eq!(final_attempt, 1);
            }
        }
    }
    let leftovers: i64 = c
        .query_row("SELECT COUNT(*) FROM attempts WHERE state = 'running'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(leftovers, 0);

    // 4. And the date is done: running it again does nothing.
    let out = nightjar(&project).output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("already succeeded"));
    assert_eq!(marker_lines(&project), after);
}

#[test]
fn killed_as_the_run_starts() {
    crash_and_resume(Moment::RunStarted, Stop::Kill);
}

#[test]
fn killed_after_the_first_success() {
    crash_and_resume(Moment::Progress { successes: 1 }, Stop::Kill);
}

#[test]
fn killed_deep_into_the_run() {
    crash_and_resume(Moment::Progress { successes: 4 }, Stop::Kill);
}

#[test]
fn killed_at_an_arbitrary_instant() {
    crash_and_resume(Moment::After(Duration::from_millis(600)), Stop::Kill);
}

#[test]
fn ctrl_c_interrupts_cleanly_and_the_next_run_resumes() {
    crash_and_resume(Moment::Progress { successes: 2 }, Stop::CtrlC);
}
