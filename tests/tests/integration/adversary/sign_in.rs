//! Attacks on sign_in (issue 12): locking an owner out by guessing their password, and guessing
//! it anyway. Against auth-api over the real adapters (DynamoDB in the emulator, the limits
//! counted in Redis, as every container counts them); client addresses are API Gateway's
//! `sourceIp`, set per request as in `rate_limits.rs`.

use super::{bot, sign_in_from as sign_in};
use auth_api::AuthService;
use auth_api::limits::{LOGIN_PER_ACCOUNT, LOGIN_PER_ACCOUNT_AND_IP, LOGIN_PER_DEVICE};
use oes_domain::clock::{Clock, SystemClock};
use oes_domain::security::Password;
use oes_domain::user::{DisplayName, Email, Role, User, UserId, UserStatus};
use oes_runtime::wiring::ApiAdapters;
use oes_tests::{TestEnv, cheap_hasher};
use serde_json::Value;

const OWNER: &str = "owner@example.com";
const PASSWORD: &str = "correct horse battery";
const WRONG: &str = "wrong password";

/// Where the owner usually signs in from.
const HOME: [u8; 4] = [198, 51, 100, 7];
/// Where the owner signs in from while under attack (never used by an attacker).
const TRAVELLING: [u8; 4] = [192, 0, 2, 44];
/// The attacker's own address.
const ATTACKER: [u8; 4] = [203, 0, 113, 66];

/// auth-api over fresh real resources, with an active account `OWNER` whose password is
/// `PASSWORD`.
async fn target() -> (TestEnv, AuthService) {
    let env = TestEnv::spawn().await;
    create_account(&env, OWNER).await;
    let service = env.auth_service();
    (env, service)
}

/// An active account for `email` with the password `PASSWORD`, written to the store.
async fn create_account(env: &TestEnv, email: &str) {
    let adapters = ApiAdapters::aws(&env.clients, &env.api_config()).expect("adapters");
    let password = Password::parse(PASSWORD.into(), "password").expect("a valid password");
    let now = SystemClock.now();
    let user = User {
        id: UserId::generate(),
        email: Email::parse(email).expect("a valid address"),
        name: DisplayName::parse("Owner").expect("a valid name"),
        password_hash: cheap_hasher().hash(&password).expect("hashed"),
        role: Role::Student,
        status: UserStatus::Active,
        token_version: 0,
        email_version: 0,
        created_at: now,
        updated_at: now,
    };
    adapters.users.create(&user).await.expect("account created");
}

/// The device token a successful sign-in handed out, if any.
fn device_token(session: &Value) -> Option<String> {
    session["device_token"].as_str().map(str::to_owned)
}

/// `attempts` wrong passwords against `email` from `addresses` distinct botnet addresses in
/// turn (starting at bot `first`); the statuses, in order.
async fn guess_from_many(
    service: &AuthService,
    email: &str,
    first: u64,
    addresses: u64,
    attempts: u64,
) -> Vec<u16> {
    let mut statuses = Vec::new();
    for n in 0..attempts {
        let ip = bot(first + n % addresses);
        statuses.push(sign_in(service, ip, email, WRONG, None).await.0);
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_from_one_address_do_not_lock_the_owner_out_everywhere() {
    let (_env, service) = target().await;
    let per_ip = LOGIN_PER_ACCOUNT_AND_IP.max;
    let mut statuses = Vec::new();
    for _ in 0..150 {
        statuses.push(sign_in(&service, ATTACKER, OWNER, WRONG, None).await.0);
    }
    let allowed = usize::try_from(per_ip).expect("small");
    assert!(
        statuses[..allowed].iter().all(|s| *s == 401)
            && statuses[allowed..].iter().all(|s| *s == 429),
        "the attacker's address gets {per_ip} guesses, then 429: {statuses:?}"
    );

    let (status, session) = sign_in(&service, HOME, OWNER, PASSWORD, None).await;
    assert_eq!(
        status, 200,
        "150 wrong passwords from one address (all but {per_ip} refused by the per-address \
         limit) must not lock the owner out from another address: {session}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_from_many_addresses_does_not_lock_out_the_owners_known_device() {
    let (_env, service) = target().await;
    let (status, session) = sign_in(&service, HOME, OWNER, PASSWORD, None).await;
    assert_eq!(status, 200, "{session}");
    let device = device_token(&session);

    // More wrong passwords than the account-wide budget, each address within its own limit.
    let per_ip = LOGIN_PER_ACCOUNT_AND_IP.max;
    let attempts = LOGIN_PER_ACCOUNT.max + 20;
    let statuses = guess_from_many(&service, OWNER, 0, attempts.div_ceil(per_ip), attempts).await;
    assert_eq!(
        statuses.last(),
        Some(&429),
        "the account-wide limit refuses the botnet"
    );
    let (status, _) = sign_in(&service, TRAVELLING, OWNER, PASSWORD, None).await;
    assert_eq!(
        status, 429,
        "a device that never signed in is refused while the account is under attack"
    );

    let (status, session) = sign_in(&service, TRAVELLING, OWNER, PASSWORD, device.as_deref()).await;
    assert_eq!(
        status,
        200,
        "the owner, on a device that signed in before (device token {}), gets in at once \
         from a new address: {session}",
        if device.is_some() {
            "sent"
        } else {
            "never issued"
        }
    );
    let (status, session) = sign_in(&service, bot(0), OWNER, PASSWORD, device.as_deref()).await;
    assert_eq!(
        status, 200,
        "… and from an address the attacker shares (one NAT for a whole class): {session}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_spread_over_many_addresses_is_still_bounded_per_account_per_hour() {
    let (_env, service) = target().await;
    let budget = LOGIN_PER_ACCOUNT.max;
    // One guess per address: no per-address limit ever refuses.
    let statuses = guess_from_many(&service, OWNER, 0, budget + 10, budget + 10).await;
    let budget = usize::try_from(budget).expect("small");
    assert!(statuses[..budget].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(
        statuses[budget..].iter().all(|s| *s == 429),
        "after {budget} failures from untrusted devices the account refuses guesses from any \
         address: {statuses:?}"
    );
    let (status, _) = sign_in(&service, bot(100_000), OWNER, PASSWORD, None).await;
    assert_eq!(
        status, 429,
        "even the right password, from an untrusted device, waits for the window to end"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_token_of_the_attackers_own_account_does_not_lift_the_victims_limit() {
    let (env, service) = target().await;
    let attacker = "attacker@example.com";
    create_account(&env, attacker).await;
    let (status, session) = sign_in(&service, ATTACKER, attacker, PASSWORD, None).await;
    assert_eq!(status, 200, "{session}");
    let attackers_device = device_token(&session);

    let budget = LOGIN_PER_ACCOUNT.max;
    let statuses = guess_from_many(&service, OWNER, 0, budget, budget).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    for n in 0..3 {
        let (status, body) = sign_in(
            &service,
            bot(1000 + n),
            OWNER,
            WRONG,
            attackers_device.as_deref(),
        )
        .await;
        assert_eq!(
            status, 429,
            "a device trusted by another account is untrusted for this one: {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_device_token_still_bounds_guessing() {
    let (_env, service) = target().await;
    let (status, session) = sign_in(&service, HOME, OWNER, PASSWORD, None).await;
    assert_eq!(status, 200, "{session}");
    let device = device_token(&session);

    let mut statuses = Vec::new();
    for n in 0..=LOGIN_PER_DEVICE.max {
        // A new address for every guess: only a per-device limit can refuse.
        let (status, _) = sign_in(&service, bot(n), OWNER, WRONG, device.as_deref()).await;
        statuses.push(status);
    }
    let max = usize::try_from(LOGIN_PER_DEVICE.max).expect("small");
    assert!(statuses[..max].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(
        statuses[max], 429,
        "guesses carrying one device token are limited per device, whatever the address: \
         {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_or_tampered_device_token_counts_as_an_untrusted_device() {
    let (_env, service) = target().await;
    let (status, session) = sign_in(&service, HOME, OWNER, PASSWORD, None).await;
    assert_eq!(status, 200, "{session}");
    let device = device_token(&session).expect("a device token");
    // The claims of the real token, re-signed by nobody: the signature no longer matches.
    let (signed, signature) = device.rsplit_once('.').expect("a signed token");
    let tampered = format!("{signed}.{}", signature.chars().rev().collect::<String>());
    assert_ne!(tampered, device, "the signature changed");

    // The rest of the account-wide budget (the owner's sign-in spent one).
    let left = LOGIN_PER_ACCOUNT.max - 1;
    let statuses = guess_from_many(&service, OWNER, 0, left, left).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    for forged in [tampered.as_str(), "not-a-device-token", ""] {
        let (status, body) = sign_in(&service, TRAVELLING, OWNER, PASSWORD, Some(forged)).await;
        assert_eq!(
            status, 429,
            "an invalid device token is no device token: {body}"
        );
    }
}

/// Log lines written to memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
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

impl tracing_subscriber::fmt::MakeWriter<'_> for Captured {
    type Writer = Self;
    fn make_writer(&self) -> Self::Writer {
        self.clone()
    }
}

// On the test's thread only, where the subscriber is.
#[tokio::test(flavor = "current_thread")]
async fn device_tokens_cannot_be_read_from_the_logs() {
    let (_env, service) = target().await;
    let captured = Captured::default();
    let subscriber = oes_runtime::telemetry::json_subscriber(
        tracing_subscriber::EnvFilter::new(
            "info,auth_api=trace,oes_runtime=trace,oes_domain=trace,oes_adapters=trace",
        ),
        captured.clone(),
    );
    let _guard = tracing::subscriber::set_default(subscriber);
    // With one subscriber in the process, tracing decides whether a callsite is listened to
    // by asking the subscriber of the thread that reaches it first, and other tests reach the
    // handler's callsites on threads without one ("never"). A second dispatcher makes it ask
    // at each event instead.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    tracing::callsite::rebuild_interest_cache();

    let (status, session) = sign_in(&service, HOME, OWNER, PASSWORD, None).await;
    assert_eq!(status, 200, "{session}");
    let device = device_token(&session).expect("a device token");
    let (status, session) = sign_in(&service, HOME, OWNER, PASSWORD, Some(&device)).await;
    assert_eq!(status, 200, "{session}");
    let renewed = device_token(&session).expect("a renewed device token");
    let (status, _) = sign_in(&service, HOME, OWNER, WRONG, Some(&renewed)).await;
    assert_eq!(status, 401);

    let logs = captured.0.lock().map(|b| b.clone()).unwrap_or_default();
    let logs = String::from_utf8_lossy(&logs);
    assert!(
        logs.contains("\"request\""),
        "the requests were logged: {logs}"
    );
    for token in [&device, &renewed] {
        let signature = token.rsplit('.').next().unwrap_or(token);
        assert!(
            !logs.contains(signature),
            "a device token appears in the logs"
        );
    }
}
