//! Recovery on open, exhaustively on small logs: every truncation point, every bit
//! flip, zero-filled tails, damage in older segments, and side-file leftovers.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use flashlog_wal::{Error, Op, Options, RecoveryMode, SegmentId, Wal};

use crate::common::{
    append_all, open, read_all, sample_records, segment_files, FaultyDisk, FaultyDiskFs, Record,
};

mod directory;
mod hostile;
mod live_log;

const SEGMENT: u64 = 128;

fn options(mode: RecoveryMode) -> Options {
    Options::default()
        .max_segment_size(SEGMENT)
        .recovery_mode(mode)
}

/// A small log of a few segments; returns its records and, per segment, the byte
/// offset where each entry ends.
fn small_log(dir: &Path, count: usize) -> Vec<Record> {
    let records = sample_records(count);
    let wal = open(dir, options(RecoveryMode::default()));
    append_all(&wal, &records);
    records
}

/// Writes `files` (name, bytes) as the only segments of a fresh directory.
fn write_segments(files: &[(String, Vec<u8>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        fs::write(dir.path().join(name), bytes).unwrap();
    }
    dir
}

/// Entries whose bytes end at or before each global offset of the concatenated log.
fn entry_ends(files: &[(String, Vec<u8>)]) -> Vec<u64> {
    let mut ends = Vec::new();
    let mut base = 0u64;
    for (_, bytes) in files {
        let mut at = 0usize;
        while at < bytes.len() {
            let entry = flashlog_wal::codec::decode(&bytes[at..]).unwrap();
            at += entry.len;
            ends.push(base + at as u64);
        }
        base += bytes.len() as u64;
    }
    ends
}

#[test]
fn a_log_cut_at_every_byte_offset_reopens_to_exactly_the_whole_entries() {
    let source = tempfile::tempdir().unwrap();
    let records = small_log(source.path(), 16);
    let files = segment_files(source.path());
    assert!(files.len() >= 3, "spans several segments");
    let ends = entry_ends(&files);
    let total: u64 = files.iter().map(|f| f.1.len() as u64).sum();
    for cut in 0..=total {
        // Keep every byte before `cut`: whole segments, then part of one.
        let mut kept = Vec::new();
        let mut base = 0u64;
        for (name, bytes) in &files {
            let len = bytes.len() as u64;
            if base + len <= cut {
                kept.push((name.clone(), bytes.clone()));
            } else if base < cut {
                kept.push((name.clone(), bytes[..(cut - base) as usize].to_vec()));
            }
            base += len;
        }
        let dir = write_segments(&kept);
        let whole = ends.iter().filter(|&&end| end <= cut).count();
        let wal = Wal::open(dir.path(), options(RecoveryMode::default()))
            .unwrap_or_else(|err| panic!("cut at {cut}: {err}"));
        assert_eq!(read_all(&wal), records[..whole].to_vec(), "cut at {cut}");
        let torn = !ends.contains(&cut) && cut != 0;
        assert_eq!(
            wal.recovery_report().torn_tail.is_some(),
            torn,
            "cut at {cut}"
        );
        // The log keeps working after the cut.
        assert_eq!(
            wal.append(Op::Put, b"after", b"").unwrap(),
            whole as u64 + 1,
            "cut at {cut}"
        );
    }
}

#[test]
fn every_bit_flip_of_a_small_log_is_detected() {
    let source = tempfile::tempdir().unwrap();
    let records = small_log(source.path(), 8);
    let files = segment_files(source.path());
    let ends = entry_ends(&files);
    let mut flips = 0;
    let mut global = 0u64;
    for (file_index, (_, bytes)) in files.iter().enumerate() {
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = files.clone();
                damaged[file_index].1[at] ^= 1 << bit;
                let offset = global + at as u64;
                // The entry holding the flipped byte, and the ones before it.
                let hit = ends.iter().filter(|&&end| end <= offset).count();
                let dir = write_segments(&damaged);
                let before = segment_files(dir.path());
                let strict = Wal::open(dir.path(), options(RecoveryMode::AbsoluteConsistency));
                assert!(
                    matches!(strict, Err(Error::Corrupt { .. })),
                    "flip at {offset}.{bit} undetected"
                );
                assert_eq!(segment_files(dir.path()), before);
                match Wal::open(dir.path(), options(RecoveryMode::TolerateCorruptedTail)) {
                    Err(Error::Corrupt { .. }) => {}
                    Ok(wal) => {
                        // Only a flip in the last entry may be taken as a torn tail.
                        assert_eq!(
                            hit,
                            records.len() - 1,
                            "flip at {offset}.{bit} cut more than the tail"
                        );
                        assert!(wal.recovery_report().torn_tail.is_some());
                        assert_eq!(read_all(&wal), records[..hit].to_vec());
                    }
                    Err(other) => panic!("flip at {offset}.{bit}: unexpected {other}"),
                }
                flips += 1;
            }
        }
        global += bytes.len() as u64;
    }
    assert_eq!(flips, files.iter().map(|f| f.1.len() * 8).sum::<usize>());
}

#[test]
fn zero_filled_tails_are_preallocated_space_and_trimmed_at_close() {
    let source = tempfile::tempdir().unwrap();
    let records = small_log(source.path(), 10);
    let files = segment_files(source.path());
    for zeros in [1usize, 3, 8, 17, 100, 4096] {
        let mut padded = files.clone();
        padded
            .last_mut()
            .unwrap()
            .1
            .extend(std::iter::repeat_n(0u8, zeros));
        let dir = write_segments(&padded);
        let wal = open(dir.path(), options(RecoveryMode::AbsoluteConsistency));
        assert_eq!(read_all(&wal), records, "{zeros} zeros");
        let report = wal.recovery_report();
        assert_eq!(
            (report.preallocated_bytes, report.truncated_bytes),
            (zeros as u64, 0)
        );
        assert!(report.damage.is_empty() && report.torn_tail.is_none());
        wal.close().unwrap();
        assert_eq!(
            segment_files(dir.path()),
            files,
            "{zeros} zeros: close trims them"
        );
    }
}

#[test]
fn zeros_after_a_partial_entry_are_a_torn_tail() {
    let source = tempfile::tempdir().unwrap();
    let records = small_log(source.path(), 10);
    let mut files = segment_files(source.path());
    let last = files.last_mut().unwrap();
    let mut extra = Vec::new();
    flashlog_wal::codec::encode(&mut extra, Op::Put, b"torn", &[9u8; 40]);
    extra.truncate(12); // the header made it to disk, the rest is still zeros
    last.1.extend_from_slice(&extra);
    last.1.extend(std::iter::repeat_n(0u8, 500));
    let dir = write_segments(&files);
    let wal = open(dir.path(), options(RecoveryMode::default()));
    assert_eq!(read_all(&wal), records);
    assert_eq!(wal.recovery_report().truncated_bytes, 512);
    assert!(wal.recovery_report().torn_tail.is_some());
}

#[test]
fn a_zeroed_entry_in_the_middle_is_corruption_at_its_offset() {
    let source = tempfile::tempdir().unwrap();
    let records = small_log(source.path(), 12);
    let mut files = segment_files(source.path());
    let last = files.len() - 1;
    // Zero the first entry of the last segment, which has entries after it.
    let first_len = flashlog_wal::codec::decode(&files[last].1).unwrap().len;
    assert!(
        files[last].1.len() > first_len,
        "entries follow the zeroed one"
    );
    files[last].1[..first_len].fill(0);
    let dir = write_segments(&files);
    let err = Wal::open(dir.path(), options(RecoveryMode::default())).unwrap_err();
    let id = SegmentId::parse_file_name(&files[last].0).unwrap();
    assert!(
        matches!(err, Error::Corrupt { segment, offset: 0, .. } if segment == id),
        "{err}"
    );
    let wal = open(dir.path(), options(RecoveryMode::SkipCorrupted));
    assert_eq!(wal.recovery_report().skipped, 1);
    assert_eq!(read_all(&wal).len(), records.len() - 1);
}

#[test]
fn a_torn_older_segment_is_corruption_not_a_tail() {
    let source = tempfile::tempdir().unwrap();
    small_log(source.path(), 12);
    let mut files = segment_files(source.path());
    let len = files[0].1.len();
    files[0].1.truncate(len - 3);
    let dir = write_segments(&files);
    let err = Wal::open(dir.path(), options(RecoveryMode::default())).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Corrupt {
                segment: SegmentId(1),
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn point_in_time_recovery_is_idempotent_and_durable() {
    let source = tempfile::tempdir().unwrap();
    let records = small_log(source.path(), 20);
    let mut files = segment_files(source.path());
    files[1].1[5] ^= 0x40; // in segment 2's first entry
    let dir = write_segments(&files);
    let kept = entry_ends(&files[..1]).len();
    for _ in 0..2 {
        let wal = open(dir.path(), options(RecoveryMode::PointInTime));
        assert_eq!(read_all(&wal), records[..kept].to_vec());
    }
    assert_eq!(
        segment_files(dir.path()).len(),
        2,
        "segment 2 cut to empty, later ones removed"
    );
    let wal = open(dir.path(), options(RecoveryMode::AbsoluteConsistency));
    assert_eq!(wal.last_seq(), kept as u64);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Any bytes in any segments give `Ok` or an error under every mode: never a
    /// panic, and an `Ok` log can be read through and appended to.
    #[test]
    fn arbitrary_segment_bytes_never_panic(
        segments in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..300), 1..4),
        valid_prefix in 0usize..4,
    ) {
        let mut files = Vec::new();
        for (i, garbage) in segments.iter().enumerate() {
            let mut bytes = Vec::new();
            for j in 0..valid_prefix {
                flashlog_wal::codec::encode(&mut bytes, Op::Put, &[i as u8, j as u8], b"ok");
            }
            bytes.extend_from_slice(garbage);
            files.push((SegmentId(i as u64 + 1).file_name(), bytes));
        }
        for mode in [
            RecoveryMode::TolerateCorruptedTail,
            RecoveryMode::AbsoluteConsistency,
            RecoveryMode::PointInTime,
            RecoveryMode::SkipCorrupted,
        ] {
            let dir = write_segments(&files);
            if let Ok(wal) = Wal::open(dir.path(), options(mode)) {
                let count = wal.iter_from(wal.first_seq()).unwrap().filter(Result::is_ok).count() as u64;
                proptest::prop_assert_eq!(count, wal.recovery_report().entries);
                proptest::prop_assert_eq!(wal.append(Op::Put, b"k", b"v").unwrap(), count + 1);
            }
        }
    }
}

/// A segment of 4 GiB or more cannot be indexed with u32 offsets: a clear error,
/// not a wrapped offset and a panic (the file here is sparse: no disk is used).
#[test]
fn regression_a_segment_of_4_gib_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = fs::File::create(dir.path().join("segment-0001.log")).unwrap();
    file.set_len(1 << 32).unwrap();
    let err = Wal::open(dir.path(), Options::default().read_only()).unwrap_err();
    assert!(
        matches!(err, Error::SegmentTooLarge { len, .. } if len == 1 << 32),
        "{err}"
    );
}

/// After a failed fsync the kernel may keep the pages it never wrote as clean ones:
/// a read-write open drops the newest segment's cached pages before reading it, so
/// that recovery sees what the disk holds. (Sealed segments were synced before the
/// writer left them; a read-only open changes nothing.)
#[test]
fn a_read_write_open_reads_the_newest_segment_from_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let options = || Options::default().max_segment_size(1024);
    let wal = Wal::open(dir.path(), options()).unwrap();
    append_all(&wal, &sample_records(100));
    let newest = wal.segments().last().unwrap().id;
    assert!(newest.0 > 2);
    wal.close().unwrap();
    drop(wal);

    let fs = Arc::new(FaultyDisk::default());
    let with_fs = |options: Options| options.fs(Arc::new(FaultyDiskFs::on_disk(&fs)));
    drop(Wal::open(dir.path(), with_fs(options().read_only())).unwrap());
    assert!(fs.dropped_caches.lock().unwrap().is_empty());
    drop(Wal::open(dir.path(), with_fs(options())).unwrap());
    assert_eq!(
        *fs.dropped_caches.lock().unwrap(),
        vec![dir.path().join(newest.file_name())]
    );
}
