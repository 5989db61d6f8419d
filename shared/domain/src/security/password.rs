//! Password policy and argon2id hashing.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::user::InvalidInput;

/// A plain-text password that satisfies the policy (8–128 characters). Never printed.
pub struct Password(String);

impl Password {
    /// Shortest password, in characters.
    pub const MIN_CHARS: usize = 8;
    /// Longest password, in characters.
    pub const MAX_CHARS: usize = 128;

    /// Checks `raw` against the policy. `field` names the request field in the error.
    pub fn parse(raw: String, field: &'static str) -> Result<Self, InvalidInput> {
        let count = raw.chars().count();
        if count < Self::MIN_CHARS {
            return Err(InvalidInput::new(field, "must be at least 8 characters"));
        }
        if count > Self::MAX_CHARS {
            return Err(InvalidInput::new(field, "must be at most 128 characters"));
        }
        Ok(Self(raw))
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// Hashing failed for a reason that is not the caller's (bad parameters, a corrupt stored hash).
#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct PasswordError(String);

/// argon2id with fixed parameters, built once at init.
#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    /// A hash of a random password, verified against when no account matches, so that a login
    /// for an unknown email costs the same time as one for a known email.
    decoy_hash: String,
}

impl PasswordHasher {
    /// OWASP's recommended argon2id settings: 19 MiB, 2 passes, 1 lane.
    pub fn new() -> Result<Self, PasswordError> {
        Self::with_params(19 * 1024, 2, 1)
    }

    /// Custom cost parameters (memory in KiB, passes, lanes).
    pub fn with_params(memory_kib: u32, passes: u32, lanes: u32) -> Result<Self, PasswordError> {
        let params = Params::new(memory_kib, passes, lanes, None)
            .map_err(|e| PasswordError(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let decoy = super::one_time::OneTimeToken::generate();
        let decoy_hash = argon2
            .hash_password(decoy.expose().as_bytes())
            .map_err(|e| PasswordError(e.to_string()))?
            .to_string();
        Ok(Self { argon2, decoy_hash })
    }

    /// Hashes `password` with a fresh random salt into a PHC string. CPU-bound: call it from
    /// `spawn_blocking` in async code.
    pub fn hash(&self, password: &Password) -> Result<String, PasswordError> {
        self.argon2
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| PasswordError(e.to_string()))
    }

    /// Whether `candidate` matches `stored` (a PHC string). With `stored == None`, verifies
    /// against the decoy and returns `false`, taking the same time.
    pub fn verify(&self, candidate: &str, stored: Option<&str>) -> bool {
        let phc = stored.unwrap_or(&self.decoy_hash);
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let matched = self
            .argon2
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok();
        matched && stored.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::with_params(256, 1, 1).expect("valid params")
    }

    #[test]
    fn password_length_is_enforced() {
        assert!(Password::parse("short".into(), "password").is_err());
        assert!(Password::parse("x".repeat(129), "password").is_err());
        assert!(Password::parse("x".repeat(8), "password").is_ok());
        assert!(Password::parse("é".repeat(128), "password").is_ok());
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let hasher = cheap();
        let pw = Password::parse("correct horse".into(), "password").expect("valid");
        let a = hasher.hash(&pw).expect("hash");
        let b = hasher.hash(&pw).expect("hash");
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "each hash has its own salt");
        assert!(hasher.verify("correct horse", Some(&a)));
        assert!(!hasher.verify("wrong horse", Some(&a)));
    }

    #[test]
    fn verifying_without_an_account_is_always_false() {
        let hasher = cheap();
        assert!(!hasher.verify("anything", None));
    }
}
