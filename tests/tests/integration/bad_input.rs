//! Bad input on every auth route gets the documented 4xx JSON error, never a 5xx.

use oes_tests::{call, in_memory_auth};
use serde_json::{Value, json};

const BODY_ROUTES: &[(&str, &str)] = &[
    ("POST", "/auth/register"),
    ("POST", "/auth/verify-email"),
    ("POST", "/auth/resend-verification"),
    ("POST", "/auth/login"),
    ("PATCH", "/auth/me"),
    ("POST", "/auth/password-reset/request"),
    ("POST", "/auth/password-reset/confirm"),
    ("POST", "/auth/me/email"),
];

/// A valid body for each route (so one change at a time makes it invalid).
fn valid_body(path: &str) -> Value {
    match path {
        "/auth/register" => {
            json!({"email": "ada@example.com", "password": "correct horse", "name": "Ada"})
        }
        "/auth/verify-email" => json!({"token": "x"}),
        "/auth/resend-verification" | "/auth/password-reset/request" => {
            json!({"email": "ada@example.com"})
        }
        "/auth/login" => json!({"email": "ada@example.com", "password": "correct horse"}),
        "/auth/me" => json!({"name": "Ada"}),
        "/auth/password-reset/confirm" => json!({"token": "x", "new_password": "correct horse"}),
        "/auth/me/email" => json!({"new_email": "ada@new.example", "password": "correct horse"}),
        other => panic!("no body for {other}"),
    }
}

fn assert_error(answer: &(u16, Value), status: u16, code: &str, case: &str) {
    assert_eq!(answer.0, status, "{case}: {}", answer.1);
    assert_eq!(answer.1["error"]["code"], code, "{case}: {}", answer.1);
    assert!(
        answer.1["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{case}"
    );
}

/// A bearer token for a verified account, for the routes behind authentication.
async fn bearer(
    service: &auth_api::AuthService,
    queue: &oes_adapters::memory::MemoryQueues,
) -> String {
    let register =
        json!({"email": "ada@example.com", "password": "correct horse", "name": "Ada"}).to_string();
    call(service, "POST", "/auth/register", Some(&register), None).await;
    let token = oes_tests::take_verification_token(queue).await;
    let verify = json!({ "token": token }).to_string();
    call(service, "POST", "/auth/verify-email", Some(&verify), None).await;
    let login = json!({"email": "ada@example.com", "password": "correct horse"}).to_string();
    let (_, session) = call(service, "POST", "/auth/login", Some(&login), None).await;
    session["access_token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn malformed_missing_extra_wrong_typed_and_oversized_bodies_are_refused() {
    let (service, queue) = in_memory_auth();
    let token = bearer(&service, &queue).await;
    for &(method, path) in BODY_ROUTES {
        let auth = Some(token.as_str());
        let valid = valid_body(path);
        let case = |what: &str| format!("{method} {path} with {what}");

        for malformed in ["{", "not json", "{,}", "", "{\"", "nul"] {
            let answer = call(&service, method, path, Some(malformed), auth).await;
            assert_error(
                &answer,
                400,
                "malformed_json",
                &case(&format!("{malformed:?}")),
            );
        }

        let fields: Vec<String> = valid.as_object().expect("object").keys().cloned().collect();
        for field in &fields {
            let mut missing = valid.clone();
            missing.as_object_mut().expect("object").remove(field);
            let answer = call(&service, method, path, Some(&missing.to_string()), auth).await;
            assert_error(
                &answer,
                400,
                "invalid_body",
                &case(&format!("{field} missing")),
            );

            let mut wrong_type = valid.clone();
            wrong_type[field.as_str()] = json!(12345);
            let answer = call(&service, method, path, Some(&wrong_type.to_string()), auth).await;
            assert_error(
                &answer,
                400,
                "invalid_body",
                &case(&format!("{field} as a number")),
            );
        }

        let mut extra = valid.clone();
        extra["is_admin"] = json!(true);
        let answer = call(&service, method, path, Some(&extra.to_string()), auth).await;
        assert_error(&answer, 400, "invalid_body", &case("an extra field"));

        for not_object in ["[]", "null", "\"text\"", "42"] {
            let answer = call(&service, method, path, Some(not_object), auth).await;
            assert_error(&answer, 400, "invalid_body", &case(not_object));
        }

        let mut oversized = valid.clone();
        oversized[fields[0].as_str()] = json!("x".repeat(oes_runtime::http::MAX_BODY_BYTES + 1));
        let answer = call(&service, method, path, Some(&oversized.to_string()), auth).await;
        assert_error(
            &answer,
            413,
            "payload_too_large",
            &case("an oversized body"),
        );
    }
}

#[tokio::test]
async fn invalid_emails_are_refused_where_an_email_is_given() {
    let (service, queue) = in_memory_auth();
    let token = bearer(&service, &queue).await;
    let cases = [
        ("/auth/register", "email"),
        ("/auth/resend-verification", "email"),
        ("/auth/login", "email"),
        ("/auth/password-reset/request", "email"),
        ("/auth/me/email", "new_email"),
    ];
    for (path, field) in cases {
        for bad in ["not-an-email", "ada@", "@example.com", "ada@example", ""] {
            let mut body = valid_body(path);
            body[field] = json!(bad);
            let answer = call(
                &service,
                "POST",
                path,
                Some(&body.to_string()),
                Some(&token),
            )
            .await;
            assert_error(
                &answer,
                400,
                "validation_error",
                &format!("{path} with {field}={bad:?}"),
            );
            assert!(
                answer.1["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains(field),
                "{path}: {}",
                answer.1
            );
        }
    }
}

#[tokio::test]
async fn short_long_and_blank_values_are_refused() {
    let (service, _) = in_memory_auth();
    let cases = [
        ("/auth/register", "password", json!("short")),
        ("/auth/register", "password", json!("x".repeat(129))),
        ("/auth/register", "name", json!("   ")),
        ("/auth/register", "name", json!("x".repeat(101))),
        (
            "/auth/password-reset/confirm",
            "new_password",
            json!("1234567"),
        ),
    ];
    for (path, field, value) in cases {
        let mut body = valid_body(path);
        body[field] = value;
        let answer = call(&service, "POST", path, Some(&body.to_string()), None).await;
        assert_error(
            &answer,
            400,
            "validation_error",
            &format!("{path} with a bad {field}"),
        );
    }
}

/// A name goes into the emails the account is sent, as SQS message text: Unicode's
/// noncharacters (U+FFFE, U+FFFF and the others), which SQS does not carry, are refused with
/// the control characters — not stored to make the emails unsendable or garbled.
#[tokio::test]
async fn names_with_noncharacters_are_refused() {
    let (service, _) = in_memory_auth();
    for name in [
        "Ada\u{ffff}",
        "Ada\u{fffe}",
        "Ada\u{fdd0}",
        "Ada\u{1fffe}",
        "Ada\u{7}",
    ] {
        let mut body = valid_body("/auth/register");
        body["name"] = json!(name);
        let path = "/auth/register";
        let answer = call(&service, "POST", path, Some(&body.to_string()), None).await;
        assert_error(
            &answer,
            400,
            "validation_error",
            &format!("the name {name:?}"),
        );
    }
}

#[tokio::test]
async fn bad_tokens_are_invalid_tokens() {
    let (service, _) = in_memory_auth();
    for token in [
        String::new(),
        "nope".into(),
        "A".repeat(43),
        "x".repeat(5000),
    ] {
        let body = json!({"token": token}).to_string();
        let answer = call(&service, "POST", "/auth/verify-email", Some(&body), None).await;
        assert_error(&answer, 400, "invalid_token", "POST verify-email");
        let confirm = json!({"token": token, "new_password": "correct horse"}).to_string();
        let answer = call(
            &service,
            "POST",
            "/auth/password-reset/confirm",
            Some(&confirm),
            None,
        )
        .await;
        assert_error(&answer, 400, "invalid_token", "password reset confirm");
    }
    for link in ["/auth/verify-email", "/auth/verify-email?token="] {
        let answer = call(&service, "GET", link, None, None).await;
        assert_error(&answer, 400, "validation_error", "a link without a token");
    }
}

#[tokio::test]
async fn routes_behind_authentication_refuse_missing_and_bad_bearer_tokens() {
    let (service, _) = in_memory_auth();
    let expired_or_forged = [
        None,
        Some("garbage"),
        Some("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"),
    ];
    for (method, path) in [
        ("GET", "/auth/me"),
        ("PATCH", "/auth/me"),
        ("POST", "/auth/me/email"),
    ] {
        for bearer in expired_or_forged {
            let body = (method != "GET").then(|| valid_body(path).to_string());
            let answer = call(&service, method, path, body.as_deref(), bearer).await;
            assert_error(
                &answer,
                401,
                "unauthorized",
                &format!("{method} {path} with {bearer:?}"),
            );
        }
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let (service, _) = in_memory_auth();
    assert_error(
        &call(&service, "GET", "/auth/nothing-here", None, None).await,
        404,
        "not_found",
        "unknown path",
    );
    assert_error(
        &call(&service, "DELETE", "/auth/me", None, None).await,
        405,
        "method_not_allowed",
        "wrong method",
    );
    assert_error(
        &call(&service, "GET", "/auth/login", None, None).await,
        405,
        "method_not_allowed",
        "GET login",
    );
}

/// A dot segment in a path is an id like any other text, not a step up: lambda_http builds its
/// URI with the `url` crate, which removes dot segments (`%2e%2e` too), so a request the gateway
/// routed as `DELETE /exams/{exam_id}/questions/{question_id}` reached exam-api as
/// `DELETE /exams/{exam_id}` — and deleted the exam. The functions route on the path as API
/// Gateway sent it.
#[tokio::test]
async fn a_dot_segment_in_a_path_is_no_step_up() {
    use oes_domain::user::Role;
    let h = oes_tests::exams::ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let (exam, _) = h.exam_with_questions(&owner, 1, false).await;
    for dots in ["..", "%2e%2e", ".%2E", "."] {
        let path = format!("/exams/{exam}/questions/{dots}");
        let answer = h.call("DELETE", &path, None, &owner).await;
        assert_error(&answer, 404, "not_found", &path);
        let patched = json!({ "title": "renamed" });
        let answer = h.call("PATCH", &path, Some(&patched), &owner).await;
        assert_error(&answer, 404, "not_found", &path);
    }
    let (status, outline) = h.call("GET", &format!("/exams/{exam}"), None, &owner).await;
    assert_eq!(status, 200, "{outline}");
    assert_eq!(outline["title"], "Rust basics", "{outline}");
}
