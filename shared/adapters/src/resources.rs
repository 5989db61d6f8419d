//! The table and queue definitions, shared by local provisioning (`oesctl provision`) and checked
//! against `template.yaml` by a test, so the two cannot drift; and the JWT key's secret in the
//! emulator.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::aws::AwsClients;
use oes_domain::ports::BoxError;
use oes_domain::security::OneTimeToken;

/// The DynamoDB table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableDef {
    /// Logical id in `template.yaml`.
    pub logical_id: &'static str,
    /// Name suffix: the table is `<prefix>-<suffix>` (`${AWS::StackName}-<suffix>` in AWS).
    pub suffix: &'static str,
    /// Partition key (string).
    pub hash_key: &'static str,
    /// Sort key (string).
    pub range_key: &'static str,
    /// Epoch-seconds attribute DynamoDB's TTL deletes expired items by.
    pub ttl_attribute: &'static str,
    /// Its global secondary indexes.
    pub indexes: &'static [IndexDef],
}

/// A global secondary index (string keys, the listed attributes projected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexDef {
    /// Index name.
    pub name: &'static str,
    /// Partition key (string).
    pub hash_key: &'static str,
    /// Sort key (string).
    pub range_key: &'static str,
    /// The non-key attributes it projects (`INCLUDE`).
    pub projected: &'static [&'static str],
}

/// The job records by status (sparse: only job records carry its keys): `gsi1pk` =
/// `JOBS#<status>`, `gsi1sk` = `<updated_at>#<job id>`; the record without its history.
pub const JOB_INDEX: IndexDef = IndexDef {
    name: "gsi1",
    hash_key: "gsi1pk",
    range_key: "gsi1sk",
    projected: &[
        "job_id",
        "kind",
        "recipient",
        "status",
        "attempts",
        "max_attempts",
        "last_error",
        "ses_message_id",
        "lease_until",
        "created_at",
        "updated_at",
    ],
};

/// The one table: accounts, email claims, one-time tokens, exams, questions, attempts and email
/// job records (single-table design; the key schema is `crate::dynamo::schema`).
pub const TABLE: TableDef = TableDef {
    logical_id: "DataTable",
    suffix: "data",
    hash_key: "pk",
    range_key: "sk",
    ttl_attribute: "expires_at",
    indexes: &[JOB_INDEX],
};

/// An SQS queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueDef {
    /// Logical id in `template.yaml`.
    pub logical_id: &'static str,
    /// Name suffix: the queue is `<prefix>-<suffix>`.
    pub suffix: &'static str,
    /// Seconds a received message stays invisible (≥ 6 × the worker's timeout).
    pub visibility_timeout: u32,
    /// Seconds a message is kept.
    pub retention: u32,
    /// Receives before the message moves to the dead-letter queue (`None` for the DLQ itself).
    pub max_receive_count: Option<u32>,
}

/// The email worker's Lambda timeout in seconds (`template.yaml`): longer than a batch at its
/// worst, every AWS call at its [`AwsTimeouts`](crate::aws::AwsTimeouts) bound (checked by
/// `tests/tests/integration/timeout_chain.rs`); the lanes' visibility timeout is 6 × this.
pub const WORKER_TIMEOUT_SECONDS: u32 = 130;

/// A lane: redriven to the DLQ after 5 receives, messages kept 4 days.
const fn lane(logical_id: &'static str, suffix: &'static str) -> QueueDef {
    QueueDef {
        logical_id,
        suffix,
        visibility_timeout: 6 * WORKER_TIMEOUT_SECONDS,
        retention: 4 * 24 * 3600,
        max_receive_count: Some(5),
    }
}

/// Account emails a user waits for.
pub const PRIORITY_QUEUE: QueueDef = lane("EmailPriorityQueue", "email-priority");

/// Notifications.
pub const BULK_QUEUE: QueueDef = lane("EmailBulkQueue", "email-bulk");

/// Where messages go after `max_receive_count` receives; kept 14 days. Its letters are read by
/// operators' walks, each receive with its own visibility (`pipeline::IN_HAND_SECONDS`), and by
/// the SQS console's poll, which hides them for the queue's: SQS's default, 30 s.
pub const DEAD_LETTER_QUEUE: QueueDef = QueueDef {
    logical_id: "EmailDeadLetterQueue",
    suffix: "email-dlq",
    visibility_timeout: 30,
    retention: 14 * 24 * 3600,
    max_receive_count: None,
};

/// Every queue, the DLQ first (the others point at it).
pub const QUEUES: [QueueDef; 3] = [DEAD_LETTER_QUEUE, PRIORITY_QUEUE, BULK_QUEUE];

/// What provisioning created (or found).
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// Table name.
    pub table: String,
    /// Priority lane URL.
    pub priority_queue_url: String,
    /// Bulk lane URL.
    pub bulk_queue_url: String,
    /// Dead-letter queue URL.
    pub dead_letter_queue_url: String,
    /// The SES identity mail is sent from.
    pub sender_email: String,
}

impl Provisioned {
    /// The environment variables the functions read, as `(name, value)` pairs.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OES_TABLE", self.table.clone()),
            ("OES_PRIORITY_QUEUE_URL", self.priority_queue_url.clone()),
            ("OES_BULK_QUEUE_URL", self.bulk_queue_url.clone()),
            ("OES_DLQ_URL", self.dead_letter_queue_url.clone()),
            ("OES_SENDER_EMAIL", self.sender_email.clone()),
        ]
    }
}

/// Creates the table (with TTL), the queues (with redrive policy) and the SES sender identity
/// named after `prefix`. Idempotent: existing resources are reused.
pub async fn provision(
    clients: &AwsClients,
    prefix: &str,
    sender_email: &str,
) -> Result<Provisioned, BoxError> {
    let table = create_table(clients, prefix).await?;
    let mut urls = HashMap::new();
    let mut dlq_arn = None;
    for def in QUEUES {
        let name = format!("{prefix}-{}", def.suffix);
        let mut request = clients
            .sqs()
            .create_queue()
            .queue_name(&name)
            .attributes(
                QueueAttributeName::VisibilityTimeout,
                def.visibility_timeout.to_string(),
            )
            .attributes(
                QueueAttributeName::MessageRetentionPeriod,
                def.retention.to_string(),
            )
            .attributes(QueueAttributeName::SqsManagedSseEnabled, "true");
        if let (Some(max), Some(arn)) = (def.max_receive_count, &dlq_arn) {
            let policy = serde_json::json!({ "deadLetterTargetArn": arn, "maxReceiveCount": max });
            request = request.attributes(QueueAttributeName::RedrivePolicy, policy.to_string());
        }
        let url = request.send().await?.queue_url.unwrap_or_default();
        if def.max_receive_count.is_none() {
            let attributes = clients
                .sqs()
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::QueueArn)
                .send()
                .await?;
            dlq_arn = attributes
                .attributes()
                .and_then(|a| a.get(&QueueAttributeName::QueueArn))
                .cloned();
        }
        urls.insert(def.suffix, url);
    }
    match clients
        .ses()
        .create_email_identity()
        .email_identity(sender_email)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_already_exists_exception()) => {}
        Err(e) => return Err(e.into()),
    }
    let mut url = |suffix: &str| urls.remove(suffix).unwrap_or_default();
    Ok(Provisioned {
        table,
        priority_queue_url: url(PRIORITY_QUEUE.suffix),
        bulk_queue_url: url(BULK_QUEUE.suffix),
        dead_letter_queue_url: url(DEAD_LETTER_QUEUE.suffix),
        sender_email: sender_email.to_owned(),
    })
}

/// The name of the emulator's JWT key secret for `prefix`: `<prefix>-jwt`.
pub fn jwt_secret_name(prefix: &str) -> String {
    format!("{prefix}-jwt")
}

/// Creates the JWT signing key's secret, [`jwt_secret_name`], holding a random key as the
/// stack's `JwtSecret` does (`{"secret": "…"}`), unless it exists; returns its name, which
/// Secrets Manager takes wherever it takes the ARN. An existing secret is kept with its key: the
/// tokens `oes-local` issues (it reads the key from here) outlive its restarts, and the
/// functions `sam local invoke` runs read the same key (`env.json` names the secret in
/// `OES_JWT_SECRET_ARN`).
pub async fn provision_jwt_secret(clients: &AwsClients, prefix: &str) -> Result<String, BoxError> {
    let name = jwt_secret_name(prefix);
    let key = OneTimeToken::generate();
    let created = clients
        .secrets()
        .create_secret()
        .name(&name)
        .description(format!("oes {prefix} JWT signing key (local)"))
        .secret_string(serde_json::json!({ "secret": key.expose() }).to_string())
        .send()
        .await;
    match created {
        Ok(_) => Ok(name),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_exists_exception()) =>
        {
            Ok(name)
        }
        Err(e) => Err(e.into()),
    }
}

async fn create_table(clients: &AwsClients, prefix: &str) -> Result<String, BoxError> {
    let name = format!("{prefix}-{}", TABLE.suffix);
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    let key = |name: &str, key_type| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(key_type)
            .build()
    };
    let mut request = clients
        .dynamodb()
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(TABLE.hash_key)?)
        .attribute_definitions(attribute(TABLE.range_key)?)
        .key_schema(key(TABLE.hash_key, KeyType::Hash)?)
        .key_schema(key(TABLE.range_key, KeyType::Range)?);
    for index in TABLE.indexes {
        let projection = Projection::builder()
            .projection_type(ProjectionType::Include)
            .set_non_key_attributes(Some(
                index.projected.iter().map(|a| (*a).to_owned()).collect(),
            ))
            .build();
        request = request
            .attribute_definitions(attribute(index.hash_key)?)
            .attribute_definitions(attribute(index.range_key)?)
            .global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index.name)
                    .key_schema(key(index.hash_key, KeyType::Hash)?)
                    .key_schema(key(index.range_key, KeyType::Range)?)
                    .projection(projection)
                    .build()?,
            );
    }
    let created = request.send().await;
    match created {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            return Ok(name);
        }
        Err(e) => return Err(e.into()),
    }
    clients
        .dynamodb()
        .update_time_to_live()
        .table_name(&name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(TABLE.ttl_attribute)
                .enabled(true)
                .build()?,
        )
        .send()
        .await?;
    Ok(name)
}
