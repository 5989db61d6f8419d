//! Everything the oes functions share.
//!
//! - [`config`]: the typed configuration, loaded once at init from the environment.
//! - [`telemetry`]: logging set-up (JSON in Lambda) and CloudWatch Embedded Metric Format lines.
//! - [`user`]: validated domain types for accounts (`Email`, `UserId`, `Role`, `User`).
//! - [`exam`]: validated domain types for exams, questions and attempts, and grading.
//! - [`metrics`]: CloudWatch Embedded Metric Format lines, and the name of every metric.
//! - [`ports`]: one narrow trait per external system (`UserStore`, `TokenStore`, `ExamStore`,
//!   `AttemptStore`, `Cache`, `EmailQueue`, `Mailer`, `JobLedger`, `Clock`).
//! - [`adapters`]: the real implementations (DynamoDB, Redis, SQS, SES v2) and the in-memory ones
//!   used by the embedded local mode and unit tests.
//! - [`cache`]: the cache-aside policy and the cache keys, in one place.
//! - [`email`]: the email job message (defined once, used by producers and the worker) and its
//!   templates.
//! - [`http`]: JSON bodies, the error shape `{"error": {"code", "message"}}`, bearer tokens.
//! - [`security`]: argon2id password hashing, one-time tokens, JWT issue and verification.
//! - [`session`]: who is calling (bearer token → current profile), for every API.
//! - [`resources`]: the table and queue definitions shared by local provisioning and `template.yaml`.
//! - [`wiring`]: builds the set of adapters from configuration, once, at init.

pub mod adapters;
pub mod cache;
pub mod clock;
pub mod config;
pub mod email;
pub mod exam;
pub mod http;
pub mod metrics;
pub mod ports;
pub mod rate_limit;
pub mod resources;
pub mod security;
pub mod session;
pub mod telemetry;
pub mod user;
pub mod wiring;
