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

/// What one read of an entry found, in one round trip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Lookup {
    /// The entry's generation: a token that changes on every invalidation (`None` while the
    /// entry has never been invalidated, or has expired).
    pub generation: Option<String>,
    /// The value of the field that was asked for.
    pub value: Option<String>,
}

/// A value read from the store, to be cached only if its entry did not change meanwhile.
#[derive(Debug, Clone, Copy)]
pub struct Fill<'a> {
    /// The entry.
    pub key: &'a str,
    /// The field of the entry (one per page of a paged list).
    pub field: &'a str,
    /// The encoded value.
    pub value: &'a str,
    /// How long the value may live; an entry that would expire sooner keeps its expiry.
    pub ttl: Duration,
    /// The generation seen before the store was read.
    pub seen: Option<&'a str>,
    /// The stampede lock to release (taken with [`Cache::lock_or_read`], or not).
    pub lock: &'a str,
}

/// Entries made of fields with one expiry, a generation token that guards fills against
/// concurrent invalidations, short locks and counters (Redis in AWS, a map in memory).
///
/// Every method touches one key, or two keys in one Redis Cluster hash slot (a [`Fill`]'s entry
/// and lock), so each is one round trip in cluster mode too.
#[async_trait]
pub trait Cache: Send + Sync {
    /// The generation of entry `key` and the value of its `field`.
    async fn get(&self, key: &str, field: &str) -> Result<Lookup, CacheError>;
    /// Stores the value if the entry's generation is still `fill.seen`, and releases the lock
    /// either way. Returns whether the value was stored.
    async fn fill(&self, fill: &Fill<'_>) -> Result<bool, CacheError>;
    /// Drops every field of entry `key` and stamps it with `generation`, kept for `ttl`.
    async fn invalidate(
        &self,
        key: &str,
        generation: &str,
        ttl: Duration,
    ) -> Result<(), CacheError>;
    /// Reads `field` of entry `key` like [`Cache::get`] and, only if it has no value, takes
    /// `lock` for `ttl` unless someone holds it, atomically. Returns what was read and whether
    /// the lock was taken.
    async fn lock_or_read(
        &self,
        key: &str,
        field: &str,
        lock: &str,
        ttl: Duration,
    ) -> Result<(Lookup, bool), CacheError>;
    /// The counter under `key` (0 when absent).
    async fn counter(&self, key: &str) -> Result<u64, CacheError>;
    /// Adds one to the counter under `key` and returns the new value.
    async fn increment(&self, key: &str) -> Result<u64, CacheError>;
    /// Adds one to the windowed counter under `key` and returns the count and the time left in
    /// its window. The first hit starts a window of `window`; the counter disappears when the
    /// window ends (fixed windows, for rate limits).
    async fn hit(&self, key: &str, window: Duration) -> Result<(u64, Duration), CacheError>;
    /// Takes back one hit of the windowed counter under `key` (a hit that bought nothing), in
    /// whatever window is current: never below zero, nothing where no window is open.
    async fn give_back(&self, key: &str) -> Result<(), CacheError>;
}
