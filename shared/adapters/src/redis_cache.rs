//! The Redis cache: standalone Redis (a connection manager) or Redis Cluster (the cluster client
//! ElastiCache Serverless needs), chosen by configuration; TLS with a `rediss://` URL. Both are
//! built once at init and connect lazily, so a Redis that is down at start-up does not stop the
//! function; both reconnect by themselves. Calls have short timeouts, and the cache-aside policy
//! bounds each call again and treats errors as misses.
//!
//! An entry is a hash: field `g` holds its generation, the other fields its values. The
//! check-and-set steps are Lua scripts over keys of one hash slot, so they work in a cluster.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};

use oes_domain::ports::{Cache, CacheError, Fill, Lookup};

/// How the Redis behind a URL is organised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RedisTopology {
    /// One primary (ElastiCache with cluster mode disabled, a local `redis-server`).
    #[default]
    Standalone,
    /// Redis Cluster (ElastiCache Serverless, cluster mode enabled): keys spread over hash slots.
    Cluster,
}

/// Stores a value if the generation is unchanged; releases the lock either way; keeps the
/// sooner of the entry's expiry and the new one (so a page never extends its list's life).
static FILL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('DEL', KEYS[2])
if (redis.call('HGET', KEYS[1], 'g') or '') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
local left = redis.call('PTTL', KEYS[1])
if left < 0 or left > tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return 1
",
    )
});

/// Reads a field; only if it is empty, takes the lock (nil and false both reply as nil).
static LOCK_OR_READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local found = redis.call('HMGET', KEYS[1], 'g', ARGV[1])
if found[2] then return {found[1], found[2], 0} end
local taken = redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2])
return {found[1], false, taken and 1 or 0}
",
    )
});

/// Empties an entry and stamps it with a new generation.
static INVALIDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'g', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
",
    )
});

/// Counts a hit in a fixed window: the first hit sets the expiry; a counter that somehow has
/// none (a failover between the two commands) gets one, so it can never count forever.
static HIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local count = redis.call('INCR', KEYS[1])
local left = redis.call('PTTL', KEYS[1])
if count == 1 or left < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  left = tonumber(ARGV[1])
end
return {count, left}
",
    )
});

/// Takes back one hit of a windowed counter, keeping its expiry; at its last hit, the counter
/// goes (the next hit starts a window, as at a count of 0).
static GIVE_BACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 1 then
  redis.call('DECR', KEYS[1])
elseif count == 1 then
  redis.call('DEL', KEYS[1])
end
return 0
",
    )
});

/// A cache backed by Redis, standalone or cluster.
#[derive(Clone)]
pub struct RedisCache {
    connection: Connection,
}

#[derive(Clone)]
enum Connection {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

impl RedisCache {
    /// Connects lazily to `url` (`redis://`, or `rediss://` for TLS) with the given topology;
    /// `timeout` bounds connecting and each response. Must be called inside a Tokio runtime.
    pub fn connect(
        url: &str,
        topology: RedisTopology,
        timeout: Duration,
    ) -> Result<Self, redis::RedisError> {
        let connection = match topology {
            RedisTopology::Standalone => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1);
                let client = redis::Client::open(url)?;
                Connection::Standalone(ConnectionManager::new_lazy_with_config(client, config)?)
            }
            RedisTopology::Cluster => {
                let client = ClusterClient::builder([url]).retries(1).build()?;
                let config = ClusterConfig::new()
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout);
                Connection::Cluster(client.get_pending_async_connection_with_config(config))
            }
        };
        Ok(Self { connection })
    }
}

fn error(context: &'static str) -> impl FnOnce(redis::RedisError) -> CacheError {
    move |source| CacheError {
        context,
        source: source.into(),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str, field: &str) -> Result<Lookup, CacheError> {
        let (generation, value) = redis::cmd("HMGET")
            .arg(key)
            .arg("g")
            .arg(field)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(error("redis HMGET"))?;
        Ok(Lookup { generation, value })
    }

    async fn fill(&self, fill: &Fill<'_>) -> Result<bool, CacheError> {
        FILL.key(fill.key)
            .key(fill.lock)
            .arg(fill.seen.unwrap_or(""))
            .arg(fill.field)
            .arg(fill.value)
            .arg(millis(fill.ttl))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(error("redis fill script"))
    }

    async fn invalidate(
        &self,
        key: &str,
        generation: &str,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        INVALIDATE
            .key(key)
            .arg(generation)
            .arg(millis(ttl))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(error("redis invalidate script"))
    }

    async fn lock_or_read(
        &self,
        key: &str,
        field: &str,
        lock: &str,
        ttl: Duration,
    ) -> Result<(Lookup, bool), CacheError> {
        let (generation, value, taken): (Option<String>, Option<String>, u8) = LOCK_OR_READ
            .key(key)
            .key(lock)
            .arg(field)
            .arg(millis(ttl))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(error("redis lock script"))?;
        Ok((Lookup { generation, value }, taken == 1))
    }

    async fn counter(&self, key: &str) -> Result<u64, CacheError> {
        let value: Option<u64> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(error("redis GET"))?;
        Ok(value.unwrap_or(0))
    }

    async fn increment(&self, key: &str) -> Result<u64, CacheError> {
        redis::cmd("INCR")
            .arg(key)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(error("redis INCR"))
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<(u64, Duration), CacheError> {
        let (count, left_ms): (u64, u64) = HIT
            .key(key)
            .arg(millis(window))
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(error("redis hit script"))?;
        Ok((count, Duration::from_millis(left_ms)))
    }

    async fn give_back(&self, key: &str) -> Result<(), CacheError> {
        let _: i64 = GIVE_BACK
            .key(key)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(error("redis give-back script"))?;
        Ok(())
    }
}
