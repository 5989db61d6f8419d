//! The sign-up journey over HTTP against the `oes-local` binary in its embedded mode: nothing
//! but the binary, mail read from the outbox folder.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The running binary; killed when dropped.
struct LocalServer {
    child: Child,
    base: String,
    outbox: PathBuf,
    /// What it printed on stdout after its address, as it prints it.
    printed: Arc<Mutex<Vec<String>>>,
}

impl LocalServer {
    /// Sends it `signal`.
    fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("a pid"));
        nix::sys::signal::kill(pid, signal).expect("signalled");
    }

    /// Its exit status, once it has exited (within 20 s, or a panic).
    async fn exited(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(exit) = self.child.try_wait().expect("waitable") {
                return exit;
            }
            assert!(
                Instant::now() < deadline,
                "oes-local did not stop within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.outbox);
    }
}

fn start() -> LocalServer {
    start_as(Command::new(env!("CARGO_BIN_EXE_oes-local")))
}

/// `oes-local` run by `command` (the binary itself, or a shell that limits it first).
fn start_as(command: Command) -> LocalServer {
    launch(command, true)
}

/// `oes-local` run by `command`, its stdout read on after its address if `keep_reading`,
/// otherwise closed there.
fn launch(mut command: Command, keep_reading: bool) -> LocalServer {
    let outbox = std::env::temp_dir().join(format!("oes-outbox-{}", uuid::Uuid::new_v4()));
    command
        .args(["--addr", "127.0.0.1:0", "--outbox"])
        .arg(&outbox)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("REDIS_URL")
        .env_remove("OES_JWT_SECRET")
        .env_remove("OES_PUBLIC_BASE_URL")
        .env("OES_DEMO_PASSWORD", "demo-password-123");
    if !command.get_envs().any(|(name, _)| name == "RUST_LOG") {
        command.env("RUST_LOG", "warn");
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("oes-local starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = lines
        .by_ref()
        .map(|line| line.expect("stdout line"))
        .find_map(|line| Some(line[line.find("on http://")? + 3..].trim().to_owned()))
        .expect("oes-local printed where it serves");
    // Keep reading, to see what it prints after its address.
    let printed = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&printed);
    if keep_reading {
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().expect("not poisoned").push(line);
            }
        });
    }
    LocalServer {
        child,
        base,
        outbox,
        printed,
    }
}

/// Waits (bounded) for the in-process worker to write an email to `to`.
fn wait_for_mail(outbox: &Path, to: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(entries) = std::fs::read_dir(outbox) {
            for entry in entries.filter_map(Result::ok) {
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                if text.contains(&format!("To: {to}\r\n")) {
                    return text;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no email to {to} in {}",
            outbox.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
    bearer: Option<&str>,
) -> (u16, Value) {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("oes-local answers");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

#[tokio::test]
async fn sign_up_verify_by_link_sign_in_and_read_the_profile() {
    let server = start();
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    use reqwest::Method;

    let register = json!({"email": "ada@example.com", "password": "correct horse", "name": "Ada"});
    let (status, accepted) = send(
        &client,
        Method::POST,
        url("/auth/register"),
        Some(register),
        None,
    )
    .await;
    assert_eq!(status, 202, "{accepted}");

    let mail = wait_for_mail(&server.outbox, "ada@example.com");
    assert!(mail.contains("Subject: Confirm your email address"));
    let link = mail
        .split_whitespace()
        .find(|w| w.starts_with(&format!("{}/auth/verify-email?token=", server.base)))
        .expect("a verification link that points at this server")
        .to_owned();
    // The link opens the confirmation page; its button sends the token.
    let page = client.get(&link).send().await.expect("the link's page");
    assert_eq!(page.status().as_u16(), 200);
    let page = page.text().await.expect("its text");
    assert!(page.contains("Confirm my email address"), "{page}");
    let token = link
        .split_once("token=")
        .map(|(_, token)| token.to_owned())
        .expect("a token in the link");
    let (status, verified) = send(
        &client,
        Method::POST,
        url("/auth/verify-email"),
        Some(json!({ "token": token })),
        None,
    )
    .await;
    assert_eq!(
        (status, verified["status"].as_str()),
        (200, Some("verified"))
    );

    let login = json!({"email": "ada@example.com", "password": "correct horse"});
    let (status, session) =
        send(&client, Method::POST, url("/auth/login"), Some(login), None).await;
    assert_eq!(status, 200, "{session}");
    let bearer = session["access_token"].as_str().expect("token").to_owned();
    for _ in 0..2 {
        let (status, me) = send(&client, Method::GET, url("/auth/me"), None, Some(&bearer)).await;
        assert_eq!(
            (status, me["email"].as_str()),
            (200, Some("ada@example.com"))
        );
    }

    let (status, missing) = send(
        &client,
        Method::GET,
        url("/exams/nothing"),
        None,
        Some(&bearer),
    )
    .await;
    assert_eq!(
        (status, missing["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, anonymous) = send(&client, Method::GET, url("/exams/nothing"), None, None).await;
    assert_eq!(
        (status, anonymous["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "without a token every exam path answers 401"
    );
}

#[tokio::test]
async fn demo_accounts_exist_with_their_roles() {
    let server = start();
    let client = reqwest::Client::new();
    for (email, role) in [
        ("admin@example.com", "admin"),
        ("instructor@example.com", "instructor"),
    ] {
        let login = json!({"email": email, "password": "demo-password-123"});
        let (status, session) = send(
            &client,
            reqwest::Method::POST,
            format!("{}/auth/login", server.base),
            Some(login),
            None,
        )
        .await;
        assert_eq!(status, 200, "{email}: {session}");
        let bearer = session["access_token"].as_str().expect("token");
        let (_, me) = send(
            &client,
            reqwest::Method::GET,
            format!("{}/auth/me", server.base),
            None,
            Some(bearer),
        )
        .await;
        assert_eq!(me["role"], role);
    }
}

/// Pausing a lane through the admin API stops its poller as a disabled event source mapping
/// would: the email waits on the lane (nothing sent, no attempt used), and resuming sends it.
#[tokio::test]
async fn a_paused_lane_holds_its_email_until_it_is_resumed() {
    let server = start();
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    use reqwest::Method;
    let login = json!({"email": "admin@example.com", "password": "demo-password-123"});
    let (_, session) = send(&client, Method::POST, url("/auth/login"), Some(login), None).await;
    let admin = session["access_token"].as_str().expect("token").to_owned();
    let (status, paused) = send(
        &client,
        Method::POST,
        url("/admin/lanes/priority/pause"),
        None,
        Some(&admin),
    )
    .await;
    assert_eq!((status, paused["paused"].as_bool()), (200, Some(true)));
    // A receive already waiting when the pause came ends within its long poll (1 s), as a batch
    // in hand ends in AWS; nothing is received after it.
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let register = json!({"email": "grace@example.com", "password": "correct horse", "name": "G"});
    let (status, _) = send(
        &client,
        Method::POST,
        url("/auth/register"),
        Some(register),
        None,
    )
    .await;
    assert_eq!(status, 202);
    // Several poll cycles of the paused lane.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_, queues) = send(
        &client,
        Method::GET,
        url("/admin/queues"),
        None,
        Some(&admin),
    )
    .await;
    let priority = &queues["queues"][0];
    assert_eq!(
        (
            priority["paused"].as_bool(),
            priority["visible"].as_i64(),
            priority["in_flight"].as_i64()
        ),
        (Some(true), Some(1), Some(0)),
        "the email waits on its lane, not received: {queues}"
    );
    let (_, jobs) = send(
        &client,
        Method::GET,
        url("/admin/email-jobs?status=queued"),
        None,
        Some(&admin),
    )
    .await;
    assert_eq!(
        jobs["jobs"][0]["attempts"].as_u64(),
        Some(0),
        "no attempt used: {jobs}"
    );
    let outbox_is_empty =
        std::fs::read_dir(&server.outbox).map_or(true, |mut d| d.next().is_none());
    assert!(outbox_is_empty, "nothing was sent");

    let (status, _) = send(
        &client,
        Method::POST,
        url("/admin/lanes/priority/resume"),
        None,
        Some(&admin),
    )
    .await;
    assert_eq!(status, 200);
    let mail = wait_for_mail(&server.outbox, "grace@example.com");
    assert!(mail.contains("Subject: Confirm your email address"));
}

/// Issue 14: `GET /health` answers without a token: the store, the queues and the cache answer,
/// each queue's depth, and which lanes are paused.
#[tokio::test]
async fn health_says_what_answers_and_shows_the_lanes() {
    let server = start();
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    let health = |client: reqwest::Client, url: String| async move {
        let (status, body) = send(&client, reqwest::Method::GET, url, None, None).await;
        assert_eq!(status, 200, "{body}");
        body
    };
    let body = health(client.clone(), url("/health")).await;
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(
        body["checks"],
        json!({"store": "ok", "queues": "ok", "cache": "ok", "background": "ok"}),
        "{body}"
    );
    let queues = body["queues"].as_array().expect("queues");
    assert_eq!(
        queues.len(),
        3,
        "two lanes and the dead-letter queue: {body}"
    );
    assert_eq!(
        (&queues[0]["paused"], &queues[1]["paused"]),
        (&json!(false), &json!(false))
    );
    assert!(
        queues[2].get("paused").is_none(),
        "the DLQ has no switch: {body}"
    );

    let login = json!({"email": "admin@example.com", "password": "demo-password-123"});
    let (_, session) = send(
        &client,
        reqwest::Method::POST,
        url("/auth/login"),
        Some(login),
        None,
    )
    .await;
    let bearer = session["access_token"].as_str().expect("token");
    let (status, _) = send(
        &client,
        reqwest::Method::POST,
        url("/admin/lanes/bulk/pause"),
        None,
        Some(bearer),
    )
    .await;
    assert_eq!(status, 200);
    let body = health(client.clone(), url("/health")).await;
    assert_eq!(
        (&body["queues"][0]["paused"], &body["queues"][1]["paused"]),
        (&json!(false), &json!(true)),
        "{body}"
    );
}

/// Issue 14: SIGTERM stops `oes-local` gracefully: the requests it is handling are answered (a
/// sign-in burst queued behind argon2 is still running when the signal comes), then it exits 0.
/// Before, SIGTERM ended the process at once and every request in flight lost its connection.
#[tokio::test]
async fn a_stop_signal_lets_the_requests_in_flight_finish_then_exits_cleanly() {
    use nix::sys::signal::Signal;
    let mut server = start();
    let client = reqwest::Client::new();
    let url = format!("{}/auth/login", server.base);
    let burst: Vec<_> = (0..40)
        .map(|n| {
            // Accounts of their own, so no sign-in limit answers before argon2 runs.
            let request = client.post(&url).json(
                &json!({"email": format!("student{n}@example.com"), "password": "a password"}),
            );
            tokio::spawn(async move {
                let answer = request.send().await.map(|r| r.status().as_u16());
                (answer, Instant::now())
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    server.signal(Signal::SIGTERM);
    let signalled = Instant::now();
    let mut after_the_signal = 0;
    for task in burst {
        let (answer, at) = task.await.expect("joined");
        let status = answer.unwrap_or_else(|e| panic!("a request in flight lost its answer: {e}"));
        assert!([401, 503].contains(&status), "{status}");
        after_the_signal += usize::from(at > signalled);
    }
    assert!(
        after_the_signal > 0,
        "the burst ended before the signal: the test proves nothing"
    );
    let exit = server.exited().await;
    assert!(exit.success(), "{exit:?}");
    std::thread::sleep(Duration::from_millis(100));
    let printed = server.printed.lock().expect("not poisoned").clone();
    assert!(
        !printed.iter().any(|line| line.contains("still busy")),
        "the pollers and the sweep stopped in time: {printed:?}"
    );
    assert_eq!(
        printed.last().map(String::as_str),
        Some("oes-local: stopped"),
        "{printed:?}"
    );
}

/// A stop signal sent as soon as `oes-local` has said where it serves is a graceful stop (exit
/// 0, "stopped"), never the signal's default action. Before, the handlers were installed only
/// when the serving loop first polled for the signal, after the rest of the banner: a SIGTERM in
/// between (a harness stopping a server it just started, or one that has just answered its
/// first request) killed the process outright.
#[tokio::test]
async fn a_stop_signal_right_after_start_is_a_graceful_stop() {
    use nix::sys::signal::Signal;
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        let mut server = start();
        server.signal(signal);
        let exit = server.exited().await;
        assert!(exit.success(), "{signal} ended oes-local: {exit:?}");
    }
}

/// A request to `server` whose body never comes (running until a stop's drain cuts it), once
/// the server has taken it.
async fn stalled_request(server: &LocalServer) -> tokio::net::TcpStream {
    let address = server
        .base
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    let stalled = crate::stalled_body::stalled_sign_in(address).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stalled
}

/// A stop that had to cut a request off (still running when the drain's 10 s ended) is not a
/// clean one, and the exit code says so, for whoever stopped it (a service manager, a harness).
/// Before, `oes-local` exited 0 whatever its stop cut short.
#[tokio::test]
async fn a_stop_that_cut_a_request_off_exits_non_zero() {
    use nix::sys::signal::Signal;
    let mut server = start();
    let _stalled = stalled_request(&server).await;
    server.signal(Signal::SIGTERM);
    let exit = server.exited().await;
    std::thread::sleep(Duration::from_millis(100));
    let printed = server.printed.lock().expect("not poisoned").clone();
    assert!(
        printed.iter().any(|line| line.contains("were cut off")),
        "{printed:#?}"
    );
    assert_eq!(exit.code(), Some(1), "{exit:?}: {printed:#?}");
}

/// `count` sign-ins sent to `server` by clients that leave at once: argon2 keeps it busy with
/// them for a while (about 15 ms of a core each here).
fn abandoned_sign_ins(server: &LocalServer, count: usize) {
    use std::io::Write;
    let address = server.base.trim_start_matches("http://");
    for n in 0..count {
        // Accounts of their own, so no sign-in limit answers before argon2 runs.
        let body = format!(r#"{{"email":"left{n}@example.com","password":"a password"}}"#);
        let raw = format!(
            "POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut stream = std::net::TcpStream::connect(address).expect("connects");
        stream.write_all(raw.as_bytes()).expect("written");
    }
}

/// A second stop signal ends `oes-local` at once, without waiting for what the first one lets
/// finish (up to 10 s of requests, then 60 s of batches), and with the code that reports it
/// (130 for SIGINT). Before, every signal after the first was caught and ignored: pressing
/// Ctrl-C again did nothing.
#[tokio::test]
async fn a_second_stop_signal_ends_it_at_once() {
    use nix::sys::signal::Signal;
    let mut server = start();
    // A request whose body never comes holds the first stop's drain for its whole 10 s.
    let _stalled = stalled_request(&server).await;
    server.signal(Signal::SIGTERM);
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.signal(Signal::SIGINT);
    let exit = server.exited().await;
    std::thread::sleep(Duration::from_millis(100));
    let printed = server.printed.lock().expect("not poisoned").clone();
    assert_eq!(exit.code(), Some(130), "{exit:?}: {printed:#?}");
    assert!(
        printed
            .iter()
            .any(|line| line.contains("a second stop signal")),
        "{printed:#?}"
    );
}

/// A stop signal waits for the requests whose clients have gone: each runs to its end, as an
/// invocation does in AWS, before the process exits. Before, the graceful stop waited for the
/// open connections alone, and a request whose client had left was cut off wherever it was when
/// the process ended (no answer, no log line; a sign-up half made).
#[tokio::test]
async fn a_stop_signal_waits_for_the_requests_whose_clients_went_away() {
    use nix::sys::signal::Signal;
    const BURST: usize = 100;
    let mut command = Command::new(env!("CARGO_BIN_EXE_oes-local"));
    command.env("RUST_LOG", "info");
    let mut server = start_as(command);
    abandoned_sign_ins(&server, BURST);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logins = |printed: &[String]| {
        printed
            .iter()
            .filter(|line| line.contains(r#": request method=POST path="/auth/login""#))
            .count()
    };
    let before = logins(&server.printed.lock().expect("not poisoned"));
    server.signal(Signal::SIGTERM);
    let exit = server.exited().await;
    assert!(exit.success(), "{exit:?}");
    std::thread::sleep(Duration::from_millis(100));
    let printed = server.printed.lock().expect("not poisoned").clone();
    assert!(
        before < BURST,
        "the burst ended before the signal: the test proves nothing"
    );
    assert_eq!(
        logins(&printed),
        BURST,
        "each sign-in ran to its end before the exit: {printed:#?}"
    );
}

/// Whoever started `oes-local` stops reading its stdout (`oes-local | head`, a harness gone):
/// it goes on serving, and a stop signal still finishes the batches in hand and exits 0.
/// Before, the next line it printed panicked on the broken pipe (`println!`), so the stop
/// signal's "stopping" line ended the process (exit 101) before the pollers and the sweep were
/// stopped.
#[tokio::test]
async fn a_closed_stdout_neither_ends_the_server_nor_its_graceful_stop() {
    use nix::sys::signal::Signal;
    let mut server = launch(Command::new(env!("CARGO_BIN_EXE_oes-local")), false);
    let health = exchange(
        &server.base,
        "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health:?}");
    server.signal(Signal::SIGTERM);
    let exit = server.exited().await;
    assert!(exit.success(), "{exit:?}");
}

/// A `--public-base-url` (or `OES_PUBLIC_BASE_URL`) the worker would refuse in AWS is refused
/// at start, naming the setting: before, oes-local served with it and mailed every
/// verification and reset link broken (`localhost:3000/verify-email?…`, no scheme).
#[test]
fn a_public_base_url_that_would_mail_broken_links_is_refused_at_start() {
    for bad in [
        "localhost:3000",
        "https://app.example.com/?x=1",
        "ftp://app.example.com",
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_oes-local"))
            .args(["--addr", "127.0.0.1:0", "--public-base-url", bad])
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("REDIS_URL")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("oes-local starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        let exit = loop {
            if let Some(exit) = child.try_wait().expect("waitable") {
                break exit;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("oes-local served with the public base URL {bad:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut said = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut said)
            .expect("read");
        assert!(!exit.success(), "{bad:?}: {exit:?}");
        assert!(said.contains("OES_PUBLIC_BASE_URL"), "{bad:?}: {said}");
    }
}

/// One request written as it is on a connection of its own (`Connection: close` in `raw`), and
/// what came back, whole; empty if the connection closed without an answer.
fn exchange(base: &str, raw: &str) -> String {
    use std::io::{Read, Write};
    let mut stream =
        std::net::TcpStream::connect(base.trim_start_matches("http://")).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a timeout");
    stream.write_all(raw.as_bytes()).expect("written");
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Requests lambda_http cannot turn into a URI (it builds `scheme://host/path` from the scheme
/// header, the host and the target, and unwraps the parse): API Gateway never passes such a
/// request on, and oes-local answers them 4xx with the error shape — before, the unwrap panicked
/// and the client got no answer at all (with `panic = "abort"`, the process ended). A target
/// that is no route (`*`) is the gateway's 404.
#[tokio::test]
async fn a_request_with_a_host_or_target_that_is_no_url_is_answered_4xx() {
    let server = start();
    let error_shape = "{\"error\":{";
    for (raw, shape) in [
        (
            "GET /auth/me HTTP/1.1\r\nHost: localhost\r\nX-Forwarded-Proto: 1\r\nConnection: close\r\n\r\n",
            error_shape,
        ),
        (
            "GET /auth/me HTTP/1.1\r\nHost: localhost:99999\r\nConnection: close\r\n\r\n",
            error_shape,
        ),
        (
            "GET /auth/me HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
            error_shape,
        ),
        (
            "GET /auth/me HTTP/1.1\r\nHost: {\r\nConnection: close\r\n\r\n",
            error_shape,
        ),
        (
            "GET /auth/me HTTP/1.1\r\nHost: a\"b\r\nConnection: close\r\n\r\n",
            error_shape,
        ),
        (
            "OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            "{\"message\":\"Not Found\"}",
        ),
    ] {
        let answer = exchange(&server.base, raw);
        assert!(
            answer.starts_with("HTTP/1.1 4") && answer.contains(shape),
            "{raw:?} was answered {answer:?}"
        );
    }
    let health = exchange(
        &server.base,
        "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health:?}");
}

/// A client that sends a whole sign-up and goes away without waiting: in AWS the invocation
/// runs to its end whatever the client does, and so it does here — the account is created and
/// its verification email sent. Before, the gateway dropped the handler with the connection,
/// at whatever step it had reached.
#[tokio::test]
async fn a_request_runs_to_its_end_when_its_client_goes_away() {
    use std::io::Write;
    let server = start();
    let body = r#"{"email":"gone@example.com","password":"correct horse","name":"Gone"}"#;
    let raw = format!(
        "POST /auth/register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream =
        std::net::TcpStream::connect(server.base.trim_start_matches("http://")).expect("connects");
    stream.write_all(raw.as_bytes()).expect("written");
    drop(stream);
    wait_for_mail(&server.outbox, "gone@example.com");
}

/// Connections beyond the process's open-file limit: an `accept` that fails is not the end of
/// the server (before, its error ended `oes-local`), and it answers once they are gone.
#[tokio::test]
async fn running_out_of_file_descriptors_for_a_while_does_not_stop_the_server() {
    let mut limited = Command::new("sh");
    limited.args([
        "-c",
        "ulimit -n 64 && exec \"$0\" \"$@\"",
        env!("CARGO_BIN_EXE_oes-local"),
    ]);
    let server = start_as(limited);
    let address = server.base.trim_start_matches("http://").to_owned();
    let idle: Vec<std::net::TcpStream> = (0..80)
        .filter_map(|_| std::net::TcpStream::connect(&address).ok())
        .collect();
    // The limit was reached: the server said it could not accept (else this proves nothing).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !server
        .printed
        .lock()
        .expect("not poisoned")
        .iter()
        .any(|line| line.contains("could not accept a connection"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never ran out of descriptors: {} connections held",
            idle.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(idle);
    std::thread::sleep(Duration::from_millis(500));
    let health = exchange(
        &server.base,
        "GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(health.starts_with("HTTP/1.1 200"), "{health:?}");
}

/// A body that cannot be read (malformed chunked encoding) is a 400, not a 413: it was not too
/// large.
#[tokio::test]
async fn a_body_that_cannot_be_read_is_a_400_not_too_large() {
    let server = start();
    let answer = exchange(
        &server.base,
        "POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    );
    assert!(
        answer.starts_with("HTTP/1.1 400") && answer.contains("\"bad_request\""),
        "{answer:?}"
    );
    // One that is too large still is. Just over the limit: the gateway answers once it has
    // read 1 MiB and closes, and a client still writing a body twice as large met a broken
    // pipe instead of the answer now and then; this one is all in the socket buffers by then.
    let large = reqwest::Client::new()
        .post(format!("{}/auth/login", server.base))
        .header("content-type", "application/json")
        .body(vec![b' '; 1024 * 1024 + 1024])
        .send()
        .await
        .expect("answered");
    assert_eq!(large.status().as_u16(), 413);
}

/// A browser app on another origin (a front end on its own dev server) calls `oes-local` as it
/// would call the stack: the preflight answered by the gateway, the answer carrying the CORS
/// headers the template configures; an origin not allowed gets none.
#[tokio::test]
async fn a_browser_app_on_an_allowed_origin_gets_the_http_apis_cors_answers() {
    let app = "http://localhost:5173";
    let mut command = Command::new(env!("CARGO_BIN_EXE_oes-local"));
    command.args(["--cors-allow-origins", app]);
    let server = start_as(command);
    let client = reqwest::Client::new();
    let url = format!("{}/auth/login", server.base);
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, &url)
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let asked = preflight(app).await.expect("a preflight");
    assert_eq!(asked.status(), 204);
    let h = asked.headers();
    assert_eq!(h["access-control-allow-origin"], app);
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .is_ok_and(|methods| methods.split(',').any(|m| m == "POST")),
        "{h:?}"
    );
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .is_ok_and(|headers| headers.split(',').any(|m| m == "content-type")),
        "{h:?}"
    );
    let login = json!({"email": "instructor@example.com", "password": "demo-password-123"});
    for (origin, allowed) in [(app, true), ("http://elsewhere.test", false)] {
        let answer = client
            .post(&url)
            .header("origin", origin)
            .json(&login)
            .send()
            .await
            .expect("an answer");
        assert_eq!(answer.status(), 200, "{origin}");
        let h = answer.headers();
        assert_eq!(
            h.get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok()),
            allowed.then_some(app),
            "{origin}: {h:?}"
        );
        assert_eq!(
            h.contains_key("access-control-expose-headers"),
            allowed,
            "{origin}: {h:?}"
        );
    }
    let refused = preflight("http://elsewhere.test")
        .await
        .expect("a preflight");
    assert_eq!(refused.status(), 204);
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin"),
        "{:?}",
        refused.headers()
    );
}

/// With `--route-throttle`, each route lets its burst through and refuses the rest as API
/// Gateway does (429, the gateway's body), without its function; other routes still answer.
#[tokio::test]
async fn a_route_over_its_throttle_is_refused_by_the_gateway() {
    let mut command = Command::new(env!("CARGO_BIN_EXE_oes-local"));
    command.args(["--route-throttle", "0.01,2"]);
    let server = start_as(command);
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, body) = send(
            &client,
            reqwest::Method::POST,
            url("/auth/login"),
            Some(json!({})),
            None,
        )
        .await;
        statuses.push((status, body));
    }
    assert_eq!(statuses[0].0, 400, "{}", statuses[0].1);
    assert_eq!(statuses[1].0, 400, "{}", statuses[1].1);
    assert_eq!(
        statuses[2],
        (429, json!({"message": "Too Many Requests"})),
        "the third, over the burst of 2"
    );
    let (status, body) = send(&client, reqwest::Method::GET, url("/auth/me"), None, None).await;
    assert_eq!(status, 401, "another route has its own bucket: {body}");
}

/// A request that matches none of the template's routes — an unknown path, or a method its
/// path has no route for — never reaches a function in AWS: API Gateway answers it 404 with its
/// own body, and so does `oes-local`. A request that matches a route is the function's to answer.
#[tokio::test]
async fn a_request_that_matches_no_route_is_the_gateways_404() {
    let server = start();
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.base);
    for (method, path) in [
        (reqwest::Method::GET, "/nothing"),
        (reqwest::Method::PUT, "/exams"),
        (reqwest::Method::DELETE, "/auth/login"),
        (reqwest::Method::GET, "/exams/e-1/nothing"),
    ] {
        let (status, body) = send(&client, method.clone(), url(path), None, None).await;
        assert_eq!(
            (status, body),
            (404, json!({"message": "Not Found"})),
            "{method} {path}"
        );
    }
    let (status, body) = send(&client, reqwest::Method::GET, url("/exams/e-1"), None, None).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "a route: the function answers"
    );
}
