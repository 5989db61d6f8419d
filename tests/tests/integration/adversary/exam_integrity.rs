//! Attacks on exam_integrity (issue 12).
//!
//! Each test drives the real exam-api handler, as a student or a (former) instructor trying to
//! learn the answers, the questions ahead of time, or to get a second sitting.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use exam_api::sweep::{EMAIL_CHECK_AFTER, SweepReport};
use oes_domain::cache::{CacheAside, CacheSettings};
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::pipeline::EmailLanes;
use oes_domain::ports::{
    AttemptConflict, AttemptStore, Claim, DueAttempt, EmailQueue, JobConflict, JobLedger,
    JobRecord, JobStatus, MessageQueues, Outcome, QueueError, QueueName, StoreError,
    StoreUnavailable,
};
use oes_domain::producer::EmailProducer;
use oes_runtime::wiring::ApiAdapters;
use tokio::sync::Notify;

use oes_domain::clock::{Clock, SystemClock, rfc3339};
use oes_domain::exam::{
    Answers, Attempt, AttemptCursor, AttemptId, AttemptResult, AttemptSummary, ExamId, QuestionId,
};
use oes_domain::user::{Role, UserId};
use oes_tests::exams::{Caller, ExamHarness, SaveDuringSubmit, no_cache};
use oes_tests::{Redis, TestEnv, cache_policy};
use redis::AsyncCommands as _;
use serde_json::{Value, json};

/// Whether `value` holds a `correct_option` key anywhere.
fn mentions_answers(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            map.contains_key("correct_option") || map.values().any(mentions_answers)
        }
        Value::Array(items) => items.iter().any(mentions_answers),
        _ => false,
    }
}

/// Whether `value` shows the text of any question the harness wrote ("Question 0", …).
fn shows_question_text(value: &Value) -> bool {
    value.to_string().contains("Question ")
}

fn id_of(body: &Value, field: &str) -> String {
    body[field].as_str().unwrap_or_default().to_owned()
}

async fn start(h: &ExamHarness, exam: &str, student: &Caller) -> (u16, Value) {
    h.call("POST", &format!("/exams/{exam}/attempts"), None, student)
        .await
}

// ---- 16: rights follow the current role ------------------------------------------------------

#[tokio::test]
async fn a_demoted_owner_reads_the_answer_key_and_students_attempts() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let (exam, _) = h.exam_with_questions(&owner, 3, true).await;
    let (status, attempt) = start(&h, &exam, &student).await;
    assert_eq!(status, 201, "{attempt}");
    let attempt = id_of(&attempt, "attempt_id");

    // The instructor is demoted (`oesctl users set-role … student`) and signs in again.
    let demoted = h.set_role(&owner, Role::Student).await;

    let mut leaks = Vec::new();
    for path in [
        format!("/exams/{exam}/questions"),
        format!("/attempts/{attempt}"),
        format!("/exams/{exam}/results"),
    ] {
        let (status, body) = h.call("GET", &path, None, &demoted).await;
        if status == 200 {
            leaks.push(format!("GET {path}: {status} {body}"));
        }
    }
    for (method, path, body) in [
        (
            "PATCH",
            format!("/exams/{exam}"),
            Some(json!({"title": "Mine"})),
        ),
        ("DELETE", format!("/exams/{exam}"), None),
    ] {
        let (status, answer) = h.call(method, &path, body.as_ref(), &demoted).await;
        if status < 400 {
            leaks.push(format!("{method} {path}: {status} {answer}"));
        }
    }
    assert!(
        leaks.is_empty(),
        "a former instructor still manages their exam:\n{}",
        leaks.join("\n")
    );

    // Promoted back, they manage it again: the rights follow the role, the exam is still theirs.
    let restored = h.set_role(&demoted, Role::Instructor).await;
    let (status, questions) = h
        .call("GET", &format!("/exams/{exam}/questions"), None, &restored)
        .await;
    assert_eq!(status, 200, "{questions}");
    assert!(mentions_answers(&questions), "{questions}");
}

// ---- 12: one open attempt per student and exam -----------------------------------------------

#[tokio::test]
async fn two_concurrent_starts_open_two_attempts() {
    let env = TestEnv::spawn().await;
    let h = env.exam_harness(no_cache());
    let owner = h.sign_in(Role::Instructor).await;
    // Two attempts allowed: the second start is refused for the open one, not for the count.
    let (exam, _) = exam_with(&h, &owner, 2, json!({ "max_attempts": 2 })).await;
    let mut students = Vec::new();
    for _ in 0..4 {
        students.push(h.sign_in(Role::Student).await);
    }

    let mut doubled = Vec::new();
    for student in &students {
        let ((first, a), (second, b)) =
            tokio::join!(start(&h, &exam, student), start(&h, &exam, student));
        let refused = if first == 201 { &b } else { &a };
        let mut statuses = [first, second];
        statuses.sort_unstable();
        if statuses != [201, 409] || refused["error"]["code"] != "attempt_in_progress" {
            doubled.push(format!("{statuses:?}: {a} {b}"));
        }
        let (_, mine) = h.call("GET", "/me/attempts", None, student).await;
        let open = mine["attempts"].as_array().map_or(0, |all| {
            all.iter().filter(|a| a["status"] == "in_progress").count()
        });
        if open != 1 {
            doubled.push(format!("{open} open attempts: {mine}"));
        }
    }
    assert!(
        doubled.is_empty(),
        "two starts at once must open exactly one attempt:\n{}",
        doubled.join("\n")
    );
}

// ---- 10: the questions only inside the student's own open attempt ----------------------------

#[tokio::test]
async fn reading_the_questions_without_starting_an_attempt() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let other = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let (exam, _) = h.exam_with_questions(&owner, 3, true).await;

    // Before starting: no question text from any route, but the outline of the exam.
    for (reader, who) in [(&student, "a student"), (&other, "another instructor")] {
        let (status, body) = h
            .call("GET", &format!("/exams/{exam}/questions"), None, reader)
            .await;
        assert!(
            status >= 400 && !shows_question_text(&body),
            "{who} reads the questions before any attempt: {status} {body}"
        );
    }
    let (status, outline) = h
        .call("GET", &format!("/exams/{exam}"), None, &student)
        .await;
    assert_eq!(status, 200, "{outline}");
    assert!(!shows_question_text(&outline), "{outline}");
    assert_eq!(outline["title"], "Rust basics");
    assert_eq!(outline["description"], "Ownership and borrowing");
    assert_eq!(outline["duration_minutes"], 30);
    assert_eq!(outline["question_count"], 3);
    assert_eq!(outline["total_points"], 6, "points 1 + 2 + 3: {outline}");

    // Inside the attempt: the paper, without the answers.
    let (status, started) = start(&h, &exam, &student).await;
    assert_eq!(status, 201, "{started}");
    let attempt = id_of(&started, "attempt_id");
    let (status, read) = h
        .call("GET", &format!("/attempts/{attempt}"), None, &student)
        .await;
    assert_eq!(status, 200, "{read}");
    for body in [&started, &read] {
        let texts: Vec<_> = body["questions"]
            .as_array()
            .map(|qs| qs.iter().map(|q| q["text"].clone()).collect())
            .unwrap_or_default();
        assert_eq!(
            texts,
            vec![
                json!("Question 0"),
                json!("Question 1"),
                json!("Question 2")
            ],
            "{body}"
        );
        assert!(!mentions_answers(body), "{body}");
    }
    // The route outside the attempt stays closed to the student while it is open.
    let (status, body) = h
        .call("GET", &format!("/exams/{exam}/questions"), None, &student)
        .await;
    assert!(
        status >= 400 && !shows_question_text(&body),
        "{status} {body}"
    );

    // Once it is submitted, the paper is gone again.
    let (status, submitted) = h
        .call(
            "POST",
            &format!("/attempts/{attempt}/submit"),
            None,
            &student,
        )
        .await;
    assert_eq!(status, 200, "{submitted}");
    let (status, after) = h
        .call("GET", &format!("/attempts/{attempt}"), None, &student)
        .await;
    assert_eq!(status, 200, "{after}");
    for body in [&submitted, &after] {
        assert!(
            !shows_question_text(body),
            "a closed attempt shows its paper: {body}"
        );
    }

    // The owner still sees everything.
    let (status, all) = h
        .call("GET", &format!("/exams/{exam}/questions"), None, &owner)
        .await;
    assert_eq!(status, 200);
    assert!(mentions_answers(&all) && shows_question_text(&all), "{all}");
}

// ---- 14: attempts close on their own at their deadline ----------------------------------------

/// The attempt ids of the result emails waiting on the bulk lane, taken off it as the worker
/// would take them.
async fn result_emails(queues: &dyn MessageQueues) -> Vec<String> {
    result_email_jobs(queues)
        .await
        .into_iter()
        .map(|(attempt_id, _)| attempt_id)
        .collect()
}

/// The result emails waiting on the bulk lane, taken off it as the worker would take them:
/// their attempt ids, and the jobs.
async fn result_email_jobs(queues: &dyn MessageQueues) -> Vec<(String, EmailJob)> {
    let mut jobs = Vec::new();
    loop {
        let batch = queues
            .receive(QueueName::Bulk, 10, None, Duration::ZERO)
            .await
            .expect("receive");
        if batch.is_empty() {
            return jobs;
        }
        for message in batch {
            queues
                .delete(QueueName::Bulk, &message.receipt_handle)
                .await
                .expect("delete");
            let job = EmailJob::decode(&message.body).expect("an email job");
            if let EmailTemplate::ExamResult { attempt_id, .. } = &job.template {
                jobs.push((attempt_id.clone(), job));
            }
        }
    }
}

/// The result emails on the bulk lane, taken from it: (attempt id, job id) each.
async fn result_email_job_ids(queues: &dyn MessageQueues) -> Vec<(String, String)> {
    let jobs = result_email_jobs(queues).await;
    jobs.into_iter()
        .map(|(attempt, job)| (attempt, job.job_id))
        .collect()
}

async fn save_in_time(h: &ExamHarness, attempt: &str, answers: Value, student: &Caller) {
    let body = json!({ "answers": answers });
    let (status, saved) = h
        .call(
            "PUT",
            &format!("/attempts/{attempt}/answers"),
            Some(&body),
            student,
        )
        .await;
    assert_eq!(status, 200, "{saved}");
}

#[tokio::test]
async fn walking_away_without_submitting_leaves_the_attempt_open_forever() {
    let h = ExamHarness::in_memory();
    let queue = h.queue.clone().expect("in-memory queues");
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    // Question i: right option i % 3, worth i + 1 points.
    let (exam, questions) = h.exam_with_questions(&owner, 3, true).await;
    let (status, started) = start(&h, &exam, &student).await;
    assert_eq!(status, 201, "{started}");
    let attempt = id_of(&started, "attempt_id");
    // Two right (1 + 2 points), one wrong: 3 of 6.
    let answers =
        json!({ questions[0].as_str(): 0, questions[1].as_str(): 1, questions[2].as_str(): 0 });
    save_in_time(&h, &attempt, answers, &student).await;

    // The student never presses submit; the 30 minutes pass and the sweep runs.
    h.clock.advance(30 * 60 + 5);
    h.sweep().await;

    let (status, read) = h
        .call("GET", &format!("/attempts/{attempt}"), None, &student)
        .await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(
        read["status"], "submitted",
        "still open after its deadline: {read}"
    );
    let result = &read["result"];
    assert_eq!(
        (&result["score"], &result["max_score"], &result["percent"]),
        (&json!(3), &json!(6), &json!(50)),
        "graded on the answers saved in time: {read}"
    );
    assert_eq!(result["closed_by"], "deadline", "{read}");
    assert_eq!(result["late"], false, "not the student's lateness: {read}");
    assert_eq!(result["submitted_at"], read["deadline"], "{read}");

    let (status, results) = h
        .call("GET", &format!("/exams/{exam}/results"), None, &owner)
        .await;
    assert_eq!(status, 200, "{results}");
    assert_eq!(results["results"][0]["status"], "submitted", "{results}");
    assert_eq!(results["results"][0]["result"]["score"], 3, "{results}");
    assert_eq!(result_emails(&*queue).await, vec![attempt.clone()]);

    // Closed once: another sweep and the student's submit change nothing and send nothing.
    assert_eq!(h.sweep().await.closed, 0);
    let (status, submitted) = h
        .call(
            "POST",
            &format!("/attempts/{attempt}/submit"),
            None,
            &student,
        )
        .await;
    assert_eq!(status, 200, "{submitted}");
    assert_eq!(&submitted["result"], result, "{submitted}");
    assert_eq!(result_emails(&*queue).await, Vec::<String>::new());
}

#[tokio::test]
async fn submitting_as_the_deadline_sweep_runs_grades_the_attempt_twice() {
    let env = TestEnv::spawn().await;
    let h = env.exam_harness(no_cache());
    let queues = env.sqs_queues();
    let owner = h.sign_in(Role::Instructor).await;
    let (exam, questions) = h.exam_with_questions(&owner, 2, true).await;
    let mut sitting = Vec::new();
    for _ in 0..4 {
        let student = h.sign_in(Role::Student).await;
        let (status, started) = start(&h, &exam, &student).await;
        assert_eq!(status, 201, "{started}");
        let attempt = id_of(&started, "attempt_id");
        save_in_time(&h, &attempt, json!({ questions[0].as_str(): 0 }), &student).await;
        sitting.push((student, attempt));
    }
    h.clock.advance(30 * 60 + 1);

    // Two students press submit (late) just as the sweep runs; two have walked away.
    let h = &h;
    let submits = sitting[..2].iter().map(|(student, attempt)| async move {
        h.call(
            "POST",
            &format!("/attempts/{attempt}/submit"),
            None,
            student,
        )
        .await
    });
    let (_, answers) = tokio::join!(h.sweep(), futures_util::future::join_all(submits));
    for (status, body) in answers {
        assert_eq!(status, 200, "{body}");
    }
    h.sweep().await;

    let mut problems = Vec::new();
    for (student, attempt) in &sitting {
        let (_, read) = h
            .call("GET", &format!("/attempts/{attempt}"), None, student)
            .await;
        if read["status"] != "submitted" || read["result"]["score"] != 1 {
            problems.push(format!("not closed and graded once: {read}"));
        }
    }
    let mut emailed = result_emails(&*queues).await;
    emailed.sort();
    let mut expected: Vec<String> = sitting.iter().map(|(_, a)| a.clone()).collect();
    expected.sort();
    if emailed != expected {
        problems.push(format!(
            "one result email per attempt expected: {} emails for {} attempts",
            emailed.len(),
            expected.len()
        ));
    }
    let (_, results) = h
        .call("GET", &format!("/exams/{exam}/results"), None, &owner)
        .await;
    let graded = results["results"].as_array().map_or(0, |all| {
        all.iter().filter(|r| r["status"] == "submitted").count()
    });
    if graded != 4 {
        problems.push(format!("{graded} of 4 attempts in the results: {results}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---- 14 (continued): no result email lost when a submit cannot queue it ----------------------
//
// A submit claims its result email with a job id in its store write, then records the job and
// sends it. The queue can refuse it, the claim's release can fail too, the process can die
// between any two of these steps and a sweep can run between any two of them: whatever is
// left, a sweep at the email's check (`EMAIL_CHECK_AFTER`, two minutes after the submit: the
// submit moves the attempt's due entry there) or any later one queues the email, and the worker
// sends it once. Each body runs over the in-memory adapters (`in_memory::<body>`) and over
// DynamoDB and SQS in the emulator (`on_aws::<body>`), the attempts, the result emails' lane and
// the job ledger behind `Faults`. Unlike the rest of this module, three of them passed before
// their fix too (`the_queue_refusing_the_result_email_at_the_submit`, `sweeping_again_…` and
// `submitting_late_as_the_sweep_queues_…`): they keep what the fixes must not break.

macro_rules! on_both {
    ($($body:ident),* $(,)?) => {
        mod in_memory {
            $(
                #[tokio::test]
                async fn $body() {
                    let queues = oes_adapters::memory::MemoryQueues::new();
                    let jobs = std::sync::Arc::new(oes_adapters::memory::MemoryJobs::default());
                    let adapters = oes_runtime::wiring::ApiAdapters::in_memory(queues, jobs);
                    super::$body(super::Faulty::over(adapters)).await;
                }
            )*
        }

        mod on_aws {
            $(
                #[tokio::test]
                async fn $body() {
                    let env = oes_tests::TestEnv::spawn().await;
                    let adapters = env.adapters_with_cache(oes_tests::exams::no_cache());
                    super::$body(super::Faulty::over(adapters)).await;
                }
            )*
        }
    };
}

on_both!(
    the_queue_refusing_the_result_email_at_the_submit,
    the_queue_refusing_the_result_email_and_its_claim_not_released,
    the_job_ledger_refusing_the_result_email_and_its_claim_not_released,
    the_submit_dying_between_its_store_write_and_queueing_the_email,
    sweeping_again_an_attempt_whose_result_email_is_queued,
    submitting_late_as_the_sweep_queues_the_email_the_submit_claimed,
    submitting_late_the_queue_refusing_the_email_the_sweep_found_recorded,
    the_submit_dying_between_recording_the_email_and_sending_it,
    the_submit_written_twice_its_first_answer_lost,
    submitting_again_after_a_submit_died_between_its_store_write_and_queueing_the_email,
    the_queue_taking_the_result_email_unheard_and_the_ledger_unable_to_say_so,
    the_sweeps_send_of_a_released_result_email_lost_unheard,
    the_sweep_losing_its_claim_to_a_second_submit_whose_send_is_lost_unheard,
    the_sweep_losing_its_claim_to_a_second_submit_whose_send_is_refused,
    a_start_racing_the_exams_delete,
    a_start_racing_a_lower_attempt_limit,
);

/// exam-api and the sweeper over adapters whose attempts, result emails' lane and job ledger
/// fail on demand ([`Faults`]), with the queues and the job ledger behind them.
struct Faulty {
    h: ExamHarness,
    faults: Arc<Faults>,
    queues: Arc<dyn MessageQueues>,
    jobs: Arc<dyn JobLedger>,
}

impl Faulty {
    fn over(mut adapters: ApiAdapters) -> Self {
        let faults = Arc::new(Faults {
            attempts: adapters.attempts.clone(),
            lanes: EmailLanes::new(adapters.queues.clone()),
            jobs: adapters.jobs.clone(),
            queue_down: AtomicBool::new(false),
            ledger_down: AtomicBool::new(false),
            release_down: AtomicBool::new(false),
            queue_takes_unheard: AtomicBool::new(false),
            queue_loses_unheard: AtomicBool::new(false),
            clear_due_refusals: AtomicU32::new(0),
            write_submit_twice: AtomicBool::new(false),
            hold: Mutex::new(None),
            send_hold: Mutex::new(None),
            listing_hold: Mutex::new(None),
            claim_hold: Mutex::new(None),
            create_hold: Mutex::new(None),
        });
        let jobs = adapters.jobs.clone();
        adapters.attempts = faults.clone();
        adapters.jobs = faults.clone();
        adapters.emails =
            EmailProducer::new(faults.clone(), adapters.jobs.clone(), Arc::new(SystemClock));
        Self {
            h: ExamHarness::over(&adapters),
            faults,
            queues: adapters.queues.clone(),
            jobs,
        }
    }

    /// A student's attempt at a new exam of two questions, one answer saved: the student and
    /// the attempt's id. Its deadline is in 30 minutes.
    async fn sitting(&self) -> (Caller, AttemptId) {
        let h = &self.h;
        let owner = h.sign_in(Role::Instructor).await;
        let student = h.sign_in(Role::Student).await;
        let (exam, questions) = h.exam_with_questions(&owner, 2, true).await;
        let (status, started) = start(h, &exam, &student).await;
        assert_eq!(status, 201, "{started}");
        let attempt = id_of(&started, "attempt_id");
        save_in_time(h, &attempt, json!({ questions[0].as_str(): 0 }), &student).await;
        (student, AttemptId::from_trusted(attempt))
    }

    /// `student` starts an attempt at `exam`, and `meanwhile` runs once the start has read
    /// the exam and before it writes the attempt: the start's answer, and `meanwhile`'s.
    async fn start_racing(
        &self,
        exam: &str,
        student: &Caller,
        meanwhile: impl std::future::Future<Output = (u16, Value)>,
    ) -> ((u16, Value), (u16, Value)) {
        let create = self.faults.hold_next_create();
        let raced = async {
            create.written.notified().await;
            let answer = meanwhile.await;
            create.resume.notify_one();
            answer
        };
        tokio::join!(start(&self.h, exam, student), raced)
    }

    /// The attempt as stored.
    async fn stored(&self, id: &AttemptId) -> Attempt {
        self.faults
            .get_attempt(id)
            .await
            .expect("the attempt read")
            .expect("the attempt")
    }

    /// [`Self::sitting`]'s attempt submitted while the queue refused its result email (503, the
    /// claim released): the student and the attempt's id.
    async fn submitted_while_the_queue_refused(&self) -> (Caller, AttemptId) {
        let (student, id) = self.sitting().await;
        self.faults.queue_down(true);
        let (status, body) = submit(&self.h, id.as_str(), &student).await;
        assert_eq!(status, 503, "{body}");
        self.faults.queue_down(false);
        (student, id)
    }

    /// A submit's store write alone, claiming the result email of `id` for a new job: the
    /// request that made it dies before it records the job. The claimed job's id.
    async fn submit_write_only(&self, id: &AttemptId) -> String {
        let attempt = self.stored(id).await;
        let claimed = uuid::Uuid::new_v4().to_string();
        let now = self.h.clock.now();
        let result = attempt.grade(now);
        self.faults
            .submit(
                id,
                &result,
                &attempt.answers,
                &claimed,
                now + EMAIL_CHECK_AFTER,
            )
            .await
            .expect("the submit's write");
        claimed
    }

    /// Passes the deadline of [`Self::sitting`]'s attempts.
    fn pass_the_deadline(&self) {
        self.h.clock.advance(30 * 60 + 1);
    }

    /// Passes the check of the result email of an attempt submitted now, 28 minutes before the
    /// deadline of [`Self::sitting`]'s attempts.
    fn pass_the_email_check(&self) {
        self.h.clock.advance(EMAIL_CHECK_AFTER);
    }

    /// Three sweeps, each past another email check: the result emails they queued (taken off
    /// the lane), as attempt and job ids.
    async fn sweeps_at_three_email_checks(&self) -> Vec<(String, String)> {
        let mut queued = Vec::new();
        for _ in 0..3 {
            self.pass_the_email_check();
            self.h.sweep().await;
            queued.extend(result_email_job_ids(&*self.queues).await);
        }
        queued
    }

    /// A sweep lists the due attempts, `student` submits `id` until the submit holds at `hold`,
    /// then the sweep settles what it listed while the submit holds: the submit's answer and the
    /// sweep's report. (The submit's write moves the attempt's due entry from its deadline to its
    /// email's check: a sweep that lists the entries after it does not see the attempt.)
    async fn submit_as_the_sweep_runs(
        &self,
        id: &AttemptId,
        student: &Caller,
        hold: &Hold,
    ) -> ((u16, Value), SweepReport) {
        let listed = self.faults.hold_next_listing();
        let swept = async {
            let report = self.h.sweep().await;
            hold.resume.notify_one();
            report
        };
        let submitted = async {
            listed.written.notified().await;
            submit(&self.h, id.as_str(), student).await
        };
        let held = async {
            hold.written.notified().await;
            listed.resume.notify_one();
        };
        let (answer, report, ()) = tokio::join!(submitted, swept, held);
        (answer, report)
    }

    /// Checks that a sweep settles the submitted attempt `id` and queues its result email, and
    /// that a second sweep finds nothing left to do.
    async fn sweep_queues_one_result_email(&self, id: &AttemptId) {
        let report = self.h.sweep().await;
        assert_eq!(
            result_emails(&*self.queues).await,
            [id.to_string()],
            "one result email after the sweep ({report:?})"
        );
        assert_eq!(report, RECOVERED_ONE);
        assert_eq!(self.h.sweep().await, SweepReport::default());
        assert_eq!(result_emails(&*self.queues).await, Vec::<String>::new());
    }
}

/// Attempts, a result emails' lane and a job ledger over real ones that fail on demand: the
/// lane refuses jobs while `queue_down`, the ledger refuses to record them while `ledger_down`,
/// the claims of result emails are not released while `release_down`, the lane takes jobs and
/// answers an error and the ledger cannot record them unqueued while `queue_takes_unheard` (the
/// same, the job not taken, while `queue_loses_unheard`), the next
/// `clear_due_refusals` due entries are not cleared, the next submit's write is sent twice and
/// answered by the second while `write_submit_twice`, a submit holds after its write while a
/// [`Hold`] is set, a job's send holds before it reaches the lane while a `send_hold` is, a
/// listing of the due attempts holds after it has read them while a `listing_hold` is, a
/// claim of a result email holds before it is made while a `claim_hold` is, and an attempt's
/// creation holds before it is written while a `create_hold` is.
struct Faults {
    attempts: Arc<dyn AttemptStore>,
    lanes: EmailLanes,
    jobs: Arc<dyn JobLedger>,
    queue_down: AtomicBool,
    ledger_down: AtomicBool,
    release_down: AtomicBool,
    queue_takes_unheard: AtomicBool,
    queue_loses_unheard: AtomicBool,
    clear_due_refusals: AtomicU32,
    write_submit_twice: AtomicBool,
    hold: Mutex<Option<Arc<Hold>>>,
    send_hold: Mutex<Option<Arc<Hold>>>,
    listing_hold: Mutex<Option<Arc<Hold>>>,
    claim_hold: Mutex<Option<Arc<Hold>>>,
    create_hold: Mutex<Option<Arc<Hold>>>,
}

/// Where the next held call stops (`written` is notified), until `resume`: a submit after its
/// store write, a job's send after the job was recorded and before it reaches the lane.
#[derive(Default)]
struct Hold {
    written: Notify,
    resume: Notify,
}

impl Faults {
    fn queue_down(&self, down: bool) {
        self.queue_down.store(down, Ordering::SeqCst);
    }

    fn ledger_down(&self, down: bool) {
        self.ledger_down.store(down, Ordering::SeqCst);
    }

    fn release_down(&self, down: bool) {
        self.release_down.store(down, Ordering::SeqCst);
    }

    /// While on, the lane takes each job and then answers an error (every answer lost), and the
    /// ledger cannot record a job as unqueued: its producer cannot tell whether it went.
    fn queue_takes_unheard(&self, on: bool) {
        self.queue_takes_unheard.store(on, Ordering::SeqCst);
    }

    /// While on, the lane answers each job with an error without taking it, and the ledger
    /// cannot record a job as unqueued: its producer cannot tell that it was lost.
    fn queue_loses_unheard(&self, on: bool) {
        self.queue_loses_unheard.store(on, Ordering::SeqCst);
    }

    fn refuse_clear_due(&self, times: u32) {
        self.clear_due_refusals.store(times, Ordering::SeqCst);
    }

    /// Sends the next submit's store write twice and answers with the second: the first
    /// landed and its answer was lost (a timeout), and the client sent it again.
    fn write_next_submit_twice(&self) {
        self.write_submit_twice.store(true, Ordering::SeqCst);
    }

    /// Holds the next submit after its store write.
    fn hold_next_submit(&self) -> Arc<Hold> {
        Hold::set(&self.hold)
    }

    /// Holds the next job's send after its record, before it reaches the lane (and before
    /// `queue_down` is looked at).
    fn hold_next_send(&self) -> Arc<Hold> {
        Hold::set(&self.send_hold)
    }

    /// Holds the next listing of the due attempts after it has read them.
    fn hold_next_listing(&self) -> Arc<Hold> {
        Hold::set(&self.listing_hold)
    }

    /// Holds the next claim of a result email before it is made.
    fn hold_next_claim(&self) -> Arc<Hold> {
        Hold::set(&self.claim_hold)
    }

    /// Holds the next attempt's creation before it is written.
    fn hold_next_create(&self) -> Arc<Hold> {
        Hold::set(&self.create_hold)
    }
}

impl Hold {
    /// A new hold in `slot`, for the next call that takes it.
    fn set(slot: &Mutex<Option<Arc<Hold>>>) -> Arc<Hold> {
        let hold = Arc::new(Hold::default());
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(hold.clone());
        hold
    }

    /// The hold in `slot`, if any, taken from it.
    fn take(slot: &Mutex<Option<Arc<Hold>>>) -> Option<Arc<Hold>> {
        slot.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// With a hold: notifies `written`, then waits for `resume`.
    async fn stop(hold: Option<Arc<Hold>>) {
        if let Some(hold) = hold {
            hold.written.notify_one();
            hold.resume.notified().await;
        }
    }
}

fn outage(what: &'static str) -> StoreUnavailable {
    StoreUnavailable::new(what, "the test's outage")
}

#[async_trait]
impl EmailQueue for Faults {
    async fn enqueue(&self, job: &EmailJob) -> Result<(), QueueError> {
        Hold::stop(Hold::take(&self.send_hold)).await;
        if self.queue_down.load(Ordering::SeqCst) {
            return Err(QueueError {
                context: "sending an email job",
                source: "the test's outage".into(),
            });
        }
        if self.queue_loses_unheard.load(Ordering::SeqCst) {
            return Err(QueueError {
                context: "sending an email job",
                source: "the test lost the job and every answer".into(),
            });
        }
        self.lanes.enqueue(job).await?;
        if self.queue_takes_unheard.load(Ordering::SeqCst) {
            return Err(QueueError {
                context: "sending an email job",
                source: "the test lost every answer".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl JobLedger for Faults {
    fn record_lifetime_seconds(&self) -> Option<i64> {
        self.jobs.record_lifetime_seconds()
    }
    async fn record_queued(&self, job: &EmailJob, now: i64) -> Result<(), StoreError<JobConflict>> {
        if self.ledger_down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(outage("recording an email job")));
        }
        self.jobs.record_queued(job, now).await
    }
    async fn claim(
        &self,
        job: &EmailJob,
        now: i64,
        lease_seconds: i64,
    ) -> Result<Claim, StoreError<JobConflict>> {
        self.jobs.claim(job, now, lease_seconds).await
    }
    async fn finish(
        &self,
        job_id: &str,
        outcome: Outcome,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        self.jobs.finish(job_id, outcome, now).await
    }
    async fn requeue(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        self.jobs.requeue(job_id, now).await
    }
    async fn purged(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        self.jobs.purged(job_id, now).await
    }
    async fn unqueued(
        &self,
        job_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        if self.queue_takes_unheard.load(Ordering::SeqCst)
            || self.queue_loses_unheard.load(Ordering::SeqCst)
        {
            return Err(StoreError::Unavailable(outage("recording a job unqueued")));
        }
        self.jobs.unqueued(job_id, reason, now).await
    }
    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StoreUnavailable> {
        self.jobs.get(job_id).await
    }
}

#[async_trait]
impl AttemptStore for Faults {
    async fn create_attempt(
        &self,
        attempt: &Attempt,
        max_attempts: u32,
    ) -> Result<(), StoreError<AttemptConflict>> {
        Hold::stop(Hold::take(&self.create_hold)).await;
        self.attempts.create_attempt(attempt, max_attempts).await
    }
    async fn get_attempt(&self, id: &AttemptId) -> Result<Option<Attempt>, StoreUnavailable> {
        self.attempts.get_attempt(id).await
    }
    async fn save_answers(
        &self,
        id: &AttemptId,
        answers: &Answers,
        now: i64,
    ) -> Result<(), StoreError<AttemptConflict>> {
        self.attempts.save_answers(id, answers, now).await
    }
    async fn submit(
        &self,
        id: &AttemptId,
        result: &AttemptResult,
        graded: &Answers,
        email_job_id: &str,
        email_check_at: i64,
    ) -> Result<(), StoreError<AttemptConflict>> {
        let hold = Hold::take(&self.hold);
        let submit = || {
            self.attempts
                .submit(id, result, graded, email_job_id, email_check_at)
        };
        if self.write_submit_twice.swap(false, Ordering::SeqCst) {
            // The answer to this one is lost.
            let _ = submit().await;
        }
        let submitted = submit().await;
        Hold::stop(hold).await;
        submitted
    }
    async fn claim_result_email(
        &self,
        id: &AttemptId,
        job_id: &str,
    ) -> Result<bool, StoreError<AttemptConflict>> {
        Hold::stop(Hold::take(&self.claim_hold)).await;
        self.attempts.claim_result_email(id, job_id).await
    }
    async fn release_result_email(
        &self,
        id: &AttemptId,
        job_id: &str,
    ) -> Result<(), StoreError<AttemptConflict>> {
        if self.release_down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable(outage("releasing a result email")));
        }
        self.attempts.release_result_email(id, job_id).await
    }
    async fn due_attempts(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<DueAttempt>, StoreUnavailable> {
        let hold = Hold::take(&self.listing_hold);
        let listed = self.attempts.due_attempts(now, limit).await;
        Hold::stop(hold).await;
        listed
    }
    async fn clear_due(&self, due: &DueAttempt) -> Result<(), StoreUnavailable> {
        let refuse = self
            .clear_due_refusals
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if refuse {
            return Err(outage("clearing a due attempt"));
        }
        self.attempts.clear_due(due).await
    }
    async fn attempts_of_user(
        &self,
        user: &UserId,
        limit: usize,
        after: Option<&AttemptCursor>,
    ) -> Result<Vec<AttemptSummary>, StoreUnavailable> {
        self.attempts.attempts_of_user(user, limit, after).await
    }
    async fn attempts_of_exam(
        &self,
        exam: &ExamId,
        limit: usize,
        after: Option<&AttemptCursor>,
    ) -> Result<Vec<AttemptSummary>, StoreUnavailable> {
        self.attempts.attempts_of_exam(exam, limit, after).await
    }
}

/// A sweep that found one attempt submitted, its result email on its way: nothing to do.
const SUBMITTED_ONE: SweepReport = SweepReport {
    closed: 0,
    submitted: 1,
    recovered: 0,
    waiting: 0,
    failed: 0,
};

/// A sweep that found one attempt submitted, its result email left undone by the submit, and
/// queued it or sent it to its lane again.
const RECOVERED_ONE: SweepReport = SweepReport {
    closed: 0,
    submitted: 0,
    recovered: 1,
    waiting: 0,
    failed: 0,
};

/// The queue refuses the result email at the submit (503; the claim is released): the student
/// never submits again, and the sweep at the deadline queues the email, once.
async fn the_queue_refusing_the_result_email_at_the_submit(f: Faulty) {
    let h = &f.h;
    let (student, id) = f.sitting().await;
    f.faults.queue_down(true);
    let (status, body) = submit(h, id.as_str(), &student).await;
    assert_eq!(
        (status, code(&body)),
        (503, "email_queue_unavailable"),
        "{body}"
    );
    f.faults.queue_down(false);

    f.pass_the_deadline();
    f.sweep_queues_one_result_email(&id).await;
}

/// The queue refuses the result email at the submit (its job is recorded, then recorded failed)
/// and the claim cannot be released either. The sweep at the deadline queues the email, once.
async fn the_queue_refusing_the_result_email_and_its_claim_not_released(f: Faulty) {
    claim_not_released(f, Faults::queue_down).await;
}

/// The job ledger cannot record the result email's job at the submit (it is not queued) and the
/// claim cannot be released either. The sweep at the deadline queues the email, once.
async fn the_job_ledger_refusing_the_result_email_and_its_claim_not_released(f: Faulty) {
    claim_not_released(f, Faults::ledger_down).await;
}

/// The result email cannot be queued at the submit while `outage` is on, nor its claim
/// released: the attempt is left submitted with a claim for a job that will never be sent.
async fn claim_not_released(f: Faulty, outage: fn(&Faults, bool)) {
    let h = &f.h;
    let (student, id) = f.sitting().await;
    outage(&f.faults, true);
    f.faults.release_down(true);
    let (status, body) = submit(h, id.as_str(), &student).await;
    assert_eq!(
        (status, code(&body)),
        (503, "email_queue_unavailable"),
        "{body}"
    );
    outage(&f.faults, false);
    f.faults.release_down(false);
    let claimed = f.stored(&id).await.result_email_job;
    assert!(claimed.is_some(), "the claim is held: {claimed:?}");

    f.pass_the_deadline();
    f.sweep_queues_one_result_email(&id).await;
}

/// The lane takes the result email's job but every answer to the submit is an error, and the
/// job ledger cannot record the job as unqueued: the submit cannot tell whether the email went.
/// The job stays recorded as queued and claimed by the attempt, which is what a submit that died
/// after sending it leaves: the student submitting again finds it, and the sweep at the email's
/// check sends it again under its id if it never left (the worker's lease sends one copy). A
/// released claim let the next close queue a second job, and the student got two emails.
async fn the_queue_taking_the_result_email_unheard_and_the_ledger_unable_to_say_so(f: Faulty) {
    let h = &f.h;
    let (student, id) = f.sitting().await;
    f.faults.queue_takes_unheard(true);
    let (status, body) = submit(h, id.as_str(), &student).await;
    assert_eq!(
        status, 200,
        "submitted, its email on its way or resent: {body}"
    );
    f.faults.queue_takes_unheard(false);
    let (status, body) = submit(h, id.as_str(), &student).await;
    assert_eq!(status, 200, "the student submits again: {body}");
    let mut jobs = result_email_job_ids(&*f.queues).await;
    f.pass_the_email_check();
    h.sweep().await;
    f.pass_the_deadline();
    h.sweep().await;
    jobs.extend(result_email_job_ids(&*f.queues).await);
    jobs.dedup();
    let claimed = f.stored(&id).await.result_email_job;
    assert_eq!(
        jobs,
        [(id.to_string(), claimed.unwrap_or_default())],
        "one result email job, the one the attempt claims (copies of it are sent once)"
    );
}

/// A sweep settles each due attempt once: an email queued unsure stays due (a later sweep
/// looks at it again), and this sweep, reading its next batch, found the entry again and
/// settled it a second time — counted twice (here 102 settled of 101 due), and as failed if the
/// ledger was still down, which fails the run. Over the in-memory adapters only: it needs more
/// due attempts than a batch (100).
#[tokio::test]
async fn a_sweep_settles_an_email_queued_unsure_once() {
    let queues = oes_adapters::memory::MemoryQueues::new();
    let jobs = Arc::new(oes_adapters::memory::MemoryJobs::default());
    let f = Faulty::over(oes_runtime::wiring::ApiAdapters::in_memory(queues, jobs));
    let h = &f.h;
    let (_, _unsure) = f.submitted_while_the_queue_refused().await;
    let owner = h.sign_in(Role::Instructor).await;
    let (exam, _) = h.exam_with_questions(&owner, 1, true).await;
    for _ in 0..100 {
        let student = h.sign_in(Role::Student).await;
        assert_eq!(start(h, &exam, &student).await.0, 201);
    }
    f.pass_the_deadline();
    f.faults.queue_loses_unheard(true);
    let report = h.sweep().await;
    f.faults.queue_loses_unheard(false);
    let settled =
        report.closed + report.submitted + report.recovered + report.waiting + report.failed;
    assert_eq!(settled, 101, "{report:?}");
    assert_eq!((report.recovered, report.waiting), (1, 0), "{report:?}");
}

/// A sweep whose time is spent takes no more due attempts than its first wave (so a sweep
/// given too little time still gets on), also within a batch: it looked at its budget only
/// between batches, so a batch of 100 (13 waves of 8, each settle several AWS calls in a row)
/// begun near the end ran past the Lambda's timeout, and the run's report and metrics were
/// lost. The entries it did not take wait for the next sweep.
#[tokio::test]
async fn a_sweep_whose_time_is_spent_takes_no_more_due_attempts() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let (exam, _) = h.exam_with_questions(&owner, 1, true).await;
    for _ in 0..10 {
        let student = h.sign_in(Role::Student).await;
        assert_eq!(start(&h, &exam, &student).await.0, 201);
    }
    h.clock.advance(30 * 60 + 1);
    let spent = h.sweep_within(std::time::Duration::ZERO).await;
    assert!((1..10).contains(&spent.closed), "one wave: {spent:?}");
    assert_eq!(
        h.sweep().await.closed,
        10 - spent.closed,
        "the next sweep takes the rest"
    );
}

/// The queue refuses the result email at the submit (its claim released); at the email's check
/// the sweep claims and queues it again, and that send is lost unheard: the queue answers an
/// error without the job, and the ledger cannot record it unqueued, so the sweep cannot tell.
/// It cleared the attempt's due entry all the same, and nothing ever sent the email. Now an
/// unsure send keeps the entry: a later sweep finds the job recorded and untaken, and sends it.
async fn the_sweeps_send_of_a_released_result_email_lost_unheard(f: Faulty) {
    let h = &f.h;
    let (_, id) = f.submitted_while_the_queue_refused().await;

    f.pass_the_email_check();
    f.faults.queue_loses_unheard(true);
    h.sweep().await;
    f.faults.queue_loses_unheard(false);
    assert_eq!(
        result_emails(&*f.queues).await,
        Vec::<String>::new(),
        "lost"
    );

    let jobs = f.sweeps_at_three_email_checks().await;
    let claimed = f.stored(&id).await.result_email_job;
    assert_eq!(
        jobs,
        [(id.to_string(), claimed.unwrap_or_default())],
        "the email, sent again once by a later sweep"
    );
}

/// The queue refuses the result email at the submit (its claim released). At the email's check
/// the sweep finds it unclaimed and, as it claims it, the student submits again and claims it
/// first; that submit's send is lost unheard (the job recorded queued, the claim kept, the
/// student answered 200). The sweep's claim fails, and it cleared the attempt's due entry as if
/// nothing were left to do: nothing ever sent the email. A sweep that loses the claim to another
/// close now keeps the entry, and a later one finds the job recorded, untaken, and sends it.
async fn the_sweep_losing_its_claim_to_a_second_submit_whose_send_is_lost_unheard(f: Faulty) {
    sweep_losing_its_claim_to_a_second_submit(&f, Faults::queue_loses_unheard, 200).await;
}

/// As [`the_sweep_losing_its_claim_to_a_second_submit_whose_send_is_lost_unheard`], the second
/// submit's send refused after the sweep's claim failed: the submit releases its claim and
/// answers 503, and if the student does not try again, only a sweep is left to send the email.
async fn the_sweep_losing_its_claim_to_a_second_submit_whose_send_is_refused(f: Faulty) {
    sweep_losing_its_claim_to_a_second_submit(&f, Faults::queue_down, 503).await;
}

/// A student's start reads the exam; before it writes the attempt, the owner deletes the exam
/// (its look for attempts under way found none: there was none yet). The start wrote its
/// attempt all the same — an attempt at a deleted exam, the questions of its paper gone. The
/// attempt's write is now on condition that its exam is there and published: the start answers
/// 404, and nothing of it is stored.
async fn a_start_racing_the_exams_delete(f: Faulty) {
    let h = &f.h;
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let (exam, _) = h.exam_with_questions(&owner, 2, true).await;
    let path = format!("/exams/{exam}");
    let delete = h.call("DELETE", &path, None, &owner);
    let ((status, body), (deleted, gone)) = f.start_racing(&exam, &student, delete).await;
    assert_eq!(deleted, 200, "{gone}");
    assert_eq!((status, code(&body)), (404, "not_found"), "{body}");
    let (_, mine) = h.call("GET", "/me/attempts", None, &student).await;
    assert_eq!(mine["attempts"].as_array().map(Vec::len), Some(0), "{mine}");
}

/// A student's second start reads the exam (two attempts allowed); before it writes its
/// attempt, the owner lowers the limit to one. The start wrote it all the same, under the limit
/// it had read: two attempts where one is allowed (and a review switched to "from the close"
/// meanwhile would have been missed the same way). The attempt's write is now on condition
/// that its exam is as the start read it; a change since makes the start read it again.
async fn a_start_racing_a_lower_attempt_limit(f: Faulty) {
    let h = &f.h;
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let (exam, _) = h.exam_with_questions(&owner, 2, true).await;
    let limit = |n: u32| json!({ "max_attempts": n });
    let path = format!("/exams/{exam}");
    let (status, body) = h.call("PATCH", &path, Some(&limit(2)), &owner).await;
    assert_eq!(status, 200, "{body}");
    let (status, first) = start(h, &exam, &student).await;
    assert_eq!(status, 201, "{first}");
    let (status, body) = submit(h, &id_of(&first, "attempt_id"), &student).await;
    assert_eq!(status, 200, "{body}");

    let one = limit(1);
    let lower = h.call("PATCH", &path, Some(&one), &owner);
    let ((status, body), (lowered, patched)) = f.start_racing(&exam, &student, lower).await;
    assert_eq!(lowered, 200, "{patched}");
    assert_eq!((status, code(&body)), (409, "attempts_exhausted"), "{body}");
}

/// The body of the two tests above: `fault` on for the second submit's send, which answers
/// `status`.
async fn sweep_losing_its_claim_to_a_second_submit(
    f: &Faulty,
    fault: fn(&Faults, bool),
    status: u16,
) {
    let h = &f.h;
    let (student, id) = f.submitted_while_the_queue_refused().await;

    f.pass_the_email_check();
    // The sweep holds before its claim; the submit claims, records its job and holds before
    // the send; the sweep's claim fails and the sweep ends; then the submit's send meets `fault`.
    let claim = f.faults.hold_next_claim();
    let send = f.faults.hold_next_send();
    let swept = async {
        let report = h.sweep().await;
        send.resume.notify_one();
        assert_eq!(report.recovered, 0, "the sweep's claim lost: {report:?}");
    };
    let submitted = async {
        claim.written.notified().await;
        fault(&f.faults, true);
        let answer = submit(h, id.as_str(), &student).await;
        fault(&f.faults, false);
        answer
    };
    let held = async {
        send.written.notified().await;
        claim.resume.notify_one();
    };
    let ((), (answered, body), ()) = tokio::join!(swept, submitted, held);
    assert_eq!(answered, status, "the second submit: {body}");
    assert_eq!(
        result_emails(&*f.queues).await,
        Vec::<String>::new(),
        "lost"
    );

    let sent: Vec<String> = f
        .sweeps_at_three_email_checks()
        .await
        .into_iter()
        .map(|(attempt, _)| attempt)
        .collect();
    assert_eq!(
        sent,
        [id.to_string()],
        "the email, sent once by a later sweep"
    );
}

/// The submit's store write claims the result email for a job, and the process dies before it
/// queues the job: the job ledger has never heard of it. The sweep at the email's check, two
/// minutes later (not at the deadline, half an hour later), queues the email under the claimed
/// job id, once.
async fn the_submit_dying_between_its_store_write_and_queueing_the_email(f: Faulty) {
    let h = &f.h;
    let (_, id) = f.sitting().await;
    let claimed = f.submit_write_only(&id).await;

    f.pass_the_email_check();
    let report = h.sweep().await;
    let queued = result_email_job_ids(&*f.queues).await;
    assert_eq!(
        queued,
        [(id.to_string(), claimed.clone())],
        "one result email, the job claimed, after the sweep ({report:?})"
    );
    assert_eq!(report, RECOVERED_ONE);
    let record = f.jobs.get(&claimed).await.expect("the ledger read");
    assert!(record.is_some(), "the claimed job is recorded");
    assert_eq!(f.stored(&id).await.result_email_job, Some(claimed));
    assert_eq!(h.sweep().await, SweepReport::default());
    assert_eq!(result_emails(&*f.queues).await, Vec::<String>::new());
}

/// The submit's store write lands, its answer is lost, and it is sent again (the SDK retries a
/// call that timed out): the second write finds the attempt submitted by the first. The submit
/// still records and queues its result email at once, not at the deadline's sweep. Found by the
/// real-mode load test (moto ignores the token that makes DynamoDB's retried transaction
/// idempotent): of 400 submits, 2 answered 200 with their email claimed and never queued.
async fn the_submit_written_twice_its_first_answer_lost(f: Faulty) {
    let (student, id) = f.sitting().await;
    f.faults.write_next_submit_twice();
    let (status, body) = submit(&f.h, id.as_str(), &student).await;
    assert_eq!(status, 200, "{body}");
    let queued = result_email_jobs(&*f.queues).await;
    assert_eq!(
        queued
            .iter()
            .map(|(attempt, _)| attempt.as_str())
            .collect::<Vec<_>>(),
        [id.as_str()],
        "one result email queued by the submit"
    );
    let job_id = &queued[0].1.job_id;
    assert_eq!(f.stored(&id).await.result_email_job.as_ref(), Some(job_id));
    let record = f.jobs.get(job_id).await.expect("the ledger read");
    assert!(record.is_some(), "the job is recorded");
}

/// The submit's store write claims the result email for a job, and the request dies before it
/// records the job (a Lambda timeout, or every retry of a write that landed timing out: the
/// student saw a 503). The student submits again: that submit finds the attempt submitted and
/// the email claimed for a job the ledger does not know, and queues it under the claimed id at
/// once, instead of leaving it to the sweep at the attempt's deadline (hours later).
async fn submitting_again_after_a_submit_died_between_its_store_write_and_queueing_the_email(
    f: Faulty,
) {
    let h = &f.h;
    let (student, id) = f.sitting().await;
    let claimed = f.submit_write_only(&id).await;

    let (status, body) = submit(h, id.as_str(), &student).await;
    assert_eq!(status, 200, "{body}");
    let queued = result_email_job_ids(&*f.queues).await;
    assert_eq!(
        queued,
        [(id.to_string(), claimed.clone())],
        "one result email, the job claimed, queued by the second submit"
    );
    let record = f.jobs.get(&claimed).await.expect("the ledger read");
    assert!(record.is_some(), "the claimed job is recorded");
    let (status, body) = submit(h, id.as_str(), &student).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        result_emails(&*f.queues).await,
        Vec::<String>::new(),
        "a third submit finds the job recorded: nothing more"
    );
}

/// A submit queues its result email and a worker takes the job; at the deadline, sweeps find
/// the attempt again and again (its due entry cannot be cleared), while the worker holds the
/// job and once it is sent: none of them queues the email again. (A job no worker has taken by
/// the deadline is sent to its lane again, once per sweep that finds it:
/// `the_submit_dying_between_recording_the_email_and_sending_it`.)
async fn sweeping_again_an_attempt_whose_result_email_is_queued(f: Faulty) {
    let h = &f.h;
    let (student, id) = f.sitting().await;
    let (status, body) = submit(h, id.as_str(), &student).await;
    assert_eq!(status, 200, "{body}");
    let mut queued = result_email_jobs(&*f.queues).await;
    assert_eq!(queued.len(), 1, "the submit's result email");
    let (_, job) = queued.remove(0);
    // A worker takes it (and is slow to send it).
    let taken = h.clock.now();
    f.jobs.claim(&job, taken, 60).await.expect("the send lease");

    f.pass_the_deadline();
    f.faults.refuse_clear_due(3);
    let kept = SweepReport {
        failed: 1,
        ..SweepReport::default()
    };
    assert_eq!(h.sweep().await, kept);
    // The worker sends it.
    let sent = Outcome::Sent {
        ses_message_id: "ses-1".into(),
    };
    let now = h.clock.now();
    f.jobs.finish(&job.job_id, sent, now).await.expect("sent");
    assert_eq!(h.sweep().await, kept);
    assert_eq!(h.sweep().await, kept);
    assert_eq!(h.sweep().await, SUBMITTED_ONE);
    assert_eq!(h.sweep().await, SweepReport::default());
    assert_eq!(result_emails(&*f.queues).await, Vec::<String>::new());
    assert_eq!(f.stored(&id).await.result_email_job, Some(job.job_id));
}

/// A student submits late just as the sweep runs: the sweep finds the email claimed by the
/// submit between its store write and its queueing, and queues it under the claimed job id.
/// The submit then finds its job queued: it answers the result (not an error), keeps its claim,
/// and one email is queued.
async fn submitting_late_as_the_sweep_queues_the_email_the_submit_claimed(f: Faulty) {
    let h = &f.h;
    let (student, id) = f.sitting().await;
    f.pass_the_deadline();
    let hold = f.faults.hold_next_submit();
    let ((status, body), report) = f.submit_as_the_sweep_runs(&id, &student, &hold).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(report, RECOVERED_ONE);
    let queued = result_email_jobs(&*f.queues).await;
    let claimed = f.stored(&id).await.result_email_job;
    let jobs: Vec<_> = queued
        .iter()
        .map(|(_, job)| Some(job.job_id.clone()))
        .collect();
    assert_eq!(jobs, [claimed], "one result email, the job claimed");
    assert_eq!(h.sweep().await, SweepReport::default());
    assert_eq!(result_emails(&*f.queues).await, Vec::<String>::new());
}

/// A student submits late just as the sweep runs: the sweep finds the result email's job
/// recorded while the submit is still sending it, and the queue then refuses it (503; the job
/// recorded failed, the claim released). The sweep at the email's check queues the email, once.
async fn submitting_late_the_queue_refusing_the_email_the_sweep_found_recorded(f: Faulty) {
    let (student, id) = f.sitting().await;
    f.pass_the_deadline();
    let hold = f.faults.hold_next_send();
    f.faults.queue_down(true);
    let ((status, body), first) = f.submit_as_the_sweep_runs(&id, &student, &hold).await;
    assert_eq!(
        (status, code(&body)),
        (503, "email_queue_unavailable"),
        "{body}"
    );
    f.faults.queue_down(false);
    assert_eq!(result_emails(&*f.queues).await, Vec::<String>::new());
    let waiting = SweepReport {
        waiting: 1,
        ..SweepReport::default()
    };
    assert_eq!(
        first, waiting,
        "the job was on its way: the attempt stays due"
    );
    f.pass_the_email_check();
    f.sweep_queues_one_result_email(&id).await;
}

/// The submit records its result email's job, and the process dies before the job reaches the
/// lane: the ledger says `queued`, the lane has nothing. The sweep at the email's check, two
/// minutes later (not at the deadline), sends the job again under its id, once; of the copies,
/// the worker sends one.
async fn the_submit_dying_between_recording_the_email_and_sending_it(f: Faulty) {
    let h = &f.h;
    let (student, id) = f.sitting().await;
    let hold = f.faults.hold_next_send();
    tokio::select! {
        (status, body) = submit(h, id.as_str(), &student) => {
            panic!("the submit ended ({status}: {body}) while its send was held")
        }
        () = hold.written.notified() => {}
    }
    // The process dies here: the submit is dropped, its job recorded and never sent.
    let claimed = f.stored(&id).await.result_email_job.expect("the claim");
    let record = f.jobs.get(&claimed).await.expect("the ledger read");
    assert_eq!(record.map(|r| r.status), Some(JobStatus::Queued));

    f.pass_the_email_check();
    let report = h.sweep().await;
    let queued = result_email_jobs(&*f.queues).await;
    let jobs: Vec<_> = queued.iter().map(|(_, job)| job.job_id.clone()).collect();
    assert_eq!(
        jobs,
        std::slice::from_ref(&claimed),
        "one result email, the job claimed, after the sweep ({report:?})"
    );
    assert_eq!(report, RECOVERED_ONE);
    assert_eq!(h.sweep().await, SweepReport::default());
    assert_eq!(result_emails(&*f.queues).await, Vec::<String>::new());

    // The worker sends the job once, however many copies reach it.
    let (_, job) = &queued[0];
    let now = h.clock.now();
    let first = f.jobs.claim(job, now, 60).await.expect("the send lease");
    assert_eq!(first, Claim::Acquired { attempt: 1 });
    let sent = Outcome::Sent {
        ses_message_id: "ses-1".into(),
    };
    f.jobs.finish(&job.job_id, sent, now).await.expect("sent");
    let again = f.jobs.claim(job, now, 60).await.expect("a second copy");
    assert!(matches!(again, Claim::Finished(_)), "{again:?}");
}

/// A student submits again, weeks later (a stale tab, a client's retry): the result email was
/// sent, and DynamoDB's TTL has since dropped its job's record (`OES_JOB_RETENTION_DAYS` after
/// its last change). The attempt still names the job, and "claimed for a job the ledger does not
/// know" read as a close that died before recording it, so the submit queued the email again,
/// under its id: a second result email, every retention period. A job's record outlives the
/// submit by the retention at least, so only a claim younger than that is sent again.
#[tokio::test]
async fn submitting_again_after_the_result_emails_record_expired() {
    let env = TestEnv::spawn().await;
    let h = env.exam_harness(no_cache());
    let queues = env.sqs_queues();
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let (exam, _) = h.exam_with_questions(&owner, 1, true).await;
    let (status, started) = start(&h, &exam, &student).await;
    assert_eq!(status, 201, "{started}");
    let id = id_of(&started, "attempt_id");
    let (status, body) = submit(&h, &id, &student).await;
    assert_eq!(status, 200, "{body}");
    let sent = result_email_job_ids(&*queues).await;
    assert_eq!(sent.len(), 1, "the submit's result email");
    let job_id = &sent[0].1;

    // Weeks later: DynamoDB's TTL has dropped the job's record.
    h.clock
        .advance(env.api_config().resources.job_retention_seconds + 3_600);
    env.clients
        .dynamodb()
        .delete_item()
        .table_name(&env.api_config().resources.table)
        .key("pk", AttributeValue::S(format!("JOB#{job_id}")))
        .key("sk", AttributeValue::S("JOB".into()))
        .send()
        .await
        .expect("the record dropped, as the TTL drops it");

    let (status, body) = submit(&h, &id, &student).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        result_email_job_ids(&*queues).await,
        Vec::<(String, String)>::new(),
        "the email was sent weeks ago: not again"
    );
}

// ---- helpers of items 11, 13 and 15 ----------------------------------------------------------

/// An exam as `exam_with_questions` makes it (right answer of question i: option i % 3, worth
/// i + 1 points; 30 minutes), with `settings` set by its owner before it is published.
async fn exam_with(
    h: &ExamHarness,
    owner: &Caller,
    questions: usize,
    settings: Value,
) -> (String, Vec<String>) {
    let (exam, ids) = h.exam_with_questions(owner, questions, false).await;
    let (status, body) = h
        .call("PATCH", &format!("/exams/{exam}"), Some(&settings), owner)
        .await;
    assert_eq!(status, 200, "setting {settings}: {body}");
    let (status, body) = h
        .call("POST", &format!("/exams/{exam}/publish"), None, owner)
        .await;
    assert_eq!(status, 200, "{body}");
    (exam, ids)
}

/// The harness's time `seconds` from now, as the API writes times.
fn in_(h: &ExamHarness, seconds: i64) -> String {
    rfc3339(h.clock.now() + seconds)
}

async fn save_answers(
    h: &ExamHarness,
    attempt: &str,
    answers: Value,
    student: &Caller,
) -> (u16, Value) {
    let body = json!({ "answers": answers });
    h.call(
        "PUT",
        &format!("/attempts/{attempt}/answers"),
        Some(&body),
        student,
    )
    .await
}

async fn submit(h: &ExamHarness, attempt: &str, student: &Caller) -> (u16, Value) {
    h.call(
        "POST",
        &format!("/attempts/{attempt}/submit"),
        None,
        student,
    )
    .await
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

// ---- 11: attempts are limited, and what a finished attempt shows is the exam's to say ----------

#[tokio::test]
async fn a_second_sitting_after_submitting() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let (exam, questions) = h.exam_with_questions(&owner, 3, true).await;
    let (status, first) = start(&h, &exam, &student).await;
    assert_eq!(status, 201, "{first}");
    let first = id_of(&first, "attempt_id");
    let (status, _) = save_answers(&h, &first, json!({ questions[0].clone(): 2 }), &student).await;
    assert_eq!(status, 200);
    let (status, result) = submit(&h, &first, &student).await;
    assert_eq!(status, 200, "{result}");

    // The score says how many answers were right: a second sitting with one answer changed is
    // an oracle. An exam allows one attempt unless its owner says otherwise.
    let (status, second) = start(&h, &exam, &student).await;
    assert_eq!(
        (status, code(&second)),
        (409, "attempts_exhausted"),
        "a second sitting: {second}"
    );
    let (_, mine) = h.call("GET", "/me/attempts", None, &student).await;
    assert_eq!(mine["attempts"].as_array().map(Vec::len), Some(1), "{mine}");
}

#[tokio::test]
async fn concurrent_sittings_beyond_the_attempt_limit() {
    let env = TestEnv::spawn().await;
    let h = env.exam_harness(no_cache());
    let owner = h.sign_in(Role::Instructor).await;
    let (exam, _) = exam_with(&h, &owner, 2, json!({ "max_attempts": 2 })).await;
    let mut students = Vec::new();
    for _ in 0..3 {
        students.push(h.sign_in(Role::Student).await);
    }

    let mut over = Vec::new();
    for student in &students {
        let mut started = 0;
        // Four rounds of two starts at once, each started attempt submitted before the next.
        for _ in 0..4 {
            let ((first, a), (second, b)) =
                tokio::join!(start(&h, &exam, student), start(&h, &exam, student));
            for (status, body) in [(first, a), (second, b)] {
                match status {
                    201 => {
                        started += 1;
                        let (status, done) = submit(&h, &id_of(&body, "attempt_id"), student).await;
                        assert_eq!(status, 200, "{done}");
                    }
                    409 => {}
                    _ => over.push(format!("{status}: {body}")),
                }
            }
        }
        let (_, mine) = h.call("GET", "/me/attempts", None, student).await;
        let listed = mine["attempts"].as_array().map_or(0, Vec::len);
        if started != 2 || listed != 2 {
            over.push(format!(
                "{started} attempts started, {listed} listed: {mine}"
            ));
        }
        let (status, again) = start(&h, &exam, student).await;
        if (status, code(&again)) != (409, "attempts_exhausted") {
            over.push(format!("after the limit: {status} {again}"));
        }
    }
    assert!(
        over.is_empty(),
        "an exam allowing 2 attempts must allow exactly 2:\n{}",
        over.join("\n")
    );
}

#[tokio::test]
async fn reading_the_score_before_the_exam_closes() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let settings = json!({
        "closes_at": in_(&h, 2 * 3600),
        "review": { "shows": "score", "from": "close" },
    });
    let (exam, questions) = exam_with(&h, &owner, 3, settings).await;
    let (status, attempt) = start(&h, &exam, &student).await;
    assert_eq!(status, 201, "{attempt}");
    let attempt = id_of(&attempt, "attempt_id");
    let right = json!({ questions[0].clone(): 0, questions[1].clone(): 1 });
    assert_eq!(save_answers(&h, &attempt, right, &student).await.0, 200);

    // While the exam is open, a student who sat it learns nothing another could use.
    let (status, submitted) = submit(&h, &attempt, &student).await;
    assert_eq!(status, 200, "{submitted}");
    assert_eq!(submitted["status"], "submitted", "{submitted}");
    let (_, read) = h
        .call("GET", &format!("/attempts/{attempt}"), None, &student)
        .await;
    let (_, mine) = h.call("GET", "/me/attempts", None, &student).await;
    for body in [&submitted, &read, &mine["attempts"][0]] {
        assert!(
            body["result"].is_null() && body["marks"].is_null(),
            "the score before the exam closes: {body}"
        );
    }
    let queue = h.queue.as_ref().expect("in-memory queue");
    let emails = oes_tests::take_waiting(queue, 10).await;
    assert_eq!(
        emails.len(),
        1,
        "the submission is still confirmed by email"
    );
    assert!(
        !emails[0].body.contains("score_percent") && !emails[0].body.contains("50%"),
        "the email tells the score before the exam closes: {}",
        emails[0].body
    );
    // The owner sees it at once.
    let (_, results) = h
        .call("GET", &format!("/exams/{exam}/results"), None, &owner)
        .await;
    assert_eq!(results["results"][0]["result"]["score"], 3, "{results}");

    // Once the exam has closed, the student sees the score (and only the score).
    h.clock.advance(2 * 3600);
    let (_, read) = h
        .call("GET", &format!("/attempts/{attempt}"), None, &student)
        .await;
    let (_, mine) = h.call("GET", "/me/attempts", None, &student).await;
    for body in [&read, &mine["attempts"][0]] {
        assert_eq!(body["result"]["score"], 3, "{body}");
        assert!(body["marks"].is_null(), "{body}");
    }
}

#[tokio::test]
async fn learning_which_answers_were_right_from_a_finished_attempt() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;

    // An exam that shows the score only: nothing says which answers were right.
    let (exam, questions) = h.exam_with_questions(&owner, 3, true).await;
    let (_, attempt) = start(&h, &exam, &student).await;
    let attempt = id_of(&attempt, "attempt_id");
    let answers = json!({ questions[0].clone(): 0, questions[1].clone(): 0 });
    assert_eq!(
        save_answers(&h, &attempt, answers.clone(), &student)
            .await
            .0,
        200
    );
    let (status, submitted) = submit(&h, &attempt, &student).await;
    assert_eq!(status, 200, "{submitted}");
    let (_, read) = h
        .call("GET", &format!("/attempts/{attempt}"), None, &student)
        .await;
    for body in [&submitted, &read] {
        assert_eq!(body["result"]["score"], 1, "{body}");
        assert!(body["marks"].is_null(), "which answers were right: {body}");
    }

    // An exam whose owner chose to show the answers after it closes: right and wrong for each
    // of the student's answers, from then on (never the right option itself).
    let settings = json!({
        "closes_at": in_(&h, 3600),
        "review": { "shows": "answers", "from": "close" },
    });
    let (exam, questions) = exam_with(&h, &owner, 3, settings).await;
    let (_, attempt) = start(&h, &exam, &student).await;
    let attempt = id_of(&attempt, "attempt_id");
    let answers = json!({ questions[0].clone(): 0, questions[1].clone(): 0 });
    assert_eq!(save_answers(&h, &attempt, answers, &student).await.0, 200);
    let (_, submitted) = submit(&h, &attempt, &student).await;
    assert!(
        submitted["marks"].is_null() && submitted["result"].is_null(),
        "{submitted}"
    );
    h.clock.advance(3600);
    let (_, read) = h
        .call("GET", &format!("/attempts/{attempt}"), None, &student)
        .await;
    assert_eq!(
        read["marks"],
        json!({ questions[0].clone(): true, questions[1].clone(): false }),
        "{read}"
    );
    assert_eq!(read["result"]["score"], 1, "{read}");
    assert!(!mentions_answers(&read), "{read}");
}

/// An exam closing in an hour, two attempts each, reviewed (answers) from the close, and a
/// student's attempt at it with one answer saved, submitted: the harness, the owner, the
/// student, the exam and the attempt.
async fn submitted_before_a_close_in_an_hour() -> (ExamHarness, Caller, Caller, String, String) {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let settings = json!({
        "closes_at": in_(&h, 3600),
        "max_attempts": 2,
        "review": { "shows": "answers", "from": "close" },
    });
    let (exam, questions) = exam_with(&h, &owner, 3, settings).await;
    let (_, attempt) = start(&h, &exam, &student).await;
    let attempt = id_of(&attempt, "attempt_id");
    let answers = json!({ questions[0].clone(): 0 });
    assert_eq!(save_answers(&h, &attempt, answers, &student).await.0, 200);
    assert_eq!(submit(&h, &attempt, &student).await.0, 200);
    (h, owner, student, exam, attempt)
}

/// The owner moves the close of `exam` to `seconds` from now, and it is taken.
async fn close_in(h: &ExamHarness, owner: &Caller, exam: &str, seconds: i64) {
    let moved = json!({ "closes_at": in_(h, seconds) });
    let (status, body) = h
        .call("PATCH", &format!("/exams/{exam}"), Some(&moved), owner)
        .await;
    assert_eq!(status, 200, "{body}");
}

/// After the owner moves the close later, the owner's view of a submitted attempt names the
/// same moment its student's does for the review: the close as it is now. Before, the owner
/// read the close the attempt started with — and could tell the class the wrong time.
#[tokio::test]
async fn the_owner_reads_when_a_review_from_the_close_comes_as_its_student_does() {
    let (h, owner, student, exam, attempt) = submitted_before_a_close_in_an_hour().await;
    close_in(&h, &owner, &exam, 3 * 3600).await;
    let path = format!("/attempts/{attempt}");
    let (_, students) = h.call("GET", &path, None, &student).await;
    let (_, owners) = h.call("GET", &path, None, &owner).await;
    let (_, outline) = h.call("GET", &format!("/exams/{exam}"), None, &owner).await;
    assert_eq!(
        students["review"]["from"], outline["closes_at"],
        "{students}"
    );
    assert_eq!(owners["review"]["from"], outline["closes_at"], "{owners}");
}

/// The owner closes the exam sooner (no attempt runs past the new close: the guard sees to
/// it). "From the close" is the close as it is now in that direction too: the review came at
/// the close the attempt started with, after the exam had closed for everyone, while a student
/// who started after the change read theirs at the new close.
#[tokio::test]
async fn reading_the_answers_once_an_exam_closed_sooner_has_closed() {
    let (h, owner, student, exam, attempt) = submitted_before_a_close_in_an_hour().await;
    close_in(&h, &owner, &exam, 40 * 60).await;
    h.clock.advance(40 * 60 + 60);
    let (_, read) = h
        .call("GET", &format!("/attempts/{attempt}"), None, &student)
        .await;
    assert!(read["marks"].is_object(), "the exam has closed: {read}");
}

/// The owner gives the class more time: the close moves later after a student has submitted.
/// "From the close" is the close as it is now, not as it was when the attempt started: until
/// then others may still sit the exam, and this student may sit it again.
#[tokio::test]
async fn reading_the_answers_while_an_extended_exam_is_still_open() {
    let (h, owner, student, exam, attempt) = submitted_before_a_close_in_an_hour().await;

    close_in(&h, &owner, &exam, 3 * 3600).await;
    h.clock.advance(3600 + 60);
    let (_, read) = h
        .call("GET", &format!("/attempts/{attempt}"), None, &student)
        .await;
    let (_, mine) = h.call("GET", "/me/attempts", None, &student).await;
    for body in [&read, &mine["attempts"][0]] {
        assert!(
            body["result"].is_null() && body["marks"].is_null(),
            "the answers while the extended exam is open: {body}"
        );
    }
    let (status, _) = start(&h, &exam, &student).await;
    assert_eq!(
        status, 201,
        "the exam is open, and a second attempt allowed"
    );

    // Once the exam has closed as it now stands.
    h.clock.advance(2 * 3600);
    let (_, read) = h
        .call("GET", &format!("/attempts/{attempt}"), None, &student)
        .await;
    let (_, mine) = h.call("GET", "/me/attempts", None, &student).await;
    assert!(read["marks"].is_object(), "{read}");
    let first = mine["attempts"]
        .as_array()
        .and_then(|list| list.iter().find(|a| a["attempt_id"] == attempt.as_str()))
        .cloned()
        .unwrap_or_default();
    assert!(first["result"].is_object(), "{mine}");
}

/// [`submitted_before_a_close_in_an_hour`], the close passed and the student's review read
/// (its marks out): the harness, the owner, the student and the exam.
async fn read_at_the_close() -> (ExamHarness, Caller, Caller, String) {
    let (h, owner, student, exam, attempt) = submitted_before_a_close_in_an_hour().await;
    h.clock.advance(3600 + 60);
    let (_, read) = h
        .call("GET", &format!("/attempts/{attempt}"), None, &student)
        .await;
    assert!(read["marks"].is_object(), "the review is out: {read}");
    (h, owner, student, exam)
}

/// The owner reopens an exam after it closed (the close moved later once it had passed), for a
/// student who missed it. Its reviews "from the close" were out: a student who had read which
/// of their answers were right started a second attempt with them. A close that has passed
/// moves later only while no review was released at it: 409 `reviews_released`.
#[tokio::test]
async fn sitting_again_after_reading_the_answers_at_the_close() {
    let (h, owner, student, exam) = read_at_the_close().await;

    for reopened in [
        json!({ "closes_at": in_(&h, 3600) }),
        json!({ "closes_at": null }),
    ] {
        let (status, body) = h
            .call("PATCH", &format!("/exams/{exam}"), Some(&reopened), &owner)
            .await;
        assert_eq!(
            (status, code(&body)),
            (409, "reviews_released"),
            "{reopened}: {body}"
        );
    }
    let (status, body) = start(&h, &exam, &student).await;
    assert_eq!((status, code(&body)), (409, "exam_closed"), "{body}");
}

/// The same reopening in two steps: first the review switched to "from the submission" (no
/// close in that PATCH, so no guard looked), then the passed close moved later — the guard
/// read the review as it now was and let it through, the student sat again with the answers
/// they had read, and the marks they had read turned back to hidden. The guard now asks
/// whether the exam's review has been from the close since it was published.
#[tokio::test]
async fn sitting_again_after_the_review_was_switched_away_from_the_close() {
    let (h, owner, student, exam) = read_at_the_close().await;

    let switched = json!({ "review": { "shows": "answers", "from": "submit" } });
    let (status, body) = h
        .call("PATCH", &format!("/exams/{exam}"), Some(&switched), &owner)
        .await;
    assert_eq!(status, 200, "{body}");
    let reopened = json!({ "closes_at": in_(&h, 86_400) });
    let (status, body) = h
        .call("PATCH", &format!("/exams/{exam}"), Some(&reopened), &owner)
        .await;
    assert_eq!((status, code(&body)), (409, "reviews_released"), "{body}");
    let (status, body) = start(&h, &exam, &student).await;
    assert_eq!((status, code(&body)), (409, "exam_closed"), "{body}");
}

/// A third way round the guard: the close removed (while the review is switched to "from the
/// submission", which `validated` asks for) before it came. The attempts started under the
/// review from the close kept the close they started with, so at that moment the student read
/// which answers were right — while the exam, open-ended now, took their second attempt. A
/// close can move, not go, once the review has been from it.
#[tokio::test]
async fn reading_the_answers_after_the_close_was_removed_while_the_exam_stays_open() {
    let (h, owner, student, exam, attempt) = submitted_before_a_close_in_an_hour().await;
    let open_ended = json!({ "closes_at": null, "review": { "shows": "score", "from": "submit" } });
    let (status, body) = h
        .call(
            "PATCH",
            &format!("/exams/{exam}"),
            Some(&open_ended),
            &owner,
        )
        .await;
    assert_eq!((status, code(&body)), (409, "close_awaited"), "{body}");
    h.clock.advance(3600 + 60);
    let (_, read) = h
        .call("GET", &format!("/attempts/{attempt}"), None, &student)
        .await;
    assert!(read["marks"].is_object(), "the exam has closed: {read}");
    let (status, body) = start(&h, &exam, &student).await;
    assert_eq!((status, code(&body)), (409, "exam_closed"), "{body}");
}

/// The same extension, seen in the result emails: an attempt closed at the close it started
/// with (by the sweep, at its deadline) is mailed no score while the exam, extended, is open,
/// and a submission's email names the close as it now stands.
#[tokio::test]
async fn reading_the_score_in_an_email_while_an_extended_exam_is_still_open() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let (late, early) = (
        h.sign_in(Role::Student).await,
        h.sign_in(Role::Student).await,
    );
    let settings = json!({
        "closes_at": in_(&h, 600),
        "review": { "shows": "score", "from": "close" },
    });
    let (exam, questions) = exam_with(&h, &owner, 2, settings).await;
    let mut attempts = Vec::new();
    for student in [&late, &early] {
        let (_, attempt) = start(&h, &exam, student).await;
        let attempt = id_of(&attempt, "attempt_id");
        let answers = json!({ questions[0].clone(): 0 });
        assert_eq!(save_answers(&h, &attempt, answers, student).await.0, 200);
        attempts.push(attempt);
    }
    let new_close = in_(&h, 3 * 3600);
    let extended = json!({ "closes_at": new_close });
    let (status, body) = h
        .call("PATCH", &format!("/exams/{exam}"), Some(&extended), &owner)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(submit(&h, &attempts[1], &early).await.0, 200);
    // The late student's attempt ends at the close it started with, ten minutes in.
    h.clock.advance(600 + 60);
    h.sweep().await;

    let queue = h.queue.as_ref().expect("in-memory queue");
    let emails = oes_tests::take_waiting(queue, 10).await;
    // The early student's job, still untaken here (no worker), is sent to its lane again by
    // the sweep under its id: one job an attempt.
    let jobs: BTreeMap<String, &str> = emails
        .iter()
        .map(|email| {
            let job: Value = serde_json::from_str(&email.body).expect("a job");
            (
                job["job_id"].as_str().unwrap_or_default().to_owned(),
                email.body.as_str(),
            )
        })
        .collect();
    assert_eq!(jobs.len(), 2, "one email an attempt: {jobs:#?}");
    for body in jobs.values() {
        assert!(
            !body.contains("score_percent") && !body.contains('%'),
            "the email tells the score while the extended exam is open: {body}"
        );
        assert!(
            body.contains(&new_close),
            "the result is available from the close as it now stands ({new_close}): {body}"
        );
    }
}

// ---- 15: the exam's window --------------------------------------------------------------------

#[tokio::test]
async fn starting_before_the_exam_opens() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let opens = in_(&h, 3600);
    let (exam, _) = exam_with(&h, &owner, 2, json!({ "opens_at": opens })).await;
    let (_, outline) = h
        .call("GET", &format!("/exams/{exam}"), None, &student)
        .await;
    assert_eq!(outline["opens_at"], opens.as_str(), "the window is shown");

    let (status, body) = start(&h, &exam, &student).await;
    assert_eq!(
        (status, code(&body)),
        (409, "exam_not_open"),
        "a start an hour early: {body}"
    );
    h.clock.advance(3600);
    let (status, body) = start(&h, &exam, &student).await;
    assert_eq!(status, 201, "once it opens: {body}");
}

#[tokio::test]
async fn starting_after_the_exam_closes() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let (exam, _) = exam_with(&h, &owner, 2, json!({ "closes_at": in_(&h, 60) })).await;
    h.clock.advance(60);
    let (status, body) = start(&h, &exam, &student).await;
    assert_eq!(
        (status, code(&body)),
        (409, "exam_closed"),
        "a start after the close: {body}"
    );
}

#[tokio::test]
async fn answering_after_the_exam_closes() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    // 30 minutes allowed, but the exam closes in 10.
    let closes = in_(&h, 600);
    let (exam, questions) = exam_with(&h, &owner, 2, json!({ "closes_at": closes })).await;
    let (status, attempt) = start(&h, &exam, &student).await;
    assert_eq!(status, 201, "{attempt}");
    assert_eq!(
        attempt["deadline"],
        closes.as_str(),
        "the deadline passes the exam's close: {attempt}"
    );
    let attempt = id_of(&attempt, "attempt_id");
    h.clock.advance(600);
    let (status, body) =
        save_answers(&h, &attempt, json!({ questions[0].clone(): 0 }), &student).await;
    assert_eq!(
        (status, code(&body)),
        (409, "attempt_closed"),
        "answers saved after the close: {body}"
    );
}

// ---- 13: the result is the grade of the answers stored --------------------------------------

#[tokio::test]
async fn saving_answers_while_the_submit_is_graded() {
    let env = TestEnv::spawn().await;
    let mut adapters = env.adapters_with_cache(no_cache());
    let racing = SaveDuringSubmit::new(adapters.attempts.clone());
    adapters.attempts = racing.clone();
    let h = ExamHarness::over(&adapters);
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let (exam, questions) = h.exam_with_questions(&owner, 3, true).await;
    let (status, attempt) = start(&h, &exam, &student).await;
    assert_eq!(status, 201, "{attempt}");
    let attempt = id_of(&attempt, "attempt_id");

    // Nothing is saved when the submit reads and grades the attempt; all three right answers
    // are saved (a second tab's PUT) before its write reaches the store.
    let right: Answers = questions
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let id = QuestionId::parse(q).expect("a question id");
            (id, u8::try_from(i % 3).expect("small"))
        })
        .collect();
    racing.arm(right);
    let (status, submitted) = submit(&h, &attempt, &student).await;
    assert_eq!(status, 200, "{submitted}");

    let (_, stored) = h
        .call("GET", &format!("/attempts/{attempt}"), None, &owner)
        .await;
    assert_eq!(
        stored["answers"].as_object().map(|a| a.len()),
        Some(3),
        "{stored}"
    );
    assert_eq!(
        (
            stored["result"]["score"].as_u64(),
            stored["result"]["answered"].as_u64()
        ),
        (Some(6), Some(3)),
        "the stored result grades other answers than those stored: {stored}"
    );
    assert_eq!(submitted["result"], stored["result"], "{submitted}");
}

// ---- 17: a list request reads one page, not a whole partition --------------------------------

/// Walks a list from `first` (a path with `?limit=`), following `next_cursor`: the attempt ids
/// of each page's `field`.
async fn walk(h: &ExamHarness, first: &str, field: &str, caller: &Caller) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut path = first.to_owned();
    loop {
        let (status, body) = h.call("GET", &path, None, caller).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        let items = body[field].as_array().cloned().unwrap_or_default();
        pages.push(items.iter().map(|a| id_of(a, "attempt_id")).collect());
        let Some(cursor) = body["next_cursor"].as_str() else {
            return pages;
        };
        path = format!("{first}&cursor={cursor}");
        assert!(pages.len() < 20, "GET {first}: the list does not end");
    }
}

#[tokio::test]
async fn reading_a_whole_partition_in_one_list_request() {
    let env = TestEnv::spawn().await;
    let (h, queries) = env.exam_harness_counting_queries(no_cache());
    let owner = h.sign_in(Role::Instructor).await;
    let (exam, _) = h.exam_with_questions(&owner, 1, true).await;
    // Seven students sit one exam; one student sits five exams.
    let mut at_exam = Vec::new();
    for _ in 0..7 {
        let student = h.sign_in(Role::Student).await;
        let (status, attempt) = start(&h, &exam, &student).await;
        assert_eq!(status, 201, "{attempt}");
        at_exam.push(id_of(&attempt, "attempt_id"));
        h.clock.advance(1);
    }
    let busy = h.sign_in(Role::Student).await;
    let mut of_student = Vec::new();
    for _ in 0..5 {
        let (other, _) = h.exam_with_questions(&owner, 1, true).await;
        let (status, attempt) = start(&h, &other, &busy).await;
        assert_eq!(status, 201, "{attempt}");
        of_student.push(id_of(&attempt, "attempt_id"));
        h.clock.advance(1);
    }
    at_exam.reverse();
    of_student.reverse();

    queries.take();
    for (first, field, caller, expected, limit) in [
        (
            format!("/exams/{exam}/results?limit=3"),
            "results",
            &owner,
            &at_exam,
            3,
        ),
        (
            "/me/attempts?limit=2".to_owned(),
            "attempts",
            &busy,
            &of_student,
            2,
        ),
    ] {
        let pages = walk(&h, &first, field, caller).await;
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert!(
            sizes.iter().all(|n| *n <= limit),
            "GET {first}: pages of {sizes:?} items"
        );
        assert_eq!(
            pages.concat(),
            *expected,
            "GET {first}: every attempt once, newest first"
        );
        let read = queries.take();
        assert!(!read.is_empty(), "GET {first}: no DynamoDB query counted");
        assert!(
            read.iter()
                .all(|n| *n <= i32::try_from(limit + 1).unwrap_or(i32::MAX)),
            "GET {first}: DynamoDB queries read {read:?} items for pages of {limit}"
        );
    }
}

// ---- 18: list cursors come from the API, for one list ----------------------------------------

/// A cursor as a client could make one: base64url of JSON (the encoding of the API's cursors).
fn made_up_cursor(position: &Value) -> String {
    URL_SAFE_NO_PAD.encode(position.to_string())
}

/// `cursor` with its position moved back by one second: its JSON part (before any `.`) decoded,
/// each number lowered by one, encoded again; the rest kept.
fn retouched(cursor: &str) -> String {
    let (json_part, rest) = cursor.split_once('.').unwrap_or((cursor, ""));
    let bytes = URL_SAFE_NO_PAD.decode(json_part).expect("base64url");
    let mut position: Value = serde_json::from_slice(&bytes).expect("JSON");
    if let Some(fields) = position.as_object_mut() {
        for value in fields.values_mut() {
            if let Some(n) = value.as_i64() {
                *value = json!(n - 1);
            }
        }
    }
    let moved = URL_SAFE_NO_PAD.encode(position.to_string());
    if rest.is_empty() {
        moved
    } else {
        format!("{moved}.{rest}")
    }
}

#[tokio::test]
async fn paging_from_a_made_up_or_tampered_cursor() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    for _ in 0..3 {
        h.exam_with_questions(&owner, 1, true).await;
        h.clock.advance(10);
    }
    let (status, page) = h.call("GET", "/exams?limit=1", None, &student).await;
    assert_eq!(status, 200, "{page}");
    let cursor = page["next_cursor"].as_str().expect("a cursor").to_owned();
    let listed = id_of(&page["exams"][0], "exam_id");

    let mut accepted = Vec::new();
    for (what, bad) in [
        (
            "made up",
            made_up_cursor(&json!({"published_at": 1, "exam_id": listed})),
        ),
        ("tampered", retouched(&cursor)),
        ("truncated", cursor[..cursor.len() - 1].to_owned()),
        ("extended", format!("{cursor}A")),
    ] {
        let path = format!("/exams?limit=1&cursor={bad}");
        let (status, body) = h.call("GET", &path, None, &student).await;
        if status != 400 || !body["error"]["code"].is_string() {
            accepted.push(format!("{what} cursor: {status} {body}"));
        }
    }
    assert!(
        accepted.is_empty(),
        "a cursor the API did not issue is accepted:\n{}",
        accepted.join("\n")
    );
}

#[tokio::test]
async fn replaying_a_cursor_on_another_list() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let ada = h.sign_in(Role::Student).await;
    let grace = h.sign_in(Role::Student).await;
    let (a, _) = h.exam_with_questions(&owner, 1, true).await;
    h.clock.advance(10);
    let (b, _) = h.exam_with_questions(&owner, 1, true).await;
    for exam in [&a, &b] {
        for student in [&ada, &grace] {
            let (status, attempt) = start(&h, exam, student).await;
            assert_eq!(status, 201, "{attempt}");
            h.clock.advance(1);
        }
    }
    let cursor_of = |path: String, caller: Caller| {
        let h = &h;
        async move {
            let (status, body) = h.call("GET", &path, None, &caller).await;
            assert_eq!(status, 200, "GET {path}: {body}");
            body["next_cursor"].as_str().map(str::to_owned)
        }
    };
    let exams = cursor_of("/exams?limit=1".into(), ada.clone()).await;
    let results_a = cursor_of(format!("/exams/{a}/results?limit=1"), owner.clone()).await;
    let adas = cursor_of("/me/attempts?limit=1".into(), ada.clone()).await;

    let misuses = [
        (&exams, "/exams", format!("/exams/{a}/results"), &owner),
        (&exams, "/exams", "/me/attempts".to_owned(), &ada),
        (
            &results_a,
            "exam A's results",
            format!("/exams/{b}/results"),
            &owner,
        ),
        (&results_a, "exam A's results", "/exams".to_owned(), &ada),
        (
            &results_a,
            "exam A's results",
            "/me/attempts".to_owned(),
            &ada,
        ),
        (&adas, "Ada's attempts", "/me/attempts".to_owned(), &grace),
        (
            &adas,
            "Ada's attempts",
            format!("/exams/{a}/results"),
            &owner,
        ),
    ];
    let mut accepted = Vec::new();
    for (cursor, from, path, caller) in misuses {
        let Some(cursor) = cursor else { continue };
        let (status, body) = h
            .call(
                "GET",
                &format!("{path}?limit=1&cursor={cursor}"),
                None,
                caller,
            )
            .await;
        if status != 400 {
            accepted.push(format!("a cursor of {from} on GET {path}: {status} {body}"));
        }
    }
    assert!(
        accepted.is_empty(),
        "a cursor is accepted on another list:\n{}",
        accepted.join("\n")
    );
    assert!(
        results_a.is_some() && adas.is_some(),
        "every list pages: results {results_a:?}, attempts {adas:?}"
    );
}

/// The pages cached in the published list's entry (its fields but the generation).
async fn cached_list_pages(env: &TestEnv, policy: &CacheAside) -> Vec<String> {
    let at = policy
        .locate(&policy.keys().exam_list_page(1))
        .await
        .expect("the namespace version");
    let client = redis::Client::open(env.endpoints.redis.as_str()).expect("redis url");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let fields: Vec<String> = connection.hkeys(&at.key).await.expect("HKEYS");
    fields.into_iter().filter(|f| f != "g").collect()
}

#[tokio::test]
async fn flooding_the_list_cache_with_distinct_cursors() {
    let env = TestEnv::spawn().await;
    let policy = cache_policy(Redis::Standalone, &env.prefix, CacheSettings::default());
    let h = env.exam_harness(policy.clone());
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let mut exams = Vec::new();
    for _ in 0..3 {
        exams.push(h.exam_with_questions(&owner, 1, true).await.0);
        h.clock.advance(10);
    }
    // The cursors the API hands out, a page of one at a time, and thirty made up.
    let mut cursors = Vec::new();
    let mut path = "/exams?limit=1".to_owned();
    while let (200, page) = h.call("GET", &path, None, &student).await {
        let Some(cursor) = page["next_cursor"].as_str() else {
            break;
        };
        cursors.push(cursor.to_owned());
        path = format!("/exams?limit=1&cursor={cursor}");
    }
    for at in 0..30 {
        cursors.push(made_up_cursor(
            &json!({"published_at": at, "exam_id": exams[at % 3]}),
        ));
    }
    for cursor in &cursors {
        let path = format!("/exams?limit=1&cursor={cursor}");
        h.call("GET", &path, None, &student).await;
    }

    let pages = cached_list_pages(&env, &policy).await;
    assert!(
        pages.len() <= 1,
        "{} distinct cursors cached {} pages of the list: {pages:?}",
        cursors.len(),
        pages.len()
    );
}
