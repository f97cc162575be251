//! A full disk is not the end: a group whose write fails with ENOSPC is refused
//! (its appenders and receipts get the error, naming the segment), its bytes are
//! taken back, and the same open log appends again once there is space. A failed
//! fsync still poisons (`group_commit::poisoned_keeps_the_kind_of_the_failed_fsync`).
//! The real-disk version is the testkit's `enospc` (a small tmpfs, needs root).

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use flashlog_testkit::{
    Call, CallOn, CrashModel, Delay, DelayFs, FaultKind, HookFs, Hooks, Persistence, SimFault,
    SimFs, Target,
};
use flashlog_wal::{Batch, Error, Op, Options, SyncPolicy, Wal};

fn full_disk(nth: u64, persistence: Persistence) -> Option<SimFault> {
    Some(SimFault {
        target: Target::Kind(Call::WriteAt),
        nth,
        kind: FaultKind::Enospc,
        persistence,
    })
}

fn options(sim: &SimFs) -> Options {
    Options::default().fs(Arc::new(sim.clone())).preallocate(0)
}

fn assert_full(err: &Error, segment: &str) {
    assert_eq!(err.io_kind(), Some(io::ErrorKind::StorageFull), "{err}");
    let Error::Io { path, .. } = err else {
        panic!("{err}")
    };
    assert!(path.ends_with(segment), "{err}");
}

fn values(wal: &Wal) -> Vec<(u64, Vec<u8>)> {
    wal.iter_from(wal.first_seq())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.seq(), e.value().to_vec())
        })
        .collect()
}

#[test]
fn a_full_disk_refuses_the_append_and_the_same_log_appends_again_with_space() {
    for policy in [SyncPolicy::Always, SyncPolicy::Manual] {
        let sim = SimFs::new();
        let wal = Wal::open("/log", options(&sim).sync_policy(policy)).unwrap();
        for i in 1..=3u8 {
            wal.append(Op::Put, b"k", &[i]).unwrap();
        }
        sim.set_fault(full_disk(1, Persistence::Forever));
        let err = wal.append(Op::Put, b"k", b"refused").unwrap_err();
        assert_full(&err, "segment-0001.log");
        // Still full: refused again, not poisoned.
        let err = wal.append(Op::Put, b"k", b"refused").unwrap_err();
        assert_full(&err, "segment-0001.log");
        let receipt = wal.submit(Op::Put, b"k", b"refused").unwrap();
        assert_full(&receipt.wait().unwrap_err(), "segment-0001.log");
        assert_eq!(wal.last_seq(), 3, "{policy:?}");
        // Space again: the numbers the refused entries had go to new ones.
        sim.set_fault(None);
        assert_eq!(wal.append(Op::Put, b"k", &[4]).unwrap(), 4);
        let receipt = wal.submit(Op::Put, b"k", &[5]).unwrap();
        wal.sync().unwrap();
        assert_eq!(receipt.wait().unwrap(), 5..=5);
        wal.close().unwrap();
        let wal = Wal::open("/log", options(&sim)).unwrap();
        let expected: Vec<_> = (1..=5u8).map(|i| (u64::from(i), vec![i])).collect();
        assert_eq!(values(&wal), expected, "{policy:?}");
    }
}

/// A disk that fills up in the middle of a write, as a real one does: once
/// armed, the next write to a segment lands only its first half, and every write
/// after it fails with ENOSPC, until the disk is emptied.
#[derive(Debug, Default)]
struct FillsUp {
    /// 0: room; 1: the next segment write is cut short; 2: full.
    state: AtomicU8,
}

impl Hooks for FillsUp {
    fn before(&self, on: &CallOn<'_>) -> io::Result<()> {
        if on.call == Call::WriteAt && self.state.load(Ordering::SeqCst) == 2 {
            return Err(io::Error::from_raw_os_error(28));
        }
        Ok(())
    }

    fn write_len(&self, len: usize) -> usize {
        match self
            .state
            .compare_exchange(1, 2, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => len.div_ceil(2),
            Err(_) => len,
        }
    }
}

/// A write that fails part way leaves bytes (whole entries among them: the first
/// half of the batch) that must not come back after a crash: the cut is synced
/// before the appender hears of the failure.
#[test]
fn the_bytes_a_refused_group_left_are_cut_durably() {
    let sim = SimFs::new();
    let disk = Arc::new(FillsUp::default());
    let fs = HookFs::wrap(Arc::new(sim.clone()), Arc::clone(&disk));
    let opts = Options::default().fs(Arc::new(fs)).preallocate(0);
    let wal = Wal::open("/log", opts).unwrap();
    wal.append(Op::Put, b"k", b"kept").unwrap();
    let durable = sim.read_durable("/log/segment-0001.log").unwrap();
    disk.state.store(1, Ordering::SeqCst);
    let mut batch = Batch::new();
    for i in 0..8u8 {
        batch.put(b"k", &[i; 10]);
    }
    let err = wal.append_batch(&batch).unwrap_err();
    assert_full(&err, "segment-0001.log");
    assert!(wal.poisoned().is_none(), "{err}");
    // The half that landed held whole entries; what is durable now is exactly
    // what was before the batch, and a crash brings none of them back.
    assert_eq!(sim.read_durable("/log/segment-0001.log").unwrap(), durable);
    for seed in 0..32 {
        // Any subset of what was not synced may have reached the disk.
        let image = sim.crash(CrashModel::RandomSubset { seed });
        let reopened = Wal::open("/log", options(&image)).unwrap();
        assert_eq!(values(&reopened), [(1, b"kept".to_vec())], "seed {seed}");
    }
    // Emptied: the same log takes the batch now, at the refused numbers.
    disk.state.store(0, Ordering::SeqCst);
    assert_eq!(wal.append_batch(&batch).unwrap(), 2..=9);
    wal.close().unwrap();
}

/// Appenders racing a disk that fills and empties: every acknowledged entry is in
/// the reopened log with its value, and nothing refused is. (One segment: a full
/// disk during a rotation poisons, see below.)
#[test]
fn appenders_racing_a_full_disk_keep_exactly_what_was_acknowledged() {
    race_a_filling_disk(false);
}

/// The same, with random delays before writes and fsyncs: they widen the gap
/// between an appender woken to lead the next group and its taking the lock,
/// in which another thread may lead that group and have it refused. The
/// appender must then learn of the refusal from the rollback count it noted
/// when it queued (`Rollbacks::refused`), not take its reused number for its own.
#[test]
fn appenders_racing_a_full_disk_with_delays_keep_exactly_what_was_acknowledged() {
    race_a_filling_disk(true);
}

fn race_a_filling_disk(delays: bool) {
    let sim = SimFs::new();
    let fs: Arc<dyn flashlog_wal::fs::Fs> = if delays {
        let delay = Delay::up_to(std::time::Duration::from_micros(300)).with_probability(0.5);
        Arc::new(
            DelayFs::new(Arc::new(sim.clone()), 11)
                .delay(Call::WriteAt, delay)
                .delay(Call::SyncData, delay),
        )
    } else {
        Arc::new(sim.clone())
    };
    let wal = Arc::new(Wal::open("/log", Options::default().fs(fs).preallocate(0)).unwrap());
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    // The writers keep going until the disk was full for one of their appends
    // a few times and they wrote at least 300 each.
    let refusals = Arc::new(AtomicU32::new(0));
    let writers: Vec<_> = (0..4u8)
        .map(|t| {
            let (wal, acked, refusals) =
                (Arc::clone(&wal), Arc::clone(&acked), Arc::clone(&refusals));
            thread::spawn(move || {
                let mut refused = 0;
                for i in 0..u16::MAX {
                    if i >= 300 && refusals.load(Ordering::SeqCst) >= 8 {
                        break;
                    }
                    let value = [&[t][..], &i.to_be_bytes()].concat();
                    match wal.append(Op::Put, b"k", &value) {
                        Ok(seq) => {
                            assert!(acked.lock().unwrap().insert(seq, value).is_none());
                        }
                        Err(err) if err.io_kind() == Some(io::ErrorKind::StorageFull) => {
                            refused += 1;
                            refusals.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(err) => panic!("{err}"),
                    }
                }
                refused
            })
        })
        .collect();
    let mut round = 0u64;
    while !writers.iter().all(|writer| writer.is_finished()) {
        round += 1;
        thread::sleep(std::time::Duration::from_micros(300));
        let fault = round.is_multiple_of(2).then(|| SimFault {
            target: Target::Kind(Call::WriteAt),
            nth: 1 + round % 3,
            kind: FaultKind::Enospc,
            persistence: Persistence::Forever,
        });
        sim.set_fault(fault);
    }
    sim.set_fault(None);
    let refused: u32 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    let appended = acked.lock().unwrap().len() as u32 + refused;
    assert!(!matches!(
        wal.append(Op::Put, b"k", b"after"),
        Err(Error::Poisoned { .. })
    ));
    wal.close().unwrap();
    drop(wal);
    let mut expected = acked.lock().unwrap().clone();
    let last = expected.keys().next_back().copied().unwrap_or(0) + 1;
    expected.insert(last, b"after".to_vec());
    let reopened = Wal::open("/log", options(&sim)).unwrap();
    let got: BTreeMap<u64, Vec<u8>> = values(&reopened).into_iter().collect();
    assert_eq!(got, expected, "{refused} appends refused");
    assert!(refused >= 8, "the disk was full for only {refused} appends");
    eprintln!(
        "{refused} of {appended} appends refused, {} acknowledged, {round} rounds",
        expected.len() - 1
    );
}

/// The group left its segment for a new one and the write there failed: the old
/// segment is cut back, the new one stays as the empty active segment.
#[test]
fn a_group_refused_after_a_rotation_leaves_an_empty_active_segment() {
    let sim = SimFs::new();
    let opts = options(&sim).max_segment_size(100);
    let wal = Wal::open("/log", opts.clone()).unwrap();
    wal.append(Op::Put, b"k", &[1; 20]).unwrap(); // 38 bytes in segment 1
                                                  // The batch's first entry fits in segment 1, the second starts segment 2.
                                                  // Write calls: the chunk in segment 1, the side file and its copy naming
                                                  // segment 2, then the chunk in segment 2 (the 4th: full).
    sim.set_fault(full_disk(4, Persistence::Forever));
    let mut batch = Batch::new();
    batch.put(b"k", &[2; 20]);
    batch.put(b"k", &[3; 40]);
    let err = wal.append_batch(&batch).unwrap_err();
    assert_full(&err, "segment-0002.log");
    sim.set_fault(None);
    let segments = wal.segments();
    assert_eq!(segments.len(), 2);
    assert_eq!((segments[0].entries, segments[0].bytes), (1, 38));
    assert_eq!((segments[1].entries, segments[1].first_seq), (0, 2));
    assert_eq!(wal.append(Op::Put, b"k", &[4; 20]).unwrap(), 2);
    wal.close().unwrap();
    drop(wal);
    let reopened = Wal::open("/log", opts).unwrap();
    assert!(reopened.recovery_report().damage.is_empty());
    assert_eq!(values(&reopened), [(1, vec![1; 20]), (2, vec![4; 20])]);
}

/// A rotation that runs out of space while it writes the side file naming the
/// new segment is not taken back (the side file's copies may then differ): the
/// log is poisoned, as before, and reopens to everything acknowledged.
#[test]
fn a_full_disk_half_way_through_a_rotation_still_poisons() {
    let sim = SimFs::new();
    let opts = options(&sim).max_segment_size(100);
    let wal = Wal::open("/log", opts.clone()).unwrap();
    wal.append(Op::Put, b"k", &[1; 60]).unwrap();
    sim.set_fault(full_disk(1, Persistence::Forever));
    let err = wal.append(Op::Put, b"k", &[2; 60]).unwrap_err();
    assert_eq!(err.io_kind(), Some(io::ErrorKind::StorageFull), "{err}");
    assert!(matches!(
        wal.append(Op::Put, b"k", b""),
        Err(Error::Poisoned { .. })
    ));
    sim.set_fault(None);
    drop(wal);
    let reopened = Wal::open("/log", opts).unwrap();
    assert_eq!(values(&reopened), [(1, vec![1; 60])]);
}
