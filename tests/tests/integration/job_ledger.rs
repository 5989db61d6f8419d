//! The contract of `JobLedger`, run against both implementations: a job is recorded once, the
//! send lease is held by one worker at a time until it passes, every outcome is recorded as it
//! says, finished jobs are not sent again, and a redrive starts the attempts over.
//!
//! - One async body per property, taking `&dyn JobLedger`. Times are epoch seconds the body
//!   chooses, so leases pass without waiting.
//! - [`contract!`] turns each body into two tests: `in_memory::<body>` over `MemoryJobs` and
//!   `on_dynamodb::<body>` over `DynamoJobs` in a fresh table of the emulator.
//!
//! Claims are tested one after the other: moto does not lock its tables, so simultaneous
//! conditional writes prove nothing there.

use oes_adapters::dynamo::DynamoJobs;
use oes_adapters::memory::MemoryJobs;
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::ports::{Claim, JobConflict, JobLedger, JobRecord, JobStatus, Outcome, StoreError};
use oes_domain::user::Email;
use oes_tests::TestEnv;

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
                        env.clients.dynamodb.clone(),
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
    only_a_job_that_ended_unsent_is_requeued,
    nothing_undoes_sent_and_a_late_retry_does_not_reopen_an_ended_job,
    a_pause_after_a_redrive_never_takes_the_attempts_below_zero,
    absent_jobs_are_not_found_and_not_created,
    claiming_a_job_without_a_record_creates_it,
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
        status: JobStatus::Queued,
        attempts: 0,
        max_attempts: 4,
        last_error: None,
        ses_message_id: None,
        lease_until: None,
        created_at: 90,
        updated_at: now,
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

async fn record_of(jobs: &dyn JobLedger, job_id: &str) -> JobRecord {
    jobs.get(job_id).await.expect("read").expect("recorded")
}

async fn claim(jobs: &dyn JobLedger, job: &EmailJob, now: i64, lease: i64) -> Claim {
    jobs.claim(job, now, lease).await.expect("claim")
}

async fn finish(jobs: &dyn JobLedger, job: &EmailJob, outcome: Outcome, now: i64) {
    jobs.finish(&job.job_id, outcome, now)
        .await
        .expect("finished");
}

// ---- bodies -------------------------------------------------------------------------------

async fn a_job_is_recorded_queued_once(jobs: &dyn JobLedger) {
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

async fn a_claim_takes_the_lease_and_counts_the_attempt(jobs: &dyn JobLedger) {
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

async fn a_held_lease_makes_the_job_busy_until_it_has_passed(jobs: &dyn JobLedger) {
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

async fn a_sent_job_is_finished_and_not_claimed_again(jobs: &dyn JobLedger) {
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

async fn a_failed_or_dead_job_is_finished_with_its_reason(jobs: &dyn JobLedger) {
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

async fn a_retry_keeps_the_attempt_and_a_pause_gives_it_back(jobs: &dyn JobLedger) {
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    claim(jobs, &job, 110, 30).await;
    let retry = Outcome::Retrying {
        error: "timeout".into(),
    };
    finish(jobs, &job, retry, 111).await;
    let retrying = JobRecord {
        status: JobStatus::Retrying,
        attempts: 1,
        last_error: Some("timeout".into()),
        updated_at: 111,
        ..queued(&job, 100)
    };
    assert_eq!(
        record_of(jobs, &job.job_id).await,
        retrying,
        "the lease is released"
    );
    assert_eq!(
        claim(jobs, &job, 112, 30).await,
        Claim::Acquired { attempt: 2 },
        "a retrying job is claimed at once, its lease released"
    );
    assert_eq!(
        record_of(jobs, &job.job_id).await,
        sending(&retrying, 2, 112, 30),
        "the last error stays while it is sent again"
    );

    let paused = Outcome::Paused {
        error: "sending paused".into(),
    };
    finish(jobs, &job, paused, 113).await;
    let expected = JobRecord {
        status: JobStatus::Retrying,
        attempts: 1,
        last_error: Some("sending paused".into()),
        updated_at: 113,
        ..queued(&job, 100)
    };
    assert_eq!(
        record_of(jobs, &job.job_id).await,
        expected,
        "a paused attempt does not count"
    );
    assert_eq!(
        claim(jobs, &job, 114, 30).await,
        Claim::Acquired { attempt: 2 },
        "the next attempt has the number the paused one had"
    );
}

/// A worker whose lease ran out finds the account paused, after another worker took the job
/// over, failed it, and a redrive reset it: the pause gives back an attempt the record no longer
/// counts.
async fn a_pause_after_a_redrive_never_takes_the_attempts_below_zero(jobs: &dyn JobLedger) {
    let job = job();
    jobs.record_queued(&job, 100).await.expect("recorded");
    claim(jobs, &job, 110, 30).await;
    claim(jobs, &job, 150, 30).await;
    let failed = Outcome::Failed {
        reason: "MessageRejected".into(),
    };
    finish(jobs, &job, failed, 151).await;
    jobs.requeue(&job.job_id, 155).await.expect("requeued");
    let paused = Outcome::Paused {
        error: "SendingPaused".into(),
    };
    finish(jobs, &job, paused, 160).await;
    let record = jobs
        .get(&job.job_id)
        .await
        .expect("the record still reads")
        .expect("recorded");
    assert_eq!((record.status, record.attempts), (JobStatus::Retrying, 0));
    assert_eq!(
        claim(jobs, &job, 170, 30).await,
        Claim::Acquired { attempt: 1 }
    );
}

async fn a_requeued_job_starts_its_attempts_over(jobs: &dyn JobLedger) {
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

async fn only_a_job_that_ended_unsent_is_requeued(jobs: &dyn JobLedger) {
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

/// A worker whose lease ran out may report after another worker finished the job: its late
/// `retrying` must not turn a sent job into one that is sent again, nor reopen a dead one.
async fn nothing_undoes_sent_and_a_late_retry_does_not_reopen_an_ended_job(jobs: &dyn JobLedger) {
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
        },
        Outcome::Paused {
            error: "late".into(),
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
        },
        Outcome::Paused {
            error: "late".into(),
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

async fn absent_jobs_are_not_found_and_not_created(jobs: &dyn JobLedger) {
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

async fn claiming_a_job_without_a_record_creates_it(jobs: &dyn JobLedger) {
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
