//! One sink's delivery task: sends buffered events while the sink works;
//! after a failure, spools and re-sends the spool (oldest first) with
//! exponential backoff until it is empty, then goes back to the buffer.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use super::Shared;

/// Exponential backoff with jitter (+/-20%).
struct Backoff {
    initial: Duration,
    max: Duration,
    delay: Option<Duration>,
    next: Option<Instant>,
}

impl Backoff {
    fn failed(&mut self) {
        let d = match self.delay {
            None => self.initial,
            Some(d) => (d * 2).min(self.max),
        };
        self.delay = Some(d);
        self.next = Some(Instant::now() + d.mul_f64(0.8 + 0.4 * fastrand::f64()));
    }

    fn reset(&mut self) {
        self.delay = None;
        self.next = None;
    }

    fn due(&self) -> bool {
        self.next.is_none_or(|t| Instant::now() >= t)
    }
}

pub(super) async fn deliver(shared: Arc<Shared>, i: usize) {
    let sink = shared.sinks[i].clone();
    let batch_size = sink.batch_size().max(1);
    let mut backoff = Backoff {
        initial: shared.opts.retry_initial,
        max: shared.opts.retry_max,
        delay: None,
        next: None,
    };
    // Set when a send fails after close was asked: stop trying, spool.
    let mut give_up = false;
    loop {
        let closing = shared.closing.load(Ordering::SeqCst);
        if batch_size > 1 && !closing && partial_batch(&shared, i, batch_size) {
            // Events come one by one from the engine: wait a moment for
            // more, so that a call carries a full batch rather than one.
            tokio::time::sleep(LINGER).await;
        }
        let (batch, from_spool, idle_done) = {
            let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            let lane = &mut st.lanes[i];
            if lane.spool.is_empty() && backoff.delay.is_none() {
                let n = lane.buffer.len().min(batch_size);
                let batch: Vec<_> = lane.buffer.drain(..n).collect();
                lane.inflight = batch.clone();
                (batch, false, lane.buffer.is_empty())
            } else {
                // Degraded: everything goes through the spool, so that
                // newer events never overtake older ones.
                for (key, doc) in lane.buffer.drain(..) {
                    if let Err(e) = lane.spool.put(&key, &doc) {
                        tracing::warn!("report sink {}: event {} lost: {e:#}", sink.name(), doc.id);
                    }
                }
                let batch = if !give_up && (backoff.due() || closing) {
                    lane.spool.peek(batch_size)
                } else {
                    Vec::new()
                };
                let empty = lane.spool.is_empty();
                (batch, true, empty || give_up)
            }
        };
        if batch.is_empty() {
            if closing && idle_done {
                return;
            }
            if from_spool && !give_up && backoff.delay.is_some() && lane_empty(&shared, i) {
                // Spool drained: back to normal.
                backoff.reset();
                continue;
            }
            match backoff.next.filter(|_| from_spool && !give_up) {
                Some(at) => {
                    tokio::select! {
                        _ = shared.wake[i].notified() => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => shared.wake[i].notified().await,
            }
            continue;
        }
        let docs: Vec<_> = batch.iter().map(|(_, d)| d.clone()).collect();
        let result = sink.send(&docs).await;
        let mut st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
        let lane = &mut st.lanes[i];
        lane.inflight.clear();
        match result {
            Ok(()) => {
                lane.delivered += docs.len() as u64;
                if from_spool {
                    let keys: Vec<String> = batch.into_iter().map(|(k, _)| k).collect();
                    lane.spool.remove(&keys);
                    if lane.spool.is_empty() {
                        tracing::info!("report sink {} is back; its spool is delivered", sink.name());
                        backoff.reset();
                    }
                }
            }
            Err(e) => {
                lane.failures += 1;
                if backoff.delay.is_none() {
                    tracing::warn!(
                        "report sink {} failed ({e:#}); spooling to {} and retrying with backoff",
                        sink.name(),
                        lane.spool.dir().display()
                    );
                }
                if !from_spool {
                    for (key, doc) in batch {
                        if let Err(e) = lane.spool.put(&key, &doc) {
                            tracing::warn!("report sink {}: event {} lost: {e:#}", sink.name(), doc.id);
                        }
                    }
                }
                backoff.failed();
                if closing {
                    give_up = true;
                }
            }
        }
    }
}

/// How long a partial batch waits for more events.
const LINGER: Duration = Duration::from_millis(10);

/// Whether the sink is in normal mode with some, but not a batch of, events.
fn partial_batch(shared: &Shared, i: usize, batch_size: usize) -> bool {
    let st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    let lane = &st.lanes[i];
    lane.spool.is_empty() && !lane.buffer.is_empty() && lane.buffer.len() < batch_size
}

fn lane_empty(shared: &Shared, i: usize) -> bool {
    let st = shared.state.lock().unwrap_or_else(|p| p.into_inner());
    st.lanes[i].spool.is_empty()
}
