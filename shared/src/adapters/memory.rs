//! In-memory adapters: the embedded default of `oes-local` and the unit tests. They keep the same
//! guarantees as the real ones (unique emails, single-use tokens, expiry).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::email::{EmailJob, Lane};
use crate::ports::{
    Cache, CacheError, EmailQueue, QueueError, StoreError, StoredToken, TokenPurpose, TokenStore,
    UserStore, UserUpdate,
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

/// A cache in a map, with expiry.
#[derive(Default)]
pub struct MemoryCache(Mutex<HashMap<String, (String, Instant)>>);

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        let mut map = lock(&self.0);
        match map.get(key) {
            Some((value, expires)) if *expires > Instant::now() => Ok(Some(value.clone())),
            Some(_) => {
                map.remove(key);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> Result<(), CacheError> {
        lock(&self.0).insert(key.to_owned(), (value.to_owned(), Instant::now() + ttl));
        Ok(())
    }

    async fn delete(&self, keys: &[String]) -> Result<(), CacheError> {
        let mut map = lock(&self.0);
        for key in keys {
            map.remove(key);
        }
        Ok(())
    }
}

/// No cache: every read goes to the store. Used when no Redis is configured.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoCache;

#[async_trait]
impl Cache for NoCache {
    async fn get(&self, _key: &str) -> Result<Option<String>, CacheError> {
        Ok(None)
    }

    async fn set(&self, _key: &str, _value: &str, _ttl: Duration) -> Result<(), CacheError> {
        Ok(())
    }

    async fn delete(&self, _keys: &[String]) -> Result<(), CacheError> {
        Ok(())
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

/// The in-process queue of the embedded mode: two lanes, the priority lane always drained first.
#[derive(Default)]
pub struct MemoryQueue {
    lanes: Mutex<(VecDeque<QueuedMessage>, VecDeque<QueuedMessage>)>,
    dead: Mutex<Vec<QueuedMessage>>,
    ready: Notify,
}

impl MemoryQueue {
    /// A shared, empty queue.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
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

    /// Puts a failed message back at the end of its lane, or into the dead list once it has
    /// been received `max_receives` times (the redrive policy of the real queues).
    pub fn release(&self, message: QueuedMessage, max_receives: u32) {
        if message.receive_count >= max_receives {
            tracing::error!(message_id = %message.message_id, "email job moved to the dead-letter list");
            lock(&self.dead).push(message);
            return;
        }
        let lane = EmailJob::decode(&message.body).map_or(Lane::Bulk, |job| job.lane());
        self.push(lane, message);
    }

    /// Messages that exhausted their receives.
    pub fn dead_letters(&self) -> Vec<QueuedMessage> {
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
        self.push(
            job.lane(),
            QueuedMessage {
                message_id: uuid::Uuid::new_v4().to_string(),
                body: job.encode(),
                receive_count: 0,
            },
        );
        Ok(())
    }
}
