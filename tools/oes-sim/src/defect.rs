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
    /// The ledger answers a purge's write as made without making it: the purge deletes the
    /// letter of a failed or dead job whose record goes on pointing at it.
    IgnoresPurges,
    /// The ledger answers the producer's "could not be queued" as recorded without recording
    /// it: a job the producer refused stays queued, and a copy that reached its lane is sent.
    IgnoresUnqueued,
}

impl Defect {
    /// The job ledger with this defect in it.
    pub fn ledger(self, ledger: Arc<dyn JobLedger>) -> Arc<dyn JobLedger> {
        Arc::new(Defective(self, ledger))
    }
}

/// A ledger with a defect in it.
struct Defective(Defect, Arc<dyn JobLedger>);

#[async_trait]
impl JobLedger for Defective {
    fn record_lifetime_seconds(&self) -> Option<i64> {
        self.1.record_lifetime_seconds()
    }
    async fn record_queued(&self, job: &EmailJob, now: i64) -> Result<(), StoreError<JobConflict>> {
        self.1.record_queued(job, now).await
    }
    async fn claim(
        &self,
        job: &EmailJob,
        now: i64,
        lease_seconds: i64,
    ) -> Result<Claim, StoreError<JobConflict>> {
        match self.1.claim(job, now, lease_seconds).await? {
            Claim::Finished(record)
                if self.0 == Defect::ForgetsSends && record.status == JobStatus::Sent =>
            {
                Ok(Claim::Acquired {
                    attempt: record.attempts + 1,
                })
            }
            other => Ok(other),
        }
    }
    async fn finish(
        &self,
        job_id: &str,
        outcome: Outcome,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        self.1.finish(job_id, outcome, now).await
    }
    async fn requeue(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        self.1.requeue(job_id, now).await
    }
    async fn purged(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        if self.0 == Defect::IgnoresPurges {
            return Ok(());
        }
        self.1.purged(job_id, now).await
    }
    async fn unqueued(
        &self,
        job_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        if self.0 == Defect::IgnoresUnqueued {
            return Ok(());
        }
        self.1.unqueued(job_id, reason, now).await
    }
    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StoreUnavailable> {
        self.1.get(job_id).await
    }
}
