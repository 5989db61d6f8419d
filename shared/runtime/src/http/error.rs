//! The error shape every API answers with: `{"error": {"code": "...", "message": "..."}}`.

use http::StatusCode;
use lambda_http::{Body, Response};
use oes_domain::user::InvalidInput;

use super::openapi::{ErrorBody, ErrorDetail};

/// An error answer. `code` is stable and machine-readable; `message` is for people and never
/// contains internal details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable error code, e.g. `invalid_credentials`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// Seconds to wait before trying again (the `Retry-After` header), for 429 and 503.
    pub retry_after: Option<u64>,
}

/// The `Retry-After` of a 503 that does not say otherwise: a store, queue or cache that cannot
/// be reached just now, or a request past its deadline. Long enough that a client that waits
/// it does not add to a throttled store's load at once; short enough for a student mid-exam.
pub const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 2;

impl ApiError {
    /// An error with this status, code and message; a 503 says to try again after
    /// [`UNAVAILABLE_RETRY_AFTER_SECONDS`].
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: (status == StatusCode::SERVICE_UNAVAILABLE)
                .then_some(UNAVAILABLE_RETRY_AFTER_SECONDS),
        }
    }

    /// 429 `rate_limited`, with `Retry-After` (whole seconds, at least 1).
    pub fn rate_limited(retry_after: std::time::Duration) -> Self {
        let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        Self {
            retry_after: Some(seconds.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests; try again in {} seconds", seconds.max(1)),
            )
        }
    }

    /// 400 `validation_error`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "validation_error", message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404 `not_found`.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this method is not allowed on this resource",
        )
    }

    /// 500 `internal_error`. The cause is logged by the caller, never sent.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "something went wrong on our side",
        )
    }

    /// 503 `service_unavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            message,
        )
    }

    /// The JSON response.
    pub fn into_response(self) -> Response<Body> {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        let mut response = super::json(self.status, &body);
        // RFC 9110: a 401 names the scheme that authenticates (a bearer token, RFC 6750).
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(seconds));
        }
        response
    }
}

impl From<InvalidInput> for ApiError {
    fn from(error: InvalidInput) -> Self {
        Self::validation(error.to_string())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

/// Logs the full cause chain of an error, once, at the boundary (never sent to the client).
pub fn log_error_chain(error: &(dyn std::error::Error + 'static)) {
    tracing::error!(error = %error_chain(error), "request failed");
}

/// `error` and its causes, on one line (`outer: cause: root cause`).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9110: every 401 says how to authenticate — for a missing or bad token and a failed
    /// sign-in alike.
    #[test]
    fn every_401_names_the_bearer_scheme() {
        for error in [
            ApiError::unauthorized("no token"),
            ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "wrong"),
        ] {
            let response = error.into_response();
            let scheme = response.headers().get(http::header::WWW_AUTHENTICATE);
            assert_eq!(scheme.and_then(|v| v.to_str().ok()), Some("Bearer"));
        }
        let not_found = ApiError::not_found().into_response();
        assert!(
            !not_found
                .headers()
                .contains_key(http::header::WWW_AUTHENTICATE)
        );
    }

    fn retry_after(error: ApiError) -> Option<String> {
        let response = error.into_response();
        let value = response.headers().get(http::header::RETRY_AFTER)?;
        value.to_str().ok().map(str::to_owned)
    }

    #[test]
    fn every_503_says_when_to_try_again_and_other_errors_do_not() {
        let store = ApiError::unavailable("the store is temporarily unavailable");
        let queue = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "email_queue_unavailable",
            "try again",
        );
        for error in [store, queue] {
            assert_eq!(retry_after(error), Some("2".to_owned()));
        }
        let busy = ApiError {
            retry_after: Some(1),
            ..ApiError::unavailable("busy")
        };
        assert_eq!(retry_after(busy), Some("1".to_owned()));
        assert_eq!(retry_after(ApiError::validation("bad")), None);
        assert_eq!(retry_after(ApiError::internal()), None);
    }
}
