//! The log lines, as CloudWatch receives them (the same JSON subscriber the functions install):
//! one line per request with API Gateway's request id, the route, status, latency and the
//! caller's user id — and never the token; and the attempt sweep's line, only when it did
//! something.

use std::io::Write;
use std::sync::{Arc, Mutex};

use email_worker::Worker;
use oes_adapters::memory::{MemoryJobs, MemoryQueues};
use oes_domain::clock::SystemClock;
use oes_domain::email::OutgoingEmail;
use oes_domain::pipeline::EmailLanes;
use oes_domain::ports::{MailError, Mailer};
use oes_domain::user::Role;
use oes_runtime::config::RetryPolicy;
use oes_runtime::wiring::WorkerAdapters;
use oes_tests::exams::ExamHarness;
use serde_json::Value;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// Log lines written to memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|e| std::io::Error::other(e.to_string()))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Captured {
    /// The lines this thread logs at INFO and above, through the functions' JSON subscriber,
    /// until the guard is dropped.
    fn installed() -> (Self, tracing::subscriber::DefaultGuard) {
        let captured = Self::default();
        let subscriber =
            oes_runtime::telemetry::json_subscriber(EnvFilter::new("info"), captured.clone());
        (captured, tracing::subscriber::set_default(subscriber))
    }

    fn lines(&self) -> Vec<Value> {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }
}

#[tokio::test]
async fn each_request_logs_one_json_line_with_request_id_route_status_latency_and_user() {
    let (captured, _guard) = Captured::installed();

    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let (exam, _) = h.exam_with_questions(&owner, 1, true).await;
    let (status, _) = h.call("GET", &format!("/exams/{exam}"), None, &owner).await;
    assert_eq!(status, 200);
    let (status, _) = h.call("GET", "/exams/not-an-id", None, &owner).await;
    assert_eq!(status, 404);

    let lines = captured.lines();
    let requests: Vec<&Value> = lines.iter().filter(|l| l["message"] == "request").collect();
    assert_eq!(requests.len(), 5, "one line per request: {lines:#?}");
    let get = requests[3];
    assert_eq!(get["status"], 200);
    assert_eq!(get["method"], "GET");
    assert_eq!(get["path"], format!("/exams/{exam}"));
    assert!(get["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0));
    assert_eq!(get["span"]["user_id"], owner.id.as_str());
    // The route API Gateway matched, as its event names it (the template declares each route;
    // no `$default` catch-all).
    assert_eq!(get["span"]["route"], "GET /exams/{exam_id}");
    assert!(
        get["span"]["request_id"]
            .as_str()
            .is_some_and(|id| id.len() == 36),
        "API Gateway's request id: {get}"
    );
    assert_eq!(requests[4]["status"], 404);

    let everything = lines.iter().map(Value::to_string).collect::<String>();
    assert!(
        !everything.contains(&owner.token),
        "the access token is never logged"
    );
}

/// The attempt sweep runs every minute in AWS (every 10 s in oes-local): a sweep that found
/// nothing due logs nothing at INFO — a line a minute of nothing, per stack, in CloudWatch and
/// in oes-local's terminal — and one that closed an attempt says what it did.
#[tokio::test]
async fn a_sweep_logs_at_info_only_when_it_did_something() {
    let (captured, _guard) = Captured::installed();
    let sweeps = || -> Vec<Value> {
        captured
            .lines()
            .into_iter()
            .filter(|line| line["message"] == "attempt sweep done")
            .collect()
    };

    let h = ExamHarness::in_memory();
    assert_eq!(h.sweep().await.closed, 0);
    assert!(sweeps().is_empty(), "an idle sweep: {:#?}", sweeps());

    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let (exam, _) = h.exam_with_questions(&owner, 1, true).await;
    let (status, started) = h
        .call("POST", &format!("/exams/{exam}/attempts"), None, &student)
        .await;
    assert_eq!(status, 201, "{started}");
    // The student walks away; the 30 minutes pass.
    h.clock.advance(30 * 60 + 5);
    assert_eq!(h.sweep().await.closed, 1);
    let logged = sweeps();
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert_eq!(logged[0]["closed"], 1, "{}", logged[0]);
}

/// docs/OPERATIONS.md gives operators one Logs Insights query for the worker's errors. Each
/// field it names must be where the worker's ERROR lines carry it (a span's fields are under
/// `span.`), or the column is empty when it is needed: a refused email (`reason`) and a poison
/// message (`error`), each naming its job.
#[tokio::test]
async fn the_worker_query_in_operations_names_fields_its_error_lines_carry() {
    let operations = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/OPERATIONS.md"),
    )
    .expect("docs/OPERATIONS.md");
    let query = operations
        .split('`')
        .find(|part| part.starts_with("fields @timestamp") && part.contains("ERROR"))
        .expect("the worker's error query");
    let fields: Vec<&str> = query
        .trim_start_matches("fields ")
        .split('|')
        .next()
        .expect("its fields")
        .split(',')
        .map(str::trim)
        .filter(|field| !field.starts_with('@'))
        .collect();

    let lines = worker_lines(
        Arc::new(Refusing),
        &["sqs-verification-batch.json", "sqs-poison-record.json"],
    )
    .await;
    let errors: Vec<Value> = lines
        .into_iter()
        .filter(|line| line["level"] == "ERROR")
        .collect();
    assert!(
        errors.len() >= 2,
        "a refusal and a poison message: {errors:#?}"
    );
    for field in fields {
        let found = errors.iter().any(|line| {
            field
                .split('.')
                .try_fold(line, |value, key| value.get(key))
                .is_some()
        });
        assert!(
            found,
            "no ERROR line of the worker has {field}: {errors:#?}"
        );
    }
}

/// The JSON lines the worker logs handling the `events/` SQS fixtures `names`, sending through
/// `mailer`.
async fn worker_lines(mailer: Arc<dyn Mailer>, names: &[&str]) -> Vec<Value> {
    let (captured, _guard) = Captured::installed();
    let queue = Arc::new(MemoryQueues::named("oes-local"));
    let adapters = WorkerAdapters {
        mailer,
        jobs: Arc::new(MemoryJobs::default()),
        control: Arc::new(EmailLanes::new(queue)),
    };
    let worker = Worker::new(
        adapters,
        "https://exams.example.com",
        RetryPolicy::default(),
        1,
        Arc::new(SystemClock),
    );
    for name in names {
        let text = crate::fixtures::fixtures()
            .remove(*name)
            .unwrap_or_else(|| panic!("no events/{name}"));
        worker
            .handle_batch(crate::fixtures::sqs_event(name, &text))
            .await;
    }
    captured.lines()
}

/// docs/OPERATIONS.md finds a duplicate's sends by its job's `email sent` lines: each field its
/// filter names must be where those lines carry it. It named a top-level `job_id`, which is the
/// span's (`span.job_id`): the query found no line.
#[tokio::test]
async fn the_duplicate_query_in_operations_finds_the_email_sent_lines() {
    let operations = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/OPERATIONS.md"),
    )
    .expect("docs/OPERATIONS.md");
    let query = operations
        .split('`')
        .find(|part| part.starts_with("filter ") && part.contains("email sent"))
        .expect("the duplicate query");
    let lines = worker_lines(Arc::new(Accepting), &["sqs-verification-batch.json"]).await;
    let sent: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "email sent")
        .collect();
    assert!(!sent.is_empty(), "the worker sent: {lines:#?}");
    for condition in query.trim_start_matches("filter ").split(" and ") {
        let (field, _) = condition
            .split_once(" = ")
            .unwrap_or_else(|| panic!("a condition field = value: {condition}"));
        let carried = sent.iter().all(|line| {
            field
                .trim()
                .split('.')
                .try_fold(*line, |value, key| value.get(key))
                .is_some()
        });
        assert!(carried, "an `email sent` line without {field}: {sent:#?}");
    }
}

/// A mailer SES takes every email from.
struct Accepting;

#[async_trait::async_trait]
impl Mailer for Accepting {
    async fn send(&self, _email: &OutgoingEmail) -> Result<String, MailError> {
        Ok("ses-accepted".into())
    }
}

/// A mailer SES refuses every email to, for good.
struct Refusing;

#[async_trait::async_trait]
impl Mailer for Refusing {
    async fn send(&self, _email: &OutgoingEmail) -> Result<String, MailError> {
        Err(MailError::Permanent(
            "MessageRejected: Email address is not verified.".into(),
        ))
    }
}
