//! How long things live and how patient the policy is with Redis.

use std::time::Duration;

use super::CacheKind;

/// The longest a profile stays cached, whatever [`CacheTtls::user_profile`] says. The session
/// check compares an access token's version with the cached profile's, so a password reset or a
/// role change whose invalidation failed (Redis slow, the breaker open, `oesctl` outside the VPC)
/// leaves tokens from before it valid until the entry expires: with the ± 10 % jitter, at most
/// 59.4 s. The cost: one store read per signed-in user per minute, instead of per hour.
pub const PROFILE_TTL_MAX: Duration = Duration::from_secs(54);

/// Time to live per kind, plus the short one of absent items (negative caching).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheTtls {
    /// [`CacheKind::Exam`]; default 2 h.
    pub exam: Duration,
    /// [`CacheKind::ExamQuestions`]; default 2 h.
    pub exam_questions: Duration,
    /// [`CacheKind::UserProfile`]; default, and at most, [`PROFILE_TTL_MAX`] (a longer one is
    /// cut to it).
    pub user_profile: Duration,
    /// [`CacheKind::ExamResult`]; default 2 h.
    pub exam_result: Duration,
    /// [`CacheKind::UserExams`]; default 30 min.
    pub user_exams: Duration,
    /// [`CacheKind::ExamList`]; default 30 min. All pages expire together, this long after the
    /// first page was cached.
    pub exam_list: Duration,
    /// An absent item of any kind; default 30 s.
    pub negative: Duration,
}

impl Default for CacheTtls {
    fn default() -> Self {
        const MINUTE: u64 = 60;
        Self {
            exam: Duration::from_secs(120 * MINUTE),
            exam_questions: Duration::from_secs(120 * MINUTE),
            user_profile: PROFILE_TTL_MAX,
            exam_result: Duration::from_secs(120 * MINUTE),
            user_exams: Duration::from_secs(30 * MINUTE),
            exam_list: Duration::from_secs(30 * MINUTE),
            negative: Duration::from_secs(30),
        }
    }
}

impl CacheTtls {
    /// The TTL of values of `kind`.
    pub fn of(&self, kind: CacheKind) -> Duration {
        match kind {
            CacheKind::Exam => self.exam,
            CacheKind::ExamQuestions => self.exam_questions,
            CacheKind::UserProfile => self.user_profile.min(PROFILE_TTL_MAX),
            CacheKind::ExamResult => self.exam_result,
            CacheKind::UserExams => self.user_exams,
            CacheKind::ExamList => self.exam_list,
        }
    }
}

/// Everything the cache-aside policy can be tuned with. Only the TTLs and the timeout come from
/// the environment (see `config`); the rest are defaults that tests shorten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// TTLs per kind.
    pub ttls: CacheTtls,
    /// The longest one Redis call may take before the read falls through to the store; default
    /// 200 ms.
    pub timeout: Duration,
    /// Consecutive failed calls that open the circuit breaker; default 3.
    pub breaker_failures: u32,
    /// How long an open breaker skips Redis before one call probes it; default 5 s.
    pub breaker_cool_down: Duration,
    /// How long the cross-container stampede lock is held at most; default 2 s.
    pub lock_ttl: Duration,
    /// How long a request that did not get the lock polls the cache for the winner's value
    /// before reading the store itself; default 300 ms.
    pub lock_wait: Duration,
    /// How often the namespace version is read again from Redis; default 5 s. After
    /// [`super::CacheAside::clear_all`] in one container, others serve the old namespace for at
    /// most this long.
    pub version_refresh: Duration,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            ttls: CacheTtls::default(),
            timeout: Duration::from_millis(200),
            breaker_failures: 3,
            breaker_cool_down: Duration::from_secs(5),
            lock_ttl: Duration::from_secs(2),
            lock_wait: Duration::from_millis(300),
            version_refresh: Duration::from_secs(5),
        }
    }
}

/// `ttl` ± 10 %, at least a millisecond, so keys written together do not expire together.
pub(crate) fn jittered(ttl: Duration) -> Duration {
    let mut bytes = [0u8; 8];
    let spread = ttl.as_millis() / 10;
    let offset = match (getrandom::fill(&mut bytes), u64::try_from(spread * 2)) {
        (Ok(()), Ok(range)) if range > 0 => u64::from_le_bytes(bytes) % range,
        _ => u64::try_from(spread).unwrap_or(0),
    };
    let base = ttl.saturating_sub(Duration::from_millis(u64::try_from(spread).unwrap_or(0)));
    (base + Duration::from_millis(offset)).max(Duration::from_millis(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let ttl = jittered(Duration::from_secs(3600));
            assert!(ttl >= Duration::from_secs(3240) && ttl <= Duration::from_secs(3960));
        }
    }

    #[test]
    fn jitter_spreads_expiries() {
        let ttls: std::collections::HashSet<_> = (0..100)
            .map(|_| jittered(Duration::from_secs(3600)))
            .collect();
        assert!(ttls.len() > 50, "only {} distinct TTLs", ttls.len());
    }

    #[test]
    fn the_defaults_follow_the_old_system_but_profiles_live_under_a_minute() {
        let ttls = CacheTtls::default();
        assert_eq!(ttls.of(CacheKind::Exam), Duration::from_secs(7200));
        assert_eq!(ttls.of(CacheKind::ExamQuestions), Duration::from_secs(7200));
        assert_eq!(ttls.of(CacheKind::UserProfile), Duration::from_secs(54));
        assert_eq!(ttls.of(CacheKind::ExamResult), Duration::from_secs(7200));
        assert_eq!(ttls.of(CacheKind::UserExams), Duration::from_secs(1800));
        assert_eq!(ttls.of(CacheKind::ExamList), Duration::from_secs(1800));
    }

    #[test]
    fn a_longer_profile_ttl_is_cut_so_revocation_takes_under_a_minute() {
        let ttls = CacheTtls {
            user_profile: Duration::from_secs(3600),
            ..CacheTtls::default()
        };
        assert_eq!(ttls.of(CacheKind::UserProfile), PROFILE_TTL_MAX);
        let shorter = CacheTtls {
            user_profile: Duration::from_secs(5),
            ..CacheTtls::default()
        };
        assert_eq!(shorter.of(CacheKind::UserProfile), Duration::from_secs(5));
        for _ in 0..1000 {
            assert!(jittered(ttls.of(CacheKind::UserProfile)) < Duration::from_secs(60));
        }
    }
}
