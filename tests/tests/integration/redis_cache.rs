//! The contract of the `Cache` port that the cache-aside policy and the rate limiter rely on,
//! run against the in-memory twin and against the Redis adapter on real Redis and on the
//! one-node Redis Cluster.
//!
//! - One async body per property, taking `&dyn Cache` and observing it through the port only
//!   (expiry is seen by waiting for it: the TTLs are a few hundred milliseconds, and no body
//!   waits more than about a second in all).
//! - [`on_every_cache!`] turns each body into three tests: `in_memory::<body>` over
//!   `MemoryCache`, `standalone::<body>` and `cluster::<body>` over `RedisCache`.
//! - `redis_only::{standalone,cluster}::<test>`: what only the Redis adapter does (fail fast when
//!   Redis is unreachable).

use std::time::Duration;

use oes_domain::ports::{Cache, Fill, Lookup};
use oes_tests::{on_every_cache, unique_prefix};
use tokio::time::sleep;

on_every_cache!(
    values_are_fields_of_an_entry_that_keeps_its_soonest_expiry,
    a_fill_is_refused_once_the_entry_was_invalidated_since_it_was_read,
    an_invalidation_is_forgotten_when_its_ttl_ends,
    the_stampede_lock_is_taken_once_and_released_by_the_fill,
    a_stampede_lock_expires_by_itself,
    counters_start_at_zero_and_count_up,
    a_window_counts_hits_until_it_ends,
    a_hit_given_back_is_not_counted_and_a_window_never_goes_below_zero,
);

/// An entry and its lock, hash-tagged into one slot as the policy's keys are.
fn entry() -> (String, String) {
    let entry = format!("{{{}}}", unique_prefix("t-adapter"));
    let lock = format!("{entry}:lock:v");
    (entry, lock)
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

async fn value(cache: &dyn Cache, entry: &str, field: &str) -> Option<String> {
    cache.get(entry, field).await.expect("get").value
}

async fn values_are_fields_of_an_entry_that_keeps_its_soonest_expiry(cache: &dyn Cache) {
    let (entry, lock) = entry();
    assert_eq!(
        cache.get(&entry, "v").await.expect("get"),
        Lookup::default()
    );
    let soon = Fill {
        ttl: Duration::from_millis(600),
        ..fill(&entry, &lock, "v", "{\"a\":1}")
    };
    assert!(cache.fill(&soon).await.expect("fill"));
    let found = cache.get(&entry, "v").await.expect("get");
    assert_eq!(found.value.as_deref(), Some("{\"a\":1}"));
    assert_eq!(found.generation, None);

    let longer = Fill {
        ttl: Duration::from_secs(3600),
        ..fill(&entry, &lock, "p:2", "[]")
    };
    assert!(cache.fill(&longer).await.expect("fill"));
    let empty = fill(&entry, &lock, "p:3", "");
    assert!(cache.fill(&empty).await.expect("fill"));
    assert_eq!(
        value(cache, &entry, "p:3").await.as_deref(),
        Some(""),
        "an empty value (a cached absent item) is not a missing one"
    );
    assert_eq!(value(cache, &entry, "p:2").await.as_deref(), Some("[]"));
    assert_eq!(value(cache, &entry, "absent").await, None);

    // Another entry, long-lived until a shorter-lived field joins it.
    let (other, other_lock) = self::entry();
    assert!(
        cache
            .fill(&fill(&other, &other_lock, "p:1", "[1]"))
            .await
            .expect("fill")
    );
    let shorter = Fill {
        ttl: Duration::from_millis(600),
        ..fill(&other, &other_lock, "p:2", "[2]")
    };
    assert!(cache.fill(&shorter).await.expect("fill"));
    assert_eq!(value(cache, &other, "p:1").await.as_deref(), Some("[1]"));

    sleep(Duration::from_millis(800)).await;
    for field in ["v", "p:2", "p:3"] {
        assert_eq!(
            cache.get(&entry, field).await.expect("get"),
            Lookup::default(),
            "{field}: later, longer-lived fields do not extend the entry"
        );
    }
    for field in ["p:1", "p:2"] {
        assert_eq!(
            cache.get(&other, field).await.expect("get"),
            Lookup::default(),
            "{field}: a shorter-lived field shortens the entry"
        );
    }
}

async fn a_fill_is_refused_once_the_entry_was_invalidated_since_it_was_read(cache: &dyn Cache) {
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
    let elsewhere = Fill {
        seen: Some("gen-0"),
        ..fill(&entry, &lock, "v", "stale")
    };
    assert!(
        !cache.fill(&elsewhere).await.expect("fill"),
        "read under another generation: refused"
    );
    let current = Fill {
        seen: Some("gen-1"),
        ..fill(&entry, &lock, "v", "fresh")
    };
    assert!(cache.fill(&current).await.expect("fill"));
    assert_eq!(
        cache.get(&entry, "v").await.expect("get"),
        Lookup {
            generation: Some("gen-1".into()),
            value: Some("fresh".into())
        }
    );

    cache
        .invalidate(&entry, "gen-2", Duration::from_secs(60))
        .await
        .expect("invalidate");
    assert_eq!(
        cache.get(&entry, "v").await.expect("get"),
        Lookup {
            generation: Some("gen-2".into()),
            value: None
        },
        "an invalidation drops every field"
    );
    assert!(
        !cache.fill(&current).await.expect("fill"),
        "read under the previous generation: refused"
    );
}

async fn an_invalidation_is_forgotten_when_its_ttl_ends(cache: &dyn Cache) {
    let (entry, lock) = entry();
    cache
        .invalidate(&entry, "gen-1", Duration::from_millis(400))
        .await
        .expect("invalidate");
    assert!(
        !cache
            .fill(&fill(&entry, &lock, "v", "stale"))
            .await
            .expect("fill"),
        "refused while the generation lives"
    );
    sleep(Duration::from_millis(550)).await;
    assert_eq!(
        cache.get(&entry, "v").await.expect("get"),
        Lookup::default(),
        "the generation has expired"
    );
    assert!(
        cache
            .fill(&fill(&entry, &lock, "v", "fresh"))
            .await
            .expect("fill"),
        "a fill that saw no generation is stored again"
    );
    assert_eq!(value(cache, &entry, "v").await.as_deref(), Some("fresh"));
}

async fn the_stampede_lock_is_taken_once_and_released_by_the_fill(cache: &dyn Cache) {
    let (entry, lock) = entry();
    // Far longer than the test: the lock is free again only if something released it.
    let ttl = Duration::from_secs(60);
    let take = || cache.lock_or_read(&entry, "v", &lock, ttl);
    assert_eq!(take().await.expect("lock"), (Lookup::default(), true));
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
    cache
        .invalidate(&entry, "gen-2", Duration::from_secs(60))
        .await
        .expect("invalidate");
    let (after, taken) = take().await.expect("lock");
    assert_eq!(
        (after.generation.as_deref(), after.value, taken),
        (Some("gen-2"), None, true),
        "the fill released the lock, and the read that found a value did not take it"
    );

    let stale = fill(&entry, &lock, "v", "stale");
    assert!(
        !cache.fill(&stale).await.expect("fill"),
        "read before the invalidation: refused"
    );
    let (_, taken) = take().await.expect("lock");
    assert!(taken, "a refused fill releases the lock too");
    assert_eq!(
        cache
            .lock_or_read(&entry, "other", &lock, ttl)
            .await
            .expect("lock"),
        (
            Lookup {
                generation: Some("gen-2".into()),
                value: None
            },
            false
        ),
        "the lock is the lock, whichever field is read"
    );
}

async fn a_stampede_lock_expires_by_itself(cache: &dyn Cache) {
    let (entry, lock) = entry();
    let ttl = Duration::from_millis(400);
    let take = || cache.lock_or_read(&entry, "v", &lock, ttl);
    assert_eq!(take().await.expect("lock"), (Lookup::default(), true));
    assert_eq!(take().await.expect("lock"), (Lookup::default(), false));
    sleep(Duration::from_millis(550)).await;
    assert_eq!(
        take().await.expect("lock"),
        (Lookup::default(), true),
        "a lock whose holder never filled is taken again once it expires"
    );
    assert_eq!(take().await.expect("lock"), (Lookup::default(), false));
}

async fn counters_start_at_zero_and_count_up(cache: &dyn Cache) {
    let key = unique_prefix("t-counter");
    let other = unique_prefix("t-counter");
    assert_eq!(cache.counter(&key).await.expect("counter"), 0);
    assert_eq!(cache.increment(&key).await.expect("incr"), 1);
    assert_eq!(cache.increment(&key).await.expect("incr"), 2);
    assert_eq!(cache.counter(&key).await.expect("counter"), 2);
    assert_eq!(
        cache.counter(&other).await.expect("counter"),
        0,
        "counters are independent"
    );
    assert_eq!(cache.increment(&other).await.expect("incr"), 1);
    assert_eq!(cache.counter(&key).await.expect("counter"), 2);
}

async fn a_window_counts_hits_until_it_ends(cache: &dyn Cache) {
    let key = unique_prefix("t-window");
    let other = unique_prefix("t-window");
    let window = Duration::from_millis(400);
    assert_eq!(
        cache.hit(&key, window).await.expect("hit"),
        (1, window),
        "the first hit starts a whole window"
    );
    sleep(Duration::from_millis(150)).await;
    let (count, left) = cache.hit(&key, window).await.expect("hit");
    assert_eq!(count, 2);
    assert!(
        !left.is_zero() && left <= Duration::from_millis(250),
        "the window is not restarted by later hits: {left:?} left"
    );
    let (count, again) = cache.hit(&key, window).await.expect("hit");
    assert_eq!(count, 3);
    assert!(again <= left, "{again:?} after {left:?}");
    assert_eq!(
        cache.hit(&other, window).await.expect("hit"),
        (1, window),
        "windows are independent"
    );

    sleep(Duration::from_millis(300)).await;
    assert_eq!(
        cache.hit(&key, window).await.expect("hit"),
        (1, window),
        "the window has ended: the count starts over in a new one"
    );
}

async fn a_hit_given_back_is_not_counted_and_a_window_never_goes_below_zero(cache: &dyn Cache) {
    let key = unique_prefix("t-give-back");
    let window = Duration::from_secs(60);
    for _ in 0..3 {
        cache.hit(&key, window).await.expect("hit");
    }
    cache.give_back(&key).await.expect("given back");
    let (count, left) = cache.hit(&key, window).await.expect("hit");
    assert_eq!(count, 3, "the hit given back is not counted");
    assert!(
        left <= window && left > Duration::from_secs(50),
        "the window kept its end: {left:?}"
    );
    for _ in 0..5 {
        cache.give_back(&key).await.expect("given back");
    }
    assert_eq!(
        cache.hit(&key, window).await.expect("hit"),
        (1, window),
        "not below zero; and a hit at zero starts a window, as a first hit does"
    );
    let absent = unique_prefix("t-give-back");
    cache
        .give_back(&absent)
        .await
        .expect("nothing to give back");
    assert_eq!(
        cache.hit(&absent, window).await.expect("hit"),
        (1, window),
        "giving back where nothing was counted starts no window"
    );
}

mod redis_only {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use oes_domain::cache::{CacheSettings, CacheStatus};
    use oes_domain::exam::ExamId;
    use oes_tests::{Redis, cache_policy_at, on_both_redis, unique_prefix};

    on_both_redis!(reads_fall_through_to_the_store_quickly_when_redis_is_unreachable);

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
}
