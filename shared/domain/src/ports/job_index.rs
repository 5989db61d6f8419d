use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{JobRecord, JobStatus, StoreUnavailable};

/// The states operators list and count jobs by: the statuses, and `stalled` — the `sending` jobs
/// whose lease has run out (a subset of `sending`).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// On a queue, not yet picked up.
    Queued,
    /// A worker holds (or held) the send lease.
    Sending,
    /// `sending`, its lease run out: the worker crashed or timed out.
    Stalled,
    /// Waiting for its backoff after a transient failure.
    Retrying,
    /// Sent.
    Sent,
    /// Failed permanently.
    Failed,
    /// Attempts exhausted.
    Dead,
}

impl JobState {
    /// Every state, in the order a console shows them.
    pub const ALL: [Self; 7] = [
        Self::Queued,
        Self::Sending,
        Self::Stalled,
        Self::Retrying,
        Self::Sent,
        Self::Failed,
        Self::Dead,
    ];

    /// The status whose records hold this state's jobs.
    pub fn status(self) -> JobStatus {
        match self {
            Self::Queued => JobStatus::Queued,
            Self::Sending | Self::Stalled => JobStatus::Sending,
            Self::Retrying => JobStatus::Retrying,
            Self::Sent => JobStatus::Sent,
            Self::Failed => JobStatus::Failed,
            Self::Dead => JobStatus::Dead,
        }
    }

    /// The name in URLs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Stalled => "stalled",
            Self::Retrying => "retrying",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }

    /// The state named `name`, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == name)
    }

    /// Whether `record` (of this state's status) is in this state at `now`.
    pub fn holds(self, record: &JobRecord, now: i64) -> bool {
        record.status == self.status() && (self != Self::Stalled || record.is_stalled(now))
    }
}

/// Where a listing stands: after the job `job_id` last changed at `updated_at` (listings are
/// newest change first, then job id descending).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobPosition {
    /// Epoch seconds.
    pub updated_at: i64,
    /// The job id.
    pub job_id: String,
}

impl JobPosition {
    /// The position of `record`.
    pub fn of(record: &JobRecord) -> Self {
        Self {
            updated_at: record.updated_at,
            job_id: record.job_id.clone(),
        }
    }
}

/// Which jobs to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobQuery {
    /// Their state.
    pub state: JobState,
    /// Only this kind (`EmailTemplate::kind`), if given.
    pub kind: Option<String>,
    /// At most this many.
    pub limit: usize,
    /// The page after this position (none: the newest).
    pub after: Option<JobPosition>,
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPage {
    /// At most the query's limit, newest change first, without their history.
    pub jobs: Vec<JobRecord>,
    /// Where the next page starts, if more jobs may follow. A filtered page (a kind, or
    /// `stalled`) may hold fewer than the limit, even none, and still have a next one: each page
    /// reads at most [`LIST_READ_BUDGET`] records.
    pub next: Option<JobPosition>,
}

/// How many jobs are in a state.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JobCount {
    /// The state.
    pub status: JobState,
    /// The jobs in it, among the newest `budget` records of its status.
    pub count: u64,
    /// Whether that is all of them: false when the status holds more records than the budget
    /// (then `count` is a lower bound).
    pub exact: bool,
}

/// The most records of a status one listing page reads while filtering (kind, `stalled`).
pub const LIST_READ_BUDGET: usize = 1000;

/// Job records by state, newest first: what operators list and count (issue 13). A separate
/// port from [`super::JobLedger`]: workers and producers never list.
#[async_trait]
pub trait JobIndex: Send + Sync {
    /// A page of the jobs `query` asks for, at `now` (which decides `stalled`).
    async fn list(&self, query: &JobQuery, now: i64) -> Result<JobPage, StoreUnavailable>;

    /// How many jobs are in `state` (and of `kind`, if given) at `now`, reading at most the
    /// newest `budget` records of its status.
    async fn count(
        &self,
        state: JobState,
        kind: Option<&str>,
        now: i64,
        budget: usize,
    ) -> Result<JobCount, StoreUnavailable>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_statuses_are_named_as_in_json() {
        for state in JobState::ALL {
            let json = serde_json::to_value(state).expect("serialises");
            assert_eq!(json, state.as_str());
            assert_eq!(JobState::parse(state.as_str()), Some(state));
            let status = state.status();
            assert_eq!(
                serde_json::to_value(status).expect("serialises"),
                status.as_str()
            );
        }
        assert_eq!(JobState::parse("Queued"), None);
    }
}
