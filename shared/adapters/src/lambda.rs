//! [`EventSourceMappings`]: the lanes' switch in AWS. Each lane reaches the worker through its
//! own event source mapping (SAM's `EmailWorkerFunction<Event>`); pausing a lane disables its
//! mapping (`UpdateEventSourceMapping` with `Enabled: false`), so Lambda stops receiving from
//! it: its messages wait on the lane and no attempt is used. Resuming enables it again.

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use oes_domain::email::Lane;
use oes_domain::ports::{BoxError, LaneSwitch, QueueError};

/// The two lanes' event source mappings, by UUID.
#[derive(Debug, Clone)]
pub struct EventSourceMappings {
    client: Client,
    priority: String,
    bulk: String,
}

impl EventSourceMappings {
    /// The mappings `priority` and `bulk` (their UUIDs: what `!Ref` of a mapping gives).
    pub fn new(client: Client, priority: impl Into<String>, bulk: impl Into<String>) -> Self {
        Self {
            client,
            priority: priority.into(),
            bulk: bulk.into(),
        }
    }

    fn uuid(&self, lane: Lane) -> &str {
        match lane {
            Lane::Priority => &self.priority,
            Lane::Bulk => &self.bulk,
        }
    }

    async fn enable(&self, lane: Lane, enabled: bool) -> Result<(), QueueError> {
        self.client
            .update_event_source_mapping()
            .uuid(self.uuid(lane))
            .enabled(enabled)
            .send()
            .await
            .map_err(|e| failed("switching a lane's event source mapping", e))?;
        Ok(())
    }
}

fn failed<E: Into<BoxError>>(context: &'static str, error: E) -> QueueError {
    QueueError {
        context,
        source: error.into(),
    }
}

#[async_trait]
impl LaneSwitch for EventSourceMappings {
    async fn pause(&self, lane: Lane) -> Result<(), QueueError> {
        self.enable(lane, false).await
    }

    async fn resume(&self, lane: Lane) -> Result<(), QueueError> {
        self.enable(lane, true).await
    }

    async fn is_paused(&self, lane: Lane) -> Result<bool, QueueError> {
        let mapping = self
            .client
            .get_event_source_mapping()
            .uuid(self.uuid(lane))
            .send()
            .await
            .map_err(|e| failed("reading a lane's event source mapping", e))?;
        // `Disabling` becomes `Disabled` within seconds; `Enabling`, `Updating` and the rest
        // receive (or are about to).
        Ok(matches!(mapping.state(), Some("Disabled" | "Disabling")))
    }
}
