//! The auth API: sign-up, email verification, login, password reset, profile and email change.
//!
//! - [`service`]: the domain logic ([`AuthService`]), written against the ports in `oes_shared`;
//!   it knows nothing of Lambda or HTTP.
//! - [`error`]: the domain error and its one mapping to an HTTP answer.
//! - [`limits`]: how often each action may be tried (rate limits).
//! - [`routes`]: the router and thin handlers: parse the request, call the service, map the result.
//! - `main.rs`: wires the real adapters once and starts the Lambda runtime.

pub mod error;
pub mod limits;
pub mod routes;
pub mod service;

pub use routes::handle;
pub use service::AuthService;
