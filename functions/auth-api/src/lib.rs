//! The auth API: sign-up, email verification, login, password reset, profile and email change.
//!
//! - [`service`]: the domain logic ([`AuthService`]), written against the ports in `oes_domain`;
//!   it knows nothing of Lambda or HTTP.
//! - [`error`]: the domain error and its one mapping to an HTTP answer.
//! - [`limits`]: how often each action may be tried (rate limits).
//! - [`pacing`]: requests that name an address answer after a floor, whatever the address.
//! - [`routes`]: the router and thin handlers: parse the request, call the service, map the result.
//! - [`views`]: the JSON shapes of its answers.
//! - [`openapi`]: the description of every route, for the OpenAPI document.
//! - [`wire`]: the service over the adapters the composition root built.
//! - `main.rs`: wires the real adapters once and starts the Lambda runtime.

mod confirm_page;
pub mod error;
pub mod hashing;
pub mod limits;
pub mod openapi;
pub mod pacing;
pub mod routes;
pub mod service;
pub mod views;

pub use routes::handle;
pub use service::AuthService;

use std::sync::Arc;

use oes_domain::clock::Clock;
use oes_domain::security::{JwtKeys, PasswordHasher};
use oes_runtime::session::Sessions;
use oes_runtime::wiring::ApiAdapters;

/// auth-api's [`AuthService`] over the adapters the composition root built (in `main`,
/// `oes-local` and the tests).
pub fn wire(
    adapters: ApiAdapters,
    jwt: JwtKeys,
    hasher: PasswordHasher,
    clock: Arc<dyn Clock>,
) -> AuthService {
    // Rate-limit keys name their subjects under the JWT secret's key, not by a plain hash.
    let limiter = adapters.limiter.keyed(jwt.subjects().clone());
    AuthService::new(
        adapters.users.clone(),
        adapters.tokens,
        adapters.emails,
        Sessions::new(jwt, adapters.users, adapters.cache),
        limiter,
        hasher,
        clock,
    )
}
