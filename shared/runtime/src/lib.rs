//! What runs the oes functions, above the domain and the adapters.
//!
//! - [`alloc`]: the allocator each binary declares (mimalloc).
//! - [`config`]: the typed configuration, loaded once at init from the environment.
//! - [`wiring`]: builds the set of adapters from configuration, once, at init.
//! - [`telemetry`]: logging set-up (JSON in Lambda).
//! - [`http`]: JSON bodies, the error shape `{"error": {"code", "message"}}`, bearer tokens.
//! - [`session`]: who is calling (bearer token → current profile), for every API.
//! - [`event_source`]: the Lambda event source mapping, for running the worker outside Lambda.
//! - [`rate_limit`]: fixed-window rate limits counted in the cache, with a local fallback.

pub mod alloc;
pub mod config;
pub mod event_source;
pub mod http;
pub mod rate_limit;
pub mod session;
pub mod telemetry;
pub mod wiring;
