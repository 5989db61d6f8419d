//! The exam API (`/exams/*`, `/attempts/*`, `/me/*`). Until the exam issue lands, every route
//! answers a JSON 404, so the function, its wiring and its events already exist.

use std::time::Instant;

use lambda_http::{Body, Request, Response};
use oes_shared::http::{ApiError, log_request};

/// The Lambda entry point.
pub async fn handle(request: Request) -> Result<Response<Body>, lambda_http::Error> {
    let started = Instant::now();
    let response = ApiError::not_found().into_response();
    log_request(
        request.method(),
        request.uri().path(),
        response.status(),
        started,
    );
    Ok(response)
}
