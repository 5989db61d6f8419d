//! The twin of SQS for the pipeline's three queues ([`MessageQueues`]): what the embedded mode,
//! unit tests and simulations run on. It keeps the SQS behaviour the pipeline depends on — and
//! the contract suite (`tests/tests/integration/message_queues.rs`) checks each point against
//! SQS in the emulator:
//!
//! - a received message is hidden for the visibility timeout (the queue's, or the receive's),
//!   then delivered again unless it was deleted; each delivery has a new receipt handle and a
//!   higher receive count; only the latest handle deletes (a stale one deletes nothing);
//! - `ChangeMessageVisibility` hides a message in flight for that long from now (0: at once);
//! - `DelaySeconds` hides a new message for that long;
//! - a lane's redrive policy: a message received `maxReceiveCount` times and not deleted moves to
//!   the dead-letter queue, keeping its id, body and attributes, when the next receive finds it;
//! - retention: a message older than its queue's retention period (4 days for the lanes, 14 for
//!   the dead-letter queue) is gone, counted from when it was first sent — a dead letter's age
//!   counts from its send to the lane, as on a standard queue;
//! - receives take the longest-waiting visible messages first and put them at the back, so
//!   repeated receives with a zero visibility timeout walk the whole queue (SQS samples at
//!   random; the pipeline never relies on an order).
//!
//! Time is Tokio's, so tests can pause and advance it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use oes_domain::ports::{
    MessageQueues, NewMessage, QueueCounts, QueueError, QueueName, ReceivedMessage,
};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::lock;
use crate::resources::{BULK_QUEUE, DEAD_LETTER_QUEUE, PRIORITY_QUEUE, QueueDef};

/// A message with the bookkeeping SQS keeps.
#[derive(Debug, Clone)]
struct Stored {
    message_id: String,
    body: String,
    attributes: BTreeMap<String, String>,
    receive_count: u32,
    /// The latest delivery's handle (`None` before the first).
    receipt: Option<String>,
    /// Hidden until then (a delay, or a visibility timeout).
    visible_at: Instant,
    /// When it was first sent (to a lane, for a message the redrive policy moved).
    sent_at: Instant,
}

impl Stored {
    fn in_flight(&self, now: Instant) -> bool {
        self.receipt.is_some() && self.visible_at > now
    }

    fn delayed(&self, now: Instant) -> bool {
        self.receipt.is_none() && self.visible_at > now
    }
}

struct Queue {
    def: QueueDef,
    messages: VecDeque<Stored>,
}

impl Queue {
    /// Drops the messages past the queue's retention period.
    fn expire(&mut self, now: Instant) {
        let kept = seconds(self.def.retention);
        self.messages.retain(|m| now < m.sent_at + kept);
    }
}

/// The in-memory twin of the pipeline's SQS queues.
pub struct MemoryQueues {
    queues: Mutex<[Queue; 3]>,
    /// The queues' names, by [`QueueName::index`].
    names: [String; 3],
    /// Woken on every send and visibility change, for waiting receives.
    changed: Notify,
}

impl Default for MemoryQueues {
    fn default() -> Self {
        Self::named("memory")
    }
}

impl MemoryQueues {
    /// Empty queues named `<prefix>-email-priority`, `<prefix>-email-bulk` and
    /// `<prefix>-email-dlq`, as provisioning names the real ones.
    pub fn named(prefix: &str) -> Self {
        let defs = [PRIORITY_QUEUE, BULK_QUEUE, DEAD_LETTER_QUEUE];
        Self {
            names: defs.map(|def| format!("{prefix}-{}", def.suffix)),
            queues: Mutex::new(defs.map(|def| Queue {
                def,
                messages: VecDeque::new(),
            })),
            changed: Notify::new(),
        }
    }
}

fn seconds(n: u32) -> Duration {
    Duration::from_secs(u64::from(n))
}

fn invalid(context: &'static str, detail: impl Into<String>) -> QueueError {
    QueueError {
        context,
        source: detail.into().into(),
    }
}

impl MemoryQueues {
    /// Empty queues, shared.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Takes up to `max` visible messages of `queue` now, moving those past the redrive policy
    /// to the dead-letter queue first.
    fn take(&self, queue: QueueName, max: usize, visibility: Option<u32>) -> Vec<ReceivedMessage> {
        let now = Instant::now();
        let mut queues = lock(&self.queues);
        let [priority, bulk, dead] = &mut *queues;
        let (this, mut dead) = match queue {
            QueueName::Priority => (priority, Some(dead)),
            QueueName::Bulk => (bulk, Some(dead)),
            QueueName::DeadLetter => (dead, None),
        };
        this.expire(now);
        let hide = seconds(visibility.unwrap_or(this.def.visibility_timeout));
        let mut batch = Vec::new();
        let mut kept = VecDeque::with_capacity(this.messages.len());
        let mut taken = Vec::new();
        while let Some(mut message) = this.messages.pop_front() {
            if batch.len() >= max || message.visible_at > now {
                kept.push_back(message);
                continue;
            }
            if let (Some(max_receives), Some(dead)) = (this.def.max_receive_count, dead.as_mut())
                && message.receive_count >= max_receives
            {
                tracing::error!(message_id = %message.message_id, "message moved to the dead-letter queue by the redrive policy");
                message.receipt = None;
                message.visible_at = now;
                dead.messages.push_back(message);
                continue;
            }
            message.receive_count += 1;
            let receipt = format!("{}#{}", message.message_id, uuid::Uuid::new_v4());
            message.receipt = Some(receipt.clone());
            message.visible_at = now + hide;
            batch.push(ReceivedMessage {
                message_id: message.message_id.clone(),
                receipt_handle: receipt,
                body: message.body.clone(),
                receive_count: message.receive_count,
                attributes: message.attributes.clone(),
            });
            taken.push(message);
        }
        kept.extend(taken);
        this.messages = kept;
        batch
    }

    /// When the next message of `queue` becomes visible, if one is hidden.
    fn next_visible(&self, queue: QueueName) -> Option<Instant> {
        lock(&self.queues)[queue.index()]
            .messages
            .iter()
            .map(|m| m.visible_at)
            .min()
    }

    fn with_delivery<T>(
        &self,
        queue: QueueName,
        receipt: &str,
        f: impl FnOnce(&mut VecDeque<Stored>, usize) -> T,
    ) -> Option<T> {
        let mut queues = lock(&self.queues);
        let messages = &mut queues[queue.index()].messages;
        let index = messages
            .iter()
            .position(|m| m.receipt.as_deref() == Some(receipt))?;
        Some(f(messages, index))
    }
}

#[async_trait]
impl MessageQueues for MemoryQueues {
    fn name(&self, queue: QueueName) -> &str {
        self.names[queue.index()].as_str()
    }

    async fn send(&self, queue: QueueName, message: &NewMessage) -> Result<String, QueueError> {
        if message.delay_seconds > 900 {
            return Err(invalid(
                "sending a message",
                format!("DelaySeconds {} is above 900", message.delay_seconds),
            ));
        }
        let message_id = uuid::Uuid::new_v4().to_string();
        lock(&self.queues)[queue.index()]
            .messages
            .push_back(Stored {
                message_id: message_id.clone(),
                body: message.body.clone(),
                attributes: message.attributes.clone(),
                receive_count: 0,
                receipt: None,
                visible_at: Instant::now() + seconds(message.delay_seconds),
                sent_at: Instant::now(),
            });
        self.changed.notify_waiters();
        Ok(message_id)
    }

    async fn receive(
        &self,
        queue: QueueName,
        max: u32,
        visibility: Option<u32>,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let max = usize::try_from(max.clamp(1, 10)).unwrap_or(10);
        let deadline = Instant::now() + wait.min(Duration::from_secs(20));
        loop {
            let changed = self.changed.notified();
            let batch = self.take(queue, max, visibility);
            let now = Instant::now();
            if !batch.is_empty() || now >= deadline {
                return Ok(batch);
            }
            let until = self
                .next_visible(queue)
                .filter(|at| *at > now)
                .map_or(deadline, |at| at.min(deadline));
            tokio::select! {
                () = changed => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }

    async fn delete(&self, queue: QueueName, receipt_handle: &str) -> Result<(), QueueError> {
        // A stale handle (the message was received again since) deletes nothing, as on SQS.
        self.with_delivery(queue, receipt_handle, |messages, index| {
            messages.remove(index);
        });
        Ok(())
    }

    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt_handle: &str,
        seconds_from_now: u32,
    ) -> Result<(), QueueError> {
        let now = Instant::now();
        let changed = self.with_delivery(queue, receipt_handle, |messages, index| {
            let message = &mut messages[index];
            if !message.in_flight(now) {
                return false;
            }
            message.visible_at = now + seconds(seconds_from_now.min(43_200));
            true
        });
        if changed != Some(true) {
            return Err(invalid(
                "changing a message's visibility",
                "the message is not in flight (a stale or unknown receipt handle)",
            ));
        }
        self.changed.notify_waiters();
        Ok(())
    }

    async fn counts(&self, queue: QueueName) -> Result<QueueCounts, QueueError> {
        let now = Instant::now();
        let mut queues = lock(&self.queues);
        queues[queue.index()].expire(now);
        let messages = &queues[queue.index()].messages;
        let count = |keep: &dyn Fn(&Stored) -> bool| {
            i64::try_from(messages.iter().filter(|m| keep(m)).count()).unwrap_or(i64::MAX)
        };
        Ok(QueueCounts {
            queue: self.name(queue).to_owned(),
            visible: count(&|m| m.visible_at <= now),
            in_flight: count(&|m| m.in_flight(now)),
            delayed: count(&|m| m.delayed(now)),
        })
    }

    async fn purge(&self, queue: QueueName) -> Result<(), QueueError> {
        lock(&self.queues)[queue.index()].messages.clear();
        Ok(())
    }
}
