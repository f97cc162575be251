//! Durable receipts: `submit` queues and returns, the receipt resolves when the
//! entries are durable under the log's policy (blocking, as a future, or through
//! a callback), and with an error when they never will be.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::Duration;

use flashlog_testkit::{
    Call, CrashModel, Delay, DelayFs, FaultKind, Persistence, SimFault, SimFs, Target,
};
use flashlog_wal::{Batch, Error, Op, Options, SyncPolicy, Visibility, Wal};

/// A log under `SyncPolicy::Manual`: receipts resolve at the next `sync`.
fn manual_log(dir: &std::path::Path) -> Wal {
    Wal::open(dir, Options::default().sync_policy(SyncPolicy::Manual)).unwrap()
}

fn sim_options(sim: &SimFs) -> Options {
    Options::default().fs(Arc::new(sim.clone()))
}

/// Polls `future` on this thread until it is ready, parking in between: a
/// runtime of one thread, enough to show a receipt needs none.
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(thread::Thread, AtomicUsize);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.1.fetch_add(1, Ordering::SeqCst);
            self.0.unpark();
        }
    }
    let unpark = Arc::new(Unpark(thread::current(), AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&unpark));
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut Context::from_waker(&waker)) {
            return out;
        }
        thread::park_timeout(Duration::from_secs(10));
    }
}

#[test]
fn submitted_entries_get_their_numbers_at_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), Options::default()).unwrap();
    let a = wal.submit(Op::Put, b"a", b"1").unwrap();
    let mut batch = Batch::new();
    batch.put(b"b", b"2");
    batch.delete(b"a");
    let b = wal.submit_batch(&batch).unwrap();
    let empty = wal.submit_batch(&Batch::new()).unwrap();
    assert_eq!(a.seqs(), 1..=1);
    assert_eq!(b.seqs(), 2..=3);
    assert!(empty.seqs().is_empty());
    assert!(
        empty.is_resolved(),
        "an empty batch has nothing to wait for"
    );
    assert_eq!(b.wait().unwrap(), 2..=3);
    assert_eq!(a.wait().unwrap(), 1..=1);
    assert!(wal.durable_seq() >= 3);
    let keys: Vec<Vec<u8>> = wal
        .iter_from(1)
        .unwrap()
        .map(|e| e.unwrap().key().to_vec())
        .collect();
    assert_eq!(keys, [b"a".to_vec(), b"b".to_vec(), b"a".to_vec()]);
}

#[test]
fn the_three_ways_to_wait_each_resolve_once_with_the_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), Options::default()).unwrap();
    let blocking = wal.submit(Op::Put, b"k", b"1").unwrap();
    let future = wal.submit(Op::Put, b"k", b"2").unwrap();
    let callback = wal.submit(Op::Put, b"k", b"3").unwrap();
    let (tx, rx) = mpsc::channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    callback.on_durable(move |result| {
        counted.fetch_add(1, Ordering::SeqCst);
        tx.send(result).unwrap();
    });
    assert_eq!(blocking.wait().unwrap(), 1..=1);
    assert_eq!(block_on(future).unwrap(), 2..=2);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap().unwrap(),
        3..=3
    );
    wal.close().unwrap();
    thread::sleep(Duration::from_millis(20));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // A callback given after the entries are durable runs at once, here.
    let wal = Wal::open(dir.path(), Options::default()).unwrap();
    let receipt = wal.submit(Op::Put, b"k", b"4").unwrap();
    let seqs = receipt.seqs();
    while wal.durable_seq() < *seqs.end() {
        thread::sleep(Duration::from_millis(1));
    }
    thread::sleep(Duration::from_millis(5));
    let here = thread::current().id();
    let ran_on = Arc::new(Mutex::new(None));
    let record = Arc::clone(&ran_on);
    receipt.on_durable(move |result| {
        *record.lock().unwrap() = Some((thread::current().id(), result.unwrap()));
    });
    assert_eq!(*ran_on.lock().unwrap(), Some((here, 4..=4)));
}

#[test]
fn under_manual_a_receipt_waits_for_the_next_sync_and_readers_choose_their_edge() {
    let dir = tempfile::tempdir().unwrap();
    let wal = manual_log(dir.path());
    let receipt = wal.submit(Op::Put, b"k", b"v").unwrap();
    // The syncer writes it (readers at the written edge see it), but does not
    // sync it: under Manual that is the user's call.
    assert!(wal.wait_for(1, Duration::from_secs(10)).unwrap());
    assert_eq!(wal.written_seq(), 1);
    assert_eq!(wal.durable_seq(), 0);
    assert_eq!(wal.read(1).unwrap().value(), b"v");
    assert_eq!(wal.iter_from(1).unwrap().count(), 0);
    let written: Vec<u64> = wal
        .iter_from(1)
        .unwrap()
        .visibility(Visibility::Written)
        .map(|e| e.unwrap().seq())
        .collect();
    assert_eq!(written, [1]);
    thread::sleep(Duration::from_millis(20));
    assert!(!receipt.is_resolved(), "resolved before any sync");
    wal.sync().unwrap();
    // The sync's group resolved it before sync returned.
    assert!(receipt.is_resolved());
    assert_eq!(receipt.wait().unwrap(), 1..=1);
    assert_eq!(wal.durable_seq(), 1);
    assert_eq!(wal.iter_from(1).unwrap().count(), 1);
}

#[test]
fn under_interval_the_syncer_resolves_receipts_without_any_sync_call() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().sync_policy(SyncPolicy::Interval(Duration::from_millis(10)));
    let wal = Wal::open(dir.path(), options).unwrap();
    let receipts: Vec<_> = (0..20u8)
        .map(|i| wal.submit(Op::Put, &[i], b"v").unwrap())
        .collect();
    for (i, receipt) in receipts.into_iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(receipt.wait().unwrap(), seq..=seq);
    }
}

/// A Durable follower blocked at the end of the log wakes when a sync makes the
/// entry durable, a Written one as soon as it is written.
#[test]
fn followers_wake_at_their_own_edge() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(manual_log(dir.path()));
    let follow = |visibility| {
        let wal = Arc::clone(&wal);
        thread::spawn(move || {
            let mut tail = wal
                .iter_from(1)
                .unwrap()
                .visibility(visibility)
                .follow_timeout(Duration::from_secs(20));
            tail.next().map(|entry| entry.unwrap().seq())
        })
    };
    let written = follow(Visibility::Written);
    let durable = follow(Visibility::Durable);
    thread::sleep(Duration::from_millis(50));
    wal.append(Op::Put, b"k", b"v").unwrap();
    assert_eq!(written.join().unwrap(), Some(1));
    thread::sleep(Duration::from_millis(50));
    assert!(
        !durable.is_finished(),
        "a Durable follower saw an unsynced entry"
    );
    wal.sync().unwrap();
    assert_eq!(durable.join().unwrap(), Some(1));
}

#[test]
fn a_failed_fsync_resolves_every_outstanding_receipt_with_the_cause() {
    let sim = SimFs::new();
    let wal = Wal::open("/log", sim_options(&sim).sync_policy(SyncPolicy::Manual)).unwrap();
    let receipts: Vec<_> = (0..10u8)
        .map(|i| wal.submit(Op::Put, &[i], b"v").unwrap())
        .collect();
    assert!(wal.wait_for(10, Duration::from_secs(10)).unwrap());
    sim.set_fault(Some(SimFault {
        target: Target::Kind(Call::SyncData),
        nth: 1,
        kind: FaultKind::Eio,
        persistence: Persistence::Once,
    }));
    let err = wal.sync().unwrap_err();
    assert!(matches!(err, Error::Io { op: "fsync", .. }), "{err}");
    for receipt in receipts {
        let err = receipt.wait().unwrap_err();
        let Error::Poisoned { cause } = &err else {
            panic!("{err}")
        };
        assert!(matches!(**cause, Error::Io { op: "fsync", .. }), "{cause}");
        assert_eq!(err.io_kind(), Some(io::Error::from_raw_os_error(5).kind()));
    }
    assert!(matches!(
        wal.submit(Op::Put, b"late", b""),
        Err(Error::Poisoned { .. })
    ));
}

#[test]
fn close_resolves_every_receipt_and_a_receipt_outlives_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().sync_policy(SyncPolicy::Manual);
    let wal = Wal::open(dir.path(), options.clone()).unwrap();
    let kept: Vec<_> = (0..5u8)
        .map(|i| wal.submit(Op::Put, &[i], b"v").unwrap())
        .collect();
    // Dropped: the entry is made durable all the same.
    drop(wal.submit(Op::Put, b"dropped", b"v").unwrap());
    let outliving = wal.submit(Op::Put, b"last", b"v").unwrap();
    wal.close().unwrap();
    for (i, receipt) in kept.into_iter().enumerate() {
        assert!(receipt.is_resolved());
        assert_eq!(receipt.wait().unwrap(), i as u64 + 1..=i as u64 + 1);
    }
    drop(wal);
    assert_eq!(outliving.wait().unwrap(), 7..=7);
    let wal = Wal::open(dir.path(), options).unwrap();
    let keys: Vec<Vec<u8>> = wal
        .iter_from(6)
        .unwrap()
        .map(|e| e.unwrap().key().to_vec())
        .collect();
    assert_eq!(keys, [b"dropped".to_vec(), b"last".to_vec()]);
}

#[test]
fn dropping_the_log_resolves_receipts_too() {
    let dir = tempfile::tempdir().unwrap();
    let wal = manual_log(dir.path());
    let receipt = wal.submit(Op::Put, b"k", b"v").unwrap();
    drop(wal);
    assert_eq!(receipt.wait().unwrap(), 1..=1);
}

#[test]
fn truncate_back_refuses_the_receipts_of_what_it_removed() {
    let dir = tempfile::tempdir().unwrap();
    let wal = manual_log(dir.path());
    let receipts: Vec<_> = (0..5u8)
        .map(|i| wal.submit(Op::Put, &[i], b"old").unwrap())
        .collect();
    wal.truncate_back(3).unwrap();
    // The numbers go to new entries, whose sync must not resolve the old receipts.
    let new = wal.submit(Op::Put, b"new", b"3").unwrap();
    wal.sync().unwrap();
    let results: Vec<_> = receipts.into_iter().map(|r| r.wait()).collect();
    assert_eq!(results[0].as_ref().unwrap(), &(1..=1));
    assert_eq!(results[1].as_ref().unwrap(), &(2..=2));
    for result in &results[2..] {
        assert!(
            matches!(result, Err(Error::Truncated { first_cut: 3 })),
            "{result:?}"
        );
    }
    assert_eq!(new.wait().unwrap(), 3..=3);
}

/// Blocking appenders and a submitter share groups and fsyncs: with 1 ms
/// fsyncs, far fewer fsyncs than entries.
#[test]
fn blocking_appenders_and_submitters_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let fs = flashlog_testkit::FaultyFs::with_sync_delay(Duration::from_millis(1));
    let wal = Arc::new(Wal::open(dir.path(), flashlog_testkit::faulty_options(&fs)).unwrap());
    let base = fs.syncs.load(Ordering::SeqCst);
    let appenders: Vec<_> = (0..4)
        .map(|t| {
            let wal = Arc::clone(&wal);
            thread::spawn(move || {
                for i in 0..100u32 {
                    wal.append(Op::Put, &[t], &i.to_be_bytes()).unwrap();
                }
            })
        })
        .collect();
    let receipts: Vec<_> = (0..400u32)
        .map(|i| wal.submit(Op::Put, b"s", &i.to_be_bytes()).unwrap())
        .collect();
    for appender in appenders {
        appender.join().unwrap();
    }
    for receipt in receipts {
        receipt.wait().unwrap();
    }
    let syncs = fs.syncs.load(Ordering::SeqCst) - base;
    // 800 entries; a group per entry would be 800 fsyncs.
    assert!(syncs <= 200, "{syncs} fsyncs for 800 entries");
    assert_eq!(wal.durable_seq(), 800);
}

/// Entries whose receipts resolved `Ok` survive a power cut taken at that
/// moment, while a submitter keeps going.
#[test]
fn resolved_receipts_survive_a_crash_at_any_moment() {
    for round in 0..20u64 {
        let sim = SimFs::new();
        // Slow fsyncs: entries queue up behind each group.
        let slow = DelayFs::new(Arc::new(sim.clone()), round)
            .delay(Call::SyncData, Delay::exactly(Duration::from_micros(500)));
        let wal = Arc::new(Wal::open("/log", Options::default().fs(Arc::new(slow))).unwrap());
        let acked = Arc::new(AtomicUsize::new(0));
        let early = Arc::new(AtomicUsize::new(0));
        let submitter = {
            let (wal, acked, early) = (Arc::clone(&wal), Arc::clone(&acked), Arc::clone(&early));
            thread::spawn(move || {
                for i in 0..200u32 {
                    let (acked, early, log) =
                        (Arc::clone(&acked), Arc::clone(&early), Arc::clone(&wal));
                    let Ok(receipt) = wal.submit(Op::Put, b"k", &i.to_be_bytes()) else {
                        return;
                    };
                    receipt.on_durable(move |result| {
                        if let Ok(seqs) = result {
                            // Resolved only once an fsync covered it.
                            if log.durable_seq() < *seqs.end() {
                                early.fetch_add(1, Ordering::SeqCst);
                            }
                            acked.fetch_max(*seqs.end() as usize, Ordering::SeqCst);
                        }
                    });
                }
            })
        };
        thread::sleep(Duration::from_micros(200 * round));
        // What was acknowledged before the image was taken must be in it.
        let before = acked.load(Ordering::SeqCst) as u64;
        let image = sim.crash(CrashModel::DropUnsynced);
        submitter.join().unwrap();
        wal.close().unwrap();
        assert_eq!(
            early.load(Ordering::SeqCst),
            0,
            "receipts resolved before durable"
        );
        let reopened = Wal::open("/log", sim_options(&image)).unwrap();
        assert!(
            reopened.last_seq() >= before,
            "round {round}: {before} acknowledged, {} after the crash",
            reopened.last_seq()
        );
        for (i, entry) in reopened.iter_from(1).unwrap().enumerate() {
            assert_eq!(entry.unwrap().value(), &(i as u32).to_be_bytes());
        }
    }
}

/// The gap `publish_written` covers: under `Always` the leader publishes the
/// written edge without the lock, between its write and its fdatasync, and wakes
/// `Written` followers only if it sees them counted. A follower blocked at the
/// end must see the entry while the fsync (held 300 ms here) still runs, not when
/// the group ends; a `Durable` one only after.
#[test]
fn a_written_follower_wakes_during_the_fsync_not_after_it() {
    let sim = SimFs::new();
    let slow = DelayFs::new(Arc::new(sim), 3)
        .delay(Call::SyncData, Delay::exactly(Duration::from_millis(300)));
    let wal = Arc::new(Wal::open("/log", Options::default().fs(Arc::new(slow))).unwrap());
    for round in 1..=3u64 {
        let follower = {
            let wal = Arc::clone(&wal);
            thread::spawn(move || {
                let mut tail = wal
                    .iter_from(round)
                    .unwrap()
                    .visibility(Visibility::Written)
                    .follow_timeout(Duration::from_secs(20));
                let seq = tail.next().map(|entry| entry.unwrap().seq());
                (seq, wal.durable_seq())
            })
        };
        // The follower blocks first (counted), then the append starts.
        thread::sleep(Duration::from_millis(50));
        let started = std::time::Instant::now();
        wal.append(Op::Put, b"k", &[round as u8]).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
        let (seq, durable_then) = follower.join().unwrap();
        assert_eq!(seq, Some(round));
        assert_eq!(
            durable_then,
            round - 1,
            "the follower woke only after the fsync"
        );
    }
}
