//! `oes-load`: plays an exam day against an oes base URL and reports how it went.
//!
//! ```sh
//! OES_DEMO_PASSWORD=… cargo run --release -p oes-load -- --base-url http://127.0.0.1:3000 --students 300
//! ```
//!
//! Through the public HTTP API only, so it runs against `oes-local` (embedded or real mode) or a
//! deployed stack alike: the instructor publishes an exam of `--questions` questions; the class
//! (accounts that exist and are verified: `student-{n}@example.com` by default, what
//! `oes-local --seed-students N` creates) signs in over `--arrive-over`, each student from its
//! own loopback address (127.w.x.y) when the API is on loopback; each starts the attempt, fetches
//! the paper, saves answers `--saves` times `--save-every` apart and submits; the instructor reads
//! the results; the admin watches the queues (`GET /admin/queues`,
//! `GET /admin/email-jobs/counts`) until the result emails are sent, then lists their job
//! records. The report (stdout, and `report.md`, `report.json` and the chart `latency.svg` in
//! `--out`) has each route's p50/p95/p99/max and errors by status, the requests per second, the
//! cache hit ratio (`x-cache`), the sign-ins' time to a token under argon2 contention with the
//! `503 busy` answers apart, and the emails queued, sent and the drain time.
//!
//! The run fails (exit 1) unless: no 5xx but `503 busy`; every submitted attempt has exactly one
//! result email sent — its student exactly one `sent` job record of the run's exam (its subject
//! names the exam), whose history shows one send, and with `--outbox` (embedded mode) exactly
//! one `.eml` linking to it — none lost, none twice; and every student
//! sat the exam (a run whose class never signed in would pass the email check with nothing to
//! check). Exit 2: the exam day could not be set up.
//!
//! Design: a client of its own, on tokio and reqwest (the workspace's HTTP client), rather than
//! goose. Each student is a stateful script — a token, an attempt id and its paper carried from
//! one request to the next, a sign-in retried after `Retry-After`, answers saved on a schedule —
//! with its own client address; goose models users as weighted, independent, repeating
//! transactions on one shared client, so the script, the per-student source address and "run
//! once, then stop" would all be worked around, and its report has none of what this one needs
//! (the cache header, the busy answers apart, the email check). Latencies are kept as every
//! sample (a run is bounded: N students × a dozen requests, about 100 KB per 300 students), so
//! percentiles are exact nearest-rank values and the per-second series for the chart come from
//! the same data; an HDR histogram would only approximate both. Everything is bounded: each
//! request times out (`--request-timeout`), the exam day ends at `--max-duration`, the drain at
//! `--drain-timeout`, and listings stop after a fixed number of pages.

mod api;
mod chart;
mod emails;
mod exam_day;
mod report;
mod rng;
mod stats;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use reqwest::Url;

use api::{Client, Phase, Recorder};
use emails::OnceCheck;
use exam_day::{Progress, Sitting, StudentRun};
use report::{Check, Report};
use rng::Rng;

/// Plays an exam day against an oes API and reports latency, cache hits and the result emails.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The API's base URL.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    base_url: String,
    /// Students in the class.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    students: u32,
    /// Questions on the exam.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=100))]
    questions: u32,
    /// The window the class signs in over (`60s`, `500ms`, `2m`).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    arrive_over: Duration,
    /// How arrivals are spread over the window.
    #[arg(long, value_enum, default_value_t = Arrival::Even)]
    arrival: Arrival,
    /// Seed of the random arrivals and of the answers.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Answer saves per student before the submit.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=100))]
    saves: u32,
    /// Time between a student's saves (± 20 %).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    save_every: Duration,
    /// The students' addresses: `{n}` is 1 to `--students`.
    #[arg(long, default_value = "student-{n}@example.com")]
    student_email: String,
    /// The instructor who publishes the exam.
    #[arg(long, default_value = "instructor@example.com")]
    instructor_email: String,
    /// The admin who watches the queues.
    #[arg(long, default_value = "admin@example.com")]
    admin_email: String,
    /// The password of every account used (students, instructor, admin).
    #[arg(long, env = "OES_DEMO_PASSWORD", hide_env_values = true)]
    password: String,
    /// Each student connects from its own loopback address (`auto`: when the base URL's host is
    /// an IPv4 loopback address).
    #[arg(long, value_enum, default_value_t = Addresses::Auto)]
    client_addresses: Addresses,
    /// Timeout of each request.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// The exam day stops here, students still at it count as failed (default: the window, the
    /// saves and three minutes more).
    #[arg(long, value_parser = parse_duration)]
    max_duration: Option<Duration>,
    /// How long the result emails may take to be sent after the exam day.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    drain_timeout: Duration,
    /// How long after the last submit the once-checks are made (after the emails drain): the
    /// sweep checks each result email two minutes after its submit, and queues or sends it again
    /// if it finds it missing, so a second copy shows only after that. The default covers the
    /// check and one run of AWS's minutely sweep; oes-local sweeps every 10 s.
    #[arg(long, default_value = "190s", value_parser = parse_duration)]
    settle: Duration,
    /// How often the admin polls the queues during the exam day.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    poll_every: Duration,
    /// The embedded mode's outbox folder: also check the result emails there.
    #[arg(long)]
    outbox: Option<PathBuf>,
    /// In real mode, the AWS emulator's state (`$AWS_ENDPOINT_URL/moto-api/data.json`): also
    /// check the result emails its SES accepted — the mail itself, which the job records cannot
    /// show for a send whose answer was lost.
    #[arg(long)]
    ses_messages: Option<String>,
    /// Where report.md, report.json and latency.svg go.
    #[arg(long, default_value = "target/oes-load")]
    out: PathBuf,
    /// Worker threads of the load generator (it shares the machine with what it measures).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    threads: u32,
}

/// How arrivals are spread.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Arrival {
    /// One every window / N.
    Even,
    /// Uniformly at random over the window (from `--seed`).
    Random,
}

/// Whether students get their own client addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Addresses {
    /// When the API is on IPv4 loopback.
    Auto,
    /// Always (the API must be reachable from 127.w.x.y).
    On,
    /// Never.
    Off,
}

/// `60s`, `500ms`, `2m`, `1.5s`, or a number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?}: expected a duration such as 60s, 500ms or 2m"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        _ => return Err(format!("{text:?}: the unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

/// Student `n`'s own loopback address (from 1): 127.w.x.y with y in 1..=250, distinct for
/// every `n` up to millions.
fn student_address(n: u32) -> IpAddr {
    let y = (n % 250 + 1) as u8;
    let x = ((n / 250) % 250) as u8;
    let w = (1 + n / 62_500).min(254) as u8;
    IpAddr::V4(Ipv4Addr::new(127, w, x, y))
}

/// Whether `base`'s host is an IPv4 loopback address.
fn is_ipv4_loopback(base: &str) -> bool {
    Url::parse(base)
        .ok()
        .and_then(|url| url.host_str()?.parse::<Ipv4Addr>().ok())
        .is_some_and(|ip| ip.is_loopback())
}

fn log(message: impl std::fmt::Display) {
    eprintln!("oes-load: {message}");
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads as usize)
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            log(format!("error: starting the runtime: {e}"));
            std::process::exit(2);
        }
    };
    let code = runtime.block_on(async {
        match play(&args).await {
            Ok((report, series)) => match write(&args, &report, &series) {
                Ok(()) => {
                    if report.passed {
                        0
                    } else {
                        1
                    }
                }
                Err(e) => {
                    log(format!("error: {e}"));
                    2
                }
            },
            Err(e) => {
                log(format!("error: {e}"));
                2
            }
        }
    });
    // Students still waiting on a request past the deadline are dropped with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    std::process::exit(code);
}

/// Prints the report and writes it, with the chart, to `--out`.
fn write(
    args: &Args,
    report: &Report,
    series: &BTreeMap<&'static str, Vec<stats::Second>>,
) -> Result<(), String> {
    let markdown = report.markdown();
    print!("{markdown}");
    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("creating {}: {e}", args.out.display()))?;
    let json = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    for (name, text) in [
        ("report.md", markdown.as_str()),
        ("report.json", json.as_str()),
    ] {
        let path = args.out.join(name);
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    let title = format!(
        "oes-load: {} students over {:.0} s against {}",
        report.run.students, report.run.arrive_over_s, report.run.base_url
    );
    chart::draw(&args.out.join("latency.svg"), &title, series)?;
    log(format!(
        "wrote report.md, report.json and latency.svg to {}",
        args.out.display()
    ));
    Ok(())
}

/// The admin's view of the queues during the exam day: the deepest each got.
type Depths = Arc<Mutex<BTreeMap<String, i64>>>;

/// Waits, for at most `patience`, for the email lanes to have no message left; whether they
/// emptied.
async fn lanes_emptied(admin: &Client, patience: Duration) -> bool {
    let deadline = Instant::now() + patience;
    loop {
        if emails::on_the_lanes(admin, Phase::Results).await == Ok(0) {
            return true;
        }
        if Instant::now() >= deadline {
            log("the email lanes did not empty: a copy of a job may still be sent");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn note_depths(depths: &Depths, seen: Vec<(String, i64)>) {
    let mut depths = depths.lock().unwrap_or_else(PoisonError::into_inner);
    for (queue, depth) in seen {
        let deepest = depths.entry(queue).or_default();
        *deepest = (*deepest).max(depth);
    }
}

/// Plays the exam day; `Err` only when it cannot be set up.
async fn play(args: &Args) -> Result<(Report, BTreeMap<&'static str, Vec<stats::Second>>), String> {
    let recorder = Recorder::new();
    let base = args.base_url.as_str();
    let distinct = match args.client_addresses {
        Addresses::On => true,
        Addresses::Off => false,
        Addresses::Auto => is_ipv4_loopback(base),
    };
    let client = |local: Option<IpAddr>| {
        Client::new(base, local, args.request_timeout, recorder.clone())
            .map_err(|e| format!("building the HTTP client: {e}"))
    };
    let mut rng = Rng::new(args.seed);

    // Setup: the staff sign in, the instructor publishes the exam, the email counts before.
    // Their retries after `503 busy` draw on a stream of their own, so the exam's answers and
    // the arrivals are those of the seed however often the server was busy.
    let mut staff_jitter = Rng::jitter(args.seed, 0);
    let give_up_at = tokio::time::Instant::now() + exam_day::SETUP_SIGN_IN_PATIENCE;
    let mut instructor = client(None)?;
    exam_day::sign_in(
        &mut instructor,
        Phase::Setup,
        &args.instructor_email,
        &args.password,
        &mut staff_jitter,
        give_up_at,
        || {},
    )
    .await
    .map_err(|e| format!("the instructor {}: {e}", args.instructor_email))?;
    let mut admin = client(None)?;
    exam_day::sign_in(
        &mut admin,
        Phase::Setup,
        &args.admin_email,
        &args.password,
        &mut staff_jitter,
        give_up_at,
        || {},
    )
    .await
    .map_err(|e| format!("the admin {}: {e}", args.admin_email))?;
    // A quiet start: no result email of an earlier run still on its way, and the ones sent
    // listed, so that only this run's count.
    let quiet_since = Instant::now();
    let mut before = emails::counts(&admin, Phase::Setup).await?;
    while before.pending > 0 && quiet_since.elapsed() < args.drain_timeout {
        tokio::time::sleep(Duration::from_millis(500)).await;
        before = emails::counts(&admin, Phase::Setup).await?;
    }
    if before.pending > 0 {
        log(format!(
            "{} result emails were still on their way at the start: the drain waits for them too",
            before.pending
        ));
    }
    // This run's records are those sent from now on; a minute's margin for the store's clock,
    // and the ones sent in that minute (an earlier run's) set aside.
    let since = epoch_seconds() - 60;
    let earlier: BTreeSet<String> = emails::sent_records(&admin, Phase::Setup, since)
        .await?
        .into_iter()
        .map(|r| r.job_id)
        .collect();
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let title = format!("oes-load {}", &run_id[..12]);
    let exam = exam_day::publish(&instructor, &title, args.questions as usize, &mut rng).await?;
    log(format!(
        "published {} ({} questions); {} students arrive over {:?}",
        exam.id, args.questions, args.students, args.arrive_over
    ));

    // Each student's client, before the clock of the exam day starts.
    let clients = (1..=args.students)
        .map(|n| client(distinct.then(|| student_address(n))))
        .collect::<Result<Vec<_>, _>>()?;

    // The exam day.
    let day_start = recorder.elapsed();
    let day_started = Instant::now();
    let sitting_time = args.save_every.mul_f64(1.2 * f64::from(args.saves));
    let max_duration = args
        .max_duration
        .unwrap_or(args.arrive_over + sitting_time + Duration::from_secs(180));
    let deadline = tokio::time::Instant::from_std(day_started + max_duration);
    let bar = ProgressBar::with_draw_target(
        Some(u64::from(args.students)),
        ProgressDrawTarget::stderr_with_hz(4),
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} students done · {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(250));
    let progress = Arc::new(Progress::new(bar));
    let sitting = Arc::new(Sitting {
        exam_id: exam.id.clone(),
        password: args.password.clone(),
        saves: args.saves,
        save_every: args.save_every,
        deadline,
    });

    let depths: Depths = Arc::default();
    let (stop_monitor, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let monitor = {
        let admin = admin.clone();
        let depths = depths.clone();
        let every = args.poll_every;
        tokio::spawn(async move {
            loop {
                if let Ok(seen) = emails::queue_depths(&admin, Phase::ExamDay).await {
                    note_depths(&depths, seen);
                }
                let _ = emails::counts(&admin, Phase::ExamDay).await;
                tokio::select! {
                    _ = &mut stopped => break,
                    () = tokio::time::sleep(every) => {}
                }
            }
        })
    };

    let mut students = tokio::task::JoinSet::new();
    for (i, client) in (0..args.students).zip(clients) {
        let n = i + 1;
        let email = args.student_email.replace("{n}", &n.to_string());
        let offset = match args.arrival {
            Arrival::Even => args
                .arrive_over
                .mul_f64(f64::from(i) / f64::from(args.students)),
            Arrival::Random => args.arrive_over.mul_f64(rng.fraction()),
        };
        let student_rng = Rng::fork(args.seed, u64::from(n));
        let student_jitter = Rng::jitter(args.seed, u64::from(n));
        let sitting = sitting.clone();
        let progress = progress.clone();
        let recorder = recorder.clone();
        students.spawn(async move {
            let arrive = tokio::time::Instant::from_std(day_started + offset);
            tokio::time::sleep_until(arrive.min(deadline)).await;
            // It stops at the exam day's deadline itself, keeping what the student did by then.
            exam_day::sit(
                client,
                email,
                student_rng,
                student_jitter,
                sitting,
                progress,
                move || recorder.elapsed(),
            )
            .await
        });
    }
    let mut runs = Vec::with_capacity(args.students as usize);
    while let Some(joined) = students.join_next().await {
        match joined {
            Ok(run) => runs.push(run),
            Err(e) => log(format!("a student's task failed: {e}")),
        }
    }
    let day_end = recorder.elapsed();
    let _ = stop_monitor.send(());
    let _ = monitor.await;
    progress.bar().finish();

    // Results: the instructor reads them; the admin waits for the emails, then lists them.
    let submitted: Vec<&StudentRun> = runs.iter().filter(|r| r.submitted_at.is_some()).collect();
    let results_listed = match exam_day::read_results(&instructor, &exam.id, 1000).await {
        Ok(n) => Some(n),
        Err(e) => {
            log(format!("the instructor could not read the results: {e}"));
            None
        }
    };
    let last_submit = submitted.iter().filter_map(|r| r.submitted_at).max();
    let expected = submitted.len() as u64;
    let class: BTreeSet<String> = runs.iter().map(|r| r.email.clone()).collect();
    // The exam's result emails name it: its title is the run's own.
    let subject = format!("Your result for {}", exam.title);
    // The own records read while draining, by job id.
    let mut known = BTreeMap::new();
    let drain_started = Instant::now();
    let mut after = before;
    let mut drained_at = None;
    while drain_started.elapsed() < args.drain_timeout {
        if let Ok(seen) = emails::queue_depths(&admin, Phase::Results).await {
            note_depths(&depths, seen);
        }
        if let Ok(counts) = emails::counts(&admin, Phase::Results).await {
            after = counts;
            // This run's own sent records are read only when the counts cannot tell, and only
            // once nothing is pending (each job's own record once).
            let ours = if counts.pending > 0 || (before.exact && counts.exact) {
                None
            } else {
                match emails::sent_records(&admin, Phase::Results, since).await {
                    Ok(records) => emails::own_records(
                        &admin,
                        Phase::Results,
                        emails::of_run(&records, &class, &earlier),
                        &mut known,
                    )
                    .await
                    .ok()
                    .map(|()| emails::of_exam(known.values(), &subject).count() as u64),
                    Err(_) => None,
                }
            };
            if counts.pending == 0 && emails::sent_enough(&before, &counts, expected, ours) {
                drained_at = Some(recorder.elapsed());
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    log(match drained_at {
        Some(_) => "the result emails are sent; checking their job records".to_owned(),
        None => format!(
            "the result emails did not drain within {:?}",
            args.drain_timeout
        ),
    });
    // A second copy can only show once the sweep has checked each email, two minutes after its
    // submit (it queues or sends again then, if it finds one missing): the checks below wait
    // for that, `--settle` after the last submit.
    if drained_at.is_some()
        && let Some(last) = last_submit
    {
        let wait = (last + args.settle).saturating_sub(recorder.elapsed());
        if !wait.is_zero() {
            log(format!(
                "waiting {:.0} s for the sweep's email checks ({:?} after the last submit)",
                wait.as_secs_f64(),
                args.settle
            ));
            tokio::time::sleep(wait).await;
        }
    }
    // A copy still on a lane may yet be sent: the checks are made once the lanes are empty.
    let lanes_empty = drained_at.is_some() && lanes_emptied(&admin, args.drain_timeout).await;
    let submitted_emails: Vec<String> = submitted.iter().map(|r| r.email.clone()).collect();
    let mut send_delays = Vec::new();
    // Every own record read afresh: one read while draining may have been sent again since.
    let mut own = BTreeMap::new();
    let records = match emails::sent_records(&admin, Phase::Results, since).await {
        Ok(records) => emails::own_records(
            &admin,
            Phase::Results,
            emails::of_run(&records, &class, &earlier),
            &mut own,
        )
        .await
        .map(|()| {
            let ours: Vec<&emails::SentRecord> = emails::of_exam(own.values(), &subject).collect();
            send_delays.extend(ours.iter().map(|r| {
                Duration::from_secs(r.updated_at.saturating_sub(r.created_at).max(0) as u64)
            }));
            emails::records_check(&submitted_emails, ours)
        }),
        Err(e) => Err(e),
    };
    let submitted_attempts: Vec<String> = submitted
        .iter()
        .filter_map(|r| {
            r.attempt_id
                .as_deref()
                .map(|attempt| emails::outbox_key(attempt, &r.email))
        })
        .collect();
    let outbox = args.outbox.as_ref().map(|dir| {
        emails::outbox_attempts(dir, &subject)
            .map(|seen| emails::exactly_once(&submitted_attempts, &seen))
            .map_err(|e| format!("reading {}: {e}", dir.display()))
    });
    let ses = match &args.ses_messages {
        Some(url) => Some(
            async {
                let data: serde_json::Value = api::http_client(args.request_timeout)
                    .build()
                    .map_err(|e| e.to_string())?
                    .get(url)
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| e.to_string())?
                    .json()
                    .await
                    .map_err(|e| e.to_string())?;
                let seen = emails::ses_attempts(&data, &subject);
                Ok(emails::exactly_once(&submitted_attempts, &seen))
            }
            .await
            .map_err(|e: String| format!("reading {url}: {e}")),
        ),
        None => None,
    };

    // The report.
    let samples = recorder.samples();
    let day = day_end.saturating_sub(day_start);
    let day_requests = samples.iter().filter(|s| s.phase == Phase::ExamDay).count() as u64;
    let mut cache = stats::CacheCounts::default();
    for sample in &samples {
        cache.add(sample.cache);
    }
    let sign_ins: Vec<Duration> = runs.iter().filter_map(|r| r.signed_in).collect();
    let failures: Vec<&StudentRun> = runs.iter().filter(|r| r.failure.is_some()).collect();
    let server_errors = stats::server_errors(&samples);
    let mut series = stats::per_second(&samples, Phase::ExamDay, day_start);
    series.retain(|route, _| !route.starts_with("GET /admin"));

    let mut checks = vec![Check {
        name: "no 5xx but 503 busy".into(),
        passed: server_errors.is_empty(),
        detail: if server_errors.is_empty() {
            "none".into()
        } else {
            format!("{server_errors:?}")
        },
    }];
    let once_check = |name: &str, check: &Result<OnceCheck, String>| Check {
        name: name.into(),
        passed: lanes_empty && check.as_ref().is_ok_and(OnceCheck::passed),
        detail: match check {
            Ok(check) if lanes_empty => report::describe_once(check),
            Ok(check) if drained_at.is_some() => format!(
                "the lanes did not empty (a copy may still be sent); {}",
                report::describe_once(check)
            ),
            Ok(check) => format!("not drained; {}", report::describe_once(check)),
            Err(e) => e.clone(),
        },
    };
    checks.push(once_check(
        "every submitted attempt has exactly one result email sent (job records)",
        &records,
    ));
    if let Some(outbox) = &outbox {
        checks.push(once_check(
            "every submitted attempt has exactly one result email (outbox .eml files)",
            outbox,
        ));
    }
    if let Some(ses) = &ses {
        checks.push(once_check(
            "every submitted attempt has exactly one result email (the emulator's SES messages)",
            ses,
        ));
    }
    checks.push(everyone_check(
        &runs,
        submitted.len(),
        args.students as usize,
        results_listed,
    ));
    let passed = checks.iter().all(|c| c.passed);

    let report = Report {
        run: report::RunInfo {
            base_url: args.base_url.clone(),
            students: args.students as usize,
            questions: args.questions as usize,
            arrive_over_s: args.arrive_over.as_secs_f64(),
            arrival: format!("{:?}", args.arrival).to_lowercase(),
            seed: args.seed,
            saves: args.saves,
            save_every_s: args.save_every.as_secs_f64(),
            distinct_client_addresses: distinct,
            exam_id: exam.id.clone(),
            exam_title: exam.title.clone(),
        },
        exam_day: report::ExamDay {
            duration_s: day.as_secs_f64(),
            requests: day_requests,
            requests_per_second: stats::rate(day_requests, day),
            peak_requests_per_second: stats::peak_rate(&samples, Phase::ExamDay),
        },
        routes: stats::summarize(&samples),
        cache: report::Cache {
            counts: cache,
            hit_ratio: cache.hit_ratio(),
        },
        sign_in: report::SignIns {
            signed_in: sign_ins.len(),
            time_to_token: stats::Latency::of(&sign_ins),
            busy_answers: runs.iter().map(|r| u64::from(r.busy)).sum(),
            students_told_busy: runs.iter().filter(|r| r.busy > 0).count(),
        },
        students: report::Students {
            total: args.students as usize,
            started: runs.iter().filter(|r| r.attempt_id.is_some()).count(),
            submitted: submitted.len(),
            failed: failures.len(),
            failures: failures
                .iter()
                .take(20)
                .map(|r| format!("{}: {}", r.email, r.failure.as_deref().unwrap_or("")))
                .collect(),
            results_listed,
        },
        emails: report::Emails {
            before,
            after,
            queued: after.total().saturating_sub(before.total()),
            sent: after.sent.saturating_sub(before.sent),
            drain_s: drained_at
                .zip(last_submit)
                .map(|(drained, last)| drained.saturating_sub(last).as_secs_f64()),
            queued_to_sent: stats::Latency::of(&send_delays),
            max_queue_depth: depths
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
            records: records.unwrap_or_default(),
            outbox: outbox.and_then(Result::ok),
            ses: ses.and_then(Result::ok),
        },
        checks,
        passed,
    };
    Ok((report, series))
}

/// Now, in epoch seconds (the job records' clock).
fn epoch_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Whether every student sat the exam: each of them ran, submitted and is in the results, and
/// none stopped on an error, whenever it came (a failure after the submit counts too).
fn everyone_check(
    runs: &[StudentRun],
    submitted: usize,
    students: usize,
    results_listed: Option<usize>,
) -> Check {
    let failed = runs.iter().filter(|r| r.failure.is_some()).count();
    Check {
        name: "every student sat the exam and is in the results".into(),
        passed: submitted == runs.len()
            && runs.len() == students
            && results_listed == Some(submitted)
            && failed == 0,
        detail: format!(
            "{submitted} of {students} submitted, {failed} failed, the results list {}",
            results_listed.map_or_else(|| "nothing".into(), |n| n.to_string())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_student_who_failed_after_submitting_fails_the_check() {
        let run = |failure: Option<&str>| StudentRun {
            email: "s@example.com".into(),
            signed_in: Some(Duration::from_millis(5)),
            busy: 0,
            attempt_id: Some("a".into()),
            submitted_at: Some(Duration::from_secs(1)),
            failure: failure.map(str::to_owned),
        };
        let fine = [run(None), run(None)];
        assert!(everyone_check(&fine, 2, 2, Some(2)).passed);
        // Submitted and listed, then `GET /me/attempts` failed.
        let late = [run(None), run(Some("GET /me/attempts: 404"))];
        let check = everyone_check(&late, 2, 2, Some(2));
        assert!(!check.passed, "{}", check.detail);
        assert!(check.detail.contains("1 failed"), "{}", check.detail);
        assert!(!everyone_check(&fine, 1, 2, Some(1)).passed);
        assert!(!everyone_check(&fine, 2, 2, None).passed);
    }

    #[test]
    fn durations_parse_with_or_without_a_unit() {
        assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn each_student_gets_its_own_loopback_address() {
        let mut seen = BTreeSet::new();
        for n in 1..=200_000 {
            let ip = student_address(n);
            let IpAddr::V4(v4) = ip else {
                panic!("{ip} is not IPv4");
            };
            assert!(v4.is_loopback(), "{v4}");
            assert_ne!(v4.octets()[3], 0);
            assert!(seen.insert(v4), "{v4} twice");
        }
        assert!(is_ipv4_loopback("http://127.0.0.1:3000"));
        assert!(!is_ipv4_loopback(
            "https://abc.execute-api.eu-west-1.amazonaws.com"
        ));
        assert!(!is_ipv4_loopback("http://localhost:3000"));
    }
}
