use async_trait::async_trait;

use super::error::conflicts;
use super::{StoreError, StoreUnavailable};
use crate::exam::{
    Answers, Attempt, AttemptCursor, AttemptId, AttemptResult, AttemptSummary, Exam, ExamCursor,
    ExamId, Question, QuestionId,
};
use crate::user::UserId;

conflicts! {
    /// Why a change to the exams or their questions was refused.
    pub enum ExamConflict {
        /// An exam with this id exists already.
        ExamExists => "exam_exists",
        /// A question with this id exists already.
        QuestionExists => "question_exists",
        /// The exam's version is not the one the change was based on.
        StaleVersion => "stale_version",
        /// Another write to the same items won a race (a cancelled transaction).
        ConcurrentUpdate => "concurrent_update",
        /// The exam has the maximum number of questions.
        TooManyQuestions => "too_many_questions",
        /// The exam is published: its questions keep the options, right option and points its
        /// attempts are graded on, and stay.
        Published => "published",
    }
}

conflicts! {
    /// Why a change to an attempt was refused.
    pub enum AttemptConflict {
        /// An attempt with this id exists already.
        AttemptExists => "attempt_exists",
        /// The student has an open attempt at this exam (in progress, before its deadline).
        AttemptInProgress => "attempt_in_progress",
        /// The student has started as many attempts at this exam as it allows.
        AttemptsExhausted => "attempts_exhausted",
        /// The attempt is submitted or past its deadline.
        AttemptClosed => "attempt_closed",
        /// The attempt was submitted already.
        AlreadySubmitted => "already_submitted",
        /// The stored answers are not those the result was graded on (saved meanwhile).
        AnswersChanged => "answers_changed",
        /// The attempt is still in progress (its result email cannot be claimed yet).
        NotSubmitted => "not_submitted",
        /// Another write to the same items won a race (a cancelled transaction).
        ConcurrentUpdate => "concurrent_update",
        /// The exam changed since the attempt was started from it
        /// ([`crate::exam::Attempt::exam_version`]): start again from the exam as it is.
        ExamChanged => "exam_changed",
    }
}

/// An attempt's entry among those the attempt sweep reads: there from the attempt's creation,
/// due at its deadline; its submit moves it to when the sweep is to check that the result email
/// left; the sweep clears it once the attempt is closed and its result email on its way.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DueAttempt {
    /// When the sweep is to look at the attempt, epoch seconds (entries sort by it first).
    pub due_at: i64,
    /// The attempt.
    pub attempt_id: AttemptId,
}

impl DueAttempt {
    /// The entry of `attempt` while it is in progress: due at its deadline.
    pub fn of(attempt: &Attempt) -> Self {
        Self::at(attempt, attempt.deadline)
    }

    /// The entry of `attempt` due at `due_at`.
    pub fn at(attempt: &Attempt, due_at: i64) -> Self {
        Self {
            due_at,
            attempt_id: attempt.id.clone(),
        }
    }
}

/// Exams and their questions. Reads are strongly consistent (a read after a write sees it).
#[async_trait]
pub trait ExamStore: Send + Sync {
    /// Creates `exam`; `ExamExists` if the id is taken.
    async fn create_exam(&self, exam: &Exam) -> Result<(), StoreError<ExamConflict>>;
    /// The exam with this id.
    async fn get_exam(&self, id: &ExamId) -> Result<Option<Exam>, StoreUnavailable>;
    /// Replaces the exam's fields and status with `exam`'s if the stored version is
    /// `expected_version` (`StaleVersion` otherwise, `NotFound` if absent); `exam.version`
    /// is the new version. Keeps the published list in step: a published exam is listed (with
    /// its current fields), a draft is not.
    async fn save_exam(
        &self,
        exam: &Exam,
        expected_version: u64,
    ) -> Result<(), StoreError<ExamConflict>>;
    /// Deletes the exam and its questions, and unlists it. Attempts and their results stay.
    /// `NotFound` if absent.
    async fn delete_exam(&self, id: &ExamId) -> Result<(), StoreError<ExamConflict>>;
    /// Published exams, newest `published_at` first (ties by id), at most `limit`, starting
    /// after `after`.
    async fn list_published(
        &self,
        limit: usize,
        after: Option<&ExamCursor>,
    ) -> Result<Vec<Exam>, StoreUnavailable>;
    /// Adds `question` to its exam and bumps the exam's `question_count` and `version`.
    /// `NotFound` if the exam is absent; `TooManyQuestions` at `max_questions`.
    async fn add_question(
        &self,
        question: &Question,
        max_questions: u32,
    ) -> Result<(), StoreError<ExamConflict>>;
    /// One question of an exam.
    async fn get_question(
        &self,
        exam: &ExamId,
        id: &QuestionId,
    ) -> Result<Option<Question>, StoreUnavailable>;
    /// Replaces a question's fields with `question`'s, if they are still those of `was` (the
    /// question as its caller read it): `ConcurrentUpdate` if another write changed them since,
    /// so an edit is never made over one its caller did not see. A published exam's question
    /// keeps what its attempts are graded on (`Published` for an edit of its options, right
    /// option or points; [`Question::same_grading`]), judged on the exam as it is when the edit
    /// lands, so an edit that raced the exam's publishing cannot slip in. `NotFound` if absent.
    async fn save_question(
        &self,
        question: &Question,
        was: &Question,
    ) -> Result<(), StoreError<ExamConflict>>;
    /// Removes a question of a draft and lowers the exam's `question_count` (bumping its
    /// `version`). A published exam keeps its questions (`Published`), judged on the exam as it
    /// is when the question goes, so a removal that raced the exam's publishing cannot slip in.
    /// `NotFound` if absent.
    async fn delete_question(
        &self,
        exam: &ExamId,
        id: &QuestionId,
    ) -> Result<(), StoreError<ExamConflict>>;
    /// The questions of an exam, in the order they were added (`created_at`, then id).
    async fn list_questions(&self, exam: &ExamId) -> Result<Vec<Question>, StoreUnavailable>;
}

/// Attempts, their answers and results, and the lists of them by student and by exam.
#[async_trait]
pub trait AttemptStore: Send + Sync {
    /// Creates `attempt` (and its entries in the student's and the exam's lists and among the
    /// [due attempts](Self::due_attempts)), unless its
    /// student has an open attempt at the same exam — one in progress whose deadline is after
    /// `attempt.started_at` (`AttemptInProgress`) — or has started `max_attempts` attempts at it
    /// already, submitted or not (`AttemptsExhausted`); `AttemptExists` if the id is taken by
    /// another attempt. Creating an attempt stored exactly as given succeeds and changes nothing
    /// (a retried write that had landed). One conditional write: of concurrent creates for one
    /// student and exam, only those within both limits succeed. `NotFound` if its exam is not
    /// there or not published, in the same write: an exam deleted after the start read it
    /// leaves no attempt behind; `ExamChanged` if the exam is no longer at the attempt's
    /// `exam_version` (when it names one), in the same write too.
    async fn create_attempt(
        &self,
        attempt: &Attempt,
        max_attempts: u32,
    ) -> Result<(), StoreError<AttemptConflict>>;
    /// The attempt with this id.
    async fn get_attempt(&self, id: &AttemptId) -> Result<Option<Attempt>, StoreUnavailable>;
    /// Replaces the saved answers, if the attempt is in progress and `now` is before its
    /// deadline (`AttemptClosed` otherwise; `NotFound` if absent).
    async fn save_answers(
        &self,
        id: &AttemptId,
        answers: &Answers,
        now: i64,
    ) -> Result<(), StoreError<AttemptConflict>>;
    /// Records `result`, marks the attempt submitted and claims its result email for
    /// `email_job_id` — only if it is still in progress (`AlreadySubmitted`
    /// otherwise) and its stored answers are `graded`, those `result` grades (`AnswersChanged`
    /// otherwise: read and grade it again). Updates both list entries; the student may then
    /// start another attempt, if the exam allows one more. Moves the attempt's due entry from
    /// its deadline to `email_check_at`, when the sweep is to check that its result email left.
    /// The same submit again, once it has landed, succeeds and changes nothing (a retried write
    /// whose answer was lost). All in one write.
    async fn submit(
        &self,
        id: &AttemptId,
        result: &AttemptResult,
        graded: &Answers,
        email_job_id: &str,
        email_check_at: i64,
    ) -> Result<(), StoreError<AttemptConflict>>;
    /// Claims the result email of a submitted attempt for `job_id` if no job holds it; `false`
    /// if another one does (`true` again for `job_id`'s own claim: a retried write that landed).
    async fn claim_result_email(
        &self,
        id: &AttemptId,
        job_id: &str,
    ) -> Result<bool, StoreError<AttemptConflict>>;
    /// Releases the claim of `job_id` (its job could not be queued), so a later submit can queue
    /// the email again. Does nothing if another job holds the claim.
    async fn release_result_email(
        &self,
        id: &AttemptId,
        job_id: &str,
    ) -> Result<(), StoreError<AttemptConflict>>;
    /// The entries due at or before `now` that the sweep has not cleared, the earliest first
    /// (ties by id), at most `limit`. Every created attempt has one (written with it, due at its
    /// deadline; due at its result email's check once it is submitted).
    async fn due_attempts(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<DueAttempt>, StoreUnavailable>;
    /// Clears `due` from the due attempts; clearing an entry that is not there does nothing.
    async fn clear_due(&self, due: &DueAttempt) -> Result<(), StoreUnavailable>;
    /// A page of a student's attempts, newest `started_at` first (ties by id descending): at
    /// most `limit`, starting after `after`. Reads no more than `limit` attempts.
    async fn attempts_of_user(
        &self,
        user: &UserId,
        limit: usize,
        after: Option<&AttemptCursor>,
    ) -> Result<Vec<AttemptSummary>, StoreUnavailable>;
    /// A page of the attempts at an exam, in the same order and with the same bounds as
    /// [`Self::attempts_of_user`].
    async fn attempts_of_exam(
        &self,
        exam: &ExamId,
        limit: usize,
        after: Option<&AttemptCursor>,
    ) -> Result<Vec<AttemptSummary>, StoreUnavailable>;
}
