//! The cron daemon and backfill planning.
//!
//! - [`clock`]: the time source (the system clock, or tokio's clock, which
//!   tests pause and advance);
//! - [`catchup`]: which intervals are due at a moment, by the catch-up rule;
//! - [`reload`]: the DAG files the daemon runs, reloaded when they change;
//! - [`daemon`]: the loop: decide, record, run, recover;
//! - [`backfill`]: planning and running a range of dates.
//!
//! Fire times come from [`crate::spec::schedule`] (our own DST-aware
//! computation), not from a cron-scheduler crate: see docs/scheduling.md.

pub mod backfill;
pub mod catchup;
pub mod clock;
pub mod daemon;
pub mod reload;

pub use clock::{Clock, SystemClock, TokioClock};
pub use daemon::{Daemon, DaemonOptions};
