//! The exam domain service: exams, questions, attempts, grading and results, through the
//! [`ExamStore`] and [`AttemptStore`] ports, with reads cache-aside.
//!
//! Reads that users repeat (an exam, its questions, the published list, an attempt, a student's
//! attempts) go through [`CacheAside`]. Writes read the store, never the cache, write the store,
//! then invalidate every key that can hold what changed — also when the write failed, since a
//! write whose answer was lost (a timeout) may have applied.
//!
//! Lists (the published exams, a student's attempts, an exam's results) come a [`Page`] at a
//! time, at most [`MAX_PAGE`] items, after a position (`ExamCursor`, `AttemptCursor`; the routes
//! hand them to clients signed): the store reads one page and one item more, which tells whether
//! more follow. Only first pages are cached (one per page size); a page after a position is read
//! from the store every time, so paging cannot add cache entries.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use futures_util::future::try_join_all;
use oes_domain::cache::{CacheAside, CacheKey, CacheStatus};
use oes_domain::clock::{Clock, rfc3339};
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::exam::{
    Attempt, AttemptCursor, AttemptId, AttemptResult, AttemptReview, AttemptStatus, AttemptSummary,
    Exam, ExamCursor, ExamFields, ExamId, ExamRules, ExamStatus, Question, QuestionFields,
    QuestionId, ReviewPolicy, StudentQuestion, StudentQuestions, limits,
};
use oes_domain::ports::{AttemptConflict, AttemptStore, ExamStore, StoreError, StoreUnavailable};
use oes_domain::producer::{EmailProducer, EnqueueError};
use oes_domain::user::UserProfile;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::access;
use crate::error::ExamError;
use crate::memo::ExamOfAttempt;
use crate::sweep::EMAIL_CHECK_AFTER;

/// One page of a list, newest first, as cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// At most the page size.
    pub items: Vec<T>,
    /// Whether more items follow the last one.
    pub more: bool,
}

impl<T> Page<T> {
    /// The page of `limit` of `items`, read from the store with a limit of `limit + 1`: an item
    /// beyond `limit` means more follow.
    fn of(mut items: Vec<T>, limit: usize) -> Self {
        let more = items.len() > limit;
        items.truncate(limit);
        Self { items, more }
    }

    /// The item the next page starts after: the last one, if more follow it.
    pub fn continues_after(&self) -> Option<&T> {
        self.items.last().filter(|_| self.more)
    }
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            more: false,
        }
    }
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
    /// New opening: `Some(None)` removes it.
    pub opens_at: Option<Option<i64>>,
    /// New close: `Some(None)` removes it.
    pub closes_at: Option<Option<i64>>,
    /// New number of attempts per student.
    pub max_attempts: Option<u32>,
    /// New review policy.
    pub review: Option<ReviewPolicy>,
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
    /// The attempt; for its student, without its result until its review shows it.
    pub attempt: Attempt,
    /// Its paper without the answers, in the paper's order: only for its student, and only
    /// while it is open (`None` otherwise).
    pub paper: Option<Vec<StudentQuestion>>,
    /// Whether each answer was right, once submitted: for who manages the exam, and for its
    /// student if and once its review shows the answers (`None` otherwise).
    pub marks: Option<BTreeMap<QuestionId, bool>>,
}

/// The exam domain over its ports.
pub struct ExamService {
    exams: Arc<dyn ExamStore>,
    attempts: Arc<dyn AttemptStore>,
    cache: CacheAside,
    emails: EmailProducer,
    clock: Arc<dyn Clock>,
    /// Which exam each attempt whose paper this process showed is at (ids only): the paper
    /// read asks for its questions with the attempt ([`Self::attempt`]).
    exam_of_attempt: ExamOfAttempt,
}

/// Largest page of a list (the routes refuse a larger `?limit=`).
pub use oes_runtime::http::paging::MAX_PAGE;

/// How many times a submit grades an attempt again when answers were saved between its read
/// and its write, before it answers 409 `concurrent_update`.
const REGRADES: usize = 3;

/// How often a start reads the exam again when it changed between the read and the attempt's
/// write; then 409 `concurrent_update`.
const START_TRIES: usize = 3;

/// The result email job recorded for an attempt closed at its deadline after its student's
/// account was deleted: no email is queued for it.
pub const NO_RECIPIENT: &str = "none";

/// What closing an attempt (a submit, or the sweep at its deadline) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// This close graded the attempt and closed it, and queued its result email (if it has
    /// someone to send it to).
    Now,
    /// The attempt was closed before; this close queued its result email (the sweep: or sent
    /// its recorded job to its lane again), which the close before it left undone (the queue
    /// refused it, or the request died before sending it).
    EmailQueued,
    /// As [`Closed::EmailQueued`], but the queue answered an error and the ledger could not be
    /// told ([`EnqueueError::Unsure`]): the email may not have reached its lane, and a sweep
    /// must look at it again (the job stays recorded as queued, for it to find).
    EmailUnsure,
    /// The attempt was closed before, its result email unclaimed, and another close (a second
    /// submit) claimed it first, as this one was about to: that close's send may yet fail, so
    /// a sweep must look at it again (it keeps the attempt's due entry for it).
    ClaimedMeanwhile,
    /// The attempt was closed before, its result email queued (or there is no one to send it
    /// to): nothing was left to do.
    Before,
}

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
            exam_of_attempt: ExamOfAttempt::default(),
        }
    }

    // ---- exams ------------------------------------------------------------------------

    /// Creates a draft owned by the caller.
    #[tracing::instrument(skip_all, fields(user_id = %caller.id))]
    pub async fn create_exam(
        &self,
        caller: &UserProfile,
        fields: ExamFields,
        rules: ExamRules,
    ) -> Result<Exam, ExamError> {
        access::may_author(caller)?;
        let exam = Exam {
            rules: rules.validated()?,
            ..Exam::draft(caller.id.clone(), fields, self.clock.now())
        };
        self.exams.create_exam(&exam).await?;
        tracing::info!(exam_id = %exam.id, "exam created");
        Ok(exam)
    }

    /// A page of published exams, newest first, after `after`; the first page is cached.
    pub async fn list_published(
        &self,
        limit: usize,
        after: Option<&ExamCursor>,
    ) -> Result<(Page<Exam>, Option<CacheStatus>), ExamError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let first = after
            .is_none()
            .then(|| self.cache.keys().exam_list_page(limit));
        self.page(first, limit, |n| self.exams.list_published(n, after))
            .await
    }

    /// An exam, if the caller may see it, with the points of its questions (not the
    /// questions). `caller` (the session's profile read) is resolved while the exam and its
    /// questions are read: one round trip to the cache, not three in a row. Nothing read is
    /// shown before the caller is known and allowed.
    pub async fn exam(
        &self,
        caller: impl Future<Output = Result<UserProfile, ExamError>>,
        id: &ExamId,
    ) -> Result<(ExamOutline, CacheStatus), ExamError> {
        let (caller, exam, questions) = tokio::join!(
            caller,
            self.cached_exam(id),
            self.cached_questions::<Vec<Question>>(id)
        );
        let caller = caller?;
        let (exam, status) = exam?;
        let exam = access::visible(&caller, exam)?;
        let (questions, _) = questions?;
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
        let now = self.clock.now();
        if let Some(Some(close)) = patch.closes_at
            && exam.rules.closes_at.is_none_or(|was| close < was)
            && exam.attempts_may_outlast(close, now)
        {
            return Err(ExamError::conflict(
                "attempts_under_way",
                "attempts under way may run past this close (each keeps the deadline of its \
                 start): move it no earlier than now plus the longest duration the exam has had \
                 since it was published",
            ));
        }
        // Reopening an exam whose close has passed: the reviews "from the close" are out (also
        // when its review has been switched away from the close since), and a student who read
        // them could sit it again with them.
        if let Some(close) = patch.closes_at
            && exam.reviews_released(now)
            && close.is_none_or(|close| close > now)
        {
            return Err(ExamError::conflict(
                "reviews_released",
                "this exam has closed and its reviews are out: reopening it would let a \
                 student who has read them sit it again (publish a new exam for those who \
                 missed it)",
            ));
        }
        if patch.closes_at == Some(None) && exam.awaits_its_close() {
            return Err(ExamError::conflict(
                "close_awaited",
                "reviews of this exam are shown from its close, and the attempts started under \
                 that review wait for it: the close can move, not be removed (set a later one)",
            ));
        }
        if let Some(minutes) = patch.duration_minutes {
            exam.duration_minutes = minutes;
            // An exam published before the longest was kept stays at the bound of any.
            if let Some(longest) = exam.longest_minutes {
                exam.longest_minutes = Some(longest.max(minutes));
            }
        }
        if let Some(percent) = patch.pass_mark_percent {
            exam.pass_mark_percent = percent;
        }
        if let Some(opens_at) = patch.opens_at {
            exam.move_opening(opens_at, now);
        }
        let rules = &mut exam.rules;
        rules.closes_at = patch.closes_at.unwrap_or(rules.closes_at);
        rules.max_attempts = patch.max_attempts.unwrap_or(rules.max_attempts);
        rules.review = patch.review.unwrap_or(rules.review);
        exam.rules = exam.rules.validated()?;
        exam.note_review();
        exam.version = expected + 1;
        exam.updated_at = now;
        let saved = self.exams.save_exam(&exam, expected).await;
        self.invalidate_exam(&exam, false).await;
        saved?;
        Ok(exam)
    }

    /// Deletes an exam and its questions, once no attempt at it is under way (its questions are
    /// the attempt's paper). Recorded attempts and results stay.
    #[tracing::instrument(skip_all, fields(exam_id = %id))]
    pub async fn delete_exam(&self, caller: &UserProfile, id: &ExamId) -> Result<(), ExamError> {
        let exam = access::managed(caller, self.exams.get_exam(id).await?)?;
        if self.an_attempt_under_way(&exam).await? {
            return Err(ExamError::conflict(
                "attempts_under_way",
                "attempts at this exam are under way, and its questions are their paper: delete \
                 it once they have ended (a closes_at stops new ones)",
            ));
        }
        let deleted = self.exams.delete_exam(id).await;
        self.invalidate_exam(&exam, true).await;
        deleted?;
        tracing::info!("exam deleted");
        Ok(())
    }

    /// Publishes a draft with at least one question. Publishing a published exam changes
    /// nothing.
    #[tracing::instrument(skip_all, fields(exam_id = %id))]
    pub async fn publish(&self, caller: &UserProfile, id: &ExamId) -> Result<Exam, ExamError> {
        let mut exam = access::managed(caller, self.exams.get_exam(id).await?)?;
        if exam.is_published() {
            // Perhaps by a publish whose answer was lost: readers may hold the draft.
            self.invalidate_exam(&exam, false).await;
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
        exam.longest_minutes = Some(exam.duration_minutes);
        exam.note_review();
        exam.updated_at = now;
        exam.version = expected + 1;
        let saved = self.exams.save_exam(&exam, expected).await;
        self.invalidate_exam(&exam, false).await;
        saved?;
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
        let added = self
            .exams
            .add_question(&question, limits::MAX_QUESTIONS)
            .await;
        self.invalidate_exam(&exam, true).await;
        added?;
        Ok(question)
    }

    /// The questions of an exam with their answers, for its owner and admins. Students see
    /// the questions only inside their own open attempt ([`Self::start_attempt`],
    /// [`Self::attempt`]).
    ///
    /// As [`Self::exam`], `caller` is resolved while the exam and the questions are read.
    pub async fn questions(
        &self,
        caller: impl Future<Output = Result<UserProfile, ExamError>>,
        id: &ExamId,
    ) -> Result<(Vec<Question>, CacheStatus), ExamError> {
        let (caller, exam, questions) = tokio::join!(
            caller,
            self.cached_exam(id),
            self.cached_questions::<Vec<Question>>(id)
        );
        let caller = caller?;
        let (exam, _) = exam?;
        access::questions_of(&caller, exam)?;
        questions
    }

    /// Changes a question. A published exam's question keeps its options, right option and
    /// points (409 `exam_published`): attempts are graded on them as they were when each
    /// started, and their papers show the question as it is, so a change would show a student
    /// one question and grade another; its text can be corrected. The patch applies to the
    /// question as read here: if another edit changed it meanwhile, 409 `concurrent_update`
    /// (read it again), never a write over what the caller did not see.
    #[tracing::instrument(skip_all, fields(exam_id = %exam_id, question_id = %id))]
    pub async fn update_question(
        &self,
        caller: &UserProfile,
        exam_id: &ExamId,
        id: &QuestionId,
        patch: QuestionPatch,
    ) -> Result<Question, ExamError> {
        let exam = access::managed(caller, self.exams.get_exam(exam_id).await?)?;
        let was = self
            .exams
            .get_question(exam_id, id)
            .await?
            .ok_or(ExamError::NotFound)?;
        let mut question = was.clone();
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
        let saved = self.exams.save_question(&question, &was).await;
        self.invalidate_exam(&exam, true).await;
        saved?;
        Ok(question)
    }

    /// Removes a question of a draft; a published exam keeps its questions (409
    /// `exam_published`): an attempt under way would be graded on one its paper no longer shows.
    #[tracing::instrument(skip_all, fields(exam_id = %exam_id, question_id = %id))]
    pub async fn delete_question(
        &self,
        caller: &UserProfile,
        exam_id: &ExamId,
        id: &QuestionId,
    ) -> Result<(), ExamError> {
        let exam = access::managed(caller, self.exams.get_exam(exam_id).await?)?;
        let deleted = self.exams.delete_question(exam_id, id).await;
        self.invalidate_exam(&exam, true).await;
        deleted?;
        Ok(())
    }

    // ---- attempts ---------------------------------------------------------------------

    /// Starts an attempt at a published exam inside its window (409 `exam_not_open`,
    /// `exam_closed` outside it); its deadline is now + the exam's duration, or the exam's close
    /// if sooner. A student has at most one open attempt per exam, and starts at most the
    /// exam's `max_attempts`: the store refuses the attempt (409 `attempt_in_progress`,
    /// `attempts_exhausted`) in the same conditional write that creates it, so concurrent
    /// starts cannot both pass a check.
    #[tracing::instrument(skip_all, fields(exam_id = %exam_id, user_id = %caller.id))]
    pub async fn start_attempt(
        &self,
        caller: &UserProfile,
        exam_id: &ExamId,
    ) -> Result<AttemptView, ExamError> {
        access::may_take_exams(caller)?;
        // The attempt is written on condition that the exam is as read here: changed since,
        // it is read again, and the attempt started from it as it is.
        for _ in 0..START_TRIES {
            let exam = access::visible(caller, self.exams.get_exam(exam_id).await?)?;
            let now = self.clock.now();
            access::open_for_attempts(&exam, now)?;
            let questions = self.exams.list_questions(exam_id).await?;
            let attempt = Attempt::start(&exam, &questions, caller.id.clone(), now);
            let created = self
                .attempts
                .create_attempt(&attempt, exam.rules.max_attempts)
                .await;
            self.cache
                .invalidate(&[self.cache.keys().user_exams(&caller.id)])
                .await;
            match created {
                Err(StoreError::Conflict(AttemptConflict::ExamChanged)) => continue,
                created => created?,
            }
            tracing::info!(attempt_id = %attempt.id, "attempt started");
            let paper = questions.iter().map(Question::for_student).collect();
            return Ok(AttemptView {
                attempt,
                paper: Some(paper),
                marks: None,
            });
        }
        Err(AttemptConflict::ExamChanged.into())
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
        let saved = self.attempts.save_answers(id, &attempt.answers, now).await;
        self.cache
            .invalidate(&[self.cache.keys().exam_result(id)])
            .await;
        saved?;
        Ok(attempt)
    }

    /// Grades and closes the caller's attempt, and queues the "result available" email on the
    /// bulk lane. Idempotent: a second submit returns the same result, and queues the email
    /// only if the first could not. The caller sees the result as the attempt's review allows.
    #[tracing::instrument(skip_all, fields(attempt_id = %id))]
    pub async fn submit(
        &self,
        caller: &UserProfile,
        id: &AttemptId,
    ) -> Result<AttemptView, ExamError> {
        let attempt = access::own_attempt(caller, self.attempts.get_attempt(id).await?)?;
        let now = self.clock.now();
        let (mut attempt, _) = self
            .close(attempt, Some(caller), |attempt| attempt.grade(now))
            .await?;
        self.review_from_the_close_as_it_is(&mut attempt.review, &attempt.exam_id)
            .await?;
        let (attempt, marks) = access::student_review(attempt, now);
        Ok(AttemptView {
            attempt,
            paper: None,
            marks,
        })
    }

    /// Closes an attempt left open past its deadline, graded as of the deadline
    /// ([`Attempt::grade_at_deadline`]), and queues its result email to `student`, the
    /// attempt's student (`None`: their account is gone; the result is recorded without an
    /// email). The path of a submit: whichever of the two comes second finds the attempt
    /// submitted and only queues the result email if it is still missing. Returns the attempt
    /// as stored, and what this call did.
    #[tracing::instrument(skip_all, fields(attempt_id = %attempt.id))]
    pub async fn close_at_deadline(
        &self,
        attempt: Attempt,
        student: Option<&UserProfile>,
    ) -> Result<(Attempt, Closed), ExamError> {
        self.close(attempt, student, Attempt::grade_at_deadline)
            .await
    }

    /// An attempt, for its student, the exam's owner, or an admin; its student sees its
    /// paper (the questions without answers) while it is open, and its result as its review
    /// allows.
    ///
    /// As [`Self::exam`], `caller` is resolved while the attempt is read. The paper's questions
    /// are read with them when this process remembers the attempt's exam (it showed its paper
    /// before: one round trip to the cache), else once the attempt names its exam (two). Nothing
    /// read is shown before the caller is known and allowed; questions read ahead for another
    /// exam than the attempt's (it cannot change exam) are not used, and read again.
    pub async fn attempt(
        &self,
        caller: impl Future<Output = Result<UserProfile, ExamError>>,
        id: &AttemptId,
    ) -> Result<(AttemptView, CacheStatus), ExamError> {
        let key = self.cache.keys().exam_result(id);
        let remembered = self.exam_of_attempt.get(id);
        let (caller, attempt, ahead) = tokio::join!(
            caller,
            self.cache
                .get_or_load(&key, || async { self.attempts.get_attempt(id).await }),
            async {
                match remembered {
                    Some(exam) => Some((self.cached_student_questions(&exam).await, exam)),
                    None => None,
                }
            }
        );
        let caller = &caller?;
        let (attempt, status) = attempt?;
        let Some(attempt) = attempt else {
            self.exam_of_attempt.forget(id);
            return Err(ExamError::NotFound);
        };
        if attempt.user_id != caller.id {
            let (exam, _) = self.cached_exam(&attempt.exam_id).await?;
            let owner_or_admin = match &exam {
                Some(exam) => access::manages(caller, exam),
                None => caller.role == oes_domain::user::Role::Admin,
            };
            if !owner_or_admin {
                return Err(ExamError::NotFound);
            }
            let mut attempt = attempt;
            if let Some(exam) = exam.as_ref().filter(|_| attempt.result.is_some()) {
                at_the_close_as_it_is(&mut attempt.review, exam);
            }
            // Who manages the exam sees everything once it is submitted.
            let marks = attempt.result.is_some().then(|| attempt.marks());
            let view = AttemptView {
                attempt,
                paper: None,
                marks,
            };
            return Ok((view, status));
        }
        let mut attempt = attempt;
        if attempt.result.is_some() {
            self.review_from_the_close_as_it_is(&mut attempt.review, &attempt.exam_id)
                .await?;
        }
        let now = self.clock.now();
        let paper = if attempt.is_open(now) {
            let (questions, _) = match ahead {
                Some((read, exam)) if exam == attempt.exam_id => read?,
                _ => self.cached_student_questions(&attempt.exam_id).await?,
            };
            self.exam_of_attempt.remember(id, &attempt.exam_id);
            Some(Self::paper(&attempt, questions))
        } else {
            // Closed for good: its paper is not read again.
            self.exam_of_attempt.forget(id);
            None
        };
        let (attempt, marks) = access::student_review(attempt, now);
        Ok((
            AttemptView {
                attempt,
                paper,
                marks,
            },
            status,
        ))
    }

    /// The caller's attempts, newest first, each result shown as its review allows.
    /// A page of them after `after`; the first page is cached.
    pub async fn my_attempts(
        &self,
        caller: &UserProfile,
        limit: usize,
        after: Option<&AttemptCursor>,
    ) -> Result<(Page<AttemptSummary>, Option<CacheStatus>), ExamError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let keys = self.cache.keys();
        let first = after
            .is_none()
            .then(|| keys.user_exams_page(&caller.id, limit));
        let (mut page, status) = self
            .page(first, limit, |n| {
                self.attempts.attempts_of_user(&caller.id, n, after)
            })
            .await?;
        let now = self.clock.now();
        let mut attempts = std::mem::take(&mut page.items);
        let reviews = attempts.iter_mut().filter(|a| a.result.is_some());
        try_join_all(
            reviews.map(|a| self.review_from_the_close_as_it_is(&mut a.review, &a.exam_id)),
        )
        .await?;
        page.items = attempts
            .into_iter()
            .map(|a| access::student_summary(a, now))
            .collect();
        Ok((page, status))
    }

    /// A review shown "from the close" waits for the exam's close as it is now: the owner may
    /// have moved it later since the attempt started (more time for the class: until then
    /// others may still sit the exam, and this student again), or sooner (every attempt ends
    /// by it: the close guard sees to that). Only such reviews read the exam (cache-aside); an
    /// exam deleted since leaves the close the attempt started with (its close cannot be
    /// removed: `close_awaited`).
    async fn review_from_the_close_as_it_is(
        &self,
        review: &mut AttemptReview,
        exam: &ExamId,
    ) -> Result<(), ExamError> {
        if review.from.is_none() {
            return Ok(());
        }
        if let (Some(exam), _) = self.cached_exam(exam).await? {
            at_the_close_as_it_is(review, &exam);
        }
        Ok(())
    }

    /// The attempts at an exam, for its owner or an admin: a page, newest first, after
    /// `after` (not cached).
    pub async fn results(
        &self,
        caller: &UserProfile,
        exam_id: &ExamId,
        limit: usize,
        after: Option<&AttemptCursor>,
    ) -> Result<Page<AttemptSummary>, ExamError> {
        let (exam, _) = self.cached_exam(exam_id).await?;
        access::managed(caller, exam)?;
        let limit = limit.clamp(1, MAX_PAGE);
        let (page, _) = self
            .page(None, limit, |n| {
                self.attempts.attempts_of_exam(exam_id, n, after)
            })
            .await?;
        Ok(page)
    }

    // ---- helpers ----------------------------------------------------------------------

    /// Whether an attempt at `exam` is under way now: read newest first from the store, only
    /// as far back as one may still run (while the exam says one may:
    /// [`Exam::attempts_may_outlast`]).
    async fn an_attempt_under_way(&self, exam: &Exam) -> Result<bool, ExamError> {
        let now = self.clock.now();
        if !exam.attempts_may_outlast(now, now) {
            return Ok(false);
        }
        let earliest_running = now - exam.longest_attempt_seconds();
        let mut after = None;
        loop {
            let page = self
                .attempts
                .attempts_of_exam(&exam.id, MAX_PAGE, after.as_ref())
                .await?;
            if page.iter().any(|attempt| {
                attempt.status == AttemptStatus::InProgress && now < attempt.deadline
            }) {
                return Ok(true);
            }
            match page.last() {
                Some(last) if page.len() == MAX_PAGE && last.started_at >= earliest_running => {
                    after = Some(AttemptCursor::after(last));
                }
                _ => return Ok(false),
            }
        }
    }

    /// The page of `limit` that `read` gives (asked for one item more, see [`Page::of`]);
    /// cached under `first` when it is the first page of its list. Pages after it are read from
    /// the store every time: a cache entry per position would let clients add entries.
    async fn page<T, Fut>(
        &self,
        first: Option<CacheKey>,
        limit: usize,
        read: impl FnOnce(usize) -> Fut,
    ) -> Result<(Page<T>, Option<CacheStatus>), ExamError>
    where
        T: Serialize + DeserializeOwned,
        Fut: Future<Output = Result<Vec<T>, StoreUnavailable>>,
    {
        let load = || async { Ok::<_, StoreUnavailable>(Page::of(read(limit + 1).await?, limit)) };
        let Some(key) = first else {
            return Ok((load().await?, None));
        };
        let (page, status) = self
            .cache
            .get_or_load(&key, || async { load().await.map(Some) })
            .await?;
        Ok((page.unwrap_or_default(), Some(status)))
    }

    /// The questions of an exam without their answers: the entry of [`Self::cached_questions`],
    /// read as a student may see it.
    async fn cached_student_questions(
        &self,
        id: &ExamId,
    ) -> Result<(Vec<StudentQuestion>, CacheStatus), ExamError> {
        let (questions, status) = self.cached_questions::<StudentQuestions>(id).await?;
        Ok((questions.0, status))
    }

    /// The questions of an exam, cache-aside (one entry, with the answers: strip them before
    /// they leave for anyone but who manages the exam), read as `V`: the questions themselves,
    /// or a view of them (see [`CacheAside::get_or_load_as`]).
    async fn cached_questions<V>(&self, id: &ExamId) -> Result<(V, CacheStatus), ExamError>
    where
        V: DeserializeOwned + From<Vec<Question>> + Default,
    {
        let key = self.cache.keys().exam_questions(id);
        let (questions, status) = self
            .cache
            .get_or_load_as(&key, || async {
                // None questions are cached as an absent item (briefly): the id may be one no
                // exam has, made up by a caller.
                let questions = self.exams.list_questions(id).await?;
                Ok::<_, StoreUnavailable>((!questions.is_empty()).then_some(questions))
            })
            .await?;
        Ok((questions.unwrap_or_default(), status))
    }

    /// The paper of `attempt` without answers, in its order: its exam's `questions` that are on
    /// it, as they read now (a question deleted since is left out; its grading is the
    /// attempt's own copy either way).
    fn paper(attempt: &Attempt, mut questions: Vec<StudentQuestion>) -> Vec<StudentQuestion> {
        attempt
            .paper
            .iter()
            .filter_map(|item| {
                let at = questions.iter().position(|q| q.id == item.question_id)?;
                Some(questions.swap_remove(at))
            })
            .collect()
    }

    async fn cached_exam(&self, id: &ExamId) -> Result<(Option<Exam>, CacheStatus), ExamError> {
        let key = self.cache.keys().exam(id);
        Ok(self
            .cache
            .get_or_load(&key, || async { self.exams.get_exam(id).await })
            .await?)
    }

    /// After a change to `exam` itself, and to its questions when `with_questions` (adding or
    /// removing one also moves the exam's `question_count`, so the exam goes too). Called after
    /// the store write whether it answered or not: a write whose answer was lost may have
    /// applied.
    async fn invalidate_exam(&self, exam: &Exam, with_questions: bool) {
        let keys = self.cache.keys();
        let mut stale: Vec<CacheKey> = vec![keys.exam(&exam.id)];
        if with_questions {
            stale.push(keys.exam_questions(&exam.id));
        }
        self.cache.invalidate(&stale).await;
        // The list shows published exams only, with their question counts. `exam` is as read
        // before the write: a draft's fields cannot be in the list, but its questions' count
        // can, if it was published meanwhile.
        if exam.is_published() || with_questions {
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

    /// Grades an attempt in progress with `grade` and submits it in the store (conditional on
    /// it being in progress and its stored answers being those graded: answers saved meanwhile
    /// are read and graded again), claiming its result email in the same write, then queues the
    /// email. An attempt submitted already (before, or meanwhile by a concurrent close) is
    /// answered as stored, and its result email queued if no job holds it, or if the job that
    /// holds it was never recorded (the close that claimed it died first). Returns whether this
    /// call closed the attempt.
    async fn close(
        &self,
        mut attempt: Attempt,
        student: Option<&UserProfile>,
        grade: impl Fn(&Attempt) -> AttemptResult,
    ) -> Result<(Attempt, Closed), ExamError> {
        let id = attempt.id.clone();
        let mut regrades = 0;
        // The sweep then checks that the result email left (a job recorded and never sent is
        // sent again), rather than at the attempt's deadline.
        let email_check_at = self.clock.now().saturating_add(EMAIL_CHECK_AFTER);
        // What the result email may show: read once (the attempt read again below keeps it).
        let review = match student {
            Some(_) => self.review_now(&attempt).await?,
            None => attempt.review,
        };
        while attempt.status == AttemptStatus::InProgress {
            let result = grade(&attempt);
            let job = student.map(|student| self.result_email(student, &attempt, &result, review));
            let job_id = job.as_ref().map_or(NO_RECIPIENT, |job| job.job_id.as_str());
            // Conditional on the stored answers being those graded.
            let submitted = self
                .attempts
                .submit(&id, &result, &attempt.answers, job_id, email_check_at)
                .await;
            match submitted {
                Ok(()) => {
                    tracing::info!(
                        score = result.score,
                        percent = result.percent,
                        late = result.late,
                        closed_by = ?result.closed_by,
                        "attempt graded"
                    );
                    attempt.status = AttemptStatus::Submitted;
                    attempt.result = Some(result);
                    attempt.result_email_job = Some(job_id.to_owned());
                    self.invalidate_attempt(&attempt).await;
                    // Unsure or not, the write above moved the due entry to the email's check.
                    if let Some(job) = job {
                        self.queue_result_email(&id, job).await?;
                    }
                    return Ok((attempt, Closed::Now));
                }
                // Submitted meanwhile (a concurrent close): answer with what was stored. Or
                // answers saved meanwhile: grade those stored (a few times at most).
                Err(StoreError::Conflict(AttemptConflict::AlreadySubmitted)) => {
                    attempt = self
                        .attempts
                        .get_attempt(&id)
                        .await?
                        .ok_or(ExamError::NotFound)?;
                }
                Err(StoreError::Conflict(AttemptConflict::AnswersChanged))
                    if regrades < REGRADES =>
                {
                    regrades += 1;
                    attempt = self
                        .attempts
                        .get_attempt(&id)
                        .await?
                        .ok_or(ExamError::NotFound)?;
                }
                Err(error) => {
                    // Its answer may have been lost after the store applied it.
                    self.invalidate_attempt(&attempt).await;
                    return Err(error.into());
                }
            }
        }
        // Submitted before: perhaps by a close whose answer was lost, so readers may still hold
        // the attempt in progress.
        self.invalidate_attempt(&attempt).await;
        let Some(student) = student else {
            return Ok((attempt, Closed::Before));
        };
        match (&attempt.result_email_job, &attempt.result) {
            (None, Some(result)) => {
                let job = self.result_email(student, &attempt, result, review);
                if self.attempts.claim_result_email(&id, &job.job_id).await? {
                    let closed = self.queue_result_email(&id, job).await?;
                    return Ok((attempt, closed));
                }
                return Ok((attempt, Closed::ClaimedMeanwhile));
            }
            // Claimed for a job the ledger does not know: the close that claimed it died before
            // recording it (its request timed out, its student saw a 503), or is about to record
            // it. Queued under the claimed id: the ledger records it once, and the worker's send
            // lease sends one copy (the other close's record is refused as a duplicate). Not once
            // a record made at the submit may have expired: the job may have been sent.
            (Some(claimed), Some(result))
                if claimed != NO_RECIPIENT
                    && self
                        .emails
                        .never_recorded(claimed, result.submitted_at, self.clock.now())
                        .await? =>
            {
                let job = EmailJob {
                    job_id: claimed.clone(),
                    ..self.result_email(student, &attempt, result, review)
                };
                tracing::info!(job_id = %claimed, "the claimed result email, never recorded, is queued");
                let closed = self.queue_result_email(&id, job).await?;
                return Ok((attempt, closed));
            }
            _ => {}
        }
        Ok((attempt, Closed::Before))
    }

    /// The review of `attempt` as the exam's close now stands
    /// ([`Self::review_from_the_close_as_it_is`]).
    async fn review_now(&self, attempt: &Attempt) -> Result<AttemptReview, ExamError> {
        let mut review = attempt.review;
        self.review_from_the_close_as_it_is(&mut review, &attempt.exam_id)
            .await?;
        Ok(review)
    }

    /// The result email of `attempt`: the score if `review` (the attempt's, as the exam's close
    /// now stands: [`Self::review_now`]) shows it from the submission; otherwise a
    /// confirmation naming when the result will show.
    fn result_email(
        &self,
        caller: &UserProfile,
        attempt: &Attempt,
        result: &AttemptResult,
        review: AttemptReview,
    ) -> EmailJob {
        let template = match review.shown_at(result.submitted_at) {
            Some(_) => EmailTemplate::ExamResult {
                name: caller.name.as_str().to_owned(),
                exam_title: attempt.exam_title.clone(),
                score_percent: result.percent,
                passed: result.passed,
                attempt_id: attempt.id.to_string(),
            },
            // Its review shows nothing yet: the email confirms the submission only.
            None => EmailTemplate::Generic {
                subject: format!("Your answers to {} are submitted", attempt.exam_title),
                text: format!(
                    "Your answers to \"{}\" are submitted and recorded. Your result will be \
                     available from {}.",
                    attempt.exam_title,
                    rfc3339(review.from.unwrap_or(result.submitted_at)),
                ),
            },
        };
        EmailJob::new(caller.email.clone(), template, self.clock.now())
    }

    /// Queues the result email whose claim is held; releases the claim if queueing fails, so a
    /// later submit can try again. A job recorded already under its id was queued meanwhile by
    /// another close (a sweep, a second submit) that found the claim without its job
    /// ([`Self::claimed_result_email`]): nothing is left to do, and the claim stays. So it does
    /// when the queue may have taken the job unheard ([`EnqueueError::Unsure`]): it is recorded
    /// queued under the claimed id, and the sweep at the email's check sends it again if no
    /// worker took it; a released claim would let the next close queue a second email. Says
    /// which: [`Closed::EmailQueued`], or [`Closed::EmailUnsure`] (a sweep keeps the attempt's
    /// due entry for it).
    async fn queue_result_email(&self, id: &AttemptId, job: EmailJob) -> Result<Closed, ExamError> {
        let job_id = job.job_id.clone();
        match self.emails.enqueue(job).await {
            Ok(_) => Ok(Closed::EmailQueued),
            Err(EnqueueError::Duplicate) => {
                tracing::info!(
                    job_id,
                    "the result email was queued meanwhile by another close"
                );
                Ok(Closed::EmailQueued)
            }
            Err(EnqueueError::Unsure(error)) => {
                tracing::warn!(
                    job_id,
                    error = %error,
                    "the result email may not have reached its lane: the sweep sends it again if not"
                );
                Ok(Closed::EmailUnsure)
            }
            Err(error) => {
                if let Err(release) = self.attempts.release_result_email(id, &job_id).await {
                    tracing::error!(error = %release, "could not release the result email claim");
                }
                Err(ExamError::Queue(error))
            }
        }
    }

    /// The result email of `attempt`, submitted, to `student` under `job_id`: the job its claim
    /// names, for a sweep to send again when the submit that claimed it may not have (see
    /// [`crate::sweep`]; a close that finds the claim without its job queues it the same way).
    /// Under that id the ledger records the job once and the worker sends it once, so a copy
    /// the claiming submit queued as well is never sent twice. `None` for an attempt without
    /// its result (never submitted).
    pub async fn claimed_result_email(
        &self,
        attempt: &Attempt,
        student: &UserProfile,
        job_id: &str,
    ) -> Result<Option<EmailJob>, ExamError> {
        let Some(result) = &attempt.result else {
            return Ok(None);
        };
        let review = self.review_now(attempt).await?;
        Ok(Some(EmailJob {
            job_id: job_id.to_owned(),
            ..self.result_email(student, attempt, result, review)
        }))
    }
}

/// A review "from the close" moved to `exam`'s close as it is now (its owner may have moved
/// it since the attempt started); other reviews left as they are.
fn at_the_close_as_it_is(review: &mut AttemptReview, exam: &Exam) {
    if review.from.is_some()
        && let Some(close) = exam.rules.closes_at
    {
        review.from = Some(close);
    }
}
