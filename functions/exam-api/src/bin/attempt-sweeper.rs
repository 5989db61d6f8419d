//! attempt-sweeper Lambda: wires the real adapters once, then sweeps on each scheduled event
//! (every minute): the attempts past their deadline close (`exam_api::sweep`).

use std::sync::Arc;

use exam_api::sweep::{AttemptSweeper, handle};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use oes_adapters::aws::AwsClients;
use oes_domain::clock::SystemClock;
use oes_runtime::config::{SweeperConfig, process_env};
use oes_runtime::wiring::ApiAdapters;

/// mimalloc (see `oes_runtime::alloc`).
#[global_allocator]
static ALLOCATOR: oes_runtime::alloc::Allocator = oes_runtime::alloc::Allocator;

/// One thread: Lambda hands an environment one event at a time, so worker threads would only
/// be started at init and hand work between them (docs/BENCHMARKS.md, "Cold starts").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    oes_runtime::telemetry::init();
    let config = SweeperConfig::load(&process_env())?;
    let clients = AwsClients::from_env().await?;
    let adapters = ApiAdapters::aws_for(&clients, &config.resources, &config.cache)?;
    let sweeper = AttemptSweeper::new(&adapters, Arc::new(SystemClock));
    let sweeper = &sweeper;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        handle(sweeper, event)
    }))
    .await
}
