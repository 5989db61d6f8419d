//! Rate-limit subjects named without being shown: an IP address or an email address becomes
//! HMAC-SHA256(key, subject), the key derived from the JWT secret under its own label,
//! `SHA-256("oes rate-limit subject key v1" ‖ 0 ‖ secret)`. A plain hash of an address is undone
//! by hashing every address (2³² for IPv4) or a dictionary of emails; this one is not without
//! the secret.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Secret;

/// Names rate-limit subjects; built once at init, from the JWT secret.
#[derive(Clone)]
pub struct SubjectKeys {
    mac: Hmac<Sha256>,
}

impl SubjectKeys {
    /// Keys derived from `secret` (the JWT secret).
    pub fn new(secret: &Secret) -> Self {
        Self {
            mac: secret.derived_mac(b"oes rate-limit subject key v1\0"),
        }
    }

    /// `subject`'s name: 128 bits of its HMAC, in hex.
    pub fn name(&self, subject: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(subject.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn a_subject_is_named_by_the_secret_and_only_so() {
        let one = SubjectKeys::new(&Secret::new("one secret, long enough to sign tokens"));
        let other = SubjectKeys::new(&Secret::new("another secret, long enough to sign"));
        let ip = "203.0.113.7";
        assert_eq!(one.name(ip), one.name(ip), "a subject keeps its name");
        assert_ne!(one.name(ip), one.name("203.0.113.8"));
        assert_ne!(one.name(ip), other.name(ip), "another secret, another name");
        let plain = hex::encode(&Sha256::digest(ip.as_bytes())[..16]);
        assert_ne!(one.name(ip), plain);
        assert_eq!(one.name(ip).len(), 32);
    }
}
