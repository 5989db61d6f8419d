use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::error::conflicts;
use super::{StoreError, StoreUnavailable};
use crate::email::EmailJob;

conflicts! {
    /// Why a change to the job records was refused.
    pub enum JobConflict {
        /// A record with this job id exists already.
        JobExists => "job_exists",
        /// The job was sent: it is not requeued.
        Sent => "job_sent",
        /// The job has not ended (queued, retrying, or its lease has run out): it is not reset.
        NotEnded => "job_not_ended",
        /// A worker holds the job's lease: it is not reset while that worker may still finish it.
        Leased => "job_leased",
        /// The job failed or died: a late retry does not reopen it.
        Ended => "job_ended",
        /// A worker has taken the job: it reached its lane.
        Taken => "job_taken",
        /// Its producer could not queue the job and told its caller so: a copy that turns up
        /// later (on its lane, on the dead-letter queue) is not sent.
        Unqueued => "job_unqueued",
    }
}

/// Where an email job is in its life.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// On a queue, not yet picked up.
    Queued,
    /// A worker holds the send lease.
    Sending,
    /// SES accepted it (terminal).
    Sent,
    /// A transient failure; it comes back after its backoff.
    Retrying,
    /// A permanent failure: not retried, moved to the dead-letter queue (terminal).
    Failed,
    /// Attempts exhausted, moved to the dead-letter queue (terminal).
    Dead,
}

impl JobStatus {
    /// The name in JSON (and in the job index's partitions).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }
}

/// A job's status record.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job id.
    pub job_id: String,
    /// Template kind.
    pub kind: String,
    /// Recipient.
    pub recipient: String,
    /// The email's subject line ([`crate::email::EmailTemplate::subject`]; never a token). Only
    /// in a job's own record, not in listings; absent for records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Status.
    pub status: JobStatus,
    /// Send attempts made (attempts refused for account-level reasons do not count).
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// The last failure, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// SES's message id once sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ses_message_id: Option<String>,
    /// While `Sending`: until when the worker's lease holds (through that second); while
    /// `Retrying`: its retry time, from which a copy of it may take it (epoch seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_until: Option<i64>,
    /// Epoch seconds.
    pub created_at: i64,
    /// Epoch seconds.
    pub updated_at: i64,
    /// What happened to the job, oldest first: its last [`HISTORY_LIMIT`] events (claims,
    /// outcomes, redrives). Not in listings ([`super::JobIndex`]), only in a job's own record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<JobEvent>,
}

impl JobRecord {
    /// Whether the job is stalled at `now`: `sending`, its lease run out (the worker that held
    /// it crashed or timed out; the next delivery takes it over).
    pub fn is_stalled(&self, now: i64) -> bool {
        self.status == JobStatus::Sending && self.lease_until.is_some_and(|until| until < now)
    }
}

/// The last error of a job whose dead letter was purged ([`JobLedger::purged`]).
pub const PURGED: &str = "purged: its dead letter was deleted, it will not be sent";

/// A record keeps its newest events up to this many (a job with more retries loses its
/// oldest ones).
pub const HISTORY_LIMIT: usize = 20;

/// The longest error text an event keeps (characters). Errors are SES's or the worker's own
/// messages: never an email's body or a link token.
pub const EVENT_ERROR_CHARS: usize = 300;

/// What happened to a job.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobEventKind {
    /// A worker claimed it and started an attempt.
    Sending,
    /// SES accepted it.
    Sent,
    /// The attempt failed transiently; it comes back after its backoff.
    Retrying,
    /// The account could not send (paused, quota spent, sending refused) or SES held back its
    /// sending rate; the attempt was given back.
    Paused,
    /// The attempt failed permanently.
    Failed,
    /// The last attempt failed: attempts exhausted.
    Dead,
    /// An operator redrove it from the dead-letter queue; its attempts start over.
    Requeued,
    /// An operator purged the dead-letter queue with its letter on it: it is `dead`, and will
    /// not be sent ([`PURGED`]).
    Purged,
}

/// One entry of a job's history.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobEvent {
    /// Epoch seconds.
    pub at: i64,
    /// What happened.
    pub event: JobEventKind,
    /// The error, cut to [`EVENT_ERROR_CHARS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// SES's message id, for `sent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ses_message_id: Option<String>,
}

impl JobEvent {
    /// `event` at `at`, with nothing else.
    pub fn new(event: JobEventKind, at: i64) -> Self {
        Self {
            at,
            event,
            error: None,
            ses_message_id: None,
        }
    }

    /// The event of `outcome` at `at`.
    pub fn of(outcome: &Outcome, at: i64) -> Self {
        let (event, error) = match outcome {
            Outcome::Sent { ses_message_id } => {
                return Self {
                    ses_message_id: Some(ses_message_id.clone()),
                    ..Self::new(JobEventKind::Sent, at)
                };
            }
            Outcome::Retrying { error, .. } => (JobEventKind::Retrying, error),
            Outcome::Paused { error, .. } => (JobEventKind::Paused, error),
            Outcome::Failed { reason } => (JobEventKind::Failed, reason),
            Outcome::Dead { reason } => (JobEventKind::Dead, reason),
        };
        Self {
            error: Some(error.chars().take(EVENT_ERROR_CHARS).collect()),
            ..Self::new(event, at)
        }
    }
}

/// The answer to a worker asking to send a job.
#[allow(
    clippy::large_enum_variant,
    reason = "returned once per delivery and matched at once, never stored in bulk"
)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This worker holds the lease; this is attempt number `attempt`.
    Acquired {
        /// 1 for the first attempt.
        attempt: u32,
    },
    /// Already in a terminal state (sent, failed or dead): acknowledge without sending.
    Finished(JobRecord),
    /// Another worker holds the lease through `lease_until`, or the job is retrying and its
    /// retry time is `lease_until`: a copy of it waits until then.
    Busy {
        /// Epoch seconds.
        lease_until: i64,
    },
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// SES accepted the message.
    Sent {
        /// SES's message id.
        ses_message_id: String,
    },
    /// Transient failure; will be retried.
    Retrying {
        /// What went wrong.
        error: String,
        /// When it is tried again (epoch seconds): the delay of the copy held for it. No copy
        /// of the job takes it before — another copy (a duplicate delivery, a second send of
        /// its producer, a copy held before) waits too, and does not spend an attempt early.
        retry_at: i64,
    },
    /// Account-level failure (sending paused, the rate held back): retried later without
    /// using up an attempt.
    Paused {
        /// What went wrong.
        error: String,
        /// When it is tried again, as for [`Outcome::Retrying`].
        retry_at: i64,
    },
    /// Permanent failure.
    Failed {
        /// Why.
        reason: String,
    },
    /// Attempts exhausted.
    Dead {
        /// The last error.
        reason: String,
    },
}

/// Email job status records, and the send lease that makes sending idempotent. Every change
/// (`claim`, `finish`, `requeue`) appends its [`JobEvent`] to the record's history in the same
/// write, keeping the last [`HISTORY_LIMIT`].
#[async_trait]
pub trait JobLedger: Send + Sync {
    /// How long a record is kept after its last change, if it is ever dropped (DynamoDB's TTL,
    /// `OES_JOB_RETENTION_DAYS`); `None` if never. A job without a record may have had one that
    /// expired: only a record that would still be kept can be told missing from never made.
    fn record_lifetime_seconds(&self) -> Option<i64>;
    /// Records a new job as `Queued`; `JobExists` if it has a record already (also one that
    /// [`JobLedger::claim`] created).
    async fn record_queued(&self, job: &EmailJob, now: i64) -> Result<(), StoreError<JobConflict>>;
    /// Takes the send lease for `job` until `now + lease_seconds`, unless the job is finished
    /// (`Finished` with its record), another worker's lease still holds (`Busy`: a lease holds
    /// through its `lease_until` second, and is taken over once `now` is past it) or it is
    /// retrying and its retry time has not come (`Busy` until it: taken from `now` on it). Counts the
    /// attempt. A job without a record (from before the ledger, or expired) gets one, made from
    /// `job`.
    async fn claim(
        &self,
        job: &EmailJob,
        now: i64,
        lease_seconds: i64,
    ) -> Result<Claim, StoreError<JobConflict>>;
    /// Records how the attempt ended and releases the lease; `NotFound` if the job has no
    /// record. `Failed` and `Dead` keep the lease until it runs out: the worker may still be
    /// writing the outcome again (its answer lost), and a requeue in between would be undone,
    /// the job ended while its message is back on its lane. `Retrying` and `Paused` keep it
    /// from any copy until their `retry_at`; `Paused` gives the attempt back (it does not
    /// count). Nothing undoes `Sent`:
    /// another outcome is refused with `Conflict(Sent)`; and a `Retrying` or `Paused` (a worker
    /// reporting late) does not reopen a `Failed` or `Dead` job: `Conflict(Ended)`.
    async fn finish(
        &self,
        job_id: &str,
        outcome: Outcome,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>>;
    /// Records that the job's producer could not queue it (its send to the lane answered an
    /// error): `Failed` with `reason`, if no worker has taken it — still `Queued`, no attempt
    /// made. A send can fail after the queue took the message (every answer lost), so a worker
    /// may have it already: then the record is left as it is, and the answer says the job
    /// reached its lane after all: `Conflict(Sent)` if it was sent, `Conflict(Taken)`
    /// otherwise; `NotFound` if it has no record. A copy that reaches a worker after this
    /// finds its job ended and is not sent.
    async fn unqueued(
        &self,
        job_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>>;
    /// Puts a job that ended unsent (`Failed` or `Dead`) back to `Queued` with no attempts used
    /// (a redrive from the dead-letter queue); its last error stays on the record. Otherwise the
    /// record is left as it is and the answer says why: `Conflict(Unqueued)` if it failed
    /// because its producer could not queue it ([`Self::unqueued`]), `Conflict(Sent)` if it was sent,
    /// `Conflict(Leased)` if a worker's lease holds at `now` (also one that just ended it), `Conflict(NotEnded)` if it is
    /// queued, retrying, or its lease has run out; `NotFound` if it has no record.
    async fn requeue(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>>;
    /// Records that the job's dead letter is about to be purged: a job that ended unsent
    /// (`Failed` or `Dead`) becomes `Dead` with last error [`PURGED`] and a `Purged` event, so its
    /// record never points at a letter that no longer exists. Otherwise the record is left as it
    /// is and the answer says why, as for [`JobLedger::requeue`]: `Conflict(Unqueued)` (its
    /// record keeps saying its producer could not queue it), `Conflict(Sent)`,
    /// `Conflict(Leased)`, `Conflict(NotEnded)`, `NotFound`.
    async fn purged(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>>;
    /// The record of a job.
    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StoreUnavailable>;
}
