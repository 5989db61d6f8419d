//! `oes-local`'s own tests, in one binary: the binaries it builds, run as a user runs them.
//!
//! - [`console`]: the operator console in headless Chromium, over WebDriver.
//! - [`embedded_journey`]: the sign-up journey over HTTP against the embedded mode.
//! - [`events`]: the `events/` fixtures and their generator, `oes-events`.
//! - [`real_mode`]: the real mode against the local services.

mod console;
mod embedded_journey;
mod events;
mod real_mode;
