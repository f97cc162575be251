//! Recovery and what a log directory holds besides entries: leftover temporary
//! files, a damaged side file, a directory named like a segment, segment 0.

use std::fs;

use flashlog_wal::{Error, Op, Options, RecoveryMode, SegmentId, Wal};

use super::options;
use super::small_log;
use crate::common::{append_all, open, read_all, sample_records};

/// The names the side file and the checkpoint are written under before their
/// renames, as docs/design.md lists them ("Files in a log directory"): what a crash
/// leaves, and an open must remove, whatever version wrote it. The library does not
/// export them.
const META_TMP_FILE: &str = "flashlog.meta.tmp";
const INDEX_TMP_FILE: &str = "flashlog.index.tmp";

#[test]
fn a_leftover_temporary_side_file_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    small_log(dir.path(), 5);
    // The side file's, the checkpoint's, and a segment's copy being repaired.
    let leftovers = [
        META_TMP_FILE.to_owned(),
        INDEX_TMP_FILE.to_owned(),
        format!("{}.repair-tmp", SegmentId(1).file_name()),
    ];
    for name in &leftovers {
        fs::write(dir.path().join(name), b"half-written").unwrap();
    }
    drop(open(
        dir.path(),
        options(RecoveryMode::default()).read_only(),
    ));
    assert!(leftovers.iter().all(|name| dir.path().join(name).exists()));
    let wal = open(dir.path(), options(RecoveryMode::default()));
    assert_eq!(wal.last_seq(), 5);
    for name in &leftovers {
        assert!(!dir.path().join(name).exists(), "{name} left");
    }
}

#[test]
fn a_damaged_side_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), options(RecoveryMode::default()));
        append_all(&wal, &sample_records(30));
        wal.truncate_front(20).unwrap();
    }
    // Both copies: with one intact, the log opens from it (side_files.rs).
    for name in [flashlog_wal::META_FILE, flashlog_wal::META_COPY_FILE] {
        let meta = dir.path().join(name);
        let mut bytes = fs::read(&meta).unwrap();
        bytes[15] ^= 1;
        fs::write(&meta, &bytes).unwrap();
    }
    let err = Wal::open(dir.path(), options(RecoveryMode::default())).unwrap_err();
    assert!(matches!(err, Error::CorruptMeta { .. }), "{err}");
    assert!(err.to_string().contains("flashlog.meta"), "{err}");
}

#[test]
fn an_unreadable_directory_entry_named_like_a_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    small_log(dir.path(), 3);
    fs::create_dir(dir.path().join("segment-0002.log")).unwrap();
    assert!(Wal::open(dir.path(), options(RecoveryMode::default())).is_err());
}

/// A leftover temporary side file and a point-in-time cut that drops segments used to
/// fail the open: the cut's own side-file update consumed the temporary file.
#[test]
fn regression_point_in_time_with_a_leftover_temporary_side_file_opens() {
    let dir = crate::common::fixture_copy("go-corrupt-middle");
    fs::write(dir.path().join(META_TMP_FILE), b"left by a crash").unwrap();
    let wal = Wal::open(
        dir.path(),
        Options::default()
            .max_segment_size(4096)
            .recovery_mode(RecoveryMode::PointInTime),
    )
    .unwrap();
    assert_eq!(wal.last_seq(), 101);
    assert!(!dir.path().join(META_TMP_FILE).exists());
}

/// Without a side file, `segment-0000.log` used to be taken for a stale segment and
/// deleted; nothing can be stale when no truncate_front ever ran.
#[test]
fn regression_segment_zero_without_a_side_file_is_part_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    for id in [0u64, 1] {
        let mut bytes = Vec::new();
        flashlog_wal::codec::encode(&mut bytes, Op::Put, &[id as u8], b"");
        fs::write(dir.path().join(SegmentId(id).file_name()), bytes).unwrap();
    }
    let wal = open(dir.path(), Options::default());
    assert_eq!((wal.first_seq(), wal.last_seq()), (1, 2));
    assert_eq!(wal.read(1).unwrap().key(), [0]);
    drop(wal);
    assert!(dir.path().join("segment-0000.log").exists());
    let wal = open(dir.path(), Options::default());
    assert_eq!(read_all(&wal).len(), 2, "and it reopens, side file and all");
}
