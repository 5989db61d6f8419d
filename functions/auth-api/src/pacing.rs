//! Answers that take as long whatever the address. A request that names an email address (a
//! sign-up, a verification resend, a password reset request, an email change) does more when
//! the address has an account than when it has none: a token written, an email queued, against
//! one read. Here that is about 5 ms against 30–60 ms, enough to tell in one request who has an
//! account, though every answer says the same. So each of them answers no sooner than a floor
//! after its work began, set above what the slower path takes: the time a client sees is the
//! floor's, whatever the address.
//!
//! Work that overruns the floor (a slow store, a cold connection) answers when it is done, as
//! it would without a floor; it is logged and counted (`AnswerFloorExceeded`, by action),
//! because for as long as it happens the time can tell again, and the floor should rise.

use std::future::Future;
use std::time::Duration;

use oes_domain::metrics::{self, ANSWER_FLOOR_EXCEEDED};
use tokio::time::Instant;

/// The floor these requests answer at, by default. The slower path (two reads, a token write
/// in a transaction, the job record and the SQS send) takes 30–60 ms against moto here and a
/// similar time in AWS, where a fresh environment's first calls also open their TLS
/// connections; 300 ms is several times that, and short for a person waiting for an email.
pub const ANSWER_FLOOR: Duration = Duration::from_millis(300);

/// Makes work take at least a floor.
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    floor: Duration,
}

impl Pace {
    /// Answers no sooner than `floor` after the work begins (zero: as soon as it is done).
    pub const fn new(floor: Duration) -> Self {
        Self { floor }
    }

    /// Runs `work` and returns its result, success or error alike, no sooner than the floor
    /// after it began. `action` names the request in the log and the metric.
    pub async fn answer<T>(&self, action: &'static str, work: impl Future<Output = T>) -> T {
        let deadline = Instant::now() + self.floor;
        let answer = work.await;
        let now = Instant::now();
        if now <= deadline {
            tokio::time::sleep_until(deadline).await;
        } else if !self.floor.is_zero() {
            let over = now - deadline;
            tracing::warn!(
                action,
                floor_ms = self.floor.as_millis(),
                over_ms = over.as_millis(),
                "the work took longer than its answer floor: its time may tell whether the address has an account"
            );
            metrics::incr(ANSWER_FLOOR_EXCEEDED, Some(("Action", action)));
        }
        answer
    }
}

impl Default for Pace {
    fn default() -> Self {
        Self::new(ANSWER_FLOOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn quick_work_answers_at_the_floor_and_slow_work_when_it_is_done() {
        let pace = Pace::new(Duration::from_millis(300));
        for (work, answered) in [(0, 300), (120, 300), (300, 300), (450, 450)] {
            let started = Instant::now();
            let value = pace
                .answer("test", async {
                    tokio::time::sleep(Duration::from_millis(work)).await;
                    work
                })
                .await;
            assert_eq!(value, work);
            assert_eq!(
                started.elapsed(),
                Duration::from_millis(answered),
                "{work} ms of work"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_floor_answers_when_the_work_is_done() {
        let started = Instant::now();
        Pace::new(Duration::ZERO)
            .answer("test", tokio::time::sleep(Duration::from_millis(7)))
            .await;
        assert_eq!(started.elapsed(), Duration::from_millis(7));
    }
}
