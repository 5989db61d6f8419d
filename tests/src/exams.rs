//! A harness for exam-api tests: the real handler over in-memory or real adapters (admin-api's
//! beside it for `/admin` paths), users of each role with access tokens, and a clock the test
//! moves (deadlines without sleeping).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use admin_api::AdminApi;
use async_trait::async_trait;
use exam_api::ExamApi;
use exam_api::sweep::{AttemptSweeper, SweepReport};
use lambda_http::{Body, Response};
use oes_adapters::memory::{MemoryJobs, MemoryLanes, MemoryQueues, NoCache};
use oes_domain::cache::{CacheAside, CacheKeys, CacheSettings};
use oes_domain::clock::{Clock, ManualClock, SystemClock};
use oes_domain::exam::{
    Answers, Attempt, AttemptCursor, AttemptId, AttemptResult, AttemptSummary, Exam, ExamCursor,
    ExamId, Question, QuestionId,
};
use oes_domain::ports::{
    AttemptConflict, AttemptStore, DueAttempt, ExamConflict, ExamStore, StoreError,
    StoreUnavailable, UserStore, UserUpdate,
};
use oes_domain::security::{JwtKeys, JwtSettings};
use oes_domain::user::{Role, UserId, UserStatus};
use oes_runtime::wiring::ApiAdapters;
use serde_json::Value;

use crate::{TestEnv, iam, jwt_settings, read, request};

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Their id.
    pub id: String,
    /// Their email address.
    pub email: String,
    /// A valid access token.
    pub token: String,
}

/// exam-api and what a test needs around it.
pub struct ExamHarness {
    /// The function.
    pub api: ExamApi,
    /// admin-api over the same adapters and clock, its lanes switched in memory.
    pub admin: AdminApi,
    /// Accounts.
    pub users: Arc<dyn UserStore>,
    /// The time the exam service sees (starts at the real time; tokens are checked against
    /// the real time).
    pub clock: Arc<ManualClock>,
    /// The email queues, when in memory.
    pub queue: Option<Arc<MemoryQueues>>,
    /// The attempt sweeper over the same adapters and clock.
    pub sweeper: AttemptSweeper,
    jwt: JwtKeys,
}

impl ExamHarness {
    /// exam-api over `adapters`, with the tests' JWT settings.
    pub fn over(adapters: &ApiAdapters) -> Self {
        Self::with_jwt(adapters, &jwt_settings())
    }

    /// exam-api over `adapters`, issuing and checking tokens with `jwt` (the settings a
    /// function under test loaded, to sign tokens it accepts).
    pub fn with_jwt(adapters: &ApiAdapters, jwt: &JwtSettings) -> Self {
        let clock = Arc::new(ManualClock::at(SystemClock.now()));
        Self {
            api: ExamApi::new(adapters, JwtKeys::new(jwt), clock.clone()),
            admin: AdminApi::new(
                adapters,
                Arc::new(MemoryLanes::default()),
                JwtKeys::new(jwt),
                clock.clone(),
            ),
            sweeper: AttemptSweeper::new(adapters, clock.clone()),
            users: adapters.users.clone(),
            clock,
            queue: None,
            jwt: JwtKeys::new(jwt),
        }
    }

    /// exam-api over in-memory adapters.
    pub fn in_memory() -> Self {
        let queue = MemoryQueues::new();
        let adapters = ApiAdapters::in_memory(queue.clone(), Arc::new(MemoryJobs::default()));
        let mut harness = Self::over(&adapters);
        harness.queue = Some(queue);
        harness
    }

    /// A new active account with `role`, and a token for it.
    pub async fn sign_in(&self, role: Role) -> Caller {
        let now = SystemClock.now();
        let email = format!("{}@example.com", &UserId::generate().as_str()[..8]);
        let user = crate::user_with(&email, Role::Student, UserStatus::Active, now);
        let id = user.id.clone();
        self.users
            .create(&user)
            .await
            .unwrap_or_else(|e| panic!("creating a user: {e}"));
        let token = self.grant(&id, role, now).await;
        Caller {
            id: id.to_string(),
            email,
            token,
        }
    }

    /// Changes the role of `caller` in the user store, as `oesctl users set-role` does (their
    /// earlier tokens stop working), and signs them in again: the returned caller holds a token
    /// issued after the change.
    pub async fn set_role(&self, caller: &Caller, role: Role) -> Caller {
        let now = SystemClock.now();
        let id = UserId::from_trusted(caller.id.clone());
        let token = self.grant(&id, role, now).await;
        Caller {
            token,
            ..caller.clone()
        }
    }

    /// Gives account `id` `role` in the user store and issues it a token after the change.
    async fn grant(&self, id: &UserId, role: Role, now: i64) -> String {
        let user = self
            .users
            .update(id, UserUpdate::Role(role), now)
            .await
            .unwrap_or_else(|e| panic!("setting a role: {e}"));
        self.jwt
            .issue(&user, now)
            .unwrap_or_else(|e| panic!("issuing a token: {e}"))
    }

    /// Runs one sweep of the attempts past their deadline, at the harness's clock.
    pub async fn sweep(&self) -> SweepReport {
        self.sweep_within(std::time::Duration::from_secs(60)).await
    }

    /// Runs the attempt sweep with `budget` for its work.
    pub async fn sweep_within(&self, budget: std::time::Duration) -> SweepReport {
        self.sweeper
            .sweep(budget)
            .await
            .unwrap_or_else(|e| panic!("the sweep failed: {e}"))
    }

    /// Calls exam-api (admin-api for an `/admin` path, as API Gateway routes it) and returns
    /// the whole response.
    pub async fn respond(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        caller: Option<&Caller>,
    ) -> Response<Body> {
        let body = body.map(Value::to_string);
        let request = request(
            method,
            path,
            body.as_deref(),
            caller.map(|c| c.token.as_str()),
        );
        crate::exam_or_admin(&self.api, &self.admin, request)
            .await
            .unwrap_or_else(|e| panic!("the handler returned an invocation error: {e}"))
    }

    /// Calls exam-api (or admin-api, as [`Self::respond`]) and returns status and JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        caller: &Caller,
    ) -> (u16, Value) {
        read(&self.respond(method, path, body, Some(caller)).await)
    }

    /// Creates an exam as `owner` with `questions` questions (the right answer of question i
    /// is option i % 3, worth i + 1 points), published if `publish`. Returns its id and the
    /// question ids.
    pub async fn exam_with_questions(
        &self,
        owner: &Caller,
        questions: usize,
        publish: bool,
    ) -> (String, Vec<String>) {
        let body = serde_json::json!({
            "title": "Rust basics", "description": "Ownership and borrowing",
            "duration_minutes": 30, "pass_mark_percent": 50,
        });
        let (status, exam) = self.call("POST", "/exams", Some(&body), owner).await;
        assert_eq!(status, 201, "{exam}");
        let exam_id = exam["exam_id"].as_str().unwrap_or_default().to_owned();
        let mut ids = Vec::new();
        for i in 0..questions {
            let body = serde_json::json!({
                "text": format!("Question {i}"), "options": ["a", "b", "c"],
                "correct_option": i % 3, "points": i + 1,
            });
            let (status, question) = self
                .call(
                    "POST",
                    &format!("/exams/{exam_id}/questions"),
                    Some(&body),
                    owner,
                )
                .await;
            assert_eq!(status, 201, "{question}");
            ids.push(
                question["question_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        if publish {
            let (status, body) = self
                .call("POST", &format!("/exams/{exam_id}/publish"), None, owner)
                .await;
            assert_eq!(status, 200, "{body}");
        }
        (exam_id, ids)
    }
}

/// An [`ExamStore`] that counts `get_exam` calls on the store it wraps (the real DynamoDB
/// adapter in the tests): how many reads reached the store. It can also lose the answer of a
/// write it let through, and answer a question's read with a copy from before a write (what a
/// caller that read just before another's write holds).
pub struct CountingExams {
    inner: Arc<dyn ExamStore>,
    reads: AtomicUsize,
    lose_answer: AtomicBool,
    stale_question: std::sync::Mutex<Option<Question>>,
}

impl CountingExams {
    /// Counts the reads of `inner`.
    pub fn new(inner: Arc<dyn ExamStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            reads: AtomicUsize::new(0),
            lose_answer: AtomicBool::new(false),
            stale_question: std::sync::Mutex::new(None),
        })
    }

    /// `get_exam` calls so far.
    pub fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }

    /// The next write that succeeds in the store answers as if it had timed out: it applied,
    /// and its caller cannot know.
    pub fn lose_next_answer(&self) {
        self.lose_answer.store(true, Ordering::SeqCst);
    }

    /// The next read of `question` answers this copy of it.
    pub fn read_next_as(&self, question: Question) {
        *self.stale_question.lock().expect("not poisoned") = Some(question);
    }

    fn answer<T>(
        &self,
        written: Result<T, StoreError<ExamConflict>>,
    ) -> Result<T, StoreError<ExamConflict>> {
        if written.is_ok() && self.lose_answer.swap(false, Ordering::SeqCst) {
            return Err(StoreUnavailable::new("test: the answer was lost", "timed out").into());
        }
        written
    }
}

#[async_trait]
impl ExamStore for CountingExams {
    async fn create_exam(&self, exam: &Exam) -> Result<(), StoreError<ExamConflict>> {
        self.inner.create_exam(exam).await
    }
    async fn get_exam(&self, id: &ExamId) -> Result<Option<Exam>, StoreUnavailable> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get_exam(id).await
    }
    async fn save_exam(
        &self,
        exam: &Exam,
        expected_version: u64,
    ) -> Result<(), StoreError<ExamConflict>> {
        self.answer(self.inner.save_exam(exam, expected_version).await)
    }
    async fn delete_exam(&self, id: &ExamId) -> Result<(), StoreError<ExamConflict>> {
        self.answer(self.inner.delete_exam(id).await)
    }
    async fn list_published(
        &self,
        limit: usize,
        after: Option<&ExamCursor>,
    ) -> Result<Vec<Exam>, StoreUnavailable> {
        self.inner.list_published(limit, after).await
    }
    async fn add_question(
        &self,
        question: &Question,
        max: u32,
    ) -> Result<(), StoreError<ExamConflict>> {
        self.answer(self.inner.add_question(question, max).await)
    }
    async fn get_question(
        &self,
        exam: &ExamId,
        id: &QuestionId,
    ) -> Result<Option<Question>, StoreUnavailable> {
        let stale = {
            let mut stale = self.stale_question.lock().expect("not poisoned");
            stale.take_if(|q| &q.id == id)
        };
        if stale.is_some() {
            return Ok(stale);
        }
        self.inner.get_question(exam, id).await
    }
    async fn save_question(
        &self,
        question: &Question,
        was: &Question,
    ) -> Result<(), StoreError<ExamConflict>> {
        self.answer(self.inner.save_question(question, was).await)
    }
    async fn delete_question(
        &self,
        exam: &ExamId,
        id: &QuestionId,
    ) -> Result<(), StoreError<ExamConflict>> {
        self.answer(self.inner.delete_question(exam, id).await)
    }
    async fn list_questions(&self, exam: &ExamId) -> Result<Vec<Question>, StoreUnavailable> {
        self.inner.list_questions(exam).await
    }
}

/// An [`AttemptStore`] over the store it wraps (the real DynamoDB adapter in the tests) that,
/// once armed, saves answers right before the next `submit` reaches the store: a save that lands
/// between the service's read and grading of the attempt and its submit.
pub struct SaveDuringSubmit {
    inner: Arc<dyn AttemptStore>,
    armed: std::sync::Mutex<Option<Answers>>,
}

impl SaveDuringSubmit {
    /// Wraps `inner`, unarmed.
    pub fn new(inner: Arc<dyn AttemptStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            armed: std::sync::Mutex::new(None),
        })
    }

    /// The next `submit` first saves `answers` (once).
    pub fn arm(&self, answers: Answers) {
        *self.armed.lock().unwrap_or_else(|e| e.into_inner()) = Some(answers);
    }
}

#[async_trait]
impl AttemptStore for SaveDuringSubmit {
    async fn create_attempt(
        &self,
        attempt: &Attempt,
        max_attempts: u32,
    ) -> Result<(), StoreError<AttemptConflict>> {
        self.inner.create_attempt(attempt, max_attempts).await
    }
    async fn get_attempt(&self, id: &AttemptId) -> Result<Option<Attempt>, StoreUnavailable> {
        self.inner.get_attempt(id).await
    }
    async fn save_answers(
        &self,
        id: &AttemptId,
        answers: &Answers,
        now: i64,
    ) -> Result<(), StoreError<AttemptConflict>> {
        self.inner.save_answers(id, answers, now).await
    }
    async fn submit(
        &self,
        id: &AttemptId,
        result: &AttemptResult,
        graded: &Answers,
        email_job_id: &str,
        email_check_at: i64,
    ) -> Result<(), StoreError<AttemptConflict>> {
        let armed = self.armed.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(answers) = armed {
            self.inner
                .save_answers(id, &answers, SystemClock.now())
                .await
                .unwrap_or_else(|e| panic!("the save during the submit: {e}"));
        }
        self.inner
            .submit(id, result, graded, email_job_id, email_check_at)
            .await
    }
    async fn claim_result_email(
        &self,
        id: &AttemptId,
        job_id: &str,
    ) -> Result<bool, StoreError<AttemptConflict>> {
        self.inner.claim_result_email(id, job_id).await
    }
    async fn release_result_email(
        &self,
        id: &AttemptId,
        job_id: &str,
    ) -> Result<(), StoreError<AttemptConflict>> {
        self.inner.release_result_email(id, job_id).await
    }
    async fn due_attempts(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<DueAttempt>, StoreUnavailable> {
        self.inner.due_attempts(now, limit).await
    }
    async fn clear_due(&self, due: &DueAttempt) -> Result<(), StoreUnavailable> {
        self.inner.clear_due(due).await
    }
    async fn attempts_of_user(
        &self,
        user: &UserId,
        limit: usize,
        after: Option<&AttemptCursor>,
    ) -> Result<Vec<AttemptSummary>, StoreUnavailable> {
        self.inner.attempts_of_user(user, limit, after).await
    }
    async fn attempts_of_exam(
        &self,
        exam: &ExamId,
        limit: usize,
        after: Option<&AttemptCursor>,
    ) -> Result<Vec<AttemptSummary>, StoreUnavailable> {
        self.inner.attempts_of_exam(exam, limit, after).await
    }
}

impl TestEnv {
    /// The real adapters (DynamoDB, SQS) for these resources, reading through `cache`.
    pub fn adapters_with_cache(&self, cache: CacheAside) -> ApiAdapters {
        let mut adapters = ApiAdapters::aws(&self.clients, &self.api_config())
            .unwrap_or_else(|e| panic!("adapters: {e}"));
        adapters.cache = cache;
        adapters
    }

    /// The real adapters as `role` may use them ([`crate::iam::RoleGuard`]), reading through
    /// `cache`.
    pub fn adapters_as(&self, role: iam::Role, cache: CacheAside) -> ApiAdapters {
        let mut adapters = ApiAdapters::aws(&self.clients_as(role), &self.api_config())
            .unwrap_or_else(|e| panic!("adapters: {e}"));
        adapters.cache = cache;
        adapters
    }

    /// exam-api, admin-api and the sweeper over the real adapters, each as its role in the
    /// template allows, reading through `cache`; the test's own account writes are unchecked.
    pub fn exam_harness(&self, cache: CacheAside) -> ExamHarness {
        let mut harness = ExamHarness::over(&self.adapters_as(iam::Role::ExamApi, cache.clone()));
        let clock = harness.clock.clone();
        let admin = self.adapters_as(iam::Role::AdminApi, cache.clone());
        harness.admin = AdminApi::new(
            &admin,
            Arc::new(MemoryLanes::default()),
            harness.jwt.clone(),
            clock.clone(),
        );
        let sweeper = self.adapters_as(iam::Role::AttemptSweeper, cache.clone());
        harness.sweeper = AttemptSweeper::new(&sweeper, clock);
        harness.users = self.adapters_with_cache(cache).users;
        harness
    }
}

/// A policy with no cache behind it: every read goes to the store (the reference the cached
/// API is compared with).
pub fn no_cache() -> CacheAside {
    CacheAside::new(
        Arc::new(NoCache),
        CacheKeys::new("none"),
        CacheSettings::default(),
    )
}
