//! One-time tokens in a map: stored hashed, taken at most once.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use oes_domain::ports::{StoreUnavailable, StoredToken, TokenPurpose, TokenStore};
use oes_domain::security::TokenHash;

use super::lock;

/// One-time tokens in a map.
#[derive(Default)]
pub struct MemoryTokens(Mutex<HashMap<TokenHash, StoredToken>>);

#[async_trait]
impl TokenStore for MemoryTokens {
    async fn put(&self, token: &StoredToken) -> Result<(), StoreUnavailable> {
        lock(&self.0).insert(token.hash.clone(), token.clone());
        Ok(())
    }

    async fn take(
        &self,
        hash: &TokenHash,
        purposes: &[TokenPurpose],
    ) -> Result<Option<StoredToken>, StoreUnavailable> {
        let mut tokens = lock(&self.0);
        match tokens.get(hash) {
            Some(token) if purposes.contains(&token.purpose) => Ok(tokens.remove(hash)),
            _ => Ok(None),
        }
    }
}
