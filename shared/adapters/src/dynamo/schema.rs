//! The single-table key schema: every item the stores keep in the one `pk`/`sk` table of
//! [`crate::resources`] (string keys, TTL attribute `expires_at`, no secondary index), with its
//! keys and, for the items written whole, its struct.
//!
//! Items (timestamps in sort keys are 20 digits with the sign bit flipped, so text order is
//! number order for every `i64`):
//! - `USER#<id>` / `USER`: the account.
//! - `EMAIL#<address>` / `EMAIL`: claims an address for one account (uniqueness), written in the
//!   same transaction as the account.
//! - `TOKEN#<sha256>` / `TOKEN`: a one-time token, removed by a conditional delete when used.
//! - `JOB#<id>` / `JOB`: an email job record, expired by the table's TTL after the configured
//!   retention.
//! - `EXAM#<exam>` / `EXAM`: the exam.
//! - `EXAM#<exam>` / `QUESTION#<question>`: a question (listed by `created_at`, then id, sorted
//!   by the store, since the key does not hold the order).
//! - `EXAMS#PUBLISHED` / `<published_at>#<exam>`: a copy of a published exam, its entry in the
//!   published list (an exam without `published_at` counts from `created_at`, as in
//!   [`ExamCursor::after`]). Queried newest first; the page after a cursor is the key condition
//!   `sk < <cursor>`, which holds even if the cursor's exam has since left the list.
//! - `ATTEMPT#<attempt>` / `ATTEMPT`: the attempt, with its paper and answers.
//! - `EXAM#<exam>` / `OPEN#<user>`: the student's open attempt at the exam (its id and
//!   deadline), put in the attempt's create transaction on condition that none is there or the
//!   one there is past its deadline, and deleted in the transaction that submits it: one open
//!   attempt per student and exam, however many starts race. Expired by the table's TTL at the
//!   deadline.
//! - `USER#<user>` / `ATTEMPT#<started_at>#<attempt>` and `EXAM#<exam>` /
//!   `ATTEMPT#<started_at>#<attempt>`: the attempt's summary in the student's and the exam's
//!   lists (these partitions also hold the account and the exam: every list query is
//!   `begins_with(sk, ...)`).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use oes_domain::exam::{
    Attempt, AttemptId, AttemptSummary, Exam, ExamCursor, ExamId, Question, QuestionId,
};
use oes_domain::ports::{JobRecord, StoredToken, TokenPurpose};
use oes_domain::security::TokenHash;
use oes_domain::user::{Email, User, UserId};

use super::{Item, s};

/// Sort key of an account.
const USER: &str = "USER";
/// Sort key of an email claim.
const EMAIL: &str = "EMAIL";
/// Sort key of a one-time token.
const TOKEN: &str = "TOKEN";
/// Sort key of an email job record.
const JOB: &str = "JOB";
/// Sort key of an exam.
const EXAM: &str = "EXAM";
/// Sort key of an attempt.
const ATTEMPT: &str = "ATTEMPT";
/// The partition of the published list.
pub(super) const PUBLISHED: &str = "EXAMS#PUBLISHED";
/// Sort key prefix of a question in its exam's partition.
pub(super) const QUESTION_PREFIX: &str = "QUESTION#";
/// Sort key prefix of an attempt summary in a student's or an exam's partition.
pub(super) const SUMMARY_PREFIX: &str = "ATTEMPT#";
/// Sort key prefix of a student's open attempt in an exam's partition.
const OPEN_PREFIX: &str = "OPEN#";

/// The key of the item `pk` / `sk`.
fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// The key of `item`: its `pk` and `sk`.
pub(super) fn key_of(item: Item) -> Item {
    item.into_iter()
        .filter(|(name, _)| name == "pk" || name == "sk")
        .collect()
}

/// A timestamp as fixed-width text that sorts like the number.
fn sortable(t: i64) -> String {
    format!("{:020}", t.cast_unsigned() ^ (1 << 63))
}

/// The partition of an account, which also holds the student's attempt list.
pub(super) fn user_pk(id: &UserId) -> String {
    format!("USER#{id}")
}

/// The key of an account.
pub(super) fn user_key(id: &UserId) -> Item {
    key(user_pk(id), USER)
}

/// The partition of an address's claim.
fn email_pk(email: &Email) -> String {
    format!("EMAIL#{email}")
}

/// The key of an address's claim.
pub(super) fn email_key(email: &Email) -> Item {
    key(email_pk(email), EMAIL)
}

/// The partition of a one-time token.
fn token_pk(hash: &TokenHash) -> String {
    format!("TOKEN#{}", hash.as_str())
}

/// The key of a one-time token.
pub(super) fn token_key(hash: &TokenHash) -> Item {
    key(token_pk(hash), TOKEN)
}

/// The key of an email job record.
pub(super) fn job_key(job_id: &str) -> Item {
    key(format!("JOB#{job_id}"), JOB)
}

/// The partition of an exam, which also holds its questions and its attempt list.
pub(super) fn exam_pk(id: &ExamId) -> String {
    format!("EXAM#{id}")
}

/// The key of an exam.
pub(super) fn exam_key(id: &ExamId) -> Item {
    key(exam_pk(id), EXAM)
}

/// The sort key of a question.
fn question_sk(id: &QuestionId) -> String {
    format!("{QUESTION_PREFIX}{id}")
}

/// The key of a question.
pub(super) fn question_key(exam: &ExamId, id: &QuestionId) -> Item {
    key(exam_pk(exam), question_sk(id))
}

/// The sort key in the published list of the exam `cursor` points after.
pub(super) fn listing_sk(cursor: &ExamCursor) -> String {
    format!("{}#{}", sortable(cursor.published_at), cursor.exam_id)
}

/// The sort key of `exam`'s entry in the published list, if it is listed.
pub(super) fn listing_of(exam: &Exam) -> Option<String> {
    let cursor = ExamCursor::after(exam);
    exam.is_published().then(|| listing_sk(&cursor))
}

/// The key of the entry `sk` in the published list.
pub(super) fn listing_key(sk: String) -> Item {
    key(PUBLISHED.into(), sk)
}

/// The partition of an attempt.
fn attempt_pk(id: &AttemptId) -> String {
    format!("ATTEMPT#{id}")
}

/// The key of an attempt.
pub(super) fn attempt_key(id: &AttemptId) -> Item {
    key(attempt_pk(id), ATTEMPT)
}

/// The key of `user`'s open attempt at `exam`.
pub(super) fn open_attempt_key(exam: &ExamId, user: &UserId) -> Item {
    key(exam_pk(exam), format!("{OPEN_PREFIX}{user}"))
}

/// The sort key of an attempt's summary in its lists.
fn summary_sk(attempt: &AttemptSummary) -> String {
    format!(
        "{SUMMARY_PREFIX}{}#{}",
        sortable(attempt.started_at),
        attempt.attempt_id
    )
}

/// `USER#<id>` / `USER`.
#[derive(Serialize, Deserialize)]
pub(super) struct UserItem {
    pk: String,
    sk: String,
    /// The account.
    #[serde(flatten)]
    pub(super) user: User,
}

impl UserItem {
    /// The item of `user`.
    pub(super) fn new(user: User) -> Self {
        Self {
            pk: user_pk(&user.id),
            sk: USER.into(),
            user,
        }
    }
}

/// `EMAIL#<address>` / `EMAIL`.
#[derive(Serialize, Deserialize)]
pub(super) struct EmailItem {
    pk: String,
    sk: String,
    /// The account the address belongs to.
    pub(super) user_id: UserId,
}

impl EmailItem {
    /// The claim of `email` for `user_id`.
    pub(super) fn new(email: &Email, user_id: UserId) -> Self {
        Self {
            pk: email_pk(email),
            sk: EMAIL.into(),
            user_id,
        }
    }
}

/// `TOKEN#<sha256>` / `TOKEN`.
#[derive(Serialize, Deserialize)]
pub(super) struct TokenItem {
    pk: String,
    sk: String,
    purpose: TokenPurpose,
    user_id: UserId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    new_email: Option<Email>,
    token_version: u64,
    /// Absent from tokens stored before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_email: Option<Email>,
    expires_at: i64,
}

impl TokenItem {
    /// The item of `token`.
    pub(super) fn new(token: &StoredToken) -> Self {
        Self {
            pk: token_pk(&token.hash),
            sk: TOKEN.into(),
            purpose: token.purpose,
            user_id: token.user_id.clone(),
            new_email: token.new_email.clone(),
            token_version: token.token_version,
            account_email: token.account_email.clone(),
            expires_at: token.expires_at,
        }
    }

    /// The token this item holds, `hash` being its key's.
    pub(super) fn into_token(self, hash: TokenHash) -> StoredToken {
        StoredToken {
            hash,
            purpose: self.purpose,
            user_id: self.user_id,
            new_email: self.new_email,
            token_version: self.token_version,
            account_email: self.account_email,
            expires_at: self.expires_at,
        }
    }
}

/// `JOB#<id>` / `JOB`, as read back: it is written attribute by attribute by update expressions
/// (its `pk` and `sk` are the key's, and `expires_at` is its TTL).
#[derive(Serialize, Deserialize)]
pub(super) struct JobItem {
    /// The record.
    #[serde(flatten)]
    pub(super) record: JobRecord,
}

/// `EXAM#<exam>` / `EXAM`, or `EXAMS#PUBLISHED` / `<published_at>#<exam>`.
#[derive(Serialize, Deserialize)]
pub(super) struct ExamItem {
    pk: String,
    sk: String,
    /// The exam.
    #[serde(flatten)]
    pub(super) exam: Exam,
}

impl ExamItem {
    /// The item of `exam`.
    pub(super) fn new(exam: Exam) -> Self {
        Self {
            pk: exam_pk(&exam.id),
            sk: EXAM.into(),
            exam,
        }
    }

    /// The entry `sk` (see [`listing_of`]) of `exam` in the published list.
    pub(super) fn listing(sk: String, exam: Exam) -> Self {
        Self {
            pk: PUBLISHED.into(),
            sk,
            exam,
        }
    }
}

/// `EXAM#<exam>` / `QUESTION#<question>`.
#[derive(Serialize, Deserialize)]
pub(super) struct QuestionItem {
    pk: String,
    sk: String,
    /// The question.
    #[serde(flatten)]
    pub(super) question: Question,
}

impl QuestionItem {
    /// The item of `question`.
    pub(super) fn new(question: Question) -> Self {
        Self {
            pk: exam_pk(&question.exam_id),
            sk: question_sk(&question.id),
            question,
        }
    }
}

/// `ATTEMPT#<attempt>` / `ATTEMPT`.
#[derive(Serialize, Deserialize)]
pub(super) struct AttemptItem {
    pk: String,
    sk: String,
    /// The attempt.
    #[serde(flatten)]
    pub(super) attempt: Attempt,
}

impl AttemptItem {
    /// The item of `attempt`.
    pub(super) fn new(attempt: Attempt) -> Self {
        Self {
            pk: attempt_pk(&attempt.id),
            sk: ATTEMPT.into(),
            attempt,
        }
    }
}

/// `EXAM#<exam>` / `OPEN#<user>`.
#[derive(Serialize, Deserialize)]
pub(super) struct OpenAttemptItem {
    pk: String,
    sk: String,
    /// The open attempt.
    pub(super) attempt_id: AttemptId,
    /// Its deadline: after it, the marker holds nothing.
    pub(super) deadline: i64,
    /// The table's TTL: the deadline.
    expires_at: i64,
}

impl OpenAttemptItem {
    /// The marker of `attempt`, open until its deadline.
    pub(super) fn new(attempt: &Attempt) -> Self {
        Self {
            pk: exam_pk(&attempt.exam_id),
            sk: format!("{OPEN_PREFIX}{}", attempt.user_id),
            attempt_id: attempt.id.clone(),
            deadline: attempt.deadline,
            expires_at: attempt.deadline,
        }
    }
}

/// `USER#<user>` or `EXAM#<exam>` / `ATTEMPT#<started_at>#<attempt>`.
#[derive(Serialize, Deserialize)]
pub(super) struct SummaryItem {
    pk: String,
    sk: String,
    /// The summary.
    #[serde(flatten)]
    pub(super) summary: AttemptSummary,
}

impl SummaryItem {
    /// `attempt`'s entries in the student's and the exam's lists.
    pub(super) fn lists(attempt: &Attempt) -> [Self; 2] {
        let summary = attempt.summary();
        let sk = summary_sk(&summary);
        [
            Self {
                pk: user_pk(&attempt.user_id),
                sk: sk.clone(),
                summary: summary.clone(),
            },
            Self {
                pk: exam_pk(&attempt.exam_id),
                sk,
                summary,
            },
        ]
    }
}
