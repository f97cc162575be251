//! A loom model of the real group commit.
//!
//! Built with `RUSTFLAGS="--cfg loom"`, the library takes its locks, condition
//! variables, atomics, parked threads and thread-local slots from loom
//! (`src/sync.rs`), and this test drives the public `Wal::append` of a log on the
//! simulated file system from several threads: loom runs every interleaving of
//! their synchronisation (up to a preemption bound) through the real
//! `Shared::commit`, `State::enqueue` and `waiters.rs`. No copy of that code lives
//! here, so a regression in it fails this test.
//!
//! Checked in every interleaving:
//! - no `append` returns `Ok(seq)` before the entries `1..=seq` are durable (read
//!   back from the simulated disk's synced bytes at that moment);
//! - no deadlock or lost wakeup (loom fails a run in which every thread blocks),
//!   and every appender returns;
//! - sequence numbers are handed out once each, and a thread's are increasing;
//! - after a failed fsync, no later `append` of any thread returns `Ok`, and the
//!   failed group's appenders all get an error.
//!
//! `.ci/run` runs it: `RUSTFLAGS="--cfg loom" cargo test -p flashlog-wal --test
//! loom --release` (in a target directory of its own). Without `--cfg loom` the one
//! test here is ignored and says so.

#[cfg(not(loom))]
#[test]
#[ignore = "needs --cfg loom: RUSTFLAGS=\"--cfg loom\" cargo test -p flashlog-wal --test loom --release (.ci/run runs it)"]
fn group_commit_model() {}

#[cfg(loom)]
mod model {
    use std::path::Path;
    use std::sync::Arc;

    use flashlog_testkit::{Call, FaultKind, Persistence, SimFault, SimFs, Target};
    use flashlog_wal::{codec, Error, Op, Options, Wal};

    const SEGMENT: &str = "/log/segment-0001.log";

    /// How many entries the simulated disk holds durably, counted from the start
    /// of the first segment (all the model's entries fit in it).
    fn durable_entries(sim: &SimFs) -> u64 {
        let bytes = sim.read_durable(Path::new(SEGMENT)).unwrap_or_default();
        let mut rest = &bytes[..];
        let mut count = 0;
        while let Ok(entry) = codec::decode(rest) {
            rest = &rest[entry.len..];
            count += 1;
        }
        count
    }

    /// What one appender saw: each append's result, in order.
    type Outcomes = Vec<Result<u64, String>>;

    /// One appender: `per_thread` appends, each checked against the disk the
    /// moment it returns.
    fn appender(wal: &Wal, sim: &SimFs, thread: u8, per_thread: u8) -> Outcomes {
        (0..per_thread)
            .map(|i| match wal.append(Op::Put, &[thread], &[i]) {
                Ok(seq) => {
                    let durable = durable_entries(sim);
                    assert!(
                        durable >= seq,
                        "append returned Ok({seq}) with {durable} entries durable"
                    );
                    Ok(seq)
                }
                Err(err) => Err(describe(&err)),
            })
            .collect()
    }

    fn describe(err: &Error) -> String {
        match err {
            Error::Poisoned { .. } => "poisoned".into(),
            Error::Io { .. } => "io".into(),
            other => panic!("unexpected error from append: {other}"),
        }
    }

    /// Explores `model` under loom with `bound` preemptions: each interleaving
    /// opens a fresh log on the simulated file system, sets the
    /// `fail_sync`-th fsync after the open to fail (the open's own syncs are not
    /// the model's), and hands both to `model`. Prints how many interleavings
    /// it ran.
    fn explore(
        bound: usize,
        label: &str,
        fail_sync: Option<u64>,
        model: impl Fn(&SimFs, Arc<Wal>) + Send + Sync + 'static,
    ) {
        let mut builder = loom::model::Builder::new();
        builder.preemption_bound = Some(bound);
        let iterations = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&iterations);
        builder.check(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let sim = SimFs::new();
            let options = Options::default().fs(Arc::new(sim.clone())).preallocate(0);
            let wal = Arc::new(Wal::open("/log", options).expect("open"));
            sim.set_fault(fail_sync.map(|nth| SimFault {
                target: Target::Kind(Call::SyncData),
                nth,
                kind: FaultKind::Eio,
                persistence: Persistence::Once,
            }));
            model(&sim, wal);
        });
        let iterations = iterations.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!("{label}: {iterations} interleavings");
    }

    /// Runs `threads` appenders (the model's main thread is one of them), with
    /// the `fail_sync`-th fsync of the segments failing if given.
    fn run(threads: u8, per_thread: u8, fail_sync: Option<u64>) {
        let label = format!("{threads} threads x {per_thread}, fsync {fail_sync:?} failing");
        explore(3, &label, fail_sync, move |sim, wal| {
            let handles: Vec<_> = (1..threads)
                .map(|thread| {
                    let (wal, sim) = (Arc::clone(&wal), sim.clone());
                    loom::thread::spawn(move || appender(&wal, &sim, thread, per_thread))
                })
                .collect();
            let mut outcomes = vec![appender(&wal, sim, 0, per_thread)];
            outcomes.extend(handles.into_iter().map(|h| h.join().expect("appender")));
            check(&outcomes, fail_sync.is_some(), durable_entries(sim));
        });
    }

    fn check(outcomes: &[Outcomes], failed: bool, durable: u64) {
        let mut seqs: Vec<u64> = Vec::new();
        for thread in outcomes {
            let oks: Vec<u64> = thread.iter().filter_map(|r| r.clone().ok()).collect();
            assert!(oks.windows(2).all(|w| w[0] < w[1]), "{thread:?}");
            // Once a thread saw an error, it never sees Ok again.
            if let Some(first_err) = thread.iter().position(Result::is_err) {
                assert!(thread[first_err..].iter().all(Result::is_err), "{thread:?}");
            }
            seqs.extend(oks);
        }
        seqs.sort_unstable();
        assert!(
            seqs.windows(2).all(|w| w[0] != w[1]),
            "a seq given twice: {seqs:?}"
        );
        let total: usize = outcomes.iter().map(Vec::len).sum();
        if failed {
            // The failed fsync's group gets the I/O error, once per appender in
            // it; every Ok came from a group synced before it, so the Ok seqs are
            // exactly 1..=n, all durable.
            let io = outcomes
                .iter()
                .flatten()
                .filter(|r| *r == &Err("io".into()));
            assert_eq!(io.count(), 1, "{outcomes:?}");
            assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
            assert!(durable >= seqs.len() as u64);
        } else {
            assert_eq!(seqs, (1..=total as u64).collect::<Vec<_>>(), "{outcomes:?}");
            assert_eq!(durable, total as u64);
        }
    }

    /// A blocking appender and a submitter that waits on its receipt, with the
    /// log's syncer thread leading the submitter's groups: three threads
    /// through the real commit, the receipts and the syncer's hand-over.
    fn run_mixed(submits: u8, fail_sync: Option<u64>) {
        let label = format!("appender + {submits} submits + syncer, fsync {fail_sync:?} failing");
        explore(2, &label, fail_sync, move |sim, wal| {
            let appender = {
                let (wal, sim) = (Arc::clone(&wal), sim.clone());
                loom::thread::spawn(move || appender(&wal, &sim, 1, 1))
            };
            // Refused at once once the log is poisoned.
            let receipts: Vec<_> = (0..submits)
                .map(|i| wal.submit(Op::Put, &[0], &[i]))
                .collect();
            let mut outcomes: Outcomes = Vec::new();
            for receipt in receipts {
                outcomes.push(match receipt.and_then(|receipt| receipt.wait()) {
                    Ok(seqs) => {
                        let durable = durable_entries(sim);
                        assert!(
                            durable >= *seqs.end(),
                            "{seqs:?} resolved, {durable} durable"
                        );
                        Ok(*seqs.end())
                    }
                    Err(err) => Err(describe(&err)),
                });
            }
            let appended = appender.join().expect("appender");
            let failed = fail_sync.is_some();
            let all = [outcomes, appended];
            if failed {
                // The receipts of a failed group hold the poisoning, never Ok
                // after it; the blocking appender leading it (if it did) the
                // I/O error itself.
                for thread in &all {
                    if let Some(first_err) = thread.iter().position(Result::is_err) {
                        assert!(thread[first_err..].iter().all(Result::is_err), "{all:?}");
                    }
                }
                assert!(all.iter().flatten().any(Result::is_err), "{all:?}");
            } else {
                let mut seqs: Vec<u64> = all
                    .iter()
                    .flatten()
                    .map(|r| r.clone().expect("no fsync fails in this model"))
                    .collect();
                seqs.sort_unstable();
                let total = u64::from(submits) + 1;
                assert_eq!(seqs, (1..=total).collect::<Vec<_>>());
                assert_eq!(durable_entries(sim), total);
            }
            drop(wal);
        });
    }

    #[test]
    fn submitter_appender_and_syncer() {
        run_mixed(1, None);
    }

    #[test]
    fn two_submits_appender_and_syncer() {
        run_mixed(2, None);
    }

    #[test]
    fn submitter_appender_and_syncer_first_fsync_fails() {
        run_mixed(1, Some(1));
    }

    #[test]
    fn two_appenders() {
        run(2, 1, None);
    }

    #[test]
    fn three_appenders() {
        run(3, 1, None);
    }

    #[test]
    fn two_appenders_two_appends_each() {
        run(2, 2, None);
    }

    #[test]
    fn first_fsync_fails() {
        run(3, 1, Some(1));
    }

    #[test]
    fn second_fsync_fails() {
        run(2, 2, Some(2));
    }
}
