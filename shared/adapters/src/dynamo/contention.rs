//! [`ContentionRetries`]: the SDK's retries for what DynamoDB refuses under contention and its
//! standard classifier does not retry.
//!
//! - A `TransactWriteItems` cancelled only for throughput (`ThrottlingError`,
//!   `ProvisionedThroughputExceeded`) or for another transaction on one of its items
//!   (`TransactionConflict`): nothing was applied, and its idempotency token (the SDK sets one)
//!   makes the retry safe. A cancellation with any other reason — a failed condition above all —
//!   is an answer, and is not retried.
//! - A single-item write (`PutItem`, `UpdateItem`, `DeleteItem`) refused with
//!   `TransactionConflictException`: a transaction held the item at that moment.
//!
//! Without them the first throttled start or submit on an exam day answered 503, while a
//! single-item call met the same throttling with three tries; and an answer save that met its
//! attempt's submit answered 503. They are retried as throttling (backoff, the retry budget's
//! throttling cost) or as transient, within the client's attempts and operation timeout.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_smithy_runtime_api::client::interceptors::context::{Error, InterceptorContext};
use aws_smithy_runtime_api::client::orchestrator::OrchestratorError;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};

/// See the module's documentation.
#[derive(Debug, Default, Clone, Copy)]
pub struct ContentionRetries;

impl ClassifyRetry for ContentionRetries {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(error)) = ctx.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        match OrchestratorError::as_operation_error(error) {
            Some(error) => classify(error),
            None => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "DynamoDB contention"
    }
}

fn classify(error: &Error) -> RetryAction {
    if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
        error.downcast_ref::<TransactWriteItemsError>()
    {
        let reasons = cancelled.cancellation_reasons().iter().map(|r| r.code());
        return cancellation(reasons);
    }
    let code = error
        .downcast_ref::<UpdateItemError>()
        .map(ProvideErrorMetadata::code)
        .or_else(|| {
            error
                .downcast_ref::<PutItemError>()
                .map(ProvideErrorMetadata::code)
        })
        .or_else(|| {
            error
                .downcast_ref::<DeleteItemError>()
                .map(ProvideErrorMetadata::code)
        })
        .flatten();
    if code == Some("TransactionConflictException") {
        RetryAction::transient_error()
    } else {
        RetryAction::NoActionIndicated
    }
}

/// What a transaction cancelled with these reason codes (one per item; `None` or no code for
/// an item that was fine) calls for.
fn cancellation<'a>(reasons: impl Iterator<Item = Option<&'a str>>) -> RetryAction {
    let mut throttled = false;
    let mut conflicted = false;
    for code in reasons.flatten() {
        match code {
            "None" => {}
            "ThrottlingError" | "ProvisionedThroughputExceeded" => throttled = true,
            "TransactionConflict" => conflicted = true,
            // A failed condition, a validation error, an item too large …: an answer.
            _ => return RetryAction::NoActionIndicated,
        }
    }
    if throttled {
        RetryAction::throttling_error()
    } else if conflicted {
        RetryAction::transient_error()
    } else {
        RetryAction::NoActionIndicated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(codes: &[Option<&'static str>]) -> RetryAction {
        cancellation(codes.iter().copied())
    }

    #[test]
    fn a_transaction_cancelled_for_throughput_or_a_conflict_only_is_tried_again() {
        assert_eq!(
            of(&[Some("None"), Some("ThrottlingError")]),
            RetryAction::throttling_error()
        );
        assert_eq!(
            of(&[Some("ProvisionedThroughputExceeded"), None]),
            RetryAction::throttling_error()
        );
        assert_eq!(
            of(&[Some("TransactionConflict"), Some("None")]),
            RetryAction::transient_error()
        );
        assert_eq!(
            of(&[Some("TransactionConflict"), Some("ThrottlingError")]),
            RetryAction::throttling_error()
        );
    }

    #[test]
    fn a_transaction_whose_condition_failed_is_an_answer() {
        for codes in [
            &[Some("ConditionalCheckFailed"), Some("ThrottlingError")][..],
            &[Some("TransactionConflict"), Some("ConditionalCheckFailed")],
            &[Some("ValidationError")],
            &[Some("None"), None],
            &[],
        ] {
            assert_eq!(of(codes), RetryAction::NoActionIndicated, "{codes:?}");
        }
    }
}
