//! [`StaleReads`]: a DynamoDB client whose reads show every item that names a token
//! (`token_hash`, a user's valid token of a purpose) naming another one, as if another request
//! had stored a newer token in its place between the read and the write that follows. A write
//! conditioned on what was read then loses the race, every time: no test can time that many real
//! races, and moto does not lock its tables, so this is how a test meets a write that loses them
//! all.

use aws_sdk_dynamodb::config::interceptors::FinalizerInterceptorContextMut;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::types::AttributeValue;

/// Shows a token's place naming another token in every read.
#[derive(Debug, Clone, Default)]
pub struct StaleReads;

impl StaleReads {
    /// A client like `client` whose reads are all stale.
    pub fn client(client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        crate::dynamodb_with(client, Self)
    }
}

impl Intercept for StaleReads {
    fn name(&self) -> &'static str {
        "StaleReads"
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Ok(answer)) = context.output_or_error_mut() else {
            return Ok(());
        };
        let named = answer
            .downcast_mut::<GetItemOutput>()
            .and_then(|read| read.item.as_mut())
            .and_then(|item| item.get_mut("token_hash"));
        if let Some(token_hash) = named {
            *token_hash = AttributeValue::S("0".repeat(64));
        }
        Ok(())
    }
}
