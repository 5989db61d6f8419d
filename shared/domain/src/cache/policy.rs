//! [`CacheAside`]: reads through the cache, invalidation after writes, and what happens when
//! Redis misbehaves.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::CacheStatus;
use super::breaker::Breaker;
use super::flight::{Flights, Leader, Role};
use super::keys::{CacheKey, CacheKeys, CacheKind, Location};
use super::namespace::Namespace;
use super::settings::{CacheSettings, jittered};
use crate::metrics::{self, CACHE_ERRORS, CACHE_HITS, CACHE_LOAD_TIME, CACHE_MISSES, CACHE_WRITES};
use crate::ports::{Cache, CacheError, Fill, Lookup};

/// How often a request that lost the stampede lock looks for the winner's value.
const POLL: Duration = Duration::from_millis(10);

/// The cache-aside policy over a [`Cache`]. Cheap to clone; clones share the breaker, the
/// flights in progress and the namespace version.
#[derive(Clone)]
pub struct CacheAside(Arc<Inner>);

struct Inner {
    cache: Arc<dyn Cache>,
    keys: CacheKeys,
    settings: CacheSettings,
    breaker: Breaker,
    flights: Flights,
    namespace: Namespace,
}

/// A read that found no value: whether one of its Redis calls failed or was skipped, and the
/// entry's generation it saw (a fill is refused if the entry was invalidated since).
struct Read {
    failed: bool,
    seen: Option<String>,
    /// When the read that saw `seen` answered.
    missed_at: Instant,
}

/// Why a Redis call gave no answer.
enum Failure {
    /// The circuit breaker is open: Redis was not asked.
    Skipped,
    /// Redis failed or did not answer in time.
    Failed(CacheError),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Skipped => f.write_str("skipped: the cache circuit is open"),
            Self::Failed(error) => write!(f, "{error}: {}", error.source),
        }
    }
}

impl Failure {
    /// Logs a failed read-path call (skipped calls were logged when the breaker opened).
    fn log(&self, kind: Option<CacheKind>, op: &'static str) {
        if let Self::Failed(_) = self {
            let cache = kind.map_or("namespace", CacheKind::as_str);
            tracing::warn!(cache, op, error = %self, "cache call failed; going on without the cache");
        }
    }
}

fn dimension(kind: CacheKind) -> Option<(&'static str, &'static str)> {
    Some(("Cache", kind.as_str()))
}

impl CacheAside {
    /// The policy over `cache`, with keys from `keys`.
    pub fn new(cache: Arc<dyn Cache>, keys: CacheKeys, settings: CacheSettings) -> Self {
        Self(Arc::new(Inner {
            cache,
            keys,
            breaker: Breaker::new(settings.breaker_failures, settings.breaker_cool_down),
            flights: Flights::default(),
            namespace: Namespace::new(settings.version_refresh),
            settings,
        }))
    }

    /// The key builder.
    pub fn keys(&self) -> &CacheKeys {
        &self.0.keys
    }

    /// The settings.
    pub fn settings(&self) -> &CacheSettings {
        &self.0.settings
    }

    /// The value under `key`: from the cache, or loaded with `load` and cached for the TTL of its
    /// kind (± 10 %). `None` from the loader is cached for the negative TTL and read back as
    /// `(None, Hit)`. Concurrent misses on one key cause one load (see the module doc). A cache
    /// failure is never returned: the value is loaded and the status is `Bypass`. Only the
    /// loader's own error is.
    pub async fn get_or_load<T, E, F, Fut>(
        &self,
        key: &CacheKey,
        load: F,
    ) -> Result<(Option<T>, CacheStatus), E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        self.get_or_load_as::<T, T, E, F, Fut>(key, load).await
    }

    /// As [`Self::get_or_load`], read as `V`: a view of the `S` the entry holds, decoded from
    /// the entry's JSON (a hit) or converted from the loaded `S` (a miss, a bypass). For reads
    /// that need part of an entry, e.g. an exam's questions without their answers. `V` must
    /// decode from the JSON of an `S` as `V::from` converts it.
    #[tracing::instrument(level = "debug", skip_all, fields(cache = %key.kind()))]
    pub async fn get_or_load_as<S, V, E, F, Fut>(
        &self,
        key: &CacheKey,
        load: F,
    ) -> Result<(Option<V>, CacheStatus), E>
    where
        S: Serialize,
        V: DeserializeOwned + From<S>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<S>, E>>,
    {
        let kind = key.kind();
        // Whether a Redis call of this read failed or was skipped: the read then counts as one
        // `CacheErrors`, however many of its calls failed.
        let mut failed = false;
        let Some(version) = self.version(kind, &mut failed).await else {
            return bypass(kind, load).await.map(into_view);
        };
        let at = self.0.keys.locate(key, version);
        let lookup = match self.call(self.0.cache.get(&at.key, &at.field)).await {
            Ok(lookup) => lookup,
            Err(failure) => {
                failure.log(Some(kind), "read");
                return bypass(kind, load).await.map(into_view);
            }
        };
        if let Some(value) = decode(kind, lookup.value.as_deref()) {
            return Ok(hit(kind, value));
        }
        let missed_at = Instant::now();
        match self.0.flights.join(&at.lock) {
            Role::Follower(follower) => {
                let landed = follower.wait().await;
                if let Some(value) = landed.and_then(|encoded| decode(kind, Some(&encoded))) {
                    return Ok(hit(kind, value));
                }
                let read = Read {
                    failed,
                    seen: lookup.generation,
                    missed_at,
                };
                self.load_and_fill(kind, &at, read, load, None)
                    .await
                    .map(into_view)
            }
            Role::Leader(leader) => {
                let (lookup, taken) = self.lock_or_read(kind, &at, lookup, &mut failed).await;
                let mut seen = lookup.generation;
                let found = match lookup.value {
                    // Cached since the first read; or unreadable, and overwritten below.
                    Some(encoded) => {
                        decode(kind, Some(encoded.as_str())).map(|value| (encoded, value))
                    }
                    None if !taken => self.await_winner(kind, &at, &mut seen, &mut failed).await,
                    None => None,
                };
                if let Some((encoded, value)) = found {
                    leader.land(&encoded);
                    return Ok(hit(kind, value));
                }
                let read = Read {
                    failed,
                    seen,
                    missed_at,
                };
                self.load_and_fill(kind, &at, read, load, Some(leader))
                    .await
                    .map(into_view)
            }
        }
    }

    /// Drops every entry that `keys` name, in the current namespace, in the one before it (where
    /// processes that have not yet seen the last [`Self::clear_all`] still read) and in the one
    /// this process used until now. Call it after the store
    /// write, and also when the write failed in a way that may have applied it. Never fails: a
    /// failure is logged with the `CacheErrors` metric, and the entry's TTL bounds how long it
    /// can be stale. Redis is asked even while this process's breaker is open: other processes
    /// may be reading the entry meanwhile. Returns whether every entry was dropped (for an
    /// operator's tool to say so; a request goes on either way).
    pub async fn invalidate(&self, keys: &[CacheKey]) -> bool {
        if keys.is_empty() {
            return true;
        }
        let used = self.0.namespace.last();
        let version_key = self.0.keys.version_key();
        let (current, known) = match self
            .call_past_breaker(self.0.cache.counter(&version_key))
            .await
        {
            Ok(version) => {
                self.0.namespace.set(version);
                (Some(version), true)
            }
            // Dropped where this process last knew the namespace to be, which a clear since may
            // have left: readers may be elsewhere, so the invalidation is not said to be done.
            // Each drop is counted as failed (`CacheErrors`).
            Err(failure) => {
                tracing::error!(error = %failure, "cache invalidation unsure: the namespace version could not be read; what readers use may be stale until the TTL");
                (used, false)
            }
        };
        // The namespace before the current one too: a process that has not refreshed its version
        // since a clear still reads there, for up to `version_refresh`.
        let before = current.and_then(|v| v.checked_sub(1));
        let mut versions: Vec<u64> = current.into_iter().collect();
        for version in [before, used].into_iter().flatten() {
            if !versions.contains(&version) {
                versions.push(version);
            }
        }
        if versions.is_empty() {
            for key in keys {
                metrics::incr(CACHE_ERRORS, dimension(key.kind()));
                tracing::error!(cache = %key.kind(), "cache invalidation impossible: the namespace version is unknown; stale until the TTL");
            }
            return false;
        }
        let calls = versions.iter().flat_map(|version| {
            keys.iter()
                .map(move |key| self.invalidate_one(key, *version, known))
        });
        let dropped = join_all(calls).await.into_iter().all(|dropped| dropped);
        dropped && known
    }

    /// Drops every cached page of the published exam list, whatever its limit and cursor.
    pub async fn invalidate_exam_list(&self) -> bool {
        self.invalidate(&[self.0.keys.exam_list()]).await
    }

    /// Empties the whole cache by moving to a new namespace version (old entries expire by
    /// their TTL; no `KEYS`, no `FLUSHALL`). Other processes move within
    /// [`CacheSettings::version_refresh`]. Returns whether it worked (logged if not).
    pub async fn clear_all(&self) -> bool {
        let version_key = self.0.keys.version_key();
        let cleared = self.call(self.0.cache.increment(&version_key)).await;
        written("namespace", cleared.is_ok());
        match cleared {
            Ok(version) => {
                self.0.namespace.set(version);
                tracing::info!(version, "cache cleared: new namespace version");
                true
            }
            Err(failure) => {
                tracing::error!(error = %failure, "clearing the cache failed");
                false
            }
        }
    }

    /// Whether the cache answers now (a read of the namespace version, past the breaker): for
    /// health checks, never on a request's path.
    pub async fn reachable(&self) -> Result<(), CacheError> {
        let version_key = self.0.keys.version_key();
        self.timed(self.0.cache.counter(&version_key))
            .await
            .map(|_| ())
    }

    /// `call`, failing once the cache's timeout has passed.
    async fn timed<R>(
        &self,
        call: impl Future<Output = Result<R, CacheError>>,
    ) -> Result<R, CacheError> {
        tokio::time::timeout(self.0.settings.timeout, call)
            .await
            .unwrap_or_else(|elapsed| {
                Err(CacheError {
                    context: "redis call timed out",
                    source: elapsed.into(),
                })
            })
    }

    /// Where `key` lives in Redis right now (for tests and debugging); `None` if the namespace
    /// version cannot be read.
    pub async fn locate(&self, key: &CacheKey) -> Option<Location> {
        let version = self.version(key.kind(), &mut false).await?;
        Some(self.0.keys.locate(key, version))
    }

    /// Drops `key` in namespace `version`; counted as failed unless Redis took it and the
    /// namespace version was `known` (read for this invalidation).
    async fn invalidate_one(&self, key: &CacheKey, version: u64, known: bool) -> bool {
        let kind = key.kind();
        let at = self.0.keys.locate(key, version);
        let generation = uuid::Uuid::new_v4().simple().to_string();
        let ttl = jittered(self.0.settings.ttls.of(kind));
        let call = self.0.cache.invalidate(&at.key, &generation, ttl);
        let dropped = self.call_past_breaker(call).await;
        written(kind.as_str(), dropped.is_ok() && known);
        if let Err(failure) = &dropped {
            tracing::error!(cache = %kind, key = %at.key, error = %failure, "cache invalidation failed; stale until the TTL");
        }
        dropped.is_ok()
    }

    /// The namespace version: the one read less than `version_refresh` ago, else read now (one
    /// task reads, the others wait for it); if Redis does not answer, `None` and `failed` set —
    /// not the last one read: after two clears since, no write drops entries there any more.
    async fn version(&self, kind: CacheKind, failed: &mut bool) -> Option<u64> {
        if let Some(version) = self.0.namespace.fresh() {
            return Some(version);
        }
        let _reading = self.0.namespace.refreshing.lock().await;
        if let Some(version) = self.0.namespace.fresh() {
            return Some(version);
        }
        let version_key = self.0.keys.version_key();
        match self.call(self.0.cache.counter(&version_key)).await {
            Ok(version) => {
                self.0.namespace.set(version);
                Some(version)
            }
            Err(failure) => {
                *failed = true;
                failure.log(Some(kind), "read the namespace version");
                None
            }
        }
    }

    /// Reads the entry again and, if it is still empty, takes the cross-container stampede lock
    /// (one atomic step, so a value cached since `missed` is found, not loaded again). Without an
    /// answer from Redis: what `missed` found, and load.
    async fn lock_or_read(
        &self,
        kind: CacheKind,
        at: &Location,
        missed: Lookup,
        failed: &mut bool,
    ) -> (Lookup, bool) {
        let lock_ttl = self.0.settings.lock_ttl;
        let call = self
            .0
            .cache
            .lock_or_read(&at.key, &at.field, &at.lock, lock_ttl);
        self.call(call).await.unwrap_or_else(|failure| {
            *failed = true;
            failure.log(Some(kind), "lock");
            (missed, true)
        })
    }

    /// Polls, for at most `lock_wait`, for the value another process is loading. `seen` follows
    /// the entry's generation, since a load started after a poll is at least that fresh.
    /// `None`: load it yourself.
    async fn await_winner<T: DeserializeOwned>(
        &self,
        kind: CacheKind,
        at: &Location,
        seen: &mut Option<String>,
        failed: &mut bool,
    ) -> Option<(String, Option<T>)> {
        let deadline = Instant::now() + self.0.settings.lock_wait;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            tokio::time::sleep(POLL.min(deadline - now)).await;
            let lookup = match self.call(self.0.cache.get(&at.key, &at.field)).await {
                Ok(lookup) => lookup,
                Err(failure) => {
                    *failed = true;
                    failure.log(Some(kind), "poll");
                    return None;
                }
            };
            if let Some(encoded) = lookup.value {
                // The winner's value; or an unreadable one, which waiting will not fix.
                return decode(kind, Some(encoded.as_str())).map(|value| (encoded, value));
            }
            *seen = lookup.generation;
        }
    }

    /// Loads, caches the value unless the entry was invalidated since `read.seen`, and hands
    /// what was cached to the in-process followers. Counts the read (a miss, or an error if one
    /// of its calls failed) and the fill (a write, or an error).
    async fn load_and_fill<T, E, F, Fut>(
        &self,
        kind: CacheKind,
        at: &Location,
        read: Read,
        load: F,
        leader: Option<Leader<'_>>,
    ) -> Result<(Option<T>, CacheStatus), E>
    where
        T: Serialize,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let value = timed_load(kind, load).await?;
        let outcome = if read.failed {
            CACHE_ERRORS
        } else {
            CACHE_MISSES
        };
        metrics::incr(outcome, dimension(kind));
        let Some(encoded) = encode(kind, value.as_ref()) else {
            return Ok((value, CacheStatus::Miss));
        };
        let ttls = &self.0.settings.ttls;
        if !self.stamps_outlive(read.missed_at) {
            tracing::debug!(cache = %kind, "not cached: the load took longer than an invalidation is sure to be remembered");
            return Ok((value, CacheStatus::Miss));
        }
        let fill = Fill {
            key: &at.key,
            field: &at.field,
            value: &encoded,
            ttl: jittered(if value.is_some() {
                ttls.of(kind)
            } else {
                ttls.negative
            }),
            seen: read.seen.as_deref(),
            lock: &at.lock,
        };
        let filled = self.call(self.0.cache.fill(&fill)).await;
        written(kind.as_str(), filled.is_ok());
        match filled {
            Ok(true) => {
                if let Some(leader) = leader {
                    leader.land(&encoded);
                }
            }
            Ok(false) => {
                tracing::debug!(cache = %kind, "not cached: the entry was invalidated during the load");
            }
            Err(failure) => failure.log(Some(kind), "fill"),
        }
        Ok((value, CacheStatus::Miss))
    }

    /// Whether an invalidation made after the read that answered at `missed_at` is still
    /// stamped on its entry when a fill started now reaches Redis. A fill learns of one from
    /// its generation stamp, and a "not found" fill shortens the stamp's life to the negative
    /// TTL (less its jitter): past that, the stamp may be gone, and the fill would land over the
    /// write. Each call may take the timeout: the read may have been made that long before it
    /// answered, and the fill arrive that long after it is sent.
    fn stamps_outlive(&self, missed_at: Instant) -> bool {
        let settings = &self.0.settings;
        let remembered = settings.ttls.negative.mul_f64(0.9);
        missed_at.elapsed() + 2 * settings.timeout < remembered
    }

    /// One Redis call through the breaker and the timeout (its caller counts the operation).
    async fn call<R>(
        &self,
        call: impl Future<Output = Result<R, CacheError>>,
    ) -> Result<R, Failure> {
        if self.0.breaker.allow() {
            return self.call_past_breaker(call).await;
        }
        Err(Failure::Skipped)
    }

    /// One Redis call through the timeout, whatever the breaker says (its outcome still counts
    /// there).
    async fn call_past_breaker<R>(
        &self,
        call: impl Future<Output = Result<R, CacheError>>,
    ) -> Result<R, Failure> {
        match self.timed(call).await {
            Ok(value) => {
                self.0.breaker.succeeded();
                Ok(value)
            }
            Err(error) => {
                self.0.breaker.failed();
                Err(Failure::Failed(error))
            }
        }
    }
}

/// A loaded value as its reader's view.
fn into_view<S, V: From<S>>((value, status): (Option<S>, CacheStatus)) -> (Option<V>, CacheStatus) {
    (value.map(V::from), status)
}

fn hit<T>(kind: CacheKind, value: Option<T>) -> (Option<T>, CacheStatus) {
    metrics::incr(CACHE_HITS, dimension(kind));
    (value, CacheStatus::Hit)
}

/// Reads the store without the cache, which failed this read: one `CacheErrors`.
async fn bypass<T, E, F, Fut>(kind: CacheKind, load: F) -> Result<(Option<T>, CacheStatus), E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
{
    metrics::incr(CACHE_ERRORS, dimension(kind));
    Ok((timed_load(kind, load).await?, CacheStatus::Bypass))
}

/// Counts one write to the cache (a fill, an invalidation, a clear, a rate-limit count) under the
/// `Cache` dimension `cache`: `CacheWrites` if Redis answered it, else `CacheErrors`.
pub fn written(cache: &str, made: bool) {
    let metric = if made { CACHE_WRITES } else { CACHE_ERRORS };
    metrics::incr(metric, Some(("Cache", cache)));
}

async fn timed_load<T, E, F, Fut>(kind: CacheKind, load: F) -> Result<Option<T>, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Option<T>, E>>,
{
    let started = std::time::Instant::now();
    let value = load().await;
    metrics::duration(CACHE_LOAD_TIME, started.elapsed(), dimension(kind));
    value
}

/// A loaded value as cached: JSON, or the empty string for an absent item (never valid JSON).
fn encode<T: Serialize>(kind: CacheKind, value: Option<&T>) -> Option<String> {
    let Some(value) = value else {
        return Some(String::new());
    };
    serde_json::to_string(value)
        .map_err(|error| tracing::warn!(cache = %kind, %error, "value not cacheable"))
        .ok()
}

/// A cached value: `None` if there is none (or it is unreadable, e.g. written by an older
/// build), `Some(None)` for a cached absent item.
fn decode<T: DeserializeOwned>(kind: CacheKind, raw: Option<&str>) -> Option<Option<T>> {
    match raw? {
        "" => Some(None),
        json => serde_json::from_str(json)
            .map_err(
                |error| tracing::warn!(cache = %kind, %error, "unreadable cache entry; reloading"),
            )
            .ok()
            .map(Some),
    }
}
