//! The report's maths: exact percentiles over every sample, each route's summary (latency,
//! errors by status, `503 busy` apart, cache hits), and each route's latency second by second.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::api::{CacheStatus, Outcome, Phase, Sample};

/// The `p`-th percentile (0–100) of `sorted` (ascending) by nearest rank: the smallest value
/// with at least `p` % of the values at or below it. `None` when empty.
pub fn percentile<T: Copy>(sorted: &[T], p: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// A latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Latency {
    /// Values.
    pub count: usize,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// The slowest.
    pub max_ms: f64,
}

impl Latency {
    /// The distribution of `values` (any order); `None` when empty.
    pub fn of(values: &[Duration]) -> Option<Self> {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let ms = |p: f64| percentile(&sorted, p).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        (!sorted.is_empty()).then(|| Self {
            count: sorted.len(),
            p50_ms: ms(50.0),
            p95_ms: ms(95.0),
            p99_ms: ms(99.0),
            max_ms: ms(100.0),
        })
    }
}

/// `x-cache` headers seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheCounts {
    /// `hit`.
    pub hit: u64,
    /// `miss`.
    pub miss: u64,
    /// `bypass`.
    pub bypass: u64,
}

impl CacheCounts {
    /// Counts one header.
    pub fn add(&mut self, status: Option<CacheStatus>) {
        match status {
            Some(CacheStatus::Hit) => self.hit += 1,
            Some(CacheStatus::Miss) => self.miss += 1,
            Some(CacheStatus::Bypass) => self.bypass += 1,
            None => {}
        }
    }

    /// Hits among the answers that went through the cache (a bypass is not a hit); `None` if
    /// none did.
    pub fn hit_ratio(&self) -> Option<f64> {
        let total = self.hit + self.miss + self.bypass;
        (total > 0).then(|| self.hit as f64 / total as f64)
    }
}

/// One route in one phase.
#[derive(Debug, Clone, Serialize)]
pub struct RouteSummary {
    /// The phase.
    pub phase: Phase,
    /// The route's template.
    pub route: &'static str,
    /// Requests sent.
    pub requests: u64,
    /// 2xx answers.
    pub ok: u64,
    /// `503 busy` answers (back-pressure, retried; not errors).
    pub busy: u64,
    /// Every other outcome by status (`"409"`, `"500"`, `"timeout"`, `"transport"`).
    pub errors: BTreeMap<String, u64>,
    /// Latency of every answer (busy ones included: that is what the route did); requests
    /// that got none (a timeout, a failed connection) are in `errors` only.
    pub latency: Option<Latency>,
    /// `x-cache` headers.
    pub cache: CacheCounts,
    /// Requests sent in the route's busiest second: what a per-route throttle (API Gateway's
    /// `ThrottlingRateLimit`/`ThrottlingBurstLimit`) must allow for this exam day.
    pub busiest_second: u64,
}

/// One summary per (phase, route), in phase order then by route.
pub fn summarize(samples: &[Sample]) -> Vec<RouteSummary> {
    let mut groups: BTreeMap<(Phase, &'static str), Vec<&Sample>> = BTreeMap::new();
    for sample in samples {
        groups
            .entry((sample.phase, sample.route))
            .or_default()
            .push(sample);
    }
    groups
        .into_iter()
        .map(|((phase, route), samples)| {
            let mut summary = RouteSummary {
                phase,
                route,
                requests: samples.len() as u64,
                ok: 0,
                busy: 0,
                errors: BTreeMap::new(),
                latency: None,
                cache: CacheCounts::default(),
                busiest_second: 0,
            };
            let mut per_second: BTreeMap<u64, u64> = BTreeMap::new();
            for sample in &samples {
                *per_second.entry(sample.at.as_secs()).or_default() += 1;
                summary.cache.add(sample.cache);
                match sample.outcome {
                    outcome if outcome.is_success() => summary.ok += 1,
                    Outcome::Busy => summary.busy += 1,
                    _ => *summary.errors.entry(sample.label()).or_default() += 1,
                }
            }
            summary.busiest_second = per_second.into_values().max().unwrap_or(0);
            let latencies: Vec<Duration> = samples
                .iter()
                .filter(|s| s.outcome.answered())
                .map(|s| s.latency)
                .collect();
            summary.latency = Latency::of(&latencies);
            summary
        })
        .collect()
}

/// The 5xx answers other than `503 busy`, by route, status and error code.
pub fn server_errors(samples: &[Sample]) -> BTreeMap<String, u64> {
    let mut errors = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.outcome.is_server_error()) {
        *errors
            .entry(format!("{} {}", sample.route, sample.label()))
            .or_default() += 1;
    }
    errors
}

/// One second of one route: its answers' p50 and p99.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Second {
    /// Seconds since `from`.
    pub second: u64,
    /// Requests sent in that second that got an answer.
    pub requests: usize,
    /// Their median latency (ms).
    pub p50_ms: f64,
    /// Their 99th percentile (ms).
    pub p99_ms: f64,
}

/// Each route's latency second by second, for the requests of `phase` sent from `from` on that
/// got an answer.
pub fn per_second(
    samples: &[Sample],
    phase: Phase,
    from: Duration,
) -> BTreeMap<&'static str, Vec<Second>> {
    let mut buckets: BTreeMap<&'static str, BTreeMap<u64, Vec<Duration>>> = BTreeMap::new();
    for sample in samples
        .iter()
        .filter(|s| s.phase == phase && s.outcome.answered())
    {
        let second = sample.at.saturating_sub(from).as_secs();
        buckets
            .entry(sample.route)
            .or_default()
            .entry(second)
            .or_default()
            .push(sample.latency);
    }
    buckets
        .into_iter()
        .map(|(route, seconds)| {
            let series = seconds
                .into_iter()
                .filter_map(|(second, latencies)| {
                    Latency::of(&latencies).map(|l| Second {
                        second,
                        requests: l.count,
                        p50_ms: l.p50_ms,
                        p99_ms: l.p99_ms,
                    })
                })
                .collect();
            (route, series)
        })
        .collect()
}

/// Requests per second over a window: `requests` / its length (0 for an empty window).
pub fn rate(requests: u64, window: Duration) -> f64 {
    if window.is_zero() {
        0.0
    } else {
        requests as f64 / window.as_secs_f64()
    }
}

/// The most requests sent in any one second of `phase`.
pub fn peak_rate(samples: &[Sample], phase: Phase) -> u64 {
    let mut per_second: BTreeMap<u64, u64> = BTreeMap::new();
    for sample in samples.iter().filter(|s| s.phase == phase) {
        *per_second.entry(sample.at.as_secs()).or_default() += 1;
    }
    per_second.into_values().max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn sample(route: &'static str, at: u64, latency: u64, outcome: Outcome) -> Sample {
        Sample {
            phase: Phase::ExamDay,
            route,
            at: ms(at),
            latency: ms(latency),
            outcome,
            cache: None,
            code: None,
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&values, 50.0), Some(50));
        assert_eq!(percentile(&values, 95.0), Some(95));
        assert_eq!(percentile(&values, 99.0), Some(99));
        assert_eq!(percentile(&values, 100.0), Some(100));
        assert_eq!(percentile(&values, 0.0), Some(1));
        // Ten values: the p99 is the largest, the p50 the fifth.
        let ten: Vec<u32> = (1..=10).collect();
        assert_eq!(percentile(&ten, 99.0), Some(10));
        assert_eq!(percentile(&ten, 50.0), Some(5));
        assert_eq!(percentile(&ten, 51.0), Some(6));
        assert_eq!(percentile(&[7u32], 50.0), Some(7));
        assert_eq!(percentile::<u32>(&[], 50.0), None);
    }

    #[test]
    fn latency_sorts_before_ranking() {
        let latency = Latency::of(&[ms(30), ms(10), ms(20), ms(40)]).expect("values");
        assert_eq!(latency.count, 4);
        assert_eq!(latency.p50_ms, 20.0);
        assert_eq!(latency.p99_ms, 40.0);
        assert_eq!(latency.max_ms, 40.0);
        assert!(Latency::of(&[]).is_none());
    }

    #[test]
    fn hit_ratio_counts_bypass_as_a_miss_and_ignores_headerless_answers() {
        let mut cache = CacheCounts::default();
        assert_eq!(cache.hit_ratio(), None);
        for status in [
            Some(CacheStatus::Hit),
            Some(CacheStatus::Hit),
            Some(CacheStatus::Hit),
            Some(CacheStatus::Miss),
            Some(CacheStatus::Bypass),
            None,
        ] {
            cache.add(status);
        }
        assert_eq!(cache.hit_ratio(), Some(0.6));
        let all_hits = CacheCounts {
            hit: 5,
            miss: 0,
            bypass: 0,
        };
        assert_eq!(all_hits.hit_ratio(), Some(1.0));
    }

    #[test]
    fn requests_without_an_answer_are_counted_but_not_timed() {
        let mut samples = vec![
            sample("GET /auth/me", 0, 100, Outcome::Status(200)),
            sample("GET /auth/me", 1, 100, Outcome::Status(200)),
        ];
        // A server gone: each refused connection fails in a fraction of a millisecond.
        for at in 2..10 {
            samples.push(sample("GET /auth/me", at, 0, Outcome::Transport));
        }
        samples.push(sample("GET /auth/me", 10, 5_000, Outcome::Timeout));
        let summary = &summarize(&samples)[0];
        assert_eq!(summary.requests, 11);
        assert_eq!(summary.errors.get("transport"), Some(&8));
        let latency = summary.latency.expect("two answers");
        assert_eq!(
            (latency.count, latency.p50_ms, latency.max_ms),
            (2, 100.0, 100.0)
        );
        let series = &per_second(&samples, Phase::ExamDay, Duration::ZERO)["GET /auth/me"];
        assert_eq!(series[0].requests, 2);
        assert_eq!(series[0].p50_ms, 100.0);
    }

    #[test]
    fn summaries_count_busy_apart_from_errors() {
        let samples = vec![
            sample("POST /auth/login", 0, 10, Outcome::Status(200)),
            sample("POST /auth/login", 5, 1, Outcome::Busy),
            Sample {
                code: Some("rate_limited".into()),
                ..sample("POST /auth/login", 6, 2, Outcome::Status(429))
            },
            sample("POST /auth/login", 7, 3, Outcome::Timeout),
            sample("GET /exams/{id}", 8, 3, Outcome::Status(500)),
            Sample {
                code: Some("service_unavailable".into()),
                ..sample("GET /exams/{id}", 9, 3, Outcome::Status(503))
            },
        ];
        let summaries = summarize(&samples);
        assert_eq!(summaries.len(), 2);
        let login = summaries
            .iter()
            .find(|s| s.route == "POST /auth/login")
            .expect("login");
        assert_eq!((login.requests, login.ok, login.busy), (4, 1, 1));
        assert_eq!(login.busiest_second, 4, "all four sent in the first second");
        assert_eq!(login.errors.get("429 rate_limited"), Some(&1));
        assert_eq!(login.errors.get("timeout"), Some(&1));
        assert!(!login.errors.contains_key("503 busy"));
        let errors = server_errors(&samples);
        assert_eq!(errors.len(), 2, "busy is not a server error: {errors:?}");
        assert_eq!(errors.get("GET /exams/{id} 500"), Some(&1));
        assert_eq!(
            errors.get("GET /exams/{id} 503 service_unavailable"),
            Some(&1),
            "the code tells the store's failure from ours"
        );
    }

    #[test]
    fn seconds_bucket_by_send_time_from_the_phase_start() {
        let mut samples = vec![
            sample("GET /attempts/{id}", 10_100, 2, Outcome::Status(200)),
            sample("GET /attempts/{id}", 10_900, 4, Outcome::Status(200)),
            sample("GET /attempts/{id}", 12_000, 8, Outcome::Status(200)),
        ];
        samples.push(Sample {
            phase: Phase::Setup,
            ..sample("GET /attempts/{id}", 11_000, 100, Outcome::Status(200))
        });
        let series = per_second(&samples, Phase::ExamDay, ms(10_000));
        let seconds = series.get("GET /attempts/{id}").expect("route");
        assert_eq!(seconds.len(), 2, "{seconds:?}");
        assert_eq!((seconds[0].second, seconds[0].requests), (0, 2));
        assert_eq!((seconds[0].p50_ms, seconds[0].p99_ms), (2.0, 4.0));
        assert_eq!((seconds[1].second, seconds[1].p99_ms), (2, 8.0));
        assert_eq!(peak_rate(&samples, Phase::ExamDay), 2);
        assert_eq!(rate(30, Duration::from_secs(10)), 3.0);
        assert_eq!(rate(30, Duration::ZERO), 0.0);
    }
}
