//! The exam domain service: exams, questions, attempts, grading and results, through the
//! [`ExamStore`] and [`AttemptStore`] ports, with reads cache-aside.
//!
//! Reads that users repeat (an exam, its questions, the published list, an attempt, a student's
//! attempts) go through [`CacheAside`]. Writes read the store, never the cache, write the store,
//! then invalidate every key that can hold what changed.

use std::collections::BTreeMap;
use std::sync::Arc;

use oes_domain::cache::{CacheAside, CacheKey, CacheStatus};
use oes_domain::clock::Clock;
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::exam::{
    Attempt, AttemptId, AttemptResult, AttemptStatus, AttemptSummary, Exam, ExamCursor, ExamFields,
    ExamId, ExamStatus, Question, QuestionFields, QuestionId, StudentQuestion, limits,
};
use oes_domain::ports::{AttemptConflict, AttemptStore, ExamStore, StoreError, StoreUnavailable};
use oes_domain::producer::EmailProducer;
use oes_domain::user::UserProfile;
use serde::{Deserialize, Serialize};

use crate::access;
use crate::error::ExamError;

/// One page of the published list, as cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExamPage {
    /// Newest first.
    pub exams: Vec<Exam>,
    /// Where the next page starts (`None` on the last page).
    pub next_cursor: Option<String>,
}

/// Changes to an exam's fields; `None` leaves a field as it is. Values are validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExamPatch {
    /// New title.
    pub title: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New duration.
    pub duration_minutes: Option<u32>,
    /// New pass mark.
    pub pass_mark_percent: Option<u8>,
}

/// Changes to a question; the merged question is validated as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuestionPatch {
    /// New text.
    pub text: Option<String>,
    /// New options.
    pub options: Option<Vec<String>>,
    /// New right option.
    pub correct_option: Option<u64>,
    /// New points.
    pub points: Option<u64>,
}

/// An exam's outline: what anyone who may see the exam learns before sitting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExamOutline {
    /// The exam (title, description, duration, number of questions, …).
    pub exam: Exam,
    /// The points of all its questions.
    pub total_points: u32,
}

/// An attempt as its reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptView {
    /// The attempt.
    pub attempt: Attempt,
    /// Its paper without the answers, in the paper's order: only for its student, and only
    /// while it is open (`None` otherwise).
    pub paper: Option<Vec<StudentQuestion>>,
}

/// The exam domain over its ports.
pub struct ExamService {
    exams: Arc<dyn ExamStore>,
    attempts: Arc<dyn AttemptStore>,
    cache: CacheAside,
    emails: EmailProducer,
    clock: Arc<dyn Clock>,
}

/// Largest page of the published list.
pub const MAX_PAGE: usize = 100;

impl ExamService {
    /// The service over these ports.
    pub fn new(
        exams: Arc<dyn ExamStore>,
        attempts: Arc<dyn AttemptStore>,
        cache: CacheAside,
        emails: EmailProducer,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            exams,
            attempts,
            cache,
            emails,
            clock,
        }
    }

    // ---- exams ------------------------------------------------------------------------

    /// Creates a draft owned by the caller.
    #[tracing::instrument(skip_all, fields(user_id = %caller.id))]
    pub async fn create_exam(
        &self,
        caller: &UserProfile,
        fields: ExamFields,
    ) -> Result<Exam, ExamError> {
        access::may_author(caller)?;
        let exam = Exam::draft(caller.id.clone(), fields, self.clock.now());
        self.exams.create_exam(&exam).await?;
        tracing::info!(exam_id = %exam.id, "exam created");
        Ok(exam)
    }

    /// A page of published exams, newest first.
    pub async fn list_published(
        &self,
        limit: usize,
        cursor: Option<&str>,
    ) -> Result<(ExamPage, CacheStatus), ExamError> {
        let after = cursor.map(ExamCursor::decode).transpose()?;
        let limit = limit.clamp(1, MAX_PAGE);
        let key = self.cache.keys().exam_list_page(limit, cursor);
        let (page, status) = self
            .cache
            .get_or_load(&key, || async {
                let mut exams = self.exams.list_published(limit + 1, after.as_ref()).await?;
                let next_cursor = if exams.len() > limit {
                    exams.truncate(limit);
                    exams.last().map(|e| ExamCursor::after(e).encode())
                } else {
                    None
                };
                Ok::<_, StoreUnavailable>(Some(ExamPage { exams, next_cursor }))
            })
            .await?;
        let page = page.unwrap_or(ExamPage {
            exams: Vec::new(),
            next_cursor: None,
        });
        Ok((page, status))
    }

    /// An exam, if the caller may see it, with the points of its questions (not the
    /// questions).
    pub async fn exam(
        &self,
        caller: &UserProfile,
        id: &ExamId,
    ) -> Result<(ExamOutline, CacheStatus), ExamError> {
        let (exam, status) = self.cached_exam(id).await?;
        let exam = access::visible(caller, exam)?;
        let (questions, _) = self.cached_questions(id).await?;
        let total_points = questions.iter().map(|q| q.points).sum();
        Ok((ExamOutline { exam, total_points }, status))
    }

    /// Changes an exam's fields. Attempts already started keep the exam as it was.
    #[tracing::instrument(skip_all, fields(exam_id = %id))]
    pub async fn update_exam(
        &self,
        caller: &UserProfile,
        id: &ExamId,
        patch: ExamPatch,
    ) -> Result<Exam, ExamError> {
        let mut exam = access::managed(caller, self.exams.get_exam(id).await?)?;
        let expected = exam.version;
        if let Some(title) = patch.title {
            exam.title = title;
        }
        if let Some(description) = patch.description {
            exam.description = description;
        }
        if let Some(minutes) = patch.duration_minutes {
            exam.duration_minutes = minutes;
        }
        if let Some(percent) = patch.pass_mark_percent {
            exam.pass_mark_percent = percent;
        }
        exam.version = expected + 1;
        exam.updated_at = self.clock.now();
        self.exams.save_exam(&exam, expected).await?;
        self.invalidate_exam(&exam, false).await;
        Ok(exam)
    }

    /// Deletes an exam and its questions. Recorded attempts and results stay.
    #[tracing::instrument(skip_all, fields(exam_id = %id))]
    pub async fn delete_exam(&self, caller: &UserProfile, id: &ExamId) -> Result<(), ExamError> {
        let exam = access::managed(caller, self.exams.get_exam(id).await?)?;
        self.exams.delete_exam(id).await?;
        self.invalidate_exam(&exam, true).await;
        tracing::info!("exam deleted");
        Ok(())
    }

    /// Publishes a draft with at least one question. Publishing a published exam changes
    /// nothing.
    #[tracing::instrument(skip_all, fields(exam_id = %id))]
    pub async fn publish(&self, caller: &UserProfile, id: &ExamId) -> Result<Exam, ExamError> {
        let mut exam = access::managed(caller, self.exams.get_exam(id).await?)?;
        if exam.is_published() {
            return Ok(exam);
        }
        if exam.question_count == 0 {
            return Err(ExamError::conflict(
                "no_questions",
                "add at least one question before publishing",
            ));
        }
        let expected = exam.version;
        let now = self.clock.now();
        exam.status = ExamStatus::Published;
        exam.published_at = Some(now);
        exam.updated_at = now;
        exam.version = expected + 1;
        self.exams.save_exam(&exam, expected).await?;
        self.invalidate_exam(&exam, false).await;
        tracing::info!("exam published");
        Ok(exam)
    }

    // ---- questions --------------------------------------------------------------------

    /// Adds a question.
    #[tracing::instrument(skip_all, fields(exam_id = %id))]
    pub async fn add_question(
        &self,
        caller: &UserProfile,
        id: &ExamId,
        fields: QuestionFields,
    ) -> Result<Question, ExamError> {
        let exam = access::managed(caller, self.exams.get_exam(id).await?)?;
        let question = Question::new(exam.id.clone(), fields, self.clock.now());
        self.exams
            .add_question(&question, limits::MAX_QUESTIONS)
            .await?;
        self.invalidate_exam(&exam, true).await;
        Ok(question)
    }

    /// The questions of an exam with their answers, for its owner and admins. Students see
    /// the questions only inside their own open attempt ([`Self::start_attempt`],
    /// [`Self::attempt`]).
    pub async fn questions(
        &self,
        caller: &UserProfile,
        id: &ExamId,
    ) -> Result<(Vec<Question>, CacheStatus), ExamError> {
        let (exam, _) = self.cached_exam(id).await?;
        access::questions_of(caller, exam)?;
        self.cached_questions(id).await
    }

    /// Changes a question. Attempts already started are graded on the question as it was.
    #[tracing::instrument(skip_all, fields(exam_id = %exam_id, question_id = %id))]
    pub async fn update_question(
        &self,
        caller: &UserProfile,
        exam_id: &ExamId,
        id: &QuestionId,
        patch: QuestionPatch,
    ) -> Result<Question, ExamError> {
        let exam = access::managed(caller, self.exams.get_exam(exam_id).await?)?;
        let mut question = self
            .exams
            .get_question(exam_id, id)
            .await?
            .ok_or(ExamError::NotFound)?;
        let fields = QuestionFields::parse(
            patch.text.as_deref().unwrap_or(&question.text),
            patch.options.as_deref().unwrap_or(&question.options),
            patch
                .correct_option
                .unwrap_or(u64::from(question.correct_option)),
            patch.points.unwrap_or(u64::from(question.points)),
        )?;
        question.text = fields.text;
        question.options = fields.options;
        question.correct_option = fields.correct_option;
        question.points = fields.points;
        self.exams.save_question(&question).await?;
        self.invalidate_exam(&exam, true).await;
        Ok(question)
    }

    /// Removes a question; a published exam keeps at least one.
    #[tracing::instrument(skip_all, fields(exam_id = %exam_id, question_id = %id))]
    pub async fn delete_question(
        &self,
        caller: &UserProfile,
        exam_id: &ExamId,
        id: &QuestionId,
    ) -> Result<(), ExamError> {
        let exam = access::managed(caller, self.exams.get_exam(exam_id).await?)?;
        let keep = u32::from(exam.is_published());
        self.exams.delete_question(exam_id, id, keep).await?;
        self.invalidate_exam(&exam, true).await;
        Ok(())
    }

    // ---- attempts ---------------------------------------------------------------------

    /// Starts an attempt at a published exam; its deadline is now + the exam's duration. A
    /// student has at most one open attempt per exam: the store refuses the attempt
    /// (`AttemptInProgress`, 409 `attempt_in_progress`) in the same conditional write that
    /// creates it, so concurrent starts cannot both pass a check.
    #[tracing::instrument(skip_all, fields(exam_id = %exam_id, user_id = %caller.id))]
    pub async fn start_attempt(
        &self,
        caller: &UserProfile,
        exam_id: &ExamId,
    ) -> Result<AttemptView, ExamError> {
        access::may_take_exams(caller)?;
        let exam = access::visible(caller, self.exams.get_exam(exam_id).await?)?;
        let now = self.clock.now();
        let questions = self.exams.list_questions(exam_id).await?;
        let attempt = Attempt::start(&exam, &questions, caller.id.clone(), now);
        self.attempts.create_attempt(&attempt).await?;
        self.cache
            .invalidate(&[self.cache.keys().user_exams(&caller.id)])
            .await;
        tracing::info!(attempt_id = %attempt.id, "attempt started");
        let paper = questions.iter().map(Question::for_student).collect();
        Ok(AttemptView {
            attempt,
            paper: Some(paper),
        })
    }

    /// Replaces the saved answers of the caller's open attempt.
    #[tracing::instrument(skip_all, fields(attempt_id = %id))]
    pub async fn save_answers(
        &self,
        caller: &UserProfile,
        id: &AttemptId,
        answers: &BTreeMap<String, u64>,
    ) -> Result<Attempt, ExamError> {
        let mut attempt = access::own_attempt(caller, self.attempts.get_attempt(id).await?)?;
        let now = self.clock.now();
        if !attempt.is_open(now) {
            return Err(AttemptConflict::AttemptClosed.into());
        }
        attempt.answers = attempt.check_answers(answers)?;
        self.attempts
            .save_answers(id, &attempt.answers, now)
            .await?;
        self.cache
            .invalidate(&[self.cache.keys().exam_result(id)])
            .await;
        Ok(attempt)
    }

    /// Grades and closes the caller's attempt, and queues the "result available" email on the
    /// bulk lane. Idempotent: a second submit returns the same result, and queues the email
    /// only if the first could not.
    #[tracing::instrument(skip_all, fields(attempt_id = %id))]
    pub async fn submit(&self, caller: &UserProfile, id: &AttemptId) -> Result<Attempt, ExamError> {
        let mut attempt = access::own_attempt(caller, self.attempts.get_attempt(id).await?)?;
        if attempt.status == AttemptStatus::InProgress {
            let result = attempt.grade(self.clock.now());
            let job = self.result_email(caller, &attempt, &result);
            match self.attempts.submit(id, &result, &job.job_id).await {
                Ok(()) => {
                    tracing::info!(
                        score = result.score,
                        percent = result.percent,
                        late = result.late,
                        "attempt graded"
                    );
                    attempt.status = AttemptStatus::Submitted;
                    attempt.result = Some(result);
                    self.invalidate_attempt(&attempt).await;
                    self.queue_result_email(id, job).await?;
                    return Ok(attempt);
                }
                // Submitted meanwhile (a concurrent submit): answer with what was stored.
                Err(StoreError::Conflict(AttemptConflict::AlreadySubmitted)) => {
                    attempt = self
                        .attempts
                        .get_attempt(id)
                        .await?
                        .ok_or(ExamError::NotFound)?;
                }
                Err(error) => return Err(error.into()),
            }
        }
        if let (None, Some(result)) = (&attempt.result_email_job, &attempt.result) {
            let job = self.result_email(caller, &attempt, result);
            if self.attempts.claim_result_email(id, &job.job_id).await? {
                self.queue_result_email(id, job).await?;
            }
        }
        Ok(attempt)
    }

    /// An attempt, for its student, the exam's owner, or an admin; its student sees its
    /// paper (the questions without answers) while it is open.
    pub async fn attempt(
        &self,
        caller: &UserProfile,
        id: &AttemptId,
    ) -> Result<(AttemptView, CacheStatus), ExamError> {
        let key = self.cache.keys().exam_result(id);
        let (attempt, status) = self
            .cache
            .get_or_load(&key, || async { self.attempts.get_attempt(id).await })
            .await?;
        let attempt: Attempt = attempt.ok_or(ExamError::NotFound)?;
        if attempt.user_id != caller.id {
            let (exam, _) = self.cached_exam(&attempt.exam_id).await?;
            let owner_or_admin = match exam {
                Some(exam) => access::manages(caller, &exam),
                None => caller.role == oes_domain::user::Role::Admin,
            };
            if !owner_or_admin {
                return Err(ExamError::NotFound);
            }
        }
        let paper = if attempt.user_id == caller.id && attempt.is_open(self.clock.now()) {
            Some(self.paper(&attempt).await?)
        } else {
            None
        };
        Ok((AttemptView { attempt, paper }, status))
    }

    /// The caller's attempts, newest first.
    pub async fn my_attempts(
        &self,
        caller: &UserProfile,
    ) -> Result<(Vec<AttemptSummary>, CacheStatus), ExamError> {
        let key = self.cache.keys().user_exams(&caller.id);
        let (attempts, status) = self
            .cache
            .get_or_load(&key, || async {
                Ok::<_, StoreUnavailable>(Some(self.attempts.attempts_of_user(&caller.id).await?))
            })
            .await?;
        Ok((attempts.unwrap_or_default(), status))
    }

    /// Every attempt at an exam, for its owner or an admin.
    pub async fn results(
        &self,
        caller: &UserProfile,
        exam_id: &ExamId,
    ) -> Result<Vec<AttemptSummary>, ExamError> {
        let (exam, _) = self.cached_exam(exam_id).await?;
        access::managed(caller, exam)?;
        Ok(self.attempts.attempts_of_exam(exam_id).await?)
    }

    // ---- helpers ----------------------------------------------------------------------

    /// The questions of an exam, cache-aside (one entry, with the answers: strip them before
    /// they leave for anyone but who manages the exam).
    async fn cached_questions(
        &self,
        id: &ExamId,
    ) -> Result<(Vec<Question>, CacheStatus), ExamError> {
        let key = self.cache.keys().exam_questions(id);
        let (questions, status) = self
            .cache
            .get_or_load(&key, || async {
                Ok::<_, StoreUnavailable>(Some(self.exams.list_questions(id).await?))
            })
            .await?;
        Ok((questions.unwrap_or_default(), status))
    }

    /// The paper of `attempt` without answers, in its order: the exam's questions that are on
    /// it, as they read now (a question deleted since is left out; its grading is the
    /// attempt's own copy either way).
    async fn paper(&self, attempt: &Attempt) -> Result<Vec<StudentQuestion>, ExamError> {
        let (questions, _) = self.cached_questions(&attempt.exam_id).await?;
        Ok(attempt
            .paper
            .iter()
            .filter_map(|item| questions.iter().find(|q| q.id == item.question_id))
            .map(Question::for_student)
            .collect())
    }

    async fn cached_exam(&self, id: &ExamId) -> Result<(Option<Exam>, CacheStatus), ExamError> {
        let key = self.cache.keys().exam(id);
        Ok(self
            .cache
            .get_or_load(&key, || async { self.exams.get_exam(id).await })
            .await?)
    }

    /// After a change to `exam` itself, and to its questions when `with_questions` (adding or
    /// removing one also moves the exam's `question_count`, so the exam goes too).
    async fn invalidate_exam(&self, exam: &Exam, with_questions: bool) {
        let keys = self.cache.keys();
        let mut stale: Vec<CacheKey> = vec![keys.exam(&exam.id)];
        if with_questions {
            stale.push(keys.exam_questions(&exam.id));
        }
        self.cache.invalidate(&stale).await;
        // The list shows published exams only; a draft's change cannot be in it.
        if exam.is_published() {
            self.cache.invalidate_exam_list().await;
        }
    }

    async fn invalidate_attempt(&self, attempt: &Attempt) {
        let keys = self.cache.keys();
        self.cache
            .invalidate(&[
                keys.exam_result(&attempt.id),
                keys.user_exams(&attempt.user_id),
            ])
            .await;
    }

    fn result_email(
        &self,
        caller: &UserProfile,
        attempt: &Attempt,
        result: &AttemptResult,
    ) -> EmailJob {
        EmailJob::new(
            caller.email.clone(),
            EmailTemplate::ExamResult {
                name: caller.name.as_str().to_owned(),
                exam_title: attempt.exam_title.clone(),
                score_percent: result.percent,
                passed: result.passed,
                attempt_id: attempt.id.to_string(),
            },
            self.clock.now(),
        )
    }

    /// Queues the result email whose claim is held; releases the claim if queueing fails, so a
    /// later submit can try again.
    async fn queue_result_email(&self, id: &AttemptId, job: EmailJob) -> Result<(), ExamError> {
        let job_id = job.job_id.clone();
        if let Err(error) = self.emails.enqueue(job).await {
            if let Err(release) = self.attempts.release_result_email(id, &job_id).await {
                tracing::error!(error = %release, "could not release the result email claim");
            }
            return Err(ExamError::Queue(error));
        }
        Ok(())
    }
}
