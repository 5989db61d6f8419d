//! The embedded mode: nothing to install. In-memory adapters, an in-process queue drained by the
//! real worker code (priority lane first), and each email written to an outbox folder.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use email_worker::Worker;
use exam_api::ExamApi;
use oes_adapters::memory::{MemoryJobs, MemoryQueue, QueuedMessage};
use oes_adapters::outbox::OutboxMailer;
use oes_adapters::resources::PRIORITY_QUEUE;
use oes_domain::clock::{Clock, SystemClock};
use oes_domain::ports::UserUpdate;
use oes_domain::security::{JwtKeys, JwtSettings, OneTimeToken, Password, PasswordHasher, Secret};
use oes_domain::user::{DisplayName, Email, Role, User, UserId, UserStatus};
use oes_runtime::config::RetryPolicy;
use oes_runtime::wiring::{ApiAdapters, WorkerAdapters};

use crate::Functions;

/// Settings of the embedded mode.
pub struct Embedded {
    /// Where `.eml` files go.
    pub outbox: PathBuf,
    /// Base of the links in emails (the local gateway's URL).
    pub public_base_url: String,
    /// Password of the demo accounts.
    pub demo_password: String,
}

/// The demo accounts seeded at start-up, with their roles.
pub const DEMO_ACCOUNTS: [(&str, &str, Role); 2] = [
    ("admin@example.com", "Demo Admin", Role::Admin),
    (
        "instructor@example.com",
        "Demo Instructor",
        Role::Instructor,
    ),
];

/// A random JWT secret for this run (tokens do not survive a restart, like the in-memory data).
pub fn random_secret() -> Secret {
    Secret::new(format!(
        "{}{}",
        OneTimeToken::generate().expose(),
        OneTimeToken::generate().expose()
    ))
}

/// Builds the functions over in-memory adapters, seeds the demo accounts, and starts the
/// in-process worker.
pub async fn start(
    settings: Embedded,
    jwt: JwtSettings,
) -> Result<Arc<Functions>, oes_domain::ports::BoxError> {
    let queue = MemoryQueue::new();
    let jobs = Arc::new(MemoryJobs::default());
    let adapters = ApiAdapters::in_memory(queue.clone(), jobs.clone());
    let hasher = PasswordHasher::new()?;
    seed_demo_accounts(&adapters, &hasher, &settings.demo_password).await?;
    let exams = ExamApi::new(
        &adapters,
        JwtKeys::new(&jwt),
        queue.clone(),
        Arc::new(SystemClock),
    );
    let auth = auth_api::wire(adapters, JwtKeys::new(&jwt), hasher, Arc::new(SystemClock));
    let worker_adapters = WorkerAdapters {
        mailer: Arc::new(OutboxMailer::new(settings.outbox, "noreply@oes.local")),
        jobs,
        control: queue.clone(),
    };
    let worker = Worker::new(
        worker_adapters,
        &settings.public_base_url,
        RetryPolicy::default(),
        5,
        Arc::new(SystemClock),
    );
    tokio::spawn(drain(queue, worker));
    Ok(Arc::new(Functions { auth, exams }))
}

async fn seed_demo_accounts(
    adapters: &ApiAdapters,
    hasher: &PasswordHasher,
    password: &str,
) -> Result<(), oes_domain::ports::BoxError> {
    let password = Password::parse(password.to_owned(), "OES_DEMO_PASSWORD")?;
    let now = SystemClock.now();
    for (email, name, role) in DEMO_ACCOUNTS {
        let user = User {
            id: UserId::generate(),
            email: Email::parse(email)?,
            name: DisplayName::parse(name)?,
            password_hash: hasher.hash(&password)?,
            role: Role::Student,
            status: UserStatus::Active,
            token_version: 0,
            created_at: now,
            updated_at: now,
        };
        adapters.users.create(&user).await?;
        adapters
            .users
            .update(&user.id, UserUpdate::Role(role), now)
            .await?;
    }
    Ok(())
}

/// The in-process event source: takes batches (priority lane first), invokes the worker, and
/// puts records it reports as failed back after the visibility the worker set (the queue's
/// visibility timeout if it set none), up to the queues' `maxReceiveCount`.
async fn drain(queue: Arc<MemoryQueue>, worker: Worker) {
    let max_receives = PRIORITY_QUEUE.max_receive_count.unwrap_or(5);
    loop {
        let batch = queue.receive(10).await;
        let mut event = SqsEvent::default();
        event.records = batch.iter().map(to_record).collect();
        let response = worker.handle_batch(event).await;
        for message in batch {
            let failed = response
                .batch_item_failures
                .iter()
                .any(|f| f.item_identifier == message.message_id);
            if failed {
                let queue = Arc::clone(&queue);
                let hidden =
                    queue.take_visibility(&message.message_id, PRIORITY_QUEUE.visibility_timeout);
                let delay = Duration::from_secs(u64::from(hidden));
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    queue.release(message, max_receives);
                });
            }
        }
    }
}

fn to_record(message: &QueuedMessage) -> SqsMessage {
    let mut record = SqsMessage::default();
    record.message_id = Some(message.message_id.clone());
    record.body = Some(message.body.clone());
    record.receipt_handle = Some(message.message_id.clone());
    record.event_source = Some("oes-local:memory".into());
    record.attributes.insert(
        "ApproximateReceiveCount".into(),
        message.receive_count.to_string(),
    );
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use oes_domain::email::OutgoingEmail;
    use oes_domain::email::{EmailJob, EmailTemplate};
    use oes_domain::ports::{EmailQueue, MailError, Mailer};
    use std::sync::Mutex;

    /// SES at a few milliseconds per email, recording the order of what it sent.
    #[derive(Default)]
    struct SlowMailer(Mutex<Vec<String>>);

    #[async_trait]
    impl Mailer for SlowMailer {
        async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
            tokio::time::sleep(Duration::from_millis(5)).await;
            let mut sent = self
                .0
                .lock()
                .map_err(|e| MailError::Transient(e.to_string()))?;
            sent.push(email.subject.clone());
            Ok(format!("m{}", sent.len()))
        }
    }

    fn job(template: EmailTemplate) -> EmailJob {
        EmailJob::new(Email::parse("ada@example.com").expect("valid"), template, 0)
    }

    #[tokio::test]
    async fn a_verification_email_overtakes_a_backlog_of_bulk_emails() {
        let queue = MemoryQueue::new();
        let mailer = Arc::new(SlowMailer::default());
        let worker = Worker::new(
            WorkerAdapters {
                mailer: mailer.clone(),
                jobs: Arc::new(MemoryJobs::default()),
                control: queue.clone(),
            },
            "http://localhost:3000",
            RetryPolicy::default(),
            5,
            Arc::new(SystemClock),
        );
        for i in 0..60 {
            let notice = EmailTemplate::Generic {
                subject: format!("Newsletter {i}"),
                text: "News".into(),
            };
            queue.enqueue(&job(notice)).await.expect("queued");
        }
        let drainer = tokio::spawn(drain(queue.clone(), worker));
        // The worker is busy with the bulk backlog when the account email arrives.
        while mailer.0.lock().map(|s| s.len()).unwrap_or(0) < 5 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let verification = EmailTemplate::Verification {
            name: "Ada".into(),
            token: Secret::new("token"),
        };
        queue.enqueue(&job(verification)).await.expect("queued");
        while mailer.0.lock().map(|s| s.len()).unwrap_or(0) < 61 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        drainer.abort();
        let sent = mailer.0.lock().map(|s| s.clone()).unwrap_or_default();
        let position = sent
            .iter()
            .position(|s| s == "Confirm your email address")
            .expect("the verification email was sent");
        // At most the batch in hand when it arrived (10) plus one more goes before it.
        assert!(
            position <= 20,
            "sent {position}th of {}: {sent:?}",
            sent.len()
        );
    }
}
