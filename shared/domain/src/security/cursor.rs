//! List cursors: where the next page of a list starts, signed, so that a client can hand back only
//! a cursor the API issued, and only to the list it was issued for.
//!
//! A cursor is `<position>.<tag>`, both base64url without padding: the position is JSON (e.g.
//! `{"published_at":…,"exam_id":…}`), the tag the first 16 bytes of
//! HMAC-SHA256(key, scope ‖ 0 ‖ position). The scope names one list (`exams`, `results:<exam>`,
//! `attempts:<user>`) and is not in the cursor, so a cursor of one list fails the check on any
//! other. The key is derived from the JWT secret under its own label,
//! `SHA-256("oes list cursor key v1" ‖ 0 ‖ secret)`, so it signs nothing else and no token is
//! signed with it. A cursor does not expire: a position stays meaningful (the next page holds the
//! items after it), and it grants nothing the list itself does not show.
//!
//! Every accepted cursor is one the API wrote (the base64url decoder refuses non-canonical text),
//! so there are only as many valid cursors as positions the API has handed out.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

use super::Secret;
use crate::user::InvalidInput;

/// Bytes of the tag: 128 bits of HMAC-SHA256.
const TAG_BYTES: usize = 16;
/// Cursors longer than this are not even decoded (ours are about 150 characters).
const MAX_CURSOR_LEN: usize = 512;
/// What a client is told about any cursor that is refused.
const INVALID: InvalidInput = InvalidInput::new("cursor", "is not a cursor this list issued");

/// Signs and checks list cursors; built once at init, from the JWT secret.
#[derive(Clone)]
pub struct CursorKeys {
    mac: Hmac<Sha256>,
}

impl CursorKeys {
    /// Keys derived from `secret` (the JWT secret): `SHA-256("oes list cursor key v1\0" ‖
    /// secret)`.
    pub fn new(secret: &Secret) -> Self {
        Self {
            mac: secret.derived_mac(b"oes list cursor key v1\0"),
        }
    }

    /// The cursor of `position` in the list `scope`.
    pub fn sign(&self, scope: &str, position: &impl Serialize) -> String {
        let json = serde_json::to_vec(position).unwrap_or_default();
        let tag = self.mac(scope, &json).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&json),
            URL_SAFE_NO_PAD.encode(&tag[..TAG_BYTES])
        )
    }

    /// The position in `cursor`, if this API signed it for the list `scope`; a 400 for the client
    /// otherwise (made up, changed, cut, or issued for another list).
    pub fn open<P: DeserializeOwned>(&self, scope: &str, cursor: &str) -> Result<P, InvalidInput> {
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(INVALID);
        }
        let (position, tag) = cursor.split_once('.').ok_or(INVALID)?;
        let json = URL_SAFE_NO_PAD.decode(position).map_err(|_| INVALID)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| INVALID)?;
        if tag.len() != TAG_BYTES {
            return Err(INVALID);
        }
        self.mac(scope, &json)
            .verify_truncated_left(&tag)
            .map_err(|_| INVALID)?;
        serde_json::from_slice(&json).map_err(|_| INVALID)
    }

    /// The MAC of `json` in the list `scope`, ready to finalize or verify.
    fn mac(&self, scope: &str, json: &[u8]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(scope.as_bytes());
        mac.update(&[0]);
        mac.update(json);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Position {
        at: i64,
        id: String,
    }

    fn keys(secret: &str) -> CursorKeys {
        CursorKeys::new(&Secret::new(secret))
    }

    fn position() -> Position {
        Position {
            at: 1_700_000_000,
            id: "01a2".into(),
        }
    }

    #[test]
    fn a_cursor_opens_in_its_own_list_only() {
        let keys = keys("a-test-secret-that-is-long-enough-0123456789");
        let cursor = keys.sign("results:e1", &position());
        assert_eq!(keys.open::<Position>("results:e1", &cursor), Ok(position()));
        assert_eq!(
            keys.sign("results:e1", &position()),
            cursor,
            "deterministic"
        );
        for other in ["results:e2", "exams", "results:e", "results:e1\0"] {
            assert!(keys.open::<Position>(other, &cursor).is_err(), "{other}");
        }
    }

    #[test]
    fn made_up_changed_cut_or_foreign_cursors_are_refused() {
        let keys = keys("a-test-secret-that-is-long-enough-0123456789");
        let cursor = keys.sign("exams", &position());
        let (json, tag) = cursor.split_once('.').expect("two parts");
        let moved = URL_SAFE_NO_PAD.encode(br#"{"at":1,"id":"01a2"}"#);
        let foreign =
            self::keys("another-secret-another-secret-another-secret").sign("exams", &position());
        let refused = [
            json.to_owned(),
            format!("{moved}.{tag}"),
            format!("{json}.{}", &tag[..tag.len() - 1]),
            format!("{json}.{tag}A"),
            format!("{json}.{}", &tag[..2]),
            format!("{json}."),
            foreign,
            "a".repeat(MAX_CURSOR_LEN + 1),
            String::new(),
        ];
        for bad in refused {
            assert_eq!(keys.open::<Position>("exams", &bad), Err(INVALID), "{bad}");
        }
    }
}
