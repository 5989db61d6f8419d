//! The contract of `LaneSwitch`, run against both implementations: both lanes run at first;
//! pausing one pauses only it, twice changes nothing, and resuming lets it run again.
//!
//! - `in_memory::<body>` over `MemoryLanes` (what `oes-local`'s pollers honour);
//! - `on_lambda::<body>` over `EventSourceMappings` in the emulator: a function (moto needs one,
//!   with a role it can assume; nothing is invoked) with a mapping on each lane of a fresh
//!   environment, switched through `UpdateEventSourceMapping` and read back through
//!   `GetEventSourceMapping`;
//! - `on_lambda_in_motion::<body>`: the same, with mappings that stay in motion after a switch
//!   and refuse another meanwhile (`ResourceInUseException`), as AWS's do and moto's do not
//!   ([`oes_tests::mappings_in_motion`]).
//!
//! What moto does not show: the transitional states themselves (`Disabling`, `Enabling`), which
//! it never reports, and that a disabled mapping stops receiving (it polls nothing without
//! Docker). The first is a `matches!` in the adapter; the second is AWS's.

use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{FunctionCode, Runtime};
use aws_sdk_sqs::types::QueueAttributeName;
use oes_adapters::lambda::EventSourceMappings;
use oes_adapters::memory::MemoryLanes;
use oes_domain::email::Lane;
use oes_domain::ports::LaneSwitch;
use oes_tests::mappings_in_motion::MappingsInMotion;
use oes_tests::{TestEnv, endpoints};

macro_rules! contract {
    ($($body:ident),* $(,)?) => {
        mod in_memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $body() {
                    super::$body(&MemoryLanes::default()).await;
                }
            )*
        }

        mod on_lambda {
            use super::*;
            $(
                #[tokio::test]
                async fn $body() {
                    let env = TestEnv::spawn().await;
                    super::$body(&mappings(&env).await).await;
                }
            )*
        }

        mod on_lambda_in_motion {
            use super::*;
            $(
                #[tokio::test]
                async fn $body() {
                    let env = TestEnv::spawn().await;
                    let [priority, bulk] = lane_mapping_uuids(&env).await;
                    let lambda = MappingsInMotion::client(&env.clients.lambda(), MOTION);
                    super::$body(&EventSourceMappings::new(lambda, &priority, &bulk)).await;
                }
            )*
        }
    };
}

/// How long a mapping stays `Enabling` or `Disabling` after a switch in `on_lambda_in_motion`.
const MOTION: Duration = Duration::from_millis(1_500);

contract!(
    both_lanes_run_at_first,
    pausing_a_lane_pauses_only_it_until_it_is_resumed,
    switching_twice_changes_nothing,
);

/// An empty zip archive: moto keeps the code, it never runs it.
const EMPTY_ZIP: [u8; 22] = [
    0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];

/// Creates IAM role `name` in the emulator (IAM's query API: the project has no IAM client)
/// and returns its ARN.
async fn create_role(name: &str) -> String {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let response = reqwest::Client::new()
        .post(endpoints().aws)
        // The emulator routes by the service in the credential scope.
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/iam/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!(
            "Action=CreateRole&Version=2010-05-08&RoleName={name}&AssumeRolePolicyDocument={}",
            form_encode(trust)
        ))
        .send()
        .await
        .expect("IAM answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    assert!(status.is_success(), "CreateRole: {status} {text}");
    let arn = text
        .split("<Arn>")
        .nth(1)
        .and_then(|rest| rest.split("</Arn>").next())
        .expect("the role's ARN");
    arn.to_owned()
}

fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A worker function with an event source mapping on each lane of `env`.
async fn mappings(env: &TestEnv) -> EventSourceMappings {
    let [priority, bulk] = lane_mapping_uuids(env).await;
    EventSourceMappings::new(env.clients.lambda(), &priority, &bulk)
}

/// Creates a worker function in the emulator with an event source mapping on each lane of
/// `env`: the UUIDs of the priority lane's and the bulk lane's mappings.
pub(crate) async fn lane_mapping_uuids(env: &TestEnv) -> [String; 2] {
    let lambda = &env.clients.lambda();
    let function = format!("{}-worker", env.prefix);
    lambda
        .create_function()
        .function_name(&function)
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role(create_role(&function).await)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(EMPTY_ZIP.to_vec()))
                .build(),
        )
        .send()
        .await
        .expect("a function");
    let mut uuids = Vec::new();
    for url in [
        &env.provisioned.priority_queue_url,
        &env.provisioned.bulk_queue_url,
    ] {
        let arn = env
            .clients
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("the queue's attributes")
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .expect("the queue's ARN");
        let mapping = lambda
            .create_event_source_mapping()
            .function_name(&function)
            .event_source_arn(arn)
            .batch_size(10)
            .send()
            .await
            .expect("a mapping");
        uuids.push(mapping.uuid().expect("its UUID").to_owned());
    }
    uuids.try_into().expect("two mappings")
}

async fn states(lanes: &dyn LaneSwitch) -> [bool; 2] {
    let mut states = [false; 2];
    for (state, lane) in states.iter_mut().zip(Lane::ALL) {
        *state = lanes.is_paused(lane).await.expect("read");
    }
    states
}

async fn both_lanes_run_at_first(lanes: &dyn LaneSwitch) {
    assert_eq!(states(lanes).await, [false, false]);
}

async fn pausing_a_lane_pauses_only_it_until_it_is_resumed(lanes: &dyn LaneSwitch) {
    lanes.pause(Lane::Bulk).await.expect("paused");
    assert_eq!(states(lanes).await, [false, true], "priority, bulk");
    lanes.pause(Lane::Priority).await.expect("paused");
    assert_eq!(states(lanes).await, [true, true]);
    lanes.resume(Lane::Bulk).await.expect("resumed");
    assert_eq!(states(lanes).await, [true, false]);
    lanes.resume(Lane::Priority).await.expect("resumed");
    assert_eq!(states(lanes).await, [false, false]);
}

async fn switching_twice_changes_nothing(lanes: &dyn LaneSwitch) {
    lanes.pause(Lane::Priority).await.expect("paused");
    lanes.pause(Lane::Priority).await.expect("paused again");
    assert_eq!(states(lanes).await, [true, false]);
    lanes.resume(Lane::Priority).await.expect("resumed");
    lanes.resume(Lane::Priority).await.expect("resumed again");
    lanes
        .resume(Lane::Bulk)
        .await
        .expect("a running lane resumed");
    assert_eq!(states(lanes).await, [false, false]);
}
