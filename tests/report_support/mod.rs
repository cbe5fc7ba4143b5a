//! Shared by the tests/report_*.rs files: a small project whose DAG
//! produces every kind of task event, the JSON schema of the documents, and
//! a sink that keeps what it gets (and can be told to fail).

#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tempfile::TempDir;

use nightjar::engine::{Engine, RunReport, RunRequest, parse_logical_time};
use nightjar::report::{EventDoc, Sink};
use nightjar::spec::{Dag, Project, dag};
use nightjar::steps::Registry;
use nightjar::store::Store;

/// A DAG whose run fails and shows every task event: an extract with rows,
/// a task that succeeds on its second attempt, a failing task, one
/// downstream of it (upstream_failed), and one skipped for lack of input.
pub fn mixed_dag(name: &str) -> String {
    format!(
        r#"
name = "{name}"
schedule = "0 2 * * *"
timezone = "Europe/London"

[defaults]
retry_delay = "10ms"

[[task]]
id = "orders"
kind = "extract.file"
path = "in/orders.csv"
format = "csv"

[[task]]
id = "flaky"
kind = "shell"
retries = 2
command = "test -f flaky.ok || {{ touch flaky.ok; echo first attempt fails >&2; exit 3; }}"

[[task]]
id = "broken"
kind = "shell"
command = "echo about to fail; exit 7"
needs = ["orders"]

[[task]]
id = "after_broken"
kind = "shell"
command = "echo never"
needs = ["broken"]

[[task]]
id = "maybe"
kind = "extract.file"
path = "in/absent-{{{{ ds }}}}.csv"
format = "csv"
if_missing = "skip"
"#
    )
}

/// A DAG of shell tasks that succeeds.
pub fn ok_dag(name: &str, extra: &str) -> String {
    format!(
        r#"
name = "{name}"
schedule = "0 2 * * *"
timezone = "Europe/London"
{extra}

[[task]]
id = "a"
kind = "shell"
command = "echo step a"

[[task]]
id = "b"
kind = "shell"
command = "echo step b; echo more of b"
needs = ["a"]
"#
    )
}

pub struct Fixture {
    pub dir: TempDir,
    pub project: Project,
    pub dag: Dag,
    pub store: Arc<Store>,
}

/// A project in a temporary folder holding one DAG (and a small CSV).
pub fn fixture(dag_toml: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dags")).unwrap();
    std::fs::create_dir_all(dir.path().join("in")).unwrap();
    std::fs::write(
        dir.path().join("in/orders.csv"),
        "InvoiceNo,Quantity,Country\n536365,6,United Kingdom\n536366,2,France\n536367,32,EIRE\n",
    )
    .unwrap();
    let path = dir.path().join("dags/test.toml");
    std::fs::write(&path, dag_toml).unwrap();
    let project = Project::load(dir.path()).unwrap();
    let (dag, _) = dag::load(&path, &project, &Registry::builtin()).unwrap_or_else(|d| panic!("bad test DAG:\n{d}"));
    let store = Arc::new(Store::open(&project.state_dir().join("state.db")).unwrap());
    Fixture {
        dir,
        project,
        dag,
        store,
    }
}

impl Fixture {
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn engine(&self) -> Engine {
        let mut e = Engine::new(self.project.clone(), self.store.clone());
        e.parallelism = 2;
        e
    }

    pub async fn run(&self, engine: &Engine, date: &str) -> RunReport {
        engine
            .run(&self.dag, RunRequest::new(parse_logical_time(date).unwrap()))
            .await
            .unwrap()
    }
}

/// The event schema, compiled.
pub fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/events.schema.json")).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).expect("docs/events.schema.json is a valid schema")
}

/// Panics unless the JSON text is a valid event document.
pub fn assert_valid(schema: &jsonschema::Validator, json: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
    let errors: Vec<String> = schema
        .iter_errors(&v)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "event does not match the schema: {errors:?}\n{json}");
    v
}

/// Keeps every event it receives; fails while `down` is set.
pub struct Recorder {
    pub name: String,
    pub got: Mutex<Vec<EventDoc>>,
    pub down: AtomicBool,
    pub calls: AtomicUsize,
    pub delay: std::time::Duration,
}

impl Recorder {
    pub fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            got: Mutex::new(Vec::new()),
            down: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
            delay: std::time::Duration::ZERO,
        })
    }

    pub fn ids(&self) -> Vec<String> {
        self.got.lock().unwrap().iter().map(|d| d.id.clone()).collect()
    }

    pub fn kinds(&self) -> Vec<String> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|d| match &d.task {
                Some(t) => format!("{}:{t}", d.kind.as_str()),
                None => d.kind.as_str().to_string(),
            })
            .collect()
    }
}

#[async_trait]
impl Sink for Recorder {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn batch_size(&self) -> usize {
        3
    }

    async fn send(&self, batch: &[EventDoc]) -> anyhow::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        if self.down.load(Ordering::SeqCst) {
            anyhow::bail!("recorder is down");
        }
        self.got.lock().unwrap().extend(batch.iter().cloned());
        Ok(())
    }
}

/// A TCP forwarder to a real server that can be switched off and on: while
/// off, it closes every connection at once (and cuts the open ones), as a
/// stopped server would look to a client.
pub struct Switch {
    pub addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Switch {
    pub async fn to(target: &str) -> Switch {
        let target: String = target.trim_start_matches("http://").trim_end_matches('/').to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Default::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().unwrap().push(h.abort_handle());
            }
        });
        Switch {
            addr,
            up,
            conns,
            accept,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_up(&self, up: bool) {
        self.up.store(up, Ordering::SeqCst);
        if !up {
            for c in self.conns.lock().unwrap().drain(..) {
                c.abort();
            }
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// AWS options pointing at `endpoint` with moto's dummy credentials.
pub fn aws_at(endpoint: &str) -> nightjar::aws::AwsOptions {
    nightjar::aws::AwsOptions {
        region: Some("us-east-1".into()),
        endpoint_url: Some(endpoint.to_string()),
        static_credentials: Some(("testing".into(), "testing".into())),
    }
}

/// A unique name for a queue, log group, ...
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}
