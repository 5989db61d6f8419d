//! The worker's event source mappings: one poller per lane, as in AWS (each lane has its own
//! mapping, so account emails never wait behind a backlog of notifications). A lane paused in
//! `lanes` (the admin API's `POST /admin/lanes/{lane}/pause`) is not received from, as a disabled
//! mapping, until it is resumed.

use std::sync::Arc;

use email_worker::Worker;
use oes_domain::email::Lane;
use oes_domain::ports::{LaneSwitch, MessageQueues};
use oes_runtime::event_source::EventSource;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Starts a poller on each lane of `queues` that hands its batches to `worker` while `lanes`
/// says the lane runs; they run until `stop` (each finishing the batch it holds).
pub fn spawn(
    queues: &Arc<dyn MessageQueues>,
    lanes: &Arc<dyn LaneSwitch>,
    worker: &Worker,
    stop: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    Lane::ALL
        .into_iter()
        .map(|lane| {
            let worker = worker.clone();
            let source =
                EventSource::new(queues.clone(), lane.into()).with_switch(lanes.clone(), lane);
            let stop = stop.clone();
            tokio::spawn(async move {
                source
                    .run(
                        |event| {
                            let worker = worker.clone();
                            async move { worker.handle_batch(event).await }
                        },
                        stop,
                    )
                    .await;
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use async_trait::async_trait;
    use oes_adapters::memory::{MemoryJobs, MemoryLanes, MemoryQueues};
    use oes_domain::clock::SystemClock;
    use oes_domain::email::OutgoingEmail;
    use oes_domain::email::{EmailJob, EmailTemplate};
    use oes_domain::pipeline::EmailLanes;
    use oes_domain::ports::{EmailQueue, MailError, Mailer};
    use oes_domain::security::Secret;
    use oes_domain::user::Email;
    use oes_runtime::config::RetryPolicy;
    use oes_runtime::wiring::WorkerAdapters;
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
        let queues: Arc<dyn MessageQueues> = MemoryQueues::new();
        let queue = EmailLanes::new(queues.clone());
        let mailer = Arc::new(SlowMailer::default());
        let worker = Worker::new(
            WorkerAdapters {
                mailer: mailer.clone(),
                jobs: Arc::new(MemoryJobs::default()),
                control: Arc::new(queue.clone()),
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
        let lanes: Arc<dyn LaneSwitch> = Arc::new(MemoryLanes::default());
        let stop = CancellationToken::new();
        let pollers = spawn(&queues, &lanes, &worker, &stop);
        // The worker is busy with the bulk backlog when the account email arrives.
        while mailer.0.lock().map(|s| s.len()).unwrap_or(0) < 5 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let verification = EmailTemplate::Verification {
            name: "Ada".into(),
            token: Secret::new("token"),
            choose_password: false,
        };
        queue.enqueue(&job(verification)).await.expect("queued");
        while mailer.0.lock().map(|s| s.len()).unwrap_or(0) < 61 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        pollers.iter().for_each(tokio::task::JoinHandle::abort);
        let sent = mailer.0.lock().map(|s| s.clone()).unwrap_or_default();
        let position = sent
            .iter()
            .position(|s| s == "Confirm your email address")
            .expect("the verification email was sent");
        // Its lane has its own poller: at most the bulk batches in hand when it arrived go first.
        assert!(
            position <= 20,
            "sent {position}th of {}: {sent:?}",
            sent.len()
        );
    }
}
