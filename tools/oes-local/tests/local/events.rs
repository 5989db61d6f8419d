//! The `events/` fixtures and their generator: the committed files are exactly what the table
//! generates, generated events decode as the Lambda runtime decodes them (with any token and
//! ids), and `oes-events` checks, writes and refuses bad input as documented.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aws_lambda_events::sqs::SqsEvent;
use lambda_http::RequestExt;
use oes_domain::exam::{AttemptId, ExamId, QuestionId};
use oes_local::fixtures::{self, Drift, Generated, Options, table};
use serde_json::Value;

fn generate(options: &Options) -> Vec<Generated> {
    fixtures::generate(options).unwrap_or_else(|e| panic!("the table does not generate: {e}"))
}

#[test]
fn the_committed_events_are_what_the_table_generates() {
    let dir = fixtures::default_dir();
    let drift =
        fixtures::drift(&dir, &generate(&Options::default())).unwrap_or_else(|e| panic!("{e}"));
    let listed: Vec<String> = drift.iter().map(ToString::to_string).collect();
    assert!(
        drift.is_empty(),
        "{} differs from the table in tools/oes-local/src/fixtures/table.rs; run \
         `cargo run -p oes-local --bin oes-events` and commit the result:\n{}",
        dir.display(),
        listed.join("\n")
    );
}

/// A real-looking token and ids, none of them the committed ones.
fn custom() -> Options {
    let id = |s: &str| s.to_owned();
    Options {
        token: "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJyZWFsIn0.c2lnbmF0dXJl".into(),
        exam_id: ExamId::from_trusted(id("0190a6f2-3b1c-7d2e-8f40-112233445566")),
        question_id: QuestionId::from_trusted(id("0190a6f2-3b1c-7d2e-8f40-223344556677")),
        attempt_id: AttemptId::from_trusted(id("0190a6f2-3b1c-7d2e-8f40-334455667788")),
    }
}

#[test]
fn generated_http_events_decode_as_lambda_requests_with_the_chosen_token_and_ids() {
    let options = custom();
    let mut request_ids = BTreeSet::new();
    let mut seen = 0;
    for Generated { file, text } in generate(&options) {
        if file.starts_with("sqs-") || file.starts_with("schedule-") {
            continue;
        }
        for fixed in [table::EXAM_ID, table::QUESTION_ID, table::ATTEMPT_ID] {
            assert!(!text.contains(fixed), "{file} still names {fixed}");
        }
        assert!(!text.contains(table::PLACEHOLDER_TOKEN), "{file}");
        let event: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        let request = oes_runtime::http::request_from_str(&text)
            .unwrap_or_else(|e| panic!("{file} is not an API Gateway event: {e}"));
        let (method, template) = event["routeKey"]
            .as_str()
            .and_then(|key| key.split_once(' '))
            .unwrap_or_else(|| panic!("{file}: routeKey"));
        assert_eq!(request.method().as_str(), method, "{file}");
        assert_eq!(request.uri().path(), event["rawPath"], "{file}");
        let parameters = request.path_parameters();
        let names: Vec<&str> = template
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for name in &names {
            assert!(parameters.first(name).is_some(), "{file}: no {name}");
        }
        assert_eq!(
            event.get("pathParameters").is_some(),
            !names.is_empty(),
            "{file}"
        );
        for (name, id) in options.ids() {
            if let Some(value) = parameters.first(name)
                && file != "exam-malformed-id.json"
            {
                assert_eq!(value, id, "{file}: {name}");
            }
        }
        match request.headers().get("authorization") {
            Some(header) => assert_eq!(header, &format!("Bearer {}", options.token), "{file}"),
            None => assert!(
                file.starts_with("auth-"),
                "{file}: exam-api and admin-api need a token"
            ),
        }
        let body: &[u8] = request.body().as_ref();
        match request.headers().get("content-length") {
            Some(length) => assert_eq!(length, &body.len().to_string(), "{file}"),
            None => assert!(body.is_empty(), "{file}"),
        }
        if method == "GET" {
            assert!(event.get("body").is_none(), "{file}: a GET has no body key");
        }
        let request_id = event["requestContext"]["requestId"].as_str().unwrap_or("");
        assert!(
            request_ids.insert(request_id.to_owned()),
            "{file}: {request_id} twice"
        );
        seen += 1;
    }
    assert!(seen >= 28, "only {seen} HTTP events");
}

#[test]
fn the_answer_body_names_the_chosen_question() {
    let options = custom();
    let answers = generate(&options)
        .into_iter()
        .find(|g| g.file == "attempt-answers-put.json")
        .unwrap_or_else(|| panic!("no attempt-answers-put.json"));
    let event: Value = serde_json::from_str(&answers.text).unwrap_or_else(|e| panic!("{e}"));
    let body: Value = serde_json::from_str(event["body"].as_str().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        body["answers"][options.question_id.as_str()].is_u64(),
        "{body}"
    );
}

#[test]
fn generated_schedule_events_are_eventbridge_scheduled_events_of_a_rule() {
    let mut seen = 0;
    for Generated { file, text } in generate(&Options::default()) {
        if !file.starts_with("schedule-") {
            continue;
        }
        let event: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(event["detail-type"], "Scheduled Event", "{file}");
        assert_eq!(event["source"], "aws.events", "{file}");
        assert_eq!(event["detail"], serde_json::json!({}), "{file}");
        let rule = event["resources"][0].as_str().unwrap_or_default();
        assert!(rule.starts_with("arn:aws:events:"), "{file}: {rule}");
        assert!(rule.contains(":rule/"), "{file}: {rule}");
        assert_eq!(event["id"].as_str().map(str::len), Some(36), "{file}");
        seen += 1;
    }
    assert_eq!(seen, table::SCHEDULE_FIXTURES.len());
}

#[test]
fn generated_sqs_events_decode_as_sqs_batches_with_correct_checksums() {
    let mut seen = 0;
    for Generated { file, text } in generate(&Options::default()) {
        if !file.starts_with("sqs-") {
            continue;
        }
        let event: SqsEvent = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(event.records.len(), 2, "{file}");
        for record in &event.records {
            let body = record.body.as_deref().unwrap_or_default();
            let md5 = record.md5_of_body.as_deref().unwrap_or_default();
            assert_eq!(md5.len(), 32, "{file}");
            assert_eq!(record.event_source.as_deref(), Some("aws:sqs"), "{file}");
            assert!(
                record
                    .receipt_handle
                    .as_deref()
                    .is_some_and(|h| h.starts_with("AQEB")),
                "{file}"
            );
            assert!(!body.is_empty(), "{file}");
        }
        seen += 1;
    }
    assert_eq!(seen, 3);
}

/// A fresh, empty folder under the system's temporary folder; removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("oes-events-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn drift_names_changed_missing_and_unknown_files() {
    let dir = TempDir::new();
    let generated = generate(&Options::default());
    let written = fixtures::write(&dir.0, &generated).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(written.len(), generated.len());
    let again = fixtures::write(&dir.0, &generated).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        again.is_empty(),
        "unchanged files are not rewritten: {again:?}"
    );
    let check = |dir: &Path| fixtures::drift(dir, &generated).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(check(&dir.0), []);

    let touch = |name: &str, text: &str| {
        std::fs::write(dir.0.join(name), text).unwrap_or_else(|e| panic!("{e}"));
    };
    touch("exam-get.json", "{}");
    touch("hand-written.json", "{}");
    touch("NOTES.md", "not a fixture");
    std::fs::remove_file(dir.0.join("sqs-poison-record.json")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        check(&dir.0),
        [
            Drift::Changed("exam-get.json".into()),
            Drift::Missing("sqs-poison-record.json".into()),
            Drift::Unknown("hand-written.json".into()),
        ]
    );
}

fn oes_events(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oes-events"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("oes-events does not start: {e}"))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn oes_events_writes_then_checks_a_folder() {
    let dir = TempDir::new();
    let out = dir.0.to_string_lossy().into_owned();
    let missing = oes_events(&["--check", "--out", &out]);
    assert_eq!(missing.status.code(), Some(1), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("auth-login.json: missing"));

    let args = [
        "--out",
        &out,
        "--bearer",
        "Bearer abc.def.ghi",
        "--exam-id",
        "0190A6F2-3B1C-7D2E-8F40-112233445566",
    ];
    let wrote = oes_events(&args);
    assert_eq!(wrote.status.code(), Some(0), "{}", stderr(&wrote));
    let exam = std::fs::read_to_string(dir.0.join("exam-get.json")).unwrap_or_default();
    assert!(
        exam.contains("\"authorization\": \"Bearer abc.def.ghi\""),
        "{exam}"
    );
    assert!(
        exam.contains("/exams/0190a6f2-3b1c-7d2e-8f40-112233445566"),
        "{exam}"
    );

    let mut check = args.to_vec();
    check.push("--check");
    let up_to_date = oes_events(&check);
    assert_eq!(up_to_date.status.code(), Some(0), "{}", stderr(&up_to_date));
    let other_token = oes_events(&["--check", "--out", &out]);
    assert_eq!(
        other_token.status.code(),
        Some(1),
        "{}",
        stderr(&other_token)
    );
}

#[test]
fn oes_events_rejects_bad_input_with_a_message_and_status_2() {
    let dir = TempDir::new();
    let out = dir.0.to_string_lossy().into_owned();
    let file = dir.0.join("a-file");
    std::fs::write(&file, "").unwrap_or_else(|e| panic!("{e}"));
    let cases: [(&[&str], &str); 6] = [
        (&["--out", &out, "--exam-id", "exam-1"], "is not a UUID"),
        (&["--out", &out, "--attempt-id", ""], "is not a UUID"),
        (&["--out", &out, "--bearer", "two words"], "without spaces"),
        (&["--out", &out, "--bearer", " "], "empty"),
        // A real token belongs in a folder of its own, not in the committed events/.
        (&["--bearer", "abc.def.ghi"], "--out DIR"),
        (&["--out", &file.to_string_lossy()], "a-file"),
    ];
    for (args, message) in cases {
        let output = oes_events(args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(message),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).contains("panicked"), "{args:?}");
    }
}
