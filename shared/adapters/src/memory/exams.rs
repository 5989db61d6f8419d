//! Exams and their questions in maps, with the semantics and errors of
//! [`crate::dynamo::DynamoExams`]. The published list is derived from the exams on every read, so
//! it is always in step with them: newest `published_at` first (an exam without one counts from
//! its `created_at`, as in [`ExamCursor::after`]), ties by id descending.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use oes_domain::exam::{Exam, ExamCursor, ExamId, Question, QuestionId};
use oes_domain::ports::{ExamConflict, ExamStore, StoreError, StoreUnavailable};

use super::lock;

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

impl MemoryExams {
    /// The version of exam `id` if it is stored and published: what an attempt's creation is
    /// conditioned on ([`super::MemoryAttempts`], as the DynamoDB adapter's condition check on
    /// the exam).
    pub fn published_version(&self, id: &ExamId) -> Option<u64> {
        lock(&self.0)
            .exams
            .get(id)
            .filter(|exam| exam.is_published())
            .map(|exam| exam.version)
    }
}

#[async_trait]
impl ExamStore for MemoryExams {
    async fn create_exam(&self, exam: &Exam) -> Result<(), StoreError<ExamConflict>> {
        let mut inner = lock(&self.0);
        if inner.exams.contains_key(&exam.id) {
            return Err(StoreError::Conflict(ExamConflict::ExamExists));
        }
        inner.exams.insert(exam.id.clone(), exam.clone());
        Ok(())
    }

    async fn get_exam(&self, id: &ExamId) -> Result<Option<Exam>, StoreUnavailable> {
        Ok(lock(&self.0).exams.get(id).cloned())
    }

    async fn save_exam(
        &self,
        exam: &Exam,
        expected_version: u64,
    ) -> Result<(), StoreError<ExamConflict>> {
        let mut inner = lock(&self.0);
        let stored = inner.exams.get_mut(&exam.id).ok_or(StoreError::NotFound)?;
        if stored.version != expected_version {
            return Err(StoreError::Conflict(ExamConflict::StaleVersion));
        }
        // The question count is the store's, not the caller's.
        *stored = Exam {
            question_count: stored.question_count,
            ..exam.clone()
        };
        Ok(())
    }

    async fn delete_exam(&self, id: &ExamId) -> Result<(), StoreError<ExamConflict>> {
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
    ) -> Result<Vec<Exam>, StoreUnavailable> {
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
    ) -> Result<(), StoreError<ExamConflict>> {
        let mut inner = lock(&self.0);
        let ExamsInner { exams, questions } = &mut *inner;
        let exam = exams
            .get_mut(&question.exam_id)
            .ok_or(StoreError::NotFound)?;
        if exam.question_count >= max_questions {
            return Err(StoreError::Conflict(ExamConflict::TooManyQuestions));
        }
        let of_exam = questions.entry(question.exam_id.clone()).or_default();
        if of_exam.contains_key(&question.id) {
            return Err(StoreError::Conflict(ExamConflict::QuestionExists));
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
    ) -> Result<Option<Question>, StoreUnavailable> {
        Ok(lock(&self.0)
            .questions
            .get(exam)
            .and_then(|q| q.get(id))
            .cloned())
    }

    async fn save_question(
        &self,
        question: &Question,
        was: &Question,
    ) -> Result<(), StoreError<ExamConflict>> {
        let mut inner = lock(&self.0);
        let ExamsInner { exams, questions } = &mut *inner;
        let stored = questions
            .get_mut(&question.exam_id)
            .and_then(|q| q.get_mut(&question.id))
            .ok_or(StoreError::NotFound)?;
        // Already as the edit would make it (the same edit made twice): saved, as DynamoDB's
        // adapter answers it.
        if stored.same_fields(question) {
            return Ok(());
        }
        let published = exams.get(&question.exam_id).is_some_and(Exam::is_published);
        if published && !question.same_grading(was) {
            return Err(StoreError::Conflict(ExamConflict::Published));
        }
        if !stored.same_fields(was) {
            return Err(StoreError::Conflict(ExamConflict::ConcurrentUpdate));
        }
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
    ) -> Result<(), StoreError<ExamConflict>> {
        let mut inner = lock(&self.0);
        let ExamsInner { exams, questions } = &mut *inner;
        let stored = exams.get_mut(exam).ok_or(StoreError::NotFound)?;
        let of_exam = questions
            .get_mut(exam)
            .filter(|q| q.contains_key(id))
            .ok_or(StoreError::NotFound)?;
        if stored.is_published() {
            return Err(StoreError::Conflict(ExamConflict::Published));
        }
        of_exam.remove(id);
        stored.question_count = stored.question_count.saturating_sub(1);
        stored.version += 1;
        Ok(())
    }

    async fn list_questions(&self, exam: &ExamId) -> Result<Vec<Question>, StoreUnavailable> {
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
