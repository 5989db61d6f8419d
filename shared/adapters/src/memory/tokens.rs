//! One-time tokens in a map: stored hashed, taken at most once; and, per user and purpose, the
//! token `replace` stored last, which the next `replace` removes.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use oes_domain::ports::{Replaced, StoreUnavailable, StoredToken, TokenPurpose, TokenStore};
use oes_domain::security::TokenHash;
use oes_domain::user::UserId;

use super::lock;

#[derive(Default)]
struct Tokens {
    by_hash: HashMap<TokenHash, StoredToken>,
    /// The token the last `replace` stored, per user and purpose.
    latest: HashMap<(UserId, TokenPurpose), TokenHash>,
}

/// One-time tokens in a map.
#[derive(Default)]
pub struct MemoryTokens(Mutex<Tokens>);

#[async_trait]
impl TokenStore for MemoryTokens {
    async fn put(&self, token: &StoredToken) -> Result<(), StoreUnavailable> {
        lock(&self.0)
            .by_hash
            .insert(token.hash.clone(), token.clone());
        Ok(())
    }

    /// Under one lock: never outrun.
    async fn replace(&self, token: &StoredToken) -> Result<Replaced, StoreUnavailable> {
        let mut tokens = lock(&self.0);
        let slot = (token.user_id.clone(), token.purpose);
        if let Some(replaced) = tokens.latest.insert(slot, token.hash.clone()) {
            tokens.by_hash.remove(&replaced);
        }
        tokens.by_hash.insert(token.hash.clone(), token.clone());
        Ok(Replaced::Stored)
    }

    async fn take(
        &self,
        hash: &TokenHash,
        purposes: &[TokenPurpose],
    ) -> Result<Option<StoredToken>, StoreUnavailable> {
        let mut tokens = lock(&self.0);
        match tokens.by_hash.get(hash) {
            Some(token) if purposes.contains(&token.purpose) => Ok(tokens.by_hash.remove(hash)),
            _ => Ok(None),
        }
    }

    async fn give_back(&self, token: &StoredToken) -> Result<(), StoreUnavailable> {
        let mut tokens = lock(&self.0);
        let slot = (token.user_id.clone(), token.purpose);
        if tokens
            .latest
            .get(&slot)
            .is_some_and(|latest| *latest != token.hash)
        {
            return Ok(());
        }
        tokens.by_hash.insert(token.hash.clone(), token.clone());
        Ok(())
    }
}
