//! The daemon's time source, injectable so that tests run days of
//! schedule on tokio's paused clock in milliseconds.

use std::future::Future;
use std::pin::Pin;

use chrono::{DateTime, Utc};

/// What the daemon asks of time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
    /// Resolves at `t` (at once if `t` has passed).
    fn sleep_until(&self, t: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The system clock. Sleeps are re-checked by the daemon, so a clock jump
/// (NTP, suspend) at worst delays a fire by one poll interval.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    fn sleep_until(&self, t: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let d = (t - Utc::now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(d))
    }
}

/// A wall clock that starts at `base` and moves with tokio's clock: under
/// `#[tokio::test(start_paused = true)]` it jumps straight to the next
/// timer whenever the runtime is idle.
pub struct TokioClock {
    base: DateTime<Utc>,
    origin: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(base: DateTime<Utc>) -> Self {
        Self {
            base,
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let d = tokio::time::Instant::now() - self.origin;
        self.base + chrono::Duration::from_std(d).unwrap_or_default()
    }
    fn sleep_until(&self, t: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let d = (t - self.base).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep_until(self.origin + d))
    }
}
