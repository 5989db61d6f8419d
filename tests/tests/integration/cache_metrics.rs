//! What `CacheErrorRateAlarm` computes from the EMF lines the cache really writes. The alarm
//! divides the failed cache operations by all of them, so it means what it says only if every
//! operation — a read, a fill, an invalidation, a clear, a rate-limit count — writes exactly
//! one line among the metrics the alarm sums, and a failed one writes it as `CacheErrors`. A
//! child process (this test binary again, with `OES_METRICS=emf`) runs each case below over an
//! in-memory cache whose calls fail on demand, and prints a marker before each.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use oes_domain::cache::{CacheAside, CacheKey, CacheKeys, CacheSettings};
use oes_domain::exam::ExamId;
use oes_domain::ports::{Cache, CacheError, Fill, Lookup};
use oes_runtime::rate_limit::{Limit, RateLimiter};
use oes_tests::memory_cache;

use crate::template::{template, text};

const CHILD: &str = "cache_metrics::operations_in_a_child_process";
const MARK: &str = "cache case: ";

/// The cases: (name, operations, of which failed). Each runs on a fresh cache and policy.
const CASES: &[(&str, usize, usize)] = &[
    ("ten reads of one entry: a miss, its fill, nine hits", 11, 0),
    ("a read whose fill fails", 2, 1),
    ("a read while every call fails", 1, 1),
    (
        "ten reads while every call fails: the breaker opens after three",
        10,
        10,
    ),
    ("an invalidation", 1, 0),
    ("an invalidation while every call fails", 1, 1),
    ("a clear", 1, 0),
    ("twenty rate-limit counts", 20, 0),
    ("ten rate-limit counts while every call fails", 10, 10),
];

#[test]
fn the_cache_error_rate_alarm_sees_each_cache_operation_once_and_each_failed_one_as_an_error() {
    let (expressions, summed) = alarm();
    let rate = &expressions["rate"];
    let sum = rate
        .strip_prefix("IF(")
        .and_then(|rest| rest.split_once(" > 0, 100 * FILL(errors, 0) / "))
        .filter(|(total, rest)| *rest == format!("{total}, 0)"))
        .and_then(|(total, _)| expressions.get(total))
        .map(|sum| {
            sum.split(" + ")
                .map(|term| {
                    term.strip_prefix("FILL(")
                        .and_then(|t| t.strip_suffix(", 0)"))
                        .unwrap_or(term)
                })
                .collect::<BTreeSet<_>>()
        })
        .unwrap_or_else(|| panic!("the alarm's rate is errors over a sum: {expressions:?}"));
    assert_eq!(
        sum,
        summed.iter().map(|(id, _)| id.as_str()).collect(),
        "the sum is of every metric the alarm reads"
    );
    let names: HashSet<&str> = summed.iter().map(|(_, name)| name.as_str()).collect();

    let stdout = crate::emf_lines::emf_child(CHILD, "oes/cache-metrics-test");

    let mut seen: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut case = None;
    for line in stdout.lines() {
        // libtest's "test … " status may share the first marker's line.
        if let Some((_, name)) = line.split_once(MARK) {
            case = Some(name);
            seen.entry(name).or_default();
            continue;
        }
        let Some(json) = line.find("{\"_aws\"").map(|at| &line[at..]) else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_str(json).expect("an EMF line");
        let metric = value["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"]
            .as_str()
            .expect("a metric name");
        if !names.contains(metric) {
            continue;
        }
        let counts = seen
            .get_mut(case.expect("a line after a case's marker"))
            .expect("the case's counts");
        counts.0 += 1;
        if metric == "CacheErrors" {
            counts.1 += 1;
        }
    }
    let expected: BTreeMap<&str, (usize, usize)> = CASES
        .iter()
        .map(|&(name, operations, failed)| (name, (operations, failed)))
        .collect();
    assert_eq!(
        seen, expected,
        "(lines the alarm sums, of which CacheErrors) per case"
    );
}

/// `CacheErrorRateAlarm`'s expressions by id (the rate, the sum it divides by), and the id and
/// metric name of each metric it reads.
fn alarm() -> (BTreeMap<String, String>, Vec<(String, String)>) {
    let template = template();
    let properties = &template["Resources"]["CacheErrorRateAlarm"]["Properties"];
    let metrics = properties["Metrics"].as_vec().expect("a metric-math alarm");
    let expressions = metrics
        .iter()
        .filter(|m| !m["Expression"].is_badvalue())
        .map(|m| (text(&m["Id"]), text(&m["Expression"])))
        .collect();
    let read = metrics
        .iter()
        .filter(|m| !m["MetricStat"].is_badvalue())
        .map(|m| {
            (
                text(&m["Id"]),
                text(&m["MetricStat"]["Metric"]["MetricName"]),
            )
        })
        .collect();
    (expressions, read)
}

/// The in-memory cache, whose calls named in `failing` fail (all of them for `"all"`).
struct Failing {
    cache: oes_adapters::memory::MemoryCache,
    failing: Mutex<HashSet<&'static str>>,
}

impl Failing {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            cache: memory_cache(),
            failing: Mutex::default(),
        })
    }

    fn fail(&self, calls: &[&'static str]) {
        self.failing
            .lock()
            .expect("unpoisoned")
            .extend(calls.iter().copied());
    }

    fn check(&self, call: &'static str) -> Result<(), CacheError> {
        let failing = self.failing.lock().expect("unpoisoned");
        if failing.contains(call) || failing.contains("all") {
            return Err(CacheError {
                context: call,
                source: "refused by the test".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Cache for Failing {
    async fn get(&self, key: &str, field: &str) -> Result<Lookup, CacheError> {
        self.check("get")?;
        self.cache.get(key, field).await
    }
    async fn fill(&self, fill: &Fill<'_>) -> Result<bool, CacheError> {
        self.check("fill")?;
        self.cache.fill(fill).await
    }
    async fn invalidate(
        &self,
        key: &str,
        generation: &str,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        self.check("invalidate")?;
        self.cache.invalidate(key, generation, ttl).await
    }
    async fn lock_or_read(
        &self,
        key: &str,
        field: &str,
        lock: &str,
        ttl: Duration,
    ) -> Result<(Lookup, bool), CacheError> {
        self.check("lock_or_read")?;
        self.cache.lock_or_read(key, field, lock, ttl).await
    }
    async fn counter(&self, key: &str) -> Result<u64, CacheError> {
        self.check("counter")?;
        self.cache.counter(key).await
    }
    async fn increment(&self, key: &str) -> Result<u64, CacheError> {
        self.check("increment")?;
        self.cache.increment(key).await
    }
    async fn hit(&self, key: &str, window: Duration) -> Result<(u64, Duration), CacheError> {
        self.check("hit")?;
        self.cache.hit(key, window).await
    }
    async fn give_back(&self, key: &str) -> Result<(), CacheError> {
        self.check("give_back")?;
        self.cache.give_back(key).await
    }
}

fn settings() -> CacheSettings {
    CacheSettings {
        breaker_failures: 3,
        breaker_cool_down: Duration::from_secs(60),
        ..CacheSettings::default()
    }
}

const LIMIT: Limit = Limit {
    rule: "test",
    max: 1_000,
    window: Duration::from_secs(60),
};

async fn read(policy: &CacheAside, key: &CacheKey) {
    policy
        .get_or_load(key, || async { Ok::<_, Infallible>(Some(7u32)) })
        .await
        .unwrap_or_else(|e| match e {});
}

#[tokio::test]
#[ignore = "run by the_cache_error_rate_alarm_sees_each_cache_operation_once…, in a child process"]
async fn operations_in_a_child_process() {
    for &(name, ..) in CASES {
        let cache = Failing::new();
        let policy = CacheAside::new(cache.clone(), CacheKeys::new("m"), settings());
        let limiter = RateLimiter::new(Some(cache.clone()), "m", &settings());
        let key = policy.keys().exam(&ExamId::generate());
        println!("{MARK}{name}");
        match name {
            "ten reads of one entry: a miss, its fill, nine hits" => {
                for _ in 0..10 {
                    read(&policy, &key).await;
                }
            }
            "a read whose fill fails" => {
                cache.fail(&["fill"]);
                read(&policy, &key).await;
            }
            "a read while every call fails" => {
                cache.fail(&["all"]);
                read(&policy, &key).await;
            }
            "ten reads while every call fails: the breaker opens after three" => {
                cache.fail(&["all"]);
                for _ in 0..10 {
                    read(&policy, &key).await;
                }
            }
            "an invalidation" => {
                policy.invalidate(std::slice::from_ref(&key)).await;
            }
            "an invalidation while every call fails" => {
                cache.fail(&["all"]);
                policy.invalidate(std::slice::from_ref(&key)).await;
            }
            "a clear" => {
                policy.clear_all().await;
            }
            "twenty rate-limit counts" => {
                for _ in 0..20 {
                    limiter.check(&LIMIT, "someone").await;
                }
            }
            "ten rate-limit counts while every call fails" => {
                cache.fail(&["all"]);
                for _ in 0..10 {
                    limiter.check(&LIMIT, "someone").await;
                }
            }
            other => panic!("no steps for the case {other:?}"),
        }
    }
}
