//! `oes-local`: every oes HTTP route on loopback, served by the real Lambda handlers.
//!
//! - [`gateway`]: turns each HTTP request into the API Gateway v2 (HTTP API, payload 2.0) event
//!   the Lambda would receive, decodes it with `lambda_http` exactly as the runtime does, and
//!   calls the function's handler.
//! - [`cors`]: CORS as the HTTP API's configuration answers it (preflights by the gateway).
//! - [`routes`]: the HTTP API's routes: a request that matches none is the gateway's 404.
//! - [`throttle`]: the HTTP API's route throttling, with `--route-throttle RATE,BURST`.
//! - [`embedded`]: the default mode: in-memory adapters, the in-memory twin of the queues drained by
//!   the real worker code, mail written to `outbox/`, demo accounts.
//! - [`services`]: with `AWS_ENDPOINT_URL` and `REDIS_URL` set: the real adapters against the
//!   local emulator and Redis, and SQS pollers that drive the worker as the Lambda event source
//!   mapping does.
//! - [`openapi`]: the OpenAPI document of every route, served at `GET /openapi.json`.
//! - [`health`]: `GET /health`: the store, the queues and the cache answer; the lanes' depth.
//! - [`pollers`]: one poller per lane driving the worker, in either mode.
//! - [`background`]: the pollers and the sweep together, and stopping them gracefully.
//! - [`seed`]: `--seed-students N`: a class of verified students for a load test.
//! - [`schedule`]: the attempt sweep every few seconds (EventBridge's schedule in AWS), in either
//!   mode.
//! - [`event`]: the payload-2.0 event both the gateway and the fixtures build.
//! - [`fixtures`]: the `events/` fixtures, generated from one table (the `oes-events` binary).

/// `println!` for what `oes-local` tells whoever started it: a stdout whose reader went away
/// (`oes-local | head`, a harness that stopped reading) is no reason to stop serving, as
/// `println!`'s panic on the broken pipe would make it — and at a stop signal, to skip finishing
/// the batches in hand.
#[macro_export]
macro_rules! say {
    ($($line:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($line)*);
    }};
}

pub mod background;
pub mod cors;
pub mod embedded;
pub mod event;
pub mod fixtures;
pub mod gateway;
pub mod health;
pub mod openapi;
pub mod pollers;
pub mod routes;
pub mod schedule;
pub mod seed;
pub mod services;
pub mod throttle;

pub use gateway::{Functions, serve};
