//! auth-api Lambda: wires the real adapters once, then serves API Gateway HTTP API events.

use std::sync::Arc;

use lambda_http::{Error, service_fn};
use oes_adapters::aws::AwsClients;
use oes_domain::clock::SystemClock;
use oes_domain::security::{JwtKeys, PasswordHasher};
use oes_runtime::config::{ApiConfig, process_env};
use oes_runtime::wiring::{ApiAdapters, resolve_jwt_secret};

/// mimalloc (see `oes_runtime::alloc`).
#[global_allocator]
static ALLOCATOR: oes_runtime::alloc::Allocator = oes_runtime::alloc::Allocator;

/// One thread: Lambda hands an environment one event at a time, so worker threads would only
/// be started at init and hand work between them (docs/BENCHMARKS.md, "Cold starts").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    oes_runtime::telemetry::init();
    let clients = AwsClients::from_env().await?;
    let config = ApiConfig::load(&resolve_jwt_secret(process_env(), &clients).await?)?;
    let service = auth_api::wire(
        ApiAdapters::aws(&clients, &config)?,
        JwtKeys::new(&config.jwt),
        PasswordHasher::new()?,
        Arc::new(SystemClock),
    );
    let service = &service;
    oes_runtime::http::run(service_fn(move |request| {
        auth_api::handle(service, request)
    }))
    .await
}
