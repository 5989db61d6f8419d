//! The contract of `JobLedger` and `JobIndex`, run against both implementations: a job is
//! recorded once, the send lease is held by one worker at a time until it passes, every outcome
//! is recorded as it says, finished jobs are not sent again, a redrive starts the attempts
//! over, and a purge leaves a job that ended unsent `dead` with reason purged; every change leaves its event in a bounded history; jobs are listed by state (and
//! kind), newest change first, in pages, and counted up to a budget.
//!
//! - One async body per property, taking `&dyn Jobs` (both ports of one store). Times are epoch seconds the body
//!   chooses, so leases pass without waiting.
//! - [`contract!`] turns each body into two tests: `in_memory::<body>` over `MemoryJobs` and
//!   `on_dynamodb::<body>` over `DynamoJobs` in a fresh table of the emulator.
//!
//! Claims are tested one after the other: moto does not lock its tables, so simultaneous
//! conditional writes prove nothing there.

use oes_adapters::dynamo::DynamoJobs;
use oes_adapters::memory::MemoryJobs;
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::ports::{
    Claim, EVENT_ERROR_CHARS, HISTORY_LIMIT, JobConflict, JobCount, JobEvent, JobEventKind,
    JobIndex, JobLedger, JobPosition, JobQuery, JobRecord, JobState, JobStatus, LIST_READ_BUDGET,
    Outcome, PURGED, StoreError,
};
use oes_domain::security::Secret;
use oes_domain::user::Email;
use oes_tests::TestEnv;

/// Both ports of one store of job records.
trait Jobs: JobLedger + JobIndex {}
impl<T: JobLedger + JobIndex> Jobs for T {}

macro_rules! contract {
    ($($body:ident),* $(,)?) => {
        mod in_memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $body() {
                    super::$body(&MemoryJobs::default()).await;
                }
            )*
        }

        mod on_dynamodb {
            use super::*;
            $(
                #[tokio::test]
                async fn $body() {
                    let env = TestEnv::spawn().await;
                    let jobs = DynamoJobs::new(
                        env.clients.dynamodb(),
                        env.provisioned.table.clone(),
                        7 * 24 * 3600,
                    );
                    super::$body(&jobs).await;
                }
            )*
        }
    };
}

contract!(
    a_job_is_recorded_queued_once,
    a_claim_takes_the_lease_and_counts_the_attempt,
    a_held_lease_makes_the_job_busy_until_it_has_passed,
    a_sent_job_is_finished_and_not_claimed_again,
    a_failed_or_dead_job_is_finished_with_its_reason,
    a_retry_keeps_the_attempt_and_a_pause_gives_it_back,
    a_requeued_job_starts_its_attempts_over,
    a_job_that_just_ended_unsent_is_requeued_once_its_workers_lease_has_passed,
    only_a_job_that_ended_unsent_is_requeued,
    a_purged_job_is_dead_with_the_reason_and_its_event,
    only_a_job_that_ended_unsent_is_recorded_purged,
    a_job_is_unqueued_only_while_no_worker_has_taken_it,
    nothing_undoes_sent_and_a_late_retry_does_not_reopen_an_ended_job,
    a_pause_after_a_redrive_never_takes_the_attempts_below_zero,
    absent_jobs_are_not_found_and_not_created,
    claiming_a_job_without_a_record_creates_it,
    each_change_leaves_its_event_in_the_history,
    the_history_keeps_only_its_last_events,
    jobs_are_listed_by_status_newest_change_first_in_pages,
    a_kind_filter_and_stalled_jobs_list_across_pages,
    a_filtered_page_reads_at_most_its_budget_and_the_next_goes_on_past_it,
    counts_are_exact_within_the_budget_and_a_lower_bound_beyond,
);

// ---- helpers ------------------------------------------------------------------------------

/// A job created at 90 that may be attempted 4 times.
fn job() -> EmailJob {
    let template = EmailTemplate::Generic {
        subject: "Notice".into(),
        text: "Hello".into(),
    };
    EmailJob::new(
        Email::parse("ada@example.com").expect("valid"),
        template,
        90,
    )
    .with_max_attempts(4)
    .expect("valid")
}

/// The record of `job` as `record_queued` at `now` writes it.
fn queued(job: &EmailJob, now: i64) -> JobRecord {
    JobRecord {
        job_id: job.job_id.clone(),
        kind: "generic".into(),
        recipient: "ada@example.com".into(),
        subject: Some("Notice".into()),
        status: JobStatus::Queued,
        attempts: 0,
        max_attempts: 4,
        last_error: None,
        ses_message_id: None,
        lease_until: None,
        created_at: 90,
        updated_at: now,
        history: Vec::new(),
    }
}

/// `record` while a worker holds the lease it took at `now` for `lease` seconds.
fn sending(record: &JobRecord, attempts: u32, now: i64, lease: i64) -> JobRecord {
    JobRecord {
        status: JobStatus::Sending,
        attempts,
        lease_until: Some(now + lease),
        updated_at: now,
        ..record.clone()
    }
}

/// The record of `job_id`, without its history (the history's own bodies check it).
async fn record_of(jobs: &dyn Jobs, job_id: &str) -> JobRecord {
    without_history(jobs.get(job_id).await.expect("read").expect("recorded"))
}

fn without_history(record: JobRecord) -> JobRecord {
    JobRecord {
        history: Vec::new(),
        ..record
    }
}

/// A claim's answer (a finished record without its history).
async fn claim(jobs: &dyn Jobs, job: &EmailJob, now: i64, lease: i64) -> Claim {
    match jobs.claim(job, now, lease).await.expect("claim") {
        Claim::Finished(record) => Claim::Finished(without_history(record)),
        other => other,
    }
}

async fn history_of(jobs: &dyn Jobs, job_id: &str) -> Vec<JobEvent> {
    jobs.get(job_id)
        .await
        .expect("read")
        .expect("recorded")
        .history
}

fn event(event: JobEventKind, at: i64) -> JobEvent {
    JobEvent::new(event, at)
}

fn failed_with(event: JobEventKind, at: i64, error: &str) -> JobEvent {
    JobEvent {
        error: Some(error.into()),
        ..JobEvent::new(event, at)
    }
}

/// A verification job created at 90.
fn verification() -> EmailJob {
    let template = EmailTemplate::Verification {
        name: "Ada".into(),
        token: Secret::new("a-link-token"),
        choose_password: false,
    };
    EmailJob::new(
        Email::parse("ada@example.com").expect("valid"),
        template,
        90,
    )
}

/// Every job of `state` (and `kind`) at `now`, page after page of `limit`: their ids, and the
/// size of each page.
async fn listed(
    jobs: &dyn Jobs,
    state: JobState,
    kind: Option<&str>,
    limit: usize,
    now: i64,
) -> (Vec<String>, Vec<usize>) {
    let (mut ids, mut pages) = (Vec::new(), Vec::new());
    let mut after = None;
    loop {
        let query = JobQuery {
            state,
            kind: kind.map(str::to_owned),
            limit,
            after,
        };
        let page = jobs.list(&query, now).await.expect("listed");
        assert!(page.jobs.len() <= limit, "{page:?}");
        assert!(
            page.jobs.iter().all(|job| job.history.is_empty()),
            "a listing carries no history"
        );
        pages.push(page.jobs.len());
        ids.extend(page.jobs.into_iter().map(|job| job.job_id));
        match page.next {
            Some(next) => after = Some(next),
            None => return (ids, pages),
        }
        assert!(pages.len() < 50, "the listing ends");
    }
}

/// The ids of `jobs`, newest (latest-made) first, as a listing orders jobs changed in the same
/// second: by id, descending.
fn by_id_descending(jobs: &[&EmailJob]) -> Vec<String> {
    let mut ids: Vec<String> = jobs.iter().map(|job| job.job_id.clone()).collect();
    ids.sort_unstable_by(|a, b| b.cmp(a));
    ids
}

async fn finish(jobs: &dyn Jobs, job: &EmailJob, outcome: Outcome, now: i64) {
    jobs.finish(&job.job_id, outcome, now)
        .await
        .expect("finished");
}

// ---- bodies -------------------------------------------------------------------------------

/// `DynamoJobs` in `env`'s table over a client that loses the answers of its next `times`
/// writes that landed (the SDK sends each again).
fn losing(env: &TestEnv, times: u32) -> DynamoJobs {
    let client = oes_tests::lost_answers::LoseAnswers::client(&env.clients.dynamodb(), times);
    DynamoJobs::new(client, env.provisioned.table.clone(), 7 * 24 * 3600)
}

/// The store records a job and its answer is lost (a timeout after the write landed): the SDK
/// sends the same write again, which finds the record it made itself. That is the job recorded,
/// not `JobExists` (a producer took that for another producer's job, and did not send it: a
/// verification email lost, a result email left to the deadline's sweep). Another write of the
/// same job, after that, is still refused. Only DynamoDB: the retry is the SDK's.
#[tokio::test]
async fn on_dynamodb_a_job_recorded_whose_answer_was_lost() {
    let env = TestEnv::spawn().await;
    let jobs = losing(&env, 1);
    let job = job();
    jobs.record_queued(&job, 100)
        .await
        .expect("recorded, its first answer lost");
    assert_eq!(record_of(&jobs, &job.job_id).await, queued(&job, 100));
    let again = jobs.record_queued(&job, 100).await;
    assert!(
        matches!(again, Err(StoreError::Conflict(JobConflict::JobExists))),
        "{again:?}"
    );
}

/// A worker's claim lands and its answer is lost: the SDK sends it again, which finds the lease
/// it took itself. That is the lease acquired, once, not `Busy` (the worker would put the email
/// back for the lease's length, and count one more attempt when it claims it again).
#[tokio::test]
async fn on_dynamodb_a_claim_whose_answer_was_lost() {
    let env = TestEnv::spawn().await;
    let jobs = losing(&env, 0);
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    let worker = losing(&env, 1);
    assert_eq!(
        claim(&worker, &job, 110, 30).await,
        Claim::Acquired { attempt: 1 }
    );
    assert_eq!(
        record_of(&jobs, &job.job_id).await,
        sending(&queued(&job, 100), 1, 110, 30)
    );
    assert_eq!(history_of(&jobs, &job.job_id).await.len(), 1, "one claim");
    assert_eq!(
        claim(&jobs, &job, 111, 30).await,
        Claim::Busy { lease_until: 140 },
        "another worker's claim still finds the lease held"
    );
}

/// Every change of a job's life, each landing and losing its answer once (the SDK sends each
/// again): each is made once, and answers as made — no event twice, no attempt given back
/// twice, no requeue refused as "not ended" by its own landing.
#[tokio::test]
async fn on_dynamodb_each_change_whose_answer_was_lost_is_made_once() {
    let env = TestEnv::spawn().await;
    let jobs = losing(&env, u32::MAX);
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    assert_eq!(
        claim(&jobs, &job, 110, 30).await,
        Claim::Acquired { attempt: 1 }
    );
    let paused = Outcome::Paused {
        error: "sending paused".into(),
        retry_at: 0,
    };
    finish(&jobs, &job, paused, 113).await;
    assert_eq!(
        record_of(&jobs, &job.job_id).await.attempts,
        0,
        "given back once"
    );
    assert_eq!(
        claim(&jobs, &job, 120, 30).await,
        Claim::Acquired { attempt: 1 }
    );
    let failed = Outcome::Failed {
        reason: "rejected".into(),
    };
    finish(&jobs, &job, failed, 125).await;
    // Once the failing worker's lease (until 150) has passed.
    jobs.requeue(&job.job_id, 151).await.expect("requeued");
    assert_eq!(
        claim(&jobs, &job, 160, 30).await,
        Claim::Acquired { attempt: 1 }
    );
    let sent = Outcome::Sent {
        ses_message_id: "ses-1".into(),
    };
    finish(&jobs, &job, sent, 165).await;
    let events: Vec<JobEventKind> = history_of(&jobs, &job.job_id)
        .await
        .into_iter()
        .map(|event| event.event)
        .collect();
    use JobEventKind::*;
    assert_eq!(
        events,
        [Sending, Paused, Sending, Failed, Requeued, Sending, Sent]
    );
    assert_eq!(record_of(&jobs, &job.job_id).await.status, JobStatus::Sent);
}

async fn a_job_is_recorded_queued_once(jobs: &dyn Jobs) {
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    assert_eq!(record_of(jobs, &job.job_id).await, queued(&job, 100));
    let again = jobs.record_queued(&job, 105).await;
    assert!(
        matches!(again, Err(StoreError::Conflict(JobConflict::JobExists))),
        "{again:?}"
    );
    assert_eq!(
        record_of(jobs, &job.job_id).await,
        queued(&job, 100),
        "the first record stands"
    );
    let other = self::job();
    jobs.record_queued(&other, 101).await.expect("recorded");
    assert_eq!(record_of(jobs, &other.job_id).await, queued(&other, 101));
}

async fn a_claim_takes_the_lease_and_counts_the_attempt(jobs: &dyn Jobs) {
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    assert_eq!(
        claim(jobs, &job, 110, 30).await,
        Claim::Acquired { attempt: 1 }
    );
    assert_eq!(
        record_of(jobs, &job.job_id).await,
        sending(&queued(&job, 100), 1, 110, 30)
    );
}

async fn a_held_lease_makes_the_job_busy_until_it_has_passed(jobs: &dyn Jobs) {
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    assert_eq!(
        claim(jobs, &job, 110, 30).await,
        Claim::Acquired { attempt: 1 }
    );
    let held = record_of(jobs, &job.job_id).await;
    for now in [110, 120, 140] {
        assert_eq!(
            claim(jobs, &job, now, 30).await,
            Claim::Busy { lease_until: 140 },
            "at {now}, the lease to 140 holds"
        );
    }
    assert_eq!(
        record_of(jobs, &job.job_id).await,
        held,
        "a busy claim changes nothing and counts no attempt"
    );
    assert_eq!(
        claim(jobs, &job, 141, 30).await,
        Claim::Acquired { attempt: 2 },
        "a lease that has passed (its worker died) is taken over"
    );
    assert_eq!(
        record_of(jobs, &job.job_id).await,
        sending(&queued(&job, 100), 2, 141, 30)
    );
}

async fn a_sent_job_is_finished_and_not_claimed_again(jobs: &dyn Jobs) {
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    claim(jobs, &job, 110, 30).await;
    let sent = Outcome::Sent {
        ses_message_id: "ses-1".into(),
    };
    finish(jobs, &job, sent, 115).await;
    let expected = JobRecord {
        status: JobStatus::Sent,
        attempts: 1,
        ses_message_id: Some("ses-1".into()),
        updated_at: 115,
        ..queued(&job, 100)
    };
    assert_eq!(record_of(jobs, &job.job_id).await, expected);
    for now in [116, 200] {
        assert_eq!(
            claim(jobs, &job, now, 30).await,
            Claim::Finished(expected.clone()),
            "acknowledged without sending, at {now}"
        );
    }
    assert_eq!(record_of(jobs, &job.job_id).await, expected);
}

async fn a_failed_or_dead_job_is_finished_with_its_reason(jobs: &dyn Jobs) {
    let outcomes = [
        (
            Outcome::Failed {
                reason: "bad address".into(),
            },
            JobStatus::Failed,
            "bad address",
        ),
        (
            Outcome::Dead {
                reason: "throttled".into(),
            },
            JobStatus::Dead,
            "throttled",
        ),
    ];
    for (outcome, status, reason) in outcomes {
        let job = job();
        jobs.record_queued(&job, 100).await.expect("recorded");
        claim(jobs, &job, 110, 30).await;
        finish(jobs, &job, outcome, 112).await;
        let expected = JobRecord {
            status,
            attempts: 1,
            last_error: Some(reason.into()),
            // Kept until it runs out: the worker may still be writing.
            lease_until: Some(140),
            updated_at: 112,
            ..queued(&job, 100)
        };
        assert_eq!(record_of(jobs, &job.job_id).await, expected);
        assert_eq!(
            claim(jobs, &job, 500, 30).await,
            Claim::Finished(expected.clone()),
            "{status:?} is terminal"
        );
        assert_eq!(record_of(jobs, &job.job_id).await, expected);
    }
}

async fn a_retry_keeps_the_attempt_and_a_pause_gives_it_back(jobs: &dyn Jobs) {
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    claim(jobs, &job, 110, 30).await;
    let retry = Outcome::Retrying {
        error: "timeout".into(),
        retry_at: 125,
    };
    finish(jobs, &job, retry, 111).await;
    let retrying = JobRecord {
        status: JobStatus::Retrying,
        attempts: 1,
        last_error: Some("timeout".into()),
        lease_until: Some(125),
        updated_at: 111,
        ..queued(&job, 100)
    };
    assert_eq!(
        record_of(jobs, &job.job_id).await,
        retrying,
        "the lease is given up for the retry time"
    );
    assert_eq!(
        claim(jobs, &job, 124, 30).await,
        Claim::Busy { lease_until: 125 },
        "another copy of the job waits for its retry time, spending no attempt"
    );
    assert_eq!(record_of(jobs, &job.job_id).await, retrying);
    assert_eq!(
        claim(jobs, &job, 125, 30).await,
        Claim::Acquired { attempt: 2 },
        "a retrying job is claimed at its retry time"
    );
    assert_eq!(
        record_of(jobs, &job.job_id).await,
        sending(&retrying, 2, 125, 30),
        "the last error stays while it is sent again"
    );

    let paused = Outcome::Paused {
        error: "sending paused".into(),
        retry_at: 1026,
    };
    finish(jobs, &job, paused, 126).await;
    let expected = JobRecord {
        status: JobStatus::Retrying,
        attempts: 1,
        last_error: Some("sending paused".into()),
        lease_until: Some(1026),
        updated_at: 126,
        ..queued(&job, 100)
    };
    assert_eq!(
        record_of(jobs, &job.job_id).await,
        expected,
        "a paused attempt does not count"
    );
    assert_eq!(
        claim(jobs, &job, 500, 30).await,
        Claim::Busy { lease_until: 1026 },
        "nor does a copy sent before the pause's end"
    );
    assert_eq!(
        claim(jobs, &job, 1026, 30).await,
        Claim::Acquired { attempt: 2 },
        "the next attempt has the number the paused one had"
    );
}

/// A worker whose lease ran out finds the account paused, after another worker took the job
/// over, failed it, and a redrive reset it: the pause gives back an attempt the record no longer
/// counts.
async fn a_pause_after_a_redrive_never_takes_the_attempts_below_zero(jobs: &dyn Jobs) {
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    claim(jobs, &job, 110, 30).await;
    claim(jobs, &job, 150, 30).await;
    let failed = Outcome::Failed {
        reason: "MessageRejected".into(),
    };
    finish(jobs, &job, failed, 151).await;
    jobs.requeue(&job.job_id, 181).await.expect("requeued");
    let paused = Outcome::Paused {
        error: "SendingPaused".into(),
        retry_at: 0,
    };
    finish(jobs, &job, paused, 182).await;
    let record = jobs
        .get(&job.job_id)
        .await
        .expect("the record still reads")
        .expect("recorded");
    assert_eq!((record.status, record.attempts), (JobStatus::Retrying, 0));
    assert_eq!(
        claim(jobs, &job, 190, 30).await,
        Claim::Acquired { attempt: 1 }
    );
}

async fn a_requeued_job_starts_its_attempts_over(jobs: &dyn Jobs) {
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    claim(jobs, &job, 110, 30).await;
    let dead = Outcome::Dead {
        reason: "throttled".into(),
    };
    finish(jobs, &job, dead, 111).await;
    jobs.requeue(&job.job_id, 200).await.expect("requeued");
    let requeued = JobRecord {
        last_error: Some("throttled".into()),
        updated_at: 200,
        ..queued(&job, 100)
    };
    assert_eq!(
        record_of(jobs, &job.job_id).await,
        requeued,
        "queued again with no attempts used; the last error stays on the record"
    );
    assert_eq!(
        claim(jobs, &job, 210, 30).await,
        Claim::Acquired { attempt: 1 }
    );
}

/// A worker records a job failed (its letter already on the dead-letter queue), the answer is
/// lost, and it writes again. A redrive between the two writes would be undone by the second:
/// the job `failed` again while its message is back on its lane, where the next claim finds it
/// finished and acknowledges it unsent. So a job that ended unsent keeps its worker's lease
/// until it runs out (the worker's writes all fall within it), and a requeue or a purge waits.
async fn a_job_that_just_ended_unsent_is_requeued_once_its_workers_lease_has_passed(
    jobs: &dyn Jobs,
) {
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    claim(jobs, &job, 110, 30).await;
    let failed = || Outcome::Failed {
        reason: "MessageRejected".into(),
    };
    finish(jobs, &job, failed(), 111).await;
    let requeued = jobs.requeue(&job.job_id, 112).await;
    assert!(
        matches!(requeued, Err(StoreError::Conflict(JobConflict::Leased))),
        "not while the worker may still be writing: {requeued:?}"
    );
    let purged = jobs.purged(&job.job_id, 112).await;
    assert!(
        matches!(purged, Err(StoreError::Conflict(JobConflict::Leased))),
        "{purged:?}"
    );
    finish(jobs, &job, failed(), 113).await;
    assert_eq!(record_of(jobs, &job.job_id).await.status, JobStatus::Failed);
    jobs.requeue(&job.job_id, 141)
        .await
        .expect("requeued once the lease has passed");
    assert_eq!(record_of(jobs, &job.job_id).await.status, JobStatus::Queued);
}

async fn only_a_job_that_ended_unsent_is_requeued(jobs: &dyn Jobs) {
    let sent = job();
    jobs.record_queued(&sent, 100).await.expect("recorded");
    claim(jobs, &sent, 110, 30).await;
    let accepted = Outcome::Sent {
        ses_message_id: "ses-1".into(),
    };
    finish(jobs, &sent, accepted, 111).await;
    let before = record_of(jobs, &sent.job_id).await;
    let requeued = jobs.requeue(&sent.job_id, 200).await;
    assert!(
        matches!(requeued, Err(StoreError::Conflict(JobConflict::Sent))),
        "a sent job is not requeued: {requeued:?}"
    );
    assert_eq!(
        record_of(jobs, &sent.job_id).await,
        before,
        "and stays sent"
    );

    let sending = job();
    jobs.record_queued(&sending, 100).await.expect("recorded");
    claim(jobs, &sending, 110, 30).await;
    let before = record_of(jobs, &sending.job_id).await;
    let requeued = jobs.requeue(&sending.job_id, 120).await;
    assert!(
        matches!(requeued, Err(StoreError::Conflict(JobConflict::Leased))),
        "a job a worker is sending is not reset: {requeued:?}"
    );
    let requeued = jobs.requeue(&sending.job_id, 200).await;
    assert!(
        matches!(requeued, Err(StoreError::Conflict(JobConflict::NotEnded))),
        "nor one whose lease has run out: {requeued:?}"
    );
    assert_eq!(record_of(jobs, &sending.job_id).await, before);
    let queued_job = job();
    jobs.record_queued(&queued_job, 100)
        .await
        .expect("recorded");
    let requeued = jobs.requeue(&queued_job.job_id, 120).await;
    assert!(
        matches!(requeued, Err(StoreError::Conflict(JobConflict::NotEnded))),
        "a queued job is not reset: {requeued:?}"
    );
}

async fn a_purged_job_is_dead_with_the_reason_and_its_event(jobs: &dyn Jobs) {
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    claim(jobs, &job, 110, 30).await;
    let failed = Outcome::Failed {
        reason: "MessageRejected".into(),
    };
    finish(jobs, &job, failed, 111).await;
    jobs.purged(&job.job_id, 200)
        .await
        .expect("recorded purged");
    let purged = JobRecord {
        status: JobStatus::Dead,
        attempts: 1,
        last_error: Some(PURGED.into()),
        updated_at: 200,
        ..queued(&job, 100)
    };
    assert_eq!(record_of(jobs, &job.job_id).await, purged);
    assert_eq!(
        history_of(jobs, &job.job_id).await.last(),
        Some(&event(JobEventKind::Purged, 200))
    );
    assert_eq!(
        listed(jobs, JobState::Dead, None, 10, 200).await.0,
        vec![job.job_id.clone()],
        "listed as dead"
    );
    assert!(
        listed(jobs, JobState::Failed, None, 10, 200)
            .await
            .0
            .is_empty()
    );
    assert_eq!(
        claim(jobs, &job, 210, 30).await,
        Claim::Finished(purged.clone()),
        "a copy still on a lane is not sent"
    );
    // A purge that ran again (it died before deleting the letter) changes nothing but the time.
    jobs.purged(&job.job_id, 300).await.expect("again");
    assert_eq!(
        record_of(jobs, &job.job_id).await,
        JobRecord {
            updated_at: 300,
            ..purged
        }
    );
}

async fn only_a_job_that_ended_unsent_is_recorded_purged(jobs: &dyn Jobs) {
    let sent = job();
    jobs.record_queued(&sent, 100).await.expect("recorded");
    claim(jobs, &sent, 110, 30).await;
    let accepted = Outcome::Sent {
        ses_message_id: "ses-1".into(),
    };
    finish(jobs, &sent, accepted, 111).await;
    let sending = job();
    jobs.record_queued(&sending, 100).await.expect("recorded");
    claim(jobs, &sending, 110, 30).await;
    let queued_job = job();
    jobs.record_queued(&queued_job, 100)
        .await
        .expect("recorded");
    let cases = [
        (&sent, 200, JobConflict::Sent, "a sent job stays sent"),
        (&sending, 120, JobConflict::Leased, "a worker holds it"),
        (&sending, 200, JobConflict::NotEnded, "its lease ran out"),
        (&queued_job, 200, JobConflict::NotEnded, "it is queued"),
    ];
    for (job, now, conflict, why) in cases {
        let before = record_of(jobs, &job.job_id).await;
        let purged = jobs.purged(&job.job_id, now).await;
        assert!(
            matches!(&purged, Err(StoreError::Conflict(c)) if *c == conflict),
            "{why}: {purged:?}"
        );
        assert_eq!(record_of(jobs, &job.job_id).await, before, "{why}");
    }
    let absent = jobs.purged("no-such-job", 200).await;
    assert!(matches!(absent, Err(StoreError::NotFound)), "{absent:?}");
}

/// A producer whose send to the lane answered an error records the job unqueued — `failed`, so
/// a copy the queue took after all is not sent — only while no worker has taken it. A job a
/// worker took reached its lane: its record stays as it is, and the answer says so.
async fn a_job_is_unqueued_only_while_no_worker_has_taken_it(jobs: &dyn Jobs) {
    let lost = job();
    jobs.record_queued(&lost, 100).await.expect("recorded");
    jobs.unqueued(&lost.job_id, "could not be queued: timeout", 101)
        .await
        .expect("unqueued");
    assert_eq!(
        record_of(jobs, &lost.job_id).await,
        JobRecord {
            status: JobStatus::Failed,
            last_error: Some("could not be queued: timeout".into()),
            updated_at: 101,
            ..queued(&lost, 100)
        }
    );
    assert!(
        matches!(claim(jobs, &lost, 102, 30).await, Claim::Finished(record) if record.status == JobStatus::Failed),
        "a copy that reaches a worker is not sent"
    );
    // Nor one that reaches the dead-letter queue (its deletes lost): its caller was told the
    // email failed, and may have asked again.
    let requeued = jobs.requeue(&lost.job_id, 103).await;
    assert!(
        matches!(requeued, Err(StoreError::Conflict(JobConflict::Unqueued))),
        "a redrive does not send it: {requeued:?}"
    );
    // A purge of its letter leaves the record saying so, so no later redrive sends it.
    let purged = jobs.purged(&lost.job_id, 104).await;
    assert!(
        matches!(purged, Err(StoreError::Conflict(JobConflict::Unqueued))),
        "{purged:?}"
    );
    let requeued = jobs.requeue(&lost.job_id, 105).await;
    assert!(
        matches!(requeued, Err(StoreError::Conflict(JobConflict::Unqueued))),
        "after a purge: {requeued:?}"
    );
    assert_eq!(
        record_of(jobs, &lost.job_id).await.status,
        JobStatus::Failed
    );

    let sent = job();
    jobs.record_queued(&sent, 100).await.expect("recorded");
    claim(jobs, &sent, 101, 30).await;
    let accepted = Outcome::Sent {
        ses_message_id: "ses-1".into(),
    };
    finish(jobs, &sent, accepted, 102).await;
    let sending = job();
    jobs.record_queued(&sending, 100).await.expect("recorded");
    claim(jobs, &sending, 101, 30).await;
    let retrying = job();
    jobs.record_queued(&retrying, 100).await.expect("recorded");
    claim(jobs, &retrying, 101, 30).await;
    let failure = Outcome::Retrying {
        error: "throttled".into(),
        retry_at: 0,
    };
    finish(jobs, &retrying, failure, 102).await;
    let cases = [
        (&sent, JobConflict::Sent, "sent"),
        (&sending, JobConflict::Taken, "a worker holds it"),
        (&retrying, JobConflict::Taken, "a worker tried it"),
    ];
    for (job, conflict, why) in cases {
        let before = record_of(jobs, &job.job_id).await;
        let unqueued = jobs.unqueued(&job.job_id, "could not be queued", 103).await;
        assert!(
            matches!(&unqueued, Err(StoreError::Conflict(c)) if *c == conflict),
            "{why}: {unqueued:?}"
        );
        assert_eq!(record_of(jobs, &job.job_id).await, before, "{why}");
    }
    let absent = jobs
        .unqueued("no-such-job", "could not be queued", 103)
        .await;
    assert!(matches!(absent, Err(StoreError::NotFound)), "{absent:?}");
}

/// A worker whose lease ran out may report after another worker finished the job: its late
/// `retrying` must not turn a sent job into one that is sent again, nor reopen a dead one.
async fn nothing_undoes_sent_and_a_late_retry_does_not_reopen_an_ended_job(jobs: &dyn Jobs) {
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    claim(jobs, &job, 110, 30).await;
    let accepted = Outcome::Sent {
        ses_message_id: "ses-1".into(),
    };
    finish(jobs, &job, accepted, 111).await;
    let sent = record_of(jobs, &job.job_id).await;
    for late in [
        Outcome::Retrying {
            error: "late".into(),
            retry_at: 0,
        },
        Outcome::Paused {
            error: "late".into(),
            retry_at: 0,
        },
        Outcome::Dead {
            reason: "late".into(),
        },
        Outcome::Failed {
            reason: "late".into(),
        },
    ] {
        let refused = jobs.finish(&job.job_id, late, 120).await;
        assert!(
            matches!(refused, Err(StoreError::Conflict(JobConflict::Sent))),
            "{refused:?}"
        );
    }
    assert_eq!(
        record_of(jobs, &job.job_id).await,
        sent,
        "still sent, as it was"
    );

    let dead = self::job();
    jobs.record_queued(&dead, 100).await.expect("recorded");
    claim(jobs, &dead, 110, 30).await;
    finish(
        jobs,
        &dead,
        Outcome::Dead {
            reason: "exhausted".into(),
        },
        111,
    )
    .await;
    let ended = record_of(jobs, &dead.job_id).await;
    for late in [
        Outcome::Retrying {
            error: "late".into(),
            retry_at: 0,
        },
        Outcome::Paused {
            error: "late".into(),
            retry_at: 0,
        },
    ] {
        let refused = jobs.finish(&dead.job_id, late, 120).await;
        assert!(
            matches!(refused, Err(StoreError::Conflict(JobConflict::Ended))),
            "{refused:?}"
        );
    }
    assert_eq!(record_of(jobs, &dead.job_id).await, ended, "still dead");
    let after_all = Outcome::Sent {
        ses_message_id: "ses-2".into(),
    };
    finish(jobs, &dead, after_all, 130).await;
    assert_eq!(
        record_of(jobs, &dead.job_id).await.status,
        JobStatus::Sent,
        "a send that went out after all is recorded"
    );
}

async fn absent_jobs_are_not_found_and_not_created(jobs: &dyn Jobs) {
    let absent = "no-such-job";
    assert_eq!(jobs.get(absent).await.expect("read"), None);
    let sent = Outcome::Sent {
        ses_message_id: "ses-1".into(),
    };
    let finished = jobs.finish(absent, sent, 100).await;
    assert!(
        matches!(finished, Err(StoreError::NotFound)),
        "{finished:?}"
    );
    let requeued = jobs.requeue(absent, 100).await;
    assert!(
        matches!(requeued, Err(StoreError::NotFound)),
        "{requeued:?}"
    );
    assert_eq!(jobs.get(absent).await.expect("read"), None);
}

async fn claiming_a_job_without_a_record_creates_it(jobs: &dyn Jobs) {
    let job = job();
    assert_eq!(
        claim(jobs, &job, 200, 30).await,
        Claim::Acquired { attempt: 1 }
    );
    assert_eq!(
        record_of(jobs, &job.job_id).await,
        sending(&queued(&job, 200), 1, 200, 30),
        "the record is made from the job"
    );
    let late = jobs.record_queued(&job, 201).await;
    assert!(
        matches!(late, Err(StoreError::Conflict(JobConflict::JobExists))),
        "{late:?}"
    );
    assert_eq!(
        claim(jobs, &job, 210, 30).await,
        Claim::Busy { lease_until: 230 }
    );
}

async fn each_change_leaves_its_event_in_the_history(jobs: &dyn Jobs) {
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    assert_eq!(
        history_of(jobs, &job.job_id).await,
        [],
        "queued: nothing happened yet"
    );
    claim(jobs, &job, 110, 30).await;
    let timeout = Outcome::Retrying {
        error: "timeout".into(),
        retry_at: 0,
    };
    finish(jobs, &job, timeout, 111).await;
    claim(jobs, &job, 120, 30).await;
    let paused = Outcome::Paused {
        error: "SendingPaused".into(),
        retry_at: 0,
    };
    finish(jobs, &job, paused, 121).await;
    claim(jobs, &job, 130, 30).await;
    // A worker that crashed: its lease runs out and the next claim takes the job over.
    claim(jobs, &job, 200, 30).await;
    let sent = Outcome::Sent {
        ses_message_id: "ses-1".into(),
    };
    finish(jobs, &job, sent, 201).await;
    assert_eq!(
        history_of(jobs, &job.job_id).await,
        [
            event(JobEventKind::Sending, 110),
            failed_with(JobEventKind::Retrying, 111, "timeout"),
            event(JobEventKind::Sending, 120),
            failed_with(JobEventKind::Paused, 121, "SendingPaused"),
            event(JobEventKind::Sending, 130),
            event(JobEventKind::Sending, 200),
            JobEvent {
                ses_message_id: Some("ses-1".into()),
                ..event(JobEventKind::Sent, 201)
            },
        ]
    );

    let dead = self::job();
    jobs.record_queued(&dead, 100).await.expect("recorded");
    claim(jobs, &dead, 110, 30).await;
    let long = "x".repeat(EVENT_ERROR_CHARS + 100);
    let exhausted = Outcome::Dead {
        reason: long.clone(),
    };
    finish(jobs, &dead, exhausted, 111).await;
    jobs.requeue(&dead.job_id, 200).await.expect("requeued");
    assert_eq!(
        history_of(jobs, &dead.job_id).await,
        [
            event(JobEventKind::Sending, 110),
            failed_with(JobEventKind::Dead, 111, &long[..EVENT_ERROR_CHARS]),
            event(JobEventKind::Requeued, 200),
        ],
        "an event keeps the error's first {EVENT_ERROR_CHARS} characters"
    );
    assert_eq!(
        record_of(jobs, &dead.job_id).await.last_error,
        Some(long),
        "the record keeps the whole last error"
    );
}

async fn the_history_keeps_only_its_last_events(jobs: &dyn Jobs) {
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    // Retries that never use up an attempt (the account is paused): as many as it takes.
    let rounds = HISTORY_LIMIT as i64;
    for round in 0..rounds {
        let at = 200 + 10 * round;
        claim(jobs, &job, at, 5).await;
        let paused = Outcome::Paused {
            error: format!("paused {round}"),
            retry_at: 0,
        };
        finish(jobs, &job, paused, at + 1).await;
    }
    let history = history_of(jobs, &job.job_id).await;
    assert_eq!(history.len(), HISTORY_LIMIT, "{history:?}");
    let last = 200 + 10 * (rounds - 1);
    assert_eq!(
        history.last(),
        Some(&failed_with(
            JobEventKind::Paused,
            last + 1,
            &format!("paused {}", rounds - 1)
        )),
        "the newest event is kept"
    );
    let first_kept = rounds / 2;
    assert_eq!(
        history.first(),
        Some(&event(JobEventKind::Sending, 200 + 10 * first_kept)),
        "the oldest events are dropped"
    );
}

async fn jobs_are_listed_by_status_newest_change_first_in_pages(jobs: &dyn Jobs) {
    let made: Vec<EmailJob> = (0..5).map(|_| job()).collect();
    for (at, job) in (100..).zip(&made) {
        jobs.record_queued(job, at).await.expect("recorded");
    }
    let [first, sending, sent, fourth, fifth] = [0, 1, 2, 3, 4].map(|i| &made[i]);
    claim(jobs, sending, 110, 30).await;
    claim(jobs, sent, 111, 30).await;
    let accepted = Outcome::Sent {
        ses_message_id: "ses-1".into(),
    };
    finish(jobs, sent, accepted, 112).await;
    // Two more queued in the same second: ordered by id.
    let (same_a, same_b) = (job(), job());
    for job in [&same_a, &same_b] {
        jobs.record_queued(job, 105).await.expect("recorded");
    }

    let mut queued = by_id_descending(&[&same_a, &same_b]);
    queued.extend([fifth, fourth, first].map(|job| job.job_id.clone()));
    assert_eq!(
        listed(jobs, JobState::Queued, None, 2, 120).await,
        (queued.clone(), vec![2, 2, 1]),
        "newest change first, two a page"
    );
    assert_eq!(
        listed(jobs, JobState::Queued, None, 5, 120).await,
        (queued, vec![5]),
        "a page that holds them all has no next"
    );
    let query = JobQuery {
        state: JobState::Sending,
        kind: None,
        limit: 10,
        after: None,
    };
    let page = jobs.list(&query, 120).await.expect("listed");
    assert_eq!(
        page.jobs,
        [JobRecord {
            subject: None,
            ..record_of(jobs, &sending.job_id).await
        }],
        "a listed job is its record, without the history and the subject"
    );
    assert_eq!(page.next, None);
    assert_eq!(
        listed(jobs, JobState::Sent, None, 10, 120).await.0,
        std::slice::from_ref(&sent.job_id)
    );
    for state in [JobState::Retrying, JobState::Failed, JobState::Dead] {
        assert_eq!(listed(jobs, state, None, 10, 120).await, (vec![], vec![0]));
    }
    // A page after a position lists what changed before it, whether or not a job is there
    // (no id sorts below the empty one: every job changed at 104 is after it).
    let after = JobQuery {
        state: JobState::Queued,
        kind: None,
        limit: 10,
        after: Some(JobPosition {
            updated_at: 104,
            job_id: String::new(),
        }),
    };
    let ids: Vec<String> = jobs
        .list(&after, 120)
        .await
        .expect("listed")
        .jobs
        .into_iter()
        .map(|job| job.job_id)
        .collect();
    assert_eq!(ids, [fourth.job_id.clone(), first.job_id.clone()]);
}

async fn a_kind_filter_and_stalled_jobs_list_across_pages(jobs: &dyn Jobs) {
    let (notices, verifications): (Vec<EmailJob>, Vec<EmailJob>) = (
        (0..3).map(|_| job()).collect(),
        (0..3).map(|_| verification()).collect(),
    );
    for (at, job) in (100..).zip(notices.iter().zip(&verifications)) {
        jobs.record_queued(job.0, at).await.expect("recorded");
        jobs.record_queued(job.1, at).await.expect("recorded");
    }
    let newest_first = |made: &[EmailJob]| -> Vec<String> {
        made.iter().rev().map(|job| job.job_id.clone()).collect()
    };
    assert_eq!(
        listed(jobs, JobState::Queued, Some("verification"), 2, 120)
            .await
            .0,
        newest_first(&verifications)
    );
    assert_eq!(
        listed(jobs, JobState::Queued, Some("generic"), 1, 120)
            .await
            .0,
        newest_first(&notices)
    );
    assert_eq!(
        listed(jobs, JobState::Queued, Some("exam_result"), 2, 120).await,
        (vec![], vec![0])
    );

    // Leases to 140 and to 200: at 150 the first is stalled, both are sending.
    let (crashed, busy) = (&notices[0], &verifications[0]);
    claim(jobs, crashed, 110, 30).await;
    claim(jobs, busy, 111, 89).await;
    assert_eq!(
        listed(jobs, JobState::Stalled, None, 1, 150).await.0,
        std::slice::from_ref(&crashed.job_id)
    );
    assert_eq!(
        listed(jobs, JobState::Sending, None, 1, 150).await.0,
        [busy.job_id.clone(), crashed.job_id.clone()],
        "stalled jobs are sending jobs too"
    );
    assert_eq!(
        listed(jobs, JobState::Stalled, None, 5, 130).await.0,
        Vec::<String>::new(),
        "a lease that holds is not stalled"
    );
    assert_eq!(
        listed(jobs, JobState::Stalled, Some("verification"), 5, 150)
            .await
            .0,
        Vec::<String>::new()
    );
}

/// A filtered listing reads at most [`LIST_READ_BUDGET`] records a page: with a whole budget of
/// newer records that do not match, its first page holds nothing and says where to go on, and
/// the next finds the older job that does.
async fn a_filtered_page_reads_at_most_its_budget_and_the_next_goes_on_past_it(jobs: &dyn Jobs) {
    use futures_util::{StreamExt, stream};
    let older = verification();
    jobs.record_queued(&older, 100).await.expect("recorded");
    let newer: Vec<EmailJob> = (0..LIST_READ_BUDGET).map(|_| job()).collect();
    stream::iter(&newer)
        .for_each_concurrent(16, |job| async move {
            jobs.record_queued(job, 101).await.expect("recorded");
        })
        .await;
    assert_eq!(
        listed(jobs, JobState::Queued, Some("verification"), 10, 120).await,
        (vec![older.job_id.clone()], vec![0, 1]),
        "the first page read the budget's newer records and found none"
    );
    assert_eq!(
        listed(jobs, JobState::Queued, None, 600, 120).await.1,
        [600, 401],
        "a page without a filter holds its limit"
    );
}

async fn counts_are_exact_within_the_budget_and_a_lower_bound_beyond(jobs: &dyn Jobs) {
    let made: Vec<EmailJob> = (0..3).map(|_| job()).collect();
    for job in &made {
        jobs.record_queued(job, 100).await.expect("recorded");
    }
    let other = verification();
    jobs.record_queued(&other, 101).await.expect("recorded");
    let crashed = job();
    jobs.record_queued(&crashed, 100).await.expect("recorded");
    claim(jobs, &crashed, 110, 30).await;

    let count = |state, kind, budget| async move {
        jobs.count(state, kind, 150, budget).await.expect("counted")
    };
    let counted = |status, count, exact| JobCount {
        status,
        count,
        exact,
    };
    assert_eq!(
        count(JobState::Queued, None, 100).await,
        counted(JobState::Queued, 4, true)
    );
    assert_eq!(
        count(JobState::Queued, None, 4).await,
        counted(JobState::Queued, 4, true),
        "a budget of exactly the records is exact"
    );
    assert_eq!(
        count(JobState::Queued, None, 3).await,
        counted(JobState::Queued, 3, false),
        "beyond the budget, a lower bound"
    );
    assert_eq!(
        count(JobState::Queued, Some("generic"), 100).await,
        counted(JobState::Queued, 3, true)
    );
    assert_eq!(
        count(JobState::Queued, Some("generic"), 1).await,
        counted(JobState::Queued, 0, false),
        "the newest queued is a verification: no notice among the one record read"
    );
    assert_eq!(
        count(JobState::Sending, None, 100).await,
        counted(JobState::Sending, 1, true)
    );
    assert_eq!(
        count(JobState::Stalled, None, 100).await,
        counted(JobState::Stalled, 1, true)
    );
    assert_eq!(
        count(JobState::Dead, None, 100).await,
        counted(JobState::Dead, 0, true)
    );
}

/// Counts the DynamoDB operations of a client.
#[derive(Debug, Clone, Default)]
struct Calls(std::sync::Arc<std::sync::atomic::AtomicU32>);

impl aws_sdk_dynamodb::config::Intercept for Calls {
    fn name(&self) -> &'static str {
        "Calls"
    }

    fn read_before_execution(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<
            '_,
        >,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

/// A claim at its worst — its update, then cutting back a history just grown past its limit —
/// makes the calls the worker's timeout model counts ([`oes_adapters::dynamo::CLAIM_CALLS`]).
#[tokio::test]
async fn a_claim_makes_at_most_the_calls_the_timeout_model_counts() {
    let env = TestEnv::spawn().await;
    let calls = Calls::default();
    let jobs = DynamoJobs::new(
        oes_tests::dynamodb_with(&env.clients.dynamodb(), calls.clone()),
        env.provisioned.table.clone(),
        7 * 24 * 3600,
    );
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    for round in 0..HISTORY_LIMIT as i64 {
        let at = 200 + 10 * round;
        claim(&jobs, &job, at, 5).await;
        let paused = Outcome::Paused {
            error: format!("paused {round}"),
            retry_at: 0,
        };
        finish(&jobs, &job, paused, at + 1).await;
    }
    calls.0.store(0, std::sync::atomic::Ordering::SeqCst);
    let at = 200 + 10 * HISTORY_LIMIT as i64;
    assert!(matches!(
        claim(&jobs, &job, at, 5).await,
        Claim::Acquired { .. }
    ));
    assert_eq!(
        calls.0.load(std::sync::atomic::Ordering::SeqCst),
        oes_adapters::dynamo::CLAIM_CALLS
    );
    assert_eq!(history_of(&jobs, &job.job_id).await.len(), HISTORY_LIMIT);
}
