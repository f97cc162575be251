//! Recovery on open, exhaustively on small logs: every truncation point, every bit
//! flip, zero-filled tails, damage in older segments, and side-file leftovers.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use flashlog_wal::{Error, Op, Options, RecoveryMode, SegmentId, Wal};

use crate::common::{
    append_all, open, read_all, sample_records, segment_files, FaultyDisk, FaultyDiskFs, Record,
};

const SEGMENT: u64 = 128;

/// The names the side file and the checkpoint are written under before their
/// renames, as docs/design.md lists them ("Files in a log directory"): what a crash
/// leaves, and an open must remove, whatever version wrote it. The library does not
/// export them.
const META_TMP_FILE: &str = "flashlog.meta.tmp";
const INDEX_TMP_FILE: &str = "flashlog.index.tmp";

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

/// One valid entry, then a header every 17 bytes that claims an entry of
/// `claimed` bytes: at each of those offsets the lengths check out and only the
/// CRC over `claimed` bytes can tell the entry is not there.
fn hostile_segment(len: usize, claimed: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    flashlog_wal::codec::encode(&mut bytes, Op::Put, b"k", b"v");
    let mut header = Vec::new();
    header.extend_from_slice(&0xdead_beef_u32.to_le_bytes());
    header.extend_from_slice(&claimed.to_le_bytes());
    header.push(1);
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&(claimed - 13).to_le_bytes());
    while bytes.len() + header.len() <= len {
        bytes.extend_from_slice(&header);
    }
    bytes
}

/// Checking every would-be entry of such a segment costs CRCs over ~740,000 × 4 MiB
/// (days). Recovery searches with a budget instead, and says where it gave up
/// rather than guessing: the damage may be a torn tail or may hide valid entries.
///
/// The first would-be entry's `VAL_LEN` is damaged, so that its lengths disagree
/// and the search goes byte by byte. (Until issue 12 the segment was used as it
/// is; but there each header agrees with itself and declares an extent that ends
/// on the next one, and recovery no longer looks inside an entry's declared
/// bytes: it follows the five extents, the last running past the end, which is a
/// torn tail. See `hostile_headers_that_agree_are_followed_not_searched`.)
#[test]
fn regression_damage_followed_by_would_be_entries_is_searched_with_a_budget() {
    let mut segment = hostile_segment(16 << 20, 4 << 20);
    segment[19 + 13] ^= 1;
    let dir = write_segments(&[(SegmentId(1).file_name(), segment)]);
    let path = dir.path().to_path_buf();
    let outcomes =
        flashlog_testkit::run_with_timeout(std::time::Duration::from_secs(300), move || {
            let open = |mode| Wal::open(&path, Options::default().recovery_mode(mode).read_only());
            [
                RecoveryMode::TolerateCorruptedTail,
                RecoveryMode::SkipCorrupted,
                RecoveryMode::AbsoluteConsistency,
                RecoveryMode::PointInTime,
            ]
            .map(open)
        })
        .expect("recovery searches with a budget");
    let [tolerate, skip, absolute, point_in_time] = outcomes;
    for unbounded in [tolerate, skip] {
        match unbounded {
            Err(Error::UnboundedDamage {
                segment, offset, ..
            }) => assert_eq!((segment, offset), (SegmentId(1), 19)),
            other => panic!("expected UnboundedDamage, got {other:?}"),
        }
    }
    assert!(
        matches!(absolute, Err(Error::Corrupt { offset: 19, .. })),
        "{absolute:?}"
    );
    let wal = point_in_time.unwrap();
    assert_eq!(
        read_all(&wal),
        vec![(Op::Put, b"k".to_vec(), b"v".to_vec())]
    );
}

/// Would-be entries whose headers agree with themselves own their declared bytes:
/// recovery checks one CRC per declared extent instead of searching inside them,
/// and the last one, running past the end of the newest segment, is a torn tail.
/// In an older segment the same bytes are damage to its end.
#[test]
fn hostile_headers_that_agree_are_followed_not_searched() {
    let hostile = hostile_segment(16 << 20, 4 << 20);
    let valid = vec![(Op::Put, b"k".to_vec(), b"v".to_vec())];
    let dir = write_segments(&[(SegmentId(1).file_name(), hostile.clone())]);
    let path = dir.path().to_path_buf();
    let wal = flashlog_testkit::run_with_timeout(std::time::Duration::from_secs(60), move || {
        Wal::open(&path, Options::default().read_only()).unwrap()
    })
    .expect("a few CRCs");
    assert_eq!(read_all(&wal), valid);
    let torn = wal.recovery_report().torn_tail.unwrap();
    assert_eq!(torn.position.offset, 19);
    assert_eq!(torn.len, hostile.len() as u64 - 19);
    drop(wal);
    let mut second = Vec::new();
    flashlog_wal::codec::encode(&mut second, Op::Put, b"k2", b"v2");
    let dir = write_segments(&[
        (SegmentId(1).file_name(), hostile),
        (SegmentId(2).file_name(), second),
    ]);
    let err = Wal::open(dir.path(), Options::default().read_only()).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Corrupt {
                segment: SegmentId(1),
                offset: 19,
                ..
            }
        ),
        "{err}"
    );
    let wal = open(
        dir.path(),
        Options::default()
            .recovery_mode(RecoveryMode::SkipCorrupted)
            .read_only(),
    );
    assert_eq!(wal.recovery_report().skipped, 1);
    assert_eq!(read_all(&wal).len(), 2);
}

/// Read-only opens, for `run_for`, of a log in a new directory under `root` that
/// another handle keeps appending to, rotating and truncating at the front. Every
/// open must succeed and see a consistent log: contiguous segments, and every
/// entry from first to last readable and the one appended under its number (or
/// removed since by a `truncate_front`). Returns how many opens ran.
fn read_only_opens_of_a_live_log(root: &Path, run_for: std::time::Duration) -> u64 {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;
    use std::time::Instant;

    let dir = tempfile::tempdir_in(root).unwrap();
    let options = Options::default()
        .max_segment_size(1024)
        .sync_policy(flashlog_wal::SyncPolicy::Manual);
    let wal = Wal::open(dir.path(), options).unwrap();
    let key = |seq: u64| seq.to_le_bytes();
    for seq in 1..=40 {
        wal.append(Op::Put, &key(seq), b"value").unwrap();
    }
    wal.rotate().unwrap();
    // The writer's first sequence number, updated under the lock while
    // `truncate_front` removes segments: a reader that finds an entry gone checks
    // that it was removed.
    let first = Mutex::new(wal.first_seq());
    let stop = AtomicBool::new(false);
    let opens = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut round = 0u64;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                for _ in 0..7 {
                    let seq = wal.last_seq() + 1;
                    assert_eq!(wal.append(Op::Put, &key(seq), b"value").unwrap(), seq);
                }
                wal.rotate().unwrap();
                if round.is_multiple_of(3) {
                    let mut first = first.lock().unwrap();
                    *first = wal
                        .truncate_front(wal.last_seq().saturating_sub(60))
                        .unwrap();
                }
            }
        });
        let reader = scope.spawn(|| {
            let deadline = Instant::now() + run_for;
            let mut opens = 0u64;
            while Instant::now() < deadline {
                let reader = Wal::open(dir.path(), Options::default().read_only())
                    .unwrap_or_else(|err| panic!("read-only open {opens}: {err}"));
                opens += 1;
                let (first_seq, last_seq) = (reader.first_seq(), reader.last_seq());
                assert!(first_seq > 1 || last_seq >= 40, "{first_seq}..={last_seq}");
                let segments = reader.segments();
                for pair in segments.windows(2) {
                    assert_eq!(pair[0].id.next(), pair[1].id);
                    assert_eq!(pair[0].first_seq + pair[0].entries, pair[1].first_seq);
                }
                assert_eq!(segments[0].first_seq, first_seq);
                for seq in first_seq..=last_seq {
                    match reader.read(seq) {
                        Ok(entry) => assert_eq!(entry.key(), key(seq), "entry {seq}"),
                        Err(err) => assert!(
                            seq < *first.lock().unwrap(),
                            "entry {seq} of {first_seq}..={last_seq}: {err}"
                        ),
                    }
                }
            }
            opens
        });
        let opens = reader.join();
        stop.store(true, Ordering::Relaxed);
        opens.unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    });
    wal.close().unwrap();
    opens
}

/// Issue 11, item 3: a read-only open listed the directory before it read the side
/// file, so a rotation in between made it report a segment missing (and one
/// removed by `truncate_front` in between could not be opened).
#[test]
fn regression_read_only_opens_of_a_live_log_see_a_consistent_log() {
    // FLASHLOG_STRESS_MS lengthens the run (by hand; CI runs the short one).
    let millis = std::env::var("FLASHLOG_STRESS_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(1500);
    let run_for = std::time::Duration::from_millis(millis);
    // A real disk (the target directory) and tmpfs: the race was far more likely
    // on tmpfs.
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let disk = read_only_opens_of_a_live_log(target, run_for);
    let shm = Path::new("/dev/shm");
    let tmpfs = if shm.is_dir() {
        read_only_opens_of_a_live_log(shm, run_for)
    } else {
        0
    };
    eprintln!("read-only opens of a live log: {disk} on disk, {tmpfs} on tmpfs");
    assert!(disk > 0);
}
