//! A circuit breaker, so a Redis that is down or hung costs the timeout a few times, not on every
//! request: after `failures` consecutive failed calls it opens and calls are skipped; after
//! `cool_down` one call probes Redis, and its outcome closes or reopens the breaker.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out; another is allowed if it has not reported by `until`.
    Probing {
        until: Instant,
    },
}

/// Counts failures of one Redis client.
#[derive(Debug)]
pub struct Breaker {
    failures: u32,
    cool_down: Duration,
    state: Mutex<State>,
}

impl Breaker {
    /// Opens after `failures` consecutive failures (at least one), for `cool_down`.
    pub fn new(failures: u32, cool_down: Duration) -> Self {
        Self {
            failures: failures.max(1),
            cool_down,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a call may go to Redis now.
    pub fn allow(&self) -> bool {
        let mut state = self.state();
        let now = Instant::now();
        match *state {
            State::Closed { .. } => true,
            State::Open { until } | State::Probing { until } if now < until => false,
            State::Open { .. } | State::Probing { .. } => {
                *state = State::Probing {
                    until: now + self.cool_down,
                };
                true
            }
        }
    }

    /// A call succeeded.
    pub fn succeeded(&self) {
        let mut state = self.state();
        if !matches!(*state, State::Closed { .. }) {
            tracing::info!("cache circuit closed: Redis answers again");
        }
        *state = State::Closed { failures: 0 };
    }

    /// A call failed or timed out.
    pub fn failed(&self) {
        let mut state = self.state();
        let open = State::Open {
            until: Instant::now() + self.cool_down,
        };
        match *state {
            State::Closed { failures } if failures + 1 < self.failures => {
                *state = State::Closed {
                    failures: failures + 1,
                };
            }
            State::Closed { .. } => {
                tracing::warn!(
                    cool_down_ms = self.cool_down.as_millis(),
                    "cache circuit opened: Redis calls are skipped"
                );
                *state = open;
            }
            State::Probing { .. } => *state = open,
            State::Open { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn it_opens_after_consecutive_failures_and_probes_once_after_the_cool_down() {
        let breaker = Breaker::new(3, Duration::from_secs(5));
        breaker.failed();
        breaker.failed();
        assert!(breaker.allow(), "two failures do not open it");
        breaker.failed();
        assert!(!breaker.allow(), "three do");

        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(breaker.allow(), "one probe after the cool-down");
        assert!(!breaker.allow(), "only one");
        breaker.failed();
        assert!(!breaker.allow(), "a failed probe reopens it");

        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(breaker.allow());
        breaker.succeeded();
        assert!(breaker.allow() && breaker.allow(), "a good probe closes it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_count() {
        let breaker = Breaker::new(2, Duration::from_secs(5));
        breaker.failed();
        breaker.succeeded();
        breaker.failed();
        assert!(breaker.allow());
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_never_reports_does_not_block_the_next() {
        let breaker = Breaker::new(1, Duration::from_secs(5));
        breaker.failed();
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(
            breaker.allow(),
            "the probe (whose request is then cancelled)"
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(breaker.allow(), "another probe");
    }
}
