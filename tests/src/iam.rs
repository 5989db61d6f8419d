//! The template's IAM roles, read from `template.yaml`, and [`RoleGuard`]: a DynamoDB client
//! interceptor that refuses, as IAM would in AWS, every call the named role's statements do not
//! allow. moto enforces no policy, so without it a call the code makes but the role forbids
//! passes every test here and fails only once deployed (an exam-api question edit sent a
//! `ConditionCheck` its role could not make: every such edit answered 503 in AWS).
//!
//! What it evaluates is what IAM does for this template's statements: `Allow` statements only,
//! an action per item of a transaction (`Put` → `dynamodb:PutItem`, `ConditionCheck` →
//! `dynamodb:ConditionCheckItem`, …), the resource (the table, or `<table>/index/<name>` for a
//! query of an index), and `ForAllValues:StringLike` on `dynamodb:LeadingKeys` — every partition
//! key the call names must match a pattern (a call naming none, such as a scan, passes it).

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

/// `template.yaml`, parsed (CloudFormation's tags dropped: `!GetAtt X.Arn` reads `X.Arn`).
pub fn template() -> Yaml {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    YamlLoader::load_from_str(&text)
        .unwrap_or_else(|e| panic!("template.yaml is not YAML: {e}"))
        .remove(0)
}

/// A scalar as text.
pub fn text(value: &Yaml) -> String {
    match value {
        Yaml::String(s) | Yaml::Real(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        other => panic!("expected a scalar, found {other:?}"),
    }
}

/// A statement's `Action` or `Resource`, as texts (one or a list; `!GetAtt X.Arn` reads `X.Arn`,
/// a `!Sub [pattern, variables]` its pattern).
pub fn texts(value: &Yaml) -> Vec<String> {
    let one = |item: &Yaml| match item {
        Yaml::Array(sub) => text(&sub[0]),
        scalar => text(scalar),
    };
    match value {
        Yaml::Array(items) => items.iter().map(one).collect(),
        Yaml::BadValue => Vec::new(),
        scalar => vec![one(scalar)],
    }
}

/// The statements of a role's inline policies; an `!If [cond, statement, !Ref AWS::NoValue]`
/// counts as its statement.
pub fn role_statements(role: &Yaml) -> Vec<&Yaml> {
    let mut statements = Vec::new();
    for policy in role["Policies"].as_vec().into_iter().flatten() {
        for entry in policy["PolicyDocument"]["Statement"]
            .as_vec()
            .into_iter()
            .flatten()
        {
            match entry {
                Yaml::Array(branches) => statements.extend(branches.iter().filter(|b| b.is_hash())),
                statement => statements.push(statement),
            }
        }
    }
    statements
}

/// IAM's `StringLike` for the patterns this template writes: a trailing `*`, or the whole text.
pub fn like(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => value == pattern,
    }
}

/// The template's roles a function runs as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `AuthApiRole`.
    AuthApi,
    /// `ExamApiRole`.
    ExamApi,
    /// `AdminApiRole`.
    AdminApi,
    /// `AttemptSweeperRole`.
    AttemptSweeper,
    /// `EmailWorkerRole`.
    EmailWorker,
}

impl Role {
    /// The role's logical id in the template.
    pub fn logical_id(self) -> &'static str {
        match self {
            Self::AuthApi => "AuthApiRole",
            Self::ExamApi => "ExamApiRole",
            Self::AdminApi => "AdminApiRole",
            Self::AttemptSweeper => "AttemptSweeperRole",
            Self::EmailWorker => "EmailWorkerRole",
        }
    }
}

/// One `Allow` statement about the table.
#[derive(Debug, Clone)]
struct TableStatement {
    actions: Vec<String>,
    /// `DataTable.Arn`, `${DataTable.Arn}/index/gsi1`…
    resources: Vec<String>,
    /// `dynamodb:LeadingKeys` patterns, when the statement has the condition.
    leading_keys: Option<Vec<String>>,
}

/// What one DynamoDB call asks IAM for: an action on a resource, for these partition keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `dynamodb:PutItem`…
    pub action: String,
    /// `DataTable.Arn`, or `${DataTable.Arn}/index/<name>`.
    pub resource: String,
    /// The partition keys named (for a query, the one its key condition names).
    pub leading_keys: Vec<String>,
}

/// A role's rights to the table, as the template grants them.
#[derive(Debug, Clone)]
pub struct TablePolicy {
    role: Role,
    statements: Vec<TableStatement>,
}

impl TablePolicy {
    /// `role`'s statements about the table, from `template.yaml`.
    pub fn of(role: Role) -> Self {
        let template = template();
        let role_yaml = &template["Resources"][role.logical_id()]["Properties"];
        assert!(
            !role_yaml.is_badvalue(),
            "{} is not in the template",
            role.logical_id()
        );
        let statements = role_statements(role_yaml)
            .into_iter()
            .filter(|s| {
                texts(&s["Resource"])
                    .iter()
                    .any(|r| r.contains("DataTable"))
            })
            .map(|s| {
                assert_eq!(
                    text(&s["Effect"]),
                    "Allow",
                    "only Allow statements are evaluated"
                );
                let condition = &s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"];
                TableStatement {
                    actions: texts(&s["Action"]),
                    resources: texts(&s["Resource"]),
                    leading_keys: (!condition.is_badvalue()).then(|| texts(condition)),
                }
            })
            .collect();
        Self { role, statements }
    }

    /// Whether some statement allows `request`.
    pub fn allows(&self, request: &Request) -> bool {
        self.statements.iter().any(|s| {
            s.actions.iter().any(|a| a == &request.action)
                && s.resources.iter().any(|r| r == &request.resource)
                && s.leading_keys.as_ref().is_none_or(|patterns| {
                    request
                        .leading_keys
                        .iter()
                        .all(|key| patterns.iter().any(|p| like(p, key)))
                })
        })
    }

    /// The calls of the DynamoDB request `operation` (the `X-Amz-Target`'s name) with `body`
    /// that the role may not make, each said in a line.
    pub fn refusals(&self, operation: &str, body: &Value) -> Vec<String> {
        match requests(operation, body) {
            Ok(requests) => requests
                .iter()
                .filter(|request| !self.allows(request))
                .map(|request| {
                    format!(
                        "{} may not {} on {} for {:?} ({operation})",
                        self.role.logical_id(),
                        request.action,
                        request.resource,
                        request.leading_keys
                    )
                })
                .collect(),
            Err(why) => vec![format!(
                "{}: cannot tell what {operation} asks of IAM: {why}",
                self.role.logical_id()
            )],
        }
    }
}

const TABLE: &str = "DataTable.Arn";

/// What a DynamoDB call asks IAM for, item by item for a transaction.
pub fn requests(operation: &str, body: &Value) -> Result<Vec<Request>, String> {
    let one = |action: &str, keys: Vec<String>| Request {
        action: format!("dynamodb:{action}"),
        resource: TABLE.to_owned(),
        leading_keys: keys,
    };
    let pk = |item: &Value| -> Result<String, String> {
        item["pk"]["S"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no string pk in {item}"))
    };
    Ok(match operation {
        "GetItem" | "UpdateItem" | "DeleteItem" => vec![one(operation, vec![pk(&body["Key"])?])],
        "PutItem" => vec![one(operation, vec![pk(&body["Item"])?])],
        "Query" => vec![query(body)?],
        "BatchWriteItem" | "BatchGetItem" => {
            let mut keys = Vec::new();
            for items in body["RequestItems"]
                .as_object()
                .into_iter()
                .flat_map(|t| t.values())
            {
                if operation == "BatchGetItem" {
                    for key in items["Keys"].as_array().into_iter().flatten() {
                        keys.push(pk(key)?);
                    }
                    continue;
                }
                for write in items.as_array().into_iter().flatten() {
                    keys.push(match (&write["PutRequest"], &write["DeleteRequest"]) {
                        (put, _) if put.is_object() => pk(&put["Item"])?,
                        (_, delete) => pk(&delete["Key"])?,
                    });
                }
            }
            vec![one(operation, keys)]
        }
        "TransactWriteItems" | "TransactGetItems" => {
            let mut each = Vec::new();
            for item in body["TransactItems"].as_array().into_iter().flatten() {
                let (kind, part) = item
                    .as_object()
                    .and_then(|o| o.iter().next())
                    .ok_or_else(|| format!("an empty transaction item: {item}"))?;
                let (action, key) = match kind.as_str() {
                    "Put" => ("PutItem", &part["Item"]),
                    "Update" => ("UpdateItem", &part["Key"]),
                    "Delete" => ("DeleteItem", &part["Key"]),
                    "ConditionCheck" => ("ConditionCheckItem", &part["Key"]),
                    "Get" => ("GetItem", &part["Key"]),
                    other => return Err(format!("a transaction item {other}")),
                };
                each.push(one(action, vec![pk(key)?]));
            }
            each
        }
        // A call that names no item (a scan, DescribeTable): IAM's ForAllValues holds for it.
        other => vec![one(other, Vec::new())],
    })
}

/// A query asks for `dynamodb:Query` on the table or the index it names, for the partition its
/// key condition's `<partition key> = :value` names.
fn query(body: &Value) -> Result<Request, String> {
    let (resource, partition_key) = match body["IndexName"].as_str() {
        None => (TABLE.to_owned(), "pk".to_owned()),
        Some(index) => (format!("${{{TABLE}}}/index/{index}"), format!("{index}pk")),
    };
    let condition = body["KeyConditionExpression"]
        .as_str()
        .ok_or("no KeyConditionExpression")?;
    let name_of = |token: &str| -> String {
        if token.starts_with('#') {
            body["ExpressionAttributeNames"][token]
                .as_str()
                .unwrap_or(token)
                .to_owned()
        } else {
            token.to_owned()
        }
    };
    let key = condition
        .split(" AND ")
        .filter_map(|clause| {
            let (left, right) = clause.split_once('=')?;
            (name_of(left.trim()) == partition_key).then(|| right.trim().to_owned())
        })
        .next()
        .ok_or_else(|| format!("no `{partition_key} = :value` in {condition}"))?;
    let value = body["ExpressionAttributeValues"][&key]["S"]
        .as_str()
        .ok_or_else(|| format!("{key} is not a string value"))?;
    Ok(Request {
        action: "dynamodb:Query".into(),
        resource,
        leading_keys: vec![value.to_owned()],
    })
}

/// A DynamoDB client interceptor that refuses, before it is sent, every call its role may not
/// make, and remembers each refusal. The adapter sees the refusal as AWS's `AccessDenied`
/// (an error it cannot retry), so a test meets what a deployed function would.
#[derive(Debug, Clone)]
pub struct RoleGuard {
    policy: Arc<TablePolicy>,
    refused: Arc<Mutex<Vec<String>>>,
}

impl RoleGuard {
    /// A guard for `role`.
    pub fn new(role: Role) -> Self {
        Self {
            policy: Arc::new(TablePolicy::of(role)),
            refused: Arc::default(),
        }
    }

    /// Every call refused so far.
    pub fn refused(&self) -> Vec<String> {
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Intercept for RoleGuard {
    fn name(&self) -> &'static str {
        "RoleGuard"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let request = context.request();
        let operation = request
            .headers()
            .get("x-amz-target")
            .and_then(|target| target.rsplit_once('.'))
            .map(|(_, operation)| operation.to_owned())
            .unwrap_or_default();
        let body: Value = request
            .body()
            .bytes()
            .and_then(|bytes| serde_json::from_slice(bytes).ok())
            .unwrap_or(Value::Null);
        let refusals = self.policy.refusals(&operation, &body);
        if refusals.is_empty() {
            return Ok(());
        }
        for refusal in &refusals {
            eprintln!("IAM (template.yaml) refuses: {refusal}");
        }
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(refusals.iter().cloned());
        Err(format!("AccessDenied: {}", refusals.join("; ")).into())
    }
}

/// A DynamoDB client like `client` whose calls `role`'s statements must allow.
pub fn dynamodb_as(client: &aws_sdk_dynamodb::Client, role: Role) -> aws_sdk_dynamodb::Client {
    crate::dynamodb_with(client, RoleGuard::new(role))
}
