//! The email job routes of the admin API: listings by state and kind, counts, one job with its
//! history. Each job shows `stalled` (sending, its lease run out: a crashed send).

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use oes_domain::email::is_job_id;
use oes_domain::ports::{JobPosition, JobQuery, JobRecord, JobState};
use oes_runtime::http::{ApiError, json};
use serde::Serialize;
use serde_json::json;

use crate::routes::{AdminService, unavailable};

/// The most records of one status a count reads: exact below it, a lower bound beyond (see the
/// README for what a count costs).
pub const COUNT_BUDGET: usize = 10_000;

/// The longest kind a query may name.
const MAX_KIND_CHARS: usize = 40;

/// A job as the admin API shows it: its record, and whether it is stalled now.
#[derive(Serialize)]
struct JobView<'a> {
    #[serde(flatten)]
    record: &'a JobRecord,
    stalled: bool,
}

impl AdminService {
    fn view<'a>(&self, record: &'a JobRecord) -> JobView<'a> {
        JobView {
            stalled: record.is_stalled(self.clock.now()),
            record,
        }
    }
}

/// `?name=` of `request`, if given.
fn query<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request
        .query_string_parameters_ref()
        .and_then(|q| q.first(name))
}

/// `?kind=`: a kind's name (`verification`, `exam_result`, …); one no job has lists nothing.
fn kind(request: &Request) -> Result<Option<&str>, ApiError> {
    query(request, "kind")
        .map(|kind| {
            let valid = !kind.is_empty()
                && kind.len() <= MAX_KIND_CHARS
                && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            valid.then_some(kind).ok_or_else(|| {
                ApiError::validation("kind: must be a job kind, such as verification or generic")
            })
        })
        .transpose()
}

/// `GET /admin/email-jobs?status=&kind=&limit=&cursor=`.
pub(crate) async fn list(
    admin: &AdminService,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let names = JobState::ALL.map(JobState::as_str).join(", ");
    let state = query(request, "status")
        .and_then(JobState::parse)
        .ok_or_else(|| ApiError::validation(format!("status: must be one of {names}")))?;
    let kind = kind(request)?;
    // The list's scope: a cursor of one state and kind is refused by every other listing.
    let scope = format!("email-jobs:{}:{}", state.as_str(), kind.unwrap_or("*"));
    let (limit, after) = admin.cursors.query::<JobPosition>(request, &scope)?;
    let query = JobQuery {
        state,
        kind: kind.map(str::to_owned),
        limit,
        after,
    };
    let page = admin
        .index
        .list(&query, admin.clock.now())
        .await
        .map_err(|e| unavailable(e.into()))?;
    let jobs: Vec<JobView<'_>> = page.jobs.iter().map(|job| admin.view(job)).collect();
    let next = page.next.map(|next| admin.cursors.sign(&scope, &next));
    Ok(json(
        StatusCode::OK,
        &json!({ "jobs": jobs, "next_cursor": next }),
    ))
}

/// `GET /admin/email-jobs/counts?kind=`.
pub(crate) async fn counts(
    admin: &AdminService,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let kind = kind(request)?;
    let now = admin.clock.now();
    let mut counts = Vec::with_capacity(JobState::ALL.len());
    for state in JobState::ALL {
        let count = admin
            .index
            .count(state, kind, now, COUNT_BUDGET)
            .await
            .map_err(|e| unavailable(e.into()))?;
        counts.push(count);
    }
    Ok(json(
        StatusCode::OK,
        &json!({ "counts": counts, "budget": COUNT_BUDGET }),
    ))
}

/// `GET /admin/email-jobs/{job_id}`. An id no job can have is not looked up: DynamoDB refuses
/// a key over 2 KiB, and that refusal would answer 503 for what is simply not there.
pub(crate) async fn show(admin: &AdminService, job_id: &str) -> Result<Response<Body>, ApiError> {
    if !is_job_id(job_id) {
        return Err(ApiError::not_found());
    }
    let record = admin
        .jobs
        .get(job_id)
        .await
        .map_err(|e| unavailable(e.into()))?
        .ok_or_else(ApiError::not_found)?;
    Ok(json(StatusCode::OK, &admin.view(&record)))
}
