//! The AWS SDK clients, built once at init from one loaded configuration, each with explicit
//! timeouts ([`AwsTimeouts`]), over one HTTPS client that trusts the AWS endpoints' roots alone.

use std::ffi::OsString;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;
use aws_smithy_http_client::ConnectorBuilder;
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_runtime_api::shared::IntoShared as _;
use aws_smithy_types::config_bag::ConfigBag;

use crate::dynamo::{ContentionRetries, StoreTiming};

/// How long any one AWS call may take, per service. Without these a hung call runs into the
/// Lambda's own timeout and takes the whole invocation (for the worker: the whole batch) with it.
///
/// An *attempt* is one HTTP request; the *operation* is the call as the code sees it, the SDK's
/// retries (standard mode, 3 attempts) and their backoff included. `connect` bounds opening a
/// connection within any attempt.
///
/// The figures are chosen against the worker's budget, which
/// `tests/tests/integration/timeout_chain.rs` checks against `template.yaml` and the config
/// (and `docs/OPERATIONS.md` explains):
///
/// - the send lease (`RetryPolicy::lease_seconds`, 60 s) outlasts a claim, a send and the writes
///   recording its outcome, so a slow call never lets a second worker send the same job;
/// - the worker's Lambda timeout outlasts a whole batch of records, each at its worst case;
/// - the lanes' visibility timeout is at least 6 × the worker's Lambda timeout.
///
/// An SQS long poll (`ReceiveMessage` with a wait, used by `oes-local` and the tools, never by
/// the Lambda worker) holds its request open for that wait: `SqsQueues::receive` adds the wait to
/// both SQS figures for that call alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsTimeouts {
    /// Opening a connection, every service.
    pub connect: Duration,
    /// One DynamoDB request.
    pub dynamodb_attempt: Duration,
    /// One DynamoDB call, retries included.
    pub dynamodb_operation: Duration,
    /// One SQS request (a long poll gets its wait on top).
    pub sqs_attempt: Duration,
    /// One SQS call, retries included (a long poll gets its wait on top).
    pub sqs_operation: Duration,
    /// One SES v2 request.
    pub ses_attempt: Duration,
    /// One SES v2 call (`SendEmail`): one request, never retried ([`SES_ATTEMPTS`]).
    pub ses_operation: Duration,
    /// One Lambda control-plane request (a lane's event source mapping, from the admin API).
    pub lambda_attempt: Duration,
    /// One Lambda control-plane call, retries included.
    pub lambda_operation: Duration,
    /// One Secrets Manager request (at init only, which Lambda limits to 10 s).
    pub secrets_attempt: Duration,
    /// One Secrets Manager call, retries included.
    pub secrets_operation: Duration,
}

impl AwsTimeouts {
    /// The figures every function and tool uses.
    pub const DEFAULT: Self = Self {
        connect: Duration::from_secs(1),
        dynamodb_attempt: Duration::from_secs(2),
        dynamodb_operation: Duration::from_secs(5),
        sqs_attempt: Duration::from_secs(3),
        sqs_operation: Duration::from_secs(8),
        ses_attempt: Duration::from_secs(10),
        ses_operation: Duration::from_secs(10),
        lambda_attempt: Duration::from_secs(3),
        lambda_operation: Duration::from_secs(8),
        secrets_attempt: Duration::from_secs(2),
        secrets_operation: Duration::from_secs(5),
    };

    /// For an emulator on loopback (`AwsClients::load` with an endpoint: `oes-local`, the tests,
    /// the tools): generous, because one emulator process serving a test suite's parallel tests
    /// can take seconds per call. A hung emulator still ends in an error, not a hang.
    pub const EMULATOR: Self = Self {
        connect: Duration::from_secs(2),
        dynamodb_attempt: Duration::from_secs(30),
        dynamodb_operation: Duration::from_secs(60),
        sqs_attempt: Duration::from_secs(30),
        sqs_operation: Duration::from_secs(60),
        ses_attempt: Duration::from_secs(30),
        ses_operation: Duration::from_secs(60),
        lambda_attempt: Duration::from_secs(30),
        lambda_operation: Duration::from_secs(60),
        secrets_attempt: Duration::from_secs(30),
        secrets_operation: Duration::from_secs(60),
    };

    fn config(&self, attempt: Duration, operation: Duration) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_attempt_timeout(attempt)
            .operation_timeout(operation)
            .build()
    }
}

impl Default for AwsTimeouts {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How many times one `SendEmail` call sends: once ([`AwsClients::ses`]).
pub const SES_ATTEMPTS: u32 = 1;

/// Whether the environment holds a key pair (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), as
/// it does in Lambda and against the local emulator.
fn credentials_in_env() -> bool {
    in_env("AWS_ACCESS_KEY_ID") && in_env("AWS_SECRET_ACCESS_KEY")
}

/// Whether the environment names the region (`AWS_REGION` or `AWS_DEFAULT_REGION`), as it does
/// in Lambda and against the local emulator.
fn region_in_env() -> bool {
    in_env("AWS_REGION") || in_env("AWS_DEFAULT_REGION")
}

/// Whether the environment variable `name` is set, and not empty.
fn in_env(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|value| !value.is_empty())
}

/// The roots AWS's service endpoints chain to (Amazon Trust Services, and the Starfield root that
/// cross-signs them): the whole trust store of the functions' AWS calls.
const AWS_ROOTS: &[u8] = include_bytes!("../certs/aws-roots.pem");

/// The HTTPS client every AWS SDK client shares: aws-config's default (hyper, rustls with
/// aws-lc, the connector settings and proxy from the environment), except its trust store.
///
/// The default reads the platform's store at init (the bundle, and on Debian every file of
/// `/etc/ssl/certs`) and parses each of its ~150 roots: about a third of a function's init
/// (docs/BENCHMARKS.md, "Cold starts"). The functions call AWS endpoints alone, and those present
/// certificates under [`AWS_ROOTS`], so these five roots are all they trust: nothing is read from
/// disk, and a certificate from any other authority is refused. `AWS_CA_BUNDLE` (AWS's variable
/// for a proxy's or an emulator's own authority) adds the roots of that PEM file.
fn aws_https_client(ca_bundle: Option<OsString>) -> Result<SharedHttpClient, AwsInitError> {
    let mut trust = TrustStore::empty().with_pem_certificate(AWS_ROOTS);
    if let Some(path) = ca_bundle.filter(|path| !path.is_empty()) {
        let pem = std::fs::read(&path).map_err(|error| AwsInitError::CaBundle {
            path: path.to_string_lossy().into_owned(),
            error,
        })?;
        trust = trust.with_pem_certificate(pem);
    }
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .map_err(|error| AwsInitError::Tls(error.to_string()))?;
    let client = aws_smithy_http_client::Builder::new().build_with_connector_fn(
        move |settings, components| {
            let mut connector = ConnectorBuilder::default()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(context.clone());
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        },
    );
    Ok(CheckedOnce::new(client).into_shared())
}

/// An HTTP client whose check at a client's construction runs once, not once per SDK client.
///
/// The SDK checks the HTTP client each time it builds a client from the configuration
/// (`validate_base_client_config`), and the hyper client's check builds a whole connector — a
/// rustls configuration, the trust store parsed into it — and drops it, so that a platform's
/// trust store is read at init rather than at the first call. A function builds two or three
/// SDK clients over the one HTTP client: the first check does what the check is for, and each
/// further one would build and drop the same connector again, every cold start
/// (docs/BENCHMARKS.md, "Cold starts"). A check that fails is not remembered: the next client's
/// construction checks again.
#[derive(Debug)]
struct CheckedOnce {
    client: SharedHttpClient,
    checked: AtomicBool,
}

impl CheckedOnce {
    fn new(client: SharedHttpClient) -> Self {
        Self {
            client,
            checked: AtomicBool::new(false),
        }
    }
}

impl HttpClient for CheckedOnce {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.client.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        runtime_components: &RuntimeComponentsBuilder,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        if self.checked.load(Ordering::Acquire) {
            return Ok(());
        }
        self.client
            .validate_base_client_config(runtime_components, cfg)?;
        self.checked.store(true, Ordering::Release);
        Ok(())
    }

    fn validate_final_config(
        &self,
        runtime_components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.client.validate_final_config(runtime_components, cfg)
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.client.connector_metadata()
    }
}

/// Why the AWS clients could not be set up.
#[derive(thiserror::Error)]
pub enum AwsInitError {
    /// `AWS_CA_BUNDLE` names a file that cannot be read.
    #[error("AWS_CA_BUNDLE: cannot read {path}: {error}")]
    CaBundle {
        /// The file named.
        path: String,
        /// Why it cannot be read.
        error: std::io::Error,
    },
    /// The TLS context could not be built.
    #[error("TLS set-up: {0}")]
    Tls(String),
}

/// The message itself, as `oes_runtime::config::ConfigError`'s: a function's `main` that
/// returns this error prints it with `{:?}`, and that line is all its log says.
impl std::fmt::Debug for AwsInitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The AWS SDK clients, sharing one loaded configuration (region, credentials, the HTTPS client,
/// and `AWS_ENDPOINT_URL` for the local emulator). Each client is built the first time it is
/// asked for, then shared: a function builds only those it uses (each SDK crate parses its
/// endpoint partition table when its first client is built), and always at init, where its
/// wiring asks for them.
#[derive(Clone, Debug)]
pub struct AwsClients {
    config: SdkConfig,
    timeouts: AwsTimeouts,
    dynamodb: OnceLock<aws_sdk_dynamodb::Client>,
    sqs: OnceLock<aws_sdk_sqs::Client>,
    ses: OnceLock<aws_sdk_sesv2::Client>,
    secrets: OnceLock<aws_sdk_secretsmanager::Client>,
    lambda: OnceLock<aws_sdk_lambda::Client>,
}

impl AwsClients {
    /// Loads the shared AWS configuration from the environment.
    pub async fn from_env() -> Result<Self, AwsInitError> {
        Self::load(None).await
    }

    /// Loads the shared AWS configuration from the environment, with `endpoint` (an emulator's
    /// URL) overriding `AWS_ENDPOINT_URL` when given. The clients get [`AwsTimeouts::DEFAULT`]
    /// (what the functions run with in AWS), or [`AwsTimeouts::EMULATOR`] with an endpoint.
    pub async fn load(endpoint: Option<&str>) -> Result<Self, AwsInitError> {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(aws_https_client(std::env::var_os("AWS_CA_BUNDLE"))?);
        if credentials_in_env() {
            // What the default chain would find first anyway. Named directly, the rest of the
            // chain is not built: its web-identity provider builds an STS client and an HTTPS
            // connector, a fifth of a function's init (docs/BENCHMARKS.md, "Cold starts").
            // Lambda always gives credentials this way.
            loader = loader.credentials_provider(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            );
        }
        if region_in_env() {
            // The same: the default region chain reads the environment first, but building the
            // chain builds its instance-metadata provider's IMDS client too, a few per cent of a
            // function's init. Lambda always sets AWS_REGION.
            loader =
                loader.region(aws_config::environment::EnvironmentVariableRegionProvider::new());
        }
        let mut timeouts = &AwsTimeouts::DEFAULT;
        if let Some(endpoint) = endpoint {
            loader = loader.endpoint_url(endpoint);
            timeouts = &AwsTimeouts::EMULATOR;
        }
        Ok(Self::from_config(&loader.load().await, timeouts))
    }

    /// The clients for `config`, each with its service's `timeouts` (the retry configuration
    /// stays `config`'s); none is built yet.
    pub fn from_config(config: &SdkConfig, timeouts: &AwsTimeouts) -> Self {
        Self {
            config: config.clone(),
            timeouts: *timeouts,
            dynamodb: OnceLock::new(),
            sqs: OnceLock::new(),
            ses: OnceLock::new(),
            secrets: OnceLock::new(),
            lambda: OnceLock::new(),
        }
    }

    /// These clients with `dynamodb` for DynamoDB (one with an interceptor of its own).
    #[must_use]
    pub fn with_dynamodb(self, dynamodb: aws_sdk_dynamodb::Client) -> Self {
        Self {
            dynamodb: OnceLock::from(dynamodb),
            ..self
        }
    }

    /// DynamoDB, with the store's timing interceptor and the retries of what DynamoDB refuses
    /// under contention ([`ContentionRetries`]).
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let t = &self.timeouts;
        self.dynamodb
            .get_or_init(|| {
                aws_sdk_dynamodb::Client::from_conf(
                    aws_sdk_dynamodb::config::Builder::from(&self.config)
                        .interceptor(StoreTiming)
                        .retry_classifier(ContentionRetries)
                        .timeout_config(t.config(t.dynamodb_attempt, t.dynamodb_operation))
                        .build(),
                )
            })
            .clone()
    }

    /// SQS.
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        let t = &self.timeouts;
        self.sqs
            .get_or_init(|| {
                aws_sdk_sqs::Client::from_conf(
                    aws_sdk_sqs::config::Builder::from(&self.config)
                        .timeout_config(t.config(t.sqs_attempt, t.sqs_operation))
                        .build(),
                )
            })
            .clone()
    }

    /// SES v2, which the SDK never retries: a `SendEmail` without an answer (a timeout, a
    /// connection reset) may have been accepted, and sent again at once it would reach its
    /// recipient twice under one job record. The worker retries it instead, after the send
    /// lease, with backoff ([`SES_ATTEMPTS`]).
    pub fn ses(&self) -> aws_sdk_sesv2::Client {
        let t = &self.timeouts;
        self.ses
            .get_or_init(|| {
                aws_sdk_sesv2::Client::from_conf(
                    aws_sdk_sesv2::config::Builder::from(&self.config)
                        .timeout_config(t.config(t.ses_attempt, t.ses_operation))
                        .retry_config(
                            aws_config::retry::RetryConfig::standard()
                                .with_max_attempts(SES_ATTEMPTS),
                        )
                        .build(),
                )
            })
            .clone()
    }

    /// Secrets Manager (read at init only).
    pub fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        let t = &self.timeouts;
        self.secrets
            .get_or_init(|| {
                aws_sdk_secretsmanager::Client::from_conf(
                    aws_sdk_secretsmanager::config::Builder::from(&self.config)
                        .timeout_config(t.config(t.secrets_attempt, t.secrets_operation))
                        .build(),
                )
            })
            .clone()
    }

    /// Lambda: the lanes' event source mappings (admin-api pauses and resumes them).
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        let t = &self.timeouts;
        self.lambda
            .get_or_init(|| {
                aws_sdk_lambda::Client::from_conf(
                    aws_sdk_lambda::config::Builder::from(&self.config)
                        .timeout_config(t.config(t.lambda_attempt, t.lambda_operation))
                        .build(),
                )
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::{BehaviorVersion, Region};
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    fn sdk_config() -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:1")
            .build()
    }

    /// (connect, attempt, operation) of a client's timeout configuration.
    fn figures(
        config: Option<&TimeoutConfig>,
    ) -> (Option<Duration>, Option<Duration>, Option<Duration>) {
        let config = config.expect("the client has a timeout configuration");
        (
            config.connect_timeout(),
            config.operation_attempt_timeout(),
            config.operation_timeout(),
        )
    }

    #[test]
    fn every_client_carries_its_services_timeouts() {
        let t = AwsTimeouts::DEFAULT;
        let clients = AwsClients::from_config(&sdk_config(), &t);
        let expected = |attempt, operation| (Some(t.connect), Some(attempt), Some(operation));
        assert_eq!(
            figures(clients.dynamodb().config().timeout_config()),
            expected(t.dynamodb_attempt, t.dynamodb_operation),
            "DynamoDB"
        );
        assert_eq!(
            figures(clients.sqs().config().timeout_config()),
            expected(t.sqs_attempt, t.sqs_operation),
            "SQS"
        );
        assert_eq!(
            figures(clients.ses().config().timeout_config()),
            expected(t.ses_attempt, t.ses_operation),
            "SES v2"
        );
        assert_eq!(
            figures(clients.secrets().config().timeout_config()),
            expected(t.secrets_attempt, t.secrets_operation),
            "Secrets Manager"
        );
        assert_eq!(
            figures(clients.lambda().config().timeout_config()),
            expected(t.lambda_attempt, t.lambda_operation),
            "Lambda"
        );
    }

    #[test]
    fn the_timeouts_replace_the_loaded_configurations_and_keep_its_retries_but_for_ses() {
        let loaded = SdkConfig::builder()
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(30))
                    .operation_timeout(Duration::from_secs(300))
                    .build(),
            )
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        let clients = AwsClients::from_config(&loaded, &AwsTimeouts::DEFAULT);
        let ses = clients.ses();
        let ses = ses.config();
        assert_eq!(
            figures(ses.timeout_config()),
            (
                Some(AwsTimeouts::DEFAULT.connect),
                Some(AwsTimeouts::DEFAULT.ses_attempt),
                Some(AwsTimeouts::DEFAULT.ses_operation)
            )
        );
        assert_eq!(
            ses.retry_config()
                .map(aws_config::retry::RetryConfig::max_attempts),
            Some(SES_ATTEMPTS),
            "SES is never retried by the SDK"
        );
        assert_eq!(
            clients
                .dynamodb()
                .config()
                .retry_config()
                .map(aws_config::retry::RetryConfig::max_attempts),
            Some(3)
        );
    }

    /// SES v2 whose first `SendEmail` takes the message and never answers (a timeout after
    /// SES accepted it), and whose later ones answer at once: how many it was sent.
    async fn ses_sent_once_unanswered(timeouts: &AwsTimeouts) -> usize {
        use crate::ses::SesMailer;
        use oes_domain::ports::Mailer as _;
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let endpoint = format!("http://{}", listener.local_addr().expect("an address"));
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buffer = [0_u8; 4096];
                    while let Ok(read) = stream.read(&mut buffer).await {
                        if read == 0 {
                            return;
                        }
                        seen.extend_from_slice(&buffer[..read]);
                        // The body is one JSON object, ending in `}`: the request is whole.
                        if seen.ends_with(b"}") {
                            break;
                        }
                    }
                    if counted.fetch_add(1, Ordering::SeqCst) == 0 {
                        // Accepted; the answer never comes.
                        std::future::pending::<()>().await;
                    }
                    let body = r#"{"MessageId":"ses-2"}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let _sent = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_sesv2::config::SharedCredentialsProvider::new(
                aws_sdk_sesv2::config::Credentials::new("AKIDTEST", "secret", None, None, "test"),
            ))
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(3))
            .build();
        let mailer = SesMailer::new(
            AwsClients::from_config(&config, timeouts).ses(),
            "noreply@example.com",
        );
        let email = oes_domain::email::OutgoingEmail {
            to: oes_domain::user::Email::parse("ada@example.com").expect("an address"),
            subject: "Your result".into(),
            text: "90 %".into(),
            html: "<p>90 %</p>".into(),
        };
        let sent = mailer.send(&email).await;
        assert!(
            sent.is_err(),
            "the one request was never answered: {sent:?}"
        );
        requests.load(Ordering::SeqCst)
    }

    /// A `SendEmail` that timed out may have been accepted: sent again at once by the SDK's
    /// retries, its recipient got two emails and the job's record one SES id. Only the worker
    /// sends again, after the send lease, in the window docs/OPERATIONS.md counts.
    #[tokio::test]
    async fn an_unanswered_send_email_is_not_sent_again_by_the_sdk() {
        let quick = AwsTimeouts {
            ses_attempt: Duration::from_millis(300),
            ses_operation: Duration::from_secs(5),
            ..AwsTimeouts::DEFAULT
        };
        assert_eq!(ses_sent_once_unanswered(&quick).await, 1);
    }

    #[test]
    fn a_client_is_built_when_first_asked_for() {
        let clients = AwsClients::from_config(&sdk_config(), &AwsTimeouts::DEFAULT);
        let built = |c: &AwsClients| {
            [
                c.dynamodb.get().is_some(),
                c.sqs.get().is_some(),
                c.ses.get().is_some(),
                c.secrets.get().is_some(),
                c.lambda.get().is_some(),
            ]
        };
        assert_eq!(built(&clients), [false; 5], "none before it is asked for");
        let _ = clients.sqs();
        let _ = clients.dynamodb();
        assert_eq!(built(&clients), [true, true, false, false, false]);
    }

    /// The SHA-256 fingerprint of each certificate in `pem`, in order.
    fn fingerprints(pem: &[u8]) -> Vec<String> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject as _;
        use sha2::Digest as _;
        CertificateDer::pem_slice_iter(pem)
            .map(|cert| hex::encode(sha2::Sha256::digest(cert.expect("a PEM certificate"))))
            .collect()
    }

    #[test]
    fn the_aws_trust_store_is_amazon_trust_services_and_the_starfield_root_that_cross_signs_it() {
        let text = std::str::from_utf8(AWS_ROOTS).expect("ASCII");
        // The fingerprints Amazon publishes (https://www.amazontrust.com/repository/), in the
        // file's order: Amazon Root CA 1–4, Starfield Services Root Certificate Authority – G2.
        let published = [
            "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e",
            "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4",
            "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4",
            "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092",
            "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5",
        ];
        assert_eq!(fingerprints(AWS_ROOTS), published);
        for name in [
            "Amazon Root CA 1",
            "Amazon Root CA 4",
            "Starfield Services Root",
        ] {
            assert!(text.contains(name), "{name}");
        }
    }

    #[test]
    fn an_unreadable_ca_bundle_is_said_in_words() {
        let Err(error) = aws_https_client(Some("/nonexistent/ca.pem".into())) else {
            panic!("a CA bundle that does not exist was accepted");
        };
        // A function's `main` prints its error with `{:?}`: that line is all its log says.
        assert_eq!(
            format!("{error:?}"),
            "AWS_CA_BUNDLE: cannot read /nonexistent/ca.pem: No such file or directory (os error 2)"
        );
    }

    #[tokio::test]
    async fn the_clients_load_over_the_aws_trust_store_alone() {
        // The connector is built with the clients (the SDK validates its HTTP client then): the
        // trust store must parse, or every function would fail its first call.
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(aws_https_client(None).expect("the HTTPS client"))
            .region(Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:1")
            .load()
            .await;
        let clients = AwsClients::from_config(&config, &AwsTimeouts::DEFAULT);
        let _ = clients.dynamodb();
        let _ = clients.sqs();
    }

    /// An HTTP client that counts the checks made of it, and fails the first `failing` of them.
    /// It is never asked for a connection.
    #[derive(Debug, Default)]
    struct CountedChecks {
        checks: Arc<AtomicUsize>,
        failing: usize,
    }

    impl HttpClient for CountedChecks {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            unreachable!("no test here makes a request")
        }

        fn validate_base_client_config(
            &self,
            _: &RuntimeComponentsBuilder,
            _: &ConfigBag,
        ) -> Result<(), BoxError> {
            let made = self.checks.fetch_add(1, Ordering::SeqCst);
            if made < self.failing {
                return Err("the connector could not be built".into());
            }
            Ok(())
        }
    }

    /// How many checks `client` gets when a function's three SDK clients are built over it.
    fn checks_of_three_clients(client: SharedHttpClient, checks: &AtomicUsize) -> usize {
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:1")
            .http_client(client)
            .build();
        let clients = AwsClients::from_config(&config, &AwsTimeouts::DEFAULT);
        let _ = (clients.dynamodb(), clients.sqs(), clients.ses());
        checks.load(Ordering::SeqCst)
    }

    #[test]
    fn the_sdk_checks_the_http_client_once_per_client_it_builds() {
        // What `CheckedOnce` is for: should the SDK stop doing this, it can go.
        let counted = CountedChecks::default();
        let checks = Arc::clone(&counted.checks);
        assert_eq!(checks_of_three_clients(counted.into_shared(), &checks), 3);
    }

    #[test]
    fn the_functions_http_client_is_checked_once_however_many_clients_are_built() {
        let counted = CountedChecks::default();
        let checks = Arc::clone(&counted.checks);
        let client = CheckedOnce::new(counted.into_shared()).into_shared();
        assert_eq!(checks_of_three_clients(client, &checks), 1);
    }

    #[test]
    fn the_functions_https_client_is_the_one_checked_once() {
        let client = aws_https_client(None).expect("the HTTPS client");
        assert!(format!("{client:?}").contains("CheckedOnce"), "{client:?}");
    }

    #[test]
    fn a_check_that_failed_is_made_again() {
        let counted = CountedChecks {
            failing: 1,
            ..CountedChecks::default()
        };
        let checks = Arc::clone(&counted.checks);
        let client = CheckedOnce::new(counted.into_shared());
        let check = || {
            client.validate_base_client_config(
                &RuntimeComponentsBuilder::new("test"),
                &ConfigBag::base(),
            )
        };
        assert!(check().is_err(), "the first check fails");
        assert!(check().is_ok(), "the second is made, and passes");
        assert!(check().is_ok(), "the third is not made");
        assert_eq!(checks.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn each_operation_but_sending_an_email_allows_more_than_one_attempt() {
        let t = AwsTimeouts::DEFAULT;
        for (service, attempt, operation) in [
            ("DynamoDB", t.dynamodb_attempt, t.dynamodb_operation),
            ("SQS", t.sqs_attempt, t.sqs_operation),
            ("Secrets Manager", t.secrets_attempt, t.secrets_operation),
        ] {
            assert!(
                operation > attempt && attempt > t.connect,
                "{service}: connect {:?} < attempt {attempt:?} < operation {operation:?}",
                t.connect
            );
        }
        assert!(
            t.ses_operation == t.ses_attempt && t.ses_attempt > t.connect,
            "SES, sent once: its one attempt is the operation"
        );
    }
}
