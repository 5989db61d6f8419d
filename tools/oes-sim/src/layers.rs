//! The fault layers: each stands between the code under test and one port, adds latency, fails
//! or times out calls, crashes the invocation at the points that matter, and tells the
//! [`Truth`](crate::truth::Truth) what really happened. Below them are the in-memory twins, held
//! to the real adapters by the contract suites.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use oes_adapters::memory::{MemoryJobs, MemoryQueues};
use oes_domain::clock::Clock;
use oes_domain::email::{EmailJob, OutgoingEmail};
use oes_domain::pipeline::RECEIPT_ATTRIBUTE;
use oes_domain::ports::{
    Claim, JobConflict, JobLedger, JobRecord, MailError, Mailer, MessageQueues, NewMessage,
    Outcome, QueueCounts, QueueError, QueueName, ReceivedMessage, StoreError, StoreUnavailable,
};

use crate::faults::{Fault, Faults, SesAnswer};
use crate::scope::Scope;
use crate::truth::LOST_TO_A_TIMEOUT;

/// How long SES is waited for before the call times out.
pub const SES_TIMEOUT: Duration = Duration::from_secs(12);

/// Every crash point, as the layers name them to [`Faults::point`].
pub const CRASH_POINTS: [&str; 9] = [
    "before SES",
    "after SES accepted",
    "before the claim",
    "after the claim",
    "after the record said sent",
    "before the requeue",
    "before a send",
    "after a send",
    "before the delete",
];

/// The recipient address of job `job_id` (one per job, so a sent email names its job).
pub fn recipient(job_id: &str) -> String {
    format!("{job_id}@sim.test")
}

/// SES: accepts or refuses as the schedule says, and counts what it accepted.
pub struct SimSes {
    faults: Arc<Faults>,
    clock: Arc<dyn Clock>,
    sent: AtomicU64,
}

impl SimSes {
    /// SES under `faults`.
    pub fn new(faults: Arc<Faults>, clock: Arc<dyn Clock>) -> Self {
        Self {
            faults,
            clock,
            sent: AtomicU64::new(0),
        }
    }

    fn accept(&self, email: &OutgoingEmail, excuse: Option<&'static str>) -> String {
        let ses_id = format!("ses-{}", self.sent.fetch_add(1, Ordering::SeqCst) + 1);
        let job = email.to.as_str().trim_end_matches("@sim.test").to_owned();
        let scope = Scope::current().map(|s| s.id);
        self.faults
            .truth(|t| t.accept(&job, ses_id.clone(), scope, excuse));
        ses_id
    }
}

/// What SES answers when the daily quota is spent.
fn quota_spent() -> MailError {
    MailError::QuotaExceeded("LimitExceededException: daily sending quota exceeded".into())
}

#[async_trait]
impl Mailer for SimSes {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
        self.faults.latency().await;
        self.faults.point("before SES").await;
        let answer = self.faults.ses_answer(self.clock.now());
        tracing::info!(target: "sim", to = email.to.as_str(), ?answer, scope = ?Scope::current().map(|s| s.id), "SES");
        match answer {
            SesAnswer::Accept => {
                let id = self.accept(email, None);
                self.faults.point("after SES accepted").await;
                Ok(id)
            }
            SesAnswer::Hang { accepted } => {
                tokio::time::sleep(SES_TIMEOUT).await;
                if accepted {
                    self.accept(email, Some(LOST_TO_A_TIMEOUT));
                }
                Err(MailError::Transient("SES did not answer in time".into()))
            }
            SesAnswer::Transient => Err(MailError::Transient("TooManyRequestsException".into())),
            SesAnswer::Permanent => Err(MailError::Permanent("MessageRejected".into())),
            SesAnswer::Paused => Err(MailError::AccountPaused("SendingPausedException".into())),
            SesAnswer::QuotaSpent => Err(quota_spent()),
        }
    }
}

/// The job ledger, failing before or after a call is applied.
pub struct FaultLedger {
    inner: Arc<MemoryJobs>,
    faults: Arc<Faults>,
}

impl FaultLedger {
    /// Over `inner`.
    pub fn new(inner: Arc<MemoryJobs>, faults: Arc<Faults>) -> Self {
        Self { inner, faults }
    }

    async fn before(&self) -> Result<(), StoreUnavailable> {
        self.faults.latency().await;
        if self.faults.strike(Fault::LedgerRefused) {
            tracing::warn!(target: "sim", "ledger refused");
            return Err(refused());
        }
        Ok(())
    }

    /// Applied, but the caller hears a timeout.
    fn timed_out(&self) -> bool {
        let timed_out = self.faults.strike(Fault::LedgerTimedOut);
        if timed_out {
            tracing::warn!(target: "sim", "ledger applied, then timed out");
        }
        timed_out
    }
}

fn refused() -> StoreUnavailable {
    StoreUnavailable::new("simulated ledger", "the ledger did not answer")
}

#[async_trait]
impl JobLedger for FaultLedger {
    fn record_lifetime_seconds(&self) -> Option<i64> {
        self.inner.record_lifetime_seconds()
    }
    async fn record_queued(&self, job: &EmailJob, now: i64) -> Result<(), StoreError<JobConflict>> {
        self.before().await?;
        self.inner.record_queued(job, now).await?;
        if self.timed_out() {
            return Err(refused().into());
        }
        Ok(())
    }

    async fn claim(
        &self,
        job: &EmailJob,
        now: i64,
        lease_seconds: i64,
    ) -> Result<Claim, StoreError<JobConflict>> {
        self.faults.point("before the claim").await;
        self.before().await?;
        let claim = self.inner.claim(job, now, lease_seconds).await?;
        if matches!(claim, Claim::Acquired { .. }) {
            let scope = Scope::current().map(|s| s.id);
            self.faults.truth(|t| t.claimed(&job.job_id, scope));
        }
        if self.timed_out() {
            return Err(refused().into());
        }
        self.faults.point("after the claim").await;
        Ok(claim)
    }

    async fn finish(
        &self,
        job_id: &str,
        outcome: Outcome,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        let sent = match &outcome {
            Outcome::Sent { ses_message_id } => Some(ses_message_id.clone()),
            _ => None,
        };
        if let Err(error) = self.before().await {
            if let Some(ses_id) = &sent {
                self.faults.truth(|t| t.refused(job_id, ses_id));
            }
            return Err(error.into());
        }
        self.inner.finish(job_id, outcome, now).await?;
        if let Some(ses_id) = &sent {
            self.faults.truth(|t| t.recorded(job_id, ses_id));
        }
        if self.timed_out() {
            return Err(refused().into());
        }
        if sent.is_some() {
            self.faults.point("after the record said sent").await;
        }
        Ok(())
    }

    /// A refused requeue leaves the operator's redrive unable to act on that letter (the record
    /// may even have been reset): the letter stays for the next redrive.
    async fn requeue(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        self.faults.point("before the requeue").await;
        if let Err(error) = self.before().await {
            self.faults.cut();
            return Err(error.into());
        }
        self.inner.requeue(job_id, now).await?;
        if self.timed_out() {
            self.faults.cut();
            return Err(refused().into());
        }
        Ok(())
    }

    /// As a requeue: a refused write leaves the purge's letter on the queue for its next step.
    async fn purged(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        self.before().await?;
        self.inner.purged(job_id, now).await?;
        self.faults.truth(|t| t.purged(job_id));
        if self.timed_out() {
            self.faults.cut();
            return Err(refused().into());
        }
        Ok(())
    }
    async fn unqueued(
        &self,
        job_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        self.before().await?;
        self.inner.unqueued(job_id, reason, now).await?;
        if self.timed_out() {
            self.faults.cut();
            return Err(refused().into());
        }
        Ok(())
    }

    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StoreUnavailable> {
        self.before().await?;
        self.inner.get(job_id).await
    }
}

/// The queues: failed, lost and unheard calls, duplicate and simultaneous deliveries, reordering.
pub struct FaultQueues {
    inner: Arc<MemoryQueues>,
    faults: Arc<Faults>,
}

impl FaultQueues {
    /// Over `inner`.
    pub fn new(inner: Arc<MemoryQueues>, faults: Arc<Faults>) -> Self {
        Self { inner, faults }
    }

    fn fails(&self, fault: Fault) -> bool {
        if self.faults.strike(fault) {
            self.faults.cut();
            true
        } else {
            false
        }
    }
}

fn queue_fault(context: &'static str) -> QueueError {
    QueueError {
        context,
        source: "simulated queue fault".into(),
    }
}

#[async_trait]
impl MessageQueues for FaultQueues {
    fn name(&self, queue: QueueName) -> &str {
        self.inner.name(queue)
    }

    async fn send(&self, queue: QueueName, message: &NewMessage) -> Result<String, QueueError> {
        self.faults.latency().await;
        self.faults.point("before a send").await;
        if (queue == QueueName::DeadLetter && self.fails(Fault::DeadLetterSendFailed))
            || self.fails(Fault::QueueFailed)
        {
            return Err(queue_fault("sending a message"));
        }
        let id = self.inner.send(queue, message).await?;
        tracing::info!(target: "sim", ?queue, message_id = %id, job_id = ?message.attributes.get("job_id"), "sent");
        if let (true, Some(job), Some(ses_id)) = (
            queue != QueueName::DeadLetter,
            message.attributes.get("job_id"),
            message.attributes.get(RECEIPT_ATTRIBUTE),
        ) {
            self.faults.truth(|t| t.receipt_on_lane(job, ses_id));
        }
        // Stored, but the caller hears an error (as from SQS when every answer was lost).
        if self.fails(Fault::SendUnheard) {
            tracing::warn!(target: "sim", ?queue, message_id = %id, "sent, then answered an error");
            if let (None, Some(job)) = (Scope::current(), message.attributes.get("job_id")) {
                self.faults.truth(|t| t.unheard.insert(job.clone()));
            }
            return Err(queue_fault("sending a message"));
        }
        self.faults.point("after a send").await;
        Ok(id)
    }

    async fn receive(
        &self,
        queue: QueueName,
        max: u32,
        visibility: Option<u32>,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.faults.latency().await;
        if self.faults.strike(Fault::QueueFailed) {
            return Err(queue_fault("receiving messages"));
        }
        let mut messages = self.inner.receive(queue, max, visibility, wait).await?;
        // Reorder: SQS promises no order.
        for i in (1..messages.len()).rev() {
            let j = usize::try_from(self.faults.between(0, i as u64)).unwrap_or(0);
            messages.swap(i, j);
        }
        let scope = Scope::current().map(|s| s.id);
        for message in &messages {
            tracing::debug!(target: "sim", ?queue, message_id = %message.message_id, receive_count = message.receive_count, ?scope, "received");
            if let Some(scope) = scope {
                self.faults.truth(|t| {
                    t.receives
                        .entry(message.message_id.clone())
                        .or_default()
                        .push(scope);
                });
            }
            if queue == QueueName::DeadLetter {
                let job = EmailJob::decode(&message.body).ok().map(|job| job.job_id);
                self.faults.truth(|t| {
                    t.letters_in_hand
                        .insert(message.receipt_handle.clone(), job)
                });
            }
            if self.faults.strike(Fault::Duplicate) {
                let copy = NewMessage {
                    body: message.body.clone(),
                    delay_seconds: 0,
                    attributes: message.attributes.clone(),
                };
                let id = self.inner.send(queue, &copy).await?;
                tracing::info!(target: "sim", ?queue, of = %message.message_id, message_id = %id, "duplicate");
                // The same message delivered again: it shares the original's history.
                self.faults.truth(|t| {
                    let history = t
                        .receives
                        .get(&message.message_id)
                        .cloned()
                        .unwrap_or_default();
                    t.receives.insert(id, history);
                });
            }
            if self.faults.strike(Fault::Leak) {
                self.inner
                    .change_visibility(queue, &message.receipt_handle, 0)
                    .await?;
            }
        }
        Ok(messages)
    }

    async fn delete(&self, queue: QueueName, receipt_handle: &str) -> Result<(), QueueError> {
        self.faults.latency().await;
        self.faults.point("before the delete").await;
        if self.fails(Fault::DeleteLost) {
            return Ok(());
        }
        if self.fails(Fault::QueueFailed) {
            return Err(queue_fault("deleting a message"));
        }
        tracing::info!(target: "sim", ?queue, receipt_handle, "delete");
        self.inner.delete(queue, receipt_handle).await?;
        if queue == QueueName::DeadLetter {
            let scope = Scope::current().map(|s| s.id);
            self.faults
                .truth(|t| t.letter_deleted(receipt_handle, scope));
        }
        Ok(())
    }

    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt_handle: &str,
        seconds: u32,
    ) -> Result<(), QueueError> {
        self.faults.latency().await;
        if self.fails(Fault::QueueFailed) {
            return Err(queue_fault("changing a message's visibility"));
        }
        self.inner
            .change_visibility(queue, receipt_handle, seconds)
            .await
    }

    async fn counts(&self, queue: QueueName) -> Result<QueueCounts, QueueError> {
        self.inner.counts(queue).await
    }

    async fn purge(&self, queue: QueueName) -> Result<(), QueueError> {
        self.inner.purge(queue).await
    }
}
