use std::collections::BTreeMap;

use async_trait::async_trait;

use super::QueueError;

/// One delivery of a queue message to the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The queue it came from (its ARN on SQS).
    pub source: String,
    /// The message id.
    pub message_id: String,
    /// The receipt handle of this delivery.
    pub receipt_handle: String,
    /// How many times it has been delivered, this time included.
    pub receive_count: u32,
    /// Its string attributes.
    pub attributes: BTreeMap<String, String>,
}

/// What the worker may do to a message besides acknowledging it.
#[async_trait]
pub trait QueueControl: Send + Sync {
    /// Hides the message for `seconds` from now, so its next delivery comes after that backoff
    /// (instead of after the queue's visibility timeout).
    async fn retry_after(&self, delivery: &Delivery, seconds: u32) -> Result<(), QueueError>;
    /// Puts a fresh copy of the message — `body` with `attributes` — on the queue it came from,
    /// delivered after `delay_seconds` (at most 900). The caller then acknowledges the original.
    /// A wait that is the worker's choice thus uses none of the message's receives, so the
    /// queue's `maxReceiveCount` only ever catches a worker that cannot act.
    async fn renew(
        &self,
        delivery: &Delivery,
        body: &str,
        delay_seconds: u32,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), QueueError>;
    /// Copies the message to the dead-letter queue with `reason`, for an operator to inspect or
    /// redrive. The caller then acknowledges the original.
    async fn dead_letter(
        &self,
        delivery: &Delivery,
        body: &str,
        reason: &str,
    ) -> Result<(), QueueError>;
}
