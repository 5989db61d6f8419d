//! The in-process email queue of the embedded mode.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use oes_domain::clock::Clock;
use oes_domain::email::{EmailJob, Lane};
use oes_domain::ports::{
    BoxError, DeadLetterEntry, Delivery, EmailQueue, JobLedger, QueueAdmin, QueueControl,
    QueueCounts, QueueError, RedriveReport, StoreError,
};
use tokio::sync::Notify;

use super::lock;

/// A message on the in-process queue, with the bookkeeping SQS would keep.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    /// Unique per message (not per job).
    pub message_id: String,
    /// The job, encoded as on SQS.
    pub body: String,
    /// How many times it has been handed to the worker, including this time.
    pub receive_count: u32,
}

/// A message set aside on the dead-letter list, with why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The message.
    pub message: QueuedMessage,
    /// Why it was set aside.
    pub reason: String,
}

/// The in-process queue of the embedded mode: two lanes, the priority lane always drained first,
/// delayed messages, per-delivery visibility (the worker's backoff) and a dead-letter list.
#[derive(Default)]
pub struct MemoryQueue {
    lanes: Mutex<(VecDeque<QueuedMessage>, VecDeque<QueuedMessage>)>,
    visibility: Mutex<HashMap<String, u32>>,
    dead: Mutex<Vec<DeadLetter>>,
    ready: Notify,
    /// A handle to itself, for delayed deliveries (set by [`MemoryQueue::new`]).
    me: std::sync::Weak<MemoryQueue>,
}

impl MemoryQueue {
    /// A shared, empty queue.
    pub fn new() -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            ..Self::default()
        })
    }

    /// Takes up to `max` messages, priority lane first, waiting until at least one is there.
    pub async fn receive(&self, max: usize) -> Vec<QueuedMessage> {
        loop {
            let notified = self.ready.notified();
            let batch = self.try_receive(max);
            if !batch.is_empty() {
                return batch;
            }
            notified.await;
        }
    }

    /// Takes up to `max` messages without waiting.
    pub fn try_receive(&self, max: usize) -> Vec<QueuedMessage> {
        let mut lanes = lock(&self.lanes);
        let (priority, bulk) = &mut *lanes;
        let mut batch = Vec::new();
        while batch.len() < max {
            match priority.pop_front().or_else(|| bulk.pop_front()) {
                Some(mut message) => {
                    message.receive_count += 1;
                    batch.push(message);
                }
                None => break,
            }
        }
        batch
    }

    /// How long a failed delivery stays hidden: what the worker asked for, else `default`.
    pub fn take_visibility(&self, message_id: &str, default: u32) -> u32 {
        lock(&self.visibility).remove(message_id).unwrap_or(default)
    }

    /// Puts a failed message back at the end of its lane, or on the dead-letter list once it
    /// has been received `max_receives` times (the redrive policy of the real queues).
    pub fn release(&self, message: QueuedMessage, max_receives: u32) {
        if message.receive_count >= max_receives {
            tracing::error!(message_id = %message.message_id, "email job moved to the dead-letter list");
            let reason = format!("received {} times (redrive policy)", message.receive_count);
            lock(&self.dead).push(DeadLetter { message, reason });
            return;
        }
        let lane = EmailJob::decode(&message.body).map_or(Lane::Bulk, |job| job.lane());
        self.push(lane, message);
    }

    /// Messages set aside, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        lock(&self.dead).clone()
    }

    fn push(&self, lane: Lane, message: QueuedMessage) {
        {
            let mut lanes = lock(&self.lanes);
            match lane {
                Lane::Priority => lanes.0.push_back(message),
                Lane::Bulk => lanes.1.push_back(message),
            }
        }
        self.ready.notify_one();
    }
}

#[async_trait]
impl EmailQueue for MemoryQueue {
    async fn enqueue(&self, job: &EmailJob) -> Result<(), QueueError> {
        let message = QueuedMessage {
            message_id: uuid::Uuid::new_v4().to_string(),
            body: job.encode(),
            receive_count: 0,
        };
        let lane = job.lane();
        if job.delay_seconds == 0 {
            self.push(lane, message);
            return Ok(());
        }
        // Like SQS DelaySeconds: invisible until the delay has passed.
        let Some(queue) = self.me.upgrade().map(|q| Arc::downgrade(&q)) else {
            tracing::warn!("a MemoryQueue not built by MemoryQueue::new ignores delays");
            self.push(lane, message);
            return Ok(());
        };
        let delay = Duration::from_secs(u64::from(job.delay_seconds));
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(queue) = queue.upgrade() {
                queue.push(lane, message);
            }
        });
        Ok(())
    }
}

#[async_trait]
impl QueueControl for MemoryQueue {
    async fn retry_after(&self, delivery: &Delivery, seconds: u32) -> Result<(), QueueError> {
        lock(&self.visibility).insert(delivery.message_id.clone(), seconds);
        Ok(())
    }

    async fn dead_letter(
        &self,
        delivery: &Delivery,
        body: &str,
        reason: &str,
    ) -> Result<(), QueueError> {
        tracing::error!(message_id = %delivery.message_id, reason, "email job moved to the dead-letter list");
        lock(&self.dead).push(DeadLetter {
            message: QueuedMessage {
                message_id: delivery.message_id.clone(),
                body: body.to_owned(),
                receive_count: delivery.receive_count,
            },
            reason: reason.to_owned(),
        });
        Ok(())
    }
}

#[async_trait]
impl QueueAdmin for MemoryQueue {
    async fn counts(&self) -> Result<Vec<QueueCounts>, BoxError> {
        let (priority, bulk) = {
            let lanes = lock(&self.lanes);
            (lanes.0.len(), lanes.1.len())
        };
        let dead = lock(&self.dead).len();
        let counts = |queue: &str, visible: usize| QueueCounts {
            queue: queue.to_owned(),
            visible: i64::try_from(visible).unwrap_or(i64::MAX),
            in_flight: 0,
            delayed: 0,
        };
        Ok(vec![
            counts("memory-email-priority", priority),
            counts("memory-email-bulk", bulk),
            counts("memory-email-dlq", dead),
        ])
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetterEntry>, BoxError> {
        Ok(lock(&self.dead)
            .iter()
            .take(max)
            .map(|dead| {
                let job = EmailJob::decode(&dead.message.body).ok();
                DeadLetterEntry {
                    message_id: dead.message.message_id.clone(),
                    job_id: job.as_ref().map(|j| j.job_id.clone()),
                    kind: job.as_ref().map(|j| j.template.kind().to_owned()),
                    reason: Some(dead.reason.clone()),
                    source_queue: None,
                }
            })
            .collect())
    }

    async fn redrive(
        &self,
        only: Option<&str>,
        ledger: &dyn JobLedger,
        clock: &dyn Clock,
    ) -> Result<RedriveReport, BoxError> {
        let dead = std::mem::take(&mut *lock(&self.dead));
        let mut report = RedriveReport::default();
        for letter in dead {
            let job = EmailJob::decode(&letter.message.body)
                .ok()
                .filter(|job| only.is_none_or(|id| job.job_id == id));
            match job {
                Some(job) => {
                    ledger
                        .requeue(&job.job_id, clock.now())
                        .await
                        .or_else(|e| match e {
                            StoreError::NotFound => Ok(()),
                            other => Err(other),
                        })?;
                    let mut message = letter.message;
                    message.receive_count = 0;
                    self.push(job.lane(), message);
                    report.moved += 1;
                }
                None => {
                    lock(&self.dead).push(letter);
                    report.skipped += 1;
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oes_domain::email::EmailTemplate;
    use oes_domain::user::Email;

    fn job(template: EmailTemplate) -> EmailJob {
        EmailJob::new(Email::parse("ada@example.com").expect("valid"), template, 0)
    }

    #[tokio::test]
    async fn priority_jobs_are_never_stuck_behind_bulk_jobs() {
        let queue = MemoryQueue::new();
        for i in 0..25 {
            let notification = job(EmailTemplate::Generic {
                subject: format!("news {i}"),
                text: "text".into(),
            });
            queue.enqueue(&notification).await.expect("queued");
        }
        let urgent = job(EmailTemplate::Verification {
            name: "Ada".into(),
            token: oes_domain::security::Secret::new("t"),
        });
        queue.enqueue(&urgent).await.expect("queued");
        let first = queue.receive(10).await;
        let first_job = EmailJob::decode(&first[0].body).expect("job");
        assert_eq!(
            first_job.job_id, urgent.job_id,
            "the verification email goes first"
        );
        assert_eq!(first.len(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_jobs_wait_for_their_delay() {
        let queue = MemoryQueue::new();
        let delayed = job(EmailTemplate::Generic {
            subject: "later".into(),
            text: "text".into(),
        })
        .with_delay(900)
        .expect("valid");
        queue.enqueue(&delayed).await.expect("queued");
        tokio::task::yield_now().await;
        assert!(queue.try_receive(10).is_empty());
        tokio::time::advance(Duration::from_secs(901)).await;
        tokio::task::yield_now().await;
        assert_eq!(queue.try_receive(10).len(), 1);
    }
}
