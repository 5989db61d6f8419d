//! Builds adapters from configuration, once, at init. `main` of each function calls this and
//! passes the result to its handlers; nothing is constructed per invocation.

use std::sync::Arc;

use crate::adapters::dynamo::{DynamoTokens, DynamoUsers};
use crate::adapters::memory::{MemoryCache, MemoryTokens, MemoryUsers, NoCache};
use crate::adapters::redis_cache::RedisCache;
use crate::adapters::sqs::SqsEmailQueue;
use crate::cache::{CacheAside, CacheKeys};
use crate::config::{ApiConfig, ResourceConfig};
use crate::ports::{Cache, EmailQueue, TokenStore, UserStore};

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
            dynamodb: aws_sdk_dynamodb::Client::new(&config),
            sqs: aws_sdk_sqs::Client::new(&config),
            ses: aws_sdk_sesv2::Client::new(&config),
        }
    }
}

/// The adapters the HTTP APIs use.
#[derive(Clone)]
pub struct ApiAdapters {
    /// Accounts.
    pub users: Arc<dyn UserStore>,
    /// One-time tokens.
    pub tokens: Arc<dyn TokenStore>,
    /// Email jobs.
    pub emails: Arc<dyn EmailQueue>,
    /// Cache-aside reads.
    pub cache: CacheAside,
}

impl ApiAdapters {
    /// The real adapters: DynamoDB, SQS, and Redis when `REDIS_URL` is set. Without it there is
    /// no cache at all (a per-container cache could not be invalidated across containers).
    pub fn aws(clients: &AwsClients, config: &ApiConfig) -> Result<Self, redis::RedisError> {
        let ResourceConfig {
            table,
            priority_queue_url,
            bulk_queue_url,
        } = &config.resources;
        let cache: Arc<dyn Cache> = match &config.redis_url {
            Some(url) => Arc::new(RedisCache::connect(url)?),
            None => Arc::new(NoCache),
        };
        Ok(Self {
            users: Arc::new(DynamoUsers::new(clients.dynamodb.clone(), table)),
            tokens: Arc::new(DynamoTokens::new(clients.dynamodb.clone(), table)),
            emails: Arc::new(SqsEmailQueue::new(
                clients.sqs.clone(),
                priority_queue_url,
                bulk_queue_url,
            )),
            cache: CacheAside::new(cache, CacheKeys::new(&config.cache_prefix)),
        })
    }

    /// In-memory adapters around the given email queue (the embedded mode and unit tests).
    pub fn in_memory(emails: Arc<dyn EmailQueue>) -> Self {
        Self {
            users: Arc::new(MemoryUsers::default()),
            tokens: Arc::new(MemoryTokens::default()),
            emails,
            cache: CacheAside::new(Arc::new(MemoryCache::default()), CacheKeys::new("oes")),
        }
    }
}
