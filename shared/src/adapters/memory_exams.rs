//! Exams, questions and attempts in memory (the embedded mode and unit tests), with the same
//! semantics and errors as the DynamoDB adapters in [`super::dynamo_exams`].
//!
//! - [`MemoryExams`]: exams and their questions, one map each behind a mutex. The published list
//!   is derived from the exams on every read, so it is always in step with them.
//! - [`MemoryAttempts`]: attempts in a map; the lists by student and by exam are derived from it.
//!
//! Orders shared with DynamoDB: the published list is newest `published_at` first (an exam
//! without one counts from its `created_at`, as in [`ExamCursor::after`]), ties by id
//! descending; attempt lists are newest `started_at` first, ties by id descending.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::exam::{
    Answers, Attempt, AttemptId, AttemptResult, AttemptStatus, AttemptSummary, Exam, ExamCursor,
    ExamId, Question, QuestionId,
};
use crate::ports::{AttemptStore, ExamStore, StoreError};
use crate::user::UserId;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock means a panic elsewhere already failed a test; keep the data usable.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Where an exam sits in the published list (compared descending).
fn list_position(exam: &Exam) -> (i64, &ExamId) {
    (exam.published_at.unwrap_or(exam.created_at), &exam.id)
}

#[derive(Default)]
struct ExamsInner {
    exams: HashMap<ExamId, Exam>,
    questions: HashMap<ExamId, HashMap<QuestionId, Question>>,
}

/// Exams and questions in maps.
#[derive(Default)]
pub struct MemoryExams(Mutex<ExamsInner>);

#[async_trait]
impl ExamStore for MemoryExams {
    async fn create_exam(&self, exam: &Exam) -> Result<(), StoreError> {
        let mut inner = lock(&self.0);
        if inner.exams.contains_key(&exam.id) {
            return Err(StoreError::Conflict("exam_exists"));
        }
        inner.exams.insert(exam.id.clone(), exam.clone());
        Ok(())
    }

    async fn get_exam(&self, id: &ExamId) -> Result<Option<Exam>, StoreError> {
        Ok(lock(&self.0).exams.get(id).cloned())
    }

    async fn save_exam(&self, exam: &Exam, expected_version: u64) -> Result<(), StoreError> {
        let mut inner = lock(&self.0);
        let stored = inner.exams.get_mut(&exam.id).ok_or(StoreError::NotFound)?;
        if stored.version != expected_version {
            return Err(StoreError::Conflict("version"));
        }
        // The question count is the store's, not the caller's.
        *stored = Exam {
            question_count: stored.question_count,
            ..exam.clone()
        };
        Ok(())
    }

    async fn delete_exam(&self, id: &ExamId) -> Result<(), StoreError> {
        let mut inner = lock(&self.0);
        inner.questions.remove(id);
        inner
            .exams
            .remove(id)
            .map(|_| ())
            .ok_or(StoreError::NotFound)
    }

    async fn list_published(
        &self,
        limit: usize,
        after: Option<&ExamCursor>,
    ) -> Result<Vec<Exam>, StoreError> {
        let inner = lock(&self.0);
        let mut published: Vec<&Exam> = inner
            .exams
            .values()
            .filter(|e| e.is_published())
            .filter(|e| after.is_none_or(|c| list_position(e) < (c.published_at, &c.exam_id)))
            .collect();
        published.sort_by(|a, b| list_position(b).cmp(&list_position(a)));
        Ok(published.into_iter().take(limit).cloned().collect())
    }

    async fn add_question(
        &self,
        question: &Question,
        max_questions: u32,
    ) -> Result<(), StoreError> {
        let mut inner = lock(&self.0);
        let ExamsInner { exams, questions } = &mut *inner;
        let exam = exams
            .get_mut(&question.exam_id)
            .ok_or(StoreError::NotFound)?;
        if exam.question_count >= max_questions {
            return Err(StoreError::Conflict("too_many_questions"));
        }
        let of_exam = questions.entry(question.exam_id.clone()).or_default();
        if of_exam.contains_key(&question.id) {
            return Err(StoreError::Conflict("question_exists"));
        }
        of_exam.insert(question.id.clone(), question.clone());
        exam.question_count += 1;
        exam.version += 1;
        Ok(())
    }

    async fn get_question(
        &self,
        exam: &ExamId,
        id: &QuestionId,
    ) -> Result<Option<Question>, StoreError> {
        Ok(lock(&self.0)
            .questions
            .get(exam)
            .and_then(|q| q.get(id))
            .cloned())
    }

    async fn save_question(&self, question: &Question) -> Result<(), StoreError> {
        let mut inner = lock(&self.0);
        let stored = inner
            .questions
            .get_mut(&question.exam_id)
            .and_then(|q| q.get_mut(&question.id))
            .ok_or(StoreError::NotFound)?;
        // Its place in the exam (`created_at`) stays.
        stored.text.clone_from(&question.text);
        stored.options.clone_from(&question.options);
        stored.correct_option = question.correct_option;
        stored.points = question.points;
        Ok(())
    }

    async fn delete_question(
        &self,
        exam: &ExamId,
        id: &QuestionId,
        keep_at_least: u32,
    ) -> Result<(), StoreError> {
        let mut inner = lock(&self.0);
        let ExamsInner { exams, questions } = &mut *inner;
        let stored = exams.get_mut(exam).ok_or(StoreError::NotFound)?;
        let of_exam = questions
            .get_mut(exam)
            .filter(|q| q.contains_key(id))
            .ok_or(StoreError::NotFound)?;
        if stored.question_count <= keep_at_least {
            return Err(StoreError::Conflict("last_question"));
        }
        of_exam.remove(id);
        stored.question_count = stored.question_count.saturating_sub(1);
        stored.version += 1;
        Ok(())
    }

    async fn list_questions(&self, exam: &ExamId) -> Result<Vec<Question>, StoreError> {
        let inner = lock(&self.0);
        let mut questions: Vec<Question> = inner
            .questions
            .get(exam)
            .map(|q| q.values().cloned().collect())
            .unwrap_or_default();
        questions.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(questions)
    }
}

/// Attempts in a map.
#[derive(Default)]
pub struct MemoryAttempts(Mutex<HashMap<AttemptId, Attempt>>);

impl MemoryAttempts {
    fn summaries(&self, keep: impl Fn(&Attempt) -> bool) -> Vec<AttemptSummary> {
        let attempts = lock(&self.0);
        let mut listed: Vec<&Attempt> = attempts.values().filter(|a| keep(a)).collect();
        listed.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
        listed.into_iter().map(Attempt::summary).collect()
    }
}

#[async_trait]
impl AttemptStore for MemoryAttempts {
    async fn create_attempt(&self, attempt: &Attempt) -> Result<(), StoreError> {
        let mut attempts = lock(&self.0);
        if attempts.contains_key(&attempt.id) {
            return Err(StoreError::Conflict("attempt_exists"));
        }
        attempts.insert(attempt.id.clone(), attempt.clone());
        Ok(())
    }

    async fn get_attempt(&self, id: &AttemptId) -> Result<Option<Attempt>, StoreError> {
        Ok(lock(&self.0).get(id).cloned())
    }

    async fn save_answers(
        &self,
        id: &AttemptId,
        answers: &Answers,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut attempts = lock(&self.0);
        let attempt = attempts.get_mut(id).ok_or(StoreError::NotFound)?;
        if !attempt.is_open(now) {
            return Err(StoreError::Conflict("attempt_closed"));
        }
        attempt.answers.clone_from(answers);
        Ok(())
    }

    async fn submit(
        &self,
        id: &AttemptId,
        result: &AttemptResult,
        email_job_id: &str,
    ) -> Result<(), StoreError> {
        let mut attempts = lock(&self.0);
        let attempt = attempts.get_mut(id).ok_or(StoreError::NotFound)?;
        if attempt.status != AttemptStatus::InProgress {
            return Err(StoreError::Conflict("already_submitted"));
        }
        attempt.status = AttemptStatus::Submitted;
        attempt.result = Some(result.clone());
        attempt.result_email_job = Some(email_job_id.to_owned());
        Ok(())
    }

    async fn claim_result_email(&self, id: &AttemptId, job_id: &str) -> Result<bool, StoreError> {
        let mut attempts = lock(&self.0);
        let attempt = attempts.get_mut(id).ok_or(StoreError::NotFound)?;
        if attempt.status != AttemptStatus::Submitted {
            return Err(StoreError::Conflict("not_submitted"));
        }
        if attempt.result_email_job.is_some() {
            return Ok(false);
        }
        attempt.result_email_job = Some(job_id.to_owned());
        Ok(true)
    }

    async fn release_result_email(&self, id: &AttemptId, job_id: &str) -> Result<(), StoreError> {
        let mut attempts = lock(&self.0);
        let attempt = attempts.get_mut(id).ok_or(StoreError::NotFound)?;
        if attempt.result_email_job.as_deref() == Some(job_id) {
            attempt.result_email_job = None;
        }
        Ok(())
    }

    async fn attempts_of_user(&self, user: &UserId) -> Result<Vec<AttemptSummary>, StoreError> {
        Ok(self.summaries(|a| &a.user_id == user))
    }

    async fn attempts_of_exam(&self, exam: &ExamId) -> Result<Vec<AttemptSummary>, StoreError> {
        Ok(self.summaries(|a| &a.exam_id == exam))
    }
}
