//! The router and the thin handlers: parse and validate the request, call [`AuthService`], map
//! the result. Every answer is JSON; every error is `{"error": {"code", "message"}}`.

use std::time::Instant;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use oes_domain::security::Password;
use oes_domain::user::{DisplayName, Email};
use oes_runtime::http::{
    ApiError, bearer_token, client_ip, finish, json, no_content_json, parse_json, request_span,
    route_path, with_cache_status, within_deadline,
};
use serde::Deserialize;
use tracing::Instrument;
use utoipa::ToSchema;

use crate::limits::{EMAIL_CHANGE_PER_ACCOUNT, EMAIL_PER_IP, SIGN_UP_PER_IP};
use crate::service::{AuthService, SignInFrom};
use crate::views;

/// Every path this function serves (for telling 404 from 405).
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/auth/register"),
    ("POST", "/auth/verify-email"),
    ("GET", "/auth/verify-email"),
    ("POST", "/auth/resend-verification"),
    ("POST", "/auth/login"),
    ("GET", "/auth/me"),
    ("PATCH", "/auth/me"),
    ("POST", "/auth/password-reset/request"),
    ("POST", "/auth/password-reset/confirm"),
    ("POST", "/auth/me/email"),
];

/// The Lambda entry point: routes `request` and logs one line for it. Expected failures are
/// HTTP answers; this never returns `Err`.
pub async fn handle(
    service: &AuthService,
    request: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    let started = Instant::now();
    let span = request_span(&request);
    let result = within_deadline(&request, route(service, &request))
        .instrument(span.clone())
        .await;
    Ok(span.in_scope(|| finish(&request, started, result)))
}

async fn route(service: &AuthService, request: &Request) -> Result<Response<Body>, ApiError> {
    let path = route_path(request);
    match (request.method(), path) {
        (&Method::POST, "/auth/register") => register(service, request).await,
        (&Method::POST, "/auth/verify-email") => {
            let body: TokenBody = parse_json(request)?;
            verify_email(service, &body.token).await
        }
        // The emailed link: a page whose button POSTs its token. Opening it uses nothing
        // (`confirm_page`).
        (&Method::GET, "/auth/verify-email") => {
            request
                .query_string_parameters_ref()
                .and_then(|q| q.first("token").filter(|token| !token.is_empty()))
                .ok_or_else(|| {
                    ApiError::validation("token: the token query parameter is required")
                })?;
            Ok(crate::confirm_page::page())
        }
        (&Method::POST, "/auth/resend-verification") => resend_verification(service, request).await,
        (&Method::POST, "/auth/login") => login(service, request).await,
        (&Method::GET, "/auth/me") => me(service, request).await,
        (&Method::PATCH, "/auth/me") => rename(service, request).await,
        (&Method::POST, "/auth/password-reset/request") => request_reset(service, request).await,
        (&Method::POST, "/auth/password-reset/confirm") => confirm_reset(service, request).await,
        (&Method::POST, "/auth/me/email") => change_email(service, request).await,
        (_, path) if ROUTES.iter().any(|(_, p)| *p == path) => Err(ApiError::method_not_allowed()),
        _ => Err(ApiError::not_found()),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RegisterBody {
    #[schema(format = Email)]
    email: String,
    #[schema(min_length = 8, max_length = 128)]
    password: String,
    #[schema(schema_with = crate::openapi::name)]
    name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenBody {
    token: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmailBody {
    #[schema(format = Email)]
    email: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginBody {
    #[schema(format = Email)]
    email: String,
    password: String,
    /// The device token of an earlier sign-in from this device, if the client kept one.
    #[serde(default)]
    device_token: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RenameBody {
    #[schema(schema_with = crate::openapi::name)]
    name: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResetConfirmBody {
    token: String,
    #[schema(min_length = 8, max_length = 128)]
    new_password: String,
    /// The device token of an earlier sign-in from this device, if the client kept one: the
    /// answer's token keeps its device id.
    #[serde(default)]
    device_token: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmailChangeBody {
    #[schema(format = Email)]
    new_email: String,
    password: String,
}

/// What every accepted sign-up is told, whether the address was free, held by an unverified
/// account or by a verified one (whose owner gets a notice instead of a link).
const SIGN_UP_ACCEPTED: &str =
    "Check your inbox: we sent an email to this address to finish signing up.";

fn accepted() -> Response<Body> {
    no_content_json(StatusCode::ACCEPTED, "accepted")
}

async fn register(service: &AuthService, request: &Request) -> Result<Response<Body>, ApiError> {
    let body: RegisterBody = parse_json(request)?;
    let email = Email::parse(&body.email)?;
    let password = Password::parse(body.password, "password")?;
    let name = DisplayName::parse(&body.name)?;
    let slot = service.admit_password_work()?;
    // The mailbox's own budget is the service's: it counts only emails sent, never refuses.
    service
        .throttle(&[(&SIGN_UP_PER_IP, client_ip(request))])
        .await?;
    service.register(slot, email, password, name).await?;
    // The same answer whatever the address (see `AuthService::register`).
    Ok(json(
        StatusCode::ACCEPTED,
        &views::SignUpAccepted {
            status: "accepted",
            message: SIGN_UP_ACCEPTED,
        },
    ))
}

async fn verify_email(service: &AuthService, token: &str) -> Result<Response<Body>, ApiError> {
    let profile = service.verify_email(token).await?;
    Ok(json(
        StatusCode::OK,
        &views::Verified {
            status: "verified",
            user_id: profile.id,
            email: profile.email,
        },
    ))
}

async fn resend_verification(
    service: &AuthService,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let body: EmailBody = parse_json(request)?;
    let email = Email::parse(&body.email)?;
    service
        .throttle(&[(&EMAIL_PER_IP, client_ip(request))])
        .await?;
    service.resend_verification(&email).await?;
    Ok(accepted())
}

async fn login(service: &AuthService, request: &Request) -> Result<Response<Body>, ApiError> {
    let body: LoginBody = parse_json(request)?;
    let email = Email::parse(&body.email)?;
    let from = SignInFrom {
        ip: client_ip(request),
        device_token: body.device_token.as_deref(),
    };
    let slot = service.admit_password_work()?;
    let token = service.login(slot, &email, body.password, from).await?;
    Ok(json(StatusCode::OK, &token))
}

async fn me(service: &AuthService, request: &Request) -> Result<Response<Body>, ApiError> {
    let (profile, status) = service.authenticate(bearer_token(request)?).await?;
    Ok(with_cache_status(
        json(StatusCode::OK, &views::profile(&profile)),
        status,
    ))
}

async fn rename(service: &AuthService, request: &Request) -> Result<Response<Body>, ApiError> {
    let (profile, _) = service.authenticate(bearer_token(request)?).await?;
    let body: RenameBody = parse_json(request)?;
    let name = DisplayName::parse(&body.name)?;
    let profile = service.rename(&profile.id, name).await?;
    Ok(json(StatusCode::OK, &views::profile(&profile)))
}

async fn request_reset(
    service: &AuthService,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let body: EmailBody = parse_json(request)?;
    let email = Email::parse(&body.email)?;
    // The account's reset emails are bounded by the service, which never refuses.
    service
        .throttle(&[(&EMAIL_PER_IP, client_ip(request))])
        .await?;
    service.request_password_reset(&email).await?;
    Ok(accepted())
}

async fn confirm_reset(
    service: &AuthService,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let body: ResetConfirmBody = parse_json(request)?;
    let password = Password::parse(body.new_password, "new_password")?;
    let slot = service.admit_password_work()?;
    let done = service
        .confirm_password_reset(slot, &body.token, password, body.device_token.as_deref())
        .await?;
    Ok(json(StatusCode::OK, &done))
}

async fn change_email(
    service: &AuthService,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let (profile, _) = service.authenticate(bearer_token(request)?).await?;
    let body: EmailChangeBody = parse_json(request)?;
    let new_email = Email::parse(&body.new_email)
        .map_err(|_| ApiError::validation("new_email: is not a valid email address"))?;
    let slot = service.admit_password_work()?;
    service
        .throttle(&[(&EMAIL_CHANGE_PER_ACCOUNT, profile.id.as_str())])
        .await?;
    service
        .request_email_change(slot, &profile.id, new_email, body.password)
        .await?;
    Ok(accepted())
}
