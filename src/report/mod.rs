//! Reporting runs to other systems: every run and task event as a versioned
//! JSON document (`event.rs`, schema in `docs/events.schema.json`) to SQS,
//! an NDJSON file or stdout; metrics and task logs to CloudWatch Logs;
//! alerts on failure, success and SLA misses.
//!
//! Delivery never breaks or slows a run. The [`Reporter`] is an engine
//! [`Observer`]: it turns each event into a document and puts it in one
//! bounded buffer per sink, and returns. A task per sink sends from there.
//! When a buffer is full or its sink fails, events go to that sink's spool
//! on disk (`.nightjar/spool/<sink>/`) and are re-sent, oldest first, with
//! backoff until the sink takes them, also by the next process after a
//! restart. Delivery is at least once; every document has a unique `id` to
//! deduplicate on. See docs/reporting.md.

pub mod alert;
pub mod cloudwatch;
mod delivery;
pub mod event;
pub mod ndjson;
pub mod settings;
pub mod spool;
pub mod sqs;
pub mod stdout;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use tokio::sync::Notify;

use crate::engine::{Event, Observer};
pub use event::{EventDoc, EventKind};
pub use settings::ReportSettings;
use spool::Spool;

/// Somewhere events go.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// A stable name for this sink and its destination (the same settings
    /// give the same name after a restart): its spool folder's name.
    fn name(&self) -> String;

    /// Events sent in one call, at most.
    fn batch_size(&self) -> usize {
        10
    }

    /// Whether this sink takes the event at all (checked before buffering).
    fn wants(&self, _doc: &EventDoc) -> bool {
        true
    }

    /// Sends events, in order. An error means "try all of them again later"
    /// (so a sink may see an event twice, never lose one).
    async fn send(&self, batch: &[EventDoc]) -> Result<()>;
}

/// How delivery behaves; the defaults suit production, tests shorten them.
#[derive(Debug, Clone)]
pub struct DeliveryOptions {
    /// Events buffered in memory per sink before they go to the spool.
    pub buffer: usize,
    /// The first wait before re-sending after a failure; doubles each time.
    pub retry_initial: Duration,
    pub retry_max: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        Self {
            buffer: 1024,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(60),
        }
    }
}

/// One sink's buffer, spool and counters.
struct Lane {
    buffer: VecDeque<(String, EventDoc)>,
    spool: Spool,
    /// The batch being sent (spooled if the process stops before it is
    /// delivered).
    inflight: Vec<(String, EventDoc)>,
    delivered: u64,
    overflowed: u64,
    failures: u64,
}

struct State {
    documenter: event::Documenter,
    seq: u64,
    lanes: Vec<Lane>,
}

struct Shared {
    /// One lock orders everything: assigning sequence numbers, filling the
    /// buffers and spooling, so events leave in the order they happened.
    state: Mutex<State>,
    sinks: Vec<Arc<dyn Sink>>,
    wake: Vec<Notify>,
    opts: DeliveryOptions,
    /// Spool keys start with the reporter's start time, so a later process
    /// sorts after the events an earlier one left.
    boot: String,
    closing: AtomicBool,
}

/// Figures of one sink, for tests, benchmarks and the end-of-run notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkStats {
    pub name: String,
    pub delivered: u64,
    pub buffered: usize,
    pub spooled: usize,
    pub overflowed: u64,
    pub failures: u64,
}

/// Reports engine events to sinks without ever blocking the engine on them.
pub struct Reporter {
    shared: Arc<Shared>,
    workers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Reporter {
    /// Starts one delivery task per sink (on the current tokio runtime),
    /// spooling under `spool_root/<sink name>/`. Events a previous process
    /// spooled there are delivered first.
    pub fn start(sinks: Vec<Arc<dyn Sink>>, spool_root: &Path, opts: DeliveryOptions) -> Result<Arc<Reporter>> {
        let mut lanes = Vec::new();
        for s in &sinks {
            lanes.push(Lane {
                buffer: VecDeque::new(),
                spool: Spool::open(&spool_root.join(safe_name(&s.name())))?,
                inflight: Vec::new(),
                delivered: 0,
                overflowed: 0,
                failures: 0,
            });
        }
        let boot_us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_micros();
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                documenter: Default::default(),
                seq: 0,
                lanes,
            }),
            wake: sinks.iter().map(|_| Notify::new()).collect(),
            sinks,
            opts,
            boot: format!("{boot_us:017}"),
            closing: AtomicBool::new(false),
        });
        let workers = (0..shared.sinks.len())
            .map(|i| tokio::spawn(delivery::deliver(shared.clone(), i)))
            .collect();
        Ok(Arc::new(Reporter {
            shared,
            workers: Mutex::new(workers),
        }))
    }

    /// Queues a document (already built) for every sink that wants it.
    pub fn publish(&self, doc: EventDoc) {
        let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        self.enqueue(&mut st, doc);
    }

    fn enqueue(&self, st: &mut State, doc: EventDoc) {
        st.seq += 1;
        let key = format!("{}-{:010}", self.shared.boot, st.seq);
        for (i, sink) in self.shared.sinks.iter().enumerate() {
            if !sink.wants(&doc) {
                continue;
            }
            let lane = &mut st.lanes[i];
            if lane.buffer.len() < self.shared.opts.buffer {
                lane.buffer.push_back((key.clone(), doc.clone()));
            } else {
                // Full: the sink is slow or down. To disk, not to memory.
                if lane.overflowed == 0 {
                    tracing::warn!("report sink {} is behind; spooling events to disk", sink.name());
                }
                lane.overflowed += 1;
                if let Err(e) = lane.spool.put(&key, &doc) {
                    tracing::warn!("report sink {}: event {} dropped: {e:#}", sink.name(), doc.id);
                }
            }
            self.shared.wake[i].notify_one();
        }
    }

    /// Per-sink figures.
    pub fn stats(&self) -> Vec<SinkStats> {
        let st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        st.lanes
            .iter()
            .zip(&self.shared.sinks)
            .map(|(l, s)| SinkStats {
                name: s.name(),
                delivered: l.delivered,
                buffered: l.buffer.len() + l.inflight.len(),
                spooled: l.spool.len(),
                overflowed: l.overflowed,
                failures: l.failures,
            })
            .collect()
    }

    /// Waits until every sink has taken every event (true), or `timeout`.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.stats().iter().all(|s| s.buffered == 0 && s.spooled == 0) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            for w in &self.shared.wake {
                w.notify_one();
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stops delivery: sends what it can within `timeout` (one try per sink,
    /// no backoff waits), then spools whatever is left for the next process.
    /// Returns the figures at the end.
    pub async fn close(&self, timeout: Duration) -> Vec<SinkStats> {
        self.shared.closing.store(true, Ordering::SeqCst);
        for w in &self.shared.wake {
            w.notify_one();
        }
        let workers: Vec<_> = std::mem::take(&mut *self.workers.lock().unwrap_or_else(|p| p.into_inner()));
        let deadline = tokio::time::Instant::now() + timeout;
        for mut w in workers {
            if tokio::time::timeout_at(deadline, &mut w).await.is_err() {
                w.abort();
                let _ = w.await;
            }
        }
        {
            let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
            for (lane, sink) in st.lanes.iter_mut().zip(&self.shared.sinks) {
                let left: Vec<_> = lane.inflight.drain(..).chain(lane.buffer.drain(..)).collect();
                for (key, doc) in left {
                    if let Err(e) = lane.spool.put(&key, &doc) {
                        tracing::warn!("report sink {}: event {} lost: {e:#}", sink.name(), doc.id);
                    }
                }
                lane.spool.release();
            }
        }
        self.stats()
    }
}

impl Observer for Reporter {
    fn event(&self, e: &Event<'_>) {
        let mut st = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(doc) = st.documenter.document(e, chrono::Utc::now()) {
            self.enqueue(&mut st, doc);
        }
    }
}

/// A folder name from a sink name (no path separators or odd characters).
fn safe_name(name: &str) -> PathBuf {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from(s)
}

/// A short stable hash of a sink's destination, for sink names.
pub(crate) fn short_hash(s: &str) -> String {
    format!("{:012x}", xxhash_rust::xxh3::xxh3_64(s.as_bytes()) & 0xffff_ffff_ffff)
}
