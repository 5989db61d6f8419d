//! The ports' implementations: the real ones (what deploys, and what the integration tests use)
//! and the in-memory twins (the embedded local mode, unit tests and simulations), each twin held
//! to its real adapter by a contract suite in `tests/`.
//!
//! - [`aws`]: the AWS SDK clients, built once at init.
//! - [`dynamo`]: the DynamoDB stores (accounts, tokens, exams, attempts, email jobs) in the one
//!   table, and the interceptor that times their calls.
//! - [`lambda`]: the lanes' event source mappings, paused and resumed (the `LaneSwitch` port).
//! - [`sqs`]: the pipeline's three queues on SQS (the `MessageQueues` port).
//! - [`ses`]: SES v2 `SendEmail`; [`outbox`]: the embedded mode's mailer (`.eml` files).
//! - [`redis_cache`]: the cache and rate-limit counters in Redis or Redis Cluster, plain or TLS.
//! - [`secrets`]: the JWT signing key from Secrets Manager, read once at init.
//! - [`memory`]: the in-memory twins, one file per port, and `NoCache`.
//! - [`resources`]: the table and queue definitions shared by local provisioning and
//!   `template.yaml`, and provisioning itself.

pub mod aws;
pub mod dynamo;
pub mod lambda;
pub mod memory;
pub mod outbox;
pub mod redis_cache;
pub mod resources;
pub mod secrets;
pub mod ses;
pub mod sqs;

#[cfg(test)]
mod cache_policy_tests;
