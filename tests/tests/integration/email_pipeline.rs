//! The email pipeline against real SQS, SES v2 and DynamoDB (in the emulator): at most one email
//! per job whatever the deliveries, backoff through visibility, permanent failures and poison
//! messages in the dead-letter queue, exhausted attempts and redrive.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsEvent;
use email_worker::Worker;
use oes_adapters::ses::SesMailer;
use oes_domain::clock::{Clock, SystemClock};
use oes_domain::email::OutgoingEmail;
use oes_domain::pipeline::{EmailLanes, QueueAdmin, redrive};
use oes_domain::ports::{
    Delivery, JobStatus, MailError, Mailer, QueueControl, QueueError, QueueName,
};
use oes_runtime::config::RetryPolicy;
use oes_runtime::event_source::EventSource;
use oes_runtime::wiring::WorkerAdapters;
use oes_tests::{TestEnv, ses_messages_to, verification_job};

/// Receives one batch from the priority lane without running the worker.
async fn receive(env: &TestEnv) -> SqsEvent {
    let source =
        EventSource::new(env.sqs_queues(), QueueName::Priority).with_wait(Duration::from_secs(5));
    let mut captured = None;
    source
        .poll_once(|event| {
            captured = Some(event);
            async {
                Err::<aws_lambda_events::sqs::SqsBatchResponse, _>("leave the batch on the queue")
            }
        })
        .await
        .expect("poll");
    captured.expect("a batch")
}

/// Polls the priority lane once through `worker`, as the event source mapping would.
async fn poll(env: &TestEnv, worker: &Worker) -> usize {
    let source =
        EventSource::new(env.sqs_queues(), QueueName::Priority).with_wait(Duration::from_secs(5));
    source
        .poll_once(|event| async { Ok::<_, Infallible>(worker.handle_batch(event).await) })
        .await
        .expect("poll")
}

fn queues(env: &TestEnv) -> QueueAdmin {
    QueueAdmin::new(env.sqs_queues())
}

async fn ledger_status(env: &TestEnv, job_id: &str) -> (JobStatus, u32, Option<String>) {
    let jobs = WorkerAdapters::aws(&env.clients, &env.worker_config()).jobs;
    let record = jobs.get(job_id).await.expect("read").expect("a job record");
    (record.status, record.attempts, record.last_error)
}

#[tokio::test]
async fn the_same_message_delivered_twice_sends_one_email() {
    let env = TestEnv::spawn().await;
    let to = env.recipient("twice");
    let job_id = env.enqueue(verification_job(&to)).await;
    let event = receive(&env).await;
    let worker = env.worker(None, RetryPolicy::default());
    for _ in 0..2 {
        let response = worker.handle_batch(event.clone()).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
    }
    assert_eq!(ses_messages_to(&env.endpoints.aws, &to).await.len(), 1);
    assert_eq!(ledger_status(&env, &job_id).await.0, JobStatus::Sent);
}

/// Two workers holding the same delivery. The race is decided by DynamoDB's atomic conditional
/// write; moto's server handles requests on several threads without locking its tables, so two
/// truly simultaneous claims could both pass *in the emulator*. The test therefore fixes the
/// interleaving that matters: worker A has claimed the job and is mid-send when B gets it.
#[tokio::test]
async fn two_workers_racing_on_one_job_send_one_email() {
    let env = TestEnv::spawn().await;
    let to = env.recipient("race");
    let job = verification_job(&to);
    env.enqueue(job.clone()).await;
    let event = receive(&env).await;
    let jobs = WorkerAdapters::aws(&env.clients, &env.worker_config()).jobs;

    // Worker A claims the job (and is about to call SES)...
    let now = oes_domain::clock::Clock::now(&SystemClock);
    let claim = jobs.claim(&job, now, 60).await.expect("claim");
    assert!(
        matches!(claim, oes_domain::ports::Claim::Acquired { attempt: 1 }),
        "{claim:?}"
    );
    // ...when worker B receives the same message: it must not send, and holds the job until
    // A's lease has passed (a fresh copy, delayed, on the lane).
    let b = env.worker(None, RetryPolicy::default());
    let response = b.handle_batch(event.clone()).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let lane = queues(&env).counts().await.expect("counts");
    assert_eq!(lane[0].delayed, 1, "B holds the job for later: {lane:?}");
    assert!(ses_messages_to(&env.endpoints.aws, &to).await.is_empty());

    // A finishes; B's redelivery is then acknowledged without a send.
    let mailer = SesMailer::new(env.clients.ses(), &env.provisioned.sender_email);
    let email = oes_domain::email::Renderer::new("https://exams.example.org").render(&job);
    let ses_message_id = mailer.send(&email).await.expect("A's send");
    jobs.finish(
        &job.job_id,
        oes_domain::ports::Outcome::Sent { ses_message_id },
        now,
    )
    .await
    .expect("A records the send");
    let response = b.handle_batch(event).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    assert_eq!(ses_messages_to(&env.endpoints.aws, &to).await.len(), 1);
}

#[tokio::test]
async fn a_rejected_email_fails_with_its_reason_and_goes_to_the_dead_letter_queue() {
    let env = TestEnv::spawn().await;
    let to = env.recipient("rejected");
    let job_id = env.enqueue(verification_job(&to)).await;
    // An unverified sender: SES v2 answers MessageRejected.
    let unverified = Arc::new(SesMailer::new(
        env.clients.ses(),
        "nobody@unverified.example",
    ));
    let worker = env.worker(Some(unverified), RetryPolicy::default());
    assert_eq!(poll(&env, &worker).await, 1);
    let (status, _, error) = ledger_status(&env, &job_id).await;
    assert_eq!(status, JobStatus::Failed);
    assert!(error.is_some_and(|e| e.contains("MessageRejected")));
    let dead = queues(&env).dead_letters(10).await.expect("list");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].job_id.as_deref(), Some(job_id.as_str()));
    assert!(
        dead[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("MessageRejected")),
        "{dead:?}"
    );
    let counts = queues(&env).counts().await.expect("counts");
    assert_eq!(
        (counts[0].visible, counts[0].in_flight),
        (0, 0),
        "not retried: {counts:?}"
    );
    assert!(ses_messages_to(&env.endpoints.aws, &to).await.is_empty());
}

/// Fails the first `failures` sends, then sends through the real SES adapter.
struct Flaky {
    failures: Mutex<u32>,
    inner: SesMailer,
}

#[async_trait]
impl Mailer for Flaky {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
        {
            let mut left = self
                .failures
                .lock()
                .map_err(|e| MailError::Transient(e.to_string()))?;
            if *left > 0 {
                *left -= 1;
                return Err(MailError::Transient("TooManyRequests (injected)".into()));
            }
        }
        self.inner.send(email).await
    }
}

/// The real SQS control, recording the waits it is asked for (holds and visibility changes).
struct Recording {
    waits: Mutex<Vec<u32>>,
    inner: EmailLanes,
}

#[async_trait]
impl QueueControl for Recording {
    async fn retry_after(&self, delivery: &Delivery, seconds: u32) -> Result<(), QueueError> {
        if let Ok(mut waits) = self.waits.lock() {
            waits.push(seconds);
        }
        self.inner.retry_after(delivery, seconds).await
    }

    async fn renew(
        &self,
        delivery: &Delivery,
        body: &str,
        delay_seconds: u32,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
        if let Ok(mut waits) = self.waits.lock() {
            waits.push(delay_seconds);
        }
        self.inner
            .renew(delivery, body, delay_seconds, attributes)
            .await
    }

    async fn dead_letter(
        &self,
        delivery: &Delivery,
        body: &str,
        reason: &str,
    ) -> Result<(), QueueError> {
        self.inner.dead_letter(delivery, body, reason).await
    }
}

fn flaky_worker(env: &TestEnv, failures: u32, retry: RetryPolicy) -> (Worker, Arc<Recording>) {
    let config = env.worker_config();
    let p = &env.provisioned;
    let control = Arc::new(Recording {
        waits: Mutex::new(Vec::new()),
        inner: EmailLanes::new(env.sqs_queues()),
    });
    let mut adapters = WorkerAdapters::aws(&env.clients, &config);
    adapters.mailer = Arc::new(Flaky {
        failures: Mutex::new(failures),
        inner: SesMailer::new(env.clients.ses(), &p.sender_email),
    });
    adapters.control = control.clone();
    let worker = Worker::new(
        adapters,
        &config.public_base_url,
        retry,
        5,
        Arc::new(SystemClock),
    );
    (worker, control)
}

#[tokio::test]
async fn transient_failures_back_off_with_growing_delays_then_send_once() {
    let env = TestEnv::spawn().await;
    let to = env.recipient("flaky");
    let job_id = env
        .enqueue(verification_job(&to).with_max_attempts(5).expect("valid"))
        .await;
    let retry = RetryPolicy {
        base_seconds: 1,
        ..RetryPolicy::default()
    };
    let (worker, control) = flaky_worker(&env, 2, retry);
    let mut deliveries = 0;
    while ses_messages_to(&env.endpoints.aws, &to).await.is_empty() {
        deliveries += poll(&env, &worker).await;
        assert!(deliveries <= 3, "more deliveries than failures + 1");
    }
    assert_eq!(deliveries, 3);
    let waits = control.waits.lock().expect("waits").clone();
    assert_eq!(waits.len(), 2, "one hold per failure: {waits:?}");
    assert!(
        (1..=2).contains(&waits[0]) && (2..=3).contains(&waits[1]),
        "growing: {waits:?}"
    );
    assert_eq!(ses_messages_to(&env.endpoints.aws, &to).await.len(), 1);
    assert_eq!(ledger_status(&env, &job_id).await.0, JobStatus::Sent);
}

#[tokio::test]
async fn exhausted_attempts_land_in_the_dead_letter_queue_and_a_redrive_delivers_once() {
    let env = TestEnv::spawn().await;
    let to = env.recipient("exhausted");
    let job_id = env
        .enqueue(verification_job(&to).with_max_attempts(1).expect("valid"))
        .await;
    let (worker, _) = flaky_worker(&env, 1, RetryPolicy::default());
    assert_eq!(poll(&env, &worker).await, 1);
    let (status, attempts, _) = ledger_status(&env, &job_id).await;
    assert_eq!((status, attempts), (JobStatus::Dead, 1));
    let dead = queues(&env).dead_letters(10).await.expect("list");
    let dead_jobs: Vec<_> = dead.iter().filter_map(|d| d.job_id.as_deref()).collect();
    assert_eq!(dead_jobs, [job_id.as_str()]);

    let jobs = WorkerAdapters::aws(&env.clients, &env.worker_config()).jobs;
    let mut progress = 0;
    // An operator's redrive, once the lease of the worker that dead-lettered it has run out.
    let lease = i64::from(RetryPolicy::default().lease_seconds);
    let after_the_lease = oes_domain::clock::ManualClock::at(SystemClock.now() + lease + 1);
    let report = redrive(
        queues(&env).queues(),
        jobs.as_ref(),
        &after_the_lease,
        None,
        None,
        |_| progress += 1,
    )
    .await
    .expect("redrive");
    assert_eq!((report.moved, report.skipped, progress), (1, 0, 1));
    assert_eq!(ledger_status(&env, &job_id).await.0, JobStatus::Queued);

    let (healthy, _) = flaky_worker(&env, 0, RetryPolicy::default());
    assert_eq!(poll(&env, &healthy).await, 1);
    assert_eq!(ses_messages_to(&env.endpoints.aws, &to).await.len(), 1);
    assert_eq!(ledger_status(&env, &job_id).await.0, JobStatus::Sent);
    // A second redrive of the same job (say, a stale copy) would not send again.
    assert_eq!(poll(&env, &healthy).await, 0);
}

#[tokio::test]
async fn an_undecodable_body_goes_to_the_dead_letter_queue_and_the_rest_of_the_batch_is_sent() {
    let env = TestEnv::spawn().await;
    let to = env.recipient("neighbour");
    env.clients
        .sqs()
        .send_message()
        .queue_url(&env.provisioned.priority_queue_url)
        .message_body("{\"v\":1,\"kind\":")
        .send()
        .await
        .expect("sent garbage");
    env.enqueue(verification_job(&to)).await;
    let worker = env.worker(None, RetryPolicy::default());
    let mut handled = 0;
    while handled < 2 {
        let got = poll(&env, &worker).await;
        assert!(got > 0, "both messages are received");
        handled += got;
    }
    assert_eq!(ses_messages_to(&env.endpoints.aws, &to).await.len(), 1);
    let dead = queues(&env).dead_letters(10).await.expect("list");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].job_id, None);
    assert!(
        dead[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("undecodable")),
        "{dead:?}"
    );
}

#[tokio::test]
async fn a_delay_of_900_seconds_is_accepted_and_901_refused() {
    let env = TestEnv::spawn().await;
    let to = env.recipient("later");
    env.enqueue(
        verification_job(&to)
            .with_delay(900)
            .expect("900 s is allowed"),
    )
    .await;
    let counts = queues(&env).counts().await.expect("counts");
    assert_eq!((counts[0].visible, counts[0].delayed), (0, 1), "{counts:?}");
    let error = verification_job(&to)
        .with_delay(901)
        .expect_err("901 s is refused");
    assert!(error.to_string().contains("900"), "{error}");
}
