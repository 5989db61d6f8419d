//! The cache-aside policy and the cache keys, in one place.
//!
//! Read: cache → hit returns; miss → load from the store → write the cache with a TTL (plus
//! jitter, so keys written together do not expire together) → return. Write: the caller writes
//! the store first, then calls [`CacheAside::invalidate`] with every key that can hold the changed
//! data. A cache error never fails a request: reads fall through to the store, and a failed
//! invalidation is logged and bounded by the TTL.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ports::Cache;
use crate::user::UserId;

/// Builds every cache key, under a versioned namespace (`<prefix>:v1:`).
#[derive(Debug, Clone)]
pub struct CacheKeys {
    namespace: String,
}

impl CacheKeys {
    /// Keys under `prefix` (e.g. `oes`, or a per-test prefix).
    pub fn new(prefix: &str) -> Self {
        Self {
            namespace: format!("{prefix}:v1"),
        }
    }

    /// The profile of one user.
    pub fn user_profile(&self, id: &UserId) -> String {
        format!("{}:user_profile:{id}", self.namespace)
    }
}

/// Where a read was served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// From the cache.
    Hit,
    /// From the store (and written to the cache).
    Miss,
    /// From the store because the cache failed.
    Bypass,
}

impl CacheStatus {
    /// The value of the `x-cache` response header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Bypass => "bypass",
        }
    }
}

/// The cache-aside policy over a [`Cache`].
#[derive(Clone)]
pub struct CacheAside {
    cache: Arc<dyn Cache>,
    keys: CacheKeys,
}

impl CacheAside {
    /// The policy over `cache`, with keys from `keys`.
    pub fn new(cache: Arc<dyn Cache>, keys: CacheKeys) -> Self {
        Self { cache, keys }
    }

    /// The key builder.
    pub fn keys(&self) -> &CacheKeys {
        &self.keys
    }

    /// Returns the value under `key`, loading it with `load` on a miss and caching what it
    /// returns for `ttl` (±10 %). `None` from the loader is not cached.
    pub async fn get_or_load<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        load: F,
    ) -> Result<(Option<T>, CacheStatus), E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let mut status = CacheStatus::Miss;
        match self.cache.get(key).await {
            Ok(Some(raw)) => match serde_json::from_str(&raw) {
                Ok(value) => return Ok((Some(value), CacheStatus::Hit)),
                // A value this build cannot read (an older shape): treat as a miss, overwrite.
                Err(error) => tracing::warn!(key, %error, "unreadable cache entry"),
            },
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(key, error = %error, "cache read failed; reading the store");
                status = CacheStatus::Bypass;
            }
        }
        let value = load().await?;
        if let (Some(value), CacheStatus::Miss) = (&value, status) {
            match serde_json::to_string(value) {
                Ok(raw) => {
                    if let Err(error) = self.cache.set(key, &raw, jittered(ttl)).await {
                        tracing::warn!(key, error = %error, "cache write failed");
                    }
                }
                Err(error) => tracing::warn!(key, %error, "value not cacheable"),
            }
        }
        Ok((value, status))
    }

    /// Removes `keys` after a store write. Failure is logged, not returned: the TTL bounds how
    /// long a stale value can live.
    pub async fn invalidate(&self, keys: &[String]) {
        if let Err(error) = self.cache.delete(keys).await {
            tracing::error!(?keys, error = %error, "cache invalidation failed; stale until TTL");
        }
    }
}

/// `ttl` ± 10 %, at least one second.
fn jittered(ttl: Duration) -> Duration {
    let mut bytes = [0u8; 8];
    let spread = ttl.as_millis() / 10;
    let offset = match (getrandom::fill(&mut bytes), u64::try_from(spread * 2)) {
        (Ok(()), Ok(range)) if range > 0 => u64::from_le_bytes(bytes) % range,
        _ => u64::try_from(spread).unwrap_or(0),
    };
    let base = ttl.saturating_sub(Duration::from_millis(u64::try_from(spread).unwrap_or(0)));
    (base + Duration::from_millis(offset)).max(Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryCache;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let ttl = jittered(Duration::from_secs(3600));
            assert!(ttl >= Duration::from_secs(3240) && ttl <= Duration::from_secs(3960));
        }
    }

    #[tokio::test]
    async fn a_miss_loads_once_then_hits() {
        let policy = CacheAside::new(Arc::new(MemoryCache::default()), CacheKeys::new("t"));
        let loads = AtomicUsize::new(0);
        let load = || async {
            loads.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::convert::Infallible>(Some(42u32))
        };
        let first = policy.get_or_load("k", Duration::from_secs(60), load).await;
        let second = policy.get_or_load("k", Duration::from_secs(60), load).await;
        assert_eq!(first.ok(), Some((Some(42), CacheStatus::Miss)));
        assert_eq!(second.ok(), Some((Some(42), CacheStatus::Hit)));
        assert_eq!(loads.load(Ordering::SeqCst), 1);

        policy.invalidate(&["k".to_owned()]).await;
        let third = policy.get_or_load("k", Duration::from_secs(60), load).await;
        assert_eq!(third.ok(), Some((Some(42), CacheStatus::Miss)));
    }

    #[tokio::test]
    async fn absent_values_are_not_cached() {
        let policy = CacheAside::new(Arc::new(MemoryCache::default()), CacheKeys::new("t"));
        let none = || async { Ok::<Option<u32>, std::convert::Infallible>(None) };
        let _ = policy.get_or_load("k", Duration::from_secs(60), none).await;
        let some = || async { Ok::<_, std::convert::Infallible>(Some(7u32)) };
        let again = policy.get_or_load("k", Duration::from_secs(60), some).await;
        assert_eq!(again.ok(), Some((Some(7), CacheStatus::Miss)));
    }
}
