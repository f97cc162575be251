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

use crate::common::{faulty_disk_options, FaultyDisk};

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

/// An iterator that yielded old 1..=10 must not go on with new 11 and 12 after
/// `truncate_back(5)` and new appends: it says once that what it read was cut,
/// then reads the new history from the cut.
#[test]
fn regression_a_follower_learns_that_entries_it_read_were_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), Options::default()).unwrap();
    for i in 1..=10 {
        wal.append(Op::Put, &key("old", i), b"").unwrap();
    }
    let mut follower = wal
        .iter_from(1)
        .unwrap()
        .follow_timeout(Duration::from_millis(20));
    for i in 1..=10 {
        assert_eq!(follower.next().unwrap().unwrap().key(), key("old", i));
    }
    assert!(follower.next().is_none());
    wal.truncate_back(5).unwrap();
    for i in 5..=12 {
        wal.append(Op::Put, &key("new", i), b"").unwrap();
    }
    match follower.next() {
        Some(Err(Error::Truncated { first_cut: 5 })) => {}
        other => panic!("expected Truncated {{ first_cut: 5 }}, got {other:?}"),
    }
    assert_eq!(follower.next_seq(), 5);
    let rest: Vec<Vec<u8>> = follower.map(|e| e.unwrap().key().to_vec()).collect();
    let new: Vec<Vec<u8>> = (5..=12).map(|i| key("new", i)).collect();
    assert_eq!(rest, new);
}

/// An iterator part way through a run it read ahead: entries it has not yielded
/// yet and that `truncate_back` replaced are read again from the new history,
/// without an error (nothing it yielded was cut).
#[test]
fn an_iterator_rereads_entries_replaced_before_it_yielded_them() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), Options::default()).unwrap();
    for i in 1..=10 {
        wal.append(Op::Put, &key("old", i), b"").unwrap();
    }
    let mut iter = wal.iter_from(1).unwrap();
    for i in 1..=4 {
        assert_eq!(iter.next().unwrap().unwrap().key(), key("old", i));
    }
    wal.truncate_back(5).unwrap();
    for i in 5..=7 {
        wal.append(Op::Put, &key("new", i), b"").unwrap();
    }
    let rest: Vec<Vec<u8>> = iter.map(|e| e.unwrap().key().to_vec()).collect();
    let new: Vec<Vec<u8>> = (5..=7).map(|i| key("new", i)).collect();
    assert_eq!(rest, new);
}

/// A follower blocked at the end of the log when `truncate_back` cuts what it
/// read is woken and told, instead of waiting for the new history to catch up.
#[test]
fn a_blocked_follower_is_told_of_a_truncation_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(Wal::open(dir.path(), Options::default()).unwrap());
    for i in 1..=3 {
        wal.append(Op::Put, &key("old", i), b"").unwrap();
    }
    let follower = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || {
            let mut follower = wal.iter_from(1).unwrap().follow();
            for _ in 1..=3 {
                follower.next().unwrap().unwrap();
            }
            follower.next()
        })
    };
    thread::sleep(Duration::from_millis(100));
    wal.truncate_back(2).unwrap();
    match follower.join().unwrap() {
        Some(Err(Error::Truncated { first_cut: 2 })) => {}
        other => panic!("expected Truncated {{ first_cut: 2 }}, got {other:?}"),
    }
}

#[test]
fn regression_waiting_without_a_deadline_does_not_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(Wal::open(dir.path(), Options::default()).unwrap());
    wal.append(Op::Put, b"k", b"v").unwrap();
    assert!(wal.wait_for(1, Duration::MAX).unwrap());
    let mut follower = wal.iter_from(1).unwrap().follow_timeout(Duration::MAX);
    assert_eq!(follower.next().unwrap().unwrap().seq(), 1);
    let waiter = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.wait_for(2, Duration::MAX))
    };
    thread::sleep(Duration::from_millis(50));
    wal.append(Op::Put, b"k", b"v2").unwrap();
    assert!(waiter.join().unwrap().unwrap());
}

/// `wait_for` says promptly that the log closed, instead of waiting out its
/// timeout or answering as if it had timed out.
#[test]
fn regression_wait_for_returns_at_close_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(Wal::open(dir.path(), Options::default()).unwrap());
    let waiter = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.wait_for(1, Duration::from_secs(3600)))
    };
    thread::sleep(Duration::from_millis(50));
    wal.close().unwrap();
    assert!(matches!(waiter.join().unwrap(), Err(Error::Closed)));
}

/// After a failed write nothing more becomes visible: `wait_for` returns at
/// once with the failure instead of waiting out an hour.
#[test]
fn regression_wait_for_returns_when_the_log_is_poisoned() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultyDisk::sticky();
    let wal = Arc::new(Wal::open(dir.path(), faulty_disk_options(&fs)).unwrap());
    wal.append(Op::Put, b"k", b"v").unwrap();
    let waiter = {
        let wal = Arc::clone(&wal);
        thread::spawn(move || wal.wait_for(2, Duration::from_secs(3600)))
    };
    thread::sleep(Duration::from_millis(50));
    fs.fail_after(1);
    assert!(wal.append(Op::Put, b"k", b"v2").is_err());
    let started = std::time::Instant::now();
    assert!(matches!(
        waiter.join().unwrap(),
        Err(Error::Poisoned { .. })
    ));
    assert!(started.elapsed() < Duration::from_secs(60));
    // What was visible before the failure still is.
    assert!(wal.wait_for(1, Duration::MAX).unwrap());
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

/// Entries yielded before a reported cut stay yielded: a second, deeper cut of
/// them is reported too (the concurrent model test found this).
#[test]
fn regression_a_second_deeper_cut_is_reported_too() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), Options::default()).unwrap();
    for i in 1..=10 {
        wal.append(Op::Put, &key("old", i), b"").unwrap();
    }
    let mut iter = wal.iter_from(1).unwrap();
    for _ in 1..=10 {
        iter.next().unwrap().unwrap();
    }
    wal.truncate_back(8).unwrap();
    assert!(matches!(
        iter.next(),
        Some(Err(Error::Truncated { first_cut: 8 }))
    ));
    wal.truncate_back(5).unwrap();
    wal.append(Op::Put, &key("new", 5), b"").unwrap();
    assert!(matches!(
        iter.next(),
        Some(Err(Error::Truncated { first_cut: 5 }))
    ));
    assert_eq!(iter.next().unwrap().unwrap().key(), key("new", 5));
    assert!(iter.next().is_none());
}

/// A read-only view of a log its writer truncates back and appends to: the
/// view's positions may now hold other entries. Reads of what the cut replaced
/// say the view is outdated instead of returning the new bytes as the old
/// entries (the concurrent model test found a view returning a wrong entry);
/// entries before the cut still read as they were.
#[test]
fn regression_a_read_only_view_never_returns_entries_its_writer_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Wal::open(dir.path(), Options::default()).unwrap();
    for i in 1..=10 {
        writer.append(Op::Put, &key("old", i), b"value").unwrap();
    }
    let view = Wal::open(dir.path(), Options::default().read_only()).unwrap();
    assert_eq!(view.read(8).unwrap().key(), key("old", 8));
    writer.truncate_back(5).unwrap();
    for i in 5..=20 {
        writer.append(Op::Put, &key("new", i), b"").unwrap();
    }
    assert!(
        matches!(view.read(8), Err(Error::ViewOutdated { .. })),
        "{:?}",
        view.read(8)
    );
    assert_eq!(view.read(3).unwrap().key(), key("old", 3));
    let mut iter = view.iter_from(1).unwrap();
    let mut keys = Vec::new();
    let end = loop {
        match iter.next() {
            Some(Ok(entry)) => keys.push(entry.key().to_vec()),
            other => break other,
        }
    };
    assert!(keys.iter().all(|k| k.starts_with(b"old")), "{keys:?}");
    assert!(
        matches!(end, Some(Err(Error::ViewOutdated { .. }))),
        "{end:?}"
    );
    // A second truncation makes every read of the view doubtful.
    writer.truncate_back(15).unwrap();
    assert!(matches!(view.read(3), Err(Error::ViewOutdated { .. })));
    // A view opened now sees the log as it is.
    let fresh = Wal::open(dir.path(), Options::default().read_only()).unwrap();
    assert_eq!(fresh.read(8).unwrap().key(), key("new", 8));
}

/// Review found it: a `try_for_each_ref` whose visit fails part way through a
/// segment trusted from the checkpoint, then resumed, went on with the next
/// piece of the segment numbered from the failed entry: seq 3 yielded entry 11.
#[test]
fn regression_resuming_after_a_failed_visit_in_a_trusted_segment_yields_the_right_entries() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().max_segment_size(4 << 20);
    let wal = Wal::open(dir.path(), options.clone()).unwrap();
    let value = vec![7u8; 100 << 10];
    for i in 1..=60 {
        wal.append(Op::Put, &key("k", i), &value).unwrap();
    }
    wal.close().unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), options).unwrap();
    #[derive(Debug, PartialEq)]
    enum Stop {
        Here,
        Log(String),
    }
    impl From<Error> for Stop {
        fn from(err: Error) -> Stop {
            Stop::Log(err.to_string())
        }
    }
    let mut iter = wal.iter_from(1).unwrap();
    let stopped = iter.try_for_each_ref(|entry| {
        if entry.seq == 3 {
            return Err(Stop::Here);
        }
        Ok(())
    });
    assert_eq!(stopped, Err(Stop::Here));
    for i in 3..=60 {
        let entry = iter.next().unwrap().unwrap();
        assert_eq!((entry.seq(), entry.key()), (i, &key("k", i)[..]));
    }
    assert!(iter.next().is_none());
}

/// Review found it: a view reading an untouched entry of a sealed segment it
/// trusted from the checkpoint, after the writer cut that segment further
/// along, read the whole changed segment and reported false damage.
#[test]
fn regression_a_view_never_reports_damage_its_writer_made_by_truncating() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().max_segment_size(2048);
    let writer = Wal::open(dir.path(), options.clone()).unwrap();
    for i in 1..=100 {
        writer.append(Op::Put, &key("old", i), &[1; 40]).unwrap();
    }
    writer.close().unwrap();
    drop(writer);
    let writer = Wal::open(dir.path(), options.clone()).unwrap();
    let view = Wal::open(dir.path(), options.read_only()).unwrap();
    let first = writer.segments()[0];
    assert!(first.entries > 20);
    writer.truncate_back(first.first_seq + 20).unwrap();
    for i in 1..=3 {
        writer.append(Op::Put, &key("new", i), b"").unwrap();
    }
    match view.read(first.first_seq) {
        Ok(entry) => assert_eq!(entry.key(), key("old", first.first_seq)),
        Err(Error::ViewOutdated { .. }) => {}
        Err(other) => panic!("a healthy log read as {other}"),
    }
    // A view does not follow its writer: waiting for what it cannot see says so.
    assert!(matches!(
        view.wait_for(view.last_seq() + 1, Duration::from_secs(3600)),
        Err(Error::ReadOnly)
    ));
    let mut follower = view.iter_from(view.last_seq() + 1).unwrap().follow();
    assert!(matches!(follower.next(), Some(Err(Error::ReadOnly))));
}

/// Review found it: a cut made by a read-write open (here `PointInTime` at
/// damage) was not counted for views, so a view opened before it read the
/// entries appended after the cut as its own.
#[test]
fn regression_a_view_notices_cuts_made_by_a_recovering_open() {
    let dir = tempfile::tempdir().unwrap();
    let writer = Wal::open(dir.path(), Options::default()).unwrap();
    for i in 1..=20 {
        writer.append(Op::Put, &key("old", i), &[0xaa; 30]).unwrap();
    }
    let damaged = writer.position(10).unwrap();
    writer.close().unwrap();
    drop(writer);
    let path = dir.path().join(damaged.segment.file_name());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[damaged.offset as usize + 20] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    let skipping = Options::default().recovery_mode(flashlog_wal::RecoveryMode::SkipCorrupted);
    let view = Wal::open(dir.path(), skipping.read_only()).unwrap();
    let before = view.iter_from(10).unwrap().next().unwrap().unwrap();
    let writer = Wal::open(
        dir.path(),
        Options::default().recovery_mode(flashlog_wal::RecoveryMode::PointInTime),
    )
    .unwrap();
    assert_eq!(writer.last_seq(), 9);
    for i in 10..=11 {
        writer.append(Op::Put, &key("new", i), &[0xbb; 30]).unwrap();
    }
    match view.read(before.seq()) {
        Err(Error::ViewOutdated { .. }) => {}
        Ok(entry) => assert_eq!(
            entry.key(),
            before.key(),
            "the view read the writer's new entry"
        ),
        Err(other) => panic!("{other}"),
    }
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
