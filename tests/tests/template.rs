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
        assert!(
            !set.contains("OES_JWT_SECRET"),
            "{function}: the signing key never goes in the environment, only its ARN"
        );
        for name in required {
            // In AWS the key is read from Secrets Manager at init (wiring::resolve_jwt_secret).
            let name = match *name {
                "OES_JWT_SECRET" => "OES_JWT_SECRET_ARN",
                other => other,
            };
            assert!(set.contains(name), "{function} does not set {name}");
        }
    }
}

/// `const IDENT: Metric = count("Name")` lines of `shared/src/metrics.rs`, as (ident, name).
fn metric_constants() -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/src/metrics.rs");
    let source = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    source
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("pub const ")?;
            let (ident, rest) = rest.split_once(": Metric = ")?;
            let name = rest.split('"').nth(1)?;
            Some((ident.to_owned(), name.to_owned()))
        })
        .collect()
}

/// Every `.rs` file under `dir`.
fn rust_sources(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_sources(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn every_defined_metric_is_emitted_and_every_alarm_watches_a_defined_metric() {
    let constants = metric_constants();
    let names: BTreeSet<&str> = oes_shared::metrics::ALL.iter().map(|m| m.name).collect();
    assert_eq!(
        constants.len(),
        names.len(),
        "every metric constant is in metrics::ALL"
    );

    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut files = Vec::new();
    for dir in ["shared/src", "functions"] {
        rust_sources(&root.join(dir), &mut files);
    }
    let code: String = files
        .iter()
        .filter(|f| !f.ends_with("metrics.rs"))
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect();
    // Used anywhere outside metrics.rs means emitted: an unused import fails clippy.
    let words: BTreeSet<&str> = code
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    for (ident, name) in &constants {
        assert!(
            words.contains(ident.as_str()),
            "metric {name} ({ident}) is defined but nothing emits it"
        );
    }

    let template = template();
    let resources = template["Resources"].as_hash().expect("Resources");
    let mut watched = 0;
    for (id, resource) in resources {
        if text(&resource["Type"]) != "AWS::CloudWatch::Alarm" {
            continue;
        }
        let properties = &resource["Properties"];
        // A plain alarm names its metric; a metric-math alarm lists them under Metrics.
        let mut metrics = vec![properties];
        if let Some(list) = properties["Metrics"].as_vec() {
            metrics.extend(
                list.iter()
                    .map(|m| &m["MetricStat"]["Metric"])
                    .filter(|m| !m.is_badvalue()),
            );
        }
        for metric in metrics {
            if metric["Namespace"].is_badvalue()
                || text(&metric["Namespace"]) != "oes/${AWS::StackName}"
            {
                continue;
            }
            let name = text(&metric["MetricName"]);
            assert!(
                names.contains(name.as_str()),
                "alarm {} watches {name}, which the code does not define",
                text(id)
            );
            watched += 1;
        }
    }
    assert!(watched > 0, "no alarm watches an oes metric");
    let namespace =
        text(&template["Globals"]["Function"]["Environment"]["Variables"]["OES_METRICS_NAMESPACE"]);
    assert_eq!(
        namespace, "oes/${AWS::StackName}",
        "functions emit where the alarms look"
    );
}

#[test]
fn env_json_gives_each_function_every_variable_its_config_requires() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../env.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let env: serde_json::Value = serde_json::from_str(&text).expect("env.json is JSON");
    let exam_api: Vec<&str> = ApiConfig::REQUIRED
        .iter()
        .copied()
        .chain(["OES_DLQ_URL"])
        .collect();
    for (function, required) in [
        ("AuthApiFunction", ApiConfig::REQUIRED.to_vec()),
        ("ExamApiFunction", exam_api),
        ("EmailWorkerFunction", WorkerConfig::REQUIRED.to_vec()),
    ] {
        assert!(
            !resource(&template(), function).is_badvalue(),
            "env.json names {function}, a function of the template"
        );
        for name in required {
            assert!(
                env[function][name].as_str().is_some_and(|v| !v.is_empty()),
                "env.json: {function} lacks {name}"
            );
        }
    }
}
