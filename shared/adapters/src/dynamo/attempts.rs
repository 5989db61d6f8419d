//! [`DynamoAttempts`]: attempts and their lists by student and by exam (items in `schema`).
//!
//! An attempt and its two summaries are written in one transaction on create and on submit
//! (conditional on the attempt being absent, in progress). The same transactions put and delete
//! the student's open-attempt marker for the exam: a create is refused while another attempt's
//! marker is there and before its deadline, so two concurrent starts open one attempt.
//! `save_answers` and the result-email
//! claim are single conditional updates that return the old item when refused, which tells
//! "absent" from "closed" or "held".

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use oes_domain::exam::{
    Answers, Attempt, AttemptId, AttemptResult, AttemptStatus, AttemptSummary, ExamId,
};
use oes_domain::ports::{AttemptConflict, AttemptStore, StoreError, StoreUnavailable};
use oes_domain::user::UserId;

use super::schema::{
    AttemptItem, OpenAttemptItem, SUMMARY_PREFIX, SummaryItem, attempt_key, exam_pk,
    open_attempt_key, user_pk,
};
use super::{Item, TRIES, Table, from_item, n, only, s, to_item, to_value};

/// Attempts and their lists in DynamoDB.
#[derive(Clone)]
pub struct DynamoAttempts {
    table: Table,
}

impl DynamoAttempts {
    /// Attempts in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            table: Table::new(client, table),
        }
    }

    /// Puts for the attempt's entries in the student's and the exam's lists.
    fn summary_puts(&self, attempt: &Attempt) -> Result<Vec<TransactWriteItem>, StoreUnavailable> {
        SummaryItem::lists(attempt)
            .iter()
            .map(|entry| {
                let item = to_item(entry, "encoding an attempt summary")?;
                self.table.put(item, None)
            })
            .collect()
    }

    /// The marker of `user`'s open attempt at `exam`, if there is one (it may be past its
    /// deadline).
    async fn open_attempt(
        &self,
        exam: &ExamId,
        user: &UserId,
    ) -> Result<Option<OpenAttemptItem>, StoreUnavailable> {
        self.table
            .read(open_attempt_key(exam, user), "reading an open attempt")
            .await
    }

    /// The summaries in partition `pk`, newest first.
    async fn summaries(
        &self,
        pk: String,
        context: &'static str,
    ) -> Result<Vec<AttemptSummary>, StoreUnavailable> {
        self.table
            .query_prefix(pk, SUMMARY_PREFIX, true, context)
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
    ) -> Result<Updated, StoreUnavailable> {
        let out = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
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
                other => Err(StoreUnavailable::new(context, other)),
            },
            Err(e) => Err(StoreUnavailable::new(context, e)),
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

fn status(value: AttemptStatus) -> Result<AttributeValue, StoreUnavailable> {
    to_value(&value, "encoding an attempt status")
}

#[async_trait]
impl AttemptStore for DynamoAttempts {
    #[tracing::instrument(skip_all, fields(attempt_id = %attempt.id, exam_id = %attempt.exam_id))]
    async fn create_attempt(&self, attempt: &Attempt) -> Result<(), StoreError<AttemptConflict>> {
        for _ in 0..TRIES {
            let item = to_item(&AttemptItem::new(attempt.clone()), "encoding an attempt")?;
            let marker = to_item(&OpenAttemptItem::new(attempt), "encoding an open attempt")?;
            let now = HashMap::from([(":now".to_owned(), n(attempt.started_at))]);
            let mut items = vec![
                self.table.put(item, only("attribute_not_exists(pk)"))?,
                self.table.put(
                    marker,
                    Some(("attribute_not_exists(pk) OR deadline <= :now", now)),
                )?,
            ];
            items.extend(self.summary_puts(attempt)?);
            if self
                .table
                .transact(items, "creating an attempt")
                .await?
                .is_ok()
            {
                return Ok(());
            }
            if self.get_attempt(&attempt.id).await?.is_some() {
                return Err(StoreError::Conflict(AttemptConflict::AttemptExists));
            }
            let open = self
                .open_attempt(&attempt.exam_id, &attempt.user_id)
                .await?
                .is_some_and(|marker| marker.deadline > attempt.started_at);
            if open {
                return Err(StoreError::Conflict(AttemptConflict::AttemptInProgress));
            }
        }
        Err(StoreError::Conflict(AttemptConflict::ConcurrentUpdate))
    }

    #[tracing::instrument(skip_all, fields(attempt_id = %id))]
    async fn get_attempt(&self, id: &AttemptId) -> Result<Option<Attempt>, StoreUnavailable> {
        let item: Option<AttemptItem> = self
            .table
            .read(attempt_key(id), "reading an attempt")
            .await?;
        Ok(item.map(|i| i.attempt))
    }

    #[tracing::instrument(skip_all, fields(attempt_id = %id))]
    async fn save_answers(
        &self,
        id: &AttemptId,
        answers: &Answers,
        now: i64,
    ) -> Result<(), StoreError<AttemptConflict>> {
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
            Updated::Refused(_) => Err(StoreError::Conflict(AttemptConflict::AttemptClosed)),
            Updated::Absent => Err(StoreError::NotFound),
        }
    }

    #[tracing::instrument(skip_all, fields(attempt_id = %id))]
    async fn submit(
        &self,
        id: &AttemptId,
        result: &AttemptResult,
        email_job_id: &str,
    ) -> Result<(), StoreError<AttemptConflict>> {
        for _ in 0..TRIES {
            let mut attempt = self.get_attempt(id).await?.ok_or(StoreError::NotFound)?;
            if attempt.status != AttemptStatus::InProgress {
                return Err(StoreError::Conflict(AttemptConflict::AlreadySubmitted));
            }
            attempt.status = AttemptStatus::Submitted;
            attempt.result = Some(result.clone());
            attempt.result_email_job = Some(email_job_id.to_owned());
            // An update, not a put: answers saved meanwhile are not overwritten.
            let update = Update::builder()
                .set_key(Some(attempt_key(id)))
                .update_expression("SET #status = :submitted, #result = :result, #job = :job")
                .condition_expression("#status = :open")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#result", "result")
                .expression_attribute_names("#job", "result_email_job")
                .expression_attribute_values(":submitted", status(AttemptStatus::Submitted)?)
                .expression_attribute_values(":open", status(AttemptStatus::InProgress)?)
                .expression_attribute_values(":result", to_value(result, "encoding a result")?)
                .expression_attribute_values(":job", s(email_job_id));
            let mut items = vec![self.table.update(update)?];
            items.extend(self.summary_puts(&attempt)?);
            // Frees the student's place, if this attempt holds it (a later attempt may hold it
            // if this one is submitted after its deadline). Conditional: if a new attempt took
            // the place meanwhile, the transaction is cancelled and read again.
            let marker = self
                .open_attempt(&attempt.exam_id, &attempt.user_id)
                .await?;
            if marker.is_some_and(|m| m.attempt_id == *id) {
                let held = HashMap::from([(":id".to_owned(), s(id.as_str()))]);
                items.push(self.table.delete(
                    open_attempt_key(&attempt.exam_id, &attempt.user_id),
                    Some(("attempt_id = :id", held)),
                )?);
            }
            if self
                .table
                .transact(items, "submitting an attempt")
                .await?
                .is_ok()
            {
                return Ok(());
            }
        }
        Err(StoreError::Conflict(AttemptConflict::ConcurrentUpdate))
    }

    #[tracing::instrument(skip_all, fields(attempt_id = %id, job_id))]
    async fn claim_result_email(
        &self,
        id: &AttemptId,
        job_id: &str,
    ) -> Result<bool, StoreError<AttemptConflict>> {
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
                Err(StoreError::Conflict(AttemptConflict::NotSubmitted))
            }
            Updated::Refused(_) => Ok(false),
        }
    }

    #[tracing::instrument(skip_all, fields(attempt_id = %id, job_id))]
    async fn release_result_email(
        &self,
        id: &AttemptId,
        job_id: &str,
    ) -> Result<(), StoreError<AttemptConflict>> {
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
    async fn attempts_of_user(
        &self,
        user: &UserId,
    ) -> Result<Vec<AttemptSummary>, StoreUnavailable> {
        self.summaries(user_pk(user), "listing a student's attempts")
            .await
    }

    #[tracing::instrument(skip_all, fields(exam_id = %exam))]
    async fn attempts_of_exam(
        &self,
        exam: &ExamId,
    ) -> Result<Vec<AttemptSummary>, StoreUnavailable> {
        self.summaries(exam_pk(exam), "listing an exam's attempts")
            .await
    }
}
