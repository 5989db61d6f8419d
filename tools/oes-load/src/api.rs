//! The HTTP client of one actor (a student, the instructor, the admin), and the recorder every
//! request's route, timing, answer and `x-cache` go to.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

/// Which part of the run a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The instructor publishes the exam; the staff sign in; the email counts before.
    Setup,
    /// The students arrive, sit and submit; the admin watches the queues.
    ExamDay,
    /// The instructor reads the results; the admin waits for the emails and lists their jobs.
    Results,
}

impl Phase {
    /// Its name in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Setup => "setup",
            Self::ExamDay => "exam day",
            Self::Results => "results",
        }
    }
}

/// How a request ended, as the report counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// An HTTP answer (any status but a `503 busy`).
    Status(u16),
    /// `503` with the error code `busy`: argon2's bounded queue is full; designed
    /// back-pressure, retried after `Retry-After`, not an error.
    Busy,
    /// No answer within the request timeout.
    Timeout,
    /// No answer: the connection failed (refused, reset, closed early).
    Transport,
}

impl Outcome {
    /// A 2xx answer.
    pub fn is_success(self) -> bool {
        matches!(self, Self::Status(s) if (200..300).contains(&s))
    }

    /// An HTTP answer came (a status, `503 busy` included): what latency is measured on. A
    /// request without one is counted, never timed (a refused connection fails in microseconds).
    pub fn answered(self) -> bool {
        matches!(self, Self::Status(_) | Self::Busy)
    }

    /// A 5xx other than `503 busy` (a hard failure of the run).
    pub fn is_server_error(self) -> bool {
        matches!(self, Self::Status(s) if s >= 500)
    }

    /// Its key in a route's error counts.
    pub fn label(self) -> String {
        match self {
            Self::Status(s) => s.to_string(),
            Self::Busy => "503 busy".into(),
            Self::Timeout => "timeout".into(),
            Self::Transport => "transport".into(),
        }
    }
}

/// Where a read was served from: the API's `x-cache` header (`hit`, `miss`, `bypass`; absent on
/// routes that do not read through the cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// From the cache.
    Hit,
    /// From the store, then cached.
    Miss,
    /// From the store because the cache failed.
    Bypass,
}

impl CacheStatus {
    /// The header's value, if it is one the API sets.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "hit" => Some(Self::Hit),
            "miss" => Some(Self::Miss),
            "bypass" => Some(Self::Bypass),
            _ => None,
        }
    }
}

/// One request.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The part of the run.
    pub phase: Phase,
    /// The route's template (`GET /attempts/{id}`).
    pub route: &'static str,
    /// When it was sent, since the run started.
    pub at: Duration,
    /// From sending it to the last byte of the answer.
    pub latency: Duration,
    /// How it ended.
    pub outcome: Outcome,
    /// The `x-cache` header.
    pub cache: Option<CacheStatus>,
    /// The API's error code of an error answer (`{"error": {"code": …}}`): what kind of failure
    /// it was (`busy`, `rate_limited`; a store call that failed or timed out, or a handler past
    /// its deadline, is `service_unavailable` — whose fault, the server's log tells).
    pub code: Option<Box<str>>,
}

impl Sample {
    /// Its key in a route's error counts: the outcome, and the error code when there is one
    /// (`503 service_unavailable`, `429 rate_limited`).
    pub fn label(&self) -> String {
        match &self.code {
            Some(code) if self.outcome != Outcome::Busy => {
                format!("{} {code}", self.outcome.label())
            }
            _ => self.outcome.label(),
        }
    }
}

/// Collects every request's [`Sample`]. Every sample is kept (a run is bounded: N students ×
/// a dozen requests), so percentiles are exact and any window can be cut afterwards.
#[derive(Debug, Clone)]
pub struct Recorder {
    start: Instant,
    samples: Arc<Mutex<Vec<Sample>>>,
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            samples: Arc::default(),
        }
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// `instant` as time since the run started.
    pub fn since_start(&self, instant: Instant) -> Duration {
        instant.saturating_duration_since(self.start)
    }

    fn record(&self, sample: Sample) {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(sample);
    }

    /// Every sample so far.
    pub fn samples(&self) -> Vec<Sample> {
        self.samples
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: u16,
    /// Its body as JSON (`null` if empty or not JSON).
    pub body: Value,
    /// Its `Retry-After` (seconds), if any.
    pub retry_after: Option<Duration>,
}

impl Answer {
    /// A 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The API's error code (`{"error": {"code": …}}`).
    pub fn error_code(&self) -> Option<&str> {
        self.body.pointer("/error/code").and_then(Value::as_str)
    }

    /// `503 busy`.
    pub fn is_busy(&self) -> bool {
        self.status == 503 && self.error_code() == Some("busy")
    }

    /// A string field of the body.
    pub fn str(&self, pointer: &str) -> Option<&str> {
        self.body.pointer(pointer).and_then(Value::as_str)
    }

    /// "answered 409 attempts_exhausted", for a failure's description.
    pub fn describe(&self) -> String {
        match self.error_code() {
            Some(code) => format!("answered {} {code}", self.status),
            None => format!("answered {}", self.status),
        }
    }
}

/// A request that got no answer.
#[derive(Debug)]
pub enum CallError {
    /// None within the timeout.
    Timeout,
    /// The connection failed.
    Transport(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout => f.write_str("timed out"),
            Self::Transport(e) => write!(f, "failed: {e}"),
        }
    }
}

/// What every HTTP client of a run is built from: each request bounded by `timeout`, sent to
/// the address it names — never through a proxy from the environment (`HTTP_PROXY`,
/// `ALL_PROXY`: the figures would be the proxy's, and the demo password and the tokens would
/// go to it), never on to a redirect's target.
pub fn http_client(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
}

/// One actor's client: its own connections (from its own source address when given), its
/// bearer token once signed in.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    recorder: Recorder,
}

impl Client {
    /// A client of `base` (no trailing slash needed) whose connections leave from `local`, if
    /// given; every request times out after `timeout`.
    pub fn new(
        base: &str,
        local: Option<IpAddr>,
        timeout: Duration,
        recorder: Recorder,
    ) -> Result<Self, reqwest::Error> {
        let mut builder = http_client(timeout)
            .local_address(local)
            .pool_max_idle_per_host(2);
        if !base.starts_with("https://") {
            // Plain HTTP: no certificate store to set up for each of thousands of clients.
            builder = builder.tls_certs_only([]);
        }
        let http = builder.build()?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: None,
            recorder,
        })
    }

    /// Sends the bearer token from now on.
    pub fn set_token(&mut self, token: String) {
        self.token = Some(token);
    }

    /// Sends `method path` (with a JSON `body`), records it as `route` in `phase`, and returns
    /// the answer, whatever its status.
    pub async fn call(
        &self,
        phase: Phase,
        route: &'static str,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, CallError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let sent = Instant::now();
        let result = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let header = |name: &str| {
                response
                    .headers()
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            };
            let cache = header("x-cache").as_deref().and_then(CacheStatus::parse);
            let retry_after = header("retry-after")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let bytes = response.bytes().await?;
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Ok::<_, reqwest::Error>((
                Answer {
                    status,
                    body,
                    retry_after,
                },
                cache,
            ))
        }
        .await;
        let latency = sent.elapsed();
        let code = match &result {
            Ok((answer, _)) if answer.status >= 400 => answer.error_code().map(Box::from),
            _ => None,
        };
        let (outcome, cache, result) = match result {
            Ok((answer, cache)) => {
                let outcome = if answer.is_busy() {
                    Outcome::Busy
                } else {
                    Outcome::Status(answer.status)
                };
                (outcome, cache, Ok(answer))
            }
            Err(e) if e.is_timeout() => (Outcome::Timeout, None, Err(CallError::Timeout)),
            Err(e) => (
                Outcome::Transport,
                None,
                Err(CallError::Transport(error_chain(&e))),
            ),
        };
        self.recorder.record(Sample {
            phase,
            route,
            at: self.recorder.since_start(sent),
            latency,
            outcome,
            cache,
            code,
        });
        result
    }
}

/// Percent-encodes a query value (cursors are base64url, but nothing is assumed).
pub fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// An error and its sources, on one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run in a child process of its own, where `HTTP_PROXY` and `ALL_PROXY` name a listener
    /// of its parent's: a call to the parent's server must reach the server.
    #[tokio::test]
    async fn a_proxy_in_the_environment_is_never_used() {
        const CHILD: &str = "OES_LOAD_PROXY_TEST_SERVER";
        if let Some(server) = std::env::var_os(CHILD) {
            let base = format!("http://{}", server.to_string_lossy());
            let client = Client::new(&base, None, Duration::from_secs(5), Recorder::new())
                .expect("a client");
            let answer = client
                .call(Phase::Setup, "GET /", Method::GET, "/", None)
                .await
                .expect("the server answers");
            assert_eq!(answer.status, 200);
            return;
        }
        use std::io::{Read, Write};
        let proxy = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        proxy.set_nonblocking(true).expect("nonblocking");
        let server = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let address = server.local_addr().expect("address");
        std::thread::spawn(move || {
            for stream in server.incoming() {
                let mut stream = stream.expect("accepted");
                let mut request = [0; 4096];
                let _ = stream.read(&mut request);
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
                );
            }
        });
        let proxy_url = format!("http://{}", proxy.local_addr().expect("address"));
        let child = std::process::Command::new(std::env::current_exe().expect("this test"))
            .args([
                "--exact",
                "api::tests::a_proxy_in_the_environment_is_never_used",
            ])
            .env(CHILD, address.to_string())
            .env("HTTP_PROXY", &proxy_url)
            .env("http_proxy", &proxy_url)
            .env("ALL_PROXY", &proxy_url)
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .expect("the child runs");
        assert!(
            proxy.accept().is_err(),
            "a request went to the proxy in the environment"
        );
        assert!(
            child.status.success(),
            "{}",
            String::from_utf8_lossy(&child.stdout)
        );
    }

    #[test]
    fn busy_is_back_pressure_and_other_5xx_are_failures() {
        let busy = Answer {
            status: 503,
            body: serde_json::json!({"error": {"code": "busy", "message": "…"}}),
            retry_after: Some(Duration::from_secs(1)),
        };
        assert!(busy.is_busy());
        let queue_down = Answer {
            status: 503,
            body: serde_json::json!({"error": {"code": "email_queue_unavailable"}}),
            retry_after: None,
        };
        assert!(!queue_down.is_busy());
        assert!(Outcome::Status(503).is_server_error());
        assert!(Outcome::Status(500).is_server_error());
        assert!(!Outcome::Busy.is_server_error());
        assert!(!Outcome::Status(429).is_server_error());
        assert!(Outcome::Status(201).is_success());
        assert_eq!(CacheStatus::parse("hit"), Some(CacheStatus::Hit));
        assert_eq!(CacheStatus::parse("HIT"), None);
        assert_eq!(query_escape("a+b/c==-_"), "a%2Bb%2Fc%3D%3D-_");
    }
}
