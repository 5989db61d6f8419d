//! Long waits of the email pipeline, told with the simulated clock over the in-memory twins (the
//! queue twin keeps SQS's redrive policy: a message received `maxReceiveCount` times moves to the
//! dead-letter queue on its own). Each was a defect of issue 11:
//!
//! - a paused account, a spent quota, or a ledger that cannot be reached for an hour pushed every
//!   message into the dead-letter queue without a reason (defect 4);
//! - `max_attempts` above the queue's `maxReceiveCount` could never happen (defect 4);
//! - the default retry budget was seconds: a short SES outage dead-lettered mail (defect 5).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use email_worker::Worker;
use oes_adapters::memory::{MemoryJobs, MemoryQueues};
use oes_domain::clock::Clock;
use oes_domain::email::{EmailJob, EmailTemplate, OutgoingEmail};
use oes_domain::pipeline::{EmailLanes, QueueAdmin};
use oes_domain::ports::{
    Claim, JobConflict, JobLedger, JobRecord, JobStatus, MailError, Mailer, Outcome, QueueName,
    StoreError, StoreUnavailable,
};
use oes_domain::producer::EmailProducer;
use oes_domain::security::Secret;
use oes_domain::user::Email;
use oes_runtime::config::RetryPolicy;
use oes_runtime::event_source::EventSource;
use oes_runtime::wiring::WorkerAdapters;
use oes_sim::clock::SimClock;

const START: i64 = 1_800_000_000;

/// SES answering from a rule over the time since the start; counts what it accepted.
struct Ses {
    rule: Box<dyn Fn(i64) -> Option<MailError> + Send + Sync>,
    clock: Arc<SimClock>,
    sent: Mutex<Vec<String>>,
}

#[async_trait]
impl Mailer for Ses {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
        if let Some(error) = (self.rule)(self.clock.now() - START) {
            return Err(error);
        }
        let mut sent = self.sent.lock().expect("lock");
        sent.push(email.to.as_str().to_owned());
        Ok(format!("ses-{}", sent.len()))
    }
}

/// The ledger, unreachable for claims during the first `down_for` seconds.
struct Ledger {
    inner: MemoryJobs,
    clock: Arc<SimClock>,
    down_for: i64,
}

fn unreachable() -> StoreUnavailable {
    StoreUnavailable::new("test ledger", "unreachable")
}

#[async_trait]
impl JobLedger for Ledger {
    fn record_lifetime_seconds(&self) -> Option<i64> {
        self.inner.record_lifetime_seconds()
    }
    async fn record_queued(&self, job: &EmailJob, now: i64) -> Result<(), StoreError<JobConflict>> {
        self.inner.record_queued(job, now).await
    }
    async fn claim(
        &self,
        job: &EmailJob,
        now: i64,
        lease: i64,
    ) -> Result<Claim, StoreError<JobConflict>> {
        if self.clock.now() - START < self.down_for {
            return Err(unreachable().into());
        }
        self.inner.claim(job, now, lease).await
    }
    async fn finish(
        &self,
        job_id: &str,
        outcome: Outcome,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        self.inner.finish(job_id, outcome, now).await
    }
    async fn requeue(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        self.inner.requeue(job_id, now).await
    }

    async fn purged(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        self.inner.purged(job_id, now).await
    }
    async fn unqueued(
        &self,
        job_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        self.inner.unqueued(job_id, reason, now).await
    }
    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StoreUnavailable> {
        self.inner.get(job_id).await
    }
}

struct Pipeline {
    queues: Arc<MemoryQueues>,
    ledger: Arc<Ledger>,
    ses: Arc<Ses>,
    producer: EmailProducer,
    worker: Worker,
    clock: Arc<SimClock>,
}

impl Pipeline {
    fn new(
        rule: impl Fn(i64) -> Option<MailError> + Send + Sync + 'static,
        ledger_down_for: i64,
    ) -> Self {
        let clock = Arc::new(SimClock::at(START));
        let queues = Arc::new(MemoryQueues::named("scenario"));
        let ledger = Arc::new(Ledger {
            inner: MemoryJobs::default(),
            clock: clock.clone(),
            down_for: ledger_down_for,
        });
        let ses = Arc::new(Ses {
            rule: Box::new(rule),
            clock: clock.clone(),
            sent: Mutex::default(),
        });
        let lanes = Arc::new(EmailLanes::new(queues.clone()));
        let producer = EmailProducer::new(lanes.clone(), ledger.clone(), clock.clone());
        let adapters = WorkerAdapters {
            mailer: ses.clone(),
            jobs: ledger.clone(),
            control: lanes,
        };
        let worker = Worker::new(
            adapters,
            "https://exams.example",
            RetryPolicy::default(),
            5,
            clock.clone(),
        )
        .with_jitter(Arc::new(|| 0));
        Self {
            queues,
            ledger,
            ses,
            producer,
            worker,
            clock,
        }
    }

    async fn enqueue(&self, max_attempts: Option<u32>) -> String {
        let template = EmailTemplate::Verification {
            name: "Ada".into(),
            token: Secret::new("token"),
            choose_password: false,
        };
        let mut job = EmailJob::new(
            Email::parse("ada@example.com").expect("valid"),
            template,
            self.clock.now(),
        );
        if let Some(n) = max_attempts {
            job = job.with_max_attempts(n).expect("valid");
        }
        self.producer.enqueue(job).await.expect("queued")
    }

    /// Runs the worker on the priority lane as its event source mapping would, for `seconds` of
    /// simulated time, polling every 5 s.
    async fn run_for(&self, seconds: u64) {
        let source =
            EventSource::new(self.queues.clone(), QueueName::Priority).with_wait(Duration::ZERO);
        for _ in 0..seconds / 5 {
            source
                .poll_once(|event| async {
                    Ok::<_, Infallible>(self.worker.handle_batch(event).await)
                })
                .await
                .expect("poll");
            tokio::time::advance(Duration::from_secs(5)).await;
        }
    }

    async fn dead_letters(&self) -> usize {
        QueueAdmin::new(self.queues.clone())
            .dead_letters(100)
            .await
            .expect("list")
            .len()
    }

    async fn record(&self, job_id: &str) -> JobRecord {
        self.ledger
            .get(job_id)
            .await
            .expect("read")
            .expect("recorded")
    }

    fn sent(&self) -> usize {
        self.ses.sent.lock().expect("lock").len()
    }

    /// After `hours` of trouble and one more hour: sent once, nothing on the dead-letter queue.
    async fn assert_sent_once_after(&self, job_id: &str, seconds: u64) {
        self.run_for(seconds + 3_600).await;
        assert_eq!(
            self.dead_letters().await,
            0,
            "nothing went to the dead-letter queue"
        );
        assert_eq!(self.sent(), 1, "sent once");
        let record = self.record(job_id).await;
        assert_eq!(record.status, JobStatus::Sent, "{record:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_paused_account_for_two_hours_dead_letters_nothing_and_the_mail_goes_out_after() {
    let pipeline = Pipeline::new(
        |t| (t < 7_200).then(|| MailError::AccountPaused("SendingPausedException".into())),
        0,
    );
    let job = pipeline.enqueue(None).await;
    pipeline.assert_sent_once_after(&job, 7_200).await;
    assert_eq!(
        pipeline.record(&job).await.attempts,
        1,
        "the pause used no attempt"
    );
}

#[tokio::test(start_paused = true)]
async fn a_ledger_unreachable_for_an_hour_dead_letters_nothing() {
    let pipeline = Pipeline::new(|_| None, 3_600);
    let job = pipeline.enqueue(None).await;
    pipeline.assert_sent_once_after(&job, 3_600).await;
}

#[tokio::test(start_paused = true)]
async fn a_fifteen_minute_ses_outage_with_the_default_budget_dead_letters_nothing() {
    let pipeline = Pipeline::new(
        |t| (t < 900).then(|| MailError::Transient("ServiceUnavailable".into())),
        0,
    );
    let job = pipeline.enqueue(None).await;
    pipeline.assert_sent_once_after(&job, 900).await;
}

#[tokio::test(start_paused = true)]
async fn a_job_gets_every_attempt_it_asked_for_beyond_the_queues_receive_count() {
    let failures = Arc::new(Mutex::new(0u32));
    let counted = failures.clone();
    let pipeline = Pipeline::new(
        move |_| {
            let mut n = counted.lock().expect("lock");
            *n += 1;
            (*n < 10).then(|| MailError::Transient("Throttling".into()))
        },
        0,
    );
    let job = pipeline.enqueue(Some(10)).await;
    pipeline.assert_sent_once_after(&job, 3 * 3_600).await;
    assert_eq!(
        pipeline.record(&job).await.attempts,
        10,
        "the tenth attempt sent it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_spent_daily_quota_uses_no_attempt_and_dead_letters_nothing() {
    let pipeline = Pipeline::new(
        |t| (t < 3 * 3_600).then(|| MailError::QuotaExceeded("LimitExceededException".into())),
        0,
    );
    let job = pipeline.enqueue(Some(1)).await;
    pipeline.assert_sent_once_after(&job, 3 * 3_600).await;
    assert_eq!(
        pipeline.record(&job).await.attempts,
        1,
        "the quota used no attempt"
    );
}
