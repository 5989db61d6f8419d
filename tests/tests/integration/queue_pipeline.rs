//! The email pipeline's queue side — `EmailQueue` (producers), `QueueControl` (the worker's
//! backoff and dead-lettering), the queue admin (counts, dead letters), the one purge and the one
//! redrive — run with the same bodies over the in-memory twin (`in_memory::…`, Tokio's paused
//! clock) and over SQS in the emulator (`on_sqs::…`). The code is written once over the
//! `MessageQueues` port; these tests show it behaves the same over both queues.

use std::sync::Arc;
use std::time::Duration;

use oes_adapters::memory::MemoryJobs;
use oes_domain::clock::ManualClock;
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::pipeline::{
    EmailLanes, PurgeReport, QueueAdmin, RECEIPT_ATTRIBUTE, RedriveReport, purge, redrive,
};
use oes_domain::ports::{
    Delivery, EmailQueue, JobLedger, JobStatus, MessageQueues, NewMessage, Outcome, PURGED,
    QueueControl, QueueName, ReceivedMessage,
};
use oes_domain::security::Secret;
use oes_domain::user::Email;
use oes_tests::hooked_queues::{Hooked, QueueHooks};

macro_rules! contract {
    ($($body:ident),* $(,)?) => {
        mod in_memory {
            $(
                #[tokio::test(start_paused = true)]
                async fn $body() {
                    super::$body(std::sync::Arc::new(
                        oes_adapters::memory::MemoryQueues::default(),
                    ))
                    .await;
                }
            )*
        }

        mod on_sqs {
            $(
                #[tokio::test]
                async fn $body() {
                    let env = oes_tests::TestEnv::spawn().await;
                    super::$body(env.sqs_queues()).await;
                }
            )*
        }
    };
}

contract!(
    a_redrive_drops_the_letter_of_a_job_its_producer_could_not_queue,
    a_job_goes_to_the_lane_its_priority_selects_with_its_delay,
    a_backoff_hides_the_delivery_for_that_long,
    a_dead_letter_is_listed_with_its_job_reason_and_lane,
    a_dead_letters_reason_holds_only_characters_sqs_carries,
    a_listing_walks_more_dead_letters_than_one_receive_brings,
    redriving_one_job_moves_only_it_back_to_its_lane_and_requeues_its_record,
    redriving_all_moves_every_job_and_leaves_what_does_not_decode,
    a_purge_deletes_every_letter_and_records_their_jobs_dead,
    a_purge_leaves_the_letter_of_a_job_a_worker_holds,
    a_redrive_resets_the_record_before_the_message_is_back_on_its_lane,
    a_redrive_drops_the_stale_letter_of_a_sent_job_without_sending_it,
    a_held_job_comes_back_after_its_delay_as_a_fresh_copy,
    a_receipt_set_aside_keeps_its_ses_message_id,
    purging_a_receipt_records_its_email_as_sent,
    the_dead_letter_walks_find_letters_a_short_poll_misses,
);

fn job(template: EmailTemplate) -> EmailJob {
    EmailJob::new(Email::parse("ada@example.com").expect("valid"), template, 0)
}

fn verification() -> EmailJob {
    job(EmailTemplate::Verification {
        name: "Ada".into(),
        token: Secret::new("t0k3n"),
        choose_password: false,
    })
}

fn newsletter() -> EmailJob {
    job(EmailTemplate::Generic {
        subject: "News".into(),
        text: "text".into(),
    })
}

async fn receive(queues: &dyn MessageQueues, queue: QueueName) -> Vec<ReceivedMessage> {
    queues
        .receive(queue, 10, Some(30), Duration::from_secs(1))
        .await
        .expect("receive")
}

/// The delivery the worker would see for `message`, received from `queue`.
fn delivery(queues: &dyn MessageQueues, queue: QueueName, message: &ReceivedMessage) -> Delivery {
    Delivery {
        source: format!("arn:aws:sqs:us-east-1:000000000000:{}", queues.name(queue)),
        message_id: message.message_id.clone(),
        receipt_handle: message.receipt_handle.clone(),
        receive_count: message.receive_count,
        attributes: message.attributes.clone(),
    }
}

/// Queues `job`, takes it off its lane and sets it aside on the dead-letter queue with `reason`,
/// as the worker does with a job that failed for good.
async fn dead_letter(queues: &Arc<dyn MessageQueues>, job: &EmailJob, reason: &str) {
    let lanes = EmailLanes::new(queues.clone());
    lanes.enqueue(job).await.expect("enqueue");
    let lane = job.lane().into();
    let got = receive(queues.as_ref(), lane).await;
    assert_eq!(got.len(), 1);
    lanes
        .dead_letter(
            &delivery(queues.as_ref(), lane, &got[0]),
            &got[0].body,
            reason,
        )
        .await
        .expect("dead letter");
    queues
        .delete(lane, &got[0].receipt_handle)
        .await
        .expect("acknowledge");
}

async fn a_job_goes_to_the_lane_its_priority_selects_with_its_delay(
    queues: Arc<dyn MessageQueues>,
) {
    let lanes = EmailLanes::new(queues.clone());
    let urgent = verification();
    let later = newsletter().with_delay(2).expect("valid delay");
    lanes.enqueue(&urgent).await.expect("enqueue");
    lanes.enqueue(&later).await.expect("enqueue");
    let priority = receive(queues.as_ref(), QueueName::Priority).await;
    assert_eq!(priority.len(), 1);
    let on_priority = EmailJob::decode(&priority[0].body).expect("a job");
    assert_eq!(on_priority.job_id, urgent.job_id);
    assert_eq!(
        priority[0].attributes.get("job_id"),
        Some(&urgent.job_id),
        "the job id is an attribute, for operators"
    );
    assert_eq!(
        priority[0].attributes.get("kind").map(String::as_str),
        Some("verification")
    );
    assert!(
        queues
            .receive(QueueName::Bulk, 10, Some(30), Duration::ZERO)
            .await
            .expect("receive")
            .is_empty(),
        "the newsletter waits for its delay"
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let bulk = receive(queues.as_ref(), QueueName::Bulk).await;
    assert_eq!(bulk.len(), 1);
    assert_eq!(
        EmailJob::decode(&bulk[0].body).expect("a job").job_id,
        later.job_id
    );
}

async fn a_backoff_hides_the_delivery_for_that_long(queues: Arc<dyn MessageQueues>) {
    let lanes = EmailLanes::new(queues.clone());
    lanes.enqueue(&verification()).await.expect("enqueue");
    let got = receive(queues.as_ref(), QueueName::Priority).await;
    let delivered = delivery(queues.as_ref(), QueueName::Priority, &got[0]);
    lanes.retry_after(&delivered, 0).await.expect("no backoff");
    let again = receive(queues.as_ref(), QueueName::Priority).await;
    assert_eq!(again.len(), 1, "a zero backoff redelivers at once");
    let delivered = delivery(queues.as_ref(), QueueName::Priority, &again[0]);
    lanes.retry_after(&delivered, 4).await.expect("backoff");
    let hidden = || async {
        queues
            .receive(QueueName::Priority, 10, Some(30), Duration::ZERO)
            .await
            .expect("receive")
            .is_empty()
    };
    assert!(hidden().await);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert!(
        hidden().await,
        "hidden for as long as the backoff, not less"
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let after = receive(queues.as_ref(), QueueName::Priority).await;
    assert_eq!(after.len(), 1, "back after the backoff");
    assert_eq!(after[0].receive_count, 3);

    let stranger = Delivery {
        source: "arn:aws:sqs:us-east-1:000000000000:someone-elses-queue".into(),
        ..delivered
    };
    assert!(
        lanes.retry_after(&stranger, 1).await.is_err(),
        "a message from a queue it does not know is refused"
    );
}

async fn a_dead_letter_is_listed_with_its_job_reason_and_lane(queues: Arc<dyn MessageQueues>) {
    let job = verification();
    dead_letter(&queues, &job, "permanent failure: MessageRejected").await;
    let admin = QueueAdmin::new(queues.clone());
    let listed = admin.dead_letters(10).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].job_id.as_deref(), Some(job.job_id.as_str()));
    assert_eq!(listed[0].kind.as_deref(), Some("verification"));
    assert_eq!(
        listed[0].reason.as_deref(),
        Some("permanent failure: MessageRejected")
    );
    assert_eq!(
        listed[0].source_queue.as_deref(),
        Some(queues.name(QueueName::Priority))
    );
    let counts = admin.counts().await.expect("counts");
    let names: Vec<&str> = counts.iter().map(|c| c.queue.as_str()).collect();
    assert_eq!(
        names,
        QueueName::ALL.map(|q| queues.name(q)),
        "one line per queue, lanes first"
    );
    assert_eq!(
        counts.iter().map(|c| c.visible).collect::<Vec<_>>(),
        [0, 0, 1],
        "listing leaves the letter visible: {counts:?}"
    );
}

/// A reason quotes what it could not decode (serde writes an unknown variant as it is): the
/// characters SQS carries in no attribute (controls other than tab, LF and CR; U+FFFE, U+FFFF)
/// are replaced with U+FFFD rather than making the dead-lettering fail (older SQS refuses the
/// message: the letter then reached the DLQ by the lane's redrive, without its reason).
async fn a_dead_letters_reason_holds_only_characters_sqs_carries(queues: Arc<dyn MessageQueues>) {
    let job = verification();
    dead_letter(&queues, &job, "unknown variant `\u{1}\u{ffff}`\tline\nnext").await;
    let listed = QueueAdmin::new(queues.clone())
        .dead_letters(10)
        .await
        .expect("list");
    assert_eq!(
        listed[0].reason.as_deref(),
        Some("unknown variant `\u{fffd}\u{fffd}`\tline\nnext")
    );
}

async fn a_listing_walks_more_dead_letters_than_one_receive_brings(queues: Arc<dyn MessageQueues>) {
    for i in 0..13 {
        let body = format!("{{\"not\": \"a job {i}\"}}");
        queues
            .send(
                QueueName::DeadLetter,
                &NewMessage {
                    body,
                    ..NewMessage::default()
                },
            )
            .await
            .expect("send");
    }
    let admin = QueueAdmin::new(queues.clone());
    let listed = admin.dead_letters(50).await.expect("list");
    assert_eq!(listed.len(), 13, "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|e| e.job_id.is_none() && e.reason.is_none())
    );
    assert_eq!(admin.dead_letters(5).await.expect("list").len(), 5);
}

/// A job its producer could not queue (the send answered an error, the job recorded failed, the
/// caller answered 503) may still have reached its lane: the queue kept the message though it
/// answered an error. Its copy is not sent, even once it has reached the dead-letter queue (its
/// deletes lost): a redrive drops it, since the caller may have asked again.
async fn a_redrive_drops_the_letter_of_a_job_its_producer_could_not_queue(
    queues: Arc<dyn MessageQueues>,
) {
    let ledger = MemoryJobs::default();
    let clock = ManualClock::at(1_000);
    let refused = verification();
    ledger.record_queued(&refused, 900).await.expect("record");
    ledger
        .unqueued(&refused.job_id, "could not be queued: timeout", 901)
        .await
        .expect("unqueued");
    dead_letter(&queues, &refused, "moved by the redrive policy").await;
    let report = redrive(queues.as_ref(), &ledger, &clock, None, None, |_| {})
        .await
        .expect("redrive");
    assert_eq!(
        (report.moved, report.not_queued, report.done),
        (0, 1, true),
        "{report:?}"
    );
    assert!(
        receive(queues.as_ref(), QueueName::Priority)
            .await
            .is_empty(),
        "nothing goes back to its lane"
    );
    assert!(
        QueueAdmin::new(queues.clone())
            .dead_letters(10)
            .await
            .expect("list")
            .is_empty(),
        "the letter is dropped"
    );
    let record = recorded(&ledger, &refused.job_id).await;
    assert_eq!(record.status, JobStatus::Failed, "{record:?}");
}

async fn redriving_one_job_moves_only_it_back_to_its_lane_and_requeues_its_record(
    queues: Arc<dyn MessageQueues>,
) {
    let ledger = MemoryJobs::default();
    let clock = ManualClock::at(1_000);
    let (urgent, news) = (verification(), newsletter());
    for job in [&urgent, &news] {
        ledger.record_queued(job, 900).await.expect("record");
        ledger
            .finish(
                &job.job_id,
                oes_domain::ports::Outcome::Dead {
                    reason: "exhausted".into(),
                },
                950,
            )
            .await
            .expect("dead");
        dead_letter(&queues, job, "attempts exhausted").await;
    }
    let mut progress = Vec::new();
    let report = redrive(
        queues.as_ref(),
        &ledger,
        &clock,
        Some(&news.job_id),
        None,
        |r| progress.push(r.moved),
    )
    .await
    .expect("redrive");
    assert_eq!(
        (report.moved, report.already_sent, report.done),
        (1, 0, true),
        "{report:?}"
    );
    assert!(
        report.skipped <= 1,
        "the walk ends at the job's letter: {report:?}"
    );
    assert_eq!(progress, [1]);
    let bulk = receive(queues.as_ref(), QueueName::Bulk).await;
    assert_eq!(bulk.len(), 1, "the newsletter is back on its lane");
    assert_eq!(
        EmailJob::decode(&bulk[0].body).expect("a job").job_id,
        news.job_id,
        "with its body, so its job id"
    );
    let record = recorded(&ledger, &news.job_id).await;
    assert_eq!((record.status, record.attempts), (JobStatus::Queued, 0));
    let other = recorded(&ledger, &urgent.job_id).await;
    assert_eq!(other.status, JobStatus::Dead, "the other job is untouched");
    let left = QueueAdmin::new(queues.clone())
        .dead_letters(10)
        .await
        .expect("list");
    assert_eq!(
        left.iter().map(|e| e.job_id.clone()).collect::<Vec<_>>(),
        [Some(urgent.job_id.clone())],
        "the other letter stays, visible"
    );
}

async fn redriving_all_moves_every_job_and_leaves_what_does_not_decode(
    queues: Arc<dyn MessageQueues>,
) {
    let ledger = MemoryJobs::default();
    let clock = ManualClock::at(1_000);
    let jobs = [verification(), newsletter(), verification()];
    for job in &jobs {
        dead_letter(&queues, job, "failed").await;
    }
    queues
        .send(
            QueueName::DeadLetter,
            &NewMessage {
                body: "{poison".into(),
                ..NewMessage::default()
            },
        )
        .await
        .expect("send");
    // Jobs without a record (expired by their retention) are moved all the same.
    let report = redrive(queues.as_ref(), &ledger, &clock, None, None, |_| {})
        .await
        .expect("redrive");
    assert_eq!(
        report,
        RedriveReport {
            moved: 3,
            already_sent: 0,
            not_queued: 0,
            skipped: 1,
            failed: 0,
            done: true,
        }
    );
    assert_eq!(receive(queues.as_ref(), QueueName::Priority).await.len(), 2);
    assert_eq!(receive(queues.as_ref(), QueueName::Bulk).await.len(), 1);
    let left = QueueAdmin::new(queues.clone())
        .dead_letters(10)
        .await
        .expect("list");
    assert_eq!(left.len(), 1);
    assert_eq!(
        left[0].job_id, None,
        "the poison message stays for an operator"
    );
}

/// A ledger where `job` was attempted at 100 and ended with `outcome` at 101.
/// The record of job `job_id`, which must have one.
async fn recorded(ledger: &MemoryJobs, job_id: &str) -> oes_domain::ports::JobRecord {
    ledger
        .get(job_id)
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("job {job_id} has no record"))
}

async fn ended(ledger: &MemoryJobs, job: &EmailJob, outcome: Outcome) {
    ledger.record_queued(job, 90).await.expect("recorded");
    ledger.claim(job, 100, 30).await.expect("claimed");
    ledger
        .finish(&job.job_id, outcome, 101)
        .await
        .expect("finished");
}

async fn a_purge_deletes_every_letter_and_records_their_jobs_dead(queues: Arc<dyn MessageQueues>) {
    let ledger = MemoryJobs::default();
    let clock = ManualClock::at(1_000);
    let (failed, dead, sent, expired) =
        (verification(), newsletter(), verification(), newsletter());
    let reason = |r: &str| r.to_owned();
    ended(
        &ledger,
        &failed,
        Outcome::Failed {
            reason: reason("rejected"),
        },
    )
    .await;
    ended(
        &ledger,
        &dead,
        Outcome::Dead {
            reason: reason("throttled"),
        },
    )
    .await;
    ended(
        &ledger,
        &sent,
        Outcome::Sent {
            ses_message_id: reason("ses-1"),
        },
    )
    .await;
    for job in [&failed, &dead, &sent, &expired] {
        dead_letter(&queues, job, "failed").await;
    }
    let poison = NewMessage {
        body: "{poison".into(),
        ..NewMessage::default()
    };
    queues
        .send(QueueName::DeadLetter, &poison)
        .await
        .expect("send");

    let mut seen = Vec::new();
    let first = purge(queues.as_ref(), &ledger, &clock, Some(3), |r| {
        seen.push(r.purged)
    })
    .await
    .expect("a step");
    assert_eq!((first.purged, first.done), (3, false), "{first:?}");
    assert_eq!(seen, [1, 2, 3]);
    let rest = purge(queues.as_ref(), &ledger, &clock, Some(3), |_| {})
        .await
        .expect("the next step");
    assert_eq!(
        (rest.purged, rest.skipped, rest.done),
        (2, 0, true),
        "{rest:?}"
    );
    let mut marked = [first.marked, rest.marked].concat();
    marked.sort();
    let mut expected = vec![failed.job_id.clone(), dead.job_id.clone()];
    expected.sort();
    assert_eq!(marked, expected, "the jobs that ended unsent are marked");
    assert!(
        QueueAdmin::new(queues.clone())
            .dead_letters(10)
            .await
            .expect("list")
            .is_empty(),
        "every letter is gone, the poison one too"
    );
    for job in [&failed, &dead] {
        let record = recorded(&ledger, &job.job_id).await;
        assert_eq!(
            (
                record.status,
                record.last_error.as_deref(),
                record.updated_at
            ),
            (JobStatus::Dead, Some(PURGED), 1_000),
            "the record says its letter is gone"
        );
    }
    let record = recorded(&ledger, &sent.job_id).await;
    assert_eq!(record.status, JobStatus::Sent, "a sent job stays sent");
    assert!(
        ledger.get(&expired.job_id).await.expect("read").is_none(),
        "none is made"
    );
}

async fn a_purge_leaves_the_letter_of_a_job_a_worker_holds(queues: Arc<dyn MessageQueues>) {
    let ledger = MemoryJobs::default();
    let held = verification();
    ledger.record_queued(&held, 90).await.expect("recorded");
    ledger.claim(&held, 990, 60).await.expect("claimed");
    dead_letter(&queues, &held, "failed").await;
    let report = purge(
        queues.as_ref(),
        &ledger,
        &ManualClock::at(1_000),
        None,
        |_| {},
    )
    .await
    .expect("purge");
    assert_eq!(
        report,
        PurgeReport {
            purged: 0,
            marked: Vec::new(),
            skipped: 1,
            failed: 0,
            done: true,
        }
    );
    let left = QueueAdmin::new(queues.clone())
        .dead_letters(10)
        .await
        .expect("list");
    assert_eq!(
        left.len(),
        1,
        "the letter stays, visible, for a later purge"
    );
}

/// Notes, on every send to a lane, the status the job's record had at that moment: a worker
/// may receive the message the instant it is sent.
struct Watching {
    ledger: Arc<MemoryJobs>,
    seen: std::sync::Mutex<Vec<Option<JobStatus>>>,
}

#[async_trait::async_trait]
impl QueueHooks for Watching {
    async fn send(&self, queue: QueueName, message: &NewMessage) {
        if queue != QueueName::DeadLetter {
            let job = EmailJob::decode(&message.body).expect("a job");
            let status = self
                .ledger
                .get(&job.job_id)
                .await
                .expect("read")
                .map(|r| r.status);
            self.seen.lock().expect("lock").push(status);
        }
    }
}

/// Defect 2 of issue 11: the message went back to its lane while the record still said `dead`,
/// so a worker that got it at once acknowledged it without sending.
async fn a_redrive_resets_the_record_before_the_message_is_back_on_its_lane(
    queues: Arc<dyn MessageQueues>,
) {
    let ledger = Arc::new(MemoryJobs::default());
    let clock = ManualClock::at(1_000);
    let job = verification();
    ledger.record_queued(&job, 900).await.expect("record");
    let dead = oes_domain::ports::Outcome::Dead {
        reason: "exhausted".into(),
    };
    ledger.finish(&job.job_id, dead, 950).await.expect("dead");
    dead_letter(&queues, &job, "attempts exhausted").await;
    let watching = Hooked::new(
        queues.clone(),
        Watching {
            ledger: ledger.clone(),
            seen: std::sync::Mutex::default(),
        },
    );
    redrive(&watching, ledger.as_ref(), &clock, None, None, |_| {})
        .await
        .expect("redrive");
    assert_eq!(
        *watching.hooks.seen.lock().expect("lock"),
        [Some(JobStatus::Queued)],
        "when the message reached its lane, its record said queued"
    );
}

/// Defect 1 of issue 11: a sent job's copy left on the dead-letter queue (a redrive that died
/// before deleting it) was reset to `queued` and sent again.
async fn a_redrive_drops_the_stale_letter_of_a_sent_job_without_sending_it(
    queues: Arc<dyn MessageQueues>,
) {
    let ledger = MemoryJobs::default();
    let clock = ManualClock::at(1_000);
    let job = verification();
    ledger.record_queued(&job, 900).await.expect("record");
    ledger.claim(&job, 910, 60).await.expect("claim");
    let sent = oes_domain::ports::Outcome::Sent {
        ses_message_id: "ses-1".into(),
    };
    ledger.finish(&job.job_id, sent, 911).await.expect("sent");
    dead_letter(&queues, &job, "a redrive died before deleting this copy").await;
    redrive(queues.as_ref(), &ledger, &clock, None, None, |_| {})
        .await
        .expect("redrive");
    assert!(
        receive(queues.as_ref(), QueueName::Priority)
            .await
            .is_empty(),
        "nothing goes back to the lane"
    );
    let record = recorded(&ledger, &job.job_id).await;
    assert_eq!(record.status, JobStatus::Sent, "the record still says sent");
    assert!(
        QueueAdmin::new(queues.clone())
            .dead_letters(10)
            .await
            .expect("list")
            .is_empty(),
        "the stale letter is gone"
    );
}

/// Holding a job (the worker's backoff) puts a fresh copy on the lane it came from, delayed, with
/// the attributes given; the copy starts its receive count over, so waiting uses none of the
/// original's receives (the lanes' `maxReceiveCount` is only for workers that cannot act).
async fn a_held_job_comes_back_after_its_delay_as_a_fresh_copy(queues: Arc<dyn MessageQueues>) {
    let lanes = EmailLanes::new(queues.clone());
    let job = verification();
    lanes.enqueue(&job).await.expect("enqueue");
    let first = receive(queues.as_ref(), QueueName::Priority).await;
    assert_eq!(first.len(), 1);
    let mut attributes = first[0].attributes.clone();
    attributes.insert("holds".into(), "1".into());
    lanes
        .renew(
            &delivery(queues.as_ref(), QueueName::Priority, &first[0]),
            &first[0].body,
            2,
            &attributes,
        )
        .await
        .expect("renew");
    queues
        .delete(QueueName::Priority, &first[0].receipt_handle)
        .await
        .expect("acknowledge the original");
    let counts = queues.counts(QueueName::Priority).await.expect("counts");
    assert_eq!((counts.visible, counts.delayed), (0, 1), "{counts:?}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let copy = receive(queues.as_ref(), QueueName::Priority).await;
    assert_eq!(copy.len(), 1, "the copy is back after its delay");
    assert_eq!(copy[0].body, first[0].body);
    assert_eq!(copy[0].attributes, attributes);
    assert_eq!(
        copy[0].receive_count, 1,
        "a fresh message: its first receive"
    );
    assert_ne!(copy[0].message_id, first[0].message_id);
}

/// A receipt of `job` (a verification): its message, carrying SES's message id.
fn receipt_of(job: &EmailJob, ses_message_id: &str) -> NewMessage {
    NewMessage {
        body: job.encode(),
        delay_seconds: 0,
        attributes: [
            ("job_id", job.job_id.as_str()),
            ("kind", "verification"),
            (RECEIPT_ATTRIBUTE, ses_message_id),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect(),
    }
}

/// A receipt (a copy carrying SES's message id: the email was sent, only its record is missing)
/// that the worker sets aside keeps that id on the dead-letter queue, so the listing shows it and
/// a redrive sends it back a receipt, not a job to send again.
async fn a_receipt_set_aside_keeps_its_ses_message_id(queues: Arc<dyn MessageQueues>) {
    let job = verification();
    let receipt = receipt_of(&job, "ses-1");
    queues
        .send(QueueName::Priority, &receipt)
        .await
        .expect("send");
    let got = receive(queues.as_ref(), QueueName::Priority).await;
    assert_eq!(got.len(), 1);
    EmailLanes::new(queues.clone())
        .dead_letter(
            &delivery(queues.as_ref(), QueueName::Priority, &got[0]),
            &got[0].body,
            "held 48 times; the ledger still fails",
        )
        .await
        .expect("dead letter");
    let listed = QueueAdmin::new(queues.clone())
        .dead_letters(10)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].ses_message_id.as_deref(), Some("ses-1"));
}

/// A receipt on the dead-letter queue says SES accepted the email (its record could not say so).
/// Purging it gives up the letter, not the fact: the job is recorded sent, with that id, instead
/// of staying `sending` (shown as stalled) for good.
async fn purging_a_receipt_records_its_email_as_sent(queues: Arc<dyn MessageQueues>) {
    let ledger = MemoryJobs::default();
    let job = verification();
    ledger.record_queued(&job, 90).await.expect("recorded");
    ledger.claim(&job, 100, 30).await.expect("claimed");
    let receipt = receipt_of(&job, "ses-1");
    queues
        .send(QueueName::DeadLetter, &receipt)
        .await
        .expect("send");
    let clock = ManualClock::at(1_000);
    let report = purge(queues.as_ref(), &ledger, &clock, None, |_| {})
        .await
        .expect("purged");
    assert_eq!((report.purged, report.done), (1, true), "{report:?}");
    let record = recorded(&ledger, &job.job_id).await;
    assert_eq!(
        (record.status, record.ses_message_id.as_deref()),
        (JobStatus::Sent, Some("ses-1"))
    );
}

/// Short polls of the dead-letter queue (a receive that does not wait) that come back empty,
/// as SQS's may: a short poll asks only a sample of its servers, and with few messages it can
/// miss them all. A long poll (one that waits) asks every server.
struct ShortPollsMiss;

#[async_trait::async_trait]
impl QueueHooks for ShortPollsMiss {
    async fn receive(&self, queue: QueueName, wait: Duration) -> Option<Vec<ReceivedMessage>> {
        (queue == QueueName::DeadLetter && wait.is_zero()).then(Vec::new)
    }
}

/// The listing, the redrive and the purge walk the dead-letter queue with long polls: a letter
/// a short poll would miss is listed, redriven and purged, not reported as absent.
async fn the_dead_letter_walks_find_letters_a_short_poll_misses(queues: Arc<dyn MessageQueues>) {
    let ledger = MemoryJobs::default();
    let clock = ManualClock::at(1_000);
    let (sent_back, purged) = (verification(), newsletter());
    dead_letter(&queues, &sent_back, "failed").await;
    let missing: Arc<dyn MessageQueues> = Arc::new(Hooked::new(queues.clone(), ShortPollsMiss));
    let listed = QueueAdmin::new(missing.clone())
        .dead_letters(10)
        .await
        .expect("list");
    assert_eq!(listed.len(), 1, "the letter is listed");
    let report = redrive(missing.as_ref(), &ledger, &clock, None, None, |_| {})
        .await
        .expect("redrive");
    assert_eq!(report.moved, 1, "the letter is redriven: {report:?}");
    dead_letter(&queues, &purged, "failed").await;
    let report = purge(missing.as_ref(), &ledger, &clock, None, |_| {})
        .await
        .expect("purge");
    assert_eq!(report.purged, 1, "the letter is purged: {report:?}");
}

/// SQS with a round trip of `LATENCY` on every call that carries a message, over the
/// in-memory twin (paused time: the waits are counted, not slept).
struct Slow;

const LATENCY: Duration = Duration::from_millis(20);

#[async_trait::async_trait]
impl QueueHooks for Slow {
    async fn each_call(&self) {
        tokio::time::sleep(LATENCY).await;
    }
}

/// An operator redrives one job from a dead-letter queue of 600 letters, through admin-api
/// (a step of `STEP_TIME`, a 10 s function timeout), with SQS answering each call in 20 ms:
/// the step ends inside the timeout. The walk hides every letter it passes and makes them
/// visible again at the end; one at a time, that took 600 round trips (12 s) after the 4 s
/// step, and the function was ended with the letters still hidden for their 30 s.
#[tokio::test(start_paused = true)]
async fn a_step_over_a_long_dead_letter_queue_ends_inside_the_functions_timeout() {
    let memory: Arc<dyn MessageQueues> = Arc::new(oes_adapters::memory::MemoryQueues::default());
    for _ in 0..600 {
        let letter = NewMessage {
            body: newsletter().encode(),
            delay_seconds: 0,
            attributes: std::collections::BTreeMap::new(),
        };
        memory
            .send(QueueName::DeadLetter, &letter)
            .await
            .expect("a letter");
    }
    let slow = Hooked::new(memory.clone(), Slow);
    let ledger = MemoryJobs::default();
    let clock = ManualClock::at(1_000);
    let step = oes_domain::pipeline::Step {
        letters: None,
        time: Some(admin_api::STEP_TIME),
    };
    let started = tokio::time::Instant::now();
    let report = redrive(&slow, &ledger, &clock, Some("no-such-job"), step, |_| {})
        .await
        .expect("redrive");
    let took = started.elapsed();
    assert_eq!(report.skipped, 600, "{report:?}");
    assert!(
        took < Duration::from_secs(10),
        "the step took {took:?} at 20 ms a call: past admin-api's 10 s timeout"
    );
    let counts = memory.counts(QueueName::DeadLetter).await.expect("counts");
    assert_eq!(
        (counts.visible, counts.in_flight),
        (600, 0),
        "every letter visible again"
    );
}
