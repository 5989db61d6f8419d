use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{LinkedState, StoreUnavailable};
use crate::security::TokenHash;
use crate::user::{Email, UserId};

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenPurpose {
    /// Proves the sign-up address.
    VerifyEmail,
    /// Allows one password reset.
    PasswordReset,
    /// Proves a new address before the account moves to it.
    ChangeEmail,
}

/// A one-time token as stored: only its hash, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// What it may be used for.
    pub purpose: TokenPurpose,
    /// Whose it is.
    pub user_id: UserId,
    /// For `ChangeEmail`: the address to move to.
    pub new_email: Option<Email>,
    /// The user's token version when it was issued (see [`LinkedState`]).
    pub token_version: u64,
    /// The account's address when it was issued (see [`LinkedState`]); `None` only for a token
    /// stored before the address was recorded, which no reset or email change accepts.
    pub account_email: Option<Email>,
    /// The account's email version when it was issued (see [`LinkedState`]); 0 for a token
    /// stored before it was recorded, as for an account stored before then.
    pub email_version: u64,
    /// Epoch seconds after which it is refused (and removed by the store's TTL).
    pub expires_at: i64,
}

impl StoredToken {
    /// The state of the account the token was issued in, if it was recorded. A reset or an
    /// email change made with the token is conditioned on the account still being in it.
    pub fn linked_state(&self) -> Option<LinkedState> {
        self.account_email.clone().map(|email| LinkedState {
            token_version: self.token_version,
            email,
            email_version: self.email_version,
        })
    }
}

/// What [`TokenStore::replace`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    /// The token is stored, its user's one valid token of its purpose.
    Stored,
    /// Nothing is stored: other replaces for the same user and purpose stored theirs first,
    /// race after race, and the last of them is the valid token.
    Outrun,
}

/// One-time tokens: stored hashed, taken at most once.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores a new token.
    async fn put(&self, token: &StoredToken) -> Result<(), StoreUnavailable>;
    /// Stores a new token as the one valid token of its purpose for its user: the token stored
    /// by the last `replace` for that user and purpose, if still there, is removed in the same
    /// step (of two replaces at once, one is refused and made again), so one token stored this
    /// way works at a time. Tokens stored with [`TokenStore::put`] are left alone. A replace
    /// refused again and again (other replaces won every race) gives up: [`Replaced::Outrun`],
    /// nothing stored, and no failure (it happens only to a user who has tokens).
    async fn replace(&self, token: &StoredToken) -> Result<Replaced, StoreUnavailable>;
    /// Atomically removes and returns the token with this hash if its purpose is one of
    /// `purposes`; a token with another purpose is left in place. A second call with the same
    /// hash returns `None`. Expiry is checked by the caller (store TTLs are lazy): a token past
    /// its `expires_at` may still be returned.
    async fn take(
        &self,
        hash: &TokenHash,
        purposes: &[TokenPurpose],
    ) -> Result<Option<StoredToken>, StoreUnavailable>;
    /// Stores again, as it was, a token [`take`](TokenStore::take) returned, whose use failed
    /// in a way that asks the user to try again (the store unreachable): the link they hold
    /// works again. Not given back if a [`replace`](TokenStore::replace) for its user and
    /// purpose stored another token since (that token voided it). The use it was taken for must
    /// not have happened, or must be one a second use finds void (every use of a link is
    /// conditioned on the account's state, which the use moves on).
    async fn give_back(&self, token: &StoredToken) -> Result<(), StoreUnavailable>;
}
