//! A cache in a map, with the semantics of [`crate::redis_cache::RedisCache`]: generations,
//! expiry, locks, counters and fixed windows.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use oes_domain::ports::{Cache, CacheError, Fill, Lookup};
use tokio::time::Instant;

use super::lock;

/// A cache in a map, with the same semantics as the Redis one (generations, expiry, locks).
/// Time is Tokio's, so tests can pause it.
#[derive(Default)]
pub struct MemoryCache(Mutex<CacheMaps>);

#[derive(Default)]
struct CacheMaps {
    entries: HashMap<String, (HashMap<String, String>, Instant)>,
    entries_pruned: Pruning,
    locks: HashMap<String, Instant>,
    locks_pruned: Pruning,
    counters: HashMap<String, u64>,
    windows: Windows,
}

/// When a map of expiring items next drops its expired ones: once it has grown to twice what
/// was live at the last pruning (at least [`Self::MIN`]), so each insert costs O(1) amortised and
/// the map holds at most about twice its live items — as Redis drops expired keys by itself.
#[derive(Default)]
struct Pruning {
    at: usize,
}

impl Pruning {
    const MIN: usize = 1024;

    /// Before an insert into `map`: drops what has expired, if it is time.
    fn before_insert<V>(&mut self, map: &mut HashMap<String, V>, expires: impl Fn(&V) -> Instant) {
        if map.len() >= self.at.max(Self::MIN) {
            let now = Instant::now();
            map.retain(|_, item| expires(item) > now);
            self.at = map.len() * 2;
        }
    }
}

/// Fixed-window counters that drop ended windows as they grow, so a flood of distinct keys
/// (the local fallback of the rate limiter sees every client) cannot grow without bound.
#[derive(Default)]
struct Windows {
    counts: HashMap<String, (u64, Instant)>,
    pruned: Pruning,
}

impl Windows {
    fn hit(&mut self, key: &str, window: Duration) -> (u64, Duration) {
        let now = Instant::now();
        self.pruned
            .before_insert(&mut self.counts, |(_, ends)| *ends);
        let (count, ends) = self
            .counts
            .entry(key.to_owned())
            .or_insert((0, now + window));
        // A window that has ended, or whose hits were all given back, starts again (as Redis's
        // script restarts it at a count of 1).
        if *ends <= now || *count == 0 {
            *count = 0;
            *ends = now + window;
        }
        *count += 1;
        (*count, *ends - now)
    }

    fn give_back(&mut self, key: &str) {
        let now = Instant::now();
        if let Some((count, ends)) = self.counts.get_mut(key)
            && *ends > now
        {
            *count = count.saturating_sub(1);
        }
    }
}

impl CacheMaps {
    /// The live entry under `key`, dropping it if it has expired.
    fn entry(&mut self, key: &str) -> Option<&mut (HashMap<String, String>, Instant)> {
        if self
            .entries
            .get(key)
            .is_some_and(|(_, expires)| *expires <= Instant::now())
        {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    /// `field` of the live entry under `key`, with the entry's generation.
    fn lookup(&mut self, key: &str, field: &str) -> Lookup {
        self.entry(key)
            .map_or_else(Lookup::default, |(fields, _)| Lookup {
                generation: fields.get("g").cloned(),
                value: fields.get(field).cloned(),
            })
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str, field: &str) -> Result<Lookup, CacheError> {
        Ok(lock(&self.0).lookup(key, field))
    }

    async fn fill(&self, fill: &Fill<'_>) -> Result<bool, CacheError> {
        let mut maps = lock(&self.0);
        maps.locks.remove(fill.lock);
        let generation = maps
            .entry(fill.key)
            .and_then(|(fields, _)| fields.get("g").cloned());
        if generation.as_deref() != fill.seen {
            return Ok(false);
        }
        let expires = Instant::now() + fill.ttl;
        let CacheMaps {
            entries,
            entries_pruned,
            ..
        } = &mut *maps;
        entries_pruned.before_insert(entries, |(_, expires)| *expires);
        let (fields, expiry) = maps
            .entries
            .entry(fill.key.to_owned())
            .or_insert_with(|| (HashMap::new(), expires));
        fields.insert(fill.field.to_owned(), fill.value.to_owned());
        *expiry = (*expiry).min(expires);
        Ok(true)
    }

    async fn invalidate(
        &self,
        key: &str,
        generation: &str,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let fields = HashMap::from([("g".to_owned(), generation.to_owned())]);
        let mut maps = lock(&self.0);
        let CacheMaps {
            entries,
            entries_pruned,
            ..
        } = &mut *maps;
        entries_pruned.before_insert(entries, |(_, expires)| *expires);
        entries.insert(key.to_owned(), (fields, Instant::now() + ttl));
        Ok(())
    }

    async fn lock_or_read(
        &self,
        key: &str,
        field: &str,
        name: &str,
        ttl: Duration,
    ) -> Result<(Lookup, bool), CacheError> {
        // Under one hold of the maps, as Redis runs the read and the SET NX in one script: a
        // fill between them would have this caller load and fill a second time.
        let mut maps = lock(&self.0);
        let lookup = maps.lookup(key, field);
        if lookup.value.is_some() {
            return Ok((lookup, false));
        }
        let now = Instant::now();
        if maps.locks.get(name).is_some_and(|until| *until > now) {
            return Ok((lookup, false));
        }
        let CacheMaps {
            locks,
            locks_pruned,
            ..
        } = &mut *maps;
        locks_pruned.before_insert(locks, |until| *until);
        locks.insert(name.to_owned(), now + ttl);
        Ok((lookup, true))
    }

    async fn counter(&self, key: &str) -> Result<u64, CacheError> {
        Ok(lock(&self.0).counters.get(key).copied().unwrap_or(0))
    }

    async fn increment(&self, key: &str) -> Result<u64, CacheError> {
        let mut maps = lock(&self.0);
        let counter = maps.counters.entry(key.to_owned()).or_insert(0);
        *counter += 1;
        Ok(*counter)
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<(u64, Duration), CacheError> {
        Ok(lock(&self.0).windows.hit(key, window))
    }

    async fn give_back(&self, key: &str) -> Result<(), CacheError> {
        lock(&self.0).windows.give_back(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis drops an expired key by itself; the map must too, or an embedded `oes-local` that
    /// runs for days holds every entry and lock it ever made (a made-up id per request).
    #[tokio::test(start_paused = true)]
    async fn expired_entries_and_locks_do_not_pile_up() {
        let cache = MemoryCache::default();
        let ttl = Duration::from_secs(30);
        for round in 0..10 {
            for n in 0..1_000 {
                let key = format!("{round}:{n}");
                cache.invalidate(&key, "g", ttl).await.expect("stamped");
                let _ = cache
                    .lock_or_read(&key, "v", &format!("{key}:lock"), ttl)
                    .await
                    .expect("locked");
            }
            tokio::time::advance(ttl).await;
        }
        let maps = lock(&cache.0);
        assert!(
            maps.entries.len() <= 2_000 && maps.locks.len() <= 2_000,
            "{} entries and {} locks kept, of which at most 1,000 each are live",
            maps.entries.len(),
            maps.locks.len()
        );
    }
}
