//! The admin API of the email pipeline (admins only):
//!
//! | route | answer |
//! |---|---|
//! | `GET /admin/queues` | visible / in flight / delayed for each lane and the DLQ |
//! | `GET /admin/email-jobs/{job_id}` | the job's status record |
//! | `GET /admin/dlq?max=50` | messages on the dead-letter queue, with their reason |
//! | `POST /admin/dlq/redrive` `{"job_id": "…"}` or `{"all": true}` | moves them back to their lane |

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use oes_domain::clock::Clock;
use oes_domain::pipeline::{QueueAdmin, redrive};
use oes_domain::ports::{BoxError, JobLedger, StoreUnavailable};
use oes_domain::user::Role;
use oes_runtime::http::{ApiError, bearer_token, json, parse_json};
use oes_runtime::session::{SessionError, Sessions};
use serde::Deserialize;
use serde_json::json;

/// Every admin route, as `(method, path template)`.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/admin/queues"),
    ("GET", "/admin/email-jobs/{job_id}"),
    ("GET", "/admin/dlq"),
    ("POST", "/admin/dlq/redrive"),
];

/// The email pipeline's operations.
pub struct AdminService {
    /// Queue counts, dead letters, purge; the queues to redrive.
    pub queues: QueueAdmin,
    /// Job records.
    pub jobs: Arc<dyn JobLedger>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedriveBody {
    #[serde(default)]
    job_id: Option<String>,
    #[serde(default)]
    all: bool,
}

fn session_error(error: SessionError) -> ApiError {
    match error {
        SessionError::Unauthenticated(reason) => ApiError::unauthorized(reason),
        SessionError::Store(store) => unavailable(store.into()),
    }
}

fn unavailable(error: BoxError) -> ApiError {
    tracing::error!(error = %error, "admin operation failed");
    ApiError::unavailable("the queue or store is temporarily unavailable; please try again")
}

/// Routes an `/admin/*` request after checking that the caller is an admin.
pub async fn route(
    sessions: &Sessions,
    admin: &AdminService,
    request: &Request,
    path: &str,
) -> Result<Response<Body>, ApiError> {
    let (caller, _) = sessions
        .authenticate(bearer_token(request)?)
        .await
        .map_err(session_error)?;
    if caller.role != Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this needs the admin role",
        ));
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (request.method(), segments.as_slice()) {
        (&Method::GET, ["admin", "queues"]) => {
            let counts = admin
                .queues
                .counts()
                .await
                .map_err(|e| unavailable(e.into()))?;
            Ok(json(StatusCode::OK, &json!({ "queues": counts })))
        }
        (&Method::GET, ["admin", "email-jobs", job_id]) if !job_id.is_empty() => {
            let record = admin
                .jobs
                .get(job_id)
                .await
                .map_err(|e: StoreUnavailable| unavailable(e.into()))?
                .ok_or_else(ApiError::not_found)?;
            Ok(json(StatusCode::OK, &record))
        }
        (&Method::GET, ["admin", "dlq"]) => {
            let max = match request
                .query_string_parameters_ref()
                .and_then(|q| q.first("max"))
            {
                None => 50,
                Some(raw) => raw
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=500).contains(n))
                    .ok_or_else(|| ApiError::validation("max: must be a number from 1 to 500"))?,
            };
            let messages = admin
                .queues
                .dead_letters(max)
                .await
                .map_err(|e| unavailable(e.into()))?;
            Ok(json(StatusCode::OK, &json!({ "messages": messages })))
        }
        (&Method::POST, ["admin", "dlq", "redrive"]) => {
            let body: RedriveBody = parse_json(request)?;
            let only = match (body.job_id.as_deref(), body.all) {
                (Some(id), false) if !id.is_empty() => Some(id),
                (None, true) => None,
                _ => {
                    return Err(ApiError::validation(
                        "give either job_id (one job) or \"all\": true (every message)",
                    ));
                }
            };
            let report = redrive(
                admin.queues.queues(),
                admin.jobs.as_ref(),
                admin.clock.as_ref(),
                only,
                |_| {},
            )
            .await
            .map_err(|e| unavailable(e.into()))?;
            Ok(json(StatusCode::OK, &report))
        }
        (
            _,
            ["admin", "queues" | "dlq"] | ["admin", "email-jobs", _] | ["admin", "dlq", "redrive"],
        ) => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::not_found()),
    }
}
