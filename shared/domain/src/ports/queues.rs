//! The message queues under the email pipeline — SQS in AWS, a twin in memory — as the few
//! operations the pipeline uses, on the three queues it has. Everything above (queueing a job,
//! the worker's backoff and dead-lettering, counts, the dead-letter queue and redrive, the poller
//! that drives the worker outside Lambda) is written once over this port, so it runs the same on
//! both.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use super::QueueError;
use crate::email::Lane;

/// One of the pipeline's queues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueName {
    /// The lane of account emails.
    Priority,
    /// The lane of notifications.
    Bulk,
    /// Where messages go when they cannot be sent, by the worker's choice or by the lanes'
    /// redrive policy (`maxReceiveCount`).
    DeadLetter,
}

impl QueueName {
    /// Every queue, lanes first.
    pub const ALL: [Self; 3] = [Self::Priority, Self::Bulk, Self::DeadLetter];

    /// Its position in [`QueueName::ALL`] (for per-queue arrays).
    pub const fn index(self) -> usize {
        match self {
            Self::Priority => 0,
            Self::Bulk => 1,
            Self::DeadLetter => 2,
        }
    }
}

/// The queue name at the end of a queue URL (`…/123456789012/name`) or ARN (`…:name`).
pub fn queue_name(url_or_arn: &str) -> &str {
    url_or_arn.rsplit(['/', ':']).next().unwrap_or(url_or_arn)
}

impl From<Lane> for QueueName {
    fn from(lane: Lane) -> Self {
        match lane {
            Lane::Priority => Self::Priority,
            Lane::Bulk => Self::Bulk,
        }
    }
}

/// A message to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewMessage {
    /// The body.
    pub body: String,
    /// Seconds before it can be received (0–900).
    pub delay_seconds: u32,
    /// String attributes (SQS message attributes).
    pub attributes: BTreeMap<String, String>,
}

/// One delivery of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The message's id (the same on every delivery, and on the dead-letter queue after a move
    /// by the redrive policy).
    pub message_id: String,
    /// This delivery's handle: deleting or hiding the message needs the latest one.
    pub receipt_handle: String,
    /// The body.
    pub body: String,
    /// How many times it has been received, this time included (`ApproximateReceiveCount`).
    pub receive_count: u32,
    /// Its string attributes.
    pub attributes: BTreeMap<String, String>,
}

/// Approximate message counts of one queue (SQS settles them within about a minute).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// The queues, with SQS's semantics: at-least-once delivery, a visibility timeout per receive
/// (the queue's own unless the receive says otherwise), `ChangeMessageVisibility`, delays, and
/// each lane's redrive policy — a message received `maxReceiveCount` times and not deleted moves
/// to the dead-letter queue on its next receive.
#[async_trait]
pub trait MessageQueues: Send + Sync {
    /// The queue's name: the last part of its URL and of its ARN.
    fn name(&self, queue: QueueName) -> &str;
    /// Sends a message; returns its id.
    async fn send(&self, queue: QueueName, message: &NewMessage) -> Result<String, QueueError>;
    /// Up to `max` (1–10) visible messages, each hidden from other receives for `visibility`
    /// seconds (the queue's visibility timeout when `None`; 0 leaves it visible). Waits up to
    /// `wait` (at most 20 s) for one to become visible.
    async fn receive(
        &self,
        queue: QueueName,
        max: u32,
        visibility: Option<u32>,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError>;
    /// Deletes the message this delivery is of (a stale handle deletes nothing, as on SQS).
    async fn delete(&self, queue: QueueName, receipt_handle: &str) -> Result<(), QueueError>;
    /// Hides the message of this delivery for `seconds` from now (0: visible at once).
    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt_handle: &str,
        seconds: u32,
    ) -> Result<(), QueueError>;
    /// Approximate counts.
    async fn counts(&self, queue: QueueName) -> Result<QueueCounts, QueueError>;
    /// Deletes every message.
    async fn purge(&self, queue: QueueName) -> Result<(), QueueError>;
}
