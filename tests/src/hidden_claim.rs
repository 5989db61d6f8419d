//! [`HiddenClaim`]: a DynamoDB client whose first read of an address's claim (`EMAIL#…`) finds
//! nothing, as if it had been made just before another request claimed the address: a sign-up
//! between a read and the write that follows it. moto does not lock its tables and no test can
//! time such a race; this is how a test meets it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_dynamodb::config::interceptors::FinalizerInterceptorContextMut;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
use aws_sdk_dynamodb::types::AttributeValue;

/// Hides the address claim from the first read that finds one.
#[derive(Debug, Clone, Default)]
pub struct HiddenClaim(Arc<AtomicBool>);

impl HiddenClaim {
    /// A client like `client` whose first read of an address claim finds nothing.
    pub fn client(client: &aws_sdk_dynamodb::Client) -> aws_sdk_dynamodb::Client {
        crate::dynamodb_with(client, Self::default())
    }
}

impl Intercept for HiddenClaim {
    fn name(&self) -> &'static str {
        "HiddenClaim"
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
        let Some(read) = answer.downcast_mut::<GetItemOutput>() else {
            return Ok(());
        };
        let claim = read.item.as_ref().is_some_and(|item| {
            matches!(item.get("pk"), Some(AttributeValue::S(pk)) if pk.starts_with("EMAIL#"))
        });
        if claim && !self.0.swap(true, Ordering::SeqCst) {
            read.item = None;
        }
        Ok(())
    }
}
