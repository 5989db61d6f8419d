//! `oesctl` against the local emulator and Redis: provisioning, role changes, queues, the cache. Needs `make services`
//! (`make test` runs it).

use std::process::{Command, Output};

use oes_adapters::aws::AwsClients;
use oes_adapters::dynamo::DynamoUsers;
use oes_adapters::redis_cache::RedisTopology;
use oes_domain::cache::{CacheAside, CacheSettings, CacheStatus};
use oes_domain::ports::UserStore;
use oes_domain::security::Secret;
use oes_domain::user::{DisplayName, Email, Role, User, UserId, UserStatus};
use oes_runtime::config::CacheConfig;

fn endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("this test needs the AWS emulator: run it with `make test` (it starts the services)")
    })
}

fn oesctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_oesctl"))
        .args(["--endpoint", &endpoint()])
        .args(args)
        .env("RUST_LOG", "warn")
        // The functions' table variable, which a developer's shell may hold: not oesctl's.
        .env("OES_TABLE", "not-this-table")
        .output()
        .expect("oesctl runs")
}

/// The AWS clients for the emulator oesctl is pointed at.
async fn clients() -> AwsClients {
    AwsClients::load(Some(&endpoint()))
        .await
        .expect("the AWS clients")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn provision_is_idempotent_and_set_role_changes_the_role_and_revokes_sessions() {
    let prefix = format!("cli{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    for _ in 0..2 {
        let output = oesctl(&["provision", "--prefix", &prefix]);
        assert!(output.status.success(), "{}", stderr(&output));
        let printed = stdout(&output);
        assert!(
            printed.contains(&format!("export OES_TABLE={prefix}-data")),
            "{printed}"
        );
        assert!(
            printed.contains(&format!("{prefix}-email-priority")),
            "{printed}"
        );
        assert!(
            printed.contains(&format!("{prefix}-email-dlq")),
            "{printed}"
        );
        // The secret the functions read their JWT key from, by name (as env.json gives it).
        assert!(
            printed.contains(&format!("export OES_JWT_SECRET_ARN={prefix}-jwt\n")),
            "{printed}"
        );
    }

    let clients = clients().await;
    let users = DynamoUsers::new(clients.dynamodb(), format!("{prefix}-data"));
    let user = User {
        id: UserId::generate(),
        email: Email::parse("grace@example.com").expect("valid"),
        name: DisplayName::parse("Grace").expect("valid"),
        password_hash: "$argon2id$placeholder".into(),
        role: Role::Student,
        status: UserStatus::Active,
        token_version: 0,
        email_version: 0,
        created_at: 0,
        updated_at: 0,
    };
    users.create(&user).await.expect("created");

    let output = oesctl(&[
        "users",
        "set-role",
        "GRACE@example.com",
        "instructor",
        "--prefix",
        &prefix,
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).contains("grace@example.com is now instructor"));
    let after = users.get(&user.id).await.expect("read").expect("exists");
    assert_eq!((after.role, after.token_version), (Role::Instructor, 1));

    let output = oesctl(&[
        "users",
        "set-role",
        "grace@example.com",
        "root",
        "--prefix",
        &prefix,
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("must be student, instructor or admin"),
        "{}",
        stderr(&output)
    );

    let output = oesctl(&[
        "users",
        "set-role",
        "nobody@example.com",
        "admin",
        "--prefix",
        &prefix,
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no user with email nobody@example.com"),
        "{}",
        stderr(&output)
    );
}

/// `provision` is for the emulator: without an endpoint it would create a table, queues and an
/// SES identity in whatever account the shell's credentials reach. It refuses, before any call.
#[test]
fn provision_without_an_endpoint_refuses_rather_than_reach_real_aws() {
    let output = Command::new(env!("CARGO_BIN_EXE_oesctl"))
        .args(["provision", "--prefix", "never-made"])
        .env_remove("AWS_ENDPOINT_URL")
        .env("RUST_LOG", "warn")
        // Were a call made, it would go nowhere.
        .env("AWS_ACCESS_KEY_ID", "unused")
        .env("AWS_SECRET_ACCESS_KEY", "unused")
        .env("AWS_REGION", "us-east-1")
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .output()
        .expect("oesctl runs");
    assert!(!output.status.success(), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("give --endpoint or AWS_ENDPOINT_URL"),
        "{}",
        stderr(&output)
    );
    assert_eq!(stdout(&output), "", "nothing provisioned");
}

/// Resources under a new prefix, provisioned by `oesctl provision`: the prefix and the DLQ's URL.
fn provisioned() -> (String, String) {
    let prefix = format!("cli{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let output = oesctl(&["provision", "--prefix", &prefix]);
    assert!(output.status.success(), "{}", stderr(&output));
    let dlq_url = stdout(&output)
        .lines()
        .find_map(|l| l.strip_prefix("export OES_DLQ_URL="))
        .expect("the DLQ url")
        .to_owned();
    (prefix, dlq_url)
}

#[tokio::test]
async fn queues_jobs_and_the_dead_letter_queue_can_be_inspected_and_purged() {
    let (prefix, dlq_url) = provisioned();
    let clients = clients().await;
    clients
        .sqs()
        .send_message()
        .queue_url(&dlq_url)
        .message_body("not a job")
        .send()
        .await
        .expect("sent");

    let output = oesctl(&["queues", "--prefix", &prefix]);
    assert!(output.status.success(), "{}", stderr(&output));
    let table = stdout(&output);
    for lane in ["email-priority", "email-bulk", "email-dlq"] {
        assert!(table.contains(&format!("{prefix}-{lane}")), "{table}");
    }

    let output = oesctl(&["dlq", "list", "--prefix", &prefix]);
    assert!(
        stdout(&output).contains("(undecodable)"),
        "{}",
        stdout(&output)
    );
    assert!(
        stdout(&output).contains("1 message(s)"),
        "{}",
        stdout(&output)
    );

    let output = oesctl(&["dlq", "redrive", "--all", "--prefix", &prefix]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("moved 0 message(s) back to their lane, left 1"),
        "{}",
        stdout(&output)
    );

    let output = oesctl(&["dlq", "purge", "--prefix", &prefix]);
    assert!(!output.status.success(), "purge needs --yes");
    let output = oesctl(&["dlq", "purge", "--yes", "--prefix", &prefix]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("purged 1 message(s), 0 job record(s) now dead"),
        "the undecodable letter is gone, no record to mark: {}",
        stdout(&output)
    );
    let output = oesctl(&["dlq", "list", "--prefix", &prefix]);
    assert!(
        stdout(&output).contains("0 message(s)"),
        "{}",
        stdout(&output)
    );

    // The emulator has no event source mapping on these lanes (oes-local pauses its pollers
    // through the admin API): the command says so.
    let output = oesctl(&["lanes", "--prefix", &prefix]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no event source mapping reads"),
        "{}",
        stderr(&output)
    );

    let output = oesctl(&["jobs", "show", "no-such-job", "--prefix", &prefix]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no email job no-such-job"),
        "{}",
        stderr(&output)
    );
}

fn redis_url() -> String {
    std::env::var("REDIS_URL")
        .unwrap_or_else(|_| panic!("this test needs Redis: run it with `make test`"))
}

/// The APIs' cache-aside policy over `REDIS_URL`, under `prefix`.
fn cache_policy(prefix: &str) -> CacheAside {
    let config = CacheConfig {
        redis_url: Some(Secret::new(redis_url())),
        topology: RedisTopology::Standalone,
        prefix: prefix.to_owned(),
        settings: CacheSettings::default(),
    };
    oes_runtime::wiring::cache_aside(&config).expect("redis url")
}

/// Reads `id`'s profile entry through a new policy (a new process), loading a stand-in value on
/// a miss; returns where it came from.
async fn read_profile_entry(prefix: &str, id: &UserId) -> CacheStatus {
    let cache = cache_policy(prefix);
    let key = cache.keys().user_profile(id);
    let (value, status) = cache
        .get_or_load(&key, || async {
            Ok::<_, std::convert::Infallible>(Some(7u32))
        })
        .await
        .expect("infallible");
    assert_eq!(value, Some(7));
    status
}

#[tokio::test]
async fn set_role_drops_the_cached_profile_when_it_can_reach_the_cache() {
    let prefix = format!("role{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let output = oesctl(&["provision", "--prefix", &prefix]);
    assert!(output.status.success(), "{}", stderr(&output));
    let clients = clients().await;
    let users = DynamoUsers::new(clients.dynamodb(), format!("{prefix}-data"));
    let user = User {
        id: UserId::generate(),
        email: Email::parse("ada@example.com").expect("valid"),
        name: DisplayName::parse("Ada").expect("valid"),
        password_hash: "$argon2id$placeholder".into(),
        role: Role::Admin,
        status: UserStatus::Active,
        token_version: 0,
        email_version: 0,
        created_at: 0,
        updated_at: 0,
    };
    users.create(&user).await.expect("created");
    assert_eq!(
        read_profile_entry(&prefix, &user.id).await,
        CacheStatus::Miss
    );
    assert_eq!(
        read_profile_entry(&prefix, &user.id).await,
        CacheStatus::Hit
    );

    let set_role = |redis: Option<String>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_oesctl"));
        command
            .args([
                "--endpoint",
                &endpoint(),
                "users",
                "set-role",
                "ada@example.com",
            ])
            .args(["student", "--prefix", &prefix])
            .env("RUST_LOG", "warn")
            // The cache's key prefix is the resource prefix, as the APIs of a stack have it.
            .env_remove("OES_CACHE_PREFIX");
        match redis {
            Some(url) => command.env("REDIS_URL", url).env("REDIS_CLUSTER", "false"),
            None => command.env_remove("REDIS_URL"),
        };
        command.output().expect("oesctl runs")
    };
    let output = set_role(Some(redis_url()));
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("cached profile dropped"),
        "{}",
        stdout(&output)
    );
    assert_eq!(
        read_profile_entry(&prefix, &user.id).await,
        CacheStatus::Miss,
        "the demoted admin's cached profile is gone, so earlier tokens are refused at once"
    );

    let output = set_role(None);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("no cached profile was dropped"),
        "without REDIS_URL it says what that means: {}",
        stdout(&output)
    );

    // A REDIS_URL that does not answer (a cache in a VPC, from a laptop): the role changed, the
    // cached profile did not go, and oesctl says so.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let unreachable = format!("redis://{}", closed.local_addr().expect("address"));
    drop(closed);
    let output = set_role(Some(unreachable));
    assert!(output.status.success(), "{}", stderr(&output));
    let printed = stdout(&output);
    assert!(!printed.contains("cached profile dropped"), "{printed}");
    assert!(
        printed.contains("could not reach the cache"),
        "it says what that means: {printed}"
    );
}

#[tokio::test]
async fn cache_clear_makes_every_cached_entry_unreachable() {
    let redis_url = redis_url();
    let prefix = format!("clear{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let id = UserId::generate();
    let read = || read_profile_entry(&prefix, &id);
    assert_eq!(read().await, CacheStatus::Miss);
    assert_eq!(read().await, CacheStatus::Hit, "cached");

    // The key prefix is the resource prefix unless OES_CACHE_PREFIX says otherwise: a
    // stack's functions and oes-local key their entries under it.
    let output = Command::new(env!("CARGO_BIN_EXE_oesctl"))
        .args(["cache", "clear", "--prefix", &prefix])
        .env("REDIS_URL", &redis_url)
        .env("REDIS_CLUSTER", "false")
        .env_remove("OES_CACHE_PREFIX")
        .output()
        .expect("oesctl runs");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("cache cleared"),
        "{}",
        stdout(&output)
    );
    assert_eq!(
        read().await,
        CacheStatus::Miss,
        "a new process reads the new namespace"
    );

    let without_redis = Command::new(env!("CARGO_BIN_EXE_oesctl"))
        .args(["cache", "clear"])
        .env_remove("REDIS_URL")
        .output()
        .expect("oesctl runs");
    assert!(!without_redis.status.success());
    assert!(
        stderr(&without_redis).contains("REDIS_URL"),
        "{}",
        stderr(&without_redis)
    );
}

/// When the job records cannot be written (the table is gone, throttled, or denied), `dlq
/// purge` and `dlq redrive` say so and fail, instead of reporting the letters as "held by a
/// worker" and exiting 0; and a redrive of a job that is not on the dead-letter queue fails too.
#[tokio::test]
async fn dlq_commands_fail_when_they_could_not_do_their_work() {
    let (prefix, dlq_url) = provisioned();

    let output = oesctl(&["dlq", "redrive", "--id", "no-such-job", "--prefix", &prefix]);
    assert!(
        !output.status.success(),
        "a job not on the DLQ: {}",
        stdout(&output)
    );

    let clients = clients().await;
    let job = oes_domain::email::EmailJob::new(
        Email::parse("ada@example.com").expect("valid"),
        oes_domain::email::EmailTemplate::Generic {
            subject: "News".into(),
            text: "text".into(),
        },
        0,
    );
    clients
        .sqs()
        .send_message()
        .queue_url(&dlq_url)
        .message_body(job.encode())
        .send()
        .await
        .expect("sent");
    clients
        .dynamodb()
        .delete_table()
        .table_name(format!("{prefix}-data"))
        .send()
        .await
        .expect("the table deleted");
    for command in [["dlq", "purge", "--yes"], ["dlq", "redrive", "--all"]] {
        let output = oesctl(&[command[0], command[1], command[2], "--prefix", &prefix]);
        assert!(
            !output.status.success(),
            "{command:?} with the store failing: {}",
            stdout(&output)
        );
        assert!(
            !stdout(&output).contains("held by a worker"),
            "{}",
            stdout(&output)
        );
    }
}

/// `dlq purge` and `dlq redrive` keep the records they rewrite as long as the stack does
/// (`--job-retention-days`, or `OES_JOB_RETENTION_DAYS`): before, 14 days whatever the stack's
/// `JobRetentionDays`, so a record purged on a stack keeping them 90 days was gone in 14.
#[tokio::test]
async fn a_purge_keeps_the_record_it_rewrites_as_long_as_the_stack_keeps_records() {
    use oes_adapters::dynamo::DynamoJobs;
    use oes_adapters::resources::TABLE;
    use oes_domain::clock::{Clock as _, SystemClock};
    use oes_domain::email::{EmailJob, EmailTemplate};
    use oes_domain::ports::{Claim, JobLedger, Outcome};

    let (prefix, dlq_url) = provisioned();
    let clients = clients().await;
    let table = format!("{prefix}-{}", TABLE.suffix);
    let jobs = DynamoJobs::new(clients.dynamodb(), table.clone(), 86_400);
    let now = SystemClock.now();
    let job = EmailJob::new(
        Email::parse("ada@example.com").expect("an address"),
        EmailTemplate::Verification {
            name: "Ada".into(),
            token: Secret::new("t0k3n"),
            choose_password: false,
        },
        now - 1_000,
    );
    jobs.record_queued(&job, now - 1_000)
        .await
        .expect("recorded");
    let claim = jobs.claim(&job, now - 900, 60).await.expect("claimed");
    assert!(matches!(claim, Claim::Acquired { .. }), "{claim:?}");
    let dead = Outcome::Dead {
        reason: "attempts ran out".into(),
    };
    jobs.finish(&job.job_id, dead, now - 800)
        .await
        .expect("dead");
    clients
        .sqs()
        .send_message()
        .queue_url(&dlq_url)
        .message_body(job.encode())
        .send()
        .await
        .expect("its letter");

    let output = oesctl(&[
        "dlq",
        "purge",
        "--yes",
        "--prefix",
        &prefix,
        "--job-retention-days",
        "90",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("1 job record(s) now dead"),
        "{}",
        stdout(&output)
    );
    let item = clients
        .dynamodb()
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("JOB#{}", job.job_id)),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("JOB".into()),
        )
        .send()
        .await
        .expect("read")
        .item
        .expect("the record");
    let expires_at: i64 = item["expires_at"]
        .as_n()
        .expect("a number")
        .parse()
        .expect("whole");
    let kept = expires_at - SystemClock.now();
    assert!(
        (90 * 86_400 - 300..=90 * 86_400).contains(&kept),
        "kept {kept} s after the purge, not 90 days"
    );
}
