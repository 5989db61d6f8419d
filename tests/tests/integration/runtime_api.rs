//! The binaries that deploy, under a Lambda Runtime API. Each test starts cargo-lambda's Runtime
//! API emulator (`cargo lambda watch --only-lambda-apis`) and a function's real binary from
//! `target/debug/` — its `main`: configuration from the environment, the JWT key read from
//! Secrets Manager by ARN, the runtime loop — with exactly the environment `template.yaml` gives
//! that function, pointed at a fresh [`TestEnv`] in moto and Redis. Every `events/` fixture of the
//! function is sent with `cargo lambda invoke --data-file`, and each answer is checked with the
//! expectations of `fixtures.rs`, which checks the same fixtures against the handlers in-process.
//!
//! How the emulator routes: one `watch` serves every binary target of the workspace by name.
//! `cargo lambda invoke <name>` queues the event for `<name>` (a name that is not a binary target
//! of the workspace is refused), and a function process takes the events queued for the name at
//! the end of its `AWS_LAMBDA_RUNTIME_API`, `http://127.0.0.1:<port>/.rt/<name>` (the bare
//! `/.rt` that `watch` prints is the name `_`). An event for a name no process polls waits; here
//! every wait is bounded. The emulator gives each invocation the deadline `600000` ms (in 1970)
//! rather than now plus the timeout: the sweeper's time budget is then zero, and it settles its
//! first wave.
//!
//! The binaries are not built by this test: `make test` builds the workspace first; run
//! `cargo build --workspace` before running it alone, or it tests stale binaries.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsBatchResponse;
use oes_domain::ports::QueueName;
use oes_runtime::config::{Env, jwt_settings};
use oes_runtime::wiring::ApiAdapters;
use oes_tests::exams::ExamHarness;
use oes_tests::{TestEnv, free_port, ses_messages_from, unique_prefix};
use serde_json::Value;
use yaml_rust2::Yaml;

use crate::fixtures::{
    ApiFunction, WorkerOutcome, attempt_left_open, check_placeholder_answer, check_sqs_fixture,
    check_swept, check_with_a_real_token, deliveries, fixtures, is_admin_api, is_auth_api,
    is_exam_api, is_http, is_sqs, sqs_event,
};
use crate::template::{template, text};

/// The longest the emulator may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest one invocation may take, from `cargo lambda invoke` to its answer.
const INVOKE_TIMEOUT: Duration = Duration::from_secs(30);

fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn event_file(name: &str) -> PathBuf {
    workspace().join("events").join(name)
}

/// `binary` as `cargo build --workspace` left it, beside this test's executable
/// (`target/<profile>/deps/`), or a panic saying to build it.
pub(crate) fn built(binary: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("this test's path: {e}"));
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| panic!("{} is not in target/<profile>/deps/", exe.display()));
    let path = dir.join(binary);
    assert!(
        path.is_file(),
        "{} is missing: build the workspace first (`cargo build --workspace`; `make test` does)",
        path.display()
    );
    path
}

/// The cargo-lambda that `scripts/services.sh up` installs into `.venv` (requirements-dev.txt).
fn cargo_lambda() -> PathBuf {
    let path = workspace().join(".venv/bin/cargo-lambda");
    assert!(
        path.is_file(),
        "{} is missing: `make services` installs it (or `.venv/bin/pip install -r \
         requirements-dev.txt`)",
        path.display()
    );
    path
}

/// A process this test started, its output in `<stem>.out` and `<stem>.err`: killed and reaped
/// when dropped, whatever happened.
struct Process {
    what: String,
    child: Mutex<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl Process {
    fn spawn(what: String, command: &mut Command, dir: &Path, stem: &str) -> Self {
        let out = dir.join(format!("{stem}.out"));
        let err = dir.join(format!("{stem}.err"));
        let file =
            |path: &Path| File::create(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let child = command
            .stdin(Stdio::null())
            .stdout(file(&out))
            .stderr(file(&err))
            .spawn()
            .unwrap_or_else(|e| panic!("{what} did not start: {e}"));
        Self {
            what,
            child: Mutex::new(child),
            out,
            err,
        }
    }

    /// Its exit status, once it has exited.
    fn exited(&self) -> Option<ExitStatus> {
        let mut child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        child.try_wait().ok().flatten()
    }

    /// What it printed on stdout.
    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// The end of what it printed, to explain a failure.
    fn output(&self) -> String {
        let tail = |path: &Path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let start = text.len().saturating_sub(3000);
            let start = (start..text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(text.len());
            text[start..].to_owned()
        };
        format!(
            "\n--- {} stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            tail(&self.out),
            tail(&self.err)
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(PoisonError::into_inner);
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// cargo-lambda's Runtime API emulator on a free loopback port, and a scratch folder (process
/// output, events with real tokens), kept when the test fails.
struct Emulator {
    port: u16,
    dir: PathBuf,
    process: Process,
    invocations: AtomicUsize,
}

impl Emulator {
    /// Starts it from the workspace root (it serves the workspace's binary targets) and waits
    /// until it listens.
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(unique_prefix("oes-runtime-api"));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let port = free_port(false);
        let process = Process::spawn(
            format!("cargo lambda watch on port {port}"),
            Command::new(cargo_lambda())
                .args(["lambda", "watch", "--only-lambda-apis", "--ignore-changes"])
                .args(["-A", "127.0.0.1", "-P", &port.to_string()])
                .current_dir(workspace()),
            &dir,
            "emulator",
        );
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Some(status) = process.exited() {
                panic!("the emulator exited ({status}){}", process.output());
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "the emulator did not listen within {START_TIMEOUT:?}{}",
                process.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Self {
            port,
            dir,
            process,
            invocations: AtomicUsize::new(0),
        }
    }

    /// Starts `function`'s binary with exactly its environment and the variables the Lambda
    /// service sets, taking the events sent to its name.
    fn run(&self, function: &Deployed) -> Running {
        let binary = &function.binary;
        let process = Process::spawn(
            binary.clone(),
            Command::new(built(binary))
                .env_clear()
                .envs(function.env.iter().map(|(k, v)| (k, v)))
                .env(
                    "AWS_LAMBDA_RUNTIME_API",
                    format!("http://127.0.0.1:{}/.rt/{binary}", self.port),
                )
                .env("AWS_LAMBDA_FUNCTION_NAME", binary)
                .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
                .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", &function.memory_mb)
                .current_dir(&self.dir),
            &self.dir,
            binary,
        );
        Running {
            name: binary.clone(),
            process,
        }
    }

    /// `text` in a file of the scratch folder, to send with `--data-file`.
    fn scratch(&self, name: &str, text: &str) -> PathBuf {
        let n = self.invocations.load(Ordering::SeqCst);
        let path = self.dir.join(format!("{n}-{name}"));
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// Sends the event in `file` to `function` with `cargo lambda invoke --data-file`: the
    /// function's answer. Fails if the function exits, answers with an error, or takes longer
    /// than [`INVOKE_TIMEOUT`].
    async fn invoke(&self, function: &Running, file: &Path) -> Value {
        let n = self.invocations.fetch_add(1, Ordering::SeqCst);
        let what = format!("cargo lambda invoke {} {}", function.name, file.display());
        let cli = Process::spawn(
            what.clone(),
            Command::new(cargo_lambda())
                .args(["lambda", "invoke", "-A", "127.0.0.1"])
                .args(["-P", &self.port.to_string(), "--data-file"])
                .arg(file)
                .arg(&function.name),
            &self.dir,
            &format!("invoke-{n}"),
        );
        let started = Instant::now();
        let status = loop {
            if let Some(status) = cli.exited() {
                break status;
            }
            if let Some(status) = function.process.exited() {
                panic!(
                    "{} exited ({status}) during `{what}`{}",
                    function.name,
                    function.process.output()
                );
            }
            assert!(
                started.elapsed() < INVOKE_TIMEOUT,
                "no answer to `{what}` within {INVOKE_TIMEOUT:?}{}{}{}",
                cli.output(),
                function.process.output(),
                self.process.output()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        assert!(
            status.success(),
            "`{what}` failed ({status}){}{}",
            cli.output(),
            function.process.output()
        );
        let answer = cli.stdout();
        serde_json::from_str(&answer)
            .unwrap_or_else(|e| panic!("the answer to `{what}` is not JSON ({e}): {answer}"))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "runtime_api: the processes' output is in {}",
                self.dir.display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A function's binary running under the emulator.
struct Running {
    name: String,
    process: Process,
}

/// A function as `template.yaml` deploys it, here: its binary (`Metadata.BuildProperties.Binary`),
/// memory and environment.
struct Deployed {
    binary: String,
    memory_mb: String,
    env: Vec<(String, String)>,
}

impl Deployed {
    /// Function `logical_id` of the template: each variable the template gives it (Globals,
    /// then its own) with its value here — from `local` for the variables whose value belongs
    /// to a deployment (a resource of the stack, the Redis, the sender), a parameter's default
    /// for `!Ref <Parameter>`, `env`'s prefix for `!Ref AWS::StackName` (the cache prefix: the
    /// tests share one Redis as stacks may), otherwise the template's text with
    /// `${AWS::StackName}` and `${<Parameter>}` filled in — and, outside the template, what
    /// Lambda and the account give a function: region, credentials and, here, the emulator's
    /// endpoint.
    fn from_template(logical_id: &str, env: &TestEnv, local: &Local) -> Self {
        let template = template();
        let function = &template["Resources"][logical_id];
        assert!(!function.is_badvalue(), "template.yaml has no {logical_id}");
        let globals = &template["Globals"]["Function"];
        let mut vars: Vec<(String, String)> = Vec::new();
        for set in [
            &globals["Environment"]["Variables"],
            &function["Properties"]["Environment"]["Variables"],
        ] {
            for (name, value) in set.as_hash().into_iter().flatten() {
                let name = text(name);
                vars.retain(|(k, _)| *k != name);
                // `!Ref AWS::NoValue` (declared for `sam local invoke`): deployed, not set.
                if value.as_str() == Some("AWS::NoValue") {
                    continue;
                }
                let value = local_value(&template, logical_id, &name, value, env, local);
                vars.push((name, value));
            }
        }
        let outside = |name: &str, default: &str| {
            let value = std::env::var(name).unwrap_or_else(|_| default.to_owned());
            (name.to_owned(), value)
        };
        vars.extend([
            ("AWS_ENDPOINT_URL".to_owned(), env.endpoints.aws.clone()),
            outside("AWS_REGION", "us-east-1"),
            outside("AWS_ACCESS_KEY_ID", "test"),
            outside("AWS_SECRET_ACCESS_KEY", "test"),
        ]);
        let memory = &function["Properties"]["MemorySize"];
        let memory = if memory.is_badvalue() {
            &globals["MemorySize"]
        } else {
            memory
        };
        Self {
            binary: text(&function["Metadata"]["BuildProperties"]["Binary"]),
            // A number, or `!Ref` to a parameter (auth-api's): its default.
            memory_mb: local_value(&template, logical_id, "MemorySize", memory, env, local),
            env: vars,
        }
    }

    /// The value it gives `name`.
    fn var(&self, name: &str) -> Option<String> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// The values of a deployment here, by variable name.
type Local = BTreeMap<&'static str, String>;

/// The values every function's deployment-specific variables take for `env`: its table and
/// queues, its sender identity, its Redis (standalone).
fn local_values(env: &TestEnv) -> Local {
    let mut local: Local = env.provisioned.env().into_iter().collect();
    local.insert("REDIS_URL", env.endpoints.redis.clone());
    local.insert("REDIS_CLUSTER", "false".into());
    local
}

/// The value here of variable `name`, set to `value` in the template (see
/// [`Deployed::from_template`]).
fn local_value(
    template: &Yaml,
    function: &str,
    name: &str,
    value: &Yaml,
    env: &TestEnv,
    local: &Local,
) -> String {
    if let Some(here) = local.get(name) {
        return here.clone();
    }
    let parameters = &template["Parameters"];
    if value.as_str() == Some("AWS::StackName") {
        return env.prefix.clone();
    }
    let raw = match value {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Real(r) => r.clone(),
        Yaml::Boolean(b) => b.to_string(),
        _ => unknown_value(function, name, value),
    };
    let parameter = &parameters[raw.as_str()];
    if !parameter.is_badvalue() {
        return text(&parameter["Default"]);
    }
    // `!Ref <Resource>` or `!GetAtt <Resource>.<Attribute>`: a value of the stack.
    let resource = raw.split('.').next().unwrap_or_default();
    if !template["Resources"][resource].is_badvalue() {
        unknown_value(function, name, value);
    }
    let mut filled = String::new();
    let mut rest = raw.as_str();
    while let Some(start) = rest.find("${") {
        let Some(end) = rest[start..].find('}').map(|e| start + e) else {
            unknown_value(function, name, value)
        };
        let inner = &rest[start + 2..end];
        filled.push_str(&rest[..start]);
        if inner == "AWS::StackName" {
            filled.push_str(&env.prefix);
        } else if !parameters[inner].is_badvalue() {
            filled.push_str(&text(&parameters[inner]["Default"]));
        } else {
            unknown_value(function, name, value);
        }
        rest = &rest[end + 1..];
    }
    filled.push_str(rest);
    filled
}

fn unknown_value(function: &str, name: &str, value: &Yaml) -> ! {
    panic!(
        "template.yaml gives {function} {name} = {value:?}: tell runtime_api.rs (local_values) \
         what it is here"
    )
}

/// A JWT signing key made as the stack's `JwtSecret` makes it (`{"secret": <64 letters and
/// digits>}`), created in Secrets Manager in moto: its ARN and the key.
async fn jwt_secret(env: &TestEnv) -> (String, String) {
    let key = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    (env.jwt_secret(&key).await, key)
}

/// Status and JSON body of an API Gateway (payload 2.0) response.
fn http_answer(name: &str, response: &Value) -> (u16, Value) {
    let status = response["statusCode"]
        .as_u64()
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or_else(|| panic!("{name}: not an HTTP response: {response}"));
    assert_ne!(response["isBase64Encoded"], true, "{name}: {response}");
    let body = response["body"].as_str().unwrap_or_default();
    let html = response["headers"]["content-type"]
        .as_str()
        .is_some_and(|v| v.starts_with("text/html"));
    let body = if html {
        Value::String(body.to_owned())
    } else if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{name}: the body is not JSON ({e}): {body}"))
    };
    (status, body)
}

/// A running exam-api or admin-api binary, as `fixtures.rs` sends their fixtures: each event
/// written to a file and sent with `cargo lambda invoke --data-file`.
struct Invoked<'a> {
    emulator: &'a Emulator,
    function: &'a Running,
}

#[async_trait]
impl ApiFunction for Invoked<'_> {
    async fn answer(&self, name: &str, text: &str) -> (u16, Value) {
        let file = self.emulator.scratch(name, text);
        http_answer(name, &self.emulator.invoke(self.function, &file).await)
    }
}

#[tokio::test]
async fn auth_api_answers_each_of_its_fixtures() {
    let env = TestEnv::spawn().await;
    let (arn, _) = jwt_secret(&env).await;
    let mut local = local_values(&env);
    local.insert("OES_JWT_SECRET_ARN", arn);
    let deployed = Deployed::from_template("AuthApiFunction", &env, &local);
    assert_eq!(deployed.var("OES_JWT_SECRET"), None, "only the key's ARN");
    let emulator = Emulator::start().await;
    let function = emulator.run(&deployed);
    let mut seen = 0;
    // In name order, against one deployment: auth-login (no such account) comes before
    // auth-register creates the account it names.
    for name in fixtures().into_keys() {
        if is_auth_api(&name) {
            let answer = emulator.invoke(&function, &event_file(&name)).await;
            let (status, body) = http_answer(&name, &answer);
            check_placeholder_answer(&name, status, &body);
            seen += 1;
        }
    }
    assert!(seen >= 10, "only {seen} auth-api fixtures found");
}

#[tokio::test]
async fn exam_api_answers_each_of_its_fixtures_with_the_placeholder_token_and_a_real_one() {
    answers_its_fixtures("ExamApiFunction", is_exam_api, 17).await;
}

#[tokio::test]
async fn admin_api_answers_each_of_its_fixtures_with_the_placeholder_token_and_a_real_one() {
    answers_its_fixtures("AdminApiFunction", is_admin_api, 7).await;
}

/// Runs function `logical_id` as the template deploys it and sends it each of its fixtures
/// (`is_its`; at least `at_least` of them): as they are, with the placeholder token, then each
/// with a real token of a caller who may use the route.
async fn answers_its_fixtures(logical_id: &str, is_its: fn(&str) -> bool, at_least: usize) {
    let env = TestEnv::spawn().await;
    let (arn, key) = jwt_secret(&env).await;
    let mut local = local_values(&env);
    local.insert("OES_JWT_SECRET_ARN", arn);
    let variables = &template()["Resources"][logical_id]["Properties"]["Environment"]["Variables"];
    if !variables["OES_PRIORITY_LANE_MAPPING"].is_badvalue() {
        // The worker's mappings, made in the emulator, for it to switch.
        let [priority, bulk] = crate::lane_switch::lane_mapping_uuids(&env).await;
        local.insert("OES_PRIORITY_LANE_MAPPING", priority);
        local.insert("OES_BULK_LANE_MAPPING", bulk);
    }
    let deployed = Deployed::from_template(logical_id, &env, &local);
    let emulator = Emulator::start().await;
    let function = emulator.run(&deployed);

    let its_fixtures: Vec<(String, String)> = fixtures()
        .into_iter()
        .filter(|(name, _)| is_its(name))
        .collect();
    assert!(
        its_fixtures.len() >= at_least,
        "only {} fixtures of {logical_id} found",
        its_fixtures.len()
    );
    for (name, _) in &its_fixtures {
        let answer = emulator.invoke(&function, &event_file(name)).await;
        let (status, body) = http_answer(name, &answer);
        check_placeholder_answer(name, status, &body);
    }

    // Tokens signed with the key the binary read from Secrets Manager, with the issuer and
    // audience the template gives it, for users and exams in its table.
    let jwt = jwt_settings(&Env(|name: &str| match name {
        "OES_JWT_SECRET" => Some(key.clone()),
        _ => deployed.var(name),
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let adapters = ApiAdapters::aws(&env.clients, &env.api_config())
        .unwrap_or_else(|e| panic!("adapters: {e}"));
    let h = ExamHarness::with_jwt(&adapters, &jwt);
    let invoked = Invoked {
        emulator: &emulator,
        function: &function,
    };
    for (name, text) in &its_fixtures {
        check_with_a_real_token(&h, &invoked, name, text).await;
    }
}

/// Takes (receives) the messages waiting on both lanes of `env`.
async fn waiting_emails(env: &TestEnv) -> usize {
    let queues = env.sqs_queues();
    let mut waiting = 0;
    for lane in [QueueName::Priority, QueueName::Bulk] {
        waiting += queues
            .receive(lane, 10, None, Duration::ZERO)
            .await
            .unwrap_or_else(|e| panic!("receiving from {lane:?}: {e}"))
            .len();
    }
    waiting
}

#[tokio::test]
async fn attempt_sweeper_closes_an_attempt_left_open_on_the_schedule_fixture() {
    let env = TestEnv::spawn().await;
    let deployed = Deployed::from_template("AttemptSweeperFunction", &env, &local_values(&env));
    let adapters = ApiAdapters::aws(&env.clients, &env.api_config())
        .unwrap_or_else(|e| panic!("adapters: {e}"));
    let h = ExamHarness::over(&adapters);
    let left_open = attempt_left_open(&h).await;

    let emulator = Emulator::start().await;
    let function = emulator.run(&deployed);
    let scheduled: Vec<String> = fixtures()
        .into_keys()
        .filter(|n| !is_http(n) && !is_sqs(n))
        .collect();
    assert_eq!(
        scheduled,
        ["schedule-attempt-sweep.json"],
        "a new scheduled event: add its check here"
    );
    let report = emulator
        .invoke(&function, &event_file("schedule-attempt-sweep.json"))
        .await;
    check_swept(&h, &report, &left_open, waiting_emails(&env).await).await;
}

/// The mail moto accepted from `sender`, as text the checks of `fixtures.rs` read (a `To:`
/// line, the subject, the body).
async fn mail_from(env: &TestEnv, sender: &str) -> Vec<String> {
    ses_messages_from(&env.endpoints.aws, sender)
        .await
        .iter()
        .map(|m| {
            let to: Vec<&str> = m["destinations"]["ToAddresses"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "To: {}\nSubject: {}\n\n{}",
                to.join(", "),
                m["subject"].as_str().unwrap_or_default(),
                m["body"].as_str().unwrap_or_default()
            )
        })
        .collect()
}

/// One SQS fixture delivered to a worker of its own, over a fresh table (the fixtures share a
/// job id) whose mail comes from a sender identity of its own.
async fn worker_handles(name: &str, text: &str) {
    let env = TestEnv::spawn().await;
    let sender = format!("noreply+{}@example.com", env.prefix);
    env.clients
        .ses()
        .create_email_identity()
        .email_identity(&sender)
        .send()
        .await
        .unwrap_or_else(|e| panic!("creating the sender identity: {e:?}"));
    let mut local = local_values(&env);
    local.insert("OES_SENDER_EMAIL", sender.clone());
    let deployed = Deployed::from_template("EmailWorkerFunction", &env, &local);
    let base_url = deployed
        .var("OES_PUBLIC_BASE_URL")
        .unwrap_or_else(|| panic!("the template gives the worker no OES_PUBLIC_BASE_URL"));
    let emulator = Emulator::start().await;
    let function = emulator.run(&deployed);

    // The records come from the local lanes (`oes-local`, as env.json names them); here, from
    // this deployment's.
    let from = ":oes-local-email-";
    assert!(text.contains(from), "{name}: no record from {from}");
    let text = text.replace(from, &format!(":{}-email-", env.prefix));
    let file = emulator.scratch(name, &text);
    let mut responses = Vec::new();
    for _ in 0..deliveries(name) {
        let answer = emulator.invoke(&function, &file).await;
        let response: SqsBatchResponse = serde_json::from_value(answer.clone())
            .unwrap_or_else(|e| panic!("{name}: not a batch response ({e}): {answer}"));
        responses.push(response);
    }
    let dead = env
        .sqs_queues()
        .receive(QueueName::DeadLetter, 10, Some(0), Duration::ZERO)
        .await
        .unwrap_or_else(|e| panic!("receiving from the dead-letter queue: {e}"))
        .into_iter()
        .filter_map(|d| d.attributes.get("original_message_id").cloned())
        .collect();
    let outcome = WorkerOutcome {
        responses,
        mails: mail_from(&env, &sender).await,
        dead,
    };
    check_sqs_fixture(name, &sqs_event(name, &text), &outcome, &base_url);
}

#[tokio::test]
async fn email_worker_handles_each_sqs_fixture() {
    let batches: Vec<(String, String)> = fixtures()
        .into_iter()
        .filter(|(name, _)| is_sqs(name))
        .collect();
    assert!(batches.len() >= 3, "only {} SQS fixtures", batches.len());
    for (name, text) in &batches {
        worker_handles(name, text).await;
    }
}

/// A function whose configuration is incomplete stops at init, before the runtime loop, and its
/// log (CloudWatch's, in AWS) says which variable in words. It said `Error: Missing("OES_TABLE")`,
/// the debug form of the error, before.
#[test]
fn a_binary_without_a_required_variable_says_which_in_words() {
    for binary in [
        "auth-api",
        "exam-api",
        "admin-api",
        "email-worker",
        "attempt-sweeper",
    ] {
        let output = Command::new(built(binary))
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
            .env("AWS_REGION", "us-east-1")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{binary}: {e}"));
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(!output.status.success(), "{binary}: {printed}");
        assert!(
            printed.contains("Error: missing environment variable OES_")
                && !printed.contains("Missing("),
            "{binary}: {printed}"
        );
    }
}
