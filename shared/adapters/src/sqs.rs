//! SQS: the [`MessageQueues`] port over the two lanes and the dead-letter queue.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
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

/// The timeouts of a long poll: the client's attempt and operation timeouts (`AwsTimeouts`'
/// SQS figures), each with the poll's `wait` on top, as SQS holds the request open that long.
/// `None` (the client's configuration applies) when the client has neither.
fn long_poll_timeouts(client: Option<&TimeoutConfig>, wait: Duration) -> Option<TimeoutConfig> {
    let attempt = client.and_then(TimeoutConfig::operation_attempt_timeout);
    let operation = client.and_then(TimeoutConfig::operation_timeout);
    if attempt.is_none() && operation.is_none() {
        // An empty override would read as "timeouts disabled", connect timeout included.
        return None;
    }
    let mut timeouts = TimeoutConfig::builder();
    timeouts.set_operation_attempt_timeout(attempt.map(|t| t + wait));
    timeouts.set_operation_timeout(operation.map(|t| t + wait));
    Some(timeouts.build())
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
        // SQS counts the wait in whole seconds (at most 20): a part of one is rounded up, so a
        // wait under a second is a wait, not a short poll that returns at once.
        let whole = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        let wait = u32::try_from(whole).unwrap_or(20).min(20);
        let mut poll = aws_sdk_sqs::Config::builder();
        poll.set_timeout_config(long_poll_timeouts(
            self.client.config().timeout_config(),
            Duration::from_secs(wait.into()),
        ));
        let out = self
            .client
            .receive_message()
            .queue_url(self.url(queue)?)
            .max_number_of_messages(seconds(max.clamp(1, 10)))
            .set_visibility_timeout(visibility.map(seconds))
            .wait_time_seconds(seconds(wait))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names("All")
            .customize()
            .config_override(poll)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::{AwsClients, AwsTimeouts};
    use aws_config::{BehaviorVersion, Region, SdkConfig};

    /// Clients of an SQS endpoint that accepts connections and never answers.
    fn hung_queues(listener: &std::net::TcpListener, timeouts: &AwsTimeouts) -> SqsQueues {
        let endpoint = format!("http://{}", listener.local_addr().expect("bound"));
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(
                aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "test"),
            ))
            .build();
        let url = format!("{endpoint}/000000000000/lane");
        SqsQueues::new(
            AwsClients::from_config(&config, timeouts).sqs(),
            &url,
            &url,
            None,
        )
    }

    #[tokio::test]
    async fn a_hung_call_times_out_and_a_long_poll_is_not_cut_short_by_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        let timeouts = AwsTimeouts {
            sqs_attempt: Duration::from_millis(100),
            sqs_operation: Duration::from_millis(300),
            ..AwsTimeouts::DEFAULT
        };
        let queues = hung_queues(&listener, &timeouts);

        let error = queues
            .delete(QueueName::Priority, "receipt")
            .await
            .expect_err("nothing answers");
        let timed_out = error
            .source
            .downcast_ref::<aws_sdk_sqs::error::SdkError<
                aws_sdk_sqs::operation::delete_message::DeleteMessageError,
                aws_sdk_sqs::config::http::HttpResponse,
            >>()
            .is_some_and(|e| matches!(e, aws_sdk_sqs::error::SdkError::TimeoutError(_)));
        assert!(timed_out, "a timeout, not {error:?}");

        // Without the long poll's own timeouts this would end after 300 ms like the delete.
        let wait = Duration::from_secs(1);
        let started = std::time::Instant::now();
        let received = queues.receive(QueueName::Priority, 10, None, wait).await;
        assert!(received.is_err(), "nothing answers");
        assert!(
            started.elapsed() >= wait,
            "a {wait:?} long poll was cut after {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn the_longest_long_poll_gets_its_wait_on_top_of_the_sqs_timeouts() {
        let config = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .build();
        let t = AwsTimeouts::DEFAULT;
        let clients = AwsClients::from_config(&config, &t);
        // `receive` caps the wait at SQS's maximum, 20 s.
        let longest = Duration::from_secs(20);
        let poll = long_poll_timeouts(clients.sqs().config().timeout_config(), longest)
            .expect("the SQS client has timeouts");
        assert_eq!(
            poll.operation_attempt_timeout(),
            Some(t.sqs_attempt + longest)
        );
        assert_eq!(poll.operation_timeout(), Some(t.sqs_operation + longest));
        assert_eq!(
            poll.connect_timeout(),
            None,
            "the client's connect timeout applies"
        );
    }

    #[test]
    fn a_client_without_timeouts_keeps_its_configuration_for_long_polls() {
        let connect_only = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(1))
            .build();
        assert_eq!(long_poll_timeouts(None, Duration::from_secs(20)), None);
        assert_eq!(
            long_poll_timeouts(Some(&connect_only), Duration::from_secs(20)),
            None
        );
    }
}
