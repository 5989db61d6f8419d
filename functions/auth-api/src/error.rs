//! What can go wrong in the auth domain, and the one mapping to an HTTP answer.

use lambda_http::http::StatusCode;
use oes_shared::email::EnqueueError;
use oes_shared::http::{ApiError, log_error_chain};
use oes_shared::ports::{BoxError, StoreError};
use oes_shared::security::{JwtError, PasswordError};
use oes_shared::session::SessionError;
use oes_shared::user::InvalidInput;

/// An auth operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A field failed validation.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The email address belongs to another account.
    #[error("this email address is already registered")]
    EmailTaken,
    /// The one-time token is unknown, used, expired or for something else.
    #[error("the token is invalid or has expired")]
    InvalidToken,
    /// Wrong email or password (deliberately not saying which).
    #[error("the email or password is incorrect")]
    InvalidCredentials,
    /// The password is right but the address is not verified yet.
    #[error("verify your email address before signing in")]
    EmailNotVerified,
    /// Too many attempts: try again after this long.
    #[error("too many requests")]
    RateLimited(std::time::Duration),
    /// No valid access token.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The email job could not be queued.
    #[error("email could not be queued")]
    Queue(#[from] EnqueueError),
    /// The store could not be reached.
    #[error("the data store is unavailable")]
    Store(#[source] StoreError),
    /// A bug or an impossible state.
    #[error("unexpected error")]
    Unexpected(#[source] BoxError),
}

impl From<StoreError> for AuthError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable { .. } => Self::Store(error),
            StoreError::Conflict("email_taken") => Self::EmailTaken,
            other => Self::Unexpected(other.into()),
        }
    }
}

impl From<SessionError> for AuthError {
    fn from(error: SessionError) -> Self {
        match error {
            SessionError::Unauthenticated(reason) => Self::Unauthenticated(reason),
            SessionError::Store(store) => store.into(),
        }
    }
}

impl From<PasswordError> for AuthError {
    fn from(error: PasswordError) -> Self {
        Self::Unexpected(error.into())
    }
}

impl From<JwtError> for AuthError {
    fn from(error: JwtError) -> Self {
        match error {
            JwtError::Invalid(_) => Self::Unauthenticated("the access token is invalid or expired"),
            JwtError::Signing(_) => Self::Unexpected(error.into()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        let message = error.to_string();
        match error {
            AuthError::Invalid(invalid) => invalid.into(),
            AuthError::EmailTaken => ApiError::new(StatusCode::CONFLICT, "email_taken", message),
            AuthError::InvalidToken => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_token", message)
            }
            AuthError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", message)
            }
            AuthError::EmailNotVerified => {
                ApiError::new(StatusCode::FORBIDDEN, "email_not_verified", message)
            }
            AuthError::Unauthenticated(_) => ApiError::unauthorized(message),
            AuthError::RateLimited(retry_after) => ApiError::rate_limited(retry_after),
            AuthError::Queue(ref source) => {
                log_error_chain(source);
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "email_queue_unavailable",
                    "the email could not be queued; please try again shortly",
                )
            }
            AuthError::Store(ref source) => {
                log_error_chain(source);
                ApiError::unavailable(
                    "the service is temporarily unavailable; please try again shortly",
                )
            }
            AuthError::Unexpected(ref source) => {
                log_error_chain(source.as_ref());
                ApiError::internal()
            }
        }
    }
}
