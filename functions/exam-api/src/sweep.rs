//! The attempt sweep: attempts close at their deadline without their student.
//!
//! Run every minute (an EventBridge schedule of the `attempt-sweeper` function in AWS, a
//! background task in `oes-local`), a sweep reads the due attempts
//! ([`AttemptStore::due_attempts`]: every attempt has an entry from its start, due from its
//! deadline) and settles each one:
//! - still in progress: closed through the path of a submit
//!   ([`ExamService::close_at_deadline`]), graded as of its deadline on the answers saved until
//!   then (`closed_by: deadline`, `late: false`), with its result email;
//! - submitted by its student already: its result email is queued only if it is still missing
//!   (its queueing failed at the submit);
//!
//! then its entry is cleared. The store's submit is conditional on the attempt being in
//! progress and claims the result email in the same write, so however a sweep, a second sweep
//! and the student's submit race, an attempt is graded once and gets one result email. An
//! attempt that could not be settled (the store or the queue failed) keeps its entry and is
//! settled by the next sweep.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt as _;
use lambda_runtime::LambdaEvent;
use oes_domain::clock::Clock;
use oes_domain::exam::{Attempt, AttemptStatus};
use oes_domain::metrics;
use oes_domain::ports::{AttemptStore, DueAttempt, StoreUnavailable, UserStore};
use oes_runtime::http::error_chain;
use oes_runtime::wiring::ApiAdapters;
use serde::Serialize;

use crate::error::ExamError;
use crate::service::ExamService;

/// Due attempts read at a time.
const BATCH: usize = 100;
/// Attempts settled at once.
const CONCURRENCY: usize = 8;

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    /// Attempts it closed at their deadline.
    pub closed: u32,
    /// Attempts submitted by their student before the sweep reached them.
    pub submitted: u32,
    /// Attempts it could not settle (the store or the queue failed): the next sweep tries again.
    pub failed: u32,
}

/// Closes the attempts past their deadline.
pub struct AttemptSweeper {
    exams: ExamService,
    attempts: Arc<dyn AttemptStore>,
    users: Arc<dyn UserStore>,
    clock: Arc<dyn Clock>,
}

impl AttemptSweeper {
    /// The sweeper over `adapters` (the attempts, the accounts the result emails go to, the
    /// email producer, and the cache it invalidates as a submit does).
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
            clock,
        }
    }

    /// Settles the attempts due now, a batch at a time, until none is left or `budget` has
    /// passed (the rest wait for the next sweep). Fails only if the due attempts cannot be read.
    #[tracing::instrument(skip_all)]
    pub async fn sweep(&self, budget: Duration) -> Result<SweepReport, StoreUnavailable> {
        let started = Instant::now();
        let now = self.clock.now();
        let mut report = SweepReport::default();
        let mut failed = HashSet::new();
        loop {
            let want = BATCH + failed.len();
            let due = self.attempts.due_attempts(now, want).await?;
            let more = due.len() == want;
            let settled: Vec<_> = futures_util::stream::iter(due)
                .filter(|due| std::future::ready(!failed.contains(due)))
                .map(|due| async move { (self.settle(&due).await, due) })
                .buffer_unordered(CONCURRENCY)
                .collect()
                .await;
            for (outcome, due) in settled {
                match outcome {
                    Ok(true) => report.closed += 1,
                    Ok(false) => report.submitted += 1,
                    Err(error) => {
                        tracing::error!(
                            attempt_id = %due.attempt_id,
                            error = %error_chain(&error),
                            "could not settle a due attempt"
                        );
                        report.failed += 1;
                        failed.insert(due);
                    }
                }
            }
            if !more || started.elapsed() >= budget {
                break;
            }
        }
        metrics::record(metrics::ATTEMPTS_CLOSED, f64::from(report.closed), None);
        tracing::info!(
            closed = report.closed,
            submitted = report.submitted,
            failed = report.failed,
            "attempt sweep done"
        );
        Ok(report)
    }

    /// Closes the attempt of `due` if it is still in progress, queues its result email if that
    /// is missing, then clears `due`. Whether it closed the attempt.
    async fn settle(&self, due: &DueAttempt) -> Result<bool, ExamError> {
        let closed = match self.attempts.get_attempt(&due.attempt_id).await? {
            Some(attempt) if !settled(&attempt) => {
                let student = self.users.get(&attempt.user_id).await?;
                if student.is_none() {
                    tracing::warn!(
                        attempt_id = %attempt.id,
                        "the student's account is gone: the result is recorded without an email"
                    );
                }
                let student = student.map(|user| user.profile());
                let (_, closed) = self
                    .exams
                    .close_at_deadline(attempt, student.as_ref())
                    .await?;
                closed
            }
            // Submitted with its email queued, or (never expected) absent: nothing to do.
            _ => false,
        };
        self.attempts.clear_due(due).await?;
        Ok(closed)
    }
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

/// Whether nothing is left to do for `attempt`: submitted, and its result email queued.
fn settled(attempt: &Attempt) -> bool {
    attempt.status == AttemptStatus::Submitted && attempt.result_email_job.is_some()
}
