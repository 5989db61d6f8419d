//! The lanes' switch in memory: what `oes-local`'s pollers and the unit tests honour, held to
//! [`crate::lambda::EventSourceMappings`] by the contract suite.

use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use oes_domain::email::Lane;
use oes_domain::ports::{LaneSwitch, QueueError};

/// Whether each lane is paused; both run at first.
#[derive(Debug, Default)]
pub struct MemoryLanes([AtomicBool; 2]);

impl MemoryLanes {
    fn flag(&self, lane: Lane) -> &AtomicBool {
        match lane {
            Lane::Priority => &self.0[0],
            Lane::Bulk => &self.0[1],
        }
    }
}

#[async_trait]
impl LaneSwitch for MemoryLanes {
    async fn pause(&self, lane: Lane) -> Result<(), QueueError> {
        self.flag(lane).store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn resume(&self, lane: Lane) -> Result<(), QueueError> {
        self.flag(lane).store(false, Ordering::SeqCst);
        Ok(())
    }

    async fn is_paused(&self, lane: Lane) -> Result<bool, QueueError> {
        Ok(self.flag(lane).load(Ordering::SeqCst))
    }
}
