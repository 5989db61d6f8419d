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

/// A sign-in gives up after this many `503 busy` answers: with the first attempt, the 10 that
/// one account gets from one address in 15 minutes (auth-api counts every attempt, a busy one
/// too, so an 11th would be refused 429 for the rest of the window).
pub const MAX_BUSY_RETRIES: u32 = 9;

/// Sends a request and insists on a 2xx: anything else is the failure's description.
async fn expect_ok(
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

/// Signs `client` in as `email`: a `503 busy` is retried after its `Retry-After` (plus up to
/// 250 ms of jitter, so a refused burst does not come back as one), at most
/// [`MAX_BUSY_RETRIES`] times. Returns the time from the first attempt to the token, busy
/// answers and waits included.
pub async fn sign_in(
    client: &mut Client,
    phase: Phase,
    email: &str,
    password: &str,
    rng: &mut Rng,
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
        if answer.is_busy() && busy < MAX_BUSY_RETRIES {
            busy += 1;
            on_busy();
            let wait = answer.retry_after.unwrap_or(Duration::from_secs(1))
                + Duration::from_millis(rng.below(250));
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

/// One student's exam: never fails, the failure is in the [`StudentRun`].
pub async fn sit(
    mut client: Client,
    email: String,
    mut rng: Rng,
    sitting: Arc<Sitting>,
    progress: Arc<Progress>,
    since_start: impl Fn() -> Duration,
) -> StudentRun {
    let mut run = StudentRun {
        email,
        ..StudentRun::default()
    };
    let outcome = sit_steps(
        &mut client,
        &mut run,
        &mut rng,
        &sitting,
        &progress,
        &since_start,
    )
    .await;
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
    sitting: &Sitting,
    progress: &Progress,
    since_start: &impl Fn() -> Duration,
) -> Result<(), String> {
    let phase = Phase::ExamDay;
    let busy = AtomicU64::new(0);
    let signed_in = sign_in(client, phase, &run.email, &sitting.password, rng, || {
        busy.fetch_add(1, Ordering::Relaxed);
        progress.bump(&progress.busy);
    })
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
