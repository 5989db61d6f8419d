//! auth-api's operations in the OpenAPI document: one description per route of
//! [`crate::routes::ROUTES`], its request and answer types the ones the handlers parse and
//! answer with ([`crate::views`], [`AccessToken`], the bodies in [`crate::routes`]). The error
//! answers every operation shares are added by [`oes_runtime::http::openapi::complete`].

// The functions only carry their operation's description: nothing calls them.
#![allow(dead_code)]

use oes_domain::user::DisplayName;
use oes_runtime::http::openapi::{StatusBody, TextRule, text_field};
use utoipa::OpenApi;
use utoipa::openapi::Object;

use crate::routes::{
    EmailBody, EmailChangeBody, LoginBody, RegisterBody, RenameBody, ResetConfirmBody, TokenBody,
};
use crate::service::{AccessToken, ResetDone};
use crate::views::{ProfileView, SignUpAccepted, Verified};

/// auth-api's part of the OpenAPI document.
pub fn document() -> utoipa::openapi::OpenApi {
    AuthApiDoc::openapi()
}

/// auth-api's operations.
#[derive(OpenApi)]
#[openapi(
    paths(
        register,
        verify_email,
        verify_email_link,
        resend_verification,
        login,
        me,
        rename,
        request_password_reset,
        confirm_password_reset,
        change_email,
    ),
    tags((name = "auth", description = "Accounts, sign-in and sessions"))
)]
struct AuthApiDoc;

/// The 429 of a rate-limited route.
const RATE_LIMITED: &str = "`rate_limited`: too many tries; wait `Retry-After` seconds";
/// The 400 of a one-time token.
const INVALID_TOKEN: &str = "`invalid_token` (unknown, used, expired) or bad input";

/// Sign up
///
/// The answer is the same whether the address is free or taken: its mailbox gets a link to
/// finish signing up, or a notice.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterBody,
    responses((status = 202, description = "Accepted; check the inbox", body = SignUpAccepted),
              (status = 409, description = "`email_already_queued`"),
              (status = 429, description = RATE_LIMITED)))]
fn register() {}

/// Verify an email address with the token its link carried
#[utoipa::path(post, path = "/auth/verify-email", tag = "auth", request_body = TokenBody,
    responses((status = 200, description = "Verified", body = Verified),
              (status = 400, description = INVALID_TOKEN),
              (status = 409, description = "`email_taken` or `concurrent_update`")))]
fn verify_email() {}

/// The emailed link: a page that confirms the address when its button is pressed
///
/// Opening it changes nothing (mail scanners and link previews open links): the page's button
/// sends the token to `POST /auth/verify-email`.
#[utoipa::path(get, path = "/auth/verify-email", tag = "auth",
    params(("token" = String, Query, description = "the token of the emailed link")),
    responses((status = 200, description = "The confirmation page", content_type = "text/html", body = String),
              (status = 400, description = "`validation_error`: no token")))]
fn verify_email_link() {}

/// Send the verification email again
///
/// The same answer whatever the address, even when the email cannot be queued.
#[utoipa::path(post, path = "/auth/resend-verification", tag = "auth", request_body = EmailBody,
    responses((status = 202, description = "`{\"status\": \"accepted\"}`", body = StatusBody),
              (status = 429, description = RATE_LIMITED)))]
fn resend_verification() {}

/// Sign in: an access token
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginBody,
    responses((status = 200, description = "Signed in", body = AccessToken),
              (status = 401, description = "`invalid_credentials`: a wrong email or password, or an address not verified yet"),
              (status = 429, description = RATE_LIMITED)))]
fn login() {}

/// The caller's account
#[utoipa::path(get, path = "/auth/me", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "The account", body = ProfileView)))]
fn me() {}

/// Change the caller's display name
#[utoipa::path(patch, path = "/auth/me", tag = "auth", request_body = RenameBody,
    security(("bearer" = [])),
    responses((status = 200, description = "The account as changed", body = ProfileView),
              (status = 409, description = "`concurrent_update`")))]
fn rename() {}

/// Ask for a password reset link
///
/// The same answer whatever the address, even when the email cannot be queued.
#[utoipa::path(post, path = "/auth/password-reset/request", tag = "auth",
    request_body = EmailBody,
    responses((status = 202, description = "`{\"status\": \"accepted\"}`", body = StatusBody),
              (status = 429, description = RATE_LIMITED)))]
fn request_password_reset() {}

/// Set a new password with the token of a reset link
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "auth",
    request_body = ResetConfirmBody,
    responses((status = 200, description = "Reset: a device token for the account as reset", body = ResetDone),
              (status = 400, description = INVALID_TOKEN),
              (status = 409, description = "`concurrent_update`")))]
fn confirm_password_reset() {}

/// Change the caller's email address: a link goes to the new one
#[utoipa::path(post, path = "/auth/me/email", tag = "auth", request_body = EmailChangeBody,
    security(("bearer" = [])),
    responses((status = 202, description = "`{\"status\": \"accepted\"}`", body = StatusBody),
              (status = 401, description = "`unauthorized` or `invalid_credentials` (the password)"),
              (status = 429, description = RATE_LIMITED)))]
fn change_email() {}

/// A display name in a request body (`#[schema(schema_with = ...)]`).
pub(crate) fn name() -> Object {
    text_field(DisplayName::MAX_CHARS, TextRule::Name)
}
