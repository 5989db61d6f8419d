//! One-time tokens for email verification, password reset and email change: 256 random bits,
//! sent to the user, stored only as a SHA-256 hash.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A freshly generated token, in the form sent to the user (43 base64url characters).
pub struct OneTimeToken(String);

impl OneTimeToken {
    /// 32 bytes from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        // The OS RNG failing is not something a request can recover from.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The token text, to put in the email.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash under which it is stored.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl std::fmt::Debug for OneTimeToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OneTimeToken([redacted])")
    }
}

/// The SHA-256 of a token, hex-encoded. The tokens carry 256 bits of entropy, so an unsalted
/// fast hash is enough: nothing can be guessed from a leaked table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    /// Hashes a token presented by a client. Any string is accepted; an unknown one simply
    /// matches nothing.
    pub fn of(token: &str) -> Self {
        Self(hex::encode(Sha256::digest(token.as_bytes())))
    }

    /// Wraps a hash read from the store.
    pub fn from_stored(hex: impl Into<String>) -> Self {
        Self(hex.into())
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_url_safe() {
        let a = OneTimeToken::generate();
        let b = OneTimeToken::generate();
        assert_eq!(a.expose().len(), 43);
        assert_ne!(a.expose(), b.expose());
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn the_stored_hash_is_not_the_token() {
        let token = OneTimeToken::generate();
        assert_ne!(token.hash().as_str(), token.expose());
        assert_eq!(token.hash(), TokenHash::of(token.expose()));
        assert_eq!(token.hash().as_str().len(), 64);
    }
}
