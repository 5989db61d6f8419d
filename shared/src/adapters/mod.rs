//! Implementations of the ports: the real ones (what deploys and what integration tests use)
//! and the in-memory ones (the embedded local mode and unit tests).

pub mod dead_letters;
pub mod dynamo;
pub mod dynamo_exams;
pub mod dynamo_jobs;
pub mod memory;
pub mod memory_exams;
pub mod outbox;
pub mod redis_cache;
pub mod secrets;
pub mod ses;
pub mod sqs;
pub mod store_timing;
