//! argon2 off the async workers, bounded. Each hash holds 19 MiB and a core for tens of
//! milliseconds; run without a bound on the blocking pool (up to 512 threads), a burst of
//! sign-ins grew `oes-local` to 22 GB until the kernel killed it. Here at most `workers` hashes
//! run at once and at most `waiting` more wait their turn; a request beyond that is refused at
//! once ([`Busy`], a 503 with `Retry-After`) and nothing of it runs. Each worker's argon2
//! memory is kept and lent to the next run ([`HashMemory`]): the pool holds at most `workers`
//! of them, so password work holds at most `workers` × 19 MiB.

use std::sync::{Arc, Mutex};

use oes_domain::security::HashMemory;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Hashes waiting per worker by default: the last of them waits about 64 hashes' time
/// (~3 s at 45 ms a hash), inside the function's timeout.
const WAITING_PER_WORKER: usize = 64;

/// Refused: the pool's queue is full. Try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks at once")]
pub struct Busy;

/// A bounded pool for CPU-bound password work. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HashPool {
    /// Permits to run (one per worker).
    running: Arc<Semaphore>,
    /// Permits to be admitted at all: running plus waiting.
    admitted: Arc<Semaphore>,
    /// Memories of runs that ended, for the next ones (never more than `workers`).
    memories: Arc<Mutex<Vec<HashMemory>>>,
}

impl HashPool {
    /// `workers` hashes at once, `waiting` more queued.
    pub fn new(workers: usize, waiting: usize) -> Self {
        let workers = workers.max(1);
        Self {
            running: Arc::new(Semaphore::new(workers)),
            admitted: Arc::new(Semaphore::new(workers + waiting)),
            memories: Arc::default(),
        }
    }

    /// One worker, and [`WAITING_PER_WORKER`] waiting: the function's pool. Lambda hands an
    /// environment one event at a time (`lambda_http::run`), and a request checks or hashes one
    /// password at a time, so more workers would never run. Nothing is read to size it:
    /// [`per_core`](Self::per_core) reads the process's CPU quota from `/proc` and `/sys`, about
    /// 3 % of a cold start (docs/BENCHMARKS.md, "Cold starts").
    pub fn one_at_a_time() -> Self {
        Self::new(1, WAITING_PER_WORKER)
    }

    /// One worker per core this process may use, and [`WAITING_PER_WORKER`] waiting for each:
    /// for a server that takes many requests at once (`oes-local`).
    pub fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self::new(cores, cores * WAITING_PER_WORKER)
    }

    /// A place in the queue, or [`Busy`] at once when the queue is full. Taken before a request
    /// spends anything else — a rate limit's budget, a single-use link — so that a request
    /// refused as busy has spent nothing and can simply be sent again.
    pub fn admit(&self) -> Result<Admission, Busy> {
        let admitted = Arc::clone(&self.admitted)
            .try_acquire_owned()
            .map_err(|_| Busy)?;
        Ok(Admission {
            admitted,
            pool: self.clone(),
        })
    }

    /// [`admit`](Self::admit), then [`Admission::run`].
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        self.admit()?.run(work).await
    }
}

/// A place in a [`HashPool`]'s queue; dropped unused, it frees the place.
#[derive(Debug)]
#[must_use = "an admission holds a place in the pool until it runs or is dropped"]
pub struct Admission {
    admitted: OwnedSemaphorePermit,
    pool: HashPool,
}

impl Admission {
    /// Runs `work` on the blocking pool, in a worker's memory, when a worker is free. The
    /// permits go with the work: a caller that gives up (a client gone) frees its place in the
    /// queue, but work already started keeps its worker until it ends.
    pub async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce(&mut HashMemory) -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let Self { admitted, pool } = self;
        let running = Arc::clone(&pool.running)
            .acquire_owned()
            .await
            .map_err(|e| PoolError::Failed(e.to_string()))?;
        let memories = Arc::clone(&pool.memories);
        tokio::task::spawn_blocking(move || {
            let _held = (admitted, running);
            let mut memory = lock(&memories).pop().unwrap_or_default();
            let answer = work(&mut memory);
            lock(&memories).push(memory);
            answer
        })
        .await
        .map_err(|e| PoolError::Failed(e.to_string()))
    }
}

fn lock(memories: &Mutex<Vec<HashMemory>>) -> std::sync::MutexGuard<'_, Vec<HashMemory>> {
    memories
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why [`HashPool::run`] gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The queue is full.
    #[error(transparent)]
    Busy(#[from] Busy),
    /// The work panicked or the pool was closed (a bug).
    #[error("password work failed: {0}")]
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;

    /// Work that blocks until released, counting how many run at once.
    #[derive(Default)]
    struct Gauge {
        now: AtomicUsize,
        most: AtomicUsize,
    }

    /// A held work's task.
    type Held = tokio::task::JoinHandle<Result<usize, PoolError>>;

    /// `count` held works sent to `pool`, each on a task of its own: their releases and tasks.
    fn send_held(
        pool: &HashPool,
        gauge: &Arc<Gauge>,
        count: usize,
    ) -> (Vec<mpsc::Sender<()>>, Vec<Held>) {
        (0..count)
            .map(|_| {
                let (work, release) = held_work(gauge);
                let pool = pool.clone();
                (release, tokio::spawn(async move { pool.run(work).await }))
            })
            .unzip()
    }

    /// Waits until `running` of the held works run.
    async fn until_running(gauge: &Gauge, running: usize) {
        while gauge.now.load(Ordering::SeqCst) < running {
            tokio::task::yield_now().await;
        }
    }

    /// Waits until `free` of the pool's places (running and waiting) are left.
    async fn until_free_places(pool: &HashPool, free: usize) {
        while pool.admitted.available_permits() != free {
            tokio::task::yield_now().await;
        }
    }

    /// Releases every held work and waits for each task to answer.
    async fn release_all(releases: Vec<mpsc::Sender<()>>, tasks: Vec<Held>) {
        for release in releases {
            release.send(()).expect("the work waits");
        }
        for task in tasks {
            task.await.expect("joined").expect("ran");
        }
    }

    fn held_work(
        gauge: &Arc<Gauge>,
    ) -> (
        impl FnOnce(&mut HashMemory) -> usize + Send + 'static,
        mpsc::Sender<()>,
    ) {
        let (release, wait) = mpsc::channel::<()>();
        let gauge = Arc::clone(gauge);
        let work = move |_: &mut HashMemory| {
            let now = gauge.now.fetch_add(1, Ordering::SeqCst) + 1;
            gauge.most.fetch_max(now, Ordering::SeqCst);
            let _ = wait.recv();
            gauge.now.fetch_sub(1, Ordering::SeqCst);
            now
        };
        (work, release)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn at_most_workers_run_at_most_waiting_wait_and_the_rest_are_refused_at_once() {
        let pool = HashPool::new(2, 3);
        let gauge = Arc::new(Gauge::default());
        let (releases, tasks) = send_held(&pool, &gauge, 5);
        // Two running, three waiting: the sixth is refused without waiting for anyone.
        until_running(&gauge, 2).await;
        until_free_places(&pool, 0).await;
        let refused = pool.run(|_| 0).await;
        assert!(matches!(refused, Err(PoolError::Busy(Busy))), "{refused:?}");
        release_all(releases, tasks).await;
        assert_eq!(
            gauge.most.load(Ordering::SeqCst),
            2,
            "never more than the workers"
        );
        assert_eq!(pool.run(|_| 7).await.expect("room again"), 7);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_functions_pool_runs_one_hash_at_a_time_and_queues_the_rest() {
        let pool = HashPool::one_at_a_time();
        let gauge = Arc::new(Gauge::default());
        let (releases, tasks) = send_held(&pool, &gauge, 3);
        until_running(&gauge, 1).await;
        release_all(releases, tasks).await;
        assert_eq!(gauge.most.load(Ordering::SeqCst), 1, "one at a time");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_that_gives_up_while_waiting_frees_its_place() {
        let pool = HashPool::new(1, 1);
        let gauge = Arc::new(Gauge::default());
        let (work, release) = held_work(&gauge);
        let running = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(work).await }
        });
        while gauge.now.load(Ordering::SeqCst) < 1 {
            tokio::task::yield_now().await;
        }
        // The one waiting place, taken and then given up (the client went away).
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(|_| 1).await }
        });
        until_free_places(&pool, 0).await;
        assert!(matches!(pool.run(|_| 2).await, Err(PoolError::Busy(_))));
        waiting.abort();
        let _ = waiting.await;
        assert_eq!(
            pool.admitted.available_permits(),
            1,
            "the place given up is free again"
        );
        let next = tokio::spawn({
            let pool = pool.clone();
            async move { pool.run(|_| 3).await }
        });
        until_free_places(&pool, 0).await;
        release.send(()).expect("the work waits");
        running.await.expect("joined").expect("ran");
        assert_eq!(next.await.expect("joined").expect("admitted"), 3);
    }

    #[tokio::test]
    async fn an_admission_holds_its_place_until_it_runs_or_is_dropped() {
        let pool = HashPool::new(1, 1);
        let first = pool.admit().expect("a place");
        let second = pool.admit().expect("the waiting place");
        assert!(matches!(pool.admit(), Err(Busy)), "both places are taken");
        drop(second);
        let third = pool.admit().expect("the dropped place is free again");
        assert_eq!(first.run(|_| 1).await.expect("ran"), 1);
        assert_eq!(third.run(|_| 3).await.expect("ran"), 3);
        assert_eq!(pool.run(|_| 4).await.expect("every place is free"), 4);
    }
}
