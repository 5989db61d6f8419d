//! The JSON shapes exam-api answers with: each a type, whose schema is the one in the OpenAPI
//! document ([`crate::openapi`]). Times are RFC 3339. A student's view of a question is built
//! from [`StudentQuestion`], which has no answer field, and reaches them only in their open
//! attempt's paper.

use std::collections::BTreeMap;

use oes_domain::clock::rfc3339;
use oes_domain::exam::{
    Attempt, AttemptId, AttemptResult, AttemptStatus, AttemptSummary, ClosedBy, Exam, ExamId,
    ExamStatus, Question, QuestionId, ReviewPolicy, ReviewShows, StudentQuestion,
};
use oes_domain::user::UserId;
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::service::{AttemptView, ExamOutline};

/// An exam.
#[derive(Serialize, ToSchema)]
pub struct ExamView {
    /// Its id.
    pub exam_id: ExamId,
    /// Who wrote it.
    pub owner_id: UserId,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Time allowed for an attempt.
    pub duration_minutes: u32,
    /// The percentage of the points that passes.
    pub pass_mark_percent: u8,
    /// `draft` (only its owner and admins see it) or `published`.
    pub status: ExamStatus,
    /// Number of questions.
    pub question_count: u32,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
    /// RFC 3339, once published.
    pub published_at: Option<String>,
    /// RFC 3339: no attempt starts before it.
    pub opens_at: Option<String>,
    /// RFC 3339: no attempt starts after it, and none runs past it.
    pub closes_at: Option<String>,
    /// Attempts each student may start.
    pub max_attempts: u32,
    /// What a student sees of a submitted attempt, and from when.
    pub review: ReviewPolicy,
}

/// An exam.
pub fn exam(exam: &Exam) -> ExamView {
    ExamView {
        exam_id: exam.id.clone(),
        owner_id: exam.owner_id.clone(),
        title: exam.title.clone(),
        description: exam.description.clone(),
        duration_minutes: exam.duration_minutes,
        pass_mark_percent: exam.pass_mark_percent,
        status: exam.status,
        question_count: exam.question_count,
        created_at: rfc3339(exam.created_at),
        updated_at: rfc3339(exam.updated_at),
        published_at: exam.published_at.map(rfc3339),
        opens_at: exam.rules.opens_at.map(rfc3339),
        closes_at: exam.rules.closes_at.map(rfc3339),
        max_attempts: exam.rules.max_attempts,
        review: exam.rules.review,
    }
}

/// An exam with the points of its questions (`GET /exams/{exam_id}`).
#[derive(Serialize, ToSchema)]
pub struct ExamOutlineView {
    /// The exam.
    #[serde(flatten)]
    pub exam: ExamView,
    /// The points of all its questions.
    pub total_points: u32,
}

/// An exam with the points of its questions.
pub fn exam_outline(outline: &ExamOutline) -> ExamOutlineView {
    ExamOutlineView {
        exam: exam(&outline.exam),
        total_points: outline.total_points,
    }
}

/// A question with its answer (owners and admins).
#[derive(Serialize, ToSchema)]
pub struct QuestionView {
    /// Its id.
    pub question_id: QuestionId,
    /// The question.
    pub text: String,
    /// The options, 2 to 10.
    pub options: Vec<String>,
    /// The index of the right option.
    pub correct_option: u8,
    /// What a right answer scores.
    pub points: u32,
}

/// A question with its answer.
pub fn question(question: &Question) -> QuestionView {
    QuestionView {
        question_id: question.id.clone(),
        text: question.text.clone(),
        options: question.options.clone(),
        correct_option: question.correct_option,
        points: question.points,
    }
}

/// A question without its answer (a student, inside their open attempt).
#[derive(Serialize, ToSchema)]
pub struct StudentQuestionView {
    /// Its id.
    pub question_id: QuestionId,
    /// The question.
    #[schema(value_type = String)]
    pub text: Box<RawValue>,
    /// The options.
    #[schema(value_type = Vec<String>)]
    pub options: Box<RawValue>,
    /// What a right answer scores.
    pub points: u32,
}

/// A question without its answer.
pub fn student_question(question: StudentQuestion) -> StudentQuestionView {
    StudentQuestionView {
        question_id: question.id,
        text: question.text,
        options: question.options,
        points: question.points,
    }
}

/// A graded result.
#[derive(Serialize, ToSchema)]
pub struct ResultView {
    /// Points scored.
    pub score: u32,
    /// Points available.
    pub max_score: u32,
    /// `score` as a whole percentage of `max_score`.
    pub percent: u32,
    /// Whether `percent` reaches the pass mark.
    pub passed: bool,
    /// Questions answered right.
    pub correct: u32,
    /// Questions answered.
    pub answered: u32,
    /// Questions on the paper.
    pub questions: u32,
    /// RFC 3339.
    pub submitted_at: String,
    /// Whether it was submitted after the deadline (answers saved late do not count).
    pub late: bool,
    /// `student` (submitted) or `deadline` (closed by the attempt sweep).
    pub closed_by: ClosedBy,
}

/// A graded result.
pub fn result(result: &AttemptResult) -> ResultView {
    ResultView {
        score: result.score,
        max_score: result.max_score,
        percent: result.percent,
        passed: result.passed,
        correct: result.correct,
        answered: result.answered,
        questions: result.questions,
        submitted_at: rfc3339(result.submitted_at),
        late: result.late,
        closed_by: result.closed_by,
    }
}

/// What a student sees of their submitted attempt, and from when.
#[derive(Serialize, ToSchema)]
pub struct ReviewView {
    /// What the review shows.
    pub shows: ReviewShows,
    /// RFC 3339: from when it shows; `null`: from submission. Once submitted, a review from the
    /// close names the exam's close as it is now; while under way, the close of its start.
    pub from: Option<String>,
}

/// An attempt: its answers and, once submitted, its result (never the paper's answers).
#[derive(Serialize, ToSchema)]
pub struct AttemptBody {
    /// Its id.
    pub attempt_id: AttemptId,
    /// The exam.
    pub exam_id: ExamId,
    /// The exam's title when the attempt started.
    pub exam_title: String,
    /// The student.
    pub user_id: UserId,
    /// `in_progress` or `submitted`.
    pub status: AttemptStatus,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339: answers saved after it do not count.
    pub deadline: String,
    /// The paper's questions, in its order.
    pub question_ids: Vec<QuestionId>,
    /// The chosen option of each answered question.
    pub answers: BTreeMap<QuestionId, u8>,
    /// Once submitted, and its reader may see it.
    pub result: Option<ResultView>,
    /// What its student sees once it is submitted.
    pub review: ReviewView,
}

/// An attempt.
pub fn attempt(attempt: &Attempt) -> AttemptBody {
    AttemptBody {
        attempt_id: attempt.id.clone(),
        exam_id: attempt.exam_id.clone(),
        exam_title: attempt.exam_title.clone(),
        user_id: attempt.user_id.clone(),
        status: attempt.status,
        started_at: rfc3339(attempt.started_at),
        deadline: rfc3339(attempt.deadline),
        question_ids: attempt
            .paper
            .iter()
            .map(|p| p.question_id.clone())
            .collect(),
        answers: attempt.answers.clone(),
        result: attempt.result.as_ref().map(result),
        review: ReviewView {
            shows: attempt.review.shows,
            from: attempt.review.from.map(rfc3339),
        },
    }
}

/// An attempt with `questions`: its paper without answers while its student sits it, `null`
/// otherwise; and `marks`: whether each answer was right, once its reader may see it, `null`
/// otherwise (`POST /exams/{exam_id}/attempts`, `GET /attempts/{attempt_id}`,
/// `POST /attempts/{attempt_id}/submit`).
#[derive(Serialize, ToSchema)]
pub struct AttemptPaperView {
    /// The attempt.
    #[serde(flatten)]
    pub attempt: AttemptBody,
    /// The paper without answers, while its student sits it.
    pub questions: Option<Vec<StudentQuestionView>>,
    /// Whether each answer was right, once its reader may see it.
    pub marks: Option<BTreeMap<QuestionId, bool>>,
}

/// An attempt with its paper or its marks.
pub fn attempt_view(view: AttemptView) -> AttemptPaperView {
    AttemptPaperView {
        attempt: attempt(&view.attempt),
        questions: view
            .paper
            .map(|paper| paper.into_iter().map(student_question).collect()),
        marks: view.marks,
    }
}

/// An attempt in a list.
#[derive(Serialize, ToSchema)]
pub struct SummaryView {
    /// Its id.
    pub attempt_id: AttemptId,
    /// The exam.
    pub exam_id: ExamId,
    /// The exam's title when the attempt started.
    pub exam_title: String,
    /// The student.
    pub user_id: UserId,
    /// `in_progress` or `submitted`.
    pub status: AttemptStatus,
    /// RFC 3339.
    pub started_at: String,
    /// RFC 3339.
    pub deadline: String,
    /// Once submitted, and its reader may see it.
    pub result: Option<ResultView>,
}

/// An attempt in a list.
pub fn summary(summary: &AttemptSummary) -> SummaryView {
    SummaryView {
        attempt_id: summary.attempt_id.clone(),
        exam_id: summary.exam_id.clone(),
        exam_title: summary.exam_title.clone(),
        user_id: summary.user_id.clone(),
        status: summary.status,
        started_at: rfc3339(summary.started_at),
        deadline: rfc3339(summary.deadline),
        result: summary.result.as_ref().map(result),
    }
}

/// `GET /exams`: a page of published exams.
#[derive(Serialize, ToSchema)]
pub struct ExamList {
    /// The page.
    pub exams: Vec<ExamView>,
    /// Pass as `?cursor=` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// `GET /exams/{exam_id}/results`: a page of an exam's attempts.
#[derive(Serialize, ToSchema)]
pub struct ResultList {
    /// The page.
    pub results: Vec<SummaryView>,
    /// Pass as `?cursor=` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// `GET /me/attempts`: a page of the caller's attempts.
#[derive(Serialize, ToSchema)]
pub struct AttemptList {
    /// The page.
    pub attempts: Vec<SummaryView>,
    /// Pass as `?cursor=` for the next page; `null` on the last.
    pub next_cursor: Option<String>,
}

/// `GET /exams/{exam_id}/questions`: every question of an exam, with answers.
#[derive(Serialize, ToSchema)]
pub struct QuestionList {
    /// The questions, in order.
    pub questions: Vec<QuestionView>,
}
