//! Attacks through email addresses (issue 12):
//!
//! - look-alikes (item 9): an address that renders like another one must not make a second
//!   account, and an address SES would refuse for good must be refused at the door with a clear
//!   400 — not accepted, then dead-lettered. oes accepts ASCII addresses only (internationalised
//!   domains in their `xn--` form); it does not normalise Unicode;
//! - squatting (item 7): signing up with someone else's address first neither blocks its owner
//!   nor gives the squatter the account when the owner follows a link;
//! - mail bombing (items 6 and 8): sign-ups to `+tag` variants of one mailbox count against its
//!   email budget; requests a client's own limit refused spend no one else's budget; and however
//!   many clients ask for reset links to one address, its owner always holds a working one,
//!   while the address gets a bounded number of emails;
//! - enumeration: a sign-up is answered alike whether the address is free, held by an unverified
//!   account or by a verified one (whose owner is mailed a notice instead), takes as long, and
//!   races with other sign-ups for the address without a conflict to tell, even one that loses
//!   every race; every request that names an address (sign-up, verification resend, reset
//!   request, email change) answers at the same moment whatever the address.
//!
//! Through auth-api's handler over in-memory adapters; client addresses are API Gateway's
//! `sourceIp`, set per request.

use super::{assert_invalid_token, bot};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_api::AuthService;
use auth_api::limits::{EMAIL_PER_ADDRESS, EMAIL_PER_IP, RESET_PER_ACCOUNT};
use auth_api::pacing::ANSWER_FLOOR;
use oes_adapters::dynamo::DynamoTokens;
use oes_adapters::memory::{MemoryJobs, MemoryQueues};
use oes_domain::clock::{Clock, SystemClock};
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::ports::{
    LinkedState, Replaced, StoreError, StoreUnavailable, StoredToken, TokenPurpose, TokenStore,
    UserConflict, UserStore, UserUpdate,
};
use oes_domain::security::{JwtKeys, Password, PasswordHasher, TokenHash};
use oes_domain::user::{Email, User, UserId};
use oes_runtime::wiring::ApiAdapters;
use oes_tests::{call, in_memory_auth, read, request_from};
use serde_json::{Value, json};

async fn register(service: &auth_api::AuthService, email: &str) -> (u16, Value) {
    let payload = json!({"email": email, "password": "correct horse", "name": "Ada"}).to_string();
    call(service, "POST", "/auth/register", Some(&payload), None).await
}

#[tokio::test]
async fn a_look_alike_of_a_registered_address_is_refused_not_made_a_second_account() {
    let (service, _) = in_memory_auth();
    assert_eq!(register(&service, "ada@example.com").await.0, 202);
    // A Cyrillic "а" (U+0430) in the local part, then in the domain.
    for look_alike in ["\u{430}da@example.com", "ada@ex\u{430}mple.com"] {
        let (status, body) = register(&service, look_alike).await;
        assert_eq!(status, 400, "{look_alike}: {body}");
        assert_eq!(body["error"]["code"], "validation_error", "{body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("ASCII"), "the message says why: {message}");
    }
}

#[tokio::test]
async fn an_internationalised_domain_is_accepted_only_in_its_ascii_form() {
    let (service, _) = in_memory_auth();
    let (status, body) = register(&service, "ada@b\u{fc}cher.example").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = register(&service, "ada@xn--bcher-kva.example").await;
    assert_eq!(
        status, 202,
        "the punycode form is an ordinary ASCII domain: {body}"
    );
}

// ---- squatting and mail bombing ------------------------------------------------------------

const VICTIM: &str = "victim@example.com";
const OWNERS_PASSWORD: &str = "the owner's secret";
const SQUATTERS_PASSWORD: &str = "the squatter's secret";
/// Where the owner asks from.
const HOME: [u8; 4] = [198, 51, 100, 7];
/// The attacker's own address.
const ATTACKER: [u8; 4] = [203, 0, 113, 66];

/// One `POST` of `body` to `path` from the client address `ip`.
async fn post_from(service: &AuthService, ip: [u8; 4], path: &str, body: Value) -> (u16, Value) {
    let request = request_from(ip, "POST", path, Some(&body.to_string()), None);
    let response = auth_api::handle(service, request)
        .await
        .expect("no invocation error");
    read(&response)
}

async fn sign_up_from(
    service: &AuthService,
    ip: [u8; 4],
    email: &str,
    password: &str,
) -> (u16, Value) {
    let body = json!({"email": email, "password": password, "name": "Someone"});
    post_from(service, ip, "/auth/register", body).await
}

async fn sign_in(service: &AuthService, email: &str, password: &str) -> u16 {
    let body = json!({"email": email, "password": password});
    post_from(service, HOME, "/auth/login", body).await.0
}

/// An email auth-api queued: to whom, which kind, and the token in its link (none in the notice
/// of a sign-up with a verified address).
#[derive(Debug)]
struct Mail {
    to: String,
    kind: &'static str,
    token: Option<String>,
}

/// The emails waiting on the queue, oldest first (taking them off it).
async fn mailed(queue: &MemoryQueues) -> Vec<Mail> {
    oes_tests::take_waiting(queue, 1000)
        .await
        .into_iter()
        .map(|message| {
            let job = EmailJob::decode(&message.body).expect("a valid job");
            let kind = job.template.kind();
            let token = match job.template {
                EmailTemplate::Verification { token, .. }
                | EmailTemplate::PasswordReset { token, .. }
                | EmailTemplate::EmailChange { token, .. } => Some(token.expose().to_owned()),
                EmailTemplate::AccountExists { .. } => None,
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

/// The one email waiting, which must be a verification email to `to`.
async fn the_verification_mail_to(queue: &MemoryQueues, to: &str) -> Mail {
    let mut mails = mailed(queue).await;
    assert_eq!(mails.len(), 1, "one email: {mails:?}");
    let mail = mails.remove(0);
    assert_eq!(
        (mail.to.as_str(), mail.kind),
        (to, "verification"),
        "{mail:?}"
    );
    mail
}

async fn follow(service: &AuthService, link: &Mail) -> (u16, Value) {
    let body = json!({"token": link.token});
    post_from(service, HOME, "/auth/verify-email", body).await
}

async fn confirm_reset(service: &AuthService, link: &Mail, new_password: &str) -> (u16, Value) {
    let body = json!({"token": link.token, "new_password": new_password});
    post_from(service, HOME, "/auth/password-reset/confirm", body).await
}

#[tokio::test]
async fn signing_up_first_with_someone_elses_address_neither_blocks_the_owner_nor_owns_the_account()
{
    let (service, queue) = in_memory_auth();
    // The squatter signs up with the victim's address and a password of theirs; the
    // verification email goes to the victim, who does not follow it yet.
    let (status, body) = sign_up_from(&service, ATTACKER, VICTIM, SQUATTERS_PASSWORD).await;
    assert_eq!(status, 202, "{body}");
    let squatters_link = the_verification_mail_to(&queue, VICTIM).await;

    // The owner signs up.
    let (status, body) = sign_up_from(&service, HOME, VICTIM, OWNERS_PASSWORD).await;
    assert_eq!(
        status, 202,
        "an account nobody verified does not keep the owner from signing up: {body}"
    );
    let owners_link = the_verification_mail_to(&queue, VICTIM).await;

    // In the mailbox, the squatter's email is the first the owner sees.
    assert_invalid_token(
        follow(&service, &squatters_link).await,
        "the link of the replaced sign-up is void",
    );
    assert_eq!(sign_in(&service, VICTIM, SQUATTERS_PASSWORD).await, 401);
    let (status, body) = follow(&service, &owners_link).await;
    assert_eq!(status, 200, "{body}");
    // Signed up twice, the address kept neither password: its owner chooses one.
    choose_a_password(&service, &queue, OWNERS_PASSWORD).await;
    assert_eq!(sign_in(&service, VICTIM, OWNERS_PASSWORD).await, 200);
    assert_eq!(
        sign_in(&service, VICTIM, SQUATTERS_PASSWORD).await,
        401,
        "the squatter's password opens nothing"
    );

    // A verified address stays its owner's: a sign-up with it changes nothing and mails the
    // owner a notice instead of a link.
    let (status, body) = sign_up_from(&service, ATTACKER, VICTIM, SQUATTERS_PASSWORD).await;
    assert_eq!(status, 202, "{body}");
    let mails = mailed(&queue).await;
    let notices: Vec<_> = mails.iter().map(|m| (m.to.as_str(), m.kind)).collect();
    assert_eq!(notices, [(VICTIM, "account_exists")]);
    assert_eq!(sign_in(&service, VICTIM, OWNERS_PASSWORD).await, 200);
    assert_eq!(sign_in(&service, VICTIM, SQUATTERS_PASSWORD).await, 401);
}

/// What the owner of an address signed up twice before it was verified does once they have
/// followed its link, as its email says: asks for a reset link and chooses `password` with it.
async fn choose_a_password(service: &AuthService, queue: &MemoryQueues, password: &str) {
    let body = json!({"email": VICTIM});
    let (status, answer) = post_from(service, HOME, "/auth/password-reset/request", body).await;
    assert_eq!(status, 202, "{answer}");
    let mut mails = mailed(queue).await;
    assert_eq!(mails.len(), 1, "a reset link: {mails:?}");
    let link = mails.remove(0);
    assert_eq!((link.to.as_str(), link.kind), (VICTIM, "password_reset"));
    let (status, answer) = confirm_reset(service, &link, password).await;
    assert_eq!(status, 200, "{answer}");
}

/// The owner signs up first; before they follow their link, someone else signs up with their
/// address. The last sign-up replaces the one before (so that a squatter who came first does
/// not keep the owner out), and the link that works, in the owner's mailbox, was the other's:
/// following it activated an account with the password the other chose — a session, for them,
/// on an account at the owner's address. Now an address signed up again before it is verified
/// keeps neither sign-up's password nor name: the link activates it, the email says to choose a
/// password with a reset link, and only the mailbox gets one.
#[tokio::test]
async fn signing_up_after_the_owner_before_they_verify_does_not_own_the_account() {
    let (service, queue) = in_memory_auth();
    let (status, body) = sign_up_from(&service, HOME, VICTIM, OWNERS_PASSWORD).await;
    assert_eq!(status, 202, "{body}");
    let owners_link = the_verification_mail_to(&queue, VICTIM).await;
    let named = json!({
        "email": VICTIM,
        "password": SQUATTERS_PASSWORD,
        "name": "Your account is locked: call +1 555 0100",
    });
    let (status, body) = post_from(&service, ATTACKER, "/auth/register", named).await;
    assert_eq!(status, 202, "{body}");
    let latest = the_verification_mail_to(&queue, VICTIM).await;

    assert_invalid_token(
        follow(&service, &owners_link).await,
        "the link of the replaced sign-up is void",
    );
    let (status, body) = follow(&service, &latest).await;
    assert_eq!(status, 200, "the owner follows the link that works: {body}");
    assert_eq!(
        sign_in(&service, VICTIM, SQUATTERS_PASSWORD).await,
        401,
        "the later sign-up's password opens nothing"
    );
    assert_eq!(sign_in(&service, VICTIM, OWNERS_PASSWORD).await, 401);
    assert!(
        !body.to_string().contains("locked"),
        "the later sign-up's name is not the account's: {body}"
    );

    choose_a_password(&service, &queue, "the owner's new secret").await;
    assert_eq!(
        sign_in(&service, VICTIM, "the owner's new secret").await,
        200
    );
    assert_eq!(sign_in(&service, VICTIM, SQUATTERS_PASSWORD).await, 401);
}

/// The mailbox's email budget is spent only by emails it gets: requests that mail nothing (a
/// resend or an email change for an address without an account) spend none of it. Before,
/// every such request counted, so five resends an hour, which mail nothing, kept the owner from
/// signing up (429), silently, for as long as someone kept asking.
#[tokio::test]
async fn requests_that_mail_nothing_do_not_keep_the_owner_from_signing_up() {
    let (service, queue) = in_memory_auth();
    for _ in 0..EMAIL_PER_ADDRESS.max * 2 {
        let resend = json!({"email": VICTIM});
        let (status, body) =
            post_from(&service, ATTACKER, "/auth/resend-verification", resend).await;
        assert_eq!(status, 202, "{body}");
    }
    assert!(
        mailed(&queue).await.is_empty(),
        "no account: nothing mailed"
    );
    assert_eq!(
        sign_up_from(&service, HOME, VICTIM, OWNERS_PASSWORD)
            .await
            .0,
        202
    );
    let mails = mailed(&queue).await;
    assert_eq!(
        mails
            .iter()
            .map(|m| (m.to.as_str(), m.kind))
            .collect::<Vec<_>>(),
        [(VICTIM, "verification")],
        "the owner's sign-up was mailed its link"
    );
}

#[tokio::test]
async fn signing_up_tagged_variants_of_one_mailbox_does_not_flood_it() {
    let (service, queue) = in_memory_auth();
    let mut statuses = Vec::new();
    for n in 0..20 {
        // One client, well within its sign-up limit; `+n` and the case vary the address, not
        // the mailbox it reaches.
        let address = if n % 2 == 0 {
            format!("victim+{n}@example.com")
        } else {
            format!("Victim+{n}@Example.COM")
        };
        statuses.push(
            sign_up_from(&service, ATTACKER, &address, SQUATTERS_PASSWORD)
                .await
                .0,
        );
    }
    let delivered = mailed(&queue).await.len();
    let budget = usize::try_from(EMAIL_PER_ADDRESS.max).expect("small");
    assert!(
        delivered <= budget,
        "{delivered} verification emails reached one mailbox within an hour; its budget is \
         {budget}: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 202),
        "sign-ups past the mailbox's budget are answered as any other (and send nothing): \
         {statuses:?}"
    );
}

/// Each tagged variant an attacker signs up is an account of its own, with a reset budget of
/// its own: reset links for all of them would all reach one mailbox, far past its budget. An
/// account not verified yet is sent no reset link (it has no password its owner could have
/// lost: following the verification link, or signing up again, is the way in).
#[tokio::test]
async fn asking_for_reset_links_to_tagged_variants_of_one_mailbox_does_not_flood_it() {
    let (service, queue) = in_memory_auth();
    let budget = usize::try_from(EMAIL_PER_ADDRESS.max).expect("small");
    let variants: Vec<String> = (0..budget)
        .map(|n| format!("victim+{n}@example.com"))
        .collect();
    for address in &variants {
        let (status, body) = sign_up_from(&service, ATTACKER, address, SQUATTERS_PASSWORD).await;
        assert_eq!(status, 202, "{body}");
    }
    let mut n = 0;
    for address in &variants {
        for _ in 0..RESET_PER_ACCOUNT.max {
            n += 1;
            let body = json!({ "email": address });
            let (status, _) =
                post_from(&service, bot(n), "/auth/password-reset/request", body).await;
            assert_eq!(status, 202);
        }
    }
    let mails = mailed(&queue).await;
    let kinds: Vec<&str> = mails.iter().map(|mail| mail.kind).collect();
    assert!(
        mails.len() <= budget,
        "{} emails reached one mailbox within an hour; its budget is {budget}: {kinds:?}",
        mails.len()
    );
}

#[tokio::test]
async fn requests_refused_by_the_requesters_own_limit_do_not_spend_the_victims_budget() {
    let (service, queue) = in_memory_auth();
    let (status, body) = sign_up_from(&service, HOME, VICTIM, OWNERS_PASSWORD).await;
    assert_eq!(status, 202, "{body}");
    the_verification_mail_to(&queue, VICTIM).await;

    // The attacker spends its own client budget on other addresses ...
    for n in 0..EMAIL_PER_IP.max {
        let body = json!({"email": format!("someone{n}@example.org")});
        let (status, _) = post_from(&service, ATTACKER, "/auth/resend-verification", body).await;
        assert_eq!(status, 202);
    }
    // ... then asks again and again for emails to the victim, each refused by its own limit.
    for _ in 0..20 {
        let body = json!({"email": VICTIM});
        let (status, _) = post_from(&service, ATTACKER, "/auth/resend-verification", body).await;
        assert_eq!(status, 429);
    }

    // The victim lost the verification email and asks for it again.
    let body = json!({"email": VICTIM});
    let (status, body) = post_from(&service, HOME, "/auth/resend-verification", body).await;
    assert_eq!(
        status, 202,
        "20 requests the attacker's own limit refused spent nothing of the victim's: {body}"
    );
    let link = the_verification_mail_to(&queue, VICTIM).await;
    assert_eq!(follow(&service, &link).await.0, 200);
}

#[tokio::test]
async fn spending_an_addresss_email_budget_from_many_clients_leaves_its_owner_a_working_reset_link()
{
    let (service, queue) = in_memory_auth();
    let (status, body) = sign_up_from(&service, HOME, VICTIM, OWNERS_PASSWORD).await;
    assert_eq!(status, 202, "{body}");
    let link = the_verification_mail_to(&queue, VICTIM).await;
    assert_eq!(follow(&service, &link).await.0, 200);

    // A botnet asks for reset links and verification emails to the address, each client
    // within its own limit.
    for n in 0..50 {
        for path in ["/auth/password-reset/request", "/auth/resend-verification"] {
            post_from(&service, bot(n), path, json!({"email": VICTIM})).await;
        }
    }
    // The owner, wondering about all these emails, asks for a reset link.
    let (status, body) = post_from(
        &service,
        HOME,
        "/auth/password-reset/request",
        json!({"email": VICTIM}),
    )
    .await;
    assert_eq!(
        status, 202,
        "the owner's request is answered as any other, whoever spent the budget: {body}"
    );

    let mails = mailed(&queue).await;
    let bound = usize::try_from(RESET_PER_ACCOUNT.max + EMAIL_PER_ADDRESS.max).expect("small");
    assert!(
        mails.len() <= bound,
        "101 requests from 51 clients mail the address at most {bound} times an hour: {}",
        mails.len()
    );
    let resets: Vec<&Mail> = mails
        .iter()
        .filter(|m| m.kind == "password_reset")
        .collect();
    let (newest, older) = resets
        .split_last()
        .expect("a reset link reached the owner's mailbox");
    for link in older {
        assert_invalid_token(
            confirm_reset(&service, link, "the attacker's guess").await,
            "one reset link works at a time: a newer one voids it",
        );
    }
    let (status, body) = confirm_reset(&service, newest, "the owner's new secret").await;
    assert_eq!(
        status, 200,
        "the newest reset link in the mailbox works: {body}"
    );
    assert_eq!(
        sign_in(&service, VICTIM, "the owner's new secret").await,
        200
    );
}

// ---- account enumeration -------------------------------------------------------------------

/// An address with an account nobody has verified yet.
const PENDING: &str = "pending@example.org";
/// An address without an account.
const FRESH: &str = "fresh@example.net";

#[tokio::test]
async fn learning_who_has_an_account_from_sign_up() {
    let (service, queue) = in_memory_auth();
    // The victim has a verified account; someone signed up with PENDING and has not verified it.
    sign_up_from(&service, HOME, VICTIM, OWNERS_PASSWORD).await;
    let link = the_verification_mail_to(&queue, VICTIM).await;
    assert_eq!(follow(&service, &link).await.0, 200);
    sign_up_from(&service, HOME, PENDING, OWNERS_PASSWORD).await;
    the_verification_mail_to(&queue, PENDING).await;

    // The attacker signs up with each address and compares the answers.
    let mut answers = Vec::new();
    for address in [VICTIM, PENDING, FRESH] {
        answers.push(sign_up_from(&service, ATTACKER, address, SQUATTERS_PASSWORD).await);
    }
    let (status, body) = &answers[2];
    assert_eq!(
        answers[0], answers[2],
        "an address with a verified account is answered as one without"
    );
    assert_eq!(
        answers[1], answers[2],
        "an address with an unverified account is answered as one without"
    );
    assert_eq!(*status, 202, "{body}");
    assert!(body.get("user_id").is_none(), "no account id: {body}");

    // Each mailbox got one email: the verified one a notice, the others a verification link.
    let mut mails = mailed(&queue).await;
    mails.sort_by(|a, b| a.to.cmp(&b.to));
    let got: Vec<(&str, &str)> = mails.iter().map(|m| (m.to.as_str(), m.kind)).collect();
    assert_eq!(
        got,
        [
            (FRESH, "verification"),
            (PENDING, "verification"),
            (VICTIM, "account_exists"),
        ]
    );
    assert_eq!(
        sign_in(&service, VICTIM, OWNERS_PASSWORD).await,
        200,
        "the account is unchanged"
    );
    // Nor does signing in with the password the sign-ups gave: it made FRESH and PENDING
    // pending accounts with it and left the verified VICTIM as it was, and all answer alike.
    let mut sign_ins = Vec::new();
    for address in [VICTIM, PENDING, FRESH] {
        let attempt = json!({"email": address, "password": SQUATTERS_PASSWORD});
        sign_ins.push(post_from(&service, ATTACKER, "/auth/login", attempt).await);
    }
    assert_eq!(sign_ins[0].0, 401, "{:?}", sign_ins[0]);
    assert_eq!(
        (&sign_ins[0], &sign_ins[1]),
        (&sign_ins[2], &sign_ins[2]),
        "a sign-in with the sign-up's password tells whether the address had a verified account"
    );

    // Past the mailbox's email budget, the answer is the same too (and nothing is sent).
    let mut past_budget = Vec::new();
    for address in [VICTIM, FRESH] {
        let mut answer = (202, Value::Null);
        for _ in 0..EMAIL_PER_ADDRESS.max {
            answer = sign_up_from(&service, ATTACKER, address, SQUATTERS_PASSWORD).await;
            if answer.0 != 202 {
                break;
            }
        }
        past_budget.push(answer);
    }
    assert_eq!(past_budget[0].0, 202, "{:?}", past_budget[0]);
    assert_eq!(
        past_budget[0], past_budget[1],
        "a sign-up past the budget is answered alike"
    );
    let mails = mailed(&queue).await;
    let budget = usize::try_from(EMAIL_PER_ADDRESS.max).expect("small");
    for address in [VICTIM, FRESH] {
        let to_it = mails.iter().filter(|m| m.to == address).count();
        assert!(to_it < budget, "{address} got {to_it} more emails");
    }
}

#[tokio::test]
async fn timing_sign_up_to_learn_who_has_an_account() {
    // A hasher costly enough that one hash outweighs the rest of a sign-up many times over.
    let hasher = PasswordHasher::with_params(8 * 1024, 2, 1).expect("argon2 params");
    let queue = MemoryQueues::new();
    // Without the answer floor (300 ms, far above one hash here), which every sign-up meets
    // whether or not it hashed: with it this bound held whatever the sign-up did.
    let service = auth_api::wire(
        ApiAdapters::in_memory(queue.clone(), Arc::new(MemoryJobs::default())),
        JwtKeys::new(&oes_tests::jwt_settings()),
        hasher.clone(),
        Arc::new(SystemClock),
    )
    .with_answer_floor(Duration::ZERO);
    sign_up_from(&service, HOME, VICTIM, OWNERS_PASSWORD).await;
    let link = the_verification_mail_to(&queue, VICTIM).await;
    assert_eq!(follow(&service, &link).await.0, 200);

    // What one hash takes here, at best.
    let password = Password::parse(SQUATTERS_PASSWORD.to_owned(), "password").expect("valid");
    let one_hash = (0..3)
        .map(|_| {
            let started = Instant::now();
            hasher.hash(&password).expect("hashed");
            started.elapsed()
        })
        .min()
        .expect("measured");

    // A sign-up with the address of a verified account takes no less: it hashes the password
    // as a new account's sign-up does (a lower bound, which a busy machine cannot break).
    let started = Instant::now();
    sign_up_from(&service, ATTACKER, VICTIM, SQUATTERS_PASSWORD).await;
    let taken = started.elapsed();
    assert!(
        taken >= one_hash / 2,
        "a sign-up for a verified address took {taken:?}, one password hash {one_hash:?}"
    );
}

/// The in-memory accounts, but every call first lets the other tasks run, then takes its
/// latency: two requests handled at once interleave their reads and writes as two Lambda
/// invocations on DynamoDB can, and with a latency each call takes the time a DynamoDB call does.
struct Latent<T: ?Sized>(Arc<T>, Duration);

impl<T: ?Sized> Latent<T> {
    async fn call(&self) {
        tokio::task::yield_now().await;
        if !self.1.is_zero() {
            tokio::time::sleep(self.1).await;
        }
    }
}

#[async_trait::async_trait]
impl UserStore for Latent<dyn UserStore> {
    async fn create(&self, user: &User) -> Result<(), StoreError<UserConflict>> {
        self.call().await;
        self.0.create(user).await
    }
    async fn replace_unverified(
        &self,
        pending: &User,
        user: &User,
    ) -> Result<(), StoreError<UserConflict>> {
        self.call().await;
        self.0.replace_unverified(pending, user).await
    }
    async fn delete(&self, user: &User) -> Result<(), StoreError<UserConflict>> {
        self.call().await;
        self.0.delete(user).await
    }
    async fn get(&self, id: &UserId) -> Result<Option<User>, StoreUnavailable> {
        self.call().await;
        self.0.get(id).await
    }
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreUnavailable> {
        self.call().await;
        self.0.find_by_email(email).await
    }
    async fn update(
        &self,
        id: &UserId,
        update: UserUpdate,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>> {
        self.call().await;
        self.0.update(id, update, now).await
    }
    async fn change_email(
        &self,
        id: &UserId,
        new_email: &Email,
        linked: &LinkedState,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>> {
        self.call().await;
        self.0.change_email(id, new_email, linked, now).await
    }
}

#[async_trait::async_trait]
impl TokenStore for Latent<dyn TokenStore> {
    async fn put(&self, token: &StoredToken) -> Result<(), StoreUnavailable> {
        self.call().await;
        self.0.put(token).await
    }
    async fn replace(&self, token: &StoredToken) -> Result<Replaced, StoreUnavailable> {
        self.call().await;
        self.0.replace(token).await
    }
    async fn take(
        &self,
        hash: &TokenHash,
        purposes: &[TokenPurpose],
    ) -> Result<Option<StoredToken>, StoreUnavailable> {
        self.call().await;
        self.0.take(hash, purposes).await
    }
    async fn give_back(&self, token: &StoredToken) -> Result<(), StoreUnavailable> {
        self.call().await;
        self.0.give_back(token).await
    }
}

/// What a DynamoDB call takes, about.
const STORE_CALL: Duration = Duration::from_millis(10);

/// Each request that names an address does more when it has an account (a token written, an
/// email queued) than when it has none (one read): 10 ms against 40 ms here, where each
/// account or token call takes 10 ms. Each is answered at the same moment whatever the address:
/// for a verified account, an unverified one, and an address without one. (Paused time: the
/// instants are exact.)
#[tokio::test(start_paused = true)]
async fn timing_requests_that_name_an_address_to_learn_who_has_an_account() {
    const PENDING: &str = "pending@example.org";
    const MOVER: &str = "mover@example.org";
    let queue = MemoryQueues::new();
    let mut adapters = ApiAdapters::in_memory(queue.clone(), Arc::new(MemoryJobs::default()));
    adapters.users = Arc::new(Latent(adapters.users, STORE_CALL));
    adapters.tokens = Arc::new(Latent(adapters.tokens, STORE_CALL));
    let service = auth_api::wire(
        adapters,
        JwtKeys::new(&oes_tests::jwt_settings()),
        oes_tests::cheap_hasher(),
        Arc::new(SystemClock),
    );
    for owner in [VICTIM, MOVER] {
        sign_up_from(&service, HOME, owner, OWNERS_PASSWORD).await;
        let link = the_verification_mail_to(&queue, owner).await;
        assert_eq!(follow(&service, &link).await.0, 200);
    }
    sign_up_from(&service, HOME, PENDING, OWNERS_PASSWORD).await;
    mailed(&queue).await;
    let login = json!({"email": MOVER, "password": OWNERS_PASSWORD});
    let (status, session) = post_from(&service, HOME, "/auth/login", login).await;
    assert_eq!(status, 200, "{session}");
    let bearer = session["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    // The caller's profile cached, as it is after a first request.
    let me = request_from(HOME, "GET", "/auth/me", None, Some(&bearer));
    assert_eq!(
        read(&auth_api::handle(&service, me).await.expect("answered")).0,
        200
    );

    // The sign-up last: it makes the free address a pending account.
    let routes = [
        "/auth/password-reset/request",
        "/auth/resend-verification",
        "/auth/me/email",
        "/auth/register",
    ];
    let mut n = 0;
    for path in routes {
        let mut answers = Vec::new();
        for address in [VICTIM, PENDING, FRESH] {
            n += 1;
            let (body, bearer) = match path {
                "/auth/register" => (
                    json!({"email": address, "password": SQUATTERS_PASSWORD, "name": "S"}),
                    None,
                ),
                "/auth/me/email" => (
                    json!({"new_email": address, "password": OWNERS_PASSWORD}),
                    Some(bearer.as_str()),
                ),
                _ => (json!({ "email": address }), None),
            };
            let request = request_from(bot(n), "POST", path, Some(&body.to_string()), bearer);
            let started = tokio::time::Instant::now();
            let response = auth_api::handle(&service, request)
                .await
                .expect("no invocation error");
            let took = started.elapsed();
            answers.push((address, read(&response).0, took));
        }
        // What comes before the floor (the email change reads the caller's account) does not
        // depend on the address.
        let took = answers[0].2;
        assert!(
            took >= ANSWER_FLOOR && took < ANSWER_FLOOR * 2,
            "{path}: {answers:?}"
        );
        let expected: Vec<_> = answers
            .iter()
            .map(|&(address, ..)| (address, 202, took))
            .collect();
        assert_eq!(answers, expected, "{path}");
    }
    // The work was done: every address with an account got its email.
    assert!(mailed(&queue).await.len() >= 6);
}

#[tokio::test]
async fn learning_who_has_an_account_from_two_sign_ups_at_once() {
    let queue = MemoryQueues::new();
    let mut adapters = ApiAdapters::in_memory(queue.clone(), Arc::new(MemoryJobs::default()));
    adapters.users = Arc::new(Latent(adapters.users, Duration::ZERO));
    let service = oes_tests::auth_over(adapters, Arc::new(SystemClock));
    sign_up_from(&service, HOME, VICTIM, OWNERS_PASSWORD).await;
    let link = the_verification_mail_to(&queue, VICTIM).await;
    assert_eq!(follow(&service, &link).await.0, 200);

    // Two sign-ups at once for each address: both read it before either writes, so for a free
    // address one of the writes finds it taken.
    let mut answers = Vec::new();
    for address in [VICTIM, FRESH] {
        let (first, second) = tokio::join!(
            sign_up_from(&service, ATTACKER, address, SQUATTERS_PASSWORD),
            sign_up_from(&service, bot(1), address, SQUATTERS_PASSWORD),
        );
        answers.push([first, second]);
    }
    assert_eq!(answers[1][0], answers[1][1], "{answers:?}");
    assert_eq!(
        answers[0], answers[1],
        "a free address is answered as a taken one"
    );
    assert_eq!(answers[1][0].0, 202, "{answers:?}");

    // The later sign-up replaced the earlier one: of the two links to FRESH, one works.
    let links: Vec<Mail> = mailed(&queue)
        .await
        .into_iter()
        .filter(|m| m.to == FRESH)
        .collect();
    assert_eq!(links.len(), 2, "{links:?}");
    let mut followed = Vec::new();
    for link in &links {
        followed.push(follow(&service, link).await.0);
    }
    followed.sort_unstable();
    assert_eq!(followed, [200, 400]);
}

/// The in-memory accounts, with the sign-ups of a race in lock step: each reads the address, then
/// waits until every sign-up still in the race has read it too, so all of them read before any of
/// them writes, round after round. A sign-up leaves the race when it finds a verified account or
/// its write succeeds. Outside a race (`racing` 0), calls go straight through.
struct Lockstep {
    inner: Arc<dyn UserStore>,
    round: std::sync::Mutex<Round>,
    /// Bumped when every sign-up in the race has read in the round.
    rounds: tokio::sync::watch::Sender<u64>,
}

#[derive(Default)]
struct Round {
    /// The sign-ups still in the race.
    racing: usize,
    /// How many of them read in this round.
    read: usize,
    /// Writes that lost a race (found the address changed since they read it).
    lost: usize,
}

impl Lockstep {
    fn new(inner: Arc<dyn UserStore>) -> Self {
        Self {
            inner,
            round: std::sync::Mutex::new(Round::default()),
            rounds: tokio::sync::watch::channel(0).0,
        }
    }

    fn round(&self) -> std::sync::MutexGuard<'_, Round> {
        self.round.lock().expect("not poisoned")
    }

    /// Starts a race of `racers` sign-ups.
    fn race(&self, racers: usize) {
        *self.round() = Round {
            racing: racers,
            ..Round::default()
        };
    }

    /// Ends the round if every sign-up still in the race has read in it.
    fn end_round_if_all_read(&self, round: &mut Round) {
        if round.read > 0 && round.read >= round.racing {
            round.read = 0;
            self.rounds.send_modify(|n| *n += 1);
        }
    }

    /// One sign-up leaves the race.
    fn leave(&self) {
        let mut round = self.round();
        round.racing = round.racing.saturating_sub(1);
        self.end_round_if_all_read(&mut round);
    }

    /// A write of the race made: it leaves the race if it succeeded, and counts as lost if not.
    fn wrote<T>(&self, written: &Result<T, StoreError<UserConflict>>) {
        if self.round().racing == 0 {
            return;
        }
        match written {
            Ok(_) => self.leave(),
            Err(_) => self.round().lost += 1,
        }
    }
}

#[async_trait::async_trait]
impl UserStore for Lockstep {
    async fn create(&self, user: &User) -> Result<(), StoreError<UserConflict>> {
        let written = self.inner.create(user).await;
        self.wrote(&written);
        written
    }
    async fn replace_unverified(
        &self,
        pending: &User,
        user: &User,
    ) -> Result<(), StoreError<UserConflict>> {
        let written = self.inner.replace_unverified(pending, user).await;
        self.wrote(&written);
        written
    }
    async fn delete(&self, user: &User) -> Result<(), StoreError<UserConflict>> {
        self.inner.delete(user).await
    }
    async fn get(&self, id: &UserId) -> Result<Option<User>, StoreUnavailable> {
        self.inner.get(id).await
    }
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreUnavailable> {
        let found = self.inner.find_by_email(email).await;
        let this_round = {
            let mut round = self.round();
            if round.racing == 0 {
                return found;
            }
            round.read += 1;
            let this_round = *self.rounds.borrow();
            self.end_round_if_all_read(&mut round);
            this_round
        };
        let mut rounds = self.rounds.subscribe();
        // A racer that never reads again fails the test below instead of hanging it.
        let waited = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            rounds.wait_for(|n| *n != this_round),
        );
        assert!(waited.await.is_ok(), "every sign-up in the race read");
        if matches!(&found, Ok(Some(user)) if user.status == oes_domain::user::UserStatus::Active) {
            self.leave();
        }
        found
    }
    async fn update(
        &self,
        id: &UserId,
        update: UserUpdate,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>> {
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
async fn learning_who_has_an_account_from_many_sign_ups_at_once() {
    const RACERS: usize = 5;
    let queue = MemoryQueues::new();
    let mut adapters = ApiAdapters::in_memory(queue.clone(), Arc::new(MemoryJobs::default()));
    let users = Arc::new(Lockstep::new(adapters.users.clone()));
    adapters.users = users.clone();
    let service = oes_tests::auth_over(adapters, Arc::new(SystemClock));
    // The victim's verified account, made in the store (its sign-up spends none of the
    // mailbox's email budget, which the race below spends whole).
    let now = SystemClock.now();
    let victim = User {
        id: UserId::generate(),
        email: Email::parse(VICTIM).expect("valid"),
        name: oes_domain::user::DisplayName::parse("Victim").expect("valid"),
        password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
        role: oes_domain::user::Role::Student,
        status: oes_domain::user::UserStatus::Active,
        token_version: 0,
        email_version: 0,
        created_at: now,
        updated_at: now,
    };
    users.create(&victim).await.expect("created");

    // RACERS sign-ups at once for each address, from as many clients, in lock step: every one
    // still racing reads the address before any writes, so for a free address all but one of
    // the writes lose each round.
    let mut answers = Vec::new();
    let mut lost = Vec::new();
    for address in [VICTIM, FRESH] {
        users.race(RACERS);
        let racers = (0..RACERS).map(|n| {
            let ip = bot(u64::try_from(n).expect("small"));
            sign_up_from(&service, ip, address, SQUATTERS_PASSWORD)
        });
        answers.extend(futures_util::future::join_all(racers).await);
        lost.push(users.round().lost);
        users.race(0);
    }
    assert_eq!(lost[0], 0, "no sign-up writes for a verified address");
    assert!(lost[1] > 0, "the sign-ups for the free address raced");
    for answer in &answers {
        assert_eq!(
            answer, &answers[0],
            "every sign-up is answered alike, free address or verified: {answers:?}"
        );
    }
    assert_eq!(answers[0].0, 202, "{answers:?}");

    // The free address now has one account pending verification: of the links it was sent,
    // the last one works.
    let mails = mailed(&queue).await;
    let notices = mails.iter().filter(|m| m.to == VICTIM).count();
    assert_eq!(
        notices, RACERS,
        "the owner got a notice per sign-up: {mails:?}"
    );
    let links: Vec<&Mail> = mails.iter().filter(|m| m.to == FRESH).collect();
    assert!(
        links.len() < RACERS,
        "some sign-ups lost every race and wrote nothing: {links:?}"
    );
    let mut followed = Vec::new();
    for link in links {
        followed.push(follow(&service, link).await.0);
    }
    followed.sort_unstable();
    assert_eq!(followed.first(), Some(&200), "{followed:?}");
    assert!(followed[1..].iter().all(|s| *s == 400), "{followed:?}");
}

#[tokio::test]
async fn learning_who_has_an_account_from_reset_requests_that_lose_every_race() {
    // The links are stored in DynamoDB, each read stale: a reset request that finds a reset link
    // stored loses the race to store its own as the account's one valid reset link, every time,
    // as one does among many made at once (more than the account's limit lets through in one
    // window: at a window's turn, or counted per container while Redis is down).
    let env = oes_tests::TestEnv::spawn().await;
    let queue = MemoryQueues::new();
    let mut adapters = ApiAdapters::in_memory(queue.clone(), Arc::new(MemoryJobs::default()));
    let stale = oes_tests::stale_reads::StaleReads::client(&env.clients.dynamodb());
    adapters.tokens = Arc::new(DynamoTokens::new(stale, env.provisioned.table.clone()));
    let service = oes_tests::auth_over(adapters, Arc::new(SystemClock));
    sign_up_from(&service, HOME, VICTIM, OWNERS_PASSWORD).await;
    let link = the_verification_mail_to(&queue, VICTIM).await;
    assert_eq!(follow(&service, &link).await.0, 200);
    let reset = |email: &str| json!({"email": email});
    let path = "/auth/password-reset/request";
    let (status, body) = post_from(&service, HOME, path, reset(VICTIM)).await;
    assert_eq!(status, 202, "{body}");
    let mut mails = mailed(&queue).await;
    assert_eq!(mails.len(), 1, "{mails:?}");
    let owners_link = mails.remove(0);

    // The attacker asks for a reset of each address: the victim's request loses every race.
    let mut answers = Vec::new();
    for address in [VICTIM, FRESH] {
        answers.push(post_from(&service, ATTACKER, path, reset(address)).await);
    }
    assert_eq!(
        answers[0], answers[1],
        "a reset request for an account is answered as one for no account"
    );
    assert_eq!(answers[0].0, 202, "{answers:?}");
    let (status, body) = confirm_reset(&service, &owners_link, "the owner's new secret").await;
    assert_eq!(status, 200, "the owner's link works: {body}");
}
