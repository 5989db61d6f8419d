//! Password policy and argon2id hashing.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::user::InvalidInput;

/// A plain-text password that satisfies the policy (8–128 characters), normalised (NFKC, as
/// NIST SP 800-63B asks: one password however a device composes its characters). Never
/// printed.
pub struct Password(String);

/// `text` in Unicode's NFKC form.
fn normalized(text: &str) -> std::borrow::Cow<'_, str> {
    icu_normalizer::ComposingNormalizerBorrowed::new_nfkc().normalize(text)
}

impl Password {
    /// Shortest password, in characters.
    pub const MIN_CHARS: usize = 8;
    /// Longest password, in characters.
    pub const MAX_CHARS: usize = 128;

    /// Checks `raw`, normalised, against the policy. `field` names the request field in the
    /// error.
    pub fn parse(raw: String, field: &'static str) -> Result<Self, InvalidInput> {
        let raw = match normalized(&raw) {
            std::borrow::Cow::Borrowed(_) => raw,
            std::borrow::Cow::Owned(changed) => changed,
        };
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
    params: Params,
    /// Verified against when no account matches, so that a login for an unknown email costs the
    /// same time as one for a known email ([`decoy`]).
    decoy_hash: String,
}

/// What a [`PasswordHasher::no_password`] hash starts with: no PHC string does.
const NO_PASSWORD: &str = "!no-password:";

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
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        Ok(Self {
            argon2,
            params,
            decoy_hash,
        })
    }

    /// Hashes `password` with a fresh random salt into a PHC string, in fresh memory. CPU-bound:
    /// async code runs it in a bounded pool that lends it reused memory ([`Self::hash_in`]).
    pub fn hash(&self, password: &Password) -> Result<String, PasswordError> {
        self.hash_in(password, &mut HashMemory::default())
    }

    /// [`Self::hash`] in `memory`.
    pub fn hash_in(
        &self,
        password: &Password,
        memory: &mut HashMemory,
    ) -> Result<String, PasswordError> {
        let fail = |e: &dyn std::fmt::Display| PasswordError(e.to_string());
        let mut salt = [0u8; SALT_BYTES];
        getrandom::fill(&mut salt).expect("the operating system's random source is unavailable");
        let mut output = [0u8; OUTPUT_BYTES];
        self.argon2
            .hash_password_into_with_memory(
                password.as_bytes(),
                &salt,
                &mut output,
                memory.blocks(self.params.block_count()),
            )
            .map_err(|e| fail(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(|e| fail(&e))?,
            salt: Some(Salt::new(&salt).map_err(|e| fail(&e))?),
            hash: Some(Output::new(&output).map_err(|e| fail(&e))?),
        };
        Ok(phc.to_string())
    }

    /// The hash of an account that has no password yet: none matches it, and checking one
    /// against it takes as long as against a real hash (a decoy behind [`NO_PASSWORD`]). A
    /// password reset replaces it.
    pub fn no_password(&self) -> String {
        format!("{NO_PASSWORD}{}", decoy(&self.params))
    }

    /// Whether `stored` is a [`Self::no_password`] hash.
    pub fn has_no_password(stored: &str) -> bool {
        stored.starts_with(NO_PASSWORD)
    }

    /// Whether `candidate` matches `stored` (a PHC string), in fresh memory: normalised as
    /// [`Password`] is, or — for a hash made before passwords were — as typed (a second run
    /// only when the two differ, whatever `stored` is, so it tells nothing of the account).
    /// With `stored == None`, or a [`Self::no_password`] hash, verifies against a decoy and
    /// returns `false`, taking the same time.
    pub fn verify(&self, candidate: &str, stored: Option<&str>) -> bool {
        self.verify_in(candidate, stored, &mut HashMemory::default())
    }

    /// [`Self::verify`] in `memory`.
    pub fn verify_in(
        &self,
        candidate: &str,
        stored: Option<&str>,
        memory: &mut HashMemory,
    ) -> bool {
        let usable = stored.filter(|stored| !Self::has_no_password(stored));
        let phc = match stored {
            Some(stored) => stored.strip_prefix(NO_PASSWORD).unwrap_or(stored),
            None => &self.decoy_hash,
        };
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let normal = normalized(candidate);
        let matched = matches(&normal, &parsed, memory)
            || (normal != candidate && matches(candidate, &parsed, memory));
        matched && usable.is_some()
    }
}

/// argon2's working memory for one run at a time (19 MiB with the default parameters), kept and
/// reused from one run to the next. Allocated per run, it stayed with the allocator: glibc
/// serves a 19 MiB request from its arenas once its mmap threshold has risen past it, and a
/// sign-in burst left `oes-local` at 1.1 GB resident with 8 threads (60 MB with the threshold
/// pinned).
#[derive(Default)]
pub struct HashMemory(Vec<Block>);

impl std::fmt::Debug for HashMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HashMemory({} KiB)", self.0.len())
    }
}

impl HashMemory {
    /// The first `count` blocks, grown to that many if it has fewer.
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.0.len() < count {
            self.0.resize(count, Block::default());
        }
        &mut self.0[..count]
    }
}

/// Whether argon2 with `parsed`'s algorithm, version, parameters and salt turns `candidate`
/// into `parsed`'s output (compared in constant time).
fn matches(candidate: &str, parsed: &PasswordHash, memory: &mut HashMemory) -> bool {
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm.as_str()),
        parsed
            .version
            .map_or(Ok(Version::default()), Version::try_from),
        Params::try_from(parsed),
    ) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let mut output = vec![0u8; expected.len()];
    argon2
        .hash_password_into_with_memory(
            candidate.as_bytes(),
            salt.as_ref(),
            &mut output,
            memory.blocks(params.block_count()),
        )
        .is_ok()
        && Output::new(&output).is_ok_and(|computed| computed == *expected)
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

    /// NIST SP 800-63B: a password is normalised (NFKC) before it is hashed, so "pässwort"
    /// typed as one composed character on one device and as a + a combining diaeresis on
    /// another is one password. Before, the second was a wrong password.
    #[test]
    fn a_password_is_one_password_however_its_characters_are_composed() {
        let hasher = cheap();
        let composed = "p\u{e4}sswort-123";
        let decomposed = "pa\u{308}sswort-123";
        let pw = Password::parse(composed.into(), "password").expect("valid");
        let stored = hasher.hash(&pw).expect("hash");
        assert!(hasher.verify(decomposed, Some(&stored)));
        assert!(hasher.verify(composed, Some(&stored)));
        let pw = Password::parse(decomposed.into(), "password").expect("valid");
        let stored = hasher.hash(&pw).expect("hash");
        assert!(hasher.verify(composed, Some(&stored)));
    }

    /// A hash made before passwords were normalised (of the characters as typed) still takes
    /// the password as its owner types it.
    #[test]
    fn a_hash_of_a_password_as_typed_still_verifies() {
        let hasher = cheap();
        let typed = "pa\u{308}sswort-123";
        let stored = hasher.hash(&Password(typed.into())).expect("hash");
        assert!(hasher.verify(typed, Some(&stored)));
        assert!(!hasher.verify("pa\u{308}sswort-124", Some(&stored)));
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

    /// An account without a password matches none, yet a check against it runs argon2 as
    /// against a real hash (what follows the marker is a PHC string of the same parameters).
    #[test]
    fn no_password_matches_a_no_password_hash() {
        let hasher = cheap();
        let none = hasher.no_password();
        assert!(PasswordHasher::has_no_password(&none));
        assert_ne!(none, hasher.no_password(), "each its own");
        let phc = none.strip_prefix(NO_PASSWORD).expect("the marker");
        assert!(PasswordHash::new(phc).is_ok(), "a PHC string: {phc}");
        for candidate in ["", "anything", NO_PASSWORD, none.as_str(), phc] {
            assert!(!hasher.verify(candidate, Some(&none)), "{candidate}");
        }
        let pw = Password::parse("correct horse".into(), "password").expect("valid");
        assert!(!PasswordHasher::has_no_password(
            &hasher.hash(&pw).expect("hash")
        ));
    }

    #[test]
    fn verifying_without_an_account_is_always_false() {
        let hasher = cheap();
        assert!(!hasher.verify("anything", None));
    }

    /// Hashes stored before (by the argon2 crate's own hasher) still verify, ours verify with
    /// the crate's own verifier, and one memory serves runs of any parameters in turn.
    #[test]
    fn hashes_made_in_reused_memory_are_the_argon2_crates_own() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let crate_argon2 = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(256, 1, 1, None).expect("valid"),
        );
        let theirs = crate_argon2
            .hash_password(b"correct horse")
            .expect("hash")
            .to_string();
        let (cheap, full) = (cheap(), PasswordHasher::new().expect("default params"));
        let mut memory = HashMemory::default();
        assert!(full.verify_in("correct horse", Some(&theirs), &mut memory));
        assert!(!full.verify_in("wrong horse", Some(&theirs), &mut memory));
        let pw = Password::parse("correct horse".into(), "password").expect("valid");
        for hasher in [&full, &cheap, &full] {
            let ours = hasher.hash_in(&pw, &mut memory).expect("hash");
            let parsed = PasswordHash::new(&ours).expect("a PHC string");
            assert!(
                crate_argon2
                    .verify_password(b"correct horse", &parsed)
                    .is_ok()
            );
            assert!(
                crate_argon2
                    .verify_password(b"wrong horse", &parsed)
                    .is_err()
            );
            assert!(hasher.verify_in("correct horse", Some(&ours), &mut memory));
        }
        assert!(!full.verify_in("correct horse", Some("not a hash"), &mut memory));
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
