//! Accounts in a map, with the same guarantees as [`crate::dynamo::DynamoUsers`]: unique
//! email addresses, moves between addresses, deletes that never free another account's address,
//! unverified accounts replaced in one step and absent once expired.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use oes_domain::clock::{Clock, SystemClock};
use oes_domain::ports::{
    LinkedState, StoreError, StoreUnavailable, UserConflict, UserStore, UserUpdate,
};
use oes_domain::user::{Email, User, UserId, UserStatus};

use super::lock;

#[derive(Default)]
struct UsersInner {
    by_id: HashMap<UserId, User>,
    by_email: HashMap<Email, UserId>,
}

impl UsersInner {
    /// The account `id`, unless it has expired at `now`.
    fn live(&self, id: &UserId, now: i64) -> Option<&User> {
        self.by_id.get(id).filter(|user| !user.is_expired(now))
    }

    /// Whether `email` is claimed by an account that has not expired at `now`. An expired
    /// account and its claim are dropped (as DynamoDB's TTL would, in time).
    fn claimed(&mut self, email: &Email, now: i64) -> bool {
        let Some(owner) = self.by_email.get(email).cloned() else {
            return false;
        };
        if self.live(&owner, now).is_some() {
            return true;
        }
        self.by_email.remove(email);
        self.by_id.remove(&owner);
        false
    }
}

/// Accounts in a map.
#[derive(Default)]
pub struct MemoryUsers(Mutex<UsersInner>);

#[async_trait]
impl UserStore for MemoryUsers {
    async fn create(&self, user: &User) -> Result<(), StoreError<UserConflict>> {
        let mut inner = lock(&self.0);
        if inner.claimed(&user.email, user.created_at) || inner.by_id.contains_key(&user.id) {
            return Err(StoreError::Conflict(UserConflict::EmailTaken));
        }
        inner.by_email.insert(user.email.clone(), user.id.clone());
        inner.by_id.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn replace_unverified(
        &self,
        pending: &User,
        user: &User,
    ) -> Result<(), StoreError<UserConflict>> {
        let mut inner = lock(&self.0);
        let still_pending = inner
            .by_id
            .get(&pending.id)
            .is_some_and(|stored| stored.status == UserStatus::PendingVerification);
        if !still_pending
            || inner.by_email.get(&user.email) != Some(&pending.id)
            || inner.by_id.contains_key(&user.id)
        {
            return Err(StoreError::Conflict(UserConflict::ConcurrentUpdate));
        }
        inner.by_id.remove(&pending.id);
        inner.by_email.insert(user.email.clone(), user.id.clone());
        inner.by_id.insert(user.id.clone(), user.clone());
        Ok(())
    }

    async fn delete(&self, user: &User) -> Result<(), StoreError<UserConflict>> {
        let mut inner = lock(&self.0);
        // As DynamoDB's transaction, conditioned on the address still being this account's:
        // otherwise nothing is deleted (never another account's address).
        if inner.by_email.get(&user.email) != Some(&user.id) {
            return Err(StoreError::Conflict(UserConflict::ConcurrentUpdate));
        }
        inner.by_id.remove(&user.id);
        inner.by_email.remove(&user.email);
        Ok(())
    }

    async fn get(&self, id: &UserId) -> Result<Option<User>, StoreUnavailable> {
        Ok(lock(&self.0).live(id, SystemClock.now()).cloned())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreUnavailable> {
        let inner = lock(&self.0);
        Ok(inner
            .by_email
            .get(email)
            .and_then(|id| inner.live(id, SystemClock.now()))
            .cloned())
    }

    async fn update(
        &self,
        id: &UserId,
        update: UserUpdate,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>> {
        let mut inner = lock(&self.0);
        if inner.live(id, now).is_none() {
            return Err(StoreError::NotFound);
        }
        let user = inner.by_id.get_mut(id).ok_or(StoreError::NotFound)?;
        match update {
            UserUpdate::Name(name) => user.name = name,
            UserUpdate::Verified => user.status = UserStatus::Active,
            UserUpdate::Password { hash, linked } => {
                if !linked.holds_for(user) {
                    return Err(StoreError::Conflict(UserConflict::LinkVoid));
                }
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
        linked: &LinkedState,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>> {
        let mut inner = lock(&self.0);
        let current = inner.live(id, now).ok_or(StoreError::NotFound)?;
        if !linked.holds_for(current) {
            return Err(StoreError::Conflict(UserConflict::LinkVoid));
        }
        if current.email == *new_email {
            return Ok(current.clone());
        }
        if inner.claimed(new_email, now) {
            // An unverified account's claim is taken over, the account deleted.
            let holder = inner.by_email.get(new_email).cloned();
            let unverified = holder
                .as_ref()
                .and_then(|holder| inner.by_id.get(holder))
                .is_some_and(|holder| holder.status == UserStatus::PendingVerification);
            match holder {
                Some(holder) if unverified && holder != *id => {
                    inner.by_id.remove(&holder);
                }
                _ => return Err(StoreError::Conflict(UserConflict::EmailTaken)),
            }
        }
        let user = inner.by_id.get_mut(id).ok_or(StoreError::NotFound)?;
        let old = std::mem::replace(&mut user.email, new_email.clone());
        user.email_version += 1;
        user.status = UserStatus::Active;
        user.updated_at = now;
        let updated = user.clone();
        inner.by_email.remove(&old);
        inner.by_email.insert(new_email.clone(), id.clone());
        Ok(updated)
    }
}
