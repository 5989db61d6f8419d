//! The Redis cache adapter against real Redis and the one-node Redis Cluster: the contract of
//! the `Cache` port that the cache-aside policy relies on.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use oes_adapters::redis_cache::RedisCache;
use oes_domain::cache::{CacheSettings, CacheStatus};
use oes_domain::exam::ExamId;
use oes_domain::ports::{Cache, Fill, Lookup};
use oes_tests::{Redis, cache_policy_at, on_both_redis, unique_prefix};
use redis::AsyncCommands;

on_both_redis!(
    values_are_fields_of_an_entry_that_keeps_its_soonest_expiry,
    a_fill_is_refused_once_the_entry_was_invalidated_since_it_was_read,
    the_stampede_lock_is_taken_once_and_released_by_the_fill,
    counters_start_at_zero_and_count_up,
    reads_fall_through_to_the_store_quickly_when_redis_is_unreachable,
);

fn adapter(redis: Redis) -> RedisCache {
    RedisCache::connect(&redis.url(), redis.topology(), Duration::from_secs(2)).expect("url")
}

/// An entry and its lock, hash-tagged into one slot as the policy's keys are.
fn entry() -> (String, String) {
    let entry = format!("{{{}}}", unique_prefix("t-adapter"));
    let lock = format!("{entry}:lock:v");
    (entry, lock)
}

async fn raw(redis: Redis) -> redis::aio::MultiplexedConnection {
    // A plain connection reaches every key: the cluster has one node, owning every slot.
    redis::Client::open(redis.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

fn fill<'a>(entry: &'a str, lock: &'a str, field: &'a str, value: &'a str) -> Fill<'a> {
    Fill {
        key: entry,
        field,
        value,
        ttl: Duration::from_secs(90),
        seen: None,
        lock,
    }
}

async fn values_are_fields_of_an_entry_that_keeps_its_soonest_expiry(redis: Redis) {
    let cache = adapter(redis);
    let (entry, lock) = entry();
    assert_eq!(
        cache.get(&entry, "v").await.expect("get"),
        Lookup::default()
    );
    assert!(
        cache
            .fill(&fill(&entry, &lock, "v", "{\"a\":1}"))
            .await
            .expect("fill")
    );
    let found = cache.get(&entry, "v").await.expect("get");
    assert_eq!(found.value.as_deref(), Some("{\"a\":1}"));
    assert_eq!(found.generation, None);

    let longer = Fill {
        ttl: Duration::from_secs(3600),
        ..fill(&entry, &lock, "p:2", "[]")
    };
    assert!(cache.fill(&longer).await.expect("fill"));
    let ttl: i64 = raw(redis).await.pttl(&entry).await.expect("PTTL");
    assert!(
        (85_000..=90_000).contains(&ttl),
        "a later, longer-lived field does not extend the entry: {ttl}"
    );
    let shorter = Fill {
        ttl: Duration::from_secs(10),
        ..fill(&entry, &lock, "p:3", "")
    };
    assert!(cache.fill(&shorter).await.expect("fill"));
    let ttl: i64 = raw(redis).await.pttl(&entry).await.expect("PTTL");
    assert!((5_000..=10_000).contains(&ttl), "a shorter one does: {ttl}");
    assert_eq!(
        cache
            .get(&entry, "p:3")
            .await
            .expect("get")
            .value
            .as_deref(),
        Some(""),
        "an empty value (a cached absent item) is not a missing one"
    );
}

async fn a_fill_is_refused_once_the_entry_was_invalidated_since_it_was_read(redis: Redis) {
    let cache = adapter(redis);
    let (entry, lock) = entry();
    assert!(
        cache
            .fill(&fill(&entry, &lock, "v", "old"))
            .await
            .expect("fill")
    );
    cache
        .invalidate(&entry, "gen-1", Duration::from_secs(60))
        .await
        .expect("invalidate");
    let after = cache.get(&entry, "v").await.expect("get");
    assert_eq!(
        after,
        Lookup {
            generation: Some("gen-1".into()),
            value: None
        }
    );
    assert!(
        !cache
            .fill(&fill(&entry, &lock, "v", "stale"))
            .await
            .expect("fill"),
        "read before the invalidation: refused"
    );
    let current = Fill {
        seen: Some("gen-1"),
        ..fill(&entry, &lock, "v", "fresh")
    };
    assert!(cache.fill(&current).await.expect("fill"));
    assert_eq!(
        cache.get(&entry, "v").await.expect("get").value.as_deref(),
        Some("fresh")
    );
}

async fn the_stampede_lock_is_taken_once_and_released_by_the_fill(redis: Redis) {
    let cache = adapter(redis);
    let (entry, lock) = entry();
    let ttl = Duration::from_secs(5);
    let take = || cache.lock_or_read(&entry, "v", &lock, ttl);
    assert_eq!(take().await.expect("lock"), (Lookup::default(), true));
    let left: i64 = raw(redis).await.pttl(&lock).await.expect("PTTL");
    assert!((1..=5_000).contains(&left), "locks expire: {left}");
    assert_eq!(
        take().await.expect("lock"),
        (Lookup::default(), false),
        "held"
    );
    cache
        .fill(&fill(&entry, &lock, "v", "1"))
        .await
        .expect("fill");
    let filled = Lookup {
        generation: None,
        value: Some("1".into()),
    };
    assert_eq!(
        take().await.expect("lock"),
        (filled, false),
        "a value to read: no lock needed"
    );
    let lock_left: i64 = raw(redis).await.pttl(&lock).await.expect("PTTL");
    assert_eq!(
        lock_left, -2,
        "the fill released the lock, and nothing took it again"
    );
    cache
        .invalidate(&entry, "gen-2", Duration::from_secs(60))
        .await
        .expect("invalidate");
    let (after, taken) = take().await.expect("lock");
    assert_eq!(
        (after.generation.as_deref(), after.value, taken),
        (Some("gen-2"), None, true)
    );
}

async fn counters_start_at_zero_and_count_up(redis: Redis) {
    let cache = adapter(redis);
    let key = unique_prefix("t-counter");
    assert_eq!(cache.counter(&key).await.expect("counter"), 0);
    assert_eq!(cache.increment(&key).await.expect("incr"), 1);
    assert_eq!(cache.increment(&key).await.expect("incr"), 2);
    assert_eq!(cache.counter(&key).await.expect("counter"), 2);
}

async fn reads_fall_through_to_the_store_quickly_when_redis_is_unreachable(redis: Redis) {
    // A port nothing listens on: every Redis call fails.
    let policy = cache_policy_at(
        "redis://127.0.0.1:1",
        redis.topology(),
        &unique_prefix("t-down"),
        CacheSettings::default(),
    );
    let key = policy.keys().exam(&ExamId::generate());
    let loads = AtomicUsize::new(0);
    let started = Instant::now();
    for _ in 0..5 {
        let (value, status) = policy
            .get_or_load(&key, || async {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, Infallible>(Some(7u8))
            })
            .await
            .expect("never an error");
        assert_eq!((value, status), (Some(7), CacheStatus::Bypass));
    }
    policy.invalidate(std::slice::from_ref(&key)).await;
    assert_eq!(loads.load(Ordering::SeqCst), 5);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}
