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
    /// Verified against when no account matches, so that a login for an unknown email costs the
    /// same time as one for a known email ([`decoy`]).
    decoy_hash: String,
}

/// Bytes of salt and of output in a PHC string (as the `argon2` crate writes them by default).
const SALT_BYTES: usize = 16;
const OUTPUT_BYTES: usize = 32;

/// A PHC string with `params`, a random salt and a random output. Verifying a password against
/// it runs argon2 with the same parameters as against a real hash (the same time) and never
/// matches; building it hashes nothing, so a cold start pays nothing for it (hashing a random
/// password at init cost every auth-api cold start one full argon2 run: ~45 ms of its 57 ms).
fn decoy(params: &Params) -> String {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut bytes = [0u8; SALT_BYTES + OUTPUT_BYTES];
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    let (salt, output) = bytes.split_at(SALT_BYTES);
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(output)
    )
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
        let decoy_hash = decoy(&params);
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
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

    /// The decoy costs a verification what a real hash costs: same algorithm, version,
    /// parameters, salt and output sizes.
    #[test]
    fn the_decoy_is_shaped_as_a_real_hash_of_the_same_hasher() {
        let hasher = PasswordHasher::new().expect("default params");
        let pw = Password::parse("correct horse".into(), "password").expect("valid");
        let real_phc = hasher.hash(&pw).expect("hash");
        let (real, decoy) = (
            PasswordHash::new(&real_phc).expect("a PHC string"),
            PasswordHash::new(&hasher.decoy_hash).expect("a PHC string"),
        );
        assert_eq!(decoy.algorithm, real.algorithm);
        assert_eq!(decoy.version, real.version);
        assert_eq!(decoy.params, real.params);
        let (Some(real_salt), Some(decoy_salt)) = (real.salt, decoy.salt) else {
            panic!("salted: {real_phc} {}", hasher.decoy_hash)
        };
        assert_eq!(decoy_salt.to_string().len(), real_salt.to_string().len());
        assert_eq!(
            decoy.hash.map(|h| h.len()),
            real.hash.map(|h| h.len()),
            "same output length"
        );
        assert_ne!(
            PasswordHasher::new().expect("again").decoy_hash,
            hasher.decoy_hash,
            "random"
        );
    }
}
