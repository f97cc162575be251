//! The checkpoint `flashlog.index`: a clean reopen reads only the newest segment,
//! and whatever the checkpoint says that the files no longer bear out is found.

use std::fs;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use flashlog_wal::{Error, Op, Options, RecoveryMode, SegmentId, Wal, INDEX_FILE};

use crate::common::{
    append_all, read_all, sample_records, segment_files, FaultyDisk, FaultyDiskFs, Record,
};

const SEGMENT: u64 = 2048;

fn options() -> Options {
    Options::default().max_segment_size(SEGMENT)
}

/// A log of many segments, closed cleanly.
fn many_segments(dir: &Path) -> Vec<Record> {
    let records = sample_records(600);
    let wal = Wal::open(dir, options()).unwrap();
    append_all(&wal, &records);
    assert!(
        wal.segments().len() > 5,
        "{} segments",
        wal.segments().len()
    );
    wal.close().unwrap();
    records
}

/// Opens with a file system that counts the bytes read from segments.
fn open_counting(dir: &Path, options: Options) -> (flashlog_wal::Result<Wal>, Arc<FaultyDisk>) {
    let fs = Arc::new(FaultyDisk::default());
    let wal = Wal::open(dir, options.fs(Arc::new(FaultyDiskFs::on_disk(&fs))));
    (wal, fs)
}

fn newest_segment_len(dir: &Path) -> u64 {
    segment_files(dir).last().unwrap().1.len() as u64
}

/// The bytes an open reads from the sealed segments the checkpoint vouches for:
/// each one's last entry.
fn last_entries_len(dir: &Path) -> u64 {
    let files = segment_files(dir);
    files[..files.len() - 1]
        .iter()
        .map(|(_, bytes)| {
            let mut at = 0;
            let mut last = 0;
            while let Ok(entry) = flashlog_wal::codec::decode(&bytes[at..]) {
                last = entry.len;
                at += entry.len;
            }
            last as u64
        })
        .sum()
}

#[test]
fn a_clean_reopen_reads_only_the_newest_segment() {
    let dir = tempfile::tempdir().unwrap();
    let records = many_segments(dir.path());
    assert!(dir.path().join(INDEX_FILE).exists());
    let (wal, fs) = open_counting(dir.path(), options());
    let wal = wal.unwrap();
    let read_at_open = fs.segment_bytes_read.load(Ordering::Relaxed);
    assert_eq!(
        read_at_open,
        newest_segment_len(dir.path()) + last_entries_len(dir.path())
    );
    assert_eq!(wal.recovery_report().entries, records.len() as u64);
    // Random reads and iteration find every entry where it was.
    for seq in [1, 77, 300, 599, 600] {
        let entry = wal.read(seq).unwrap();
        assert_eq!(crate::common::record(&entry), records[seq as usize - 1]);
    }
    assert_eq!(read_all(&wal), records);
    let total: u64 = segment_files(dir.path())
        .iter()
        .map(|(_, bytes)| bytes.len() as u64)
        .sum();
    assert!(fs.segment_bytes_read.load(Ordering::Relaxed) >= total);
}

#[test]
fn the_modes_that_promise_to_check_every_byte_read_every_segment() {
    let dir = tempfile::tempdir().unwrap();
    many_segments(dir.path());
    let total: u64 = segment_files(dir.path())
        .iter()
        .map(|(_, bytes)| bytes.len() as u64)
        .sum();
    for mode in [
        RecoveryMode::AbsoluteConsistency,
        RecoveryMode::PointInTime,
        RecoveryMode::SkipCorrupted,
    ] {
        let (wal, fs) = open_counting(dir.path(), options().recovery_mode(mode));
        drop(wal.unwrap());
        assert!(
            fs.segment_bytes_read.load(Ordering::Relaxed) >= total,
            "{mode:?}"
        );
    }
}

#[test]
fn damage_in_a_trusted_segment_is_reported_when_read_and_by_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let records = many_segments(dir.path());
    let victim = dir.path().join(SegmentId(2).file_name());
    let mut bytes = fs::read(&victim).unwrap();
    // The entry holding byte 40 starts at the last entry boundary at or before it.
    let mut damaged_entry = 0;
    while let Ok(entry) = flashlog_wal::codec::decode(&bytes[damaged_entry..]) {
        if damaged_entry + entry.len > 40 {
            break;
        }
        damaged_entry += entry.len;
    }
    bytes[40] ^= 0x20;
    fs::write(&victim, &bytes).unwrap();

    let wal = Wal::open(dir.path(), options()).unwrap();
    let in_victim = wal.segments()[1].first_seq;
    match wal.read(in_victim) {
        Err(Error::Corrupt {
            segment, offset, ..
        }) => assert_eq!((segment, offset), (SegmentId(2), damaged_entry as u64)),
        other => panic!("expected corruption in segment 2, got {other:?}"),
    }
    let first: Vec<Record> = wal
        .iter_from(1)
        .unwrap()
        .take_while(Result::is_ok)
        .map(|entry| crate::common::record(&entry.unwrap()))
        .collect();
    assert_eq!(first, records[..first.len()]);
    assert!(matches!(
        wal.iter_from(1).unwrap().nth(first.len()),
        Some(Err(Error::Corrupt { .. }))
    ));
    drop(wal);

    let strict = Wal::open(
        dir.path(),
        options().recovery_mode(RecoveryMode::AbsoluteConsistency),
    );
    assert!(matches!(
        strict,
        Err(Error::Corrupt {
            segment: SegmentId(2),
            ..
        })
    ));
}

#[test]
fn a_damaged_or_stale_checkpoint_means_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let records = many_segments(dir.path());
    let total: u64 = segment_files(dir.path())
        .iter()
        .map(|(_, bytes)| bytes.len() as u64)
        .sum();
    let index = dir.path().join(INDEX_FILE);
    let good = fs::read(&index).unwrap();

    let mut damaged = good.clone();
    damaged[20] ^= 1;
    fs::write(&index, &damaged).unwrap();
    let (wal, fs) = open_counting(dir.path(), options());
    assert_eq!(read_all(&wal.unwrap()), records);
    assert!(fs.segment_bytes_read.load(Ordering::Relaxed) >= 2 * total);

    // A sealed segment that grew by a valid entry: its record no longer fits.
    // That is damage (issue 12): accepting it would renumber every later entry.
    fs::write(&index, &good).unwrap();
    let grown = dir.path().join(SegmentId(2).file_name());
    let mut bytes = fs::read(&grown).unwrap();
    flashlog_wal::codec::encode(&mut bytes, Op::Put, b"extra", b"entry");
    fs::write(&grown, &bytes).unwrap();
    assert_segment_changed(Wal::open(dir.path(), options()), SegmentId(2));
    // Without the checkpoint the segments alone are the truth.
    fs::remove_file(&index).unwrap();
    let wal = Wal::open(dir.path(), options()).unwrap();
    let all = read_all(&wal);
    assert_eq!(all.len(), records.len() + 1);
    assert!(all.contains(&(Op::Put, b"extra".to_vec(), b"entry".to_vec())));
}

#[test]
fn a_reopen_after_a_crash_reads_only_what_was_sealed_since_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let records = sample_records(600);
    let wal = Wal::open(dir.path(), options()).unwrap();
    append_all(&wal, &records);
    // A killed process leaves its files as they are now (everything acknowledged
    // was written): copy them without closing.
    let crashed = tempfile::tempdir().unwrap();
    for entry in fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        fs::copy(entry.path(), crashed.path().join(entry.file_name())).unwrap();
    }
    drop(wal);
    let (wal, fs) = open_counting(crashed.path(), options());
    let wal = wal.unwrap();
    // The checkpoint was rewritten at the last rotation: only the newest segment
    // (with its preallocated zeros) and the last entry of each sealed one are read.
    let newest = fs::metadata(
        crashed
            .path()
            .join(wal.segments().last().unwrap().id.file_name()),
    )
    .unwrap()
    .len();
    assert!(
        fs.segment_bytes_read.load(Ordering::Relaxed) <= newest + last_entries_len(crashed.path())
    );
    assert_eq!(read_all(&wal), records);
}

/// A `truncate_back` into a sealed segment, then appends that make it exactly as
/// long as before with other entries: the old record would fit its length but not
/// its entries, so it must be gone.
#[test]
fn truncate_back_removes_the_checkpoint_before_changing_a_sealed_segment() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), options()).unwrap();
    let value = vec![7u8; 83]; // entries of 100 bytes: 17 + 0 + 83
    for _ in 0..60 {
        wal.append(Op::Put, b"", &value).unwrap();
    }
    wal.close().unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), options()).unwrap();
    let sealed = wal.segments()[0];
    assert_eq!(sealed.bytes, 2000);
    wal.truncate_back(11).unwrap();
    assert!(!dir.path().join(INDEX_FILE).exists());
    // 1,000 bytes as 5 entries of 200 instead of 10 of 100, then seal.
    let long = vec![9u8; 183];
    for _ in 0..5 {
        wal.append(Op::Put, b"", &long).unwrap();
    }
    wal.rotate().unwrap();
    wal.close().unwrap();
    drop(wal);
    assert_eq!(segment_files(dir.path())[0].1.len(), 2000);
    // The cut segment, sealed again, is in the new checkpoint: the open reads only
    // its last entry.
    let (wal, fs) = open_counting(dir.path(), options());
    let wal = wal.unwrap();
    assert_eq!(
        fs.segment_bytes_read.load(Ordering::Relaxed),
        newest_segment_len(dir.path()) + 200
    );
    let all = read_all(&wal);
    assert_eq!(all.len(), 15);
    assert_eq!(all[14].2, long);
}

#[test]
fn iterating_from_inside_a_trusted_segment_yields_from_there() {
    let dir = tempfile::tempdir().unwrap();
    let records = many_segments(dir.path());
    let third = Wal::open(dir.path(), options()).unwrap().segments()[2];
    for from in [
        third.first_seq,
        third.first_seq + 1,
        third.first_seq + third.entries - 1,
    ] {
        // A fresh open each time: the segment is trusted, not read yet.
        let wal = Wal::open(dir.path(), options()).unwrap();
        let got: Vec<Record> = wal
            .iter_from(from)
            .unwrap()
            .map(|entry| crate::common::record(&entry.unwrap()))
            .collect();
        assert_eq!(got, records[from as usize - 1..], "from {from}");
    }
}

/// Entries larger than an iterator's 1 MiB read: a trusted segment is read in
/// pieces as large as its entries.
#[test]
fn entries_larger_than_a_read_piece_replay_from_a_trusted_segment() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().max_segment_size(4 << 20);
    let big: Vec<Vec<u8>> = (0..9u8)
        .map(|i| vec![i; (1 << 20) + 1000 * usize::from(i)])
        .collect();
    let wal = Wal::open(dir.path(), options.clone()).unwrap();
    for value in &big {
        wal.append(Op::Put, b"big", value).unwrap();
    }
    assert!(wal.segments().len() >= 3);
    wal.close().unwrap();
    drop(wal);
    let wal = Wal::open(dir.path(), options).unwrap();
    let mut values = Vec::new();
    wal.iter_from(1)
        .unwrap()
        .try_for_each_ref(|entry| {
            values.push(entry.value.to_vec());
            Ok::<(), Error>(())
        })
        .unwrap();
    assert_eq!(values, big);
}

/// Whether `opened` failed with the damage of a sealed segment that no longer
/// matches its checkpoint record.
fn assert_segment_changed(opened: flashlog_wal::Result<Wal>, id: SegmentId) {
    match opened {
        Err(Error::Corrupt {
            segment,
            offset: 0,
            kind: flashlog_wal::CorruptionKind::SegmentChanged { .. },
            ..
        }) if segment == id => {}
        other => panic!("expected segment {id} changed, got {other:?}"),
    }
}

/// A sealed segment rewritten behind the log's back with other entries of the same
/// total length: the open-time check of its last entry finds out, and it is
/// damage (issue 12); without the checkpoint the files are the truth.
#[test]
fn a_segment_rewritten_to_the_same_length_is_damage_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), options()).unwrap();
    let value = vec![7u8; 83]; // 100-byte entries, 20 per segment
    for _ in 0..50 {
        wal.append(Op::Put, b"", &value).unwrap();
    }
    wal.close().unwrap();
    drop(wal);
    // Segment 2 as 10 entries of 200 bytes instead of 20 of 100.
    let mut rewritten = Vec::new();
    for _ in 0..10 {
        flashlog_wal::codec::encode(&mut rewritten, Op::Put, b"", &[9u8; 183]);
    }
    let path = dir.path().join(SegmentId(2).file_name());
    assert_eq!(rewritten.len() as u64, fs::metadata(&path).unwrap().len());
    fs::write(&path, &rewritten).unwrap();
    assert_segment_changed(Wal::open(dir.path(), options()), SegmentId(2));
    fs::remove_file(dir.path().join(INDEX_FILE)).unwrap();
    let wal = Wal::open(dir.path(), options()).unwrap();
    assert_eq!(wal.last_seq(), 40);
    assert_eq!(wal.segments()[1].entries, 10);
    assert_eq!(wal.read(30).unwrap().value(), [9u8; 183]);
    assert_eq!(read_all(&wal).len(), 40);
}

/// What the open-time check cannot see (checkpoint.rs says so): a segment
/// rewritten to the same length whose last entry is byte-identical at the same
/// offset. The record's entry count is then wrong, and the first read of the
/// segment's entries reports it rather than returning them.
#[test]
fn a_rewrite_keeping_the_last_entry_in_place_is_reported_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), options()).unwrap();
    let value = vec![7u8; 83]; // 100-byte entries, 20 per segment
    for _ in 0..50 {
        wal.append(Op::Put, b"", &value).unwrap();
    }
    wal.close().unwrap();
    drop(wal);
    // Segment 2 as 9 entries of 200 bytes, one of 100, and the old last entry
    // where it was (byte 1900): 11 entries instead of 20.
    let mut rewritten = Vec::new();
    for _ in 0..9 {
        flashlog_wal::codec::encode(&mut rewritten, Op::Put, b"", &[9u8; 183]);
    }
    flashlog_wal::codec::encode(&mut rewritten, Op::Put, b"", &[9u8; 83]);
    flashlog_wal::codec::encode(&mut rewritten, Op::Put, b"", &value);
    let path = dir.path().join(SegmentId(2).file_name());
    assert_eq!(rewritten.len() as u64, fs::metadata(&path).unwrap().len());
    fs::write(&path, &rewritten).unwrap();
    let wal = Wal::open(dir.path(), options()).unwrap();
    let result: flashlog_wal::Result<Vec<_>> = wal.iter_from(1).unwrap().collect();
    assert!(
        matches!(
            result,
            Err(Error::SegmentChanged {
                segment: SegmentId(2),
                expected_entries: 20,
                found_entries: 11,
                ..
            })
        ),
        "{result:?}"
    );
    assert!(matches!(wal.read(25), Err(Error::SegmentChanged { .. })));
    drop(wal);
    // A full scan compares the whole segment with the record: damage, and
    // PointInTime keeps what comes before it.
    assert_segment_changed(
        Wal::open(
            dir.path(),
            options().recovery_mode(RecoveryMode::AbsoluteConsistency),
        ),
        SegmentId(2),
    );
    let strict = Wal::open(
        dir.path(),
        options().recovery_mode(RecoveryMode::PointInTime),
    )
    .unwrap();
    assert_eq!(strict.last_seq(), 20);
}

/// 100-byte entries (17 + empty key + 83) whose value names their sequence number.
fn numbered(seq: u64) -> Vec<u8> {
    vec![seq as u8; 83]
}

/// A `truncate_back` into a sealed segment and appends that give it back its old
/// length with fewer entries, then the old checkpoint put back (a partial backup
/// restore): the record fits the segment's length but not its entries. Never
/// wrong sequence numbers: the segment no longer matches its record, which is
/// damage (issue 12); once the stale checkpoint is removed, the files are the
/// truth.
#[test]
fn regression_a_restored_checkpoint_never_vouches_for_a_changed_segment() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), options()).unwrap();
    for seq in 1..=50 {
        assert_eq!(wal.append(Op::Put, b"", &numbered(seq)).unwrap(), seq);
    }
    wal.close().unwrap();
    drop(wal);
    let old_checkpoint = fs::read(dir.path().join(INDEX_FILE)).unwrap();

    // Segment 2 held 21..=40 in 2000 bytes; keep 21..=25, then 5 entries of 200
    // bytes and 5 of 100: 2000 bytes again, 15 entries (21..=35).
    let wal = Wal::open(dir.path(), options()).unwrap();
    wal.truncate_back(26).unwrap();
    for seq in 26..=30 {
        wal.append(Op::Put, b"", &[seq as u8; 183]).unwrap();
    }
    for seq in 31..=45 {
        assert_eq!(wal.append(Op::Put, b"", &numbered(seq)).unwrap(), seq);
    }
    wal.close().unwrap();
    drop(wal);
    assert_eq!(segment_files(dir.path())[1].1.len(), 2000);
    fs::write(dir.path().join(INDEX_FILE), &old_checkpoint).unwrap();
    assert_segment_changed(Wal::open(dir.path(), options()), SegmentId(2));
    fs::remove_file(dir.path().join(INDEX_FILE)).unwrap();

    let wal = Wal::open(dir.path(), options()).unwrap();
    assert_eq!((wal.first_seq(), wal.last_seq()), (1, 45));
    assert_eq!(wal.recovery_report().entries, 45);
    assert_eq!(wal.read(36).unwrap().value(), numbered(36));
    assert_eq!(wal.read(25).unwrap().value(), numbered(25));
    assert_eq!(wal.read(26).unwrap().value(), [26u8; 183]);
    assert_eq!(wal.append(Op::Put, b"", &numbered(46)).unwrap(), 46);
    wal.close().unwrap();
    drop(wal);
    // What close saved describes the segments as they are: every mode agrees.
    for mode in [
        RecoveryMode::TolerateCorruptedTail,
        RecoveryMode::AbsoluteConsistency,
    ] {
        let wal = Wal::open(dir.path(), options().recovery_mode(mode)).unwrap();
        let all = read_all(&wal);
        assert_eq!(all.len(), 46, "{mode:?}");
        assert_eq!(all[45].2, numbered(46), "{mode:?}");
        assert_eq!(all[30].2, numbered(31), "{mode:?}");
    }
}

/// A segment cut by `truncate_back` and sealed before anything is appended to it:
/// the cut read its new last entry's CRC, so the next checkpoint vouches for it.
#[test]
fn a_segment_sealed_right_after_truncate_back_is_checkpointed() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path(), options()).unwrap();
    for seq in 1..=50 {
        wal.append(Op::Put, b"", &numbered(seq)).unwrap();
    }
    wal.truncate_back(31).unwrap();
    assert_eq!(wal.rotate().unwrap(), SegmentId(3));
    wal.close().unwrap();
    drop(wal);
    let (wal, fs) = open_counting(dir.path(), options());
    let wal = wal.unwrap();
    // Segments 1 and 2 trusted: one 100-byte last entry read from each.
    assert_eq!(fs.segment_bytes_read.load(Ordering::Relaxed), 200);
    assert_eq!(wal.last_seq(), 30);
    assert_eq!(wal.read(30).unwrap().value(), numbered(30));
}
