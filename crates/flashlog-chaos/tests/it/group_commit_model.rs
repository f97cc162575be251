//! A loom model of the group-commit handoff of `crates/flashlog-wal/src/writer.rs`
//! (`Shared::commit` and `State::enqueue`) and `src/waiters.rs`: one `Mutex<State>`
//! with the queue, the next sequence number, the synced-through watermark,
//! `io_busy`, the poison flag, the number and range of the group in flight, and two
//! lists of parked appenders, one per parity of the group number. Each appender
//! thread has one slot (a turn and its thread handle), reused for every wait. A
//! waiter registers its slot in the list of the group that will cover its entry
//! (the one in flight, or the next), releases the lock and parks until its turn is
//! set. The first appender that finds no I/O under way becomes the leader, takes
//! the whole queue, does the "I/O" outside the lock, then under the lock publishes
//! the watermark (or poisons the log and wakes every slot to recheck) and takes its
//! own group's list and one slot of the next group's; outside the lock it wakes the
//! latter to recheck (and lead) and its own group with "synced", which return
//! without taking the lock again.
//!
//! **This models writer.rs and waiters.rs and must be updated with them**: a
//! change to the order of the checks in `commit` (reached, poisoned, io_busy,
//! lead), to where the lock is released, or to who is woken with which turn
//! belongs here too.
//!
//! loom explores every interleaving (up to a preemption bound) and checks:
//! no appender returns `Ok` before its entry (and every earlier one) is durable;
//! no deadlock or lost wakeup (loom fails when every thread is blocked); every
//! appender terminates; after a failed I/O no I/O runs and no later `Ok` is given.

use loom::sync::atomic::{AtomicU8, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;

const WAITING: u8 = 0;
const SYNCED: u8 = 2;
const RECHECK: u8 = 3;

/// One appender thread's parking slot (`waiters::Waiter`).
struct Slot {
    thread: thread::Thread,
    turn: AtomicU8,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slot").finish_non_exhaustive()
    }
}

impl Slot {
    fn current() -> Arc<Slot> {
        Arc::new(Slot {
            thread: thread::current(),
            turn: AtomicU8::new(WAITING),
        })
    }

    fn park(&self) -> u8 {
        loop {
            match self.turn.load(Ordering::Acquire) {
                WAITING => thread::park(),
                turn => return turn,
            }
        }
    }

    fn wake(&self, turn: u8) {
        self.turn.store(turn, Ordering::Release);
        self.thread.unpark();
    }
}
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
    /// Parked appenders, by the parity of the group they wait for.
    waiters: [Vec<Arc<Slot>>; 2],
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
                waiters: [Vec::new(), Vec::new()],
            }),
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
    fn append(&self, slot: &Arc<Slot>) -> Result<u64, Failure> {
        let mut state = self.state.lock().unwrap();
        if state.poisoned {
            return Err(Failure::Poisoned);
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.queue.push(seq);
        // Whether the log had already failed when this entry was queued.
        let failed_before = self.disk.lock().unwrap().failed;
        let result = self.commit(state, seq, slot);
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
        slot: &Arc<Slot>,
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
                slot.turn.store(WAITING, Ordering::Relaxed);
                state.waiters[(batch % 2) as usize].push(Arc::clone(slot));
                drop(state);
                if slot.park() == SYNCED {
                    return Ok(seq);
                }
                state = self.state.lock().unwrap();
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
                let [a, b] = &mut state.waiters;
                for waiter in a.drain(..).chain(b.drain(..)) {
                    waiter.wake(RECHECK);
                }
                return Err(Failure::Io);
            }
            state.synced_seq = through;
            let this = (state.batch % 2) as usize;
            let finished = std::mem::take(&mut state.waiters[this]);
            let next = &mut state.waiters[1 - this];
            let next_leader = (!next.is_empty()).then(|| next.swap_remove(0));
            drop(state);
            if let Some(next_leader) = next_leader {
                next_leader.wake(RECHECK);
            }
            for waiter in finished {
                waiter.wake(SYNCED);
            }
            return Ok(seq);
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
                thread::spawn(move || {
                    let slot = Slot::current();
                    (0..per_thread)
                        .map(|_| model.append(&slot))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let slot = Slot::current();
        let mut results: Vec<Result<u64, Failure>> =
            (0..per_thread).map(|_| model.append(&slot)).collect();
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
