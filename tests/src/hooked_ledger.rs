//! A job ledger over another, whose calls a test slows down or fails through [`LedgerHooks`]:
//! the doubles of the ledger tests, without each writing out every pass-through (as
//! [`crate::hooked_queues`] does for the queues).

use std::sync::Arc;

use async_trait::async_trait;
use oes_domain::email::EmailJob;
use oes_domain::ports::{
    Claim, JobConflict, JobLedger, JobRecord, Outcome, StoreError, StoreUnavailable,
};

/// What a [`HookedLedger`] does before it passes a call on.
#[async_trait]
pub trait LedgerHooks: Send + Sync {
    /// Before each call but `record_lifetime_seconds`, named as the method is (`"requeue"`,
    /// `"get"`, …), for the job `job_id`: `Some` fails it with that error, and the ledger is
    /// not asked.
    async fn before(&self, _call: &'static str, _job_id: &str) -> Option<StoreUnavailable> {
        None
    }
}

/// `ledger` with `hooks` before its calls.
pub struct HookedLedger<H> {
    /// The ledger the calls reach.
    pub ledger: Arc<dyn JobLedger>,
    /// What runs first.
    pub hooks: H,
}

impl<H: LedgerHooks> HookedLedger<H> {
    /// `ledger` with `hooks`.
    pub fn new(ledger: Arc<dyn JobLedger>, hooks: H) -> Self {
        Self { ledger, hooks }
    }

    async fn admit(&self, call: &'static str, job_id: &str) -> Result<(), StoreUnavailable> {
        self.hooks.before(call, job_id).await.map_or(Ok(()), Err)
    }
}

#[async_trait]
impl<H: LedgerHooks> JobLedger for HookedLedger<H> {
    fn record_lifetime_seconds(&self) -> Option<i64> {
        self.ledger.record_lifetime_seconds()
    }
    async fn record_queued(&self, job: &EmailJob, now: i64) -> Result<(), StoreError<JobConflict>> {
        self.admit("record_queued", &job.job_id).await?;
        self.ledger.record_queued(job, now).await
    }
    async fn claim(
        &self,
        job: &EmailJob,
        now: i64,
        lease_seconds: i64,
    ) -> Result<Claim, StoreError<JobConflict>> {
        self.admit("claim", &job.job_id).await?;
        self.ledger.claim(job, now, lease_seconds).await
    }
    async fn finish(
        &self,
        job_id: &str,
        outcome: Outcome,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        self.admit("finish", job_id).await?;
        self.ledger.finish(job_id, outcome, now).await
    }
    async fn requeue(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        self.admit("requeue", job_id).await?;
        self.ledger.requeue(job_id, now).await
    }
    async fn purged(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        self.admit("purged", job_id).await?;
        self.ledger.purged(job_id, now).await
    }
    async fn unqueued(
        &self,
        job_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        self.admit("unqueued", job_id).await?;
        self.ledger.unqueued(job_id, reason, now).await
    }
    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StoreUnavailable> {
        self.admit("get", job_id).await?;
        self.ledger.get(job_id).await
    }
}
