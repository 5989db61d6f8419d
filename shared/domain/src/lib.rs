//! The oes domain: what the system is about, with no SDK, no Redis and no Lambda types in its
//! dependency tree (a test reads `cargo metadata` to keep it so).
//!
//! - [`user`]: validated account types (`Email`, `UserId`, `Role`, `User`).
//! - [`exam`]: validated exams, questions and attempts, and grading.
//! - [`text`]: the characters user-given text may not hold.
//! - [`email`]: the email job message (defined once, used by producers and the worker), its
//!   templates and the rendered [`email::OutgoingEmail`].
//! - [`clock`]: time, injected.
//! - [`security`]: argon2id password hashing, one-time tokens, JWT issue and verification,
//!   device tokens (the trusted devices of the sign-in limits).
//! - [`ports`]: one narrow trait per external system, each with its own typed error.
//! - [`cache`]: the cache-aside policy over the `Cache` port, and the cache keys.
//! - [`producer`]: queueing an email job (record it, then put it on its lane).
//! - [`pipeline`]: the email lanes, the worker's queue control, the operators' view of the queues
//!   and the one redrive — written once over the `MessageQueues` port.
//! - [`metrics`]: the name of every metric, written as CloudWatch Embedded Metric Format lines.

pub mod cache;
pub mod clock;
pub mod email;
pub mod exam;
pub mod metrics;
pub mod pipeline;
pub mod ports;
pub mod producer;
pub mod security;
pub mod text;
pub mod user;
