//! Ports: one narrow trait per external system. Each has a real adapter and an in-memory one
//! (in the `oes-adapters` crate), held to each other by a contract suite.

mod cache;
mod email_queue;
mod error;
mod exams;
mod job_index;
mod jobs;
mod lanes;
mod mailer;
mod queue_control;
mod queues;
mod tokens;
mod users;

pub use cache::{Cache, CacheError, Fill, Lookup};
pub use email_queue::{EmailQueue, QueueError};
pub use error::{StoreError, StoreUnavailable};
pub use exams::{AttemptConflict, AttemptStore, DueAttempt, ExamConflict, ExamStore};
pub use job_index::{
    JobCount, JobIndex, JobPage, JobPosition, JobQuery, JobState, LIST_READ_BUDGET,
};
pub use jobs::{
    Claim, EVENT_ERROR_CHARS, HISTORY_LIMIT, JobConflict, JobEvent, JobEventKind, JobLedger,
    JobRecord, JobStatus, Outcome, PURGED,
};
pub use lanes::LaneSwitch;
pub use mailer::{MailError, Mailer};
pub use queue_control::{Delivery, QueueControl};
pub use queues::{MessageQueues, NewMessage, QueueCounts, QueueName, ReceivedMessage, queue_name};
pub use tokens::{Replaced, StoredToken, TokenPurpose, TokenStore};
pub use users::{LinkedState, UserConflict, UserStore, UserUpdate};

/// A boxed error from an SDK or client, kept as the source of our own errors.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;
