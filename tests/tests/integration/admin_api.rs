//! The admin API of the email pipeline through exam-api's handler: only admins, and the same
//! answers `oesctl` gives (counts, job records, dead letters, redrive).

use std::collections::BTreeSet;
use std::time::Duration;

use exam_api::admin::REDRIVE_STEP;
use futures_util::{StreamExt, stream};
use oes_domain::clock::{Clock, SystemClock};
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::pipeline::{EmailLanes, QueueAdmin};
use oes_domain::ports::{
    Delivery, JobConflict, JobLedger, JobStatus, MessageQueues, NewMessage, Outcome, QueueControl,
    QueueName, StoreError, UserUpdate,
};
use oes_domain::security::Secret;
use oes_domain::user::{Email, Role};
use oes_tests::exams::{ExamHarness, no_cache};
use oes_tests::{InMemoryApis, TestEnv, call, in_memory_apis, read, request};
use serde_json::{Value, json};

async fn exam(
    apis: &InMemoryApis,
    method: &str,
    path: &str,
    body: Option<&str>,
    bearer: Option<&str>,
) -> (u16, Value) {
    let response = exam_api::handle(&apis.exams, request(method, path, body, bearer))
        .await
        .unwrap_or_else(|e| panic!("invocation error: {e}"));
    read(&response)
}

/// Signs up `email` (verifying it), gives it `role`, and signs in.
async fn signed_in_as(apis: &InMemoryApis, email: &str, role: Role) -> String {
    let register = json!({"email": email, "password": "correct horse", "name": "Op"}).to_string();
    call(&apis.auth, "POST", "/auth/register", Some(&register), None).await;
    let token = oes_tests::take_verification_token(&apis.queue).await;
    let verify = json!({ "token": token }).to_string();
    call(
        &apis.auth,
        "POST",
        "/auth/verify-email",
        Some(&verify),
        None,
    )
    .await;
    let user = apis
        .users
        .find_by_email(&Email::parse(email).expect("valid"))
        .await
        .expect("read")
        .expect("registered");
    apis.users
        .update(&user.id, UserUpdate::Role(role), 0)
        .await
        .expect("role");
    let login = json!({"email": email, "password": "correct horse"}).to_string();
    let (_, session) = call(&apis.auth, "POST", "/auth/login", Some(&login), None).await;
    session["access_token"].as_str().expect("token").to_owned()
}

#[tokio::test]
async fn only_admins_reach_the_admin_api() {
    let apis = in_memory_apis();
    let student = signed_in_as(&apis, "student@example.com", Role::Student).await;
    let instructor = signed_in_as(&apis, "teacher@example.com", Role::Instructor).await;
    for path in ["/admin/queues", "/admin/dlq", "/admin/email-jobs/x"] {
        let (status, error) = exam(&apis, "GET", path, None, None).await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{path}"
        );
        for bearer in [&student, &instructor] {
            let (status, error) = exam(&apis, "GET", path, None, Some(bearer)).await;
            assert_eq!(
                (status, error["error"]["code"].as_str()),
                (403, Some("forbidden")),
                "{path}"
            );
        }
    }
}

#[tokio::test]
async fn admins_see_queues_jobs_and_dead_letters_and_can_redrive() {
    let apis = in_memory_apis();
    let admin = signed_in_as(&apis, "admin@example.com", Role::Admin).await;

    let (status, queues) = exam(&apis, "GET", "/admin/queues", None, Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(queues["queues"].as_array().map(Vec::len), Some(3));

    // A job that failed permanently: recorded, then set aside by the worker's queue control.
    let resend = json!({"email": "pending@example.com", "password": "correct horse", "name": "P"})
        .to_string();
    call(&apis.auth, "POST", "/auth/register", Some(&resend), None).await;
    let message = oes_tests::take_waiting(&apis.queue, 1)
        .await
        .pop()
        .expect("a queued job");
    let job = oes_domain::email::EmailJob::decode(&message.body).expect("job");
    let delivery = Delivery {
        source: apis.queue.name(QueueName::Priority).into(),
        message_id: message.message_id.clone(),
        receipt_handle: message.receipt_handle.clone(),
        receive_count: 1,
        attributes: message.attributes.clone(),
    };
    EmailLanes::new(apis.queue.clone())
        .dead_letter(
            &delivery,
            &message.body,
            "permanent failure: MessageRejected",
        )
        .await
        .expect("set aside");

    let (status, record) = exam(
        &apis,
        "GET",
        &format!("/admin/email-jobs/{}", job.job_id),
        None,
        Some(&admin),
    )
    .await;
    assert_eq!(
        (status, record["status"].as_str(), record["kind"].as_str()),
        (200, Some("queued"), Some("verification"))
    );
    let (status, _) = exam(
        &apis,
        "GET",
        "/admin/email-jobs/does-not-exist",
        None,
        Some(&admin),
    )
    .await;
    assert_eq!(status, 404);

    let (status, dlq) = exam(&apis, "GET", "/admin/dlq", None, Some(&admin)).await;
    assert_eq!(status, 200);
    assert_eq!(dlq["messages"][0]["job_id"], job.job_id.as_str());
    assert_eq!(
        dlq["messages"][0]["reason"],
        "permanent failure: MessageRejected"
    );

    for bad in [
        json!({}),
        json!({"all": true, "job_id": "x"}),
        json!({"job_id": ""}),
        json!({"everything": true}),
    ] {
        let (status, _) = exam(
            &apis,
            "POST",
            "/admin/dlq/redrive",
            Some(&bad.to_string()),
            Some(&admin),
        )
        .await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, _) = exam(&apis, "GET", "/admin/dlq?max=0", None, Some(&admin)).await;
    assert_eq!(status, 400);

    let only = json!({"job_id": job.job_id}).to_string();
    let (status, report) = exam(
        &apis,
        "POST",
        "/admin/dlq/redrive",
        Some(&only),
        Some(&admin),
    )
    .await;
    assert_eq!(
        (status, report),
        (
            200,
            json!({"moved": 1, "already_sent": 0, "skipped": 0, "done": true})
        )
    );
    let redriven = oes_tests::take_waiting(&apis.queue, 10).await;
    assert_eq!(redriven.len(), 1, "back on its lane");
    assert_eq!(
        oes_domain::email::EmailJob::decode(&redriven[0].body)
            .expect("job")
            .job_id,
        job.job_id
    );
}

#[tokio::test]
async fn authentication_comes_before_routing() {
    let apis = in_memory_apis();
    for (method, path) in [("GET", "/exams/123"), ("DELETE", "/admin/queues")] {
        let (status, error) = exam(&apis, method, path, None, None).await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{method} {path}"
        );
    }
}

/// A job that ended unsent (attempts exhausted) and sits on the dead-letter queue, as the worker
/// leaves it; every other one is a newsletter (the bulk lane).
async fn dead_job(
    jobs: &dyn JobLedger,
    queues: &dyn MessageQueues,
    i: usize,
    sent: bool,
) -> String {
    let to = Email::parse(&format!("dead{i}@example.com")).expect("valid");
    let template = if i.is_multiple_of(2) {
        EmailTemplate::Verification {
            name: "Ada".into(),
            token: Secret::new("t0k3n"),
        }
    } else {
        EmailTemplate::Generic {
            subject: "News".into(),
            text: "text".into(),
        }
    };
    let now = SystemClock.now();
    let job = EmailJob::new(to, template, now);
    match jobs.record_queued(&job, now).await {
        // The SDK retried a put the busy emulator had applied after all.
        Ok(()) | Err(StoreError::Conflict(JobConflict::JobExists)) => {}
        Err(error) => panic!("record: {error:?}"),
    }
    let outcome = if sent {
        jobs.claim(&job, now, 60).await.expect("claim");
        Outcome::Sent {
            ses_message_id: format!("ses-{i}"),
        }
    } else {
        Outcome::Dead {
            reason: "attempts exhausted".into(),
        }
    };
    jobs.finish(&job.job_id, outcome, now)
        .await
        .expect("finish");
    let letter = NewMessage {
        body: job.encode(),
        ..NewMessage::default()
    };
    queues
        .send(QueueName::DeadLetter, &letter)
        .await
        .expect("dead letter");
    job.job_id
}

/// The job ids waiting on both lanes (taken off them).
async fn on_the_lanes(queues: &dyn MessageQueues) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for lane in [QueueName::Priority, QueueName::Bulk] {
        loop {
            let batch = queues
                .receive(lane, 10, Some(300), Duration::ZERO)
                .await
                .expect("receive");
            if batch.is_empty() {
                break;
            }
            for message in batch {
                let job = EmailJob::decode(&message.body).expect("a job");
                assert!(ids.insert(job.job_id), "one copy of each job");
            }
        }
    }
    ids
}

/// Defect 8 of issue 11: `{"all": true}` moved the whole dead-letter queue inside one request
/// (and the function's 10 s timeout cut it off part-way on a large queue). Each call is one step
/// of at most `REDRIVE_STEP` letters that answers at once with what it did; calling again resumes.
#[tokio::test]
async fn redriving_everything_runs_in_steps_that_resume_until_the_queue_is_walked() {
    let env = TestEnv::spawn().await;
    let adapters = env.adapters_with_cache(no_cache());
    let api = ExamHarness::over(&adapters);
    let admin = api.sign_in(Role::Admin).await;
    let (jobs, queues) = (adapters.jobs.as_ref(), adapters.queues.as_ref());

    let dead = 2 * REDRIVE_STEP + 10;
    let letters: Vec<(String, bool)> = stream::iter(0..dead + 2)
        .map(|i| async move {
            let sent = i >= dead; // two stale letters of jobs sent already
            (dead_job(jobs, queues, i, sent).await, sent)
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let unsent: BTreeSet<String> = letters
        .iter()
        .filter(|(_, sent)| !sent)
        .map(|(id, _)| id.clone())
        .collect();

    let all = json!({"all": true});
    let (status, first) = api
        .call("POST", "/admin/dlq/redrive", Some(&all), &admin)
        .await;
    assert_eq!(
        (status, &first["done"]),
        (202, &json!(false)),
        "the first call runs one step and says it is not done: {first}"
    );
    assert!(
        first["moved"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .is_some_and(|n| n <= REDRIVE_STEP),
        "one step moves at most {REDRIVE_STEP}: {first}"
    );
    assert!(
        first["next"].is_string(),
        "it says what to do next: {first}"
    );

    let (mut moved, mut already_sent) = (0, 0);
    let mut answer = (status, first);
    for _ in 0..10 {
        let (status, report) = &answer;
        let step = (
            report["moved"].as_u64().expect("moved"),
            report["already_sent"].as_u64().expect("already_sent"),
        );
        assert!(
            usize::try_from(step.0 + step.1).is_ok_and(|n| n <= REDRIVE_STEP),
            "a step handles at most {REDRIVE_STEP} letters: {report}"
        );
        moved += step.0;
        already_sent += step.1;
        if report["done"] == json!(true) {
            assert_eq!(*status, 200, "{report}");
            break;
        }
        assert_eq!(*status, 202, "{report}");
        answer = api
            .call("POST", "/admin/dlq/redrive", Some(&all), &admin)
            .await;
    }
    assert_eq!(answer.1["done"], json!(true), "the steps end: {}", answer.1);
    assert_eq!(answer.1["skipped"], json!(0), "{}", answer.1);
    assert_eq!(
        (moved, already_sent),
        (u64::try_from(dead).expect("small"), 2)
    );

    assert!(
        QueueAdmin::new(adapters.queues.clone())
            .dead_letters(10)
            .await
            .expect("list")
            .is_empty(),
        "the dead-letter queue is empty"
    );
    let lanes = on_the_lanes(queues).await;
    let sent: BTreeSet<&String> = letters.iter().filter(|l| l.1).map(|l| &l.0).collect();
    assert!(
        lanes.iter().all(|id| !sent.contains(id)),
        "no letter of a job sent already goes back to a lane: {lanes:?} {sent:?}"
    );
    assert_eq!(lanes, unsent, "every unsent job is back on its lane");
    for id in &unsent {
        let record = jobs.get(id).await.expect("read").expect("a record");
        assert_eq!(record.status, JobStatus::Queued, "{id}");
    }
}
