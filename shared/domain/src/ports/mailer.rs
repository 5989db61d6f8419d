use async_trait::async_trait;

use crate::email::OutgoingEmail;

/// Sending failed.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// This message will never be accepted (rejected content, unverified sender, bad address).
    #[error("permanent send failure: {0}")]
    Permanent(String),
    /// Worth trying again later (timeouts, 5xx, network).
    #[error("transient send failure: {0}")]
    Transient(String),
    /// The account's sending rate is exceeded: nothing is wrong with this message; try again
    /// after a backoff, without spending an attempt (a backlog bigger than the rate allows
    /// would otherwise use up the attempts of jobs that never failed).
    #[error("sending rate exceeded: {0}")]
    Throttled(String),
    /// The whole account cannot send (sending paused, account suspended): nothing is wrong with
    /// this message; wait long, and alarm.
    #[error("account-level send failure: {0}")]
    AccountPaused(String),
    /// The account's sending quota (per day) is spent: nothing is wrong with this message; wait
    /// long, and alarm.
    #[error("sending quota exceeded: {0}")]
    QuotaExceeded(String),
}

/// Sends email (SES v2 in AWS, an outbox folder locally).
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends `email` as one message (subject, text and HTML parts as given, UTF-8) and returns
    /// the provider's message id, a new one for every send.
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError>;
}
