//! The attempt sweep: attempts close at their deadline without their student.
//!
//! Run every minute (an EventBridge schedule of the `attempt-sweeper` function in AWS, a
//! background task in `oes-local`), a sweep reads the due attempts
//! ([`AttemptStore::due_attempts`]: every attempt has an entry from its start, due from its
//! deadline; its close moves it to [`EMAIL_CHECK_AFTER`] later, so a result email a dying
//! submit left behind is sent within minutes, not at the deadline) and settles each one:
//! - still in progress: closed through the path of a submit
//!   ([`ExamService::close_at_deadline`]), graded as of its deadline on the answers saved until
//!   then (`closed_by: deadline`, `late: false`), with its result email;
//! - submitted by its student already, its result email claimed for a job a worker has taken
//!   ([`JobLedger::get`]: the job has a history): nothing to do;
//! - submitted, its result email not claimed (its queueing failed at the submit, which released
//!   the claim): the email is claimed and queued, as a second submit would;
//! - submitted, its result email claimed for a job the job ledger does not know (the submit
//!   died between its store write and queueing the job, or the job could not be recorded and
//!   the claim could not be released either): the submit's path
//!   ([`ExamService::close_at_deadline`]) queues the email under the claimed job id, as a second
//!   submit by the student would without waiting for the deadline, so the ledger and the
//!   worker's send lease let one copy through if the claiming submit queues it too;
//! - submitted, its result email claimed for a job recorded queued that no worker has taken:
//!   - recorded within [`SEND_WINDOW`]: the submit that recorded it may still be sending it, and
//!     the queue may yet refuse it (the submit then records it failed and releases the claim).
//!     The attempt keeps its entry, and the next sweep looks again;
//!   - recorded longer ago: it may be waiting on its lane, or may never have reached it (the
//!     submit died between recording and sending it, or the queue answered an error the ledger
//!     could not record: the submit keeps the claim, as the queue may have taken the job). The
//!     job is sent again under its id ([`EmailProducer::resend`]); of the copies, the worker's
//!     send lease lets one through;
//! - submitted, its result email claimed for a job refused at queueing (recorded failed before
//!   any send) whose claim could not be released: the claim is released, then the email
//!   claimed again and queued under a new job;
//!
//! then its entry is cleared (unless its job may still be on its way). The store's submit is
//! conditional on the attempt being in progress and claims the result email in the same write,
//! so however a sweep, a second sweep and the student's submit race, an attempt is graded once
//! and gets one result email. An attempt that could not be settled (the store, the job ledger
//! or the queue failed) keeps its entry and is settled by the next sweep.
//!
//! Each sweep reports what it did ([`SweepReport`]) in its log line and two metrics:
//! `AttemptsClosed` and `ResultEmailsRecovered` (the emails above that a close left undone).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use lambda_runtime::LambdaEvent;
use oes_domain::clock::Clock;
use oes_domain::exam::{Attempt, AttemptStatus};
use oes_domain::metrics;
use oes_domain::ports::{
    AttemptStore, DueAttempt, JobLedger, JobRecord, JobStatus, StoreUnavailable, UserStore,
};
use oes_domain::producer::EmailProducer;
use oes_domain::user::UserProfile;
use oes_runtime::http::error_chain;
use oes_runtime::wiring::ApiAdapters;
use serde::Serialize;

use crate::error::ExamError;
use crate::service::{Closed, ExamService, NO_RECIPIENT};

/// Due attempts read at a time.
const BATCH: usize = 100;
/// Attempts settled at once.
const CONCURRENCY: usize = 8;

/// How long after a job is recorded its producer may still be sending it: longer than any
/// request runs (the store write, the record and the send are each bounded by `AwsTimeouts`,
/// and exam-api's Lambda timeout is 10 s; `timeout_chain` checks both). Until then a sweep
/// leaves an attempt whose result email's job is recorded queued, untaken, for the next sweep.
pub const SEND_WINDOW: Duration = Duration::from_secs(60);

/// Seconds after a close (a submit, or the sweep's own at the deadline) when the sweep checks
/// that the attempt's result email left: the close moves the attempt's due entry there. By then
/// the close's request has ended and a job it recorded is older than [`SEND_WINDOW`], so a job
/// recorded and never sent (its close died first) is sent again then, not at the deadline.
pub const EMAIL_CHECK_AFTER: i64 = 2 * SEND_WINDOW.as_secs() as i64;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Attempts it closed at their deadline.
    pub closed: u32,
    /// Attempts submitted by their student before the sweep reached them, their result email
    /// on its way: nothing to do.
    pub submitted: u32,
    /// Attempts closed before (by their student's submit, or at the deadline by an earlier
    /// sweep) whose result email that close left undone (the queue refused it, or the close
    /// died between its store write and the send): the sweep queued it, or sent its job to its
    /// lane again.
    pub recovered: u32,
    /// Attempts submitted whose result email's job was recorded moments ago and may still be
    /// on its way to its lane ([`SEND_WINDOW`]), or was claimed by a second submit as this sweep
    /// was about to claim it ([`Closed::ClaimedMeanwhile`]): the next sweep looks again.
    pub waiting: u32,
    /// Attempts it could not settle (the store, the job ledger or the queue failed): the next
    /// sweep tries again.
    pub failed: u32,
}

/// Closes the attempts past their deadline.
pub struct AttemptSweeper {
    exams: ExamService,
    attempts: Arc<dyn AttemptStore>,
    users: Arc<dyn UserStore>,
    jobs: Arc<dyn JobLedger>,
    emails: EmailProducer,
    clock: Arc<dyn Clock>,
}

impl AttemptSweeper {
    /// The sweeper over `adapters` (the attempts, the accounts the result emails go to, the
    /// email producer and the job ledger it records in, and the cache it invalidates as a submit
    /// does).
    pub fn new(adapters: &ApiAdapters, clock: Arc<dyn Clock>) -> Self {
        Self {
            exams: ExamService::new(
                adapters.exams.clone(),
                adapters.attempts.clone(),
                adapters.cache.clone(),
                adapters.emails.clone(),
                clock.clone(),
            ),
            attempts: adapters.attempts.clone(),
            users: adapters.users.clone(),
            jobs: adapters.jobs.clone(),
            emails: adapters.emails.clone(),
            clock,
        }
    }

    /// Settles the attempts due now, a batch at a time, until none is left or `budget` has
    /// passed: no entry is taken after it, also within a batch (the rest wait for the next
    /// sweep) — but the first wave (`CONCURRENCY` entries) always is, so a sweep given too
    /// little time still gets on. Fails only if the due attempts cannot be read (what it
    /// settled before is still counted and logged).
    #[tracing::instrument(skip_all)]
    pub async fn sweep(&self, budget: Duration) -> Result<SweepReport, StoreUnavailable> {
        let started = Instant::now();
        let now = self.clock.now();
        let mut report = SweepReport::default();
        // Entries this sweep leaves due (waiting or failed): not settled again.
        let mut kept = HashSet::new();
        // Entries this sweep has taken.
        let mut taken = 0;
        loop {
            let want = BATCH + kept.len();
            let due = match self.attempts.due_attempts(now, want).await {
                Ok(due) => due,
                Err(error) => {
                    Self::tell(&report);
                    return Err(error);
                }
            };
            let more = due.len() == want;
            let before = taken;
            let settled: Vec<_> = futures_util::stream::iter(due)
                .filter(|due| std::future::ready(!kept.contains(due)))
                .enumerate()
                .take_while(|(n, _)| {
                    std::future::ready(before + n < CONCURRENCY || started.elapsed() < budget)
                })
                .map(|(_, due)| async move { (self.settle(&due).await, due) })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            taken += settled.len();
            for (outcome, due) in settled {
                match outcome {
                    Ok(Settled::Done(Closed::Now)) => report.closed += 1,
                    Ok(Settled::Done(Closed::Before)) => report.submitted += 1,
                    Ok(Settled::Done(Closed::EmailQueued)) => report.recovered += 1,
                    // Left due for a later sweep to look at again: not by this one.
                    Ok(Settled::Done(Closed::EmailUnsure)) => {
                        report.recovered += 1;
                        kept.insert(due);
                    }
                    Ok(Settled::Waiting | Settled::Done(Closed::ClaimedMeanwhile)) => {
                        report.waiting += 1;
                        kept.insert(due);
                    }
                    Err(error) => {
                        tracing::error!(
                            attempt_id = %due.attempt_id,
                            error = %error_chain(&error),
                            "could not settle a due attempt"
                        );
                        report.failed += 1;
                        kept.insert(due);
                    }
                }
            }
            if !more || started.elapsed() >= budget {
                break;
            }
        }
        Self::tell(&report);
        Ok(report)
    }

    /// Counts a sweep's work in its metrics and its log line.
    fn tell(report: &SweepReport) {
        metrics::record(metrics::ATTEMPTS_CLOSED, f64::from(report.closed), None);
        metrics::record(
            metrics::RESULT_EMAILS_RECOVERED,
            f64::from(report.recovered),
            None,
        );
        // Every minute in AWS, every few seconds in oes-local: a sweep that found nothing due
        // is not worth a line at INFO (Lambda's report of the invocation already says it ran).
        if *report == SweepReport::default() {
            tracing::debug!("attempt sweep done: nothing was due");
        } else {
            tracing::info!(
                closed = report.closed,
                submitted = report.submitted,
                recovered = report.recovered,
                waiting = report.waiting,
                failed = report.failed,
                "attempt sweep done"
            );
        }
    }

    /// Closes the attempt of `due` if it is still in progress, queues its result email if that
    /// is missing, then clears `due` unless the email's job may still be on its way.
    async fn settle(&self, due: &DueAttempt) -> Result<Settled, ExamError> {
        let settled = match self.attempts.get_attempt(&due.attempt_id).await? {
            Some(attempt) => self.close(attempt).await?,
            // Never expected: nothing to do.
            None => Settled::Done(Closed::Before),
        };
        // An email queued unsure, or claimed meanwhile by a second submit whose send may yet
        // fail, stays due: a later sweep finds its job recorded (and sends it again if no worker
        // took it), or the claim released (and queues it).
        if !matches!(
            settled,
            Settled::Waiting | Settled::Done(Closed::EmailUnsure | Closed::ClaimedMeanwhile)
        ) {
            self.attempts.clear_due(due).await?;
        }
        Ok(settled)
    }

    /// Closes `attempt` if it is still in progress, and queues its result email if that is
    /// missing (see the module's documentation).
    async fn close(&self, mut attempt: Attempt) -> Result<Settled, ExamError> {
        match self.result_email(&attempt).await? {
            ResultEmail::Taken => return Ok(Settled::Done(Closed::Before)),
            ResultEmail::Recorded => return Ok(Settled::Waiting),
            ResultEmail::Untaken(job_id) => {
                return Ok(Settled::Done(self.resend_claimed(&attempt, &job_id).await?));
            }
            ResultEmail::Refused(job_id) => {
                tracing::warn!(
                    attempt_id = %attempt.id,
                    job_id,
                    "the result email's job was refused at queueing and its claim kept: queued again"
                );
                self.attempts
                    .release_result_email(&attempt.id, &job_id)
                    .await?;
                attempt.result_email_job = None;
            }
            // The submit's path queues it (a claimed job never recorded: under its id).
            ResultEmail::Unclaimed | ResultEmail::Unrecorded => {}
        }
        let student = self.student(&attempt).await?;
        let (_, closed) = self
            .exams
            .close_at_deadline(attempt, student.as_ref())
            .await?;
        Ok(Settled::Done(closed))
    }

    /// Sends the result email of `attempt`, submitted, to its lane again under its claimed
    /// `job_id`, recorded but maybe never on its lane: [`Closed::EmailQueued`], or
    /// [`Closed::Before`] if the student's account is gone (no one to send it to).
    async fn resend_claimed(&self, attempt: &Attempt, job_id: &str) -> Result<Closed, ExamError> {
        let Some(student) = self.student(attempt).await? else {
            return Ok(Closed::Before);
        };
        let Some(job) = self
            .exams
            .claimed_result_email(attempt, &student, job_id)
            .await?
        else {
            return Ok(Closed::Before);
        };
        let resent = self.emails.resend(&job).await;
        resent.map_err(|error| ExamError::Queue(error.into()))?;
        tracing::warn!(
            job_id,
            "the result email's job, recorded and untaken, is sent to its lane again"
        );
        Ok(Closed::EmailQueued)
    }

    /// Where the result email of `attempt` stands.
    async fn result_email(&self, attempt: &Attempt) -> Result<ResultEmail, StoreUnavailable> {
        let claimed = match &attempt.result_email_job {
            Some(job_id) if attempt.status == AttemptStatus::Submitted => job_id,
            _ => return Ok(ResultEmail::Unclaimed),
        };
        if claimed == NO_RECIPIENT {
            return Ok(ResultEmail::Taken);
        }
        let now = self.clock.now();
        Ok(match self.jobs.get(claimed).await? {
            None => ResultEmail::Unrecorded,
            Some(record) if refused(&record) => ResultEmail::Refused(claimed.clone()),
            Some(record) if untaken(&record) => {
                let age = now.saturating_sub(record.created_at);
                if u64::try_from(age).is_ok_and(|age| age > SEND_WINDOW.as_secs()) {
                    ResultEmail::Untaken(claimed.clone())
                } else {
                    ResultEmail::Recorded
                }
            }
            Some(_) => ResultEmail::Taken,
        })
    }

    /// The profile of the student of `attempt`, the result email's recipient; `None` if their
    /// account is gone.
    async fn student(&self, attempt: &Attempt) -> Result<Option<UserProfile>, ExamError> {
        let student = self.users.get(&attempt.user_id).await?;
        if student.is_none() {
            tracing::warn!(
                attempt_id = %attempt.id,
                "the student's account is gone: the result is recorded without an email"
            );
        }
        Ok(student.map(|user| user.profile()))
    }
}

/// Where an attempt's result email stands, as a sweep finds it.
enum ResultEmail {
    /// Claimed for a job a worker has taken (or for no email at all, [`NO_RECIPIENT`]): nothing
    /// left to do.
    Taken,
    /// Claimed for a job recorded queued within [`SEND_WINDOW`], untaken: its submit may still
    /// be sending it.
    Recorded,
    /// Claimed for this job, recorded queued longer ago than [`SEND_WINDOW`], untaken: it may
    /// never have reached its lane.
    Untaken(String),
    /// Claimed for a job the job ledger does not know: it was never queued.
    Unrecorded,
    /// Claimed for this job, which the queue refused ([`refused`]): it will never be sent.
    Refused(String),
    /// Not claimed, or the attempt still in progress.
    Unclaimed,
}

/// What a sweep did with a due attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Settled {
    /// Settled as a close of it would be ([`Closed`]): closed now by this sweep, found closed
    /// with nothing left to do, or found closed and its result email queued or sent again.
    Done(Closed),
    /// Found it submitted, its result email's job maybe still on its way: its entry stays.
    Waiting,
}

/// Time kept back from the invocation's deadline for the batch in hand to finish.
const MARGIN: Duration = Duration::from_secs(20);

/// The `attempt-sweeper` Lambda's handler: one sweep per scheduled event, within the
/// invocation's time. The event carries nothing the sweep needs (the time is the clock's). A
/// sweep that could not settle every due attempt fails the invocation (the function's `Errors`,
/// which an alarm watches); the next sweep tries them again.
pub async fn handle(
    sweeper: &AttemptSweeper,
    event: LambdaEvent<serde_json::Value>,
) -> Result<SweepReport, lambda_runtime::Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let budget = Duration::from_millis(event.context.deadline)
        .saturating_sub(now)
        .saturating_sub(MARGIN);
    let report = sweeper.sweep(budget).await?;
    if report.failed > 0 {
        return Err(format!("{} due attempts could not be settled", report.failed).into());
    }
    Ok(report)
}

/// Whether the job of `record` was refused at queueing: the producer records a job, then
/// records it failed if the queue refuses it, before any attempt to send it. A job that failed
/// on a worker failed on an attempt (its attempts count at least one).
fn refused(record: &JobRecord) -> bool {
    record.status == JobStatus::Failed && record.attempts == 0
}

/// Whether the job of `record` is as its producer recorded it, queued: no worker has taken it
/// (every claim, outcome and redrive adds to its history).
fn untaken(record: &JobRecord) -> bool {
    record.status == JobStatus::Queued && record.history.is_empty()
}
