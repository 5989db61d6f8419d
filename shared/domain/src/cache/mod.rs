//! The cache-aside policy, one implementation for both APIs.
//!
//! **Reads** ([`CacheAside::get_or_load`]): cache → hit returns (one Redis round trip, an
//! `HMGET`); miss → load from the store → cache it for the TTL of its kind ± 10 % jitter
//! ([`CacheTtls`]) → return. An absent item (`None` from the loader) is cached for the short
//! negative TTL, so a 404 storm does not reach DynamoDB.
//!
//! **Writes**: the caller writes the store first, then calls [`CacheAside::invalidate`] with every
//! key that can hold the changed data (and [`CacheAside::invalidate_exam_list`] when the published
//! list can change). A failed invalidation is logged with the `CacheErrors` metric; the TTL
//! bounds how long the entry can be stale.
//!
//! **Keys** ([`CacheKeys`]) are `<prefix>:v<N>:{<kind>:<id>}`. `N` is the namespace version, a
//! counter at `<prefix>:version`: [`CacheAside::clear_all`] increments it, so everything cached
//! before is unreachable and expires by its TTL (no `KEYS`, no `FLUSHALL`). Each process reads
//! the version at most every [`CacheSettings::version_refresh`] (5 s), not per request: after a
//! `clear_all` elsewhere, a process serves the old namespace for at most that long.
//! Invalidation reads the version every time and also drops the entry in the namespace before
//! it (where processes that have not refreshed since the clear still read) and in the one the
//! process was using, so a write leaves no stale entry where anyone reads (two clears within the
//! refresh interval aside).
//!
//! **Entries** are Redis hashes: field `g` holds a *generation*, the other fields values.
//! Invalidating an entry empties it and stamps a new random generation; a fill stores the loaded
//! value only if the generation is still the one seen before the store was read (a Lua
//! compare-and-set). So a load that raced a write never caches the value from before the write,
//! and the next read after a write always sees it.
//!
//! **Lists** (the published exams, a student's attempts): the first page of each page size is a
//! field of the list's one entry (`…:{exam_list}`, `…:{user_exams:<id>}`); invalidating it is
//! one call on one key, so it works in Redis Cluster (where multi-key commands across slots fail)
//! without a generation counter to read on each request. All pages expire together, at most the
//! list's TTL after the first one was cached. Pages after the first (`?cursor=`) are never
//! cached: a field per cursor would let any client add fields, each worth a page read from the
//! store. So an entry has at most one field per page size (100).
//!
//! **Stampedes**: concurrent misses on one key in a process wait for the first one's load
//! (single flight). Across processes, the loader takes a short lock (`SET NX PX`); a process
//! that does not get it polls the cache for up to [`CacheSettings::lock_wait`], then loads
//! anyway, so correctness never depends on the lock. A request served by another's load reports
//! `Hit`.
//!
//! **Redis slow or down**: every call has a short timeout ([`CacheSettings::timeout`]); a failed
//! read falls through to the store (`Bypass`) and writes still succeed. After a few consecutive
//! failures a circuit breaker skips Redis for a cool-down, then lets one call probe it.
//!
//! **Cluster mode**: each command touches one key, or an entry and its lock, which the `{…}`
//! hash tag keeps in one slot. Redis or Redis Cluster, plain or TLS, is chosen by configuration
//! (see `wiring`).
//!
//! **Metrics**: each operation counts once: a read as `CacheHits` or `CacheMisses`, a write (a
//! fill, an invalidation, a clear) as `CacheWrites`, and either as `CacheErrors` if it failed or
//! was skipped; and `CacheLoadTime`. The dimension `Cache` = [`CacheKind::as_str`].

mod breaker;
mod flight;
mod keys;
mod namespace;
mod policy;
mod settings;

pub use breaker::Breaker;
pub use keys::{CacheKey, CacheKeys, CacheKind, Location};
pub use policy::{CacheAside, written};
pub use settings::{CacheSettings, CacheTtls, PROFILE_TTL_MAX};

/// Where a read was served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// From the cache (or from a concurrent load that filled it).
    Hit,
    /// From the store, and written to the cache.
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
