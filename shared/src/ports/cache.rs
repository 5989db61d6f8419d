use std::time::Duration;

use async_trait::async_trait;

use super::BoxError;

/// The cache could not be used. Never fatal: callers fall back to the store.
#[derive(Debug, thiserror::Error)]
#[error("cache unavailable: {context}")]
pub struct CacheError {
    /// What we were doing.
    pub context: &'static str,
    /// The underlying error.
    #[source]
    pub source: BoxError,
}

/// A key-value cache with expiry (Redis in AWS, a map in memory).
#[async_trait]
pub trait Cache: Send + Sync {
    /// The value under `key`, if present and not expired.
    async fn get(&self, key: &str) -> Result<Option<String>, CacheError>;
    /// Stores `value` under `key` for `ttl`.
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError>;
    /// Removes `keys` (absent keys are fine).
    async fn delete(&self, keys: &[String]) -> Result<(), CacheError>;
}
