//! DynamoDB clients whose calls are answered as DynamoDB answers them under contention: a
//! transaction it cancelled (HTTP 400, `TransactionCanceledException`, one reason per item), a
//! write to an item a transaction holds. moto neither throttles nor meets concurrent
//! transactions.
//!
//! - [`ThrottledTransactions`]: one reason `ThrottlingError`. The transaction still reaches moto
//!   (only its answer is replaced), so a test looks at what the adapter answers, not at what the
//!   table holds after.
//! - [`Refused`]: the next calls of one operation refused as under contention — transactions
//!   cancelled for `TransactionConflict` or `ThrottlingError`, `UpdateItem`s answered
//!   `TransactionConflictException` — writing nothing, as DynamoDB's refused ones.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_runtime_api::http::StatusCode;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

/// What DynamoDB answers a transaction of two items, the second throttled.
const THROTTLED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [None, ThrottlingError]","CancellationReasons":[{"Code":"None"},{"Code":"ThrottlingError","Message":"Throughput exceeds the current capacity for one or more global secondary indexes. DynamoDB is automatically scaling your index so please be patient."}]}"#;

/// The answer a cancelled transaction gets, kept for when it comes (the request is gone by
/// then).
#[derive(Debug, Clone)]
struct Cancel(&'static str);

impl Storable for Cancel {
    type Storer = StoreReplace<Self>;
}

/// Whether `request` is a `TransactWriteItems`.
fn is_transaction(request: &aws_smithy_runtime_api::http::Request) -> bool {
    request
        .headers()
        .get("x-amz-target")
        .is_some_and(|target| target.ends_with(".TransactWriteItems"))
}

/// Replaces the answer of a request marked [`Cancel`] by its cancellation.
fn answer_cancelled(
    context: &mut BeforeDeserializationInterceptorContextMut<'_>,
    cfg: &ConfigBag,
) -> Result<(), BoxError> {
    if let Some(Cancel(answer)) = cfg.load::<Cancel>() {
        let response = context.response_mut();
        *response.status_mut() = StatusCode::try_from(400)?;
        *response.body_mut() = SdkBody::from(*answer);
    }
    Ok(())
}

/// Answers every transaction as throttled.
#[derive(Debug, Clone, Default)]
pub struct ThrottledTransactions;

impl ThrottledTransactions {
    /// A client like `client` whose every transaction is answered as throttled.
    pub fn client(client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        crate::dynamodb_with(client, Self)
    }
}

impl Intercept for ThrottledTransactions {
    fn name(&self) -> &'static str {
        "ThrottledTransactions"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if is_transaction(context.request()) {
            cfg.interceptor_state().store_put(Cancel(THROTTLED));
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        answer_cancelled(context, cfg)
    }
}

/// What DynamoDB answers a transaction of two items cancelled because another transaction was
/// writing the first item at the same moment.
const CONFLICT: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict, None]","CancellationReasons":[{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"},{"Code":"None"}]}"#;

/// What DynamoDB answers a single-item write to an item a transaction holds.
const WRITE_CONFLICT: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","message":"Transaction is ongoing for the item"}"#;

/// The `x-amz-target` an operation was serialized with, before [`Refused`] rewrote it.
#[derive(Debug, Clone)]
struct Target(String);

impl Storable for Target {
    type Storer = StoreReplace<Self>;
}

/// Refuses the next calls of one operation (as many as armed) as DynamoDB does under
/// contention, writing nothing: each reaches moto as a read (`DescribeLimits`), and its answer
/// is replaced. Unlike [`ThrottledTransactions`], the table is as if the call never came.
#[derive(Debug, Clone)]
pub struct Refused {
    left: std::sync::Arc<std::sync::atomic::AtomicU32>,
    /// The operation refused (the end of its `x-amz-target`).
    operation: &'static str,
    /// DynamoDB's answer.
    answer: &'static str,
}

impl Refused {
    fn client(
        client: &aws_sdk_dynamodb::Client,
        times: u32,
        operation: &'static str,
        answer: &'static str,
    ) -> aws_sdk_dynamodb::Client {
        let left = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(times));
        crate::dynamodb_with(
            client,
            Self {
                left,
                operation,
                answer,
            },
        )
    }

    /// A client like `client` whose next `times` transactions meet another one
    /// (`TransactionConflict`).
    pub fn conflicting_transactions(
        client: &aws_sdk_dynamodb::Client,
        times: u32,
    ) -> aws_sdk_dynamodb::Client {
        Self::client(client, times, ".TransactWriteItems", CONFLICT)
    }

    /// A client like `client` whose next `times` transactions are throttled (`ThrottlingError`).
    pub fn throttled_transactions(
        client: &aws_sdk_dynamodb::Client,
        times: u32,
    ) -> aws_sdk_dynamodb::Client {
        Self::client(client, times, ".TransactWriteItems", THROTTLED)
    }

    /// A client like `client` whose next `times` `UpdateItem`s find their item held by a
    /// transaction (`TransactionConflictException`).
    pub fn conflicting_updates(
        client: &aws_sdk_dynamodb::Client,
        times: u32,
    ) -> aws_sdk_dynamodb::Client {
        Self::client(client, times, ".UpdateItem", WRITE_CONFLICT)
    }
}

impl Intercept for Refused {
    fn name(&self) -> &'static str {
        "Refused"
    }

    fn read_after_serialization(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(target) = context.request().headers().get("x-amz-target") {
            cfg.interceptor_state().store_put(Target(target.to_owned()));
        }
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        context: &mut aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextMut<
            '_,
        >,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Each attempt afresh: a retry goes out as the operation it is (an earlier attempt's
        // rewrite of the target may still be on the request), and is answered as it is.
        cfg.interceptor_state().unset::<Cancel>();
        let Some(Target(target)) = cfg.load::<Target>().cloned() else {
            return Ok(());
        };
        context
            .request_mut()
            .headers_mut()
            .insert("x-amz-target", target.clone());
        let refused = target.ends_with(self.operation);
        let armed = || {
            self.left
                .fetch_update(
                    std::sync::atomic::Ordering::SeqCst,
                    std::sync::atomic::Ordering::SeqCst,
                    |n| n.checked_sub(1),
                )
                .is_ok()
        };
        if refused && armed() {
            // Sent as a read that writes nothing (the body stays as it was signed).
            context.request_mut().headers_mut().insert(
                "x-amz-target",
                "DynamoDB_20120810.DescribeLimits".to_owned(),
            );
            cfg.interceptor_state().store_put(Cancel(self.answer));
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        answer_cancelled(context, cfg)
    }
}
