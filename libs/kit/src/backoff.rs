//! The one backoff policy of every retry: exponential, with jitter, bounded below and above, and
//! ending after a number of attempts.
//!
//! Each delay is drawn by `backon`'s [`ExponentialBuilder`]: the `n`-th step is
//! `min_delay * 2^(n-1)`, capped at half of `max_delay`, plus a random jitter of up to the step
//! itself (kept at most `max_delay`, whatever the rounding of `backon`'s `f32` arithmetic), so
//! every delay lies between `min_delay` and `max_delay` and two processes failing together
//! do not retry in step. The presets below are the few bounds callers truly need; their numbers
//! are in their names' documentation.
//!
//! Two ways to use a policy: [`Backoff::delays`], an iterator that ends after
//! [`Backoff::attempts_max`] delays (a loop that sleeps on each delay and gives up when it
//! ends), or [`Backoff::delay`], the delay after the `attempt`-th failure, for loops that count
//! their failures themselves (a failure counter reset on success, a message's delivery count)
//! and check it against [`Backoff::attempts_max`].

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

/// Steps after which the doubling has reached any cap (2^40 ns is more than 18 minutes).
const DOUBLINGS_MAX: u32 = 40;

/// A bounded exponential backoff with jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    min_delay: Duration,
    max_delay: Duration,
    attempts_max: u32,
}

impl Backoff {
    /// An append refused for its expected version (another writer went first): retried almost at
    /// once. 2 ms to 100 ms, 5 attempts.
    pub const CONFLICT: Backoff = Backoff::new(Duration::from_millis(2), Duration::from_millis(100), 5);

    /// A feed that failed to deliver or to park a message (a NATS or store hiccup): 10 ms to
    /// 1 s, 20 attempts.
    pub const FEED: Backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(1_000), 20);

    /// An event its handler could not take yet (delivered again later): 100 ms to 5 s,
    /// 5 attempts (a message's deliveries, after which it is parked).
    pub const REDELIVERY: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(5_000), 5);

    /// The NATS client reconnecting to its server: 10 ms to 1 s. The client takes only the
    /// delays and reconnects for as long as the process lives (a service comes back when NATS
    /// does); 60 attempts for a loop of its own.
    pub const RECONNECT: Backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(1_000), 60);

    /// A subscription or a relay following a log again after a failure (the store, NATS): 50 ms
    /// to 5 s, 60 attempts.
    pub const SUBSCRIPTION: Backoff =
        Backoff::new(Duration::from_millis(50), Duration::from_millis(5_000), 60);

    /// A flow waiting for another service (a reservation, a conclusion cut short): tried again
    /// from 2 s, up to 30 s, 60 attempts.
    pub const FLOW: Backoff = Backoff::new(Duration::from_millis(2_000), Duration::from_millis(30_000), 60);

    /// A policy whose delays lie between `min_delay` and `max_delay`, ending after `attempts_max`.
    ///
    /// # Panics
    /// If `min_delay` is zero or more than half of `max_delay` (no room to grow or jitter), or
    /// if `attempts_max` is zero.
    pub const fn new(min_delay: Duration, max_delay: Duration, attempts_max: u32) -> Backoff {
        assert!(!min_delay.is_zero(), "a backoff's min_delay is above zero");
        assert!(
            min_delay.as_nanos() * 2 <= max_delay.as_nanos(),
            "a backoff's min_delay is at most half its max_delay"
        );
        assert!(attempts_max > 0, "a backoff allows at least one attempt");
        Backoff { min_delay, max_delay, attempts_max }
    }

    /// The same bounds, ending after `attempts_max` attempts.
    pub const fn with_attempts_max(self, attempts_max: u32) -> Backoff {
        Backoff::new(self.min_delay, self.max_delay, attempts_max)
    }

    /// The same policy with other bounds of its delays.
    pub const fn with_delays(self, min_delay: Duration, max_delay: Duration) -> Backoff {
        Backoff::new(min_delay, max_delay, self.attempts_max)
    }

    /// The shortest delay.
    pub const fn min_delay(&self) -> Duration {
        self.min_delay
    }

    /// The bound every delay stays below.
    pub const fn max_delay(&self) -> Duration {
        self.max_delay
    }

    /// The attempts after which a retry ends.
    pub const fn attempts_max(&self) -> u32 {
        self.attempts_max
    }

    /// The delays of one retry, one per failure, ending after [`Backoff::attempts_max`].
    pub fn delays(&self) -> Delays {
        Delays {
            delays: self.builder().with_max_times(self.attempts_max as usize).build(),
            max_delay: self.max_delay,
        }
    }

    /// The delay after the `attempt`-th failure in a row (counted from 1; 0 is taken as 1), for
    /// loops that count their failures themselves.
    pub fn delay(&self, attempt: u64) -> Duration {
        let step = attempt.saturating_sub(1).min(u64::from(DOUBLINGS_MAX));
        let mut delays = self.builder().without_max_times().build();
        delays.nth(step as usize).unwrap_or(self.min_delay).min(self.max_delay)
    }

    /// The `backon` builder of this policy, unbounded in attempts, for `backon::Retryable`.
    pub fn builder(&self) -> ExponentialBuilder {
        ExponentialBuilder::new()
            .with_jitter()
            .with_factor(2.0)
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay / 2)
            .without_max_times()
    }
}

/// The delays of one retry of a [`Backoff`], ending after its attempts.
#[derive(Debug)]
pub struct Delays {
    delays: backon::ExponentialBackoff,
    max_delay: Duration,
}

impl Iterator for Delays {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        self.delays.next().map(|delay| delay.min(self.max_delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRESETS: [Backoff; 6] = [
        Backoff::CONFLICT,
        Backoff::FEED,
        Backoff::REDELIVERY,
        Backoff::RECONNECT,
        Backoff::SUBSCRIPTION,
        Backoff::FLOW,
    ];

    #[test]
    fn every_delay_stays_within_its_bounds() {
        for policy in PRESETS {
            for _ in 0..50 {
                for delay in policy.delays() {
                    assert!(delay >= policy.min_delay(), "{delay:?} below {policy:?}");
                    assert!(delay <= policy.max_delay(), "{delay:?} above {policy:?}");
                }
            }
            for attempt in [0, 1, 2, 10, 1_000, u64::MAX] {
                let delay = policy.delay(attempt);
                assert!(
                    delay >= policy.min_delay() && delay <= policy.max_delay(),
                    "{delay:?} out of {policy:?}"
                );
            }
        }
    }

    #[test]
    fn the_delays_grow_to_the_bound() {
        let policy = Backoff::new(Duration::from_millis(10), Duration::from_millis(1_000), 20);
        // Without jitter the n-th step is 10 ms * 2^(n-1) up to 500 ms; with it, a delay lies in
        // [step, 2 * step): the ranges of steps two apart never overlap.
        let delays: Vec<Duration> = policy.delays().collect();
        for pair in delays.windows(3).take(4) {
            assert!(pair[2] > pair[0], "{delays:?} does not grow");
        }
        assert!(delays[2] >= Duration::from_millis(40), "{delays:?}");
        assert!(delays.last().is_some_and(|last| *last >= Duration::from_millis(500)), "{delays:?}");
        assert!(policy.delay(3) >= Duration::from_millis(40));
        assert!(policy.delay(30) >= Duration::from_millis(500));
    }

    #[test]
    fn two_retries_do_not_wait_in_step() {
        let first: Vec<Duration> = Backoff::SUBSCRIPTION.delays().collect();
        let second: Vec<Duration> = Backoff::SUBSCRIPTION.delays().collect();
        assert_ne!(first, second, "no jitter");
        let singles: Vec<Duration> = (0..10).map(|_| Backoff::FEED.delay(4)).collect();
        assert!(singles.iter().any(|delay| *delay != singles[0]), "no jitter in {singles:?}");
    }

    #[test]
    fn a_bounded_retry_ends() {
        for policy in PRESETS {
            assert_eq!(policy.delays().count(), policy.attempts_max() as usize, "{policy:?}");
        }
        assert_eq!(Backoff::CONFLICT.with_attempts_max(2).delays().count(), 2);
    }
}
