//! auth-api behaviour through its Lambda handler, over in-memory adapters.

use std::sync::Arc;

use oes_adapters::dynamo::DynamoUsers;
use oes_adapters::memory::{MemoryJobs, MemoryQueues};
use oes_domain::clock::{ManualClock, SystemClock};
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_runtime::wiring::ApiAdapters;
use oes_tests::lost_answers::LoseAnswers;
use oes_tests::{call, in_memory_auth, in_memory_auth_with_clock};
use serde_json::{Value, json};

/// The one-time tokens in the queued emails, oldest first (draining the queue; the notice a
/// move sends to the address left carries none).
async fn queued_tokens(queue: &MemoryQueues) -> Vec<(String, String)> {
    oes_tests::take_waiting(queue, 100)
        .await
        .into_iter()
        .filter_map(|m| {
            let job = EmailJob::decode(&m.body).expect("a valid job");
            let token = match job.template {
                EmailTemplate::Verification { token, .. }
                | EmailTemplate::PasswordReset { token, .. }
                | EmailTemplate::EmailChange { token, .. } => token.expose().to_owned(),
                EmailTemplate::Generic { .. } => return None,
                other => panic!("auth-api queued a {} email", other.kind()),
            };
            Some((job.to.as_str().to_owned(), token))
        })
        .collect()
}

fn body(value: Value) -> String {
    value.to_string()
}

async fn register(service: &auth_api::AuthService, email: &str) -> (u16, Value) {
    let payload = body(json!({"email": email, "password": "correct horse", "name": "Ada"}));
    call(service, "POST", "/auth/register", Some(&payload), None).await
}

async fn login(service: &auth_api::AuthService, email: &str, password: &str) -> (u16, Value) {
    let payload = body(json!({"email": email, "password": password}));
    call(service, "POST", "/auth/login", Some(&payload), None).await
}

/// Registers and verifies `email`, returns an access token.
async fn signed_in(service: &auth_api::AuthService, queue: &MemoryQueues, email: &str) -> String {
    assert_eq!(register(service, email).await.0, 202);
    let (_, token) = queued_tokens(queue)
        .await
        .pop()
        .expect("a verification email");
    let payload = body(json!({ "token": token }));
    assert_eq!(
        call(service, "POST", "/auth/verify-email", Some(&payload), None)
            .await
            .0,
        200
    );
    let (status, session) = login(service, email, "correct horse").await;
    assert_eq!(status, 200, "{session}");
    session["access_token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

#[tokio::test]
async fn sign_up_verify_and_sign_in() {
    let (service, queue) = in_memory_auth();
    let (status, accepted) = register(&service, "  Ada@Example.com ").await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["status"], "accepted");
    assert!(
        accepted["message"]
            .as_str()
            .is_some_and(|m| m.contains("inbox")),
        "{accepted}"
    );

    let (status, refused) = login(&service, "ada@example.com", "correct horse").await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (401, Some("invalid_credentials")),
        "not verified yet: answered as a wrong password"
    );

    let tokens = queued_tokens(&queue).await;
    assert_eq!(tokens.len(), 1, "exactly one verification email is queued");
    let (to, token) = &tokens[0];
    assert_eq!(to, "ada@example.com");
    // The emailed link opens a page and uses nothing: mail scanners and link previews open
    // links too. Before, opening it verified the address.
    let page = auth_api::handle(
        &service,
        oes_tests::request(
            "GET",
            &format!("/auth/verify-email?token={token}"),
            None,
            None,
        ),
    )
    .await
    .expect("handled");
    let content_type = page
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    assert_eq!(
        (page.status().as_u16(), content_type),
        (200, Some("text/html; charset=utf-8"))
    );
    let (status, _) = login(&service, "ada@example.com", "correct horse").await;
    assert_eq!(status, 401, "opening the link verified nothing");
    // Its button sends the token.
    let confirm = json!({ "token": token }).to_string();
    let (status, verified) =
        call(&service, "POST", "/auth/verify-email", Some(&confirm), None).await;
    assert_eq!(
        (status, verified["status"].as_str()),
        (200, Some("verified"))
    );

    let (status, session) = login(&service, "ADA@example.com", "correct horse").await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["token_type"], "Bearer");
    assert!(session["expires_in"].as_i64().is_some_and(|s| s > 0));

    let bearer = session["access_token"].as_str().expect("token");
    let (status, me) = call(&service, "GET", "/auth/me", None, Some(bearer)).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            me["email"].as_str(),
            me["role"].as_str(),
            me["status"].as_str()
        ),
        (Some("ada@example.com"), Some("student"), Some("active"))
    );
    assert!(me.get("password_hash").is_none());
}

#[tokio::test]
async fn a_sign_up_with_a_verified_address_is_accepted_and_mails_its_owner_a_notice() {
    let (service, queue) = in_memory_auth();
    signed_in(&service, &queue, "ada@example.com").await;
    let fresh = register(&service, "grace@example.com").await;
    let _verification = queued_tokens(&queue).await;
    let taken = register(&service, "ADA@example.com").await;
    assert_eq!(
        taken.1, fresh.1,
        "answered as a sign-up with a free address"
    );
    assert_eq!(taken.0, fresh.0);
    let jobs: Vec<EmailJob> = oes_tests::take_waiting(&queue, 10)
        .await
        .iter()
        .map(|m| EmailJob::decode(&m.body).expect("a valid job"))
        .collect();
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(jobs[0].to.as_str(), "ada@example.com");
    assert_eq!(
        jobs[0].template,
        EmailTemplate::AccountExists { name: "Ada".into() }
    );
}

#[tokio::test]
async fn verification_tokens_are_single_use() {
    let (service, queue) = in_memory_auth();
    register(&service, "ada@example.com").await;
    let (_, token) = queued_tokens(&queue).await.pop().expect("token");
    let payload = body(json!({ "token": token }));
    assert_eq!(
        call(&service, "POST", "/auth/verify-email", Some(&payload), None)
            .await
            .0,
        200
    );
    let (status, error) = call(&service, "POST", "/auth/verify-email", Some(&payload), None).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("invalid_token"))
    );
}

/// A link's lifetime, from both sides: the first of two links works a second before
/// `lifetime` is over, the second not a second after.
async fn a_link_lasts(
    service: &auth_api::AuthService,
    clock: &ManualClock,
    path: &str,
    lifetime: i64,
    links: [String; 2],
) {
    let [first, second] = links;
    clock.advance(lifetime - 1);
    let (status, _) = call(service, "POST", path, Some(&first), None).await;
    assert_eq!(status, 200, "{path} within its lifetime");
    clock.advance(2);
    let (status, error) = call(service, "POST", path, Some(&second), None).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("invalid_token")),
        "{path} after its lifetime"
    );
}

#[tokio::test]
async fn verification_tokens_expire_after_a_day() {
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let (service, queue) = in_memory_auth_with_clock(clock.clone());
    register(&service, "ada@example.com").await;
    register(&service, "grace@example.com").await;
    let tokens = queued_tokens(&queue).await;
    let verify = |i: usize| body(json!({ "token": tokens[i].1 }));
    let links = [verify(0), verify(1)];
    a_link_lasts(&service, &clock, "/auth/verify-email", 24 * 3600, links).await;
}

#[tokio::test]
async fn reset_tokens_expire_after_an_hour() {
    let clock = Arc::new(ManualClock::at(1_800_000_000));
    let (service, queue) = in_memory_auth_with_clock(clock.clone());
    let emails = ["ada@example.com", "grace@example.com"];
    for email in emails {
        signed_in(&service, &queue, email).await;
    }
    for email in emails {
        let request = body(json!({ "email": email }));
        let (status, _) = call(
            &service,
            "POST",
            "/auth/password-reset/request",
            Some(&request),
            None,
        )
        .await;
        assert_eq!(status, 202);
    }
    let tokens = queued_tokens(&queue).await;
    assert_eq!(tokens.len(), 2, "a reset link each");
    let confirm =
        |i: usize| body(json!({ "token": tokens[i].1, "new_password": "a brand new secret" }));
    let links = [confirm(0), confirm(1)];
    a_link_lasts(
        &service,
        &clock,
        "/auth/password-reset/confirm",
        3600,
        links,
    )
    .await;
}

#[tokio::test]
async fn resend_answers_the_same_whatever_the_account_and_sends_only_when_unverified() {
    let (service, queue) = in_memory_auth();
    signed_in(&service, &queue, "verified@example.com").await;
    register(&service, "pending@example.com").await;
    queued_tokens(&queue).await;
    for email in [
        "nobody@example.com",
        "verified@example.com",
        "pending@example.com",
    ] {
        let payload = body(json!({ "email": email }));
        let (status, answer) = call(
            &service,
            "POST",
            "/auth/resend-verification",
            Some(&payload),
            None,
        )
        .await;
        assert_eq!(
            (status, answer),
            (202, json!({"status": "accepted"})),
            "{email}"
        );
    }
    let sent: Vec<_> = queued_tokens(&queue)
        .await
        .into_iter()
        .map(|(to, _)| to)
        .collect();
    assert_eq!(sent, ["pending@example.com"]);
}

#[tokio::test]
async fn wrong_password_and_unknown_account_look_the_same() {
    let (service, queue) = in_memory_auth();
    signed_in(&service, &queue, "ada@example.com").await;
    let wrong = login(&service, "ada@example.com", "wrong password").await;
    let unknown = login(&service, "nobody@example.com", "correct horse").await;
    assert_eq!(wrong.0, 401);
    assert_eq!(wrong, unknown);
    assert_eq!(wrong.1["error"]["code"], "invalid_credentials");
}

#[tokio::test]
async fn renaming_updates_the_profile_that_is_read_next() {
    let (service, queue) = in_memory_auth();
    let bearer = signed_in(&service, &queue, "ada@example.com").await;
    let (status, first) = call(&service, "GET", "/auth/me", None, Some(&bearer)).await;
    assert_eq!((status, first["name"].as_str()), (200, Some("Ada")));
    let payload = body(json!({ "name": "Ada King" }));
    let (status, renamed) =
        call(&service, "PATCH", "/auth/me", Some(&payload), Some(&bearer)).await;
    assert_eq!((status, renamed["name"].as_str()), (200, Some("Ada King")));
    let (_, after) = call(&service, "GET", "/auth/me", None, Some(&bearer)).await;
    assert_eq!(
        after["name"], "Ada King",
        "the cached profile was invalidated"
    );
}

/// A rename whose answer was lost (a timeout after DynamoDB applied it, every retry's answer
/// lost too) is answered 503, yet it changed the account: the cached profile goes all the same,
/// or the old name is shown for as long as it stays cached. (A password reset, a conditional
/// write, reads the account again after a lost answer and finds itself applied: it answers 200
/// and invalidates as any success.)
#[tokio::test]
async fn a_rename_whose_answer_was_lost_still_drops_the_cached_profile() {
    let env = oes_tests::TestEnv::spawn().await;
    let (lossy, losing) = LoseAnswers::unarmed(&env.clients.dynamodb());
    let queue = MemoryQueues::new();
    let mut adapters = ApiAdapters::in_memory(queue.clone(), Arc::new(MemoryJobs::default()));
    adapters.users = Arc::new(DynamoUsers::new(lossy, env.provisioned.table.clone()));
    let service = oes_tests::auth_over(adapters, Arc::new(SystemClock));
    let bearer = signed_in(&service, &queue, "ada@example.com").await;
    let (_, first) = call(&service, "GET", "/auth/me", None, Some(&bearer)).await;
    assert_eq!(first["name"], "Ada", "{first}");

    losing.arm(u32::MAX);
    let payload = body(json!({ "name": "Ada King" }));
    let (status, _) = call(&service, "PATCH", "/auth/me", Some(&payload), Some(&bearer)).await;
    assert_eq!(status, 503, "every answer lost");
    losing.arm(0);
    let (_, after) = call(&service, "GET", "/auth/me", None, Some(&bearer)).await;
    assert_eq!(after["name"], "Ada King", "the rename landed: {after}");
}

#[tokio::test]
async fn a_password_reset_revokes_earlier_access_tokens_and_reset_links() {
    let (service, queue) = in_memory_auth();
    let old_bearer = signed_in(&service, &queue, "ada@example.com").await;
    assert_eq!(
        call(&service, "GET", "/auth/me", None, Some(&old_bearer))
            .await
            .0,
        200
    );

    for email in ["ada@example.com", "nobody@example.com"] {
        let payload = body(json!({ "email": email }));
        let (status, _) = call(
            &service,
            "POST",
            "/auth/password-reset/request",
            Some(&payload),
            None,
        )
        .await;
        assert_eq!(status, 202);
    }
    let payload = body(json!({ "email": "ada@example.com" }));
    call(
        &service,
        "POST",
        "/auth/password-reset/request",
        Some(&payload),
        None,
    )
    .await;
    let tokens = queued_tokens(&queue).await;
    assert_eq!(
        tokens.len(),
        2,
        "two reset emails, none for the unknown address"
    );
    let first = body(json!({ "token": tokens[0].1, "new_password": "a first new secret" }));
    let (status, error) = call(
        &service,
        "POST",
        "/auth/password-reset/confirm",
        Some(&first),
        None,
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("invalid_token")),
        "a newer reset link voids the one before"
    );

    let confirm = body(json!({ "token": tokens[1].1, "new_password": "a brand new secret" }));
    let (status, _) = call(
        &service,
        "POST",
        "/auth/password-reset/confirm",
        Some(&confirm),
        None,
    )
    .await;
    assert_eq!(status, 200);

    let (status, error) = call(&service, "GET", "/auth/me", None, Some(&old_bearer)).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    assert_eq!(
        login(&service, "ada@example.com", "correct horse").await.0,
        401
    );
    assert_eq!(
        login(&service, "ada@example.com", "a brand new secret")
            .await
            .0,
        200
    );

    let (status, error) = call(
        &service,
        "POST",
        "/auth/password-reset/confirm",
        Some(&confirm),
        None,
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (400, Some("invalid_token")),
        "a reset link works once"
    );
}

#[tokio::test]
async fn an_email_change_applies_only_once_the_new_address_is_verified() {
    let (service, queue) = in_memory_auth();
    let bearer = signed_in(&service, &queue, "ada@example.com").await;
    let wrong = body(json!({ "new_email": "ada@new.example", "password": "not my password" }));
    let (status, _) = call(
        &service,
        "POST",
        "/auth/me/email",
        Some(&wrong),
        Some(&bearer),
    )
    .await;
    assert_eq!(status, 401);

    let request = body(json!({ "new_email": "Ada@New.example", "password": "correct horse" }));
    let (status, _) = call(
        &service,
        "POST",
        "/auth/me/email",
        Some(&request),
        Some(&bearer),
    )
    .await;
    assert_eq!(status, 202);
    let (_, me) = call(&service, "GET", "/auth/me", None, Some(&bearer)).await;
    assert_eq!(
        me["email"], "ada@example.com",
        "nothing changes before verification"
    );

    let (to, token) = queued_tokens(&queue)
        .await
        .pop()
        .expect("a confirmation email");
    assert_eq!(to, "ada@new.example");
    let payload = body(json!({ "token": token }));
    let (status, verified) =
        call(&service, "POST", "/auth/verify-email", Some(&payload), None).await;
    assert_eq!(
        (status, verified["email"].as_str()),
        (200, Some("ada@new.example"))
    );
    let (_, me) = call(&service, "GET", "/auth/me", None, Some(&bearer)).await;
    assert_eq!(me["email"], "ada@new.example");
    assert_eq!(
        login(&service, "ada@new.example", "correct horse").await.0,
        200
    );
    assert_eq!(
        login(&service, "ada@example.com", "correct horse").await.0,
        401
    );
    assert_eq!(register(&service, "ada@example.com").await.0, 202);
    let sent: Vec<_> = queued_tokens(&queue).await;
    assert_eq!(
        sent.len(),
        1,
        "the old address is free again: a verification link, not a notice"
    );
    assert_eq!(sent[0].0, "ada@example.com");
}

#[tokio::test]
async fn an_email_change_to_a_taken_address_sends_nothing_and_says_nothing() {
    let (service, queue) = in_memory_auth();
    let bearer = signed_in(&service, &queue, "ada@example.com").await;
    signed_in(&service, &queue, "grace@example.com").await;
    let request = body(json!({ "new_email": "grace@example.com", "password": "correct horse" }));
    let (status, _) = call(
        &service,
        "POST",
        "/auth/me/email",
        Some(&request),
        Some(&bearer),
    )
    .await;
    assert_eq!(status, 202);
    assert!(queued_tokens(&queue).await.is_empty());
}

#[tokio::test]
async fn a_role_changed_behind_the_cache_applies_at_the_next_sign_in() {
    use oes_domain::clock::{Clock, SystemClock};
    use oes_domain::ports::UserUpdate;
    use oes_domain::user::{Email, Role};

    let apis = oes_tests::in_memory_apis();
    let email = "operator-made@example.com";
    let old = signed_in(&apis.auth, &apis.queue, email).await;
    for _ in 0..2 {
        let (status, me) = call(&apis.auth, "GET", "/auth/me", None, Some(&old)).await;
        assert_eq!((status, me["role"].as_str()), (200, Some("student")));
    }
    // What `oesctl users set-role` does: a write to the store only, the cache untold.
    let user = apis
        .users
        .find_by_email(&Email::parse(email).expect("email"))
        .await
        .expect("store")
        .expect("user");
    apis.users
        .update(&user.id, UserUpdate::Role(Role::Admin), SystemClock.now())
        .await
        .expect("role change");

    let (status, session) = login(&apis.auth, email, "correct horse").await;
    assert_eq!(status, 200, "{session}");
    let new = session["access_token"].as_str().expect("token");
    let (status, me) = call(&apis.auth, "GET", "/auth/me", None, Some(new)).await;
    assert_eq!(
        (status, me["role"].as_str()),
        (200, Some("admin")),
        "a token newer than the cached profile reloads it: {me}"
    );
    let (status, _) = call(&apis.auth, "GET", "/auth/me", None, Some(&old)).await;
    assert_eq!(
        status, 401,
        "and the token from before the change is revoked"
    );
}
