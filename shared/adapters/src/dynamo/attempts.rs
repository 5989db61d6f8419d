//! [`DynamoAttempts`]: attempts and their lists by student and by exam (items in `schema`).
//!
//! An attempt and its two summaries are written in one transaction on create and on submit
//! (conditional on the attempt being absent, in progress — and on submit, on its answers being
//! those graded). The same transactions update the student's record at the exam: a create counts
//! itself in and becomes the open attempt, refused while another attempt is open and before its
//! deadline or once the exam's attempts are used up, so concurrent starts open one attempt and
//! never more than allowed; a submit removes it as the open attempt. `save_answers` and the
//! result-email claim are single conditional updates that return the old item when refused,
//! which tells "absent" from "closed" or "held".
//!
//! The create transaction also puts the attempt's due entry, due at its deadline; the submit's
//! moves it to its result email's check (a delete and a put: the time is in the sort key). The
//! sweep reads the due entries of every partition of the index and deletes each once it has
//! settled the attempt.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};

use oes_domain::exam::{
    Answers, Attempt, AttemptCursor, AttemptId, AttemptResult, AttemptStatus, AttemptSummary, Exam,
    ExamId,
};
use oes_domain::ports::{AttemptConflict, AttemptStore, DueAttempt, StoreError, StoreUnavailable};
use oes_domain::user::UserId;

use super::exams::guard_puts;
use super::schema::{
    AttemptItem, DUE_SHARDS, DueItem, ExamItem, GuardItem, SUMMARY_PREFIX, StudentRecordItem,
    SummaryItem, attempt_key, due_before, due_key, due_pk, exam_key, exam_pk, guard_key, guard_of,
    student_record_key, summary_key, user_pk,
};
use super::{Item, TRIES, Table, from_item, n, only, s, to_item, to_value, update_or_refusal};

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

    /// Writes `exam`'s guard copies, on the exam being still at its version (a change since
    /// writes them itself). Whether they landed does not matter to the caller, which tries its
    /// start again either way.
    async fn write_guards(&self, exam: &Exam) -> Result<(), StoreUnavailable> {
        let version = Item::from([(":v".to_owned(), n(exam.version))]);
        let mut items = vec![
            self.table
                .check(exam_key(&exam.id), Some(("version = :v", version)))?,
        ];
        items.extend(guard_puts(&self.table, exam)?);
        let written = self
            .table
            .transact(items, "writing an exam's guard copies")
            .await?;
        if written.is_ok() {
            tracing::info!(exam_id = %exam.id, "an exam's guard copies written");
        }
        Ok(())
    }

    /// The writes that move the due entry of `attempt` from its deadline to `due_at`, none if
    /// they are the same (a transaction names an item once). Unconditional: an entry already
    /// gone is no reason to refuse the submit.
    fn due_moved(
        &self,
        attempt: &Attempt,
        due_at: i64,
    ) -> Result<Vec<TransactWriteItem>, StoreUnavailable> {
        let (from, to) = (DueAttempt::of(attempt), DueAttempt::at(attempt, due_at));
        if from == to {
            return Ok(Vec::new());
        }
        let to = to_item(&DueItem::new(&to), "encoding a due attempt")?;
        Ok(vec![
            self.table.delete(due_key(&from), None)?,
            self.table.put(to, None)?,
        ])
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

    /// `user`'s record at `exam`, if they ever started an attempt there (its open attempt may
    /// be past its deadline).
    async fn student_record(
        &self,
        exam: &ExamId,
        user: &UserId,
    ) -> Result<Option<StudentRecordItem>, StoreUnavailable> {
        self.table
            .read(student_record_key(exam, user), "reading a student's record")
            .await
    }

    /// A page of the summaries in partition `pk`, newest first: at most `limit`, after `after`.
    async fn summaries(
        &self,
        pk: String,
        limit: usize,
        after: Option<&AttemptCursor>,
        context: &'static str,
    ) -> Result<Vec<AttemptSummary>, StoreUnavailable> {
        let start = after.map(|cursor| summary_key(pk.clone(), cursor));
        self.table
            .query_page(pk, SUMMARY_PREFIX, true, limit, start, context)
            .await?
            .into_iter()
            .map(|item| {
                from_item::<SummaryItem>(item, "decoding an attempt summary").map(|i| i.summary)
            })
            .collect()
    }

    /// The due entries of partition `shard` due at `now`, oldest first, at most `limit`.
    async fn due_in(
        &self,
        shard: u32,
        now: i64,
        limit: usize,
    ) -> Result<Vec<DueAttempt>, StoreUnavailable> {
        const CONTEXT: &str = "listing due attempts";
        let mut due = Vec::new();
        let mut start = None;
        while due.len() < limit {
            let out = self
                .table
                .client
                .query()
                .table_name(&self.table.name)
                .key_condition_expression("pk = :pk AND sk < :before")
                .expression_attribute_values(":pk", s(due_pk(shard)))
                .expression_attribute_values(":before", s(due_before(now)))
                .limit(i32::try_from(limit - due.len()).unwrap_or(i32::MAX))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreUnavailable::new(CONTEXT, e))?;
            for item in out.items.unwrap_or_default() {
                due.push(from_item::<DueItem>(item, CONTEXT)?.due());
            }
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => break,
            }
        }
        Ok(due)
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
        Ok(match update_or_refusal(out, context)? {
            Ok(_) => Updated::Done,
            Err(None) => Updated::Absent,
            Err(Some(item)) => {
                let attempt = from_item::<AttemptItem>(item, "decoding an attempt")?.attempt;
                Updated::Refused {
                    status: attempt.status,
                    job: attempt.result_email_job,
                }
            }
        })
    }
}

/// What a conditional update of an attempt did.
enum Updated {
    /// It went through.
    Done,
    /// There is no such attempt.
    Absent,
    /// The condition failed; the attempt's status and result email claim as they are.
    Refused {
        status: AttemptStatus,
        job: Option<String>,
    },
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
    async fn create_attempt(
        &self,
        attempt: &Attempt,
        max_attempts: u32,
    ) -> Result<(), StoreError<AttemptConflict>> {
        for _ in 0..TRIES {
            let item = to_item(&AttemptItem::new(attempt.clone()), "encoding an attempt")?;
            // The student's record counts this attempt in and holds it as the open one: on
            // condition that fewer than `max_attempts` were started and none is open.
            let record = Update::builder()
                .set_key(Some(student_record_key(&attempt.exam_id, &attempt.user_id)))
                .update_expression(
                    "SET #started = if_not_exists(#started, :zero) + :one, #attempt = :id, \
                     #deadline = :deadline",
                )
                .condition_expression(
                    "(attribute_not_exists(#started) OR #started < :max) \
                     AND (attribute_not_exists(#deadline) OR #deadline <= :now)",
                )
                .expression_attribute_names("#started", "started")
                .expression_attribute_names("#attempt", "attempt_id")
                .expression_attribute_names("#deadline", "deadline")
                .expression_attribute_values(":zero", n(0))
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":max", n(max_attempts))
                .expression_attribute_values(":id", s(attempt.id.as_str()))
                .expression_attribute_values(":deadline", n(attempt.deadline))
                .expression_attribute_values(":now", n(attempt.started_at));
            // Its exam still there and published (`published_at` is set by the publish and
            // never removed): a delete since the start read it leaves no attempt behind. And at
            // the version the attempt was started from: a change since (a lower limit, a review
            // from the close) is not missed. Checked on the exam's guard copy this student
            // picks, not the exam: starts at one exam then do not hold one item (see `schema`).
            let guard = guard_key(&attempt.exam_id, guard_of(&attempt.user_id));
            let exam_check = match attempt.exam_version {
                Some(version) => Some((
                    "attribute_exists(published_at) AND version = :v",
                    Item::from([(":v".to_owned(), n(version))]),
                )),
                None => only("attribute_exists(published_at)"),
            };
            let mut items = vec![
                self.table.put(item, only("attribute_not_exists(pk)"))?,
                self.table.update(record)?,
                self.table.check(guard.clone(), exam_check)?,
            ];
            items.extend(self.summary_puts(attempt)?);
            let due = to_item(
                &DueItem::new(&DueAttempt::of(attempt)),
                "encoding a due attempt",
            )?;
            items.push(self.table.put(due, None)?);
            if self
                .table
                .transact(items, "creating an attempt")
                .await?
                .is_ok()
            {
                return Ok(());
            }
            match self.get_attempt(&attempt.id).await? {
                // This very write landed before (the SDK retried it after a timeout, and the
                // retry found the item): done, not a conflict.
                Some(stored) if stored == *attempt => return Ok(()),
                Some(_) => return Err(StoreError::Conflict(AttemptConflict::AttemptExists)),
                None => {}
            }
            let record = self
                .student_record(&attempt.exam_id, &attempt.user_id)
                .await?;
            if let Some(record) = record {
                if record.is_open(attempt.started_at) {
                    return Err(StoreError::Conflict(AttemptConflict::AttemptInProgress));
                }
                if record.started >= max_attempts {
                    return Err(StoreError::Conflict(AttemptConflict::AttemptsExhausted));
                }
            }
            // Read only when the student's record does not explain the refusal (a second tab's
            // start, the common one, costs no more).
            let exam: Option<ExamItem> = self
                .table
                .read(exam_key(&attempt.exam_id), "reading an attempt's exam")
                .await?;
            let Some(exam) = exam
                .map(|item| item.exam)
                .filter(|exam| exam.is_published())
            else {
                return Err(StoreError::NotFound);
            };
            if attempt
                .exam_version
                .is_some_and(|started| started != exam.version)
            {
                return Err(StoreError::Conflict(AttemptConflict::ExamChanged));
            }
            // The exam is as the start read it: its guard copy is missing or behind (an exam
            // published before the copies existed), or another transaction held an item (the
            // SDK's retries spent): the copies written (on the exam's version), then again.
            let copy: Option<GuardItem> = self
                .table
                .read(guard, "reading an exam's guard copy")
                .await?;
            if copy.is_none_or(|copy| copy.version != exam.version) {
                self.write_guards(&exam).await?;
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
            Updated::Refused { .. } => Err(StoreError::Conflict(AttemptConflict::AttemptClosed)),
            Updated::Absent => Err(StoreError::NotFound),
        }
    }

    #[tracing::instrument(skip_all, fields(attempt_id = %id))]
    async fn submit(
        &self,
        id: &AttemptId,
        result: &AttemptResult,
        graded: &Answers,
        email_job_id: &str,
        email_check_at: i64,
    ) -> Result<(), StoreError<AttemptConflict>> {
        for _ in 0..TRIES {
            let mut attempt = self.get_attempt(id).await?.ok_or(StoreError::NotFound)?;
            if attempt.is_submitted_as(result, graded, email_job_id) {
                // This submit landed already (a retried write whose answer was lost).
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
            // An update, not a put: answers saved meanwhile are not overwritten.
            let update = Update::builder()
                .set_key(Some(attempt_key(id)))
                .update_expression("SET #status = :submitted, #result = :result, #job = :job")
                .condition_expression("#status = :open AND answers = :graded")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#result", "result")
                .expression_attribute_names("#job", "result_email_job")
                .expression_attribute_values(":submitted", status(AttemptStatus::Submitted)?)
                .expression_attribute_values(":open", status(AttemptStatus::InProgress)?)
                .expression_attribute_values(":result", to_value(result, "encoding a result")?)
                .expression_attribute_values(":graded", to_value(graded, "encoding answers")?)
                .expression_attribute_values(":job", s(email_job_id));
            let mut items = vec![self.table.update(update)?];
            items.extend(self.summary_puts(&attempt)?);
            items.extend(self.due_moved(&attempt, email_check_at)?);
            // Frees the student's place, if this attempt holds it (a later attempt may hold it
            // if this one is submitted after its deadline); the count stays. Conditional: if a
            // new attempt took the place meanwhile, the transaction is cancelled and read again.
            let record = self
                .student_record(&attempt.exam_id, &attempt.user_id)
                .await?;
            if record.is_some_and(|r| r.attempt_id.as_ref() == Some(id)) {
                let freed = Update::builder()
                    .set_key(Some(student_record_key(&attempt.exam_id, &attempt.user_id)))
                    .update_expression("REMOVE #attempt, #deadline")
                    .condition_expression("#attempt = :id")
                    .expression_attribute_names("#attempt", "attempt_id")
                    .expression_attribute_names("#deadline", "deadline")
                    .expression_attribute_values(":id", s(id.as_str()));
                items.push(self.table.update(freed)?);
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
            Updated::Refused { status, .. } if status != AttemptStatus::Submitted => {
                Err(StoreError::Conflict(AttemptConflict::NotSubmitted))
            }
            // Held: by another job, or by this one (a retried write that landed).
            Updated::Refused { job, .. } => Ok(job.as_deref() == Some(job_id)),
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
            Updated::Done | Updated::Refused { .. } => Ok(()),
            Updated::Absent => Err(StoreError::NotFound),
        }
    }

    #[tracing::instrument(skip_all, fields(now = now))]
    async fn due_attempts(
        &self,
        now: i64,
        limit: usize,
    ) -> Result<Vec<DueAttempt>, StoreUnavailable> {
        let mut due = Vec::new();
        for shard in 0..DUE_SHARDS {
            due.extend(self.due_in(shard, now, limit).await?);
        }
        due.sort_unstable();
        due.truncate(limit);
        Ok(due)
    }

    #[tracing::instrument(skip_all, fields(attempt_id = %due.attempt_id))]
    async fn clear_due(&self, due: &DueAttempt) -> Result<(), StoreUnavailable> {
        self.table
            .remove(due_key(due), "clearing a due attempt")
            .await
    }

    #[tracing::instrument(skip_all, fields(user_id = %user, limit))]
    async fn attempts_of_user(
        &self,
        user: &UserId,
        limit: usize,
        after: Option<&AttemptCursor>,
    ) -> Result<Vec<AttemptSummary>, StoreUnavailable> {
        self.summaries(user_pk(user), limit, after, "listing a student's attempts")
            .await
    }

    #[tracing::instrument(skip_all, fields(exam_id = %exam, limit))]
    async fn attempts_of_exam(
        &self,
        exam: &ExamId,
        limit: usize,
        after: Option<&AttemptCursor>,
    ) -> Result<Vec<AttemptSummary>, StoreUnavailable> {
        self.summaries(exam_pk(exam), limit, after, "listing an exam's attempts")
            .await
    }
}
