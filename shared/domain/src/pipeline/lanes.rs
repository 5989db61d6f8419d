//! Email jobs onto their lane, and the worker's control over what it received.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::email::{EmailJob, MAX_DELAY_SECONDS};
use crate::ports::{
    Delivery, EmailQueue, MessageQueues, NewMessage, QueueControl, QueueError, QueueName,
    queue_name,
};

/// Message attribute: how many times the worker has put this job back on its queue.
pub const HOLDS_ATTRIBUTE: &str = "holds";
/// Message attribute of a receipt: SES accepted this job with this message id; only its record
/// is missing. A receipt stays one wherever it goes (the dead-letter queue, a redrive back to
/// its lane): its delivery records the id and sends nothing.
pub const RECEIPT_ATTRIBUTE: &str = "ses_message_id";

/// The longest reason kept on a dead letter (SQS attributes are small; the job record keeps the
/// whole error).
const MAX_REASON_CHARS: usize = 1000;

/// Whether SQS carries `c` in a message or an attribute: `#x9 | #xA | #xD | #x20–#xD7FF |
/// #xE000–#xFFFD | #x10000–#x10FFFF` (a Rust `char` is never a surrogate).
fn carried_by_sqs(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='\u{FFFD}' | '\u{10000}'..)
}

/// `job`'s message on its lane, with `body` (its encoding) and the attributes operators filter
/// by; no delay.
pub(super) fn lane_message(job: &EmailJob, body: String) -> NewMessage {
    NewMessage {
        body,
        delay_seconds: 0,
        attributes: BTreeMap::from([
            ("job_id".to_owned(), job.job_id.clone()),
            ("kind".to_owned(), job.template.kind().to_owned()),
        ]),
    }
}

/// The two lanes and the dead-letter queue, as producers and the worker use them.
#[derive(Clone)]
pub struct EmailLanes {
    queues: Arc<dyn MessageQueues>,
}

impl EmailLanes {
    /// The lanes of `queues`.
    pub fn new(queues: Arc<dyn MessageQueues>) -> Self {
        Self { queues }
    }

    /// The queue a delivery came from, by the name at the end of its source (an ARN on SQS).
    fn source_of(&self, delivery: &Delivery) -> Result<QueueName, QueueError> {
        let name = queue_name(&delivery.source);
        QueueName::ALL
            .into_iter()
            .find(|queue| self.queues.name(*queue) == name)
            .ok_or_else(|| QueueError {
                context: "a message from a queue this worker is not configured for",
                source: delivery.source.clone().into(),
            })
    }
}

#[async_trait]
impl EmailQueue for EmailLanes {
    #[tracing::instrument(skip_all, fields(job_id = %job.job_id, kind = job.template.kind()))]
    async fn enqueue(&self, job: &EmailJob) -> Result<(), QueueError> {
        let message = NewMessage {
            delay_seconds: job.delay_seconds,
            ..lane_message(job, job.encode())
        };
        self.queues.send(job.lane().into(), &message).await?;
        Ok(())
    }
}

#[async_trait]
impl QueueControl for EmailLanes {
    async fn retry_after(&self, delivery: &Delivery, seconds: u32) -> Result<(), QueueError> {
        let queue = self.source_of(delivery)?;
        self.queues
            .change_visibility(queue, &delivery.receipt_handle, seconds.min(43_200))
            .await
    }

    async fn renew(
        &self,
        delivery: &Delivery,
        body: &str,
        delay_seconds: u32,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
        let queue = self.source_of(delivery)?;
        let message = NewMessage {
            body: body.to_owned(),
            delay_seconds: delay_seconds.min(MAX_DELAY_SECONDS),
            attributes: attributes.clone(),
        };
        self.queues.send(queue, &message).await?;
        Ok(())
    }

    async fn dead_letter(
        &self,
        delivery: &Delivery,
        body: &str,
        reason: &str,
    ) -> Result<(), QueueError> {
        let source = self.source_of(delivery)?;
        let mut message = NewMessage {
            body: body.to_owned(),
            delay_seconds: 0,
            attributes: BTreeMap::from([
                (
                    "reason".to_owned(),
                    reason
                        .chars()
                        .take(MAX_REASON_CHARS)
                        .map(|c| if carried_by_sqs(c) { c } else { '\u{FFFD}' })
                        .collect(),
                ),
                (
                    "source_queue".to_owned(),
                    self.queues.name(source).to_owned(),
                ),
                (
                    "original_message_id".to_owned(),
                    delivery.message_id.clone(),
                ),
            ]),
        };
        // A receipt stays one on the dead-letter queue: a redrive then records it, sends nothing.
        if let Some(ses_message_id) = delivery.attributes.get(RECEIPT_ATTRIBUTE) {
            message
                .attributes
                .insert(RECEIPT_ATTRIBUTE.to_owned(), ses_message_id.clone());
        }
        self.queues.send(QueueName::DeadLetter, &message).await?;
        Ok(())
    }
}
