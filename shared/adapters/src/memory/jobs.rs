//! Email job records in a map, with the lease rules, history and listings of
//! [`crate::dynamo::DynamoJobs`].

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use oes_domain::email::EmailJob;
use oes_domain::ports::{
    Claim, HISTORY_LIMIT, JobConflict, JobCount, JobEvent, JobEventKind, JobIndex, JobLedger,
    JobPage, JobPosition, JobQuery, JobRecord, JobState, JobStatus, LIST_READ_BUDGET, Outcome,
    PURGED, StoreError, StoreUnavailable,
};

use super::lock;

/// Job records in a map, with the same lease rules as the DynamoDB ledger.
#[derive(Default)]
pub struct MemoryJobs(Mutex<HashMap<String, JobRecord>>);

#[async_trait]
impl JobLedger for MemoryJobs {
    /// Never dropped: DynamoDB's TTL deletes an expired record when it gets to it, within days,
    /// and until then reads still find it; the twin is that store with a slow sweeper.
    fn record_lifetime_seconds(&self) -> Option<i64> {
        None
    }

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
            (JobStatus::Retrying, Some(retry_at)) if retry_at > now => {
                return Ok(Claim::Busy {
                    lease_until: retry_at,
                });
            }
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
        append(record, JobEvent::new(JobEventKind::Sending, now));
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
        record_outcome(record, outcome, now);
        Ok(())
    }

    async fn unqueued(
        &self,
        job_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        let mut records = lock(&self.0);
        let record = records.get_mut(job_id).ok_or(StoreError::NotFound)?;
        match record.status {
            JobStatus::Queued if record.attempts == 0 => {}
            JobStatus::Sent => return Err(StoreError::Conflict(JobConflict::Sent)),
            _ => return Err(StoreError::Conflict(JobConflict::Taken)),
        }
        let outcome = Outcome::Failed {
            reason: reason.to_owned(),
        };
        record_outcome(record, outcome, now);
        Ok(())
    }

    async fn requeue(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        let mut records = lock(&self.0);
        let record = records.get_mut(job_id).ok_or(StoreError::NotFound)?;
        ended_unsent(record, now)?;
        record.status = JobStatus::Queued;
        record.attempts = 0;
        record.lease_until = None;
        record.updated_at = now;
        append(record, JobEvent::new(JobEventKind::Requeued, now));
        Ok(())
    }

    async fn purged(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        let mut records = lock(&self.0);
        let record = records.get_mut(job_id).ok_or(StoreError::NotFound)?;
        ended_unsent(record, now)?;
        record.status = JobStatus::Dead;
        record.last_error = Some(PURGED.to_owned());
        record.lease_until = None;
        record.updated_at = now;
        append(record, JobEvent::new(JobEventKind::Purged, now));
        Ok(())
    }

    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StoreUnavailable> {
        Ok(lock(&self.0).get(job_id).cloned())
    }
}

/// `Ok` if `record` ended unsent (`Failed`, `Dead`), not because its producer could not queue it;
/// otherwise why a redrive or purge leaves it.
/// Writes `outcome` into `record` at `now` (its guard passed).
fn record_outcome(record: &mut JobRecord, outcome: Outcome, now: i64) {
    // An unsent end keeps the lease until it runs out (see `JobLedger::finish`).
    if let Outcome::Sent { .. } = outcome {
        record.lease_until = None;
    }
    record.updated_at = now;
    append(record, JobEvent::of(&outcome, now));
    match outcome {
        Outcome::Sent { ses_message_id } => {
            record.status = JobStatus::Sent;
            record.ses_message_id = Some(ses_message_id);
        }
        Outcome::Retrying { error, retry_at } => {
            record.status = JobStatus::Retrying;
            record.last_error = Some(error);
            record.lease_until = Some(retry_at);
        }
        Outcome::Paused { error, retry_at } => {
            record.status = JobStatus::Retrying;
            record.last_error = Some(error);
            record.lease_until = Some(retry_at);
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
}

fn ended_unsent(record: &JobRecord, now: i64) -> Result<(), StoreError<JobConflict>> {
    let leased = record.lease_until.is_some_and(|until| until >= now);
    match record.status {
        JobStatus::Failed | JobStatus::Dead | JobStatus::Sending if leased => {
            Err(StoreError::Conflict(JobConflict::Leased))
        }
        // Its producer could not queue it (a worker's failure always follows its claim, which
        // counts an attempt): nothing ever sends it, nor changes its record.
        JobStatus::Failed if record.attempts == 0 => {
            Err(StoreError::Conflict(JobConflict::Unqueued))
        }
        JobStatus::Failed | JobStatus::Dead => Ok(()),
        JobStatus::Sent => Err(StoreError::Conflict(JobConflict::Sent)),
        JobStatus::Queued | JobStatus::Sending | JobStatus::Retrying => {
            Err(StoreError::Conflict(JobConflict::NotEnded))
        }
    }
}

#[async_trait]
impl JobIndex for MemoryJobs {
    async fn list(&self, query: &JobQuery, now: i64) -> Result<JobPage, StoreUnavailable> {
        let newest = self.newest(query.state, query.after.as_ref());
        let mut jobs = Vec::new();
        let mut last_read = None;
        for (read, record) in newest.iter().enumerate() {
            if read == LIST_READ_BUDGET {
                // Read enough for one page: the next one goes on from the last record read.
                return Ok(JobPage {
                    jobs,
                    next: last_read,
                });
            }
            if matches(record, query.state, query.kind.as_deref(), now) {
                if jobs.len() == query.limit {
                    let next = jobs.last().map(JobPosition::of);
                    return Ok(JobPage { jobs, next });
                }
                jobs.push(JobRecord {
                    subject: None,
                    history: Vec::new(),
                    ..record.clone()
                });
            }
            last_read = Some(JobPosition::of(record));
        }
        Ok(JobPage { jobs, next: None })
    }

    async fn count(
        &self,
        state: JobState,
        kind: Option<&str>,
        now: i64,
        budget: usize,
    ) -> Result<JobCount, StoreUnavailable> {
        let newest = self.newest(state, None);
        let count = newest
            .iter()
            .take(budget)
            .filter(|record| matches(record, state, kind, now))
            .count();
        Ok(JobCount {
            status: state,
            count: count as u64,
            exact: newest.len() <= budget,
        })
    }
}

impl MemoryJobs {
    /// The records of `state`'s status changed before `after` (all without it), newest first.
    fn newest(&self, state: JobState, after: Option<&JobPosition>) -> Vec<JobRecord> {
        let mut records: Vec<JobRecord> = lock(&self.0)
            .values()
            .filter(|record| record.status == state.status())
            .filter(|record| after.is_none_or(|after| JobPosition::of(record) < *after))
            .cloned()
            .collect();
        records.sort_by_key(|record| std::cmp::Reverse(JobPosition::of(record)));
        records
    }
}

/// Whether `record` (of `state`'s status) is listed under `state` and `kind`.
fn matches(record: &JobRecord, state: JobState, kind: Option<&str>, now: i64) -> bool {
    state.holds(record, now) && kind.is_none_or(|kind| record.kind == kind)
}

/// Appends `event` to the history of `record`, keeping the last [`HISTORY_LIMIT`].
fn append(record: &mut JobRecord, event: JobEvent) {
    record.history.push(event);
    let over = record.history.len().saturating_sub(HISTORY_LIMIT);
    record.history.drain(..over);
}

fn new_record(job: &EmailJob, status: JobStatus, now: i64) -> JobRecord {
    JobRecord {
        job_id: job.job_id.clone(),
        kind: job.template.kind().to_owned(),
        recipient: job.to.as_str().to_owned(),
        subject: Some(job.template.subject()),
        status,
        attempts: 0,
        max_attempts: job.max_attempts,
        last_error: None,
        ses_message_id: None,
        lease_until: None,
        created_at: job.created_at,
        updated_at: now,
        history: Vec::new(),
    }
}
