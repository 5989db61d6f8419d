//! admin-api Lambda: wires the real adapters once, then serves API Gateway HTTP API events.

use std::sync::Arc;

use admin_api::AdminApi;
use lambda_http::{Error, service_fn};
use oes_adapters::aws::AwsClients;
use oes_domain::clock::SystemClock;
use oes_domain::security::JwtKeys;
use oes_runtime::config::{ApiConfig, process_env};
use oes_runtime::wiring::{ApiAdapters, lane_switch, resolve_jwt_secret};

/// mimalloc (see `oes_runtime::alloc`).
#[global_allocator]
static ALLOCATOR: oes_runtime::alloc::Allocator = oes_runtime::alloc::Allocator;

/// One thread: Lambda hands an environment one event at a time (docs/BENCHMARKS.md, "Cold
/// starts").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    oes_runtime::telemetry::init();
    let clients = AwsClients::from_env().await?;
    let config = ApiConfig::load(&resolve_jwt_secret(process_env(), &clients).await?)?;
    // The admin API lists and redrives the dead-letter queue, and pauses and resumes the lanes'
    // event source mappings: it does not start without them.
    config.dead_letter_queue_url()?;
    let lanes = lane_switch(&clients, config.lane_mappings()?);
    let adapters = ApiAdapters::aws(&clients, &config)?;
    let api = AdminApi::new(
        &adapters,
        lanes,
        JwtKeys::new(&config.jwt),
        Arc::new(SystemClock),
    );
    let api = &api;
    oes_runtime::http::run(service_fn(move |request| admin_api::handle(api, request))).await
}
