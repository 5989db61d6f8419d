//! The real-services mode: DynamoDB, SQS and SES v2 in the local emulator, Redis for the cache.
//! Resources are provisioned (idempotently) from the same definitions as `template.yaml`, one
//! SQS poller per lane drives the worker as the Lambda event source mapping does, and the
//! attempt sweep runs every few seconds as its schedule does.

use std::sync::Arc;

use admin_api::AdminApi;
use auth_api::hashing::HashPool;
use email_worker::Worker;
use exam_api::ExamApi;
use exam_api::sweep::AttemptSweeper;
use oes_adapters::aws::AwsClients;
use oes_adapters::memory::MemoryLanes;
use oes_adapters::redis_cache::RedisTopology;
use oes_adapters::resources::{Provisioned, provision, provision_jwt_secret};
use oes_domain::cache::CacheSettings;
use oes_domain::clock::SystemClock;
use oes_domain::ports::LaneSwitch;
use oes_domain::security::{JwtKeys, PasswordHasher, Secret};
use oes_runtime::config::{
    ApiConfig, CacheConfig, ResourceConfig, RetryPolicy, WorkerConfig, jwt_settings, process_env,
};
use oes_runtime::wiring::{ApiAdapters, WorkerAdapters, resolve_jwt_secret};

use crate::Functions;

/// Settings of the real-services mode.
pub struct Services {
    /// Resource name prefix (`OES_PREFIX`, default `oes-local`).
    pub prefix: String,
    /// `REDIS_URL`.
    pub redis_url: String,
    /// Base of the links in emails.
    pub public_base_url: String,
    /// The SES identity to send from.
    pub sender_email: String,
    /// Accounts to seed, if any: `(password, students)` ([`crate::seed`]).
    pub seed: Option<(String, usize)>,
}

/// The real-services mode, started.
pub struct Started {
    /// The functions, their pollers and sweep running.
    pub functions: Arc<Functions>,
    /// The table and queues.
    pub provisioned: Provisioned,
    /// Where the JWT signing key came from, to show.
    pub jwt_key: String,
}

/// Provisions, builds the functions over the real adapters, and starts the pollers and the
/// attempt sweep. The JWT key is `OES_JWT_SECRET`, or else read as the functions read it in AWS:
/// from the Secrets Manager secret `OES_JWT_SECRET_ARN` names, by default the emulator's
/// `<prefix>-jwt` (created with a random key on the first run), the one `env.json` gives the
/// functions `sam local invoke` runs — so they accept this server's tokens.
pub async fn start(settings: Services) -> Result<Started, oes_domain::ports::BoxError> {
    let clients = AwsClients::from_env().await?;
    let provisioned = provision(&clients, &settings.prefix, &settings.sender_email).await?;
    let secret = provision_jwt_secret(&clients, &settings.prefix).await?;
    let env = process_env().or_default("OES_JWT_SECRET_ARN", secret);
    let jwt_key = match env.optional("OES_JWT_SECRET") {
        Some(_) => "OES_JWT_SECRET".to_owned(),
        None => format!(
            "the secret {} (OES_JWT_SECRET_ARN)",
            env.optional("OES_JWT_SECRET_ARN").unwrap_or_default()
        ),
    };
    let jwt = jwt_settings(&resolve_jwt_secret(env, &clients).await?)?;
    let resources = ResourceConfig::from(&provisioned);
    let cache = CacheConfig {
        redis_url: Some(Secret::new(settings.redis_url)),
        topology: RedisTopology::Standalone,
        prefix: settings.prefix.clone(),
        settings: CacheSettings::default(),
    };
    let config = ApiConfig {
        resources: resources.clone(),
        cache,
        jwt,
    };
    let adapters = ApiAdapters::aws(&clients, &config)?;
    let exams = ExamApi::new(&adapters, JwtKeys::new(&config.jwt), Arc::new(SystemClock));
    let sweeper = AttemptSweeper::new(&adapters, Arc::new(SystemClock));
    let queues = adapters.queues.clone();
    // No event source mapping here: the lanes switch in memory, admin-api pauses them, the
    // pollers look there.
    let lanes: Arc<dyn LaneSwitch> = Arc::new(MemoryLanes::default());
    let admin = AdminApi::new(
        &adapters,
        lanes.clone(),
        JwtKeys::new(&config.jwt),
        Arc::new(SystemClock),
    );
    let hasher = PasswordHasher::new()?;
    if let Some((password, students)) = &settings.seed {
        let seeded = crate::seed::accounts(&*adapters.users, &hasher, password, *students).await?;
        crate::say!(
            "  seeded the demo accounts and {students} students: {} created, {} already there",
            seeded.created,
            seeded.existing
        );
    }
    let auth = auth_api::wire(
        adapters,
        JwtKeys::new(&config.jwt),
        hasher,
        Arc::new(SystemClock),
    )
    .with_hash_pool(HashPool::per_core());
    let worker_config = WorkerConfig {
        resources,
        sender_email: settings.sender_email,
        public_base_url: settings.public_base_url,
        retry: RetryPolicy::default(),
        concurrency: 5,
    };
    let worker = Worker::new(
        WorkerAdapters::aws(&clients, &worker_config),
        &worker_config.public_base_url,
        worker_config.retry,
        worker_config.concurrency,
        Arc::new(SystemClock),
    );
    let background = crate::background::Background::start(&queues, &lanes, &worker, sweeper);
    let functions = Functions {
        auth,
        exams,
        admin,
        background,
    };
    Ok(Started {
        functions: Arc::new(functions),
        provisioned,
        jwt_key,
    })
}
