//! The report: every figure of the run (JSON), its Markdown rendering (stdout), and the hard
//! checks that decide the exit code.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::emails::{JobCounts, OnceCheck};
use crate::stats::{CacheCounts, Latency, RouteSummary};

/// What was played, against what.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    /// The API's base URL.
    pub base_url: String,
    /// Students in the class.
    pub students: usize,
    /// Questions on the exam.
    pub questions: usize,
    /// The sign-in window (s).
    pub arrive_over_s: f64,
    /// `even` or `random`.
    pub arrival: String,
    /// The seed (arrivals, answers).
    pub seed: u64,
    /// Answer saves per student.
    pub saves: u32,
    /// Time between saves (s).
    pub save_every_s: f64,
    /// Whether each student connected from its own loopback address.
    pub distinct_client_addresses: bool,
    /// The exam.
    pub exam_id: String,
    /// Its title.
    pub exam_title: String,
}

/// Throughput of the exam day (first arrival to last student done).
#[derive(Debug, Clone, Serialize)]
pub struct ExamDay {
    /// Its length (s).
    pub duration_s: f64,
    /// Requests in it (the admin's polling included).
    pub requests: u64,
    /// Requests per second over it.
    pub requests_per_second: f64,
    /// The busiest second's requests.
    pub peak_requests_per_second: u64,
}

/// The cache, from the `x-cache` headers of the whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Cache {
    /// Every header.
    pub counts: CacheCounts,
    /// Hits / (hits + misses + bypasses).
    pub hit_ratio: Option<f64>,
}

/// The students' sign-ins (argon2 under contention).
#[derive(Debug, Clone, Serialize)]
pub struct SignIns {
    /// Students signed in.
    pub signed_in: usize,
    /// First attempt to token, `503 busy` answers and their waits included.
    pub time_to_token: Option<Latency>,
    /// `503 busy` answers (retried after `Retry-After`; not errors).
    pub busy_answers: u64,
    /// Students who got at least one.
    pub students_told_busy: usize,
}

/// The class.
#[derive(Debug, Clone, Serialize)]
pub struct Students {
    /// In the class.
    pub total: usize,
    /// Attempts started.
    pub started: usize,
    /// Attempts submitted.
    pub submitted: usize,
    /// Students stopped by a failure.
    pub failed: usize,
    /// The first failures (20 at most), as "student: what".
    pub failures: Vec<String>,
    /// Submitted attempts in the instructor's results.
    pub results_listed: Option<usize>,
}

/// The result emails.
#[derive(Debug, Clone, Serialize)]
pub struct Emails {
    /// Result-email job counts before the exam day.
    pub before: JobCounts,
    /// And at the end.
    pub after: JobCounts,
    /// Jobs the run queued (all states, after − before).
    pub queued: u64,
    /// Of which sent.
    pub sent: u64,
    /// From the last submit to the queue drained (every job of the run sent), in seconds;
    /// `None` if it did not drain within the timeout.
    pub drain_s: Option<f64>,
    /// Each sent email's time from queued to sent (from its record: whole seconds).
    pub queued_to_sent: Option<Latency>,
    /// The most messages seen on each queue (visible + in flight + delayed).
    pub max_queue_depth: BTreeMap<String, i64>,
    /// Each submitted attempt's student against the `sent` job records of the run.
    pub records: OnceCheck,
    /// Each submitted attempt against the result emails in the outbox (embedded mode).
    pub outbox: Option<OnceCheck>,
    /// Each submitted attempt against the result emails the emulator's SES accepted (real mode).
    pub ses: Option<OnceCheck>,
}

/// A hard check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What it checks.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// What was found.
    pub detail: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// What was played.
    pub run: RunInfo,
    /// Throughput.
    pub exam_day: ExamDay,
    /// Each route in each phase.
    pub routes: Vec<RouteSummary>,
    /// The cache.
    pub cache: Cache,
    /// Sign-ins.
    pub sign_in: SignIns,
    /// The class.
    pub students: Students,
    /// The result emails.
    pub emails: Emails,
    /// The hard checks.
    pub checks: Vec<Check>,
    /// Every check held.
    pub passed: bool,
}

fn ms(value: f64) -> String {
    if value < 10.0 {
        format!("{value:.2}")
    } else if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    }
}

fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "–".into(), |r| format!("{:.1} %", r * 100.0))
}

impl Report {
    /// The report as Markdown (what stdout shows).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let r = &self.run;
        let _ = writeln!(out, "# oes-load: an exam day against {}\n", r.base_url);
        let _ = writeln!(
            out,
            "{} students, {} questions; arrivals {} over {:.0} s (seed {}); {} saves {:.1} s apart; \
             {} client addresses; exam `{}` ({}).\n",
            r.students,
            r.questions,
            r.arrival,
            r.arrive_over_s,
            r.seed,
            r.saves,
            r.save_every_s,
            if r.distinct_client_addresses {
                "distinct loopback"
            } else {
                "shared"
            },
            r.exam_id,
            r.exam_title,
        );
        let d = &self.exam_day;
        let _ = writeln!(
            out,
            "Exam day: {:.1} s, {} requests, {:.1} req/s (busiest second {}). Cache hit ratio {} \
             ({} hits, {} misses, {} bypasses).\n",
            d.duration_s,
            d.requests,
            d.requests_per_second,
            d.peak_requests_per_second,
            ratio(self.cache.hit_ratio),
            self.cache.counts.hit,
            self.cache.counts.miss,
            self.cache.counts.bypass,
        );
        out.push_str(
            "| phase | route | requests | busiest second | ok | busy | errors | p50 ms | p95 ms | p99 ms | max ms | x-cache hit ratio |\n\
             |---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n",
        );
        for route in &self.routes {
            let errors = if route.errors.is_empty() {
                "–".to_owned()
            } else {
                route
                    .errors
                    .iter()
                    .map(|(status, n)| format!("{n}× {status}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let l = route.latency;
            let cell = |f: fn(&Latency) -> f64| l.as_ref().map_or_else(|| "–".into(), |l| ms(f(l)));
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                route.phase.as_str(),
                route.route,
                route.requests,
                route.busiest_second,
                route.ok,
                route.busy,
                errors,
                cell(|l| l.p50_ms),
                cell(|l| l.p95_ms),
                cell(|l| l.p99_ms),
                cell(|l| l.max_ms),
                ratio(route.cache.hit_ratio()),
            );
        }
        let s = &self.sign_in;
        let _ = writeln!(
            out,
            "\nSign-in (argon2 under contention): {} of {} students signed in; time to token {}; \
             {} `503 busy` answers to {} students (designed back-pressure, retried after \
             `Retry-After`).",
            s.signed_in,
            self.students.total,
            s.time_to_token.map_or_else(
                || "–".into(),
                |l| format!(
                    "p50 {} ms, p95 {} ms, p99 {} ms, max {} ms",
                    ms(l.p50_ms),
                    ms(l.p95_ms),
                    ms(l.p99_ms),
                    ms(l.max_ms)
                )
            ),
            s.busy_answers,
            s.students_told_busy,
        );
        let st = &self.students;
        let _ = writeln!(
            out,
            "\nStudents: {} started, {} submitted, {} failed; the instructor's results list {}.",
            st.started,
            st.submitted,
            st.failed,
            st.results_listed
                .map_or_else(|| "nothing (not read)".into(), |n| format!("{n} submitted")),
        );
        for failure in &st.failures {
            let _ = writeln!(out, "- {failure}");
        }
        let e = &self.emails;
        let depth = e
            .max_queue_depth
            .iter()
            .map(|(q, n)| format!("{q} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(
            out,
            "\nResult emails: {} queued, {} sent; {}; queued to sent {}; deepest queues: {}.",
            e.queued,
            e.sent,
            e.drain_s.map_or_else(
                || "the queue did not drain within the timeout".into(),
                |s| format!("all sent within {s:.1} s of the last submit (polled every 0.2 s)")
            ),
            e.queued_to_sent.map_or_else(
                || "–".into(),
                |l| format!(
                    "p50 {:.0} s, max {:.0} s (records: whole seconds)",
                    l.p50_ms / 1000.0,
                    l.max_ms / 1000.0
                )
            ),
            if depth.is_empty() { "–" } else { &depth },
        );
        out.push_str("\n## Checks\n\n");
        for check in &self.checks {
            let _ = writeln!(
                out,
                "- [{}] {}: {}",
                if check.passed { "x" } else { " " },
                check.name,
                check.detail
            );
        }
        let _ = writeln!(
            out,
            "\n**{}**",
            if self.passed { "PASSED" } else { "FAILED" }
        );
        out
    }
}

/// The one-line account of an exactly-once check.
pub fn describe_once(check: &OnceCheck) -> String {
    let mut text = format!(
        "{} of {} exactly once; {} missing, {} more than once, {} unexpected",
        check.once,
        check.expected,
        check.missing.len(),
        check.duplicated.len(),
        check.unexpected.len()
    );
    if let Some(first) = check.missing.first() {
        let _ = write!(text, " (first missing: {first})");
    }
    if let Some((key, n)) = check.duplicated.iter().next() {
        let _ = write!(text, " ({key}: {n} times)");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_once_check_reads_as_what_went_wrong() {
        let mut check = OnceCheck {
            expected: 3,
            once: 1,
            missing: vec!["s3@x.org".into()],
            ..OnceCheck::default()
        };
        check.duplicated.insert("s2@x.org".into(), 2);
        let text = describe_once(&check);
        assert!(text.starts_with("1 of 3 exactly once; 1 missing, 1 more than once"));
        assert!(text.contains("first missing: s3@x.org"));
        assert!(text.contains("s2@x.org: 2 times"));
        assert_eq!(ms(1.234), "1.23");
        assert_eq!(ms(12.34), "12.3");
        assert_eq!(ms(123.4), "123");
        assert_eq!(ratio(Some(0.9512)), "95.1 %");
    }
}
