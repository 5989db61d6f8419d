use async_trait::async_trait;

use super::error::conflicts;
use super::{StoreError, StoreUnavailable};
use crate::user::{DisplayName, Email, Role, User, UserId};

conflicts! {
    /// Why a change to the accounts was refused.
    pub enum UserConflict {
        /// The email address (or, never in practice, the id) belongs to another account.
        EmailTaken => "email_taken",
        /// Another write to the same items won a race (a cancelled transaction).
        ConcurrentUpdate => "concurrent_update",
    }
}

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
    /// Creates `user`; `EmailTaken` if the email address is taken.
    async fn create(&self, user: &User) -> Result<(), StoreError<UserConflict>>;
    /// Deletes an account and frees its address (used to undo a sign-up that could not finish).
    /// `ConcurrentUpdate`, and nothing deleted, unless `user.email` is still this account's
    /// address: an account that moved since it was read, or is already deleted, is refused, and
    /// another account's address is never freed.
    async fn delete(&self, user: &User) -> Result<(), StoreError<UserConflict>>;
    /// The account with this id.
    async fn get(&self, id: &UserId) -> Result<Option<User>, StoreUnavailable>;
    /// The account with this (normalised) email address.
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreUnavailable>;
    /// Applies `update` at time `now` and returns the account after it; `NotFound` if absent.
    async fn update(
        &self,
        id: &UserId,
        update: UserUpdate,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>>;
    /// Moves the account to `new_email` (atomically freeing the old address and claiming the new
    /// one) and marks it verified (the move follows a proof of the new address); `NotFound` if
    /// the account is absent, else `EmailTaken` if the new address is another account's. Moving
    /// to the address the account already has changes nothing and returns the account as it is
    /// (a second confirmation link for the same address is no error).
    async fn change_email(
        &self,
        id: &UserId,
        new_email: &Email,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>>;
}
