//! Redrive: dead letters back to their lane, their job records back to `queued`. Receive → send
//! to the lane → reset the record → delete, so it works on SQS and on the emulator alike (which
//! has no `StartMessageMoveTask`). The body — and so the job id — is kept, so a redriven job that
//! was in fact sent is still not sent twice.

use std::collections::HashSet;

use serde::Serialize;

use super::lanes::lane_message;
use super::{release, take_dead_letters};
use crate::clock::Clock;
use crate::email::EmailJob;
use crate::ports::{JobLedger, MessageQueues, QueueError, QueueName, ReceivedMessage, StoreError};

/// What a redrive did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RedriveReport {
    /// Messages moved back to their lane.
    pub moved: usize,
    /// Messages left on the dead-letter queue (undecodable, or not selected).
    pub skipped: usize,
}

/// Moves messages from the dead-letter queue back to their lane — all of them, or only job
/// `only` — and puts their job records back to `queued`. `progress` is called after each message
/// moved. Used by `oesctl`, the admin API and the embedded mode.
pub async fn redrive(
    queues: &dyn MessageQueues,
    ledger: &dyn JobLedger,
    clock: &dyn Clock,
    only: Option<&str>,
    mut progress: impl FnMut(&RedriveReport),
) -> Result<RedriveReport, QueueError> {
    let mut report = RedriveReport::default();
    // Letters left on the queue stay hidden while the walk goes on, so each receive brings
    // others; they are made visible again at the end, whatever happened.
    let mut left = Vec::new();
    let walked = walk(
        queues,
        ledger,
        clock,
        only,
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
    only: Option<&str>,
    report: &mut RedriveReport,
    left: &mut Vec<String>,
    progress: &mut impl FnMut(&RedriveReport),
) -> Result<(), QueueError> {
    let mut seen = HashSet::new();
    loop {
        let batch = take_dead_letters(queues).await?;
        // Letters not seen before in this batch: once a batch brings none, all have been seen.
        let mut fresh = 0;
        for message in batch {
            if !seen.insert(message.message_id.clone()) {
                left.push(message.receipt_handle);
                continue;
            }
            fresh += 1;
            let job = EmailJob::decode(&message.body)
                .ok()
                .filter(|job| only.is_none_or(|id| job.job_id == id));
            let Some(job) = job else {
                // Undecodable, or not the one asked for: it stays, for an operator.
                left.push(message.receipt_handle);
                report.skipped += 1;
                continue;
            };
            move_back(queues, ledger, clock, &job, &message).await?;
            report.moved += 1;
            progress(report);
        }
        if fresh == 0 {
            return Ok(());
        }
    }
}

async fn move_back(
    queues: &dyn MessageQueues,
    ledger: &dyn JobLedger,
    clock: &dyn Clock,
    job: &EmailJob,
    message: &ReceivedMessage,
) -> Result<(), QueueError> {
    queues
        .send(job.lane().into(), &lane_message(job, message.body.clone()))
        .await?;
    match ledger.requeue(&job.job_id, clock.now()).await {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(error) => {
            tracing::warn!(job_id = %job.job_id, %error, "could not reset the job record");
        }
    }
    queues
        .delete(QueueName::DeadLetter, &message.receipt_handle)
        .await
}
