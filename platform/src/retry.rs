//! The retry policies of every loop that waits for something to come back — NATS, Postgres, a
//! lost race, the accept queue — on one crate (`backon`'s exponential backoff), so each names
//! its policy instead of writing its own doubling.
//!
//! A policy is the delay before the first retry, doubling to a ceiling, with jitter (a random
//! extra of up to the delay itself, so instances that failed together do not retry together).
//! Loops that count progress take a [`Delays`] and [`Delays::reset`] it on success; a call
//! that should simply be retried until it works uses [`until_ok`].

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder, Retryable};
use std::time::Duration;

/// The delays before successive retries: from `first`, doubling, at most `ceiling` (plus
/// jitter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The delay before the first retry.
    pub first: Duration,
    /// The longest delay (before jitter).
    pub ceiling: Duration,
}

/// A dependency that went away (NATS, Postgres, the stream): 100 ms doubling to 5 s.
pub const RECONNECT: Policy = Policy {
    first: Duration::from_millis(100),
    ceiling: Duration::from_secs(5),
};

/// A projection batch or runner that failed: 100 ms doubling to 10 s.
pub const PROJECTION: Policy = Policy {
    first: Duration::from_millis(100),
    ceiling: Duration::from_secs(10),
};

/// Accepting connections failed (out of file descriptors): 10 ms doubling to 1 s.
pub const ACCEPT: Policy = Policy {
    first: Duration::from_millis(10),
    ceiling: Duration::from_secs(1),
};

/// A command lost the race for a channel to another instance: 100 µs doubling to 6.4 ms, so
/// two instances hammering one channel take turns instead of one starving.
pub const CONTENTION: Policy = Policy {
    first: Duration::from_micros(100),
    ceiling: Duration::from_micros(6400),
};

impl Policy {
    fn builder(self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_min_delay(self.first)
            .with_max_delay(self.ceiling)
            .with_jitter()
            .without_max_times()
    }

    /// The delays of this policy, from the first.
    pub fn delays(self) -> Delays {
        Delays {
            policy: self,
            it: self.builder().build(),
        }
    }
}

/// Successive delays of a [`Policy`], for loops that also track progress.
#[derive(Debug)]
pub struct Delays {
    policy: Policy,
    it: ExponentialBackoff,
}

impl Delays {
    /// The delay before the next retry.
    pub fn next_delay(&mut self) -> Duration {
        self.it
            .next()
            .unwrap_or(self.policy.ceiling.saturating_mul(2))
    }

    /// Progress was made: the next failure waits the first delay again.
    pub fn reset(&mut self) {
        self.it = self.policy.builder().build();
    }
}

/// Calls `f` until it succeeds, sleeping by `policy` between attempts and logging each failure
/// (at `warn`, with `what` and the delay). Cancel it by dropping it (e.g. in a `select!` with
/// the shutdown).
pub async fn until_ok<T, E, F, Fut>(policy: Policy, what: &str, f: F) -> T
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let retried = f
        .retry(policy.builder())
        .notify(|e: &E, delay: Duration| {
            tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "{what} failed; retrying");
        })
        .await;
    match retried {
        Ok(v) => v,
        // `without_max_times` never gives up; should it ever, keep the promise of the name.
        Err(_) => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_to_the_ceiling_with_bounded_jitter_and_reset() {
        let mut d = RECONNECT.delays();
        let first: Vec<Duration> = (0..12).map(|_| d.next_delay()).collect();
        // Jitter adds at most the delay itself.
        assert!(first[0] >= RECONNECT.first && first[0] <= RECONNECT.first * 2);
        assert!(first[11] >= RECONNECT.ceiling && first[11] <= RECONNECT.ceiling * 2);
        d.reset();
        assert!(d.next_delay() <= RECONNECT.first * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn until_ok_retries_until_the_call_works() {
        let mut calls = 0;
        let v = until_ok(ACCEPT, "test", || {
            calls += 1;
            let n = calls;
            async move {
                if n < 4 {
                    Err("not yet")
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(v, 4);
    }
}
