//! `StoreLatency`: how long each DynamoDB operation took, retries included, with the dimension
//! `Operation` (`GetItem`, `Query`, `TransactWriteItems`, …). An SDK interceptor on the one
//! DynamoDB client every store adapter shares, so no adapter method has to time itself.

use std::time::Instant;

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_types::config_bag::{Storable, StoreReplace};

use oes_domain::metrics::{self, STORE_LATENCY};

/// Times every operation of the client it is added to.
#[derive(Debug, Default)]
pub struct StoreTiming;

/// When the operation started (kept in the operation's own config bag).
#[derive(Debug, Clone, Copy)]
struct Started(Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

impl Intercept for StoreTiming {
    fn name(&self) -> &'static str {
        "StoreTiming"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started(Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let (Some(Started(started)), Some(operation)) =
            (cfg.load::<Started>(), cfg.load::<Metadata>())
        {
            metrics::duration(
                STORE_LATENCY,
                started.elapsed(),
                Some(("Operation", operation.name())),
            );
        }
        Ok(())
    }
}
