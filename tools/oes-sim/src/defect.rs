//! Defects planted in the pipeline on purpose, to show that the simulation's checks catch them
//! (`tests/seeds.rs`): a simulation whose every seed passes proves something only if a broken
//! pipeline fails it.

use std::sync::Arc;

use async_trait::async_trait;
use oes_domain::email::EmailJob;
use oes_domain::ports::{
    Claim, JobConflict, JobLedger, JobRecord, JobStatus, Outcome, StoreError, StoreUnavailable,
};

/// A defect to plant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Defect {
    /// The ledger forgets that a job was sent: a job delivered again after it was sent (its
    /// message's delete failed, or a copy came back) is claimed and sent a second time.
    ForgetsSends,
}

impl Defect {
    /// The job ledger with this defect in it.
    pub fn ledger(self, ledger: Arc<dyn JobLedger>) -> Arc<dyn JobLedger> {
        match self {
            Self::ForgetsSends => Arc::new(ForgetsSends(ledger)),
        }
    }
}

struct ForgetsSends(Arc<dyn JobLedger>);

#[async_trait]
impl JobLedger for ForgetsSends {
    async fn record_queued(&self, job: &EmailJob, now: i64) -> Result<(), StoreError<JobConflict>> {
        self.0.record_queued(job, now).await
    }
    async fn claim(
        &self,
        job: &EmailJob,
        now: i64,
        lease_seconds: i64,
    ) -> Result<Claim, StoreError<JobConflict>> {
        match self.0.claim(job, now, lease_seconds).await? {
            Claim::Finished(record) if record.status == JobStatus::Sent => Ok(Claim::Acquired {
                attempt: record.attempts + 1,
            }),
            other => Ok(other),
        }
    }
    async fn finish(
        &self,
        job_id: &str,
        outcome: Outcome,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        self.0.finish(job_id, outcome, now).await
    }
    async fn requeue(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        self.0.requeue(job_id, now).await
    }
    async fn purged(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        self.0.purged(job_id, now).await
    }
    async fn unqueued(
        &self,
        job_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        self.0.unqueued(job_id, reason, now).await
    }
    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StoreUnavailable> {
        self.0.get(job_id).await
    }
}
