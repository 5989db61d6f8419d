//! Access tokens: HS256 JWTs with expiry, issuer, audience and the user's token version.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::Secret;
use super::cursor::CursorKeys;
use super::device::DeviceKeys;
use super::subject::SubjectKeys;
use crate::user::{Role, User, UserId};

/// What an access token says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// User id.
    pub sub: String,
    /// Role at the time of issue.
    pub role: Role,
    /// The user's token version at the time of issue; a token with an older version is refused.
    pub ver: u64,
    /// Issued at (epoch seconds).
    pub iat: i64,
    /// Expires at (epoch seconds).
    pub exp: i64,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
}

impl AccessClaims {
    /// The user the token was issued to.
    pub fn user_id(&self) -> UserId {
        UserId::from_trusted(self.sub.clone())
    }
}

/// Settings for signing and checking access tokens.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// HMAC key; at least 32 bytes.
    pub secret: Secret,
    /// `iss` claim.
    pub issuer: String,
    /// `aud` claim.
    pub audience: String,
    /// Lifetime of an access token in seconds.
    pub ttl_seconds: i64,
}

/// The token could not be accepted. Deliberately coarse: the client learns only that it failed.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// Bad signature, expired, wrong issuer or audience, malformed.
    #[error("the access token is invalid or expired")]
    Invalid(#[source] jsonwebtoken::errors::Error),
    /// Signing failed (never expected with HS256).
    #[error("could not sign the access token")]
    Signing(#[source] jsonwebtoken::errors::Error),
}

/// One HS256 key with the issuer and audience its tokens carry and are checked against (`exp`,
/// `iss`, `aud` and `sub` required, 5 s of leeway): what access tokens and device tokens share.
#[derive(Clone)]
pub(super) struct Hs256 {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    /// `iss` of the tokens it signs.
    pub(super) issuer: String,
    /// `aud` of the tokens it signs.
    pub(super) audience: String,
}

impl Hs256 {
    /// Signs and checks with `key`, for `issuer` and `audience`.
    pub(super) fn new(key: &[u8], issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(key),
            decoding: DecodingKey::from_secret(key),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        }
    }

    /// `claims`, signed.
    pub(super) fn sign(&self, claims: &impl Serialize) -> jsonwebtoken::errors::Result<String> {
        encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
    }

    /// The claims of `token`, once its signature, algorithm, expiry, issuer and audience check.
    pub(super) fn check<T: DeserializeOwned>(
        &self,
        token: &str,
    ) -> jsonwebtoken::errors::Result<T> {
        decode::<T>(token, &self.decoding, &self.validation).map(|data| data.claims)
    }
}

/// Keys and validation rules, built once at init.
#[derive(Clone)]
pub struct JwtKeys {
    keys: Hs256,
    ttl_seconds: i64,
    devices: DeviceKeys,
    cursors: CursorKeys,
    subjects: SubjectKeys,
}

impl JwtKeys {
    /// Builds the keys from settings.
    pub fn new(settings: &JwtSettings) -> Self {
        Self {
            keys: Hs256::new(
                settings.secret.expose().as_bytes(),
                &settings.issuer,
                &settings.audience,
            ),
            ttl_seconds: settings.ttl_seconds,
            devices: DeviceKeys::new(settings),
            cursors: CursorKeys::new(&settings.secret),
            subjects: SubjectKeys::new(&settings.secret),
        }
    }

    /// The key that names rate-limit subjects, derived from the same secret (see
    /// [`SubjectKeys`]).
    pub fn subjects(&self) -> &SubjectKeys {
        &self.subjects
    }

    /// The keys of device tokens, derived from the same secret (see [`DeviceKeys`]).
    pub fn devices(&self) -> &DeviceKeys {
        &self.devices
    }

    /// The key of list cursors, derived from the same secret (see [`CursorKeys`]).
    pub fn cursors(&self) -> &CursorKeys {
        &self.cursors
    }

    /// Lifetime of the tokens this issues, in seconds.
    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    /// Signs an access token for `user`, valid from `now` for the configured lifetime.
    pub fn issue(&self, user: &User, now: i64) -> Result<String, JwtError> {
        let claims = AccessClaims {
            sub: user.id.as_str().to_owned(),
            role: user.role,
            ver: user.token_version,
            iat: now,
            exp: now + self.ttl_seconds,
            iss: self.keys.issuer.clone(),
            aud: self.keys.audience.clone(),
        };
        self.keys.sign(&claims).map_err(JwtError::Signing)
    }

    /// Checks signature, algorithm, expiry, issuer and audience. The token version is checked
    /// by the caller against the user's current one.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, JwtError> {
        self.keys.check(token).map_err(JwtError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, SystemClock};
    use crate::user::{DisplayName, Email, UserStatus};

    fn settings(issuer: &str, audience: &str) -> JwtSettings {
        JwtSettings {
            secret: Secret::new("a-test-secret-that-is-long-enough-0123456789"),
            issuer: issuer.into(),
            audience: audience.into(),
            ttl_seconds: 900,
        }
    }

    fn user() -> User {
        User {
            id: UserId::generate(),
            email: Email::parse("ada@example.com").expect("valid"),
            name: DisplayName::parse("Ada").expect("valid"),
            password_hash: String::new(),
            role: Role::Instructor,
            status: UserStatus::Active,
            token_version: 3,
            email_version: 0,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn an_issued_token_verifies_with_its_claims() {
        let keys = JwtKeys::new(&settings("oes", "oes-api"));
        let user = user();
        let now = SystemClock.now();
        let claims = keys
            .verify(&keys.issue(&user, now).expect("signed"))
            .expect("valid");
        assert_eq!(claims.sub, user.id.as_str());
        assert_eq!(
            (claims.role, claims.ver, claims.exp),
            (Role::Instructor, 3, now + 900)
        );
    }

    #[test]
    fn expired_tokens_are_refused() {
        let keys = JwtKeys::new(&settings("oes", "oes-api"));
        let token = keys
            .issue(&user(), SystemClock.now() - 3600)
            .expect("signed");
        assert!(keys.verify(&token).is_err());
    }

    #[test]
    fn wrong_issuer_audience_or_key_is_refused() {
        let keys = JwtKeys::new(&settings("oes", "oes-api"));
        let now = SystemClock.now();
        for other in [
            settings("someone-else", "oes-api"),
            settings("oes", "other-api"),
        ] {
            let token = JwtKeys::new(&other).issue(&user(), now).expect("signed");
            assert!(keys.verify(&token).is_err());
        }
        let mut forged = settings("oes", "oes-api");
        forged.secret = Secret::new("another-secret-another-secret-another-secret");
        let token = JwtKeys::new(&forged).issue(&user(), now).expect("signed");
        assert!(keys.verify(&token).is_err());
        assert!(keys.verify("not.a.jwt").is_err());
    }
}
