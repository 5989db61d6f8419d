//! The cache-aside policy when Redis goes away, against a `redis-server` of each test's own
//! (standalone and a one-node cluster), so the shared one keeps serving the other tests.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use oes_domain::cache::{CacheAside, CacheKey, CacheSettings, CacheStatus};
use oes_domain::exam::ExamId;
use oes_tests::{PrivateRedis, Redis, on_both_redis};

on_both_redis!(
    reads_succeed_from_the_store_while_redis_is_killed_and_hits_resume_after_it_restarts,
    a_frozen_redis_costs_the_timeout_only_until_the_breaker_opens_and_hits_resume_after_it_thaws,
);

/// Short enough for a test; the breaker cool-down is the one wait these tests cannot avoid.
fn settings() -> CacheSettings {
    CacheSettings {
        timeout: Duration::from_millis(100),
        breaker_failures: 3,
        breaker_cool_down: Duration::from_millis(150),
        ..CacheSettings::default()
    }
}

async fn read(policy: &CacheAside, key: &CacheKey) -> (Option<u32>, CacheStatus, Duration) {
    let started = Instant::now();
    let (value, status) = policy
        .get_or_load(key, || async { Ok::<_, Infallible>(Some(7u32)) })
        .await
        .unwrap_or_else(|e| match e {});
    (value, status, started.elapsed())
}

/// Reads until one is a hit, waiting out the breaker's cool-down between reads; at most 5 s.
async fn until_a_hit(policy: &CacheAside, key: &CacheKey) -> Vec<CacheStatus> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut statuses = Vec::new();
    while Instant::now() < deadline {
        let (value, status, _) = read(policy, key).await;
        assert_eq!(value, Some(7));
        statuses.push(status);
        if status == CacheStatus::Hit {
            return statuses;
        }
        tokio::time::sleep(policy.settings().breaker_cool_down).await;
    }
    panic!("no hit within 5 s after Redis came back: {statuses:?}")
}

async fn reads_succeed_from_the_store_while_redis_is_killed_and_hits_resume_after_it_restarts(
    redis: Redis,
) {
    let mut server = PrivateRedis::start(redis.topology()).await;
    let policy = server.policy(settings());
    let key = policy.keys().exam(&ExamId::generate());
    assert_eq!(read(&policy, &key).await.1, CacheStatus::Miss);
    assert_eq!(read(&policy, &key).await.1, CacheStatus::Hit);

    server.kill();
    let started = Instant::now();
    for _ in 0..30 {
        let (value, status, took) = read(&policy, &key).await;
        assert_eq!((value, status), (Some(7), CacheStatus::Bypass));
        assert!(took < Duration::from_millis(500), "a read took {took:?}");
    }
    policy.invalidate(std::slice::from_ref(&key)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "30 reads and a write took {:?}",
        started.elapsed()
    );

    server.restart().await;
    let statuses = until_a_hit(&policy, &key).await;
    assert!(
        statuses.contains(&CacheStatus::Miss),
        "the restarted Redis was empty, so a miss refilled it: {statuses:?}"
    );
}

async fn a_frozen_redis_costs_the_timeout_only_until_the_breaker_opens_and_hits_resume_after_it_thaws(
    redis: Redis,
) {
    let server = PrivateRedis::start(redis.topology()).await;
    let settings = settings();
    let policy = server.policy(settings);
    let key = policy.keys().exam(&ExamId::generate());
    assert_eq!(read(&policy, &key).await.1, CacheStatus::Miss);

    server.freeze();
    let mut slow = 0;
    for _ in 0..30 {
        let (value, status, took) = read(&policy, &key).await;
        assert_eq!((value, status), (Some(7), CacheStatus::Bypass));
        assert!(took < Duration::from_millis(500), "a read took {took:?}");
        if took >= settings.timeout {
            slow += 1;
        }
    }
    // Without the breaker all 30 would wait; with it, the first few do, and at most one probe.
    assert!(
        slow <= settings.breaker_failures + 1,
        "{slow} of 30 reads waited for the hung Redis"
    );

    server.thaw();
    assert_eq!(
        until_a_hit(&policy, &key).await.last(),
        Some(&CacheStatus::Hit)
    );
}
