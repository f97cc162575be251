//! What one invocation measured: a summarised row per system and append workload,
//! the replay, open, tailing and memory measurements, and the machine's facts.

use crate::openraft_bench::RaftRuns;
use crate::receipts::{Followers, Receipts};
use crate::recovery::{CrashOpen, OpenTime, Replay, Tail};
use crate::runner::Workload;
use crate::stats::{RunResult, Summary};
use crate::system::System;

/// One summarised row of an append workload.
#[derive(Debug, Clone)]
pub struct Row {
    /// `durable`, `batched` or `unsynced`.
    pub section: &'static str,
    /// The system.
    pub system: System,
    /// What was run.
    pub workload: Workload,
    /// Median and spread over repetitions.
    pub summary: Summary,
    /// (percentile, µs) points of the median repetition, for the latency plots.
    pub quantiles: Vec<(f64, f64)>,
}

impl Row {
    /// Entries per second (calls × entries per call).
    pub fn entries_per_sec(&self) -> f64 {
        self.summary.ops_per_sec * self.workload.batch as f64
    }

    /// Megabytes (10^6) of entries per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.entries_per_sec() * self.workload.entry_bytes as f64 / 1e6
    }
}

/// Everything one invocation measured.
#[derive(Debug, Clone, Default)]
pub struct Results {
    /// Preset name.
    pub mode: String,
    /// `uptime` before and after, and other facts about the machine.
    pub machine: Vec<(String, String)>,
    /// Seconds per timed run and repetitions.
    pub run_time_secs: f64,
    /// Repetitions per configuration.
    pub reps: usize,
    /// The disk's sequential write bandwidth, bytes/s.
    pub sequential_bytes_per_sec: f64,
    /// Append rows.
    pub rows: Vec<Row>,
    /// Replay per system.
    pub replays: Vec<Replay>,
    /// flashlog open times by size.
    pub open_times: Vec<OpenTime>,
    /// flashlog open after a crash, at the largest size.
    pub crash_open: Option<CrashOpen>,
    /// Tailing latencies.
    pub tail: Option<Tail>,
    /// Submitting threads and tasks against blocking threads.
    pub receipts: Option<Receipts>,
    /// Written and Durable followers of one durable appender.
    pub followers: Option<Followers>,
    /// Three openraft nodes per log store (issue 17).
    pub raft: Option<RaftRuns>,
    /// The memory child's table.
    pub memory: Option<String>,
    /// Wall time of the invocation, seconds.
    pub total_secs: f64,
}

impl Results {
    /// The row of `system` with the same section and workload as `like`.
    pub fn peer(&self, like: &Row, system: System) -> Option<&Row> {
        self.rows.iter().find(|r| {
            r.system == system
                && r.section == like.section
                && r.workload.entry_bytes == like.workload.entry_bytes
                && r.workload.threads == like.workload.threads
                && r.workload.batch == like.workload.batch
        })
    }

    /// `system`'s row of a section at a size and thread count.
    pub fn find(
        &self,
        section: &str,
        system: System,
        entry_bytes: usize,
        threads: usize,
    ) -> Option<&Row> {
        self.rows.iter().find(|r| {
            r.section == section
                && r.system == system
                && r.workload.entry_bytes == entry_bytes
                && r.workload.threads == threads
        })
    }

    /// The entry sizes of the durable rows, ascending, each once.
    pub fn durable_sizes(&self) -> Vec<usize> {
        let mut sizes: Vec<usize> = self
            .rows
            .iter()
            .filter(|r| r.section == "durable")
            .map(|r| r.workload.entry_bytes)
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    }
}

const QUANTILES: [f64; 14] = [
    0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 1.0,
];

/// Summarises the repetitions of `system` on `workload`; `None` when there are none.
pub fn summarise(
    section: &'static str,
    system: System,
    workload: Workload,
    runs: &[RunResult],
) -> Option<Row> {
    let summary = Summary::of(runs)?;
    let median_run = runs.iter().min_by(|a, b| {
        let da = (a.ops_per_sec() - summary.ops_per_sec).abs();
        let db = (b.ops_per_sec() - summary.ops_per_sec).abs();
        da.total_cmp(&db)
    })?;
    Some(Row {
        section,
        system,
        workload,
        summary,
        quantiles: QUANTILES
            .iter()
            .map(|&q| (q * 100.0, median_run.percentile_us(q)))
            .collect(),
    })
}
