//! Events to SQS, on the moto server: FIFO order per DAG and deduplication,
//! the documents match the schema, and an endpoint that goes away (during
//! a run, or for good until the next process) loses nothing and duplicates
//! nothing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use crate::report_support::*;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use nightjar::report::sqs::{SqsSink, client};
use nightjar::report::{DeliveryOptions, Reporter, Sink};
use nightjar::store::RunState;
use nightjar::testenv::{aws_endpoint, aws_options};

fn quick() -> DeliveryOptions {
    DeliveryOptions {
        buffer: 1024,
        retry_initial: Duration::from_millis(50),
        retry_max: Duration::from_millis(300),
    }
}

async fn create_queue(fifo: bool) -> (aws_sdk_sqs::Client, String) {
    let sqs = client(&aws_options()).await;
    let mut req = sqs.create_queue();
    if fifo {
        req = req
            .queue_name(format!("{}.fifo", unique("nj-events")))
            .attributes(QueueAttributeName::FifoQueue, "true");
    } else {
        req = req.queue_name(unique("nj-events"));
    }
    let url = req.send().await.expect("create queue on moto").queue_url.unwrap();
    (sqs, url)
}

/// Receives (and deletes) messages until `n` arrived or nothing more comes.
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, n: usize) -> Vec<aws_sdk_sqs::types::Message> {
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut empty_polls = 0;
    while std::time::Instant::now() < deadline && empty_polls < 3 {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(if got.len() >= n { 1 } else { 2 })
            .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        let msgs = out.messages.unwrap_or_default();
        if msgs.is_empty() && got.len() >= n {
            empty_polls += 1;
        }
        for m in msgs {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            got.push(m);
        }
    }
    got
}

fn body_json(m: &aws_sdk_sqs::types::Message) -> serde_json::Value {
    serde_json::from_str(m.body().unwrap()).unwrap()
}

#[tokio::test]
async fn fifo_queue_gets_every_event_in_order_and_each_matches_the_schema() {
    let (sqs, url) = create_queue(true).await;
    let fx = fixture(&mixed_dag("report_sqs_fifo"));
    let rec = Recorder::new("rec");
    let sinks: Vec<Arc<dyn Sink>> = vec![rec.clone(), Arc::new(SqsSink::new(&aws_options(), &url).await)];
    let reporter = Reporter::start(sinks, &fx.root().join(".nightjar/spool"), quick()).unwrap();
    let mut engine = fx.engine();
    engine.observers.push(reporter.clone());
    assert_eq!(fx.run(&engine, "2010-12-01").await.state, RunState::Failed);
    assert!(reporter.flush(Duration::from_secs(20)).await, "{:?}", reporter.stats());

    let expected = rec.ids();
    assert_eq!(expected.len(), 13);
    let msgs = receive(&sqs, &url, expected.len()).await;
    let schema = schema();
    for m in &msgs {
        assert_valid(&schema, m.body().unwrap());
        let group = m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
            .cloned();
        assert_eq!(group.as_deref(), Some("report_sqs_fifo"), "group id = dag");
        let kind = m.message_attributes().unwrap()["event"]
            .string_value()
            .unwrap()
            .to_string();
        assert_eq!(kind, body_json(m)["kind"].as_str().unwrap());
    }
    let got: Vec<String> = msgs
        .iter()
        .map(|m| body_json(m)["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        got, expected,
        "the FIFO queue holds the events in the order they happened"
    );
    sqs.delete_queue().queue_url(&url).send().await.unwrap();
}

#[tokio::test]
async fn fifo_queue_drops_a_resent_event() {
    let (sqs, url) = create_queue(true).await;
    let sink = SqsSink::new(&aws_options(), &url).await;
    let mut doc = nightjar::report::EventDoc::blank(nightjar::report::EventKind::RunStarted);
    doc.dag = "dedup".into();
    doc.run_id = "dedup@2010-12-01".into();
    doc.state = "running".into();
    sink.send(std::slice::from_ref(&doc)).await.unwrap();
    // A re-send (a lost reply, or the spool after a crash) of the same event.
    sink.send(std::slice::from_ref(&doc)).await.unwrap();
    let mut other = doc.clone();
    other.id = format!("{:032x}", 7u128);
    sink.send(std::slice::from_ref(&other)).await.unwrap();
    let msgs = receive(&sqs, &url, 2).await;
    let ids: Vec<String> = msgs
        .iter()
        .map(|m| body_json(m)["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, [doc.id.clone(), other.id.clone()]);
    sqs.delete_queue().queue_url(&url).send().await.unwrap();
}

#[tokio::test]
async fn endpoint_stopped_during_a_run_then_back_gets_every_event_exactly_once() {
    let (sqs, url) = create_queue(false).await;
    let switch = Switch::to(&aws_endpoint()).await;
    let fx = fixture(&ok_dag("report_sqs_outage", ""));
    let rec = Recorder::new("rec");
    let sink = SqsSink::new(&aws_at(&switch.url()), &url).await;
    let reporter = Reporter::start(
        vec![rec.clone(), Arc::new(sink)],
        &fx.root().join(".nightjar/spool"),
        quick(),
    )
    .unwrap();
    let mut engine = fx.engine();
    engine.observers.push(reporter.clone());

    // Down for the whole first run; the run does not notice.
    switch.set_up(false);
    assert_eq!(fx.run(&engine, "2010-12-01").await.state, RunState::Success);
    // The SDK's own attempts (two) fail first; then the batch is spooled.
    let waited = std::time::Instant::now();
    while reporter.stats()[1].failures == 0 && waited.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sqs_stats = reporter.stats()[1].clone();
    assert_eq!(sqs_stats.delivered, 0, "{sqs_stats:?}");
    assert!(sqs_stats.failures >= 1 && sqs_stats.spooled == 6, "{sqs_stats:?}");

    // Back up: the spool goes out, then the next run's events behind it.
    switch.set_up(true);
    assert_eq!(fx.run(&engine, "2010-12-02").await.state, RunState::Success);
    assert!(reporter.flush(Duration::from_secs(30)).await, "{:?}", reporter.stats());
    let msgs = receive(&sqs, &url, 12).await;
    let got: Vec<String> = msgs
        .iter()
        .map(|m| body_json(m)["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(got.len(), 12, "no event lost, none twice: {got:?}");
    assert_eq!(got.iter().collect::<HashSet<_>>().len(), 12);
    let mut want = rec.ids();
    let mut have = got.clone();
    want.sort();
    have.sort();
    assert_eq!(have, want);
    reporter.close(Duration::from_secs(5)).await;
    sqs.delete_queue().queue_url(&url).send().await.unwrap();
}

#[tokio::test]
async fn a_closed_port_spools_and_the_next_process_delivers() {
    let (sqs, url) = create_queue(true).await;
    let fx = fixture(&ok_dag("report_sqs_restart", ""));
    let spool = fx.root().join(".nightjar/spool");

    // Nothing listens on this port: every send fails at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let reporter = Reporter::start(
        vec![Arc::new(SqsSink::new(&aws_at(&dead), &url).await)],
        &spool,
        quick(),
    )
    .unwrap();
    let mut engine = fx.engine();
    engine.observers.push(reporter.clone());
    let report = fx.run(&engine, "2010-12-01").await;
    assert_eq!(report.state, RunState::Success);
    let stats = reporter.close(Duration::from_secs(10)).await;
    assert_eq!((stats[0].delivered, stats[0].spooled), (0, 6), "{stats:?}");
    drop(engine);

    // "Restart": a new reporter for the same queue, now reachable.
    let reporter = Reporter::start(
        vec![Arc::new(SqsSink::new(&aws_options(), &url).await)],
        &spool,
        quick(),
    )
    .unwrap();
    assert!(reporter.flush(Duration::from_secs(20)).await, "{:?}", reporter.stats());
    let msgs = receive(&sqs, &url, 6).await;
    let kinds: Vec<String> = msgs
        .iter()
        .map(|m| {
            let v = body_json(m);
            format!(
                "{}{}",
                v["kind"].as_str().unwrap(),
                v["task"].as_str().map(|t| format!(":{t}")).unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "task_started:a",
            "task_succeeded:a",
            "task_started:b",
            "task_succeeded:b",
            "run_succeeded"
        ]
    );
    reporter.close(Duration::from_secs(5)).await;
    sqs.delete_queue().queue_url(&url).send().await.unwrap();
}
