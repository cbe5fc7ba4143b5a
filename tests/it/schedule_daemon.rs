//! The scheduler daemon on tokio's paused clock: days of schedule run in
//! milliseconds, with the real engine, store and DAG files (noop tasks).
//!
//! Each test checks the run history: which logical dates ran, how often,
//! with which trigger and interval.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use nightjar::engine::Engine;
use nightjar::schedule::{Daemon, DaemonOptions, TokioClock};
use nightjar::spec::Project;
use nightjar::store::Store;
use tokio_util::sync::CancellationToken;

fn dag_file(name: &str, schedule: &str, extra: &str) -> String {
    format!(
        r#"
name = "{name}"
schedule = "{schedule}"
timezone = "Europe/London"
{extra}

[[task]]
id = "a"
kind = "noop"

[[task]]
id = "b"
kind = "noop"
needs = ["a"]
"#
    )
}

struct Project_ {
    dir: tempfile::TempDir,
}

impl Project_ {
    fn new(dags: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("dags")).unwrap();
        let p = Self { dir };
        for (f, text) in dags {
            p.write(f, text);
        }
        p
    }
    fn root(&self) -> &Path {
        self.dir.path()
    }
    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.root().join("dags").join(file), text).unwrap();
    }
    fn store(&self) -> Arc<Store> {
        Arc::new(Store::open(&self.root().join(".nightjar/state.db")).unwrap())
    }

    /// Runs a daemon from `start` (UTC) for `hours` of virtual time.
    async fn run_daemon(&self, start: DateTime<Utc>, hours: u64) -> Vec<String> {
        let (daemon, log) = self.daemon(start);
        let stop = CancellationToken::new();
        let h = tokio::spawn(daemon.run(stop.clone()));
        tokio::time::sleep(Duration::from_secs(hours * 3600)).await;
        stop.cancel();
        h.await.unwrap().unwrap();
        log.lock().unwrap().clone()
    }

    fn daemon(&self, start: DateTime<Utc>) -> (Daemon, Arc<Mutex<Vec<String>>>) {
        let project = Project::load(self.root()).unwrap();
        let engine = Engine::new(project, self.store());
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let d = Daemon::new(
            engine,
            Arc::new(TokioClock::starting_at(start)),
            DaemonOptions {
                dags_dir: self.root().join("dags"),
                env: None,
                vars: BTreeMap::new(),
                poll: Duration::from_secs(600),
            },
        )
        .with_log(Arc::new(move |line| l.lock().unwrap().push(line.to_string())));
        (d, log)
    }

    /// (logical date, runs of it, trigger, state, interval start) of a DAG.
    fn runs(&self, dag: &str) -> Vec<(String, u32, String, String, String)> {
        let store = self.store();
        let mut by_date: BTreeMap<String, (u32, String, String, String)> = BTreeMap::new();
        for r in store.runs(Some(dag), 100_000).unwrap() {
            let e = by_date.entry(r.logical_date.clone()).or_insert((
                0,
                r.trigger.to_string(),
                r.state.to_string(),
                r.interval_start.clone(),
            ));
            e.0 += 1;
        }
        by_date.into_iter().map(|(k, (n, t, s, i))| (k, n, t, s, i)).collect()
    }

    fn dates(&self, dag: &str) -> Vec<String> {
        let runs = self.runs(dag);
        for r in &runs {
            assert_eq!(r.1, 1, "{r:?} ran more than once");
            assert_eq!(r.3, "success", "{r:?}");
        }
        runs.into_iter().map(|r| r.0).collect()
    }
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

#[tokio::test(start_paused = true)]
async fn nightly_runs_once_a_day_across_the_autumn_overlap() {
    // 01:30 happens twice in London on 2026-10-25.
    let p = Project_::new(&[("n.toml", dag_file("n", "30 1 * * *", ""))]);
    p.run_daemon(utc(2026, 10, 22, 12, 0), 24 * 6).await;
    assert_eq!(
        p.dates("n"),
        // The 21st: a first start runs the latest interval that ended.
        [
            "2026-10-21",
            "2026-10-22",
            "2026-10-23",
            "2026-10-24",
            "2026-10-25",
            "2026-10-26",
            "2026-10-27"
        ]
    );
    // The run of the 24th closed at the first 01:30 of the 25th (BST).
    let runs = p.runs("n");
    assert_eq!(runs[3].4, "2026-10-24T01:30:00+01:00");
    assert_eq!(runs[4].4, "2026-10-25T01:30:00+01:00");
    assert_eq!(runs[5].4, "2026-10-26T01:30:00+00:00");
}

#[tokio::test(start_paused = true)]
async fn hourly_runs_every_hour_once_across_the_overlap_and_twice_when_asked() {
    let p = Project_::new(&[
        ("h.toml", dag_file("h", "0 * * * *", "")),
        ("h2.toml", dag_file("h2", "0 * * * *", "dst_overlap = \"run_twice\"")),
    ]);
    // 2026-10-24 22:00 UTC .. 2026-10-25 05:00 UTC
    p.run_daemon(utc(2026, 10, 24, 22, 30), 7).await;
    let once = p.dates("h");
    assert_eq!(
        once,
        [
            "2026-10-24T22:00",
            "2026-10-24T23:00",
            "2026-10-25T00:00",
            "2026-10-25T01:00",
            "2026-10-25T02:00",
            "2026-10-25T03:00",
            "2026-10-25T04:00"
        ]
    );
    let twice = p.dates("h2");
    assert_eq!(
        twice,
        [
            "2026-10-24T22:00",
            "2026-10-24T23:00",
            "2026-10-25T00:00",
            "2026-10-25T01:00",
            "2026-10-25T01:00+00:00",
            "2026-10-25T02:00",
            "2026-10-25T03:00",
            "2026-10-25T04:00"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn no_day_is_skipped_across_the_spring_gap() {
    // 01:30 does not exist in London on 2026-03-29: it fires at 02:00 BST.
    let p = Project_::new(&[
        ("g.toml", dag_file("g", "30 1 * * *", "")),
        ("s.toml", dag_file("s", "30 1 * * *", "dst_gap = \"skip\"")),
    ]);
    let log = p.run_daemon(utc(2026, 3, 26, 12, 0), 24 * 5).await;
    assert_eq!(
        p.dates("g"),
        [
            "2026-03-25",
            "2026-03-26",
            "2026-03-27",
            "2026-03-28",
            "2026-03-29",
            "2026-03-30"
        ]
    );
    assert!(
        log.iter()
            .any(|l| l.contains("g: fire at 2026-03-29T02:00:00+01:00 -> run 2026-03-28")),
        "{log:#?}"
    );
    // skip: no fire on the 29th, so the 28th's interval runs to the 30th.
    assert_eq!(
        p.dates("s"),
        ["2026-03-25", "2026-03-26", "2026-03-27", "2026-03-28", "2026-03-30"]
    );
    let s = p.runs("s");
    assert_eq!(s[3].4, "2026-03-28T01:30:00+00:00");
}

async fn outage(catchup: bool) -> Project_ {
    let extra = format!("catchup = {catchup}");
    let p = Project_::new(&[("c.toml", dag_file("c", "0 2 * * *", &extra))]);
    // Up for two nights, down for three, up again.
    p.run_daemon(utc(2026, 1, 1, 12, 0), 36).await;
    assert_eq!(p.dates("c"), ["2025-12-31", "2026-01-01"]);
    p.run_daemon(utc(2026, 1, 5, 12, 0), 1).await;
    p
}

#[tokio::test(start_paused = true)]
async fn catchup_true_runs_every_interval_missed_in_an_outage() {
    let p = outage(true).await;
    assert_eq!(
        p.dates("c"),
        ["2025-12-31", "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
    );
    assert!(p.runs("c").iter().all(|r| r.2 == "schedule"));
}

#[tokio::test(start_paused = true)]
async fn catchup_false_runs_only_the_latest_missed_interval() {
    let p = outage(false).await;
    assert_eq!(p.dates("c"), ["2025-12-31", "2026-01-01", "2026-01-04"]);
}

#[tokio::test(start_paused = true)]
async fn max_catchup_bounds_a_catchup() {
    let p = Project_::new(&[("c.toml", dag_file("c", "0 2 * * *", "catchup = true\nmax_catchup = 2"))]);
    p.run_daemon(utc(2026, 1, 1, 12, 0), 15).await;
    let log = p.run_daemon(utc(2026, 1, 8, 12, 0), 1).await;
    assert_eq!(p.dates("c"), ["2025-12-31", "2026-01-01", "2026-01-06", "2026-01-07"]);
    assert!(
        log.iter()
            .any(|l| l.contains("4 missed interval(s) 2026-01-02 .. 2026-01-05")),
        "{log:#?}"
    );
}

#[tokio::test(start_paused = true)]
async fn pause_stops_firing_and_unpause_catches_up_by_the_same_rule() {
    let p = Project_::new(&[
        ("t.toml", dag_file("t", "0 2 * * *", "catchup = true")),
        ("f.toml", dag_file("f", "0 2 * * *", "catchup = false")),
    ]);
    let store = p.store();
    let (daemon, _) = p.daemon(utc(2026, 1, 1, 12, 0));
    let stop = CancellationToken::new();
    let h = tokio::spawn(daemon.run(stop.clone()));
    tokio::time::sleep(Duration::from_secs(24 * 3600)).await; // through Jan 2 02:00
    store.pause("t").unwrap();
    store.pause("f").unwrap();
    tokio::time::sleep(Duration::from_secs(3 * 24 * 3600)).await; // Jan 5 12:00
    assert_eq!(p.dates("t"), ["2025-12-31", "2026-01-01"]);
    store.unpause("t").unwrap();
    store.unpause("f").unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        p.dates("t"),
        ["2025-12-31", "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
    );
    assert_eq!(p.dates("f"), ["2025-12-31", "2026-01-01", "2026-01-04"]);
    tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
    stop.cancel();
    h.await.unwrap().unwrap();
    assert_eq!(p.dates("f"), ["2025-12-31", "2026-01-01", "2026-01-04", "2026-01-05"]);
}

#[tokio::test(start_paused = true)]
async fn two_daemons_on_one_history_run_each_interval_once() {
    let p = Project_::new(&[
        ("a.toml", dag_file("a", "*/10 * * * *", "")),
        ("b.toml", dag_file("b", "0 * * * *", "max_active_runs = 2")),
    ]);
    let start = utc(2026, 1, 1, 0, 5);
    let (one, log1) = p.daemon(start);
    let (two, log2) = p.daemon(start);
    let stop = CancellationToken::new();
    let h1 = tokio::spawn(one.run(stop.clone()));
    let h2 = tokio::spawn(two.run(stop.clone()));
    tokio::time::sleep(Duration::from_secs(6 * 3600)).await;
    stop.cancel();
    h1.await.unwrap().unwrap();
    h2.await.unwrap().unwrap();
    // 23:50 (the latest interval at start), then 00:00 .. 05:50.
    assert_eq!(p.dates("a").len(), 37, "{:?}", p.dates("a"));
    assert_eq!(p.dates("b").len(), 7, "{:?}", p.dates("b"));
    let standing_by = |l: &Vec<String>| l.iter().filter(|l| l.contains("standing by")).count();
    assert_eq!(
        standing_by(&log1.lock().unwrap()) + standing_by(&log2.lock().unwrap()),
        2,
        "one daemon fires each DAG, the other stands by"
    );
}

#[tokio::test(start_paused = true)]
async fn hot_reload_picks_up_edits_and_keeps_the_last_valid_version() {
    let p = Project_::new(&[("r.toml", dag_file("r", "0 2 * * *", ""))]);
    let (daemon, log) = p.daemon(utc(2026, 1, 1, 12, 0));
    let stop = CancellationToken::new();
    let h = tokio::spawn(daemon.run(stop.clone()));
    tokio::time::sleep(Duration::from_secs(24 * 3600)).await; // Jan 2 12:00
    // An invalid edit: the nightly keeps running on the last valid version.
    p.write("r.toml", &dag_file("r", "0 2 * * *", "max_active_runs = 0"));
    tokio::time::sleep(Duration::from_secs(24 * 3600)).await; // Jan 3 12:00
    assert_eq!(p.dates("r"), ["2025-12-31", "2026-01-01", "2026-01-02"]);
    // A valid edit of the schedule: 12:30 from now on.
    p.write("r.toml", &dag_file("r", "30 12 * * *", ""));
    // A new DAG.
    p.write("new.toml", &dag_file("new", "0 * * * *", ""));
    tokio::time::sleep(Duration::from_secs(25 * 3600)).await; // Jan 4 13:00
    stop.cancel();
    h.await.unwrap().unwrap();
    let log = log.lock().unwrap().join("\n");
    assert!(log.contains("invalid, keeping the last valid version"), "{log}");
    assert!(log.contains("max_active_runs"), "{log}");
    assert!(log.contains("r: reloaded"), "{log}");
    assert!(log.contains("new: loaded"), "{log}");
    // The fire at 12:30 on the 3rd closes the interval of the 2nd, which
    // already ran under the old schedule: it is not run again. The next
    // one is the 3rd's, on the new schedule.
    assert_eq!(p.dates("r"), ["2025-12-31", "2026-01-01", "2026-01-02", "2026-01-03"]);
    assert_eq!(p.runs("r")[2].4, "2026-01-02T02:00:00+00:00");
    assert_eq!(p.runs("r")[3].4, "2026-01-03T12:30:00+00:00");
    // (The last hourly run may be cut short by the stop at 13:00.)
    assert!(p.runs("new").len() >= 24, "{:?}", p.runs("new"));
}
