//! Email jobs: the message producers queue and the worker consumes (defined once, here), and the
//! templates that turn a job into an email.

mod job;
mod render;

pub use job::{EmailJob, EmailTemplate, JobDecodeError, Lane};
pub use render::{Renderer, escape_html};
