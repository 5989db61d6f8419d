use async_trait::async_trait;

use super::StoreError;
use crate::user::{DisplayName, Email, Role, User, UserId};

/// A change to one account.
#[derive(Debug, Clone)]
pub enum UserUpdate {
    /// New display name.
    Name(DisplayName),
    /// The email address has been proven.
    Verified,
    /// New password hash; also bumps the token version and marks the account verified (the
    /// reset link proved the address).
    Password(String),
    /// New role; also bumps the token version so tokens with the old role stop working.
    Role(Role),
}

/// Accounts, with email addresses unique across all of them.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates `user`; `StoreError::Conflict` if the email address is taken.
    async fn create(&self, user: &User) -> Result<(), StoreError>;
    /// Deletes an account and frees its address (used to undo a sign-up that could not finish).
    async fn delete(&self, user: &User) -> Result<(), StoreError>;
    /// The account with this id.
    async fn get(&self, id: &UserId) -> Result<Option<User>, StoreError>;
    /// The account with this (normalised) email address.
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError>;
    /// Applies `update` at time `now` and returns the account after it; `NotFound` if absent.
    async fn update(&self, id: &UserId, update: UserUpdate, now: i64) -> Result<User, StoreError>;
    /// Moves the account to `new_email` (atomically freeing the old address and claiming the new
    /// one); `Conflict` if the new address is taken.
    async fn change_email(
        &self,
        id: &UserId,
        new_email: &Email,
        now: i64,
    ) -> Result<User, StoreError>;
}
