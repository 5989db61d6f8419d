//! Device tokens (OWASP's "device cookie"): what a client keeps after a successful sign-in so
//! that its later sign-ins to the same account can be told apart from everyone else's.
//!
//! A device token is an HS256 JWT carrying the user id (`sub`), a random device id (`did`), the
//! user's token version (`ver`) and an expiry. It is signed with a key derived from the JWT
//! secret under its own label, and has its own audience (`<audience>/device`), so it is never
//! accepted as an access token nor an access token as a device token. It grants nothing by
//! itself: it only decides which sign-in limit an attempt counts against. It stops being
//! trusted when it expires or when the account's token version moves on (password reset, role
//! change). Like every token, it is never logged: [`DeviceClaims`] holds no secret, the token
//! string only passes through.

use serde::{Deserialize, Serialize};

use super::JwtSettings;
use super::jwt::Hs256;
use crate::user::User;

/// How long a device stays trusted after its last successful sign-in (30 days). Every
/// successful sign-in from it hands out a fresh token.
pub const DEVICE_TOKEN_TTL_SECONDS: i64 = 30 * 24 * 3600;

/// Device tokens longer than this are not even decoded (ours are about 300 characters).
const MAX_TOKEN_LEN: usize = 1024;

/// What a device token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceClaims {
    /// The user id the device signed in to.
    pub sub: String,
    /// The device: random, 128 bits, hex; kept when the token is renewed.
    pub did: String,
    /// The user's token version when the device signed in.
    pub ver: u64,
    /// Issued at (epoch seconds).
    pub iat: i64,
    /// Expires at (epoch seconds).
    pub exp: i64,
    /// Issuer.
    pub iss: String,
    /// Audience (`<access token audience>/device`).
    pub aud: String,
}

impl DeviceClaims {
    /// Whether this device signed in to `user` since the account's last password reset or role
    /// change.
    pub fn is_for(&self, user: &User) -> bool {
        self.sub == user.id.as_str() && self.ver == user.token_version
    }
}

/// A device token could not be accepted or made.
#[derive(Debug, thiserror::Error)]
pub enum DeviceTokenError {
    /// Bad signature, expired, wrong issuer or audience, malformed, too long.
    #[error("the device token is invalid or expired")]
    Invalid(#[source] Option<jsonwebtoken::errors::Error>),
    /// Signing failed (never expected with HS256).
    #[error("could not sign the device token")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

/// Signs and checks device tokens; built once at init, from the JWT settings.
#[derive(Clone)]
pub struct DeviceKeys {
    keys: Hs256,
}

impl DeviceKeys {
    /// Keys derived from the JWT secret: `SHA-256("oes device token key v1" ‖ secret)`, so a
    /// device token and an access token are never signed with the same key.
    pub fn new(settings: &JwtSettings) -> Self {
        let key = settings.secret.derived_key(b"oes device token key v1\0");
        let audience = format!("{}/device", settings.audience);
        Self {
            keys: Hs256::new(key.as_ref(), &settings.issuer, &audience),
        }
    }

    /// A token saying device `device_id` (a new one when `None`) signed in to `user` at `now`,
    /// valid for [`DEVICE_TOKEN_TTL_SECONDS`].
    pub fn issue(
        &self,
        user: &User,
        device_id: Option<&str>,
        now: i64,
    ) -> Result<String, DeviceTokenError> {
        let claims = DeviceClaims {
            sub: user.id.as_str().to_owned(),
            did: device_id.map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned),
            ver: user.token_version,
            iat: now,
            exp: now + DEVICE_TOKEN_TTL_SECONDS,
            iss: self.keys.issuer.clone(),
            aud: self.keys.audience.clone(),
        };
        self.keys.sign(&claims).map_err(DeviceTokenError::Signing)
    }

    /// Checks signature, algorithm, expiry, issuer and audience. Whether the token is for the
    /// account signing in is [`DeviceClaims::is_for`].
    pub fn verify(&self, token: &str) -> Result<DeviceClaims, DeviceTokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(DeviceTokenError::Invalid(None));
        }
        self.keys
            .check(token)
            .map_err(|e| DeviceTokenError::Invalid(Some(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, SystemClock};
    use crate::security::{JwtKeys, Secret};
    use crate::user::{DisplayName, Email, Role, UserId, UserStatus};

    fn settings() -> JwtSettings {
        JwtSettings {
            secret: Secret::new("a-test-secret-that-is-long-enough-0123456789"),
            issuer: "oes".into(),
            audience: "oes-api".into(),
            ttl_seconds: 900,
        }
    }

    fn user() -> User {
        User {
            id: UserId::generate(),
            email: Email::parse("ada@example.com").expect("valid"),
            name: DisplayName::parse("Ada").expect("valid"),
            password_hash: String::new(),
            role: Role::Student,
            status: UserStatus::Active,
            token_version: 2,
            email_version: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn an_issued_token_verifies_for_its_user_and_keeps_its_device_when_renewed() {
        let keys = DeviceKeys::new(&settings());
        let user = user();
        let now = SystemClock.now();
        let claims = keys
            .verify(&keys.issue(&user, None, now).expect("signed"))
            .expect("valid");
        assert!(claims.is_for(&user));
        assert_eq!(claims.exp, now + DEVICE_TOKEN_TTL_SECONDS);
        assert_eq!(claims.did.len(), 32);
        let renewed = keys
            .verify(&keys.issue(&user, Some(&claims.did), now).expect("signed"))
            .expect("valid");
        assert_eq!(renewed.did, claims.did);
        let other = keys
            .verify(&keys.issue(&user, None, now).expect("signed"))
            .expect("valid");
        assert_ne!(other.did, claims.did, "a new device gets a new id");
    }

    #[test]
    fn a_token_is_not_for_another_user_nor_after_the_token_version_moved_on() {
        let keys = DeviceKeys::new(&settings());
        let user = user();
        let claims = keys
            .verify(&keys.issue(&user, None, SystemClock.now()).expect("signed"))
            .expect("valid");
        assert!(!claims.is_for(&User {
            id: UserId::generate(),
            ..user.clone()
        }));
        assert!(!claims.is_for(&User {
            token_version: 3,
            ..user
        }));
    }

    #[test]
    fn expired_forged_oversized_or_access_tokens_are_refused() {
        let keys = DeviceKeys::new(&settings());
        let user = user();
        let now = SystemClock.now();
        let expired = keys
            .issue(&user, None, now - DEVICE_TOKEN_TTL_SECONDS - 60)
            .expect("signed");
        assert!(keys.verify(&expired).is_err());

        let mut other = settings();
        other.secret = Secret::new("another-secret-another-secret-another-secret");
        let forged = DeviceKeys::new(&other)
            .issue(&user, None, now)
            .expect("signed");
        assert!(keys.verify(&forged).is_err());
        assert!(keys.verify(&"a".repeat(MAX_TOKEN_LEN + 1)).is_err());
        assert!(keys.verify("").is_err());

        let access = JwtKeys::new(&settings());
        let access_token = access.issue(&user, now).expect("signed");
        assert!(
            keys.verify(&access_token).is_err(),
            "an access token is no device token"
        );
        let device_token = keys.issue(&user, None, now).expect("signed");
        assert!(
            access.verify(&device_token).is_err(),
            "a device token is no access token"
        );
    }
}
