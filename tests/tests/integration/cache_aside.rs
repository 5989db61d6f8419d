//! The cache-aside policy against real Redis and the one-node Redis Cluster: every test runs
//! twice, `standalone::…` and `cluster::…`, each under its own key prefix.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use oes_domain::cache::{CacheAside, CacheKey, CacheSettings, CacheStatus};
use oes_domain::exam::ExamId;
use oes_domain::user::UserId;
use oes_tests::{Redis, cache_policy, on_both_redis, unique_prefix};
use redis::AsyncCommands;

on_both_redis!(
    one_hundred_concurrent_requests_for_one_uncached_key_cause_one_load,
    concurrent_misses_in_two_containers_cause_one_load,
    a_miss_fills_the_cache_and_the_next_read_hits_without_loading,
    absent_items_are_cached_briefly_so_a_404_storm_reads_the_store_once,
    a_write_invalidates_so_the_next_read_sees_it,
    invalidating_the_exam_list_drops_every_page_and_nothing_else,
    a_load_that_raced_a_write_does_not_cache_the_value_from_before_it,
    clear_all_makes_every_entry_miss_in_every_container,
    values_expire_with_the_ttl_of_their_kind_plus_jitter,
);

fn policy(redis: Redis) -> CacheAside {
    cache_policy(redis, &unique_prefix("t-aside"), CacheSettings::default())
}

/// A store that counts its reads and serves whatever `value` holds.
#[derive(Default)]
struct Store {
    reads: AtomicUsize,
    value: std::sync::Mutex<Option<String>>,
}

impl Store {
    fn with(value: Option<&str>) -> Arc<Self> {
        let store = Self::default();
        store.write(value);
        Arc::new(store)
    }

    fn write(&self, value: Option<&str>) {
        *self.value.lock().unwrap_or_else(|e| e.into_inner()) = value.map(str::to_owned);
    }

    async fn read(&self) -> Result<Option<String>, Infallible> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Ok(self.value.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    /// A slow read, so concurrent requests overlap it.
    async fn slow_read(&self) -> Result<Option<String>, Infallible> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.read().await
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

async fn read(policy: &CacheAside, key: &CacheKey, store: &Store) -> (Option<String>, CacheStatus) {
    policy
        .get_or_load(key, || store.read())
        .await
        .unwrap_or_else(|e| match e {})
}

fn hit(value: &str) -> (Option<String>, CacheStatus) {
    (Some(value.to_owned()), CacheStatus::Hit)
}

fn miss(value: &str) -> (Option<String>, CacheStatus) {
    (Some(value.to_owned()), CacheStatus::Miss)
}

/// Runs `count` concurrent reads of `key` through `policy`, each as its own task.
fn spawn_reads(
    policy: &CacheAside,
    key: &CacheKey,
    store: &Arc<Store>,
    count: usize,
) -> Vec<tokio::task::JoinHandle<(Option<String>, CacheStatus)>> {
    (0..count)
        .map(|_| {
            let (policy, key, store) = (policy.clone(), key.clone(), store.clone());
            tokio::spawn(async move {
                policy
                    .get_or_load(&key, || store.slow_read())
                    .await
                    .unwrap_or_else(|e| match e {})
            })
        })
        .collect()
}

async fn outcomes(
    tasks: Vec<tokio::task::JoinHandle<(Option<String>, CacheStatus)>>,
) -> Vec<(Option<String>, CacheStatus)> {
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("the read task finished"));
    }
    outcomes
}

async fn one_hundred_concurrent_requests_for_one_uncached_key_cause_one_load(redis: Redis) {
    let policy = policy(redis);
    let key = policy.keys().exam(&ExamId::generate());
    let store = Store::with(Some("exam"));
    let results = outcomes(spawn_reads(&policy, &key, &store, 100)).await;
    assert_eq!(store.reads(), 1, "one store read for 100 concurrent misses");
    assert_eq!(results.iter().filter(|r| **r == miss("exam")).count(), 1);
    assert_eq!(results.iter().filter(|r| **r == hit("exam")).count(), 99);
}

async fn concurrent_misses_in_two_containers_cause_one_load(redis: Redis) {
    // Two policies over one prefix: two Lambda containers, sharing only Redis.
    let prefix = unique_prefix("t-containers");
    let first = cache_policy(redis, &prefix, CacheSettings::default());
    let second = cache_policy(redis, &prefix, CacheSettings::default());
    let key = first.keys().exam(&ExamId::generate());
    let store = Store::with(Some("exam"));
    let mut tasks = spawn_reads(&first, &key, &store, 50);
    tasks.extend(spawn_reads(&second, &key, &store, 50));
    let results = outcomes(tasks).await;
    assert_eq!(
        store.reads(),
        1,
        "the lock kept the second container off the store"
    );
    assert!(
        results
            .iter()
            .all(|(value, _)| value.as_deref() == Some("exam"))
    );
}

async fn a_miss_fills_the_cache_and_the_next_read_hits_without_loading(redis: Redis) {
    let policy = policy(redis);
    let key = policy.keys().user_profile(&UserId::generate());
    let store = Store::with(Some("ada"));
    assert_eq!(read(&policy, &key, &store).await, miss("ada"));
    store.write(Some("changed behind the cache's back"));
    assert_eq!(read(&policy, &key, &store).await, hit("ada"));
    assert_eq!(store.reads(), 1);
}

async fn absent_items_are_cached_briefly_so_a_404_storm_reads_the_store_once(redis: Redis) {
    let policy = policy(redis);
    let key = policy.keys().exam(&ExamId::generate());
    let store = Store::with(None);
    assert_eq!(read(&policy, &key, &store).await, (None, CacheStatus::Miss));
    for _ in 0..20 {
        assert_eq!(read(&policy, &key, &store).await, (None, CacheStatus::Hit));
    }
    assert_eq!(store.reads(), 1);
    let at = policy.locate(&key).await.expect("version");
    let ttl: i64 = connection(redis).await.pttl(&at.key).await.expect("PTTL");
    let negative = policy.settings().ttls.negative.as_millis();
    assert!(
        ttl > 0 && u128::try_from(ttl).unwrap_or(0) <= negative * 11 / 10,
        "cached for the short negative TTL: {ttl} ms"
    );
}

async fn a_write_invalidates_so_the_next_read_sees_it(redis: Redis) {
    let policy = policy(redis);
    let key = policy.keys().exam(&ExamId::generate());
    let store = Store::with(Some("draft"));
    assert_eq!(read(&policy, &key, &store).await, miss("draft"));
    assert_eq!(read(&policy, &key, &store).await, hit("draft"));
    store.write(Some("published"));
    policy.invalidate(std::slice::from_ref(&key)).await;
    assert_eq!(read(&policy, &key, &store).await, miss("published"));
    assert_eq!(read(&policy, &key, &store).await, hit("published"));
}

async fn invalidating_the_exam_list_drops_every_page_and_nothing_else(redis: Redis) {
    let policy = policy(redis);
    let keys = policy.keys();
    let pages = [
        keys.exam_list_page(20),
        keys.exam_list_page(5),
        keys.exam_list_page(100),
    ];
    let exam = keys.exam(&ExamId::generate());
    let store = Store::with(Some("v1"));
    for key in pages.iter().chain([&exam]) {
        assert_eq!(read(&policy, key, &store).await, miss("v1"));
    }
    store.write(Some("v2"));
    policy.invalidate_exam_list().await;
    for page in &pages {
        assert_eq!(read(&policy, page, &store).await, miss("v2"), "{page:?}");
    }
    assert_eq!(
        read(&policy, &exam, &store).await,
        hit("v1"),
        "other kinds stay"
    );
}

async fn a_load_that_raced_a_write_does_not_cache_the_value_from_before_it(redis: Redis) {
    let policy = policy(redis);
    let key = policy.keys().exam(&ExamId::generate());
    let store = Store::with(Some("old"));
    let raced = policy
        .get_or_load(&key, || async {
            let before_the_write = store.read().await;
            // Meanwhile, a writer updates the store and invalidates.
            store.write(Some("new"));
            policy.invalidate(std::slice::from_ref(&key)).await;
            before_the_write
        })
        .await
        .unwrap_or_else(|e| match e {});
    assert_eq!(raced, miss("old"));
    assert_eq!(read(&policy, &key, &store).await, miss("new"));
    assert_eq!(read(&policy, &key, &store).await, hit("new"));
}

async fn clear_all_makes_every_entry_miss_in_every_container(redis: Redis) {
    let prefix = unique_prefix("t-clear");
    let this = cache_policy(redis, &prefix, CacheSettings::default());
    let other = cache_policy(
        redis,
        &prefix,
        CacheSettings {
            version_refresh: Duration::ZERO,
            ..CacheSettings::default()
        },
    );
    let keys = [
        this.keys().exam(&ExamId::generate()),
        this.keys().exam_list_page(20),
        this.keys().user_exams(&UserId::generate()),
    ];
    let store = Store::with(Some("v1"));
    for key in &keys {
        assert_eq!(read(&this, key, &store).await, miss("v1"));
        assert_eq!(read(&other, key, &store).await, hit("v1"));
    }
    assert!(this.clear_all().await);
    store.write(Some("v2"));
    for key in &keys {
        assert_eq!(read(&this, key, &store).await, miss("v2"), "{key:?}");
        assert_eq!(read(&other, key, &store).await, hit("v2"), "{key:?}");
    }
}

async fn values_expire_with_the_ttl_of_their_kind_plus_jitter(redis: Redis) {
    let policy = policy(redis);
    let keys = [
        policy.keys().exam(&ExamId::generate()),
        policy.keys().user_profile(&UserId::generate()),
        policy.keys().user_exams(&UserId::generate()),
        policy.keys().exam_list_page(10),
    ];
    let store = Store::with(Some("{\"title\":\"Rust\"}"));
    let mut connection = connection(redis).await;
    for key in &keys {
        read(&policy, key, &store).await;
        let at = policy.locate(key).await.expect("version");
        let cached: Option<String> = connection.hget(&at.key, &at.field).await.expect("HGET");
        assert_eq!(
            cached.as_deref(),
            Some("\"{\\\"title\\\":\\\"Rust\\\"}\""),
            "JSON"
        );
        let ttl =
            u128::try_from(connection.pttl::<_, i64>(&at.key).await.expect("PTTL")).unwrap_or(0);
        let kind_ttl = policy.settings().ttls.of(key.kind()).as_millis();
        assert!(
            (kind_ttl * 9 / 10 - 1_000..=kind_ttl * 11 / 10).contains(&ttl),
            "{:?}: {ttl} ms for a TTL of {kind_ttl} ms",
            key.kind()
        );
    }
}

async fn connection(redis: Redis) -> redis::aio::MultiplexedConnection {
    // A plain connection reaches every key: the cluster has one node, owning every slot.
    redis::Client::open(redis.url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}
