//! `oesctl`: operations on an oes deployment or the local emulator.
//!
//! - `oesctl provision --endpoint URL --prefix P`: creates the table, queues and SES identity
//!   from the definitions `template.yaml` uses, and the JWT key's secret `<P>-jwt`, and prints
//!   the environment the functions need.
//! - `oesctl users set-role EMAIL ROLE`: changes a user's role (their access tokens stop working,
//!   so the new role applies at the next sign-in) and, with `REDIS_URL`, drops the cached profile
//!   so earlier tokens are refused at once.
//! - `oesctl queues`: visible / in flight / delayed messages on each lane and the DLQ.
//! - `oesctl jobs show ID`: an email job's status record, with its history.
//! - `oesctl jobs list --status S [--kind K] [--limit N]`: jobs of a state (`stalled` too), newest
//!   change first; `oesctl jobs counts [--kind K]`: jobs in each state (from the job index).
//! - `oesctl dlq list | redrive [--id ID] [--all] | purge --yes`: the dead-letter queue (a purge
//!   records the `failed`/`dead` jobs of its letters as `dead`, reason purged).
//! - `oesctl lanes [pause|resume LANE]`: whether the worker receives from each lane (`priority`,
//!   `bulk`): their event source mappings, found by the lanes' queue ARNs.
//! - `oesctl cache clear`: bumps the cache's namespace version (reads `REDIS_URL`,
//!   `REDIS_CLUSTER`, `OES_CACHE_PREFIX` like the APIs; the key prefix is by default the
//!   resource prefix, as the template and `oes-local` set it).
//!
//! Resources are found by prefix (`--prefix`, `OES_PREFIX`: the stack name in AWS, `oes-local`
//! locally): the table `<prefix>-data`, the queues `<prefix>-email-priority|bulk|dlq`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use oes_adapters::aws::AwsClients;
use oes_adapters::dynamo::{DynamoJobs, DynamoUsers};
use oes_adapters::lambda::EventSourceMappings;
use oes_adapters::resources::{
    BULK_QUEUE, DEAD_LETTER_QUEUE, PRIORITY_QUEUE, TABLE, provision, provision_jwt_secret,
};
use oes_adapters::sqs::SqsQueues;
use oes_domain::cache::CacheAside;
use oes_domain::clock::{Clock, SystemClock};
use oes_domain::email::Lane;
use oes_domain::pipeline::{PurgeReport, QueueAdmin, RedriveReport, Step, purge, redrive};
use oes_domain::ports::{
    JobIndex, JobLedger, JobQuery, JobState, LaneSwitch, MessageQueues, QueueError, UserStore,
    UserUpdate,
};
use oes_domain::user::{Email, Role};
use oes_runtime::config::{
    CacheConfig, DEFAULT_JOB_RETENTION_DAYS, MAX_JOB_RETENTION_DAYS, MIN_JOB_RETENTION_DAYS,
    process_env,
};
use oes_runtime::wiring::cache_aside;

#[derive(Parser)]
#[command(version, about = "Operations CLI for oes")]
struct Cli {
    /// AWS endpoint (the local emulator, e.g. http://127.0.0.1:4566); defaults to AWS_ENDPOINT_URL
    /// or real AWS.
    #[arg(long, global = true, env = "AWS_ENDPOINT_URL")]
    endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create the table, queues (with redrive policy), SES sender identity and JWT key secret
    /// (`<prefix>-jwt`, kept with its key once made) in the local emulator (a stack's come from
    /// `sam deploy`): needs `--endpoint` or `AWS_ENDPOINT_URL`. Idempotent.
    Provision {
        /// Resource name prefix: the table is `<prefix>-data`, the queues `<prefix>-email-*`.
        #[arg(long, env = "OES_PREFIX", default_value = "oes-local")]
        prefix: String,
        /// The sender identity to create in SES.
        #[arg(long, env = "OES_SENDER_EMAIL", default_value = "noreply@example.com")]
        sender: String,
    },
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Message counts on each email queue.
    Queues {
        /// Resource prefix.
        #[arg(long, env = "OES_PREFIX", default_value = "oes-local")]
        prefix: String,
    },
    /// Email jobs.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// The cache in Redis.
    Cache {
        #[command(subcommand)]
        command: CacheCommand,
    },
    /// The email dead-letter queue.
    Dlq {
        /// Resource prefix.
        #[arg(long, env = "OES_PREFIX", default_value = "oes-local", global = true)]
        prefix: String,
        /// How long a job record a redrive or purge rewrites is kept after it (days, 14–3650):
        /// the stack's `JobRetentionDays`, as its functions keep records.
        #[arg(
            long,
            env = "OES_JOB_RETENTION_DAYS",
            default_value_t = DEFAULT_JOB_RETENTION_DAYS,
            value_parser = clap::value_parser!(i64).range(MIN_JOB_RETENTION_DAYS..=MAX_JOB_RETENTION_DAYS),
            global = true
        )]
        job_retention_days: i64,
        #[command(subcommand)]
        command: DlqCommand,
    },
    /// The email lanes: whether the worker receives from each (without a subcommand: show it).
    Lanes {
        /// Resource prefix.
        #[arg(long, env = "OES_PREFIX", default_value = "oes-local", global = true)]
        prefix: String,
        #[command(subcommand)]
        command: Option<LanesCommand>,
    },
}

#[derive(Subcommand)]
enum LanesCommand {
    /// Stop the worker receiving from a lane (its event source mapping disabled): messages wait
    /// on it, no attempt is used.
    Pause {
        /// priority or bulk.
        #[arg(value_parser = parse_lane)]
        lane: Lane,
    },
    /// Let the worker receive from a lane again.
    Resume {
        /// priority or bulk.
        #[arg(value_parser = parse_lane)]
        lane: Lane,
    },
}

/// A lane by its name.
fn parse_lane(name: &str) -> Result<Lane, String> {
    Lane::parse(name).ok_or_else(|| "priority or bulk".to_owned())
}

#[derive(Subcommand)]
enum CacheCommand {
    /// Make every cached entry unreachable by bumping the namespace version (no KEYS, no
    /// FLUSHALL; old entries expire by their TTL). Reads the APIs' configuration: REDIS_URL,
    /// REDIS_CLUSTER, and OES_CACHE_PREFIX, by default the resource prefix (a stack's functions
    /// and oes-local use it). Other containers see it within 5 seconds.
    Clear {
        /// Resource prefix: the stack's name in AWS, `oes-local` locally.
        #[arg(long, env = "OES_PREFIX", default_value = "oes-local")]
        prefix: String,
    },
}

#[derive(Subcommand)]
enum JobsCommand {
    /// Show an email job's status record, with its history.
    Show {
        /// The job id.
        id: String,
        /// Resource prefix.
        #[arg(long, env = "OES_PREFIX", default_value = "oes-local")]
        prefix: String,
    },
    /// List jobs of a state, newest change first.
    List {
        /// queued, sending, stalled, retrying, sent, failed or dead.
        #[arg(long, value_parser = parse_state)]
        status: JobState,
        /// Only jobs of this kind (verification, exam_result, generic, …).
        #[arg(long)]
        kind: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Resource prefix.
        #[arg(long, env = "OES_PREFIX", default_value = "oes-local")]
        prefix: String,
    },
    /// Count the jobs in each state (exact up to the admin API's budget per status).
    Counts {
        /// Only jobs of this kind.
        #[arg(long)]
        kind: Option<String>,
        /// Resource prefix.
        #[arg(long, env = "OES_PREFIX", default_value = "oes-local")]
        prefix: String,
    },
}

/// A job state by its name.
fn parse_state(name: &str) -> Result<JobState, String> {
    JobState::parse(name).ok_or_else(|| {
        let names = JobState::ALL.map(JobState::as_str).join(", ");
        format!("one of {names}")
    })
}

/// The most records of one status `jobs counts` reads (exact below it).
const COUNT_BUDGET: usize = 10_000;

#[derive(Subcommand)]
enum DlqCommand {
    /// List messages on the dead-letter queue (with the reason they were set aside).
    List {
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        max: usize,
    },
    /// Move messages back to their lane (their job records go back to `queued`).
    Redrive {
        /// Only this job.
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        id: Option<String>,
        /// Every message, in steps of 100 (progress on stderr); letters of jobs sent already
        /// are dropped, not sent again.
        #[arg(long)]
        all: bool,
    },
    /// Delete every message on the dead-letter queue, in steps of 100 (progress on stderr);
    /// the `failed`/`dead` jobs of the letters are recorded `dead` (reason purged) first.
    Purge {
        /// Confirm: the messages cannot be recovered.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Set a user's role (student, instructor, admin).
    SetRole {
        /// The user's email address.
        email: String,
        /// The new role.
        role: Role,
        /// Resource prefix: the table is `<prefix>-data`, as for every other command.
        #[arg(long, env = "OES_PREFIX", default_value = "oes-local")]
        prefix: String,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    oes_runtime::telemetry::init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("oesctl: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), oes_domain::ports::BoxError> {
    if matches!(cli.command, Command::Provision { .. }) && cli.endpoint.is_none() {
        return Err(
            "provision creates the local resources in an emulator: give --endpoint or \
                    AWS_ENDPOINT_URL (a stack's resources come from `sam deploy`)"
                .into(),
        );
    }
    let clients = AwsClients::load(cli.endpoint.as_deref()).await?;
    match cli.command {
        Command::Provision { prefix, sender } => {
            let provisioned = provision(&clients, &prefix, &sender).await?;
            for (name, value) in provisioned.env() {
                println!("export {name}={value}");
            }
            let secret = provision_jwt_secret(&clients, &prefix).await?;
            println!("export OES_JWT_SECRET_ARN={secret}");
        }
        Command::Users {
            command:
                UsersCommand::SetRole {
                    email,
                    role,
                    prefix,
                },
        } => {
            let table = format!("{prefix}-{}", TABLE.suffix);
            let users = DynamoUsers::new(clients.dynamodb(), table);
            let email = Email::parse(&email)?;
            let cache = cache_config(&prefix)?;
            let cache = match cache.redis_url {
                Some(_) => Some(cache_aside(&cache)?),
                None => None,
            };
            let (updated, dropped) = set_role(&users, cache.as_ref(), &email, role).await?;
            println!(
                "{} is now {} (signed-in sessions must sign in again)",
                updated.email, updated.role
            );
            match dropped {
                Some(true) => println!("cached profile dropped"),
                Some(false) => println!(
                    "could not reach the cache at REDIS_URL, so the cached profile was not \
                     dropped: tokens from before keep working, with the old role, until it \
                     expires (within a minute)."
                ),
                None => println!(
                    "REDIS_URL is not set, so no cached profile was dropped: tokens from before \
                     keep working, with the old role, until the cached profile expires (within \
                     a minute). Run with the APIs' REDIS_URL (and REDIS_CLUSTER) to apply it at \
                     once."
                ),
            }
        }
        Command::Cache {
            command: CacheCommand::Clear { prefix },
        } => {
            let config = cache_config(&prefix)?;
            if config.redis_url.is_none() {
                return Err("REDIS_URL is not set: there is no cache to clear".into());
            }
            if !cache_aside(&config)?.clear_all().await {
                return Err("the cache could not be cleared (Redis unreachable?)".into());
            }
            println!(
                "cache cleared: every entry under {}: is now unreachable",
                config.prefix
            );
        }
        Command::Queues { prefix } => {
            let queues = email_queues(&clients, &prefix).await?;
            println!(
                "{:<40} {:>8} {:>10} {:>8}",
                "queue", "visible", "in flight", "delayed"
            );
            for counts in queues.counts().await? {
                println!(
                    "{:<40} {:>8} {:>10} {:>8}",
                    counts.queue, counts.visible, counts.in_flight, counts.delayed
                );
            }
        }
        Command::Jobs {
            command:
                JobsCommand::List {
                    status,
                    kind,
                    limit,
                    prefix,
                },
        } => {
            let jobs = DynamoJobs::new(clients.dynamodb(), format!("{prefix}-{}", TABLE.suffix), 0);
            let now = SystemClock.now();
            let (mut after, mut left) = (None, limit);
            while left > 0 {
                let query = JobQuery {
                    state: status,
                    kind: kind.clone(),
                    limit: left.min(100),
                    after,
                };
                let page = jobs.list(&query, now).await?;
                left -= page.jobs.len();
                for job in &page.jobs {
                    println!(
                        "{}  {:<14} {:<9}{} attempts {}/{}  updated {}  {}",
                        job.job_id,
                        job.kind,
                        job.status.as_str(),
                        if job.is_stalled(now) { " STALLED" } else { "" },
                        job.attempts,
                        job.max_attempts,
                        job.updated_at,
                        job.last_error.as_deref().unwrap_or(""),
                    );
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        Command::Jobs {
            command: JobsCommand::Counts { kind, prefix },
        } => {
            let jobs = DynamoJobs::new(clients.dynamodb(), format!("{prefix}-{}", TABLE.suffix), 0);
            let now = SystemClock.now();
            for state in JobState::ALL {
                let count = jobs
                    .count(state, kind.as_deref(), now, COUNT_BUDGET)
                    .await?;
                let bound = if count.exact { "" } else { "+" };
                println!("{:<9} {}{bound}", state.as_str(), count.count);
            }
        }
        Command::Jobs {
            command: JobsCommand::Show { id, prefix },
        } => {
            let jobs = DynamoJobs::new(clients.dynamodb(), format!("{prefix}-{}", TABLE.suffix), 0);
            let record = jobs
                .get(&id)
                .await?
                .ok_or_else(|| format!("no email job {id}"))?;
            println!("{}", serde_json::to_string_pretty(&record)?);
        }
        Command::Dlq {
            prefix,
            job_retention_days,
            command,
        } => {
            let queues = email_queues(&clients, &prefix).await?;
            // The job ledger a redrive or purge rewrites records in.
            let jobs = || {
                let table = format!("{prefix}-{}", TABLE.suffix);
                DynamoJobs::new(clients.dynamodb(), table, job_retention_days * 86_400)
            };
            match command {
                DlqCommand::List { max } => {
                    let entries = queues.dead_letters_within(max, Some(STEP_TIME)).await?;
                    for entry in &entries {
                        println!(
                            "{}  job {}  {}  from {}  reason: {}{}",
                            entry.message_id,
                            entry.job_id.as_deref().unwrap_or("(undecodable)"),
                            entry.kind.as_deref().unwrap_or("-"),
                            entry.source_queue.as_deref().unwrap_or("(redrive policy)"),
                            entry.reason.as_deref().unwrap_or("received too many times"),
                            entry.ses_message_id.as_deref().map_or(String::new(), |id| {
                                format!("  receipt: sent as SES {id}, a redrive records it")
                            }),
                        );
                    }
                    println!("{} message(s)", entries.len());
                }
                DlqCommand::Redrive { id, all: _ } => {
                    let jobs = jobs();
                    let report = match id.as_deref() {
                        Some(id) => redrive_one(queues.queues(), &jobs, id).await?,
                        None => redrive_all(queues.queues(), &jobs).await?,
                    };
                    println!(
                        "moved {} message(s) back to their lane, left {} on the DLQ, dropped {} \
                         of jobs sent already and {} of jobs that could not be queued (their \
                         callers were told so; not sent)",
                        report.moved,
                        report.skipped + report.failed,
                        report.already_sent,
                        report.not_queued
                    );
                    failed_letters(report.failed)?;
                    if let Some(id) = id
                        && report.handled() == 0
                    {
                        let why = if report.done {
                            "it is not on the dead-letter queue, or a worker holds it just now \
                             (try again in a minute)"
                        } else {
                            "its letter was not met in two minutes of walking a queue too long to \
                             see whole; it may be there (try again, or use --all)"
                        };
                        return Err(format!("job {id} was not redriven: {why}").into());
                    }
                }
                DlqCommand::Purge { yes } => {
                    if !yes {
                        return Err(
                            "refusing to purge without --yes (messages cannot be recovered)".into(),
                        );
                    }
                    let jobs = jobs();
                    let report = purge_all(queues.queues(), &jobs).await?;
                    println!(
                        "purged {} message(s), {} job record(s) now dead (purged)",
                        report.purged,
                        report.marked.len(),
                    );
                    if report.skipped > 0 {
                        println!(
                            "left {} on the DLQ: a worker holds their jobs just now (run again)",
                            report.skipped
                        );
                    }
                    failed_letters(report.failed)?;
                }
            }
        }
        Command::Lanes { prefix, command } => {
            let mappings = lane_mappings(&clients, &prefix).await?;
            match command {
                Some(LanesCommand::Pause { lane }) => {
                    mappings.pause(lane).await?;
                    println!("{} paused", lane.as_str());
                }
                Some(LanesCommand::Resume { lane }) => {
                    mappings.resume(lane).await?;
                    println!("{} resumed", lane.as_str());
                }
                None => {
                    for lane in Lane::ALL {
                        let paused = mappings.is_paused(lane).await?;
                        let state = if paused { "paused" } else { "running" };
                        println!("{:<10} {state}", lane.as_str());
                    }
                }
            }
        }
    }
    Ok(())
}

/// An error if `failed` letters stayed because their job records could not be written.
fn failed_letters(failed: usize) -> Result<(), oes_domain::ports::BoxError> {
    if failed == 0 {
        return Ok(());
    }
    Err(format!(
        "{failed} letter(s) stay on the DLQ: their job records could not be written (the table \
         did not answer; see the warnings above) — run again once it does"
    )
    .into())
}

/// The letters one step of `dlq purge` deletes.
const PURGE_STEP: usize = 100;

/// How long one step of a walk of the dead-letter queue takes letters: well inside the
/// [`oes_domain::pipeline::IN_HAND_SECONDS`] a letter taken stays hidden. A walk of a long queue without it saw its
/// first letters again after 30 s, and ended as if it had seen them all: `dlq redrive --id`
/// could say a job's letter was not there when it was.
const STEP_TIME: Duration = Duration::from_secs(20);

// A step ends while the first letters it took are still hidden, with room for the letter it is
// handling when its time runs out (checked as it builds: this binary has no unit tests).
const _: () = assert!(
    STEP_TIME.as_secs() + 5 <= oes_domain::pipeline::IN_HAND_SECONDS as u64,
    "a step of a dead-letter walk must end inside the hold of its letters"
);

/// A step of `letters` letters at most, inside [`STEP_TIME`].
fn step(letters: Option<usize>) -> Step {
    Step {
        letters,
        time: Some(STEP_TIME),
    }
}

/// Every dead letter, in steps until one has seen them all.
async fn purge_all(
    queues: &dyn MessageQueues,
    jobs: &dyn JobLedger,
) -> Result<PurgeReport, QueueError> {
    let mut total = PurgeReport::default();
    while !total.done {
        let step = purge(queues, jobs, &SystemClock, step(Some(PURGE_STEP)), |_| {}).await?;
        total.purged += step.purged;
        total.marked.extend(step.marked);
        // A step sees again what the one before left: the last one's count is what is left.
        total.skipped = step.skipped;
        total.failed = step.failed;
        total.done = step.done;
        eprintln!("  purged {} so far", total.purged);
        if step.purged == 0 && !step.done {
            eprintln!("{STUCK}");
            break;
        }
    }
    Ok(total)
}

/// The lanes' event source mappings, found by their queues' ARNs (`<prefix>-email-priority`,
/// `-bulk`).
async fn lane_mappings(
    clients: &AwsClients,
    prefix: &str,
) -> Result<EventSourceMappings, oes_domain::ports::BoxError> {
    let mut uuids = Vec::with_capacity(2);
    for def in [PRIORITY_QUEUE, BULK_QUEUE] {
        let name = format!("{prefix}-{}", def.suffix);
        let url = clients
            .sqs()
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .map_err(|e| format!("queue {name} not found ({e}); is --prefix right?"))?
            .queue_url
            .unwrap_or_default();
        let arn = clients
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await?
            .attributes
            .and_then(|mut a| a.remove(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .unwrap_or_default();
        let found = clients
            .lambda()
            .list_event_source_mappings()
            .event_source_arn(&arn)
            .send()
            .await?;
        let uuid = found
            .event_source_mappings()
            .first()
            .and_then(|m| m.uuid())
            .ok_or_else(|| {
                format!(
                    "no event source mapping reads {name} (oes-local pauses lanes through its \
                     admin API instead)"
                )
            })?;
        uuids.push(uuid.to_owned());
    }
    Ok(EventSourceMappings::new(
        clients.lambda(),
        &uuids[0],
        &uuids[1],
    ))
}

/// The letters one step of `dlq redrive --all` moves or drops. Nothing bounds the CLI's time,
/// but steps show progress; a run that stops (an error, Ctrl-C) has taken every letter it
/// handled off the queue, so running it again goes on from there.
const REDRIVE_STEP: usize = 100;

/// Every dead letter, in steps until one has seen them all. Returns the letters moved and
/// dropped in all, and those the last step left (the ones still on the queue: a step sees
/// again what the one before left).
async fn redrive_all(
    queues: &dyn MessageQueues,
    jobs: &dyn JobLedger,
) -> Result<RedriveReport, QueueError> {
    let mut total = RedriveReport::default();
    while !total.done {
        let step = redrive(
            queues,
            jobs,
            &SystemClock,
            None,
            step(Some(REDRIVE_STEP)),
            |_| {},
        )
        .await?;
        total = RedriveReport {
            moved: total.moved + step.moved,
            already_sent: total.already_sent + step.already_sent,
            not_queued: total.not_queued + step.not_queued,
            ..step
        };
        eprintln!(
            "  moved {} so far, {} already sent",
            total.moved, total.already_sent
        );
        if step.handled() == 0 && !step.done {
            eprintln!("{STUCK}");
            break;
        }
    }
    Ok(total)
}

/// Gives the account at `email` the role `role`, and drops its cached profile in `cache` (the
/// APIs cache profiles: tokens from before stop working at once) whether the store answered or
/// not — a write whose answer was lost may have landed, as the APIs' own writes assume. The
/// account as it is now, and whether its cached profile was dropped (`None`: no cache).
async fn set_role(
    users: &dyn UserStore,
    cache: Option<&CacheAside>,
    email: &Email,
    role: Role,
) -> Result<(oes_domain::user::User, Option<bool>), oes_domain::ports::BoxError> {
    let user = users
        .find_by_email(email)
        .await?
        .ok_or_else(|| format!("no user with email {email}"))?;
    let updated = users
        .update(&user.id, UserUpdate::Role(role), SystemClock.now())
        .await;
    let dropped = match cache {
        Some(cache) => Some(
            cache
                .invalidate(&[cache.keys().user_profile(&user.id)])
                .await,
        ),
        None => None,
    };
    Ok((updated?, dropped))
}

/// Why a walk in steps stopped before it had seen every letter.
const STUCK: &str = "stopped: a whole step got past no letter (those it met stay: held by a \
                     worker, undecodable, or their records could not be written); run it again";

/// The steps `dlq redrive --id` takes looking for its letter (20 s each) before it gives up.
const STEPS_TO_FIND_ONE: usize = 6;

/// Job `id`'s dead letter moved back, in steps until one found it or saw every letter, at most
/// [`STEPS_TO_FIND_ONE`] (a queue too long for a step to see whole may never be seen whole).
async fn redrive_one(
    queues: &dyn MessageQueues,
    jobs: &dyn JobLedger,
    id: &str,
) -> Result<RedriveReport, QueueError> {
    let mut steps = 1;
    loop {
        let report = redrive(queues, jobs, &SystemClock, Some(id), step(None), |_| {}).await?;
        if report.done || report.handled() > 0 || steps == STEPS_TO_FIND_ONE {
            return Ok(report);
        }
        steps += 1;
        eprintln!("  still looking for job {id}'s letter");
    }
}

/// The APIs' cache configuration from the environment, its key prefix (`OES_CACHE_PREFIX`) by
/// default the resource prefix: the template gives each stack's functions its name, and
/// `oes-local` uses its own prefix.
fn cache_config(prefix: &str) -> Result<CacheConfig, oes_runtime::config::ConfigError> {
    CacheConfig::load(&process_env().or_default("OES_CACHE_PREFIX", prefix.to_owned()))
}

/// The email queues named after `prefix`.
async fn email_queues(
    clients: &AwsClients,
    prefix: &str,
) -> Result<QueueAdmin, oes_domain::ports::BoxError> {
    let mut urls = [String::new(), String::new(), String::new()];
    for (url, def) in urls
        .iter_mut()
        .zip([PRIORITY_QUEUE, BULK_QUEUE, DEAD_LETTER_QUEUE])
    {
        let name = format!("{prefix}-{}", def.suffix);
        let out = clients
            .sqs()
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "queue {name} not found ({}); is --prefix right?",
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
            })?;
        *url = out.queue_url.unwrap_or_default();
    }
    let [priority, bulk, dead_letters] = &urls;
    Ok(QueueAdmin::new(Arc::new(SqsQueues::new(
        clients.sqs(),
        priority,
        bulk,
        Some(dead_letters),
    ))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use oes_adapters::memory::{MemoryCache, MemoryUsers};
    use oes_domain::cache::{CacheKeys, CacheSettings, CacheStatus};
    use oes_domain::ports::{LinkedState, StoreError, StoreUnavailable, UserConflict};
    use oes_domain::user::{DisplayName, User, UserId, UserStatus};

    /// The store, whose updates land and answer an error (their answer lost).
    struct AnswerLost(MemoryUsers);

    #[async_trait]
    impl UserStore for AnswerLost {
        async fn create(&self, user: &User) -> Result<(), StoreError<UserConflict>> {
            self.0.create(user).await
        }
        async fn replace_unverified(
            &self,
            pending: &User,
            user: &User,
        ) -> Result<(), StoreError<UserConflict>> {
            self.0.replace_unverified(pending, user).await
        }
        async fn delete(&self, user: &User) -> Result<(), StoreError<UserConflict>> {
            self.0.delete(user).await
        }
        async fn get(&self, id: &UserId) -> Result<Option<User>, StoreUnavailable> {
            self.0.get(id).await
        }
        async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreUnavailable> {
            self.0.find_by_email(email).await
        }
        async fn update(
            &self,
            id: &UserId,
            update: UserUpdate,
            now: i64,
        ) -> Result<User, StoreError<UserConflict>> {
            self.0.update(id, update, now).await?;
            Err(StoreError::Unavailable(StoreUnavailable::new(
                "updating an account",
                "the answer was lost",
            )))
        }
        async fn change_email(
            &self,
            id: &UserId,
            new_email: &Email,
            linked: &LinkedState,
            now: i64,
        ) -> Result<User, StoreError<UserConflict>> {
            self.0.change_email(id, new_email, linked, now).await
        }
    }

    /// A role change whose answer was lost may have landed: its cached profile is dropped all
    /// the same, or tokens from before keep the old role until it expires. Before, the error
    /// returned before the cache was told.
    #[tokio::test]
    async fn a_role_change_whose_answer_is_lost_still_drops_the_cached_profile() {
        let users = AnswerLost(MemoryUsers::default());
        let admin = User {
            id: UserId::generate(),
            email: Email::parse("ada@example.com").expect("valid"),
            name: DisplayName::parse("Ada").expect("valid"),
            password_hash: "not-used".into(),
            role: Role::Admin,
            status: UserStatus::Active,
            token_version: 0,
            email_version: 0,
            created_at: 0,
            updated_at: 0,
        };
        users.create(&admin).await.expect("created");
        let cache = CacheAside::new(
            Arc::new(MemoryCache::default()),
            CacheKeys::new("t"),
            CacheSettings::default(),
        );
        let key = cache.keys().user_profile(&admin.id);
        let cached = cache.get_or_load(&key, || async { Ok::<_, String>(Some(1u8)) });
        assert_eq!(cached.await.ok(), Some((Some(1), CacheStatus::Miss)));

        let changed = set_role(&users, Some(&cache), &admin.email, Role::Student).await;
        assert!(changed.is_err(), "the answer was lost");
        let read = cache.get_or_load(&key, || async { Ok::<_, String>(Some(2u8)) });
        assert_eq!(
            read.await.ok(),
            Some((Some(2), CacheStatus::Miss)),
            "dropped"
        );
    }
}
