//! Crashes. Every worker invocation and operator action runs in a [`Scope`]; a fault point inside
//! it may trip the scope's crash, and the invocation's future is dropped right there — as a
//! Lambda that dies mid-batch leaves its work. Ports reached outside any scope (the producer) do
//! not crash.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

tokio::task_local! {
    static SCOPE: Arc<Scope>;
}

/// One invocation that can crash.
#[derive(Debug, Default)]
pub struct Scope {
    /// Its number in the run.
    pub id: u32,
    crashed: AtomicBool,
    trip: Notify,
}

impl Scope {
    /// A new scope.
    pub fn new(id: u32) -> Arc<Self> {
        Arc::new(Self {
            id,
            ..Self::default()
        })
    }

    /// The scope the calling task runs in, if any.
    pub fn current() -> Option<Arc<Self>> {
        SCOPE.try_with(Arc::clone).ok()
    }

    /// Runs `work` in this scope: its output, or `None` if it crashed.
    pub async fn run<F: Future>(self: &Arc<Self>, work: F) -> Option<F::Output> {
        let scoped = SCOPE.scope(Arc::clone(self), work);
        tokio::select! {
            biased;
            () = self.trip.notified() => None,
            out = scoped => Some(out),
        }
    }

    /// Crashes the scope: the caller never resumes.
    pub async fn crash(&self) {
        self.crashed.store(true, Ordering::SeqCst);
        self.trip.notify_one();
        std::future::pending::<()>().await;
    }

    /// Whether it crashed.
    pub fn crashed(&self) -> bool {
        self.crashed.load(Ordering::SeqCst)
    }
}
