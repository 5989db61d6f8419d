//! CloudWatch metrics as Embedded Metric Format (EMF): one JSON log line per event, which
//! CloudWatch Logs turns into metrics with no API call on the request path.
//!
//! Every metric oes emits is a [`Metric`] constant below, so the names alarms and the dashboard
//! use are defined once (a test checks the template against this list). Lines carry no
//! dimensions beyond the namespace (`OES_METRICS_NAMESPACE`, one per stack) plus, where given, one
//! low-cardinality dimension (`Lane`, `Kind`, `Cache`, …). Emission is on in Lambda (where
//! `AWS_LAMBDA_FUNCTION_NAME` is set) or with `OES_METRICS=emf`, off with `OES_METRICS=off`;
//! elsewhere lines are dropped so local consoles and test output stay readable.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// The unit CloudWatch stores a metric in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A count of events.
    Count,
    /// A duration in milliseconds.
    Milliseconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
        }
    }
}

/// A metric oes emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metric {
    /// CloudWatch metric name.
    pub name: &'static str,
    /// Its unit.
    pub unit: Unit,
}

const fn count(name: &'static str) -> Metric {
    Metric {
        name,
        unit: Unit::Count,
    }
}

const fn millis(name: &'static str) -> Metric {
    Metric {
        name,
        unit: Unit::Milliseconds,
    }
}

/// An email job was queued (dimension `Lane`).
pub const EMAILS_QUEUED: Metric = count("EmailsQueued");
/// Time to record and queue an email job, as the API sees it.
pub const ENQUEUE_LATENCY: Metric = millis("EnqueueLatency");
/// SQS refused an email job; the API answered 503.
pub const ENQUEUE_FAILURES: Metric = count("EnqueueFailures");
/// SES accepted an email (dimension `Kind`).
pub const EMAILS_SENT: Metric = count("EmailsSent");
/// A transient send failure; the job comes back after its backoff.
pub const EMAILS_RETRIED: Metric = count("EmailsRetried");
/// A permanent send failure; the job is in the dead-letter queue.
pub const EMAILS_FAILED: Metric = count("EmailsFailed");
/// Attempts exhausted, or an undecodable message; in the dead-letter queue.
pub const EMAILS_DEAD: Metric = count("EmailsDead");
/// A redelivery of a job that was already finished, acknowledged without sending.
pub const EMAILS_DUPLICATE: Metric = count("EmailsDuplicate");
/// SES refused a send for the account's sending rate; the job waits its backoff, the attempt
/// not counted.
pub const SENDING_THROTTLED: Metric = count("SendingThrottled");
/// SES said the account cannot send (sending paused, account suspended).
pub const SENDING_PAUSED: Metric = count("SendingPaused");
/// SES said the account's daily sending quota is spent.
pub const QUOTA_EXCEEDED: Metric = count("SendingQuotaExceeded");
/// The worker put a message back for later (backoff, another worker's lease, a paused account):
/// a fresh copy, so waiting uses none of its receives.
pub const EMAILS_HELD: Metric = count("EmailsHeld");
/// Time SES took to accept or refuse one email.
pub const SEND_LATENCY: Metric = millis("EmailSendLatency");
/// A read served from the cache (dimension `Cache`: the key kind).
pub const CACHE_HITS: Metric = count("CacheHits");
/// A read the cache answered without the value: loaded from the store (its fill counts apart).
pub const CACHE_MISSES: Metric = count("CacheMisses");
/// A write Redis answered: a fill (or its refusal, the entry having changed during the load),
/// an invalidation, a clear (`Cache=namespace`) or a rate-limit count (`Cache=rate_limit`).
pub const CACHE_WRITES: Metric = count("CacheWrites");
/// A cache operation that failed: a read the cache could not serve or answer (once per read,
/// however many of its Redis calls failed), or a write Redis did not answer — each failed, timed
/// out or skipped by the open circuit breaker. Every cache operation counts once in `CacheHits`,
/// `CacheMisses`, `CacheWrites` or here, so `CacheErrors` over their sum is the share that failed.
pub const CACHE_ERRORS: Metric = count("CacheErrors");
/// Time to load a missed value from the store.
pub const CACHE_LOAD_TIME: Metric = millis("CacheLoadTime");
/// A sign-in with a wrong email or password.
pub const LOGIN_FAILURES: Metric = count("LoginFailures");
/// A request that names an address whose work took longer than its answer floor (dimension
/// `Action`; auth-api's `pacing`): while it happens, its time may tell whether the address has
/// an account, and the floor should rise.
pub const ANSWER_FLOOR_EXCEEDED: Metric = count("AnswerFloorExceeded");
/// One DynamoDB operation, retries included (dimension `Operation`).
pub const STORE_LATENCY: Metric = millis("StoreLatency");
/// A request refused by a rate limit (dimension `Rule`).
pub const RATE_LIMITED: Metric = count("RateLimited");
/// Attempts the attempt sweep closed at their deadline (their student never submitted).
pub const ATTEMPTS_CLOSED: Metric = count("AttemptsClosed");
/// Result emails of closed attempts that the attempt sweep queued, or sent to their lane again,
/// because the close left them undone (the queue refused the email, or the submit's request or
/// the sweep died between the store write and the send). Not zero means closes are failing or
/// dying after their write; the students still get their email, minutes late.
pub const RESULT_EMAILS_RECOVERED: Metric = count("ResultEmailsRecovered");

/// Every metric, for the check that alarms only name metrics the code emits.
pub const ALL: &[Metric] = &[
    EMAILS_QUEUED,
    ENQUEUE_LATENCY,
    ENQUEUE_FAILURES,
    EMAILS_SENT,
    EMAILS_RETRIED,
    EMAILS_FAILED,
    EMAILS_DEAD,
    EMAILS_DUPLICATE,
    SENDING_THROTTLED,
    SENDING_PAUSED,
    QUOTA_EXCEEDED,
    EMAILS_HELD,
    SEND_LATENCY,
    CACHE_HITS,
    CACHE_MISSES,
    CACHE_WRITES,
    CACHE_ERRORS,
    CACHE_LOAD_TIME,
    LOGIN_FAILURES,
    ANSWER_FLOOR_EXCEEDED,
    STORE_LATENCY,
    RATE_LIMITED,
    ATTEMPTS_CLOSED,
    RESULT_EMAILS_RECOVERED,
];

/// The namespace used when `OES_METRICS_NAMESPACE` is unset.
pub const DEFAULT_NAMESPACE: &str = "oes";

struct Settings {
    namespace: String,
    enabled: bool,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

fn settings() -> &'static Settings {
    SETTINGS.get_or_init(|| {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let setting = var(METRICS_SETTING);
        let in_lambda = var("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let enabled = enabled(setting.as_deref(), in_lambda);
        if let Some(setting) = setting.filter(|s| !is_off(s) && !is_emf(s)) {
            tracing::warn!(
                setting,
                enabled,
                "{METRICS_SETTING} is neither emf nor off; metric lines follow the default"
            );
        }
        Settings {
            namespace: var("OES_METRICS_NAMESPACE").unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
            enabled,
        }
    })
}

/// The variable that turns the metric lines on (`emf`) or off (`off`).
pub const METRICS_SETTING: &str = "OES_METRICS";

/// Whether metric lines are written, given [`METRICS_SETTING`]'s value: `emf` on, `off` off,
/// anything else as unset — on in Lambda, off elsewhere. An unknown value (`true`, `on`, a typo)
/// must not be what turns a function's metrics off, and every alarm on them quiet with it.
pub fn enabled(setting: Option<&str>, in_lambda: bool) -> bool {
    match setting {
        Some(setting) if is_emf(setting) => true,
        Some(setting) if is_off(setting) => false,
        _ => in_lambda,
    }
}

fn is_emf(setting: &str) -> bool {
    setting.trim().eq_ignore_ascii_case("emf")
}

fn is_off(setting: &str) -> bool {
    setting.trim().eq_ignore_ascii_case("off")
}

/// Emits one value of `metric`, with an optional dimension.
pub fn record(metric: Metric, value: f64, dimension: Option<(&'static str, &str)>) {
    let settings = settings();
    if !settings.enabled {
        return;
    }
    let line = render(&settings.namespace, metric, value, dimension, now_millis());
    // One write of a whole line, so lines from concurrent tasks never interleave.
    let mut stdout = std::io::stdout().lock();
    let _ignored = writeln!(stdout, "{line}");
}

/// Emits a count of one.
pub fn incr(metric: Metric, dimension: Option<(&'static str, &str)>) {
    record(metric, 1.0, dimension);
}

/// Emits a duration in milliseconds.
pub fn duration(metric: Metric, elapsed: Duration, dimension: Option<(&'static str, &str)>) {
    record(metric, elapsed.as_secs_f64() * 1000.0, dimension);
}

fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The EMF line for one value. With a dimension, the metric is published both per dimension
/// value and as a namespace-wide aggregate (the dimension set `[]`), which is what alarms use.
pub fn render(
    namespace: &str,
    metric: Metric,
    value: f64,
    dimension: Option<(&'static str, &str)>,
    timestamp_ms: u64,
) -> String {
    let line = Line {
        aws: Aws {
            timestamp: timestamp_ms,
            cloud_watch_metrics: [Directive {
                namespace,
                dimensions: match dimension {
                    Some((name, _)) => &[&[], &[name]],
                    None => &[&[]],
                },
                metrics: [MetricName {
                    name: metric.name,
                    unit: metric.unit.as_str(),
                }],
            }],
        },
        dimension,
        value,
    };
    // Written straight from borrowed fields (no `Value` tree): a line is on the request path,
    // once per cache read. Strings and numbers always encode.
    serde_json::to_string(&line).unwrap_or_default()
}

/// One EMF line: `_aws`, the dimension's value under its name, the value under the metric's.
struct Line<'a> {
    aws: Aws<'a>,
    dimension: Option<(&'static str, &'a str)>,
    value: f64,
}

impl Serialize for Line<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("_aws", &self.aws)?;
        if let Some((name, value)) = self.dimension {
            map.serialize_entry(name, value)?;
        }
        let [directive] = &self.aws.cloud_watch_metrics;
        let [metric] = &directive.metrics;
        map.serialize_entry(metric.name, &self.value)?;
        map.end()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Aws<'a> {
    timestamp: u64,
    cloud_watch_metrics: [Directive<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Directive<'a> {
    namespace: &'a str,
    dimensions: &'a [&'a [&'a str]],
    metrics: [MetricName; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct MetricName {
    name: &'static str,
    unit: &'static str,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn only_off_turns_the_metrics_of_a_function_off() {
        for in_lambda in [true, false] {
            assert!(enabled(Some("emf"), in_lambda));
            assert!(enabled(Some(" EMF "), in_lambda));
            assert!(!enabled(Some("off"), in_lambda));
            assert!(!enabled(Some("OFF"), in_lambda));
            assert_eq!(enabled(None, in_lambda), in_lambda);
            for unknown in ["true", "on", "1", "emf,json", "cloudwatch"] {
                assert_eq!(enabled(Some(unknown), in_lambda), in_lambda, "{unknown}");
            }
        }
    }

    #[test]
    fn a_line_is_valid_emf_with_the_value_under_the_metric_name() {
        let line = render(
            "oes/test",
            EMAILS_SENT,
            1.0,
            Some(("Kind", "verification")),
            1_700_000_000_000,
        );
        let value: Value = serde_json::from_str(&line).expect("JSON");
        let directive = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(value["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(directive["Namespace"], "oes/test");
        assert_eq!(directive["Dimensions"], json!([[], ["Kind"]]));
        assert_eq!(
            directive["Metrics"],
            json!([{"Name": "EmailsSent", "Unit": "Count"}])
        );
        assert_eq!(value["Kind"], "verification");
        assert_eq!(value["EmailsSent"], 1.0);
        assert!(!line.contains('\n'), "one line");
    }

    #[test]
    fn a_line_without_a_dimension_has_only_the_aggregate_set() {
        let line = render("oes", SEND_LATENCY, 12.5, None, 1);
        let value: Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(
            value["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        assert_eq!(value["EmailSendLatency"], 12.5);
        assert_eq!(
            value["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Milliseconds"
        );
    }

    #[test]
    fn metric_names_are_unique() {
        let mut names: Vec<_> = ALL.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
    }
}
