//! End to end on the moto server: runs go through Step Functions (moto's
//! state machine interpreter, `execute_state_machine` enabled), tasks
//! through SQS task tokens to real `nightjar worker` processes, artifacts
//! into moto's S3.
//!
//! Needs moto >= 5.2.5: older versions fail every execution after the
//! first one of a region (getmoto/moto#10077).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nightjar::store::{RunState, Store, TaskState};

const BIN: &str = env!("CARGO_BIN_EXE_nightjar");

fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{tag}-{}-{nanos}", std::process::id())
}

/// `POST {endpoint}/moto-api/config`: let moto run state machines.
fn enable_execution(endpoint: &str) {
    let hostport = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let body = r#"{"stepfunctions": {"execute_state_machine": true}}"#;
    let mut s = std::net::TcpStream::connect(hostport).expect("connecting to moto");
    write!(
        s,
        "POST /moto-api/config HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 20") || resp.starts_with("HTTP/1.0 20"),
        "{resp}"
    );
}

/// The bucket, queue and state machines of one test, deleted when dropped.
struct Aws {
    endpoint: String,
    bucket: String,
    queue: String,
    /// State machines of this test are named `<prefix>-<dag>`.
    prefix: String,
    s3: aws_sdk_s3::Client,
    sqs: aws_sdk_sqs::Client,
}

impl Drop for Aws {
    fn drop(&mut self) {
        let Ok(rt) = tokio::runtime::Runtime::new() else { return };
        rt.block_on(async {
            if let Ok(l) = self.s3.list_objects_v2().bucket(&self.bucket).send().await {
                for o in l.contents() {
                    if let Some(k) = o.key() {
                        let _ = self.s3.delete_object().bucket(&self.bucket).key(k).send().await;
                    }
                }
            }
            let _ = self.s3.delete_bucket().bucket(&self.bucket).send().await;
            let _ = self.sqs.delete_queue().queue_url(&self.queue).send().await;
            let sfn = aws_sdk_sfn::Client::new(&nightjar::aws::sdk_config(&nightjar::testenv::aws_options()).await);
            if let Ok(l) = sfn.list_state_machines().send().await {
                for m in l.state_machines() {
                    if m.name().starts_with(&self.prefix) {
                        let _ = sfn
                            .delete_state_machine()
                            .state_machine_arn(m.state_machine_arn())
                            .send()
                            .await;
                    }
                }
            }
        });
    }
}

fn setup(tag: &str) -> Aws {
    let endpoint = nightjar::testenv::aws_endpoint();
    enable_execution(&endpoint);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let opts = nightjar::testenv::aws_options();
        let s3 = nightjar::aws::s3_client(&opts).await;
        let sqs = aws_sdk_sqs::Client::new(&nightjar::aws::sdk_config(&opts).await);
        let bucket = unique(tag).to_lowercase().replace('_', "-");
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        let queue = sqs
            .create_queue()
            .queue_name(unique(tag))
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string();
        Aws {
            endpoint,
            bucket,
            queue,
            prefix: unique(tag),
            s3,
            sqs,
        }
    })
}

/// A project with env `aws` (Step Functions, S3 artifacts) and `local`.
fn project(aws: &Aws, tag: &str, dag: &str) -> tempfile::TempDir {
    project_with_heartbeat(aws, tag, dag, "5s")
}

/// The same, with the tasks' heartbeat timeout: a test that compares
/// attempts with a local run gives the workers room, since on a loaded
/// machine a live worker's heartbeat can come late and Step Functions then
/// retries the task (an extra attempt the local run does not have).
fn project_with_heartbeat(aws: &Aws, tag: &str, dag: &str, heartbeat: &str) -> tempfile::TempDir {
    let prefix = format!("{}-{tag}", aws.prefix);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dags")).unwrap();
    std::fs::write(
        dir.path().join("nightjar.toml"),
        format!(
            "default_env = \"local\"\n\n[env.local]\n\n[env.aws]\ndispatch = \"stepfunctions\"\nartifacts = \"s3://{}/art/\"\n\
             sfn = {{ resource = \"sqs\", queue = \"{}\", heartbeat = \"{heartbeat}\", role_arn = \"arn:aws:iam::123456789012:role/nightjar\", \
             name_prefix = \"{}-\", region = \"us-east-1\", endpoint_url = \"{}\", poll = \"300ms\" }}\n",
            aws.bucket,
            aws.queue,
            prefix,
            aws.endpoint
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("dags").join("flow.toml"), dag).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("2010-12-01.csv"),
        "id,amount,country\n1,10,FR\n2,-3,FR\n3,7,UK\n4,12,UK\n5,0,DE\n",
    )
    .unwrap();
    dir
}

fn command(dir: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.current_dir(dir)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env_remove("NIGHTJAR_ENV");
    c
}

/// A `nightjar worker` process, killed when dropped; its stderr lines come
/// through `lines`.
struct Worker {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Worker {
    fn spawn(dir: &Path, queue: &str) -> Worker {
        let mut child = command(dir)
            .args(["worker", "--queue", queue, "--env", "aws", "--concurrency", "4"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning nightjar worker");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Worker { child, lines: rx }
    }

    /// Waits for a stderr line containing `text`.
    fn wait_for(&self, text: &str, limit: Duration) -> String {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200))
                && l.contains(text)
            {
                return l;
            }
        }
        panic!("the worker never printed `{text}`");
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(dir: &Path, env: &str, extra: &[&str]) -> (bool, String) {
    let mut c = command(dir);
    c.args(["run", "flow", "--date", "2010-12-01", "--env", env])
        .args(extra);
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn store(dir: &Path) -> Store {
    Store::open(&dir.join(".nightjar").join("state.db")).unwrap()
}

const DIAMOND: &str = r#"
name = "flow"
[defaults]
retries = 2
retry_delay = "1s"
timeout = "2m"

[vars]
counter = "unset"

[[task]]
id = "extract"
kind = "extract.file"
path = "data/{{ ds }}.csv"
format = "csv"

[[task]]
id = "positive"
kind = "transform.clean"
filter = ["amount > 0"]
needs = ["extract"]

[[task]]
id = "uk"
kind = "transform.clean"
filter = ["country = 'UK'"]
needs = ["extract"]

[[task]]
id = "report"
kind = "shell"
command = "echo report for {{ ds }}"
needs = ["positive", "uk"]

[[task]]
id = "flaky"
kind = "shell"
command = "n=$(cat {{ vars.counter }} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {{ vars.counter }}; echo attempt $n; [ $n -ge 3 ]"
"#;

#[test]
fn a_diamond_runs_through_step_functions_like_a_local_run() {
    let aws = setup("nj-diamond");
    let dir = project_with_heartbeat(&aws, "diamond", DIAMOND, "30s");
    let counter = dir.path().join("flaky-sfn.count");
    let w1 = Worker::spawn(dir.path(), &aws.queue);
    let _w2 = Worker::spawn(dir.path(), &aws.queue);
    let (ok, out) = run(dir.path(), "aws", &["--var", &format!("counter={}", counter.display())]);
    assert!(ok, "the Step Functions run failed:\n{out}");
    drop(w1);

    // The same DAG run locally, in another copy of the project.
    let local = project(&aws, "diamond-local", DIAMOND);
    let counter_local = local.path().join("flaky-local.count");
    let (ok, out) = run(
        local.path(),
        "local",
        &["--var", &format!("counter={}", counter_local.display())],
    );
    assert!(ok, "the local run failed:\n{out}");

    let sfn_store = store(dir.path());
    let local_store = store(local.path());
    let run_id = "flow@2010-12-01";
    assert_eq!(sfn_store.run(run_id).unwrap().unwrap().state, RunState::Success);
    let summary = |s: &Store| {
        let mut v: Vec<(String, TaskState, u32, Option<u64>)> = s
            .tasks(run_id)
            .unwrap()
            .into_iter()
            .map(|t| (t.task_id.clone(), t.state, t.attempt, t.metrics.map(|m| m.rows_out)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    let got = summary(&sfn_store);
    assert_eq!(
        got,
        summary(&local_store),
        "Step Functions history differs from the local run"
    );
    // Failing twice, then succeeding: three attempts, the first two failed.
    let attempts = sfn_store.attempts(run_id, "flaky").unwrap();
    let states: Vec<TaskState> = attempts.iter().map(|a| a.state).collect();
    assert_eq!(states, [TaskState::Failed, TaskState::Failed, TaskState::Success]);
    assert_eq!(got.iter().find(|t| t.0 == "positive").unwrap().3, Some(3));

    // Outputs landed in (moto's) S3, and the history points at them.
    let outputs = sfn_store
        .tasks(run_id)
        .unwrap()
        .into_iter()
        .find(|t| t.task_id == "uk")
        .unwrap()
        .outputs;
    assert!(
        outputs[0].uri.starts_with(&format!("s3://{}/art/flow/", aws.bucket)),
        "{outputs:?}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let keys: Vec<String> = rt.block_on(async {
        let l = aws
            .s3
            .list_objects_v2()
            .bucket(&aws.bucket)
            .prefix("art/")
            .send()
            .await
            .unwrap();
        l.contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    });
    for task in ["extract", "positive", "uk"] {
        let key = format!("art/flow/{run_id}/{task}/default.parquet");
        assert!(keys.contains(&key), "{key} missing from S3: {keys:?}");
    }
    // `logs` works as for a local run.
    let logs = command(dir.path()).args(["logs", run_id, "report"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("report for 2010-12-01"),
        "{}",
        String::from_utf8_lossy(&logs.stdout)
    );
}

#[test]
fn a_permanent_failure_fails_the_execution_after_the_independent_branch() {
    let aws = setup("nj-fail");
    let dag = r#"
name = "flow"
[defaults]
retries = 1
retry_delay = "1s"

[[task]]
id = "broken"
kind = "shell"
command = "echo broken >&2; exit 3"

[[task]]
id = "after_broken"
kind = "shell"
command = "echo never"
needs = ["broken"]

[[task]]
id = "slow_ok"
kind = "shell"
command = "sleep 3; echo fine"
"#;
    let dir = project(&aws, "fail", dag);
    let _w = Worker::spawn(dir.path(), &aws.queue);
    let (ok, out) = run(dir.path(), "aws", &[]);
    assert!(!ok, "the run should fail:\n{out}");
    let s = store(dir.path());
    let run_id = "flow@2010-12-01";
    assert_eq!(s.run(run_id).unwrap().unwrap().state, RunState::Failed);
    let tasks: std::collections::BTreeMap<String, (TaskState, u32, Option<String>)> = s
        .tasks(run_id)
        .unwrap()
        .into_iter()
        .map(|t| (t.task_id, (t.state, t.attempt, t.error)))
        .collect();
    assert_eq!(tasks["slow_ok"].0, TaskState::Success, "{tasks:?}");
    assert_eq!(tasks["broken"].0, TaskState::Failed);
    assert_eq!(tasks["broken"].1, 2, "one retry: two attempts");
    assert_eq!(tasks["after_broken"].0, TaskState::UpstreamFailed);
}

#[test]
fn a_killed_workers_task_is_retried() {
    let aws = setup("nj-kill");
    let dag = r#"
name = "flow"
[defaults]
# Spare retries: on a loaded machine a live worker's heartbeat may come late too.
retries = 3
retry_delay = "1s"

[[task]]
id = "slow"
kind = "shell"
command = "sleep 4; echo done"
"#;
    let dir = project(&aws, "kill", dag);
    let first = Worker::spawn(dir.path(), &aws.queue);
    let runner = {
        let d: PathBuf = dir.path().to_path_buf();
        std::thread::spawn(move || run(&d, "aws", &[]))
    };
    first.wait_for("slow attempt 1: started", Duration::from_secs(60));
    drop(first); // SIGKILL mid-step: no more heartbeats
    let _second = Worker::spawn(dir.path(), &aws.queue);
    let (ok, out) = runner.join().unwrap();
    assert!(ok, "the run should succeed on the second worker:\n{out}");
    let s = store(dir.path());
    let attempts = s.attempts("flow@2010-12-01", "slow").unwrap();
    assert!(attempts.len() >= 2, "{attempts:?}");
    assert_eq!(attempts[0].state, TaskState::Failed);
    assert!(
        attempts[0].error.as_deref().unwrap_or_default().contains("Timeout"),
        "{attempts:?}"
    );
    assert_eq!(attempts.last().unwrap().state, TaskState::Success);
}

#[test]
fn deploy_is_idempotent_and_tagged_with_the_definition_hash() {
    let aws = setup("nj-deploy");
    let dir = project(&aws, "deploy", DIAMOND);
    let deploy = || {
        let out = command(dir.path())
            .args(["sfn", "deploy", "flow", "--env", "aws"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        text
    };
    assert!(deploy().starts_with("created "));
    assert!(deploy().starts_with("unchanged "));
    let path = dir.path().join("dags").join("flow.toml");
    let changed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("retries = 2", "retries = 4");
    std::fs::write(&path, changed).unwrap();
    let updated = deploy();
    assert!(updated.starts_with("updated "), "{updated}");

    // The tag holds the hash of what is deployed now.
    let arn = updated
        .trim()
        .rsplit('(')
        .next()
        .unwrap()
        .trim_end_matches(')')
        .to_string();
    let project = nightjar::spec::Project::load(dir.path()).unwrap();
    let (dag, _) = nightjar::spec::dag::load(&path, &project, &nightjar::steps::Registry::builtin()).unwrap();
    let settings = project.envs["aws"].sfn.clone().unwrap();
    let compiled = nightjar::sfn::compile(&dag, &settings).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let tags = rt.block_on(async {
        let client = aws_sdk_sfn::Client::new(&nightjar::aws::sdk_config(&nightjar::testenv::aws_options()).await);
        client.list_tags_for_resource().resource_arn(&arn).send().await.unwrap()
    });
    let hash = tags
        .tags()
        .iter()
        .find(|t| t.key() == Some(nightjar::sfn::deploy::HASH_TAG))
        .and_then(|t| t.value())
        .unwrap()
        .to_string();
    assert_eq!(hash, compiled.content_hash);
}

#[test]
fn a_skipped_task_skips_its_downstream_through_step_functions() {
    let aws = setup("nj-skip");
    let dag = r#"
name = "flow"

[[task]]
id = "extract"
kind = "extract.file"
path = "data/{{ ds }}-missing.csv"
if_missing = "skip"

[[task]]
id = "clean"
kind = "transform.clean"
dedupe = true
needs = ["extract"]

[[task]]
id = "other"
kind = "shell"
command = "echo other"
"#;
    let dir = project(&aws, "skip", dag);
    let _w = Worker::spawn(dir.path(), &aws.queue);
    let (ok, out) = run(dir.path(), "aws", &[]);
    assert!(ok, "{out}");
    let s = store(dir.path());
    let states: std::collections::BTreeMap<String, TaskState> = s
        .tasks("flow@2010-12-01")
        .unwrap()
        .into_iter()
        .map(|t| (t.task_id, t.state))
        .collect();
    assert_eq!(states["extract"], TaskState::Skipped, "{states:?}");
    assert_eq!(states["clean"], TaskState::Skipped, "{states:?}");
    assert_eq!(states["other"], TaskState::Success, "{states:?}");
    assert_eq!(s.run("flow@2010-12-01").unwrap().unwrap().state, RunState::Success);
}
