//! Epoch seconds read from Tokio's clock, so that under a paused runtime the ledger's time and
//! the queues' move together when the test advances it.

use oes_domain::clock::Clock;

/// Epoch seconds: `epoch` when built, then as Tokio's clock moves.
pub struct SimClock {
    epoch: i64,
    start: tokio::time::Instant,
}

impl SimClock {
    /// A clock reading `epoch` now.
    pub fn at(epoch: i64) -> Self {
        Self {
            epoch,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for SimClock {
    fn now(&self) -> i64 {
        let elapsed = tokio::time::Instant::now().duration_since(self.start);
        self.epoch + i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
    }
}
