//! The email worker: consumes SQS batches of [`EmailJob`]s and sends each at most once, with
//! BullMQ's guarantees rebuilt on SQS:
//!
//! - **Idempotent send**: a job is claimed in the [`JobLedger`] with a lease before sending; a
//!   redelivered, concurrently delivered or already sent job is acknowledged without a send.
//! - **Transient failure** (throttling, 5xx, timeouts): the job is marked `retrying`, the
//!   message's visibility is set to `base · 2^(attempt−1)` plus jitter, and the record is reported
//!   in `batchItemFailures`, so it comes back after the backoff. After `max_attempts` it is marked
//!   `dead` and moved to the dead-letter queue.
//! - **Permanent failure** (rejected message, bad request): marked `failed` with the reason and
//!   moved to the dead-letter queue at once — never retried until it dies.
//! - **Poison message** (a body that does not decode): moved to the dead-letter queue with the
//!   reason; the rest of the batch goes on.
//! - **Account-level failure** (sending paused): the attempt is not counted, the message waits
//!   the long "paused" backoff, and the log says so loudly.
//!
//! Records are processed concurrently (bounded), one span each; the response lists exactly the
//! records to be redelivered. Nothing here knows whether it runs in Lambda, `oes-local` or a test.

use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::StreamExt;
use futures_util::stream;
use oes_domain::clock::Clock;
use oes_domain::email::{EmailJob, Renderer};
use oes_domain::metrics;
use oes_domain::ports::{Claim, Delivery, JobLedger, MailError, Outcome};
use oes_runtime::config::RetryPolicy;
use oes_runtime::wiring::WorkerAdapters;
use tracing::Instrument;

/// What the worker needs, built once at init.
#[derive(Clone)]
pub struct Worker {
    adapters: WorkerAdapters,
    renderer: Renderer,
    retry: RetryPolicy,
    concurrency: usize,
    clock: Arc<dyn Clock>,
}

/// What becomes of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// Acknowledge: delete from the queue.
    Done,
    /// Leave on the queue for redelivery (reported in `batchItemFailures`).
    Redeliver,
}

fn jitter() -> u32 {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).map_or(0, |()| u32::from_le_bytes(bytes))
}

impl Worker {
    /// A worker over `adapters`, with links under `public_base_url`.
    pub fn new(
        adapters: WorkerAdapters,
        public_base_url: &str,
        retry: RetryPolicy,
        concurrency: usize,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            adapters,
            renderer: Renderer::new(public_base_url),
            retry,
            concurrency: concurrency.max(1),
            clock,
        }
    }

    /// Processes one SQS batch; the response lists exactly the records to redeliver.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let outcomes: Vec<(Option<String>, Disposition)> = stream::iter(event.records)
            .map(|record| {
                let span = tracing::info_span!(
                    "email_record",
                    message_id = record.message_id.as_deref().unwrap_or(""),
                    job_id = tracing::field::Empty,
                );
                async move {
                    let disposition = self.process(&record).await;
                    (record.message_id, disposition)
                }
                .instrument(span)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut response = SqsBatchResponse::default();
        for (message_id, disposition) in outcomes {
            if disposition == Disposition::Done {
                continue;
            }
            match message_id {
                Some(id) => {
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    response.batch_item_failures.push(failure);
                }
                None => tracing::error!("a record without a message id cannot be redelivered"),
            }
        }
        response
    }

    async fn process(&self, record: &SqsMessage) -> Disposition {
        let delivery = Delivery {
            source: record.event_source_arn.clone().unwrap_or_default(),
            message_id: record.message_id.clone().unwrap_or_default(),
            receipt_handle: record.receipt_handle.clone().unwrap_or_default(),
            receive_count: record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1),
        };
        let body = record.body.as_deref().unwrap_or_default();
        let job = match EmailJob::decode(body) {
            Ok(job) => job,
            Err(error) => {
                tracing::error!(%error, "undecodable email job");
                metrics::incr(metrics::EMAILS_DEAD, Some(("Kind", "undecodable")));
                return self
                    .set_aside(&delivery, body, &format!("undecodable: {error}"))
                    .await;
            }
        };
        tracing::Span::current().record("job_id", job.job_id.as_str());
        let now = self.clock.now();
        let lease = i64::from(self.retry.lease_seconds);
        match self.adapters.jobs.claim(&job, now, lease).await {
            Ok(Claim::Acquired { attempt }) => self.send(&delivery, &job, attempt, body).await,
            Ok(Claim::Finished(record)) => {
                tracing::info!(status = ?record.status, "job already finished; acknowledged without sending");
                metrics::incr(metrics::EMAILS_DUPLICATE, None);
                Disposition::Done
            }
            Ok(Claim::Busy { lease_until }) => {
                tracing::info!(lease_until, "another worker is sending this job");
                let wait = u32::try_from(lease_until - now + 1).unwrap_or(1).max(1);
                self.retry_after(&delivery, wait).await
            }
            Err(error) => {
                tracing::warn!(%error, "could not claim the job; it will be redelivered");
                self.retry_after(
                    &delivery,
                    self.retry.backoff(delivery.receive_count, jitter()),
                )
                .await
            }
        }
    }

    async fn send(
        &self,
        delivery: &Delivery,
        job: &EmailJob,
        attempt: u32,
        body: &str,
    ) -> Disposition {
        let email = self.renderer.render(job);
        let jobs: &dyn JobLedger = self.adapters.jobs.as_ref();
        let finish = |outcome: Outcome| async move {
            if let Err(error) = jobs.finish(&job.job_id, outcome, self.clock.now()).await {
                tracing::error!(%error, "could not record the job's outcome");
            }
        };
        let kind = Some(("Kind", job.template.kind()));
        let started = Instant::now();
        let sent = self.adapters.mailer.send(&email).await;
        metrics::duration(metrics::SEND_LATENCY, started.elapsed(), None);
        match sent {
            Ok(ses_message_id) => {
                tracing::info!(kind = job.template.kind(), attempt, %ses_message_id, "email sent");
                metrics::incr(metrics::EMAILS_SENT, kind);
                finish(Outcome::Sent { ses_message_id }).await;
                Disposition::Done
            }
            Err(MailError::Permanent(reason)) => {
                tracing::error!(%reason, attempt, "email refused permanently; not retried");
                metrics::incr(metrics::EMAILS_FAILED, kind);
                finish(Outcome::Failed {
                    reason: reason.clone(),
                })
                .await;
                self.set_aside(delivery, body, &format!("permanent failure: {reason}"))
                    .await
            }
            Err(MailError::Transient(error)) if attempt >= job.max_attempts => {
                tracing::error!(%error, attempt, "email attempts exhausted");
                metrics::incr(metrics::EMAILS_DEAD, kind);
                let reason = format!("{attempt} attempts failed; last: {error}");
                finish(Outcome::Dead {
                    reason: reason.clone(),
                })
                .await;
                self.set_aside(delivery, body, &reason).await
            }
            Err(MailError::Transient(error)) => {
                let wait = self.retry.backoff(attempt, jitter());
                tracing::warn!(%error, attempt, retry_in_seconds = wait, "email failed; will retry");
                metrics::incr(metrics::EMAILS_RETRIED, kind);
                finish(Outcome::Retrying { error }).await;
                self.retry_after(delivery, wait).await
            }
            Err(MailError::AccountPaused(error)) => {
                let wait = self.retry.paused_seconds;
                tracing::error!(%error, retry_in_seconds = wait, alarm = "SendingPaused", "the account cannot send email; attempt not counted");
                metrics::incr(metrics::SENDING_PAUSED, None);
                finish(Outcome::Paused { error }).await;
                self.retry_after(delivery, wait).await
            }
        }
    }

    /// Hides the message for `seconds`, then it is redelivered. If the visibility cannot be
    /// changed, it is still redelivered, after the queue's visibility timeout.
    async fn retry_after(&self, delivery: &Delivery, seconds: u32) -> Disposition {
        if let Err(error) = self.adapters.control.retry_after(delivery, seconds).await {
            tracing::warn!(%error, "could not set the backoff; the queue's visibility timeout applies");
        }
        Disposition::Redeliver
    }

    /// Moves the message to the dead-letter queue and acknowledges it; if that fails, leaves it
    /// for redelivery (and, after `maxReceiveCount`, the queue's own redrive to the DLQ).
    async fn set_aside(&self, delivery: &Delivery, body: &str, reason: &str) -> Disposition {
        match self
            .adapters
            .control
            .dead_letter(delivery, body, reason)
            .await
        {
            Ok(()) => Disposition::Done,
            Err(error) => {
                tracing::error!(%error, "could not move the message to the dead-letter queue");
                Disposition::Redeliver
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use oes_adapters::memory::MemoryJobs;
    use oes_domain::clock::ManualClock;
    use oes_domain::email::EmailTemplate;
    use oes_domain::email::OutgoingEmail;
    use oes_domain::ports::{JobStatus, Mailer, QueueControl, QueueError};
    use oes_domain::security::Secret;
    use oes_domain::user::Email;
    use std::collections::HashMap;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// Stands in for SES: answers from a script (then succeeds), counts what it sent.
    #[derive(Default)]
    struct ScriptedMailer {
        script: Mutex<VecDeque<MailError>>,
        sent: Mutex<Vec<OutgoingEmail>>,
    }

    impl ScriptedMailer {
        fn failing(errors: Vec<MailError>) -> Arc<Self> {
            Arc::new(Self {
                script: Mutex::new(errors.into()),
                ..Self::default()
            })
        }

        fn sent(&self) -> usize {
            self.sent.lock().map(|s| s.len()).unwrap_or(0)
        }
    }

    #[async_trait]
    impl Mailer for ScriptedMailer {
        async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
            if let Some(error) = self.script.lock().ok().and_then(|mut s| s.pop_front()) {
                return Err(error);
            }
            let mut sent = self
                .sent
                .lock()
                .map_err(|e| MailError::Transient(e.to_string()))?;
            sent.push(email.clone());
            Ok(format!("ses-{}", sent.len()))
        }
    }

    /// A message the worker set aside.
    struct DeadLetter {
        body: String,
        reason: String,
    }

    /// Stands in for the queue: records the backoff the worker asks for per message, and what
    /// it sets aside. (What the real queues do with these is the contract suites' business.)
    #[derive(Default)]
    struct RecordingControl {
        visibility: Mutex<HashMap<String, u32>>,
        dead: Mutex<Vec<DeadLetter>>,
    }

    impl RecordingControl {
        /// The backoff asked for `message_id` (and forgets it), else `default`.
        fn take_visibility(&self, message_id: &str, default: u32) -> u32 {
            self.visibility
                .lock()
                .ok()
                .and_then(|mut v| v.remove(message_id))
                .unwrap_or(default)
        }

        fn dead_letters(&self) -> std::sync::MutexGuard<'_, Vec<DeadLetter>> {
            self.dead
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }
    }

    #[async_trait]
    impl QueueControl for RecordingControl {
        async fn retry_after(&self, delivery: &Delivery, seconds: u32) -> Result<(), QueueError> {
            if let Ok(mut visibility) = self.visibility.lock() {
                visibility.insert(delivery.message_id.clone(), seconds);
            }
            Ok(())
        }

        async fn dead_letter(
            &self,
            _delivery: &Delivery,
            body: &str,
            reason: &str,
        ) -> Result<(), QueueError> {
            self.dead_letters().push(DeadLetter {
                body: body.to_owned(),
                reason: reason.to_owned(),
            });
            Ok(())
        }
    }

    struct Harness {
        worker: Worker,
        mailer: Arc<ScriptedMailer>,
        jobs: Arc<MemoryJobs>,
        queue: Arc<RecordingControl>,
    }

    fn harness(mailer: Arc<ScriptedMailer>) -> Harness {
        let jobs = Arc::new(MemoryJobs::default());
        let queue = Arc::new(RecordingControl::default());
        let adapters = WorkerAdapters {
            mailer: mailer.clone(),
            jobs: jobs.clone(),
            control: queue.clone(),
        };
        let retry = RetryPolicy::default();
        let worker = Worker::new(
            adapters,
            "http://localhost:3000",
            retry,
            5,
            Arc::new(ManualClock::at(1_000)),
        );
        Harness {
            worker,
            mailer,
            jobs,
            queue,
        }
    }

    fn job(to: &str) -> EmailJob {
        EmailJob::new(
            Email::parse(to).expect("valid"),
            EmailTemplate::Verification {
                name: "Ada".into(),
                token: Secret::new("tok"),
            },
            0,
        )
    }

    fn record(id: &str, body: &str, receive_count: u32) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.into());
        record.receipt_handle = Some(format!("rh-{id}"));
        record.body = Some(body.into());
        record.event_source_arn =
            Some("arn:aws:sqs:us-east-1:000000000000:oes-email-priority".into());
        record
            .attributes
            .insert("ApproximateReceiveCount".into(), receive_count.to_string());
        record
    }

    fn batch(records: Vec<SqsMessage>) -> SqsEvent {
        let mut event = SqsEvent::default();
        event.records = records;
        event
    }

    fn failed(response: &SqsBatchResponse) -> Vec<&str> {
        let mut ids: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        ids.sort_unstable();
        ids
    }

    async fn status(h: &Harness, job: &EmailJob) -> (JobStatus, u32) {
        let record = h
            .jobs
            .get(&job.job_id)
            .await
            .expect("read")
            .expect("recorded");
        (record.status, record.attempts)
    }

    #[tokio::test]
    async fn a_batch_sends_every_good_record_and_sets_the_poison_one_aside() {
        let h = harness(Arc::default());
        let response = h
            .worker
            .handle_batch(batch(vec![
                record("ok-1", &job("ada@example.com").encode(), 1),
                record("poison", "{not json", 1),
                record("ok-2", &job("grace@example.com").encode(), 1),
            ]))
            .await;
        assert!(
            failed(&response).is_empty(),
            "nothing is redelivered: {response:?}"
        );
        assert_eq!(h.mailer.sent(), 2);
        let dead = h.queue.dead_letters();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].body, "{not json");
        assert!(
            dead[0].reason.starts_with("undecodable"),
            "{}",
            dead[0].reason
        );
    }

    #[tokio::test]
    async fn a_redelivered_sent_job_is_acknowledged_without_a_second_send() {
        let h = harness(Arc::default());
        let body = job("ada@example.com").encode();
        for delivery in 1..=2 {
            let response = h
                .worker
                .handle_batch(batch(vec![record("m", &body, delivery)]))
                .await;
            assert!(failed(&response).is_empty());
        }
        assert_eq!(h.mailer.sent(), 1);
    }

    #[tokio::test]
    async fn transient_failures_back_off_exponentially_then_send_once() {
        let h = harness(ScriptedMailer::failing(vec![
            MailError::Transient("throttled".into()),
            MailError::Transient("503".into()),
        ]));
        let job = job("ada@example.com").with_max_attempts(3).expect("valid");
        let body = job.encode();
        let mut waits = Vec::new();
        for delivery in 1..=3 {
            let response = h
                .worker
                .handle_batch(batch(vec![record("m", &body, delivery)]))
                .await;
            if delivery < 3 {
                assert_eq!(failed(&response), ["m"], "delivery {delivery}");
                assert_eq!(status(&h, &job).await, (JobStatus::Retrying, delivery));
                waits.push(h.queue.take_visibility("m", 0));
            } else {
                assert!(failed(&response).is_empty());
            }
        }
        assert!(
            (2..=4).contains(&waits[0]) && (4..=6).contains(&waits[1]),
            "{waits:?}"
        );
        assert_eq!(h.mailer.sent(), 1);
        assert_eq!(status(&h, &job).await, (JobStatus::Sent, 3));
    }

    #[tokio::test]
    async fn exhausted_attempts_declare_the_job_dead_and_set_it_aside() {
        let h = harness(ScriptedMailer::failing(vec![
            MailError::Transient("a".into()),
            MailError::Transient("b".into()),
        ]));
        let job = job("ada@example.com").with_max_attempts(2).expect("valid");
        let body = job.encode();
        let first = h
            .worker
            .handle_batch(batch(vec![record("m", &body, 1)]))
            .await;
        assert_eq!(failed(&first), ["m"]);
        let second = h
            .worker
            .handle_batch(batch(vec![record("m", &body, 2)]))
            .await;
        assert!(failed(&second).is_empty(), "moved, not redelivered");
        assert_eq!(status(&h, &job).await, (JobStatus::Dead, 2));
        assert_eq!(h.queue.dead_letters().len(), 1);
        assert_eq!(h.mailer.sent(), 0);
    }

    #[tokio::test]
    async fn a_permanent_failure_is_not_retried() {
        let h = harness(ScriptedMailer::failing(vec![MailError::Permanent(
            "MessageRejected".into(),
        )]));
        let job = job("ada@example.com");
        let response = h
            .worker
            .handle_batch(batch(vec![record("m", &job.encode(), 1)]))
            .await;
        assert!(failed(&response).is_empty());
        let stored = h
            .jobs
            .get(&job.job_id)
            .await
            .expect("read")
            .expect("recorded");
        assert_eq!(stored.status, JobStatus::Failed);
        assert!(
            stored
                .last_error
                .is_some_and(|e| e.contains("MessageRejected"))
        );
        {
            let dead = h.queue.dead_letters();
            assert!(dead.len() == 1 && dead[0].reason.contains("MessageRejected"));
        }
        let again = h
            .worker
            .handle_batch(batch(vec![record("m", &job.encode(), 2)]))
            .await;
        assert!(failed(&again).is_empty());
        assert_eq!(h.mailer.sent(), 0, "a failed job is never sent");
    }

    #[tokio::test]
    async fn a_paused_account_does_not_use_up_attempts() {
        let h = harness(ScriptedMailer::failing(vec![MailError::AccountPaused(
            "SendingPaused".into(),
        )]));
        let job = job("ada@example.com");
        let response = h
            .worker
            .handle_batch(batch(vec![record("m", &job.encode(), 1)]))
            .await;
        assert_eq!(failed(&response), ["m"]);
        assert_eq!(status(&h, &job).await, (JobStatus::Retrying, 0));
        assert_eq!(
            h.queue.take_visibility("m", 0),
            RetryPolicy::default().paused_seconds
        );
    }

    #[tokio::test]
    async fn a_job_another_worker_is_sending_waits_for_its_lease() {
        let h = harness(Arc::default());
        let job = job("ada@example.com");
        h.jobs
            .claim(&job, 1_000, 60)
            .await
            .expect("claimed by someone else");
        let response = h
            .worker
            .handle_batch(batch(vec![record("m", &job.encode(), 2)]))
            .await;
        assert_eq!(failed(&response), ["m"]);
        assert_eq!(h.queue.take_visibility("m", 0), 61);
        assert_eq!(h.mailer.sent(), 0);
    }
}
