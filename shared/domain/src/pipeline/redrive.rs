//! Redrive: dead letters back to their lane, their job records back to `queued`. Receive → send
//! to the lane → reset the record → delete, so it works on SQS and on the emulator alike (which
//! has no `StartMessageMoveTask`). The body — and so the job id — is kept, so a redriven job that
//! was in fact sent is still not sent twice.

use std::collections::HashSet;
use std::time::Duration;

use serde::Serialize;

use crate::clock::Clock;
use crate::email::EmailJob;
use crate::ports::{
    JobLedger, MessageQueues, NewMessage, QueueError, QueueName, ReceivedMessage, StoreError,
};

/// How long a dead letter being redriven stays hidden from other receives.
const IN_HAND_SECONDS: u32 = 30;

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
    let mut seen = HashSet::new();
    loop {
        let batch = queues
            .receive(
                QueueName::DeadLetter,
                10,
                Some(IN_HAND_SECONDS),
                Duration::ZERO,
            )
            .await?;
        let mut fresh = 0;
        for message in batch {
            if !seen.insert(message.message_id.clone()) {
                continue;
            }
            fresh += 1;
            let job = EmailJob::decode(&message.body)
                .ok()
                .filter(|job| only.is_none_or(|id| job.job_id == id));
            let Some(job) = job else {
                // Not ours to move: visible again at once for the next listing or redrive.
                queues
                    .change_visibility(QueueName::DeadLetter, &message.receipt_handle, 0)
                    .await?;
                report.skipped += 1;
                continue;
            };
            move_back(queues, ledger, clock, &job, &message).await?;
            report.moved += 1;
            progress(&report);
        }
        if fresh == 0 {
            break;
        }
    }
    Ok(report)
}

async fn move_back(
    queues: &dyn MessageQueues,
    ledger: &dyn JobLedger,
    clock: &dyn Clock,
    job: &EmailJob,
    message: &ReceivedMessage,
) -> Result<(), QueueError> {
    let resent = NewMessage {
        body: message.body.clone(),
        delay_seconds: 0,
        attributes: [
            ("job_id", job.job_id.as_str()),
            ("kind", job.template.kind()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    };
    queues.send(job.lane().into(), &resent).await?;
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
