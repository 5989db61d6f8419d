//! The email worker: consumes SQS batches of [`EmailJob`]s and has each accepted by SES once,
//! with BullMQ's guarantees rebuilt on SQS. The job ledger, not SQS, keeps the count:
//!
//! - **Idempotent send**: a job is claimed in the [`JobLedger`] with a lease before sending; a
//!   redelivered, concurrently delivered or already sent job is acknowledged without a send.
//!   SES's acceptance is recorded at once (retried); if the ledger refuses every try, a
//!   *receipt* — a copy of the message carrying SES's message id — goes on the queue (on the
//!   dead-letter queue if the lane refuses it, for a redrive), and its delivery writes the
//!   record instead of sending.
//! - **Holding on purpose** (a transient failure's backoff, another worker's lease, a paused
//!   account or spent quota, a ledger that cannot be reached): the worker puts a fresh copy of the
//!   message on its queue, delayed, and acknowledges the original. Waiting thus uses none of the
//!   message's SQS receives: the lanes' `maxReceiveCount` only catches a worker that cannot act
//!   (one that crashes, or cannot reach the queue), and `max_attempts` may exceed it.
//! - **Transient failure** (throttling, 5xx, timeouts): marked `retrying`, held for
//!   `base · 2^(attempt−1)` plus jitter. After `max_attempts` (ledger attempts) it is dead.
//! - **Account-level failure** (sending paused, daily quota spent): the attempt is not counted,
//!   the message waits the long "paused" backoff, the log says so loudly, a metric alarms.
//! - **Permanent failure** (rejected message, bad request), **attempts exhausted**: the message
//!   goes to the dead-letter queue with its reason *first*, then the record says `failed`/`dead`.
//!   A finished record thus always has its letter where redrive can reach it; if the
//!   dead-letter send fails, the job stays open and comes back.
//! - **Poison message** (a body that does not decode, or whose job id cannot be a key): moved to
//!   the dead-letter queue with the reason; the rest of the batch goes on. A job the ledger
//!   still refuses after [`MAX_HOLDS`] holds (or a receipt it cannot record) is set aside there
//!   too, with the error: no message circulates for ever.
//!
//! Records are processed concurrently (bounded), one span each; the response lists exactly the
//! records to be redelivered. Nothing here knows whether it runs in Lambda, `oes-local` or a test.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::StreamExt;
use futures_util::stream;
use oes_domain::clock::Clock;
use oes_domain::email::{EmailJob, Renderer};
use oes_domain::metrics;
use oes_domain::ports::{Claim, Delivery, JobConflict, MailError, Outcome, QueueError, StoreError};
use oes_runtime::config::RetryPolicy;
use oes_runtime::http::error_chain;
use oes_runtime::wiring::WorkerAdapters;
use tracing::Instrument;

pub use oes_domain::pipeline::{HOLDS_ATTRIBUTE, RECEIPT_ATTRIBUTE};

/// Holds in a row after which a job the ledger still cannot claim, or a receipt it still cannot
/// record, is set aside on the dead-letter queue with the error — each hold is a fresh copy, so
/// the lanes' `maxReceiveCount` never would. With the default backoff (10 s doubling, at most 15
/// min) that is about 11 hours of a failing ledger; a ledger that refuses a job for good (a key
/// it cannot take) thus never keeps a message circulating for ever. Only holds for the ledger
/// count: a wait on purpose (a retry's backoff, a paused account) starts the count over, so a
/// long SES pause does not leave the next ledger hiccup one hold from the dead-letter queue.
pub const MAX_HOLDS: u32 = 48;

/// Tries at writing a job's outcome before the worker falls back (a receipt for `sent`,
/// redelivery for the others): the pause before each.
pub const RECORD_TRIES: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(200),
    Duration::from_secs(1),
];

/// The most queue calls one record makes after its send: a hold (a fresh copy on its lane); if
/// that fails and the copy is a receipt (SES accepted the email, its `sent` record could not be
/// written), the receipt set aside on the dead-letter queue; if that fails too, the delivery
/// hidden instead (a visibility change). The worker's timeout model (`timeout_chain.rs`) counts
/// them; a unit test holds the worst path to it.
pub const QUEUE_CALLS_AFTER_SEND: u32 = 3;

/// What the worker needs, built once at init.
#[derive(Clone)]
pub struct Worker {
    adapters: WorkerAdapters,
    renderer: Renderer,
    retry: RetryPolicy,
    concurrency: usize,
    clock: Arc<dyn Clock>,
    jitter: Jitter,
}

/// Where the backoff's jitter comes from: the OS by default, a seeded source in simulations.
pub type Jitter = Arc<dyn Fn() -> u32 + Send + Sync>;

/// What becomes of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disposition {
    /// Acknowledge: delete from the queue.
    Done,
    /// Leave on the queue for redelivery (reported in `batchItemFailures`).
    Redeliver,
}

fn os_jitter() -> u32 {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).map_or(0, |()| u32::from_le_bytes(bytes))
}

/// Why a job is held, which sets the holds count its copy carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// The ledger failed (a claim, a receipt): one more hold in a row; past [`MAX_HOLDS`] of
    /// them the job is set aside.
    ForTheLedger,
    /// The ledger failed for the first time since it last answered: a sent email's record,
    /// after the claim that let it be sent. The count starts over, at one.
    FirstForTheLedger,
    /// A wait on purpose — another worker's lease, a retry's backoff, an account that cannot
    /// send — bounded elsewhere (the lease, the attempts) or waited out on purpose: the count
    /// starts over.
    OnPurpose,
}

/// One delivery of a decoded job, with what the worker needs to hold or set it aside.
struct Received<'a> {
    delivery: Delivery,
    job: EmailJob,
    body: &'a str,
}

impl Received<'_> {
    /// How many times in a row the worker has put this job back for the ledger.
    fn holds(&self) -> u32 {
        self.delivery
            .attributes
            .get(HOLDS_ATTRIBUTE)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }

    /// The count the next hold carries: one more, never past `u32::MAX` (the count comes from
    /// the message, which anyone who can send to the queue writes).
    fn next_hold(&self) -> u32 {
        self.holds().saturating_add(1)
    }
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
            jitter: Arc::new(os_jitter),
        }
    }

    /// Takes the backoff's jitter from `jitter` (a seeded source makes a run repeatable).
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
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
            attributes: record
                .message_attributes
                .iter()
                .filter_map(|(name, value)| Some((name.clone(), value.string_value.clone()?)))
                .collect(),
        };
        let body = record.body.as_deref().unwrap_or_default();
        let job = match EmailJob::decode(body) {
            Ok(job) => job,
            Err(error) => {
                tracing::error!(%error, "undecodable email job");
                metrics::incr(metrics::EMAILS_DEAD, Some(("Kind", "undecodable")));
                return self
                    .dead_letter(&delivery, body, &format!("undecodable: {error}"))
                    .await;
            }
        };
        tracing::Span::current().record("job_id", job.job_id.as_str());
        let received = Received {
            delivery,
            job,
            body,
        };
        if let Some(ses_message_id) = received.delivery.attributes.get(RECEIPT_ATTRIBUTE) {
            return self.deliver_receipt(&received, ses_message_id).await;
        }
        let now = self.clock.now();
        let lease = i64::from(self.retry.lease_seconds);
        match self.adapters.jobs.claim(&received.job, now, lease).await {
            Ok(Claim::Acquired { attempt }) => self.send(&received, attempt).await,
            Ok(Claim::Finished(record)) => {
                tracing::info!(status = ?record.status, "job already finished; acknowledged without sending");
                metrics::incr(metrics::EMAILS_DUPLICATE, None);
                Disposition::Done
            }
            Ok(Claim::Busy { lease_until }) => {
                tracing::info!(
                    lease_until,
                    "another worker is sending this job, or its retry time has not come"
                );
                let wait = u32::try_from(lease_until - now + 1).unwrap_or(1).max(1);
                self.hold(&received, wait, None, Held::OnPurpose).await
            }
            Err(error) if received.holds() >= MAX_HOLDS => {
                let reason = format!(
                    "held {MAX_HOLDS} times, still cannot be claimed: {}",
                    error_chain(&error)
                );
                self.set_aside(&received, &reason).await
            }
            Err(error) => {
                let wait = self.retry.backoff(received.next_hold(), (self.jitter)());
                tracing::warn!(%error, retry_in_seconds = wait, "could not claim the job; held for later");
                self.hold(&received, wait, None, Held::ForTheLedger).await
            }
        }
    }

    async fn send(&self, received: &Received<'_>, attempt: u32) -> Disposition {
        let job = &received.job;
        let email = self.renderer.render(job);
        let kind = Some(("Kind", job.template.kind()));
        let started = Instant::now();
        let sent = self.adapters.mailer.send(&email).await;
        metrics::duration(metrics::SEND_LATENCY, started.elapsed(), None);
        match sent {
            Ok(ses_message_id) => {
                tracing::info!(kind = job.template.kind(), attempt, %ses_message_id, "email sent");
                metrics::incr(metrics::EMAILS_SENT, kind);
                let outcome = Outcome::Sent {
                    ses_message_id: ses_message_id.clone(),
                };
                match self.record(&job.job_id, outcome).await {
                    Ok(()) => Disposition::Done,
                    Err(error) => {
                        tracing::error!(%error, %ses_message_id, "SES accepted the email but the record could not say so; a receipt carries it");
                        let wait = self.retry.backoff(1, (self.jitter)());
                        self.hold(
                            received,
                            wait,
                            Some(&ses_message_id),
                            Held::FirstForTheLedger,
                        )
                        .await
                    }
                }
            }
            Err(MailError::Permanent(reason)) => {
                tracing::error!(%reason, attempt, "email refused permanently; not retried");
                metrics::incr(metrics::EMAILS_FAILED, kind);
                let letter = format!("permanent failure: {reason}");
                self.end(received, Outcome::Failed { reason }, &letter)
                    .await
            }
            Err(MailError::Transient(error)) if attempt >= job.max_attempts => {
                tracing::error!(%error, attempt, "email attempts exhausted");
                metrics::incr(metrics::EMAILS_DEAD, kind);
                let reason = format!("{attempt} attempts failed; last: {error}");
                self.end(
                    received,
                    Outcome::Dead {
                        reason: reason.clone(),
                    },
                    &reason,
                )
                .await
            }
            Err(MailError::Transient(error)) => {
                let wait = self.retry.backoff(attempt, (self.jitter)());
                tracing::warn!(%error, attempt, retry_in_seconds = wait, "email failed; will retry");
                metrics::incr(metrics::EMAILS_RETRIED, kind);
                self.retry_later(received, wait, |retry_at| Outcome::Retrying {
                    error,
                    retry_at,
                })
                .await
            }
            // The account's rate, not this message: the attempt is given back, the job held
            // its backoff (the same one while the rate holds it back).
            Err(MailError::Throttled(error)) => {
                let wait = self.retry.backoff(attempt, (self.jitter)());
                tracing::warn!(%error, attempt, retry_in_seconds = wait, "SES throttled the send; held, the attempt not counted");
                metrics::incr(metrics::SENDING_THROTTLED, None);
                self.retry_later(received, wait, |retry_at| Outcome::Paused {
                    error,
                    retry_at,
                })
                .await
            }
            Err(MailError::AccountPaused(error)) => {
                self.account_cannot_send(received, error, metrics::SENDING_PAUSED)
                    .await
            }
            Err(MailError::QuotaExceeded(error)) => {
                self.account_cannot_send(received, error, metrics::QUOTA_EXCEEDED)
                    .await
            }
        }
    }

    /// The whole account cannot send now (paused, or the daily quota spent): the attempt is
    /// given back, the job held the long "paused" wait, and `metric` — the alarm's — counted.
    async fn account_cannot_send(
        &self,
        received: &Received<'_>,
        error: String,
        metric: metrics::Metric,
    ) -> Disposition {
        let wait = self.retry.paused_seconds;
        tracing::error!(%error, retry_in_seconds = wait, alarm = metric.name, "the account cannot send email now; attempt not counted");
        metrics::incr(metric, None);
        self.retry_later(received, wait, |retry_at| Outcome::Paused {
            error,
            retry_at,
        })
        .await
    }

    /// Tries the job again in `wait` seconds: `outcome` (given its retry time) recorded, then
    /// the job held that long, on purpose.
    async fn retry_later(
        &self,
        received: &Received<'_>,
        wait: u32,
        outcome: impl FnOnce(i64) -> Outcome,
    ) -> Disposition {
        let retry_at = self.retry_at(wait);
        self.note(&received.job.job_id, outcome(retry_at)).await;
        self.hold(received, wait, None, Held::OnPurpose).await
    }

    /// A receipt's delivery: SES accepted the job already; write the record, send nothing.
    async fn deliver_receipt(&self, received: &Received<'_>, ses_message_id: &str) -> Disposition {
        let outcome = Outcome::Sent {
            ses_message_id: ses_message_id.to_owned(),
        };
        match self.record(&received.job.job_id, outcome).await {
            Ok(()) => {
                tracing::info!(%ses_message_id, "the receipt of a sent email is recorded");
                Disposition::Done
            }
            Err(error) if received.holds() >= MAX_HOLDS => {
                let reason = format!(
                    "held {MAX_HOLDS} times, the receipt of SES message {ses_message_id} still cannot be recorded: {}",
                    error_chain(&error)
                );
                self.set_aside(received, &reason).await
            }
            Err(error) => {
                let wait = self.retry.backoff(received.next_hold(), (self.jitter)());
                tracing::warn!(%error, retry_in_seconds = wait, "the receipt could not be recorded yet");
                self.hold(received, wait, Some(ses_message_id), Held::ForTheLedger)
                    .await
            }
        }
    }

    /// Ends the job: its message to the dead-letter queue with `reason` first, then `outcome` in
    /// the record. If the letter cannot be sent, the job stays open and comes back; if the
    /// record cannot be written, the message comes back too (its letter is already safe).
    async fn end(&self, received: &Received<'_>, outcome: Outcome, reason: &str) -> Disposition {
        let job_id = &received.job.job_id;
        if let Err(error) = self
            .adapters
            .control
            .dead_letter(&received.delivery, received.body, reason)
            .await
        {
            tracing::error!(%error, "could not move the message to the dead-letter queue; the job stays open");
            let wait = self.retry.backoff(received.next_hold(), (self.jitter)());
            let open = Outcome::Retrying {
                error: format!("could not be set aside: {error}"),
                retry_at: self.retry_at(wait),
            };
            self.note(job_id, open).await;
            return self.retry_after(&received.delivery, wait).await;
        }
        match self.record(job_id, outcome).await {
            Ok(()) => Disposition::Done,
            Err(error) => {
                tracing::error!(%error, "the message is on the dead-letter queue but its record could not say so; redelivered");
                Disposition::Redeliver
            }
        }
    }

    /// When a job held `seconds` from now is tried again: its held copy is sent after the
    /// outcome that names this time is written, so it arrives no sooner.
    fn retry_at(&self, seconds: u32) -> i64 {
        self.clock.now() + i64::from(seconds)
    }

    /// Writes an outcome, trying [`RECORD_TRIES`] times. A job without a record (expired) has
    /// nothing to write to, which is not an error.
    async fn record(&self, job_id: &str, outcome: Outcome) -> Result<(), StoreError<JobConflict>> {
        let mut last = None;
        for pause in RECORD_TRIES {
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
            match self
                .adapters
                .jobs
                .finish(job_id, outcome.clone(), self.clock.now())
                .await
            {
                Ok(()) | Err(StoreError::NotFound) => return Ok(()),
                // The record says the job ended already (another worker sent it, or it was
                // failed): nothing more to write.
                Err(StoreError::Conflict(conflict)) => {
                    tracing::info!(%conflict, "the job's record had ended already");
                    return Ok(());
                }
                Err(error) => {
                    tracing::warn!(%error, "could not record the job's outcome");
                    last = Some(error);
                }
            }
        }
        Err(last.unwrap_or(StoreError::NotFound))
    }

    /// Writes an outcome that nothing depends on (the next claim works from either record):
    /// once, logging a failure.
    async fn note(&self, job_id: &str, outcome: Outcome) {
        if let Err(error) = self
            .adapters
            .jobs
            .finish(job_id, outcome, self.clock.now())
            .await
        {
            match error {
                StoreError::Conflict(conflict) => {
                    tracing::info!(%conflict, "the job's record had ended already");
                }
                error => tracing::warn!(%error, "could not record the job's outcome"),
            }
        }
    }

    /// Holds the job for `seconds` (at most 900): a fresh copy of its message, delayed, goes on
    /// its queue and this delivery is acknowledged — waiting on purpose uses none of its
    /// receives. A `receipt` makes the copy a receipt of that SES message id. Why it is held
    /// sets the holds count the copy carries. If the copy cannot be sent, the delivery itself
    /// is hidden for `seconds` and redelivered.
    async fn hold(
        &self,
        received: &Received<'_>,
        seconds: u32,
        receipt: Option<&str>,
        why: Held,
    ) -> Disposition {
        let mut attributes: BTreeMap<String, String> = received.delivery.attributes.clone();
        match why {
            Held::ForTheLedger => {
                attributes.insert(HOLDS_ATTRIBUTE.to_owned(), received.next_hold().to_string());
            }
            Held::FirstForTheLedger => {
                attributes.insert(HOLDS_ATTRIBUTE.to_owned(), "1".to_owned());
            }
            Held::OnPurpose => {
                attributes.remove(HOLDS_ATTRIBUTE);
            }
        }
        attributes.insert("job_id".to_owned(), received.job.job_id.clone());
        attributes.insert("kind".to_owned(), received.job.template.kind().to_owned());
        match receipt {
            Some(ses_message_id) => {
                attributes.insert(RECEIPT_ATTRIBUTE.to_owned(), ses_message_id.to_owned());
            }
            None => {
                attributes.remove(RECEIPT_ATTRIBUTE);
            }
        }
        match self
            .adapters
            .control
            .renew(&received.delivery, received.body, seconds, &attributes)
            .await
        {
            Ok(()) => {
                metrics::incr(metrics::EMAILS_HELD, None);
                Disposition::Done
            }
            Err(error) => {
                if let Some(ses_message_id) = receipt
                    && self.receipt_aside(received, ses_message_id, &error).await
                {
                    return Disposition::Done;
                }
                tracing::warn!(%error, "could not put the job back for later; the delivery waits instead");
                self.retry_after(&received.delivery, seconds).await
            }
        }
    }

    /// A receipt the lane refused, for a delivery that is not one: the dead-letter queue keeps
    /// it instead (a redrive records it and sends nothing), and the delivery can be
    /// acknowledged — redelivered, it would carry no receipt and be sent again once the lease
    /// has passed. Whether the receipt was set aside.
    async fn receipt_aside(
        &self,
        received: &Received<'_>,
        ses_message_id: &str,
        error: &QueueError,
    ) -> bool {
        if received.delivery.attributes.contains_key(RECEIPT_ATTRIBUTE) {
            // A receipt's own delivery carries its id already: redelivered, it is still one.
            return false;
        }
        let mut delivery = received.delivery.clone();
        delivery
            .attributes
            .insert(RECEIPT_ATTRIBUTE.to_owned(), ses_message_id.to_owned());
        let reason = format!(
            "sent as SES message {ses_message_id}, not recorded: the ledger and the lane refused its receipt ({})",
            error_chain(error)
        );
        match self
            .adapters
            .control
            .dead_letter(&delivery, received.body, &reason)
            .await
        {
            Ok(()) => {
                tracing::error!(%ses_message_id, "the receipt is set aside on the dead-letter queue; a redrive records it");
                true
            }
            Err(error) => {
                tracing::error!(%error, %ses_message_id, "no queue took the receipt; the delivery comes back and may be sent again");
                false
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

    /// Sets aside a message held [`MAX_HOLDS`] times whose job the ledger still refuses: to the
    /// dead-letter queue with `reason` (a receipt stays one there), acknowledged. The record is
    /// left as it is — the ledger refuses it — and a redrive sends the letter back.
    async fn set_aside(&self, received: &Received<'_>, reason: &str) -> Disposition {
        tracing::error!(%reason, "the ledger keeps refusing this job; set aside on the dead-letter queue");
        metrics::incr(
            metrics::EMAILS_DEAD,
            Some(("Kind", received.job.template.kind())),
        );
        self.dead_letter(&received.delivery, received.body, reason)
            .await
    }

    /// Moves an undecodable message to the dead-letter queue and acknowledges it; if that fails,
    /// leaves it for redelivery (and, after `maxReceiveCount`, the queue's own redrive).
    async fn dead_letter(&self, delivery: &Delivery, body: &str, reason: &str) -> Disposition {
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
    use oes_domain::ports::{
        JobLedger, JobRecord, JobStatus, Mailer, QueueControl, StoreUnavailable,
    };
    use oes_domain::security::Secret;
    use oes_domain::user::Email;
    use std::collections::{HashMap, VecDeque};
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
        /// The receipt's SES message id the delivery carried, if any.
        receipt: Option<String>,
    }

    /// Stands in for the queue: records the wait the worker asks for per message (a renewed
    /// copy's delay, or a visibility change), the copies' attributes, and what it sets aside.
    /// (What the real queues do with these is the contract suites' business.)
    #[derive(Default)]
    struct RecordingControl {
        visibility: Mutex<HashMap<String, u32>>,
        renewed: Mutex<Vec<BTreeMap<String, String>>>,
        dead: Mutex<Vec<DeadLetter>>,
        /// Dead-letter sends still to refuse.
        refuse_dead_letters: Mutex<u32>,
        /// Renewals (fresh copies on the lane) still to refuse.
        refuse_renewals: Mutex<u32>,
        /// Calls made, refused ones included.
        calls: std::sync::atomic::AtomicU32,
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

        /// The attributes of the last copy put back on a lane (and forgets it).
        fn last_renewed(&self) -> Option<BTreeMap<String, String>> {
            self.renewed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop()
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
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if let Ok(mut visibility) = self.visibility.lock() {
                visibility.insert(delivery.message_id.clone(), seconds);
            }
            Ok(())
        }

        async fn renew(
            &self,
            delivery: &Delivery,
            _body: &str,
            delay_seconds: u32,
            attributes: &BTreeMap<String, String>,
        ) -> Result<(), QueueError> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if let Ok(mut refuse) = self.refuse_renewals.lock()
                && *refuse > 0
            {
                *refuse -= 1;
                return Err(QueueError {
                    context: "sending a message",
                    source: "refused".into(),
                });
            }
            if let Ok(mut visibility) = self.visibility.lock() {
                visibility.insert(delivery.message_id.clone(), delay_seconds);
            }
            if let Ok(mut renewed) = self.renewed.lock() {
                renewed.push(attributes.clone());
            }
            Ok(())
        }

        async fn dead_letter(
            &self,
            delivery: &Delivery,
            body: &str,
            reason: &str,
        ) -> Result<(), QueueError> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if let Ok(mut refuse) = self.refuse_dead_letters.lock()
                && *refuse > 0
            {
                *refuse -= 1;
                return Err(QueueError {
                    context: "sending to the dead-letter queue",
                    source: "refused".into(),
                });
            }
            self.dead_letters().push(DeadLetter {
                body: body.to_owned(),
                reason: reason.to_owned(),
                receipt: delivery.attributes.get(RECEIPT_ATTRIBUTE).cloned(),
            });
            Ok(())
        }
    }

    /// The ledger, refusing the first `sent` writes it is asked for.
    #[derive(Default)]
    struct FlakyLedger {
        inner: MemoryJobs,
        refuse_sent: Mutex<u32>,
        /// Every claim fails (a store that cannot be reached, or refuses the key).
        refuse_claims: Mutex<bool>,
    }

    #[async_trait]
    impl JobLedger for FlakyLedger {
        fn record_lifetime_seconds(&self) -> Option<i64> {
            self.inner.record_lifetime_seconds()
        }
        async fn record_queued(
            &self,
            job: &EmailJob,
            now: i64,
        ) -> Result<(), StoreError<JobConflict>> {
            self.inner.record_queued(job, now).await
        }
        async fn claim(
            &self,
            job: &EmailJob,
            now: i64,
            lease: i64,
        ) -> Result<Claim, StoreError<JobConflict>> {
            if self.refuse_claims.lock().is_ok_and(|refuse| *refuse) {
                return Err(StoreError::unavailable("test", "ValidationException"));
            }
            self.inner.claim(job, now, lease).await
        }
        async fn finish(
            &self,
            job_id: &str,
            outcome: Outcome,
            now: i64,
        ) -> Result<(), StoreError<JobConflict>> {
            if matches!(outcome, Outcome::Sent { .. })
                && let Ok(mut refuse) = self.refuse_sent.lock()
                && *refuse > 0
            {
                *refuse -= 1;
                return Err(StoreError::unavailable("test", "refused"));
            }
            self.inner.finish(job_id, outcome, now).await
        }
        async fn requeue(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
            self.inner.requeue(job_id, now).await
        }
        async fn purged(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
            self.inner.purged(job_id, now).await
        }
        async fn unqueued(
            &self,
            job_id: &str,
            reason: &str,
            now: i64,
        ) -> Result<(), StoreError<JobConflict>> {
            self.inner.unqueued(job_id, reason, now).await
        }
        async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StoreUnavailable> {
            self.inner.get(job_id).await
        }
    }

    struct Harness {
        worker: Worker,
        mailer: Arc<ScriptedMailer>,
        jobs: Arc<FlakyLedger>,
        queue: Arc<RecordingControl>,
        clock: Arc<ManualClock>,
    }

    fn harness(mailer: Arc<ScriptedMailer>) -> Harness {
        let jobs = Arc::new(FlakyLedger::default());
        let queue = Arc::new(RecordingControl::default());
        let clock = Arc::new(ManualClock::at(1_000));
        let adapters = WorkerAdapters {
            mailer: mailer.clone(),
            jobs: jobs.clone(),
            control: queue.clone(),
        };
        let retry = RetryPolicy::default();
        let worker = Worker::new(adapters, "http://localhost:3000", retry, 5, clock.clone());
        Harness {
            worker,
            mailer,
            jobs,
            queue,
            clock,
        }
    }

    fn job(to: &str) -> EmailJob {
        EmailJob::new(
            Email::parse(to).expect("valid"),
            EmailTemplate::Verification {
                name: "Ada".into(),
                token: Secret::new("tok"),
                choose_password: false,
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
            assert!(failed(&response).is_empty(), "held as a fresh copy");
            if delivery < 3 {
                assert_eq!(status(&h, &job).await, (JobStatus::Retrying, delivery));
                let wait = h.queue.take_visibility("m", 0);
                waits.push(wait);
                h.clock.advance(i64::from(wait));
            }
        }
        assert!(
            (10..=20).contains(&waits[0]) && (20..=30).contains(&waits[1]),
            "{waits:?}"
        );
        let holds: Vec<_> = h
            .queue
            .renewed
            .lock()
            .expect("lock")
            .iter()
            .map(|a| a.get(HOLDS_ATTRIBUTE).cloned())
            .collect();
        assert_eq!(
            holds,
            [None, None],
            "a retry's backoff is a wait on purpose: no hold for the ledger"
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
        assert!(failed(&first).is_empty(), "held as a fresh copy");
        h.clock.advance(i64::from(h.queue.take_visibility("m", 0)));
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
        assert!(failed(&response).is_empty(), "held as a fresh copy");
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
        assert!(failed(&response).is_empty(), "held as a fresh copy");
        assert_eq!(h.queue.take_visibility("m", 0), 61);
        assert_eq!(h.mailer.sent(), 0);
    }

    /// `record` carrying message attribute `name` = `value`.
    fn with_attribute(mut record: SqsMessage, name: &str, value: &str) -> SqsMessage {
        let mut attribute = aws_lambda_events::sqs::SqsMessageAttribute::default();
        attribute.string_value = Some(value.to_owned());
        record.message_attributes.insert(name.to_owned(), attribute);
        record
    }

    /// The holds count comes from the message: a crafted or corrupted one at the type's maximum
    /// must not overflow (a panic in a debug build kills a lane's poller).
    #[tokio::test]
    async fn a_message_held_the_most_times_a_count_can_say_is_held_again() {
        let h = harness(Arc::default());
        // SES accepts it, the ledger refuses to say so: held as a receipt, for the ledger.
        *h.jobs.refuse_sent.lock().expect("lock") = u32::MAX;
        let job = job("ada@example.com");
        let most = u32::MAX.to_string();
        let response = h
            .worker
            .handle_batch(batch(vec![with_attribute(
                record("m", &job.encode(), 1),
                HOLDS_ATTRIBUTE,
                &most,
            )]))
            .await;
        assert!(failed(&response).is_empty(), "held as a fresh copy");
        let renewed = h.queue.last_renewed().expect("a copy");
        assert_eq!(
            renewed.get(HOLDS_ATTRIBUTE).map(String::as_str),
            Some("1"),
            "a receipt's count starts over"
        );
        assert_eq!(h.mailer.sent(), 1);
    }

    /// An account that cannot send for hours holds its jobs again and again, on purpose; once
    /// it can send again, a ledger that fails once holds the job (for the ledger, the first time
    /// in a row), rather than find it held too often and set it aside.
    #[tokio::test]
    async fn a_long_pause_does_not_spend_the_holds_a_failing_ledger_is_allowed() {
        let pauses = MAX_HOLDS + 2;
        let h = harness(ScriptedMailer::failing(
            (0..pauses)
                .map(|_| MailError::AccountPaused("SendingPaused".into()))
                .collect(),
        ));
        let job = job("ada@example.com");
        let mut next = Some(record("m", &job.encode(), 1));
        for n in 0..=pauses {
            let delivery = next.take().expect("a copy to deliver");
            // The account can send again; the ledger fails this once.
            *h.jobs.refuse_claims.lock().expect("lock") = n == pauses;
            next = deliver(&h, delivery).await;
        }
        *h.jobs.refuse_claims.lock().expect("lock") = false;
        let last = next.take().expect("held for the ledger, not set aside");
        assert!(deliver(&h, last).await.is_none(), "sent");
        assert!(h.queue.dead_letters().is_empty());
        assert_eq!(h.mailer.sent(), 1);
    }

    /// Delivers `delivery` and returns the copy the worker put back (with the attributes it
    /// gave it), as the queue would deliver it next — once its delay has passed — if any.
    async fn deliver(h: &Harness, delivery: SqsMessage) -> Option<SqsMessage> {
        let body = delivery.body.clone().unwrap_or_default();
        let id = delivery.message_id.clone().unwrap_or_default();
        let response = h.worker.handle_batch(batch(vec![delivery])).await;
        assert!(failed(&response).is_empty(), "acknowledged");
        h.clock.advance(i64::from(h.queue.take_visibility(&id, 0)));
        h.queue.last_renewed().map(|copy| {
            copy.iter().fold(
                record(&format!("{id}+"), &body, 1),
                |copy, (name, value)| with_attribute(copy, name, value),
            )
        })
    }

    /// Delivers `first`, then each copy the worker puts back (with the attributes it gave it), as
    /// the queue would; stops when no copy comes back, or after 1,000 deliveries. How many
    /// deliveries there were.
    async fn follow_the_copies(h: &Harness, first: SqsMessage) -> usize {
        let mut next = Some(first);
        let mut deliveries = 0;
        while let Some(delivery) = next.take() {
            deliveries += 1;
            if deliveries > 1_000 {
                break;
            }
            next = deliver(h, delivery).await;
        }
        deliveries
    }

    /// SES holding back the account's sending rate says nothing of the message: a job throttled
    /// more often than it may be attempted waits its backoff each time, and is sent once the
    /// rate lets it — not dead-lettered after its attempts, as a backlog bigger than the rate
    /// allows did to jobs that never failed.
    #[tokio::test]
    async fn a_job_throttled_more_often_than_its_attempts_is_sent_once_the_rate_allows() {
        let h = harness(ScriptedMailer::failing(
            (0..5)
                .map(|_| {
                    MailError::Throttled(
                        "TooManyRequestsException: Maximum sending rate exceeded".into(),
                    )
                })
                .collect(),
        ));
        let job = job("ada@example.com").with_max_attempts(2).expect("valid");
        let deliveries = follow_the_copies(&h, record("m", &job.encode(), 1)).await;
        assert_eq!(deliveries, 6, "five throttled, then sent");
        assert!(h.queue.dead_letters().is_empty());
        assert_eq!(h.mailer.sent(), 1);
        assert_eq!(status(&h, &job).await, (JobStatus::Sent, 1));
    }

    /// A job the ledger can never claim (a store that keeps refusing it, as DynamoDB refuses a
    /// key it cannot take) is held a bounded number of times, then set aside with its reason:
    /// each hold is a fresh copy, so the lane's `maxReceiveCount` never would.
    #[tokio::test]
    async fn a_job_that_can_never_be_claimed_is_set_aside_after_its_holds() {
        let h = harness(Arc::default());
        *h.jobs.refuse_claims.lock().expect("lock") = true;
        let job = job("ada@example.com");
        let deliveries = follow_the_copies(&h, record("m", &job.encode(), 1)).await;
        assert!(
            deliveries <= 1_000,
            "held {deliveries} times, never set aside"
        );
        let dead = h.queue.dead_letters();
        assert_eq!(dead.len(), 1, "set aside once");
        assert_eq!(dead[0].body, job.encode());
        assert!(
            dead[0].reason.contains("ValidationException"),
            "{}",
            dead[0].reason
        );
        assert_eq!(h.mailer.sent(), 0);
    }

    /// The worst path after a send — the `sent` record refused every try, the receipt's fresh
    /// copy refused, its set-aside refused, the delivery hidden — makes the queue calls the
    /// worker's timeout model counts ([`QUEUE_CALLS_AFTER_SEND`]), no more.
    #[tokio::test(start_paused = true)]
    async fn the_worst_path_after_a_send_makes_the_queue_calls_the_timeout_model_counts() {
        let h = harness(Arc::default());
        *h.jobs.refuse_sent.lock().expect("lock") = u32::MAX;
        *h.queue.refuse_renewals.lock().expect("lock") = u32::MAX;
        *h.queue.refuse_dead_letters.lock().expect("lock") = u32::MAX;
        let job = job("ada@example.com");
        let response = h
            .worker
            .handle_batch(batch(vec![record("m", &job.encode(), 1)]))
            .await;
        assert_eq!(h.mailer.sent(), 1);
        assert_eq!(failed(&response), ["m"], "left for redelivery");
        assert_eq!(
            h.queue.calls.load(std::sync::atomic::Ordering::SeqCst),
            QUEUE_CALLS_AFTER_SEND
        );
    }

    /// The same for a receipt whose `sent` record can never be written: set aside after its
    /// holds, never sent again.
    #[tokio::test(start_paused = true)]
    async fn a_receipt_that_can_never_be_recorded_is_set_aside_after_its_holds() {
        let h = harness(Arc::default());
        *h.jobs.refuse_sent.lock().expect("lock") = u32::MAX;
        let job = job("ada@example.com");
        let deliveries = follow_the_copies(&h, record("m", &job.encode(), 1)).await;
        assert!(
            deliveries <= 1_000,
            "held {deliveries} times, never set aside"
        );
        assert_eq!(h.queue.dead_letters().len(), 1, "set aside once");
        assert_eq!(h.mailer.sent(), 1, "sent once, never again");
        assert_eq!(status(&h, &job).await.0, JobStatus::Sending);
    }

    /// Defect 3 of issue 11: the record said `failed` before the message was on the dead-letter
    /// queue; when that send failed, the redelivery found a finished job and acknowledged it, and
    /// the job was in no queue at all.
    #[tokio::test]
    async fn a_refused_dead_letter_send_does_not_lose_the_job() {
        let h = harness(ScriptedMailer::failing(vec![
            MailError::Permanent("MessageRejected".into()),
            MailError::Permanent("MessageRejected".into()),
        ]));
        *h.queue.refuse_dead_letters.lock().expect("lock") = 1;
        let job = job("ada@example.com");
        let first = h
            .worker
            .handle_batch(batch(vec![record("m", &job.encode(), 1)]))
            .await;
        assert_eq!(failed(&first), ["m"], "kept for redelivery");
        h.clock.advance(3_600);
        let second = h
            .worker
            .handle_batch(batch(vec![record("m", &job.encode(), 2)]))
            .await;
        assert!(failed(&second).is_empty());
        assert_eq!(
            h.queue.dead_letters().len(),
            1,
            "the job is on the dead-letter queue"
        );
        assert_eq!(status(&h, &job).await.0, JobStatus::Failed);
        assert_eq!(h.mailer.sent(), 0);
    }

    /// Defect 7 of issue 11: when the `sent` write failed, the record stayed `sending`, and a
    /// copy delivered after the lease claimed it again and sent it a second time.
    #[tokio::test]
    async fn a_refused_sent_write_does_not_send_the_job_twice() {
        let h = harness(Arc::default());
        *h.jobs.refuse_sent.lock().expect("lock") = 1;
        let job = job("ada@example.com");
        let first = h
            .worker
            .handle_batch(batch(vec![record("m", &job.encode(), 1)]))
            .await;
        assert!(failed(&first).is_empty());
        h.clock.advance(3_600);
        let copy = h
            .worker
            .handle_batch(batch(vec![record("copy", &job.encode(), 1)]))
            .await;
        assert!(failed(&copy).is_empty());
        assert_eq!(h.mailer.sent(), 1, "sent once");
        assert_eq!(status(&h, &job).await.0, JobStatus::Sent);
    }

    /// A receipt starts its own count of holds: the claim before the send succeeded, so the
    /// ledger's failures before it are over. It took the count of a delivery held for failed
    /// claims, so a receipt after 10 of them waited 900 s (the backoff's cap) instead of ~10 s,
    /// its job `sending` all that time with its lease run out — any other copy could claim and
    /// send it again — and after 47 it was set aside after one try.
    #[tokio::test]
    async fn a_receipt_starts_its_own_count_of_holds() {
        let h = harness(Arc::default());
        *h.jobs.refuse_sent.lock().expect("lock") = 3;
        let job = job("ada@example.com");
        let held = with_attribute(record("m", &job.encode(), 1), HOLDS_ATTRIBUTE, "10");
        let answer = h.worker.handle_batch(batch(vec![held])).await;
        assert!(failed(&answer).is_empty());
        assert_eq!(h.mailer.sent(), 1);
        let receipt = h.queue.last_renewed().expect("a receipt");
        assert_eq!(
            receipt.get(HOLDS_ATTRIBUTE).map(String::as_str),
            Some("1"),
            "{receipt:?}"
        );
        let wait = h.queue.take_visibility("m", 0);
        assert!(
            (1..=20).contains(&wait),
            "the first hold's backoff, not the eleventh's: {wait} s"
        );
    }

    /// When the ledger refuses every try at writing `sent`, a receipt — a copy carrying SES's
    /// message id — goes on the queue; its delivery writes the record and sends nothing.
    #[tokio::test]
    async fn a_sent_email_the_ledger_cannot_record_travels_as_a_receipt() {
        let h = harness(Arc::default());
        *h.jobs.refuse_sent.lock().expect("lock") = 3;
        let job = job("ada@example.com");
        let first = h
            .worker
            .handle_batch(batch(vec![record("m", &job.encode(), 1)]))
            .await;
        assert!(
            failed(&first).is_empty(),
            "acknowledged: the receipt carries it"
        );
        let receipt = h.queue.last_renewed().expect("a receipt");
        assert_eq!(
            receipt.get(RECEIPT_ATTRIBUTE).map(String::as_str),
            Some("ses-1")
        );
        assert_eq!(status(&h, &job).await.0, JobStatus::Sending);

        let mut copy = record("receipt", &job.encode(), 1);
        for (name, value) in receipt {
            let mut attribute = aws_lambda_events::sqs::SqsMessageAttribute::default();
            attribute.string_value = Some(value);
            copy.message_attributes.insert(name, attribute);
        }
        let second = h.worker.handle_batch(batch(vec![copy])).await;
        assert!(failed(&second).is_empty());
        assert_eq!(h.mailer.sent(), 1, "the receipt sends nothing");
        let stored = h
            .jobs
            .get(&job.job_id)
            .await
            .expect("read")
            .expect("recorded");
        assert_eq!(
            (stored.status, stored.ses_message_id.as_deref()),
            (JobStatus::Sent, Some("ses-1"))
        );
    }

    /// When the ledger refuses every `sent` write and the lane refuses the receipt as well, the
    /// receipt goes to the dead-letter queue (a redrive records it) and the original is
    /// acknowledged: redelivered, it would carry no receipt and be sent again after the lease.
    #[tokio::test(start_paused = true)]
    async fn a_receipt_the_lane_refuses_is_set_aside_as_a_receipt_not_redelivered_as_a_job() {
        let h = harness(Arc::default());
        *h.jobs.refuse_sent.lock().expect("lock") = 3;
        *h.queue.refuse_renewals.lock().expect("lock") = 1;
        let job = job("ada@example.com");
        let first = h
            .worker
            .handle_batch(batch(vec![record("m", &job.encode(), 1)]))
            .await;
        assert!(
            failed(&first).is_empty(),
            "acknowledged: the original carries no receipt"
        );
        let dead = h.queue.dead_letters();
        assert_eq!(dead.len(), 1, "the receipt is set aside");
        assert_eq!(dead[0].receipt.as_deref(), Some("ses-1"));
        assert_eq!(dead[0].body, job.encode());
        assert_eq!(h.mailer.sent(), 1);
    }

    /// A receipt that reached the dead-letter queue (received `maxReceiveCount` times: a worker
    /// that could not act) and is redriven goes back to its lane still a receipt: its delivery
    /// records SES's id and sends nothing, even once the sender's lease has run out.
    #[tokio::test(start_paused = true)]
    async fn a_redriven_receipt_records_the_sent_email_and_sends_nothing_more() {
        use oes_adapters::memory::MemoryQueues;
        use oes_domain::pipeline::{EmailLanes, redrive};
        use oes_domain::ports::{EmailQueue, MessageQueues, QueueName};
        use oes_runtime::event_source::EventSource;

        let queues = MemoryQueues::new();
        let lanes = Arc::new(EmailLanes::new(queues.clone()));
        let mailer: Arc<ScriptedMailer> = Arc::default();
        let jobs = Arc::new(FlakyLedger::default());
        *jobs.refuse_sent.lock().expect("lock") = 3;
        let clock = Arc::new(ManualClock::at(1_000));
        let adapters = WorkerAdapters {
            mailer: mailer.clone(),
            jobs: jobs.clone(),
            control: lanes.clone(),
        };
        let worker = Worker::new(
            adapters,
            "http://localhost:3000",
            RetryPolicy::default(),
            5,
            clock.clone(),
        );
        let job = job("ada@example.com");
        jobs.record_queued(&job, 1_000).await.expect("recorded");
        lanes.enqueue(&job).await.expect("queued");
        let lane = || EventSource::new(queues.clone(), QueueName::Priority);
        let poll = || async {
            lane()
                .poll_once(|event| async { Ok::<_, String>(worker.handle_batch(event).await) })
                .await
                .expect("poll")
        };
        assert_eq!(poll().await, 1, "the job is delivered");
        assert_eq!(mailer.sent(), 1);

        // A worker that cannot act receives the receipt until the lane's redrive policy moves it.
        tokio::time::advance(Duration::from_secs(900)).await;
        for _ in 0..10 {
            queues
                .receive(QueueName::Priority, 10, Some(0), Duration::ZERO)
                .await
                .expect("receive");
        }
        let letters = queues.counts(QueueName::DeadLetter).await.expect("counts");
        assert_eq!(letters.visible, 1, "the receipt is a dead letter");

        clock.advance(3_600);
        let report = redrive(
            queues.as_ref(),
            jobs.as_ref(),
            clock.as_ref(),
            None,
            None,
            |_| {},
        )
        .await
        .expect("redrive");
        assert_eq!(report.moved, 1, "{report:?}");
        while poll().await > 0 {}

        assert_eq!(mailer.sent(), 1, "the redriven receipt sends nothing");
        let stored = jobs
            .get(&job.job_id)
            .await
            .expect("read")
            .expect("recorded");
        assert_eq!(
            (stored.status, stored.ses_message_id.as_deref()),
            (JobStatus::Sent, Some("ses-1"))
        );
    }
}
