//! exam-api Lambda: wires the real adapters once, then serves API Gateway HTTP API events.

use std::sync::Arc;

use exam_api::ExamApi;
use lambda_http::{Error, service_fn};
use oes_adapters::aws::AwsClients;
use oes_adapters::dead_letters::EmailQueues;
use oes_domain::clock::SystemClock;
use oes_domain::security::JwtKeys;
use oes_runtime::config::{ApiConfig, process_env};
use oes_runtime::wiring::{ApiAdapters, resolve_jwt_secret};

#[tokio::main]
async fn main() -> Result<(), Error> {
    oes_runtime::telemetry::init();
    let clients = AwsClients::from_env().await;
    let env = resolve_jwt_secret(process_env(), &clients).await?;
    let config = ApiConfig::load(&env)?;
    let dead_letter_url = env.required("OES_DLQ_URL")?;
    let adapters = ApiAdapters::aws(&clients, &config)?;
    let resources = &config.resources;
    let queues = EmailQueues::new(
        clients.sqs.clone(),
        &resources.priority_queue_url,
        &resources.bulk_queue_url,
        &dead_letter_url,
    );
    let api = ExamApi::new(
        &adapters,
        JwtKeys::new(&config.jwt),
        Arc::new(queues),
        Arc::new(SystemClock),
    );
    let api = &api;
    lambda_http::run(service_fn(move |request| exam_api::handle(api, request))).await
}
