//! [`QueryCounter`]: what each DynamoDB `Query` of a client read, counted by an SDK interceptor,
//! so a test sees the store's real reads (however an adapter pages) without wrapping a port; and
//! exam-api over a client that counts them.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::AfterDeserializationInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use oes_domain::cache::CacheAside;
use oes_runtime::wiring::ApiAdapters;

use crate::TestEnv;
use crate::exams::ExamHarness;

/// The items each `Query` read (its `ScannedCount`), in order.
#[derive(Debug, Clone, Default)]
pub struct QueryCounter(Arc<Mutex<Vec<i32>>>);

impl QueryCounter {
    /// The items each `Query` read since the last call; forgets them.
    pub fn take(&self) -> Vec<i32> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Intercept for QueryCounter {
    fn name(&self) -> &'static str {
        "QueryCounter"
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let query = context
            .output_or_error()
            .ok()
            .and_then(|output| output.downcast_ref::<QueryOutput>());
        if let Some(query) = query {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(query.scanned_count);
        }
        Ok(())
    }
}

impl TestEnv {
    /// exam-api over the real adapters, reading through `cache`, with a DynamoDB client that
    /// counts what each of its `Query` calls reads.
    pub fn exam_harness_counting_queries(&self, cache: CacheAside) -> (ExamHarness, QueryCounter) {
        let (adapters, counter) = self.adapters_counting_queries(cache);
        (ExamHarness::over(&adapters), counter)
    }

    /// The real adapters, reading through `cache`, with a DynamoDB client that counts what each
    /// of its `Query` calls reads.
    pub fn adapters_counting_queries(&self, cache: CacheAside) -> (ApiAdapters, QueryCounter) {
        let counter = QueryCounter::default();
        let dynamodb = crate::dynamodb_with(&self.clients.dynamodb(), counter.clone());
        let clients = self.clients.clone().with_dynamodb(dynamodb);
        let mut adapters = ApiAdapters::aws(&clients, &self.api_config())
            .unwrap_or_else(|e| panic!("adapters: {e}"));
        adapters.cache = cache;
        (adapters, counter)
    }
}
