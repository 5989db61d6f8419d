//! [`LoseAnswers`]: a DynamoDB client whose next writes (`PutItem`, `UpdateItem`, `DeleteItem`)
//! land in the store and then lose their answers, as a timeout after the write would: the SDK
//! sends the same request again, and the adapter sees only the second answer. moto answers in
//! time, so this is how a test meets the retried write a slow store causes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_dynamodb::config::interceptors::FinalizerInterceptorContextMut;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::{BoxError, ConnectorError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemOutput;
use aws_sdk_dynamodb::operation::put_item::PutItemOutput;
use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
use aws_smithy_runtime_api::client::orchestrator::OrchestratorError;

/// Loses the answers of the next writes that succeeded (as many as armed).
#[derive(Debug, Clone, Default)]
pub struct LoseAnswers(Arc<AtomicU32>);

impl LoseAnswers {
    /// A client like `client` whose next `times` successful writes' answers are lost.
    pub fn client(client: &aws_sdk_dynamodb::Client, times: u32) -> aws_sdk_dynamodb::Client {
        crate::dynamodb_with(client, Self(Arc::new(AtomicU32::new(times))))
    }

    /// A client like `client` that loses no answer until [`Self::arm`]ed, and its switch.
    pub fn unarmed(client: &aws_sdk_dynamodb::Client) -> (aws_sdk_dynamodb::Client, Self) {
        let switch = Self::default();
        (crate::dynamodb_with(client, switch.clone()), switch)
    }

    /// Loses the answers of the next `times` successful writes (zero: none).
    pub fn arm(&self, times: u32) {
        self.0.store(times, Ordering::SeqCst);
    }
}

impl Intercept for LoseAnswers {
    fn name(&self) -> &'static str {
        "LoseAnswers"
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(answer) = context.output_or_error_mut() else {
            return Ok(());
        };
        let landed = answer.as_ref().is_ok_and(|output| {
            output.downcast_ref::<UpdateItemOutput>().is_some()
                || output.downcast_ref::<DeleteItemOutput>().is_some()
                || output.downcast_ref::<PutItemOutput>().is_some()
        });
        let armed = || {
            self.0
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        };
        if landed && armed() {
            *answer = Err(OrchestratorError::connector(ConnectorError::timeout(
                "the test lost the answer to a write that landed".into(),
            )));
        }
        Ok(())
    }
}
