//! The AWS SDK clients, built once at init from one loaded configuration, each with explicit
//! timeouts ([`AwsTimeouts`]).

use std::time::Duration;

use aws_config::SdkConfig;
use aws_config::timeout::TimeoutConfig;

use crate::dynamo::StoreTiming;

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
    /// One SES v2 call (`SendEmail`), retries included.
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
        ses_attempt: Duration::from_secs(5),
        ses_operation: Duration::from_secs(12),
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

/// Whether the environment holds a key pair (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`), as
/// it does in Lambda and against the local emulator.
fn credentials_in_env() -> bool {
    ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        .iter()
        .all(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// The AWS SDK clients, sharing one loaded configuration (region, credentials, and
/// `AWS_ENDPOINT_URL` for the local emulator).
#[derive(Clone, Debug)]
pub struct AwsClients {
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// SES v2.
    pub ses: aws_sdk_sesv2::Client,
    /// Secrets Manager (read at init only).
    pub secrets: aws_sdk_secretsmanager::Client,
    /// Lambda: the lanes' event source mappings (exam-api's admin API pauses and resumes them).
    pub lambda: aws_sdk_lambda::Client,
}

impl AwsClients {
    /// Loads the shared AWS configuration from the environment.
    pub async fn from_env() -> Self {
        Self::load(None).await
    }

    /// Loads the shared AWS configuration from the environment, with `endpoint` (an emulator's
    /// URL) overriding `AWS_ENDPOINT_URL` when given. The clients get [`AwsTimeouts::DEFAULT`]
    /// (what the functions run with in AWS), or [`AwsTimeouts::EMULATOR`] with an endpoint.
    pub async fn load(endpoint: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if credentials_in_env() {
            // What the default chain would find first anyway. Named directly, the rest of the
            // chain is not built: its web-identity provider builds an STS client and an HTTPS
            // connector (the trust store parsed once more), a fifth of a function's init
            // (docs/BENCHMARKS.md, "Cold starts"). Lambda always gives credentials this way.
            loader = loader.credentials_provider(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            );
        }
        let mut timeouts = &AwsTimeouts::DEFAULT;
        if let Some(endpoint) = endpoint {
            loader = loader.endpoint_url(endpoint);
            timeouts = &AwsTimeouts::EMULATOR;
        }
        Self::from_config(&loader.load().await, timeouts)
    }

    /// The clients for `config`, each with its service's `timeouts` (the retry configuration
    /// stays `config`'s).
    pub fn from_config(config: &SdkConfig, timeouts: &AwsTimeouts) -> Self {
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(config)
                    .interceptor(StoreTiming)
                    .timeout_config(
                        timeouts.config(timeouts.dynamodb_attempt, timeouts.dynamodb_operation),
                    )
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::from_conf(
                aws_sdk_sqs::config::Builder::from(config)
                    .timeout_config(timeouts.config(timeouts.sqs_attempt, timeouts.sqs_operation))
                    .build(),
            ),
            ses: aws_sdk_sesv2::Client::from_conf(
                aws_sdk_sesv2::config::Builder::from(config)
                    .timeout_config(timeouts.config(timeouts.ses_attempt, timeouts.ses_operation))
                    .build(),
            ),
            secrets: aws_sdk_secretsmanager::Client::from_conf(
                aws_sdk_secretsmanager::config::Builder::from(config)
                    .timeout_config(
                        timeouts.config(timeouts.secrets_attempt, timeouts.secrets_operation),
                    )
                    .build(),
            ),
            lambda: aws_sdk_lambda::Client::from_conf(
                aws_sdk_lambda::config::Builder::from(config)
                    .timeout_config(
                        timeouts.config(timeouts.lambda_attempt, timeouts.lambda_operation),
                    )
                    .build(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::{BehaviorVersion, Region};

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
            figures(clients.dynamodb.config().timeout_config()),
            expected(t.dynamodb_attempt, t.dynamodb_operation),
            "DynamoDB"
        );
        assert_eq!(
            figures(clients.sqs.config().timeout_config()),
            expected(t.sqs_attempt, t.sqs_operation),
            "SQS"
        );
        assert_eq!(
            figures(clients.ses.config().timeout_config()),
            expected(t.ses_attempt, t.ses_operation),
            "SES v2"
        );
        assert_eq!(
            figures(clients.secrets.config().timeout_config()),
            expected(t.secrets_attempt, t.secrets_operation),
            "Secrets Manager"
        );
        assert_eq!(
            figures(clients.lambda.config().timeout_config()),
            expected(t.lambda_attempt, t.lambda_operation),
            "Lambda"
        );
    }

    #[test]
    fn the_timeouts_replace_the_loaded_configurations_and_keep_its_retries() {
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
        let ses = clients.ses.config();
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
            Some(3)
        );
    }

    #[test]
    fn each_operation_allows_more_than_one_attempt() {
        let t = AwsTimeouts::DEFAULT;
        for (service, attempt, operation) in [
            ("DynamoDB", t.dynamodb_attempt, t.dynamodb_operation),
            ("SQS", t.sqs_attempt, t.sqs_operation),
            ("SES", t.ses_attempt, t.ses_operation),
            ("Secrets Manager", t.secrets_attempt, t.secrets_operation),
        ] {
            assert!(
                operation > attempt && attempt > t.connect,
                "{service}: connect {:?} < attempt {attempt:?} < operation {operation:?}",
                t.connect
            );
        }
    }
}
