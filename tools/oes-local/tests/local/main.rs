//! `oes-local`'s own tests, in one binary: the binaries it builds, run as a user runs them.
//!
//! - [`console`]: the operator console in headless Chromium, over WebDriver.
//! - [`embedded_journey`]: the sign-up journey over HTTP against the embedded mode.
//! - [`events`]: the `events/` fixtures and their generator, `oes-events`.

mod console;
mod embedded_journey;
mod events;
