//! Attempts in a map, with the semantics and errors of [`crate::dynamo::DynamoAttempts`]; the
//! lists by student and by exam are derived from it, newest `started_at` first, ties by id
//! descending. The one open attempt per student and exam, and the number of attempts each
//! student started at each exam, are checked under the map's lock (the DynamoDB adapter keeps a
//! record item for them). The due attempts are a sorted set beside the map, changed under the
//! map's lock when an attempt is created (due at its deadline) and submitted (moved to its
//! result email's check). An attempt is created only at an exam that is there and published
//! ([`MemoryExams::is_published`]), as DynamoDB's condition check on the exam item.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use oes_domain::exam::{
    Answers, Attempt, AttemptCursor, AttemptId, AttemptResult, AttemptStatus, AttemptSummary,
    ExamId,
};
use oes_domain::ports::{AttemptConflict, AttemptStore, DueAttempt, StoreError, StoreUnavailable};
use oes_domain::user::UserId;

use super::{MemoryExams, lock};

/// Attempts in a map, and their due entries in a set (locked after the map when both are); the
/// exams they are at, which an attempt's creation reads (after the map's lock).
pub struct MemoryAttempts(
    Mutex<HashMap<AttemptId, Attempt>>,
    Mutex<BTreeSet<DueAttempt>>,
    Arc<MemoryExams>,
);

impl MemoryAttempts {
    /// No attempts, at the exams of `exams`.
    pub fn over(exams: Arc<MemoryExams>) -> Self {
        Self(Mutex::default(), Mutex::default(), exams)
    }

    /// The page of the attempts `keep` lists: at most `limit`, newest first, after `after`.
    fn summaries(
        &self,
        keep: impl Fn(&Attempt) -> bool,
        limit: usize,
        after: Option<&AttemptCursor>,
    ) -> Vec<AttemptSummary> {
        let attempts = lock(&self.0);
        let mut listed: Vec<&Attempt> = attempts
            .values()
            .filter(|a| keep(a))
            .filter(|a| after.is_none_or(|c| (a.started_at, &a.id) < (c.started_at, &c.attempt_id)))
            .collect();
        listed.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
        listed
            .into_iter()
            .take(limit)
            .map(Attempt::summary)
            .collect()
    }
}

#[async_trait]
impl AttemptStore for MemoryAttempts {
    async fn create_attempt(
        &self,
        attempt: &Attempt,
        max_attempts: u32,
    ) -> Result<(), StoreError<AttemptConflict>> {
        let mut attempts = lock(&self.0);
        match attempts.get(&attempt.id) {
            // The same write again (a retry of one that landed): done already.
            Some(stored) if stored == attempt => return Ok(()),
            Some(_) => return Err(StoreError::Conflict(AttemptConflict::AttemptExists)),
            None => {}
        }
        // The refusals in the order the DynamoDB adapter tells them: the student's record,
        // then the exam.
        let theirs: Vec<&Attempt> = attempts
            .values()
            .filter(|a| a.exam_id == attempt.exam_id && a.user_id == attempt.user_id)
            .collect();
        if theirs.iter().any(|a| a.is_open(attempt.started_at)) {
            return Err(StoreError::Conflict(AttemptConflict::AttemptInProgress));
        }
        if theirs.len() >= usize::try_from(max_attempts).unwrap_or(usize::MAX) {
            return Err(StoreError::Conflict(AttemptConflict::AttemptsExhausted));
        }
        // Deleted (or never published) since the start read it, or changed.
        let Some(version) = self.2.published_version(&attempt.exam_id) else {
            return Err(StoreError::NotFound);
        };
        if attempt
            .exam_version
            .is_some_and(|started| started != version)
        {
            return Err(StoreError::Conflict(AttemptConflict::ExamChanged));
        }
        attempts.insert(attempt.id.clone(), attempt.clone());
        lock(&self.1).insert(DueAttempt::of(attempt));
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
        graded: &Answers,
        email_job_id: &str,
        email_check_at: i64,
    ) -> Result<(), StoreError<AttemptConflict>> {
        let mut attempts = lock(&self.0);
        let attempt = attempts.get_mut(id).ok_or(StoreError::NotFound)?;
        if attempt.is_submitted_as(result, graded, email_job_id) {
            return Ok(());
        }
        if attempt.status != AttemptStatus::InProgress {
            return Err(StoreError::Conflict(AttemptConflict::AlreadySubmitted));
        }
        if attempt.answers != *graded {
            return Err(StoreError::Conflict(AttemptConflict::AnswersChanged));
        }
        attempt.status = AttemptStatus::Submitted;
        attempt.result = Some(result.clone());
        attempt.result_email_job = Some(email_job_id.to_owned());
        let mut due = lock(&self.1);
        // Moved to the result email's check, as by the DynamoDB adapter's transaction.
        due.remove(&DueAttempt::of(attempt));
        due.insert(DueAttempt::at(attempt, email_check_at));
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
        if let Some(held) = &attempt.result_email_job {
            // Its own claim again (a retried write that landed) is still its own.
            return Ok(held == job_id);
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

    async fn due_attempts(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<DueAttempt>, StoreUnavailable> {
        Ok(lock(&self.1)
            .iter()
            .take_while(|due| due.due_at <= now)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn clear_due(&self, due: &DueAttempt) -> Result<(), StoreUnavailable> {
        lock(&self.1).remove(due);
        Ok(())
    }

    async fn attempts_of_user(
        &self,
        user: &UserId,
        limit: usize,
        after: Option<&AttemptCursor>,
    ) -> Result<Vec<AttemptSummary>, StoreUnavailable> {
        Ok(self.summaries(|a| &a.user_id == user, limit, after))
    }

    async fn attempts_of_exam(
        &self,
        exam: &ExamId,
        limit: usize,
        after: Option<&AttemptCursor>,
    ) -> Result<Vec<AttemptSummary>, StoreUnavailable> {
        Ok(self.summaries(|a| &a.exam_id == exam, limit, after))
    }
}
