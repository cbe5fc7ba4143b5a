//! Alerts: a real local HTTP server receives the Slack-compatible webhook
//! of a failed run, a command alert writes a file on success, SLA misses
//! are computed on a fixed clock (and a paused tokio clock), and bad
//! `[alerts]` keys are reported with file:line.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use crate::report_support::*;
use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use nightjar::engine::{Event, Observer, RunReport};
use nightjar::report::alert::{SlaWatch, deadline};
use nightjar::report::settings::reporter_for;
use nightjar::report::{DeliveryOptions, Reporter};
use nightjar::spec::{Project, dag};
use nightjar::steps::Registry;
use nightjar::store::{RunRecord, RunState, Trigger};
use tokio::sync::mpsc;

/// An HTTP server on loopback that answers 200 and hands over each request
/// (path, body). The first `fail_first` requests get a 503.
async fn webhook_server(fail_first: usize) -> (String, mpsc::UnboundedReceiver<(String, String)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let failures = Arc::new(std::sync::atomic::AtomicUsize::new(fail_first));
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (tx, failures) = (tx.clone(), failures.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (tx, failures) = (tx.clone(), failures.clone());
                    async move {
                        let path = req.uri().path().to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let fail = failures
                            .fetch_update(
                                std::sync::atomic::Ordering::SeqCst,
                                std::sync::atomic::Ordering::SeqCst,
                                |n| n.checked_sub(1),
                            )
                            .is_ok();
                        let status = if fail { 503 } else { 200 };
                        if !fail {
                            let _ = tx.send((path, String::from_utf8_lossy(&body).to_string()));
                        }
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .body(http_body_util::Full::new(hyper::body::Bytes::from_static(b"ok")))
                                .unwrap(),
                        )
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (format!("http://{addr}"), rx)
}

#[tokio::test]
async fn a_failed_run_posts_slack_json_to_the_webhook_even_after_it_refused_once() {
    let (base, mut rx) = webhook_server(1).await;
    let alerts = format!("[alerts]\non_failure = {{ webhook = \"{base}/hooks/oncall\" }}\n");
    let toml = mixed_dag("report_alert_hook").replacen("[defaults]", &format!("{alerts}\n[defaults]"), 1);
    let fx = fixture(&toml);
    let env = fx.project.select_env(Some("local")).unwrap().clone();
    let reporter = reporter_for(&fx.project, &env, &fx.dag, Some("off"))
        .await
        .unwrap()
        .unwrap();
    let mut engine = fx.engine();
    engine.observers.push(reporter.clone());
    assert_eq!(fx.run(&engine, "2010-12-01").await.state, RunState::Failed);
    // Refused once (503): retried from the spool after a backoff.
    let (path, body) = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("the webhook was called")
        .unwrap();
    assert_eq!(path, "/hooks/oncall");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains("report_alert_hook@2010-12-01 failed") && text.contains("broken"),
        "{text}"
    );
    assert_valid(&schema(), &v["event"].to_string());
    assert_eq!(v["event"]["kind"], "run_failed");
    reporter.close(Duration::from_secs(5)).await;
    assert!(rx.try_recv().is_err(), "one alert, not one per event");
}

#[tokio::test]
async fn a_command_alert_runs_on_success_with_the_event_on_stdin() {
    let toml = ok_dag(
        "report_alert_cmd",
        "[alerts]\non_success = [{ command = \"cat > alert.json; echo \\\"$NIGHTJAR_ALERT\\\" > alert.txt\" }]\non_failure = { command = \"touch failure-alert\" }\n",
    );
    let fx = fixture(&toml);
    let env = fx.project.select_env(Some("local")).unwrap().clone();
    let reporter = reporter_for(&fx.project, &env, &fx.dag, None).await.unwrap().unwrap();
    let mut engine = fx.engine();
    engine.observers.push(reporter.clone());
    assert_eq!(fx.run(&engine, "2010-12-01").await.state, RunState::Success);
    assert!(reporter.flush(Duration::from_secs(20)).await, "{:?}", reporter.stats());
    let doc = std::fs::read_to_string(fx.root().join("alert.json")).unwrap();
    let v = assert_valid(&schema(), &doc);
    assert_eq!(v["kind"], "run_succeeded");
    let text = std::fs::read_to_string(fx.root().join("alert.txt")).unwrap();
    assert!(
        text.starts_with("nightjar: report_alert_cmd@2010-12-01 succeeded"),
        "{text}"
    );
    assert!(!fx.root().join("failure-alert").exists());
    // The local env's default sink wrote the events too.
    let events = std::fs::read_to_string(fx.root().join(".nightjar/events.ndjson")).unwrap();
    assert_eq!(events.lines().count(), 6);
    reporter.close(Duration::from_secs(5)).await;
}

fn london(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    chrono_tz::Europe::London
        .with_ymd_and_hms(y, m, d, h, min, 0)
        .unwrap()
        .with_timezone(&Utc)
}

#[test]
fn the_sla_deadline_is_the_first_local_time_after_the_interval_ends() {
    let six = NaiveTime::from_hms_opt(6, 0, 0).unwrap();
    let tz = chrono_tz::Europe::London;
    // Winter (GMT): the interval ends 12-02 02:00, deadline 12-02 06:00.
    assert_eq!(deadline(london(2010, 12, 2, 2, 0), tz, six), london(2010, 12, 2, 6, 0));
    assert_eq!(
        deadline(london(2010, 12, 2, 2, 0), tz, six).to_rfc3339(),
        "2010-12-02T06:00:00+00:00"
    );
    // Summer (BST): 06:00 local is 05:00 UTC.
    assert_eq!(
        deadline(london(2011, 7, 2, 2, 0), tz, six).to_rfc3339(),
        "2011-07-02T05:00:00+00:00"
    );
    // An interval ending after the SLA time: the next day's.
    assert_eq!(deadline(london(2010, 12, 2, 7, 0), tz, six), london(2010, 12, 3, 6, 0));
    // At the SLA time exactly: that one.
    assert_eq!(deadline(london(2010, 12, 2, 6, 0), tz, six), london(2010, 12, 2, 6, 0));
    // A DST gap (01:30 does not exist on 2011-03-27 in London): the instant after.
    let half_one = NaiveTime::from_hms_opt(1, 30, 0).unwrap();
    assert_eq!(
        deadline(london(2011, 3, 27, 0, 0), tz, half_one).to_rfc3339(),
        "2011-03-27T01:30:00+00:00"
    );
}

fn run_record(dag: &str, interval_end: DateTime<Utc>) -> RunRecord {
    RunRecord {
        run_id: format!("{dag}@2010-12-01"),
        dag: dag.into(),
        logical_date: "2010-12-01".into(),
        seq: 1,
        state: RunState::Running,
        trigger: Trigger::Schedule,
        env: "local".into(),
        interval_start: (interval_end - chrono::Duration::days(1)).to_rfc3339(),
        interval_end: interval_end.to_rfc3339(),
        params: serde_json::Value::Null,
        created_at: String::new(),
        started_at: None,
        ended_at: None,
        pid: None,
        host: None,
        heartbeat_at: None,
    }
}

fn finished(run: &RunRecord, state: RunState) -> RunReport {
    RunReport {
        run_id: run.run_id.clone(),
        dag: run.dag.clone(),
        logical_date: run.logical_date.clone(),
        state,
        already_succeeded: false,
        tasks: Vec::new(),
        seconds: 1.0,
    }
}

/// A DAG with an SLA, its watcher on a fixed clock, and a recorder of what
/// the watcher publishes.
fn sla_setup(now: DateTime<Utc>) -> (SlaWatch, Arc<Recorder>, Arc<Reporter>, tempfile::TempDir) {
    let fx = fixture(&ok_dag(
        "report_sla",
        "[alerts]\nsla = \"06:00\"\non_sla_miss = { command = \"true\" }\n",
    ));
    let rec = Recorder::new("sla");
    let reporter = Reporter::start(vec![rec.clone()], &fx.root().join("spool"), DeliveryOptions::default()).unwrap();
    let clock: nightjar::report::alert::Clock = Arc::new(move || now);
    let watch = SlaWatch::new(&fx.dag, reporter.clone(), clock).expect("the DAG has an SLA");
    (watch, rec, reporter, fx.dir)
}

#[tokio::test(start_paused = true)]
async fn a_run_still_going_at_the_deadline_misses_its_sla_exactly_then() {
    // 05:59 local; the run of 12-01 (interval ends 12-02 02:00) is due by 06:00.
    let (watch, rec, reporter, _dir) = sla_setup(london(2010, 12, 2, 5, 59));
    let run = run_record("report_sla", london(2010, 12, 2, 2, 0));
    watch.event(&Event::RunStarted {
        run: &run,
        tasks: 2,
        resumed: false,
    });
    tokio::time::sleep(Duration::from_secs(59)).await;
    assert!(reporter.flush(Duration::from_millis(50)).await);
    assert!(rec.got.lock().unwrap().is_empty(), "not yet: one second to go");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(reporter.flush(Duration::from_secs(1)).await);
    let got = rec.got.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].kind.as_str(), "sla_missed");
    assert_eq!(got[0].state, "running");
    assert_eq!(got[0].deadline.as_deref(), Some("2010-12-02T06:00:00.000Z"));
    assert_valid(&schema(), &got[0].to_json());
    // The run then ends: no second alert.
    watch.event(&Event::RunFinished {
        report: &finished(&run, RunState::Success),
    });
    assert!(reporter.flush(Duration::from_secs(1)).await);
    assert_eq!(rec.got.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_run_that_succeeds_before_the_deadline_makes_its_sla() {
    let (watch, rec, reporter, _dir) = sla_setup(london(2010, 12, 2, 5, 0));
    let run = run_record("report_sla", london(2010, 12, 2, 2, 0));
    watch.event(&Event::RunStarted {
        run: &run,
        tasks: 2,
        resumed: false,
    });
    tokio::time::sleep(Duration::from_secs(600)).await;
    watch.event(&Event::RunFinished {
        report: &finished(&run, RunState::Success),
    });
    tokio::time::sleep(Duration::from_secs(7200)).await;
    assert!(reporter.flush(Duration::from_secs(1)).await);
    assert!(rec.got.lock().unwrap().is_empty(), "{:?}", rec.kinds());
}

#[tokio::test(start_paused = true)]
async fn a_run_started_after_the_deadline_misses_at_once() {
    let (watch, rec, reporter, _dir) = sla_setup(london(2010, 12, 2, 7, 30));
    let run = run_record("report_sla", london(2010, 12, 2, 2, 0));
    watch.event(&Event::RunStarted {
        run: &run,
        tasks: 2,
        resumed: false,
    });
    assert!(reporter.flush(Duration::from_secs(1)).await);
    assert_eq!(rec.kinds(), ["sla_missed"]);
    watch.event(&Event::RunFinished {
        report: &finished(&run, RunState::Success),
    });
    assert!(reporter.flush(Duration::from_secs(1)).await);
    assert_eq!(rec.kinds(), ["sla_missed"], "once per run");
}

#[test]
fn bad_alerts_are_reported_with_file_line_and_hints() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dags")).unwrap();
    let path = dir.path().join("dags/bad.toml");
    std::fs::write(
        &path,
        r#"name = "bad_alerts"

[alerts]
sla = "6 am"
on_failure = [{ webhok = "https://example.invalid/x" }]
on_success = { webhook = "hooks.slack.com/x", command = "echo" }

[[task]]
id = "a"
kind = "shell"
command = "true"
"#,
    )
    .unwrap();
    let project = Project::load(dir.path()).unwrap();
    let err = dag::load(&path, &project, &Registry::builtin())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.toml:4:") && err.contains("bad SLA time `6 am`"),
        "{err}"
    );
    assert!(
        err.contains("bad.toml:5:") && err.contains("webhok") && err.contains("did you mean `webhook`"),
        "{err}"
    );
    assert!(
        err.contains("bad.toml:6:") && err.contains("exactly one of webhook, sqs, command"),
        "{err}"
    );
    assert!(err.contains("is not an http(s) URL"), "{err}");
}

#[test]
fn an_sla_miss_target_needs_an_sla() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("dags")).unwrap();
    let path = dir.path().join("dags/nosla.toml");
    std::fs::write(
        &path,
        "name = \"nosla\"\n[alerts]\non_sla_miss = { command = \"true\" }\n[[task]]\nid = \"a\"\nkind = \"noop\"\n",
    )
    .unwrap();
    let project = Project::load(dir.path()).unwrap();
    let err = dag::load(&path, &project, &Registry::builtin())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nosla.toml:3:") && err.contains("without an `sla`"),
        "{err}"
    );
}
