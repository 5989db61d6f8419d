//! `GET /health`: whether what `oes-local` stands on answers — the store, the queues and the
//! cache — and whether its lanes' pollers and its sweep still run, with each queue's depth and
//! whether each lane is paused. 200 while the store and the queues answer and the background
//! runs (without the cache oes is slower, not wrong: `degraded`, still 200), 503 otherwise. No
//! token needed, and nothing in it is anyone's data.

use std::future::Future;

use admin_api::QueueView;
use serde::Serialize;

use crate::Functions;

/// Where it is served.
pub const PATH: &str = "/health";

/// The answer.
#[derive(Debug, Serialize)]
pub struct Health {
    /// `ok`, `degraded` (the cache does not answer) or `unavailable`.
    pub status: &'static str,
    /// Each dependency: `ok`, or what went wrong.
    pub checks: Checks,
    /// Each queue's counts (the lanes with `paused`, then the dead-letter queue); empty when the
    /// queues do not answer.
    pub queues: Vec<QueueView>,
}

/// The dependencies' answers.
#[derive(Debug, Serialize)]
pub struct Checks {
    /// The data store (a read of a record that does not exist).
    pub store: String,
    /// The queues (their counts).
    pub queues: String,
    /// The cache (a read of its namespace version).
    pub cache: String,
    /// The lanes' pollers and the attempt sweep: `ok` while each runs.
    pub background: String,
}

impl Health {
    /// The HTTP status: 503 when the store or the queues do not answer.
    pub fn status_code(&self) -> u16 {
        if self.status == "unavailable" {
            503
        } else {
            200
        }
    }
}

fn outcome<T>(result: &Result<T, String>) -> String {
    result
        .as_ref()
        .map_or_else(|error| format!("unavailable: {error}"), |_| "ok".into())
}

/// Asks each dependency once, all at once: it answers within [`DEADLINE`] whatever hangs.
pub async fn check(functions: &Functions) -> Health {
    let admin = &functions.admin.admin;
    assess(
        async {
            let probe = admin.jobs.get("oes-local-health-probe").await;
            probe.map(drop).map_err(|error| error.to_string())
        },
        async {
            admin
                .cache
                .reachable()
                .await
                .map_err(|error| error.to_string())
        },
        async { admin.queue_views().await.map_err(|error| error.to_string()) },
        functions.background.running(),
    )
    .await
}

/// How long a dependency may take to answer before it counts as not answering.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);

/// A probe's outcome, or `no answer` once [`DEADLINE`] has passed.
async fn within_deadline<T>(probe: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(DEADLINE, probe)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {} s", DEADLINE.as_secs())))
}

/// The answer from the three probes, asked at once, each given [`DEADLINE`].
async fn assess(
    store: impl Future<Output = Result<(), String>>,
    cache: impl Future<Output = Result<(), String>>,
    queues: impl Future<Output = Result<Vec<QueueView>, String>>,
    background: Result<(), String>,
) -> Health {
    let (store, cache, queues) = tokio::join!(
        within_deadline(store),
        within_deadline(cache),
        within_deadline(queues)
    );
    let (store, cache, queues_check) = (outcome(&store), outcome(&cache), outcome(&queues));
    let background = outcome(&background);
    let serving = store == "ok" && queues_check == "ok" && background == "ok";
    let status = match (serving, cache == "ok") {
        (false, _) => "unavailable",
        (true, false) => "degraded",
        (true, true) => "ok",
    };
    Health {
        status,
        checks: Checks {
            store,
            queues: queues_check,
            cache,
            background,
        },
        queues: queues.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::assess;

    /// A dependency that accepts the connection and never answers (the emulator's clients wait
    /// up to a minute per call): the health check still answers within seconds, the others'
    /// answers with it.
    #[tokio::test(start_paused = true)]
    async fn a_dependency_that_hangs_does_not_hold_the_answer() {
        let started = tokio::time::Instant::now();
        let hung = || async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok::<(), String>(())
        };
        let health = assess(hung(), hung(), async { Ok(Vec::new()) }, Ok(())).await;
        assert!(
            started.elapsed() <= Duration::from_secs(3),
            "answered after {:?}",
            started.elapsed()
        );
        assert_eq!(health.status, "unavailable");
        assert!(health.checks.store.starts_with("unavailable"), "{health:?}");
        assert!(health.checks.cache.starts_with("unavailable"), "{health:?}");
        assert_eq!(health.checks.queues, "ok");
    }

    /// A lane's poller or the sweep that ended (a panic): the API still answers, but emails are
    /// no longer sent, or attempts closed: 503, for whoever watches it to restart it.
    #[tokio::test]
    async fn a_background_task_that_ended_makes_it_unavailable() {
        let ok = || async { Ok::<(), String>(()) };
        let ended = Err("1 of 3 of the lanes' pollers and the sweep ended".to_owned());
        let health = assess(ok(), ok(), async { Ok(Vec::new()) }, ended).await;
        assert_eq!((health.status, health.status_code()), ("unavailable", 503));
        assert!(
            health.checks.background.starts_with("unavailable: 1 of 3"),
            "{health:?}"
        );
        let health = assess(ok(), ok(), async { Ok(Vec::new()) }, Ok(())).await;
        assert_eq!(
            (health.status, health.checks.background.as_str()),
            ("ok", "ok")
        );
    }
}
