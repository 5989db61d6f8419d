//! An API request answers before its Lambda invocation's deadline, however slow AWS is. Each AWS
//! call is bounded (`AwsTimeouts`), but a request makes several one after another: an email job
//! at its worst is a DynamoDB write (5 s), an SQS send (8 s) and a DynamoDB write recording its
//! failure (5 s), 18 s against the functions' 10 s `Timeout`. Lambda would end such an
//! invocation: API Gateway answers `500 {"message": "Internal Server Error"}`, our request line
//! is never written, and the environment starts cold again. Instead the request gives up
//! shortly before its deadline and answers 503 `service_unavailable`.
//!
//! Here every AWS call goes to an endpoint that takes connections and never answers, through
//! the real adapters; Redis is the test's own.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use admin_api::AdminApi;
use exam_api::ExamApi;
use lambda_http::{Body, Request, RequestExt as _, Response};
use oes_adapters::aws::AwsClients;
use oes_adapters::memory::MemoryLanes;
use oes_domain::clock::{Clock as _, SystemClock};
use oes_domain::security::JwtKeys;
use oes_domain::user::{Role, User, UserStatus};
use oes_runtime::wiring::ApiAdapters;
use oes_tests::{TestEnv, auth_over, jwt_settings, read, request};
use tokio::net::TcpListener;

/// How long each invocation is given here.
const INVOCATION: Duration = Duration::from_secs(3);

/// An endpoint that takes every connection and never answers: each call waits for its
/// timeout (the emulator's figures, 30 s an attempt).
async fn silent_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = listener.local_addr().expect("its address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    format!("http://{address}")
}

/// `request` as Lambda hands it over: with its invocation's context, which ends `INVOCATION`
/// from now.
fn invoked(request: Request) -> Request {
    request.with_lambda_context(oes_local::gateway::invocation(
        SystemTime::now() + INVOCATION,
    ))
}

fn admin() -> User {
    oes_tests::user_with(
        "deadline@example.com",
        Role::Admin,
        UserStatus::Active,
        SystemClock.now(),
    )
}

/// Waits for `answer` no longer than the invocation, and reads it.
async fn within_invocation(
    answer: impl Future<Output = Result<Response<Body>, lambda_http::Error>>,
) -> Result<(u16, serde_json::Value), String> {
    match tokio::time::timeout(INVOCATION, answer).await {
        Ok(Ok(response)) => Ok(read(&response)),
        Ok(Err(e)) => Err(format!("an invocation error: {e}")),
        Err(_) => Err("no answer before the invocation's deadline".into()),
    }
}

#[tokio::test]
async fn a_request_answers_before_its_deadline_however_slow_aws_is() {
    let env = TestEnv::spawn().await;
    let silent = AwsClients::load(Some(&silent_endpoint().await))
        .await
        .expect("clients");
    let adapters = ApiAdapters::aws(&silent, &env.api_config()).expect("adapters");
    let keys = JwtKeys::new(&jwt_settings());
    let token = keys.issue(&admin(), SystemClock.now()).expect("a token");
    let clock = Arc::new(SystemClock);
    let exams = ExamApi::new(&adapters, JwtKeys::new(&jwt_settings()), clock.clone());
    let admins = AdminApi::new(
        &adapters,
        Arc::new(MemoryLanes::default()),
        JwtKeys::new(&jwt_settings()),
        clock.clone(),
    );
    let auth = auth_over(adapters, clock);
    let login = r#"{"email": "deadline@example.com", "password": "correct horse battery"}"#;

    let (login, exams, counts) = tokio::join!(
        within_invocation(auth_api::handle(
            &auth,
            invoked(request("POST", "/auth/login", Some(login), None))
        ),),
        within_invocation(exam_api::handle(
            &exams,
            invoked(request("GET", "/exams", None, Some(&token)))
        ),),
        within_invocation(admin_api::handle(
            &admins,
            invoked(request(
                "GET",
                "/admin/email-jobs/counts",
                None,
                Some(&token)
            )),
        )),
    );
    let answers = [
        ("POST /auth/login", login),
        ("GET /exams", exams),
        ("GET /admin/email-jobs/counts", counts),
    ];
    for (route, answer) in answers {
        let (status, body) = answer.unwrap_or_else(|e| panic!("{route}: {e}"));
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (503, Some("service_unavailable")),
            "{route}: {body}"
        );
    }
}
