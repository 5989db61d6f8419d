//! The contract of `ExamStore` and `AttemptStore`, run against both implementations.
//!
//! - Helpers that build exams, questions and attempts.
//! - One async body per property, taking `(&dyn ExamStore, &dyn AttemptStore)`.
//! - [`contract!`] turns each body into two tests: `in_memory::<body>` over the in-memory stores
//!   and `on_dynamodb::<body>` over the DynamoDB stores in a fresh table of the emulator.
//!
//! Conditions are tested one write after the other: moto does not lock its tables, so
//! simultaneous conditional writes prove nothing there.

use oes_adapters::dynamo::{DynamoAttempts, DynamoExams};
use oes_adapters::memory::{MemoryAttempts, MemoryExams};
use oes_domain::exam::{
    Answers, Attempt, AttemptCursor, AttemptId, AttemptResult, AttemptStatus, AttemptSummary,
    ClosedBy, Exam, ExamCursor, ExamFields, ExamId, ExamRules, ExamStatus, Question,
    QuestionFields, QuestionId, ReviewFrom, ReviewPolicy, ReviewShows, limits,
};
use oes_domain::ports::{
    AttemptConflict, AttemptStore, DueAttempt, ExamConflict, ExamStore, StoreError,
};
use oes_domain::user::UserId;
use oes_tests::TestEnv;

macro_rules! contract {
    ($($body:ident),* $(,)?) => {
        mod in_memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $body() {
                    let exams = std::sync::Arc::new(MemoryExams::default());
                    let attempts = MemoryAttempts::over(exams.clone());
                    super::$body(exams.as_ref(), &attempts).await;
                }
            )*
        }

        mod on_dynamodb {
            use super::*;
            $(
                #[tokio::test]
                async fn $body() {
                    let env = TestEnv::spawn().await;
                    let client = env.clients.dynamodb();
                    let table = env.provisioned.table.as_str();
                    let exams = DynamoExams::new(client.clone(), table);
                    let attempts = DynamoAttempts::new(client, table);
                    super::$body(&exams, &attempts).await;
                }
            )*
        }
    };
}

contract!(
    an_exam_is_created_once_and_read_back,
    saving_an_exam_needs_the_stored_version_and_keeps_the_question_count,
    a_published_exam_is_listed_with_its_current_fields_and_a_draft_is_not,
    the_published_list_pages_newest_first_without_gaps_or_duplicates,
    a_cursor_still_works_after_its_exam_leaves_the_list,
    adding_questions_bumps_count_and_version_up_to_the_limit,
    questions_are_listed_in_the_order_they_were_added,
    a_question_is_read_and_saved_in_its_own_exam_only,
    deleting_questions_lowers_the_count,
    a_published_exams_questions_keep_what_attempts_are_graded_on,
    deleting_an_exam_removes_its_questions_and_listing_but_not_its_attempts,
    an_attempt_is_created_once_and_read_back,
    answers_are_saved_only_while_the_attempt_is_open,
    an_attempt_is_submitted_once,
    a_second_attempt_is_refused_while_one_is_open,
    both_lists_show_attempts_newest_first_and_follow_submission,
    both_attempt_lists_page_newest_first_without_gaps_or_duplicates,
    an_attempt_list_pages_on_where_it_stopped_when_attempts_start_between_pages,
    the_result_email_is_claimed_by_one_job_at_a_time,
    a_student_starts_at_most_the_attempts_allowed,
    a_submit_records_only_the_grade_of_the_answers_stored,
    an_attempt_is_due_at_its_deadline_then_at_its_email_check_until_the_sweep_clears_it,
    due_attempts_come_oldest_first_and_at_most_the_limit,
);

// ---- helpers ------------------------------------------------------------------------------

/// The attempts allowed where the limit is not what a test is about.
const ANY: u32 = limits::MAX_ATTEMPTS;

fn draft(title: &str, now: i64) -> Exam {
    let fields = ExamFields {
        title: title.into(),
        description: String::new(),
        duration_minutes: 30,
        pass_mark_percent: 50,
    };
    Exam::draft(UserId::generate(), fields, now)
}

/// `exam` as its owner would save it after a change: the next version.
fn next(exam: &Exam, now: i64) -> Exam {
    Exam {
        version: exam.version + 1,
        updated_at: now,
        ..exam.clone()
    }
}

fn publish(exam: &Exam, now: i64) -> Exam {
    Exam {
        status: ExamStatus::Published,
        published_at: exam.published_at.or(Some(now)),
        ..next(exam, now)
    }
}

async fn create_published(exams: &dyn ExamStore, title: &str, at: i64) -> Exam {
    let exam = draft(title, at - 1);
    exams.create_exam(&exam).await.expect("created");
    let published = publish(&exam, at);
    exams
        .save_exam(&published, exam.version)
        .await
        .expect("published");
    published
}

fn question(exam: &ExamId, text: &str, created_at: i64) -> Question {
    let options = vec!["yes".to_owned(), "no".to_owned(), "maybe".to_owned()];
    let fields = QuestionFields::parse(text, &options, 1, 5).expect("valid question");
    Question::new(exam.clone(), fields, created_at)
}

async fn stored(exams: &dyn ExamStore, id: &ExamId) -> Exam {
    exams.get_exam(id).await.expect("read").expect("exists")
}

async fn listed(exams: &dyn ExamStore) -> Vec<Exam> {
    exams.list_published(100, None).await.expect("listed")
}

fn attempt_at(exam: &Exam, questions: &[Question], user: &UserId, started_at: i64) -> Attempt {
    Attempt::start(exam, questions, user.clone(), started_at)
}

/// When a submit in these tests moves its attempt's due entry to (its result email's check),
/// where no test of the due entries looks.
const CHECK: i64 = 1_000_000;

fn result(submitted_at: i64) -> AttemptResult {
    AttemptResult {
        score: 5,
        max_score: 10,
        percent: 50,
        passed: true,
        correct: 1,
        answered: 1,
        questions: 2,
        submitted_at,
        late: false,
        closed_by: ClosedBy::Student,
    }
}

fn answers(pairs: &[(&QuestionId, u8)]) -> Answers {
    pairs.iter().map(|(id, o)| ((*id).clone(), *o)).collect()
}

fn assert_conflict<T: std::fmt::Debug, C: PartialEq + std::fmt::Debug>(
    outcome: Result<T, StoreError<C>>,
    expected: C,
) {
    match outcome {
        Err(StoreError::Conflict(conflict)) if conflict == expected => {}
        other => panic!("expected Conflict({expected:?}), got {other:?}"),
    }
}

fn assert_not_found<T: std::fmt::Debug, C: std::fmt::Debug>(outcome: Result<T, StoreError<C>>) {
    assert!(
        matches!(outcome, Err(StoreError::NotFound)),
        "expected NotFound, got {outcome:?}"
    );
}

// ---- exams --------------------------------------------------------------------------------

async fn an_exam_is_created_once_and_read_back(exams: &dyn ExamStore, _: &dyn AttemptStore) {
    let exam = Exam {
        description: "Ownership, borrowing\nand lifetimes".into(),
        rules: ExamRules {
            opens_at: Some(900),
            closes_at: Some(5_000),
            max_attempts: 3,
            review: ReviewPolicy {
                shows: ReviewShows::Answers,
                from: ReviewFrom::Close,
            },
        },
        ..draft("Rust", 1_000)
    };
    exams.create_exam(&exam).await.expect("created");
    assert_eq!(stored(exams, &exam.id).await, exam);
    let again = Exam {
        title: "Another".into(),
        ..exam.clone()
    };
    assert_conflict(exams.create_exam(&again).await, ExamConflict::ExamExists);
    assert_eq!(stored(exams, &exam.id).await.title, "Rust");
    assert_eq!(
        exams.get_exam(&ExamId::generate()).await.expect("read"),
        None
    );
}

async fn saving_an_exam_needs_the_stored_version_and_keeps_the_question_count(
    exams: &dyn ExamStore,
    _: &dyn AttemptStore,
) {
    let exam = draft("Rust", 1_000);
    exams.create_exam(&exam).await.expect("created");
    let edited = Exam {
        title: "Rust 2024".into(),
        duration_minutes: 45,
        ..next(&exam, 1_100)
    };
    exams.save_exam(&edited, 1).await.expect("saved");
    assert_eq!(stored(exams, &exam.id).await, edited);

    let stale = Exam {
        title: "Lost update".into(),
        ..next(&exam, 1_200)
    };
    assert_conflict(exams.save_exam(&stale, 1).await, ExamConflict::StaleVersion);
    assert_eq!(stored(exams, &exam.id).await, edited);

    exams
        .add_question(&question(&exam.id, "q?", 1_300), 10)
        .await
        .expect("added");
    let counted = stored(exams, &exam.id).await;
    let wrong_count = Exam {
        question_count: 7,
        ..next(&counted, 1_400)
    };
    exams
        .save_exam(&wrong_count, counted.version)
        .await
        .expect("saved");
    assert_eq!(
        stored(exams, &exam.id).await.question_count,
        1,
        "the store keeps the question count"
    );

    let absent = draft("Nowhere", 1_000);
    assert_not_found(exams.save_exam(&next(&absent, 1_100), 1).await);
}

async fn a_published_exam_is_listed_with_its_current_fields_and_a_draft_is_not(
    exams: &dyn ExamStore,
    _: &dyn AttemptStore,
) {
    let exam = draft("Rust", 1_000);
    exams.create_exam(&exam).await.expect("created");
    assert_eq!(listed(exams).await, vec![], "a draft is not listed");

    let published = publish(&exam, 2_000);
    exams.save_exam(&published, 1).await.expect("published");
    assert_eq!(listed(exams).await, vec![published.clone()]);

    let edited = Exam {
        title: "Rust, edited while published".into(),
        pass_mark_percent: 70,
        ..next(&published, 2_100)
    };
    exams
        .save_exam(&edited, published.version)
        .await
        .expect("saved");
    exams
        .add_question(&question(&exam.id, "q?", 2_200), 10)
        .await
        .expect("added");
    let current = stored(exams, &exam.id).await;
    assert_eq!(
        (current.title.as_str(), current.question_count),
        ("Rust, edited while published", 1)
    );
    assert_eq!(
        listed(exams).await,
        vec![current.clone()],
        "the list shows the exam as it is now"
    );

    let back_to_draft = Exam {
        status: ExamStatus::Draft,
        ..next(&current, 2_300)
    };
    exams
        .save_exam(&back_to_draft, current.version)
        .await
        .expect("unpublished");
    assert_eq!(listed(exams).await, vec![]);

    let again = publish(&back_to_draft, 2_400);
    exams
        .save_exam(&again, back_to_draft.version)
        .await
        .expect("published again");
    assert_eq!(listed(exams).await, vec![again]);
}

async fn the_published_list_pages_newest_first_without_gaps_or_duplicates(
    exams: &dyn ExamStore,
    _: &dyn AttemptStore,
) {
    let mut expected = Vec::new();
    // Timestamps of different lengths (9 < 10 as numbers, not as text), and a tie.
    for (i, at) in [9, 10, 10, 99, 100, 5_000, 60_000].into_iter().enumerate() {
        expected.push(create_published(exams, &format!("exam {i}"), at).await);
    }
    exams
        .create_exam(&draft("hidden", 1_000))
        .await
        .expect("created");
    // Newest first, ties by id descending.
    expected.sort_by(|a, b| (b.published_at, &b.id).cmp(&(a.published_at, &a.id)));

    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut cursor: Option<ExamCursor> = None;
    loop {
        let page = exams
            .list_published(3, cursor.as_ref())
            .await
            .expect("page");
        pages.push(page.len());
        let Some(last) = page.last() else { break };
        cursor = Some(ExamCursor::after(last));
        seen.extend(page);
    }
    assert_eq!(pages, vec![3, 3, 1, 0]);
    assert_eq!(
        seen.iter().map(|e| &e.title).collect::<Vec<_>>(),
        expected.iter().map(|e| &e.title).collect::<Vec<_>>()
    );
    assert_eq!(seen, expected);
    assert_eq!(exams.list_published(0, None).await.expect("listed"), vec![]);
}

async fn a_cursor_still_works_after_its_exam_leaves_the_list(
    exams: &dyn ExamStore,
    _: &dyn AttemptStore,
) {
    for at in [10, 20, 30, 40] {
        create_published(exams, &format!("at {at}"), at).await;
    }
    let first = exams.list_published(2, None).await.expect("page");
    assert_eq!(
        first.iter().map(|e| e.published_at).collect::<Vec<_>>(),
        vec![Some(40), Some(30)]
    );
    let cursor = first.last().map(ExamCursor::after).expect("a cursor");
    let unlisted = Exam {
        status: ExamStatus::Draft,
        ..next(&first[1], 50)
    };
    exams
        .save_exam(&unlisted, first[1].version)
        .await
        .expect("unpublished");
    let second = exams.list_published(2, Some(&cursor)).await.expect("page");
    assert_eq!(
        second.iter().map(|e| e.published_at).collect::<Vec<_>>(),
        vec![Some(20), Some(10)]
    );
}

// ---- questions ----------------------------------------------------------------------------

async fn adding_questions_bumps_count_and_version_up_to_the_limit(
    exams: &dyn ExamStore,
    _: &dyn AttemptStore,
) {
    let exam = draft("Rust", 1_000);
    exams.create_exam(&exam).await.expect("created");
    let first = question(&exam.id, "first?", 1_001);
    exams.add_question(&first, 2).await.expect("added");
    exams
        .add_question(&question(&exam.id, "second?", 1_002), 2)
        .await
        .expect("added");
    let counted = stored(exams, &exam.id).await;
    assert_eq!((counted.question_count, counted.version), (2, 3));

    assert_conflict(
        exams
            .add_question(&question(&exam.id, "third?", 1_003), 2)
            .await,
        ExamConflict::TooManyQuestions,
    );
    assert_conflict(
        exams.add_question(&first, 10).await,
        ExamConflict::QuestionExists,
    );
    let unchanged = stored(exams, &exam.id).await;
    assert_eq!((unchanged.question_count, unchanged.version), (2, 3));
    assert_eq!(
        exams.list_questions(&exam.id).await.expect("listed").len(),
        2
    );

    assert_not_found(
        exams
            .add_question(&question(&ExamId::generate(), "orphan?", 1_004), 2)
            .await,
    );
}

async fn questions_are_listed_in_the_order_they_were_added(
    exams: &dyn ExamStore,
    _: &dyn AttemptStore,
) {
    let exam = draft("Rust", 1_000);
    exams.create_exam(&exam).await.expect("created");
    let late = question(&exam.id, "late?", 3_000);
    let early = question(&exam.id, "early?", 1_000);
    let tie = question(&exam.id, "tie?", 1_000);
    for q in [&late, &early, &tie] {
        exams.add_question(q, 10).await.expect("added");
    }
    let mut expected = vec![early, tie];
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    expected.push(late);
    assert_eq!(
        exams.list_questions(&exam.id).await.expect("listed"),
        expected
    );
    assert_eq!(
        exams
            .list_questions(&ExamId::generate())
            .await
            .expect("listed"),
        vec![]
    );
}

async fn a_question_is_read_and_saved_in_its_own_exam_only(
    exams: &dyn ExamStore,
    _: &dyn AttemptStore,
) {
    let exam = draft("Rust", 1_000);
    let other = draft("Go", 1_000);
    exams.create_exam(&exam).await.expect("created");
    exams.create_exam(&other).await.expect("created");
    let q = question(&exam.id, "q?", 1_500);
    exams.add_question(&q, 10).await.expect("added");
    assert_eq!(
        exams.get_question(&exam.id, &q.id).await.expect("read"),
        Some(q.clone())
    );
    assert_eq!(
        exams.get_question(&other.id, &q.id).await.expect("read"),
        None
    );

    let before = stored(exams, &exam.id).await;
    let edited = Question {
        text: "edited?".into(),
        options: vec!["a".into(), "b".into()],
        correct_option: 0,
        points: 9,
        created_at: 9_999,
        ..q.clone()
    };
    exams.save_question(&edited, &q).await.expect("saved");
    let saved = exams
        .get_question(&exam.id, &q.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        saved,
        Question {
            created_at: q.created_at,
            ..edited.clone()
        },
        "the fields change, the place in the exam does not"
    );
    assert_eq!(
        stored(exams, &exam.id).await,
        before,
        "editing a question leaves the exam's set of questions as it was"
    );
    // The same edit again, on the same reading (two editors making one change, or a resend):
    // it finds what it would write, and is saved, not a conflict.
    exams
        .save_question(&edited, &q)
        .await
        .expect("the same edit, made again, is saved");

    // Edits made on the question as it was before the one above, each reading it different
    // from what is stored in one field only: every field is part of the condition.
    let differing_in_one_field = [
        Question {
            text: "before?".into(),
            ..saved.clone()
        },
        Question {
            options: vec!["a".into(), "b".into(), "c".into()],
            ..saved.clone()
        },
        Question {
            correct_option: 1,
            ..saved.clone()
        },
        Question {
            points: 1,
            ..saved.clone()
        },
    ];
    for was in differing_in_one_field {
        let stale = Question {
            text: "stale?".into(),
            ..was.clone()
        };
        assert_conflict(
            exams.save_question(&stale, &was).await,
            ExamConflict::ConcurrentUpdate,
        );
        assert_eq!(
            exams.get_question(&exam.id, &q.id).await.expect("read"),
            Some(saved.clone()),
            "refused ({was:?}): nothing changes"
        );
    }

    let absent = question(&exam.id, "absent?", 1_600);
    assert_not_found(exams.save_question(&absent, &absent).await);
    let elsewhere = Question {
        exam_id: other.id.clone(),
        ..edited
    };
    assert_not_found(exams.save_question(&elsewhere, &saved).await);
    assert_eq!(
        exams.list_questions(&other.id).await.expect("listed"),
        vec![],
        "saving into another exam creates nothing"
    );
}

async fn deleting_questions_lowers_the_count(exams: &dyn ExamStore, _: &dyn AttemptStore) {
    let exam = draft("Rust", 1_000);
    exams.create_exam(&exam).await.expect("created");
    let first = question(&exam.id, "first?", 1_001);
    let second = question(&exam.id, "second?", 1_002);
    for q in [&first, &second] {
        exams.add_question(q, 10).await.expect("added");
    }
    let before = stored(exams, &exam.id).await;

    exams
        .delete_question(&exam.id, &first.id)
        .await
        .expect("deleted");
    let after = stored(exams, &exam.id).await;
    assert_eq!(
        (after.question_count, after.version),
        (1, before.version + 1)
    );
    assert_eq!(
        exams.list_questions(&exam.id).await.expect("listed"),
        vec![second.clone()]
    );
    assert_eq!(
        exams.get_question(&exam.id, &first.id).await.expect("read"),
        None
    );
    assert_not_found(exams.delete_question(&exam.id, &first.id).await);
    assert_not_found(exams.delete_question(&ExamId::generate(), &second.id).await);
    exams
        .delete_question(&exam.id, &second.id)
        .await
        .expect("a draft may lose them all");
    assert_eq!(stored(exams, &exam.id).await.question_count, 0);
}

/// Attempts are graded on the options, right option and points their questions had when they
/// started, and their papers show the questions as they are: once an exam is published, its
/// questions keep those three, and stay; their text can still be corrected. Judged on the exam
/// as it stands when the write lands: an edit or a removal whose caller read the exam as a draft
/// while it was being published is refused too.
async fn a_published_exams_questions_keep_what_attempts_are_graded_on(
    exams: &dyn ExamStore,
    _: &dyn AttemptStore,
) {
    let exam = draft("Rust", 1_000);
    exams.create_exam(&exam).await.expect("created");
    let q = question(&exam.id, "q?", 1_001);
    let other = question(&exam.id, "other?", 1_002);
    for x in [&q, &other] {
        exams.add_question(x, 10).await.expect("added");
    }
    let read_by_the_caller = stored(exams, &exam.id).await;
    assert!(!read_by_the_caller.is_published());
    exams
        .save_exam(
            &publish(&read_by_the_caller, 1_003),
            read_by_the_caller.version,
        )
        .await
        .expect("published meanwhile");
    let published = stored(exams, &exam.id).await;

    let grading_changes = [
        Question {
            options: vec!["no".into(), "yes".into(), "maybe".into()],
            ..q.clone()
        },
        Question {
            correct_option: 0,
            ..q.clone()
        },
        Question {
            points: q.points + 1,
            ..q.clone()
        },
        Question {
            text: "q, reworded?".into(),
            options: vec!["yes".into(), "no".into()],
            ..q.clone()
        },
    ];
    for edit in grading_changes {
        assert_conflict(
            exams.save_question(&edit, &q).await,
            ExamConflict::Published,
        );
    }
    assert_conflict(
        exams.delete_question(&exam.id, &q.id).await,
        ExamConflict::Published,
    );
    assert_eq!(
        exams.list_questions(&exam.id).await.expect("listed"),
        vec![q.clone(), other],
        "refused: nothing changes"
    );
    assert_eq!(stored(exams, &exam.id).await, published);

    let corrected = Question {
        text: "q, corrected?".into(),
        ..q.clone()
    };
    exams
        .save_question(&corrected, &q)
        .await
        .expect("the text can be corrected");
    assert_eq!(
        exams.get_question(&exam.id, &q.id).await.expect("read"),
        Some(corrected)
    );
}

async fn deleting_an_exam_removes_its_questions_and_listing_but_not_its_attempts(
    exams: &dyn ExamStore,
    attempts: &dyn AttemptStore,
) {
    let exam = create_published(exams, "Rust", 1_000).await;
    let kept = create_published(exams, "Go", 1_001).await;
    let q1 = question(&exam.id, "one?", 1_100);
    let q2 = question(&exam.id, "two?", 1_101);
    exams.add_question(&q1, 10).await.expect("added");
    exams.add_question(&q2, 10).await.expect("added");
    let kept_question = question(&kept.id, "kept?", 1_102);
    exams.add_question(&kept_question, 10).await.expect("added");
    let current = stored(exams, &exam.id).await;
    let student = UserId::generate();
    let attempt = attempt_at(&current, &[q1.clone(), q2], &student, 2_000);
    attempts
        .create_attempt(&attempt, ANY)
        .await
        .expect("started");

    exams.delete_exam(&exam.id).await.expect("deleted");
    assert_eq!(exams.get_exam(&exam.id).await.expect("read"), None);
    assert_eq!(
        exams.list_questions(&exam.id).await.expect("listed"),
        vec![]
    );
    assert_eq!(
        exams.get_question(&exam.id, &q1.id).await.expect("read"),
        None
    );
    assert_eq!(
        listed(exams).await,
        vec![stored(exams, &kept.id).await],
        "only the other exam is listed"
    );
    assert_eq!(
        exams.list_questions(&kept.id).await.expect("listed"),
        vec![kept_question]
    );
    assert_eq!(
        attempts.get_attempt(&attempt.id).await.expect("read"),
        Some(attempt.clone())
    );
    assert_eq!(
        attempts
            .attempts_of_exam(&exam.id, 100, None)
            .await
            .expect("listed"),
        vec![attempt.summary()]
    );
    assert_eq!(
        attempts
            .attempts_of_user(&student, 100, None)
            .await
            .expect("listed"),
        vec![attempt.summary()]
    );
    assert_not_found(exams.delete_exam(&exam.id).await);
}

// ---- attempts -----------------------------------------------------------------------------

async fn started_exam(exams: &dyn ExamStore) -> (Exam, Vec<Question>) {
    let exam = create_published(exams, "Rust", 1_000).await;
    let questions = vec![
        question(&exam.id, "one?", 1_001),
        question(&exam.id, "two?", 1_002),
    ];
    for q in &questions {
        exams.add_question(q, 10).await.expect("added");
    }
    (stored(exams, &exam.id).await, questions)
}

async fn an_attempt_is_created_once_and_read_back(
    exams: &dyn ExamStore,
    attempts: &dyn AttemptStore,
) {
    let (exam, questions) = started_exam(exams).await;
    let attempt = attempt_at(&exam, &questions, &UserId::generate(), 2_000);
    attempts
        .create_attempt(&attempt, ANY)
        .await
        .expect("started");
    let read = attempts
        .get_attempt(&attempt.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(read, attempt);
    assert_eq!(read.paper.len(), 2);
    // The same create again is the same write landing twice (the SDK retries a write whose
    // answer timed out after it landed): it succeeds and counts nothing twice. Found by the
    // exam-day load test against a slow store: the retried start answered `409 already_exists`
    // for the attempt the request itself had just created.
    attempts
        .create_attempt(&attempt, 1)
        .await
        .expect("the same attempt again: already done");
    let mut other = attempt_at(&exam, &questions, &attempt.user_id, 2_001);
    other.id = attempt.id.clone();
    assert_conflict(
        attempts.create_attempt(&other, ANY).await,
        AttemptConflict::AttemptExists,
    );
    assert_eq!(
        attempts
            .get_attempt(&AttemptId::generate())
            .await
            .expect("read"),
        None
    );
}

async fn answers_are_saved_only_while_the_attempt_is_open(
    exams: &dyn ExamStore,
    attempts: &dyn AttemptStore,
) {
    let (exam, questions) = started_exam(exams).await;
    let attempt = attempt_at(&exam, &questions, &UserId::generate(), 2_000);
    attempts
        .create_attempt(&attempt, ANY)
        .await
        .expect("started");
    let (one, two) = (&questions[0].id, &questions[1].id);

    let both = answers(&[(one, 2), (two, 0)]);
    attempts
        .save_answers(&attempt.id, &both, 2_010)
        .await
        .expect("saved");
    let only_two = answers(&[(two, 1)]);
    attempts
        .save_answers(&attempt.id, &only_two, attempt.deadline - 1)
        .await
        .expect("saved just in time");
    let saved = attempts
        .get_attempt(&attempt.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(saved.answers, only_two, "answers are replaced, not merged");

    for at in [attempt.deadline, attempt.deadline + 60] {
        assert_conflict(
            attempts.save_answers(&attempt.id, &both, at).await,
            AttemptConflict::AttemptClosed,
        );
    }
    attempts
        .submit(&attempt.id, &result(2_100), &only_two, "job-1", CHECK)
        .await
        .expect("submitted");
    assert_conflict(
        attempts.save_answers(&attempt.id, &both, 2_101).await,
        AttemptConflict::AttemptClosed,
    );
    let after = attempts
        .get_attempt(&attempt.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(after.answers, only_two);
    assert_not_found(
        attempts
            .save_answers(&AttemptId::generate(), &both, 2_010)
            .await,
    );
}

async fn an_attempt_is_submitted_once(exams: &dyn ExamStore, attempts: &dyn AttemptStore) {
    let (exam, questions) = started_exam(exams).await;
    let attempt = attempt_at(&exam, &questions, &UserId::generate(), 2_000);
    attempts
        .create_attempt(&attempt, ANY)
        .await
        .expect("started");
    let saved = answers(&[(&questions[0].id, 1)]);
    attempts
        .save_answers(&attempt.id, &saved, 2_050)
        .await
        .expect("saved");

    attempts
        .submit(&attempt.id, &result(2_100), &saved, "job-1", CHECK)
        .await
        .expect("submitted");
    let submitted = Attempt {
        status: AttemptStatus::Submitted,
        result: Some(result(2_100)),
        result_email_job: Some("job-1".into()),
        answers: saved.clone(),
        ..attempt.clone()
    };
    assert_eq!(
        attempts.get_attempt(&attempt.id).await.expect("read"),
        Some(submitted.clone())
    );
    // The same submit again is the same write landing twice (the SDK retries a write whose
    // answer timed out after it landed): it succeeds and changes nothing. Found by the
    // exam-day load test against a slow store: the retried submit answered
    // `AlreadySubmitted`, and its request, finding the email claimed for its own job, neither
    // recorded nor queued it (the sweep would have, at the attempt's deadline).
    attempts
        .submit(&attempt.id, &result(2_100), &saved, "job-1", CHECK)
        .await
        .expect("the same submit again: already done");
    assert_eq!(
        attempts.get_attempt(&attempt.id).await.expect("read"),
        Some(submitted.clone())
    );

    let second = AttemptResult {
        score: 0,
        ..result(2_200)
    };
    assert_conflict(
        attempts
            .submit(&attempt.id, &second, &saved, "job-2", CHECK)
            .await,
        AttemptConflict::AlreadySubmitted,
    );
    assert_eq!(
        attempts.get_attempt(&attempt.id).await.expect("read"),
        Some(submitted),
        "the first result and email claim stand"
    );
    assert_not_found(
        attempts
            .submit(
                &AttemptId::generate(),
                &result(2_100),
                &saved,
                "job-3",
                CHECK,
            )
            .await,
    );
}

async fn both_lists_show_attempts_newest_first_and_follow_submission(
    exams: &dyn ExamStore,
    attempts: &dyn AttemptStore,
) {
    let (x, x_questions) = started_exam(exams).await;
    let y = create_published(exams, "Go", 1_500).await;
    let ada = UserId::generate();
    let grace = UserId::generate();
    // Start times of different lengths (90 < 200 as numbers, not as text); Ada's second
    // attempt at x starts after her first one's deadline (one open attempt per exam).
    let ada_x_old = attempt_at(&x, &x_questions, &ada, 90);
    let ada_y = attempt_at(&y, &[], &ada, 200);
    let grace_x = attempt_at(&x, &x_questions, &grace, 250);
    let ada_x_new = attempt_at(&x, &x_questions, &ada, ada_x_old.deadline);
    for attempt in [&ada_x_old, &ada_x_new, &grace_x, &ada_y] {
        attempts
            .create_attempt(attempt, ANY)
            .await
            .expect("started");
    }

    let summaries = |list: &[&Attempt]| list.iter().map(|a| a.summary()).collect::<Vec<_>>();
    assert_eq!(
        attempts
            .attempts_of_user(&ada, 100, None)
            .await
            .expect("listed"),
        summaries(&[&ada_x_new, &ada_y, &ada_x_old])
    );
    assert_eq!(
        attempts
            .attempts_of_exam(&x.id, 100, None)
            .await
            .expect("listed"),
        summaries(&[&ada_x_new, &grace_x, &ada_x_old])
    );
    assert_eq!(
        attempts
            .attempts_of_exam(&y.id, 100, None)
            .await
            .expect("listed"),
        summaries(&[&ada_y])
    );
    assert_eq!(
        attempts
            .attempts_of_user(&UserId::generate(), 100, None)
            .await
            .expect("listed"),
        vec![]
    );

    attempts
        .submit(
            &ada_x_old.id,
            &result(1_400),
            &Answers::new(),
            "job-1",
            CHECK,
        )
        .await
        .expect("submitted");
    let submitted = attempts
        .get_attempt(&ada_x_old.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(submitted.status, AttemptStatus::Submitted);
    assert_eq!(
        attempts
            .attempts_of_user(&ada, 100, None)
            .await
            .expect("listed"),
        summaries(&[&ada_x_new, &ada_y, &submitted])
    );
    assert_eq!(
        attempts
            .attempts_of_exam(&x.id, 100, None)
            .await
            .expect("listed"),
        summaries(&[&ada_x_new, &grace_x, &submitted])
    );
    assert_eq!(
        attempts
            .attempts_of_user(&grace, 100, None)
            .await
            .expect("listed"),
        summaries(&[&grace_x]),
        "another student's list is untouched"
    );
    assert_eq!(
        exams.list_questions(&x.id).await.expect("listed"),
        x_questions,
        "the exam's questions are not mistaken for attempts, nor the other way round"
    );
}

/// One of the two lists of attempts.
#[derive(Debug, Clone, Copy)]
enum AttemptList<'a> {
    /// A student's.
    Of(&'a UserId),
    /// An exam's.
    At(&'a ExamId),
}

/// A page of `list`: at most `limit`, after `after`.
async fn page(
    attempts: &dyn AttemptStore,
    list: AttemptList<'_>,
    limit: usize,
    after: Option<&AttemptCursor>,
) -> Vec<AttemptSummary> {
    match list {
        AttemptList::Of(user) => attempts.attempts_of_user(user, limit, after).await,
        AttemptList::At(exam) => attempts.attempts_of_exam(exam, limit, after).await,
    }
    .expect("a page")
}

/// Pages of `limit` of `list`, each after the last attempt of the one before, up to the first
/// empty one: their sizes, and their attempts in order.
async fn every_page(
    attempts: &dyn AttemptStore,
    list: AttemptList<'_>,
    limit: usize,
) -> (Vec<usize>, Vec<AttemptSummary>) {
    let (mut sizes, mut seen, mut cursor) = (Vec::new(), Vec::new(), None);
    loop {
        let page = page(attempts, list, limit, cursor.as_ref()).await;
        sizes.push(page.len());
        let Some(last) = page.last() else {
            return (sizes, seen);
        };
        cursor = Some(AttemptCursor::after(last));
        seen.extend(page);
        assert!(sizes.len() < 50, "{list:?} does not end");
    }
}

async fn both_attempt_lists_page_newest_first_without_gaps_or_duplicates(
    exams: &dyn ExamStore,
    attempts: &dyn AttemptStore,
) {
    let x = create_published(exams, "Rust", 5).await;
    let ada = UserId::generate();
    let (mut at_x, mut of_ada) = (Vec::new(), Vec::new());
    // Start times of different lengths (9 < 10 as numbers, not as text), and ties (by id).
    for (i, started_at) in [9, 10, 10, 10, 99, 100, 5_000].into_iter().enumerate() {
        let by_anyone = attempt_at(&x, &[], &UserId::generate(), started_at);
        attempts
            .create_attempt(&by_anyone, ANY)
            .await
            .expect("started");
        at_x.push(by_anyone.summary());
        let elsewhere = create_published(exams, &format!("exam {i}"), 5).await;
        let by_ada = attempt_at(&elsewhere, &[], &ada, started_at);
        attempts
            .create_attempt(&by_ada, ANY)
            .await
            .expect("started");
        of_ada.push(by_ada.summary());
    }
    for (list, mut expected) in [
        (AttemptList::At(&x.id), at_x),
        (AttemptList::Of(&ada), of_ada),
    ] {
        expected.sort_by(|a, b| (b.started_at, &b.attempt_id).cmp(&(a.started_at, &a.attempt_id)));
        let (sizes, seen) = every_page(attempts, list, 3).await;
        assert_eq!(sizes, vec![3, 3, 1, 0], "{list:?}");
        assert_eq!(seen, expected, "{list:?}: newest first, each once");
        assert_eq!(page(attempts, list, 100, None).await, expected);
        assert_eq!(page(attempts, list, 0, None).await, vec![]);
    }
}

async fn an_attempt_list_pages_on_where_it_stopped_when_attempts_start_between_pages(
    exams: &dyn ExamStore,
    attempts: &dyn AttemptStore,
) {
    let x = create_published(exams, "Rust", 5).await;
    let mut started = Vec::new();
    for at in [100, 200, 300, 400, 500] {
        let attempt = attempt_at(&x, &[], &UserId::generate(), at);
        attempts
            .create_attempt(&attempt, ANY)
            .await
            .expect("started");
        started.push(attempt.summary());
    }
    started.reverse();
    let list = AttemptList::At(&x.id);
    let first = page(attempts, list, 2, None).await;
    assert_eq!(first, started[..2]);

    // Between pages, another attempt starts: it is newer than the first page.
    let late = attempt_at(&x, &[], &UserId::generate(), 600);
    attempts.create_attempt(&late, ANY).await.expect("started");
    let (mut rest, mut cursor) = (Vec::new(), first.last().map(AttemptCursor::after));
    while let Some(after) = cursor {
        let next = page(attempts, list, 2, Some(&after)).await;
        cursor = next.last().map(AttemptCursor::after);
        rest.extend(next);
    }
    assert_eq!(rest, started[2..], "no attempt twice, none left out");
    assert_eq!(page(attempts, list, 1, None).await, vec![late.summary()]);

    // A cursor is a position: after one no attempt holds, the page starts there.
    let between = AttemptCursor {
        started_at: 250,
        attempt_id: AttemptId::generate(),
    };
    let older: Vec<i64> = page(attempts, list, 10, Some(&between))
        .await
        .iter()
        .map(|a| a.started_at)
        .collect();
    assert_eq!(older, vec![200, 100]);
}

async fn a_second_attempt_is_refused_while_one_is_open(
    exams: &dyn ExamStore,
    attempts: &dyn AttemptStore,
) {
    let (exam, questions) = started_exam(exams).await;
    let other_exam = create_published(exams, "Go", 1_500).await;
    let ada = UserId::generate();
    let first = attempt_at(&exam, &questions, &ada, 2_000);
    attempts.create_attempt(&first, ANY).await.expect("started");

    // While it is open, a second start (a concurrent request, a second tab) is refused.
    for at in [2_000, 2_001, first.deadline - 1] {
        let second = attempt_at(&exam, &questions, &ada, at);
        assert_conflict(
            attempts.create_attempt(&second, ANY).await,
            AttemptConflict::AttemptInProgress,
        );
        assert_eq!(
            attempts.get_attempt(&second.id).await.expect("read"),
            None,
            "nothing of the refused attempt is stored"
        );
    }
    assert_eq!(
        attempts
            .attempts_of_user(&ada, 100, None)
            .await
            .expect("listed")
            .len(),
        1
    );
    // Another student, or another exam, is not held up.
    let grace = attempt_at(&exam, &questions, &UserId::generate(), 2_001);
    attempts
        .create_attempt(&grace, ANY)
        .await
        .expect("another student");
    let elsewhere = attempt_at(&other_exam, &[], &ada, 2_001);
    attempts
        .create_attempt(&elsewhere, ANY)
        .await
        .expect("another exam");

    // Past its deadline it no longer counts as open, submitted or not.
    let after_deadline = attempt_at(&exam, &questions, &ada, first.deadline);
    attempts
        .create_attempt(&after_deadline, ANY)
        .await
        .expect("the first attempt's time is up");
    // Submitting the old attempt late does not free the new one's place.
    attempts
        .submit(
            &first.id,
            &result(first.deadline + 5),
            &Answers::new(),
            "job-1",
            CHECK,
        )
        .await
        .expect("late submit");
    assert_conflict(
        attempts
            .create_attempt(
                &attempt_at(&exam, &questions, &ada, first.deadline + 10),
                ANY,
            )
            .await,
        AttemptConflict::AttemptInProgress,
    );
    // Submitting the open attempt frees it at once.
    attempts
        .submit(
            &after_deadline.id,
            &result(first.deadline + 20),
            &Answers::new(),
            "job-2",
            CHECK,
        )
        .await
        .expect("submitted");
    attempts
        .create_attempt(
            &attempt_at(&exam, &questions, &ada, first.deadline + 30),
            ANY,
        )
        .await
        .expect("started again after submitting");
}

async fn the_result_email_is_claimed_by_one_job_at_a_time(
    exams: &dyn ExamStore,
    attempts: &dyn AttemptStore,
) {
    let (exam, questions) = started_exam(exams).await;
    let attempt = attempt_at(&exam, &questions, &UserId::generate(), 2_000);
    attempts
        .create_attempt(&attempt, ANY)
        .await
        .expect("started");
    let job = |attempts_read: Option<Attempt>| attempts_read.and_then(|a| a.result_email_job);

    assert_conflict(
        attempts.claim_result_email(&attempt.id, "job-0").await,
        AttemptConflict::NotSubmitted,
    );
    attempts
        .submit(&attempt.id, &result(2_100), &Answers::new(), "job-1", CHECK)
        .await
        .expect("submitted");
    assert!(
        !attempts
            .claim_result_email(&attempt.id, "job-2")
            .await
            .expect("claim"),
        "the submit holds the claim"
    );
    attempts
        .release_result_email(&attempt.id, "job-2")
        .await
        .expect("released nothing");
    assert_eq!(
        job(attempts.get_attempt(&attempt.id).await.expect("read")),
        Some("job-1".into()),
        "only the holder releases"
    );

    attempts
        .release_result_email(&attempt.id, "job-1")
        .await
        .expect("released");
    assert_eq!(
        job(attempts.get_attempt(&attempt.id).await.expect("read")),
        None
    );
    assert!(
        attempts
            .claim_result_email(&attempt.id, "job-3")
            .await
            .expect("claim"),
        "a released email can be claimed again"
    );
    assert!(
        attempts
            .claim_result_email(&attempt.id, "job-3")
            .await
            .expect("claim"),
        "the same claim again (a retried write that landed) is still its own"
    );
    assert!(
        !attempts
            .claim_result_email(&attempt.id, "job-4")
            .await
            .expect("claim"),
        "a held claim is not taken over"
    );
    assert_eq!(
        job(attempts.get_attempt(&attempt.id).await.expect("read")),
        Some("job-3".into())
    );

    let absent = AttemptId::generate();
    assert_not_found(attempts.claim_result_email(&absent, "job-5").await);
    assert_not_found(attempts.release_result_email(&absent, "job-5").await);
}

async fn a_student_starts_at_most_the_attempts_allowed(
    exams: &dyn ExamStore,
    attempts: &dyn AttemptStore,
) {
    let (exam, questions) = started_exam(exams).await;
    let ada = UserId::generate();
    let none = Answers::new();

    // Two allowed: two sittings, one after the other.
    let first = attempt_at(&exam, &questions, &ada, 2_000);
    attempts.create_attempt(&first, 2).await.expect("first");
    attempts
        .submit(&first.id, &result(2_100), &none, "job-1", CHECK)
        .await
        .expect("submitted");
    let second = attempt_at(&exam, &questions, &ada, 2_200);
    attempts.create_attempt(&second, 2).await.expect("second");
    // While it is open, a start is refused as in progress; once it is submitted, as exhausted.
    let third = attempt_at(&exam, &questions, &ada, 2_300);
    assert_conflict(
        attempts.create_attempt(&third, 2).await,
        AttemptConflict::AttemptInProgress,
    );
    attempts
        .submit(&second.id, &result(2_400), &none, "job-2", CHECK)
        .await
        .expect("submitted");
    assert_conflict(
        attempts.create_attempt(&third, 2).await,
        AttemptConflict::AttemptsExhausted,
    );
    assert_eq!(attempts.get_attempt(&third.id).await.expect("read"), None);
    assert_eq!(
        attempts
            .attempts_of_user(&ada, 10, None)
            .await
            .expect("listed")
            .len(),
        2,
        "nothing of the refused attempt is stored"
    );
    // The limit is the exam's as it is at each start: raised, it lets one more in.
    attempts
        .create_attempt(&third, 3)
        .await
        .expect("a third, once allowed");

    // An attempt left open past its deadline counts too; another student or exam does not.
    let other = create_published(exams, "Go", 1_500).await;
    let left_open = attempt_at(&other, &[], &ada, 2_000);
    attempts
        .create_attempt(&left_open, 1)
        .await
        .expect("started");
    assert_conflict(
        attempts
            .create_attempt(&attempt_at(&other, &[], &ada, left_open.deadline), 1)
            .await,
        AttemptConflict::AttemptsExhausted,
    );
    attempts
        .create_attempt(&attempt_at(&other, &[], &UserId::generate(), 2_000), 1)
        .await
        .expect("another student");
}

async fn a_submit_records_only_the_grade_of_the_answers_stored(
    exams: &dyn ExamStore,
    attempts: &dyn AttemptStore,
) {
    let (exam, questions) = started_exam(exams).await;
    let attempt = attempt_at(&exam, &questions, &UserId::generate(), 2_000);
    attempts
        .create_attempt(&attempt, ANY)
        .await
        .expect("started");
    let graded = answers(&[(&questions[0].id, 1)]);
    attempts
        .save_answers(&attempt.id, &graded, 2_010)
        .await
        .expect("saved");
    // Saved after the submit read and graded the attempt, before its write.
    let stored = answers(&[(&questions[0].id, 1), (&questions[1].id, 1)]);
    attempts
        .save_answers(&attempt.id, &stored, 2_020)
        .await
        .expect("saved again");

    for stale in [&graded, &Answers::new()] {
        assert_conflict(
            attempts
                .submit(&attempt.id, &result(2_030), stale, "job-1", CHECK)
                .await,
            AttemptConflict::AnswersChanged,
        );
    }
    let unchanged = attempts
        .get_attempt(&attempt.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        (
            unchanged.status,
            unchanged.result,
            unchanged.result_email_job
        ),
        (AttemptStatus::InProgress, None, None),
        "a refused submit records nothing"
    );
    assert_eq!(unchanged.answers, stored);

    attempts
        .submit(&attempt.id, &result(2_040), &stored, "job-2", CHECK)
        .await
        .expect("submitted on the answers stored");
    let submitted = attempts
        .get_attempt(&attempt.id)
        .await
        .expect("read")
        .expect("exists");
    assert_eq!(
        (submitted.status, submitted.result, submitted.answers),
        (AttemptStatus::Submitted, Some(result(2_040)), stored)
    );
}

// ---- due attempts (the attempt sweep) -----------------------------------------------------

async fn due(attempts: &dyn AttemptStore, now: i64, limit: usize) -> Vec<DueAttempt> {
    attempts.due_attempts(now, limit).await.expect("listed")
}

async fn an_attempt_is_due_at_its_deadline_then_at_its_email_check_until_the_sweep_clears_it(
    exams: &dyn ExamStore,
    attempts: &dyn AttemptStore,
) {
    let (exam, questions) = started_exam(exams).await;
    // 30 minutes each: deadlines 3_900, 3_800, 3_800.
    let mut started = Vec::new();
    for at in [2_100, 2_000, 2_000] {
        let attempt = attempt_at(&exam, &questions, &UserId::generate(), at);
        attempts
            .create_attempt(&attempt, ANY)
            .await
            .expect("started");
        started.push(attempt);
    }
    let [late, early_a, early_b] = [0, 1, 2].map(|i| DueAttempt::of(&started[i]));
    let mut early = vec![early_a.clone(), early_b.clone()];
    early.sort();
    assert_eq!(
        due(attempts, 3_799, 10).await,
        vec![],
        "none before a deadline"
    );
    assert_eq!(
        due(attempts, 3_800, 10).await,
        early,
        "due at the deadline itself, ties by id"
    );
    let all = [early.clone(), vec![late.clone()]].concat();
    assert_eq!(due(attempts, 10_000, 10).await, all);

    // A submit moves the entry to its result email's check, in the same write; the sweep
    // clears it once it has settled the attempt.
    let (graded, none) = (result(3_700), Answers::new());
    let submit = || attempts.submit(&early_a.attempt_id, &graded, &none, "job-1", 3_820);
    submit().await.expect("submitted");
    let checked = DueAttempt {
        due_at: 3_820,
        attempt_id: early_a.attempt_id.clone(),
    };
    assert_eq!(
        due(attempts, 3_819, 10).await,
        vec![early_b.clone()],
        "its deadline's entry is gone"
    );
    let moved = vec![early_b.clone(), checked.clone(), late.clone()];
    assert_eq!(due(attempts, 10_000, 10).await, moved);
    submit().await.expect("the same submit again: already done");
    assert_eq!(due(attempts, 10_000, 10).await, moved);
    // A check at the deadline itself leaves the entry where it is.
    attempts
        .submit(
            &early_b.attempt_id,
            &result(3_700),
            &Answers::new(),
            "job-2",
            early_b.due_at,
        )
        .await
        .expect("submitted");
    assert_eq!(due(attempts, 10_000, 10).await, moved);
    attempts.clear_due(&checked).await.expect("cleared");
    attempts
        .clear_due(&checked)
        .await
        .expect("clearing it again does nothing");
    assert_eq!(
        due(attempts, 10_000, 10).await,
        vec![early_b.clone(), late.clone()]
    );

    // A refused start puts no entry.
    let again = attempt_at(&exam, &questions, &started[0].user_id, 2_200);
    assert_conflict(
        attempts.create_attempt(&again, ANY).await,
        AttemptConflict::AttemptInProgress,
    );
    assert_eq!(due(attempts, 10_000, 10).await, vec![early_b, late]);
}

async fn due_attempts_come_oldest_first_and_at_most_the_limit(
    exams: &dyn ExamStore,
    attempts: &dyn AttemptStore,
) {
    let (exam, questions) = started_exam(exams).await;
    // Twelve attempts, 10 s apart (their entries spread over the store's partitions).
    let mut expected = Vec::new();
    for i in 0..12 {
        let attempt = attempt_at(&exam, &questions, &UserId::generate(), 2_000 + i * 10);
        attempts
            .create_attempt(&attempt, ANY)
            .await
            .expect("started");
        expected.push(DueAttempt::of(&attempt));
    }
    let first_deadline = expected[0].due_at;
    assert_eq!(due(attempts, 10_000, 100).await, expected);
    assert_eq!(due(attempts, 10_000, 5).await, expected[..5]);
    // Six are due 55 s after the first deadline; the limit still holds.
    assert_eq!(due(attempts, first_deadline + 55, 100).await, expected[..6]);
    assert_eq!(due(attempts, first_deadline + 55, 4).await, expected[..4]);
}

/// An edit of a question whose answer was lost (a timeout after DynamoDB applied it): the SDK
/// sends it again, and that resend finds the fields no longer as `was`. It is the edit saved,
/// not a concurrent one (409): a correction of a published exam's question (one write), and a
/// draft's new right option (a transaction with the exam's check). On DynamoDB only: the twin
/// cannot lose an answer.
#[tokio::test]
async fn a_question_edit_whose_answer_was_lost_is_saved_not_a_conflict() {
    let env = TestEnv::spawn().await;
    let table = env.provisioned.table.as_str();
    let exams = DynamoExams::new(env.clients.dynamodb(), table);
    let (_, questions) = started_exam(&exams).await;
    let draft = draft("Go", 2_000);
    exams.create_exam(&draft).await.expect("created");
    let of_draft = question(&draft.id, "three?", 2_001);
    exams.add_question(&of_draft, 10).await.expect("added");
    let edits = [
        (
            &questions[0],
            Question {
                text: "one, corrected?".into(),
                ..questions[0].clone()
            },
        ),
        (
            &of_draft,
            Question {
                correct_option: 2,
                ..of_draft.clone()
            },
        ),
    ];
    for (was, edited) in &edits {
        let losing = DynamoExams::new(
            oes_tests::lost_answers::LoseAnswers::client(&env.clients.dynamodb(), 1),
            table,
        );
        losing
            .save_question(edited, was)
            .await
            .expect("saved, though its first answer was lost");
        assert_eq!(
            exams
                .get_question(&was.exam_id, &was.id)
                .await
                .expect("read"),
            Some(edited.clone())
        );
        // An edit made on what the lost one replaced is still refused.
        let stale = Question {
            text: "stale?".into(),
            ..(*was).clone()
        };
        assert_conflict(
            exams.save_question(&stale, was).await,
            ExamConflict::ConcurrentUpdate,
        );
    }
}

/// An item's key: its `pk` and `sk`.
type Key = (String, String);

/// The items of each `TransactWriteItems` a client sent, in order.
#[derive(Debug, Clone, Default)]
struct Transactions(std::sync::Arc<std::sync::Mutex<Vec<Vec<Key>>>>);

impl aws_sdk_dynamodb::config::Intercept for Transactions {
    fn name(&self) -> &'static str {
        "Transactions"
    }

    fn read_before_execution(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<
            '_,
        >,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsInput;
        use aws_sdk_dynamodb::types::AttributeValue;
        let Some(input) = context.input().downcast_ref::<TransactWriteItemsInput>() else {
            return Ok(());
        };
        let text =
            |v: Option<&AttributeValue>| v.and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let keys = input
            .transact_items()
            .iter()
            .filter_map(|item| {
                let key = item
                    .put()
                    .map(|p| p.item())
                    .or_else(|| item.update().map(|u| u.key()))
                    .or_else(|| item.delete().map(|d| d.key()))
                    .or_else(|| item.condition_check().map(|c| c.key()))?;
                Some((text(key.get("pk")), text(key.get("sk"))))
            })
            .collect();
        self.0.lock().expect("not poisoned").push(keys);
        Ok(())
    }
}

/// A class starting an exam together must not meet itself in DynamoDB: a transaction that
/// touches an item another transaction in progress holds — a condition check included — is
/// cancelled (`TransactionConflict`), retried with backoff, and at a class's rate answered 409
/// or 503. Each start checks that the exam is published and at the version it read; it checked
/// the exam's own item, which every start then held, so starts at one exam went one at a time
/// (a few tens a second at most). It checks one of the exam's guard copies, chosen by the
/// student: starts by different students share no other item. On DynamoDB only (moto takes one
/// request at a time, so it cannot show the conflict itself; this shows the items).
#[tokio::test]
async fn starts_at_one_exam_share_no_item_but_the_exams_guard_copies() {
    let env = TestEnv::spawn().await;
    let table = env.provisioned.table.as_str();
    let exams = DynamoExams::new(env.clients.dynamodb(), table);
    let sent = Transactions::default();
    let attempts = DynamoAttempts::new(
        oes_tests::dynamodb_with(&env.clients.dynamodb(), sent.clone()),
        table,
    );
    let (exam, questions) = started_exam(&exams).await;
    for i in 0..16 {
        let attempt = attempt_at(&exam, &questions, &UserId::generate(), 2_000 + i);
        attempts
            .create_attempt(&attempt, ANY)
            .await
            .expect("started");
    }
    let starts = sent.0.lock().expect("not poisoned").clone();
    assert_eq!(starts.len(), 16, "one transaction per start");
    let exam_item = (format!("EXAM#{}", exam.id), "EXAM".to_owned());
    let mut held: std::collections::BTreeMap<&Key, usize> = Default::default();
    for items in &starts {
        assert!(
            !items.contains(&exam_item),
            "a start holds the exam: {items:?}"
        );
        for item in items {
            *held.entry(item).or_default() += 1;
        }
    }
    let shared: Vec<_> = held.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        shared.iter().all(|((_, sk), _)| sk.starts_with("GUARD#")),
        "starts by different students share items other than guards: {shared:?}"
    );
    let guards = held
        .keys()
        .filter(|(_, sk)| sk.starts_with("GUARD#"))
        .count();
    assert!(
        guards >= 4,
        "16 students checked only {guards} guard copies"
    );
}

/// An exam published before guard copies existed (or whose copies a failed write left behind)
/// still takes starts: a start refused for want of its guard writes the copies, on the exam's
/// version, and goes on.
#[tokio::test]
async fn a_start_at_an_exam_without_its_guard_copies_writes_them_and_goes_on() {
    let env = TestEnv::spawn().await;
    let table = env.provisioned.table.as_str();
    let client = env.clients.dynamodb();
    let exams = DynamoExams::new(client.clone(), table);
    let attempts = DynamoAttempts::new(client.clone(), table);
    let (exam, questions) = started_exam(&exams).await;
    let guards = guard_copies(&env, &exam.id).await;
    assert!(!guards.is_empty(), "the published exam has guard copies");
    for guard in guards {
        delete_item(&env, guard["pk"].clone(), guard["sk"].clone()).await;
    }
    for i in 0..3 {
        let attempt = attempt_at(&exam, &questions, &UserId::generate(), 2_000 + i);
        attempts
            .create_attempt(&attempt, ANY)
            .await
            .expect("started, its guard written");
    }
}

/// The guard copies of `exam` in the table.
async fn guard_copies(
    env: &TestEnv,
    exam: &ExamId,
) -> Vec<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
    use aws_sdk_dynamodb::types::AttributeValue;
    env.clients
        .dynamodb()
        .query()
        .table_name(env.provisioned.table.as_str())
        .key_condition_expression("pk = :pk AND begins_with(sk, :guard)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("EXAM#{exam}")))
        .expression_attribute_values(":guard", AttributeValue::S("GUARD#".into()))
        .send()
        .await
        .expect("queried")
        .items
        .unwrap_or_default()
}

/// Deletes the item `pk` / `sk` behind the stores' back (as an older build, or a test, would).
async fn delete_item(
    env: &TestEnv,
    pk: aws_sdk_dynamodb::types::AttributeValue,
    sk: aws_sdk_dynamodb::types::AttributeValue,
) {
    env.clients
        .dynamodb()
        .delete_item()
        .table_name(env.provisioned.table.as_str())
        .key("pk", pk)
        .key("sk", sk)
        .send()
        .await
        .expect("deleted");
}

/// An exam deleted by a build from before the guard copies left them behind: deleting it again
/// (a delete of an absent exam sweeps what is left of it) removes them.
#[tokio::test]
async fn deleting_an_absent_exam_sweeps_the_guard_copies_left_behind() {
    let env = TestEnv::spawn().await;
    let table = env.provisioned.table.as_str();
    let exams = DynamoExams::new(env.clients.dynamodb(), table);
    let (exam, _) = started_exam(&exams).await;
    assert!(!guard_copies(&env, &exam.id).await.is_empty());
    // Deleted as an older build would: the exam alone.
    delete_item(
        &env,
        aws_sdk_dynamodb::types::AttributeValue::S(format!("EXAM#{}", exam.id)),
        aws_sdk_dynamodb::types::AttributeValue::S("EXAM".into()),
    )
    .await;
    assert!(matches!(
        exams.delete_exam(&exam.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(guard_copies(&env, &exam.id).await.is_empty());
    // And a delete by this build takes them with the exam.
    let (exam, _) = started_exam(&exams).await;
    exams.delete_exam(&exam.id).await.expect("deleted");
    assert!(guard_copies(&env, &exam.id).await.is_empty());
}
