//! Logging set-up. In Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`) one JSON object per line, so
//! CloudWatch Logs Insights can query fields; elsewhere human-readable lines. The level comes
//! from `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, then `info`.
//!
//! Every request runs in a `request` span ([`crate::http::request_span`]) whose fields —
//! `request_id`, `route`, and `user_id` once the caller is known — appear under `span` in each
//! JSON line logged while handling it, including the one `request` line with status and latency.

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The JSON subscriber Lambda uses: flat event fields, the current span's fields under `span`.
pub fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_writer(writer)
        .finish()
}

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init() {
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .and_then(|level| EnvFilter::try_new(level.to_lowercase()).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let _already_set = if json {
        tracing::subscriber::set_global_default(json_subscriber(filter, std::io::stdout))
            .map_err(|e| e.to_string())
    } else {
        // Colours only on a terminal, so logs piped to a file stay greppable.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_ansi(ansi)
            .try_init()
            .map_err(|e| e.to_string())
    };
}
