//! [`EventSourceMappings`]: the lanes' switch in AWS. Each lane reaches the worker through its
//! own event source mapping (SAM's `EmailWorkerFunction<Event>`); pausing a lane disables its
//! mapping (`UpdateEventSourceMapping` with `Enabled: false`), so Lambda stops receiving from
//! it: its messages wait on the lane and no attempt is used. Resuming enables it again.
//!
//! A mapping just switched is `Disabling` or `Enabling` for a few seconds, and Lambda refuses to
//! update it meanwhile (`ResourceInUseException`): a second click on "pause", or a resume right
//! after a pause. A switch then reads where the mapping is going: already there, it is done;
//! else it waits for the mapping to settle, for at most [`SETTLE`].

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::operation::update_event_source_mapping::UpdateEventSourceMappingError;
use oes_domain::email::Lane;
use oes_domain::ports::{BoxError, LaneSwitch, QueueError};
use tokio::time::Instant;

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
        let settled_by = Instant::now() + SETTLE;
        loop {
            let switched = self
                .client
                .update_event_source_mapping()
                .uuid(self.uuid(lane))
                .enabled(enabled)
                .send()
                .await;
            match switched {
                Ok(_) => return Ok(()),
                Err(error) if still_switching(&error) && Instant::now() < settled_by => {
                    // Going where it was asked to go (the same switch twice): done.
                    if self.heading(lane).await? == Some(enabled) {
                        return Ok(());
                    }
                    tokio::time::sleep(LOOK_AGAIN).await;
                }
                Err(error) => {
                    return Err(failed("switching a lane's event source mapping", error));
                }
            }
        }
    }

    /// Whether the lane's mapping is enabled or on its way there (`Some(true)`), disabled or on
    /// its way there (`Some(false)`), or neither (`Creating`, `Updating`, `Deleting`).
    async fn heading(&self, lane: Lane) -> Result<Option<bool>, QueueError> {
        let mapping = self
            .client
            .get_event_source_mapping()
            .uuid(self.uuid(lane))
            .send()
            .await
            .map_err(|e| failed("reading a lane's event source mapping", e))?;
        Ok(match mapping.state() {
            Some("Enabled" | "Enabling") => Some(true),
            Some("Disabled" | "Disabling") => Some(false),
            _ => None,
        })
    }
}

/// How long a switch waits for a mapping still moving from an earlier switch: a few seconds
/// in AWS, well inside admin-api's 10 s.
const SETTLE: Duration = Duration::from_secs(5);

/// How often a waiting switch tries again.
const LOOK_AGAIN: Duration = Duration::from_millis(500);

/// Whether Lambda refused the update because the mapping is still switching, or being updated.
fn still_switching<R>(error: &SdkError<UpdateEventSourceMappingError, R>) -> bool {
    error
        .as_service_error()
        .is_some_and(|e| e.is_resource_in_use_exception() || e.is_resource_conflict_exception())
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
        // `Disabling` becomes `Disabled` within seconds; `Enabling`, `Updating` and the rest
        // receive (or are about to).
        Ok(self.heading(lane).await? == Some(false))
    }
}
