//! The namespace version this process uses, read from Redis at most every `refresh`, so the hit
//! path stays one round trip.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Known {
    version: Option<u64>,
    fresh_until: Option<Instant>,
}

/// The last version read, and until when it counts as fresh.
#[derive(Debug)]
pub(crate) struct Namespace {
    known: Mutex<Known>,
    /// Held while one task reads the version; the others wait for its answer.
    pub(crate) refreshing: tokio::sync::Mutex<()>,
    refresh: Duration,
}

impl Namespace {
    /// Nothing known yet; versions read stay fresh for `refresh`.
    pub(crate) fn new(refresh: Duration) -> Self {
        Self {
            known: Mutex::new(Known {
                version: None,
                fresh_until: None,
            }),
            refreshing: tokio::sync::Mutex::new(()),
            refresh,
        }
    }

    fn known(&self) -> MutexGuard<'_, Known> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The version, if it was read less than `refresh` ago.
    pub(crate) fn fresh(&self) -> Option<u64> {
        let known = *self.known();
        match known.fresh_until {
            Some(until) if Instant::now() < until => known.version,
            _ => None,
        }
    }

    /// The last version read, however old (`None` before the first read).
    pub(crate) fn last(&self) -> Option<u64> {
        self.known().version
    }

    /// Records a version just read from Redis.
    pub(crate) fn set(&self, version: u64) {
        *self.known() = Known {
            version: Some(version),
            fresh_until: Some(Instant::now() + self.refresh),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_version_is_fresh_for_the_refresh_interval_then_only_remembered() {
        let namespace = Namespace::new(Duration::from_secs(5));
        assert_eq!((namespace.fresh(), namespace.last()), (None, None));
        namespace.set(4);
        assert_eq!(namespace.fresh(), Some(4));
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!((namespace.fresh(), namespace.last()), (None, Some(4)));
    }
}
