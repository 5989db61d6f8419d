//! [`DynamoJobs`] as a [`JobIndex`]: listings and counts of job records by state, from the
//! sparse index `gsi1` (see `schema`): one partition per status, newest change first. A kind or
//! `stalled` (an expired lease) is a filter on the status's partition.

use async_trait::async_trait;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::{AttributeValue, Select};

use oes_domain::ports::{
    JobCount, JobIndex, JobPage, JobPosition, JobQuery, JobRecord, JobState, LIST_READ_BUDGET,
    StoreUnavailable,
};

use super::jobs::DynamoJobs;
use super::schema::{JOB_INDEX, JOB_INDEX_PK, JOB_INDEX_SK, JobItem, jobs_pk, jobs_position};
use super::{Item, from_item, n, s};

/// One query of a status's partition: the jobs of `state` (and `kind`) changed before `before`.
struct Slice<'a> {
    state: JobState,
    kind: Option<&'a str>,
    now: i64,
    /// A sort key of the index: only items below it.
    before: Option<String>,
}

impl DynamoJobs {
    /// One request of `slice`, reading at most `limit` records; `count` asks only for the count.
    async fn query_index(
        &self,
        slice: &Slice<'_>,
        limit: usize,
        count: bool,
    ) -> Result<QueryOutput, StoreUnavailable> {
        let mut key = format!("{JOB_INDEX_PK} = :pk");
        let mut request = self
            .table
            .client
            .query()
            .table_name(&self.table.name)
            .index_name(JOB_INDEX)
            .scan_index_forward(false)
            .set_limit(i32::try_from(limit).ok())
            .expression_attribute_values(":pk", s(jobs_pk(slice.state.status())));
        if let Some(before) = &slice.before {
            key.push_str(&format!(" AND {JOB_INDEX_SK} < :before"));
            request = request.expression_attribute_values(":before", s(before.as_str()));
        }
        let mut filters = Vec::new();
        if let Some(kind) = slice.kind {
            filters.push("kind = :kind");
            request = request.expression_attribute_values(":kind", s(kind));
        }
        if slice.state == JobState::Stalled {
            filters.push("lease_until < :now");
            request = request.expression_attribute_values(":now", n(slice.now));
        }
        if !filters.is_empty() {
            request = request.filter_expression(filters.join(" AND "));
        }
        if count {
            request = request.select(Select::Count);
        }
        request
            .key_condition_expression(key)
            .send()
            .await
            .map_err(|e| StoreUnavailable::new("querying the job index", e))
    }
}

/// The index sort key a query stopped at, if more may follow.
fn stopped_at(out: &QueryOutput) -> Option<String> {
    match out.last_evaluated_key.as_ref()?.get(JOB_INDEX_SK)? {
        AttributeValue::S(sk) => Some(sk.clone()),
        _ => None,
    }
}

fn listed(item: Item) -> Result<JobRecord, StoreUnavailable> {
    let record = from_item::<JobItem>(item, "decoding a listed job record")?.record;
    // Listings carry no history nor subject, whatever the index projects.
    Ok(JobRecord {
        subject: None,
        history: Vec::new(),
        ..record
    })
}

/// Records read by one query (what `Limit` counts).
fn read_by(out: &QueryOutput) -> usize {
    usize::try_from(out.scanned_count).unwrap_or(0)
}

#[async_trait]
impl JobIndex for DynamoJobs {
    #[tracing::instrument(skip_all, fields(state = query.state.as_str()))]
    async fn list(&self, query: &JobQuery, now: i64) -> Result<JobPage, StoreUnavailable> {
        let before = query.after.as_ref().map(super::schema::jobs_sk);
        let mut slice = Slice {
            state: query.state,
            kind: query.kind.as_deref(),
            now,
            before,
        };
        let mut jobs: Vec<JobRecord> = Vec::new();
        let mut read = 0;
        // One more than the page: a match beyond it means more follow. A filter that matched
        // too few reads twice as many the next time, never past the budget.
        let mut want = query.limit.saturating_add(1);
        loop {
            let limit = want.min(LIST_READ_BUDGET - read);
            let out = self.query_index(&slice, limit, false).await?;
            read += read_by(&out);
            let stopped = stopped_at(&out);
            for item in out.items.unwrap_or_default() {
                if jobs.len() == query.limit {
                    let next = jobs.last().map(JobPosition::of);
                    return Ok(JobPage { jobs, next });
                }
                jobs.push(listed(item)?);
            }
            let Some(stopped) = stopped else {
                return Ok(JobPage { jobs, next: None });
            };
            if read >= LIST_READ_BUDGET {
                // Read enough for one page: the next one goes on from the last record read.
                return Ok(JobPage {
                    jobs,
                    next: jobs_position(&stopped),
                });
            }
            slice.before = Some(stopped);
            want = want.saturating_mul(2);
        }
    }

    #[tracing::instrument(skip_all, fields(state = state.as_str()))]
    async fn count(
        &self,
        state: JobState,
        kind: Option<&str>,
        now: i64,
        budget: usize,
    ) -> Result<JobCount, StoreUnavailable> {
        let mut slice = Slice {
            state,
            kind,
            now,
            before: None,
        };
        let (mut count, mut read) = (0, 0);
        loop {
            let out = self.query_index(&slice, budget - read, true).await?;
            read += read_by(&out);
            count += u64::try_from(out.count).unwrap_or(0);
            let Some(stopped) = stopped_at(&out) else {
                return Ok(JobCount {
                    status: state,
                    count,
                    exact: true,
                });
            };
            slice.before = Some(stopped);
            if read >= budget {
                // The budget is spent: exact only if nothing is left (a query stopped by its
                // limit says more may follow even when none does).
                let rest = Slice {
                    kind: None,
                    state: state_of_status(state),
                    ..slice
                };
                let more = self.query_index(&rest, 1, true).await?;
                return Ok(JobCount {
                    status: state,
                    count,
                    exact: read_by(&more) == 0,
                });
            }
        }
    }
}

/// The state that reads its status's whole partition (`stalled` reads `sending`'s).
fn state_of_status(state: JobState) -> JobState {
    match state {
        JobState::Stalled => JobState::Sending,
        other => other,
    }
}
