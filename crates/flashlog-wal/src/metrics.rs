//! What an open log counts about itself: [`Wal::metrics`](crate::Wal::metrics).
//!
//! Counters and histograms are atomics, updated where the work happens: by the
//! group commit's leader once per group (entries, bytes, fsyncs and their latency,
//! group sizes), and by each appender once per call (its latency from call to
//! durable). None takes a lock, and a snapshot reads them without stopping anyone.
//! With the `metrics` cargo feature they are also reported through the `metrics`
//! crate's facade (see [`Facade`]).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets per power of two: a value is placed within 1/8 of its size, which
/// bounds a reported percentile's error to about 12%.
const SUB_BUCKETS: u64 = 8;
const BUCKETS: usize = 64 * SUB_BUCKETS as usize;

/// A histogram of `u64` values in log-linear buckets, updated with atomics.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum: AtomicU64,
    max: AtomicU64,
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }
}

/// The bucket of `value`: values below `SUB_BUCKETS` have one each; above, each
/// power of two is cut into `SUB_BUCKETS` equal parts.
fn bucket_of(value: u64) -> usize {
    if value < SUB_BUCKETS {
        return value as usize;
    }
    let power = 63 - u64::from(value.leading_zeros()); // >= 3
    let sub = (value >> (power - 3)) & (SUB_BUCKETS - 1);
    ((power - 2) * SUB_BUCKETS + sub) as usize
}

/// The largest value bucket `index` holds.
fn bucket_top(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB_BUCKETS {
        return index;
    }
    let power = index / SUB_BUCKETS + 2;
    let sub = index % SUB_BUCKETS;
    // The next bucket's first value, minus one (the last bucket ends at u64::MAX).
    let next = u128::from(SUB_BUCKETS + sub + 1) << (power - 3);
    u64::try_from(next - 1).unwrap_or(u64::MAX)
}

impl Histogram {
    pub(crate) fn record(&self, value: u64) {
        self.buckets[bucket_of(value)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
        self.max.fetch_max(value, Ordering::Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect();
        let count: u64 = counts.iter().sum();
        let max = self.max.load(Ordering::Relaxed);
        let quantile = |q: f64| -> u64 {
            if count == 0 {
                return 0;
            }
            let rank = ((count as f64) * q).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (index, &n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return bucket_top(index).min(max);
                }
            }
            max
        };
        // Buckets never straddle a power of two, so these counts are exact.
        let mut below_pow2 = [0u64; 64];
        let mut index = 0;
        let mut seen = 0;
        for (k, below) in below_pow2.iter_mut().enumerate() {
            let bound = 1u64 << k;
            while index < counts.len() && bucket_top(index) < bound {
                seen += counts[index];
                index += 1;
            }
            *below = seen;
        }
        HistogramSnapshot {
            count,
            sum: self.sum.load(Ordering::Relaxed),
            p50: quantile(0.50),
            p99: quantile(0.99),
            p999: quantile(0.999),
            max,
            below_pow2,
        }
    }
}

/// A histogram's state at a [`Wal::metrics`](crate::Wal::metrics) snapshot.
/// Percentiles are the top of the bucket the rank falls in: at most about 12%
/// above the exact value, never above `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HistogramSnapshot {
    /// How many values were recorded.
    pub count: u64,
    /// Their sum.
    pub sum: u64,
    /// The median.
    pub p50: u64,
    /// The 99th percentile.
    pub p99: u64,
    /// The 99.9th percentile.
    pub p999: u64,
    /// The largest value.
    pub max: u64,
    /// `below_pow2[k]`: how many values were below `2^k` (exact: the buckets never
    /// straddle a power of two). Cumulative counts, as a Prometheus histogram's
    /// buckets are.
    pub below_pow2: [u64; 64],
}

impl Default for HistogramSnapshot {
    fn default() -> HistogramSnapshot {
        HistogramSnapshot {
            count: 0,
            sum: 0,
            p50: 0,
            p99: 0,
            p999: 0,
            max: 0,
            below_pow2: [0; 64],
        }
    }
}

impl HistogramSnapshot {
    /// The mean, 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }
}

/// The counters and histograms of one open log.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub entries_appended: AtomicU64,
    pub bytes_appended: AtomicU64,
    pub groups: AtomicU64,
    pub fsyncs: AtomicU64,
    pub rotations: AtomicU64,
    pub truncations: AtomicU64,
    pub poisonings: AtomicU64,
    pub refused_groups: AtomicU64,
    pub scrubs: AtomicU64,
    pub scrub_damage: AtomicU64,
    /// Nanoseconds per segment fdatasync.
    pub fsync_nanos: Histogram,
    pub group_entries: Histogram,
    pub group_bytes: Histogram,
    /// Nanoseconds from an `append` call to its return (durable under `Always`).
    pub append_nanos: Histogram,
    #[cfg(feature = "metrics")]
    pub facade: Option<Facade>,
}

impl Recorder {
    pub(crate) fn new(dir: &std::path::Path) -> Recorder {
        let _ = dir;
        Recorder {
            #[cfg(feature = "metrics")]
            facade: Some(Facade::new(dir)),
            ..Recorder::default()
        }
    }

    /// A group commit wrote `entries` entries of `bytes` bytes.
    pub(crate) fn group(&self, entries: u64, bytes: u64) {
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.entries_appended.fetch_add(entries, Ordering::Relaxed);
        self.bytes_appended.fetch_add(bytes, Ordering::Relaxed);
        self.group_entries.record(entries);
        self.group_bytes.record(bytes);
        #[cfg(feature = "metrics")]
        if let Some(facade) = &self.facade {
            facade.group(entries, bytes);
        }
    }

    /// A segment's fdatasync took `took`.
    pub(crate) fn fsync(&self, took: Duration) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
        self.fsync_nanos.record(nanos(took));
        #[cfg(feature = "metrics")]
        if let Some(facade) = &self.facade {
            facade.fsync.record(took.as_secs_f64());
        }
    }

    /// An `append` (or `append_batch`) call returned `Ok` after `took`.
    pub(crate) fn append(&self, took: Duration) {
        self.append_nanos.record(nanos(took));
        #[cfg(feature = "metrics")]
        if let Some(facade) = &self.facade {
            facade.append.record(took.as_secs_f64());
        }
    }

    /// A scrub finished, finding `damaged` damaged entries.
    pub(crate) fn scrubbed(&self, damaged: u64) {
        self.scrub_damage.fetch_add(damaged, Ordering::Relaxed);
        self.count(&self.scrubs);
    }

    /// Retention's running totals, for the facade (the snapshot reads them from
    /// the retainer itself).
    pub(crate) fn retention(&self, runs: u64, segments: u64, bytes: u64, held_back: u64) {
        let _ = (runs, segments, bytes, held_back);
        #[cfg(feature = "metrics")]
        if let Some(facade) = &self.facade {
            facade.retention_runs.absolute(runs);
            facade.retention_segments.absolute(segments);
            facade.retention_bytes.absolute(bytes);
            facade.retention_held_back.absolute(held_back);
        }
    }

    /// One more of `counter` (rotations, truncations, poisonings, refusals).
    pub(crate) fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(facade) = &self.facade {
            facade.events(self);
        }
    }
}

fn nanos(took: Duration) -> u64 {
    u64::try_from(took.as_nanos()).unwrap_or(u64::MAX)
}

/// What an open log has done and holds, at one moment: from
/// [`Wal::metrics`](crate::Wal::metrics). Counters start at 0 when the log is
/// opened.
///
/// ```
/// use flashlog_wal::{Op, Options, Wal};
///
/// let dir = tempfile::tempdir()?;
/// let wal = Wal::open(dir.path(), Options::default())?;
/// wal.append(Op::Put, b"k", b"v")?;
/// let metrics = wal.metrics();
/// assert_eq!(metrics.entries_appended, 1);
/// assert!(metrics.fsyncs >= 1);
/// assert_eq!(metrics.durable_seq, 1);
/// println!("fsync p99: {} µs", metrics.fsync_latency.p99 / 1000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// Entries written by group commits (appended and submitted alike).
    pub entries_appended: u64,
    /// Their encoded bytes.
    pub bytes_appended: u64,
    /// Group commits that wrote (one write per segment, at most one fdatasync).
    pub groups: u64,
    /// fdatasyncs of segments (groups' and rotations').
    pub fsyncs: u64,
    /// Segments started.
    pub rotations: u64,
    /// `truncate_front` and `truncate_back` calls that changed the log.
    pub truncations: u64,
    /// 1 once a failure poisoned the log.
    pub poisonings: u64,
    /// Groups refused for a full disk and taken back.
    pub refused_groups: u64,
    /// Scrubs finished ([`Wal::scrub`](crate::Wal::scrub) and the background
    /// scrubber's).
    pub scrubs: u64,
    /// Damaged entries those scrubs found (one found twice counts twice).
    pub scrub_damage: u64,
    /// Nanoseconds per fdatasync of a segment.
    pub fsync_latency: HistogramSnapshot,
    /// Entries per group commit.
    pub group_entries: HistogramSnapshot,
    /// Bytes per group commit.
    pub group_bytes: HistogramSnapshot,
    /// Nanoseconds from an `append` call to its return: until durable under
    /// [`SyncPolicy::Always`](crate::SyncPolicy::Always), until written otherwise.
    pub append_latency: HistogramSnapshot,
    /// Segments the log has.
    pub segments: u64,
    /// Bytes of entries in them (preallocated zeros not counted).
    pub bytes_on_disk: u64,
    /// [`Wal::written_seq`](crate::Wal::written_seq).
    pub written_seq: u64,
    /// [`Wal::durable_seq`](crate::Wal::durable_seq).
    pub durable_seq: u64,
    /// Iterators alive.
    pub open_readers: u64,
    /// Retention's running totals ([`Wal::retention_totals`](crate::Wal::retention_totals)).
    pub retention: crate::retention::RetentionTotals,
}

/// The gauges a snapshot reads from the log's state.
pub(crate) struct Gauges {
    pub segments: u64,
    pub bytes_on_disk: u64,
    pub written_seq: u64,
    pub durable_seq: u64,
    pub open_readers: u64,
}

impl Recorder {
    pub(crate) fn snapshot(&self, gauges: Gauges) -> Metrics {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Metrics {
            entries_appended: load(&self.entries_appended),
            bytes_appended: load(&self.bytes_appended),
            groups: load(&self.groups),
            fsyncs: load(&self.fsyncs),
            rotations: load(&self.rotations),
            truncations: load(&self.truncations),
            poisonings: load(&self.poisonings),
            refused_groups: load(&self.refused_groups),
            scrubs: load(&self.scrubs),
            scrub_damage: load(&self.scrub_damage),
            fsync_latency: self.fsync_nanos.snapshot(),
            group_entries: self.group_entries.snapshot(),
            group_bytes: self.group_bytes.snapshot(),
            append_latency: self.append_nanos.snapshot(),
            retention: crate::retention::RetentionTotals::default(),
            segments: gauges.segments,
            bytes_on_disk: gauges.bytes_on_disk,
            written_seq: gauges.written_seq,
            durable_seq: gauges.durable_seq,
            open_readers: gauges.open_readers,
        }
    }
}

/// The log's metrics as the `metrics` crate's facade sees them (feature
/// `metrics`): registered once per open log, labelled with its directory, so
/// an installed recorder (a Prometheus exporter, say) gets them with no code.
/// Names: `flashlog_entries_appended_total`, `flashlog_bytes_appended_total`,
/// `flashlog_groups_total`, `flashlog_fsyncs_total`,
/// `flashlog_rotations_total`, `flashlog_truncations_total`,
/// `flashlog_poisonings_total`, `flashlog_refused_groups_total`,
/// `flashlog_scrubs_total`, `flashlog_scrub_damage_total`,
/// `flashlog_retention_runs_total`, `flashlog_retention_segments_removed_total`,
/// `flashlog_retention_bytes_removed_total`, `flashlog_retention_held_back_total`,
/// `flashlog_fsync_seconds`, `flashlog_append_seconds`,
/// `flashlog_group_entries`, `flashlog_group_bytes` (histograms).
#[cfg(feature = "metrics")]
pub(crate) struct Facade {
    entries: metrics::Counter,
    bytes: metrics::Counter,
    groups: metrics::Counter,
    fsyncs: metrics::Counter,
    rotations: metrics::Counter,
    truncations: metrics::Counter,
    poisonings: metrics::Counter,
    refused: metrics::Counter,
    scrubs: metrics::Counter,
    scrub_damage: metrics::Counter,
    retention_runs: metrics::Counter,
    retention_segments: metrics::Counter,
    retention_bytes: metrics::Counter,
    retention_held_back: metrics::Counter,
    fsync: metrics::Histogram,
    append: metrics::Histogram,
    group_entries: metrics::Histogram,
    group_bytes: metrics::Histogram,
}

#[cfg(feature = "metrics")]
impl fmt::Debug for Facade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Facade").finish_non_exhaustive()
    }
}

#[cfg(feature = "metrics")]
impl Facade {
    fn new(dir: &std::path::Path) -> Facade {
        let dir = dir.display().to_string();
        Facade {
            entries: metrics::counter!("flashlog_entries_appended_total", "dir" => dir.clone()),
            bytes: metrics::counter!("flashlog_bytes_appended_total", "dir" => dir.clone()),
            groups: metrics::counter!("flashlog_groups_total", "dir" => dir.clone()),
            fsyncs: metrics::counter!("flashlog_fsyncs_total", "dir" => dir.clone()),
            rotations: metrics::counter!("flashlog_rotations_total", "dir" => dir.clone()),
            truncations: metrics::counter!("flashlog_truncations_total", "dir" => dir.clone()),
            poisonings: metrics::counter!("flashlog_poisonings_total", "dir" => dir.clone()),
            refused: metrics::counter!("flashlog_refused_groups_total", "dir" => dir.clone()),
            scrubs: metrics::counter!("flashlog_scrubs_total", "dir" => dir.clone()),
            scrub_damage: metrics::counter!("flashlog_scrub_damage_total", "dir" => dir.clone()),
            retention_runs: metrics::counter!("flashlog_retention_runs_total", "dir" => dir.clone()),
            retention_segments: metrics::counter!("flashlog_retention_segments_removed_total", "dir" => dir.clone()),
            retention_bytes: metrics::counter!("flashlog_retention_bytes_removed_total", "dir" => dir.clone()),
            retention_held_back: metrics::counter!("flashlog_retention_held_back_total", "dir" => dir.clone()),
            fsync: metrics::histogram!("flashlog_fsync_seconds", "dir" => dir.clone()),
            append: metrics::histogram!("flashlog_append_seconds", "dir" => dir.clone()),
            group_entries: metrics::histogram!("flashlog_group_entries", "dir" => dir.clone()),
            group_bytes: metrics::histogram!("flashlog_group_bytes", "dir" => dir),
        }
    }

    fn group(&self, entries: u64, bytes: u64) {
        self.groups.increment(1);
        self.entries.increment(entries);
        self.bytes.increment(bytes);
        self.group_entries.record(entries as f64);
        self.group_bytes.record(bytes as f64);
    }

    fn events(&self, recorder: &Recorder) {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        self.fsyncs.absolute(load(&recorder.fsyncs));
        self.rotations.absolute(load(&recorder.rotations));
        self.truncations.absolute(load(&recorder.truncations));
        self.poisonings.absolute(load(&recorder.poisonings));
        self.refused.absolute(load(&recorder.refused_groups));
        self.scrubs.absolute(load(&recorder.scrubs));
        self.scrub_damage.absolute(load(&recorder.scrub_damage));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_value_in_order() {
        let mut last = 0;
        for value in (0..5000u64).chain([u64::MAX / 3, u64::MAX - 1, u64::MAX]) {
            let bucket = bucket_of(value);
            assert!(bucket < BUCKETS, "{value}");
            assert!(bucket >= last || value > 5000, "{value}");
            last = bucket;
            assert!(bucket_top(bucket) >= value, "{value} above its bucket");
            if bucket > 0 {
                assert!(bucket_top(bucket - 1) < value, "{value} in a later bucket");
            }
        }
    }

    #[test]
    fn percentiles_are_within_an_eighth_and_never_above_max() {
        let histogram = Histogram::default();
        for value in 1..=1000u64 {
            histogram.record(value * 1000);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 1000);
        assert_eq!(snapshot.max, 1_000_000);
        for (got, exact) in [
            (snapshot.p50, 500_000),
            (snapshot.p99, 990_000),
            (snapshot.p999, 999_000),
        ] {
            assert!(
                got >= exact && got <= exact + exact / 8,
                "{got} for {exact}"
            );
        }
        assert!((snapshot.mean() - 500_500.0).abs() < 1.0);
        assert_eq!(
            Histogram::default().snapshot(),
            HistogramSnapshot::default()
        );
    }

    #[test]
    fn counts_below_each_power_of_two_are_exact() {
        let histogram = Histogram::default();
        let values: Vec<u64> = (0..3000u64)
            .map(|i| i * i * 7 + i)
            .chain([u64::MAX, 1 << 40, (1 << 40) - 1])
            .collect();
        for &value in &values {
            histogram.record(value);
        }
        let snapshot = histogram.snapshot();
        for k in 0..64 {
            let exact = values.iter().filter(|&&v| v < 1u64 << k).count() as u64;
            assert_eq!(snapshot.below_pow2[k], exact, "below 2^{k}");
        }
    }
}
