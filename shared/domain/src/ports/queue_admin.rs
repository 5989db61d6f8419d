use async_trait::async_trait;
use serde::Serialize;

use super::{BoxError, JobLedger};
use crate::clock::Clock;

/// Approximate message counts of one queue (SQS settles them within about a minute).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueCounts {
    /// Queue name.
    pub queue: String,
    /// Waiting to be received.
    pub visible: i64,
    /// Received, not yet deleted (being processed, or backing off).
    pub in_flight: i64,
    /// Not yet visible because of `DelaySeconds`.
    pub delayed: i64,
}

/// A message on the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetterEntry {
    /// Message id on the dead-letter queue.
    pub message_id: String,
    /// The job id, if the body decodes.
    pub job_id: Option<String>,
    /// The job kind, if the body decodes.
    pub kind: Option<String>,
    /// Why the worker set it aside (absent when the queue's redrive policy moved it).
    pub reason: Option<String>,
    /// The lane it came from, if known.
    pub source_queue: Option<String>,
}

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RedriveReport {
    /// Messages moved back to their lane.
    pub moved: usize,
    /// Messages left on the dead-letter queue (undecodable, or not selected).
    pub skipped: usize,
}

/// Operator access to the email queues: counts, the dead-letter queue, redrive.
#[async_trait]
pub trait QueueAdmin: Send + Sync {
    /// Counts for the two lanes and the dead-letter queue.
    async fn counts(&self) -> Result<Vec<QueueCounts>, BoxError>;
    /// Up to `max` messages on the dead-letter queue.
    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetterEntry>, BoxError>;
    /// Moves messages back to their lane — all, or only job `only` — resetting their job records
    /// to `queued`. The body, and so the job id, is kept.
    async fn redrive(
        &self,
        only: Option<&str>,
        ledger: &dyn JobLedger,
        clock: &dyn Clock,
    ) -> Result<RedriveReport, BoxError>;
}
