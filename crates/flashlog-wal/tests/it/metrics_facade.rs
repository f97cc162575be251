//! With the `metrics` feature, the log's counters and histograms also go to the
//! `metrics` crate's facade, labelled with the log's directory.
//! (`cargo test -p flashlog-wal --features metrics`; `.ci/run` runs it.)

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use flashlog_wal::{Op, Options, Wal};
use metrics::{
    Counter, CounterFn, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

#[derive(Default)]
struct Captured {
    counters: Mutex<BTreeMap<String, Arc<Total>>>,
    histograms: Mutex<BTreeMap<String, Arc<Values>>>,
}

#[derive(Default)]
struct Total(AtomicU64);

impl CounterFn for Total {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::SeqCst);
    }
    fn absolute(&self, value: u64) {
        self.0.fetch_max(value, Ordering::SeqCst);
    }
}

#[derive(Default)]
struct Values(Mutex<Vec<f64>>);

impl HistogramFn for Values {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

fn name(key: &Key) -> String {
    let labels: Vec<String> = key
        .labels()
        .map(|label| format!("{}={}", label.key(), label.value()))
        .collect();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl Recorder for Captured {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        let total = Arc::new(Total::default());
        self.counters
            .lock()
            .unwrap()
            .insert(name(key), Arc::clone(&total));
        Counter::from_arc(total)
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        let values = Arc::new(Values::default());
        self.histograms
            .lock()
            .unwrap()
            .insert(name(key), Arc::clone(&values));
        Histogram::from_arc(values)
    }
}

#[test]
fn the_facade_gets_the_counters_and_histograms() {
    let dir = tempfile::tempdir().unwrap();
    let captured = Captured::default();
    let wal = metrics::with_local_recorder(&captured, || {
        Wal::open(dir.path(), Options::default()).unwrap()
    });
    for i in 0..5u8 {
        wal.append(Op::Put, b"k", &[i]).unwrap();
    }
    let label = format!("dir={}", dir.path().display());
    let counter = |metric: &str| {
        captured.counters.lock().unwrap()[&format!("{metric}{{{label}}}")]
            .0
            .load(Ordering::SeqCst)
    };
    assert_eq!(counter("flashlog_entries_appended_total"), 5);
    assert_eq!(counter("flashlog_groups_total"), 5);
    assert_eq!(counter("flashlog_bytes_appended_total"), 5 * 19);
    let histograms = captured.histograms.lock().unwrap();
    let fsyncs = histograms[&format!("flashlog_fsync_seconds{{{label}}}")]
        .0
        .lock()
        .unwrap()
        .len();
    assert_eq!(fsyncs as u64, wal.metrics().fsyncs);
    let appends = histograms[&format!("flashlog_append_seconds{{{label}}}")]
        .0
        .lock()
        .unwrap()
        .len();
    assert_eq!(appends, 5);
}

#[test]
fn retention_is_counted_in_the_facade() {
    let dir = tempfile::tempdir().unwrap();
    let captured = Captured::default();
    let options = Options::default()
        .max_segment_size(1024)
        .retention(flashlog_wal::Retention::default().max_bytes(4096));
    let wal = metrics::with_local_recorder(&captured, || Wal::open(dir.path(), options).unwrap());
    for i in 0..400u32 {
        wal.append(Op::Put, b"k", &i.to_be_bytes()).unwrap();
    }
    wal.apply_retention().unwrap();
    let label = format!("dir={}", dir.path().display());
    let counter = |metric: &str| {
        captured.counters.lock().unwrap()[&format!("{metric}{{{label}}}")]
            .0
            .load(Ordering::SeqCst)
    };
    let totals = wal.retention_totals();
    assert!(totals.segments_removed > 0, "{totals:?}");
    assert_eq!(
        counter("flashlog_retention_segments_removed_total"),
        totals.segments_removed
    );
    assert_eq!(counter("flashlog_retention_runs_total"), totals.runs);
    assert_eq!(
        counter("flashlog_retention_bytes_removed_total"),
        totals.bytes_removed
    );
}
