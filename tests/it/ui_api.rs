//! The web UI's API and pages over a real project: real runs (one fails
//! until a marker file exists), the server on an ephemeral port, every
//! endpoint hit over HTTP; the token off loopback, CSRF, and actions that
//! must run and be recorded.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use nightjar::spec::Project;
use nightjar::store::Store;
use nightjar::ui::{self, UiOptions};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A secret the failing task prints to its log: no page may show it.
const SECRET: &str = "pa55-word-never-shown";
const TOKEN: &str = "ui-test-token-0123456789";

fn secret_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: set once, before any server (the only reader) starts.
        unsafe { std::env::set_var("NJ_UI_TEST_PASSWORD", SECRET) };
    });
}

const FLAKY: &str = r#"
name = "flaky"
description = "fails until a marker file exists"
schedule = "0 2 * * *"
timezone = "Europe/London"
pii = ["email"]

[vars]
marker = "marker.txt"

[[task]]
id = "extract"
kind = "extract.file"
path = "data/people.csv"
format = "csv"
max_bad_rows = 10

[task.columns]
email = "string"
age = "int64"

[[task]]
id = "check"
kind = "shell"
command = "echo checking {{ ds }} with $NJ_UI_TEST_PASSWORD; test -f {{ vars.marker }} || { echo 'marker missing' >&2; exit 3; }"
needs = ["extract"]

[[task]]
id = "load"
kind = "shell"
command = "echo loaded {{ ds }}"
needs = ["check"]
"#;

const BROKEN: &str = r#"
name = "broken"
schedule = "0 2 * * *"

[[task]]
id = "a"
kind = "no_such_kind"
"#;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        secret_env();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("dags")).unwrap();
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::write(root.join("dags/flaky.toml"), FLAKY).unwrap();
        std::fs::write(root.join("dags/broken.toml"), BROKEN).unwrap();
        std::fs::write(
            root.join("data/people.csv"),
            "email,age\nann@example.com,34\nbob@example.org,not-a-number\ncy@example.net,51\n",
        )
        .unwrap();
        Self { dir }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_nightjar"))
            .args(args)
            .current_dir(self.root())
            .env("NJ_UI_TEST_PASSWORD", SECRET)
            .env_remove("NIGHTJAR_ENV")
            .output()
            .unwrap()
    }

    fn marker(&self) -> PathBuf {
        self.root().join("marker.txt")
    }

    fn store(&self) -> Arc<Store> {
        Arc::new(Store::open(&self.root().join(".nightjar/state.db")).unwrap())
    }

    async fn serve(&self, bind: &str, token: Option<&str>) -> (String, CancellationToken) {
        let project = Project::load(self.root()).unwrap();
        let opts = UiOptions {
            bind: bind.parse().unwrap(),
            dags_dir: self.root().join("dags"),
            token: token.map(str::to_string),
            env: None,
        };
        let stop = CancellationToken::new();
        let running = ui::start(project, self.store(), opts, stop.clone()).await.unwrap();
        (format!("http://127.0.0.1:{}", running.addr.port()), stop)
    }
}

/// A project with a failed run of 2026-01-01 (check fails, load
/// upstream_failed, extract quarantines one row).
fn failed_project() -> Fixture {
    let f = Fixture::new();
    let out = f.cli(&["run", "flaky", "--date", "2026-01-01"]);
    assert!(!out.status.success(), "the first run must fail: {out:?}");
    f
}

async fn get_json(c: &reqwest::Client, url: &str) -> Value {
    let r = c.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "GET {url}");
    r.json().await.unwrap()
}

async fn get_text(c: &reqwest::Client, url: &str) -> String {
    let r = c.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "GET {url}");
    r.text().await.unwrap()
}

async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(60) {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

const RUN: &str = "flaky@2026-01-01";
const RUN_URL: &str = "flaky@2026-01-01";

#[tokio::test(flavor = "multi_thread")]
async fn every_read_endpoint_answers_and_hides_secrets() {
    let f = failed_project();
    let (base, stop) = f.serve("127.0.0.1:0", None).await;
    let c = reqwest::Client::new();
    let mut seen = String::new();

    // DAG list: schedule in words with zone and next fire, paused, runs,
    // and the broken file's errors.
    let dags = get_json(&c, &format!("{base}/api/dags")).await;
    seen += &dags.to_string();
    let flaky = dags["dags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "flaky")
        .unwrap();
    assert_eq!(flaky["schedule"]["cron"], "0 2 * * *");
    assert_eq!(flaky["schedule"]["tz"], "Europe/London");
    assert!(flaky["schedule"]["text"].as_str().unwrap().contains("02:00"), "{flaky}");
    assert!(flaky["schedule"]["next_fire"].is_string());
    assert_eq!(flaky["paused"], false);
    assert_eq!(flaky["recent"][0]["state"], "failed");
    let invalid = &dags["invalid"][0];
    assert!(invalid["file"].as_str().unwrap().ends_with("broken.toml"), "{dags}");
    assert!(
        invalid["errors"].as_str().unwrap().contains("no_such_kind"),
        "{invalid}"
    );
    assert_eq!(dags["csrf"].as_str().unwrap().len(), 64);

    let dag = get_json(&c, &format!("{base}/api/dags/flaky")).await;
    assert_eq!(dag["tasks"].as_array().unwrap().len(), 3);
    assert_eq!(dag["next_fires"].as_array().unwrap().len(), 5);

    let runs = get_json(&c, &format!("{base}/api/dags/flaky/runs?limit=5")).await;
    assert_eq!(runs[0]["run_id"], RUN);

    // The grid: one column, tasks in graph order, cells with hover text.
    let grid = get_json(&c, &format!("{base}/api/dags/flaky/grid")).await;
    assert_eq!(grid["columns"][0]["logical_date"], "2026-01-01");
    let rows: Vec<&str> = grid["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["task"].as_str().unwrap())
        .collect();
    assert_eq!(rows, ["extract", "check", "load"]);
    let check = &grid["rows"][1]["cells"][0];
    assert_eq!(check["state"], "failed");
    assert_eq!(check["attempts"], 1);
    assert!(check["title"].as_str().unwrap().contains("attempt 1"));
    assert_eq!(grid["rows"][0]["cells"][0]["rows_out"], 2);

    let run = get_json(&c, &format!("{base}/api/runs/{RUN_URL}")).await;
    seen += &run.to_string();
    assert_eq!(run["state"], "failed");
    assert_eq!(run["can_rerun"], true);
    let load = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["task_id"] == "load")
        .unwrap();
    assert_eq!(load["state"], "upstream_failed");

    // The task: error, attempts, metrics, config as rendered, quarantine.
    let task = get_json(&c, &format!("{base}/api/runs/{RUN_URL}/tasks/check")).await;
    seen += &task.to_string();
    assert!(task["task"]["error"].as_str().unwrap().contains("exit"), "{task}");
    assert_eq!(task["attempts"].as_array().unwrap().len(), 1);
    let cmd = task["config"]["command"].as_str().unwrap();
    assert!(cmd.contains("echo checking 2026-01-01"), "rendered for the run: {cmd}");
    let extract = get_json(&c, &format!("{base}/api/runs/{RUN_URL}/tasks/extract")).await;
    assert_eq!(extract["metrics"]["rows_quarantined"], 1, "{extract}");
    let q = get_json(&c, &format!("{base}/api/runs/{RUN_URL}/tasks/extract/quarantine")).await;
    seen += &q.to_string();
    assert_eq!(q["rows"].as_array().unwrap().len(), 1, "{q}");
    assert_eq!(q["rows"][0]["row"]["email"], "<redacted>", "PII masked: {q}");
    assert_eq!(q["rows"][0]["row"]["age"], "not-a-number");

    // Logs from an offset: whole lines, and the secret masked.
    let log = get_json(&c, &format!("{base}/api/runs/{RUN_URL}/tasks/check/logs")).await;
    let text = log["text"].as_str().unwrap();
    seen += text;
    assert!(text.contains("checking 2026-01-01 with"), "{text}");
    assert!(text.contains("marker missing"), "{text}");
    assert!(text.ends_with('\n'));
    assert_eq!(log["running"], false);
    let size = log["size"].as_u64().unwrap();
    assert_eq!(log["next_offset"].as_u64().unwrap(), size);
    let first_line = text.find('\n').unwrap() as u64 + 1;
    let rest = get_json(
        &c,
        &format!("{base}/api/runs/{RUN_URL}/tasks/check/logs?offset={first_line}"),
    )
    .await;
    assert_eq!(rest["text"].as_str().unwrap(), &text[first_line as usize..]);
    let end = get_json(&c, &format!("{base}/api/runs/{RUN_URL}/tasks/check/logs?offset={size}")).await;
    assert_eq!(end["text"], "");

    let plan = get_json(
        &c,
        &format!("{base}/api/dags/flaky/backfill-plan?from=2025-12-31&to=2026-01-02"),
    )
    .await;
    let actions: Vec<&str> = plan["dates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["run", "resume", "run"]);
    assert_eq!(plan["counts"]["resume"], 1);

    let audit = get_json(&c, &format!("{base}/api/audit?dag=flaky")).await;
    assert_eq!(audit[0]["action"], "run", "the CLI run is recorded: {audit}");
    assert!(audit[0]["actor"].as_str().unwrap().starts_with("cli:"));

    let spec = get_json(&c, &format!("{base}/api/openapi.json")).await;
    assert_eq!(spec["openapi"], "3.0.3");

    // Not found and bad input answer with JSON errors.
    let r = c.get(format!("{base}/api/runs/nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(
        r.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("nope")
    );
    let r = c
        .get(format!(
            "{base}/api/dags/flaky/backfill-plan?from=2026-01-05&to=2026-01-01"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // Pages.
    let list = get_text(&c, &format!("{base}/")).await;
    assert!(
        list.contains("flaky") && list.contains("Europe/London") && list.contains("no_such_kind"),
        "{list}"
    );
    assert!(list.contains(r#"class="sq s-failed""#));
    let grid_page = get_text(&c, &format!("{base}/dags/flaky")).await;
    assert!(grid_page.contains(r#"class="cell s-failed""#), "{grid_page}");
    assert!(grid_page.contains("/runs/flaky@2026-01-01/tasks/check"));
    let graph = get_text(&c, &format!("{base}/dags/flaky/graph")).await;
    assert!(
        graph.contains("<svg") && graph.contains(r#"class="node s-failed" data-task="check""#),
        "{graph}"
    );
    assert!(graph.contains(r#"class="node s-upstream_failed" data-task="load""#));
    let run_page = get_text(&c, &format!("{base}/runs/{RUN_URL}")).await;
    assert!(run_page.contains("rerun-failed") && run_page.contains(r#"class="gantt""#));
    let task_page = get_text(&c, &format!("{base}/runs/{RUN_URL}/tasks/check")).await;
    assert!(task_page.contains("marker missing") && task_page.contains("task-error"));
    let extract_page = get_text(&c, &format!("{base}/runs/{RUN_URL}/tasks/extract")).await;
    assert!(extract_page.contains("&lt;redacted&gt;") && !extract_page.contains("bob@example.org"));
    let bf = get_text(&c, &format!("{base}/dags/flaky/backfill?from=2025-12-31&to=2026-01-02")).await;
    assert!(bf.contains("confirm-backfill") && bf.contains("resume"));
    for p in [&list, &grid_page, &graph, &run_page, &task_page, &extract_page, &bf] {
        seen += p;
    }
    let js = c.get(format!("{base}/static/app.js")).send().await.unwrap();
    assert_eq!(js.status(), StatusCode::OK);
    assert_eq!(
        c.get(format!("{base}/static/app.css")).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        c.get(format!("{base}/nope")).send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    assert!(!seen.contains(SECRET), "a page or answer showed the secret");
    assert!(seen.contains("••••••"), "the secret is shown masked");
    assert!(!seen.contains("ann@example.com") && !seen.contains("bob@example.org"));
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_need_the_csrf_token() {
    let f = failed_project();
    let (base, stop) = f.serve("127.0.0.1:0", None).await;
    let c = reqwest::Client::new();
    let url = format!("{base}/api/dags/flaky/pause");
    // No token, a wrong token, a form without its field: 403, nothing done.
    let r = c.post(&url).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("CSRF"));
    let r = c
        .post(&url)
        .header("x-csrf-token", "0".repeat(64))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = c
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A page of another site rebinding its name to 127.0.0.1 gets nothing.
    let r = c
        .get(format!("{base}/api/dags"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::MISDIRECTED_REQUEST);
    // GET is not an action.
    assert_eq!(
        c.get(&url).send().await.unwrap().status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    assert!(f.store().paused().unwrap().is_empty());
    assert!(
        f.store()
            .audit(Some("flaky"), 10)
            .unwrap()
            .iter()
            .all(|a| a.action != "pause")
    );
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn actions_run_and_are_recorded() {
    let f = failed_project();
    let (base, stop) = f.serve("127.0.0.1:0", None).await;
    let c = reqwest::Client::new();
    let csrf = get_json(&c, &format!("{base}/api/dags")).await["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    let post = |path: &str, body: Value| {
        c.post(format!("{base}{path}"))
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
    };

    // Pause and unpause.
    let r = post("/api/dags/flaky/pause", json!({})).await.unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(f.store().paused().unwrap().contains("flaky"));
    let dags = get_json(&c, &format!("{base}/api/dags")).await;
    assert_eq!(dags["dags"][0]["paused"], true);
    post("/api/dags/flaky/unpause", json!({})).await.unwrap();
    assert!(f.store().paused().unwrap().is_empty());

    // Rerun failed while the marker is missing: fails again, attempt 2.
    let r = post(&format!("/api/runs/{RUN_URL}/rerun-failed"), json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
    eventually("the rerun to fail again", async || {
        let t = f.store().tasks(RUN).unwrap();
        t.iter()
            .any(|t| t.task_id == "check" && t.attempt == 2 && t.state.as_str() == "failed")
            && f.store().run(RUN).unwrap().unwrap().state.as_str() == "failed"
    })
    .await;
    // With the marker: the run turns green.
    std::fs::write(f.marker(), "ok").unwrap();
    let r = post(&format!("/api/runs/{RUN_URL}/rerun-failed"), json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    eventually("the rerun to succeed", async || {
        f.store().run(RUN).unwrap().unwrap().state.as_str() == "success"
    })
    .await;
    // A succeeded run has nothing to rerun.
    let r = post(&format!("/api/runs/{RUN_URL}/rerun-failed"), json!({}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // Clear check and downstream, run again right away.
    let r = post(
        &format!("/api/runs/{RUN_URL}/tasks/check/clear"),
        json!({ "downstream": true, "run": true }),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["cleared"], json!(["check", "load"]));
    eventually("the cleared tasks to run again", async || {
        let run = f.store().run(RUN).unwrap().unwrap();
        let t = f.store().tasks(RUN).unwrap();
        run.state.as_str() == "success" && t.iter().any(|t| t.task_id == "check" && t.attempt == 4)
    })
    .await;

    // Run now for another date: the answer comes once the run exists.
    let r = post("/api/dags/flaky/run", json!({ "date": "2026-01-02" }))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["run_id"], "flaky@2026-01-02", "{body}");
    eventually("the new run to succeed", async || {
        f.store()
            .run("flaky@2026-01-02")
            .unwrap()
            .is_some_and(|r| r.state.as_str() == "success")
    })
    .await;
    let r = post("/api/dags/flaky/run", json!({ "date": "2026-01-02" }))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "a succeeded date needs force");
    let r = post("/api/dags/flaky/run", json!({ "date": "someday" })).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = post("/api/dags/flaky/run", json!({ "dates": "2026-01-02" }))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "unknown fields are refused");

    // Backfill a range (the form way: a redirect to the grid).
    let r = c
        .post(format!("{base}/api/dags/flaky/backfill"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "csrf={csrf}&from=2026-01-03&to=2026-01-04&only_failed=false&parallel=2"
        ))
        .send()
        .await
        .unwrap();
    assert!(
        r.url().path().starts_with("/dags/flaky"),
        "redirected to the grid: {}",
        r.url()
    );
    eventually("the backfill's runs", async || {
        ["flaky@2026-01-03", "flaky@2026-01-04"].iter().all(|id| {
            f.store()
                .run(id)
                .unwrap()
                .is_some_and(|r| r.state.as_str() == "success" && r.trigger.as_str() == "backfill")
        })
    })
    .await;

    // Every action is in the audit log, by the UI's client address.
    let audit = f.store().audit(Some("flaky"), 100).unwrap();
    let ui: Vec<&str> = audit
        .iter()
        .rev()
        .filter(|a| a.actor == "ui:127.0.0.1")
        .map(|a| a.action.as_str())
        .collect();
    assert_eq!(
        ui,
        [
            "pause",
            "unpause",
            "rerun_failed",
            "rerun_failed",
            "clear",
            "rerun_failed",
            "run",
            "backfill"
        ],
        "{audit:#?}"
    );
    let clear = audit.iter().find(|a| a.action == "clear").unwrap();
    assert_eq!(clear.target, format!("{RUN}/check"));
    assert_eq!(clear.detail["downstream"], true);

    // The CLI's clear: the same code, recorded as the CLI.
    let out = f.cli(&["clear", "flaky", "--date", "2026-01-02", "check"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("cleared in flaky@2026-01-02: check"));
    let run = f.store().run("flaky@2026-01-02").unwrap().unwrap();
    assert_eq!(run.state.as_str(), "partial");
    let last = &f.store().audit(Some("flaky"), 1).unwrap()[0];
    assert!(last.actor.starts_with("cli:") && last.action == "clear", "{last:?}");
    let out = f.cli(&["run", "flaky", "--date", "2026-01-02"]);
    assert!(out.status.success(), "the cleared task runs again: {out:?}");
    stop.cancel();
}

/// The machine's first address that is not loopback, if any.
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    // Connecting a UDP socket sends nothing; it picks the outgoing address.
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test(flavor = "multi_thread")]
async fn off_loopback_every_request_needs_the_token() {
    let f = failed_project();
    // Without a token the server refuses to start, on any non-loopback address.
    let project = Project::load(f.root()).unwrap();
    for bind in ["0.0.0.0:0".to_string()]
        .into_iter()
        .chain(non_loopback_ip().map(|ip| format!("{ip}:0")))
    {
        let opts = UiOptions {
            bind: bind.parse().unwrap(),
            dags_dir: f.root().join("dags"),
            token: None,
            env: None,
        };
        let err = ui::start(project.clone(), f.store(), opts, CancellationToken::new())
            .await
            .err()
            .unwrap_or_else(|| panic!("{bind} without a token must be refused"));
        assert!(err.to_string().contains("NIGHTJAR_UI_TOKEN"), "{err}");
    }
    let (base, stop) = f.serve("0.0.0.0:0", Some(TOKEN)).await;
    let c = reqwest::Client::new();
    for path in [
        "/",
        "/api/dags",
        "/api/runs/flaky@2026-01-01",
        "/static/app.js",
        "/api/openapi.json",
    ] {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path} without the token");
        let r = c
            .get(format!("{base}{path}"))
            .bearer_auth("wrong-token-0123456789")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path} with a wrong token");
        let r = c.get(format!("{base}{path}")).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path} with the token");
    }
    // An action without the token is refused before CSRF is even looked at.
    let r = c.post(format!("{base}/api/dags/flaky/pause")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // /login sets the cookie a browser then sends.
    let r = c.get(format!("{base}/login?token=nope")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirect
        .get(format!("{base}/login?token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap();
    let r = c
        .get(format!("{base}/api/dags"))
        .header("cookie", pair)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    assert!(!body.contains(TOKEN), "the token is never shown");
    stop.cancel();
}

#[test]
fn every_api_route_is_in_the_openapi_file_and_back() {
    let spec: Value = serde_json::from_str(nightjar::ui::router::OPENAPI).unwrap();
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.push((method.clone(), path.clone()));
        }
    }
    documented.sort();
    let mut routed: Vec<(String, String)> = nightjar::ui::router::api_routes()
        .into_iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    routed.sort();
    let missing: Vec<_> = routed.iter().filter(|r| !documented.contains(r)).collect();
    let extra: Vec<_> = documented.iter().filter(|d| !routed.contains(d)).collect();
    assert!(missing.is_empty(), "routes not in docs/openapi.json: {missing:?}");
    assert!(
        extra.is_empty(),
        "docs/openapi.json documents routes that do not exist: {extra:?}"
    );
    // The file on disk is the one compiled in.
    let on_disk = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json")).unwrap();
    assert_eq!(on_disk, nightjar::ui::router::OPENAPI);
}

/// Kills a child process when the test ends, passed or not.
struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduler_serves_the_ui_in_its_process() {
    use std::io::BufRead;
    let f = Fixture::new();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .args(["schedule", "--ui", "127.0.0.1:0", "--poll", "1s"])
        .current_dir(f.root())
        .env_remove("NIGHTJAR_UI_TOKEN")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _kill = Kill(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("nightjar UI on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(30)).expect("the UI's address");
    let dags = get_json(&reqwest::Client::new(), &format!("{url}/api/dags")).await;
    assert!(
        dags["dags"].as_array().unwrap().iter().any(|d| d["name"] == "flaky"),
        "{dags}"
    );
}
