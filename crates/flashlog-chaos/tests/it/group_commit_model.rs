//! A loom model of the group-commit handoff of `crates/flashlog-wal/src/writer.rs`
//! (`Shared::commit` and `State::enqueue`): one `Mutex<State>` with the queue, the
//! next sequence number, the synced-through watermark, `io_busy`, the poison flag
//! and the number and range of the group in flight, and two `Condvar`s
//! (`batch_done`), one per parity of the group number. A waiter waits on the
//! condvar of the group that will cover its entry (the one in flight, or the next);
//! the first waiter that finds no I/O under way becomes the leader, takes the whole
//! queue, does the "I/O" outside the lock, publishes the watermark (or poisons the
//! log and wakes everyone), then wakes its own group's waiters and exactly one
//! waiter of the next group (`notify_one`) to lead it.
//!
//! **This models writer.rs and must be updated with it**: a change to the order
//! of the checks in `commit` (reached, poisoned, io_busy, lead) or to where the
//! lock is released belongs here too.
//!
//! loom explores every interleaving (up to a preemption bound) and checks:
//! no appender returns `Ok` before its entry (and every earlier one) is durable;
//! no deadlock or lost wakeup (loom fails when every thread is blocked); every
//! appender terminates; after a failed I/O no I/O runs and no later `Ok` is given.

use loom::sync::{Arc, Condvar, Mutex};
use loom::thread;

/// Why an append failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// This appender led the group whose I/O failed.
    Io,
    /// An earlier I/O failed.
    Poisoned,
}

#[derive(Debug)]
struct State {
    next_seq: u64,
    queue: Vec<u64>,
    io_busy: bool,
    synced_seq: u64,
    poisoned: bool,
    /// Number of the group in flight (or the last one).
    batch: u64,
    /// Last sequence number the group in flight covers.
    batch_through: u64,
    /// Waiters blocked on each of `batch_done`.
    batch_waiters: [usize; 2],
}

/// What the model's disk holds: the entries made durable, in the order written.
#[derive(Debug, Default)]
struct Disk {
    durable: Vec<u64>,
    ios: usize,
    failed: bool,
}

struct Model {
    state: Mutex<State>,
    batch_done: [Condvar; 2],
    disk: Mutex<Disk>,
    /// The I/O (0 = first group commit) that fails, if any.
    fail_io: Option<usize>,
}

impl Model {
    fn new(fail_io: Option<usize>) -> Model {
        Model {
            state: Mutex::new(State {
                next_seq: 1,
                queue: Vec::new(),
                io_busy: false,
                synced_seq: 0,
                poisoned: false,
                batch: 0,
                batch_through: 0,
                batch_waiters: [0, 0],
            }),
            batch_done: [Condvar::new(), Condvar::new()],
            disk: Mutex::new(Disk::default()),
            fail_io,
        }
    }

    /// The write and fdatasync of one group, outside the state lock.
    fn io(&self, group: &[u64]) -> Result<(), ()> {
        let mut disk = self.disk.lock().unwrap();
        assert!(
            !disk.failed,
            "I/O after a failed I/O: fsync must never be retried"
        );
        let n = disk.ios;
        disk.ios += 1;
        if self.fail_io == Some(n) {
            disk.failed = true;
            return Err(());
        }
        disk.durable.extend_from_slice(group);
        Ok(())
    }

    /// `Wal::append` under `SyncPolicy::Always`: enqueue, then `Shared::commit`.
    fn append(&self) -> Result<u64, Failure> {
        let mut state = self.state.lock().unwrap();
        if state.poisoned {
            return Err(Failure::Poisoned);
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.queue.push(seq);
        // Whether the log had already failed when this entry was queued.
        let failed_before = self.disk.lock().unwrap().failed;
        let result = self.commit(state, seq);
        if let Ok(seq) = result {
            assert!(!failed_before, "Ok for an entry queued after a failed I/O");
            let disk = self.disk.lock().unwrap();
            let expected: Vec<u64> = (1..=seq).collect();
            assert_eq!(
                &disk.durable[..seq as usize],
                &expected[..],
                "Ok before the entry and every earlier one were durable, in order"
            );
        }
        result
    }

    fn commit<'a>(
        &'a self,
        mut state: loom::sync::MutexGuard<'a, State>,
        seq: u64,
    ) -> Result<u64, Failure> {
        loop {
            if state.synced_seq >= seq {
                return Ok(seq);
            }
            if state.poisoned {
                return Err(Failure::Poisoned);
            }
            if state.io_busy {
                let batch = if seq <= state.batch_through {
                    state.batch
                } else {
                    state.batch + 1
                };
                let parity = (batch % 2) as usize;
                state.batch_waiters[parity] += 1;
                state = self.batch_done[parity].wait(state).unwrap();
                state.batch_waiters[parity] -= 1;
                continue;
            }
            state.io_busy = true;
            let group = std::mem::take(&mut state.queue);
            let through = state.next_seq - 1;
            state.batch += 1;
            state.batch_through = through;
            drop(state);

            let result = self.io(&group);

            state = self.state.lock().unwrap();
            state.io_busy = false;
            if result.is_err() {
                state.poisoned = true;
                for condvar in &self.batch_done {
                    condvar.notify_all();
                }
                return Err(Failure::Io);
            }
            state.synced_seq = through;
            let this = (state.batch % 2) as usize;
            if state.batch_waiters[this] > 0 {
                self.batch_done[this].notify_all();
            }
            if state.batch_waiters[1 - this] > 0 {
                self.batch_done[1 - this].notify_one();
            }
        }
    }
}

/// Runs `appenders` threads (one of them the model's main thread), each appending
/// `per_thread` entries, with the `fail_io`-th I/O failing.
fn run(appenders: usize, per_thread: usize, fail_io: Option<usize>) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(move || {
        let model = Arc::new(Model::new(fail_io));
        let workers: Vec<_> = (1..appenders)
            .map(|_| {
                let model = Arc::clone(&model);
                thread::spawn(move || (0..per_thread).map(|_| model.append()).collect::<Vec<_>>())
            })
            .collect();
        let mut results: Vec<Result<u64, Failure>> =
            (0..per_thread).map(|_| model.append()).collect();
        for worker in workers {
            results.extend(worker.join().unwrap());
        }
        let state = model.state.lock().unwrap();
        assert!(!state.io_busy, "an I/O was left under way");
        let disk = model.disk.lock().unwrap();
        let io_failures = results.iter().filter(|r| **r == Err(Failure::Io)).count();
        match fail_io {
            Some(n) if disk.failed => {
                assert_eq!(io_failures, 1, "exactly the leader reports the I/O error");
                assert_eq!(disk.ios, n + 1, "no I/O after the failure");
            }
            _ => {
                assert_eq!(io_failures, 0);
                let oks = results.iter().filter(|r| r.is_ok()).count();
                assert_eq!(
                    oks,
                    appenders * per_thread,
                    "without a failure every append is Ok"
                );
                let mut expected: Vec<u64> = (1..=oks as u64).collect();
                expected.sort_unstable();
                assert_eq!(disk.durable, expected);
            }
        }
    });
}

#[test]
fn group_commit_without_failures() {
    run(3, 1, None);
}

#[test]
fn group_commit_two_appends_each() {
    run(2, 2, None);
}

#[test]
fn group_commit_first_io_fails() {
    run(3, 1, Some(0));
}

#[test]
fn group_commit_second_io_fails() {
    run(3, 1, Some(1));
}

#[test]
fn group_commit_failure_with_later_appends() {
    run(2, 2, Some(0));
}
