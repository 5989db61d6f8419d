//! The Redis cache adapter against a real Redis, and the cache-aside policy when Redis is down.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use oes_shared::adapters::redis_cache::RedisCache;
use oes_shared::cache::{CacheAside, CacheKeys, CacheStatus};
use oes_shared::ports::Cache;
use oes_tests::endpoints;
use redis::AsyncCommands;

fn unique(prefix: &str) -> String {
    format!("{prefix}:{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn values_are_stored_with_their_ttl_and_deleted() {
    let url = endpoints().redis;
    let cache = RedisCache::connect(&url).expect("url");
    let key = unique("t-redis");
    assert_eq!(cache.get(&key).await.expect("get"), None);
    cache
        .set(&key, "{\"a\":1}", Duration::from_secs(90))
        .await
        .expect("set");
    assert_eq!(
        cache.get(&key).await.expect("get").as_deref(),
        Some("{\"a\":1}")
    );
    let mut raw = redis::Client::open(url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let ttl: i64 = raw.pttl(&key).await.expect("PTTL");
    assert!((85_000..=90_000).contains(&ttl), "{ttl}");
    cache
        .delete(std::slice::from_ref(&key))
        .await
        .expect("delete");
    assert_eq!(cache.get(&key).await.expect("get"), None);
}

#[tokio::test]
async fn reads_fall_through_to_the_store_quickly_when_redis_is_unreachable() {
    // A port nothing listens on: every Redis call fails fast.
    let cache = RedisCache::connect("redis://127.0.0.1:1").expect("url");
    let policy = CacheAside::new(Arc::new(cache), CacheKeys::new(&unique("t-down")));
    let loads = AtomicUsize::new(0);
    let started = Instant::now();
    for _ in 0..3 {
        let (value, status) = policy
            .get_or_load("k", Duration::from_secs(60), || async {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok::<_, std::convert::Infallible>(Some(7u8))
            })
            .await
            .expect("never an error");
        assert_eq!((value, status), (Some(7), CacheStatus::Bypass));
    }
    policy.invalidate(&["k".to_owned()]).await;
    assert_eq!(loads.load(Ordering::SeqCst), 3);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}
