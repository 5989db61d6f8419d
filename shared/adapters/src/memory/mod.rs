//! The in-memory twins of the real adapters: the embedded default of `oes-local`, the unit tests
//! and simulations. One file per port; each twin is held to its real adapter by the contract
//! suites in `tests/`, so it keeps the same guarantees (unique emails, single-use tokens, leases,
//! expiry).

mod attempts;
mod cache;
mod exams;
mod jobs;
mod lanes;
mod no_cache;
mod queue;
mod tokens;
mod users;

pub use attempts::MemoryAttempts;
pub use cache::MemoryCache;
pub use exams::MemoryExams;
pub use jobs::MemoryJobs;
pub use lanes::MemoryLanes;
pub use no_cache::NoCache;
pub use queue::MemoryQueues;
pub use tokens::MemoryTokens;
pub use users::MemoryUsers;

use std::sync::{Mutex, MutexGuard};

/// Locks `mutex`. A poisoned lock means a panic elsewhere already failed a test; the data stays
/// usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
