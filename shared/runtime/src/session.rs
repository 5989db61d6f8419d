//! Who is calling: verifies a bearer token (signature, expiry, issuer, audience) and loads the
//! caller's profile through the cache, refusing tokens whose version the user has moved past
//! (password reset, role change). Shared by every API function.
//!
//! Revocation does not rest on the invalidation after the write, which may fail (Redis slow, its
//! breaker open, `oesctl` outside the VPC): a profile is cached for at most
//! [`PROFILE_TTL_MAX`](oes_domain::cache::PROFILE_TTL_MAX), under a minute with its jitter, so a
//! token from before a reset or a role change is refused within a minute whatever became of the
//! invalidation. That costs one store read per signed-in user per minute. A token newer than the
//! cached profile is checked against the store itself, so the owner's new token works at once.

use std::sync::Arc;

use oes_domain::cache::{CacheAside, CacheStatus};
use oes_domain::ports::{StoreUnavailable, UserStore};
use oes_domain::security::{AccessClaims, JwtError, JwtKeys};
use oes_domain::user::{UserId, UserProfile};

/// The caller could not be identified.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// No valid, current access token.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreUnavailable),
}

impl From<JwtError> for SessionError {
    fn from(_: JwtError) -> Self {
        Self::Unauthenticated("the access token is invalid or expired")
    }
}

/// Verifies access tokens and reads profiles, cache-aside.
#[derive(Clone)]
pub struct Sessions {
    jwt: JwtKeys,
    users: Arc<dyn UserStore>,
    cache: CacheAside,
}

impl Sessions {
    /// Sessions over these keys, accounts and cache. Profiles are cached for the cache's
    /// user-profile TTL, at most [`oes_domain::cache::PROFILE_TTL_MAX`].
    pub fn new(jwt: JwtKeys, users: Arc<dyn UserStore>, cache: CacheAside) -> Self {
        Self { jwt, users, cache }
    }

    /// The signing keys.
    pub fn jwt(&self) -> &JwtKeys {
        &self.jwt
    }

    /// The profile behind a bearer token, and where it was read from.
    pub async fn authenticate(
        &self,
        bearer: &str,
    ) -> Result<(UserProfile, CacheStatus), SessionError> {
        self.caller(&self.verify(bearer)?).await
    }

    /// The claims of a bearer token whose signature, expiry, issuer and audience are right: no
    /// I/O, so a request without a valid token is refused before anything is read.
    pub fn verify(&self, bearer: &str) -> Result<AccessClaims, SessionError> {
        Ok(self.jwt.verify(bearer)?)
    }

    /// The profile of verified `claims` (read cache-aside), if the token is still current. A
    /// handler may read what the route needs while this runs, and decide once both are done.
    pub async fn caller(
        &self,
        claims: &AccessClaims,
    ) -> Result<(UserProfile, CacheStatus), SessionError> {
        let id = claims.user_id();
        let (mut profile, mut status) = self.profile(&id).await?;
        if status == CacheStatus::Hit
            && profile
                .as_ref()
                .is_some_and(|p| p.token_version < claims.ver)
        {
            // Versions only grow, and this token was signed with a later one than the cached
            // profile holds: the account changed without the cache being told (an operator's
            // `oesctl users set-role` cannot reach a cache inside the VPC, an invalidation
            // failed). Read the store itself, since dropping the entry may fail again.
            profile = self.users.get(&id).await?.map(|user| user.profile());
            status = CacheStatus::Miss;
            self.invalidate(&id).await;
        }
        match profile {
            Some(profile) if profile.token_version == claims.ver => {
                tracing::Span::current().record("user_id", profile.id.as_str());
                Ok((profile, status))
            }
            Some(_) => Err(SessionError::Unauthenticated(
                "the access token has been revoked",
            )),
            None => Err(SessionError::Unauthenticated(
                "the account no longer exists",
            )),
        }
    }

    /// The profile of `id`, cache-aside.
    pub async fn profile(
        &self,
        id: &UserId,
    ) -> Result<(Option<UserProfile>, CacheStatus), StoreUnavailable> {
        let key = self.cache.keys().user_profile(id);
        self.cache
            .get_or_load(&key, || async {
                Ok::<_, StoreUnavailable>(self.users.get(id).await?.map(|u| u.profile()))
            })
            .await
    }

    /// Drops the cached profile of `id` after a write to the account.
    pub async fn invalidate(&self, id: &UserId) {
        self.cache
            .invalidate(&[self.cache.keys().user_profile(id)])
            .await;
    }
}
