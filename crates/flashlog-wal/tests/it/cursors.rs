//! Named cursors (`Wal::cursor`, `Wal::set_cursor`): durable across reopen,
//! serialized across threads, crash-safe on the simulated file system, lowered
//! by `truncate_back`, kept by `truncate_front`, and a damaged cursor file is a
//! typed error and a report note, never a panic.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use flashlog_testkit::{CrashModel, SimFs};
use flashlog_wal::{
    Error, Op, Options, SegmentId, SideFileAction, SideFileProblem, SyncPolicy, Wal, CURSORS_FILE,
    MAX_CURSORS,
};

use crate::common::open;

fn log_with(dir: &Path, entries: u64, options: Options) -> Wal {
    let wal = open(dir, options);
    for n in 0..entries {
        wal.append(Op::Put, b"key", &n.to_le_bytes()).unwrap();
    }
    wal
}

#[test]
fn a_cursor_survives_reopen_and_a_read_only_view_sees_the_writers() {
    let dir = tempfile::tempdir().unwrap();
    let wal = log_with(dir.path(), 10, Options::default());
    assert_eq!(wal.cursor("a"), None);
    wal.set_cursor("a", 4).unwrap();
    wal.set_cursor("b:replica/2", 10).unwrap();
    wal.set_cursor("zero", 0).unwrap();
    let view = open(dir.path(), Options::default().read_only());
    assert_eq!(view.cursor("a"), Some(4));
    wal.set_cursor("a", 7).unwrap();
    // The view reads the file: it sees the writer's latest store.
    assert_eq!(view.cursor("a"), Some(7));
    assert!(matches!(view.set_cursor("a", 1), Err(Error::ReadOnly)));
    assert!(matches!(view.clear_cursors(), Err(Error::ReadOnly)));
    assert_eq!(wal.remove_cursor("zero").unwrap(), Some(0));
    assert_eq!(wal.remove_cursor("zero").unwrap(), None);
    wal.close().unwrap();
    assert!(matches!(wal.set_cursor("a", 1), Err(Error::Closed)));
    drop(wal);
    let wal = open(dir.path(), Options::default());
    let all: Vec<(String, u64)> = wal.cursors().unwrap().into_iter().collect();
    assert_eq!(all, [("a".to_owned(), 7), ("b:replica/2".to_owned(), 10)]);
    // The file is a side file: never a segment, so Go ignores it.
    assert_eq!(SegmentId::parse_file_name(CURSORS_FILE), None);
    assert!(dir.path().join(CURSORS_FILE).is_file());
}

#[test]
fn names_and_positions_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let wal = log_with(dir.path(), 3, Options::default());
    for bad in ["", "with space", "tab\t", "naïve", &"n".repeat(129)] {
        let err = wal.set_cursor(bad, 1).unwrap_err();
        assert!(
            matches!(err, Error::InvalidCursorName { .. }),
            "{bad:?}: {err}"
        );
        assert_eq!(wal.cursor(bad), None, "{bad:?}");
    }
    let err = wal.set_cursor("ahead", 4).unwrap_err();
    assert!(
        matches!(
            err,
            Error::SeqOutOfRange {
                seq: 4,
                last: 3,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(wal.cursor("ahead"), None);
    for n in 0..MAX_CURSORS {
        wal.set_cursor(&format!("c{n:04}"), 1).unwrap();
    }
    let err = wal.set_cursor("one-more", 1).unwrap_err();
    assert!(
        matches!(err, Error::TooManyCursors { max: MAX_CURSORS }),
        "{err}"
    );
    // An existing one still moves.
    wal.set_cursor("c0000", 3).unwrap();
    assert_eq!(wal.cursor("c0000"), Some(3));
}

/// Many threads setting cursors at once: each store holds every change before
/// it, so no update is lost, in memory or in the file.
#[test]
fn concurrent_set_cursor_loses_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(log_with(dir.path(), 50, Options::default()));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for seq in 1..=20u64 {
                    wal.set_cursor(&format!("own-{t}"), seq + t).unwrap();
                    wal.set_cursor("shared", seq).unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let check = |wal: &Wal| {
        let all = wal.cursors().unwrap();
        for t in 0..8u64 {
            assert_eq!(all.get(&format!("own-{t}")), Some(&(20 + t)), "{all:?}");
        }
        assert_eq!(all.get("shared"), Some(&20));
        assert_eq!(all.len(), 9);
    };
    check(&wal);
    wal.close().unwrap();
    drop(wal);
    check(&open(dir.path(), Options::default()));
}

#[test]
fn truncate_back_lowers_cursors_past_the_cut_and_truncate_front_keeps_them() {
    let dir = tempfile::tempdir().unwrap();
    let wal = log_with(dir.path(), 30, Options::default().max_segment_size(100));
    wal.set_cursor("behind", 5).unwrap();
    wal.set_cursor("at-cut", 20).unwrap();
    wal.set_cursor("ahead", 30).unwrap();
    wal.truncate_back(20).unwrap();
    assert_eq!(wal.cursor("behind"), Some(5));
    assert_eq!(wal.cursor("at-cut"), Some(19));
    assert_eq!(wal.cursor("ahead"), Some(19));
    // A truncate_back past the end or before the first entry changes no cursor.
    wal.truncate_back(25).unwrap();
    assert_eq!(wal.cursor("ahead"), Some(19));
    let first = wal.truncate_front(15).unwrap();
    assert!(first > 5, "first {first}");
    assert!(wal.truncate_back(first - 1).is_err());
    assert_eq!(wal.cursor("behind"), Some(5));
    // The consumer behind learns that entries it had not read are gone.
    assert!(matches!(wal.iter_from(6), Err(Error::SeqOutOfRange { .. })));
    wal.close().unwrap();
    drop(wal);
    let wal = open(dir.path(), Options::default());
    assert_eq!(wal.cursor("ahead"), Some(19));
    assert_eq!(wal.cursor("behind"), Some(5));
}

const DIR: &str = "/sim/log";

fn sim_options(sim: &SimFs) -> Options {
    Options::default()
        .fs(Arc::new(sim.clone()))
        .max_segment_size(128)
        .sync_policy(SyncPolicy::Always)
}

/// A crash after every mutation of a `set_cursor`, under every crash model:
/// each image opens, and its cursor file holds the old cursors or the new
/// ones, never a mix, never damage.
#[test]
fn a_crash_at_any_step_of_set_cursor_leaves_the_old_or_the_new_file() {
    let base = SimFs::new();
    {
        let wal = log_with(Path::new(DIR), 10, sim_options(&base));
        wal.set_cursor("a", 3).unwrap();
        wal.set_cursor("b", 4).unwrap();
    }
    let base = base.crash(CrashModel::DropUnsynced);
    let (mut olds, mut news) = (0, 0);
    for k in 0.. {
        let sim = base.snapshot();
        let finished = {
            let wal = open(Path::new(DIR), sim_options(&sim));
            sim.crash_after(Some(k));
            wal.set_cursor("a", 9).is_ok()
        };
        for model in CrashModel::all(sim.pending().len(), &[1, 2, 3]) {
            let image = sim.crash(model);
            let wal = Wal::open(DIR, sim_options(&image))
                .unwrap_or_else(|err| panic!("crash after {k}, {model:?}: {err}"));
            assert!(wal.recovery_report().side_files.is_empty(), "{model:?}");
            let all = wal.cursors().unwrap();
            match all.get("a") {
                Some(3) => olds += 1,
                Some(9) => news += 1,
                other => panic!("crash after {k}, {model:?}: a = {other:?}"),
            }
            assert_eq!(all.get("b"), Some(&4), "crash after {k}, {model:?}");
        }
        if finished {
            // Returned: durable under every model.
            let image = sim.crash(CrashModel::DropUnsynced);
            let wal = open(Path::new(DIR), sim_options(&image));
            assert_eq!(wal.cursor("a"), Some(9));
            break;
        }
    }
    assert!(olds > 0 && news > 0, "old {olds}, new {news}");
}

/// A crash at any step of `truncate_back` never leaves a cursor past the end
/// of the recovered log: the cursors are lowered, durably, before any segment
/// changes.
#[test]
fn a_crash_at_any_step_of_truncate_back_leaves_no_cursor_past_the_end() {
    let base = SimFs::new();
    {
        let wal = log_with(Path::new(DIR), 20, sim_options(&base));
        wal.set_cursor("reader", 18).unwrap();
    }
    let base = base.crash(CrashModel::DropUnsynced);
    let mut lowered = 0;
    for k in 0.. {
        let sim = base.snapshot();
        let finished = {
            let wal = open(Path::new(DIR), sim_options(&sim));
            sim.crash_after(Some(k));
            wal.truncate_back(6).is_ok()
        };
        for model in CrashModel::all(sim.pending().len(), &[1, 2]) {
            let image = sim.crash(model);
            let wal = open(Path::new(DIR), sim_options(&image));
            let cursor = wal.cursor("reader").unwrap();
            assert!(
                cursor <= wal.last_seq(),
                "crash after {k}, {model:?}: cursor {cursor}, last {}",
                wal.last_seq()
            );
            assert!(cursor == 18 || cursor == 5, "{cursor}");
            lowered += usize::from(cursor == 5);
        }
        if finished {
            break;
        }
    }
    assert!(lowered > 0);
}

/// Under `SyncPolicy::Manual` a consumer may handle entries a power loss then
/// takes back; the next read-write open lowers its cursor to the log's end, so
/// the entries appended again under those numbers are not skipped.
#[test]
fn an_open_lowers_a_cursor_past_the_recovered_end() {
    let sim = SimFs::new();
    let options = sim_options(&sim).sync_policy(SyncPolicy::Manual);
    {
        let wal = log_with(Path::new(DIR), 4, options.clone());
        wal.sync().unwrap();
        for n in 0..3u8 {
            wal.append(Op::Put, b"unsynced", &[n]).unwrap();
        }
        wal.set_cursor("reader", 7).unwrap();
        let image = sim.crash(CrashModel::DropUnsynced);
        drop(wal);
        let wal = open(Path::new(DIR), sim_options(&image));
        assert_eq!(wal.last_seq(), 4);
        assert_eq!(wal.cursor("reader"), Some(4));
        drop(wal);
        // Durably: a crash right after the open keeps it lowered.
        let again = image.crash(CrashModel::DropUnsynced);
        let view = open(Path::new(DIR), sim_options(&again).read_only());
        assert_eq!(view.cursor("reader"), Some(4));
    }
}

/// A damaged cursor file: the log opens, the report notes it, every cursor
/// call is `CorruptCursors` naming the file and the offset, nothing overwrites
/// it, and `clear_cursors` is the way out.
#[test]
fn a_damaged_cursor_file_is_a_typed_error_and_a_report_note() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = log_with(dir.path(), 5, Options::default());
        wal.set_cursor("a", 2).unwrap();
        wal.set_cursor("b", 3).unwrap();
    }
    let path = dir.path().join(CURSORS_FILE);
    let good = std::fs::read(&path).unwrap();
    let damaged_images: Vec<Vec<u8>> = (0..good.len())
        .map(|at| {
            let mut bytes = good.clone();
            bytes[at] ^= 0x20;
            bytes
        })
        .chain((0..good.len()).map(|len| good[..len].to_vec()))
        .chain([vec![0xff; 200_000]])
        .collect();
    for bytes in damaged_images {
        std::fs::write(&path, &bytes).unwrap();
        for options in [Options::default(), Options::default().read_only()] {
            let wal = open(dir.path(), options);
            let notes = &wal.recovery_report().side_files;
            assert_eq!(notes.len(), 1, "{notes:?}");
            assert_eq!(notes[0].path, path);
            assert!(matches!(notes[0].problem, SideFileProblem::Damaged(_)));
            assert_eq!(notes[0].action, SideFileAction::CursorsUnavailable);
            let err = wal.cursors().unwrap_err();
            let Error::CorruptCursors { path: named, .. } = &err else {
                panic!("{err}")
            };
            assert_eq!(named, &path);
            assert!(err.to_string().contains("at offset"), "{err}");
            assert!(matches!(wal.cursors(), Err(Error::CorruptCursors { .. })));
        }
        let wal = open(dir.path(), Options::default());
        assert!(matches!(
            wal.set_cursor("a", 1),
            Err(Error::CorruptCursors { .. })
        ));
        // A truncate_back goes ahead (the log is unaffected); the file stays.
        wal.truncate_back(5).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
    let wal = open(dir.path(), Options::default());
    wal.clear_cursors().unwrap();
    assert!(!path.exists());
    assert_eq!(wal.cursors().unwrap().len(), 0);
    wal.set_cursor("a", 1).unwrap();
    assert_eq!(wal.cursor("a"), Some(1));
}

/// `set_cursor` beside `truncate_back` and appends: no deadlock, and no cursor
/// ever ends past the log's end (each store is checked against the end under
/// the layout pin, which a truncation waits for).
#[test]
fn set_cursor_beside_truncate_back_never_leaves_a_cursor_past_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Arc::new(log_with(
        dir.path(),
        40,
        Options::default().max_segment_size(256),
    ));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let setters: Vec<_> = (0..3)
        .map(|t| {
            let (wal, stop) = (Arc::clone(&wal), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut stored = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match wal.set_cursor(&format!("c{t}"), wal.last_seq()) {
                        Ok(()) => stored += 1,
                        // The end moved back between the two calls.
                        Err(Error::SeqOutOfRange { .. }) => {}
                        Err(err) => panic!("{err}"),
                    }
                }
                stored
            })
        })
        .collect();
    for round in 0..25u64 {
        let last = wal.last_seq();
        wal.truncate_back(last - round % 5 - 1).unwrap();
        // Only this thread truncates: the end stays until it appends.
        std::thread::sleep(Duration::from_millis(2));
        let end = wal.last_seq();
        for (name, seq) in wal.cursors().unwrap() {
            assert!(seq <= end, "{name} at {seq}, last {end}");
        }
        for _ in 0..round % 5 + 2 {
            wal.append(Op::Put, b"again", b"x").unwrap();
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let stored: u32 = setters.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(stored > 0);
}

/// A cursor file that cannot be read (here a directory in its place): a
/// read-only open notes it and goes on; a read-write open, which must lower the
/// cursors in it past the log's end, fails naming it.
#[test]
fn an_unreadable_cursor_file_is_noted_by_a_view_and_fails_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    drop(log_with(dir.path(), 3, Options::default()));
    let path = dir.path().join(CURSORS_FILE);
    std::fs::create_dir(&path).unwrap();
    let view = open(dir.path(), Options::default().read_only());
    let notes = &view.recovery_report().side_files;
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(matches!(notes[0].problem, SideFileProblem::Unreadable(_)));
    assert_eq!(view.read(3).unwrap().seq(), 3);
    assert!(matches!(view.cursors(), Err(Error::Io { .. })));
    assert_eq!(view.cursor("a"), None);
    let err = Wal::open(dir.path(), Options::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Io { path: named, .. } if *named == path),
        "{err}"
    );
}
