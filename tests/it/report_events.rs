//! The event documents and their delivery, without AWS: every event of a
//! run that shows every task state validates against
//! docs/events.schema.json and arrives in order; a sink that is down or
//! slow never changes the run, and gets every event exactly once after it
//! comes back, also through a restart (the spool).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::report_support::*;
use nightjar::report::ndjson::NdjsonSink;
use nightjar::report::{DeliveryOptions, Reporter, Sink};
use nightjar::store::RunState;

fn quick() -> DeliveryOptions {
    DeliveryOptions {
        buffer: 1024,
        retry_initial: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
    }
}

#[tokio::test]
async fn every_event_of_a_mixed_run_validates_and_arrives_in_order() {
    let fx = fixture(&mixed_dag("report_mixed"));
    let rec = Recorder::new("rec");
    let ndjson_path = fx.root().join(".nightjar/events.ndjson");
    let sinks: Vec<Arc<dyn Sink>> = vec![rec.clone(), Arc::new(NdjsonSink::new(ndjson_path.clone()))];
    let reporter = Reporter::start(sinks, &fx.root().join(".nightjar/spool"), quick()).unwrap();
    let mut engine = fx.engine();
    engine.parallelism = 1;
    engine.observers.push(reporter.clone());
    let report = fx.run(&engine, "2010-12-01").await;
    assert_eq!(report.state, RunState::Failed);
    assert!(reporter.flush(Duration::from_secs(10)).await, "{:?}", reporter.stats());

    let kinds = rec.kinds();
    // With parallelism 1 the tasks run in file order.
    assert_eq!(
        kinds,
        [
            "run_started",
            "task_started:orders",
            "task_succeeded:orders",
            "task_started:flaky",
            "task_retrying:flaky",
            "task_started:flaky",
            "task_succeeded:flaky",
            "task_started:broken",
            "task_failed:broken",
            "task_upstream_failed:after_broken",
            "task_started:maybe",
            "task_skipped:maybe",
            "run_failed",
        ],
    );

    // The NDJSON file holds the same documents, and each one validates.
    let schema = schema();
    let text = std::fs::read_to_string(&ndjson_path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), kinds.len());
    let docs: Vec<serde_json::Value> = lines.iter().map(|l| assert_valid(&schema, l)).collect();
    let ids: Vec<String> = docs.iter().map(|d| d["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, rec.ids(), "both sinks saw the same events in the same order");
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "ids are unique");

    let by_kind = |k: &str, task: &str| {
        docs.iter()
            .filter(|d| d["kind"] == k && (task.is_empty() || d["task"] == task))
            .cloned()
            .collect::<Vec<_>>()
    };
    let orders = &by_kind("task_succeeded", "orders")[0];
    assert_eq!(orders["rows"]["in"], 3);
    assert_eq!(orders["rows"]["out"], 3);
    assert_eq!(orders["rows"]["quarantined"], 0);
    assert_eq!(orders["dag"], "report_mixed");
    assert_eq!(orders["run_id"], "report_mixed@2010-12-01");
    assert_eq!(orders["logical_date"], "2010-12-01");
    assert_eq!(orders["env"], "local");
    assert!(orders["duration_seconds"].as_f64().unwrap() >= 0.0);

    let retry = &by_kind("task_retrying", "flaky")[0];
    assert_eq!(retry["attempt"], 1);
    assert!(retry["error"].as_str().unwrap().contains("exit"), "{retry}");
    assert_eq!(by_kind("task_succeeded", "flaky")[0]["attempt"], 2);
    let broken = &by_kind("task_failed", "broken")[0];
    assert_eq!(broken["state"], "failed");
    assert_eq!(by_kind("task_upstream_failed", "after_broken")[0]["upstream"], "broken");
    let end = &by_kind("run_failed", "")[0];
    assert_eq!(end["tasks"]["failed"], 1);
    assert_eq!(end["tasks"]["success"], 2);
    assert!(end["error"].as_str().unwrap().contains("broken"), "{end}");
    reporter.close(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn a_sink_that_is_down_never_changes_the_run_and_gets_everything_after_a_restart() {
    let fx = fixture(&ok_dag("report_down", ""));
    let spool = fx.root().join(".nightjar/spool");
    let rec = Recorder::new("flaky-sink");
    rec.down.store(true, Ordering::SeqCst);
    let reporter = Reporter::start(vec![rec.clone()], &spool, quick()).unwrap();
    let mut engine = fx.engine();
    engine.observers.push(reporter.clone());
    let report = fx.run(&engine, "2010-12-01").await;
    assert_eq!(report.state, RunState::Success, "the run does not depend on the sink");
    let stats = reporter.close(Duration::from_secs(5)).await;
    assert_eq!(stats[0].delivered, 0);
    assert_eq!(stats[0].spooled, 6, "{stats:?}");
    assert!(rec.calls.load(Ordering::SeqCst) >= 1, "delivery was tried");
    let spooled_files = std::fs::read_dir(spool.join("flaky-sink"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
        .count();
    assert_eq!(spooled_files, 6);

    // A second run in a new process (a new reporter) while the sink is
    // still down: its events queue behind the first run's.
    let reporter = Reporter::start(vec![rec.clone()], &spool, quick()).unwrap();
    let mut engine = fx.engine();
    engine.observers.push(reporter.clone());
    let report = fx.run(&engine, "2010-12-02").await;
    assert_eq!(report.state, RunState::Success);
    let stats = reporter.close(Duration::from_secs(5)).await;
    assert_eq!(stats[0].spooled, 12, "{stats:?}");

    // The sink is back: the next process delivers the spool, oldest first.
    rec.down.store(false, Ordering::SeqCst);
    let reporter = Reporter::start(vec![rec.clone()], &spool, quick()).unwrap();
    assert!(reporter.flush(Duration::from_secs(10)).await, "{:?}", reporter.stats());
    let got = rec.got.lock().unwrap().clone();
    assert_eq!(got.len(), 12, "every event exactly once");
    let runs: Vec<&str> = got.iter().map(|d| d.run_id.as_str()).collect();
    assert!(runs[..6].iter().all(|r| *r == "report_down@2010-12-01"), "{runs:?}");
    assert!(runs[6..].iter().all(|r| *r == "report_down@2010-12-02"), "{runs:?}");
    assert_eq!(got[0].kind.as_str(), "run_started");
    assert_eq!(got[5].kind.as_str(), "run_succeeded");
    let unique: std::collections::HashSet<_> = got.iter().map(|d| &d.id).collect();
    assert_eq!(unique.len(), 12);
    reporter.close(Duration::from_secs(5)).await;
    assert_eq!(
        std::fs::read_dir(spool.join("flaky-sink"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "json"))
            .count(),
        0,
        "the spool is empty once delivered"
    );
}

#[tokio::test]
async fn a_sink_going_down_and_up_during_a_run_gets_every_event_in_order() {
    let fx = fixture(&ok_dag("report_blip", ""));
    let rec = Recorder::new("blip");
    let reporter = Reporter::start(vec![rec.clone()], &fx.root().join(".nightjar/spool"), quick()).unwrap();
    // Events published while down, then the sink returns within the process.
    rec.down.store(true, Ordering::SeqCst);
    let mut engine = fx.engine();
    engine.observers.push(reporter.clone());
    let report = fx.run(&engine, "2010-12-01").await;
    assert_eq!(report.state, RunState::Success);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(reporter.stats()[0].spooled > 0, "{:?}", reporter.stats());
    rec.down.store(false, Ordering::SeqCst);
    assert!(reporter.flush(Duration::from_secs(10)).await, "{:?}", reporter.stats());
    assert_eq!(
        rec.kinds(),
        [
            "run_started",
            "task_started:a",
            "task_succeeded:a",
            "task_started:b",
            "task_succeeded:b",
            "run_succeeded"
        ]
    );
    let stats = reporter.close(Duration::from_secs(5)).await;
    assert!(stats[0].failures >= 1);
}

#[tokio::test]
async fn a_full_buffer_spills_to_disk_and_order_is_kept() {
    let fx = fixture(&ok_dag("report_full", ""));
    let mut slow = Recorder::new("slow");
    Arc::get_mut(&mut slow).unwrap().delay = Duration::from_millis(30);
    let opts = DeliveryOptions { buffer: 2, ..quick() };
    let reporter = Reporter::start(vec![slow.clone()], &fx.root().join(".nightjar/spool"), opts).unwrap();
    let mut engine = fx.engine();
    engine.observers.push(reporter.clone());
    let began = std::time::Instant::now();
    for date in ["2010-12-01", "2010-12-02", "2010-12-03"] {
        assert_eq!(fx.run(&engine, date).await.state, RunState::Success);
    }
    let ran = began.elapsed();
    assert!(reporter.stats()[0].overflowed > 0, "{:?}", reporter.stats());
    assert!(reporter.flush(Duration::from_secs(20)).await, "{:?}", reporter.stats());
    let got = slow.got.lock().unwrap().clone();
    assert_eq!(got.len(), 18);
    let mut expected = Vec::new();
    for date in ["2010-12-01", "2010-12-02", "2010-12-03"] {
        for _ in 0..6 {
            expected.push(format!("report_full@{date}"));
        }
    }
    let runs: Vec<String> = got.iter().map(|d| d.run_id.clone()).collect();
    assert_eq!(runs, expected, "order survives the overflow");
    let _ = ran;
    reporter.close(Duration::from_secs(5)).await;
}
