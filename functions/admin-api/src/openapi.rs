//! admin-api's operations in the OpenAPI document: one description per route of
//! [`crate::ROUTES`], the answers described by the wrappers below around the domain's records
//! (`queues`, `jobs`, `counts`, `messages`), as the routes build them. The error answers every
//! operation shares are added by [`oes_runtime::http::openapi::complete`].

// The functions only carry their operation's description: nothing calls them.
#![allow(dead_code)]

use oes_domain::pipeline::{DeadLetterEntry, PurgeReport, RedriveReport};
use oes_domain::ports::{JobCount, JobRecord, QueueCounts};
use oes_runtime::http::openapi::{CURSOR, LIMIT, LinkSpec, link, require_bearer};
use utoipa::{OpenApi, ToSchema};

/// admin-api's part of the OpenAPI document: every operation takes a bearer token.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = AdminApiDoc::openapi();
    require_bearer(&mut doc);
    link(&mut doc, LINKS);
    doc
}

/// Where the ids of an answer lead.
const LINKS: &[LinkSpec] = {
    const JOB: &[(&str, &str)] = &[("job_id", "$response.body#/jobs/0/job_id")];
    &[("admin_email_jobs", "200", "admin_email_job", JOB)]
};

/// admin-api's operations.
#[derive(OpenApi)]
#[openapi(
    paths(
        admin_queues,
        admin_email_jobs,
        admin_email_job_counts,
        admin_email_job,
        admin_dlq,
        admin_dlq_redrive,
        admin_dlq_purge,
        admin_lane_pause,
        admin_lane_resume,
        admin_cache_clear,
    ),
    tags((name = "admin", description = "The email pipeline and the cache (admins only)"))
)]
pub struct AdminApiDoc;

/// A queue's counts, and for a lane whether it is paused.
#[derive(ToSchema)]
struct QueueView {
    #[serde(flatten)]
    counts: QueueCounts,
    /// A lane's: whether its worker is paused (absent for the dead-letter queue).
    #[serde(default)]
    paused: Option<bool>,
}

/// `GET /admin/queues`.
#[derive(ToSchema)]
struct QueuesAnswer {
    /// Each lane, then the dead-letter queue.
    queues: Vec<QueueView>,
}

/// `POST /admin/lanes/{lane}/pause` and `…/resume`.
#[derive(ToSchema)]
struct LaneSwitched {
    /// `priority` or `bulk`.
    lane: String,
    /// Whether it is paused now.
    paused: bool,
}

/// What a purge did, and what to do next while it is not done.
#[derive(ToSchema)]
struct PurgeAnswer {
    #[serde(flatten)]
    report: PurgeReport,
    /// While not done: how to go on.
    #[serde(default)]
    next: Option<String>,
}

/// An email job, and whether it is stalled now (sending, its lease run out).
#[derive(ToSchema)]
struct JobView {
    #[serde(flatten)]
    record: JobRecord,
    /// Sending, its lease run out: the send crashed.
    stalled: bool,
}

/// `GET /admin/email-jobs`.
#[derive(ToSchema)]
struct JobList {
    /// The page, newest change first.
    jobs: Vec<JobView>,
    /// Pass as `?cursor=` for the next page; `null` on the last.
    next_cursor: Option<String>,
}

/// `GET /admin/email-jobs/counts`.
#[derive(ToSchema)]
struct JobCounts {
    /// The jobs in each state.
    counts: Vec<JobCount>,
    /// The most records of one status a count reads.
    budget: u64,
}

/// `GET /admin/dlq`.
#[derive(ToSchema)]
struct DeadLetters {
    /// Messages on the dead-letter queue.
    messages: Vec<DeadLetterEntry>,
}

/// `POST /admin/dlq/redrive`: `{"job_id": "…"}` (that job) or `{"all": true}` (a step).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
struct RedriveBody {
    /// The job to move back to its lane.
    job_id: Option<String>,
    /// Every letter, one step at a time.
    #[serde(default)]
    all: bool,
}

/// What a redrive did, and what to do next while it is not done.
#[derive(ToSchema)]
struct RedriveAnswer {
    #[serde(flatten)]
    report: RedriveReport,
    /// While not done: how to go on.
    #[serde(default)]
    next: Option<String>,
}

/// `POST /admin/cache/clear`.
#[derive(ToSchema)]
struct CacheCleared {
    /// Always true.
    cleared: bool,
}

/// The 403 of an admin route.
const ADMIN_ONLY: &str = "`forbidden`: this needs the admin role";

/// Message counts of each lane and of the dead-letter queue
#[utoipa::path(get, path = "/admin/queues", tag = "admin",
    responses((status = 200, description = "The counts", body = QueuesAnswer),
              (status = 403, description = ADMIN_ONLY)))]
fn admin_queues() {}

/// Email jobs in a state, newest change first
#[utoipa::path(get, path = "/admin/email-jobs", tag = "admin",
    params(("status" = String, Query, description = "`queued`, `sending`, `stalled`, \
             `retrying`, `sent`, `failed` or `dead`"),
           ("kind" = Option<String>, Query, description = "a job kind, e.g. `verification`"),
           ("limit" = Option<u32>, Query, description = LIMIT, minimum = 1, maximum = 100),
           ("cursor" = Option<String>, Query, description = CURSOR)),
    responses((status = 200, description = "A page of jobs", body = JobList),
              (status = 403, description = ADMIN_ONLY)))]
fn admin_email_jobs() {}

/// The number of email jobs in each state
#[utoipa::path(get, path = "/admin/email-jobs/counts", tag = "admin",
    params(("kind" = Option<String>, Query, description = "a job kind, e.g. `verification`")),
    responses((status = 200, description = "The counts", body = JobCounts),
              (status = 403, description = ADMIN_ONLY)))]
fn admin_email_job_counts() {}

/// An email job's record, with its history
#[utoipa::path(get, path = "/admin/email-jobs/{job_id}", tag = "admin",
    params(("job_id" = String, Path, description = "the job's id")),
    responses((status = 200, description = "The job", body = JobView),
              (status = 403, description = ADMIN_ONLY)))]
fn admin_email_job() {}

/// Messages on the dead-letter queue, with their reason
#[utoipa::path(get, path = "/admin/dlq", tag = "admin",
    params(("max" = Option<u32>, Query, description = "at most this many, 1 to 500 (default 50)",
             minimum = 1, maximum = 500)),
    responses((status = 200, description = "The messages", body = DeadLetters),
              (status = 403, description = ADMIN_ONLY)))]
fn admin_dlq() {}

/// Move dead letters back to their lane: one job, or a step of all
#[utoipa::path(post, path = "/admin/dlq/redrive", tag = "admin", request_body = RedriveBody,
    responses((status = 200, description = "Done", body = RedriveAnswer),
              (status = 202, description = "A step done; POST the same body again to go on",
                body = RedriveAnswer),
              (status = 403, description = ADMIN_ONLY)))]
fn admin_dlq_redrive() {}

/// Delete the dead letters, a step at a time; their jobs are recorded `dead` (purged)
#[utoipa::path(post, path = "/admin/dlq/purge", tag = "admin",
    responses((status = 200, description = "Done", body = PurgeAnswer),
              (status = 202, description = "A step done; POST again to go on", body = PurgeAnswer),
              (status = 403, description = ADMIN_ONLY)))]
fn admin_dlq_purge() {}

/// Pause a lane: its worker stops receiving
#[utoipa::path(post, path = "/admin/lanes/{lane}/pause", tag = "admin",
    params(("lane" = String, Path, description = "`priority` or `bulk`")),
    responses((status = 200, description = "Paused", body = LaneSwitched),
              (status = 403, description = ADMIN_ONLY)))]
fn admin_lane_pause() {}

/// Resume a lane: its worker receives again
#[utoipa::path(post, path = "/admin/lanes/{lane}/resume", tag = "admin",
    params(("lane" = String, Path, description = "`priority` or `bulk`")),
    responses((status = 200, description = "Resumed", body = LaneSwitched),
              (status = 403, description = ADMIN_ONLY)))]
fn admin_lane_resume() {}

/// Empty the cache (a new namespace version)
#[utoipa::path(post, path = "/admin/cache/clear", tag = "admin",
    responses((status = 200, description = "Cleared", body = CacheCleared),
              (status = 403, description = ADMIN_ONLY)))]
fn admin_cache_clear() {}
