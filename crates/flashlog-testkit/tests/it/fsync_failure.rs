//! A failed fsync: the whole group gets the error, the log is poisoned, nothing
//! later is acknowledged, and fsync is never retried as if it proved anything.

use std::sync::{Arc, Barrier};

use flashlog_testkit::{
    check_recovered, Call, CrashModel, FaultKind, LogModel, Persistence, SimFault, SimFs, Target,
};
use flashlog_wal::{Error, Op, SyncPolicy, Wal};

use crate::common::{options, reopen, DIR};

fn fsync_fault(nth: u64, kind: FaultKind) -> SimFault {
    SimFault {
        target: Target::Kind(Call::SyncData),
        nth,
        kind,
        persistence: Persistence::Once,
    }
}

#[test]
fn an_fsync_eio_fails_the_whole_group_and_poisons_the_log() {
    const THREADS: usize = 8;
    let sim = SimFs::new();
    let wal = Arc::new(Wal::open(DIR, options(&sim, 1 << 20, SyncPolicy::Always)).unwrap());
    wal.append(Op::Put, b"before", b"").unwrap();
    let syncs_before = sim.pending().len();
    assert_eq!(syncs_before, 0);
    sim.set_fault(Some(fsync_fault(1, FaultKind::Eio)));
    let barrier = Arc::new(Barrier::new(THREADS));
    let handles: Vec<_> = (0..THREADS)
        .map(|i| {
            let wal = Arc::clone(&wal);
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                wal.append(Op::Put, format!("t{i}").as_bytes(), b"v")
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // Only the first fsync fails; no append may be acknowledged by a later fsync
    // retried over the lost one.
    assert!(
        results.iter().all(Result::is_err),
        "every append of the failed group and after it fails: {results:?}"
    );
    let io = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Io { op: "fsync", .. })))
        .count();
    assert_eq!(io, 1, "the leader reports the fsync error: {results:?}");
    assert!(matches!(
        wal.append(Op::Put, b"after", b""),
        Err(Error::Poisoned { .. })
    ));
    assert!(matches!(wal.sync(), Err(Error::Poisoned { .. })));
    assert!(wal.close().is_err(), "close reports the poisoning");
    drop(wal);
    // Reopen: only the acknowledged entry is promised.
    let mut model = LogModel::new();
    model.issue(Op::Put, b"before", b"");
    model.ack_all();
    let image = sim.crash(CrashModel::DropUnsynced);
    let recovered = reopen(&image, 1 << 20, Default::default()).unwrap();
    check_recovered(&recovered, &model).unwrap();
    // And the log works again after the reopen.
    let wal = Wal::open(DIR, options(&image, 1 << 20, SyncPolicy::Always)).unwrap();
    assert_eq!(wal.append(Op::Put, b"again", b"").unwrap(), 2);
}

/// What the core does with `EINTR` from fsync: it must be a failure, since the
/// kernel may have dropped the dirty pages; the core does not retry it.
#[test]
fn an_fsync_eintr_is_a_failure_not_a_retry() {
    let sim = SimFs::new();
    let wal = Wal::open(DIR, options(&sim, 1 << 20, SyncPolicy::Always)).unwrap();
    sim.set_fault(Some(fsync_fault(1, FaultKind::Eintr)));
    let err = wal.append(Op::Put, b"k", b"v").unwrap_err();
    match &err {
        Error::Io { op, source, .. } => {
            assert_eq!(*op, "fsync");
            assert_eq!(source.kind(), std::io::ErrorKind::Interrupted);
        }
        other => panic!("expected the fsync error, got {other}"),
    }
    assert_eq!(sim.fault_strikes(), 1);
    assert!(matches!(
        wal.append(Op::Put, b"k", b"v"),
        Err(Error::Poisoned { .. })
    ));
}

/// Reads and writes interrupted by `EINTR` are retried by the core and succeed.
#[test]
fn interrupted_reads_and_writes_are_retried() {
    for kind in [Call::WriteAt, Call::ReadAt] {
        let sim = SimFs::new();
        {
            let wal = Wal::open(DIR, options(&sim, 1 << 20, SyncPolicy::Always)).unwrap();
            wal.append(Op::Put, b"a", b"1").unwrap();
        }
        sim.set_fault(Some(SimFault {
            target: Target::Kind(kind),
            nth: 1,
            kind: FaultKind::Eintr,
            persistence: Persistence::Forever,
        }));
        let wal = Wal::open(DIR, options(&sim, 1 << 20, SyncPolicy::Always)).unwrap();
        assert_eq!(wal.append(Op::Put, b"b", b"2").unwrap(), 2, "{kind:?}");
        assert_eq!(wal.read(1).unwrap().value(), b"1", "{kind:?}");
        assert!(sim.fault_strikes() > 0, "{kind:?}");
    }
}
