//! The contract of the `MessageQueues` port: the SQS behaviour the email pipeline depends on,
//! checked on the in-memory twin and on SQS in the emulator with the same test bodies.
//!
//! [`contract!`] turns each body into `in_memory::<body>` (the twin, under Tokio's paused clock,
//! so waits cost nothing) and `on_sqs::<body>` (fresh queues in moto, provisioned from the same
//! definitions as `template.yaml`: visibility timeout 780 s, `maxReceiveCount` 5). Waits on moto
//! are real and kept to about two seconds, so a slow emulator
//! does not pass a timeout before the test looks (SQS timeouts count in whole seconds).
//!
//! Not part of the contract, on purpose: deleting with a stale receipt handle (AWS: "the request
//! succeeds, but the message might not be deleted" — the pipeline always deletes with the latest
//! handle), and which visible messages a receive picks (SQS samples; the pipeline relies on no
//! order).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use oes_domain::ports::{MessageQueues, NewMessage, QueueName, ReceivedMessage};

macro_rules! contract {
    ($($body:ident),* $(,)?) => {
        mod in_memory {
            $(
                #[tokio::test(start_paused = true)]
                async fn $body() {
                    super::$body(&oes_adapters::memory::MemoryQueues::default()).await;
                }
            )*
        }

        mod on_sqs {
            $(
                #[tokio::test]
                async fn $body() {
                    let env = oes_tests::TestEnv::spawn().await;
                    super::$body(env.sqs_queues().as_ref()).await;
                }
            )*
        }
    };
}

contract!(
    a_sent_message_is_received_once_with_its_body_attributes_and_id,
    a_received_message_comes_back_after_its_visibility_timeout_with_a_new_handle,
    without_a_visibility_the_queues_own_timeout_hides_a_received_message,
    changing_the_visibility_hides_for_that_long_and_zero_shows_at_once,
    a_deleted_message_is_never_delivered_again,
    a_delayed_message_stays_hidden_until_its_delay_has_passed,
    a_message_received_max_receive_count_times_moves_to_the_dead_letter_queue,
    the_dead_letter_queue_keeps_what_it_is_sent,
    counts_tell_visible_in_flight_and_delayed_messages_apart,
    a_receive_waits_for_a_message_sent_meanwhile,
    a_wait_under_a_second_still_waits,
    a_receive_returns_at_most_max_and_repeated_receives_reach_every_message,
    purge_empties_one_queue_only,
    a_delay_beyond_fifteen_minutes_is_refused,
    a_handle_whose_message_was_deleted_changes_nothing,
);

/// A message older than its queue's retention period is gone: on the twin the lanes' 4 days
/// (Tokio's paused clock), on SQS a lane given the shortest retention SQS takes, 60 s.
mod retention {
    use std::time::Duration;

    use aws_sdk_sqs::types::QueueAttributeName;

    #[tokio::test(start_paused = true)]
    async fn in_memory() {
        let queues = oes_adapters::memory::MemoryQueues::default();
        super::a_message_past_its_retention_is_gone(&queues, Duration::from_secs(4 * 24 * 3600))
            .await;
    }

    #[tokio::test]
    async fn on_sqs() {
        let env = oes_tests::TestEnv::spawn().await;
        env.clients
            .sqs()
            .set_queue_attributes()
            .queue_url(&env.provisioned.priority_queue_url)
            .attributes(QueueAttributeName::MessageRetentionPeriod, "60")
            .send()
            .await
            .expect("retention set");
        super::a_message_past_its_retention_is_gone(
            env.sqs_queues().as_ref(),
            Duration::from_secs(60),
        )
        .await;
    }
}

async fn a_message_past_its_retention_is_gone(queues: &dyn MessageQueues, retention: Duration) {
    queues
        .send(QueueName::Priority, &message(0))
        .await
        .expect("send");
    tokio::time::sleep(retention - Duration::from_secs(5)).await;
    assert_eq!(counts(queues, QueueName::Priority).await, (1, 0, 0));
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        receive(queues, QueueName::Priority, Some(30))
            .await
            .is_empty(),
        "a message past its retention was delivered"
    );
    // Not the counts after it: moto goes on counting the expired message as in flight (AWS
    // drops it, its counts being approximate anyway).
}

/// A message with a unique body and two attributes.
fn message(delay_seconds: u32) -> NewMessage {
    NewMessage {
        body: format!("body {}", uuid::Uuid::new_v4()),
        delay_seconds,
        attributes: BTreeMap::from([
            ("job_id".to_owned(), "j-1".to_owned()),
            ("kind".to_owned(), "verification".to_owned()),
        ]),
    }
}

async fn receive(
    queues: &dyn MessageQueues,
    queue: QueueName,
    visibility: Option<u32>,
) -> Vec<ReceivedMessage> {
    queues
        .receive(queue, 10, visibility, Duration::ZERO)
        .await
        .expect("receive")
}

/// Receives until something comes or `within` has passed (SQS's short poll may miss a message
/// that is there; a long poll of the remaining time does not).
async fn receive_within(
    queues: &dyn MessageQueues,
    queue: QueueName,
    visibility: Option<u32>,
    within: Duration,
) -> Vec<ReceivedMessage> {
    queues
        .receive(queue, 10, visibility, within)
        .await
        .expect("receive")
}

async fn counts(queues: &dyn MessageQueues, queue: QueueName) -> (i64, i64, i64) {
    let counts = queues.counts(queue).await.expect("counts");
    (counts.visible, counts.in_flight, counts.delayed)
}

async fn a_sent_message_is_received_once_with_its_body_attributes_and_id(
    queues: &dyn MessageQueues,
) {
    let sent = message(0);
    let id = queues.send(QueueName::Priority, &sent).await.expect("send");
    let got = receive_within(
        queues,
        QueueName::Priority,
        Some(30),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (
            &got[0].message_id,
            &got[0].body,
            &got[0].attributes,
            got[0].receive_count
        ),
        (&id, &sent.body, &sent.attributes, 1)
    );
    assert!(!got[0].receipt_handle.is_empty());
    assert!(
        receive(queues, QueueName::Priority, Some(30))
            .await
            .is_empty(),
        "hidden while in flight"
    );
    assert!(
        receive(queues, QueueName::Bulk, Some(30)).await.is_empty(),
        "and only on its own queue"
    );
}

async fn a_received_message_comes_back_after_its_visibility_timeout_with_a_new_handle(
    queues: &dyn MessageQueues,
) {
    let sent = message(0);
    queues.send(QueueName::Bulk, &sent).await.expect("send");
    let first = receive_within(queues, QueueName::Bulk, Some(2), Duration::from_secs(2)).await;
    assert_eq!(first.len(), 1);
    assert!(receive(queues, QueueName::Bulk, Some(2)).await.is_empty());
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let again = receive_within(queues, QueueName::Bulk, Some(30), Duration::from_secs(2)).await;
    assert_eq!(again.len(), 1, "not deleted, so delivered again");
    assert_eq!(again[0].message_id, first[0].message_id);
    assert_eq!(again[0].body, sent.body);
    assert_eq!(again[0].receive_count, 2);
    assert_ne!(again[0].receipt_handle, first[0].receipt_handle);
}

async fn without_a_visibility_the_queues_own_timeout_hides_a_received_message(
    queues: &dyn MessageQueues,
) {
    queues
        .send(QueueName::Priority, &message(0))
        .await
        .expect("send");
    let got = receive_within(queues, QueueName::Priority, None, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1);
    // The lanes' timeout is 780 s (6 × the worker's): still hidden well after a second.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert!(receive(queues, QueueName::Priority, None).await.is_empty());
    assert_eq!(counts(queues, QueueName::Priority).await, (0, 1, 0));
}

async fn changing_the_visibility_hides_for_that_long_and_zero_shows_at_once(
    queues: &dyn MessageQueues,
) {
    queues
        .send(QueueName::Priority, &message(0))
        .await
        .expect("send");
    let first = receive_within(
        queues,
        QueueName::Priority,
        Some(60),
        Duration::from_secs(2),
    )
    .await;
    queues
        .change_visibility(QueueName::Priority, &first[0].receipt_handle, 0)
        .await
        .expect("show now");
    let second = receive_within(
        queues,
        QueueName::Priority,
        Some(60),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(second.len(), 1, "visible at once");
    assert_eq!(second[0].receive_count, 2);
    // A backoff: hidden for four seconds from now (still hidden after two), then back.
    queues
        .change_visibility(QueueName::Priority, &second[0].receipt_handle, 4)
        .await
        .expect("back off");
    assert!(receive(queues, QueueName::Priority, None).await.is_empty());
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert!(
        receive(queues, QueueName::Priority, None).await.is_empty(),
        "hidden for as long as asked, not less"
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let third = receive_within(
        queues,
        QueueName::Priority,
        Some(60),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(third.len(), 1, "back after the backoff");
    assert_eq!(third[0].receive_count, 3);
}

async fn a_deleted_message_is_never_delivered_again(queues: &dyn MessageQueues) {
    queues
        .send(QueueName::Bulk, &message(0))
        .await
        .expect("send");
    let got = receive_within(queues, QueueName::Bulk, Some(2), Duration::from_secs(2)).await;
    queues
        .delete(QueueName::Bulk, &got[0].receipt_handle)
        .await
        .expect("delete");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert!(receive(queues, QueueName::Bulk, None).await.is_empty());
    assert_eq!(counts(queues, QueueName::Bulk).await, (0, 0, 0));
}

async fn a_delayed_message_stays_hidden_until_its_delay_has_passed(queues: &dyn MessageQueues) {
    let sent = message(2);
    queues.send(QueueName::Bulk, &sent).await.expect("send");
    assert!(receive(queues, QueueName::Bulk, Some(30)).await.is_empty());
    assert_eq!(counts(queues, QueueName::Bulk).await, (0, 0, 1));
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let got = receive_within(queues, QueueName::Bulk, Some(30), Duration::from_secs(2)).await;
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].body.as_str(), got[0].receive_count),
        (sent.body.as_str(), 1)
    );
}

async fn a_message_received_max_receive_count_times_moves_to_the_dead_letter_queue(
    queues: &dyn MessageQueues,
) {
    let sent = message(0);
    let id = queues.send(QueueName::Priority, &sent).await.expect("send");
    // A zero visibility timeout makes each receive a delivery that was not deleted.
    for delivery in 1..=5 {
        let got =
            receive_within(queues, QueueName::Priority, Some(0), Duration::from_secs(2)).await;
        assert_eq!(got.len(), 1, "delivery {delivery}");
        assert_eq!(got[0].receive_count, delivery);
    }
    assert!(
        receive(queues, QueueName::Priority, Some(0))
            .await
            .is_empty(),
        "after maxReceiveCount (5) the next receive moves it instead of delivering it"
    );
    let dead = receive_within(
        queues,
        QueueName::DeadLetter,
        Some(30),
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (&dead[0].message_id, &dead[0].body, &dead[0].attributes),
        (&id, &sent.body, &sent.attributes),
        "moved with its id, body and attributes"
    );
    assert_eq!(counts(queues, QueueName::Priority).await, (0, 0, 0));
}

async fn the_dead_letter_queue_keeps_what_it_is_sent(queues: &dyn MessageQueues) {
    // The dead-letter queue has no redrive policy: nothing ever moves off it by itself.
    let sent = message(0);
    queues
        .send(QueueName::DeadLetter, &sent)
        .await
        .expect("send");
    for _ in 0..7 {
        let got = receive_within(
            queues,
            QueueName::DeadLetter,
            Some(0),
            Duration::from_secs(2),
        )
        .await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, sent.body);
    }
}

async fn counts_tell_visible_in_flight_and_delayed_messages_apart(queues: &dyn MessageQueues) {
    for delay in [0, 0, 60] {
        queues
            .send(QueueName::Bulk, &message(delay))
            .await
            .expect("send");
    }
    assert_eq!(counts(queues, QueueName::Bulk).await, (2, 0, 1));
    let got = queues
        .receive(QueueName::Bulk, 1, Some(60), Duration::from_secs(2))
        .await
        .expect("receive");
    assert_eq!(got.len(), 1);
    assert_eq!(counts(queues, QueueName::Bulk).await, (1, 1, 1));
    assert_eq!(counts(queues, QueueName::Priority).await, (0, 0, 0));
    let names: BTreeSet<String> = [QueueName::Priority, QueueName::Bulk, QueueName::DeadLetter]
        .into_iter()
        .map(|q| queues.name(q).to_owned())
        .collect();
    assert_eq!(names.len(), 3, "three distinct queue names: {names:?}");
    let bulk = queues.counts(QueueName::Bulk).await.expect("counts");
    assert_eq!(bulk.queue, queues.name(QueueName::Bulk));
    assert!(bulk.queue.ends_with("email-bulk"), "{}", bulk.queue);
}

async fn a_receive_waits_for_a_message_sent_meanwhile(queues: &dyn MessageQueues) {
    let sent = message(0);
    let (got, ()) = tokio::join!(
        queues.receive(QueueName::Priority, 10, Some(30), Duration::from_secs(5)),
        async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            queues.send(QueueName::Priority, &sent).await.expect("send");
        }
    );
    let got = got.expect("receive");
    assert_eq!(
        got.len(),
        1,
        "the long poll returns the message sent during it"
    );
    assert_eq!(got[0].body, sent.body);
}

/// SQS counts a long poll's wait in whole seconds: less than one is still a wait, not a short
/// poll that returns at once.
async fn a_wait_under_a_second_still_waits(queues: &dyn MessageQueues) {
    let sent = message(0);
    let (got, ()) = tokio::join!(
        queues.receive(
            QueueName::Priority,
            10,
            Some(30),
            Duration::from_millis(900)
        ),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            queues.send(QueueName::Priority, &sent).await.expect("send");
        }
    );
    let got = got.expect("receive");
    assert_eq!(
        got.len(),
        1,
        "the poll waited for the message sent during it"
    );
    assert_eq!(got[0].body, sent.body);
}

async fn a_receive_returns_at_most_max_and_repeated_receives_reach_every_message(
    queues: &dyn MessageQueues,
) {
    let mut bodies = BTreeSet::new();
    for _ in 0..15 {
        let sent = message(0);
        queues.send(QueueName::Bulk, &sent).await.expect("send");
        bodies.insert(sent.body);
    }
    let mut seen = BTreeSet::new();
    for _ in 0..10 {
        let batch = queues
            .receive(QueueName::Bulk, 10, Some(60), Duration::from_secs(1))
            .await
            .expect("receive");
        assert!(batch.len() <= 10);
        for message in batch {
            assert!(
                seen.insert(message.body),
                "a hidden message was delivered twice"
            );
        }
        if seen.len() == bodies.len() {
            break;
        }
    }
    assert_eq!(seen, bodies);
}

async fn purge_empties_one_queue_only(queues: &dyn MessageQueues) {
    queues
        .send(QueueName::DeadLetter, &message(0))
        .await
        .expect("send");
    queues
        .send(QueueName::Bulk, &message(0))
        .await
        .expect("send");
    queues.purge(QueueName::DeadLetter).await.expect("purge");
    assert_eq!(counts(queues, QueueName::DeadLetter).await, (0, 0, 0));
    assert_eq!(counts(queues, QueueName::Bulk).await, (1, 0, 0));
}

/// SQS delays a message by at most 900 s (AWS-FACTS.md): longer is refused, not cut short.
async fn a_delay_beyond_fifteen_minutes_is_refused(queues: &dyn MessageQueues) {
    let refused = queues.send(QueueName::Bulk, &message(901)).await;
    assert!(refused.is_err(), "a 901 s delay: {refused:?}");
    queues
        .send(QueueName::Bulk, &message(900))
        .await
        .expect("the longest delay");
    assert_eq!(counts(queues, QueueName::Bulk).await, (0, 0, 1));
}

/// A handle of a message deleted since: changing its visibility is refused (SQS answers that the
/// handle is no longer valid), and brings nothing back.
async fn a_handle_whose_message_was_deleted_changes_nothing(queues: &dyn MessageQueues) {
    queues
        .send(QueueName::Priority, &message(0))
        .await
        .expect("send");
    let got = receive_within(
        queues,
        QueueName::Priority,
        Some(60),
        Duration::from_secs(2),
    )
    .await;
    queues
        .delete(QueueName::Priority, &got[0].receipt_handle)
        .await
        .expect("delete");
    let changed = queues
        .change_visibility(QueueName::Priority, &got[0].receipt_handle, 0)
        .await;
    assert!(changed.is_err(), "a deleted message's handle: {changed:?}");
    assert!(receive(queues, QueueName::Priority, None).await.is_empty());
}
