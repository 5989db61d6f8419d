//! [`DynamoJobs`]: email job records (items in `schema`), expired by the table's TTL after the
//! configured retention. The send lease is a conditional update: only one worker at a time can
//! move a job to `sending`, and never a job that is already finished. Every status change also
//! moves the record in the index by status and appends its event to the history, in the same
//! update. Each update carries a token of its own, so one the SDK sends again after losing its
//! answer is made once (see `DynamoJobs::update`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use oes_domain::email::EmailJob;
use oes_domain::ports::{
    Claim, HISTORY_LIMIT, JobConflict, JobEvent, JobEventKind, JobLedger, JobPosition, JobRecord,
    JobStatus, Outcome, PURGED, StoreError, StoreUnavailable,
};

use super::schema::{JobItem, job_key, jobs_pk, jobs_sk};
use super::{Item, Table, from_item, has, n, s, to_value, update_or_refusal};

/// The most DynamoDB calls a claim makes: its conditional update, and cutting back a history
/// grown past [`HISTORY_LIMIT`] (a second conditional write). The worker's timeout model
/// (`timeout_chain.rs`) counts them; a test against the emulator holds a claim to it.
pub const CLAIM_CALLS: u32 = 2;

/// Job records in DynamoDB.
#[derive(Clone)]
pub struct DynamoJobs {
    pub(super) table: Table,
    retention_seconds: i64,
}

impl DynamoJobs {
    /// Records in `table`, kept `retention_seconds` after their last change.
    pub fn new(client: Client, table: impl Into<String>, retention_seconds: i64) -> Self {
        Self {
            table: Table::new(client, table),
            retention_seconds,
        }
    }

    /// Runs an update (`expression` begins with `SET`) if `condition` holds.
    ///
    /// Each update writes a token of its own (`write_token`), and its condition refuses the same
    /// update twice. When an answer is lost (a timeout after the update landed), the SDK sends
    /// the update again: that retry is refused, finds its token on the record, and answers
    /// `Done` with the record as the update left it. Without the token the retry would be
    /// applied twice (two history events, an attempt given back twice) or taken for another
    /// writer's (a job "recorded already", a lease "held").
    async fn update(
        &self,
        job_id: &str,
        expression: &str,
        condition: Option<&str>,
        mut values: Item,
        context: &'static str,
    ) -> Result<Written, StoreUnavailable> {
        let Some(rest) = expression.strip_prefix("SET ") else {
            return Err(StoreUnavailable::new(
                context,
                "a job update must begin with SET",
            ));
        };
        let token = uuid::Uuid::new_v4().to_string();
        values.insert(":write".to_owned(), s(token.as_str()));
        let once = "(attribute_not_exists(write_token) OR write_token <> :write)";
        let out = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(job_key(job_id)))
            .update_expression(format!("SET write_token = :write, {rest}"))
            .condition_expression(match condition {
                Some(condition) => format!("({condition}) AND {once}"),
                None => once.to_owned(),
            })
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        Ok(match update_or_refusal(out, context)? {
            Ok(out) => Written::Done(out.attributes.unwrap_or_default()),
            // This update landed before: its answer was lost and the SDK sent it again.
            Err(Some(item)) if has(&item, "write_token", &token) => Written::Done(item),
            Err(item) => Written::Refused(item),
        })
    }

    /// How an update that ends a job went: `None` if it went through (its history then cut
    /// back), or the record as it is if it was refused (`NotFound`: there is none).
    async fn settled(
        &self,
        job_id: &str,
        written: Written,
    ) -> Result<Option<JobRecord>, StoreError<JobConflict>> {
        match written {
            Written::Done(item) => {
                self.trim_history(job_id, &item).await;
                Ok(None)
            }
            Written::Refused(item) => Ok(Some(record(item.ok_or(StoreError::NotFound)?)?)),
        }
    }

    /// Cuts the history of the record `item` (as just written) back to its last
    /// [`HISTORY_LIMIT`] events, unless another write changed its length meanwhile (that write
    /// cuts it then). Best effort: a longer history is only bigger.
    async fn trim_history(&self, job_id: &str, item: &Item) {
        let length = match item.get("history") {
            Some(AttributeValue::L(events)) => events.len(),
            _ => 0,
        };
        if length <= HISTORY_LIMIT {
            return;
        }
        let oldest: Vec<String> = (0..length - HISTORY_LIMIT)
            .map(|i| format!("history[{i}]"))
            .collect();
        let trimmed = self
            .table
            .client
            .update_item()
            .table_name(&self.table.name)
            .set_key(Some(job_key(job_id)))
            .update_expression(format!("REMOVE {}", oldest.join(", ")))
            .condition_expression("size(history) = :length")
            .expression_attribute_values(":length", n(length))
            .send()
            .await;
        if let Err(error) = trimmed {
            tracing::debug!(error = %aws_sdk_dynamodb::error::DisplayErrorContext(&error), "the job's history was not cut back");
        }
    }

    /// Applies `set` (with `values`, which set `:dead` among others as needed) to a job that
    /// ended unsent (`failed`, `dead`) but not because its producer could not queue it, moving it
    /// in the index and appending its event at `now`; otherwise says why not, from the record as
    /// it is (see [`JobLedger::requeue`]).
    async fn end_unsent(
        &self,
        job_id: &str,
        now: i64,
        set: &str,
        mut values: Item,
        context: &'static str,
    ) -> Result<(), StoreError<JobConflict>> {
        values.extend([
            (":failed".to_owned(), status(JobStatus::Failed)?),
            (":dead".to_owned(), status(JobStatus::Dead)?),
            (":zero".to_owned(), n(0)),
            (":now".to_owned(), n(now)),
            (":expires".to_owned(), n(now + self.retention_seconds)),
        ]);
        let written = self
            .update(
                job_id,
                &format!(
                    "{set}, updated_at = :now, expires_at = :expires, {MOVED} REMOVE lease_until"
                ),
                // Not a job its producer could not queue (failed, no attempt made): nothing
                // ever sends it, nor changes its record.
                Some(
                    "attribute_exists(pk) AND #status IN (:failed, :dead) \
                     AND (attribute_not_exists(lease_until) OR lease_until < :now) \
                     AND NOT (#status = :failed AND attempts = :zero)",
                ),
                values,
                context,
            )
            .await?;
        let Some(record) = self.settled(job_id, written).await? else {
            return Ok(());
        };
        // Refused: say why, from the record as it is.
        let leased = record.lease_until.is_some_and(|until| until >= now);
        Err(StoreError::Conflict(match record.status {
            JobStatus::Sent => JobConflict::Sent,
            JobStatus::Sending | JobStatus::Failed | JobStatus::Dead if leased => {
                JobConflict::Leased
            }
            JobStatus::Failed if record.attempts == 0 => JobConflict::Unqueued,
            _ => JobConflict::NotEnded,
        }))
    }
}

/// What a conditional update of a job record did.
enum Written {
    /// It went through: the record as the update left it.
    Done(Item),
    /// The condition failed: the record as it is (`None`: there is none).
    Refused(Option<Item>),
}

/// The values of an update that moves job `job_id` to `status` at `now` and appends `event` to
/// its history: `:gpk`, `:gsk` (its place in the index by status), `:event`, `:no_events`.
fn moved(
    job_id: &str,
    status: JobStatus,
    now: i64,
    event: &JobEvent,
) -> Result<Item, StoreUnavailable> {
    let position = JobPosition {
        updated_at: now,
        job_id: job_id.to_owned(),
    };
    Ok(HashMap::from([
        (":gpk".to_owned(), s(jobs_pk(status))),
        (":gsk".to_owned(), s(jobs_sk(&position))),
        (
            ":event".to_owned(),
            AttributeValue::L(vec![to_value(event, "encoding a job event")?]),
        ),
        (":no_events".to_owned(), AttributeValue::L(Vec::new())),
    ]))
}

/// The update expression's part that sets what [`moved`] gives values for.
const MOVED: &str = "gsi1pk = :gpk, gsi1sk = :gsk, history = list_append(if_not_exists(history, :no_events), :event)";

fn status(value: JobStatus) -> Result<AttributeValue, StoreUnavailable> {
    to_value(&value, "encoding a job status")
}

fn record(item: Item) -> Result<JobRecord, StoreUnavailable> {
    from_item::<JobItem>(item, "decoding a job record").map(|i| i.record)
}

#[async_trait]
impl JobLedger for DynamoJobs {
    fn record_lifetime_seconds(&self) -> Option<i64> {
        Some(self.retention_seconds)
    }

    #[tracing::instrument(skip_all, fields(job_id = %job.job_id))]
    async fn record_queued(&self, job: &EmailJob, now: i64) -> Result<(), StoreError<JobConflict>> {
        let values = HashMap::from([
            (":id".to_owned(), s(job.job_id.as_str())),
            (":queued".to_owned(), status(JobStatus::Queued)?),
            (":kind".to_owned(), s(job.template.kind())),
            (":to".to_owned(), s(job.to.as_str())),
            (":subject".to_owned(), s(job.template.subject())),
            (":max".to_owned(), n(job.max_attempts)),
            (":zero".to_owned(), n(0)),
            (":created".to_owned(), n(job.created_at)),
            (":now".to_owned(), n(now)),
            (":expires".to_owned(), n(now + self.retention_seconds)),
            (":gpk".to_owned(), s(jobs_pk(JobStatus::Queued))),
            (
                ":gsk".to_owned(),
                s(jobs_sk(&JobPosition {
                    updated_at: now,
                    job_id: job.job_id.clone(),
                })),
            ),
        ]);
        match self
            .update(
            &job.job_id,
            "SET job_id = :id, #status = :queued, kind = :kind, recipient = :to, subject = :subject, \
             max_attempts = :max, attempts = :zero, created_at = :created, updated_at = :now, expires_at = :expires, \
             gsi1pk = :gpk, gsi1sk = :gsk",
            Some("attribute_not_exists(pk)"),
            values,
            "recording a queued job",
        )
        .await?
        {
            Written::Done(_) => Ok(()),
            Written::Refused(_) => Err(StoreError::Conflict(JobConflict::JobExists)),
        }
    }

    #[tracing::instrument(skip_all, fields(job_id = %job.job_id))]
    async fn claim(
        &self,
        job: &EmailJob,
        now: i64,
        lease_seconds: i64,
    ) -> Result<Claim, StoreError<JobConflict>> {
        let mut values = moved(
            &job.job_id,
            JobStatus::Sending,
            now,
            &JobEvent::new(JobEventKind::Sending, now),
        )?;
        values.extend([
            (":id".to_owned(), s(job.job_id.as_str())),
            (":sending".to_owned(), status(JobStatus::Sending)?),
            (":queued".to_owned(), status(JobStatus::Queued)?),
            (":retrying".to_owned(), status(JobStatus::Retrying)?),
            (":lease".to_owned(), n(now + lease_seconds)),
            (":now".to_owned(), n(now)),
            (":one".to_owned(), n(1)),
            (":kind".to_owned(), s(job.template.kind())),
            (":to".to_owned(), s(job.to.as_str())),
            (":subject".to_owned(), s(job.template.subject())),
            (":max".to_owned(), n(job.max_attempts)),
            (":created".to_owned(), n(job.created_at)),
            (":expires".to_owned(), n(now + self.retention_seconds)),
        ]);
        // A record that is missing (a job from before the ledger, or expired) is created here.
        let claimed = self
            .update(
                &job.job_id,
                "SET job_id = :id, #status = :sending, lease_until = :lease, updated_at = :now, \
                 kind = if_not_exists(kind, :kind), recipient = if_not_exists(recipient, :to), \
                 subject = if_not_exists(subject, :subject), \
                 max_attempts = if_not_exists(max_attempts, :max), \
                 created_at = if_not_exists(created_at, :created), expires_at = :expires, \
                 gsi1pk = :gpk, gsi1sk = :gsk, \
                 history = list_append(if_not_exists(history, :no_events), :event) \
                 ADD attempts :one",
                Some(
                    "attribute_not_exists(pk) OR #status = :queued \
                     OR (#status = :retrying \
                         AND (attribute_not_exists(lease_until) OR lease_until <= :now)) \
                     OR (#status = :sending AND lease_until < :now)",
                ),
                values,
                "claiming a job",
            )
            .await?;
        let current = match claimed {
            Written::Done(item) => {
                self.trim_history(&job.job_id, &item).await;
                return Ok(Claim::Acquired {
                    attempt: record(item)?.attempts,
                });
            }
            Written::Refused(item) => record(item.ok_or(StoreError::NotFound)?)?,
        };
        Ok(match (current.status, current.lease_until) {
            (JobStatus::Sending | JobStatus::Retrying, Some(lease_until)) => {
                Claim::Busy { lease_until }
            }
            _ => Claim::Finished(current),
        })
    }

    #[tracing::instrument(skip_all, fields(job_id = %job_id))]
    async fn finish(
        &self,
        job_id: &str,
        outcome: Outcome,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        // Every outcome ends the lease. None undoes `sent`, and a retry does not reopen a job
        // that ended (a worker whose lease ran out may report late).
        const ANY: &str = "attribute_exists(pk)";
        const NOT_SENT: &str = "attribute_exists(pk) AND #status <> :sent";
        const OPEN: &str = "attribute_exists(pk) AND #status IN (:queued, :sending, :retrying)";
        let common = format!("updated_at = :now, expires_at = :expires, {MOVED}");
        let (status_now, text) = match &outcome {
            Outcome::Sent { ses_message_id } => (JobStatus::Sent, ses_message_id),
            Outcome::Retrying { error, .. } | Outcome::Paused { error, .. } => {
                (JobStatus::Retrying, error)
            }
            Outcome::Failed { reason } => (JobStatus::Failed, reason),
            Outcome::Dead { reason } => (JobStatus::Dead, reason),
        };
        let mut values = moved(job_id, status_now, now, &JobEvent::of(&outcome, now))?;
        values.extend([
            (":now".to_owned(), n(now)),
            (":expires".to_owned(), n(now + self.retention_seconds)),
        ]);
        values.insert(":st".into(), status(status_now)?);
        let (set, guard) = if let Outcome::Sent { .. } = outcome {
            values.insert(":ses".into(), s(text.as_str()));
            (
                format!("SET #status = :st, ses_message_id = :ses, {common}"),
                ANY,
            )
        } else {
            values.insert(":err".into(), s(text.as_str()));
            let set = format!("SET #status = :st, last_error = :err, {common}");
            if matches!(outcome, Outcome::Failed { .. } | Outcome::Dead { .. }) {
                values.insert(":sent".into(), status(JobStatus::Sent)?);
                (set, NOT_SENT)
            } else {
                values.insert(":queued".into(), status(JobStatus::Queued)?);
                values.insert(":sending".into(), status(JobStatus::Sending)?);
                values.insert(":retrying".into(), status(JobStatus::Retrying)?);
                (set, OPEN)
            }
        };
        // A retry keeps every copy of the job from it until its time.
        let set = match outcome {
            Outcome::Retrying { retry_at, .. } | Outcome::Paused { retry_at, .. } => {
                values.insert(":retry_at".into(), n(retry_at));
                format!("{set}, lease_until = :retry_at")
            }
            _ => set,
        };
        if let Outcome::Paused { .. } = outcome {
            // The attempt is given back — unless a redrive reset the count meanwhile: attempts
            // never go below zero.
            let mut giving_back = values.clone();
            giving_back.insert(":one".into(), n(1));
            let gave_back = self
                .update(
                    job_id,
                    &format!("{set}, attempts = attempts - :one"),
                    Some(&format!("{guard} AND attempts >= :one")),
                    giving_back,
                    "finishing a job",
                )
                .await?;
            if let Written::Done(item) = gave_back {
                self.trim_history(job_id, &item).await;
                return Ok(());
            }
        }
        // An unsent end keeps the lease until it runs out (see `JobLedger::finish`).
        let set = if let Outcome::Sent { .. } = outcome {
            format!("{set} REMOVE lease_until")
        } else {
            set
        };
        let written = self
            .update(job_id, &set, Some(guard), values, "finishing a job")
            .await?;
        let Some(record) = self.settled(job_id, written).await? else {
            return Ok(());
        };
        // Refused: say why, from the record as it is.
        Err(StoreError::Conflict(if record.status == JobStatus::Sent {
            JobConflict::Sent
        } else {
            JobConflict::Ended
        }))
    }

    #[tracing::instrument(skip_all, fields(job_id = %job_id))]
    async fn unqueued(
        &self,
        job_id: &str,
        reason: &str,
        now: i64,
    ) -> Result<(), StoreError<JobConflict>> {
        let outcome = Outcome::Failed {
            reason: reason.to_owned(),
        };
        let mut values = moved(job_id, JobStatus::Failed, now, &JobEvent::of(&outcome, now))?;
        values.extend([
            (":st".to_owned(), status(JobStatus::Failed)?),
            (":err".to_owned(), s(reason)),
            (":queued".to_owned(), status(JobStatus::Queued)?),
            (":zero".to_owned(), n(0)),
            (":now".to_owned(), n(now)),
            (":expires".to_owned(), n(now + self.retention_seconds)),
        ]);
        let set = format!(
            "SET #status = :st, last_error = :err, updated_at = :now, expires_at = :expires, {MOVED}"
        );
        // Not taken: still queued, no attempt made.
        let guard = "attribute_exists(pk) AND #status = :queued AND attempts = :zero";
        let written = self
            .update(
                job_id,
                &set,
                Some(guard),
                values,
                "recording an unqueued job",
            )
            .await?;
        let Some(record) = self.settled(job_id, written).await? else {
            return Ok(());
        };
        Err(StoreError::Conflict(if record.status == JobStatus::Sent {
            JobConflict::Sent
        } else {
            JobConflict::Taken
        }))
    }

    #[tracing::instrument(skip_all, fields(job_id = %job_id))]
    async fn requeue(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        let mut values = moved(
            job_id,
            JobStatus::Queued,
            now,
            &JobEvent::new(JobEventKind::Requeued, now),
        )?;
        values.extend([
            (":queued".to_owned(), status(JobStatus::Queued)?),
            (":zero".to_owned(), n(0)),
        ]);
        self.end_unsent(
            job_id,
            now,
            "SET #status = :queued, attempts = :zero",
            values,
            "requeueing a job",
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(job_id = %job_id))]
    async fn purged(&self, job_id: &str, now: i64) -> Result<(), StoreError<JobConflict>> {
        let mut values = moved(
            job_id,
            JobStatus::Dead,
            now,
            &JobEvent::new(JobEventKind::Purged, now),
        )?;
        values.insert(":purged".to_owned(), s(PURGED));
        self.end_unsent(
            job_id,
            now,
            "SET #status = :dead, last_error = :purged",
            values,
            "recording a purged job",
        )
        .await
    }

    async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StoreUnavailable> {
        let item = self
            .table
            .get(job_key(job_id), "reading a job record")
            .await?;
        item.map(record).transpose()
    }
}
