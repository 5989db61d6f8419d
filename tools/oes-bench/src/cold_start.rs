//! Cold starts: each function's real binary started fresh under a minimal Lambda Runtime API on
//! loopback, again and again, beside a hello-world `lambda_http` binary in the same run.
//!
//! For each start: the time from spawning the process to its first `GET …/invocation/next`
//! (init: everything `main` does before the runtime loop), to its first answer (init and one
//! invocation of an event that needs no I/O, so the figure is the code's, not the emulator's),
//! and its resident memory then (`VmHWM` of `/proc/<pid>/status`). At its first `GET /next`,
//! while it waits for the answer, the process's CPU time (`/proc/<pid>/task/*/schedstat`, every
//! thread's), its page faults (`minflt` of `/proc/<pid>/stat`) and its threads are read too:
//! steadier than wall time on a shared machine, where a start can wait for a core; the thread
//! count tells the multi-threaded hello-world from its current-thread twin, the second baseline,
//! which starts as the functions do. Each round starts every binary once, so each function's
//! start also has a hello-world start beside it in time: the ratio of the two, round by round, is
//! reported with its quartiles. The JWT key is given in the
//! environment; with `--secret-arn` it is read from Secrets Manager in the emulator instead
//! (`OES_JWT_SECRET_ARN`, as in AWS), so the one network call init makes is measured apart.
//! Starts are interleaved (one of each binary per round), so the machine's noise falls on all.
//! With `--against DIR`, a second build's binaries start in the same rounds, each beside its
//! counterpart and in turn first, and a third table divides each start by its counterpart's:
//! a change measured start by start, not run against run.
//! Before the rounds every binary is written out, dropped from the page cache and read back by
//! one start that is not counted, so that each starts from the same state of its file's pages: how a file came
//! into the cache moves a start's page faults (the same binary took 465-500 by how it was written
//! or read; BENCHMARKS, "The page cache, not the layout").

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use oes_adapters::aws::AwsClients;
use oes_adapters::resources::{Provisioned, provision};

use crate::stats::quartiles;

/// One binary to start, and the event its first invocation gets.
struct Subject {
    name: &'static str,
    binary: &'static str,
    event: String,
    /// Whether the template gives it the lanes' event source mappings (admin-api pauses and
    /// resumes them; with them it builds a Lambda client).
    lanes: bool,
}

/// The subjects: the hello-world binary first (the baseline), the same on the current-thread
/// runtime second, then every function.
fn subjects(events: &Path) -> Result<Vec<Subject>, String> {
    let fixture = |name: &str| {
        std::fs::read_to_string(events.join(name)).map_err(|e| format!("events/{name}: {e}"))
    };
    Ok(vec![
        Subject {
            name: "hello-world (lambda_http)",
            binary: "hello-lambda",
            event: fixture("auth-me-get.json")?,
            lanes: false,
        },
        Subject {
            name: "hello-world, current-thread runtime",
            binary: "hello-lambda-current-thread",
            event: fixture("auth-me-get.json")?,
            lanes: false,
        },
        // A request with the fixtures' placeholder token: refused before any I/O (401).
        Subject {
            name: "auth-api",
            binary: "auth-api",
            event: fixture("auth-me-get.json")?,
            lanes: false,
        },
        Subject {
            name: "exam-api",
            binary: "exam-api",
            event: fixture("exam-list.json")?,
            lanes: false,
        },
        Subject {
            name: "admin-api",
            binary: "admin-api",
            event: fixture("admin-queues.json")?,
            lanes: true,
        },
        // An empty batch: the worker answers without sending.
        Subject {
            name: "email-worker",
            binary: "email-worker",
            event: r#"{"Records":[]}"#.to_owned(),
            lanes: false,
        },
        // Its first invocation queries the due attempts: one DynamoDB call to the emulator.
        Subject {
            name: "attempt-sweeper",
            binary: "attempt-sweeper",
            event: fixture("schedule-attempt-sweep.json")?,
            lanes: false,
        },
    ])
}

/// What one start measured.
#[derive(Debug, Clone, Copy)]
struct Start {
    init: Duration,
    first_answer: Duration,
    peak_rss_kib: u64,
    /// What the process had used, and its threads, when it first asked for an event.
    at_init: Usage,
}

/// What a process has used so far: CPU time (all its threads) and page faults; and how many
/// threads it runs (which tells a multi-threaded runtime's start from a current-thread one's).
#[derive(Debug, Clone, Copy)]
struct Usage {
    cpu: Duration,
    page_faults: u64,
    threads: usize,
}

impl Usage {
    /// Reads `pid`'s usage from `/proc`; `None` where it cannot (not Linux, or gone).
    fn of(pid: u32) -> Option<Usage> {
        // A thread that ends meanwhile is left out (none of the measured binaries ends one).
        let per_thread: Vec<Duration> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .ok()?
            .filter_map(|task| {
                let schedstat =
                    std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
                let nanos = schedstat.split_whitespace().next()?.parse().ok()?;
                Some(Duration::from_nanos(nanos))
            })
            .collect();
        // `pid (comm) state ppid …`: `minflt` is the 8th field after the command, which may
        // itself hold spaces, so count from its closing parenthesis.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let after_comm = &stat[stat.rfind(')')? + 1..];
        let page_faults = after_comm.split_whitespace().nth(7)?.parse().ok()?;
        Some(Usage {
            cpu: per_thread.iter().sum(),
            page_faults,
            threads: per_thread.len(),
        })
    }
}

/// What the Runtime API saw of the current start.
#[derive(Default)]
struct Seen {
    first_next: Option<Instant>,
    at_first_next: Option<Usage>,
    answered: Option<Instant>,
    error: Option<String>,
}

/// One start's Runtime API (each start gets its own, on its own port: a request the previous,
/// killed process had already sent must not count for the next one).
struct RuntimeApi {
    event: String,
    seen: Mutex<Seen>,
    /// The started process, known once `spawn` returns (its first request can come sooner).
    pid: tokio::sync::watch::Receiver<Option<u32>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

const REQUEST_ID: &str = "cold-start-0000";

/// The Runtime API's three routes a function uses: `next` (the event, once; later calls wait
/// until the process is killed), `response` and the two error reports.
async fn runtime_api(api: Arc<RuntimeApi>, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    let now = Instant::now();
    if path.ends_with("/invocation/next") {
        let first = {
            let mut seen = lock(&api.seen);
            let first = seen.first_next.is_none();
            seen.first_next.get_or_insert(now);
            first
        };
        if !first {
            // One invocation per start: the next one never comes.
            std::future::pending::<()>().await;
        }
        // The process waits for this answer, so what it has used stays as it is meanwhile.
        let mut pid = api.pid.clone();
        let usage = match pid.wait_for(Option::is_some).await {
            Ok(pid) => pid.and_then(Usage::of),
            Err(_) => None,
        };
        lock(&api.seen).at_first_next = usage;
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() + 60_000);
        let event = api.event.clone();
        return Response::builder()
            .header("lambda-runtime-aws-request-id", REQUEST_ID)
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header(
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:000000000000:function:cold-start",
            )
            .header(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000",
            )
            .body(Full::new(Bytes::from(event)))
            .unwrap_or_default();
    }
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut seen = lock(&api.seen);
    if path.ends_with("/response") {
        seen.answered = Some(now);
    } else if path.ends_with("/error") {
        seen.error = Some(String::from_utf8_lossy(&body).into_owned());
        seen.answered = Some(now);
    }
    Response::builder()
        .status(202)
        .body(Full::new(Bytes::from_static(b"{}")))
        .unwrap_or_default()
}

async fn serve(listener: TcpListener, api: Arc<RuntimeApi>) {
    while let Ok((stream, _)) = listener.accept().await {
        let api = Arc::clone(&api);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let api = Arc::clone(&api);
                async move { Ok::<_, Infallible>(runtime_api(api, request).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The environment of every function: what the template gives them, pointed at the local
/// services (`AWS_ENDPOINT_URL`, `REDIS_URL`) and at `resources` provisioned there; the lane
/// mappings, which no measured invocation reaches, are made up (and given only to the
/// [`Subject`]s the template gives them to).
fn function_env(
    secret_arn: Option<&str>,
    aws: &str,
    resources: &Provisioned,
) -> BTreeMap<String, String> {
    let aws = aws.to_owned();
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let mut env: BTreeMap<String, String> = [
        ("AWS_LAMBDA_FUNCTION_NAME", "cold-start".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512".into()),
        ("AWS_ENDPOINT_URL", aws.clone()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("OES_TABLE", resources.table.clone()),
        (
            "OES_PRIORITY_QUEUE_URL",
            resources.priority_queue_url.clone(),
        ),
        ("OES_BULK_QUEUE_URL", resources.bulk_queue_url.clone()),
        ("OES_DLQ_URL", resources.dead_letter_queue_url.clone()),
        (
            "OES_PRIORITY_LANE_MAPPING",
            "00000000-0000-0000-0000-000000000001".into(),
        ),
        (
            "OES_BULK_LANE_MAPPING",
            "00000000-0000-0000-0000-000000000002".into(),
        ),
        ("OES_SENDER_EMAIL", resources.sender_email.clone()),
        ("OES_PUBLIC_BASE_URL", "https://exams.example.org".into()),
        ("REDIS_URL", redis),
        ("RUST_LOG", "info".into()),
        // The template's Globals: mimalloc without transparent huge pages, in small arenas.
        ("MIMALLOC_ALLOW_THP", "0".into()),
        ("MIMALLOC_ARENA_RESERVE", "32MiB".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    match secret_arn {
        Some(arn) => env.insert("OES_JWT_SECRET_ARN".into(), arn.to_owned()),
        None => env.insert(
            "OES_JWT_SECRET".into(),
            "cold-start-jwt-secret-0123456789abcdef0123456789abcdef".into(),
        ),
    };
    env
}

/// Peak resident memory of `pid` (`VmHWM`), in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Stops a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Kills the child when dropped, whatever happened.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_once(
    binary: &Path,
    subject: &Subject,
    env: &BTreeMap<String, String>,
) -> Result<Start, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let (pid_sender, pid) = tokio::sync::watch::channel(None);
    let api = Arc::new(RuntimeApi {
        event: subject.event.clone(),
        seen: Mutex::new(Seen::default()),
        pid,
    });
    let server = tokio::spawn(serve(listener, Arc::clone(&api)));
    let _stop_server = AbortOnDrop(server);
    // Its log, shown if it fails (writing it costs what writing to CloudWatch's pipe does).
    let log_path = std::env::temp_dir().join(format!("oes-cold-start-{}.log", subject.binary));
    let log = std::fs::File::create(&log_path).map_err(|e| e.to_string())?;
    let spawned = Instant::now();
    let child = Command::new(binary)
        .env_clear()
        .envs(
            env.iter()
                .filter(|(name, _)| subject.lanes || !name.ends_with("_LANE_MAPPING")),
        )
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let _ = pid_sender.send(Some(child.id()));
    let mut running = Running(child);
    let deadline = spawned + Duration::from_secs(20);
    loop {
        let answered = lock(&api.seen).answered;
        if answered.is_some() {
            break;
        }
        let exited = running.0.try_wait().ok().flatten();
        if exited.is_some() || Instant::now() > deadline {
            let printed = std::fs::read_to_string(&log_path).unwrap_or_default();
            let tail: Vec<&str> = printed.lines().rev().take(5).collect();
            return Err(format!(
                "{}: no answer ({exited:?}); its last lines: {tail:?}",
                subject.name
            ));
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let peak_rss_kib = peak_rss_kib(running.0.id()).unwrap_or(0);
    let seen = lock(&api.seen);
    if let Some(error) = &seen.error {
        return Err(format!("{} reported an error: {error}", subject.name));
    }
    let (Some(next), Some(answered)) = (seen.first_next, seen.answered) else {
        return Err(format!(
            "{}: answered without asking for an event",
            subject.name
        ));
    };
    let Some(at_init) = seen.at_first_next else {
        return Err(format!(
            "{}: its CPU time and page faults could not be read from /proc",
            subject.name
        ));
    };
    Ok(Start {
        init: next - spawned,
        first_answer: answered - spawned,
        peak_rss_kib,
        at_init,
    })
}

/// Changes to the template's environment asked for on the command line.
#[derive(Debug)]
pub struct EnvChanges {
    /// Variables to add, or to give another value.
    pub set: Vec<(String, String)>,
    /// Variables to leave out.
    pub unset: Vec<String>,
}

/// Runs `runs` interleaved rounds and prints its tables (see [`report`]); with `against`, a
/// second build's binaries start in the same rounds, each beside its counterpart (in turn first
/// and second), and a third table sets the two builds side by side (see [`compare`]).
pub async fn run(
    runs: usize,
    binaries: PathBuf,
    against: Option<PathBuf>,
    secret_arn: Option<String>,
    changes: EnvChanges,
) -> Result<(), String> {
    let events = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events"));
    let subjects = subjects(&events)?;
    let builds: Vec<PathBuf> = std::iter::once(binaries).chain(against).collect();
    let paths = builds
        .iter()
        .map(|dir| {
            subjects
                .iter()
                .map(|subject| binary_path(dir, subject.binary))
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let aws = std::env::var("AWS_ENDPOINT_URL")
        .map_err(|_| "set AWS_ENDPOINT_URL and REDIS_URL (make services)".to_owned())?;
    let clients = AwsClients::load(Some(&aws))
        .await
        .map_err(|e| e.to_string())?;
    let prefix = format!("cold{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let resources = provision(&clients, &prefix, "noreply@example.com")
        .await
        .map_err(|e| format!("provisioning in the emulator: {e}"))?;
    let mut env = function_env(secret_arn.as_deref(), &aws, &resources);
    for name in &changes.unset {
        env.remove(name);
    }
    env.extend(changes.set);
    // The same page-cache state for every binary (see the module's doc): dropped, then read back
    // by a start that is not counted, as a fresh sandbox reads a function's code.
    for build in &paths {
        for (subject, binary) in subjects.iter().zip(build) {
            drop_from_page_cache(binary)?;
            start_once(binary, subject, &env).await?;
        }
    }
    // starts[build][subject][round]
    let mut starts = vec![vec![Vec::with_capacity(runs); subjects.len()]; paths.len()];
    for round in 0..runs {
        for (index, subject) in subjects.iter().enumerate() {
            // With two builds, each goes first in every other round: neither always follows the other.
            for turn in 0..paths.len() {
                let build = (turn + round) % paths.len();
                let start = start_once(&paths[build][index], subject, &env).await?;
                starts[build][index].push(start);
            }
        }
    }
    for (dir, build) in builds.iter().zip(&starts) {
        eprintln!("{}:\n", dir.display());
        report(&subjects, build);
        eprintln!();
    }
    if let [this, that] = starts.as_slice() {
        compare(&subjects, [&builds[0], &builds[1]], this, that);
    }
    Ok(())
}

/// Asks the kernel to drop `binary`'s pages from the page cache (`POSIX_FADV_DONTNEED`; pages
/// a running process maps stay). Its data is written out first: the kernel does not drop dirty
/// pages, so a binary copied or built seconds before would otherwise keep the pages it was
/// written in (seen here: identical copies 4–8 % apart until a `sync`).
fn drop_from_page_cache(binary: &Path) -> Result<(), String> {
    use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
    let file = std::fs::File::open(binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    file.sync_data()
        .map_err(|e| format!("writing {} out: {e}", binary.display()))?;
    posix_fadvise(&file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED)
        .map_err(|e| format!("dropping {} from the page cache: {e}", binary.display()))
}

/// Where `name` is in `dir`: `dir/name/bootstrap` (cargo-lambda's `--lambda-dir`, as `make
/// bench-cold-start` builds them) or `dir/name` (cargo's own target directory).
fn binary_path(dir: &Path, name: &str) -> Result<PathBuf, String> {
    [dir.join(name).join("bootstrap"), dir.join(name)]
        .into_iter()
        .find(|path| path.is_file())
        .ok_or_else(|| {
            format!(
                "{name} is not built in {}: make bench-cold-start builds every binary the bench starts",
                dir.display()
            )
        })
}

/// Prints two Markdown tables, one row per binary: the wall time (what a caller waits for), and
/// what the process used to get there (steadier on a shared machine). Each binary is set against
/// hello-world (the first subject; in the second table also its current-thread twin, the second)
/// twice: the ratio of the two medians, and the median (quartiles in brackets) of the ratios of
/// the starts of the same round.
fn report(subjects: &[Subject], starts: &[Vec<Start>]) {
    let [hello, hello_current_thread, ..] = starts else {
        return;
    };
    let against = |samples: &[Start], baseline: &[Start], of: Measure| {
        let of_medians = median(samples, of) / median(baseline, of).max(f64::MIN_POSITIVE);
        match by_round(samples, baseline, of) {
            Some([p25, p50, p75]) => format!("{of_medians:.2}× | {p50:.2}× ({p25:.2}–{p75:.2})"),
            None => format!("{of_medians:.2}× | –"),
        }
    };
    let answer: Measure = |s| ms(s.first_answer);
    let rss: Measure = |s| s.peak_rss_kib as f64 / 1024.0;
    let threads: Measure = |s| s.at_init.threads as f64;
    let max = |samples: &[Start], of: Measure| samples.iter().map(of).fold(0.0, f64::max);

    eprintln!(
        "| binary | init p50 | init max | init ÷ hello | by round | first answer p50 | first answer max | peak RSS p50 |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|");
    for (subject, samples) in subjects.iter().zip(starts) {
        eprintln!(
            "| {} | {:.1} ms | {:.1} ms | {} | {:.1} ms | {:.1} ms | {:.1} MiB |",
            subject.name,
            median(samples, init),
            max(samples, init),
            against(samples, hello, init),
            median(samples, answer),
            max(samples, answer),
            median(samples, rss),
        );
    }
    eprintln!();
    eprintln!(
        "| binary | threads | CPU to init p50 | CPU ÷ hello | by round | CPU ÷ hello current-thread | by round | page faults to init p50 | page faults ÷ hello |"
    );
    eprintln!("|---|---|---|---|---|---|---|---|---|");
    for (subject, samples) in subjects.iter().zip(starts) {
        eprintln!(
            "| {} | {:.0} | {:.2} ms | {} | {} | {:.0} | {:.2}× |",
            subject.name,
            median(samples, threads),
            median(samples, cpu),
            against(samples, hello, cpu),
            against(samples, hello_current_thread, cpu),
            median(samples, faults),
            median(samples, faults) / median(hello, faults).max(1.0),
        );
    }
}

/// Prints one Markdown table setting build `this` beside build `that`, one row per binary: its
/// init and CPU to init in `this` divided by its start of the same round in `that` (median and
/// quartiles), and its page faults in each. Below 1× `this` starts faster.
fn compare(subjects: &[Subject], dirs: [&Path; 2], this: &[Vec<Start>], that: &[Vec<Start>]) {
    let ratio = |mine: &[Start], theirs: &[Start], of: Measure| {
        by_round(mine, theirs, of).map_or_else(
            || "–".to_owned(),
            |[p25, p50, p75]| format!("{p50:.3}× ({p25:.3}–{p75:.3})"),
        )
    };
    let [this_dir, that_dir] = dirs.map(Path::display);
    eprintln!("{this_dir} ÷ {that_dir}, start by start in the same round:\n");
    eprintln!("| binary | init | CPU to init | page faults to init p50 |");
    eprintln!("|---|---|---|---|");
    for ((subject, mine), theirs) in subjects.iter().zip(this).zip(that) {
        eprintln!(
            "| {} | {} | {} | {:.0} against {:.0} |",
            subject.name,
            ratio(mine, theirs, init),
            ratio(mine, theirs, cpu),
            median(mine, faults),
            median(theirs, faults),
        );
    }
}

/// One figure of a start.
type Measure = fn(&Start) -> f64;

/// Init, in milliseconds.
fn init(start: &Start) -> f64 {
    ms(start.init)
}

/// CPU time to init, in milliseconds.
fn cpu(start: &Start) -> f64 {
    ms(start.at_init.cpu)
}

/// Page faults to init.
fn faults(start: &Start) -> f64 {
    start.at_init.page_faults as f64
}

/// The median of `of` over `samples` (0 for none).
fn median(samples: &[Start], of: Measure) -> f64 {
    quartiles(samples.iter().map(of).collect()).map_or(0.0, |[_, p50, _]| p50)
}

/// The quartiles of `of` of each start in `samples` divided by `of` of the start beside it, of
/// the same round, in `beside`; `None` for none.
fn by_round(samples: &[Start], beside: &[Start], of: Measure) -> Option<[f64; 3]> {
    quartiles(
        samples
            .iter()
            .zip(beside)
            .map(|(start, other)| of(start) / of(other).max(f64::MIN_POSITIVE))
            .collect(),
    )
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
