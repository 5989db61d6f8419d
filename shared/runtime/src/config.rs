//! Typed configuration, loaded once at init from the environment. A missing or malformed
//! variable stops start-up with a message that names it. Secrets are wrapped so they never print.

use std::time::Duration;

use oes_adapters::redis_cache::RedisTopology;
use oes_adapters::resources::Provisioned;
use oes_domain::cache::{CacheSettings, CacheTtls};
use oes_domain::security::{JwtSettings, Secret};

/// A configuration variable is missing or malformed.
#[derive(thiserror::Error)]
pub enum ConfigError {
    /// Required and not set (or empty).
    #[error("missing environment variable {0}")]
    Missing(&'static str),
    /// Set, but unusable.
    #[error("invalid environment variable {name}: {reason}")]
    Invalid {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The message itself: a function's `main` that returns this error prints it with `{:?}`
/// (`Error: missing environment variable OES_TABLE`), and that line is all its log says.
impl std::fmt::Debug for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// Reads variables through a lookup function (the process environment, or a map in tests).
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

/// The process environment.
pub fn process_env() -> Env<impl Fn(&str) -> Option<String>> {
    Env(|name: &str| std::env::var(name).ok())
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The value of `name`, if set and not blank.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    /// This environment with `value` for `name` where `name` is unset or blank.
    pub fn or_default(
        self,
        name: &'static str,
        value: String,
    ) -> Env<impl Fn(&str) -> Option<String>> {
        Env(move |asked: &str| {
            (self.0)(asked)
                .filter(|v| !v.trim().is_empty())
                .or_else(|| (asked == name).then(|| value.clone()))
        })
    }

    /// The value of `name`, or an error naming it.
    pub fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    /// `name` parsed as `T`, or `default` when unset.
    pub fn parsed<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
    ) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::Invalid {
                    name,
                    reason: e.to_string(),
                }),
        }
    }

    /// `name` parsed as `T` within `range`, or `default` when unset. A value outside is an error
    /// at init, never cut to the range or left to fail at the first request.
    pub fn within<T>(
        &self,
        name: &'static str,
        default: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
        T::Err: std::fmt::Display,
    {
        let value = self.parsed(name, default)?;
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(ConfigError::Invalid {
                name,
                reason: format!("must be between {} and {}", range.start(), range.end()),
            })
        }
    }
}

/// How long email job records are kept when `OES_JOB_RETENTION_DAYS` is unset.
pub const DEFAULT_JOB_RETENTION_DAYS: i64 = 14;

/// Where the shared resources are.
#[derive(Debug, Clone)]
pub struct ResourceConfig {
    /// DynamoDB table (`OES_TABLE`).
    pub table: String,
    /// Priority email lane (`OES_PRIORITY_QUEUE_URL`).
    pub priority_queue_url: String,
    /// Bulk email lane (`OES_BULK_QUEUE_URL`).
    pub bulk_queue_url: String,
    /// The dead-letter queue (`OES_DLQ_URL`): the worker sets messages aside there, admin-api
    /// lists and redrives them; auth-api does without it.
    pub dead_letter_queue_url: Option<String>,
    /// How long email job records are kept after their last change
    /// (`OES_JOB_RETENTION_DAYS`, default 14).
    pub job_retention_seconds: i64,
    /// The lanes' event source mappings, which admin-api pauses and resumes
    /// (`OES_PRIORITY_LANE_MAPPING`, `OES_BULK_LANE_MAPPING`: both or neither). `oes-local` and
    /// the tests go without: their lanes switch in memory, where `oes-local`'s pollers look.
    pub lane_mappings: Option<LaneMappings>,
}

/// The UUIDs of the lanes' event source mappings (what `!Ref` of a mapping gives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneMappings {
    /// The priority lane's (`OES_PRIORITY_LANE_MAPPING`).
    pub priority: String,
    /// The bulk lane's (`OES_BULK_LANE_MAPPING`).
    pub bulk: String,
}

impl LaneMappings {
    /// Both mappings, neither, or an error naming the one missing.
    fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Option<Self>, ConfigError> {
        match (
            env.optional("OES_PRIORITY_LANE_MAPPING"),
            env.optional("OES_BULK_LANE_MAPPING"),
        ) {
            (None, None) => Ok(None),
            (Some(priority), Some(bulk)) => Ok(Some(Self { priority, bulk })),
            (None, Some(_)) => Err(ConfigError::Missing("OES_PRIORITY_LANE_MAPPING")),
            (Some(_), None) => Err(ConfigError::Missing("OES_BULK_LANE_MAPPING")),
        }
    }
}

impl ResourceConfig {
    /// Reads `OES_TABLE`, `OES_PRIORITY_QUEUE_URL`, `OES_BULK_QUEUE_URL`, `OES_DLQ_URL`,
    /// `OES_JOB_RETENTION_DAYS`, `OES_PRIORITY_LANE_MAPPING`, `OES_BULK_LANE_MAPPING`.
    pub fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            table: env.required("OES_TABLE")?,
            priority_queue_url: env.required("OES_PRIORITY_QUEUE_URL")?,
            bulk_queue_url: env.required("OES_BULK_QUEUE_URL")?,
            dead_letter_queue_url: env.optional("OES_DLQ_URL"),
            job_retention_seconds: job_retention_seconds(env)?,
            lane_mappings: LaneMappings::load(env)?,
        })
    }
}

/// Configuration of the HTTP APIs (auth-api, exam-api, admin-api).
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Table and queues.
    pub resources: ResourceConfig,
    /// Redis and the cache-aside policy.
    pub cache: CacheConfig,
    /// `OES_JWT_SECRET` (≥ 32 bytes), `OES_JWT_ISSUER` (default `oes`), `OES_JWT_AUDIENCE`
    /// (default `oes-api`), `OES_ACCESS_TOKEN_TTL_SECONDS` (default 3600).
    pub jwt: JwtSettings,
}

impl ApiConfig {
    /// The dead-letter queue's URL, which admin-api needs (`OES_DLQ_URL`).
    pub fn dead_letter_queue_url(&self) -> Result<&str, ConfigError> {
        self.resources
            .dead_letter_queue_url
            .as_deref()
            .ok_or(ConfigError::Missing("OES_DLQ_URL"))
    }

    /// The lanes' event source mappings, which admin-api needs to pause and resume them
    /// (`OES_PRIORITY_LANE_MAPPING`, `OES_BULK_LANE_MAPPING`).
    pub fn lane_mappings(&self) -> Result<&LaneMappings, ConfigError> {
        self.resources
            .lane_mappings
            .as_ref()
            .ok_or(ConfigError::Missing("OES_PRIORITY_LANE_MAPPING"))
    }

    /// What admin-api needs on top of [`ApiConfig::REQUIRED`]: the dead-letter queue and the
    /// lanes' event source mappings.
    pub const ADMIN_API: &[&str] = &[
        "OES_DLQ_URL",
        "OES_PRIORITY_LANE_MAPPING",
        "OES_BULK_LANE_MAPPING",
    ];

    /// The variables without which an API function does not start.
    pub const REQUIRED: &[&str] = &[
        "OES_TABLE",
        "OES_PRIORITY_QUEUE_URL",
        "OES_BULK_QUEUE_URL",
        "OES_JWT_SECRET",
    ];

    /// Loads from `env`.
    pub fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let cache = CacheConfig::load(env)?;
        Ok(Self {
            resources: ResourceConfig::load(env)?,
            cache,
            jwt: jwt_settings(env)?,
        })
    }
}

/// Configuration of the attempt sweeper: the table, the lanes its result emails go to, and the
/// cache it invalidates. No signing key: it serves no request.
#[derive(Debug, Clone)]
pub struct SweeperConfig {
    /// Table and queues.
    pub resources: ResourceConfig,
    /// Redis and the cache-aside policy (the keys a close invalidates).
    pub cache: CacheConfig,
}

impl SweeperConfig {
    /// The variables without which the sweeper does not start.
    pub const REQUIRED: &[&str] = &["OES_TABLE", "OES_PRIORITY_QUEUE_URL", "OES_BULK_QUEUE_URL"];

    /// Loads from `env`.
    pub fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            resources: ResourceConfig::load(env)?,
            cache: CacheConfig::load(env)?,
        })
    }
}

/// Where the cache is and how long things live in it.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// `REDIS_URL`: `redis://host:port`, or `rediss://` for TLS (ElastiCache Serverless); it may
    /// hold a password. Unset means no cache: every read goes to the store.
    pub redis_url: Option<Secret>,
    /// `REDIS_CLUSTER` (`true` or `false`, default `false`): speak the Redis Cluster protocol, as
    /// ElastiCache Serverless and cluster-mode-enabled clusters need.
    pub topology: RedisTopology,
    /// `OES_CACHE_PREFIX` (default `oes`): the start of every key; letters, digits, `-`, `_`, `.`.
    pub prefix: String,
    /// TTLs in seconds, each 1 s to 30 days: `OES_CACHE_TTL_EXAM_SECONDS` (default 7200),
    /// `OES_CACHE_TTL_EXAM_QUESTIONS_SECONDS` (7200), `OES_CACHE_TTL_USER_PROFILE_SECONDS`
    /// (54, and a longer one is cut to 54: see [`oes_domain::cache::PROFILE_TTL_MAX`]),
    /// `OES_CACHE_TTL_EXAM_RESULT_SECONDS` (7200), `OES_CACHE_TTL_USER_EXAMS_SECONDS`
    /// (1800), `OES_CACHE_TTL_EXAM_LIST_SECONDS` (1800), `OES_CACHE_TTL_NEGATIVE_SECONDS` (30,
    /// absent items; at least three times the timeout); and `OES_CACHE_TIMEOUT_MS` (default 200,
    /// 1 to 10,000): the longest one Redis call may take before a read falls through to the
    /// store. The rest are the defaults of [`CacheSettings`].
    pub settings: CacheSettings,
}

impl CacheConfig {
    /// Loads from `env`.
    pub fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let prefix = env
            .optional("OES_CACHE_PREFIX")
            .unwrap_or_else(|| "oes".into());
        if !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ConfigError::Invalid {
                name: "OES_CACHE_PREFIX",
                reason: "only letters, digits, '-', '_' and '.' are allowed".into(),
            });
        }
        let topology = if env.parsed("REDIS_CLUSTER", false)? {
            RedisTopology::Cluster
        } else {
            RedisTopology::Standalone
        };
        let defaults = CacheSettings::default();
        let ttl = |name, default: Duration| {
            env.within(name, default.as_secs(), 1..=MAX_CACHE_TTL_SECONDS)
                .map(Duration::from_secs)
        };
        let ttls = CacheTtls {
            exam: ttl("OES_CACHE_TTL_EXAM_SECONDS", defaults.ttls.exam)?,
            exam_questions: ttl(
                "OES_CACHE_TTL_EXAM_QUESTIONS_SECONDS",
                defaults.ttls.exam_questions,
            )?,
            user_profile: ttl(
                "OES_CACHE_TTL_USER_PROFILE_SECONDS",
                defaults.ttls.user_profile,
            )?,
            exam_result: ttl(
                "OES_CACHE_TTL_EXAM_RESULT_SECONDS",
                defaults.ttls.exam_result,
            )?,
            user_exams: ttl("OES_CACHE_TTL_USER_EXAMS_SECONDS", defaults.ttls.user_exams)?,
            exam_list: ttl("OES_CACHE_TTL_EXAM_LIST_SECONDS", defaults.ttls.exam_list)?,
            negative: ttl("OES_CACHE_TTL_NEGATIVE_SECONDS", defaults.ttls.negative)?,
        };
        let default_timeout = u64::try_from(defaults.timeout.as_millis()).unwrap_or(200);
        let timeout = Duration::from_millis(env.within(
            "OES_CACHE_TIMEOUT_MS",
            default_timeout,
            1..=MAX_CACHE_TIMEOUT_MS,
        )?);
        // A load is cached only if it ends well within the negative TTL (an invalidation's stamp
        // may live no longer: `CacheAside`'s fill rule), less two calls' timeouts: a negative
        // TTL within a few timeouts would leave nothing cached.
        if ttls.negative < 3 * timeout {
            return Err(ConfigError::Invalid {
                name: "OES_CACHE_TTL_NEGATIVE_SECONDS",
                reason: format!(
                    "must be at least three times OES_CACHE_TIMEOUT_MS ({} ms)",
                    timeout.as_millis()
                ),
            });
        }
        Ok(Self {
            redis_url: env.optional("REDIS_URL").map(Secret::new),
            topology,
            prefix,
            settings: CacheSettings {
                ttls,
                timeout,
                ..defaults
            },
        })
    }
}

/// `OES_JOB_RETENTION_DAYS` in seconds: [`MIN_JOB_RETENTION_DAYS`] to
/// [`MAX_JOB_RETENTION_DAYS`] days.
fn job_retention_seconds<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<i64, ConfigError> {
    let days = env.within(
        "OES_JOB_RETENTION_DAYS",
        DEFAULT_JOB_RETENTION_DAYS,
        MIN_JOB_RETENTION_DAYS..=MAX_JOB_RETENTION_DAYS,
    )?;
    Ok(days * 86_400)
}

/// The shortest a job record may be kept: as long as a letter of its job may wait on the
/// dead-letter queue (SQS keeps a message 14 days at most from its first send, and the template's
/// queues keep them that long). A redrive moves back a letter whose job has no record, and a
/// worker sends it: had the record of a job sent meanwhile expired first, it would be sent
/// twice.
pub const MIN_JOB_RETENTION_DAYS: i64 = 14;

/// The longest a job record may be kept: ten years.
pub const MAX_JOB_RETENTION_DAYS: i64 = 3_650;

/// The longest a cache entry may live: a month (Redis takes far longer; a longer TTL is a
/// mistake, and one past Redis's would fail every fill).
const MAX_CACHE_TTL_SECONDS: u64 = 30 * 86_400;

/// The longest a Redis call may wait: past that the cache costs more than the store it spares.
const MAX_CACHE_TIMEOUT_MS: u64 = 10_000;

/// JWT settings from `env`.
pub fn jwt_settings<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
) -> Result<JwtSettings, ConfigError> {
    let secret = env.required("OES_JWT_SECRET")?;
    if secret.len() < 32 {
        return Err(ConfigError::Invalid {
            name: "OES_JWT_SECRET",
            reason: "must be at least 32 bytes".into(),
        });
    }
    let ttl_seconds: i64 = env.within("OES_ACCESS_TOKEN_TTL_SECONDS", 3600, 60..=86_400)?;
    Ok(JwtSettings {
        secret: Secret::new(secret),
        issuer: env
            .optional("OES_JWT_ISSUER")
            .unwrap_or_else(|| "oes".into()),
        audience: env
            .optional("OES_JWT_AUDIENCE")
            .unwrap_or_else(|| "oes-api".into()),
        ttl_seconds,
    })
}

/// Configuration of the email worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Table (job records), the two lanes it consumes and the dead-letter queue (required here:
    /// where failed and undecodable messages are set aside).
    pub resources: ResourceConfig,
    /// `OES_SENDER_EMAIL`: the verified SES identity mail is sent from.
    pub sender_email: String,
    /// `OES_PUBLIC_BASE_URL`: where links in emails point.
    pub public_base_url: String,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// `OES_WORKER_CONCURRENCY` (default 5): records of a batch sent at once.
    pub concurrency: usize,
}

/// When to try a failed send again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// `OES_BACKOFF_BASE_SECONDS` (default 10): the first retry waits about this long; each
    /// next one twice as long (with the default 8 attempts, the last comes ~21 min after the
    /// first: a 15-minute SES outage dead-letters nothing).
    pub base_seconds: u32,
    /// `OES_BACKOFF_MAX_SECONDS` (default 900): no retry waits longer.
    pub max_seconds: u32,
    /// `OES_PAUSED_BACKOFF_SECONDS` (default 900): the wait when the whole account cannot send.
    pub paused_seconds: u32,
    /// `OES_SEND_LEASE_SECONDS` (default 60): how long a worker holds a job while sending it.
    pub lease_seconds: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base_seconds: 10,
            max_seconds: 900,
            paused_seconds: 900,
            lease_seconds: 60,
        }
    }
}

impl RetryPolicy {
    /// The backoff after failed attempt `attempt` (1-based): `base · 2^(attempt−1)` plus up to
    /// `base` of jitter, never more than `max_seconds`.
    pub fn backoff(&self, attempt: u32, jitter: u32) -> u32 {
        let exponent = attempt.saturating_sub(1).min(20);
        let delay = self.base_seconds.saturating_mul(1u32 << exponent);
        let jitter = if self.base_seconds == 0 {
            0
        } else {
            jitter % (self.base_seconds + 1)
        };
        delay.saturating_add(jitter).min(self.max_seconds)
    }
}

impl WorkerConfig {
    /// The variables without which the worker does not start.
    pub const REQUIRED: &[&str] = &[
        "OES_TABLE",
        "OES_PRIORITY_QUEUE_URL",
        "OES_BULK_QUEUE_URL",
        "OES_DLQ_URL",
        "OES_SENDER_EMAIL",
        "OES_PUBLIC_BASE_URL",
    ];

    /// Loads from `env`.
    pub fn load<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let public_base_url = public_base_url(env)?;
        let defaults = RetryPolicy::default();
        let resources = ResourceConfig::load(env)?;
        if resources.dead_letter_queue_url.is_none() {
            return Err(ConfigError::Missing("OES_DLQ_URL"));
        }
        Ok(Self {
            resources,
            sender_email: env.required("OES_SENDER_EMAIL")?,
            public_base_url,
            // Each wait is a message's delay on its lane, which SQS takes up to 900 s.
            retry: RetryPolicy {
                base_seconds: env.within(
                    "OES_BACKOFF_BASE_SECONDS",
                    defaults.base_seconds,
                    1..=900,
                )?,
                max_seconds: env.within(
                    "OES_BACKOFF_MAX_SECONDS",
                    defaults.max_seconds,
                    1..=900,
                )?,
                paused_seconds: env.within(
                    "OES_PAUSED_BACKOFF_SECONDS",
                    defaults.paused_seconds,
                    1..=900,
                )?,
                lease_seconds: env.within(
                    "OES_SEND_LEASE_SECONDS",
                    defaults.lease_seconds,
                    MIN_LEASE_SECONDS..=MAX_LEASE_SECONDS,
                )?,
            },
            concurrency: env.within("OES_WORKER_CONCURRENCY", 5usize, 1..=100)?,
        })
    }
}

/// The shortest send lease `OES_SEND_LEASE_SECONDS` takes: longer than a claim, a send and the
/// writes recording its outcome can take at worst, every call running into its timeout (36.2 s,
/// `tests/tests/integration/timeout_chain.rs`), so a slow send never lets a second worker send
/// the job again.
pub const MIN_LEASE_SECONDS: u32 = 40;

/// The longest: shorter than the lanes' visibility timeout (780 s).
pub const MAX_LEASE_SECONDS: u32 = 600;

/// `OES_PUBLIC_BASE_URL`: where the links in emails point. An absolute `http(s)` URL with a
/// host, without a query or a fragment (a link's own path and query follow it), a trailing
/// slash dropped.
fn public_base_url<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<String, ConfigError> {
    parse_public_base_url(&env.required("OES_PUBLIC_BASE_URL")?)
}

/// `raw` as `OES_PUBLIC_BASE_URL` (see [`WorkerConfig`]), for a tool given it another way
/// (`oes-local --public-base-url`).
pub fn parse_public_base_url(raw: &str) -> Result<String, ConfigError> {
    const NAME: &str = "OES_PUBLIC_BASE_URL";
    let raw = raw.trim();
    let invalid = |reason: &str| ConfigError::Invalid {
        name: NAME,
        reason: format!("{reason} (e.g. https://app.example.com)"),
    };
    let uri: http::Uri = raw.parse().map_err(|_| invalid("is not a URL"))?;
    if !matches!(uri.scheme_str(), Some("https" | "http")) {
        return Err(invalid("must start with https:// or http://"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("must name a host"));
    }
    if uri.query().is_some() || raw.contains('#') {
        return Err(invalid(
            "must have no query or fragment: each link adds its own",
        ));
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

impl From<&Provisioned> for ResourceConfig {
    /// The resource configuration the functions would load for these provisioned resources (job
    /// records kept the default retention).
    fn from(provisioned: &Provisioned) -> Self {
        Self {
            table: provisioned.table.clone(),
            priority_queue_url: provisioned.priority_queue_url.clone(),
            bulk_queue_url: provisioned.bulk_queue_url.clone(),
            dead_letter_queue_url: Some(provisioned.dead_letter_queue_url.clone()),
            job_retention_seconds: DEFAULT_JOB_RETENTION_DAYS * 86_400,
            lane_mappings: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use oes_domain::email::DEFAULT_MAX_ATTEMPTS;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Env(move |name: &str| map.get(name).cloned())
    }

    #[test]
    fn a_default_fills_a_variable_only_where_it_is_unset_or_blank() {
        let unset = env(&[]).or_default("A", "fallback".into());
        assert_eq!(unset.optional("A").as_deref(), Some("fallback"));
        assert_eq!(unset.optional("B"), None, "another name is left unset");
        let blank = env(&[("A", "  ")]).or_default("A", "fallback".into());
        assert_eq!(blank.optional("A").as_deref(), Some("fallback"));
        let set = env(&[("A", "given")]).or_default("A", "fallback".into());
        assert_eq!(set.optional("A").as_deref(), Some("given"));
    }

    /// Job records expire `OES_JOB_RETENTION_DAYS` after their last change: 0 or less would
    /// expire them at once, fewer than 14 before a letter of their job left the dead-letter
    /// queue, and a number of days whose seconds do not fit wrapped round (a panic in a debug
    /// build).
    #[test]
    fn the_job_retention_is_a_number_of_days_that_makes_sense() {
        let base = [
            ("OES_TABLE", "t"),
            ("OES_PRIORITY_QUEUE_URL", "p"),
            ("OES_BULK_QUEUE_URL", "b"),
        ];
        for days in ["0", "-1", "13", "9223372036854775807"] {
            let pairs: Vec<(&str, &str)> = base
                .iter()
                .copied()
                .chain([("OES_JOB_RETENTION_DAYS", days)])
                .collect();
            let loaded = std::panic::catch_unwind(|| ResourceConfig::load(&env(&pairs)).is_err());
            assert_eq!(loaded.ok(), Some(true), "{days} days is refused");
        }
        let pairs: Vec<(&str, &str)> = base
            .iter()
            .copied()
            .chain([("OES_JOB_RETENTION_DAYS", "3650")])
            .collect();
        let loaded = ResourceConfig::load(&env(&pairs)).expect("ten years");
        assert_eq!(loaded.job_retention_seconds, 3650 * 86_400);
    }

    const COMPLETE: &[(&str, &str)] = &[
        ("OES_TABLE", "t"),
        ("OES_PRIORITY_QUEUE_URL", "http://q/p"),
        ("OES_BULK_QUEUE_URL", "http://q/b"),
        ("OES_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
    ];

    #[test]
    fn a_complete_environment_loads_with_defaults() {
        let config = ApiConfig::load(&env(COMPLETE)).expect("loads");
        assert_eq!(config.jwt.issuer, "oes");
        assert_eq!(config.jwt.ttl_seconds, 3600);
        assert!(config.cache.redis_url.is_none());
        assert_eq!(config.cache.topology, RedisTopology::Standalone);
        assert_eq!(config.cache.prefix, "oes");
        assert_eq!(config.cache.settings, CacheSettings::default());
        assert!(
            !format!("{config:?}").contains("0123456789abcdef"),
            "the secret never prints"
        );
    }

    #[test]
    fn each_missing_variable_is_named() {
        for skip in [
            "OES_TABLE",
            "OES_PRIORITY_QUEUE_URL",
            "OES_BULK_QUEUE_URL",
            "OES_JWT_SECRET",
        ] {
            let pairs: Vec<_> = COMPLETE
                .iter()
                .copied()
                .filter(|(k, _)| *k != skip)
                .collect();
            let error = ApiConfig::load(&env(&pairs)).expect_err("incomplete");
            assert_eq!(
                error.to_string(),
                format!("missing environment variable {skip}")
            );
        }
    }

    #[test]
    fn the_lane_mappings_come_both_or_neither() {
        let config = ApiConfig::load(&env(COMPLETE)).expect("loads");
        assert!(config.resources.lane_mappings.is_none());
        assert_eq!(
            config
                .lane_mappings()
                .expect_err("admin-api needs them")
                .to_string(),
            "missing environment variable OES_PRIORITY_LANE_MAPPING"
        );
        let priority = ("OES_PRIORITY_LANE_MAPPING", "uuid-p");
        let bulk = ("OES_BULK_LANE_MAPPING", "uuid-b");
        let both = [COMPLETE, &[priority, bulk]].concat();
        let config = ApiConfig::load(&env(&both)).expect("loads");
        assert_eq!(
            config.lane_mappings().expect("given"),
            &LaneMappings {
                priority: "uuid-p".into(),
                bulk: "uuid-b".into()
            }
        );
        for (given, missing) in [(priority, bulk.0), (bulk, priority.0)] {
            let one = [COMPLETE, &[given]].concat();
            let error = ApiConfig::load(&env(&one)).expect_err("one without the other");
            assert_eq!(
                error.to_string(),
                format!("missing environment variable {missing}")
            );
        }
    }

    /// Everything the worker needs (a later pair of the same name wins: see [`env`]).
    const WORKER: &[(&str, &str)] = &[
        ("OES_TABLE", "t"),
        ("OES_PRIORITY_QUEUE_URL", "http://q/p"),
        ("OES_BULK_QUEUE_URL", "http://q/b"),
        ("OES_DLQ_URL", "http://q/d"),
        ("OES_SENDER_EMAIL", "a@example.com"),
        ("OES_PUBLIC_BASE_URL", "https://app.example.com"),
    ];

    #[test]
    fn the_worker_names_each_missing_variable() {
        let complete = WORKER;
        WorkerConfig::load(&env(complete)).expect("a complete environment loads");
        for &skip in WorkerConfig::REQUIRED {
            let pairs: Vec<_> = complete
                .iter()
                .copied()
                .filter(|(k, _)| *k != skip)
                .collect();
            let error = WorkerConfig::load(&env(&pairs)).expect_err("incomplete");
            assert_eq!(
                error.to_string(),
                format!("missing environment variable {skip}")
            );
        }
    }

    /// The worker's complete environment with `name` set to `value`.
    fn worker_with(name: &str, value: &str) -> Result<WorkerConfig, ConfigError> {
        let mut pairs = WORKER.to_vec();
        pairs.push((name, value));
        WorkerConfig::load(&env(&pairs))
    }

    #[test]
    fn a_links_base_that_would_make_broken_links_is_refused_at_init() {
        let bad = [
            "https://",
            "http://",
            "https://app.example.com/?a=b",
            "https://app.example.com/#/",
            "ftp://app.example.com",
            "app.example.com",
        ];
        for value in bad {
            let error = worker_with("OES_PUBLIC_BASE_URL", value)
                .err()
                .unwrap_or_else(|| panic!("{value} was taken"));
            assert!(error.to_string().contains("OES_PUBLIC_BASE_URL"), "{error}");
        }
        let good = [
            ("https://app.example.com/", "https://app.example.com"),
            ("http://localhost:3000", "http://localhost:3000"),
            ("https://example.com/exams", "https://example.com/exams"),
        ];
        for (value, kept) in good {
            let config = worker_with("OES_PUBLIC_BASE_URL", value).expect(value);
            assert_eq!(config.public_base_url, kept);
        }
    }

    #[test]
    fn retry_settings_the_worker_cannot_use_are_refused_at_init() {
        let bad = [
            // A lease that passes while the send is under way: a second worker sends it again.
            ("OES_SEND_LEASE_SECONDS", "0"),
            // Waits a lane cannot delay a message by (900 s at most).
            ("OES_BACKOFF_MAX_SECONDS", "3600"),
            ("OES_PAUSED_BACKOFF_SECONDS", "901"),
            // No wait at all, and one whose jitter overflowed.
            ("OES_BACKOFF_BASE_SECONDS", "0"),
            ("OES_BACKOFF_BASE_SECONDS", "4294967295"),
            ("OES_WORKER_CONCURRENCY", "0"),
        ];
        for (name, value) in bad {
            let error = worker_with(name, value)
                .err()
                .unwrap_or_else(|| panic!("{name}={value} was taken"));
            assert!(error.to_string().contains(name), "{error}");
        }
        let config = worker_with("OES_SEND_LEASE_SECONDS", "120").expect("in range");
        assert_eq!(config.retry.lease_seconds, 120);
    }

    #[test]
    fn a_cache_ttl_or_timeout_past_any_use_is_refused_at_init() {
        for (name, value) in [
            ("OES_CACHE_TTL_EXAM_SECONDS", "100000000000000000"),
            ("OES_CACHE_TTL_NEGATIVE_SECONDS", "0"),
            ("OES_CACHE_TIMEOUT_MS", "60000"),
        ] {
            let mut pairs = COMPLETE.to_vec();
            pairs.push((name, value));
            let error = ApiConfig::load(&env(&pairs))
                .err()
                .unwrap_or_else(|| panic!("{name}={value} was taken"));
            assert!(error.to_string().contains(name), "{error}");
        }
    }

    #[test]
    fn the_sweeper_names_each_missing_variable_and_needs_no_signing_key() {
        let complete = [
            ("OES_TABLE", "t"),
            ("OES_PRIORITY_QUEUE_URL", "http://q/p"),
            ("OES_BULK_QUEUE_URL", "http://q/b"),
        ];
        SweeperConfig::load(&env(&complete)).expect("a complete environment loads");
        for &skip in SweeperConfig::REQUIRED {
            let pairs: Vec<_> = complete
                .iter()
                .copied()
                .filter(|(k, _)| *k != skip)
                .collect();
            let error = SweeperConfig::load(&env(&pairs)).expect_err("incomplete");
            assert_eq!(
                error.to_string(),
                format!("missing environment variable {skip}")
            );
        }
    }

    #[test]
    fn backoff_doubles_from_the_base_with_bounded_jitter_and_a_cap() {
        let policy = RetryPolicy::default();
        assert_eq!([1, 2, 3, 4].map(|n| policy.backoff(n, 0)), [10, 20, 40, 80]);
        assert_eq!(policy.backoff(3, 2), 42);
        assert_eq!(policy.backoff(3, 27), 45, "jitter is at most the base");
        assert_eq!(policy.backoff(30, 0), 900);
        let before_the_last: u32 = (1..DEFAULT_MAX_ATTEMPTS)
            .map(|n| policy.backoff(n, 0))
            .sum();
        assert!(
            before_the_last >= 15 * 60,
            "the default attempts outlast a 15-minute outage: {before_the_last} s"
        );
        assert_eq!(
            RetryPolicy {
                base_seconds: 0,
                ..policy
            }
            .backoff(5, 9),
            0
        );
    }

    #[test]
    fn malformed_values_are_refused() {
        let mut pairs = COMPLETE.to_vec();
        pairs.push(("OES_ACCESS_TOKEN_TTL_SECONDS", "soon"));
        assert!(ApiConfig::load(&env(&pairs)).is_err());
        let short: Vec<_> = COMPLETE
            .iter()
            .map(|&(k, v)| {
                if k == "OES_JWT_SECRET" {
                    (k, "short")
                } else {
                    (k, v)
                }
            })
            .collect();
        assert!(ApiConfig::load(&env(&short)).is_err());
    }

    #[test]
    fn cache_variables_are_read() {
        let mut pairs = COMPLETE.to_vec();
        pairs.extend([
            ("REDIS_URL", "rediss://user:hunter2@cache.example.com:6379"),
            ("REDIS_CLUSTER", "true"),
            ("OES_CACHE_PREFIX", "oes-prod"),
            ("OES_CACHE_TTL_EXAM_SECONDS", "60"),
            ("OES_CACHE_TTL_EXAM_QUESTIONS_SECONDS", "61"),
            ("OES_CACHE_TTL_USER_PROFILE_SECONDS", "62"),
            ("OES_CACHE_TTL_EXAM_RESULT_SECONDS", "63"),
            ("OES_CACHE_TTL_USER_EXAMS_SECONDS", "64"),
            ("OES_CACHE_TTL_EXAM_LIST_SECONDS", "65"),
            ("OES_CACHE_TTL_NEGATIVE_SECONDS", "5"),
            ("OES_CACHE_TIMEOUT_MS", "50"),
        ]);
        let config = ApiConfig::load(&env(&pairs)).expect("loads");
        let cache = &config.cache;
        assert_eq!(cache.topology, RedisTopology::Cluster);
        assert_eq!(cache.prefix, "oes-prod");
        let ttls = cache.settings.ttls;
        let seconds = [
            ttls.exam,
            ttls.exam_questions,
            ttls.user_profile,
            ttls.exam_result,
            ttls.user_exams,
            ttls.exam_list,
            ttls.negative,
        ]
        .map(|ttl| ttl.as_secs());
        assert_eq!(seconds, [60, 61, 62, 63, 64, 65, 5]);
        assert_eq!(cache.settings.timeout, Duration::from_millis(50));
        assert!(
            !format!("{config:?}").contains("hunter2"),
            "the Redis password never prints"
        );
    }

    #[test]
    fn malformed_cache_variables_are_refused_by_name() {
        let cases = [
            ("REDIS_CLUSTER", "yes"),
            ("OES_CACHE_PREFIX", "oes{x}"),
            ("OES_CACHE_PREFIX", "two words"),
            ("OES_CACHE_TTL_EXAM_SECONDS", "2h"),
            ("OES_CACHE_TTL_EXAM_QUESTIONS_SECONDS", "-1"),
            ("OES_CACHE_TTL_USER_PROFILE_SECONDS", "0"),
            ("OES_CACHE_TTL_EXAM_RESULT_SECONDS", "1.5"),
            ("OES_CACHE_TTL_USER_EXAMS_SECONDS", "x"),
            ("OES_CACHE_TTL_EXAM_LIST_SECONDS", "0"),
            ("OES_CACHE_TTL_NEGATIVE_SECONDS", "soon"),
            ("OES_CACHE_TIMEOUT_MS", "0"),
        ];
        for (name, value) in cases {
            let mut pairs = COMPLETE.to_vec();
            pairs.push((name, value));
            let error = ApiConfig::load(&env(&pairs)).expect_err(value);
            assert!(error.to_string().contains(name), "{name}={value}: {error}");
        }
    }

    /// A load is cached only if it ends well within the negative TTL, less two Redis calls'
    /// timeouts: a negative TTL within a few timeouts would leave nothing cached.
    #[test]
    fn a_negative_ttl_within_three_cache_timeouts_is_refused() {
        let mut pairs = COMPLETE.to_vec();
        pairs.extend([
            ("OES_CACHE_TTL_NEGATIVE_SECONDS", "1"),
            ("OES_CACHE_TIMEOUT_MS", "400"),
        ]);
        let error = ApiConfig::load(&env(&pairs)).expect_err("refused");
        assert!(
            error.to_string().contains("OES_CACHE_TTL_NEGATIVE_SECONDS"),
            "{error}"
        );
        pairs.push(("OES_CACHE_TIMEOUT_MS", "333"));
        assert!(ApiConfig::load(&env(&pairs)).is_ok());
    }
}
