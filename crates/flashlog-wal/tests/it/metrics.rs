//! `Wal::metrics`: counters, histograms and gauges follow what the log did, and
//! `tracing` reports open, rotation, truncation, poisoning and slow fsyncs.

use std::sync::Arc;
use std::time::Duration;

use flashlog_testkit::{
    Call, Delay, DelayFs, FaultKind, Persistence, SimFault, SimFs, Target, TraceCapture,
};
use flashlog_wal::{Batch, Op, Options, Wal};

fn sim_options(sim: &SimFs) -> Options {
    Options::default().fs(Arc::new(sim.clone())).preallocate(0)
}

#[test]
fn counters_histograms_and_gauges_follow_the_log() {
    let sim = SimFs::new();
    let wal = Wal::open("/log", sim_options(&sim).max_segment_size(256)).unwrap();
    assert_eq!(wal.metrics().entries_appended, 0);
    for i in 0..20u8 {
        wal.append(Op::Put, b"key", &[i; 20]).unwrap(); // 40 bytes each
    }
    let mut batch = Batch::new();
    batch.put(b"a", b"1").put(b"b", b"2");
    wal.append_batch(&batch).unwrap();
    let reader = wal.iter_from(1).unwrap();
    let metrics = wal.metrics();
    assert_eq!(metrics.entries_appended, 22);
    assert_eq!(metrics.bytes_appended, 20 * 40 + 2 * 19);
    // One thread: a group per call, each synced once.
    assert_eq!(metrics.groups, 21);
    assert_eq!(metrics.fsyncs, 21);
    assert_eq!(metrics.fsync_latency.count, 21);
    assert_eq!(metrics.group_entries.count, 21);
    assert_eq!(metrics.group_entries.max, 2);
    assert_eq!(metrics.group_bytes.max, 40);
    assert_eq!(metrics.append_latency.count, 21);
    assert!(
        metrics.append_latency.p50 > 0 && metrics.append_latency.p50 <= metrics.append_latency.max
    );
    // 256-byte segments hold 6 entries of 40 bytes.
    assert_eq!(metrics.segments, wal.segments().len() as u64);
    assert_eq!(metrics.rotations, metrics.segments - 1);
    assert_eq!(metrics.bytes_on_disk, 20 * 40 + 2 * 19);
    assert_eq!((metrics.written_seq, metrics.durable_seq), (22, 22));
    assert_eq!(metrics.open_readers, 1);
    drop(reader);
    assert_eq!(wal.metrics().open_readers, 0);
    wal.truncate_front(10).unwrap();
    wal.truncate_back(20).unwrap();
    wal.truncate_back(100).unwrap(); // nothing to remove: not counted
    let metrics = wal.metrics();
    assert_eq!(metrics.truncations, 2);
    assert_eq!(metrics.poisonings, 0);
    assert!(metrics.bytes_on_disk < 20 * 40);
}

#[test]
fn a_poisoning_and_a_refused_group_are_counted_and_traced() {
    let sim = SimFs::new();
    let wal = Wal::open("/log", sim_options(&sim)).unwrap();
    let capture = TraceCapture::at(tracing::Level::WARN);
    tracing::subscriber::with_default(capture.clone(), || {
        wal.append(Op::Put, b"k", b"1").unwrap();
        sim.set_fault(Some(SimFault {
            target: Target::Kind(Call::WriteAt),
            nth: 1,
            kind: FaultKind::Enospc,
            persistence: Persistence::Once,
        }));
        let refused = wal.append(Op::Put, b"k", b"refused");
        assert!(
            refused.is_err(),
            "{refused:?}, strikes {}",
            sim.fault_strikes()
        );
        sim.set_fault(Some(SimFault {
            target: Target::Kind(Call::SyncData),
            nth: 1,
            kind: FaultKind::Eio,
            persistence: Persistence::Once,
        }));
        wal.append(Op::Put, b"k", b"lost").unwrap_err();
        wal.append(Op::Put, b"k", b"later").unwrap_err();
    });
    let metrics = wal.metrics();
    assert_eq!((metrics.refused_groups, metrics.poisonings), (1, 1));
    assert!(capture.contains("taken back"), "{capture:?}");
    let poisoned: Vec<String> = capture
        .lines()
        .into_iter()
        .filter(|line| line.contains("stopped accepting writes"))
        .collect();
    assert_eq!(poisoned.len(), 1, "traced once: {poisoned:?}");
    assert!(poisoned[0].contains("fsync"), "{poisoned:?}");
}

#[test]
fn a_slow_fsync_is_a_warning_naming_the_segment() {
    let sim = SimFs::new();
    let slow = DelayFs::new(Arc::new(sim), 7)
        .delay(Call::SyncData, Delay::exactly(Duration::from_millis(30)));
    let options = Options::default()
        .fs(Arc::new(slow))
        .slow_fsync(Duration::from_millis(20));
    let wal = Wal::open("/log", options).unwrap();
    let capture = TraceCapture::at(tracing::Level::WARN);
    tracing::subscriber::with_default(capture.clone(), || {
        wal.append(Op::Put, b"k", b"v").unwrap();
    });
    assert!(capture.contains("slow fdatasync"), "{capture:?}");
    assert!(capture.contains("segment-0001.log"), "{capture:?}");
    assert!(wal.metrics().fsync_latency.max >= 30_000_000);
    // Below the threshold: nothing.
    let fast = Wal::open("/fast", sim_options(&SimFs::new())).unwrap();
    let quiet = TraceCapture::at(tracing::Level::WARN);
    tracing::subscriber::with_default(quiet.clone(), || {
        fast.append(Op::Put, b"k", b"v").unwrap();
    });
    assert!(quiet.lines().is_empty(), "{quiet:?}");
}

#[test]
fn open_traces_what_recovery_found() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), Options::default()).unwrap();
    wal.append(Op::Put, b"k", b"v").unwrap();
    wal.close().unwrap();
    drop(wal);
    // A torn tail: half an entry after the last one.
    let segment = dir.path().join("segment-0001.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes.extend_from_slice(&[0x11, 0x22, 0x33, 0x44, 0x55, 0, 0, 0, 1]);
    std::fs::write(&segment, bytes).unwrap();
    let capture = TraceCapture::at(tracing::Level::INFO);
    tracing::subscriber::with_default(capture.clone(), || {
        Wal::open(dir.path(), Options::default()).unwrap();
    });
    assert!(capture.contains("opened"), "{capture:?}");
    assert!(capture.contains("entries=1"), "{capture:?}");
    assert!(capture.contains("torn tail"), "{capture:?}");
}
