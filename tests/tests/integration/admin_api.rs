//! The admin API of the email pipeline through admin-api's handler: only admins, and the same
//! answers `oesctl` gives (counts, job records, dead letters, redrive, purge, pausing a lane).

use std::collections::BTreeSet;
use std::time::Duration;

use admin_api::{PURGE_STEP, REDRIVE_STEP};
use futures_util::{StreamExt, stream};
use oes_domain::clock::{Clock, SystemClock};
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::pipeline::{EmailLanes, QueueAdmin};
use oes_domain::ports::{
    Delivery, JobConflict, JobLedger, JobStatus, MessageQueues, NewMessage, Outcome, PURGED,
    QueueControl, QueueName, ReceivedMessage, StoreError, UserUpdate,
};
use oes_domain::security::Secret;
use oes_domain::user::{Email, Role};
use oes_tests::exams::{ExamHarness, no_cache};
use oes_tests::hooked_queues::{Hooked, QueueHooks};
use oes_tests::{InMemoryApis, TestEnv, call, exam_or_admin, in_memory_apis, read, request};
use serde_json::{Value, json};

/// Calls the function API Gateway routes `path` to: admin-api, or exam-api.
async fn call_api(
    apis: &InMemoryApis,
    method: &str,
    path: &str,
    body: Option<&str>,
    bearer: Option<&str>,
) -> (u16, Value) {
    let request = request(method, path, body, bearer);
    let response = exam_or_admin(&apis.exams, &apis.admin, request).await;
    read(&response.unwrap_or_else(|e| panic!("invocation error: {e}")))
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
        let (status, error) = call_api(&apis, "GET", path, None, None).await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (401, Some("unauthorized")),
            "{path}"
        );
        for bearer in [&student, &instructor] {
            let (status, error) = call_api(&apis, "GET", path, None, Some(bearer)).await;
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

    let (status, queues) = call_api(&apis, "GET", "/admin/queues", None, Some(&admin)).await;
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

    let (status, record) = call_api(
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
    // Issue 13: the detail shows the subject, never the link's token.
    assert_eq!(record["subject"], "Confirm your email address", "{record}");
    let oes_domain::email::EmailTemplate::Verification { token, .. } = &job.template else {
        panic!("a verification email: {job:?}")
    };
    assert!(!record.to_string().contains(token.expose()), "{record}");
    let (status, _) = call_api(
        &apis,
        "GET",
        "/admin/email-jobs/does-not-exist",
        None,
        Some(&admin),
    )
    .await;
    assert_eq!(status, 404);

    let (status, dlq) = call_api(&apis, "GET", "/admin/dlq", None, Some(&admin)).await;
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
        // No job has such an id: the walk over the whole queue is not made for it.
        json!({"job_id": "not a job"}),
        json!({"job_id": "x".repeat(129)}),
    ] {
        let (status, _) = call_api(
            &apis,
            "POST",
            "/admin/dlq/redrive",
            Some(&bad.to_string()),
            Some(&admin),
        )
        .await;
        assert_eq!(status, 400, "{bad}");
    }
    let (status, _) = call_api(&apis, "GET", "/admin/dlq?max=0", None, Some(&admin)).await;
    assert_eq!(status, 400);

    let only = json!({"job_id": job.job_id}).to_string();
    let (status, report) = call_api(
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
            json!({"moved": 1, "already_sent": 0, "not_queued": 0, "skipped": 0, "failed": 0, "done": true})
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
        let (status, error) = call_api(&apis, method, path, None, None).await;
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
            choose_password: false,
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

/// A notice to `to` (a `generic` job), created at 1.
fn notice(to: &str) -> EmailJob {
    let template = EmailTemplate::Generic {
        subject: "Notice".into(),
        text: "Hello".into(),
    };
    EmailJob::new(Email::parse(to).expect("valid"), template, 1)
}

/// `GET path` as `bearer`, asserting a 200.
async fn ok(apis: &InMemoryApis, path: &str, bearer: &str) -> Value {
    let (status, body) = call_api(apis, "GET", path, None, Some(bearer)).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}

fn ids(page: &Value) -> Vec<String> {
    page["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|job| job["job_id"].as_str().expect("job_id").to_owned())
        .collect()
}

/// Issue 13: jobs by state and kind, newest first, paged with signed cursors; counted; a crashed
/// send shows as stalled; a job shows its history.
#[tokio::test]
async fn admins_list_count_and_open_jobs_by_state() {
    let apis = in_memory_apis();
    let admin = signed_in_as(&apis, "admin@example.com", Role::Admin).await;
    let jobs = apis.jobs.as_ref();
    let queued: Vec<EmailJob> = (0..3)
        .map(|i| notice(&format!("reader{i}@example.com")))
        .collect();
    for (at, job) in (100..).zip(&queued) {
        jobs.record_queued(job, at).await.expect("recorded");
    }
    // A send that crashed long ago: its lease (to 200) has run out.
    let crashed = notice("crashed@example.com");
    jobs.record_queued(&crashed, 100).await.expect("recorded");
    jobs.claim(&crashed, 190, 10).await.expect("claimed");

    let first = ok(
        &apis,
        "/admin/email-jobs?status=queued&kind=generic&limit=2",
        &admin,
    )
    .await;
    let newest: Vec<String> = queued.iter().rev().map(|j| j.job_id.clone()).collect();
    assert_eq!(ids(&first), newest[..2]);
    assert_eq!(first["jobs"][0]["status"], "queued");
    assert_eq!(first["jobs"][0]["stalled"], false);
    let cursor = first["next_cursor"].as_str().expect("a next page");
    let second = ok(
        &apis,
        &format!("/admin/email-jobs?status=queued&kind=generic&limit=2&cursor={cursor}"),
        &admin,
    )
    .await;
    assert_eq!(ids(&second), newest[2..]);
    assert_eq!(second["next_cursor"], Value::Null);

    let stalled = ok(&apis, "/admin/email-jobs?status=stalled", &admin).await;
    assert_eq!(ids(&stalled), std::slice::from_ref(&crashed.job_id));
    assert_eq!(stalled["jobs"][0]["stalled"], true);
    assert_eq!(
        stalled["jobs"][0]["history"],
        Value::Null,
        "no history in a listing"
    );

    let counts = ok(&apis, "/admin/email-jobs/counts?kind=generic", &admin).await;
    let count_of = |state: &str| {
        counts["counts"]
            .as_array()
            .expect("counts")
            .iter()
            .find(|c| c["status"] == state)
            .map(|c| (c["count"].as_u64(), c["exact"].as_bool()))
    };
    assert_eq!(count_of("queued"), Some((Some(3), Some(true))));
    assert_eq!(count_of("sending"), Some((Some(1), Some(true))));
    assert_eq!(count_of("stalled"), Some((Some(1), Some(true))));
    assert_eq!(count_of("dead"), Some((Some(0), Some(true))));
    assert_eq!(counts["budget"], admin_api::COUNT_BUDGET);

    let detail = ok(
        &apis,
        &format!("/admin/email-jobs/{}", crashed.job_id),
        &admin,
    )
    .await;
    assert_eq!(detail["stalled"], true);
    assert_eq!(detail["history"], json!([{"at": 190, "event": "sending"}]));
}

#[tokio::test]
async fn bad_listing_queries_are_400s() {
    let apis = in_memory_apis();
    let admin = signed_in_as(&apis, "admin@example.com", Role::Admin).await;
    apis.jobs
        .record_queued(&notice("a@example.com"), 1)
        .await
        .expect("recorded");
    apis.jobs
        .record_queued(&notice("b@example.com"), 2)
        .await
        .expect("recorded");
    let page = ok(&apis, "/admin/email-jobs?status=queued&limit=1", &admin).await;
    let cursor = page["next_cursor"].as_str().expect("a next page");
    for path in [
        "/admin/email-jobs".to_owned(),
        "/admin/email-jobs?status=lost".to_owned(),
        "/admin/email-jobs?status=queued&kind=Generic".to_owned(),
        "/admin/email-jobs?status=queued&kind=".to_owned(),
        "/admin/email-jobs?status=queued&limit=0".to_owned(),
        "/admin/email-jobs?status=queued&limit=101".to_owned(),
        "/admin/email-jobs?status=queued&cursor=made-up".to_owned(),
        // A cursor of one listing does not open another.
        format!("/admin/email-jobs?status=failed&limit=1&cursor={cursor}"),
        format!("/admin/email-jobs?status=queued&kind=generic&limit=1&cursor={cursor}"),
        "/admin/email-jobs/counts?kind=x-y".to_owned(),
    ] {
        let (status, error) = call_api(&apis, "GET", &path, None, Some(&admin)).await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (400, Some("validation_error")),
            "{path}: {error}"
        );
    }
    let (status, _) = call_api(&apis, "DELETE", "/admin/email-jobs", None, Some(&admin)).await;
    assert_eq!(status, 405);
    let (status, _) = call_api(&apis, "GET", "/admin/cache/clear", None, Some(&admin)).await;
    assert_eq!(status, 405);
}

fn cache_status(response: &lambda_http::Response<lambda_http::Body>) -> String {
    response
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// Issue 13: the cache lives in the VPC, out of `oesctl`'s reach on a laptop; an admin clears it
/// through the API (a namespace bump: every entry is a miss after it).
#[tokio::test]
async fn admins_clear_the_cache_through_the_api() {
    let apis = in_memory_apis();
    let admin = signed_in_as(&apis, "admin@example.com", Role::Admin).await;
    let student = signed_in_as(&apis, "student@example.com", Role::Student).await;
    let list = || async {
        let response = exam_api::handle(&apis.exams, request("GET", "/exams", None, Some(&admin)))
            .await
            .expect("handled");
        cache_status(&response)
    };
    list().await;
    assert_eq!(list().await, "hit", "the list is cached");
    let (status, body) = call_api(&apis, "POST", "/admin/cache/clear", None, Some(&student)).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(list().await, "hit", "a student clears nothing");
    let (status, body) = call_api(&apis, "POST", "/admin/cache/clear", None, Some(&admin)).await;
    assert_eq!((status, body), (200, json!({"cleared": true})));
    assert_eq!(list().await, "miss", "every entry is gone");
}

#[tokio::test]
async fn admins_pause_and_resume_a_lane_and_see_it_in_the_counts() {
    let apis = in_memory_apis();
    let admin = signed_in_as(&apis, "admin@example.com", Role::Admin).await;
    let student = signed_in_as(&apis, "student@example.com", Role::Student).await;
    let paused = |queues: &Value| -> Vec<Option<bool>> {
        queues["queues"]
            .as_array()
            .expect("queues")
            .iter()
            .map(|q| q["paused"].as_bool())
            .collect()
    };
    let queues = ok(&apis, "/admin/queues", &admin).await;
    assert_eq!(
        paused(&queues),
        [Some(false), Some(false), None],
        "each lane says whether it is paused; the DLQ is no lane: {queues}"
    );

    let (status, answer) =
        call_api(&apis, "POST", "/admin/lanes/bulk/pause", None, Some(&admin)).await;
    assert_eq!(
        (status, answer),
        (200, json!({"lane": "bulk", "paused": true}))
    );
    assert_eq!(
        paused(&ok(&apis, "/admin/queues", &admin).await),
        [Some(false), Some(true), None]
    );
    let (status, answer) = call_api(
        &apis,
        "POST",
        "/admin/lanes/bulk/resume",
        None,
        Some(&admin),
    )
    .await;
    assert_eq!(
        (status, answer),
        (200, json!({"lane": "bulk", "paused": false}))
    );
    assert_eq!(
        paused(&ok(&apis, "/admin/queues", &admin).await),
        [Some(false), Some(false), None]
    );

    let (status, error) =
        call_api(&apis, "POST", "/admin/lanes/dlq/pause", None, Some(&admin)).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (404, Some("not_found")),
        "only the two lanes switch: {error}"
    );
    let (status, _) = call_api(&apis, "GET", "/admin/lanes/bulk/pause", None, Some(&admin)).await;
    assert_eq!(status, 405);
    let (status, _) = call_api(
        &apis,
        "POST",
        "/admin/lanes/priority/pause",
        None,
        Some(&student),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        paused(&ok(&apis, "/admin/queues", &admin).await),
        [Some(false), Some(false), None],
        "nothing a refused call could have switched"
    );
}

/// The purge: `oesctl dlq purge` deleted the letters and left their records `dead` or
/// `failed`, pointing at letters that no longer existed. The admin route shares the one purge,
/// which records them `dead` (purged) first, a step at a time.
#[tokio::test]
async fn purging_the_dead_letter_queue_records_its_jobs_dead_in_steps() {
    let apis = in_memory_apis();
    let admin = signed_in_as(&apis, "admin@example.com", Role::Admin).await;
    let (jobs, queues) = (apis.jobs.as_ref(), apis.queue.as_ref());
    let mut dead = BTreeSet::new();
    for i in 0..PURGE_STEP + 3 {
        dead.insert(dead_job(jobs, queues, i, false).await);
    }
    let sent = dead_job(jobs, queues, PURGE_STEP + 3, true).await;

    let (status, first) = call_api(&apis, "POST", "/admin/dlq/purge", None, Some(&admin)).await;
    assert_eq!(
        (status, first["purged"].as_u64(), first["done"].as_bool()),
        (202, Some(PURGE_STEP as u64), Some(false)),
        "{first}"
    );
    let (status, last) = call_api(&apis, "POST", "/admin/dlq/purge", None, Some(&admin)).await;
    assert_eq!(
        (status, last["purged"].as_u64(), last["done"].as_bool()),
        (200, Some(4), Some(true)),
        "{last}"
    );
    let marked: BTreeSet<String> = [&first, &last]
        .iter()
        .flat_map(|answer| answer["marked"].as_array().expect("marked").clone())
        .map(|id| id.as_str().expect("an id").to_owned())
        .collect();
    assert_eq!(marked, dead, "every job that ended unsent, and only those");

    let (_, letters) = call_api(&apis, "GET", "/admin/dlq", None, Some(&admin)).await;
    assert_eq!(letters["messages"], json!([]), "the queue is empty");
    let id = dead.first().expect("a job");
    let record = ok(&apis, &format!("/admin/email-jobs/{id}"), &admin).await;
    assert_eq!(
        (
            record["status"].as_str(),
            record["last_error"].as_str(),
            record["history"]
                .as_array()
                .and_then(|h| h.last())
                .map(|e| e["event"].clone())
        ),
        (Some("dead"), Some(PURGED), Some(json!("purged"))),
        "{record}"
    );
    let record = ok(&apis, &format!("/admin/email-jobs/{sent}"), &admin).await;
    assert_eq!(record["status"], "sent", "a sent job stays sent");
}

/// Issue 13: the console's page and files need no token (they hold no data), through the same
/// handler whose admin API still refuses anyone but an admin.
#[tokio::test]
async fn the_console_needs_no_token_but_its_api_calls_stay_admin_only() {
    let apis = in_memory_apis();
    let student = signed_in_as(&apis, "pupil@example.com", Role::Student).await;
    for (path, content_type) in [
        ("/admin/", "text/html; charset=utf-8"),
        ("/admin", "text/html; charset=utf-8"),
        (
            "/admin/console/console.js",
            "text/javascript; charset=utf-8",
        ),
        ("/admin/console/console.css", "text/css; charset=utf-8"),
    ] {
        let response = admin_api::handle(&apis.admin, request("GET", path, None, None))
            .await
            .unwrap_or_else(|e| panic!("invocation error: {e}"));
        assert_eq!(response.status().as_u16(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        assert!(
            response.headers().contains_key("content-security-policy"),
            "{path}"
        );
    }
    let (status, _) = call_api(&apis, "GET", "/admin/console/secrets.txt", None, None).await;
    assert_eq!(status, 404);
    let (status, _) = call_api(&apis, "GET", "/admin/queues", None, None).await;
    assert_eq!(status, 401);
    let (status, _) = call_api(&apis, "GET", "/admin/queues", None, Some(&student)).await;
    assert_eq!(status, 403);
}

/// A job ledger whose writes answer slowly (a DynamoDB that throttles or struggles), and which
/// refuses a key over DynamoDB's limit as DynamoDB does (moto and the twin take any).
struct Slow;

/// How long a [`Slow`] ledger's writes take.
const SLOW: Duration = Duration::from_secs(3);

/// The longest key DynamoDB takes (a partition key's bytes); moto and the twin take any.
const DYNAMODB_KEY_BYTES: usize = 2048;

/// What a [`Slow`] ledger does before each call.
#[async_trait::async_trait]
impl oes_tests::hooked_ledger::LedgerHooks for Slow {
    async fn before(
        &self,
        call: &'static str,
        job_id: &str,
    ) -> Option<oes_domain::ports::StoreUnavailable> {
        match call {
            "requeue" | "purged" => tokio::time::sleep(SLOW).await,
            // As DynamoDB answers a key over its limit: a `ValidationException`, which the
            // adapter reports as the store unavailable.
            "get" if job_id.len() > DYNAMODB_KEY_BYTES => {
                return Some(oes_domain::ports::StoreUnavailable::new(
                    "reading a job record",
                    std::io::Error::other("ValidationException: the key is over 2048 bytes"),
                ));
            }
            _ => {}
        }
        None
    }
}

/// `ledger`, answering as a [`Slow`] one.
fn slow_ledger(ledger: std::sync::Arc<dyn JobLedger>) -> std::sync::Arc<dyn JobLedger> {
    std::sync::Arc::new(oes_tests::hooked_ledger::HookedLedger::new(ledger, Slow))
}

/// A job id no job can have is simply not there (404), not a store that failed (503): it is
/// not looked up, and DynamoDB, which refuses a key over 2 KiB, is not asked to.
#[tokio::test]
async fn a_job_id_no_job_can_have_is_not_found() {
    use oes_adapters::memory::{MemoryJobs, MemoryQueues};
    let mut adapters =
        oes_runtime::wiring::ApiAdapters::in_memory(MemoryQueues::new(), std::sync::Arc::default());
    adapters.jobs = slow_ledger(std::sync::Arc::new(MemoryJobs::default()));
    let api = ExamHarness::over(&adapters);
    let admin = api.sign_in(Role::Admin).await;
    for id in ["x".repeat(DYNAMODB_KEY_BYTES + 1), "x".repeat(129)] {
        let path = format!("/admin/email-jobs/{id}");
        let (status, body) = api.call("GET", &path, None, &admin).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("not_found")),
            "{} characters: {body}",
            id.len()
        );
    }
}

/// A redrive or purge step answers within the function's 10 s timeout however slowly the
/// store answers: it stops taking letters once its time is spent and says it is not done (past
/// the timeout, API Gateway would answer for it, and the letters in hand would stay hidden).
/// Each further step goes on until the queue is walked.
#[tokio::test(start_paused = true)]
async fn a_step_answers_in_time_however_slow_the_store() {
    use oes_adapters::memory::{MemoryJobs, MemoryQueues};
    let queues = MemoryQueues::new();
    let mut adapters =
        oes_runtime::wiring::ApiAdapters::in_memory(queues.clone(), std::sync::Arc::default());
    let memory: std::sync::Arc<dyn JobLedger> = std::sync::Arc::new(MemoryJobs::default());
    adapters.jobs = slow_ledger(memory.clone());
    let api = ExamHarness::over(&adapters);
    let admin = api.sign_in(Role::Admin).await;
    for (path, letters) in [("/admin/dlq/redrive", 8), ("/admin/dlq/purge", 8)] {
        for i in 0..letters {
            dead_job(memory.as_ref(), queues.as_ref(), i, false).await;
        }
        let body = json!({"all": true});
        let mut handled = 0;
        for step in 0.. {
            assert!(step < 20, "{path}: the steps end");
            let started = tokio::time::Instant::now();
            let (status, report) = api.call("POST", path, Some(&body), &admin).await;
            let took = started.elapsed();
            assert!(
                took < Duration::from_secs(9),
                "{path}: a step took {took:?}"
            );
            handled +=
                report["moved"].as_u64().unwrap_or(0) + report["purged"].as_u64().unwrap_or(0);
            if status == 200 {
                break;
            }
            assert_eq!(status, 202, "{path}: {report}");
            // Letters a step had in hand and left are hidden for up to 30 s.
            tokio::time::advance(Duration::from_secs(31)).await;
        }
        assert_eq!(handled, letters as u64, "{path}: every letter, once");
    }
}

/// Listing the dead-letter queue answers within the function's 10 s timeout however slowly the
/// queue answers, as a redrive or purge step does: it stops receiving once its time is spent
/// and shows the letters it has (past the timeout, API Gateway would answer for it, and the
/// letters in hand would stay hidden for 30 s).
#[tokio::test(start_paused = true)]
async fn a_dead_letter_listing_answers_in_time_however_slow_the_queue() {
    use oes_adapters::memory::{MemoryJobs, MemoryQueues};
    let queues = MemoryQueues::new();
    let memory = std::sync::Arc::new(MemoryJobs::default());
    let adapters = oes_runtime::wiring::ApiAdapters::in_memory(
        std::sync::Arc::new(Hooked::new(queues.clone(), SlowReceives)),
        memory.clone(),
    );
    let api = ExamHarness::over(&adapters);
    let admin = api.sign_in(Role::Admin).await;
    for i in 0..40 {
        dead_job(memory.as_ref(), queues.as_ref(), i, false).await;
    }
    let started = tokio::time::Instant::now();
    let (status, listed) = api.call("GET", "/admin/dlq?max=500", None, &admin).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{listed}");
    assert!(took < Duration::from_secs(9), "the listing took {took:?}");
    let shown = listed["messages"].as_array().map_or(0, Vec::len);
    assert!(shown >= 10, "what it had in time: {shown} of 40");
}

/// Receives that answer slowly (an SQS that struggles).
struct SlowReceives;

#[async_trait::async_trait]
impl QueueHooks for SlowReceives {
    async fn receive(&self, _queue: QueueName, _wait: Duration) -> Option<Vec<ReceivedMessage>> {
        tokio::time::sleep(SLOW).await;
        None
    }
}
