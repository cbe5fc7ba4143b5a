//! The local engine, in process: retries and backoff (on a paused tokio
//! clock), timeouts that really cancel, `upstream_failed` propagation,
//! resume, no-op on success, `--force` and selections, the parallelism
//! limit, Ctrl-C, and config errors found at run time.
//!
//! Most tests run a test-only step kind, `test.probe`, registered next to
//! the built-in kinds. It records every call (task, attempt, the paused
//! clock's instant, the inputs it saw) in a static keyed by DAG name, so
//! each test uses its own DAG name.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::bail;
use async_trait::async_trait;
use serde::Deserialize;
use tempfile::TempDir;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use nightjar::data::DatasetRef;
use nightjar::engine::{Engine, RunReport, RunRequest, Selection, parse_logical_time};
use nightjar::spec::{Dag, Project, dag};
use nightjar::steps::{Registry, Skipped, Step, StepConfig, StepContext, StepKind, StepOutput};
use nightjar::store::{RunState, Store, TaskState};

// ---- the probe step ----

/// One call of a probe step.
#[derive(Debug, Clone)]
struct Call {
    task: String,
    attempt: u32,
    at: Instant,
    /// Input name -> dataset uri.
    inputs: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Probe {
    calls: Vec<Call>,
    running: usize,
    max_running: usize,
    /// Tasks whose attempt was dropped before it finished (one entry per
    /// dropped attempt).
    dropped: Vec<String>,
    /// Tasks whose attempt's cancellation token fired (one entry per
    /// attempt; it fires when the attempt ends, however it ends).
    cancelled: Vec<String>,
}

static PROBES: LazyLock<Mutex<HashMap<String, Probe>>> = LazyLock::new(Default::default);

fn probes() -> MutexGuard<'static, HashMap<String, Probe>> {
    PROBES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads the probe records of one DAG.
fn probe<T>(dag: &str, f: impl FnOnce(&Probe) -> T) -> T {
    f(probes().entry(dag.to_string()).or_default())
}

fn calls_of(dag: &str, task: &str) -> Vec<Call> {
    probe(dag, |p| p.calls.iter().filter(|c| c.task == task).cloned().collect())
}

fn count(dag: &str, task: &str) -> usize {
    calls_of(dag, task).len()
}

/// `test.probe`: records its call, optionally sleeps, then fails or
/// succeeds with one output named `default`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeConfig {
    /// Fail the first N calls of this task (over every run of the DAG).
    #[serde(default)]
    fail_first: usize,
    #[serde(default)]
    fail_always: bool,
    /// Panic instead of failing (a bug in a step).
    #[serde(default)]
    panic: bool,
    /// Report nothing to do for the date (`Skipped`).
    #[serde(default)]
    skip: bool,
    /// How long to sleep, parsed at build time (so a bad rendered value is
    /// a config error).
    sleep: Option<String>,
    /// Any string; only rendered.
    note: Option<String>,
}

impl StepConfig for ProbeConfig {
    fn build(self) -> anyhow::Result<Box<dyn Step>> {
        let sleep = match &self.sleep {
            Some(s) => Some(humantime::parse_duration(s)?),
            None => None,
        };
        let _ = &self.note;
        Ok(Box::new(ProbeStep {
            fail_first: self.fail_first,
            fail_always: self.fail_always,
            panic: self.panic,
            skip: self.skip,
            sleep,
        }))
    }
}

const PROBE: StepKind = StepKind::of::<ProbeConfig>(
    "test.probe",
    "records its calls (tests only)",
    "kind = \"test.probe\"\n",
);

struct ProbeStep {
    fail_first: usize,
    fail_always: bool,
    panic: bool,
    skip: bool,
    sleep: Option<Duration>,
}

/// Keeps the concurrency count right and notices a dropped attempt.
struct Running {
    dag: String,
    task: String,
    finished: bool,
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut all = probes();
        let p = all.entry(self.dag.clone()).or_default();
        p.running -= 1;
        if !self.finished {
            p.dropped.push(self.task.clone());
        }
    }
}

#[async_trait]
impl Step for ProbeStep {
    async fn run(&self, cx: &StepContext) -> anyhow::Result<StepOutput> {
        let nth = {
            let mut all = probes();
            let p = all.entry(cx.dag.clone()).or_default();
            p.calls.push(Call {
                task: cx.task.clone(),
                attempt: cx.attempt,
                at: Instant::now(),
                inputs: cx.inputs.iter().map(|(k, d)| (k.clone(), d.uri.clone())).collect(),
            });
            p.running += 1;
            p.max_running = p.max_running.max(p.running);
            p.calls.iter().filter(|c| c.task == cx.task).count()
        };
        // What a step doing blocking work would watch.
        tokio::spawn({
            let (token, dag, task) = (cx.cancel.clone(), cx.dag.clone(), cx.task.clone());
            async move {
                token.cancelled().await;
                probes().entry(dag).or_default().cancelled.push(task);
            }
        });
        let mut guard = Running {
            dag: cx.dag.clone(),
            task: cx.task.clone(),
            finished: false,
        };
        if let Some(d) = self.sleep {
            tokio::time::sleep(d).await;
        }
        guard.finished = true;
        drop(guard);
        if self.panic {
            panic!("probe panics");
        }
        if self.skip {
            return Err(Skipped("no input for this date".into()).into());
        }
        if self.fail_always || nth <= self.fail_first {
            bail!("probe failure {nth}");
        }
        Ok(StepOutput {
            datasets: vec![DatasetRef {
                task: cx.task.clone(),
                name: "default".into(),
                uri: format!("mem://{}/{}", cx.run_id, cx.task),
                rows: None,
            }],
            ..Default::default()
        })
    }
}

// ---- fixtures ----

struct Fixture {
    dir: TempDir,
    engine: Engine,
    dag: Dag,
}

/// A temp project with one DAG file (`dags/<name>.toml`, whose text is
/// `name = "<name>"` followed by `body`), and an engine whose registry knows
/// `test.probe`.
fn fixture(name: &str, body: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let dags = dir.path().join("dags");
    std::fs::create_dir_all(&dags).unwrap();
    let path = dags.join(format!("{name}.toml"));
    std::fs::write(&path, format!("name = \"{name}\"\n{body}")).unwrap();
    let project = Project::load(dir.path()).unwrap_or_else(|d| panic!("{d}"));
    let mut registry = Registry::builtin();
    registry.register(PROBE);
    let (dag, _warnings) = dag::load(&path, &project, &registry).unwrap_or_else(|d| panic!("invalid test DAG:\n{d}"));
    let store = Store::open(&project.state_dir().join("state.db")).unwrap();
    let mut engine = Engine::new(project, Arc::new(store));
    engine.registry = registry;
    engine.parallelism = 4;
    probes().remove(name);
    Fixture { dir, engine, dag }
}

const DATE: &str = "2024-01-01";

fn req() -> RunRequest {
    RunRequest::new(parse_logical_time(DATE).unwrap())
}

impl Fixture {
    async fn run(&self, r: RunRequest) -> RunReport {
        self.engine.run(&self.dag, r).await.unwrap()
    }

    fn name(&self) -> &str {
        &self.dag.name
    }

    fn run_id(&self) -> String {
        format!("{}@{DATE}", self.dag.name)
    }

    fn task_state(&self, run_id: &str, task: &str) -> Option<(TaskState, u32)> {
        self.engine
            .store
            .tasks(run_id)
            .unwrap()
            .into_iter()
            .find(|t| t.task_id == task)
            .map(|t| (t.state, t.attempt))
    }

    fn attempt_states(&self, run_id: &str, task: &str) -> Vec<(u32, TaskState)> {
        self.engine
            .store
            .attempts(run_id, task)
            .unwrap()
            .into_iter()
            .map(|a| (a.attempt, a.state))
            .collect()
    }
}

fn gaps(calls: &[Call]) -> Vec<Duration> {
    calls.windows(2).map(|w| w[1].at - w[0].at).collect()
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

// ---- retries ----

#[tokio::test(start_paused = true)]
async fn retry_waits_grow_by_the_backoff_exactly_without_jitter() {
    let f = fixture(
        "retry_timing",
        r#"
[defaults]
retry_jitter = 0.0

[[task]]
id = "doubling"
kind = "test.probe"
fail_first = 3
retries = 3
retry_delay = "30s"
retry_backoff = 2.0

[[task]]
id = "by_half"
kind = "test.probe"
fail_first = 3
retries = 4
retry_delay = "10s"
retry_backoff = 1.5
"#,
    );
    let t0 = Instant::now();
    let r = f.run(req()).await;
    assert_eq!(r.state, RunState::Success);

    let doubling = calls_of(f.name(), "doubling");
    assert_eq!(doubling.iter().map(|c| c.attempt).collect::<Vec<_>>(), [1, 2, 3, 4]);
    assert_eq!(doubling[0].at, t0, "the first attempt starts at once");
    assert_eq!(gaps(&doubling), [secs(30.0), secs(60.0), secs(120.0)]);

    // Fails 3 times, succeeds on the 4th of its 5 allowed attempts.
    let by_half = calls_of(f.name(), "by_half");
    assert_eq!(gaps(&by_half), [secs(10.0), secs(15.0), secs(22.5)]);

    assert_eq!(f.task_state(&r.run_id, "doubling"), Some((TaskState::Success, 4)));
    assert_eq!(
        f.attempt_states(&r.run_id, "doubling"),
        [
            (1, TaskState::Failed),
            (2, TaskState::Failed),
            (3, TaskState::Failed),
            (4, TaskState::Success)
        ]
    );
    assert_eq!(Instant::now() - t0, secs(210.0), "the run ends with its slowest task");
}

#[tokio::test(start_paused = true)]
async fn retry_jitter_spreads_each_wait_within_its_bounds() {
    let mut body = String::from(
        r#"
[defaults]
retries = 3
retry_delay = "10s"
retry_backoff = 2.0
retry_jitter = 0.5
"#,
    );
    let tasks: Vec<String> = (0..8).map(|i| format!("t{i}")).collect();
    for t in &tasks {
        body.push_str(&format!(
            "\n[[task]]\nid = \"{t}\"\nkind = \"test.probe\"\nfail_first = 3\n"
        ));
    }
    let mut f = fixture("retry_jitter", &body);
    f.engine.parallelism = tasks.len();
    let r = f.run(req()).await;
    assert_eq!(r.state, RunState::Success);

    let mut all_waits = Vec::new();
    for t in &tasks {
        let calls = calls_of(f.name(), t);
        assert_eq!(calls.len(), 4, "{t}");
        for (k, gap) in gaps(&calls).into_iter().enumerate() {
            let nominal = 10.0 * 2f64.powi(k as i32);
            // +/-50%; tokio timers round a deadline up to the millisecond.
            let (lo, hi) = (secs(nominal * 0.5), secs(nominal * 1.5) + Duration::from_millis(1));
            assert!(lo <= gap && gap <= hi, "{t} wait {k}: {gap:?} not in [{lo:?}, {hi:?}]");
            all_waits.push(gap);
        }
    }
    assert!(
        all_waits
            .iter()
            .enumerate()
            .any(|(i, w)| *w != secs(10.0 * 2f64.powi((i % 3) as i32))),
        "24 jittered waits cannot all be exactly nominal: {all_waits:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_fail_the_task_with_every_attempt_recorded() {
    let f = fixture(
        "retry_exhausted",
        r#"
[[task]]
id = "broken"
kind = "test.probe"
fail_always = true
retries = 2
retry_delay = "1s"
"#,
    );
    let r = f.run(req()).await;
    assert_eq!(r.state, RunState::Failed);
    assert_eq!(count(f.name(), "broken"), 3);
    let task = &r.tasks[0];
    assert_eq!((task.state, task.attempts), (TaskState::Failed, 3));
    assert_eq!(task.error.as_deref(), Some("probe failure 3"));
    let attempts = f.engine.store.attempts(&r.run_id, "broken").unwrap();
    assert_eq!(attempts.len(), 3);
    for (i, a) in attempts.iter().enumerate() {
        assert_eq!(a.attempt, i as u32 + 1);
        assert_eq!(a.state, TaskState::Failed);
        assert_eq!(a.error.as_deref(), Some(format!("probe failure {}", i + 1).as_str()));
        assert!(a.ended_at.is_some());
    }
    assert_eq!(f.engine.store.run(&r.run_id).unwrap().unwrap().state, RunState::Failed);
}

// ---- timeouts ----

#[tokio::test(start_paused = true)]
async fn a_timeout_drops_the_step_and_counts_as_a_failed_attempt() {
    let f = fixture(
        "timeout",
        r#"
[[task]]
id = "stuck"
kind = "test.probe"
sleep = "1h"
timeout = "5s"
retries = 1
retry_delay = "1s"
retry_jitter = 0.0

[[task]]
id = "in_time"
kind = "test.probe"
sleep = "4s"
timeout = "5s"
"#,
    );
    let t0 = Instant::now();
    let r = f.run(req()).await;
    assert_eq!(r.state, RunState::Failed);
    // Two attempts of 5 s with a 1 s wait between; nobody waited an hour.
    assert_eq!(Instant::now() - t0, secs(11.0));
    let stuck = calls_of(f.name(), "stuck");
    assert_eq!(gaps(&stuck), [secs(6.0)]);
    assert_eq!(
        probe(f.name(), |p| p.dropped.clone()),
        ["stuck", "stuck"],
        "each timed-out attempt's future was dropped"
    );
    assert_eq!(probe(f.name(), |p| p.running), 0);
    // Each dropped attempt's cancellation token fired too (for work a step
    // runs on a blocking thread, which dropping cannot stop).
    tokio::task::yield_now().await;
    let cancelled = probe(f.name(), |p| p.cancelled.clone());
    assert_eq!(cancelled.iter().filter(|t| *t == "stuck").count(), 2, "{cancelled:?}");
    let attempts = f.engine.store.attempts(&r.run_id, "stuck").unwrap();
    assert_eq!(attempts.len(), 2);
    for a in &attempts {
        assert_eq!(a.state, TaskState::Failed);
        assert_eq!(a.error.as_deref(), Some("timed out after 5s"));
    }
    assert_eq!(f.task_state(&r.run_id, "stuck"), Some((TaskState::Failed, 2)));
    assert_eq!(f.task_state(&r.run_id, "in_time"), Some((TaskState::Success, 1)));
}

/// Is `pid` a live process (a zombie is dead: only its exit status is left,
/// and nobody may reap it when its parent was the killed shell)?
fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    if unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

// Real clock: the shell's child process lives in real time.
#[tokio::test]
async fn a_shell_timeout_kills_the_command_and_its_children() {
    let f = fixture(
        "shell_timeout",
        r#"
[[task]]
id = "hang"
kind = "shell"
command = "echo $$ > sh.pid; sleep 30 & echo $! > child.pid; wait"
timeout = "2s"
"#,
    );
    let started = std::time::Instant::now();
    let r = f.run(req()).await;
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the run waited for the command"
    );
    assert_eq!(r.state, RunState::Failed);
    assert_eq!(r.tasks[0].error.as_deref(), Some("timed out after 2s"));
    let attempts = f.engine.store.attempts(&r.run_id, "hang").unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].state, TaskState::Failed);

    for file in ["sh.pid", "child.pid"] {
        let pid = read_pid(&f.dir.path().join(file));
        // SIGKILL is delivered asynchronously; give the kernel a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!alive(pid), "{file}: process {pid} survived the timeout");
    }
}

// ---- failures, resume, no-op ----

#[tokio::test(start_paused = true)]
async fn a_failure_marks_its_downstream_upstream_failed_while_other_branches_finish() {
    let f = fixture(
        "upstream_failed",
        r#"
[[task]]
id = "a"
kind = "test.probe"
fail_always = true

[[task]]
id = "b"
kind = "test.probe"
needs = ["a"]

[[task]]
id = "c"
kind = "test.probe"
needs = ["b"]

[[task]]
id = "d"
kind = "test.probe"
sleep = "10s"

[[task]]
id = "e"
kind = "test.probe"
needs = ["d"]

[[task]]
id = "f"
kind = "test.probe"
needs = ["c", "e"]
"#,
    );
    let t0 = Instant::now();
    let r = f.run(req()).await;
    assert_eq!(r.state, RunState::Failed);
    let run_id = r.run_id.as_str();
    assert_eq!(f.task_state(run_id, "a"), Some((TaskState::Failed, 1)));
    for t in ["b", "c", "f"] {
        assert_eq!(f.task_state(run_id, t), Some((TaskState::UpstreamFailed, 0)), "{t}");
        assert_eq!(count(f.name(), t), 0, "{t} must not run");
    }
    // The independent branch kept going after `a` failed at t0.
    for t in ["d", "e"] {
        assert_eq!(f.task_state(run_id, t), Some((TaskState::Success, 1)), "{t}");
    }
    assert_eq!(calls_of(f.name(), "a")[0].at, t0);
    assert_eq!(calls_of(f.name(), "e")[0].at, t0 + secs(10.0));
    let tasks = f.engine.store.tasks(run_id).unwrap();
    let error = |t: &str| tasks.iter().find(|x| x.task_id == t).unwrap().error.clone();
    assert_eq!(error("b").as_deref(), Some("upstream task `a` failed"));
    assert_eq!(error("c").as_deref(), Some("upstream task `b` failed"));
    assert_eq!(error("f").as_deref(), Some("upstream task `c` failed"));
}

#[tokio::test(start_paused = true)]
async fn resuming_a_failed_run_reruns_only_what_did_not_succeed() {
    let f = fixture(
        "resume",
        r#"
[[task]]
id = "a"
kind = "test.probe"

[[task]]
id = "b"
kind = "test.probe"
needs = ["a"]
fail_first = 2
retries = 1
retry_delay = "1s"

[[task]]
id = "c"
kind = "test.probe"
needs = ["b"]

[[task]]
id = "d"
kind = "test.probe"
"#,
    );
    let first = f.run(req()).await;
    assert_eq!(first.state, RunState::Failed);
    assert_eq!(f.task_state(&first.run_id, "b"), Some((TaskState::Failed, 2)));
    assert_eq!(f.task_state(&first.run_id, "c"), Some((TaskState::UpstreamFailed, 0)));

    let second = f.run(req()).await;
    assert_eq!(second.state, RunState::Success);
    assert!(!second.already_succeeded);
    assert_eq!(second.run_id, first.run_id, "a resume continues the same run");
    assert_eq!(f.engine.store.runs(Some(f.name()), 10).unwrap().len(), 1);

    for (t, n) in [("a", 1), ("b", 3), ("c", 1), ("d", 1)] {
        assert_eq!(count(f.name(), t), n, "executions of {t}");
    }
    // Attempt numbers continue where the failed run stopped.
    let b = calls_of(f.name(), "b");
    assert_eq!(b.iter().map(|c| c.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(
        f.attempt_states(&first.run_id, "b"),
        [(1, TaskState::Failed), (2, TaskState::Failed), (3, TaskState::Success)]
    );
    assert_eq!(f.task_state(&first.run_id, "c"), Some((TaskState::Success, 1)));
    // The resumed `b` reads the output `a` recorded in the first invocation.
    assert_eq!(
        b[2].inputs.get("a").map(String::as_str),
        Some("mem://resume@2024-01-01/a")
    );
}

#[tokio::test(start_paused = true)]
async fn a_succeeded_date_is_a_no_op_unless_forced() {
    let f = fixture(
        "noop_on_success",
        r#"
[[task]]
id = "a"
kind = "test.probe"

[[task]]
id = "b"
kind = "test.probe"
needs = ["a"]
"#,
    );
    let first = f.run(req()).await;
    assert_eq!((first.state, first.already_succeeded), (RunState::Success, false));

    let again = f.run(req()).await;
    assert!(again.already_succeeded);
    assert_eq!(again.state, RunState::Success);
    assert_eq!(again.run_id, f.run_id());
    assert!(again.tasks.is_empty());
    assert_eq!((count(f.name(), "a"), count(f.name(), "b")), (1, 1));

    let mut forced = req();
    forced.force = true;
    let second = f.run(forced).await;
    assert_eq!(second.run_id, format!("{}.2", f.run_id()));
    assert_eq!((second.state, second.already_succeeded), (RunState::Success, false));
    assert_eq!((count(f.name(), "a"), count(f.name(), "b")), (2, 2));
    // The first run is untouched.
    let first_run = f.engine.store.run(&first.run_id).unwrap().unwrap();
    assert_eq!(first_run.state, RunState::Success);
    assert_eq!(f.task_state(&first.run_id, "a"), Some((TaskState::Success, 1)));

    // The latest run of the date succeeded: a plain run is a no-op again.
    let after = f.run(req()).await;
    assert!(after.already_succeeded);
    assert_eq!(after.run_id, second.run_id);
    assert_eq!(count(f.name(), "a"), 2);
}

// ---- selections ----

const CHAIN: &str = r#"
[[task]]
id = "a"
kind = "test.probe"

[[task]]
id = "b"
kind = "test.probe"
needs = ["a"]

[[task]]
id = "c"
kind = "test.probe"
needs = ["b"]

[[task]]
id = "d"
kind = "test.probe"
"#;

#[tokio::test(start_paused = true)]
async fn only_runs_the_selected_tasks_and_a_plain_run_finishes_the_rest() {
    let f = fixture("select_only", CHAIN);
    let mut only = req();
    only.selection = Selection::Only(vec!["b".into()]);
    let r = f.run(only).await;
    assert_eq!(r.state, RunState::Partial, "tasks were left out, nothing failed");
    assert_eq!(r.tasks.len(), 1);
    assert_eq!(count(f.name(), "b"), 1);
    for t in ["a", "c", "d"] {
        assert_eq!(count(f.name(), t), 0, "{t}");
        assert_eq!(f.task_state(&r.run_id, t), None, "{t}");
    }

    let rest = f.run(req()).await;
    assert_eq!(rest.run_id, r.run_id);
    assert_eq!(rest.state, RunState::Success);
    for t in ["a", "b", "c", "d"] {
        assert_eq!(count(f.name(), t), 1, "{t}");
    }
}

#[tokio::test(start_paused = true)]
async fn from_runs_a_task_and_its_downstream() {
    let f = fixture("select_from", CHAIN);
    let mut from = req();
    from.selection = Selection::From(vec!["b".into()]);
    let r = f.run(from).await;
    assert_eq!(r.state, RunState::Partial);
    let ran: Vec<usize> = ["a", "b", "c", "d"].iter().map(|t| count(f.name(), t)).collect();
    assert_eq!(ran, [0, 1, 1, 0]);
}

#[tokio::test(start_paused = true)]
async fn force_with_a_selection_carries_the_other_tasks_over() {
    let f = fixture("select_force", CHAIN);
    let first = f.run(req()).await;
    assert_eq!(first.state, RunState::Success);

    let mut from = req();
    from.force = true;
    from.selection = Selection::From(vec!["b".into()]);
    let second = f.run(from).await;
    assert_eq!(second.run_id, format!("{}.2", f.run_id()));
    assert_eq!(second.state, RunState::Success, "carried-over tasks complete the run");
    let ran: Vec<usize> = ["a", "b", "c", "d"].iter().map(|t| count(f.name(), t)).collect();
    assert_eq!(ran, [1, 2, 2, 1]);
    // `a` and `d` are carried over with their outputs; `b` reads `a`'s.
    for t in ["a", "d"] {
        assert_eq!(f.task_state(&second.run_id, t), Some((TaskState::Success, 0)), "{t}");
    }
    let b = calls_of(f.name(), "b");
    assert_eq!(
        b[1].inputs.get("a").map(String::as_str),
        Some("mem://select_force@2024-01-01/a")
    );
    assert_eq!(b[1].attempt, 1, "a new run numbers attempts from 1");

    let mut only = req();
    only.force = true;
    only.selection = Selection::Only(vec!["d".into()]);
    let third = f.run(only).await;
    assert_eq!(third.run_id, format!("{}.3", f.run_id()));
    assert_eq!(third.state, RunState::Success);
    let ran: Vec<usize> = ["a", "b", "c", "d"].iter().map(|t| count(f.name(), t)).collect();
    assert_eq!(ran, [1, 2, 2, 2]);
    for t in ["a", "b", "c", "d"] {
        assert_eq!(
            f.task_state(&third.run_id, t).map(|s| s.0),
            Some(TaskState::Success),
            "{t}"
        );
    }
}

// ---- concurrency ----

#[tokio::test(start_paused = true)]
async fn parallelism_caps_the_tasks_running_at_once() {
    let mut body = String::new();
    for i in 0..6 {
        body.push_str(&format!(
            "\n[[task]]\nid = \"t{i}\"\nkind = \"test.probe\"\nsleep = \"1s\"\n"
        ));
    }
    let mut f = fixture("parallelism", &body);
    for (limit, seconds) in [(2, 3.0), (4, 2.0), (6, 1.0)] {
        probes().remove(f.name());
        f.engine.parallelism = limit;
        let mut r = req();
        r.force = true;
        let t0 = Instant::now();
        assert_eq!(f.run(r).await.state, RunState::Success);
        assert_eq!(probe(f.name(), |p| p.max_running), limit, "parallelism {limit}");
        assert_eq!(probe(f.name(), |p| p.calls.len()), 6);
        assert_eq!(Instant::now() - t0, secs(seconds), "parallelism {limit}");
    }
}

#[tokio::test(start_paused = true)]
async fn cancelling_interrupts_the_run_and_a_later_run_resumes_it() {
    let mut f = fixture(
        "cancel",
        r#"
[[task]]
id = "slow"
kind = "test.probe"
sleep = "10s"

[[task]]
id = "after"
kind = "test.probe"
needs = ["slow"]

[[task]]
id = "quick"
kind = "test.probe"
"#,
    );
    let cancel = f.engine.cancel.clone();
    let (r, ()) = tokio::join!(f.run(req()), async move {
        tokio::time::sleep(secs(2.0)).await;
        cancel.cancel();
    });
    assert_eq!(r.state, RunState::Interrupted);
    let run = f.engine.store.run(&r.run_id).unwrap().unwrap();
    assert_eq!(run.state, RunState::Interrupted);
    assert!(run.pid.is_none(), "an interrupted run is not held by anyone");
    assert_eq!(f.task_state(&r.run_id, "slow"), Some((TaskState::Interrupted, 1)));
    assert_eq!(f.attempt_states(&r.run_id, "slow"), [(1, TaskState::Interrupted)]);
    assert_eq!(
        probe(f.name(), |p| p.dropped.clone()),
        ["slow"],
        "the step was cancelled"
    );
    assert_eq!(f.task_state(&r.run_id, "quick"), Some((TaskState::Success, 1)));
    assert_eq!(f.task_state(&r.run_id, "after"), None, "never started");

    // Ctrl-C is for one invocation; the next run resumes.
    f.engine.cancel = CancellationToken::new();
    let resumed = f.run(req()).await;
    assert_eq!(resumed.run_id, r.run_id);
    assert_eq!(resumed.state, RunState::Success);
    assert_eq!(f.task_state(&r.run_id, "slow"), Some((TaskState::Success, 2)));
    assert_eq!(
        f.attempt_states(&r.run_id, "slow"),
        [(1, TaskState::Interrupted), (2, TaskState::Success)]
    );
    for (t, n) in [("slow", 2), ("after", 1), ("quick", 1)] {
        assert_eq!(count(f.name(), t), n, "executions of {t}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_step_fails_its_task_like_any_failure() {
    let f = fixture(
        "panic",
        r#"
[[task]]
id = "buggy"
kind = "test.probe"
panic = true
retries = 2

[[task]]
id = "after"
kind = "test.probe"
needs = ["buggy"]

[[task]]
id = "other"
kind = "test.probe"
sleep = "1s"
"#,
    );
    let r = f.run(req()).await;
    assert_eq!(r.state, RunState::Failed);
    assert_eq!(f.engine.store.run(&r.run_id).unwrap().unwrap().state, RunState::Failed);
    assert_eq!(count(f.name(), "buggy"), 1, "a panic is a bug: no retries");
    assert_eq!(f.task_state(&r.run_id, "buggy"), Some((TaskState::Failed, 1)));
    assert_eq!(f.attempt_states(&r.run_id, "buggy"), [(1, TaskState::Failed)]);
    let error = r
        .tasks
        .iter()
        .find(|t| t.task == "buggy")
        .unwrap()
        .error
        .clone()
        .unwrap();
    assert!(error.contains("panicked") && error.contains("probe panics"), "{error}");
    assert_eq!(f.task_state(&r.run_id, "after"), Some((TaskState::UpstreamFailed, 0)));
    assert_eq!(f.task_state(&r.run_id, "other"), Some((TaskState::Success, 1)));
}

#[tokio::test(start_paused = true)]
async fn a_skipped_task_skips_its_downstream_and_the_run_succeeds() {
    let f = fixture(
        "skipped",
        r#"
[[task]]
id = "a"
kind = "test.probe"
skip = true
retries = 2

[[task]]
id = "b"
kind = "test.probe"
needs = ["a"]

[[task]]
id = "c"
kind = "test.probe"
needs = ["b"]

[[task]]
id = "d"
kind = "test.probe"
"#,
    );
    let r = f.run(req()).await;
    assert_eq!(r.state, RunState::Success);
    assert_eq!(count(f.name(), "a"), 1, "nothing to do is not worth a retry");
    assert_eq!(f.attempt_states(&r.run_id, "a"), [(1, TaskState::Skipped)]);
    for t in ["b", "c"] {
        assert_eq!(f.task_state(&r.run_id, t), Some((TaskState::Skipped, 0)), "{t}");
        assert_eq!(count(f.name(), t), 0, "{t}");
    }
    assert_eq!(f.task_state(&r.run_id, "d"), Some((TaskState::Success, 1)));
    let tasks = f.engine.store.tasks(&r.run_id).unwrap();
    let error = |t: &str| tasks.iter().find(|x| x.task_id == t).unwrap().error.clone();
    assert_eq!(error("b").as_deref(), Some("upstream task `a` was skipped"));
    assert_eq!(error("c").as_deref(), Some("upstream task `b` was skipped"));
    // Skipped is done for the date.
    assert!(f.run(req()).await.already_succeeded);
}

// ---- config errors at run time ----

#[tokio::test(start_paused = true)]
async fn a_config_error_at_run_time_fails_at_once_without_retries() {
    let f = fixture(
        "config_error",
        r#"
[defaults]
retries = 3
retry_delay = "1h"

[vars]
wait = "1s"

[[task]]
id = "unset_env"
kind = "test.probe"
note = "{{ env.NIGHTJAR_TEST_SURELY_UNSET_VARIABLE }}"

[[task]]
id = "bad_value"
kind = "test.probe"
sleep = "{{ vars.wait }}"
"#,
    );
    let mut r = req();
    r.vars.insert("wait".into(), "a while".into());
    let t0 = Instant::now();
    let report = f.run(r).await;
    assert_eq!(report.state, RunState::Failed);
    assert_eq!(Instant::now() - t0, Duration::ZERO, "no retry waits");
    for t in ["unset_env", "bad_value"] {
        assert_eq!(count(f.name(), t), 0, "{t} never ran");
        assert_eq!(f.attempt_states(&report.run_id, t), [(1, TaskState::Failed)], "{t}");
    }
    let error = |t: &str| {
        report
            .tasks
            .iter()
            .find(|x| x.task == t)
            .unwrap()
            .error
            .clone()
            .unwrap()
    };
    let e = error("unset_env");
    assert!(e.contains("cannot render `note`"), "{e}");
    assert!(e.contains("undefined"), "{e}");
    // `--var wait="a while"` renders fine, but is no duration.
    let e = error("bad_value");
    assert!(e.contains("bad config for step kind `test.probe`"), "{e}");
}
