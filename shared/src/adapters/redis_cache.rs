//! The Redis cache: a multiplexed connection manager built once at init, created lazily so a
//! Redis that is down at start-up does not stop the function. Every call has a short timeout so
//! a slow Redis costs little; callers treat errors as misses.

use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::ports::{Cache, CacheError};

/// A cache backed by Redis (standalone; cluster mode comes with the exam issue).
#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
}

impl RedisCache {
    /// Connects lazily to `url` (`redis://` or `rediss://`).
    pub fn connect(url: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(250)))
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self { connection })
    }
}

fn error(context: &'static str) -> impl FnOnce(redis::RedisError) -> CacheError {
    move |source| CacheError {
        context,
        source: source.into(),
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        let mut connection = self.connection.clone();
        connection.get(key).await.map_err(error("redis GET"))
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(millis)
            .query_async::<()>(&mut connection)
            .await
            .map_err(error("redis SET"))
    }

    async fn delete(&self, keys: &[String]) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut connection = self.connection.clone();
        connection
            .del::<_, ()>(keys)
            .await
            .map_err(error("redis DEL"))
    }
}
