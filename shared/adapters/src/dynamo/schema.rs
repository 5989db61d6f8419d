//! The single-table key schema: every item the stores keep in the one `pk`/`sk` table of
//! [`crate::resources`] (string keys, TTL attribute `expires_at`, one sparse global secondary
//! index `gsi1`), with its keys and, for the items written whole, its struct.
//!
//! Items (timestamps in sort keys are 20 digits with the sign bit flipped, so text order is
//! number order for every `i64`):
//! - `USER#<id>` / `USER`: the account; while unverified, expired by the table's TTL
//!   ([`User::expires_at`]).
//! - `EMAIL#<address>` / `EMAIL`: claims an address for one account (uniqueness), written in the
//!   same transaction as the account, with the same TTL while the account has one.
//! - `TOKEN#<sha256>` / `TOKEN`: a one-time token. Taken by a conditional update that sets
//!   `taken_by` (the take's own token: a take sent again finds its mark), then deleted.
//! - `USER#<id>` / `TOKEN#<purpose>`: the hash of the account's one valid token of that purpose
//!   (password resets), swapped with the token in one transaction; expired with the token.
//! - `JOB#<id>` / `JOB`: an email job record, expired by the table's TTL after the configured
//!   retention. Its history (`history`, a list of events) is appended by the write that changes
//!   the status, and cut back to its last `HISTORY_LIMIT` events by a conditional second write
//!   when it grows past them. Every write that sets its status also sets its place in the index
//!   `gsi1`: `gsi1pk` = `JOBS#<status>`, `gsi1sk` = `<updated_at>#<id>` (the record moves from
//!   one status partition of the index to the next). The index projects the record without its
//!   history; operators list a status newest first (`gsi1sk < <cursor>`, filtered by kind or an
//!   expired lease) and count it (`Select=COUNT`, up to a budget). Only job records carry
//!   `gsi1pk`, so the index holds nothing else. `write_token` is the last write's own token: a
//!   write sent again after its answer was lost finds it and is not made twice.
//! - `EXAM#<exam>` / `EXAM`: the exam.
//! - `EXAM#<exam>` / `GUARD#<k>`: [`EXAM_GUARDS`] small copies of a published exam's `version`
//!   and `published_at`, written in every transaction that writes the published exam (and
//!   deleted with it or when it stops being published). A start checks the copy its student's
//!   id picks ([`guard_key`]), not the exam: DynamoDB cancels a transaction that touches an item
//!   another transaction in progress holds (`TransactionConflict`, a condition check included),
//!   so a check of the one exam item made a class's starts go one at a time.
//! - `EXAM#<exam>` / `QUESTION#<question>`: a question (listed by `created_at`, then id, sorted
//!   by the store, since the key does not hold the order).
//! - `EXAMS#PUBLISHED` / `<published_at>#<exam>`: a copy of a published exam, its entry in the
//!   published list (an exam without `published_at` counts from `created_at`, as in
//!   [`ExamCursor::after`]). Queried newest first; the page after a cursor is the key condition
//!   `sk < <cursor>`, which holds even if the cursor's exam has since left the list.
//! - `ATTEMPT#<attempt>` / `ATTEMPT`: the attempt, with its paper and answers.
//! - `EXAM#<exam>` / `STUDENT#<user>`: the student's record at the exam — how many attempts they
//!   started, and their open attempt (its id and deadline) if any —, updated in the attempt's
//!   create transaction on condition that fewer than the exam's `max_attempts` were started and
//!   no attempt is open or the open one is past its deadline; the transaction that submits the
//!   attempt removes it as the open one. One open attempt per student and exam, and no more
//!   than the allowed attempts, however many starts race. No TTL: it keeps the count.
//! - `USER#<user>` / `ATTEMPT#<started_at>#<attempt>` and `EXAM#<exam>` /
//!   `ATTEMPT#<started_at>#<attempt>`: the attempt's summary in the student's and the exam's
//!   lists (these partitions also hold the account and the exam: every list query is
//!   `begins_with(sk, ...)`). Queried newest first, a page at a time (`Limit`); the page after a
//!   cursor starts after its summary's key (`ExclusiveStartKey`).
//! - `DUE#<shard>` / `<due_at>#<attempt>`: the attempt among the due attempts the sweep reads
//!   (its id and when it is due), put in the attempt's create transaction due at its deadline,
//!   moved by its submit's transaction to its result email's check (deleted and put again), and
//!   deleted by the sweep once the attempt is closed and its result email on its way. Items
//!   written before the move existed name the time `deadline`, and read the same. The index is
//!   spread over [`DUE_SHARDS`] partitions (`<shard>` is 0–7, from the last hex digit of the
//!   attempt id), so no one partition takes every start; the sweep queries each with
//!   `sk < <now + 1>`, the earliest first.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use oes_domain::exam::{
    Attempt, AttemptCursor, AttemptId, AttemptSummary, Exam, ExamCursor, ExamId, Question,
    QuestionId,
};
use oes_domain::ports::{DueAttempt, JobPosition, JobRecord, JobStatus, StoredToken, TokenPurpose};
use oes_domain::security::TokenHash;
use oes_domain::user::{Email, User, UserId};

use super::{Item, s};
use crate::resources;

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
/// Sort key prefix of a student's record in an exam's partition.
const STUDENT_PREFIX: &str = "STUDENT#";
/// The job records' index by status (see the module doc).
pub(super) const JOB_INDEX: &str = resources::JOB_INDEX.name;
/// Partition key of [`JOB_INDEX`] (also spelled out in the update expressions of `jobs`).
pub(super) const JOB_INDEX_PK: &str = resources::JOB_INDEX.hash_key;
/// Sort key of [`JOB_INDEX`] (also spelled out in the update expressions of `jobs`).
pub(super) const JOB_INDEX_SK: &str = resources::JOB_INDEX.range_key;
/// Partitions of the due attempts. Never lower it: the sweep would stop reading the entries in
/// the partitions above.
pub(super) const DUE_SHARDS: u32 = 8;
/// A published exam's guard copies (see the module doc): starts at one exam meet one another
/// only when their students pick the same copy, one start in this many.
pub(super) const EXAM_GUARDS: u32 = 16;
/// Sort key prefix of an exam's guard copy.
pub(super) const GUARD_PREFIX: &str = "GUARD#";

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

/// The sort key of an account's one valid token of `purpose`.
fn latest_token_sk(purpose: TokenPurpose) -> String {
    let name = match purpose {
        TokenPurpose::VerifyEmail => "verify_email",
        TokenPurpose::PasswordReset => "password_reset",
        TokenPurpose::ChangeEmail => "change_email",
    };
    format!("{TOKEN}#{name}")
}

/// The key of `user`'s one valid token of `purpose`.
pub(super) fn latest_token_key(user: &UserId, purpose: TokenPurpose) -> Item {
    key(user_pk(user), latest_token_sk(purpose))
}

/// The key of an email job record.
pub(super) fn job_key(job_id: &str) -> Item {
    key(format!("JOB#{job_id}"), JOB)
}

/// The partition of `status` in [`JOB_INDEX`].
pub(super) fn jobs_pk(status: JobStatus) -> String {
    format!("JOBS#{}", status.as_str())
}

/// The sort key in [`JOB_INDEX`] of the job at `position`.
pub(super) fn jobs_sk(position: &JobPosition) -> String {
    format!("{}#{}", sortable(position.updated_at), position.job_id)
}

/// The position a [`JOB_INDEX`] sort key stands for (`None` if it is not one).
pub(super) fn jobs_position(sk: &str) -> Option<JobPosition> {
    let (time, job_id) = sk.split_once('#')?;
    let time: u64 = time.parse().ok()?;
    Some(JobPosition {
        updated_at: (time ^ (1 << 63)).cast_signed(),
        job_id: job_id.to_owned(),
    })
}

/// The partition of an exam, which also holds its questions and its attempt list.
pub(super) fn exam_pk(id: &ExamId) -> String {
    format!("EXAM#{id}")
}

/// The key of an exam.
pub(super) fn exam_key(id: &ExamId) -> Item {
    key(exam_pk(id), EXAM)
}

/// The key of `exam`'s guard copy `shard`.
pub(super) fn guard_key(exam: &ExamId, shard: u32) -> Item {
    key(exam_pk(exam), format!("{GUARD_PREFIX}{shard:02}"))
}

/// The guard copy a start by `user` checks: from the last hex digit of the id (random in the
/// UUIDs ids are).
pub(super) fn guard_of(user: &UserId) -> u32 {
    let digit = user
        .as_str()
        .chars()
        .last()
        .and_then(|c| c.to_digit(16))
        .unwrap_or(0);
    digit % EXAM_GUARDS
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

/// The key of `user`'s record at `exam`.
pub(super) fn student_record_key(exam: &ExamId, user: &UserId) -> Item {
    key(exam_pk(exam), format!("{STUDENT_PREFIX}{user}"))
}

/// The sort key of an attempt's summary in its lists (the attempt `cursor` points at).
fn summary_sk(cursor: &AttemptCursor) -> String {
    format!(
        "{SUMMARY_PREFIX}{}#{}",
        sortable(cursor.started_at),
        cursor.attempt_id
    )
}

/// The key, in the list partition `pk`, of the summary `cursor` points after: where the next
/// page starts (`ExclusiveStartKey`).
pub(super) fn summary_key(pk: String, cursor: &AttemptCursor) -> Item {
    key(pk, summary_sk(cursor))
}

/// Partition `shard` of the due attempts.
pub(super) fn due_pk(shard: u32) -> String {
    format!("DUE#{shard}")
}

/// The sort keys of the entries due at `now` (`due_at` ≤ `now`) are below this one.
pub(super) fn due_before(now: i64) -> String {
    sortable(now.saturating_add(1))
}

/// The partition and sort key of a due entry: the partition from the last hex digit of the
/// attempt id (random in the UUIDs ids are).
fn due_place(due: &DueAttempt) -> (String, String) {
    let digit = due
        .attempt_id
        .as_str()
        .chars()
        .last()
        .and_then(|c| c.to_digit(16))
        .unwrap_or(0);
    (
        due_pk(digit % DUE_SHARDS),
        format!("{}#{}", sortable(due.due_at), due.attempt_id),
    )
}

/// The key of a due entry.
pub(super) fn due_key(due: &DueAttempt) -> Item {
    let (pk, sk) = due_place(due);
    key(pk, sk)
}

/// `USER#<id>` / `USER`.
#[derive(Serialize, Deserialize)]
pub(super) struct UserItem {
    pk: String,
    sk: String,
    /// The account.
    #[serde(flatten)]
    pub(super) user: User,
    /// The table's TTL, while the account is unverified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) expires_at: Option<i64>,
}

impl UserItem {
    /// The item of `user`.
    pub(super) fn new(user: User) -> Self {
        Self {
            pk: user_pk(&user.id),
            sk: USER.into(),
            expires_at: user.expires_at(),
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
    /// The table's TTL: the account's, while it is unverified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) expires_at: Option<i64>,
}

impl EmailItem {
    /// The claim of `email` for `user_id`, expiring at `expires_at` if given.
    pub(super) fn new(email: &Email, user_id: UserId, expires_at: Option<i64>) -> Self {
        Self {
            pk: email_pk(email),
            sk: EMAIL.into(),
            user_id,
            expires_at,
        }
    }

    /// The claim of `user`'s address, expiring with it.
    pub(super) fn of(user: &User) -> Self {
        Self::new(&user.email, user.id.clone(), user.expires_at())
    }
}

/// `USER#<id>` / `TOKEN#<purpose>`.
#[derive(Serialize, Deserialize)]
pub(super) struct LatestTokenItem {
    pk: String,
    sk: String,
    /// The hash of the token (the key of its item); not `hash`, a reserved word.
    pub(super) token_hash: String,
    /// The table's TTL: the token's.
    expires_at: i64,
}

impl LatestTokenItem {
    /// The item naming `token` its user's one valid token of its purpose.
    pub(super) fn new(token: &StoredToken) -> Self {
        Self {
            pk: user_pk(&token.user_id),
            sk: latest_token_sk(token.purpose),
            token_hash: token.hash.as_str().to_owned(),
            expires_at: token.expires_at,
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
    /// Absent (0) from tokens stored before it was recorded.
    #[serde(default)]
    email_version: u64,
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
            email_version: token.email_version,
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
            email_version: self.email_version,
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

/// `EXAM#<exam>` / `GUARD#<k>`: what a start checks of a published exam.
#[derive(Serialize, Deserialize)]
pub(super) struct GuardItem {
    pk: String,
    sk: String,
    /// The exam's version.
    pub(super) version: u64,
    /// When it was published (a guard exists only for a published exam; the start's condition
    /// names it all the same).
    published_at: Option<i64>,
}

impl GuardItem {
    /// `exam`'s guard copy `shard`.
    pub(super) fn new(exam: &Exam, shard: u32) -> Self {
        Self {
            pk: exam_pk(&exam.id),
            sk: format!("{GUARD_PREFIX}{shard:02}"),
            version: exam.version,
            published_at: exam.published_at,
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

/// `EXAM#<exam>` / `STUDENT#<user>`, as read back: it is written attribute by attribute by
/// update expressions.
#[derive(Serialize, Deserialize)]
pub(super) struct StudentRecordItem {
    /// Attempts the student started at the exam.
    #[serde(default)]
    pub(super) started: u32,
    /// Their open attempt, until it is submitted.
    #[serde(default)]
    pub(super) attempt_id: Option<AttemptId>,
    /// Its deadline: after it, the record holds no open attempt.
    #[serde(default)]
    pub(super) deadline: Option<i64>,
}

impl StudentRecordItem {
    /// Whether an attempt is open at `now` (in progress, before its deadline).
    pub(super) fn is_open(&self, now: i64) -> bool {
        self.attempt_id.is_some() && self.deadline.is_some_and(|deadline| deadline > now)
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
        let sk = summary_sk(&AttemptCursor::after(&summary));
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

/// `DUE#<shard>` / `<due_at>#<attempt>`.
#[derive(Serialize, Deserialize)]
pub(super) struct DueItem {
    pk: String,
    sk: String,
    /// The attempt.
    attempt_id: AttemptId,
    /// When the sweep is to look at it.
    #[serde(alias = "deadline")]
    due_at: i64,
}

impl DueItem {
    /// The item of `due`.
    pub(super) fn new(due: &DueAttempt) -> Self {
        let (pk, sk) = due_place(due);
        Self {
            pk,
            sk,
            attempt_id: due.attempt_id.clone(),
            due_at: due.due_at,
        }
    }

    /// The entry this item holds.
    pub(super) fn due(self) -> DueAttempt {
        DueAttempt {
            due_at: self.due_at,
            attempt_id: self.attempt_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dynamo::{from_item, n, s, to_item};

    #[test]
    fn a_due_item_reads_its_time_as_written_now_and_before_it_was_due_at() {
        let due = DueAttempt {
            due_at: 3_800,
            attempt_id: AttemptId::generate(),
        };
        let item = to_item(&DueItem::new(&due), "writing").expect("written");
        assert_eq!(item.get("due_at"), Some(&n(3_800)));
        let read = from_item::<DueItem>(item, "reading").expect("read");
        assert_eq!(read.due(), due);

        // As an item written before submits moved the entry: the time named `deadline`.
        let (pk, sk) = due_place(&due);
        let old = Item::from([
            ("pk".to_owned(), s(pk)),
            ("sk".to_owned(), s(sk)),
            ("attempt_id".to_owned(), s(due.attempt_id.as_str())),
            ("deadline".to_owned(), n(3_800)),
        ]);
        let read = from_item::<DueItem>(old, "reading").expect("read");
        assert_eq!(read.due(), due);
    }
}
