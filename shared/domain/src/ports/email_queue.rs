use async_trait::async_trait;

use super::BoxError;
use crate::email::EmailJob;

/// The email job could not be queued.
#[derive(Debug, thiserror::Error)]
#[error("email queue unavailable: {context}")]
pub struct QueueError {
    /// What we were doing.
    pub context: &'static str,
    /// The underlying error.
    #[source]
    pub source: BoxError,
}

/// Where producers put email jobs (two SQS lanes in AWS, an in-process queue locally).
#[async_trait]
pub trait EmailQueue: Send + Sync {
    /// Queues `job` on the lane its priority selects.
    async fn enqueue(&self, job: &EmailJob) -> Result<(), QueueError>;
}
