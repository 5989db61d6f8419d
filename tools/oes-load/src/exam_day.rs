//! The exam day's actors, through the public HTTP API only: the instructor publishes the exam
//! and reads the results; each student signs in (retrying `503 busy` after its
//! `Retry-After`), opens the exam, starts the attempt, fetches the paper, saves answers every
//! few seconds, submits, and looks at their attempts.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::api::{Answer, Client, Phase, query_escape};
use crate::rng::Rng;

/// How long the staff's sign-ins before the exam day keep trying again after `503 busy`: a
/// server that stays busy that long with nobody else signing in will not hold an exam day.
pub const SETUP_SIGN_IN_PATIENCE: Duration = Duration::from_secs(300);

/// Sends a request and insists on a 2xx: anything else is the failure's description.
pub(crate) async fn expect_ok(
    client: &Client,
    phase: Phase,
    route: &'static str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Answer, String> {
    let answer = client
        .call(phase, route, method, path, body)
        .await
        .map_err(|e| format!("{route} {e}"))?;
    if answer.is_success() {
        Ok(answer)
    } else {
        Err(format!("{route} {}", answer.describe()))
    }
}

/// Signs `client` in as `email`: a `503 busy` is tried again after its `Retry-After` (plus up
/// to 250 ms of jitter from `jitter`, a stream of its own, so a refused burst does not come back
/// as one), however often it comes, until the next try would come after `give_up_at`. A busy
/// answer spends none of the account's sign-in budget (auth-api takes a place in its hash pool
/// before any limit counts the attempt: `docs/BENCHMARKS.md`), so a server that is busy many
/// times and then lets the student in costs only time; one that stays busy fails the sign-in
/// at `give_up_at`. `on_busy` is called for each busy answer. Returns the time from the first
/// attempt to the token, busy answers and waits included.
pub async fn sign_in(
    client: &mut Client,
    phase: Phase,
    email: &str,
    password: &str,
    jitter: &mut Rng,
    give_up_at: tokio::time::Instant,
    on_busy: impl Fn(),
) -> Result<Duration, String> {
    let started = Instant::now();
    let body = json!({ "email": email, "password": password });
    let mut busy = 0;
    loop {
        let answer = client
            .call(
                phase,
                "POST /auth/login",
                Method::POST,
                "/auth/login",
                Some(&body),
            )
            .await
            .map_err(|e| format!("POST /auth/login {e}"))?;
        if answer.is_busy() {
            busy += 1;
            on_busy();
            let wait = answer.retry_after.unwrap_or(Duration::from_secs(1))
                + Duration::from_millis(jitter.below(250));
            if tokio::time::Instant::now() + wait > give_up_at {
                return Err(format!(
                    "POST /auth/login {} {busy} time(s), and the next try would come too late",
                    answer.describe()
                ));
            }
            tokio::time::sleep(wait).await;
            continue;
        }
        if !answer.is_success() {
            return Err(format!("POST /auth/login {}", answer.describe()));
        }
        let token = answer
            .str("/access_token")
            .ok_or("POST /auth/login: no access_token")?;
        client.set_token(token.to_owned());
        return Ok(started.elapsed());
    }
}

/// The exam as published.
#[derive(Debug, Clone)]
pub struct Exam {
    /// Its id.
    pub id: String,
    /// Its title (unique to the run: the result emails' subject names it).
    pub title: String,
}

/// Options per question.
const OPTIONS: usize = 4;

/// The instructor creates an exam of `questions` questions (long enough for the day, a few
/// attempts allowed per student), adds them and publishes it.
pub async fn publish(
    instructor: &Client,
    title: &str,
    questions: usize,
    rng: &mut Rng,
) -> Result<Exam, String> {
    let phase = Phase::Setup;
    let exam = expect_ok(
        instructor,
        phase,
        "POST /exams",
        Method::POST,
        "/exams",
        Some(&json!({
            "title": title,
            "description": "oes-load: an exam day played by a load generator",
            "duration_minutes": 120,
            "pass_mark_percent": 50,
            "max_attempts": 3,
        })),
    )
    .await?;
    let id = exam
        .str("/exam_id")
        .ok_or("POST /exams: no exam_id")?
        .to_owned();
    for n in 1..=questions {
        let options: Vec<String> = (1..=OPTIONS)
            .map(|o| format!("option {o} of question {n}"))
            .collect();
        expect_ok(
            instructor,
            phase,
            "POST /exams/{id}/questions",
            Method::POST,
            &format!("/exams/{id}/questions"),
            Some(&json!({
                "text": format!("Question {n}: which option is right?"),
                "options": options,
                "correct_option": rng.below(OPTIONS as u64),
                "points": 1 + rng.below(3),
            })),
        )
        .await?;
    }
    expect_ok(
        instructor,
        phase,
        "POST /exams/{id}/publish",
        Method::POST,
        &format!("/exams/{id}/publish"),
        None,
    )
    .await?;
    Ok(Exam {
        id,
        title: title.to_owned(),
    })
}

/// The results the instructor reads (`GET /exams/{id}/results`, paged): how many attempts are
/// listed as submitted.
pub async fn read_results(
    instructor: &Client,
    exam_id: &str,
    max_pages: usize,
) -> Result<usize, String> {
    let mut submitted = 0;
    let mut cursor: Option<String> = None;
    for _ in 0..max_pages {
        let mut path = format!("/exams/{exam_id}/results?limit=100");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={}", query_escape(cursor)));
        }
        let answer = expect_ok(
            instructor,
            Phase::Results,
            "GET /exams/{id}/results",
            Method::GET,
            &path,
            None,
        )
        .await?;
        submitted += answer
            .body
            .get("results")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|r| r.get("status").and_then(Value::as_str) == Some("submitted"))
            .count();
        cursor = answer.str("/next_cursor").map(str::to_owned);
        if cursor.is_none() {
            return Ok(submitted);
        }
    }
    Err(format!(
        "GET /exams/{{id}}/results: more than {max_pages} pages"
    ))
}

/// How the students sit the exam.
#[derive(Debug, Clone)]
pub struct Sitting {
    /// The exam.
    pub exam_id: String,
    /// Their password.
    pub password: String,
    /// Answer saves before the submit.
    pub saves: u32,
    /// Time between saves (± 20 %, per student).
    pub save_every: Duration,
    /// The end of the exam day: a sign-in still told busy then gives up.
    pub deadline: tokio::time::Instant,
}

/// The counts the progress bar shows.
#[derive(Debug)]
pub struct Progress {
    bar: ProgressBar,
    signed_in: AtomicU64,
    submitted: AtomicU64,
    busy: AtomicU64,
    failed: AtomicU64,
}

impl Progress {
    /// Over `bar` (one tick per student done).
    pub fn new(bar: ProgressBar) -> Self {
        Self {
            bar,
            signed_in: AtomicU64::new(0),
            submitted: AtomicU64::new(0),
            busy: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    fn bump(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
        self.bar.set_message(format!(
            "signed in {} · submitted {} · busy {} · failed {}",
            self.signed_in.load(Ordering::Relaxed),
            self.submitted.load(Ordering::Relaxed),
            self.busy.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        ));
    }

    /// The bar.
    pub fn bar(&self) -> &ProgressBar {
        &self.bar
    }
}

/// What one student got done.
#[derive(Debug, Clone, Default)]
pub struct StudentRun {
    /// Their address.
    pub email: String,
    /// Their time to a token, once signed in (busy answers and waits included).
    pub signed_in: Option<Duration>,
    /// `503 busy` answers to their sign-in (also when it failed in the end).
    pub busy: u32,
    /// Their attempt, once started.
    pub attempt_id: Option<String>,
    /// When their submit was answered 200, since the run started.
    pub submitted_at: Option<Duration>,
    /// What stopped them, if anything did.
    pub failure: Option<String>,
}

/// The failure of a student still at it when the exam day's time ran out.
pub const RAN_OUT: &str = "still at it when the exam day's time ran out";

/// One student's exam: never fails, the failure is in the [`StudentRun`]. `rng` makes the
/// student's choices (answers, the time between saves); `jitter`, a stream apart, spreads its
/// sign-in's retries; it stops at the sitting's deadline, keeping what the student did.
pub async fn sit(
    mut client: Client,
    email: String,
    mut rng: Rng,
    mut jitter: Rng,
    sitting: Arc<Sitting>,
    progress: Arc<Progress>,
    since_start: impl Fn() -> Duration,
) -> StudentRun {
    let mut run = StudentRun {
        email,
        ..StudentRun::default()
    };
    // Stopped at the exam day's deadline, the run keeps what it recorded by then (signed in,
    // started, submitted): a submit that landed still expects its email.
    let steps = sit_steps(
        &mut client,
        &mut run,
        &mut rng,
        &mut jitter,
        &sitting,
        &progress,
        &since_start,
    );
    let outcome = tokio::time::timeout_at(sitting.deadline, steps)
        .await
        .unwrap_or_else(|_| Err(RAN_OUT.into()));
    if let Err(failure) = outcome {
        run.failure = Some(failure);
        progress.bump(&progress.failed);
    }
    progress.bar.inc(1);
    run
}

async fn sit_steps(
    client: &mut Client,
    run: &mut StudentRun,
    rng: &mut Rng,
    jitter: &mut Rng,
    sitting: &Sitting,
    progress: &Progress,
    since_start: &impl Fn() -> Duration,
) -> Result<(), String> {
    let phase = Phase::ExamDay;
    let busy = AtomicU64::new(0);
    let signed_in = sign_in(
        client,
        phase,
        &run.email,
        &sitting.password,
        jitter,
        sitting.deadline,
        || {
            busy.fetch_add(1, Ordering::Relaxed);
            progress.bump(&progress.busy);
        },
    )
    .await;
    run.busy = busy.load(Ordering::Relaxed) as u32;
    run.signed_in = Some(signed_in?);
    progress.bump(&progress.signed_in);

    let exam = &sitting.exam_id;
    expect_ok(
        client,
        phase,
        "GET /exams/{id}",
        Method::GET,
        &format!("/exams/{exam}"),
        None,
    )
    .await?;
    let started = expect_ok(
        client,
        phase,
        "POST /exams/{id}/attempts",
        Method::POST,
        &format!("/exams/{exam}/attempts"),
        None,
    )
    .await?;
    let attempt = started
        .str("/attempt_id")
        .ok_or("POST /exams/{id}/attempts: no attempt_id")?
        .to_owned();
    run.attempt_id = Some(attempt.clone());
    let paper = expect_ok(
        client,
        phase,
        "GET /attempts/{id}",
        Method::GET,
        &format!("/attempts/{attempt}"),
        None,
    )
    .await?;
    let questions: Vec<(String, u64)> = paper
        .body
        .get("questions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|q| {
            let id = q.get("question_id")?.as_str()?.to_owned();
            let options = q.get("options")?.as_array()?.len() as u64;
            Some((id, options))
        })
        .collect();
    if questions.is_empty() {
        return Err("GET /attempts/{id}: no questions on the paper".into());
    }
    let choices: Vec<u64> = questions.iter().map(|(_, n)| rng.below(*n)).collect();

    let saves = sitting.saves.max(1) as usize;
    for k in 1..=saves {
        let jitter = 0.8 + 0.4 * rng.fraction();
        tokio::time::sleep(sitting.save_every.mul_f64(jitter)).await;
        let answered = (k * questions.len()).div_ceil(saves);
        let answers: Map<String, Value> = questions
            .iter()
            .zip(&choices)
            .take(answered)
            .map(|((id, _), choice)| (id.clone(), Value::from(*choice)))
            .collect();
        expect_ok(
            client,
            phase,
            "PUT /attempts/{id}/answers",
            Method::PUT,
            &format!("/attempts/{attempt}/answers"),
            Some(&json!({ "answers": answers })),
        )
        .await?;
    }
    let submitted = expect_ok(
        client,
        phase,
        "POST /attempts/{id}/submit",
        Method::POST,
        &format!("/attempts/{attempt}/submit"),
        None,
    )
    .await?;
    if submitted.str("/status") != Some("submitted") {
        return Err(format!(
            "POST /attempts/{{id}}/submit: status {:?}, not submitted",
            submitted.str("/status")
        ));
    }
    run.submitted_at = Some(since_start());
    progress.bump(&progress.submitted);
    expect_ok(
        client,
        phase,
        "GET /me/attempts",
        Method::GET,
        "/me/attempts",
        None,
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU32;

    use indicatif::ProgressBar;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::api::Recorder;

    /// A stand-in for the API, enough for one student's exam day: it answers the first `busy`
    /// sign-ins `503 busy` with `Retry-After: 0`, and keeps each answers body the student
    /// saves.
    struct Server {
        base: String,
        busy: AtomicU32,
        saved: Mutex<Vec<Value>>,
        /// `GET /me/attempts` never answers.
        stall_listing: bool,
    }

    impl Server {
        async fn start(busy: u32) -> Arc<Self> {
            Self::start_with(busy, false).await
        }

        async fn start_with(busy: u32, stall_listing: bool) -> Arc<Self> {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let server = Arc::new(Self {
                base: format!("http://{}", listener.local_addr().expect("address")),
                busy: AtomicU32::new(busy),
                saved: Mutex::new(Vec::new()),
                stall_listing,
            });
            let serving = server.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    tokio::spawn(serving.clone().answer(stream));
                }
            });
            server
        }

        /// Reads one request and answers it; the connection closes after it.
        async fn answer(self: Arc<Self>, mut stream: TcpStream) {
            let mut request = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head, body) = loop {
                let Ok(n) = stream.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                request.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&request).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .filter_map(|line| line.split_once(':'))
                        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        break (head.to_owned(), body.to_owned());
                    }
                }
            };
            let line = head.lines().next().unwrap_or("");
            if self.stall_listing && line.starts_with("GET /me/attempts ") {
                std::future::pending::<()>().await;
            }
            let (status, extra, reply) = self.route(line, &body);
            let reply = reply.to_string();
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{reply}",
                reply.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }

        fn route(&self, line: &str, body: &str) -> (u16, &'static str, Value) {
            match line.split(' ').take(2).collect::<Vec<_>>()[..] {
                ["POST", "/auth/login"] => {
                    let busy = self
                        .busy
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if busy {
                        (
                            503,
                            "retry-after: 0\r\n",
                            json!({ "error": { "code": "busy" } }),
                        )
                    } else {
                        (200, "", json!({ "access_token": "token" }))
                    }
                }
                ["POST", "/exams/e/attempts"] => (201, "", json!({ "attempt_id": "a" })),
                ["GET", "/attempts/a"] => {
                    let questions: Vec<Value> = (0..20)
                        .map(|n| json!({ "question_id": format!("q{n}"), "options": [1, 2, 3, 4] }))
                        .collect();
                    (200, "", json!({ "questions": questions }))
                }
                ["PUT", "/attempts/a/answers"] => {
                    let saved = serde_json::from_str(body).unwrap_or(Value::Null);
                    self.saved.lock().expect("lock").push(saved);
                    (200, "", json!({}))
                }
                ["POST", "/attempts/a/submit"] => (200, "", json!({ "status": "submitted" })),
                ["GET", "/exams/e" | "/me/attempts"] => (200, "", json!({})),
                _ => (404, "", json!({ "error": { "code": "not_found" } })),
            }
        }

        fn client(&self) -> Client {
            Client::new(&self.base, None, Duration::from_secs(10), Recorder::new()).expect("client")
        }
    }

    /// Student 1 of seed 1 sits the exam on a server that is first busy `busy` times: what it
    /// saved, and how it went.
    async fn sit_through(busy: u32) -> (Vec<Value>, StudentRun) {
        sit_on(Server::start(busy).await, Duration::from_secs(60)).await
    }

    /// Student 1 of seed 1 sits the exam on `server`, the exam day ending `within` from now.
    async fn sit_on(server: Arc<Server>, within: Duration) -> (Vec<Value>, StudentRun) {
        let sitting = Arc::new(Sitting {
            exam_id: "e".into(),
            password: "password".into(),
            saves: 3,
            save_every: Duration::from_millis(1),
            deadline: tokio::time::Instant::now() + within,
        });
        let run = sit(
            server.client(),
            "s1@x.org".into(),
            Rng::fork(1, 1),
            Rng::jitter(1, 1),
            sitting,
            Arc::new(Progress::new(ProgressBar::hidden())),
            || Duration::ZERO,
        )
        .await;
        let saved = server.saved.lock().expect("lock").clone();
        (saved, run)
    }

    #[tokio::test]
    async fn busy_answers_to_the_sign_in_change_none_of_the_students_choices() {
        let (calm, calm_run) = sit_through(0).await;
        let (busy, busy_run) = sit_through(5).await;
        assert_eq!(calm_run.failure, None);
        assert_eq!(busy_run.failure, None);
        assert_eq!(busy_run.busy, 5);
        assert_eq!(calm.len(), 3);
        assert_eq!(calm, busy);
    }

    /// A student whose submit landed but whose last read stalls past the exam day's end: the
    /// run says so and keeps the attempt and the submit (its result email is expected).
    #[tokio::test]
    async fn a_student_stopped_by_the_deadline_keeps_what_they_did() {
        let server = Server::start_with(0, true).await;
        let (saved, run) = sit_on(server, Duration::from_secs(1)).await;
        assert_eq!(saved.len(), 3);
        assert_eq!(run.failure.as_deref(), Some(RAN_OUT));
        assert_eq!(run.attempt_id.as_deref(), Some("a"));
        assert!(run.submitted_at.is_some(), "{run:?}");
        assert!(run.signed_in.is_some(), "{run:?}");
    }

    #[tokio::test]
    async fn a_sign_in_told_busy_many_times_signs_in_before_its_deadline() {
        let server = Server::start(15).await;
        let mut client = server.client();
        let busy = AtomicU32::new(0);
        let signed_in = sign_in(
            &mut client,
            Phase::Setup,
            "s1@x.org",
            "password",
            &mut Rng::jitter(1, 1),
            tokio::time::Instant::now() + Duration::from_secs(60),
            || {
                busy.fetch_add(1, Ordering::SeqCst);
            },
        )
        .await;
        assert!(signed_in.is_ok(), "{signed_in:?}");
        assert_eq!(busy.load(Ordering::SeqCst), 15);
    }

    #[tokio::test]
    async fn a_server_busy_past_the_deadline_fails_the_sign_in() {
        let server = Server::start(u32::MAX).await;
        let mut client = server.client();
        let started = tokio::time::Instant::now();
        let signed_in = sign_in(
            &mut client,
            Phase::Setup,
            "s1@x.org",
            "password",
            &mut Rng::jitter(1, 1),
            started + Duration::from_secs(1),
            || {},
        )
        .await;
        let error = signed_in.expect_err("signed in though the server was always busy");
        assert!(error.contains("503 busy"), "{error}");
        // No wait past the deadline: only the last try's round trip after it.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
