//! Pausing and resuming a lane: in AWS by disabling and enabling the event source mapping that
//! feeds it to the worker, in `oes-local` by the lane's poller. While a lane is paused nothing
//! receives from it: its messages wait, and no attempt is used.

use async_trait::async_trait;

use super::QueueError;
use crate::email::Lane;

/// Whether the worker receives from each lane.
#[async_trait]
pub trait LaneSwitch: Send + Sync {
    /// Stops the worker receiving from `lane` (pausing a paused lane changes nothing). Batches in
    /// hand finish; nothing more is received until [`LaneSwitch::resume`].
    async fn pause(&self, lane: Lane) -> Result<(), QueueError>;
    /// Lets the worker receive from `lane` again (resuming a running lane changes nothing).
    async fn resume(&self, lane: Lane) -> Result<(), QueueError>;
    /// Whether `lane` is paused, or being paused.
    async fn is_paused(&self, lane: Lane) -> Result<bool, QueueError>;
}
