//! The web UI in a real browser: `nightjar ui` over a project whose DAG
//! fails until a marker file exists, driven in headless Chromium by
//! playwright-core (tests/ui_e2e/e2e.mjs); then "Run now" of a task that
//! runs until a file exists, whose log the task page follows live.
//! Screenshots go to
//! target/ui-screenshots/.
//!
//! Needs Debian's chromium and playwright-core (`bash scripts/services.sh`
//! installs both and writes their locations to target/services.env). Missing
//! either fails the test, with what to do: a browser test that skips is a
//! test that cannot fail.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DAG: &str = r#"
name = "nightly"
schedule = "0 2 * * *"
timezone = "Europe/London"

[[task]]
id = "extract"
kind = "shell"
command = "echo extracting {{ ds }}"

[[task]]
id = "wait_for_marker"
kind = "shell"
command = "echo waiting for the marker; test -f marker.txt || { echo 'marker missing' >&2; exit 4; }"
needs = ["extract"]

[[task]]
id = "publish"
kind = "shell"
command = "echo published {{ ds }}"
needs = ["wait_for_marker"]
"#;

/// A task that runs until `go.txt` exists: its log is followed live.
const FOLLOW: &str = r#"
name = "follow"

[[task]]
id = "tail"
kind = "shell"
command = "echo started; for i in $(seq 1 600); do [ -f go.txt ] && break; sleep 0.1; done; echo finished"
"#;

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The browser and the driver, from target/services.env or the
/// environment; a clear failure when either is missing.
fn tools() -> (PathBuf, PathBuf) {
    let env_file = std::fs::read_to_string(manifest().join("target/services.env")).unwrap_or_default();
    let lookup = |key: &str| -> Option<String> {
        std::env::var(key).ok().or_else(|| {
            env_file
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
        })
    };
    let chromium = PathBuf::from(lookup("NIGHTJAR_CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()));
    let pw = PathBuf::from(lookup("NIGHTJAR_PLAYWRIGHT_CORE").unwrap_or_else(|| {
        manifest()
            .join("target/node/node_modules/playwright-core")
            .display()
            .to_string()
    }));
    assert!(
        chromium.is_file(),
        "chromium not found at {}: run `bash scripts/services.sh` (it installs Debian's chromium), \
         or set NIGHTJAR_CHROMIUM",
        chromium.display()
    );
    assert!(
        pw.join("package.json").is_file(),
        "playwright-core not found at {}: run `bash scripts/services.sh` (npm install into target/node), \
         or set NIGHTJAR_PLAYWRIGHT_CORE",
        pw.display()
    );
    assert!(
        Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "node not found: install Node.js (the e2e script runs under node)"
    );
    (chromium, pw)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `nightjar ui` on an ephemeral port; returns it and its URL.
fn start_ui(root: &Path) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .args(["ui", "--bind", "127.0.0.1:0"])
        .current_dir(root)
        .env_remove("NIGHTJAR_UI_TOKEN")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("ui: {line}");
            if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("`nightjar ui` printed its address");
    (server, url)
}

#[test]
fn rerun_a_failed_run_in_the_browser() {
    let (chromium, pw) = tools();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("dags")).unwrap();
    std::fs::write(root.join("dags/nightly.toml"), DAG).unwrap();
    std::fs::write(root.join("dags/follow.toml"), FOLLOW).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nightjar"))
        .args(["run", "nightly", "--date", "2026-03-01"])
        .current_dir(root)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the first run fails without the marker: {out:?}");

    let (_server, url) = start_ui(root);
    let shots = manifest().join("target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let t0 = Instant::now();
    let out = Command::new("node")
        .arg(manifest().join("tests/ui_e2e/e2e.mjs"))
        .env("NJ_UI_URL", &url)
        .env("NJ_MARKER", root.join("marker.txt"))
        .env("NJ_GO", root.join("go.txt"))
        .env("NJ_SHOTS", &shots)
        .env("NIGHTJAR_CHROMIUM", &chromium)
        .env("NIGHTJAR_PLAYWRIGHT_CORE", &pw)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "{stdout}{stderr}(browser steps took {:.1}s)",
        t0.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "the browser test failed (screenshots in {}):\n{stdout}\n{stderr}",
        shots.display()
    );
    assert!(stdout.contains("all steps passed"));
    for shot in ["1-dag-list.png", "2-grid.png", "3-failed-task.png", "4-run-green.png"] {
        assert!(shots.join(shot).is_file(), "screenshot {shot}");
    }
}
