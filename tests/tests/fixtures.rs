//! Every `events/*.json` fixture deserialises as its function's event and is handled by it.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use aws_lambda_events::sqs::SqsEvent;
use email_worker::Worker;
use oes_shared::adapters::memory::{MemoryJobs, MemoryQueue};
use oes_shared::adapters::outbox::OutboxMailer;
use oes_shared::clock::SystemClock;
use oes_shared::config::RetryPolicy;
use oes_shared::wiring::WorkerAdapters;
use oes_tests::{in_memory_apis, read};

fn fixtures() -> BTreeMap<String, String> {
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
fn expected_http(name: &str) -> Option<(u16, Option<&'static str>)> {
    Some(match name {
        "auth-register.json" => (201, None),
        "auth-verify-email-post.json" | "auth-verify-email-get.json" => {
            (400, Some("invalid_token"))
        }
        "auth-password-reset-confirm.json" => (400, Some("invalid_token")),
        "auth-resend-verification.json" | "auth-password-reset-request.json" => (202, None),
        "auth-login.json" => (401, Some("invalid_credentials")),
        "auth-me-get.json"
        | "auth-me-patch.json"
        | "auth-email-change.json"
        | "admin-queues.json" => (401, Some("unauthorized")),
        "exam-unknown-route.json" => (404, Some("not_found")),
        _ => return None,
    })
}

#[tokio::test]
async fn every_http_fixture_is_handled_by_its_function() {
    let mut seen = 0;
    for (name, text) in fixtures() {
        if name.starts_with("sqs-") {
            continue;
        }
        let (status, code) = expected_http(&name)
            .unwrap_or_else(|| panic!("{name}: add its expected answer to this test"));
        let request = lambda_http::request::from_str(&text)
            .unwrap_or_else(|e| panic!("{name} is not an API Gateway event: {e}"));
        let apis = in_memory_apis();
        let response = if name.starts_with("auth-") {
            auth_api::handle(&apis.auth, request).await
        } else {
            exam_api::handle(&apis.exams, request).await
        }
        .unwrap_or_else(|e| panic!("{name}: invocation error {e}"));
        let (got, body) = read(&response);
        assert_eq!(got, status, "{name}: {body}");
        if let Some(code) = code {
            assert_eq!(body["error"]["code"], code, "{name}");
        }
        seen += 1;
    }
    assert!(seen >= 12, "only {seen} HTTP fixtures found");
}

fn sqs_event(name: &str) -> SqsEvent {
    let text = fixtures()
        .remove(name)
        .unwrap_or_else(|| panic!("no events/{name}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not an SQS event: {e}"))
}

fn outbox() -> (PathBuf, Worker, Arc<MemoryQueue>) {
    let dir = std::env::temp_dir().join(format!("oes-fixture-outbox-{}", uuid::Uuid::new_v4()));
    let queue = MemoryQueue::new();
    let adapters = WorkerAdapters {
        mailer: Arc::new(OutboxMailer::new(&dir, "noreply@example.com")),
        jobs: Arc::new(MemoryJobs::default()),
        control: queue.clone(),
    };
    let worker = Worker::new(
        adapters,
        "https://exams.example.org",
        RetryPolicy::default(),
        5,
        Arc::new(SystemClock),
    );
    (dir, worker, queue)
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

#[tokio::test]
async fn the_sqs_batch_fixture_sends_every_email() {
    let (dir, worker, _) = outbox();
    let response = worker
        .handle_batch(sqs_event("sqs-verification-batch.json"))
        .await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let mails = written(&dir);
    assert_eq!(mails.len(), 2);
    assert!(mails.iter().any(|m| m.contains("To: ada@example.com")
        && m.contains("https://exams.example.org/auth/verify-email?token=")));
    assert!(
        mails
            .iter()
            .any(|m| m.contains("To: grace@example.com") && m.contains("Reset your password"))
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_poison_fixture_sets_only_the_poison_record_aside() {
    let (dir, worker, queue) = outbox();
    let event = sqs_event("sqs-poison-record.json");
    let poison = event
        .records
        .iter()
        .find(|r| {
            r.body
                .as_deref()
                .is_some_and(|b| oes_shared::email::EmailJob::decode(b).is_err())
        })
        .and_then(|r| r.message_id.clone())
        .expect("a poison record");
    let response = worker.handle_batch(event).await;
    assert!(response.batch_item_failures.is_empty(), "{response:?}");
    let dead: Vec<_> = queue
        .dead_letters()
        .into_iter()
        .map(|d| d.message.message_id)
        .collect();
    assert_eq!(dead, [poison]);
    assert_eq!(written(&dir).len(), 1);
    let _ = std::fs::remove_dir_all(dir);
}
