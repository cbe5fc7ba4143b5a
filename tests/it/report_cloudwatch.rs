//! CloudWatch on the moto server: the Embedded Metric Format documents
//! (read back with GetLogEvents) carry the right namespace, metric names,
//! units, dimensions and values; each task's log lands in its own stream,
//! and shipping it again does not duplicate it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::report_support::*;
use aws_sdk_cloudwatchlogs::Client;
use nightjar::report::cloudwatch::{MetricsSink, TaskLogSink, logs_client};
use nightjar::report::{DeliveryOptions, Reporter, Sink};
use nightjar::store::RunState;
use nightjar::testenv::aws_options;
use serde_json::Value;

async fn messages(logs: &Client, group: &str, stream: &str) -> Vec<String> {
    let out = logs
        .get_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .start_from_head(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GetLogEvents {group} {stream}: {e:?}"));
    out.events()
        .iter()
        .map(|e| e.message().unwrap_or_default().to_string())
        .collect()
}

fn metric_names(emf: &Value) -> BTreeSet<String> {
    emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["Name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn emf_metrics_and_task_logs_arrive_in_cloudwatch_logs() {
    let logs = logs_client(&aws_options()).await;
    let ns = unique("NightjarTest");
    let metrics_group = format!("/nightjar-test/{}", unique("metrics"));
    let task_group = format!("/nightjar-test/{}", unique("tasks"));
    let fx = fixture(&mixed_dag("report_cw"));
    let state = fx.root().join(".nightjar");
    let sinks: Vec<Arc<dyn Sink>> = vec![
        Arc::new(MetricsSink::new(logs.clone(), &ns, &metrics_group)),
        Arc::new(TaskLogSink::new(logs.clone(), &task_group, &state)),
    ];
    let reporter = Reporter::start(sinks, &state.join("spool"), DeliveryOptions::default()).unwrap();
    let mut engine = fx.engine();
    engine.observers.push(reporter.clone());
    assert_eq!(fx.run(&engine, "2010-12-01").await.state, RunState::Failed);
    assert!(reporter.flush(Duration::from_secs(30)).await, "{:?}", reporter.stats());

    // Metrics: one stream per run.
    let docs: Vec<Value> = messages(&logs, &metrics_group, "report_cw@2010-12-01")
        .await
        .iter()
        .map(|m| serde_json::from_str(m).unwrap())
        .collect();
    let find = |event: &str, task: Option<&str>| -> Value {
        docs.iter()
            .find(|d| d["Event"] == event && task.is_none_or(|t| d["Task"] == t))
            .unwrap_or_else(|| panic!("no EMF document for {event} {task:?} in {docs:#?}"))
            .clone()
    };
    let orders = find("task_succeeded", Some("orders"));
    let cwm = &orders["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(cwm["Namespace"], ns.as_str());
    assert_eq!(cwm["Dimensions"], serde_json::json!([["Dag", "Task"]]));
    assert_eq!(
        metric_names(&orders),
        ["Duration", "Failures", "RowsOut", "RowsQuarantined"]
            .map(String::from)
            .into()
    );
    let units: Vec<(String, String)> = cwm["Metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["Name"].as_str().unwrap().into(), m["Unit"].as_str().unwrap().into()))
        .collect();
    assert!(units.contains(&("Duration".into(), "Seconds".into())), "{units:?}");
    assert!(units.contains(&("RowsOut".into(), "Count".into())), "{units:?}");
    assert_eq!(orders["Dag"], "report_cw");
    assert_eq!(orders["Task"], "orders");
    assert_eq!(orders["RowsOut"], 3);
    assert_eq!(orders["RowsQuarantined"], 0);
    assert_eq!(orders["Failures"], 0);
    assert!(orders["_aws"]["Timestamp"].as_i64().unwrap() > 1_600_000_000_000);

    let retry = find("task_retrying", Some("flaky"));
    assert_eq!(metric_names(&retry), ["Retries".to_string()].into());
    assert_eq!(retry["Retries"], 1);
    let failed = find("task_failed", Some("broken"));
    assert_eq!(failed["Failures"], 1);
    assert!(metric_names(&failed).contains("Duration"));
    let run = find("run_failed", None);
    assert_eq!(
        run["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([["Dag"]])
    );
    assert_eq!(run["Failures"], 1);
    assert!(run.get("Task").is_none());
    // Task events without metrics (started, skipped) make no documents.
    assert!(!docs.iter().any(|d| d["Event"] == "task_started"));

    // Task logs: one stream per run and task, the lines of the log file.
    let broken = messages(&logs, &task_group, "report_cw@2010-12-01/broken").await;
    assert!(
        broken.iter().any(|l| l.contains("[stdout] about to fail")),
        "{broken:#?}"
    );
    assert!(broken.iter().any(|l| l.contains("attempt 1 failed")), "{broken:#?}");
    let flaky = messages(&logs, &task_group, "report_cw@2010-12-01/flaky").await;
    assert!(flaky.iter().any(|l| l.contains("first attempt fails")), "{flaky:#?}");
    assert!(flaky.iter().any(|l| l.contains("attempt 2 succeeded")), "{flaky:#?}");
    let file = std::fs::read_to_string(state.join("logs/report_cw/report_cw@2010-12-01/flaky.log")).unwrap();
    assert_eq!(flaky.len(), file.lines().count(), "every line, once");
    reporter.close(Duration::from_secs(5)).await;

    // Shipping a task's log again replaces its stream: no duplicate lines.
    let sink = TaskLogSink::new(logs.clone(), &task_group, &state);
    let mut doc = nightjar::report::EventDoc::blank(nightjar::report::EventKind::TaskSucceeded);
    doc.dag = "report_cw".into();
    doc.run_id = "report_cw@2010-12-01".into();
    doc.task = Some("flaky".into());
    sink.send(std::slice::from_ref(&doc)).await.unwrap();
    let again = messages(&logs, &task_group, "report_cw@2010-12-01/flaky").await;
    assert_eq!(again, flaky);

    let _ = logs.delete_log_group().log_group_name(&metrics_group).send().await;
    let _ = logs.delete_log_group().log_group_name(&task_group).send().await;
}
