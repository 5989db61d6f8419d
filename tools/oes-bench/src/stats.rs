//! Percentiles of a set of samples, and the CPU time of the current thread.

use std::time::Duration;

/// Latency percentiles.
pub struct Percentiles {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
    /// Mean.
    pub mean: Duration,
}

/// Percentiles of `samples` (nearest rank); `None` for no samples.
pub fn percentiles(samples: &mut [Duration]) -> Option<Percentiles> {
    samples.sort_unstable();
    let count = u32::try_from(samples.len()).ok().filter(|n| *n > 0)?;
    let rank = |p: usize| samples[nearest_rank(samples.len(), p)];
    Some(Percentiles {
        p50: rank(50),
        p99: rank(99),
        max: *samples.last()?,
        mean: samples.iter().sum::<Duration>() / count,
    })
}

/// The 25th, 50th and 75th percentiles of `values` (nearest rank, in `f64::total_cmp`'s
/// order); `None` for none.
pub fn quartiles(mut values: Vec<f64>) -> Option<[f64; 3]> {
    values.sort_unstable_by(f64::total_cmp);
    let rank = |p: usize| values[nearest_rank(values.len(), p)];
    (!values.is_empty()).then(|| [rank(25), rank(50), rank(75)])
}

/// The index of the `p`th percentile among `len` sorted samples, by nearest rank.
fn nearest_rank(len: usize, p: usize) -> usize {
    (len * p).div_ceil(100).saturating_sub(1)
}

/// CPU time this thread has used (Linux: `/proc/thread-self/schedstat`, in nanoseconds);
/// `None` where that file does not exist.
pub fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Prints one Markdown table row: name, count, p50, p99, max, mean.
pub fn row(name: &str, count: usize, p: &Percentiles) {
    eprintln!(
        "| {name} | {count} | {} | {} | {} | {} |",
        ms(p.p50),
        ms(p.p99),
        ms(p.max),
        ms(p.mean)
    );
}

/// Milliseconds with two decimals.
pub fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut samples: Vec<_> = (1..=100).rev().map(Duration::from_millis).collect();
        let p = percentiles(&mut samples).expect("samples");
        assert_eq!(p.p50, Duration::from_millis(50));
        assert_eq!(p.p99, Duration::from_millis(99));
        assert_eq!(p.max, Duration::from_millis(100));
        assert!(percentiles(&mut []).is_none());
    }

    #[test]
    fn quartiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=8).rev().map(f64::from).collect();
        assert_eq!(quartiles(values), Some([2.0, 4.0, 6.0]));
        assert_eq!(quartiles(vec![3.0]), Some([3.0, 3.0, 3.0]));
        assert_eq!(quartiles(Vec::new()), None);
    }
}
