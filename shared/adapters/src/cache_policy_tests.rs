//! The policy over the in-memory cache, and over a Redis that never answers. The same behaviour
//! against real Redis and Redis Cluster is in `tests/tests/integration/cache_aside.rs`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use crate::memory::MemoryCache;
use oes_domain::cache::*;
use oes_domain::exam::ExamId;
use oes_domain::ports::{Cache, CacheError, Fill, Lookup};

fn policy_over(cache: Arc<dyn Cache>) -> CacheAside {
    CacheAside::new(cache, CacheKeys::new("t"), CacheSettings::default())
}

fn policy() -> CacheAside {
    policy_over(Arc::new(MemoryCache::default()))
}

fn exam_key(policy: &CacheAside) -> CacheKey {
    policy.keys().exam(&ExamId::from_trusted("e1"))
}

/// What `policy` reads under `key`, loading `stored` on a miss.
async fn read(
    policy: &CacheAside,
    key: &CacheKey,
    stored: u8,
) -> Option<(Option<u8>, CacheStatus)> {
    policy
        .get_or_load(key, || async { Ok::<_, Infallible>(Some(stored)) })
        .await
        .ok()
}

/// A store read that counts how often it runs.
#[derive(Default)]
struct Store(AtomicUsize);

impl Store {
    async fn read<T>(&self, value: Option<T>) -> Result<Option<T>, Infallible> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(value)
    }

    fn reads(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[tokio::test]
async fn a_miss_loads_once_then_hits_until_invalidated() {
    let policy = policy();
    let key = exam_key(&policy);
    let store = Store::default();
    let first = policy.get_or_load(&key, || store.read(Some(42u32))).await;
    let second = policy.get_or_load(&key, || store.read(Some(42u32))).await;
    assert_eq!(first.ok(), Some((Some(42), CacheStatus::Miss)));
    assert_eq!(second.ok(), Some((Some(42), CacheStatus::Hit)));
    assert_eq!(store.reads(), 1);

    policy.invalidate(std::slice::from_ref(&key)).await;
    let third = policy.get_or_load(&key, || store.read(Some(43u32))).await;
    assert_eq!(third.ok(), Some((Some(43), CacheStatus::Miss)));
}

#[tokio::test]
async fn absent_items_are_cached_as_a_short_negative_entry() {
    let policy = policy();
    let key = exam_key(&policy);
    let store = Store::default();
    let first = policy.get_or_load(&key, || store.read(None::<u32>)).await;
    let second = policy.get_or_load(&key, || store.read(Some(7u32))).await;
    assert_eq!(first.ok(), Some((None, CacheStatus::Miss)));
    assert_eq!(second.ok(), Some((None, CacheStatus::Hit)));
    assert_eq!(store.reads(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_negative_entry_expires_after_the_negative_ttl() {
    let policy = policy();
    let key = exam_key(&policy);
    let store = Store::default();
    let first = policy.get_or_load(&key, || store.read(None::<u32>)).await;
    assert_eq!(first.ok(), Some((None, CacheStatus::Miss)));
    // Cached for the negative TTL less its jitter (at most a tenth) ...
    let negative = policy.settings().ttls.negative;
    let shortest = negative * 9 / 10 - Duration::from_secs(1);
    tokio::time::advance(shortest).await;
    let still = policy.get_or_load(&key, || store.read(Some(7u32))).await;
    assert_eq!(still.ok(), Some((None, CacheStatus::Hit)));
    // ... and gone after it plus its jitter.
    tokio::time::advance(negative + Duration::from_secs(4) - shortest).await;
    let later = policy.get_or_load(&key, || store.read(Some(7u32))).await;
    assert_eq!(later.ok(), Some((Some(7), CacheStatus::Miss)));
}

#[tokio::test]
async fn a_load_that_raced_a_write_does_not_cache_the_value_from_before_the_write() {
    let policy = policy();
    let key = exam_key(&policy);
    // The store is read, then a write lands and invalidates before the value is cached.
    let raced = policy
        .get_or_load(&key, || async {
            let before_the_write = Some("old".to_owned());
            policy.invalidate(std::slice::from_ref(&key)).await;
            Ok::<_, Infallible>(before_the_write)
        })
        .await;
    assert_eq!(
        raced.ok(),
        Some((Some("old".to_owned()), CacheStatus::Miss))
    );
    let next = policy
        .get_or_load(&key, || async {
            Ok::<_, Infallible>(Some("new".to_owned()))
        })
        .await;
    assert_eq!(next.ok(), Some((Some("new".to_owned()), CacheStatus::Miss)));
}

#[tokio::test]
async fn concurrent_misses_in_one_process_cause_one_load() {
    let policy = policy();
    let key = exam_key(&policy);
    let store = Store::default();
    let reads = (0..50).map(|_| {
        policy.get_or_load(&key, || async {
            tokio::task::yield_now().await;
            store.read(Some(1u8)).await
        })
    });
    let results = futures_util::future::join_all(reads).await;
    assert_eq!(store.reads(), 1);
    let misses = results
        .iter()
        .filter(|r| matches!(r, Ok((Some(1), CacheStatus::Miss))))
        .count();
    let hits = results
        .iter()
        .filter(|r| matches!(r, Ok((Some(1), CacheStatus::Hit))))
        .count();
    assert_eq!((misses, hits), (1, 49));
}

#[tokio::test]
async fn a_loader_error_is_returned_and_nothing_is_cached() {
    let policy = policy();
    let key = exam_key(&policy);
    let failed = policy
        .get_or_load(&key, || async { Err::<Option<u8>, _>("store down") })
        .await;
    assert_eq!(failed, Err("store down"));
    let next = policy
        .get_or_load(&key, || async { Ok::<_, Infallible>(Some(1u8)) })
        .await;
    assert_eq!(next.ok(), Some((Some(1), CacheStatus::Miss)));
}

#[tokio::test]
async fn clear_all_makes_every_entry_miss() {
    let policy = policy();
    let exam = exam_key(&policy);
    let page = policy.keys().exam_list_page(20);
    let load = || async { Ok::<_, Infallible>(Some(1u8)) };
    let _ = policy.get_or_load(&exam, load).await;
    let _ = policy.get_or_load(&page, load).await;
    assert!(policy.clear_all().await);
    assert_eq!(
        policy.get_or_load(&exam, load).await.ok(),
        Some((Some(1), CacheStatus::Miss))
    );
    assert_eq!(
        policy.get_or_load(&page, load).await.ok(),
        Some((Some(1), CacheStatus::Miss))
    );
}

#[tokio::test(start_paused = true)]
async fn another_process_sees_clear_all_within_the_version_refresh() {
    let shared: Arc<dyn Cache> = Arc::new(MemoryCache::default());
    let (here, there) = (policy_over(shared.clone()), policy_over(shared));
    let key = exam_key(&here);
    let load = || async { Ok::<_, Infallible>(Some(1u8)) };
    let _ = here.get_or_load(&key, load).await;
    assert_eq!(
        here.get_or_load(&key, load).await.ok(),
        Some((Some(1), CacheStatus::Hit))
    );
    assert!(there.clear_all().await);
    tokio::time::advance(here.settings().version_refresh).await;
    assert_eq!(
        here.get_or_load(&key, load).await.ok(),
        Some((Some(1), CacheStatus::Miss))
    );
}

#[tokio::test]
async fn a_write_elsewhere_invalidates_the_namespace_this_process_still_uses() {
    let shared: Arc<dyn Cache> = Arc::new(MemoryCache::default());
    let (reader, writer) = (policy_over(shared.clone()), policy_over(shared));
    let key = exam_key(&reader);
    let _ = read(&reader, &key, 1).await;
    // The writer still uses the old namespace when someone clears the cache, then writes.
    let _ = read(&writer, &key, 1).await;
    assert!(reader.clear_all().await);
    let _ = read(&reader, &key, 1).await;
    writer.invalidate(std::slice::from_ref(&key)).await;
    assert_eq!(
        read(&reader, &key, 2).await,
        Some((Some(2), CacheStatus::Miss)),
        "the entry in the new namespace was invalidated too"
    );
}

/// A Redis that accepts connections and never answers.
struct Hung;

#[async_trait]
impl Cache for Hung {
    async fn get(&self, _: &str, _: &str) -> Result<Lookup, CacheError> {
        std::future::pending().await
    }
    async fn fill(&self, _: &Fill<'_>) -> Result<bool, CacheError> {
        std::future::pending().await
    }
    async fn invalidate(&self, _: &str, _: &str, _: Duration) -> Result<(), CacheError> {
        std::future::pending().await
    }
    async fn lock_or_read(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: Duration,
    ) -> Result<(Lookup, bool), CacheError> {
        std::future::pending().await
    }
    async fn counter(&self, _: &str) -> Result<u64, CacheError> {
        std::future::pending().await
    }
    async fn increment(&self, _: &str) -> Result<u64, CacheError> {
        std::future::pending().await
    }
    async fn hit(&self, _: &str, _: Duration) -> Result<(u64, Duration), CacheError> {
        std::future::pending().await
    }
    async fn give_back(&self, _: &str) -> Result<(), CacheError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_hung_redis_costs_the_timeout_only_until_the_breaker_opens() {
    let policy = policy_over(Arc::new(Hung));
    let key = exam_key(&policy);
    let settings = *policy.settings();
    let mut slow = 0;
    for _ in 0..20 {
        let started = tokio::time::Instant::now();
        let read = policy
            .get_or_load(&key, || async { Ok::<_, Infallible>(Some(5u8)) })
            .await;
        assert_eq!(read.ok(), Some((Some(5), CacheStatus::Bypass)));
        if started.elapsed() >= settings.timeout {
            slow += 1;
        }
    }
    assert_eq!(
        slow, settings.breaker_failures,
        "only the calls before the breaker opened waited"
    );
    policy.invalidate(std::slice::from_ref(&key)).await;
    assert!(!policy.clear_all().await, "clear_all says it failed");
}

/// A cache that fails every call while `failing`, its namespace version's reads while
/// `version_failing`, and otherwise is `inner`.
#[derive(Default)]
struct Flaky {
    inner: Arc<MemoryCache>,
    failing: std::sync::atomic::AtomicBool,
    version_failing: std::sync::atomic::AtomicBool,
}

impl Flaky {
    fn over(inner: Arc<MemoryCache>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            ..Self::default()
        })
    }

    fn check(&self) -> Result<(), CacheError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(CacheError {
                context: "test: connection reset",
                source: "reset".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Cache for Flaky {
    async fn get(&self, key: &str, field: &str) -> Result<Lookup, CacheError> {
        self.check()?;
        self.inner.get(key, field).await
    }
    async fn fill(&self, fill: &Fill<'_>) -> Result<bool, CacheError> {
        self.check()?;
        self.inner.fill(fill).await
    }
    async fn invalidate(
        &self,
        key: &str,
        generation: &str,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        self.check()?;
        self.inner.invalidate(key, generation, ttl).await
    }
    async fn lock_or_read(
        &self,
        key: &str,
        field: &str,
        lock: &str,
        ttl: Duration,
    ) -> Result<(Lookup, bool), CacheError> {
        self.check()?;
        self.inner.lock_or_read(key, field, lock, ttl).await
    }
    async fn counter(&self, key: &str) -> Result<u64, CacheError> {
        self.check()?;
        if self.version_failing.load(Ordering::SeqCst) {
            return Err(CacheError {
                context: "test: the version's slot does not answer",
                source: "timeout".into(),
            });
        }
        self.inner.counter(key).await
    }
    async fn increment(&self, key: &str) -> Result<u64, CacheError> {
        self.check()?;
        self.inner.increment(key).await
    }
    async fn hit(&self, key: &str, window: Duration) -> Result<(u64, Duration), CacheError> {
        self.check()?;
        self.inner.hit(key, window).await
    }
    async fn give_back(&self, key: &str) -> Result<(), CacheError> {
        self.check()?;
        self.inner.give_back(key).await
    }
}

/// A breaker is one process's: while it is open there, the other processes still read Redis, so
/// a write there must still drop what it changed, or they serve the old value until its TTL.
#[tokio::test]
async fn a_write_invalidates_even_while_its_process_breaker_is_open() {
    let shared = Arc::new(MemoryCache::default());
    let writer_cache = Flaky::over(shared.clone());
    let reader = policy_over(shared);
    let writer = policy_over(writer_cache.clone());
    let key = exam_key(&reader);
    let _ = read(&reader, &key, 1).await;
    // A blip on the writer's connection opens its breaker.
    writer_cache.failing.store(true, Ordering::SeqCst);
    for _ in 0..writer.settings().breaker_failures {
        let _ = read(&writer, &key, 1).await;
    }
    writer_cache.failing.store(false, Ordering::SeqCst);
    // The store is written, then the cache told.
    writer.invalidate(std::slice::from_ref(&key)).await;
    assert_eq!(
        read(&reader, &key, 2).await,
        Some((Some(2), CacheStatus::Miss)),
        "the reader sees the write"
    );
}

/// After a clear, a process reads the namespace it knew until its version refresh is due: a
/// write made meanwhile by a process already in the new namespace drops the entry in the one
/// before it too.
#[tokio::test]
async fn a_write_just_after_a_clear_drops_what_a_process_still_reads_in_the_namespace_before() {
    let shared: Arc<dyn Cache> = Arc::new(MemoryCache::default());
    let reader = policy_over(shared.clone());
    let (writer, admin) = (policy_over(shared.clone()), policy_over(shared));
    let key = exam_key(&reader);
    let _ = read(&reader, &key, 1).await;
    assert!(admin.clear_all().await);
    writer.invalidate(std::slice::from_ref(&key)).await;
    assert_eq!(
        read(&reader, &key, 2).await,
        Some((Some(2), CacheStatus::Miss)),
        "the reader, still in the namespace before the clear, sees the write"
    );
}

/// A write whose process cannot read the namespace version now (that key's slot, or Redis,
/// not answering) drops what it changed where it last knew the namespace to be — perhaps not
/// where readers are, after a clear — and says so: it reports the invalidation failed (for an
/// operator's tool; each drop is counted as an error too). Before, it reported success.
#[tokio::test]
async fn a_write_that_cannot_read_the_namespace_version_says_its_invalidation_failed() {
    let shared = Arc::new(MemoryCache::default());
    let writer_cache = Flaky::over(shared.clone());
    let writer = policy_over(writer_cache.clone());
    let (reader, admin) = (policy_over(shared.clone()), policy_over(shared));
    let key = exam_key(&reader);
    let _ = read(&writer, &key, 1).await;
    assert!(admin.clear_all().await);
    let _ = read(&reader, &key, 1).await;
    writer_cache.version_failing.store(true, Ordering::SeqCst);
    assert!(
        !writer.invalidate(std::slice::from_ref(&key)).await,
        "the namespace readers use is not known"
    );
}

/// A read whose process cannot read the namespace version now, and last read it two clears
/// ago, goes to the store: the namespace it knew is one no write drops entries in any more
/// (a write drops the current one and the one before). Before, it read there and served what
/// was cached before the write.
#[tokio::test]
async fn a_read_that_cannot_read_the_namespace_version_goes_to_the_store() {
    let shared = Arc::new(MemoryCache::default());
    let reader_cache = Flaky::over(shared.clone());
    let settings = CacheSettings {
        version_refresh: Duration::ZERO,
        ..CacheSettings::default()
    };
    let reader = CacheAside::new(reader_cache.clone(), CacheKeys::new("t"), settings);
    let (writer, admin) = (policy_over(shared.clone()), policy_over(shared));
    let key = exam_key(&reader);
    let _ = read(&reader, &key, 1).await;
    assert!(admin.clear_all().await);
    assert!(admin.clear_all().await);
    // The store is written, then the cache told.
    writer.invalidate(std::slice::from_ref(&key)).await;
    reader_cache.version_failing.store(true, Ordering::SeqCst);
    assert_eq!(
        read(&reader, &key, 2).await,
        Some((Some(2), CacheStatus::Bypass)),
    );
}

/// A fill is refused once the entry was invalidated since its first read, which the entry's
/// generation stamp tells — and a "not found" fill shortens the stamp's life to the negative
/// TTL. A load that took longer than that (a short `CacheTtlNegativeSeconds`, a slow store
/// read) found the stamp gone and cached what it read before the delete, for the exam's TTL,
/// though Redis had taken the delete's invalidation. Such a load is not cached.
#[tokio::test(start_paused = true)]
async fn a_load_that_outlasts_the_negative_ttl_is_not_cached_over_a_delete() {
    let shared: Arc<dyn Cache> = Arc::new(MemoryCache::default());
    let settings = CacheSettings {
        ttls: CacheTtls {
            negative: Duration::from_secs(2),
            ..CacheTtls::default()
        },
        ..CacheSettings::default()
    };
    let over =
        |cache: &Arc<dyn Cache>| CacheAside::new(cache.clone(), CacheKeys::new("t"), settings);
    let (slow, other) = (over(&shared), over(&shared));
    let key = exam_key(&slow);
    let read = slow
        .get_or_load(&key, || async {
            // Read from the store; meanwhile the item is deleted, its entry invalidated, and
            // read as absent by another container.
            other.invalidate(std::slice::from_ref(&key)).await;
            let absent = other
                .get_or_load(&key, || async { Ok::<_, Infallible>(None::<String>) })
                .await;
            assert_eq!(absent.ok(), Some((None, CacheStatus::Miss)));
            tokio::time::sleep(Duration::from_secs(4)).await;
            Ok::<_, Infallible>(Some("before the delete".to_owned()))
        })
        .await;
    assert_eq!(
        read.ok(),
        Some((Some("before the delete".to_owned()), CacheStatus::Miss))
    );
    let after = other
        .get_or_load(&key, || async { Ok::<_, Infallible>(None::<String>) })
        .await;
    assert_eq!(
        after.ok(),
        Some((None, CacheStatus::Miss)),
        "the delete stands"
    );
}
