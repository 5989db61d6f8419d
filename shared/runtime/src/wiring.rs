//! Builds adapters from configuration, once, at init. `main` of each function calls this and
//! passes the result to its handlers; nothing is constructed per invocation.

use std::sync::Arc;

use crate::config::{ApiConfig, CacheConfig, Env, LaneMappings, ResourceConfig, WorkerConfig};
use crate::rate_limit::RateLimiter;
use oes_adapters::dynamo::{DynamoAttempts, DynamoExams, DynamoJobs, DynamoTokens, DynamoUsers};
use oes_adapters::lambda::EventSourceMappings;
use oes_adapters::memory::{
    MemoryAttempts, MemoryCache, MemoryExams, MemoryJobs, MemoryTokens, MemoryUsers, NoCache,
};
use oes_adapters::redis_cache::RedisCache;
use oes_adapters::secrets::read_secret;
use oes_adapters::ses::SesMailer;
use oes_adapters::sqs::SqsQueues;
use oes_domain::cache::{CacheAside, CacheKeys, CacheSettings};
use oes_domain::clock::SystemClock;
use oes_domain::pipeline::EmailLanes;
use oes_domain::ports::{
    AttemptStore, BoxError, Cache, ExamStore, JobIndex, JobLedger, LaneSwitch, Mailer,
    MessageQueues, QueueControl, TokenStore, UserStore,
};
use oes_domain::producer::EmailProducer;

/// The adapters the HTTP APIs use.
#[derive(Clone)]
pub struct ApiAdapters {
    /// Accounts.
    pub users: Arc<dyn UserStore>,
    /// One-time tokens.
    pub tokens: Arc<dyn TokenStore>,
    /// Exams and questions.
    pub exams: Arc<dyn ExamStore>,
    /// Attempts and results.
    pub attempts: Arc<dyn AttemptStore>,
    /// Email jobs: producer side.
    pub emails: EmailProducer,
    /// The email queues (the admin API lists, counts and redrives them).
    pub queues: Arc<dyn MessageQueues>,
    /// Email job records.
    pub jobs: Arc<dyn JobLedger>,
    /// The same records by state (the admin API's listings and counts).
    pub job_index: Arc<dyn JobIndex>,
    /// Cache-aside reads.
    pub cache: CacheAside,
    /// Rate limits, counted in the same Redis.
    pub limiter: RateLimiter,
}

impl ApiAdapters {
    /// The real adapters: DynamoDB, SQS, and the cache of [`cache_aside`]. Must be called inside
    /// a Tokio runtime.
    pub fn aws(
        clients: &oes_adapters::aws::AwsClients,
        config: &ApiConfig,
    ) -> Result<Self, redis::RedisError> {
        Self::aws_for(clients, &config.resources, &config.cache)
    }

    /// The real adapters for `resources`, reading through the cache `cache` configures (the
    /// attempt sweeper, which has no [`ApiConfig`]). Must be called inside a Tokio runtime.
    pub fn aws_for(
        clients: &oes_adapters::aws::AwsClients,
        resources: &ResourceConfig,
        cache: &CacheConfig,
    ) -> Result<Self, redis::RedisError> {
        let redis = redis(cache)?;
        let records = Arc::new(DynamoJobs::new(
            clients.dynamodb(),
            &resources.table,
            resources.job_retention_seconds,
        ));
        let jobs: Arc<dyn JobLedger> = records.clone();
        let queues: Arc<dyn MessageQueues> = Arc::new(SqsQueues::new(
            clients.sqs(),
            &resources.priority_queue_url,
            &resources.bulk_queue_url,
            resources.dead_letter_queue_url.as_deref(),
        ));
        Ok(Self {
            users: Arc::new(DynamoUsers::new(clients.dynamodb(), &resources.table)),
            tokens: Arc::new(DynamoTokens::new(clients.dynamodb(), &resources.table)),
            exams: Arc::new(DynamoExams::new(clients.dynamodb(), &resources.table)),
            attempts: Arc::new(DynamoAttempts::new(clients.dynamodb(), &resources.table)),
            emails: producer(&queues, &jobs),
            queues,
            jobs,
            job_index: records,
            limiter: RateLimiter::new(redis.clone(), &cache.prefix, &cache.settings),
            cache: policy(redis, cache),
        })
    }

    /// In-memory adapters around the given email queues and job ledger (the embedded mode and
    /// unit tests).
    pub fn in_memory(queues: Arc<dyn MessageQueues>, records: Arc<MemoryJobs>) -> Self {
        let jobs: Arc<dyn JobLedger> = records.clone();
        let exams = Arc::new(MemoryExams::default());
        Self {
            users: Arc::new(MemoryUsers::default()),
            tokens: Arc::new(MemoryTokens::default()),
            attempts: Arc::new(MemoryAttempts::over(exams.clone())),
            exams,
            emails: producer(&queues, &jobs),
            queues,
            jobs,
            job_index: records,
            cache: CacheAside::new(
                Arc::new(MemoryCache::default()),
                CacheKeys::new("oes"),
                CacheSettings::default(),
            ),
            limiter: RateLimiter::in_memory(),
        }
    }
}

/// What pauses and resumes the lanes (admin-api): the worker's event source mappings. Only
/// admin-api builds it, so only admin-api links Lambda's client (`oes-local` switches its
/// pollers with a `MemoryLanes`).
pub fn lane_switch(
    clients: &oes_adapters::aws::AwsClients,
    mappings: &LaneMappings,
) -> Arc<dyn LaneSwitch> {
    Arc::new(EventSourceMappings::new(
        clients.lambda(),
        &mappings.priority,
        &mappings.bulk,
    ))
}

/// The producer of email jobs: a record in `jobs`, then a message on its lane of `queues`.
fn producer(queues: &Arc<dyn MessageQueues>, jobs: &Arc<dyn JobLedger>) -> EmailProducer {
    EmailProducer::new(
        Arc::new(EmailLanes::new(queues.clone())),
        jobs.clone(),
        Arc::new(SystemClock),
    )
}

/// The cache-aside policy `config` asks for: over Redis when `REDIS_URL` is set (the Redis
/// Cluster client with `REDIS_CLUSTER=true`, TLS with a `rediss://` URL), else over no cache at
/// all, since a per-container cache could not be invalidated across containers. Connects
/// lazily; must be called inside a Tokio runtime.
pub fn cache_aside(config: &CacheConfig) -> Result<CacheAside, redis::RedisError> {
    Ok(policy(redis(config)?, config))
}

/// The cache-aside policy over `redis`, or over no cache at all.
fn policy(redis: Option<Arc<dyn Cache>>, config: &CacheConfig) -> CacheAside {
    CacheAside::new(
        redis.unwrap_or_else(|| Arc::new(NoCache)),
        CacheKeys::new(&config.prefix),
        config.settings,
    )
}

/// The Redis client `config` asks for, if any (connects lazily).
fn redis(config: &CacheConfig) -> Result<Option<Arc<dyn Cache>>, redis::RedisError> {
    config
        .redis_url
        .as_ref()
        .map(|url| {
            let cache: Arc<dyn Cache> = Arc::new(RedisCache::connect(
                url.expose(),
                config.topology,
                config.settings.timeout,
            )?);
            Ok(cache)
        })
        .transpose()
}

/// The adapters the email worker uses.
#[derive(Clone)]
pub struct WorkerAdapters {
    /// Sends mail.
    pub mailer: Arc<dyn Mailer>,
    /// Job records and the send lease.
    pub jobs: Arc<dyn JobLedger>,
    /// Visibility changes and dead-lettering.
    pub control: Arc<dyn QueueControl>,
}

impl WorkerAdapters {
    /// SES v2, DynamoDB and SQS.
    pub fn aws(clients: &oes_adapters::aws::AwsClients, config: &WorkerConfig) -> Self {
        let resources = &config.resources;
        Self {
            mailer: Arc::new(SesMailer::new(clients.ses(), &config.sender_email)),
            jobs: Arc::new(DynamoJobs::new(
                clients.dynamodb(),
                &resources.table,
                resources.job_retention_seconds,
            )),
            control: Arc::new(EmailLanes::new(Arc::new(SqsQueues::new(
                clients.sqs(),
                &resources.priority_queue_url,
                &resources.bulk_queue_url,
                resources.dead_letter_queue_url.as_deref(),
            )))),
        }
    }
}

/// `env`, with `OES_JWT_SECRET` read from Secrets Manager (once, now) when `OES_JWT_SECRET_ARN`
/// names the secret and `OES_JWT_SECRET` itself is not set. What deploys uses the ARN; local runs
/// and tests set the key directly.
pub async fn resolve_jwt_secret<F: Fn(&str) -> Option<String>>(
    env: Env<F>,
    clients: &oes_adapters::aws::AwsClients,
) -> Result<Env<impl Fn(&str) -> Option<String>>, BoxError> {
    let fetched = match (
        env.optional("OES_JWT_SECRET"),
        env.optional("OES_JWT_SECRET_ARN"),
    ) {
        (None, Some(arn)) => Some(read_secret(&clients.secrets(), &arn).await?),
        _ => None,
    };
    Ok(Env(move |name: &str| match (name, &fetched) {
        ("OES_JWT_SECRET", Some(secret)) => Some(secret.clone()),
        _ => (env.0)(name),
    }))
}
