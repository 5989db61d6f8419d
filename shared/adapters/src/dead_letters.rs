//! Operations on the email queues: counts per queue, and the dead-letter queue (list, redrive,
//! purge). Redrive is receive → send to the source lane → delete, so it works on AWS and on the
//! emulator alike (which has no `StartMessageMoveTask`); the message body — and so the job id —
//! is kept, so a redriven job that was in fact sent is still not sent twice.

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{Message, QueueAttributeName};

use crate::sqs::queue_name;
use oes_domain::clock::Clock;
use oes_domain::email::{EmailJob, Lane};
use oes_domain::ports::{
    BoxError, DeadLetterEntry, JobLedger, QueueAdmin, QueueCounts, RedriveReport, StoreError,
};

/// The email queues, for operators.
pub struct EmailQueues {
    client: Client,
    priority_url: String,
    bulk_url: String,
    dead_letter_url: String,
}

fn attribute(message: &Message, name: &str) -> Option<String> {
    message
        .message_attributes()
        .and_then(|attributes| attributes.get(name))
        .and_then(|value| value.string_value())
        .map(str::to_owned)
}

impl EmailQueues {
    /// The queues at these URLs.
    pub fn new(client: Client, priority_url: &str, bulk_url: &str, dead_letter_url: &str) -> Self {
        Self {
            client,
            priority_url: priority_url.to_owned(),
            bulk_url: bulk_url.to_owned(),
            dead_letter_url: dead_letter_url.to_owned(),
        }
    }

    /// Counts for the two lanes and the DLQ.
    pub async fn counts(&self) -> Result<Vec<QueueCounts>, BoxError> {
        let mut all = Vec::new();
        for url in [&self.priority_url, &self.bulk_url, &self.dead_letter_url] {
            let out = self
                .client
                .get_queue_attributes()
                .queue_url(url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
                .send()
                .await?;
            let count = |name: QueueAttributeName| {
                out.attributes()
                    .and_then(|a| a.get(&name))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            all.push(QueueCounts {
                queue: queue_name(url).to_owned(),
                visible: count(QueueAttributeName::ApproximateNumberOfMessages),
                in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
                delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
            });
        }
        Ok(all)
    }

    async fn receive(&self, visibility_seconds: i32) -> Result<Vec<Message>, BoxError> {
        let out = self
            .client
            .receive_message()
            .queue_url(&self.dead_letter_url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility_seconds)
            .wait_time_seconds(0)
            .message_attribute_names("All")
            .send()
            .await?;
        Ok(out.messages.unwrap_or_default())
    }

    /// Up to `max` messages on the DLQ. SQS has no peek: this receives with a zero visibility
    /// timeout (the messages stay visible) until three receives in a row bring nothing new, so
    /// on a large DLQ the list is a sample.
    pub async fn list(&self, max: usize) -> Result<Vec<DeadLetterEntry>, BoxError> {
        let mut entries: Vec<DeadLetterEntry> = Vec::new();
        let mut idle = 0;
        while entries.len() < max && idle < 3 {
            let batch = self.receive(0).await?;
            let before = entries.len();
            for message in batch {
                let message_id = message.message_id().unwrap_or_default().to_owned();
                if entries.iter().any(|e| e.message_id == message_id) {
                    continue;
                }
                let job = message.body().and_then(|b| EmailJob::decode(b).ok());
                entries.push(DeadLetterEntry {
                    message_id,
                    job_id: job.as_ref().map(|j| j.job_id.clone()),
                    kind: job.as_ref().map(|j| j.template.kind().to_owned()),
                    reason: attribute(&message, "reason"),
                    source_queue: attribute(&message, "source_queue"),
                });
            }
            idle = if entries.len() == before { idle + 1 } else { 0 };
        }
        entries.truncate(max);
        Ok(entries)
    }

    /// Moves messages from the DLQ back to their lane — all of them, or only job `only` — and
    /// puts their job records back to `queued`. `progress` is called after each message moved.
    pub async fn redrive(
        &self,
        only: Option<&str>,
        ledger: &dyn JobLedger,
        clock: &dyn Clock,
        mut progress: impl FnMut(&RedriveReport),
    ) -> Result<RedriveReport, BoxError> {
        let mut report = RedriveReport::default();
        let mut seen = std::collections::HashSet::new();
        loop {
            let batch = self.receive(30).await?;
            if batch.is_empty() {
                break;
            }
            let mut fresh = 0;
            for message in batch {
                let message_id = message.message_id().unwrap_or_default().to_owned();
                if !seen.insert(message_id) {
                    continue;
                }
                fresh += 1;
                let receipt = message.receipt_handle().unwrap_or_default().to_owned();
                let job = message.body().and_then(|b| EmailJob::decode(b).ok());
                let selected = match (&job, only) {
                    (Some(job), Some(id)) => job.job_id == id,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                let Some(job) = job.filter(|_| selected) else {
                    self.release(&receipt).await?;
                    report.skipped += 1;
                    continue;
                };
                let lane_url = match job.lane() {
                    Lane::Priority => &self.priority_url,
                    Lane::Bulk => &self.bulk_url,
                };
                self.client
                    .send_message()
                    .queue_url(lane_url)
                    .message_body(message.body().unwrap_or_default())
                    .send()
                    .await?;
                match ledger.requeue(&job.job_id, clock.now()).await {
                    Ok(()) | Err(StoreError::NotFound) => {}
                    Err(error) => {
                        tracing::warn!(job_id = %job.job_id, %error, "could not reset the job record")
                    }
                }
                self.client
                    .delete_message()
                    .queue_url(&self.dead_letter_url)
                    .receipt_handle(receipt)
                    .send()
                    .await?;
                report.moved += 1;
                progress(&report);
            }
            if fresh == 0 {
                break;
            }
        }
        Ok(report)
    }

    /// Makes a received DLQ message visible again at once.
    async fn release(&self, receipt: &str) -> Result<(), BoxError> {
        self.client
            .change_message_visibility()
            .queue_url(&self.dead_letter_url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await?;
        Ok(())
    }

    /// Deletes every message on the DLQ.
    pub async fn purge_dead_letters(&self) -> Result<(), BoxError> {
        self.client
            .purge_queue()
            .queue_url(&self.dead_letter_url)
            .send()
            .await?;
        Ok(())
    }
}

#[async_trait]
impl QueueAdmin for EmailQueues {
    async fn counts(&self) -> Result<Vec<QueueCounts>, BoxError> {
        EmailQueues::counts(self).await
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetterEntry>, BoxError> {
        self.list(max).await
    }

    async fn redrive(
        &self,
        only: Option<&str>,
        ledger: &dyn JobLedger,
        clock: &dyn Clock,
    ) -> Result<RedriveReport, BoxError> {
        EmailQueues::redrive(self, only, ledger, clock, |_| {}).await
    }
}
