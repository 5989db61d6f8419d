//! Enqueue latency as an API sees it: `EmailProducer::enqueue` (a conditional write of the job
//! record to DynamoDB, then one SQS `SendMessage`) against the local emulator.

use std::sync::Arc;
use std::time::Instant;

use oes_adapters::aws::AwsClients;
use oes_adapters::dynamo::DynamoJobs;
use oes_adapters::resources::provision;
use oes_adapters::sqs::SqsQueues;
use oes_domain::clock::{Clock, SystemClock};
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::pipeline::EmailLanes;
use oes_domain::ports::BoxError;
use oes_domain::producer::EmailProducer;
use oes_domain::security::Secret;
use oes_domain::user::Email;

use crate::stats::{ms, percentiles};

const WARM_UP: usize = 20;

/// Enqueues `jobs` verification emails one after another and prints the latency percentiles.
pub async fn run(jobs: usize) -> Result<(), BoxError> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .map_err(|_| "set AWS_ENDPOINT_URL (eval \"$(scripts/services.sh env)\")")?;
    let clients = AwsClients::load(Some(&endpoint)).await?;
    let prefix = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let provisioned = provision(&clients, &prefix, "noreply@example.com").await?;
    let producer = EmailProducer::new(
        Arc::new(EmailLanes::new(Arc::new(SqsQueues::new(
            clients.sqs(),
            &provisioned.priority_queue_url,
            &provisioned.bulk_queue_url,
            None,
        )))),
        Arc::new(DynamoJobs::new(
            clients.dynamodb(),
            &provisioned.table,
            14 * 86_400,
        )),
        Arc::new(SystemClock),
    );
    let to = Email::parse("bench@example.com")?;
    let mut samples = Vec::with_capacity(jobs);
    for i in 0..WARM_UP + jobs {
        let job = EmailJob::new(
            to.clone(),
            EmailTemplate::Verification {
                name: "Bench".into(),
                token: Secret::new(format!("token-{i}")),
                choose_password: false,
            },
            SystemClock.now(),
        );
        let started = Instant::now();
        producer.enqueue(job).await?;
        if i >= WARM_UP {
            samples.push(started.elapsed());
        }
    }
    let p = percentiles(&mut samples).ok_or("no samples")?;
    eprintln!(
        "| enqueue (DynamoDB put + SQS send, moto on loopback) | {jobs} | {} | {} | {} | {} |",
        ms(p.p50),
        ms(p.p99),
        ms(p.max),
        ms(p.mean)
    );
    Ok(())
}
