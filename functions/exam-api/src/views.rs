//! The JSON shapes exam-api answers with. Times are RFC 3339. A student's view of a question is
//! built from [`StudentQuestion`], which has no answer field, and reaches them only in their
//! open attempt's paper.

use oes_domain::clock::rfc3339;
use oes_domain::exam::{Attempt, AttemptResult, AttemptSummary, Exam, Question, StudentQuestion};
use serde_json::{Value, json};

use crate::service::{AttemptView, ExamOutline};

/// An exam.
pub fn exam(exam: &Exam) -> Value {
    json!({
        "exam_id": exam.id,
        "owner_id": exam.owner_id,
        "title": exam.title,
        "description": exam.description,
        "duration_minutes": exam.duration_minutes,
        "pass_mark_percent": exam.pass_mark_percent,
        "status": exam.status,
        "question_count": exam.question_count,
        "created_at": rfc3339(exam.created_at),
        "updated_at": rfc3339(exam.updated_at),
        "published_at": exam.published_at.map(rfc3339),
        "opens_at": exam.rules.opens_at.map(rfc3339),
        "closes_at": exam.rules.closes_at.map(rfc3339),
        "max_attempts": exam.rules.max_attempts,
        "review": exam.rules.review,
    })
}

/// An exam with the points of its questions (`GET /exams/{id}`).
pub fn exam_outline(outline: &ExamOutline) -> Value {
    let mut view = exam(&outline.exam);
    view["total_points"] = json!(outline.total_points);
    view
}

/// A question with its answer (owners and admins).
pub fn question(question: &Question) -> Value {
    json!({
        "question_id": question.id,
        "text": question.text,
        "options": question.options,
        "correct_option": question.correct_option,
        "points": question.points,
    })
}

/// A question without its answer (a student, inside their open attempt).
pub fn student_question(question: &StudentQuestion) -> Value {
    json!({
        "question_id": question.id,
        "text": question.text,
        "options": question.options,
        "points": question.points,
    })
}

/// A graded result.
pub fn result(result: &AttemptResult) -> Value {
    json!({
        "score": result.score,
        "max_score": result.max_score,
        "percent": result.percent,
        "passed": result.passed,
        "correct": result.correct,
        "answered": result.answered,
        "questions": result.questions,
        "submitted_at": rfc3339(result.submitted_at),
        "late": result.late,
        "closed_by": result.closed_by,
    })
}

/// An attempt: its answers and, once submitted, its result (never the paper's answers).
pub fn attempt(attempt: &Attempt) -> Value {
    json!({
        "attempt_id": attempt.id,
        "exam_id": attempt.exam_id,
        "exam_title": attempt.exam_title,
        "user_id": attempt.user_id,
        "status": attempt.status,
        "started_at": rfc3339(attempt.started_at),
        "deadline": rfc3339(attempt.deadline),
        "question_ids": attempt.paper.iter().map(|p| &p.question_id).collect::<Vec<_>>(),
        "answers": attempt.answers,
        "result": attempt.result.as_ref().map(result),
        "review": {
            "shows": attempt.review.shows,
            "from": attempt.review.from.map(rfc3339),
        },
    })
}

/// An attempt with `questions`: its paper without answers while its student sits it, `null`
/// otherwise; and `marks`: whether each answer was right, once its reader may see it, `null`
/// otherwise (`POST /exams/{id}/attempts`, `GET /attempts/{id}`, `POST /attempts/{id}/submit`).
pub fn attempt_view(view: &AttemptView) -> Value {
    let mut body = attempt(&view.attempt);
    body["questions"] = match &view.paper {
        Some(paper) => paper.iter().map(student_question).collect(),
        None => Value::Null,
    };
    body["marks"] = json!(view.marks);
    body
}

/// An attempt in a list.
pub fn summary(summary: &AttemptSummary) -> Value {
    json!({
        "attempt_id": summary.attempt_id,
        "exam_id": summary.exam_id,
        "exam_title": summary.exam_title,
        "user_id": summary.user_id,
        "status": summary.status,
        "started_at": rfc3339(summary.started_at),
        "deadline": rfc3339(summary.deadline),
        "result": summary.result.as_ref().map(result),
    })
}
