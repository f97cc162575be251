//! `flashlog_wal::repair`: a dry run changes nothing, each mode cuts what its
//! report says, the backup holds the bytes as they were, a locked directory is
//! refused.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use flashlog_wal::{
    repair, CorruptionKind, Error, Op, Options, RepairMode, RepairOptions, SegmentId, Wal,
    INDEX_FILE, LOCK_FILE, META_COPY_FILE, META_FILE,
};

/// Each entry is 17 + 4 + 20 = 41 bytes; ten fit a segment.
const ENTRY: u64 = 41;
const SEGMENT: u64 = 10 * ENTRY;

fn options() -> Options {
    Options::default().max_segment_size(SEGMENT)
}

/// A closed log of 30 entries in three full segments (keys `k001`..`k030`).
fn log(dir: &Path) {
    let wal = Wal::open(dir, options()).unwrap();
    for n in 1..=30u32 {
        wal.append(Op::Put, format!("k{n:03}").as_bytes(), &[n as u8; 20])
            .unwrap();
    }
    wal.close().unwrap();
    assert_eq!(wal.segments().len(), 3);
}

/// Every file of `dir` (not its folders, not the lock file), by name, with its
/// bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_type().unwrap().is_file())
        .filter(|entry| entry.file_name() != LOCK_FILE)
        .map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, fs::read(entry.path()).unwrap())
        })
        .collect()
}

fn segment_path(dir: &Path, id: u64) -> std::path::PathBuf {
    dir.join(SegmentId(id).file_name())
}

/// Flips a bit in the CRC of entry `n` (from 0) of segment `id`.
fn damage_entry(dir: &Path, id: u64, n: u64) {
    let path = segment_path(dir, id);
    let mut bytes = fs::read(&path).unwrap();
    bytes[(n * ENTRY) as usize] ^= 1;
    fs::write(&path, bytes).unwrap();
}

/// Cuts the last 5 bytes off the newest segment: a torn tail.
fn tear_tail(dir: &Path) {
    let path = segment_path(dir, 3);
    let len = fs::metadata(&path).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
}

/// The keys of the log as the default mode opens it.
fn keys(dir: &Path) -> Vec<String> {
    let wal = Wal::open(dir, options().read_only()).unwrap();
    wal.iter_from(wal.first_seq())
        .unwrap()
        .map(|entry| String::from_utf8(entry.unwrap().key().to_vec()).unwrap())
        .collect()
}

fn key_range(range: std::ops::RangeInclusive<u32>) -> Vec<String> {
    range.map(|n| format!("k{n:03}")).collect()
}

#[test]
fn a_dry_run_changes_nothing_in_any_mode() {
    for mode in [
        RepairMode::TolerateCorruptedTail,
        RepairMode::PointInTime,
        RepairMode::SkipCorrupted,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        log(tmp.path());
        if mode == RepairMode::TolerateCorruptedTail {
            tear_tail(tmp.path());
        } else {
            damage_entry(tmp.path(), 2, 4);
        }
        // A damaged copy of the side file, which a repair rewrites.
        let mut meta = fs::read(tmp.path().join(META_COPY_FILE)).unwrap();
        meta[8] ^= 1;
        fs::write(tmp.path().join(META_COPY_FILE), meta).unwrap();
        let before = files(tmp.path());

        let report = repair(tmp.path(), RepairOptions::new(mode).dry_run()).unwrap();
        assert!(report.dry_run && report.needed(), "{mode:?}");
        assert_eq!(report.cuts.len(), 1, "{mode:?}: {report:?}");
        assert_eq!(
            report.rewritten_side_files,
            [tmp.path().join(META_COPY_FILE)]
        );
        assert_eq!(report.backup, None, "{mode:?}");
        assert!(
            files(tmp.path()) == before,
            "{mode:?}: a dry run changed files"
        );
        let folders = fs::read_dir(tmp.path())
            .unwrap()
            .filter(|entry| entry.as_ref().unwrap().file_type().unwrap().is_dir())
            .count();
        assert_eq!(folders, 0, "{mode:?}: a dry run made a backup folder");
    }
}

#[test]
fn tolerate_corrupted_tail_cuts_the_torn_tail_and_keeps_a_copy() {
    let tmp = tempfile::tempdir().unwrap();
    log(tmp.path());
    tear_tail(tmp.path());
    let before = files(tmp.path());
    let report = repair(tmp.path(), RepairOptions::default()).unwrap();
    let cut = report.cuts[0];
    assert_eq!(report.cuts.len(), 1);
    assert_eq!(cut.damage.position.segment, SegmentId(3));
    assert_eq!(cut.damage.position.offset, 9 * ENTRY);
    assert_eq!((cut.damage.len, cut.entries_lost), (ENTRY - 5, 0));
    assert!(matches!(cut.damage.kind, CorruptionKind::Incomplete { .. }));
    assert_eq!(report.found.torn_tail, Some(cut.damage));
    assert_eq!(report.truncated_bytes, ENTRY - 5);
    assert_eq!(report.affected, [SegmentId(3)]);
    assert!(report.removed_segments.is_empty());
    // The cut, and nothing else.
    assert_eq!(
        fs::read(segment_path(tmp.path(), 3)).unwrap(),
        before["segment-0003.log"][..(9 * ENTRY) as usize]
    );
    for id in [1, 2] {
        let name = SegmentId(id).file_name();
        assert_eq!(fs::read(tmp.path().join(&name)).unwrap(), before[&name]);
    }
    let backup = report.backup.unwrap();
    assert!(backup.starts_with(tmp.path()), "{}", backup.display());
    assert_eq!(
        files(&backup).into_keys().collect::<Vec<_>>(),
        ["segment-0003.log"]
    );
    assert_eq!(
        fs::read(backup.join("segment-0003.log")).unwrap(),
        before["segment-0003.log"],
        "the backup holds the original bytes"
    );
    assert_eq!(report.repaired.entries, 29);
    assert_eq!(keys(tmp.path()), key_range(1..=29));
}

#[test]
fn point_in_time_cuts_at_the_first_damage_and_removes_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    log(tmp.path());
    damage_entry(tmp.path(), 2, 4);
    let before = files(tmp.path());
    let into = tmp.path().join("saved");
    let report = repair(
        tmp.path(),
        RepairOptions::new(RepairMode::PointInTime).backup_dir(&into),
    )
    .unwrap();
    assert_eq!(report.cuts.len(), 1);
    let cut = report.cuts[0];
    assert_eq!(cut.damage.position.segment, SegmentId(2));
    assert_eq!(cut.damage.position.offset, 4 * ENTRY);
    assert!(matches!(
        cut.damage.kind,
        CorruptionKind::ChecksumMismatch { .. }
    ));
    // Entries 16..=20 after the damage in segment 2 and 21..=30 in segment 3.
    assert_eq!(cut.entries_lost, 15);
    assert_eq!(report.removed_segments, [SegmentId(3)]);
    assert_eq!(report.truncated_bytes, 6 * ENTRY + 10 * ENTRY);
    assert_eq!(report.affected, [SegmentId(2), SegmentId(3)]);
    // Sequence numbers: the checkpoint counted the damaged entry.
    assert_eq!(report.found.entries, 30);
    assert_eq!(report.repaired.entries, 14);
    assert_eq!(report.backup.as_deref(), Some(into.as_path()));
    for name in ["segment-0002.log", "segment-0003.log"] {
        assert_eq!(fs::read(into.join(name)).unwrap(), before[name], "{name}");
    }
    assert!(!segment_path(tmp.path(), 3).exists());
    assert_eq!(
        fs::read(segment_path(tmp.path(), 2)).unwrap(),
        before["segment-0002.log"][..(4 * ENTRY) as usize]
    );
    assert_eq!(
        fs::read(segment_path(tmp.path(), 1)).unwrap(),
        before["segment-0001.log"]
    );
    assert_eq!(keys(tmp.path()), key_range(1..=14));
}

#[test]
fn skip_corrupted_removes_only_the_damaged_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    log(tmp.path());
    damage_entry(tmp.path(), 1, 2);
    damage_entry(tmp.path(), 2, 4);
    let before = files(tmp.path());
    let report = repair(tmp.path(), RepairOptions::new(RepairMode::SkipCorrupted)).unwrap();
    let cuts: Vec<(u64, u64, u64, u64)> = report
        .cuts
        .iter()
        .map(|cut| {
            let at = cut.damage.position;
            (at.segment.0, at.offset, cut.damage.len, cut.entries_lost)
        })
        .collect();
    assert_eq!(cuts, [(1, 2 * ENTRY, ENTRY, 0), (2, 4 * ENTRY, ENTRY, 0)]);
    assert!(report.removed_segments.is_empty());
    assert_eq!(report.affected, [SegmentId(1), SegmentId(2)]);
    let backup = report.backup.unwrap();
    for name in ["segment-0001.log", "segment-0002.log"] {
        assert_eq!(fs::read(backup.join(name)).unwrap(), before[name], "{name}");
    }
    // Each segment lost exactly its damaged entry's bytes.
    for (id, n) in [(1u64, 2u64), (2, 4)] {
        let name = SegmentId(id).file_name();
        let mut want = before[&name].clone();
        want.drain((n * ENTRY) as usize..((n + 1) * ENTRY) as usize);
        assert_eq!(fs::read(tmp.path().join(&name)).unwrap(), want, "{name}");
    }
    // The checkpoint counted the damaged entries: their numbers stay gaps.
    let wal = Wal::open(tmp.path(), options()).unwrap();
    assert_eq!(wal.read(30).unwrap().key(), b"k030");
    assert!(matches!(wal.read(3), Err(Error::Skipped { seq: 3 })));
    drop(wal);
    let mut want = key_range(1..=30);
    want.retain(|key| key != "k003" && key != "k015");
    assert_eq!(keys(tmp.path()), want);
    assert_eq!(
        report.repaired.entries, 30,
        "sequence numbers, gaps included"
    );
}

#[test]
fn tolerate_corrupted_tail_refuses_damage_in_the_middle_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    log(tmp.path());
    damage_entry(tmp.path(), 2, 4);
    let before = files(tmp.path());
    let err = repair(tmp.path(), RepairOptions::default()).unwrap_err();
    match &err {
        Error::NotATornTail {
            segment,
            path,
            offset,
            len,
            ..
        } => {
            assert_eq!(*segment, SegmentId(2));
            assert_eq!(*path, segment_path(tmp.path(), 2));
            assert_eq!((*offset, *len), (4 * ENTRY, ENTRY));
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("segment-0002.log"), "{err}");
    assert!(files(tmp.path()) == before, "files changed");
}

#[test]
fn a_locked_directory_is_refused_with_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    log(tmp.path());
    let wal = Wal::open(tmp.path(), options()).unwrap();
    tear_tail(tmp.path());
    let before = files(tmp.path());
    for options in [RepairOptions::default(), RepairOptions::default().dry_run()] {
        match repair(tmp.path(), options) {
            Err(Error::Locked { path }) => {
                assert_eq!(path, tmp.path().join(LOCK_FILE));
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        files(tmp.path()) == before,
        "a refused repair changed files"
    );
    drop(wal);
    let report = repair(tmp.path(), RepairOptions::default()).unwrap();
    assert_eq!(report.cuts.len(), 1, "once the lock is free: {report:?}");
}

#[test]
fn a_clean_log_is_left_as_it_is() {
    let tmp = tempfile::tempdir().unwrap();
    log(tmp.path());
    let before = files(tmp.path());
    let report = repair(tmp.path(), RepairOptions::new(RepairMode::PointInTime)).unwrap();
    assert!(!report.needed());
    assert!(report.cuts.is_empty() && report.affected.is_empty());
    assert_eq!((report.backup, report.repaired.entries), (None, 30));
    assert!(files(tmp.path()) == before, "files changed");
}

#[test]
fn a_damaged_side_file_copy_is_rewritten_without_a_backup() {
    let tmp = tempfile::tempdir().unwrap();
    log(tmp.path());
    let meta = fs::read(tmp.path().join(META_FILE)).unwrap();
    fs::write(tmp.path().join(META_FILE), b"garbage").unwrap();
    let report = repair(tmp.path(), RepairOptions::default()).unwrap();
    assert_eq!(report.rewritten_side_files, [tmp.path().join(META_FILE)]);
    assert!(report.cuts.is_empty());
    assert_eq!(report.backup, None);
    assert_eq!(fs::read(tmp.path().join(META_FILE)).unwrap(), meta);
    assert_eq!(fs::read(tmp.path().join(META_COPY_FILE)).unwrap(), meta);
    assert!(report.repaired.side_files.is_empty(), "{report:?}");
}

#[test]
fn a_changed_sealed_segment_left_by_skip_corrupted_is_still_damaged() {
    let tmp = tempfile::tempdir().unwrap();
    log(tmp.path());
    assert!(tmp.path().join(INDEX_FILE).exists());
    // Segment 1 loses its last entry behind the checkpoint's back.
    let path = segment_path(tmp.path(), 1);
    let bytes = fs::read(&path).unwrap();
    fs::write(&path, &bytes[..(9 * ENTRY) as usize]).unwrap();
    let err = repair(tmp.path(), RepairOptions::new(RepairMode::SkipCorrupted)).unwrap_err();
    let Error::StillDamaged { backup, source, .. } = &err else {
        panic!("{err}");
    };
    // The changed segment is left as it is: nothing was cut, nothing copied.
    assert_eq!(*backup, None);
    assert_eq!(fs::read(&path).unwrap(), &bytes[..(9 * ENTRY) as usize]);
    assert!(
        matches!(
            **source,
            Error::Corrupt {
                kind: CorruptionKind::SegmentChanged { .. },
                ..
            }
        ),
        "{source}"
    );
    assert!(err.to_string().contains("still does not open"), "{err}");
    let dry = repair(
        tmp.path(),
        RepairOptions::new(RepairMode::SkipCorrupted).dry_run(),
    );
    assert!(
        dry.unwrap().cuts.is_empty(),
        "skipping cuts no changed segment"
    );
    // Point-in-time repair cuts before it.
    let report = repair(tmp.path(), RepairOptions::new(RepairMode::PointInTime)).unwrap();
    assert_eq!(report.cuts[0].damage.position.offset, 0);
    assert_eq!(report.repaired.entries, 0);
}
