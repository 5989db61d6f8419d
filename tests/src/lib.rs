//! Test harness shared by the integration and end-to-end tests in `tests/tests/integration/`.
//!
//! - [`request`]: an API Gateway v2 event for a method, path and body, decoded by `lambda_http`
//!   exactly as in Lambda (the same translation `oes-local` uses).
//! - [`in_memory_auth`]: auth-api over in-memory adapters (no services needed).
//! - [`TestEnv::spawn`]: a fresh, uniquely-named set of resources in the local emulator and a
//!   unique Redis key prefix, so tests run in parallel. Needs `make services` (which `make test`
//!   runs); without it the test fails and says so.
//! - [`Redis`], [`cache_policy`], [`on_both_redis!`]: the cache tests, run once against Redis and
//!   once against the one-node Redis Cluster; [`on_every_cache!`]: the `Cache` contract, run
//!   against the in-memory twin too; [`PrivateRedis`]: a `redis-server` of the test's
//!   own, to kill, restart or freeze without disturbing the other tests.
//! - [`exams`]: exam-api over in-memory or real adapters, users of each role with tokens, a
//!   clock the test moves.
//! - [`hooked_queues`]: queues over other queues whose calls a test slows, watches or answers.
//! - [`iam`]: the template's roles, and a DynamoDB client that refuses what a function's role
//!   does not allow, as IAM does in AWS: the functions [`TestEnv`] builds run over one.
//! - [`lost_answers`]: a DynamoDB client that loses the answer to a write that landed, so the
//!   SDK sends it again.
//! - [`queries`]: what each DynamoDB `Query` read, counted by an SDK interceptor.
//! - [`stale_reads`]: a DynamoDB client whose reads of a token's place are always stale, so a
//!   replace loses every race.

pub mod exams;
pub mod hidden_claim;
pub mod hooked_ledger;
pub mod hooked_queues;
pub mod iam;
pub mod lost_answers;
pub mod mappings_in_motion;
pub mod queries;
pub mod stale_reads;
pub mod throttled;

/// A DynamoDB client like `client` whose calls also go through `interceptor` (the test clients
/// that lose answers, make reads stale or count queries).
pub fn dynamodb_with(
    client: &aws_sdk_dynamodb::Client,
    interceptor: impl aws_sdk_dynamodb::config::Intercept + 'static,
) -> aws_sdk_dynamodb::Client {
    let config = client
        .config()
        .to_builder()
        .interceptor(interceptor)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use admin_api::AdminApi;
use auth_api::AuthService;
use email_worker::Worker;
use exam_api::ExamApi;
use lambda_http::{Body, Request, Response};
use oes_adapters::aws::AwsClients;
use oes_adapters::memory::{MemoryCache, MemoryJobs, MemoryLanes, MemoryQueues};
use oes_adapters::redis_cache::RedisCache;
use oes_adapters::redis_cache::RedisTopology;
use oes_adapters::resources::{Provisioned, provision};
use oes_adapters::sqs::SqsQueues;
use oes_domain::cache::{CacheAside, CacheKeys, CacheSettings};
use oes_domain::clock::{Clock, SystemClock};
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::ports::{JobLedger, Mailer, MessageQueues, QueueName, ReceivedMessage, UserStore};
use oes_domain::security::{JwtKeys, JwtSettings, PasswordHasher, Secret};
use oes_runtime::config::{ApiConfig, CacheConfig, ResourceConfig, RetryPolicy, WorkerConfig};
use oes_runtime::wiring::{ApiAdapters, WorkerAdapters};
use serde_json::Value;

/// The JWT settings every test uses.
pub fn jwt_settings() -> JwtSettings {
    JwtSettings {
        secret: Secret::new("test-secret-test-secret-test-secret-0123"),
        issuer: "oes-test".into(),
        audience: "oes-api".into(),
        ttl_seconds: 900,
    }
}

/// An account of `email` with `role` and `status`, created at `now`, whose password no one uses.
pub fn user_with(
    email: &str,
    role: oes_domain::user::Role,
    status: oes_domain::user::UserStatus,
    now: i64,
) -> oes_domain::user::User {
    use oes_domain::user::{DisplayName, Email, User, UserId};
    User {
        id: UserId::generate(),
        email: Email::parse(email).unwrap_or_else(|e| panic!("{email}: {e}")),
        name: DisplayName::parse("Test User").unwrap_or_else(|e| panic!("{e}")),
        password_hash: "not-used".into(),
        role,
        status,
        token_version: 0,
        email_version: 0,
        created_at: now,
        updated_at: now,
    }
}

/// A fast argon2id (tests are not about hashing cost).
pub fn cheap_hasher() -> PasswordHasher {
    PasswordHasher::with_params(1024, 1, 1).unwrap_or_else(|e| panic!("argon2 params: {e}"))
}

/// The API functions over one set of in-memory adapters.
pub struct InMemoryApis {
    /// auth-api.
    pub auth: AuthService,
    /// exam-api.
    pub exams: ExamApi,
    /// admin-api, its lanes switched in memory.
    pub admin: AdminApi,
    /// The email queues both write to.
    pub queue: Arc<MemoryQueues>,
    /// Email job records.
    pub jobs: Arc<MemoryJobs>,
    /// Accounts.
    pub users: Arc<dyn UserStore>,
}

/// `request` handled by the function API Gateway routes it to of these two: admin-api for its
/// paths ([`admin_api::serves`]), exam-api for the others.
pub async fn exam_or_admin(
    exams: &ExamApi,
    admin: &AdminApi,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    if admin_api::serves(request.uri().path()) {
        admin_api::handle(admin, request).await
    } else {
        exam_api::handle(exams, request).await
    }
}

/// auth-api, exam-api and admin-api over shared in-memory adapters.
pub fn in_memory_apis() -> InMemoryApis {
    let queue = MemoryQueues::new();
    let jobs = Arc::new(MemoryJobs::default());
    let adapters = ApiAdapters::in_memory(queue.clone(), jobs.clone());
    let users = adapters.users.clone();
    let exams = ExamApi::new(
        &adapters,
        JwtKeys::new(&jwt_settings()),
        Arc::new(SystemClock),
    );
    let admin = AdminApi::new(
        &adapters,
        Arc::new(MemoryLanes::default()),
        JwtKeys::new(&jwt_settings()),
        Arc::new(SystemClock),
    );
    let auth = auth_over(adapters, Arc::new(SystemClock));
    InMemoryApis {
        auth,
        exams,
        admin,
        queue,
        jobs,
        users,
    }
}

/// auth-api over `adapters` as the tests use it: the test JWT settings, the cheap hasher, and
/// no answer floor (only the timing tests wait for it: `auth_api::pacing`).
pub fn auth_over(adapters: ApiAdapters, clock: Arc<dyn Clock>) -> AuthService {
    auth_api::wire(
        adapters,
        JwtKeys::new(&jwt_settings()),
        cheap_hasher(),
        clock,
    )
    .with_answer_floor(Duration::ZERO)
}

/// auth-api over in-memory adapters, with the queue it writes to.
pub fn in_memory_auth() -> (AuthService, Arc<MemoryQueues>) {
    in_memory_auth_with_clock(Arc::new(SystemClock))
}

/// As [`in_memory_auth`], with an injected clock.
pub fn in_memory_auth_with_clock(clock: Arc<dyn Clock>) -> (AuthService, Arc<MemoryQueues>) {
    let queue = MemoryQueues::new();
    let service = auth_over(
        ApiAdapters::in_memory(queue.clone(), Arc::new(MemoryJobs::default())),
        clock,
    );
    (service, queue)
}

/// Takes up to `max` messages waiting on the lanes of `queues`, priority lane first: received
/// and deleted, as a worker that handled them would.
pub async fn take_waiting(queues: &MemoryQueues, max: usize) -> Vec<ReceivedMessage> {
    let mut taken = Vec::new();
    for lane in [QueueName::Priority, QueueName::Bulk] {
        while taken.len() < max {
            let want = u32::try_from((max - taken.len()).min(10)).unwrap_or(10);
            let batch = queues
                .receive(lane, want, None, Duration::ZERO)
                .await
                .expect("receive from memory");
            if batch.is_empty() {
                break;
            }
            for message in batch {
                queues
                    .delete(lane, &message.receipt_handle)
                    .await
                    .expect("delete from memory");
                taken.push(message);
            }
        }
    }
    taken
}

/// The token of the verification email waiting on the priority lane (taking it off the queue).
pub async fn take_verification_token(queues: &MemoryQueues) -> String {
    let message = take_waiting(queues, 1)
        .await
        .pop()
        .expect("a verification job");
    let job = EmailJob::decode(&message.body).expect("a valid job");
    let EmailTemplate::Verification { token, .. } = job.template else {
        panic!("not a verification job: {}", job.template.kind());
    };
    token.expose().to_owned()
}

/// The Lambda request API Gateway would deliver for this call (from 127.0.0.1).
pub fn request(
    method: &str,
    path_and_query: &str,
    body: Option<&str>,
    bearer: Option<&str>,
) -> Request {
    request_from([127, 0, 0, 1], method, path_and_query, body, bearer)
}

/// As [`request`], from the client address `ip` (API Gateway's `sourceIp`).
pub fn request_from(
    ip: [u8; 4],
    method: &str,
    path_and_query: &str,
    body: Option<&str>,
    bearer: Option<&str>,
) -> Request {
    let mut builder = lambda_http::http::Request::builder()
        .method(method)
        .uri(path_and_query)
        .header("host", "api.example.com")
        .header("user-agent", "oes-tests");
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    if let Some(token) = bearer {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    let (parts, ()) = builder
        .body(())
        .unwrap_or_else(|e| panic!("bad test request: {e}"))
        .into_parts();
    let peer = std::net::SocketAddr::from((ip, 40000));
    let route = oes_local::routes::RouteTable::default().route_of(method, parts.uri.path());
    let event =
        oes_local::gateway::api_gateway_event(&parts, body.unwrap_or("").as_bytes(), peer, route);
    serde_json::to_string(&event)
        .and_then(|text| oes_runtime::http::request_from_str(&text))
        .unwrap_or_else(|e| panic!("event: {e}"))
}

/// Status and JSON body of a response.
pub fn read(response: &Response<Body>) -> (u16, Value) {
    let bytes: &[u8] = response.body().as_ref();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {bytes:?}"))
    };
    (response.status().as_u16(), json)
}

/// Calls auth-api and returns status and JSON body.
pub async fn call(
    service: &AuthService,
    method: &str,
    path: &str,
    body: Option<&str>,
    bearer: Option<&str>,
) -> (u16, Value) {
    let response = auth_api::handle(service, request(method, path, body, bearer))
        .await
        .unwrap_or_else(|e| panic!("the handler returned an invocation error: {e}"));
    read(&response)
}

/// Where the local services are.
pub struct Endpoints {
    /// The AWS emulator (`AWS_ENDPOINT_URL`).
    pub aws: String,
    /// Redis (`REDIS_URL`).
    pub redis: String,
}

/// The local services' endpoints, or a panic telling how to start them.
pub fn endpoints() -> Endpoints {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("AWS_ENDPOINT_URL"), var("REDIS_URL")) {
        (Some(aws), Some(redis)) => Endpoints { aws, redis },
        _ => panic!(
            "this test needs Redis and the AWS emulator: run it with `make test`, which starts \
             them (or `make services` and export the variables `scripts/services.sh env` prints)"
        ),
    }
}

/// A uniquely-named set of resources in the emulator, and clients for them.
pub struct TestEnv {
    /// Resource prefix (also the Redis key prefix).
    pub prefix: String,
    /// SDK clients pointed at the emulator.
    pub clients: AwsClients,
    /// What was provisioned.
    pub provisioned: Provisioned,
    /// The services' endpoints.
    pub endpoints: Endpoints,
}

impl TestEnv {
    /// Provisions a fresh table, queues and sender identity.
    pub async fn spawn() -> Self {
        let endpoints = endpoints();
        let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let clients = AwsClients::load(Some(&endpoints.aws))
            .await
            .expect("the AWS clients for the emulator");
        let provisioned = provision(&clients, &prefix, "noreply@example.com")
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "provisioning in the emulator at {} failed: {e:?}",
                    endpoints.aws
                )
            });
        Self {
            prefix,
            clients,
            provisioned,
            endpoints,
        }
    }

    /// A secret in Secrets Manager in the emulator holding `key` as the stack's `JwtSecret`
    /// holds one (`{"secret": key}`): its ARN.
    pub async fn jwt_secret(&self, key: &str) -> String {
        let created = self
            .clients
            .secrets()
            .create_secret()
            .name(format!("{}-jwt", self.prefix))
            .secret_string(serde_json::json!({ "secret": key }).to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("creating the secret in the emulator: {e:?}"));
        created
            .arn()
            .unwrap_or_else(|| panic!("the secret has no ARN"))
            .to_owned()
    }

    /// The API configuration for these resources, with Redis.
    pub fn api_config(&self) -> ApiConfig {
        ApiConfig {
            resources: ResourceConfig::from(&self.provisioned),
            cache: CacheConfig {
                redis_url: Some(Secret::new(self.endpoints.redis.clone())),
                topology: RedisTopology::Standalone,
                prefix: self.prefix.clone(),
                settings: CacheSettings::default(),
            },
            jwt: jwt_settings(),
        }
    }

    /// The three queues of these resources on SQS (in the emulator).
    pub fn sqs_queues(&self) -> Arc<dyn MessageQueues> {
        let p = &self.provisioned;
        Arc::new(SqsQueues::new(
            self.clients.sqs(),
            &p.priority_queue_url,
            &p.bulk_queue_url,
            Some(&p.dead_letter_queue_url),
        ))
    }

    /// A recipient address unique to this environment (`who+<prefix>@example.com`), so the
    /// emulator's sent mail can be told apart per test.
    pub fn recipient(&self, who: &str) -> String {
        format!("{who}+{}@example.com", self.prefix)
    }

    /// Queues `job` as the APIs do (record `queued`, then the message on its lane); its id.
    pub async fn enqueue(&self, job: EmailJob) -> String {
        let adapters = ApiAdapters::aws(&self.clients, &self.api_config()).expect("adapters");
        adapters.emails.enqueue(job).await.expect("queued")
    }

    /// The real job ledger (DynamoDB) of these resources.
    pub fn job_ledger(&self) -> Arc<dyn JobLedger> {
        WorkerAdapters::aws(&self.clients, &self.worker_config()).jobs
    }

    /// The worker's configuration for these resources.
    pub fn worker_config(&self) -> WorkerConfig {
        WorkerConfig {
            resources: self.api_config().resources,
            sender_email: self.provisioned.sender_email.clone(),
            public_base_url: "https://exams.example.org".into(),
            retry: RetryPolicy::default(),
            concurrency: 5,
        }
    }

    /// The worker over the real adapters (SES v2, DynamoDB, SQS), with `mailer` instead of SES
    /// when given, and `retry` as its policy.
    pub fn worker(&self, mailer: Option<Arc<dyn Mailer>>, retry: RetryPolicy) -> Worker {
        let config = self.worker_config();
        let mut adapters = WorkerAdapters::aws(&self.clients_as(iam::Role::EmailWorker), &config);
        if let Some(mailer) = mailer {
            adapters.mailer = mailer;
        }
        Worker::new(
            adapters,
            &config.public_base_url,
            retry,
            config.concurrency,
            Arc::new(SystemClock),
        )
    }

    /// auth-api over the real adapters (DynamoDB, SQS, Redis), as its role allows.
    pub fn auth_service(&self) -> AuthService {
        let adapters = ApiAdapters::aws(&self.clients_as(iam::Role::AuthApi), &self.api_config())
            .unwrap_or_else(|e| panic!("redis url: {e}"));
        auth_over(adapters, Arc::new(SystemClock))
    }

    /// The clients, with a DynamoDB client that refuses what `role` may not do
    /// ([`iam::RoleGuard`]).
    pub fn clients_as(&self, role: iam::Role) -> AwsClients {
        let dynamodb = iam::dynamodb_as(&self.clients.dynamodb(), role);
        self.clients.clone().with_dynamodb(dynamodb)
    }
}

/// moto's whole state as JSON. moto serialises its backends while other requests change them
/// (its server is threaded, without locks), so under parallel tests a dump now and then fails
/// with a 500; such a dump is asked for again, a bounded number of times.
async fn moto_state(endpoint: &str) -> Value {
    let url = format!("{}/moto-api/data.json", endpoint.trim_end_matches('/'));
    let mut last_error = String::new();
    for _ in 0..20 {
        match reqwest::get(&url).await {
            Ok(response) if response.status().is_success() => match response.json().await {
                Ok(state) => return state,
                Err(e) => last_error = e.to_string(),
            },
            Ok(response) => last_error = format!("HTTP {}", response.status()),
            Err(e) => last_error = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not answer with JSON 20 times in a row; last: {last_error}")
}

/// The SES v2 messages the emulator accepted for `address` (moto keeps them under
/// `ses.Message` in `/moto-api/data.json`; with both parts sent, `body` holds the HTML part).
pub async fn ses_messages_to(endpoint: &str, address: &str) -> Vec<Value> {
    ses_messages(endpoint, |m| {
        m["destinations"]["ToAddresses"]
            .as_array()
            .is_some_and(|to| to.iter().any(|a| a == address))
    })
    .await
}

/// The SES v2 messages the emulator accepted from sender `address` (`source`), as
/// [`ses_messages_to`] reads them.
pub async fn ses_messages_from(endpoint: &str, address: &str) -> Vec<Value> {
    ses_messages(endpoint, |m| m["source"] == address).await
}

async fn ses_messages(endpoint: &str, keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    let data = moto_state(endpoint).await;
    data["ses"]["Message"]
        .as_array()
        .map(|messages| messages.iter().filter(|m| keep(m)).cloned().collect())
        .unwrap_or_default()
}

/// The value of the `token` query parameter in the first link of `html`.
pub fn token_in(html: &str) -> Option<String> {
    let start = html.find("token=")? + "token=".len();
    let token: String = html[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!token.is_empty()).then_some(token)
}

/// Which shared Redis a cache test runs against (`scripts/services.sh` starts both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redis {
    /// `REDIS_URL`.
    Standalone,
    /// `REDIS_CLUSTER_URL`: one node owning all 16384 slots.
    Cluster,
}

impl Redis {
    /// Its URL, or a panic telling how to start it.
    pub fn url(self) -> String {
        let name = match self {
            Self::Standalone => "REDIS_URL",
            Self::Cluster => "REDIS_CLUSTER_URL",
        };
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| {
                panic!(
                    "this test needs {name}: run it with `make test`, or `make services` and \
                     eval \"$(scripts/services.sh env)\""
                )
            })
    }

    /// The client topology it needs.
    pub fn topology(self) -> RedisTopology {
        match self {
            Self::Standalone => RedisTopology::Standalone,
            Self::Cluster => RedisTopology::Cluster,
        }
    }
}

/// A key prefix no other test uses.
pub fn unique_prefix(name: &str) -> String {
    format!(
        "{name}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// The cache-aside policy over `url` with `settings`, under `prefix`.
pub fn cache_policy_at(
    url: &str,
    topology: RedisTopology,
    prefix: &str,
    settings: CacheSettings,
) -> CacheAside {
    let cache = RedisCache::connect(url, topology, settings.timeout)
        .unwrap_or_else(|e| panic!("redis url {url}: {e}"));
    CacheAside::new(Arc::new(cache), CacheKeys::new(prefix), settings)
}

/// The cache-aside policy over the shared `redis`, under `prefix`, with `settings`.
pub fn cache_policy(redis: Redis, prefix: &str, settings: CacheSettings) -> CacheAside {
    cache_policy_at(&redis.url(), redis.topology(), prefix, settings)
}

/// Runs each named `async fn(Redis)` as two tests, `standalone::<name>` and `cluster::<name>`.
#[macro_export]
macro_rules! on_both_redis {
    ($($test:ident),* $(,)?) => {
        mod standalone {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::Redis::Standalone).await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test($crate::Redis::Cluster).await;
                }
            )*
        }
    };
}

/// The Redis cache adapter over the shared `redis` (2 s timeouts).
pub fn redis_cache(redis: Redis) -> RedisCache {
    RedisCache::connect(&redis.url(), redis.topology(), Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("redis url: {e}"))
}

/// A fresh in-memory cache (the Redis adapter's twin).
pub fn memory_cache() -> MemoryCache {
    MemoryCache::default()
}

/// Runs each named `async fn(&dyn Cache)` as three tests: `in_memory::<name>` over a fresh
/// [`memory_cache`], and `standalone::<name>` and `cluster::<name>` over [`redis_cache`]. The
/// bodies see the cache through the port only, so they hold the twin to the adapter.
#[macro_export]
macro_rules! on_every_cache {
    ($($test:ident),* $(,)?) => {
        mod in_memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(&$crate::memory_cache()).await;
                }
            )*
        }
        mod standalone {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(&$crate::redis_cache($crate::Redis::Standalone)).await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    super::$test(&$crate::redis_cache($crate::Redis::Cluster)).await;
                }
            )*
        }
    };
}

/// A `redis-server` (standalone or a one-node cluster) on a free loopback port, owned by one
/// test: it can be killed and restarted on the same port, or frozen (SIGSTOP) to act like a
/// Redis that accepts connections and never answers. Killed when dropped.
pub struct PrivateRedis {
    port: u16,
    topology: RedisTopology,
    dir: PathBuf,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts one and waits until it serves (for a cluster: all slots assigned, state ok).
    pub async fn start(topology: RedisTopology) -> Self {
        let dir = std::env::temp_dir().join(unique_prefix("oes-redis"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let mut server = Self {
            port: free_port(topology == RedisTopology::Cluster),
            topology,
            dir,
            child: None,
        };
        server.spawn().await;
        if topology == RedisTopology::Cluster {
            let mut addslots = redis::cmd("CLUSTER");
            addslots
                .arg("ADDSLOTS")
                .arg((0..16384).collect::<Vec<u16>>());
            let _: () = addslots
                .query_async(&mut server.connection().await)
                .await
                .unwrap_or_else(|e| panic!("CLUSTER ADDSLOTS: {e}"));
            server.wait_for_cluster_ok().await;
        }
        server
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The cache-aside policy over it, under a fresh prefix.
    pub fn policy(&self, settings: CacheSettings) -> CacheAside {
        cache_policy_at(
            &self.url(),
            self.topology,
            &unique_prefix("private"),
            settings,
        )
    }

    /// Kills it (SIGKILL: no goodbye to the clients).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: it does not persist data).
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().await;
        if self.topology == RedisTopology::Cluster {
            self.wait_for_cluster_ok().await;
        }
    }

    /// Freezes it (SIGSTOP): connections stay open, nothing answers.
    pub fn freeze(&self) {
        assert!(self.signal("-STOP"), "kill -STOP failed");
    }

    /// Thaws it (SIGCONT).
    pub fn thaw(&self) {
        assert!(self.signal("-CONT"), "kill -CONT failed");
    }

    fn signal(&self, signal: &str) -> bool {
        self.child.as_ref().is_some_and(|child| {
            Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .is_ok_and(|status| status.success())
        })
    }

    async fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.topology == RedisTopology::Cluster {
            command.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-announce-ip",
                "127.0.0.1",
            ]);
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!("redis-server could not start ({e}); `scripts/services.sh up` installs it")
        });
        self.child = Some(child);
        let _ = self.connection().await;
    }

    /// A plain connection, once the server accepts one (at most 10 s).
    async fn connection(&self) -> redis::aio::MultiplexedConnection {
        let client = redis::Client::open(self.url()).unwrap_or_else(|e| panic!("url: {e}"));
        for _ in 0..500 {
            if let Ok(mut connection) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut connection)
                    .await
                    .is_ok()
            {
                return connection;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the private redis-server on {} did not start", self.url())
    }

    async fn wait_for_cluster_ok(&self) {
        let mut connection = self.connection().await;
        for _ in 0..500 {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query_async(&mut connection)
                .await
                .unwrap_or_default();
            if info.contains("cluster_state:ok") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "the private cluster node on {} never reached cluster_state:ok",
            self.url()
        )
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.signal("-CONT");
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port nothing listens on (and, `with_bus`, its cluster bus port + 10000 too).
pub fn free_port(with_bus: bool) -> u16 {
    let free = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
    for _ in 0..1000 {
        let offset = u16::try_from(uuid::Uuid::new_v4().as_u128() % 30_000).unwrap_or(0);
        let port = 20_000 + offset;
        if free(port) && (!with_bus || free(port + 10_000)) {
            return port;
        }
    }
    panic!("no free loopback port")
}

/// A verification email job to `to` (a token that is not a real one).
pub fn verification_job(to: &str) -> EmailJob {
    EmailJob::new(
        oes_domain::user::Email::parse(to).expect("a valid address"),
        EmailTemplate::Verification {
            name: "Ada".into(),
            token: Secret::new("t0k3n"),
            choose_password: false,
        },
        0,
    )
}
