//! The admin API's routes: the admin check, then each route's handler; the console's files
//! first, which need no token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use oes_domain::cache::CacheAside;
use oes_domain::clock::Clock;
use oes_domain::email::{JobDecodeError, is_job_id};
use oes_domain::pipeline::{QueueAdmin, Step, purge, redrive};
use oes_domain::ports::{BoxError, JobIndex, JobLedger, LaneSwitch};
use oes_domain::security::JwtKeys;
use oes_domain::user::Role;
use oes_runtime::http::paging::Cursors;
use oes_runtime::http::{
    ApiError, bearer_token, finish, json, parse_json, request_span, route_path, within_deadline,
};
use oes_runtime::session::{SessionError, Sessions};
use oes_runtime::wiring::ApiAdapters;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing::Instrument;

use crate::{console, jobs, lanes};

/// Every admin route, as `(method, path template)`.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/admin/queues"),
    ("GET", "/admin/email-jobs"),
    ("GET", "/admin/email-jobs/counts"),
    ("GET", "/admin/email-jobs/{job_id}"),
    ("GET", "/admin/dlq"),
    ("POST", "/admin/dlq/redrive"),
    ("POST", "/admin/dlq/purge"),
    ("POST", "/admin/lanes/{lane}/pause"),
    ("POST", "/admin/lanes/{lane}/resume"),
    ("POST", "/admin/cache/clear"),
];

/// The most letters one `{"all": true}` redrive moves or drops: one step, in one request. Each
/// letter costs about four SQS and DynamoDB calls (reset the record, send to the lane, delete
/// the letter, plus its share of the receives and releases), tens of milliseconds each, so a
/// step takes a second or two: well inside the function's 10 s timeout, however many letters
/// wait. The next request resumes where it stopped (handled letters are gone). Letters a redrive
/// leaves (undecodable ones) do not count towards the step, but each costs only its share of a
/// receive and one release.
pub const REDRIVE_STEP: usize = 25;

/// The most letters one purge request deletes: each costs a record update and a delete (plus
/// its share of the receives), so a step takes about a second.
pub const PURGE_STEP: usize = 50;

/// How long a redrive or purge step takes letters, whatever their number: a slow store (each
/// DynamoDB call may take up to 5 s before it times out) or a queue of letters the step leaves
/// (undecodable ones, or ones a worker holds) cannot hold a request past the function's 10 s
/// timeout. The step then answers `done: false`, and the next goes on. A listing of the
/// dead-letter queue receives for no longer either, and shows the letters it has by then.
pub const STEP_TIME: Duration = Duration::from_secs(4);

/// The most dead letters `GET /admin/dlq?max=` lists (its default: 50).
pub const MAX_LETTERS_LISTED: usize = 500;

/// What a step of a redrive or a purge answers: its report, and what to do next while it is not
/// done.
#[derive(Serialize)]
struct StepAnswer<R> {
    #[serde(flatten)]
    report: R,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<&'static str>,
}

/// 200 once the dead-letter queue has been walked (`done`); 202 and `next` while steps remain.
fn step_answer<R: Serialize>(done: bool, report: R, next: &'static str) -> Response<Body> {
    if done {
        json(StatusCode::OK, &StepAnswer { report, next: None })
    } else {
        let next = Some(next);
        json(StatusCode::ACCEPTED, &StepAnswer { report, next })
    }
}

/// What admin-api needs, built once at init.
pub struct AdminApi {
    /// Who is calling.
    pub sessions: Sessions,
    /// The email pipeline's operations and the cache.
    pub admin: AdminService,
}

impl AdminApi {
    /// admin-api over `adapters`, pausing and resuming the lanes with `lanes`.
    pub fn new(
        adapters: &ApiAdapters,
        lanes: Arc<dyn LaneSwitch>,
        jwt: JwtKeys,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            admin: AdminService {
                queues: QueueAdmin::new(adapters.queues.clone()),
                jobs: adapters.jobs.clone(),
                index: adapters.job_index.clone(),
                lanes,
                cursors: Cursors::new(jwt.cursors().clone()),
                cache: adapters.cache.clone(),
                clock,
            },
            sessions: Sessions::new(jwt, adapters.users.clone(), adapters.cache.clone()),
        }
    }
}

/// Whether `path` is admin-api's: `/admin` (the console) and everything under `/admin/`, as the
/// template routes them; every other path is auth-api's or exam-api's.
pub fn serves(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

/// The Lambda entry point: the console's files, or an admin route after the admin check; one
/// log line per request. Expected failures are HTTP answers; this never returns `Err`.
pub async fn handle(
    api: &AdminApi,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    let started = Instant::now();
    let path = route_path(&request);
    let span = request_span(&request);
    let result = match console::route(&request, path) {
        Some(page) => page,
        None => {
            within_deadline(&request, route(&api.sessions, &api.admin, &request, path))
                .instrument(span.clone())
                .await
        }
    };
    Ok(span.in_scope(|| finish(&request, started, result)))
}

/// The email pipeline's operations.
pub struct AdminService {
    /// Queue counts and dead letters; the queues to redrive and purge.
    pub queues: QueueAdmin,
    /// Job records.
    pub jobs: Arc<dyn JobLedger>,
    /// Job records by state.
    pub index: Arc<dyn JobIndex>,
    /// Pauses and resumes the lanes.
    pub lanes: Arc<dyn LaneSwitch>,
    /// The cursors of the job listings.
    pub cursors: Cursors,
    /// The cache, to clear.
    pub cache: CacheAside,
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

pub(crate) fn unavailable(error: BoxError) -> ApiError {
    tracing::error!(error = %error, "admin operation failed");
    ApiError::unavailable("the queue or store is temporarily unavailable; please try again")
}

/// Routes an `/admin/*` request after checking that the caller is an admin.
async fn route(
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
        (&Method::GET, ["admin", "queues"]) => lanes::queues(admin).await,
        (&Method::POST, ["admin", "lanes", lane, "pause"]) => {
            lanes::switch(admin, lane, true, &caller.id).await
        }
        (&Method::POST, ["admin", "lanes", lane, "resume"]) => {
            lanes::switch(admin, lane, false, &caller.id).await
        }
        (&Method::POST, ["admin", "dlq", "purge"]) => {
            let report = purge(
                admin.queues.queues(),
                admin.jobs.as_ref(),
                admin.clock.as_ref(),
                Step {
                    letters: Some(PURGE_STEP),
                    time: Some(STEP_TIME),
                },
                |_| {},
            )
            .await
            .map_err(|e| unavailable(e.into()))?;
            tracing::warn!(admin = %caller.id, purged = report.purged, "an admin purged dead letters");
            Ok(step_answer(report.done, report, "POST again to continue"))
        }
        (&Method::GET, ["admin", "email-jobs"]) => jobs::list(admin, request).await,
        (&Method::GET, ["admin", "email-jobs", "counts"]) => jobs::counts(admin, request).await,
        (&Method::GET, ["admin", "email-jobs", job_id]) if !job_id.is_empty() => {
            jobs::show(admin, job_id).await
        }
        (&Method::POST, ["admin", "cache", "clear"]) => {
            if !admin.cache.clear_all().await {
                return Err(ApiError::unavailable(
                    "the cache could not be cleared just now; please try again",
                ));
            }
            Ok(json(StatusCode::OK, &json!({ "cleared": true })))
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
                    .filter(|n| (1..=MAX_LETTERS_LISTED).contains(n))
                    .ok_or_else(|| {
                        ApiError::validation(format!(
                            "max: must be a number from 1 to {MAX_LETTERS_LISTED}"
                        ))
                    })?,
            };
            let messages = admin
                .queues
                .dead_letters_within(max, Some(STEP_TIME))
                .await
                .map_err(|e| unavailable(e.into()))?;
            Ok(json(StatusCode::OK, &json!({ "messages": messages })))
        }
        (&Method::POST, ["admin", "dlq", "redrive"]) => {
            let body: RedriveBody = parse_json(request)?;
            // One job runs to the end; everything runs one step per request.
            let (only, limit) = match (body.job_id.as_deref(), body.all) {
                (Some(id), false) if is_job_id(id) => (Some(id), None),
                (Some(id), false) if !id.is_empty() => {
                    // No job has it, so no walk over the queue would find one.
                    return Err(ApiError::validation(format!(
                        "job_id: {}",
                        JobDecodeError::InvalidJobId
                    )));
                }
                (None, true) => (None, Some(REDRIVE_STEP)),
                _ => {
                    return Err(ApiError::validation(
                        "give either job_id (one job) or \"all\": true (every message)",
                    ));
                }
            };
            let step = Step {
                letters: limit,
                time: Some(STEP_TIME),
            };
            let report = redrive(
                admin.queues.queues(),
                admin.jobs.as_ref(),
                admin.clock.as_ref(),
                only,
                step,
                |_| {},
            )
            .await
            .map_err(|e| unavailable(e.into()))?;
            Ok(step_answer(
                report.done,
                report,
                "POST the same body again to continue",
            ))
        }
        (
            _,
            ["admin", "queues" | "dlq" | "email-jobs"]
            | ["admin", "email-jobs", _]
            | ["admin", "dlq", "redrive" | "purge"]
            | ["admin", "lanes", _, "pause" | "resume"]
            | ["admin", "cache", "clear"],
        ) => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::not_found()),
    }
}
