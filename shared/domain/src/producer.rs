//! The producer side, used by every API: record the job as queued, put it on its lane, return
//! its id. The request never waits for the email itself. A job recorded but maybe never put on
//! its lane can be sent again under its id ([`EmailProducer::resend`]).

use std::sync::Arc;
use std::time::Instant;

use crate::clock::Clock;
use crate::email::EmailJob;
use crate::metrics;
use crate::ports::{EmailQueue, JobConflict, JobLedger, QueueError, StoreError, StoreUnavailable};

/// The job could not be queued: nothing will be sent, except after [`EnqueueError::Unsure`].
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// SQS refused (after the SDK's retries); the job is recorded as failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// SQS answered an error and the job ledger could not record the job as failed: the queue
    /// may have taken it though every answer was lost. Its record stays queued, so a copy on
    /// the lane is sent, once. A producer that can send it again under its id when it never
    /// left ([`EmailProducer::resend`]: a claimed result email, by the sweep) keeps it as queued;
    /// one that cannot asks its caller to try again, at the risk of a second email.
    #[error("the email job may not have been queued")]
    Unsure(#[source] QueueError),
    /// The job record could not be written.
    #[error("the email job could not be recorded")]
    Ledger(#[source] StoreUnavailable),
    /// A job with this id was recorded already: it is queued (or was), not queued again.
    #[error("this email job was queued already")]
    Duplicate,
}

impl From<StoreError<JobConflict>> for EnqueueError {
    fn from(error: StoreError<JobConflict>) -> Self {
        match error {
            StoreError::Conflict(JobConflict::JobExists) => Self::Duplicate,
            // `record_queued` neither looks for an existing record nor judges a job's state; a
            // store that answers so anyway could not be used.
            StoreError::Conflict(
                other @ (JobConflict::Sent
                | JobConflict::NotEnded
                | JobConflict::Leased
                | JobConflict::Ended
                | JobConflict::Taken
                | JobConflict::Unqueued),
            ) => Self::Ledger(StoreUnavailable::new(
                "recording an email job",
                format!("the job ledger answered {other} to a create"),
            )),
            StoreError::NotFound => Self::Ledger(StoreUnavailable::new(
                "recording an email job",
                "the job ledger answered not found to a create",
            )),
            StoreError::Unavailable(unavailable) => Self::Ledger(unavailable),
        }
    }
}

/// Queues email jobs.
#[derive(Clone)]
pub struct EmailProducer {
    queue: Arc<dyn EmailQueue>,
    ledger: Arc<dyn JobLedger>,
    clock: Arc<dyn Clock>,
}

impl EmailProducer {
    /// A producer over these ports.
    pub fn new(
        queue: Arc<dyn EmailQueue>,
        ledger: Arc<dyn JobLedger>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            queue,
            ledger,
            clock,
        }
    }

    /// Records `job` as queued and sends it to its lane (with its delay). Returns the job id.
    #[tracing::instrument(skip_all, fields(job_id = %job.job_id, kind = job.template.kind()))]
    pub async fn enqueue(&self, job: EmailJob) -> Result<String, EnqueueError> {
        let started = Instant::now();
        let now = self.clock.now();
        self.ledger.record_queued(&job, now).await?;
        if let Err(error) = self.queue.enqueue(&job).await {
            // The queue may have taken the message though every answer was lost: the job
            // counts as unqueued (and a late copy is not sent) only if no worker has it yet.
            let reason = format!("could not be queued: {error}");
            let failed = match self.ledger.unqueued(&job.job_id, &reason, now).await {
                Err(StoreError::Conflict(JobConflict::Taken | JobConflict::Sent)) => {
                    tracing::warn!(
                        error = %error,
                        "the queue answered an error, yet a worker has the job: it is queued"
                    );
                    None
                }
                Ok(()) => Some(EnqueueError::Queue(error)),
                Err(ledger) => {
                    tracing::warn!(
                        error = %ledger,
                        "could not mark an unqueued job as failed: it stays recorded as queued"
                    );
                    Some(EnqueueError::Unsure(error))
                }
            };
            if let Some(failed) = failed {
                metrics::incr(metrics::ENQUEUE_FAILURES, None);
                return Err(failed);
            }
        }
        let lane = job.lane().as_str();
        metrics::duration(metrics::ENQUEUE_LATENCY, started.elapsed(), None);
        metrics::incr(metrics::EMAILS_QUEUED, Some(("Lane", lane)));
        tracing::info!(lane, delay_seconds = job.delay_seconds, "email queued");
        Ok(job.job_id)
    }

    /// Whether the job `job_id`, made at `made_at` or later, was never recorded: the ledger
    /// has no record of it, and would still keep one made then at `now`. Past that, a missing
    /// record may have expired — the job may have been sent — and the answer is `false`.
    pub async fn never_recorded(
        &self,
        job_id: &str,
        made_at: i64,
        now: i64,
    ) -> Result<bool, StoreUnavailable> {
        if let Some(lifetime) = self.ledger.record_lifetime_seconds()
            && now >= made_at.saturating_add(lifetime)
        {
            return Ok(false);
        }
        Ok(self.ledger.get(job_id).await?.is_none())
    }

    /// Sends `job`, recorded already, to its lane again without recording it: for a job the
    /// ledger says is queued that may never have reached its lane (its producer died between
    /// recording and sending it, or could not record the send's failure). If the first copy is
    /// on the lane after all, the worker's send lease lets one of the two through.
    #[tracing::instrument(skip_all, fields(job_id = %job.job_id, kind = job.template.kind()))]
    pub async fn resend(&self, job: &EmailJob) -> Result<(), QueueError> {
        if let Err(error) = self.queue.enqueue(job).await {
            metrics::incr(metrics::ENQUEUE_FAILURES, None);
            return Err(error);
        }
        tracing::info!(
            lane = job.lane().as_str(),
            "email job sent to its lane again"
        );
        Ok(())
    }
}
