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
        /// The account is no longer as a one-time link saw it ([`LinkedState`]): a password
        /// reset, a role change or an email change happened since. The link is void.
        LinkVoid => "link_void",
    }
}

/// The part of an account a one-time link is bound to when it is issued: its token version
/// (bumped by a password reset and a role change), its address and its email version (bumped by
/// every move to another address). A write made on a link's behalf (a reset, an email change) is
/// conditioned on the account still being in this state, so a link is void once any of these
/// happened after it was sent (a move, even once the account moved back to the address: the
/// email version does not come back), and of two links issued in the same state only the first
/// to write succeeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedState {
    /// [`User::token_version`] when the link was issued.
    pub token_version: u64,
    /// The account's address when the link was issued.
    pub email: Email,
    /// [`User::email_version`] when the link was issued.
    pub email_version: u64,
}

impl LinkedState {
    /// The state `user` is in now.
    pub fn of(user: &User) -> Self {
        Self {
            token_version: user.token_version,
            email: user.email.clone(),
            email_version: user.email_version,
        }
    }

    /// Whether `user` is still in this state.
    pub fn holds_for(&self, user: &User) -> bool {
        user.token_version == self.token_version
            && user.email == self.email
            && user.email_version == self.email_version
    }
}

/// A change to one account.
#[derive(Debug, Clone)]
pub enum UserUpdate {
    /// New display name.
    Name(DisplayName),
    /// The email address has been proven.
    Verified,
    /// A password reset: the new password hash, written only if the account is still in the
    /// state the reset link was issued in (`LinkVoid` otherwise, and nothing changes). Also
    /// bumps the token version (ending every session and voiding every other link) and marks
    /// the account verified (the reset link proved the address).
    Password {
        /// argon2id PHC string.
        hash: String,
        /// The state the reset link was issued in.
        linked: LinkedState,
    },
    /// New role; also bumps the token version so tokens with the old role stop working (and
    /// so do the one-time links sent before).
    Role(Role),
}

/// Accounts, with email addresses unique across all of them.
///
/// An unverified account expires ([`User::expires_at`]): from then on every read and write treats
/// it as absent and its address is free, even before the store's TTL has removed it. Proving
/// the address ([`UserUpdate::Verified`], a reset, a move) removes the expiry.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates `user`; `EmailTaken` if the email address belongs to another account (one that
    /// has not expired at `user.created_at`).
    async fn create(&self, user: &User) -> Result<(), StoreError<UserConflict>>;
    /// Replaces the unverified account `pending` by `user`, a new account (another id) at the
    /// same address, in one step: `pending` is deleted, and the address moves to `user`, so
    /// every link sent to `pending` is void. `ConcurrentUpdate`, and nothing changes, unless
    /// `pending` is still unverified and still holds `user.email` (it was verified, replaced or
    /// deleted since it was read).
    async fn replace_unverified(
        &self,
        pending: &User,
        user: &User,
    ) -> Result<(), StoreError<UserConflict>>;
    /// Deletes an account and frees its address (used to undo a sign-up that could not finish).
    /// `ConcurrentUpdate`, and nothing deleted, unless `user.email` is still this account's
    /// address: an account that moved since it was read, or is already deleted, is refused, and
    /// another account's address is never freed.
    async fn delete(&self, user: &User) -> Result<(), StoreError<UserConflict>>;
    /// The account with this id.
    async fn get(&self, id: &UserId) -> Result<Option<User>, StoreUnavailable>;
    /// The account with this (normalised) email address.
    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreUnavailable>;
    /// Applies `update` at time `now` and returns the account after it; `NotFound` if absent,
    /// `LinkVoid` if a [`UserUpdate::Password`] finds the account changed since its link.
    async fn update(
        &self,
        id: &UserId,
        update: UserUpdate,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>>;
    /// Moves the account to `new_email` (atomically freeing the old address and claiming the new
    /// one), bumps its email version and marks it verified (the move follows a proof of the new
    /// address), only if the
    /// account is still in the state `linked` the confirmation link was issued in: `NotFound`
    /// if the account is absent, else `LinkVoid` if it is no longer in that state (nothing
    /// changes), else `EmailTaken` if the new address is another verified account's (an unverified
    /// account holding it is deleted in the same step, as a sign-up replaces one: the move
    /// follows a link sent to that address, which proves it, and voids that account's links). The move bumps the
    /// email version, so it voids every other link issued before it, for good (a move back to
    /// an earlier address does not revive them). Moving to the address the account already has
    /// (from that state) changes nothing and returns the account as it is.
    async fn change_email(
        &self,
        id: &UserId,
        new_email: &Email,
        linked: &LinkedState,
        now: i64,
    ) -> Result<User, StoreError<UserConflict>>;
}
