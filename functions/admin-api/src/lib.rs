//! The admin API (`/admin/*`, admins only): the email pipeline and the cache. A function of its
//! own, so the rights it needs — pausing the lanes, deleting dead letters, reading the job index
//! — are not the rights of the function every student reaches.
//!
//! | route | answer |
//! |---|---|
//! | `GET /admin/queues` | visible / in flight / delayed for each lane and the DLQ, and `paused` for each lane |
//! | `POST /admin/lanes/{lane}/pause`, `…/resume` | stops or restarts the worker receiving from `priority` or `bulk` |
//! | `GET /admin/email-jobs?status=&kind=&limit=&cursor=` | jobs of a state (`queued`, `sending`, `stalled`, `retrying`, `sent`, `failed`, `dead`) and kind, newest change first, a page at a time |
//! | `GET /admin/email-jobs/counts?kind=` | jobs in each state, exact up to [`COUNT_BUDGET`] records of a status |
//! | `GET /admin/email-jobs/{job_id}` | the job's status record, with its history and `stalled` |
//! | `GET /admin/dlq?max=50` | messages on the dead-letter queue, with their reason |
//! | `POST /admin/dlq/redrive` `{"job_id": "…"}` | moves that job back to its lane (200) |
//! | `POST /admin/dlq/redrive` `{"all": true}` | one step of at most [`REDRIVE_STEP`] letters: 202 and `done: false` (call again to go on), or 200 and `done: true` once the queue has been walked |
//! | `POST /admin/dlq/purge` | deletes a step of at most [`PURGE_STEP`] letters, their `failed`/`dead` jobs recorded `dead` (purged): 202 and `done: false`, or 200 and `done: true` |
//! | `POST /admin/cache/clear` | empties the cache (a new namespace version): 200, or 503 if Redis cannot be reached |
//!
//! The operator console (`GET /admin/`, [`console`]) is a page over these routes.
//!
//! A redrive drops the letters of jobs that were sent already (`already_sent`), and of jobs
//! whose producer could not queue them and told its caller so (`not_queued`), without sending
//! them.
//!
//! - `routes`: the admin check and the route table ([`handle`], [`AdminApi`]).
//! - `lanes`: the queues' counts, and pausing and resuming a lane.
//! - `jobs`: the email jobs by state and kind, their counts, one job's record.
//! - [`console`]: the operator console's page and files.
//! - [`openapi`]: the description of every route, for the OpenAPI document.
//! - `main.rs`: wires the real adapters once and starts the Lambda runtime.

pub mod console;
mod jobs;
mod lanes;
pub mod openapi;
mod routes;

pub use jobs::COUNT_BUDGET;
pub use lanes::QueueView;
pub use routes::{
    AdminApi, AdminService, MAX_LETTERS_LISTED, PURGE_STEP, REDRIVE_STEP, ROUTES, STEP_TIME,
    handle, serves,
};
