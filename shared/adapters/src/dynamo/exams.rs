//! [`DynamoExams`]: exams, their questions and the published list (items in `schema`).
//!
//! Keeping copies in step: a write that changes an exam (save, add or delete a question, delete)
//! reads it, then writes the exam, its list entry and the question in one transaction
//! conditional on the version it read (create: on the exam being absent); a version that moved
//! meanwhile cancels the transaction and the write starts again from a fresh read (a few times,
//! then `Conflict(ConcurrentUpdate)`). Questions of a deleted exam are removed after it (Query
//! and BatchWriteItem); deleting an absent exam still sweeps any left behind, so retrying a
//! delete that failed halfway finishes it. An edit of a question is written first, on its
//! fields being as its caller read them (one that changes what attempts are graded on also on
//! the exam's version, so it lands only on the draft it read), and read back only if refused.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};

use oes_domain::exam::{Exam, ExamCursor, ExamId, Question, QuestionId};
use oes_domain::ports::{ExamConflict, ExamStore, StoreError, StoreUnavailable};

use super::schema::{
    EXAM_GUARDS, ExamItem, GuardItem, PUBLISHED, QUESTION_PREFIX, QuestionItem, exam_key, exam_pk,
    guard_key, key_of, listing_key, listing_of, listing_sk, question_key,
};
use super::{Item, TRIES, Table, from_item, n, only, s, to_item, to_value};

/// Exams and questions in DynamoDB.
#[derive(Clone)]
pub struct DynamoExams {
    table: Table,
}

impl DynamoExams {
    /// Exams in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    /// The writes that replace `old` (`None`: there is none) by `new`, conditional on `old`'s
    /// version, and keep `new`'s entry in the published list and its guard copies in step. The
    /// exam's write is first.
    fn exam_writes(
        &self,
        old: Option<&Exam>,
        new: &Exam,
    ) -> Result<Vec<TransactWriteItem>, StoreUnavailable> {
        let item = to_item(&ExamItem::new(new.clone()), "encoding an exam")?;
        let condition = match old {
            None => ("attribute_not_exists(pk)", Item::new()),
            Some(old) => (
                "version = :expected",
                HashMap::from([(":expected".to_owned(), n(old.version))]),
            ),
        };
        let mut items = vec![self.table.put(item, Some(condition))?];
        let old_listing = old.and_then(listing_of);
        let new_listing = listing_of(new);
        if let Some(old_sk) = old_listing
            && new_listing.as_ref() != Some(&old_sk)
        {
            items.push(self.table.delete(listing_key(old_sk), None)?);
        }
        if let Some(sk) = new_listing {
            let listing = to_item(&ExamItem::listing(sk, new.clone()), "encoding a list entry")?;
            items.push(self.table.put(listing, None)?);
        }
        if new.is_published() {
            items.extend(guard_puts(&self.table, new)?);
        } else if old.is_some_and(Exam::is_published) {
            items.extend(guard_deletes(&self.table, &new.id)?);
        }
        Ok(items)
    }

    /// A transaction's put of `question`, on `condition`.
    fn question_put(
        &self,
        question: &Question,
        condition: &str,
    ) -> Result<TransactWriteItem, StoreUnavailable> {
        let item = to_item(&QuestionItem::new(question.clone()), "encoding a question")?;
        self.table.put(item, only(condition))
    }

    /// A transaction's update of `question`'s fields (its place in the exam, `created_at`,
    /// stays), on their being still `was`'s.
    fn question_update(
        &self,
        question: &Question,
        was: &Question,
    ) -> Result<TransactWriteItem, StoreUnavailable> {
        let update = Update::builder()
            .set_key(Some(question_key(&question.exam_id, &question.id)))
            .update_expression(
                "SET #text = :text, #options = :options, correct_option = :correct, points = :points",
            )
            .condition_expression(
                "#text = :was_text AND #options = :was_options \
                 AND correct_option = :was_correct AND points = :was_points",
            )
            .expression_attribute_names("#text", "text")
            .expression_attribute_names("#options", "options")
            .expression_attribute_values(":text", s(question.text.as_str()))
            .expression_attribute_values(
                ":options",
                to_value(&question.options, "encoding options")?,
            )
            .expression_attribute_values(":correct", n(question.correct_option))
            .expression_attribute_values(":points", n(question.points))
            .expression_attribute_values(":was_text", s(was.text.as_str()))
            .expression_attribute_values(
                ":was_options",
                to_value(&was.options, "encoding options")?,
            )
            .expression_attribute_values(":was_correct", n(was.correct_option))
            .expression_attribute_values(":was_points", n(was.points));
        self.table.update(update)
    }

    /// Deletes every question item of `exam`, 25 at a time.
    async fn sweep_questions(&self, exam: &ExamId) -> Result<(), StoreUnavailable> {
        let items = self
            .table
            .query_prefix(
                exam_pk(exam),
                QUESTION_PREFIX,
                false,
                "listing the questions to delete",
            )
            .await?;
        let keys = items.into_iter().map(key_of).collect();
        self.table.delete_all(keys, "deleting questions").await
    }
}

/// A transaction's puts of `exam`'s guard copies (see `schema`), in `table`.
pub(super) fn guard_puts(
    table: &Table,
    exam: &Exam,
) -> Result<Vec<TransactWriteItem>, StoreUnavailable> {
    (0..EXAM_GUARDS)
        .map(|shard| {
            let item = to_item(&GuardItem::new(exam, shard), "encoding a guard copy")?;
            table.put(item, None)
        })
        .collect()
}

/// A transaction's deletes of `exam`'s guard copies, in `table`.
fn guard_deletes(table: &Table, exam: &ExamId) -> Result<Vec<TransactWriteItem>, StoreUnavailable> {
    (0..EXAM_GUARDS)
        .map(|shard| table.delete(guard_key(exam, shard), None))
        .collect()
}

#[async_trait]
impl ExamStore for DynamoExams {
    #[tracing::instrument(skip_all, fields(exam_id = %exam.id))]
    async fn create_exam(&self, exam: &Exam) -> Result<(), StoreError<ExamConflict>> {
        for _ in 0..TRIES {
            let items = self.exam_writes(None, exam)?;
            if self
                .table
                .transact(items, "creating an exam")
                .await?
                .is_ok()
            {
                return Ok(());
            }
            if self.get_exam(&exam.id).await?.is_some() {
                return Err(StoreError::Conflict(ExamConflict::ExamExists));
            }
        }
        Err(StoreError::Conflict(ExamConflict::ConcurrentUpdate))
    }

    #[tracing::instrument(skip_all, fields(exam_id = %id))]
    async fn get_exam(&self, id: &ExamId) -> Result<Option<Exam>, StoreUnavailable> {
        let item: Option<ExamItem> = self.table.read(exam_key(id), "reading an exam").await?;
        Ok(item.map(|i| i.exam))
    }

    #[tracing::instrument(skip_all, fields(exam_id = %exam.id, expected_version))]
    async fn save_exam(
        &self,
        exam: &Exam,
        expected_version: u64,
    ) -> Result<(), StoreError<ExamConflict>> {
        for _ in 0..TRIES {
            let stored = self.get_exam(&exam.id).await?.ok_or(StoreError::NotFound)?;
            if stored.version != expected_version {
                return Err(StoreError::Conflict(ExamConflict::StaleVersion));
            }
            // The question count is the store's, not the caller's.
            let new = Exam {
                question_count: stored.question_count,
                ..exam.clone()
            };
            let items = self.exam_writes(Some(&stored), &new)?;
            if self.table.transact(items, "saving an exam").await?.is_ok() {
                return Ok(());
            }
        }
        Err(StoreError::Conflict(ExamConflict::ConcurrentUpdate))
    }

    #[tracing::instrument(skip_all, fields(exam_id = %id))]
    async fn delete_exam(&self, id: &ExamId) -> Result<(), StoreError<ExamConflict>> {
        for _ in 0..TRIES {
            let Some(stored) = self.get_exam(id).await? else {
                // Questions left by a delete that failed halfway go now, and guard copies a
                // delete by an older build left behind.
                self.sweep_questions(id).await?;
                let guards = (0..EXAM_GUARDS).map(|k| guard_key(id, k)).collect();
                self.table
                    .delete_all(guards, "deleting guard copies")
                    .await?;
                return Err(StoreError::NotFound);
            };
            let version = HashMap::from([(":v".to_owned(), n(stored.version))]);
            let mut items = vec![
                self.table
                    .delete(exam_key(id), Some(("version = :v", version)))?,
            ];
            if let Some(sk) = listing_of(&stored) {
                items.push(self.table.delete(listing_key(sk), None)?);
            }
            items.extend(guard_deletes(&self.table, id)?);
            if self
                .table
                .transact(items, "deleting an exam")
                .await?
                .is_ok()
            {
                return Ok(self.sweep_questions(id).await?);
            }
        }
        Err(StoreError::Conflict(ExamConflict::ConcurrentUpdate))
    }

    #[tracing::instrument(skip_all, fields(limit))]
    async fn list_published(
        &self,
        limit: usize,
        after: Option<&ExamCursor>,
    ) -> Result<Vec<Exam>, StoreUnavailable> {
        let mut exams = Vec::new();
        let mut start = None;
        while exams.len() < limit {
            let remaining = i32::try_from(limit - exams.len()).unwrap_or(i32::MAX);
            let mut query = self
                .table
                .client
                .query()
                .table_name(&self.table.name)
                .expression_attribute_values(":pk", s(PUBLISHED))
                .scan_index_forward(false)
                .limit(remaining)
                .consistent_read(true)
                .set_exclusive_start_key(start);
            query = match after {
                Some(cursor) => query
                    .key_condition_expression("pk = :pk AND sk < :after")
                    .expression_attribute_values(":after", s(listing_sk(cursor))),
                None => query.key_condition_expression("pk = :pk"),
            };
            let out = query
                .send()
                .await
                .map_err(|e| StoreUnavailable::new("listing published exams", e))?;
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
    ) -> Result<(), StoreError<ExamConflict>> {
        for _ in 0..TRIES {
            let stored = self
                .get_exam(&question.exam_id)
                .await?
                .ok_or(StoreError::NotFound)?;
            if stored.question_count >= max_questions {
                return Err(StoreError::Conflict(ExamConflict::TooManyQuestions));
            }
            if self
                .get_question(&question.exam_id, &question.id)
                .await?
                .is_some()
            {
                return Err(StoreError::Conflict(ExamConflict::QuestionExists));
            }
            let new = Exam {
                question_count: stored.question_count + 1,
                version: stored.version + 1,
                ..stored.clone()
            };
            let mut items = self.exam_writes(Some(&stored), &new)?;
            items.push(self.question_put(question, "attribute_not_exists(pk)")?);
            if self
                .table
                .transact(items, "adding a question")
                .await?
                .is_ok()
            {
                return Ok(());
            }
        }
        Err(StoreError::Conflict(ExamConflict::ConcurrentUpdate))
    }

    #[tracing::instrument(skip_all, fields(exam_id = %exam, question_id = %id))]
    async fn get_question(
        &self,
        exam: &ExamId,
        id: &QuestionId,
    ) -> Result<Option<Question>, StoreUnavailable> {
        let item: Option<QuestionItem> = self
            .table
            .read(question_key(exam, id), "reading a question")
            .await?;
        Ok(item.map(|i| i.question))
    }

    #[tracing::instrument(skip_all, fields(exam_id = %question.exam_id, question_id = %question.id))]
    async fn save_question(
        &self,
        question: &Question,
        was: &Question,
    ) -> Result<(), StoreError<ExamConflict>> {
        let grading = !question.same_grading(was);
        for _ in 0..TRIES {
            // Written first, on the fields being `was`'s; an edit of what attempts are graded
            // on also on the exam being the draft read here (not published meanwhile).
            let draft = if grading {
                self.get_exam(&question.exam_id)
                    .await?
                    .filter(|exam| !exam.is_published())
                    .map(|exam| exam.version)
            } else {
                None
            };
            if !grading || draft.is_some() {
                let mut items = vec![self.question_update(question, was)?];
                if let Some(version) = draft {
                    let version = HashMap::from([(":v".to_owned(), n(version))]);
                    let check = Some(("version = :v", version));
                    items.push(self.table.check(exam_key(&question.exam_id), check)?);
                }
                if self
                    .table
                    .transact(items, "saving a question")
                    .await?
                    .is_ok()
                {
                    return Ok(());
                }
            }
            // Refused, or not a draft: what stands now says why.
            let (exam, stored) = tokio::try_join!(
                self.get_exam(&question.exam_id),
                self.get_question(&question.exam_id, &question.id)
            )?;
            let Some(stored) = stored else {
                return Err(StoreError::NotFound);
            };
            // Already as the edit would make it: the same edit made twice, or this one sent
            // again after its answer was lost.
            if stored.same_fields(question) {
                return Ok(());
            }
            if grading && exam.as_ref().is_none_or(Exam::is_published) {
                return Err(match exam {
                    Some(_) => StoreError::Conflict(ExamConflict::Published),
                    None => StoreError::NotFound,
                });
            }
            if !stored.same_fields(was) {
                return Err(StoreError::Conflict(ExamConflict::ConcurrentUpdate));
            }
            // The exam's version moved on (another write to the draft): again.
        }
        Err(StoreError::Conflict(ExamConflict::ConcurrentUpdate))
    }

    #[tracing::instrument(skip_all, fields(exam_id = %exam, question_id = %id))]
    async fn delete_question(
        &self,
        exam: &ExamId,
        id: &QuestionId,
    ) -> Result<(), StoreError<ExamConflict>> {
        for _ in 0..TRIES {
            let stored = self.get_exam(exam).await?.ok_or(StoreError::NotFound)?;
            if self.get_question(exam, id).await?.is_none() {
                return Err(StoreError::NotFound);
            }
            // The write below is conditional on this version of the exam.
            if stored.is_published() {
                return Err(StoreError::Conflict(ExamConflict::Published));
            }
            let new = Exam {
                question_count: stored.question_count.saturating_sub(1),
                version: stored.version + 1,
                ..stored.clone()
            };
            let mut items = self.exam_writes(Some(&stored), &new)?;
            items.push(
                self.table
                    .delete(question_key(exam, id), only("attribute_exists(pk)"))?,
            );
            if self
                .table
                .transact(items, "deleting a question")
                .await?
                .is_ok()
            {
                return Ok(());
            }
        }
        Err(StoreError::Conflict(ExamConflict::ConcurrentUpdate))
    }

    #[tracing::instrument(skip_all, fields(exam_id = %exam))]
    async fn list_questions(&self, exam: &ExamId) -> Result<Vec<Question>, StoreUnavailable> {
        let items = self
            .table
            .query_prefix(exam_pk(exam), QUESTION_PREFIX, false, "listing questions")
            .await?;
        let mut questions = items
            .into_iter()
            .map(|item| from_item::<QuestionItem>(item, "decoding a question").map(|i| i.question))
            .collect::<Result<Vec<_>, _>>()?;
        questions.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(questions)
    }
}
