//! exam-api reads through the cache against real Redis (standalone and a one-node cluster) and
//! DynamoDB in the emulator:
//!
//! - a property test: random sequences of writes and reads through the API, where every read
//!   through the cache answers exactly what the same read answers with no cache at that moment;
//! - 100 concurrent requests for one uncached exam read DynamoDB once;
//! - Redis killed mid-test: every read still 200 from DynamoDB, quickly; Redis back: hits resume.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use oes_domain::cache::CacheSettings;
use oes_domain::user::Role;
use oes_tests::exams::{Caller, CountingExams, ExamHarness, no_cache};
use oes_tests::{PrivateRedis, Redis, TestEnv, cache_policy, on_both_redis, read};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

/// One step of a sequence. Indices pick among the exams, questions and attempts that exist.
#[derive(Debug, Clone)]
enum Op {
    CreateExam,
    PatchExam(usize, u8),
    Publish(usize),
    DeleteExam(usize),
    AddQuestion(usize, u8),
    PatchQuestion(usize, usize, u8),
    DeleteQuestion(usize, usize),
    StartAttempt(usize),
    SaveAnswers(usize, u8),
    Submit(usize),
    ReadExam(usize, bool),
    ReadQuestions(usize, bool),
    ReadList(u8, u8),
    ReadAttempt(usize, bool),
    ReadMyAttempts(u8, u8),
}

fn op() -> impl Strategy<Value = Op> {
    let i = || 0usize..8;
    prop_oneof![
        2 => Just(Op::CreateExam),
        1 => (i(), 0u8..100).prop_map(|(e, p)| Op::PatchExam(e, p)),
        2 => i().prop_map(Op::Publish),
        1 => i().prop_map(Op::DeleteExam),
        3 => (i(), 0u8..3).prop_map(|(e, c)| Op::AddQuestion(e, c)),
        1 => (i(), i(), 0u8..3).prop_map(|(e, q, c)| Op::PatchQuestion(e, q, c)),
        1 => (i(), i()).prop_map(|(e, q)| Op::DeleteQuestion(e, q)),
        2 => i().prop_map(Op::StartAttempt),
        2 => (i(), 0u8..3).prop_map(|(a, o)| Op::SaveAnswers(a, o)),
        1 => i().prop_map(Op::Submit),
        3 => (i(), any::<bool>()).prop_map(|(e, s)| Op::ReadExam(e, s)),
        3 => (i(), any::<bool>()).prop_map(|(e, s)| Op::ReadQuestions(e, s)),
        3 => (1u8..4, 0u8..3).prop_map(|(l, p)| Op::ReadList(l, p)),
        2 => (i(), any::<bool>()).prop_map(|(a, s)| Op::ReadAttempt(a, s)),
        2 => (1u8..4, 0u8..3).prop_map(|(l, p)| Op::ReadMyAttempts(l, p)),
    ]
}

/// The cached API, the same API with no cache over the same table, and who calls them.
struct World {
    cached: ExamHarness,
    reference: ExamHarness,
    owner: Caller,
    student: Caller,
    /// Reads the cached API answered from the cache, and writes it took: a run where either
    /// stayed zero compared nothing a cache could have got wrong.
    hits: AtomicUsize,
    writes: AtomicUsize,
}

/// What exists, as far as the sequence knows (ids from the answers).
#[derive(Default)]
struct Known {
    exams: Vec<String>,
    questions: HashMap<String, Vec<String>>,
    attempts: Vec<String>,
}

fn pick<T>(items: &[T], index: usize) -> Option<&T> {
    (!items.is_empty()).then(|| &items[index % items.len()])
}

fn id(body: &Value, field: &str) -> Option<String> {
    body[field].as_str().map(str::to_owned)
}

impl World {
    /// A read through both APIs; they must agree.
    async fn compare(&self, path: &str, caller: &Caller) -> Result<Value, TestCaseError> {
        let response = self.cached.respond("GET", path, None, Some(caller)).await;
        if cache_status(&response) == "hit" {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        let cached = read(&response);
        let reference = self.reference.call("GET", path, None, caller).await;
        if cached != reference {
            return Err(TestCaseError::fail(format!(
                "GET {path}: with cache {cached:?}, without {reference:?}"
            )));
        }
        Ok(reference.1)
    }

    async fn write(&self, method: &str, path: &str, body: Option<Value>, caller: &Caller) -> Value {
        let (status, answer) = self.cached.call(method, path, body.as_ref(), caller).await;
        if (200..300).contains(&status) {
            self.writes.fetch_add(1, Ordering::Relaxed);
        }
        answer
    }

    async fn step(&self, known: &mut Known, op: &Op) -> Result<(), TestCaseError> {
        let (owner, student) = (&self.owner, &self.student);
        let exam = |i: usize| pick(&known.exams, i).cloned();
        let who = |as_student: bool| if as_student { student } else { owner };
        match *op {
            Op::CreateExam => {
                let body =
                    json!({"title": "Exam", "duration_minutes": 30, "pass_mark_percent": 50});
                let created = self.write("POST", "/exams", Some(body), owner).await;
                known.exams.extend(id(&created, "exam_id"));
            }
            Op::PatchExam(e, mark) => {
                if let Some(exam) = exam(e) {
                    let body = json!({"title": format!("Exam {mark}"), "pass_mark_percent": mark});
                    self.write("PATCH", &format!("/exams/{exam}"), Some(body), owner)
                        .await;
                }
            }
            Op::Publish(e) => {
                if let Some(exam) = exam(e) {
                    self.write("POST", &format!("/exams/{exam}/publish"), None, owner)
                        .await;
                }
            }
            Op::DeleteExam(e) => {
                if let Some(exam) = exam(e) {
                    self.write("DELETE", &format!("/exams/{exam}"), None, owner)
                        .await;
                }
            }
            Op::AddQuestion(e, correct) => {
                if let Some(exam) = exam(e) {
                    let body = json!({"text": "Q?", "options": ["a", "b", "c"], "correct_option": correct, "points": 1 + correct});
                    let added = self
                        .write(
                            "POST",
                            &format!("/exams/{exam}/questions"),
                            Some(body),
                            owner,
                        )
                        .await;
                    if let Some(question) = id(&added, "question_id") {
                        known.questions.entry(exam).or_default().push(question);
                    }
                }
            }
            Op::PatchQuestion(e, q, correct) => {
                if let Some(exam) = exam(e) {
                    let questions = known.questions.get(&exam).cloned().unwrap_or_default();
                    if let Some(question) = pick(&questions, q) {
                        let body =
                            json!({"correct_option": correct, "text": format!("Q{correct}?")});
                        let path = format!("/exams/{exam}/questions/{question}");
                        self.write("PATCH", &path, Some(body), owner).await;
                    }
                }
            }
            Op::DeleteQuestion(e, q) => {
                if let Some(exam) = exam(e) {
                    let questions = known.questions.get(&exam).cloned().unwrap_or_default();
                    if let Some(question) = pick(&questions, q) {
                        let path = format!("/exams/{exam}/questions/{question}");
                        self.write("DELETE", &path, None, owner).await;
                    }
                }
            }
            Op::StartAttempt(e) => {
                if let Some(exam) = exam(e) {
                    let started = self
                        .write("POST", &format!("/exams/{exam}/attempts"), None, student)
                        .await;
                    known.attempts.extend(id(&started, "attempt_id"));
                }
            }
            Op::SaveAnswers(a, option) => {
                if let Some(attempt) = pick(&known.attempts, a) {
                    let (_, current) = self
                        .reference
                        .call("GET", &format!("/attempts/{attempt}"), None, student)
                        .await;
                    let answers: serde_json::Map<String, Value> = current["question_ids"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|q| q.as_str().map(|q| (q.to_owned(), json!(option))))
                        .collect();
                    let path = format!("/attempts/{attempt}/answers");
                    self.write("PUT", &path, Some(json!({"answers": answers})), student)
                        .await;
                }
            }
            Op::Submit(a) => {
                if let Some(attempt) = pick(&known.attempts, a) {
                    self.write(
                        "POST",
                        &format!("/attempts/{attempt}/submit"),
                        None,
                        student,
                    )
                    .await;
                }
            }
            Op::ReadExam(e, as_student) => {
                if let Some(exam) = exam(e) {
                    self.compare(&format!("/exams/{exam}"), who(as_student))
                        .await?;
                }
            }
            Op::ReadQuestions(e, as_student) => {
                if let Some(exam) = exam(e) {
                    self.compare(&format!("/exams/{exam}/questions"), who(as_student))
                        .await?;
                }
            }
            Op::ReadList(limit, pages) => {
                let mut path = format!("/exams?limit={limit}");
                for _ in 0..=pages {
                    let page = self.compare(&path, student).await?;
                    match page["next_cursor"].as_str() {
                        Some(cursor) => path = format!("/exams?limit={limit}&cursor={cursor}"),
                        None => break,
                    }
                }
            }
            Op::ReadAttempt(a, as_student) => {
                if let Some(attempt) = pick(&known.attempts, a) {
                    self.compare(&format!("/attempts/{attempt}"), who(as_student))
                        .await?;
                }
            }
            Op::ReadMyAttempts(limit, pages) => {
                let first = format!("/me/attempts?limit={limit}");
                let mut path = first.clone();
                for _ in 0..=pages {
                    let page = self.compare(&path, student).await?;
                    match page["next_cursor"].as_str() {
                        Some(cursor) => path = format!("{first}&cursor={cursor}"),
                        None => break,
                    }
                }
            }
        }
        Ok(())
    }
}

async fn reads_through_the_cache_always_match_reads_without_it(redis: Redis) {
    let env = TestEnv::spawn().await;
    let cached = env.exam_harness(cache_policy(redis, &env.prefix, CacheSettings::default()));
    let reference = env.exam_harness(no_cache());
    let world = World {
        owner: cached.sign_in(Role::Instructor).await,
        student: cached.sign_in(Role::Student).await,
        cached,
        reference,
        hits: AtomicUsize::new(0),
        writes: AtomicUsize::new(0),
    };
    let config = Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let handle = tokio::runtime::Handle::current();
    let outcome = runner.run(&prop::collection::vec(op(), 1..40), |ops| {
        tokio::task::block_in_place(|| {
            handle.block_on(async {
                let mut known = Known::default();
                for op in &ops {
                    world.step(&mut known, op).await?;
                }
                Ok(())
            })
        })
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
    let (hits, writes) = (world.hits.into_inner(), world.writes.into_inner());
    assert!(
        hits > 0 && writes > 0,
        "{hits} reads from the cache, {writes} writes taken"
    );
}

async fn a_hundred_concurrent_reads_of_an_uncached_exam_read_dynamodb_once(redis: Redis) {
    let env = TestEnv::spawn().await;
    let (mut adapters, queries) =
        env.adapters_counting_queries(cache_policy(redis, &env.prefix, CacheSettings::default()));
    let counting = CountingExams::new(adapters.exams.clone());
    adapters.exams = counting.clone();
    let h = ExamHarness::over(&adapters);
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let (exam, _) = h.exam_with_questions(&owner, 1, true).await;
    h.call("GET", "/me/attempts", None, &student).await; // the student's profile is cached

    let before = counting.reads();
    queries.take();
    let path = format!("/exams/{exam}");
    let answers = join_all((0..100).map(|_| h.call("GET", &path, None, &student))).await;
    assert_eq!(
        counting.reads() - before,
        1,
        "one DynamoDB read of the exam for 100 requests"
    );
    assert_eq!(
        queries.take().len(),
        1,
        "one DynamoDB query of its questions for 100 requests"
    );
    assert!(answers.iter().all(|(status, _)| *status == 200));
    assert!(
        answers.windows(2).all(|w| w[0] == w[1]),
        "all the same exam"
    );
}

fn cache_status(response: &lambda_http::Response<lambda_http::Body>) -> String {
    response
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

async fn reads_survive_redis_dying_and_hits_resume_when_it_returns(redis: Redis) {
    let env = TestEnv::spawn().await;
    let mut server = PrivateRedis::start(redis.topology()).await;
    let settings = CacheSettings {
        timeout: Duration::from_millis(100),
        breaker_cool_down: Duration::from_millis(200),
        ..CacheSettings::default()
    };
    let h = env.exam_harness(server.policy(settings));
    let owner = h.sign_in(Role::Instructor).await;
    let (exam, _) = h.exam_with_questions(&owner, 2, true).await;
    // The owner reads the questions (students see them only inside their attempt).
    let path = format!("/exams/{exam}/questions");
    let first = h.respond("GET", &path, None, Some(&owner)).await;
    let second = h.respond("GET", &path, None, Some(&owner)).await;
    assert_eq!(
        (cache_status(&first), cache_status(&second)),
        ("miss".into(), "hit".into())
    );
    let expected = read(&second);

    server.kill();
    for _ in 0..20 {
        let started = Instant::now();
        let response = h.respond("GET", &path, None, Some(&owner)).await;
        let took = started.elapsed();
        assert_eq!(read(&response), expected, "served from DynamoDB");
        assert!(
            took < Duration::from_secs(1),
            "a read took {took:?} with Redis down"
        );
    }

    server.restart().await;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let response = h.respond("GET", &path, None, Some(&owner)).await;
        assert_eq!(read(&response), expected);
        statuses.push(cache_status(&response));
        if statuses.ends_with(&["hit".to_owned()]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // the breaker's cool-down
    }
    assert_eq!(
        statuses.last().map(String::as_str),
        Some("hit"),
        "{statuses:?}"
    );
}

on_both_redis!(
    reads_through_the_cache_always_match_reads_without_it,
    a_hundred_concurrent_reads_of_an_uncached_exam_read_dynamodb_once,
    reads_survive_redis_dying_and_hits_resume_when_it_returns,
);

/// The in-memory cache, counting the reads in flight at once (`get` and `lock_or_read`): each
/// read gives way once before it answers, so reads made together overlap and reads made one
/// after another do not. No clock is involved.
#[derive(Default)]
struct OverlapGauge {
    cache: oes_adapters::memory::MemoryCache,
    now: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

impl OverlapGauge {
    async fn read<T>(&self, read: impl std::future::Future<Output = T>) -> T {
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.now.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::task::yield_now().await;
        let answer = read.await;
        self.now.fetch_sub(1, SeqCst);
        answer
    }

    fn most_at_once(&self) -> usize {
        self.most.swap(0, std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl oes_domain::ports::Cache for OverlapGauge {
    async fn get(
        &self,
        key: &str,
        field: &str,
    ) -> Result<oes_domain::ports::Lookup, oes_domain::ports::CacheError> {
        self.read(self.cache.get(key, field)).await
    }

    async fn fill(
        &self,
        fill: &oes_domain::ports::Fill<'_>,
    ) -> Result<bool, oes_domain::ports::CacheError> {
        self.cache.fill(fill).await
    }

    async fn invalidate(
        &self,
        key: &str,
        generation: &str,
        ttl: Duration,
    ) -> Result<(), oes_domain::ports::CacheError> {
        self.cache.invalidate(key, generation, ttl).await
    }

    async fn lock_or_read(
        &self,
        key: &str,
        field: &str,
        lock: &str,
        ttl: Duration,
    ) -> Result<(oes_domain::ports::Lookup, bool), oes_domain::ports::CacheError> {
        self.read(self.cache.lock_or_read(key, field, lock, ttl))
            .await
    }

    async fn counter(&self, key: &str) -> Result<u64, oes_domain::ports::CacheError> {
        self.cache.counter(key).await
    }

    async fn increment(&self, key: &str) -> Result<u64, oes_domain::ports::CacheError> {
        self.cache.increment(key).await
    }

    async fn hit(
        &self,
        key: &str,
        window: Duration,
    ) -> Result<(u64, Duration), oes_domain::ports::CacheError> {
        self.cache.hit(key, window).await
    }
    async fn give_back(&self, key: &str) -> Result<(), oes_domain::ports::CacheError> {
        self.cache.give_back(key).await
    }
}

/// In-memory adapters whose cache reads go through an [`OverlapGauge`].
fn gauged_adapters() -> (
    std::sync::Arc<OverlapGauge>,
    oes_runtime::wiring::ApiAdapters,
) {
    use oes_adapters::memory::{MemoryJobs, MemoryQueues};
    use oes_domain::cache::{CacheAside, CacheKeys};
    use oes_runtime::wiring::ApiAdapters;
    use std::sync::Arc;

    let gauge = Arc::new(OverlapGauge::default());
    let mut adapters = ApiAdapters::in_memory(MemoryQueues::new(), Arc::new(MemoryJobs::default()));
    adapters.cache = CacheAside::new(
        gauge.clone(),
        CacheKeys::new("oes"),
        CacheSettings::default(),
    );
    (gauge, adapters)
}

/// Issue 14: a cached read waits for one round trip to the cache, not three in a row: the
/// caller's profile, the exam and its questions are asked for together (with Redis's
/// multiplexed connection, in one write). Counted as the most reads in flight at once: 3 now,
/// 1 before (each read waited for the one before it).
#[tokio::test]
async fn a_cached_exam_read_asks_for_the_caller_the_exam_and_its_questions_at_once() {
    let (gauge, adapters) = gauged_adapters();
    let h = ExamHarness::over(&adapters);
    let owner = h.sign_in(Role::Instructor).await;
    let (exam, _) = h.exam_with_questions(&owner, 3, true).await;
    for path in [format!("/exams/{exam}"), format!("/exams/{exam}/questions")] {
        // The first reads miss and fill; the last one is all hits.
        for _ in 0..2 {
            assert_eq!(h.call("GET", &path, None, &owner).await.0, 200, "{path}");
        }
        gauge.most_at_once();
        let (status, body) = h.call("GET", &path, None, &owner).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(gauge.most_at_once(), 3, "{path}: reads in flight at once");
    }
}

/// A student with an open attempt at a published 3-question exam, and its path.
async fn an_open_attempt(h: &ExamHarness) -> (Caller, String) {
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let (exam, _) = h.exam_with_questions(&owner, 3, true).await;
    let (status, started) = h
        .call("POST", &format!("/exams/{exam}/attempts"), None, &student)
        .await;
    assert_eq!(status, 201, "{started}");
    let path = format!(
        "/attempts/{}",
        started["attempt_id"].as_str().unwrap_or_default()
    );
    (student, path)
}

/// Issue 14, the student's read on exam day: `GET /attempts/{id}` asks for the caller's profile
/// and the attempt together, then for the paper (the questions of the exam the attempt names):
/// two round trips to the cache, not three, in a process that has not shown that paper before.
/// Counted as the most reads in flight at once: 2 now, 1 before.
#[tokio::test]
async fn a_cached_attempt_read_asks_for_the_caller_and_the_attempt_at_once() {
    let (gauge, adapters) = gauged_adapters();
    let h = ExamHarness::over(&adapters);
    let (student, path) = an_open_attempt(&h).await;
    for _ in 0..2 {
        assert_eq!(h.call("GET", &path, None, &student).await.0, 200);
    }
    // Read by a process that has not shown this paper (the cache warm, its exam not remembered;
    // one that has asks for the questions too: the next test).
    let fresh = ExamHarness::over(&adapters);
    gauge.most_at_once();
    let (status, body) = fresh.call("GET", &path, None, &student).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["questions"].as_array().map(Vec::len),
        Some(3),
        "the paper: {body}"
    );
    assert_eq!(gauge.most_at_once(), 2, "reads in flight at once");
}

/// Issue 14, the paper read again: the process remembers which exam an attempt is at (ids
/// only), so a repeated `GET /attempts/{id}` asks for the caller's profile, the attempt and the
/// exam's questions together: one round trip to the cache, not two in a row. Counted as the
/// most reads in flight at once on the second read: 3 now, 2 before.
#[tokio::test]
async fn a_paper_read_again_asks_for_the_caller_the_attempt_and_the_questions_at_once() {
    let (gauge, adapters) = gauged_adapters();
    let h = ExamHarness::over(&adapters);
    let (student, path) = an_open_attempt(&h).await;
    let (status, first) = h.call("GET", &path, None, &student).await;
    assert_eq!(status, 200, "{first}");
    gauge.most_at_once();
    let (status, body) = h.call("GET", &path, None, &student).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["questions"], first["questions"], "the same paper");
    assert_eq!(
        body["questions"].as_array().map(Vec::len),
        Some(3),
        "the paper: {body}"
    );
    assert_eq!(gauge.most_at_once(), 3, "reads in flight at once");
}

/// In-memory adapters (the cache included) whose exam store is a [`CountingExams`].
fn in_memory_with_counting_exams() -> (
    oes_runtime::wiring::ApiAdapters,
    std::sync::Arc<CountingExams>,
) {
    use oes_adapters::memory::{MemoryJobs, MemoryQueues};
    let mut adapters = oes_runtime::wiring::ApiAdapters::in_memory(
        MemoryQueues::new(),
        std::sync::Arc::new(MemoryJobs::default()),
    );
    let exams = CountingExams::new(adapters.exams.clone());
    adapters.exams = exams.clone();
    (adapters, exams)
}

/// A write whose answer was lost (a timeout after DynamoDB committed it) may have applied: the
/// cache is told all the same. And a publish repeated after such a loss, which finds the exam
/// published, drops the draft a reader may have cached meanwhile.
#[tokio::test]
async fn a_write_whose_answer_was_lost_still_drops_what_it_may_have_changed() {
    let (adapters, exams) = in_memory_with_counting_exams();
    let h = ExamHarness::over(&adapters);
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let (exam, _) = h.exam_with_questions(&owner, 1, false).await;
    let path = format!("/exams/{exam}");
    assert_eq!(
        h.call("GET", &path, None, &owner).await.0,
        200,
        "the draft is cached"
    );

    exams.lose_next_answer();
    let patch = json!({"title": "Renamed"});
    let (status, _) = h.call("PATCH", &path, Some(&patch), &owner).await;
    assert_eq!(status, 503, "the owner cannot know whether it applied");
    let (_, read) = h.call("GET", &path, None, &owner).await;
    assert_eq!(
        read["title"], "Renamed",
        "the owner reads what the store holds"
    );

    exams.lose_next_answer();
    let publish = format!("{path}/publish");
    assert_eq!(h.call("POST", &publish, None, &owner).await.0, 503);
    assert_eq!(
        h.call("POST", &publish, None, &owner).await.0,
        200,
        "done already"
    );
    let (status, read) = h.call("GET", &path, None, &student).await;
    assert_eq!(status, 200, "students see the published exam: {read}");
}

/// `GET /exams/{id}` reads the exam's questions beside it. For an id no exam has, that read
/// finds no questions: cached as an absent item (the short negative TTL), not as an empty list
/// for the questions' two hours, so ids made up by a caller cannot fill the cache for long.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_questions_of_an_exam_that_does_not_exist_are_cached_only_briefly() {
    use redis::AsyncCommands;
    let env = TestEnv::spawn().await;
    let cache = cache_policy(Redis::Standalone, &env.prefix, CacheSettings::default());
    let h = env.exam_harness(cache.clone());
    let student = h.sign_in(Role::Student).await;
    let made_up = oes_domain::exam::ExamId::generate();
    let (status, _) = h
        .call("GET", &format!("/exams/{made_up}"), None, &student)
        .await;
    assert_eq!(status, 404);
    let at = cache
        .locate(&cache.keys().exam_questions(&made_up))
        .await
        .expect("version");
    let mut redis = redis::Client::open(Redis::Standalone.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let ttl: i64 = redis.pttl(&at.key).await.expect("PTTL");
    let negative = cache.settings().ttls.negative.as_millis();
    assert!(
        ttl > 0 && u128::try_from(ttl).unwrap_or(0) <= negative * 11 / 10,
        "cached for the negative TTL ({negative} ms), not {ttl} ms"
    );
}

/// Two edits of one question at once (two of the owner's tabs): the one made on what the other
/// has since changed is refused, not written over it. Otherwise the later write puts back the
/// earlier one's fields as it read them: here the answer key the other edit fixed.
#[tokio::test]
async fn an_edit_of_a_question_made_on_what_another_edit_changed_is_refused() {
    let (adapters, exams) = in_memory_with_counting_exams();
    let h = ExamHarness::over(&adapters);
    let owner = h.sign_in(Role::Instructor).await;
    let (exam, questions) = h.exam_with_questions(&owner, 1, false).await;
    let exam_id = oes_domain::exam::ExamId::parse(&exam).expect("an exam id");
    let question_id = oes_domain::exam::QuestionId::parse(&questions[0]).expect("a question id");
    let before = adapters
        .exams
        .get_question(&exam_id, &question_id)
        .await
        .expect("read")
        .expect("exists");
    let path = format!("/exams/{exam}/questions/{}", questions[0]);
    let fixed = (before.correct_option + 1) % 2;
    let key = json!({"correct_option": fixed});
    assert_eq!(h.call("PATCH", &path, Some(&key), &owner).await.0, 200);

    // The other tab read the question before that edit, and changes its text.
    exams.read_next_as(before);
    let text = json!({"text": "Reworded?"});
    let (status, body) = h.call("PATCH", &path, Some(&text), &owner).await;
    let (_, listed) = h
        .call("GET", &format!("/exams/{exam}/questions"), None, &owner)
        .await;
    assert_eq!(
        listed["questions"][0]["correct_option"], fixed,
        "the fixed answer key was put back as it was ({status}: {body}): {listed}"
    );
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (409, json!("concurrent_update"))
    );
}
