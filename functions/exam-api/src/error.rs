//! What can go wrong in the exam domain, and the one mapping to an HTTP answer.

use lambda_http::http::StatusCode;
use oes_shared::email::EnqueueError;
use oes_shared::http::{ApiError, log_error_chain};
use oes_shared::ports::StoreError;
use oes_shared::session::SessionError;
use oes_shared::user::InvalidInput;

/// An exam operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ExamError {
    /// A field failed validation.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// No valid access token.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The caller's role may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// Absent, or not the caller's to see (the two are not told apart).
    #[error("no such resource")]
    NotFound,
    /// The resource is not in a state that allows this.
    #[error("{message}")]
    Conflict {
        /// Stable code, e.g. `attempt_closed`.
        code: &'static str,
        /// For people.
        message: &'static str,
    },
    /// The result was stored but its email could not be queued.
    #[error("result email could not be queued")]
    Queue(#[source] EnqueueError),
    /// The store could not be reached.
    #[error("the data store is unavailable")]
    Store(#[source] StoreError),
}

impl ExamError {
    /// A 409 with this code and message.
    pub const fn conflict(code: &'static str, message: &'static str) -> Self {
        Self::Conflict { code, message }
    }
}

impl From<StoreError> for ExamError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict("version" | "concurrent_update") => Self::conflict(
                "concurrent_update",
                "the exam changed while this request was handled; read it again and retry",
            ),
            StoreError::Conflict("last_question") => Self::conflict(
                "last_question",
                "a published exam keeps at least one question",
            ),
            StoreError::Conflict("too_many_questions") => Self::conflict(
                "too_many_questions",
                "this exam has the maximum number of questions",
            ),
            StoreError::Conflict("attempt_closed") => Self::conflict(
                "attempt_closed",
                "this attempt is submitted or past its deadline",
            ),
            other => Self::Store(other),
        }
    }
}

impl From<SessionError> for ExamError {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::Unauthenticated(reason) => Self::Unauthenticated(reason),
            SessionError::Store(store) => Self::Store(store),
        }
    }
}

impl From<ExamError> for ApiError {
    fn from(error: ExamError) -> Self {
        let message = error.to_string();
        match error {
            ExamError::Invalid(invalid) => invalid.into(),
            ExamError::Unauthenticated(_) => ApiError::unauthorized(message),
            ExamError::Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", message),
            ExamError::NotFound => ApiError::not_found(),
            ExamError::Conflict { code, .. } => ApiError::new(StatusCode::CONFLICT, code, message),
            ExamError::Queue(ref source) => {
                log_error_chain(source);
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "email_queue_unavailable",
                    "your answers are submitted and graded, but the result email could not be \
                     queued; submit again shortly to queue it",
                )
            }
            ExamError::Store(ref source) => {
                log_error_chain(source);
                ApiError::unavailable(
                    "the service is temporarily unavailable; please try again shortly",
                )
            }
        }
    }
}
