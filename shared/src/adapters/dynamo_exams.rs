//! Exams, questions and attempts in DynamoDB: the single `pk`/`sk` table of
//! [`crate::resources`], no secondary index. [`DynamoExams`] implements [`ExamStore`],
//! [`DynamoAttempts`] implements [`AttemptStore`].
//!
//! Items (timestamps in sort keys are 20 digits with the sign bit flipped, so text order is
//! number order for every `i64`):
//! - `EXAM#<exam>` / `EXAM`: the exam.
//! - `EXAM#<exam>` / `QUESTION#<question>`: a question (listed by `created_at`, then id, sorted
//!   here, since the key does not hold the order).
//! - `EXAMS#PUBLISHED` / `<published_at>#<exam>`: a copy of a published exam, its entry in the
//!   published list (an exam without `published_at` counts from `created_at`, as in
//!   [`ExamCursor::after`]). Queried newest first; the page after a cursor is the key condition
//!   `sk < <cursor>`, which holds even if the cursor's exam has since left the list.
//! - `ATTEMPT#<attempt>` / `ATTEMPT`: the attempt, with its paper and answers.
//! - `USER#<user>` / `ATTEMPT#<started_at>#<attempt>` and `EXAM#<exam>` /
//!   `ATTEMPT#<started_at>#<attempt>`: the attempt's summary in the student's and the exam's
//!   lists (these partitions also hold the account and the exam: every list query is
//!   `begins_with(sk, ...)`).
//!
//! Keeping copies in step: a write that changes an exam (save, add or delete a question, delete)
//! reads it, then writes the exam, its list entry and the question in one transaction
//! conditional on the version it read (create: on the exam being absent); a version that moved
//! meanwhile cancels the transaction and the write starts again from a fresh read (a few times,
//! then `Conflict("concurrent_update")`). Questions of a deleted exam are removed after it (Query
//! and BatchWriteItem); deleting an absent exam still sweeps any left behind, so retrying a
//! delete that failed halfway finishes it.
//!
//! An attempt and its two summaries are written in one transaction on create and on submit
//! (conditional on the attempt being absent, in progress). `save_answers` and the result-email
//! claim are single conditional updates that return the old item when refused, which tells
//! "absent" from "closed" or "held".

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, DeleteRequest, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update, WriteRequest,
};
use serde::{Deserialize, Serialize};

use crate::exam::{
    Answers, Attempt, AttemptId, AttemptResult, AttemptStatus, AttemptSummary, Exam, ExamCursor,
    ExamId, Question, QuestionId,
};
use crate::ports::{AttemptStore, ExamStore, StoreError};
use crate::user::UserId;

type Item = HashMap<String, AttributeValue>;

/// How many times a write that lost a race with another is started again.
const TRIES: usize = 5;
/// The partition of the published list.
const PUBLISHED: &str = "EXAMS#PUBLISHED";
/// Sort key prefix of a question in its exam's partition.
const QUESTION: &str = "QUESTION#";
/// Sort key prefix of an attempt summary in a student's or an exam's partition.
const ATTEMPT: &str = "ATTEMPT#";
/// BatchWriteItem takes at most this many requests.
const BATCH: usize = 25;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// A timestamp as fixed-width text that sorts like the number.
fn sortable(t: i64) -> String {
    format!("{:020}", t.cast_unsigned() ^ (1 << 63))
}

fn exam_pk(id: &ExamId) -> String {
    format!("EXAM#{id}")
}

fn exam_key(id: &ExamId) -> Item {
    key(exam_pk(id), "EXAM".into())
}

fn question_key(exam: &ExamId, id: &QuestionId) -> Item {
    key(exam_pk(exam), format!("{QUESTION}{id}"))
}

fn listing_sk(published_at: i64, exam: &ExamId) -> String {
    format!("{}#{exam}", sortable(published_at))
}

/// The sort key of `exam`'s entry in the published list, if it is listed.
fn listing_of(exam: &Exam) -> Option<String> {
    let cursor = ExamCursor::after(exam);
    exam.is_published()
        .then(|| listing_sk(cursor.published_at, &cursor.exam_id))
}

fn attempt_key(id: &AttemptId) -> Item {
    key(format!("ATTEMPT#{id}"), "ATTEMPT".into())
}

fn summary_sk(attempt: &AttemptSummary) -> String {
    format!(
        "{ATTEMPT}{}#{}",
        sortable(attempt.started_at),
        attempt.attempt_id
    )
}

#[derive(Serialize, Deserialize)]
struct ExamItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    exam: Exam,
}

#[derive(Serialize, Deserialize)]
struct QuestionItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    question: Question,
}

#[derive(Serialize, Deserialize)]
struct AttemptItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    attempt: Attempt,
}

#[derive(Serialize, Deserialize)]
struct SummaryItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    summary: AttemptSummary,
}

fn to_item<T: Serialize>(value: &T, context: &'static str) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::unavailable(context, e))
}

fn to_value<T: Serialize>(value: &T, context: &'static str) -> Result<AttributeValue, StoreError> {
    serde_dynamo::to_attribute_value(value).map_err(|e| StoreError::unavailable(context, e))
}

fn from_item<T: for<'de> Deserialize<'de>>(
    item: Item,
    context: &'static str,
) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::unavailable(context, e))
}

/// One item by key, read consistently, decoded as `T`.
async fn read_item<T: for<'de> Deserialize<'de>>(
    client: &Client,
    table: &str,
    key: Item,
    context: &'static str,
) -> Result<Option<T>, StoreError> {
    let out = client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| StoreError::unavailable(context, e))?;
    out.item.map(|item| from_item(item, context)).transpose()
}

/// A condition expression and the values it names.
type Condition<'a> = Option<(&'a str, Item)>;

fn put(table: &str, item: Item, condition: Condition<'_>) -> Result<TransactWriteItem, StoreError> {
    let (expression, values) = condition.unzip();
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(expression.map(str::to_owned))
        .set_expression_attribute_values(values.filter(|v| !v.is_empty()))
        .build()
        .map_err(|e| StoreError::unavailable("building a put", e))?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn delete(
    table: &str,
    key: Item,
    condition: Condition<'_>,
) -> Result<TransactWriteItem, StoreError> {
    let (expression, values) = condition.unzip();
    let delete = Delete::builder()
        .table_name(table)
        .set_key(Some(key))
        .set_condition_expression(expression.map(str::to_owned))
        .set_expression_attribute_values(values.filter(|v| !v.is_empty()))
        .build()
        .map_err(|e| StoreError::unavailable("building a delete", e))?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

/// A condition without values.
fn only(expression: &str) -> Condition<'_> {
    Some((expression, Item::new()))
}

/// The transaction's condition failed (or it met another transaction): read and try again.
struct Cancelled;

/// Runs a transaction; a cancellation is `Ok(Err(Cancelled))`.
async fn transact(
    client: &Client,
    items: Vec<TransactWriteItem>,
    context: &'static str,
) -> Result<Result<(), Cancelled>, StoreError> {
    match client
        .transact_write_items()
        .set_transact_items(Some(items))
        .send()
        .await
    {
        Ok(_) => Ok(Ok(())),
        Err(SdkError::ServiceError(e))
            if matches!(
                e.err(),
                TransactWriteItemsError::TransactionCanceledException(_)
            ) =>
        {
            Ok(Err(Cancelled))
        }
        Err(e) => Err(StoreError::unavailable(context, e)),
    }
}

/// Every item of partition `pk` whose sort key starts with `prefix`, in key order (reversed if
/// `newest_first`), strongly consistent.
async fn query_prefix(
    client: &Client,
    table: &str,
    pk: String,
    prefix: &str,
    newest_first: bool,
    context: &'static str,
) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        let out = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk.as_str()))
            .expression_attribute_values(":prefix", s(prefix))
            .scan_index_forward(!newest_first)
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| StoreError::unavailable(context, e))?;
        items.extend(out.items.unwrap_or_default());
        match out.last_evaluated_key {
            Some(last) if !last.is_empty() => start = Some(last),
            _ => return Ok(items),
        }
    }
}

/// Exams and questions in DynamoDB.
#[derive(Clone)]
pub struct DynamoExams {
    client: Client,
    table: String,
}

impl DynamoExams {
    /// Exams in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The writes that replace `old` (`None`: there is none) by `new`, conditional on `old`'s
    /// version, and keep `new`'s entry in the published list in step. The exam's write is first.
    fn exam_writes(
        &self,
        old: Option<&Exam>,
        new: &Exam,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let item = to_item(
            &ExamItem {
                pk: exam_pk(&new.id),
                sk: "EXAM".into(),
                exam: new.clone(),
            },
            "encoding an exam",
        )?;
        let condition = match old {
            None => ("attribute_not_exists(pk)", Item::new()),
            Some(old) => (
                "version = :expected",
                HashMap::from([(":expected".to_owned(), n(old.version))]),
            ),
        };
        let mut items = vec![put(&self.table, item, Some(condition))?];
        let old_listing = old.and_then(listing_of);
        let new_listing = listing_of(new);
        if let Some(old_sk) = old_listing
            && new_listing.as_ref() != Some(&old_sk)
        {
            items.push(delete(&self.table, key(PUBLISHED.into(), old_sk), None)?);
        }
        if let Some(sk) = new_listing {
            let listing = to_item(
                &ExamItem {
                    pk: PUBLISHED.into(),
                    sk,
                    exam: new.clone(),
                },
                "encoding a list entry",
            )?;
            items.push(put(&self.table, listing, None)?);
        }
        Ok(items)
    }

    fn question_put(
        &self,
        question: &Question,
        condition: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let item = to_item(
            &QuestionItem {
                pk: exam_pk(&question.exam_id),
                sk: format!("{QUESTION}{}", question.id),
                question: question.clone(),
            },
            "encoding a question",
        )?;
        put(&self.table, item, only(condition))
    }

    /// Deletes every question item of `exam`, 25 at a time.
    async fn sweep_questions(&self, exam: &ExamId) -> Result<(), StoreError> {
        let items = query_prefix(
            &self.client,
            &self.table,
            exam_pk(exam),
            QUESTION,
            false,
            "listing the questions to delete",
        )
        .await?;
        let mut requests = Vec::with_capacity(items.len());
        for item in items {
            let key = item
                .into_iter()
                .filter(|(name, _)| name == "pk" || name == "sk")
                .collect();
            let request = DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map_err(|e| StoreError::unavailable("building a delete request", e))?;
            requests.push(WriteRequest::builder().delete_request(request).build());
        }
        for chunk in requests.chunks(BATCH) {
            self.batch_write(chunk.to_vec()).await?;
        }
        Ok(())
    }

    /// One BatchWriteItem, sending unprocessed requests again with a growing pause.
    async fn batch_write(&self, mut requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        let mut pause = Duration::from_millis(50);
        for _ in 0..8 {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(|e| StoreError::unavailable("deleting questions", e))?;
            requests = out
                .unprocessed_items
                .and_then(|mut left| left.remove(&self.table))
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
        Err(StoreError::unavailable(
            "deleting questions",
            "requests still unprocessed after 8 tries",
        ))
    }
}

#[async_trait]
impl ExamStore for DynamoExams {
    #[tracing::instrument(skip_all, fields(exam_id = %exam.id))]
    async fn create_exam(&self, exam: &Exam) -> Result<(), StoreError> {
        for _ in 0..TRIES {
            let items = self.exam_writes(None, exam)?;
            if transact(&self.client, items, "creating an exam")
                .await?
                .is_ok()
            {
                return Ok(());
            }
            if self.get_exam(&exam.id).await?.is_some() {
                return Err(StoreError::Conflict("exam_exists"));
            }
        }
        Err(StoreError::Conflict("concurrent_update"))
    }

    #[tracing::instrument(skip_all, fields(exam_id = %id))]
    async fn get_exam(&self, id: &ExamId) -> Result<Option<Exam>, StoreError> {
        let item: Option<ExamItem> =
            read_item(&self.client, &self.table, exam_key(id), "reading an exam").await?;
        Ok(item.map(|i| i.exam))
    }

    #[tracing::instrument(skip_all, fields(exam_id = %exam.id, expected_version))]
    async fn save_exam(&self, exam: &Exam, expected_version: u64) -> Result<(), StoreError> {
        for _ in 0..TRIES {
            let stored = self.get_exam(&exam.id).await?.ok_or(StoreError::NotFound)?;
            if stored.version != expected_version {
                return Err(StoreError::Conflict("version"));
            }
            // The question count is the store's, not the caller's.
            let new = Exam {
                question_count: stored.question_count,
                ..exam.clone()
            };
            let items = self.exam_writes(Some(&stored), &new)?;
            if transact(&self.client, items, "saving an exam")
                .await?
                .is_ok()
            {
                return Ok(());
            }
        }
        Err(StoreError::Conflict("concurrent_update"))
    }

    #[tracing::instrument(skip_all, fields(exam_id = %id))]
    async fn delete_exam(&self, id: &ExamId) -> Result<(), StoreError> {
        for _ in 0..TRIES {
            let Some(stored) = self.get_exam(id).await? else {
                // Questions left by a delete that failed halfway go now.
                self.sweep_questions(id).await?;
                return Err(StoreError::NotFound);
            };
            let version = HashMap::from([(":v".to_owned(), n(stored.version))]);
            let mut items = vec![delete(
                &self.table,
                exam_key(id),
                Some(("version = :v", version)),
            )?];
            if let Some(sk) = listing_of(&stored) {
                items.push(delete(&self.table, key(PUBLISHED.into(), sk), None)?);
            }
            if transact(&self.client, items, "deleting an exam")
                .await?
                .is_ok()
            {
                return self.sweep_questions(id).await;
            }
        }
        Err(StoreError::Conflict("concurrent_update"))
    }

    #[tracing::instrument(skip_all, fields(limit))]
    async fn list_published(
        &self,
        limit: usize,
        after: Option<&ExamCursor>,
    ) -> Result<Vec<Exam>, StoreError> {
        let mut exams = Vec::new();
        let mut start = None;
        while exams.len() < limit {
            let remaining = i32::try_from(limit - exams.len()).unwrap_or(i32::MAX);
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(PUBLISHED))
                .scan_index_forward(false)
                .limit(remaining)
                .consistent_read(true)
                .set_exclusive_start_key(start);
            query = match after {
                Some(cursor) => query
                    .key_condition_expression("pk = :pk AND sk < :after")
                    .expression_attribute_values(
                        ":after",
                        s(listing_sk(cursor.published_at, &cursor.exam_id)),
                    ),
                None => query.key_condition_expression("pk = :pk"),
            };
            let out = query
                .send()
                .await
                .map_err(|e| StoreError::unavailable("listing published exams", e))?;
            for item in out.items.unwrap_or_default() {
                exams.push(from_item::<ExamItem>(item, "decoding a list entry")?.exam);
            }
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => break,
            }
        }
        exams.truncate(limit);
        Ok(exams)
    }

    #[tracing::instrument(skip_all, fields(exam_id = %question.exam_id, question_id = %question.id))]
    async fn add_question(
        &self,
        question: &Question,
        max_questions: u32,
    ) -> Result<(), StoreError> {
        for _ in 0..TRIES {
            let stored = self
                .get_exam(&question.exam_id)
                .await?
                .ok_or(StoreError::NotFound)?;
            if stored.question_count >= max_questions {
                return Err(StoreError::Conflict("too_many_questions"));
            }
            if self
                .get_question(&question.exam_id, &question.id)
                .await?
                .is_some()
            {
                return Err(StoreError::Conflict("question_exists"));
            }
            let new = Exam {
                question_count: stored.question_count + 1,
                version: stored.version + 1,
                ..stored.clone()
            };
            let mut items = self.exam_writes(Some(&stored), &new)?;
            items.push(self.question_put(question, "attribute_not_exists(pk)")?);
            if transact(&self.client, items, "adding a question")
                .await?
                .is_ok()
            {
                return Ok(());
            }
        }
        Err(StoreError::Conflict("concurrent_update"))
    }

    #[tracing::instrument(skip_all, fields(exam_id = %exam, question_id = %id))]
    async fn get_question(
        &self,
        exam: &ExamId,
        id: &QuestionId,
    ) -> Result<Option<Question>, StoreError> {
        let item: Option<QuestionItem> = read_item(
            &self.client,
            &self.table,
            question_key(exam, id),
            "reading a question",
        )
        .await?;
        Ok(item.map(|i| i.question))
    }

    #[tracing::instrument(skip_all, fields(exam_id = %question.exam_id, question_id = %question.id))]
    async fn save_question(&self, question: &Question) -> Result<(), StoreError> {
        // Its place in the exam (`created_at`) stays.
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(question_key(&question.exam_id, &question.id)))
            .update_expression(
                "SET #text = :text, #options = :options, correct_option = :correct, points = :points",
            )
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_names("#text", "text")
            .expression_attribute_names("#options", "options")
            .expression_attribute_values(":text", s(question.text.as_str()))
            .expression_attribute_values(
                ":options",
                to_value(&question.options, "encoding options")?,
            )
            .expression_attribute_values(":correct", n(question.correct_option))
            .expression_attribute_values(":points", n(question.points))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e))
                if matches!(e.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                Err(StoreError::NotFound)
            }
            Err(e) => Err(StoreError::unavailable("saving a question", e)),
        }
    }

    #[tracing::instrument(skip_all, fields(exam_id = %exam, question_id = %id, keep_at_least))]
    async fn delete_question(
        &self,
        exam: &ExamId,
        id: &QuestionId,
        keep_at_least: u32,
    ) -> Result<(), StoreError> {
        for _ in 0..TRIES {
            let stored = self.get_exam(exam).await?.ok_or(StoreError::NotFound)?;
            if self.get_question(exam, id).await?.is_none() {
                return Err(StoreError::NotFound);
            }
            if stored.question_count <= keep_at_least {
                return Err(StoreError::Conflict("last_question"));
            }
            let new = Exam {
                question_count: stored.question_count.saturating_sub(1),
                version: stored.version + 1,
                ..stored.clone()
            };
            let mut items = self.exam_writes(Some(&stored), &new)?;
            items.push(delete(
                &self.table,
                question_key(exam, id),
                only("attribute_exists(pk)"),
            )?);
            if transact(&self.client, items, "deleting a question")
                .await?
                .is_ok()
            {
                return Ok(());
            }
        }
        Err(StoreError::Conflict("concurrent_update"))
    }

    #[tracing::instrument(skip_all, fields(exam_id = %exam))]
    async fn list_questions(&self, exam: &ExamId) -> Result<Vec<Question>, StoreError> {
        let items = query_prefix(
            &self.client,
            &self.table,
            exam_pk(exam),
            QUESTION,
            false,
            "listing questions",
        )
        .await?;
        let mut questions = items
            .into_iter()
            .map(|item| from_item::<QuestionItem>(item, "decoding a question").map(|i| i.question))
            .collect::<Result<Vec<_>, _>>()?;
        questions.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(questions)
    }
}

/// Attempts and their lists in DynamoDB.
#[derive(Clone)]
pub struct DynamoAttempts {
    client: Client,
    table: String,
}

impl DynamoAttempts {
    /// Attempts in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Puts for the attempt's entries in the student's and the exam's lists.
    fn summary_puts(&self, attempt: &Attempt) -> Result<[TransactWriteItem; 2], StoreError> {
        let summary = attempt.summary();
        let entry = |pk: String| {
            let item = to_item(
                &SummaryItem {
                    pk,
                    sk: summary_sk(&summary),
                    summary: summary.clone(),
                },
                "encoding an attempt summary",
            )?;
            put(&self.table, item, None)
        };
        Ok([
            entry(format!("USER#{}", attempt.user_id))?,
            entry(exam_pk(&attempt.exam_id))?,
        ])
    }

    async fn summaries(
        &self,
        pk: String,
        context: &'static str,
    ) -> Result<Vec<AttemptSummary>, StoreError> {
        query_prefix(&self.client, &self.table, pk, ATTEMPT, true, context)
            .await?
            .into_iter()
            .map(|item| {
                from_item::<SummaryItem>(item, "decoding an attempt summary").map(|i| i.summary)
            })
            .collect()
    }

    /// A conditional update of the attempt.
    async fn update_attempt(
        &self,
        id: &AttemptId,
        expression: &str,
        condition: &str,
        names: &[(&str, &str)],
        values: Item,
        context: &'static str,
    ) -> Result<Updated, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(attempt_key(id)))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(
                names
                    .iter()
                    .map(|(placeholder, name)| ((*placeholder).to_owned(), (*name).to_owned()))
                    .collect(),
            ))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match out {
            Ok(_) => Ok(Updated::Done),
            Err(SdkError::ServiceError(e)) => match e.into_err() {
                UpdateItemError::ConditionalCheckFailedException(failed) => match failed.item {
                    None => Ok(Updated::Absent),
                    Some(item) => from_item::<AttemptItem>(item, "decoding an attempt")
                        .map(|i| Updated::Refused(i.attempt.status)),
                },
                other => Err(StoreError::unavailable(context, other)),
            },
            Err(e) => Err(StoreError::unavailable(context, e)),
        }
    }
}

/// What a conditional update of an attempt did.
enum Updated {
    /// It went through.
    Done,
    /// There is no such attempt.
    Absent,
    /// The condition failed; the attempt's status as it is.
    Refused(AttemptStatus),
}

/// Placeholders for attribute names that are reserved words or long.
const STATUS: (&str, &str) = ("#status", "status");
const JOB: (&str, &str) = ("#job", "result_email_job");

fn status(value: AttemptStatus) -> Result<AttributeValue, StoreError> {
    to_value(&value, "encoding an attempt status")
}

#[async_trait]
impl AttemptStore for DynamoAttempts {
    #[tracing::instrument(skip_all, fields(attempt_id = %attempt.id, exam_id = %attempt.exam_id))]
    async fn create_attempt(&self, attempt: &Attempt) -> Result<(), StoreError> {
        for _ in 0..TRIES {
            let item = to_item(
                &AttemptItem {
                    pk: format!("ATTEMPT#{}", attempt.id),
                    sk: "ATTEMPT".into(),
                    attempt: attempt.clone(),
                },
                "encoding an attempt",
            )?;
            let mut items = vec![put(&self.table, item, only("attribute_not_exists(pk)"))?];
            items.extend(self.summary_puts(attempt)?);
            if transact(&self.client, items, "creating an attempt")
                .await?
                .is_ok()
            {
                return Ok(());
            }
            if self.get_attempt(&attempt.id).await?.is_some() {
                return Err(StoreError::Conflict("attempt_exists"));
            }
        }
        Err(StoreError::Conflict("concurrent_update"))
    }

    #[tracing::instrument(skip_all, fields(attempt_id = %id))]
    async fn get_attempt(&self, id: &AttemptId) -> Result<Option<Attempt>, StoreError> {
        let item: Option<AttemptItem> = read_item(
            &self.client,
            &self.table,
            attempt_key(id),
            "reading an attempt",
        )
        .await?;
        Ok(item.map(|i| i.attempt))
    }

    #[tracing::instrument(skip_all, fields(attempt_id = %id))]
    async fn save_answers(
        &self,
        id: &AttemptId,
        answers: &Answers,
        now: i64,
    ) -> Result<(), StoreError> {
        let values = HashMap::from([
            (
                ":answers".to_owned(),
                to_value(answers, "encoding answers")?,
            ),
            (":open".to_owned(), status(AttemptStatus::InProgress)?),
            (":now".to_owned(), n(now)),
        ]);
        match self
            .update_attempt(
                id,
                "SET answers = :answers",
                "#status = :open AND deadline > :now",
                &[STATUS],
                values,
                "saving answers",
            )
            .await?
        {
            Updated::Done => Ok(()),
            Updated::Refused(_) => Err(StoreError::Conflict("attempt_closed")),
            Updated::Absent => Err(StoreError::NotFound),
        }
    }

    #[tracing::instrument(skip_all, fields(attempt_id = %id))]
    async fn submit(
        &self,
        id: &AttemptId,
        result: &AttemptResult,
        email_job_id: &str,
    ) -> Result<(), StoreError> {
        for _ in 0..TRIES {
            let mut attempt = self.get_attempt(id).await?.ok_or(StoreError::NotFound)?;
            if attempt.status != AttemptStatus::InProgress {
                return Err(StoreError::Conflict("already_submitted"));
            }
            attempt.status = AttemptStatus::Submitted;
            attempt.result = Some(result.clone());
            attempt.result_email_job = Some(email_job_id.to_owned());
            // An update, not a put: answers saved meanwhile are not overwritten.
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(attempt_key(id)))
                .update_expression("SET #status = :submitted, #result = :result, #job = :job")
                .condition_expression("#status = :open")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#result", "result")
                .expression_attribute_names("#job", "result_email_job")
                .expression_attribute_values(":submitted", status(AttemptStatus::Submitted)?)
                .expression_attribute_values(":open", status(AttemptStatus::InProgress)?)
                .expression_attribute_values(":result", to_value(result, "encoding a result")?)
                .expression_attribute_values(":job", s(email_job_id))
                .build()
                .map_err(|e| StoreError::unavailable("building an update", e))?;
            let mut items = vec![TransactWriteItem::builder().update(update).build()];
            items.extend(self.summary_puts(&attempt)?);
            if transact(&self.client, items, "submitting an attempt")
                .await?
                .is_ok()
            {
                return Ok(());
            }
        }
        Err(StoreError::Conflict("concurrent_update"))
    }

    #[tracing::instrument(skip_all, fields(attempt_id = %id, job_id))]
    async fn claim_result_email(&self, id: &AttemptId, job_id: &str) -> Result<bool, StoreError> {
        let values = HashMap::from([
            (":job".to_owned(), s(job_id)),
            (":submitted".to_owned(), status(AttemptStatus::Submitted)?),
        ]);
        match self
            .update_attempt(
                id,
                "SET #job = :job",
                "attribute_not_exists(#job) AND #status = :submitted",
                &[STATUS, JOB],
                values,
                "claiming a result email",
            )
            .await?
        {
            Updated::Done => Ok(true),
            Updated::Absent => Err(StoreError::NotFound),
            Updated::Refused(status) if status != AttemptStatus::Submitted => {
                Err(StoreError::Conflict("not_submitted"))
            }
            Updated::Refused(_) => Ok(false),
        }
    }

    #[tracing::instrument(skip_all, fields(attempt_id = %id, job_id))]
    async fn release_result_email(&self, id: &AttemptId, job_id: &str) -> Result<(), StoreError> {
        let values = HashMap::from([(":job".to_owned(), s(job_id))]);
        match self
            .update_attempt(
                id,
                "REMOVE #job",
                "#job = :job",
                &[JOB],
                values,
                "releasing a result email",
            )
            .await?
        {
            // Refused: another job holds the claim, or none does.
            Updated::Done | Updated::Refused(_) => Ok(()),
            Updated::Absent => Err(StoreError::NotFound),
        }
    }

    #[tracing::instrument(skip_all, fields(user_id = %user))]
    async fn attempts_of_user(&self, user: &UserId) -> Result<Vec<AttemptSummary>, StoreError> {
        self.summaries(format!("USER#{user}"), "listing a student's attempts")
            .await
    }

    #[tracing::instrument(skip_all, fields(exam_id = %exam))]
    async fn attempts_of_exam(&self, exam: &ExamId) -> Result<Vec<AttemptSummary>, StoreError> {
        self.summaries(exam_pk(exam), "listing an exam's attempts")
            .await
    }
}
