//! Email jobs: the message producers queue and the worker consumes (defined once, here), and the
//! templates that turn a job into an email.

mod job;
mod producer;
mod render;

pub use job::{
    DEFAULT_MAX_ATTEMPTS, EmailJob, EmailTemplate, JobDecodeError, JobError, Lane,
    MAX_DELAY_SECONDS,
};
pub use producer::{EmailProducer, EnqueueError};
pub use render::{Renderer, escape_html};
