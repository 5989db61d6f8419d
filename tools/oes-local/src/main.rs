//! `cargo run -p oes-local`: serves every oes route on 127.0.0.1:3000.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use oes_domain::security::{JwtSettings, OneTimeToken};
use oes_local::embedded::{self, Embedded};
use oes_local::gateway::Drained;
use oes_local::say;
use oes_local::seed::DEMO_ACCOUNTS;
use oes_local::services::{self, Services};
use oes_runtime::config::{jwt_settings, parse_public_base_url, process_env};
use tokio_util::sync::CancellationToken;

/// mimalloc (see `oes_runtime::alloc`).
#[global_allocator]
static ALLOCATOR: oes_runtime::alloc::Allocator = oes_runtime::alloc::Allocator;

/// Runs the oes API locally, through the real Lambda handlers.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Folder for emails in the embedded mode.
    #[arg(long, default_value = "outbox")]
    outbox: PathBuf,
    /// Base of links in emails (defaults to this server's URL). Checked as the worker checks
    /// it in AWS: a link under "localhost:3000" (no scheme) or with a query is mailed broken.
    #[arg(long, env = "OES_PUBLIC_BASE_URL", value_parser = parse_public_base_url)]
    public_base_url: Option<String>,
    /// Also seed N verified students, student-1@example.com … student-N@example.com, with the
    /// demo password (a class for `oes-load`). In real mode this also seeds the demo accounts,
    /// needs OES_DEMO_PASSWORD, and leaves addresses that have an account as they are.
    #[arg(long, default_value_t = 0)]
    seed_students: usize,
    /// Origins a browser app may call the API from, comma-separated, as the template's
    /// `CorsAllowOrigins`: an origin, `*` (any: the template's default), `https://*` or
    /// `http://*`. CORS is answered as API Gateway answers it (`oes_local::cors`).
    #[arg(long, env = "OES_CORS_ALLOW_ORIGINS", default_value = oes_local::cors::ANY_ORIGIN)]
    cors_allow_origins: String,
    /// Throttle each route as API Gateway does, `RATE,BURST` (requests a second, and at once):
    /// the template's `ApiRouteRateLimit` and `ApiRouteBurstLimit`, `200,1000` by default there.
    /// Unthrottled unless given.
    #[arg(long, env = "OES_ROUTE_THROTTLE")]
    route_throttle: Option<oes_local::throttle::RouteLimits>,
    /// Print the OpenAPI document (what `docs/openapi.json` holds) and exit.
    #[arg(long)]
    openapi: bool,
}

#[tokio::main]
async fn main() -> Result<(), oes_domain::ports::BoxError> {
    let args = Args::parse();
    if args.openapi {
        print!("{}", oes_local::openapi::json());
        return Ok(());
    }
    // Dropped when main returns, after the server has stopped: the last lines are written then.
    let _log = oes_runtime::telemetry::init_server();
    let stop = on_stop_signals()?;
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    let addr = listener.local_addr()?;
    let base_url = args
        .public_base_url
        .unwrap_or_else(|| format!("http://{addr}"));
    let env = process_env();
    let functions = match (env.optional("AWS_ENDPOINT_URL"), env.optional("REDIS_URL")) {
        (Some(endpoint), Some(redis_url)) => {
            let settings = Services {
                prefix: env
                    .optional("OES_PREFIX")
                    .unwrap_or_else(|| "oes-local".into()),
                redis_url: redis_url.clone(),
                public_base_url: base_url.clone(),
                sender_email: env
                    .optional("OES_SENDER_EMAIL")
                    .unwrap_or_else(|| "noreply@example.com".into()),
                seed: match (args.seed_students, env.optional("OES_DEMO_PASSWORD")) {
                    (0, _) => None,
                    (students, Some(password)) => Some((password, students)),
                    (_, None) => {
                        return Err("--seed-students in real mode needs OES_DEMO_PASSWORD, \
                                    the seeded accounts' password"
                            .into());
                    }
                },
            };
            let started = services::start(settings).await?;
            say!(
                "oes-local: real services — AWS emulator at {endpoint}, Redis at {}",
                without_password(&redis_url)
            );
            let provisioned = &started.provisioned;
            say!(
                "  table {}, queues {} and {}",
                provisioned.table,
                provisioned.priority_queue_url,
                provisioned.bulk_queue_url
            );
            say!("  JWT key: {}", started.jwt_key);
            say!(
                "  mail goes through SES v2 in the emulator ({endpoint}/moto-api/data.json shows it)"
            );
            started.functions
        }
        _ => {
            let (demo_password, generated) = match env.optional("OES_DEMO_PASSWORD") {
                Some(password) => (password, false),
                None => (OneTimeToken::generate().expose()[..16].to_owned(), true),
            };
            let jwt = match env.optional("OES_JWT_SECRET") {
                Some(_) => jwt_settings(&env)?,
                None => JwtSettings {
                    secret: embedded::random_secret(),
                    issuer: "oes".into(),
                    audience: "oes-api".into(),
                    ttl_seconds: 3600,
                },
            };
            let settings = Embedded {
                outbox: args.outbox.clone(),
                public_base_url: base_url.clone(),
                demo_password: demo_password.clone(),
                seed_students: args.seed_students,
            };
            let functions = embedded::start(settings, jwt).await?;
            say!("oes-local: embedded mode (in-memory data, in-process queue and worker)");
            say!(
                "  mail is written to {}/ as .eml files and logged with its link",
                args.outbox.display()
            );
            for (email, _, role) in DEMO_ACCOUNTS {
                let shown = if generated {
                    demo_password.as_str()
                } else {
                    "$OES_DEMO_PASSWORD"
                };
                say!("  demo account {email} ({role}), password {shown}");
            }
            functions
        }
    };
    say!(
        "oes-local: serving /auth/*, /exams/*, /attempts/*, /me/*, /admin/* and {} on http://{addr}",
        oes_local::openapi::PATH
    );
    say!("  the operator console: http://{addr}/admin/ (sign in as an admin)");
    say!("  health: http://{addr}/health; Ctrl-C or SIGTERM stops it gracefully");
    let drained = oes_local::gateway::serve_until(
        listener,
        functions.clone(),
        oes_local::gateway::Settings {
            cors: oes_local::cors::Cors::allowing(&args.cors_allow_origins),
            throttle: args
                .route_throttle
                .map(oes_local::throttle::RouteThrottle::new),
            ..oes_local::gateway::Settings::default()
        },
        stop.cancelled_owned(),
        DRAIN,
    )
    .await?;
    match drained {
        Drained::Finished => {
            say!("oes-local: stopping (requests in flight finished; finishing the batches in hand)")
        }
        Drained::TimedOut => say!(
            "oes-local: stopping (requests still running after {DRAIN:?} were cut off; \
             finishing the batches in hand)"
        ),
    }
    let background_stopped = functions.background.stop(BACKGROUND_STOP).await;
    if !background_stopped {
        say!("oes-local: a poller or the sweep was still busy after {BACKGROUND_STOP:?}");
    }
    say!("oes-local: stopped");
    // A stop that cut work short is not a clean one: the exit code tells whoever stopped it.
    if drained == Drained::TimedOut || !background_stopped {
        return Err("the stop cut work short (see above)".into());
    }
    Ok(())
}

/// How long requests in flight may take to finish after a stop signal (the functions' timeout).
const DRAIN: Duration = Duration::from_secs(10);

/// How long the batches in hand may take after that (a send batch ends within its lease).
const BACKGROUND_STOP: Duration = Duration::from_secs(60);

/// Ctrl-C (SIGINT) and SIGTERM (what a service manager or a load test's harness sends), caught
/// from [`StopSignals::install`] on: a signal that comes then, however soon, is never the
/// signal's default action (the end of the process).
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Installs the handlers, now rather than when first waited for.
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// The next stop signal: the exit code that conventionally reports it (128 + its number).
    async fn next(&mut self) -> i32 {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => 130,
                _ = self.terminate.recv() => 143,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            130
        }
    }
}

/// The stop signals, watched from now on: the first one cancels the returned token (the
/// graceful stop); a second ends the process at once, as whoever presses Ctrl-C again expects,
/// without waiting for the requests and batches in hand (up to [`DRAIN`] and
/// [`BACKGROUND_STOP`]).
fn on_stop_signals() -> std::io::Result<CancellationToken> {
    let mut signals = StopSignals::install()?;
    let stop = CancellationToken::new();
    let first = stop.clone();
    tokio::spawn(async move {
        signals.next().await;
        first.cancel();
        let code = signals.next().await;
        say!("oes-local: a second stop signal: exiting now, without waiting for what is in hand");
        std::process::exit(code);
    });
    Ok(stop)
}

/// `url` as it may be shown: its password, if it has one, replaced by `***` (a `REDIS_URL` may
/// carry the cache's).
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(parsed) => parsed.to_string(),
        Err(_) => "(not a URL)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::{StopSignals, without_password};
    use std::time::Duration;

    /// A signal that comes between the handlers' installation and the serving loop's first
    /// wait for it is caught, not lost, and not the process's end (before, the handlers were
    /// installed only at that first wait, and SIGTERM killed this test's process).
    #[cfg(unix)]
    #[tokio::test]
    async fn a_stop_signal_before_the_server_waits_for_it_still_stops_it() {
        use nix::sys::signal::{Signal, raise};
        for (signal, code) in [(Signal::SIGTERM, 143), (Signal::SIGINT, 130)] {
            let mut signals = StopSignals::install().expect("handlers installed");
            raise(signal).expect("raised");
            let caught = tokio::time::timeout(Duration::from_secs(5), signals.next())
                .await
                .unwrap_or_else(|_| panic!("{signal} was lost"));
            assert_eq!(caught, code, "{signal}");
        }
    }

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            without_password("redis://:hunter2@127.0.0.1:6379"),
            "redis://:***@127.0.0.1:6379"
        );
        assert_eq!(
            without_password("rediss://app:hunter2@cache.example:6379/0"),
            "rediss://app:***@cache.example:6379/0"
        );
        assert_eq!(
            without_password("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert!(!without_password("redis://:hunter2@[::1:6379").contains("hunter2"));
    }
}
