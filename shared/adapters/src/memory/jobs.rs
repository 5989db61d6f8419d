//! Email job records in a map, with the lease rules of [`crate::dynamo::DynamoJobs`].

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use oes_domain::email::EmailJob;
use oes_domain::ports::{
    Claim, JobConflict, JobLedger, JobRecord, JobStatus, Outcome, StoreError, StoreUnavailable,
};

use super::lock;

/// Job records in a map, with the same lease rules as the DynamoDB ledger.
#[derive(Default)]
pub struct MemoryJobs(Mutex<HashMap<String, JobRecord>>);

#[async_trait]
impl JobLedger for MemoryJobs {
    async fn record_queued(&self, job: &EmailJob, now: i64) -> Result<(), StoreError<JobConflict>> {
        let mut records = lock(&self.0);
        if records.contains_key(&job.job_id) {
            return Err(StoreError::Conflict(JobConflict::JobExists));
        }
        records.insert(job.job_id.clone(), new_record(job, JobStatus::Queued, now));
        Ok(())
    }

    async fn claim(
        &self,
        job: &EmailJob,
        now: i64,
        lease_seconds: i64,
    ) -> Result<Claim, StoreError<JobConflict>> {
        let mut records = lock(&self.0);
        let record = records
            .entry(job.job_id.clone())
            .or_insert_with(|| new_record(job, JobStatus::Queued, now));
        match (record.status, record.lease_until) {
            (JobStatus::Queued | JobStatus::Retrying, _) => {}
            (JobStatus::Sending, Some(until)) if until >= now => {
                return Ok(Claim::Busy { lease_until: until });
            }
            (JobStatus::Sending, _) => {}
            (JobStatus::Sent | JobStatus::Failed | JobStatus::Dead, _) => {
                return Ok(Claim::Finished(record.clone()));
            }
        }
        record.status = JobStatus::Sending;
        record.lease_until = Some(now + lease_seconds);
        record.attempts += 1;
        record.updated_at = now;
        Ok(Claim::Acquired {
            attempt: record.attempts,
        })
    }

    async fn finish(
        &self,
        job_id: &str,
        outcome: Outcome,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        let mut records = lock(&self.0);
        let record = records.get_mut(job_id).ok_or(StoreError::NotFound)?;
        // None undoes `sent`; a retry does not reopen a job that ended.
        match (&outcome, record.status) {
            (Outcome::Sent { .. }, _) => {}
            (_, JobStatus::Sent) => return Err(StoreError::Conflict(JobConflict::Sent)),
            (
                Outcome::Retrying { .. } | Outcome::Paused { .. },
                JobStatus::Failed | JobStatus::Dead,
            ) => {
                return Err(StoreError::Conflict(JobConflict::Ended));
            }
            _ => {}
        }
        record.lease_until = None;
        record.updated_at = now;
        match outcome {
            Outcome::Sent { ses_message_id } => {
                record.status = JobStatus::Sent;
                record.ses_message_id = Some(ses_message_id);
            }
            Outcome::Retrying { error } => {
                record.status = JobStatus::Retrying;
                record.last_error = Some(error);
            }
            Outcome::Paused { error } => {
                record.status = JobStatus::Retrying;
                record.last_error = Some(error);
                record.attempts = record.attempts.saturating_sub(1);
            }
            Outcome::Failed { reason } => {
                record.status = JobStatus::Failed;
                record.last_error = Some(reason);
            }
            Outcome::Dead { reason } => {
                record.status = JobStatus::Dead;
                record.last_error = Some(reason);
            }
        }
        Ok(())
    }

    async fn requeue(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        let mut records = lock(&self.0);
        let record = records.get_mut(job_id).ok_or(StoreError::NotFound)?;
        match record.status {
            JobStatus::Failed | JobStatus::Dead => {}
            JobStatus::Sent => return Err(StoreError::Conflict(JobConflict::Sent)),
            JobStatus::Sending if record.lease_until.is_some_and(|until| until >= now) => {
                return Err(StoreError::Conflict(JobConflict::Leased));
            }
            JobStatus::Queued | JobStatus::Sending | JobStatus::Retrying => {
                return Err(StoreError::Conflict(JobConflict::NotEnded));
            }
        }
        record.status = JobStatus::Queued;
        record.attempts = 0;
        record.lease_until = None;
        record.updated_at = now;
        Ok(())
    }

    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StoreUnavailable> {
        Ok(lock(&self.0).get(job_id).cloned())
    }
}

fn new_record(job: &EmailJob, status: JobStatus, now: i64) -> JobRecord {
    JobRecord {
        job_id: job.job_id.clone(),
        kind: job.template.kind().to_owned(),
        recipient: job.to.as_str().to_owned(),
        status,
        attempts: 0,
        max_attempts: job.max_attempts,
        last_error: None,
        ses_message_id: None,
        lease_until: None,
        created_at: job.created_at,
        updated_at: now,
    }
}
