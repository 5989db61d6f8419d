//! `template.yaml` and the code agree: resource definitions (names, key schema, TTL, visibility
//! timeout, retention, maxReceiveCount), routes, and the environment each function requires.

use std::collections::BTreeSet;

use oes_shared::config::{ApiConfig, WorkerConfig};
use oes_shared::resources::{QUEUES, TABLE, WORKER_TIMEOUT_SECONDS};
use yaml_rust2::{Yaml, YamlLoader};

fn template() -> Yaml {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("template.yaml is not YAML: {e}"))
        .remove(0)
}

fn resource<'a>(template: &'a Yaml, logical_id: &str) -> &'a Yaml {
    let resource = &template["Resources"][logical_id];
    assert!(
        !resource.is_badvalue(),
        "template.yaml has no resource {logical_id}"
    );
    &resource["Properties"]
}

/// The text of a scalar, whether plain or behind an intrinsic tag such as `!Sub`.
fn text(value: &Yaml) -> String {
    match value {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

#[test]
fn the_table_matches_the_local_definition() {
    let template = template();
    let table = resource(&template, TABLE.logical_id);
    assert_eq!(
        text(&table["TableName"]),
        format!("${{AWS::StackName}}-{}", TABLE.suffix)
    );
    let keys: Vec<(String, String)> = table["KeySchema"]
        .as_vec()
        .expect("KeySchema")
        .iter()
        .map(|k| (text(&k["AttributeName"]), text(&k["KeyType"])))
        .collect();
    assert_eq!(
        keys,
        [
            (TABLE.hash_key.to_owned(), "HASH".to_owned()),
            (TABLE.range_key.to_owned(), "RANGE".to_owned())
        ]
    );
    let ttl = &table["TimeToLiveSpecification"];
    assert_eq!(text(&ttl["AttributeName"]), TABLE.ttl_attribute);
    assert_eq!(ttl["Enabled"], Yaml::Boolean(true));
}

#[test]
fn the_queues_match_the_local_definitions() {
    let template = template();
    for def in QUEUES {
        let queue = resource(&template, def.logical_id);
        let id = def.logical_id;
        assert_eq!(
            text(&queue["QueueName"]),
            format!("${{AWS::StackName}}-{}", def.suffix),
            "{id}"
        );
        assert_eq!(
            text(&queue["MessageRetentionPeriod"]),
            def.retention.to_string(),
            "{id}"
        );
        let redrive = &queue["RedrivePolicy"];
        match def.max_receive_count {
            Some(max) => {
                assert_eq!(
                    text(&queue["VisibilityTimeout"]),
                    def.visibility_timeout.to_string(),
                    "{id}"
                );
                assert_eq!(text(&redrive["maxReceiveCount"]), max.to_string(), "{id}");
            }
            None => assert!(
                redrive.is_badvalue(),
                "{id} is the DLQ and has no redrive policy"
            ),
        }
    }
}

#[test]
fn the_worker_timeout_fits_the_queue_visibility_timeout() {
    let template = template();
    let worker = resource(&template, "EmailWorkerFunction");
    assert_eq!(text(&worker["Timeout"]), WORKER_TIMEOUT_SECONDS.to_string());
    for def in QUEUES.iter().filter(|q| q.max_receive_count.is_some()) {
        assert!(
            def.visibility_timeout >= 6 * WORKER_TIMEOUT_SECONDS,
            "{}",
            def.logical_id
        );
    }
}

fn http_routes(function: &Yaml) -> BTreeSet<(String, String)> {
    function["Events"]
        .as_hash()
        .expect("Events")
        .values()
        .filter(|event| text(&event["Type"]) == "HttpApi")
        .map(|event| {
            (
                text(&event["Properties"]["Method"]),
                text(&event["Properties"]["Path"]),
            )
        })
        .collect()
}

#[test]
fn every_auth_route_is_in_the_template_and_nothing_else() {
    let template = template();
    let in_template = http_routes(resource(&template, "AuthApiFunction"));
    let in_code: BTreeSet<(String, String)> = auth_api::routes::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(in_template, in_code);
}

#[test]
fn every_exam_route_is_in_the_template_and_nothing_else() {
    let template = template();
    let in_template = http_routes(resource(&template, "ExamApiFunction"));
    let in_code: BTreeSet<(String, String)> = exam_api::routes()
        .map(|(m, p)| (m.to_owned(), p.to_owned()))
        .collect();
    let missing: Vec<_> = in_code.difference(&in_template).collect();
    let extra: Vec<_> = in_template.difference(&in_code).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "ExamApiFunction's HttpApi events and exam_api::routes() differ: \
         missing from the template {missing:?}, in the template but not served {extra:?}"
    );
}

fn environment(function: &Yaml, globals: &Yaml) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for variables in [
        &globals["Environment"]["Variables"],
        &function["Environment"]["Variables"],
    ] {
        if let Some(map) = variables.as_hash() {
            names.extend(map.keys().map(text));
        }
    }
    names
}

#[test]
fn each_function_gets_every_variable_its_config_requires() {
    let template = template();
    let globals = &template["Globals"]["Function"];
    let exam_api: Vec<&str> = ApiConfig::REQUIRED
        .iter()
        .copied()
        .chain(["OES_DLQ_URL"])
        .collect();
    let cases = [
        ("AuthApiFunction", ApiConfig::REQUIRED),
        ("ExamApiFunction", exam_api.as_slice()),
        ("EmailWorkerFunction", WorkerConfig::REQUIRED),
    ];
    for (function, required) in cases {
        let set = environment(resource(&template, function), globals);
        for name in required {
            assert!(set.contains(*name), "{function} does not set {name}");
        }
    }
}
