//! What can go wrong in the exam domain, and the one mapping to an HTTP answer.

use lambda_http::http::StatusCode;
use oes_domain::ports::{AttemptConflict, ExamConflict, StoreError, StoreUnavailable};
use oes_domain::producer::EnqueueError;
use oes_domain::user::InvalidInput;
use oes_runtime::http::{ApiError, log_error_chain};
use oes_runtime::session::SessionError;

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
    Store(#[source] StoreUnavailable),
}

impl ExamError {
    /// A 409 with this code and message.
    pub const fn conflict(code: &'static str, message: &'static str) -> Self {
        Self::Conflict { code, message }
    }
}

impl<C: Into<ExamError>> From<StoreError<C>> for ExamError {
    fn from(error: StoreError<C>) -> Self {
        match error {
            StoreError::Conflict(conflict) => conflict.into(),
            StoreError::NotFound => Self::NotFound,
            StoreError::Unavailable(unavailable) => Self::Store(unavailable),
        }
    }
}

impl From<StoreUnavailable> for ExamError {
    fn from(error: StoreUnavailable) -> Self {
        Self::Store(error)
    }
}

/// The message of a write that lost a race with another.
const CHANGED: &str = "the exam changed while this request was handled; read it again and retry";
/// The message of a new item whose id was taken (ids are random: a retry gets a new one).
const ID_TAKEN: &str = "an item with this id exists already; try again";

impl From<ExamConflict> for ExamError {
    fn from(conflict: ExamConflict) -> Self {
        match conflict {
            ExamConflict::StaleVersion | ExamConflict::ConcurrentUpdate => {
                Self::conflict("concurrent_update", CHANGED)
            }
            ExamConflict::Published => Self::conflict(
                "exam_published",
                "the exam is published: its questions stay, with the options, correct option and \
                 points its attempts are graded on; a question's text can still be corrected, \
                 and questions added",
            ),
            ExamConflict::TooManyQuestions => Self::conflict(
                "too_many_questions",
                "this exam has the maximum number of questions",
            ),
            ExamConflict::ExamExists | ExamConflict::QuestionExists => {
                Self::conflict("already_exists", ID_TAKEN)
            }
        }
    }
}

impl From<AttemptConflict> for ExamError {
    fn from(conflict: AttemptConflict) -> Self {
        match conflict {
            AttemptConflict::AttemptClosed | AttemptConflict::AlreadySubmitted => Self::conflict(
                "attempt_closed",
                "this attempt is submitted or past its deadline",
            ),
            AttemptConflict::NotSubmitted => {
                Self::conflict("not_submitted", "this attempt has not been submitted yet")
            }
            AttemptConflict::ConcurrentUpdate
            | AttemptConflict::AnswersChanged
            | AttemptConflict::ExamChanged => Self::conflict(
                "concurrent_update",
                "the attempt changed while this request was handled; read it again and retry",
            ),
            AttemptConflict::AttemptExists => Self::conflict("already_exists", ID_TAKEN),
            AttemptConflict::AttemptInProgress => Self::conflict(
                "attempt_in_progress",
                "you already have an open attempt at this exam (see GET /me/attempts)",
            ),
            AttemptConflict::AttemptsExhausted => Self::conflict(
                "attempts_exhausted",
                "you have started as many attempts at this exam as it allows",
            ),
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
            ExamError::Queue(EnqueueError::Duplicate) => ApiError::new(
                StatusCode::CONFLICT,
                "email_already_queued",
                "this email was queued already",
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status(error: ExamError) -> StatusCode {
        ApiError::from(error).status
    }

    /// The answers to every conflict of one port: each a 409 with a code.
    fn answers<C: Copy + std::fmt::Display>(all: &[C]) -> Vec<ApiError>
    where
        ExamError: From<StoreError<C>>,
    {
        all.iter()
            .map(|&conflict| {
                let answer = ApiError::from(ExamError::from(StoreError::Conflict(conflict)));
                assert_eq!(
                    answer.status,
                    StatusCode::CONFLICT,
                    "{conflict}: {answer:?}"
                );
                answer
            })
            .collect()
    }

    #[test]
    fn no_store_conflict_and_no_absent_item_becomes_a_5xx() {
        let exams = answers(ExamConflict::ALL);
        let attempts = answers(AttemptConflict::ALL);
        assert!(exams.iter().chain(&attempts).all(|a| !a.code.is_empty()));
        assert_eq!(
            status(StoreError::<ExamConflict>::NotFound.into()),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(StoreError::<AttemptConflict>::NotFound.into()),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn invalid_input_and_a_duplicate_email_job_are_4xx_and_only_unavailability_is_a_503() {
        assert_eq!(
            status(InvalidInput::new("title", "is blank").into()),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(ExamError::Queue(EnqueueError::Duplicate)),
            StatusCode::CONFLICT
        );
        let unavailable = StoreUnavailable::new("reading an exam", "timed out");
        assert_eq!(
            status(StoreError::<ExamConflict>::from(unavailable).into()),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
