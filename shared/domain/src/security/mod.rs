//! Credentials: passwords (argon2id), one-time tokens (random, stored hashed), access tokens
//! (JWT, HS256) and device tokens (the sign-in limits' trusted devices, JWT, HS256); and the
//! signed cursors of paged lists and the names of rate-limit subjects (HMAC-SHA256).

mod cursor;
mod device;
mod jwt;
mod one_time;
mod password;
mod subject;

pub use cursor::CursorKeys;
pub use device::{DEVICE_TOKEN_TTL_SECONDS, DeviceClaims, DeviceKeys, DeviceTokenError};
pub use jwt::{AccessClaims, JwtError, JwtKeys, JwtSettings};
pub use one_time::{OneTimeToken, TokenHash};
pub use password::{HashMemory, Password, PasswordError, PasswordHasher};
pub use subject::SubjectKeys;

use std::fmt;

/// A secret string that never prints: `Debug` and `Display` show `[redacted]`. It serialises as
/// the plain string, for the one place that needs it (the email job carrying a one-time token).
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used, never to log.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A key of its own for one use of this secret: `SHA-256(label ‖ secret)`, where `label`
    /// names the use and ends in a 0 byte. Keys of two labels sign nothing of each other's.
    pub(crate) fn derived_key(&self, label: &[u8]) -> impl AsRef<[u8]> + use<> {
        use sha2::{Digest, Sha256};
        Sha256::new()
            .chain_update(label)
            .chain_update(self.0.as_bytes())
            .finalize()
    }

    /// HMAC-SHA256 under [`Self::derived_key`] of `label`.
    pub(crate) fn derived_mac(&self, label: &[u8]) -> hmac::Hmac<sha2::Sha256> {
        use hmac::KeyInit;
        hmac::Hmac::new_from_slice(self.derived_key(label).as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key"))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}
