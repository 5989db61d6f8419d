//! email-worker Lambda: SQS event source mapping (ReportBatchItemFailures) → SES v2.

use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use email_worker::Worker;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use oes_adapters::aws::AwsClients;
use oes_domain::clock::SystemClock;
use oes_runtime::config::{WorkerConfig, process_env};
use oes_runtime::wiring::WorkerAdapters;

/// mimalloc (see `oes_runtime::alloc`).
#[global_allocator]
static ALLOCATOR: oes_runtime::alloc::Allocator = oes_runtime::alloc::Allocator;

/// One thread: Lambda hands an environment one event at a time, so worker threads would only
/// be started at init and hand work between them (docs/BENCHMARKS.md, "Cold starts").
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    oes_runtime::telemetry::init();
    let config = WorkerConfig::load(&process_env())?;
    let clients = AwsClients::from_env().await?;
    let worker = Worker::new(
        WorkerAdapters::aws(&clients, &config),
        &config.public_base_url,
        config.retry,
        config.concurrency,
        Arc::new(SystemClock),
    );
    let worker = &worker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(worker.handle_batch(event.payload).await)
    }))
    .await
}
