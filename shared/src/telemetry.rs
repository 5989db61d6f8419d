//! Logging set-up. In Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`) one JSON object per line, so
//! CloudWatch Logs Insights can query fields; elsewhere human-readable lines. The level comes
//! from `AWS_LAMBDA_LOG_LEVEL`, then `RUST_LOG`, then `info`.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call more than once (later calls do nothing).
pub fn init() {
    let filter = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .and_then(|level| EnvFilter::try_new(level.to_lowercase()).ok())
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _already_set = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_target(false)
            .try_init()
    } else {
        // Colours only on a terminal, so logs piped to a file stay greppable.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        builder.with_target(false).with_ansi(ansi).try_init()
    };
}
