//! In-memory adapters: the embedded default of `oes-local` and the unit tests. They keep the same
//! guarantees as the real ones (unique emails, single-use tokens, expiry).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::clock::Clock;
use crate::email::{EmailJob, Lane};
use crate::ports::{
    BoxError, Cache, CacheError, Claim, DeadLetterEntry, Delivery, EmailQueue, Fill, JobLedger,
    JobRecord, JobStatus, Lookup, Outcome, QueueAdmin, QueueControl, QueueCounts, QueueError,
    RedriveReport, StoreError, StoredToken, TokenPurpose, TokenStore, UserStore, UserUpdate,
};
use crate::security::TokenHash;
use crate::user::{Email, User, UserId, UserStatus};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere already failed a test; keep the data usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Default)]
struct UsersInner {
    by_id: HashMap<UserId, User>,
    by_email: HashMap<Email, UserId>,
}

/// Accounts in a map.
#[derive(Default)]
pub struct MemoryUsers(Mutex<UsersInner>);

#[async_trait]
impl UserStore for MemoryUsers {
    async fn create(&self, user: &User) -> Result<(), StoreError> {
        let mut inner = lock(&self.0);
        if inner.by_email.contains_key(&user.email) || inner.by_id.contains_key(&user.id) {
            return Err(StoreError::Conflict("email_taken"));
        }
        inner.by_email.insert(user.email.clone(), user.id.clone());
        inner.by_id.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn delete(&self, user: &User) -> Result<(), StoreError> {
        let mut inner = lock(&self.0);
        inner.by_id.remove(&user.id);
        inner.by_email.remove(&user.email);
        Ok(())
    }

    async fn get(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        Ok(lock(&self.0).by_id.get(id).cloned())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let inner = lock(&self.0);
        Ok(inner
            .by_email
            .get(email)
            .and_then(|id| inner.by_id.get(id))
            .cloned())
    }

    async fn update(&self, id: &UserId, update: UserUpdate, now: i64) -> Result<User, StoreError> {
        let mut inner = lock(&self.0);
        let user = inner.by_id.get_mut(id).ok_or(StoreError::NotFound)?;
        match update {
            UserUpdate::Name(name) => user.name = name,
            UserUpdate::Verified => user.status = UserStatus::Active,
            UserUpdate::Password(hash) => {
                user.password_hash = hash;
                user.status = UserStatus::Active;
                user.token_version += 1;
            }
            UserUpdate::Role(role) => {
                user.role = role;
                user.token_version += 1;
            }
        }
        user.updated_at = now;
        Ok(user.clone())
    }

    async fn change_email(
        &self,
        id: &UserId,
        new_email: &Email,
        now: i64,
    ) -> Result<User, StoreError> {
        let mut inner = lock(&self.0);
        if inner.by_email.contains_key(new_email) {
            return Err(StoreError::Conflict("email_taken"));
        }
        let user = inner.by_id.get_mut(id).ok_or(StoreError::NotFound)?;
        let old = std::mem::replace(&mut user.email, new_email.clone());
        user.status = UserStatus::Active;
        user.updated_at = now;
        let updated = user.clone();
        inner.by_email.remove(&old);
        inner.by_email.insert(new_email.clone(), id.clone());
        Ok(updated)
    }
}

/// One-time tokens in a map.
#[derive(Default)]
pub struct MemoryTokens(Mutex<HashMap<TokenHash, StoredToken>>);

#[async_trait]
impl TokenStore for MemoryTokens {
    async fn put(&self, token: &StoredToken) -> Result<(), StoreError> {
        lock(&self.0).insert(token.hash.clone(), token.clone());
        Ok(())
    }

    async fn take(
        &self,
        hash: &TokenHash,
        purposes: &[TokenPurpose],
    ) -> Result<Option<StoredToken>, StoreError> {
        let mut tokens = lock(&self.0);
        match tokens.get(hash) {
            Some(token) if purposes.contains(&token.purpose) => Ok(tokens.remove(hash)),
            _ => Ok(None),
        }
    }
}

/// A cache in a map, with the same semantics as the Redis one (generations, expiry, locks).
/// Time is Tokio's, so tests can pause it.
#[derive(Default)]
pub struct MemoryCache(Mutex<CacheMaps>);

#[derive(Default)]
struct CacheMaps {
    entries: HashMap<String, (HashMap<String, String>, Instant)>,
    locks: HashMap<String, Instant>,
    counters: HashMap<String, u64>,
    windows: Windows,
}

/// Fixed-window counters that drop ended windows as they grow, so a flood of distinct keys
/// (the local fallback of the rate limiter sees every client) cannot grow without bound.
#[derive(Default)]
struct Windows {
    counts: HashMap<String, (u64, Instant)>,
    prune_at: usize,
}

impl Windows {
    const MIN_PRUNE: usize = 1024;

    fn hit(&mut self, key: &str, window: Duration) -> (u64, Duration) {
        let now = Instant::now();
        if self.counts.len() >= self.prune_at.max(Self::MIN_PRUNE) {
            self.counts.retain(|_, (_, ends)| *ends > now);
            self.prune_at = self.counts.len() * 2;
        }
        let (count, ends) = self
            .counts
            .entry(key.to_owned())
            .or_insert((0, now + window));
        if *ends <= now {
            *count = 0;
            *ends = now + window;
        }
        *count += 1;
        (*count, *ends - now)
    }
}

impl CacheMaps {
    /// The live entry under `key`, dropping it if it has expired.
    fn entry(&mut self, key: &str) -> Option<&mut (HashMap<String, String>, Instant)> {
        if self
            .entries
            .get(key)
            .is_some_and(|(_, expires)| *expires <= Instant::now())
        {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str, field: &str) -> Result<Lookup, CacheError> {
        let mut maps = lock(&self.0);
        Ok(maps
            .entry(key)
            .map_or_else(Lookup::default, |(fields, _)| Lookup {
                generation: fields.get("g").cloned(),
                value: fields.get(field).cloned(),
            }))
    }

    async fn fill(&self, fill: &Fill<'_>) -> Result<bool, CacheError> {
        let mut maps = lock(&self.0);
        maps.locks.remove(fill.lock);
        let generation = maps
            .entry(fill.key)
            .and_then(|(fields, _)| fields.get("g").cloned());
        if generation.as_deref() != fill.seen {
            return Ok(false);
        }
        let expires = Instant::now() + fill.ttl;
        let (fields, expiry) = maps
            .entries
            .entry(fill.key.to_owned())
            .or_insert_with(|| (HashMap::new(), expires));
        fields.insert(fill.field.to_owned(), fill.value.to_owned());
        *expiry = (*expiry).min(expires);
        Ok(true)
    }

    async fn invalidate(
        &self,
        key: &str,
        generation: &str,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        let fields = HashMap::from([("g".to_owned(), generation.to_owned())]);
        lock(&self.0)
            .entries
            .insert(key.to_owned(), (fields, Instant::now() + ttl));
        Ok(())
    }

    async fn lock_or_read(
        &self,
        key: &str,
        field: &str,
        name: &str,
        ttl: Duration,
    ) -> Result<(Lookup, bool), CacheError> {
        let lookup = self.get(key, field).await?;
        if lookup.value.is_some() {
            return Ok((lookup, false));
        }
        let mut maps = lock(&self.0);
        let now = Instant::now();
        if maps.locks.get(name).is_some_and(|until| *until > now) {
            return Ok((lookup, false));
        }
        maps.locks.insert(name.to_owned(), now + ttl);
        Ok((lookup, true))
    }

    async fn counter(&self, key: &str) -> Result<u64, CacheError> {
        Ok(lock(&self.0).counters.get(key).copied().unwrap_or(0))
    }

    async fn increment(&self, key: &str) -> Result<u64, CacheError> {
        let mut maps = lock(&self.0);
        let counter = maps.counters.entry(key.to_owned()).or_insert(0);
        *counter += 1;
        Ok(*counter)
    }

    async fn hit(&self, key: &str, window: Duration) -> Result<(u64, Duration), CacheError> {
        Ok(lock(&self.0).windows.hit(key, window))
    }
}

/// No cache: every read goes to the store. Used when no Redis is configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCache;

#[async_trait]
impl Cache for NoCache {
    async fn get(&self, _key: &str, _field: &str) -> Result<Lookup, CacheError> {
        Ok(Lookup::default())
    }

    async fn fill(&self, _fill: &Fill<'_>) -> Result<bool, CacheError> {
        Ok(false)
    }

    async fn invalidate(
        &self,
        _key: &str,
        _generation: &str,
        _ttl: Duration,
    ) -> Result<(), CacheError> {
        Ok(())
    }

    async fn lock_or_read(
        &self,
        _key: &str,
        _field: &str,
        _lock: &str,
        _ttl: Duration,
    ) -> Result<(Lookup, bool), CacheError> {
        Ok((Lookup::default(), true))
    }

    async fn counter(&self, _key: &str) -> Result<u64, CacheError> {
        Ok(0)
    }

    async fn increment(&self, _key: &str) -> Result<u64, CacheError> {
        Ok(0)
    }

    /// There is nothing to count in: callers that need counters (the rate limiter) keep their
    /// own when no cache is configured.
    async fn hit(&self, _key: &str, _window: Duration) -> Result<(u64, Duration), CacheError> {
        Err(CacheError {
            context: "no cache is configured",
            source: "no windowed counters without a cache".into(),
        })
    }
}

/// A message on the in-process queue, with the bookkeeping SQS would keep.
#[derive(Debug, Clone)]
pub struct QueuedMessage {
    /// Unique per message (not per job).
    pub message_id: String,
    /// The job, encoded as on SQS.
    pub body: String,
    /// How many times it has been handed to the worker, including this time.
    pub receive_count: u32,
}

/// A message set aside on the dead-letter list, with why.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The message.
    pub message: QueuedMessage,
    /// Why it was set aside.
    pub reason: String,
}

/// The in-process queue of the embedded mode: two lanes, the priority lane always drained first,
/// delayed messages, per-delivery visibility (the worker's backoff) and a dead-letter list.
#[derive(Default)]
pub struct MemoryQueue {
    lanes: Mutex<(VecDeque<QueuedMessage>, VecDeque<QueuedMessage>)>,
    visibility: Mutex<HashMap<String, u32>>,
    dead: Mutex<Vec<DeadLetter>>,
    ready: Notify,
    /// A handle to itself, for delayed deliveries (set by [`MemoryQueue::new`]).
    me: std::sync::Weak<MemoryQueue>,
}

impl MemoryQueue {
    /// A shared, empty queue.
    pub fn new() -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            ..Self::default()
        })
    }

    /// Takes up to `max` messages, priority lane first, waiting until at least one is there.
    pub async fn receive(&self, max: usize) -> Vec<QueuedMessage> {
        loop {
            let notified = self.ready.notified();
            let batch = self.try_receive(max);
            if !batch.is_empty() {
                return batch;
            }
            notified.await;
        }
    }

    /// Takes up to `max` messages without waiting.
    pub fn try_receive(&self, max: usize) -> Vec<QueuedMessage> {
        let mut lanes = lock(&self.lanes);
        let (priority, bulk) = &mut *lanes;
        let mut batch = Vec::new();
        while batch.len() < max {
            match priority.pop_front().or_else(|| bulk.pop_front()) {
                Some(mut message) => {
                    message.receive_count += 1;
                    batch.push(message);
                }
                None => break,
            }
        }
        batch
    }

    /// How long a failed delivery stays hidden: what the worker asked for, else `default`.
    pub fn take_visibility(&self, message_id: &str, default: u32) -> u32 {
        lock(&self.visibility).remove(message_id).unwrap_or(default)
    }

    /// Puts a failed message back at the end of its lane, or on the dead-letter list once it
    /// has been received `max_receives` times (the redrive policy of the real queues).
    pub fn release(&self, message: QueuedMessage, max_receives: u32) {
        if message.receive_count >= max_receives {
            tracing::error!(message_id = %message.message_id, "email job moved to the dead-letter list");
            let reason = format!("received {} times (redrive policy)", message.receive_count);
            lock(&self.dead).push(DeadLetter { message, reason });
            return;
        }
        let lane = EmailJob::decode(&message.body).map_or(Lane::Bulk, |job| job.lane());
        self.push(lane, message);
    }

    /// Messages set aside, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        lock(&self.dead).clone()
    }

    fn push(&self, lane: Lane, message: QueuedMessage) {
        {
            let mut lanes = lock(&self.lanes);
            match lane {
                Lane::Priority => lanes.0.push_back(message),
                Lane::Bulk => lanes.1.push_back(message),
            }
        }
        self.ready.notify_one();
    }
}

#[async_trait]
impl EmailQueue for MemoryQueue {
    async fn enqueue(&self, job: &EmailJob) -> Result<(), QueueError> {
        let message = QueuedMessage {
            message_id: uuid::Uuid::new_v4().to_string(),
            body: job.encode(),
            receive_count: 0,
        };
        let lane = job.lane();
        if job.delay_seconds == 0 {
            self.push(lane, message);
            return Ok(());
        }
        // Like SQS DelaySeconds: invisible until the delay has passed.
        let Some(queue) = self.me.upgrade().map(|q| Arc::downgrade(&q)) else {
            tracing::warn!("a MemoryQueue not built by MemoryQueue::new ignores delays");
            self.push(lane, message);
            return Ok(());
        };
        let delay = Duration::from_secs(u64::from(job.delay_seconds));
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(queue) = queue.upgrade() {
                queue.push(lane, message);
            }
        });
        Ok(())
    }
}

#[async_trait]
impl QueueControl for MemoryQueue {
    async fn retry_after(&self, delivery: &Delivery, seconds: u32) -> Result<(), QueueError> {
        lock(&self.visibility).insert(delivery.message_id.clone(), seconds);
        Ok(())
    }

    async fn dead_letter(
        &self,
        delivery: &Delivery,
        body: &str,
        reason: &str,
    ) -> Result<(), QueueError> {
        tracing::error!(message_id = %delivery.message_id, reason, "email job moved to the dead-letter list");
        lock(&self.dead).push(DeadLetter {
            message: QueuedMessage {
                message_id: delivery.message_id.clone(),
                body: body.to_owned(),
                receive_count: delivery.receive_count,
            },
            reason: reason.to_owned(),
        });
        Ok(())
    }
}

#[async_trait]
impl QueueAdmin for MemoryQueue {
    async fn counts(&self) -> Result<Vec<QueueCounts>, BoxError> {
        let (priority, bulk) = {
            let lanes = lock(&self.lanes);
            (lanes.0.len(), lanes.1.len())
        };
        let dead = lock(&self.dead).len();
        let counts = |queue: &str, visible: usize| QueueCounts {
            queue: queue.to_owned(),
            visible: i64::try_from(visible).unwrap_or(i64::MAX),
            in_flight: 0,
            delayed: 0,
        };
        Ok(vec![
            counts("memory-email-priority", priority),
            counts("memory-email-bulk", bulk),
            counts("memory-email-dlq", dead),
        ])
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetterEntry>, BoxError> {
        Ok(lock(&self.dead)
            .iter()
            .take(max)
            .map(|dead| {
                let job = EmailJob::decode(&dead.message.body).ok();
                DeadLetterEntry {
                    message_id: dead.message.message_id.clone(),
                    job_id: job.as_ref().map(|j| j.job_id.clone()),
                    kind: job.as_ref().map(|j| j.template.kind().to_owned()),
                    reason: Some(dead.reason.clone()),
                    source_queue: None,
                }
            })
            .collect())
    }

    async fn redrive(
        &self,
        only: Option<&str>,
        ledger: &dyn JobLedger,
        clock: &dyn Clock,
    ) -> Result<RedriveReport, BoxError> {
        let dead = std::mem::take(&mut *lock(&self.dead));
        let mut report = RedriveReport::default();
        for letter in dead {
            let job = EmailJob::decode(&letter.message.body)
                .ok()
                .filter(|job| only.is_none_or(|id| job.job_id == id));
            match job {
                Some(job) => {
                    ledger
                        .requeue(&job.job_id, clock.now())
                        .await
                        .or_else(|e| match e {
                            StoreError::NotFound => Ok(()),
                            other => Err(other),
                        })?;
                    let mut message = letter.message;
                    message.receive_count = 0;
                    self.push(job.lane(), message);
                    report.moved += 1;
                }
                None => {
                    lock(&self.dead).push(letter);
                    report.skipped += 1;
                }
            }
        }
        Ok(report)
    }
}

/// Job records in a map, with the same lease rules as the DynamoDB ledger.
#[derive(Default)]
pub struct MemoryJobs(Mutex<HashMap<String, JobRecord>>);

#[async_trait]
impl JobLedger for MemoryJobs {
    async fn record_queued(&self, job: &EmailJob, now: i64) -> Result<(), StoreError> {
        let mut records = lock(&self.0);
        if records.contains_key(&job.job_id) {
            return Err(StoreError::Conflict("job_exists"));
        }
        records.insert(job.job_id.clone(), new_record(job, JobStatus::Queued, now));
        Ok(())
    }

    async fn claim(
        &self,
        job: &EmailJob,
        now: i64,
        lease_seconds: i64,
    ) -> Result<Claim, StoreError> {
        let mut records = lock(&self.0);
        let record = records
            .entry(job.job_id.clone())
            .or_insert_with(|| new_record(job, JobStatus::Queued, now));
        match (record.status, record.lease_until) {
            (JobStatus::Queued | JobStatus::Retrying, _) => {}
            (JobStatus::Sending, Some(until)) if until >= now => {
                return Ok(Claim::Busy { lease_until: until });
            }
            (JobStatus::Sending, _) => {}
            (JobStatus::Sent | JobStatus::Failed | JobStatus::Dead, _) => {
                return Ok(Claim::Finished(record.clone()));
            }
        }
        record.status = JobStatus::Sending;
        record.lease_until = Some(now + lease_seconds);
        record.attempts += 1;
        record.updated_at = now;
        Ok(Claim::Acquired {
            attempt: record.attempts,
        })
    }

    async fn finish(&self, job_id: &str, outcome: Outcome, now: i64) -> Result<(), StoreError> {
        let mut records = lock(&self.0);
        let record = records.get_mut(job_id).ok_or(StoreError::NotFound)?;
        record.lease_until = None;
        record.updated_at = now;
        match outcome {
            Outcome::Sent { ses_message_id } => {
                record.status = JobStatus::Sent;
                record.ses_message_id = Some(ses_message_id);
            }
            Outcome::Retrying { error } => {
                record.status = JobStatus::Retrying;
                record.last_error = Some(error);
            }
            Outcome::Paused { error } => {
                record.status = JobStatus::Retrying;
                record.last_error = Some(error);
                record.attempts = record.attempts.saturating_sub(1);
            }
            Outcome::Failed { reason } => {
                record.status = JobStatus::Failed;
                record.last_error = Some(reason);
            }
            Outcome::Dead { reason } => {
                record.status = JobStatus::Dead;
                record.last_error = Some(reason);
            }
        }
        Ok(())
    }

    async fn requeue(&self, job_id: &str, now: i64) -> Result<(), StoreError> {
        let mut records = lock(&self.0);
        let record = records.get_mut(job_id).ok_or(StoreError::NotFound)?;
        record.status = JobStatus::Queued;
        record.attempts = 0;
        record.lease_until = None;
        record.updated_at = now;
        Ok(())
    }

    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
        Ok(lock(&self.0).get(job_id).cloned())
    }
}

fn new_record(job: &EmailJob, status: JobStatus, now: i64) -> JobRecord {
    JobRecord {
        job_id: job.job_id.clone(),
        kind: job.template.kind().to_owned(),
        recipient: job.to.as_str().to_owned(),
        status,
        attempts: 0,
        max_attempts: job.max_attempts,
        last_error: None,
        ses_message_id: None,
        lease_until: None,
        created_at: job.created_at,
        updated_at: now,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::email::EmailTemplate;

    fn job(template: EmailTemplate) -> EmailJob {
        EmailJob::new(Email::parse("ada@example.com").expect("valid"), template, 0)
    }

    #[tokio::test]
    async fn priority_jobs_are_never_stuck_behind_bulk_jobs() {
        let queue = MemoryQueue::new();
        for i in 0..25 {
            let notification = job(EmailTemplate::Generic {
                subject: format!("news {i}"),
                text: "text".into(),
            });
            queue.enqueue(&notification).await.expect("queued");
        }
        let urgent = job(EmailTemplate::Verification {
            name: "Ada".into(),
            token: crate::security::Secret::new("t"),
        });
        queue.enqueue(&urgent).await.expect("queued");
        let first = queue.receive(10).await;
        let first_job = EmailJob::decode(&first[0].body).expect("job");
        assert_eq!(
            first_job.job_id, urgent.job_id,
            "the verification email goes first"
        );
        assert_eq!(first.len(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_jobs_wait_for_their_delay() {
        let queue = MemoryQueue::new();
        let delayed = job(EmailTemplate::Generic {
            subject: "later".into(),
            text: "text".into(),
        })
        .with_delay(900)
        .expect("valid");
        queue.enqueue(&delayed).await.expect("queued");
        tokio::task::yield_now().await;
        assert!(queue.try_receive(10).is_empty());
        tokio::time::advance(Duration::from_secs(901)).await;
        tokio::task::yield_now().await;
        assert_eq!(queue.try_receive(10).len(), 1);
    }
}
