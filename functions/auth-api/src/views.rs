//! The JSON shapes auth-api answers with (besides [`crate::service::AccessToken`] and the
//! shared status and error bodies): each a type, whose schema is the one in the OpenAPI
//! document ([`crate::openapi`]).

use oes_domain::clock::rfc3339;
use oes_domain::user::{DisplayName, Email, Role, UserId, UserProfile, UserStatus};
use serde::Serialize;
use utoipa::ToSchema;

/// An account as its owner sees it (`GET /auth/me`, `PATCH /auth/me`).
#[derive(Serialize, ToSchema)]
pub struct ProfileView {
    /// The account's id.
    pub user_id: UserId,
    /// Its verified email address.
    pub email: Email,
    /// Display name.
    pub name: DisplayName,
    /// `student`, `instructor` or `admin`.
    pub role: Role,
    /// `active` once the address is verified.
    pub status: UserStatus,
    /// RFC 3339.
    pub created_at: String,
}

/// An account as its owner sees it.
pub fn profile(profile: &UserProfile) -> ProfileView {
    ProfileView {
        user_id: profile.id.clone(),
        email: profile.email.clone(),
        name: profile.name.clone(),
        role: profile.role,
        status: profile.status,
        created_at: rfc3339(profile.created_at),
    }
}

/// A sign-up accepted: the same answer whatever the address.
#[derive(Serialize, ToSchema)]
pub struct SignUpAccepted {
    /// Always `accepted`.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// What to do next.
    #[schema(value_type = String)]
    pub message: &'static str,
}

/// An address verified (`/auth/verify-email`).
#[derive(Serialize, ToSchema)]
pub struct Verified {
    /// Always `verified`.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// The account.
    pub user_id: UserId,
    /// The address now verified.
    pub email: Email,
}
