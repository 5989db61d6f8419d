//! Worker cost per email: the real worker code (decode, claim in the ledger, render, send,
//! record, metrics, logs) on one core, with a mailer that answers at once, so what is measured
//! is the worker itself and not SES.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use email_worker::Worker;
use oes_adapters::aws::AwsClients;
use oes_adapters::dynamo::DynamoJobs;
use oes_adapters::memory::{MemoryJobs, MemoryQueues};
use oes_adapters::resources::provision;
use oes_domain::clock::SystemClock;
use oes_domain::email::OutgoingEmail;
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::pipeline::EmailLanes;
use oes_domain::ports::{BoxError, JobLedger, MailError, Mailer};
use oes_domain::user::Email;
use oes_runtime::config::RetryPolicy;
use oes_runtime::wiring::WorkerAdapters;

use crate::stats::thread_cpu_time;

const BATCH: usize = 10;

/// SES with no latency and no failures.
struct InstantMailer;

#[async_trait]
impl Mailer for InstantMailer {
    async fn send(&self, _email: &OutgoingEmail) -> Result<String, MailError> {
        Ok("instant".into())
    }
}

fn batch(first: usize, to: &Email) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = (first..first + BATCH)
        .map(|i| {
            let job = EmailJob::new(
                to.clone(),
                EmailTemplate::ExamResult {
                    name: "Bench".into(),
                    exam_title: "Rust basics".into(),
                    score_percent: 80,
                    passed: true,
                    attempt_id: format!("attempt-{i}"),
                },
                0,
            );
            let mut record = SqsMessage::default();
            record.message_id = Some(format!("m-{i}"));
            record.receipt_handle = Some(format!("rh-{i}"));
            record.body = Some(job.encode());
            record.event_source_arn = Some("arn:aws:sqs:us-east-1:0:bench-email-bulk".into());
            record
                .attributes
                .insert("ApproximateReceiveCount".into(), "1".into());
            record
        })
        .collect();
    event
}

/// The job ledger: in memory (the worker's own cost), or DynamoDB in the emulator at
/// AWS_ENDPOINT_URL (adds the SDK's cost of the two ledger writes per email; only this
/// process's CPU time is counted, not the emulator's).
async fn ledger(dynamo: bool) -> Result<(Arc<dyn JobLedger>, &'static str), BoxError> {
    if !dynamo {
        return Ok((Arc::new(MemoryJobs::default()), "in-memory ledger"));
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .map_err(|_| "set AWS_ENDPOINT_URL (eval \"$(scripts/services.sh env)\")")?;
    let clients = AwsClients::load(Some(&endpoint)).await?;
    let prefix = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let provisioned = provision(&clients, &prefix, "noreply@example.com").await?;
    let jobs = DynamoJobs::new(clients.dynamodb(), &provisioned.table, 86_400);
    Ok((Arc::new(jobs), "DynamoDB ledger (moto)"))
}

/// Processes `emails` emails in batches of ten and prints CPU µs per email and emails/s.
pub async fn run(emails: usize, dynamo: bool) -> Result<(), BoxError> {
    let (jobs, ledger_name) = ledger(dynamo).await?;
    let worker = Worker::new(
        WorkerAdapters {
            mailer: Arc::new(InstantMailer),
            jobs,
            control: Arc::new(EmailLanes::new(MemoryQueues::new())),
        },
        "https://exams.example.org",
        RetryPolicy::default(),
        5,
        Arc::new(SystemClock),
    );
    let to = Email::parse("bench@example.com")?;
    let batches: Vec<SqsEvent> = (0..emails / BATCH).map(|b| batch(b * BATCH, &to)).collect();
    let sent = batches.len() * BATCH;
    let cpu_before = thread_cpu_time();
    let started = Instant::now();
    for event in batches {
        let response = worker.handle_batch(event).await;
        if !response.batch_item_failures.is_empty() {
            return Err("a record failed".into());
        }
    }
    let wall = started.elapsed();
    let cpu = match (cpu_before, thread_cpu_time()) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => wall,
    };
    let per_email = |d: Duration| d.as_secs_f64() * 1e6 / sent as f64;
    eprintln!(
        "| worker, instant mailer, {ledger_name}, 1 core | {sent} | {:.1} µs | {:.0} emails/s |",
        per_email(cpu),
        sent as f64 / wall.as_secs_f64()
    );
    Ok(())
}
