//! `GET /metrics`: Raft's figures, the Raft log's (flashlog's `Wal::metrics()`)
//! and the state machine store's, in the Prometheus text format. Latencies are
//! histograms (cumulative buckets up to powers of two nanoseconds, 1 µs to 17 s, from
//! flashlog's log-linear histograms, whose counts below a power of two are exact);
//! group sizes are summaries (quantiles 0.5, 0.99, 0.999, sum and count).

use std::fmt::Write;

use flashlog_wal::HistogramSnapshot;
use openraft::RaftMetrics;

use crate::types::TypeConfig;

/// What one rendering shows.
#[derive(Debug)]
pub struct Figures<'a> {
    /// openraft's metrics of this node.
    pub raft: &'a RaftMetrics<TypeConfig>,
    /// The Raft log's metrics.
    pub log: flashlog_wal::Metrics,
    /// The state machine store's figures.
    pub store: flashlog_kv::Stats,
    /// Elections seen (term increases) since start.
    pub elections: u64,
    /// Leader changes seen since start.
    pub leader_changes: u64,
    /// Snapshots built and installed since start.
    pub snapshots: (u64, u64),
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

fn summary(out: &mut String, name: &str, help: &str, h: &HistogramSnapshot, scale: f64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} summary");
    for (q, v) in [("0.5", h.p50), ("0.99", h.p99), ("0.999", h.p999)] {
        let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {}", v as f64 * scale);
    }
    let _ = writeln!(
        out,
        "{name}_sum {}\n{name}_count {}",
        h.sum as f64 * scale,
        h.count
    );
}

/// Bucket bounds of the latency histograms: below 2^10 ns (about 1 µs) to below
/// 2^34 ns (about 17 s), doubling.
const LATENCY_POWERS: std::ops::RangeInclusive<usize> = 10..=34;

/// A Prometheus histogram of nanosecond values `h`, in seconds: bucket `le` is
/// 2^k - 1 ns and counts the values at or below it (below 2^k: exact).
fn latency_histogram(out: &mut String, name: &str, help: &str, h: &HistogramSnapshot) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    for k in LATENCY_POWERS {
        let le = ((1u64 << k) - 1) as f64 / 1e9;
        let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {}", h.below_pow2[k]);
    }
    let _ = writeln!(
        out,
        "{name}_bucket{{le=\"+Inf\"}} {}\n{name}_sum {}\n{name}_count {}",
        h.count,
        h.sum as f64 / 1e9,
        h.count
    );
}

/// The Prometheus text of `figures`.
pub fn render(f: &Figures<'_>) -> String {
    let mut out = String::new();
    let m = f.raft;
    let index = |id: Option<crate::types::LogId>| id.map_or(0, |id| id.index);
    metric(
        &mut out,
        "flashlog_raft_node_id",
        "gauge",
        "This node's id.",
        m.id,
    );
    metric(
        &mut out,
        "flashlog_raft_term",
        "gauge",
        "The current term.",
        m.current_term,
    );
    metric(
        &mut out,
        "flashlog_raft_leader",
        "gauge",
        "The leader's id, -1 if none is known.",
        m.current_leader.map_or(-1, |l| l as i64),
    );
    metric(
        &mut out,
        "flashlog_raft_is_leader",
        "gauge",
        "1 if this node leads.",
        u8::from(m.current_leader == Some(m.id)),
    );
    metric(
        &mut out,
        "flashlog_raft_last_log_index",
        "gauge",
        "Index of the last entry in the log.",
        m.last_log_index.unwrap_or(0),
    );
    metric(
        &mut out,
        "flashlog_raft_commit_index",
        "gauge",
        "Index of the last committed entry.",
        index(m.cluster_committed.or(m.local_committed)),
    );
    metric(
        &mut out,
        "flashlog_raft_applied_index",
        "gauge",
        "Index of the last applied entry.",
        index(m.last_applied),
    );
    metric(
        &mut out,
        "flashlog_raft_snapshot_index",
        "gauge",
        "Index of the last entry in the snapshot.",
        index(m.snapshot),
    );
    metric(
        &mut out,
        "flashlog_raft_purged_index",
        "gauge",
        "Index of the last purged entry.",
        index(m.purged),
    );
    metric(
        &mut out,
        "flashlog_raft_elections_total",
        "counter",
        "Term increases this node saw since it started.",
        f.elections,
    );
    metric(
        &mut out,
        "flashlog_raft_leader_changes_total",
        "counter",
        "Leader changes this node saw since it started.",
        f.leader_changes,
    );
    metric(
        &mut out,
        "flashlog_raft_snapshots_built_total",
        "counter",
        "Snapshots built since start.",
        f.snapshots.0,
    );
    metric(
        &mut out,
        "flashlog_raft_snapshots_installed_total",
        "counter",
        "Snapshots received and installed since start.",
        f.snapshots.1,
    );
    let _ = writeln!(out, "# HELP flashlog_raft_replication_lag_entries How far each follower's matched index is behind the leader's last log index (leader only).\n# TYPE flashlog_raft_replication_lag_entries gauge");
    if let Some(replication) = &m.replication {
        let last = m.last_log_index.unwrap_or(0);
        for (follower, matched) in replication {
            let lag = last.saturating_sub(index(*matched));
            let _ = writeln!(
                out,
                "flashlog_raft_replication_lag_entries{{follower=\"{follower}\"}} {lag}"
            );
        }
    }
    let log = &f.log;
    metric(
        &mut out,
        "flashlog_log_appends_total",
        "counter",
        "Entries appended to the Raft log.",
        log.entries_appended,
    );
    metric(
        &mut out,
        "flashlog_log_appended_bytes_total",
        "counter",
        "Bytes appended to the Raft log.",
        log.bytes_appended,
    );
    metric(
        &mut out,
        "flashlog_log_groups_total",
        "counter",
        "Group commits of the Raft log.",
        log.groups,
    );
    metric(
        &mut out,
        "flashlog_log_fsyncs_total",
        "counter",
        "fdatasyncs of the Raft log.",
        log.fsyncs,
    );
    metric(
        &mut out,
        "flashlog_log_segments",
        "gauge",
        "Segments of the Raft log.",
        log.segments,
    );
    metric(
        &mut out,
        "flashlog_log_bytes_on_disk",
        "gauge",
        "Bytes of the Raft log on disk.",
        log.bytes_on_disk,
    );
    latency_histogram(
        &mut out,
        "flashlog_log_fsync_seconds",
        "fdatasync latency of the Raft log.",
        &log.fsync_latency,
    );
    latency_histogram(
        &mut out,
        "flashlog_log_append_seconds",
        "Append latency of the Raft log (call to durable).",
        &log.append_latency,
    );
    summary(
        &mut out,
        "flashlog_log_group_entries",
        "Entries per group commit.",
        &log.group_entries,
        1.0,
    );
    summary(
        &mut out,
        "flashlog_log_group_bytes",
        "Bytes per group commit.",
        &log.group_bytes,
        1.0,
    );
    metric(
        &mut out,
        "flashlog_kv_keys",
        "gauge",
        "Keys in the state machine.",
        f.store.keys,
    );
    metric(
        &mut out,
        "flashlog_kv_live_bytes",
        "gauge",
        "Live bytes in the state machine's log.",
        f.store.live_bytes,
    );
    metric(
        &mut out,
        "flashlog_kv_log_bytes",
        "gauge",
        "Bytes of the state machine's log.",
        f.store.log_bytes,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_histograms_have_cumulative_buckets_in_seconds() {
        let mut h = HistogramSnapshot::default();
        h.count = 5;
        h.sum = 3_000_000;
        // 2 values below 2^20 ns, 4 below 2^21, all 5 below 2^30.
        for k in 0..64 {
            h.below_pow2[k] = match k {
                0..=19 => 0,
                20 => 2,
                21..=29 => 4,
                _ => 5,
            };
        }
        let mut out = String::new();
        latency_histogram(&mut out, "x_seconds", "Help.", &h);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], "# TYPE x_seconds histogram");
        assert!(
            lines.contains(&"x_seconds_bucket{le=\"0.000001023\"} 0"),
            "{out}"
        );
        assert!(
            lines.contains(&"x_seconds_bucket{le=\"0.001048575\"} 2"),
            "{out}"
        );
        assert!(
            lines.contains(&"x_seconds_bucket{le=\"0.002097151\"} 4"),
            "{out}"
        );
        assert!(lines.contains(&"x_seconds_bucket{le=\"+Inf\"} 5"), "{out}");
        assert!(lines.contains(&"x_seconds_sum 0.003"), "{out}");
        assert!(lines.contains(&"x_seconds_count 5"), "{out}");
        // Cumulative: never decreasing, in order of their bounds.
        let counts: Vec<u64> = lines
            .iter()
            .filter(|l| l.starts_with("x_seconds_bucket"))
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(counts.len(), LATENCY_POWERS.count() + 1);
        assert!(counts.windows(2).all(|w| w[0] <= w[1]));
    }
}
