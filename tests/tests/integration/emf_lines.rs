//! The EMF lines the code really writes, not just what `metrics::render` returns: a child
//! process (this test binary again, with `OES_METRICS=emf`) signs up and fails to sign in through
//! auth-api over the real adapters (DynamoDB and SQS in moto, Redis), and every line it printed
//! on stdout is checked against the Embedded Metric Format.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use oes_tests::{TestEnv, read, request};
use serde_json::{Value, json};

const CHILD: &str = "emf_lines::emit_in_a_child_process";
const NAMESPACE: &str = "oes/emf-test";

/// What the ignored test `child` of this binary prints on stdout, run alone in a process of its
/// own with EMF metrics on under `namespace` (metrics are set once per process, from its
/// environment); panics if it fails.
pub(crate) fn emf_child(child: &str, namespace: &str) -> String {
    let exe = std::env::current_exe().expect("this test binary");
    let output = Command::new(exe)
        .args([
            child,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("OES_METRICS", "emf")
        .env("OES_METRICS_NAMESPACE", namespace)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "the child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn what_the_code_emits_is_valid_emf_with_store_latency_and_rate_limits() {
    let stdout = emf_child(CHILD, NAMESPACE);

    let now_ms = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms");
    let mut seen = BTreeSet::new();
    // libtest's "test … " status may share the first line, before the JSON.
    let lines = stdout
        .lines()
        .filter(|l| l.contains("\"_aws\""))
        .filter_map(|l| l.find('{').map(|start| &l[start..]));
    for line in lines {
        let value: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("an EMF line is one JSON object ({e}): {line}"));
        let aws = &value["_aws"];
        let timestamp = aws["Timestamp"].as_u64().expect("Timestamp in ms");
        assert!(
            now_ms.abs_diff(timestamp) < 600_000,
            "Timestamp is now, in milliseconds: {line}"
        );
        let directives = aws["CloudWatchMetrics"]
            .as_array()
            .expect("CloudWatchMetrics");
        assert_eq!(directives.len(), 1, "{line}");
        let directive = &directives[0];
        assert_eq!(directive["Namespace"], NAMESPACE, "{line}");
        let mut dimensions = Vec::new();
        for set in directive["Dimensions"].as_array().expect("Dimensions") {
            for name in set.as_array().expect("a dimension set") {
                let name = name.as_str().expect("a dimension name");
                let dimension_value = value[name]
                    .as_str()
                    .unwrap_or_else(|| panic!("dimension {name} has a string value: {line}"));
                dimensions.push(format!("{name}={dimension_value}"));
            }
        }
        for metric in directive["Metrics"].as_array().expect("Metrics") {
            let name = metric["Name"].as_str().expect("Name");
            assert!(
                ["Count", "Milliseconds"].contains(&metric["Unit"].as_str().expect("Unit")),
                "{line}"
            );
            assert!(
                value[name].is_number(),
                "the value sits under the metric's name: {line}"
            );
            seen.insert(name.to_owned());
            for dimension in &dimensions {
                seen.insert(format!("{name}{{{dimension}}}"));
            }
        }
    }
    for expected in [
        "StoreLatency{Operation=GetItem}",
        "StoreLatency{Operation=TransactWriteItems}",
        "EmailsQueued{Lane=priority}",
        "EnqueueLatency",
        "LoginFailures",
        "RateLimited{Rule=login}",
    ] {
        assert!(
            seen.contains(expected),
            "{expected} was not emitted; emitted: {seen:?}"
        );
    }
}

/// The child's work; only meaningful with `OES_METRICS=emf`, so it is run by the test above.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run as a child process by what_the_code_emits_is_valid_emf_with_store_latency_and_rate_limits"]
async fn emit_in_a_child_process() {
    let env = TestEnv::spawn().await;
    let service = env.auth_service();
    let call = |path: &'static str, body: Value| {
        let service = &service;
        async move {
            let request = request("POST", path, Some(&body.to_string()), None);
            read(&auth_api::handle(service, request).await.expect("response")).0
        }
    };
    let sign_up = json!({"email": "emf@example.com", "password": "correct horse", "name": "E"});
    assert_eq!(call("/auth/register", sign_up).await, 202);
    let wrong = json!({"email": "emf@example.com", "password": "wrong password"});
    let mut statuses = Vec::new();
    for _ in 0..=auth_api::limits::LOGIN_PER_ACCOUNT_AND_IP.max {
        statuses.push(call("/auth/login", wrong.clone()).await);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}
