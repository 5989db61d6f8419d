//! The admin API of the email pipeline (admins only):
//!
//! | route | answer |
//! |---|---|
//! | `GET /admin/queues` | visible / in flight / delayed for each lane and the DLQ |
//! | `GET /admin/email-jobs/{job_id}` | the job's status record |
//! | `GET /admin/dlq?max=50` | messages on the dead-letter queue, with their reason |
//! | `POST /admin/dlq/redrive` `{"job_id": "…"}` | moves that job back to its lane (200) |
//! | `POST /admin/dlq/redrive` `{"all": true}` | one step of at most [`REDRIVE_STEP`] letters: 202 and `done: false` (call again to go on), or 200 and `done: true` once the queue has been walked |
//!
//! A redrive drops the letters of jobs that were sent already, without sending them
//! (`already_sent`).

use std::sync::Arc;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use oes_domain::clock::Clock;
use oes_domain::pipeline::{QueueAdmin, RedriveReport, redrive};
use oes_domain::ports::{BoxError, JobLedger, StoreUnavailable};
use oes_domain::user::Role;
use oes_runtime::http::{ApiError, bearer_token, json, parse_json};
use oes_runtime::session::{SessionError, Sessions};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Every admin route, as `(method, path template)`.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/admin/queues"),
    ("GET", "/admin/email-jobs/{job_id}"),
    ("GET", "/admin/dlq"),
    ("POST", "/admin/dlq/redrive"),
];

/// The most letters one `{"all": true}` redrive moves or drops: one step, in one request. Each
/// letter costs about four SQS and DynamoDB calls (reset the record, send to the lane, delete
/// the letter, plus its share of the receives and releases), tens of milliseconds each, so a
/// step takes a second or two: well inside the function's 10 s timeout, however many letters
/// wait. The next request resumes where it stopped (handled letters are gone). Letters a redrive
/// leaves (undecodable ones) do not count towards the step, but each costs only its share of a
/// receive and one release.
pub const REDRIVE_STEP: usize = 25;

/// What a redrive answers: its report, and what to do next while it is not done.
#[derive(Serialize)]
struct RedriveAnswer {
    #[serde(flatten)]
    report: RedriveReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<&'static str>,
}

impl RedriveAnswer {
    /// 200 once the dead-letter queue has been walked; 202 while steps remain.
    fn respond(report: RedriveReport) -> Response<Body> {
        if report.done {
            json(StatusCode::OK, &Self { report, next: None })
        } else {
            let next = Some("POST the same body again to continue");
            json(StatusCode::ACCEPTED, &Self { report, next })
        }
    }
}

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
            // One job runs to the end; everything runs one step per request.
            let (only, limit) = match (body.job_id.as_deref(), body.all) {
                (Some(id), false) if !id.is_empty() => (Some(id), None),
                (None, true) => (None, Some(REDRIVE_STEP)),
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
                limit,
                |_| {},
            )
            .await
            .map_err(|e| unavailable(e.into()))?;
            Ok(RedriveAnswer::respond(report))
        }
        (
            _,
            ["admin", "queues" | "dlq"] | ["admin", "email-jobs", _] | ["admin", "dlq", "redrive"],
        ) => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::not_found()),
    }
}
