//! The whole sign-up journey through every part of the architecture, against real Redis and the
//! AWS emulator: HTTP → DynamoDB → SQS → worker (driven as the event source mapping drives it)
//! → SES v2 → back to HTTP, with the profile read served from Redis the second time.

use std::convert::Infallible;

use aws_sdk_sqs::types::QueueAttributeName;
use oes_domain::cache::PROFILE_TTL_MAX;
use oes_domain::ports::QueueName;
use oes_domain::user::UserId;
use oes_runtime::config::RetryPolicy;
use oes_runtime::event_source::EventSource;
use oes_tests::{TestEnv, call, read, request, ses_messages_to, token_in};
use redis::AsyncCommands;
use serde_json::json;

async fn messages_on(env: &TestEnv, url: &str) -> (i64, i64) {
    let attributes = env
        .clients
        .sqs()
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("queue attributes");
    let count = |name: &QueueAttributeName| {
        attributes
            .attributes()
            .and_then(|a| a.get(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1)
    };
    (
        count(&QueueAttributeName::ApproximateNumberOfMessages),
        count(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    )
}

#[tokio::test]
async fn register_verify_login_and_read_the_profile_twice_through_real_services() {
    let env = TestEnv::spawn().await;
    let service = env.auth_service();
    let email = format!("ada+{}@example.com", env.prefix);
    let queues = &env.provisioned;

    let register =
        json!({"email": email, "password": "correct horse", "name": "Ada <Lovelace>"}).to_string();
    let (status, accepted) = call(&service, "POST", "/auth/register", Some(&register), None).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(
        messages_on(&env, &queues.priority_queue_url).await,
        (1, 0),
        "one job on the priority lane"
    );
    assert_eq!(
        messages_on(&env, &queues.bulk_queue_url).await,
        (0, 0),
        "nothing on the bulk lane"
    );

    let worker = env.worker(None, RetryPolicy::default());
    let source = EventSource::new(env.sqs_queues(), QueueName::Priority);
    let handled = source
        .poll_once(|event| async { Ok::<_, Infallible>(worker.handle_batch(event).await) })
        .await
        .expect("poll");
    assert_eq!(handled, 1);
    assert_eq!(
        messages_on(&env, &queues.priority_queue_url).await,
        (0, 0),
        "the sent job was deleted"
    );

    let sent = ses_messages_to(&env.endpoints.aws, &email).await;
    assert_eq!(sent.len(), 1, "exactly one email in SES: {sent:?}");
    assert_eq!(sent[0]["subject"], "Confirm your email address");
    assert_eq!(sent[0]["source"], queues.sender_email.as_str());
    let html = sent[0]["body"].as_str().expect("body");
    assert!(
        !html.contains("Lovelace"),
        "no name the sign-up chose, to an address not yet proven: {html}"
    );
    assert!(
        html.contains("https://exams.example.org/auth/verify-email?token="),
        "{html}"
    );
    let token = token_in(html).expect("a token in the email");

    // As the link's page does when its button is pressed.
    let confirm = json!({ "token": token }).to_string();
    let (status, verified) =
        call(&service, "POST", "/auth/verify-email", Some(&confirm), None).await;
    assert_eq!(status, 200, "{verified}");

    let login = json!({"email": email, "password": "correct horse"}).to_string();
    let (status, session) = call(&service, "POST", "/auth/login", Some(&login), None).await;
    assert_eq!(status, 200, "{session}");
    let bearer = session["access_token"].as_str().expect("access token");

    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let response = auth_api::handle(&service, request("GET", "/auth/me", None, Some(bearer)))
            .await
            .expect("handled");
        let cache = response
            .headers()
            .get("x-cache")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let (status, me) = read(&response);
        assert_eq!(
            (status, me["email"].as_str(), me["status"].as_str()),
            (200, Some(email.as_str()), Some("active"))
        );
        outcomes.push(cache);
    }
    assert_eq!(outcomes, [Some("miss".to_owned()), Some("hit".to_owned())]);

    let user_id = UserId::from_trusted(verified["user_id"].as_str().expect("user id"));
    let cache = oes_runtime::wiring::cache_aside(&env.api_config().cache).expect("cache");
    let at = cache
        .locate(&cache.keys().user_profile(&user_id))
        .await
        .expect("the namespace version is readable");
    let mut redis = redis::Client::open(env.endpoints.redis.as_str())
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection");
    let cached: Option<String> = redis.hget(&at.key, &at.field).await.expect("HGET");
    let cached = cached.expect("the profile is in Redis");
    assert!(
        cached.contains(&email) && !cached.contains("argon2"),
        "no password hash in the cache: {cached}"
    );
    let ttl: i64 = redis.ttl(&at.key).await.expect("TTL");
    let most = i64::try_from(PROFILE_TTL_MAX.as_secs()).expect("small");
    assert!(
        (most * 9 / 10 - 2..60).contains(&ttl),
        "cached with the profile TTL and jitter, under a minute, got {ttl}"
    );

    let rename = json!({"name": "Ada King"}).to_string();
    assert_eq!(
        call(&service, "PATCH", "/auth/me", Some(&rename), Some(bearer))
            .await
            .0,
        200
    );
    let still: Option<String> = redis.hget(&at.key, &at.field).await.expect("HGET");
    assert_eq!(still, None, "the write invalidated the cached profile");
}
