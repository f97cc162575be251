//! Latency percentiles and throughput of a run.

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
