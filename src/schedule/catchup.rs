//! Which intervals are due at a moment: the catch-up rule.
//!
//! The same rule serves every situation: a normal fire, a restart after an
//! outage, an unpause and a schedule edit. Due are the intervals whose run
//! time (the fire that ends them) is after the last recorded decision and
//! not after now. With `catchup = false` only the latest of them runs; with
//! `catchup = true` all of them, oldest first, at most `max_catchup` (the
//! latest ones; older ones are reported, for `nightjar backfill`).

use chrono::{DateTime, Duration, Utc};

use crate::spec::Dag;
use crate::spec::schedule::{Fire, Slot, local_start_of};

/// An interval to run now.
#[derive(Debug, Clone)]
pub struct Due {
    pub slot: Slot,
    /// The fire that ends the interval (when its run was due).
    pub fire: Fire,
    pub reason: String,
}

/// What the rule decided.
#[derive(Debug, Default)]
pub struct Decided {
    /// Oldest first.
    pub due: Vec<Due>,
    /// Missed intervals not run (catchup = false, or past max_catchup):
    /// (oldest key, newest key, how many; `None` when more than counted).
    pub left_out: Option<(String, String, Option<usize>)>,
}

/// Where counting starts when nothing was recorded: the fire that opens
/// the DAG's first interval (`start`), else nothing (only the latest
/// interval is due).
pub fn start_bound(dag: &Dag) -> Option<DateTime<Utc>> {
    let s = dag.schedule.as_ref()?;
    let start = dag.start?;
    let midnight = local_start_of(start, dag.tz).with_timezone(&Utc);
    s.next_fire(midnight - Duration::nanoseconds(1))
        .map(|f| f.at.with_timezone(&Utc))
}

/// The intervals due at `now` when the last recorded decision fired at
/// `after` (exclusive).
pub fn due(dag: &Dag, after: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Decided {
    let Some(s) = dag.schedule.as_ref() else {
        return Decided::default();
    };
    // Nothing recorded and no `start`: only the latest interval.
    let limit = if dag.catchup && after.is_some() {
        dag.max_catchup.max(1) as usize
    } else {
        1
    };
    // Fires back from now, newest first: each pair (older, newer) is one
    // interval, run at `newer`. One fire more than needed, to know whether
    // older intervals were left out.
    let mut fires: Vec<Fire> = Vec::new();
    let mut t = now;
    while fires.len() < limit + 2 {
        let Some(f) = s.prev_fire(t) else { break };
        t = f.at.with_timezone(&Utc) - Duration::nanoseconds(1);
        let at = f.at.with_timezone(&Utc);
        fires.push(f);
        if after.is_some_and(|a| at <= a) {
            break;
        }
    }
    let runs_after = |f: &Fire| after.is_none_or(|a| f.at.with_timezone(&Utc) > a);
    let in_range = |slot: &Slot| {
        let d = slot.interval.start.date_naive();
        dag.end.is_none_or(|e| d <= e) && dag.start.is_none_or(|st| d >= st)
    };
    let mut candidates: Vec<Due> = Vec::new();
    for w in fires.windows(2) {
        let (newer, older) = (&w[0], &w[1]);
        if !runs_after(newer) {
            break;
        }
        let slot = Slot {
            key: s.key_of(older),
            interval: crate::spec::schedule::Interval {
                start: older.at,
                end: newer.at,
            },
        };
        if in_range(&slot) {
            candidates.push(Due {
                slot,
                fire: newer.clone(),
                reason: String::new(),
            });
        }
    }
    let missed = candidates.len();
    let take = limit.min(missed);
    let mut decided = Decided::default();
    // Intervals left out: from the one opened by the last recorded fire to
    // the one before the oldest taken.
    let oldest_taken = candidates[..take]
        .last()
        .map(|c| c.slot.interval.start.with_timezone(&Utc));
    let mut more = false;
    if let (Some(a), Some(first_start)) = (after, oldest_taken)
        && first_start > a
    {
        let opening = s.fires_between(a - Duration::nanoseconds(1), first_start - Duration::nanoseconds(1));
        let left: Vec<&Fire> = opening
            .iter()
            .filter(|f| {
                let d = f.at.date_naive();
                dag.start.is_none_or(|st| d >= st)
            })
            .collect();
        if let (Some(o), Some(n)) = (left.first(), left.last()) {
            more = true;
            decided.left_out = Some((s.key_of(o), s.key_of(n), Some(left.len())));
        }
    }
    let reason = if take <= 1 && !more {
        "schedule".to_string()
    } else if dag.catchup {
        "catchup".to_string()
    } else {
        "catchup=false: latest missed interval only".to_string()
    };
    candidates.truncate(take);
    candidates.reverse();
    for c in &mut candidates {
        c.reason = reason.clone();
    }
    decided.due = candidates;
    decided
}
