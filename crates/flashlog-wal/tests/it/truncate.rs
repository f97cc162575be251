//! Truncation at both ends: what it removes, that it survives reopen, and that a
//! failure at any step (files as a crash would leave them) reopens to the log
//! before or after, nothing else.

use flashlog_wal::{Error, Op, Options, SegmentId, Wal};

use crate::common::{
    append_all, faulty_disk_options, open, read_all, sample_records, segment_files, AfterFailure,
    Counting, FaultyDisk, Record,
};

const SEGMENT: u64 = 200;

/// Options with small segments on the real disk, where mutation `n` fails and
/// every later one too, as a crash at that moment would leave the files.
fn crashing_at(n: u64) -> Options {
    let fs = FaultyDisk::failing(n, Counting::EveryMutation, AfterFailure::FailEveryLater);
    faulty_disk_options(&fs).max_segment_size(SEGMENT)
}

fn options() -> Options {
    Options::default().max_segment_size(SEGMENT)
}

fn filled(count: usize) -> (tempfile::TempDir, Vec<Record>) {
    let dir = tempfile::tempdir().unwrap();
    let records = sample_records(count);
    let wal = open(dir.path(), options());
    append_all(&wal, &records);
    (dir, records)
}

#[test]
fn truncate_front_removes_whole_old_segments_and_survives_reopen() {
    let (dir, records) = filled(60);
    let wal = open(dir.path(), options());
    let segments = wal.segments();
    assert!(segments.len() > 5);
    // Entry 30 lies inside some segment: every segment before that one goes.
    let holding = segments
        .iter()
        .find(|s| s.first_seq <= 30 && 30 < s.first_seq + s.entries)
        .unwrap();
    let first = wal.truncate_front(30).unwrap();
    assert_eq!(first, holding.first_seq);
    assert_eq!(wal.first_seq(), holding.first_seq);
    assert_eq!(segment_files(dir.path())[0].0, holding.id.file_name());
    assert!(matches!(
        wal.read(first - 1),
        Err(Error::SeqOutOfRange { .. })
    ));
    assert!(matches!(wal.iter_from(1), Err(Error::SeqOutOfRange { .. })));
    assert_eq!(wal.read(30).unwrap().key(), &records[29].1[..]);
    drop(wal);

    let wal = open(dir.path(), options());
    assert_eq!((wal.first_seq(), wal.last_seq()), (first, 60));
    assert_eq!(read_all(&wal), records[first as usize - 1..].to_vec());
    assert_eq!(wal.append(Op::Put, b"more", b"").unwrap(), 61);
}

#[test]
fn truncate_front_never_removes_the_active_segment() {
    let (dir, _) = filled(40);
    let wal = open(dir.path(), options());
    let active = *wal.segments().last().unwrap();
    let first = wal.truncate_front(1_000).unwrap();
    assert_eq!(first, active.first_seq);
    assert_eq!(wal.segments().len(), 1);
    assert_eq!(wal.last_seq(), 40);
    assert_eq!(wal.append(Op::Put, b"k", b"v").unwrap(), 41);
    drop(wal);
    let wal = open(dir.path(), options());
    assert_eq!((wal.first_seq(), wal.last_seq()), (active.first_seq, 41));
}

#[test]
fn truncate_back_removes_the_tail_and_the_next_append_reuses_the_number() {
    let (dir, records) = filled(60);
    let wal = open(dir.path(), options());
    let segments_before = wal.segments().len();
    wal.truncate_back(25).unwrap();
    assert_eq!(wal.last_seq(), 24);
    assert!(wal.segments().len() < segments_before);
    assert!(matches!(wal.read(25), Err(Error::SeqOutOfRange { .. })));
    assert_eq!(read_all(&wal), records[..24].to_vec());
    assert_eq!(wal.append(Op::Put, b"new-25", b"x").unwrap(), 25);
    drop(wal);

    let wal = open(dir.path(), options());
    let mut want = records[..24].to_vec();
    want.push((Op::Put, b"new-25".to_vec(), b"x".to_vec()));
    assert_eq!(read_all(&wal), want);
    // Segment ids stay contiguous after the removed ones are reused.
    for (i, (name, _)) in segment_files(dir.path()).iter().enumerate() {
        assert_eq!(name, &SegmentId(i as u64 + 1).file_name());
    }
}

#[test]
fn truncate_back_edge_cases() {
    let (dir, records) = filled(60);
    let wal = open(dir.path(), options());
    wal.truncate_back(61).unwrap(); // past the end: nothing
    assert_eq!(wal.last_seq(), 60);
    let first = wal.truncate_front(30).unwrap();
    assert!(first > 1);
    assert!(matches!(
        wal.truncate_back(first - 1),
        Err(Error::SeqOutOfRange { .. })
    ));
    wal.truncate_back(first).unwrap(); // everything that is left
    assert_eq!((wal.first_seq(), wal.last_seq()), (first, first - 1));
    assert!(read_all(&wal).is_empty());
    assert_eq!(wal.append(Op::Put, b"again", b"").unwrap(), first);
    drop(wal);
    let wal = open(dir.path(), options());
    assert_eq!((wal.first_seq(), wal.last_seq()), (first, first));
    assert_eq!(
        read_all(&wal),
        vec![(Op::Put, b"again".to_vec(), Vec::new())]
    );
    assert_eq!(records.len(), 60);
}

#[test]
fn truncation_after_front_truncation_keeps_numbers_stable() {
    let (dir, records) = filled(80);
    {
        let wal = open(dir.path(), options());
        let first = wal.truncate_front(50).unwrap();
        wal.truncate_back(70).unwrap();
        assert_eq!((wal.first_seq(), wal.last_seq()), (first, 69));
    }
    let wal = open(dir.path(), options());
    let first = wal.first_seq();
    assert!(first > 1);
    assert_eq!(wal.last_seq(), 69);
    assert_eq!(read_all(&wal), records[first as usize - 1..69].to_vec());
    assert_eq!(wal.append(Op::Put, b"k", b"").unwrap(), 70);
}

/// Runs `operation` on a log whose file system fails its Nth mutation, for N = 1, 2,
/// ... until the operation succeeds, and checks after each failure that a reopen
/// (on the real file system) gives exactly `before` or `after`.
fn check_crash_safety(
    operation: impl Fn(&Wal) -> flashlog_wal::Result<()>,
    before: &[Record],
    after: &[Record],
) {
    for fail_at in 1.. {
        let dir = tempfile::tempdir().unwrap();
        {
            let wal = open(dir.path(), options());
            append_all(&wal, before);
        }
        let result = {
            let wal = Wal::open(dir.path(), crashing_at(fail_at));
            wal.and_then(|wal| operation(&wal))
        };
        let wal = open(dir.path(), options());
        let now = read_all(&wal);
        assert!(
            now == before || now == after,
            "failure at mutation {fail_at} left {} entries (before {}, after {})",
            now.len(),
            before.len(),
            after.len()
        );
        if result.is_ok() {
            assert_eq!(now, after, "the operation succeeded");
            assert!(fail_at > 2, "the failure points were exercised");
            return;
        }
        // Reopening finished or rolled back the operation for good.
        drop(wal);
        let again = open(dir.path(), options());
        assert_eq!(read_all(&again), now);
    }
}

#[test]
fn truncate_back_is_crash_safe_at_every_step() {
    let records = sample_records(60);
    check_crash_safety(|wal| wal.truncate_back(12), &records, &records[..11]);
}

#[test]
fn truncate_front_is_crash_safe_at_every_step() {
    let records = sample_records(60);
    // Which entries remain depends on segment boundaries: compute them on a copy.
    let (dir, _) = filled(60);
    let first = open(dir.path(), options()).truncate_front(40).unwrap() as usize;
    let after_front = records[first - 1..].to_vec();
    for fail_at in 1..40 {
        let dir = tempfile::tempdir().unwrap();
        append_all(&open(dir.path(), options()), &records);
        let result =
            Wal::open(dir.path(), crashing_at(fail_at)).and_then(|wal| wal.truncate_front(40));
        let wal = open(dir.path(), options());
        let now = read_all(&wal);
        let first_now = wal.first_seq();
        // Before: everything from 1. After: the kept suffix, numbered as before.
        assert!(
            (first_now == 1 && now == records) || (first_now == first as u64 && now == after_front),
            "failure at mutation {fail_at}: first {first_now}, {} entries",
            now.len()
        );
        if result.is_ok() {
            assert_eq!(first_now, first as u64);
            return;
        }
    }
    panic!("truncate_front never succeeded");
}

/// Whatever `flashlog.index` says of each segment that exists, read off its bytes
/// per the layout in checkpoint/record.rs: `(segment, entries, len)`.
fn checkpoint_records(dir: &std::path::Path) -> Vec<(u64, u64, u64)> {
    let Ok(bytes) = std::fs::read(dir.join(flashlog_wal::INDEX_FILE)) else {
        return Vec::new();
    };
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    assert_eq!(u32_at(8), 3, "version");
    let count = u32_at(12) as usize;
    // Version 3: each 44-byte record is followed by its gap count and gaps
    // (none in these logs).
    let mut at = 16;
    let mut records = Vec::new();
    for _ in 0..count {
        records.push((u64_at(at), u64_at(at + 16), u64_at(at + 24)));
        assert_eq!(u32_at(at + 44), 0, "gaps");
        at += 48;
    }
    records
}

/// Fails if the checkpoint in `dir` says of an existing segment anything its
/// bytes do not bear out.
fn assert_checkpoint_true(dir: &std::path::Path, when: &str) {
    for (id, entries, len) in checkpoint_records(dir) {
        let Ok(bytes) = std::fs::read(dir.join(SegmentId(id).file_name())) else {
            continue;
        };
        let mut at = 0;
        let mut found = 0;
        while let Ok(entry) = flashlog_wal::codec::decode(&bytes[at..]) {
            at += entry.len;
            found += 1;
        }
        assert_eq!(
            (found, bytes.len() as u64),
            (entries, len),
            "{when}: the checkpoint's record of segment {id}"
        );
    }
}

/// `truncate_back` into a sealed segment removes the checkpoint before it touches
/// any segment, on every path: a failure at each of its steps (the files as a
/// crash would leave them), and the recovery that finishes it.
#[test]
fn truncate_back_never_leaves_a_checkpoint_a_segment_disagrees_with() {
    let records = sample_records(60);
    for fail_at in 1.. {
        let dir = tempfile::tempdir().unwrap();
        {
            let wal = open(dir.path(), options());
            append_all(&wal, &records);
            assert!(wal.segments().len() > 3);
        }
        assert!(!checkpoint_records(dir.path()).is_empty());
        let result =
            Wal::open(dir.path(), crashing_at(fail_at)).and_then(|wal| wal.truncate_back(12));
        assert_checkpoint_true(dir.path(), &format!("failure at mutation {fail_at}"));
        let wal = open(dir.path(), options());
        assert_checkpoint_true(dir.path(), &format!("reopen after failure {fail_at}"));
        // Sealing the cut segment again checkpoints it anew, truthfully.
        append_all(&wal, &records[wal.last_seq() as usize..]);
        wal.close().unwrap();
        assert_checkpoint_true(dir.path(), &format!("close after failure {fail_at}"));
        if result.is_ok() {
            assert!(fail_at > 2, "the failure points were exercised");
            break;
        }
    }
}
