//! Every `events/*.json` fixture deserialises as its function's event and is handled by it:
//! HTTP fixtures name their route as API Gateway would, answer as expected with the placeholder
//! token, and the exam-api and admin-api fixtures succeed with a real token for a caller who may
//! use the route.
//!
//! What each fixture must produce is written here once, for any way of running the function:
//! these tests call the handlers in this process; `runtime_api.rs` sends the same fixtures to the
//! real binaries under a Lambda Runtime API and checks the answers with the same functions.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use email_worker::Worker;
use oes_adapters::memory::{MemoryJobs, MemoryQueues};
use oes_adapters::outbox::OutboxMailer;
use oes_domain::clock::SystemClock;
use oes_domain::pipeline::EmailLanes;
use oes_domain::ports::{MessageQueues, QueueName};
use oes_domain::user::Role;
use oes_local::fixtures::path_parameters;
use oes_runtime::config::RetryPolicy;
use oes_runtime::wiring::WorkerAdapters;
use oes_tests::exams::{Caller, ExamHarness};
use oes_tests::{TestEnv, exam_or_admin, in_memory_apis, read};
use serde_json::{Value, json};

/// Every `events/*.json` fixture, by file name: its text.
pub(crate) fn fixtures() -> BTreeMap<String, String> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../events"));
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, text)
        })
        .collect()
}

/// What each HTTP fixture must produce against a fresh, empty deployment.
pub(crate) fn expected_http(name: &str) -> Option<(u16, Option<&'static str>)> {
    Some(match name {
        "auth-register.json" => (202, None),
        "auth-verify-email-post.json" => (400, Some("invalid_token")),
        // The link's page: its token is not looked at until its button is pressed.
        "auth-verify-email-get.json" => (200, None),
        "auth-password-reset-confirm.json" => (400, Some("invalid_token")),
        "auth-resend-verification.json" | "auth-password-reset-request.json" => (202, None),
        "auth-login.json" => (401, Some("invalid_credentials")),
        "auth-me-get.json" | "auth-me-patch.json" | "auth-email-change.json" => {
            (401, Some("unauthorized"))
        }
        "exam-list.json"
        | "exam-list-unencoded-query.json"
        | "exam-create.json"
        | "exam-get.json"
        | "exam-patch.json"
        | "exam-delete.json"
        | "exam-publish.json"
        | "exam-questions-list.json"
        | "exam-question-add.json"
        | "exam-question-patch.json"
        | "exam-question-delete.json"
        | "exam-attempt-start.json"
        | "exam-results.json"
        | "attempt-get.json"
        | "attempt-answers-put.json"
        | "attempt-submit.json"
        | "me-attempts.json"
        // admin-api authenticates first too.
        | "admin-queues.json"
        | "admin-email-jobs.json"
        | "admin-email-job-counts.json"
        | "admin-cache-clear.json"
        | "admin-lane-pause.json"
        | "admin-lane-resume.json"
        | "admin-dlq-purge.json"
        // exam-api authenticates before it resolves the route: with a real token, 404.
        | "exam-malformed-id.json" => (401, Some("unauthorized")),
        _ => return None,
    })
}

#[tokio::test]
async fn every_http_fixture_is_handled_by_its_function() {
    let mut seen = 0;
    for (name, text) in fixtures() {
        if !is_http(&name) {
            continue;
        }
        let request = oes_runtime::http::request_from_str(&text)
            .unwrap_or_else(|e| panic!("{name} is not an API Gateway event: {e}"));
        let apis = in_memory_apis();
        let response = if is_auth_api(&name) {
            auth_api::handle(&apis.auth, request).await
        } else {
            exam_or_admin(&apis.exams, &apis.admin, request).await
        }
        .unwrap_or_else(|e| panic!("{name}: invocation error {e}"));
        let (got, body) = answer_of(&response);
        check_placeholder_answer(&name, got, &body);
        seen += 1;
    }
    assert!(seen >= 28, "only {seen} HTTP fixtures found");
}

/// Status and body of a function's answer: JSON, or an HTML page's text as a JSON string.
fn answer_of(response: &lambda_http::Response<lambda_http::Body>) -> (u16, Value) {
    let html = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        let text = String::from_utf8_lossy(response.body().as_ref()).into_owned();
        return (response.status().as_u16(), Value::String(text));
    }
    read(response)
}

/// Checks the answer (`status`, JSON `body`, or a page's text as a string) to HTTP fixture
/// `name` as sent, with its placeholder token, against [`expected_http`].
pub(crate) fn check_placeholder_answer(name: &str, status: u16, body: &Value) {
    let (expected, code) = expected_http(name)
        .unwrap_or_else(|| panic!("{name}: add its expected answer to fixtures.rs"));
    assert_eq!(status, expected, "{name}: {body}");
    if let Some(code) = code {
        assert_eq!(body["error"]["code"], code, "{name}: {body}");
    }
    if name == "auth-verify-email-get.json" {
        assert!(
            body.as_str()
                .is_some_and(|page| page.contains("Confirm my email address")),
            "{name}: the link's page: {body}"
        );
    }
}

/// The API Gateway fixtures (the others are SQS batches and scheduled events).
pub(crate) fn is_http(name: &str) -> bool {
    !name.starts_with("sqs-") && !name.starts_with("schedule-")
}

/// The fixtures auth-api handles.
pub(crate) fn is_auth_api(name: &str) -> bool {
    name.starts_with("auth-")
}

/// The fixtures admin-api handles.
pub(crate) fn is_admin_api(name: &str) -> bool {
    name.starts_with("admin-")
}

/// The fixtures exam-api handles: every other HTTP fixture.
pub(crate) fn is_exam_api(name: &str) -> bool {
    is_http(name) && !is_auth_api(name) && !is_admin_api(name)
}

fn event(name: &str, text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

#[test]
fn every_http_fixture_names_a_route_of_its_function_as_api_gateway_would() {
    let mut seen = 0;
    for (name, text) in fixtures() {
        if !is_http(&name) {
            continue;
        }
        let event = event(&name, &text);
        let route_key = event["routeKey"].as_str().unwrap_or_default();
        let (method, template) = route_key
            .split_once(' ')
            .unwrap_or_else(|| panic!("{name}: routeKey {route_key:?} is not \"METHOD /path\""));
        let served = if is_admin_api(&name) {
            admin_api::ROUTES.contains(&(method, template))
        } else if is_exam_api(&name) {
            exam_api::routes().any(|route| route == (method, template))
        } else {
            auth_api::routes::ROUTES.contains(&(method, template))
        };
        assert!(served, "{name}: its function serves no route {route_key}");
        let context = &event["requestContext"];
        assert_eq!(context["routeKey"], route_key, "{name}");
        assert_eq!(context["http"]["method"], method, "{name}");
        let raw_path = event["rawPath"].as_str().unwrap_or_default();
        assert_eq!(context["http"]["path"], raw_path, "{name}");
        let parameters = path_parameters(template, raw_path)
            .unwrap_or_else(|| panic!("{name}: rawPath {raw_path} does not match {template}"));
        let expected = if parameters.is_empty() {
            Value::Null
        } else {
            serde_json::to_value(&parameters).unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(event["pathParameters"], expected, "{name}: pathParameters");
        let length = event["body"].as_str().map(|b| b.len().to_string());
        assert_eq!(
            event["headers"]["content-length"]
                .as_str()
                .map(str::to_owned),
            length,
            "{name}: content-length"
        );
        seen += 1;
    }
    assert!(seen >= 28, "only {seen} HTTP fixtures found");
}

/// The ids the exam-api fixtures use in their paths and bodies.
const FIXTURE_EXAM: &str = "3f6c1a2e-8b4d-4e9a-9c71-5d2b7e0a4f13";
const FIXTURE_QUESTION: &str = "7d9e2f40-1c3b-4a85-b6e2-0f8a9c4d3e21";
const FIXTURE_ATTEMPT: &str = "c58b0e7a-92f1-4d36-8e4b-1a7f6d2c9b50";

/// The fixture's bearer token (the JWT-shaped placeholder).
fn placeholder_token(name: &str, text: &str) -> String {
    let event = event(name, text);
    event["headers"]["authorization"]
        .as_str()
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_else(|| panic!("{name}: no bearer token in its headers"))
        .to_owned()
}

/// The fixture's JSON body, parsed.
fn body_of(name: &str, text: &str) -> Value {
    let body = event(name, text)["body"]
        .as_str()
        .unwrap_or_else(|| panic!("{name}: no body"))
        .to_owned();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: body is not JSON: {e}"))
}

/// exam-api or admin-api, to send fixture events to: the handler in this process, or the real
/// binary under a Runtime API (`runtime_api.rs`).
#[async_trait]
pub(crate) trait ApiFunction: Sync {
    /// Its answer to the API Gateway event `text` (fixture `name`, with a real token and ids):
    /// status and JSON body.
    async fn answer(&self, name: &str, text: &str) -> (u16, Value);
}

/// The handler of the fixture's function (exam-api's or admin-api's), called in this process.
struct InProcess<'a>(&'a ExamHarness);

#[async_trait]
impl ApiFunction for InProcess<'_> {
    async fn answer(&self, name: &str, text: &str) -> (u16, Value) {
        let request = oes_runtime::http::request_from_str(text)
            .unwrap_or_else(|e| panic!("{name} is not an API Gateway event: {e}"));
        let response = exam_or_admin(&self.0.api, &self.0.admin, request)
            .await
            .unwrap_or_else(|e| panic!("{name}: invocation error {e}"));
        read(&response)
    }
}

/// One exam-api or admin-api fixture sent with real tokens to `function`; `h` (over the same data and
/// signing key) creates what the fixture's path names and reads what it changed.
struct FixtureRun<'a> {
    h: &'a ExamHarness,
    function: &'a dyn ApiFunction,
    name: &'a str,
    text: &'a str,
}

impl FixtureRun<'_> {
    /// The fixture as `caller` sends it, with the fixed ids replaced by `ids` (fixed, real),
    /// answered by the function.
    async fn send(&self, caller: &Caller, ids: &[(&str, &str)]) -> (u16, Value) {
        let name = self.name;
        let placeholder = placeholder_token(name, self.text);
        let mut text = self.text.replace(&placeholder, &caller.token);
        for (fixed, real) in ids {
            assert!(text.contains(fixed), "{name} does not mention {fixed}");
            text = text.replace(fixed, real);
        }
        for fixed in [FIXTURE_EXAM, FIXTURE_QUESTION, FIXTURE_ATTEMPT] {
            assert!(
                !text.contains(fixed),
                "{name} mentions {fixed}, which this test does not replace with a real id"
            );
        }
        self.function.answer(name, &text).await
    }

    /// A student's attempt at `exam`: its id.
    async fn start_attempt(&self, student: &Caller, exam: &str) -> String {
        let path = format!("/exams/{exam}/attempts");
        let (status, attempt) = self.h.call("POST", &path, None, student).await;
        assert_eq!(status, 201, "{attempt}");
        attempt["attempt_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

fn len(value: &Value) -> Option<usize> {
    value.as_array().map(Vec::len)
}

/// Sends one exam-api or admin-api fixture to `function` with a real token, after creating through `h` what
/// its path names, and checks the answer a caller who may use the route gets. The expectations
/// hold in a deployment that already has other data (the runtime test sends every fixture to one
/// binary); the only state they need absent is a failed email job and a dead letter.
pub(crate) async fn check_with_a_real_token(
    h: &ExamHarness,
    function: &dyn ApiFunction,
    name: &str,
    text: &str,
) {
    let run = FixtureRun {
        h,
        function,
        name,
        text,
    };
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let expect = |status: u16, got: u16, body: &Value| {
        assert_eq!(got, status, "{name} with a real token: {body}");
    };
    match name {
        "exam-list.json" => {
            for _ in 0..3 {
                h.exam_with_questions(&owner, 1, true).await;
            }
            let (status, body) = run.send(&student, &[]).await;
            expect(200, status, &body);
            assert_eq!(len(&body["exams"]), Some(2), "{name}: limit=2: {body}");
            assert!(body["next_cursor"].is_string(), "{name}: {body}");
        }
        "exam-list-unencoded-query.json" => {
            // lambda_http alone panics on this query; mended, the cursor is read as sent.
            let (status, body) = run.send(&student, &[]).await;
            expect(400, status, &body);
            assert_eq!(body["error"]["code"], "validation_error", "{name}: {body}");
            let message = body["error"]["message"].as_str().unwrap_or_default();
            assert!(message.starts_with("cursor"), "{name}: {body}");
        }
        "exam-create.json" => {
            let sent = body_of(name, text);
            let (status, body) = run.send(&owner, &[]).await;
            expect(201, status, &body);
            assert!(body["exam_id"].is_string(), "{name}: {body}");
            assert_eq!(body["owner_id"], owner.id.as_str(), "{name}");
            assert_eq!(body["status"], "draft", "{name}");
            assert_eq!(body["question_count"], 0, "{name}");
            for field in [
                "title",
                "description",
                "duration_minutes",
                "pass_mark_percent",
            ] {
                assert_eq!(body[field], sent[field], "{name}: {field}");
            }
        }
        "exam-get.json" => {
            let (exam, _) = h.exam_with_questions(&owner, 2, true).await;
            let (status, body) = run.send(&student, &[(FIXTURE_EXAM, &exam)]).await;
            expect(200, status, &body);
            assert_eq!(body["exam_id"], exam.as_str(), "{name}");
            assert_eq!(body["status"], "published", "{name}");
            assert_eq!(body["question_count"], 2, "{name}");
            assert_eq!(body["total_points"], 1 + 2, "{name}: {body}");
        }
        "exam-patch.json" => {
            let sent = body_of(name, text);
            let (exam, _) = h.exam_with_questions(&owner, 1, false).await;
            let (status, body) = run.send(&owner, &[(FIXTURE_EXAM, &exam)]).await;
            expect(200, status, &body);
            assert_eq!(body["exam_id"], exam.as_str(), "{name}");
            assert_eq!(body["title"], sent["title"], "{name}");
            assert_eq!(body["duration_minutes"], sent["duration_minutes"], "{name}");
            assert_eq!(body["pass_mark_percent"], 50, "{name}: left as it was");
        }
        "exam-delete.json" => {
            let (exam, _) = h.exam_with_questions(&owner, 1, false).await;
            let (status, body) = run.send(&owner, &[(FIXTURE_EXAM, &exam)]).await;
            expect(200, status, &body);
            assert_eq!(body["status"], "deleted", "{name}");
            let (after, _) = h.call("GET", &format!("/exams/{exam}"), None, &owner).await;
            assert_eq!(after, 404, "{name}: the exam is gone");
        }
        "exam-publish.json" => {
            let (exam, _) = h.exam_with_questions(&owner, 1, false).await;
            let (status, body) = run.send(&owner, &[(FIXTURE_EXAM, &exam)]).await;
            expect(200, status, &body);
            assert_eq!(body["exam_id"], exam.as_str(), "{name}");
            assert_eq!(body["status"], "published", "{name}");
            assert!(body["published_at"].is_string(), "{name}: {body}");
        }
        "exam-questions-list.json" => {
            let (exam, questions) = h.exam_with_questions(&owner, 3, true).await;
            // Students see the questions inside their own attempt only.
            let (status, body) = run.send(&student, &[(FIXTURE_EXAM, &exam)]).await;
            expect(403, status, &body);
            let (status, body) = run.send(&owner, &[(FIXTURE_EXAM, &exam)]).await;
            expect(200, status, &body);
            // Questions added within the same second are listed in id order.
            let listed: BTreeSet<&str> = body["questions"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: {body}"))
                .iter()
                .map(|q| q["question_id"].as_str().unwrap_or_default())
                .collect();
            let added: BTreeSet<&str> = questions.iter().map(String::as_str).collect();
            assert_eq!(listed, added, "{name}");
            assert!(
                body["questions"]
                    .as_array()
                    .is_some_and(|all| all.iter().all(|q| q["correct_option"].is_u64())),
                "{name}: the owner sees the answers: {body}"
            );
        }
        "exam-question-add.json" => {
            let sent = body_of(name, text);
            let (exam, _) = h.exam_with_questions(&owner, 0, false).await;
            let (status, body) = run.send(&owner, &[(FIXTURE_EXAM, &exam)]).await;
            expect(201, status, &body);
            assert!(body["question_id"].is_string(), "{name}: {body}");
            for field in ["text", "options", "correct_option", "points"] {
                assert_eq!(body[field], sent[field], "{name}: {field}");
            }
            let (_, after) = h.call("GET", &format!("/exams/{exam}"), None, &owner).await;
            assert_eq!(after["question_count"], 1, "{name}: {after}");
        }
        "exam-question-patch.json" => {
            let sent = body_of(name, text);
            let (exam, questions) = h.exam_with_questions(&owner, 1, false).await;
            let ids = [
                (FIXTURE_EXAM, exam.as_str()),
                (FIXTURE_QUESTION, &questions[0]),
            ];
            let (status, body) = run.send(&owner, &ids).await;
            expect(200, status, &body);
            assert_eq!(body["question_id"], questions[0].as_str(), "{name}");
            assert_eq!(body["text"], sent["text"], "{name}");
            assert_eq!(body["points"], sent["points"], "{name}");
            assert_eq!(
                body["options"],
                serde_json::json!(["a", "b", "c"]),
                "{name}"
            );
        }
        "exam-question-delete.json" => {
            let (exam, questions) = h.exam_with_questions(&owner, 2, false).await;
            let ids = [
                (FIXTURE_EXAM, exam.as_str()),
                (FIXTURE_QUESTION, &questions[0]),
            ];
            let (status, body) = run.send(&owner, &ids).await;
            expect(200, status, &body);
            assert_eq!(body["status"], "deleted", "{name}");
            let path = format!("/exams/{exam}/questions");
            let (_, after) = h.call("GET", &path, None, &owner).await;
            assert_eq!(after["questions"][0]["question_id"], questions[1].as_str());
            assert_eq!(len(&after["questions"]), Some(1), "{name}: {after}");
        }
        "exam-attempt-start.json" => {
            let (exam, questions) = h.exam_with_questions(&owner, 3, true).await;
            let (status, body) = run.send(&student, &[(FIXTURE_EXAM, &exam)]).await;
            expect(201, status, &body);
            assert!(body["attempt_id"].is_string(), "{name}: {body}");
            assert_eq!(body["exam_id"], exam.as_str(), "{name}");
            assert_eq!(body["user_id"], student.id.as_str(), "{name}");
            assert_eq!(body["status"], "in_progress", "{name}");
            assert_eq!(len(&body["question_ids"]), Some(questions.len()), "{name}");
            assert_eq!(
                len(&body["questions"]),
                Some(questions.len()),
                "{name}: the paper"
            );
            assert!(body["result"].is_null(), "{name}: {body}");
        }
        "exam-results.json" => {
            let (exam, _) = h.exam_with_questions(&owner, 2, true).await;
            let attempt = run.start_attempt(&student, &exam).await;
            let (status, body) = run.send(&owner, &[(FIXTURE_EXAM, &exam)]).await;
            expect(200, status, &body);
            assert_eq!(len(&body["results"]), Some(1), "{name}: {body}");
            assert_eq!(body["results"][0]["attempt_id"], attempt.as_str(), "{name}");
            assert_eq!(body["results"][0]["user_id"], student.id.as_str(), "{name}");
        }
        "attempt-get.json" => {
            let (exam, _) = h.exam_with_questions(&owner, 2, true).await;
            let attempt = run.start_attempt(&student, &exam).await;
            let (status, body) = run.send(&student, &[(FIXTURE_ATTEMPT, &attempt)]).await;
            expect(200, status, &body);
            assert_eq!(body["attempt_id"], attempt.as_str(), "{name}");
            assert_eq!(body["exam_id"], exam.as_str(), "{name}");
            assert_eq!(body["status"], "in_progress", "{name}");
            assert_eq!(
                len(&body["questions"]),
                Some(2),
                "{name}: the paper: {body}"
            );
            assert!(body["result"].is_null(), "{name}: {body}");
        }
        "attempt-answers-put.json" => {
            let (exam, questions) = h.exam_with_questions(&owner, 3, true).await;
            let attempt = run.start_attempt(&student, &exam).await;
            let ids = [
                (FIXTURE_ATTEMPT, attempt.as_str()),
                (FIXTURE_QUESTION, &questions[2]),
            ];
            let (status, body) = run.send(&student, &ids).await;
            expect(200, status, &body);
            assert_eq!(body["attempt_id"], attempt.as_str(), "{name}");
            let sent = body_of(name, text);
            let option = &sent["answers"][FIXTURE_QUESTION];
            assert!(option.is_u64(), "{name}: {sent}");
            assert_eq!(
                body["answers"],
                serde_json::json!({ &questions[2]: option })
            );
        }
        "attempt-submit.json" => {
            let (exam, _) = h.exam_with_questions(&owner, 3, true).await;
            let attempt = run.start_attempt(&student, &exam).await;
            let (status, body) = run.send(&student, &[(FIXTURE_ATTEMPT, &attempt)]).await;
            expect(200, status, &body);
            assert_eq!(body["attempt_id"], attempt.as_str(), "{name}");
            assert_eq!(body["status"], "submitted", "{name}");
            let result = &body["result"];
            assert_eq!(result["questions"], 3, "{name}: {body}");
            assert_eq!(result["answered"], 0, "{name}: {body}");
            assert_eq!(result["score"], 0, "{name}: {body}");
            assert_eq!(result["max_score"], 1 + 2 + 3, "{name}: {body}");
            assert_eq!(result["passed"], false, "{name}: {body}");
        }
        "me-attempts.json" => {
            let (exam, _) = h.exam_with_questions(&owner, 1, true).await;
            let attempt = run.start_attempt(&student, &exam).await;
            let (status, body) = run.send(&student, &[]).await;
            expect(200, status, &body);
            assert_eq!(len(&body["attempts"]), Some(1), "{name}: {body}");
            assert_eq!(
                body["attempts"][0]["attempt_id"],
                attempt.as_str(),
                "{name}"
            );
            assert_eq!(body["attempts"][0]["exam_id"], exam.as_str(), "{name}");
        }
        "exam-malformed-id.json" => {
            let (status, body) = run.send(&student, &[]).await;
            expect(404, status, &body);
            assert_eq!(body["error"]["code"], "not_found", "{name}");
        }
        "admin-queues.json" => {
            let admin = h.sign_in(Role::Admin).await;
            let (status, body) = run.send(&admin, &[]).await;
            expect(200, status, &body);
            let queues = body["queues"]
                .as_array()
                .unwrap_or_else(|| panic!("{name}: {body}"));
            assert_eq!(queues.len(), 3, "{name}: two lanes and the DLQ: {body}");
            assert!(
                queues
                    .iter()
                    .all(|q| q["queue"].is_string() && q["visible"].is_i64()),
                "{name}: {body}"
            );
        }
        "admin-email-jobs.json" => {
            let admin = h.sign_in(Role::Admin).await;
            let (status, body) = run.send(&admin, &[]).await;
            expect(200, status, &body);
            assert_eq!(body["jobs"], json!([]), "{name}: no failed job: {body}");
            assert_eq!(body["next_cursor"], Value::Null, "{name}: {body}");
        }
        "admin-email-job-counts.json" => {
            let admin = h.sign_in(Role::Admin).await;
            let (status, body) = run.send(&admin, &[]).await;
            expect(200, status, &body);
            assert_eq!(len(&body["counts"]), Some(7), "{name}: every state: {body}");
        }
        "admin-cache-clear.json" => {
            let admin = h.sign_in(Role::Admin).await;
            let (status, body) = run.send(&admin, &[]).await;
            expect(200, status, &body);
            assert_eq!(body, json!({"cleared": true}), "{name}");
        }
        "admin-lane-pause.json" | "admin-lane-resume.json" => {
            let admin = h.sign_in(Role::Admin).await;
            let (status, body) = run.send(&admin, &[]).await;
            expect(200, status, &body);
            let paused = name == "admin-lane-pause.json";
            assert_eq!(body, json!({"lane": "bulk", "paused": paused}), "{name}");
        }
        "admin-dlq-purge.json" => {
            let admin = h.sign_in(Role::Admin).await;
            let (status, body) = run.send(&admin, &[]).await;
            expect(200, status, &body);
            assert_eq!(
                (&body["purged"], &body["done"]),
                (&json!(0), &json!(true)),
                "{name}: nothing to purge: {body}"
            );
        }
        _ => panic!("{name}: add what it answers with a real token to this test"),
    }
}

#[tokio::test]
async fn every_exam_and_admin_fixture_succeeds_with_a_real_token_of_a_caller_who_may_use_it() {
    let (mut exams, mut admins) = (0, 0);
    for (name, text) in fixtures() {
        if is_exam_api(&name) || is_admin_api(&name) {
            let h = ExamHarness::in_memory();
            check_with_a_real_token(&h, &InProcess(&h), &name, &text).await;
            *(if is_admin_api(&name) {
                &mut admins
            } else {
                &mut exams
            }) += 1;
        }
    }
    assert!(exams >= 17, "only {exams} exam-api fixtures found");
    assert!(admins >= 7, "only {admins} admin-api fixtures found");
}

/// The same fixtures over the real adapters (DynamoDB and SQS in the emulator), exam-api,
/// admin-api and the sweeper each as its role in the template allows (`oes_tests::iam`): a call
/// the code makes that the role does not grant fails here, as it would in AWS, where moto
/// enforces no policy. (A draft question's grading edit sent a `ConditionCheck` exam-api's role
/// lacked: 503 in AWS on every such edit, 200 everywhere here.)
#[tokio::test]
async fn every_exam_and_admin_fixture_succeeds_on_aws_as_each_functions_role_allows() {
    let env = TestEnv::spawn().await;
    let mut checked = 0;
    for (name, text) in fixtures() {
        if is_exam_api(&name) || is_admin_api(&name) {
            let h = env.exam_harness(oes_tests::exams::no_cache());
            check_with_a_real_token(&h, &InProcess(&h), &name, &text).await;
            checked += 1;
        }
    }
    assert!(checked >= 24, "only {checked} fixtures found");
}

/// An attempt at a published exam whose deadline passed a minute ago, and its student: started
/// with `h`'s clock set 31 minutes back (a 30-minute exam), then the clock set to now again, so
/// a sweep at the real time (the binary's) or at `h`'s clock finds it due.
pub(crate) async fn attempt_left_open(h: &ExamHarness) -> (String, Caller) {
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    h.clock.advance(-31 * 60);
    let (exam, _) = h.exam_with_questions(&owner, 1, true).await;
    let (status, started) = h
        .call("POST", &format!("/exams/{exam}/attempts"), None, &student)
        .await;
    assert_eq!(status, 201, "{started}");
    h.clock.advance(31 * 60);
    let attempt = started["attempt_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (attempt, student)
}

/// Checks what the sweep run by the schedule fixture did to the [`attempt_left_open`]: its
/// `report` says it closed one attempt, the attempt reads as submitted, and `waiting_emails`
/// (the messages on the lanes afterwards) holds its one result email.
pub(crate) async fn check_swept(
    h: &ExamHarness,
    report: &Value,
    (attempt, student): &(String, Caller),
    waiting_emails: usize,
) {
    assert_eq!(report["closed"], 1, "the sweep's report: {report}");
    assert_eq!(report["failed"], 0, "the sweep's report: {report}");
    let (_, read) = h
        .call("GET", &format!("/attempts/{attempt}"), None, student)
        .await;
    assert_eq!(read["status"], "submitted", "{read}");
    assert_eq!(waiting_emails, 1, "one result email");
}

/// The attempt sweeper's scheduled event, handed to its handler: an attempt left open past its
/// deadline is closed, with its result email.
#[tokio::test]
async fn the_schedule_fixture_runs_a_sweep_that_closes_an_attempt_left_open() {
    let text = fixtures()
        .remove("schedule-attempt-sweep.json")
        .expect("events/schedule-attempt-sweep.json");
    let event: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(event["detail-type"], "Scheduled Event");

    let h = ExamHarness::in_memory();
    let left_open = attempt_left_open(&h).await;

    // With the context's deadline a minute away, as Lambda gives it.
    let mut context = lambda_http::Context::default();
    context.deadline =
        u64::try_from(oes_domain::clock::Clock::now(&SystemClock) + 60).unwrap_or(0) * 1_000;
    let report = exam_api::sweep::handle(&h.sweeper, lambda_http::LambdaEvent::new(event, context))
        .await
        .unwrap_or_else(|e| panic!("the sweep failed: {e}"));
    let report = serde_json::to_value(report).unwrap_or_else(|e| panic!("{e}"));
    let queue = h.queue.as_ref().expect("in memory");
    let waiting = oes_tests::take_waiting(queue, 10).await.len();
    check_swept(&h, &report, &left_open, waiting).await;
}

/// The SQS fixtures (email-worker's).
pub(crate) fn is_sqs(name: &str) -> bool {
    name.starts_with("sqs-")
}

/// SQS fixture `name`, parsed.
pub(crate) fn sqs_event(name: &str, text: &str) -> SqsEvent {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{name} is not an SQS event: {e}"))
}

/// How many times SQS fixture `name` is delivered to the worker: twice for the duplicate (a
/// record reported for redelivery comes back), once for the others.
pub(crate) fn deliveries(name: &str) -> usize {
    if name == "sqs-duplicate-delivery.json" {
        2
    } else {
        1
    }
}

/// What the worker did with SQS fixture `name`, delivered [`deliveries`] times to a worker with
/// a fresh job ledger.
pub(crate) struct WorkerOutcome {
    /// The batch response of each delivery.
    pub(crate) responses: Vec<SqsBatchResponse>,
    /// Each email sent, as text holding a `To: <address>` line, its subject and its body.
    pub(crate) mails: Vec<String>,
    /// The `original_message_id` of each message set aside on the dead-letter queue.
    pub(crate) dead: Vec<String>,
}

/// Checks the [`WorkerOutcome`] of SQS fixture `name` (`event`), for a worker whose links point
/// at `public_base_url`.
pub(crate) fn check_sqs_fixture(
    name: &str,
    event: &SqsEvent,
    outcome: &WorkerOutcome,
    public_base_url: &str,
) {
    let WorkerOutcome {
        responses,
        mails,
        dead,
    } = outcome;
    assert_eq!(responses.len(), deliveries(name), "{name}");
    let last = responses.last().map(|r| &r.batch_item_failures);
    assert!(
        last.is_some_and(Vec::is_empty),
        "{name}: nothing left to redeliver: {responses:?}"
    );
    match name {
        "sqs-verification-batch.json" => {
            assert_eq!(mails.len(), 2, "{name}: {mails:#?}");
            let link = format!("{public_base_url}/auth/verify-email?token=");
            assert!(
                mails
                    .iter()
                    .any(|m| m.contains("To: ada@example.com") && m.contains(&link)),
                "{name}: the verification email with its link: {mails:#?}"
            );
            assert!(
                mails
                    .iter()
                    .any(|m| m.contains("To: grace@example.com")
                        && m.contains("Reset your password")),
                "{name}: the password reset email: {mails:#?}"
            );
            assert!(dead.is_empty(), "{name}: {dead:?}");
        }
        "sqs-poison-record.json" => {
            let poison = event
                .records
                .iter()
                .find(|r| {
                    r.body
                        .as_deref()
                        .is_some_and(|b| oes_domain::email::EmailJob::decode(b).is_err())
                })
                .and_then(|r| r.message_id.clone())
                .expect("a poison record");
            assert_eq!(dead, &[poison], "{name}: only the poison record set aside");
            assert_eq!(mails.len(), 1, "{name}: the valid job is sent: {mails:#?}");
        }
        "sqs-duplicate-delivery.json" => {
            let jobs: BTreeSet<_> = event
                .records
                .iter()
                .filter_map(|r| r.body.as_deref())
                .filter_map(|b| oes_domain::email::EmailJob::decode(b).ok())
                .map(|job| job.job_id)
                .collect();
            assert_eq!(
                (event.records.len(), jobs.len()),
                (2, 1),
                "two records, one job"
            );
            // A record that found the other's send lease is reported for redelivery; SQS then
            // delivers it again, and the job is already sent.
            assert!(
                responses[0].batch_item_failures.len() <= 1,
                "{name}: {responses:?}"
            );
            assert_eq!(mails.len(), 1, "{name}: exactly one email: {mails:#?}");
            assert!(dead.is_empty(), "{name}: {dead:?}");
        }
        _ => panic!("{name}: add what the worker does with it to fixtures.rs"),
    }
}

/// Where the in-process worker's links point.
const PUBLIC_BASE_URL: &str = "https://exams.example.org";

/// Hands SQS fixture `name` to the worker over in-memory adapters (mail to a fresh outbox
/// folder, queues named as the fixtures' `eventSourceARN`: prefix `oes-local`, the local
/// resources `env.json` names) and checks what it did.
async fn check_in_process(name: &str) {
    let text = fixtures()
        .remove(name)
        .unwrap_or_else(|| panic!("no events/{name}"));
    let event = sqs_event(name, &text);
    let dir = std::env::temp_dir().join(format!("oes-fixture-outbox-{}", uuid::Uuid::new_v4()));
    let queue = Arc::new(MemoryQueues::named("oes-local"));
    let adapters = WorkerAdapters {
        mailer: Arc::new(OutboxMailer::new(&dir, "noreply@example.com")),
        jobs: Arc::new(MemoryJobs::default()),
        control: Arc::new(EmailLanes::new(queue.clone())),
    };
    let worker = Worker::new(
        adapters,
        PUBLIC_BASE_URL,
        RetryPolicy::default(),
        5,
        Arc::new(SystemClock),
    );
    let mut responses = Vec::new();
    for _ in 0..deliveries(name) {
        responses.push(worker.handle_batch(event.clone()).await);
    }
    let dead = queue
        .receive(QueueName::DeadLetter, 10, Some(0), Duration::ZERO)
        .await
        .expect("receive")
        .into_iter()
        .filter_map(|d| d.attributes.get("original_message_id").cloned())
        .collect();
    let outcome = WorkerOutcome {
        responses,
        mails: written(&dir),
        dead,
    };
    let _ = std::fs::remove_dir_all(&dir);
    check_sqs_fixture(name, &event, &outcome, PUBLIC_BASE_URL);
}

fn written(dir: &PathBuf) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Each SQS fixture, handed to the worker: the batch fixture sends every email, the poison
/// fixture sets only the poison record aside, the duplicate sends one email even across
/// redelivery.
#[tokio::test]
async fn every_sqs_fixture_is_handled_by_the_worker() {
    let names: Vec<String> = fixtures().into_keys().filter(|n| is_sqs(n)).collect();
    assert!(names.len() >= 3, "only {} SQS fixtures found", names.len());
    for name in names {
        check_in_process(&name).await;
    }
}
