//! Receipts awaited from tokio tasks on a multi-thread runtime of two workers (the
//! shape of a service: many tasks, few threads, none of them blocking on the log).
//! tokio is a dev-dependency of this crate only: `flashlog-wal` has no runtime
//! dependency, its `Receipt` is a plain `Future` woken by the thread that finished
//! the fsync.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flashlog_testkit::{faulty_disk_options, AfterFailure, Counting, FaultyDisk};
use flashlog_wal::{Error, Op, Options, SyncPolicy, Wal};

/// Tasks, as many as the benchmark runs.
const TASKS: usize = 64;

fn key(task: usize) -> Vec<u8> {
    format!("task-{task:02}").into_bytes()
}

fn value(task: usize, i: usize) -> Vec<u8> {
    format!("entry {i} of task {task}").into_bytes()
}

/// Every fsync takes at least 1 ms (a disk's latency, on any file system), and
/// none fails unless `fail_after` is called; counting only fsyncs.
fn slow_syncs() -> Arc<FaultyDisk> {
    let mut fs = FaultyDisk::failing(0, Counting::SyncsOnly, AfterFailure::FailEveryLater);
    Arc::get_mut(&mut fs).unwrap().sync_delay = Duration::from_millis(1);
    fs
}

/// Whether `err` is the log poisoned by a failed fsync.
fn poisoned_by_fsync(err: &Error) -> bool {
    matches!(err, Error::Poisoned { cause } if matches!(**cause, Error::Io { op: "fsync", .. }))
}

/// 64 tasks on 2 workers each submit 20 entries and await every receipt: all
/// resolve `Ok` with distinct sequence numbers 1..=1280, each task's in its own
/// order; the groups shared fsyncs; the log reopens with exactly those entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_tasks_on_two_workers_await_their_receipts() {
    const PER_TASK: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let fs = slow_syncs();
    let wal = Arc::new(Wal::open(dir.path(), faulty_disk_options(&fs)).unwrap());
    let syncs_at_open = fs.syncs.load(Ordering::SeqCst);
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let wal = Arc::clone(&wal);
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for i in 0..PER_TASK {
                    // Every other task keeps two receipts outstanding.
                    if task % 2 == 1 && i % 2 == 0 {
                        let first = wal.submit(Op::Put, &key(task), &value(task, i))?;
                        let second = wal.submit(Op::Put, &key(task), &value(task, i + 1))?;
                        seqs.push(*first.await?.start());
                        seqs.push(*second.await?.start());
                    } else if task % 2 == 0 {
                        let receipt = wal.submit(Op::Put, &key(task), &value(task, i))?;
                        let durable = receipt.await?;
                        assert_eq!(durable.start(), durable.end());
                        seqs.push(*durable.start());
                    }
                }
                Ok::<_, Error>(seqs)
            })
        })
        .collect();
    // seq -> (task, index in the task)
    let mut owners = BTreeMap::new();
    for (task, handle) in tasks.into_iter().enumerate() {
        let seqs = handle.await.unwrap().unwrap();
        assert_eq!(seqs.len(), PER_TASK, "task {task}");
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "task {task}: its entries out of its order: {seqs:?}"
        );
        for (i, seq) in seqs.into_iter().enumerate() {
            assert!(owners.insert(seq, (task, i)).is_none(), "seq {seq} twice");
        }
    }
    let entries = (TASKS * PER_TASK) as u64;
    assert_eq!(
        owners.keys().copied().collect::<Vec<_>>(),
        (1..=entries).collect::<Vec<_>>(),
        "distinct and gap-free"
    );
    assert_eq!(wal.durable_seq(), entries);
    let syncs = fs.syncs.load(Ordering::SeqCst) - syncs_at_open;
    assert!(
        syncs * 8 <= entries,
        "{syncs} fsyncs for {entries} entries: the tasks did not share them"
    );
    eprintln!("{entries} entries from {TASKS} tasks on 2 workers: {syncs} fsyncs");
    Arc::into_inner(wal).unwrap().close().unwrap();

    let reopened = Wal::open(dir.path(), Options::default()).unwrap();
    assert_eq!((reopened.first_seq(), reopened.last_seq()), (1, entries));
    for entry in reopened.iter_from(1).unwrap() {
        let entry = entry.unwrap();
        let (task, i) = owners[&entry.seq()];
        assert_eq!(entry.key(), key(task), "seq {}", entry.seq());
        assert_eq!(entry.value(), value(task, i), "seq {}", entry.seq());
    }
    assert_eq!(reopened.iter_from(1).unwrap().count() as u64, entries);
}

/// Under `Manual` the receipts of all 64 tasks (two each) are outstanding when the
/// one fsync that would cover them fails: every awaited receipt resolves with the
/// log poisoned by that fsync, and nothing more is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_fails_every_awaited_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let fs = slow_syncs();
    let options = faulty_disk_options(&fs).sync_policy(SyncPolicy::Manual);
    let wal = Arc::new(Wal::open(dir.path(), options).unwrap());
    let submitted = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (wal, submitted) = (Arc::clone(&wal), Arc::clone(&submitted));
            tokio::spawn(async move {
                let first = wal.submit(Op::Put, &key(task), &value(task, 0)).unwrap();
                let second = wal.submit(Op::Put, &key(task), &value(task, 1)).unwrap();
                submitted.fetch_add(1, Ordering::SeqCst);
                [first.await, second.await]
            })
        })
        .collect();
    while submitted.load(Ordering::SeqCst) < TASKS {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    fs.fail_after(1);
    let sync = {
        let wal = Arc::clone(&wal);
        tokio::task::spawn_blocking(move || wal.sync())
    };
    let err = sync.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Io { op: "fsync", .. }), "{err}");
    let mut failed = 0;
    for handle in tasks {
        for result in handle.await.unwrap() {
            let err = result.unwrap_err();
            assert!(poisoned_by_fsync(&err), "{err}");
            failed += 1;
        }
    }
    assert_eq!(failed, 2 * TASKS);
    assert_eq!(wal.durable_seq(), 0);
    assert!(matches!(
        wal.submit(Op::Put, b"late", b""),
        Err(Error::Poisoned { .. })
    ));
}

/// Under `Always`, with the syncer thread leading the groups: 64 tasks submit and
/// await until the log fails them; the 6th fsync from now fails. Every task ends
/// with an error (its receipt's, or a refused submit), every receipt that
/// resolved with an error names the failed fsync, and everything acknowledged
/// before it is in the reopened log, at its sequence number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fsync_under_always_fails_the_waiting_tasks_and_keeps_the_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let fs = slow_syncs();
    let wal = Arc::new(Wal::open(dir.path(), faulty_disk_options(&fs)).unwrap());
    fs.fail_after(6);
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let wal = Arc::clone(&wal);
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..10_000 {
                    let receipt = match wal.submit(Op::Put, &key(task), &value(task, i)) {
                        Ok(receipt) => receipt,
                        Err(refused) => return (acked, refused, false),
                    };
                    match receipt.await {
                        Ok(seqs) => acked.push((*seqs.start(), i)),
                        Err(failed) => return (acked, failed, true),
                    }
                }
                panic!("task {task}: 10,000 entries and no failure");
            })
        })
        .collect();
    let mut acked = BTreeMap::new();
    let mut awaited_errors = 0;
    for (task, handle) in tasks.into_iter().enumerate() {
        let (task_acked, err, from_receipt) = handle.await.unwrap();
        if from_receipt {
            assert!(poisoned_by_fsync(&err), "task {task}: {err}");
            awaited_errors += 1;
        } else {
            assert!(matches!(err, Error::Poisoned { .. }), "task {task}: {err}");
        }
        for (seq, i) in task_acked {
            assert!(acked.insert(seq, (task, i)).is_none(), "seq {seq} twice");
        }
    }
    assert!(awaited_errors > 0, "no awaited receipt saw the failure");
    assert!(fs.failed());
    let last_acked = acked.keys().next_back().copied().unwrap_or(0);
    assert!(
        wal.durable_seq() >= last_acked,
        "a receipt resolved Ok beyond the durable edge"
    );
    drop(wal);

    let reopened = Wal::open(dir.path(), Options::default()).unwrap();
    assert!(reopened.last_seq() >= last_acked);
    for (seq, (task, i)) in acked {
        let entry = reopened.read(seq).unwrap();
        assert_eq!(
            (entry.key(), entry.value()),
            (&key(task)[..], &value(task, i)[..]),
            "seq {seq}"
        );
    }
}
