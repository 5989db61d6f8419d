//! What operators see of the queues: counts, the dead-letter queue's entries, purge.

use std::sync::Arc;

use serde::Serialize;

use crate::email::EmailJob;
use crate::ports::{MessageQueues, QueueCounts, QueueError, QueueName};

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

/// Operator access to the email queues.
#[derive(Clone)]
pub struct QueueAdmin {
    queues: Arc<dyn MessageQueues>,
}

impl QueueAdmin {
    /// Over `queues`.
    pub fn new(queues: Arc<dyn MessageQueues>) -> Self {
        Self { queues }
    }

    /// The queues themselves (for [`super::redrive`]).
    pub fn queues(&self) -> &dyn MessageQueues {
        self.queues.as_ref()
    }

    /// Counts for the two lanes and the dead-letter queue.
    pub async fn counts(&self) -> Result<Vec<QueueCounts>, QueueError> {
        let mut all = Vec::with_capacity(QueueName::ALL.len());
        for queue in QueueName::ALL {
            all.push(self.queues.counts(queue).await?);
        }
        Ok(all)
    }

    /// Up to `max` messages on the dead-letter queue. A queue has no peek: this receives with a
    /// zero visibility timeout (the messages stay visible) until three receives in a row bring
    /// nothing new, so on a large dead-letter queue the list is a sample.
    pub async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetterEntry>, QueueError> {
        let mut entries: Vec<DeadLetterEntry> = Vec::new();
        let mut idle = 0;
        while entries.len() < max && idle < 3 {
            let batch = self
                .queues
                .receive(
                    QueueName::DeadLetter,
                    10,
                    Some(0),
                    std::time::Duration::ZERO,
                )
                .await?;
            let before = entries.len();
            for message in batch {
                if entries.iter().any(|e| e.message_id == message.message_id) {
                    continue;
                }
                let job = EmailJob::decode(&message.body).ok();
                entries.push(DeadLetterEntry {
                    job_id: job.as_ref().map(|j| j.job_id.clone()),
                    kind: job.as_ref().map(|j| j.template.kind().to_owned()),
                    reason: message.attributes.get("reason").cloned(),
                    source_queue: message.attributes.get("source_queue").cloned(),
                    message_id: message.message_id,
                });
            }
            idle = if entries.len() == before { idle + 1 } else { 0 };
        }
        entries.truncate(max);
        Ok(entries)
    }

    /// Deletes every message on the dead-letter queue.
    pub async fn purge_dead_letters(&self) -> Result<(), QueueError> {
        self.queues.purge(QueueName::DeadLetter).await
    }
}
