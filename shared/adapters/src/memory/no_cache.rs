//! No cache at all: what runs when no Redis is configured.

use std::time::Duration;

use async_trait::async_trait;
use oes_domain::ports::{Cache, CacheError, Fill, Lookup};

/// No cache: every read goes to the store. Used when no Redis is configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCache;

#[async_trait]
impl Cache for NoCache {
    async fn get(&self, _key: &str, _field: &str) -> Result<Lookup, CacheError> {
        Ok(Lookup::default())
    }

    async fn fill(&self, _fill: &Fill<'_>) -> Result<bool, CacheError> {
        Ok(false)
    }

    async fn invalidate(
        &self,
        _key: &str,
        _generation: &str,
        _ttl: Duration,
    ) -> Result<(), CacheError> {
        Ok(())
    }

    async fn lock_or_read(
        &self,
        _key: &str,
        _field: &str,
        _lock: &str,
        _ttl: Duration,
    ) -> Result<(Lookup, bool), CacheError> {
        Ok((Lookup::default(), true))
    }

    async fn counter(&self, _key: &str) -> Result<u64, CacheError> {
        Ok(0)
    }

    async fn increment(&self, _key: &str) -> Result<u64, CacheError> {
        Ok(0)
    }

    /// There is nothing to count in: callers that need counters (the rate limiter) keep their
    /// own when no cache is configured.
    async fn hit(&self, _key: &str, _window: Duration) -> Result<(u64, Duration), CacheError> {
        Err(CacheError {
            context: "no cache is configured",
            source: "no windowed counters without a cache".into(),
        })
    }

    async fn give_back(&self, _key: &str) -> Result<(), CacheError> {
        Err(CacheError {
            context: "no cache is configured",
            source: "no windowed counters without a cache".into(),
        })
    }
}
