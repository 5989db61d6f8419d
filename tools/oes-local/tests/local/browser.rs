//! A real browser for the tests of pages: Debian's Chromium, headless, driven through
//! chromedriver (WebDriver), against the embedded mode served in-process, whose worker writes
//! each email it sends to an outbox folder.
//!
//! `scripts/services.sh up` (run by `make test`) installs `chromium` and `chromium-driver`; a
//! test without them fails, never passes unchecked.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use oes_domain::security::JwtSettings;
use oes_local::Functions;
use oes_local::embedded::{self, Embedded};
use serde_json::json;

/// The embedded mode's demo accounts' password.
pub const DEMO_PASSWORD: &str = "demo-password-123";
/// The longest wait for a page to show something.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Where a program is on `PATH`.
pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}

/// chromedriver on a free loopback port, in its own process group with the Chromium it starts;
/// the whole group is killed when this is dropped, whatever happened.
pub struct Driver {
    child: Child,
    url: String,
    chromium: PathBuf,
    profile: PathBuf,
}

impl Driver {
    /// Starts chromedriver; panics if Chromium is missing (`scripts/services.sh up` installs it:
    /// a page test never passes without a browser).
    pub fn start() -> Self {
        let (Some(chromium), Some(chromedriver)) = (on_path("chromium"), on_path("chromedriver"))
        else {
            panic!(
                "chromium and chromedriver are not installed: `scripts/services.sh up` (run by \
                 `make test` and `make services`) installs them with apt-get"
            );
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            chromium,
            profile: std::env::temp_dir().join(format!("oes-chromium-{}", uuid::Uuid::new_v4())),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    pub async fn browser(&self) -> Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,1400",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([format!("--user-data-dir={}", self.profile.display())])
        .collect::<Vec<_>>();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": self.chromium, "args": args },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a WebDriver session in Chromium")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group chromedriver leads (`process_group(0)`): it and every Chromium it started.
        // killpg(2), never `kill -KILL -<pgid>`: procps-ng 4.0.2's kill (Debian 12) signals
        // every process of the user for that, the test runner and all the services included.
        if let Ok(pgid) = i32::try_from(self.child.id())
            && pgid > 1
        {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// The embedded mode on a free loopback port, its outbox removed when dropped.
pub struct Local {
    pub base: String,
    pub functions: Arc<Functions>,
    pub outbox: PathBuf,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Local {
    fn drop(&mut self) {
        self.server.abort();
        let _ = std::fs::remove_dir_all(&self.outbox);
    }
}

/// The embedded mode's functions, writing the mail they send to `outbox`, its links to `base`.
pub async fn embedded_functions(outbox: PathBuf, base: String) -> Arc<Functions> {
    let settings = Embedded {
        outbox,
        public_base_url: base,
        demo_password: DEMO_PASSWORD.into(),
        seed_students: 0,
    };
    let jwt = JwtSettings {
        secret: embedded::random_secret(),
        issuer: "oes".into(),
        audience: "oes-api".into(),
        ttl_seconds: 3600,
    };
    embedded::start(settings, jwt)
        .await
        .expect("the embedded mode starts")
}

pub async fn local() -> Local {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("bound"));
    let outbox = std::env::temp_dir().join(format!("oes-console-outbox-{}", uuid::Uuid::new_v4()));
    let functions = embedded_functions(outbox.clone(), base.clone()).await;
    let server = tokio::spawn(oes_local::serve(listener, functions.clone()));
    Local {
        base,
        functions,
        outbox,
        server,
    }
}

/// The rendered text of the first element `css` selects ("" when none is).
pub async fn text(browser: &Client, css: &str) -> String {
    match browser.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Waits (bounded) until the text of `css` satisfies `wanted`.
pub async fn shows(
    browser: &Client,
    css: &str,
    what: &str,
    wanted: impl Fn(&str) -> bool,
) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen = text(browser, css).await;
        if wanted(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: `{css}` shows {seen:?} after {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn click(browser: &Client, css: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(element) = browser.find(Locator::Css(css)).await
            && element.click().await.is_ok()
        {
            return;
        }
        assert!(Instant::now() < deadline, "nothing clickable at `{css}`");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
