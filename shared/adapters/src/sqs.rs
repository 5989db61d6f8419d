//! SQS: the [`MessageQueues`] port over the two lanes and the dead-letter queue.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use oes_domain::ports::{
    BoxError, MessageQueues, NewMessage, QueueCounts, QueueError, QueueName, ReceivedMessage,
    queue_name,
};

fn failed<E: Into<BoxError>>(context: &'static str) -> impl FnOnce(E) -> QueueError {
    move |e| QueueError {
        context,
        source: e.into(),
    }
}

/// The pipeline's queues on SQS, by URL.
#[derive(Clone)]
pub struct SqsQueues {
    client: Client,
    /// URL and name of each queue, by [`QueueName::index`]; the dead-letter queue may be
    /// absent (the auth API never touches it).
    queues: [Option<(String, String)>; 3],
}

impl SqsQueues {
    /// The queues at these URLs.
    pub fn new(
        client: Client,
        priority_url: &str,
        bulk_url: &str,
        dead_letter_url: Option<&str>,
    ) -> Self {
        let entry = |url: &str| Some((url.to_owned(), queue_name(url).to_owned()));
        Self {
            client,
            queues: [
                entry(priority_url),
                entry(bulk_url),
                dead_letter_url.and_then(entry),
            ],
        }
    }

    fn url(&self, queue: QueueName) -> Result<&str, QueueError> {
        self.queues[queue.index()]
            .as_ref()
            .map(|(url, _)| url.as_str())
            .ok_or_else(|| QueueError {
                context: "a queue this function is not configured for",
                source: format!("{queue:?}").into(),
            })
    }
}

fn attribute(value: &str) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| QueueError {
            context: "building a message attribute",
            source: e.into(),
        })
}

fn seconds(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

#[async_trait]
impl MessageQueues for SqsQueues {
    fn name(&self, queue: QueueName) -> &str {
        self.queues[queue.index()]
            .as_ref()
            .map_or("", |(_, name)| name.as_str())
    }

    async fn send(&self, queue: QueueName, message: &NewMessage) -> Result<String, QueueError> {
        let mut request = self
            .client
            .send_message()
            .queue_url(self.url(queue)?)
            .message_body(&message.body)
            .delay_seconds(seconds(message.delay_seconds));
        for (name, value) in &message.attributes {
            request = request.message_attributes(name, attribute(value)?);
        }
        let out = request
            .send()
            .await
            .map_err(failed("sending a message to SQS"))?;
        Ok(out.message_id.unwrap_or_default())
    }

    async fn receive(
        &self,
        queue: QueueName,
        max: u32,
        visibility: Option<u32>,
        wait: Duration,
    ) -> Result<Vec<ReceivedMessage>, QueueError> {
        let wait = u32::try_from(wait.as_secs()).unwrap_or(20).min(20);
        let out = self
            .client
            .receive_message()
            .queue_url(self.url(queue)?)
            .max_number_of_messages(seconds(max.clamp(1, 10)))
            .set_visibility_timeout(visibility.map(seconds))
            .wait_time_seconds(seconds(wait))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(failed("receiving from SQS"))?;
        Ok(out
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|message| ReceivedMessage {
                receive_count: message
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
                attributes: message
                    .message_attributes()
                    .map(|attributes| {
                        attributes
                            .iter()
                            .filter_map(|(name, value)| {
                                Some((name.clone(), value.string_value()?.to_owned()))
                            })
                            .collect()
                    })
                    .unwrap_or_else(BTreeMap::new),
                message_id: message.message_id.unwrap_or_default(),
                receipt_handle: message.receipt_handle.unwrap_or_default(),
                body: message.body.unwrap_or_default(),
            })
            .collect())
    }

    async fn delete(&self, queue: QueueName, receipt_handle: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(self.url(queue)?)
            .receipt_handle(receipt_handle)
            .send()
            .await
            .map_err(failed("deleting a message"))?;
        Ok(())
    }

    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt_handle: &str,
        seconds_from_now: u32,
    ) -> Result<(), QueueError> {
        self.client
            .change_message_visibility()
            .queue_url(self.url(queue)?)
            .receipt_handle(receipt_handle)
            .visibility_timeout(seconds(seconds_from_now.min(43_200)))
            .send()
            .await
            .map_err(failed("changing a message's visibility"))?;
        Ok(())
    }

    async fn counts(&self, queue: QueueName) -> Result<QueueCounts, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(self.url(queue)?)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(failed("reading queue attributes"))?;
        let count = |name: QueueAttributeName| {
            out.attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(QueueCounts {
            queue: self.name(queue).to_owned(),
            visible: count(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
            delayed: count(QueueAttributeName::ApproximateNumberOfMessagesDelayed),
        })
    }

    async fn purge(&self, queue: QueueName) -> Result<(), QueueError> {
        self.client
            .purge_queue()
            .queue_url(self.url(queue)?)
            .send()
            .await
            .map_err(failed("purging a queue"))?;
        Ok(())
    }
}
