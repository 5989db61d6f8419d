//! The embedded mode: nothing to install. In-memory adapters, the in-memory twin of the queues
//! drained by the real worker code (a poller per lane, as in AWS), each email written to an
//! outbox folder, and the attempt sweep every few seconds.

use std::path::PathBuf;
use std::sync::Arc;

use email_worker::Worker;
use exam_api::ExamApi;
use exam_api::sweep::AttemptSweeper;
use oes_adapters::memory::{MemoryJobs, MemoryQueues};
use oes_adapters::outbox::OutboxMailer;
use oes_domain::clock::{Clock, SystemClock};
use oes_domain::pipeline::EmailLanes;
use oes_domain::ports::{MessageQueues, UserUpdate};
use oes_domain::security::{JwtKeys, JwtSettings, OneTimeToken, Password, PasswordHasher, Secret};
use oes_domain::user::{DisplayName, Email, Role, User, UserId, UserStatus};
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
    /// How many more students to seed, with the demo password ([`crate::seed`]).
    pub seed_students: usize,
}

/// The demo accounts seeded at start-up, with their roles: one of each.
pub const DEMO_ACCOUNTS: [(&str, &str, Role); 3] = [
    ("admin@example.com", "Demo Admin", Role::Admin),
    (
        "instructor@example.com",
        "Demo Instructor",
        Role::Instructor,
    ),
    ("student@example.com", "Demo Student", Role::Student),
];

/// A random JWT secret for this run (tokens do not survive a restart, like the in-memory data).
pub fn random_secret() -> Secret {
    Secret::new(format!(
        "{}{}",
        OneTimeToken::generate().expose(),
        OneTimeToken::generate().expose()
    ))
}

/// Builds the functions over in-memory adapters, seeds the demo accounts, and starts the
/// in-process worker and attempt sweep.
pub async fn start(
    settings: Embedded,
    jwt: JwtSettings,
) -> Result<Arc<Functions>, oes_domain::ports::BoxError> {
    let queues: Arc<dyn MessageQueues> = MemoryQueues::new();
    let jobs = Arc::new(MemoryJobs::default());
    let adapters = ApiAdapters::in_memory(queues.clone(), jobs.clone());
    let hasher = PasswordHasher::new()?;
    seed_demo_accounts(&adapters, &hasher, &settings.demo_password).await?;
    let (users, password) = (&*adapters.users, &settings.demo_password);
    crate::seed::students(users, &hasher, password, settings.seed_students).await?;
    let exams = ExamApi::new(&adapters, JwtKeys::new(&jwt), Arc::new(SystemClock));
    let lanes = adapters.lanes.clone();
    let sweeper = AttemptSweeper::new(&adapters, Arc::new(SystemClock));
    let auth = auth_api::wire(adapters, JwtKeys::new(&jwt), hasher, Arc::new(SystemClock));
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
        background,
    }))
}

async fn seed_demo_accounts(
    adapters: &ApiAdapters,
    hasher: &PasswordHasher,
    password: &str,
) -> Result<(), oes_domain::ports::BoxError> {
    let password = Password::parse(password.to_owned(), "OES_DEMO_PASSWORD")?;
    let now = SystemClock.now();
    for (email, name, role) in DEMO_ACCOUNTS {
        let user = User {
            id: UserId::generate(),
            email: Email::parse(email)?,
            name: DisplayName::parse(name)?,
            password_hash: hasher.hash(&password)?,
            role: Role::Student,
            status: UserStatus::Active,
            token_version: 0,
            created_at: now,
            updated_at: now,
        };
        adapters.users.create(&user).await?;
        adapters
            .users
            .update(&user.id, UserUpdate::Role(role), now)
            .await?;
    }
    Ok(())
}
