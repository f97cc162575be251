//! Latency percentiles and throughput of a run, and the median and spread of repeated runs.

use std::time::Duration;

/// What a run of appends measured.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Appends completed.
    pub ops: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
    /// Latency of every append, in nanoseconds, sorted.
    pub latencies: Vec<u64>,
}

impl RunResult {
    /// Builds a result from per-thread latency lists.
    pub fn new(elapsed: Duration, per_thread: Vec<Vec<u64>>) -> RunResult {
        let mut latencies: Vec<u64> = per_thread.into_iter().flatten().collect();
        latencies.sort_unstable();
        RunResult {
            ops: latencies.len() as u64,
            elapsed,
            latencies,
        }
    }

    /// Appends per second.
    pub fn ops_per_sec(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64()
    }

    /// The latency below which a share `q` of appends completed, in microseconds.
    pub fn percentile_us(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return 0.0;
        }
        let at = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[at] as f64 / 1000.0
    }
}

/// The median of several repetitions of one configuration, with their spread.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Repetitions summarised.
    pub runs: usize,
    /// Median operations per second.
    pub ops_per_sec: f64,
    /// Slowest repetition's operations per second.
    pub min_ops_per_sec: f64,
    /// Fastest repetition's operations per second.
    pub max_ops_per_sec: f64,
    /// Median over repetitions of each repetition's p50 latency, µs.
    pub p50_us: f64,
    /// Median p99 latency, µs.
    pub p99_us: f64,
    /// Median p99.9 latency, µs.
    pub p999_us: f64,
}

impl Summary {
    /// Summarises repetitions; `None` when there are none.
    pub fn of(runs: &[RunResult]) -> Option<Summary> {
        if runs.is_empty() {
            return None;
        }
        let ops: Vec<f64> = runs.iter().map(RunResult::ops_per_sec).collect();
        let pct = |q: f64| median(runs.iter().map(|r| r.percentile_us(q)).collect());
        Some(Summary {
            runs: runs.len(),
            ops_per_sec: median(ops.clone()),
            min_ops_per_sec: ops.iter().copied().fold(f64::INFINITY, f64::min),
            max_ops_per_sec: ops.iter().copied().fold(0.0, f64::max),
            p50_us: pct(0.5),
            p99_us: pct(0.99),
            p999_us: pct(0.999),
        })
    }

    /// Spread of the repetitions, (max − min) / median, as a percentage.
    pub fn spread_pct(&self) -> f64 {
        if self.ops_per_sec == 0.0 {
            return 0.0;
        }
        100.0 * (self.max_ops_per_sec - self.min_ops_per_sec) / self.ops_per_sec
    }
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(vec![]), 0.0);
    }

    #[test]
    fn summary_takes_medians_and_spread() {
        let run = |ops: u64| RunResult::new(Duration::from_secs(1), vec![(1..=ops).collect()]);
        let summary = Summary::of(&[run(100), run(300), run(200)]).expect("three runs");
        assert_eq!(summary.ops_per_sec, 200.0);
        assert_eq!(summary.min_ops_per_sec, 100.0);
        assert_eq!(summary.max_ops_per_sec, 300.0);
        assert_eq!(summary.spread_pct(), 100.0);
        assert!(Summary::of(&[]).is_none());
    }
}
