//! The embedded mode: nothing to install. In-memory adapters, the in-memory twin of the queues
//! drained by the real worker code (a poller per lane, as in AWS), each email written to an
//! outbox folder, and the attempt sweep every few seconds.

use std::path::PathBuf;
use std::sync::Arc;

use admin_api::AdminApi;
use auth_api::hashing::HashPool;
use email_worker::Worker;
use exam_api::ExamApi;
use exam_api::sweep::AttemptSweeper;
use oes_adapters::memory::{MemoryJobs, MemoryLanes, MemoryQueues};
use oes_adapters::outbox::OutboxMailer;
use oes_domain::clock::SystemClock;
use oes_domain::pipeline::EmailLanes;
use oes_domain::ports::{LaneSwitch, MessageQueues};
use oes_domain::security::{JwtKeys, JwtSettings, OneTimeToken, PasswordHasher, Secret};
use oes_runtime::config::RetryPolicy;
use oes_runtime::wiring::{ApiAdapters, WorkerAdapters};

use crate::Functions;

/// Settings of the embedded mode.
pub struct Embedded {
    /// Where `.eml` files go.
    pub outbox: PathBuf,
    /// Base of the links in emails (the local gateway's URL).
    pub public_base_url: String,
    /// Password of the demo accounts.
    pub demo_password: String,
    /// How many students to seed besides the demo accounts ([`crate::seed`]).
    pub seed_students: usize,
}

/// A random JWT secret for this run (tokens do not survive a restart, like the in-memory data).
pub fn random_secret() -> Secret {
    Secret::new(format!(
        "{}{}",
        OneTimeToken::generate().expose(),
        OneTimeToken::generate().expose()
    ))
}

/// Builds the functions over in-memory adapters, seeds the accounts ([`crate::seed`]), and starts the
/// in-process worker and attempt sweep.
pub async fn start(
    settings: Embedded,
    jwt: JwtSettings,
) -> Result<Arc<Functions>, oes_domain::ports::BoxError> {
    let queues: Arc<dyn MessageQueues> = MemoryQueues::new();
    let jobs = Arc::new(MemoryJobs::default());
    let adapters = ApiAdapters::in_memory(queues.clone(), jobs.clone());
    let hasher = PasswordHasher::new()?;
    let (users, password) = (&*adapters.users, &settings.demo_password);
    crate::seed::accounts(users, &hasher, password, settings.seed_students).await?;
    let exams = ExamApi::new(&adapters, JwtKeys::new(&jwt), Arc::new(SystemClock));
    // The lanes switch in memory: admin-api pauses them, the pollers look there.
    let lanes: Arc<dyn LaneSwitch> = Arc::new(MemoryLanes::default());
    let admin = AdminApi::new(
        &adapters,
        lanes.clone(),
        JwtKeys::new(&jwt),
        Arc::new(SystemClock),
    );
    let sweeper = AttemptSweeper::new(&adapters, Arc::new(SystemClock));
    let auth = auth_api::wire(adapters, JwtKeys::new(&jwt), hasher, Arc::new(SystemClock))
        .with_hash_pool(HashPool::per_core());
    let worker_adapters = WorkerAdapters {
        mailer: Arc::new(OutboxMailer::new(settings.outbox, "noreply@oes.local")),
        jobs,
        control: Arc::new(EmailLanes::new(queues.clone())),
    };
    let worker = Worker::new(
        worker_adapters,
        &settings.public_base_url,
        RetryPolicy::default(),
        5,
        Arc::new(SystemClock),
    );
    let background = crate::background::Background::start(&queues, &lanes, &worker, sweeper);
    Ok(Arc::new(Functions {
        auth,
        exams,
        admin,
        background,
    }))
}
