//! auth-api Lambda: wires the real adapters once, then serves API Gateway HTTP API events.

use std::sync::Arc;

use auth_api::AuthService;
use lambda_http::{Error, service_fn};
use oes_shared::clock::SystemClock;
use oes_shared::config::{ApiConfig, process_env};
use oes_shared::security::{JwtKeys, PasswordHasher};
use oes_shared::wiring::{ApiAdapters, AwsClients, resolve_jwt_secret};

#[tokio::main]
async fn main() -> Result<(), Error> {
    oes_shared::telemetry::init();
    let clients = AwsClients::from_env().await;
    let config = ApiConfig::load(&resolve_jwt_secret(process_env(), &clients).await?)?;
    let service = AuthService::new(
        ApiAdapters::aws(&clients, &config)?,
        JwtKeys::new(&config.jwt),
        PasswordHasher::new()?,
        Arc::new(SystemClock),
    );
    let service = &service;
    lambda_http::run(service_fn(move |request| {
        auth_api::handle(service, request)
    }))
    .await
}
