//! Ports: one narrow trait per external system. Each has a real adapter and an in-memory one
//! (see [`crate::adapters`]).

mod cache;
mod email_queue;
mod exams;
mod jobs;
mod mailer;
mod queue_admin;
mod queue_control;
mod tokens;
mod users;

pub use crate::clock::Clock;
pub use cache::{Cache, CacheError, Fill, Lookup};
pub use email_queue::{EmailQueue, QueueError};
pub use exams::{AttemptStore, ExamStore};
pub use jobs::{Claim, JobLedger, JobRecord, JobStatus, Outcome};
pub use mailer::{MailError, Mailer, OutgoingEmail};
pub use queue_admin::{DeadLetterEntry, QueueAdmin, QueueCounts, RedriveReport};
pub use queue_control::{Delivery, QueueControl};
pub use tokens::{StoredToken, TokenPurpose, TokenStore};
pub use users::{UserStore, UserUpdate};

/// A boxed error from an SDK or client, kept as the source of our own errors.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness or state condition did not hold (e.g. the email address is taken).
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The item does not exist.
    #[error("not found")]
    NotFound,
    /// The store could not be reached or answered with an error.
    #[error("store unavailable: {context}")]
    Unavailable {
        /// What we were doing.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// Wraps an infrastructure error with what we were doing.
    pub fn unavailable(context: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Unavailable {
            context,
            source: source.into(),
        }
    }
}
