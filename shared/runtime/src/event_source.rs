//! What the Lambda event source mapping does, for running the worker outside Lambda (`oes-local`,
//! tests, benchmarks): receive a batch from one queue, hand it to the handler as an SQS event,
//! delete the records it did not report in `batchItemFailures` (with `ReportBatchItemFailures`).
//! Records it reported, or every record when the handler errs, stay on the queue and come back
//! after their visibility timeout. Written over the [`MessageQueues`] port, so it drives the
//! worker the same way over SQS and over the in-memory twin. Like a disabled mapping, a source
//! whose lane is paused ([`EventSource::with_switch`]) receives nothing until it is resumed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use oes_domain::email::Lane;
use oes_domain::ports::{LaneSwitch, MessageQueues, QueueError, QueueName};
use tokio_util::sync::CancellationToken;

/// How often a paused source looks whether its lane has been resumed.
const PAUSED_CHECK: Duration = Duration::from_millis(200);

/// Polls one queue for a handler.
pub struct EventSource {
    queues: Arc<dyn MessageQueues>,
    queue: QueueName,
    arn: String,
    batch_size: u32,
    wait: Duration,
    switch: Option<(Arc<dyn LaneSwitch>, Lane)>,
}

impl EventSource {
    /// An event source for `queue`; records carry `arn:aws:sqs:<region>:<account>:<name>` as
    /// their source, as Lambda's do (the worker reads only the name).
    pub fn new(queues: Arc<dyn MessageQueues>, queue: QueueName) -> Self {
        let arn = format!("arn:aws:sqs:local:000000000000:{}", queues.name(queue));
        Self {
            queues,
            queue,
            arn,
            batch_size: 10,
            wait: Duration::from_secs(1),
            switch: None,
        }
    }

    /// Receives only while `switch` says `lane` (this source's queue) is not paused.
    pub fn with_switch(mut self, switch: Arc<dyn LaneSwitch>, lane: Lane) -> Self {
        self.switch = Some((switch, lane));
        self
    }

    /// Whether the lane is paused now (a switch that cannot be read leaves it running).
    async fn paused(&self) -> bool {
        match &self.switch {
            None => false,
            Some((switch, lane)) => switch.is_paused(*lane).await.unwrap_or_else(|error| {
                tracing::warn!(%error, lane = lane.as_str(), "could not read the lane's switch");
                false
            }),
        }
    }

    /// Sets the long-poll wait (0–20 s; default 1 s).
    pub fn with_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// Polls until `stop` is cancelled, as a mapping does: one batch at a time, none while the
    /// lane is paused; when the queue cannot be reached, tries again after 5 s. A batch in hand
    /// when `stop` comes is finished (handled, its records deleted) first: a stop never leaves
    /// a batch half done, and what was not received stays on the queue.
    pub async fn run<F, Fut>(self, handler: F, stop: CancellationToken)
    where
        F: Fn(SqsEvent) -> Fut,
        Fut: Future<Output = SqsBatchResponse>,
    {
        while !stop.is_cancelled() {
            if self.paused().await {
                let _ = tokio::time::timeout(PAUSED_CHECK, stop.cancelled()).await;
                continue;
            }
            let polled = self
                .poll_once(|event| async {
                    Ok::<_, std::convert::Infallible>(handler(event).await)
                })
                .await;
            if let Err(error) = polled {
                tracing::warn!(%error, queue = self.queues.name(self.queue), "polling failed; retrying in 5 s");
                let _ = tokio::time::timeout(Duration::from_secs(5), stop.cancelled()).await;
            }
        }
    }

    /// Receives one batch (waiting up to the long-poll time), invokes `handler` with it, and
    /// deletes the records it did not report as failed. Returns how many records were received.
    pub async fn poll_once<F, Fut, E>(&self, handler: F) -> Result<usize, QueueError>
    where
        F: FnOnce(SqsEvent) -> Fut,
        Fut: Future<Output = Result<SqsBatchResponse, E>>,
        E: std::fmt::Display,
    {
        let messages = self
            .queues
            .receive(self.queue, self.batch_size, None, self.wait)
            .await?;
        if messages.is_empty() {
            return Ok(0);
        }
        let mut receipts = Vec::with_capacity(messages.len());
        let mut event = SqsEvent::default();
        for message in messages {
            let mut record = SqsMessage::default();
            record.message_id = Some(message.message_id.clone());
            record.receipt_handle = Some(message.receipt_handle.clone());
            record.body = Some(message.body);
            record.attributes.insert(
                "ApproximateReceiveCount".into(),
                message.receive_count.to_string(),
            );
            for (name, value) in message.attributes {
                let mut attribute = SqsMessageAttribute::default();
                attribute.string_value = Some(value);
                attribute.data_type = Some("String".into());
                record.message_attributes.insert(name, attribute);
            }
            record.event_source = Some("aws:sqs".into());
            record.event_source_arn = Some(self.arn.clone());
            record.aws_region = Some("local".into());
            receipts.push((message.message_id, message.receipt_handle));
            event.records.push(record);
        }
        let count = receipts.len();
        match handler(event).await {
            Ok(response) => {
                for (message_id, receipt) in receipts {
                    let failed = response
                        .batch_item_failures
                        .iter()
                        .any(|f| f.item_identifier == message_id);
                    if !failed && let Err(error) = self.queues.delete(self.queue, &receipt).await {
                        tracing::warn!(%error, %message_id, "could not delete a processed message; it may be redelivered");
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "the worker failed the whole batch; it will be redelivered");
            }
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use oes_adapters::memory::MemoryQueues;
    use oes_domain::ports::NewMessage;

    async fn send(queues: &Arc<dyn MessageQueues>, body: &str) {
        let message = NewMessage {
            body: body.into(),
            delay_seconds: 0,
            attributes: BTreeMap::new(),
        };
        queues
            .send(QueueName::Priority, &message)
            .await
            .expect("sent");
    }

    /// A stop in the middle of a batch lets it finish (handled, its records deleted); nothing is
    /// received after it, so what is still queued stays there for the next run.
    #[tokio::test]
    async fn a_stop_lets_the_batch_in_hand_finish_and_receives_nothing_more() {
        let queues: Arc<dyn MessageQueues> = MemoryQueues::new();
        send(&queues, "first").await;
        let stop = CancellationToken::new();
        let handled = Arc::new(AtomicUsize::new(0));
        let source = EventSource::new(queues.clone(), QueueName::Priority)
            .with_wait(Duration::from_millis(10));
        let run = tokio::spawn({
            let (stop, handled) = (stop.clone(), handled.clone());
            let in_handler = stop.clone();
            source.run(
                move |event| {
                    let (stop, handled) = (in_handler.clone(), handled.clone());
                    async move {
                        // The stop comes while this batch is in hand.
                        stop.cancel();
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        handled.fetch_add(event.records.len(), Ordering::SeqCst);
                        SqsBatchResponse::default()
                    }
                },
                stop,
            )
        });
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .expect("stopped after the batch")
            .expect("joined");
        assert_eq!(
            handled.load(Ordering::SeqCst),
            1,
            "the batch in hand was finished"
        );
        send(&queues, "second").await;
        let counts = queues.counts(QueueName::Priority).await.expect("counts");
        assert_eq!(
            (counts.visible, counts.in_flight),
            (1, 0),
            "the handled record was deleted, and the one sent after the stop waits: {counts:?}"
        );
        assert!(stop.is_cancelled());
    }
}
