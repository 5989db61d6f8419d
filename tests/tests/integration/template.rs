//! `template.yaml` and the code agree: resource definitions (names, key schema, TTL, visibility
//! timeout, retention, maxReceiveCount), routes, and the environment each function requires.

use std::collections::BTreeSet;
use std::time::Duration;

use oes_adapters::resources::{
    BULK_QUEUE, PRIORITY_QUEUE, QUEUES, TABLE, WORKER_TIMEOUT_SECONDS, jwt_secret_name,
};
use oes_domain::ports::queue_name;
use oes_runtime::config::{
    ApiConfig, CacheConfig, Env, ResourceConfig, SweeperConfig, WorkerConfig, jwt_settings,
};
pub(crate) use oes_tests::iam::{like, role_statements, template, text, texts};
use yaml_rust2::Yaml;

use crate::fixtures::{fixtures, is_sqs, sqs_event};

pub(crate) fn resource<'a>(template: &'a Yaml, logical_id: &str) -> &'a Yaml {
    let resource = &template["Resources"][logical_id];
    assert!(
        !resource.is_badvalue(),
        "template.yaml has no resource {logical_id}"
    );
    &resource["Properties"]
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
    let defined: BTreeSet<String> = table["AttributeDefinitions"]
        .as_vec()
        .expect("AttributeDefinitions")
        .iter()
        .map(|a| text(&a["AttributeName"]))
        .collect();
    let indexes = table["GlobalSecondaryIndexes"]
        .as_vec()
        .map(Vec::as_slice)
        .unwrap_or_default();
    assert_eq!(indexes.len(), TABLE.indexes.len(), "one GSI per IndexDef");
    let mut keys_defined = BTreeSet::from([TABLE.hash_key.to_owned(), TABLE.range_key.to_owned()]);
    for (index, def) in indexes.iter().zip(TABLE.indexes) {
        assert_eq!(text(&index["IndexName"]), def.name);
        let keys: Vec<(String, String)> = index["KeySchema"]
            .as_vec()
            .expect("KeySchema")
            .iter()
            .map(|k| (text(&k["AttributeName"]), text(&k["KeyType"])))
            .collect();
        assert_eq!(
            keys,
            [
                (def.hash_key.to_owned(), "HASH".to_owned()),
                (def.range_key.to_owned(), "RANGE".to_owned())
            ],
            "{}",
            def.name
        );
        assert_eq!(text(&index["Projection"]["ProjectionType"]), "INCLUDE");
        let projected: Vec<String> = index["Projection"]["NonKeyAttributes"]
            .as_vec()
            .expect("NonKeyAttributes")
            .iter()
            .map(text)
            .collect();
        assert_eq!(projected, def.projected, "{}", def.name);
        keys_defined.extend([def.hash_key.to_owned(), def.range_key.to_owned()]);
    }
    assert_eq!(
        defined, keys_defined,
        "AttributeDefinitions names exactly the key attributes"
    );
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
        assert_eq!(
            text(&queue["VisibilityTimeout"]),
            def.visibility_timeout.to_string(),
            "{id}"
        );
        let redrive = &queue["RedrivePolicy"];
        match def.max_receive_count {
            Some(max) => {
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

/// `function`'s HttpApi events are exactly `routes`.
fn assert_routed(template: &Yaml, function: &str, routes: &[(&str, &str)]) {
    let in_template = http_routes(resource(template, function));
    let in_code: BTreeSet<(String, String)> = routes
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let missing: Vec<_> = in_code.difference(&in_template).collect();
    let extra: Vec<_> = in_template.difference(&in_code).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{function}'s HttpApi events and its routes in the code differ: missing from the \
         template {missing:?}, in the template but not served {extra:?}"
    );
}

#[test]
fn every_exam_route_is_in_the_template_and_nothing_else() {
    let routes: Vec<_> = exam_api::routes().collect();
    assert_routed(&template(), "ExamApiFunction", &routes);
}

#[test]
fn every_admin_route_and_the_console_are_in_the_template_and_nothing_else() {
    let routes: Vec<_> = admin_api::ROUTES
        .iter()
        .chain(admin_api::console::ROUTES)
        .copied()
        .collect();
    assert_routed(&template(), "AdminApiFunction", &routes);
}

/// Issue 13: the console's page and files reach admin-api with no authorizer at the gateway (a
/// browser fetches them without a token; they hold no data, and every call the page makes goes
/// to the admin API, which checks the admin's token in the function).
#[test]
fn the_console_is_routed_to_admin_api_without_an_authorizer() {
    let template = template();
    let function = resource(&template, "AdminApiFunction");
    let events: Vec<&Yaml> = function["Events"]
        .as_hash()
        .expect("Events")
        .values()
        .collect();
    for &(method, path) in admin_api::console::ROUTES {
        let event = events
            .iter()
            .find(|e| {
                text(&e["Properties"]["Method"]) == method && text(&e["Properties"]["Path"]) == path
            })
            .unwrap_or_else(|| panic!("{method} {path} is not routed to admin-api"));
        assert!(
            event["Properties"]["Auth"].is_badvalue(),
            "{method} {path} has an authorizer"
        );
    }
    assert!(
        resource(&template, "HttpApi")["Auth"].is_badvalue(),
        "the HTTP API has a default authorizer: the console's files would need a token"
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
    let admin_api: Vec<&str> = ApiConfig::REQUIRED
        .iter()
        .chain(ApiConfig::ADMIN_API)
        .copied()
        .collect();
    let cases = [
        ("AuthApiFunction", ApiConfig::REQUIRED),
        ("ExamApiFunction", ApiConfig::REQUIRED),
        ("AdminApiFunction", admin_api.as_slice()),
        ("AttemptSweeperFunction", SweeperConfig::REQUIRED),
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

/// Lambda's application log levels, most detailed first (Lambda Developer Guide, "Log-level
/// filtering": a level lets through itself and those after it).
const LAMBDA_LOG_LEVELS: [&str; 6] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"];

/// Lambda filters a function's JSON lines by their `level` and reads a line without one as INFO.
/// The EMF metric lines have none, and every alarm on a custom metric reads them: a filter above
/// INFO would drop them all, and those alarms would stay OK whatever happened. So whatever level
/// a deploy chooses (`LogLevel`, which reaches the code as `OES_LOG_LEVEL`), Lambda's own filter
/// must let a metric line through.
#[test]
fn no_log_level_a_deploy_can_choose_drops_a_metric_line() {
    let metric = oes_domain::metrics::ALL[0];
    let line: serde_json::Value =
        serde_json::from_str(&oes_domain::metrics::render("ns", metric, 1.0, None, 0))
            .expect("a metric line is JSON");
    let level = line["level"].as_str().unwrap_or("INFO").to_uppercase();
    let rank = |level: &str| {
        LAMBDA_LOG_LEVELS
            .iter()
            .position(|known| *known == level)
            .unwrap_or_else(|| panic!("{level} is not a Lambda log level"))
    };
    let template = template();
    let parameters = &template["Parameters"];
    let globals = &template["Globals"]["Function"];
    let mut functions = 0;
    for (id, function) in template["Resources"].as_hash().expect("Resources") {
        if text(&function["Type"]) != "AWS::Serverless::Function" {
            continue;
        }
        functions += 1;
        let own = &function["Properties"]["LoggingConfig"]["ApplicationLogLevel"];
        let inherited = &globals["LoggingConfig"]["ApplicationLogLevel"];
        let filter = [own, inherited]
            .into_iter()
            .find(|value| !value.is_badvalue())
            .map_or_else(|| "INFO".to_owned(), text);
        // A literal level, or `!Ref` to a parameter: then each value it allows.
        let chosen = &parameters[filter.as_str()];
        let filters: Vec<String> = if chosen.is_badvalue() {
            vec![filter]
        } else {
            chosen["AllowedValues"]
                .as_vec()
                .unwrap_or_else(|| panic!("{filter} allows any level"))
                .iter()
                .map(text)
                .collect()
        };
        for filter in filters {
            assert!(
                rank(&level) >= rank(&filter),
                "{}: at ApplicationLogLevel {filter} Lambda drops every metric line (level {level})",
                text(id)
            );
        }
    }
    assert_eq!(functions, 5);
    assert_eq!(
        text(&globals["Environment"]["Variables"]["OES_LOG_LEVEL"]),
        "LogLevel",
        "the deploy's LogLevel reaches the code"
    );
}

/// `const IDENT: Metric = count("Name")` lines of `shared/domain/src/metrics.rs`, as (ident, name).
fn metric_constants() -> Vec<(String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/domain/src/metrics.rs"
    );
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

/// What of [`function_code`] ships: each file up to its test module (`#[cfg(test)]`, which
/// this code base keeps last), without comment lines.
fn shipped_code(keep: impl Fn(&std::path::Path) -> bool) -> String {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut files = Vec::new();
    for dir in ["shared", "functions"] {
        rust_sources(&root.join(dir), &mut files);
    }
    let mut shipped = String::new();
    for file in files.iter().filter(|f| keep(f)) {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for line in text.lines() {
            if line.trim_start().starts_with("#[cfg(test)]") {
                break;
            }
            if !line.trim_start().starts_with("//") {
                shipped.push_str(line);
                shipped.push('\n');
            }
        }
    }
    shipped
}

/// The text of the `.rs` files that build the functions (`shared/`, `functions/`) that
/// `keep` keeps, concatenated.
fn function_code(keep: impl Fn(&std::path::Path) -> bool) -> String {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut files = Vec::new();
    for dir in ["shared", "functions"] {
        rust_sources(&root.join(dir), &mut files);
    }
    files
        .iter()
        .filter(|f| keep(f))
        .map(|f| std::fs::read_to_string(f).unwrap_or_default())
        .collect()
}

#[test]
fn every_defined_metric_is_emitted_and_every_alarm_watches_a_defined_metric() {
    let constants = metric_constants();
    let names: BTreeSet<&str> = oes_domain::metrics::ALL.iter().map(|m| m.name).collect();
    assert_eq!(
        constants.len(),
        names.len(),
        "every metric constant is in metrics::ALL"
    );

    // Used in code that ships, outside metrics.rs, means emitted (an unused import fails
    // clippy): not in a comment, a test module or a file of test bodies.
    let shipped =
        shipped_code(|f| !f.ends_with("metrics.rs") && !f.to_string_lossy().ends_with("_tests.rs"));
    let words: BTreeSet<&str> = shipped
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

/// The template's alarms, by logical id: their properties.
fn alarms(template: &Yaml) -> Vec<(String, &Yaml)> {
    let resources = template["Resources"].as_hash().expect("Resources");
    resources
        .iter()
        .filter(|(_, r)| text(&r["Type"]) == "AWS::CloudWatch::Alarm")
        .map(|(id, r)| (text(id), &r["Properties"]))
        .collect()
}

/// The code writes an EMF datapoint only when something happens, so in a period where one of an
/// expression's metrics had nothing (a Redis outage: every operation an error, no hit, miss or
/// write), metric math has no value for the sum, the alarm reads the missing value as not
/// breaching, and a total outage never raises the alarm meant for it. Each of the code's
/// metrics in an expression is read through `FILL(id, 0)`.
#[test]
fn an_alarm_expression_reads_a_period_without_a_code_metric_as_zero() {
    let template = template();
    let mut checked = 0;
    for (alarm, properties) in alarms(&template) {
        let Some(metrics) = properties["Metrics"].as_vec() else {
            continue;
        };
        let ours: Vec<String> = metrics
            .iter()
            .filter(|m| {
                let namespace = &m["MetricStat"]["Metric"]["Namespace"];
                !namespace.is_badvalue() && text(namespace) == "oes/${AWS::StackName}"
            })
            .map(|m| text(&m["Id"]))
            .collect();
        for expression in metrics.iter().map(|m| &m["Expression"]) {
            if expression.is_badvalue() {
                continue;
            }
            let mut rest = text(expression);
            for id in &ours {
                rest = rest.replace(&format!("FILL({id}, 0)"), "");
            }
            for id in &ours {
                let bare = rest
                    .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .any(|word| word == id);
                assert!(
                    !bare,
                    "{alarm}: {id} is read without FILL({id}, 0) in {rest}"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "no alarm expression over the code's metrics");
}

/// SendingPaused and SendingQuotaExceeded are counted once per attempt, and the worker then
/// holds the job `paused_seconds` (15 min): with a small backlog most 5-minute periods have no
/// datapoint while the account still cannot send. Their alarms look back further than the hold
/// and need one datapoint, so they do not turn OK (and notify) between two attempts.
#[test]
fn an_account_wide_send_refusal_keeps_its_alarm_raised_between_attempts() {
    let template = template();
    let hold = u64::from(oes_runtime::config::RetryPolicy::default().paused_seconds);
    for metric in ["SendingPaused", "SendingQuotaExceeded"] {
        let (alarm, properties) = alarms(&template)
            .into_iter()
            .find(|(_, p)| !p["MetricName"].is_badvalue() && text(&p["MetricName"]) == metric)
            .unwrap_or_else(|| panic!("no alarm on {metric}"));
        let number = |key: &str| -> u64 {
            text(&properties[key])
                .parse()
                .unwrap_or_else(|e| panic!("{alarm}.{key}: {e}"))
        };
        let window = number("Period") * number("EvaluationPeriods");
        assert!(
            window > hold,
            "{alarm} looks back {window} s, the hold is {hold} s"
        );
        assert_eq!(
            number("DatapointsToAlarm"),
            1,
            "{alarm}: one refusal raises it"
        );
    }
}

/// `env.json`: each function's environment under `sam local invoke`, for the resources the
/// local services hold under the prefix [`LOCAL_PREFIX`].
fn env_json() -> serde_json::Map<String, serde_json::Value> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../env.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    match serde_json::from_str(&text).expect("env.json is JSON") {
        serde_json::Value::Object(functions) => functions,
        other => panic!("env.json is not an object of functions: {other}"),
    }
}

/// The prefix of the local resources: `make run-local`'s and `make provision`'s, `oes-local`'s
/// default.
const LOCAL_PREFIX: &str = "oes-local";

/// The variable `name` env.json gives `function`, or a panic naming it.
fn env_json_var(
    functions: &serde_json::Map<String, serde_json::Value>,
    function: &str,
    name: &str,
) -> String {
    functions[function][name]
        .as_str()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("env.json: {function} lacks {name}"))
        .to_owned()
}

#[test]
fn env_json_gives_each_function_every_variable_its_config_requires() {
    let env = env_json();
    let admin_api: Vec<&str> = ApiConfig::REQUIRED
        .iter()
        .chain(ApiConfig::ADMIN_API)
        .copied()
        .collect();
    for (function, required) in [
        ("AuthApiFunction", ApiConfig::REQUIRED.to_vec()),
        ("ExamApiFunction", ApiConfig::REQUIRED.to_vec()),
        ("AdminApiFunction", admin_api),
        ("AttemptSweeperFunction", SweeperConfig::REQUIRED.to_vec()),
        ("EmailWorkerFunction", WorkerConfig::REQUIRED.to_vec()),
    ] {
        assert!(
            !resource(&template(), function).is_badvalue(),
            "env.json names {function}, a function of the template"
        );
        // Without it, the function calls AWS with the developer's credentials.
        env_json_var(&env, function, "AWS_ENDPOINT_URL");
        for name in required {
            if name == "OES_JWT_SECRET" {
                // As in AWS, only the key's secret: the emulator's, which `oes-local` (real
                // mode) signs its tokens with, so the functions accept them; with its issuer.
                assert_eq!(
                    env_json_var(&env, function, "OES_JWT_SECRET_ARN"),
                    jwt_secret_name(LOCAL_PREFIX),
                    "env.json: {function}'s key is not the local services' secret"
                );
                assert!(
                    env[function].get("OES_JWT_SECRET").is_none(),
                    "{function}: only the ARN"
                );
                let with_a_key = |name: &str| (name == "OES_JWT_SECRET").then(|| "k".repeat(32));
                let local = jwt_settings(&Env(with_a_key)).expect("oes-local's JWT settings");
                assert_eq!(
                    env_json_var(&env, function, "OES_JWT_ISSUER"),
                    local.issuer,
                    "env.json: {function} would refuse oes-local's tokens"
                );
                continue;
            }
            env_json_var(&env, function, name);
        }
        if env[function].get("REDIS_URL").is_some() {
            // oes-local's cache prefix is its resource prefix: a write through either
            // invalidates what the other cached.
            assert_eq!(
                env_json_var(&env, function, "OES_CACHE_PREFIX"),
                LOCAL_PREFIX,
                "env.json: {function} caches apart from oes-local"
            );
        }
        let table = format!("{LOCAL_PREFIX}-{}", TABLE.suffix);
        assert_eq!(
            env_json_var(&env, function, "OES_TABLE"),
            table,
            "{function}"
        );
        for (variable, queue) in [
            ("OES_PRIORITY_QUEUE_URL", PRIORITY_QUEUE),
            ("OES_BULK_QUEUE_URL", BULK_QUEUE),
        ] {
            let url = env_json_var(&env, function, variable);
            assert!(
                url.ends_with(&format!("/{LOCAL_PREFIX}-{}", queue.suffix)),
                "env.json: {function}'s {variable} {url} is not a local lane"
            );
        }
    }
}

/// Two stacks may be given one Redis (`CacheMode=existing`, one `RedisUrl`): each function's keys
/// start with its stack's name, so neither serves the other's entries (a published exam list),
/// clears the other's namespace or counts against the other's rate limits.
#[test]
fn two_stacks_given_one_redis_never_share_a_key() {
    let template = template();
    let globals = &template["Globals"]["Function"];
    for function in [
        "AuthApiFunction",
        "ExamApiFunction",
        "AdminApiFunction",
        "AttemptSweeperFunction",
    ] {
        let own = &resource(&template, function)["Environment"]["Variables"]["OES_CACHE_PREFIX"];
        let prefix = if own.is_badvalue() {
            &globals["Environment"]["Variables"]["OES_CACHE_PREFIX"]
        } else {
            own
        };
        // `!Ref AWS::StackName` (the loader keeps the text behind the tag).
        assert_eq!(
            prefix.as_str(),
            Some("AWS::StackName"),
            "{function}'s cache keys do not start with its stack's name"
        );
    }
    // A stack's name is one the configuration takes as a prefix.
    let stack = |name: &str| (name == "OES_CACHE_PREFIX").then(|| "oes-prod-2".to_owned());
    let config = CacheConfig::load(&Env(stack)).expect("a stack name is a cache prefix");
    assert_eq!(config.prefix, "oes-prod-2");
}

/// SAM gives a function a value from `--env-vars` only for a variable the template declares
/// for it (its own or Globals'); any other is dropped without a word (SAM CLI's
/// `EnvironmentVariables.resolve`).
#[test]
fn sam_local_invoke_gives_each_function_every_variable_env_json_sets() {
    let template = template();
    let globals = &template["Globals"]["Function"];
    for (function, variables) in env_json() {
        let declared = environment(resource(&template, &function), globals);
        for name in variables
            .as_object()
            .expect("a function's variables")
            .keys()
        {
            assert!(
                declared.contains(name),
                "env.json gives {function} {name}, which template.yaml does not declare for it: \
                 sam local invoke would drop it"
            );
        }
    }
}

/// The worker `sam local invoke` runs takes the SQS fixtures as from its own lanes: a record
/// from a queue it is not configured for can be neither retried nor dead-lettered.
#[test]
fn the_sqs_fixtures_come_from_the_lanes_env_json_gives_the_worker() {
    let env = env_json();
    let lanes: Vec<String> = ["OES_PRIORITY_QUEUE_URL", "OES_BULK_QUEUE_URL"]
        .iter()
        .map(|variable| queue_name(&env_json_var(&env, "EmailWorkerFunction", variable)).to_owned())
        .collect();
    let mut records = 0;
    for (name, text) in fixtures().into_iter().filter(|(name, _)| is_sqs(name)) {
        for record in sqs_event(&name, &text).records {
            let arn = record.event_source_arn.unwrap_or_default();
            assert!(
                lanes.iter().any(|lane| lane == queue_name(&arn)),
                "{name}: a record from {arn}, not a lane env.json gives the worker ({lanes:?})"
            );
            records += 1;
        }
    }
    assert!(records > 0, "no SQS fixture in events/");
}

fn allows(statements: &[&Yaml], action: &str, resource: &str) -> bool {
    statements.iter().any(|s| {
        texts(&s["Action"]).iter().any(|a| a == action)
            && texts(&s["Resource"]).iter().any(|r| r == resource)
    })
}

#[test]
fn each_function_has_its_own_least_privilege_role() {
    let template = template();
    let functions: Vec<(String, &Yaml)> = template["Resources"]
        .as_hash()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| text(&r["Type"]) == "AWS::Serverless::Function")
        .map(|(id, r)| (text(id), &r["Properties"]))
        .collect();
    assert_eq!(functions.len(), 5);
    // Each its own: the role tests below name roles, so a function given another's role would
    // pass them all while holding that role's rights.
    let roles: std::collections::BTreeMap<&str, String> = functions
        .iter()
        .map(|(function, properties)| (function.as_str(), text(&properties["Role"])))
        .collect();
    let expected: std::collections::BTreeMap<&str, String> = [
        ("AdminApiFunction", "AdminApiRole"),
        ("AttemptSweeperFunction", "AttemptSweeperRole"),
        ("AuthApiFunction", "AuthApiRole"),
        ("EmailWorkerFunction", "EmailWorkerRole"),
        ("ExamApiFunction", "ExamApiRole"),
    ]
    .into_iter()
    .map(|(function, role)| (function, format!("{role}.Arn")))
    .collect();
    assert_eq!(roles, expected, "each function and its own role");
    for (function, properties) in functions {
        // A role SAM generates carries managed policies on Resource "*".
        assert!(
            properties["Policies"].is_badvalue(),
            "{function}: permissions go in its role, not in SAM Policies"
        );
        let role_ref = text(&properties["Role"]);
        let role_id = role_ref
            .strip_suffix(".Arn")
            .unwrap_or_else(|| panic!("{function}: Role is !GetAtt <Role>.Arn, found {role_ref}"));
        let role = resource(&template, role_id);
        assert!(
            role["ManagedPolicyArns"].is_badvalue(),
            "{role_id}: no managed policies (they grant on Resource \"*\")"
        );
        let statements = role_statements(role);
        for statement in &statements {
            let actions = texts(&statement["Action"]);
            // In the SES sandbox, sends to the account's identities, from the sender only.
            let sandbox_recipients = actions == ["ses:SendEmail"]
                && !statement["Condition"]["StringEquals"]["ses:FromAddress"].is_badvalue();
            if texts(&statement["Resource"])
                .iter()
                .any(|r| r.contains('*'))
                && !sandbox_recipients
            {
                assert!(
                    actions
                        .iter()
                        .all(|a| a.starts_with("xray:") || a.starts_with("ec2:")),
                    "{role_id}: only X-Ray and VPC network interfaces may use a wildcard \
                     resource, not {actions:?}"
                );
            }
        }
        let log_group = format!("{}.Arn", text(&properties["LoggingConfig"]["LogGroup"]));
        for action in ["logs:CreateLogStream", "logs:PutLogEvents"] {
            assert!(
                allows(&statements, action, &log_group),
                "{role_id}: {action} on its log group"
            );
        }
        // Lambda refuses to create an SQS event source mapping without these.
        for event in properties["Events"].as_hash().into_iter().flatten() {
            let event = event.1;
            if text(&event["Type"]) != "SQS" {
                continue;
            }
            let queue = text(&event["Properties"]["Queue"]);
            for action in [
                "sqs:ReceiveMessage",
                "sqs:DeleteMessage",
                "sqs:GetQueueAttributes",
            ] {
                assert!(
                    allows(&statements, action, &queue),
                    "{role_id}: {action} on {queue} for its event source"
                );
            }
            // The worker holds a job it waits for as a fresh copy on the lane it came from
            // (`QueueControl::renew`), and hides a delivery when that fails.
            for action in ["sqs:SendMessage", "sqs:ChangeMessageVisibility"] {
                assert!(
                    allows(&statements, action, &queue),
                    "{role_id}: {action} on {queue}, to hold the jobs it consumes"
                );
            }
        }
    }
}

/// Every `(variable, value)` the template sets for any function, Globals included.
fn template_variables(template: &Yaml) -> Vec<(String, Yaml)> {
    let mut sets = vec![&template["Globals"]["Function"]["Environment"]["Variables"]];
    for resource in template["Resources"].as_hash().expect("Resources").values() {
        sets.push(&resource["Properties"]["Environment"]["Variables"]);
    }
    sets.iter()
        .filter_map(|set| set.as_hash())
        .flatten()
        .map(|(name, value)| (text(name), value.clone()))
        .collect()
}

#[test]
fn every_variable_the_template_sets_is_read_by_the_code_and_parameter_defaults_match_it() {
    let template = template();
    let code = function_code(|_| true);
    let variables = template_variables(&template);
    // Read by a dependency, not by our code: mimalloc's C library reads its options, aws-config
    // the endpoint.
    let read_by_dependencies = [
        "MIMALLOC_ALLOW_THP",
        "MIMALLOC_ARENA_RESERVE",
        "AWS_ENDPOINT_URL",
    ];
    for (name, _) in &variables {
        assert!(
            read_by_dependencies.contains(&name.as_str()) || code.contains(&format!("\"{name}\"")),
            "the template sets {name}, which no code reads (a typo?)"
        );
    }

    // A variable set to `!Ref <Parameter>` gets the parameter's default in a plain deploy: the
    // configuration loaded from those defaults must equal the one loaded with none set.
    let parameters = &template["Parameters"];
    let defaults: std::collections::HashMap<String, String> = variables
        .iter()
        .filter_map(|(name, value)| {
            let parameter = &parameters[value.as_str()?];
            (!parameter.is_badvalue() && !parameter["Default"].is_badvalue())
                .then(|| (name.clone(), text(&parameter["Default"])))
        })
        .collect();
    assert!(defaults.contains_key("OES_CACHE_TTL_EXAM_SECONDS"));
    assert!(defaults.contains_key("OES_JOB_RETENTION_DAYS"));
    let base = |name: &str| match name {
        "OES_TABLE" | "OES_PRIORITY_QUEUE_URL" | "OES_BULK_QUEUE_URL" => Some("x".to_owned()),
        _ => None,
    };
    let with_defaults = Env(|name: &str| defaults.get(name).cloned().or_else(|| base(name)));
    let unset = Env(base);
    assert_eq!(
        CacheConfig::load(&with_defaults)
            .expect("cache config")
            .settings,
        CacheConfig::load(&unset).expect("cache config").settings,
        "the cache TTL parameters' defaults differ from the code's"
    );
    assert_eq!(
        ResourceConfig::load(&with_defaults)
            .expect("resources")
            .job_retention_seconds,
        ResourceConfig::load(&unset)
            .expect("resources")
            .job_retention_seconds,
        "JobRetentionDays' default differs from the code's"
    );
}

/// A job's record outlives every letter of its job: SQS keeps a message on the dead-letter
/// queue at most its retention from the first send, and a redrive moves back a letter whose job
/// has no record (a worker then sends it). `JobRetentionDays` below that let a redrive send a
/// job that had been sent, its record expired; the code refuses what the template refuses.
#[test]
fn a_job_record_outlives_every_letter_of_its_job() {
    let template = template();
    let days = &template["Parameters"]["JobRetentionDays"];
    let least: i64 = text(&days["MinValue"]).parse().expect("a number");
    for queue in [
        "EmailDeadLetterQueue",
        "EmailPriorityQueue",
        "EmailBulkQueue",
    ] {
        let kept: i64 = text(&resource(&template, queue)["MessageRetentionPeriod"])
            .parse()
            .expect("seconds");
        assert!(least * 86_400 >= kept, "{queue} keeps a letter {kept} s");
    }
    assert_eq!(least, oes_runtime::config::MIN_JOB_RETENTION_DAYS);
}

#[test]
fn the_dashboard_is_json_showing_every_metric_and_every_alarm() {
    let template = template();
    let body = &resource(&template, "Dashboard")["DashboardBody"];
    // `!Sub [body, {Namespace: …}]`: fill each ${…} with a stand-in, as CloudFormation would.
    let pattern = text(&body[0]);
    let mut filled = String::new();
    let mut rest = pattern.as_str();
    let mut references = BTreeSet::new();
    while let Some(start) = rest.find("${") {
        let end = start + rest[start..].find('}').expect("closing brace");
        references.insert(rest[start + 2..end].to_owned());
        filled.push_str(&rest[..start]);
        filled.push('x');
        rest = &rest[end + 1..];
    }
    filled.push_str(rest);
    let dashboard: serde_json::Value =
        serde_json::from_str(&filled).unwrap_or_else(|e| panic!("DashboardBody is not JSON: {e}"));
    let widgets = dashboard["widgets"].as_array().expect("widgets");

    let shown: BTreeSet<String> = widgets
        .iter()
        .filter_map(|w| w["properties"]["metrics"].as_array())
        .flatten()
        .flat_map(|row| row.as_array().into_iter().flatten())
        .filter_map(|cell| {
            cell.as_str()
                .map(str::to_owned)
                .or_else(|| cell["expression"].as_str().map(str::to_owned))
        })
        .collect();
    for metric in oes_domain::metrics::ALL {
        assert!(
            shown
                .iter()
                .any(|cell| cell == metric.name || cell.contains(&format!("\"{}\"", metric.name))),
            "the dashboard does not show {}",
            metric.name
        );
    }

    let alarms: Vec<String> = template["Resources"]
        .as_hash()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| text(&r["Type"]) == "AWS::CloudWatch::Alarm")
        .map(|(id, _)| text(id))
        .collect();
    assert!(!alarms.is_empty());
    for alarm in alarms {
        assert!(
            references.contains(&format!("{alarm}.Arn")),
            "the dashboard's alarm widget does not show {alarm}"
        );
    }
}

/// Least privilege inside the one table (issue 12): each function's DynamoDB statements are
/// scoped by `dynamodb:LeadingKeys` to the partitions it keeps (the key prefixes of
/// `shared/adapters/src/dynamo/schema.rs`) — the exam API cannot write a one-time token or an
/// address claim, the worker only job records.
#[test]
fn each_function_reaches_only_its_own_partitions_of_the_table() {
    let template = template();
    let (user, email, token, job) = ("USER#u1", "EMAIL#ada@example.com", "TOKEN#ab12", "JOB#j1");
    let (exam, published, attempt) = ("EXAM#e1", "EXAMS#PUBLISHED", "ATTEMPT#a1");
    let due = "DUE#3";
    let jobs_by_status = "JOBS#failed";
    let cases: [(&str, &[&str], &[&str]); 5] = [
        (
            "AuthApiRole",
            &[user, email, token, job],
            &[exam, published, attempt, due, jobs_by_status],
        ),
        (
            "ExamApiRole",
            &[exam, published, attempt, user, job, due],
            &[token, email, jobs_by_status],
        ),
        (
            "AdminApiRole",
            &[user, job],
            &[token, email, exam, published, attempt, due, jobs_by_status],
        ),
        (
            "AttemptSweeperRole",
            &[due, attempt, exam, user, job],
            &[token, email, published, jobs_by_status],
        ),
        (
            "EmailWorkerRole",
            &[job],
            &[
                user,
                email,
                token,
                exam,
                published,
                attempt,
                due,
                jobs_by_status,
            ],
        ),
    ];
    for (role_id, needs, denied) in cases {
        let statements = role_statements(resource(&template, role_id));
        let table: Vec<_> = statements
            .iter()
            .filter(|s| {
                texts(&s["Resource"])
                    .iter()
                    .any(|r| r.starts_with("DataTable"))
            })
            .collect();
        assert!(!table.is_empty(), "{role_id}: no table statement");
        let mut reached = Vec::new();
        for statement in table {
            let scope = &statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
            assert!(
                !scope.is_badvalue(),
                "{role_id}: every table statement is scoped by dynamodb:LeadingKeys"
            );
            let patterns = texts(scope);
            for key in denied {
                assert!(
                    !patterns.iter().any(|p| like(p, key)),
                    "{role_id} must not reach the partition {key}: {patterns:?}"
                );
            }
            reached.extend(patterns);
        }
        for key in needs {
            assert!(
                reached.iter().any(|p| like(p, key)),
                "{role_id} needs the partition {key}: {reached:?}"
            );
        }
    }
}

/// Whether `statements` let `action` reach an item of the table under the partition key `key`.
fn table_allows(statements: &[&Yaml], action: &str, key: &str) -> bool {
    statements.iter().any(|s| {
        texts(&s["Resource"]).iter().any(|r| r == "DataTable.Arn")
            && texts(&s["Action"]).iter().any(|a| a == action)
            && texts(&s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"])
                .iter()
                .any(|p| like(p, key))
    })
}

/// Least privilege inside a partition: a function may do to the table only what its adapters
/// do. admin-api reads accounts (is the caller an admin?) and writes only job records; auth-api
/// neither queries nor batch-writes (its adapters read and write items by key, and check the
/// latest reset link in a transaction); exam-api checks an exam's version in a transaction
/// (a draft question's grading edit), the sweeper no item. Before, each held actions its code
/// never made. What each role's code really calls is held to these statements by
/// `fixtures::every_exam_and_admin_fixture_succeeds_on_aws_as_each_functions_role_allows` and the
/// other tests whose functions `TestEnv` builds (`oes_tests::iam`).
#[test]
fn each_function_may_do_to_the_table_only_what_its_code_does() {
    let template = template();
    // (role, (action, partition key) it needs, (action, partition key) it must not have)
    type Rights<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Rights, Rights); 4] = [
        (
            "AdminApiRole",
            &[
                ("dynamodb:GetItem", "USER#u1"),
                ("dynamodb:GetItem", "JOB#j1"),
                ("dynamodb:UpdateItem", "JOB#j1"),
            ],
            &[
                ("dynamodb:UpdateItem", "USER#u1"),
                ("dynamodb:PutItem", "USER#u1"),
                ("dynamodb:DeleteItem", "JOB#j1"),
            ],
        ),
        (
            "AuthApiRole",
            &[
                ("dynamodb:PutItem", "TOKEN#ab12"),
                ("dynamodb:ConditionCheckItem", "USER#u1"),
                ("dynamodb:ConditionCheckItem", "TOKEN#ab12"),
            ],
            &[
                ("dynamodb:Query", "USER#u1"),
                ("dynamodb:BatchWriteItem", "USER#u1"),
            ],
        ),
        (
            "ExamApiRole",
            &[
                ("dynamodb:BatchWriteItem", "EXAM#e1"),
                ("dynamodb:ConditionCheckItem", "EXAM#e1"),
            ],
            &[("dynamodb:ConditionCheckItem", "TOKEN#ab12")],
        ),
        (
            "AttemptSweeperRole",
            &[("dynamodb:DeleteItem", "DUE#3")],
            &[
                ("dynamodb:ConditionCheckItem", "ATTEMPT#a1"),
                ("dynamodb:BatchWriteItem", "DUE#3"),
            ],
        ),
    ];
    for (role_id, allowed, denied) in cases {
        let statements = role_statements(resource(&template, role_id));
        for (action, key) in allowed {
            assert!(
                table_allows(&statements, action, key),
                "{role_id} needs {action} on {key}"
            );
        }
        for (action, key) in denied {
            assert!(
                !table_allows(&statements, action, key),
                "{role_id} must not {action} on {key}: its code never does"
            );
        }
    }
}

/// auth-api queues only the mail of its links and notices of accounts, all on the priority
/// lane; the bulk lane is for result emails and other news, not auth-api's to fill.
#[test]
fn auth_api_queues_on_the_priority_lane_only() {
    let template = template();
    let statements = role_statements(resource(&template, "AuthApiRole"));
    assert!(allows(
        &statements,
        "sqs:SendMessage",
        "EmailPriorityQueue.Arn"
    ));
    assert!(!allows(
        &statements,
        "sqs:SendMessage",
        "EmailBulkQueue.Arn"
    ));
}

/// Issue 13: the job index (`gsi1`) is queried by admin-api alone (it lists and counts jobs by
/// status), only in its status partitions `JOBS#<status>`, and only read.
#[test]
fn only_the_admin_api_reads_the_job_index_and_only_its_status_partitions() {
    let template = template();
    let index = format!(
        "${{DataTable.Arn}}/index/{}",
        oes_adapters::resources::JOB_INDEX.name
    );
    for role_id in [
        "AuthApiRole",
        "ExamApiRole",
        "AdminApiRole",
        "AttemptSweeperRole",
        "EmailWorkerRole",
    ] {
        let statements = role_statements(resource(&template, role_id));
        let on_index: Vec<_> = statements
            .iter()
            .filter(|s| texts(&s["Resource"]).iter().any(|r| r.contains("/index/")))
            .collect();
        if role_id != "AdminApiRole" {
            assert!(on_index.is_empty(), "{role_id} does not read an index");
            continue;
        }
        assert_eq!(on_index.len(), 1, "{role_id}: one statement on the index");
        let statement = on_index[0];
        assert_eq!(texts(&statement["Resource"]), std::slice::from_ref(&index));
        assert_eq!(texts(&statement["Action"]), ["dynamodb:Query"]);
        let scope =
            texts(&statement["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]);
        assert_eq!(scope, ["JOBS#*"], "{role_id}: only the status partitions");
    }
}

/// Item 14 of issue 12: the attempt sweeper is the exam-api crate's second binary, run every
/// minute by a schedule, and reaches only what closing an attempt needs: no signing key, no
/// priority lane, no dead-letter queue.
#[test]
fn the_attempt_sweeper_runs_every_minute_with_only_what_a_close_needs() {
    let template = template();
    let function = &template["Resources"]["AttemptSweeperFunction"];
    assert_eq!(
        text(&function["Metadata"]["BuildProperties"]["Binary"]),
        "attempt-sweeper"
    );
    let properties = &function["Properties"];
    let schedules: Vec<String> = properties["Events"]
        .as_hash()
        .expect("Events")
        .values()
        .filter(|event| text(&event["Type"]) == "Schedule")
        .map(|event| text(&event["Properties"]["Schedule"]))
        .collect();
    assert_eq!(schedules, ["rate(1 minute)"]);
    assert_eq!(
        text(&properties["EventInvokeConfig"]["MaximumRetryAttempts"]),
        "0",
        "a failed run is not retried: the next run is its retry"
    );

    let statements = role_statements(resource(&template, "AttemptSweeperRole"));
    let actions: BTreeSet<String> = statements
        .iter()
        .flat_map(|s| texts(&s["Action"]))
        .collect();
    for forbidden in [
        "secretsmanager:GetSecretValue",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "dynamodb:BatchWriteItem",
        "dynamodb:Scan",
    ] {
        assert!(
            !actions.contains(forbidden),
            "the sweeper does not need {forbidden}"
        );
    }
    assert!(allows(&statements, "sqs:SendMessage", "EmailBulkQueue.Arn"));
    for queue in ["EmailPriorityQueue.Arn", "EmailDeadLetterQueue.Arn"] {
        assert!(
            !statements
                .iter()
                .any(|s| texts(&s["Resource"]).iter().any(|r| r == queue)),
            "result emails go to the bulk lane only, not {queue}"
        );
    }
}

/// Issue 14: the functions every user reaches hold none of the admin API's rights. A flaw in
/// exam-api or auth-api cannot pause a lane, read or delete dead letters, or list the job index:
/// those rights are admin-api's, a function of its own. exam-api queues result emails on the bulk
/// lane only.
#[test]
fn the_functions_every_user_reaches_hold_none_of_the_admins_rights() {
    let template = template();
    for role_id in ["AuthApiRole", "ExamApiRole"] {
        let statements = role_statements(resource(&template, role_id));
        for statement in &statements {
            let actions = texts(&statement["Action"]);
            let resources = texts(&statement["Resource"]);
            assert!(
                !resources.iter().any(|r| r == "EmailDeadLetterQueue.Arn"),
                "{role_id} reaches the dead-letter queue: {actions:?}"
            );
            for action in &actions {
                assert!(
                    !action.starts_with("lambda:")
                        && !matches!(
                            action.as_str(),
                            "sqs:ReceiveMessage" | "sqs:DeleteMessage" | "sqs:GetQueueAttributes"
                        ),
                    "{role_id} has {action}, an admin's right"
                );
            }
        }
    }
    let exam = role_statements(resource(&template, "ExamApiRole"));
    assert!(allows(&exam, "sqs:SendMessage", "EmailBulkQueue.Arn"));
    assert!(
        !allows(&exam, "sqs:SendMessage", "EmailPriorityQueue.Arn"),
        "exam-api queues result emails on the bulk lane only"
    );
}

/// Issue 13: pausing a lane disables its event source mapping. Only admin-api's role may switch
/// mappings, and only the worker's two (SAM's `EmailWorkerFunction<Event>` of its SQS events),
/// whose UUIDs admin-api is given.
#[test]
fn only_admin_api_switches_the_lanes_and_only_the_workers_two_mappings() {
    let template = template();
    let worker = resource(&template, "EmailWorkerFunction");
    let lanes: Vec<String> = worker["Events"]
        .as_hash()
        .expect("the worker's events")
        .iter()
        .filter(|(_, event)| text(&event["Type"]) == "SQS")
        .map(|(name, _)| format!("EmailWorkerFunction{}", text(name)))
        .collect();
    assert_eq!(
        lanes,
        [
            "EmailWorkerFunctionPriorityLane",
            "EmailWorkerFunctionBulkLane"
        ]
    );
    let arns: Vec<String> = lanes
        .iter()
        .map(|mapping| {
            format!(
                "arn:${{AWS::Partition}}:lambda:${{AWS::Region}}:${{AWS::AccountId}}:\
                 event-source-mapping:${{{mapping}}}"
            )
        })
        .collect();
    let roles: Vec<String> = template["Resources"]
        .as_hash()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| text(&r["Type"]) == "AWS::IAM::Role")
        .map(|(id, _)| text(id))
        .collect();
    assert!(roles.len() >= 5, "{roles:?}");
    for role in &roles {
        let statements = role_statements(resource(&template, role));
        let switching: Vec<_> = statements
            .iter()
            .filter(|s| {
                texts(&s["Action"])
                    .iter()
                    .any(|a| a == "*" || a.starts_with("lambda:"))
            })
            .collect();
        if role != "AdminApiRole" {
            assert!(switching.is_empty(), "{role} has no Lambda action");
            continue;
        }
        assert_eq!(switching.len(), 1, "{role}: one statement");
        assert_eq!(
            texts(&switching[0]["Action"]),
            [
                "lambda:UpdateEventSourceMapping",
                "lambda:GetEventSourceMapping"
            ]
        );
        assert_eq!(texts(&switching[0]["Resource"]), arns, "exactly the two");
    }
    let variables = &resource(&template, "AdminApiFunction")["Environment"]["Variables"];
    for (variable, mapping) in [
        ("OES_PRIORITY_LANE_MAPPING", &lanes[0]),
        ("OES_BULK_LANE_MAPPING", &lanes[1]),
    ] {
        assert_eq!(&text(&variables[variable]), mapping, "{variable}");
    }
}

/// Issue 14: what an exam day needs from API Gateway, auth-api and the lanes is set by
/// parameters whose defaults are sized in README.md ("Sizing for an exam day"), never by a
/// number buried in a resource. The defaults hold the class the README sizes them for.
#[test]
fn the_throttle_the_sign_in_memory_and_the_lane_concurrency_are_sized_parameters() {
    let template = template();
    let parameters = &template["Parameters"];
    let number = |name: &str, field: &str| -> i64 {
        text(&parameters[name][field])
            .parse()
            .unwrap_or_else(|e| panic!("{name}.{field}: {e}"))
    };
    let settings = &resource(&template, "HttpApi")["DefaultRouteSettings"];
    assert_eq!(text(&settings["ThrottlingRateLimit"]), "ApiRouteRateLimit");
    assert_eq!(
        text(&settings["ThrottlingBurstLimit"]),
        "ApiRouteBurstLimit"
    );
    // The README's exam day: 1,000 students saving answers every 15 s (the busiest route), all
    // pressing start in the same second.
    let (class, save_every_s) = (1000, 15);
    assert!(number("ApiRouteRateLimit", "Default") >= class / save_every_s);
    assert!(number("ApiRouteBurstLimit", "Default") >= class);
    assert!(number("ApiRouteBurstLimit", "Default") >= number("ApiRouteRateLimit", "Default"));

    // A sign-in is an argon2 check on the function's share of a vCPU (1,769 MB = 1 vCPU): at
    // least half a vCPU by default, so a check takes under twice its full-core time.
    let auth = resource(&template, "AuthApiFunction");
    assert_eq!(text(&auth["MemorySize"]), "AuthApiMemorySize");
    assert!(number("AuthApiMemorySize", "Default") >= 1769 / 2);

    let worker = resource(&template, "EmailWorkerFunction");
    let lane = |name: &str| {
        text(&worker["Events"][name]["Properties"]["ScalingConfig"]["MaximumConcurrency"])
    };
    assert_eq!(lane("PriorityLane"), "PriorityLaneConcurrency");
    assert_eq!(lane("BulkLane"), "BulkLaneConcurrency");
    for name in ["PriorityLaneConcurrency", "BulkLaneConcurrency"] {
        // SQS event sources take 2 to 1,000.
        assert!(
            number(name, "MinValue") >= 2 && number(name, "MaxValue") <= 1000,
            "{name}"
        );
    }
    assert!(
        number("PriorityLaneConcurrency", "Default") > number("BulkLaneConcurrency", "Default"),
        "links never wait behind a burst of results"
    );
}

/// `sam build` runs cargo-lambda in each function's `CodeUri`. From the workspace's root, cargo
/// resolved the features of every member (the tests' and tools') into each function: half a
/// megabyte and 5,700 relocations more per binary, paid at every cold start. So each function's
/// `CodeUri` is the crate that declares its binary.
#[test]
fn each_function_is_built_in_the_crate_that_declares_its_binary() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let template = template();
    for (id, function) in template["Resources"].as_hash().expect("Resources") {
        if text(&function["Type"]) != "AWS::Serverless::Function" {
            continue;
        }
        let id = text(id);
        let binary = text(&function["Metadata"]["BuildProperties"]["Binary"]);
        let code_uri = text(&function["Properties"]["CodeUri"]);
        let manifest = std::fs::read_to_string(format!("{root}/{code_uri}/Cargo.toml"))
            .unwrap_or_else(|e| panic!("{id}: CodeUri {code_uri} is not a crate: {e}"));
        assert!(
            !manifest.contains("[workspace]"),
            "{id}: CodeUri {code_uri} is the workspace's root, not the function's crate"
        );
        assert!(
            manifest.contains(&format!("[[bin]]\nname = \"{binary}\"")),
            "{id}: {code_uri}/Cargo.toml declares no binary {binary}"
        );
    }
}

/// `sam deploy --config-env prod --parameter-overrides …` replaces the `[prod]` section's
/// overrides instead of adding to them (SAM CLI, aws/aws-sam-cli#2380), and a real deploy must
/// pass some (the sender's address): a table protected only there would be created unprotected.
/// So the template protects the prod stage's table itself, whatever the other parameters say.
#[test]
fn the_prod_stages_table_is_protected_by_the_template_itself() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let source = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let lines: Vec<&str> = source.lines().map(str::trim).collect();
    assert!(
        lines.contains(
            &"ProtectTable: !Or [!Equals [!Ref Stage, prod], !Equals [!Ref TableDeletionProtection, \"true\"]]"
        ),
        "the condition ProtectTable holds for the prod stage, and wherever TableDeletionProtection=true"
    );
    let template = template();
    let table = resource(&template, TABLE.logical_id);
    let protection: Vec<String> = table["DeletionProtectionEnabled"]
        .as_vec()
        .expect("DeletionProtectionEnabled: !If [ProtectTable, true, false]")
        .iter()
        .map(|value| match value {
            Yaml::Boolean(b) => b.to_string(),
            other => text(other),
        })
        .collect();
    assert_eq!(protection, ["ProtectTable", "true", "false"]);
}

/// `RedisUrl` may carry the cache's password (`rediss://user:password@host`): CloudFormation
/// shows a parameter's value to anyone who may describe the stack, unless it is `NoEcho`.
#[test]
fn a_parameter_that_may_hold_a_password_is_not_echoed() {
    let template = template();
    assert_eq!(
        template["Parameters"]["RedisUrl"]["NoEcho"],
        Yaml::Boolean(true),
        "RedisUrl must be NoEcho"
    );
}

/// A prod deploy that leaves out `PublicAppUrl` or `SenderEmail` (a command line's
/// `--parameter-overrides` replaces samconfig's) would start cleanly and mail every verification
/// and reset link to `http://localhost:3000`, or fail every send: the template refuses the
/// defaults for the prod stage.
#[test]
fn the_prod_stage_refuses_the_local_defaults_for_links_and_the_sender() {
    let template = template();
    let rule = &template["Rules"]["ProdMailsFromAndToRealAddresses"];
    let condition: Vec<String> = rule["RuleCondition"]
        .as_vec()
        .expect("RuleCondition: !Equals [!Ref Stage, prod]")
        .iter()
        .map(text)
        .collect();
    assert_eq!(condition, ["Stage", "prod"]);
    let asserted: Vec<String> = rule["Assertions"]
        .as_vec()
        .expect("Assertions")
        .iter()
        .map(|assertion| format!("{:?}", assertion["Assert"]))
        .collect();
    for parameter in ["PublicAppUrl", "SenderEmail"] {
        let default = text(&template["Parameters"][parameter]["Default"]);
        assert!(
            asserted
                .iter()
                .any(|a| a.contains(parameter) && a.contains(&default)),
            "a prod assertion that {parameter} is not its default {default}: {asserted:?}"
        );
    }
}

/// `RedisUrl` (CacheMode existing): every URL the deploy takes, each function's cache connects
/// to at init, standalone or cluster. Before, any text passed, and one the redis crate refuses
/// (`cache.internal:6379`, the scheme forgotten) failed every cold start of every API function
/// after a deploy that succeeded.
#[tokio::test]
async fn the_cache_url_is_one_every_function_can_connect_to() {
    use oes_adapters::redis_cache::{RedisCache, RedisTopology};

    let template = template();
    let pattern = allowed_pattern(&template, "RedisUrl");
    let good = [
        "",
        "redis://cache.internal:6379",
        "rediss://oes-cache-abc123.serverless.use1.cache.amazonaws.com:6379",
        "rediss://default:p%40ss%2Fword@oes-cache.example.com:6379",
        "redis://10.0.3.7:6379/2",
        "redis://localhost",
    ];
    for url in good {
        assert!(pattern.is_match(url), "the pattern refuses {url:?}");
        if url.is_empty() {
            continue;
        }
        for topology in [RedisTopology::Standalone, RedisTopology::Cluster] {
            RedisCache::connect(url, topology, Duration::from_millis(200)).unwrap_or_else(|e| {
                panic!("the pattern takes {url}, a {topology:?} cache refuses it: {e}")
            });
        }
    }
    let bad = [
        "cache.internal:6379",
        "http://cache.internal:6379",
        "redis://",
        "redis://cache.internal:port",
        "rediss://cache internal:6379",
        "redis://user:p@ss@cache.internal:6379",
        "redis://cache.internal:6379/db",
        " redis://cache.internal:6379",
    ];
    for url in bad {
        assert!(!pattern.is_match(url), "the pattern takes {url:?}");
    }
}

/// `PublicAppUrl` is where every verification and reset link points, its token in the link: a
/// deploy refuses a plain-http base except on the developer's own machine (before, any
/// `http://` host passed), and every base it takes the worker takes at init (the worker refuses
/// a host `http::Uri` cannot parse, so a pattern that let one through made every cold start of
/// the worker fail).
#[test]
fn the_links_base_is_https_or_local_and_never_one_the_worker_refuses() {
    let template = template();
    let parameter = &template["Parameters"]["PublicAppUrl"];
    let pattern = allowed_pattern(&template, "PublicAppUrl");
    let taken = |value: &str| pattern.is_match(value);
    let path_characters = "ABCXYZabcxyz0189._~!$&'()*+,;=:@%/-";
    let mut good: Vec<String> = [
        "https://app.example.com",
        "https://app.example.com/",
        "https://exams.example.org:8443/app/",
        "http://localhost:3000",
        "http://127.0.0.1:8080/app",
        "http://localhost",
    ]
    .map(String::from)
    .to_vec();
    good.push(text(&parameter["Default"]));
    good.extend(
        path_characters
            .chars()
            .map(|c| format!("https://app.example.com/a{c}b")),
    );
    for value in &good {
        assert!(taken(value), "the pattern refuses {value}");
        oes_runtime::config::parse_public_base_url(value)
            .unwrap_or_else(|e| panic!("the pattern takes {value}, the worker refuses it: {e}"));
    }
    let bad = [
        "http://exams.example.org",
        "http://localhost.example.com",
        "http://127.0.0.1.example.com/",
        "https://",
        "https://app.example.com?next=1",
        "https://app.example.com/#/",
        "https://user:pass@app.example.com",
        "https://app.example.com/a b",
        "https://app.example.com/a\"b",
        "https://app.example.com/{id}",
        "https://[::1]/",
        "https://exams{1}.example.com",
        "https://a%zz.example.com",
        "ftp://app.example.com",
        "app.example.com",
    ];
    for value in bad {
        assert!(!taken(value), "the pattern takes {value}");
    }
}

/// The `AllowedPattern` of the template's parameter `name`.
fn allowed_pattern(template: &Yaml, name: &str) -> regex_lite::Regex {
    let pattern = text(&template["Parameters"][name]["AllowedPattern"]);
    regex_lite::Regex::new(&pattern).unwrap_or_else(|e| panic!("{name}'s pattern: {e}"))
}

/// The `parameter_overrides` of samconfig.toml's `[<env>.deploy.parameters]`, as name and value.
fn samconfig_overrides(env: &str) -> Vec<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../samconfig.toml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let section = format!("[{env}.deploy.parameters]");
    let line = text
        .split(&section)
        .nth(1)
        .and_then(|rest| rest.lines().find(|l| l.starts_with("parameter_overrides")))
        .unwrap_or_else(|| panic!("{section} has parameter_overrides"));
    let value = line
        .split_once('=')
        .map_or("", |(_, v)| v.trim().trim_matches('"'));
    value
        .split_whitespace()
        .filter_map(|pair| pair.split_once('='))
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect()
}

/// `sam deploy` with the default settings (samconfig.toml's `[default]`, the template's
/// defaults) passes the template's rules: a first deploy of a dev stack needs no VPC. Before, the
/// default `CacheMode=serverless` with no `VpcId` was refused by `ServerlessCacheNeedsAVpc`, so
/// `sam deploy` failed until the user chose a cache; the README's cheapest trial is now the
/// default for dev, and prod (or any stack given a VPC) creates the cache.
#[test]
fn a_default_deploy_passes_the_templates_rules() {
    let template = template();
    let overrides = samconfig_overrides("default");
    let effective = |name: &str| {
        overrides.iter().find(|(n, _)| n == name).map_or_else(
            || text(&template["Parameters"][name]["Default"]),
            |(_, v)| v.clone(),
        )
    };
    assert!(
        effective("CacheMode") != "serverless" || !effective("VpcId").is_empty(),
        "CacheMode {} with VpcId {:?}: refused by ServerlessCacheNeedsAVpc",
        effective("CacheMode"),
        effective("VpcId")
    );
    assert!(
        effective("CacheMode") != "existing" || !effective("RedisUrl").is_empty(),
        "CacheMode=existing needs RedisUrl"
    );
}

/// docs/OPERATIONS.md sends operators to Lambda's own report of an invocation to tell a timeout:
/// with the JSON log format that is a `platform.report` record (no plain-text `REPORT` line),
/// and Lambda writes it only at system log level INFO or DEBUG.
#[test]
fn the_lambda_records_operations_reads_are_the_ones_the_template_keeps() {
    let operations = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/OPERATIONS.md"),
    )
    .expect("docs/OPERATIONS.md");
    let template = template();
    let logging = &template["Globals"]["Function"]["LoggingConfig"];
    assert_eq!(text(&logging["LogFormat"]), "JSON");
    for plain_text in ["`REPORT`", "Status: timeout", "Task timed out"] {
        assert!(
            !operations.contains(plain_text),
            "OPERATIONS.md reads {plain_text}, which the JSON log format does not write"
        );
    }
    assert!(operations.contains("platform.report"));
    let level = text(&logging["SystemLogLevel"]);
    assert!(
        ["INFO", "DEBUG"].contains(&level.as_str()),
        "OPERATIONS.md reads platform.report records, which SystemLogLevel {level} drops"
    );
}

/// A web app served from another origin reads the API through CORS, and a browser hides every
/// answer header but a few basic ones unless the API exposes it: the headers the API documents
/// for its clients (`Retry-After` on a 429 or a `503 busy`, in docs/openapi.json; `x-cache`, in
/// the README) must be exposed, or the app cannot honour them.
#[test]
fn a_browser_app_on_another_origin_can_read_the_headers_the_api_documents() {
    let openapi: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json"),
        )
        .expect("docs/openapi.json"),
    )
    .expect("JSON");
    let mut documented = BTreeSet::from(["x-cache".to_owned()]);
    let operations = openapi["paths"]
        .as_object()
        .expect("paths")
        .values()
        .filter_map(serde_json::Value::as_object)
        .flat_map(|operations| operations.values());
    for operation in operations {
        let responses = operation["responses"].as_object().into_iter().flatten();
        for (_, response) in responses {
            if let Some(headers) = response["headers"].as_object() {
                documented.extend(headers.keys().map(|h| h.to_ascii_lowercase()));
            }
        }
    }
    assert!(documented.contains("retry-after"), "{documented:?}");

    let template = template();
    let cors = &template["Resources"]["HttpApi"]["Properties"]["CorsConfiguration"];
    let exposed: BTreeSet<String> = cors["ExposeHeaders"]
        .as_vec()
        .map(|headers| {
            headers
                .iter()
                .map(|h| text(h).to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    let hidden: Vec<&String> = documented.difference(&exposed).collect();
    assert!(
        hidden.is_empty(),
        "not exposed to a browser app: {hidden:?}"
    );
}

/// The README joins each route to the `ApiUrl` output (`"$API/auth/register"`): ending in a
/// slash, it made `https://…amazonaws.com//auth/register`, a path no route of the HTTP API names.
#[test]
fn the_api_url_output_takes_a_route_with_one_slash() {
    let template = template();
    let url = format!("{:?}", template["Outputs"]["ApiUrl"]["Value"]);
    assert!(url.contains("execute-api"), "{url}");
    assert!(!url.contains("}/\""), "ApiUrl ends with a slash: {url}");
}

/// `oes-local` answers CORS with the HTTP API's configuration (`oes_local::cors`), so a browser
/// app that works against it works against the stack.
#[test]
fn oes_local_answers_cors_as_the_http_api_is_configured() {
    use oes_local::cors::{
        ALLOW_HEADERS, ALLOW_METHODS, ANY_ORIGIN, EXPOSE_HEADERS, MAX_AGE_SECONDS,
    };
    let template = template();
    let cors = &resource(&template, "HttpApi")["CorsConfiguration"];
    let listed = |key: &str| -> Vec<String> {
        cors[key]
            .as_vec()
            .unwrap_or_else(|| panic!("CorsConfiguration.{key}"))
            .iter()
            .map(text)
            .collect()
    };
    assert_eq!(listed("AllowMethods"), ALLOW_METHODS);
    assert_eq!(listed("AllowHeaders"), ALLOW_HEADERS);
    assert_eq!(listed("ExposeHeaders"), EXPOSE_HEADERS);
    assert_eq!(text(&cors["MaxAge"]), MAX_AGE_SECONDS.to_string());
    assert_eq!(
        text(&cors["AllowOrigins"]),
        "CorsAllowOrigins",
        "a !Ref of the parameter"
    );
    assert_eq!(
        text(&template["Parameters"]["CorsAllowOrigins"]["Default"]),
        ANY_ORIGIN,
        "oes-local's default is the template's"
    );
}

/// The guard the tests' functions run behind (`oes_tests::iam::RoleGuard`) refuses what a role
/// does not grant, item by item in a transaction, by partition and by index, and lets through
/// what it does: without this, a guard that allowed everything would pass every test.
#[test]
fn the_role_guard_refuses_what_the_template_does_not_grant() {
    use oes_tests::iam::{Role, TablePolicy};
    use serde_json::json;
    let item = |pk: &str| json!({"pk": {"S": pk}, "sk": {"S": "X"}});
    let query = |index: Option<&str>, key: &str| {
        let attr = index.map_or("pk".to_owned(), |i| format!("{i}pk"));
        let mut body = json!({
            "KeyConditionExpression": "#p = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeNames": {"#p": attr},
            "ExpressionAttributeValues": {":pk": {"S": key}, ":prefix": {"S": "A"}},
        });
        if let Some(index) = index {
            body["IndexName"] = json!(index);
        }
        body
    };
    let transaction = |parts: &[(&str, &str)]| {
        let items: Vec<_> = parts
            .iter()
            .map(|(kind, pk)| json!({ *kind: {"Key": item(pk), "Item": item(pk)} }))
            .collect();
        json!({ "TransactItems": items })
    };
    let batch = |pks: &[&str]| {
        let writes: Vec<_> = pks
            .iter()
            .map(|pk| json!({"DeleteRequest": {"Key": item(pk)}}))
            .collect();
        json!({"RequestItems": {"t": writes}})
    };
    let cases = [
        (
            Role::ExamApi,
            "TransactWriteItems",
            transaction(&[("Update", "EXAM#e"), ("ConditionCheck", "EXAM#e")]),
            true,
        ),
        (
            Role::ExamApi,
            "TransactWriteItems",
            transaction(&[("Update", "EXAM#e"), ("ConditionCheck", "TOKEN#t")]),
            false,
        ),
        (
            Role::ExamApi,
            "PutItem",
            json!({"Item": item("TOKEN#t")}),
            false,
        ),
        (
            Role::ExamApi,
            "BatchWriteItem",
            batch(&["EXAM#e", "EXAM#e"]),
            true,
        ),
        (
            Role::ExamApi,
            "BatchWriteItem",
            batch(&["EXAM#e", "EMAIL#a"]),
            false,
        ),
        (Role::AuthApi, "Query", query(None, "USER#u"), false),
        (
            Role::AuthApi,
            "TransactWriteItems",
            transaction(&[("Put", "TOKEN#t"), ("ConditionCheck", "USER#u")]),
            true,
        ),
        (
            Role::AdminApi,
            "Query",
            query(Some("gsi1"), "JOBS#sent"),
            true,
        ),
        (Role::AdminApi, "Query", query(None, "JOBS#sent"), false),
        (
            Role::AdminApi,
            "Query",
            query(Some("gsi1"), "USER#u"),
            false,
        ),
        (Role::AttemptSweeper, "Query", query(None, "DUE#3"), true),
        (
            Role::AttemptSweeper,
            "BatchWriteItem",
            batch(&["DUE#3"]),
            false,
        ),
        (
            Role::EmailWorker,
            "UpdateItem",
            json!({"Key": item("JOB#j")}),
            true,
        ),
        (
            Role::EmailWorker,
            "PutItem",
            json!({"Item": item("JOB#j")}),
            false,
        ),
        (
            Role::EmailWorker,
            "GetItem",
            json!({"Key": item("USER#u")}),
            false,
        ),
    ];
    for (role, operation, body, allowed) in cases {
        let refusals = TablePolicy::of(role).refusals(operation, &body);
        assert_eq!(
            refusals.is_empty(),
            allowed,
            "{role:?} {operation} {body}: {refusals:?}"
        );
    }
}

/// The `Rules` section uses only what CloudFormation evaluates there: its rule functions
/// (`Fn::And`, `Fn::Contains`, `Fn::EachMemberEquals`, `Fn::EachMemberIn`, `Fn::Equals`,
/// `Fn::If`, `Fn::Not`, `Fn::Or`, `Fn::RefAll`, `Fn::ValueOf`, `Fn::ValueOfAll`) and `Ref`.
/// cfn-lint looks only at an assertion's outermost function, so a `!Join` inside one passed it
/// and `sam validate`, to be refused by CloudFormation itself.
#[test]
fn the_rules_use_only_rule_functions() {
    const RULE_FUNCTIONS: [&str; 12] = [
        "And",
        "Contains",
        "EachMemberEquals",
        "EachMemberIn",
        "Equals",
        "If",
        "Not",
        "Or",
        "RefAll",
        "ValueOf",
        "ValueOfAll",
        "Ref",
    ];
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let text = std::fs::read_to_string(path).expect("template.yaml");
    let rules: String = text
        .lines()
        .skip_while(|line| *line != "Rules:")
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with(' ') || line.starts_with('#'))
        .filter(|line| !line.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(rules.contains("Assert"), "a Rules section");
    let used: BTreeSet<&str> = rules
        .split(|c: char| c.is_whitespace() || "[],{}\"".contains(c))
        .filter_map(|word| {
            word.strip_prefix('!')
                .or_else(|| word.strip_prefix("Fn::"))
                .map(|name| name.trim_end_matches(':'))
        })
        .collect();
    let others: Vec<&str> = used
        .iter()
        .copied()
        .filter(|name| !RULE_FUNCTIONS.contains(name))
        .collect();
    assert!(others.is_empty(), "not rule functions: {others:?}");
}

/// `sam deploy --guided` asks for a `NoEcho` parameter with no default and asks again while the
/// answer is empty, so `RedisUrl` (hidden: it may carry the cache's password) could not be left
/// empty, and a `CacheMode=none` or `serverless` deploy could not be finished as the README
/// says. It takes `none`, which nothing reads as a URL: the functions get `RedisUrl` only with
/// `CacheMode=existing`, whose rule refuses `none` as it refuses empty.
#[test]
fn a_guided_deploy_can_answer_none_for_the_hidden_cache_url() {
    let template = template();
    let pattern = allowed_pattern(&template, "RedisUrl");
    assert!(pattern.is_match("none"), "the pattern refuses none");
    let existing = &template["Rules"]["ExistingCacheNeedsAUrl"]["Assertions"];
    let refused: Vec<String> = existing
        .as_vec()
        .expect("assertions")
        .iter()
        .map(|assertion| format!("{:?}", assertion["Assert"]))
        .collect();
    for value in ["\"\"", "none"] {
        let value = value.trim_matches('"');
        assert!(
            refused
                .iter()
                .any(|a| a.contains("RedisUrl") && a.contains(&format!("String(\"{value}\")"))),
            "CacheMode=existing takes RedisUrl={value:?}: {refused:?}"
        );
    }
}

/// In the SES sandbox SES authorises a send against each recipient's identity as well as the
/// sender's, so a worker allowed only the sender's identity was refused (AccessDenied) every
/// send to the verified address the README's trial signs up with. `SesSandbox=true` — the dev
/// stage's setting — adds this account's identities; otherwise the worker keeps to the sender's.
#[test]
fn in_the_ses_sandbox_the_worker_may_send_to_the_accounts_identities() {
    let template = template();
    let statements = role_statements(resource(&template, "EmailWorkerRole"));
    let send = statements
        .iter()
        .find(|s| text(&s["Sid"]) == "SendFromSenderIdentity")
        .expect("the worker's SendEmail statement");
    assert!(
        !format!("{:?}", send["Resource"]).contains("identity/*"),
        "outside the sandbox, only the sender's identity: {:?}",
        send["Resource"]
    );
    let policies = &resource(&template, "EmailWorkerRole")["Policies"];
    let sandboxed = policies
        .as_vec()
        .into_iter()
        .flatten()
        .flat_map(|p| {
            p["PolicyDocument"]["Statement"]
                .as_vec()
                .into_iter()
                .flatten()
        })
        .filter_map(|entry| entry.as_vec())
        .find(|branches| branches.first().map(text).as_deref() == Some("InSesSandbox"))
        .expect("a statement under InSesSandbox");
    let recipients = &sandboxed[1];
    assert_eq!(text(&recipients["Action"]), "ses:SendEmail");
    assert!(text(&recipients["Resource"]).ends_with(":identity/*"));
    assert_eq!(
        text(&recipients["Condition"]["StringEquals"]["ses:FromAddress"]),
        "SenderEmail",
        "from the sender's address only"
    );
    assert_eq!(
        text(&template["Parameters"]["SesSandbox"]["Default"]),
        "false"
    );
    assert!(
        samconfig_overrides("default").contains(&("SesSandbox".to_owned(), "true".to_owned())),
        "a first dev deploy is in the sandbox"
    );
}

/// A VPC that has its own endpoints already — another oes stack's, or the organisation's —
/// refuses a second DynamoDB gateway endpoint on the same route tables and a second interface
/// endpoint with private DNS for the same service, so the stack could not be deployed there.
/// `CreateVpcEndpoints=false` uses the ones the VPC has; every endpoint (and its security
/// group) is made only when it is `true`.
#[test]
fn a_stack_can_use_the_vpc_endpoints_its_vpc_has() {
    let template = template();
    assert_eq!(
        text(&template["Parameters"]["CreateVpcEndpoints"]["Default"]),
        "true"
    );
    let condition = &template["Conditions"]["CreateEndpoints"];
    assert!(
        format!("{condition:?}").contains("CreateVpcEndpoints"),
        "{condition:?}"
    );
    let resources = template["Resources"].as_hash().expect("resources");
    let endpoints: Vec<_> = resources
        .iter()
        .filter(|(_, r)| {
            text(&r["Type"]) == "AWS::EC2::VPCEndpoint" || {
                let group = text(&r["Type"]) == "AWS::EC2::SecurityGroup";
                group && text(&r["Properties"]["GroupDescription"]).contains("endpoints")
            }
        })
        .collect();
    assert!(
        endpoints.len() >= 5,
        "the endpoints and their group: {endpoints:?}"
    );
    for (name, endpoint) in endpoints {
        assert_eq!(text(&endpoint["Condition"]), "CreateEndpoints", "{name:?}");
    }
}

/// An alarm's numeric property (`0` when absent).
fn alarm_number(alarm: &str, properties: &Yaml, key: &str) -> u64 {
    if properties[key].is_badvalue() {
        return 0;
    }
    text(&properties[key])
        .parse()
        .unwrap_or_else(|e| panic!("{alarm}.{key}: {e}"))
}

/// The alarm on `metric` of the attempt sweeper (namespace `AWS/Lambda`).
fn sweeper_alarm<'a>(template: &'a Yaml, metric: &str) -> Option<(String, &'a Yaml)> {
    alarms(template).into_iter().find(|(_, p)| {
        !p["MetricName"].is_badvalue()
            && text(&p["Namespace"]) == "AWS/Lambda"
            && text(&p["MetricName"]) == metric
            && p["Dimensions"].as_vec().is_some_and(|d| {
                d.iter()
                    .any(|d| text(&d["Value"]) == "AttemptSweeperFunction")
            })
    })
}

/// The attempt sweeper runs every minute. A run that never happens — its schedule disabled, an
/// invocation throttled and dropped (no retries, a minute's age) — counts no `Errors`, so an
/// alarm on errors alone never sees the sweeps stop: attempts past their deadline stay open and
/// their result emails unsent, unseen. And failures are counted minute by minute, "5 of any 15
/// minutes": in fixed 15-minute blocks 4 + 4 failures across a boundary never reached 5.
#[test]
fn the_sweepers_missing_and_failing_runs_raise_alarms() {
    let template = template();
    let (id, errors) =
        sweeper_alarm(&template, "Errors").expect("an alarm on the sweeper's errors");
    let number = |key| alarm_number(&id, errors, key);
    assert_eq!(
        (
            number("Period"),
            number("EvaluationPeriods"),
            number("DatapointsToAlarm")
        ),
        (60, 15, 5),
        "{id}: 5 failed minutes in any 15"
    );
    assert_eq!(number("Threshold"), 1, "{id}");
    let (id, runs) =
        sweeper_alarm(&template, "Invocations").expect("an alarm on the sweeper's runs");
    assert_eq!(
        text(&runs["ComparisonOperator"]),
        "LessThanThreshold",
        "{id}"
    );
    assert_eq!(alarm_number(&id, runs, "Threshold"), 1, "{id}");
    assert_eq!(
        text(&runs["TreatMissingData"]),
        "breaching",
        "{id}: no runs at all is no datapoint"
    );
    let window = alarm_number(&id, runs, "Period") * alarm_number(&id, runs, "EvaluationPeriods");
    assert!((300..=900).contains(&window), "{id} looks back {window} s");
}

/// One 5xx on a quiet night is more than 1 % of its few requests: the rate alarm waits for a
/// few errors in the period before it reads the rate, or it pages on every single failure.
#[test]
fn the_server_error_rate_alarm_needs_a_few_errors_not_one() {
    let template = template();
    let (id, alarm) = alarms(&template)
        .into_iter()
        .find(|(id, _)| id == "ApiServerErrorRateAlarm")
        .expect("the 5xx rate alarm");
    let rate = alarm["Metrics"]
        .as_vec()
        .expect("a metric-math alarm")
        .iter()
        .find(|m| !m["Expression"].is_badvalue())
        .map(|m| text(&m["Expression"]))
        .expect("an expression");
    let least: u64 = rate
        .strip_prefix("IF(errors >= ")
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{id} reads the rate whatever the errors: {rate}"));
    assert!(least >= 3, "{id}: {rate}");
}

/// EMF metrics reach CloudWatch when Lambda flushes the function's logs, which can put a
/// datapoint in the period after the one it belongs to; AWS's advice for alarms on them is "M
/// out of N". The enqueue-failures alarm looks at two periods and needs one, so one failure is
/// neither missed at a boundary nor an ALARM followed by an OK within five minutes.
#[test]
fn the_enqueue_failures_alarm_looks_at_two_periods() {
    let template = template();
    let (id, alarm) = alarms(&template)
        .into_iter()
        .find(|(id, _)| id == "EmailEnqueueFailuresAlarm")
        .expect("the enqueue-failures alarm");
    assert_eq!(
        (
            alarm_number(&id, alarm, "EvaluationPeriods"),
            alarm_number(&id, alarm, "DatapointsToAlarm")
        ),
        (2, 1),
        "{id}"
    );
}
