//! exam-api's operations in the OpenAPI document: one description per route of
//! [`crate::routes()`], its request and answer types the ones the
//! handlers parse and answer with ([`crate::views`], the bodies in [`crate::routes`], the
//! domain's records). The error answers every operation shares are added by
//! [`oes_runtime::http::openapi::complete`].

// The functions only carry their operation's description: nothing calls them.
#![allow(dead_code)]

use oes_domain::exam::limits;
use oes_runtime::http::openapi::{
    CURSOR, LIMIT, LinkSpec, StatusBody, TextRule, link, require_bearer, text_field,
};
use utoipa::OpenApi;
use utoipa::openapi::{Array, ArrayBuilder, Object};

use crate::routes::{AnswersBody, CreateExamBody, ExamPatchBody, QuestionBody, QuestionPatchBody};
use crate::views::{
    AttemptBody, AttemptList, AttemptPaperView, ExamList, ExamOutlineView, ExamView, QuestionList,
    QuestionView, ResultList,
};

/// exam-api's part of the OpenAPI document: every operation takes a bearer token.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ExamApiDoc::openapi();
    require_bearer(&mut doc);
    link(&mut doc, LINKS);
    doc
}

/// Where the ids of an answer lead.
const LINKS: &[LinkSpec] = {
    const CREATED: &[(&str, &str)] = &[("exam_id", "$response.body#/exam_id")];
    const LISTED: &[(&str, &str)] = &[("exam_id", "$response.body#/exams/0/exam_id")];
    const SAME_EXAM: &[(&str, &str)] = &[("exam_id", "$request.path.exam_id")];
    const QUESTION: &[(&str, &str)] = &[
        ("exam_id", "$request.path.exam_id"),
        ("question_id", "$response.body#/question_id"),
    ];
    const ATTEMPT: &[(&str, &str)] = &[("attempt_id", "$response.body#/attempt_id")];
    const MINE: &[(&str, &str)] = &[("attempt_id", "$response.body#/attempts/0/attempt_id")];
    &[
        ("create_exam", "201", "get_exam", CREATED),
        ("create_exam", "201", "patch_exam", CREATED),
        ("create_exam", "201", "delete_exam", CREATED),
        ("create_exam", "201", "publish_exam", CREATED),
        ("create_exam", "201", "list_questions", CREATED),
        ("create_exam", "201", "add_question", CREATED),
        ("create_exam", "201", "exam_results", CREATED),
        ("create_exam", "201", "start_attempt", CREATED),
        ("add_question", "201", "patch_question", QUESTION),
        ("add_question", "201", "delete_question", QUESTION),
        ("add_question", "201", "publish_exam", SAME_EXAM),
        ("list_exams", "200", "get_exam", LISTED),
        ("list_exams", "200", "start_attempt", LISTED),
        ("start_attempt", "201", "get_attempt", ATTEMPT),
        ("start_attempt", "201", "save_answers", ATTEMPT),
        ("start_attempt", "201", "submit_attempt", ATTEMPT),
        ("my_attempts", "200", "get_attempt", MINE),
    ]
};

/// exam-api's operations.
#[derive(OpenApi)]
#[openapi(
    paths(
        list_exams,
        create_exam,
        get_exam,
        patch_exam,
        delete_exam,
        publish_exam,
        list_questions,
        add_question,
        patch_question,
        delete_question,
        start_attempt,
        exam_results,
        get_attempt,
        save_answers,
        submit_attempt,
        my_attempts,
    ),
    tags(
        (name = "exams", description = "Exams and their questions"),
        (name = "attempts", description = "Sitting an exam, and results"),
    )
)]
pub struct ExamApiDoc;

// The text fields of the request bodies (`#[schema(schema_with = ...)]`), from the parsers'
// limits.

/// An exam's title.
pub(crate) fn title() -> Object {
    text_field(limits::TITLE_CHARS, TextRule::Required)
}

/// An exam's description.
pub(crate) fn description() -> Object {
    text_field(limits::DESCRIPTION_CHARS, TextRule::Optional)
}

/// A question's text.
pub(crate) fn question_text() -> Object {
    text_field(limits::QUESTION_CHARS, TextRule::Required)
}

/// A question's answer options.
pub(crate) fn options() -> Array {
    ArrayBuilder::new()
        .items(text_field(limits::OPTION_CHARS, TextRule::Required))
        .min_items(Some(limits::MIN_OPTIONS))
        .max_items(Some(limits::MAX_OPTIONS))
        .unique_items(true)
        .description(Some("2 to 10 options, no two alike once trimmed"))
        .build()
}

/// List published exams
#[utoipa::path(get, path = "/exams", tag = "exams",
    params(("limit" = Option<u32>, Query, description = LIMIT, minimum = 1, maximum = 100),
           ("cursor" = Option<String>, Query, description = CURSOR)),
    responses((status = 200, description = "A page of published exams", body = ExamList)))]
fn list_exams() {}

/// Create an exam (instructors and admins)
///
/// The exam starts as a draft that only its owner and admins see.
#[utoipa::path(post, path = "/exams", tag = "exams", request_body = CreateExamBody,
    responses((status = 201, description = "The new draft", body = ExamView),
              (status = 403, description = "`forbidden`: students cannot write exams"),
              (status = 409, description = "`already_exists`: the new exam's random id was taken (try again)")))]
fn create_exam() {}

/// An exam, with the points of its questions
#[utoipa::path(get, path = "/exams/{exam_id}", tag = "exams",
    params(("exam_id" = String, Path, description = "the exam's id")),
    responses((status = 200, description = "The exam", body = ExamOutlineView)))]
fn get_exam() {}

/// Change an exam (its owner or an admin)
#[utoipa::path(patch, path = "/exams/{exam_id}", tag = "exams", request_body = ExamPatchBody,
    params(("exam_id" = String, Path, description = "the exam's id")),
    responses((status = 200, description = "The exam as changed", body = ExamView),
              (status = 403, description = "`forbidden`: a student"),
              (status = 409, description = "`concurrent_update`: changed meanwhile; \
                `attempts_under_way`: a close that attempts under way may run past; `reviews_released`: a close that has passed, with reviews from the close, moved later (reopening); `close_awaited`: the close removed once the review has been from it")))]
fn patch_exam() {}

/// Delete an exam (its owner or an admin)
#[utoipa::path(delete, path = "/exams/{exam_id}", tag = "exams",
    params(("exam_id" = String, Path, description = "the exam's id")),
    responses((status = 200, description = "`{\"status\": \"deleted\"}`", body = StatusBody),
              (status = 403, description = "`forbidden`: a student"),
              (status = 409, description = "`attempts_under_way`: an attempt at it has not ended (its questions are the attempt's paper); `concurrent_update`: changed meanwhile")))]
fn delete_exam() {}

/// Publish an exam (its owner or an admin)
#[utoipa::path(post, path = "/exams/{exam_id}/publish", tag = "exams",
    params(("exam_id" = String, Path, description = "the exam's id")),
    responses((status = 200, description = "The published exam", body = ExamView),
              (status = 403, description = "`forbidden`: a student"),
              (status = 409, description = "`no_questions` or `concurrent_update`")))]
fn publish_exam() {}

/// An exam's questions, with their answers (its owner or an admin)
#[utoipa::path(get, path = "/exams/{exam_id}/questions", tag = "exams",
    params(("exam_id" = String, Path, description = "the exam's id")),
    responses((status = 200, description = "The questions", body = QuestionList),
              (status = 403, description = "`forbidden`: a student")))]
fn list_questions() {}

/// Add a question (its owner or an admin)
#[utoipa::path(post, path = "/exams/{exam_id}/questions", tag = "exams",
    request_body = QuestionBody,
    params(("exam_id" = String, Path, description = "the exam's id")),
    responses((status = 201, description = "The new question", body = QuestionView),
              (status = 403, description = "`forbidden`: a student"),
              (status = 409, description = "`too_many_questions` or `concurrent_update`; \
                `already_exists`: the new question's random id was taken (try again)")))]
fn add_question() {}

/// Change a question (its owner or an admin)
#[utoipa::path(patch, path = "/exams/{exam_id}/questions/{question_id}", tag = "exams",
    request_body = QuestionPatchBody,
    params(("exam_id" = String, Path, description = "the exam's id"),
           ("question_id" = String, Path, description = "the question's id")),
    responses((status = 200, description = "The question as changed", body = QuestionView),
              (status = 403, description = "`forbidden`: a student"),
              (status = 409, description = "`exam_published`: a published exam's question keeps its options, `correct_option` and `points`; or `concurrent_update`: changed meanwhile")))]
fn patch_question() {}

/// Delete a question (its owner or an admin)
#[utoipa::path(delete, path = "/exams/{exam_id}/questions/{question_id}", tag = "exams",
    params(("exam_id" = String, Path, description = "the exam's id"),
           ("question_id" = String, Path, description = "the question's id")),
    responses((status = 200, description = "`{\"status\": \"deleted\"}`", body = StatusBody),
              (status = 403, description = "`forbidden`: a student"),
              (status = 409, description = "`exam_published`: a published exam keeps its questions; or `concurrent_update`")))]
fn delete_question() {}

/// Start an attempt at a published exam
#[utoipa::path(post, path = "/exams/{exam_id}/attempts", tag = "attempts",
    params(("exam_id" = String, Path, description = "the exam's id")),
    responses((status = 201, description = "The attempt, with its paper", body = AttemptPaperView),
              (status = 403, description = "`forbidden`: only students take exams"),
              (status = 409, description = "`exam_not_open`, `exam_closed`, \
                `attempt_in_progress` or `attempts_exhausted`; `concurrent_update` if the exam \
                kept changing while the attempt was being started; `already_exists`: the new \
                attempt's random id was taken (try again)")))]
fn start_attempt() {}

/// An exam's attempts and results (its owner or an admin)
#[utoipa::path(get, path = "/exams/{exam_id}/results", tag = "attempts",
    params(("exam_id" = String, Path, description = "the exam's id"),
           ("limit" = Option<u32>, Query, description = LIMIT, minimum = 1, maximum = 100),
           ("cursor" = Option<String>, Query, description = CURSOR)),
    responses((status = 200, description = "A page of attempts", body = ResultList),
              (status = 403, description = "`forbidden`: a student")))]
fn exam_results() {}

/// An attempt (its student, or who manages its exam)
#[utoipa::path(get, path = "/attempts/{attempt_id}", tag = "attempts",
    params(("attempt_id" = String, Path, description = "the attempt's id")),
    responses((status = 200, description = "The attempt", body = AttemptPaperView)))]
fn get_attempt() {}

/// Save answers of the caller's open attempt
#[utoipa::path(put, path = "/attempts/{attempt_id}/answers", tag = "attempts",
    request_body = AnswersBody,
    params(("attempt_id" = String, Path, description = "the attempt's id")),
    responses((status = 200, description = "The attempt with its answers", body = AttemptBody),
              (status = 409, description = "`attempt_closed` or `concurrent_update`")))]
fn save_answers() {}

/// Submit the caller's attempt: graded at once
#[utoipa::path(post, path = "/attempts/{attempt_id}/submit", tag = "attempts",
    params(("attempt_id" = String, Path, description = "the attempt's id")),
    responses((status = 200, description = "The graded attempt", body = AttemptPaperView),
              (status = 503, description = "`email_queue_unavailable`: graded, but the result \
                email could not be queued; submit again"),
              (status = 409, description = "`attempt_closed` or `concurrent_update`")))]
fn submit_attempt() {}

/// The caller's attempts, newest first
#[utoipa::path(get, path = "/me/attempts", tag = "attempts",
    params(("limit" = Option<u32>, Query, description = LIMIT, minimum = 1, maximum = 100),
           ("cursor" = Option<String>, Query, description = CURSOR)),
    responses((status = 200, description = "A page of attempts", body = AttemptList)))]
fn my_attempts() {}
