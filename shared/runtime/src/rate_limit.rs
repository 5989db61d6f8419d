//! Rate limits: fixed-window counters in Redis, so every container of a function counts against
//! the same budget.
//!
//! A [`Limit`] names a rule (`login`, `email`, …), how many hits it allows and per how long. A
//! check counts one hit for a *subject* (an account, an address, an IP, or a combination) and
//! answers [`Verdict::Limited`] with the time left in the window once the count passes the
//! limit. Subjects are named in the key by their HMAC under a key derived from the JWT secret
//! ([`RateLimiter::keyed`], `SubjectKeys`), so Redis never holds an email address or an IP, nor
//! a plain hash of one that hashing every address would undo.
//!
//! Redis is not needed for correctness here either: when it is slow, down or not configured,
//! each container counts in its own memory instead (a limit per container rather than per
//! fleet; an attacker spread over many containers gets more tries, never unlimited ones). It
//! feeds a circuit breaker like the cache-aside policy's, so a dead Redis costs its timeout a few
//! times, not on every request.
//!
//! **Metrics**: `RateLimited` (dimension `Rule`), one per refused request; each count in Redis
//! is one `CacheWrites{Cache=rate_limit}`, or one `CacheErrors{Cache=rate_limit}` when it failed
//! or the open breaker skipped it (counted locally instead), as the cache's own operations are.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use oes_adapters::memory::MemoryCache;
use oes_domain::cache::{self, Breaker, CacheSettings};
use oes_domain::metrics::{self, RATE_LIMITED};
use oes_domain::ports::Cache;
use oes_domain::security::SubjectKeys;

/// At most `max` hits per `window` for one subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The rule's name: part of the key and the `Rule` dimension of `RateLimited`.
    pub rule: &'static str,
    /// Hits allowed per window.
    pub max: u64,
    /// The window, started by the first hit.
    pub window: Duration,
}

/// What a check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the limit.
    Allowed,
    /// Over it: try again after this long.
    Limited {
        /// The time left in the window.
        retry_after: Duration,
    },
}

/// Counts hits per rule and subject; built once at init.
#[derive(Clone)]
pub struct RateLimiter(Arc<Inner>);

struct Inner {
    /// Redis, shared by every container; `None` when no cache is configured.
    shared: Option<Arc<dyn Cache>>,
    /// This container's own counters, for when `shared` is absent or failing.
    local: MemoryCache,
    prefix: String,
    settings: CacheSettings,
    breaker: Breaker,
    /// What names a subject in a key; `None` until [`RateLimiter::keyed`] (a plain SHA-256).
    subjects: Option<SubjectKeys>,
}

impl RateLimiter {
    /// Counts in `shared` (Redis) under keys starting with `prefix`, with the cache's timeout
    /// and circuit breaker `settings`; in this process's memory when `shared` is `None` or
    /// failing.
    pub fn new(shared: Option<Arc<dyn Cache>>, prefix: &str, settings: &CacheSettings) -> Self {
        Self::build(shared, prefix, settings, None)
    }

    fn build(
        shared: Option<Arc<dyn Cache>>,
        prefix: &str,
        settings: &CacheSettings,
        subjects: Option<SubjectKeys>,
    ) -> Self {
        Self(Arc::new(Inner {
            shared,
            local: MemoryCache::default(),
            prefix: prefix.to_owned(),
            settings: *settings,
            breaker: Breaker::new(settings.breaker_failures, settings.breaker_cool_down),
            subjects,
        }))
    }

    /// The same limiter, naming subjects with `subjects` (the JWT secret's): what every function
    /// that counts real addresses uses. Call it at init, before any check.
    pub fn keyed(&self, subjects: SubjectKeys) -> Self {
        let inner = &self.0;
        Self::build(
            inner.shared.clone(),
            &inner.prefix,
            &inner.settings,
            Some(subjects),
        )
    }

    /// Counts in this process's memory only (the embedded mode and unit tests).
    pub fn in_memory() -> Self {
        Self::new(None, "oes", &CacheSettings::default())
    }

    /// Counts one hit of `subject` against `limit`.
    pub async fn check(&self, limit: &Limit, subject: &str) -> Verdict {
        let key = self.key(limit, subject);
        let (count, left) = self.count(&key, limit.window).await;
        if count <= limit.max {
            return Verdict::Allowed;
        }
        metrics::incr(RATE_LIMITED, Some(("Rule", limit.rule)));
        tracing::info!(rule = limit.rule, "rate limited");
        Verdict::Limited { retry_after: left }
    }

    /// Takes back a hit of `subject` that bought nothing (what it was counted for did not
    /// happen), where it was counted: Redis, or this container's memory while Redis fails.
    pub async fn give_back(&self, limit: &Limit, subject: &str) {
        let key = self.key(limit, subject);
        let inner = &self.0;
        if let Some(shared) = &inner.shared
            && inner.breaker.allow()
        {
            let given = tokio::time::timeout(inner.settings.timeout, shared.give_back(&key)).await;
            if matches!(given, Ok(Ok(()))) {
                inner.breaker.succeeded();
                cache::written("rate_limit", true);
                return;
            }
            inner.breaker.failed();
            cache::written("rate_limit", false);
            tracing::warn!(
                rule = limit.rule,
                "a rate-limit hit could not be given back"
            );
        }
        // MemoryCache never fails.
        let _ = inner.local.give_back(&key).await;
    }

    /// `<prefix>:rl:<rule>:<the subject's name, 128 bits>`. Outside the cache's versioned
    /// namespace, so clearing the cache does not reset limits.
    fn key(&self, limit: &Limit, subject: &str) -> String {
        let name = match &self.0.subjects {
            Some(subjects) => subjects.name(subject),
            None => hex::encode(&Sha256::digest(subject.as_bytes())[..16]),
        };
        format!("{}:rl:{}:{name}", self.0.prefix, limit.rule)
    }

    async fn count(&self, key: &str, window: Duration) -> (u64, Duration) {
        let inner = &self.0;
        if let Some(shared) = &inner.shared {
            let counted = if inner.breaker.allow() {
                let counted = match tokio::time::timeout(
                    inner.settings.timeout,
                    shared.hit(key, window),
                )
                .await
                {
                    Ok(Ok(counted)) => Some(counted),
                    Ok(Err(error)) => {
                        tracing::warn!(error = %error, cause = %error.source, "rate limit not counted in the cache; counting locally");
                        None
                    }
                    Err(_elapsed) => {
                        tracing::warn!("rate limit count timed out; counting locally");
                        None
                    }
                };
                if counted.is_some() {
                    inner.breaker.succeeded();
                } else {
                    inner.breaker.failed();
                }
                counted
            } else {
                // Skipped by the open breaker: counted as a failure, like the cache's own calls.
                None
            };
            cache::written("rate_limit", counted.is_some());
            if let Some(counted) = counted {
                return counted;
            }
        }
        // MemoryCache never fails.
        inner.local.hit(key, window).await.unwrap_or((1, window))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_PER_MINUTE: Limit = Limit {
        rule: "test",
        max: 2,
        window: Duration::from_secs(60),
    };

    #[tokio::test(start_paused = true)]
    async fn allows_up_to_the_limit_then_refuses_until_the_window_ends() {
        let limiter = RateLimiter::in_memory();
        for _ in 0..2 {
            assert_eq!(limiter.check(&TWO_PER_MINUTE, "a").await, Verdict::Allowed);
        }
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(
            limiter.check(&TWO_PER_MINUTE, "a").await,
            Verdict::Limited {
                retry_after: Duration::from_secs(40)
            }
        );
        assert_eq!(
            limiter.check(&TWO_PER_MINUTE, "b").await,
            Verdict::Allowed,
            "subjects are counted apart"
        );
        tokio::time::advance(Duration::from_secs(40)).await;
        assert_eq!(
            limiter.check(&TWO_PER_MINUTE, "a").await,
            Verdict::Allowed,
            "a new window starts"
        );
    }

    #[test]
    fn keys_hold_no_subject_in_clear_text() {
        let limiter = RateLimiter::in_memory();
        let key = limiter.key(&TWO_PER_MINUTE, "someone@example.com");
        assert!(key.starts_with("oes:rl:test:"), "{key}");
        assert!(!key.contains("someone"), "{key}");
        assert_ne!(key, limiter.key(&TWO_PER_MINUTE, "other@example.com"));
    }
}
