//! Many seeds: runs them on every core, sums the figures per fault schedule, keeps the failures.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::faults::Fault;
use crate::world::{RunReport, run};

/// Figures of one fault schedule over a sweep.
#[derive(Debug, Clone, Default)]
pub struct ProfileFigures {
    /// Runs that drew it.
    pub runs: u64,
    /// Jobs accepted by the producer.
    pub jobs: u64,
    /// Messages SES accepted.
    pub sends: u64,
    /// Second sends in the documented window.
    pub window: u64,
    /// The faults that struck, by kind.
    pub struck: BTreeMap<Fault, u64>,
}

/// What a sweep found.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Seeds run.
    pub seeds: u64,
    /// How long it took.
    pub elapsed: Duration,
    /// Figures per schedule.
    pub profiles: BTreeMap<&'static str, ProfileFigures>,
    /// Second sends in the documented window, by cause.
    pub window_causes: BTreeMap<&'static str, u64>,
    /// The crashes, by crash point.
    pub crashes: BTreeMap<&'static str, u64>,
    /// Job records a purge marked dead.
    pub purges: u64,
    /// Jobs a purge of their letter left unsent and not ended.
    pub left_by_purges: u64,
    /// Jobs the producer answered queued though their send answered an error.
    pub queued_unheard: u64,
    /// Jobs the producer refused, by how.
    pub refused: BTreeMap<&'static str, u64>,
    /// The runs that broke a promise, by seed.
    pub failures: Vec<RunReport>,
}

/// Runs seeds `from .. from + count` on `threads` threads.
pub fn sweep(from: u64, count: u64, threads: usize) -> Sweep {
    let started = Instant::now();
    let next = Mutex::new(from);
    let end = from.saturating_add(count);
    let total = Mutex::new(Sweep::default());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                loop {
                    let seed = {
                        let mut next = next
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        if *next >= end {
                            return;
                        }
                        *next += 1;
                        *next - 1
                    };
                    let report = run(seed);
                    let mut total = total
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    total.add(report);
                }
            });
        }
    });
    let mut total = total
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    total.failures.sort_by_key(|r| r.seed);
    total.elapsed = started.elapsed();
    total
}

impl Sweep {
    fn add(&mut self, report: RunReport) {
        self.seeds += 1;
        let figures = self.profiles.entry(report.profile).or_default();
        figures.runs += 1;
        figures.jobs += report.jobs as u64;
        figures.sends += report.sends as u64;
        figures.window += u64::from(report.window);
        for (fault, n) in &report.struck {
            *figures.struck.entry(*fault).or_default() += u64::from(*n);
        }
        for (cause, n) in &report.window_causes {
            *self.window_causes.entry(cause).or_default() += u64::from(*n);
        }
        for (point, n) in &report.crashes {
            *self.crashes.entry(point).or_default() += u64::from(*n);
        }
        self.purges += u64::from(report.purges);
        self.left_by_purges += u64::from(report.left_by_purges);
        self.queued_unheard += u64::from(report.queued_unheard);
        for (how, n) in &report.refused {
            *self.refused.entry(how).or_default() += u64::from(*n);
        }
        if !report.violations.is_empty() {
            self.failures.push(report);
        }
    }
}

impl fmt::Display for Sweep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} seeds in {:.1} s, {} failed",
            self.seeds,
            self.elapsed.as_secs_f64(),
            self.failures.len()
        )?;
        writeln!(
            f,
            "{:<14} {:>7} {:>9} {:>9} {:>8} {:>12}",
            "schedule", "runs", "jobs", "sends", "window", "window/job"
        )?;
        for (name, p) in &self.profiles {
            #[allow(clippy::cast_precision_loss)]
            let rate = if p.jobs == 0 {
                0.0
            } else {
                p.window as f64 / p.jobs as f64
            };
            writeln!(
                f,
                "{name:<14} {:>7} {:>9} {:>9} {:>8} {:>12.2e}",
                p.runs, p.jobs, p.sends, p.window, rate
            )?;
        }
        for (cause, n) in &self.window_causes {
            writeln!(f, "window: {n} second send(s) after: {cause}")?;
        }
        writeln!(
            f,
            "purges: {} job record(s) marked dead, {} job(s) left unsent and not ended",
            self.purges, self.left_by_purges
        )?;
        writeln!(
            f,
            "producer: {} job(s) queued though their send answered an error; refused: {:?}",
            self.queued_unheard, self.refused
        )?;
        for failure in self.failures.iter().take(20) {
            writeln!(
                f,
                "seed {} ({}) failed — rerun alone with OES_SIM_SEED={}:",
                failure.seed, failure.profile, failure.seed
            )?;
            for violation in failure.violations.iter().take(5) {
                writeln!(f, "  - {violation}")?;
            }
        }
        Ok(())
    }
}
