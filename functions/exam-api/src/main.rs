//! exam-api Lambda (stub router until the exam issue).

use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    oes_shared::telemetry::init();
    lambda_http::run(service_fn(exam_api::handle)).await
}
