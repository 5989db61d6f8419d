//! Issue 11's fault points on the real adapters — SQS, DynamoDB and SES v2 in the emulator — in a
//! small run beside the simulation (`tools/oes-sim`): a worker killed between the SES send and
//! the record, or after the record and before the delete; a dead-letter send refused; a `sent`
//! write refused until a receipt carries it; a job on its lane twice; a redrive run twice at once
//! and again. Each fault is injected by a wrapper around a real adapter, never by a fake one.
//!
//! The invariants checked after each: the job was accepted by SES exactly once (or, in the one
//! window the README documents, twice, and the test says so), or it is `failed`/`dead` with its
//! reason and its message on the dead-letter queue; a `sent` record holds the SES message id the
//! emulator shows; no record is left `queued`, `sending` or `retrying` with nothing on a queue
//! to carry it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use email_worker::{RECEIPT_ATTRIBUTE, Worker};
use oes_adapters::ses::SesMailer;
use oes_domain::clock::{Clock, SystemClock};
use oes_domain::email::{EmailJob, OutgoingEmail};
use oes_domain::pipeline::{EmailLanes, QueueAdmin, RedriveReport, redrive};
use oes_domain::ports::{
    Claim, Delivery, JobConflict, JobLedger, JobRecord, JobStatus, MailError, Mailer, NewMessage,
    Outcome, QueueControl, QueueError, QueueName, StoreError, StoreUnavailable,
};
use oes_runtime::config::RetryPolicy;
use oes_runtime::event_source::EventSource;
use oes_runtime::wiring::WorkerAdapters;
use oes_tests::{TestEnv, ses_messages_to, verification_job};

// ---- the job, the lane, the record ----------------------------------------------------------

async fn record(env: &TestEnv, job_id: &str) -> JobRecord {
    env.job_ledger()
        .get(job_id)
        .await
        .expect("read")
        .expect("a job record")
}

/// The ids of the SES messages the emulator accepted for `to`, in the order it accepted them.
/// (A dump of the emulator's whole state: seconds once it has grown, so once per test.)
async fn ses_ids(env: &TestEnv, to: &str) -> Vec<String> {
    ses_messages_to(&env.endpoints.aws, to)
        .await
        .iter()
        .map(|m| m["id"].as_str().expect("an SES message id").to_owned())
        .collect()
}

/// The priority lane's counts (the emulator's are exact).
async fn lane(env: &TestEnv) -> (i64, i64, i64) {
    let counts = env
        .sqs_queues()
        .counts(QueueName::Priority)
        .await
        .expect("counts");
    (counts.visible, counts.in_flight, counts.delayed)
}

fn admin(env: &TestEnv) -> QueueAdmin {
    QueueAdmin::new(env.sqs_queues())
}

/// The invariant of a job that was sent: the emulator accepted exactly the SES messages whose
/// ids the worker got back (`accepted`, in order), its record says `sent` with the last one, and
/// nothing of it is left on its lane.
async fn assert_recorded_as_sent(
    env: &TestEnv,
    job_id: &str,
    to: &str,
    accepted: &[String],
) -> JobRecord {
    assert_eq!(
        ses_ids(env, to).await,
        accepted,
        "what SES accepted for {to}"
    );
    let stored = record(env, job_id).await;
    assert_eq!(stored.status, JobStatus::Sent, "{stored:?}");
    assert_eq!(
        stored.ses_message_id.as_ref(),
        accepted.last(),
        "the record holds the id SES returned: {stored:?}"
    );
    assert_eq!(lane(env).await, (0, 0, 0), "nothing left on the lane");
    stored
}

// ---- driving the worker as the event source mapping does ------------------------------------

/// Polls the priority lane once through the event source, handing the batch to `handler`, and
/// returns the receipt handles of what it received. Records `handler` reports failed — or all,
/// when it errs, as when the invocation dies — stay on the lane.
async fn deliver<F, Fut>(env: &TestEnv, handler: F) -> Vec<String>
where
    F: FnOnce(SqsEvent) -> Fut,
    Fut: Future<Output = Result<SqsBatchResponse, String>>,
{
    let source =
        EventSource::new(env.sqs_queues(), QueueName::Priority).with_wait(Duration::from_secs(5));
    let mut receipts = Vec::new();
    let received = source
        .poll_once(|event| {
            receipts = event
                .records
                .iter()
                .filter_map(|r| r.receipt_handle.clone())
                .collect();
            handler(event)
        })
        .await
        .expect("poll");
    assert!(received > 0, "a batch was received");
    receipts
}

/// Ends the visibility timeout of these deliveries now: the queue redelivers them at once, as it
/// would after the timeout (12 minutes on the lanes).
async fn visible_again(env: &TestEnv, receipts: &[String]) {
    let queues = env.sqs_queues();
    for receipt in receipts {
        queues
            .change_visibility(QueueName::Priority, receipt, 0)
            .await
            .expect("visibility changed");
    }
}

/// Polls the priority lane once through `worker`; how many records it received.
async fn poll(env: &TestEnv, worker: &Worker) -> usize {
    EventSource::new(env.sqs_queues(), QueueName::Priority)
        .with_wait(Duration::from_secs(5))
        .poll_once(|event| async { Ok::<_, String>(worker.handle_batch(event).await) })
        .await
        .expect("poll")
}

/// Polls through `worker` until nothing is left on the lane (visible, in flight or delayed);
/// the records received. Fails after 20 s.
async fn drain(env: &TestEnv, worker: &Worker) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut received = 0;
    loop {
        let counts = lane(env).await;
        if counts == (0, 0, 0) {
            return received;
        }
        assert!(
            Instant::now() < deadline,
            "the lane did not drain: {counts:?}"
        );
        received += poll(env, worker).await;
    }
}

/// A worker over the real adapters with `mailer`, `jobs`, `control` replaced when given (each
/// replacement wraps a real adapter), `retry` and `clock`.
///
/// It handles the records of a batch one at a time. Two copies of one job in one batch, handled
/// at once, race on the ledger's conditional claim; DynamoDB decides that race atomically, but
/// moto evaluates a condition and applies the update without a lock, so both claims can pass
/// *in the emulator* (seen here: attempts 1 and 2 both acquired, two emails). That race is
/// `email_pipeline::two_workers_racing_on_one_job_send_one_email`'s subject, with the
/// interleaving fixed; here the copies come one after the other.
fn worker(
    env: &TestEnv,
    mailer: Option<Arc<dyn Mailer>>,
    jobs: Option<Arc<dyn JobLedger>>,
    control: Option<Arc<dyn QueueControl>>,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
) -> Worker {
    let config = env.worker_config();
    let mut adapters = WorkerAdapters::aws(&env.clients, &config);
    if let Some(mailer) = mailer {
        adapters.mailer = mailer;
    }
    if let Some(jobs) = jobs {
        adapters.jobs = jobs;
    }
    if let Some(control) = control {
        adapters.control = control;
    }
    Worker::new(adapters, &config.public_base_url, retry, 1, clock)
}

/// The system clock, `seconds` ahead: a worker that runs that much later.
struct Later(i64);

impl Clock for Later {
    fn now(&self) -> i64 {
        SystemClock.now() + self.0
    }
}

// ---- fault injection: wrappers around the real adapters -------------------------------------

/// The real SES adapter, keeping the ids SES returned; with `dies_after_send`, the invocation
/// never hears back from a send SES accepted (it hangs, and the test drops it: a worker killed
/// right after the send).
struct WatchedSes {
    inner: SesMailer,
    dies_after_send: bool,
    accepted: Mutex<Vec<String>>,
    sent: tokio::sync::Notify,
}

impl WatchedSes {
    fn new(env: &TestEnv, dies_after_send: bool) -> Arc<Self> {
        Arc::new(Self {
            inner: SesMailer::new(env.clients.ses(), &env.provisioned.sender_email),
            dies_after_send,
            accepted: Mutex::new(Vec::new()),
            sent: tokio::sync::Notify::new(),
        })
    }

    fn accepted(&self) -> Vec<String> {
        self.accepted.lock().expect("lock").clone()
    }
}

#[async_trait]
impl Mailer for WatchedSes {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
        let id = self.inner.send(email).await?;
        self.accepted.lock().expect("lock").push(id.clone());
        self.sent.notify_one();
        if self.dies_after_send {
            std::future::pending::<()>().await;
        }
        Ok(id)
    }
}

/// SES unreachable: every send fails transiently; the calls counted.
#[derive(Default)]
struct Unavailable(Mutex<u32>);

impl Unavailable {
    fn calls(&self) -> u32 {
        *self.0.lock().expect("lock")
    }
}

#[async_trait]
impl Mailer for Unavailable {
    async fn send(&self, _: &OutgoingEmail) -> Result<String, MailError> {
        *self.0.lock().expect("lock") += 1;
        Err(MailError::Transient("SES unreachable (injected)".into()))
    }
}

/// SES from a sender the emulator has not verified: every send is refused for real
/// (`MessageRejected`, a permanent failure).
fn rejecting_ses(env: &TestEnv) -> Arc<dyn Mailer> {
    Arc::new(SesMailer::new(
        env.clients.ses(),
        "nobody@unverified.example",
    ))
}

/// The real SQS lanes, refusing the first `refusals` dead-letter sends.
struct RefusesDeadLetters {
    inner: EmailLanes,
    refusals: Mutex<u32>,
}

#[async_trait]
impl QueueControl for RefusesDeadLetters {
    async fn retry_after(&self, delivery: &Delivery, seconds: u32) -> Result<(), QueueError> {
        self.inner.retry_after(delivery, seconds).await
    }

    async fn renew(
        &self,
        delivery: &Delivery,
        body: &str,
        delay_seconds: u32,
        attributes: &BTreeMap<String, String>,
    ) -> Result<(), QueueError> {
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
        {
            let mut left = self.refusals.lock().expect("lock");
            if *left > 0 {
                *left -= 1;
                return Err(QueueError {
                    context: "sending to the dead-letter queue",
                    source: "refused (injected)".into(),
                });
            }
        }
        self.inner.dead_letter(delivery, body, reason).await
    }
}

/// The real DynamoDB ledger, refusing the first `refusals` writes of a `sent` outcome.
struct RefusesSentWrites {
    inner: Arc<dyn JobLedger>,
    refusals: Mutex<u32>,
}

#[async_trait]
impl JobLedger for RefusesSentWrites {
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
        lease_seconds: i64,
    ) -> Result<Claim, StoreError<JobConflict>> {
        self.inner.claim(job, now, lease_seconds).await
    }

    async fn finish(
        &self,
        job_id: &str,
        outcome: Outcome,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        if matches!(outcome, Outcome::Sent { .. }) {
            let mut left = self.refusals.lock().expect("lock");
            if *left > 0 {
                *left -= 1;
                return Err(StoreError::unavailable(
                    "finishing a job",
                    "refused (injected)",
                ));
            }
        }
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

/// A redrive of every dead letter by an operator, once the lease of the worker that dead-lettered
/// them has run out (until then a job that just ended keeps it, and is not requeued).
async fn redrive_all(env: &TestEnv) -> RedriveReport {
    let queues = env.sqs_queues();
    let jobs = env.job_ledger();
    let lease = i64::from(RetryPolicy::default().lease_seconds);
    let after_the_lease = oes_domain::clock::ManualClock::at(SystemClock.now() + lease + 1);
    redrive(
        queues.as_ref(),
        jobs.as_ref(),
        &after_the_lease,
        None,
        None,
        |_| {},
    )
    .await
    .expect("redrive")
}

// ---- the scenarios --------------------------------------------------------------------------

/// The one window the README documents: the worker dies after SES accepted the email and before
/// any record could say so. The record still says `sending`; once the lease has run out, the
/// redelivery claims the job again and SES gets it a second time. Two emails are expected here —
/// and only here — and the record ends `sent` with the second send's id.
#[tokio::test]
async fn a_worker_killed_between_the_ses_send_and_the_record_sends_again_after_the_lease() {
    let env = TestEnv::spawn().await;
    let to = env.recipient("killed-mid-send");
    let job_id = env.enqueue(verification_job(&to)).await;
    let retry = RetryPolicy::default();

    let dying = WatchedSes::new(&env, true);
    let a = worker(
        &env,
        Some(dying.clone()),
        None,
        None,
        retry,
        Arc::new(SystemClock),
    );
    let receipts = deliver(&env, |event| async {
        tokio::select! {
            response = a.handle_batch(event) => panic!("worker A was to die after the send: {response:?}"),
            () = dying.sent.notified() => Err("killed after SES accepted the email".to_owned()),
        }
    })
    .await;
    let first = dying.accepted();
    assert_eq!(first.len(), 1, "SES accepted A's send");
    let stored = record(&env, &job_id).await;
    assert_eq!(
        (stored.status, stored.ses_message_id.as_deref()),
        (JobStatus::Sending, None),
        "no record says sent"
    );
    assert_eq!(lane(&env).await, (0, 1, 0), "the message waits in flight");

    // The queue redelivers after its visibility timeout (12 min), long after A's lease (60 s):
    // B runs that much later.
    visible_again(&env, &receipts).await;
    let healthy = WatchedSes::new(&env, false);
    let b = worker(
        &env,
        Some(healthy.clone()),
        None,
        None,
        retry,
        Arc::new(Later(i64::from(retry.lease_seconds) + 1)),
    );
    assert_eq!(poll(&env, &b).await, 1);

    let second = healthy.accepted();
    assert_eq!(second.len(), 1, "B sent it again");
    // Two emails — the documented window — and the record holds the second one's id.
    let both = [first[0].clone(), second[0].clone()];
    let stored = assert_recorded_as_sent(&env, &job_id, &to, &both).await;
    assert_eq!(stored.attempts, 2);
}

#[tokio::test]
async fn a_worker_killed_after_recording_sent_and_before_the_delete_sends_nothing_more() {
    let env = TestEnv::spawn().await;
    let to = env.recipient("killed-before-delete");
    let job_id = env.enqueue(verification_job(&to)).await;
    let ses = WatchedSes::new(&env, false);
    let a = worker(
        &env,
        Some(ses.clone()),
        None,
        None,
        RetryPolicy::default(),
        Arc::new(SystemClock),
    );
    // A finishes the record; the invocation dies before the event source deletes the message.
    let receipts = deliver(&env, |event| async {
        let response = a.handle_batch(event).await;
        assert!(response.batch_item_failures.is_empty(), "{response:?}");
        Err("killed before the delete".to_owned())
    })
    .await;
    assert_eq!(record(&env, &job_id).await.status, JobStatus::Sent);
    assert_eq!(lane(&env).await, (0, 1, 0), "the message waits in flight");

    visible_again(&env, &receipts).await;
    assert_eq!(poll(&env, &a).await, 1, "redelivered");

    assert_eq!(ses.accepted().len(), 1, "the redelivery sent nothing");
    assert_recorded_as_sent(&env, &job_id, &to, &ses.accepted()).await;
}

/// SES refuses the job for real (a sender the emulator has not verified: `MessageRejected`);
/// the first dead-letter send is refused by a wrapper around the real lanes.
#[tokio::test]
async fn a_refused_dead_letter_send_keeps_the_job_until_its_redelivery_sets_it_aside() {
    let env = TestEnv::spawn().await;
    let to = env.recipient("dlq-refused");
    let job_id = env.enqueue(verification_job(&to)).await;
    let control = Arc::new(RefusesDeadLetters {
        inner: EmailLanes::new(env.sqs_queues()),
        refusals: Mutex::new(1),
    });
    let w = worker(
        &env,
        Some(rejecting_ses(&env)),
        None,
        Some(control.clone()),
        RetryPolicy::default(),
        Arc::new(SystemClock),
    );

    let receipts = deliver(&env, |event| async {
        let response = w.handle_batch(event).await;
        assert_eq!(
            response.batch_item_failures.len(),
            1,
            "kept for redelivery: {response:?}"
        );
        Ok(response)
    })
    .await;
    assert_eq!(
        *control.refusals.lock().expect("lock"),
        0,
        "the refusal was used"
    );
    let stored = record(&env, &job_id).await;
    assert_eq!(stored.status, JobStatus::Retrying, "still open: {stored:?}");
    assert!(admin(&env).dead_letters(10).await.expect("list").is_empty());
    assert_eq!(lane(&env).await, (0, 1, 0), "its message carries it");

    // Its backoff ends now instead of in 10–20 s: redelivered to a worker that runs then.
    visible_again(&env, &receipts).await;
    let later = worker(
        &env,
        Some(rejecting_ses(&env)),
        None,
        Some(control.clone()),
        RetryPolicy::default(),
        Arc::new(Later(60)),
    );
    assert_eq!(poll(&env, &later).await, 1, "redelivered");

    let stored = record(&env, &job_id).await;
    assert_eq!(stored.status, JobStatus::Failed, "{stored:?}");
    assert!(
        stored
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("MessageRejected")),
        "{stored:?}"
    );
    let dead = admin(&env).dead_letters(10).await.expect("list");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].job_id.as_deref(), Some(job_id.as_str()));
    assert!(
        dead[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("MessageRejected")),
        "{dead:?}"
    );
    assert_eq!(lane(&env).await, (0, 0, 0), "not left on the lane");
    assert!(ses_ids(&env, &to).await.is_empty(), "never sent");
}

#[tokio::test]
async fn a_sent_email_the_ledger_refuses_to_record_travels_as_a_receipt_and_is_not_sent_again() {
    let env = TestEnv::spawn().await;
    let to = env.recipient("receipt");
    let job_id = env.enqueue(verification_job(&to)).await;
    let ses = WatchedSes::new(&env, false);
    // Every try of the worker's (three) at writing `sent` is refused.
    let jobs = Arc::new(RefusesSentWrites {
        inner: env.job_ledger(),
        refusals: Mutex::new(3),
    });
    // A 1 s backoff base, so the receipt comes back within 1–2 s instead of 10–20 s.
    let retry = RetryPolicy {
        base_seconds: 1,
        ..RetryPolicy::default()
    };
    let w = worker(
        &env,
        Some(ses.clone()),
        Some(jobs.clone()),
        None,
        retry,
        Arc::new(SystemClock),
    );

    assert_eq!(poll(&env, &w).await, 1);
    assert_eq!(
        *jobs.refusals.lock().expect("lock"),
        0,
        "three refusals used"
    );
    let accepted = ses.accepted();
    assert_eq!(accepted.len(), 1);
    assert_eq!(record(&env, &job_id).await.status, JobStatus::Sending);

    // The receipt is on the lane, carrying the SES message id; its delivery records `sent`.
    let mut receipt_id = None;
    deliver(&env, |event| {
        assert_eq!(event.records.len(), 1, "only the receipt is on the lane");
        receipt_id = event.records.iter().find_map(|r| {
            r.message_attributes
                .get(RECEIPT_ATTRIBUTE)
                .and_then(|a| a.string_value.clone())
        });
        async { Ok(w.handle_batch(event).await) }
    })
    .await;
    assert_eq!(
        receipt_id.as_ref(),
        Some(&accepted[0]),
        "the receipt's {RECEIPT_ATTRIBUTE}"
    );

    assert_eq!(ses.accepted().len(), 1, "the receipt sent nothing");
    assert_recorded_as_sent(&env, &job_id, &to, &accepted).await;
}

#[tokio::test]
async fn a_job_on_its_lane_twice_sends_one_email() {
    let env = TestEnv::spawn().await;
    let to = env.recipient("twice");
    let job = verification_job(&to);
    let job_id = env.enqueue(job.clone()).await;
    // The same body again, as SQS may deliver a message twice.
    let copy = NewMessage {
        body: job.encode(),
        delay_seconds: 0,
        attributes: BTreeMap::from([
            ("job_id".to_owned(), job.job_id.clone()),
            ("kind".to_owned(), job.template.kind().to_owned()),
        ]),
    };
    env.sqs_queues()
        .send(QueueName::Priority, &copy)
        .await
        .expect("sent again");
    let ses = WatchedSes::new(&env, false);
    let w = worker(
        &env,
        Some(ses.clone()),
        None,
        None,
        RetryPolicy::default(),
        Arc::new(SystemClock),
    );

    let received = drain(&env, &w).await;
    assert_eq!(received, 2, "both copies were delivered");
    assert_eq!(ses.accepted().len(), 1, "one email");
    assert_recorded_as_sent(&env, &job_id, &to, &ses.accepted()).await;
}

/// A job whose send failed waits for its retry time whichever copy of it comes first: a second
/// copy (SQS delivering twice, the sweep queueing a result email again) is held until then,
/// spending no attempt. Before, the copy claimed the retrying job at once and sent again: two
/// copies, each on its own backoff, spent one count, and a short SES outage used up every
/// attempt of a job (here its last: it ended dead, its letter on the dead-letter queue).
#[tokio::test]
async fn a_second_copy_of_a_job_waiting_to_retry_waits_with_it() {
    let env = TestEnv::spawn().await;
    let to = env.recipient("retry-twice");
    let job = verification_job(&to).with_max_attempts(2).expect("valid");
    let job_id = env.enqueue(job.clone()).await;
    let ses = Arc::new(Unavailable::default());
    let w = worker(
        &env,
        Some(ses.clone()),
        None,
        None,
        RetryPolicy::default(),
        Arc::new(SystemClock),
    );
    assert_eq!(poll(&env, &w).await, 1);
    assert_eq!(ses.calls(), 1);
    let retrying = record(&env, &job_id).await;
    assert_eq!(
        (retrying.status, retrying.attempts),
        (JobStatus::Retrying, 1)
    );

    let copy = NewMessage {
        body: job.encode(),
        delay_seconds: 0,
        attributes: BTreeMap::from([("job_id".to_owned(), job.job_id.clone())]),
    };
    env.sqs_queues()
        .send(QueueName::Priority, &copy)
        .await
        .expect("sent again");
    assert_eq!(poll(&env, &w).await, 1, "the copy, not the held one");
    assert_eq!(ses.calls(), 1, "the copy waited for the retry time");
    assert_eq!(lane(&env).await, (0, 0, 2), "both copies held, delayed");
    let record = record(&env, &job_id).await;
    assert_eq!((record.status, record.attempts), (JobStatus::Retrying, 1));
    let dead = admin(&env).dead_letters(10).await.expect("list");
    assert!(dead.is_empty(), "{dead:?}");
}

/// The job is dead-lettered for real (SES refuses the unverified sender), then redriven by two
/// redrives at once and by a third after them.
#[tokio::test]
async fn redriving_one_dead_letter_twice_at_once_and_again_sends_one_email() {
    let env = TestEnv::spawn().await;
    let to = env.recipient("redriven");
    let job_id = env.enqueue(verification_job(&to)).await;
    let retry = RetryPolicy::default();
    let refused = worker(
        &env,
        Some(rejecting_ses(&env)),
        None,
        None,
        retry,
        Arc::new(SystemClock),
    );
    assert_eq!(poll(&env, &refused).await, 1);
    assert_eq!(record(&env, &job_id).await.status, JobStatus::Failed);
    let dead = admin(&env).dead_letters(10).await.expect("list");
    assert_eq!(dead.len(), 1, "{dead:?}");

    let (one, two) = tokio::join!(redrive_all(&env), redrive_all(&env));
    let three = redrive_all(&env).await;
    let moved = one.moved + two.moved + three.moved;
    assert!(
        moved >= 1,
        "the letter went back to its lane: {one:?} {two:?} {three:?}"
    );
    assert_eq!(three.moved, 0, "nothing left to redrive: {three:?}");
    assert_eq!(record(&env, &job_id).await.status, JobStatus::Queued);
    assert!(admin(&env).dead_letters(10).await.expect("list").is_empty());

    let ses = WatchedSes::new(&env, false);
    let healthy = worker(
        &env,
        Some(ses.clone()),
        None,
        None,
        retry,
        Arc::new(SystemClock),
    );
    let received = drain(&env, &healthy).await;
    assert!(received >= moved, "every copy on the lane was delivered");
    assert_eq!(
        ses.accepted().len(),
        1,
        "one email: {one:?} {two:?} {three:?}"
    );
    assert_recorded_as_sent(&env, &job_id, &to, &ses.accepted()).await;
    assert!(
        admin(&env).dead_letters(10).await.expect("list").is_empty(),
        "the dead-letter queue is empty"
    );
}
