//! Redrive: dead letters back to their lane, their job records back to `queued`. For each
//! letter: reset the record → send the message to its lane → delete the letter. It works on SQS
//! and on the emulator alike (which has no `StartMessageMoveTask`), and a crash anywhere leaves
//! the job either still on the dead-letter queue or back on its lane with a record that lets it
//! be sent once:
//!
//! - the record is reset *before* the message is on its lane, so a worker that receives it at
//!   once finds a job to send, not a finished one to acknowledge;
//! - only a job that ended unsent (`failed`, `dead`) is reset. A letter whose job was sent (a
//!   redrive that died before deleting it, or a stale copy) is deleted and nothing is sent; so
//!   is one whose job its producer could not queue (a copy the queue kept though it answered an
//!   error): its caller was told the email failed, and may have asked again. A
//!   letter whose job has not ended (a redrive that died between the reset and the send, or a
//!   message the queue's own redrive policy moved) goes back to its lane as it is: every copy on
//!   a lane is sent at most once, by the ledger's lease. A letter whose job a worker holds the
//!   lease of stays: that worker has just put it there and is about to record the job as ended;
//! - the letter is deleted last, so a crash before that leaves it to the next redrive.

use std::collections::HashSet;

use serde::Serialize;

use super::lanes::{RECEIPT_ATTRIBUTE, lane_message};
use super::{Bounds, Step, release, take_dead_letters};
use crate::clock::Clock;
use crate::email::EmailJob;
use crate::ports::{
    JobConflict, JobLedger, MessageQueues, QueueError, QueueName, ReceivedMessage, StoreError,
};

/// What a redrive did.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RedriveReport {
    /// Messages moved back to their lane.
    pub moved: usize,
    /// Letters of jobs that were sent already: deleted, nothing sent.
    pub already_sent: usize,
    /// Letters of jobs their producer could not queue, whose caller was told the email failed
    /// (a copy the queue kept though it answered an error): deleted, nothing sent.
    pub not_queued: usize,
    /// Messages left on the dead-letter queue on purpose (undecodable, not selected, or held by
    /// a worker just now).
    pub skipped: usize,
    /// Messages left on the dead-letter queue because their job's record could not be reset:
    /// the store failed (try again once it answers).
    pub failed: usize,
    /// Whether every letter was seen (false when the step's limit stopped it first: run another
    /// step).
    pub done: bool,
}

impl RedriveReport {
    /// Letters the redrive took off the dead-letter queue: moved back, or dropped.
    pub fn handled(&self) -> usize {
        self.moved + self.already_sent + self.not_queued
    }
}

/// Moves messages from the dead-letter queue back to their lane — all of them, or only job
/// `only` (the walk ends at its letter) — and puts their job records back to `queued`; stops
/// where `step` bounds it (letters moved or dropped, time: run steps until the report says
/// `done`). `progress` is called
/// after each letter handled. Used by `oesctl`, the admin API and the embedded mode.
pub async fn redrive(
    queues: &dyn MessageQueues,
    ledger: &dyn JobLedger,
    clock: &dyn Clock,
    only: Option<&str>,
    step: impl Into<Step>,
    mut progress: impl FnMut(&RedriveReport),
) -> Result<RedriveReport, QueueError> {
    let mut report = RedriveReport::default();
    // Letters left on the queue stay hidden while the walk goes on, so each receive brings
    // others; they are made visible again at the end, whatever happened.
    let mut left = Vec::new();
    let mut walk = Walk {
        queues,
        ledger,
        clock,
        only,
        bounds: Bounds::of(step.into()),
    };
    let walked = walk.run(&mut report, &mut left, &mut progress).await;
    release(queues, &left).await;
    walked?;
    Ok(report)
}

struct Walk<'a> {
    queues: &'a dyn MessageQueues,
    ledger: &'a dyn JobLedger,
    clock: &'a dyn Clock,
    only: Option<&'a str>,
    bounds: Bounds,
}

/// What became of one letter.
enum Fate {
    Moved,
    AlreadySent,
    NotQueued,
    Left,
    /// Left because the store failed.
    Failed,
}

impl Walk<'_> {
    async fn run(
        &mut self,
        report: &mut RedriveReport,
        left: &mut Vec<String>,
        progress: &mut impl FnMut(&RedriveReport),
    ) -> Result<(), QueueError> {
        let mut seen = HashSet::new();
        loop {
            if report.handled() >= self.bounds.letters || self.bounds.out_of_time() {
                return Ok(());
            }
            let batch = take_dead_letters(self.queues).await?;
            // Letters not seen before in this batch: once a batch brings none, all have been seen.
            let mut fresh = 0;
            // Redriving one job: once its letter is handled, the walk is over.
            let mut found = false;
            for message in batch {
                if found
                    || self.bounds.out_of_time()
                    || !seen.insert(message.message_id.clone())
                    || report.handled() >= self.bounds.letters
                {
                    left.push(message.receipt_handle);
                    continue;
                }
                fresh += 1;
                let job = EmailJob::decode(&message.body)
                    .ok()
                    .filter(|job| self.only.is_none_or(|id| job.job_id == id));
                let fate = match job {
                    Some(job) => self.move_back(&job, &message).await?,
                    // Undecodable, or not the one asked for: it stays, for an operator.
                    None => Fate::Left,
                };
                match fate {
                    Fate::Moved => report.moved += 1,
                    Fate::AlreadySent => report.already_sent += 1,
                    Fate::NotQueued => report.not_queued += 1,
                    Fate::Left => {
                        left.push(message.receipt_handle);
                        report.skipped += 1;
                        continue;
                    }
                    Fate::Failed => {
                        left.push(message.receipt_handle);
                        report.failed += 1;
                        continue;
                    }
                }
                progress(report);
                found = self.only.is_some();
            }
            if found || (fresh == 0 && !self.bounds.out_of_time()) {
                report.done = true;
                return Ok(());
            }
        }
    }

    async fn move_back(
        &self,
        job: &EmailJob,
        message: &ReceivedMessage,
    ) -> Result<Fate, QueueError> {
        match self.ledger.requeue(&job.job_id, self.clock.now()).await {
            // Reset; or not ended, so a copy may be needed on the lane; or no record (expired):
            // the claim makes one.
            Ok(()) | Err(StoreError::Conflict(JobConflict::NotEnded) | StoreError::NotFound) => {}
            Err(StoreError::Conflict(JobConflict::Sent)) => {
                tracing::info!(job_id = %job.job_id, "the job was sent already; its dead letter is dropped");
                self.queues
                    .delete(QueueName::DeadLetter, &message.receipt_handle)
                    .await?;
                return Ok(Fate::AlreadySent);
            }
            Err(StoreError::Conflict(JobConflict::Unqueued)) => {
                tracing::info!(job_id = %job.job_id, "its producer could not queue the job and said so; its dead letter is dropped");
                self.queues
                    .delete(QueueName::DeadLetter, &message.receipt_handle)
                    .await?;
                return Ok(Fate::NotQueued);
            }
            Err(StoreError::Conflict(JobConflict::Leased)) => {
                tracing::info!(job_id = %job.job_id, "a worker holds the job; its letter stays for a later redrive");
                return Ok(Fate::Left);
            }
            Err(error) => {
                tracing::warn!(job_id = %job.job_id, %error, "could not reset the job record; the letter stays");
                return Ok(Fate::Failed);
            }
        }
        let mut back = lane_message(job, message.body.clone());
        if let Some(ses_message_id) = message.attributes.get(RECEIPT_ATTRIBUTE) {
            back.attributes
                .insert(RECEIPT_ATTRIBUTE.to_owned(), ses_message_id.clone());
        }
        self.queues.send(job.lane().into(), &back).await?;
        self.queues
            .delete(QueueName::DeadLetter, &message.receipt_handle)
            .await?;
        Ok(Fate::Moved)
    }
}
