//! How long to wait before the next attempt.

use std::time::Duration;

use crate::spec::TaskPolicy;

/// The wait before attempt `next_attempt` (2 for the first retry):
/// `retry_delay * retry_backoff^(n-1)`, spread by +/-`retry_jitter`.
/// `unit` is a random number in [0, 1).
pub fn backoff(policy: &TaskPolicy, next_attempt: u32, unit: f64) -> Duration {
    let n = next_attempt.saturating_sub(2) as i32;
    let base = policy.retry_delay.as_secs_f64() * policy.retry_backoff.powi(n);
    let spread = 1.0 + policy.retry_jitter * (2.0 * unit - 1.0);
    // A day is longer than any sensible retry wait; it also keeps the
    // float finite for absurd backoff settings.
    Duration::from_secs_f64((base * spread).clamp(0.0, 86_400.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_the_jitter() {
        let p = TaskPolicy {
            retries: 3,
            retry_delay: Duration::from_secs(30),
            retry_backoff: 2.0,
            retry_jitter: 0.1,
            timeout: None,
        };
        assert_eq!(backoff(&p, 2, 0.5), Duration::from_secs(30));
        assert_eq!(backoff(&p, 3, 0.5), Duration::from_secs(60));
        assert_eq!(backoff(&p, 4, 0.5), Duration::from_secs(120));
        assert_eq!(backoff(&p, 2, 0.0), Duration::from_secs(27));
        assert!(backoff(&p, 2, 0.999_999) <= Duration::from_secs(33));
    }
}
