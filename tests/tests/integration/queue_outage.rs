//! When SQS refuses the email job, sign-up answers 503 and leaves nothing behind that blocks the
//! user: signing up again works once the queue is back.

use oes_tests::{TestEnv, call};
use serde_json::json;

#[tokio::test]
async fn a_refused_email_job_rolls_the_sign_up_back() {
    let env = TestEnv::spawn().await;
    let mut broken = env.api_config();
    broken.resources.priority_queue_url =
        format!("{}/000000000000/does-not-exist", env.endpoints.aws);
    let adapters = oes_runtime::wiring::ApiAdapters::aws(&env.clients, &broken).expect("adapters");
    let outage = oes_tests::auth_over(
        adapters,
        std::sync::Arc::new(oes_domain::clock::SystemClock),
    );
    let email = format!("outage+{}@example.com", env.prefix);
    let body = json!({"email": email, "password": "correct horse", "name": "Ada"}).to_string();

    let (status, error) = call(&outage, "POST", "/auth/register", Some(&body), None).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (503, Some("email_queue_unavailable")),
        "{error}"
    );

    let healthy = env.auth_service();
    let (status, accepted) = call(&healthy, "POST", "/auth/register", Some(&body), None).await;
    assert_eq!(status, 202, "signing up again works: {accepted}");
}
