//! What operators see of the queues: counts and the dead-letter queue's entries (purging it is
//! [`super::purge`], which writes the job records too).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::lanes::RECEIPT_ATTRIBUTE;
use super::{release, take_dead_letters};
use crate::email::EmailJob;
use crate::ports::{MessageQueues, QueueCounts, QueueError, QueueName};

/// A message on the dead-letter queue.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// A receipt's SES message id: SES accepted this job already and only its record is
    /// missing (a redrive records it and sends nothing).
    pub ses_message_id: Option<String>,
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

    /// Up to `max` messages on the dead-letter queue. A queue has no peek: this receives them,
    /// hiding each for a moment so the next receive brings others, until `max` or a receive
    /// brings nothing new, then makes every one visible again. (Receiving with a zero
    /// visibility timeout instead would depend on the queue handing out different messages each
    /// time; the emulator hands out the same ten.)
    pub async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetterEntry>, QueueError> {
        self.dead_letters_within(max, None).await
    }

    /// As [`Self::dead_letters`], receiving no more once `time` has passed (a function that must
    /// answer within its timeout, however slowly the queue answers): the letters it has by then.
    pub async fn dead_letters_within(
        &self,
        max: usize,
        time: Option<Duration>,
    ) -> Result<Vec<DeadLetterEntry>, QueueError> {
        let until = time.map(|time| Instant::now() + time);
        let mut entries: Vec<DeadLetterEntry> = Vec::new();
        let mut in_hand = Vec::new();
        let listed = self.walk(max, until, &mut entries, &mut in_hand).await;
        release(self.queues.as_ref(), &in_hand).await;
        listed?;
        entries.truncate(max);
        Ok(entries)
    }

    async fn walk(
        &self,
        max: usize,
        until: Option<Instant>,
        entries: &mut Vec<DeadLetterEntry>,
        in_hand: &mut Vec<String>,
    ) -> Result<(), QueueError> {
        while entries.len() < max && until.is_none_or(|until| Instant::now() < until) {
            let batch = take_dead_letters(self.queues.as_ref()).await?;
            let before = entries.len();
            for message in batch {
                in_hand.push(message.receipt_handle);
                if entries.iter().any(|e| e.message_id == message.message_id) {
                    continue;
                }
                let job = EmailJob::decode(&message.body).ok();
                entries.push(DeadLetterEntry {
                    job_id: job.as_ref().map(|j| j.job_id.clone()),
                    kind: job.as_ref().map(|j| j.template.kind().to_owned()),
                    reason: message.attributes.get("reason").cloned(),
                    source_queue: message.attributes.get("source_queue").cloned(),
                    ses_message_id: message.attributes.get(RECEIPT_ATTRIBUTE).cloned(),
                    message_id: message.message_id,
                });
            }
            if entries.len() == before {
                break;
            }
        }
        Ok(())
    }
}
