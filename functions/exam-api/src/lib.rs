//! The exam API (`/exams/*`, `/attempts/*`, `/me/*`). The admin API (`/admin/*`) is a function
//! of its own, `admin-api`: the rights it needs stay off the function every student reaches.
//!
//! - [`routes`]: the route table and the thin handlers (parse, call the service, map).
//! - [`service`]: the exam domain — exams, questions, attempts, grading, results — over the
//!   `ExamStore` and `AttemptStore` ports, with reads cache-aside.
//! - `memo`: which exam an attempt is at, remembered per process (the paper read in one round
//!   trip).
//! - [`access`]: who may do what (403 for a wrong role, 404 for someone else's resource).
//! - [`views`]: the JSON shapes (a student's question has no answer field).
//! - [`paging`]: `?limit=` and `?cursor=` of the lists, and their signed cursors.
//! - [`error`]: the domain error and its one mapping to an HTTP answer.
//! - [`openapi`]: the description of every route, for the OpenAPI document.
//! - [`sweep`]: the attempt sweep (attempts close at their deadline) and its scheduled handler.
//! - `main.rs`: wires the real adapters once and starts the Lambda runtime;
//!   `bin/attempt-sweeper.rs` does the same for the sweep, run by a schedule.

pub mod access;
pub mod error;
mod memo;
pub mod openapi;
pub mod paging;
pub mod routes;
pub mod service;
pub mod sweep;
pub mod views;

pub use routes::{ExamApi, handle, routes};
