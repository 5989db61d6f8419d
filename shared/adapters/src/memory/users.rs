//! Accounts in a map, with the same guarantees as [`crate::dynamo::DynamoUsers`]: unique
//! email addresses, moves between addresses, deletes that never free another account's address.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
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

/// Accounts in a map.
#[derive(Default)]
pub struct MemoryUsers(Mutex<UsersInner>);

#[async_trait]
impl UserStore for MemoryUsers {
    async fn create(&self, user: &User) -> Result<(), StoreError<UserConflict>> {
        let mut inner = lock(&self.0);
        if inner.by_email.contains_key(&user.email) || inner.by_id.contains_key(&user.id) {
            return Err(StoreError::Conflict(UserConflict::EmailTaken));
        }
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
        Ok(lock(&self.0).by_id.get(id).cloned())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreUnavailable> {
        let inner = lock(&self.0);
        Ok(inner
            .by_email
            .get(email)
            .and_then(|id| inner.by_id.get(id))
            .cloned())
    }

    async fn update(
        &self,
        id: &UserId,
        update: UserUpdate,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>> {
        let mut inner = lock(&self.0);
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
        let current = inner.by_id.get(id).ok_or(StoreError::NotFound)?;
        if !linked.holds_for(current) {
            return Err(StoreError::Conflict(UserConflict::LinkVoid));
        }
        if current.email == *new_email {
            return Ok(current.clone());
        }
        if inner.by_email.contains_key(new_email) {
            return Err(StoreError::Conflict(UserConflict::EmailTaken));
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
