//! The router: `/admin/*` to [`crate::admin`]; everything else is not served yet (JSON 404).

use std::time::Instant;

use lambda_http::{Body, Request, Response};
use oes_shared::http::{ApiError, log_request};
use oes_shared::session::Sessions;

use crate::admin::{self, AdminService};

/// What exam-api needs, built once at init.
pub struct ExamApi {
    /// Who is calling.
    pub sessions: Sessions,
    /// Email pipeline operations.
    pub admin: AdminService,
}

/// The Lambda entry point: routes `request` and logs one line for it. Expected failures are
/// HTTP answers; this never returns `Err`.
pub async fn handle(api: &ExamApi, request: Request) -> Result<Response<Body>, lambda_http::Error> {
    let started = Instant::now();
    let path = request.uri().path().trim_end_matches('/').to_owned();
    let response = if path.starts_with("/admin/") {
        admin::route(api, &request, &path).await
    } else {
        Err(ApiError::not_found())
    }
    .unwrap_or_else(ApiError::into_response);
    log_request(
        request.method(),
        request.uri().path(),
        response.status(),
        started,
    );
    Ok(response)
}
