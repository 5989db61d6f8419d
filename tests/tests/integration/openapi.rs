//! The OpenAPI document and the code agree: it describes every route of both functions (the
//! admin API's included) and nothing else, `docs/openapi.json` is what the code generates, and
//! `oes-local` serves it at `GET /openapi.json`. (That the answers match their schemas is what
//! the schemathesis run of `make test` checks: scripts/fuzz-api.sh.)

use std::collections::BTreeSet;

use oes_domain::security::JwtSettings;
use oes_local::embedded::{self, Embedded};
use serde_json::Value;

/// The committed document.
const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json");

/// `(METHOD, path)` of every operation of a document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .expect("a path item")
                .keys()
                .filter(|key| {
                    ["get", "put", "post", "delete", "patch", "head", "options"]
                        .contains(&key.as_str())
                })
                .map(|method| (method.to_uppercase(), path.clone()))
        })
        .collect()
}

fn generated() -> Value {
    serde_json::from_str(&oes_local::openapi::json()).expect("the document is JSON")
}

#[test]
fn every_route_is_described_and_nothing_else() {
    let in_code: BTreeSet<(String, String)> = auth_api::routes::ROUTES
        .iter()
        .copied()
        .chain(exam_api::routes())
        .chain(admin_api::ROUTES.iter().copied())
        .map(|(method, path)| (method.to_owned(), path.to_owned()))
        .collect();
    let doc = generated();
    assert_eq!(doc["openapi"], "3.1.0");
    let described = operations(&doc);
    let undescribed: Vec<_> = in_code.difference(&described).collect();
    let unrouted: Vec<_> = described.difference(&in_code).collect();
    assert!(
        undescribed.is_empty() && unrouted.is_empty(),
        "routes without a description (add one to functions/*/src/openapi.rs): \
         {undescribed:?}; descriptions of no route: {unrouted:?}"
    );
}

#[test]
fn the_functions_do_not_name_two_schemas_alike() {
    // Merging keeps the first of two schemas of one name: they must be the same schema.
    let parts = [
        ("auth-api", auth_api::openapi::document()),
        ("exam-api", exam_api::openapi::document()),
        ("admin-api", admin_api::openapi::document()),
    ]
    .map(|(function, doc)| {
        let doc = serde_json::to_value(doc).expect("a document");
        let schemas = doc["components"]["schemas"].as_object().cloned();
        (function, schemas.unwrap_or_default())
    });
    for (i, (one, schemas)) in parts.iter().enumerate() {
        for (other, others) in &parts[i + 1..] {
            for (name, schema) in schemas {
                if let Some(theirs) = others.get(name) {
                    assert_eq!(
                        schema, theirs,
                        "{one} and {other} both define schema {name}"
                    );
                }
            }
        }
    }
}

/// Every error a function answers has the error shape, and its 429s and 503s a `Retry-After`.
/// Every operation may also meet API Gateway's route throttle — 429 `{"message": "Too Many
/// Requests"}`, without `Retry-After` — which the document says too (it claimed every error was
/// `{"error": …}` and listed no 429 on most routes, the answer a class at an exam's start meets
/// first).
#[test]
fn every_error_answer_has_the_error_shape_or_the_gateways_and_its_retry_after() {
    const ERROR_BODY: &str = "#/components/schemas/ErrorBody";
    const GATEWAY: &str = "#/components/schemas/GatewayMessage";
    let doc = generated();
    let shared = &doc["components"]["responses"];
    for (method, path) in operations(&doc) {
        let responses = doc["paths"][&path][method.to_lowercase()]["responses"]
            .as_object()
            .expect("responses");
        assert!(responses.contains_key("503"), "{method} {path}: no 503");
        assert!(responses.contains_key("429"), "{method} {path}: no 429");
        for (status, response) in responses {
            if !status.starts_with(['4', '5']) {
                continue;
            }
            let response = match response["$ref"].as_str() {
                Some(name) => &shared[name.trim_start_matches("#/components/responses/")],
                None => response,
            };
            let schema = &response["content"]["application/json"]["schema"];
            let shapes: Vec<&str> = schema["$ref"]
                .as_str()
                .into_iter()
                .chain(
                    schema["oneOf"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s["$ref"].as_str()),
                )
                .collect();
            if status == "429" {
                assert!(shapes.contains(&GATEWAY), "{method} {path} 429: {shapes:?}");
            } else {
                assert_eq!(shapes, [ERROR_BODY], "{method} {path} {status}");
            }
            if shapes.contains(&ERROR_BODY) && (status == "429" || status == "503") {
                assert!(
                    response["headers"]["Retry-After"].is_object(),
                    "{method} {path}: a {status} without Retry-After"
                );
            }
        }
    }
    let about = doc["info"]["description"].as_str().unwrap_or_default();
    assert!(about.contains("API Gateway"), "{about}");
}

#[test]
fn every_link_leads_to_an_operation_and_gives_each_id_of_its_path() {
    let doc = generated();
    let mut by_id = std::collections::BTreeMap::new();
    for (method, path) in operations(&doc) {
        let operation = &doc["paths"][&path][method.to_lowercase()];
        let id = operation["operationId"].as_str().expect("an operationId");
        assert!(
            by_id.insert(id.to_owned(), path.clone()).is_none(),
            "two {id}"
        );
    }
    let mut links = 0;
    for (method, path) in operations(&doc) {
        let responses = &doc["paths"][&path][method.to_lowercase()]["responses"];
        for response in responses.as_object().expect("responses").values() {
            for link in response["links"]
                .as_object()
                .into_iter()
                .flat_map(|l| l.values())
            {
                links += 1;
                let to = link["operationId"].as_str().expect("a link's operationId");
                let target = by_id.get(to).unwrap_or_else(|| panic!("{path}: no {to}"));
                let given: BTreeSet<&str> = link["parameters"]
                    .as_object()
                    .expect("parameters")
                    .keys()
                    .map(String::as_str)
                    .collect();
                let ids: BTreeSet<&str> = target
                    .split('/')
                    .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                    .collect();
                assert_eq!(given, ids, "{method} {path} -> {to}");
            }
        }
    }
    assert!(links > 0, "the stateful fuzzing follows links");
}

#[test]
fn the_committed_document_is_the_generated_one() {
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == oes_local::openapi::json(),
        "docs/openapi.json is not what the code generates; write it again with \
         `cargo run -p oes-local -- --openapi > docs/openapi.json`"
    );
}

#[tokio::test]
async fn oes_local_serves_the_document() {
    let outbox = std::env::temp_dir().join(format!("oes-openapi-{}", uuid::Uuid::new_v4()));
    let settings = Embedded {
        outbox: outbox.clone(),
        public_base_url: "http://127.0.0.1".into(),
        demo_password: "demo-password-123".into(),
        seed_students: 0,
    };
    let jwt = JwtSettings {
        secret: embedded::random_secret(),
        issuer: "oes".into(),
        audience: "oes-api".into(),
        ttl_seconds: 60,
    };
    let functions = embedded::start(settings, jwt).await.expect("embedded mode");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("its address");
    let server = tokio::spawn(oes_local::serve(listener, functions));
    let response = reqwest::get(format!("http://{addr}/openapi.json"))
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "its content type"
    );
    let body = response.text().await.expect("a body");
    server.abort();
    let _ = std::fs::remove_dir_all(outbox);
    assert!(
        body == oes_local::openapi::json(),
        "GET /openapi.json: {body:.200}"
    );
}

/// The request limits the document states (which the fuzzer generates within) are the ones the
/// parsers apply. The numbers' bounds are literals in `#[schema(...)]` attributes (utoipa takes
/// no constant there), so this holds them to the code's constants; text fields are built from
/// the constants (`text_field`) and checked here all the same.
#[test]
fn the_documented_request_limits_are_the_parsers() {
    use oes_domain::exam::limits;
    use oes_domain::security::Password;
    use oes_domain::user::DisplayName;
    let doc = generated();
    let (exam, question) = (
        &["CreateExamBody", "ExamPatchBody"][..],
        &["QuestionBody", "QuestionPatchBody"][..],
    );
    let (password, name) = (
        &[
            ("RegisterBody", "password"),
            ("ResetConfirmBody", "new_password"),
        ][..],
        &[("RegisterBody", "name"), ("RenameBody", "name")][..],
    );
    let mut expected: Vec<(&str, &str, &str, usize)> = Vec::new();
    for &schema in exam {
        expected.extend([
            (schema, "title", "maxLength", limits::TITLE_CHARS),
            (
                schema,
                "description",
                "maxLength",
                limits::DESCRIPTION_CHARS,
            ),
            (
                schema,
                "duration_minutes",
                "maximum",
                limits::DURATION_MINUTES as usize,
            ),
            (schema, "pass_mark_percent", "maximum", 100),
            (
                schema,
                "max_attempts",
                "maximum",
                limits::MAX_ATTEMPTS as usize,
            ),
        ]);
    }
    for &schema in question {
        expected.extend([
            (schema, "text", "maxLength", limits::QUESTION_CHARS),
            (schema, "options", "minItems", limits::MIN_OPTIONS),
            (schema, "options", "maxItems", limits::MAX_OPTIONS),
            (schema, "correct_option", "maximum", limits::MAX_OPTIONS - 1),
            (schema, "points", "maximum", limits::MAX_POINTS as usize),
        ]);
    }
    for &(schema, property) in password {
        expected.extend([
            (schema, property, "minLength", Password::MIN_CHARS),
            (schema, property, "maxLength", Password::MAX_CHARS),
        ]);
    }
    for &(schema, property) in name {
        expected.push((schema, property, "maxLength", DisplayName::MAX_CHARS));
    }
    for (schema, property, keyword, limit) in expected {
        let stated = &doc["components"]["schemas"][schema]["properties"][property][keyword];
        assert_eq!(
            stated.as_u64(),
            Some(limit as u64),
            "{schema}.{property} {keyword}: the document says {stated}, the parser {limit}"
        );
    }

    // The lists' query parameters: `limit` on every list, `max` on the dead letters.
    let ranges = [
        ("limit", oes_runtime::http::paging::MAX_PAGE),
        ("max", admin_api::MAX_LETTERS_LISTED),
    ];
    let mut seen = 0;
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in operations.as_object().expect("operations") {
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let Some(&(name, max)) = ranges.iter().find(|(n, _)| parameter["name"] == *n)
                else {
                    continue;
                };
                let schema = &parameter["schema"];
                assert_eq!(
                    (schema["minimum"].as_u64(), schema["maximum"].as_u64()),
                    (Some(1), Some(max as u64)),
                    "{method} {path} ?{name}: the document says {schema}, the parser 1 to {max}"
                );
                seen += 1;
            }
        }
    }
    assert_eq!(seen, 5, "four lists' limit and the dead letters' max");
}
