//! SQS: the producer side ([`SqsEmailQueue`], two lanes) and, for running outside Lambda, a
//! poller that drives the worker exactly as the Lambda event source mapping does
//! ([`SqsEventSource`]: receive a batch, invoke, delete what did not fail).

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName,
};

use oes_domain::email::{EmailJob, Lane};
use oes_domain::ports::{BoxError, Delivery, EmailQueue, QueueControl, QueueError};

/// The two email lanes on SQS.
#[derive(Clone)]
pub struct SqsEmailQueue {
    client: Client,
    priority_url: String,
    bulk_url: String,
}

impl SqsEmailQueue {
    /// Producer for the queues at these URLs.
    pub fn new(
        client: Client,
        priority_url: impl Into<String>,
        bulk_url: impl Into<String>,
    ) -> Self {
        Self {
            client,
            priority_url: priority_url.into(),
            bulk_url: bulk_url.into(),
        }
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| QueueError {
            context: "building a message attribute",
            source: e.into(),
        })
}

#[async_trait]
impl EmailQueue for SqsEmailQueue {
    #[tracing::instrument(skip_all, fields(job_id = %job.job_id, kind = job.template.kind()))]
    async fn enqueue(&self, job: &EmailJob) -> Result<(), QueueError> {
        let url = match job.lane() {
            Lane::Priority => &self.priority_url,
            Lane::Bulk => &self.bulk_url,
        };
        self.client
            .send_message()
            .queue_url(url)
            .message_body(job.encode())
            .delay_seconds(i32::try_from(job.delay_seconds).unwrap_or(i32::MAX))
            .message_attributes("job_id", string_attribute(&job.job_id)?)
            .message_attributes("kind", string_attribute(job.template.kind())?)
            .send()
            .await
            .map_err(|e| QueueError {
                context: "sending an email job to SQS",
                source: e.into(),
            })?;
        Ok(())
    }
}

/// Polls one queue and hands batches to a handler the way the Lambda event source mapping does
/// with `ReportBatchItemFailures`: records the handler lists as failed (or the whole batch, if
/// the handler errs) stay on the queue and come back after their visibility timeout; the others
/// are deleted.
pub struct SqsEventSource {
    client: Client,
    queue_url: String,
    queue_arn: String,
    region: String,
    batch_size: i32,
    wait: Duration,
}

impl SqsEventSource {
    /// An event source for the queue at `queue_url` (its ARN is looked up once, here).
    pub async fn new(client: Client, queue_url: impl Into<String>) -> Result<Self, BoxError> {
        let queue_url = queue_url.into();
        let attributes = client
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await?;
        let queue_arn = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default();
        let region = client
            .config()
            .region()
            .map(ToString::to_string)
            .unwrap_or_default();
        Ok(Self {
            client,
            queue_url,
            queue_arn,
            region,
            batch_size: 10,
            wait: Duration::from_secs(1),
        })
    }

    /// Sets the long-poll wait (0–20 s).
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Receives one batch (waiting up to the long-poll time), invokes `handler` with it, and
    /// deletes the records it did not report as failed. Returns how many records were received.
    pub async fn poll_once<F, Fut, E>(&self, handler: F) -> Result<usize, BoxError>
    where
        F: FnOnce(SqsEvent) -> Fut,
        Fut: Future<Output = Result<SqsBatchResponse, E>>,
        E: std::fmt::Display,
    {
        let received = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(self.batch_size)
            .wait_time_seconds(i32::try_from(self.wait.as_secs()).unwrap_or(20).min(20))
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await?;
        let messages = received.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(0);
        }
        let mut receipts = HashMap::new();
        let mut event = SqsEvent::default();
        for message in messages {
            let mut record = SqsMessage::default();
            record.message_id = message.message_id.clone();
            record.receipt_handle = message.receipt_handle.clone();
            record.body = message.body;
            record.md5_of_body = message.md5_of_body;
            record.attributes = message
                .attributes
                .unwrap_or_default()
                .into_iter()
                .map(|(name, value)| (name.as_str().to_owned(), value))
                .collect();
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(self.queue_arn.clone());
            record.aws_region = Some(self.region.clone());
            if let (Some(id), Some(receipt)) = (message.message_id, message.receipt_handle) {
                receipts.insert(id, receipt);
            }
            event.records.push(record);
        }
        let count = event.records.len();
        match handler(event).await {
            Ok(response) => {
                for failure in &response.batch_item_failures {
                    receipts.remove(&failure.item_identifier);
                }
                self.delete(receipts).await?;
            }
            Err(error) => {
                tracing::error!(%error, "the worker failed the whole batch; it will be redelivered");
            }
        }
        Ok(count)
    }

    async fn delete(&self, receipts: HashMap<String, String>) -> Result<(), BoxError> {
        if receipts.is_empty() {
            return Ok(());
        }
        let entries = receipts
            .into_iter()
            .enumerate()
            .map(|(i, (_, receipt))| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(receipt)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .client
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await?;
        for failed in out.failed {
            tracing::warn!(code = %failed.code, "could not delete a processed message; it may be redelivered");
        }
        Ok(())
    }
}

/// The worker's control over the messages it receives: backoff through the visibility timeout,
/// and moving a message to the dead-letter queue with its reason.
#[derive(Clone)]
pub struct SqsQueueControl {
    client: Client,
    urls_by_name: HashMap<String, String>,
    dead_letter_url: String,
}

/// The queue name at the end of a queue URL (`…/123456789012/name`) or ARN (`…:name`).
pub(crate) fn queue_name(url_or_arn: &str) -> &str {
    url_or_arn.rsplit(['/', ':']).next().unwrap_or(url_or_arn)
}

impl SqsQueueControl {
    /// Control over messages from the queues at `source_urls`, with `dead_letter_url` as the
    /// dead-letter queue.
    pub fn new(client: Client, source_urls: &[&str], dead_letter_url: impl Into<String>) -> Self {
        let urls_by_name = source_urls
            .iter()
            .map(|url| (queue_name(url).to_owned(), (*url).to_owned()))
            .collect();
        Self {
            client,
            urls_by_name,
            dead_letter_url: dead_letter_url.into(),
        }
    }

    fn url_of(&self, source_arn: &str) -> Result<&str, QueueError> {
        self.urls_by_name
            .get(queue_name(source_arn))
            .map(String::as_str)
            .ok_or_else(|| QueueError {
                context: "a message from a queue this worker is not configured for",
                source: source_arn.to_owned().into(),
            })
    }
}

#[async_trait]
impl QueueControl for SqsQueueControl {
    async fn retry_after(&self, delivery: &Delivery, seconds: u32) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(self.url_of(&delivery.source)?)
            .receipt_handle(&delivery.receipt_handle)
            .visibility_timeout(i32::try_from(seconds.min(43_200)).unwrap_or(43_200))
            .send()
            .await
            .map_err(|e| QueueError {
                context: "changing a message's visibility",
                source: e.into(),
            })?;
        Ok(())
    }

    async fn dead_letter(
        &self,
        delivery: &Delivery,
        body: &str,
        reason: &str,
    ) -> Result<(), QueueError> {
        let reason: String = reason.chars().take(1000).collect();
        self.client
            .send_message()
            .queue_url(&self.dead_letter_url)
            .message_body(body)
            .message_attributes("reason", string_attribute(&reason)?)
            .message_attributes(
                "source_queue",
                string_attribute(queue_name(&delivery.source))?,
            )
            .message_attributes(
                "original_message_id",
                string_attribute(&delivery.message_id)?,
            )
            .send()
            .await
            .map_err(|e| QueueError {
                context: "moving a message to the dead-letter queue",
                source: e.into(),
            })?;
        Ok(())
    }
}
