//! Attacks on account (issue 12): one-time links followed after the account changed under them,
//! and access tokens used after a password reset or a role change that the cache was not told
//! about. A password reset or a role change, and a completed email change, void every reset and
//! email-change link sent before; of two reset links confirmed together, one resets; a token
//! from before a reset or a role change is refused within a minute even if the cached profile
//! could not be dropped.
//!
//! Through auth-api's handler (the real routes), over in-memory adapters; the race of two reset
//! links runs over the real DynamoDB adapter in the emulator, with both confirms reading the
//! account before either writes (moto does not lock its tables, so the writes are made one after
//! the other: what is tested is that the second is conditioned on what both read).

use super::{assert_invalid_token, bot, sign_in_from};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use auth_api::AuthService;
use auth_api::limits::{LOGIN_PER_ACCOUNT, LOGIN_PER_DEVICE};
use oes_adapters::dynamo::{DynamoTokens, DynamoUsers};
use oes_adapters::memory::{MemoryCache, MemoryJobs, MemoryQueues};
use oes_domain::cache::{CacheAside, CacheKeys, CacheSettings};
use oes_domain::clock::{Clock, SystemClock};
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::ports::{
    Cache, CacheError, Fill, LinkedState, Lookup, StoreError, StoreUnavailable, StoredToken,
    TokenPurpose, TokenStore, UserConflict, UserStore, UserUpdate,
};
use oes_domain::security::OneTimeToken;
use oes_domain::user::{Email, Role, User, UserId};
use oes_runtime::wiring::ApiAdapters;
use oes_tests::{TestEnv, call, in_memory_apis, in_memory_auth};
use serde_json::{Value, json};

const OWNER: &str = "owner@example.com";
const PASSWORD: &str = "correct horse battery";
/// An address of the attacker's (who learnt the owner's password).
const ATTACKER: &str = "mallory@attacker.example";

/// An email auth-api queued: to whom, which kind, and the token in its link.
#[derive(Debug)]
struct Mail {
    to: String,
    kind: &'static str,
    token: String,
}

/// The emails waiting on the queue, oldest first (taking them off it).
async fn mailed(queue: &MemoryQueues) -> Vec<Mail> {
    oes_tests::take_waiting(queue, 100)
        .await
        .into_iter()
        .map(|message| {
            let job = EmailJob::decode(&message.body).expect("a valid job");
            let kind = job.template.kind();
            let token = match job.template {
                EmailTemplate::Verification { token, .. }
                | EmailTemplate::PasswordReset { token, .. }
                | EmailTemplate::EmailChange { token, .. } => token.expose().to_owned(),
                // The notice to the address an account left: no link.
                EmailTemplate::Generic { .. } => String::new(),
                other => panic!("auth-api queued a {} email", other.kind()),
            };
            Mail {
                to: job.to.as_str().to_owned(),
                kind,
                token,
            }
        })
        .collect()
}

/// The one email with a link waiting on the queue, which must go to `to`.
async fn the_mail_to(queue: &MemoryQueues, to: &str) -> Mail {
    // Without the notices a move sends to the address it left (no link).
    let mut mails: Vec<Mail> = mailed(queue)
        .await
        .into_iter()
        .filter(|m| m.kind != "generic")
        .collect();
    assert_eq!(mails.len(), 1, "one email: {mails:?}");
    let mail = mails.remove(0);
    assert_eq!(mail.to, to, "{mail:?}");
    mail
}

async fn post(
    service: &AuthService,
    path: &str,
    body: Value,
    bearer: Option<&str>,
) -> (u16, Value) {
    call(service, "POST", path, Some(&body.to_string()), bearer).await
}

/// Signs in; the access token, or the status and body of the refusal.
async fn sign_in(
    service: &AuthService,
    email: &str,
    password: &str,
) -> Result<String, (u16, Value)> {
    let (status, body) = post(
        service,
        "/auth/login",
        json!({"email": email, "password": password}),
        None,
    )
    .await;
    match body["access_token"].as_str() {
        Some(token) if status == 200 => Ok(token.to_owned()),
        _ => Err((status, body)),
    }
}

/// Signs `email` up with [`PASSWORD`], follows the verification link, signs in.
async fn signed_up(service: &AuthService, queue: &MemoryQueues, email: &str) -> String {
    let (status, body) = post(
        service,
        "/auth/register",
        json!({"email": email, "password": PASSWORD, "name": "Owner"}),
        None,
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let link = the_mail_to(queue, email).await;
    assert_eq!(follow(service, &link).await.0, 200);
    sign_in(service, email, PASSWORD).await.expect("signed in")
}

/// Follows a verification or email-change link.
async fn follow(service: &AuthService, link: &Mail) -> (u16, Value) {
    post(
        service,
        "/auth/verify-email",
        json!({"token": link.token}),
        None,
    )
    .await
}

/// Asks, with `bearer`'s session and the password, to move the account to `new_email`; the link
/// sent there.
async fn email_change_link(
    service: &AuthService,
    queue: &MemoryQueues,
    bearer: &str,
    new_email: &str,
) -> Mail {
    let (status, body) = post(
        service,
        "/auth/me/email",
        json!({"new_email": new_email, "password": PASSWORD}),
        Some(bearer),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let link = the_mail_to(queue, new_email).await;
    assert_eq!(link.kind, "email_change");
    link
}

/// Asks for a password reset of `email`; the link sent there.
async fn reset_link(service: &AuthService, queue: &MemoryQueues, email: &str) -> Mail {
    let (status, _) = post(
        service,
        "/auth/password-reset/request",
        json!({"email": email}),
        None,
    )
    .await;
    assert_eq!(status, 202);
    let link = the_mail_to(queue, email).await;
    assert_eq!(link.kind, "password_reset");
    link
}

async fn confirm_reset(service: &AuthService, link: &Mail, new_password: &str) -> (u16, Value) {
    post(
        service,
        "/auth/password-reset/confirm",
        json!({"token": link.token, "new_password": new_password}),
        None,
    )
    .await
}

/// A verification link outlives the verification by its 24 hours (nothing else voids it): a
/// second one, from a resend, is still good after the first was followed. Once the account has
/// moved to another address, it must not tell whoever reads the old mailbox where the account
/// went.
#[tokio::test]
async fn a_verification_link_followed_after_a_move_does_not_tell_the_new_address() {
    const NEW: &str = "owner@new.example";
    let (service, queue) = in_memory_auth();
    let signup = json!({"email": OWNER, "password": PASSWORD, "name": "Owner"});
    assert_eq!(post(&service, "/auth/register", signup, None).await.0, 202);
    let resend = json!({ "email": OWNER });
    let (status, _) = post(&service, "/auth/resend-verification", resend, None).await;
    assert_eq!(status, 202);
    let links = mailed(&queue).await;
    assert_eq!(links.len(), 2, "{links:?}");
    assert_eq!(follow(&service, &links[0]).await.0, 200);
    let bearer = sign_in(&service, OWNER, PASSWORD).await.expect("signed in");
    let moving = email_change_link(&service, &queue, &bearer, NEW).await;
    assert_eq!(follow(&service, &moving).await.0, 200);

    let answer = follow(&service, &links[1]).await;
    assert!(!answer.1.to_string().contains(NEW), "{}", answer.1);
    assert_invalid_token(
        answer,
        "a verification link sent to the address the account left",
    );
}

/// A reset voids the trust of every device that signed in before (the attacker's, who knew the
/// old password, too), so while a botnet spends the account's sign-in budget, the owner who
/// has just reset would be refused everywhere for up to an hour. The reset answers a device
/// token for the account as reset: the device that confirmed it signs in at once.
#[tokio::test]
async fn the_device_that_reset_the_password_signs_in_while_the_account_is_under_attack() {
    const HOME: [u8; 4] = [198, 51, 100, 7];
    const NEW_PASSWORD: &str = "a new password of mine";
    let (service, queue) = in_memory_auth();
    signed_up(&service, &queue, OWNER).await;
    let (status, session) = sign_in_from(&service, HOME, OWNER, PASSWORD, None).await;
    assert_eq!(status, 200, "{session}");
    let before = session["device_token"]
        .as_str()
        .expect("a device token")
        .to_owned();

    // The account-wide budget spent by many addresses, each within its own limit.
    let mut statuses = Vec::new();
    for n in 0..LOGIN_PER_ACCOUNT.max + 10 {
        statuses.push(
            sign_in_from(&service, bot(n), OWNER, "wrong guess", None)
                .await
                .0,
        );
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");

    let link = reset_link(&service, &queue, OWNER).await;
    let confirm =
        json!({"token": link.token, "new_password": NEW_PASSWORD, "device_token": before});
    let (status, done) = post(&service, "/auth/password-reset/confirm", confirm, None).await;
    assert_eq!(
        (status, &done["status"]),
        (200, &json!("password_reset")),
        "{done}"
    );
    let after = done["device_token"]
        .as_str()
        .expect("a device token for the account as reset");

    let (status, _) = sign_in_from(&service, HOME, OWNER, NEW_PASSWORD, Some(&before)).await;
    assert_eq!(
        status, 429,
        "a device token from before the reset is no longer trusted"
    );
    let (status, session) = sign_in_from(&service, HOME, OWNER, NEW_PASSWORD, Some(after)).await;
    assert_eq!(
        status, 200,
        "the device that reset signs in at once: {session}"
    );
}

/// A reset keeps the device id of the device that confirmed it (its new token is that device's
/// trust for the account as reset). Someone who stole that device's token before the reset —
/// untrusted since — spent the device's budget with it, keyed by the device id alone, and the
/// owner's renewed token met 429 for the rest of the window. The budget is now the token's:
/// its device id and the account's token version it was issued for.
#[tokio::test]
async fn a_device_token_from_before_the_reset_does_not_spend_the_renewed_tokens_budget() {
    const HOME: [u8; 4] = [198, 51, 100, 7];
    const THIEF: [u8; 4] = [203, 0, 113, 99];
    const NEW_PASSWORD: &str = "a new password of mine";
    let (service, queue) = in_memory_auth();
    signed_up(&service, &queue, OWNER).await;
    let (status, session) = sign_in_from(&service, HOME, OWNER, PASSWORD, None).await;
    assert_eq!(status, 200, "{session}");
    let stolen = session["device_token"]
        .as_str()
        .expect("a device token")
        .to_owned();

    let link = reset_link(&service, &queue, OWNER).await;
    let confirm =
        json!({"token": link.token, "new_password": NEW_PASSWORD, "device_token": stolen});
    let (status, done) = post(&service, "/auth/password-reset/confirm", confirm, None).await;
    assert_eq!(status, 200, "{done}");
    let renewed = done["device_token"].as_str().expect("a device token");

    for _ in 0..=LOGIN_PER_DEVICE.max {
        sign_in_from(&service, THIEF, OWNER, "a guess", Some(&stolen)).await;
    }
    let (status, session) = sign_in_from(&service, HOME, OWNER, NEW_PASSWORD, Some(renewed)).await;
    assert_eq!(status, 200, "the owner's renewed device: {session}");
}

/// A user mistypes the address they move to, notices, and asks again for the right one. Both
/// links worked for 24 hours, and whichever was followed first won: the owner of the mistyped
/// mailbox could take the account (and reset its password). One email-change link works at a
/// time, as one reset link does: the newer voids the older.
#[tokio::test]
async fn a_newer_email_change_link_voids_the_one_asked_for_before() {
    const TYPO: &str = "owner@nwe.example";
    const RIGHT: &str = "owner@new.example";
    let (service, queue) = in_memory_auth();
    signed_up(&service, &queue, OWNER).await;
    let bearer = sign_in(&service, OWNER, PASSWORD).await.expect("signed in");
    let mistyped = email_change_link(&service, &queue, &bearer, TYPO).await;
    let meant = email_change_link(&service, &queue, &bearer, RIGHT).await;

    assert_invalid_token(
        follow(&service, &mistyped).await,
        "the link to the mistyped address, asked for again since",
    );
    assert_eq!(follow(&service, &meant).await.0, 200);
    let owner = sign_in(&service, RIGHT, PASSWORD).await.expect("moved");
    assert_eq!(address_of(&service, &owner).await, RIGHT);
}

/// As above, the new address's mailbox past its email budget (someone signed it up again and
/// again): the request sends nothing, and voids the mistyped link all the same. Before, it
/// returned before the new link was stored, and the mistyped mailbox kept a link that moved the
/// account for a day.
#[tokio::test]
async fn a_request_past_the_new_mailboxs_budget_voids_the_email_change_link_asked_for_before() {
    const TYPO: &str = "owner@nwe.example";
    const RIGHT: &str = "owner@new.example";
    let (service, queue) = in_memory_auth();
    signed_up(&service, &queue, OWNER).await;
    let bearer = sign_in(&service, OWNER, PASSWORD).await.expect("signed in");
    let mistyped = email_change_link(&service, &queue, &bearer, TYPO).await;
    for _ in 0..auth_api::limits::EMAIL_PER_ADDRESS.max {
        let sign_up = json!({"email": RIGHT, "password": "another password", "name": "X"});
        assert_eq!(post(&service, "/auth/register", sign_up, None).await.0, 202);
    }
    mailed(&queue).await;
    asked_again_unmailed(&service, &queue, &bearer, RIGHT, &mistyped).await;
}

/// The owner asks again for a move, to `to`: answered 202 with nothing mailed, and the
/// `mistyped` link asked for before is void.
async fn asked_again_unmailed(
    service: &AuthService,
    queue: &MemoryQueues,
    bearer: &str,
    to: &str,
    mistyped: &Mail,
) {
    let (status, body) = post(
        service,
        "/auth/me/email",
        json!({"new_email": to, "password": PASSWORD}),
        Some(bearer),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert!(mailed(queue).await.is_empty(), "nothing sent to {to}");
    assert_invalid_token(
        follow(service, mistyped).await,
        "the link to the mistyped address, asked for again since",
    );
}

/// As above, the second request naming an address another verified account holds: it is sent
/// no link (which would tell that the address has an account), and it voids the mistyped link
/// all the same — it is a new request for the account's move, as any other.
#[tokio::test]
async fn a_request_to_a_taken_address_voids_the_email_change_link_asked_for_before() {
    const TYPO: &str = "owner@nwe.example";
    const TAKEN: &str = "someone@example.com";
    let (service, queue) = in_memory_auth();
    signed_up(&service, &queue, TAKEN).await;
    signed_up(&service, &queue, OWNER).await;
    let bearer = sign_in(&service, OWNER, PASSWORD).await.expect("signed in");
    let mistyped = email_change_link(&service, &queue, &bearer, TYPO).await;
    asked_again_unmailed(&service, &queue, &bearer, TAKEN, &mistyped).await;
    let owner = sign_in(&service, OWNER, PASSWORD).await.expect("not moved");
    assert_eq!(address_of(&service, &owner).await, OWNER);
}

/// Moving an account tells the address it leaves, on the priority lane: if someone who knew
/// the password moved it, the owner learns it there (where else would they?), and where to.
#[tokio::test]
async fn a_move_is_told_to_the_address_the_account_leaves() {
    const NEW: &str = "owner@new.example";
    // Whoever holds the account chose its name: the notice to the owner does not quote it.
    const CHOSEN: &str = "Ada. Routine migration by IT, no action needed";
    let (service, queue) = in_memory_auth();
    signed_up(&service, &queue, OWNER).await;
    let bearer = sign_in(&service, OWNER, PASSWORD).await.expect("signed in");
    let renamed = format!(r#"{{"name": "{CHOSEN}"}}"#);
    let (status, body) = call(&service, "PATCH", "/auth/me", Some(&renamed), Some(&bearer)).await;
    assert_eq!(status, 200, "{body}");
    let link = email_change_link(&service, &queue, &bearer, NEW).await;
    assert_eq!(follow(&service, &link).await.0, 200);

    let waiting = oes_tests::take_waiting(&queue, 10).await;
    let jobs: Vec<EmailJob> = waiting
        .iter()
        .map(|m| EmailJob::decode(&m.body).expect("a valid job"))
        .collect();
    assert_eq!(jobs.len(), 1, "one notice: {jobs:?}");
    let notice = &jobs[0];
    assert_eq!(notice.to.as_str(), OWNER);
    assert_eq!(notice.priority, Some(10), "auth-api's lane");
    let EmailTemplate::Generic { subject, text } = &notice.template else {
        panic!("a notice: {notice:?}");
    };
    assert!(subject.contains("changed"), "{subject}");
    assert!(
        text.contains("o…@new.example"),
        "where it went, masked: {text}"
    );
    assert!(!text.contains(NEW), "the new address in full: {text}");
    assert!(!text.contains("Routine"), "the holder's words: {text}");

    // Following the link again moves nothing and tells no one.
    assert_invalid_token(follow(&service, &link).await, "a used link");
    assert!(oes_tests::take_waiting(&queue, 10).await.is_empty());
}

/// The address of the account `bearer` signs in as.
async fn address_of(service: &AuthService, bearer: &str) -> Value {
    let (status, me) = call(service, "GET", "/auth/me", None, Some(bearer)).await;
    assert_eq!(status, 200, "{me}");
    me["email"].clone()
}

#[tokio::test]
async fn an_email_change_link_is_void_after_the_owner_resets_the_password() {
    let (service, queue) = in_memory_auth();
    signed_up(&service, &queue, OWNER).await;

    // Someone who learnt the password signs in and starts moving the account to their address.
    let attacker = sign_in(&service, OWNER, PASSWORD).await.expect("signed in");
    let takeover = email_change_link(&service, &queue, &attacker, ATTACKER).await;

    // The owner notices and resets the password.
    let reset = reset_link(&service, &queue, OWNER).await;
    assert_eq!(
        confirm_reset(&service, &reset, "the owner's new secret")
            .await
            .0,
        200
    );

    // Hours later, the attacker follows the link they kept.
    assert_invalid_token(
        follow(&service, &takeover).await,
        "a reset voids every email change asked for before it",
    );
    let owner = sign_in(&service, OWNER, "the owner's new secret")
        .await
        .expect("the owner still signs in at their address");
    assert_eq!(address_of(&service, &owner).await, OWNER);
    assert!(
        sign_in(&service, ATTACKER, "the owner's new secret")
            .await
            .is_err(),
        "the account did not move to the attacker's address"
    );
}

#[tokio::test]
async fn an_email_change_link_is_void_after_the_role_changes() {
    let apis = in_memory_apis();
    signed_up(&apis.auth, &apis.queue, OWNER).await;
    let attacker = sign_in(&apis.auth, OWNER, PASSWORD)
        .await
        .expect("signed in");
    let takeover = email_change_link(&apis.auth, &apis.queue, &attacker, ATTACKER).await;

    // An operator changes the account's role (`oesctl users set-role`: a write to the store).
    let owner = apis
        .users
        .find_by_email(&Email::parse(OWNER).expect("valid"))
        .await
        .expect("read")
        .expect("the account");
    apis.users
        .update(
            &owner.id,
            UserUpdate::Role(Role::Instructor),
            SystemClock.now(),
        )
        .await
        .expect("role changed");

    assert_invalid_token(
        follow(&apis.auth, &takeover).await,
        "a role change voids every email change asked for before it",
    );
    let session = sign_in(&apis.auth, OWNER, PASSWORD)
        .await
        .expect("signed in");
    assert_eq!(address_of(&apis.auth, &session).await, OWNER);
}

#[tokio::test]
async fn a_reset_link_sent_to_the_old_address_is_void_after_an_email_change() {
    let (service, queue) = in_memory_auth();
    let owner = signed_up(&service, &queue, OWNER).await;

    // A reset link goes to the old address (a mailbox the owner is giving up, or lost) ...
    let reset = reset_link(&service, &queue, OWNER).await;

    // ... then the owner moves the account to a new address.
    let moved = email_change_link(&service, &queue, &owner, "owner@new.example").await;
    let (status, body) = follow(&service, &moved).await;
    assert_eq!(
        (status, body["email"].as_str()),
        (200, Some("owner@new.example"))
    );

    // Whoever reads the old mailbox follows the reset link.
    assert_invalid_token(
        confirm_reset(&service, &reset, "the intruder's secret").await,
        "an email change voids every reset link sent before it",
    );
    assert!(
        sign_in(&service, "owner@new.example", "the intruder's secret")
            .await
            .is_err(),
        "the password was not reset"
    );
    sign_in(&service, "owner@new.example", PASSWORD)
        .await
        .expect("the owner's password still works");
}

#[tokio::test]
async fn an_email_change_link_is_void_after_another_email_change() {
    let (service, queue) = in_memory_auth();
    let owner = signed_up(&service, &queue, OWNER).await;

    // A change to an address that turns out not to be the owner's (a typo, a shared mailbox) ...
    let stray = email_change_link(&service, &queue, &owner, "owner@typo.example").await;
    // ... then a change to the right one, followed.
    let right = email_change_link(&service, &queue, &owner, "owner@new.example").await;
    assert_eq!(follow(&service, &right).await.0, 200);

    assert_invalid_token(
        follow(&service, &stray).await,
        "an email change voids every other email change asked for before it",
    );
    assert_eq!(address_of(&service, &owner).await, "owner@new.example");
}

/// A squatter signs up with the address the owner means to move to, and never verifies it: the
/// address is not taken for the owner's move, as it is not for the owner's sign-up. The link
/// goes to that mailbox, following it moves the account there, and the squatter's own link is
/// void.
#[tokio::test]
async fn an_unverified_sign_up_does_not_keep_its_address_from_its_owners_move() {
    let (service, queue) = in_memory_auth();
    let owner = signed_up(&service, &queue, OWNER).await;
    let wanted = "owner@new.example";
    let (status, _) = post(
        &service,
        "/auth/register",
        json!({"email": wanted, "password": "the squatter's secret", "name": "Owner"}),
        None,
    )
    .await;
    assert_eq!(status, 202);
    let squatters = the_mail_to(&queue, wanted).await;

    let link = email_change_link(&service, &queue, &owner, wanted).await;
    assert_eq!(
        follow(&service, &link).await.0,
        200,
        "the owner moves there"
    );
    assert_eq!(address_of(&service, &owner).await, wanted);
    assert_invalid_token(
        follow(&service, &squatters).await,
        "the unverified account is gone, its link with it",
    );
    assert!(
        sign_in(&service, wanted, "the squatter's secret")
            .await
            .is_err(),
        "the squatter's password opens nothing"
    );
    sign_in(&service, wanted, PASSWORD)
        .await
        .expect("the owner signs in at the new address");
}

#[tokio::test]
async fn an_email_change_link_sent_before_a_move_away_and_back_stays_void() {
    let (service, queue) = in_memory_auth();
    let owner = signed_up(&service, &queue, OWNER).await;

    // A stray change link goes to an address a stranger reads (valid a day) ...
    let stray = email_change_link(&service, &queue, &owner, "owner@typo.example").await;
    // ... then the owner moves the account to another address and back, each one followed.
    let away = email_change_link(&service, &queue, &owner, "owner@new.example").await;
    assert_eq!(follow(&service, &away).await.0, 200);
    let back = email_change_link(&service, &queue, &owner, OWNER).await;
    assert_eq!(follow(&service, &back).await.0, 200);

    // The stranger follows the stray link.
    assert_invalid_token(
        follow(&service, &stray).await,
        "a move voids every email change asked for before it, even after a move back",
    );
    assert_eq!(address_of(&service, &owner).await, OWNER);
    sign_in(&service, OWNER, PASSWORD)
        .await
        .expect("the owner still signs in at their address");
}

#[tokio::test]
async fn a_reset_link_sent_before_a_move_away_and_back_stays_void() {
    let (service, queue) = in_memory_auth();
    let owner = signed_up(&service, &queue, OWNER).await;

    let reset = reset_link(&service, &queue, OWNER).await;
    let away = email_change_link(&service, &queue, &owner, "owner@new.example").await;
    assert_eq!(follow(&service, &away).await.0, 200);
    let back = email_change_link(&service, &queue, &owner, OWNER).await;
    assert_eq!(follow(&service, &back).await.0, 200);

    assert_invalid_token(
        confirm_reset(&service, &reset, "the intruder's secret").await,
        "a move voids every reset link sent before it, even after a move back",
    );
    sign_in(&service, OWNER, PASSWORD)
        .await
        .expect("the owner's password still works");
}

// ---- revocation through a cache that was not told -----------------------------------------

/// How soon a token from before a password reset or a role change must be refused, whatever
/// happened to the cached profile (issue 12, item 4).
const REVOKED_WITHIN: Duration = Duration::from_secs(60);

/// The in-memory cache, except that every invalidation fails, as when Redis is slow or its
/// circuit breaker is open at the moment of the write: a cached profile stays until it expires.
#[derive(Default)]
struct InvalidationFails(MemoryCache);

#[async_trait]
impl Cache for InvalidationFails {
    async fn get(&self, key: &str, field: &str) -> Result<Lookup, CacheError> {
        self.0.get(key, field).await
    }

    async fn fill(&self, fill: &Fill<'_>) -> Result<bool, CacheError> {
        self.0.fill(fill).await
    }

    async fn invalidate(&self, _: &str, _: &str, _: Duration) -> Result<(), CacheError> {
        Err(CacheError {
            context: "invalidating an entry",
            source: "the cache did not answer in time".into(),
        })
    }

    async fn lock_or_read(
        &self,
        key: &str,
        field: &str,
        lock: &str,
        ttl: Duration,
    ) -> Result<(Lookup, bool), CacheError> {
        self.0.lock_or_read(key, field, lock, ttl).await
    }

    async fn counter(&self, key: &str) -> Result<u64, CacheError> {
        self.0.counter(key).await
    }

    async fn increment(&self, key: &str) -> Result<u64, CacheError> {
        self.0.increment(key).await
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<(u64, Duration), CacheError> {
        self.0.hit(key, window).await
    }
    async fn give_back(&self, key: &str) -> Result<(), CacheError> {
        self.0.give_back(key).await
    }
}

/// auth-api over in-memory adapters whose cache never drops an entry when told to (time is
/// Tokio's, so a paused test moves it); its queue and its accounts.
fn auth_over_a_cache_that_misses_invalidations()
-> (AuthService, Arc<MemoryQueues>, Arc<dyn UserStore>) {
    let queue = MemoryQueues::new();
    let mut adapters = ApiAdapters::in_memory(queue.clone(), Arc::new(MemoryJobs::default()));
    adapters.cache = CacheAside::new(
        Arc::new(InvalidationFails::default()),
        CacheKeys::new("oes"),
        CacheSettings::default(),
    );
    let users = adapters.users.clone();
    let service = oes_tests::auth_over(adapters, Arc::new(SystemClock));
    (service, queue, users)
}

/// `GET /auth/me` with `bearer`.
async fn me(service: &AuthService, bearer: &str) -> (u16, Value) {
    call(service, "GET", "/auth/me", None, Some(bearer)).await
}

#[tokio::test(start_paused = true)]
async fn a_token_from_before_a_password_reset_is_refused_within_a_minute_though_the_cache_missed_it()
 {
    let (service, queue, _) = auth_over_a_cache_that_misses_invalidations();
    let stolen = signed_up(&service, &queue, OWNER).await;
    assert_eq!(me(&service, &stolen).await.0, 200, "the profile is cached");

    // The owner resets the password; dropping the cached profile fails.
    let reset = reset_link(&service, &queue, OWNER).await;
    assert_eq!(
        confirm_reset(&service, &reset, "the owner's new secret")
            .await
            .0,
        200
    );
    let owner = sign_in(&service, OWNER, "the owner's new secret")
        .await
        .expect("signed in");
    let (status, body) = me(&service, &owner).await;
    assert_eq!(
        status, 200,
        "a token from after the reset works at once: {body}"
    );

    tokio::time::advance(REVOKED_WITHIN).await;
    let (status, body) = me(&service, &stolen).await;
    assert_eq!(
        status, 401,
        "a token from before the reset is refused {REVOKED_WITHIN:?} after it: {body}"
    );
    assert_eq!(me(&service, &owner).await.0, 200);
}

#[tokio::test(start_paused = true)]
async fn a_token_from_before_a_role_change_is_refused_within_a_minute_though_the_cache_missed_it() {
    let (service, queue, users) = auth_over_a_cache_that_misses_invalidations();
    let before = signed_up(&service, &queue, OWNER).await;
    let (status, profile) = me(&service, &before).await;
    assert_eq!((status, profile["role"].as_str()), (200, Some("student")));

    // An operator demotes or promotes the account: a write to the store the cache never hears
    // of (`oesctl users set-role` from outside the VPC).
    let account = users
        .find_by_email(&Email::parse(OWNER).expect("valid"))
        .await
        .expect("read")
        .expect("the account");
    users
        .update(
            &account.id,
            UserUpdate::Role(Role::Instructor),
            SystemClock.now(),
        )
        .await
        .expect("role changed");
    let after = sign_in(&service, OWNER, PASSWORD).await.expect("signed in");
    let (status, profile) = me(&service, &after).await;
    assert_eq!(
        (status, profile["role"].as_str()),
        (200, Some("instructor")),
        "a token from after the change works at once, with the new role: {profile}"
    );

    tokio::time::advance(REVOKED_WITHIN).await;
    let (status, body) = me(&service, &before).await;
    assert_eq!(
        status, 401,
        "a token from before the change is refused {REVOKED_WITHIN:?} after it: {body}"
    );
    assert_eq!(me(&service, &after).await.0, 200);
}

// ---- two reset links at once, on DynamoDB --------------------------------------------------

/// `DynamoUsers`, with the writes of a race held until both racers arrived (so each read the
/// account before either wrote), then made one after the other.
struct RacingUsers {
    inner: DynamoUsers,
    racing: AtomicBool,
    arrived: AtomicUsize,
    start: tokio::sync::Barrier,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl RacingUsers {
    fn new(inner: DynamoUsers) -> Self {
        Self {
            inner,
            racing: AtomicBool::new(false),
            arrived: AtomicUsize::new(0),
            start: tokio::sync::Barrier::new(2),
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }

    /// How many writes arrived at the start line.
    fn arrived(&self) -> usize {
        self.arrived.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl UserStore for RacingUsers {
    async fn create(&self, user: &User) -> Result<(), StoreError<UserConflict>> {
        self.inner.create(user).await
    }

    async fn replace_unverified(
        &self,
        pending: &User,
        user: &User,
    ) -> Result<(), StoreError<UserConflict>> {
        self.inner.replace_unverified(pending, user).await
    }

    async fn delete(&self, user: &User) -> Result<(), StoreError<UserConflict>> {
        self.inner.delete(user).await
    }

    async fn get(&self, id: &UserId) -> Result<Option<User>, StoreUnavailable> {
        self.inner.get(id).await
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreUnavailable> {
        self.inner.find_by_email(email).await
    }

    async fn update(
        &self,
        id: &UserId,
        update: UserUpdate,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>> {
        if self.racing.load(Ordering::SeqCst) {
            self.arrived.fetch_add(1, Ordering::SeqCst);
            // A racer that never arrives fails the test below instead of hanging it.
            let _ = tokio::time::timeout(Duration::from_secs(10), self.start.wait()).await;
        }
        let _turn = self.one_at_a_time.lock().await;
        self.inner.update(id, update, now).await
    }

    async fn change_email(
        &self,
        id: &UserId,
        new_email: &Email,
        linked: &LinkedState,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>> {
        self.inner.change_email(id, new_email, linked, now).await
    }
}

#[tokio::test]
async fn two_reset_links_confirmed_at_once_reset_the_password_once() {
    let env = TestEnv::spawn().await;
    let queue = MemoryQueues::new();
    let mut adapters = ApiAdapters::in_memory(queue.clone(), Arc::new(MemoryJobs::default()));
    let dynamodb = env.clients.dynamodb();
    let users = Arc::new(RacingUsers::new(DynamoUsers::new(
        dynamodb.clone(),
        env.provisioned.table.clone(),
    )));
    adapters.users = users.clone();
    let tokens = Arc::new(DynamoTokens::new(dynamodb, env.provisioned.table.clone()));
    adapters.tokens = tokens.clone();
    let service = oes_tests::auth_over(adapters, Arc::new(SystemClock));
    signed_up(&service, &queue, OWNER).await;

    // Two reset links issued in the same state: a new one voids the last, so the second is one
    // stored before links replaced each other (kept by the store across that change).
    let first = reset_link(&service, &queue, OWNER).await;
    let account = users
        .find_by_email(&Email::parse(OWNER).expect("valid"))
        .await
        .expect("read")
        .expect("the account");
    let token = OneTimeToken::generate();
    tokens
        .put(&StoredToken {
            hash: token.hash(),
            purpose: TokenPurpose::PasswordReset,
            user_id: account.id.clone(),
            new_email: None,
            token_version: account.token_version,
            account_email: Some(account.email.clone()),
            email_version: account.email_version,
            expires_at: SystemClock.now() + 3600,
        })
        .await
        .expect("stored");
    let second = Mail {
        to: OWNER.to_owned(),
        kind: "password_reset",
        token: token.expose().to_owned(),
    };

    users.racing.store(true, Ordering::SeqCst);
    let (a, b) = tokio::join!(
        confirm_reset(&service, &first, "the first new secret"),
        confirm_reset(&service, &second, "the second new secret"),
    );
    users.racing.store(false, Ordering::SeqCst);
    assert_eq!(
        users.arrived(),
        2,
        "both confirms read the account and went on to write ({a:?}, {b:?})"
    );

    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert_eq!(
        statuses,
        [200, 400],
        "one link resets, the other is void: {a:?} {b:?}"
    );
    let (winner, loser) = if a.0 == 200 {
        ("the first new secret", b)
    } else {
        ("the second new secret", a)
    };
    assert_invalid_token(loser, "the losing link");
    sign_in(&service, OWNER, winner)
        .await
        .expect("the password is the one the successful reset set");
    for other in ["the first new secret", "the second new secret", PASSWORD] {
        if other != winner {
            assert!(
                sign_in(&service, OWNER, other).await.is_err(),
                "{other:?} does not sign in"
            );
        }
    }
}

// ---- a link whose use met an outage ---------------------------------------------------------

/// `MemoryUsers` whose writes fail while it is down (the store unreachable, or throttled past
/// the SDK's retries), as a link's use meets them after the link was taken; or, while its
/// answers are `lost`, whose changes to an account land and then answer as a store that failed
/// (a timeout after DynamoDB applied the write, and no answer from any retry).
#[derive(Default)]
struct FlakyUsers {
    inner: oes_adapters::memory::MemoryUsers,
    down: AtomicBool,
    lost: AtomicBool,
}

impl FlakyUsers {
    fn unless_down(&self) -> Result<(), StoreError<UserConflict>> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::unavailable(
                "writing an account",
                "the test took the store down",
            ));
        }
        Ok(())
    }

    /// `written`, or the failure its caller meets when the answer is lost.
    fn answer(
        &self,
        written: Result<User, StoreError<UserConflict>>,
    ) -> Result<User, StoreError<UserConflict>> {
        if self.lost.load(Ordering::SeqCst) && written.is_ok() {
            return Err(StoreError::unavailable(
                "writing an account",
                "the test lost the answer to a write that landed",
            ));
        }
        written
    }
}

#[async_trait]
impl UserStore for FlakyUsers {
    async fn create(&self, user: &User) -> Result<(), StoreError<UserConflict>> {
        self.unless_down()?;
        self.inner.create(user).await
    }

    async fn replace_unverified(
        &self,
        pending: &User,
        user: &User,
    ) -> Result<(), StoreError<UserConflict>> {
        self.unless_down()?;
        self.inner.replace_unverified(pending, user).await
    }

    async fn delete(&self, user: &User) -> Result<(), StoreError<UserConflict>> {
        self.unless_down()?;
        self.inner.delete(user).await
    }

    async fn get(&self, id: &UserId) -> Result<Option<User>, StoreUnavailable> {
        self.inner.get(id).await
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreUnavailable> {
        self.inner.find_by_email(email).await
    }

    async fn update(
        &self,
        id: &UserId,
        update: UserUpdate,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>> {
        self.unless_down()?;
        self.answer(self.inner.update(id, update, now).await)
    }

    async fn change_email(
        &self,
        id: &UserId,
        new_email: &Email,
        linked: &LinkedState,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>> {
        self.unless_down()?;
        self.answer(self.inner.change_email(id, new_email, linked, now).await)
    }
}

/// auth-api over [`FlakyUsers`], with the queue it mails to.
fn over_flaky_users() -> (AuthService, Arc<FlakyUsers>, Arc<MemoryQueues>) {
    let queue = MemoryQueues::new();
    let mut adapters = ApiAdapters::in_memory(queue.clone(), Arc::new(MemoryJobs::default()));
    let users = Arc::new(FlakyUsers::default());
    adapters.users = users.clone();
    (
        oes_tests::auth_over(adapters, Arc::new(SystemClock)),
        users,
        queue,
    )
}

/// A link's use whose write landed though its answer was lost (503) still drops the cached
/// profile, as a rename does: the account changed, and a retry of the link finds it void, so it
/// never drops it. Before, `/auth/me` showed the old address for as long as it stayed cached,
/// and exam-api, which reads the same profile, mailed a result to the address just left.
#[tokio::test]
async fn a_link_whose_answer_was_lost_still_drops_the_cached_profile() {
    const NEW: &str = "owner@moved.example";
    let (service, users, queue) = over_flaky_users();
    let signup = json!({"email": OWNER, "password": PASSWORD, "name": "Owner"});
    assert_eq!(post(&service, "/auth/register", signup, None).await.0, 202);
    let verification = the_mail_to(&queue, OWNER).await;
    assert_eq!(follow(&service, &verification).await.0, 200);
    let bearer = sign_in(&service, OWNER, PASSWORD).await.expect("signed in");
    let (_, cached) = me(&service, &bearer).await;
    assert_eq!(cached["email"], OWNER, "{cached}");

    let moving = email_change_link(&service, &queue, &bearer, NEW).await;
    users.lost.store(true, Ordering::SeqCst);
    assert_eq!(
        follow(&service, &moving).await.0,
        503,
        "the answer was lost"
    );
    users.lost.store(false, Ordering::SeqCst);
    let (status, after) = me(&service, &bearer).await;
    assert_eq!(
        (status, after["email"].as_str()),
        (200, Some(NEW)),
        "the address changed: {after}"
    );
}

/// A link is single-use, but a use the store could not carry out (a 503, which asks the user to
/// try again) has used nothing: the same link works when the user tries again. Taken and then
/// lost, the user would have to ask for a new link (or, for a verification link sent days ago
/// by a sign-up, would hold none) — for a failure of ours.
#[tokio::test]
async fn a_link_whose_use_met_an_outage_works_when_the_user_tries_again() {
    const NEW: &str = "owner@new.example";
    let (service, users, queue) = over_flaky_users();

    let signup = json!({"email": OWNER, "password": PASSWORD, "name": "Owner"});
    assert_eq!(post(&service, "/auth/register", signup, None).await.0, 202);
    let verification = the_mail_to(&queue, OWNER).await;
    users.down.store(true, Ordering::SeqCst);
    assert_eq!(
        follow(&service, &verification).await.0,
        503,
        "the store is down"
    );
    users.down.store(false, Ordering::SeqCst);
    let (status, body) = follow(&service, &verification).await;
    assert_eq!(status, 200, "the verification link, again: {body}");

    let reset = reset_link(&service, &queue, OWNER).await;
    users.down.store(true, Ordering::SeqCst);
    assert_eq!(confirm_reset(&service, &reset, PASSWORD).await.0, 503);
    users.down.store(false, Ordering::SeqCst);
    let (status, body) = confirm_reset(&service, &reset, PASSWORD).await;
    assert_eq!(status, 200, "the reset link, again: {body}");

    let bearer = sign_in(&service, OWNER, PASSWORD).await.expect("signed in");
    let moving = email_change_link(&service, &queue, &bearer, NEW).await;
    users.down.store(true, Ordering::SeqCst);
    assert_eq!(follow(&service, &moving).await.0, 503);
    users.down.store(false, Ordering::SeqCst);
    let (status, body) = follow(&service, &moving).await;
    assert_eq!(
        (status, body["email"].as_str()),
        (200, Some(NEW)),
        "the email-change link, again: {body}"
    );
}
