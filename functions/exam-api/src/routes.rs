//! The router: `/admin/*` to [`crate::admin`]; everything else is not served yet (JSON 404).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_http::{Body, Request, Response};
use oes_shared::clock::SystemClock;
use oes_shared::http::{ApiError, finish};
use oes_shared::ports::QueueAdmin;
use oes_shared::security::JwtKeys;
use oes_shared::session::Sessions;
use oes_shared::wiring::ApiAdapters;

use crate::admin::{self, AdminService};

/// What exam-api needs, built once at init.
pub struct ExamApi {
    /// Who is calling.
    pub sessions: Sessions,
    /// Email pipeline operations.
    pub admin: AdminService,
}

impl ExamApi {
    /// exam-api over `adapters`, with `queues` for the admin API of the email pipeline.
    pub fn new(
        adapters: &ApiAdapters,
        jwt: JwtKeys,
        profile_ttl: Duration,
        queues: Arc<dyn QueueAdmin>,
    ) -> Self {
        Self {
            sessions: Sessions::new(
                jwt,
                adapters.users.clone(),
                adapters.cache.clone(),
                profile_ttl,
            ),
            admin: AdminService {
                queues,
                jobs: adapters.jobs.clone(),
                clock: Arc::new(SystemClock),
            },
        }
    }
}

/// The Lambda entry point: routes `request` and logs one line for it. Expected failures are
/// HTTP answers; this never returns `Err`.
pub async fn handle(api: &ExamApi, request: Request) -> Result<Response<Body>, lambda_http::Error> {
    let started = Instant::now();
    let path = request.uri().path().trim_end_matches('/').to_owned();
    let result = if path.starts_with("/admin/") {
        admin::route(api, &request, &path).await
    } else {
        Err(ApiError::not_found())
    };
    Ok(finish(&request, started, result))
}
