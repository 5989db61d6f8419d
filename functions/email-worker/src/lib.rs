//! The email worker: consumes SQS batches of [`EmailJob`]s, renders each, sends it through the
//! [`Mailer`] port (SES v2 in AWS), and returns an [`SqsBatchResponse`] listing only the records
//! that failed, so SQS redelivers just those (and moves them to the dead-letter queue after the
//! redrive policy's `maxReceiveCount`).
//!
//! The records of a batch are processed concurrently (a batch holds at most 10), each in its
//! own span. Nothing here knows whether it runs in Lambda, in `oes-local` or in a test.

use std::sync::Arc;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::future::join_all;
use oes_shared::email::{EmailJob, JobDecodeError, Renderer};
use oes_shared::ports::{MailError, Mailer};
use tracing::Instrument;

/// What the worker needs, built once at init.
#[derive(Clone)]
pub struct Worker {
    mailer: Arc<dyn Mailer>,
    renderer: Renderer,
}

/// Why one record failed.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The body is not a job this worker can read.
    #[error(transparent)]
    Undecodable(#[from] JobDecodeError),
    /// Sending failed.
    #[error(transparent)]
    Send(#[from] MailError),
}

impl Worker {
    /// A worker sending through `mailer`, with links under `public_base_url`.
    pub fn new(mailer: Arc<dyn Mailer>, public_base_url: &str) -> Self {
        Self {
            mailer,
            renderer: Renderer::new(public_base_url),
        }
    }

    /// Processes one SQS batch; the response lists exactly the records that failed.
    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let outcomes = join_all(event.records.into_iter().map(|record| {
            let span = tracing::info_span!(
                "email_record",
                message_id = record.message_id.as_deref().unwrap_or(""),
                receive_count = record
                    .attributes
                    .get("ApproximateReceiveCount")
                    .map(String::as_str)
                    .unwrap_or(""),
            );
            async move {
                let result = self.process(&record).await;
                (record.message_id, result)
            }
            .instrument(span)
        }))
        .await;

        let mut response = SqsBatchResponse::default();
        for (message_id, result) in outcomes {
            let Err(error) = result else { continue };
            match message_id {
                Some(id) => {
                    tracing::warn!(message_id = %id, %error, "email record failed; it will be retried");
                    let mut failure = BatchItemFailure::default();
                    failure.item_identifier = id;
                    response.batch_item_failures.push(failure);
                }
                None => tracing::error!(%error, "email record without a message id failed"),
            }
        }
        response
    }

    async fn process(&self, record: &SqsMessage) -> Result<(), RecordError> {
        let job = EmailJob::decode(record.body.as_deref().unwrap_or_default())?;
        let email = self.renderer.render(&job);
        let message_id = self.mailer.send(&email).await?;
        tracing::info!(job_id = %job.job_id, kind = job.template.kind(), ses_message_id = %message_id, "email sent");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use oes_shared::email::EmailTemplate;
    use oes_shared::ports::OutgoingEmail;
    use oes_shared::security::Secret;
    use oes_shared::user::Email;
    use std::sync::Mutex;

    /// Records what it is asked to send; refuses recipients on its deny list.
    #[derive(Default)]
    struct RecordingMailer {
        sent: Mutex<Vec<OutgoingEmail>>,
        refuse: Vec<&'static str>,
    }

    #[async_trait]
    impl Mailer for RecordingMailer {
        async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
            if self.refuse.contains(&email.to.as_str()) {
                return Err(MailError::Transient("throttled".into()));
            }
            self.sent
                .lock()
                .map_err(|e| MailError::Transient(e.to_string()))?
                .push(email.clone());
            Ok("msg".into())
        }
    }

    fn record(id: &str, body: &str) -> SqsMessage {
        let mut record = SqsMessage::default();
        record.message_id = Some(id.into());
        record.body = Some(body.into());
        record
    }

    fn job(to: &str) -> String {
        EmailJob::new(
            Email::parse(to).expect("valid"),
            EmailTemplate::Verification {
                name: "Ada".into(),
                token: Secret::new("tok"),
            },
            0,
        )
        .encode()
    }

    #[tokio::test]
    async fn only_failed_records_are_reported() {
        let mailer = Arc::new(RecordingMailer {
            refuse: vec!["slow@example.com"],
            ..RecordingMailer::default()
        });
        let worker = Worker::new(mailer.clone(), "http://localhost:3000");
        let mut event = SqsEvent::default();
        event.records = vec![
            record("ok-1", &job("ada@example.com")),
            record("garbage", "{not json"),
            record("throttled", &job("slow@example.com")),
            record("ok-2", &job("grace@example.com")),
        ];
        let response = worker.handle_batch(event).await;
        let mut failed: Vec<_> = response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.as_str())
            .collect();
        failed.sort_unstable();
        assert_eq!(failed, ["garbage", "throttled"]);
        let sent = mailer.sent.lock().expect("lock");
        let mut to: Vec<_> = sent.iter().map(|e| e.to.as_str()).collect();
        to.sort_unstable();
        assert_eq!(to, ["ada@example.com", "grace@example.com"]);
        assert!(
            sent[0]
                .text
                .contains("http://localhost:3000/auth/verify-email?token=tok")
        );
    }
}
