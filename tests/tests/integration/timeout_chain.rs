//! The timeouts the email worker relies on nest (issue 11, defect 6): every AWS call is bounded
//! by `AwsTimeouts`, so a send with its claim and recorded outcome fits in the send lease, a batch
//! at its worst fits in the worker's Lambda timeout, and that fits six times in the lanes'
//! visibility timeout. And the attempt sweep waits for a result email's job recorded moments ago
//! longer than its submit can take to send it (issue 14). The figures come from `template.yaml`
//! and the code; only the calls on the worker's worst path (`functions/email-worker/src/lib.rs`)
//! are counted here. An API request makes several calls too many to count: it answers before its
//! invocation's deadline whatever they take (`request_deadline.rs`), and `oes-local` gives it the
//! deadline Lambda would.

use std::collections::HashMap;
use std::time::Duration;

use email_worker::{QUEUE_CALLS_AFTER_SEND, RECORD_TRIES};
use exam_api::sweep::{EMAIL_CHECK_AFTER, SEND_WINDOW};
use oes_adapters::aws::AwsTimeouts;
// DynamoDB calls of a claim at worst (held to a claim by `job_ledger.rs`).
use oes_adapters::dynamo::CLAIM_CALLS;
use oes_adapters::resources::QUEUES;
use oes_runtime::config::{Env, MIN_LEASE_SECONDS, WorkerConfig};
use yaml_rust2::Yaml;

use crate::template::{resource, template, text};

/// DynamoDB writes that record a send's outcome at worst: the worker tries the write once per
/// entry of `RECORD_TRIES`...
fn outcome_writes() -> u32 {
    u32::try_from(RECORD_TRIES.len()).unwrap_or(u32::MAX)
}

/// ...pausing before each as it says.
fn outcome_pauses() -> Duration {
    RECORD_TRIES.iter().sum()
}
/// SQS calls after the send at worst ([`QUEUE_CALLS_AFTER_SEND`], held to the worker's worst
/// path by its unit test). A move to the dead-letter queue is one call as well, followed by the
/// outcome writes counted above.
const SQS_CALLS: u32 = QUEUE_CALLS_AFTER_SEND;

/// The worker's configuration as a plain deploy of the template loads it: the variables the
/// template sets for it, a `!Ref` to a parameter read as that parameter's default.
fn deployed_worker_config(template: &Yaml) -> WorkerConfig {
    let parameters = &template["Parameters"];
    let mut variables = HashMap::new();
    for set in [
        &template["Globals"]["Function"]["Environment"]["Variables"],
        &resource(template, "EmailWorkerFunction")["Environment"]["Variables"],
    ] {
        for (name, value) in set.as_hash().into_iter().flatten() {
            let default = value.as_str().map(|v| &parameters[v]["Default"]);
            let value = match default {
                Some(default) if !default.is_badvalue() => text(default),
                _ => text(value),
            };
            variables.insert(text(name), value);
        }
    }
    WorkerConfig::load(&Env(|name: &str| variables.get(name).cloned()))
        .unwrap_or_else(|e| panic!("the worker's configuration in template.yaml: {e}"))
}

/// The worker's Lambda timeout in `template.yaml`.
fn worker_timeout(template: &Yaml) -> Duration {
    lambda_timeout(template, "EmailWorkerFunction")
}

/// A function's Lambda timeout in `template.yaml` (its own, or the Globals').
fn lambda_timeout(template: &Yaml, function: &str) -> Duration {
    let own = &resource(template, function)["Timeout"];
    let timeout = if own.is_badvalue() {
        &template["Globals"]["Function"]["Timeout"]
    } else {
        own
    };
    Duration::from_secs(
        timeout
            .as_i64()
            .and_then(|s| s.try_into().ok())
            .expect("Timeout"),
    )
}

/// The largest `BatchSize` of the worker's SQS event sources.
fn batch_size(template: &Yaml) -> u32 {
    resource(template, "EmailWorkerFunction")["Events"]
        .as_hash()
        .expect("the worker's Events")
        .values()
        .filter(|event| text(&event["Type"]) == "SQS")
        .map(|event| {
            text(&event["Properties"]["BatchSize"])
                .parse()
                .expect("BatchSize")
        })
        .max()
        .expect("the worker has SQS event sources")
}

/// From the claim to the recorded outcome at worst, each call running into its operation
/// timeout: the claim, the send, the outcome writes and the pauses between them.
fn claim_to_outcome(t: &AwsTimeouts) -> Duration {
    t.dynamodb_operation * CLAIM_CALLS
        + t.ses_operation
        + t.dynamodb_operation * outcome_writes()
        + outcome_pauses()
}

/// One record at its worst: [`claim_to_outcome`], then the SQS calls that hold the job.
fn worst_record(t: &AwsTimeouts) -> Duration {
    claim_to_outcome(t) + t.sqs_operation * SQS_CALLS
}

#[test]
fn the_send_lease_outlasts_a_claim_a_send_and_recording_its_outcome() {
    let t = AwsTimeouts::DEFAULT;
    let deployed = deployed_worker_config(&template()).retry.lease_seconds;
    // The shortest lease the worker takes, not only the template's: an operator may set
    // OES_SEND_LEASE_SECONDS (it took 10 s before).
    let lease = Duration::from_secs(MIN_LEASE_SECONDS.into());
    assert!(
        deployed >= MIN_LEASE_SECONDS,
        "the template's lease {deployed}"
    );
    let held = claim_to_outcome(&t);
    assert!(
        lease > held,
        "the shortest send lease ({lease:?}) must outlast the claim ({CLAIM_CALLS} × DynamoDB {:?}) + the SES send ({:?}) \
         + {} outcome writes (DynamoDB {:?} each) + {:?} of pauses = \
         {held:?}, or a slow send lets a second worker send the job again",
        t.dynamodb_operation,
        t.ses_operation,
        outcome_writes(),
        t.dynamodb_operation,
        outcome_pauses(),
    );
}

#[test]
fn the_worker_lambda_outlasts_a_whole_batch_at_its_worst() {
    let template = template();
    let t = AwsTimeouts::DEFAULT;
    let timeout = worker_timeout(&template);
    let batch = batch_size(&template);
    let concurrency = u32::try_from(deployed_worker_config(&template).concurrency)
        .expect("OES_WORKER_CONCURRENCY fits a u32");
    let rounds = batch.div_ceil(concurrency);
    let record = worst_record(&t);
    let worst = record * rounds;
    assert!(
        timeout > worst,
        "EmailWorkerFunction's Timeout ({timeout:?}) must outlast a batch at its worst: \
         BatchSize {batch} at OES_WORKER_CONCURRENCY {concurrency} = {rounds} rounds of one record \
         ({record:?}: claim {CLAIM_CALLS} × {:?} + SES {:?} + {} × {:?} + {:?} + \
         {SQS_CALLS} × SQS {:?}) = {worst:?}; otherwise one hung call fails the whole batch",
        t.dynamodb_operation,
        t.ses_operation,
        outcome_writes(),
        t.dynamodb_operation,
        outcome_pauses(),
        t.sqs_operation,
    );
}

#[test]
fn each_lanes_visibility_timeout_is_six_worker_timeouts() {
    let template = template();
    let timeout = worker_timeout(&template);
    for lane in QUEUES.iter().filter(|q| q.max_receive_count.is_some()) {
        let visibility = Duration::from_secs(
            text(&resource(&template, lane.logical_id)["VisibilityTimeout"])
                .parse()
                .expect("VisibilityTimeout"),
        );
        assert!(
            visibility >= timeout * 6,
            "{}'s VisibilityTimeout ({visibility:?}) must be at least 6 × the worker's Timeout \
             ({timeout:?}) = {:?}",
            lane.logical_id,
            timeout * 6,
        );
    }
}

#[test]
fn the_sweep_waits_for_a_recorded_job_longer_than_its_submit_can_take_to_send_it() {
    let t = AwsTimeouts::DEFAULT;
    // From the job's record (its `created_at`) to the end of its send at worst: the record
    // write, then the send. The clock's second rounds it down by up to a second.
    let sending = t.dynamodb_operation + t.sqs_operation + Duration::from_secs(1);
    let timeout = lambda_timeout(&template(), "ExamApiFunction");
    assert!(
        SEND_WINDOW > sending && SEND_WINDOW > timeout,
        "the sweep's SEND_WINDOW ({SEND_WINDOW:?}) must outlast recording a job (DynamoDB {:?}) \
         + sending it (SQS {:?}) + 1 s = {sending:?}, and exam-api's Lambda Timeout \
         ({timeout:?}); otherwise a sweep sends again a job its submit is still sending, or \
         clears the attempt whose send then fails",
        t.dynamodb_operation,
        t.sqs_operation,
    );
}

#[test]
fn the_sweep_checks_a_result_email_once_its_job_is_older_than_the_send_window() {
    // The close moves the attempt's due entry EMAIL_CHECK_AFTER ahead; the job it records is
    // recorded before its request ends (exam-api's Lambda Timeout at worst). At the check, that
    // job must be past SEND_WINDOW, or the sweep only finds it on its way and looks a minute later.
    let timeout = lambda_timeout(&template(), "ExamApiFunction");
    let check = Duration::from_secs(EMAIL_CHECK_AFTER.unsigned_abs());
    assert!(
        check >= SEND_WINDOW + timeout,
        "the sweep's EMAIL_CHECK_AFTER ({check:?}) must be at least SEND_WINDOW ({SEND_WINDOW:?}) \
         + exam-api's Lambda Timeout ({timeout:?})",
    );
}

#[test]
fn oes_local_gives_each_request_the_api_functions_lambda_timeout() {
    let template = template();
    for function in ["AuthApiFunction", "ExamApiFunction", "AdminApiFunction"] {
        assert_eq!(
            lambda_timeout(&template, function),
            oes_local::gateway::FUNCTION_TIMEOUT,
            "{function}'s Timeout in template.yaml against the deadline oes-local gives a request"
        );
    }
}
