//! The exam API (`/exams/*`, `/attempts/*`, `/me/*`) and the admin API for the email pipeline
//! (`/admin/*`).
//!
//! - [`admin`]: queue counts, job status, dead-letter queue and redrive, for admins. The domain
//!   side is the `QueueAdmin` and `JobLedger` ports; this module only checks the role and maps.
//! - [`routes`]: the router. Exam routes answer a JSON 404 until the exam issue lands.
//! - `main.rs`: wires the real adapters once and starts the Lambda runtime.

pub mod admin;
pub mod routes;

pub use routes::{ExamApi, handle};
