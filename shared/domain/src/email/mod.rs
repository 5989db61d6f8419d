//! Email jobs: the message producers queue and the worker consumes (defined once, here), and the
//! templates that turn a job into an [`OutgoingEmail`].

mod job;
mod outgoing;
mod render;

pub use job::{
    DEFAULT_MAX_ATTEMPTS, EmailJob, EmailTemplate, JobDecodeError, JobError, Lane,
    MAX_DELAY_SECONDS, PRIORITY_LANE_THRESHOLD, is_job_id,
};
pub use outgoing::OutgoingEmail;
pub use render::{Renderer, escape_html};
