//! When SQS refuses the email job, sign-up answers 503 and leaves nothing behind that blocks the
//! user: signing up again works once the queue is back. When SQS takes the job but the answer
//! is an error, the email still goes once.

use std::sync::Arc;

use oes_adapters::memory::{MemoryJobs, MemoryQueues};
use oes_domain::clock::ManualClock;
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::pipeline::EmailLanes;
use oes_domain::ports::{Claim, EmailQueue, JobLedger, JobStatus, QueueError};
use oes_domain::producer::{EmailProducer, EnqueueError};
use oes_domain::user::Email;
use oes_tests::{TestEnv, call};
use serde_json::json;

/// The real adapters for `env`, their priority lane a queue that does not exist: SQS refuses
/// every job sent to it.
fn refusing_priority_lane(env: &TestEnv) -> oes_runtime::wiring::ApiAdapters {
    let mut broken = env.api_config();
    broken.resources.priority_queue_url =
        format!("{}/000000000000/does-not-exist", env.endpoints.aws);
    oes_runtime::wiring::ApiAdapters::aws(&env.clients, &broken).expect("adapters")
}

#[tokio::test]
async fn a_refused_email_job_rolls_the_sign_up_back() {
    let env = TestEnv::spawn().await;
    let adapters = refusing_priority_lane(&env);
    let users = adapters.users.clone();
    let outage = oes_tests::auth_over(
        adapters,
        std::sync::Arc::new(oes_domain::clock::SystemClock),
    );
    let email = format!("outage+{}@example.com", env.prefix);
    let body = json!({"email": email, "password": "correct horse", "name": "Ada"}).to_string();

    let (status, error) = call(&outage, "POST", "/auth/register", Some(&body), None).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (503, Some("email_queue_unavailable")),
        "{error}"
    );
    // Rolled back: a sign-up after it is a first sign-up, not one for a pending address (which
    // keeps neither password nor name, and would answer 202 all the same).
    let address = Email::parse(&email).expect("an address");
    let left = users.find_by_email(&address).await.expect("the store read");
    assert!(
        left.is_none(),
        "the refused sign-up left its account: {left:?}"
    );

    // Asked again and again through the outage: each refused sign-up gives back what it took
    // of the mailbox's email budget (none was mailed), so the one after the outage is mailed.
    for _ in 0..auth_api::limits::EMAIL_PER_ADDRESS.max {
        let (status, _) = call(&outage, "POST", "/auth/register", Some(&body), None).await;
        assert_eq!(status, 503);
    }
    let healthy = env.auth_service();
    let (status, accepted) = call(&healthy, "POST", "/auth/register", Some(&body), None).await;
    assert_eq!(status, 202, "signing up again works: {accepted}");
    let account = users.find_by_email(&address).await.expect("the store read");
    assert!(
        account.is_some(),
        "the sign-up after the outage made its account (and mailed its link)"
    );
}

/// Lanes that take the job (it is on its lane) and then answer an error, as a send whose every
/// answer was lost does; with `taken`, a worker claims the job before that answer arrives.
struct TakenThenLost {
    lanes: EmailLanes,
    ledger: Arc<MemoryJobs>,
    taken: bool,
}

#[async_trait::async_trait]
impl EmailQueue for TakenThenLost {
    async fn enqueue(&self, job: &EmailJob) -> Result<(), QueueError> {
        self.lanes.enqueue(job).await?;
        if self.taken {
            let claim = self.ledger.claim(job, 101, 60).await.expect("claimed");
            assert!(matches!(claim, Claim::Acquired { .. }), "{claim:?}");
        }
        Err(QueueError {
            context: "sending an email job",
            source: "the test lost every answer".into(),
        })
    }
}

/// A send that answered an error after the queue took the job: if a worker has it already, the
/// job is queued (so its caller does not queue another, and the email goes once); if not, it is
/// recorded failed, and the copy on the lane is not sent when a worker gets it (the caller, told
/// it was not queued, may queue another).
#[tokio::test]
async fn a_job_the_queue_took_though_its_answer_was_an_error_is_sent_once() {
    for taken in [true, false] {
        let queues = MemoryQueues::new();
        let ledger = Arc::new(MemoryJobs::default());
        let lanes = TakenThenLost {
            lanes: EmailLanes::new(queues.clone()),
            ledger: ledger.clone(),
            taken,
        };
        let producer = EmailProducer::new(
            Arc::new(lanes),
            ledger.clone(),
            Arc::new(ManualClock::at(100)),
        );
        let job = EmailJob::new(
            Email::parse("ada@example.com").expect("valid"),
            EmailTemplate::Generic {
                subject: "Notice".into(),
                text: "Hello".into(),
            },
            100,
        );
        let queued = producer.enqueue(job.clone()).await;
        let record = ledger
            .get(&job.job_id)
            .await
            .expect("read")
            .expect("recorded");
        if taken {
            assert_eq!(
                queued.as_deref().ok(),
                Some(job.job_id.as_str()),
                "a worker has it: queued"
            );
            assert_eq!(record.status, JobStatus::Sending, "the worker's, untouched");
        } else {
            assert!(matches!(queued, Err(EnqueueError::Queue(_))), "{queued:?}");
            assert_eq!(record.status, JobStatus::Failed);
            let copy = ledger.claim(&job, 102, 60).await.expect("claimed");
            assert!(
                matches!(copy, Claim::Finished(_)),
                "the copy on the lane is not sent: {copy:?}"
            );
        }
        assert_eq!(
            oes_tests::take_waiting(&queues, 10).await.len(),
            1,
            "the job is on its lane"
        );
    }
}

/// While the queue refuses jobs, a reset request and a verification resend answer 202 as they
/// do for an address without an account ("202 always", README): a 503 only for an address
/// whose email could not be queued would tell, to anyone who asks, that the address has an
/// account. The failure is still logged and counted (`EnqueueFailures`).
#[tokio::test]
async fn reset_and_resend_answer_alike_for_every_address_while_the_queue_refuses() {
    use oes_domain::user::{Role, UserStatus};
    let env = TestEnv::spawn().await;
    let adapters = refusing_priority_lane(&env);
    let address = |who: &str| format!("{who}+{}@example.com", env.prefix);
    for (who, status) in [
        ("active", UserStatus::Active),
        ("pending", UserStatus::PendingVerification),
    ] {
        let user = oes_tests::user_with(&address(who), Role::Student, status, 1_000);
        adapters.users.create(&user).await.expect("seeded");
    }
    let outage = oes_tests::auth_over(adapters, Arc::new(oes_domain::clock::SystemClock));
    for (path, with_account) in [
        ("/auth/password-reset/request", "active"),
        ("/auth/resend-verification", "pending"),
    ] {
        let mut answers = Vec::new();
        for who in [with_account, "nobody"] {
            let body = json!({"email": address(who)}).to_string();
            answers.push(call(&outage, "POST", path, Some(&body), None).await);
        }
        assert_eq!(
            answers[0], answers[1],
            "{path}: with an account, then without"
        );
        assert_eq!(answers[0].0, 202, "{path}: {}", answers[0].1);
    }
}

/// While the queue refuses jobs, an email change answers 202 whether the new address is free
/// (its confirmation could not be queued) or another account's (nothing is sent there, ever):
/// a 503 for a free address alone would let any signed-in user tell, while SQS fails, which
/// addresses have accounts — the probe the reset and resend answers were closed to.
#[tokio::test]
async fn an_email_change_answers_alike_for_a_free_and_a_taken_address_while_the_queue_refuses() {
    use oes_domain::security::{JwtKeys, Password};
    use oes_domain::user::{Role, UserStatus};
    let env = TestEnv::spawn().await;
    let adapters = refusing_priority_lane(&env);
    let address = |who: &str| format!("{who}+{}@example.com", env.prefix);
    let mut mover = oes_tests::user_with(&address("mover"), Role::Student, UserStatus::Active, 1);
    let password = Password::parse("correct horse".into(), "password").expect("a password");
    mover.password_hash = oes_tests::cheap_hasher().hash(&password).expect("hashed");
    adapters.users.create(&mover).await.expect("seeded");
    let taken = oes_tests::user_with(&address("taken"), Role::Student, UserStatus::Active, 1);
    adapters.users.create(&taken).await.expect("seeded");
    let now = oes_domain::clock::Clock::now(&oes_domain::clock::SystemClock);
    let bearer = JwtKeys::new(&oes_tests::jwt_settings())
        .issue(&mover, now)
        .expect("a token");
    let outage = oes_tests::auth_over(adapters, Arc::new(oes_domain::clock::SystemClock));
    let mut answers = Vec::new();
    for who in ["taken", "free"] {
        let body = json!({"new_email": address(who), "password": "correct horse"}).to_string();
        let answer = call(
            &outage,
            "POST",
            "/auth/me/email",
            Some(&body),
            Some(&bearer),
        )
        .await;
        answers.push(answer);
    }
    assert_eq!(answers[0], answers[1], "a taken address, then a free one");
    assert_eq!(answers[0].0, 202, "{}", answers[0].1);
}

/// A ledger that cannot record a job unqueued (the store down just then): the producer cannot
/// tell whether the queue that answered an error took the job, and says so (`Unsure`).
struct CannotUnqueue;

#[async_trait::async_trait]
impl oes_tests::hooked_ledger::LedgerHooks for CannotUnqueue {
    async fn before(
        &self,
        call: &'static str,
        _job_id: &str,
    ) -> Option<oes_domain::ports::StoreUnavailable> {
        (call == "unqueued").then(|| {
            oes_domain::ports::StoreUnavailable::new(
                "recording a job unqueued",
                "the test's outage",
            )
        })
    }
}

/// A sign-up whose job the queue may have taken (it answered an error, and the ledger could not
/// record the job unqueued) keeps its count of the mailbox's budget: the copy on the lane is
/// sent. Given back, each try again through such an outage mailed the address and spent
/// nothing, and the budget bounded nothing.
#[tokio::test]
async fn a_sign_up_whose_email_may_have_been_queued_keeps_its_mailbox_count() {
    let queues = MemoryQueues::new();
    let records = Arc::new(MemoryJobs::default());
    let clock = Arc::new(oes_domain::clock::SystemClock);
    let mut adapters = oes_runtime::wiring::ApiAdapters::in_memory(queues.clone(), records.clone());
    let lanes = TakenThenLost {
        lanes: EmailLanes::new(queues.clone()),
        ledger: records.clone(),
        taken: false,
    };
    adapters.emails = EmailProducer::new(
        Arc::new(lanes),
        Arc::new(oes_tests::hooked_ledger::HookedLedger::new(
            records,
            CannotUnqueue,
        )),
        clock.clone(),
    );
    let service = oes_tests::auth_over(adapters, clock);
    let body =
        json!({"email": "ada@example.com", "password": "correct horse", "name": "Ada"}).to_string();
    let budget = auth_api::limits::EMAIL_PER_ADDRESS.max;
    for _ in 0..budget * 2 {
        call(&service, "POST", "/auth/register", Some(&body), None).await;
    }
    let on_the_lane = oes_tests::take_waiting(&queues, 100).await.len();
    assert_eq!(
        on_the_lane,
        usize::try_from(budget).expect("small"),
        "the mailbox got {on_the_lane} emails; its budget is {budget}"
    );
}
