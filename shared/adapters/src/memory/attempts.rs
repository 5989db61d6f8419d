//! Attempts in a map, with the semantics and errors of [`crate::dynamo::DynamoAttempts`]; the
//! lists by student and by exam are derived from it, newest `started_at` first, ties by id
//! descending. The one open attempt per student and exam is checked under the map's lock (the
//! DynamoDB adapter keeps a marker item for it).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use oes_domain::exam::{
    Answers, Attempt, AttemptId, AttemptResult, AttemptStatus, AttemptSummary, ExamId,
};
use oes_domain::ports::{AttemptConflict, AttemptStore, StoreError, StoreUnavailable};
use oes_domain::user::UserId;

use super::lock;

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
    async fn create_attempt(&self, attempt: &Attempt) -> Result<(), StoreError<AttemptConflict>> {
        let mut attempts = lock(&self.0);
        if attempts.contains_key(&attempt.id) {
            return Err(StoreError::Conflict(AttemptConflict::AttemptExists));
        }
        let open = attempts.values().any(|a| {
            a.exam_id == attempt.exam_id
                && a.user_id == attempt.user_id
                && a.is_open(attempt.started_at)
        });
        if open {
            return Err(StoreError::Conflict(AttemptConflict::AttemptInProgress));
        }
        attempts.insert(attempt.id.clone(), attempt.clone());
        Ok(())
    }

    async fn get_attempt(&self, id: &AttemptId) -> Result<Option<Attempt>, StoreUnavailable> {
        Ok(lock(&self.0).get(id).cloned())
    }

    async fn save_answers(
        &self,
        id: &AttemptId,
        answers: &Answers,
        now: i64,
    ) -> Result<(), StoreError<AttemptConflict>> {
        let mut attempts = lock(&self.0);
        let attempt = attempts.get_mut(id).ok_or(StoreError::NotFound)?;
        if !attempt.is_open(now) {
            return Err(StoreError::Conflict(AttemptConflict::AttemptClosed));
        }
        attempt.answers.clone_from(answers);
        Ok(())
    }

    async fn submit(
        &self,
        id: &AttemptId,
        result: &AttemptResult,
        email_job_id: &str,
    ) -> Result<(), StoreError<AttemptConflict>> {
        let mut attempts = lock(&self.0);
        let attempt = attempts.get_mut(id).ok_or(StoreError::NotFound)?;
        if attempt.status != AttemptStatus::InProgress {
            return Err(StoreError::Conflict(AttemptConflict::AlreadySubmitted));
        }
        attempt.status = AttemptStatus::Submitted;
        attempt.result = Some(result.clone());
        attempt.result_email_job = Some(email_job_id.to_owned());
        Ok(())
    }

    async fn claim_result_email(
        &self,
        id: &AttemptId,
        job_id: &str,
    ) -> Result<bool, StoreError<AttemptConflict>> {
        let mut attempts = lock(&self.0);
        let attempt = attempts.get_mut(id).ok_or(StoreError::NotFound)?;
        if attempt.status != AttemptStatus::Submitted {
            return Err(StoreError::Conflict(AttemptConflict::NotSubmitted));
        }
        if attempt.result_email_job.is_some() {
            return Ok(false);
        }
        attempt.result_email_job = Some(job_id.to_owned());
        Ok(true)
    }

    async fn release_result_email(
        &self,
        id: &AttemptId,
        job_id: &str,
    ) -> Result<(), StoreError<AttemptConflict>> {
        let mut attempts = lock(&self.0);
        let attempt = attempts.get_mut(id).ok_or(StoreError::NotFound)?;
        if attempt.result_email_job.as_deref() == Some(job_id) {
            attempt.result_email_job = None;
        }
        Ok(())
    }

    async fn attempts_of_user(
        &self,
        user: &UserId,
    ) -> Result<Vec<AttemptSummary>, StoreUnavailable> {
        Ok(self.summaries(|a| &a.user_id == user))
    }

    async fn attempts_of_exam(
        &self,
        exam: &ExamId,
    ) -> Result<Vec<AttemptSummary>, StoreUnavailable> {
        Ok(self.summaries(|a| &a.exam_id == exam))
    }
}
