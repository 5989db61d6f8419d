//! The admin API of the email pipeline through exam-api's handler: only admins, and the same
//! answers `oesctl` gives (counts, job records, dead letters, redrive).

use oes_domain::pipeline::EmailLanes;
use oes_domain::ports::{Delivery, MessageQueues, QueueControl, QueueName, UserUpdate};
use oes_domain::user::{Email, Role};
use oes_tests::{InMemoryApis, call, in_memory_apis, read, request};
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
    assert_eq!((status, report), (200, json!({"moved": 1, "skipped": 0})));
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
