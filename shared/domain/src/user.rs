//! Account domain types. Parsing happens at the edge: once a value of these types exists, it is
//! valid.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a value given by a client is not acceptable. The message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct InvalidInput {
    /// The request field at fault.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl InvalidInput {
    /// An error about `field`.
    pub const fn new(field: &'static str, reason: &'static str) -> Self {
        Self { field, reason }
    }
}

/// A normalised email address: ASCII only, trimmed, lower-cased, one `@`, a dotted domain, at
/// most 254 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// Validates and normalises `raw`.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        const INVALID: InvalidInput = InvalidInput::new("email", "is not a valid email address");
        // ASCII only: a non-ASCII character can render like an ASCII one (a look-alike of an
        // existing address), and SES refuses non-ASCII local parts for good. Internationalised
        // domains are accepted in their ASCII (`xn--`) form.
        const NOT_ASCII: InvalidInput = InvalidInput::new(
            "email",
            "must be an ASCII address (write an internationalised domain in its xn-- form)",
        );
        let email = raw.trim().to_ascii_lowercase();
        if !email.is_ascii() {
            return Err(NOT_ASCII);
        }
        if email.is_empty() || email.len() > 254 {
            return Err(INVALID);
        }
        let (local, domain) = email.split_once('@').ok_or(INVALID)?;
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        let domain_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        let chars_ok = email
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"<>()[]\\,;:\"".contains(c))
            && !domain.contains('@');
        if local_ok && domain_ok && chars_ok {
            Ok(Self(email))
        } else {
            Err(INVALID)
        }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = InvalidInput;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Email> for String {
    fn from(value: Email) -> Self {
        value.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name: trimmed, 1–100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    /// Validates `raw`.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let name = raw.trim();
        let count = name.chars().count();
        if count == 0 || count > 100 {
            return Err(InvalidInput::new("name", "must be 1 to 100 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(InvalidInput::new(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisplayName {
    type Error = InvalidInput;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<DisplayName> for String {
    fn from(value: DisplayName) -> Self {
        value.0
    }
}

/// A user id (a random UUID, as text).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserId(String);

impl UserId {
    /// A new random id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    /// Wraps an id read from a trusted source (the store, a verified token).
    pub fn from_trusted(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Takes exams (the default for a new account).
    #[default]
    Student,
    /// Writes and publishes exams.
    Instructor,
    /// Everything, including other people's exams and operations.
    Admin,
}

impl std::str::FromStr for Role {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "student" => Ok(Self::Student),
            "instructor" => Ok(Self::Instructor),
            "admin" => Ok(Self::Admin),
            _ => Err(InvalidInput::new(
                "role",
                "must be student, instructor or admin",
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Student => "student",
            Self::Instructor => "instructor",
            Self::Admin => "admin",
        })
    }
}

/// Whether the account's email address has been proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Signed up, verification email not yet followed.
    PendingVerification,
    /// Verified; may sign in.
    Active,
}

/// An account as stored, including its password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Stable id.
    pub id: UserId,
    /// Current, verified-or-pending email address.
    pub email: Email,
    /// Display name.
    pub name: DisplayName,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// Verification status.
    pub status: UserStatus,
    /// Bumped whenever earlier access tokens must stop working (password reset, role change).
    pub token_version: u64,
    /// Epoch seconds.
    pub created_at: i64,
    /// Epoch seconds.
    pub updated_at: i64,
}

impl User {
    /// The part of the account that may be cached and shown: everything but the password hash.
    pub fn profile(&self) -> UserProfile {
        UserProfile {
            id: self.id.clone(),
            email: self.email.clone(),
            name: self.name.clone(),
            role: self.role,
            status: self.status,
            token_version: self.token_version,
            created_at: self.created_at,
        }
    }
}

/// A user without secrets: what `GET /auth/me` reads through the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserProfile {
    /// Stable id.
    pub id: UserId,
    /// Email address.
    pub email: Email,
    /// Display name.
    pub name: DisplayName,
    /// Role.
    pub role: Role,
    /// Verification status.
    pub status: UserStatus,
    /// See [`User::token_version`].
    pub token_version: u64,
    /// Epoch seconds.
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_trimmed_and_lowercased() {
        let email = Email::parse("  Ada.Lovelace@Example.COM ").map(String::from);
        assert_eq!(email, Ok("ada.lovelace@example.com".to_owned()));
    }

    #[test]
    fn malformed_emails_are_refused() {
        for raw in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@@example.com",
            "a b@example.com",
            "ada@exa_mple.com",
            ".ada@example.com",
            "ada..l@example.com",
            "ada@-example.com",
            "<ada>@example.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} should be refused");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            DisplayName::parse("  Ada ").map(String::from),
            Ok("Ada".to_owned())
        );
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"x".repeat(101)).is_err());
        assert!(DisplayName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn roles_parse_case_insensitively() {
        assert_eq!("Instructor".parse::<Role>(), Ok(Role::Instructor));
        assert!("root".parse::<Role>().is_err());
    }
}
