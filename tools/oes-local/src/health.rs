//! `GET /health`: whether what `oes-local` stands on answers — the store, the queues and the
//! cache — with each queue's depth and whether each lane is paused. 200 while the store and the
//! queues answer (without the cache oes is slower, not wrong: `degraded`, still 200), 503 when
//! either does not. No token needed, and nothing in it is anyone's data.

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

fn outcome<E: std::fmt::Display>(result: Result<(), E>) -> String {
    result.map_or_else(|error| format!("unavailable: {error}"), |()| "ok".into())
}

/// Asks each dependency once.
pub async fn check(functions: &Functions) -> Health {
    let admin = &functions.admin.admin;
    let store = outcome(admin.jobs.get("oes-local-health-probe").await.map(drop));
    let cache = outcome(admin.cache.reachable().await);
    let (queues_check, queues) = match admin.queue_views().await {
        Ok(views) => ("ok".to_owned(), views),
        Err(error) => (format!("unavailable: {error}"), Vec::new()),
    };
    let status = match (store == "ok" && queues_check == "ok", cache == "ok") {
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
        },
        queues,
    }
}
