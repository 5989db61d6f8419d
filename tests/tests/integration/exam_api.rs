//! exam-api through its real handler over in-memory adapters: the authorization matrix for every
//! route and role, grading, the student view without answers, recorded results that survive
//! edits, pagination, and the result email.

use oes_domain::user::Role;
use oes_tests::exams::{Caller, ExamHarness};
use serde_json::{Value, json};

/// Whether `value` holds a `correct_option` key anywhere.
fn mentions_answers(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            map.contains_key("correct_option") || map.values().any(mentions_answers)
        }
        Value::Array(items) => items.iter().any(mentions_answers),
        _ => false,
    }
}

struct World {
    h: ExamHarness,
    owner: Caller,
    other: Caller,
    admin: Caller,
    student: Caller,
    student2: Caller,
    published: String,
    questions: Vec<String>,
    draft: String,
    attempt: String,
}

async fn world() -> World {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let other = h.sign_in(Role::Instructor).await;
    let admin = h.sign_in(Role::Admin).await;
    let student = h.sign_in(Role::Student).await;
    let student2 = h.sign_in(Role::Student).await;
    let (published, questions) = h.exam_with_questions(&owner, 3, true).await;
    let (draft, _) = h.exam_with_questions(&owner, 1, false).await;
    let (status, attempt) = h
        .call(
            "POST",
            &format!("/exams/{published}/attempts"),
            None,
            &student,
        )
        .await;
    assert_eq!(status, 201, "{attempt}");
    let attempt = attempt["attempt_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    World {
        h,
        owner,
        other,
        admin,
        student,
        student2,
        published,
        questions,
        draft,
        attempt,
    }
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_access_rules_say() {
    let w = world().await;
    let (p, d, a, q) = (&w.published, &w.draft, &w.attempt, &w.questions[0]);
    let title = json!({"title": "Renamed"});
    let question = json!({"text": "New?", "options": ["x", "y"], "correct_option": 1, "points": 2});
    let answers = json!({"answers": {}});
    let reworded = json!({"text": "Reworded?"});
    let exam = json!({"title": "T", "duration_minutes": 5, "pass_mark_percent": 10});
    let cases: Vec<(&Caller, &str, String, Option<&Value>, u16)> = vec![
        (&w.student, "GET", "/exams".into(), None, 200),
        (&w.student, "POST", "/exams".into(), Some(&exam), 403),
        (&w.other, "POST", "/exams".into(), Some(&exam), 201),
        (&w.admin, "POST", "/exams".into(), Some(&exam), 201),
        (&w.student, "GET", format!("/exams/{p}"), None, 200),
        (&w.other, "GET", format!("/exams/{p}"), None, 200),
        (&w.student, "GET", format!("/exams/{d}"), None, 404),
        (&w.other, "GET", format!("/exams/{d}"), None, 404),
        (&w.owner, "GET", format!("/exams/{d}"), None, 200),
        (&w.admin, "GET", format!("/exams/{d}"), None, 200),
        (
            &w.student,
            "PATCH",
            format!("/exams/{p}"),
            Some(&title),
            403,
        ),
        (&w.other, "PATCH", format!("/exams/{p}"), Some(&title), 404),
        (&w.owner, "PATCH", format!("/exams/{p}"), Some(&title), 200),
        (&w.admin, "PATCH", format!("/exams/{p}"), Some(&title), 200),
        // Students see the questions inside their own attempt only.
        (
            &w.student,
            "GET",
            format!("/exams/{p}/questions"),
            None,
            403,
        ),
        (&w.other, "GET", format!("/exams/{p}/questions"), None, 404),
        (&w.admin, "GET", format!("/exams/{p}/questions"), None, 200),
        (
            &w.student,
            "GET",
            format!("/exams/{d}/questions"),
            None,
            403,
        ),
        (&w.other, "GET", format!("/exams/{d}/questions"), None, 404),
        (&w.owner, "GET", format!("/exams/{d}/questions"), None, 200),
        (
            &w.student,
            "POST",
            format!("/exams/{p}/questions"),
            Some(&question),
            403,
        ),
        (
            &w.other,
            "POST",
            format!("/exams/{p}/questions"),
            Some(&question),
            404,
        ),
        (
            &w.owner,
            "POST",
            format!("/exams/{p}/questions"),
            Some(&question),
            201,
        ),
        (
            &w.admin,
            "POST",
            format!("/exams/{p}/questions"),
            Some(&question),
            201,
        ),
        (
            &w.student,
            "PATCH",
            format!("/exams/{p}/questions/{q}"),
            Some(&reworded),
            403,
        ),
        (
            &w.other,
            "PATCH",
            format!("/exams/{p}/questions/{q}"),
            Some(&reworded),
            404,
        ),
        (
            &w.owner,
            "PATCH",
            format!("/exams/{p}/questions/{q}"),
            Some(&reworded),
            200,
        ),
        (&w.owner, "POST", format!("/exams/{p}/attempts"), None, 403),
        (&w.admin, "POST", format!("/exams/{p}/attempts"), None, 403),
        (
            &w.student,
            "POST",
            format!("/exams/{d}/attempts"),
            None,
            404,
        ),
        (
            &w.student,
            "POST",
            format!("/exams/{p}/attempts"),
            None,
            409,
        ),
        (
            &w.student2,
            "POST",
            format!("/exams/{p}/attempts"),
            None,
            201,
        ),
        (&w.student, "GET", format!("/exams/{p}/results"), None, 403),
        (&w.other, "GET", format!("/exams/{p}/results"), None, 404),
        (&w.owner, "GET", format!("/exams/{p}/results"), None, 200),
        (&w.admin, "GET", format!("/exams/{p}/results"), None, 200),
        (&w.student, "GET", format!("/attempts/{a}"), None, 200),
        (&w.student2, "GET", format!("/attempts/{a}"), None, 404),
        (&w.other, "GET", format!("/attempts/{a}"), None, 404),
        (&w.owner, "GET", format!("/attempts/{a}"), None, 200),
        (&w.admin, "GET", format!("/attempts/{a}"), None, 200),
        (
            &w.student2,
            "PUT",
            format!("/attempts/{a}/answers"),
            Some(&answers),
            404,
        ),
        (
            &w.owner,
            "PUT",
            format!("/attempts/{a}/answers"),
            Some(&answers),
            404,
        ),
        (
            &w.student,
            "PUT",
            format!("/attempts/{a}/answers"),
            Some(&answers),
            200,
        ),
        (
            &w.student2,
            "POST",
            format!("/attempts/{a}/submit"),
            None,
            404,
        ),
        (&w.owner, "POST", format!("/attempts/{a}/submit"), None, 404),
        (
            &w.student,
            "POST",
            format!("/attempts/{a}/submit"),
            None,
            200,
        ),
        (&w.student, "GET", "/me/attempts".into(), None, 200),
        (&w.owner, "GET", "/me/attempts".into(), None, 200),
        (
            &w.student,
            "DELETE",
            format!("/exams/{p}/questions/{q}"),
            None,
            403,
        ),
        (
            &w.other,
            "DELETE",
            format!("/exams/{p}/questions/{q}"),
            None,
            404,
        ),
        // Past the access rules; a published exam keeps its questions.
        (
            &w.owner,
            "DELETE",
            format!("/exams/{p}/questions/{q}"),
            None,
            409,
        ),
        (&w.student, "POST", format!("/exams/{d}/publish"), None, 403),
        (&w.other, "POST", format!("/exams/{d}/publish"), None, 404),
        (&w.owner, "POST", format!("/exams/{d}/publish"), None, 200),
        (&w.student, "DELETE", format!("/exams/{d}"), None, 403),
        (&w.other, "DELETE", format!("/exams/{d}"), None, 404),
        (&w.admin, "DELETE", format!("/exams/{d}"), None, 200),
        (&w.owner, "GET", format!("/exams/{d}"), None, 404),
    ];
    let mut wrong = Vec::new();
    for (caller, method, path, body, expected) in &cases {
        let (status, answer) = w.h.call(method, path, *body, caller).await;
        if status != *expected {
            wrong.push(format!(
                "{method} {path}: {status} (expected {expected}) {answer}"
            ));
        } else if status >= 400 {
            assert!(
                answer["error"]["code"].is_string(),
                "{method} {path}: {answer}"
            );
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    for (method, path) in exam_api::routes().filter(|(_, p)| !p.starts_with("/admin")) {
        let path = path
            .replace("{exam_id}", p)
            .replace("{question_id}", q)
            .replace("{attempt_id}", a);
        let response = w.h.respond(method, &path, None, None).await;
        assert_eq!(response.status(), 401, "{method} {path} without a token");
    }
    // Nor does a malformed id or a wrong method tell an anonymous caller anything else.
    for (method, path) in [
        ("GET", "/exams/not-an-id"),
        ("DELETE", "/me/attempts"),
        ("GET", "/attempts/x/answers"),
    ] {
        let response = w.h.respond(method, path, None, None).await;
        assert_eq!(response.status(), 401, "{method} {path} without a token");
    }
}

#[tokio::test]
async fn a_student_never_receives_the_right_answers() {
    let w = world().await;
    let (p, a) = (&w.published, &w.attempt);
    let (_, for_owner) =
        w.h.call("GET", &format!("/exams/{p}/questions"), None, &w.owner)
            .await;
    assert!(mentions_answers(&for_owner), "the owner sees the answers");
    for _ in 0..2 {
        // The student's paper comes from the questions the owner's read cached.
        let (status, for_student) =
            w.h.call("GET", &format!("/attempts/{a}"), None, &w.student)
                .await;
        assert_eq!(status, 200);
        assert_eq!(for_student["questions"].as_array().map(Vec::len), Some(3));
        assert!(!mentions_answers(&for_student), "{for_student}");
    }
    let answers = json!({"answers": {w.questions[0].clone(): 0}});
    for (method, path, body) in [
        ("PUT", format!("/attempts/{a}/answers"), Some(&answers)),
        ("POST", format!("/attempts/{a}/submit"), None),
        ("GET", format!("/attempts/{a}"), None),
        ("GET", "/me/attempts".to_owned(), None),
    ] {
        let (status, body) = w.h.call(method, &path, body, &w.student).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
        assert!(!mentions_answers(&body), "{method} {path}: {body}");
    }
}

async fn submit_with(w: &World, answers: Value) -> Value {
    let a = &w.attempt;
    let (status, body) =
        w.h.call(
            "PUT",
            &format!("/attempts/{a}/answers"),
            Some(&json!({"answers": answers})),
            &w.student,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        w.h.call("POST", &format!("/attempts/{a}/submit"), None, &w.student)
            .await;
    assert_eq!(status, 200, "{body}");
    body["result"].clone()
}

#[tokio::test]
async fn full_marks_pass() {
    let w = world().await;
    let q = &w.questions;
    // Right answers: option i % 3, worth i + 1 points (6 in all).
    let result = submit_with(
        &w,
        json!({q[0].clone(): 0, q[1].clone(): 1, q[2].clone(): 2}),
    )
    .await;
    assert_eq!(
        (
            result["score"].as_u64(),
            result["max_score"].as_u64(),
            result["percent"].as_u64()
        ),
        (Some(6), Some(6), Some(100))
    );
    assert_eq!(result["passed"], true);
    assert_eq!(result["late"], false);
}

#[tokio::test]
async fn partial_marks_count_points_and_fail_below_the_pass_mark() {
    let w = world().await;
    let q = &w.questions;
    let result = submit_with(
        &w,
        json!({q[0].clone(): 0, q[1].clone(): 1, q[2].clone(): 0}),
    )
    .await;
    assert_eq!(
        (result["score"].as_u64(), result["percent"].as_u64()),
        (Some(3), Some(50))
    );
    assert_eq!(result["passed"], true, "50 % reaches the pass mark of 50 %");
    assert_eq!(
        (result["correct"].as_u64(), result["answered"].as_u64()),
        (Some(2), Some(3))
    );
}

#[tokio::test]
async fn no_right_answers_score_zero() {
    let w = world().await;
    let q = &w.questions;
    let result = submit_with(&w, json!({q[0].clone(): 2, q[1].clone(): 0})).await;
    assert_eq!(
        (result["score"].as_u64(), result["percent"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(result["passed"], false);
}

#[tokio::test]
async fn answers_after_the_deadline_are_refused_and_not_counted() {
    let w = world().await;
    let (a, q) = (&w.attempt, &w.questions);
    let in_time = json!({"answers": {q[0].clone(): 0}});
    let (status, _) =
        w.h.call(
            "PUT",
            &format!("/attempts/{a}/answers"),
            Some(&in_time),
            &w.student,
        )
        .await;
    assert_eq!(status, 200);
    w.h.clock.advance(30 * 60 + 1);
    let late = json!({"answers": {q[0].clone(): 0, q[1].clone(): 1, q[2].clone(): 2}});
    let (status, body) =
        w.h.call(
            "PUT",
            &format!("/attempts/{a}/answers"),
            Some(&late),
            &w.student,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("attempt_closed"))
    );
    let (status, body) =
        w.h.call("POST", &format!("/attempts/{a}/submit"), None, &w.student)
            .await;
    assert_eq!(
        status, 200,
        "a late submission is graded on what was saved in time"
    );
    assert_eq!(body["result"]["score"], 1);
    assert_eq!(body["result"]["late"], true);
}

#[tokio::test]
async fn a_second_submit_returns_the_same_result_and_queues_no_second_email() {
    let w = world().await;
    let (a, q) = (&w.attempt, &w.questions);
    let first = submit_with(&w, json!({q[0].clone(): 0})).await;
    w.h.clock.advance(5);
    let (status, again) =
        w.h.call("POST", &format!("/attempts/{a}/submit"), None, &w.student)
            .await;
    assert_eq!(status, 200);
    assert_eq!(
        again["result"], first,
        "the same result, the same submitted_at"
    );
    let (status, body) =
        w.h.call(
            "PUT",
            &format!("/attempts/{a}/answers"),
            Some(&json!({"answers": {}})),
            &w.student,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("attempt_closed"))
    );

    let queue = w.h.queue.as_ref().expect("in-memory queue");
    let counts = oes_domain::pipeline::QueueAdmin::new(queue.clone())
        .counts()
        .await
        .expect("counts");
    let bulk = counts
        .iter()
        .find(|c| c.queue.ends_with("bulk"))
        .expect("bulk lane");
    assert_eq!(
        bulk.visible, 1,
        "one result email on the bulk lane: {counts:?}"
    );
    let message = oes_tests::take_waiting(queue, 10)
        .await
        .pop()
        .expect("the result email");
    assert!(
        message.body.contains("\"kind\":\"exam_result\""),
        "{}",
        message.body
    );
    assert!(message.body.contains(&w.student.email));
}

/// An attempt is graded on the options, right option and points its questions had when it
/// started, and its paper shows the questions as they are: an edit of those fields, or a
/// removal, while it was under way showed its student one question and graded another (options
/// swapped, the right one moved: an answer right on the paper marked wrong). Once an exam is
/// published its questions keep them, and stay; their text can still be corrected.
#[tokio::test]
async fn a_published_exams_questions_keep_what_its_attempts_are_graded_on() {
    let w = world().await;
    let (p, a, q) = (&w.published, &w.attempt, &w.questions[0]);
    let path = format!("/exams/{p}/questions/{q}");
    for change in [
        json!({"options": ["c", "b", "a"]}),
        json!({"correct_option": 2}),
        json!({"points": 50}),
        json!({"text": "Question 0, reworded", "options": ["a", "b", "c", "d"]}),
    ] {
        let (status, answer) = w.h.call("PATCH", &path, Some(&change), &w.owner).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (409, Some("exam_published")),
            "{change}: {answer}"
        );
    }
    let (status, answer) = w.h.call("DELETE", &path, None, &w.owner).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("exam_published")),
        "{answer}"
    );

    let corrected = json!({"text": "Question 0, with its typo fixed", "options": ["a", "b", "c"]});
    let (status, answer) = w.h.call("PATCH", &path, Some(&corrected), &w.admin).await;
    assert_eq!(status, 200, "the text can be corrected: {answer}");
    let (status, attempt) =
        w.h.call("GET", &format!("/attempts/{a}"), None, &w.student)
            .await;
    assert_eq!(status, 200, "{attempt}");
    let paper = attempt["questions"].as_array().expect("the paper");
    assert_eq!(paper.len(), 3, "every question the attempt is graded on");
    assert_eq!(paper[0]["text"], "Question 0, with its typo fixed");
    assert_eq!(paper[0]["options"], json!(["a", "b", "c"]));
    assert_eq!(paper[0]["points"], 1);

    // A draft's questions change freely.
    let (draft, questions) = w.h.exam_with_questions(&w.owner, 2, false).await;
    let path = format!("/exams/{draft}/questions/{}", questions[0]);
    let change = json!({"options": ["x", "y"], "correct_option": 1, "points": 5});
    let (status, answer) = w.h.call("PATCH", &path, Some(&change), &w.owner).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = w.h.call("DELETE", &path, None, &w.owner).await;
    assert_eq!(status, 200, "{answer}");
}

/// A published exam is not deleted while an attempt at it is under way: the attempt's paper is
/// read from the exam's questions, which go with it, so its student was left with a blank
/// paper to the deadline (the attempt still graded on its own copy). It is deleted once no
/// attempt is under way; one that nobody started, at once.
#[tokio::test]
async fn a_published_exam_is_deleted_only_once_no_attempt_at_it_is_under_way() {
    let w = world().await;
    let (p, a) = (&w.published, &w.attempt);
    let path = format!("/exams/{p}");
    let (status, answer) = w.h.call("DELETE", &path, None, &w.owner).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("attempts_under_way")),
        "{answer}"
    );
    let (status, attempt) =
        w.h.call("GET", &format!("/attempts/{a}"), None, &w.student)
            .await;
    assert_eq!(status, 200, "{attempt}");
    assert_eq!(attempt["questions"].as_array().map(Vec::len), Some(3));

    let (status, _) =
        w.h.call("POST", &format!("/attempts/{a}/submit"), None, &w.student)
            .await;
    assert_eq!(status, 200);
    let (status, answer) = w.h.call("DELETE", &path, None, &w.owner).await;
    assert_eq!(status, 200, "the attempt has ended: {answer}");

    let (unstarted, _) = w.h.exam_with_questions(&w.owner, 1, true).await;
    let (status, answer) =
        w.h.call("DELETE", &format!("/exams/{unstarted}"), None, &w.owner)
            .await;
    assert_eq!(status, 200, "nobody started it: {answer}");
}

#[tokio::test]
async fn editing_an_exam_after_an_attempt_never_changes_its_recorded_result() {
    let w = world().await;
    let (p, a, q) = (&w.published, &w.attempt, &w.questions);
    let result = submit_with(&w, json!({q[0].clone(): 0, q[1].clone(): 1})).await;
    let owner = &w.owner;
    // What a published exam lets its owner change (its questions keep what attempts are
    // graded on: `a_published_exams_questions_keep_what_its_attempts_are_graded_on`).
    let changes = [
        (
            "PATCH",
            format!("/exams/{p}/questions/{}", q[0]),
            json!({"text": "Reworded"}),
            200,
        ),
        (
            "POST",
            format!("/exams/{p}/questions"),
            json!({"text": "New", "options": ["a", "b"], "correct_option": 1, "points": 50}),
            201,
        ),
        (
            "PATCH",
            format!("/exams/{p}"),
            json!({"pass_mark_percent": 100, "title": "Harder"}),
            200,
        ),
    ];
    for (method, path, body, expected) in &changes {
        let (status, answer) = w.h.call(method, path, Some(body), owner).await;
        assert_eq!(status, *expected, "{method} {path}: {answer}");
    }
    for reader in [&w.student, owner] {
        let (status, attempt) =
            w.h.call("GET", &format!("/attempts/{a}"), None, reader)
                .await;
        assert_eq!(status, 200);
        assert_eq!(attempt["result"], result);
        assert_eq!(attempt["exam_title"], "Rust basics");
    }
    let (_, results) =
        w.h.call("GET", &format!("/exams/{p}/results"), None, owner)
            .await;
    assert_eq!(results["results"][0]["result"], result);

    // A new attempt takes the exam as it is now.
    let (status, fresh) =
        w.h.call("POST", &format!("/exams/{p}/attempts"), None, &w.student2)
            .await;
    assert_eq!(status, 201);
    assert_eq!(fresh["question_ids"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn the_published_list_pages_newest_first_without_gaps_or_duplicates() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let mut published = Vec::new();
    for _ in 0..5 {
        let (id, _) = h.exam_with_questions(&owner, 1, true).await;
        published.push(id);
        h.clock.advance(1);
    }
    h.exam_with_questions(&owner, 1, false).await; // a draft: never listed
    let mut seen = Vec::new();
    let mut path = "/exams?limit=2".to_owned();
    for page in 0.. {
        let (status, body) = h.call("GET", &path, None, &student).await;
        assert_eq!(status, 200, "{body}");
        let exams = body["exams"].as_array().expect("exams");
        assert!(exams.len() <= 2);
        seen.extend(
            exams
                .iter()
                .map(|e| e["exam_id"].as_str().unwrap_or_default().to_owned()),
        );
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/exams?limit=2&cursor={cursor}"),
            None => break,
        }
        assert!(page < 5, "the list does not end");
    }
    published.reverse();
    assert_eq!(seen, published, "newest first, each once, drafts left out");

    for bad in [
        "/exams?limit=0",
        "/exams?limit=101",
        "/exams?limit=x",
        "/exams?cursor=garbage",
    ] {
        let (status, body) = h.call("GET", bad, None, &student).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

#[tokio::test]
async fn the_attempt_lists_page_like_the_published_list() {
    let w = world().await;
    let p = &w.published;
    for (path, field, caller) in [
        (format!("/exams/{p}/results"), "results", &w.owner),
        ("/me/attempts".to_owned(), "attempts", &w.student),
    ] {
        let (status, body) =
            w.h.call("GET", &format!("{path}?limit=1"), None, caller)
                .await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(
            body[field].as_array().map(Vec::len),
            Some(1),
            "{path}: {body}"
        );
        assert_eq!(body[field][0]["attempt_id"], w.attempt.as_str(), "{path}");
        assert!(
            body["next_cursor"].is_null(),
            "one attempt, one page: {body}"
        );
        for bad in [
            "limit=0",
            "limit=101",
            "limit=x",
            "cursor=garbage",
            "cursor=",
        ] {
            let (status, body) =
                w.h.call("GET", &format!("{path}?{bad}"), None, caller)
                    .await;
            assert_eq!(status, 400, "{path}?{bad}: {body}");
            assert_eq!(body["error"]["code"], "validation_error", "{path}?{bad}");
        }
    }
}

#[tokio::test]
async fn bad_exam_input_is_a_clear_400_and_never_a_500() {
    let w = world().await;
    let (p, a) = (&w.published, &w.attempt);
    let owner = &w.owner;
    let cases: Vec<(&str, String, Value, &Caller)> = vec![
        (
            "POST",
            "/exams".into(),
            json!({"title": "", "duration_minutes": 5, "pass_mark_percent": 1}),
            owner,
        ),
        (
            "POST",
            "/exams".into(),
            json!({"title": "T", "duration_minutes": 0, "pass_mark_percent": 1}),
            owner,
        ),
        (
            "POST",
            "/exams".into(),
            json!({"title": "T", "duration_minutes": 5, "pass_mark_percent": 101}),
            owner,
        ),
        (
            "POST",
            "/exams".into(),
            json!({"title": "T", "duration_minutes": -5, "pass_mark_percent": 1}),
            owner,
        ),
        ("POST", "/exams".into(), json!({"title": "T"}), owner),
        (
            "POST",
            "/exams".into(),
            json!({"title": "T", "duration_minutes": 5, "pass_mark_percent": 1,
                "opens_at": "2030-01-02T00:00:00Z", "closes_at": "2030-01-01T00:00:00Z"}),
            owner,
        ),
        (
            "POST",
            "/exams".into(),
            json!({"title": "T", "duration_minutes": 5, "pass_mark_percent": 1,
                "opens_at": "tomorrow"}),
            owner,
        ),
        (
            "POST",
            "/exams".into(),
            json!({"title": "T", "duration_minutes": 5, "pass_mark_percent": 1,
                "max_attempts": 0}),
            owner,
        ),
        (
            "POST",
            "/exams".into(),
            json!({"title": "T", "duration_minutes": 5, "pass_mark_percent": 1,
                "max_attempts": 101}),
            owner,
        ),
        (
            "POST",
            "/exams".into(),
            json!({"title": "T", "duration_minutes": 5, "pass_mark_percent": 1,
                "review": {"shows": "everything", "from": "submit"}}),
            owner,
        ),
        (
            "PATCH",
            format!("/exams/{p}"),
            json!({"review": {"shows": "score", "from": "close"}}),
            owner,
        ),
        (
            "PATCH",
            format!("/exams/{p}"),
            json!({"opens_at": 1_900_000_000}),
            owner,
        ),
        ("PATCH", format!("/exams/{p}"), json!({}), owner),
        (
            "PATCH",
            format!("/exams/{p}"),
            json!({"owner_id": "me"}),
            owner,
        ),
        (
            "POST",
            format!("/exams/{p}/questions"),
            json!({"text": "q", "options": ["a"], "correct_option": 0, "points": 1}),
            owner,
        ),
        (
            "POST",
            format!("/exams/{p}/questions"),
            json!({"text": "q", "options": ["a", "b"], "correct_option": 2, "points": 1}),
            owner,
        ),
        (
            "POST",
            format!("/exams/{p}/questions"),
            json!({"text": "q", "options": ["a", "b"], "correct_option": 0, "points": 0}),
            owner,
        ),
        (
            "PATCH",
            format!("/exams/{p}/questions/{}", w.questions[0]),
            json!({"options": ["only"]}),
            owner,
        ),
        (
            "PUT",
            format!("/attempts/{a}/answers"),
            json!({"answers": {"not-a-question": 0}}),
            &w.student,
        ),
        (
            "PUT",
            format!("/attempts/{a}/answers"),
            json!({"answers": {w.questions[0].clone(): 7}}),
            &w.student,
        ),
        (
            "PUT",
            format!("/attempts/{a}/answers"),
            json!({"answers": [1, 2]}),
            &w.student,
        ),
    ];
    for (method, path, body, caller) in &cases {
        let (status, answer) = w.h.call(method, path, Some(body), caller).await;
        assert_eq!(status, 400, "{method} {path} {body}: {answer}");
        assert!(answer["error"]["message"].is_string());
    }
    let (status, _) = w.h.call("GET", "/exams/not-an-id", None, owner).await;
    assert_eq!(status, 404);
    let (status, _) = w.h.call("PUT", "/exams", None, owner).await;
    assert_eq!(status, 405);
}

/// The OpenAPI document says `integer`, which JSON Schema reads as any number without a
/// fraction: `30.0` is 30. schemathesis found every such body refused with 400 `invalid_body`
/// (serde's `u64` takes no float) — two thirds of the exams it generated.
#[tokio::test]
async fn whole_numbers_written_with_a_point_zero_are_the_integers_they_are() {
    let w = world().await;
    let (p, a, owner) = (&w.published, &w.attempt, &w.owner);
    let body = json!({"title": "Floats", "duration_minutes": 30.0, "pass_mark_percent": 5e1,
        "max_attempts": 2.0});
    let (status, exam) = w.h.call("POST", "/exams", Some(&body), owner).await;
    assert_eq!(status, 201, "{exam}");
    assert_eq!(
        (
            &exam["duration_minutes"],
            &exam["pass_mark_percent"],
            &exam["max_attempts"]
        ),
        (&json!(30), &json!(50), &json!(2)),
        "{exam}"
    );
    let question =
        json!({"text": "q", "options": ["a", "b"], "correct_option": 1.0, "points": 2.0});
    let (status, answer) =
        w.h.call(
            "POST",
            &format!("/exams/{}/questions", exam["exam_id"].as_str().expect("id")),
            Some(&question),
            owner,
        )
        .await;
    assert_eq!(
        (status, &answer["correct_option"], &answer["points"]),
        (201, &json!(1), &json!(2)),
        "{answer}"
    );
    let answers = json!({"answers": {w.questions[0].clone(): 1.0}});
    let (status, attempt) =
        w.h.call(
            "PUT",
            &format!("/attempts/{a}/answers"),
            Some(&answers),
            &w.student,
        )
        .await;
    assert_eq!(status, 200, "{attempt}");
    for (path, body) in [
        (
            "/exams".to_owned(),
            json!({"title": "T", "duration_minutes": 30.5, "pass_mark_percent": 1}),
        ),
        (format!("/exams/{p}"), json!({"pass_mark_percent": -1.0})),
        (format!("/exams/{p}"), json!({"duration_minutes": "30"})),
    ] {
        let method = if path == "/exams" { "POST" } else { "PATCH" };
        let (status, answer) = w.h.call(method, &path, Some(&body), owner).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("invalid_body")),
            "{body}: {answer}"
        );
    }
}

/// A field the API does not know is refused wherever it is, the nested `review` included: a
/// client that misspells a rule learns it, rather than seeing its exam made without it.
#[tokio::test]
async fn an_unknown_field_in_an_exams_body_is_refused_at_any_depth() {
    let w = world().await;
    let (p, owner) = (&w.published, &w.owner);
    let review = json!({"shows": "score", "from": "submit", "until": "never"});
    for (method, path, body) in [
        (
            "POST",
            "/exams".to_owned(),
            json!({"title": "T", "duration_minutes": 30, "pass_mark_percent": 1, "extra": 1}),
        ),
        (
            "POST",
            "/exams".to_owned(),
            json!({"title": "T", "duration_minutes": 30, "pass_mark_percent": 1,
                "review": review}),
        ),
        ("PATCH", format!("/exams/{p}"), json!({ "review": review })),
        ("PATCH", format!("/exams/{p}"), json!({"titel": "T"})),
    ] {
        let (status, answer) = w.h.call(method, &path, Some(&body), owner).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("invalid_body")),
            "{method} {path} {body}: {answer}"
        );
    }
}

#[tokio::test]
async fn publishing_needs_a_question() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let (empty, _) = h.exam_with_questions(&owner, 0, false).await;
    let (status, body) = h
        .call("POST", &format!("/exams/{empty}/publish"), None, &owner)
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("no_questions"))
    );
}

#[tokio::test]
async fn questions_are_listed_in_the_order_they_were_added() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    // Twelve questions within the same second or two: the clock does not tell them apart.
    let (exam, added) = h.exam_with_questions(&owner, 12, false).await;
    let (status, body) = h
        .call("GET", &format!("/exams/{exam}/questions"), None, &owner)
        .await;
    assert_eq!(status, 200);
    let listed: Vec<String> = body["questions"]
        .as_array()
        .expect("questions")
        .iter()
        .map(|q| q["question_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(listed, added);
}

#[tokio::test]
async fn an_exams_rules_are_set_shown_changed_and_checked_as_a_whole() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let body = json!({
        "title": "Rust", "duration_minutes": 30, "pass_mark_percent": 50,
        "opens_at": "2030-01-01T09:00:00+01:00", "closes_at": "2030-01-01T10:00:00Z",
        "max_attempts": 3, "review": {"shows": "answers", "from": "close"},
    });
    // RFC 3339 as written, but year -1 in UTC, where it would be shown: refused, not shown as "".
    let mut outside = body.clone();
    outside["opens_at"] = json!("0000-01-01T00:00:00+01:00");
    let (status, refused) = h.call("POST", "/exams", Some(&outside), &owner).await;
    assert_eq!(status, 400, "{refused}");
    let (status, exam) = h.call("POST", "/exams", Some(&body), &owner).await;
    assert_eq!(status, 201, "{exam}");
    let id = exam["exam_id"].as_str().unwrap_or_default().to_owned();
    let (_, read) = h.call("GET", &format!("/exams/{id}"), None, &owner).await;
    for view in [&exam, &read] {
        assert_eq!(view["opens_at"], "2030-01-01T08:00:00Z", "{view}");
        assert_eq!(view["closes_at"], "2030-01-01T10:00:00Z", "{view}");
        assert_eq!(view["max_attempts"], 3, "{view}");
        assert_eq!(
            view["review"],
            json!({"shows": "answers", "from": "close"}),
            "{view}"
        );
    }

    // Results shown from the close need a close: removing it alone is refused, with the
    // review it is not.
    let path = format!("/exams/{id}");
    let (status, refused) = h
        .call("PATCH", &path, Some(&json!({"closes_at": null})), &owner)
        .await;
    assert_eq!(status, 400, "{refused}");
    let change = json!({"closes_at": null, "opens_at": null, "max_attempts": 1,
        "review": {"shows": "score", "from": "submit"}});
    let (status, changed) = h.call("PATCH", &path, Some(&change), &owner).await;
    assert_eq!(status, 200, "{changed}");
    assert!(
        changed["opens_at"].is_null() && changed["closes_at"].is_null(),
        "{changed}"
    );
    assert_eq!(changed["max_attempts"], 1);
    assert_eq!(changed["title"], "Rust", "the other fields stay");

    // By default: always open, one attempt, the score once submitted.
    let (exam, _) = h.exam_with_questions(&owner, 1, false).await;
    let (_, defaults) = h.call("GET", &format!("/exams/{exam}"), None, &owner).await;
    assert_eq!(
        (
            &defaults["opens_at"],
            &defaults["closes_at"],
            &defaults["max_attempts"],
            &defaults["review"]
        ),
        (
            &Value::Null,
            &Value::Null,
            &json!(1),
            &json!({"shows": "score", "from": "submit"})
        )
    );
}

/// The largest exam and question the limits allow, written as JSON may write them: every
/// character outside ASCII `\u`-escaped (Python's `json.dumps` does so by default), here each a
/// character outside the Basic Multilingual Plane, a surrogate pair of two escapes (12 bytes
/// for one character). Both are taken. Before, the 16 KiB body limit refused a question of
/// 2,000 CJK characters even written plainly (6 KB of text, ~21 KB of UTF-8 with its options),
/// with 413 — a limit stated in characters that bytes made unreachable.
#[tokio::test]
async fn the_largest_exam_and_question_the_limits_allow_are_taken_however_written() {
    use oes_domain::exam::limits;

    let harness = ExamHarness::in_memory();
    let owner = harness.sign_in(Role::Instructor).await;
    let escaped = |chars: usize| "\\ud83d\\ude00".repeat(chars);
    let exam = format!(
        r#"{{"title": "{}", "description": "{}", "duration_minutes": 30, "pass_mark_percent": 50}}"#,
        escaped(limits::TITLE_CHARS),
        escaped(limits::DESCRIPTION_CHARS),
    );
    let (status, created) = send(&harness, &owner, "/exams", exam).await;
    assert_eq!(status, 201, "{created}");
    // Each its own last character (options differ).
    let options: Vec<String> = (0..limits::MAX_OPTIONS)
        .map(|i| format!("\"{}\\ud83d\\ude0{i}\"", escaped(limits::OPTION_CHARS - 1)))
        .collect();
    let question = format!(
        r#"{{"text": "{}", "options": [{}], "correct_option": 0, "points": 1}}"#,
        escaped(limits::QUESTION_CHARS),
        options.join(", "),
    );
    let exam_id = created["exam_id"].as_str().expect("an id");
    let (status, added) = send(
        &harness,
        &owner,
        &format!("/exams/{exam_id}/questions"),
        question,
    )
    .await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(
        added["text"].as_str().map(|t| t.chars().count()),
        Some(limits::QUESTION_CHARS)
    );
}

/// `body` POSTed to `path` by `caller`, as it is written: status and answer.
async fn send(harness: &ExamHarness, caller: &Caller, path: &str, body: String) -> (u16, Value) {
    let request = oes_tests::request("POST", path, Some(&body), Some(&caller.token));
    let response = oes_tests::exam_or_admin(&harness.api, &harness.admin, request)
        .await
        .expect("an answer");
    oes_tests::read(&response)
}

/// An open exam's close moves earlier only as far as its attempts under way may run: each
/// keeps the deadline of its start, so a close moved before it let that attempt go on past the
/// close — saving answers while a `from: "close"` review already showed others which answers
/// were right. The bound is the longest duration the exam has had since it was published.
#[tokio::test]
async fn an_open_exams_close_moves_earlier_only_past_its_attempts_under_way() {
    use oes_domain::clock::{Clock as _, rfc3339};

    let harness = ExamHarness::in_memory();
    let owner = harness.sign_in(Role::Instructor).await;
    let student = harness.sign_in(Role::Student).await;
    let (exam_id, _) = harness.exam_with_questions(&owner, 1, true).await;
    let path = format!("/exams/{exam_id}");
    let (status, started) = harness
        .call("POST", &format!("{path}/attempts"), None, &student)
        .await;
    assert_eq!(status, 201, "{started}");
    let now = harness.clock.now();
    let close_at = |seconds: i64| json!({ "closes_at": rfc3339(now + seconds) });

    // The attempt runs 30 minutes; shortening the exam does not shorten it.
    let (status, _) = harness
        .call(
            "PATCH",
            &path,
            Some(&json!({"duration_minutes": 5})),
            &owner,
        )
        .await;
    assert_eq!(status, 200);
    let (status, refused) = harness
        .call("PATCH", &path, Some(&close_at(10 * 60)), &owner)
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("attempts_under_way")),
        "{refused}"
    );
    let (status, moved) = harness
        .call("PATCH", &path, Some(&close_at(30 * 60)), &owner)
        .await;
    assert_eq!(status, 200, "as late as the attempt may run: {moved}");
    let (status, later) = harness
        .call("PATCH", &path, Some(&close_at(3_600)), &owner)
        .await;
    assert_eq!(status, 200, "later is always fine: {later}");
}

/// Moving an open exam's opening later leaves the guard above on: the attempts started while
/// it was open keep their deadlines. Before, the guard took an exam whose opening is ahead for
/// one that never opened, so two PATCHes — the opening moved later, then the close earlier —
/// let an attempt run past the close. An exam that has not opened yet has no attempt to wait
/// for: its close moves freely.
#[tokio::test]
async fn an_opening_moved_later_does_not_let_the_close_cut_attempts_under_way() {
    use oes_domain::clock::{Clock as _, rfc3339};

    let harness = ExamHarness::in_memory();
    let owner = harness.sign_in(Role::Instructor).await;
    let student = harness.sign_in(Role::Student).await;
    let now = harness.clock.now();
    let at = |field: &str, seconds: i64| json!({ field: rfc3339(now + seconds) });

    let (opened, _) = harness.exam_with_questions(&owner, 1, true).await;
    let path = format!("/exams/{opened}");
    let (status, started) = harness
        .call("POST", &format!("{path}/attempts"), None, &student)
        .await;
    assert_eq!(status, 201, "{started}");
    let (status, moved) = harness
        .call("PATCH", &path, Some(&at("opens_at", 120)), &owner)
        .await;
    assert_eq!(status, 200, "{moved}");
    let (status, refused) = harness
        .call("PATCH", &path, Some(&at("closes_at", 300)), &owner)
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("attempts_under_way")),
        "the attempt runs 30 minutes: {refused}"
    );
    let (status, moved) = harness
        .call("PATCH", &path, Some(&at("closes_at", 30 * 60)), &owner)
        .await;
    assert_eq!(status, 200, "as late as the attempt may run: {moved}");

    let (unopened, _) = harness.exam_with_questions(&owner, 1, false).await;
    let path = format!("/exams/{unopened}");
    let (status, _) = harness
        .call("PATCH", &path, Some(&at("opens_at", 600)), &owner)
        .await;
    assert_eq!(status, 200);
    let (status, published) = harness
        .call("POST", &format!("{path}/publish"), None, &owner)
        .await;
    assert_eq!(status, 200, "{published}");
    let (status, moved) = harness
        .call("PATCH", &path, Some(&at("closes_at", 900)), &owner)
        .await;
    assert_eq!(status, 200, "nothing started: {moved}");
}

/// A route for instructors refuses a student with 403 whatever the student sent: the role is
/// checked before the body or the query, as the README's table says (a wrong role is 403). A
/// student sending a bad body was answered 400 `validation_error`, and one sending a good body
/// 403: the answer depended on the body, not on who asked.
#[tokio::test]
async fn a_student_is_refused_an_instructors_route_before_the_body_is_read() {
    let harness = ExamHarness::in_memory();
    let owner = harness.sign_in(Role::Instructor).await;
    let student = harness.sign_in(Role::Student).await;
    let (exam_id, questions) = harness.exam_with_questions(&owner, 1, true).await;
    let bad = json!({"title": ""});
    for (method, path, body) in [
        ("POST", "/exams".to_owned(), Some(&bad)),
        ("PATCH", format!("/exams/{exam_id}"), Some(&bad)),
        ("POST", format!("/exams/{exam_id}/questions"), Some(&bad)),
        (
            "PATCH",
            format!("/exams/{exam_id}/questions/{}", questions[0]),
            Some(&bad),
        ),
        ("GET", format!("/exams/{exam_id}/results?limit=0"), None),
    ] {
        let (status, answer) = harness.call(method, &path, body, &student).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{method} {path}: {answer}"
        );
    }
}
