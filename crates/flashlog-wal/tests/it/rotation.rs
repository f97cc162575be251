//! Segment rotation, naming and discovery, as in the Go implementation.

use std::fs;

use flashlog_wal::{codec, Batch, Error, Op, Options, RecoveryMode, SegmentId, Wal};

use crate::common::{expected, fixtures, open, read_all, segment_files};

/// The Go segment manager's rotation cases (50 writes of a 5-byte payload with
/// limits 10, 8 and 5 give 25, 50 and 50 segments), scaled to our smallest entry:
/// Put "a" "b" is 19 bytes, so the limits become 38, 30 and 19.
#[test]
fn go_rotation_cases() {
    for (limit, segments) in [(38, 25), (30, 50), (19, 50)] {
        let dir = tempfile::tempdir().unwrap();
        let wal = open(dir.path(), Options::default().max_segment_size(limit));
        for i in 1..=50 {
            assert_eq!(wal.append(Op::Put, b"a", b"b").unwrap(), i);
        }
        let files = segment_files(dir.path());
        assert_eq!(files.len(), segments, "limit {limit}");
        assert!(files.iter().all(|(_, bytes)| bytes.len() as u64 <= limit));
        assert_eq!(files[0].0, "segment-0001.log");
        assert_eq!(
            files.last().unwrap().0,
            format!("segment-{segments:04}.log")
        );
    }
}

#[test]
fn an_entry_that_fits_exactly_does_not_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), Options::default().max_segment_size(57));
    for _ in 0..3 {
        wal.append(Op::Put, b"a", b"b").unwrap(); // 3 x 19 = 57: size + n == max
    }
    assert_eq!(segment_files(dir.path()).len(), 1);
    wal.append(Op::Put, b"a", b"b").unwrap();
    assert_eq!(segment_files(dir.path()).len(), 2);
}

#[test]
fn reopen_continues_sequence_numbers_and_segment_ids() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().max_segment_size(100);
    {
        let wal = open(dir.path(), options.clone());
        for i in 1..=10 {
            assert_eq!(
                wal.append(Op::Put, format!("k{i}").as_bytes(), b"v")
                    .unwrap(),
                i
            );
        }
    }
    let before = segment_files(dir.path()).len();
    {
        let wal = open(dir.path(), options.clone());
        assert_eq!(wal.last_seq(), 10);
        for i in 11..=30 {
            assert_eq!(
                wal.append(Op::Put, format!("k{i}").as_bytes(), b"v")
                    .unwrap(),
                i
            );
        }
    }
    let files = segment_files(dir.path());
    assert!(files.len() > before);
    for (i, (name, _)) in files.iter().enumerate() {
        assert_eq!(name, &SegmentId(i as u64 + 1).file_name());
    }
    let wal = open(dir.path(), options);
    let keys: Vec<Vec<u8>> = read_all(&wal).into_iter().map(|r| r.1).collect();
    let want: Vec<Vec<u8>> = (1..=30).map(|i| format!("k{i}").into_bytes()).collect();
    assert_eq!(keys, want);
}

#[test]
fn other_files_are_ignored_and_ids_sort_numerically() {
    let dir = tempfile::tempdir().unwrap();
    // A Go-style log of 10001 one-entry segments, so that ids cross from four digits
    // to five: sorted as strings, segment-10000.log would come before segment-9999.log.
    for id in 1..=10_001u64 {
        let mut bytes = Vec::new();
        codec::encode(&mut bytes, Op::Put, id.to_string().as_bytes(), b"");
        fs::write(dir.path().join(SegmentId(id).file_name()), bytes).unwrap();
    }
    for name in [
        "segment-0001.log.bak",
        "segment-.log",
        "segment-x1.log",
        "notes.txt",
        "SEGMENT-0002.log",
    ] {
        fs::write(dir.path().join(name), b"not a segment").unwrap();
    }
    let wal = open(dir.path(), Options::default().max_segment_size(40));
    assert_eq!(wal.last_seq(), 10_001);
    for seq in [1, 9_999, 10_000, 10_001] {
        assert_eq!(wal.read(seq).unwrap().key(), seq.to_string().as_bytes());
    }
    assert!(dir.path().join("segment-10000.log").exists());
    wal.append(Op::Put, b"next", b"").unwrap();
    assert!(dir.path().join("segment-10002.log").exists());
}

/// Opens `dir`, read-only and read-write, which must both fail with
/// `Error::MissingSegment` naming segment `id` (a read-only open retries only when
/// the side file changes during its try: in a log nobody writes, a missing
/// segment is reported as such).
fn open_fails_naming_missing(dir: &std::path::Path, id: u64) -> Error {
    let read_only = Wal::open(dir, Options::default().read_only()).unwrap_err();
    assert!(
        matches!(read_only, Error::MissingSegment { id: missing, .. } if missing == SegmentId(id)),
        "{read_only}"
    );
    let err = Wal::open(dir, Options::default()).unwrap_err();
    assert!(
        matches!(err, Error::MissingSegment { id: missing, .. } if missing == SegmentId(id)),
        "{err}"
    );
    err
}

/// A closed log of `entries` 19-byte entries, two per segment.
fn two_entries_per_segment(entries: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), Options::default().max_segment_size(40));
    for _ in 0..entries {
        wal.append(Op::Put, b"a", b"b").unwrap();
    }
    wal.close().unwrap();
    dir
}

#[test]
fn a_gap_in_segment_ids_names_the_missing_segment() {
    let dir = two_entries_per_segment(10);
    assert_eq!(segment_files(dir.path()).len(), 5);
    fs::remove_file(dir.path().join("segment-0003.log")).unwrap();
    let err = open_fails_naming_missing(dir.path(), 3);
    assert!(err.to_string().contains("segment 3 is missing"), "{err}");
    // The newest segment, which the side file names.
    let newest = dir.path().join("segment-0005.log");
    let saved = fs::read(&newest).unwrap();
    fs::remove_file(&newest).unwrap();
    fs::write(dir.path().join("segment-0003.log"), b"").unwrap();
    open_fails_naming_missing(dir.path(), 5);
    fs::write(&newest, saved).unwrap();
    fs::remove_file(dir.path().join("segment-0003.log")).unwrap();

    // Without a side file (as the Go implementation leaves), a log must start at
    // segment 1.
    for id in [1, 2] {
        let _ = fs::remove_file(dir.path().join(SegmentId(id).file_name()));
    }
    fs::remove_file(dir.path().join(flashlog_wal::META_FILE)).unwrap();
    open_fails_naming_missing(dir.path(), 1);
}

#[test]
fn an_empty_newest_segment_is_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), Options::default().max_segment_size(40));
        wal.append(Op::Put, b"a", b"b").unwrap();
    }
    // A crash right after rotation created the next segment leaves it empty.
    fs::write(dir.path().join("segment-0002.log"), b"").unwrap();
    let wal = open(dir.path(), Options::default().max_segment_size(40));
    assert_eq!(wal.recovery_report().segments, 2);
    assert_eq!(wal.append(Op::Put, b"c", b"d").unwrap(), 2);
    assert_eq!(read_all(&wal).len(), 2);
    wal.close().unwrap();
    let len = fs::read(dir.path().join("segment-0002.log")).unwrap().len();
    assert_eq!(len, 19);
}

#[test]
fn preallocated_space_is_trimmed_at_rotation_and_close_and_reused_after_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().max_segment_size(4096).preallocate(1024);
    let wal = open(dir.path(), options.clone());
    wal.append(Op::Put, b"a", b"b").unwrap();
    let active = dir.path().join("segment-0001.log");
    assert_eq!(
        fs::metadata(&active).unwrap().len(),
        19 + 1024,
        "zero-filled ahead"
    );
    while wal.segments().len() < 2 {
        wal.append(Op::Put, b"a", &[1u8; 100]).unwrap();
    }
    let first = segment_files(dir.path())[0].1.clone();
    assert_eq!(
        first.len() as u64,
        wal.segments()[0].bytes,
        "trimmed when left"
    );
    // A crash now leaves the active segment's zeros (a copy of the files taken while
    // the log is open is what a crash would leave): they are reused, not damage.
    let crashed = tempfile::tempdir().unwrap();
    for (name, bytes) in segment_files(dir.path()) {
        fs::write(crashed.path().join(name), bytes).unwrap();
    }
    drop(wal);
    let dir = crashed;
    let wal = open(
        dir.path(),
        options
            .clone()
            .recovery_mode(flashlog_wal::RecoveryMode::AbsoluteConsistency),
    );
    assert!(wal.recovery_report().preallocated_bytes > 0);
    let before = wal.last_seq();
    wal.append(Op::Put, b"after", b"crash").unwrap();
    wal.close().unwrap();
    let files = segment_files(dir.path());
    let total: u64 = files.iter().map(|f| f.1.len() as u64).sum();
    let wal = open(dir.path(), options.preallocate(0));
    assert_eq!(wal.last_seq(), before + 1);
    assert_eq!(
        total,
        wal.segments().iter().map(|s| s.bytes).sum::<u64>(),
        "closed files hold only entries"
    );
}

#[test]
fn large_groups_are_written_without_zero_filling() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), Options::default().preallocate(1 << 20));
    wal.append(Op::Put, b"big", &[5u8; 100 << 10]).unwrap();
    let len = fs::metadata(dir.path().join("segment-0001.log"))
        .unwrap()
        .len();
    assert_eq!(
        len,
        (100 << 10) + 17 + 3,
        "a 100 KiB group extends the file by itself"
    );
}

#[test]
fn rotate_seals_the_active_segment_so_truncate_front_can_remove_it() {
    let dir = tempfile::tempdir().unwrap();
    let wal = open(dir.path(), Options::default());
    assert_eq!(
        wal.rotate().unwrap(),
        SegmentId(1),
        "an empty active segment stays"
    );
    for i in 0..5u8 {
        wal.append(Op::Put, &[i], b"v").unwrap();
    }
    assert_eq!(wal.rotate().unwrap(), SegmentId(2));
    assert_eq!(
        wal.rotate().unwrap(),
        SegmentId(2),
        "nothing appended since"
    );
    assert_eq!(wal.truncate_front(6).unwrap(), 6);
    assert_eq!((wal.first_seq(), wal.last_seq()), (6, 5));
    assert_eq!(wal.append(Op::Put, b"next", b"").unwrap(), 6);
    wal.close().unwrap();
    drop(wal);
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "segment-0002.log");
    let wal = open(dir.path(), Options::default());
    assert_eq!((wal.first_seq(), wal.last_seq()), (6, 6));
    assert_eq!(wal.read(6).unwrap().into_value(), b"");
    assert!(matches!(
        Wal::open(dir.path(), Options::default().read_only())
            .unwrap()
            .rotate(),
        Err(Error::ReadOnly)
    ));
}

#[test]
fn unpadded_segment_names_are_read_and_renamed_by_a_read_write_open() {
    let dir = tempfile::tempdir().unwrap();
    for (id, key) in [(1u64, b"one"), (2, b"two")] {
        let mut bytes = Vec::new();
        codec::encode(&mut bytes, Op::Put, key, b"");
        fs::write(dir.path().join(format!("segment-{id}.log")), bytes).unwrap();
    }
    let reader = Wal::open(dir.path(), Options::default().read_only()).unwrap();
    assert_eq!(reader.read(2).unwrap().key(), b"two");
    assert!(
        dir.path().join("segment-2.log").exists(),
        "read-only renames nothing"
    );
    drop(reader);
    let wal = open(dir.path(), Options::default());
    assert_eq!(read_all(&wal).len(), 2);
    let names: Vec<String> = segment_files(dir.path()).into_iter().map(|f| f.0).collect();
    assert_eq!(names, ["segment-0001.log", "segment-0002.log"]);
}

#[test]
fn two_files_with_one_segment_id_are_an_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path(), Options::default()));
    fs::write(dir.path().join("segment-001.log"), b"").unwrap();
    let err = Wal::open(dir.path(), Options::default()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::DuplicateSegment {
                id: SegmentId(1),
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("segment-0001.log") && text.contains("segment-001.log"),
        "{text}"
    );
}

#[test]
fn a_missing_newest_segment_is_an_error_not_a_shorter_log() {
    let dir = two_entries_per_segment(6);
    assert_eq!(segment_files(dir.path()).len(), 3);
    fs::remove_file(dir.path().join("segment-0003.log")).unwrap();
    open_fails_naming_missing(dir.path(), 3);
    // A log's only segment, too: not silently replaced by a new empty log.
    let single = tempfile::tempdir().unwrap();
    open(single.path(), Options::default())
        .append(Op::Put, b"k", b"v")
        .unwrap();
    fs::remove_file(single.path().join("segment-0001.log")).unwrap();
    open_fails_naming_missing(single.path(), 1);
}

/// `append_carried` (a compaction's copies) takes an entry above `max_segment_size`
/// and gives it a segment of its own: the segment before it is left, the next
/// entry starts another, and no empty segment is left behind. `append` and
/// `append_batch` keep refusing it.
#[test]
fn a_carried_entry_above_the_limit_gets_a_segment_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().max_segment_size(100);
    let big = vec![7u8; 200]; // key "big": a 220-byte entry
    {
        let wal = open(dir.path(), options.clone());
        // First in an empty log: it takes the empty active segment.
        let mut alone = Batch::new();
        alone.put(b"big", &big);
        assert_eq!(wal.append_carried(&alone).unwrap(), 1..=1);
        let mut batch = Batch::new();
        batch.put(b"a", b"1").put(b"big", &big).put(b"b", b"2");
        assert!(matches!(
            wal.append(Op::Put, b"big", &big),
            Err(Error::EntryTooLarge { len: 220, max: 100 })
        ));
        assert!(matches!(
            wal.append_batch(&batch),
            Err(Error::EntryTooLarge { len: 220, max: 100 })
        ));
        assert_eq!(
            wal.last_seq(),
            1,
            "nothing of the refused batch was appended"
        );
        assert_eq!(wal.append_carried(&batch).unwrap(), 2..=4);
        wal.append(Op::Put, b"c", b"3").unwrap();
        let entries: Vec<u64> = wal.segments().iter().map(|s| s.entries).collect();
        assert_eq!(entries, [1, 1, 1, 2]);
        assert_eq!(wal.read(3).unwrap().value(), &big[..]);
        // Above the format's limit, carrying is refused too.
        let mut huge = Batch::new();
        huge.put(b"huge", &vec![0; 16 << 20]);
        assert!(matches!(
            wal.append_carried(&huge),
            Err(Error::EntryTooLarge {
                max: codec::MAX_ENTRY_LEN,
                ..
            })
        ));
        wal.close().unwrap();
    }
    let mut one = Vec::new();
    codec::encode(&mut one, Op::Put, b"big", &big);
    let mut two = Vec::new();
    codec::encode(&mut two, Op::Put, b"a", b"1");
    let files = segment_files(dir.path());
    let sizes: Vec<usize> = files.iter().map(|(_, bytes)| bytes.len()).collect();
    assert_eq!(sizes, [220, 19, 220, 38]);
    assert_eq!((&files[0].1, &files[1].1, &files[2].1), (&one, &two, &one));
    // It reopens, with nothing to cut, under the small limit, and appends go on.
    let wal = open(
        dir.path(),
        options.recovery_mode(RecoveryMode::AbsoluteConsistency),
    );
    assert_eq!(read_all(&wal).len(), 5);
    assert_eq!(wal.append(Op::Put, b"d", b"4").unwrap(), 6);
}

/// Entries within the limit are placed by `append_carried` exactly as by
/// `append_batch`: the Go fixture carried entry by entry gives its own files.
#[test]
fn carried_entries_within_the_limit_give_go_identical_segments() {
    let dir = tempfile::tempdir().unwrap();
    {
        let wal = open(dir.path(), Options::default().max_segment_size(4096));
        for (op, key, value) in expected("go-basic", "expected.txt") {
            let mut batch = Batch::new();
            batch.push(op, &key, &value);
            wal.append_carried(&batch).unwrap();
        }
        wal.close().unwrap();
    }
    assert_eq!(
        segment_files(dir.path()),
        segment_files(&fixtures().join("go-basic/wal"))
    );
}
