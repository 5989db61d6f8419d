//! Logging set-up. In Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`) one JSON object per line, so
//! CloudWatch Logs Insights can query fields; elsewhere human-readable lines. Which lines are
//! written is decided here ([`log_filter`]), not by Lambda's log-level filter: Lambda reads a
//! JSON line without a `level` as INFO, and the EMF metric lines (`oes_domain::metrics`) have
//! none, so a Lambda filter at WARN would drop every metric, and every alarm on one would go
//! quiet. The template sets Lambda's filter to let all through and hands its `LogLevel` to the
//! code as `OES_LOG_LEVEL`.
//!
//! Every request runs in a `request` span ([`crate::http::request_span`]) whose fields —
//! `request_id`, `route`, and `user_id` once the caller is known — appear under `span` in each
//! JSON line logged while handling it, including the one `request` line with status and latency.
//!
//! The functions write each line from the thread that logs it ([`init`]); `oes-local`, which
//! serves many requests at once, hands them to a thread of its own ([`init_server`]).

use std::io::{BufWriter, Write};

use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
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

/// Installs the global subscriber, writing to stdout from the thread that logs: in Lambda a line
/// is out before the invocation ends (and the environment may be frozen). Safe to call more than
/// once (later calls do nothing).
pub fn init() {
    install(std::io::stdout);
}

/// Installs the global subscriber for a long-running server (`oes-local`): the lines go to stdout
/// from a thread of their own ([`server_writer`]), so a request never waits for the terminal or
/// the disk. Keep the guard until the server has stopped: dropping it writes what is left.
pub fn init_server() -> WorkerGuard {
    let (writer, guard) = server_writer(BufWriter::with_capacity(
        SERVER_WRITE_BUFFER,
        std::io::stdout(),
    ));
    install(writer);
    guard
}

/// How many bytes of lines the server's log thread gathers per write to stdout, at most.
const SERVER_WRITE_BUFFER: usize = 64 * 1024;

/// How many lines may wait for the server's log thread; past it, whoever logs waits.
const SERVER_QUEUED_LINES: usize = 16 * 1024;

/// A writer that hands each line to a thread which writes them to `out`, flushing whenever it has
/// written all it was given (so a burst of lines is one write with a buffered `out`). No line is
/// dropped: when [`SERVER_QUEUED_LINES`] wait, the caller waits.
pub fn server_writer<W: Write + Send + 'static>(out: W) -> (NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(SERVER_QUEUED_LINES)
        .thread_name("oes-log")
        .finish(out)
}

/// The variable that names the lowest level logged (`DEBUG`, `INFO`, `WARN`, `ERROR`; any case).
pub const LOG_LEVEL: &str = "OES_LOG_LEVEL";

/// Which events are logged: `rust_log`'s directives (`RUST_LOG`, e.g. `info,oes_adapters=debug`,
/// for a developer or an operator's one-off), else the level `level` names ([`LOG_LEVEL`]), else
/// `info`. A value that does not parse counts as unset. `AWS_LAMBDA_LOG_LEVEL` is not read: it is
/// Lambda's own filter, which the template keeps open (the module's documentation says why).
pub fn log_filter(rust_log: Option<&str>, level: Option<&str>) -> EnvFilter {
    rust_log
        .filter(|directives| !directives.trim().is_empty())
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .or_else(|| {
            // A level alone: as directives, a word such as `loud` would name a target.
            let level: LevelFilter = level?.trim().parse().ok()?;
            Some(EnvFilter::new(level.to_string()))
        })
        .unwrap_or_else(|| EnvFilter::new("info"))
}

fn install<W>(writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = log_filter(
        std::env::var(EnvFilter::DEFAULT_ENV).ok().as_deref(),
        std::env::var(LOG_LEVEL).ok().as_deref(),
    );
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let _already_set = if json {
        tracing::subscriber::set_global_default(json_subscriber(filter, writer))
            .map_err(|e| e.to_string())
    } else {
        // Colours only on a terminal, so logs piped to a file stay greppable.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(false)
            .with_ansi(ansi)
            .with_writer(writer)
            .try_init()
            .map_err(|e| e.to_string())
    };
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::{LevelFilter, log_filter, server_writer};

    #[test]
    fn the_level_comes_from_rust_log_then_the_templates_level_then_info() {
        let most_detailed = |rust_log, level| log_filter(rust_log, level).max_level_hint();
        assert_eq!(most_detailed(None, Some("WARN")), Some(LevelFilter::WARN));
        assert_eq!(most_detailed(None, Some("error")), Some(LevelFilter::ERROR));
        assert_eq!(most_detailed(None, Some("DEBUG")), Some(LevelFilter::DEBUG));
        assert_eq!(
            most_detailed(Some("debug"), Some("WARN")),
            Some(LevelFilter::DEBUG)
        );
        assert_eq!(most_detailed(None, None), Some(LevelFilter::INFO));
        assert_eq!(
            most_detailed(Some(" "), Some("loud")),
            Some(LevelFilter::INFO)
        );
    }

    /// What the log thread wrote; its first write waits until `open` (a slow terminal or disk).
    #[derive(Clone, Default)]
    struct Captured {
        written: Arc<Mutex<Vec<u8>>>,
        open: Arc<AtomicBool>,
    }

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            while !self.open.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(5));
            }
            self.written
                .lock()
                .expect("not poisoned")
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_server_writer_loses_no_line_and_keeps_their_order() {
        let out = Captured::default();
        let (mut writer, guard) = server_writer(out.clone());
        // The output stalls while more lines are logged than may wait for the log thread: the
        // loggers wait for it instead of dropping lines.
        let open = Arc::clone(&out.open);
        let stall = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            open.store(true, Ordering::Release);
        });
        let lines = super::SERVER_QUEUED_LINES * 3;
        for n in 0..lines {
            writer
                .write_all(format!("line {n}\n").as_bytes())
                .expect("handed to the log thread");
        }
        stall.join().expect("the stall ends");
        drop(guard);
        let written = out.written.lock().expect("not poisoned").clone();
        let text = String::from_utf8(written).expect("text");
        let expected: String = (0..lines).map(|n| format!("line {n}\n")).collect();
        assert_eq!(text.len(), expected.len(), "every line is written");
        assert!(text == expected, "in the order they were logged");
    }
}
