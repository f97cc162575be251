//! Operations that overlap: a read or an iterator in one thread while another
//! truncates and re-appends, waiting on a log that closes or fails. Each race is
//! made deterministic with [`PausingFs`], which stops one chosen thread inside a
//! chosen file call until the test lets it go.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use flashlog_testkit::{Call, CallOn, HookFs, Hooks};
use flashlog_wal::fs::StdFs;
use flashlog_wal::{Error, Op, Options, Wal};

mod followers;
mod views;
mod waiting;

/// Which call of the paused thread stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PauseAt {
    /// Reading a segment file.
    Read,
    /// Opening a segment file.
    Open,
}

/// The real file system, except that one thread stops in its next segment read
/// (or open) until [`PausingFs::release`].
#[derive(Debug)]
struct PausingFs {
    at: PauseAt,
    thread: Mutex<Option<ThreadId>>,
    /// Whether the thread is stopped in the call now.
    paused: Mutex<bool>,
    changed: Condvar,
    released: AtomicBool,
}

impl PausingFs {
    fn new(at: PauseAt) -> Arc<PausingFs> {
        Arc::new(PausingFs {
            at,
            thread: Mutex::new(None),
            paused: Mutex::new(false),
            changed: Condvar::new(),
            released: AtomicBool::new(false),
        })
    }

    /// Makes the calling thread's next segment call stop.
    fn pause_this_thread(&self) {
        *self.thread.lock().unwrap() = Some(thread::current().id());
    }

    fn wait_until_paused(&self) {
        let mut paused = self.paused.lock().unwrap();
        while !*paused {
            paused = self.changed.wait(paused).unwrap();
        }
    }

    fn release(&self) {
        self.released.store(true, Ordering::SeqCst);
        let _paused = self.paused.lock().unwrap();
        self.changed.notify_all();
    }

    /// Stops here if the calling thread is the chosen one and `at` is its call.
    fn maybe_pause(&self, at: PauseAt, path: &Path) {
        let is_segment = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.starts_with("segment-"));
        if at != self.at || !is_segment {
            return;
        }
        {
            let mut chosen = self.thread.lock().unwrap();
            if *chosen != Some(thread::current().id()) {
                return;
            }
            *chosen = None; // once
        }
        let mut paused = self.paused.lock().unwrap();
        *paused = true;
        self.changed.notify_all();
        while !self.released.load(Ordering::SeqCst) {
            paused = self.changed.wait(paused).unwrap();
        }
        *paused = false;
    }
}

impl Hooks for PausingFs {
    fn before(&self, on: &CallOn<'_>) -> io::Result<()> {
        match on.call {
            Call::ReadAt => self.maybe_pause(PauseAt::Read, on.path),
            Call::Open | Call::Create => self.maybe_pause(PauseAt::Open, on.path),
            _ => {}
        }
        Ok(())
    }
}

/// Options on the real disk behind `pausing` (which the test keeps too).
fn pausing_options(pausing: &Arc<PausingFs>) -> Options {
    let fs = HookFs::wrap(Arc::new(StdFs), Arc::clone(pausing));
    Options::default().fs(Arc::new(fs))
}

fn key(generation: &str, i: u64) -> Vec<u8> {
    format!("{generation}-{i}").into_bytes()
}

/// The bug report's race: `read(8)` locates the entry, is held before its read,
/// `truncate_back(5)` and 16 appends of another size run meanwhile. The read must
/// return what held 8 at some moment during the call (old 8 or new 8), never
/// the bytes of another entry and never a false `Corrupt`.
#[test]
fn regression_read_during_truncate_back_never_returns_another_entry() {
    let dir = tempfile::tempdir().unwrap();
    let pausing = PausingFs::new(PauseAt::Read);
    let options = pausing_options(&pausing);
    let wal = Arc::new(Wal::open(dir.path(), options).unwrap());
    for i in 1..=10 {
        wal.append(Op::Put, &key("old", i), b"v").unwrap();
    }
    let reader = {
        let (wal, pausing) = (Arc::clone(&wal), Arc::clone(&pausing));
        thread::spawn(move || {
            pausing.pause_this_thread();
            wal.read(8)
        })
    };
    pausing.wait_until_paused();
    let rewriter = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || {
            wal.truncate_back(5).unwrap();
            for i in 5..=20 {
                wal.append(Op::Put, &key("new", i), b"a longer value")
                    .unwrap();
            }
        })
    };
    // Give the truncation every chance to run inside the read's window.
    thread::sleep(Duration::from_millis(200));
    pausing.release();
    let read = reader.join().unwrap();
    rewriter.join().unwrap();
    let entry = read.expect("entry 8 existed throughout, old or new");
    assert_eq!(entry.seq(), 8);
    assert!(
        entry.key() == key("old", 8) || entry.key() == key("new", 8),
        "read(8) returned the key {:?}",
        String::from_utf8_lossy(entry.key())
    );
    assert_eq!(wal.read(8).unwrap().key(), key("new", 8));
}

/// `read` of an entry whose segment `truncate_front` removes between locating
/// it and opening the file: the entry (it held its seq when the call began) or
/// `SeqOutOfRange`, never an I/O error naming the removed file.
#[test]
fn regression_read_during_truncate_front_is_the_entry_or_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let pausing = PausingFs::new(PauseAt::Open);
    let options = pausing_options(&pausing).max_segment_size(200);
    let wal = Arc::new(Wal::open(dir.path(), options).unwrap());
    for i in 1..=30 {
        wal.append(Op::Put, &key("k", i), b"value").unwrap();
    }
    let last = wal.last_seq();
    let reader = {
        let (wal, pausing) = (Arc::clone(&wal), Arc::clone(&pausing));
        thread::spawn(move || {
            pausing.pause_this_thread();
            wal.read(1)
        })
    };
    pausing.wait_until_paused();
    let truncator = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.truncate_front(last).unwrap())
    };
    thread::sleep(Duration::from_millis(200));
    pausing.release();
    match reader.join().unwrap() {
        Ok(entry) => assert_eq!(entry.key(), key("k", 1)),
        Err(Error::SeqOutOfRange { seq: 1, .. }) => {}
        Err(other) => panic!("read(1) failed with {other}"),
    }
    assert!(truncator.join().unwrap() > 1);
}

#[test]
fn regression_huge_preallocation_is_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let err = Wal::open(dir.path(), Options::default().preallocate(u64::MAX)).unwrap_err();
    assert!(matches!(err, Error::InvalidOptions(_)), "{err}");
    // The largest accepted value works (it is capped by the segment size).
    let wal = Wal::open(dir.path(), Options::default().preallocate(u32::MAX.into())).unwrap();
    wal.append(Op::Put, b"k", b"v").unwrap();
}

/// The iterator's own lock-then-read gap: its run is found under the state lock
/// and read after, held here inside that read while `truncate_back(1)` and
/// appends of another size run. What it yields must be what held each sequence number
/// during its call: old 1 (then, told of the cut, the new history), or, if the cut
/// came first, the end of the log or new 1; never bytes of another entry.
#[test]
fn an_iterator_held_inside_its_read_never_yields_another_entry() {
    let dir = tempfile::tempdir().unwrap();
    let pausing = PausingFs::new(PauseAt::Read);
    let options = pausing_options(&pausing);
    let wal = Arc::new(Wal::open(dir.path(), options).unwrap());
    for i in 1..=10 {
        wal.append(Op::Put, &key("old", i), b"v").unwrap();
    }
    let reader = {
        let (wal, pausing) = (Arc::clone(&wal), Arc::clone(&pausing));
        thread::spawn(move || {
            pausing.pause_this_thread();
            let mut iter = wal.iter_from(1).unwrap();
            let first = iter.next().map(|entry| entry.unwrap());
            (first, iter)
        })
    };
    pausing.wait_until_paused();
    let rewriter = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || {
            wal.truncate_back(1).unwrap();
            for i in 1..=20 {
                wal.append(Op::Put, &key("new", i), b"a longer value")
                    .unwrap();
            }
        })
    };
    thread::sleep(Duration::from_millis(200));
    pausing.release();
    let (first, mut iter) = reader.join().unwrap();
    rewriter.join().unwrap();
    let mut seq = 1;
    match first {
        None => {}
        Some(entry) if entry.key() == key("new", 1) => seq = 2,
        Some(entry) => {
            assert_eq!(entry.key(), key("old", 1));
            assert!(matches!(
                iter.next(),
                Some(Err(Error::Truncated { first_cut: 1 }))
            ));
        }
    }
    for entry in iter {
        let entry = entry.unwrap();
        assert_eq!((entry.seq(), entry.key()), (seq, &key("new", seq)[..]));
        seq += 1;
    }
    assert_eq!(seq, 21);
}
