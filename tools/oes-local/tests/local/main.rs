//! `oes-local`'s own tests, in one binary: the binaries it builds, run as a user runs them.
//!
//! - [`browser`]: headless Chromium over WebDriver, for the pages' tests.
//! - [`console`]: the operator console in the browser.
//! - [`confirm_page`]: the emailed link's confirmation page in the browser.
//! - [`drain`]: the end of a graceful stop's drain.
//! - [`embedded_journey`]: the sign-up journey over HTTP against the embedded mode.
//! - [`events`]: the `events/` fixtures and their generator, `oes-events`.
//! - [`real_mode`]: the real mode against the local services.
//! - [`stalled_body`]: a request whose body stops arriving.

mod browser;
mod confirm_page;
mod console;
mod drain;
mod embedded_journey;
mod events;
mod real_mode;
mod stalled_body;
