//! The AWS SDK clients, built once at init from one loaded configuration.

use crate::dynamo::StoreTiming;

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
}

impl AwsClients {
    /// Loads the shared AWS configuration from the environment.
    pub async fn from_env() -> Self {
        Self::load(None).await
    }

    /// Loads the shared AWS configuration from the environment, with `endpoint` (an emulator's
    /// URL) overriding `AWS_ENDPOINT_URL` when given.
    pub async fn load(endpoint: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let config = loader.load().await;
        Self {
            dynamodb: aws_sdk_dynamodb::Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&config)
                    .interceptor(StoreTiming)
                    .build(),
            ),
            sqs: aws_sdk_sqs::Client::new(&config),
            ses: aws_sdk_sesv2::Client::new(&config),
            secrets: aws_sdk_secretsmanager::Client::new(&config),
        }
    }
}
