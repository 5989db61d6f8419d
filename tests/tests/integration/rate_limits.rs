//! Rate limits: the limiter against real Redis and the one-node cluster (one budget for every
//! container, windows that end, a local fallback when Redis is down), and auth-api's limits
//! through its Lambda handler (429 with `Retry-After`, nothing revealed about accounts).

use std::sync::Arc;
use std::time::{Duration, Instant};

use auth_api::hashing::HashPool;
use lambda_http::{Body, Response};
use oes_adapters::redis_cache::{RedisCache, RedisTopology};
use oes_domain::cache::CacheSettings;
use oes_domain::ports::Cache;
use oes_runtime::rate_limit::{Limit, RateLimiter, Verdict};
use oes_tests::{
    Redis, TestEnv, free_port, in_memory_auth, on_both_redis, read, request_from, unique_prefix,
};
use serde_json::{Value, json};

on_both_redis!(
    every_container_counts_against_one_budget,
    a_window_ends_and_a_new_one_starts,
);

const THREE_PER_MINUTE: Limit = Limit {
    rule: "test",
    max: 3,
    window: Duration::from_secs(60),
};

/// A limiter as one container builds it: its own Redis client.
fn container(url: &str, topology: RedisTopology, prefix: &str) -> RateLimiter {
    let redis: Arc<dyn Cache> = Arc::new(
        RedisCache::connect(url, topology, Duration::from_millis(200)).expect("redis url"),
    );
    RateLimiter::new(Some(redis), prefix, &CacheSettings::default())
}

async fn every_container_counts_against_one_budget(redis: Redis) {
    let prefix = unique_prefix("t-rl");
    let a = container(&redis.url(), redis.topology(), &prefix);
    let b = container(&redis.url(), redis.topology(), &prefix);
    assert_eq!(a.check(&THREE_PER_MINUTE, "x").await, Verdict::Allowed);
    assert_eq!(b.check(&THREE_PER_MINUTE, "x").await, Verdict::Allowed);
    assert_eq!(a.check(&THREE_PER_MINUTE, "x").await, Verdict::Allowed);
    let Verdict::Limited { retry_after } = b.check(&THREE_PER_MINUTE, "x").await else {
        panic!("the fourth hit, counted by another container, is over the limit");
    };
    assert!(
        retry_after <= THREE_PER_MINUTE.window && retry_after > Duration::from_secs(50),
        "the wait is what is left of the window started by the first hit: {retry_after:?}"
    );
    assert_eq!(
        a.check(&THREE_PER_MINUTE, "y").await,
        Verdict::Allowed,
        "another subject has its own budget"
    );
}

async fn a_window_ends_and_a_new_one_starts(redis: Redis) {
    let prefix = unique_prefix("t-rl");
    let limiter = container(&redis.url(), redis.topology(), &prefix);
    let short = Limit {
        rule: "short",
        max: 1,
        window: Duration::from_millis(300),
    };
    assert_eq!(limiter.check(&short, "x").await, Verdict::Allowed);
    assert!(matches!(
        limiter.check(&short, "x").await,
        Verdict::Limited { .. }
    ));
    // Redis expires the counter with the window (no sweeper, nothing counts forever).
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(limiter.check(&short, "x").await, Verdict::Allowed);
}

#[tokio::test]
async fn with_redis_down_each_container_still_limits_without_waiting_on_it() {
    let down = format!("redis://127.0.0.1:{}", free_port(false));
    let limiter = container(&down, RedisTopology::Standalone, "t-rl-down");
    let mut verdicts = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        verdicts.push(limiter.check(&THREE_PER_MINUTE, "x").await);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "a check never hangs on a dead Redis"
        );
    }
    assert_eq!(&verdicts[..3], &[Verdict::Allowed; 3]);
    assert!(
        verdicts[3..]
            .iter()
            .all(|v| matches!(v, Verdict::Limited { .. })),
        "counted in the container's memory instead: {verdicts:?}"
    );
}

async fn respond(
    service: &auth_api::AuthService,
    ip: [u8; 4],
    path: &str,
    body: &Value,
) -> Response<Body> {
    let request = request_from(ip, "POST", path, Some(&body.to_string()), None);
    auth_api::handle(service, request)
        .await
        .expect("no invocation error")
}

const HOME: [u8; 4] = [198, 51, 100, 7];
const ELSEWHERE: [u8; 4] = [203, 0, 113, 9];

/// Asserts a 429 in the API's error shape with a `Retry-After` within `window`.
fn assert_limited(response: &Response<Body>, window: Duration) {
    let (status, body) = read(response);
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds");
    assert!(
        (1..=window.as_secs()).contains(&retry_after),
        "Retry-After {retry_after}"
    );
}

#[tokio::test]
async fn sign_in_attempts_are_limited_per_account_and_address() {
    let (service, _queue) = in_memory_auth();
    let email = "limited@example.com";
    let attempt = json!({"email": email, "password": "wrong password"});
    for _ in 0..auth_api::limits::LOGIN_PER_ACCOUNT_AND_IP.max {
        let response = respond(&service, HOME, "/auth/login", &attempt).await;
        assert_eq!(read(&response).0, 401);
    }
    let response = respond(&service, HOME, "/auth/login", &attempt).await;
    assert_limited(&response, auth_api::limits::LOGIN_PER_ACCOUNT_AND_IP.window);

    let other_account = json!({"email": "other@example.com", "password": "wrong password"});
    assert_eq!(
        read(&respond(&service, HOME, "/auth/login", &other_account).await).0,
        401,
        "other accounts from the same address are not affected"
    );
    assert_eq!(
        read(&respond(&service, ELSEWHERE, "/auth/login", &attempt).await).0,
        401,
        "the same account from another address is not affected"
    );
}

#[tokio::test]
async fn verification_emails_are_bounded_per_mailbox_and_answered_the_same_whether_or_not_it_has_an_account()
 {
    use oes_domain::clock::{Clock, SystemClock};
    use oes_domain::user::{Role, UserStatus};

    let apis = oes_tests::in_memory_apis();
    let now = SystemClock.now();
    let pending = oes_tests::user_with(
        "known@example.com",
        Role::Student,
        UserStatus::PendingVerification,
        now,
    );
    apis.users.create(&pending).await.expect("created");

    let limit = auth_api::limits::EMAIL_PER_ADDRESS.max;
    let mut answers = Vec::new();
    for addresses in [
        ["known@example.com", "Known@Example.com"],
        ["unknown@example.com", "Unknown@Example.com"],
    ] {
        let mut statuses = Vec::new();
        for n in 0..limit * 2 {
            // Case variants are the same address, and share its mailbox's budget.
            let email = addresses[usize::from(n % 2 == 1)];
            let response = respond(
                &apis.auth,
                HOME,
                "/auth/resend-verification",
                &json!({ "email": email }),
            )
            .await;
            statuses.push(read(&response).0);
        }
        answers.push(statuses);
    }
    let limit = usize::try_from(limit).expect("small");
    assert_eq!(answers[0], vec![202; limit * 2], "never refused");
    assert_eq!(
        answers[0], answers[1],
        "an address with an account answers exactly like one without"
    );
    let sent = oes_tests::take_waiting(&apis.queue, 100).await.len();
    // Each request for the account's address mails it, counting against the mailbox's budget,
    // until it is spent: twice the budget asked for, the budget sent.
    assert_eq!(sent, limit, "the mailbox got its budget's emails, no more");
}

#[tokio::test]
async fn reset_emails_are_bounded_per_account_and_answered_the_same_whether_or_not_it_has_one() {
    let (service, queue) = in_memory_auth();
    let register = json!({"email": "known@example.com", "password": "correct horse", "name": "K"});
    assert_eq!(
        read(&respond(&service, HOME, "/auth/register", &register).await).0,
        202
    );
    let token = oes_tests::take_verification_token(&queue).await;
    let verify = json!({ "token": token });
    assert_eq!(
        read(&respond(&service, HOME, "/auth/verify-email", &verify).await).0,
        200
    );

    let bound = auth_api::limits::RESET_PER_ACCOUNT.max;
    let mut answers = Vec::new();
    for email in ["known@example.com", "unknown@example.com"] {
        let mut statuses = Vec::new();
        for _ in 0..bound + 3 {
            let response = respond(
                &service,
                HOME,
                "/auth/password-reset/request",
                &json!({ "email": email }),
            )
            .await;
            statuses.push(read(&response).0);
        }
        answers.push(statuses);
    }
    assert!(
        answers[0].iter().all(|s| *s == 202),
        "a reset request past the bound is answered as any other: {answers:?}"
    );
    assert_eq!(
        answers[0], answers[1],
        "an address with an account answers exactly like one without"
    );
    assert_eq!(
        oes_tests::take_waiting(&queue, 100).await.len(),
        usize::try_from(bound).expect("small"),
        "only the requests within the account's bound queued a reset email"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_containers_over_the_real_adapters_share_the_sign_in_budget() {
    let env = TestEnv::spawn().await;
    let first = env.auth_service();
    let second = env.auth_service();
    let attempt = json!({"email": "shared@example.com", "password": "wrong password"});
    let max = auth_api::limits::LOGIN_PER_ACCOUNT_AND_IP.max;
    for n in 0..max {
        let container = if n % 2 == 0 { &first } else { &second };
        let response = respond(container, HOME, "/auth/login", &attempt).await;
        assert_eq!(read(&response).0, 401);
    }
    for container in [&first, &second] {
        let response = respond(container, HOME, "/auth/login", &attempt).await;
        assert_limited(&response, auth_api::limits::LOGIN_PER_ACCOUNT_AND_IP.window);
    }
}

/// Issue 14: a sign-in burst beyond what the hash pool holds is answered at once with 503
/// `busy` and `Retry-After: 1`, never queued without a bound. Before, every argon2 hash of a
/// burst ran at once on the blocking pool (19 MiB each): 3,000 sign-ins in a minute grew
/// `oes-local` to 22 GB until the kernel killed it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_burst_beyond_the_hash_pool_is_refused_at_once_not_queued_without_bound() {
    let service = Arc::new(with_real_argon2(HashPool::new(1, 2)));
    let burst: Vec<_> = (0..24u8)
        .map(|n| {
            let service = Arc::clone(&service);
            tokio::spawn(async move {
                let attempt = json!({"email": format!("student{n}@example.com"),
                    "password": "a password"});
                respond(&service, [10, 0, 0, n], "/auth/login", &attempt).await
            })
        })
        .collect();
    let (mut checked, mut busy) = (0, 0);
    for answer in burst {
        let response = answer.await.expect("joined");
        let (status, body) = read(&response);
        match status {
            401 => checked += 1,
            503 => {
                busy += 1;
                assert_eq!(body["error"]["code"], "busy", "{body}");
                assert_eq!(
                    response.headers().get("retry-after").map(|v| v.as_bytes()),
                    Some(&b"1"[..]),
                    "{body}"
                );
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(
        checked >= 3 && busy >= 1,
        "{checked} checked, {busy} refused"
    );
    // Once the burst is through, the pool has room again.
    let attempt = json!({"email": "late@example.com", "password": "a password"});
    assert_eq!(
        read(&respond(&service, HOME, "/auth/login", &attempt).await).0,
        401
    );
}

/// auth-api in memory with the real argon2 cost (OWASP's 19 MiB, 2 passes: each check holds
/// its worker for milliseconds) and the given pool.
fn with_real_argon2(pool: HashPool) -> auth_api::service::AuthService {
    use oes_adapters::memory::{MemoryJobs, MemoryQueues};
    use oes_domain::clock::SystemClock;
    use oes_domain::security::{JwtKeys, PasswordHasher};
    use oes_runtime::wiring::ApiAdapters;

    auth_api::wire(
        ApiAdapters::in_memory(MemoryQueues::new(), Arc::new(MemoryJobs::default())),
        JwtKeys::new(&oes_tests::jwt_settings()),
        PasswordHasher::new().expect("default params"),
        Arc::new(SystemClock),
    )
    .with_hash_pool(pool)
}

/// The pool's one worker, held by work that waits to be released.
struct HeldWorker {
    release: std::sync::mpsc::Sender<()>,
    work: tokio::task::JoinHandle<Result<(), auth_api::hashing::PoolError>>,
}

impl HeldWorker {
    async fn hold(pool: &HashPool) -> Self {
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel();
        let held = pool.clone();
        let work = tokio::spawn(async move {
            held.run(move |_| {
                let _ = started.send(());
                let _ = wait.recv();
            })
            .await
        });
        running.await.expect("the held work starts");
        Self { release, work }
    }

    /// Lets the work end, and waits until it has given its worker back.
    async fn release(self) {
        self.release.send(()).expect("the held work waits");
        self.work.await.expect("joined").expect("ran");
    }
}

/// Found by the exam-day load test (issue 14): a sign-in refused with 503 `busy` counted against
/// the student's (account, address) sign-in limit, so ten busy answers in a burst locked the
/// student out of signing in for up to 15 minutes — on exam day, at the start of the exam.
/// A request the hash pool refuses spends no budget: neither a sign-in nor a sign-up (whose
/// per-address budget is small).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_refused_as_busy_spend_no_rate_limit_budget() {
    let pool = HashPool::new(1, 0);
    let service = Arc::new(with_real_argon2(pool.clone()));
    let held = HeldWorker::hold(&pool).await;
    let sign_in = json!({"email": "burst@example.com", "password": "a password"});
    let sign_up = json!({"email": "new@example.com", "password": "a long password",
        "name": "New Student"});
    let max = auth_api::limits::LOGIN_PER_ACCOUNT_AND_IP
        .max
        .max(auth_api::limits::EMAIL_PER_ADDRESS.max)
        .max(auth_api::limits::SIGN_UP_PER_IP.max);
    for _ in 0..=max {
        for (path, body) in [("/auth/login", &sign_in), ("/auth/register", &sign_up)] {
            let response = respond(&service, HOME, path, body).await;
            let (status, body) = read(&response);
            assert_eq!(
                (status, &body["error"]["code"]),
                (503, &json!("busy")),
                "{path}"
            );
        }
    }
    held.release().await;
    let signed_in = respond(&service, HOME, "/auth/login", &sign_in).await;
    assert_eq!(
        read(&signed_in).0,
        401,
        "checked, not refused: {:?}",
        read(&signed_in).1
    );
    let signed_up = respond(&service, HOME, "/auth/register", &sign_up).await;
    assert_eq!(read(&signed_up).0, 202, "{:?}", read(&signed_up).1);
}

/// A rate-limit key names its subject by a keyed hash (HMAC under a key derived from the JWT
/// secret): a plain SHA-256 of an IP address is undone by hashing the 2³² addresses, and of an
/// email address by a dictionary, so a Redis dump would show who signed up or in from where.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_key_cannot_be_traced_back_to_its_address() {
    use redis::AsyncCommands;
    use sha2::{Digest, Sha256};
    let env = TestEnv::spawn().await;
    let service = env.auth_service();
    let sign_up = json!({"email": "traced@example.com", "password": "correct horse", "name": "T"});
    let response = respond(&service, HOME, "/auth/register", &sign_up).await;
    assert_eq!(read(&response).0, 202);
    let mut redis = redis::Client::open(Redis::Standalone.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let keys: Vec<String> = redis
        .keys(format!("{}:rl:register:*", env.prefix))
        .await
        .expect("KEYS");
    assert_eq!(
        keys.len(),
        1,
        "the sign-up counted against its address: {keys:?}"
    );
    let plain = hex::encode(&Sha256::digest(b"198.51.100.7")[..16]);
    assert!(
        !keys[0].ends_with(&plain),
        "{} is the plain SHA-256 of the address",
        keys[0]
    );
}
