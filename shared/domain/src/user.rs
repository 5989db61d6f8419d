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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

    /// The mailbox the address reaches, for counting the emails sent to it: the address without
    /// a `+tag` in its local part (`ada+1@x` and `ada+2@x` reach `ada@x` at most providers),
    /// and, at Gmail, without dots (`a.da@gmail.com` is `ada@gmail.com`; `googlemail.com` is
    /// `gmail.com`). Other providers' aliases are not modelled. Never stored, never sent to.
    pub fn mailbox(&self) -> String {
        let (local, domain) = self.0.split_once('@').unwrap_or(("", &self.0));
        let local = local.split('+').next().unwrap_or_default();
        match domain {
            "gmail.com" | "googlemail.com" => format!("{}@gmail.com", local.replace('.', "")),
            _ => format!("{local}@{domain}"),
        }
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    /// Longest name, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Validates `raw`.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let name = raw.trim();
        let count = name.chars().count();
        if count == 0 || count > Self::MAX_CHARS {
            return Err(InvalidInput::new("name", "must be 1 to 100 characters"));
        }
        if name.chars().any(crate::text::is_refused) {
            return Err(InvalidInput::new(
                "name",
                "must not contain control characters or Unicode noncharacters",
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// How long an account waits for its address to be verified: past this it expires, and its
/// address is free again (7 days; a verification link lasts a day, and may be sent again).
pub const UNVERIFIED_ACCOUNT_TTL_SECONDS: i64 = 7 * 24 * 3600;

/// Whether the account's email address has been proven.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserStatus {
    /// Signed up, verification email not yet followed.
    PendingVerification,
    /// Verified; may sign in.
    Active,
}

/// An account as stored, including its password hash (which `Debug` does not show).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Bumped by every move to another address. One-time links are bound to it (see
    /// [`crate::ports::LinkedState`]), so a move voids the links sent before it for good, even
    /// once the account moves back to the address they were sent from. Absent, 0, from accounts
    /// stored before it was recorded.
    #[serde(default)]
    pub email_version: u64,
    /// Epoch seconds.
    pub created_at: i64,
    /// Epoch seconds.
    pub updated_at: i64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("name", &self.name)
            .field("password_hash", &"[redacted]")
            .field("role", &self.role)
            .field("status", &self.status)
            .field("token_version", &self.token_version)
            .field("email_version", &self.email_version)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

impl User {
    /// When the account expires, if it does: an unverified one
    /// [`UNVERIFIED_ACCOUNT_TTL_SECONDS`] after it was created. Stores treat an expired account
    /// as absent (and delete it in time); proving the address removes the expiry.
    pub fn expires_at(&self) -> Option<i64> {
        (self.status == UserStatus::PendingVerification).then(|| {
            self.created_at
                .saturating_add(UNVERIFIED_ACCOUNT_TTL_SECONDS)
        })
    }

    /// Whether the account has expired at `now`.
    pub fn is_expired(&self, now: i64) -> bool {
        self.expires_at()
            .is_some_and(|expires_at| expires_at <= now)
    }

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
    fn tagged_and_dotted_aliases_share_a_mailbox() {
        let mailbox = |raw: &str| Email::parse(raw).map(|email| email.mailbox());
        for alias in [
            "ada@example.com",
            "Ada+1@Example.com",
            "ada+a+b@example.com",
        ] {
            assert_eq!(mailbox(alias), Ok("ada@example.com".to_owned()), "{alias}");
        }
        assert_eq!(
            mailbox("a.da@example.com"),
            Ok("a.da@example.com".to_owned()),
            "dots matter outside Gmail"
        );
        for alias in ["a.d.a+x@gmail.com", "ada@googlemail.com", "A.DA@Gmail.com"] {
            assert_eq!(mailbox(alias), Ok("ada@gmail.com".to_owned()), "{alias}");
        }
        assert_ne!(mailbox("ada@example.org"), mailbox("ada@example.com"));
    }

    #[test]
    fn only_unverified_accounts_expire() {
        let mut user = User {
            id: UserId::generate(),
            email: Email::parse("ada@example.com").expect("valid"),
            name: DisplayName::parse("Ada").expect("valid"),
            password_hash: String::new(),
            role: Role::Student,
            status: UserStatus::PendingVerification,
            token_version: 0,
            email_version: 0,
            created_at: 1_000,
            updated_at: 1_000,
        };
        let end = 1_000 + UNVERIFIED_ACCOUNT_TTL_SECONDS;
        assert_eq!(user.expires_at(), Some(end));
        assert!(!user.is_expired(end - 1) && user.is_expired(end));
        user.status = UserStatus::Active;
        assert_eq!(user.expires_at(), None);
        assert!(!user.is_expired(i64::MAX));
    }

    #[test]
    fn an_accounts_debug_shows_no_password_hash() {
        let user = User {
            id: UserId::generate(),
            email: Email::parse("ada@example.com").expect("valid"),
            name: DisplayName::parse("Ada").expect("valid"),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            role: Role::Student,
            status: UserStatus::Active,
            token_version: 0,
            email_version: 0,
            created_at: 1_000,
            updated_at: 1_000,
        };
        let printed = format!("{user:?}");
        assert!(!printed.contains("argon2id"), "{printed}");
        assert!(printed.contains("ada@example.com"), "{printed}");
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
