//! Queues over other queues, whose calls a test slows down, watches or answers itself through
//! [`QueueHooks`]: the doubles of the queue tests, without each writing out every pass-through.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oes_domain::ports::{
    MessageQueues, NewMessage, QueueCounts, QueueError, QueueName, ReceivedMessage,
};

/// What a [`Hooked`] does before it passes a call on. Each hook lets the call through unchanged
/// unless a double overrides it.
#[async_trait]
pub trait QueueHooks: Send + Sync {
    /// Before each send, receive, delete and visibility change (not the counts, nor a purge).
    async fn each_call(&self) {}
    /// Before a send.
    async fn send(&self, _queue: QueueName, _message: &NewMessage) {}
    /// Before a receive (after [`each_call`](Self::each_call)): `Some` is its answer, and the
    /// queues are not asked.
    async fn receive(&self, _queue: QueueName, _wait: Duration) -> Option<Vec<ReceivedMessage>> {
        None
    }
}

/// `queues` with `hooks` before their calls.
pub struct Hooked<H> {
    /// The queues the calls reach.
    pub queues: Arc<dyn MessageQueues>,
    /// What runs first.
    pub hooks: H,
}

impl<H> Hooked<H> {
    /// `queues` with `hooks`.
    pub fn new(queues: Arc<dyn MessageQueues>, hooks: H) -> Self {
        Self { queues, hooks }
    }
}

#[async_trait]
impl<H: QueueHooks> MessageQueues for Hooked<H> {
    fn name(&self, queue: QueueName) -> &str {
        self.queues.name(queue)
    }
    async fn send(&self, queue: QueueName, message: &NewMessage) -> Result<String, QueueError> {
        self.hooks.each_call().await;
        self.hooks.send(queue, message).await;
        self.queues.send(queue, message).await
    }
    async fn receive(
        &self,
        queue: QueueName,
        max: u32,
        visibility: Option<u32>,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        self.hooks.each_call().await;
        if let Some(answer) = self.hooks.receive(queue, wait).await {
            return Ok(answer);
        }
        self.queues.receive(queue, max, visibility, wait).await
    }
    async fn delete(&self, queue: QueueName, receipt_handle: &str) -> Result<(), QueueError> {
        self.hooks.each_call().await;
        self.queues.delete(queue, receipt_handle).await
    }
    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt_handle: &str,
        seconds: u32,
    ) -> Result<(), QueueError> {
        self.hooks.each_call().await;
        self.queues
            .change_visibility(queue, receipt_handle, seconds)
            .await
    }
    async fn counts(&self, queue: QueueName) -> Result<QueueCounts, QueueError> {
        self.queues.counts(queue).await
    }
    async fn purge(&self, queue: QueueName) -> Result<(), QueueError> {
        self.queues.purge(queue).await
    }
}
