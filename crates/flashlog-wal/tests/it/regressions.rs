//! Regression tests from the adversarial review of the receipts, the syncer and
//! the group commit (2026-12): each names what it shows.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use flashlog_testkit::{Call, CallOn, CrashModel, HookFs, Hooks, SimFs};
use flashlog_wal::{Error, Op, Options, SyncPolicy, Wal};

/// A disk whose next segment write can be held (the test then sees it
/// entered, and releases it), and that can be made full (every later segment
/// write fails with ENOSPC).
#[derive(Debug, Default)]
struct Gate {
    armed: AtomicBool,
    full: AtomicBool,
    /// (entered, released)
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Gate {
    fn wait_entered(&self) {
        let mut state = self.state.lock().unwrap();
        while !state.0 {
            state = self.changed.wait(state).unwrap();
        }
    }

    fn release(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }
}

impl Hooks for Gate {
    fn before(&self, on: &CallOn<'_>) -> io::Result<()> {
        let segment = on.path.to_string_lossy().contains("segment-");
        if on.call != Call::WriteAt || !segment {
            return Ok(());
        }
        if self.armed.swap(false, Ordering::SeqCst) {
            let mut state = self.state.lock().unwrap();
            state.0 = true;
            self.changed.notify_all();
            while !state.1 {
                state = self.changed.wait(state).unwrap();
            }
            return Ok(());
        }
        if self.full.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(28));
        }
        Ok(())
    }
}

/// `close` leads the last group; when that group is refused for a full disk,
/// `close` returned `Ok` ("makes everything appended durable") although the
/// submitted entry it was to write was taken back, and the receipt of an entry
/// that `close`'s final fsync did make durable resolved with `Error::Closed`
/// ("closed without making them durable").
#[test]
fn regression_close_whose_final_group_is_refused_reports_it_and_resolves_the_durable() {
    let sim = SimFs::new();
    let gate = Arc::new(Gate::default());
    let fs = HookFs::wrap(Arc::new(sim.clone()), Arc::clone(&gate));
    let options = Options::default()
        .fs(Arc::new(fs))
        .preallocate(0)
        .sync_policy(SyncPolicy::Manual);
    let wal = Wal::open("/log", options).unwrap();
    // The syncer writes entry 1 (no fsync under Manual), held in its write.
    gate.armed.store(true, Ordering::SeqCst);
    let written = wal.submit(Op::Put, b"k", b"written").unwrap();
    gate.wait_entered();
    // Entry 2 queues behind that group.
    let refused = wal.submit(Op::Put, b"k", b"refused").unwrap();
    thread::scope(|scope| {
        let closing = scope.spawn(|| wal.close());
        // Once a submit is refused as closed, `close` has queued up as the
        // next group's leader (both under one holding of the lock).
        while !matches!(wal.submit(Op::Put, b"probe", b""), Err(Error::Closed)) {
            thread::sleep(Duration::from_millis(1));
        }
        gate.full.store(true, Ordering::SeqCst);
        gate.release();
        let closed = closing.join().unwrap();
        let refused = refused.wait();
        assert_eq!(
            refused.as_ref().unwrap_err().io_kind(),
            Some(io::ErrorKind::StorageFull),
            "{refused:?}"
        );
        // Entry 1 was written, and close's fsync covered it.
        assert_eq!(written.wait().unwrap(), 1..=1);
        // Not everything appended is durable: close must say so.
        assert!(
            closed.is_err(),
            "close returned Ok after its last group was refused"
        );
    });
    drop(wal);
    let image = sim.crash(CrashModel::DropUnsynced);
    let reopened = Wal::open("/log", Options::default().fs(Arc::new(image))).unwrap();
    assert_eq!(reopened.last_seq(), 1);
    assert_eq!(reopened.read(1).unwrap().value(), b"written");
}

/// A callback given to `Receipt::on_durable` runs on the syncer thread when the
/// syncer led the group, and "may call the log again": one that closes the log
/// (or drops the last `Arc<Wal>`, which closes it) made `close` join the syncer
/// thread from the syncer thread itself: it panicked ("failed to join thread:
/// Resource deadlock avoided") half way, leaving the directory locked and every
/// later `close` (a drop of the `Wal`) waiting forever for it to finish.
#[test]
fn regression_close_from_an_on_durable_callback_on_the_syncer_thread() {
    let sim = SimFs::new();
    let gate = Arc::new(Gate::default());
    let fs = HookFs::wrap(Arc::new(sim.clone()), Arc::clone(&gate));
    let options = Options::default().fs(Arc::new(fs)).preallocate(0);
    let wal = Arc::new(Wal::open("/log", options).unwrap());
    // The syncer leads the group of this entry (under Always, with its fsync),
    // held in its write until the callback is in place.
    gate.armed.store(true, Ordering::SeqCst);
    let receipt = wal.submit(Op::Put, b"k", b"v").unwrap();
    gate.wait_entered();
    let (tx, rx) = std::sync::mpsc::channel();
    let in_callback = Arc::clone(&wal);
    receipt.on_durable(move |result| {
        let on_syncer = thread::current().name() == Some("flashlog-syncer");
        let closed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| in_callback.close()));
        let _ = tx.send((
            result.is_ok(),
            on_syncer,
            closed.map_err(|_| "close panicked"),
        ));
    });
    gate.release();
    let (durable, on_syncer, closed) = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the callback never finished: close hangs");
    assert!(durable && on_syncer);
    if !matches!(closed, Ok(Ok(()))) {
        // Every later close (the drop of `wal`) would wait forever for the one
        // that panicked half way: leak it, and fail.
        std::mem::forget(wal);
        panic!("close on the syncer thread: {closed:?}");
    }
    // Closed for good: the directory can be opened again.
    drop(wal);
    let reopened = Wal::open("/log", Options::default().fs(Arc::new(sim.clone()))).unwrap();
    assert_eq!(reopened.last_seq(), 1);
}

/// An `on_durable` callback that panics unwound through the group commit that
/// resolved it: the receipts resolved after it in the same group (already taken
/// from the log) never resolved, not even at close, and when the syncer ran it,
/// the syncer thread died, so later submitted entries were never written.
#[test]
fn regression_a_panicking_callback_strands_the_other_receipts_and_kills_the_syncer() {
    let sim = SimFs::new();
    let gate = Arc::new(Gate::default());
    let fs = HookFs::wrap(Arc::new(sim.clone()), Arc::clone(&gate));
    let options = Options::default().fs(Arc::new(fs)).preallocate(0);
    let wal = Wal::open("/log", options).unwrap();
    // One group (the syncer's, held in its write) covers both entries.
    gate.armed.store(true, Ordering::SeqCst);
    let first = wal.submit(Op::Put, b"k", b"1").unwrap();
    gate.wait_entered();
    let second = wal.submit(Op::Put, b"k", b"2").unwrap();
    first.on_durable(|_| panic!("a callback that panics"));
    gate.release();
    let resolved = |receipt: &flashlog_wal::Receipt| {
        (0..2000).any(|_| {
            thread::sleep(Duration::from_millis(1));
            receipt.is_resolved()
        })
    };
    let second_resolved = resolved(&second);
    let later = wal.submit(Op::Put, b"k", b"3").unwrap();
    let later_resolved = resolved(&later);
    assert!(
        second_resolved,
        "a receipt of the same group never resolved"
    );
    assert!(later_resolved, "an entry submitted later was never written");
    assert_eq!(later.wait().unwrap(), 3..=3);
}

/// `close` resolves the receipts its final sync makes durable on its own
/// thread, before it has finished; a callback that closes the log too (a
/// second `close`, which waits for the first to finish) then waited for its
/// own thread: `close` never returned.
#[test]
fn regression_close_from_a_callback_that_close_itself_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().sync_policy(SyncPolicy::Manual);
    let wal = Arc::new(Wal::open(dir.path(), options).unwrap());
    let in_callback = Arc::clone(&wal);
    // Under Manual the entry is durable only at the next sync: close's.
    wal.submit(Op::Put, b"k", b"v")
        .unwrap()
        .on_durable(move |_| drop(in_callback.close()));
    let (tx, rx) = std::sync::mpsc::channel();
    let closing = Arc::clone(&wal);
    thread::spawn(move || {
        let _ = tx.send(closing.close().is_ok());
    });
    let closed = rx.recv_timeout(Duration::from_secs(10));
    if closed.is_err() {
        // The closing thread is stuck for good: leak what it holds.
        std::mem::forget(wal);
        panic!("close never returned (it waited for itself)");
    }
    assert_eq!(closed, Ok(true));
}
