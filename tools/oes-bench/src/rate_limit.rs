//! What a rate-limit check adds to a request: `RateLimiter::check` against real Redis (one
//! script call), next to a bare Redis `INCR` round trip, the floor it cannot go below; and the
//! in-memory fallback a container uses when Redis is down.

use std::sync::Arc;
use std::time::{Duration, Instant};

use oes_adapters::redis_cache::{RedisCache, RedisTopology};
use oes_domain::cache::CacheSettings;
use oes_domain::ports::{BoxError, Cache};
use oes_runtime::rate_limit::{Limit, RateLimiter};

use crate::stats::{Percentiles, percentiles, row};

const LIMIT: Limit = Limit {
    rule: "bench",
    max: u64::MAX,
    window: Duration::from_secs(600),
};

async fn measure<F, Fut>(iterations: usize, mut call: F) -> Result<Percentiles, BoxError>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    for n in 0..iterations.min(100) {
        call(n).await?;
    }
    let mut samples = Vec::with_capacity(iterations);
    for n in 0..iterations {
        let started = Instant::now();
        call(n).await?;
        samples.push(started.elapsed());
    }
    percentiles(&mut samples).ok_or_else(|| "no samples".into())
}

/// Runs `iterations` checks of each kind and prints their percentiles.
pub async fn run(iterations: usize) -> Result<(), BoxError> {
    let url = std::env::var("REDIS_URL")
        .map_err(|_| "set REDIS_URL (eval \"$(scripts/services.sh env)\")")?;
    let prefix = format!("bench-rl-{}", std::process::id());
    let redis: Arc<dyn Cache> = Arc::new(RedisCache::connect(
        &url,
        RedisTopology::Standalone,
        Duration::from_millis(200),
    )?);
    let shared = RateLimiter::new(Some(redis), &prefix, &CacheSettings::default());
    let local = RateLimiter::in_memory();
    let mut raw = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;

    eprintln!("| what | checks | p50 | p99 | max | mean |\n|---|---|---|---|---|---|");
    let bare = measure(iterations, |n| {
        let mut raw = raw.clone();
        let key = format!("{prefix}:bare:{}", n % 100);
        async move {
            redis::cmd("INCR")
                .arg(&key)
                .query_async::<u64>(&mut raw)
                .await?;
            Ok(())
        }
    })
    .await?;
    row("bare Redis INCR", iterations, &bare);
    let checks = measure(iterations, |n| {
        let shared = shared.clone();
        async move {
            shared.check(&LIMIT, &format!("subject {}", n % 100)).await;
            Ok(())
        }
    })
    .await?;
    row("RateLimiter::check, Redis", iterations, &checks);
    let fallback = measure(iterations, |n| {
        let local = local.clone();
        async move {
            local.check(&LIMIT, &format!("subject {}", n % 100)).await;
            Ok(())
        }
    })
    .await?;
    row(
        "RateLimiter::check, in memory (Redis down)",
        iterations,
        &fallback,
    );
    let _: () = redis::cmd("DEL")
        .arg(
            (0..100)
                .map(|n| format!("{prefix}:bare:{n}"))
                .collect::<Vec<_>>(),
        )
        .query_async(&mut raw)
        .await?;
    Ok(())
}
