//! Attacks on exam_integrity (issue 12).
//!
//! Each test drives the real exam-api handler, as a student or a (former) instructor trying to
//! learn the answers, the questions ahead of time, or to get a second sitting.

use oes_domain::user::Role;
use oes_tests::TestEnv;
use oes_tests::exams::{Caller, ExamHarness, no_cache};
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

/// Whether `value` shows the text of any question the harness wrote ("Question 0", …).
fn shows_question_text(value: &Value) -> bool {
    value.to_string().contains("Question ")
}

fn id_of(body: &Value, field: &str) -> String {
    body[field].as_str().unwrap_or_default().to_owned()
}

async fn start(h: &ExamHarness, exam: &str, student: &Caller) -> (u16, Value) {
    h.call("POST", &format!("/exams/{exam}/attempts"), None, student)
        .await
}

// ---- 16: rights follow the current role ------------------------------------------------------

#[tokio::test]
async fn a_demoted_owner_reads_the_answer_key_and_students_attempts() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let (exam, _) = h.exam_with_questions(&owner, 3, true).await;
    let (status, attempt) = start(&h, &exam, &student).await;
    assert_eq!(status, 201, "{attempt}");
    let attempt = id_of(&attempt, "attempt_id");

    // The instructor is demoted (`oesctl users set-role … student`) and signs in again.
    let demoted = h.set_role(&owner, Role::Student).await;

    let mut leaks = Vec::new();
    for path in [
        format!("/exams/{exam}/questions"),
        format!("/attempts/{attempt}"),
        format!("/exams/{exam}/results"),
    ] {
        let (status, body) = h.call("GET", &path, None, &demoted).await;
        if status == 200 {
            leaks.push(format!("GET {path}: {status} {body}"));
        }
    }
    for (method, path, body) in [
        (
            "PATCH",
            format!("/exams/{exam}"),
            Some(json!({"title": "Mine"})),
        ),
        ("DELETE", format!("/exams/{exam}"), None),
    ] {
        let (status, answer) = h.call(method, &path, body.as_ref(), &demoted).await;
        if status < 400 {
            leaks.push(format!("{method} {path}: {status} {answer}"));
        }
    }
    assert!(
        leaks.is_empty(),
        "a former instructor still manages their exam:\n{}",
        leaks.join("\n")
    );

    // Promoted back, they manage it again: the rights follow the role, the exam is still theirs.
    let restored = h.set_role(&demoted, Role::Instructor).await;
    let (status, questions) = h
        .call("GET", &format!("/exams/{exam}/questions"), None, &restored)
        .await;
    assert_eq!(status, 200, "{questions}");
    assert!(mentions_answers(&questions), "{questions}");
}

// ---- 12: one open attempt per student and exam -----------------------------------------------

#[tokio::test]
async fn two_concurrent_starts_open_two_attempts() {
    let env = TestEnv::spawn().await;
    let h = env.exam_harness(no_cache());
    let owner = h.sign_in(Role::Instructor).await;
    let (exam, _) = h.exam_with_questions(&owner, 2, true).await;
    let mut students = Vec::new();
    for _ in 0..4 {
        students.push(h.sign_in(Role::Student).await);
    }

    let mut doubled = Vec::new();
    for student in &students {
        let ((first, a), (second, b)) =
            tokio::join!(start(&h, &exam, student), start(&h, &exam, student));
        let mut statuses = [first, second];
        statuses.sort_unstable();
        if statuses != [201, 409] {
            doubled.push(format!("{statuses:?}: {a} {b}"));
        }
        let (_, mine) = h.call("GET", "/me/attempts", None, student).await;
        let open = mine["attempts"].as_array().map_or(0, |all| {
            all.iter().filter(|a| a["status"] == "in_progress").count()
        });
        if open != 1 {
            doubled.push(format!("{open} open attempts: {mine}"));
        }
    }
    assert!(
        doubled.is_empty(),
        "two starts at once must open exactly one attempt:\n{}",
        doubled.join("\n")
    );
}

// ---- 10: the questions only inside the student's own open attempt ----------------------------

#[tokio::test]
async fn reading_the_questions_without_starting_an_attempt() {
    let h = ExamHarness::in_memory();
    let owner = h.sign_in(Role::Instructor).await;
    let other = h.sign_in(Role::Instructor).await;
    let student = h.sign_in(Role::Student).await;
    let (exam, _) = h.exam_with_questions(&owner, 3, true).await;

    // Before starting: no question text from any route, but the outline of the exam.
    for (reader, who) in [(&student, "a student"), (&other, "another instructor")] {
        let (status, body) = h
            .call("GET", &format!("/exams/{exam}/questions"), None, reader)
            .await;
        assert!(
            status >= 400 && !shows_question_text(&body),
            "{who} reads the questions before any attempt: {status} {body}"
        );
    }
    let (status, outline) = h
        .call("GET", &format!("/exams/{exam}"), None, &student)
        .await;
    assert_eq!(status, 200, "{outline}");
    assert!(!shows_question_text(&outline), "{outline}");
    assert_eq!(outline["title"], "Rust basics");
    assert_eq!(outline["description"], "Ownership and borrowing");
    assert_eq!(outline["duration_minutes"], 30);
    assert_eq!(outline["question_count"], 3);
    assert_eq!(outline["total_points"], 6, "points 1 + 2 + 3: {outline}");

    // Inside the attempt: the paper, without the answers.
    let (status, started) = start(&h, &exam, &student).await;
    assert_eq!(status, 201, "{started}");
    let attempt = id_of(&started, "attempt_id");
    let (status, read) = h
        .call("GET", &format!("/attempts/{attempt}"), None, &student)
        .await;
    assert_eq!(status, 200, "{read}");
    for body in [&started, &read] {
        let texts: Vec<_> = body["questions"]
            .as_array()
            .map(|qs| qs.iter().map(|q| q["text"].clone()).collect())
            .unwrap_or_default();
        assert_eq!(
            texts,
            vec![
                json!("Question 0"),
                json!("Question 1"),
                json!("Question 2")
            ],
            "{body}"
        );
        assert!(!mentions_answers(body), "{body}");
    }
    // The route outside the attempt stays closed to the student while it is open.
    let (status, body) = h
        .call("GET", &format!("/exams/{exam}/questions"), None, &student)
        .await;
    assert!(
        status >= 400 && !shows_question_text(&body),
        "{status} {body}"
    );

    // Once it is submitted, the paper is gone again.
    let (status, submitted) = h
        .call(
            "POST",
            &format!("/attempts/{attempt}/submit"),
            None,
            &student,
        )
        .await;
    assert_eq!(status, 200, "{submitted}");
    let (status, after) = h
        .call("GET", &format!("/attempts/{attempt}"), None, &student)
        .await;
    assert_eq!(status, 200, "{after}");
    for body in [&submitted, &after] {
        assert!(
            !shows_question_text(body),
            "a closed attempt shows its paper: {body}"
        );
    }

    // The owner still sees everything.
    let (status, all) = h
        .call("GET", &format!("/exams/{exam}/questions"), None, &owner)
        .await;
    assert_eq!(status, 200);
    assert!(mentions_answers(&all) && shows_question_text(&all), "{all}");
}
