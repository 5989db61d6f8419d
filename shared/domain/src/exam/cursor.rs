//! Positions in the paged lists, newest first: where the next page starts. The API hands them to
//! clients only signed, as cursors bound to their list (`security::CursorKeys`).

use serde::{Deserialize, Serialize};

use super::{AttemptId, AttemptSummary, Exam, ExamId};

/// Where the published list continues: after this exam (the list is newest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExamCursor {
    /// `published_at` of the last exam of the previous page.
    pub published_at: i64,
    /// Its id (ties).
    pub exam_id: ExamId,
}

impl ExamCursor {
    /// The cursor after `exam` (which must be published).
    pub fn after(exam: &Exam) -> Self {
        Self {
            published_at: exam.published_at.unwrap_or(exam.created_at),
            exam_id: exam.id.clone(),
        }
    }
}

/// Where a list of attempts (a student's, an exam's) continues: after this attempt (the lists are
/// newest `started_at` first, ties by id descending).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptCursor {
    /// `started_at` of the last attempt of the previous page.
    pub started_at: i64,
    /// Its id (ties).
    pub attempt_id: AttemptId,
}

impl AttemptCursor {
    /// The cursor after `attempt`.
    pub fn after(attempt: &AttemptSummary) -> Self {
        Self {
            started_at: attempt.started_at,
            attempt_id: attempt.attempt_id.clone(),
        }
    }
}
