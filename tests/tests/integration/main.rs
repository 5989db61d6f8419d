//! Every workspace integration and end-to-end test, in one binary (one link of the AWS SDK and
//! Redis instead of one per file). Each module is one subject; the harness is `oes_tests`.
//! Tests that need Redis and the emulator get them from `make services` (which `make test` runs).

mod admin_api;
mod adversary;
mod architecture;
mod auth_api;
mod bad_input;
mod cache_aside;
mod cache_metrics;
mod cache_outage;
mod cache_tls;
mod email_pipeline;
mod emf_lines;
mod exam_api;
mod exam_cache;
mod exam_store;
mod fixtures;
mod job_ledger;
mod journey;
mod lane_switch;
mod mailer;
mod message_queues;
mod openapi;
mod pipeline_faults;
mod queue_outage;
mod queue_pipeline;
mod rate_limits;
mod redis_cache;
mod request_deadline;
mod request_log;
mod runtime_api;
mod secrets;
mod template;
mod timeout_chain;
mod token_store;
mod user_store;
