//! Purge: every dead letter deleted, and the job records of their jobs saying so. A purged letter
//! is lost, so for each one the job's record is written first (a `failed` or `dead` job becomes
//! `dead` with reason [`PURGED`](crate::ports::PURGED) and a `purged` event), then the letter is
//! deleted: a crash in between leaves a record that says purged with its letter still there
//! (the next purge takes it), never a letter gone with a record still pointing at it.
//!
//! - A receipt (a letter carrying the SES message id of an email SES accepted, whose record
//!   could not say so) records its job `sent` with that id, then is deleted: purging gives up
//!   the letter, not the fact.
//! - A letter of a job that was sent, or of a job whose record has not ended or has expired, is
//!   deleted; the record is left as it is. So is the letter of a job its producer could not
//!   queue: its record keeps saying so, and nothing ever sends it.
//! - A letter whose job a worker holds the lease of stays: that worker has just put it there and
//!   is about to record the job as ended (the next purge step takes it).
//! - An undecodable letter is deleted (there is no record to write).
//!
//! Used by `oesctl dlq purge` and the admin API's `POST /admin/dlq/purge`, one step at a time.

use std::collections::HashSet;

use serde::Serialize;

use super::lanes::RECEIPT_ATTRIBUTE;
use super::{Bounds, Step, release, take_dead_letters};
use crate::clock::Clock;
use crate::email::EmailJob;
use crate::ports::{
    JobConflict, JobLedger, MessageQueues, Outcome, QueueError, QueueName, ReceivedMessage,
    StoreError,
};

/// What a purge did.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    /// Letters deleted.
    pub purged: usize,
    /// The jobs whose records now say `dead`, reason purged (a subset of the letters' jobs).
    pub marked: Vec<String>,
    /// Letters left on the queue on purpose (a worker holds their job just now).
    pub skipped: usize,
    /// Letters left on the queue because their job's record could not be written: the store
    /// failed (try again once it answers).
    pub failed: usize,
    /// Whether every letter was seen (false when the step's limit stopped it first: run another
    /// step).
    pub done: bool,
}

/// Deletes the letters on the dead-letter queue, writing their job records first; stops where
/// `step` bounds it (letters deleted, time: run steps until the report says `done`).
/// `progress` is called after each letter deleted.
pub async fn purge(
    queues: &dyn MessageQueues,
    ledger: &dyn JobLedger,
    clock: &dyn Clock,
    step: impl Into<Step>,
    mut progress: impl FnMut(&PurgeReport),
) -> Result<PurgeReport, QueueError> {
    let mut report = PurgeReport::default();
    // Letters left stay hidden while the walk goes on, so each receive brings others; they are
    // made visible again at the end, whatever happened.
    let mut left = Vec::new();
    let walked = walk(
        queues,
        ledger,
        clock,
        &Bounds::of(step.into()),
        &mut report,
        &mut left,
        &mut progress,
    )
    .await;
    release(queues, &left).await;
    walked?;
    Ok(report)
}

async fn walk(
    queues: &dyn MessageQueues,
    ledger: &dyn JobLedger,
    clock: &dyn Clock,
    bounds: &Bounds,
    report: &mut PurgeReport,
    left: &mut Vec<String>,
    progress: &mut impl FnMut(&PurgeReport),
) -> Result<(), QueueError> {
    let mut seen = HashSet::new();
    loop {
        if report.purged >= bounds.letters || bounds.out_of_time() {
            return Ok(());
        }
        let batch = take_dead_letters(queues).await?;
        // Letters not seen before in this batch: once a batch brings none, all have been seen.
        let mut fresh = 0;
        for message in batch {
            if bounds.out_of_time()
                || !seen.insert(message.message_id.clone())
                || report.purged >= bounds.letters
            {
                left.push(message.receipt_handle);
                continue;
            }
            fresh += 1;
            match record(ledger, clock, &message).await {
                Recorded::Done(marked) => report.marked.extend(marked),
                Recorded::Held => {
                    left.push(message.receipt_handle);
                    report.skipped += 1;
                    continue;
                }
                Recorded::Failed => {
                    left.push(message.receipt_handle);
                    report.failed += 1;
                    continue;
                }
            }
            queues
                .delete(QueueName::DeadLetter, &message.receipt_handle)
                .await?;
            report.purged += 1;
            progress(report);
        }
        if fresh == 0 && !bounds.out_of_time() {
            report.done = true;
            return Ok(());
        }
    }
}

/// What a letter's job record says before the letter is deleted.
enum Recorded {
    /// The letter may go; the job marked dead (purged), if it was.
    Done(Option<String>),
    /// A worker holds the job: the letter stays for a later purge.
    Held,
    /// The record could not be written: the letter stays.
    Failed,
}

/// Writes the record of `message`'s job before its letter goes: a receipt's job is recorded
/// sent, a job that ended unsent dead (purged); an undecodable letter has no record.
async fn record(ledger: &dyn JobLedger, clock: &dyn Clock, message: &ReceivedMessage) -> Recorded {
    let Ok(job) = EmailJob::decode(&message.body) else {
        return Recorded::Done(None);
    };
    if let Some(ses_message_id) = message.attributes.get(RECEIPT_ATTRIBUTE) {
        let sent = Outcome::Sent {
            ses_message_id: ses_message_id.clone(),
        };
        return match ledger.finish(&job.job_id, sent, clock.now()).await {
            Ok(()) | Err(StoreError::NotFound) => {
                tracing::info!(job_id = %job.job_id, "a receipt: the job is recorded sent");
                Recorded::Done(None)
            }
            Err(error) => {
                tracing::warn!(job_id = %job.job_id, %error, "could not record the receipt's job sent; the letter stays");
                Recorded::Failed
            }
        };
    }
    match ledger.purged(&job.job_id, clock.now()).await {
        Ok(()) => Recorded::Done(Some(job.job_id)),
        Err(
            StoreError::Conflict(JobConflict::Sent | JobConflict::NotEnded | JobConflict::Unqueued)
            | StoreError::NotFound,
        ) => Recorded::Done(None),
        Err(StoreError::Conflict(JobConflict::Leased)) => {
            tracing::info!(job_id = %job.job_id, "a worker holds the job; its letter stays for a later purge");
            Recorded::Held
        }
        Err(error) => {
            tracing::warn!(job_id = %job.job_id, %error, "could not write the job record; the letter stays");
            Recorded::Failed
        }
    }
}
