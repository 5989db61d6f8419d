//! Handler latency of `GET /exams/{id}/questions` through exam-api's real handler, real Redis
//! and DynamoDB in the emulator: on a cache hit, on a miss (the questions' entry dropped before
//! each request), and, in the same run, a bare Redis `GET` round trip of a value of the same
//! size, the floor a hit cannot go below.

use std::sync::Arc;
use std::time::{Duration, Instant};

use exam_api::ExamApi;
use lambda_http::Request;
use oes_adapters::aws::AwsClients;
use oes_adapters::redis_cache::RedisTopology;
use oes_adapters::resources::provision;
use oes_domain::clock::{Clock, SystemClock};
use oes_domain::exam::{Exam, ExamFields, ExamStatus, Question, QuestionFields, limits};
use oes_domain::ports::{BoxError, UserUpdate};
use oes_domain::security::{JwtKeys, JwtSettings, Secret};
use oes_domain::user::{DisplayName, Email, Role, User, UserId, UserStatus};
use oes_runtime::config::{ApiConfig, CacheConfig, ResourceConfig};
use oes_runtime::wiring::ApiAdapters;
use redis::AsyncCommands;

use crate::stats::{percentiles, row};

const QUESTIONS: usize = 10;

fn var(name: &str) -> Result<String, BoxError> {
    std::env::var(name)
        .map_err(|_| format!("set {name} (eval \"$(scripts/services.sh env)\")").into())
}

/// The Lambda request for `GET path` with `token`, decoded as the runtime decodes it.
fn request(path: &str, token: &str) -> Result<Request, BoxError> {
    let event = serde_json::json!({
        "version": "2.0", "routeKey": "GET /exams/{exam_id}/questions", "rawPath": path,
        "rawQueryString": "", "headers": {"authorization": format!("Bearer {token}")},
        "requestContext": {"accountId": "0", "apiId": "bench", "domainName": "bench",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "oes-bench"},
            "requestId": "bench", "routeKey": "GET /exams/{exam_id}/questions",
            "stage": "$default", "time": "", "timeEpoch": 0},
        "isBase64Encoded": false,
    });
    Ok(oes_runtime::http::request_from_str(&event.to_string())?)
}

/// Runs `iterations` requests of each kind and prints their percentiles.
pub async fn run(iterations: usize) -> Result<(), BoxError> {
    let endpoint = var("AWS_ENDPOINT_URL")?;
    let redis_url = var("REDIS_URL")?;
    let clients = AwsClients::load(Some(&endpoint)).await?;
    let prefix = format!("bench{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let provisioned = provision(&clients, &prefix, "noreply@example.com").await?;
    let jwt = JwtSettings {
        secret: Secret::new(format!("{prefix}-bench-secret-bench-secret-bench")),
        issuer: "oes".into(),
        audience: "oes-api".into(),
        ttl_seconds: 3600,
    };
    let config = ApiConfig {
        resources: ResourceConfig::from(&provisioned),
        cache: CacheConfig {
            redis_url: Some(Secret::new(redis_url.clone())),
            topology: RedisTopology::Standalone,
            prefix: prefix.clone(),
            settings: Default::default(),
        },
        jwt: jwt.clone(),
    };
    let adapters = ApiAdapters::aws(&clients, &config)?;
    let api = ExamApi::new(&adapters, JwtKeys::new(&jwt), Arc::new(SystemClock));

    // A student, and a published exam of ten questions owned by an instructor.
    let now = SystemClock.now();
    let user = |role: Role| User {
        id: UserId::generate(),
        email: Email::parse(&format!("{}@example.com", uuid::Uuid::new_v4().simple()))
            .unwrap_or_else(|_| unreachable!("a valid address")),
        name: DisplayName::parse("Bench").unwrap_or_else(|_| unreachable!("a valid name")),
        password_hash: String::new(),
        role,
        status: UserStatus::Active,
        token_version: 0,
        email_version: 0,
        created_at: now,
        updated_at: now,
    };
    // The exam's owner reads its questions (students see them only inside their attempt).
    let owner = user(Role::Instructor);
    adapters.users.create(&owner).await?;
    let owner = adapters
        .users
        .update(&owner.id, UserUpdate::Role(Role::Instructor), now)
        .await?;
    let fields = ExamFields {
        title: "Benchmark exam".into(),
        description: "Ten questions".into(),
        duration_minutes: 30,
        pass_mark_percent: 50,
    };
    let mut exam = Exam::draft(owner.id.clone(), fields, now);
    adapters.exams.create_exam(&exam).await?;
    for i in 0..QUESTIONS {
        let options: Vec<String> = (0..4)
            .map(|o| format!("Option {o} of question {i}"))
            .collect();
        let text = format!(
            "Question {i}: which option is right? {}",
            "lorem ipsum ".repeat(8)
        );
        let fields = QuestionFields::parse(&text, &options, 1, 5)?;
        let question = Question::new(exam.id.clone(), fields, now);
        adapters
            .exams
            .add_question(&question, limits::MAX_QUESTIONS)
            .await?;
    }
    exam = adapters
        .exams
        .get_exam(&exam.id)
        .await?
        .ok_or("exam vanished")?;
    let expected = exam.version;
    exam.status = ExamStatus::Published;
    exam.published_at = Some(now);
    exam.version += 1;
    adapters.exams.save_exam(&exam, expected).await?;

    let token = JwtKeys::new(&jwt).issue(&owner, now)?;
    let path = format!("/exams/{}/questions", exam.id);
    let questions_key = adapters.cache.keys().exam_questions(&exam.id);
    let mut redis = redis::Client::open(redis_url.as_str())?
        .get_multiplexed_async_connection()
        .await?;

    // Warm up: connections, the profile and the exam in the cache, a sized value for GET.
    let mut size = 0;
    for _ in 0..20 {
        let response = exam_api::handle(&api, request(&path, &token)?).await?;
        size = response.body().len();
    }
    let bare_key = format!("{prefix}:bare");
    redis.set::<_, _, ()>(&bare_key, "x".repeat(size)).await?;

    let (mut hits, mut misses, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..iterations {
        let hit = request(&path, &token)?;
        let started = Instant::now();
        let response = exam_api::handle(&api, hit).await?;
        hits.push(started.elapsed());
        if response.headers().get("x-cache").map(|v| v.as_bytes()) != Some(b"hit".as_slice()) {
            return Err("expected a cache hit".into());
        }

        adapters
            .cache
            .invalidate(std::slice::from_ref(&questions_key))
            .await;
        let miss = request(&path, &token)?;
        let started = Instant::now();
        let response = exam_api::handle(&api, miss).await?;
        misses.push(started.elapsed());
        if response.headers().get("x-cache").map(|v| v.as_bytes()) != Some(b"miss".as_slice()) {
            return Err("expected a cache miss".into());
        }

        let started = Instant::now();
        let value: Option<String> = redis.get(&bare_key).await?;
        bare.push(started.elapsed());
        if value.map(|v| v.len()) != Some(size) {
            return Err("the bare GET lost its value".into());
        }
    }
    let stats = |samples: &mut Vec<Duration>| percentiles(samples).ok_or("no samples");
    eprintln!("(response body {size} bytes, {QUESTIONS} questions)");
    row("bare Redis GET (same size)", iterations, &stats(&mut bare)?);
    row(
        "GET /exams/{id}/questions, cache hit",
        iterations,
        &stats(&mut hits)?,
    );
    row(
        "GET /exams/{id}/questions, cache miss (DynamoDB in moto)",
        iterations,
        &stats(&mut misses)?,
    );
    Ok(())
}
