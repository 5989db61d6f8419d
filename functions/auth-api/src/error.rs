//! What can go wrong in the auth domain, and the one mapping to an HTTP answer.

use lambda_http::http::StatusCode;
use oes_domain::ports::{BoxError, StoreError, StoreUnavailable, UserConflict};
use oes_domain::producer::EnqueueError;
use oes_domain::security::{JwtError, PasswordError};
use oes_domain::user::InvalidInput;
use oes_runtime::http::{ApiError, log_error_chain};
use oes_runtime::session::SessionError;

use crate::hashing::{Busy, PoolError};

/// An auth operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A field failed validation.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The new address of an email change became another account's after its link was sent.
    /// Only the holder of that link, who reads that address's mail, is told; a sign-up never
    /// says an address is taken.
    #[error("this email address is already registered")]
    EmailTaken,
    /// Another request changed the account meanwhile.
    #[error("the account changed while this request was handled; please try again")]
    ConcurrentUpdate,
    /// The one-time token is unknown, used, expired or for something else.
    #[error("the token is invalid or has expired")]
    InvalidToken,
    /// Wrong email or password, or an address not verified yet (deliberately not saying which).
    #[error(
        "the email or password is incorrect, or the address is not verified yet (follow the link in the verification email)"
    )]
    InvalidCredentials,
    /// Too many attempts: try again after this long.
    #[error("too many requests")]
    RateLimited(std::time::Duration),
    /// Too many password checks at once on this instance: try again in a second.
    #[error("the service is busy; please try again in a second")]
    Busy,
    /// No valid access token.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The email job could not be queued.
    #[error("email could not be queued")]
    Queue(#[from] EnqueueError),
    /// The store could not be reached.
    #[error("the data store is unavailable")]
    Store(#[source] StoreUnavailable),
    /// A bug or an impossible state.
    #[error("unexpected error")]
    Unexpected(#[source] BoxError),
}

impl From<StoreError<UserConflict>> for AuthError {
    fn from(error: StoreError<UserConflict>) -> Self {
        match error {
            StoreError::Conflict(UserConflict::EmailTaken) => Self::EmailTaken,
            StoreError::Conflict(UserConflict::ConcurrentUpdate) => Self::ConcurrentUpdate,
            // Only a write on a one-time link's behalf is conditioned on the account's state.
            StoreError::Conflict(UserConflict::LinkVoid) => Self::InvalidToken,
            // The account was deleted while the request was handled.
            StoreError::NotFound => Self::Unauthenticated("the account no longer exists"),
            StoreError::Unavailable(unavailable) => Self::Store(unavailable),
        }
    }
}

impl From<StoreUnavailable> for AuthError {
    fn from(error: StoreUnavailable) -> Self {
        Self::Store(error)
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

impl AuthError {
    /// A failure of ours that a retry of the same request may get past (a 503, or a race with
    /// another request): nothing the request carried is at fault.
    pub fn asks_to_retry(&self) -> bool {
        matches!(self, Self::Store(_) | Self::Busy | Self::ConcurrentUpdate)
    }
}

impl From<Busy> for AuthError {
    fn from(_: Busy) -> Self {
        Self::Busy
    }
}

impl From<PoolError> for AuthError {
    fn from(error: PoolError) -> Self {
        match error {
            PoolError::Busy(_) => Self::Busy,
            PoolError::Failed(_) => Self::Unexpected(error.into()),
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
            AuthError::ConcurrentUpdate => {
                ApiError::new(StatusCode::CONFLICT, "concurrent_update", message)
            }
            AuthError::InvalidToken => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_token", message)
            }
            AuthError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", message)
            }
            AuthError::Unauthenticated(_) => ApiError::unauthorized(message),
            AuthError::RateLimited(retry_after) => ApiError::rate_limited(retry_after),
            AuthError::Busy => ApiError {
                retry_after: Some(1),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message)
            },
            AuthError::Queue(EnqueueError::Duplicate) => ApiError::new(
                StatusCode::CONFLICT,
                "email_already_queued",
                "this email was queued already",
            ),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn status(error: AuthError) -> StatusCode {
        ApiError::from(error).status
    }

    #[test]
    fn no_account_conflict_and_no_absent_account_becomes_a_5xx() {
        for &conflict in UserConflict::ALL {
            let answer = ApiError::from(AuthError::from(StoreError::Conflict(conflict)));
            let expected = match conflict {
                UserConflict::EmailTaken | UserConflict::ConcurrentUpdate => StatusCode::CONFLICT,
                // The one-time link the write was made for is void: `invalid_token`.
                UserConflict::LinkVoid => StatusCode::BAD_REQUEST,
            };
            assert_eq!(answer.status, expected, "{conflict}: {answer:?}");
        }
        assert_eq!(
            status(StoreError::<UserConflict>::NotFound.into()),
            StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn invalid_input_and_a_duplicate_email_job_are_4xx_and_only_unavailability_is_a_503() {
        assert_eq!(
            status(InvalidInput::new("email", "is not valid").into()),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            status(AuthError::Queue(EnqueueError::Duplicate)),
            StatusCode::CONFLICT
        );
        let unavailable = StoreUnavailable::new("reading a user", "timed out");
        assert_eq!(
            status(StoreError::<UserConflict>::from(unavailable).into()),
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
