//! DynamoDB adapters: every store keeps its items in the one `pk`/`sk` table of
//! [`crate::resources`] (string keys, TTL attribute `expires_at`, one sparse index of the job
//! records by status).
//!
//! - `schema`: the whole key schema — every item kind, its `pk` / `sk` and its attributes.
//! - `users`: [`DynamoUsers`], accounts and the email claims that keep addresses unique.
//! - `tokens`: [`DynamoTokens`], one-time tokens, each taken by one conditional delete.
//! - `exams`: [`DynamoExams`], exams, their questions and the published list.
//! - `attempts`: [`DynamoAttempts`], attempts and their lists by student and by exam.
//! - `jobs`: [`DynamoJobs`], email job records and the send lease; `job_index`, their listings
//!   and counts by state.
//! - `timing`: [`StoreTiming`], the SDK interceptor that times every call of the shared client.
//!
//! This module is the toolkit they all use: attribute values, (de)serialisation of items, the
//! `Table` with its reads, transaction parts, transactions, prefix queries, pages and batch
//! deletes.
//! What can only fail by the store being unreachable (or answering with an error) returns
//! [`StoreUnavailable`], which `?` turns into any port's [`StoreError`].

mod attempts;
mod contention;
mod exams;
mod job_index;
mod jobs;
mod schema;
mod timing;
mod tokens;
mod users;

pub use attempts::DynamoAttempts;
pub use contention::ContentionRetries;
pub use exams::DynamoExams;
pub use jobs::{CLAIM_CALLS, DynamoJobs};
pub use timing::StoreTiming;
pub use tokens::DynamoTokens;
pub use users::DynamoUsers;

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, DeleteRequest, Put, TransactWriteItem, WriteRequest,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use oes_domain::ports::{StoreError, StoreUnavailable};

/// An item, or an item's key: attribute name to value.
type Item = HashMap<String, AttributeValue>;

/// How many times a write that lost a race with another is started again.
const TRIES: usize = 5;
/// BatchWriteItem takes at most this many requests.
const BATCH: usize = 25;
/// How many times a BatchWriteItem is sent while some of its requests stay unprocessed.
const BATCH_TRIES: usize = 8;

/// A string attribute.
fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// Whether the string attribute `name` of `item` is `value`: a write's own token on the item a
/// refused write returned (was it refused because it had landed already?).
fn has(item: &Item, name: &str, value: &str) -> bool {
    matches!(item.get(name), Some(AttributeValue::S(held)) if held == value)
}

/// A number attribute.
fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// `value` as an item (a struct with its `pk` and `sk`).
fn to_item<T: Serialize>(value: &T, context: &'static str) -> Result<Item, StoreUnavailable> {
    serde_dynamo::to_item(value).map_err(|e| StoreUnavailable::new(context, e))
}

/// `value` as one attribute (an expression's value).
fn to_value<T: Serialize>(
    value: &T,
    context: &'static str,
) -> Result<AttributeValue, StoreUnavailable> {
    serde_dynamo::to_attribute_value(value).map_err(|e| StoreUnavailable::new(context, e))
}

/// An item decoded as `T`.
fn from_item<T: DeserializeOwned>(
    item: Item,
    context: &'static str,
) -> Result<T, StoreUnavailable> {
    serde_dynamo::from_item(item).map_err(|e| StoreUnavailable::new(context, e))
}

/// An update's output, or, when its condition failed, the item as it was then (`None`: there
/// was none), which the request asks for with `ReturnValuesOnConditionCheckFailure::AllOld`;
/// any other error is the store's.
fn update_or_refusal<R>(
    out: Result<UpdateItemOutput, SdkError<UpdateItemError, R>>,
    context: &'static str,
) -> Result<Result<UpdateItemOutput, Option<Item>>, StoreUnavailable>
where
    SdkError<UpdateItemError, R>: std::error::Error + Send + Sync + 'static,
{
    match out {
        Ok(out) => Ok(Ok(out)),
        Err(SdkError::ServiceError(e)) => match e.into_err() {
            UpdateItemError::ConditionalCheckFailedException(failed) => Ok(Err(failed.item)),
            other => Err(StoreUnavailable::new(context, other)),
        },
        Err(e) => Err(StoreUnavailable::new(context, e)),
    }
}

/// A request's output, or `None` if the service refused it for a reason `refused` recognises
/// (a failed condition, a cancelled transaction); any other error is the store's.
fn unless_refused<T, E, R>(
    out: Result<T, SdkError<E, R>>,
    refused: fn(&E) -> bool,
    context: &'static str,
) -> Result<Option<T>, StoreUnavailable>
where
    SdkError<E, R>: std::error::Error + Send + Sync + 'static,
{
    match out {
        Ok(out) => Ok(Some(out)),
        Err(SdkError::ServiceError(e)) if refused(e.err()) => Ok(None),
        Err(e) => Err(StoreUnavailable::new(context, e)),
    }
}

/// A condition expression and the values it names.
type Condition<'a> = Option<(&'a str, Item)>;

/// A condition without values.
fn only(expression: &str) -> Condition<'_> {
    Some((expression, Item::new()))
}

/// The transaction's condition failed (or it met another transaction): read and try again.
struct Cancelled;

/// Whether DynamoDB cancelled a transaction for what [`Cancelled`] stands for: each item's
/// reason is none, its condition failing, or another transaction on it. DynamoDB cancels a
/// transaction for throttling and validation errors too, with the same exception and the reason
/// named per item; the SDK does not retry it.
fn cancelled_by_the_items(error: &TransactWriteItemsError) -> bool {
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = error else {
        return false;
    };
    cancelled
        .cancellation_reasons()
        .iter()
        .filter_map(|reason| reason.code())
        .all(|code| {
            matches!(
                code,
                "None" | "ConditionalCheckFailed" | "TransactionConflict"
            )
        })
}

/// The table every store keeps its items in, and the client that reaches it.
#[derive(Clone)]
struct Table {
    client: Client,
    name: String,
}

impl Table {
    /// The table `name`.
    fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }

    /// One item by key, read consistently.
    async fn get(
        &self,
        key: Item,
        context: &'static str,
    ) -> Result<Option<Item>, StoreUnavailable> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreUnavailable::new(context, e))?;
        Ok(out.item)
    }

    /// One item by key, read consistently, decoded as `T`.
    async fn read<T: DeserializeOwned>(
        &self,
        key: Item,
        context: &'static str,
    ) -> Result<Option<T>, StoreUnavailable> {
        self.get(key, context)
            .await?
            .map(|item| from_item(item, context))
            .transpose()
    }

    /// Deletes the item at `key`, if there is one.
    async fn remove(&self, key: Item, context: &'static str) -> Result<(), StoreUnavailable> {
        self.client
            .delete_item()
            .table_name(&self.name)
            .set_key(Some(key))
            .send()
            .await
            .map_err(|e| StoreUnavailable::new(context, e))?;
        Ok(())
    }

    /// A transaction's put of `item`.
    fn put(
        &self,
        item: Item,
        condition: Condition<'_>,
    ) -> Result<TransactWriteItem, StoreUnavailable> {
        let (expression, values) = condition.unzip();
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(item))
            .set_condition_expression(expression.map(str::to_owned))
            .set_expression_attribute_values(values.filter(|v| !v.is_empty()))
            .build()
            .map_err(|e| StoreUnavailable::new("building a put", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A transaction's delete of the item at `key`.
    fn delete(
        &self,
        key: Item,
        condition: Condition<'_>,
    ) -> Result<TransactWriteItem, StoreUnavailable> {
        let (expression, values) = condition.unzip();
        let delete = Delete::builder()
            .table_name(&self.name)
            .set_key(Some(key))
            .set_condition_expression(expression.map(str::to_owned))
            .set_expression_attribute_values(values.filter(|v| !v.is_empty()))
            .build()
            .map_err(|e| StoreUnavailable::new("building a delete", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// A transaction's check that the item at `key` meets `condition` (nothing written).
    fn check(
        &self,
        key: Item,
        condition: Condition<'_>,
    ) -> Result<TransactWriteItem, StoreUnavailable> {
        let (expression, values) = condition.unzip();
        let check = ConditionCheck::builder()
            .table_name(&self.name)
            .set_key(Some(key))
            .set_condition_expression(expression.map(str::to_owned))
            .set_expression_attribute_values(values.filter(|v| !v.is_empty()))
            .build()
            .map_err(|e| StoreUnavailable::new("building a condition check", e))?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// A transaction's update, `update` being everything but the table.
    fn update(&self, update: UpdateBuilder) -> Result<TransactWriteItem, StoreUnavailable> {
        let update = update
            .table_name(&self.name)
            .build()
            .map_err(|e| StoreUnavailable::new("building an update", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Runs a transaction; one cancelled because a condition failed or another transaction was
    /// on an item is `Ok(Err(Cancelled))`. One cancelled for any other reason (throttling, a
    /// validation error, …) is the store failing, not an answer about the items: `Err`.
    async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        context: &'static str,
    ) -> Result<Result<(), Cancelled>, StoreUnavailable> {
        let out = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        let done = unless_refused(out, cancelled_by_the_items, context)?;
        Ok(done.map(|_| ()).ok_or(Cancelled))
    }

    /// Runs a transaction; a cancellation is `conflict`.
    async fn transact_or<C>(
        &self,
        items: Vec<TransactWriteItem>,
        conflict: C,
        context: &'static str,
    ) -> Result<(), StoreError<C>> {
        self.transact(items, context)
            .await?
            .map_err(|Cancelled| StoreError::Conflict(conflict))
    }

    /// Every item of partition `pk` whose sort key starts with `prefix`, in key order (reversed
    /// if `newest_first`), strongly consistent.
    async fn query_prefix(
        &self,
        pk: String,
        prefix: &str,
        newest_first: bool,
        context: &'static str,
    ) -> Result<Vec<Item>, StoreUnavailable> {
        self.query_page(pk, prefix, newest_first, usize::MAX, None, context)
            .await
    }

    /// A page of partition `pk`: at most `limit` of the items whose sort key starts with
    /// `prefix`, in key order (reversed if `newest_first`), after the key `after` (which need
    /// not be an item's), strongly consistent. Each request asks only for what the page still
    /// lacks, so no more than `limit` items are read.
    async fn query_page(
        &self,
        pk: String,
        prefix: &str,
        newest_first: bool,
        limit: usize,
        after: Option<Item>,
        context: &'static str,
    ) -> Result<Vec<Item>, StoreUnavailable> {
        let mut items = Vec::new();
        let mut start = after;
        while items.len() < limit {
            let out = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", s(pk.as_str()))
                .expression_attribute_values(":prefix", s(prefix))
                .scan_index_forward(!newest_first)
                .set_limit(i32::try_from(limit - items.len()).ok())
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreUnavailable::new(context, e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(last) if !last.is_empty() => start = Some(last),
                _ => break,
            }
        }
        Ok(items)
    }

    /// Deletes the items at `keys`, [`BATCH`] at a time (not atomically).
    async fn delete_all(
        &self,
        keys: Vec<Item>,
        context: &'static str,
    ) -> Result<(), StoreUnavailable> {
        let mut requests = Vec::with_capacity(keys.len());
        for key in keys {
            let request = DeleteRequest::builder()
                .set_key(Some(key))
                .build()
                .map_err(|e| StoreUnavailable::new("building a delete request", e))?;
            requests.push(WriteRequest::builder().delete_request(request).build());
        }
        for chunk in requests.chunks(BATCH) {
            self.batch_write(chunk.to_vec(), context).await?;
        }
        Ok(())
    }

    /// One BatchWriteItem, sending unprocessed requests again with a growing pause.
    async fn batch_write(
        &self,
        mut requests: Vec<WriteRequest>,
        context: &'static str,
    ) -> Result<(), StoreUnavailable> {
        let mut pause = Duration::from_millis(50);
        for tried in 1..=BATCH_TRIES {
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.name, requests)
                .send()
                .await
                .map_err(|e| StoreUnavailable::new(context, e))?;
            requests = out
                .unprocessed_items
                .and_then(|mut left| left.remove(&self.name))
                .unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
            // No pause after the last try: it would only delay the failure (past the API's
            // 10-s budget: the seven pauses before it already take 6.35 s).
            if tried < BATCH_TRIES {
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
        Err(StoreUnavailable::new(
            context,
            format!("requests still unprocessed after {BATCH_TRIES} tries"),
        ))
    }
}
