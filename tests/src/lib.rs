//! Test harness shared by the integration and end-to-end tests in `tests/tests/`.
//!
//! - [`request`]: an API Gateway v2 event for a method, path and body, decoded by `lambda_http`
//!   exactly as in Lambda (the same translation `oes-local` uses).
//! - [`in_memory_auth`]: auth-api over in-memory adapters (no services needed).
//! - [`TestEnv::spawn`]: a fresh, uniquely-named set of resources in the local emulator and a
//!   unique Redis key prefix, so tests run in parallel. Needs `make services` (which `make test`
//!   runs); without it the test fails and says so.

use std::sync::Arc;
use std::time::Duration;

use auth_api::AuthService;
use email_worker::Worker;
use exam_api::ExamApi;
use lambda_http::{Body, Request, Response};
use oes_shared::adapters::memory::{MemoryJobs, MemoryQueue};
use oes_shared::clock::{Clock, SystemClock};
use oes_shared::config::{ApiConfig, ResourceConfig, RetryPolicy, WorkerConfig};
use oes_shared::ports::{Mailer, UserStore};
use oes_shared::resources::{Provisioned, provision};
use oes_shared::security::{JwtKeys, JwtSettings, PasswordHasher, Secret};
use oes_shared::wiring::{ApiAdapters, AwsClients, WorkerAdapters};
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

/// A fast argon2id (tests are not about hashing cost).
pub fn cheap_hasher() -> PasswordHasher {
    PasswordHasher::with_params(1024, 1, 1).unwrap_or_else(|e| panic!("argon2 params: {e}"))
}

/// Both API functions over one set of in-memory adapters.
pub struct InMemoryApis {
    /// auth-api.
    pub auth: AuthService,
    /// exam-api (with the admin API).
    pub exams: ExamApi,
    /// The email queue both write to.
    pub queue: Arc<MemoryQueue>,
    /// Email job records.
    pub jobs: Arc<MemoryJobs>,
    /// Accounts.
    pub users: Arc<dyn UserStore>,
}

/// auth-api and exam-api over shared in-memory adapters.
pub fn in_memory_apis() -> InMemoryApis {
    let queue = MemoryQueue::new();
    let jobs = Arc::new(MemoryJobs::default());
    let adapters = ApiAdapters::in_memory(queue.clone(), jobs.clone());
    let users = adapters.users.clone();
    let exams = ExamApi::new(
        &adapters,
        JwtKeys::new(&jwt_settings()),
        Duration::from_secs(3600),
        queue.clone(),
    );
    let auth = AuthService::new(
        adapters,
        JwtKeys::new(&jwt_settings()),
        cheap_hasher(),
        Arc::new(SystemClock),
        Duration::from_secs(3600),
    );
    InMemoryApis {
        auth,
        exams,
        queue,
        jobs,
        users,
    }
}

/// auth-api over in-memory adapters, with the queue it writes to.
pub fn in_memory_auth() -> (AuthService, Arc<MemoryQueue>) {
    in_memory_auth_with_clock(Arc::new(SystemClock))
}

/// As [`in_memory_auth`], with an injected clock.
pub fn in_memory_auth_with_clock(clock: Arc<dyn Clock>) -> (AuthService, Arc<MemoryQueue>) {
    let queue = MemoryQueue::new();
    let service = AuthService::new(
        ApiAdapters::in_memory(queue.clone(), Arc::new(MemoryJobs::default())),
        JwtKeys::new(&jwt_settings()),
        cheap_hasher(),
        clock,
        Duration::from_secs(3600),
    );
    (service, queue)
}

/// The Lambda request API Gateway would deliver for this call.
pub fn request(
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
    let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 40000));
    let event = oes_local::gateway::api_gateway_event(&parts, body.unwrap_or("").as_bytes(), peer);
    lambda_http::request::from_str(&event.to_string()).unwrap_or_else(|e| panic!("event: {e}"))
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
        let clients = AwsClients::load(Some(&endpoints.aws)).await;
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

    /// The API configuration for these resources, with Redis.
    pub fn api_config(&self) -> ApiConfig {
        ApiConfig {
            resources: ResourceConfig {
                table: self.provisioned.table.clone(),
                priority_queue_url: self.provisioned.priority_queue_url.clone(),
                bulk_queue_url: self.provisioned.bulk_queue_url.clone(),
                job_retention_seconds: 14 * 86_400,
            },
            redis_url: Some(self.endpoints.redis.clone()),
            cache_prefix: self.prefix.clone(),
            profile_ttl: Duration::from_secs(3600),
            jwt: jwt_settings(),
        }
    }

    /// The worker's configuration for these resources.
    pub fn worker_config(&self) -> WorkerConfig {
        WorkerConfig {
            resources: self.api_config().resources,
            dead_letter_queue_url: self.provisioned.dead_letter_queue_url.clone(),
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
        let mut adapters = WorkerAdapters::aws(&self.clients, &config);
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

    /// auth-api over the real adapters (DynamoDB, SQS, Redis).
    pub fn auth_service(&self) -> AuthService {
        let adapters = ApiAdapters::aws(&self.clients, &self.api_config())
            .unwrap_or_else(|e| panic!("redis url: {e}"));
        AuthService::new(
            adapters,
            JwtKeys::new(&jwt_settings()),
            cheap_hasher(),
            Arc::new(SystemClock),
            Duration::from_secs(3600),
        )
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
    let data = moto_state(endpoint).await;
    data["ses"]["Message"]
        .as_array()
        .map(|messages| {
            messages
                .iter()
                .filter(|m| {
                    m["destinations"]["ToAddresses"]
                        .as_array()
                        .is_some_and(|to| to.iter().any(|a| a == address))
                })
                .cloned()
                .collect()
        })
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
