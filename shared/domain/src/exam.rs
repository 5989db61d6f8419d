//! Exam domain types: exams, questions, attempts and their results, validated at the edge, and
//! grading. Nothing here knows about HTTP, Lambda or a store.
//!
//! An attempt carries its own *paper* — the question ids, correct options and points as they
//! were when it started — so editing an exam later never changes an attempt's grading or its
//! recorded result.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::user::{InvalidInput, UserId};

mod cursor;
mod rules;

pub use cursor::{AttemptCursor, ExamCursor};
pub use rules::{
    AttemptReview, ExamRules, ReviewFrom, ReviewPolicy, ReviewShows, Window, parse_time,
};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new id: a UUID v7, so ids made later sort later (monotonic within a process),
            /// which orders questions added within the same second.
            pub fn generate() -> Self {
                Self(uuid::Uuid::now_v7().to_string())
            }

            /// The id in a path or body, if it has the shape of an id (a UUID). Anything else
            /// cannot name an existing resource.
            pub fn parse(raw: &str) -> Option<Self> {
                uuid::Uuid::parse_str(raw)
                    .ok()
                    .map(|id| Self(id.hyphenated().to_string()))
            }

            /// Wraps an id read from a trusted source (the store).
            pub fn from_trusted(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// An exam id.
    ExamId
);
id_type!(
    /// A question id.
    QuestionId
);
id_type!(
    /// An attempt id.
    AttemptId
);

/// Whether students can see an exam.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExamStatus {
    /// Being written; visible to its owner and admins only.
    Draft,
    /// Listed, and open for attempts.
    Published,
}

/// Limits on exam and question fields.
pub mod limits {
    /// Longest title, in characters.
    pub const TITLE_CHARS: usize = 200;
    /// Longest description, in characters.
    pub const DESCRIPTION_CHARS: usize = 5_000;
    /// Longest exam, in minutes (one day).
    pub const DURATION_MINUTES: u32 = 24 * 60;
    /// Longest question text, in characters.
    pub const QUESTION_CHARS: usize = 2_000;
    /// Longest option, in characters.
    pub const OPTION_CHARS: usize = 500;
    /// Fewest options per question.
    pub const MIN_OPTIONS: usize = 2;
    /// Most options per question.
    pub const MAX_OPTIONS: usize = 10;
    /// Most points per question.
    pub const MAX_POINTS: u32 = 1_000;
    /// Most questions per exam (an attempt's paper must fit in one DynamoDB item).
    pub const MAX_QUESTIONS: u32 = 200;
    /// Most attempts an exam can allow each student.
    pub const MAX_ATTEMPTS: u32 = 100;
}

fn text(
    raw: &str,
    field: &'static str,
    max_chars: usize,
    allow_empty: bool,
) -> Result<String, InvalidInput> {
    let value = raw.trim();
    if value.is_empty() && !allow_empty {
        return Err(InvalidInput::new(field, "must not be empty"));
    }
    if value.chars().count() > max_chars {
        return Err(InvalidInput::new(field, "is too long"));
    }
    if value
        .chars()
        .any(|c| crate::text::is_refused(c) && c != '\n' && c != '\t')
    {
        return Err(InvalidInput::new(
            field,
            "must not contain control characters or Unicode noncharacters",
        ));
    }
    Ok(value.to_owned())
}

/// The editable fields of an exam, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExamFields {
    /// 1–200 characters.
    pub title: String,
    /// Up to 5,000 characters.
    pub description: String,
    /// 1 minute to 1 day.
    pub duration_minutes: u32,
    /// 0–100.
    pub pass_mark_percent: u8,
}

/// Validates a title.
pub fn parse_title(raw: &str) -> Result<String, InvalidInput> {
    text(raw, "title", limits::TITLE_CHARS, false)
}

/// Validates a description.
pub fn parse_description(raw: &str) -> Result<String, InvalidInput> {
    text(raw, "description", limits::DESCRIPTION_CHARS, true)
}

/// Validates a duration.
pub fn parse_duration(minutes: u64) -> Result<u32, InvalidInput> {
    u32::try_from(minutes)
        .ok()
        .filter(|m| (1..=limits::DURATION_MINUTES).contains(m))
        .ok_or(InvalidInput::new(
            "duration_minutes",
            "must be from 1 to 1440",
        ))
}

/// Validates a pass mark.
pub fn parse_pass_mark(percent: u64) -> Result<u8, InvalidInput> {
    u8::try_from(percent)
        .ok()
        .filter(|p| *p <= 100)
        .ok_or(InvalidInput::new(
            "pass_mark_percent",
            "must be from 0 to 100",
        ))
}

/// An exam as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exam {
    /// Stable id.
    pub id: ExamId,
    /// The instructor (or admin) who created it.
    pub owner_id: UserId,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Time allowed for an attempt.
    pub duration_minutes: u32,
    /// Score needed to pass, in percent.
    pub pass_mark_percent: u8,
    /// Draft or published.
    pub status: ExamStatus,
    /// Questions it has (kept by the store as questions are added and removed).
    pub question_count: u32,
    /// Bumped on every change to the exam or its set of questions (optimistic concurrency).
    pub version: u64,
    /// Epoch seconds.
    pub created_at: i64,
    /// Epoch seconds.
    pub updated_at: i64,
    /// Epoch seconds; set when first published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published_at: Option<i64>,
    /// Its window, attempts per student and review (the defaults for exams stored before them).
    #[serde(default)]
    pub rules: ExamRules,
    /// The longest `duration_minutes` it has had since it was published: no attempt under way
    /// runs longer. `None` for a draft, and for an exam published before it was kept (then
    /// the longest any exam may have, [`limits::DURATION_MINUTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub longest_minutes: Option<u32>,
    /// The last moment it may have taken an attempt before its opening was moved later
    /// ([`Self::move_opening`]): attempts started until then may still be under way. `None`
    /// while it has not been open since it was published (and for an exam stored before this
    /// was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_until: Option<i64>,
    /// Whether its review has been "from the close" at some moment since it was published: the
    /// attempts started then keep that review, and once the close has passed theirs are out,
    /// whatever the review says now ([`Self::reviews_released`]). False for an exam stored
    /// before this was kept (its review as it is then is all there is to go by).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reviewed_from_close: bool,
}

impl Exam {
    /// A new draft owned by `owner`.
    pub fn draft(owner: UserId, fields: ExamFields, now: i64) -> Self {
        Self {
            id: ExamId::generate(),
            owner_id: owner,
            title: fields.title,
            description: fields.description,
            duration_minutes: fields.duration_minutes,
            pass_mark_percent: fields.pass_mark_percent,
            status: ExamStatus::Draft,
            question_count: 0,
            version: 1,
            created_at: now,
            updated_at: now,
            published_at: None,
            rules: ExamRules::default(),
            longest_minutes: None,
            open_until: None,
            reviewed_from_close: false,
        }
    }

    /// Whether reviews "from the close" have been shown: it is published, its review is or has
    /// been from the close since ([`Self::reviewed_from_close`]), and its close has passed at
    /// `now`. Reopening it then would let a student who read them sit it again.
    pub fn reviews_released(&self, now: i64) -> bool {
        self.awaits_its_close() && self.rules.closes_at.is_some_and(|close| close <= now)
    }

    /// Whether reviews wait for its close: it is published and its review is or has been from
    /// the close since ([`Self::reviewed_from_close`]). Its close may move then, not go: the
    /// attempts started under such a review would be left with the close they started with,
    /// and show their answers then while the exam, open-ended, takes attempts.
    pub fn awaits_its_close(&self) -> bool {
        self.is_published()
            && (self.reviewed_from_close || self.rules.review.from == ReviewFrom::Close)
    }

    /// Notes that its review is from the close while it is published (see
    /// [`Self::reviewed_from_close`]); called whenever its status or rules change.
    pub fn note_review(&mut self) {
        if self.is_published() && self.rules.review.from == ReviewFrom::Close {
            self.reviewed_from_close = true;
        }
    }

    /// Whether an attempt started before `now` may still be under way after `close`: each
    /// keeps the deadline of its start, at most its duration then — at most the longest since
    /// publishing ([`Self::longest_minutes`]) — after it. The last start is `now` while the
    /// opening is behind; while it is ahead, the last moment the exam was open
    /// ([`Self::open_until`]), or none if it has not been. A draft has no attempts.
    pub fn attempts_may_outlast(&self, close: i64, now: i64) -> bool {
        // A draft has none, and once the close has passed every attempt has ended by it.
        if !self.is_published() || self.rules.closes_at.is_some_and(|closes| closes <= now) {
            return false;
        }
        let last_start = if self.rules.opens_at.is_some_and(|opens| opens > now) {
            match self.open_until {
                Some(until) => until,
                None => return false,
            }
        } else {
            now
        };
        let latest = last_start + self.longest_attempt_seconds();
        let latest = self
            .rules
            .closes_at
            .map_or(latest, |closes| latest.min(closes));
        close < latest
    }

    /// The longest an attempt at it may run: the longest duration it has had since it was
    /// published ([`Self::longest_minutes`]; the longest any exam may have, for one published
    /// before that was kept).
    pub fn longest_attempt_seconds(&self) -> i64 {
        i64::from(self.longest_minutes.unwrap_or(limits::DURATION_MINUTES)) * 60
    }

    /// Moves its opening to `opens_at` at `now`. When that puts the opening of a published
    /// exam that is open (or was, until its close) ahead of `now`, remembers the last moment it
    /// took attempts ([`Self::open_until`]), so the close still waits for them.
    pub fn move_opening(&mut self, opens_at: Option<i64>, now: i64) {
        let was_open = self.is_published() && self.rules.opens_at.is_none_or(|opens| opens <= now);
        if was_open && opens_at.is_some_and(|opens| opens > now) {
            let last = self.rules.closes_at.map_or(now, |closes| closes.min(now));
            self.open_until = Some(self.open_until.map_or(last, |until| until.max(last)));
        }
        self.rules.opens_at = opens_at;
    }

    /// Whether it is published.
    pub fn is_published(&self) -> bool {
        self.status == ExamStatus::Published
    }
}

/// The editable fields of a question, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuestionFields {
    /// The question.
    pub text: String,
    /// 2–10 answer options.
    pub options: Vec<String>,
    /// Index into `options` of the right answer.
    pub correct_option: u8,
    /// Points for a right answer (1–1,000).
    pub points: u32,
}

impl QuestionFields {
    /// Validates the fields of a question.
    pub fn parse(
        text_raw: &str,
        options: &[String],
        correct_option: u64,
        points: u64,
    ) -> Result<Self, InvalidInput> {
        let question = text(text_raw, "text", limits::QUESTION_CHARS, false)?;
        if !(limits::MIN_OPTIONS..=limits::MAX_OPTIONS).contains(&options.len()) {
            return Err(InvalidInput::new("options", "must have 2 to 10 options"));
        }
        let options = options
            .iter()
            .map(|o| text(o, "options", limits::OPTION_CHARS, false))
            .collect::<Result<Vec<_>, _>>()?;
        // Two options that read the same (once trimmed) would make a right answer marked wrong,
        // with no regrading once the exam is published.
        if options
            .iter()
            .enumerate()
            .any(|(i, option)| options[..i].contains(option))
        {
            return Err(InvalidInput::new("options", "must differ from each other"));
        }
        let correct_option = u8::try_from(correct_option)
            .ok()
            .filter(|i| usize::from(*i) < options.len())
            .ok_or(InvalidInput::new(
                "correct_option",
                "must be the index of one of the options (from 0)",
            ))?;
        let points = u32::try_from(points)
            .ok()
            .filter(|p| (1..=limits::MAX_POINTS).contains(p))
            .ok_or(InvalidInput::new("points", "must be from 1 to 1000"))?;
        Ok(Self {
            text: question,
            options,
            correct_option,
            points,
        })
    }
}

/// A question as stored, with its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Question {
    /// Stable id.
    pub id: QuestionId,
    /// The exam it belongs to.
    pub exam_id: ExamId,
    /// The question.
    pub text: String,
    /// Answer options.
    pub options: Vec<String>,
    /// Index of the right option.
    pub correct_option: u8,
    /// Points for a right answer.
    pub points: u32,
    /// Epoch seconds; questions are listed in the order they were added.
    pub created_at: i64,
}

impl Question {
    /// A new question of `exam`.
    pub fn new(exam: ExamId, fields: QuestionFields, now: i64) -> Self {
        Self {
            id: QuestionId::generate(),
            exam_id: exam,
            text: fields.text,
            options: fields.options,
            correct_option: fields.correct_option,
            points: fields.points,
            created_at: now,
        }
    }

    /// Whether `other` holds the same fields an edit writes (text, options, answer, points):
    /// what an edit is conditioned on, and what tells a resent edit that it was saved.
    pub fn same_fields(&self, other: &Question) -> bool {
        self.text == other.text && self.same_grading(other)
    }

    /// Whether `other` grades as this question does: the same options, right option and points
    /// (what an attempt's [`PaperItem`] holds, and what its paper's options mean).
    pub fn same_grading(&self, other: &Question) -> bool {
        self.options == other.options
            && self.correct_option == other.correct_option
            && self.points == other.points
    }

    /// What a student may see: everything but the answer.
    pub fn for_student(&self) -> StudentQuestion {
        StudentQuestion {
            id: self.id.clone(),
            text: json_text(&self.text),
            options: json_text(&self.options),
            points: self.points,
        }
    }
}

/// A question without its answer. The type has no field for the answer, so no code path can
/// send one to a student. It reads a stored [`Question`]'s JSON (a cache entry) as it is, the
/// answer and the other fields it lacks skipped; its text and options stay JSON text, so an
/// answer copies them as they were cached instead of unescaping and escaping them again.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StudentQuestion {
    /// Id (the key in an answers map).
    pub id: QuestionId,
    /// The question: a JSON string.
    pub text: Box<RawValue>,
    /// Answer options: a JSON array of strings.
    pub options: Box<RawValue>,
    /// Points for a right answer.
    pub points: u32,
}

impl PartialEq for StudentQuestion {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.text.get() == other.text.get()
            && self.options.get() == other.options.get()
            && self.points == other.points
    }
}

impl Eq for StudentQuestion {}

/// An exam's questions as a student may see them: read from the questions' cache entry (JSON of
/// [`Question`]s) as it is, or made from the questions loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct StudentQuestions(pub Vec<StudentQuestion>);

impl From<Vec<Question>> for StudentQuestions {
    fn from(questions: Vec<Question>) -> Self {
        Self(questions.iter().map(Question::for_student).collect())
    }
}

/// `value` as JSON text (strings and lists of strings always encode).
fn json_text<T: Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_default()
}

/// One question of an attempt's paper: what grading needs, frozen when the attempt started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaperItem {
    /// The question.
    pub question_id: QuestionId,
    /// How many options it had.
    pub option_count: u8,
    /// The right option.
    pub correct_option: u8,
    /// Points for it.
    pub points: u32,
}

/// Chosen options by question.
pub type Answers = BTreeMap<QuestionId, u8>;

/// Where an attempt is.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Started, answers can be saved until the deadline.
    InProgress,
    /// Graded; final.
    Submitted,
}

/// What closed an attempt.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClosedBy {
    /// Its student submitted it (results recorded before this field existed were all this).
    #[default]
    Student,
    /// Its deadline: the student never submitted, and the attempt sweep closed it.
    Deadline,
}

/// The graded outcome of an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptResult {
    /// Points scored.
    pub score: u32,
    /// Points available.
    pub max_score: u32,
    /// `score / max_score`, in whole percent (rounded down).
    pub percent: u32,
    /// Whether `percent` reached the exam's pass mark.
    pub passed: bool,
    /// Questions answered right.
    pub correct: u32,
    /// Questions answered.
    pub answered: u32,
    /// Questions on the paper.
    pub questions: u32,
    /// Epoch seconds.
    pub submitted_at: i64,
    /// Whether the submission came after the deadline (answers saved in time still count).
    pub late: bool,
    /// What closed the attempt: its student's submit, or its deadline.
    #[serde(default)]
    pub closed_by: ClosedBy,
}

/// An attempt as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Stable id.
    pub id: AttemptId,
    /// The exam.
    pub exam_id: ExamId,
    /// The exam's title when the attempt started (shown in lists, kept if the exam goes).
    pub exam_title: String,
    /// The student.
    pub user_id: UserId,
    /// The pass mark when the attempt started.
    pub pass_mark_percent: u8,
    /// Epoch seconds.
    pub started_at: i64,
    /// `started_at` + the exam's duration, or the exam's close if sooner; no answer is saved
    /// after it.
    pub deadline: i64,
    /// The questions as they were at the start.
    pub paper: Vec<PaperItem>,
    /// Saved answers.
    pub answers: Answers,
    /// In progress or submitted.
    pub status: AttemptStatus,
    /// Set on submit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<AttemptResult>,
    /// The "result available" email job, once it is queued (claimed before queueing, released if
    /// queueing fails, so a second submit can queue it and no two submits queue it twice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_email_job: Option<String>,
    /// What it shows its student once finished, and from when (the exam's, at the start).
    #[serde(default)]
    pub review: AttemptReview,
    /// The version of the exam it was started under: its creation is on condition that the
    /// exam is still at it (the limit, the review and the paper it was started with are the
    /// exam's as it is). Absent from attempts stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exam_version: Option<u64>,
}

impl Attempt {
    /// A new attempt of `exam` (with `questions`) by `user`, starting `now`.
    pub fn start(exam: &Exam, questions: &[Question], user: UserId, now: i64) -> Self {
        Self {
            id: AttemptId::generate(),
            exam_id: exam.id.clone(),
            exam_title: exam.title.clone(),
            user_id: user,
            pass_mark_percent: exam.pass_mark_percent,
            started_at: now,
            deadline: exam.rules.deadline(now, exam.duration_minutes),
            paper: questions
                .iter()
                .map(|q| PaperItem {
                    question_id: q.id.clone(),
                    option_count: u8::try_from(q.options.len()).unwrap_or(u8::MAX),
                    correct_option: q.correct_option,
                    points: q.points,
                })
                .collect(),
            answers: Answers::new(),
            status: AttemptStatus::InProgress,
            result: None,
            result_email_job: None,
            review: exam.rules.attempt_review(),
            exam_version: Some(exam.version),
        }
    }

    /// Whether answers can still be saved at `now`.
    pub fn is_open(&self, now: i64) -> bool {
        self.status == AttemptStatus::InProgress && now < self.deadline
    }

    /// Checks answers from a client against the paper: every question must be on it and every
    /// option in range.
    pub fn check_answers(&self, answers: &BTreeMap<String, u64>) -> Result<Answers, InvalidInput> {
        let mut checked = Answers::new();
        for (raw_id, option) in answers {
            let item = QuestionId::parse(raw_id)
                .and_then(|id| self.paper.iter().find(|p| p.question_id == id))
                .ok_or(InvalidInput::new(
                    "answers",
                    "every key must be the id of a question of this exam",
                ))?;
            let option = u8::try_from(*option)
                .ok()
                .filter(|o| *o < item.option_count)
                .ok_or(InvalidInput::new(
                    "answers",
                    "every answer must be the index of one of the question's options (from 0)",
                ))?;
            // Two spellings of one id (upper case, braces, no hyphens): which one counted would
            // be the keys' sort order, not anything the client meant.
            if checked.insert(item.question_id.clone(), option).is_some() {
                return Err(InvalidInput::new(
                    "answers",
                    "a question is answered twice (its id written two ways)",
                ));
            }
        }
        Ok(checked)
    }

    /// Grades the saved answers as of the deadline, for an attempt its student never submitted:
    /// recorded as submitted at the deadline, by the deadline, and not late (the attempt was
    /// open until then, so nothing was missed).
    pub fn grade_at_deadline(&self) -> AttemptResult {
        AttemptResult {
            late: false,
            closed_by: ClosedBy::Deadline,
            ..self.grade(self.deadline)
        }
    }

    /// Grades the saved answers at `now`. Only answers saved before the deadline exist (saving
    /// is refused after it), so a late submission is graded on what was saved in time.
    pub fn grade(&self, now: i64) -> AttemptResult {
        let mut result = AttemptResult {
            score: 0,
            max_score: 0,
            percent: 0,
            passed: false,
            correct: 0,
            answered: 0,
            questions: u32::try_from(self.paper.len()).unwrap_or(u32::MAX),
            submitted_at: now,
            late: now > self.deadline,
            closed_by: ClosedBy::Student,
        };
        for item in &self.paper {
            result.max_score = result.max_score.saturating_add(item.points);
            if let Some(chosen) = self.answers.get(&item.question_id) {
                result.answered += 1;
                if *chosen == item.correct_option {
                    result.correct += 1;
                    result.score = result.score.saturating_add(item.points);
                }
            }
        }
        result.percent = if result.max_score == 0 {
            0
        } else {
            u32::try_from(u64::from(result.score) * 100 / u64::from(result.max_score))
                .unwrap_or(100)
        };
        result.passed = result.percent >= u32::from(self.pass_mark_percent);
        result
    }

    /// Whether this attempt is as a submit of `graded` with `result`, claiming its result email
    /// for `email_job_id`, leaves it: that submit has landed, and the same one again (a retried
    /// write) has nothing left to do. Email job ids are unique, so no other submit matches.
    pub fn is_submitted_as(
        &self,
        result: &AttemptResult,
        graded: &Answers,
        email_job_id: &str,
    ) -> bool {
        self.status == AttemptStatus::Submitted
            && self.result.as_ref() == Some(result)
            && self.result_email_job.as_deref() == Some(email_job_id)
            && self.answers == *graded
    }

    /// The list entry of this attempt.
    pub fn summary(&self) -> AttemptSummary {
        AttemptSummary {
            attempt_id: self.id.clone(),
            exam_id: self.exam_id.clone(),
            exam_title: self.exam_title.clone(),
            user_id: self.user_id.clone(),
            status: self.status,
            started_at: self.started_at,
            deadline: self.deadline,
            result: self.result.clone(),
            review: self.review,
        }
    }
}

/// An attempt in a list (`/me/attempts`, `/exams/{id}/results`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptSummary {
    /// The attempt.
    pub attempt_id: AttemptId,
    /// The exam.
    pub exam_id: ExamId,
    /// The exam's title at the start.
    pub exam_title: String,
    /// The student.
    pub user_id: UserId,
    /// In progress or submitted.
    pub status: AttemptStatus,
    /// Epoch seconds.
    pub started_at: i64,
    /// Epoch seconds.
    pub deadline: i64,
    /// Set once submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<AttemptResult>,
    /// What it shows its student once finished, and from when.
    #[serde(default)]
    pub review: AttemptReview,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exam(pass_mark: u8) -> Exam {
        let fields = ExamFields {
            title: "Rust".into(),
            description: String::new(),
            duration_minutes: 30,
            pass_mark_percent: pass_mark,
        };
        Exam::draft(UserId::generate(), fields, 1_000)
    }

    /// The attempts an exam took stay in view when its opening moves later: from the moment it
    /// moved, or from its close if that came first; an exam that never opened has none.
    #[test]
    fn texts_with_noncharacters_are_refused() {
        for title in [
            "Quiz\u{ffff}",
            "Quiz\u{fffe}",
            "Quiz\u{fdef}",
            "Quiz\u{10ffff}",
        ] {
            assert!(parse_title(title).is_err(), "{title:?}");
        }
        assert!(parse_description("line one\nline two\tand a tab").is_ok());
        assert!(parse_title("Quiz \u{fffd} \u{1f600}").is_ok());
    }

    #[test]
    fn an_opening_moved_later_keeps_the_attempts_it_took_in_view() {
        let published = || {
            let mut exam = exam(50);
            exam.status = ExamStatus::Published;
            exam.published_at = Some(1_000);
            exam.longest_minutes = Some(30);
            exam
        };
        let (now, half_hour) = (10_000, 30 * 60);

        let mut open = published();
        open.move_opening(Some(now + 600), now);
        assert_eq!(open.open_until, Some(now));
        assert!(open.attempts_may_outlast(now + half_hour - 1, now + 60));
        assert!(!open.attempts_may_outlast(now + half_hour, now + 60));

        let mut closed = published();
        closed.rules.closes_at = Some(now - 600);
        closed.move_opening(Some(now + 600), now);
        assert_eq!(closed.open_until, Some(now - 600), "open until its close");

        let mut unopened = published();
        unopened.rules.opens_at = Some(now + 60);
        unopened.move_opening(Some(now + 600), now);
        assert_eq!(unopened.open_until, None);
        assert!(!unopened.attempts_may_outlast(now + 1, now));
    }

    #[test]
    fn a_question_answered_under_two_spellings_of_its_id_is_refused() {
        let (attempt, ids) = attempt(50);
        let id = ids[0].as_str();
        let twice = BTreeMap::from([(id.to_owned(), 0), (id.to_uppercase(), 1)]);
        assert!(attempt.check_answers(&twice).is_err());
        let once = BTreeMap::from([(id.to_uppercase(), 1)]);
        assert_eq!(attempt.check_answers(&once).ok().map(|a| a.len()), Some(1));
    }

    #[test]
    fn no_attempt_is_under_way_once_the_close_has_passed() {
        let mut exam = exam(50);
        exam.status = ExamStatus::Published;
        exam.published_at = Some(1_000);
        exam.longest_minutes = Some(30);
        let now = 10_000;
        exam.rules.closes_at = Some(now - 60);
        // Correcting a passed close to an earlier time cuts no attempt: all ended by it.
        assert!(!exam.attempts_may_outlast(now - 3_600, now));
        exam.rules.closes_at = Some(now + 3_600);
        assert!(
            exam.attempts_may_outlast(now + 60, now),
            "an open exam's still do"
        );
    }

    fn question(exam: &Exam, correct: u8, points: u32) -> Question {
        let options = vec!["a".into(), "b".into(), "c".into()];
        let fields = QuestionFields::parse("q?", &options, u64::from(correct), u64::from(points))
            .expect("valid question");
        Question::new(exam.id.clone(), fields, 1_000)
    }

    fn attempt(pass_mark: u8) -> (Attempt, Vec<QuestionId>) {
        let exam = exam(pass_mark);
        let questions = vec![
            question(&exam, 0, 1),
            question(&exam, 1, 2),
            question(&exam, 2, 3),
        ];
        let ids = questions.iter().map(|q| q.id.clone()).collect();
        (
            Attempt::start(&exam, &questions, UserId::generate(), 2_000),
            ids,
        )
    }

    #[test]
    fn full_marks_pass() {
        let (mut attempt, ids) = attempt(50);
        attempt.answers = [
            (ids[0].clone(), 0),
            (ids[1].clone(), 1),
            (ids[2].clone(), 2),
        ]
        .into();
        let result = attempt.grade(2_100);
        assert_eq!(
            (result.score, result.max_score, result.percent),
            (6, 6, 100)
        );
        assert!(result.passed && !result.late);
        assert_eq!(
            (result.correct, result.answered, result.questions),
            (3, 3, 3)
        );
    }

    #[test]
    fn partial_marks_are_weighted_by_points_and_rounded_down() {
        let (mut attempt, ids) = attempt(50);
        attempt.answers = [
            (ids[0].clone(), 0),
            (ids[1].clone(), 1),
            (ids[2].clone(), 0),
        ]
        .into();
        let result = attempt.grade(2_100);
        assert_eq!((result.score, result.percent), (3, 50));
        assert!(result.passed, "50 % reaches a pass mark of 50 %");
        attempt.answers = [(ids[1].clone(), 1)].into();
        let result = attempt.grade(2_100);
        assert_eq!((result.score, result.percent, result.answered), (2, 33, 1));
        assert!(!result.passed);
    }

    #[test]
    fn no_answers_score_zero() {
        let (attempt, _) = attempt(0);
        let result = attempt.grade(2_100);
        assert_eq!((result.score, result.percent, result.answered), (0, 0, 0));
        assert!(result.passed, "a pass mark of 0 is always reached");
    }

    #[test]
    fn answers_are_checked_against_the_paper() {
        let (attempt, ids) = attempt(50);
        let ok = BTreeMap::from([(ids[0].to_string(), 2u64)]);
        assert_eq!(attempt.check_answers(&ok).map(|a| a.len()), Ok(1));
        let out_of_range = BTreeMap::from([(ids[0].to_string(), 3u64)]);
        assert!(attempt.check_answers(&out_of_range).is_err());
        let foreign = BTreeMap::from([(QuestionId::generate().to_string(), 0u64)]);
        assert!(attempt.check_answers(&foreign).is_err());
        let garbage = BTreeMap::from([("../../etc".to_owned(), 0u64)]);
        assert!(attempt.check_answers(&garbage).is_err());
    }

    #[test]
    fn the_deadline_closes_the_attempt() {
        let (attempt, _) = attempt(50);
        assert!(attempt.is_open(attempt.deadline - 1));
        assert!(!attempt.is_open(attempt.deadline));
        assert!(attempt.grade(attempt.deadline + 1).late);
    }

    #[test]
    fn an_attempt_left_open_is_graded_as_of_its_deadline() {
        let (mut attempt, ids) = attempt(50);
        attempt.answers = [(ids[2].clone(), 2)].into();
        let result = attempt.grade_at_deadline();
        assert_eq!((result.score, result.percent), (3, 50));
        assert_eq!(result.submitted_at, attempt.deadline);
        assert!(!result.late);
        assert_eq!(result.closed_by, ClosedBy::Deadline);
        assert_eq!(
            attempt.grade(attempt.deadline + 1).closed_by,
            ClosedBy::Student
        );
    }

    /// Text that JSON escapes: quotes, backslashes, control characters, markup, non-ASCII (set
    /// past the validation, which refuses control characters: the entry's format is what is
    /// tested).
    fn awkward_question(exam: &Exam) -> Question {
        Question {
            text: "What is \"x\" in C:\\path?\n".to_owned(),
            options: vec![
                "\"quoted\" \\ back".to_owned(),
                "tab\there\nnew line \u{7}".to_owned(),
                "</script><b>é 中文 🦀</b>".to_owned(),
            ],
            ..question(exam, 2, 4)
        }
    }

    #[test]
    fn a_student_question_reads_a_stored_question_without_its_answer() {
        let exam = exam(50);
        let stored = vec![awkward_question(&exam), question(&exam, 1, 2)];
        let cached = serde_json::to_string(&stored).expect("questions encode");
        let read: StudentQuestions = serde_json::from_str(&cached).expect("read as a student's");
        assert_eq!(
            read,
            StudentQuestions::from(stored.clone()),
            "read as converted"
        );
        let shown = serde_json::to_value(&read.0[0]).expect("encodes");
        assert_eq!(
            shown,
            serde_json::json!({
                "id": stored[0].id,
                "text": stored[0].text,
                "options": stored[0].options,
                "points": 4,
            }),
            "the text and options as written, and no answer"
        );
    }

    #[test]
    fn question_fields_are_validated() {
        let two = vec!["yes".to_owned(), "no".to_owned()];
        assert!(QuestionFields::parse("q", &two, 1, 5).is_ok());
        assert!(QuestionFields::parse(" ", &two, 0, 5).is_err());
        assert!(QuestionFields::parse("q", &two[..1], 0, 5).is_err());
        assert!(QuestionFields::parse("q", &vec!["x".to_owned(); 11], 0, 5).is_err());
        assert!(QuestionFields::parse("q", &two, 2, 5).is_err());
        assert!(QuestionFields::parse("q", &two, 0, 0).is_err());
        assert!(QuestionFields::parse("q", &["a".to_owned(), " ".to_owned()], 0, 1).is_err());
        let same = ["4".to_owned(), "5".to_owned(), " 4 ".to_owned()];
        assert!(QuestionFields::parse("2+2?", &same, 0, 1).is_err());
    }

    #[test]
    fn ids_must_look_like_ids() {
        assert!(ExamId::parse("not-an-id").is_none());
        let id = ExamId::generate();
        assert_eq!(ExamId::parse(&id.as_str().to_uppercase()), Some(id));
    }
}
